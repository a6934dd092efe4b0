"""shm-redirect: Python multiprocessing where /dev/shm is missing (AWS Lambda).

Importing this package is cheap and safe in any process: it loads neither ctypes nor the Go core
(the gopy extension shm_redirect._core, whose Go runtime does not survive fork() without exec).
The Go core is loaded lazily, only for inspection and cleanup, through shm_redirect.store.gocore.
"""
import os as _os

__version__ = "0.1.0"

__all__ = ["__version__", "preload_path", "preload_entries", "with_preload", "resolve_dir", "is_native", "list_objects", "sweep",
           "core_available", "GoCoreError", "get_context"]

# name -> submodule: resolved on first attribute access (PEP 562), so `import shm_redirect` stays
# cheap. Other parts of the package (the multiprocessing context, the resource tracker) add their
# public names here.
_LAZY = {
    "resolve_dir": "store.gocore",
    "is_native": "store.gocore",
    "list_objects": "store.gocore",
    "sweep": "store.gocore",
    "core_available": "store.gocore",
    "GoCoreError": "store.gocore",
    "get_context": "mp.context",
}


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    import importlib
    value = getattr(importlib.import_module("." + mod, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def preload_path():
    """Absolute path of the packaged LD_PRELOAD library libshm_redirect.so.

    In an AWS Lambda layer (or a container image with its layout) the package is
    /opt/python/shm_redirect and the library /opt/lib/libshm_redirect.so: ../../lib from here.
    In a source checkout without a built wheel, the Makefile's build/libshm_redirect.so is used.
    Raises FileNotFoundError when none exists.
    """
    here = _os.path.dirname(_os.path.abspath(__file__))
    packaged = _os.path.join(here, "libshm_redirect.so")
    if _os.path.isfile(packaged):
        return packaged
    layer = _os.path.normpath(_os.path.join(here, _os.pardir, _os.pardir, "lib", "libshm_redirect.so"))
    if _os.path.isfile(layer):
        return layer
    # pybind/shm_redirect/ in a checkout: the Makefile builds ../../build/libshm_redirect.so.
    dev = _os.path.normpath(_os.path.join(here, _os.pardir, _os.pardir, "build", "libshm_redirect.so"))
    if _os.path.isfile(dev):
        return dev
    raise FileNotFoundError("libshm_redirect.so is not installed with shm_redirect (%s)" % packaged)


def preload_entries(value):
    """The entries of an LD_PRELOAD value: ld.so separates them by colons or spaces."""
    return [e for e in value.replace(":", " ").split() if e]


def with_preload(env, lib):
    """Prepend lib to env["LD_PRELOAD"] (a mutable mapping, e.g. os.environ) unless it is listed
    already; returns the previous value (None when unset), for an undo."""
    old = env.get("LD_PRELOAD")
    if lib not in preload_entries(old or ""):
        env["LD_PRELOAD"] = lib + (":" + old if old else "")
    return old
