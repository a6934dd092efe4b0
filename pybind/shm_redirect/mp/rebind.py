"""Run CPython's own multiprocessing code with some of its names bound to ours.

The explicit contexts need CPython's synchronize, heap, sharedctypes and shared_memory with a few
names changed: the C-level semaphore and sem_unlink, shm_open/shm_unlink, the resource tracker
and the heap behind them. A copy of each module would freeze one CPython version's code (and its
bugs) into every version; a subclass cannot reach a module global or an import made inside a
function. So each of our modules runs the *running interpreter's* code object (from its loader:
no source file is needed) in its own namespace, with an `__import__` that answers the listed
imports with our modules. Every line that runs is CPython's, version for version, and so are its
why-comments (in the stdlib source beside it).

    module(namespace, 'multiprocessing.synchronize', {'_multiprocessing': 'shm_redirect.mp.semlock'})
    function(func, util=our_util)    # one function, with some of its globals replaced

Keys are the absolute names CPython imports ('_multiprocessing', 'multiprocessing.heap');
values are the names of our modules, imported when CPython's code imports the key.
"""
import builtins
import importlib
import importlib.util
import types

__all__ = ['module', 'function']


class _Package(object):
    """What `from PKG import a, b` gets when one of a, b is redirected: PKG's attributes,
    with the redirected ones replaced."""

    def __init__(self, real, replaced):
        self._real, self._replaced = real, replaced

    def __getattr__(self, name):
        if name in self._replaced:
            return importlib.import_module(self._replaced[name])
        return getattr(self._real, name)


def _importer(package, redirects):
    """An __import__ for code of `package` (its relative imports resolve there)."""
    real_import = builtins.__import__

    def __import__(name, globals=None, locals=None, fromlist=(), level=0):
        absname = importlib.util.resolve_name('.' * level + name, package) if level else name
        if absname in redirects:
            return importlib.import_module(redirects[absname])
        mod = real_import(absname, globals, locals, fromlist, 0)
        replaced = {f: redirects[absname + '.' + f] for f in fromlist or ()
                    if absname + '.' + f in redirects}
        return _Package(mod, replaced) if replaced else mod
    return __import__


def _builtins(package, redirects):
    return dict(builtins.__dict__, __import__=_importer(package, redirects))


def module(namespace, cpython_name, redirects):
    """Execute CPython's module `cpython_name` in `namespace` (the caller's globals()), its
    imports of the keys of `redirects` answered by the named modules. The functions it defines
    keep that importer, so the caller's own functions must be defined before this call (or
    import absolutely)."""
    spec = importlib.util.find_spec(cpython_name)
    code = spec.loader.get_code(cpython_name)
    namespace['__builtins__'] = _builtins(spec.parent, redirects)
    exec(code, namespace)


def function(func, redirects=None, **names):
    """A copy of `func` (a function of CPython's multiprocessing) whose module globals `names`
    are replaced, and whose imports of the keys of `redirects` are answered by our modules."""
    globs = dict(func.__globals__, **names)
    if redirects:
        globs['__builtins__'] = _builtins(func.__globals__['__package__'], redirects)
    new = types.FunctionType(func.__code__, globs, func.__name__, func.__defaults__,
                             func.__closure__)
    new.__kwdefaults__ = func.__kwdefaults__
    new.__qualname__, new.__doc__ = func.__qualname__, func.__doc__
    return new
