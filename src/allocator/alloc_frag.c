/* SPDX-License-Identifier: Apache-2.0 */
/* Least-fragmentation placement after FGD (Weng et al., "Beware of Fragmentation: Scheduling
 * GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC'23): the expected
 * fragmentation of a node against the pool's workload distribution, kept as per-(node, task type)
 * aggregates (while there are multi-GPU task types) so that the change one placement causes costs
 * O(task types); and the fast path: GPUs grouped by state (a GPU whose node is not at a
 * multi-GPU threshold scores by its own state only), score tables that give a state's weight of
 * unfitting types in one read, score classes of groups (alloc_place.c searches them), and a
 * scoring snapshot of the distribution. Definition and the snapshot's tradeoff in
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

/* floor(k * 1e6 / eff) for k <= eff, in 64 bits whenever the product fits (it does below
 * 2^44, about 17 TB or 17e6 TFLOPs). */
static int64_t ppm_of(uint64_t k, uint64_t eff)
{
    if (k <= UINT64_MAX / GF_ALLOC__PPM) return (int64_t)(k * GF_ALLOC__PPM / eff);
    return (int64_t)((unsigned __int128)k * GF_ALLOC__PPM / eff);
}

/* Free share of a GPU in ppm: the mean, over the dimensions the workload asks for, of
 * free / (capacity x ratio). */
int64_t gf_alloc__share(const gf_alloc__pool *p, const uint64_t eff[2], const uint64_t k[2])
{
    int64_t s = 0;
    int n = 0;
    for (int d = 0; d < 2; d++) {
        if (!p->used[d] || !eff[d]) continue;
        s += ppm_of(k[d] > eff[d] ? eff[d] : k[d], eff[d]);
        n++;
    }
    return n ? s / n : 0;
}

static int64_t share_ppm(const gf_alloc__pool *p, const gf_alloc__gpu *g, const uint64_t k[2])
{
    return gf_alloc__share(p, g->eff, k);
}

/* The drop of floor(k * 1e6 / eff) is at most floor(l * 1e6 / eff) + 1; the mean's floor adds
 * at most one more. */
int64_t gf_alloc__share_drop_max(const gf_alloc__pool *p, const uint64_t eff[2],
                                 const uint64_t l[2])
{
    int64_t s = 0;
    int n = 0;
    for (int d = 0; d < 2; d++) {
        if (!p->used[d] || !eff[d]) continue;
        s += ppm_of(l[d] > eff[d] ? eff[d] : l[d], eff[d]) + 1;
        n++;
    }
    return n ? (s + n - 1) / n + 1 : 0;
}

static void used_dims(const gf_alloc__pool *p, int used[2])
{
    used[0] = used[1] = 0;
    for (size_t m = 0; m < p->n_types; m++) {
        if (p->types[m].t || p->types[m].t_ppm) used[GF_ALLOC__T] = 1;
        if (p->types[m].v) used[GF_ALLOC__V] = 1;
    }
}

/* ---- the scoring snapshot ----------------------------------------------------------------- */

/* Copies the distribution into the integer weights placements score with, and invalidates every
 * cached score and the score table (they carry the version). Observed counts are integers
 * already; target weights are normalized to GF_ALLOC__WSCALE (each at least 1). */
static void snap_refresh(gf_alloc__pool *p)
{
    int weighted = 0;
    p->swsum = 0;
    p->n_multi = 0;
    for (size_t m = 0; m < p->n_types; m++) {
        gf_alloc__type *t = &p->types[m];
        if (p->target) {
            double w = p->wsum > 0 ? t->w / p->wsum * GF_ALLOC__WSCALE : 0;
            t->sw = w < 1 ? 1 : (uint64_t)(w + 0.5);
        } else {
            t->sw = (uint64_t)t->w;
        }
        p->swsum += t->sw;
        p->n_multi += t->k > 1 && t->sw;
        weighted += t->sw != 0;
    }
    /* Between two builds types are only added and weights never return to 0, so the set of
     * weighted types (and the needs score classes are cut at) changes only with its size. */
    if (weighted != p->n_weighted) p->layout++;
    p->n_weighted = weighted;
    p->obs_since = 0;
    p->sver++;
}

static uint64_t hash_words(const uint64_t *w, int n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < n; i++) {
        h ^= w[i] + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
        h *= 0xff51afd7ed558ccdull;
    }
    return h ^ (h >> 29);
}

/* Without memory for the fast path's structures the pool scores from scratch (as a reference
 * run does): slower, same decisions. */
static void fast_fail(gf_alloc__pool *p)
{
    p->reference |= 2;
}

/* ---- score tables ------------------------------------------------------------------------ */

static int u64_cmp(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* Sorts v[0..n) and drops repeats; returns the count left. */
static uint32_t sort_unique(uint64_t *v, uint32_t n)
{
    qsort(v, n, sizeof(*v), u64_cmp);
    uint32_t o = 0;
    for (uint32_t i = 0; i < n; i++)
        if (!o || v[i] != v[o - 1]) v[o++] = v[i];
    return o;
}

/* How many of v[0..n) (ascending) are <= x. */
uint32_t gf_alloc__rank(const uint64_t *v, uint32_t n, uint64_t x)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (v[mid] <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint64_t gf_alloc__ppm_of_cap(uint64_t x, uint64_t cap_t)
{
    return cap_t ? x * GF_ALLOC__PPM / cap_t : 0; /* x <= cap_t <= 1e12: no overflow */
}

void gf_alloc__cell_of(const gf_alloc__ftab *f, const uint64_t cap[2], const uint64_t k[2],
                       gf_alloc__cell *c)
{
    uint64_t x = k[GF_ALLOC__T] < cap[GF_ALLOC__T] ? k[GF_ALLOC__T] : cap[GF_ALLOC__T];
    uint64_t y = k[GF_ALLOC__V] < cap[GF_ALLOC__V] ? k[GF_ALLOC__V] : cap[GF_ALLOC__V];
    c->a = gf_alloc__rank(f->need[GF_ALLOC__NA], f->n[GF_ALLOC__NA], x);
    c->s = gf_alloc__rank(f->need[GF_ALLOC__NS], f->n[GF_ALLOC__NS],
                          gf_alloc__ppm_of_cap(x, cap[GF_ALLOC__T]));
    c->v = gf_alloc__rank(f->need[GF_ALLOC__NV], f->n[GF_ALLOC__NV], y);
}

/* (Re)builds the table for the current snapshot. -1 when out of memory. */
static int ftab_build(const gf_alloc__pool *p, gf_alloc__ftab *f)
{
    uint32_t n[3] = {0, 0, 0};
    for (size_t m = 0; m < p->n_types; m++) {
        const gf_alloc__type *t = &p->types[m];
        if (!t->sw) continue;
        int k = t->t_ppm ? GF_ALLOC__NS : GF_ALLOC__NA;
        f->need[k][n[k]++] = t->t_ppm ? t->t_ppm : t->t;
        f->need[GF_ALLOC__NV][n[GF_ALLOC__NV]++] = t->v;
    }
    for (int k = 0; k < 3; k++) f->n[k] = sort_unique(f->need[k], n[k]);
    size_t w = (size_t)f->n[GF_ALLOC__NV] + 1;
    for (int k = 0; k < 2; k++) {
        size_t cells = ((size_t)f->n[k] + 1) * w;
        if (cells > f->cap_w[k]) {
            uint64_t *nw = realloc(f->w[k], cells * sizeof(*nw));
            if (!nw) return -1;
            f->w[k] = nw;
            f->cap_w[k] = cells;
        }
        memset(f->w[k], 0, cells * sizeof(*f->w[k]));
    }
    for (size_t m = 0; m < p->n_types; m++) { /* each type's weight at the cell of its needs */
        const gf_alloc__type *t = &p->types[m];
        if (!t->sw) continue;
        int k = t->t_ppm ? GF_ALLOC__NS : GF_ALLOC__NA;
        uint32_t i = gf_alloc__rank(f->need[k], f->n[k], t->t_ppm ? t->t_ppm : t->t);
        uint32_t j = gf_alloc__rank(f->need[GF_ALLOC__NV], f->n[GF_ALLOC__NV], t->v);
        f->w[k][i * w + j] += t->sw;
    }
    for (int k = 0; k < 2; k++) { /* then sums over every cell at or below */
        uint64_t *c = f->w[k];
        for (size_t i = 0; i <= f->n[k]; i++)
            for (size_t j = 0; j < w; j++)
                c[i * w + j] += (i ? c[(i - 1) * w + j] : 0) + (j ? c[i * w + j - 1] : 0) -
                                (i && j ? c[(i - 1) * w + j - 1] : 0);
    }
    f->ver = p->sver;
    return 0;
}

const gf_alloc__ftab *gf_alloc__ftab_get(gf_alloc__pool *p)
{
    if (!p->ftab) return NULL;
    return p->ftab->ver == p->sver || !ftab_build(p, p->ftab) ? p->ftab : NULL;
}

/* ---- score classes ------------------------------------------------------------------------ */

static size_t btab_hash(const uint64_t cap[2], const uint64_t eff[2], const gf_alloc__cell *c)
{
    uint64_t w[6] = {cap[0], cap[1], eff[0], eff[1], (uint64_t)c->a << 32 | c->s, c->v};
    return (size_t)hash_words(w, 6);
}

static int bkt_is(const gf_alloc__bkt *b, const uint64_t cap[2], const uint64_t eff[2],
                  const gf_alloc__cell *c)
{
    return b->c.a == c->a && b->c.s == c->s && b->c.v == c->v && b->cap[0] == cap[0] &&
           b->cap[1] == cap[1] && b->eff[0] == eff[0] && b->eff[1] == eff[1];
}

static int btab_grow(gf_alloc__pool *p)
{
    size_t nc = p->btab_cap ? p->btab_cap * 2 : 64;
    int32_t *t = malloc(nc * sizeof(*t));
    if (!t) return -1;
    for (size_t k = 0; k < nc; k++) t[k] = GF_ALLOC__NIL;
    for (size_t k = 0; k < p->n_bkts; k++) {
        const gf_alloc__bkt *b = &p->bkts[k];
        size_t h = btab_hash(b->cap, b->eff, &b->c) & (nc - 1);
        while (t[h] != GF_ALLOC__NIL) h = (h + 1) & (nc - 1);
        t[h] = (int32_t)k;
    }
    free(p->btab);
    p->btab = t;
    p->btab_cap = nc;
    return 0;
}

/* The class of shape (cap, eff) and cell c, created when absent; -1 when out of memory. */
static int32_t bkt_find(gf_alloc__pool *p, const uint64_t cap[2], const uint64_t eff[2],
                        const gf_alloc__cell *c)
{
    if ((p->n_bkts + 1) * 2 > p->btab_cap && btab_grow(p)) return -1;
    size_t h = btab_hash(cap, eff, c) & (p->btab_cap - 1);
    for (; p->btab[h] != GF_ALLOC__NIL; h = (h + 1) & (p->btab_cap - 1))
        if (bkt_is(&p->bkts[p->btab[h]], cap, eff, c)) return p->btab[h];
    if (p->n_bkts == p->cap_bkts) {
        size_t nc = p->cap_bkts ? p->cap_bkts * 2 : 16;
        gf_alloc__bkt *nb = realloc(p->bkts, nc * sizeof(*nb));
        if (!nb) return -1;
        p->bkts = nb;
        uint32_t *na = realloc(p->bact, nc * sizeof(*na));
        if (!na) return -1;
        p->bact = na;
        p->cap_bkts = nc;
    }
    gf_alloc__bkt *b = &p->bkts[p->n_bkts];
    memset(b, 0, sizeof(*b));
    memcpy(b->cap, cap, sizeof(b->cap));
    memcpy(b->eff, eff, sizeof(b->eff));
    b->c = *c;
    p->btab[h] = (int32_t)p->n_bkts;
    return (int32_t)p->n_bkts++;
}

/* Member order: free VRAM, free compute, group id. */
static int mem_less(const gf_alloc__grp *x, uint32_t xi, const gf_alloc__grp *y, uint32_t yi)
{
    if (x->key[GF_ALLOC__V] != y->key[GF_ALLOC__V])
        return x->key[GF_ALLOC__V] < y->key[GF_ALLOC__V];
    if (x->key[GF_ALLOC__T] != y->key[GF_ALLOC__T])
        return x->key[GF_ALLOC__T] < y->key[GF_ALLOC__T];
    return xi < yi;
}

/* First member position not before group id. */
static uint32_t bkt_lower(const gf_alloc__pool *p, const gf_alloc__bkt *b, uint32_t id)
{
    const gf_alloc__grp *G = &p->grps[id];
    uint32_t lo = 0, hi = b->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (mem_less(&p->grps[b->m[mid]], b->m[mid], G, id))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Puts group id (non-empty, not in a class) into the class of its shape and cell. */
static int bkt_insert(gf_alloc__pool *p, uint32_t id)
{
    gf_alloc__grp *G = &p->grps[id];
    const uint64_t *cap = G->st, *eff = G->st + 2;
    const gf_alloc__ftab *f = gf_alloc__ftab_get(p);
    if (!f) return -1;
    gf_alloc__cell c;
    gf_alloc__cell_of(f, cap, G->key, &c);
    int32_t bi = bkt_find(p, cap, eff, &c);
    if (bi < 0) return -1;
    gf_alloc__bkt *b = &p->bkts[bi];
    if (b->n == b->cap_m) {
        uint32_t nc = b->cap_m ? b->cap_m * 2 : 8;
        uint32_t *nm = realloc(b->m, nc * sizeof(*nm));
        if (!nm) return -1;
        b->m = nm;
        b->cap_m = nc;
    }
    uint32_t pos = bkt_lower(p, b, id);
    memmove(b->m + pos + 1, b->m + pos, (b->n - pos) * sizeof(*b->m));
    b->m[pos] = id;
    if (!b->n || G->key[GF_ALLOC__T] < b->min_t) b->min_t = G->key[GF_ALLOC__T];
    if (!b->n) b->min_stale = 0;
    if (!b->n++) {
        b->apos = (uint32_t)p->n_bact;
        p->bact[p->n_bact++] = (uint32_t)bi;
    }
    G->bkt = bi;
    return 0;
}

static void bkt_remove(gf_alloc__pool *p, uint32_t id)
{
    gf_alloc__grp *G = &p->grps[id];
    if (G->bkt == GF_ALLOC__NIL) return;
    gf_alloc__bkt *b = &p->bkts[G->bkt];
    uint32_t pos = bkt_lower(p, b, id);
    memmove(b->m + pos, b->m + pos + 1, (b->n - pos - 1) * sizeof(*b->m));
    b->min_stale |= G->key[GF_ALLOC__T] == b->min_t;
    if (!--b->n) { /* leaves the list of non-empty classes */
        uint32_t last = p->bact[--p->n_bact];
        p->bact[b->apos] = last;
        p->bkts[last].apos = b->apos;
    }
    G->bkt = GF_ALLOC__NIL;
}

uint64_t gf_alloc__bkt_min_t(gf_alloc__pool *p, gf_alloc__bkt *b)
{
    if (b->min_stale) { /* its least member left: found again on demand */
        b->min_t = UINT64_MAX;
        for (uint32_t k = 0; k < b->n; k++)
            if (p->grps[b->m[k]].key[GF_ALLOC__T] < b->min_t)
                b->min_t = p->grps[b->m[k]].key[GF_ALLOC__T];
        b->min_stale = 0;
    }
    return b->min_t;
}

int gf_alloc__bkt_sync(gf_alloc__pool *p)
{
    if (p->bver == p->layout) return 0;
    for (size_t k = 0; k < p->n_bkts; k++) free(p->bkts[k].m);
    p->n_bkts = p->n_bact = 0;
    for (size_t k = 0; k < p->btab_cap; k++) p->btab[k] = GF_ALLOC__NIL;
    for (size_t k = 0; k < p->n_act; k++) p->grps[p->act[k]].bkt = GF_ALLOC__NIL;
    p->bver = p->layout;
    for (size_t k = 0; k < p->n_act; k++)
        if (bkt_insert(p, p->act[k])) {
            p->bver = p->layout - 1;
            fast_fail(p);
            return -1;
        }
    return 0;
}

/* ---- state groups, the special list ------------------------------------------------------- */

static void grp_state(const gf_alloc__gpu *g, uint64_t st[10])
{
    for (int d = 0; d < 2; d++) {
        st[d] = g->cap[d];
        st[2 + d] = g->eff[d];
        st[4 + d] = g->lim[d];
        st[6 + d] = g->req[d];
        st[8 + d] = g->req_hi[d];
    }
}

static int gtab_grow(gf_alloc__pool *p)
{
    size_t nc = p->gtab_cap ? p->gtab_cap * 2 : 256;
    int32_t *t = malloc(nc * sizeof(*t));
    if (!t) return -1;
    for (size_t i = 0; i < nc; i++) t[i] = GF_ALLOC__NIL;
    for (size_t i = 0; i < p->gtab_cap; i++) {
        int32_t id = p->gtab[i];
        if (id == GF_ALLOC__NIL) continue;
        size_t j = hash_words(p->grps[id].st, 10) & (nc - 1);
        while (t[j] != GF_ALLOC__NIL) j = (j + 1) & (nc - 1);
        t[j] = id;
    }
    free(p->gtab);
    p->gtab = t;
    p->gtab_cap = nc;
    return 0;
}

/* Slot of the group with state st, or of the empty slot where it would go. */
static size_t gtab_slot(const gf_alloc__pool *p, const uint64_t st[10])
{
    size_t j = hash_words(st, 10) & (p->gtab_cap - 1);
    while (p->gtab[j] != GF_ALLOC__NIL && memcmp(p->grps[p->gtab[j]].st, st, 10 * sizeof(*st)))
        j = (j + 1) & (p->gtab_cap - 1);
    return j;
}

/* Linear probing delete by backward shift. */
static void gtab_del(gf_alloc__pool *p, size_t j)
{
    size_t mask = p->gtab_cap - 1;
    p->gtab[j] = GF_ALLOC__NIL;
    for (size_t k = (j + 1) & mask; p->gtab[k] != GF_ALLOC__NIL; k = (k + 1) & mask) {
        size_t h = hash_words(p->grps[p->gtab[k]].st, 10) & mask;
        /* move k back to j when its home is not cyclically in (j, k] */
        if ((k > j && (h <= j || h > k)) || (k < j && h <= j && h > k)) {
            p->gtab[j] = p->gtab[k];
            p->gtab[k] = GF_ALLOC__NIL;
            j = k;
        }
    }
    p->gtab_n--;
}

static void heap_swap(gf_alloc *a, gf_alloc__grp *G, uint32_t i, uint32_t j)
{
    uint32_t t = G->heap[i];
    G->heap[i] = G->heap[j];
    G->heap[j] = t;
    a->gpus[G->heap[i]]->hpos = i;
    a->gpus[G->heap[j]]->hpos = j;
}

static void heap_fix(gf_alloc *a, gf_alloc__grp *G, uint32_t i)
{
    while (i > 0 && G->heap[(i - 1) / 2] > G->heap[i]) {
        heap_swap(a, G, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < G->n && G->heap[l] < G->heap[m]) m = l;
        if (r < G->n && G->heap[r] < G->heap[m]) m = r;
        if (m == i) return;
        heap_swap(a, G, i, m);
        i = m;
    }
}

static void grp_add(gf_alloc *a, gf_alloc__pool *p, gf_alloc__gpu *g)
{
    uint64_t st[10];
    grp_state(g, st);
    if ((p->gtab_n + 1) * 2 > p->gtab_cap && gtab_grow(p)) return fast_fail(p);
    size_t j = gtab_slot(p, st);
    int32_t id = p->gtab[j];
    if (id == GF_ALLOC__NIL) {
        if (p->n_gfree) {
            id = (int32_t)p->gfree[--p->n_gfree];
        } else {
            if (p->n_grps == p->cap_grps) {
                size_t nc = p->cap_grps ? p->cap_grps * 2 : 64;
                gf_alloc__grp *ng = realloc(p->grps, nc * sizeof(*ng));
                uint32_t *nf = realloc(p->gfree, nc * sizeof(*nf));
                uint32_t *na = realloc(p->act, nc * sizeof(*na));
                if (ng) p->grps = ng;
                if (nf) p->gfree = nf;
                if (na) p->act = na;
                if (!ng || !nf || !na) return fast_fail(p);
                p->cap_grps = nc;
            }
            id = (int32_t)p->n_grps++;
            p->grps[id].heap = NULL;
            p->grps[id].cap = 0;
        }
        gf_alloc__grp *G = &p->grps[id];
        memcpy(G->st, st, sizeof(st));
        G->n = 0;
        G->ver = 0;
        G->key[0] = g->key[0];
        G->key[1] = g->key[1];
        G->bkt = GF_ALLOC__NIL;
        G->apos = (uint32_t)p->n_act;
        p->act[p->n_act++] = (uint32_t)id;
        p->gtab[j] = id;
        p->gtab_n++;
    }
    gf_alloc__grp *G = &p->grps[id];
    if (G->n == G->cap) {
        uint32_t nc = G->cap ? G->cap * 2 : 4;
        uint32_t *nh = realloc(G->heap, nc * sizeof(*nh));
        if (!nh) return fast_fail(p);
        G->heap = nh;
        G->cap = nc;
    }
    G->heap[G->n] = g->seq;
    g->hpos = G->n++;
    g->grp = id;
    heap_fix(a, G, g->hpos);
    if (G->n == 1 && p->bver == p->layout && bkt_insert(p, (uint32_t)id)) return fast_fail(p);
}

static void grp_remove(gf_alloc *a, gf_alloc__pool *p, gf_alloc__gpu *g)
{
    if (g->grp == GF_ALLOC__NIL) return;
    gf_alloc__grp *G = &p->grps[g->grp];
    uint32_t i = g->hpos;
    G->n--;
    if (i != G->n) {
        G->heap[i] = G->heap[G->n];
        a->gpus[G->heap[i]]->hpos = i;
        heap_fix(a, G, i);
    }
    if (!G->n) { /* an empty group leaves the table, the active list and its class */
        bkt_remove(p, (uint32_t)g->grp);
        gtab_del(p, gtab_slot(p, G->st));
        uint32_t last = p->act[--p->n_act];
        p->act[G->apos] = last;
        p->grps[last].apos = G->apos;
        p->gfree[p->n_gfree++] = (uint32_t)g->grp;
    }
    g->grp = GF_ALLOC__NIL;
}

static void spec_add(gf_alloc__pool *p, gf_alloc__gpu *g)
{
    if (p->n_spec == p->cap_spec) {
        size_t nc = p->cap_spec ? p->cap_spec * 2 : 64;
        uint32_t *ns = realloc(p->spec, nc * sizeof(*ns));
        if (!ns) return fast_fail(p);
        p->spec = ns;
        p->cap_spec = nc;
    }
    g->spos = (uint32_t)p->n_spec;
    p->spec[p->n_spec++] = g->seq;
    g->special = 1;
}

static void spec_remove(gf_alloc *a, gf_alloc__pool *p, gf_alloc__gpu *g)
{
    if (!g->special) return;
    uint32_t last = p->spec[--p->n_spec];
    p->spec[g->spos] = last;
    a->gpus[last]->spos = g->spos;
    g->special = 0;
}

/* Special: g fits a (weighted) multi-GPU task type m while its node has at most k_m GPUs that fit m. Then
 * g's delta depends on the rest of its node (the node's count crosses, or stays below, k_m), not
 * on g's state alone. Every other GPU's delta is a function of its own state. */
static int is_special(const gf_alloc__pool *p, const gf_alloc__gpu *g, size_t np)
{
    if (!p->n_multi) return 0;
    const uint16_t *fc = p->fitcnt + np * GF_ALLOC__MAX_TYPES;
    for (size_t m = 0; m < p->n_types; m++)
        if (p->types[m].k > 1 && p->types[m].sw && (g->fit[m / 64] >> (m % 64) & 1) &&
            fc[m] <= p->types[m].k)
            return 1;
    return 0;
}

static void place_fast(gf_alloc *a, gf_alloc__pool *p, gf_alloc__gpu *g, size_t np)
{
    if (is_special(p, g, np))
        spec_add(p, g);
    else
        grp_add(a, p, g);
}

/* Re-sorts the GPUs of node n between groups and the special list after its counts changed. */
static void node_resort(gf_alloc *a, gf_alloc__pool *p, const gf_alloc__node *n)
{
    if (!p->n_multi) return;
    for (size_t i = 0; i < n->n_gpus; i++) {
        gf_alloc__gpu *h = a->gpus[n->gpus[i]];
        if (!h->frag_in || is_special(p, h, n->pool_pos) == h->special) continue;
        if (h->special) {
            spec_remove(a, p, h);
            grp_add(a, p, h);
        } else {
            grp_remove(a, p, h);
            spec_add(p, h);
        }
    }
}

static void fast_reset(gf_alloc__pool *p)
{
    for (size_t i = 0; i < p->n_grps; i++) free(p->grps[i].heap);
    free(p->grps);
    free(p->gfree);
    free(p->gtab);
    free(p->act);
    free(p->spec);
    if (p->ftab) {
        free(p->ftab->w[0]);
        free(p->ftab->w[1]);
    }
    free(p->ftab);
    for (size_t i = 0; i < p->n_bkts; i++) free(p->bkts[i].m);
    free(p->bkts);
    free(p->btab);
    free(p->bact);
    free(p->runs);
    p->bkts = NULL;
    p->btab = NULL;
    p->bact = NULL;
    p->runs = NULL;
    p->n_bkts = p->cap_bkts = p->btab_cap = p->n_bact = p->cap_runs = 0;
    p->layout++; /* classes are rebuilt on the next placement */
    p->grps = NULL;
    p->gfree = NULL;
    p->gtab = NULL;
    p->act = NULL;
    p->spec = NULL;
    p->ftab = NULL;
    p->n_grps = p->cap_grps = p->n_gfree = p->gtab_cap = p->gtab_n = p->n_act = 0;
    p->n_spec = p->cap_spec = 0;
    p->reference &= 1;
}

/* ---- per-node aggregates ------------------------------------------------------------------ */

/* Adds (sign +1) or takes out (-1) g's share and fit bits in its node's aggregates. */
static void agg_gpu(gf_alloc *a, gf_alloc__pool *p, gf_alloc__gpu *g, int sign)
{
    size_t np = a->nodes[g->node]->pool_pos;
    uint16_t *fc = p->fitcnt + np * GF_ALLOC__MAX_TYPES;
    int64_t *nf = p->nofit + np * GF_ALLOC__MAX_TYPES;
    if (sign > 0) {
        g->s_ppm = share_ppm(p, g, g->key);
        memset(g->fit, 0, sizeof(g->fit));
        for (size_t m = 0; m < p->n_types; m++)
            if (type_fits(&p->types[m], g, g->key)) g->fit[m / 64] |= 1ull << (m % 64);
    }
    p->total[np] += sign * g->s_ppm;
    for (size_t m = 0; m < p->n_types; m++) {
        if (g->fit[m / 64] >> (m % 64) & 1)
            fc[m] = (uint16_t)(fc[m] + sign);
        else
            nf[m] += sign * g->s_ppm;
    }
}

/* Starts keeping the per-node aggregates: a weighted multi-GPU type appeared. */
static void agg_build(gf_alloc *a, gf_alloc__pool *p)
{
    memset(p->fitcnt, 0, p->frag_nodes * GF_ALLOC__MAX_TYPES * sizeof(*p->fitcnt));
    memset(p->nofit, 0, p->frag_nodes * GF_ALLOC__MAX_TYPES * sizeof(*p->nofit));
    memset(p->total, 0, p->frag_nodes * sizeof(*p->total));
    for (size_t i = 0; i < p->n_gpus; i++) {
        gf_alloc__gpu *g = a->gpus[p->gpus[i]];
        if (g->frag_in) agg_gpu(a, p, g, +1);
    }
    p->agg = 1;
}

/* The per-node aggregates serve the GPUs whose delta depends on their node (special GPUs, at a
 * multi-GPU type's threshold). Without weighted multi-GPU types every GPU's delta is a function
 * of its own state (gf_alloc__frag_delta_state), so they are not kept (p->agg == 0): keeping
 * them costs O(task types) per charge. */
void gf_alloc__frag_gpu(gf_alloc *a, gf_alloc__pool *p, gf_alloc__gpu *g, int sign)
{
    const gf_alloc__node *n = a->nodes[g->node];
    size_t np = n->pool_pos;
    if (sign < 0) {
        if (!g->frag_in) return;
        if (g->special)
            spec_remove(a, p, g);
        else
            grp_remove(a, p, g);
        if (p->agg) agg_gpu(a, p, g, -1);
        g->frag_in = 0;
        node_resort(a, p, n);
        return;
    }
    if (!g->in_tree || g->frag_in) return;
    if (p->agg) agg_gpu(a, p, g, +1);
    g->special = 0;
    g->grp = GF_ALLOC__NIL;
    node_resort(a, p, n); /* the others; g is not in yet */
    g->frag_in = 1;
    place_fast(a, p, g, np);
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
    p->frag_built = p->agg = 0;
    fast_reset(p);
}

void gf_alloc__frag_build(gf_alloc *a, gf_alloc__pool *p)
{
    gf_alloc__frag_drop(p);
    snap_refresh(p);
    size_t nn = p->n_nodes ? p->n_nodes : 1;
    p->fitcnt = calloc(nn * GF_ALLOC__MAX_TYPES, sizeof(*p->fitcnt));
    p->nofit = calloc(nn * GF_ALLOC__MAX_TYPES, sizeof(*p->nofit));
    p->total = calloc(nn, sizeof(*p->total));
    p->ftab = calloc(1, sizeof(*p->ftab));
    if (!p->fitcnt || !p->nofit || !p->total || !p->ftab) {
        /* without aggregates least-fragmentation falls back to the from-scratch path */
        gf_alloc__frag_drop(p);
        return;
    }
    p->frag_nodes = nn;
    used_dims(p, p->used);
    p->frag_built = 1;
    p->agg = p->n_multi > 0;
    for (size_t i = 0; i < p->n_gpus; i++) {
        gf_alloc__gpu *g = a->gpus[p->gpus[i]];
        g->frag_in = 0;
        g->special = 0;
        g->grp = GF_ALLOC__NIL;
    }
    for (size_t i = 0; i < p->n_gpus; i++) gf_alloc__frag_gpu(a, p, a->gpus[p->gpus[i]], +1);
}

/* Observed mode: one more observation; refreshes the snapshot when enough have accumulated. */
static void snap_observed(gf_alloc *a, gf_alloc__pool *p)
{
    p->obs_since++;
    if (p->obs_since < 1 + p->swsum / GF_ALLOC__REFRESH_DIV) return;
    int multi = p->n_multi;
    snap_refresh(p);
    if (!p->frag_built || multi == p->n_multi) return;
    if (!p->agg) agg_build(a, p); /* the first weighted multi-GPU type */
    for (size_t i = 0; i < p->n_nodes; i++) /* specials change */
        node_resort(a, p, a->nodes[p->nodes[i]]);
}

void gf_alloc__frag_observe(gf_alloc *a, gf_alloc__pool *p, const gf_alloc__type *m)
{
    if (p->target || p->strategy != GF_ALLOC_LEAST_FRAG) return; /* binpack/spread pay nothing */
    for (size_t i = 0; i < p->n_types; i++) {
        gf_alloc__type *t = &p->types[i];
        if (t->v == m->v && t->t == m->t && t->t_ppm == m->t_ppm && t->k == m->k) {
            t->w += 1;
            p->wsum += 1;
            snap_observed(a, p);
            return;
        }
    }
    if (p->n_types >= GF_ALLOC__MAX_TYPES) return; /* the rarest types past 256 are not tracked */
    size_t idx = p->n_types++;
    p->types[idx] = *m;
    p->types[idx].w = 1;
    p->types[idx].sw = 0; /* scores with weight 0 until the next refresh */
    p->wsum += 1;
    if (!p->frag_built) return;
    int used[2];
    used_dims(p, used);
    if (used[0] != p->used[0] || used[1] != p->used[1]) {
        gf_alloc__frag_build(a, p); /* shares change for every GPU; refreshes the snapshot */
        return;
    }
    for (size_t i = 0; p->agg && i < p->n_gpus; i++) {
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
    /* cached scores and tables exclude the new type (weight 0 until the refresh): still valid */
    snap_observed(a, p);
}

/* ---- deltas -------------------------------------------------------------------------------- */

gf_alloc__fd gf_alloc__frag_delta1(const gf_alloc *a, gf_alloc__pool *p,
                                   const gf_alloc__gpu *g, const uint64_t nk[2])
{
    if (!p->frag_built || !g->frag_in || !p->swsum) {
        uint32_t s = g->seq;
        return gf_alloc__frag_delta(a, p, a->nodes[g->node], &s, (const uint64_t(*)[2])nk, 1);
    }
    if (!p->agg) return gf_alloc__frag_delta_state(p, g, nk); /* no special GPUs */
    size_t np = a->nodes[g->node]->pool_pos;
    const uint16_t *fc = p->fitcnt + np * GF_ALLOC__MAX_TYPES;
    const int64_t *nf = p->nofit + np * GF_ALLOC__MAX_TYPES;
    int64_t tot = p->total[np];
    int64_t s0 = g->s_ppm, s1 = share_ppm(p, g, nk);
    int64_t tot1 = tot - s0 + s1;
    gf_alloc__fd d = 0;
    for (size_t m = 0; m < p->n_types; m++) {
        const gf_alloc__type *t = &p->types[m];
        if (!t->sw) continue;
        int f0 = (int)(g->fit[m / 64] >> (m % 64) & 1);
        int f1 = type_fits(t, g, nk);
        int64_t old = fc[m] >= t->k ? nf[m] : tot;
        int64_t c1 = (int64_t)fc[m] - f0 + f1;
        int64_t nf1 = nf[m] - (f0 ? 0 : s0) + (f1 ? 0 : s1);
        int64_t now = c1 >= (int64_t)t->k ? nf1 : tot1;
        d += (gf_alloc__fd)t->sw * (now - old);
    }
    return d;
}

/* The node evaluator (local multi-GPU requests): F_n's change as a request's GPUs are chosen
 * one at a time, in O(task types) per candidate instead of recomputing F_n from every GPU of the
 * node. With the per-node aggregates it keeps the node's per-type fit counts, non-fitting shares
 * and total share, updated by each committed GPU, so a candidate's step delta is the exact
 * integer difference the definition gives; without them (no weighted multi-GPU type) every GPU
 * is plain and a node's F_n is the sum of its GPUs' own terms, so a step delta is the GPU's
 * state delta. Summed over the steps, the deltas telescope to F_n(after) - F_n(before). */
int gf_alloc__nev_init(const gf_alloc *a, const gf_alloc__pool *p, const gf_alloc__node *n,
                       gf_alloc__nev *e)
{
    if (!p->frag_built || !p->swsum || p->reference) return -1;
    for (size_t i = 0; i < n->n_gpus; i++) {
        const gf_alloc__gpu *g = a->gpus[n->gpus[i]];
        if (g->in_tree && !g->frag_in) return -1;
    }
    e->agg = p->agg;
    if (!e->agg) return 0;
    size_t np = n->pool_pos;
    const uint16_t *fc = p->fitcnt + np * GF_ALLOC__MAX_TYPES;
    const int64_t *nf = p->nofit + np * GF_ALLOC__MAX_TYPES;
    for (size_t m = 0; m < p->n_types; m++) {
        e->fc[m] = fc[m];
        e->nf[m] = nf[m];
    }
    e->tot = p->total[np];
    return 0;
}

/* The step: g (not yet committed) gets keys nk; commit != 0 applies it to e. */
static gf_alloc__fd nev_step(gf_alloc__pool *p, gf_alloc__nev *e, const gf_alloc__gpu *g,
                             const uint64_t nk[2], int commit)
{
    if (!e->agg) return commit ? 0 : gf_alloc__frag_delta_state(p, g, nk);
    int64_t s0 = g->s_ppm, s1 = share_ppm(p, g, nk);
    int64_t tot1 = e->tot - s0 + s1;
    gf_alloc__fd d = 0;
    for (size_t m = 0; m < p->n_types; m++) {
        const gf_alloc__type *t = &p->types[m];
        int f0 = (int)(g->fit[m / 64] >> (m % 64) & 1);
        int f1 = type_fits(t, g, nk);
        int64_t c1 = e->fc[m] - f0 + f1;
        int64_t nf1 = e->nf[m] - (f0 ? 0 : s0) + (f1 ? 0 : s1);
        if (commit) {
            e->fc[m] = c1;
            e->nf[m] = nf1;
            continue;
        }
        if (!t->sw) continue;
        int64_t old = e->fc[m] >= (int64_t)t->k ? e->nf[m] : e->tot;
        int64_t now = c1 >= (int64_t)t->k ? nf1 : tot1;
        d += (gf_alloc__fd)t->sw * (now - old);
    }
    if (commit) e->tot = tot1;
    return d;
}

gf_alloc__fd gf_alloc__nev_delta(gf_alloc__pool *p, gf_alloc__nev *e, const gf_alloc__gpu *g,
                                 const uint64_t nk[2])
{
    return nev_step(p, e, g, nk, 0);
}

void gf_alloc__nev_commit(gf_alloc__pool *p, gf_alloc__nev *e, const gf_alloc__gpu *g,
                          const uint64_t nk[2])
{
    nev_step(p, e, g, nk, 1);
}

/* Free share and weight of the types that do not fit, for a GPU like g with keys k. Type m fits
 * when its need is at most min(capacity, key) in both dimensions (type_fits), so the weight
 * that fits is read at the cell of those amounts (see gf_alloc__ftab). */
void gf_alloc__score(gf_alloc__pool *p, const gf_alloc__ftab *f, const gf_alloc__gpu *g,
                     const uint64_t k[2], int64_t *s, uint64_t *wnofit)
{
    *s = share_ppm(p, g, k);
    if (!f) { /* no memory for a table: test every type */
        uint64_t w = 0;
        for (size_t m = 0; m < p->n_types; m++)
            if (p->types[m].sw && !type_fits(&p->types[m], g, k)) w += p->types[m].sw;
        *wnofit = w;
        return;
    }
    gf_alloc__cell c;
    gf_alloc__cell_of(f, g->cap, k, &c);
    *wnofit = p->swsum - gf_alloc__wfit(f, &c);
}

static void state_score(gf_alloc__pool *p, const gf_alloc__gpu *g, const uint64_t k[2],
                        int64_t *s, uint64_t *wnofit)
{
    gf_alloc__score(p, gf_alloc__ftab_get(p), g, k, s, wnofit);
}

void gf_alloc__grp_score(gf_alloc__pool *p, gf_alloc__grp *G, const gf_alloc__gpu *rep)
{
    if (G->ver == p->sver) return;
    state_score(p, rep, rep->key, &G->s, &G->wnofit);
    G->ver = p->sver;
}

/* For a plain GPU every type m contributes w_m ((1 - fit_after) s_after - (1 - fit_before)
 * s_before) (see is_special), so the delta is h(after) - h(before) with h = s x W_nofit. */
gf_alloc__fd gf_alloc__frag_delta_state(gf_alloc__pool *p, const gf_alloc__gpu *g,
                                        const uint64_t nk[2])
{
    int64_t s0, s1;
    uint64_t w0, w1;
    state_score(p, g, g->key, &s0, &w0);
    state_score(p, g, nk, &s1, &w1);
    return (gf_alloc__fd)s1 * w1 - (gf_alloc__fd)s0 * w0;
}

/* F_n from scratch, with GPUs gs[i] seeing keys nk[i] instead of their own. */
static gf_alloc__fd node_frag(const gf_alloc *a, const gf_alloc__pool *p,
                              const gf_alloc__node *n, const uint32_t *gs,
                              const uint64_t (*nk)[2], size_t k, int override, const int used[2])
{
    gf_alloc__pool tmp_used; /* share_ppm only reads ->used */
    tmp_used.used[0] = used[0];
    tmp_used.used[1] = used[1];
    gf_alloc__fd f = 0;
    for (size_t m = 0; m < p->n_types; m++) {
        const gf_alloc__type *t = &p->types[m];
        if (!t->sw) continue;
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
        f += (gf_alloc__fd)t->sw * (cnt >= t->k ? nofit : tot);
    }
    return f;
}

gf_alloc__fd gf_alloc__frag_node(const gf_alloc *a, const gf_alloc__pool *p,
                                 const gf_alloc__node *n, const uint32_t *gs,
                                 const uint64_t (*nk)[2], size_t k)
{
    if (!p->swsum) return 0;
    int used[2];
    used_dims(p, used);
    return node_frag(a, p, n, gs, nk, k, k > 0, used);
}

gf_alloc__fd gf_alloc__frag_delta(const gf_alloc *a, const gf_alloc__pool *p,
                                  const gf_alloc__node *n, const uint32_t *gs,
                                  const uint64_t (*nk)[2], size_t k)
{
    if (!p->swsum) return 0;
    int used[2];
    used_dims(p, used);
    return node_frag(a, p, n, gs, nk, k, 1, used) - node_frag(a, p, n, gs, nk, k, 0, used);
}

void gf_alloc__frag_set_reference(gf_alloc *a, const char *pool, int on)
{
    gf_alloc__pool *p = gf_alloc__pool_get(a, pool);
    if (p) p->reference = (p->reference & 2) | (on != 0);
}
