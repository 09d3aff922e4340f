#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Generates deploy/grafana/gpufuse-dashboard.json (a Grafana dashboard over docs/metrics.md):
#   python3 tools/gen_grafana_dashboard.py > deploy/grafana/gpufuse-dashboard.json
import json

S = 'job="gpufuse-server"'
panels = []


def row(title):
    panels.append({"type": "row", "title": title, "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": len(panels) * 8}, "panels": []})


def ts(title, exprs, unit, w=12, kind="timeseries"):
    x = 0 if not panels or panels[-1]["type"] == "row" or panels[-1]["gridPos"]["x"] + \
        panels[-1]["gridPos"]["w"] + w > 24 else panels[-1]["gridPos"]["x"] + panels[-1]["gridPos"]["w"]
    panels.append({
        "type": kind, "title": title, "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": w, "x": x, "y": len(panels) * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + i), "expr": e, "legendFormat": l}
                    for i, (e, l) in enumerate(exprs)]})


row("Pools")
ts("Pool free capacity", [(f'gpufuse_pool_free_ratio{{{S},pool=~"$pool"}}', "{{pool}}")],
   "percentunit")
ts("Pool VRAM: capacity vs allocated",
   [(f'gpufuse_pool_capacity_vram_bytes{{{S},pool=~"$pool"}}', "{{pool}} capacity"),
    (f'gpufuse_pool_allocated_vram_bytes{{{S},pool=~"$pool"}}', "{{pool}} allocated")], "bytes")
ts("Pool TFLOPs: capacity vs allocated",
   [(f'gpufuse_pool_capacity_tflops{{{S},pool=~"$pool"}}', "{{pool}} capacity"),
    (f'gpufuse_pool_allocated_tflops{{{S},pool=~"$pool"}}', "{{pool}} allocated")], "none")
ts("Nodes ready", [(f'sum by (pool) (gpufuse_node_ready{{{S},pool=~"$pool"}})', "{{pool}}")],
   "none")
row("GPUs")
ts("GPU utilization", [(f'gpufuse_gpu_utilization_ratio{{{S},pool=~"$pool"}}',
                        "{{node}}/{{gpu}}")], "percentunit")
ts("GPU VRAM used / total",
   [(f'gpufuse_gpu_vram_used_bytes{{{S},pool=~"$pool"}} / gpufuse_gpu_vram_total_bytes{{{S},pool=~"$pool"}}',
     "{{node}}/{{gpu}}")], "percentunit")
ts("GPU temperature", [(f'gpufuse_gpu_temperature_celsius{{{S},pool=~"$pool"}}',
                        "{{node}}/{{gpu}}")], "celsius")
ts("GPU power", [(f'gpufuse_gpu_power_watts{{{S},pool=~"$pool"}}', "{{node}}/{{gpu}}")], "watt")
ts("GPU TFLOPs requested vs limit vs capacity",
   [(f'gpufuse_gpu_tflops_requested{{{S},pool=~"$pool"}}', "{{node}}/{{gpu}} requested"),
    (f'gpufuse_gpu_tflops_limit{{{S},pool=~"$pool"}}', "{{node}}/{{gpu}} limit"),
    (f'gpufuse_gpu_tflops{{{S},pool=~"$pool"}}', "{{node}}/{{gpu}} capacity")], "none")
ts("GPU VRAM requested vs limit",
   [(f'gpufuse_gpu_vram_requested_bytes{{{S},pool=~"$pool"}}', "{{node}}/{{gpu}} requested"),
    (f'gpufuse_gpu_vram_limit_bytes{{{S},pool=~"$pool"}}', "{{node}}/{{gpu}} limit")], "bytes")
row("vGPUs")
ts("vGPU compute used vs limit",
   [(f'rate(gpufuse_vgpu_busy_seconds_total{{{S},pool=~"$pool"}}[1m])', "{{allocation}} used"),
    (f'gpufuse_vgpu_compute_limit_ratio{{{S},pool=~"$pool"}}', "{{allocation}} limit")],
   "percentunit")
ts("vGPU VRAM used vs limit",
   [(f'gpufuse_vgpu_vram_used_bytes{{{S},pool=~"$pool"}}', "{{allocation}} used"),
    (f'gpufuse_vgpu_vram_limit_bytes{{{S},pool=~"$pool"}}', "{{allocation}} limit")], "bytes")
ts("vGPU throttled", [(f'rate(gpufuse_vgpu_throttled_seconds_total{{{S},pool=~"$pool"}}[1m])',
                       "{{allocation}}")], "percentunit")
ts("vGPU refused allocations and launches (agents)",
   [('rate(gpufuse_vgpu_refused_allocations_total{job="gpufuse-agent"}[5m])', "{{allocation}} refused/s"),
    ('rate(gpufuse_vgpu_launches_total{job="gpufuse-agent"}[1m])', "{{allocation}} launches/s")],
   "ops")
row("Control plane")
ts("Placements", [(f'sum by (outcome) (rate(gpufuse_allocator_placements_total{{{S}}}[5m]))', "{{outcome}}"),
                  (f'sum by (reason) (rate(gpufuse_allocator_refusals_total{{{S}}}[5m]))', "refused: {{reason}}")],
   "ops")
ts("API latency p99 by route",
   [(f'histogram_quantile(0.99, sum by (le, route, method) (rate(gpufuse_api_request_duration_seconds_bucket{{{S}}}[5m])))',
     "{{method}} {{route}}")], "s")
ts("Alerts firing", [(f'sum by (alertname, severity) (gpufuse_alerts{{{S},state="firing"}})',
                      "{{alertname}} ({{severity}})")], "none")
ts("Webhook notifications", [(f'sum by (status, result) (rate(gpufuse_alert_notifications_total{{{S}}}[5m]))',
                              "{{status}} {{result}}")], "ops")

for i, p in enumerate(panels):
    p["id"] = i + 1

dash = {
    "title": "gpufuse", "uid": "gpufuse-pool", "schemaVersion": 39, "version": 1,
    "editable": True, "tags": ["gpufuse", "gpu"], "time": {"from": "now-1h", "to": "now"},
    "refresh": "30s",
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
        {"name": "pool", "type": "query", "label": "Pool", "includeAll": True, "multi": True,
         "current": {"text": "All", "value": "$__all"},
         "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "query": {"query": "label_values(gpufuse_pool_free_ratio, pool)", "refId": "pool"},
         "definition": "label_values(gpufuse_pool_free_ratio, pool)", "refresh": 2}]},
    "panels": panels,
}
print(json.dumps(dash, indent=2))
