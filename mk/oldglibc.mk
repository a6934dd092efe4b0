# mk/oldglibc.mk — included by the Makefile: the preload on old glibc (2.17+; Lambda's Amazon Linux 2
# has 2.26). See tests/oldglibc/ and core/STORE.md "Old glibc".
.PHONY: test-glibc-versions test-oldglibc test-c-nodlsym

OLDGLIBC      = $(BUILD)/oldglibc-check
GLIBC_MAX     = 2.17

# No symbol version newer than GLIBC_2.17, DT_NEEDED only libc.so.6, dlsym weak: x86_64 and aarch64.
test-glibc-versions: $(LIB) $(ARM64_LIB)
	tests/oldglibc/glibc_versions.sh $(GLIBC_MAX) $(LIB) $(ARM64_LIB)

# The no-dlsym path (libdl not loaded before glibc 2.34), forced at compile time so the C tests
# run it here: natively (sem_*/shm_* by the store code on /dev/shm) and in the sandbox.
$(OLDGLIBC)/nodlsym/libshm_redirect.so: $(SHIM_SRC)
	@mkdir -p $(OLDGLIBC)/nodlsym
	$(CC) $(SHIM_CFLAGS) -DSHMR_FORCE_NO_DLSYM $(SHIM_LDFLAGS) -o $@ $(SHIM_C)

$(OLDGLIBC)/nodlsym/test_shim: $(TEST_C_DEPS) $(OLDGLIBC)/nodlsym/libshm_redirect.so
	$(CC) $(WARN) -DSHMR_FORCE_NO_DLSYM -O1 -g -o $@ $(TEST_C) -L$(OLDGLIBC)/nodlsym \
		-Wl,-rpath,'$$ORIGIN' -lshm_redirect -lpthread

test-c-nodlsym: $(OLDGLIBC)/nodlsym/test_shim
	$(OLDGLIBC)/nodlsym/test_shim
	tests/sandbox.sh --devshm=none --ro -- $(abspath $(OLDGLIBC))/nodlsym/test_shim
	tests/sandbox.sh --devshm=none --ro --as-root -- $(abspath $(OLDGLIBC))/nodlsym/test_shim --needs-root

# A C program for glibc 2.31 that loads no libdl (tests/oldglibc/nolibdl.c says how it is built).
$(OLDGLIBC)/nolibdl: tests/oldglibc/nolibdl.c
	@mkdir -p $(OLDGLIBC)
	$(CC) $(WARN) -O1 -g -fno-stack-protector -nostartfiles -Wl,-e,nolibdl_start -o $@ $<
	tests/oldglibc/glibc_versions.sh $(GLIBC_MAX) $@

# In Debian bullseye (glibc 2.31, Python 3.9), chrooted: start-up, multiprocessing with and
# without /dev/shm, no libdl, store empty afterwards (tests/oldglibc/run.sh). ~15 s (the first
# run builds the rootfs: a few minutes).
test-oldglibc: $(LIB) $(OLDGLIBC)/nolibdl test-glibc-versions
	tests/oldglibc/run.sh
