/* SPDX-License-Identifier: Apache-2.0 */
/* Least-fragmentation placement after FGD (Weng et al., "Beware of Fragmentation: Scheduling
 * GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC'23): the expected
 * fragmentation of a node against the pool's workload distribution, kept as per-(node, task type)
 * aggregates so that the change one placement causes costs O(task types). Definition in
 * docs/allocator.md. */
#include <stdlib.h>
#include <string.h>

#include "allocator/alloc_internal.h"

/* Messages are cut to the caller's buffer on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

uint64_t gf_alloc__type_need(const gf_alloc__type *m, const gf_alloc__gpu *g, int d)
{
    if (d == GF_ALLOC__V) return m->v;
    if (!m->t_ppm) return m->t;
    /* exact: cap <= 1e12, ppm <= 1e6 */
    return (g->cap[GF_ALLOC__T] * m->t_ppm + GF_ALLOC__PPM - 1) / GF_ALLOC__PPM;
}

/* Task type m fits a GPU whose free keys are k (as a low-QoS request == limit). */
static int type_fits(const gf_alloc__type *m, const gf_alloc__gpu *g, const uint64_t k[2])
{
    for (int d = 0; d < 2; d++) {
        uint64_t need = gf_alloc__type_need(m, g, d);
        if (need > g->cap[d] || need > k[d]) return 0;
    }
    return 1;
}

/* Free share of the GPU in ppm: the mean, over the dimensions the workload asks for, of
 * free / (capacity x ratio). */
static int64_t share_ppm(const gf_alloc__pool *p, const gf_alloc__gpu *g, const uint64_t k[2])
{
    int64_t s = 0;
    int n = 0;
    for (int d = 0; d < 2; d++) {
        if (!p->used[d] || !g->eff[d]) continue;
        uint64_t kk = k[d] > g->eff[d] ? g->eff[d] : k[d];
        s += (int64_t)((unsigned __int128)kk * GF_ALLOC__PPM / g->eff[d]);
        n++;
    }
    return n ? s / n : 0;
}

static void used_dims(const gf_alloc__pool *p, int used[2])
{
    used[0] = used[1] = 0;
    for (size_t m = 0; m < p->n_types; m++) {
        if (p->types[m].t || p->types[m].t_ppm) used[GF_ALLOC__T] = 1;
        if (p->types[m].v) used[GF_ALLOC__V] = 1;
    }
}

void gf_alloc__frag_gpu(gf_alloc *a, gf_alloc__pool *p, gf_alloc__gpu *g, int sign)
{
    (void)a;
    size_t np = a->nodes[g->node]->pool_pos;
    uint16_t *fc = p->fitcnt + np * GF_ALLOC__MAX_TYPES;
    int64_t *nf = p->nofit + np * GF_ALLOC__MAX_TYPES;
    if (sign < 0) {
        if (!g->frag_in) return;
        p->total[np] -= g->s_ppm;
        for (size_t m = 0; m < p->n_types; m++) {
            if (g->fit[m / 64] >> (m % 64) & 1)
                fc[m]--;
            else
                nf[m] -= g->s_ppm;
        }
        g->frag_in = 0;
        return;
    }
    if (!g->in_tree || g->frag_in) return;
    g->s_ppm = share_ppm(p, g, g->key);
    memset(g->fit, 0, sizeof(g->fit));
    p->total[np] += g->s_ppm;
    for (size_t m = 0; m < p->n_types; m++) {
        if (type_fits(&p->types[m], g, g->key)) {
            g->fit[m / 64] |= 1ull << (m % 64);
            fc[m]++;
        } else {
            nf[m] += g->s_ppm;
        }
    }
    g->frag_in = 1;
}

void gf_alloc__frag_drop(gf_alloc__pool *p)
{
    free(p->fitcnt);
    free(p->nofit);
    free(p->total);
    p->fitcnt = NULL;
    p->nofit = NULL;
    p->total = NULL;
    p->frag_nodes = 0;
    p->frag_built = 0;
}

void gf_alloc__frag_build(gf_alloc *a, gf_alloc__pool *p)
{
    gf_alloc__frag_drop(p);
    size_t nn = p->n_nodes ? p->n_nodes : 1;
    p->fitcnt = calloc(nn * GF_ALLOC__MAX_TYPES, sizeof(*p->fitcnt));
    p->nofit = calloc(nn * GF_ALLOC__MAX_TYPES, sizeof(*p->nofit));
    p->total = calloc(nn, sizeof(*p->total));
    if (!p->fitcnt || !p->nofit || !p->total) {
        /* without aggregates least-fragmentation falls back to the from-scratch path */
        gf_alloc__frag_drop(p);
        return;
    }
    p->frag_nodes = nn;
    used_dims(p, p->used);
    p->frag_built = 1;
    for (size_t i = 0; i < p->n_gpus; i++) {
        gf_alloc__gpu *g = a->gpus[p->gpus[i]];
        g->frag_in = 0;
        gf_alloc__frag_gpu(a, p, g, +1);
    }
}

void gf_alloc__frag_observe(gf_alloc *a, gf_alloc__pool *p, const gf_alloc__type *m)
{
    if (p->target || p->strategy != GF_ALLOC_LEAST_FRAG) return; /* binpack/spread pay nothing */
    for (size_t i = 0; i < p->n_types; i++) {
        gf_alloc__type *t = &p->types[i];
        if (t->v == m->v && t->t == m->t && t->t_ppm == m->t_ppm && t->k == m->k) {
            t->w += 1;
            p->wsum += 1;
            return;
        }
    }
    if (p->n_types >= GF_ALLOC__MAX_TYPES) return; /* the rarest types past 256 are not tracked */
    size_t idx = p->n_types++;
    p->types[idx] = *m;
    p->types[idx].w = 1;
    p->wsum += 1;
    if (!p->frag_built) return;
    int used[2];
    used_dims(p, used);
    if (used[0] != p->used[0] || used[1] != p->used[1]) {
        gf_alloc__frag_build(a, p); /* shares change for every GPU */
        return;
    }
    for (size_t i = 0; i < p->n_gpus; i++) {
        gf_alloc__gpu *g = a->gpus[p->gpus[i]];
        if (!g->frag_in) continue;
        size_t np = a->nodes[g->node]->pool_pos;
        if (type_fits(&p->types[idx], g, g->key)) {
            g->fit[idx / 64] |= 1ull << (idx % 64);
            p->fitcnt[np * GF_ALLOC__MAX_TYPES + idx]++;
        } else {
            g->fit[idx / 64] &= ~(1ull << (idx % 64));
            p->nofit[np * GF_ALLOC__MAX_TYPES + idx] += g->s_ppm;
        }
    }
}

double gf_alloc__frag_delta1(const gf_alloc *a, const gf_alloc__pool *p, const gf_alloc__gpu *g,
                             const uint64_t nk[2])
{
    if (!p->frag_built || !g->frag_in || p->wsum <= 0) {
        uint32_t s = g->seq;
        return gf_alloc__frag_delta(a, p, a->nodes[g->node], &s, (const uint64_t(*)[2])nk, 1);
    }
    size_t np = a->nodes[g->node]->pool_pos;
    const uint16_t *fc = p->fitcnt + np * GF_ALLOC__MAX_TYPES;
    const int64_t *nf = p->nofit + np * GF_ALLOC__MAX_TYPES;
    int64_t tot = p->total[np];
    int64_t s0 = g->s_ppm, s1 = share_ppm(p, g, nk);
    int64_t tot1 = tot - s0 + s1;
    double d = 0;
    for (size_t m = 0; m < p->n_types; m++) {
        const gf_alloc__type *t = &p->types[m];
        int f0 = (int)(g->fit[m / 64] >> (m % 64) & 1);
        int f1 = type_fits(t, g, nk);
        int64_t old = fc[m] >= t->k ? nf[m] : tot;
        int64_t c1 = (int64_t)fc[m] - f0 + f1;
        int64_t nf1 = nf[m] - (f0 ? 0 : s0) + (f1 ? 0 : s1);
        int64_t now = c1 >= (int64_t)t->k ? nf1 : tot1;
        d += t->w * (double)(now - old);
    }
    return d / p->wsum;
}

/* F_n from scratch, with GPUs gs[i] seeing keys nk[i] instead of their own. */
static double node_frag(const gf_alloc *a, const gf_alloc__pool *p, const gf_alloc__node *n,
                        const uint32_t *gs, const uint64_t (*nk)[2], size_t k, int override,
                        const int used[2])
{
    gf_alloc__pool tmp_used; /* share_ppm only reads ->used */
    tmp_used.used[0] = used[0];
    tmp_used.used[1] = used[1];
    double f = 0;
    for (size_t m = 0; m < p->n_types; m++) {
        const gf_alloc__type *t = &p->types[m];
        int64_t tot = 0, nofit = 0;
        uint32_t cnt = 0;
        for (size_t i = 0; i < n->n_gpus; i++) {
            const gf_alloc__gpu *g = a->gpus[n->gpus[i]];
            if (!g->in_tree) continue;
            const uint64_t *key = g->key;
            if (override)
                for (size_t j = 0; j < k; j++)
                    if (gs[j] == g->seq) key = nk[j];
            int64_t s = share_ppm(&tmp_used, g, key);
            tot += s;
            if (type_fits(t, g, key))
                cnt++;
            else
                nofit += s;
        }
        f += t->w * (double)(cnt >= t->k ? nofit : tot);
    }
    return p->wsum > 0 ? f / p->wsum : 0;
}

double gf_alloc__frag_delta(const gf_alloc *a, const gf_alloc__pool *p, const gf_alloc__node *n,
                            const uint32_t *gs, const uint64_t (*nk)[2], size_t k)
{
    if (p->wsum <= 0) return 0;
    int used[2];
    used_dims(p, used);
    return node_frag(a, p, n, gs, nk, k, 1, used) - node_frag(a, p, n, gs, nk, k, 0, used);
}
