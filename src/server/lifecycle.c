/* SPDX-License-Identifier: Apache-2.0 */
/* Node lifecycle and recovery: rebuilding the allocator from the store at start, heartbeat
 * timeouts (Ready -> NotReady, allocations lost), the grace release of lost allocations, and the
 * state-derived gauges of /metrics. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpufuse/log.h"
#include "server/server.h"

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static gf_status restore_pools(gf_server *srv, char *err, size_t errlen)
{
    json_t *rows = gf_store_query(srv->store, "SELECT name, strategy, oversub_tflops, "
                                              "oversub_vram FROM pools ORDER BY name", "");
    if (!rows) return GF_EIO;
    size_t i;
    json_t *r;
    gf_status st = GF_OK;
    json_array_foreach(rows, i, r) {
        gf_alloc_pool_spec p = {.name = jstr(r, "name"),
                                .oversub_tflops = json_number_value(json_object_get(r, "oversub_tflops")),
                                .oversub_vram = json_number_value(json_object_get(r, "oversub_vram"))};
        if (gf_alloc_strategy_parse(jstr(r, "strategy"), &p.strategy) != GF_OK)
            p.strategy = GF_ALLOC_BINPACK;
        if ((st = gf_alloc_pool_set(srv->alloc, &p, err, errlen)) != GF_OK) break;
    }
    json_decref(rows);
    return st;
}

static gf_status restore_nodes(gf_server *srv, char *err, size_t errlen)
{
    json_t *rows = gf_store_query(srv->store, "SELECT name, pool, status, labels AS labels_json "
                                              "FROM nodes ORDER BY registered_ms, name", "");
    if (!rows) return GF_EIO;
    size_t i;
    json_t *r;
    gf_status st = GF_OK;
    json_array_foreach(rows, i, r) {
        gf_alloc_label labels[GF_ALLOC_MAX_LABELS];
        size_t nl = 0;
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(r, "labels"), k, v) {
            if (nl == GF_ALLOC_MAX_LABELS || !json_is_string(v)) continue;
            labels[nl].key = k;
            labels[nl].value = json_string_value(v);
            nl++;
        }
        gf_alloc_node_spec ns = {.name = jstr(r, "name"), .pool = jstr(r, "pool"),
                                 .labels = labels, .n_labels = nl,
                                 .ready = !strcmp(jstr(r, "status"), "Ready")};
        if ((st = gf_alloc_node_add(srv->alloc, &ns, err, errlen)) != GF_OK) break;
    }
    json_decref(rows);
    if (st != GF_OK) return st;
    rows = gf_store_query(srv->store, "SELECT uuid, node, idx, model, vram_bytes, tflops, "
                                      "status, cordoned FROM gpus ORDER BY rowid", "");
    if (!rows) return GF_EIO;
    json_array_foreach(rows, i, r) {
        gf_alloc_gpu_spec gs = {.uuid = jstr(r, "uuid"), .node = jstr(r, "node"),
                                .model = jstr(r, "model"),
                                .index = (uint32_t)json_integer_value(json_object_get(r, "idx")),
                                .vram_bytes = (uint64_t)json_integer_value(json_object_get(r, "vram_bytes")),
                                .tflops = json_number_value(json_object_get(r, "tflops"))};
        if ((st = gf_alloc_gpu_add(srv->alloc, &gs, err, errlen)) != GF_OK) break;
        /* in use but gone from its node, or cordoned by an admin */
        if (!strcmp(jstr(r, "status"), "Missing") ||
            json_integer_value(json_object_get(r, "cordoned")))
            gf_alloc_gpu_cordon(srv->alloc, gs.uuid, 1, NULL, 0);
    }
    json_decref(rows);
    return st;
}

static gf_status restore_allocations(gf_server *srv, char *err, size_t errlen)
{
    json_t *rows = gf_store_query(srv->store,
                                  "SELECT workload, pool, qos, state, node, gpu_uuid, vram_request,"
                                  " vram_limit, tflops_request, tflops_limit FROM allocations"
                                  " ORDER BY workload, slot", "");
    if (!rows) return GF_EIO;
    gf_alloc_placement *pl = calloc(GF_ALLOC_MAX_GPUS, sizeof *pl);
    if (!pl) {
        json_decref(rows);
        return GF_ENOMEM;
    }
    gf_status st = GF_OK;
    size_t n = json_array_size(rows);
    for (size_t i = 0; i < n && st == GF_OK;) {
        json_t *first = json_array_get(rows, i);
        const char *wl = jstr(first, "workload");
        uint32_t np = 0;
        int lost = 0;
        size_t j = i;
        for (; j < n && !strcmp(jstr(json_array_get(rows, j), "workload"), wl); j++) {
            json_t *r = json_array_get(rows, j);
            if (np == GF_ALLOC_MAX_GPUS) continue;
            gf_alloc_placement *p = &pl[np++];
            memset(p, 0, sizeof *p);
            snprintf(p->node, sizeof p->node, "%s", jstr(r, "node"));
            snprintf(p->gpu_uuid, sizeof p->gpu_uuid, "%s", jstr(r, "gpu_uuid"));
            p->vram_request = (uint64_t)json_integer_value(json_object_get(r, "vram_request"));
            p->vram_limit = (uint64_t)json_integer_value(json_object_get(r, "vram_limit"));
            p->tflops_request = json_number_value(json_object_get(r, "tflops_request"));
            p->tflops_limit = json_number_value(json_object_get(r, "tflops_limit"));
            if (!strcmp(jstr(r, "state"), "lost")) lost = 1;
        }
        gf_alloc_qos qos = GF_ALLOC_QOS_MEDIUM;
        gf_alloc_qos_parse(jstr(first, "qos"), &qos);
        st = gf_alloc_restore(srv->alloc, wl, jstr(first, "pool"), qos, lost, pl, np, err, errlen);
        if (st != GF_OK)
            gf_log(GF_LOG_ERROR, "server", "could not restore workload %s: %s", wl, err);
        i = j;
    }
    free(pl);
    json_decref(rows);
    return st;
}

/* Leases get a full term after a (re)start: while the server was down no client could renew,
 * so a lease that ran out meanwhile (or would in a moment) says nothing about its client. */
static gf_status restore_leases(gf_server *srv)
{
    int n = 0;
    gf_status st = gf_store_exec(srv->store,
                                 "UPDATE workloads SET lease_expires_ms = ?1 + lease_ms "
                                 "WHERE lease_ms IS NOT NULL AND "
                                 "(lease_expires_ms IS NULL OR lease_expires_ms < ?1 + lease_ms)",
                                 &n, "i", (int64_t)gf_srv_now_ms());
    if (st == GF_OK && n > 0)
        gf_log(GF_LOG_INFO, "server", "%d workload lease(s) extended by their full term after "
               "the start", n);
    return st;
}

gf_status gf_srv__restore(gf_server *srv, char *err, size_t errlen)
{
    gf_status st = restore_pools(srv, err, errlen);
    if (st == GF_OK) st = restore_nodes(srv, err, errlen);
    if (st == GF_OK) st = restore_allocations(srv, err, errlen);
    if (st == GF_OK && (st = restore_leases(srv)) != GF_OK)
        snprintf(err, errlen, "cannot extend the workloads' leases: %s",
                 gf_store_errmsg(srv->store));
    if (st == GF_OK)
        gf_log(GF_LOG_INFO, "server", "restored %zu workload allocation(s) from the store",
               gf_alloc_count(srv->alloc));
    return st;
}

/* ---- heartbeats and grace ---------------------------------------------------------------------- */

static void node_lost(gf_server *srv, const char *node, uint64_t now)
{
    char reason[512];
    snprintf(reason, sizeof reason,
             "node %s missed heartbeats for %llu ms; its allocations are lost and will be "
             "released %llu ms after that unless the node comes back",
             node, (unsigned long long)srv->cfg.heartbeat_timeout_ms,
             (unsigned long long)srv->cfg.lost_grace_ms);
    gf_status st = gf_store_begin(srv->store);
    if (st == GF_OK)
        st = gf_store_exec(srv->store,
                           "UPDATE nodes SET status = 'NotReady', not_ready_since_ms = ? "
                           "WHERE name = ?", NULL, "it", (int64_t)now, node);
    if (st == GF_OK)
        st = gf_store_exec(srv->store,
                           "UPDATE allocations SET state = 'lost', lost_ms = ? "
                           "WHERE node = ? AND state = 'active'", NULL, "it", (int64_t)now, node);
    if (st == GF_OK)
        st = gf_store_exec(srv->store,
                           "UPDATE workloads SET status = 'Lost', reason = ?, updated_ms = ? "
                           "WHERE name IN (SELECT workload FROM allocations WHERE node = ?)",
                           NULL, "tit", reason, (int64_t)now, node);
    if (st == GF_OK) st = gf_store_commit(srv->store);
    if (st != GF_OK) {
        gf_store_rollback(srv->store);
        gf_log(GF_LOG_ERROR, "server", "could not mark node %s NotReady; will retry", node);
        return;
    }
    size_t n = 0;
    gf_alloc_node_lost(srv->alloc, node, NULL, NULL, &n);
    gf_metrics_inc(&srv->metrics, GF_SRV_C_NODE_LOST);
    gf_log(GF_LOG_WARN, "server", "node %s is NotReady (no heartbeat for %llu ms); %zu "
           "allocation(s) lost", node, (unsigned long long)srv->cfg.heartbeat_timeout_ms, n);
}

static void release_lost(gf_server *srv, const char *workload, uint64_t now)
{
    char reason[512];
    snprintf(reason, sizeof reason,
             "released: a node of this workload stayed NotReady past the %llu ms grace period; "
             "delete it and create it again to get new GPUs",
             (unsigned long long)srv->cfg.lost_grace_ms);
    gf_status st = gf_store_begin(srv->store);
    if (st == GF_OK)
        st = gf_store_exec(srv->store, "DELETE FROM allocations WHERE workload = ?", NULL, "t",
                           workload);
    if (st == GF_OK)
        st = gf_store_exec(srv->store,
                           "UPDATE workloads SET status = 'Released', reason = ?, updated_ms = ? "
                           "WHERE name = ?", NULL, "tit", reason, (int64_t)now, workload);
    if (st == GF_OK) st = gf_store_commit(srv->store);
    if (st != GF_OK) {
        gf_store_rollback(srv->store);
        gf_log(GF_LOG_ERROR, "server", "could not release workload %s; will retry", workload);
        return;
    }
    gf_alloc_release(srv->alloc, workload);
    gf_metrics_inc(&srv->metrics, GF_SRV_C_RELEASES_LOST);
    gf_log(GF_LOG_WARN, "server", "workload %s: lost allocations released after the grace "
           "period", workload);
}

/* A leased workload whose client stopped renewing (killed, its machine gone): deleted, as
 * DELETE /api/v1/workloads/NAME would; the agents then remove its vGPU regions. */
static void lease_expired(gf_server *srv, const char *workload, int64_t lease_ms, uint64_t now)
{
    int ch = 0;
    gf_status st = gf_store_begin(srv->store);
    if (st == GF_OK)
        st = gf_store_exec(srv->store, "DELETE FROM allocations WHERE workload = ?", NULL, "t",
                           workload);
    if (st == GF_OK)
        st = gf_store_exec(srv->store,
                           "DELETE FROM workloads WHERE name = ? AND lease_expires_ms <= ?", &ch,
                           "ti", workload, (int64_t)now);
    if (st == GF_OK && !ch) { /* renewed meanwhile (cannot happen under the lock, but cheap) */
        gf_store_rollback(srv->store);
        return;
    }
    if (st == GF_OK) st = gf_store_commit(srv->store);
    if (st != GF_OK) {
        gf_store_rollback(srv->store);
        gf_log(GF_LOG_ERROR, "server", "could not delete workload %s (lease expired); will "
               "retry", workload);
        return;
    }
    if (gf_alloc_release(srv->alloc, workload) == GF_OK)
        gf_metrics_inc(&srv->metrics, GF_SRV_C_RELEASES_LEASE);
    gf_log(GF_LOG_WARN, "server", "workload %s: lease expired (not renewed for %lld ms); "
           "deleted and its GPUs released", workload, (long long)lease_ms);
}

void gf_srv__missing_sweep(gf_server *srv)
{
    char err[256];
    json_t *rows = gf_store_query(srv->store,
                                  "SELECT uuid, node FROM gpus g WHERE g.status = 'Missing' AND "
                                  "NOT EXISTS (SELECT 1 FROM allocations a WHERE a.gpu_uuid = "
                                  "g.uuid) ORDER BY uuid", "");
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        if (gf_store_exec(srv->store, "DELETE FROM gpus WHERE uuid = ? AND status = 'Missing'",
                          NULL, "t", jstr(r, "uuid")) != GF_OK)
            continue;
        if (gf_alloc_gpu_remove(srv->alloc, jstr(r, "uuid"), err, sizeof err) != GF_OK)
            gf_log(GF_LOG_ERROR, "server", "allocator kept GPU %s: %s", jstr(r, "uuid"), err);
        gf_log(GF_LOG_INFO, "server", "missing GPU %s of node %s is free; removed it from the "
               "pool", jstr(r, "uuid"), jstr(r, "node"));
    }
    json_decref(rows);
}

void gf_srv_tick(gf_server *srv, uint64_t now_ms)
{
    pthread_mutex_lock(&srv->lock);
    /* A node gets a full timeout after the server (re)starts, whatever its last heartbeat. */
    int64_t cutoff = (int64_t)now_ms - (int64_t)srv->cfg.heartbeat_timeout_ms;
    json_t *rows = gf_store_query(srv->store,
                                  "SELECT name FROM nodes WHERE status = 'Ready' AND "
                                  "MAX(last_heartbeat_ms, ?) < ? ORDER BY name",
                                  "ii", (int64_t)srv->started_ms, cutoff);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) node_lost(srv, jstr(r, "name"), now_ms);
    json_decref(rows);
    gf_srv__missing_sweep(srv); /* after releases by lease or grace below, on the next tick */
    rows = gf_store_query(srv->store,
                          "SELECT DISTINCT workload FROM allocations WHERE state = 'lost' AND "
                          "lost_ms <= ? ORDER BY workload",
                          "i", (int64_t)now_ms - (int64_t)srv->cfg.lost_grace_ms);
    json_array_foreach(rows, i, r) release_lost(srv, jstr(r, "workload"), now_ms);
    json_decref(rows);
    rows = gf_store_query(srv->store,
                          "SELECT name, lease_ms FROM workloads WHERE lease_expires_ms IS NOT "
                          "NULL AND lease_expires_ms <= ? ORDER BY name",
                          "i", (int64_t)now_ms);
    json_array_foreach(rows, i, r)
        lease_expired(srv, jstr(r, "name"), json_integer_value(json_object_get(r, "lease_ms")),
                      now_ms);
    json_decref(rows);
    pthread_mutex_unlock(&srv->lock);
}

/* ---- /metrics: gauges from the current state --------------------------------------------------- */

static void collect_state(gf_mbuf *b, void *ctx)
{
    gf_server *srv = ctx;
    char l[256], e1[128];
    pthread_mutex_lock(&srv->lock);
    json_t *nodes = gf_store_query(srv->store,
                                   "SELECT pool, status, COUNT(*) AS n FROM nodes "
                                   "GROUP BY pool, status ORDER BY pool, status", "");
    json_t *pools = gf_store_query(
        srv->store,
        "SELECT p.name, (SELECT COUNT(*) FROM gpus g JOIN nodes n ON n.name = g.node "
        "WHERE n.pool = p.name) AS gpus, (SELECT COALESCE(SUM(g.vram_bytes), 0) FROM gpus g "
        "JOIN nodes n ON n.name = g.node WHERE n.pool = p.name) AS vram, "
        "(SELECT COALESCE(SUM(g.tflops), 0.0) FROM gpus g JOIN nodes n ON n.name = g.node "
        "WHERE n.pool = p.name) AS tflops, (SELECT COALESCE(SUM(vram_request), 0) FROM "
        "allocations a WHERE a.pool = p.name) AS vram_req, (SELECT COALESCE(SUM(tflops_request),"
        " 0.0) FROM allocations a WHERE a.pool = p.name) AS tflops_req, (SELECT COUNT(*) FROM "
        "workloads w WHERE w.pool = p.name) AS workloads FROM pools p ORDER BY p.name", "");
    json_t *allocs = gf_store_query(srv->store,
                                    "SELECT state, COUNT(*) AS n FROM allocations GROUP BY state "
                                    "ORDER BY state", "");
    pthread_mutex_unlock(&srv->lock);
    size_t i;
    json_t *r;
    gf_metrics_family(b, "gpufuse_nodes", "gauge", "Registered nodes, by pool and status");
    json_array_foreach(nodes, i, r) {
        gf_metrics_escape(jstr(r, "pool"), e1, sizeof e1);
        snprintf(l, sizeof l, "pool=\"%s\",status=\"%s\"", e1, jstr(r, "status"));
        gf_metrics_sample(b, "gpufuse_nodes", l, (double)json_integer_value(json_object_get(r, "n")));
    }
    static const struct {
        const char *key, *name, *help;
    } pool_gauges[] = {
        {"gpus", "gpufuse_pool_gpus", "GPUs registered in the pool"},
        {"vram", "gpufuse_pool_vram_bytes", "VRAM of the pool's GPUs"},
        {"tflops", "gpufuse_pool_tflops", "FP16 dense TFLOPs of the pool's GPUs"},
        {"vram_req", "gpufuse_pool_vram_requested_bytes", "VRAM requested by allocations"},
        {"tflops_req", "gpufuse_pool_tflops_requested", "TFLOPs requested by allocations"},
        {"workloads", "gpufuse_pool_workloads", "Workloads in the pool"},
    };
    for (size_t g = 0; g < sizeof pool_gauges / sizeof pool_gauges[0]; g++) {
        gf_metrics_family(b, pool_gauges[g].name, "gauge", pool_gauges[g].help);
        json_array_foreach(pools, i, r) {
            gf_metrics_escape(jstr(r, "name"), e1, sizeof e1);
            snprintf(l, sizeof l, "pool=\"%s\"", e1);
            gf_metrics_sample(b, pool_gauges[g].name, l,
                              json_number_value(json_object_get(r, pool_gauges[g].key)));
        }
    }
    gf_metrics_family(b, "gpufuse_allocations", "gauge",
                      "GPU allocations (one per GPU of a workload), by state");
    json_array_foreach(allocs, i, r) {
        snprintf(l, sizeof l, "state=\"%s\"", jstr(r, "state"));
        gf_metrics_sample(b, "gpufuse_allocations", l,
                          (double)json_integer_value(json_object_get(r, "n")));
    }
    json_decref(nodes);
    json_decref(pools);
    json_decref(allocs);
}

void gf_srv__metrics_init(gf_server *srv)
{
    gf_metrics_add_collector(&srv->metrics, collect_state, srv);
}
