# mk/gocore-bin.mk — included by the Makefile: shmr-core, the Go core as a static executable.
#
# cmd/shmr-core answers the four calls of ./pybind (`shmr-core FN JSON-ARGS`, one JSON line) for
# the Python package where its gopy extension is missing or cannot load (another CPython, arm64,
# glibc < 2.34 as on Amazon Linux 2); see pybind/shm_redirect/store/gocore.py. CGO_ENABLED=0 makes it
# static: it runs on any Linux of its architecture. The wheel builds its own copy (setup.py).
.PHONY: gocore-bin

GOCORE_BIN_SRC   = $(filter-out %_test.go,$(wildcard cmd/shmr-core/*.go core/*.go core/internal/*/*.go pybind/*.go)) go.mod go.sum
GOCORE_BIN_BUILD = CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags='-s -w'

gocore-bin: $(BUILD)/shmr-core $(BUILD)/aarch64/shmr-core

$(BUILD)/shmr-core: $(GOCORE_BIN_SRC)
	@mkdir -p $(@D)
	$(GOCORE_BIN_BUILD) -o $@ ./cmd/shmr-core

$(BUILD)/aarch64/shmr-core: $(GOCORE_BIN_SRC)
	@mkdir -p $(@D)
	GOOS=linux GOARCH=arm64 $(GOCORE_BIN_BUILD) -o $@ ./cmd/shmr-core
