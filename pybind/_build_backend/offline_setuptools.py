"""The build backend of pyproject.toml: setuptools.build_meta, usable offline.

`pip install .` builds in an isolated environment and first installs build-system.requires
there, from an index. With no index reachable (PyPI is not, where this project is built) that
fails before our setup.py runs, although the interpreter has setuptools and wheel (Debian's
python3-setuptools, python3-wheel). So pyproject.toml requires nothing statically, and this
wrapper asks for setuptools/wheel only when the interpreter's own site-packages lack them:
offline it builds with the system's copies, online with fresh ones, as usual.
"""
import importlib.util
import site
import sys

_NEEDED = {"setuptools": "setuptools>=61", "wheel": "wheel"}


def _missing():
    # In pip's isolated environment sys.path no longer lists the interpreter's site-packages;
    # site.getsitepackages() still names them, and with sys.base_prefix those of the base
    # interpreter of a venv (Debian's dist-packages). Added last: anything pip installed wins.
    for d in site.getsitepackages() + site.getsitepackages([sys.base_prefix]):
        if d not in sys.path:
            sys.path.append(d)
    return [req for mod, req in _NEEDED.items() if importlib.util.find_spec(mod) is None]


if not _missing():
    from setuptools import build_meta as _meta
    from setuptools.build_meta import *  # noqa: F401,F403  (the PEP 517 hooks)

    def get_requires_for_build_wheel(config_settings=None):
        # setuptools 66 asks for "wheel" here; it is importable already (checked above).
        return [r for r in _meta.get_requires_for_build_wheel(config_settings) if r.split(">")[0] not in _NEEDED]
else:
    def get_requires_for_build_wheel(config_settings=None):
        return _missing()

    def build_wheel(*args, **kwargs):
        # pip installed what get_requires_for_build_wheel asked for: now setuptools is there.
        from setuptools import build_meta
        return build_meta.build_wheel(*args, **kwargs)

    def build_sdist(*args, **kwargs):
        from setuptools import build_meta
        return build_meta.build_sdist(*args, **kwargs)

    def get_requires_for_build_sdist(config_settings=None):
        return _missing()
