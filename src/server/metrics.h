/* SPDX-License-Identifier: Apache-2.0 */
/* The server's /metrics: fixed counters (one X-macro list, atomics, bumped from any thread) and
 * collectors (functions that write gauges from current state when /metrics is scraped), in the
 * Prometheus text exposition format 0.0.4. To add a counter: one line in GF_SRV_COUNTER_MAP; to
 * add state-derived metrics (issue 6: per GPU/vGPU/pool/alerts): gf_metrics_add_collector. */
#ifndef GF_SERVER_METRICS_H
#define GF_SERVER_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* id, metric name (with its labels, if any), HELP text. Counters sharing a name before '{'
 * form one family: keep them adjacent. */
#define GF_SRV_COUNTER_MAP(X)                                                                     \
    X(API_2XX, "gpufuse_api_requests_total{code=\"2xx\"}", "API requests answered, by status class") \
    X(API_4XX, "gpufuse_api_requests_total{code=\"4xx\"}", "")                                    \
    X(API_5XX, "gpufuse_api_requests_total{code=\"5xx\"}", "")                                    \
    X(AUTH_FAILED, "gpufuse_api_auth_failures_total", "Requests refused with 401 or 403")         \
    X(PLACE_OK, "gpufuse_allocator_placements_total{outcome=\"placed\"}",                          \
      "Workload placement attempts, by outcome")                                                 \
    X(PLACE_NOFIT, "gpufuse_allocator_placements_total{outcome=\"no_fit\"}", "")                  \
    X(PLACE_INVALID, "gpufuse_allocator_placements_total{outcome=\"invalid\"}", "")               \
    X(RELEASES, "gpufuse_allocations_released_total{reason=\"deleted\"}",                          \
      "Workload allocations released, by reason")                                                \
    X(RELEASES_LOST, "gpufuse_allocations_released_total{reason=\"node_lost\"}", "")              \
    X(NODE_LOST, "gpufuse_node_lost_total", "Times a node missed its heartbeats and went NotReady") \
    X(HEARTBEATS, "gpufuse_node_heartbeats_total", "Heartbeats received from agents")             \
    X(USAGE_REPORTS, "gpufuse_node_usage_reports_total", "Usage reports received from agents")

typedef enum gf_srv_counter {
#define GF__SRV_COUNTER_ENUM(id, name, help) GF_SRV_C_##id,
    GF_SRV_COUNTER_MAP(GF__SRV_COUNTER_ENUM)
#undef GF__SRV_COUNTER_ENUM
    GF_SRV_C_COUNT
} gf_srv_counter;

/* A growing text buffer (the exposition being written). */
typedef struct gf_mbuf {
    char *data;
    size_t len, cap;
    int oom; /* set when an append failed: the scrape answers 500 */
} gf_mbuf;

void gf_mbuf_printf(gf_mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram). */
void gf_metrics_family(gf_mbuf *b, const char *name, const char *type, const char *help);
/* Writes one sample line: name{labels} value. labels may be NULL or "" (no braces); label
 * values must be escaped by the caller with gf_metrics_escape. */
void gf_metrics_sample(gf_mbuf *b, const char *name, const char *labels, double value);
/* Escapes a label value (\\, \", \n) into out (truncating). */
void gf_metrics_escape(const char *in, char *out, size_t outlen);

typedef void (*gf_metrics_collector)(gf_mbuf *b, void *ctx);

#define GF_METRICS_MAX_COLLECTORS 16

typedef struct gf_metrics {
    atomic_uint_fast64_t counters[GF_SRV_C_COUNT];
    struct {
        gf_metrics_collector fn;
        void *ctx;
    } collectors[GF_METRICS_MAX_COLLECTORS];
    unsigned n_collectors;
} gf_metrics;

static inline void gf_metrics_inc(gf_metrics *m, gf_srv_counter c)
{
    atomic_fetch_add_explicit(&m->counters[c], 1, memory_order_relaxed);
}

/* Registers fn to run on every scrape, after the counters, in registration order. Call before
 * the server starts answering. Returns -1 when GF_METRICS_MAX_COLLECTORS are registered. */
int gf_metrics_add_collector(gf_metrics *m, gf_metrics_collector fn, void *ctx);

/* The whole exposition into b (caller frees b->data). */
void gf_metrics_render(gf_metrics *m, gf_mbuf *b);

#endif
