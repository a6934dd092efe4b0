# mk/gocore-bin.mk — included by the Makefile: shmr-core, the Go core as a static executable.
#
# cmd/shmr-core answers the four calls of ./pybind (`shmr-core FN JSON-ARGS`, one JSON line) for
# the Python package where its gopy extension is missing or cannot load (the universal wheel, the
# Lambda layer); see pybind/shm_redirect/store/gocore.py. CGO_ENABLED=0 makes it static: it runs
# on any Linux of its architecture. setup.py builds each wheel's copy with this recipe, into a
# BUILD of its own; no build id, so a rebuild gives the same bytes (make dist-repro).
.PHONY: gocore-bin

GOCORE_BIN_SRC   = $(filter-out %_test.go,$(wildcard cmd/shmr-core/*.go core/*.go core/internal/*/*.go pybind/*.go)) go.mod go.sum
GOCORE_BIN_BUILD = CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags='-s -w -buildid='

gocore-bin: $(BUILD)/shmr-core $(BUILD)/aarch64/shmr-core

$(BUILD)/shmr-core: $(GOCORE_BIN_SRC)
	@mkdir -p $(@D)
	$(GOCORE_BIN_BUILD) -o $@ ./cmd/shmr-core

$(BUILD)/aarch64/shmr-core: $(GOCORE_BIN_SRC)
	@mkdir -p $(@D)
	GOOS=linux GOARCH=arm64 $(GOCORE_BIN_BUILD) -o $@ ./cmd/shmr-core
