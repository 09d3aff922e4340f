/* SPDX-License-Identifier: Apache-2.0 */
/* The free-capacity index: per pool, two treaps over its Ready GPUs, keyed by (free TFLOPs, seq)
 * and (free VRAM, seq), where free is what a low-QoS limit may still take (capacity x ratio -
 * sum of limits). Priorities are a hash of the GPU's seq, so the shape is deterministic. */
#include <stdlib.h>

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

/* ---- the node order (local multi-GPU binpack and spread) ------------------------------------ */

/* Binpack takes the node with the least free capacity (the sum of its GPUs' keys in the driving
 * dimension) among those with k GPUs that fit, spread the one with the most, ties to the lower
 * position in the pool. Nodes sorted by (ksum, pool_pos) let both stop at the first node that
 * qualifies. A placement or release changes one node's sum: the node is only marked (a flag
 * and a list entry, nothing else on the hot path) and moved to its place when the next local
 * multi-GPU request syncs the order. */

static int nless(const gf_alloc__node *x, const gf_alloc__node *y, int t)
{
    if (x->ksum[t] != y->ksum[t]) return x->ksum[t] < y->ksum[t];
    return x->pool_pos < y->pool_pos;
}

static void node_sum(const gf_alloc *a, gf_alloc__node *n)
{
    n->ksum[0] = n->ksum[1] = 0;
    for (size_t i = 0; i < n->n_gpus; i++)
        for (int t = 0; t < 2; t++) n->ksum[t] += a->gpus[n->gpus[i]]->key[t];
}

void gf_alloc__node_touch(gf_alloc *a, const gf_alloc__gpu *g)
{
    gf_alloc__pool *p = a->pools[g->pool];
    gf_alloc__node *n = a->nodes[g->node];
    if (p->nord_shape != p->shape + 1 || n->ndirty) return; /* no order, or marked already */
    n->ndirty = 1;
    p->ndirty[p->n_ndirty++] = n->seq; /* room for every node: each is listed once */
}

void gf_alloc__nord_free(gf_alloc__pool *p)
{
    free(p->nord[0]);
    free(p->nord[1]);
    free(p->ndirty);
    p->nord[0] = p->nord[1] = p->ndirty = NULL;
    p->n_nord = p->n_ndirty = 0;
    p->nord_shape = 0;
}

static const gf_alloc *nsort_a; /* qsort has no context argument; the allocator is not shared */
static int nsort_t;
static int nsort_cmp(const void *x, const void *y)
{
    const gf_alloc__node *u = nsort_a->nodes[*(const uint32_t *)x];
    const gf_alloc__node *v = nsort_a->nodes[*(const uint32_t *)y];
    return nless(u, v, nsort_t) ? -1 : nless(v, u, nsort_t) ? 1 : 0;
}

static int nord_build(gf_alloc *a, gf_alloc__pool *p)
{
    gf_alloc__nord_free(p);
    size_t n = p->n_nodes ? p->n_nodes : 1;
    p->nord[0] = malloc(n * sizeof(uint32_t));
    p->nord[1] = malloc(n * sizeof(uint32_t));
    p->ndirty = malloc(n * sizeof(uint32_t));
    if (!p->nord[0] || !p->nord[1] || !p->ndirty) {
        gf_alloc__nord_free(p);
        return -1;
    }
    for (size_t i = 0; i < p->n_nodes; i++) {
        gf_alloc__node *nd = a->nodes[p->nodes[i]];
        node_sum(a, nd);
        nd->ndirty = 0;
        p->nord[0][i] = p->nord[1][i] = nd->seq;
    }
    p->n_nord = p->n_nodes;
    for (int t = 0; t < 2; t++) {
        nsort_a = a;
        nsort_t = t;
        qsort(p->nord[t], p->n_nord, sizeof(uint32_t), nsort_cmp);
        for (size_t i = 0; i < p->n_nord; i++) a->nodes[p->nord[t][i]]->nrank[t] = (uint32_t)i;
    }
    p->nord_shape = p->shape + 1;
    return 0;
}

/* Moves node n (its ksum changed) to its place in nord[t], shifting the nodes in between. */
static void nord_move(gf_alloc *a, gf_alloc__pool *p, gf_alloc__node *n, int t)
{
    uint32_t *o = p->nord[t], i = n->nrank[t];
    while (i > 0 && nless(n, a->nodes[o[i - 1]], t)) {
        o[i] = o[i - 1];
        a->nodes[o[i]]->nrank[t] = i;
        i--;
    }
    while (i + 1 < p->n_nord && nless(a->nodes[o[i + 1]], n, t)) {
        o[i] = o[i + 1];
        a->nodes[o[i]]->nrank[t] = i;
        i++;
    }
    o[i] = n->seq;
    n->nrank[t] = i;
}

int gf_alloc__nord_sync(gf_alloc *a, gf_alloc__pool *p)
{
    /* many moved nodes: a sort is cheaper than moving each */
    if (p->nord_shape != p->shape + 1 || p->n_ndirty > p->n_nord / 8 + 1)
        return nord_build(a, p);
    for (size_t i = 0; i < p->n_ndirty; i++) {
        gf_alloc__node *n = a->nodes[p->ndirty[i]];
        n->ndirty = 0;
        node_sum(a, n);
        nord_move(a, p, n, 0);
        nord_move(a, p, n, 1);
    }
    p->n_ndirty = 0;
    return 0;
}
