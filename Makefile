# SPDX-License-Identifier: Apache-2.0
# gpufuse: one Makefile for the libraries, the gpufuse binary, the sim, tests, demo and benchmarks.
#
#   make            everything into build/ (optimized, with debug info)
#   make test       deps + a sanitized build in build/test/ + every test; last line "N passed, N failed"
#   make demo       deps + build + the demo on the sim
#   make bench      deps + build + benchmarks (ratios against a baseline measured in the same run)
#   make fuzz       libFuzzer targets (clang) for a longer run than make test gives them
#   make deps       installs missing Debian build dependencies (root) or prints the command
#   make install PREFIX=/usr/local    make clean

CUDA_HOME ?= /usr/local/cuda
PREFIX    ?= /usr/local
BUILD     ?= build
SAN       ?=
CC        ?= cc
PYTHON    ?= python3
GEN       := build/gen

ifeq ($(wildcard $(CUDA_HOME)/include/cuda.h),)
  ifneq ($(filter-out deps clean help,$(or $(MAKECMDGOALS),all)),)
    $(error cuda.h not found in $(CUDA_HOME)/include: install the CUDA toolkit (13.x) or set CUDA_HOME=/path/to/cuda)
  endif
endif

DEBIAN_DEPS := build-essential python3 clang libclang-rt-14-dev libzstd-dev liblz4-dev pkg-config

WARN    := -Wall -Wextra -Werror
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -g -fPIC -fvisibility=hidden $(WARN) \
               -Iinclude -Isrc -I$(GEN) -I$(CUDA_HOME)/include
ifeq ($(SAN),1)
  OPT    := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDSAN  := -fsanitize=address,undefined
else ifeq ($(SAN),fuzz)
  OPT    := -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
  LDSAN  := -fsanitize=address,undefined
else
  OPT    := -O2
  LDSAN  :=
endif
CFLAGS  := $(CFLAGS_BASE) $(OPT) $(EXTRA_CFLAGS)
LDLIBS  := -lzstd -llz4 -lpthread -ldl -lm

OBJ := $(BUILD)/obj
LIB := $(BUILD)/lib

# ---- sources -------------------------------------------------------------------------------
COMMON_SRC  := $(wildcard src/common/*.c)
SIMCORE_SRC := $(wildcard src/sim/ptx*.c src/sim/state*.c)
SIMDRV_SRC  := $(wildcard src/sim/driver*.c)
SIMNVML_SRC := $(wildcard src/sim/nvml*.c)
CLI_SRC     := $(wildcard src/cli/*.c)

COMMON_OBJ  := $(COMMON_SRC:%.c=$(OBJ)/%.o)
SIMCORE_OBJ := $(SIMCORE_SRC:%.c=$(OBJ)/%.o)
SIMDRV_OBJ  := $(SIMDRV_SRC:%.c=$(OBJ)/%.o) $(OBJ)/gen/sim_stubs.o
SIMNVML_OBJ := $(SIMNVML_SRC:%.c=$(OBJ)/%.o)
CLI_OBJ     := $(CLI_SRC:%.c=$(OBJ)/%.o)

GENERATED := $(GEN)/cuda_api.h $(GEN)/cuda_procaddr.h $(GEN)/sim_stubs.c $(GEN)/cuda_exports.lds \
             $(GEN)/gpu_models_data.h

LIBGFCOMMON := $(LIB)/libgfcommon.a
LIBGFSIM    := $(LIB)/libgfsim.a
SIM_CUDA    := $(LIB)/sim/libcuda.so.1
SIM_NVML    := $(LIB)/sim/libnvidia-ml.so.1
GPUFUSE_BIN := $(BUILD)/bin/gpufuse

UNIT_TESTS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(wildcard tests/unit/test_*.c))
SIM_TESTS   := $(patsubst tests/sim/%.c,$(BUILD)/tests/sim/%,$(wildcard tests/sim/test_*.c))
TEST_HELPERS := $(patsubst tests/helpers/%.c,$(BUILD)/tests/helpers/%,$(wildcard tests/helpers/*.c))
BENCHES     := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
FUZZERS     := $(patsubst tests/fuzz/%.c,build/fuzz/bin/%,$(wildcard tests/fuzz/fuzz_*.c))

# PTX next to each test kernel is committed; regenerate it when nvcc is here.
NVCC := $(shell command -v $(CUDA_HOME)/bin/nvcc 2>/dev/null)
KERNEL_CU := $(wildcard tests/kernels/*.cu)
ifneq ($(NVCC),)
  PTX_FILES := $(KERNEL_CU:.cu=.ptx)
endif

.PHONY: all libs sim bin tests test demo bench fuzz fuzz-build deps install clean ptx help
all: libs bin

libs: $(SIM_CUDA) $(SIM_NVML) $(LIBGFCOMMON) $(LIBGFSIM)
sim: $(SIM_CUDA) $(SIM_NVML)
bin: $(GPUFUSE_BIN)
tests: all $(UNIT_TESTS) $(SIM_TESTS) $(TEST_HELPERS)
ptx: $(PTX_FILES)

help:
	@sed -n '2,13p' Makefile | sed 's/^# \{0,1\}//'

# ---- generated code -------------------------------------------------------------------------
$(GEN)/cuda_api.h $(GEN)/cuda_procaddr.h $(GEN)/sim_stubs.c $(GEN)/cuda_exports.lds &: \
		tools/gen_cuda_api.py $(CUDA_HOME)/include/cuda.h $(CUDA_HOME)/include/cudaTypedefs.h
	@mkdir -p $(GEN)
	$(PYTHON) tools/gen_cuda_api.py --cuda-home $(CUDA_HOME) --out $(GEN)

$(GEN)/gpu_models_data.h: tools/gen_gpu_models.py data/gpu_models.csv
	@mkdir -p $(GEN)
	$(PYTHON) tools/gen_gpu_models.py data/gpu_models.csv $@

tests/kernels/%.ptx: tests/kernels/%.cu
	$(NVCC) -ptx -arch=sm_80 $< -o $@

# ---- objects --------------------------------------------------------------------------------
$(OBJ)/%.o: %.c $(GENERATED)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(OBJ)/gen/sim_stubs.o: $(GEN)/sim_stubs.c $(GENERATED)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -D__CUDA_API_VERSION_INTERNAL -Wno-deprecated-declarations -c $< -o $@

$(OBJ)/tests/%.o: tests/%.c $(GENERATED)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fvisibility=default -Itests -MMD -MP -c $< -o $@

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)

# ---- libraries ------------------------------------------------------------------------------
$(LIBGFCOMMON): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBGFSIM): $(SIMCORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SIM_CUDA): $(SIMDRV_OBJ) $(LIBGFSIM) $(LIBGFCOMMON) $(GEN)/cuda_exports.lds
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libcuda.so.1 -Wl,--version-script=$(GEN)/cuda_exports.lds \
		-Wl,-z,defs -o $@ $(SIMDRV_OBJ) $(LIBGFSIM) $(LIBGFCOMMON) $(LDSAN) $(LDLIBS)
	ln -sf libcuda.so.1 $(LIB)/sim/libcuda.so

$(SIM_NVML): $(SIMNVML_OBJ) $(LIBGFSIM) $(LIBGFCOMMON)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libnvidia-ml.so.1 -Wl,-z,defs -o $@ $(SIMNVML_OBJ) $(LIBGFSIM) \
		$(LIBGFCOMMON) $(LDSAN) $(LDLIBS)
	ln -sf libnvidia-ml.so.1 $(LIB)/sim/libnvidia-ml.so

$(GPUFUSE_BIN): $(CLI_OBJ) $(LIBGFSIM) $(LIBGFCOMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(CLI_OBJ) $(LIBGFSIM) $(LIBGFCOMMON) $(LDSAN) $(LDLIBS)

# ---- tests ----------------------------------------------------------------------------------
TEST_MAIN := $(OBJ)/tests/test_main.o

$(BUILD)/tests/unit/%: $(OBJ)/tests/unit/%.o $(TEST_MAIN) $(LIBGFSIM) $(LIBGFCOMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDSAN) $(LDLIBS)

$(BUILD)/tests/sim/%: $(OBJ)/tests/sim/%.o $(TEST_MAIN) $(LIBGFSIM) $(LIBGFCOMMON) $(SIM_CUDA) $(SIM_NVML)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(OBJ)/tests/sim/$*.o $(TEST_MAIN) $(LIBGFSIM) $(LIBGFCOMMON) \
		-L$(LIB)/sim -lcuda -lnvidia-ml $(LDSAN) $(LDLIBS)

$(BUILD)/tests/helpers/%: $(OBJ)/tests/helpers/%.o $(LIBGFSIM) $(LIBGFCOMMON) $(SIM_CUDA) $(SIM_NVML)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(OBJ)/tests/helpers/$*.o $(LIBGFSIM) $(LIBGFCOMMON) \
		-L$(LIB)/sim -lcuda -lnvidia-ml $(LDSAN) $(LDLIBS)

# make test: the sanitized flavor in build/test, the fuzzers briefly, then every test.
test: deps
	$(MAKE) BUILD=build/test SAN=1 tests
	$(MAKE) fuzz-build
	tests/run build/test

# ---- fuzzing (clang + libFuzzer) ------------------------------------------------------------
FUZZ_CFLAGS := $(CFLAGS_BASE) -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -Itests

fuzz-build:
	$(MAKE) BUILD=build/fuzz SAN=fuzz CC=clang build/fuzz/lib/libgfsim.a build/fuzz/lib/libgfcommon.a
	$(MAKE) BUILD=build/fuzz SAN=fuzz CC=clang $(FUZZERS)

build/fuzz/bin/%: tests/fuzz/%.c build/fuzz/lib/libgfsim.a build/fuzz/lib/libgfcommon.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< build/fuzz/lib/libgfsim.a build/fuzz/lib/libgfcommon.a $(LDLIBS)

FUZZ_SECONDS ?= 60
fuzz: fuzz-build
	@for f in $(FUZZERS); do n=$$(basename $$f); n=$${n#fuzz_}; \
	  mkdir -p build/fuzz/corpus/$$n; \
	  echo "fuzzing $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -timeout=5 build/fuzz/corpus/$$n tests/fuzz/corpus/$$n || exit 1; \
	done

# ---- demo, bench ----------------------------------------------------------------------------
demo: deps
	$(MAKE) all $(BUILD)/demo/sim_demo
	tools/demo.sh $(BUILD)

$(BUILD)/demo/%: demo/%.c $(SIM_CUDA) $(SIM_NVML)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fvisibility=default -o $@ $< -L$(LIB)/sim -lcuda -lnvidia-ml $(LDSAN) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(SIM_CUDA) $(LIBGFCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fvisibility=default -o $@ $< $(LIBGFCOMMON) -L$(LIB)/sim -lcuda $(LDLIBS)

bench: deps
	$(MAKE) all $(BENCHES)
	@for b in $(BENCHES); do \
	  echo "== $$(basename $$b)"; \
	  GPUFUSE_TEST_DIR=$(CURDIR) GPUFUSE_SIM_STATE=$$(mktemp -u /tmp/gf-bench-XXXXXX) \
	    LD_LIBRARY_PATH=$(LIB)/sim $$b || exit 1; \
	done

# ---- deps, install, clean -------------------------------------------------------------------
deps:
	@missing=""; for p in $(DEBIAN_DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "installing:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
	  echo "missing Debian packages; run: sudo apt-get update && sudo apt-get install -y$$missing"; \
	  exit 1; \
	fi

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/gpufuse/sim
	install -m 0755 $(GPUFUSE_BIN) $(DESTDIR)$(PREFIX)/bin/gpufuse
	install -m 0755 $(SIM_CUDA) $(SIM_NVML) $(DESTDIR)$(PREFIX)/lib/gpufuse/sim/
	ln -sf libcuda.so.1 $(DESTDIR)$(PREFIX)/lib/gpufuse/sim/libcuda.so
	ln -sf libnvidia-ml.so.1 $(DESTDIR)$(PREFIX)/lib/gpufuse/sim/libnvidia-ml.so

clean:
	rm -rf build
