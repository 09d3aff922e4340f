/* SPDX-License-Identifier: Apache-2.0 */
/* The free-capacity index: per pool, two treaps over its Ready GPUs, keyed by (free TFLOPs, seq)
 * and (free VRAM, seq), where free is what a low-QoS limit may still take (capacity x ratio -
 * sum of limits). Priorities are a hash of the GPU's seq, so the shape is deterministic. */
#include "allocator/alloc_internal.h"

/* Messages are cut to the caller's buffer on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define GPU(a, i) ((a)->gpus[(uint32_t)(i)])

static int key_lt(const gf_alloc__gpu *x, uint64_t k, uint32_t s, int t)
{
    return x->key[t] < k || (x->key[t] == k && x->seq < s);
}

/* Splits tree r into (< (k,s)) and (>= (k,s)). */
static void split(gf_alloc *a, int t, int32_t r, uint64_t k, uint32_t s, int32_t *l, int32_t *g)
{
    if (r == GF_ALLOC__NIL) {
        *l = *g = GF_ALLOC__NIL;
        return;
    }
    gf_alloc__gpu *x = GPU(a, r);
    if (key_lt(x, k, s, t)) {
        split(a, t, x->tn[t].r, k, s, &x->tn[t].r, g);
        *l = r;
    } else {
        split(a, t, x->tn[t].l, k, s, l, &x->tn[t].l);
        *g = r;
    }
}

static int32_t merge(gf_alloc *a, int t, int32_t l, int32_t r)
{
    if (l == GF_ALLOC__NIL) return r;
    if (r == GF_ALLOC__NIL) return l;
    gf_alloc__gpu *x = GPU(a, l), *y = GPU(a, r);
    if (x->prio > y->prio) {
        x->tn[t].r = merge(a, t, x->tn[t].r, r);
        return l;
    }
    y->tn[t].l = merge(a, t, l, y->tn[t].l);
    return r;
}

static int32_t insert(gf_alloc *a, int t, int32_t r, gf_alloc__gpu *g)
{
    if (r == GF_ALLOC__NIL) return (int32_t)g->seq;
    gf_alloc__gpu *x = GPU(a, r);
    if (g->prio > x->prio) {
        split(a, t, r, g->key[t], g->seq, &g->tn[t].l, &g->tn[t].r);
        return (int32_t)g->seq;
    }
    if (key_lt(g, x->key[t], x->seq, t))
        x->tn[t].l = insert(a, t, x->tn[t].l, g);
    else
        x->tn[t].r = insert(a, t, x->tn[t].r, g);
    return r;
}

static int32_t erase(gf_alloc *a, int t, int32_t r, const gf_alloc__gpu *g)
{
    if (r == GF_ALLOC__NIL) return r;
    gf_alloc__gpu *x = GPU(a, r);
    if (x == g) return merge(a, t, x->tn[t].l, x->tn[t].r);
    if (key_lt(g, x->key[t], x->seq, t))
        x->tn[t].l = erase(a, t, x->tn[t].l, g);
    else
        x->tn[t].r = erase(a, t, x->tn[t].r, g);
    return r;
}

void gf_alloc__tree_insert(gf_alloc *a, gf_alloc__pool *p, int t, gf_alloc__gpu *g)
{
    g->tn[t].l = g->tn[t].r = GF_ALLOC__NIL;
    p->root[t] = insert(a, t, p->root[t], g);
}

void gf_alloc__tree_erase(gf_alloc *a, gf_alloc__pool *p, int t, gf_alloc__gpu *g)
{
    p->root[t] = erase(a, t, p->root[t], g);
    g->tn[t].l = g->tn[t].r = GF_ALLOC__NIL;
}

gf_alloc__gpu *gf_alloc__tree_ge(const gf_alloc *a, const gf_alloc__pool *p, int t, uint64_t k,
                                 uint32_t s)
{
    gf_alloc__gpu *best = NULL;
    for (int32_t r = p->root[t]; r != GF_ALLOC__NIL;) {
        gf_alloc__gpu *x = GPU(a, r);
        if (key_lt(x, k, s, t)) {
            r = x->tn[t].r;
        } else {
            best = x;
            r = x->tn[t].l;
        }
    }
    return best;
}

gf_alloc__gpu *gf_alloc__tree_le(const gf_alloc *a, const gf_alloc__pool *p, int t, uint64_t k,
                                 uint32_t s)
{
    gf_alloc__gpu *best = NULL;
    for (int32_t r = p->root[t]; r != GF_ALLOC__NIL;) {
        gf_alloc__gpu *x = GPU(a, r);
        if (x->key[t] < k || (x->key[t] == k && x->seq <= s)) {
            best = x;
            r = x->tn[t].r;
        } else {
            r = x->tn[t].l;
        }
    }
    return best;
}

void gf_alloc__gpu_index(gf_alloc *a, gf_alloc__gpu *g)
{
    if (g->in_tree || g->cordoned) return; /* a cordoned GPU takes no placement */
    gf_alloc__pool *p = a->pools[g->pool];
    gf_alloc__tree_insert(a, p, GF_ALLOC__T, g);
    gf_alloc__tree_insert(a, p, GF_ALLOC__V, g);
    g->in_tree = 1;
}

void gf_alloc__gpu_unindex(gf_alloc *a, gf_alloc__gpu *g)
{
    if (!g->in_tree) return;
    gf_alloc__pool *p = a->pools[g->pool];
    gf_alloc__tree_erase(a, p, GF_ALLOC__T, g);
    gf_alloc__tree_erase(a, p, GF_ALLOC__V, g);
    g->in_tree = 0;
}
