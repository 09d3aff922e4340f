/* SPDX-License-Identifier: Apache-2.0 */
/* The server's /metrics: fixed counters (one X-macro list, atomics, bumped from any thread) and
 * collectors (functions that write gauges from current state when /metrics is scraped), in the
 * Prometheus text exposition format 0.0.4. To add a counter: one line in GF_SRV_COUNTER_MAP; to
 * add state-derived metrics (issue 6: per GPU/vGPU/pool/alerts): gf_metrics_add_collector. */
#ifndef GF_SERVER_METRICS_H
#define GF_SERVER_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "gpufuse/prom.h"

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
    X(RELEASES_LEASE, "gpufuse_allocations_released_total{reason=\"lease_expired\"}", "")         \
    X(NODE_LOST, "gpufuse_node_lost_total", "Times a node missed its heartbeats and went NotReady") \
    X(HEARTBEATS, "gpufuse_node_heartbeats_total", "Heartbeats received from agents")             \
    X(USAGE_REPORTS, "gpufuse_node_usage_reports_total", "Usage reports received from agents")

typedef enum gf_srv_counter {
#define GF__SRV_COUNTER_ENUM(id, name, help) GF_SRV_C_##id,
    GF_SRV_COUNTER_MAP(GF__SRV_COUNTER_ENUM)
#undef GF__SRV_COUNTER_ENUM
    GF_SRV_C_COUNT
} gf_srv_counter;

/* The text helpers live in src/common (the agent writes the same format): these names stay for
 * the server's code. */
typedef gf_prom_buf gf_mbuf;
#define gf_mbuf_printf gf_prom_printf
#define gf_metrics_family gf_prom_family
#define gf_metrics_sample gf_prom_sample
#define gf_metrics_escape gf_prom_escape

typedef void (*gf_metrics_collector)(gf_mbuf *b, void *ctx);

#define GF_METRICS_MAX_COLLECTORS 16
#define GF_METRICS_MAX_WHY 16
#define GF_METRICS_MAX_LAT 160

typedef struct gf_metrics {
    atomic_uint_fast64_t counters[GF_SRV_C_COUNT];
    struct {
        gf_metrics_collector fn;
        void *ctx;
    } collectors[GF_METRICS_MAX_COLLECTORS];
    unsigned n_collectors;
    /* Placement refusals by the allocator's reason (gf_alloc_why), issue 6. */
    atomic_uint_fast64_t refusals[GF_METRICS_MAX_WHY];
    /* API latency: one histogram per (route template, method, code), added on first use. */
    pthread_mutex_t lat_lock;
    unsigned n_lat;
    struct gf_metrics_lat {
        char route[48];
        char method[8];
        unsigned code;
        gf_prom_hist hist;
    } lat[GF_METRICS_MAX_LAT];
} gf_metrics;

static inline void gf_metrics_inc(gf_metrics *m, gf_srv_counter c)
{
    atomic_fetch_add_explicit(&m->counters[c], 1, memory_order_relaxed);
}

/* Registers fn to run on every scrape, after the counters, in registration order. Call before
 * the server starts answering. Returns -1 when GF_METRICS_MAX_COLLECTORS are registered. */
int gf_metrics_add_collector(gf_metrics *m, gf_metrics_collector fn, void *ctx);

/* Counts one placement refused for reason why (a gf_alloc_why value; out-of-range ones are
 * counted as the last slot). */
void gf_metrics_refusal(gf_metrics *m, unsigned why);

/* Records one API request: path is turned into its route template (/api/v1/workloads/NAME ->
 * /api/v1/workloads/{name}) so that label sets stay bounded. Thread-safe. */
void gf_metrics_observe_request(gf_metrics *m, const char *method, const char *path,
                                unsigned code, double seconds);

/* The whole exposition into b (caller frees b->data). */
void gf_metrics_render(gf_metrics *m, gf_mbuf *b);

#endif
