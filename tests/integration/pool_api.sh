#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The server's REST API end to end: auth (401/403), bad input (400 with a message: malformed
# JSON, unknown fields, negative sizes, huge numbers, wrong types), 404/405/409/413, the
# allocator's "why not" message, profiles, pools, the CLI (ls tables and -o json, describe, rm,
# token), /healthz and /metrics without a token, and a clean SIGTERM shutdown.
source "$(dirname "$0")/pool_lib.bash"
need_tools curl python3

start_server "$tmp/data" --heartbeat-timeout 30s
start_agent n1 "H100:2,T4"
wait_for 10 node_status_is n1 Ready && pass api/agent_registers || fail api/agent_registers "node n1 not Ready"

# ---- auth -------------------------------------------------------------------------------------
api GET /api/v1/gpus "" ""
[ "$CODE" = 401 ] && [[ $BODY == *'"error"'*Bearer* ]] && pass api/401_missing_token ||
    fail api/401_missing_token "got $CODE $BODY"
api GET /api/v1/gpus "" "gf_not_a_real_token"
[ "$CODE" = 401 ] && [[ $BODY == *'invalid token'* ]] && pass api/401_bad_token ||
    fail api/401_bad_token "got $CODE $BODY"
api GET /healthz "" ""
[ "$CODE" = 200 ] && pass api/healthz_no_token || fail api/healthz_no_token "got $CODE"
api GET /metrics "" ""
[ "$CODE" = 200 ] && [[ $BODY == *'gpufuse_api_requests_total{code="4xx"}'* ]] &&
    [[ $BODY == *'gpufuse_nodes{pool="default",status="Ready"} 1'* ]] && pass api/metrics_no_token ||
    fail api/metrics_no_token "got $CODE $BODY"
ntok=$(cat "$tmp/n1.token")
api GET /api/v1/workloads "" "$ntok"
[ "$CODE" = 403 ] && pass api/403_node_token_admin_route || fail api/403_node_token_admin_route "got $CODE $BODY"
api POST /api/v1/nodes/n2/heartbeat "" "$ntok"
[ "$CODE" = 403 ] && pass api/403_node_token_other_node || fail api/403_node_token_other_node "got $CODE $BODY"
api POST /api/v1/nodes/register '{"name":"n2","gpus":[]}' "$ntok"
[ "$CODE" = 403 ] && [[ $BODY == *'token create --node n2'* ]] && pass api/403_register_other_node ||
    fail api/403_register_other_node "got $CODE $BODY"
api POST /api/v1/nodes/n1/heartbeat "" "$ntok"
[ "$CODE" = 200 ] && pass api/node_token_own_heartbeat || fail api/node_token_own_heartbeat "got $CODE $BODY"

# ---- bad input: 400 with a message --------------------------------------------------------------
bad() { # name body expected-substring
    api POST /api/v1/workloads "$2"
    if [ "$CODE" = 400 ] && [[ $BODY == *"$3"* ]]; then pass "api/400_$1"; else
        fail "api/400_$1" "expected 400 with \"$3\", got $CODE $BODY"; fi
}
bad malformed_json '{"name": "x",' 'malformed JSON'
bad not_object '[1,2]' 'must be a JSON object'
bad empty_body '' 'empty body'
bad unknown_field '{"vram_requets": "1Gi"}' 'unknown field \"vram_requets\"'
bad negative_size '{"vram_request": -5}' 'cannot be negative'
bad negative_size_string '{"vram_request": "-1Gi"}' 'vram_request'
bad huge_integer '{"vram_request": 123456789012345678901234567890}' 'too big integer'
bad huge_size '{"vram_request": "99999999Pi"}' 'vram_request'
bad huge_real '{"vram_request": 1e300}' 'more than 1 EiB'
bad fractional_bytes '{"vram_request": 1.5}' 'must be whole'
bad bad_unit '{"vram_request": "4GB"}' 'unknown unit'
bad wrong_type '{"gpu_count": "two"}' 'gpu_count: expected an integer'
bad zero_gpus '{"gpu_count": 0, "vram_request": "1Gi"}' 'gpu_count'
bad negative_tflops '{"tflops_request": -3}' 'must be above 0'
bad nan_like '{"tflops_request": "nan"}' 'tflops_request'
bad limit_below_request '{"vram_request": "2Gi", "vram_limit": "1Gi"}' 'below vram_request'
bad tflops_and_percent '{"tflops_request": 1, "compute_percent_request": 10}' 'not both'
bad bad_name '{"name": "Bad Name!", "vram_request": "1Gi"}' 'name'
bad bad_qos '{"qos": "urgent", "vram_request": "1Gi"}' 'qos'
bad duplicate_key '{"vram_request": 1, "vram_request": 2}' 'duplicate'
bad nothing_asked '{"name": "empty"}' ''

# ---- 404 / 405 / 409 / 413 ----------------------------------------------------------------------
api GET /api/v1/workloads/nope
[ "$CODE" = 404 ] && [[ $BODY == *'workload \"nope\" not found'* ]] && pass api/404_workload ||
    fail api/404_workload "got $CODE $BODY"
api GET /api/v1/nothing
[ "$CODE" = 404 ] && pass api/404_route || fail api/404_route "got $CODE $BODY"
api PATCH /api/v1/workloads
[ "$CODE" = 405 ] && pass api/405_method || fail api/405_method "got $CODE $BODY"
python3 -c 'print("{\"name\": \"" + "x" * 2000000 + "\"}")' >"$tmp/big.json"
CODE=$(curl -s -o "$tmp/answer" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    --data-binary @"$tmp/big.json" "$URL/api/v1/workloads")
[ "$CODE" = 413 ] && grep -q 'over the limit' "$tmp/answer" && pass api/413_body_too_large ||
    fail api/413_body_too_large "got $CODE $(head -c 200 "$tmp/answer")"
# chunked upload without Content-Length also stops at the limit
CODE=$(curl -s -o "$tmp/answer" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/big.json" "$URL/api/v1/workloads")
[ "$CODE" = 413 ] && pass api/413_chunked || fail api/413_chunked "got $CODE"

# ---- workloads: create, why-not, duplicates, delete ---------------------------------------------
api POST /api/v1/workloads '{"name": "w1", "vram_request": "10Gi", "tflops_request": 100}'
[ "$CODE" = 201 ] && [ "$(jget "$BODY" 'd["allocations"][0]["node"]')" = n1 ] &&
    pass api/create_workload || fail api/create_workload "got $CODE $BODY"
api POST /api/v1/workloads '{"name": "w1", "vram_request": "1Gi"}'
[ "$CODE" = 409 ] && [[ $BODY == *exists* ]] && pass api/409_duplicate || fail api/409_duplicate "got $CODE $BODY"
api POST /api/v1/workloads '{"name": "huge", "vram_request": "500Gi"}'
[ "$CODE" = 409 ] && [[ $BODY == *GiB* ]] && [[ $BODY == *'"why":"vram"'* ]] && pass api/why_not_vram ||
    fail api/why_not_vram "got $CODE $BODY"
api POST /api/v1/workloads '{"name": "a100", "vram_request": "1Gi", "gpu_models": ["A100-80G"]}'
[ "$CODE" = 409 ] && [[ $BODY == *A100* ]] && pass api/why_not_model || fail api/why_not_model "got $CODE $BODY"
api POST /api/v1/workloads '{"name": "four", "vram_request": "1Gi", "gpu_count": 4}'
[ "$CODE" = 409 ] && pass api/why_not_multi || fail api/why_not_multi "got $CODE $BODY"
api POST /api/v1/workloads '{"vram_request": "1Gi", "pool": "nopool"}'
[ "$CODE" = 404 ] && [[ $BODY == *nopool* ]] && pass api/404_pool || fail api/404_pool "got $CODE $BODY"
api POST /api/v1/workloads '{"vram_request": "1Gi", "compute_percent_request": 10}'
[ "$CODE" = 201 ] && [[ $(jget "$BODY" 'd["name"]') == wl-* ]] && pass api/generated_name ||
    fail api/generated_name "got $CODE $BODY"
gen=$(jget "$BODY" 'd["name"]')
api DELETE "/api/v1/workloads/$gen"
[ "$CODE" = 200 ] && pass api/delete_workload || fail api/delete_workload "got $CODE $BODY"
api DELETE "/api/v1/workloads/$gen"
[ "$CODE" = 404 ] && pass api/delete_twice_404 || fail api/delete_twice_404 "got $CODE $BODY"

# ---- profiles and pools ------------------------------------------------------------------------
api PUT /api/v1/profiles/small '{"vram_request": "2Gi", "tflops_request": 10, "qos": "high"}'
[ "$CODE" = 200 ] && pass api/profile_put || fail api/profile_put "got $CODE $BODY"
api PUT /api/v1/profiles/small '{"vram_request": "3Gi", "qos": "high"}'
[ "$CODE" = 200 ] && [ "$(jget "$BODY" 'd["spec"]["vram_request"]')" = 3Gi ] && pass api/profile_update ||
    fail api/profile_update "got $CODE $BODY"
api POST /api/v1/workloads '{"name": "fromprof", "profile": "small"}'
[ "$CODE" = 201 ] && [ "$(jget "$BODY" 'd["spec"]["qos"]')" = high ] &&
    [ "$(jget "$BODY" 'd["allocations"][0]["vram_request"]')" = $((3 << 30)) ] && pass api/workload_from_profile ||
    fail api/workload_from_profile "got $CODE $BODY"
api PUT /api/v1/profiles/bad '{"vram_request": "-1"}'
[ "$CODE" = 400 ] && pass api/profile_bad_400 || fail api/profile_bad_400 "got $CODE $BODY"
api PUT /api/v1/pools/default '{"strategy": "spread", "oversubscription": 1.5}'
[ "$CODE" = 200 ] && [ "$(jget "$BODY" 'd["strategy"]')" = spread ] && pass api/pool_update ||
    fail api/pool_update "got $CODE $BODY"
api PUT /api/v1/pools/default '{"strategy": "random"}'
[ "$CODE" = 400 ] && [[ $BODY == *binpack* ]] && pass api/pool_bad_strategy || fail api/pool_bad_strategy "got $CODE $BODY"

# ---- usage reports -------------------------------------------------------------------------------
api POST /api/v1/nodes/n1/usage '{"gpus": [{"uuid": "x", "vram_used": -1}]}' "$ntok"
[ "$CODE" = 400 ] && pass api/usage_bad_400 || fail api/usage_bad_400 "got $CODE $BODY"
wait_for 5 bash -c "curl -s -H 'Authorization: Bearer $TOKEN' $URL/api/v1/gpus | grep -q usage_ms\\\":1" &&
    pass api/usage_reported || fail api/usage_reported "no usage sample in /api/v1/gpus"

# ---- CLI -------------------------------------------------------------------------------------------
export GPUFUSE_SERVER=$URL GPUFUSE_TOKEN=$TOKEN
out=$("$gf" ls gpus 2>&1)
[[ $out == NODE*INDEX*MODEL* ]] && [[ $out == *H100* ]] && [[ $out == *T4* ]] && pass cli/ls_gpus ||
    fail cli/ls_gpus "$out"
out=$("$gf" ls workloads 2>&1)
[[ $out == *w1*Running* ]] && [[ $out == *fromprof* ]] && pass cli/ls_workloads || fail cli/ls_workloads "$out"
n=$("$gf" ls nodes -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 1 ] && pass cli/ls_json || fail cli/ls_json "got $n"
out=$("$gf" ls pools 2>&1)
[[ $out == *default*spread* ]] && pass cli/ls_pools || fail cli/ls_pools "$out"
out=$("$gf" describe workload w1 2>&1)
[[ $out == *'status: Running'* ]] && [[ $out == *'allocations:'* ]] && pass cli/describe || fail cli/describe "$out"
out=$("$gf" describe node nope 2>&1)
rc=$?
[ $rc -ne 0 ] && [[ $out == *404*not\ found* ]] && pass cli/describe_404 || fail cli/describe_404 "rc $rc: $out"
out=$(GPUFUSE_TOKEN= "$gf" ls gpus 2>&1)
[[ $out == *401* ]] && [[ $out == *GPUFUSE_TOKEN* ]] && pass cli/no_token_message || fail cli/no_token_message "$out"
out=$("$gf" ls gpus --server http://127.0.0.1:1 2>&1)
[[ $out == *'is the server running'* ]] && pass cli/unreachable_message || fail cli/unreachable_message "$out"
"$gf" rm workload w1 >/dev/null && ! "$gf" describe workload w1 >/dev/null 2>&1 && pass cli/rm ||
    fail cli/rm "w1 still there"
"$gf" ls bogus >/dev/null 2>&1
[ $? = 2 ] && pass cli/usage_error_2 || fail cli/usage_error_2 "exit status not 2"
tok=$("$gf" token create --node n9) && [[ $tok == gf_* ]] && pass cli/token_create || fail cli/token_create "$tok"

# ---- SIGTERM: clean stop --------------------------------------------------------------------------
kill -TERM "$AGENT_PID"
wait "$AGENT_PID"
rc=$?
[ $rc = 0 ] && pass agent/sigterm_clean || fail agent/sigterm_clean "exit status $rc; $(tail -5 "$tmp/agent-n1.log")"
stop_server
rc=$?
[ $rc = 0 ] && grep -q 'gpufuse server stopped' "$tmp/data.log" && pass server/sigterm_clean ||
    fail server/sigterm_clean "exit status $rc; $(tail -5 "$tmp/data.log")"
finish
