"""Inside the no-/dev/shm sandbox, with an unpacked wheel first on sys.path (tests/dist/test_dist.py):
a named semaphore made through the wheel's preload library lands in the store, and the wheel's Go
core (SHM_REDIRECT_GOCORE=inproc: the extension, =binary: bin/shmr-core) lists it."""
import json
import sys

import shm_redirect
from shm_redirect.store import clib, gocore

lock = shm_redirect.get_context("spawn").Lock()   # spawn: a named semaphore, kept in the store
what, why = gocore.describe()
names = [o["name"] for o in shm_redirect.list_objects()]
print(json.dumps({"python": "%d.%d" % sys.version_info[:2], "package": shm_redirect.__file__,
                  "core": what, "store": clib.store_dir(), "lock": lock._semlock.name, "names": names}))
