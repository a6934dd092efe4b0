# mk/dist.mk — what `pip install shm-redirect` installs: the wheels and the sdist (packaging/).
#
#   make dist          dist/: a wheel per CPython x CPU of packaging/targets.py (the Go core's
#                      extension built against that CPython's headers with zig cc for glibc
#                      2.17), a universal py3-none wheel per CPU, the offline sdist. ~2 min warm;
#                      the Debian roots of the targets are built once (tests/rootfs.sh).
#   make test-dist     make dist, then tests/dist/test_dist.py: auditwheel, objdump, twine, pip's
#                      choice for 3.10-3.15 x x86_64/aarch64, each wheel's Go core on its own
#                      interpreter and CPU (qemu) in the no-/dev/shm sandbox; then dist-repro.
#   make dist-repro    a second build from a fresh clone elsewhere, with empty Go and zig
#                      caches: every file of dist/ must come out byte for byte the same.
#   make test-dist-share   what `make test` runs: the same checks on DIST_SHARE's targets only
#                      (every x86_64 CPython, and aarch64 3.11, whose root the arm64 tests build
#                      anyway), without dist-repro.
.PHONY: dist dist-tools test-dist dist-repro dist-share test-dist-share

DIST       ?= dist
DIST_TOOLS  = $(BUILD)/dist-tools
DIST_PY     = $(DIST_TOOLS)/bin/python
DIST_SHARE  = x86_64:3.10,x86_64:3.11,x86_64:3.12,x86_64:3.13,x86_64:3.14,x86_64:3.15,aarch64:3.11

# zig, auditwheel and twine from PyPI, pinned, in a venv of their own (never the package's deps).
dist-tools: $(DIST_TOOLS)/.installed
$(DIST_TOOLS)/.installed: packaging/requirements.txt
	rm -rf $(DIST_TOOLS)
	$(PYTHON) -m venv $(DIST_TOOLS)
	$(DIST_PY) -m pip install -q -r packaging/requirements.txt
	touch $@

dist: deps dist-tools
	rm -rf $(DIST)
	$(DIST_PY) packaging/build_dist.py --out $(DIST) $(if $(DIST_ONLY),--only $(DIST_ONLY))
	@ls -l $(DIST)

test-dist: dist
	DIST=$(abspath $(DIST)) $(PYTHON) -m pytest -q tests/dist/test_dist.py
	@$(MAKE) --no-print-directory dist-repro

# The share's own dist (what test-lambda installs from too): built once per make run.
dist-share:
	@$(MAKE) --no-print-directory dist DIST=$(BUILD)/dist-share DIST_ONLY=$(DIST_SHARE)

test-dist-share: dist-share
	DIST=$(abspath $(BUILD)/dist-share) DIST_ONLY=$(DIST_SHARE) $(PYTHON) -m pytest -q tests/dist/test_dist.py

REPRO = $(BUILD)/dist-repro
# It rebuilds HEAD: uncommitted changes would differ by design, so they are refused.
dist-repro:
	@test -z "$$(git status --porcelain)" || { echo "dist-repro: the checkout has changes; commit them first" >&2; exit 1; }
	rm -rf $(REPRO) && git clone -q . $(REPRO)/src
	mkdir -p $(REPRO)/src/build && ln -s $(abspath $(BUILD)/rootfs) $(REPRO)/src/build/rootfs
	cd $(REPRO)/src && GOCACHE=$(abspath $(REPRO))/gocache ZIG_GLOBAL_CACHE_DIR=$(abspath $(REPRO))/zig \
		ZIG_LOCAL_CACHE_DIR=$(abspath $(REPRO))/zig $(abspath $(DIST_PY)) packaging/build_dist.py --out $(abspath $(REPRO))/dist
	test "$$(ls $(DIST))" = "$$(ls $(REPRO)/dist)"
	cd $(DIST) && for f in *; do cmp "$$f" $(abspath $(REPRO))/dist/"$$f" || exit 1; done
	@echo "dist-repro: $$(ls $(DIST) | wc -l) files, byte for byte the same from $(REPRO)/src"
