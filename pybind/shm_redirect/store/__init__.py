"""The gateways to the store's two implementations (core/STORE.md); nothing here re-derives a rule.

    clib     libshm_redirect.so through ctypes: the C store, for every in-process caller (safe in a
             forked child: no Go runtime). Also the store's answers (which directory, native or not,
             the checked directory descriptor) for the tracker and the CLI.
    gocore   the Go core (the gopy extension shm_redirect._core, or the static shmr-core): listing,
             holders and sweeping, only in processes that did not fork after loading it.
    gocall   `python -m shm_redirect.store.gocall FN JSON`: gocore's out-of-process entry.
    format   the store's constants, generated from core/format.go.
"""
