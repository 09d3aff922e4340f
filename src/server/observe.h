/* SPDX-License-Identifier: Apache-2.0 */
/* Seeing and paying for the pool (issue 6): recent usage samples per GPU and per allocation
 * (samples.c, in memory), chargeback — prices, usage intervals, costs (costs.c, in the store) —
 * and the dashboard's static files embedded in the binary (web.c). The server's files call
 * only what is declared here; docs/api.md, docs/costs.md and docs/dashboard.md describe it. */
#ifndef GF_SERVER_OBSERVE_H
#define GF_SERVER_OBSERVE_H

#include <stddef.h>
#include <stdint.h>

#include "gpufuse/status.h"
#include "server/api_request.h"
#include "server/server.h"

/* ---- samples.c: bounded rings of (time, utilization, VRAM used) ----------------------------- */

#define GF_SAMPLES_PER_SERIES 720 /* points kept per GPU / allocation (1 h at a 5 s interval) */
#define GF_SAMPLES_MAX_SERIES 4096 /* series kept; the least recently reported one goes first */

typedef struct gf_sample {
    int64_t t_ms;        /* server time of the report */
    double utilization;  /* percent of the GPU, 0..100 */
    uint64_t vram_used;  /* bytes */
} gf_sample;

typedef struct gf_samples gf_samples;

/* A sample store (owned; gf_samples_free). NULL when out of memory. */
gf_samples *gf_samples_new(void);
void gf_samples_free(gf_samples *s);

/* Appends a GPU sample for key (the GPU's uuid). */
void gf_samples_add(gf_samples *s, const char *key, int64_t t_ms, double utilization,
                    uint64_t vram_used);

/* Appends an allocation sample from its cumulative busy time: utilization is the busy time
 * since the previous report over the wall time since then (the first report only primes). */
void gf_samples_add_busy(gf_samples *s, const char *key, int64_t t_ms, uint64_t busy_ns,
                         uint64_t vram_used);

/* Copies up to max of key's samples with t_ms >= since_ms, oldest first, into out; returns
 * how many. 0 for an unknown key. */
size_t gf_samples_get(const gf_samples *s, const char *key, int64_t since_ms, gf_sample *out,
                      size_t max);

/* ---- costs.c: chargeback --------------------------------------------------------------------- */

/* What a price is (per pool and QoS). Money is in whatever currency the operator prices in. */
typedef struct gf_price {
    double tflop_hour;   /* per FP16 TFLOP reserved for one hour */
    double gib_hour;     /* per GiB of VRAM reserved for one hour */
    double burst_ratio;  /* burst (use above the request) costs this many times the price */
} gf_price;

/* One allocation's life and usage, as the cost calculation sees it (times in ms). */
typedef struct gf_cost_usage {
    int64_t start_ms, end_ms;
    double tflops_used;   /* average FP16 TFLOPs used over the interval */
    double vram_used;     /* bytes used over the interval */
} gf_cost_usage;

typedef struct gf_cost_alloc {
    int64_t start_ms, end_ms;     /* end_ms = now while it lives */
    double tflops_request;        /* per GPU, as admitted */
    double vram_request;          /* bytes */
    const gf_cost_usage *usage;   /* sorted, non-overlapping */
    size_t n_usage;
} gf_cost_alloc;

/* Quantities (TFLOP-hours, GiB-hours) and money of one allocation over a window. */
typedef struct gf_cost_sum {
    double reserved_tflop_h, reserved_gib_h; /* request x time */
    double used_tflop_h, used_gib_h;         /* usage within the request */
    double burst_tflop_h, burst_gib_h;       /* usage above the request */
    double reserved_cost, burst_cost, idle_cost; /* idle = reserved but unused, priced */
} gf_cost_sum;

/* Adds allocation a's quantities and cost over [from_ms, to_ms) at price p into *sum. Usage
 * outside the reservation's life or the window counts for nothing; time without a usage
 * report counts as unused. Pure: the unit tests call it with made-up numbers. */
void gf_cost_add(const gf_cost_alloc *a, int64_t from_ms, int64_t to_ms, const gf_price *p,
                 gf_cost_sum *sum);

/* Money rounded to the cent, as an integer number of cents. */
int64_t gf_cost_cents(double money);

/* Parses a time for ?from= / ?to= and `gpufuse cost`: milliseconds since the epoch, RFC 3339
 * UTC ("2024-05-01T00:00:00Z", "2024-05-01"), "now", or "-DURATION" before now ("-24h").
 * GF_EINVAL with a message naming what. */
gf_status gf_cost_parse_time(const char *what, const char *text, int64_t now_ms, int64_t *out,
                             char *err, size_t errlen);

/* ---- the server's hooks ---------------------------------------------------------------------- */

/* Creates the chargeback tables and triggers and the sample store (gf_server_new). */
gf_status gf_srv__obs_init(gf_server *srv, char *err, size_t errlen);
void gf_srv__obs_free(gf_server *srv);

/* Called inside the usage report's transaction (routes.c apply_usage): records samples and
 * the cost intervals of node's allocations. */
gf_status gf_srv__obs_usage(gf_server *srv, const char *node, const gf_api_usage *u,
                            int64_t now_ms);

/* The routes of issue 6 under /api/v1 (admin token): GET /gpus/UUID/samples,
 * GET /allocations/ID/samples, GET|PUT /pools/NAME/prices, GET /costs. Returns 1 when it
 * answered. Under the server lock. */
int gf_srv__obs_route(gf_server *srv, const gf_srv_req *req, unsigned n, char segs[][160],
                      gf_srv_resp *resp);

/* Serves the dashboard's embedded files for GET / and GET /FILE (no token: the page asks for
 * one); returns 1 when it answered. */
int gf_srv__web_serve(gf_server *srv, const gf_srv_req *req, gf_srv_resp *resp);

/* The route helpers of costs.c and samples.c (observe.c routes to them). */
void gf_srv__samples_route(gf_server *srv, const char *kind, const char *id,
                           const gf_srv_req *req, gf_srv_resp *resp);
void gf_srv__prices_get(gf_server *srv, const char *pool, gf_srv_resp *resp);
void gf_srv__prices_put(gf_server *srv, const char *pool, const gf_srv_req *req,
                        gf_srv_resp *resp);
void gf_srv__costs_get(gf_server *srv, const gf_srv_req *req, gf_srv_resp *resp);
gf_status gf_srv__costs_init(gf_server *srv, char *err, size_t errlen);
gf_status gf_srv__costs_usage(gf_server *srv, const char *node, const gf_api_usage *u,
                              int64_t now_ms);

/* Sets resp to the JSON value v (stolen), reals with 12 significant digits. */
void gf_srv__obs_json(gf_srv_resp *resp, unsigned status, struct json_t *v);

#endif
