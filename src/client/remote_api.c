/* SPDX-License-Identifier: Apache-2.0 */
/* The driver API calls of the remote backend: each encodes its arguments per
 * src/client/remote_proto.h and sends them to the worker, synchronously (answers the program
 * waits for) or batched (launches, async copies, event records, ...). Answers that never change
 * (devices, attributes, parameter layouts) come from the client-side cache. gf_remote_setup
 * installs them in gf_real, with a NOT_SUPPORTED stub (logged once) for everything else. */
#include "remote.h"

#include "gpufuse/cu_errors.h"
#include "gpufuse/pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gpufuse/cuda_procaddr.h"
#include "gpufuse/fatbin.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

/* ---- helpers ------------------------------------------------------------------------------------ */

#define LOCK()                                                                                \
    do {                                                                                      \
        CUresult lk_ = gf_remote_lock();                                                      \
        if (lk_ != CUDA_SUCCESS) return lk_;                                                  \
    } while (0)

/* A synchronous call whose reply carries nothing but the result. */
static CUresult call_plain(gf_rreq *q)
{
    LOCK();
    CUresult rc = CUDA_SUCCESS;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(q, &rc, &rep, NULL);
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult call_async(gf_rreq *q)
{
    LOCK();
    CUresult r = gf_remote_async(q);
    gf_remote_unlock();
    return r;
}

static CUresult need_init(void)
{
    if (!gf_r.inited || gf_r.forked) return CUDA_ERROR_NOT_INITIALIZED;
    if (gf_r.broken) return gf_r.broken_rc;
    return CUDA_SUCCESS;
}

/* The calling thread's current context, usable for work: none, one destroyed (by another
 * thread, say) or an inactive primary context is what the driver refuses it for. */
static CUresult need_ctx(void)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    return gf_robj_ctx_check(gf_remote_tl_ctx, 1);
}

/* A context argument: NULL means the current one. */
static CUresult ctx_arg(CUcontext c, uint64_t *h)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    *h = c ? (uint64_t)(uintptr_t)c : gf_remote_tl_ctx;
    return gf_robj_ctx_check(*h, 1);
}

static uint64_t ptds_stream(void);

/* A stream argument as a driver checks it: NULL and the legacy and per-thread default streams
 * need a usable current context (*ctx = it), any other stream must be live (*ctx = its
 * context). *h is what the worker is sent: CU_STREAM_PER_THREAD becomes the calling thread's own
 * stream (ptds_stream). Streams are client handles: kind STREAM, flags and priority in their
 * middle bits. */
static CUresult stream_arg(CUstream s, uint64_t *h, uint64_t *ctx)
{
    uint64_t v = (uint64_t)(uintptr_t)s;
    CUresult r;
    *h = v;
    if (v == 0 || v == GF_RPC_STREAM_LEGACY || v == GF_RPC_STREAM_PER_THREAD) {
        if ((r = need_ctx()) != CUDA_SUCCESS) return r;
        *ctx = gf_remote_tl_ctx;
        if (v == GF_RPC_STREAM_PER_THREAD) {
            uint64_t p = ptds_stream();
            if (p) *h = p;
        }
        return CUDA_SUCCESS;
    }
    if ((r = need_init()) != CUDA_SUCCESS) return r;
    if (GF_RPC_HANDLE_KIND(v) != GF_RPC_H_STREAM || !gf_robj_find(v, ctx))
        return CUDA_ERROR_INVALID_HANDLE;
    return CUDA_SUCCESS;
}

/* For callers that checked the context already: 1 when s is a stream they may use. */
static int stream_ok(CUstream s, uint64_t *h)
{
    uint64_t ctx;
    return stream_arg(s, h, &ctx) == CUDA_SUCCESS;
}

/* A live event of this process (*ctx = its context), else CUDA_ERROR_INVALID_HANDLE. */
static CUresult event_arg(CUevent e, uint64_t *ctx)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    uint64_t h = (uint64_t)(uintptr_t)e;
    if (!e || GF_RPC_HANDLE_KIND(h) != GF_RPC_H_EVENT || !gf_robj_find(h, ctx))
        return CUDA_ERROR_INVALID_HANDLE;
    return CUDA_SUCCESS;
}

static gf_rfunc *func_of(CUfunction f)
{
    gf_rfunc *rf = (gf_rfunc *)f;
    if (!rf) return NULL;
    /* Only pointers this library made: look them up rather than trusting the magic alone. */
    for (gf_rfunc *p = gf_r.funcs; p; p = p->next_all)
        if (p == rf) return rf->magic == GF_RFUNC_MAGIC ? rf : NULL;
    return NULL;
}

/* ---- the client's allocation table --------------------------------------------------------------- */

/* Every device range this process got from the worker (allocations, pitched and stream-ordered
 * ones, module globals), with the context it belongs to: cuPointerGetAttribute[s] and the unified
 * copies (cuMemcpy, cuMemcpy2D with CU_MEMORYTYPE_UNIFIED, cudaMemcpyDefault) tell device from
 * host pointers here, with no round trip. The worker still checks every range it is sent. */
typedef struct {
    uint64_t base, size, ctx, module; /* module: the module/library of a global, else 0 */
    unsigned kind;                    /* RA_* */
    uint64_t pool;                    /* stream-ordered allocations: their memory pool */
} gf_ralloc;

enum {
    RA_DEVICE,  /* device memory */
    RA_MANAGED, /* managed memory (a mirror: the same address is the program's host memory) */
    RA_MAPPED,  /* the device copy of pinned or registered host memory (a host mirror) */
    RA_VMM,     /* a VMM mapping (cuMemMap): memory until cuMemUnmap, never cuMemFree'd */
};

static pthread_mutex_t at_lk = PTHREAD_MUTEX_INITIALIZER;
static gf_ralloc *at;
static size_t at_n, at_cap;

static void at_put(gf_ralloc e)
{
    if (!e.base || !e.size) return;
    pthread_mutex_lock(&at_lk);
    for (size_t i = 0; i < at_n; i++)
        if (at[i].base == e.base) { /* a global looked up twice, or a reused address */
            at[i] = e;
            pthread_mutex_unlock(&at_lk);
            return;
        }
    if (at_n == at_cap) {
        size_t nc = at_cap ? at_cap * 2 : 64;
        gf_ralloc *n = realloc(at, nc * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&at_lk);
            return;
        }
        at = n;
        at_cap = nc;
    }
    at[at_n++] = e;
    pthread_mutex_unlock(&at_lk);
}

static void at_add_kind(uint64_t base, uint64_t size, uint64_t ctx, uint64_t module,
                        unsigned kind)
{
    at_put((gf_ralloc){base, size, ctx, module, kind, 0});
}

static void at_add(uint64_t base, uint64_t size, uint64_t ctx, uint64_t module)
{
    at_put((gf_ralloc){base, size, ctx, module, RA_DEVICE, 0});
}

/* Drops the allocation starting at base (base != 0), those of ctx (ctx != 0) or of module. */
static void at_del(uint64_t base, uint64_t ctx, uint64_t module)
{
    pthread_mutex_lock(&at_lk);
    for (size_t i = 0; i < at_n;) {
        if ((base && at[i].base == base && !at[i].module && at[i].kind != RA_VMM) ||
            (ctx && at[i].ctx == ctx && at[i].kind != RA_VMM) ||
            (module && at[i].module == module))
            at[i] = at[--at_n];
        else
            i++;
    }
    pthread_mutex_unlock(&at_lk);
}

/* The range holding p: 1 and *out, or 0 (host memory, or memory this process does not know). */
static int at_find(uint64_t p, gf_ralloc *out)
{
    int found = 0;
    pthread_mutex_lock(&at_lk);
    for (size_t i = 0; i < at_n; i++)
        if (p >= at[i].base && p - at[i].base < at[i].size) {
            *out = at[i];
            found = 1;
            break;
        }
    pthread_mutex_unlock(&at_lk);
    return found;
}

/* Drops the VMM mappings inside [lo, hi) (cuMemUnmap). */
static void at_del_vmm(uint64_t lo, uint64_t hi)
{
    pthread_mutex_lock(&at_lk);
    for (size_t i = 0; i < at_n;) {
        if (at[i].kind == RA_VMM && at[i].base >= lo && at[i].base < hi) at[i] = at[--at_n];
        else i++;
    }
    pthread_mutex_unlock(&at_lk);
}

/* Takes the allocation starting at p (one cuMemFree[Async] may free) out of the table: 1 and
 * *out, or 0. Taken before the free is sent, so that another thread's allocation that gets
 * the same address once the worker freed it is never the entry removed. */
static int at_take(uint64_t p, gf_ralloc *out)
{
    int found = 0;
    pthread_mutex_lock(&at_lk);
    for (size_t i = 0; i < at_n && !found; i++)
        if (p && at[i].base == p && !at[i].module && at[i].kind != RA_VMM) {
            *out = at[i];
            at[i] = at[--at_n];
            found = 1;
        }
    pthread_mutex_unlock(&at_lk);
    return found;
}

/* 1 when [p, p + n) starts inside a known range but runs past its end: refused at once (as a
 * driver does) rather than at the next synchronizing call. VMM mappings that touch are one
 * range, as the worker checks them. */
static int at_overruns(uint64_t p, uint64_t n)
{
    gf_ralloc a;
    if (!n || !at_find(p, &a)) return 0;
    for (;;) {
        uint64_t left = a.size - (p - a.base);
        if (n <= left) return 0;
        if (a.kind != RA_VMM) return 1;
        p = a.base + a.size;
        n -= left;
        if (!at_find(p, &a) || a.kind != RA_VMM || a.base != p) return 1;
    }
}

/* ---- init, driver, devices ------------------------------------------------------------------------ */

static CUresult r_cuInit(unsigned int flags)
{
    if (flags) return CUDA_ERROR_INVALID_VALUE;
    if (gf_r.forked) return CUDA_ERROR_NOT_INITIALIZED; /* the parent's CUDA is not the child's */
    return gf_remote_connect();
}

static CUresult r_cuDriverGetVersion(int *v)
{
    if (!v) return CUDA_ERROR_INVALID_VALUE;
    *v = gf_r.inited && gf_r.driver_version ? gf_r.driver_version : CUDA_VERSION;
    return CUDA_SUCCESS;
}

static CUresult r_cuDeviceGetCount(int *n)
{
    if (!n) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    *n = gf_r.ndev;
    return CUDA_SUCCESS;
}

static CUresult dev_ok(CUdevice d)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    return d >= 0 && d < gf_r.ndev ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

static CUresult r_cuDeviceGet(CUdevice *d, int ordinal)
{
    if (!d) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = dev_ok(ordinal);
    if (r != CUDA_SUCCESS) return r;
    *d = ordinal;
    return CUDA_SUCCESS;
}

static CUresult r_cuDeviceGetName(char *name, int len, CUdevice d)
{
    CUresult r = dev_ok(d);
    if (r != CUDA_SUCCESS) return r;
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    snprintf(name, (size_t)len, "%s", gf_r.dev[d].name);
    return CUDA_SUCCESS;
}

static CUresult r_cuDeviceGetUuid(CUuuid *u, CUdevice d)
{
    CUresult r = dev_ok(d);
    if (r != CUDA_SUCCESS) return r;
    if (!u) return CUDA_ERROR_INVALID_VALUE;
    memcpy(u->bytes, gf_r.dev[d].uuid, 16);
    return CUDA_SUCCESS;
}

static CUresult r_cuDeviceTotalMem(size_t *b, CUdevice d)
{
    CUresult r = dev_ok(d);
    if (r != CUDA_SUCCESS) return r;
    if (!b) return CUDA_ERROR_INVALID_VALUE;
    *b = (size_t)gf_r.dev[d].total;
    return CUDA_SUCCESS;
}

static CUresult r_cuDeviceTotalMem_v1(unsigned int *b, CUdevice d)
{
    size_t t;
    CUresult r = r_cuDeviceTotalMem(&t, d);
    if (r == CUDA_SUCCESS) *b = t > 0xffffffffu ? 0xffffffffu : (unsigned)t;
    return r;
}

static CUresult r_cuDeviceGetAttribute(int *v, CUdevice_attribute a, CUdevice d)
{
    CUresult r = dev_ok(d);
    if (r != CUDA_SUCCESS) return r;
    if (!v || (int)a < 1 || (int)a >= GF_RPC_NATTR) return CUDA_ERROR_INVALID_VALUE;
    int32_t x = gf_r.dev[d].attrs[a - 1];
    if (x == GF_RPC_ATTR_NONE) return CUDA_ERROR_INVALID_VALUE;
    *v = x;
    return CUDA_SUCCESS;
}

static CUresult r_cuDeviceGetPCIBusId(char *buf, int len, CUdevice d)
{
    CUresult r = dev_ok(d);
    if (r != CUDA_SUCCESS) return r;
    if (!buf || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    snprintf(buf, (size_t)len, "%s", gf_r.dev[d].pci);
    return CUDA_SUCCESS;
}

static CUresult r_cuDeviceGetByPCIBusId(CUdevice *d, const char *id)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!d || !id) return CUDA_ERROR_INVALID_VALUE;
    unsigned want[4], have[4];
    if (gf_pci_parse(id, &want[0], &want[1], &want[2], &want[3]) != 0)
        return CUDA_ERROR_INVALID_VALUE;
    for (int i = 0; i < gf_r.ndev; i++)
        if (gf_pci_parse(gf_r.dev[i].pci, &have[0], &have[1], &have[2], &have[3]) == 0 &&
            !memcmp(want, have, sizeof want)) {
            *d = i;
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_INVALID_DEVICE;
}

static CUresult r_cuDeviceCanAccessPeer(int *can, CUdevice a, CUdevice b)
{
    CUresult r = dev_ok(a);
    if (r == CUDA_SUCCESS) r = dev_ok(b);
    if (r != CUDA_SUCCESS) return r;
    if (!can) return CUDA_ERROR_INVALID_VALUE;
    *can = a != b && gf_r.peer[a][b]; /* the worker's answer, sent with the devices */
    return CUDA_SUCCESS;
}

/* ---- contexts ---------------------------------------------------------------------------------- */

#define CTX_STACK 16
static _Thread_local uint64_t tl_stack[CTX_STACK];
static _Thread_local unsigned tl_depth;

static int ctx_ok(CUcontext c)
{
    return GF_RPC_HANDLE_KIND((uint64_t)(uintptr_t)c) == GF_RPC_H_CTX;
}

static int ctx_dev(uint64_t h)
{
    return (int)((h >> 32) & 0xff);
}

static CUresult r_cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice d)
{
    CUresult r = dev_ok(d);
    if (r != CUDA_SUCCESS) return r;
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    LOCK();
    gf_rdev *dv = &gf_r.dev[d];
    if (!dv->primary || dv->primary_reset) {
        uint64_t id = dv->primary ? dv->primary : gf_remote_handle(GF_RPC_H_CTX, (uint64_t)d);
        gf_rreq q;
        gf_rreq_init(&q, GF_RPC_PRIMARY_RETAIN);
        gf_wire_put_handle(&q.w, id);
        gf_wire_put_i32(&q.w, d);
        CUresult rc;
        gf_wire_reader rep;
        CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
        if (t != CUDA_SUCCESS || rc != CUDA_SUCCESS) {
            gf_remote_unlock();
            return t != CUDA_SUCCESS ? t : rc;
        }
        dv->primary = id;
        dv->primary_reset = 0;
    }
    dv->primary_refs++;
    gf_robj_ctx_set(dv->primary, GF_RCTX_LIVE);
    *pctx = (CUcontext)(uintptr_t)dv->primary;
    gf_remote_unlock();
    return CUDA_SUCCESS;
}

/* The primary context of d at zero references (released or reset), under the lock: as on a
 * driver it is torn down (PRIMARY_RESET frees what it held on the worker, which makes it again
 * under the same handle) and inactive until the next retain; its handle stays valid. */
static CUresult primary_deactivate(CUdevice d)
{
    gf_rdev *dv = &gf_r.dev[d];
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_PRIMARY_RESET);
    gf_wire_put_i32(&q.w, d);
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t != CUDA_SUCCESS || rc != CUDA_SUCCESS) return t != CUDA_SUCCESS ? t : rc;
    dv->primary_refs = 0;
    if (dv->primary) {
        at_del(0, dv->primary, 0);
        gf_mirror_forget_owner(dv->primary, 0);
        gf_robj_drop_ctx(dv->primary);
        gf_robj_ctx_set(dv->primary, GF_RCTX_INACTIVE);
        dv->primary_reset = 1;
    }
    return CUDA_SUCCESS;
}

static CUresult r_cuDevicePrimaryCtxRelease(CUdevice d)
{
    CUresult r = dev_ok(d);
    if (r != CUDA_SUCCESS) return r;
    LOCK();
    if (!gf_r.dev[d].primary_refs) r = CUDA_ERROR_INVALID_CONTEXT;
    else if (gf_r.dev[d].primary_refs == 1) r = primary_deactivate(d);
    else gf_r.dev[d].primary_refs--;
    gf_remote_unlock();
    return r;
}

static CUresult r_cuDevicePrimaryCtxReset(CUdevice d)
{
    CUresult r = dev_ok(d);
    if (r != CUDA_SUCCESS) return r;
    LOCK();
    r = primary_deactivate(d);
    if (r == CUDA_SUCCESS) gf_r.dev[d].primary_flags = 0;
    gf_remote_unlock();
    return r;
}

static CUresult r_cuDevicePrimaryCtxGetState(CUdevice d, unsigned *flags, int *active)
{
    CUresult r = dev_ok(d);
    if (r != CUDA_SUCCESS) return r;
    if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
    *flags = gf_r.dev[d].primary_flags;
    *active = gf_r.dev[d].primary_refs > 0;
    return CUDA_SUCCESS;
}

static int ctx_flags_ok(unsigned flags)
{
    unsigned sched = flags & CU_CTX_SCHED_MASK;
    return !(flags & ~(unsigned)CU_CTX_FLAGS_MASK) &&
           (sched == 0 || sched == 1 || sched == 2 || sched == 4);
}

static CUresult r_cuDevicePrimaryCtxSetFlags(CUdevice d, unsigned flags)
{
    CUresult r = dev_ok(d);
    if (r != CUDA_SUCCESS) return r;
    if (!ctx_flags_ok(flags)) return CUDA_ERROR_INVALID_VALUE;
    gf_r.dev[d].primary_flags = flags;
    return CUDA_SUCCESS;
}

static CUresult ctx_create(CUcontext *pctx, unsigned flags, CUdevice d)
{
    CUresult r = dev_ok(d);
    if (r != CUDA_SUCCESS) return r;
    if (!pctx || !ctx_flags_ok(flags)) return CUDA_ERROR_INVALID_VALUE;
    LOCK();
    /* The flags ride in the handle (bits 40..47; the device in 32..39) for cuCtxGetFlags. */
    uint64_t id = gf_remote_handle(GF_RPC_H_CTX, (uint64_t)d | (uint64_t)(flags & 0xff) << 8);
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_CTX_CREATE);
    gf_wire_put_handle(&q.w, id);
    gf_wire_put_u32(&q.w, flags);
    gf_wire_put_i32(&q.w, d);
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) {
        /* The new context is current for this thread, and on the worker. */
        if (gf_remote_tl_ctx && tl_depth < CTX_STACK) tl_stack[tl_depth++] = gf_remote_tl_ctx;
        gf_remote_tl_ctx = id;
        gf_r.sent_ctx = id;
        gf_robj_ctx_set(id, GF_RCTX_LIVE);
        *pctx = (CUcontext)(uintptr_t)id;
    }
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuCtxCreate_v2(CUcontext *pctx, unsigned flags, CUdevice d)
{
    return ctx_create(pctx, flags, d);
}

static CUresult r_cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *p, int n, unsigned flags,
                                 CUdevice d)
{
    (void)p;
    (void)n;
    return ctx_create(pctx, flags, d);
}

static CUresult r_cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *p, unsigned flags, CUdevice d)
{
    (void)p;
    return ctx_create(pctx, flags, d);
}

/* Removes ctx from the calling thread's stack, every occurrence (as a driver does). */
static void unstack(uint64_t ctx)
{
    unsigned j = 0;
    for (unsigned i = 0; i < tl_depth; i++)
        if (tl_stack[i] != ctx) tl_stack[j++] = tl_stack[i];
    tl_depth = j;
    if (gf_remote_tl_ctx == ctx) gf_remote_tl_ctx = tl_depth ? tl_stack[--tl_depth] : 0;
}

static CUresult r_cuCtxDestroy(CUcontext ctx)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    uint64_t id = (uint64_t)(uintptr_t)ctx;
    /* Made-up, already destroyed and primary contexts are not the caller's to destroy. */
    if (!ctx_ok(ctx) || gf_robj_ctx_state(id) != GF_RCTX_LIVE) return CUDA_ERROR_INVALID_CONTEXT;
    for (int i = 0; i < gf_r.ndev; i++)
        if (gf_r.dev[i].primary == id) return CUDA_ERROR_INVALID_CONTEXT;
    LOCK();
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_CTX_DESTROY);
    gf_wire_put_handle(&q.w, id);
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) {
        at_del(0, id, 0);
        gf_robj_drop_ctx(id);
        gf_robj_ctx_set(id, GF_RCTX_DESTROYED);
        gf_mirror_forget_owner(id, 0);
        if (gf_r.sent_ctx == id) gf_r.sent_ctx = 0;
        unstack(id);
    }
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

/* A context a thread may make current: one of this process's, not destroyed (an inactive
 * primary context may be current; work in it is refused). */
static int ctx_known(CUcontext ctx)
{
    int st = gf_robj_ctx_state((uint64_t)(uintptr_t)ctx);
    return ctx_ok(ctx) && (st == GF_RCTX_LIVE || st == GF_RCTX_INACTIVE);
}

static CUresult r_cuCtxSetCurrent(CUcontext ctx)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!ctx) { /* NULL pops the top of the stack, as on a driver */
        if (gf_remote_tl_ctx) gf_remote_tl_ctx = tl_depth ? tl_stack[--tl_depth] : 0;
        return CUDA_SUCCESS;
    }
    if (!ctx_known(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    gf_remote_tl_ctx = (uint64_t)(uintptr_t)ctx;
    return CUDA_SUCCESS;
}

static CUresult r_cuCtxGetCurrent(CUcontext *ctx)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!ctx) return CUDA_ERROR_INVALID_VALUE;
    *ctx = (CUcontext)(uintptr_t)gf_remote_tl_ctx;
    return CUDA_SUCCESS;
}

static CUresult r_cuCtxPushCurrent(CUcontext ctx)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!ctx_known(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    if (tl_depth == CTX_STACK) return CUDA_ERROR_INVALID_VALUE;
    if (gf_remote_tl_ctx) tl_stack[tl_depth++] = gf_remote_tl_ctx;
    gf_remote_tl_ctx = (uint64_t)(uintptr_t)ctx;
    return CUDA_SUCCESS;
}

static CUresult r_cuCtxPopCurrent(CUcontext *ctx)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!gf_remote_tl_ctx) return CUDA_ERROR_INVALID_CONTEXT;
    if (ctx) *ctx = (CUcontext)(uintptr_t)gf_remote_tl_ctx;
    gf_remote_tl_ctx = tl_depth ? tl_stack[--tl_depth] : 0;
    return CUDA_SUCCESS;
}

static CUresult r_cuCtxGetDevice(CUdevice *d)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if (!d) return CUDA_ERROR_INVALID_VALUE;
    *d = ctx_dev(gf_remote_tl_ctx);
    return CUDA_SUCCESS;
}

static CUresult r_cuCtxSynchronize(void)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_CTX_SYNC);
    return call_plain(&q);
}

static CUresult r_cuCtxSynchronize_v2(CUcontext ctx)
{
    uint64_t h;
    if (!ctx) return r_cuCtxSynchronize();
    CUresult r = ctx_arg(ctx, &h);
    if (r != CUDA_SUCCESS) return r;
    uint64_t saved = gf_remote_tl_ctx;
    gf_remote_tl_ctx = (uint64_t)(uintptr_t)ctx;
    r = r_cuCtxSynchronize();
    gf_remote_tl_ctx = saved;
    return r;
}

static CUresult r_cuCtxGetApiVersion(CUcontext ctx, unsigned *v)
{
    uint64_t h;
    CUresult r = ctx_arg(ctx, &h);
    if (r != CUDA_SUCCESS) return r;
    if (!v) return CUDA_ERROR_INVALID_VALUE;
    *v = 3020; /* what every context since CUDA 3.2 reports */
    return CUDA_SUCCESS;
}

static CUresult r_cuCtxGetFlags(unsigned *flags)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if (!flags) return CUDA_ERROR_INVALID_VALUE;
    uint64_t h = gf_remote_tl_ctx;
    int d = ctx_dev(h);
    *flags = h == gf_r.dev[d].primary ? gf_r.dev[d].primary_flags : (unsigned)((h >> 40) & 0xff);
    return CUDA_SUCCESS;
}

static CUresult r_cuCtxGetId(CUcontext ctx, unsigned long long *id)
{
    uint64_t h;
    CUresult r = ctx_arg(ctx, &h);
    if (r != CUDA_SUCCESS) return r;
    if (!id) return CUDA_ERROR_INVALID_VALUE;
    *id = h & 0xffffffffu;
    return CUDA_SUCCESS;
}

/* Limits and cache preferences are remembered per process (the worker's defaults apply). */
static size_t limits[CU_LIMIT_MAX + 1] = {1024, 1u << 20, 8u << 20, 2, 2048, 0, 0};

static CUresult r_cuCtxGetLimit(size_t *v, CUlimit l)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if (!v) return CUDA_ERROR_INVALID_VALUE;
    if ((unsigned)l >= CU_LIMIT_MAX) return CUDA_ERROR_UNSUPPORTED_LIMIT;
    *v = limits[l];
    return CUDA_SUCCESS;
}

static CUresult r_cuCtxSetLimit(CUlimit l, size_t v)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if ((unsigned)l >= CU_LIMIT_MAX) return CUDA_ERROR_UNSUPPORTED_LIMIT;
    limits[l] = v;
    return CUDA_SUCCESS;
}

/* A preference only (the driver may ignore it): kept here, as the limits are. */
static _Atomic int cache_config = CU_FUNC_CACHE_PREFER_NONE;

static CUresult r_cuCtxGetCacheConfig(CUfunc_cache *c)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if (!c) return CUDA_ERROR_INVALID_VALUE;
    *c = (CUfunc_cache)cache_config;
    return CUDA_SUCCESS;
}

static CUresult r_cuCtxSetCacheConfig(CUfunc_cache c)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if ((unsigned)c > CU_FUNC_CACHE_PREFER_EQUAL) return CUDA_ERROR_INVALID_VALUE;
    cache_config = (int)c;
    return CUDA_SUCCESS;
}

static CUresult r_cuCtxGetStreamPriorityRange(int *least, int *greatest)
{
    if (least) *least = 0;
    if (greatest) *greatest = -5;
    return need_ctx();
}

/* ---- memory ------------------------------------------------------------------------------------ */

/* Each device's current memory pool (cuDeviceSetMemPool; 0 = its default pool): a per-process
 * setting that only this process changes, so it is answered here. */
static _Atomic uint64_t cur_pool[GF_REMOTE_MAX_DEVS];

static uint64_t pool_of_dev(int d)
{
    if (d < 0 || d >= GF_REMOTE_MAX_DEVS) return 0;
    uint64_t p = cur_pool[d];
    return p ? p : GF_RPC_MEMPOOL_DEFAULT(d);
}

static CUresult r_cuMemAlloc(CUdeviceptr *p, size_t n)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    if (!n) return CUDA_ERROR_INVALID_VALUE;
    LOCK();
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_ALLOC);
    gf_wire_put_u64(&q.w, n);
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) {
        *p = gf_wire_get_handle(&rep);
        at_add(*p, n, gf_remote_tl_ctx, 0);
    }
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuMemAllocPitch(CUdeviceptr *p, size_t *pitch, size_t w, size_t h, unsigned esz)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if (!p || !pitch) return CUDA_ERROR_INVALID_VALUE;
    LOCK();
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_ALLOC_PITCH);
    gf_wire_put_u64(&q.w, w);
    gf_wire_put_u64(&q.w, h);
    gf_wire_put_u32(&q.w, esz);
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) {
        *p = gf_wire_get_handle(&rep);
        *pitch = gf_wire_get_u64(&rep);
        at_add(*p, (uint64_t)*pitch * h, gf_remote_tl_ctx, 0);
    }
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

/* Under the lock: MEM_FREE of p on the worker; the transport's result, *rc the worker's. */
static CUresult worker_free(uint64_t p, CUresult *rc)
{
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_FREE);
    gf_wire_put_handle(&q.w, p);
    gf_wire_reader rep;
    *rc = CUDA_SUCCESS;
    return gf_remote_sync(&q, rc, &rep, NULL);
}

static CUresult r_cuMemFree(CUdeviceptr p)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!p) return CUDA_SUCCESS;
    gf_ralloc a;
    if (at_find(p, &a) && a.kind == RA_MAPPED) return CUDA_ERROR_INVALID_VALUE;
    /* Out of the table before the free is sent: another thread may get the address next. */
    gf_ralloc was;
    int known = at_take(p, &was);
    LOCK();
    CUresult rc;
    r = worker_free(p, &rc);
    if (r != CUDA_SUCCESS || rc != CUDA_SUCCESS) {
        if (known) at_put(was); /* not freed: still the program's */
    } else if (known && was.kind == RA_MANAGED) {
        gf_mirror_forget(p, NULL); /* its pages here go too */
    }
    gf_remote_unlock();
    return r != CUDA_SUCCESS ? r : rc;
}

static CUresult r_cuMemGetInfo(size_t *f, size_t *t_)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if (!f || !t_) return CUDA_ERROR_INVALID_VALUE;
    LOCK();
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_GET_INFO);
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) {
        *f = gf_wire_get_u64(&rep);
        *t_ = gf_wire_get_u64(&rep);
    }
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuMemGetInfo_v1(unsigned *f, unsigned *t)
{
    size_t a, b;
    if (!f || !t) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = r_cuMemGetInfo(&a, &b);
    if (r == CUDA_SUCCESS) {
        *f = a > 0xffffffffu ? 0xffffffffu : (unsigned)a;
        *t = b > 0xffffffffu ? 0xffffffffu : (unsigned)b;
    }
    return r;
}

static CUresult r_cuMemGetAddressRange(CUdeviceptr *base, size_t *size, CUdeviceptr p)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    LOCK();
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_RANGE);
    gf_wire_put_handle(&q.w, p);
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) {
        uint64_t b = gf_wire_get_handle(&rep), s = gf_wire_get_u64(&rep);
        if (base) *base = b;
        if (size) *size = s;
    }
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuMemAllocAsync(CUdeviceptr *p, size_t n, CUstream s)
{
    CUresult r = need_ctx();
    uint64_t sh;
    if (r != CUDA_SUCCESS) return r;
    if (!p || !n) return CUDA_ERROR_INVALID_VALUE;
    if (!stream_ok(s, &sh)) return CUDA_ERROR_INVALID_HANDLE;
    LOCK();
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_ALLOC_ASYNC);
    gf_wire_put_u64(&q.w, n);
    gf_wire_put_handle(&q.w, sh);
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) {
        *p = gf_wire_get_handle(&rep);
        at_put((gf_ralloc){*p, n, gf_remote_tl_ctx, 0, RA_DEVICE,
                           pool_of_dev(ctx_dev(gf_remote_tl_ctx))});
    }
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuMemFreeAsync(CUdeviceptr p, CUstream s)
{
    CUresult r = need_ctx();
    uint64_t sh;
    if (r != CUDA_SUCCESS) return r;
    if (!stream_ok(s, &sh)) return CUDA_ERROR_INVALID_HANDLE;
    /* Queued without a round trip: what is not an allocation (freed already, say) is refused
     * now, as the driver refuses it, not at the next synchronizing call. */
    gf_ralloc was;
    if (!at_take(p, &was)) return CUDA_ERROR_INVALID_VALUE;
    if (was.kind == RA_MAPPED) { /* host memory: cuMemFreeHost / cuMemHostUnregister */
        at_put(was);
        return CUDA_ERROR_INVALID_VALUE;
    }
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_FREE_ASYNC);
    gf_wire_put_handle(&q.w, p);
    gf_wire_put_handle(&q.w, sh);
    r = call_async(&q);
    if (r != CUDA_SUCCESS) at_put(was);
    return r;
}

/* ---- managed and mapped host memory (mirrors: remote_mirror.c) -------------------------------- */

/* Managed memory: the worker allocates it; its pages are mapped here at the same address. When
 * that address is taken in this process, the worker allocates again (keeping the refused ones
 * until the end, so it cannot hand them back). */
static CUresult r_cuMemAllocManaged(CUdeviceptr *dptr, size_t n, unsigned flags)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if (!dptr || !n || (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST))
        return CUDA_ERROR_INVALID_VALUE;
    LOCK();
    uint64_t refused[5]; /* the worker's allocations whose address was taken here */
    unsigned nrefused = 0;
    CUresult rc = CUDA_ERROR_OUT_OF_MEMORY;
    for (;;) {
        gf_rreq q;
        gf_rreq_init(&q, GF_RPC_MIRROR_ALLOC);
        gf_wire_put_u32(&q.w, GF_RPC_MIRROR_MANAGED);
        gf_wire_put_u64(&q.w, n);
        gf_wire_put_u32(&q.w, flags);
        gf_wire_put_handle(&q.w, 0);
        gf_wire_reader rep;
        r = gf_remote_sync(&q, &rc, &rep, NULL);
        if (r != CUDA_SUCCESS || rc != CUDA_SUCCESS) break;
        uint64_t p = gf_wire_get_handle(&rep);
        int err = gf_mirror_map_managed(p, n, gf_remote_tl_ctx, 0, 1);
        if (!err) {
            at_add_kind(p, n, gf_remote_tl_ctx, 0, RA_MANAGED);
            *dptr = p;
            break;
        }
        refused[nrefused++] = p;
        if (err != EEXIST || nrefused == sizeof refused / sizeof refused[0]) {
            gf_log(GF_LOG_ERROR, GF_REMOTE_LOG, "cuMemAllocManaged(%zu): cannot map the worker's "
                   "address 0x%llx in this process (%s); CUDA_ERROR_OUT_OF_MEMORY", n,
                   (unsigned long long)p, strerror(err));
            rc = CUDA_ERROR_OUT_OF_MEMORY;
            break;
        }
    }
    for (unsigned i = 0; i < nrefused; i++) {
        CUresult ignored;
        worker_free(refused[i], &ignored);
    }
    gf_remote_unlock();
    return r != CUDA_SUCCESS ? r : rc;
}

static CUresult r_cuLibraryGetManaged(CUdeviceptr *dptr, size_t *bytes, CUlibrary lib,
                                      const char *name)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    uint64_t l = (uint64_t)(uintptr_t)lib;
    if (!name) return CUDA_ERROR_INVALID_VALUE;
    if (GF_RPC_HANDLE_KIND(l) != GF_RPC_H_LIBRARY) return CUDA_ERROR_INVALID_HANDLE;
    LOCK();
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_GET_MANAGED);
    gf_wire_put_handle(&q.w, l);
    gf_wire_put_str(&q.w, name);
    CUresult rc;
    gf_wire_reader rep;
    r = gf_remote_sync(&q, &rc, &rep, NULL);
    if (r == CUDA_SUCCESS && rc == CUDA_SUCCESS) {
        uint64_t p = gf_wire_get_handle(&rep), n = gf_wire_get_u64(&rep);
        gf_mirror_info mi;
        int have = gf_mirror_find(p, n, &mi) == 1 && mi.kind == GF_MIRROR_MANAGED;
        int err = have ? 0 : gf_mirror_map_managed(p, n, gf_remote_tl_ctx, l, 0);
        if (err) {
            gf_log(GF_LOG_ERROR, GF_REMOTE_LOG, "cuLibraryGetManaged(%s): cannot map the "
                   "worker's address 0x%llx in this process (%s)", name, (unsigned long long)p,
                   err == EEXIST ? "taken, or a page shared with another mirror" : strerror(err));
            rc = CUDA_ERROR_NOT_SUPPORTED;
        } else {
            at_add_kind(p, n, gf_remote_tl_ctx, l, RA_MANAGED);
            if (dptr) *dptr = p;
            if (bytes) *bytes = n;
        }
    }
    gf_remote_unlock();
    return r != CUDA_SUCCESS ? r : rc;
}

static CUresult managed_range(CUdeviceptr p, size_t n)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    gf_ralloc a;
    if (!n || !at_find(p, &a) || a.kind != RA_MANAGED || n > a.size - (p - a.base))
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

/* Hints: the pages move when they are touched (remote_mirror.c), whatever the program asks. */
static CUresult r_cuMemPrefetchAsync(CUdeviceptr p, size_t n, CUdevice d, CUstream s)
{
    uint64_t sh;
    (void)d;
    if (!stream_ok(s, &sh)) return CUDA_ERROR_INVALID_HANDLE;
    return managed_range(p, n);
}

static CUresult r_cuMemPrefetchAsync_v2(CUdeviceptr p, size_t n, CUmemLocation l, unsigned f,
                                        CUstream s)
{
    (void)l;
    if (f) return CUDA_ERROR_INVALID_VALUE;
    return r_cuMemPrefetchAsync(p, n, 0, s);
}

static CUresult r_cuMemAdvise(CUdeviceptr p, size_t n, CUmem_advise a, CUdevice d)
{
    (void)a;
    (void)d;
    return managed_range(p, n);
}

static CUresult r_cuMemAdvise_v2(CUdeviceptr p, size_t n, CUmem_advise a, CUmemLocation l)
{
    (void)a;
    (void)l;
    return managed_range(p, n);
}

/* The device copy of a host mirror (made now if it has none), as device memory of the table. */
static CUresult arm(const gf_mirror_info *mi, uint64_t *dev)
{
    LOCK();
    CUresult r = gf_mirror_arm(mi->base, dev);
    if (r == CUDA_SUCCESS) at_add_kind(*dev, mi->size, mi->ctx, 0, RA_MAPPED);
    gf_remote_unlock();
    return r;
}

/* Pinned host memory goes where neither this process nor the worker's session is likely to
 * have anything (above the sanitizers' shadow, far below where mmap and the stack grow), so the
 * worker can put its copy at the same address and the device pointer is the host pointer, as
 * with unified addressing. Each process starts at a random 1 GiB step of the region. */
static void *pinned_pages(size_t rounded)
{
    static _Atomic uint64_t next;
    if (!atomic_load(&next)) {
        uint64_t start = 0x200000000000ull + ((uint64_t)(getpid() ^ (int)time(NULL)) & 0x3fff) * (1ull << 30);
        uint64_t zero = 0;
        atomic_compare_exchange_strong(&next, &zero, start);
    }
    uint64_t step = (rounded + (2u << 20) - 1) & ~(uint64_t)((2u << 20) - 1);
    uint64_t hint = atomic_fetch_add(&next, step);
    void *p = hint < 0x500000000000ull
                  ? mmap((void *)(uintptr_t)hint, rounded, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
                  : MAP_FAILED;
    if (p != MAP_FAILED) return p;
    p = mmap(NULL, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Pinned host memory is this process's own pages; a kernel reaches it once it has a device
 * copy (cuMemHostGetDevicePointer, or DEVICEMAP), kept coherent by remote_mirror.c. */
static CUresult r_cuMemHostAlloc(void **pp, size_t n, unsigned flags)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if (!pp || !n) return CUDA_ERROR_INVALID_VALUE;
    if (flags & ~(unsigned)(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP |
                            CU_MEMHOSTALLOC_WRITECOMBINED))
        return CUDA_ERROR_INVALID_VALUE;
    size_t rounded = (n + 4095) & ~(size_t)4095;
    void *p = pinned_pages(rounded);
    if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
    LOCK();
    if (gf_mirror_add_host((uintptr_t)p, n, GF_MIRROR_HOST, flags, gf_remote_tl_ctx) != 0) {
        gf_remote_unlock();
        munmap(p, rounded);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    gf_remote_unlock();
    if (flags & CU_MEMHOSTALLOC_DEVICEMAP) {
        gf_mirror_info mi = {(uintptr_t)p, n, 0, gf_remote_tl_ctx, GF_MIRROR_HOST, flags};
        uint64_t dev;
        if ((r = arm(&mi, &dev)) != CUDA_SUCCESS) {
            LOCK();
            gf_mirror_forget((uintptr_t)p, NULL);
            gf_remote_unlock();
            munmap(p, rounded);
            return r;
        }
    }
    *pp = p;
    return CUDA_SUCCESS;
}

static CUresult r_cuMemAllocHost(void **pp, size_t n)
{
    return r_cuMemHostAlloc(pp, n, 0);
}

/* Drops a host mirror and its device copy. */
static CUresult host_forget(uint64_t base, unsigned kind, CUresult not_found)
{
    LOCK();
    gf_mirror_info mi;
    if (gf_mirror_find(base, 1, &mi) != 1 || mi.base != base || mi.kind != kind) {
        gf_remote_unlock();
        return not_found;
    }
    CUresult r = CUDA_SUCCESS, rc = CUDA_SUCCESS;
    if (mi.dev) {
        r = worker_free(mi.dev, &rc);
        at_del(mi.dev, 0, 0);
    }
    gf_mirror_forget(base, NULL);
    gf_remote_unlock();
    if (kind == GF_MIRROR_HOST) munmap((void *)(uintptr_t)base, (mi.size + 4095) & ~(size_t)4095);
    return r != CUDA_SUCCESS ? r : rc;
}

static CUresult r_cuMemFreeHost(void *p)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!p) return CUDA_SUCCESS;
    return host_forget((uintptr_t)p, GF_MIRROR_HOST, CUDA_ERROR_INVALID_VALUE);
}

static CUresult r_cuMemHostRegister(void *p, size_t n, unsigned flags)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if (!p || !n) return CUDA_ERROR_INVALID_VALUE;
    if (flags & ~(unsigned)(CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP |
                            CU_MEMHOSTREGISTER_IOMEMORY | CU_MEMHOSTREGISTER_READ_ONLY))
        return CUDA_ERROR_INVALID_VALUE;
    if (flags & CU_MEMHOSTREGISTER_IOMEMORY) return CUDA_ERROR_NOT_SUPPORTED;
    LOCK();
    if (gf_mirror_find((uintptr_t)p, n, NULL) != 0) {
        gf_remote_unlock();
        return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    }
    int err = gf_mirror_add_host((uintptr_t)p, n, GF_MIRROR_REGISTERED, flags, gf_remote_tl_ctx);
    gf_remote_unlock();
    if (err) return CUDA_ERROR_OUT_OF_MEMORY;
    if (flags & CU_MEMHOSTREGISTER_DEVICEMAP) {
        gf_mirror_info mi = {(uintptr_t)p, n, 0, gf_remote_tl_ctx, GF_MIRROR_REGISTERED, flags};
        uint64_t dev;
        if ((r = arm(&mi, &dev)) != CUDA_SUCCESS) {
            host_forget((uintptr_t)p, GF_MIRROR_REGISTERED, r);
            return r;
        }
    }
    return CUDA_SUCCESS;
}

static CUresult r_cuMemHostUnregister(void *p)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    return host_forget((uintptr_t)p, GF_MIRROR_REGISTERED, CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
}

/* Pinned or registered host memory the program names by a host address. */
static int host_mirror(const void *p, gf_mirror_info *mi)
{
    return gf_mirror_find((uintptr_t)p, 1, mi) == 1 && mi->kind != GF_MIRROR_MANAGED;
}

static CUresult r_cuMemHostGetDevicePointer(CUdeviceptr *pd, void *p, unsigned flags)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    gf_mirror_info mi;
    if (!pd || flags || !host_mirror(p, &mi)) return CUDA_ERROR_INVALID_VALUE;
    uint64_t dev = mi.dev;
    if (!dev && (r = arm(&mi, &dev)) != CUDA_SUCCESS) return r;
    *pd = dev + ((uintptr_t)p - mi.base);
    return CUDA_SUCCESS;
}

static CUresult r_cuMemHostGetFlags(unsigned *flags, void *p)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    gf_mirror_info mi;
    if (!flags || !host_mirror(p, &mi)) return CUDA_ERROR_INVALID_VALUE;
    *flags = mi.flags | CU_MEMHOSTALLOC_DEVICEMAP;
    return CUDA_SUCCESS;
}

/* A host address a copy names: inside a mirror with a device copy, the copy works on the
 * worker's bytes (1, *d set; the program's pages follow at the next synchronizing call); plain
 * host memory 0; running over a mirror's edge -1. */
static int host_side(const void *h, size_t n, CUdeviceptr *d)
{
    gf_mirror_info mi;
    int f = gf_mirror_find((uintptr_t)h, n ? n : 1, &mi);
    if (f <= 0) return f;
    if (!mi.dev) return 0; /* no device copy: host memory as any other */
    *d = mi.dev + ((uintptr_t)h - mi.base);
    return 1;
}

/* ---- stream-ordered memory pools ------------------------------------------------------------- */

static int pool_ok(CUmemoryPool p)
{
    return p && GF_RPC_HANDLE_KIND((uint64_t)(uintptr_t)p) == GF_RPC_H_MEMPOOL;
}

/* "props" of remote_proto.h. */
static void put_props(gf_wire_writer *w, unsigned type, unsigned handle_types,
                      const CUmemLocation *loc, unsigned alloc_flags)
{
    gf_wire_put_u32(w, type);
    gf_wire_put_u32(w, handle_types);
    gf_wire_put_u32(w, (uint32_t)loc->type);
    gf_wire_put_i32(w, loc->id);
    gf_wire_put_u32(w, alloc_flags);
}

static unsigned alloc_flags_of(const CUmemAllocationProp *p)
{
    return (unsigned)p->allocFlags.compressionType |
           (unsigned)p->allocFlags.gpuDirectRDMACapable << 8 | (unsigned)p->allocFlags.usage << 16;
}

/* A synchronous call whose reply is one u64 (*out) after the result. */
static CUresult call_u64(gf_rreq *q, uint64_t *out)
{
    LOCK();
    CUresult rc = CUDA_SUCCESS;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) *out = gf_wire_get_u64(&rep);
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuDeviceGetDefaultMemPool(CUmemoryPool *pool, CUdevice d)
{
    CUresult r = dev_ok(d);
    if (r != CUDA_SUCCESS) return r;
    if (!pool) return CUDA_ERROR_INVALID_VALUE;
    *pool = (CUmemoryPool)(uintptr_t)GF_RPC_MEMPOOL_DEFAULT(d);
    return CUDA_SUCCESS;
}

static CUresult r_cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice d)
{
    CUresult r = dev_ok(d);
    if (r != CUDA_SUCCESS) return r;
    if (!pool) return CUDA_ERROR_INVALID_VALUE;
    *pool = (CUmemoryPool)(uintptr_t)pool_of_dev(d);
    return CUDA_SUCCESS;
}

static CUresult r_cuDeviceSetMemPool(CUdevice d, CUmemoryPool pool)
{
    CUresult r = dev_ok(d);
    if (r != CUDA_SUCCESS) return r;
    if (!pool_ok(pool)) return CUDA_ERROR_INVALID_VALUE;
    uint64_t id = (uint64_t)(uintptr_t)pool;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_DEVICE_SET_MEMPOOL);
    gf_wire_put_i32(&q.w, d);
    gf_wire_put_handle(&q.w, id);
    r = call_plain(&q);
    if (r == CUDA_SUCCESS) cur_pool[d] = id == GF_RPC_MEMPOOL_DEFAULT(d) ? 0 : id;
    return r;
}

/* The location forms (CUDA 13): device locations only; host pools are not served remotely. */
static CUresult location_dev(const CUmemLocation *loc, CUmemAllocationType type, CUdevice *d)
{
    if (!loc || type != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
    if (loc->type != CU_MEM_LOCATION_TYPE_DEVICE)
        return gf_remote_unsupported("memory pools of host locations");
    *d = loc->id;
    return dev_ok(loc->id);
}

static CUresult r_cuMemGetDefaultMemPool(CUmemoryPool *pool, CUmemLocation *loc,
                                         CUmemAllocationType type)
{
    CUdevice d = 0;
    CUresult r = location_dev(loc, type, &d);
    return r != CUDA_SUCCESS ? r : r_cuDeviceGetDefaultMemPool(pool, d);
}

static CUresult r_cuMemGetMemPool(CUmemoryPool *pool, CUmemLocation *loc, CUmemAllocationType type)
{
    CUdevice d = 0;
    CUresult r = location_dev(loc, type, &d);
    return r != CUDA_SUCCESS ? r : r_cuDeviceGetMemPool(pool, d);
}

static CUresult r_cuMemSetMemPool(CUmemLocation *loc, CUmemAllocationType type, CUmemoryPool pool)
{
    CUdevice d = 0;
    CUresult r = location_dev(loc, type, &d);
    return r != CUDA_SUCCESS ? r : r_cuDeviceSetMemPool(d, pool);
}

static CUresult r_cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *p)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!pool || !p) return CUDA_ERROR_INVALID_VALUE;
    uint64_t id = gf_remote_handle(GF_RPC_H_MEMPOOL, 0);
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEMPOOL_CREATE);
    gf_wire_put_handle(&q.w, id);
    put_props(&q.w, p->allocType, p->handleTypes, &p->location, (unsigned)p->usage << 16);
    gf_wire_put_u64(&q.w, p->maxSize);
    r = call_plain(&q);
    if (r == CUDA_SUCCESS) *pool = (CUmemoryPool)(uintptr_t)id;
    return r;
}

static CUresult r_cuMemPoolDestroy(CUmemoryPool pool)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!pool_ok(pool)) return CUDA_ERROR_INVALID_VALUE;
    uint64_t id = (uint64_t)(uintptr_t)pool;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEMPOOL_DESTROY);
    gf_wire_put_handle(&q.w, id);
    r = call_plain(&q);
    if (r == CUDA_SUCCESS) /* a device whose current pool it was uses its default pool again */
        for (int d = 0; d < GF_REMOTE_MAX_DEVS; d++)
            if (cur_pool[d] == id) cur_pool[d] = 0;
    return r;
}

/* The reuse policies are int, the sizes cuuint64_t (cuda.h). */
static int pool_attr_is_int(CUmemPool_attribute a)
{
    return a >= CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES &&
           a <= CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES;
}

static CUresult pool_attr(CUmemoryPool pool, CUmemPool_attribute a, void *v, int set)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!pool_ok(pool)) return CUDA_ERROR_INVALID_VALUE;
    if (!v || (!pool_attr_is_int(a) && (a < CU_MEMPOOL_ATTR_RELEASE_THRESHOLD ||
                                        a > CU_MEMPOOL_ATTR_USED_MEM_HIGH)))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t in = set ? (pool_attr_is_int(a) ? (uint64_t)(int64_t)*(int *)v : *(cuuint64_t *)v) : 0;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEMPOOL_ATTR);
    gf_wire_put_handle(&q.w, (uint64_t)(uintptr_t)pool);
    gf_wire_put_i32(&q.w, (int32_t)a);
    gf_wire_put_u32(&q.w, (uint32_t)set);
    gf_wire_put_u64(&q.w, in);
    uint64_t out = 0;
    r = call_u64(&q, &out);
    if (r == CUDA_SUCCESS && !set) {
        if (pool_attr_is_int(a)) *(int *)v = (int)(int64_t)out;
        else *(cuuint64_t *)v = out;
    }
    return r;
}

static CUresult r_cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute a, void *v)
{
    return pool_attr(pool, a, v, 0);
}

static CUresult r_cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute a, void *v)
{
    return pool_attr(pool, a, v, 1);
}

static CUresult r_cuMemPoolTrimTo(CUmemoryPool pool, size_t keep)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!pool_ok(pool)) return CUDA_ERROR_INVALID_VALUE;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEMPOOL_TRIM);
    gf_wire_put_handle(&q.w, (uint64_t)(uintptr_t)pool);
    gf_wire_put_u64(&q.w, keep);
    return call_plain(&q);
}

/* Synchronous, as cuMemAllocAsync is here: the program gets the pointer at once. */
static CUresult r_cuMemAllocFromPoolAsync(CUdeviceptr *p, size_t n, CUmemoryPool pool, CUstream s)
{
    CUresult r = need_ctx();
    uint64_t sh;
    if (r != CUDA_SUCCESS) return r;
    if (!p || !n || !pool_ok(pool)) return CUDA_ERROR_INVALID_VALUE;
    if (!stream_ok(s, &sh)) return CUDA_ERROR_INVALID_HANDLE;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_ALLOC_FROM_POOL);
    gf_wire_put_u64(&q.w, n);
    gf_wire_put_handle(&q.w, (uint64_t)(uintptr_t)pool);
    gf_wire_put_handle(&q.w, sh);
    uint64_t got = 0;
    LOCK();
    CUresult rc = CUDA_SUCCESS;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) {
        got = gf_wire_get_handle(&rep);
        *p = got;
        at_put((gf_ralloc){got, n, gf_remote_tl_ctx, 0, RA_DEVICE, (uint64_t)(uintptr_t)pool});
    }
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

/* ---- virtual memory management (VMM) --------------------------------------------------------- */

/* The allocation handles this process holds, with their properties (answered here) and the
 * program's references (cuMemCreate/import 1, each retain 1): an entry goes with its last
 * cuMemRelease. The worker keeps the physical memory while mappings remain. */
typedef struct {
    uint64_t id;
    uint32_t props[5];
    uint32_t refs;
} gf_rvmem;

/* Stand-ins for exported descriptors: a memfd of ours (by inode) -> the handle exported. */
typedef struct {
    dev_t dev;
    ino_t ino;
    uint64_t id;
} gf_rexport;

static pthread_mutex_t vm_lk = PTHREAD_MUTEX_INITIALIZER;
static gf_rvmem *vm;
static size_t vm_n, vm_cap;
static gf_rexport *ex;
static size_t ex_n, ex_cap;

/* Adds delta references to handle id (adding it with props when new); 0, or -1 when unknown
 * (delta < 0) or out of memory. */
static int vm_ref(uint64_t id, const uint32_t props[5], int delta)
{
    int rc = -1;
    pthread_mutex_lock(&vm_lk);
    size_t i = 0;
    while (i < vm_n && vm[i].id != id) i++;
    if (i == vm_n && delta > 0 && props) {
        if (vm_n == vm_cap) {
            size_t nc = vm_cap ? vm_cap * 2 : 64;
            gf_rvmem *n = realloc(vm, nc * sizeof *n);
            if (!n) goto out;
            vm = n;
            vm_cap = nc;
        }
        vm[vm_n] = (gf_rvmem){id, {0}, 0};
        memcpy(vm[vm_n].props, props, sizeof vm[vm_n].props);
        vm_n++;
    }
    if (i == vm_n) goto out;
    if (delta < 0 && vm[i].refs < (uint32_t)-delta) goto out;
    vm[i].refs += (uint32_t)delta;
    if (!vm[i].refs) vm[i] = vm[--vm_n];
    rc = 0;
out:
    pthread_mutex_unlock(&vm_lk);
    return rc;
}

static int vm_props(uint64_t id, uint32_t props[5])
{
    int found = 0;
    pthread_mutex_lock(&vm_lk);
    for (size_t i = 0; i < vm_n && !found; i++)
        if (vm[i].id == id) {
            memcpy(props, vm[i].props, sizeof vm[i].props);
            found = 1;
        }
    pthread_mutex_unlock(&vm_lk);
    return found;
}

static int vmem_ok(CUmemGenericAllocationHandle h)
{
    return GF_RPC_HANDLE_KIND((uint64_t)h) == GF_RPC_H_VMEM;
}

static void raw_props(const CUmemAllocationProp *p, uint32_t raw[5])
{
    raw[0] = (uint32_t)p->type;
    raw[1] = (uint32_t)p->requestedHandleTypes;
    raw[2] = (uint32_t)p->location.type;
    raw[3] = (uint32_t)p->location.id;
    raw[4] = alloc_flags_of(p);
}

static void put_raw_props(gf_wire_writer *w, const uint32_t raw[5])
{
    for (int i = 0; i < 5; i++) {
        if (i == 3) gf_wire_put_i32(w, (int32_t)raw[i]);
        else gf_wire_put_u32(w, raw[i]);
    }
}

static void get_raw_props(gf_wire_reader *r, uint32_t raw[5])
{
    for (int i = 0; i < 5; i++) raw[i] = gf_wire_get_u32(r);
}

static CUresult r_cuMemGetAllocationGranularity(size_t *g, const CUmemAllocationProp *p,
                                                CUmemAllocationGranularity_flags option)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!g || !p) return CUDA_ERROR_INVALID_VALUE;
    uint32_t raw[5];
    raw_props(p, raw);
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_GRANULARITY);
    put_raw_props(&q.w, raw);
    gf_wire_put_u32(&q.w, (uint32_t)option);
    uint64_t v = 0;
    r = call_u64(&q, &v);
    if (r == CUDA_SUCCESS) *g = (size_t)v;
    return r;
}

static CUresult r_cuMemAddressReserve(CUdeviceptr *p, size_t size, size_t align, CUdeviceptr addr,
                                      unsigned long long flags)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!p || !size) return CUDA_ERROR_INVALID_VALUE;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_VA_RESERVE);
    gf_wire_put_u64(&q.w, size);
    gf_wire_put_u64(&q.w, align);
    gf_wire_put_handle(&q.w, addr);
    gf_wire_put_u64(&q.w, flags);
    LOCK();
    CUresult rc = CUDA_SUCCESS;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) *p = gf_wire_get_handle(&rep);
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuMemAddressFree(CUdeviceptr p, size_t size)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_VA_FREE);
    gf_wire_put_handle(&q.w, p);
    gf_wire_put_u64(&q.w, size);
    return call_plain(&q);
}

static CUresult r_cuMemCreate(CUmemGenericAllocationHandle *h, size_t size,
                              const CUmemAllocationProp *p, unsigned long long flags)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!h || !p || !size) return CUDA_ERROR_INVALID_VALUE;
    uint32_t raw[5];
    raw_props(p, raw);
    uint64_t id = gf_remote_handle(GF_RPC_H_VMEM, 0);
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_CREATE);
    gf_wire_put_handle(&q.w, id);
    gf_wire_put_u64(&q.w, size);
    put_raw_props(&q.w, raw);
    gf_wire_put_u64(&q.w, flags);
    r = call_plain(&q);
    if (r != CUDA_SUCCESS) return r;
    if (vm_ref(id, raw, 1) != 0) { /* no room to remember it: give it back */
        gf_rreq_init(&q, GF_RPC_MEM_RELEASE);
        gf_wire_put_handle(&q.w, id);
        call_plain(&q);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *h = id;
    return CUDA_SUCCESS;
}

static CUresult r_cuMemRelease(CUmemGenericAllocationHandle h)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!vmem_ok(h)) return CUDA_ERROR_INVALID_VALUE;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_RELEASE);
    gf_wire_put_handle(&q.w, (uint64_t)h);
    r = call_plain(&q);
    if (r == CUDA_SUCCESS) vm_ref((uint64_t)h, NULL, -1);
    return r;
}

/* A mapped range becomes device memory of this process: copies, memsets and pointer queries
 * find it in the allocation table until it is unmapped. */
static CUresult r_cuMemMap(CUdeviceptr p, size_t size, size_t off, CUmemGenericAllocationHandle h,
                           unsigned long long flags)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!vmem_ok(h) || !size) return CUDA_ERROR_INVALID_VALUE;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_MAP);
    gf_wire_put_handle(&q.w, p);
    gf_wire_put_u64(&q.w, size);
    gf_wire_put_u64(&q.w, off);
    gf_wire_put_handle(&q.w, (uint64_t)h);
    gf_wire_put_u64(&q.w, flags);
    r = call_plain(&q);
    if (r == CUDA_SUCCESS) at_put((gf_ralloc){p, size, gf_remote_tl_ctx, 0, RA_VMM, 0});
    return r;
}

static CUresult r_cuMemUnmap(CUdeviceptr p, size_t size)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_UNMAP);
    gf_wire_put_handle(&q.w, p);
    gf_wire_put_u64(&q.w, size);
    r = call_plain(&q);
    if (r == CUDA_SUCCESS) at_del_vmm(p, p + size);
    return r;
}

static CUresult r_cuMemSetAccess(CUdeviceptr p, size_t size, const CUmemAccessDesc *d, size_t n)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!d || !n || n > GF_REMOTE_MAX_DEVS) return CUDA_ERROR_INVALID_VALUE;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_SET_ACCESS);
    gf_wire_put_handle(&q.w, p);
    gf_wire_put_u64(&q.w, size);
    gf_wire_put_u32(&q.w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        gf_wire_put_u32(&q.w, (uint32_t)d[i].location.type);
        gf_wire_put_i32(&q.w, d[i].location.id);
        gf_wire_put_u32(&q.w, (uint32_t)d[i].flags);
    }
    return call_plain(&q);
}

static CUresult r_cuMemGetAccess(unsigned long long *flags, const CUmemLocation *loc, CUdeviceptr p)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!flags || !loc) return CUDA_ERROR_INVALID_VALUE;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_GET_ACCESS);
    gf_wire_put_u32(&q.w, (uint32_t)loc->type);
    gf_wire_put_i32(&q.w, loc->id);
    gf_wire_put_handle(&q.w, p);
    uint64_t v = 0;
    r = call_u64(&q, &v);
    if (r == CUDA_SUCCESS) *flags = v;
    return r;
}

static CUresult r_cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *p,
                                                         CUmemGenericAllocationHandle h)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    uint32_t raw[5];
    if (!p || !vmem_ok(h) || !vm_props((uint64_t)h, raw)) return CUDA_ERROR_INVALID_VALUE;
    memset(p, 0, sizeof *p);
    p->type = (CUmemAllocationType)raw[0];
    p->requestedHandleTypes = (CUmemAllocationHandleType)raw[1];
    p->location.type = (CUmemLocationType)raw[2];
    p->location.id = (int)raw[3];
    p->allocFlags.compressionType = (unsigned char)(raw[4] & 0xff);
    p->allocFlags.gpuDirectRDMACapable = (unsigned char)((raw[4] >> 8) & 0xff);
    p->allocFlags.usage = (unsigned short)(raw[4] >> 16);
    return CUDA_SUCCESS;
}

/* A handle and its properties from a reply (retain, import); 0 or a CUresult. */
static CUresult handle_reply(gf_rreq *q, uint64_t known, CUmemGenericAllocationHandle *h)
{
    LOCK();
    CUresult rc = CUDA_SUCCESS;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) {
        uint64_t id = known ? known : gf_wire_get_handle(&rep);
        uint32_t raw[5];
        get_raw_props(&rep, raw);
        if (gf_wire_reader_status(&rep, 0, NULL, 0) != GF_OK) rc = CUDA_ERROR_UNKNOWN;
        else if (vm_ref(id, raw, 1) != 0) rc = CUDA_ERROR_OUT_OF_MEMORY;
        else *h = id;
    }
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *h, void *addr)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!h) return CUDA_ERROR_INVALID_VALUE;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_RETAIN_HANDLE);
    gf_wire_put_handle(&q.w, (uint64_t)(uintptr_t)addr);
    return handle_reply(&q, 0, h);
}

/* The worker's descriptor cannot cross the network: the program gets a memfd of ours that
 * stands for the handle (it can be dup'ed, kept and closed as usual) and that
 * cuMemImportFromShareableHandle in this process turns back into the memory. */
#define EXPORT_NAME "gpufuse-vmm-export"

static CUresult r_cuMemExportToShareableHandle(void *out, CUmemGenericAllocationHandle h,
                                               CUmemAllocationHandleType type,
                                               unsigned long long flags)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!out || !vmem_ok(h) || flags) return CUDA_ERROR_INVALID_VALUE;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_EXPORT);
    gf_wire_put_handle(&q.w, (uint64_t)h);
    gf_wire_put_u32(&q.w, (uint32_t)type);
    if ((r = call_plain(&q)) != CUDA_SUCCESS) return r;
    int fd = memfd_create(EXPORT_NAME, MFD_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0) close(fd);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_lock(&vm_lk);
    size_t i = 0;
    while (i < ex_n && (ex[i].dev != st.st_dev || ex[i].ino != st.st_ino)) i++;
    if (i == ex_n && ex_n == ex_cap) {
        size_t nc = ex_cap ? ex_cap * 2 : 16;
        gf_rexport *n = realloc(ex, nc * sizeof *n);
        if (n) {
            ex = n;
            ex_cap = nc;
        }
    }
    int ok = i < ex_cap;
    if (ok) {
        ex[i] = (gf_rexport){st.st_dev, st.st_ino, (uint64_t)h};
        if (i == ex_n) ex_n++;
    }
    pthread_mutex_unlock(&vm_lk);
    if (!ok) {
        close(fd);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *(int *)out = fd;
    return CUDA_SUCCESS;
}

static CUresult r_cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *h, void *os,
                                                 CUmemAllocationHandleType type)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!h) return CUDA_ERROR_INVALID_VALUE;
    if (type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
        return gf_remote_unsupported("cuMemImportFromShareableHandle (handle types other than "
                                     "POSIX file descriptors)");
    int fd = (int)(intptr_t)os;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) return CUDA_ERROR_INVALID_VALUE;
    uint64_t src = 0;
    pthread_mutex_lock(&vm_lk);
    for (size_t i = 0; i < ex_n && !src; i++)
        if (ex[i].dev == st.st_dev && ex[i].ino == st.st_ino) src = ex[i].id;
    pthread_mutex_unlock(&vm_lk);
    if (!src) {
        /* Another process's stand-in: its memory belongs to another session, which this one
         * may not touch. Anything else is no shareable handle at all. */
        char link[64], target[256] = "";
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0 && strstr(target, EXPORT_NAME))
            return gf_remote_unsupported("cuMemImportFromShareableHandle of memory another "
                                         "process exported (another remote session)");
        return CUDA_ERROR_INVALID_VALUE;
    }
    uint64_t id = gf_remote_handle(GF_RPC_H_VMEM, 0);
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEM_IMPORT);
    gf_wire_put_handle(&q.w, id);
    gf_wire_put_handle(&q.w, src);
    gf_wire_put_u32(&q.w, (uint32_t)type);
    return handle_reply(&q, id, h);
}

/* ---- peer access ------------------------------------------------------------------------------ */

static CUresult peer_access(CUcontext peer, int enable, unsigned flags)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if (!ctx_ok(peer)) return CUDA_ERROR_INVALID_CONTEXT;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_PEER_ACCESS);
    gf_wire_put_handle(&q.w, (uint64_t)(uintptr_t)peer);
    gf_wire_put_u32(&q.w, (uint32_t)enable);
    gf_wire_put_u32(&q.w, flags);
    return call_plain(&q);
}

static CUresult r_cuCtxEnablePeerAccess(CUcontext peer, unsigned flags)
{
    return peer_access(peer, 1, flags);
}

static CUresult r_cuCtxDisablePeerAccess(CUcontext peer)
{
    return peer_access(peer, 0, 0);
}

/* ---- copies and memsets ------------------------------------------------------------------------ */

static CUresult dtod(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s, int async);

static CUresult htod(CUdeviceptr dst, const void *src, size_t n, CUstream s, int async)
{
    CUresult r = need_ctx();
    uint64_t sh = 0;
    if (r != CUDA_SUCCESS) return r;
    if (n && !src) return CUDA_ERROR_INVALID_VALUE;
    CUdeviceptr ms = 0;
    int hs = n ? host_side(src, n, &ms) : 0;
    if (hs < 0) return CUDA_ERROR_INVALID_VALUE;
    if (hs) return dtod(dst, ms, n, s, async);
    if (async && !stream_ok(s, &sh)) return CUDA_ERROR_INVALID_HANDLE;
    if (at_overruns(dst, n)) return CUDA_ERROR_INVALID_VALUE;
    LOCK();
    gf_rreq q;
    gf_rreq_init(&q, async ? GF_RPC_MEMCPY_HTOD_ASYNC : GF_RPC_MEMCPY_HTOD);
    gf_wire_put_handle(&q.w, dst);
    gf_wire_put_u64(&q.w, n);
    if (async) gf_wire_put_handle(&q.w, sh);
    CUresult rc = CUDA_SUCCESS, t;
    gf_wire_reader rep;
    if (n <= GF_RPC_INLINE_MAX && async) {
        /* Small async copies: the bytes go into the batch (pageable semantics: copied now). */
        uint8_t stackbuf[GF_RPC_INLINE_MAX + 128];
        gf_wire_writer w;
        gf_wire_writer_init_fixed(&w, stackbuf, sizeof stackbuf);
        gf_wire_put_raw(&w, q.w.buf, q.w.len);
        gf_wire_put_u32(&w, 1);
        gf_wire_put_bytes(&w, src, n);
        t = gf_remote_queue_raw(q.kind, w.buf, w.len);
    } else if (n <= GF_RPC_INLINE_MAX) {
        gf_wire_writer w;
        gf_wire_writer_init(&w, 0);
        gf_wire_put_raw(&w, q.w.buf, q.w.len);
        gf_wire_put_u32(&w, 1);
        gf_wire_put_bytes(&w, src, n);
        /* Borrow w's buffer as the request's. */
        gf_rreq big = q;
        big.w = w;
        t = gf_remote_sync(&big, &rc, &rep, NULL);
        gf_wire_writer_free(&w);
    } else {
        gf_wire_put_u32(&q.w, 0);
        t = gf_remote_sync_bulk(&q, src, n, async, &rc, &rep);
    }
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuMemcpyHtoD(CUdeviceptr dst, const void *src, size_t n)
{
    return htod(dst, src, n, NULL, 0);
}

static CUresult r_cuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t n, CUstream s)
{
    return htod(dst, src, n, s, 1);
}

static CUresult dtoh(void *dst, CUdeviceptr src, size_t n, CUstream s, int async)
{
    CUresult r = need_ctx();
    uint64_t sh = 0;
    if (r != CUDA_SUCCESS) return r;
    if (n && !dst) return CUDA_ERROR_INVALID_VALUE;
    CUdeviceptr md = 0;
    int hs = n ? host_side(dst, n, &md) : 0;
    if (hs < 0) return CUDA_ERROR_INVALID_VALUE;
    if (hs) return dtod(md, src, n, s, async);
    if (async && !stream_ok(s, &sh)) return CUDA_ERROR_INVALID_HANDLE;
    if (at_overruns(src, n)) return CUDA_ERROR_INVALID_VALUE;
    LOCK();
    gf_rreq q;
    if (async) {
        /* In stream order on the worker; the data comes back before a later synchronizing
         * answer (docs/remote.md). */
        gf_rreq_init(&q, GF_RPC_MEMCPY_DTOH_ASYNC);
        gf_wire_put_handle(&q.w, src);
        gf_wire_put_u64(&q.w, n);
        gf_wire_put_handle(&q.w, sh);
        CUresult a = gf_remote_dtoh_async(&q, dst, n);
        if (a != CUDA_ERROR_NOT_READY) {
            gf_remote_unlock();
            return a;
        }
    }
    gf_rreq_init(&q, GF_RPC_MEMCPY_DTOH);
    gf_wire_put_handle(&q.w, src);
    gf_wire_put_u64(&q.w, n);
    gf_wire_put_handle(&q.w, sh);
    gf_wire_put_u32(&q.w, (uint32_t)async);
    CUresult rc;
    gf_wire_reader rep;
    uint64_t rid;
    CUresult t = gf_remote_sync(&q, &rc, &rep, &rid);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) t = gf_remote_recv_bulk(rid, dst, n);
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuMemcpyDtoH(void *dst, CUdeviceptr src, size_t n)
{
    return dtoh(dst, src, n, NULL, 0);
}

static CUresult r_cuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t n, CUstream s)
{
    return dtoh(dst, src, n, s, 1);
}

static CUresult dtod(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s, int async)
{
    CUresult r = need_ctx();
    uint64_t sh = 0;
    if (r != CUDA_SUCCESS) return r;
    if (async && !stream_ok(s, &sh)) return CUDA_ERROR_INVALID_HANDLE;
    if (at_overruns(dst, n) || at_overruns(src, n)) return CUDA_ERROR_INVALID_VALUE;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEMCPY_DTOD);
    gf_wire_put_handle(&q.w, dst);
    gf_wire_put_handle(&q.w, src);
    gf_wire_put_u64(&q.w, n);
    gf_wire_put_handle(&q.w, sh);
    gf_wire_put_u32(&q.w, (uint32_t)async);
    return async ? call_async(&q) : call_plain(&q);
}

static CUresult r_cuMemcpyDtoD(CUdeviceptr d, CUdeviceptr s, size_t n)
{
    return dtod(d, s, n, NULL, 0);
}

static CUresult r_cuMemcpyDtoDAsync(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st)
{
    return dtod(d, s, n, st, 1);
}

static CUresult memset_any(CUdeviceptr dst, uint32_t v, unsigned esz, size_t count, CUstream s,
                           int async)
{
    CUresult r = need_ctx();
    uint64_t sh = 0;
    if (r != CUDA_SUCCESS) return r;
    if (async && !stream_ok(s, &sh)) return CUDA_ERROR_INVALID_HANDLE;
    if (count && dst % esz) return CUDA_ERROR_INVALID_VALUE; /* as a driver: at once */
    if (count <= UINT64_MAX / esz && at_overruns(dst, (uint64_t)count * esz))
        return CUDA_ERROR_INVALID_VALUE;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MEMSET);
    gf_wire_put_handle(&q.w, dst);
    gf_wire_put_u32(&q.w, v);
    gf_wire_put_u32(&q.w, esz);
    gf_wire_put_u64(&q.w, count);
    gf_wire_put_handle(&q.w, sh);
    gf_wire_put_u32(&q.w, (uint32_t)async);
    return async ? call_async(&q) : call_plain(&q);
}

static CUresult r_cuMemsetD8(CUdeviceptr d, unsigned char v, size_t n) { return memset_any(d, v, 1, n, NULL, 0); }
static CUresult r_cuMemsetD16(CUdeviceptr d, unsigned short v, size_t n) { return memset_any(d, v, 2, n, NULL, 0); }
static CUresult r_cuMemsetD32(CUdeviceptr d, unsigned int v, size_t n) { return memset_any(d, v, 4, n, NULL, 0); }
static CUresult r_cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, CUstream s) { return memset_any(d, v, 1, n, s, 1); }
static CUresult r_cuMemsetD16Async(CUdeviceptr d, unsigned short v, size_t n, CUstream s) { return memset_any(d, v, 2, n, s, 1); }
static CUresult r_cuMemsetD32Async(CUdeviceptr d, unsigned int v, size_t n, CUstream s) { return memset_any(d, v, 4, n, s, 1); }

/* ---- pointer attributes, unified, 2D and peer copies ------------------------------------------- */

static CUresult r_cuStreamSynchronize(CUstream s);

/* What the driver knows of p: a range of the allocation table, or pinned/registered host
 * memory (a host mirror); its device address, and its host address (0: none). Anything else is
 * host memory the driver does not know. */
typedef struct {
    gf_ralloc al;
    uint64_t dev, host;
} ptr_info;

static int ptr_lookup(CUdeviceptr p, ptr_info *pi)
{
    gf_mirror_info mi;
    if (gf_mirror_find(p, 1, &mi) == 1 && mi.kind != GF_MIRROR_MANAGED) {
        pi->al = (gf_ralloc){mi.base, mi.size, mi.ctx, 0, RA_MAPPED, 0};
        pi->dev = (mi.dev ? mi.dev : mi.base) + (p - mi.base);
        pi->host = p;
        return 1;
    }
    if (!at_find(p, &pi->al)) return 0;
    pi->dev = p;
    pi->host = pi->al.kind == RA_MANAGED ? p : 0;
    return 1;
}

static CUresult ptr_attr(void *data, CUpointer_attribute a, const ptr_info *pi)
{
    const gf_ralloc *al = &pi->al;
    switch (a) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: *(CUcontext *)data = (CUcontext)(uintptr_t)al->ctx; break;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        *(unsigned *)data = al->kind == RA_MAPPED ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
        break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: *(CUdeviceptr *)data = pi->dev; break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        if (!pi->host) return CUDA_ERROR_INVALID_VALUE;
        *(void **)data = (void *)(uintptr_t)pi->host;
        break;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS: *(int *)data = 1; break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID: *(unsigned long long *)data = al->base; break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED: *(unsigned *)data = al->kind == RA_MANAGED; break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *(int *)data = ctx_dev(al->ctx); break;
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE: *(int *)data = 0; break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR: *(CUdeviceptr *)data = al->base; break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE: *(size_t *)data = al->size; break;
    case CU_POINTER_ATTRIBUTE_MAPPED: *(int *)data = 1; break;
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES: *(unsigned long long *)data = 0; break;
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE: *(int *)data = 0; break;
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
        *(unsigned *)data = CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE;
        break;
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE: *(void **)data = (void *)(uintptr_t)al->pool; break;
    case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID: *(unsigned long long *)data = al->base; break;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

static int attr_known(CUpointer_attribute a)
{
    return (int)a >= CU_POINTER_ATTRIBUTE_CONTEXT && (int)a <= CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID &&
           a != CU_POINTER_ATTRIBUTE_P2P_TOKENS;
}

static CUresult r_cuPointerGetAttribute(void *data, CUpointer_attribute a, CUdeviceptr p)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!data || !attr_known(a)) return CUDA_ERROR_INVALID_VALUE;
    ptr_info pi;
    if (!ptr_lookup(p, &pi)) return CUDA_ERROR_INVALID_VALUE;
    return ptr_attr(data, a, &pi);
}

/* Unlike the single-attribute call, memory the driver does not know is no error: its
 * attributes read as zero/NULL (CU_MEMORYTYPE 0, no context). */
static CUresult r_cuPointerGetAttributes(unsigned n, CUpointer_attribute *a, void **data,
                                         CUdeviceptr p)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!n || !a || !data) return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < n; i++)
        if (!data[i] || !attr_known(a[i])) return CUDA_ERROR_INVALID_VALUE;
    ptr_info pi;
    int dev = ptr_lookup(p, &pi);
    for (unsigned i = 0; i < n; i++) {
        if (dev && ptr_attr(data[i], a[i], &pi) == CUDA_SUCCESS) continue;
        switch (a[i]) { /* zero of the attribute's own size */
        case CU_POINTER_ATTRIBUTE_CONTEXT:
        case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE: *(void **)data[i] = NULL; break;
        case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
        case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR: *(CUdeviceptr *)data[i] = 0; break;
        case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        case CU_POINTER_ATTRIBUTE_MAPPING_SIZE: *(size_t *)data[i] = 0; break;
        case CU_POINTER_ATTRIBUTE_BUFFER_ID:
        case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
        case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID: *(unsigned long long *)data[i] = 0; break;
        case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *(int *)data[i] = dev ? 0 : -2; break;
        default: *(unsigned *)data[i] = 0; break;
        }
    }
    return CUDA_SUCCESS;
}

/* Unified addressing: which side each pointer is on comes from the allocation table. */
static CUresult unified_copy(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s, int async)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if (!n) return CUDA_SUCCESS;
    gf_ralloc x;
    int dd = at_find(dst, &x), sd = at_find(src, &x);
    if (dd && sd) return dtod(dst, src, n, s, async);
    if (dd) return htod(dst, (const void *)(uintptr_t)src, n, s, async);
    if (sd) return dtoh((void *)(uintptr_t)dst, src, n, s, async);
    if (!dst || !src) return CUDA_ERROR_INVALID_VALUE;
    CUdeviceptr md = 0;
    int hs = host_side((const void *)(uintptr_t)dst, n, &md);
    if (hs < 0) return CUDA_ERROR_INVALID_VALUE;
    if (hs) return htod(md, (const void *)(uintptr_t)src, n, s, async);
    if ((hs = host_side((const void *)(uintptr_t)src, n, &md)) != 0)
        return hs < 0 ? CUDA_ERROR_INVALID_VALUE : dtoh((void *)(uintptr_t)dst, md, n, s, async);
    if (async && (r = r_cuStreamSynchronize(s)) != CUDA_SUCCESS) return r;
    memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    return CUDA_SUCCESS;
}

static CUresult r_cuMemcpy(CUdeviceptr d, CUdeviceptr s, size_t n)
{
    return unified_copy(d, s, n, NULL, 0);
}

static CUresult r_cuMemcpyAsync(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st)
{
    return unified_copy(d, s, n, st, 1);
}

/* Peer copies between contexts of this session: a device-to-device copy (the worker checks both
 * ranges against the session's allocations, on any of its devices). */
static CUresult peer_copy(CUdeviceptr d, CUcontext dc, CUdeviceptr s, CUcontext sc, size_t n,
                          CUstream st, int async)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!ctx_ok(dc) || !ctx_ok(sc)) return CUDA_ERROR_INVALID_CONTEXT;
    if (!n) return CUDA_SUCCESS;
    gf_ralloc a;
    if (!at_find(d, &a) || !at_find(s, &a)) return CUDA_ERROR_INVALID_VALUE;
    return dtod(d, s, n, st, async);
}

static CUresult r_cuMemcpyPeer(CUdeviceptr d, CUcontext dc, CUdeviceptr s, CUcontext sc, size_t n)
{
    return peer_copy(d, dc, s, sc, n, NULL, 0);
}

static CUresult r_cuMemcpyPeerAsync(CUdeviceptr d, CUcontext dc, CUdeviceptr s, CUcontext sc,
                                    size_t n, CUstream st)
{
    return peer_copy(d, dc, s, sc, n, st, 1);
}

/* One side of a 2D copy: host (h) or device (d) address of its first byte. */
typedef struct {
    int dev;
    uint8_t *h;
    CUdeviceptr d;
    size_t pitch;
} side2d;

static CUresult side_of(CUmemorytype t, const void *host, CUdeviceptr dev, size_t x, size_t y,
                        size_t pitch, side2d *o)
{
    if (t == CU_MEMORYTYPE_UNIFIED) {
        gf_ralloc a;
        t = at_find(dev, &a) ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
        host = (const void *)(uintptr_t)dev;
    }
    if (y && pitch > (SIZE_MAX - x) / y) return CUDA_ERROR_INVALID_VALUE;
    size_t off = y * pitch + x;
    o->pitch = pitch;
    if (t == CU_MEMORYTYPE_DEVICE) {
        if (!dev) return CUDA_ERROR_INVALID_VALUE;
        o->dev = 1;
        o->d = dev + off;
        return CUDA_SUCCESS;
    }
    if (t == CU_MEMORYTYPE_HOST) {
        if (!host) return CUDA_ERROR_INVALID_VALUE;
        CUdeviceptr md = 0;
        int hs = host_side((const uint8_t *)host + off, 1, &md);
        if (hs < 0) return CUDA_ERROR_INVALID_VALUE;
        o->dev = hs;
        o->d = md;
        o->h = (uint8_t *)(uintptr_t)host + off;
        return CUDA_SUCCESS;
    }
    return t == CU_MEMORYTYPE_ARRAY ? CUDA_ERROR_NOT_SUPPORTED : CUDA_ERROR_INVALID_VALUE;
}

/* A 2D copy as the existing calls, row by row (the worker checks every row's range); device
 * rows read back as one span. Synchronous copies end with a synchronous call, so they are done
 * (and their errors known) when this returns. */
static CUresult copy2d(const CUDA_MEMCPY2D *c, CUstream s, int async)
{
    CUresult r = need_ctx();
    uint64_t sh;
    if (r != CUDA_SUCCESS) return r;
    if (!c) return CUDA_ERROR_INVALID_VALUE;
    if (async && !stream_ok(s, &sh)) return CUDA_ERROR_INVALID_HANDLE;
    side2d S, D;
    if ((r = side_of(c->srcMemoryType, c->srcHost, c->srcDevice, c->srcXInBytes, c->srcY,
                     c->srcPitch, &S)) != CUDA_SUCCESS ||
        (r = side_of(c->dstMemoryType, c->dstHost, c->dstDevice, c->dstXInBytes, c->dstY,
                     c->dstPitch, &D)) != CUDA_SUCCESS)
        return r;
    size_t w = c->WidthInBytes, h = c->Height;
    if (!w || !h) return CUDA_SUCCESS;
    if (h > 1 && (S.pitch < w || D.pitch < w)) return CUDA_ERROR_INVALID_VALUE;
    if ((S.pitch && h - 1 > (SIZE_MAX - w) / S.pitch) ||
        (D.pitch && h - 1 > (SIZE_MAX - w) / D.pitch))
        return CUDA_ERROR_INVALID_VALUE;
    size_t sspan = (h - 1) * S.pitch + w, dspan = (h - 1) * D.pitch + w;
    if ((S.dev && at_overruns(S.d, sspan)) || (D.dev && at_overruns(D.d, dspan)))
        return CUDA_ERROR_INVALID_VALUE;
    if (!S.dev && !D.dev) {
        if (async && (r = r_cuStreamSynchronize(s)) != CUDA_SUCCESS) return r;
        for (size_t y = 0; y < h; y++) memmove(D.h + y * D.pitch, S.h + y * S.pitch, w);
        return CUDA_SUCCESS;
    }
    if (S.dev && !D.dev) {
        /* Device to host: the span of source rows in one copy, then spread over the rows. */
        if (S.pitch == w && D.pitch == w) return dtoh(D.h, S.d, sspan, s, async);
        uint8_t *tmp = malloc(sspan);
        if (!tmp) return CUDA_ERROR_OUT_OF_MEMORY;
        if (async && (r = r_cuStreamSynchronize(s)) != CUDA_SUCCESS) {
            free(tmp);
            return r;
        }
        r = dtoh(tmp, S.d, sspan, NULL, 0);
        if (r == CUDA_SUCCESS)
            for (size_t y = 0; y < h; y++) memcpy(D.h + y * D.pitch, tmp + y * S.pitch, w);
        free(tmp);
        return r;
    }
    if (S.pitch == w && D.pitch == w)
        return S.dev ? dtod(D.d, S.d, sspan, s, async) : htod(D.d, S.h, sspan, s, async);
    for (size_t y = 0; y < h; y++) {
        int last = y + 1 == h;
        CUstream rs = async || !last ? s : NULL;
        int ra = async || !last;
        r = S.dev ? dtod(D.d + y * D.pitch, S.d + y * S.pitch, w, rs, ra)
                  : htod(D.d + y * D.pitch, S.h + y * S.pitch, w, rs, ra);
        if (r != CUDA_SUCCESS) return r;
    }
    return CUDA_SUCCESS;
}

static CUresult r_cuMemcpy2D(const CUDA_MEMCPY2D *c)
{
    return copy2d(c, NULL, 0);
}

static CUresult r_cuMemcpy2DAsync(const CUDA_MEMCPY2D *c, CUstream s)
{
    return copy2d(c, s, 1);
}

/* Row by row, as queued memsets; a synchronous one ends with a synchronous row. */
static CUresult memset2d(CUdeviceptr d, size_t pitch, uint32_t v, unsigned esz, size_t w,
                         size_t h, CUstream s, int async)
{
    CUresult r = need_ctx();
    uint64_t sh;
    if (r != CUDA_SUCCESS) return r;
    if (async && !stream_ok(s, &sh)) return CUDA_ERROR_INVALID_HANDLE;
    if (!w || !h) return CUDA_SUCCESS;
    if (d % esz || (h > 1 && pitch % esz)) return CUDA_ERROR_INVALID_VALUE;
    if (w > SIZE_MAX / esz || (h > 1 && pitch < w * esz)) return CUDA_ERROR_INVALID_VALUE;
    if (pitch && h - 1 > (SIZE_MAX - w * esz) / pitch) return CUDA_ERROR_INVALID_VALUE;
    if (at_overruns(d, (h - 1) * pitch + w * esz)) return CUDA_ERROR_INVALID_VALUE;
    if (pitch == w * esz) return memset_any(d, v, esz, w * h, s, async);
    for (size_t y = 0; y < h; y++) {
        int last = y + 1 == h;
        r = memset_any(d + y * pitch, v, esz, w, async || !last ? s : NULL, async || !last);
        if (r != CUDA_SUCCESS) return r;
    }
    return CUDA_SUCCESS;
}

static CUresult r_cuMemsetD2D8(CUdeviceptr d, size_t p, unsigned char v, size_t w, size_t h) { return memset2d(d, p, v, 1, w, h, NULL, 0); }
static CUresult r_cuMemsetD2D16(CUdeviceptr d, size_t p, unsigned short v, size_t w, size_t h) { return memset2d(d, p, v, 2, w, h, NULL, 0); }
static CUresult r_cuMemsetD2D32(CUdeviceptr d, size_t p, unsigned int v, size_t w, size_t h) { return memset2d(d, p, v, 4, w, h, NULL, 0); }
static CUresult r_cuMemsetD2D8Async(CUdeviceptr d, size_t p, unsigned char v, size_t w, size_t h, CUstream s) { return memset2d(d, p, v, 1, w, h, s, 1); }
static CUresult r_cuMemsetD2D16Async(CUdeviceptr d, size_t p, unsigned short v, size_t w, size_t h, CUstream s) { return memset2d(d, p, v, 2, w, h, s, 1); }
static CUresult r_cuMemsetD2D32Async(CUdeviceptr d, size_t p, unsigned int v, size_t w, size_t h, CUstream s) { return memset2d(d, p, v, 4, w, h, s, 1); }

/* ---- modules, libraries, functions ------------------------------------------------------------- */

/* Where the bytes of an image are and how many: the runtime's wrapper points at a fatbin. */
static CUresult image_extent(const void *image, const void **data, size_t *n)
{
    if (!image) return CUDA_ERROR_INVALID_VALUE;
    if (gf_image_kind_of(image, SIZE_MAX) == GF_IMAGE_WRAPPER) {
        const void *fb;
        memcpy(&fb, (const uint8_t *)image + 8, sizeof fb);
        image = fb;
    }
    if (!image || gf_image_size(image, SIZE_MAX, n) != 0 || !*n) return CUDA_ERROR_INVALID_IMAGE;
    if (*n > GF_RPC_IMAGE_MAX) {
        /* Its header claims more than any image a frame carries: a corrupt size field (the
         * driver's INVALID_IMAGE), or an image too large to send; either way its bytes past
         * what the program holds must not be read. */
        gf_log(GF_LOG_ERROR, GF_REMOTE_LOG, "module image of %zu bytes (by its header): "
               "malformed, or more than the %u bytes a remote load carries", *n,
               (unsigned)GF_RPC_IMAGE_MAX);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    *data = image;
    return CUDA_SUCCESS;
}

/* The JIT options of a load that ask for output: the info and error log buffers (and where
 * their sizes are, which the driver overwrites with the bytes it filled). */
typedef struct {
    char *buf[2];       /* info, error */
    size_t cap[2];
    int size_at[2];     /* index of the *_SIZE_BYTES option, -1 none */
} jit_logs;

static void jit_logs_parse(jit_logs *j, unsigned n, const CUjit_option *o, void **v)
{
    memset(j, 0, sizeof *j);
    j->size_at[0] = j->size_at[1] = -1;
    if (!o || !v) return;
    for (unsigned i = 0; i < n; i++) {
        int k = o[i] == CU_JIT_INFO_LOG_BUFFER || o[i] == CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES ? 0
                : o[i] == CU_JIT_ERROR_LOG_BUFFER || o[i] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES
                    ? 1
                    : -1;
        if (k < 0) continue;
        if (o[i] == CU_JIT_INFO_LOG_BUFFER || o[i] == CU_JIT_ERROR_LOG_BUFFER) {
            j->buf[k] = v[i];
        } else {
            j->cap[k] = (size_t)(uintptr_t)v[i];
            j->size_at[k] = (int)i;
        }
    }
}

/* Under the lock, after a MODULE_LOAD: the worker's JIT logs into the program's buffers. */
static void jit_logs_fetch(const jit_logs *j, void **v)
{
    if (!(j->buf[0] && j->cap[0]) && !(j->buf[1] && j->cap[1])) return;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_JIT_LOG);
    CUresult rc;
    gf_wire_reader rep;
    if (gf_remote_sync(&q, &rc, &rep, NULL) != CUDA_SUCCESS || rc != CUDA_SUCCESS) return;
    for (int k = 0; k < 2; k++) {
        const uint8_t *log;
        size_t len = gf_wire_get_bytes(&rep, &log);
        uint64_t filled = gf_wire_get_u64(&rep);
        if (gf_wire_reader_status(&rep, 0, NULL, 0) != GF_OK) return;
        int want = j->buf[k] && j->cap[k];
        if (want) { /* truncated to the program's buffer, as the driver truncates */
            size_t m = len < j->cap[k] - 1 ? len : j->cap[k] - 1;
            memcpy(j->buf[k], log, m);
            j->buf[k][m] = 0;
        }
        if (want && j->size_at[k] >= 0 && filled < j->cap[k])
            v[j->size_at[k]] = (void *)(uintptr_t)filled;
    }
}

static CUresult load_image(void **out, const void *image, int lib, unsigned nopt,
                           CUjit_option *opt, void **val)
{
    if (!out) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = lib ? need_init() : need_ctx();
    if (r != CUDA_SUCCESS) return r;
    const void *data;
    size_t n;
    if ((r = image_extent(image, &data, &n)) != CUDA_SUCCESS) return r;
    LOCK();
    uint64_t id = gf_remote_handle(lib ? GF_RPC_H_LIBRARY : GF_RPC_H_MODULE, 0);
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MODULE_LOAD);
    gf_wire_writer w;
    gf_wire_writer_init(&w, n + 256);
    gf_wire_put_handle(&w, id);
    gf_wire_put_u32(&w, (uint32_t)lib);
    gf_wire_put_bytes(&w, data, n);
    q.w = w;
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    gf_wire_writer_free(&w);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) *out = (void *)(uintptr_t)id;
    if (t == CUDA_SUCCESS) {
        jit_logs j;
        jit_logs_parse(&j, nopt, opt, val);
        jit_logs_fetch(&j, val);
    }
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuModuleLoadData(CUmodule *m, const void *image)
{
    return load_image((void **)m, image, 0, 0, NULL, NULL);
}

static CUresult r_cuModuleLoadDataEx(CUmodule *m, const void *image, unsigned n, CUjit_option *o,
                                     void **v)
{
    return load_image((void **)m, image, 0, n, o, v);
}

static CUresult r_cuModuleLoadFatBinary(CUmodule *m, const void *image)
{
    return load_image((void **)m, image, 0, 0, NULL, NULL);
}

static CUresult r_cuModuleLoad(CUmodule *m, const char *path)
{
    if (!path) return CUDA_ERROR_INVALID_VALUE;
    FILE *f = fopen(path, "rb");
    if (!f) return CUDA_ERROR_FILE_NOT_FOUND;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
    if (b && fread(b, 1, (size_t)n, f) == (size_t)n) {
        b[n] = 0;
        r = load_image((void **)m, b, 0, 0, NULL, NULL);
    }
    free(b);
    fclose(f);
    return r;
}

static CUresult r_cuLibraryLoadData(CUlibrary *l, const void *code, CUjit_option *jo, void **jv,
                                    unsigned nj, CUlibraryOption *lo, void **lv, unsigned nl)
{
    (void)lo;
    (void)lv;
    (void)nl;
    return load_image((void **)l, code, 1, nj, jo, jv);
}

/* cuLibraryGetModule's module: the library under a module handle (bit 55 set; minted handles
 * keep it clear), so that the module's functions are the library's kernels. */
#define LIB_MODULE_MARK (1ull << 55)

static uint64_t lib_module(uint64_t lib)
{
    return GF_RPC_HANDLE(GF_RPC_H_MODULE, LIB_MODULE_MARK | (lib & 0xffffffffu));
}

/* The library a module handle stands for, or 0. */
static uint64_t module_lib(uint64_t mod)
{
    if (GF_RPC_HANDLE_KIND(mod) != GF_RPC_H_MODULE || !(mod & LIB_MODULE_MARK)) return 0;
    return GF_RPC_HANDLE(GF_RPC_H_LIBRARY, mod & 0xffffffffu);
}

static CUresult unload(uint64_t id, int lib)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (GF_RPC_HANDLE_KIND(id) != (unsigned)(lib ? GF_RPC_H_LIBRARY : GF_RPC_H_MODULE))
        return CUDA_ERROR_INVALID_HANDLE;
    LOCK();
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MODULE_UNLOAD);
    gf_wire_put_handle(&q.w, id);
    gf_wire_put_u32(&q.w, (uint32_t)lib);
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) {
        at_del(0, 0, id);
        gf_mirror_forget_owner(0, id);
        for (gf_rfunc *f = gf_r.funcs; f; f = f->next_all)
            if (f->module == id) f->magic = GF_RFUNC_DEAD;
    }
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuModuleUnload(CUmodule m)
{
    /* A library's module goes with its library (cuLibraryUnload), not on its own. */
    if (module_lib((uint64_t)(uintptr_t)m)) return CUDA_ERROR_INVALID_HANDLE;
    return unload((uint64_t)(uintptr_t)m, 0);
}

static CUresult r_cuLibraryUnload(CUlibrary l)
{
    return unload((uint64_t)(uintptr_t)l, 1);
}

static CUresult get_function(void **out, uint64_t mod, int lib, const char *name)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!out || !name) return CUDA_ERROR_INVALID_VALUE;
    if (GF_RPC_HANDLE_KIND(mod) != (unsigned)(lib ? GF_RPC_H_LIBRARY : GF_RPC_H_MODULE))
        return CUDA_ERROR_INVALID_HANDLE;
    LOCK();
    uint64_t id = gf_remote_handle(GF_RPC_H_FUNCTION, 0);
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_GET_FUNCTION);
    gf_wire_put_handle(&q.w, mod);
    gf_wire_put_u32(&q.w, (uint32_t)lib);
    gf_wire_put_handle(&q.w, id);
    gf_wire_put_str(&q.w, name);
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) {
        uint32_t np = gf_wire_get_u32(&rep);
        gf_rfunc *f = calloc(1, sizeof *f);
        if (np > GF_RPC_MAX_PARAMS) np = 0;
        if (f) {
            f->off = calloc(np ? np : 1, sizeof *f->off);
            f->size = calloc(np ? np : 1, sizeof *f->size);
        }
        if (!f || !f->off || !f->size) {
            if (f) {
                free(f->off);
                free(f->size);
            }
            free(f);
            rc = CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            f->magic = GF_RFUNC_MAGIC;
            f->id = id;
            f->module = mod;
            f->nparams = np;
            for (uint32_t i = 0; i < np; i++) {
                f->off[i] = (uint32_t)gf_wire_get_u64(&rep);
                f->size[i] = (uint32_t)gf_wire_get_u64(&rep);
                if (f->off[i] + f->size[i] > f->pbytes) f->pbytes = f->off[i] + f->size[i];
            }
            snprintf(f->name, sizeof f->name, "%s", name);
            f->next_all = gf_r.funcs;
            gf_r.funcs = f;
            *out = f;
        }
    }
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name)
{
    uint64_t lib = module_lib((uint64_t)(uintptr_t)m);
    if (!lib) return get_function((void **)f, (uint64_t)(uintptr_t)m, 0, name);
    /* The library's module: its function is the kernel's (cuKernelGetFunction gives the same). */
    if (f && name) {
        CUresult r = need_init();
        if (r != CUDA_SUCCESS) return r;
        LOCK();
        gf_rfunc *found = NULL;
        for (gf_rfunc *p = gf_r.funcs; p && !found; p = p->next_all)
            if (p->magic == GF_RFUNC_MAGIC && p->module == lib && !strcmp(p->name, name)) found = p;
        gf_remote_unlock();
        if (found) {
            *f = (CUfunction)found;
            return CUDA_SUCCESS;
        }
    }
    return get_function((void **)f, lib, 1, name);
}

static CUresult lib_kernel_count(unsigned *n, uint64_t lib)
{
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_LIB_KERNEL_COUNT);
    gf_wire_put_handle(&q.w, lib);
    LOCK();
    CUresult rc = CUDA_SUCCESS;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS && n) *n = gf_wire_get_u32(&rep);
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuLibraryGetKernelCount(unsigned *n, CUlibrary l)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!n) return CUDA_ERROR_INVALID_VALUE;
    if (GF_RPC_HANDLE_KIND((uint64_t)(uintptr_t)l) != GF_RPC_H_LIBRARY)
        return CUDA_ERROR_INVALID_HANDLE;
    return lib_kernel_count(n, (uint64_t)(uintptr_t)l);
}

/* The worker is asked whether the library is one of the session's (and it is loaded in the
 * current context then, as the driver's module of it is). */
static CUresult r_cuLibraryGetModule(CUmodule *m, CUlibrary l)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if (!m) return CUDA_ERROR_INVALID_VALUE;
    uint64_t lib = (uint64_t)(uintptr_t)l;
    if (GF_RPC_HANDLE_KIND(lib) != GF_RPC_H_LIBRARY) return CUDA_ERROR_INVALID_HANDLE;
    if ((r = lib_kernel_count(NULL, lib)) != CUDA_SUCCESS) return r;
    *m = (CUmodule)(uintptr_t)lib_module(lib);
    return CUDA_SUCCESS;
}

static CUresult r_cuLibraryGetKernel(CUkernel *k, CUlibrary l, const char *name)
{
    return get_function((void **)k, (uint64_t)(uintptr_t)l, 1, name);
}

static CUresult r_cuKernelGetFunction(CUfunction *f, CUkernel k)
{
    if (!f) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if (!func_of((CUfunction)k)) return CUDA_ERROR_INVALID_HANDLE;
    *f = (CUfunction)k;
    return CUDA_SUCCESS;
}

static CUresult get_global(CUdeviceptr *p, size_t *n, uint64_t mod, int lib, const char *name)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!name) return CUDA_ERROR_INVALID_VALUE;
    if (GF_RPC_HANDLE_KIND(mod) != (unsigned)(lib ? GF_RPC_H_LIBRARY : GF_RPC_H_MODULE))
        return CUDA_ERROR_INVALID_HANDLE;
    LOCK();
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_GET_GLOBAL);
    gf_wire_put_handle(&q.w, mod);
    gf_wire_put_u32(&q.w, (uint32_t)lib);
    gf_wire_put_str(&q.w, name);
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) {
        uint64_t a = gf_wire_get_handle(&rep), b = gf_wire_get_u64(&rep);
        if (p) *p = a;
        if (n) *n = b;
        at_add(a, b, gf_remote_tl_ctx, mod);
    }
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuModuleGetGlobal(CUdeviceptr *p, size_t *n, CUmodule m, const char *name)
{
    uint64_t lib = module_lib((uint64_t)(uintptr_t)m);
    return lib ? get_global(p, n, lib, 1, name) : get_global(p, n, (uint64_t)(uintptr_t)m, 0, name);
}

static CUresult r_cuLibraryGetGlobal(CUdeviceptr *p, size_t *n, CUlibrary l, const char *name)
{
    return get_global(p, n, (uint64_t)(uintptr_t)l, 1, name);
}

static CUresult r_cuFuncGetParamInfo(CUfunction fn, size_t i, size_t *off, size_t *size)
{
    gf_rfunc *f = func_of(fn);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if (i >= f->nparams) return CUDA_ERROR_INVALID_VALUE;
    if (off) *off = f->off[i];
    if (size) *size = f->size[i];
    return CUDA_SUCCESS;
}

static CUresult func_attr(int *v, int attr, CUfunction fn)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    gf_rfunc *f = func_of(fn);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if (!v) return CUDA_ERROR_INVALID_VALUE;
    LOCK();
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_FUNC_ATTR);
    gf_wire_put_handle(&q.w, f->id);
    gf_wire_put_i32(&q.w, attr);
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) *v = gf_wire_get_i32(&rep);
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuFuncGetAttribute(int *v, CUfunction_attribute a, CUfunction f)
{
    return func_attr(v, (int)a, f);
}

static CUresult r_cuKernelGetAttribute(int *v, CUfunction_attribute a, CUkernel k, CUdevice d)
{
    (void)d;
    return func_attr(v, (int)a, (CUfunction)k);
}

/* Synchronous, as on a driver: an attribute that cannot be set, or a value over the limit (the
 * dynamic shared memory a kernel may opt in to depends on its static use), is refused now. */
static CUresult func_set_attr(CUfunction fn, int attr, int val)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    gf_rfunc *f = func_of(fn);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_FUNC_SET_ATTR);
    gf_wire_put_handle(&q.w, f->id);
    gf_wire_put_i32(&q.w, attr);
    gf_wire_put_i32(&q.w, val);
    r = call_plain(&q);
    if (r == CUDA_SUCCESS && attr == CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) {
        f->max_dyn = val;
        f->max_dyn_known = 1;
    }
    return r;
}

static CUresult r_cuFuncSetAttribute(CUfunction f, CUfunction_attribute a, int v)
{
    return func_set_attr(f, (int)a, v);
}

static CUresult r_cuKernelSetAttribute(CUfunction_attribute a, int v, CUkernel k, CUdevice d)
{
    (void)d;
    return func_set_attr((CUfunction)k, (int)a, v);
}

static CUresult r_cuFuncSetCacheConfig(CUfunction f, CUfunc_cache c)
{
    (void)c;
    return func_of(f) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

static CUresult r_cuFuncGetName(const char **name, CUfunction fn)
{
    gf_rfunc *f = func_of(fn);
    if (!name) return CUDA_ERROR_INVALID_VALUE;
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    *name = f->name;
    return CUDA_SUCCESS;
}

static CUresult r_cuKernelGetName(const char **name, CUkernel k)
{
    return r_cuFuncGetName(name, (CUfunction)k);
}

static CUresult r_cuFuncGetModule(CUmodule *m, CUfunction fn)
{
    gf_rfunc *f = func_of(fn);
    if (!m) return CUDA_ERROR_INVALID_VALUE;
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    *m = (CUmodule)(uintptr_t)f->module;
    return CUDA_SUCCESS;
}

static CUresult occupancy(int *n, CUfunction fn, int block, size_t shmem, unsigned flags)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    gf_rfunc *f = func_of(fn);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if (!n) return CUDA_ERROR_INVALID_VALUE;
    LOCK();
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_OCCUPANCY);
    gf_wire_put_handle(&q.w, f->id);
    gf_wire_put_i32(&q.w, block);
    gf_wire_put_u64(&q.w, shmem);
    gf_wire_put_u32(&q.w, flags);
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) *n = gf_wire_get_i32(&rep);
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuOccupancyMaxActiveBlocksPerMultiprocessor(int *n, CUfunction f, int b, size_t s)
{
    return occupancy(n, f, b, s, 0);
}

static CUresult r_cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *n, CUfunction f, int b,
                                                                       size_t s, unsigned fl)
{
    return occupancy(n, f, b, s, fl);
}

/* The block size of best occupancy: one call; the program's block-size-to-smem callback runs
 * here, for each block size a driver tries (multiples of 32 up to the limit), and its answers
 * go along. */
static CUresult occupancy_block_size(int *grid, int *block, CUfunction fn, CUoccupancyB2DSize cb,
                                     size_t smem, int limit, unsigned flags)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    gf_rfunc *f = func_of(fn);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if (!grid || !block || flags > 1) return CUDA_ERROR_INVALID_VALUE;
    uint8_t tab[32 * 8];
    uint32_t n = 0;
    if (cb) {
        const int32_t *attrs = gf_r.dev[ctx_dev(gf_remote_tl_ctx)].attrs;
        int32_t most = attrs[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK - 1];
        if (most <= 0 || most > 1024) most = 1024;
        if (limit > 0 && limit < most) most = limit;
        for (int b = 32; n < 32 && b - 32 < most; b += 32) {
            uint64_t v = cb(b > most ? most : b);
            for (int i = 0; i < 8; i++) tab[8 * n + (uint32_t)i] = (uint8_t)(v >> (8 * i));
            n++;
        }
    }
    LOCK();
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_OCCUPANCY_BLOCK_SIZE);
    gf_wire_put_handle(&q.w, f->id);
    gf_wire_put_u64(&q.w, smem);
    gf_wire_put_i32(&q.w, limit);
    gf_wire_put_u32(&q.w, flags);
    gf_wire_put_u32(&q.w, n);
    gf_wire_put_bytes(&q.w, tab, 8 * (size_t)n);
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) {
        *grid = gf_wire_get_i32(&rep);
        *block = gf_wire_get_i32(&rep);
    }
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

static CUresult r_cuOccupancyMaxPotentialBlockSize(int *grid, int *block, CUfunction f,
                                                   CUoccupancyB2DSize cb, size_t smem, int limit)
{
    return occupancy_block_size(grid, block, f, cb, smem, limit, 0);
}

static CUresult r_cuOccupancyMaxPotentialBlockSizeWithFlags(int *grid, int *block, CUfunction f,
                                                            CUoccupancyB2DSize cb, size_t smem,
                                                            int limit, unsigned flags)
{
    return occupancy_block_size(grid, block, f, cb, smem, limit, flags);
}

/* ---- launches ---------------------------------------------------------------------------------- */

/* The hot path: no allocation, one encode into a stack buffer, one memcpy into the batch. */
/* What the driver refuses at launch (CUDA_ERROR_INVALID_VALUE), checked against the device's
 * cached limits: the launch is asynchronous here, and a bad geometry must still fail at once. */
static int geometry_ok(int dev, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                       unsigned bz, unsigned shmem)
{
    if (!gx || !gy || !gz || !bx || !by || !bz) return 0;
    if (dev < 0 || dev >= gf_r.ndev) return 1;
    const int32_t *a = gf_r.dev[dev].attrs;
#define OVER(v, attr) (a[(attr) - 1] > 0 && (uint64_t)(v) > (uint64_t)a[(attr) - 1])
    return !(OVER(bx, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X) ||
             OVER(by, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y) ||
             OVER(bz, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z) ||
             OVER((uint64_t)bx * by * bz, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK) ||
             OVER(gx, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X) ||
             OVER(gy, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y) ||
             OVER(gz, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z) ||
             OVER(shmem, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN));
#undef OVER
}

static CUresult launch(CUfunction fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                       unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params,
                       void **extra, uint32_t flags)
{
    CUresult r = need_ctx();
    uint64_t sh;
    if (r != CUDA_SUCCESS) return r;
    gf_rfunc *f = func_of(fn);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if (!stream_ok(s, &sh)) return CUDA_ERROR_INVALID_HANDLE;
    if (!geometry_ok(ctx_dev(gf_remote_tl_ctx), gx, gy, gz, bx, by, bz, shmem))
        return CUDA_ERROR_INVALID_VALUE;
    if (params && extra) return CUDA_ERROR_INVALID_VALUE;
    if (shmem && !f->max_dyn_known) {
        /* Once per function: its own dynamic shared memory limit (48 KiB less its static
         * use, or what it opted in to), for the driver's answer to a launch over it. */
        int v;
        if (func_attr(&v, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, fn) == CUDA_SUCCESS &&
            !f->max_dyn_known) {
            f->max_dyn = v;
            f->max_dyn_known = 1;
        }
    }
    if (f->max_dyn_known && f->max_dyn >= 0 && shmem > (unsigned)f->max_dyn)
        return CUDA_ERROR_INVALID_VALUE;
    uint8_t pbuf[GF_RPC_MAX_PARAM_BYTES];
    if (f->pbytes > sizeof pbuf) return CUDA_ERROR_INVALID_VALUE;
    memset(pbuf, 0, f->pbytes);
    if (params) {
        for (unsigned i = 0; i < f->nparams; i++) {
            if (!params[i]) return CUDA_ERROR_INVALID_VALUE;
            memcpy(pbuf + f->off[i], params[i], f->size[i]);
        }
    } else if (extra) {
        const void *buf = NULL;
        size_t n = 0;
        for (unsigned i = 0; extra[i] != CU_LAUNCH_PARAM_END && i < 64; i += 2) {
            if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) buf = extra[i + 1];
            else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE) n = *(size_t *)extra[i + 1];
            else return CUDA_ERROR_INVALID_VALUE;
        }
        if (!buf || n < f->pbytes) return CUDA_ERROR_INVALID_VALUE;
        memcpy(pbuf, buf, f->pbytes);
    } else if (f->nparams) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    uint8_t enc[GF_RPC_MAX_PARAM_BYTES + 256];
    gf_wire_writer w;
    gf_wire_writer_init_fixed(&w, enc, sizeof enc);
    gf_wire_put_handle(&w, f->id);
    gf_wire_put_u32(&w, gx);
    gf_wire_put_u32(&w, gy);
    gf_wire_put_u32(&w, gz);
    gf_wire_put_u32(&w, bx);
    gf_wire_put_u32(&w, by);
    gf_wire_put_u32(&w, bz);
    gf_wire_put_u32(&w, shmem);
    gf_wire_put_handle(&w, sh);
    gf_wire_put_u32(&w, flags);
    gf_wire_put_bytes(&w, pbuf, f->pbytes);
    LOCK();
    r = gf_remote_queue_raw(GF_RPC_LAUNCH, w.buf, w.len);
    gf_remote_unlock();
    return r;
}

static CUresult r_cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                 unsigned by, unsigned bz, unsigned shmem, CUstream s, void **p,
                                 void **extra)
{
    return launch(f, gx, gy, gz, bx, by, bz, shmem, s, p, extra, 0);
}

static CUresult r_cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                            unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                                            CUstream s, void **p)
{
    return launch(f, gx, gy, gz, bx, by, bz, shmem, s, p, NULL, GF_RPC_LAUNCH_COOPERATIVE);
}

static CUresult r_cuLaunchKernelEx(const CUlaunchConfig *c, CUfunction f, void **p, void **extra)
{
    if (!c) return CUDA_ERROR_INVALID_VALUE;
    uint32_t flags = 0;
    for (unsigned i = 0; i < c->numAttrs && c->attrs; i++)
        if (c->attrs[i].id == CU_LAUNCH_ATTRIBUTE_COOPERATIVE && c->attrs[i].value.cooperative)
            flags |= GF_RPC_LAUNCH_COOPERATIVE;
    return launch(f, c->gridDimX, c->gridDimY, c->gridDimZ, c->blockDimX, c->blockDimY,
                  c->blockDimZ, c->sharedMemBytes, c->hStream, p, extra, flags);
}

/* ---- streams and events ------------------------------------------------------------------------ */

static CUresult handle_op(uint32_t kind, uint64_t h)
{
    gf_rreq q;
    gf_rreq_init(&q, kind);
    gf_wire_put_handle(&q.w, h);
    return call_async(&q);
}

static CUresult stream_create(CUstream *s, unsigned flags, int prio)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    if (!s || (flags & ~1u)) return CUDA_ERROR_INVALID_VALUE;
    if (prio > 0) prio = 0;
    if (prio < -5) prio = -5;
    /* Flags and priority live in the handle, so their getters need no round trip. */
    uint64_t extra = (uint64_t)(flags & 0xff) << 16 | (uint64_t)(uint8_t)(int8_t)prio << 8;
    uint64_t id = gf_remote_handle(GF_RPC_H_STREAM, extra);
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_STREAM_CREATE);
    gf_wire_put_handle(&q.w, id);
    gf_wire_put_u32(&q.w, flags);
    gf_wire_put_i32(&q.w, prio);
    r = call_async(&q);
    if (r == CUDA_SUCCESS && gf_robj_add(id, gf_remote_tl_ctx) != 0) {
        handle_op(GF_RPC_STREAM_DESTROY, id);
        r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (r == CUDA_SUCCESS) *s = (CUstream)(uintptr_t)id;
    return r;
}

/* The calling thread's per-thread default stream in its current context (CU_STREAM_PER_THREAD,
 * and NULL in the _ptsz calls): a blocking stream of the thread's own on the worker, made at its
 * first use, as a driver makes one per thread and context. 0 when it cannot be made (the worker
 * is then sent CU_STREAM_PER_THREAD itself). */
#define PTDS_SLOTS 8
static _Thread_local struct {
    uint64_t ctx, stream;
} tl_ptds[PTDS_SLOTS];

static uint64_t ptds_stream(void)
{
    uint64_t ctx = gf_remote_tl_ctx;
    int slot = -1;
    for (int i = 0; i < PTDS_SLOTS; i++) {
        int live = tl_ptds[i].stream && gf_robj_find(tl_ptds[i].stream, NULL);
        if (tl_ptds[i].ctx == ctx && live) return tl_ptds[i].stream;
        if (!live && slot < 0) slot = i; /* never made, or gone with its context */
    }
    if (slot < 0) slot = 0; /* a thread in more contexts: the oldest one's is made again */
    uint64_t id = gf_remote_handle(GF_RPC_H_STREAM, 0);
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_STREAM_CREATE);
    gf_wire_put_handle(&q.w, id);
    gf_wire_put_u32(&q.w, 0);
    gf_wire_put_i32(&q.w, 0);
    if (call_async(&q) != CUDA_SUCCESS || gf_robj_add(id, ctx) != 0) return 0;
    tl_ptds[slot].ctx = ctx;
    tl_ptds[slot].stream = id;
    return id;
}

static CUresult r_cuStreamCreate(CUstream *s, unsigned flags)
{
    return stream_create(s, flags, 0);
}

static CUresult r_cuStreamCreateWithPriority(CUstream *s, unsigned flags, int prio)
{
    return stream_create(s, flags, prio);
}


static CUresult r_cuStreamDestroy(CUstream s)
{
    uint64_t sh;
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    /* The default streams (the per-thread one included) are not the caller's to destroy. */
    if ((uint64_t)(uintptr_t)s < 0x100 || !stream_ok(s, &sh) || !gf_robj_del(sh))
        return CUDA_ERROR_INVALID_HANDLE;
    return handle_op(GF_RPC_STREAM_DESTROY, sh);
}

static CUresult stream_wait(CUstream s, uint32_t kind)
{
    uint64_t sh, ctx;
    CUresult r = stream_arg(s, &sh, &ctx);
    if (r != CUDA_SUCCESS) return r;
    gf_rreq q;
    gf_rreq_init(&q, kind);
    gf_wire_put_handle(&q.w, sh);
    return call_plain(&q);
}

static CUresult r_cuStreamSynchronize(CUstream s)
{
    return stream_wait(s, GF_RPC_STREAM_SYNC);
}

static CUresult r_cuStreamQuery(CUstream s)
{
    return stream_wait(s, GF_RPC_STREAM_QUERY);
}

/* The stream getters answer from the client-minted handle and the registry: flags and
 * priority are packed in the handle's high bytes (0 for the legacy stream, whose handle is
 * < 0x100; the per-thread one is a stream of flags 0). Each has a _ptsz twin, where NULL means
 * the per-thread default stream. */
#define PTSZ(s) ((s) ? (s) : CU_STREAM_PER_THREAD)
#define STREAM_GETTER(fn, type, expr)                                                         \
    static CUresult fn(CUstream s, type *out)                                                 \
    {                                                                                         \
        uint64_t sh, c;                                                                       \
        CUresult r = stream_arg(s, &sh, &c);                                                  \
        if (r != CUDA_SUCCESS) return r;                                                      \
        if (!out) return CUDA_ERROR_INVALID_VALUE;                                            \
        *out = (expr);                                                                        \
        return CUDA_SUCCESS;                                                                  \
    }                                                                                         \
    static CUresult fn##_ptsz(CUstream s, type *out)                                          \
    {                                                                                         \
        return fn(PTSZ(s), out);                                                              \
    }

STREAM_GETTER(r_cuStreamGetFlags, unsigned, sh < 0x100 ? 0 : (unsigned)((sh >> 48) & 0xff))
STREAM_GETTER(r_cuStreamGetPriority, int,
              sh < 0x100 ? 0 : (int)(int8_t)(uint8_t)((sh >> 40) & 0xff))
STREAM_GETTER(r_cuStreamGetId, unsigned long long, sh < 0x100 ? 1 : (sh & 0xffffffffu))
STREAM_GETTER(r_cuStreamGetDevice, CUdevice, ctx_dev(c))
STREAM_GETTER(r_cuStreamGetCtx, CUcontext, (CUcontext)(uintptr_t)c)

static CUresult r_cuStreamGetCtx_v2(CUstream s, CUcontext *pctx, CUgreenCtx *green)
{
    CUresult r = r_cuStreamGetCtx(s, pctx);
    if (r == CUDA_SUCCESS && green) *green = NULL;
    return r;
}

static CUresult r_cuStreamGetCtx_v2_ptsz(CUstream s, CUcontext *pctx, CUgreenCtx *green)
{
    return r_cuStreamGetCtx_v2(PTSZ(s), pctx, green);
}

static CUresult r_cuStreamWaitEvent(CUstream s, CUevent e, unsigned flags)
{
    uint64_t sh, sc, ec;
    CUresult r = stream_arg(s, &sh, &sc);
    if (r != CUDA_SUCCESS || (r = event_arg(e, &ec)) != CUDA_SUCCESS) return r;
    if (flags & ~(unsigned)CU_EVENT_WAIT_EXTERNAL) return CUDA_ERROR_INVALID_VALUE;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_STREAM_WAIT_EVENT);
    gf_wire_put_handle(&q.w, sh);
    gf_wire_put_handle(&q.w, (uint64_t)(uintptr_t)e);
    gf_wire_put_u32(&q.w, flags);
    return call_async(&q);
}

/* Host functions run in this process, in stream order: queued without waiting, run when the
 * worker's stream gets there, and the stream's later work waits for them (gf_remote_host_func). */
static CUresult host_func(CUstream s, CUhostFn fn, CUstreamCallback cb, void *data)
{
    uint64_t sh, ctx;
    CUresult r = stream_arg(s, &sh, &ctx);
    if (r != CUDA_SUCCESS) return r;
    if (!fn && !cb) return CUDA_ERROR_INVALID_VALUE;
    LOCK();
    if (gf_wire_conn_peer_minor(gf_r.c) < 1) {
        /* A wire 1.0 worker has no HOST_FUNC: the stream's work first, then the function, here
         * (in order, but the call waits for the stream). */
        gf_remote_unlock();
        if ((r = r_cuStreamSynchronize(s)) != CUDA_SUCCESS) return r;
        if (fn) fn(data);
        else cb(s, CUDA_SUCCESS, data);
        return CUDA_SUCCESS;
    }
    r = gf_remote_host_func(sh, s, fn, cb, data);
    gf_remote_unlock();
    return r;
}

static CUresult r_cuLaunchHostFunc(CUstream s, CUhostFn fn, void *data)
{
    return host_func(s, fn, NULL, data);
}

static CUresult r_cuStreamAddCallback(CUstream s, CUstreamCallback cb, void *data, unsigned flags)
{
    if (flags) return CUDA_ERROR_INVALID_VALUE;
    return host_func(s, NULL, cb, data);
}

static CUresult r_cuEventCreate(CUevent *e, unsigned flags)
{
    CUresult r = need_ctx();
    if (r != CUDA_SUCCESS) return r;
    unsigned known = CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;
    if (!e || (flags & ~known) ||
        ((flags & CU_EVENT_INTERPROCESS) && !(flags & CU_EVENT_DISABLE_TIMING)))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t id = gf_remote_handle(GF_RPC_H_EVENT, 0);
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_EVENT_CREATE);
    gf_wire_put_handle(&q.w, id);
    gf_wire_put_u32(&q.w, flags);
    r = call_async(&q);
    if (r == CUDA_SUCCESS && gf_robj_add(id, gf_remote_tl_ctx) != 0) {
        handle_op(GF_RPC_EVENT_DESTROY, id);
        r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (r == CUDA_SUCCESS) *e = (CUevent)(uintptr_t)id;
    return r;
}

static CUresult r_cuEventDestroy(CUevent e)
{
    uint64_t ec;
    CUresult r = event_arg(e, &ec);
    if (r != CUDA_SUCCESS) return r;
    if (!gf_robj_del((uint64_t)(uintptr_t)e)) return CUDA_ERROR_INVALID_HANDLE;
    return handle_op(GF_RPC_EVENT_DESTROY, (uint64_t)(uintptr_t)e);
}

/* As a driver checks: the event, the stream (and its context), the flags, and that the stream is
 * of the event's context. */
static CUresult event_record(CUevent e, CUstream s, unsigned flags)
{
    uint64_t sh, sc, ec;
    CUresult r = event_arg(e, &ec);
    if (r != CUDA_SUCCESS || (r = stream_arg(s, &sh, &sc)) != CUDA_SUCCESS) return r;
    if (flags & ~(unsigned)CU_EVENT_RECORD_EXTERNAL) return CUDA_ERROR_INVALID_VALUE;
    if (sc != ec) return CUDA_ERROR_INVALID_HANDLE;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_EVENT_RECORD);
    gf_wire_put_handle(&q.w, (uint64_t)(uintptr_t)e);
    gf_wire_put_handle(&q.w, sh);
    gf_wire_put_u32(&q.w, flags);
    return call_async(&q);
}

static CUresult r_cuEventRecord(CUevent e, CUstream s)
{
    return event_record(e, s, 0);
}

static CUresult r_cuEventRecordWithFlags(CUevent e, CUstream s, unsigned flags)
{
    return event_record(e, s, flags);
}

static CUresult event_wait(CUevent e, uint32_t kind)
{
    uint64_t ec;
    CUresult r = event_arg(e, &ec);
    if (r != CUDA_SUCCESS) return r;
    gf_rreq q;
    gf_rreq_init(&q, kind);
    gf_wire_put_handle(&q.w, (uint64_t)(uintptr_t)e);
    return call_plain(&q);
}

static CUresult r_cuEventSynchronize(CUevent e)
{
    return event_wait(e, GF_RPC_EVENT_SYNC);
}

static CUresult r_cuEventQuery(CUevent e)
{
    return event_wait(e, GF_RPC_EVENT_QUERY);
}

/* cuCtxRecordEvent / cuCtxWaitEvent: queued; the event must be of the context, as on a driver. */
static CUresult ctx_event(CUcontext c, CUevent e, uint32_t kind)
{
    uint64_t ch, ec;
    CUresult r = ctx_arg(c, &ch);
    if (r != CUDA_SUCCESS) return r;
    if ((r = event_arg(e, &ec)) != CUDA_SUCCESS) return r;
    if (kind == GF_RPC_CTX_RECORD_EVENT && ec != ch) return CUDA_ERROR_INVALID_HANDLE;
    gf_rreq q;
    gf_rreq_init(&q, kind);
    gf_wire_put_handle(&q.w, ch);
    gf_wire_put_handle(&q.w, (uint64_t)(uintptr_t)e);
    return call_async(&q);
}

static CUresult r_cuCtxRecordEvent(CUcontext c, CUevent e)
{
    return ctx_event(c, e, GF_RPC_CTX_RECORD_EVENT);
}

static CUresult r_cuCtxWaitEvent(CUcontext c, CUevent e)
{
    return ctx_event(c, e, GF_RPC_CTX_WAIT_EVENT);
}

static CUresult r_cuEventElapsedTime(float *ms, CUevent a, CUevent b)
{
    CUresult r = need_init();
    if (r != CUDA_SUCCESS) return r;
    if (!ms) return CUDA_ERROR_INVALID_VALUE;
    uint64_t ac, bc;
    if ((r = event_arg(a, &ac)) != CUDA_SUCCESS || (r = event_arg(b, &bc)) != CUDA_SUCCESS)
        return r;
    LOCK();
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_EVENT_ELAPSED);
    gf_wire_put_handle(&q.w, (uint64_t)(uintptr_t)a);
    gf_wire_put_handle(&q.w, (uint64_t)(uintptr_t)b);
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t == CUDA_SUCCESS && rc == CUDA_SUCCESS) *ms = (float)gf_wire_get_f64(&rep);
    gf_remote_unlock();
    return t != CUDA_SUCCESS ? t : rc;
}

/* ---- errors, entry points ---------------------------------------------------------------------- */

static CUresult r_cuGetErrorName(CUresult e, const char **s)
{
    if (!s) return CUDA_ERROR_INVALID_VALUE;
    *s = gf_cu_error_name((int)e);
    return *s ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

static CUresult r_cuGetErrorString(CUresult e, const char **s)
{
    if (!s) return CUDA_ERROR_INVALID_VALUE;
    *s = gf_cu_error_string((int)e);
    return *s ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* NVML_SNAPSHOT for the NVML shim (through cuGetExportTable; remote.h). */
static CUresult rnvml_snapshot(gf_rnvml *out)
{
    if (!out) return CUDA_ERROR_INVALID_VALUE;
    memset(out, 0, sizeof *out);
    CUresult r = gf_remote_connect();
    if (r != CUDA_SUCCESS) return r;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_NVML_SNAPSHOT);
    gf_wire_put_u32(&q.w, (uint32_t)getpid());
    LOCK();
    CUresult rc = CUDA_SUCCESS;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t != CUDA_SUCCESS || rc != CUDA_SUCCESS) {
        gf_remote_unlock();
        return t != CUDA_SUCCESS ? t : rc;
    }
    out->nvml_rc = (int)gf_wire_get_u32(&rep);
    out->cuda_version = gf_r.driver_version;
    gf_wire_get_str(&rep, out->driver, sizeof out->driver);
    uint32_t n = gf_wire_get_u32(&rep);
    for (uint32_t i = 0; i < n && gf_wire_reader_status(&rep, 0, NULL, 0) == GF_OK; i++) {
        gf_rnvml_dev tmp, *d = i < GF_RNVML_MAX_DEVS ? &out->dev[i] : &tmp;
        gf_wire_get_str(&rep, d->name, sizeof d->name);
        gf_wire_get_str(&rep, d->uuid, sizeof d->uuid);
        gf_wire_get_str(&rep, d->pci, sizeof d->pci);
        d->total = gf_wire_get_u64(&rep);
        d->used = gf_wire_get_u64(&rep);
        d->util_rc = (int)gf_wire_get_u32(&rep);
        d->util_gpu = gf_wire_get_u32(&rep);
        d->util_mem = gf_wire_get_u32(&rep);
        uint32_t np = gf_wire_get_u32(&rep);
        for (uint32_t k = 0; k < np && gf_wire_reader_status(&rep, 0, NULL, 0) == GF_OK; k++) {
            uint32_t pid = gf_wire_get_u32(&rep);
            uint64_t b = gf_wire_get_u64(&rep);
            if (k < GF_RNVML_MAX_PROCS) {
                d->pid[k] = pid;
                d->pbytes[k] = b;
                d->nprocs = k + 1;
            }
        }
    }
    out->ndev = n < GF_RNVML_MAX_DEVS ? n : GF_RNVML_MAX_DEVS;
    char err[256];
    CUresult res = CUDA_SUCCESS;
    if (gf_wire_reader_status(&rep, 0, err, sizeof err) != GF_OK) {
        gf_log(GF_LOG_ERROR, GF_REMOTE_LOG, "NVML_SNAPSHOT: malformed answer: %s", err);
        res = CUDA_ERROR_UNKNOWN;
    }
    gf_remote_unlock();
    return res;
}

static const gf_rnvml_table rnvml_table = {sizeof(gf_rnvml_table), rnvml_snapshot};

static CUresult r_cuGetExportTable(const void **t, const CUuuid *id)
{
    static const CUuuid nvml_id = GF_RNVML_TABLE_ID;
    if (t && id && !memcmp(id->bytes, nvml_id.bytes, sizeof nvml_id.bytes)) {
        *t = &rnvml_table;
        return CUDA_SUCCESS;
    }
    if (t) *t = NULL;
    GF_LOG_ONCE(GF_LOG_ERROR, GF_REMOTE_LOG,
                "cuGetExportTable: this program links NVIDIA's CUDA runtime statically (nvcc's "
                "default), which needs private driver tables the remote backend does not provide; "
                "rebuild it with `nvcc -cudart shared` and run it with gpufuse's libcudart.so.13 "
                "(build/lib) first on LD_LIBRARY_PATH");
    return CUDA_ERROR_NOT_SUPPORTED;
}

struct gf_own_fn {
    const char *name;
    void *fn;
    size_t real_off;
};
extern struct gf_own_fn gf_own_fns[];
extern const unsigned gf_own_fn_count;

static CUresult r_cuGetProcAddress_v2(const char *symbol, void **pfn, int ver, cuuint64_t flags,
                                      CUdriverProcAddressQueryResult *status)
{
    if (status) *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    if (!symbol || !pfn) return CUDA_ERROR_INVALID_VALUE;
    *pfn = NULL;
    /* What a driver refuses before it looks the name up: unknown flags, no version. */
    if (flags & ~(cuuint64_t)(CU_GET_PROC_ADDRESS_LEGACY_STREAM |
                              CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) ||
        ver <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    const char *sym = NULL;
    int q = gf_cuda_procaddr_resolve(symbol, ver, flags, &sym);
    if (q == GF_PROCADDR_FOUND)
        for (unsigned i = 0; i < gf_own_fn_count; i++)
            if (!strcmp(gf_own_fns[i].name, sym)) {
                *pfn = gf_own_fns[i].fn;
                break;
            }
    if (status)
        *status = *pfn ? CU_GET_PROC_ADDRESS_SUCCESS
                       : q == GF_PROCADDR_VERSION_NOT_SUFFICIENT
                             ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT
                             : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    return *pfn ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

static CUresult r_cuGetProcAddress(const char *symbol, void **pfn, int ver, cuuint64_t flags)
{
    return r_cuGetProcAddress_v2(symbol, pfn, ver, flags, NULL);
}

/* ---- _ptsz entry points: NULL is the calling thread's per-thread default stream -------------- */

static CUresult r_cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    return r_cuMemAllocAsync(dptr, bytesize, PTSZ(hStream));
}

static CUresult r_cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream)
{
    return r_cuMemFreeAsync(dptr, PTSZ(hStream));
}

static CUresult r_cuMemcpyHtoDAsync_ptsz(CUdeviceptr dstDevice, const void *srcHost,
                                         size_t ByteCount, CUstream hStream)
{
    return r_cuMemcpyHtoDAsync(dstDevice, srcHost, ByteCount, PTSZ(hStream));
}

static CUresult r_cuMemcpyDtoHAsync_ptsz(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount,
                                         CUstream hStream)
{
    return r_cuMemcpyDtoHAsync(dstHost, srcDevice, ByteCount, PTSZ(hStream));
}

static CUresult r_cuMemcpyDtoDAsync_ptsz(CUdeviceptr dstDevice, CUdeviceptr srcDevice,
                                         size_t ByteCount, CUstream hStream)
{
    return r_cuMemcpyDtoDAsync(dstDevice, srcDevice, ByteCount, PTSZ(hStream));
}

static CUresult r_cuMemsetD8Async_ptsz(CUdeviceptr dstDevice, unsigned char uc, size_t N,
                                       CUstream hStream)
{
    return r_cuMemsetD8Async(dstDevice, uc, N, PTSZ(hStream));
}

static CUresult r_cuMemsetD16Async_ptsz(CUdeviceptr dstDevice, unsigned short us, size_t N,
                                        CUstream hStream)
{
    return r_cuMemsetD16Async(dstDevice, us, N, PTSZ(hStream));
}

static CUresult r_cuMemsetD32Async_ptsz(CUdeviceptr dstDevice, unsigned int ui, size_t N,
                                        CUstream hStream)
{
    return r_cuMemsetD32Async(dstDevice, ui, N, PTSZ(hStream));
}

static CUresult r_cuMemcpyAsync_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount,
                                     CUstream hStream)
{
    return r_cuMemcpyAsync(dst, src, ByteCount, PTSZ(hStream));
}

static CUresult r_cuMemcpyPeerAsync_ptsz(CUdeviceptr dstDevice, CUcontext dstContext,
                                         CUdeviceptr srcDevice, CUcontext srcContext,
                                         size_t ByteCount, CUstream hStream)
{
    return r_cuMemcpyPeerAsync(dstDevice, dstContext, srcDevice, srcContext, ByteCount,
                               PTSZ(hStream));
}

static CUresult r_cuMemcpy2DAsync_ptsz(const CUDA_MEMCPY2D *pCopy, CUstream hStream)
{
    return r_cuMemcpy2DAsync(pCopy, PTSZ(hStream));
}

static CUresult r_cuMemsetD2D8Async_ptsz(CUdeviceptr dstDevice, size_t dstPitch, unsigned char uc,
                                         size_t Width, size_t Height, CUstream hStream)
{
    return r_cuMemsetD2D8Async(dstDevice, dstPitch, uc, Width, Height, PTSZ(hStream));
}

static CUresult r_cuMemsetD2D16Async_ptsz(CUdeviceptr dstDevice, size_t dstPitch, unsigned short us,
                                          size_t Width, size_t Height, CUstream hStream)
{
    return r_cuMemsetD2D16Async(dstDevice, dstPitch, us, Width, Height, PTSZ(hStream));
}

static CUresult r_cuMemsetD2D32Async_ptsz(CUdeviceptr dstDevice, size_t dstPitch, unsigned int ui,
                                          size_t Width, size_t Height, CUstream hStream)
{
    return r_cuMemsetD2D32Async(dstDevice, dstPitch, ui, Width, Height, PTSZ(hStream));
}

static CUresult r_cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                      unsigned int gridDimZ, unsigned int blockDimX,
                                      unsigned int blockDimY, unsigned int blockDimZ,
                                      unsigned int sharedMemBytes, CUstream hStream,
                                      void **kernelParams, void **extra)
{
    return r_cuLaunchKernel(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
                            sharedMemBytes, PTSZ(hStream), kernelParams, extra);
}

static CUresult r_cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f,
                                        void **kernelParams, void **extra)
{
    if (!config || config->hStream)
        return r_cuLaunchKernelEx(config, f, kernelParams, extra);
    CUlaunchConfig c = *config;
    c.hStream = CU_STREAM_PER_THREAD;
    return r_cuLaunchKernelEx(&c, f, kernelParams, extra);
}

static CUresult r_cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gridDimX,
                                                 unsigned int gridDimY, unsigned int gridDimZ,
                                                 unsigned int blockDimX, unsigned int blockDimY,
                                                 unsigned int blockDimZ,
                                                 unsigned int sharedMemBytes, CUstream hStream,
                                                 void **kernelParams)
{
    return r_cuLaunchCooperativeKernel(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY,
                                       blockDimZ, sharedMemBytes, PTSZ(hStream), kernelParams);
}

static CUresult r_cuStreamSynchronize_ptsz(CUstream hStream)
{
    return r_cuStreamSynchronize(PTSZ(hStream));
}

static CUresult r_cuStreamQuery_ptsz(CUstream hStream)
{
    return r_cuStreamQuery(PTSZ(hStream));
}

static CUresult r_cuStreamWaitEvent_ptsz(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
    return r_cuStreamWaitEvent(PTSZ(hStream), hEvent, Flags);
}

static CUresult r_cuLaunchHostFunc_ptsz(CUstream hStream, CUhostFn fn, void *userData)
{
    return r_cuLaunchHostFunc(PTSZ(hStream), fn, userData);
}

static CUresult r_cuStreamAddCallback_ptsz(CUstream hStream, CUstreamCallback callback,
                                           void *userData, unsigned int flags)
{
    return r_cuStreamAddCallback(PTSZ(hStream), callback, userData, flags);
}

static CUresult r_cuEventRecord_ptsz(CUevent hEvent, CUstream hStream)
{
    return r_cuEventRecord(hEvent, PTSZ(hStream));
}

static CUresult r_cuEventRecordWithFlags_ptsz(CUevent hEvent, CUstream hStream, unsigned int flags)
{
    return r_cuEventRecordWithFlags(hEvent, PTSZ(hStream), flags);
}
static CUresult r_cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *p, size_t n, CUmemoryPool pool,
                                                CUstream s)
{
    return r_cuMemAllocFromPoolAsync(p, n, pool, PTSZ(s));
}

/* ---- the table ---------------------------------------------------------------------------------- */

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define GF_CUDA_FN(sym, ret, params, args)                                                    \
    static ret unsup_##sym params { return gf_remote_unsupported(#sym); }
#include "cuda_api.h"
#pragma GCC diagnostic pop

void gf_remote_setup(void)
{
    gf_remote_init_process();
#define GF_CUDA_FN(sym, ret, params, args) gf_real.sym = unsup_##sym;
#include "cuda_api.h"
    /* One implementation for every ABI-identical name (_v2, _ptsz, _ptds). */
#define R(sym, fn) gf_real.sym = fn
    R(cuInit, r_cuInit);
    R(cuDriverGetVersion, r_cuDriverGetVersion);
    R(cuDeviceGetCount, r_cuDeviceGetCount);
    R(cuDeviceGet, r_cuDeviceGet);
    R(cuDeviceGetName, r_cuDeviceGetName);
    R(cuDeviceGetUuid, r_cuDeviceGetUuid);
    R(cuDeviceGetUuid_v2, r_cuDeviceGetUuid);
    R(cuDeviceTotalMem_v2, r_cuDeviceTotalMem);
    R(cuDeviceTotalMem, r_cuDeviceTotalMem_v1);
    R(cuDeviceGetAttribute, r_cuDeviceGetAttribute);
    R(cuDeviceGetPCIBusId, r_cuDeviceGetPCIBusId);
    R(cuDeviceGetByPCIBusId, r_cuDeviceGetByPCIBusId);
    R(cuDeviceCanAccessPeer, r_cuDeviceCanAccessPeer);
    R(cuDevicePrimaryCtxRetain, r_cuDevicePrimaryCtxRetain);
    R(cuDevicePrimaryCtxRelease, r_cuDevicePrimaryCtxRelease);
    R(cuDevicePrimaryCtxRelease_v2, r_cuDevicePrimaryCtxRelease);
    R(cuDevicePrimaryCtxReset, r_cuDevicePrimaryCtxReset);
    R(cuDevicePrimaryCtxReset_v2, r_cuDevicePrimaryCtxReset);
    R(cuDevicePrimaryCtxGetState, r_cuDevicePrimaryCtxGetState);
    R(cuDevicePrimaryCtxSetFlags, r_cuDevicePrimaryCtxSetFlags);
    R(cuDevicePrimaryCtxSetFlags_v2, r_cuDevicePrimaryCtxSetFlags);
    R(cuCtxCreate, r_cuCtxCreate_v2);
    R(cuCtxCreate_v2, r_cuCtxCreate_v2);
    R(cuCtxCreate_v3, r_cuCtxCreate_v3);
    R(cuCtxCreate_v4, r_cuCtxCreate_v4);
    R(cuCtxDestroy, r_cuCtxDestroy);
    R(cuCtxDestroy_v2, r_cuCtxDestroy);
    R(cuCtxSetCurrent, r_cuCtxSetCurrent);
    R(cuCtxGetCurrent, r_cuCtxGetCurrent);
    R(cuCtxPushCurrent, r_cuCtxPushCurrent);
    R(cuCtxPushCurrent_v2, r_cuCtxPushCurrent);
    R(cuCtxPopCurrent, r_cuCtxPopCurrent);
    R(cuCtxPopCurrent_v2, r_cuCtxPopCurrent);
    R(cuCtxGetDevice, r_cuCtxGetDevice);
    R(cuCtxSynchronize, r_cuCtxSynchronize);
    R(cuCtxSynchronize_v2, r_cuCtxSynchronize_v2);
    R(cuCtxGetApiVersion, r_cuCtxGetApiVersion);
    R(cuCtxGetFlags, r_cuCtxGetFlags);
    R(cuCtxGetId, r_cuCtxGetId);
    R(cuCtxGetLimit, r_cuCtxGetLimit);
    R(cuCtxSetLimit, r_cuCtxSetLimit);
    R(cuCtxGetCacheConfig, r_cuCtxGetCacheConfig);
    R(cuCtxSetCacheConfig, r_cuCtxSetCacheConfig);
    R(cuCtxGetStreamPriorityRange, r_cuCtxGetStreamPriorityRange);
    R(cuMemAlloc_v2, r_cuMemAlloc);
    R(cuMemAllocPitch_v2, r_cuMemAllocPitch);
    R(cuMemFree_v2, r_cuMemFree);
    R(cuMemGetInfo_v2, r_cuMemGetInfo);
    R(cuMemGetInfo, r_cuMemGetInfo_v1);
    R(cuMemGetAddressRange_v2, r_cuMemGetAddressRange);
    R(cuMemAllocAsync, r_cuMemAllocAsync);
    R(cuMemAllocAsync_ptsz, r_cuMemAllocAsync_ptsz);
    R(cuMemFreeAsync, r_cuMemFreeAsync);
    R(cuMemFreeAsync_ptsz, r_cuMemFreeAsync_ptsz);
    R(cuDeviceGetDefaultMemPool, r_cuDeviceGetDefaultMemPool);
    R(cuDeviceGetMemPool, r_cuDeviceGetMemPool);
    R(cuDeviceSetMemPool, r_cuDeviceSetMemPool);
    R(cuMemGetDefaultMemPool, r_cuMemGetDefaultMemPool);
    R(cuMemGetMemPool, r_cuMemGetMemPool);
    R(cuMemSetMemPool, r_cuMemSetMemPool);
    R(cuMemPoolCreate, r_cuMemPoolCreate);
    R(cuMemPoolDestroy, r_cuMemPoolDestroy);
    R(cuMemPoolGetAttribute, r_cuMemPoolGetAttribute);
    R(cuMemPoolSetAttribute, r_cuMemPoolSetAttribute);
    R(cuMemPoolTrimTo, r_cuMemPoolTrimTo);
    R(cuMemAllocFromPoolAsync, r_cuMemAllocFromPoolAsync);
    R(cuMemAllocFromPoolAsync_ptsz, r_cuMemAllocFromPoolAsync_ptsz);
    R(cuMemGetAllocationGranularity, r_cuMemGetAllocationGranularity);
    R(cuMemAddressReserve, r_cuMemAddressReserve);
    R(cuMemAddressFree, r_cuMemAddressFree);
    R(cuMemCreate, r_cuMemCreate);
    R(cuMemRelease, r_cuMemRelease);
    R(cuMemMap, r_cuMemMap);
    R(cuMemUnmap, r_cuMemUnmap);
    R(cuMemSetAccess, r_cuMemSetAccess);
    R(cuMemGetAccess, r_cuMemGetAccess);
    R(cuMemGetAllocationPropertiesFromHandle, r_cuMemGetAllocationPropertiesFromHandle);
    R(cuMemRetainAllocationHandle, r_cuMemRetainAllocationHandle);
    R(cuMemExportToShareableHandle, r_cuMemExportToShareableHandle);
    R(cuMemImportFromShareableHandle, r_cuMemImportFromShareableHandle);
    R(cuCtxEnablePeerAccess, r_cuCtxEnablePeerAccess);
    R(cuCtxDisablePeerAccess, r_cuCtxDisablePeerAccess);
    R(cuLibraryGetKernelCount, r_cuLibraryGetKernelCount);
    R(cuLibraryGetModule, r_cuLibraryGetModule);
    R(cuMemAllocHost_v2, r_cuMemAllocHost);
    R(cuMemHostAlloc, r_cuMemHostAlloc);
    R(cuMemFreeHost, r_cuMemFreeHost);
    R(cuMemHostRegister_v2, r_cuMemHostRegister);
    R(cuMemHostUnregister, r_cuMemHostUnregister);
    R(cuMemHostGetDevicePointer_v2, r_cuMemHostGetDevicePointer);
    R(cuMemHostGetFlags, r_cuMemHostGetFlags);
    R(cuMemHostRegister, r_cuMemHostRegister);
    R(cuMemAllocManaged, r_cuMemAllocManaged);
    R(cuLibraryGetManaged, r_cuLibraryGetManaged);
    R(cuMemPrefetchAsync, r_cuMemPrefetchAsync);
    R(cuMemPrefetchAsync_ptsz, r_cuMemPrefetchAsync);
    R(cuMemPrefetchAsync_v2, r_cuMemPrefetchAsync_v2);
    R(cuMemPrefetchAsync_v2_ptsz, r_cuMemPrefetchAsync_v2);
    R(cuMemAdvise, r_cuMemAdvise);
    R(cuMemAdvise_v2, r_cuMemAdvise_v2);
    R(cuMemcpyHtoD_v2, r_cuMemcpyHtoD);
    R(cuMemcpyHtoD_v2_ptds, r_cuMemcpyHtoD);
    R(cuMemcpyHtoDAsync_v2, r_cuMemcpyHtoDAsync);
    R(cuMemcpyHtoDAsync_v2_ptsz, r_cuMemcpyHtoDAsync_ptsz);
    R(cuMemcpyDtoH_v2, r_cuMemcpyDtoH);
    R(cuMemcpyDtoH_v2_ptds, r_cuMemcpyDtoH);
    R(cuMemcpyDtoHAsync_v2, r_cuMemcpyDtoHAsync);
    R(cuMemcpyDtoHAsync_v2_ptsz, r_cuMemcpyDtoHAsync_ptsz);
    R(cuMemcpyDtoD_v2, r_cuMemcpyDtoD);
    R(cuMemcpyDtoD_v2_ptds, r_cuMemcpyDtoD);
    R(cuMemcpyDtoDAsync_v2, r_cuMemcpyDtoDAsync);
    R(cuMemcpyDtoDAsync_v2_ptsz, r_cuMemcpyDtoDAsync_ptsz);
    R(cuMemsetD8_v2, r_cuMemsetD8);
    R(cuMemsetD8_v2_ptds, r_cuMemsetD8);
    R(cuMemsetD16_v2, r_cuMemsetD16);
    R(cuMemsetD16_v2_ptds, r_cuMemsetD16);
    R(cuMemsetD32_v2, r_cuMemsetD32);
    R(cuMemsetD32_v2_ptds, r_cuMemsetD32);
    R(cuMemsetD8Async, r_cuMemsetD8Async);
    R(cuMemsetD8Async_ptsz, r_cuMemsetD8Async_ptsz);
    R(cuMemsetD16Async, r_cuMemsetD16Async);
    R(cuMemsetD16Async_ptsz, r_cuMemsetD16Async_ptsz);
    R(cuMemsetD32Async, r_cuMemsetD32Async);
    R(cuMemsetD32Async_ptsz, r_cuMemsetD32Async_ptsz);
    R(cuPointerGetAttribute, r_cuPointerGetAttribute);
    R(cuPointerGetAttributes, r_cuPointerGetAttributes);
    R(cuMemcpy, r_cuMemcpy);
    R(cuMemcpy_ptds, r_cuMemcpy);
    R(cuMemcpyAsync, r_cuMemcpyAsync);
    R(cuMemcpyAsync_ptsz, r_cuMemcpyAsync_ptsz);
    R(cuMemcpyPeer, r_cuMemcpyPeer);
    R(cuMemcpyPeer_ptds, r_cuMemcpyPeer);
    R(cuMemcpyPeerAsync, r_cuMemcpyPeerAsync);
    R(cuMemcpyPeerAsync_ptsz, r_cuMemcpyPeerAsync_ptsz);
    R(cuMemcpy2D_v2, r_cuMemcpy2D);
    R(cuMemcpy2D_v2_ptds, r_cuMemcpy2D);
    R(cuMemcpy2DUnaligned_v2, r_cuMemcpy2D);
    R(cuMemcpy2DUnaligned_v2_ptds, r_cuMemcpy2D);
    R(cuMemcpy2DAsync_v2, r_cuMemcpy2DAsync);
    R(cuMemcpy2DAsync_v2_ptsz, r_cuMemcpy2DAsync_ptsz);
    R(cuMemsetD2D8_v2, r_cuMemsetD2D8);
    R(cuMemsetD2D8_v2_ptds, r_cuMemsetD2D8);
    R(cuMemsetD2D16_v2, r_cuMemsetD2D16);
    R(cuMemsetD2D16_v2_ptds, r_cuMemsetD2D16);
    R(cuMemsetD2D32_v2, r_cuMemsetD2D32);
    R(cuMemsetD2D32_v2_ptds, r_cuMemsetD2D32);
    R(cuMemsetD2D8Async, r_cuMemsetD2D8Async);
    R(cuMemsetD2D8Async_ptsz, r_cuMemsetD2D8Async_ptsz);
    R(cuMemsetD2D16Async, r_cuMemsetD2D16Async);
    R(cuMemsetD2D16Async_ptsz, r_cuMemsetD2D16Async_ptsz);
    R(cuMemsetD2D32Async, r_cuMemsetD2D32Async);
    R(cuMemsetD2D32Async_ptsz, r_cuMemsetD2D32Async_ptsz);
    R(cuModuleLoadData, r_cuModuleLoadData);
    R(cuModuleLoadDataEx, r_cuModuleLoadDataEx);
    R(cuModuleLoadFatBinary, r_cuModuleLoadFatBinary);
    R(cuModuleLoad, r_cuModuleLoad);
    R(cuModuleUnload, r_cuModuleUnload);
    R(cuModuleGetFunction, r_cuModuleGetFunction);
    R(cuModuleGetGlobal_v2, r_cuModuleGetGlobal);
    R(cuLibraryLoadData, r_cuLibraryLoadData);
    R(cuLibraryUnload, r_cuLibraryUnload);
    R(cuLibraryGetKernel, r_cuLibraryGetKernel);
    R(cuLibraryGetGlobal, r_cuLibraryGetGlobal);
    R(cuKernelGetFunction, r_cuKernelGetFunction);
    R(cuKernelGetAttribute, r_cuKernelGetAttribute);
    R(cuKernelSetAttribute, r_cuKernelSetAttribute);
    R(cuKernelGetName, r_cuKernelGetName);
    R(cuFuncGetParamInfo, r_cuFuncGetParamInfo);
    R(cuFuncGetAttribute, r_cuFuncGetAttribute);
    R(cuFuncSetAttribute, r_cuFuncSetAttribute);
    R(cuFuncSetCacheConfig, r_cuFuncSetCacheConfig);
    R(cuFuncGetName, r_cuFuncGetName);
    R(cuFuncGetModule, r_cuFuncGetModule);
    R(cuOccupancyMaxActiveBlocksPerMultiprocessor, r_cuOccupancyMaxActiveBlocksPerMultiprocessor);
    R(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags,
      r_cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags);
    R(cuOccupancyMaxPotentialBlockSize, r_cuOccupancyMaxPotentialBlockSize);
    R(cuOccupancyMaxPotentialBlockSizeWithFlags, r_cuOccupancyMaxPotentialBlockSizeWithFlags);
    R(cuCtxRecordEvent, r_cuCtxRecordEvent);
    R(cuCtxWaitEvent, r_cuCtxWaitEvent);
    R(cuLaunchKernel, r_cuLaunchKernel);
    R(cuLaunchKernel_ptsz, r_cuLaunchKernel_ptsz);
    R(cuLaunchKernelEx, r_cuLaunchKernelEx);
    R(cuLaunchKernelEx_ptsz, r_cuLaunchKernelEx_ptsz);
    R(cuLaunchCooperativeKernel, r_cuLaunchCooperativeKernel);
    R(cuLaunchCooperativeKernel_ptsz, r_cuLaunchCooperativeKernel_ptsz);
    R(cuStreamCreate, r_cuStreamCreate);
    R(cuStreamCreateWithPriority, r_cuStreamCreateWithPriority);
    R(cuStreamDestroy, r_cuStreamDestroy);
    R(cuStreamDestroy_v2, r_cuStreamDestroy);
    R(cuStreamSynchronize, r_cuStreamSynchronize);
    R(cuStreamSynchronize_ptsz, r_cuStreamSynchronize_ptsz);
    R(cuStreamQuery, r_cuStreamQuery);
    R(cuStreamQuery_ptsz, r_cuStreamQuery_ptsz);
    R(cuStreamGetFlags, r_cuStreamGetFlags);
    R(cuStreamGetFlags_ptsz, r_cuStreamGetFlags_ptsz);
    R(cuStreamGetPriority, r_cuStreamGetPriority);
    R(cuStreamGetPriority_ptsz, r_cuStreamGetPriority_ptsz);
    R(cuStreamGetId, r_cuStreamGetId);
    R(cuStreamGetId_ptsz, r_cuStreamGetId_ptsz);
    R(cuStreamGetDevice, r_cuStreamGetDevice);
    R(cuStreamGetDevice_ptsz, r_cuStreamGetDevice_ptsz);
    R(cuStreamGetCtx, r_cuStreamGetCtx);
    R(cuStreamGetCtx_ptsz, r_cuStreamGetCtx_ptsz);
    R(cuStreamGetCtx_v2, r_cuStreamGetCtx_v2);
    R(cuStreamGetCtx_v2_ptsz, r_cuStreamGetCtx_v2_ptsz);
    R(cuStreamWaitEvent, r_cuStreamWaitEvent);
    R(cuStreamWaitEvent_ptsz, r_cuStreamWaitEvent_ptsz);
    R(cuLaunchHostFunc, r_cuLaunchHostFunc);
    R(cuLaunchHostFunc_ptsz, r_cuLaunchHostFunc_ptsz);
    R(cuStreamAddCallback, r_cuStreamAddCallback);
    R(cuStreamAddCallback_ptsz, r_cuStreamAddCallback_ptsz);
    R(cuEventCreate, r_cuEventCreate);
    R(cuEventDestroy, r_cuEventDestroy);
    R(cuEventDestroy_v2, r_cuEventDestroy);
    R(cuEventRecord, r_cuEventRecord);
    R(cuEventRecord_ptsz, r_cuEventRecord_ptsz);
    R(cuEventRecordWithFlags, r_cuEventRecordWithFlags);
    R(cuEventRecordWithFlags_ptsz, r_cuEventRecordWithFlags_ptsz);
    R(cuEventSynchronize, r_cuEventSynchronize);
    R(cuEventQuery, r_cuEventQuery);
    R(cuEventElapsedTime, r_cuEventElapsedTime);
    R(cuEventElapsedTime_v2, r_cuEventElapsedTime);
    R(cuGetErrorName, r_cuGetErrorName);
    R(cuGetErrorString, r_cuGetErrorString);
    R(cuGetExportTable, r_cuGetExportTable);
    R(cuGetProcAddress, r_cuGetProcAddress);
    R(cuGetProcAddress_v2, r_cuGetProcAddress_v2);
#undef R
}
