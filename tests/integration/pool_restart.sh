#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Durability: workloads are created in a loop while the server is SIGKILLed mid-way; after a
# restart on the same port every acknowledged (201) workload is there with its allocations, the
# allocator's accounting came back (a request larger than what is left is still refused), and
# the agent is Ready again without being restarted.
source "$(dirname "$0")/pool_lib.bash"
need_tools curl python3

start_server "$tmp/data" --heartbeat-timeout 30s
port=${URL##*:}
start_agent n1 "H100:4"
wait_for 10 node_status_is n1 Ready || { fail restart/setup "node n1 not Ready"; finish; }

# Create workloads until the server is killed; record what was acknowledged.
: >"$tmp/acked"
(
    for i in $(seq 0 399); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
            --data-binary "{\"name\": \"w$i\", \"vram_request\": \"512Mi\", \"tflops_request\": 1}" \
            "$URL/api/v1/workloads")
        if [ "$code" = 201 ]; then echo "w$i" >>"$tmp/acked"; fi
        [ "$code" = 000 ] && break
    done
) &
loop=$!
started_pids+=("$loop")
wait_for 30 bash -c "[ \$(wc -l <'$tmp/acked') -ge 40 ]"
kill -9 "$SERVER_PID"
wait "$loop" 2>/dev/null
acked=$(wc -l <"$tmp/acked")
[ "$acked" -ge 40 ] && pass restart/acknowledged_before_kill || fail restart/acknowledged_before_kill "only $acked"

PORT=$port start_server "$tmp/data" --heartbeat-timeout 30s
api GET /api/v1/workloads
echo "$BODY" >"$tmp/after.json"
missing=$(python3 - "$tmp/acked" "$tmp/after.json" <<'EOF'
import json, sys
acked = [l.strip() for l in open(sys.argv[1]) if l.strip()]
items = {w["name"]: w for w in json.load(open(sys.argv[2]))["items"]}
bad = [n for n in acked if n not in items or len(items[n]["allocations"]) != 1
       or items[n]["allocations"][0]["vram_request"] != 512 << 20]
print(" ".join(bad))
EOF
)
[ -z "$missing" ] && pass restart/every_acknowledged_workload_kept ||
    fail restart/every_acknowledged_workload_kept "missing or incomplete after SIGKILL: $missing"
n=$(jget "$BODY" 'len(d["items"])')
[ "$n" -ge "$acked" ] && [ "$n" -le $((acked + 1)) ] && pass restart/nothing_invented ||
    fail restart/nothing_invented "$n workloads for $acked acknowledged"

# The allocator's state came back: ask for more than the freest GPU has left.
api GET /api/v1/gpus
free=$(jget "$BODY" 'max(g["vram_bytes"] - g["vram_requested"] for g in d["items"])')
used=$(jget "$BODY" 'sum(g["vram_requested"] for g in d["items"])')
[ "$used" = $((n * (512 << 20))) ] && pass restart/gpu_accounting || fail restart/gpu_accounting "used $used for $n"
api POST /api/v1/workloads "{\"name\": \"toobig\", \"vram_request\": $((free + (1 << 30)))}"
[ "$CODE" = 409 ] && pass restart/allocator_restored || fail restart/allocator_restored "got $CODE $BODY"
api POST /api/v1/workloads "{\"name\": \"fits\", \"vram_request\": $free}"
[ "$CODE" = 201 ] && pass restart/allocator_places_after_restart || fail restart/allocator_places_after_restart "got $CODE $BODY"

# The agent kept going through the restart.
wait_for 10 node_status_is n1 Ready && pass restart/agent_ready_again || fail restart/agent_ready_again "$BODY"
# A second SIGKILL right after a delete: the delete holds too.
api DELETE /api/v1/workloads/fits
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
PORT=$port start_server "$tmp/data" --heartbeat-timeout 30s
api GET /api/v1/workloads/fits
[ "$CODE" = 404 ] && pass restart/delete_durable || fail restart/delete_durable "got $CODE"
stop_server
rc=$?
[ $rc = 0 ] && pass restart/sigterm_clean || fail restart/sigterm_clean "exit status $rc"
finish
