#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make demo: shows gpufuse's GPU model table, then runs the demo program on the sim (two
# simulated GPUs, an H100 and a T4) — or on the real driver when GPUFUSE_DEMO_REAL=1 — then a
# vGPU with gpufuse run, a CUDA runtime program, and the pool: a server and two agents (two
# "nodes" on this machine) serving three workloads at once through gpufuse run --server.
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
pool=$(mktemp -d /tmp/gpufuse-demo-pool-XXXXXX)
pool_pids=()
# Everything the demo started stops on any exit (an error, Ctrl-C): jobs first, then the
# agents (which stop their workers), then the server.
cleanup() {
    local p
    set +e
    for p in "${pool_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pool_pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$pool"
    rm -f "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
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
    echo
    echo "== the same program on a remote vGPU (a gpufuse worker on the sim; the client has no driver)"
    rm -f "$build/demo/rt_worker.addr"
    env "${sim_env[@]}" "$build/bin/gpufuse" worker --listen tcp://127.0.0.1:0 \
        --ready-file "$build/demo/rt_worker.addr" >"$build/demo/rt_worker.log" 2>&1 &
    rt_worker=$!
    for _ in $(seq 1 100); do [ -s "$build/demo/rt_worker.addr" ] && break; sleep 0.05; done
    env GPUFUSE_DRIVER=/nonexistent GPUFUSE_NVML=/nonexistent \
        "$build/bin/gpufuse" run --remote "$(head -n 1 "$build/demo/rt_worker.addr")" --vram 1Gi -- "$exe"
    kill -TERM "$rt_worker"
    wait "$rt_worker" || true
else
    echo "(nvcc not found: skipping the CUDA runtime program)"
fi

# ---- the pool: a server, two agents ("nodes" with their own sims), three workloads at once ----
echo
echo "== the pool: gpufuse server + two agents on this machine (node-a: 2 x H100, node-b: 2 x T4)"
gf=$root/$build/bin/gpufuse
export GPUFUSE_SHM_DIR=$pool/shm GPUFUSE_DRIVER=$root/$build/lib/sim/libcuda.so.1 \
    GPUFUSE_NVML=$root/$build/lib/sim/libnvidia-ml.so.1
mkdir -p "$GPUFUSE_SHM_DIR"
"$gf" server --data "$pool/data" --listen 127.0.0.1:0 >"$pool/server.log" 2>&1 &
pool_pids+=($!)
for _ in $(seq 1 100); do [ -s "$pool/data/server.url" ] && break; sleep 0.1; done
[ -s "$pool/data/server.url" ] || { echo "the server did not start:"; cat "$pool/server.log"; exit 1; }
export GPUFUSE_SERVER=$(cat "$pool/data/server.url") GPUFUSE_TOKEN_FILE=$pool/data/admin.token
for _ in $(seq 1 50); do curl -sf -o /dev/null "$GPUFUSE_SERVER/healthz" && break; sleep 0.1; done
start_node() { # NAME SIM_GPUS
    "$gf" token create --node "$1" >"$pool/$1.token"
    GPUFUSE_SIM_GPUS=$2 GPUFUSE_SIM_STATE=$pool/sim-$1 \
        "$gf" agent --token-file "$pool/$1.token" --node-name "$1" --interval 500ms \
        --worker-listen tcp://127.0.0.1:0 >"$pool/agent-$1.log" 2>&1 &
    pool_pids+=($!)
}
start_node node-a H100:2
start_node node-b T4:2
ready_nodes() { [ "$("$gf" ls nodes -o json 2>/dev/null | grep -o '"status": *"Ready"' | wc -l)" -ge 2 ]; }
for _ in $(seq 1 100); do ready_nodes && break; sleep 0.1; done
ready_nodes || { echo "the agents did not register:"; tail -5 "$pool"/agent-*.log; exit 1; }
"$gf" ls nodes
echo

job=$root/$build/demo/pool_job
echo "== three workloads at once through gpufuse run --server:"
echo "   train-a  (node-a, local): --model H100 --vram 20Gi --compute-percent 40"
echo "   train-b  (node-a, local): --model H100 --vram 30Gi --compute-percent 30  (binpack: same H100)"
echo "   infer-r  (a machine without GPUs: no driver, no NVML): --remote --model T4 --vram 4Gi"
on_a=(env GPUFUSE_SIM_GPUS=H100:2 GPUFUSE_SIM_STATE="$pool/sim-node-a")
"${on_a[@]}" "$gf" run --server "$GPUFUSE_SERVER" --name train-a --model H100 --vram 20Gi --compute-percent 40 -- \
    "$job" train-a 5 2048 >"$pool/train-a.out" 2>&1 &
pool_pids+=($!); pid_a=$!
"${on_a[@]}" "$gf" run --server "$GPUFUSE_SERVER" --name train-b --model H100 --vram 30Gi --compute-percent 30 -- \
    "$job" train-b 5 4096 >"$pool/train-b.out" 2>&1 &
pool_pids+=($!); pid_b=$!
env GPUFUSE_DRIVER=/nonexistent GPUFUSE_NVML=/nonexistent \
    "$gf" run --server "$GPUFUSE_SERVER" --name infer-r --remote --model T4 --vram 4Gi --compute-percent 50 -- \
    "$job" infer-r 5 512 >"$pool/infer-r.out" 2>&1 &
pool_pids+=($!); pid_r=$!
all_running() { [ "$(grep -l "running vector_add" "$pool"/*.out 2>/dev/null | wc -l)" -ge 3 ]; }
for _ in $(seq 1 150); do all_running && break; sleep 0.1; done
sleep 1.2 # one more heartbeat: the agents report the vGPUs' VRAM use
echo
echo "== gpufuse ls gpus (while they run: two vGPUs share one H100, one T4 serves the remote job)"
"$gf" ls gpus
echo
"$gf" ls workloads
rc=0
wait "$pid_a" || rc=1
wait "$pid_b" || rc=1
wait "$pid_r" || rc=1
echo
cat "$pool/train-a.out" "$pool/train-b.out" "$pool/infer-r.out"
echo
sleep 1.2 # the agents' next heartbeat
echo "== gpufuse ls gpus (after: every workload released when its command exited)"
"$gf" ls gpus
[ $rc = 0 ] || { echo "a workload failed (see above)"; exit 1; }
