/* SPDX-License-Identifier: Apache-2.0 */
/* The Prometheus text exposition format (0.0.4), shared by the server's and the agent's
 * /metrics: a growing text buffer, HELP/TYPE lines, samples, label escaping, and fixed-bucket
 * histograms safe to observe from any thread. See docs/metrics.md for the metrics themselves. */
#ifndef GPUFUSE_PROM_H
#define GPUFUSE_PROM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* A growing text buffer (the exposition being written). Zero-initialize; the caller frees
 * data. */
typedef struct gf_prom_buf {
    char *data;
    size_t len, cap;
    int oom; /* set when an append failed: the scrape should answer 500 */
} gf_prom_buf;

/* Appends printf-formatted text; on allocation failure sets oom and drops the rest. */
void gf_prom_printf(gf_prom_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram). help is
 * escaped (backslash, newline) as the format requires. */
void gf_prom_family(gf_prom_buf *b, const char *name, const char *type, const char *help);

/* One sample line "name{labels} value". labels may be NULL or "" (no braces); label values in
 * it must already be escaped with gf_prom_escape. Whole numbers print without a fraction;
 * NaN and infinities as NaN, +Inf, -Inf. */
void gf_prom_sample(gf_prom_buf *b, const char *name, const char *labels, double value);

/* Escapes a label value (backslash, double quote, newline) into out, truncating to outlen
 * (never in the middle of an escape). */
void gf_prom_escape(const char *in, char *out, size_t outlen);

/* Formats value the way gf_prom_sample does ("+Inf" for an infinite bucket bound). */
void gf_prom_format_value(double value, char *out, size_t outlen);

/* A histogram with fixed upper bounds (seconds for latencies), cumulative on output. Counts
 * are atomics so observe needs no lock; sum is kept in nanounits to stay an integer. */
#define GF_PROM_HIST_MAX_BUCKETS 16
typedef struct gf_prom_hist {
    const double *bounds;     /* ascending upper bounds, without +Inf */
    unsigned n_bounds;
    atomic_uint_fast64_t bucket[GF_PROM_HIST_MAX_BUCKETS + 1]; /* non-cumulative; last = +Inf */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_nano;                             /* sum of values x 1e9 */
} gf_prom_hist;

/* Default latency buckets (seconds): 0.5 ms .. 10 s. */
extern const double gf_prom_latency_bounds[];
extern const unsigned gf_prom_latency_n_bounds;

/* Sets up h with bounds (static storage, at most GF_PROM_HIST_MAX_BUCKETS). */
void gf_prom_hist_init(gf_prom_hist *h, const double *bounds, unsigned n_bounds);
/* Adds one observation (value >= 0). Thread-safe. */
void gf_prom_hist_observe(gf_prom_hist *h, double value);
/* Writes name_bucket{labels,le=...}, name_sum{labels} and name_count{labels}; the family's
 * HELP/TYPE lines are the caller's (gf_prom_family with "histogram"). */
void gf_prom_hist_write(gf_prom_buf *b, const char *name, const char *labels,
                        const gf_prom_hist *h);

#endif
