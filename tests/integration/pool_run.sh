#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# gpufuse run --server: a vGPU from the pool. Two agents (nodes n1: H100:2, n2: T4), each with
# its own sim and a worker it starts (--worker-listen). A client on n1 (same sim state) runs
# locally in the region n1's agent made: cuMemGetInfo shows the allocated VRAM, kernels run,
# --gpus 2 shows two devices, the workload is released when the command exits or is signalled,
# and a refusal prints the server's "why not". A client on a machine without GPUs
# (GPUFUSE_DRIVER/NVML=/nonexistent) runs through the node's agent-started worker with correct
# kernel results and the allocated limit; the worker comes back after being killed.
source "$(dirname "$0")/pool_lib.bash"
need_tools curl python3
export GPUFUSE_TEST_DIR=$root
probe=$build/tests/client/helpers/cuprobe
if [ ! -x "$probe" ]; then
    echo "FAIL setup: $probe missing; build the tests first (make tests)"
    exit 1
fi
# Workers the agents start find the sim through GPUFUSE_DRIVER.
export GPUFUSE_DRIVER=$build/lib/sim/libcuda.so.1
export GPUFUSE_RUN_WAIT=20s

start_server "$tmp/data" --heartbeat-timeout 3s
start_agent n1 "H100:2" --worker-listen tcp://127.0.0.1:0
agent1=$AGENT_PID
start_agent n2 "T4" --worker-listen tcp://127.0.0.1:0
agent2=$AGENT_PID
wait_for 15 node_status_is n1 Ready && wait_for 15 node_status_is n2 Ready ||
    { fail run/setup "nodes not Ready: $BODY; $(tail -5 "$tmp/agent-n1.log")"; finish; }
api GET /api/v1/nodes/n2
addr2=$(jget "$BODY" 'd["address"]')
[[ $addr2 == tcp://127.0.0.1:* ]] && pass run/agent_reports_worker_address ||
    fail run/agent_reports_worker_address "node n2: $BODY"

export GPUFUSE_TOKEN=$TOKEN
on_n1=(env GPUFUSE_SIM_GPUS=H100:2 GPUFUSE_SIM_STATE="$tmp/sim-n1")
no_gpu=(env GPUFUSE_DRIVER=/nonexistent GPUFUSE_NVML=/nonexistent)
gib=1073741824

# ---- local: the GPU is on this machine ----------------------------------------------------------
out=$("${on_n1[@]}" "$gf" run --server "$URL" --name loc1 --vram 4Gi --compute-percent 50 -- \
    "$probe" meminfo 2>&1)
rc=$?
[ $rc = 0 ] && [[ $out == *"total=$((4 * gib)) "* ]] && [[ $out == *count=1* ]] &&
    pass run/local_meminfo_shows_allocated_vram || fail run/local_meminfo_shows_allocated_vram "rc $rc: $out"
api GET /api/v1/workloads/loc1
[ "$CODE" = 404 ] && pass run/local_released_after_exit || fail run/local_released_after_exit "$CODE $BODY"

out=$("${on_n1[@]}" "$gf" run --server "$URL" --vram 1Gi -- "$probe" vecadd 2>&1)
[[ $out == *vecadd_bad=0* ]] && pass run/local_kernel || fail run/local_kernel "$out"

# While it runs: the workload, its allocation on n1 and the region exist; SIGTERM releases it.
"${on_n1[@]}" "$gf" run --server "$URL" --name hold1 --node n1 --vram 2Gi -- "$probe" hold 512 \
    >"$tmp/hold1.out" 2>&1 &
runpid=$!
started_pids+=("$runpid")
wait_for 20 grep -q ready "$tmp/hold1.out" || fail run/hold_started "$(cat "$tmp/hold1.out")"
api GET /api/v1/workloads/hold1
has '"node":"n1"' && [ -e "$GPUFUSE_SHM_DIR/gpufuse-vgpu-hold1" ] &&
    pass run/workload_exists_while_running || fail run/workload_exists_while_running "$BODY"
used_reported() {
    api GET /api/v1/allocations/hold1-0
    has "\"vram_used\":$((512 * 1048576))"
}
wait_for 5 used_reported && pass run/agent_reports_vgpu_usage || fail run/agent_reports_vgpu_usage "$BODY"
kill -TERM "$runpid"
wait "$runpid"
rc=$?
[ $rc = 143 ] && pass run/signal_forwarded || fail run/signal_forwarded "exit status $rc, want 143"
api GET /api/v1/workloads/hold1
[ "$CODE" = 404 ] && pass run/released_on_signal || fail run/released_on_signal "$CODE $BODY"
wait_for 5 bash -c "! test -e '$GPUFUSE_SHM_DIR/gpufuse-vgpu-hold1'" &&
    pass run/region_removed_after_release || fail run/region_removed_after_release "region still there"

# Multi-GPU, all or nothing: two devices, each with the allocated VRAM.
out=$("${on_n1[@]}" "$gf" run --server "$URL" --gpus 2 --vram 3Gi -- "$probe" meminfo 2>&1)
[[ $out == *count=2* ]] && [[ $out == *"total=$((3 * gib)) "* ]] &&
    pass run/local_two_gpus || fail run/local_two_gpus "$out"

# Refused: the server's "why not", non-zero exit, nothing left behind.
out=$("${on_n1[@]}" "$gf" run --server "$URL" --name big --vram 500Gi -- true 2>&1)
rc=$?
[ $rc != 0 ] && [[ $out == *"no vGPU for this request"* ]] && [[ $out == *"500 GiB"* ]] &&
    pass run/refusal_says_why || fail run/refusal_says_why "rc $rc: $out"
api GET /api/v1/workloads/big
[ "$CODE" = 404 ] && pass run/refusal_leaves_nothing || fail run/refusal_leaves_nothing "$CODE"
out=$("${on_n1[@]}" "$gf" run --server "$URL" --vram 4GB -- true 2>&1)
[ $? = 2 ] && [[ $out == *--vram* ]] && pass run/bad_flag || fail run/bad_flag "$out"
out=$("${on_n1[@]}" "$gf" run --server "$URL" --runtime cuda -- true 2>&1)
[ $? = 2 ] && [[ $out == *'--runtime: "cuda"'* ]] && pass run/bad_runtime ||
    fail run/bad_runtime "$out"

# ---- remote: a machine without GPUs, through n2's worker ---------------------------------------
out=$("${no_gpu[@]}" "$gf" run --server "$URL" --remote --node n2 --vram 2Gi -- "$probe" meminfo 2>&1)
[[ $out == *"total=$((2 * gib)) "* ]] && [[ $out == *count=1* ]] &&
    pass run/remote_meminfo_shows_allocated_vram || fail run/remote_meminfo_shows_allocated_vram "$out"
out=$("${no_gpu[@]}" "$gf" run --server "$URL" --remote --name rem1 --vram 1Gi --model T4 -- \
    "$probe" vecadd 2>&1)
[[ $out == *vecadd_bad=0* ]] && pass run/remote_kernel || fail run/remote_kernel "$out"
api GET /api/v1/workloads/rem1
[ "$CODE" = 404 ] && pass run/remote_released || fail run/remote_released "$CODE"
# Over the allocation's VRAM: refused by the worker like a driver would.
out=$("${no_gpu[@]}" "$gf" run --server "$URL" --remote --node n2 --vram 1Gi -- "$probe" fill 256 2>&1)
[[ $out == *"allocated=$gib last=CUDA_ERROR_OUT_OF_MEMORY"* ]] &&
    pass run/remote_limit_enforced || fail run/remote_limit_enforced "$out"
# Without --remote: GPUs that are not on this machine are reached through their node's worker.
out=$("${no_gpu[@]}" "$gf" run --server "$URL" --node n1 --vram 1Gi -- "$probe" vecadd 2>&1)
[[ $out == *vecadd_bad=0* ]] && pass run/other_node_goes_remote || fail run/other_node_goes_remote "$out"

# The agent restarts a worker that died, on the same address.
wpid=$(ps -o pid= --ppid "$agent2" | tr -d ' ' | head -1)
if [ -n "$wpid" ]; then
    kill -9 "$wpid"
    restarted() { grep -q "worker restarted" "$tmp/agent-n2.log"; }
    wait_for 10 restarted && pass run/worker_restarted || fail run/worker_restarted "$(tail -3 "$tmp/agent-n2.log")"
    out=$("${no_gpu[@]}" "$gf" run --server "$URL" --remote --node n2 --vram 1Gi -- "$probe" vecadd 2>&1)
    [[ $out == *vecadd_bad=0* ]] && pass run/remote_after_worker_restart ||
        fail run/remote_after_worker_restart "$out"
else
    fail run/worker_restarted "no worker process under agent $agent2"
fi

# An agent stopped with SIGTERM stops its worker and exits 0.
wpid=$(ps -o pid= --ppid "$agent1" | tr -d ' ' | head -1)
kill -TERM "$agent1"
wait "$agent1"
rc=$?
[ $rc = 0 ] && [ -n "$wpid" ] && ! kill -0 "$wpid" 2>/dev/null &&
    pass run/agent_stop_stops_worker || fail run/agent_stop_stops_worker "agent rc $rc, worker ${wpid:-none}"
kill -TERM "$agent2"
wait "$agent2"
stop_server || fail run/server_sigterm_clean "server exit status $?"
finish
