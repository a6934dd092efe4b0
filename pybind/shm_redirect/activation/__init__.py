"""Activation at interpreter start: shm_redirect.pth (or a Lambda layer's sitecustomize) calls
activate.activate(), which leaves a working /dev/shm alone and otherwise re-execs the interpreter
with the preload (`preload` mode) or redirects it in process (`patch` mode, patch.install()).
coldstart sweeps what a killed invocation left, once per Lambda cold start.
"""
