/* SPDX-License-Identifier: Apache-2.0 */
/* Chargeback: prices per pool and QoS, the life of every allocation (kept after it is deleted,
 * by triggers on the allocations table), its usage intervals from the agents' reports, and the
 * cost of workloads and pools over a period: reserved (request x time) + burst (use above the
 * request x burst ratio), with idle capacity split into unallocated and allocated-but-unused.
 * See docs/costs.md. */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpufuse/units.h"
#include "server/observe.h"

#define GIB 1073741824.0
#define MS_PER_HOUR 3600000.0
#define PRICE_MAX 1e9
#define BURST_RATIO_MAX 1000.0

/* ---- the calculation (pure) ------------------------------------------------------------------ */

static double dmin(double a, double b) { return a < b ? a : b; }
static double dmax(double a, double b) { return a > b ? a : b; }

void gf_cost_add(const gf_cost_alloc *a, int64_t from_ms, int64_t to_ms, const gf_price *p,
                 gf_cost_sum *sum)
{
    int64_t lo = a->start_ms > from_ms ? a->start_ms : from_ms;
    int64_t hi = a->end_ms < to_ms ? a->end_ms : to_ms;
    if (hi <= lo) return;
    double hours = (double)(hi - lo) / MS_PER_HOUR;
    double req_t = a->tflops_request, req_g = a->vram_request / GIB;
    double res_t = req_t * hours, res_g = req_g * hours;
    double used_t = 0, used_g = 0, burst_t = 0, burst_g = 0;
    for (size_t i = 0; i < a->n_usage; i++) {
        const gf_cost_usage *u = &a->usage[i];
        int64_t ulo = u->start_ms > lo ? u->start_ms : lo;
        int64_t uhi = u->end_ms < hi ? u->end_ms : hi;
        if (uhi <= ulo) continue;
        double uh = (double)(uhi - ulo) / MS_PER_HOUR;
        double ut = dmax(u->tflops_used, 0), ug = dmax(u->vram_used, 0) / GIB;
        used_t += dmin(ut, req_t) * uh;
        used_g += dmin(ug, req_g) * uh;
        burst_t += dmax(ut - req_t, 0) * uh;
        burst_g += dmax(ug - req_g, 0) * uh;
    }
    sum->reserved_tflop_h += res_t;
    sum->reserved_gib_h += res_g;
    sum->used_tflop_h += used_t;
    sum->used_gib_h += used_g;
    sum->burst_tflop_h += burst_t;
    sum->burst_gib_h += burst_g;
    sum->reserved_cost += res_t * p->tflop_hour + res_g * p->gib_hour;
    sum->burst_cost += (burst_t * p->tflop_hour + burst_g * p->gib_hour) * p->burst_ratio;
    sum->idle_cost += (res_t - used_t) * p->tflop_hour + (res_g - used_g) * p->gib_hour;
}

int64_t gf_cost_cents(double money)
{
    /* 1e-7 absorbs binary noise (0.145 * 100 = 14.499999...) without moving a real half-cent. */
    return (int64_t)llround(money * 100.0 + (money >= 0 ? 1e-7 : -1e-7));
}

gf_status gf_cost_parse_time(const char *what, const char *text, int64_t now_ms, int64_t *out,
                             char *err, size_t errlen)
{
    if (!text || !*text) {
        snprintf(err, errlen, "%s: empty; give milliseconds since the epoch, an RFC 3339 UTC time "
                 "(2024-05-01T00:00:00Z), \"now\" or \"-24h\"", what);
        return GF_EINVAL;
    }
    if (!strcmp(text, "now")) {
        *out = now_ms;
        return GF_OK;
    }
    if (text[0] == '-') {
        uint64_t ns = 0;
        char e2[256];
        if (gf_parse_duration_ns(what, text + 1, &ns, e2, sizeof e2) != GF_OK) {
            snprintf(err, errlen, "%s: \"%.60s\": not a duration before now; use e.g. \"-24h\", "
                     "\"-30m\"", what, text);
            return GF_EINVAL;
        }
        *out = now_ms - (int64_t)(ns / 1000000u);
        return GF_OK;
    }
    size_t len = strlen(text), digits = strspn(text, "0123456789");
    if (digits == len && len <= 15) {
        *out = strtoll(text, NULL, 10);
        return GF_OK;
    }
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, s = 0, n = 0;
    int ok = sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && (size_t)n == 10;
    if (ok && len > 10)
        ok = (text[10] == 'T' || text[10] == ' ') &&
             sscanf(text + 11, "%2d:%2d:%2d%n", &h, &mi, &s, &n) == 3 && n == 8 &&
             !strcmp(text + 19, "Z");
    if (!ok || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 || y < 1970) {
        snprintf(err, errlen, "%s: \"%.60s\": not a time; give milliseconds since the epoch, "
                 "2024-05-01, 2024-05-01T00:00:00Z (UTC), \"now\" or \"-24h\"", what, text);
        return GF_EINVAL;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    *out = (int64_t)timegm(&tm) * 1000;
    return GF_OK;
}

/* ---- the store: tables, triggers, usage intervals -------------------------------------------- */

/* The time SQLite's triggers stamp (ms since the epoch, the same clock as gf_srv_now_ms). */
#define SQL_NOW_MS "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"

gf_status gf_srv__costs_init(gf_server *srv, char *err, size_t errlen)
{
    static const char *const ddl[] = {
        "CREATE TABLE IF NOT EXISTS cost_allocs("
        "  rid INTEGER PRIMARY KEY, id TEXT NOT NULL, workload TEXT NOT NULL, pool TEXT NOT NULL,"
        "  qos TEXT NOT NULL, node TEXT NOT NULL, gpu_uuid TEXT NOT NULL,"
        "  tflops_request REAL NOT NULL, vram_request INTEGER NOT NULL, start_ms INTEGER NOT NULL,"
        "  end_ms INTEGER, last_report_ms INTEGER, last_busy_ns INTEGER NOT NULL DEFAULT 0)",
        "CREATE INDEX IF NOT EXISTS cost_allocs_id ON cost_allocs(id, end_ms)",
        "CREATE INDEX IF NOT EXISTS cost_allocs_time ON cost_allocs(start_ms)",
        "CREATE TABLE IF NOT EXISTS cost_usage("
        "  rid INTEGER NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,"
        "  tflops_used REAL NOT NULL, vram_used INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS cost_usage_rid ON cost_usage(rid, end_ms)",
        "CREATE TABLE IF NOT EXISTS prices("
        "  pool TEXT NOT NULL, qos TEXT NOT NULL, tflop_hour REAL, gib_hour REAL,"
        "  burst_ratio REAL, PRIMARY KEY(pool, qos))",
        /* Every allocation's life, kept after the allocation row is gone. */
        "CREATE TRIGGER IF NOT EXISTS cost_alloc_insert AFTER INSERT ON allocations BEGIN"
        "  INSERT INTO cost_allocs(id, workload, pool, qos, node, gpu_uuid, tflops_request,"
        "    vram_request, start_ms) VALUES(NEW.id, NEW.workload, NEW.pool, NEW.qos, NEW.node,"
        "    NEW.gpu_uuid, NEW.tflops_request, NEW.vram_request, NEW.created_ms);"
        " END",
        "CREATE TRIGGER IF NOT EXISTS cost_alloc_delete AFTER DELETE ON allocations BEGIN"
        "  UPDATE cost_allocs SET end_ms = " SQL_NOW_MS
        "    WHERE id = OLD.id AND end_ms IS NULL;"
        " END",
        /* Allocations made before these tables existed (an upgraded store). */
        "INSERT INTO cost_allocs(id, workload, pool, qos, node, gpu_uuid, tflops_request,"
        "  vram_request, start_ms) SELECT a.id, a.workload, a.pool, a.qos, a.node, a.gpu_uuid,"
        "  a.tflops_request, a.vram_request, a.created_ms FROM allocations a WHERE NOT EXISTS"
        "  (SELECT 1 FROM cost_allocs c WHERE c.id = a.id AND c.end_ms IS NULL)",
    };
    for (size_t i = 0; i < sizeof ddl / sizeof ddl[0]; i++)
        if (gf_store_exec(srv->store, ddl[i], NULL, "") != GF_OK) {
            snprintf(err, errlen, "cannot set up the chargeback tables: %s",
                     gf_store_errmsg(srv->store));
            return GF_EIO;
        }
    return GF_OK;
}

static double jnum(json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static int64_t jint(json_t *o, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(o, k));
}

/* One vGPU's report closes the interval since its previous report (or its creation): the
 * average TFLOPs it used (busy time over wall time x the GPU's TFLOPs) and its VRAM used. */
static gf_status usage_interval(gf_server *srv, const char *node, const gf_api_vgpu_usage *v,
                                int64_t now)
{
    json_t *rows = gf_store_query(srv->store,
                                  "SELECT c.rid, c.start_ms, c.last_report_ms, c.last_busy_ns,"
                                  " g.tflops AS gpu_tflops FROM cost_allocs c LEFT JOIN gpus g"
                                  " ON g.uuid = c.gpu_uuid WHERE c.id = ? AND c.node = ? AND"
                                  " c.end_ms IS NULL ORDER BY c.rid DESC LIMIT 1",
                                  "tt", v->allocation, node);
    if (!rows) return GF_EIO;
    json_t *r = json_array_get(rows, 0);
    gf_status st = GF_OK;
    if (!r) goto out;
    int64_t rid = jint(r, "rid");
    json_t *lr = json_object_get(r, "last_report_ms");
    int64_t prev = json_is_integer(lr) ? json_integer_value(lr) : jint(r, "start_ms");
    uint64_t last_busy = (uint64_t)jint(r, "last_busy_ns");
    double gpu_tflops = jnum(r, "gpu_tflops");
    if (now > prev) {
        uint64_t d = v->busy_ns >= last_busy ? v->busy_ns - last_busy : v->busy_ns;
        double rate = (double)d / ((double)(now - prev) * 1e6) * gpu_tflops;
        if (rate > gpu_tflops) rate = gpu_tflops;
        /* Extend the previous interval when nothing changed (an idle vGPU adds no rows). */
        json_t *last = gf_store_query(srv->store,
                                      "SELECT rowid AS id, end_ms, tflops_used, vram_used FROM"
                                      " cost_usage WHERE rid = ? ORDER BY end_ms DESC LIMIT 1",
                                      "i", rid);
        json_t *l = json_array_get(last, 0);
        if (l && jint(l, "end_ms") == prev && jnum(l, "tflops_used") == rate &&
            (uint64_t)jint(l, "vram_used") == v->vram_used)
            st = gf_store_exec(srv->store, "UPDATE cost_usage SET end_ms = ? WHERE rowid = ?",
                               NULL, "ii", now, jint(l, "id"));
        else
            st = gf_store_exec(srv->store,
                               "INSERT INTO cost_usage(rid, start_ms, end_ms, tflops_used,"
                               " vram_used) VALUES(?, ?, ?, ?, ?)",
                               NULL, "iiidi", rid, prev, now, rate, (int64_t)v->vram_used);
        json_decref(last);
    }
    if (st == GF_OK)
        st = gf_store_exec(srv->store,
                           "UPDATE cost_allocs SET last_report_ms = ?, last_busy_ns = ?"
                           " WHERE rid = ?",
                           NULL, "iii", now > prev ? now : prev, (int64_t)v->busy_ns, rid);
out:
    json_decref(rows);
    return st;
}

gf_status gf_srv__costs_usage(gf_server *srv, const char *node, const gf_api_usage *u,
                              int64_t now_ms)
{
    gf_status st = GF_OK;
    for (unsigned i = 0; st == GF_OK && i < u->n_vgpus; i++)
        st = usage_interval(srv, node, &u->vgpus[i], now_ms);
    return st;
}

/* ---- prices ---------------------------------------------------------------------------------- */

static const char *const qos_names[] = {"low", "medium", "high", "critical"};

/* The price of (pool, qos): the pool's own fields, overridden by the QoS's where it has them. */
static gf_price price_for(gf_server *srv, const char *pool, const char *qos)
{
    gf_price p = {0, 0, 1};
    json_t *rows = gf_store_query(srv->store,
                                  "SELECT qos, tflop_hour, gib_hour, burst_ratio FROM prices"
                                  " WHERE pool = ? AND qos IN ('*', ?) ORDER BY qos = '*' DESC",
                                  "tt", pool, qos);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        if (json_is_number(json_object_get(r, "tflop_hour"))) p.tflop_hour = jnum(r, "tflop_hour");
        if (json_is_number(json_object_get(r, "gib_hour"))) p.gib_hour = jnum(r, "gib_hour");
        if (json_is_number(json_object_get(r, "burst_ratio")))
            p.burst_ratio = jnum(r, "burst_ratio");
    }
    json_decref(rows);
    return p;
}

static json_t *price_json(const gf_price *p)
{
    return json_pack("{s:f,s:f,s:f}", "tflop_hour", p->tflop_hour, "gib_hour", p->gib_hour,
                     "burst_ratio", p->burst_ratio);
}

static int pool_exists(gf_server *srv, const char *pool)
{
    int64_t n = 0;
    gf_store_query_int(srv->store, "SELECT COUNT(*) FROM pools WHERE name = ?", 0, &n, "t", pool);
    return n > 0;
}

void gf_srv__prices_get(gf_server *srv, const char *pool, gf_srv_resp *resp)
{
    if (!pool_exists(srv, pool)) {
        gf_srv__error(resp, 404, "pool \"%.100s\" not found; \"gpufuse ls pools\" lists them",
                      pool);
        return;
    }
    gf_price base = price_for(srv, pool, "*");
    json_t *o = json_pack("{s:s,s:f,s:f,s:f}", "pool", pool, "tflop_hour", base.tflop_hour,
                          "gib_hour", base.gib_hour, "burst_ratio", base.burst_ratio);
    json_t *q = json_object();
    for (unsigned i = 0; i < 4; i++) {
        gf_price p = price_for(srv, pool, qos_names[i]);
        json_object_set_new(q, qos_names[i], price_json(&p));
    }
    json_object_set_new(o, "qos", q);
    gf_srv__obs_json(resp, 200, o);
}

/* Reads the price fields of object o into p (NAN = not given); err names the field. */
static int parse_price_fields(json_t *o, const char *where, double p[3], char *err, size_t errlen)
{
    static const char *const names[] = {"tflop_hour", "gib_hour", "burst_ratio"};
    p[0] = p[1] = p[2] = NAN;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        int idx = -1;
        for (int i = 0; i < 3; i++)
            if (!strcmp(k, names[i])) idx = i;
        if (idx < 0) {
            if (!strcmp(k, "qos") && !where[0]) continue;
            snprintf(err, errlen, "%s%s: unknown field; use tflop_hour, gib_hour, burst_ratio%s",
                     where, k, where[0] ? "" : " or qos");
            return -1;
        }
        double x = json_number_value(v);
        double max = idx == 2 ? BURST_RATIO_MAX : PRICE_MAX;
        if (!json_is_number(v) || !isfinite(x) || x < 0 || x > max) {
            snprintf(err, errlen, "%s%s: expected a number from 0 to %g", where, k, max);
            return -1;
        }
        p[idx] = x;
    }
    return 0;
}

static gf_status put_price_row(gf_server *srv, const char *pool, const char *qos,
                               const double p[3])
{
    /* NAN binds as NULL: "not given here" (the pool's value, or the default, applies). */
    return gf_store_exec(srv->store,
                         "INSERT INTO prices(pool, qos, tflop_hour, gib_hour, burst_ratio)"
                         " VALUES(?, ?, ?, ?, ?)",
                         NULL, "ttddd", pool, qos, p[0], p[1], p[2]);
}

void gf_srv__prices_put(gf_server *srv, const char *pool, const gf_srv_req *req,
                        gf_srv_resp *resp)
{
    char err[512];
    json_error_t je;
    if (!pool_exists(srv, pool)) {
        gf_srv__error(resp, 404, "pool \"%.100s\" not found; create it with PUT /api/v1/pools/%.100s",
                      pool, pool);
        return;
    }
    json_t *root = json_loadb(req->body ? req->body : "", req->body_len, JSON_REJECT_DUPLICATES,
                              &je);
    if (!json_is_object(root)) {
        gf_srv__error(resp, 400, "%s", root ? "the body must be a JSON object of prices"
                                            : req->body_len ? "malformed JSON" : "empty body; "
                                            "send {\"tflop_hour\": N, \"gib_hour\": N}");
        json_decref(root);
        return;
    }
    double base[3], per[4][3];
    int has[4] = {0};
    json_t *q = json_object_get(root, "qos");
    if (parse_price_fields(root, "", base, err, sizeof err)) goto bad;
    if (q && !json_is_object(q)) {
        snprintf(err, sizeof err, "qos: expected an object like {\"high\": {\"tflop_hour\": 2}}");
        goto bad;
    }
    const char *k;
    json_t *v;
    json_object_foreach(q, k, v) {
        int idx = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(k, qos_names[i])) idx = i;
        if (idx < 0 || !json_is_object(v)) {
            snprintf(err, sizeof err, "qos.%.40s: %s", k,
                     idx < 0 ? "unknown QoS; use low, medium, high or critical"
                             : "expected an object of tflop_hour, gib_hour, burst_ratio");
            goto bad;
        }
        char where[64];
        snprintf(where, sizeof where, "qos.%s.", k);
        if (parse_price_fields(v, where, per[idx], err, sizeof err)) goto bad;
        has[idx] = 1;
    }
    json_decref(root);
    gf_status st = gf_store_begin(srv->store);
    if (st == GF_OK)
        st = gf_store_exec(srv->store, "DELETE FROM prices WHERE pool = ?", NULL, "t", pool);
    if (st == GF_OK) st = put_price_row(srv, pool, "*", base);
    for (int i = 0; st == GF_OK && i < 4; i++)
        if (has[i]) st = put_price_row(srv, pool, qos_names[i], per[i]);
    if (st == GF_OK) st = gf_store_commit(srv->store);
    if (st != GF_OK) {
        gf_store_rollback(srv->store);
        gf_srv__error(resp, 500, "could not store the prices of pool \"%s\"; see the server's log",
                      pool);
        return;
    }
    gf_srv__prices_get(srv, pool, resp);
    return;
bad:
    json_decref(root);
    gf_srv__error(resp, 400, "%s", err);
}

/* ---- GET /api/v1/costs ----------------------------------------------------------------------- */

typedef struct group {
    char workload[GF_API_NAME_MAX], pool[GF_API_NAME_MAX], qos[16];
    gf_cost_sum sum;
} group;

static void money(json_t *o, const char *name, double m)
{
    char cents[64];
    json_object_set_new(o, name, json_real((double)gf_cost_cents(m) / 100.0));
    snprintf(cents, sizeof cents, "%s_cents", name);
    json_object_set_new(o, cents, json_integer((json_int_t)gf_cost_cents(m)));
}

static void sum_json(json_t *o, const gf_cost_sum *s)
{
    json_object_set_new(o, "reserved_tflop_hours", json_real(s->reserved_tflop_h));
    json_object_set_new(o, "reserved_gib_hours", json_real(s->reserved_gib_h));
    json_object_set_new(o, "used_tflop_hours", json_real(s->used_tflop_h));
    json_object_set_new(o, "used_gib_hours", json_real(s->used_gib_h));
    json_object_set_new(o, "burst_tflop_hours", json_real(s->burst_tflop_h));
    json_object_set_new(o, "burst_gib_hours", json_real(s->burst_gib_h));
    money(o, "reserved_cost", s->reserved_cost);
    money(o, "burst_cost", s->burst_cost);
    money(o, "cost", s->reserved_cost + s->burst_cost);
    money(o, "idle_allocated_cost", s->idle_cost);
}

static void add_sum(gf_cost_sum *d, const gf_cost_sum *s)
{
    d->reserved_tflop_h += s->reserved_tflop_h;
    d->reserved_gib_h += s->reserved_gib_h;
    d->used_tflop_h += s->used_tflop_h;
    d->used_gib_h += s->used_gib_h;
    d->burst_tflop_h += s->burst_tflop_h;
    d->burst_gib_h += s->burst_gib_h;
    d->reserved_cost += s->reserved_cost;
    d->burst_cost += s->burst_cost;
    d->idle_cost += s->idle_cost;
}

/* One allocation's cost over the window, added to g. */
static gf_status alloc_cost(gf_server *srv, json_t *r, int64_t from, int64_t to, group *g)
{
    json_t *urows = gf_store_query(srv->store,
                                   "SELECT start_ms, end_ms, tflops_used, vram_used FROM"
                                   " cost_usage WHERE rid = ? AND end_ms > ? AND start_ms < ?"
                                   " ORDER BY start_ms",
                                   "iii", jint(r, "rid"), from, to);
    if (!urows) return GF_EIO;
    size_t n = json_array_size(urows);
    gf_cost_usage *u = calloc(n ? n : 1, sizeof *u);
    if (!u) {
        json_decref(urows);
        return GF_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(urows, i);
        u[i] = (gf_cost_usage){.start_ms = jint(x, "start_ms"), .end_ms = jint(x, "end_ms"),
                               .tflops_used = jnum(x, "tflops_used"),
                               .vram_used = jnum(x, "vram_used")};
    }
    json_decref(urows);
    gf_cost_alloc a = {.start_ms = jint(r, "start_ms"), .end_ms = jint(r, "end_ms"),
                       .tflops_request = jnum(r, "tflops_request"),
                       .vram_request = jnum(r, "vram_request"), .usage = u, .n_usage = n};
    gf_price p = price_for(srv, g->pool, g->qos);
    gf_cost_add(&a, from, to, &p, &g->sum);
    free(u);
    return GF_OK;
}

/* Capacity of pool's GPUs over the window (from each node's registration on). */
static void pool_capacity(gf_server *srv, const char *pool, int64_t from, int64_t to,
                          double *tflop_h, double *gib_h)
{
    *tflop_h = *gib_h = 0;
    json_t *rows = gf_store_query(srv->store,
                                  "SELECT g.tflops, g.vram_bytes, n.registered_ms FROM gpus g"
                                  " JOIN nodes n ON n.name = g.node WHERE n.pool = ?",
                                  "t", pool);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        int64_t lo = jint(r, "registered_ms") > from ? jint(r, "registered_ms") : from;
        if (to <= lo) continue;
        double h = (double)(to - lo) / MS_PER_HOUR;
        *tflop_h += jnum(r, "tflops") * h;
        *gib_h += jnum(r, "vram_bytes") / GIB * h;
    }
    json_decref(rows);
}

static int parse_args(const gf_srv_req *req, const char *v[4], char *err, size_t errlen)
{
    static const char *const names[] = {"pool", "workload", "from", "to"};
    for (unsigned i = 0; i < req->n_args; i++) {
        const char *k = req->args[2 * i], *val = req->args[2 * i + 1];
        int idx = -1;
        for (int j = 0; j < 4; j++)
            if (!strcmp(k, names[j])) idx = j;
        if (idx < 0) {
            snprintf(err, errlen, "unknown query argument \"%.60s\"; use pool, workload, from, to",
                     k);
            return -1;
        }
        if (v[idx]) {
            snprintf(err, errlen, "%s: given twice; give it once", k);
            return -1;
        }
        if (!val || !*val) {
            snprintf(err, errlen, "%s: empty; give a value or leave it out", k);
            return -1;
        }
        v[idx] = val;
    }
    return 0;
}

void gf_srv__costs_get(gf_server *srv, const gf_srv_req *req, gf_srv_resp *resp)
{
    char err[512];
    const char *a[4] = {NULL, NULL, NULL, NULL}; /* pool, workload, from, to */
    int64_t now = (int64_t)gf_srv_now_ms(), from = 0, to = now;
    if (parse_args(req, a, err, sizeof err) ||
        (a[2] && gf_cost_parse_time("from", a[2], now, &from, err, sizeof err) != GF_OK) ||
        (a[3] && gf_cost_parse_time("to", a[3], now, &to, err, sizeof err) != GF_OK)) {
        gf_srv__error(resp, 400, "%s", err);
        return;
    }
    if (from >= to) {
        gf_srv__error(resp, 400, "from (%lld) must be before to (%lld)", (long long)from,
                      (long long)to);
        return;
    }
    for (int i = 0; i < 2; i++)
        if (a[i] && gf_api_check_name(i ? "workload" : "pool", a[i], err, sizeof err) != GF_OK) {
            gf_srv__error(resp, 400, "%s", err);
            return;
        }
    int64_t known = 0;
    if (a[0] && !pool_exists(srv, a[0])) {
        gf_srv__error(resp, 404, "pool \"%s\" not found; \"gpufuse ls pools\" lists them", a[0]);
        return;
    }
    if (a[1]) {
        gf_store_query_int(srv->store, "SELECT COUNT(*) FROM cost_allocs WHERE workload = ?", 0,
                           &known, "t", a[1]);
        if (!known) {
            gf_srv__error(resp, 404, "workload \"%s\" has no cost records (never placed); "
                          "\"gpufuse ls workloads\" lists workloads", a[1]);
            return;
        }
    }
    int64_t live_end = to < now ? to : now;
    json_t *rows = gf_store_query(srv->store,
                                  "SELECT rid, workload, pool, qos, tflops_request, vram_request,"
                                  " start_ms, COALESCE(end_ms, ?1) AS end_ms FROM cost_allocs"
                                  " WHERE start_ms < ?2 AND COALESCE(end_ms, ?1) > ?3"
                                  " AND (?4 IS NULL OR pool = ?4)"
                                  " AND (?5 IS NULL OR workload = ?5)"
                                  " ORDER BY pool, workload, qos, rid",
                                  "iiitt", live_end, to, from, a[0], a[1]);
    if (!rows) {
        gf_srv__error(resp, 500, "the database failed to answer; see the server's log");
        return;
    }
    size_t n = json_array_size(rows), ng = 0;
    group *groups = calloc(n ? n : 1, sizeof *groups);
    gf_status st = groups ? GF_OK : GF_ENOMEM;
    for (size_t i = 0; st == GF_OK && i < n; i++) {
        json_t *r = json_array_get(rows, i);
        const char *wl = json_string_value(json_object_get(r, "workload"));
        const char *pl = json_string_value(json_object_get(r, "pool"));
        const char *qs = json_string_value(json_object_get(r, "qos"));
        group *g = ng ? &groups[ng - 1] : NULL;
        if (!g || strcmp(g->workload, wl) || strcmp(g->pool, pl) || strcmp(g->qos, qs)) {
            g = &groups[ng++];
            snprintf(g->workload, sizeof g->workload, "%s", wl);
            snprintf(g->pool, sizeof g->pool, "%s", pl);
            snprintf(g->qos, sizeof g->qos, "%s", qs);
        }
        st = alloc_cost(srv, r, from, to, g);
    }
    json_decref(rows);
    if (st != GF_OK) {
        free(groups);
        gf_srv__error(resp, 500, "could not compute the costs: %s", gf_strerror(st));
        return;
    }
    json_t *wls = json_array(), *pools = json_array();
    gf_cost_sum total = {0};
    for (size_t i = 0; i < ng; i++) {
        json_t *o = json_pack("{s:s,s:s,s:s}", "workload", groups[i].workload, "pool",
                              groups[i].pool, "qos", groups[i].qos);
        sum_json(o, &groups[i].sum);
        json_array_append_new(wls, o);
        add_sum(&total, &groups[i].sum);
    }
    /* Pools: every pool (or the one asked), with its idle capacity when no workload is asked. */
    json_t *prows = a[0] ? json_pack("[{s:s}]", "name", a[0])
                         : gf_store_query(srv->store, "SELECT name FROM pools ORDER BY name", "");
    double total_unalloc = 0;
    size_t pi;
    json_t *pr;
    json_array_foreach(prows, pi, pr) {
        const char *pool = json_string_value(json_object_get(pr, "name"));
        gf_cost_sum s = {0};
        int any = 0;
        for (size_t i = 0; i < ng; i++)
            if (!strcmp(groups[i].pool, pool)) {
                add_sum(&s, &groups[i].sum);
                any = 1;
            }
        if (a[1] && !any) continue;
        json_t *o = json_pack("{s:s}", "pool", pool);
        sum_json(o, &s);
        if (!a[1]) {
            double cap_t, cap_g;
            pool_capacity(srv, pool, from, live_end, &cap_t, &cap_g);
            double un_t = dmax(cap_t - s.reserved_tflop_h, 0), un_g = dmax(cap_g - s.reserved_gib_h, 0);
            gf_price p = price_for(srv, pool, "medium");
            double un_cost = un_t * p.tflop_hour + un_g * p.gib_hour;
            total_unalloc += un_cost;
            json_object_set_new(o, "capacity_tflop_hours", json_real(cap_t));
            json_object_set_new(o, "capacity_gib_hours", json_real(cap_g));
            json_object_set_new(o, "unallocated_tflop_hours", json_real(un_t));
            json_object_set_new(o, "unallocated_gib_hours", json_real(un_g));
            json_object_set_new(o, "idle_allocated_tflop_hours",
                                json_real(s.reserved_tflop_h - s.used_tflop_h));
            json_object_set_new(o, "idle_allocated_gib_hours",
                                json_real(s.reserved_gib_h - s.used_gib_h));
            money(o, "unallocated_cost", un_cost);
        }
        json_array_append_new(pools, o);
    }
    json_decref(prows);
    free(groups);
    json_t *t = json_object();
    sum_json(t, &total);
    if (!a[1]) money(t, "unallocated_cost", total_unalloc);
    gf_srv__obs_json(resp, 200, json_pack("{s:I,s:I,s:o,s:o,s:o}", "from_ms", (json_int_t)from,
                                          "to_ms", (json_int_t)to, "workloads", wls, "pools",
                                          pools, "total", t));
}
