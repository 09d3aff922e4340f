/* SPDX-License-Identifier: Apache-2.0 */
/* The server's /metrics from the pool's state: per GPU (usage the agents report, what is
 * allocated on it), per vGPU (allocation), per node and per pool capacity. docs/metrics.md. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "server/alerts.h"

static const char *jstr(json_t *r, const char *k)
{
    const char *s = json_string_value(json_object_get(r, k));
    return s ? s : "";
}

static double jnum(json_t *r, const char *k)
{
    return json_number_value(json_object_get(r, k));
}

typedef struct gauge {
    const char *name, *type, *help;
    const char *key;  /* the row's column */
    double scale;     /* value = column x scale */
    int optional;     /* skip NULL columns */
} gauge;

/* Writes each gauge's family over rows, with labels made by labels_fn. */
static void write_gauges(gf_mbuf *b, const gauge *g, size_t n, json_t *rows,
                         void (*labels_fn)(json_t *row, char *out, size_t outlen))
{
    char l[768];
    for (size_t k = 0; k < n; k++) {
        gf_metrics_family(b, g[k].name, g[k].type, g[k].help);
        size_t i;
        json_t *r;
        json_array_foreach(rows, i, r) {
            json_t *v = json_object_get(r, g[k].key);
            if (g[k].optional && (!v || json_is_null(v))) continue;
            labels_fn(r, l, sizeof l);
            gf_metrics_sample(b, g[k].name, l, json_number_value(v) * g[k].scale);
        }
    }
}

static void gpu_labels(json_t *r, char *out, size_t outlen)
{
    char node[160], pool[160], uuid[200], model[200];
    gf_metrics_escape(jstr(r, "node"), node, sizeof node);
    gf_metrics_escape(jstr(r, "pool"), pool, sizeof pool);
    gf_metrics_escape(jstr(r, "uuid"), uuid, sizeof uuid);
    gf_metrics_escape(jstr(r, "model"), model, sizeof model);
    snprintf(out, outlen, "node=\"%s\",pool=\"%s\",gpu=\"%lld\",uuid=\"%s\",model=\"%s\"", node,
             pool, (long long)json_integer_value(json_object_get(r, "idx")), uuid, model);
}

static void vgpu_labels(json_t *r, char *out, size_t outlen)
{
    char wl[160], id[200], node[160], pool[160], uuid[200];
    gf_metrics_escape(jstr(r, "workload"), wl, sizeof wl);
    gf_metrics_escape(jstr(r, "id"), id, sizeof id);
    gf_metrics_escape(jstr(r, "node"), node, sizeof node);
    gf_metrics_escape(jstr(r, "pool"), pool, sizeof pool);
    gf_metrics_escape(jstr(r, "gpu_uuid"), uuid, sizeof uuid);
    snprintf(out, outlen,
             "workload=\"%s\",allocation=\"%s\",node=\"%s\",pool=\"%s\",uuid=\"%s\",qos=\"%s\"",
             wl, id, node, pool, uuid, jstr(r, "qos"));
}

static void node_labels(json_t *r, char *out, size_t outlen)
{
    char node[160], pool[160];
    gf_metrics_escape(jstr(r, "name"), node, sizeof node);
    gf_metrics_escape(jstr(r, "pool"), pool, sizeof pool);
    snprintf(out, outlen, "node=\"%s\",pool=\"%s\"", node, pool);
}

static void pool_labels(json_t *r, char *out, size_t outlen)
{
    char pool[160];
    gf_metrics_escape(jstr(r, "name"), pool, sizeof pool);
    snprintf(out, outlen, "pool=\"%s\"", pool);
}

static const gauge gpu_gauges[] = {
    {"gpufuse_gpu_vram_total_bytes", "gauge", "GPU memory", "vram_bytes", 1, 0},
    {"gpufuse_gpu_vram_used_bytes", "gauge", "GPU memory in use (NVML, last agent report)",
     "vram_used", 1, 1},
    {"gpufuse_gpu_utilization_ratio", "gauge", "GPU busy fraction (NVML, last agent report)",
     "utilization", 0.01, 1},
    {"gpufuse_gpu_temperature_celsius", "gauge", "GPU temperature (last agent report)",
     "temperature_c", 1, 1},
    {"gpufuse_gpu_power_watts", "gauge", "GPU power draw (last agent report)", "power_mw", 0.001,
     1},
    {"gpufuse_gpu_tflops", "gauge", "GPU FP16 dense TFLOPs (the model table)", "tflops", 1, 0},
    {"gpufuse_gpu_tflops_requested", "gauge", "TFLOPs requested by the vGPUs on the GPU",
     "tflops_req", 1, 0},
    {"gpufuse_gpu_tflops_limit", "gauge", "Sum of the TFLOPs limits of the vGPUs on the GPU",
     "tflops_lim", 1, 0},
    {"gpufuse_gpu_vram_requested_bytes", "gauge", "VRAM requested by the vGPUs on the GPU",
     "vram_req", 1, 0},
    {"gpufuse_gpu_vram_limit_bytes", "gauge", "Sum of the VRAM limits of the vGPUs on the GPU",
     "vram_lim", 1, 0},
    {"gpufuse_gpu_vgpus", "gauge", "vGPUs (allocations) on the GPU", "vgpus", 1, 0},
    {"gpufuse_gpu_last_report_timestamp_seconds", "gauge",
     "When the agent last reported the GPU's usage (Unix time)", "usage_ms", 0.001, 1},
};

static const gauge vgpu_gauges[] = {
    {"gpufuse_vgpu_vram_used_bytes", "gauge", "VRAM charged to the vGPU (limiter, last report)",
     "vram_used", 1, 0},
    {"gpufuse_vgpu_vram_requested_bytes", "gauge", "VRAM the vGPU requested", "vram_request", 1,
     0},
    {"gpufuse_vgpu_vram_limit_bytes", "gauge", "The vGPU's VRAM limit", "vram_limit", 1, 0},
    {"gpufuse_vgpu_tflops_requested", "gauge", "TFLOPs the vGPU requested", "tflops_request", 1,
     0},
    {"gpufuse_vgpu_tflops_limit", "gauge", "The vGPU's TFLOPs limit", "tflops_limit", 1, 0},
    {"gpufuse_vgpu_compute_limit_ratio", "gauge",
     "The vGPU's compute limit as a fraction of its GPU (compare rate(busy_seconds_total))",
     "limit_ratio", 1, 0},
    {"gpufuse_vgpu_busy_seconds_total", "counter",
     "GPU time the vGPU's kernels used (rate() = the fraction of the GPU it uses)", "busy_ns",
     1e-9, 0},
    {"gpufuse_vgpu_throttled_seconds_total", "counter",
     "Time the vGPU's launches waited for its compute limit", "throttled_ns", 1e-9, 0},
    {"gpufuse_vgpu_lost", "gauge", "1 while the vGPU's node is NotReady (allocation lost)",
     "lost", 1, 0},
};

static const gauge node_gauges[] = {
    {"gpufuse_node_ready", "gauge", "1 when the node is Ready (heartbeating), else 0", "ready", 1,
     0},
    {"gpufuse_node_gpus", "gauge", "GPUs the node registered", "gpus", 1, 0},
    {"gpufuse_node_last_heartbeat_timestamp_seconds", "gauge",
     "When the node last heartbeated (Unix time)", "last_heartbeat_ms", 0.001, 0},
};

static const gauge pool_gauges[] = {
    {"gpufuse_pool_capacity_vram_bytes", "gauge",
     "Placeable VRAM: Ready GPUs x the pool's VRAM oversubscription", "vram_cap", 1, 0},
    {"gpufuse_pool_allocated_vram_bytes", "gauge", "VRAM requested on Ready GPUs", "vram_req",
     1, 0},
    {"gpufuse_pool_free_vram_bytes", "gauge", "capacity - allocated VRAM (may be negative)",
     "vram_free", 1, 0},
    {"gpufuse_pool_capacity_tflops", "gauge",
     "Placeable TFLOPs: Ready GPUs x the pool's compute oversubscription", "tflops_cap", 1, 0},
    {"gpufuse_pool_allocated_tflops", "gauge", "TFLOPs requested on Ready GPUs", "tflops_req",
     1, 0},
    {"gpufuse_pool_free_tflops", "gauge", "capacity - allocated TFLOPs (may be negative)",
     "tflops_free", 1, 0},
    {"gpufuse_pool_free_ratio", "gauge",
     "The smaller of free VRAM and free TFLOPs as a fraction of capacity (0-1)", "free_ratio", 1,
     0},
};

static void collect_pool(gf_mbuf *b, void *ctx)
{
    gf_server *srv = ctx;
    pthread_mutex_lock(&srv->lock);
    json_t *gpus = gf_store_query(
        srv->store,
        "SELECT g.uuid, g.node, n.pool, g.idx, g.model, g.vram_bytes, g.tflops, "
        "CASE WHEN g.usage_ms IS NULL THEN NULL ELSE g.vram_used END AS vram_used, "
        "CASE WHEN g.usage_ms IS NULL THEN NULL ELSE g.utilization END AS utilization, "
        "g.temperature_c, g.power_mw, g.usage_ms, "
        "(SELECT COALESCE(SUM(a.tflops_request), 0.0) FROM allocations a WHERE a.gpu_uuid = "
        "g.uuid) AS tflops_req, (SELECT COALESCE(SUM(a.tflops_limit), 0.0) FROM allocations a "
        "WHERE a.gpu_uuid = g.uuid) AS tflops_lim, (SELECT COALESCE(SUM(a.vram_request), 0) FROM "
        "allocations a WHERE a.gpu_uuid = g.uuid) AS vram_req, (SELECT COALESCE(SUM("
        "a.vram_limit), 0) FROM allocations a WHERE a.gpu_uuid = g.uuid) AS vram_lim, (SELECT "
        "COUNT(*) FROM allocations a WHERE a.gpu_uuid = g.uuid) AS vgpus FROM gpus g JOIN nodes "
        "n ON n.name = g.node ORDER BY g.node, g.idx", "");
    json_t *vgpus = gf_store_query(
        srv->store,
        "SELECT a.id, a.workload, a.node, a.pool, a.gpu_uuid, a.qos, a.vram_used, "
        "a.vram_request, a.vram_limit, a.tflops_request, a.tflops_limit, a.busy_ns, "
        "a.throttled_ns, CASE WHEN a.state = 'lost' THEN 1 ELSE 0 END AS lost, "
        "CASE WHEN g.tflops > 0 THEN MIN(1.0, a.tflops_limit / g.tflops) ELSE 0.0 END AS "
        "limit_ratio FROM allocations a LEFT JOIN gpus g ON g.uuid = a.gpu_uuid ORDER BY a.id",
        "");
    json_t *nodes = gf_store_query(
        srv->store,
        "SELECT n.name, n.pool, CASE WHEN n.status = 'Ready' THEN 1 ELSE 0 END AS ready, "
        "n.last_heartbeat_ms, (SELECT COUNT(*) FROM gpus g WHERE g.node = n.name) AS gpus "
        "FROM nodes n ORDER BY n.name", "");
    json_t *pools = gf_store_query(
        srv->store,
        "SELECT p.name, p.oversub_tflops AS ot, p.oversub_vram AS ov, (SELECT "
        "COALESCE(SUM(g.vram_bytes), 0) FROM gpus g JOIN nodes n ON n.name = g.node WHERE "
        "n.pool = p.name AND n.status = 'Ready') AS vram, (SELECT COALESCE(SUM(g.tflops), 0.0) "
        "FROM gpus g JOIN nodes n ON n.name = g.node WHERE n.pool = p.name AND n.status = "
        "'Ready') AS tflops, (SELECT COALESCE(SUM(a.vram_request), 0) FROM allocations a JOIN "
        "nodes n ON n.name = a.node WHERE a.pool = p.name AND n.status = 'Ready') AS vram_req, "
        "(SELECT COALESCE(SUM(a.tflops_request), 0.0) FROM allocations a JOIN nodes n ON "
        "n.name = a.node WHERE a.pool = p.name AND n.status = 'Ready') AS tflops_req "
        "FROM pools p ORDER BY p.name", "");
    pthread_mutex_unlock(&srv->lock);
    size_t i;
    json_t *p;
    json_array_foreach(pools, i, p) {
        double vcap = jnum(p, "vram") * jnum(p, "ov"), tcap = jnum(p, "tflops") * jnum(p, "ot");
        double vfree = vcap - jnum(p, "vram_req"), tfree = tcap - jnum(p, "tflops_req");
        double rv = vcap > 0 ? vfree / vcap : 0, rt = tcap > 0 ? tfree / tcap : 0;
        double r = rv < rt ? rv : rt;
        json_object_set_new(p, "vram_cap", json_real(vcap));
        json_object_set_new(p, "tflops_cap", json_real(tcap));
        json_object_set_new(p, "vram_free", json_real(vfree));
        json_object_set_new(p, "tflops_free", json_real(tfree));
        json_object_set_new(p, "free_ratio", json_real(r < 0 ? 0 : r > 1 ? 1 : r));
    }
    write_gauges(b, gpu_gauges, sizeof gpu_gauges / sizeof gpu_gauges[0], gpus, gpu_labels);
    write_gauges(b, vgpu_gauges, sizeof vgpu_gauges / sizeof vgpu_gauges[0], vgpus, vgpu_labels);
    write_gauges(b, node_gauges, sizeof node_gauges / sizeof node_gauges[0], nodes, node_labels);
    write_gauges(b, pool_gauges, sizeof pool_gauges / sizeof pool_gauges[0], pools, pool_labels);
    json_decref(gpus);
    json_decref(vgpus);
    json_decref(nodes);
    json_decref(pools);
}

void gf_srv__metrics_pool_init(gf_server *srv)
{
    gf_metrics_add_collector(&srv->metrics, collect_pool, srv);
}
