/* SPDX-License-Identifier: Apache-2.0 */
/* Request body validation for the REST API: JSON (jansson) -> gf_api_* structs. Every refusal
 * names the field, the value and what to send instead; nothing here allocates past return. */
#include "server/api_request.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpufuse/units.h"

static const char *const qos_names[] = {"low", "medium", "high", "critical"};

const char *gf_api_qos_name(int qos)
{
    return qos >= 0 && qos < 4 ? qos_names[qos] : NULL;
}

static gf_status fail(gf_status st, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static gf_status fail(gf_status st, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return st;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* Loads body as one JSON object; the message says where parsing stopped. */
static gf_status load_object(const char *body, size_t len, json_t **out, char *err,
                             size_t errlen)
{
    json_error_t je;
    if (!body || !len) return fail(GF_EINVAL, err, errlen, "empty body; send a JSON object");
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return fail(GF_EINVAL, err, errlen, "malformed JSON at line %d column %d: %s", je.line,
                    je.column, je.text);
    if (!json_is_object(root)) {
        gf_status st = fail(GF_EINVAL, err, errlen, "the body must be a JSON object, not %s",
                            type_name(root));
        json_decref(root);
        return st;
    }
    *out = root;
    return GF_OK;
}

/* Refuses keys not in allowed (NULL-terminated), naming the first unknown one. */
static gf_status check_keys(const char *where, json_t *obj, const char *const *allowed,
                            char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(*a, key)) ok = 1;
        if (!ok) {
            char list[512] = "";
            size_t n = 0;
            for (const char *const *a = allowed; *a && n < sizeof list; a++)
                n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", *a);
            return fail(GF_EINVAL, err, errlen, "%s: unknown field \"%.64s\"; known fields: %s",
                        where, key, list);
        }
    }
    return GF_OK;
}

gf_status gf_api_check_name(const char *what, const char *name, char *err, size_t errlen)
{
    size_t n = strlen(name);
    if (n == 0 || n >= GF_API_NAME_MAX)
        return fail(GF_EINVAL, err, errlen, "%s: \"%.80s\": must be 1 to %d characters", what,
                    name, GF_API_NAME_MAX - 1);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (alnum || (i > 0 && (c == '.' || c == '_' || c == '-'))) continue;
        return fail(GF_EINVAL, err, errlen,
                    "%s: \"%.80s\": use lowercase letters, digits, '.', '_' and '-', starting "
                    "with a letter or digit",
                    what, name);
    }
    return GF_OK;
}

/* Copies a JSON string of at most cap-1 bytes (no NUL inside; jansson refuses those). */
static gf_status get_string(const char *field, json_t *v, char *dst, size_t cap, char *err,
                            size_t errlen)
{
    if (!json_is_string(v))
        return fail(GF_EINVAL, err, errlen, "%s: expected a string, got %s", field,
                    type_name(v));
    size_t n = json_string_length(v);
    if (n >= cap)
        return fail(GF_EINVAL, err, errlen, "%s: too long (%zu bytes); at most %zu", field, n,
                    cap - 1);
    memcpy(dst, json_string_value(v), n + 1);
    return GF_OK;
}

static gf_status get_name(const char *field, json_t *v, char *dst, char *err, size_t errlen)
{
    if (!json_is_string(v))
        return fail(GF_EINVAL, err, errlen, "%s: expected a string, got %s", field,
                    type_name(v));
    return gf_api_check_name(field, json_string_value(v), err, errlen) == GF_OK
               ? (memcpy(dst, json_string_value(v), strlen(json_string_value(v)) + 1), GF_OK)
               : GF_EINVAL;
}

gf_status gf_api_size(const char *field, json_t *v, uint64_t *out, char *err, size_t errlen)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0)
            return fail(GF_EINVAL, err, errlen, "%s: %lld: sizes cannot be negative", field,
                        (long long)i);
        if ((uint64_t)i > GF_API_SIZE_MAX)
            return fail(GF_ERANGE, err, errlen, "%s: %lld bytes is more than 1 EiB; give bytes "
                        "or a string such as \"4Gi\"", field, (long long)i);
        *out = (uint64_t)i;
        return GF_OK;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d < 0)
            return fail(GF_EINVAL, err, errlen, "%s: %g: sizes cannot be negative", field, d);
        if (d > (double)GF_API_SIZE_MAX)
            return fail(GF_ERANGE, err, errlen, "%s: %g bytes is more than 1 EiB", field, d);
        if (d != floor(d))
            return fail(GF_EINVAL, err, errlen, "%s: %g: a size in bytes must be whole; use a "
                        "string such as \"1.5Gi\" for fractions of a unit", field, d);
        *out = (uint64_t)d;
        return GF_OK;
    }
    if (json_is_string(v)) {
        uint64_t b;
        gf_status st = gf_parse_size(field, json_string_value(v), &b, err, errlen);
        if (st != GF_OK) return st;
        if (b > GF_API_SIZE_MAX)
            return fail(GF_ERANGE, err, errlen, "%s: \"%.40s\" is more than 1 EiB", field,
                        json_string_value(v));
        *out = b;
        return GF_OK;
    }
    return fail(GF_EINVAL, err, errlen,
                "%s: expected bytes (a number) or a size string such as \"4Gi\", got %s", field,
                type_name(v));
}

static gf_status get_tflops(const char *field, json_t *v, double *out, char *err,
                            size_t errlen)
{
    double d;
    if (json_is_number(v)) {
        d = json_number_value(v);
    } else if (json_is_string(v)) {
        gf_status st = gf_parse_tflops(field, json_string_value(v), &d, err, errlen);
        if (st != GF_OK) return st;
    } else {
        return fail(GF_EINVAL, err, errlen, "%s: expected FP16 TFLOPs as a number, got %s",
                    field, type_name(v));
    }
    if (!(d > 0)) return fail(GF_EINVAL, err, errlen, "%s: %g: must be above 0", field, d);
    if (!(d <= GF_API_TFLOPS_MAX))
        return fail(GF_ERANGE, err, errlen, "%s: %g TFLOPs is more than %g", field, d,
                    GF_API_TFLOPS_MAX);
    *out = d;
    return GF_OK;
}

static gf_status get_percent(const char *field, json_t *v, double *out, char *err,
                             size_t errlen)
{
    double d;
    if (json_is_number(v)) {
        d = json_number_value(v);
    } else if (json_is_string(v)) {
        gf_status st = gf_parse_percent(field, json_string_value(v), &d, err, errlen);
        if (st != GF_OK) return st;
    } else {
        return fail(GF_EINVAL, err, errlen, "%s: expected a percent (0, 100], got %s", field,
                    type_name(v));
    }
    if (!(d > 0 && d <= 100))
        return fail(GF_EINVAL, err, errlen, "%s: %g: a percent must be in (0, 100]", field, d);
    *out = d;
    return GF_OK;
}

/* An integer in [lo, hi]. */
static gf_status get_uint(const char *field, json_t *v, long long lo, long long hi,
                          long long *out, char *err, size_t errlen)
{
    if (!json_is_integer(v))
        return fail(GF_EINVAL, err, errlen, "%s: expected an integer, got %s", field,
                    type_name(v));
    json_int_t i = json_integer_value(v);
    if (i < lo || i > hi)
        return fail(i < lo ? GF_EINVAL : GF_ERANGE, err, errlen,
                    "%s: %lld: must be between %lld and %lld", field, (long long)i, lo, hi);
    *out = i;
    return GF_OK;
}

static gf_status get_labels(const char *field, json_t *v, gf_api_label *labels, unsigned *n,
                            char *err, size_t errlen)
{
    if (!json_is_object(v))
        return fail(GF_EINVAL, err, errlen, "%s: expected an object of \"key\": \"value\", "
                    "got %s", field, type_name(v));
    if (json_object_size(v) > GF_API_MAX_LABELS)
        return fail(GF_EINVAL, err, errlen, "%s: %zu labels; at most %d", field,
                    json_object_size(v), GF_API_MAX_LABELS);
    const char *key;
    json_t *val;
    unsigned i = 0;
    json_object_foreach(v, key, val) {
        char f[128];
        snprintf(f, sizeof f, "%s.%.60s", field, key);
        size_t kl = strlen(key);
        if (kl == 0 || kl >= GF_API_LABEL_MAX)
            return fail(GF_EINVAL, err, errlen, "%s: label keys must be 1 to %d characters",
                        field, GF_API_LABEL_MAX - 1);
        memcpy(labels[i].key, key, kl + 1);
        gf_status st = get_string(f, val, labels[i].value, GF_API_LABEL_MAX, err, errlen);
        if (st != GF_OK) return st;
        i++;
    }
    *n = i;
    return GF_OK;
}

gf_status gf_api_lease(const char *field, json_t *v, uint64_t *out_ms, char *err,
                       size_t errlen)
{
    uint64_t ms;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0)
            return fail(GF_EINVAL, err, errlen, "%s: %lld: a lease cannot be negative", field,
                        (long long)i);
        ms = (uint64_t)i;
    } else if (json_is_string(v)) {
        char e2[256];
        uint64_t ns;
        if (gf_parse_duration_ns(field, json_string_value(v), &ns, e2, sizeof e2) != GF_OK)
            return fail(GF_EINVAL, err, errlen, "%s (milliseconds, or a string such as "
                        "\"30s\")", e2);
        ms = ns / 1000000u;
    } else {
        return fail(GF_EINVAL, err, errlen, "%s: expected milliseconds or a duration such as "
                    "\"30s\", got %s", field, type_name(v));
    }
    if (ms < GF_API_LEASE_MIN_MS || ms > GF_API_LEASE_MAX_MS)
        return fail(ms < GF_API_LEASE_MIN_MS ? GF_EINVAL : GF_ERANGE, err, errlen,
                    "%s: %llu ms: a lease must be from 1 s to 24 h", field,
                    (unsigned long long)ms);
    *out_ms = ms;
    return GF_OK;
}

gf_status gf_api_parse_renew(const char *body, size_t len, uint64_t *lease_ms, char *err,
                             size_t errlen)
{
    static const char *const keys[] = {"lease_ms", NULL};
    *lease_ms = 0;
    if (!body || !len) return GF_OK;
    json_t *root, *v;
    gf_status st = load_object(body, len, &root, err, errlen);
    if (st != GF_OK) return st;
    st = check_keys("renew", root, keys, err, errlen);
    if (st == GF_OK && (v = json_object_get(root, "lease_ms")))
        st = gf_api_lease("lease_ms", v, lease_ms, err, errlen);
    json_decref(root);
    return st;
}

/* "lease_ms" last: profiles take every key after "profile" but this one (a lease belongs to
 * the client that renews it, not to a kind of request). */
static const char *const workload_keys[] = {
    "name", "profile", "pool", "tflops_request", "tflops_limit", "compute_percent_request",
    "compute_percent_limit", "vram_request", "vram_limit", "gpu_count", "gpu_models", "qos",
    "remote", "node", "node_labels", "lease_ms", NULL};
static const char *const profile_keys[] = {
    "pool", "tflops_request", "tflops_limit", "compute_percent_request",
    "compute_percent_limit", "vram_request", "vram_limit", "gpu_count", "gpu_models", "qos",
    "remote", "node", "node_labels", NULL};

static gf_status parse_workload_obj(json_t *root, int is_profile, gf_api_workload *w,
                                    char *err, size_t errlen)
{
    gf_status st = check_keys(is_profile ? "profile" : "workload", root,
                              is_profile ? profile_keys : workload_keys, err, errlen);
    if (st != GF_OK) return st;
    json_t *v;
    if (!is_profile && (v = json_object_get(root, "name")) &&
        (st = get_name("name", v, w->name, err, errlen)) != GF_OK)
        return st;
    if (!is_profile && (v = json_object_get(root, "profile")) &&
        (st = get_name("profile", v, w->profile, err, errlen)) != GF_OK)
        return st;
    if ((v = json_object_get(root, "pool"))) {
        if ((st = get_name("pool", v, w->pool, err, errlen)) != GF_OK) return st;
        w->set |= GF_API_F_POOL;
    }
    if ((v = json_object_get(root, "tflops_request"))) {
        if ((st = get_tflops("tflops_request", v, &w->tflops_request, err, errlen))) return st;
        w->set |= GF_API_F_TFLOPS_REQ;
    }
    if ((v = json_object_get(root, "tflops_limit"))) {
        if ((st = get_tflops("tflops_limit", v, &w->tflops_limit, err, errlen))) return st;
        w->set |= GF_API_F_TFLOPS_LIM;
    }
    if ((v = json_object_get(root, "compute_percent_request"))) {
        if ((st = get_percent("compute_percent_request", v, &w->percent_request, err, errlen)))
            return st;
        w->set |= GF_API_F_PCT_REQ;
    }
    if ((v = json_object_get(root, "compute_percent_limit"))) {
        if ((st = get_percent("compute_percent_limit", v, &w->percent_limit, err, errlen)))
            return st;
        w->set |= GF_API_F_PCT_LIM;
    }
    if ((v = json_object_get(root, "vram_request"))) {
        if ((st = gf_api_size("vram_request", v, &w->vram_request, err, errlen))) return st;
        w->set |= GF_API_F_VRAM_REQ;
    }
    if ((v = json_object_get(root, "vram_limit"))) {
        if ((st = gf_api_size("vram_limit", v, &w->vram_limit, err, errlen))) return st;
        w->set |= GF_API_F_VRAM_LIM;
    }
    if ((v = json_object_get(root, "gpu_count"))) {
        long long n;
        if ((st = get_uint("gpu_count", v, 1, GF_API_MAX_GPUS, &n, err, errlen))) return st;
        w->gpu_count = (unsigned)n;
        w->set |= GF_API_F_GPU_COUNT;
    }
    if ((v = json_object_get(root, "gpu_models"))) {
        if (json_is_string(v)) {
            if ((st = get_string("gpu_models", v, w->models[0], GF_API_MODEL_MAX, err,
                                 errlen)))
                return st;
            w->n_models = w->models[0][0] ? 1 : 0;
        } else if (json_is_array(v)) {
            if (json_array_size(v) > GF_API_MAX_MODELS)
                return fail(GF_EINVAL, err, errlen, "gpu_models: %zu models; at most %d",
                            json_array_size(v), GF_API_MAX_MODELS);
            size_t i;
            json_t *m;
            json_array_foreach(v, i, m) {
                char f[48];
                snprintf(f, sizeof f, "gpu_models[%zu]", i);
                if ((st = get_string(f, m, w->models[i], GF_API_MODEL_MAX, err, errlen)))
                    return st;
                if (!w->models[i][0])
                    return fail(GF_EINVAL, err, errlen, "%s: empty model name", f);
            }
            w->n_models = (unsigned)json_array_size(v);
        } else {
            return fail(GF_EINVAL, err, errlen, "gpu_models: expected an array of model names "
                        "such as [\"H100\", \"A100-80G\"], got %s", type_name(v));
        }
        w->set |= GF_API_F_MODELS;
    }
    if ((v = json_object_get(root, "qos"))) {
        if (!json_is_string(v))
            return fail(GF_EINVAL, err, errlen, "qos: expected low, medium, high or critical, "
                        "got %s", type_name(v));
        w->qos = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(json_string_value(v), qos_names[i])) w->qos = i;
        if (w->qos < 0)
            return fail(GF_EINVAL, err, errlen, "qos: \"%.40s\": use low, medium, high or "
                        "critical", json_string_value(v));
        w->set |= GF_API_F_QOS;
    }
    if ((v = json_object_get(root, "remote"))) {
        if (!json_is_boolean(v))
            return fail(GF_EINVAL, err, errlen, "remote: expected true or false, got %s",
                        type_name(v));
        w->remote = json_is_true(v);
        w->set |= GF_API_F_REMOTE;
    }
    if ((v = json_object_get(root, "node"))) {
        if ((st = get_name("node", v, w->node, err, errlen))) return st;
        w->set |= GF_API_F_NODE;
    }
    if ((v = json_object_get(root, "node_labels"))) {
        if ((st = get_labels("node_labels", v, w->labels, &w->n_labels, err, errlen)))
            return st;
        w->set |= GF_API_F_LABELS;
    }
    if (!is_profile && (v = json_object_get(root, "lease_ms")) &&
        (st = gf_api_lease("lease_ms", v, &w->lease_ms, err, errlen)) != GF_OK)
        return st;
    return GF_OK;
}

gf_status gf_api_workload_check(const gf_api_workload *w, char *err, size_t errlen)
{
    if ((w->tflops_request > 0 || w->tflops_limit > 0) &&
        (w->percent_request > 0 || w->percent_limit > 0))
        return fail(GF_EINVAL, err, errlen, "give compute as tflops_request/tflops_limit or as "
                    "compute_percent_request/compute_percent_limit, not both");
    if (w->tflops_limit > 0 && w->tflops_limit < w->tflops_request)
        return fail(GF_EINVAL, err, errlen, "tflops_limit %g is below tflops_request %g; a "
                    "limit must be at least the request", w->tflops_limit, w->tflops_request);
    if (w->percent_limit > 0 && w->percent_limit < w->percent_request)
        return fail(GF_EINVAL, err, errlen, "compute_percent_limit %g is below "
                    "compute_percent_request %g", w->percent_limit, w->percent_request);
    if (w->vram_limit > 0 && w->vram_limit < w->vram_request)
        return fail(GF_EINVAL, err, errlen, "vram_limit %llu is below vram_request %llu bytes; "
                    "a limit must be at least the request",
                    (unsigned long long)w->vram_limit, (unsigned long long)w->vram_request);
    return GF_OK;
}

gf_status gf_api_parse_workload(const char *body, size_t len, int is_profile,
                                gf_api_workload *out, char *err, size_t errlen)
{
    json_t *root;
    memset(out, 0, sizeof *out);
    out->qos = GF_API_QOS_MEDIUM;
    gf_status st = load_object(body, len, &root, err, errlen);
    if (st != GF_OK) return st;
    st = parse_workload_obj(root, is_profile, out, err, errlen);
    json_decref(root);
    /* A workload naming a profile is checked after the merge. */
    if (st == GF_OK && (is_profile || !out->profile[0]))
        st = gf_api_workload_check(out, err, errlen);
    return st;
}

void gf_api_workload_apply_profile(gf_api_workload *w, const gf_api_workload *p)
{
    unsigned missing = p->set & ~w->set;
    if (missing & GF_API_F_POOL) memcpy(w->pool, p->pool, sizeof w->pool);
    if (missing & GF_API_F_TFLOPS_REQ) w->tflops_request = p->tflops_request;
    if (missing & GF_API_F_TFLOPS_LIM) w->tflops_limit = p->tflops_limit;
    if (missing & GF_API_F_PCT_REQ) w->percent_request = p->percent_request;
    if (missing & GF_API_F_PCT_LIM) w->percent_limit = p->percent_limit;
    if (missing & GF_API_F_VRAM_REQ) w->vram_request = p->vram_request;
    if (missing & GF_API_F_VRAM_LIM) w->vram_limit = p->vram_limit;
    if (missing & GF_API_F_GPU_COUNT) w->gpu_count = p->gpu_count;
    if (missing & GF_API_F_MODELS) {
        memcpy(w->models, p->models, sizeof w->models);
        w->n_models = p->n_models;
    }
    if (missing & GF_API_F_QOS) w->qos = p->qos;
    if (missing & GF_API_F_REMOTE) w->remote = p->remote;
    if (missing & GF_API_F_NODE) memcpy(w->node, p->node, sizeof w->node);
    if (missing & GF_API_F_LABELS) {
        memcpy(w->labels, p->labels, sizeof w->labels);
        w->n_labels = p->n_labels;
    }
    w->set |= p->set;
}

char *gf_api_workload_to_json(const gf_api_workload *w, int with_name)
{
    json_t *o = json_object();
    if (with_name) {
        json_object_set_new(o, "name", json_string(w->name));
        if (w->profile[0]) json_object_set_new(o, "profile", json_string(w->profile));
    }
    json_object_set_new(o, "pool", json_string(w->pool[0] ? w->pool : "default"));
    if (w->set & GF_API_F_TFLOPS_REQ)
        json_object_set_new(o, "tflops_request", json_real(w->tflops_request));
    if (w->set & GF_API_F_TFLOPS_LIM)
        json_object_set_new(o, "tflops_limit", json_real(w->tflops_limit));
    if (w->set & GF_API_F_PCT_REQ)
        json_object_set_new(o, "compute_percent_request", json_real(w->percent_request));
    if (w->set & GF_API_F_PCT_LIM)
        json_object_set_new(o, "compute_percent_limit", json_real(w->percent_limit));
    if (w->set & GF_API_F_VRAM_REQ)
        json_object_set_new(o, "vram_request", json_integer((json_int_t)w->vram_request));
    if (w->set & GF_API_F_VRAM_LIM)
        json_object_set_new(o, "vram_limit", json_integer((json_int_t)w->vram_limit));
    json_object_set_new(o, "gpu_count", json_integer(w->gpu_count ? w->gpu_count : 1));
    if (w->n_models) {
        json_t *a = json_array();
        for (unsigned i = 0; i < w->n_models; i++) json_array_append_new(a, json_string(w->models[i]));
        json_object_set_new(o, "gpu_models", a);
    }
    json_object_set_new(o, "qos", json_string(gf_api_qos_name(w->qos) ? gf_api_qos_name(w->qos)
                                                                        : "medium"));
    json_object_set_new(o, "remote", json_boolean(w->remote));
    if (w->node[0]) json_object_set_new(o, "node", json_string(w->node));
    if (w->lease_ms) json_object_set_new(o, "lease_ms", json_integer((json_int_t)w->lease_ms));
    if (w->n_labels) {
        json_t *l = json_object();
        for (unsigned i = 0; i < w->n_labels; i++)
            json_object_set_new(l, w->labels[i].key, json_string(w->labels[i].value));
        json_object_set_new(o, "node_labels", l);
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

/* ---- node registration ---------------------------------------------------------------------- */

static const char *const register_keys[] = {"name", "pool", "address", "agent_version",
                                            "labels", "gpus", NULL};
static const char *const gpu_keys[] = {"uuid", "index", "model", "vram_bytes", "tflops", NULL};

static gf_status parse_gpu_info(const char *f, json_t *g, gf_api_gpu_info *gi, char *err,
                                size_t errlen)
{
    char fld[96];
    gf_status st;
    json_t *v;
    if (!json_is_object(g))
        return fail(GF_EINVAL, err, errlen, "%s: expected an object, got %s", f, type_name(g));
    if ((st = check_keys(f, g, gpu_keys, err, errlen))) return st;
    snprintf(fld, sizeof fld, "%s.uuid", f);
    if (!(v = json_object_get(g, "uuid")))
        return fail(GF_EINVAL, err, errlen, "%s: required", fld);
    if ((st = get_string(fld, v, gi->uuid, sizeof gi->uuid, err, errlen))) return st;
    if (!gi->uuid[0]) return fail(GF_EINVAL, err, errlen, "%s: empty", fld);
    for (const char *c = gi->uuid; *c; c++)
        if (*c <= ' ' || *c == '/' || *c == '"' || *c == '\\' || (unsigned char)*c >= 0x7f)
            return fail(GF_EINVAL, err, errlen, "%s: \"%.96s\": only printable ASCII without "
                        "spaces, '/', '\"' or '\\'", fld, gi->uuid);
    snprintf(fld, sizeof fld, "%s.index", f);
    if ((v = json_object_get(g, "index"))) {
        long long n;
        if ((st = get_uint(fld, v, 0, 1023, &n, err, errlen))) return st;
        gi->index = (unsigned)n;
    }
    snprintf(fld, sizeof fld, "%s.model", f);
    if (!(v = json_object_get(g, "model")))
        return fail(GF_EINVAL, err, errlen, "%s: required", fld);
    if ((st = get_string(fld, v, gi->model, sizeof gi->model, err, errlen))) return st;
    snprintf(fld, sizeof fld, "%s.vram_bytes", f);
    if (!(v = json_object_get(g, "vram_bytes")))
        return fail(GF_EINVAL, err, errlen, "%s: required", fld);
    if ((st = gf_api_size(fld, v, &gi->vram_bytes, err, errlen))) return st;
    snprintf(fld, sizeof fld, "%s.tflops", f);
    if ((v = json_object_get(g, "tflops")) &&
        (st = get_tflops(fld, v, &gi->tflops, err, errlen)))
        return st;
    return GF_OK;
}

gf_status gf_api_parse_register(const char *body, size_t len, gf_api_register *out, char *err,
                                size_t errlen)
{
    json_t *root, *v;
    memset(out, 0, sizeof *out);
    gf_status st = load_object(body, len, &root, err, errlen);
    if (st != GF_OK) return st;
    if ((st = check_keys("register", root, register_keys, err, errlen))) goto out;
    if (!(v = json_object_get(root, "name"))) {
        st = fail(GF_EINVAL, err, errlen, "name: required (the node's name)");
        goto out;
    }
    if ((st = get_name("name", v, out->name, err, errlen))) goto out;
    if ((v = json_object_get(root, "pool")) && (st = get_name("pool", v, out->pool, err, errlen)))
        goto out;
    if ((v = json_object_get(root, "address")) &&
        (st = get_string("address", v, out->address, sizeof out->address, err, errlen)))
        goto out;
    if ((v = json_object_get(root, "agent_version")) &&
        (st = get_string("agent_version", v, out->agent_version, sizeof out->agent_version,
                         err, errlen)))
        goto out;
    if ((v = json_object_get(root, "labels")) &&
        (st = get_labels("labels", v, out->labels, &out->n_labels, err, errlen)))
        goto out;
    if ((v = json_object_get(root, "gpus"))) {
        if (!json_is_array(v)) {
            st = fail(GF_EINVAL, err, errlen, "gpus: expected an array, got %s", type_name(v));
            goto out;
        }
        if (json_array_size(v) > GF_API_MAX_GPUS) {
            st = fail(GF_EINVAL, err, errlen, "gpus: %zu GPUs; at most %d per node",
                      json_array_size(v), GF_API_MAX_GPUS);
            goto out;
        }
        size_t i;
        json_t *g;
        json_array_foreach(v, i, g) {
            char f[48];
            snprintf(f, sizeof f, "gpus[%zu]", i);
            if ((st = parse_gpu_info(f, g, &out->gpus[i], err, errlen))) goto out;
            for (size_t j = 0; j < i; j++)
                if (!strcmp(out->gpus[j].uuid, out->gpus[i].uuid)) {
                    st = fail(GF_EINVAL, err, errlen, "%s.uuid: \"%s\" appears twice", f,
                              out->gpus[i].uuid);
                    goto out;
                }
        }
        out->n_gpus = (unsigned)json_array_size(v);
    }
out:
    json_decref(root);
    return st;
}

/* ---- usage reports ---------------------------------------------------------------------------- */

static const char *const usage_keys[] = {"gpus", "vgpus", NULL};
static const char *const gpu_usage_keys[] = {"uuid", "vram_used", "utilization",
                                             "temperature_c", "power_mw", NULL};
static const char *const vgpu_usage_keys[] = {"allocation", "vram_used", "busy_ns",
                                              "throttled_ns", NULL};

static gf_status parse_gpu_usage(const char *f, json_t *g, gf_api_gpu_usage *u, char *err,
                                 size_t errlen)
{
    char fld[96];
    gf_status st;
    json_t *v;
    long long n;
    if (!json_is_object(g))
        return fail(GF_EINVAL, err, errlen, "%s: expected an object, got %s", f, type_name(g));
    if ((st = check_keys(f, g, gpu_usage_keys, err, errlen))) return st;
    snprintf(fld, sizeof fld, "%s.uuid", f);
    if (!(v = json_object_get(g, "uuid"))) return fail(GF_EINVAL, err, errlen, "%s: required", fld);
    if ((st = get_string(fld, v, u->uuid, sizeof u->uuid, err, errlen))) return st;
    snprintf(fld, sizeof fld, "%s.vram_used", f);
    if ((v = json_object_get(g, "vram_used")) && (st = gf_api_size(fld, v, &u->vram_used, err, errlen)))
        return st;
    snprintf(fld, sizeof fld, "%s.utilization", f);
    if ((v = json_object_get(g, "utilization"))) {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 100)
            return fail(GF_EINVAL, err, errlen, "%s: expected a percent in [0, 100]", fld);
        u->utilization = json_number_value(v);
    }
    u->temperature_c = -1;
    u->power_mw = -1;
    snprintf(fld, sizeof fld, "%s.temperature_c", f);
    if ((v = json_object_get(g, "temperature_c"))) {
        if ((st = get_uint(fld, v, -100, 300, &n, err, errlen))) return st;
        u->temperature_c = (int)n;
    }
    snprintf(fld, sizeof fld, "%s.power_mw", f);
    if ((v = json_object_get(g, "power_mw"))) {
        if ((st = get_uint(fld, v, 0, 100000000, &n, err, errlen))) return st;
        u->power_mw = n;
    }
    return GF_OK;
}

static gf_status parse_vgpu_usage(const char *f, json_t *g, gf_api_vgpu_usage *u, char *err,
                                  size_t errlen)
{
    char fld[96];
    gf_status st;
    json_t *v;
    if (!json_is_object(g))
        return fail(GF_EINVAL, err, errlen, "%s: expected an object, got %s", f, type_name(g));
    if ((st = check_keys(f, g, vgpu_usage_keys, err, errlen))) return st;
    snprintf(fld, sizeof fld, "%s.allocation", f);
    if (!(v = json_object_get(g, "allocation")))
        return fail(GF_EINVAL, err, errlen, "%s: required", fld);
    if ((st = get_string(fld, v, u->allocation, sizeof u->allocation, err, errlen))) return st;
    snprintf(fld, sizeof fld, "%s.vram_used", f);
    if ((v = json_object_get(g, "vram_used")) && (st = gf_api_size(fld, v, &u->vram_used, err, errlen)))
        return st;
    snprintf(fld, sizeof fld, "%s.busy_ns", f);
    if ((v = json_object_get(g, "busy_ns")) && (st = gf_api_size(fld, v, &u->busy_ns, err, errlen)))
        return st;
    snprintf(fld, sizeof fld, "%s.throttled_ns", f);
    if ((v = json_object_get(g, "throttled_ns")) &&
        (st = gf_api_size(fld, v, &u->throttled_ns, err, errlen)))
        return st;
    return GF_OK;
}

gf_status gf_api_parse_usage(const char *body, size_t len, gf_api_usage *out, char *err,
                             size_t errlen)
{
    json_t *root, *v;
    memset(out, 0, sizeof *out);
    gf_status st = load_object(body, len, &root, err, errlen);
    if (st != GF_OK) return st;
    if ((st = check_keys("usage", root, usage_keys, err, errlen))) goto out;
    if ((v = json_object_get(root, "gpus"))) {
        if (!json_is_array(v) || json_array_size(v) > GF_API_MAX_GPUS) {
            st = fail(GF_EINVAL, err, errlen, "gpus: expected an array of at most %d GPUs",
                      GF_API_MAX_GPUS);
            goto out;
        }
        size_t i;
        json_t *g;
        json_array_foreach(v, i, g) {
            char f[48];
            snprintf(f, sizeof f, "gpus[%zu]", i);
            if ((st = parse_gpu_usage(f, g, &out->gpus[i], err, errlen))) goto out;
        }
        out->n_gpus = (unsigned)json_array_size(v);
    }
    if ((v = json_object_get(root, "vgpus"))) {
        if (!json_is_array(v) || json_array_size(v) > GF_API_MAX_VGPUS) {
            st = fail(GF_EINVAL, err, errlen, "vgpus: expected an array of at most %d vGPUs",
                      GF_API_MAX_VGPUS);
            goto out;
        }
        size_t i;
        json_t *g;
        json_array_foreach(v, i, g) {
            char f[48];
            snprintf(f, sizeof f, "vgpus[%zu]", i);
            if ((st = parse_vgpu_usage(f, g, &out->vgpus[i], err, errlen))) goto out;
        }
        out->n_vgpus = (unsigned)json_array_size(v);
    }
out:
    json_decref(root);
    return st;
}

/* ---- pools, tokens ---------------------------------------------------------------------------- */

static const char *const pool_keys[] = {"strategy", "oversubscription",
                                        "oversubscription_tflops", "oversubscription_vram", NULL};

static gf_status get_ratio(const char *field, json_t *v, double *out, char *err, size_t errlen)
{
    if (!json_is_number(v))
        return fail(GF_EINVAL, err, errlen, "%s: expected a ratio >= 1 such as 1.5, got %s",
                    field, type_name(v));
    double r = json_number_value(v);
    if (!(r >= 1 && r <= 100))
        return fail(GF_EINVAL, err, errlen, "%s: %g: must be between 1 (none) and 100", field, r);
    *out = r;
    return GF_OK;
}

gf_status gf_api_parse_pool(const char *body, size_t len, gf_api_pool *out, char *err,
                            size_t errlen)
{
    json_t *root, *v;
    memset(out, 0, sizeof *out);
    gf_status st = load_object(body, len, &root, err, errlen);
    if (st != GF_OK) return st;
    if ((st = check_keys("pool", root, pool_keys, err, errlen))) goto out;
    if ((v = json_object_get(root, "strategy"))) {
        if ((st = get_string("strategy", v, out->strategy, sizeof out->strategy, err, errlen)))
            goto out;
        if (strcmp(out->strategy, "binpack") && strcmp(out->strategy, "spread") &&
            strcmp(out->strategy, "least-fragmentation")) {
            st = fail(GF_EINVAL, err, errlen, "strategy: \"%s\": use binpack, spread or "
                      "least-fragmentation", out->strategy);
            goto out;
        }
    }
    if ((v = json_object_get(root, "oversubscription"))) {
        if ((st = get_ratio("oversubscription", v, &out->oversub_tflops, err, errlen))) goto out;
        out->oversub_vram = out->oversub_tflops;
    }
    if ((v = json_object_get(root, "oversubscription_tflops")) &&
        (st = get_ratio("oversubscription_tflops", v, &out->oversub_tflops, err, errlen)))
        goto out;
    if ((v = json_object_get(root, "oversubscription_vram")) &&
        (st = get_ratio("oversubscription_vram", v, &out->oversub_vram, err, errlen)))
        goto out;
out:
    json_decref(root);
    return st;
}

static const char *const token_keys[] = {"node", "admin", NULL};

gf_status gf_api_parse_token_req(const char *body, size_t len, gf_api_token_req *out, char *err,
                                 size_t errlen)
{
    json_t *root, *v;
    memset(out, 0, sizeof *out);
    gf_status st = load_object(body, len, &root, err, errlen);
    if (st != GF_OK) return st;
    if ((st = check_keys("token", root, token_keys, err, errlen))) goto out;
    if ((v = json_object_get(root, "node")) && (st = get_name("node", v, out->node, err, errlen)))
        goto out;
    if ((v = json_object_get(root, "admin"))) {
        if (!json_is_boolean(v)) {
            st = fail(GF_EINVAL, err, errlen, "admin: expected true or false");
            goto out;
        }
        out->admin = json_is_true(v);
    }
    if (!out->admin == !out->node[0])
        st = fail(GF_EINVAL, err, errlen, "give either \"node\": \"NAME\" (a node token) or "
                  "\"admin\": true (an admin token)");
out:
    json_decref(root);
    return st;
}
