"""Out-of-process entry to the Go core: `python -m shm_redirect.store.gocall FN JSON-ARGS`.

Run by shm_redirect.store.gocore when the calling process may not call into Go itself (it forked
after loading the Go runtime). This is a fresh interpreter, so loading the core here is safe. Prints
the one JSON reply of the call surface (core/jsonapi), as the static executable shmr-core does, or
{"error": message, "type": "ImportError"} when the extension cannot load here. Exit status 0 when a
reply was printed, 2 for a usage error.
"""
import json
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    from . import gocore
    if len(argv) != 2:
        sys.stderr.write("usage: python -m shm_redirect.store.gocall FN JSON-ARGS\n")
        return 2
    try:
        args = json.loads(argv[1])
        if not isinstance(args, list):
            raise ValueError("JSON-ARGS must be a JSON array")
        reply = gocore.call_inprocess(argv[0], args)
    except Exception as e:
        reply = json.dumps({"error": str(e), "type": type(e).__name__})
    sys.stdout.write(reply + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
