#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Chargeback end to end, to the cent: prices per pool and QoS (PUT /api/v1/pools/NAME/prices),
# workloads with known requests on a node fed known usage through the agent's usage endpoint
# (node token, as the agent would), GET /api/v1/costs per workload, pool and period, bad query
# arguments (400 with a message), and gpufuse cost. Prices are per hour; 3600 per TFLOP-hour is
# 1 per TFLOP-second, which keeps the expected numbers readable. See docs/costs.md.
source "$(dirname "$0")/pool_lib.bash"
need_tools curl python3

start_server "$tmp/data" --heartbeat-timeout 1h
GPUFUSE_SERVER=$URL GPUFUSE_TOKEN=$TOKEN "$gf" token create --node c1 >"$tmp/c1.token"
ntok=$(cat "$tmp/c1.token")
api POST /api/v1/nodes/register '{"name": "c1", "gpus": [{"uuid": "GPU-c1-0", "index": 0,
    "model": "costcard", "vram_bytes": "80Gi", "tflops": 1000}]}' "$ntok"
[ "$CODE" = 201 ] && pass costs/register || fail costs/register "got $CODE $BODY"

# ---- prices ------------------------------------------------------------------------------------
api PUT /api/v1/pools/default/prices '{"tflop_hour": 3600, "gib_hour": 3600, "burst_ratio": 2,
    "qos": {"high": {"tflop_hour": 7200}}}'
[ "$CODE" = 200 ] && [ "$(jget "$BODY" 'd["qos"]["high"]')" = "{'tflop_hour': 7200.0, 'gib_hour': 3600.0, 'burst_ratio': 2.0}" ] &&
    [ "$(jget "$BODY" 'd["qos"]["low"]["tflop_hour"]')" = 3600.0 ] && pass costs/prices_put ||
    fail costs/prices_put "got $CODE $BODY"
badp() { # name body expected
    api PUT /api/v1/pools/default/prices "$2"
    [ "$CODE" = 400 ] && [[ $BODY == *"$3"* ]] && pass "costs/prices_400_$1" ||
        fail "costs/prices_400_$1" "expected 400 with \"$3\", got $CODE $BODY"
}
badp negative '{"tflop_hour": -1}' 'tflop_hour: expected a number from 0'
badp unknown_field '{"tflops_hour": 1}' 'tflops_hour: unknown field'
badp unknown_qos '{"qos": {"urgent": {"tflop_hour": 1}}}' 'qos.urgent: unknown QoS'
badp string '{"gib_hour": "1"}' 'gib_hour: expected a number'
badp malformed '{"gib_hour": ' 'malformed JSON'
api PUT /api/v1/pools/nopool/prices '{"tflop_hour": 1}'
[ "$CODE" = 404 ] && pass costs/prices_404 || fail costs/prices_404 "got $CODE $BODY"
api GET /api/v1/pools/default/prices
[ "$(jget "$BODY" 'd["tflop_hour"]')" = 3600.0 ] && pass costs/prices_kept_after_400 ||
    fail costs/prices_kept_after_400 "got $CODE $BODY"

# ---- workloads with known requests and usage ----------------------------------------------------
# wa: 100 TFLOPs + 2 GiB, medium (1 + 1 per second per unit: 102 per second reserved).
# wb: 1 GiB only (no compute reserved), high (2 per TFLOP-second).
api POST /api/v1/workloads '{"name": "wa", "vram_request": "2Gi", "tflops_request": 100}'
[ "$CODE" = 201 ] || fail costs/create_wa "got $CODE $BODY"
api POST /api/v1/workloads '{"name": "wb", "vram_request": "1Gi", "qos": "high"}'
[ "$CODE" = 201 ] || fail costs/create_wb "got $CODE $BODY"
api GET /api/v1/allocations/wa-0; ca=$(jget "$BODY" 'd["created_ms"]')
api GET /api/v1/allocations/wb-0; cb=$(jget "$BODY" 'd["created_ms"]')
[ "$(jget "$BODY" 'd["tflops_request"]')" = 0.0 ] || fail costs/wb_no_compute "got $BODY"
sleep 1.5
# One report closes each vGPU's interval since its creation: wa used nothing above its request
# (2 GiB, idle compute); wb was busy 0.5 s of GPU time (0.5 s x 1000 TFLOPs = 500 TFLOP-s, all
# above its 0 TFLOPs request) and held 3 GiB (2 GiB above its request).
api POST /api/v1/nodes/c1/usage '{"gpus": [{"uuid": "GPU-c1-0", "vram_used": "5Gi", "utilization": 50}],
    "vgpus": [{"allocation": "wa-0", "vram_used": "2Gi", "busy_ns": 0},
              {"allocation": "wb-0", "vram_used": "3Gi", "busy_ns": 500000000}]}' "$ntok"
[ "$CODE" = 200 ] && [ "$(jget "$BODY" 'd["unknown"]')" = 0 ] && pass costs/usage_report ||
    fail costs/usage_report "got $CODE $BODY"
api GET /api/v1/gpus/GPU-c1-0/samples; t1=$(jget "$BODY" 'd["items"][-1]["t_ms"]')

cost_of() { # WORKLOAD FIELD QUERY: sets BODY (the answer) and GOT (the workload's FIELD)
    api GET "/api/v1/costs?workload=$1$3"
    GOT=$(jget "$BODY" "[w for w in d['workloads'] if w['workload'] == '$1'][0]['$2']")
}
# wa over one second inside its life: (100 TFLOPs x 1 + 2 GiB x 1) x 1 s = 102.00, no burst;
# its compute went unused: 100 TFLOP-s x 1 = 100.00 allocated-but-idle.
cost_of wa cost_cents "&from=$((ca + 200))&to=$((ca + 1200))"; got=$GOT
[ "$got" = 10200 ] && pass costs/reserved_exact || fail costs/reserved_exact "expected 10200 cents, got $got ($BODY)"
[ "$(jget "$BODY" 'd["workloads"][0]["burst_cost_cents"]')" = 0 ] && pass costs/no_burst_within_request ||
    fail costs/no_burst_within_request "got $BODY"
[ "$(jget "$BODY" 'd["workloads"][0]["idle_allocated_cost_cents"]')" = 10000 ] &&
    pass costs/idle_allocated_exact || fail costs/idle_allocated_exact "got $BODY"
[ "$(jget "$BODY" 'd["workloads"][0]["qos"]')" = medium ] || fail costs/qos "got $BODY"
# wb's burst over its whole interval [created, report]: compute 500 TFLOP-s x 2 (high) x 2
# (burst ratio) = 2000.00, VRAM 2 GiB x (t1 - cb) s x 1 x 2.
want=$(python3 -c "print(round((2000 + 2 * 2 * ($t1 - $cb) / 1000) * 100))")
cost_of wb burst_cost_cents "&from=$cb&to=$t1"; got=$GOT
[ "$got" = "$want" ] && pass costs/burst_exact || fail costs/burst_exact "expected $want cents, got $got ($BODY)"
# wb's reservation over [cb, t1]: 1 GiB x (t1 - cb) s x 1 (no compute reserved).
want=$(python3 -c "print(round(($t1 - $cb) / 1000 * 100))")
[ "$(jget "$BODY" 'd["workloads"][0]["reserved_cost_cents"]')" = "$want" ] && pass costs/reserved_vram_only ||
    fail costs/reserved_vram_only "expected $want, got $BODY"

# ---- periods, pools, deletion --------------------------------------------------------------------
api GET "/api/v1/costs?from=$((ca - 10000))&to=$((ca - 5000))"
[ "$CODE" = 200 ] && [ "$(jget "$BODY" 'len(d["workloads"])')" = 0 ] && pass costs/period_before_is_empty ||
    fail costs/period_before_is_empty "got $CODE $BODY"
api GET "/api/v1/costs?pool=default&from=$((cb + 100))&to=$((cb + 1100))"
# Pool over a second when both lived: wa 102.00 + wb (1 GiB x 1 s = 1.00 reserved + burst inside the window).
[ "$CODE" = 200 ] && [ "$(jget "$BODY" 'd["pools"][0]["reserved_cost_cents"]')" = 10300 ] &&
    pass costs/pool_reserved || fail costs/pool_reserved "got $CODE $BODY"
# Capacity 1000 TFLOPs and 80 GiB, minus what is reserved = unallocated (GPU registered earlier).
[ "$(jget "$BODY" 'round(d["pools"][0]["unallocated_tflop_hours"] * 3600, 6)')" = 900.0 ] &&
    [ "$(jget "$BODY" 'round(d["pools"][0]["unallocated_gib_hours"] * 3600, 6)')" = 77.0 ] &&
    [ "$(jget "$BODY" 'd["pools"][0]["unallocated_cost_cents"]')" = 97700 ] && pass costs/pool_unallocated ||
    fail costs/pool_unallocated "got $BODY"
api DELETE /api/v1/workloads/wa
api GET "/api/v1/costs?workload=wa"; c1=$(jget "$BODY" 'd["workloads"][0]["reserved_cost_cents"]')
sleep 0.5
api GET "/api/v1/costs?workload=wa"; c2=$(jget "$BODY" 'd["workloads"][0]["reserved_cost_cents"]')
[ -n "$c1" ] && [ "$c1" = "$c2" ] && [ "$c1" -gt 15000 ] && pass costs/deleted_workload_keeps_its_cost ||
    fail costs/deleted_workload_keeps_its_cost "got $c1 then $c2"
api GET "/api/v1/costs?from=2020-01-01&to=2020-01-02T00:00:00Z"
[ "$CODE" = 200 ] && [ "$(jget "$BODY" 'd["to_ms"] - d["from_ms"]')" = 86400000 ] && pass costs/rfc3339_period ||
    fail costs/rfc3339_period "got $CODE $BODY"
api GET "/api/v1/costs?from=-1h"
[ "$CODE" = 200 ] && [ "$(jget "$BODY" 'd["to_ms"] - d["from_ms"]')" = 3600000 ] && pass costs/relative_period ||
    fail costs/relative_period "got $CODE $BODY"

# ---- bad query arguments ---------------------------------------------------------------------
badq() { # name query code expected
    api GET "/api/v1/costs?$2"
    [ "$CODE" = "$3" ] && [[ $BODY == *"$4"* ]] && pass "costs/query_$1" ||
        fail "costs/query_$1" "expected $3 with \"$4\", got $CODE $BODY"
}
badq bad_from 'from=yesterday' 400 'from: \"yesterday\": not a time'
badq bad_to 'to=2024-13-01' 400 'to: \"2024-13-01\": not a time'
badq from_after_to 'from=2000&to=1000' 400 'must be before to'
badq unknown_arg 'pol=default' 400 'unknown query argument \"pol\"'
badq twice 'pool=default&pool=default' 400 'given twice'
badq empty 'workload=' 400 'workload: empty'
badq bad_name 'pool=Bad!' 400 'pool'
badq unknown_pool 'pool=nopool' 404 'pool \"nopool\" not found'
badq unknown_workload 'workload=never' 404 'no cost records'
api POST /api/v1/costs '{}'
[ "$CODE" = 405 ] && pass costs/post_405 || fail costs/post_405 "got $CODE"
api GET /api/v1/costs "" "$ntok"
[ "$CODE" = 403 ] && pass costs/node_token_403 || fail costs/node_token_403 "got $CODE"

# ---- gpufuse cost ---------------------------------------------------------------------------------
out=$(GPUFUSE_SERVER=$URL GPUFUSE_TOKEN=$TOKEN "$gf" cost --workload wb --from "$cb" --to "$t1" -o json)
[ "$(jget "$out" 'd["workloads"][0]["burst_cost_cents"]')" = "$(python3 -c "print(round((2000 + 2 * 2 * ($t1 - $cb) / 1000) * 100))")" ] &&
    pass costs/cli_json || fail costs/cli_json "got $out"
out=$(GPUFUSE_SERVER=$URL GPUFUSE_TOKEN=$TOKEN "$gf" cost --pool default)
[[ $out == *WORKLOAD*wa*wb*total* ]] && pass costs/cli_table || fail costs/cli_table "got $out"
out=$(GPUFUSE_SERVER=$URL GPUFUSE_TOKEN=$TOKEN "$gf" cost --from tomorrow 2>&1)
[ $? -ne 0 ] && [[ $out == *'not a time'* ]] && pass costs/cli_bad_time || fail costs/cli_bad_time "got $out"
finish
