/* SPDX-License-Identifier: Apache-2.0 */
/* The remote backend's registry of this process's contexts, streams and events: which are live,
 * and the context each stream and event belongs to. The client mints these handles and creates
 * streams and events with no round trip, so it answers the driver's handle errors itself, at
 * once, as a driver does (a destroyed context is CUDA_ERROR_CONTEXT_IS_DESTROYED for a thread
 * that still has it current, a destroyed stream or event CUDA_ERROR_INVALID_HANDLE, an event
 * recorded on another context's stream too). The worker still checks every handle it is sent
 * against the session's own tables; this only gives the answers a round trip would come too
 * late for. */
#include "remote.h"

#include <stdatomic.h>
#include <stdlib.h>

static pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;

/* Bumped by every change that can make a handle unusable (a context's state, a stream or event
 * deleted or dropped): each thread remembers the last context and stream it found usable at a
 * generation, and the launch path asks again only after a change (no lock per call). */
static atomic_uint gen = 1;
static _Thread_local uint64_t tl_ok_ctx, tl_ok_h, tl_ok_hctx;
static _Thread_local unsigned tl_ok_ctx_gen, tl_ok_h_gen;

/* Contexts: few, and never forgotten (a destroyed one must stay told apart from a made-up one). */
static struct rctx {
    uint64_t id;
    int state; /* GF_RCTX_* */
} *ctxs;
static size_t nctx, capctx;

/* Streams and events: an open-addressing table (h 0 empty, 1 a deleted slot). */
typedef struct {
    uint64_t h, ctx;
} slot;
static slot *tab;
static size_t cap, used;

#define DELETED 1u

static struct rctx *ctx_find(uint64_t id)
{
    for (size_t i = 0; i < nctx; i++)
        if (ctxs[i].id == id) return &ctxs[i];
    return NULL;
}

void gf_robj_ctx_set(uint64_t ctx, int state)
{
    pthread_mutex_lock(&lk);
    struct rctx *c = ctx_find(ctx);
    if (!c && nctx == capctx) {
        size_t nc = capctx ? capctx * 2 : 16;
        struct rctx *n = realloc(ctxs, nc * sizeof *n);
        if (n) {
            ctxs = n;
            capctx = nc;
        }
    }
    if (!c && nctx < capctx) {
        c = &ctxs[nctx++];
        c->id = ctx;
    }
    if (c) c->state = state;
    atomic_fetch_add(&gen, 1);
    pthread_mutex_unlock(&lk);
}

CUresult gf_robj_ctx_check(uint64_t ctx, int need_active)
{
    if (!ctx) return CUDA_ERROR_INVALID_CONTEXT;
    unsigned g = atomic_load(&gen);
    if (ctx == tl_ok_ctx && g == tl_ok_ctx_gen) return CUDA_SUCCESS;
    pthread_mutex_lock(&lk);
    struct rctx *c = ctx_find(ctx);
    int st = c ? c->state : -1;
    pthread_mutex_unlock(&lk);
    if (st == GF_RCTX_DESTROYED) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
    if (st == GF_RCTX_LIVE) {
        tl_ok_ctx = ctx;
        tl_ok_ctx_gen = g;
    }
    if (st == GF_RCTX_LIVE || (st == GF_RCTX_INACTIVE && !need_active)) return CUDA_SUCCESS;
    return CUDA_ERROR_INVALID_CONTEXT;
}

int gf_robj_ctx_state(uint64_t ctx)
{
    pthread_mutex_lock(&lk);
    struct rctx *c = ctx_find(ctx);
    int st = c ? c->state : -1;
    pthread_mutex_unlock(&lk);
    return st;
}

static size_t hash(uint64_t h)
{
    return (size_t)((h * 0x9e3779b97f4a7c15ull) >> 17);
}

static slot *find(uint64_t h)
{
    if (!cap || h <= DELETED) return NULL;
    for (size_t j = hash(h) & (cap - 1);; j = (j + 1) & (cap - 1)) {
        if (!tab[j].h) return NULL;
        if (tab[j].h == h) return &tab[j];
    }
}

static int grow(void)
{
    size_t live = 0;
    for (size_t i = 0; i < cap; i++) live += tab[i].h > DELETED;
    size_t nc = cap ? cap : 256;
    while (live * 2 >= nc) nc *= 2;
    slot *n = calloc(nc, sizeof *n);
    if (!n) return -1;
    for (size_t i = 0; i < cap; i++) {
        if (tab[i].h <= DELETED) continue;
        size_t j = hash(tab[i].h) & (nc - 1);
        while (n[j].h) j = (j + 1) & (nc - 1);
        n[j] = tab[i];
    }
    free(tab);
    tab = n;
    cap = nc;
    used = live;
    return 0;
}

int gf_robj_add(uint64_t h, uint64_t ctx)
{
    int rc = 0;
    pthread_mutex_lock(&lk);
    if ((used + 1) * 4 >= cap * 3 && grow() != 0) {
        rc = -1;
    } else {
        size_t j = hash(h) & (cap - 1);
        while (tab[j].h > DELETED) j = (j + 1) & (cap - 1);
        if (!tab[j].h) used++;
        tab[j] = (slot){h, ctx};
    }
    pthread_mutex_unlock(&lk);
    return rc;
}

int gf_robj_find(uint64_t h, uint64_t *ctx)
{
    unsigned g = atomic_load(&gen);
    if (h == tl_ok_h && g == tl_ok_h_gen) {
        if (ctx) *ctx = tl_ok_hctx;
        return 1;
    }
    pthread_mutex_lock(&lk);
    slot *s = find(h);
    if (s) {
        if (ctx) *ctx = s->ctx;
        tl_ok_h = h;
        tl_ok_hctx = s->ctx;
        tl_ok_h_gen = g;
    }
    pthread_mutex_unlock(&lk);
    return s != NULL;
}

int gf_robj_del(uint64_t h)
{
    pthread_mutex_lock(&lk);
    slot *s = find(h);
    if (s) s->h = DELETED;
    atomic_fetch_add(&gen, 1);
    pthread_mutex_unlock(&lk);
    return s != NULL;
}

void gf_robj_drop_ctx(uint64_t ctx)
{
    pthread_mutex_lock(&lk);
    for (size_t i = 0; i < cap; i++)
        if (tab[i].h > DELETED && tab[i].ctx == ctx) tab[i].h = DELETED;
    atomic_fetch_add(&gen, 1);
    pthread_mutex_unlock(&lk);
}
