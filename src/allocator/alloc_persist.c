/* SPDX-License-Identifier: Apache-2.0 */
/* The allocator's allocation records: release, node loss, enumeration in id order, restore of
 * persisted allocations without placing them again, and a pool's target workload. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocator/alloc_internal.h"

/* Messages are cut to the caller's buffer on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static void rec_uncharge(gf_alloc *a, gf_alloc__rec *r)
{
    int hi = r->qos >= GF_ALLOC_QOS_HIGH;
    for (uint32_t i = 0; i < r->n; i++)
        gf_alloc__charge(a, a->gpus[r->parts[i].gpu], -1, r->parts[i].req, r->parts[i].lim, hi);
}

gf_status gf_alloc_release(gf_alloc *a, const char *id)
{
    if (!a || !id) return GF_EINVAL;
    gf_alloc__rec *r = gf_alloc__map_get(&a->rec_map, id);
    if (!r) return GF_ENOENT;
    rec_uncharge(a, r);
    gf_alloc__map_del(&a->rec_map, r->id);
    free(r);
    return GF_OK;
}

size_t gf_alloc_count(const gf_alloc *a)
{
    return a ? a->rec_map.n : 0;
}

static int rec_cmp(const void *x, const void *y)
{
    const gf_alloc__rec *const *p = x, *const *q = y;
    return strcmp((*p)->id, (*q)->id);
}

/* Records, sorted by id; *n gets the count. Caller frees. NULL with *n == 0 when none. */
static gf_alloc__rec **sorted(const gf_alloc *a, size_t *n)
{
    *n = 0;
    if (!a->rec_map.n) return NULL;
    gf_alloc__rec **v = malloc(a->rec_map.n * sizeof(*v));
    if (!v) return NULL;
    for (size_t i = 0; i < a->rec_map.cap; i++)
        if (a->rec_map.keys[i]) v[(*n)++] = a->rec_map.vals[i];
    qsort(v, *n, sizeof(*v), rec_cmp);
    return v;
}

static int on_node(const gf_alloc *a, const gf_alloc__rec *r, uint32_t node)
{
    for (uint32_t i = 0; i < r->n; i++)
        if (a->gpus[r->parts[i].gpu]->node == node) return 1;
    return 0;
}

gf_status gf_alloc_node_lost(gf_alloc *a, const char *node, void (*fn)(const char *, void *),
                             void *ctx, size_t *n_out)
{
    if (n_out) *n_out = 0;
    if (!a) return GF_EINVAL;
    gf_alloc__node *nd = gf_alloc__map_get(&a->node_map, node);
    if (!nd) return GF_ENOENT;
    gf_status st = gf_alloc_node_set_ready(a, node, 0, NULL, 0);
    if (st != GF_OK) return st;
    size_t n;
    gf_alloc__rec **v = sorted(a, &n);
    if (n && !v) return GF_ENOMEM;
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        if (!on_node(a, v[i], nd->seq)) continue;
        v[i]->lost = 1;
        c++;
        if (fn) fn(v[i]->id, ctx);
    }
    free(v);
    if (n_out) *n_out = c;
    return GF_OK;
}

gf_status gf_alloc_node_release(gf_alloc *a, const char *node, void (*fn)(const char *, void *),
                                void *ctx, size_t *n_out)
{
    if (n_out) *n_out = 0;
    if (!a) return GF_EINVAL;
    gf_alloc__node *nd = gf_alloc__map_get(&a->node_map, node);
    if (!nd) return GF_ENOENT;
    size_t n;
    gf_alloc__rec **v = sorted(a, &n);
    if (n && !v) return GF_ENOMEM;
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        if (!on_node(a, v[i], nd->seq)) continue;
        if (fn) fn(v[i]->id, ctx);
        rec_uncharge(a, v[i]);
        gf_alloc__map_del(&a->rec_map, v[i]->id);
        free(v[i]);
        c++;
    }
    free(v);
    if (n_out) *n_out = c;
    return GF_OK;
}

size_t gf_alloc_foreach(const gf_alloc *a, int (*fn)(const gf_alloc_info *, void *), void *ctx)
{
    if (!a || !fn) return 0;
    size_t n;
    gf_alloc__rec **v = sorted(a, &n);
    if (n && !v) return 0;
    gf_alloc_placement *pl = malloc(GF_ALLOC_MAX_GPUS * sizeof(*pl));
    size_t visited = 0;
    for (size_t i = 0; pl && i < n; i++) {
        const gf_alloc__rec *r = v[i];
        for (uint32_t j = 0; j < r->n; j++) {
            const gf_alloc__gpu *g = a->gpus[r->parts[j].gpu];
            memset(&pl[j], 0, sizeof(pl[j]));
            snprintf(pl[j].node, sizeof(pl[j].node), "%s", a->nodes[g->node]->name);
            snprintf(pl[j].gpu_uuid, sizeof(pl[j].gpu_uuid), "%s", g->uuid);
            pl[j].gpu_index = g->index;
            pl[j].tflops_request = (double)r->parts[j].req[GF_ALLOC__T] / GF_ALLOC__UT;
            pl[j].tflops_limit = (double)r->parts[j].lim[GF_ALLOC__T] / GF_ALLOC__UT;
            pl[j].vram_request = r->parts[j].req[GF_ALLOC__V];
            pl[j].vram_limit = r->parts[j].lim[GF_ALLOC__V];
        }
        gf_alloc_info info = {r->id, a->pools[r->pool]->name, r->qos, r->lost, r->n, pl};
        visited++;
        if (fn(&info, ctx)) break;
    }
    free(pl);
    free(v);
    return visited;
}

static int tf_ok(double x)
{
    return isfinite(x) && x >= 0 && x <= GF_ALLOC__MAX_TFLOPS;
}

gf_status gf_alloc_restore(gf_alloc *a, const char *id, const char *pool, gf_alloc_qos qos,
                           int lost, const gf_alloc_placement *pl, uint32_t n, char *err,
                           size_t errlen)
{
    if (!a) return GF_EINVAL;
    if (!gf_alloc__name_ok(id)) {
        gf_alloc__errf(err, errlen, "allocation id: must be 1..%d printable bytes",
                       GF_ALLOC_NAME_MAX - 1);
        return GF_EINVAL;
    }
    if (gf_alloc__map_get(&a->rec_map, id)) {
        gf_alloc__errf(err, errlen, "allocation '%s' already exists", id);
        return GF_EEXIST;
    }
    gf_alloc__pool *p = gf_alloc__pool_get(a, pool);
    if (!p) {
        gf_alloc__errf(err, errlen, "allocation '%s': no pool '%s'; restore the inventory first",
                       id, pool && *pool ? pool : "default");
        return GF_ENOENT;
    }
    if (!gf_alloc_qos_name(qos) || !n || n > GF_ALLOC_MAX_GPUS || !pl) {
        gf_alloc__errf(err, errlen, "allocation '%s': qos %d, %u placements: need a known QoS "
                       "and 1..%d placements", id, (int)qos, n, GF_ALLOC_MAX_GPUS);
        return GF_EINVAL;
    }
    gf_alloc__rec *r = malloc(sizeof(*r) + n * sizeof(r->parts[0]));
    if (!r) return GF_ENOMEM;
    gf_status st = GF_EINVAL;
    for (uint32_t i = 0; i < n; i++) {
        const gf_alloc__gpu *g = gf_alloc__map_get(&a->gpu_map, pl[i].gpu_uuid);
        if (!g || a->pools[g->pool] != p) {
            gf_alloc__errf(err, errlen, "allocation '%s': no GPU %s in pool '%s'; restore the "
                           "inventory first", id, pl[i].gpu_uuid, p->name);
            st = GF_ENOENT;
            goto fail;
        }
        for (uint32_t j = 0; j < i; j++)
            if (r->parts[j].gpu == g->seq) {
                gf_alloc__errf(err, errlen, "allocation '%s': GPU %s appears twice", id, g->uuid);
                goto fail;
            }
        if (!tf_ok(pl[i].tflops_request) || !tf_ok(pl[i].tflops_limit) ||
            pl[i].tflops_limit < pl[i].tflops_request || pl[i].vram_limit < pl[i].vram_request ||
            pl[i].vram_limit > GF_ALLOC__MAX_VRAM) {
            gf_alloc__errf(err, errlen, "allocation '%s' on GPU %s: TFLOPs %g/%g, VRAM %llu/%llu: "
                           "need finite values >= 0 with limit >= request", id, g->uuid,
                           pl[i].tflops_request, pl[i].tflops_limit,
                           (unsigned long long)pl[i].vram_request,
                           (unsigned long long)pl[i].vram_limit);
            goto fail;
        }
        r->parts[i].gpu = g->seq;
        /* what place() reported was an exact multiple of 1e-6: round back to it */
        r->parts[i].req[GF_ALLOC__T] = (uint64_t)llround(pl[i].tflops_request * GF_ALLOC__UT);
        r->parts[i].lim[GF_ALLOC__T] = (uint64_t)llround(pl[i].tflops_limit * GF_ALLOC__UT);
        r->parts[i].req[GF_ALLOC__V] = pl[i].vram_request;
        r->parts[i].lim[GF_ALLOC__V] = pl[i].vram_limit;
    }
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->pool = a->gpus[r->parts[0].gpu]->pool;
    r->qos = qos;
    r->lost = lost != 0;
    r->n = n;
    if (gf_alloc__map_put(&a->rec_map, r->id, r)) {
        st = GF_ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++)
        gf_alloc__charge(a, a->gpus[r->parts[i].gpu], +1, r->parts[i].req, r->parts[i].lim,
                         qos >= GF_ALLOC_QOS_HIGH);
    return GF_OK;
fail:
    free(r);
    return st;
}

gf_status gf_alloc_pool_set_workload(gf_alloc *a, const char *pool, const gf_alloc_task_type *types,
                                     size_t n, char *err, size_t errlen)
{
    if (!a) return GF_EINVAL;
    gf_alloc__pool *p = gf_alloc__pool_get(a, pool);
    if (!p) {
        gf_alloc__errf(err, errlen, "no pool '%s'", pool && *pool ? pool : "default");
        return GF_ENOENT;
    }
    if (n > GF_ALLOC__MAX_TYPES) {
        gf_alloc__errf(err, errlen, "%zu task types: at most %d", n, GF_ALLOC__MAX_TYPES);
        return GF_ERANGE;
    }
    if (n && !types) return GF_EINVAL;
    for (size_t i = 0; i < n; i++) {
        const gf_alloc_task_type *t = &types[i];
        if (!tf_ok(t->tflops) || !isfinite(t->percent) || t->percent < 0 || t->percent > 100 ||
            (t->tflops > 0 && t->percent > 0) || t->vram > GF_ALLOC__MAX_VRAM ||
            !(t->tflops > 0 || t->percent > 0 || t->vram) || !t->gpu_count ||
            t->gpu_count > GF_ALLOC_MAX_GPUS || !isfinite(t->weight) || !(t->weight > 0)) {
            gf_alloc__errf(err, errlen, "task type %zu: tflops %g, percent %g, vram %llu, "
                           "gpu_count %u, weight %g: give TFLOPs or percent (not both) and/or "
                           "VRAM, 1..%d GPUs and a weight > 0", i, t->tflops, t->percent,
                           (unsigned long long)t->vram, t->gpu_count, t->weight,
                           GF_ALLOC_MAX_GPUS);
            return GF_EINVAL;
        }
    }
    p->n_types = 0;
    p->wsum = 0;
    p->target = n > 0;
    for (size_t i = 0; i < n; i++) {
        gf_alloc__type *t = &p->types[p->n_types++];
        t->v = types[i].vram;
        t->t = types[i].percent > 0 ? 0 : (uint64_t)ceil(types[i].tflops * GF_ALLOC__UT - 1e-6);
        t->t_ppm = types[i].percent > 0 ? (uint32_t)llround(types[i].percent * 10000.0) : 0;
        t->k = types[i].gpu_count;
        t->w = types[i].weight;
        p->wsum += t->w;
    }
    if (p->frag_built) gf_alloc__frag_build(a, p);
    return GF_OK;
}
