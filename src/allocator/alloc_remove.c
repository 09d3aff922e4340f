/* SPDX-License-Identifier: Apache-2.0 */
/* Taking GPUs and nodes out of the allocator: a GPU that failed or was pulled, a node that left
 * the pool. Refused while an allocation still uses them; otherwise they leave every index. A GPU
 * still in use can be cordoned instead: out of placement, its allocations kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocator/alloc_internal.h"

/* Messages are cut to the caller's buffer on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static int rec_cmp(const void *x, const void *y)
{
    const gf_alloc__rec *const *p = x, *const *q = y;
    return strcmp((*p)->id, (*q)->id);
}

/* Does record r have a placement on GPU seq (gpu != UINT32_MAX) or on node seq? */
static int rec_uses(const gf_alloc *a, const gf_alloc__rec *r, uint32_t gpu, uint32_t node)
{
    for (uint32_t i = 0; i < r->n; i++) {
        uint32_t s = r->parts[i].gpu;
        if (gpu != UINT32_MAX ? s == gpu : a->gpus[s]->node == node) return 1;
    }
    return 0;
}

/* Writes "what is used by allocation(s) a, b, c (and N more); release them first" into err,
 * the ids in id order. */
static void busy_msg(const gf_alloc *a, uint32_t gpu, uint32_t node, const char *what, char *err,
                     size_t errlen)
{
    if (!err || !errlen) return;
    gf_alloc__rec **v = malloc((a->rec_map.n ? a->rec_map.n : 1) * sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; v && i < a->rec_map.cap; i++) {
        const gf_alloc__rec *r = a->rec_map.keys[i] ? a->rec_map.vals[i] : NULL;
        if (r && rec_uses(a, r, gpu, node)) v[n++] = a->rec_map.vals[i];
    }
    if (v) qsort(v, n, sizeof(*v), rec_cmp);
    char ids[384] = "";
    size_t len = 0, shown = 0;
    for (; shown < n; shown++) {
        size_t need = strlen(v[shown]->id) + (shown ? 2 : 0);
        if (len + need + 24 >= sizeof(ids)) break;
        len += (size_t)snprintf(ids + len, sizeof(ids) - len, "%s%s", shown ? ", " : "",
                                v[shown]->id);
    }
    char more[32] = "";
    if (shown < n) snprintf(more, sizeof(more), " (and %zu more)", n - shown);
    gf_alloc__errf(err, errlen, "%s is used by %zu allocation%s: %s%s; release %s first", what,
                   n, n == 1 ? "" : "s", ids, more, n == 1 ? "it" : "them");
    free(v);
}

/* Takes g out of the free-capacity index, least-fragmentation's state groups, special list and
 * per-node aggregates (gf_alloc__frag_gpu(-1) also re-sorts the rest of its node, whose
 * special-or-not side may change without g), its pool's and its node's lists and the uuid map, and frees it. Its slot
 * in a->gpus stays NULL: seqs are stable ids (tie-breaks, treap priorities, records), so they are
 * never reused or renumbered. g holds no allocation. */
static void gpu_drop(gf_alloc *a, gf_alloc__gpu *g)
{
    gf_alloc__pool *p = a->pools[g->pool];
    gf_alloc__node *n = a->nodes[g->node];
    if (p->frag_built) gf_alloc__frag_gpu(a, p, g, -1);
    gf_alloc__gpu_unindex(a, g);
    size_t j = 0;
    for (size_t i = 0; i < p->n_gpus; i++)
        if (p->gpus[i] != g->seq) p->gpus[j++] = p->gpus[i];
    p->n_gpus = j;
    j = 0;
    for (size_t i = 0; i < n->n_gpus; i++)
        if (n->gpus[i] != g->seq) n->gpus[j++] = n->gpus[i];
    n->n_gpus = j;
    /* the smallest compute capacity bounds percent requests; recompute it without g */
    p->min_cap_t = 0;
    for (size_t i = 0; i < p->n_gpus; i++) {
        const gf_alloc__gpu *h = a->gpus[p->gpus[i]];
        if (!p->min_cap_t || h->cap[GF_ALLOC__T] < p->min_cap_t) p->min_cap_t = h->cap[GF_ALLOC__T];
    }
    p->shape++; /* the node order is rebuilt */
    gf_alloc__map_del(&a->gpu_map, g->uuid);
    a->gpus[g->seq] = NULL;
    free(g);
}

gf_status gf_alloc_gpu_remove(gf_alloc *a, const char *uuid, char *err, size_t errlen)
{
    if (!a) return GF_EINVAL;
    gf_alloc__gpu *g = gf_alloc__map_get(&a->gpu_map, uuid);
    if (!g) {
        gf_alloc__errf(err, errlen, "no GPU '%s'", uuid ? uuid : "(null)");
        return GF_ENOENT;
    }
    if (g->n_allocs) {
        char what[GF_ALLOC_NAME_MAX * 2 + 32];
        snprintf(what, sizeof(what), "GPU %s (%s GPU %u)", g->uuid, a->nodes[g->node]->name,
                 g->index);
        busy_msg(a, g->seq, 0, what, err, errlen);
        return GF_EBUSY;
    }
    gpu_drop(a, g);
    return GF_OK;
}

gf_status gf_alloc_node_remove(gf_alloc *a, const char *node, char *err, size_t errlen)
{
    if (!a) return GF_EINVAL;
    gf_alloc__node *n = gf_alloc__map_get(&a->node_map, node);
    if (!n) {
        gf_alloc__errf(err, errlen, "no node '%s'", node ? node : "(null)");
        return GF_ENOENT;
    }
    for (size_t i = 0; i < n->n_gpus; i++)
        if (a->gpus[n->gpus[i]]->n_allocs) {
            char what[GF_ALLOC_NAME_MAX + 16];
            snprintf(what, sizeof(what), "node '%s'", n->name);
            busy_msg(a, UINT32_MAX, n->seq, what, err, errlen);
            return GF_EBUSY;
        }
    gf_alloc__pool *p = a->pools[n->pool];
    /* drop without least-fragmentation; its aggregates are per node position, rebuilt below */
    int frag = p->frag_built;
    if (frag) gf_alloc__frag_drop(p);
    while (n->n_gpus) gpu_drop(a, a->gpus[n->gpus[n->n_gpus - 1]]);
    size_t j = 0;
    for (size_t i = 0; i < p->n_nodes; i++) {
        if (p->nodes[i] == n->seq) continue;
        a->nodes[p->nodes[i]]->pool_pos = (uint32_t)j;
        p->nodes[j++] = p->nodes[i];
    }
    p->n_nodes = j;
    p->shape++;
    gf_alloc__map_del(&a->node_map, n->name);
    a->nodes[n->seq] = NULL; /* like GPUs: node seqs are never reused */
    free(n->lkeys);
    free(n->lvals);
    free(n->gpus);
    free(n);
    if (frag) gf_alloc__frag_build(a, p);
    return GF_OK;
}

gf_status gf_alloc_gpu_cordon(gf_alloc *a, const char *uuid, int on, char *err, size_t errlen)
{
    if (!a) return GF_EINVAL;
    gf_alloc__gpu *g = gf_alloc__map_get(&a->gpu_map, uuid);
    if (!g) {
        gf_alloc__errf(err, errlen, "no GPU '%s'", uuid ? uuid : "(null)");
        return GF_ENOENT;
    }
    on = on != 0;
    if (g->cordoned == on) return GF_OK;
    gf_alloc__pool *p = a->pools[g->pool];
    /* like a node going NotReady, for one GPU: out of (or back into) the index and the
     * least-fragmentation structures, which count indexed GPUs only */
    if (p->frag_built) gf_alloc__frag_gpu(a, p, g, -1);
    g->cordoned = on;
    if (on)
        gf_alloc__gpu_unindex(a, g);
    else if (a->nodes[g->node]->ready)
        gf_alloc__gpu_index(a, g);
    if (p->frag_built) gf_alloc__frag_gpu(a, p, g, +1);
    return GF_OK;
}
