#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The dashboard in a real browser: a server with two sim agents and a third node fed known
# usage through the agent's usage endpoint, workloads on them, then Debian's headless Chromium
# loads http://SERVER/#token=... and the test checks what the page shows (node names, GPU
# count, a workload's allocation bar values, alerts, costs) in the DOM it dumps. Screenshots
# (1280 px and a narrow phone width) are saved as BUILD/dashboard.png and
# BUILD/dashboard-narrow.png for review. SKIPs when chromium is not installed.
source "$(dirname "$0")/pool_lib.bash"
need_tools curl python3

chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
    echo "SKIP dashboard: chromium is not installed (make deps installs Debian's chromium)"
    exit 0
fi

start_server "$tmp/data" --heartbeat-timeout 1h
start_agent n1 "H100:2"
start_agent n2 "T4"
wait_for 10 node_status_is n1 Ready && wait_for 10 node_status_is n2 Ready &&
    pass dashboard/agents_ready || fail dashboard/agents_ready "nodes not Ready"

# n3: registered and fed as its agent would, so that its usage is known exactly.
GPUFUSE_SERVER=$URL GPUFUSE_TOKEN=$TOKEN "$gf" token create --node n3 >"$tmp/n3.token"
n3tok=$(cat "$tmp/n3.token")
api POST /api/v1/nodes/register '{"name": "n3", "gpus": [{"uuid": "GPU-n3-0", "index": 0,
    "model": "NVIDIA L4", "vram_bytes": "24Gi"}]}' "$n3tok"
[ "$CODE" = 201 ] && pass dashboard/register_n3 || fail dashboard/register_n3 "got $CODE $BODY"

api PUT /api/v1/pools/default/prices '{"tflop_hour": 0.02, "gib_hour": 0.01, "burst_ratio": 1.5}'
[ "$CODE" = 200 ] || fail dashboard/prices "got $CODE $BODY"
api POST /api/v1/workloads '{"name": "train", "node": "n1", "vram_request": "20Gi",
    "vram_limit": "30Gi", "tflops_request": 200, "tflops_limit": 400}'
[ "$CODE" = 201 ] || fail dashboard/workload_train "got $CODE $BODY"
api POST /api/v1/workloads '{"name": "infer", "node": "n3", "vram_request": "4Gi",
    "vram_limit": "8Gi", "tflops_request": 30, "tflops_limit": 60, "qos": "high"}'
[ "$CODE" = 201 ] || fail dashboard/workload_infer "got $CODE $BODY"

# Usage of n3 over a few reports: VRAM 6 GiB used (above the 4 GiB request), GPU 40-70 % busy.
busy=0
for i in 1 2 3 4 5; do
    busy=$((busy + 150000000))
    api POST /api/v1/nodes/n3/usage "{\"gpus\": [{\"uuid\": \"GPU-n3-0\", \"vram_used\": \"6Gi\",
        \"utilization\": $((30 + i * 8)), \"temperature_c\": 61, \"power_mw\": 52000}],
        \"vgpus\": [{\"allocation\": \"infer-0\", \"vram_used\": \"6Gi\", \"busy_ns\": $busy}]}" "$n3tok"
    [ "$CODE" = 200 ] || fail dashboard/usage "got $CODE $BODY"
    sleep 0.3
done
api GET /api/v1/gpus/GPU-n3-0/samples
n=$(jget "$BODY" 'len(d["items"])')
[ "$CODE" = 200 ] && [ "$n" = 5 ] && [ "$(jget "$BODY" 'd["items"][-1]["vram_used"]')" = $((6 << 30)) ] &&
    pass dashboard/gpu_samples_api || fail dashboard/gpu_samples_api "got $CODE $BODY"
api GET /api/v1/allocations/infer-0/samples
[ "$CODE" = 200 ] && [ "$(jget "$BODY" 'len(d["items"])')" = 4 ] && pass dashboard/alloc_samples_api ||
    fail dashboard/alloc_samples_api "got $CODE $BODY"
api GET /api/v1/gpus/nope/samples
[ "$CODE" = 404 ] && pass dashboard/samples_404 || fail dashboard/samples_404 "got $CODE $BODY"
api GET "/api/v1/gpus/GPU-n3-0/samples?since=abc"
[ "$CODE" = 400 ] && pass dashboard/samples_400 || fail dashboard/samples_400 "got $CODE $BODY"

# The page and its files are served without a token; the API still needs one.
CODE=$(curl -s -o "$tmp/index.html" -w '%{http_code}' "$URL/")
[ "$CODE" = 200 ] && grep -q 'app.js' "$tmp/index.html" && pass dashboard/serves_index ||
    fail dashboard/serves_index "got $CODE"
ctype=$(curl -s -o /dev/null -w '%{content_type}' "$URL/app.js")
[[ $ctype == text/javascript* ]] && pass dashboard/js_content_type || fail dashboard/js_content_type "got $ctype"
api GET /api/v1/alerts
alerts_code=$CODE alerts_body=$BODY

browser() { # OUT-OPTION WINDOW-SIZE
    timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-dev-shm-usage --hide-scrollbars --user-data-dir="$tmp/chromium-profile" \
        --window-size="$2" --virtual-time-budget=8000 "$1" "$URL/#token=$TOKEN" 2>>"$tmp/chromium.log"
}
browser --dump-dom 1280,2200 >"$tmp/dom.html"
shot=$build/dashboard.png
browser --screenshot="$shot" 1280,2300 >/dev/null
browser --screenshot="$build/dashboard-narrow.png" 390,3600 >/dev/null

# What the page shows, read from the DOM it dumped.
dom_check() { # NAME PYTHON-EXPR (d = the DOM text; soup-free helpers below)
    if python3 - "$tmp/dom.html" "$2" <<'PY'
import re, sys
d = open(sys.argv[1], encoding="utf-8").read()
def attrs(tag_re):
    return [dict(re.findall(r'([\w-]+)="([^"]*)"', m)) for m in re.findall(r'<' + tag_re + r'\b([^>]*)>', d)]
meters = attrs("div")
def meter(kind, row_attr, row_val):
    # the meter of kind inside the element that carries row_attr="row_val"
    i = d.find(f'{row_attr}="{row_val}"')
    if i < 0: return None
    j = d.find(f'data-kind="{kind}"', i)
    k = d.rfind("<div", 0, j)
    return dict(re.findall(r'([\w-]+)="([^"]*)"', d[k:d.find(">", j)]))
ok = eval(sys.argv[2])
sys.exit(0 if ok else 1)
PY
    then pass "dashboard/$1"; else fail "dashboard/$1" "expected $2 in the page (DOM in $tmp/dom.html)"; fi
}
if [ ! -s "$tmp/dom.html" ]; then
    fail dashboard/browser "chromium dumped no DOM; its log: $(tail -5 "$tmp/chromium.log")"
    finish
fi
dom_check page_loaded "'data-loaded=\"1\"' in d"
dom_check node_names "all(f'<tr data-node=\"{n}\"' in d for n in ('n1', 'n2', 'n3'))"
dom_check node_status "d.count('>Ready</span>') >= 3"
dom_check gpu_count "d.count('class=\"card gpu\"') == 4 and '(4)' in d"
dom_check gpu_model "'NVIDIA L4' in d and 'NVIDIA H100 80GB HBM3' in d"
dom_check bar_infer_vram "meter('vgpu-vram', 'data-allocation', 'infer-0') == {**meter('vgpu-vram', 'data-allocation', 'infer-0'), 'data-used': str(6 << 30), 'data-request': str(4 << 30), 'data-limit': str(8 << 30)}"
dom_check bar_train_vram "(lambda m: m['data-request'] == str(20 << 30) and m['data-limit'] == str(30 << 30))(meter('vgpu-vram', 'data-allocation', 'train-0'))"
dom_check bar_train_tflops "(lambda m: m['data-request'] == '200' and m['data-limit'] == '400')(meter('vgpu-tflops', 'data-allocation', 'train-0'))"
dom_check bar_gpu_vram "(lambda m: m['data-used'] == str(6 << 30) and m['data-request'] == str(4 << 30) and m['data-total'] == str(24 << 30))(meter('gpu-vram', 'data-gpu', 'GPU-n3-0'))"
dom_check bar_accessible_name "'aria-label=\"VRAM: 6 GiB used, 4 GiB requested, 8 GiB limit\"' in d"
dom_check utilization_chart "re.search(r'data-gpu=\"GPU-n3-0\".*?<polyline points=\"[^\"]+\" class=\"line-vram\"', d, re.S) is not None"
dom_check costs_rows "'data-cost-workload=\"infer\"' in d and 'data-cost-workload=\"train\"' in d and 'data-cost-pool=\"default\"' in d"
dom_check no_stray_values "re.search(r'>(null|undefined|NaN)<|NaN|undefined', d) is None"
dom_check costs_total "re.search(r'id=\"cost-total\">\d+\.\d\d<', d) is not None"
if [ "$alerts_code" = 200 ] && [ "$(jget "$alerts_body" 'len(d.get("items", d.get("alerts", [])) if isinstance(d, dict) else len(d))')" != 0 ]; then
    first=$(jget "$alerts_body" '(lambda a: a.get("labels", {}).get("alertname") or a.get("alertname") or a.get("name") or a.get("rule"))((d.get("items") or d.get("alerts")) [0] if isinstance(d, dict) else d[0])')
    dom_check alert_shown "'data-alert=\"$first\"' in d"
elif [ "$alerts_code" = 200 ]; then
    dom_check alerts_none "'No alerts firing.' in d"
else
    dom_check alerts_absent "'has no alerts API' in d"
fi
python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.exit(0 if d[:8]==b"\x89PNG\r\n\x1a\n" and len(d) > 20000 else 1)' "$shot" &&
    pass dashboard/screenshot || fail dashboard/screenshot "no PNG at $shot"
echo "screenshots: $shot $build/dashboard-narrow.png"

# Without a token the page asks for one (and shows no data).
timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$tmp/chromium-profile2" --virtual-time-budget=3000 --dump-dom "$URL/" \
    >"$tmp/dom2.html" 2>>"$tmp/chromium.log"
grep -q 'Not signed in' "$tmp/dom2.html" && ! grep -q 'data-node="n1"' "$tmp/dom2.html" &&
    pass dashboard/asks_for_token || fail dashboard/asks_for_token "the page without a token: $(head -c 300 "$tmp/dom2.html")"
finish
