# mk/layer.mk — AWS Lambda layers and the container-image tree, and their tests.
#
#   make layer        build/layer/shm-redirect-layer-{x86_64,arm64}.zip (+ their unpacked trees)
#   make layer-tree   build/layer/tree: the layer's /opt for this machine's architecture only
#                     (what Dockerfile.example's build stage runs)
#   make test-lambda  the Lambda-shaped end-to-end test (tests/lambda/run.sh), the share `make
#                     test` runs: every deployment way and every x86_64 runtime at least once,
#                     and every way on arm64 3.11 under qemu (LAMBDA_SHARE below)
#   make test-lambda-matrix   every way x every runtime: x86_64 3.10-3.14, arm64 3.11/3.13/3.14
#                     (~20 min, most of it arm64 under qemu); installs from dist/ (make dist)
.PHONY: layer layer-tree test-layer test-lambda test-lambda-matrix

LAYER_DIR = $(BUILD)/layer
LAYER_SRC = lambda/build_layer.py lambda/shm-redirect $(wildcard pybind/shm_redirect/*.py)

layer: $(LAYER_DIR)/shm-redirect-layer-x86_64.zip $(LAYER_DIR)/shm-redirect-layer-arm64.zip
	@ls -l $^

$(LAYER_DIR)/shm-redirect-layer-x86_64.zip: $(LIB) $(BUILD)/shmr-core $(LAYER_SRC)
	@mkdir -p $(LAYER_DIR)
	$(PYTHON) lambda/build_layer.py --lib $(LIB) --core-bin $(BUILD)/shmr-core --zip $@
	$(PYTHON) lambda/build_layer.py --lib $(LIB) --core-bin $(BUILD)/shmr-core --tree $(LAYER_DIR)/x86_64

$(LAYER_DIR)/shm-redirect-layer-arm64.zip: $(BUILD)/aarch64/libshm_redirect.so $(BUILD)/aarch64/shmr-core $(LAYER_SRC)
	@mkdir -p $(LAYER_DIR)
	$(PYTHON) lambda/build_layer.py --lib $(BUILD)/aarch64/libshm_redirect.so --core-bin $(BUILD)/aarch64/shmr-core --zip $@
	$(PYTHON) lambda/build_layer.py --lib $(BUILD)/aarch64/libshm_redirect.so --core-bin $(BUILD)/aarch64/shmr-core --tree $(LAYER_DIR)/arm64

# This machine's architecture only: the native library and helper (Dockerfile.example's build
# stage runs on the platform it builds for). `make layer` itself expects an x86_64 host.
layer-tree: $(LIB) $(BUILD)/shmr-core
	$(PYTHON) lambda/build_layer.py --lib $(LIB) --core-bin $(BUILD)/shmr-core --tree $(LAYER_DIR)/tree

# Layout of the zips, the wrapper, the container tree that Dockerfile.example assembles.
test-layer: layer layer-tree
	$(PYTHON) -m pytest -q tests/lambda/test_layer.py

LAMBDA_SHARE = x86_64:container:3.11 x86_64:wrapper:3.11 x86_64:sitecustomize:3.10 \
	x86_64:image:3.12 x86_64:wrapper:3.12 x86_64:zip:3.13 x86_64:sitecustomize:3.14 x86_64:image:3.14 \
	x86_64:zip:3.14 arm64:wrapper:3.11 arm64:sitecustomize:3.11 arm64:image:3.11 arm64:zip:3.11
test-lambda: layer layer-tree dist-share
	DIST=$(abspath $(BUILD)/dist-share) tests/lambda/run.sh $(LAMBDA_SHARE)

test-lambda-matrix: layer layer-tree dist
	DIST=$(abspath $(DIST)) tests/lambda/run.sh
