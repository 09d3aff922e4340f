#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Taking hardware out of the pool: "gpufuse rm node" is refused (409, naming the workload) while
# a workload holds GPUs there; with --force the workload is deleted, the node and its GPUs leave,
# and its agent, still running with its node token, is refused (revoked) instead of bringing the
# node back. An agent that registers again with one GPU fewer takes that GPU out of the pool: a
# request that only fit there is refused with the allocator's "why not". "gpufuse rm gpu" takes
# one GPU out the same way (409 naming the workload, --force deletes it) and leaves its node;
# "gpufuse cordon gpu" keeps one out of placement (its workload stays) until "uncordon".
source "$(dirname "$0")/pool_lib.bash"
need_tools curl python3

start_server "$tmp/data"
start_agent n1 "T4"
start_agent n2 "H100:2"
pid2=$AGENT_PID
wait_for 10 node_status_is n1 Ready && wait_for 10 node_status_is n2 Ready ||
    { fail remove/setup "nodes not Ready"; finish; }
cli() { GPUFUSE_SERVER=$URL GPUFUSE_TOKEN=$TOKEN "$gf" "$@"; }

# ---- a node with a workload: refused, then forced ------------------------------------------------
api POST /api/v1/workloads '{"name": "wa", "node": "n1", "vram_request": "1Gi"}'
[ "$CODE" = 201 ] || fail remove/create_wa "got $CODE $BODY"
out=$(cli rm node n1 2>&1) && fail remove/refused_with_workload "rm succeeded: $out" ||
    { [[ $out == *409* && $out == *wa* && $out == *--force* ]] &&
        pass remove/refused_with_workload || fail remove/refused_with_workload "$out"; }
api GET /api/v1/workloads/wa
[ "$CODE" = 200 ] && pass remove/refusal_changes_nothing || fail remove/refusal_changes_nothing "$CODE $BODY"
out=$(cli rm node nope 2>&1) && fail remove/unknown_node "rm succeeded: $out" ||
    { [[ $out == *404* ]] && pass remove/unknown_node || fail remove/unknown_node "$out"; }
out=$(cli rm node n1 --force 2>&1) && [[ $out == *'node "n1" deleted'* && $out == *wa* ]] &&
    pass remove/forced || fail remove/forced "$out"
api GET /api/v1/workloads/wa
[ "$CODE" = 404 ] && pass remove/workload_deleted || fail remove/workload_deleted "$CODE $BODY"
out=$(cli ls nodes 2>&1)
[[ $out == *n2* && $out != *n1* ]] && pass remove/ls_nodes_without_it || fail remove/ls_nodes_without_it "$out"
# n1's agent is still running with its (now revoked) token: it is told so and cannot come back
wait_for 10 grep -q "revoked" "$tmp/agent-n1.log" && pass remove/agent_told_revoked ||
    fail remove/agent_told_revoked "$(tail -3 "$tmp/agent-n1.log")"
api GET /api/v1/nodes/n1
[ "$CODE" = 404 ] && pass remove/agent_cannot_bring_it_back || fail remove/agent_cannot_bring_it_back "$CODE $BODY"

# ---- n2 comes back with one GPU fewer --------------------------------------------------------------
api GET /api/v1/gpus
gone=$(jget "$BODY" '[g["uuid"] for g in d["items"] if g["node"] == "n2" and g["index"] == 1][0]')
[ -n "$gone" ] || fail remove/gpu1_uuid "$BODY"
api POST /api/v1/workloads '{"name": "wfill", "node": "n2", "vram_request": "70Gi"}'
[ "$CODE" = 201 ] || fail remove/create_wfill "got $CODE $BODY"
# 40 GiB fits on GPU 1 only
api POST /api/v1/workloads '{"vram_request": "40Gi"}'
[ "$CODE" = 201 ] && [[ $BODY == *"$gone"* ]] || fail remove/fits_on_gpu1_before "got $CODE $BODY"
api DELETE "/api/v1/workloads/$(jget "$BODY" 'd["name"]')"
kill "$pid2"
wait "$pid2" 2>/dev/null
rm -f "$tmp/sim-n2" # the sim keeps its GPU set in its state file; GPU 0 keeps its uuid
start_agent n2 "H100"
gpu_gone() {
    api GET /api/v1/gpus
    [ "$CODE" = 200 ] && [[ $BODY != *"$gone"* ]]
}
wait_for 10 gpu_gone && pass remove/missing_gpu_removed || fail remove/missing_gpu_removed "$BODY"
out=$(cli ls gpus 2>&1)
[[ $out != *"$gone"* && $out == *STATUS* && $out == *Ready* ]] &&
    pass remove/ls_gpus_without_it || fail remove/ls_gpus_without_it "$out"
api POST /api/v1/workloads '{"name": "wbig", "vram_request": "40Gi"}'
[ "$CODE" = 409 ] && has "largest free VRAM in pool 'default' is" &&
    has "on n2 GPU 0; asked 40 GiB" && has '"why":"vram"' &&
    pass remove/request_refused_with_why_not || fail remove/request_refused_with_why_not "got $CODE $BODY"
api GET /api/v1/workloads/wfill
[ "$CODE" = 200 ] && has '"status":"Running"' && pass remove/other_gpu_unaffected ||
    fail remove/other_gpu_unaffected "$CODE $BODY"

# ---- a GPU cordoned and back: gpufuse cordon|uncordon gpu ---------------------------------------
api GET /api/v1/gpus
g0=$(jget "$BODY" '[g["uuid"] for g in d["items"] if g["node"] == "n2" and g["index"] == 0][0]')
out=$(cli cordon gpu "$g0" 2>&1) &&
    [[ $out == *"GPU \"$g0\" (node \"n2\", index 0) cordoned: it takes no new placement"* ]] &&
    pass remove/cordon || fail remove/cordon "$out"
out=$(cli ls gpus 2>&1)
[[ $out == *Ready,Cordoned* ]] && pass remove/ls_gpus_cordoned || fail remove/ls_gpus_cordoned "$out"
api POST /api/v1/workloads '{"name": "wc", "vram_request": "1Gi"}'
[ "$CODE" = 409 ] && pass remove/cordoned_takes_nothing || fail remove/cordoned_takes_nothing "got $CODE $BODY"
api GET /api/v1/workloads/wfill
[ "$CODE" = 200 ] && has '"status":"Running"' && pass remove/cordoned_keeps_workload ||
    fail remove/cordoned_keeps_workload "$CODE $BODY"
out=$(cli uncordon gpu "$g0" 2>&1) && [[ $out == *uncordoned* ]] && pass remove/uncordon ||
    fail remove/uncordon "$out"
api POST /api/v1/workloads '{"name": "wc", "vram_request": "1Gi"}'
[ "$CODE" = 201 ] && pass remove/uncordoned_takes_again || fail remove/uncordoned_takes_again "got $CODE $BODY"
api DELETE /api/v1/workloads/wc
out=$(cli cordon node n2 2>&1) && fail remove/cordon_usage "succeeded: $out" ||
    { [[ $out == *"usage: gpufuse cordon gpu UUID"* ]] && pass remove/cordon_usage ||
        fail remove/cordon_usage "$out"; }

# ---- one GPU out: gpufuse rm gpu ------------------------------------------------------------------
out=$(cli rm gpu "$g0" 2>&1) && fail remove/gpu_refused_with_workload "rm succeeded: $out" ||
    { [[ $out == *409* && $out == *wfill* && $out == *--force* ]] &&
        pass remove/gpu_refused_with_workload || fail remove/gpu_refused_with_workload "$out"; }
out=$(cli rm gpu GPU-nope 2>&1) && fail remove/unknown_gpu "rm succeeded: $out" ||
    { [[ $out == *404* ]] && pass remove/unknown_gpu || fail remove/unknown_gpu "$out"; }
out=$(cli rm gpu "$g0" --force 2>&1) &&
    [[ $out == *"GPU \"$g0\" (node \"n2\", index 0) deleted, 1 workload(s) deleted (wfill)"* ]] &&
    pass remove/gpu_forced || fail remove/gpu_forced "$out"
api GET /api/v1/workloads/wfill
[ "$CODE" = 404 ] && pass remove/gpu_workload_deleted || fail remove/gpu_workload_deleted "$CODE $BODY"
out=$(cli ls gpus 2>&1)
[[ $out != *"$g0"* ]] && pass remove/ls_gpus_without_removed_gpu ||
    fail remove/ls_gpus_without_removed_gpu "$out"
out=$(cli ls nodes 2>&1)
[[ $out == *n2* && $out == *Ready* ]] && pass remove/node_stays || fail remove/node_stays "$out"
api POST /api/v1/workloads '{"name": "wnone", "vram_request": "1Gi"}'
[ "$CODE" = 409 ] && pass remove/no_gpu_left || fail remove/no_gpu_left "got $CODE $BODY"
stop_server || fail remove/sigterm_clean "server exit status $?"
finish
