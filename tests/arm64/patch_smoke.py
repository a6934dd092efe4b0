"""The Python package without its Go extension, in `patch` mode, for tests/arm64/run.sh.

    SHM_REDIRECT=patch SHM_REDIRECT_LIB=<arm64 .so> PYTHONPATH=<repo>/pybind \
        python3 tests/arm64/patch_smoke.py METHOD[,METHOD...]

Activates shm_redirect in process (ctypes on the arm64 libshm_redirect.so, no LD_PRELOAD at
start), checks the outcome, then runs tests/smoke_mp.py's checks. Prints `STATE ...` and
`RESULT <method> <check> ...` lines. SHM_REDIRECT_EXPORT=0 keeps children unpreloaded (then only
fork children, which inherit the patched interpreter, can work).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))


def main():
    # Spawned children re-import this file as __mp_main__: only the parent activates here.
    assert 'LD_PRELOAD' not in os.environ, 'started preloaded: this would not test patch mode'
    import shm_redirect.activation.activate as act
    state = act.activate()
    from shm_redirect.store import clib
    print('STATE %s lib=%s export=%s core_loaded=%s' % (
        state, clib._path, os.environ.get('LD_PRELOAD', '-'),
        'shm_redirect._core' in sys.modules), flush=True)
    if state != 'patch' or clib._path != os.environ['SHM_REDIRECT_LIB']:
        sys.exit('activation: want patch with %s' % os.environ['SHM_REDIRECT_LIB'])
    import smoke_mp   # after activation, as at start-up; spawn children import it by name
    smoke_mp.main()


if __name__ == '__main__':
    main()
