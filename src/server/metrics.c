/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus text exposition for the server: the counter list, placement refusals by reason,
 * API latency histograms per route template, plus registered collectors. */
#include "server/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gf_metrics_add_collector(gf_metrics *m, gf_metrics_collector fn, void *ctx)
{
    if (m->n_collectors >= GF_METRICS_MAX_COLLECTORS) return -1;
    m->collectors[m->n_collectors].fn = fn;
    m->collectors[m->n_collectors].ctx = ctx;
    m->n_collectors++;
    return 0;
}

static const struct {
    const char *name, *help;
} counter_info[] = {
#define GF__SRV_COUNTER_INFO(id, name, help) {name, help},
    GF_SRV_COUNTER_MAP(GF__SRV_COUNTER_INFO)
#undef GF__SRV_COUNTER_INFO
};

void gf_metrics_refusal(gf_metrics *m, unsigned why)
{
    if (why >= GF_METRICS_MAX_WHY) why = GF_METRICS_MAX_WHY - 1;
    atomic_fetch_add_explicit(&m->refusals[why], 1, memory_order_relaxed);
}

/* The allocator's reasons (gf_alloc_why order, as routes.c names them in "why"). */
static const char *const why_names[] = {"none", "invalid", "no_pool", "no_gpus", "model",
                                        "selector", "not_ready", "vram", "tflops", "both",
                                        "qos", "multi_gpu", "exists"};

static int known(const char *seg, size_t len, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == len && !memcmp(*list, seg, len)) return 1;
    return 0;
}

/* /api/v1/KIND[/NAME[/SUB]] -> a template with {name}; anything else outside the API -> "other",
 * so that a scanner hitting random paths cannot grow the label sets. */
static void route_template(const char *path, char *out, size_t outlen)
{
    static const char *const kinds[] = {"pools", "nodes", "gpus", "workloads", "allocations",
                                        "profiles", "tokens", "alerts", "costs", NULL};
    static const char *const subs[] = {"heartbeat", "usage", "allocations", "renew", NULL};
    static const char *const fixed[] = {"register", NULL};
    if (!path) path = "";
    if (!strcmp(path, "/healthz") || !strcmp(path, "/metrics") || !strcmp(path, "/")) {
        snprintf(out, outlen, "%s", path);
        return;
    }
    if (strncmp(path, "/api/v1/", 8)) {
        snprintf(out, outlen, "other");
        return;
    }
    const char *seg[4];
    size_t len[4];
    unsigned n = 0;
    for (const char *p = path + 8; *p && n < 4;) {
        while (*p == '/') p++;
        if (!*p) break;
        seg[n] = p;
        len[n] = strcspn(p, "/");
        p += len[n];
        n++;
    }
    if (n == 0 || n > 3 || !known(seg[0], len[0], kinds)) {
        snprintf(out, outlen, "/api/v1/{other}");
        return;
    }
    int o = snprintf(out, outlen, "/api/v1/%.*s", (int)len[0], seg[0]);
    if (n >= 2 && o > 0 && (size_t)o < outlen)
        o += snprintf(out + o, outlen - (size_t)o, "/%s",
                      known(seg[1], len[1], fixed) ? "register" : "{name}");
    if (n == 3 && o > 0 && (size_t)o < outlen)
        snprintf(out + o, outlen - (size_t)o, "/%.*s",
                 known(seg[2], len[2], subs) ? (int)len[2] : 7,
                 known(seg[2], len[2], subs) ? seg[2] : "{other}");
}

void gf_metrics_observe_request(gf_metrics *m, const char *method, const char *path,
                                unsigned code, double seconds)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH",
                                          "OPTIONS", NULL};
    char route[48];
    route_template(path, route, sizeof route);
    const char *meth = method && known(method, strlen(method), methods) ? method : "OTHER";
    struct gf_metrics_lat *hit = NULL;
    pthread_mutex_lock(&m->lat_lock);
    for (unsigned i = 0; i < m->n_lat && !hit; i++)
        if (m->lat[i].code == code && !strcmp(m->lat[i].route, route) &&
            !strcmp(m->lat[i].method, meth))
            hit = &m->lat[i];
    if (!hit && m->n_lat < GF_METRICS_MAX_LAT) {
        hit = &m->lat[m->n_lat];
        snprintf(hit->route, sizeof hit->route, "%s", route);
        snprintf(hit->method, sizeof hit->method, "%s", meth);
        hit->code = code;
        gf_prom_hist_init(&hit->hist, gf_prom_latency_bounds, gf_prom_latency_n_bounds);
        m->n_lat++;
    }
    pthread_mutex_unlock(&m->lat_lock);
    /* Past GF_METRICS_MAX_LAT distinct series, new ones go uncounted (logged nowhere: the
     * templates keep the set small; 160 is several times what the API can produce). */
    if (hit) gf_prom_hist_observe(&hit->hist, seconds);
}

void gf_metrics_render(gf_metrics *m, gf_mbuf *b)
{
    char family[128] = "";
    for (unsigned i = 0; i < GF_SRV_C_COUNT; i++) {
        const char *name = counter_info[i].name;
        size_t fl = strcspn(name, "{");
        if (fl >= sizeof family) fl = sizeof family - 1;
        if (strncmp(family, name, fl) || family[fl]) {
            memcpy(family, name, fl);
            family[fl] = 0;
            gf_metrics_family(b, family, "counter", counter_info[i].help);
        }
        gf_mbuf_printf(b, "%s %llu\n", name,
                       (unsigned long long)atomic_load_explicit(&m->counters[i],
                                                                memory_order_relaxed));
    }
    gf_metrics_family(b, "gpufuse_allocator_refusals_total", "counter",
                      "Workload placements the allocator refused, by reason (the API's \"why\")");
    for (unsigned i = 1; i < GF_METRICS_MAX_WHY; i++) {
        uint64_t v = atomic_load_explicit(&m->refusals[i], memory_order_relaxed);
        int named = i < sizeof why_names / sizeof why_names[0];
        if (!named && !v) continue;
        char l[64];
        snprintf(l, sizeof l, "reason=\"%s\"", named ? why_names[i] : "unknown");
        gf_metrics_sample(b, "gpufuse_allocator_refusals_total", l, (double)v);
    }
    gf_metrics_family(b, "gpufuse_api_request_duration_seconds", "histogram",
                      "API request latency in the server (handler time), by route template, "
                      "method and status code");
    pthread_mutex_lock(&m->lat_lock);
    unsigned n = m->n_lat;
    pthread_mutex_unlock(&m->lat_lock);
    for (unsigned i = 0; i < n; i++) {
        char l[160];
        snprintf(l, sizeof l, "route=\"%s\",method=\"%s\",code=\"%u\"", m->lat[i].route,
                 m->lat[i].method, m->lat[i].code);
        gf_prom_hist_write(b, "gpufuse_api_request_duration_seconds", l, &m->lat[i].hist);
    }
    for (unsigned i = 0; i < m->n_collectors; i++) m->collectors[i].fn(b, m->collectors[i].ctx);
}
