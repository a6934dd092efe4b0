"""CPython's multiprocessing.sharedctypes (RawValue, RawArray, Value, Array, copy, synchronized),
run by mp.rebind with its heap answered by shm_redirect.mp.heap (so the memory never comes from
/dev/shm), and with Value/Array's default lock taken from shm_redirect's context for the current
start method when the default context is not one of ours (a lock of CPython's own would need
/dev/shm)."""
import multiprocessing


def _store_context():
    """As sharedctypes' `ctx or get_context()`: the current default context when it is one of
    ours, else ours for the same start method."""
    from shm_redirect.mp.context import get_context, _StoreContextMixin
    ctx = multiprocessing.get_context()
    if isinstance(ctx, _StoreContextMixin):
        return ctx
    return get_context(ctx.get_start_method())


from . import rebind  # noqa: E402

rebind.module(globals(), 'multiprocessing.sharedctypes', {
    'multiprocessing.heap': 'shm_redirect.mp.heap',
})
get_context = _store_context
