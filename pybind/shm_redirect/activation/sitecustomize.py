"""sitecustomize for places where .pth files are not processed (an AWS Lambda layer puts
/opt/python on PYTHONPATH, which is not a site directory).

Install it as the top-level module `sitecustomize.py` next to the shm_redirect package:

    python -m shm_redirect.activation.sitecustomize DIR      # writes DIR/sitecustomize.py

At start-up it calls shm_redirect.activation.activate.activate(), then chains to the next `sitecustomize`
on sys.path after its own directory (e.g. Debian's /usr/lib/python3.X/sitecustomize.py), which
would otherwise be shadowed: that one is executed as a module named 'sitecustomize' and kept as
`sitecustomize.chained` (this module stays sys.modules['sitecustomize']). Never raises.
"""
import os
import sys

chained = None


def _activate():
    try:
        from shm_redirect.activation.activate import activate
        activate()
    except Exception as e:
        try:
            sys.stderr.write("shm-redirect: activation failed: %s: %s\n" % (type(e).__name__, e))
        except Exception:
            pass


def _chain():
    """Run the next sitecustomize on sys.path after our directory."""
    global chained
    me = os.path.realpath(__file__)
    here = os.path.dirname(me)
    rest, seen = [], False
    for entry in sys.path:
        try:
            real = os.path.realpath(entry or os.curdir)
        except (TypeError, ValueError):
            continue
        if not seen:
            seen = real == here
            continue
        rest.append(entry)
    if not seen:   # our directory is not on sys.path as such: search everything else
        rest = [p for p in sys.path if isinstance(p, str)]
    from importlib.machinery import PathFinder
    from importlib.util import module_from_spec
    spec = PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    if spec.origin and os.path.realpath(spec.origin) == me:
        return
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    chained = module


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m shm_redirect.activation.sitecustomize DIR  (writes DIR/sitecustomize.py)")
    import shutil
    src = __file__
    if src.endswith((".pyc", ".pyo")):
        sys.exit("source file not available")
    os.makedirs(sys.argv[1], exist_ok=True)
    dst = os.path.join(sys.argv[1], "sitecustomize.py")
    shutil.copyfile(src, dst)
    print(dst)
elif __name__ == "sitecustomize":
    _activate()
    try:
        _chain()
    except Exception as e:   # as site.execsitecustomize reports a failing sitecustomize
        try:
            sys.stderr.write("Error in sitecustomize (chained after shm-redirect); %s: %s\n"
                             % (type(e).__name__, e))
        except Exception:
            pass
