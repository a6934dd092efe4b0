# shm-redirect: `make` builds the preload; `make test` runs every test (installs what it needs first).
PYTHON  ?= /usr/bin/python3
CC      ?= cc
BUILD   ?= build
GO      ?= go

WARN      = -std=gnu11 -Wall -Wextra -Werror
SHIM_CFLAGS = $(WARN) -O2 -g -fPIC -fvisibility=hidden
SHIM_LDFLAGS = -shared -Wl,--version-script=shim/exports.map -Wl,-O1 -Wl,--as-needed
SAN     = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

LIB     = $(BUILD)/libshm_redirect.so
SHIM_SRC = shim/shm_redirect.c shim/store_format.h shim/exports.map

.PHONY: all lib test test-go test-c test-c-asan test-sandbox test-cpython test-py deps demo bench clean header-check

all: lib

lib: $(LIB)

$(LIB): $(SHIM_SRC)
	@mkdir -p $(BUILD)
	$(CC) $(SHIM_CFLAGS) $(SHIM_LDFLAGS) -o $@ shim/shm_redirect.c

# C tests link the library directly (it then interposes like a preload).
$(BUILD)/test_shim: shim/tests/test_shim.c $(LIB)
	$(CC) $(WARN) -O1 -g -o $@ $< -L$(BUILD) -Wl,-rpath,'$$ORIGIN' -lshm_redirect -lpthread

$(BUILD)/asan/libshm_redirect.so: $(SHIM_SRC)
	@mkdir -p $(BUILD)/asan
	$(CC) $(SHIM_CFLAGS) $(SAN) $(SHIM_LDFLAGS) -o $@ shim/shm_redirect.c

$(BUILD)/asan/test_shim: shim/tests/test_shim.c $(BUILD)/asan/libshm_redirect.so
	$(CC) $(WARN) $(SAN) -O1 -g -o $@ $< -L$(BUILD)/asan -Wl,-rpath,'$$ORIGIN' -lshm_redirect -lpthread

deps:
	@tests/install-deps.sh

# Everything, in order of speed: a red fast test stops the run before the slow suites.
test: deps lib header-check test-go test-c test-c-asan test-sandbox-smoke test-fork-stress test-cpython
	@echo "make test: all passed"

header-check:
	$(GO) generate ./core && git diff --exit-code -- shim/store_format.h

test-go:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

test-c: $(BUILD)/test_shim
	$(BUILD)/test_shim
	tests/sandbox.sh --devshm=none --ro --uid=65534 -- $(abspath $(BUILD))/test_shim

test-c-asan: $(BUILD)/asan/test_shim
	ASAN_OPTIONS=detect_leaks=1 $(BUILD)/asan/test_shim

# The main job: a Pool failing in the no-/dev/shm sandbox, then working with the preload.
demo: deps lib
	@echo "== Lambda-shaped sandbox (no /dev/shm, read-only /, uid 65534), no preload:"
	@tests/sandbox.sh --devshm=none --ro --uid=65534 -- $(PYTHON) examples/pool_demo.py || true
	@echo "== the same sandbox with LD_PRELOAD=$(abspath $(LIB)):"
	@tests/sandbox.sh --devshm=none --ro --uid=65534 --preload -- $(PYTHON) examples/pool_demo.py

bench: lib
	$(PYTHON) bench/startup.py

clean:
	rm -rf $(BUILD)
