/* SPDX-License-Identifier: Apache-2.0 */
/* The server's built-in alerts: rules (defaults + a JSON file), the evaluation thread over the
 * store's latest usage, the pending -> firing -> resolved state of each alert, the Alertmanager
 * webhook sender with retries, GET /api/v1/alerts and the alerts' /metrics. docs/alerts.md. */
#include "server/alerts.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpufuse/log.h"
#include "gpufuse/units.h"

/* ---- rules ----------------------------------------------------------------------------------- */

typedef enum rule_kind {
    RK_GPU_VRAM,
    RK_GPU_COMPUTE,
    RK_GPU_HOT,
    RK_POOL_CAP,
    RK_VGPU_IDLE,
    RK_VGPU_THROTTLED,
    RK_ALLOC_FAILED,
    RK_NODE_DOWN,
    RK_COUNT
} rule_kind;

static const char *const kind_names[RK_COUNT] = {
    "gpu_vram_full", "gpu_compute_saturated", "gpu_too_hot",     "pool_capacity_low",
    "vgpu_idle",     "vgpu_throttled",        "allocation_failed", "node_down"};

#define MAX_RULES 32

typedef struct rule {
    char name[64];      /* the alertname */
    rule_kind kind;
    double threshold;
    uint64_t for_ms;
    uint64_t window_ms; /* vgpu_*: rate window; allocation_failed: how long a refusal counts */
    char severity[16];
    int enabled;
} rule;

static const rule default_rules[] = {
    {"GPUVRAMNearlyFull", RK_GPU_VRAM, 0.95, 300000, 0, "warning", 1},
    {"GPUComputeSaturated", RK_GPU_COMPUTE, 0.95, 600000, 0, "warning", 1},
    {"GPUTooHot", RK_GPU_HOT, 85, 300000, 0, "critical", 1},
    {"PoolCapacityLow", RK_POOL_CAP, 0.2, 300000, 0, "warning", 1},
    {"PoolCapacityCritical", RK_POOL_CAP, 0.05, 60000, 0, "critical", 1},
    {"VGPUIdle", RK_VGPU_IDLE, 0.01, 1800000, 300000, "info", 1},
    {"VGPUThrottled", RK_VGPU_THROTTLED, 0.25, 600000, 60000, "warning", 1},
    {"AllocationFailed", RK_ALLOC_FAILED, 0, 0, 300000, "warning", 1},
    {"NodeDown", RK_NODE_DOWN, 0, 60000, 0, "critical", 1},
};

/* ---- state ----------------------------------------------------------------------------------- */

enum { ST_PENDING, ST_FIRING };

typedef struct inst {
    unsigned rule;
    char *key;          /* the rule name + its labels, canonical JSON: the alert's identity */
    json_t *labels;
    json_t *annotations;
    double value;
    int state;
    int seen;           /* the condition held in this evaluation */
    uint64_t active_ms, fired_ms;
    char fp[17];
} inst;

#define SERIES_SAMPLES 16
typedef struct series { /* a vGPU's busy/throttled counters over time */
    char id[160];
    int seen;
    unsigned n, head;
    uint64_t t[SERIES_SAMPLES], busy[SERIES_SAMPLES], thr[SERIES_SAMPLES];
} series;

#define MAX_REFUSALS 64
typedef struct refusal {
    uint64_t ms;
    char pool[64], workload[64], why[16], msg[256];
} refusal;

#define MAX_HISTORY 50

typedef struct msg {
    char *body;
    int resolved;
    struct msg *next;
} msg;

struct gf_srv_alerts {
    rule rules[MAX_RULES];
    unsigned n_rules;
    uint64_t interval_ms;
    uint64_t last_eval_ms;
    /* under srv->lock */
    inst *insts;
    unsigned n_insts, cap_insts;
    series *series;
    unsigned n_series, cap_series;
    refusal refusals[MAX_REFUSALS];
    unsigned n_refusals; /* total ever; ring index = n % MAX_REFUSALS */
    json_t *history;     /* resolved alerts, newest last */
    /* the evaluation thread */
    pthread_t eval_thread;
    int eval_started;
    /* the webhook sender (own lock) */
    char webhook[1024];
    long webhook_timeout_ms;
    unsigned retries;
    uint64_t retry_base_ms;
    pthread_t send_thread;
    int send_started;
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    msg *qhead, *qtail;
    unsigned qlen;
    int stop;
    atomic_uint_fast64_t sent[2], failed[2], retried; /* [0] firing, [1] resolved */
};

/* ---- config ---------------------------------------------------------------------------------- */

static int parse_dur(json_t *v, const char *what, uint64_t *out_ms, char *err, size_t errlen)
{
    if (json_is_number(v)) { /* seconds */
        double s = json_number_value(v);
        if (s < 0 || s > 1e7) {
            snprintf(err, errlen, "%s: %g: give 0 to 10000000 seconds or \"30s\", \"5m\"", what, s);
            return -1;
        }
        *out_ms = (uint64_t)(s * 1000 + 0.5);
        return 0;
    }
    uint64_t ns;
    char e2[256];
    if (!json_is_string(v) || gf_parse_duration_ns(what, json_string_value(v), &ns, e2, sizeof e2)) {
        snprintf(err, errlen, "%s: give a duration like \"30s\", \"5m\", \"500ms\" (or seconds)",
                 what);
        return -1;
    }
    *out_ms = ns / 1000000ull;
    return 0;
}

static int valid_label_text(const char *s, size_t max)
{
    if (!*s || strlen(s) >= max) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return 0;
    return 1;
}

/* One rule object: overrides a rule of the same name, or adds one (then "kind" is required). */
static int parse_rule(gf_srv_alerts *A, json_t *o, unsigned idx, char *err, size_t errlen)
{
    char where[96];
    snprintf(where, sizeof where, "rules[%u]", idx);
    if (!json_is_object(o)) {
        snprintf(err, errlen, "%s: expected an object", where);
        return -1;
    }
    const char *name = json_string_value(json_object_get(o, "name"));
    if (!name || !valid_label_text(name, sizeof A->rules[0].name)) {
        snprintf(err, errlen, "%s.name: required, 1-63 of A-Z a-z 0-9 _ - .", where);
        return -1;
    }
    rule *r = NULL;
    for (unsigned i = 0; i < A->n_rules; i++)
        if (!strcmp(A->rules[i].name, name)) r = &A->rules[i];
    const char *kind = json_string_value(json_object_get(o, "kind"));
    if (!r) {
        if (!kind) {
            snprintf(err, errlen, "%s (\"%s\"): not a built-in rule, so \"kind\" is required",
                     where, name);
            return -1;
        }
        if (A->n_rules == MAX_RULES) {
            snprintf(err, errlen, "%s: more than %d rules", where, MAX_RULES);
            return -1;
        }
        r = &A->rules[A->n_rules++];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s", name);
        snprintf(r->severity, sizeof r->severity, "warning");
        r->enabled = 1;
        r->window_ms = 60000;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        char what[160];
        snprintf(what, sizeof what, "%s.%s", where, key);
        if (!strcmp(key, "name")) continue;
        if (!strcmp(key, "kind")) {
            unsigned k = 0;
            while (k < RK_COUNT && (!json_is_string(v) || strcmp(json_string_value(v), kind_names[k])))
                k++;
            if (k == RK_COUNT) {
                snprintf(err, errlen, "%s: unknown; use gpu_vram_full, gpu_compute_saturated, "
                         "gpu_too_hot, pool_capacity_low, vgpu_idle, vgpu_throttled, "
                         "allocation_failed or node_down", what);
                return -1;
            }
            r->kind = (rule_kind)k;
        } else if (!strcmp(key, "threshold")) {
            if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1e6) {
                snprintf(err, errlen, "%s: give a number 0 .. 1000000", what);
                return -1;
            }
            r->threshold = json_number_value(v);
        } else if (!strcmp(key, "for")) {
            if (parse_dur(v, what, &r->for_ms, err, errlen)) return -1;
        } else if (!strcmp(key, "window")) {
            if (parse_dur(v, what, &r->window_ms, err, errlen)) return -1;
        } else if (!strcmp(key, "severity")) {
            const char *s = json_string_value(v);
            if (!s || !valid_label_text(s, sizeof r->severity)) {
                snprintf(err, errlen, "%s: give a word like \"warning\" or \"critical\"", what);
                return -1;
            }
            snprintf(r->severity, sizeof r->severity, "%s", s);
        } else if (!strcmp(key, "enabled")) {
            if (!json_is_boolean(v)) {
                snprintf(err, errlen, "%s: give true or false", what);
                return -1;
            }
            r->enabled = json_is_true(v);
        } else {
            snprintf(err, errlen, "%s: unknown field; rules take name, kind, threshold, for, "
                     "window, severity, enabled", what);
            return -1;
        }
    }
    return 0;
}

static int load_config(gf_srv_alerts *A, const char *path, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    char e2[512] = "";
    int rc = -1;
    if (!root) {
        snprintf(err, errlen, "--alerts %s: line %d: %s", path, je.line, je.text);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "--alerts %s: expected a JSON object (see docs/alerts.md)", path);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "eval_interval")) {
            if (parse_dur(v, "eval_interval", &A->interval_ms, e2, sizeof e2)) goto bad;
            if (A->interval_ms < 100) {
                snprintf(e2, sizeof e2, "eval_interval: give at least 100ms");
                goto bad;
            }
        } else if (!strcmp(key, "webhook")) {
            const char *u = json_string_value(v);
            if (!u || (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) ||
                strlen(u) >= sizeof A->webhook) {
                snprintf(e2, sizeof e2, "webhook: give an http:// or https:// URL");
                goto bad;
            }
            snprintf(A->webhook, sizeof A->webhook, "%s", u);
        } else if (!strcmp(key, "webhook_timeout")) {
            uint64_t ms;
            if (parse_dur(v, "webhook_timeout", &ms, e2, sizeof e2)) goto bad;
            A->webhook_timeout_ms = ms ? (long)ms : 1;
        } else if (!strcmp(key, "webhook_retries")) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 20) {
                snprintf(e2, sizeof e2, "webhook_retries: give 0 to 20");
                goto bad;
            }
            A->retries = (unsigned)json_integer_value(v);
        } else if (!strcmp(key, "webhook_retry_backoff")) {
            if (parse_dur(v, "webhook_retry_backoff", &A->retry_base_ms, e2, sizeof e2)) goto bad;
        } else if (!strcmp(key, "rules")) {
            if (!json_is_array(v)) {
                snprintf(e2, sizeof e2, "rules: expected an array of rule objects");
                goto bad;
            }
            size_t i;
            json_t *r;
            json_array_foreach(v, i, r) if (parse_rule(A, r, (unsigned)i, e2, sizeof e2)) goto bad;
        } else {
            snprintf(e2, sizeof e2, "%s: unknown field; the file takes eval_interval, webhook, "
                     "webhook_timeout, webhook_retries, webhook_retry_backoff, rules", key);
            goto bad;
        }
    }
    rc = 0;
    goto out;
bad:
    snprintf(err, errlen, "--alerts %s: %s", path, e2);
out:
    json_decref(root);
    return rc;
}

/* ---- time and identity ----------------------------------------------------------------------- */

static void rfc3339(uint64_t ms, char *out, size_t outlen)
{
    if (!ms) {
        snprintf(out, outlen, "0001-01-01T00:00:00Z");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (unsigned)(ms % 1000));
}

/* FNV-1a 64 of the canonical labels, as 16 hex digits (Alertmanager's fingerprint is also a
 * 64-bit hash of the label set). */
static void fingerprint(const char *key, char out[17])
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* ---- evaluation ------------------------------------------------------------------------------ */

/* The condition of rule ri holds now for the alert with these labels (stolen). */
static void hold(gf_srv_alerts *A, unsigned ri, json_t *labels, double value, uint64_t now,
                 const char *summary, const char *description)
{
    rule *r = &A->rules[ri];
    json_object_set_new(labels, "alertname", json_string(r->name));
    json_object_set_new(labels, "severity", json_string(r->severity));
    char *key = json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS);
    if (!key) {
        json_decref(labels);
        return;
    }
    inst *in = NULL;
    for (unsigned i = 0; i < A->n_insts && !in; i++)
        if (!strcmp(A->insts[i].key, key)) in = &A->insts[i];
    if (!in) {
        if (A->n_insts == A->cap_insts) {
            unsigned cap = A->cap_insts ? A->cap_insts * 2 : 16;
            inst *n = realloc(A->insts, cap * sizeof *n);
            if (!n) {
                free(key);
                json_decref(labels);
                return;
            }
            A->insts = n;
            A->cap_insts = cap;
        }
        in = &A->insts[A->n_insts++];
        memset(in, 0, sizeof *in);
        in->rule = ri;
        in->key = key;
        in->labels = labels;
        in->state = ST_PENDING;
        in->active_ms = now;
        fingerprint(key, in->fp);
    } else {
        free(key);
        json_decref(labels);
    }
    in->seen = 1;
    in->value = value;
    json_decref(in->annotations);
    in->annotations = json_pack("{s:s,s:s}", "summary", summary, "description", description);
}

static const char *jstr(json_t *r, const char *k)
{
    const char *s = json_string_value(json_object_get(r, k));
    return s ? s : "";
}

static double jnum(json_t *r, const char *k)
{
    return json_number_value(json_object_get(r, k));
}

static json_t *gpu_labels(json_t *g)
{
    char idx[16];
    snprintf(idx, sizeof idx, "%lld", (long long)json_integer_value(json_object_get(g, "idx")));
    return json_pack("{s:s,s:s,s:s,s:s,s:s}", "node", jstr(g, "node"), "pool", jstr(g, "pool"),
                     "gpu", idx, "uuid", jstr(g, "uuid"), "model", jstr(g, "model"));
}

static void eval_gpus(gf_srv_alerts *A, json_t *gpus, uint64_t now)
{
    size_t i;
    json_t *g;
    char sum[256], desc[512];
    for (unsigned ri = 0; ri < A->n_rules; ri++) {
        rule *r = &A->rules[ri];
        if (!r->enabled || (r->kind != RK_GPU_VRAM && r->kind != RK_GPU_COMPUTE &&
                            r->kind != RK_GPU_HOT))
            continue;
        json_array_foreach(gpus, i, g) {
            const char *node = jstr(g, "node");
            long long idx = json_integer_value(json_object_get(g, "idx"));
            double v;
            if (r->kind == RK_GPU_VRAM) {
                double total = jnum(g, "vram_bytes");
                v = total > 0 ? jnum(g, "vram_used") / total : 0;
                if (v < r->threshold) continue;
                snprintf(sum, sizeof sum, "GPU %lld of node %s: VRAM %.0f%% full", idx, node,
                         v * 100);
                snprintf(desc, sizeof desc, "%.0f of %.0f bytes used (threshold %.0f%%); free "
                         "memory or move workloads off %s", jnum(g, "vram_used"), total,
                         r->threshold * 100, jstr(g, "uuid"));
            } else if (r->kind == RK_GPU_COMPUTE) {
                v = jnum(g, "utilization") / 100.0;
                if (v < r->threshold) continue;
                snprintf(sum, sizeof sum, "GPU %lld of node %s: compute %.0f%% busy", idx, node,
                         v * 100);
                snprintf(desc, sizeof desc, "utilization %.0f%% >= %.0f%%: its vGPUs are "
                         "contending; spread workloads or cap them", v * 100, r->threshold * 100);
            } else {
                json_t *t = json_object_get(g, "temperature_c");
                if (!json_is_integer(t)) continue;
                v = (double)json_integer_value(t);
                if (v < r->threshold) continue;
                snprintf(sum, sizeof sum, "GPU %lld of node %s at %.0f C", idx, node, v);
                snprintf(desc, sizeof desc, "temperature %.0f C >= %.0f C; check cooling and "
                         "power limits", v, r->threshold);
            }
            hold(A, ri, gpu_labels(g), v, now, sum, desc);
        }
    }
}

static void eval_pools(gf_srv_alerts *A, json_t *pools, uint64_t now)
{
    size_t i;
    json_t *p;
    char sum[256], desc[512];
    for (unsigned ri = 0; ri < A->n_rules; ri++) {
        rule *r = &A->rules[ri];
        if (!r->enabled || r->kind != RK_POOL_CAP) continue;
        json_array_foreach(pools, i, p) {
            if (jnum(p, "gpus") <= 0) continue; /* an empty pool has nothing to run out of */
            double vcap = jnum(p, "vram") * jnum(p, "ov"), tcap = jnum(p, "tflops") * jnum(p, "ot");
            double vfree = vcap > 0 ? 1 - jnum(p, "vram_req") / vcap : 0;
            double tfree = tcap > 0 ? 1 - jnum(p, "tflops_req") / tcap : 0;
            double f = vfree < tfree ? vfree : tfree;
            if (f < 0) f = 0;
            if (f > r->threshold) continue;
            snprintf(sum, sizeof sum, "pool %s: %.0f%% capacity free", jstr(p, "name"), f * 100);
            snprintf(desc, sizeof desc, "free VRAM %.0f%%, free TFLOPs %.0f%% of the Ready GPUs "
                     "(threshold %.0f%%); add nodes or release workloads", vfree * 100,
                     tfree * 100, r->threshold * 100);
            hold(A, ri, json_pack("{s:s}", "pool", jstr(p, "name")), f, now, sum, desc);
        }
    }
}

static series *series_get(gf_srv_alerts *A, const char *id)
{
    for (unsigned i = 0; i < A->n_series; i++)
        if (!strcmp(A->series[i].id, id)) return &A->series[i];
    if (A->n_series == A->cap_series) {
        unsigned cap = A->cap_series ? A->cap_series * 2 : 16;
        series *n = realloc(A->series, cap * sizeof *n);
        if (!n) return NULL;
        A->series = n;
        A->cap_series = cap;
    }
    series *s = &A->series[A->n_series++];
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", id);
    return s;
}

/* Samples are kept at most every window/8 of the smallest vGPU window, so 16 cover it twice. */
static uint64_t min_window(gf_srv_alerts *A)
{
    uint64_t w = 0;
    for (unsigned i = 0; i < A->n_rules; i++)
        if (A->rules[i].enabled &&
            (A->rules[i].kind == RK_VGPU_IDLE || A->rules[i].kind == RK_VGPU_THROTTLED) &&
            (!w || A->rules[i].window_ms < w))
            w = A->rules[i].window_ms;
    return w;
}

/* Busy and throttled fractions of wall time over at least window_ms; 0 when the history is
 * shorter (not known yet: the rule does not hold). */
static int series_rate(const series *s, uint64_t now, uint64_t window, double *busy, double *thr)
{
    if (!s->n) return 0;
    unsigned last = (s->head + SERIES_SAMPLES - 1) % SERIES_SAMPLES;
    for (unsigned k = 0; k < s->n; k++) {
        unsigned j = (s->head + SERIES_SAMPLES - 1 - k) % SERIES_SAMPLES;
        if (s->t[j] + window <= now && s->t[j] < s->t[last]) {
            double dt = (double)(s->t[last] - s->t[j]) * 1e6;
            *busy = s->busy[last] >= s->busy[j] ? (double)(s->busy[last] - s->busy[j]) / dt : 0;
            *thr = s->thr[last] >= s->thr[j] ? (double)(s->thr[last] - s->thr[j]) / dt : 0;
            return 1;
        }
    }
    return 0;
}

static void eval_vgpus(gf_srv_alerts *A, json_t *allocs, uint64_t now)
{
    size_t i;
    json_t *a;
    char sum[256], desc[512];
    uint64_t step = min_window(A) / 8;
    for (unsigned k = 0; k < A->n_series; k++) A->series[k].seen = 0;
    json_array_foreach(allocs, i, a) {
        series *s = series_get(A, jstr(a, "id"));
        if (!s) continue;
        s->seen = 1;
        unsigned last = (s->head + SERIES_SAMPLES - 1) % SERIES_SAMPLES;
        uint64_t busy = (uint64_t)json_integer_value(json_object_get(a, "busy_ns"));
        uint64_t thr = (uint64_t)json_integer_value(json_object_get(a, "throttled_ns"));
        if (s->n && (busy < s->busy[last] || thr < s->thr[last])) s->n = 0; /* region reset */
        if (!s->n || now >= s->t[last] + step) {
            s->t[s->head] = now;
            s->busy[s->head] = busy;
            s->thr[s->head] = thr;
            s->head = (s->head + 1) % SERIES_SAMPLES;
            if (s->n < SERIES_SAMPLES) s->n++;
        } else { /* keep the newest counters in the newest slot */
            s->busy[last] = busy;
            s->thr[last] = thr;
            s->t[last] = now;
        }
        for (unsigned ri = 0; ri < A->n_rules; ri++) {
            rule *r = &A->rules[ri];
            double b = 0, t = 0;
            if (!r->enabled || (r->kind != RK_VGPU_IDLE && r->kind != RK_VGPU_THROTTLED)) continue;
            if (!series_rate(s, now, r->window_ms, &b, &t)) continue;
            double v = r->kind == RK_VGPU_IDLE ? b : t;
            if (r->kind == RK_VGPU_IDLE ? v > r->threshold : v < r->threshold) continue;
            if (r->kind == RK_VGPU_IDLE) {
                snprintf(sum, sizeof sum, "vGPU %s of workload %s is idle", jstr(a, "id"),
                         jstr(a, "workload"));
                snprintf(desc, sizeof desc, "GPU busy %.1f%% of the time over the last %.0f s "
                         "(threshold %.1f%%) while it holds its allocation: release it or give "
                         "it work", b * 100, (double)r->window_ms / 1000, r->threshold * 100);
            } else {
                snprintf(sum, sizeof sum, "vGPU %s of workload %s is throttled", jstr(a, "id"),
                         jstr(a, "workload"));
                snprintf(desc, sizeof desc, "launches waited %.0f%% of the time over the last "
                         "%.0f s (threshold %.0f%%): its compute limit is too small for its load",
                         t * 100, (double)r->window_ms / 1000, r->threshold * 100);
            }
            hold(A, ri,
                 json_pack("{s:s,s:s,s:s,s:s,s:s}", "workload", jstr(a, "workload"), "allocation",
                           jstr(a, "id"), "node", jstr(a, "node"), "pool", jstr(a, "pool"), "uuid",
                           jstr(a, "gpu_uuid")),
                 v, now, sum, desc);
        }
    }
    for (unsigned k = 0; k < A->n_series;) {
        if (A->series[k].seen) k++;
        else A->series[k] = A->series[--A->n_series];
    }
}

static void eval_refusals(gf_srv_alerts *A, uint64_t now)
{
    char sum[256], desc[512];
    unsigned n = A->n_refusals < MAX_REFUSALS ? A->n_refusals : MAX_REFUSALS;
    for (unsigned ri = 0; ri < A->n_rules; ri++) {
        rule *r = &A->rules[ri];
        if (!r->enabled || r->kind != RK_ALLOC_FAILED) continue;
        /* Per pool: how many refusals in the window, and the latest one. */
        for (unsigned k = 0; k < n; k++) {
            const refusal *f = &A->refusals[(A->n_refusals - 1 - k) % MAX_REFUSALS];
            if (f->ms + r->window_ms < now) continue;
            int newer_same_pool = 0;
            for (unsigned j = 0; j < k && !newer_same_pool; j++) {
                const refusal *g = &A->refusals[(A->n_refusals - 1 - j) % MAX_REFUSALS];
                newer_same_pool = g->ms + r->window_ms >= now && !strcmp(g->pool, f->pool);
            }
            if (newer_same_pool) continue;
            unsigned count = 0;
            for (unsigned j = 0; j < n; j++) {
                const refusal *g = &A->refusals[(A->n_refusals - 1 - j) % MAX_REFUSALS];
                count += g->ms + r->window_ms >= now && !strcmp(g->pool, f->pool);
            }
            if ((double)count <= r->threshold) continue;
            snprintf(sum, sizeof sum, "pool %s: %u workload placement(s) failed", f->pool, count);
            snprintf(desc, sizeof desc, "latest: workload %s (%s): %s", f->workload, f->why,
                     f->msg);
            hold(A, ri, json_pack("{s:s,s:s}", "pool", f->pool, "reason", f->why), count, now,
                 sum, desc);
        }
    }
}

static void eval_nodes(gf_srv_alerts *A, json_t *nodes, uint64_t now)
{
    size_t i;
    json_t *nd;
    char sum[256], desc[512];
    for (unsigned ri = 0; ri < A->n_rules; ri++) {
        rule *r = &A->rules[ri];
        if (!r->enabled || r->kind != RK_NODE_DOWN) continue;
        json_array_foreach(nodes, i, nd) {
            if (!strcmp(jstr(nd, "status"), "Ready")) continue;
            double age = ((double)now - jnum(nd, "last_heartbeat_ms")) / 1000;
            if (age < r->threshold) continue;
            snprintf(sum, sizeof sum, "node %s is down", jstr(nd, "name"));
            snprintf(desc, sizeof desc, "no heartbeat for %.0f s; its allocations are lost and "
                     "will be released after the grace period: check the agent (gpufuse agent) "
                     "on %s", age, jstr(nd, "name"));
            hold(A, ri, json_pack("{s:s,s:s}", "node", jstr(nd, "name"), "pool", jstr(nd, "pool")),
                 age, now, sum, desc);
        }
    }
}

static json_t *inst_json(const gf_srv_alerts *A, const inst *in, const char *state,
                         uint64_t ends_ms)
{
    const rule *r = &A->rules[in->rule];
    return json_pack("{s:s,s:s,s:s,s:s,s:O,s:O,s:f,s:f,s:I,s:I,s:I,s:s}", "name", r->name,
                     "kind", kind_names[r->kind], "severity", r->severity, "state", state,
                     "labels", in->labels, "annotations", in->annotations, "value", in->value,
                     "threshold", r->threshold, "active_since_ms", (json_int_t)in->active_ms,
                     "starts_at_ms", (json_int_t)in->fired_ms, "ends_at_ms", (json_int_t)ends_ms,
                     "fingerprint", in->fp);
}

/* One Alertmanager (webhook_config, version 4) alert. */
static json_t *am_alert(const gf_server *srv, const inst *in, int resolved, uint64_t ends_ms)
{
    char starts[80], ends[80], gen[600];
    rfc3339(in->fired_ms, starts, sizeof starts);
    rfc3339(resolved ? ends_ms : 0, ends, sizeof ends);
    snprintf(gen, sizeof gen, "%s/api/v1/alerts", srv->url);
    return json_pack("{s:s,s:O,s:O,s:s,s:s,s:s,s:s}", "status", resolved ? "resolved" : "firing",
                     "labels", in->labels, "annotations", in->annotations, "startsAt", starts,
                     "endsAt", ends, "generatorURL", gen, "fingerprint", in->fp);
}

static void enqueue(gf_srv_alerts *A, char *body, int resolved)
{
    msg *m = body ? calloc(1, sizeof *m) : NULL;
    if (!m) {
        free(body);
        return;
    }
    m->body = body;
    m->resolved = resolved;
    pthread_mutex_lock(&A->qlock);
    if (A->qlen >= 1000) { /* a dead receiver must not eat the server's memory */
        pthread_mutex_unlock(&A->qlock);
        gf_log(GF_LOG_WARN, "alerts", "webhook queue full (1000); dropping a notification");
        atomic_fetch_add(&A->failed[resolved], 1);
        free(body);
        free(m);
        return;
    }
    if (A->qtail) A->qtail->next = m;
    else A->qhead = m;
    A->qtail = m;
    A->qlen++;
    pthread_cond_signal(&A->qcond);
    pthread_mutex_unlock(&A->qlock);
}

/* Wraps alerts (stolen) of one rule in the webhook message; commonLabels = labels every alert
 * shares. */
static char *am_message(const gf_server *srv, const rule *r, json_t *alerts, int resolved)
{
    json_t *common = json_deep_copy(json_object_get(json_array_get(alerts, 0), "labels"));
    size_t i;
    json_t *a;
    json_array_foreach(alerts, i, a) {
        json_t *l = json_object_get(a, "labels");
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(common, tmp, k, v) {
            if (!json_equal(v, json_object_get(l, k))) json_object_del(common, k);
        }
    }
    char gk[128];
    snprintf(gk, sizeof gk, "{}:{alertname=\"%s\"}", r->name);
    json_t *o = json_pack("{s:s,s:s,s:i,s:s,s:s,s:{s:s},s:o,s:{},s:s,s:o}", "version", "4",
                          "groupKey", gk, "truncatedAlerts", 0, "status",
                          resolved ? "resolved" : "firing", "receiver", "gpufuse",
                          "groupLabels", "alertname", r->name, "commonLabels", common,
                          "commonAnnotations", "externalURL", srv->url, "alerts", alerts);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

void gf_srv__alerts_eval(gf_server *srv, uint64_t now)
{
    gf_srv_alerts *A = srv->alerts;
    if (!A) return;
    pthread_mutex_lock(&srv->lock);
    json_t *gpus = gf_store_query(
        srv->store,
        "SELECT g.uuid, g.node, n.pool, g.idx, g.model, g.vram_bytes, g.vram_used, "
        "g.utilization, g.temperature_c FROM gpus g JOIN nodes n ON n.name = g.node "
        "WHERE n.status = 'Ready' AND g.usage_ms IS NOT NULL ORDER BY g.node, g.idx", "");
    json_t *pools = gf_store_query(
        srv->store,
        "SELECT p.name, p.oversub_tflops AS ot, p.oversub_vram AS ov, (SELECT COUNT(*) FROM gpus "
        "g JOIN nodes n ON n.name = g.node WHERE n.pool = p.name) AS gpus, (SELECT "
        "COALESCE(SUM(g.vram_bytes), 0) FROM gpus g JOIN nodes n ON n.name = g.node WHERE "
        "n.pool = p.name AND n.status = 'Ready') AS vram, (SELECT COALESCE(SUM(g.tflops), 0.0) "
        "FROM gpus g JOIN nodes n ON n.name = g.node WHERE n.pool = p.name AND n.status = "
        "'Ready') AS tflops, (SELECT COALESCE(SUM(a.vram_request), 0) FROM allocations a JOIN "
        "nodes n ON n.name = a.node WHERE a.pool = p.name AND n.status = 'Ready') AS vram_req, "
        "(SELECT COALESCE(SUM(a.tflops_request), 0.0) FROM allocations a JOIN nodes n ON "
        "n.name = a.node WHERE a.pool = p.name AND n.status = 'Ready') AS tflops_req "
        "FROM pools p ORDER BY p.name", "");
    json_t *allocs = gf_store_query(
        srv->store,
        "SELECT a.id, a.workload, a.node, a.pool, a.gpu_uuid, a.busy_ns, a.throttled_ns "
        "FROM allocations a JOIN nodes n ON n.name = a.node WHERE a.state = 'active' AND "
        "a.remote = 0 AND n.status = 'Ready' ORDER BY a.id", "");
    json_t *nodes = gf_store_query(srv->store,
                                   "SELECT name, pool, status, last_heartbeat_ms FROM nodes "
                                   "ORDER BY name", "");
    for (unsigned i = 0; i < A->n_insts; i++) A->insts[i].seen = 0;
    eval_gpus(A, gpus, now);
    eval_pools(A, pools, now);
    eval_vgpus(A, allocs, now);
    eval_refusals(A, now);
    eval_nodes(A, nodes, now);
    json_decref(gpus);
    json_decref(pools);
    json_decref(allocs);
    json_decref(nodes);

    /* Transitions, grouped per rule into one firing and one resolved message. */
    json_t *fire[MAX_RULES] = {0}, *res[MAX_RULES] = {0};
    for (unsigned i = 0; i < A->n_insts;) {
        inst *in = &A->insts[i];
        if (in->seen) {
            if (in->state == ST_PENDING && now >= in->active_ms + A->rules[in->rule].for_ms) {
                in->state = ST_FIRING;
                in->fired_ms = now;
                gf_log(GF_LOG_WARN, "alerts", "firing: %s %s", A->rules[in->rule].name,
                       json_string_value(json_object_get(in->annotations, "summary")));
                if (!fire[in->rule]) fire[in->rule] = json_array();
                json_array_append_new(fire[in->rule], am_alert(srv, in, 0, 0));
            }
            i++;
            continue;
        }
        if (in->state == ST_FIRING) {
            gf_log(GF_LOG_INFO, "alerts", "resolved: %s %s", A->rules[in->rule].name,
                   json_string_value(json_object_get(in->annotations, "summary")));
            if (!res[in->rule]) res[in->rule] = json_array();
            json_array_append_new(res[in->rule], am_alert(srv, in, 1, now));
            json_array_append_new(A->history, inst_json(A, in, "resolved", now));
            while (json_array_size(A->history) > MAX_HISTORY) json_array_remove(A->history, 0);
        }
        free(in->key);
        json_decref(in->labels);
        json_decref(in->annotations);
        A->insts[i] = A->insts[--A->n_insts];
    }
    A->last_eval_ms = now;
    pthread_mutex_unlock(&srv->lock);
    for (unsigned r = 0; r < A->n_rules; r++) {
        if (fire[r] && A->webhook[0]) enqueue(A, am_message(srv, &A->rules[r], fire[r], 0), 0);
        else json_decref(fire[r]);
        if (res[r] && A->webhook[0]) enqueue(A, am_message(srv, &A->rules[r], res[r], 1), 1);
        else json_decref(res[r]);
    }
}

void gf_srv__alerts_note_refusal(gf_server *srv, const char *pool, const char *workload,
                                 const char *why, const char *msg)
{
    gf_srv_alerts *A = srv->alerts;
    if (!A) return;
    refusal *f = &A->refusals[A->n_refusals % MAX_REFUSALS];
    f->ms = gf_srv_now_ms();
    snprintf(f->pool, sizeof f->pool, "%s", pool ? pool : "default");
    snprintf(f->workload, sizeof f->workload, "%s", workload ? workload : "");
    snprintf(f->why, sizeof f->why, "%s", why ? why : "unknown");
    snprintf(f->msg, sizeof f->msg, "%s", msg ? msg : "");
    A->n_refusals++;
}

/* ---- the API and /metrics -------------------------------------------------------------------- */

void gf_srv__alerts_list(gf_server *srv, gf_srv_resp *resp)
{
    gf_srv_alerts *A = srv->alerts;
    json_t *items = json_array(), *rules = json_array();
    for (unsigned i = 0; A && i < A->n_insts; i++)
        json_array_append_new(items, inst_json(A, &A->insts[i],
                                               A->insts[i].state == ST_FIRING ? "firing"
                                                                              : "pending", 0));
    for (size_t i = A ? json_array_size(A->history) : 0; i > 0; i--) /* newest first */
        json_array_append(items, json_array_get(A->history, i - 1));
    for (unsigned i = 0; A && i < A->n_rules; i++) {
        const rule *r = &A->rules[i];
        json_array_append_new(rules, json_pack("{s:s,s:s,s:f,s:I,s:I,s:s,s:b}", "name", r->name,
                                               "kind", kind_names[r->kind], "threshold",
                                               r->threshold, "for_ms", (json_int_t)r->for_ms,
                                               "window_ms", (json_int_t)r->window_ms, "severity",
                                               r->severity, "enabled", r->enabled));
    }
    json_t *o = json_pack("{s:o,s:o,s:I,s:I,s:b}", "items", items, "rules", rules,
                          "eval_interval_ms", (json_int_t)(A ? A->interval_ms : 0),
                          "last_eval_ms", (json_int_t)(A ? A->last_eval_ms : 0), "webhook",
                          A && A->webhook[0]);
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(o);
    if (!s) {
        gf_srv__error(resp, 500, "out of memory");
        return;
    }
    resp->status = 200;
    resp->body = s;
    resp->body_len = strlen(s);
    resp->content_type = "application/json";
}

static void collect_alerts(gf_mbuf *b, void *ctx)
{
    gf_server *srv = ctx;
    gf_srv_alerts *A = srv->alerts;
    char l[256];
    gf_metrics_family(b, "gpufuse_alerts", "gauge",
                      "Built-in alerts now pending or firing, by rule and state");
    pthread_mutex_lock(&srv->lock);
    for (unsigned r = 0; r < A->n_rules; r++) {
        unsigned n[2] = {0, 0};
        for (unsigned i = 0; i < A->n_insts; i++)
            if (A->insts[i].rule == r) n[A->insts[i].state == ST_FIRING]++;
        for (int s = 0; s < 2; s++) {
            snprintf(l, sizeof l, "alertname=\"%s\",severity=\"%s\",state=\"%s\"",
                     A->rules[r].name, A->rules[r].severity, s ? "firing" : "pending");
            gf_metrics_sample(b, "gpufuse_alerts", l, n[s]);
        }
    }
    pthread_mutex_unlock(&srv->lock);
    gf_metrics_family(b, "gpufuse_alert_notifications_total", "counter",
                      "Webhook notifications, by alert status and result (after retries)");
    static const char *const st[2] = {"firing", "resolved"};
    for (int s = 0; s < 2; s++) {
        snprintf(l, sizeof l, "status=\"%s\",result=\"sent\"", st[s]);
        gf_metrics_sample(b, "gpufuse_alert_notifications_total", l, (double)A->sent[s]);
        snprintf(l, sizeof l, "status=\"%s\",result=\"failed\"", st[s]);
        gf_metrics_sample(b, "gpufuse_alert_notifications_total", l, (double)A->failed[s]);
    }
    gf_metrics_family(b, "gpufuse_alert_webhook_retries_total", "counter",
                      "Webhook deliveries tried again after a failure");
    gf_metrics_sample(b, "gpufuse_alert_webhook_retries_total", NULL, (double)A->retried);
}

/* ---- threads --------------------------------------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* POSTs body; 0 on a 2xx answer. */
static int post_once(gf_srv_alerts *A, CURL *c, const char *body, char *err, size_t errlen)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, A->webhook);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, A->webhook_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "gpufuse-alerts/1");
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s", curl_easy_strerror(rc));
        return -1;
    }
    if (code < 200 || code >= 300) {
        snprintf(err, errlen, "answered HTTP %ld", code);
        return -1;
    }
    return 0;
}

static void *sender(void *arg)
{
    gf_srv_alerts *A = arg;
    CURL *c = curl_easy_init();
    pthread_mutex_lock(&A->qlock);
    for (;;) {
        while (!A->qhead && !A->stop) pthread_cond_wait(&A->qcond, &A->qlock);
        if (A->stop) break;
        msg *m = A->qhead;
        A->qhead = m->next;
        if (!A->qhead) A->qtail = NULL;
        A->qlen--;
        pthread_mutex_unlock(&A->qlock);
        int resolved = m->resolved;
        char err[256] = "no curl handle";
        int ok = 0;
        uint64_t backoff = A->retry_base_ms;
        for (unsigned attempt = 0; c && attempt <= A->retries; attempt++) {
            if (attempt) {
                atomic_fetch_add(&A->retried, 1);
                pthread_mutex_lock(&A->qlock);
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                uint64_t ns = (uint64_t)ts.tv_nsec + backoff * 1000000ull;
                ts.tv_sec += (time_t)(ns / 1000000000ull);
                ts.tv_nsec = (long)(ns % 1000000000ull);
                while (!A->stop && pthread_cond_timedwait(&A->qcond, &A->qlock, &ts) == 0) {}
                int stop = A->stop;
                pthread_mutex_unlock(&A->qlock);
                if (stop) break;
                if (backoff < 30000) backoff *= 2;
            }
            if (post_once(A, c, m->body, err, sizeof err) == 0) {
                ok = 1;
                break;
            }
            gf_log(GF_LOG_WARN, "alerts", "webhook %s: %s (try %u of %u)", A->webhook, err,
                   attempt + 1, A->retries + 1);
        }
        atomic_fetch_add(ok ? &A->sent[resolved] : &A->failed[resolved], 1);
        if (!ok) gf_log(GF_LOG_ERROR, "alerts", "webhook %s: notification dropped: %s",
                        A->webhook, err);
        free(m->body);
        free(m);
        pthread_mutex_lock(&A->qlock);
    }
    pthread_mutex_unlock(&A->qlock);
    curl_easy_cleanup(c);
    return NULL;
}

static void *evaluator(void *arg)
{
    gf_server *srv = arg;
    gf_srv_alerts *A = srv->alerts;
    pthread_mutex_lock(&A->qlock);
    while (!A->stop) {
        pthread_mutex_unlock(&A->qlock);
        gf_srv__alerts_eval(srv, gf_srv_now_ms());
        pthread_mutex_lock(&A->qlock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + A->interval_ms * 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        while (!A->stop && pthread_cond_timedwait(&A->qcond, &A->qlock, &ts) == 0) {}
    }
    pthread_mutex_unlock(&A->qlock);
    return NULL;
}

gf_status gf_srv__alerts_init(gf_server *srv, char *err, size_t errlen)
{
    gf_srv_alerts *A = calloc(1, sizeof *A);
    if (!A) return GF_ENOMEM;
    pthread_mutex_init(&srv->metrics.lat_lock, NULL);
    memcpy(A->rules, default_rules, sizeof default_rules);
    A->n_rules = sizeof default_rules / sizeof default_rules[0];
    A->interval_ms = 15000;
    A->webhook_timeout_ms = 5000;
    A->retries = 5;
    A->retry_base_ms = 500;
    A->history = json_array();
    pthread_mutex_init(&A->qlock, NULL);
    pthread_cond_init(&A->qcond, NULL);
    srv->alerts = A;
    if (srv->cfg.alerts_file && load_config(A, srv->cfg.alerts_file, err, errlen)) {
        gf_srv__alerts_free(srv);
        return GF_EINVAL;
    }
    if (srv->cfg.alert_webhook) {
        const char *u = srv->cfg.alert_webhook;
        if ((strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) ||
            strlen(u) >= sizeof A->webhook) {
            snprintf(err, errlen, "--alert-webhook \"%.200s\": give an http:// or https:// URL",
                     u);
            gf_srv__alerts_free(srv);
            return GF_EINVAL;
        }
        snprintf(A->webhook, sizeof A->webhook, "%s", u);
    }
    gf_metrics_add_collector(&srv->metrics, collect_alerts, srv);
    gf_srv__metrics_pool_init(srv);
    if (A->webhook[0]) {
        if (pthread_create(&A->send_thread, NULL, sender, A) == 0) A->send_started = 1;
    }
    if (pthread_create(&A->eval_thread, NULL, evaluator, srv) == 0) A->eval_started = 1;
    if (!A->eval_started || (A->webhook[0] && !A->send_started)) {
        snprintf(err, errlen, "cannot start the alert threads");
        gf_srv__alerts_free(srv);
        return GF_ENOMEM;
    }
    return GF_OK;
}

void gf_srv__alerts_free(gf_server *srv)
{
    gf_srv_alerts *A = srv ? srv->alerts : NULL;
    if (!A) return;
    pthread_mutex_lock(&A->qlock);
    A->stop = 1;
    pthread_cond_broadcast(&A->qcond);
    pthread_mutex_unlock(&A->qlock);
    if (A->eval_started) pthread_join(A->eval_thread, NULL);
    if (A->send_started) pthread_join(A->send_thread, NULL);
    for (msg *m = A->qhead, *n; m; m = n) {
        n = m->next;
        free(m->body);
        free(m);
    }
    for (unsigned i = 0; i < A->n_insts; i++) {
        free(A->insts[i].key);
        json_decref(A->insts[i].labels);
        json_decref(A->insts[i].annotations);
    }
    free(A->insts);
    free(A->series);
    json_decref(A->history);
    pthread_cond_destroy(&A->qcond);
    pthread_mutex_destroy(&A->qlock);
    free(A);
    srv->alerts = NULL;
}
