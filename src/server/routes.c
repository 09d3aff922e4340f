/* SPDX-License-Identifier: Apache-2.0 */
/* The REST API: routing, authorization, and one handler per route (docs/api.md lists them).
 * Handlers run under the server lock; a write is acknowledged only after its transaction is
 * committed (and the allocator updated), so whatever a 2xx answered survives a crash. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "gpufuse/gpu_models.h"
#include "gpufuse/log.h"
#include "server/alerts.h"
#include "server/api_request.h"
#include "server/observe.h"
#include "server/server.h"

#define ERRLEN 512

uint64_t gf_srv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- responses -------------------------------------------------------------------------------- */

static void resp_json(gf_srv_resp *resp, unsigned status, json_t *v /* stolen */)
{
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(v);
    if (!resp->body) {
        resp->status = 500;
        resp->body = strdup("{\"error\":\"out of memory while writing the answer\"}");
    }
    resp->body_len = resp->body ? strlen(resp->body) : 0;
}

void gf_srv__error(gf_srv_resp *resp, unsigned status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    resp_json(resp, status, json_pack("{s:s}", "error", msg));
}

/* ---- list cache: a list answer is reused until the store's next write ------------------------ */

/* Serves a cached answer for key when the store has not changed since. Under the server lock. */
static int cache_get(gf_server *srv, const char *key, gf_srv_resp *resp)
{
    for (unsigned i = 0; i < GF_SRV_LIST_CACHE; i++) {
        gf_srv_list_cache *c = &srv->list_cache[i];
        if (c->key != key || c->generation != gf_store_generation(srv->store) || !c->body) continue;
        resp->body = malloc(c->len + 1);
        if (!resp->body) return 0;
        memcpy(resp->body, c->body, c->len + 1);
        resp->body_len = c->len;
        resp->status = 200;
        resp->content_type = "application/json";
        return 1;
    }
    return 0;
}

static void cache_put(gf_server *srv, const char *key, const gf_srv_resp *resp)
{
    if (resp->status != 200) return;
    gf_srv_list_cache *c = NULL;
    for (unsigned i = 0; i < GF_SRV_LIST_CACHE && !c; i++)
        if (srv->list_cache[i].key == key || !srv->list_cache[i].key) c = &srv->list_cache[i];
    if (!c) c = &srv->list_cache[0];
    char *copy = malloc(resp->body_len + 1);
    if (!copy) return;
    memcpy(copy, resp->body, resp->body_len + 1);
    free(c->body);
    c->key = key;
    c->body = copy;
    c->len = resp->body_len;
    c->generation = gf_store_generation(srv->store);
}

void gf_srv__cache_clear(gf_server *srv)
{
    for (unsigned i = 0; i < GF_SRV_LIST_CACHE; i++) {
        free(srv->list_cache[i].body);
        memset(&srv->list_cache[i], 0, sizeof srv->list_cache[i]);
    }
}

static void resp_items(gf_srv_resp *resp, json_t *rows)
{
    if (!rows) {
        gf_srv__error(resp, 500, "the database failed to answer; see the server's log");
        return;
    }
    resp_json(resp, 200, json_pack("{s:o}", "items", rows));
}

/* The single row of rows, or 404 naming what was not found. */
static void resp_one(gf_srv_resp *resp, json_t *rows, const char *kind, const char *name)
{
    if (!rows) {
        gf_srv__error(resp, 500, "the database failed to answer; see the server's log");
        return;
    }
    json_t *row = json_array_get(rows, 0);
    if (!row) {
        json_decref(rows);
        gf_srv__error(resp, 404, "%s \"%.100s\" not found; \"gpufuse ls %ss\" lists them", kind,
                      name, kind);
        return;
    }
    json_incref(row);
    json_decref(rows);
    resp_json(resp, 200, row);
}

/* ---- queries (one literal each: statements are cached by address) ---------------------------- */

#define POOL_SELECT                                                                              \
    "SELECT p.name, p.strategy, p.oversub_tflops AS oversubscription_tflops,"                    \
    " p.oversub_vram AS oversubscription_vram,"                                                  \
    " (SELECT COUNT(*) FROM nodes n WHERE n.pool = p.name) AS nodes,"                            \
    " (SELECT COUNT(*) FROM nodes n WHERE n.pool = p.name AND n.status = 'Ready') AS nodes_ready," \
    " (SELECT COUNT(*) FROM gpus g JOIN nodes n ON n.name = g.node WHERE n.pool = p.name) AS gpus," \
    " (SELECT COALESCE(SUM(g.vram_bytes), 0) FROM gpus g JOIN nodes n ON n.name = g.node"       \
    "   WHERE n.pool = p.name) AS vram_bytes,"                                                   \
    " (SELECT COALESCE(SUM(g.tflops), 0.0) FROM gpus g JOIN nodes n ON n.name = g.node"         \
    "   WHERE n.pool = p.name) AS tflops,"                                                       \
    " (SELECT COALESCE(SUM(a.vram_request), 0) FROM allocations a WHERE a.pool = p.name)"       \
    "   AS vram_requested,"                                                                      \
    " (SELECT COALESCE(SUM(a.tflops_request), 0.0) FROM allocations a WHERE a.pool = p.name)"   \
    "   AS tflops_requested,"                                                                    \
    " (SELECT COUNT(*) FROM workloads w WHERE w.pool = p.name) AS workloads, p.created_ms"      \
    " FROM pools p"

#define NODE_SELECT                                                                              \
    "SELECT n.name, n.pool, n.status, n.address, n.agent_version, n.labels AS labels_json,"      \
    " n.registered_ms, n.last_heartbeat_ms, n.not_ready_since_ms,"                               \
    " (SELECT COUNT(*) FROM gpus g WHERE g.node = n.name) AS gpus,"                              \
    " (SELECT COUNT(*) FROM allocations a WHERE a.node = n.name) AS allocations,"                \
    " (SELECT COUNT(*) FROM allocations a WHERE a.node = n.name AND a.state = 'lost')"          \
    "   AS allocations_lost"                                                                     \
    " FROM nodes n"

#define GPU_SELECT                                                                               \
    "SELECT g.uuid, g.node, n.pool, g.idx AS \"index\", g.model, g.model_key, g.vram_bytes,"     \
    " g.tflops, g.status, g.cordoned AS cordoned_bool, n.status AS node_status,"                \
    " COALESCE(SUM(a.vram_request), 0) AS vram_requested,"                                       \
    " COALESCE(SUM(a.vram_limit), 0) AS vram_limit_total,"                                       \
    " COALESCE(SUM(a.tflops_request), 0.0) AS tflops_requested,"                                 \
    " COALESCE(SUM(a.tflops_limit), 0.0) AS tflops_limit_total,"                                 \
    " COUNT(a.id) AS vgpus, g.vram_used, g.utilization, g.temperature_c, g.power_mw,"            \
    " g.usage_ms"                                                                                \
    " FROM gpus g JOIN nodes n ON n.name = g.node LEFT JOIN allocations a ON a.gpu_uuid = g.uuid"

#define WORKLOAD_SELECT                                                                          \
    "SELECT w.name, w.pool, w.status, w.reason, w.spec AS spec_json, w.created_ms,"             \
    " w.updated_ms, w.lease_ms, w.lease_expires_ms, (SELECT json_group_array(json_object('id', x.id, 'node', x.node,"           \
    "   'gpu_uuid', x.gpu_uuid, 'gpu_index', x.idx, 'vram_request', x.vram_request,"            \
    "   'vram_limit', x.vram_limit, 'tflops_request', x.tflops_request,"                        \
    "   'tflops_limit', x.tflops_limit, 'state', x.state, 'node_address', x.address))"          \
    "   FROM (SELECT a.*, g.idx, n.address FROM allocations a"                                   \
    "     LEFT JOIN gpus g ON g.uuid = a.gpu_uuid LEFT JOIN nodes n ON n.name = a.node"         \
    "     WHERE a.workload = w.name ORDER BY a.slot) x) AS allocations_json"                     \
    " FROM workloads w"

#define ALLOC_COLUMNS                                                                            \
    "SELECT a.id, a.workload, a.slot, a.node, a.gpu_uuid, g.idx AS gpu_index, a.pool,"          \
    " a.vram_request, a.vram_limit, a.tflops_request, a.tflops_limit, a.qos,"                    \
    " a.remote AS remote_bool, a.state, a.lost_ms,"                                              \
    " CASE WHEN a.lost_ms IS NULL THEN NULL ELSE a.lost_ms + ? END AS release_at_ms,"           \
    " a.vram_used, a.busy_ns, a.throttled_ns, a.created_ms, n.address AS node_address"
#define ALLOC_FROM                                                                               \
    " FROM allocations a LEFT JOIN gpus g ON g.uuid = a.gpu_uuid"                                \
    " LEFT JOIN nodes n ON n.name = a.node"
#define ALLOC_SELECT ALLOC_COLUMNS ALLOC_FROM

#define PROFILE_SELECT "SELECT name, spec AS spec_json, created_ms, updated_ms FROM profiles"

/* ---- pools ------------------------------------------------------------------------------------ */

/* A cached list: sql is the key (one literal per route). */
#define CACHED_LIST(srv, resp, sql, ...)                                                         \
    do {                                                                                         \
        static const char *const key_ = sql;                                                     \
        if (cache_get(srv, key_, resp)) return;                                                  \
        resp_items(resp, gf_store_query(srv->store, key_, __VA_ARGS__));                         \
        cache_put(srv, key_, resp);                                                              \
    } while (0)

static void pools_list(gf_server *srv, gf_srv_resp *resp)
{
    CACHED_LIST(srv, resp, POOL_SELECT " ORDER BY p.name", "");
}

static void pool_get(gf_server *srv, const char *name, gf_srv_resp *resp)
{
    resp_one(resp, gf_store_query(srv->store, POOL_SELECT " WHERE p.name = ?", "t", name),
             "pool", name);
}

static void pool_put(gf_server *srv, const char *name, const gf_srv_req *req,
                     gf_srv_resp *resp)
{
    char err[ERRLEN];
    gf_api_pool p;
    if (gf_api_check_name("pool name", name, err, sizeof err) != GF_OK ||
        gf_api_parse_pool(req->body, req->body_len, &p, err, sizeof err) != GF_OK) {
        gf_srv__error(resp, 400, "%s", err);
        return;
    }
    json_t *rows = gf_store_query(srv->store,
                                  "SELECT strategy, oversub_tflops, oversub_vram FROM pools "
                                  "WHERE name = ?", "t", name);
    json_t *old = rows ? json_array_get(rows, 0) : NULL;
    const char *strategy = p.strategy[0] ? p.strategy
                           : old ? json_string_value(json_object_get(old, "strategy"))
                                 : "binpack";
    double rt = p.oversub_tflops > 0 ? p.oversub_tflops
                : old ? json_real_value(json_object_get(old, "oversub_tflops")) : 1.0;
    double rv = p.oversub_vram > 0 ? p.oversub_vram
                : old ? json_real_value(json_object_get(old, "oversub_vram")) : 1.0;
    gf_alloc_pool_spec spec = {.name = name, .oversub_tflops = rt, .oversub_vram = rv};
    char sbuf[32];
    snprintf(sbuf, sizeof sbuf, "%s", strategy ? strategy : "binpack");
    json_decref(rows);
    if (gf_alloc_strategy_parse(sbuf, &spec.strategy) != GF_OK) {
        gf_srv__error(resp, 400, "strategy: \"%s\": use binpack, spread or least-fragmentation",
                      sbuf);
        return;
    }
    gf_status st = gf_store_exec(srv->store,
                                 "INSERT INTO pools(name, strategy, oversub_tflops, oversub_vram,"
                                 " created_ms) VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(name) DO "
                                 "UPDATE SET strategy = ?2, oversub_tflops = ?3, oversub_vram = ?4",
                                 NULL, "ttddi", name, gf_alloc_strategy_name(spec.strategy), rt, rv,
                                 (int64_t)gf_srv_now_ms());
    if (st != GF_OK) {
        gf_srv__error(resp, 500, "could not store pool \"%s\"; see the server's log", name);
        return;
    }
    if (gf_alloc_pool_set(srv->alloc, &spec, err, sizeof err) != GF_OK)
        gf_log(GF_LOG_ERROR, "server", "pool %s stored but the allocator refused it: %s", name,
               err);
    pool_get(srv, name, resp);
}

/* ---- nodes ------------------------------------------------------------------------------------ */

static void nodes_list(gf_server *srv, gf_srv_resp *resp)
{
    CACHED_LIST(srv, resp, NODE_SELECT " ORDER BY n.name", "");
}

static void node_get(gf_server *srv, const char *name, gf_srv_resp *resp)
{
    resp_one(resp, gf_store_query(srv->store, NODE_SELECT " WHERE n.name = ?", "t", name), "node",
             name);
}

static char *labels_json(const gf_api_label *labels, unsigned n)
{
    json_t *o = json_object();
    for (unsigned i = 0; i < n; i++)
        json_object_set_new(o, labels[i].key, json_string(labels[i].value));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

/* Capacity of a registered GPU: what the agent said, else the model table's. */
static int gpu_capacity(const gf_api_gpu_info *g, const gf_gpu_model **model, double *tflops,
                        char *err, size_t errlen, unsigned i)
{
    *model = gf_gpu_model_find(g->model);
    *tflops = g->tflops > 0 ? g->tflops : *model ? (*model)->fp16_tflops : 0;
    if (!(*tflops > 0)) {
        snprintf(err, errlen, "gpus[%u].model: \"%s\" is not in the GPU model table (gpufuse "
                 "models lists it); give gpus[%u].tflops (FP16 dense TFLOPs)", i, g->model, i);
        return -1;
    }
    if (g->vram_bytes == 0 || g->vram_bytes > (1ull << 50)) {
        snprintf(err, errlen, "gpus[%u].vram_bytes: %llu: must be above 0 and at most 1 PiB", i,
                 (unsigned long long)g->vram_bytes);
        return -1;
    }
    return 0;
}

/* Node becomes Ready: its lost allocations are active again, their workloads Running. */
static gf_status node_set_ready_db(gf_server *srv, const char *name, uint64_t now)
{
    gf_status st = gf_store_exec(srv->store,
                                 "UPDATE nodes SET status = 'Ready', last_heartbeat_ms = ?, "
                                 "not_ready_since_ms = NULL WHERE name = ?",
                                 NULL, "it", (int64_t)now, name);
    if (st == GF_OK)
        st = gf_store_exec(srv->store,
                           "UPDATE allocations SET state = 'active', lost_ms = NULL "
                           "WHERE node = ? AND state = 'lost'", NULL, "t", name);
    if (st == GF_OK)
        st = gf_store_exec(srv->store,
                           "UPDATE workloads SET status = 'Running', reason = '', updated_ms = ? "
                           "WHERE status = 'Lost' AND NOT EXISTS (SELECT 1 FROM allocations a "
                           "WHERE a.workload = workloads.name AND a.state = 'lost')",
                           NULL, "i", (int64_t)now);
    return st;
}

/* Joins the strings of JSON array names into buf ("a, b, c (and 4 more)"). */
static void join_names(json_t *names, char *buf, size_t len)
{
    size_t i, used = 0, n = json_array_size(names);
    json_t *v;
    buf[0] = 0;
    json_array_foreach(names, i, v) {
        const char *s = json_string_value(v);
        size_t need = strlen(s) + 2;
        if (used + need + 24 >= len) {
            snprintf(buf + used, len - used, " (and %zu more)", n - i);
            return;
        }
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", s);
    }
}

/* Names of the workloads with an allocation on GPU uuid (gpu != NULL) or on node, in name
 * order: a JSON array of strings, NULL when the database failed. */
static json_t *workloads_on(gf_server *srv, const char *node, const char *gpu)
{
    json_t *rows = gpu ? gf_store_query(srv->store,
                                        "SELECT DISTINCT workload FROM allocations "
                                        "WHERE gpu_uuid = ? ORDER BY workload", "t", gpu)
                       : gf_store_query(srv->store,
                                        "SELECT DISTINCT workload FROM allocations "
                                        "WHERE node = ? ORDER BY workload", "t", node);
    if (!rows) return NULL;
    json_t *names = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
        json_array_append(names, json_object_get(row, "workload"));
    json_decref(rows);
    return names;
}

/* The workloads holding allocations on a node (or one GPU) that is to be removed: the list, or
 * NULL with the answer sent — 500, or 409 naming them unless force. what names the thing in
 * messages; `gpufuse rm KIND ARG --force` is how to force it. */
static json_t *holders_unless_refused(gf_server *srv, gf_srv_resp *resp, const char *node,
                                      const char *gpu, int force, const char *what,
                                      const char *kind, const char *arg)
{
    json_t *wl = workloads_on(srv, node, gpu);
    if (!wl) {
        gf_srv__error(resp, 500, "the database failed to answer; see the server's log");
        return NULL;
    }
    if (!json_array_size(wl) || force) return wl;
    char names[600], err[2048];
    join_names(wl, names, sizeof names);
    snprintf(err, sizeof err, "%s has allocations of %zu workload(s): %s; delete them first "
             "(gpufuse rm workload NAME), or add force=true (gpufuse rm %s %s --force) to delete "
             "them with the %s", what, json_array_size(wl), names, kind, arg,
             gpu ? "GPU" : "node");
    resp_json(resp, 409, json_pack("{s:s,s:o}", "error", err, "workloads", wl));
    return NULL;
}

/* In the registration's transaction: each GPU of node r->name that r no longer lists is deleted
 * when no allocation uses it, else marked Missing. *gone gets [{uuid, idx, workloads}] for
 * missing_gpus_apply (workloads empty: deleted). */
static gf_status missing_gpus_db(gf_server *srv, const gf_api_register *r, json_t **gone)
{
    json_t *rows = gf_store_query(srv->store, "SELECT uuid, idx FROM gpus WHERE node = ? "
                                              "ORDER BY idx, uuid", "t", r->name);
    if (!rows) return GF_EIO;
    *gone = json_array();
    gf_status st = GF_OK;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        const char *uuid = json_string_value(json_object_get(row, "uuid"));
        int listed = 0;
        for (unsigned j = 0; j < r->n_gpus && !listed; j++) listed = !strcmp(r->gpus[j].uuid, uuid);
        if (listed) continue;
        json_t *wl = workloads_on(srv, NULL, uuid);
        if (!wl) {
            st = GF_EIO;
            break;
        }
        st = json_array_size(wl)
                 ? gf_store_exec(srv->store, "UPDATE gpus SET status = 'Missing' WHERE uuid = ?",
                                 NULL, "t", uuid)
                 : gf_store_exec(srv->store, "DELETE FROM gpus WHERE uuid = ?", NULL, "t", uuid);
        json_array_append_new(*gone, json_pack("{s:s,s:O,s:o}", "uuid", uuid, "idx",
                                               json_object_get(row, "idx"), "workloads", wl));
        if (st != GF_OK) break;
    }
    json_decref(rows);
    return st;
}

/* After the commit: the allocator follows the store (removes or cordons), and the log says
 * which workloads keep a Missing GPU alive. */
static void missing_gpus_apply(gf_server *srv, const char *node, json_t *gone)
{
    char err[ERRLEN], names[512];
    size_t i;
    json_t *g;
    json_array_foreach(gone, i, g) {
        const char *uuid = json_string_value(json_object_get(g, "uuid"));
        long long idx = (long long)json_integer_value(json_object_get(g, "idx"));
        json_t *wl = json_object_get(g, "workloads");
        if (!json_array_size(wl)) {
            if (gf_alloc_gpu_remove(srv->alloc, uuid, err, sizeof err) != GF_OK)
                gf_log(GF_LOG_ERROR, "server", "allocator kept GPU %s: %s", uuid, err);
            gf_log(GF_LOG_WARN, "server", "node %s no longer reports GPU %lld (%s); removed it "
                   "from the pool", node, idx, uuid);
            continue;
        }
        gf_alloc_gpu_cordon(srv->alloc, uuid, 1, NULL, 0);
        join_names(wl, names, sizeof names);
        gf_log(GF_LOG_WARN, "server", "node %s no longer reports GPU %lld (%s), but workload(s) "
               "%s hold allocations on it: it is Missing, takes no new placement, and leaves the "
               "pool once they are deleted (gpufuse rm workload NAME)", node, idx, uuid, names);
    }
}

static void node_register(gf_server *srv, const gf_srv_req *req, gf_srv_role role,
                          const char *token_node, gf_srv_resp *resp)
{
    char err[ERRLEN];
    gf_api_register *r = malloc(sizeof *r);
    if (!r) {
        gf_srv__error(resp, 500, "out of memory");
        return;
    }
    char *labels = NULL;
    json_t *existing = NULL, *gone = NULL;
    if (gf_api_parse_register(req->body, req->body_len, r, err, sizeof err) != GF_OK) {
        gf_srv__error(resp, 400, "%s", err);
        goto out;
    }
    if (role == GF_SRV_NODE && strcmp(r->name, token_node)) {
        gf_metrics_inc(&srv->metrics, GF_SRV_C_AUTH_FAILED);
        gf_srv__error(resp, 403, "this token is for node \"%s\", not \"%s\"; make one with "
                      "\"gpufuse token create --node %s\"", token_node, r->name, r->name);
        goto out;
    }
    const char *pool = r->pool[0] ? r->pool : "default";
    /* Validate everything before changing anything: the allocator cannot take a GPU back. */
    const gf_gpu_model *models[GF_API_MAX_GPUS];
    double tflops[GF_API_MAX_GPUS];
    for (unsigned i = 0; i < r->n_gpus; i++) {
        if (gpu_capacity(&r->gpus[i], &models[i], &tflops[i], err, sizeof err, i)) {
            gf_srv__error(resp, 400, "%s", err);
            goto out;
        }
        json_t *rows = gf_store_query(srv->store, "SELECT node FROM gpus WHERE uuid = ?", "t",
                                      r->gpus[i].uuid);
        const char *owner = json_string_value(json_object_get(json_array_get(rows, 0), "node"));
        if (owner && strcmp(owner, r->name)) {
            gf_srv__error(resp, 409, "gpus[%u].uuid: GPU %s is registered on node \"%s\"; a GPU "
                          "belongs to one node", i, r->gpus[i].uuid, owner);
            json_decref(rows);
            goto out;
        }
        json_decref(rows);
    }
    existing = gf_store_query(srv->store, "SELECT pool, status FROM nodes WHERE name = ?", "t",
                              r->name);
    json_t *old = json_array_get(existing, 0);
    if (old && strcmp(json_string_value(json_object_get(old, "pool")), pool)) {
        gf_srv__error(resp, 409, "node \"%s\" is in pool \"%s\"; it cannot move to pool \"%s\" "
                      "while registered", r->name,
                      json_string_value(json_object_get(old, "pool")), pool);
        goto out;
    }
    labels = labels_json(r->labels, r->n_labels);
    uint64_t now = gf_srv_now_ms();
    gf_status st = gf_store_begin(srv->store);
    if (st == GF_OK)
        st = gf_store_exec(srv->store,
                           "INSERT OR IGNORE INTO pools(name, created_ms) VALUES(?, ?)", NULL,
                           "ti", pool, (int64_t)now);
    if (st == GF_OK)
        st = gf_store_exec(srv->store,
                           "INSERT INTO nodes(name, pool, labels, address, agent_version, status,"
                           " registered_ms, last_heartbeat_ms) VALUES(?1, ?2, ?3, ?4, ?5, 'Ready',"
                           " ?6, ?6) ON CONFLICT(name) DO UPDATE SET labels = ?3, address = ?4,"
                           " agent_version = ?5",
                           NULL, "ttttti", r->name, pool, labels, r->address, r->agent_version,
                           (int64_t)now);
    if (st == GF_OK) st = node_set_ready_db(srv, r->name, now);
    for (unsigned i = 0; st == GF_OK && i < r->n_gpus; i++)
        st = gf_store_exec(srv->store,
                           "INSERT INTO gpus(uuid, node, idx, model, model_key, vram_bytes, tflops)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(uuid) DO UPDATE SET"
                           " idx = ?3, model = ?4, model_key = ?5, status = 'Ready'",
                           NULL, "ttittid", r->gpus[i].uuid, r->name, (int64_t)r->gpus[i].index,
                           r->gpus[i].model, models[i] ? models[i]->key : "",
                           (int64_t)r->gpus[i].vram_bytes, tflops[i]);
    /* GPUs it no longer reports: removed when free, else Missing until their workloads go */
    if (st == GF_OK && old) st = missing_gpus_db(srv, r, &gone);
    if (st == GF_OK) st = gf_store_commit(srv->store);
    if (st != GF_OK) {
        gf_store_rollback(srv->store);
        gf_srv__error(resp, 500, "could not store node \"%s\"; see the server's log", r->name);
        goto out;
    }
    /* The allocator: add what is new, mark the node Ready. */
    if (!old) {
        gf_alloc_label al[GF_API_MAX_LABELS];
        for (unsigned i = 0; i < r->n_labels; i++) {
            al[i].key = r->labels[i].key;
            al[i].value = r->labels[i].value;
        }
        gf_alloc_node_spec ns = {.name = r->name, .pool = pool, .labels = al,
                                 .n_labels = r->n_labels, .ready = 1};
        if (gf_alloc_node_add(srv->alloc, &ns, err, sizeof err) != GF_OK)
            gf_log(GF_LOG_ERROR, "server", "allocator refused node %s: %s", r->name, err);
    } else {
        gf_alloc_node_set_ready(srv->alloc, r->name, 1, NULL, 0);
    }
    for (unsigned i = 0; i < r->n_gpus; i++) {
        gf_alloc_gpu_info gi;
        int64_t cordoned = 0; /* an admin's cordon outlives the GPU being Missing */
        gf_store_query_int(srv->store, "SELECT cordoned FROM gpus WHERE uuid = ?", 0, &cordoned,
                           "t", r->gpus[i].uuid);
        if (gf_alloc_gpu_get(srv->alloc, r->gpus[i].uuid, &gi) == GF_OK) {
            gf_alloc_gpu_cordon(srv->alloc, r->gpus[i].uuid, cordoned != 0, NULL, 0);
            continue;
        }
        gf_alloc_gpu_spec gs = {.uuid = r->gpus[i].uuid, .node = r->name,
                                .model = r->gpus[i].model, .index = r->gpus[i].index,
                                .vram_bytes = r->gpus[i].vram_bytes, .tflops = tflops[i]};
        if (gf_alloc_gpu_add(srv->alloc, &gs, err, sizeof err) != GF_OK)
            gf_log(GF_LOG_ERROR, "server", "allocator refused GPU %s: %s", r->gpus[i].uuid, err);
        else if (cordoned)
            gf_alloc_gpu_cordon(srv->alloc, r->gpus[i].uuid, 1, NULL, 0);
    }
    gf_log(GF_LOG_INFO, "server", "node %s registered with %u GPU(s) in pool %s", r->name,
           r->n_gpus, pool);
    missing_gpus_apply(srv, r->name, gone);
    json_t *rows = gf_store_query(srv->store, NODE_SELECT " WHERE n.name = ?", "t", r->name);
    json_t *row = json_array_get(rows, 0);
    if (row) {
        json_object_set_new(row, "heartbeat_interval_ms",
                            json_integer((json_int_t)(srv->cfg.heartbeat_timeout_ms / 3)));
        json_incref(row);
    }
    json_decref(rows);
    resp_json(resp, old ? 200 : 201, row);
out:
    json_decref(existing);
    json_decref(gone);
    free(labels);
    free(r);
}

/* A node's allocations, as the agent needs them: with the SHA-256 of each workload's worker
 * token, which the node's worker checks a client's token against (never the token itself). */
static json_t *node_allocations(gf_server *srv, const char *node)
{
    return gf_store_query(srv->store,
                          ALLOC_COLUMNS ", w.worker_token_sha256" ALLOC_FROM
                          " LEFT JOIN workloads w ON w.name = a.workload"
                          " WHERE a.node = ? ORDER BY a.id",
                          "it", (int64_t)srv->cfg.lost_grace_ms, node);
}

/* Applies a usage report from node (its own GPUs and allocations only). */
static gf_status apply_usage(gf_server *srv, const char *node, const gf_api_usage *u,
                             unsigned *unknown)
{
    int64_t now = (int64_t)gf_srv_now_ms();
    *unknown = 0;
    gf_status st = gf_store_begin(srv->store);
    for (unsigned i = 0; st == GF_OK && i < u->n_gpus; i++) {
        int ch = 0;
        const gf_api_gpu_usage *g = &u->gpus[i];
        st = gf_store_exec(srv->store,
                           "UPDATE gpus SET vram_used = ?, utilization = ?, temperature_c = ?, "
                           "power_mw = ?, usage_ms = ? WHERE uuid = ? AND node = ?",
                           &ch, "iddditt", (int64_t)g->vram_used, g->utilization,
                           g->temperature_c < 0 ? NAN : (double)g->temperature_c,
                           g->power_mw < 0 ? NAN : (double)g->power_mw, now, g->uuid, node);
        if (!ch) (*unknown)++;
    }
    for (unsigned i = 0; st == GF_OK && i < u->n_vgpus; i++) {
        int ch = 0;
        const gf_api_vgpu_usage *v = &u->vgpus[i];
        st = gf_store_exec(srv->store,
                           "UPDATE allocations SET vram_used = ?, busy_ns = ?, throttled_ns = ? "
                           "WHERE id = ? AND node = ?",
                           &ch, "iiitt", (int64_t)v->vram_used, (int64_t)v->busy_ns,
                           (int64_t)v->throttled_ns, v->allocation, node);
        if (!ch) (*unknown)++;
    }
    if (st == GF_OK) st = gf_srv__obs_usage(srv, node, u, now);
    if (st == GF_OK) return gf_store_commit(srv->store);
    gf_store_rollback(srv->store);
    return st;
}

static void node_heartbeat(gf_server *srv, const char *name, const gf_srv_req *req,
                           gf_srv_resp *resp)
{
    char err[ERRLEN];
    gf_api_usage *u = NULL;
    json_t *rows = gf_store_query(srv->store, "SELECT status FROM nodes WHERE name = ?", "t",
                                  name);
    json_t *row = json_array_get(rows, 0);
    if (!row) {
        json_decref(rows);
        gf_srv__error(resp, 404, "node \"%s\" is not registered; register it first (POST "
                      "/api/v1/nodes/register)", name);
        return;
    }
    int was_ready = !strcmp(json_string_value(json_object_get(row, "status")), "Ready");
    json_decref(rows);
    unsigned unknown = 0;
    if (req->body_len) {
        u = malloc(sizeof *u);
        if (!u || gf_api_parse_usage(req->body, req->body_len, u, err, sizeof err) != GF_OK) {
            gf_srv__error(resp, u ? 400 : 500, "%s", u ? err : "out of memory");
            free(u);
            return;
        }
    }
    uint64_t now = gf_srv_now_ms();
    gf_status st = gf_store_begin(srv->store);
    if (st == GF_OK) st = node_set_ready_db(srv, name, now);
    if (st == GF_OK) st = gf_store_commit(srv->store);
    else gf_store_rollback(srv->store);
    if (st == GF_OK && u) st = apply_usage(srv, name, u, &unknown);
    free(u);
    if (st != GF_OK) {
        gf_srv__error(resp, 500, "could not record the heartbeat; see the server's log");
        return;
    }
    gf_metrics_inc(&srv->metrics, GF_SRV_C_HEARTBEATS);
    if (!was_ready) {
        gf_alloc_node_set_ready(srv->alloc, name, 1, NULL, 0);
        gf_log(GF_LOG_INFO, "server", "node %s is Ready again", name);
    }
    json_t *allocs = node_allocations(srv, name);
    resp_json(resp, 200,
              json_pack("{s:s,s:I,s:o,s:I}", "status", "Ready", "heartbeat_interval_ms",
                        (json_int_t)(srv->cfg.heartbeat_timeout_ms / 3), "allocations",
                        allocs ? allocs : json_array(), "unknown", (json_int_t)unknown));
}

static void node_usage(gf_server *srv, const char *name, const gf_srv_req *req,
                       gf_srv_resp *resp)
{
    char err[ERRLEN];
    int64_t exists = 0;
    gf_store_query_int(srv->store, "SELECT COUNT(*) FROM nodes WHERE name = ?", 0, &exists, "t",
                       name);
    if (!exists) {
        gf_srv__error(resp, 404, "node \"%s\" is not registered", name);
        return;
    }
    gf_api_usage *u = malloc(sizeof *u);
    if (!u) {
        gf_srv__error(resp, 500, "out of memory");
        return;
    }
    unsigned unknown = 0;
    if (gf_api_parse_usage(req->body, req->body_len, u, err, sizeof err) != GF_OK) {
        gf_srv__error(resp, 400, "%s", err);
    } else if (apply_usage(srv, name, u, &unknown) != GF_OK) {
        gf_srv__error(resp, 500, "could not record the usage; see the server's log");
    } else {
        gf_metrics_inc(&srv->metrics, GF_SRV_C_USAGE_REPORTS);
        resp_json(resp, 200, json_pack("{s:I}", "unknown", (json_int_t)unknown));
    }
    free(u);
}

static gf_status workload_delete_one(gf_server *srv, const char *name, int *found);

/* The query of DELETE /api/v1/nodes/NAME and /api/v1/gpus/UUID: only force=true|false (1|0, or
 * bare). 0, or -1 after answering 400. */
static int parse_force(const gf_srv_req *req, const char *route, int *force, gf_srv_resp *resp)
{
    *force = 0;
    for (unsigned i = 0; i < req->n_args; i++) {
        const char *k = req->args[2 * i], *v = req->args[2 * i + 1];
        if (strcmp(k, "force")) {
            gf_srv__error(resp, 400, "unknown query argument \"%.60s\"; DELETE %s takes only "
                          "force=true", k, route);
            return -1;
        }
        if (!v || !strcmp(v, "true") || !strcmp(v, "1")) {
            *force = 1;
        } else if (!strcmp(v, "false") || !strcmp(v, "0")) {
            *force = 0;
        } else {
            gf_srv__error(resp, 400, "force: \"%.60s\": use true or false", v);
            return -1;
        }
    }
    return 0;
}

/* Forced removal: deletes the workloads wl names, as DELETE /api/v1/workloads/NAME does. 0, or
 * -1 after answering 500; what names the hardware in the message. */
static int delete_workloads(gf_server *srv, json_t *wl, const char *what, gf_srv_resp *resp)
{
    size_t i;
    json_t *w;
    json_array_foreach(wl, i, w) {
        int found = 0;
        if (workload_delete_one(srv, json_string_value(w), &found) != GF_OK) {
            gf_srv__error(resp, 500, "could not delete workload \"%s\" of %s (%zu of %zu deleted "
                          "before it); see the server's log and try again",
                          json_string_value(w), what, i, json_array_size(wl));
            return -1;
        }
    }
    return 0;
}

/* DELETE /api/v1/nodes/NAME[?force=true]: takes a node out of the pool. Refused (409, naming
 * them) while workloads hold allocations on it, unless forced: then they are deleted first, as
 * DELETE /api/v1/workloads/NAME does. The node, its GPUs (store and allocator) go, and its node
 * tokens are revoked, so that an agent still running with one gets 401 instead of registering
 * the node again. */
static void node_delete(gf_server *srv, const char *name, const gf_srv_req *req,
                        gf_srv_resp *resp)
{
    char err[1024], names[600];
    int force;
    if (parse_force(req, "/api/v1/nodes/NAME", &force, resp)) return;
    int64_t exists = 0;
    gf_store_query_int(srv->store, "SELECT COUNT(*) FROM nodes WHERE name = ?", 0, &exists, "t",
                       name);
    if (!exists) {
        gf_srv__error(resp, 404, "node \"%s\" not found; \"gpufuse ls nodes\" lists them", name);
        return;
    }
    snprintf(names, sizeof names, "node \"%s\"", name);
    json_t *wl = holders_unless_refused(srv, resp, name, NULL, force, names, "node", name);
    if (!wl) return;
    if (delete_workloads(srv, wl, names, resp)) {
        json_decref(wl);
        return;
    }
    int n_gpus = 0, n_tokens = 0;
    gf_status st = gf_store_begin(srv->store);
    if (st == GF_OK)
        st = gf_store_exec(srv->store, "DELETE FROM gpus WHERE node = ?", &n_gpus, "t", name);
    if (st == GF_OK)
        st = gf_store_exec(srv->store, "DELETE FROM nodes WHERE name = ?", NULL, "t", name);
    /* kept as revoked (not deleted) so that their holder is told why it is refused */
    if (st == GF_OK)
        st = gf_store_exec(srv->store, "UPDATE tokens SET kind = 'node-revoked' "
                           "WHERE kind = 'node' AND node = ?", &n_tokens, "t", name);
    if (st == GF_OK) st = gf_store_commit(srv->store);
    if (st != GF_OK) {
        gf_store_rollback(srv->store);
        json_decref(wl);
        gf_srv__error(resp, 500, "could not remove node \"%s\"; see the server's log", name);
        return;
    }
    if (gf_alloc_node_remove(srv->alloc, name, err, sizeof err) != GF_OK)
        gf_log(GF_LOG_ERROR, "server", "allocator kept node %s: %s", name, err);
    gf_log(GF_LOG_WARN, "server", "node %s removed: %d GPU(s), %zu workload(s) deleted, %d node "
           "token(s) revoked", name, n_gpus, json_array_size(wl), n_tokens);
    resp_json(resp, 200, json_pack("{s:s,s:i,s:o,s:i}", "deleted", name, "gpus", n_gpus,
                                   "workloads_deleted", wl, "tokens_revoked", n_tokens));
}

/* DELETE /api/v1/gpus/UUID[?force=true]: takes one GPU out of the pool, as node removal does for
 * a whole node: refused (409, naming them) while workloads hold allocations on it, unless forced
 * (they are deleted first, all their GPUs released). The GPU leaves the store and the allocator;
 * its node stays. An agent that still reports it adds it back when it registers again (at its
 * start, or when the server forgot its node), so this is for a GPU that is gone or failing while
 * its machine keeps serving the others. */
static void gpu_delete(gf_server *srv, const char *uuid, const gf_srv_req *req,
                       gf_srv_resp *resp)
{
    char err[ERRLEN], what[300];
    int force;
    if (parse_force(req, "/api/v1/gpus/UUID", &force, resp)) return;
    json_t *rows = gf_store_query(srv->store, "SELECT node, idx FROM gpus WHERE uuid = ?", "t",
                                  uuid);
    if (!rows) {
        gf_srv__error(resp, 500, "the database failed to answer; see the server's log");
        return;
    }
    json_t *row = json_array_get(rows, 0);
    if (!row) {
        json_decref(rows);
        gf_srv__error(resp, 404, "GPU \"%s\" not found; \"gpufuse ls gpus\" lists them", uuid);
        return;
    }
    char node[GF_ALLOC_NAME_MAX];
    snprintf(node, sizeof node, "%s", json_string_value(json_object_get(row, "node")));
    json_int_t idx = json_integer_value(json_object_get(row, "idx"));
    json_decref(rows);
    snprintf(what, sizeof what, "GPU \"%s\" (node \"%s\", index %lld)", uuid, node,
             (long long)idx);
    json_t *wl = holders_unless_refused(srv, resp, NULL, uuid, force, what, "gpu", uuid);
    if (!wl) return;
    if (delete_workloads(srv, wl, what, resp)) {
        json_decref(wl);
        return;
    }
    /* a Missing GPU may already have left with its last workload (gf_srv__missing_sweep) */
    if (gf_store_exec(srv->store, "DELETE FROM gpus WHERE uuid = ?", NULL, "t", uuid) != GF_OK) {
        json_decref(wl);
        gf_srv__error(resp, 500, "could not remove %s; see the server's log", what);
        return;
    }
    gf_alloc_gpu_info gi;
    if (gf_alloc_gpu_get(srv->alloc, uuid, &gi) == GF_OK &&
        gf_alloc_gpu_remove(srv->alloc, uuid, err, sizeof err) != GF_OK)
        gf_log(GF_LOG_ERROR, "server", "allocator kept GPU %s: %s", uuid, err);
    gf_log(GF_LOG_WARN, "server", "%s removed, %zu workload(s) deleted; its agent adds it back "
           "if it registers again while still reporting it", what, json_array_size(wl));
    resp_json(resp, 200, json_pack("{s:s,s:s,s:I,s:o}", "deleted", uuid, "node", node, "index",
                                   idx, "workloads_deleted", wl));
}

/* POST /api/v1/gpus/UUID/cordon | uncordon: an admin takes a GPU out of placement without
 * removing it (its allocations stay and count), or puts it back. Kept in the store, so it holds
 * across restarts and re-registrations; a Missing GPU stays unplaceable either way. Answers the
 * GPU as GET does. */
static void gpu_cordon(gf_server *srv, const char *uuid, int on, const gf_srv_req *req,
                       gf_srv_resp *resp)
{
    char err[ERRLEN];
    if (req->body_len || req->n_args) {
        gf_srv__error(resp, 400, "%s: POST /api/v1/gpus/UUID/%s takes no body and no query "
                      "arguments", req->body_len ? "body" : req->args[0],
                      on ? "cordon" : "uncordon");
        return;
    }
    int changed = 0;
    if (gf_store_exec(srv->store, "UPDATE gpus SET cordoned = ? WHERE uuid = ?", &changed, "it",
                      (int64_t)on, uuid) != GF_OK) {
        gf_srv__error(resp, 500, "could not store the cordon of GPU \"%s\"; see the server's "
                      "log", uuid);
        return;
    }
    if (!changed) {
        gf_srv__error(resp, 404, "GPU \"%s\" not found; \"gpufuse ls gpus\" lists them", uuid);
        return;
    }
    int64_t missing = 0;
    gf_store_query_int(srv->store, "SELECT COUNT(*) FROM gpus WHERE uuid = ? AND status = "
                       "'Missing'", 0, &missing, "t", uuid);
    if (gf_alloc_gpu_cordon(srv->alloc, uuid, on || missing, err, sizeof err) != GF_OK)
        gf_log(GF_LOG_ERROR, "server", "allocator: cordon of GPU %s: %s", uuid, err);
    gf_log(GF_LOG_INFO, "server", "GPU %s %s", uuid,
           on ? "cordoned: it takes no new placement" : "uncordoned");
    resp_one(resp, gf_store_query(srv->store, GPU_SELECT " WHERE g.uuid = ? GROUP BY g.uuid",
                                  "t", uuid), "gpu", uuid);
}

/* ---- GPUs, allocations, profiles ------------------------------------------------------------- */

static void gpus_list(gf_server *srv, gf_srv_resp *resp)
{
    CACHED_LIST(srv, resp, GPU_SELECT " GROUP BY g.uuid ORDER BY g.node, g.idx", "");
}

static void gpu_get(gf_server *srv, const char *uuid, gf_srv_resp *resp)
{
    resp_one(resp, gf_store_query(srv->store, GPU_SELECT " WHERE g.uuid = ? GROUP BY g.uuid",
                                  "t", uuid),
             "gpu", uuid);
}

static void allocations_list(gf_server *srv, gf_srv_resp *resp)
{
    CACHED_LIST(srv, resp, ALLOC_SELECT " ORDER BY a.workload, a.slot", "i",
                (int64_t)srv->cfg.lost_grace_ms);
}

static void allocation_get(gf_server *srv, const char *id, gf_srv_resp *resp)
{
    resp_one(resp, gf_store_query(srv->store, ALLOC_SELECT " WHERE a.id = ?", "it",
                                  (int64_t)srv->cfg.lost_grace_ms, id),
             "allocation", id);
}

static void profiles_list(gf_server *srv, gf_srv_resp *resp)
{
    CACHED_LIST(srv, resp, PROFILE_SELECT " ORDER BY name", "");
}

static void profile_get(gf_server *srv, const char *name, gf_srv_resp *resp)
{
    resp_one(resp, gf_store_query(srv->store, PROFILE_SELECT " WHERE name = ?", "t", name),
             "profile", name);
}

static void profile_put(gf_server *srv, const char *name, const gf_srv_req *req, int create,
                        gf_srv_resp *resp)
{
    char err[ERRLEN];
    gf_api_workload *p = malloc(sizeof *p);
    char *spec = NULL;
    if (!p) {
        gf_srv__error(resp, 500, "out of memory");
        return;
    }
    if (create) {
        /* POST /profiles: the name is in the body. */
        json_error_t je;
        json_t *root = json_loadb(req->body ? req->body : "", req->body_len,
                                  JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(root)) {
            json_decref(root);
            gf_srv__error(resp, 400, "malformed JSON or not an object (line %d column %d: %s)",
                          je.line, je.column, root ? "expected an object" : je.text);
            goto out;
        }
        json_t *n = json_object_get(root, "name");
        if (!json_is_string(n)) {
            json_decref(root);
            gf_srv__error(resp, 400, "name: required (the profile's name); or PUT "
                          "/api/v1/profiles/NAME");
            goto out;
        }
        char nm[GF_API_NAME_MAX + 1];
        snprintf(nm, sizeof nm, "%s", json_string_value(n));
        json_object_del(root, "name");
        char *rest = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        gf_srv_req sub = *req;
        sub.body = rest;
        sub.body_len = rest ? strlen(rest) : 0;
        int64_t exists = 0;
        gf_store_query_int(srv->store, "SELECT COUNT(*) FROM profiles WHERE name = ?", 0,
                           &exists, "t", nm);
        if (exists) {
            free(rest);
            gf_srv__error(resp, 409, "profile \"%s\" exists; PUT /api/v1/profiles/%s replaces it",
                          nm, nm);
            goto out;
        }
        profile_put(srv, nm, &sub, 0, resp);
        if (resp->status == 200) resp->status = 201;
        free(rest);
        goto out;
    }
    if (gf_api_check_name("profile name", name, err, sizeof err) != GF_OK ||
        gf_api_parse_workload(req->body, req->body_len, 1, p, err, sizeof err) != GF_OK) {
        gf_srv__error(resp, 400, "%s", err);
        goto out;
    }
    /* Only the fields given are stored, so that a workload's own fields win over them. */
    json_t *given = json_loadb(req->body, req->body_len, 0, NULL);
    char *given_s = json_dumps(given, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(given);
    int64_t now = (int64_t)gf_srv_now_ms();
    gf_status st = gf_store_exec(srv->store,
                                 "INSERT INTO profiles(name, spec, created_ms, updated_ms) "
                                 "VALUES(?1, ?2, ?3, ?3) ON CONFLICT(name) DO UPDATE SET "
                                 "spec = ?2, updated_ms = ?3",
                                 NULL, "tti", name, given_s ? given_s : "{}", now);
    free(given_s);
    if (st != GF_OK) {
        gf_srv__error(resp, 500, "could not store profile \"%s\"", name);
        goto out;
    }
    profile_get(srv, name, resp);
out:
    free(spec);
    free(p);
}

static void profile_delete(gf_server *srv, const char *name, gf_srv_resp *resp)
{
    int ch = 0;
    if (gf_store_exec(srv->store, "DELETE FROM profiles WHERE name = ?", &ch, "t", name) !=
        GF_OK) {
        gf_srv__error(resp, 500, "could not delete profile \"%s\"", name);
        return;
    }
    if (!ch) {
        gf_srv__error(resp, 404, "profile \"%s\" not found", name);
        return;
    }
    resp_json(resp, 200, json_pack("{s:s}", "deleted", name));
}

/* ---- workloads -------------------------------------------------------------------------------- */

static void workloads_list(gf_server *srv, gf_srv_resp *resp)
{
    CACHED_LIST(srv, resp, WORKLOAD_SELECT " ORDER BY w.name", "");
}

static void workload_get(gf_server *srv, const char *name, gf_srv_resp *resp)
{
    resp_one(resp, gf_store_query(srv->store, WORKLOAD_SELECT " WHERE w.name = ?", "t", name),
             "workload", name);
}

static const char *why_name(gf_alloc_why w)
{
    static const char *const names[] = {"none", "invalid", "no_pool", "no_gpus", "model",
                                        "selector", "not_ready", "vram", "tflops", "both",
                                        "qos", "multi_gpu", "exists"};
    return (unsigned)w < sizeof names / sizeof names[0] ? names[w] : "unknown";
}

static void random_name(char *out, size_t outlen)
{
    unsigned char r[4] = {0};
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        uint64_t t = gf_srv_now_ms();
        memcpy(r, &t, sizeof r);
    }
    snprintf(out, outlen, "wl-%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
}

static void workload_create(gf_server *srv, const gf_srv_req *req, gf_srv_resp *resp)
{
    char err[ERRLEN], worker_token[80] = "", token_hash[65];
    gf_api_workload *w = calloc(2, sizeof *w);
    gf_alloc_result *res = malloc(sizeof *res);
    char *spec = NULL;
    if (!w || !res) {
        gf_srv__error(resp, 500, "out of memory");
        goto out;
    }
    if (gf_api_parse_workload(req->body, req->body_len, 0, w, err, sizeof err) != GF_OK) {
        gf_metrics_inc(&srv->metrics, GF_SRV_C_PLACE_INVALID);
        gf_srv__error(resp, 400, "%s", err);
        goto out;
    }
    if (w->profile[0]) {
        json_t *rows = gf_store_query(srv->store, "SELECT spec FROM profiles WHERE name = ?", "t",
                                      w->profile);
        const char *ps = json_string_value(json_object_get(json_array_get(rows, 0), "spec"));
        if (!ps) {
            json_decref(rows);
            gf_srv__error(resp, 404, "profile \"%s\" not found; \"gpufuse ls profiles\" lists "
                          "them", w->profile);
            goto out;
        }
        gf_status st = gf_api_parse_workload(ps, strlen(ps), 1, &w[1], err, sizeof err);
        json_decref(rows);
        if (st == GF_OK) {
            gf_api_workload_apply_profile(w, &w[1]);
            st = gf_api_workload_check(w, err, sizeof err);
        }
        if (st != GF_OK) {
            gf_srv__error(resp, 400, "with profile \"%s\": %s", w->profile, err);
            goto out;
        }
    }
    if (!w->name[0]) random_name(w->name, sizeof w->name);
    int64_t exists = 0;
    gf_store_query_int(srv->store, "SELECT COUNT(*) FROM workloads WHERE name = ?", 0, &exists,
                       "t", w->name);
    if (exists) {
        gf_srv__error(resp, 409, "workload \"%s\" exists; delete it first (gpufuse rm workload "
                      "%s) or pick another name", w->name, w->name);
        goto out;
    }
    const char *pool = w->pool[0] ? w->pool : "default";
    const char *models[GF_API_MAX_MODELS];
    gf_alloc_label sel[GF_API_MAX_LABELS];
    for (unsigned i = 0; i < w->n_models; i++) models[i] = w->models[i];
    for (unsigned i = 0; i < w->n_labels; i++) {
        sel[i].key = w->labels[i].key;
        sel[i].value = w->labels[i].value;
    }
    gf_alloc_request ar = {
        .pool = pool, .tflops_request = w->tflops_request, .tflops_limit = w->tflops_limit,
        .percent_request = w->percent_request, .percent_limit = w->percent_limit,
        .vram_request = w->vram_request, .vram_limit = w->vram_limit,
        .gpu_count = w->gpu_count ? w->gpu_count : 1, .models = models,
        .n_models = w->n_models, .qos = (gf_alloc_qos)w->qos, .remote = w->remote,
        .selector = w->n_labels ? sel : NULL, .n_selector = w->n_labels,
        .node = w->node[0] ? w->node : NULL};
    gf_status st = gf_alloc_place(srv->alloc, w->name, &ar, res);
    if (st != GF_OK) {
        unsigned code = st == GF_EINVAL ? 400 : st == GF_ENOENT ? 404 : 409;
        gf_metrics_inc(&srv->metrics, st == GF_ENOSPC ? GF_SRV_C_PLACE_NOFIT
                                                      : GF_SRV_C_PLACE_INVALID);
        gf_metrics_refusal(&srv->metrics, (unsigned)res->why); /* issue 6 */
        gf_srv__alerts_note_refusal(srv, pool, w->name, why_name(res->why),
                                    res->msg[0] ? res->msg : gf_strerror(st));
        resp_json(resp, code,
                  json_pack("{s:s,s:s}", "error",
                            res->msg[0] ? res->msg : gf_strerror(st), "why",
                            why_name(res->why)));
        goto out;
    }
    /* The token a client shows the node's worker to use this workload's vGPU: only its hash is
     * stored (and given to the agent); the token itself is in this answer only. */
    if (gf_srv__random_token("gfw_", worker_token, sizeof worker_token) != GF_OK) {
        gf_alloc_release(srv->alloc, w->name);
        gf_srv__error(resp, 500, "could not make a worker token (getrandom failed); nothing "
                      "was allocated");
        goto out;
    }
    gf_srv__sha256_hex(worker_token, token_hash);
    /* Persist, then acknowledge; on failure the allocator forgets the placement. */
    spec = gf_api_workload_to_json(w, 1);
    int64_t now = (int64_t)gf_srv_now_ms();
    const char *qos = gf_api_qos_name(w->qos);
    st = gf_store_begin(srv->store);
    if (st == GF_OK)
        st = gf_store_exec(srv->store,
                           "INSERT INTO workloads(name, pool, spec, status, created_ms, "
                           "updated_ms, lease_ms, lease_expires_ms, worker_token_sha256) "
                           "VALUES(?1, ?2, ?3, 'Running', ?4, ?4, NULLIF(?5, 0), "
                           "CASE WHEN ?5 > 0 THEN ?4 + ?5 END, ?6)",
                           NULL, "tttiit", w->name, pool, spec, now,
                           (int64_t)w->lease_ms, token_hash);
    for (uint32_t i = 0; st == GF_OK && i < res->n; i++) {
        const gf_alloc_placement *p = &res->placements[i];
        char id[GF_API_NAME_MAX + 16];
        snprintf(id, sizeof id, "%s-%u", w->name, i);
        st = gf_store_exec(srv->store,
                           "INSERT INTO allocations(id, workload, slot, gpu_uuid, node, pool, "
                           "vram_request, vram_limit, tflops_request, tflops_limit, qos, remote, "
                           "state, created_ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                           "'active', ?)",
                           NULL, "ttitttiiddtii", id, w->name, (int64_t)i, p->gpu_uuid, p->node,
                           pool, (int64_t)p->vram_request, (int64_t)p->vram_limit,
                           p->tflops_request, p->tflops_limit, qos, (int64_t)w->remote, now);
    }
    if (st == GF_OK) st = gf_store_commit(srv->store);
    if (st != GF_OK) {
        gf_store_rollback(srv->store);
        gf_alloc_release(srv->alloc, w->name);
        gf_srv__error(resp, 500, "could not store workload \"%s\"; nothing was allocated; see "
                      "the server's log", w->name);
        goto out;
    }
    gf_metrics_inc(&srv->metrics, GF_SRV_C_PLACE_OK);
    gf_log(GF_LOG_INFO, "server", "workload %s placed on %u GPU(s)%s", w->name, res->n,
           w->lease_ms ? " with a lease" : "");
    json_t *rows = gf_store_query(srv->store, WORKLOAD_SELECT " WHERE w.name = ?", "t", w->name);
    json_t *row = json_array_get(rows, 0);
    if (row) {
        json_object_set_new(row, "worker_token", json_string(worker_token));
        json_incref(row);
        resp_json(resp, 201, row);
    } else {
        gf_srv__error(resp, 500, "workload \"%s\" was stored but cannot be read back; see the "
                      "server's log", w->name);
    }
    json_decref(rows);
out:
    explicit_bzero(worker_token, sizeof worker_token);
    free(spec);
    free(res);
    free(w);
}

/* Deletes workload name (its allocations first) and returns its GPUs to the allocator.
 * *found = 0 when there is no such workload (then nothing changed). */
static gf_status workload_delete_one(gf_server *srv, const char *name, int *found)
{
    int ch = 0;
    gf_status st = gf_store_begin(srv->store);
    if (st == GF_OK)
        st = gf_store_exec(srv->store, "DELETE FROM allocations WHERE workload = ?", NULL, "t",
                           name);
    if (st == GF_OK)
        st = gf_store_exec(srv->store, "DELETE FROM workloads WHERE name = ?", &ch, "t", name);
    *found = ch != 0;
    if (st == GF_OK && !ch) {
        gf_store_rollback(srv->store);
        return GF_OK;
    }
    if (st == GF_OK) st = gf_store_commit(srv->store);
    if (st != GF_OK) {
        gf_store_rollback(srv->store);
        return st;
    }
    /* Already released when its node was lost past the grace period: nothing to return. */
    if (gf_alloc_release(srv->alloc, name) == GF_OK)
        gf_metrics_inc(&srv->metrics, GF_SRV_C_RELEASES);
    gf_srv__missing_sweep(srv); /* a Missing GPU it held may now leave */
    return GF_OK;
}

static void workload_delete(gf_server *srv, const char *name, gf_srv_resp *resp)
{
    int found = 0;
    if (workload_delete_one(srv, name, &found) != GF_OK) {
        gf_srv__error(resp, 500, "could not delete workload \"%s\"; see the server's log", name);
        return;
    }
    if (!found) {
        gf_srv__error(resp, 404, "workload \"%s\" not found; \"gpufuse ls workloads\" lists them",
                      name);
        return;
    }
    resp_json(resp, 200, json_pack("{s:s}", "deleted", name));
}

/* Renews a workload's lease: it expires lease_ms from now (the body may change lease_ms). */
static void workload_renew(gf_server *srv, const char *name, const gf_srv_req *req,
                           gf_srv_resp *resp)
{
    char err[ERRLEN];
    uint64_t lease = 0;
    if (gf_api_parse_renew(req->body, req->body_len, &lease, err, sizeof err) != GF_OK) {
        gf_srv__error(resp, 400, "%s", err);
        return;
    }
    json_t *rows = gf_store_query(srv->store, "SELECT lease_ms FROM workloads WHERE name = ?",
                                  "t", name);
    json_t *row = json_array_get(rows, 0);
    json_t *cur = json_object_get(row, "lease_ms");
    if (!row || !json_is_integer(cur)) {
        json_decref(rows);
        if (row)
            gf_srv__error(resp, 409, "workload \"%s\" has no lease, so there is nothing to "
                          "renew (only workloads created with lease_ms have one)", name);
        else
            gf_srv__error(resp, 404, "workload \"%s\" not found (deleted, or its lease "
                          "expired); \"gpufuse ls workloads\" lists them", name);
        return;
    }
    if (!lease) lease = (uint64_t)json_integer_value(cur);
    json_decref(rows);
    int64_t now = (int64_t)gf_srv_now_ms();
    if (gf_store_exec(srv->store,
                      "UPDATE workloads SET lease_ms = ?1, lease_expires_ms = ?2 + ?1 "
                      "WHERE name = ?3", NULL, "iit", (int64_t)lease, now, name) != GF_OK) {
        gf_srv__error(resp, 500, "could not renew the lease of workload \"%s\"; see the "
                      "server's log", name);
        return;
    }
    workload_get(srv, name, resp);
}

/* ---- tokens ----------------------------------------------------------------------------------- */

static void token_create(gf_server *srv, const gf_srv_req *req, gf_srv_resp *resp)
{
    char err[ERRLEN], token[128];
    gf_api_token_req t;
    if (gf_api_parse_token_req(req->body, req->body_len, &t, err, sizeof err) != GF_OK) {
        gf_srv__error(resp, 400, "%s", err);
        return;
    }
    if (gf_srv__token_new(srv, t.admin ? "admin" : "node", t.admin ? NULL : t.node, token,
                          sizeof token) != GF_OK) {
        gf_srv__error(resp, 500, "could not make a token; see the server's log");
        return;
    }
    json_t *o = json_pack("{s:s,s:s}", "token", token, "kind", t.admin ? "admin" : "node");
    if (!t.admin) json_object_set_new(o, "node", json_string(t.node));
    resp_json(resp, 201, o);
}

/* ---- routing ---------------------------------------------------------------------------------- */

#define MAX_SEGS 5

static unsigned split_path(const char *path, char segs[MAX_SEGS][160])
{
    unsigned n = 0;
    while (*path) {
        while (*path == '/') path++;
        if (!*path) break;
        size_t len = strcspn(path, "/");
        if (n == MAX_SEGS || len >= 160) return MAX_SEGS + 1;
        memcpy(segs[n], path, len);
        segs[n][len] = 0;
        n++;
        path += len;
    }
    return n;
}

static void method_not_allowed(gf_srv_resp *resp, const char *method, const char *path,
                               const char *allowed)
{
    gf_srv__error(resp, 405, "%s %s: method not allowed; use %s", method, path, allowed);
}

/* Routes that a node token may use: its own node's agent endpoints. */
static int node_may(const char *method, unsigned n, char segs[MAX_SEGS][160],
                    const char *token_node)
{
    if (n == 3 && !strcmp(segs[2], "nodes") && !strcmp(method, "GET"))
        return 0;
    if (!strcmp(method, "DELETE")) return 0; /* removing a node takes an admin token */
    if (n == 4 && !strcmp(segs[2], "nodes") && !strcmp(segs[3], "register")) return 1;
    if (n >= 4 && !strcmp(segs[2], "nodes") && !strcmp(segs[3], token_node)) return 1;
    return 0;
}

/* Runs a void call and leaves the function (C forbids "return f();" when f is void). */
#define DO(call) do { call; return; } while (0)

static void route_api(gf_server *srv, const gf_srv_req *req, unsigned n,
                      char segs[MAX_SEGS][160], gf_srv_role role, const char *token_node,
                      gf_srv_resp *resp)
{
    const char *m = req->method;
    int get = !strcmp(m, "GET"), post = !strcmp(m, "POST"), put = !strcmp(m, "PUT"),
        del = !strcmp(m, "DELETE");
    const char *kind = n >= 3 ? segs[2] : "";
    const char *name = n >= 4 ? segs[3] : NULL;

    if (role == GF_SRV_NODE && !node_may(m, n, segs, token_node)) {
        gf_metrics_inc(&srv->metrics, GF_SRV_C_AUTH_FAILED);
        gf_srv__error(resp, 403, "a node token (node \"%s\") may only register, heartbeat and "
                      "report for its node; use an admin token for %s %s", token_node, m,
                      req->path);
        return;
    }
    if (role == GF_SRV_ADMIN && gf_srv__obs_route(srv, req, n, segs, resp)) return;
    if (!strcmp(kind, "pools")) {
        if (n == 3) DO(get ? pools_list(srv, resp) : method_not_allowed(resp, m, req->path, "GET"));
        if (n == 4) {
            if (get) DO(pool_get(srv, name, resp));
            if (put) DO(pool_put(srv, name, req, resp));
            DO(method_not_allowed(resp, m, req->path, "GET or PUT"));
        }
    } else if (!strcmp(kind, "nodes")) {
        if (n == 3) DO(get ? nodes_list(srv, resp) : method_not_allowed(resp, m, req->path, "GET"));
        if (n == 4 && !strcmp(name, "register"))
            DO(post ? node_register(srv, req, role, token_node, resp)
                        : method_not_allowed(resp, m, req->path, "POST"));
        if (n == 4) {
            if (get) DO(node_get(srv, name, resp));
            if (del) DO(node_delete(srv, name, req, resp));
            DO(method_not_allowed(resp, m, req->path, "GET or DELETE"));
        }
        if (n == 5 && !strcmp(segs[4], "heartbeat"))
            DO(post ? node_heartbeat(srv, name, req, resp)
                        : method_not_allowed(resp, m, req->path, "POST"));
        if (n == 5 && !strcmp(segs[4], "usage"))
            DO(post ? node_usage(srv, name, req, resp)
                        : method_not_allowed(resp, m, req->path, "POST"));
        if (n == 5 && !strcmp(segs[4], "allocations")) {
            if (!get) DO(method_not_allowed(resp, m, req->path, "GET"));
            DO(resp_items(resp, node_allocations(srv, name)));
        }
    } else if (!strcmp(kind, "gpus")) {
        if (n == 3) DO(get ? gpus_list(srv, resp) : method_not_allowed(resp, m, req->path, "GET"));
        if (n == 4) {
            if (get) DO(gpu_get(srv, name, resp));
            if (del) DO(gpu_delete(srv, name, req, resp));
            DO(method_not_allowed(resp, m, req->path, "GET or DELETE"));
        }
        if (n == 5 && (!strcmp(segs[4], "cordon") || !strcmp(segs[4], "uncordon")))
            DO(post ? gpu_cordon(srv, name, !strcmp(segs[4], "cordon"), req, resp)
                    : method_not_allowed(resp, m, req->path, "POST"));
    } else if (!strcmp(kind, "workloads")) {
        if (n == 3) {
            if (get) DO(workloads_list(srv, resp));
            if (post) DO(workload_create(srv, req, resp));
            DO(method_not_allowed(resp, m, req->path, "GET or POST"));
        }
        if (n == 4) {
            if (get) DO(workload_get(srv, name, resp));
            if (del) DO(workload_delete(srv, name, resp));
            DO(method_not_allowed(resp, m, req->path, "GET or DELETE"));
        }
        if (n == 5 && !strcmp(segs[4], "renew"))
            DO(post ? workload_renew(srv, name, req, resp)
                    : method_not_allowed(resp, m, req->path, "POST"));
    } else if (!strcmp(kind, "allocations")) {
        if (n == 3)
            DO(get ? allocations_list(srv, resp) : method_not_allowed(resp, m, req->path, "GET"));
        if (n == 4)
            DO(get ? allocation_get(srv, name, resp) : method_not_allowed(resp, m, req->path, "GET"));
    } else if (!strcmp(kind, "profiles")) {
        if (n == 3) {
            if (get) DO(profiles_list(srv, resp));
            if (post) DO(profile_put(srv, NULL, req, 1, resp));
            DO(method_not_allowed(resp, m, req->path, "GET or POST"));
        }
        if (n == 4) {
            if (get) DO(profile_get(srv, name, resp));
            if (put) DO(profile_put(srv, name, req, 0, resp));
            if (del) DO(profile_delete(srv, name, resp));
            DO(method_not_allowed(resp, m, req->path, "GET, PUT or DELETE"));
        }
    } else if (!strcmp(kind, "alerts") && n == 3) { /* issue 6: src/server/alerts.c */
        DO(get ? gf_srv__alerts_list(srv, resp) : method_not_allowed(resp, m, req->path, "GET"));
    } else if (!strcmp(kind, "tokens") && n == 3) {
        DO(post ? token_create(srv, req, resp) : method_not_allowed(resp, m, req->path, "POST"));
    }
    gf_srv__error(resp, 404, "no route %s %s; see docs/api.md for the API", m, req->path);
}

/* /healthz and /metrics: no token, no server lock (collectors take it themselves). */
static int handle_open(gf_server *srv, const gf_srv_req *req, gf_srv_resp *resp)
{
    const char *m = req->method ? req->method : "";
    const char *path = req->path ? req->path : "";
    int get = !strcmp(m, "GET") || !strcmp(m, "HEAD");
    if (!strcmp(path, "/healthz")) {
        if (!get) method_not_allowed(resp, m, path, "GET");
        else resp_json(resp, 200, json_pack("{s:s}", "status", "ok"));
        return 1;
    }
    if (gf_srv__web_serve(srv, req, resp)) return 1; /* the dashboard: GET / (observe.h) */
    if (strcmp(path, "/metrics")) return 0;
    if (!get) {
        method_not_allowed(resp, m, path, "GET");
        return 1;
    }
    gf_mbuf b = {0};
    gf_metrics_render(&srv->metrics, &b);
    if (b.oom) {
        free(b.data);
        gf_srv__error(resp, 500, "out of memory while writing metrics");
        return 1;
    }
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->body = b.data ? b.data : strdup("");
    resp->body_len = b.len;
    return 1;
}

static void handle_locked(gf_server *srv, const gf_srv_req *req, gf_srv_resp *resp)
{
    char segs[MAX_SEGS][160];
    const char *m = req->method ? req->method : "";
    const char *path = req->path ? req->path : "";
    unsigned n = split_path(path, segs);
    if (n < 3 || n > MAX_SEGS || strcmp(segs[0], "api") || strcmp(segs[1], "v1"))
        DO(gf_srv__error(resp, 404, "no route %s %.200s; the API is under /api/v1 (see "
                             "docs/api.md)", m, path));
    char token_node[GF_API_NAME_MAX] = "";
    gf_srv_role role = gf_srv__auth(srv, req->authorization, token_node, sizeof token_node);
    if (role == GF_SRV_ANON && gf_srv__token_revoked(srv, req->authorization, token_node,
                                                      sizeof token_node)) {
        gf_metrics_inc(&srv->metrics, GF_SRV_C_AUTH_FAILED);
        DO(gf_srv__error(resp, 401, "this token was revoked when node \"%s\" was removed from "
                             "the pool (DELETE /api/v1/nodes/%s); stop that node's agent, or make "
                             "a new token (gpufuse token create --node %s) to add it again",
                             token_node, token_node, token_node));
    }
    if (role == GF_SRV_ANON) {
        gf_metrics_inc(&srv->metrics, GF_SRV_C_AUTH_FAILED);
        DO(gf_srv__error(resp, 401, req->authorization
                                            ? "invalid token; use the admin token (DATA/admin.token) "
                                              "or one from \"gpufuse token create\""
                                            : "missing token: send \"Authorization: Bearer TOKEN\" "
                                              "(the admin token is in DATA/admin.token)"));
    }
    if (req->body_too_large)
        DO(gf_srv__error(resp, 413, "request body over %zu bytes; send less",
                             srv->cfg.max_body));
    route_api(srv, req, n, segs, role, token_node, resp);
}

void gf_srv_handle(gf_server *srv, const gf_srv_req *req, gf_srv_resp *resp)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(resp, 0, sizeof *resp);
    if (!handle_open(srv, req, resp)) {
        pthread_mutex_lock(&srv->lock);
        handle_locked(srv, req, resp);
        pthread_mutex_unlock(&srv->lock);
    }
    if (!resp->status) gf_srv__error(resp, 500, "internal error: no answer");
    gf_metrics_inc(&srv->metrics, resp->status < 400   ? GF_SRV_C_API_2XX
                                  : resp->status < 500 ? GF_SRV_C_API_4XX
                                                       : GF_SRV_C_API_5XX);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    gf_metrics_observe_request(&srv->metrics, req->method, req->path, resp->status,
                               (double)(t1.tv_sec - t0.tv_sec) +
                                   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}
