"""python -m shm_redirect: the shm-redirect command line (see shm_redirect.cli)."""
import sys

from .cli import main

sys.exit(main())
