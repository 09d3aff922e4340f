/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus text exposition helpers for the server's and the agent's /metrics. */
#include "gpufuse/prom.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double gf_prom_latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,    10};
const unsigned gf_prom_latency_n_bounds =
    sizeof gf_prom_latency_bounds / sizeof gf_prom_latency_bounds[0];

void gf_prom_printf(gf_prom_buf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap - b->len <= (size_t)n) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
}

void gf_prom_family(gf_prom_buf *b, const char *name, const char *type, const char *help)
{
    char h[512];
    size_t o = 0;
    for (const char *p = help ? help : ""; *p && o + 3 < sizeof h; p++) {
        if (*p == '\\' || *p == '\n') {
            h[o++] = '\\';
            h[o++] = *p == '\n' ? 'n' : '\\';
        } else {
            h[o++] = *p;
        }
    }
    h[o] = 0;
    gf_prom_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, h, name, type);
}

void gf_prom_format_value(double value, char *out, size_t outlen)
{
    if (isnan(value))
        snprintf(out, outlen, "NaN");
    else if (isinf(value))
        snprintf(out, outlen, value > 0 ? "+Inf" : "-Inf");
    else if (value == floor(value) && fabs(value) < 1e15)
        snprintf(out, outlen, "%.0f", value);
    else
        snprintf(out, outlen, "%.9g", value);
}

void gf_prom_sample(gf_prom_buf *b, const char *name, const char *labels, double value)
{
    char num[64];
    gf_prom_format_value(value, num, sizeof num);
    if (labels && *labels)
        gf_prom_printf(b, "%s{%s} %s\n", name, labels, num);
    else
        gf_prom_printf(b, "%s %s\n", name, num);
}

void gf_prom_escape(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    if (!outlen) return;
    for (; in && *in && o + 3 <= outlen; in++) {
        if (*in == '\\' || *in == '"') {
            out[o++] = '\\';
            out[o++] = *in;
        } else if (*in == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *in;
        }
    }
    out[o < outlen ? o : outlen - 1] = 0;
}

void gf_prom_hist_init(gf_prom_hist *h, const double *bounds, unsigned n_bounds)
{
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n_bounds = n_bounds > GF_PROM_HIST_MAX_BUCKETS ? GF_PROM_HIST_MAX_BUCKETS : n_bounds;
}

void gf_prom_hist_observe(gf_prom_hist *h, double value)
{
    if (!(value >= 0)) value = 0;
    unsigned i = 0;
    while (i < h->n_bounds && value > h->bounds[i]) i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_nano, (uint_fast64_t)(value * 1e9 + 0.5),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void gf_prom_hist_write(gf_prom_buf *b, const char *name, const char *labels,
                        const gf_prom_hist *h)
{
    char l[1024], le[64], metric[256];
    const char *sep = labels && *labels ? "," : "";
    uint64_t cum = 0;
    snprintf(metric, sizeof metric, "%s_bucket", name);
    for (unsigned i = 0; i <= h->n_bounds; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        gf_prom_format_value(i < h->n_bounds ? h->bounds[i] : INFINITY, le, sizeof le);
        snprintf(l, sizeof l, "%s%sle=\"%s\"", labels ? labels : "", sep, le);
        gf_prom_sample(b, metric, l, (double)cum);
    }
    /* _count equals the +Inf bucket even while other threads observe. */
    snprintf(metric, sizeof metric, "%s_sum", name);
    gf_prom_sample(b, metric, labels,
                   (double)atomic_load_explicit(&h->sum_nano, memory_order_relaxed) / 1e9);
    snprintf(metric, sizeof metric, "%s_count", name);
    gf_prom_sample(b, metric, labels, (double)cum);
}
