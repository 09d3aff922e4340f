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
NPROC     := $(shell nproc 2>/dev/null || echo 2)

ifeq ($(wildcard $(CUDA_HOME)/include/cuda.h),)
  ifneq ($(filter-out deps clean help,$(or $(MAKECMDGOALS),all)),)
    $(error cuda.h not found in $(CUDA_HOME)/include: install the CUDA toolkit (13.x) or set CUDA_HOME=/path/to/cuda)
  endif
endif

DEBIAN_DEPS := build-essential python3 clang libclang-rt-14-dev libzstd-dev liblz4-dev pkg-config libssl-dev \
               libmicrohttpd-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev openssl curl

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

# Objects are intermediates of pattern chains; keep them so a rebuild recompiles only what changed.
.SECONDARY:

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
		-Wl,-Bsymbolic-functions -Wl,-z,defs -o $@ $(SIMDRV_OBJ) $(LIBGFSIM) $(LIBGFCOMMON) $(LDSAN) $(LDLIBS)
	ln -sf libcuda.so.1 $(LIB)/sim/libcuda.so

$(SIM_NVML): $(SIMNVML_OBJ) $(LIBGFSIM) $(LIBGFCOMMON)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libnvidia-ml.so.1 -Wl,-z,defs -o $@ $(SIMNVML_OBJ) $(LIBGFSIM) \
		$(LIBGFCOMMON) $(LDSAN) $(LDLIBS)
	ln -sf libnvidia-ml.so.1 $(LIB)/sim/libnvidia-ml.so

$(GPUFUSE_BIN): $(CLI_OBJ) $(LIBGFSIM) $(LIBGFCOMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(CLI_OBJ) $(GPUFUSE_LIBS) $(LIBGFSIM) $(LIBGFCOMMON) $(LDSAN) $(LDLIBS) \
		$(GPUFUSE_LDLIBS)

# ---- gpufuse's CUDA runtime (issue 8) --------------------------------------------------------
# build/lib/libcudart.so.13 (SONAME libcudart.so.13, every export under the version node
# libcudart.so.13 as in NVIDIA's) + the libcudart.so link. Its surface is generated from
# cuda_runtime_api.h by tools/gen_cudart_api.py; see docs/cudart.md.
CUDART_SRC := $(wildcard src/cudart/*.c)
CUDART_OBJ := $(CUDART_SRC:%.c=$(OBJ)/%.o) $(OBJ)/gen/cudart_stubs.o
CUDART_GEN := $(GEN)/cudart_stubs.c $(GEN)/cudart_exports.lds $(GEN)/cudart_errors.h \
              $(GEN)/cudart_names.txt
CUDART_LIB := $(LIB)/libcudart.so.13

libs: $(CUDART_LIB)

$(CUDART_GEN) &: tools/gen_cudart_api.py tools/gen_cuda_api.py \
		$(CUDA_HOME)/include/cuda_runtime_api.h $(CUDA_HOME)/include/driver_types.h
	@mkdir -p $(GEN)
	$(PYTHON) tools/gen_cudart_api.py --cuda-home $(CUDA_HOME) --out $(GEN)

$(CUDART_SRC:%.c=$(OBJ)/%.o): $(CUDART_GEN)

$(OBJ)/gen/cudart_stubs.o: $(GEN)/cudart_stubs.c $(CUDART_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(CUDART_LIB): $(CUDART_OBJ) $(LIBGFCOMMON) $(GEN)/cudart_exports.lds
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libcudart.so.13 -Wl,--version-script=$(GEN)/cudart_exports.lds \
		-Wl,-z,defs -o $@ $(CUDART_OBJ) $(LIBGFCOMMON) $(LDSAN) -ldl -lpthread
	ln -sf libcudart.so.13 $(LIB)/libcudart.so

# make bench: <<<>>> through this runtime vs a direct cuLaunchKernel (needs nvcc). RUNPATH finds
# libcudart.so.13 in $(LIB) while LD_LIBRARY_PATH=$(LIB)/sim supplies the driver.
ifneq ($(NVCC),)
BENCHES += $(BUILD)/bench/bench_cudart
$(BUILD)/bench/bench_cudart: bench/bench_cudart.cu $(CUDART_LIB)
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -cudart shared -arch=sm_80 -Xlinker -rpath -Xlinker $(abspath $(LIB)) -o $@ $<
endif

# ---- wire protocol (issue 4) -----------------------------------------------------------------
# libgfwire.a: the wire protocol codec and its transports (tcp://, tls:// with OpenSSL, shm://),
# include/gpufuse/wire.h, docs/wire.md. Anything linking it also needs $(WIRE_LDLIBS).
WIRE_SRC    := $(wildcard src/wire/*.c)
WIRE_OBJ    := $(WIRE_SRC:%.c=$(OBJ)/%.o)
LIBGFWIRE   := $(LIB)/libgfwire.a
WIRE_LDLIBS := -lssl -lcrypto

libs: $(LIBGFWIRE)

$(LIBGFWIRE): $(WIRE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

build/fuzz/bin/fuzz_wire_frame: tests/fuzz/fuzz_wire_frame.c build/fuzz/lib/libgfwire.a \
		build/fuzz/lib/libgfcommon.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< build/fuzz/lib/libgfwire.a build/fuzz/lib/libgfcommon.a \
		$(LDLIBS) $(WIRE_LDLIBS)

$(BUILD)/bench/bench_wire: bench/bench_wire.c $(LIBGFWIRE) $(LIBGFCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fvisibility=default -o $@ $< $(LIBGFWIRE) $(LIBGFCOMMON) $(LDLIBS) \
		$(WIRE_LDLIBS)

# ---- allocator (issue 5) ---------------------------------------------------------------------
# libgfalloc.a: the pool allocator (include/gpufuse/allocator.h, docs/allocator.md), pure C with
# no I/O; needs libgfcommon.a after it (GPU model table, size formatting).
ALLOC_SRC  := $(wildcard src/allocator/*.c)
ALLOC_OBJ  := $(ALLOC_SRC:%.c=$(OBJ)/%.o)
LIBGFALLOC := $(LIB)/libgfalloc.a

libs: $(LIBGFALLOC)

$(LIBGFALLOC): $(ALLOC_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The allocator bench needs no driver; the trace is GPUFUSE_TRACE_DIR or ../shared/data/...
$(BUILD)/bench/bench_allocator: bench/bench_allocator.c $(LIBGFALLOC) $(LIBGFCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fvisibility=default -o $@ $< $(LIBGFALLOC) $(LIBGFCOMMON) $(LDLIBS)

# ---- tests ----------------------------------------------------------------------------------
TEST_MAIN := $(OBJ)/tests/test_main.o

$(BUILD)/tests/unit/%: $(OBJ)/tests/unit/%.o $(TEST_MAIN) $(LIBGFWIRE) $(LIBGFALLOC) $(LIBGFSIM) $(LIBGFCOMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDSAN) $(LDLIBS) $(WIRE_LDLIBS)

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
	$(MAKE) -j$(NPROC) BUILD=build/test SAN=1 tests
	$(MAKE) fuzz-build
	tests/run build/test

# ---- fuzzing (clang + libFuzzer) ------------------------------------------------------------
FUZZ_CFLAGS := $(CFLAGS_BASE) -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -Itests

fuzz-build:
	$(MAKE) BUILD=build/fuzz SAN=fuzz CC=clang build/fuzz/lib/libgfsim.a build/fuzz/lib/libgfcommon.a \
		build/fuzz/lib/libgfwire.a
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
	$(MAKE) all $(BUILD)/demo/sim_demo $(BUILD)/demo/pool_job
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

# The libraries go to PREFIX/lib/gpufuse, off the system's library path on purpose: gpufuse's
# libcuda.so.1 must only stand first for the programs gpufuse run starts (it finds them there).
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/gpufuse/sim
	install -m 0755 $(GPUFUSE_BIN) $(DESTDIR)$(PREFIX)/bin/gpufuse
	install -m 0755 $(CLIENT_LIB) $(CLIENT_NVML) $(CUDART_LIB) $(DESTDIR)$(PREFIX)/lib/gpufuse/
	ln -sf libgpufuse.so $(DESTDIR)$(PREFIX)/lib/gpufuse/libcuda.so.1
	ln -sf libgpufuse.so $(DESTDIR)$(PREFIX)/lib/gpufuse/libcuda.so
	ln -sf libnvidia-ml.so.1 $(DESTDIR)$(PREFIX)/lib/gpufuse/libnvidia-ml.so
	ln -sf libcudart.so.13 $(DESTDIR)$(PREFIX)/lib/gpufuse/libcudart.so
	install -m 0755 $(SIM_CUDA) $(SIM_NVML) $(DESTDIR)$(PREFIX)/lib/gpufuse/sim/
	ln -sf libcuda.so.1 $(DESTDIR)$(PREFIX)/lib/gpufuse/sim/libcuda.so
	ln -sf libnvidia-ml.so.1 $(DESTDIR)$(PREFIX)/lib/gpufuse/sim/libnvidia-ml.so

clean:
	rm -rf build

# ---- client library, limiter, run (issue 3) ---------------------------------------------------
# libgflimiter.a: the limiter (also for the worker). libgpufuse.so: the client library, SONAME
# libcuda.so.1, exporting the whole driver API (generated pass-through + wrappers) with links
# lib/libcuda.so.1 and lib/libcuda.so; lib/libnvidia-ml.so.1: the NVML shim.
LIMITER_SRC   := $(wildcard src/limiter/*.c)
LIMITER_OBJ   := $(LIMITER_SRC:%.c=$(OBJ)/%.o)
CLIENT_SRC    := $(filter-out src/client/nvml_shim.c,$(wildcard src/client/*.c))
CLIENT_OBJ    := $(CLIENT_SRC:%.c=$(OBJ)/%.o)
NVMLSHIM_OBJ  := $(OBJ)/src/client/nvml_shim.o $(OBJ)/src/client/findlib.o
LIBGFLIMITER  := $(LIB)/libgflimiter.a
CLIENT_LIB    := $(LIB)/libgpufuse.so
CLIENT_NVML   := $(LIB)/libnvidia-ml.so.1
CLIENT_LDS    := $(GEN)/client_exports.lds
CLIENT_TESTS  := $(patsubst tests/client/%.c,$(BUILD)/tests/client/%,$(wildcard tests/client/test_*.c))
CLIENT_HELPERS := $(patsubst tests/client/helpers/%.c,$(BUILD)/tests/client/helpers/%,$(wildcard tests/client/helpers/*.c))

libs: $(LIBGFLIMITER) $(CLIENT_LIB) $(CLIENT_NVML)
tests: $(CLIENT_TESTS) $(CLIENT_HELPERS)
# gpufuse run uses the limiter and the driver finder.
CLI_OBJ += $(LIMITER_OBJ) $(OBJ)/src/client/findlib.o
$(GPUFUSE_BIN): $(LIMITER_OBJ) $(OBJ)/src/client/findlib.o

$(LIBGFLIMITER): $(LIMITER_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The driver API's export list plus the marker the driver finder uses to never load itself.
$(CLIENT_LDS): $(GEN)/cuda_exports.lds
	sed 's/^  global:$$/  global:\n    gpufuse_client_marker;/' $< > $@

$(CLIENT_LIB): $(CLIENT_OBJ) $(LIBGFLIMITER) $(LIBGFCOMMON) $(CLIENT_LDS)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libcuda.so.1 -Wl,--version-script=$(CLIENT_LDS) -Wl,-z,defs \
		-o $@ $(CLIENT_OBJ) $(LIBGFLIMITER) $(LIBGFCOMMON) $(LDSAN) $(LDLIBS)
	ln -sf libgpufuse.so $(LIB)/libcuda.so.1
	ln -sf libgpufuse.so $(LIB)/libcuda.so

$(CLIENT_NVML): $(NVMLSHIM_OBJ) $(LIBGFLIMITER) $(LIBGFCOMMON)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libnvidia-ml.so.1 -Wl,-z,defs -o $@ $(NVMLSHIM_OBJ) \
		$(LIBGFLIMITER) $(LIBGFCOMMON) $(LDSAN) $(LDLIBS)
	ln -sf libnvidia-ml.so.1 $(LIB)/libnvidia-ml.so

# Client tests link the client library (DT_RPATH, searched before the runner's
# LD_LIBRARY_PATH=lib/sim) and run on the sim through GPUFUSE_DRIVER.
CLIENT_TEST_LINK = $(LIBGFLIMITER) $(LIBGFCOMMON) -L$(LIB) -Wl,--disable-new-dtags,-rpath,$(abspath $(LIB)) \
		-lcuda -lnvidia-ml $(LDSAN) $(LDLIBS)

$(BUILD)/tests/client/%: $(OBJ)/tests/client/%.o $(TEST_MAIN) $(LIBGFLIMITER) $(LIBGFCOMMON) \
		$(CLIENT_LIB) $(CLIENT_NVML)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(OBJ)/tests/client/$*.o $(TEST_MAIN) $(CLIENT_TEST_LINK)

# Helpers are exec'ed by tests (under gpufuse run, or linked/dlopen'ed several ways).
$(BUILD)/tests/client/helpers/%: $(OBJ)/tests/client/helpers/%.o $(CLIENT_LIB) $(LIBGFCOMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(OBJ)/tests/client/helpers/$*.o $(LIBGFCOMMON) $(LDSAN) $(LDLIBS) \
		$(if $(findstring nolink,$*),,-L$(LIB) -lcuda)

# The cap table runs tests/client/helpers/cuprobe under gpufuse run.
$(BUILD)/bench/bench_client: $(CLIENT_LIB) $(CLIENT_HELPERS) $(GPUFUSE_BIN)

# ---- server, agent, CLI (issue 5) -------------------------------------------------------------
# libgfserver.a: the control plane (src/server: REST API on libmicrohttpd, SQLite store, node
# lifecycle, /metrics); libgfagent.a: the node agent (src/agent: NVML discovery, heartbeats,
# usage, vGPU regions). Both go into the gpufuse binary with the allocator and the limiter.
# The CLI's pool commands (cmd_server/agent/ls.c) and src/common/http_client.c need POOL_LDLIBS.
SERVER_SRC   := $(wildcard src/server/*.c)
SERVER_OBJ   := $(SERVER_SRC:%.c=$(OBJ)/%.o)
AGENT_SRC    := $(wildcard src/agent/*.c)
AGENT_OBJ    := $(AGENT_SRC:%.c=$(OBJ)/%.o)
LIBGFSERVER  := $(LIB)/libgfserver.a
LIBGFAGENT   := $(LIB)/libgfagent.a
POOL_LDLIBS  := -lmicrohttpd -ljansson -lsqlite3 -lcurl -lcrypto
GPUFUSE_LIBS   += $(LIBGFSERVER) $(LIBGFAGENT) $(LIBGFALLOC) $(LIBGFLIMITER)
GPUFUSE_LDLIBS += $(POOL_LDLIBS)

libs: $(LIBGFSERVER) $(LIBGFAGENT)
$(GPUFUSE_BIN): $(LIBGFSERVER) $(LIBGFAGENT) $(LIBGFALLOC) $(LIBGFLIMITER)

$(LIBGFSERVER): $(SERVER_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBGFAGENT): $(AGENT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Server unit tests call the request handler directly (no HTTP) and the request parser.
$(BUILD)/tests/unit/test_server_%: $(OBJ)/tests/unit/test_server_%.o $(TEST_MAIN) $(LIBGFSERVER) \
		$(LIBGFALLOC) $(LIBGFCOMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDSAN) $(LDLIBS) $(POOL_LDLIBS)

# The request parser alone, for libFuzzer.
build/fuzz/bin/fuzz_api_request: tests/fuzz/fuzz_api_request.c src/server/api_request.c \
		build/fuzz/lib/libgfcommon.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_api_request.c src/server/api_request.c \
		build/fuzz/lib/libgfcommon.a $(LDLIBS) -ljansson

# API load bench: starts build/bin/gpufuse server as a second process and loads it.
$(BUILD)/bench/bench_api: bench/bench_api.c $(GPUFUSE_BIN) $(LIBGFCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fvisibility=default -o $@ $< $(LIBGFCOMMON) $(LDLIBS)

# ---- worker and remote backend (issue 4) ------------------------------------------------------
# gpufuse worker (src/worker/ + src/cli/cmd_worker.c) and the client library's remote backend
# (src/client/remote*.c, already in CLIENT_SRC) both link libgfwire.a and OpenSSL. Tests in
# tests/remote/ start workers and run the sim test programs through the remote backend; see
# docs/worker.md, docs/remote.md.
WORKER_SRC   := $(wildcard src/worker/*.c)
WORKER_OBJ   := $(WORKER_SRC:%.c=$(OBJ)/%.o)
REMOTE_TESTS := $(patsubst tests/remote/%.c,$(BUILD)/tests/remote/%,$(wildcard tests/remote/test_*.c))

CLI_OBJ += $(WORKER_OBJ) $(LIBGFWIRE)
$(GPUFUSE_BIN): $(WORKER_OBJ) $(LIBGFWIRE)
$(GPUFUSE_BIN): LDLIBS += $(WIRE_LDLIBS)
$(CLIENT_LIB): $(LIBGFWIRE)
$(CLIENT_LIB): CLIENT_OBJ += $(LIBGFWIRE)
$(CLIENT_LIB): LDLIBS += $(WIRE_LDLIBS)
tests: $(REMOTE_TESTS)

$(BUILD)/tests/remote/%: $(OBJ)/tests/remote/%.o $(TEST_MAIN) $(LIBGFWIRE) $(LIBGFCOMMON) \
		$(CLIENT_LIB) $(GPUFUSE_BIN) $(SIM_TESTS) $(CLIENT_HELPERS)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(OBJ)/tests/remote/$*.o $(TEST_MAIN) $(LIBGFWIRE) $(LIBGFCOMMON) $(LDSAN) \
		$(LDLIBS) $(WIRE_LDLIBS)

# The bench is a remote-mode client itself: linked with the client library (RUNPATH), it starts
# a worker on the sim and measures against raw sockets and memcpy in the same run.
$(BUILD)/bench/bench_remote: bench/bench_remote.c $(CLIENT_LIB) $(LIBGFWIRE) $(LIBGFCOMMON) \
		$(GPUFUSE_BIN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fvisibility=default -o $@ $< $(LIBGFWIRE) $(LIBGFCOMMON) -L$(LIB) \
		-Wl,--disable-new-dtags,-rpath,$(abspath $(LIB)) -lcuda $(LDLIBS) $(WIRE_LDLIBS)

# The worker's request decoding and validation under a fake driver (tests/fuzz/).
build/fuzz/bin/fuzz_worker_request: tests/fuzz/fuzz_worker_request.c $(wildcard src/worker/*.[ch]) \
		src/client/remote_proto.h build/fuzz/lib/libgfwire.a build/fuzz/lib/libgflimiter.a \
		build/fuzz/lib/libgfcommon.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< build/fuzz/lib/libgfwire.a build/fuzz/lib/libgflimiter.a \
		build/fuzz/lib/libgfcommon.a $(LDLIBS) $(WIRE_LDLIBS)

REMOTE_HELPERS := $(patsubst tests/remote/helpers/%.c,$(BUILD)/tests/remote/helpers/%,$(wildcard tests/remote/helpers/*.c))
tests: $(REMOTE_HELPERS)
$(BUILD)/tests/remote/helpers/%: $(OBJ)/tests/remote/helpers/%.o $(CLIENT_LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(OBJ)/tests/remote/helpers/$*.o -L$(LIB) \
		-Wl,--disable-new-dtags,-rpath,$(abspath $(LIB)) -lcuda $(LDSAN) $(LDLIBS)

# ---- dashboard and chargeback (issue 6) -------------------------------------------------------
# The dashboard (web/: plain ES modules + CSS, no build step) is embedded into the gpufuse binary
# by tools/gen_web_assets.py and served at / (src/server/web.c); see docs/dashboard.md. Usage
# samples and chargeback live in src/server/{observe,samples,costs}.c (docs/costs.md). The
# browser test (tests/integration/dashboard.sh) needs Debian's chromium.
DEBIAN_DEPS += chromium
WEB_FILES := $(shell find web -type f ! -name '.*' 2>/dev/null)

$(GEN)/web_assets.h: tools/gen_web_assets.py $(WEB_FILES)
	@mkdir -p $(GEN)
	$(PYTHON) tools/gen_web_assets.py web $@

$(OBJ)/src/server/web.o: $(GEN)/web_assets.h

# ---- metrics and alerts (issue 6) ------------------------------------------------------------
# src/common/prom.c (Prometheus text helpers), src/server/alerts.c + metrics_pool.c are picked up
# by the wildcards above. promtool (Debian's prometheus) checks the exposition, the scrape config
# and the alert rules in tests/integration/pool_metrics.sh.
DEBIAN_DEPS += prometheus
