#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Issue 6: the server's and an agent's /metrics pass `promtool check metrics` (Prometheus naming
# and format lint) on a live pool with vGPUs in use; every family they expose is documented in
# docs/metrics.md; deploy/prometheus passes `promtool check config|rules`; the Grafana dashboard
# is valid JSON whose queries use only documented metrics.
source "$(dirname "$0")/pool_lib.bash"
need_tools curl python3 promtool
cuprobe=$build/tests/client/helpers/cuprobe
export GPUFUSE_TEST_DIR=$root
doc=$root/docs/metrics.md

start_server "$tmp/srv"
start_agent node-1 T4 --listen 127.0.0.1:0
agent_url() { AGENT_URL=$(grep -o 'http://[0-9.:]*/metrics' "$tmp/agent-node-1.log" | head -1); [ -n "$AGENT_URL" ]; }
wait_for 10 agent_url || { echo "FAIL setup: the agent did not print its metrics URL"; exit 1; }
ready() { node_status_is node-1 Ready; }
wait_for 10 ready || { echo "FAIL setup: node-1 not Ready"; exit 1; }

# A vGPU with a launch and a refused allocation (so every vGPU family has samples), and a
# placement the allocator refuses.
api POST /api/v1/workloads '{"name": "m1", "vram_request": "1Gi", "compute_percent_request": 20, "compute_percent_limit": 50}'
[ "$CODE" = 201 ] || fail metrics/setup "POST m1: $CODE $BODY"
api POST /api/v1/workloads '{"name": "nope", "vram_request": "1000Gi"}'
wait_for 10 test -e "$GPUFUSE_SHM_DIR/gpufuse-vgpu-m1" || fail metrics/setup "no vGPU region for m1"
vgpu() {
    GPUFUSE_VGPU=m1 GPUFUSE_DRIVER=$build/lib/sim/libcuda.so.1 LD_LIBRARY_PATH=$build/lib \
        GPUFUSE_SIM_GPUS=T4 GPUFUSE_SIM_STATE=$tmp/sim-node-1 "$cuprobe" "$@" >>"$tmp/probe.out" 2>&1
}
vgpu spin 1000 200 1
vgpu fill 256
# The agent reads the regions at each heartbeat (every 200 ms here).
scraped() {
    curl -s "$AGENT_URL" >"$tmp/agent.prom"
    grep -Eq '^gpufuse_vgpu_launches_total\{.*\} [1-9]' "$tmp/agent.prom" &&
        grep -Eq '^gpufuse_vgpu_refused_allocations_total\{.*\} [1-9]' "$tmp/agent.prom"
}
wait_for 5 scraped
grep -Eq '^gpufuse_vgpu_launches_total\{.*\} [1-9]' "$tmp/agent.prom" &&
    pass metrics/agent_counts_launches || fail metrics/agent_counts_launches "$(grep launches "$tmp/agent.prom")"
grep -Eq '^gpufuse_vgpu_refused_allocations_total\{.*\} [1-9]' "$tmp/agent.prom" &&
    pass metrics/agent_counts_refused || fail metrics/agent_counts_refused "$(grep refused "$tmp/agent.prom"; cat "$tmp/probe.out")"
curl -s "$URL/metrics" >"$tmp/server.prom"

for who in server agent; do
    if out=$(promtool check metrics <"$tmp/$who.prom" 2>&1); then pass "metrics/promtool_$who"
    else fail "metrics/promtool_$who" "$out"; fi
    missing=$(grep '^# TYPE ' "$tmp/$who.prom" | awk '{print $3}' | sort -u |
              while read -r m; do grep -q "\`$m\`" "$doc" || echo "$m"; done)
    [ -z "$missing" ] && pass "metrics/documented_$who" ||
        fail "metrics/documented_$who" "not in docs/metrics.md: $missing"
done
has_all() {
    local f=$1 m
    shift
    for m in "$@"; do grep -q "^$m" "$tmp/$f" || { echo "missing $m" >&2; return 1; }; done
}
check metrics/server_families has_all server.prom 'gpufuse_gpu_vram_used_bytes{' \
    'gpufuse_gpu_tflops_requested{' 'gpufuse_vgpu_vram_limit_bytes{' 'gpufuse_node_ready{' \
    'gpufuse_pool_free_ratio{' 'gpufuse_allocator_refusals_total{reason="vram"} 1' \
    'gpufuse_api_request_duration_seconds_bucket{route="/api/v1/workloads",method="POST",code="201"' \
    'gpufuse_alerts{'
check metrics/agent_families has_all agent.prom 'gpufuse_gpu_temperature_celsius{' \
    'gpufuse_vgpu_busy_seconds_total{' 'gpufuse_vgpu_compute_limit_ratio{'

d=$root/deploy/prometheus
if out=$(promtool check rules "$d/gpufuse-alerts.yml" 2>&1); then pass metrics/promtool_rules
else fail metrics/promtool_rules "$out"; fi
if out=$(cd "$d" && promtool check config prometheus.yml 2>&1); then pass metrics/promtool_config
else fail metrics/promtool_config "$out"; fi
# The rules mirror the built-in ones: same alert names.
api GET /api/v1/alerts
builtin=$(jget "$BODY" '" ".join(sorted(r["name"] for r in d["rules"]))')
prom=$(grep -o 'alert: [A-Za-z]*' "$d/gpufuse-alerts.yml" | awk '{print $2}' | sort | tr '\n' ' ')
[ "$builtin " = "$prom" ] && pass metrics/rules_mirror_builtin ||
    fail metrics/rules_mirror_builtin "built-in: $builtin; deploy: $prom"

if out=$(python3 - "$root/deploy/grafana/gpufuse-dashboard.json" "$doc" <<'PY' 2>&1
import json, re, sys
d = json.load(open(sys.argv[1]))
doc = open(sys.argv[2]).read()
panels = [p for p in d["panels"] if p["type"] != "row"]
titles = " ".join(p["title"] for p in panels)
for word in ("Pool", "GPU", "vGPU"):
    assert word in titles, "no panel about " + word
for p in panels:
    assert p["targets"], p["title"]
    for t in p["targets"]:
        for m in re.findall(r"gpufuse_[a-z_]+", t["expr"]):
            base = re.sub(r"_(bucket|sum|count)$", "", m)
            assert "`" + base + "`" in doc, "%s (panel %s) not in docs/metrics.md" % (m, p["title"])
PY
); then pass metrics/grafana_dashboard; else fail metrics/grafana_dashboard "$out"; fi
finish
