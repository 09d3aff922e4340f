#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Workload leases, end to end: a gpufuse run --server with a short lease keeps its workload for
# several lease periods while it lives (and through a server restart, retrying meanwhile); once
# it and its command are SIGKILLed the server deletes the workload when the lease runs out, the
# capacity is free again and the agent removes the vGPU region. A restarted server gives leases
# a full term; a bad --lease is refused. No timing is asserted: every wait is a generous poll.
source "$(dirname "$0")/pool_lib.bash"
need_tools curl python3
export GPUFUSE_TEST_DIR=$root
export GPUFUSE_RUN_WAIT=30s

start_server "$tmp/data" --heartbeat-timeout 3s
server_port=${URL##*:}
start_agent n1 "H100"
wait_for 20 node_status_is n1 Ready || { fail lease/setup "node not Ready: $BODY"; finish; }
export GPUFUSE_TOKEN=$TOKEN
on_n1=(env GPUFUSE_SIM_GPUS=H100 GPUFUSE_SIM_STATE="$tmp/sim-n1")

now_ms() { date +%s%3N; }
exists() { api GET "/api/v1/workloads/$1"; [ "$CODE" = 200 ]; }
gone() { api GET "/api/v1/workloads/$1"; [ "$CODE" = 404 ]; }
# fits NAME: a 60 GiB workload on n1 (its only GPU has 80 GiB) is placed; deleted again.
fits() {
    api POST /api/v1/workloads "{\"name\": \"$1\", \"node\": \"n1\", \"vram_request\": \"60Gi\"}"
    [ "$CODE" = 201 ] || return 1
    api DELETE "/api/v1/workloads/$1"
}

# ---- flags ------------------------------------------------------------------------------------
out=$("$gf" run --server "$URL" --lease 100ms -- true 2>&1)
[ $? = 2 ] && [[ $out == *'--lease: "100ms": give from 1s to 24h'* ]] &&
    pass lease/flag_too_short_refused || fail lease/flag_too_short_refused "$out"
out=$("$gf" run --server "$URL" --lease soon -- true 2>&1)
[ $? = 2 ] && [[ $out == *--lease* ]] && pass lease/flag_bad_value_refused ||
    fail lease/flag_bad_value_refused "$out"

# ---- a live run keeps its workload --------------------------------------------------------------
"${on_n1[@]}" "$gf" run --server "$URL" --name live --lease 2s --vram 60Gi -- sleep 300 \
    >"$tmp/live.out" 2>&1 &
runpid=$!
started_pids+=("$runpid")
wait_for 30 exists live || { fail lease/created "$(cat "$tmp/live.out")"; finish; }
[ "$(jget "$BODY" 'd["lease_ms"]')" = 2000 ] && pass lease/shown_in_api ||
    fail lease/shown_in_api "$BODY"
first_expiry=$(jget "$BODY" 'd["lease_expires_ms"]')
# The agent keeps its token table even without a worker of its own (for one run beside it).
in_table() { grep -q "^live [0-9a-f]\{64\}$" "$GPUFUSE_SHM_DIR/gpufuse-agent-n1.worker-tokens"; }
wait_for 30 in_table && pass lease/agent_token_table_without_worker ||
    fail lease/agent_token_table_without_worker "$(ls -l "$GPUFUSE_SHM_DIR")"
child() { sleeppid=$(ps -o pid= --ppid "$runpid" | tr -d ' ' | head -1); [ -n "$sleeppid" ]; }
wait_for 30 child || fail lease/command_started "$(cat "$tmp/live.out")"
api POST /api/v1/workloads '{"name": "other", "node": "n1", "vram_request": "60Gi"}'
[ "$CODE" = 409 ] && pass lease/capacity_taken_while_running || fail lease/capacity_taken_while_running "$CODE $BODY"
# Three lease periods past the first expiry, the workload is still there and renewed.
past() { [ "$(now_ms)" -gt $((first_expiry + 3 * 2000)) ]; }
wait_for 60 past
api GET /api/v1/workloads/live
[ "$CODE" = 200 ] && [ "$(jget "$BODY" 'd["lease_expires_ms"] > '"$((first_expiry + 2 * 2000))")" = True ] &&
    pass lease/kept_while_renewed || fail lease/kept_while_renewed "$CODE $BODY; $(cat "$tmp/live.out")"

# ---- a server restart: the run retries while it is down, the workload stays --------------------
stop_server
failed_renewal() { grep -q "could not renew the lease of workload live" "$tmp/live.out"; }
wait_for 30 failed_renewal && pass lease/renewal_failure_reported ||
    fail lease/renewal_failure_reported "$(cat "$tmp/live.out")"
PORT=$server_port start_server "$tmp/data" --heartbeat-timeout 3s
renewed_again() { grep -q "lease of workload live is renewed again" "$tmp/live.out"; }
wait_for 30 renewed_again && exists live && kill -0 "$runpid" &&
    pass lease/kept_through_server_restart ||
    fail lease/kept_through_server_restart "$CODE $BODY; $(cat "$tmp/live.out")"

# ---- SIGKILL: the lease runs out, the workload goes, the capacity comes back ----------------------
child
kill -9 "$runpid" ${sleeppid:+"$sleeppid"}
wait "$runpid" 2>/dev/null
wait_for 60 gone live && pass lease/expired_after_sigkill || fail lease/expired_after_sigkill "$CODE $BODY"
wait_for 30 fits after && pass lease/capacity_free_again || fail lease/capacity_free_again "$CODE $BODY"
wait_for 30 bash -c "! test -e '$GPUFUSE_SHM_DIR/gpufuse-vgpu-live'" &&
    pass lease/agent_removed_region || fail lease/agent_removed_region "region still there"
curl -s "$URL/metrics" | grep -q 'gpufuse_allocations_released_total{reason="lease_expired"} 1' &&
    pass lease/metric_counts_expiry || fail lease/metric_counts_expiry "$(curl -s "$URL/metrics" | grep released)"
grep -q 'workload live: lease expired' "$tmp/data.log" && pass lease/expiry_logged ||
    fail lease/expiry_logged "$(tail -5 "$tmp/data.log")"

# ---- deleted under a live run: the run stops its command (the GPUs may be someone else's) ---------
"${on_n1[@]}" "$gf" run --server "$URL" --name doomed --lease 2s --vram 1Gi -- sleep 300 \
    >"$tmp/doomed.out" 2>&1 &
runpid=$!
started_pids+=("$runpid")
wait_for 30 exists doomed && wait_for 30 child || fail lease/doomed_started "$(cat "$tmp/doomed.out")"
api DELETE /api/v1/workloads/doomed
wait "$runpid"
rc=$?
[ $rc = 143 ] && grep -q "workload doomed is gone from the server" "$tmp/doomed.out" &&
    pass lease/command_stopped_when_workload_gone ||
    fail lease/command_stopped_when_workload_gone "rc $rc: $(cat "$tmp/doomed.out")"

# ---- API workloads: none by default; renew; a restart gives a full term ------------------------------
api POST /api/v1/workloads '{"name": "plain", "node": "n1", "vram_request": "1Gi"}'
[ "$CODE" = 201 ] && [[ $BODY == *'"lease_ms":null'* ]] && pass lease/none_unless_asked ||
    fail lease/none_unless_asked "$CODE $BODY"
api POST /api/v1/workloads/plain/renew
[ "$CODE" = 409 ] && pass lease/renew_without_lease_409 || fail lease/renew_without_lease_409 "$CODE $BODY"
api POST /api/v1/workloads '{"name": "api", "node": "n1", "vram_request": "1Gi", "lease_ms": "20s"}'
[ "$CODE" = 201 ] || fail lease/api_create "$CODE $BODY"
api POST /api/v1/workloads/api/renew '{"lease_ms": "30s"}'
[ "$CODE" = 200 ] && [ "$(jget "$BODY" 'd["lease_ms"]')" = 30000 ] && pass lease/renew_route ||
    fail lease/renew_route "$CODE $BODY"
api POST /api/v1/workloads/api/renew '' "$(cat "$tmp/n1.token")"
[ "$CODE" = 403 ] && pass lease/node_token_cannot_renew || fail lease/node_token_cannot_renew "$CODE $BODY"
# Down long enough for the lease to have run out (made so in the file: no waiting 30 s).
stop_server
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("UPDATE workloads SET lease_expires_ms = 1 WHERE name = ?", ("api",)); c.commit()' \
    "$tmp/data/gpufuse.db" || fail lease/setup_db "python3 sqlite3 failed"
before=$(now_ms)
PORT=$server_port start_server "$tmp/data" --heartbeat-timeout 3s
api GET /api/v1/workloads/api
[ "$CODE" = 200 ] && [ "$(jget "$BODY" 'd["lease_expires_ms"] >= '"$((before + 30000))")" = True ] &&
    pass lease/restart_gives_full_term || fail lease/restart_gives_full_term "$CODE $BODY"
api DELETE /api/v1/workloads/api
api DELETE /api/v1/workloads/plain

kill -TERM "$AGENT_PID"
wait "$AGENT_PID"
stop_server || fail lease/server_sigterm_clean "server exit status $?"
finish
