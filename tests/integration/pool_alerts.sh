#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Issue 6: every built-in alert rule fires on the sim and then resolves, from real conditions
# (sim GPUs filled and kept busy, workloads that exhaust a pool, an idle vGPU, a capped vGPU
# throttled, a placement that fails, an agent killed), and the webhook receives Alertmanager's
# JSON for both transitions (the first delivery fails on purpose: retried). Thresholds and
# durations are set low in the test's alert file, never faked data.
source "$(dirname "$0")/pool_lib.bash"
need_tools curl python3
cuprobe=$build/tests/client/helpers/cuprobe
hook=$root/tests/integration/alert_hook.py
if [ ! -x "$cuprobe" ]; then
    echo "FAIL setup: $cuprobe missing; build the tests first (make tests)"
    exit 1
fi
export GPUFUSE_TEST_DIR=$root

python3 "$hook" "$tmp/hook.port" "$tmp/hook.log" 1 >"$tmp/hook.out" 2>&1 &
started_pids+=($!)
wait_for 10 test -s "$tmp/hook.port" || { echo "FAIL setup: webhook receiver did not start"; exit 1; }
hook_url=http://127.0.0.1:$(cat "$tmp/hook.port")/hook

cat >"$tmp/alerts.json" <<'JSON'
{"eval_interval": "250ms", "webhook_retries": 5, "webhook_retry_backoff": "200ms",
 "rules": [
  {"name": "GPUVRAMNearlyFull", "threshold": 0.9, "for": "1s"},
  {"name": "GPUComputeSaturated", "threshold": 0.8, "for": "1s"},
  {"name": "GPUTooHot", "threshold": 60, "for": "1s"},
  {"name": "PoolCapacityLow", "threshold": 0.5, "for": "500ms"},
  {"name": "PoolCapacityCritical", "threshold": 0.1, "for": "500ms"},
  {"name": "VGPUIdle", "threshold": 0.01, "for": "1s", "window": "1s"},
  {"name": "VGPUThrottled", "threshold": 0.1, "for": "500ms", "window": "1s"},
  {"name": "AllocationFailed", "window": "2s"},
  {"name": "NodeDown", "for": "500ms"}
 ]}
JSON
start_server "$tmp/srv" --heartbeat-timeout 1s --alerts "$tmp/alerts.json" --alert-webhook "$hook_url"
start_agent node-a T4 --pool pa
start_agent node-b T4 --pool pb
start_agent node-c T4 --pool pc
AGENT_C=$AGENT_PID
ready3() { api GET /api/v1/nodes; [ "$(grep -o '"status":"Ready"' <<<"$BODY" | wc -l)" = 3 ]; }
wait_for 15 ready3 || { echo "FAIL setup: agents did not register"; tail "$tmp"/agent-*.log; exit 1; }

fired() { python3 "$hook" check "$tmp/hook.log" firing "$@"; }
resolved() { python3 "$hook" check "$tmp/hook.log" resolved "$@"; }
# expect_fire NAME WAIT LABELS...: the webhook got it firing, and the API lists it firing.
expect_fire() {
    local name=$1 secs=$2
    shift 2
    if wait_for "$secs" fired "$name" "$@"; then pass "alerts/${name}_fires${3:+_$3}"
    else fail "alerts/${name}_fires" "no firing $name ($*) at the webhook within ${secs}s; got: $(cut -c1-300 "$tmp/hook.log" 2>/dev/null | tail -3)"; fi
}
expect_resolve() {
    local name=$1 secs=$2
    shift 2
    if wait_for "$secs" resolved "$name" "$@"; then pass "alerts/${name}_resolves"
    else fail "alerts/${name}_resolves" "no resolved $name ($*) at the webhook within ${secs}s"; fi
}

sim_bg() { # NODE OUT CMD...: a process on NODE's sim GPUs (the state its agent reads); sets BG
    local node=$1 out=$2
    shift 2
    GPUFUSE_SIM_GPUS=T4 GPUFUSE_SIM_STATE=$tmp/sim-$node LD_LIBRARY_PATH=$build/lib/sim \
        "$@" >"$out" 2>&1 &
    BG=$!
    started_pids+=("$BG")
}

# ---- node-a: VRAM filled by a process; compute saturated and hot from spin kernels ----------
sim_bg node-a "$tmp/hold.out" "$cuprobe" hold 15000
HOLD=$BG
sim_bg node-a "$tmp/spin.out" "$cuprobe" spin 5000 4500 1
SPIN=$BG

# ---- pool pb: an idle vGPU, a capped vGPU kept busy (throttled), capacity, a failed placement
api POST /api/v1/workloads '{"name": "idle1", "pool": "pb", "vram_request": "1Gi", "compute_percent_request": 5}'
[ "$CODE" = 201 ] || fail alerts/setup_idle1 "POST idle1: $CODE $BODY"
api POST /api/v1/workloads '{"name": "capped", "pool": "pb", "vram_request": "1Gi", "compute_percent_request": 10, "compute_percent_limit": 10}'
[ "$CODE" = 201 ] || fail alerts/setup_capped "POST capped: $CODE $BODY"
wait_for 10 test -e "$GPUFUSE_SHM_DIR/gpufuse-vgpu-capped" || fail alerts/setup_region "no vGPU region for capped"
GPUFUSE_VGPU=capped GPUFUSE_DRIVER=$build/lib/sim/libcuda.so.1 LD_LIBRARY_PATH=$build/lib \
    GPUFUSE_SIM_GPUS=T4 GPUFUSE_SIM_STATE=$tmp/sim-node-b "$cuprobe" spin 2000 4000 1 \
    >"$tmp/capped.out" 2>&1 &
CAPPED=$!
started_pids+=("$CAPPED")
api POST /api/v1/workloads '{"name": "big1", "pool": "pb", "vram_request": "7Gi"}'
[ "$CODE" = 201 ] || fail alerts/setup_big1 "POST big1: $CODE $BODY"
expect_fire PoolCapacityLow 10 pool=pb
api POST /api/v1/workloads '{"name": "big2", "pool": "pb", "vram_request": "5Gi"}'
[ "$CODE" = 201 ] || fail alerts/setup_big2 "POST big2: $CODE $BODY"
api POST /api/v1/workloads '{"name": "toobig", "pool": "pb", "vram_request": "100Gi"}'
[ "$CODE" = 409 ] || fail alerts/setup_toobig "POST toobig: want 409, got $CODE $BODY"

# ---- node-c: the agent dies ----------------------------------------------------------------
kill -9 "$AGENT_C"

expect_fire PoolCapacityCritical 10 pool=pb
expect_fire AllocationFailed 5 pool=pb reason=vram
expect_fire NodeDown 10 node=node-c
expect_fire GPUVRAMNearlyFull 10 node=node-a gpu=0
expect_fire GPUComputeSaturated 10 node=node-a
expect_fire GPUTooHot 10 node=node-a
expect_fire VGPUThrottled 10 workload=capped
expect_fire VGPUIdle 10 workload=idle1
api GET /api/v1/alerts
firing_api() { api GET /api/v1/alerts; has '"name":"NodeDown"' && has '"state":"firing"'; }
check alerts/api_lists_firing firing_api

# ---- resolve each ---------------------------------------------------------------------------
kill "$HOLD" 2>/dev/null
api DELETE /api/v1/workloads/big2
api DELETE /api/v1/workloads/big1
api DELETE /api/v1/workloads/idle1
start_agent node-c T4 --pool pc
expect_resolve GPUVRAMNearlyFull 10 node=node-a
expect_resolve PoolCapacityCritical 10 pool=pb
expect_resolve PoolCapacityLow 10 pool=pb
expect_resolve VGPUIdle 10 workload=idle1
expect_resolve NodeDown 10 node=node-c
expect_resolve AllocationFailed 10 pool=pb
wait "$SPIN" 2>/dev/null
expect_resolve GPUComputeSaturated 10 node=node-a
expect_resolve GPUTooHot 15 node=node-a
wait "$CAPPED" 2>/dev/null
expect_resolve VGPUThrottled 10 workload=capped

resolved_api() {
    api GET /api/v1/alerts
    has '"state":"resolved"' && has '"ends_at_ms"' && ! [[ $BODY =~ \"name\":\"NodeDown\"[^}]*\"state\":\"firing\" ]]
}
check alerts/api_lists_resolved resolved_api
api GET /metrics ''
retried() { [[ $BODY =~ gpufuse_alert_webhook_retries_total\ ([1-9][0-9]*) ]]; }
check alerts/webhook_retried retried
sent_ok() { [[ $BODY == *'gpufuse_alert_notifications_total{status="resolved",result="sent"} '[1-9]* ]]; }
check alerts/notifications_counted sent_ok

# A bad alert file is refused with a message naming the field.
mkdir -p "$tmp/bad"
echo '{"rules": [{"name": "GPUTooHot", "for": "soon"}]}' >"$tmp/bad.json"
out=$("$gf" server --data "$tmp/bad" --listen 127.0.0.1:0 --alerts "$tmp/bad.json" 2>&1)
rc=$?
if [ "$rc" = 1 ] && [[ $out == *'rules[0].for'* ]]; then pass alerts/bad_config_refused
else fail alerts/bad_config_refused "want exit 1 naming rules[0].for, got $rc: $out"; fi
finish
