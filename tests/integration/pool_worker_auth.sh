#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Who may use an agent-started worker, and TLS for it. Node n2's agent starts a tcp:// worker,
# node n3's a tls:// one with a certificate made by openssl now. A workload's worker token comes
# in the answer that created it (once); the agent's table holds its hash only (0600). A client
# on the workload's allocation without the token, or with a wrong one, is refused with the
# reason; with it, it runs; a client asking for an ad-hoc vGPU is refused. No token appears in
# any log or list. gpufuse run --server --remote passes the token itself, and verifies the tls://
# worker with --ca-file (a run without the CA fails on the certificate).
source "$(dirname "$0")/pool_lib.bash"
need_tools curl python3 openssl
export GPUFUSE_TEST_DIR=$root
probe=$build/tests/client/helpers/cuprobe
if [ ! -x "$probe" ]; then
    echo "FAIL setup: $probe missing; build the tests first (make tests)"
    exit 1
fi
export GPUFUSE_DRIVER=$build/lib/sim/libcuda.so.1
export GPUFUSE_RUN_WAIT=30s
gib=1073741824
no_gpu=(env GPUFUSE_DRIVER=/nonexistent GPUFUSE_NVML=/nonexistent GPUFUSE_REMOTE_TIMEOUT=30s)

tls=1
if ! openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
    -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
    >"$tmp/openssl.log" 2>&1; then
    echo "SKIP auth/tls:all: openssl could not make a test certificate: $(tail -n 1 "$tmp/openssl.log")"
    tls=0
fi

start_server "$tmp/data" --heartbeat-timeout 3s
export GPUFUSE_TOKEN=$TOKEN
start_agent n2 "T4" --worker-listen tcp://127.0.0.1:0
agent2=$AGENT_PID
if [ $tls = 1 ]; then
    start_agent n3 "T4" --worker-listen tls://127.0.0.1:0 --worker-tls-cert "$tmp/cert.pem" \
        --worker-tls-key "$tmp/key.pem"
    agent3=$AGENT_PID
fi
wait_for 20 node_status_is n2 Ready || { fail auth/setup "n2 not Ready: $(tail -5 "$tmp/agent-n2.log")"; finish; }
api GET /api/v1/nodes/n2
addr2=$(jget "$BODY" 'd["address"]')

# ---- the token: shown once, hashed everywhere else ----------------------------------------------
api POST /api/v1/workloads '{"name": "tok1", "node": "n2", "remote": true, "vram_request": "1Gi"}'
[ "$CODE" = 201 ] || { fail auth/create "$CODE $BODY"; finish; }
wtok=$(jget "$BODY" 'd["worker_token"]')
uuid=$(jget "$BODY" 'd["allocations"][0]["gpu_uuid"]')
[[ $wtok == gfw_* ]] && [ ${#wtok} = 68 ] && pass auth/token_in_creation_answer ||
    fail auth/token_in_creation_answer "$BODY"
api GET /api/v1/workloads/tok1
[[ $BODY != *"$wtok"* ]] && [[ $BODY != *worker_token* ]] && pass auth/token_not_in_get ||
    fail auth/token_not_in_get "$BODY"
api GET /api/v1/workloads
[[ $BODY != *"$wtok"* ]] && pass auth/token_not_in_list || fail auth/token_not_in_list "$BODY"
table=$GPUFUSE_SHM_DIR/gpufuse-agent-n2.worker-tokens
hash=$(printf '%s' "$wtok" | sha256sum | cut -d' ' -f1)
in_table() { grep -qx "tok1 $hash" "$table" 2>/dev/null; }
wait_for 20 in_table && [ "$(stat -c %a "$table")" = 600 ] && ! grep -q "$wtok" "$table" &&
    pass auth/agent_table_holds_hash_0600 ||
    fail auth/agent_table_holds_hash_0600 "$(ls -l "$table"; cat "$table")"

# ---- a client on the allocation: without, with a wrong, with the right token ---------------------
remote_probe() { # TOKEN MODE: cuprobe through n2's worker on allocation tok1
    "${no_gpu[@]}" GPUFUSE_REMOTE_ALLOCATION=tok1 GPUFUSE_REMOTE_TOKEN="$1" \
        "$gf" run --remote "$addr2" --gpu "$uuid" -- "$probe" "$2" 2>&1
}
out=$(remote_probe "" meminfo)
[[ $out == *"wrong token for allocation tok1 (none sent)"* ]] && [[ $out != *"total="* ]] &&
    pass auth/no_token_refused || fail auth/no_token_refused "$out"
out=$(remote_probe "gfw_not-the-token" meminfo)
[[ $out == *"wrong token for allocation tok1"* ]] && [[ $out != *"(none sent)"* ]] &&
    [[ $out != *"total="* ]] && pass auth/wrong_token_refused || fail auth/wrong_token_refused "$out"
out=$(remote_probe "$wtok" meminfo)
[[ $out == *"total=$gib "* ]] && pass auth/right_token_runs || fail auth/right_token_runs "$out"
# Not the pool's allocation: an ad-hoc vGPU of the node's GPU is refused, token or not.
out=$("${no_gpu[@]}" GPUFUSE_REMOTE_TOKEN="$wtok" "$gf" run --remote "$addr2" --vram 1Gi -- \
    "$probe" meminfo 2>&1)
[[ $out == *"serves the pool's allocations only"* ]] && [[ $out != *"total="* ]] &&
    pass auth/adhoc_session_refused || fail auth/adhoc_session_refused "$out"
# Another workload's token does not open this one.
api POST /api/v1/workloads '{"name": "tok2", "node": "n2", "remote": true, "vram_request": "1Gi"}'
wtok2=$(jget "$BODY" 'd["worker_token"]')
out=$(remote_probe "$wtok2" meminfo)
[[ $out == *"wrong token for allocation tok1"* ]] && pass auth/other_workloads_token_refused ||
    fail auth/other_workloads_token_refused "$out"
api DELETE /api/v1/workloads/tok2
# Deleted: the token opens nothing any more.
api DELETE /api/v1/workloads/tok1
not_in_table() { ! grep -q "^tok1 " "$table"; }
wait_for 20 not_in_table || fail auth/deleted_workload_left_table "$(cat "$table")"
out=$(remote_probe "$wtok" meminfo)
[[ $out == *"allocation tok1 is not on this node"* ]] && [[ $out != *"total="* ]] &&
    pass auth/deleted_workload_refused || fail auth/deleted_workload_refused "$out"

# ---- gpufuse run --server --remote passes the token itself ------------------------------------------
out=$("${no_gpu[@]}" "$gf" run --server "$URL" --remote --node n2 --vram 1Gi -- "$probe" vecadd 2>&1)
[[ $out == *vecadd_bad=0* ]] && pass auth/run_passes_token || fail auth/run_passes_token "$out"

# ---- TLS: the agent's worker on tls://, verified with the pool's CA ----------------------------------
if [ $tls = 1 ]; then
    wait_for 20 node_status_is n3 Ready || fail auth/tls_setup "n3: $(tail -5 "$tmp/agent-n3.log")"
    api GET /api/v1/nodes/n3
    addr3=$(jget "$BODY" 'd["address"]')
    [[ $addr3 == tls://127.0.0.1:* ]] && pass auth/tls_address_reported ||
        fail auth/tls_address_reported "$BODY"
    out=$("${no_gpu[@]}" "$gf" run --server "$URL" --remote --node n3 --vram 1Gi \
        --ca-file "$tmp/cert.pem" -- "$probe" vecadd 2>&1)
    [[ $out == *vecadd_bad=0* ]] && pass auth/tls_run_with_ca_file || fail auth/tls_run_with_ca_file "$out"
    out=$("${no_gpu[@]}" GPUFUSE_REMOTE_CA="$tmp/cert.pem" "$gf" run --server "$URL" --remote \
        --node n3 --vram 2Gi -- "$probe" meminfo 2>&1)
    [[ $out == *"total=$((2 * gib)) "* ]] && pass auth/tls_run_with_remote_ca ||
        fail auth/tls_run_with_remote_ca "$out"
    out=$("${no_gpu[@]}" "$gf" run --server "$URL" --remote --node n3 --name noca --vram 1Gi -- \
        "$probe" vecadd 2>&1)
    rc=$?
    [ $rc != 0 ] && [[ $out != *vecadd_bad=0* ]] && [[ $out == *certificate* ]] &&
        [[ $out == *GPUFUSE_REMOTE_CA* ]] &&
        pass auth/tls_without_ca_fails || fail auth/tls_without_ca_fails "rc $rc: $out"
    api GET /api/v1/workloads/noca
    [ "$CODE" = 404 ] && pass auth/tls_failure_released || fail auth/tls_failure_released "$CODE"
fi

# ---- agent flags -------------------------------------------------------------------------------
out=$("$gf" agent --server "$URL" --token-file "$tmp/n2.token" --worker-listen tls://127.0.0.1:0 2>&1)
[ $? = 2 ] && [[ $out == *"needs --worker-tls-cert F and --worker-tls-key F"* ]] &&
    pass auth/agent_tls_needs_cert || fail auth/agent_tls_needs_cert "$out"
out=$("$gf" agent --server "$URL" --token-file "$tmp/n2.token" --worker-listen tcp://127.0.0.1:0 \
    --worker-tls-cert "$tmp/cert.pem" --worker-tls-key "$tmp/key.pem" 2>&1)
[ $? = 2 ] && [[ $out == *"use --worker-listen tls://"* ]] && pass auth/agent_cert_needs_tls ||
    fail auth/agent_cert_needs_tls "$out"

# ---- no token in any log -----------------------------------------------------------------------
leaked=$(grep -l -e "$wtok" -e "$wtok2" "$tmp"/*.log "$tmp"/data.log 2>/dev/null)
[ -z "$leaked" ] && pass auth/token_in_no_log || fail auth/token_in_no_log "found in $leaked"

kill -TERM "$agent2" ${agent3:+"$agent3"}
wait "$agent2" ${agent3:+"$agent3"}
stop_server || fail auth/server_sigterm_clean "server exit status $?"
finish
