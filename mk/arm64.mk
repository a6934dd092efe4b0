# mk/arm64.mk — included by the Makefile: arm64 (AWS Graviton) cross-build, tested under qemu-user.
#
#   make lib-arm64    build/aarch64/libshm_redirect.so (aarch64-linux-gnu-gcc, the same flags as
#                     $(LIB)), with the exports checked as test-exports does
#   make test-arm64   everything under qemu-aarch64 (binfmt_misc), in the arm64 Debian bookworm
#                     root of tests/rootfs.sh, in tests/sandbox.sh without /dev/shm:
#                     the shim's C tests, the Go tests (GOARCH=arm64, CGO_ENABLED=0), Python
#                     multiprocessing with the arm64 preload, the Python package in patch mode.
#                     Driver: tests/arm64/run.sh. ~3 min on 2 cores.
#
# Needs (Debian): gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static binfmt-support
# (tests/rootfs.sh installs the last two and registers qemu-aarch64).
.PHONY: lib-arm64 test-arm64 test-arm64-exports arm64-tests

ARM64_CC     ?= aarch64-linux-gnu-gcc
ARM64_NM     ?= aarch64-linux-gnu-nm
ARM64_READELF ?= aarch64-linux-gnu-readelf
ARM64_BUILD   = $(BUILD)/aarch64
ARM64_LIB     = $(ARM64_BUILD)/libshm_redirect.so

lib-arm64: $(ARM64_LIB)

# The recipe of $(LIB) with the cross compiler; the export check runs on every build.
$(ARM64_LIB): $(SHIM_SRC) mk/arm64.mk
	@mkdir -p $(ARM64_BUILD)
	$(ARM64_CC) $(SHIM_CFLAGS) $(SHIM_LDFLAGS) -o $@ $(SHIM_C)
	@$(MAKE) -s --no-print-directory test-arm64-exports

# test-exports for the aarch64 build (the cross binutils: no reliance on the host nm's targets).
test-arm64-exports:
	@$(ARM64_READELF) -h $(ARM64_LIB) | grep -q 'Machine:.*AArch64' \
		|| { echo "$(ARM64_LIB) is not an AArch64 ELF"; exit 1; }
	@$(call check-exports,$(ARM64_NM),$(ARM64_READELF),$(ARM64_LIB))
	@echo "arm64 exports: $(EXPORTS) (unversioned, no Go runtime, AArch64)"

# The shim's C tests, linked against the arm64 library as $(BUILD)/test_shim is against $(LIB).
$(ARM64_BUILD)/test_shim: $(TEST_C_DEPS) $(ARM64_LIB)
	$(ARM64_CC) $(WARN) -O1 -g -o $@ $(TEST_C) -L$(ARM64_BUILD) -Wl,-rpath,'$$ORIGIN' -lshm_redirect -lpthread

# Go tests compile C helpers at run time (core: the glibc sem_* client core/testdata/semc.c;
# tests/interop: `make` for the preload and `cc` for semclient.c). The arm64
# root has no compiler, so they are cross-built here and tests/arm64/fakebin/{cc,make} hand them
# out, looked up by the sha256 of the source (a changed source is an error, never a stale binary).
ARM64_PREBUILT = $(ARM64_BUILD)/prebuilt
$(ARM64_PREBUILT)/stamp: core/testdata/semc.c tests/interop/testdata/semclient.c mk/arm64.mk
	@rm -rf $(ARM64_PREBUILT); mkdir -p $(ARM64_PREBUILT)
	$(ARM64_CC) -O1 -pthread -o $(ARM64_PREBUILT)/$$(sha256sum < core/testdata/semc.c | cut -c1-64) core/testdata/semc.c
	$(ARM64_CC) -std=gnu11 -Wall -Werror -o $(ARM64_PREBUILT)/$$(sha256sum < tests/interop/testdata/semclient.c | cut -c1-64) \
		tests/interop/testdata/semclient.c -lpthread
	@touch $@

# Static arm64 test binaries of every Go package with tests (none needs cgo). Always re-run:
# go's own cache makes an unchanged package a no-op.
# Every package with tests, as tests/go_tests.sh finds them (none may be forgotten here).
ARM64_GO_PKGS = $(patsubst $(CURDIR)/%,%,$(shell $(GO) list -f '{{if .TestGoFiles}}{{.Dir}}{{end}}' ./...))
arm64-tests: $(ARM64_BUILD)/test_shim $(ARM64_PREBUILT)/stamp
	@for p in $(ARM64_GO_PKGS); do \
		echo "CGO_ENABLED=0 GOARCH=arm64 $(GO) test -c -o $(ARM64_BUILD)/$$(echo $$p | tr / _).test ./$$p"; \
		CGO_ENABLED=0 GOARCH=arm64 $(GO) test -c -o $(ARM64_BUILD)/$$(echo $$p | tr / _).test ./$$p || exit 1; \
	done

test-arm64: lib-arm64 arm64-tests
	ARM64_ROOT=$$(tests/rootfs.sh bookworm-arm64) \
		tests/arm64/run.sh $(abspath $(ARM64_BUILD))
