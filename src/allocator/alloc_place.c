/* SPDX-License-Identifier: Apache-2.0 */
/* Placement: request validation, admission (oversubscription and QoS), the three strategies over
 * the free-capacity index, all-or-nothing multi-GPU placement, and the "why not" answer built
 * from the current state when nothing fits. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "allocator/alloc_internal.h"

/* Messages are cut to the caller's buffer on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include "gpufuse/units.h"

/* A validated request, in internal units. */
typedef struct nreq {
    uint64_t q[2], l[2];      /* [T] ignored when ppm */
    uint32_t q_ppm, l_ppm;
    int ppm;
    uint32_t k;
    int hi, remote;
    int models[GF_ALLOC_MAX_MODELS];
    size_t n_models;
    const gf_alloc_label *sel;
    size_t n_sel;
    const gf_alloc__node *node;
    const gf_alloc__gpu *gpu;
    int drive;                /* tree that orders candidates */
    uint64_t lb;              /* lower bound on the drive key */
    uint64_t gen;
    const uint32_t *excl;     /* GPUs already taken by this request */
    size_t n_excl;
    char mnames[GF_ALLOC_MAX_MODELS][GF_ALLOC_NAME_MAX]; /* last: not cleared per request */
} nreq;

static void need(const nreq *r, const gf_alloc__gpu *g, uint64_t q[2], uint64_t l[2])
{
    q[GF_ALLOC__V] = r->q[GF_ALLOC__V];
    l[GF_ALLOC__V] = r->l[GF_ALLOC__V];
    if (r->ppm) {
        uint64_t c = g->cap[GF_ALLOC__T];
        q[GF_ALLOC__T] = (c * r->q_ppm + GF_ALLOC__PPM - 1) / GF_ALLOC__PPM;
        l[GF_ALLOC__T] = (c * r->l_ppm + GF_ALLOC__PPM - 1) / GF_ALLOC__PPM;
    } else {
        q[GF_ALLOC__T] = r->q[GF_ALLOC__T];
        l[GF_ALLOC__T] = r->l[GF_ALLOC__T];
    }
}

static int fits(const gf_alloc__gpu *g, const nreq *r, uint64_t q[2], uint64_t l[2])
{
    need(r, g, q, l);
    for (int d = 0; d < 2; d++) {
        if (l[d] > g->cap[d]) return 0;
        if (g->req[d] + q[d] > g->eff[d] || g->lim[d] + l[d] > g->eff[d]) return 0;
        if (r->hi && g->req_hi[d] + q[d] > g->cap[d]) return 0;
    }
    return 1;
}

static int node_ok(const gf_alloc__node *n, const nreq *r)
{
    if (r->node && r->node != n) return 0;
    if (!r->n_sel) return 1;
    gf_alloc__node *w = (gf_alloc__node *)n; /* the selector cache only */
    if (w->sel_gen == r->gen) return w->sel_ok;
    int ok = 1;
    for (size_t i = 0; i < r->n_sel && ok; i++) {
        int hit = 0;
        for (size_t j = 0; j < n->n_labels && !hit; j++)
            hit = !strcmp(n->lkeys[j], r->sel[i].key) && !strcmp(n->lvals[j], r->sel[i].value);
        ok = hit;
    }
    w->sel_gen = r->gen;
    w->sel_ok = ok;
    return ok;
}

static int model_ok(const gf_alloc__gpu *g, const nreq *r)
{
    if (!r->n_models) return 1;
    for (size_t i = 0; i < r->n_models; i++)
        if (r->models[i] == g->model_id) return 1;
    return 0;
}

/* Filters that do not depend on free capacity (readiness excluded). */
static int static_ok(const gf_alloc *a, const gf_alloc__gpu *g, const nreq *r)
{
    if (r->gpu && r->gpu != g) return 0;
    return model_ok(g, r) && node_ok(a->nodes[g->node], r);
}

static int eligible(const gf_alloc *a, const gf_alloc__gpu *g, const nreq *r)
{
    if (!g->in_tree || !static_ok(a, g, r)) return 0;
    for (size_t i = 0; i < r->n_excl; i++)
        if (r->excl[i] == g->seq) return 0;
    return 1;
}

static void new_keys(const gf_alloc__gpu *g, const uint64_t l[2], uint64_t nk[2])
{
    for (int d = 0; d < 2; d++) nk[d] = g->key[d] > l[d] ? g->key[d] - l[d] : 0;
}

/* Is x a better choice than the incumbent (b, with its delta bd) for strategy s? Deltas are
 * exact integers, so the fast and the reference paths order candidates identically. */
static int better(const gf_alloc__gpu *x, gf_alloc__fd xd, const gf_alloc__gpu *b,
                  gf_alloc__fd bd, gf_alloc_strategy s, int t)
{
    if (!b) return 1;
    if (s == GF_ALLOC_LEAST_FRAG && xd != bd) return xd < bd;
    if (x->key[t] != b->key[t])
        return s == GF_ALLOC_SPREAD ? x->key[t] > b->key[t] : x->key[t] < b->key[t];
    return x->seq < b->seq;
}

/* Least-fragmentation delta of placing r's limits l on g: from scratch in a reference run (the
 * definition itself), else from the node's aggregates or, without special GPUs, g's state. */
static gf_alloc__fd lf_delta(gf_alloc *a, gf_alloc__pool *p, const gf_alloc__gpu *g,
                             const uint64_t l[2])
{
    uint64_t nk[2];
    new_keys(g, l, nk);
    if (p->reference & 1) {
        uint32_t s = g->seq;
        return gf_alloc__frag_delta(a, p, a->nodes[g->node], &s, (const uint64_t(*)[2])nk, 1);
    }
    return gf_alloc__frag_delta1(a, p, g, nk);
}

/* Best single GPU among a small explicit set (a node's GPUs). */
static gf_alloc__gpu *pick_in(gf_alloc *a, gf_alloc__pool *p, const uint32_t *set,
                              size_t n, const nreq *r)
{
    gf_alloc__gpu *best = NULL;
    gf_alloc__fd bd = 0;
    uint64_t q[2], l[2];
    for (size_t i = 0; i < n; i++) {
        gf_alloc__gpu *g = a->gpus[set[i]];
        if (!eligible(a, g, r) || !fits(g, r, q, l)) continue;
        gf_alloc__fd d = p->strategy == GF_ALLOC_LEAST_FRAG ? lf_delta(a, p, g, l) : 0;
        if (better(g, d, best, bd, p->strategy, r->drive)) {
            best = g;
            bd = d;
        }
    }
    return best;
}

/* The representative of a group for r: its smallest eligible seq, NULL when none. */
static gf_alloc__gpu *grp_rep(gf_alloc *a, const gf_alloc__grp *G, const nreq *r)
{
    gf_alloc__gpu *g = a->gpus[G->heap[0]];
    if (eligible(a, g, r)) return g;
    gf_alloc__gpu *e = NULL;
    for (uint32_t j = 1; j < G->n; j++) {
        gf_alloc__gpu *h = a->gpus[G->heap[j]];
        if ((!e || h->seq < e->seq) && eligible(a, h, r)) e = h;
    }
    return e;
}

/* Sorts runs by bound (insertion sort: a placement has a few). */
static void runs_sort(gf_alloc__run *u, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        gf_alloc__run x = u[i];
        size_t j = i;
        for (; j > 0 && u[j - 1].bound > x.bound; j--) u[j] = u[j - 1];
        u[j] = x;
    }
}

/* Appends a run; -1 when out of memory. */
static int run_push(gf_alloc__pool *p, size_t *nr, uint32_t b, uint32_t lo, uint32_t hi,
                    uint32_t ja, gf_alloc__fd bound)
{
    if (*nr == p->cap_runs) {
        size_t nc = p->cap_runs ? p->cap_runs * 2 : 64;
        gf_alloc__run *n = realloc(p->runs, nc * sizeof(*n));
        if (!n) return -1;
        p->runs = n;
        p->cap_runs = nc;
    }
    gf_alloc__run *u = &p->runs[(*nr)++];
    u->b = b;
    u->lo = lo;
    u->hi = hi;
    u->ja = ja;
    u->bound = bound;
    return 0;
}

/* First member of class b from position lo on whose free VRAM is >= v. */
static uint32_t member_ge(const gf_alloc__pool *p, const gf_alloc__bkt *b, uint32_t lo, uint64_t v)
{
    uint32_t hi = b->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (p->grps[b->m[mid]].key[GF_ALLOC__V] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The runs of class bi for r (see pick_lf_fast): its members with free VRAM >= the VRAM limit,
 * cut where the placement moves their VRAM into another cell of score table f. */
static int class_runs(gf_alloc__pool *p, const gf_alloc__ftab *f, uint32_t bi, const nreq *r,
                      size_t *nr)
{
    gf_alloc__bkt *b = &p->bkts[bi];
    const uint64_t *cap = b->cap;
    uint64_t l[2];
    l[GF_ALLOC__V] = r->l[GF_ALLOC__V];
    l[GF_ALLOC__T] = r->ppm ? (cap[GF_ALLOC__T] * r->l_ppm + GF_ALLOC__PPM - 1) / GF_ALLOC__PPM
                            : r->l[GF_ALLOC__T];
    if (l[GF_ALLOC__T] > cap[GF_ALLOC__T] || l[GF_ALLOC__V] > cap[GF_ALLOC__V]) return 0;
    uint32_t first = member_ge(p, b, 0, l[GF_ALLOC__V]);
    if (first == b->n) return 0;
    int64_t dmax = gf_alloc__share_drop_max(p, b->eff, l);
    if (!f) /* no table: one run, bounded by the whole weight */
        return run_push(p, nr, bi, first, b->n, 0, -(gf_alloc__fd)dmax * (gf_alloc__fd)p->swsum);
    /* The members' free compute: x = min(capacity, key) is in [xlo, xup] by the cell (a key
     * above the capacity is possible only when xup reaches it), and the key is at least the
     * least member's (kept: it makes the bound on shares after the placement tight). */
    const uint64_t *na = f->need[GF_ALLOC__NA], *ns = f->need[GF_ALLOC__NS];
    uint64_t ct = cap[GF_ALLOC__T], xlo = 0, xup = ct;
    if (b->c.a) xlo = na[b->c.a - 1];
    if (b->c.a < f->n[GF_ALLOC__NA] && na[b->c.a] - 1 < xup) xup = na[b->c.a] - 1;
    if (b->c.s) {
        uint64_t x = (ns[b->c.s - 1] * ct + GF_ALLOC__PPM - 1) / GF_ALLOC__PPM;
        if (x > xlo) xlo = x;
    }
    if (b->c.s < f->n[GF_ALLOC__NS]) {
        uint64_t x = (ns[b->c.s] * ct + GF_ALLOC__PPM - 1) / GF_ALLOC__PPM - 1;
        if (x < xup) xup = x;
    }
    uint64_t kup = xup >= ct ? b->eff[GF_ALLOC__T] : xup;
    uint64_t klo = gf_alloc__bkt_min_t(p, b);
    if (xlo > klo) klo = xlo;
    if (kup < l[GF_ALLOC__T]) return 0;
    if (klo < l[GF_ALLOC__T]) klo = l[GF_ALLOC__T]; /* it fits: key >= limit */
    /* after the placement x is at most xa, so its ranks at most ia, is */
    uint64_t xa = kup - l[GF_ALLOC__T] < ct ? kup - l[GF_ALLOC__T] : ct;
    gf_alloc__cell ca = {gf_alloc__rank(na, f->n[GF_ALLOC__NA], xa),
                         gf_alloc__rank(ns, f->n[GF_ALLOC__NS], gf_alloc__ppm_of_cap(xa, ct)), 0};
    uint64_t wn = p->swsum - gf_alloc__wfit(f, &b->c);
    const uint64_t *nv = f->need[GF_ALLOC__NV];
    for (uint32_t pos = first; pos < b->n;) {
        uint64_t y = p->grps[b->m[pos]].key[GF_ALLOC__V], ya = y - l[GF_ALLOC__V];
        ca.v = gf_alloc__rank(nv, f->n[GF_ALLOC__NV], ya < cap[GF_ALLOC__V] ? ya : cap[GF_ALLOC__V]);
        uint32_t end = b->n;
        if (ca.v < f->n[GF_ALLOC__NV] && nv[ca.v] <= cap[GF_ALLOC__V])
            end = member_ge(p, b, pos, nv[ca.v] + l[GF_ALLOC__V]);
        /* Wn' >= wn1 (the cell after is at most ca), s' >= s1 (keys after are at least
         * (klo - l, ya)); delta = s'(Wn' - Wn) - (s - s')Wn >= s1 (wn1 - Wn) - dmax Wn */
        uint64_t wn1 = p->swsum - gf_alloc__wfit(f, &ca);
        if (wn1 < wn) wn1 = wn;
        uint64_t ka[2];
        ka[GF_ALLOC__T] = klo - l[GF_ALLOC__T];
        ka[GF_ALLOC__V] = ya;
        int64_t s1 = gf_alloc__share(p, b->eff, ka);
        gf_alloc__fd bound = (gf_alloc__fd)s1 * (gf_alloc__fd)(wn1 - wn) -
                             (gf_alloc__fd)dmax * (gf_alloc__fd)wn;
        if (run_push(p, nr, bi, pos, end, ca.v, bound)) return -1;
        pos = end;
    }
    return 0;
}

/* Least-fragmentation over the whole pool, fast; same choice as scoring every fitting GPU.
 * Plain GPUs of one state group share the delta and the key, so the group's smallest eligible
 * seq represents it; groups sit in score classes (one GPU shape, one cell of the score table,
 * hence one weight Wn of the types that do not fit). A class's members that can take r are cut
 * into runs whose placement lands in one VRAM cell; each run gets a lower bound on its deltas,
 * and runs are scored in ascending bound until the next bound exceeds the best delta found.
 * Within a run members go by ascending free VRAM, so when r is driven by VRAM a member whose
 * delta equals the run's bound ends the run once the free VRAM grows (the rest can only tie
 * and lose on the key). Special GPUs are scored one by one. *out is the choice (NULL: none);
 * returns -1 when out of memory (the pool then scores from scratch). */
static int pick_lf_fast(gf_alloc *a, gf_alloc__pool *p, const nreq *r, gf_alloc__gpu **out)
{
    gf_alloc__gpu *best = NULL;
    gf_alloc__fd bd = 0;
    uint64_t q[2], l[2], nk[2];
    int t = r->drive;
    size_t nr = 0;
    const gf_alloc__ftab *f = gf_alloc__ftab_get(p);
    for (size_t k = 0; k < p->n_bact; k++)
        if (class_runs(p, f, p->bact[k], r, &nr)) return -1;
    runs_sort(p->runs, nr);
    for (size_t k = 0; k < nr; k++) {
        const gf_alloc__run *u = &p->runs[k];
        if (best && u->bound > bd) break;
        const gf_alloc__bkt *b = &p->bkts[u->b];
        uint64_t ct = b->cap[GF_ALLOC__T];
        int hit = 0;
        uint64_t hit_v = 0;
        for (uint32_t m = u->lo; m < u->hi; m++) {
            gf_alloc__grp *G = &p->grps[b->m[m]];
            if (hit && G->key[GF_ALLOC__V] > hit_v) break;
            if (!fits(a->gpus[G->heap[0]], r, q, l)) continue; /* one state: all or none fit */
            gf_alloc__gpu *g = grp_rep(a, G, r);
            if (!g) continue;
            gf_alloc__grp_score(p, G, g);
            new_keys(g, l, nk);
            int64_t s1;
            uint64_t w1;
            if (f) {
                /* after the placement the VRAM is in cell u->ja, the compute ranks are at
                 * most the class's: found by stepping down */
                uint64_t x = nk[GF_ALLOC__T] < ct ? nk[GF_ALLOC__T] : ct;
                uint64_t xp = gf_alloc__ppm_of_cap(x, ct);
                gf_alloc__cell c = b->c;
                c.v = u->ja;
                while (c.a && f->need[GF_ALLOC__NA][c.a - 1] > x) c.a--;
                while (c.s && f->need[GF_ALLOC__NS][c.s - 1] > xp) c.s--;
                s1 = gf_alloc__share(p, b->eff, nk);
                w1 = p->swsum - gf_alloc__wfit(f, &c);
            } else {
                gf_alloc__score(p, NULL, g, nk, &s1, &w1);
            }
            gf_alloc__fd d = (gf_alloc__fd)s1 * w1 - (gf_alloc__fd)G->s * G->wnofit;
            if (better(g, d, best, bd, GF_ALLOC_LEAST_FRAG, t)) {
                best = g;
                bd = d;
            }
            if (t == GF_ALLOC__V && d == u->bound) {
                hit = 1;
                hit_v = G->key[GF_ALLOC__V];
            }
        }
    }
    for (size_t i = 0; i < p->n_spec; i++) {
        gf_alloc__gpu *g = a->gpus[p->spec[i]];
        if (g->key[t] < r->lb || !eligible(a, g, r) || !fits(g, r, q, l)) continue;
        new_keys(g, l, nk);
        gf_alloc__fd d = gf_alloc__frag_delta1(a, p, g, nk);
        if (better(g, d, best, bd, GF_ALLOC_LEAST_FRAG, t)) {
            best = g;
            bd = d;
        }
    }
    *out = best;
    return 0;
}

/* Best single GPU in the pool, through the index. */
static gf_alloc__gpu *pick_one(gf_alloc *a, gf_alloc__pool *p, const nreq *r)
{
    uint64_t q[2], l[2];
    if (r->gpu) {
        uint32_t s = r->gpu->seq;
        return pick_in(a, p, &s, 1, r);
    }
    if (r->node) return pick_in(a, p, r->node->gpus, r->node->n_gpus, r);
    int t = r->drive;
    if (p->strategy == GF_ALLOC_SPREAD) {
        /* distinct keys from the top; within a key, ascending seq */
        gf_alloc__gpu *top = gf_alloc__tree_le(a, p, t, UINT64_MAX, UINT32_MAX);
        while (top && top->key[t] >= r->lb) {
            uint64_t kv = top->key[t];
            for (gf_alloc__gpu *g = gf_alloc__tree_ge(a, p, t, kv, 0); g && g->key[t] == kv;
                 g = gf_alloc__tree_ge(a, p, t, kv, g->seq + 1))
                if (eligible(a, g, r) && fits(g, r, q, l)) return g;
            top = kv ? gf_alloc__tree_le(a, p, t, kv - 1, UINT32_MAX) : NULL;
        }
        return NULL;
    }
    if (p->strategy == GF_ALLOC_LEAST_FRAG && p->frag_built && !p->reference) {
        gf_alloc__gpu *g;
        if (!gf_alloc__bkt_sync(p) && !pick_lf_fast(a, p, r, &g)) return g;
        p->reference |= 2; /* out of memory: the scan below scores from scratch */
    }
    gf_alloc__gpu *best = NULL;
    gf_alloc__fd bd = 0;
    for (gf_alloc__gpu *g = gf_alloc__tree_ge(a, p, t, r->lb, 0); g;
         g = gf_alloc__tree_ge(a, p, t, g->key[t], g->seq + 1)) {
        if (!eligible(a, g, r) || !fits(g, r, q, l)) continue;
        if (p->strategy == GF_ALLOC_BINPACK) return g;
        gf_alloc__fd d = lf_delta(a, p, g, l);
        if (better(g, d, best, bd, p->strategy, t)) {
            best = g;
            bd = d;
        }
    }
    return best;
}

/* Does a candidate before cand[c] (still unchosen) have g's state? Candidates are in seq order
 * and GPUs of one state on one node give the same delta and key, so the earlier one wins. */
static int same_state_before(const gf_alloc *a, const uint32_t *cand, size_t c,
                             const gf_alloc__gpu *g)
{
    for (size_t j = 0; j < c; j++) {
        if (cand[j] == UINT32_MAX) continue;
        const gf_alloc__gpu *h = a->gpus[cand[j]];
        if (!memcmp(h->key, g->key, sizeof(g->key)) && !memcmp(h->cap, g->cap, sizeof(g->cap)) &&
            !memcmp(h->eff, g->eff, sizeof(g->eff)) && !memcmp(h->req, g->req, sizeof(g->req)) &&
            !memcmp(h->req_hi, g->req_hi, sizeof(g->req_hi)))
            return 1;
    }
    return 0;
}

/* Local multi-GPU on node n: 0 when fewer than k of its GPUs take r; else 1, chosen[0..k) its GPUs
 * by the strategy and *score the node's (the smallest wins; ties to the lower position). */
static int node_choose(gf_alloc *a, gf_alloc__pool *p, const nreq *r, const gf_alloc__node *n,
                       gf_alloc__nev *ev, uint32_t *chosen, gf_alloc__fd *score)
{
    uint32_t cand[256];
    uint64_t nks[GF_ALLOC_MAX_GPUS][2];
    uint64_t q[2], l[2];
    int t = r->drive;
    if (!n->ready || !node_ok(n, r)) return 0;
    size_t nc = 0;
    uint64_t free_sum = 0;
    for (size_t i = 0; i < n->n_gpus && nc < 256; i++) {
        gf_alloc__gpu *g = a->gpus[n->gpus[i]];
        free_sum += g->key[t];
        if (eligible(a, g, r) && fits(g, r, q, l)) cand[nc++] = g->seq;
    }
    if (nc < r->k) return 0;
    if (p->strategy != GF_ALLOC_LEAST_FRAG) {
        /* the k best GPUs of this node by the strategy's order (selection sort, k small) */
        for (uint32_t i = 0; i < r->k; i++) {
            size_t bi = i;
            for (size_t c = i + 1; c < nc; c++)
                if (better(a->gpus[cand[c]], 0, a->gpus[cand[bi]], 0, p->strategy, t)) bi = c;
            uint32_t tmp = cand[i];
            cand[i] = cand[bi];
            cand[bi] = tmp;
            chosen[i] = cand[i];
        }
        *score = p->strategy == GF_ALLOC_SPREAD ? -(gf_alloc__fd)free_sum : (gf_alloc__fd)free_sum;
        return 1;
    }
    /* greedy: each next GPU is the one that grows the node's fragmentation least; the node
     * evaluator gives each step's delta from the aggregates, else F_n is recomputed from every
     * GPU of the node (the reference; the same integers) */
    int fast = gf_alloc__nev_init(a, p, n, ev) == 0;
    gf_alloc__fd d = 0, f0 = fast ? 0 : gf_alloc__frag_node(a, p, n, NULL, NULL, 0);
    for (uint32_t i = 0; i < r->k; i++) {
        int bi = -1;
        gf_alloc__fd bd = 0;
        for (size_t c = 0; c < nc; c++) {
            if (cand[c] == UINT32_MAX) continue;
            gf_alloc__gpu *g = a->gpus[cand[c]];
            if (same_state_before(a, cand, c, g)) continue; /* it would tie and lose */
            fits(g, r, q, l);
            chosen[i] = g->seq;
            new_keys(g, l, nks[i]);
            gf_alloc__fd dd =
                fast ? d + gf_alloc__nev_delta(p, ev, g, nks[i])
                     : gf_alloc__frag_node(a, p, n, chosen, (const uint64_t(*)[2])nks, i + 1) - f0;
            if (bi < 0 || dd < bd ||
                (dd == bd && better(g, 0, a->gpus[cand[bi]], 0, GF_ALLOC_BINPACK, t))) {
                bi = (int)c;
                bd = dd;
            }
        }
        gf_alloc__gpu *g = a->gpus[cand[bi]];
        fits(g, r, q, l);
        chosen[i] = g->seq;
        new_keys(g, l, nks[i]);
        if (fast) gf_alloc__nev_commit(p, ev, g, nks[i]);
        cand[bi] = UINT32_MAX;
        d = bd;
    }
    *score = d;
    return 1;
}

/* Binpack and spread through the node order: nodes by (sum of keys, position), ascending for
 * binpack and descending (ties still by ascending position) for spread; the first node that takes
 * r is the one the scan would choose. Nodes whose sum is below k x r's least key cannot. 1 when
 * a node was found (out filled), 0 when none, -1 when the order is unavailable. */
static int pick_node_ordered(gf_alloc *a, gf_alloc__pool *p, const nreq *r, uint32_t *out)
{
    if (gf_alloc__nord_sync(a, p)) return -1;
    int t = r->drive;
    uint64_t need = r->k * r->lb;
    const uint32_t *o = p->nord[t];
    size_t n = p->n_nord;
    gf_alloc__fd sc;
    if (p->strategy == GF_ALLOC_BINPACK) {
        size_t lo = 0, hi = n; /* the first with ksum >= need */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (a->nodes[o[mid]]->ksum[t] < need) lo = mid + 1;
            else hi = mid;
        }
        for (size_t i = lo; i < n; i++)
            if (node_choose(a, p, r, a->nodes[o[i]], NULL, out, &sc)) return 1;
        return 0;
    }
    for (size_t end = n; end > 0;) { /* blocks of one sum, from the top */
        uint64_t v = a->nodes[o[end - 1]]->ksum[t];
        if (v < need) break;
        size_t beg = end - 1;
        while (beg > 0 && a->nodes[o[beg - 1]]->ksum[t] == v) beg--;
        for (size_t i = beg; i < end; i++)
            if (node_choose(a, p, r, a->nodes[o[i]], NULL, out, &sc)) return 1;
        end = beg;
    }
    return 0;
}

/* Local multi-GPU: the node and its k GPUs, by strategy. Fills out[0..k). Binpack and spread go
 * through the node order; least-fragmentation (and a reference run, or no memory for the order)
 * scans every node. */
static int pick_node(gf_alloc *a, gf_alloc__pool *p, const nreq *r, uint32_t *out)
{
    if (p->strategy != GF_ALLOC_LEAST_FRAG && !(p->reference & 1)) {
        int found = pick_node_ordered(a, p, r, out);
        if (found >= 0) return found;
    }
    gf_alloc__nev ev[1]; /* least-fragmentation's node evaluator, 4 KiB */
    uint32_t chosen[GF_ALLOC_MAX_GPUS];
    const gf_alloc__node *bestn = NULL;
    gf_alloc__fd bscore = 0, score;
    for (size_t ni = 0; ni < p->n_nodes; ni++) {
        const gf_alloc__node *n = a->nodes[p->nodes[ni]];
        if (!node_choose(a, p, r, n, ev, chosen, &score)) continue;
        if (!bestn || score < bscore) {
            bestn = n;
            bscore = score;
            memcpy(out, chosen, r->k * sizeof(*chosen));
        }
    }
    return bestn != NULL;
}

/* ---- validation --------------------------------------------------------------------------- */

static int bad_num(double x, double max)
{
    return !isfinite(x) || x < 0 || x > max;
}

#define INVALID(...)                                                                          \
    do {                                                                                      \
        snprintf(res->msg, sizeof(res->msg), __VA_ARGS__);                                    \
        res->why = GF_ALLOC_WHY_INVALID;                                                      \
        return GF_EINVAL;                                                                     \
    } while (0)

static uint64_t to_ut(double tf)
{
    return (uint64_t)ceil(tf * GF_ALLOC__UT - 1e-6);
}

static gf_status validate(const gf_alloc *a, const gf_alloc_request *q, nreq *r,
                          gf_alloc_result *res)
{
    memset(r, 0, offsetof(nreq, mnames));
    if (q->pool && *q->pool && !gf_alloc__name_ok(q->pool))
        INVALID("pool: must be 1..%d printable bytes", GF_ALLOC_NAME_MAX - 1);
    if (bad_num(q->tflops_request, GF_ALLOC__MAX_TFLOPS))
        INVALID("tflops_request: %g: must be a finite number in [0, %g]", q->tflops_request,
                GF_ALLOC__MAX_TFLOPS);
    if (bad_num(q->tflops_limit, GF_ALLOC__MAX_TFLOPS))
        INVALID("tflops_limit: %g: must be a finite number in [0, %g]", q->tflops_limit,
                GF_ALLOC__MAX_TFLOPS);
    if (bad_num(q->percent_request, 100))
        INVALID("percent_request: %g: must be a finite number in [0, 100]", q->percent_request);
    if (bad_num(q->percent_limit, 100))
        INVALID("percent_limit: %g: must be a finite number in [0, 100]", q->percent_limit);
    if (q->vram_request > GF_ALLOC__MAX_VRAM || q->vram_limit > GF_ALLOC__MAX_VRAM)
        INVALID("vram: %llu/%llu bytes: request and limit must be at most 2^50 bytes",
                (unsigned long long)q->vram_request, (unsigned long long)q->vram_limit);
    int tf = q->tflops_request > 0 || q->tflops_limit > 0;
    int pc = q->percent_request > 0 || q->percent_limit > 0;
    if (tf && pc)
        INVALID("compute: give TFLOPs or percent, not both (tflops %g/%g, percent %g/%g)",
                q->tflops_request, q->tflops_limit, q->percent_request, q->percent_limit);
    if (pc) {
        r->ppm = 1;
        r->q_ppm = (uint32_t)llround(q->percent_request * 10000.0);
        r->l_ppm = q->percent_limit > 0 ? (uint32_t)llround(q->percent_limit * 10000.0) : r->q_ppm;
        if (r->l_ppm < r->q_ppm)
            INVALID("percent_limit: %g is below percent_request %g", q->percent_limit,
                    q->percent_request);
    } else {
        r->q[GF_ALLOC__T] = to_ut(q->tflops_request);
        r->l[GF_ALLOC__T] = q->tflops_limit > 0 ? to_ut(q->tflops_limit) : r->q[GF_ALLOC__T];
        if (r->l[GF_ALLOC__T] < r->q[GF_ALLOC__T])
            INVALID("tflops_limit: %g is below tflops_request %g", q->tflops_limit,
                    q->tflops_request);
    }
    r->q[GF_ALLOC__V] = q->vram_request;
    r->l[GF_ALLOC__V] = q->vram_limit ? q->vram_limit : q->vram_request;
    if (r->l[GF_ALLOC__V] < r->q[GF_ALLOC__V])
        INVALID("vram_limit: %llu bytes is below vram_request %llu bytes",
                (unsigned long long)q->vram_limit, (unsigned long long)q->vram_request);
    if (!r->l[GF_ALLOC__V] && !r->l[GF_ALLOC__T] && !r->l_ppm)
        INVALID("request asks for nothing: give a VRAM or compute request (or limit)");
    r->k = q->gpu_count ? q->gpu_count : 1;
    if (r->k > GF_ALLOC_MAX_GPUS)
        INVALID("gpu_count: %u: must be 1..%d", q->gpu_count, GF_ALLOC_MAX_GPUS);
    if (!gf_alloc_qos_name(q->qos)) INVALID("qos: %d: use low, medium, high or critical", (int)q->qos);
    r->hi = q->qos >= GF_ALLOC_QOS_HIGH;
    r->remote = q->remote != 0;
    if (q->n_models > GF_ALLOC_MAX_MODELS || (q->n_models && !q->models))
        INVALID("models: %zu given: at most %d", q->n_models, GF_ALLOC_MAX_MODELS);
    for (size_t i = 0; i < q->n_models; i++) {
        if (!gf_alloc__name_ok(q->models[i]))
            INVALID("models[%zu]: must be 1..%d printable bytes", i, GF_ALLOC_NAME_MAX - 1);
        gf_alloc__canon_model(q->models[i], r->mnames[i]);
        r->models[i] = gf_alloc__model_lookup(a, r->mnames[i]);
    }
    r->n_models = q->n_models;
    if (q->n_selector > GF_ALLOC_MAX_LABELS || (q->n_selector && !q->selector))
        INVALID("node selector: %zu terms: at most %d", q->n_selector, GF_ALLOC_MAX_LABELS);
    for (size_t i = 0; i < q->n_selector; i++)
        if (!gf_alloc__name_ok(q->selector[i].key) || !q->selector[i].value)
            INVALID("node selector term %zu: key must be 1..%d printable bytes and value set", i,
                    GF_ALLOC_NAME_MAX - 1);
    r->sel = q->selector;
    r->n_sel = q->n_selector;
    if (q->gpu && r->k > 1)
        INVALID("gpu: a specific GPU (%s) takes gpu_count 1, not %u", q->gpu, r->k);
    return GF_OK;
}

/* ---- why not ------------------------------------------------------------------------------ */

static void gpu_where(const gf_alloc *a, const gf_alloc__gpu *g, char *buf, size_t len)
{
    snprintf(buf, len, "%s GPU %u", a->nodes[g->node]->name, g->index);
}

/* "12 GiB" or "3.5 TFLOPs" */
static void amount(int d, uint64_t v, char *buf, size_t len)
{
    if (d == GF_ALLOC__V) {
        gf_format_size(v, buf, len);
    } else {
        char t[48];
        gf_alloc__fmt_tflops(v, t, sizeof(t));
        snprintf(buf, len, "%s TFLOPs", t);
    }
}

static void asked(const nreq *r, int d, int lim, char *buf, size_t len)
{
    if (d == GF_ALLOC__T && r->ppm) {
        char t[48];
        uint32_t v = lim ? r->l_ppm : r->q_ppm;
        gf_alloc__fmt_tflops((uint64_t)v, t, sizeof(t)); /* ppm/1e6 of a GPU = percent/100 */
        double pct = (double)v / 10000.0;
        snprintf(buf, len, "%g%% of a GPU", pct);
        (void)t;
    } else {
        amount(d, lim ? r->l[d] : r->q[d], buf, len);
    }
}

/* Free amount for display: TFLOPs with percent requests shows the share too. */
static void free_amount(const nreq *r, const gf_alloc__gpu *g, int d, uint64_t v, char *buf,
                        size_t len)
{
    char t[64];
    amount(d, v, t, sizeof(t));
    if (d == GF_ALLOC__T && r->ppm)
        snprintf(buf, len, "%g%% (%s)", floor((double)v * 1000000.0 / (double)g->cap[d]) / 10000.0,
                 t);
    else
        snprintf(buf, len, "%s", t);
}

static void sel_text(const nreq *r, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->n_sel && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s=%s", i ? "," : "", r->sel[i].key,
                              r->sel[i].value);
}

typedef struct best {
    uint64_t v;
    const gf_alloc__gpu *g;
} best;

static void best_put(best *b, uint64_t v, const gf_alloc__gpu *g)
{
    if (!b->g || v > b->v) {
        b->v = v;
        b->g = g;
    }
}

static void explain(gf_alloc *a, const gf_alloc__pool *p, const nreq *r, gf_alloc_result *res)
{
    char *m = res->msg;
    size_t ml = sizeof(res->msg);
    if (!p->n_gpus) {
        res->why = GF_ALLOC_WHY_NO_GPUS;
        snprintf(m, ml, "pool '%s' has no GPUs; start an agent on a GPU node in it", p->name);
        return;
    }
    size_t n_model = 0, n_static = 0, n_ready = 0;
    for (size_t i = 0; i < p->n_gpus; i++) {
        const gf_alloc__gpu *g = a->gpus[p->gpus[i]];
        if (!model_ok(g, r)) continue;
        n_model++;
        if (!static_ok(a, g, r)) continue;
        n_static++;
        if (g->in_tree) n_ready++;
    }
    if (!n_model) {
        res->why = GF_ALLOC_WHY_MODEL;
        size_t o = (size_t)snprintf(m, ml, "no GPU of model ");
        for (size_t i = 0; i < r->n_models && o < ml; i++)
            o += (size_t)snprintf(m + o, ml - o, "%s%s", i ? " or " : "", r->mnames[i]);
        if (o < ml) o += (size_t)snprintf(m + o, ml - o, " in pool '%s' (models there: ", p->name);
        /* the pool's models, sorted, each once */
        const char *last = NULL;
        for (;;) {
            const char *next = NULL;
            for (size_t i = 0; i < p->n_gpus; i++) {
                const char *mm = a->gpus[p->gpus[i]]->model;
                if ((!last || strcmp(mm, last) > 0) && (!next || strcmp(mm, next) < 0)) next = mm;
            }
            if (!next) break;
            if (o < ml) o += (size_t)snprintf(m + o, ml - o, "%s%s", last ? ", " : "", next);
            last = next;
        }
        if (o < ml) snprintf(m + o, ml - o, ")");
        return;
    }
    char sel[256];
    sel_text(r, sel, sizeof(sel));
    if (!n_static || !n_ready) {
        res->why = n_static ? GF_ALLOC_WHY_NOT_READY : GF_ALLOC_WHY_SELECTOR;
        if (r->gpu)
            snprintf(m, ml, "GPU %s (%s, model %s) %s", r->gpu->uuid, a->nodes[r->gpu->node]->name,
                     r->gpu->model, n_static ? "is on a NotReady node" :
                     "does not match the request's models or node selector");
        else if (r->node)
            snprintf(m, ml, "node '%s' %s", r->node->name,
                     n_static ? "is NotReady" : "has no GPU that matches the request's models "
                                                "and node selector");
        else if (r->n_sel)
            snprintf(m, ml, "node selector %s matches no ready node in pool '%s'", sel, p->name);
        else
            snprintf(m, ml, "no ready node in pool '%s' has a matching GPU (every such node is "
                     "NotReady)", p->name);
        return;
    }
    /* capacity over the eligible, ready GPUs */
    best capb[2] = {{0}}, freq[2] = {{0}}, flim[2] = {{0}}, fhi[2] = {{0}}, key[2] = {{0}};
    size_t n_ok[2] = {0, 0}, n_both = 0;
    for (size_t i = 0; i < p->n_gpus; i++) {
        const gf_alloc__gpu *g = a->gpus[p->gpus[i]];
        if (!g->in_tree || !static_ok(a, g, r)) continue;
        uint64_t q[2], l[2];
        need(r, g, q, l);
        int ok[2];
        for (int d = 0; d < 2; d++) {
            best_put(&capb[d], g->cap[d], g);
            best_put(&freq[d], g->eff[d] > g->req[d] ? g->eff[d] - g->req[d] : 0, g);
            best_put(&flim[d], g->key[d], g);
            best_put(&fhi[d], g->cap[d] > g->req_hi[d] ? g->cap[d] - g->req_hi[d] : 0, g);
            best_put(&key[d], g->key[d], g);
            ok[d] = l[d] <= g->cap[d] && g->req[d] + q[d] <= g->eff[d] &&
                    g->lim[d] + l[d] <= g->eff[d] && (!r->hi || g->req_hi[d] + q[d] <= g->cap[d]);
            n_ok[d] += ok[d];
        }
        n_both += ok[0] && ok[1];
    }
    static const char *dname[2] = {"compute", "VRAM"};
    char w[96], x[96], y[96];
    for (int d = GF_ALLOC__V; d >= GF_ALLOC__T; d--) {
        if (n_ok[d]) continue;
        res->why = d == GF_ALLOC__V ? GF_ALLOC_WHY_VRAM : GF_ALLOC_WHY_TFLOPS;
        /* compare in this request's terms on the GPU that has the most of each measure */
        uint64_t q[2], l[2];
        need(r, capb[d].g, q, l);
        if (l[d] > capb[d].v) {
            gpu_where(a, capb[d].g, w, sizeof(w));
            asked(r, d, 1, x, sizeof(x));
            amount(d, capb[d].v, y, sizeof(y));
            snprintf(m, ml, "%s limit %s is more than any GPU in pool '%s' has (largest: %s on %s)",
                     dname[d], x, p->name, y, w);
            return;
        }
        need(r, freq[d].g, q, l);
        if (q[d] > freq[d].v) {
            gpu_where(a, freq[d].g, w, sizeof(w));
            free_amount(r, freq[d].g, d, freq[d].v, y, sizeof(y));
            asked(r, d, 0, x, sizeof(x));
            snprintf(m, ml, "largest free %s in pool '%s' is %s on %s; asked %s", dname[d], p->name,
                     y, w, x);
            return;
        }
        need(r, fhi[d].g, q, l);
        if (r->hi && q[d] > fhi[d].v) {
            res->why = GF_ALLOC_WHY_QOS;
            gpu_where(a, fhi[d].g, w, sizeof(w));
            free_amount(r, fhi[d].g, d, fhi[d].v, y, sizeof(y));
            asked(r, d, 0, x, sizeof(x));
            snprintf(m, ml, "largest %s free to QoS high/critical in pool '%s' is %s on %s "
                     "(high and critical requests are never oversubscribed); asked %s", dname[d],
                     p->name, y, w, x);
            return;
        }
        need(r, flim[d].g, q, l);
        if (l[d] > flim[d].v) {
            gpu_where(a, flim[d].g, w, sizeof(w));
            free_amount(r, flim[d].g, d, flim[d].v, y, sizeof(y));
            asked(r, d, 1, x, sizeof(x));
            snprintf(m, ml, "largest %s left for limits in pool '%s' is %s on %s (limits count "
                     "against capacity x %g); limit asks %s", dname[d], p->name, y, w,
                     p->ratio[d], x);
            return;
        }
        asked(r, d, 0, x, sizeof(x));
        asked(r, d, 1, y, sizeof(y));
        snprintf(m, ml, "no GPU in pool '%s' has room for %s request %s with limit %s at once",
                 p->name, dname[d], x, y);
        return;
    }
    if (!n_both) {
        res->why = GF_ALLOC_WHY_BOTH;
        char v1[48], t1[48], v2[48], t2[48], wv[96], wt[96];
        const gf_alloc__gpu *gv = key[GF_ALLOC__V].g, *gt = key[GF_ALLOC__T].g;
        asked(r, GF_ALLOC__V, 1, x, sizeof(x));
        asked(r, GF_ALLOC__T, 1, y, sizeof(y));
        amount(GF_ALLOC__V, gv->key[GF_ALLOC__V], v1, sizeof(v1));
        amount(GF_ALLOC__T, gv->key[GF_ALLOC__T], t1, sizeof(t1));
        amount(GF_ALLOC__V, gt->key[GF_ALLOC__V], v2, sizeof(v2));
        amount(GF_ALLOC__T, gt->key[GF_ALLOC__T], t2, sizeof(t2));
        gpu_where(a, gv, wv, sizeof(wv));
        gpu_where(a, gt, wt, sizeof(wt));
        snprintf(m, ml, "no GPU in pool '%s' has %s VRAM and %s free at once (most VRAM free: %s "
                 "with %s on %s; most compute free: %s with %s on %s)", p->name, x, y, v1, t1, wv,
                 t2, v2, wt);
        return;
    }
    res->why = GF_ALLOC_WHY_MULTI;
    if (r->remote) {
        snprintf(m, ml, "asked %u GPUs; only %zu GPU%s in pool '%s' can take the request", r->k,
                 n_both, n_both == 1 ? "" : "s", p->name);
        return;
    }
    size_t bestc = 0;
    const gf_alloc__node *bn = NULL;
    for (size_t ni = 0; ni < p->n_nodes; ni++) {
        const gf_alloc__node *n = a->nodes[p->nodes[ni]];
        if (!n->ready || !node_ok(n, r)) continue;
        size_t c = 0;
        uint64_t q[2], l[2];
        for (size_t i = 0; i < n->n_gpus; i++) {
            const gf_alloc__gpu *g = a->gpus[n->gpus[i]];
            if (static_ok(a, g, r) && fits(g, r, q, l)) c++;
        }
        if (c > bestc) {
            bestc = c;
            bn = n;
        }
    }
    snprintf(m, ml, "asked %u GPUs on one node; at most %zu fit on one node in pool '%s' (%s); "
             "ask for fewer GPUs or a remote vGPU", r->k, bestc, p->name, bn ? bn->name : "-");
}

/* ---- place -------------------------------------------------------------------------------- */

static void fill(const gf_alloc *a, const gf_alloc__part *parts, uint32_t n, gf_alloc_result *res)
{
    res->n = n;
    for (uint32_t i = 0; i < n; i++) {
        const gf_alloc__gpu *g = a->gpus[parts[i].gpu];
        gf_alloc_placement *pl = &res->placements[i];
        snprintf(pl->node, sizeof(pl->node), "%s", a->nodes[g->node]->name);
        snprintf(pl->gpu_uuid, sizeof(pl->gpu_uuid), "%s", g->uuid);
        pl->gpu_index = g->index;
        pl->tflops_request = (double)parts[i].req[GF_ALLOC__T] / GF_ALLOC__UT;
        pl->tflops_limit = (double)parts[i].lim[GF_ALLOC__T] / GF_ALLOC__UT;
        pl->vram_request = parts[i].req[GF_ALLOC__V];
        pl->vram_limit = parts[i].lim[GF_ALLOC__V];
    }
}

static void pool_list(const gf_alloc *a, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < a->n_pools && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", a->pools[i]->name);
    if (!a->n_pools) snprintf(buf, len, "none");
}

gf_status gf_alloc_place(gf_alloc *a, const char *id, const gf_alloc_request *req,
                         gf_alloc_result *res)
{
    if (!res) return GF_EINVAL;
    res->n = 0;
    res->why = GF_ALLOC_WHY_NONE;
    res->msg[0] = '\0';
    if (!a || !req) {
        res->why = GF_ALLOC_WHY_INVALID;
        snprintf(res->msg, sizeof(res->msg), "no allocator or no request given");
        return GF_EINVAL;
    }
    nreq r;
    gf_status st = validate(a, req, &r, res);
    if (st != GF_OK) return st;
    if (id && !gf_alloc__name_ok(id)) {
        res->why = GF_ALLOC_WHY_INVALID;
        snprintf(res->msg, sizeof(res->msg), "allocation id: must be 1..%d printable bytes",
                 GF_ALLOC_NAME_MAX - 1);
        return GF_EINVAL;
    }
    gf_alloc__pool *p = gf_alloc__pool_get(a, req->pool);
    if (!p) {
        char pools[256];
        pool_list(a, pools, sizeof(pools));
        res->why = GF_ALLOC_WHY_NO_POOL;
        snprintf(res->msg, sizeof(res->msg), "no pool '%s' (pools: %s)",
                 req->pool && *req->pool ? req->pool : "default", pools);
        return GF_ENOENT;
    }
    if (req->node && !(r.node = gf_alloc__map_get(&a->node_map, req->node))) {
        res->why = GF_ALLOC_WHY_SELECTOR;
        snprintf(res->msg, sizeof(res->msg), "no node '%s'", req->node);
        return GF_ENOENT;
    }
    if (req->gpu && !(r.gpu = gf_alloc__map_get(&a->gpu_map, req->gpu))) {
        res->why = GF_ALLOC_WHY_SELECTOR;
        snprintf(res->msg, sizeof(res->msg), "no GPU '%s'", req->gpu);
        return GF_ENOENT;
    }
    if ((r.node && a->pools[r.node->pool] != p) || (r.gpu && a->pools[r.gpu->pool] != p)) {
        res->why = GF_ALLOC_WHY_SELECTOR;
        snprintf(res->msg, sizeof(res->msg), "%s '%s' is in pool '%s', not '%s'",
                 r.gpu ? "GPU" : "node", r.gpu ? r.gpu->uuid : r.node->name,
                 a->pools[r.gpu ? r.gpu->pool : r.node->pool]->name, p->name);
        return GF_ENOENT;
    }
    if (id && gf_alloc__map_get(&a->rec_map, id)) {
        res->why = GF_ALLOC_WHY_EXISTS;
        snprintf(res->msg, sizeof(res->msg), "allocation '%s' already exists", id);
        return GF_EEXIST;
    }
    if (id) {
        gf_alloc__type t = {r.l[GF_ALLOC__V], r.ppm ? 0 : r.l[GF_ALLOC__T], r.ppm ? r.l_ppm : 0,
                            r.k, 1, 0};
        gf_alloc__frag_observe(a, p, &t);
    }
    r.gen = ++a->gen;
    r.drive = r.l[GF_ALLOC__V] ? GF_ALLOC__V : GF_ALLOC__T;
    if (r.drive == GF_ALLOC__V)
        r.lb = r.l[GF_ALLOC__V];
    else
        r.lb = r.ppm ? (p->min_cap_t * r.l_ppm + GF_ALLOC__PPM - 1) / GF_ALLOC__PPM
                     : r.l[GF_ALLOC__T];

    gf_alloc__part parts[GF_ALLOC_MAX_GPUS];
    uint32_t picked[GF_ALLOC_MAX_GPUS];
    uint32_t n = 0;
    int hi = r.hi;
    if (r.k > 1 && !r.remote) {
        if (pick_node(a, p, &r, picked)) n = r.k;
        for (uint32_t i = 0; i < n; i++) {
            gf_alloc__gpu *g = a->gpus[picked[i]];
            parts[i].gpu = g->seq;
            need(&r, g, parts[i].req, parts[i].lim);
        }
    } else {
        /* one GPU at a time, each charged before the next is chosen; undone on failure */
        r.excl = picked;
        for (; n < r.k; n++) {
            r.n_excl = n;
            gf_alloc__gpu *g = pick_one(a, p, &r);
            if (!g) break;
            picked[n] = g->seq;
            parts[n].gpu = g->seq;
            need(&r, g, parts[n].req, parts[n].lim);
            if (r.k > 1) gf_alloc__charge(a, g, +1, parts[n].req, parts[n].lim, hi);
        }
        for (uint32_t i = n; r.k > 1 && i-- > 0;)
            gf_alloc__charge(a, a->gpus[parts[i].gpu], -1, parts[i].req, parts[i].lim, hi);
        if (n < r.k) n = 0;
        r.excl = NULL;
        r.n_excl = 0;
    }
    if (!n) {
        r.gen = ++a->gen;
        explain(a, p, &r, res);
        return GF_ENOSPC;
    }
    /* placements in stable-id order */
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && parts[j - 1].gpu > parts[j].gpu; j--) {
            gf_alloc__part t = parts[j];
            parts[j] = parts[j - 1];
            parts[j - 1] = t;
        }
    if (id) {
        gf_alloc__rec *rec = malloc(sizeof(*rec) + n * sizeof(rec->parts[0]));
        if (!rec) {
            snprintf(res->msg, sizeof(res->msg), "out of host memory recording '%s'", id);
            return GF_ENOMEM;
        }
        snprintf(rec->id, sizeof(rec->id), "%s", id);
        rec->pool = a->gpus[parts[0].gpu]->pool;
        rec->qos = req->qos;
        rec->lost = 0;
        rec->n = n;
        memcpy(rec->parts, parts, n * sizeof(parts[0]));
        if (gf_alloc__map_put(&a->rec_map, rec->id, rec)) {
            free(rec);
            snprintf(res->msg, sizeof(res->msg), "out of host memory recording '%s'", id);
            return GF_ENOMEM;
        }
        for (uint32_t i = 0; i < n; i++)
            gf_alloc__charge(a, a->gpus[parts[i].gpu], +1, parts[i].req, parts[i].lim, hi);
    }
    fill(a, parts, n, res);
    return GF_OK;
}
