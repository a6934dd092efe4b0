"""Out-of-process entry to the Go core: `python -m shm_redirect._gocall FN JSON-ARGS`.

Run by shm_redirect._gocore when the calling process may not call into Go itself (it forked after
loading the Go runtime). This is a fresh interpreter, so loading the core here is safe. Prints one
JSON object: {"result": ...} or {"error": message, "type": "GoCoreError"|"ImportError"|...}.
Exit status 0 when a reply was printed, 2 for a usage error. The static executable shmr-core
(cmd/shmr-core, the fallback where the extension cannot load) speaks the same protocol.
"""
import json
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    from . import _gocore
    if len(argv) != 2 or argv[0] not in _gocore.FUNCTIONS:
        sys.stderr.write("usage: python -m shm_redirect._gocall {%s} JSON-ARGS\n" % ",".join(sorted(_gocore.FUNCTIONS)))
        return 2
    try:
        args = json.loads(argv[1])
        if not isinstance(args, list) or len(args) != _gocore.FUNCTIONS[argv[0]]:
            raise ValueError("expected a JSON array of %d arguments" % _gocore.FUNCTIONS[argv[0]])
        reply = {"result": _gocore.call_inprocess(argv[0], args)}
    except Exception as e:
        reply = {"error": str(e), "type": type(e).__name__}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
