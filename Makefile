# shm-redirect: `make` builds the preload; `make test` runs every test (installs what it needs first).
PYTHON  ?= /usr/bin/python3
CC      ?= cc
BUILD   ?= build
GO      ?= go

WARN      = -std=gnu11 -Wall -Wextra -Werror
SHIM_CFLAGS = $(WARN) -O2 -g -fPIC -fvisibility=hidden -ffile-prefix-map=$(CURDIR)=.
# Every program pays for loading the preload, and on this kind of VM each extra mapping or
# syscall of the loader costs ~10 us of a ~800 us /bin/true. Two loadable segments instead of
# four (noseparate-code) and no RELRO mprotect (with lazy binding RELRO only guards .got, which
# holds nothing here) bring the cost from 1.08x to under 1.05x; see bench/startup.py (make bench).
SHIM_LDFLAGS = -shared -Wl,--version-script=shim/exports.map -Wl,-O1 -Wl,--as-needed \
	-Wl,-z,noseparate-code -Wl,-z,norelro
SAN     = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

LIB     = $(BUILD)/libshm_redirect.so
SHIM_C   = shim/shm_redirect.c shim/store.c
SHIM_SRC = $(SHIM_C) shim/shm_redirect.h shim/store.h shim/store_format.h shim/exports.map Makefile

.PHONY: all lib test test-exports test-go test-c test-c-asan deps demo bench clean

all: lib

# ---- The shim (C): the preload and the library the Python package calls in process ----
lib: $(LIB)

$(LIB): $(SHIM_SRC)
	@mkdir -p $(BUILD)
	$(CC) $(SHIM_CFLAGS) $(SHIM_LDFLAGS) -o $@ $(SHIM_C)

# C tests link the library directly (it then interposes like a preload).
TEST_C = $(wildcard shim/tests/*.c)
TEST_C_DEPS = $(TEST_C) shim/tests/harness.h shim/shm_redirect.h shim/store_format.h
$(BUILD)/test_shim: $(TEST_C_DEPS) $(LIB)
	$(CC) $(WARN) -O1 -g -o $@ $(TEST_C) -L$(BUILD) -Wl,-rpath,'$$ORIGIN' -lshm_redirect -lpthread

$(BUILD)/asan/libshm_redirect.so: $(SHIM_SRC)
	@mkdir -p $(BUILD)/asan
	$(CC) $(SHIM_CFLAGS) $(SAN) $(SHIM_LDFLAGS) -o $@ $(SHIM_C)

$(BUILD)/asan/test_shim: $(TEST_C_DEPS) $(BUILD)/asan/libshm_redirect.so
	$(CC) $(WARN) $(SAN) -O1 -g -o $@ $(TEST_C) -L$(BUILD)/asan -Wl,-rpath,'$$ORIGIN' -lshm_redirect -lpthread

deps:
	@tests/install-deps.sh

# Shipping: old glibc, arm64, the static Go helper, Lambda layers; one file each.
include mk/arm64.mk mk/oldglibc.mk mk/gocore-bin.mk mk/layer.mk mk/bench.mk mk/dist.mk

# Everything, in order of speed: a red fast test stops the run before the slow suites.
test: deps lib test-readme test-sandbox-shape test-go test-c test-c-asan test-glibc-versions \
	test-sandbox-smoke test-fork-stress \
	test-oldglibc test-errno-glibc test-layer test-lambda test-arm64 test-dist-share \
	test-py test-upstream-hangs-share test-cpython test-cpython-activation test-cpython-context
	@echo "make test: all passed"

# The long matrices, run before resolving a change to what they cover; `make test` runs a fixed
# share of each (test-dist-share, test-lambda): every wheel and the sdist with a rebuild for
# reproducibility (test-dist), every Lambda deployment way x runtime (test-lambda-matrix).
.PHONY: test-matrix
test-matrix: test-dist test-lambda-matrix
	@echo "make test-matrix: all passed"

# The preload exports exactly the interposed functions, unversioned, and carries no Go runtime
# (Go does not survive fork(): a Go sem_open hung forked children in 13 of 100 Pool runs).
EXPORTS = sem_close sem_open sem_unlink shm_open shm_redirect_native_errno shm_redirect_store_dir \
	shm_redirect_store_open shm_unlink statvfs statvfs64
# $(call check-exports,NM,READELF,LIB): LIB exports exactly $(EXPORTS), unversioned, no Go runtime.
check-exports = test "$$($(1) -D --defined-only $(3) | awk '{print $$3}' | sort | xargs)" = "$(EXPORTS)" \
		|| { echo "unexpected exports:"; $(1) -D --defined-only $(3); exit 1; }; \
	! $(1) -D $(3) | grep -iE 'runtime\.|_cgo_|crosscall' || { echo "Go runtime in $(3)"; exit 1; }; \
	! $(2) -V $(3) | grep -q 'Version definition' || { echo "versioned exports in $(3)"; exit 1; }
test-exports: $(LIB)
	@$(call check-exports,nm,readelf,$(LIB))
	@echo "exports: $(EXPORTS) (unversioned, no Go runtime)"

# On the host (root), then in the Lambda-shaped sandbox as uid 993; the tests that need root
# (they switch uids to build hostile directories) skip there and run again as root.
test-c: test-exports $(BUILD)/test_shim test-c-nodlsym
	$(BUILD)/test_shim
	tests/sandbox.sh --devshm=none --ro -- $(abspath $(BUILD))/test_shim
	tests/sandbox.sh --devshm=none --ro --as-root -- $(abspath $(BUILD))/test_shim --needs-root

test-c-asan: $(BUILD)/asan/test_shim
	ASAN_OPTIONS=detect_leaks=1 $(BUILD)/asan/test_shim
	tests/sandbox.sh --devshm=none --ro --env ASAN_OPTIONS=detect_leaks=1 -- $(abspath $(BUILD))/asan/test_shim
	tests/sandbox.sh --devshm=none --ro --as-root --env ASAN_OPTIONS=detect_leaks=1 -- \
		$(abspath $(BUILD))/asan/test_shim --needs-root

# ---- The Go core (core/, core/jsonapi, cmd/shmr-core, pybind/ for gopy) ----

# go test -v with every skip judged (tests/go_tests.sh): on the host as root none may skip; in the
# Lambda-shaped sandbox (no /dev/shm, ext4 /tmp, uid 993) only "needs root" ones, run again as root.
test-go:
	$(GO) vet ./...
	tests/go_tests.sh host
	tests/go_tests.sh sandbox

# ---- The main job, benchmarks ----

# The main job: a Pool failing in the no-/dev/shm sandbox, then working with the preload.
demo: deps lib
	@echo "== Lambda-shaped sandbox (no /dev/shm, read-only /, uid 65534), no preload:"
	@tests/sandbox.sh --devshm=none --ro --uid=65534 -- $(PYTHON) examples/pool_demo.py || true
	@echo "== the same sandbox with LD_PRELOAD=$(abspath $(LIB)):"
	@tests/sandbox.sh --devshm=none --ro --uid=65534 --preload -- $(PYTHON) examples/pool_demo.py

# Benchmarks side by side with native /dev/shm (mk/bench.mk): table, chart, JSON in bench/results.
bench: bench-all

clean:
	rm -rf $(BUILD)

# ---- Sandbox, CPython-suite and fork-stress tests (tests/sandbox.sh; all need root) ----
.PHONY: test-sandbox-shape test-sandbox-smoke test-cpython test-fork-stress test-readme test-errno-glibc \
	test-upstream-hangs test-upstream-hangs-share

# The sandbox itself has Lambda's shape (ext4 /tmp, read-only /, uid 993, limits, PID namespace,
# memory limit, a timeout kills the tree) and leaves nothing on the host. ~10 s.
test-sandbox-shape:
	tests/sandbox_shape.sh

# The store's error numbers case by case against real glibcs: Debian 11's 2.31, this machine's,
# and sid's (the newest, which the store must equal; tests/rootfs.sh builds the roots once).
test-errno-glibc: lib
	tests/errno_glibc.sh $$(tests/rootfs.sh bullseye-amd64) host $$(tests/rootfs.sh sid-amd64)

# The README's figures are bench/results/bench.json's (bench/readme.py; make bench writes them).
test-readme:
	$(PYTHON) bench/readme.py --check

$(BUILD)/fork_stress: tests/fork_stress.c
	@mkdir -p $(BUILD)
	$(CC) $(WARN) -O2 -g -pthread -o $@ $<

# Lock/Queue/Pool/Value/Array/shared_memory x fork/spawn/forkserver x /dev/shm none|ro|noperm:
# fail without the preload, work with it, leave the store empty. ~10 s.
test-sandbox-smoke: lib
	tests/sandbox_smoke.sh

# CPython's multiprocessing + concurrent.futures suites: native /dev/shm vs none+preload,
# same counts required. ~10 min on 2 cores. Logs: $(BUILD)/cpython-logs/.
test-cpython: lib
	tests/cpython_suite.sh

# CPython's own Pool.terminate hang (tests/cpython_known_hangs.txt: the one hang after which the
# suites above rerun a module), natively and through the preload, interleaved: each run passes or
# hangs in that known way, nothing is left, and the preload does not hang more often (one-sided
# Fisher exact test, p < 0.01 fails). 100 rounds ~17 min; make test runs the first 10 (~2 min).
test-upstream-hangs: lib
	UPSTREAM_HANG_ROUNDS=100 tests/upstream_hangs.sh
test-upstream-hangs-share: lib
	UPSTREAM_HANG_ROUNDS=10 tests/upstream_hangs.sh

# 10,000 fork cycles creating/unlinking semaphores and segments while a thread uses them. ~30 s.
test-fork-stress: lib $(BUILD)/fork_stress
	tests/fork_stress.sh 10000

# ---- Python package: the quick local wheel (the wheels to ship: make dist, mk/dist.mk) ----
.PHONY: wheel test-py
WHEEL_DIR ?= wheels

# Offline: setuptools/wheel/pybindgen from Debian, gopy/goimports pinned in go.mod (Go proxy).
# Setuptools works in _pybuild/ (never build/). The tag is manylinux_2_<N>_x86_64, N the newest
# GLIBC_ symbol version any shipped .so needs (setup.py).
wheel: deps
	@mkdir -p $(WHEEL_DIR)
	rm -f $(WHEEL_DIR)/shm_redirect-*.whl
	$(PYTHON) -m pip wheel --no-build-isolation --no-deps --no-index -w $(WHEEL_DIR) .
	@ls -l $(WHEEL_DIR)/shm_redirect-*.whl

# All Python tests (tests/python): builds the wheel once, installs it offline into a fresh venv
# and tests the package, the CLI, fork safety of the Go core and activation (test-activate is
# the activation part alone). ~3 min.
test-py: lib $(BUILD)/shmr-core
	$(PYTHON) -m pytest -q -rs tests/python

# ---- Activation at interpreter start (pybind/shm_redirect/activation/activate.py; need root) ----
.PHONY: test-activate test-cpython-activation test-cpython-modes

# patch/preload/auto x sitecustomize/.pth hooks, every primitive x fork/spawn/forkserver in the
# no-/dev/shm sandbox without LD_PRELOAD; native fast path, off, error handling. ~30 s.
test-activate: lib
	$(PYTHON) -m pytest -q tests/python/test_activate*.py

# CPython's suites with activation at start-up (a venv's shm_redirect.pth) instead of LD_PRELOAD:
# native baseline, pure patch mode, preload (re-exec) mode; same counts required. ~15 min.
# Logs: $(BUILD)/cpython-logs-activation/.
test-cpython-activation: lib
	CPYTHON_ACTIVATION="patch preload" tests/cpython_suite.sh

# Every activation mode that can pass CPython's suites unchanged, against the same baseline:
# patch, patch-export (the main process patched, workers preloaded) and preload. Not patch-pure:
# by construction a child started with -S cannot activate (TestFlags.test_flags fails in it).
# ~20 min; run before resolving a change to activation. Logs: $(BUILD)/cpython-logs-activation/.
test-cpython-modes: lib
	CPYTHON_ACTIVATION="patch patch-export preload" tests/cpython_suite.sh


# ---- The resource tracker (pybind/shm_redirect/mp/resource_tracker.py; needs root) ----
.PHONY: test-tracker

# Real processes in the no-/dev/shm sandbox: normal exit, SIGKILLed trees (new tracker start and
# `shm-redirect clean`), live trees untouched, 10,000 fork cycles under a watchdog. ~1 min.
test-tracker: lib
	$(PYTHON) -m pytest -q -rs tests/python/test_resource_tracker.py

# ---- shm_redirect.get_context(): multiprocessing contexts without /dev/shm, preload or patching ----
.PHONY: test-context test-cpython-context

# Every primitive x fork/spawn/forkserver in the no-/dev/shm sandbox (--ro --uid=993), SHM_REDIRECT=off,
# no LD_PRELOAD; store empty after each case (need root). ~30 s. Then CPython's multiprocessing
# suite against the contexts vs. the same driver natively (tests/cpython_context_suite.sh; same
# run/skip counts, 0 failures). Logs: $(BUILD)/cpython-context-logs/.
test-context: lib
	$(PYTHON) -m pytest -q tests/python/test_context.py
	tests/cpython_context_suite.sh

# The suite half alone (`make test` runs the pytest half within test-py).
test-cpython-context: lib
	tests/cpython_context_suite.sh
