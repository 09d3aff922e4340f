#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make demo: shows gpufuse's GPU model table, then runs the demo program on the sim (two
# simulated GPUs, an H100 and a T4) — or on the real driver when GPUFUSE_DEMO_REAL=1.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export GPUFUSE_TEST_DIR=$root
echo "== gpufuse models"
"$build/bin/gpufuse" models
echo
if [ "${GPUFUSE_DEMO_REAL:-0}" = 1 ]; then
    echo "== the demo on the real driver"
    exec "$build/demo/sim_demo"
fi
state=$(mktemp -u /tmp/gpufuse-demo-XXXXXX)
trap 'rm -f "$state"' EXIT
echo "== the demo on the sim (GPUFUSE_SIM_GPUS=${GPUFUSE_SIM_GPUS:-H100,T4})"
GPUFUSE_SIM_GPUS=${GPUFUSE_SIM_GPUS:-H100,T4} GPUFUSE_SIM_STATE=$state \
    LD_LIBRARY_PATH=$build/lib/sim "$build/demo/sim_demo"

sim_env=(GPUFUSE_SIM_GPUS=${GPUFUSE_SIM_GPUS:-H100,T4} GPUFUSE_SIM_STATE=$state
         GPUFUSE_DRIVER=$root/$build/lib/sim/libcuda.so.1
         GPUFUSE_NVML=$root/$build/lib/sim/libnvidia-ml.so.1)

echo
echo "== a vGPU: gpufuse run --vram 4Gi --compute-percent 50 (the same program sees a 4 GiB GPU)"
env "${sim_env[@]}" "$build/bin/gpufuse" run --vram 4Gi --compute-percent 50 -- \
    "$build/demo/sim_demo" | sed -n '/Running the test kernels/,/cuMemGetInfo/p'

# A runtime-API program (cudaMalloc, <<<>>>) built with nvcc -cudart shared runs on gpufuse's
# own libcudart.so.13; NVIDIA's cannot run on the sim.
nvcc=${CUDA_HOME:-/usr/local/cuda}/bin/nvcc
if [ -x "$nvcc" ]; then
    echo
    echo "== a CUDA runtime program (tests/runtime/vector_add.cu, nvcc -cudart shared) on gpufuse's libcudart"
    exe=$build/demo/rt_vector_add
    if [ ! -x "$exe" ] || [ tests/runtime/vector_add.cu -nt "$exe" ]; then
        "$nvcc" -arch=sm_80 -cudart shared -Itests/runtime tests/runtime/vector_add.cu -o "$exe"
    fi
    env "${sim_env[@]}" LD_LIBRARY_PATH=$build/lib/sim:$build/lib "$exe"
    echo
    echo "== the same program in a 1 GiB vGPU"
    env "${sim_env[@]}" "$build/bin/gpufuse" run --vram 1Gi -- "$exe"
else
    echo "(nvcc not found: skipping the CUDA runtime program)"
fi
