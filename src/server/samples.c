/* SPDX-License-Identifier: Apache-2.0 */
/* Recent usage in memory: a bounded ring of (time, utilization, VRAM used) per GPU and per
 * allocation, filled by every usage report, for the dashboard's charts. Nothing here is
 * durable: a restarted server starts with empty charts. Not thread-safe (under the server lock). */
#include <stdlib.h>
#include <string.h>

#include "server/observe.h"

#define KEY_MAX 160
#define BUCKETS 1024

typedef struct series {
    char key[KEY_MAX];
    int used;
    int next;             /* next series in the bucket's chain, -1 = end */
    int64_t touched_ms;   /* last report: the least recent series is evicted first */
    int64_t last_t_ms;    /* previous busy report (allocations) */
    uint64_t last_busy_ns;
    int primed;
    unsigned head, n;     /* ring: n samples ending before head */
    gf_sample ring[GF_SAMPLES_PER_SERIES];
} series;

struct gf_samples {
    int buckets[BUCKETS];
    series *all;          /* GF_SAMPLES_MAX_SERIES, allocated lazily by count */
    unsigned n;
};

static unsigned hash(const char *k)
{
    unsigned h = 2166136261u;
    for (; *k; k++) h = (h ^ (unsigned char)*k) * 16777619u;
    return h % BUCKETS;
}

gf_samples *gf_samples_new(void)
{
    gf_samples *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->all = calloc(GF_SAMPLES_MAX_SERIES, sizeof *s->all);
    if (!s->all) {
        free(s);
        return NULL;
    }
    for (unsigned i = 0; i < BUCKETS; i++) s->buckets[i] = -1;
    return s;
}

void gf_samples_free(gf_samples *s)
{
    if (!s) return;
    free(s->all);
    free(s);
}

static series *find(const gf_samples *s, const char *key)
{
    for (int i = s->buckets[hash(key)]; i >= 0; i = s->all[i].next)
        if (!strcmp(s->all[i].key, key)) return &s->all[i];
    return NULL;
}

static void unlink_series(gf_samples *s, int idx)
{
    int *p = &s->buckets[hash(s->all[idx].key)];
    while (*p >= 0 && *p != idx) p = &s->all[*p].next;
    if (*p == idx) *p = s->all[idx].next;
}

/* The series for key, made (evicting the least recently reported one when full). */
static series *get(gf_samples *s, const char *key, int64_t now)
{
    if (strlen(key) >= KEY_MAX) return NULL;
    series *x = find(s, key);
    if (x) return x;
    int idx;
    if (s->n < GF_SAMPLES_MAX_SERIES) {
        idx = (int)s->n++;
    } else {
        idx = 0;
        for (unsigned i = 1; i < s->n; i++)
            if (s->all[i].touched_ms < s->all[idx].touched_ms) idx = (int)i;
        unlink_series(s, idx);
    }
    x = &s->all[idx];
    memset(x, 0, offsetof(series, ring));
    strcpy(x->key, key);
    x->used = 1;
    x->touched_ms = now;
    unsigned b = hash(key);
    x->next = s->buckets[b];
    s->buckets[b] = idx;
    return x;
}

static void push(series *x, int64_t t, double util, uint64_t vram)
{
    x->ring[x->head] = (gf_sample){.t_ms = t, .utilization = util, .vram_used = vram};
    x->head = (x->head + 1) % GF_SAMPLES_PER_SERIES;
    if (x->n < GF_SAMPLES_PER_SERIES) x->n++;
    x->touched_ms = t;
}

void gf_samples_add(gf_samples *s, const char *key, int64_t t_ms, double utilization,
                    uint64_t vram_used)
{
    series *x = s ? get(s, key, t_ms) : NULL;
    if (!x) return;
    if (utilization < 0) utilization = 0;
    if (utilization > 100) utilization = 100;
    push(x, t_ms, utilization, vram_used);
}

void gf_samples_add_busy(gf_samples *s, const char *key, int64_t t_ms, uint64_t busy_ns,
                         uint64_t vram_used)
{
    series *x = s ? get(s, key, t_ms) : NULL;
    if (!x) return;
    int64_t dt = t_ms - x->last_t_ms;
    if (x->primed && dt > 0) {
        /* A counter that went back (the vGPU was recreated) counts from zero. */
        uint64_t d = busy_ns >= x->last_busy_ns ? busy_ns - x->last_busy_ns : busy_ns;
        double util = (double)d / ((double)dt * 1e6) * 100.0;
        push(x, t_ms, util > 100 ? 100 : util, vram_used);
    }
    x->touched_ms = t_ms;
    x->primed = 1;
    x->last_t_ms = t_ms;
    x->last_busy_ns = busy_ns;
}

size_t gf_samples_get(const gf_samples *s, const char *key, int64_t since_ms, gf_sample *out,
                      size_t max)
{
    const series *x = s ? find(s, key) : NULL;
    if (!x) return 0;
    size_t k = 0;
    unsigned start = (x->head + GF_SAMPLES_PER_SERIES - x->n) % GF_SAMPLES_PER_SERIES;
    for (unsigned i = 0; i < x->n && k < max; i++) {
        const gf_sample *p = &x->ring[(start + i) % GF_SAMPLES_PER_SERIES];
        if (p->t_ms >= since_ms) out[k++] = *p;
    }
    return k;
}
