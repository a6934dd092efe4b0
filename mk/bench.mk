# mk/bench.mk — benchmarks side by side with native /dev/shm.
#
#   make bench-all     every workload in every configuration (native /dev/shm; sandbox +
#                      LD_PRELOAD; activation patch and preload; shm_redirect.get_context()),
#                      interleaved rounds; writes bench/results/bench.{md,json,png}. Needs root
#                      (tests/sandbox.sh), cc, python3-numpy and python3-matplotlib; valgrind for
#                      the instruction counts. ~6 min on 2 cores.
#   make bench-quick   the same in seconds (one short round; numbers are noise) into
#                      $(BUILD)/bench-quick: checks that the benchmark itself works.
.PHONY: bench-all bench-quick bench-deps

BENCH_OUT ?= bench/results

# bench-all also rewrites the README's generated figures (bench/readme.py) from the new JSON.
bench-all: lib $(BUILD)/fork_stress bench-deps
	$(PYTHON) bench/run.py --out $(BENCH_OUT)
	$(PYTHON) bench/readme.py --write

bench-quick: lib $(BUILD)/fork_stress bench-deps
	$(PYTHON) bench/run.py --quick --out $(BUILD)/bench-quick

# Debian packages only (the system python's numpy and matplotlib); installed when missing.
bench-deps:
	@$(PYTHON) -c 'import numpy, matplotlib' 2>/dev/null && command -v valgrind >/dev/null \
		|| DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-numpy python3-matplotlib valgrind
