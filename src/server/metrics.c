/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus text exposition for the server: the counter list plus registered collectors. */
#include "server/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gf_mbuf_printf(gf_mbuf *b, const char *fmt, ...)
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

void gf_metrics_family(gf_mbuf *b, const char *name, const char *type, const char *help)
{
    gf_mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void gf_metrics_sample(gf_mbuf *b, const char *name, const char *labels, double value)
{
    char num[64];
    if (isnan(value))
        snprintf(num, sizeof num, "NaN");
    else if (value == floor(value) && fabs(value) < 1e15)
        snprintf(num, sizeof num, "%.0f", value);
    else
        snprintf(num, sizeof num, "%.9g", value);
    if (labels && *labels)
        gf_mbuf_printf(b, "%s{%s} %s\n", name, labels, num);
    else
        gf_mbuf_printf(b, "%s %s\n", name, num);
}

void gf_metrics_escape(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *in && o + 3 < outlen; in++) {
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
    if (outlen) out[o < outlen ? o : outlen - 1] = 0;
}

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
    for (unsigned i = 0; i < m->n_collectors; i++) m->collectors[i].fn(b, m->collectors[i].ctx);
}
