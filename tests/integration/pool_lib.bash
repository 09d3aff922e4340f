# SPDX-License-Identifier: Apache-2.0
# Shared helpers of the pool integration tests (tests/integration/pool_*.sh): start servers and
# agents on loopback with ephemeral ports and temp dirs, call the API with curl, report
# PASS/FAIL lines, and kill every started process on exit (even on failure).
# Sourced, not run: the runner only runs *.sh.

set -u
root=${GPUFUSE_TEST_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
build=${GPUFUSE_BUILD_DIR:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac
gf=$build/bin/gpufuse
tmp=$(mktemp -d /tmp/gf-pool-XXXXXX)
failures=0
started_pids=()
export GPUFUSE_SHM_DIR=$tmp/shm
mkdir -p "$GPUFUSE_SHM_DIR"
export GPUFUSE_SIM_STATE=${GPUFUSE_SIM_STATE:-$tmp/sim-state}
export GPUFUSE_NVML=$build/lib/sim/libnvidia-ml.so.1
# Leak checks stay on for processes that exit normally; SIGKILLed ones are not checked.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}

pool_cleanup() {
    local p
    for p in "${started_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap pool_cleanup EXIT

pass() { echo "PASS $1"; }
fail() {
    echo "FAIL $1: $2"
    failures=$((failures + 1))
}
# check NAME CONDITION-COMMAND... : PASS when the command succeeds.
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name" "expected success of: $*"; fi
}
finish() {
    [ "$failures" -eq 0 ]
    exit $?
}

need_tools() {
    local t
    for t in "$@"; do
        if ! command -v "$t" >/dev/null 2>&1; then
            echo "FAIL setup: $t not found; run make deps"
            exit 1
        fi
    done
    if [ ! -x "$gf" ] || [ ! -f "$GPUFUSE_NVML" ]; then
        echo "FAIL setup: $gf or $GPUFUSE_NVML missing; build first (make)"
        exit 1
    fi
}

# start_server DIR [ARGS...]: starts gpufuse server on 127.0.0.1:${PORT:-0}, waits until it
# answers; sets SERVER_PID, URL, TOKEN (the admin token).
start_server() {
    local dir=$1
    shift
    mkdir -p "$dir"
    rm -f "$dir/server.url"
    "$gf" server --data "$dir" --listen "127.0.0.1:${PORT:-0}" "$@" >>"$dir.log" 2>&1 &
    SERVER_PID=$!
    started_pids+=("$SERVER_PID")
    local i
    for i in $(seq 1 100); do
        if [ -s "$dir/server.url" ]; then
            URL=$(cat "$dir/server.url")
            if curl -sk ${CURL_CA:+--cacert "$CURL_CA"} -o /dev/null "$URL/healthz"; then
                TOKEN=$(cat "${TOKEN_FILE:-$dir/admin.token}")
                return 0
            fi
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "FAIL setup: the server did not start; its log:"
    tail -20 "$dir.log"
    exit 1
}

# stop_server: SIGTERM and wait; returns the exit status.
stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID"
}

# start_agent NAME GPUS [ARGS...]: a node agent on the sim with GPUFUSE_SIM_GPUS=GPUS and a
# fresh node token; sets AGENT_PID.
start_agent() {
    local name=$1 gpus=$2
    shift 2
    if [ ! -s "$tmp/$name.token" ]; then
        GPUFUSE_SERVER=$URL GPUFUSE_TOKEN=$TOKEN "$gf" token create --node "$name" \
            ${CLI_CA:+--ca-file "$CLI_CA"} >"$tmp/$name.token" || {
            echo "FAIL setup: gpufuse token create --node $name failed"
            exit 1
        }
    fi
    GPUFUSE_SIM_GPUS=$gpus GPUFUSE_SIM_STATE=$tmp/sim-$name GPUFUSE_LOG=info \
        "$gf" agent --server "$URL" --token-file "$tmp/$name.token" --node-name "$name" \
        --interval 200ms "$@" >>"$tmp/agent-$name.log" 2>&1 &
    AGENT_PID=$!
    started_pids+=("$AGENT_PID")
}

# api METHOD PATH [BODY] [TOKEN]: sets CODE and BODY (the answer).
api() {
    local method=$1 path=$2 body=${3-} tok=${4-$TOKEN}
    local args=(-s -X "$method" -o "$tmp/answer" -w '%{http_code}')
    [ -n "$tok" ] && args+=(-H "Authorization: Bearer $tok")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    [ -n "${CURL_CA:-}" ] && args+=(--cacert "$CURL_CA")
    CODE=$(curl "${args[@]}" "$URL$path")
    BODY=$(cat "$tmp/answer" 2>/dev/null)
}

# jget JSON EXPR: a field via python3's json (always in Debian's python3).
jget() {
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2], {"d": d}))' \
        "$1" "$2" 2>/dev/null
}

# wait_for SECONDS COMMAND...: polls every 0.1 s until COMMAND succeeds.
wait_for() {
    local secs=$1 i
    shift
    for i in $(seq 1 $((secs * 10))); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

# has PATTERN: the last answer contains the text (answers are compact JSON, so
# '"status":"Ready"' matches a field exactly); cheaper than jget where timing matters.
has() { [[ $BODY == *"$1"* ]]; }

node_status_is() { # NODE STATUS
    api GET "/api/v1/nodes/$1"
    has "\"status\":\"$2\""
}
