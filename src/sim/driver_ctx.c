/* SPDX-License-Identifier: Apache-2.0 */
/* Contexts of the sim driver: the per-thread context stack, primary contexts, created
 * contexts, their limits and configuration, and peer access between them. */
#define __CUDA_API_VERSION_INTERNAL 1
#include "driver.h"

#include "gpufuse/cuda_faults.h"

#include <string.h>

#define GF_CTX_STACK 128

static __thread gf_ctx *t_stack[GF_CTX_STACK];
static __thread int t_depth;
static atomic_ullong g_ctx_ids = 1;

gf_ctx *gf_drv__current(void)
{
    return t_depth > 0 ? t_stack[t_depth - 1] : NULL;
}

static CUresult ctx_usable(gf_ctx *c)
{
    if (!c) return CUDA_ERROR_INVALID_CONTEXT;
    if (!c->h.live) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
    if (c->primary && !c->active) return CUDA_ERROR_INVALID_CONTEXT;
    CUresult s = atomic_load(&c->sticky);
    return s ? s : atomic_load(&g_drv.fault);
}

CUresult gf_drv__ctx_enter(gf_ctx **out)
{
    GF_CHECK_INIT();
    gf_ctx *c = gf_drv__current();
    CUresult rc = ctx_usable(c);
    if (rc) return rc;
    *out = c;
    return CUDA_SUCCESS;
}

CUresult gf_drv__ctx_arg(CUcontext h, gf_ctx **out)
{
    GF_CHECK_INIT();
    if (!h) return gf_drv__ctx_enter(out);
    gf_ctx *c = gf_drv__obj_any(GF_DRV_CTX, h);
    if (!c) return CUDA_ERROR_INVALID_CONTEXT;
    CUresult rc = ctx_usable(c);
    if (rc) return rc;
    *out = c;
    return CUDA_SUCCESS;
}

void gf_drv__ctx_set_sticky(gf_ctx *c, CUresult rc)
{
    CUresult expect = CUDA_SUCCESS;
    atomic_compare_exchange_strong(&c->sticky, &expect, rc);
    if (!gf_cuda_process_fatal(rc)) return;
    expect = CUDA_SUCCESS;
    atomic_compare_exchange_strong(&g_drv.fault, &expect, rc);
}

static CUresult check_ctx_flags(unsigned flags)
{
    if (flags & ~(unsigned)CU_CTX_FLAGS_MASK) return CUDA_ERROR_INVALID_VALUE;
    unsigned sched = flags & CU_CTX_SCHED_MASK;
    if (sched != 0 && sched != 1 && sched != 2 && sched != 4) return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

/* locked: the caller holds g_drv.lock. */
static void ctx_init_state(gf_ctx *c, int locked)
{
    c->limits[CU_LIMIT_STACK_SIZE] = 1024;
    c->limits[CU_LIMIT_PRINTF_FIFO_SIZE] = 1 << 20;
    c->limits[CU_LIMIT_MALLOC_HEAP_SIZE] = 8 << 20;
    c->limits[CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH] = 2;
    c->limits[CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT] = 2048;
    c->limits[CU_LIMIT_MAX_L2_FETCH_GRANULARITY] = 64;
    c->limits[CU_LIMIT_PERSISTING_L2_CACHE_SIZE] = 0;
    c->cache_config = CU_FUNC_CACHE_PREFER_NONE;
    c->shared_config = CU_SHARED_MEM_CONFIG_FOUR_BYTE_BANK_SIZE;
    atomic_store(&c->sticky, CUDA_SUCCESS);
    c->legacy = gf_drv__stream_new(c, 0, 0, 1, locked);
}

static CUresult push(gf_ctx *c)
{
    if (t_depth >= GF_CTX_STACK) return CUDA_ERROR_OUT_OF_MEMORY;
    t_stack[t_depth++] = c;
    return CUDA_SUCCESS;
}

static CUresult ctx_create(CUcontext *pctx, unsigned flags, CUdevice dev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    if ((rc = check_ctx_flags(flags))) return rc;
    if ((rc = atomic_load(&g_drv.fault))) return rc; /* a poisoned process makes no context */
    gf_ctx *c = gf_drv__obj_new(GF_DRV_CTX);
    if (!c) return CUDA_ERROR_OUT_OF_MEMORY;
    c->dev = dev;
    c->flags = flags;
    c->active = 1;
    c->id = atomic_fetch_add(&g_ctx_ids, 1);
    ctx_init_state(c, 0);
    gf_drv__obj_publish(c);
    if (!c->legacy || (rc = push(c))) {
        c->h.live = 0;
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pctx = (CUcontext)c;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    return ctx_create(pctx, flags, dev);
}

GF_SIM_API CUresult cuCtxCreate(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    return ctx_create(pctx, flags, dev);
}

GF_SIM_API CUresult cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *paramsArray,
                                   int numParams, unsigned int flags, CUdevice dev)
{
    if (numParams < 0 || (numParams > 0 && !paramsArray)) return CUDA_ERROR_INVALID_VALUE;
    return ctx_create(pctx, flags, dev);
}

GF_SIM_API CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *ctxCreateParams,
                                   unsigned int flags, CUdevice dev)
{
    if (ctxCreateParams) {
        if (ctxCreateParams->numExecAffinityParams < 0 ||
            (ctxCreateParams->numExecAffinityParams > 0 && !ctxCreateParams->execAffinityParams))
            return CUDA_ERROR_INVALID_VALUE;
        if (ctxCreateParams->cigParams) {
            GF_CHECK_INIT();
            return CUDA_ERROR_NOT_SUPPORTED;
        }
    }
    return ctx_create(pctx, flags, dev);
}

static void destroy_stream_cb(void *o, void *arg)
{
    gf_stream *s = o;
    if (s->ctx == arg && !s->legacy) gf_drv__stream_destroy(s);
}

static void destroy_event_cb(void *o, void *arg)
{
    gf_event *e = o;
    if (e->ctx == arg) {
        e->h.live = 0;
        gf_drv__obj_unref(e);
    }
}

void gf_drv__ctx_teardown(gf_ctx *c)
{
    gf_drv__ctx_wait_idle(c);
    gf_drv__obj_foreach(GF_DRV_STREAM, destroy_stream_cb, c);
    gf_drv__obj_foreach(GF_DRV_EVENT, destroy_event_cb, c);
    gf_drv__modules_free_ctx(c);
    gf_drv__mem_free_ctx(c);
    if (c->legacy) {
        gf_drv__stream_destroy(c->legacy);
        c->legacy = NULL;
    }
}

/* Removes c from the calling thread's stack (every occurrence). */
static void unstack(gf_ctx *c)
{
    int j = 0;
    for (int i = 0; i < t_depth; i++)
        if (t_stack[i] != c) t_stack[j++] = t_stack[i];
    t_depth = j;
}

GF_SIM_API CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    GF_CHECK_INIT();
    gf_ctx *c = gf_drv__obj_get(GF_DRV_CTX, ctx);
    if (!c || c->primary) return CUDA_ERROR_INVALID_CONTEXT;
    gf_drv__ctx_teardown(c);
    c->h.live = 0;
    c->active = 0;
    unstack(c);
    gf_drv__obj_unref(c);
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuCtxDestroy(CUcontext ctx)
{
    return cuCtxDestroy_v2(ctx);
}

GF_SIM_API CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
    GF_CHECK_INIT();
    gf_ctx *c = gf_drv__obj_get(GF_DRV_CTX, ctx);
    if (!c) return CUDA_ERROR_INVALID_CONTEXT;
    return push(c);
}

GF_SIM_API CUresult cuCtxPushCurrent(CUcontext ctx)
{
    return cuCtxPushCurrent_v2(ctx);
}

GF_SIM_API CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
    GF_CHECK_INIT();
    if (t_depth == 0) return CUDA_ERROR_INVALID_CONTEXT;
    gf_ctx *c = t_stack[--t_depth];
    if (pctx) *pctx = (CUcontext)c;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuCtxPopCurrent(CUcontext *pctx)
{
    return cuCtxPopCurrent_v2(pctx);
}

GF_SIM_API CUresult cuCtxSetCurrent(CUcontext ctx)
{
    GF_CHECK_INIT();
    if (!ctx) {
        if (t_depth > 0) t_depth--;
        return CUDA_SUCCESS;
    }
    gf_ctx *c = gf_drv__obj_get(GF_DRV_CTX, ctx);
    if (!c) return CUDA_ERROR_INVALID_CONTEXT;
    if (t_depth == 0) return push(c);
    t_stack[t_depth - 1] = c;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuCtxGetCurrent(CUcontext *pctx)
{
    GF_CHECK_INIT();
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    *pctx = (CUcontext)gf_drv__current();
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuCtxGetDevice(CUdevice *device)
{
    gf_ctx *c;
    GF_CHECK_INIT();
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    c = gf_drv__current();
    if (!c) return CUDA_ERROR_INVALID_CONTEXT;
    if (!c->h.live) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
    *device = c->dev;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuCtxGetDevice_v2(CUdevice *device, CUcontext ctx)
{
    GF_CHECK_INIT();
    if (!ctx) return cuCtxGetDevice(device);
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    gf_ctx *c = gf_drv__obj_any(GF_DRV_CTX, ctx);
    if (!c) return CUDA_ERROR_INVALID_CONTEXT;
    if (!c->h.live) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
    *device = c->dev;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuCtxSynchronize(void)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    gf_drv__ctx_wait_idle(c);
    return atomic_load(&c->sticky);
}

GF_SIM_API CUresult cuCtxSynchronize_v2(CUcontext ctx)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_arg(ctx, &c);
    if (rc) return rc;
    gf_drv__ctx_wait_idle(c);
    return atomic_load(&c->sticky);
}

GF_SIM_API CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int *version)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_arg(ctx, &c);
    if (rc) return rc;
    if (!version) return CUDA_ERROR_INVALID_VALUE;
    *version = 3020;  /* what every context since CUDA 3.2 reports */
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuCtxGetFlags(unsigned int *flags)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!flags) return CUDA_ERROR_INVALID_VALUE;
    *flags = c->flags;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuCtxSetFlags(unsigned int flags)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if ((rc = check_ctx_flags(flags))) return rc;
    c->flags = flags;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuCtxGetId(CUcontext ctx, unsigned long long *ctxId)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_arg(ctx, &c);
    if (rc) return rc;
    if (!ctxId) return CUDA_ERROR_INVALID_VALUE;
    *ctxId = c->id;
    return CUDA_SUCCESS;
}

static int limit_ok(CUlimit limit)
{
    switch (limit) {
    case CU_LIMIT_STACK_SIZE:
    case CU_LIMIT_PRINTF_FIFO_SIZE:
    case CU_LIMIT_MALLOC_HEAP_SIZE:
    case CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH:
    case CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT:
    case CU_LIMIT_MAX_L2_FETCH_GRANULARITY:
    case CU_LIMIT_PERSISTING_L2_CACHE_SIZE: return 1;
    default: return 0;
    }
}

/* The current context, then CUDA_ERROR_INVALID_VALUE unless valid: the checks of the calls
 * that read or set one setting of it. */
static CUresult ctx_valid(gf_ctx **c, int valid)
{
    CUresult rc = gf_drv__ctx_enter(c);
    if (rc) return rc;
    return valid ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

GF_SIM_API CUresult cuCtxGetLimit(size_t *pvalue, CUlimit limit)
{
    gf_ctx *c;
    CUresult rc = ctx_valid(&c, pvalue != NULL);
    if (rc) return rc;
    if (!limit_ok(limit)) return CUDA_ERROR_UNSUPPORTED_LIMIT;
    *pvalue = c->limits[limit];
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuCtxSetLimit(CUlimit limit, size_t value)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!limit_ok(limit)) return CUDA_ERROR_UNSUPPORTED_LIMIT;
    if (limit == CU_LIMIT_MAX_L2_FETCH_GRANULARITY &&
        value != 0 && value != 32 && value != 64 && value != 128)
        return CUDA_ERROR_INVALID_VALUE;
    c->limits[limit] = value;
    return CUDA_SUCCESS;
}

/* cuCtxGet<name>(out) and cuCtxSet<name>(v) for a setting the context keeps in field; ok is
 * the check of v. */
#define CTX_SETTING(name, type, field, ok)                                                     \
    GF_SIM_API CUresult cuCtxGet##name(type *out)                                              \
    {                                                                                         \
        gf_ctx *c;                                                                            \
        CUresult rc = ctx_valid(&c, out != NULL);                                             \
        if (!rc) *out = c->field;                                                             \
        return rc;                                                                            \
    }                                                                                         \
    GF_SIM_API CUresult cuCtxSet##name(type v)                                                 \
    {                                                                                         \
        gf_ctx *c;                                                                            \
        CUresult rc = ctx_valid(&c, ok);                                                      \
        if (!rc) c->field = v;                                                                \
        return rc;                                                                            \
    }

CTX_SETTING(CacheConfig, CUfunc_cache, cache_config, (unsigned)v <= CU_FUNC_CACHE_PREFER_EQUAL)
CTX_SETTING(SharedMemConfig, CUsharedconfig, shared_config,
            (unsigned)v <= CU_SHARED_MEM_CONFIG_EIGHT_BYTE_BANK_SIZE)

GF_SIM_API CUresult cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority)
{
    GF_CHECK_INIT();
    if (leastPriority) *leastPriority = 0;
    if (greatestPriority) *greatestPriority = -5;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuCtxResetPersistingL2Cache(void)
{
    gf_ctx *c;
    return gf_drv__ctx_enter(&c);
}

/* ---- peer access --------------------------------------------------------------------------- */

#define GF_MAX_PEERS 64
static struct { gf_ctx *from, *to; } g_peers[GF_MAX_PEERS * GF_SIM_MAX_DEVICES];
static unsigned g_npeers;

int gf_drv__peer_enabled(gf_ctx *from, int dev)
{
    for (unsigned i = 0; i < g_npeers; i++)
        if (g_peers[i].from == from && g_peers[i].to->dev == dev && g_peers[i].to->h.live) return 1;
    return 0;
}

GF_SIM_API CUresult cuCtxEnablePeerAccess(CUcontext peerContext, unsigned int Flags)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    gf_ctx *p = gf_drv__obj_get(GF_DRV_CTX, peerContext);
    if (!p) return CUDA_ERROR_INVALID_CONTEXT;
    if (Flags != 0) return CUDA_ERROR_INVALID_VALUE;
    if (p->dev == c->dev) return CUDA_ERROR_INVALID_DEVICE;
    GF_DRV_LOCK();
    rc = CUDA_SUCCESS;
    for (unsigned i = 0; i < g_npeers; i++)
        if (g_peers[i].from == c && g_peers[i].to == p) rc = CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED;
    if (!rc) {
        if (g_npeers == sizeof g_peers / sizeof g_peers[0]) {
            rc = CUDA_ERROR_TOO_MANY_PEERS;
        } else {
            g_peers[g_npeers].from = c;
            g_peers[g_npeers].to = p;
            g_npeers++;
        }
    }
    GF_DRV_UNLOCK();
    return rc;
}

GF_SIM_API CUresult cuCtxDisablePeerAccess(CUcontext peerContext)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    gf_ctx *p = gf_drv__obj_get(GF_DRV_CTX, peerContext);
    if (!p) return CUDA_ERROR_INVALID_CONTEXT;
    GF_DRV_LOCK();
    rc = CUDA_ERROR_PEER_ACCESS_NOT_ENABLED;
    for (unsigned i = 0; i < g_npeers; i++) {
        if (g_peers[i].from == c && g_peers[i].to == p) {
            g_peers[i] = g_peers[--g_npeers];
            rc = CUDA_SUCCESS;
            break;
        }
    }
    GF_DRV_UNLOCK();
    return rc;
}

/* ---- primary contexts ---------------------------------------------------------------------- */

GF_SIM_API CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    gf_device *d = &g_drv.dev[dev];
    GF_DRV_LOCK();
    if (d->primary_refs == 0 && (rc = atomic_load(&g_drv.fault))) {
        GF_DRV_UNLOCK(); /* nor (re)activates the primary context */
        return rc;
    }
    if (!d->primary) {
        gf_ctx *c = gf_drv__obj_new(GF_DRV_CTX);
        if (!c) {
            GF_DRV_UNLOCK();
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        c->dev = dev;
        c->primary = 1;
        c->id = atomic_fetch_add(&g_ctx_ids, 1);
        gf_drv__obj_publish(c);
        d->primary = c;
    }
    gf_ctx *c = d->primary;
    if (d->primary_refs == 0) {
        c->flags = d->primary_flags;
        ctx_init_state(c, 1);
        c->active = 1;
    }
    d->primary_refs++;
    GF_DRV_UNLOCK();
    *pctx = (CUcontext)c;
    return CUDA_SUCCESS;
}

static void primary_deactivate(gf_device *d)
{
    gf_ctx *c = d->primary;
    c->active = 0;
    gf_drv__ctx_teardown(c);
    atomic_store(&c->sticky, CUDA_SUCCESS);
}

GF_SIM_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    gf_device *d = &g_drv.dev[dev];
    GF_DRV_LOCK();
    if (!d->primary || d->primary_refs == 0) {
        GF_DRV_UNLOCK();
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    int last = --d->primary_refs == 0;
    GF_DRV_UNLOCK();
    if (last) primary_deactivate(d);
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuDevicePrimaryCtxRelease(CUdevice dev)
{
    return cuDevicePrimaryCtxRelease_v2(dev);
}

GF_SIM_API CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    gf_device *d = &g_drv.dev[dev];
    GF_DRV_LOCK();
    int was = d->primary && d->primary_refs > 0;
    d->primary_refs = 0;
    GF_DRV_UNLOCK();
    if (was) primary_deactivate(d);
    d->primary_flags = 0;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuDevicePrimaryCtxReset(CUdevice dev)
{
    return cuDevicePrimaryCtxReset_v2(dev);
}

GF_SIM_API CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    if ((rc = check_ctx_flags(flags))) return rc;
    gf_device *d = &g_drv.dev[dev];
    d->primary_flags = flags;
    if (d->primary && d->primary_refs > 0) d->primary->flags = flags;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags)
{
    return cuDevicePrimaryCtxSetFlags_v2(dev, flags);
}

GF_SIM_API CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
    gf_device *d = &g_drv.dev[dev];
    *flags = d->primary_flags;
    *active = d->primary && d->primary_refs > 0;
    return CUDA_SUCCESS;
}
