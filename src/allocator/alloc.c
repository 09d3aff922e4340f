/* SPDX-License-Identifier: Apache-2.0 */
/* The allocator's inventory: lifetime, pools, nodes, GPUs, the name maps, and charging a
 * placement to a GPU (which keeps the free-capacity index and the fragmentation aggregates). */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "allocator/alloc_internal.h"

/* Messages are cut to the caller's buffer on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include "gpufuse/gpu_models.h"

void gf_alloc__errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int gf_alloc__name_ok(const char *s)
{
    if (!s || !*s) return 0;
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f) return 0;
    return n < GF_ALLOC_NAME_MAX;
}

/* ---- map ---------------------------------------------------------------------------------- */

static uint64_t map_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void *gf_alloc__map_get(const gf_alloc__map *m, const char *key)
{
    if (!m->cap || !key) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = map_hash(key) & mask;; i = (i + 1) & mask) {
        if (!m->keys[i]) return NULL;
        if (!strcmp(m->keys[i], key)) return m->vals[i];
    }
}

static int map_grow(gf_alloc__map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    const char **k = calloc(ncap, sizeof(*k));
    void **v = calloc(ncap, sizeof(*v));
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = map_hash(m->keys[i]) & (ncap - 1);
        while (k[j]) j = (j + 1) & (ncap - 1);
        k[j] = m->keys[i];
        v[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = k;
    m->vals = v;
    m->cap = ncap;
    return 0;
}

int gf_alloc__map_put(gf_alloc__map *m, const char *key, void *val)
{
    if ((m->n + 1) * 4 > m->cap * 3 && map_grow(m)) return -1;
    size_t mask = m->cap - 1, i = map_hash(key) & mask;
    while (m->keys[i] && strcmp(m->keys[i], key)) i = (i + 1) & mask;
    if (!m->keys[i]) m->n++;
    m->keys[i] = key;
    m->vals[i] = val;
    return 0;
}

void gf_alloc__map_del(gf_alloc__map *m, const char *key)
{
    if (!m->cap) return;
    size_t mask = m->cap - 1, i = map_hash(key) & mask;
    while (m->keys[i] && strcmp(m->keys[i], key)) i = (i + 1) & mask;
    if (!m->keys[i]) return;
    m->keys[i] = NULL;
    m->n--;
    /* backward shift: re-place the rest of the cluster so lookups never stop early */
    for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
        const char *k = m->keys[j];
        void *v = m->vals[j];
        m->keys[j] = NULL;
        size_t h = map_hash(k) & mask;
        while (m->keys[h]) h = (h + 1) & mask;
        m->keys[h] = k;
        m->vals[h] = v;
    }
}

void gf_alloc__map_free(gf_alloc__map *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* ---- helpers ------------------------------------------------------------------------------ */

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need) ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p) return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

void gf_alloc__canon_model(const char *name, char *out)
{
    const gf_gpu_model *m = gf_gpu_model_find(name);
    snprintf(out, GF_ALLOC_NAME_MAX, "%s", m ? m->key : name);
}

int gf_alloc__model_lookup(const gf_alloc *a, const char *canon)
{
    for (size_t i = 0; i < a->n_models; i++)
        if (!strcasecmp(a->models[i], canon)) return (int)i;
    return -1;
}

static int model_intern(gf_alloc *a, const char *canon)
{
    int id = gf_alloc__model_lookup(a, canon);
    if (id >= 0) return id;
    if (grow((void **)&a->models, &a->cap_models, a->n_models + 1, sizeof(*a->models))) return -1;
    snprintf(a->models[a->n_models], GF_ALLOC_NAME_MAX, "%s", canon);
    return (int)a->n_models++;
}

gf_alloc__pool *gf_alloc__pool_get(const gf_alloc *a, const char *name)
{
    return gf_alloc__map_get(&a->pool_map, (name && *name) ? name : "default");
}

void gf_alloc__fmt_tflops(uint64_t ut, char *buf, size_t len)
{
    snprintf(buf, len, "%llu.%06llu", (unsigned long long)(ut / 1000000u),
             (unsigned long long)(ut % 1000000u));
    char *dot = strchr(buf, '.');
    char *e = buf + strlen(buf) - 1;
    while (e > dot && *e == '0') *e-- = '\0';
    if (e == dot) *e = '\0';
}

/* ---- lifetime ----------------------------------------------------------------------------- */

gf_status gf_alloc_new(gf_alloc **out)
{
    if (!out) return GF_EINVAL;
    *out = calloc(1, sizeof(**out));
    return *out ? GF_OK : GF_ENOMEM;
}

void gf_alloc_free(gf_alloc *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->rec_map.cap; i++)
        if (a->rec_map.keys[i]) free(a->rec_map.vals[i]);
    for (size_t i = 0; i < a->n_pools; i++) {
        gf_alloc__frag_drop(a->pools[i]);
        gf_alloc__nord_free(a->pools[i]);
        free(a->pools[i]->gpus);
        free(a->pools[i]->nodes);
        free(a->pools[i]);
    }
    for (size_t i = 0; i < a->n_nodes; i++) {
        if (!a->nodes[i]) continue; /* removed */
        free(a->nodes[i]->lkeys);
        free(a->nodes[i]->lvals);
        free(a->nodes[i]->gpus);
        free(a->nodes[i]);
    }
    for (size_t i = 0; i < a->n_gpus; i++) free(a->gpus[i]);
    free(a->pools);
    free(a->nodes);
    free(a->gpus);
    free(a->models);
    gf_alloc__map_free(&a->pool_map);
    gf_alloc__map_free(&a->node_map);
    gf_alloc__map_free(&a->gpu_map);
    gf_alloc__map_free(&a->rec_map);
    free(a);
}

/* ---- pools -------------------------------------------------------------------------------- */

static int ratio_ok(double r)
{
    return r == 0 || (isfinite(r) && r >= 1.0 && r <= GF_ALLOC_MAX_RATIO);
}

static uint64_t eff_of(uint64_t cap, double ratio)
{
    return ratio <= 1.0 ? cap : (uint64_t)floor((double)cap * ratio);
}

static void gpu_rekey(gf_alloc__gpu *g)
{
    for (int d = 0; d < 2; d++) g->key[d] = g->lim[d] >= g->eff[d] ? 0 : g->eff[d] - g->lim[d];
}

/* Re-derives a GPU's keys after its sums or ratios changed, keeping every index current. */
static void gpu_update(gf_alloc *a, gf_alloc__gpu *g, void (*change)(gf_alloc__gpu *, void *),
                       void *ctx)
{
    gf_alloc__pool *p = a->pools[g->pool];
    if (p->frag_built) gf_alloc__frag_gpu(a, p, g, -1);
    int indexed = g->in_tree;
    if (indexed) gf_alloc__gpu_unindex(a, g);
    change(g, ctx);
    gpu_rekey(g);
    gf_alloc__node_touch(a, g);
    if (indexed) gf_alloc__gpu_index(a, g);
    if (p->frag_built) gf_alloc__frag_gpu(a, p, g, +1);
}

static void change_ratio(gf_alloc__gpu *g, void *ctx)
{
    const gf_alloc__pool *p = ctx;
    for (int d = 0; d < 2; d++) g->eff[d] = eff_of(g->cap[d], p->ratio[d]);
}

static gf_alloc__pool *pool_create(gf_alloc *a, const char *name)
{
    if (grow((void **)&a->pools, &a->cap_pools, a->n_pools + 1, sizeof(*a->pools))) return NULL;
    gf_alloc__pool *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->strategy = GF_ALLOC_BINPACK;
    p->ratio[0] = p->ratio[1] = 1.0;
    p->root[0] = p->root[1] = GF_ALLOC__NIL;
    if (gf_alloc__map_put(&a->pool_map, p->name, p)) {
        free(p);
        return NULL;
    }
    a->pools[a->n_pools++] = p;
    return p;
}

static uint32_t pool_index(const gf_alloc *a, const gf_alloc__pool *p)
{
    for (size_t i = 0; i < a->n_pools; i++)
        if (a->pools[i] == p) return (uint32_t)i;
    return 0;
}

gf_status gf_alloc_pool_set(gf_alloc *a, const gf_alloc_pool_spec *spec, char *err, size_t errlen)
{
    if (!a || !spec) return GF_EINVAL;
    if (!gf_alloc__name_ok(spec->name)) {
        gf_alloc__errf(err, errlen, "pool name: must be 1..%d printable bytes",
                       GF_ALLOC_NAME_MAX - 1);
        return GF_EINVAL;
    }
    if (!gf_alloc_strategy_name(spec->strategy)) {
        gf_alloc__errf(err, errlen, "pool '%s': strategy %d: use binpack, spread or "
                       "least-fragmentation", spec->name, (int)spec->strategy);
        return GF_EINVAL;
    }
    if (!ratio_ok(spec->oversub_tflops) || !ratio_ok(spec->oversub_vram)) {
        gf_alloc__errf(err, errlen, "pool '%s': oversubscription ratio %g/%g: must be in [1, %g] "
                       "(1 = none)", spec->name, spec->oversub_tflops, spec->oversub_vram,
                       GF_ALLOC_MAX_RATIO);
        return GF_EINVAL;
    }
    gf_alloc__pool *p = gf_alloc__map_get(&a->pool_map, spec->name);
    if (!p && !(p = pool_create(a, spec->name))) return GF_ENOMEM;
    double rt = spec->oversub_tflops ? spec->oversub_tflops : 1.0;
    double rv = spec->oversub_vram ? spec->oversub_vram : 1.0;
    int ratio_changed = rt != p->ratio[GF_ALLOC__T] || rv != p->ratio[GF_ALLOC__V];
    p->ratio[GF_ALLOC__T] = rt;
    p->ratio[GF_ALLOC__V] = rv;
    if (ratio_changed)
        for (size_t i = 0; i < p->n_gpus; i++) gpu_update(a, a->gpus[p->gpus[i]], change_ratio, p);
    if (spec->strategy != p->strategy) {
        p->strategy = spec->strategy;
        if (p->strategy == GF_ALLOC_LEAST_FRAG)
            gf_alloc__frag_build(a, p);
        else
            gf_alloc__frag_drop(p);
    }
    return GF_OK;
}

/* ---- nodes -------------------------------------------------------------------------------- */

gf_status gf_alloc_node_add(gf_alloc *a, const gf_alloc_node_spec *spec, char *err, size_t errlen)
{
    if (!a || !spec) return GF_EINVAL;
    if (!gf_alloc__name_ok(spec->name)) {
        gf_alloc__errf(err, errlen, "node name: must be 1..%d printable bytes",
                       GF_ALLOC_NAME_MAX - 1);
        return GF_EINVAL;
    }
    const char *pool = (spec->pool && *spec->pool) ? spec->pool : "default";
    if (!gf_alloc__name_ok(pool)) {
        gf_alloc__errf(err, errlen, "node '%s': pool name: must be 1..%d printable bytes",
                       spec->name, GF_ALLOC_NAME_MAX - 1);
        return GF_EINVAL;
    }
    if (spec->n_labels > GF_ALLOC_MAX_LABELS || (spec->n_labels && !spec->labels)) {
        gf_alloc__errf(err, errlen, "node '%s': %zu labels: at most %d", spec->name,
                       spec->n_labels, GF_ALLOC_MAX_LABELS);
        return GF_EINVAL;
    }
    for (size_t i = 0; i < spec->n_labels; i++) {
        if (!gf_alloc__name_ok(spec->labels[i].key) || !spec->labels[i].value ||
            strlen(spec->labels[i].value) >= GF_ALLOC_NAME_MAX) {
            gf_alloc__errf(err, errlen, "node '%s': label %zu: key must be 1..%d printable bytes, "
                           "value shorter than %d", spec->name, i, GF_ALLOC_NAME_MAX - 1,
                           GF_ALLOC_NAME_MAX);
            return GF_EINVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(spec->labels[i].key, spec->labels[j].key)) {
                gf_alloc__errf(err, errlen, "node '%s': label '%s' given twice", spec->name,
                               spec->labels[i].key);
                return GF_EINVAL;
            }
    }
    if (gf_alloc__map_get(&a->node_map, spec->name)) {
        gf_alloc__errf(err, errlen, "node '%s' already exists", spec->name);
        return GF_EEXIST;
    }
    gf_alloc__pool *p = gf_alloc__pool_get(a, pool);
    if (!p && !(p = pool_create(a, pool))) return GF_ENOMEM;
    if (grow((void **)&a->nodes, &a->cap_nodes, a->n_nodes + 1, sizeof(*a->nodes)) ||
        grow((void **)&p->nodes, &p->cap_nodes, p->n_nodes + 1, sizeof(*p->nodes)))
        return GF_ENOMEM;
    gf_alloc__node *n = calloc(1, sizeof(*n));
    if (!n) return GF_ENOMEM;
    if (spec->n_labels) {
        n->lkeys = calloc(spec->n_labels, sizeof(*n->lkeys));
        n->lvals = calloc(spec->n_labels, sizeof(*n->lvals));
        if (!n->lkeys || !n->lvals) goto nomem;
    }
    snprintf(n->name, sizeof(n->name), "%s", spec->name);
    for (size_t i = 0; i < spec->n_labels; i++) {
        snprintf(n->lkeys[i], GF_ALLOC_NAME_MAX, "%s", spec->labels[i].key);
        snprintf(n->lvals[i], GF_ALLOC_NAME_MAX, "%s", spec->labels[i].value);
    }
    n->n_labels = spec->n_labels;
    n->ready = spec->ready != 0;
    n->seq = (uint32_t)a->n_nodes;
    n->pool = pool_index(a, p);
    n->pool_pos = (uint32_t)p->n_nodes;
    if (gf_alloc__map_put(&a->node_map, n->name, n)) goto nomem;
    a->nodes[a->n_nodes++] = n;
    p->nodes[p->n_nodes++] = n->seq;
    p->shape++; /* the node order is rebuilt */
    if (p->frag_built) gf_alloc__frag_build(a, p); /* the aggregates are sized per node */
    return GF_OK;
nomem:
    free(n->lkeys);
    free(n->lvals);
    free(n);
    return GF_ENOMEM;
}

gf_status gf_alloc_node_set_ready(gf_alloc *a, const char *node, int ready, char *err,
                                  size_t errlen)
{
    if (!a) return GF_EINVAL;
    gf_alloc__node *n = gf_alloc__map_get(&a->node_map, node);
    if (!n) {
        gf_alloc__errf(err, errlen, "no node '%s'", node ? node : "(null)");
        return GF_ENOENT;
    }
    ready = ready != 0;
    if (ready) /* back before release: its allocations are alive */
        for (size_t i = 0; i < a->rec_map.cap; i++) {
            gf_alloc__rec *r = a->rec_map.keys[i] ? a->rec_map.vals[i] : NULL;
            if (!r || !r->lost) continue;
            for (uint32_t j = 0; j < r->n; j++)
                if (a->gpus[r->parts[j].gpu]->node == n->seq) r->lost = 0;
        }
    if (n->ready == ready) return GF_OK;
    gf_alloc__pool *p = a->pools[n->pool];
    for (size_t i = 0; i < n->n_gpus; i++) {
        gf_alloc__gpu *g = a->gpus[n->gpus[i]];
        if (p->frag_built) gf_alloc__frag_gpu(a, p, g, -1);
        if (ready)
            gf_alloc__gpu_index(a, g);
        else
            gf_alloc__gpu_unindex(a, g);
        if (p->frag_built) gf_alloc__frag_gpu(a, p, g, +1);
    }
    n->ready = ready;
    return GF_OK;
}

/* ---- GPUs --------------------------------------------------------------------------------- */

static uint32_t mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

gf_status gf_alloc_gpu_add(gf_alloc *a, const gf_alloc_gpu_spec *spec, char *err, size_t errlen)
{
    if (!a || !spec) return GF_EINVAL;
    if (!gf_alloc__name_ok(spec->uuid)) {
        gf_alloc__errf(err, errlen, "GPU uuid: must be 1..%d printable bytes",
                       GF_ALLOC_NAME_MAX - 1);
        return GF_EINVAL;
    }
    gf_alloc__node *n = gf_alloc__map_get(&a->node_map, spec->node ? spec->node : "");
    if (!n) {
        gf_alloc__errf(err, errlen, "GPU %s: no node '%s'; add the node first", spec->uuid,
                       spec->node ? spec->node : "(null)");
        return GF_ENOENT;
    }
    if (gf_alloc__map_get(&a->gpu_map, spec->uuid)) {
        gf_alloc__errf(err, errlen, "GPU %s already exists", spec->uuid);
        return GF_EEXIST;
    }
    if (!gf_alloc__name_ok(spec->model)) {
        gf_alloc__errf(err, errlen, "GPU %s: model: must be 1..%d printable bytes", spec->uuid,
                       GF_ALLOC_NAME_MAX - 1);
        return GF_EINVAL;
    }
    const gf_gpu_model *m = gf_gpu_model_find(spec->model);
    uint64_t vram = spec->vram_bytes;
    double tf = spec->tflops;
    if ((!vram || tf == 0) && !m) {
        gf_alloc__errf(err, errlen, "GPU %s: model '%s' is not in the GPU model table; give its "
                       "VRAM and TFLOPs", spec->uuid, spec->model);
        return GF_EINVAL;
    }
    if (!vram) vram = m->vram_bytes;
    if (tf == 0) tf = m->fp16_tflops;
    if (!(tf > 0) || tf > GF_ALLOC__MAX_TFLOPS || vram > GF_ALLOC__MAX_VRAM) {
        gf_alloc__errf(err, errlen, "GPU %s: capacity %g TFLOPs, %llu bytes: TFLOPs must be in "
                       "(0, %g], VRAM at most 2^50 bytes", spec->uuid, tf,
                       (unsigned long long)vram, GF_ALLOC__MAX_TFLOPS);
        return GF_EINVAL;
    }
    gf_alloc__pool *p = a->pools[n->pool];
    if (grow((void **)&a->gpus, &a->cap_gpus, a->n_gpus + 1, sizeof(*a->gpus)) ||
        grow((void **)&p->gpus, &p->cap_gpus, p->n_gpus + 1, sizeof(*p->gpus)) ||
        grow((void **)&n->gpus, &n->cap_gpus, n->n_gpus + 1, sizeof(*n->gpus)))
        return GF_ENOMEM;
    gf_alloc__gpu *g = calloc(1, sizeof(*g));
    if (!g) return GF_ENOMEM;
    snprintf(g->uuid, sizeof(g->uuid), "%s", spec->uuid);
    gf_alloc__canon_model(spec->model, g->model);
    g->model_id = model_intern(a, g->model);
    if (g->model_id < 0 || gf_alloc__map_put(&a->gpu_map, g->uuid, g)) {
        free(g);
        return GF_ENOMEM;
    }
    g->seq = (uint32_t)a->n_gpus;
    g->node = n->seq;
    g->pool = n->pool;
    g->index = spec->index;
    g->prio = mix32(g->seq + 0x9e3779b9u);
    g->cap[GF_ALLOC__T] = (uint64_t)llround(tf * GF_ALLOC__UT);
    g->cap[GF_ALLOC__V] = vram;
    change_ratio(g, p);
    gpu_rekey(g);
    g->tn[0].l = g->tn[0].r = g->tn[1].l = g->tn[1].r = GF_ALLOC__NIL;
    a->gpus[a->n_gpus++] = g;
    p->gpus[p->n_gpus++] = g->seq;
    n->gpus[n->n_gpus++] = g->seq;
    p->shape++;
    if (!p->min_cap_t || g->cap[GF_ALLOC__T] < p->min_cap_t) p->min_cap_t = g->cap[GF_ALLOC__T];
    if (n->ready) gf_alloc__gpu_index(a, g);
    if (p->frag_built) gf_alloc__frag_gpu(a, p, g, +1);
    return GF_OK;
}

static void gpu_info(const gf_alloc *a, const gf_alloc__gpu *g, gf_alloc_gpu_info *o)
{
    memset(o, 0, sizeof(*o));
    const gf_alloc__node *n = a->nodes[g->node];
    snprintf(o->uuid, sizeof(o->uuid), "%s", g->uuid);
    snprintf(o->node, sizeof(o->node), "%s", n->name);
    snprintf(o->pool, sizeof(o->pool), "%s", a->pools[g->pool]->name);
    snprintf(o->model, sizeof(o->model), "%s", g->model);
    o->index = g->index;
    o->ready = n->ready;
    o->vram_bytes = g->cap[GF_ALLOC__V];
    o->tflops = (double)g->cap[GF_ALLOC__T] / GF_ALLOC__UT;
    o->vram_request_sum = g->req[GF_ALLOC__V];
    o->vram_limit_sum = g->lim[GF_ALLOC__V];
    o->vram_request_hi_sum = g->req_hi[GF_ALLOC__V];
    o->tflops_request_sum = (double)g->req[GF_ALLOC__T] / GF_ALLOC__UT;
    o->tflops_limit_sum = (double)g->lim[GF_ALLOC__T] / GF_ALLOC__UT;
    o->tflops_request_hi_sum = (double)g->req_hi[GF_ALLOC__T] / GF_ALLOC__UT;
    o->vram_free = g->key[GF_ALLOC__V];
    o->tflops_free = (double)g->key[GF_ALLOC__T] / GF_ALLOC__UT;
    o->n_allocs = g->n_allocs;
    o->cordoned = g->cordoned;
}

gf_status gf_alloc_gpu_get(const gf_alloc *a, const char *uuid, gf_alloc_gpu_info *out)
{
    if (!a || !out) return GF_EINVAL;
    const gf_alloc__gpu *g = gf_alloc__map_get(&a->gpu_map, uuid);
    if (!g) return GF_ENOENT;
    gpu_info(a, g, out);
    return GF_OK;
}

size_t gf_alloc_gpu_foreach(const gf_alloc *a, int (*fn)(const gf_alloc_gpu_info *, void *),
                            void *ctx)
{
    if (!a || !fn) return 0;
    gf_alloc_gpu_info info;
    size_t n = 0;
    for (size_t i = 0; i < a->n_gpus; i++) {
        if (!a->gpus[i]) continue; /* removed: seqs are never reused */
        gpu_info(a, a->gpus[i], &info);
        n++;
        if (fn(&info, ctx)) break;
    }
    return n;
}

/* ---- charging ----------------------------------------------------------------------------- */

struct charge_ctx {
    int sign, hi;
    const uint64_t *req, *lim;
};

static void change_charge(gf_alloc__gpu *g, void *ctx)
{
    const struct charge_ctx *c = ctx;
    for (int d = 0; d < 2; d++) {
        if (c->sign > 0) {
            g->req[d] += c->req[d];
            g->lim[d] += c->lim[d];
            if (c->hi) g->req_hi[d] += c->req[d];
        } else {
            g->req[d] -= c->req[d];
            g->lim[d] -= c->lim[d];
            if (c->hi) g->req_hi[d] -= c->req[d];
        }
    }
    if (c->sign > 0)
        g->n_allocs++;
    else
        g->n_allocs--;
}

void gf_alloc__charge(gf_alloc *a, gf_alloc__gpu *g, int sign, const uint64_t req[2],
                      const uint64_t lim[2], int hi)
{
    struct charge_ctx c = {sign, hi, req, lim};
    gpu_update(a, g, change_charge, &c);
}

/* ---- names -------------------------------------------------------------------------------- */

const char *gf_alloc_strategy_name(gf_alloc_strategy s)
{
    switch (s) {
    case GF_ALLOC_BINPACK: return "binpack";
    case GF_ALLOC_SPREAD: return "spread";
    case GF_ALLOC_LEAST_FRAG: return "least-fragmentation";
    }
    return NULL;
}

gf_status gf_alloc_strategy_parse(const char *text, gf_alloc_strategy *out)
{
    if (!text || !out) return GF_EINVAL;
    if (!strcasecmp(text, "binpack"))
        *out = GF_ALLOC_BINPACK;
    else if (!strcasecmp(text, "spread"))
        *out = GF_ALLOC_SPREAD;
    else if (!strcasecmp(text, "least-fragmentation") || !strcasecmp(text, "least-frag") ||
             !strcasecmp(text, "fgd"))
        *out = GF_ALLOC_LEAST_FRAG;
    else
        return GF_EINVAL;
    return GF_OK;
}

const char *gf_alloc_qos_name(gf_alloc_qos q)
{
    switch (q) {
    case GF_ALLOC_QOS_LOW: return "low";
    case GF_ALLOC_QOS_MEDIUM: return "medium";
    case GF_ALLOC_QOS_HIGH: return "high";
    case GF_ALLOC_QOS_CRITICAL: return "critical";
    }
    return NULL;
}

gf_status gf_alloc_qos_parse(const char *text, gf_alloc_qos *out)
{
    if (!text || !out) return GF_EINVAL;
    static const char *names[] = {"low", "medium", "high", "critical"};
    for (int i = 0; i < 4; i++)
        if (!strcasecmp(text, names[i])) {
            *out = (gf_alloc_qos)i;
            return GF_OK;
        }
    return GF_EINVAL;
}
