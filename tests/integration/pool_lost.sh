#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Node loss: an agent killed (SIGKILL) stops heartbeating; its node goes NotReady, its
# allocations are marked lost (visible in the API with the release time) and released after the
# grace period; the agent back makes the node Ready. An agent back within the grace period gets
# its allocations back untouched. The agent keeps the vGPU shared region of each local workload.
source "$(dirname "$0")/pool_lib.bash"
need_tools curl python3

start_server "$tmp/data" --heartbeat-timeout 1s --lost-grace 4s
start_agent n1 "H100"
pid1=$AGENT_PID
start_agent n2 "T4"
pid2=$AGENT_PID
wait_for 10 node_status_is n1 Ready && wait_for 10 node_status_is n2 Ready ||
    { fail lost/setup "nodes not Ready"; finish; }

api POST /api/v1/workloads '{"name": "wa", "node": "n1", "vram_request": "8Gi", "tflops_limit": 100, "tflops_request": 50}'
[ "$CODE" = 201 ] && pass lost/create_on_n1 || fail lost/create_on_n1 "got $CODE $BODY"
api POST /api/v1/workloads '{"name": "wc", "node": "n2", "vram_request": "1Gi"}'
[ "$CODE" = 201 ] && pass lost/create_on_n2 || fail lost/create_on_n2 "got $CODE $BODY"
wait_for 5 test -f "$GPUFUSE_SHM_DIR/gpufuse-vgpu-wa" && pass lost/agent_creates_vgpu_region ||
    fail lost/agent_creates_vgpu_region "no $GPUFUSE_SHM_DIR/gpufuse-vgpu-wa; $(tail -3 "$tmp/agent-n1.log")"

# ---- n1's agent dies: NotReady, lost, released after the grace ---------------------------------
kill -9 "$pid1"
wait_for 6 node_status_is n1 NotReady && pass lost/node_not_ready || fail lost/node_not_ready "$BODY"
api GET /api/v1/allocations/wa-0
has '"state":"lost"' && has '"release_at_ms":1' &&
    pass lost/allocation_marked_lost || fail lost/allocation_marked_lost "$BODY"
api GET /api/v1/workloads/wa
has '"status":"Lost"' && has 'node n1 missed heartbeats' &&
    pass lost/workload_says_lost || fail lost/workload_says_lost "$BODY"
api GET /api/v1/workloads/wc
has '"status":"Running"' && pass lost/other_node_unaffected || fail lost/other_node_unaffected "$BODY"
api POST /api/v1/workloads '{"name": "wnew", "node": "n1", "vram_request": "1Gi"}'
[ "$CODE" = 409 ] && pass lost/no_placement_on_not_ready || fail lost/no_placement_on_not_ready "got $CODE $BODY"
wl_released() {
    api GET /api/v1/workloads/wa
    has '"status":"Released"'
}
wait_for 8 wl_released && pass lost/released_after_grace || fail lost/released_after_grace "$BODY"
[ "$(jget "$BODY" 'len(d["allocations"])')" = 0 ] && [[ $BODY == *grace* ]] &&
    pass lost/release_visible || fail lost/release_visible "$BODY"
api GET /api/v1/gpus
[ "$(jget "$BODY" '[g["vram_requested"] for g in d["items"] if g["node"] == "n1"][0]')" = 0 ] &&
    pass lost/capacity_returned || fail lost/capacity_returned "$BODY"

# ---- n1's agent is back: Ready, placements again -------------------------------------------------
start_agent n1 "H100"
pid1=$AGENT_PID
wait_for 10 node_status_is n1 Ready && pass lost/agent_back_ready || fail lost/agent_back_ready "$BODY"
api POST /api/v1/workloads '{"name": "wnew", "node": "n1", "vram_request": "1Gi"}'
[ "$CODE" = 201 ] && pass lost/placement_after_return || fail lost/placement_after_return "got $CODE $BODY"

# ---- n2's agent dies and comes back within the grace: allocations kept ---------------------------
kill -9 "$pid2"
wait_for 6 node_status_is n2 NotReady || fail lost/n2_not_ready "$BODY"
api GET /api/v1/allocations/wc-0
has '"state":"lost"' || fail lost/n2_lost "$BODY"
start_agent n2 "T4"
wait_for 10 node_status_is n2 Ready && pass lost/back_within_grace_ready || fail lost/back_within_grace_ready "$BODY"
api GET /api/v1/workloads/wc
has '"status":"Running"' && has '"state":"active"' &&
    pass lost/back_within_grace_keeps_allocations || fail lost/back_within_grace_keeps_allocations "$BODY"
sleep 4.5
api GET /api/v1/workloads/wc
has '"status":"Running"' && pass lost/not_released_later || fail lost/not_released_later "$BODY"

# ---- deleting a workload removes its region on the node -----------------------------------------
api DELETE /api/v1/workloads/wnew
wait_for 5 test -f "$GPUFUSE_SHM_DIR/gpufuse-vgpu-wnew" || true
wait_for 5 bash -c "! test -e '$GPUFUSE_SHM_DIR/gpufuse-vgpu-wnew'" && pass lost/region_removed_on_delete ||
    fail lost/region_removed_on_delete "region still there"
# ---- a workload deleted while its node's agent was down: its region goes when the agent returns -
api POST /api/v1/workloads '{"name": "wd", "node": "n1", "vram_request": "1Gi"}'
wait_for 5 test -f "$GPUFUSE_SHM_DIR/gpufuse-vgpu-wd" || fail lost/wd_region "no region for wd"
kill -9 "$pid1"
api DELETE /api/v1/workloads/wd
start_agent n1 "H100"
wait_for 5 bash -c "! test -e '$GPUFUSE_SHM_DIR/gpufuse-vgpu-wd'" && pass lost/stale_region_removed_after_restart ||
    fail lost/stale_region_removed_after_restart "region of deleted workload wd still there"
stop_server || fail lost/sigterm_clean "server exit status $?"
finish
