"""A stand-in for the Lambda Python runtime (/var/runtime/bootstrap.py): import the handler
module from $LAMBDA_TASK_ROOT (put first on sys.path, as the real runtime does), then invoke it
N times in this one process, as warm invocations of one execution environment are.

    python3 bootstrap.py MODULE.FUNCTION N

Prints one JSON line per invocation: {"invocation": i, "result": ...}.
"""
import importlib
import json
import os
import sys


def main():
    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", "/var/task"))
    module, function = sys.argv[1].rsplit(".", 1)
    handler = getattr(importlib.import_module(module), function)
    for i in range(int(sys.argv[2])):
        result = handler({"invocation": i}, None)
        print(json.dumps({"invocation": i, "result": result}), flush=True)


if __name__ == "__main__":
    main()
