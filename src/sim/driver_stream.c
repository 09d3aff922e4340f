/* SPDX-License-Identifier: Apache-2.0 */
/* Streams and events of the sim driver. Each stream is a FIFO run by its own executor thread
 * (started on first use), so work really is asynchronous: cuStreamQuery says NOT_READY while
 * a kernel runs, and the host keeps going. Ordering between streams is expressed as
 * dependencies on points of other streams (gf_dep): an event's recorded point, and the
 * implicit synchronization of the legacy NULL stream with every blocking stream of its
 * context. */
#define __CUDA_API_VERSION_INTERNAL 1
#include "driver.h"

#include <stdlib.h>
#include <string.h>

static atomic_ullong g_stream_ids = 16;

/* Per-thread default streams, one per context this thread used. */
#define GF_PTDS_SLOTS 16
static __thread struct {
    gf_ctx *ctx;
    gf_stream *s;
} t_ptds[GF_PTDS_SLOTS];

gf_stream *gf_drv__stream_new(gf_ctx *c, unsigned flags, int priority, int legacy, int locked)
{
    /* Under g_drv.lock: a recycled slot may still be read by dep_done for its old life. */
    if (!locked) GF_DRV_LOCK();
    gf_stream *s = gf_drv__obj_new(GF_DRV_STREAM);
    if (s) {
        s->ctx = c;
        s->flags = flags;
        s->priority = priority;
        s->legacy = legacy;
        s->id = atomic_fetch_add(&g_stream_ids, 1);
        s->gen = s->h.reuse;
        gf_drv__obj_publish(s);
    }
    if (!locked) GF_DRV_UNLOCK();
    return s;
}

static int dep_done(const gf_dep *d)
{
    return d->s->h.reuse != d->gen || d->s->completed >= d->seq;
}

static int deps_done(const gf_op *op)
{
    for (unsigned i = 0; i < op->ndeps; i++)
        if (!dep_done(&op->deps[i])) return 0;
    return 1;
}

gf_op *gf_drv__op_new(gf_op_kind kind)
{
    gf_op *op = calloc(1, sizeof *op);
    if (op) op->kind = kind;
    return op;
}

void gf_drv__op_free(gf_op *op)
{
    if (!op) return;
    if (op->kind == GF_OP_KERNEL && op->u.kernel.mod) gf_drv__obj_unref(op->u.kernel.mod);
    if (op->kind == GF_OP_EVENT && op->u.event.ev) gf_drv__obj_unref(op->u.event.ev);
    if (op->kind == GF_OP_KERNEL) free(op->u.kernel.params);
    free(op->deps);
    free(op->owned);
    free(op);
}

static int add_dep(gf_op *op, gf_stream *s)
{
    if (s->completed >= s->submitted) return 0;
    gf_dep *d = realloc(op->deps, (op->ndeps + 1) * sizeof *d);
    if (!d) return -1;
    op->deps = d;
    d[op->ndeps++] = (gf_dep){s, s->h.reuse, s->submitted};
    return 0;
}

struct implicit_arg {
    gf_stream *self;
    gf_op *op;
    int err;
};

static void legacy_dep_cb(void *o, void *arg)
{
    gf_stream *t = o;
    struct implicit_arg *a = arg;
    if (t == a->self || t->ctx != a->self->ctx || t->legacy) return;
    if (t->flags & CU_STREAM_NON_BLOCKING) return;
    if (add_dep(a->op, t)) a->err = 1;
}

/* Adds the dependencies that the legacy stream's semantics imply. Lock held. */
static int implicit_deps(gf_stream *s, gf_op *op)
{
    if (s->legacy) {
        struct implicit_arg a = {s, op, 0};
        gf_drv__obj_foreach_any(GF_DRV_STREAM, legacy_dep_cb, &a);
        return a.err ? -1 : 0;
    }
    if (!(s->flags & CU_STREAM_NON_BLOCKING) && s->ctx->legacy && s->ctx->legacy != s)
        return add_dep(op, s->ctx->legacy);
    return 0;
}

static void *executor(void *arg);

CUresult gf_drv__enqueue(gf_stream *s, gf_op *op)
{
    GF_DRV_LOCK();
    if (implicit_deps(s, op) != 0) {
        GF_DRV_UNLOCK();
        gf_drv__op_free(op);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (!s->thread_running) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        gf_drv__obj_ref(s);
        if (pthread_create(&th, &at, executor, s) != 0) {
            pthread_attr_destroy(&at);
            GF_DRV_UNLOCK();
            gf_drv__obj_unref(s);
            gf_drv__op_free(op);
            gf_log(GF_LOG_ERROR, GF_SIM_LOG, "cannot start a stream executor thread");
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        pthread_attr_destroy(&at);
        s->thread_running = 1;
    }
    op->seq = ++s->submitted;
    if (op->kind == GF_OP_EVENT) {
        gf_event *e = op->u.event.ev;
        e->recorded = 1;
        e->rec++;
        e->stamped = 0;
        e->at = (gf_dep){s, s->h.reuse, op->seq};
        op->u.event.rec = e->rec;
    }
    op->next = NULL;
    if (s->tail)
        s->tail->next = op;
    else
        s->head = op;
    s->tail = op;
    pthread_cond_broadcast(&g_drv.cv);
    GF_DRV_UNLOCK();
    return CUDA_SUCCESS;
}

CUresult gf_drv__run_sync(gf_stream *s, gf_op *op)
{
    GF_DRV_LOCK();
    if (implicit_deps(s, op) != 0 || add_dep(op, s) != 0) {
        GF_DRV_UNLOCK();
        gf_drv__op_free(op);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    while (!deps_done(op)) pthread_cond_wait(&g_drv.cv, &g_drv.lock);
    GF_DRV_UNLOCK();
    CUresult rc = atomic_load(&s->ctx->sticky);
    if (!rc) rc = gf_drv__op_exec(s->ctx, op);
    gf_drv__op_free(op);
    if (rc) gf_drv__ctx_set_sticky(s->ctx, rc);
    return rc;
}

CUresult gf_drv__exec_kernel(gf_ctx *c, gf_op *op);

static void exec_copy(const gf_copy *cp)
{
    if (cp->height <= 1 && cp->depth <= 1) {
        memmove(cp->dst, cp->src, cp->width);
        return;
    }
    for (size_t z = 0; z < cp->depth; z++)
        for (size_t y = 0; y < cp->height; y++)
            memmove(cp->dst + z * cp->dpitch * cp->dheight + y * cp->dpitch,
                    cp->src + z * cp->spitch * cp->sheight + y * cp->spitch, cp->width);
}

static void exec_memset(gf_op *op)
{
    for (size_t y = 0; y < op->u.memset.height; y++) {
        uint8_t *row = op->u.memset.dst + y * op->u.memset.pitch;
        size_t n = op->u.memset.width;
        uint32_t v = op->u.memset.value;
        switch (op->u.memset.elem) {
        case 1: memset(row, (int)(v & 0xff), n); break;
        case 2: for (size_t i = 0; i < n; i++) ((uint16_t *)row)[i] = (uint16_t)v; break;
        default: for (size_t i = 0; i < n; i++) ((uint32_t *)row)[i] = v; break;
        }
    }
}

CUresult gf_drv__mem_free_async_exec(CUdeviceptr p);

CUresult gf_drv__op_exec(gf_ctx *c, gf_op *op)
{
    CUresult sticky = atomic_load(&c->sticky);
    switch (op->kind) {
    case GF_OP_NOP: return CUDA_SUCCESS;
    case GF_OP_KERNEL: return sticky ? sticky : gf_drv__exec_kernel(c, op);
    case GF_OP_COPY:
        if (!sticky) exec_copy(&op->u.copy);
        return CUDA_SUCCESS;
    case GF_OP_MEMSET:
        if (!sticky) exec_memset(op);
        return CUDA_SUCCESS;
    case GF_OP_HOSTFN:
        if (!sticky) op->u.hostfn.fn(op->u.hostfn.arg);
        return CUDA_SUCCESS;
    case GF_OP_CALLBACK:
        op->u.callback.fn(op->u.callback.stream, sticky, op->u.callback.arg);
        return CUDA_SUCCESS;
    case GF_OP_EVENT: {
        gf_event *e = op->u.event.ev;
        uint64_t now = gf_drv__now();
        GF_DRV_LOCK();
        if (e->rec == op->u.event.rec) {
            e->time_ns = now;
            e->stamped = 1;
        }
        GF_DRV_UNLOCK();
        return CUDA_SUCCESS;
    }
    case GF_OP_FREE: gf_drv__mem_free_async_exec(op->u.free.ptr); return CUDA_SUCCESS;
    }
    return CUDA_SUCCESS;
}

static void *executor(void *arg)
{
    gf_stream *s = arg;
    GF_DRV_LOCK();
    for (;;) {
        while (!(s->head && deps_done(s->head))) {
            if (!s->head && s->destroyed) goto out;
            pthread_cond_wait(&g_drv.cv, &g_drv.lock);
        }
        gf_op *op = s->head;
        GF_DRV_UNLOCK();
        CUresult rc = gf_drv__op_exec(s->ctx, op);
        if (rc) gf_drv__ctx_set_sticky(s->ctx, rc);
        GF_DRV_LOCK();
        s->head = op->next;
        if (!s->head) s->tail = NULL;
        s->completed = op->seq;
        pthread_cond_broadcast(&g_drv.cv);
        GF_DRV_UNLOCK();
        gf_drv__op_free(op);
        GF_DRV_LOCK();
    }
out:
    s->thread_running = 0;
    GF_DRV_UNLOCK();
    gf_drv__obj_unref(s);
    return NULL;
}

static void wait_dep(gf_dep d)
{
    GF_DRV_LOCK();
    while (!dep_done(&d)) pthread_cond_wait(&g_drv.cv, &g_drv.lock);
    GF_DRV_UNLOCK();
}

void gf_drv__stream_wait_idle(gf_stream *s)
{
    GF_DRV_LOCK();
    gf_dep d = {s, s->h.reuse, s->submitted};
    while (!dep_done(&d)) pthread_cond_wait(&g_drv.cv, &g_drv.lock);
    GF_DRV_UNLOCK();
}

struct idle_arg {
    gf_ctx *c;
    gf_op op;   /* used only as a dependency list */
};

static void idle_cb(void *o, void *arg)
{
    gf_stream *s = o;
    struct idle_arg *a = arg;
    if (s->ctx == a->c) add_dep(&a->op, s);
}

void gf_drv__ctx_wait_idle(gf_ctx *c)
{
    struct idle_arg a = {.c = c};
    GF_DRV_LOCK();
    gf_drv__obj_foreach_any(GF_DRV_STREAM, idle_cb, &a);
    while (!deps_done(&a.op)) pthread_cond_wait(&g_drv.cv, &g_drv.lock);
    GF_DRV_UNLOCK();
    free(a.op.deps);
}

void gf_drv__stream_destroy(gf_stream *s)
{
    GF_DRV_LOCK();
    if (s->destroyed) {
        GF_DRV_UNLOCK();
        return;
    }
    s->destroyed = 1;
    s->h.live = 0;
    pthread_cond_broadcast(&g_drv.cv);
    GF_DRV_UNLOCK();
    gf_drv__obj_unref(s);
}

static gf_stream *per_thread_stream(gf_ctx *c)
{
    int freeslot = -1;
    for (int i = 0; i < GF_PTDS_SLOTS; i++) {
        if (t_ptds[i].ctx == c && t_ptds[i].s) {
            gf_stream *s = gf_drv__obj_get(GF_DRV_STREAM, t_ptds[i].s);
            if (s && s->ctx == c && s->per_thread) return s;
            t_ptds[i].ctx = NULL;
        }
        if (!t_ptds[i].ctx && freeslot < 0) freeslot = i;
    }
    gf_stream *s = gf_drv__stream_new(c, 0, 0, 0, 0);
    if (!s) return NULL;
    s->per_thread = 1; /* set before any other thread can see the handle */
    if (freeslot < 0) freeslot = 0;
    t_ptds[freeslot].ctx = c;
    t_ptds[freeslot].s = s;
    return s;
}

CUresult gf_drv__stream_arg(CUstream h, int ptds, gf_ctx **ctx_out, gf_stream **out)
{
    gf_ctx *c;
    CUresult rc;
    if (h == NULL || h == CU_STREAM_LEGACY || h == CU_STREAM_PER_THREAD) {
        if ((rc = gf_drv__ctx_enter(&c))) return rc;
        gf_stream *s = (h == CU_STREAM_PER_THREAD || (h == NULL && ptds)) ? per_thread_stream(c)
                                                                           : c->legacy;
        if (!s) return CUDA_ERROR_OUT_OF_MEMORY;
        *ctx_out = c;
        *out = s;
        return CUDA_SUCCESS;
    }
    GF_CHECK_INIT();
    gf_stream *s = gf_drv__obj_get(GF_DRV_STREAM, h);
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    c = s->ctx;
    if (!c->h.live) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
    if ((rc = atomic_load(&c->sticky))) return rc;
    *ctx_out = c;
    *out = s;
    return CUDA_SUCCESS;
}

/* ---- stream API ---------------------------------------------------------------------------- */

GF_SIM_API CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!phStream || (flags & ~(unsigned)CU_STREAM_NON_BLOCKING)) return CUDA_ERROR_INVALID_VALUE;
    if (priority > 0) priority = 0;
    if (priority < -5) priority = -5;
    gf_stream *s = gf_drv__stream_new(c, flags, priority, 0, 0);
    if (!s) return CUDA_ERROR_OUT_OF_MEMORY;
    *phStream = (CUstream)s;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags)
{
    return cuStreamCreateWithPriority(phStream, Flags, 0);
}

GF_SIM_API CUresult cuStreamDestroy_v2(CUstream hStream)
{
    GF_CHECK_INIT();
    gf_stream *s = gf_drv__obj_get(GF_DRV_STREAM, hStream);
    if (!s || s->legacy || s->per_thread) return CUDA_ERROR_INVALID_HANDLE;
    gf_drv__stream_destroy(s);
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuStreamDestroy(CUstream hStream)
{
    return cuStreamDestroy_v2(hStream);
}

static CUresult stream_query(CUstream h, int ptds)
{
    gf_ctx *c;
    gf_stream *s;
    CUresult rc = gf_drv__stream_arg(h, ptds, &c, &s);
    if (rc) return rc;
    GF_DRV_LOCK();
    int busy = s->completed < s->submitted;
    GF_DRV_UNLOCK();
    return busy ? CUDA_ERROR_NOT_READY : CUDA_SUCCESS;
}

GF_SIM_API_PTSZ(cuStreamQuery, (CUstream h), stream_query(h, ptds))

static CUresult stream_sync(CUstream h, int ptds)
{
    gf_ctx *c;
    gf_stream *s;
    CUresult rc = gf_drv__stream_arg(h, ptds, &c, &s);
    if (rc) return rc;
    if (s->legacy) {
        /* The legacy stream's last op already waits for the blocking streams; wait for them
         * too when nothing is queued on it. */
        struct gf_op tmp = {0};
        GF_DRV_LOCK();
        int r = implicit_deps(s, &tmp) | add_dep(&tmp, s);
        while (!r && !deps_done(&tmp)) pthread_cond_wait(&g_drv.cv, &g_drv.lock);
        GF_DRV_UNLOCK();
        free(tmp.deps);
    } else {
        gf_drv__stream_wait_idle(s);
    }
    return atomic_load(&c->sticky);
}

GF_SIM_API_PTSZ(cuStreamSynchronize, (CUstream h), stream_sync(h, ptds))

/* The stream behind h (see gf_drv__stream_arg), then CUDA_ERROR_INVALID_VALUE unless valid:
 * the argument checks of every call on one stream, in a real driver's order. */
static CUresult stream_arg_valid(CUstream h, int ptds, int valid, gf_ctx **c, gf_stream **s)
{
    CUresult rc = gf_drv__stream_arg(h, ptds, c, s);
    if (rc) return rc;
    return valid ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* cuStreamGet<X>(h, out) and its _ptsz twin: *out = expr, of the stream s and its context c;
 * the static name##_ serves callers inside this file. */
#define STREAM_GETTER(name, type, expr)                                                        \
    static CUresult name##_(CUstream h, int ptds, type *out)                                   \
    {                                                                                         \
        gf_ctx *c;                                                                            \
        gf_stream *s;                                                                         \
        CUresult rc = stream_arg_valid(h, ptds, out != NULL, &c, &s);                         \
        if (!rc) *out = (expr);                                                               \
        return rc;                                                                            \
    }                                                                                         \
    GF_SIM_API_PTSZ(name, (CUstream h, type *out), name##_(h, ptds, out))

STREAM_GETTER(cuStreamGetFlags, unsigned int, s->flags)
STREAM_GETTER(cuStreamGetPriority, int, s->priority)
STREAM_GETTER(cuStreamGetCtx, CUcontext, (CUcontext)c)
STREAM_GETTER(cuStreamGetId, unsigned long long, s->legacy ? 1 : s->id)
STREAM_GETTER(cuStreamGetDevice, CUdevice, c->dev)
STREAM_GETTER(cuStreamIsCapturing, CUstreamCaptureStatus, CU_STREAM_CAPTURE_STATUS_NONE)

static CUresult stream_get_ctx2(CUstream h, int ptds, CUcontext *pctx, CUgreenCtx *g)
{
    CUresult rc = cuStreamGetCtx_(h, ptds, pctx);
    if (rc) return rc;
    if (g) *g = NULL;
    return CUDA_SUCCESS;
}

GF_SIM_API_PTSZ(cuStreamGetCtx_v2, (CUstream h, CUcontext *p, CUgreenCtx *g), stream_get_ctx2(h, ptds, p, g))

/* The sim never captures: every capture query says so, whatever its ABI asks for. */
static CUresult capture_info(CUstream h, int ptds, CUstreamCaptureStatus *st, cuuint64_t *id,
                             CUgraph *g, const CUgraphNode **deps, const CUgraphEdgeData **ed,
                             size_t *n)
{
    CUresult rc = cuStreamIsCapturing_(h, ptds, st);
    if (rc) return rc;
    if (id) *id = 0;
    if (g) *g = NULL;
    if (deps) *deps = NULL;
    if (ed) *ed = NULL;
    if (n) *n = 0;
    return CUDA_SUCCESS;
}

GF_SIM_API_PTSZ(cuStreamGetCaptureInfo, (CUstream h, CUstreamCaptureStatus *st, cuuint64_t *id),
                capture_info(h, ptds, st, id, NULL, NULL, NULL, NULL))
GF_SIM_API_PTSZ(cuStreamGetCaptureInfo_v2,
                (CUstream h, CUstreamCaptureStatus *st, cuuint64_t *id, CUgraph *g,
                 const CUgraphNode **d, size_t *n),
                capture_info(h, ptds, st, id, g, d, NULL, n))
GF_SIM_API_PTSZ(cuStreamGetCaptureInfo_v3,
                (CUstream h, CUstreamCaptureStatus *st, cuuint64_t *id, CUgraph *g,
                 const CUgraphNode **d, const CUgraphEdgeData **e, size_t *n),
                capture_info(h, ptds, st, id, g, d, e, n))

GF_SIM_API CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode)
{
    static __thread CUstreamCaptureMode t_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
    if (!mode) return CUDA_ERROR_INVALID_VALUE;
    CUstreamCaptureMode old = t_mode;
    t_mode = *mode;
    *mode = old;
    return CUDA_SUCCESS;
}

static CUresult stream_wait_event(CUstream h, int ptds, CUevent ev, unsigned flags)
{
    gf_ctx *c;
    gf_stream *s;
    CUresult rc = gf_drv__stream_arg(h, ptds, &c, &s);
    if (rc) return rc;
    gf_event *e = gf_drv__obj_get(GF_DRV_EVENT, ev);
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    if (flags & ~(unsigned)CU_EVENT_WAIT_EXTERNAL) return CUDA_ERROR_INVALID_VALUE;
    gf_op *op = gf_drv__op_new(GF_OP_NOP);
    if (!op) return CUDA_ERROR_OUT_OF_MEMORY;
    GF_DRV_LOCK();
    int recorded = e->recorded;
    gf_dep d = e->at;
    GF_DRV_UNLOCK();
    if (!recorded) {
        gf_drv__op_free(op);
        return CUDA_SUCCESS;
    }
    op->deps = malloc(sizeof *op->deps);
    if (!op->deps) {
        gf_drv__op_free(op);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    op->deps[0] = d;
    op->ndeps = 1;
    return gf_drv__enqueue(s, op);
}

GF_SIM_API_PTSZ(cuStreamWaitEvent, (CUstream h, CUevent e, unsigned int f), stream_wait_event(h, ptds, e, f))

static CUresult add_callback(CUstream h, int ptds, CUstreamCallback cb, void *ud, unsigned flags)
{
    gf_ctx *c;
    gf_stream *s;
    CUresult rc = stream_arg_valid(h, ptds, cb && flags == 0, &c, &s);
    if (rc) return rc;
    gf_op *op = gf_drv__op_new(GF_OP_CALLBACK);
    if (!op) return CUDA_ERROR_OUT_OF_MEMORY;
    op->u.callback.fn = cb;
    op->u.callback.arg = ud;
    op->u.callback.stream = h;
    return gf_drv__enqueue(s, op);
}

GF_SIM_API_PTSZ(cuStreamAddCallback, (CUstream h, CUstreamCallback cb, void *ud, unsigned int f),
                add_callback(h, ptds, cb, ud, f))

static CUresult launch_host_func(CUstream h, int ptds, CUhostFn fn, void *ud)
{
    gf_ctx *c;
    gf_stream *s;
    CUresult rc = stream_arg_valid(h, ptds, fn != NULL, &c, &s);
    if (rc) return rc;
    gf_op *op = gf_drv__op_new(GF_OP_HOSTFN);
    if (!op) return CUDA_ERROR_OUT_OF_MEMORY;
    op->u.hostfn.fn = fn;
    op->u.hostfn.arg = ud;
    return gf_drv__enqueue(s, op);
}

GF_SIM_API_PTSZ(cuLaunchHostFunc, (CUstream h, CUhostFn fn, void *ud), launch_host_func(h, ptds, fn, ud))

static CUresult stream_attach(CUstream h, int ptds, CUdeviceptr p, size_t len, unsigned flags)
{
    gf_ctx *c;
    gf_stream *s;
    (void)len;
    CUresult rc = gf_drv__stream_arg(h, ptds, &c, &s);
    if (rc) return rc;
    if (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST && flags != CU_MEM_ATTACH_SINGLE)
        return CUDA_ERROR_INVALID_VALUE;
    gf_alloc a;
    if (!gf_drv__mem_find(p, 0, &a) || a.kind != GF_MEM_MANAGED) return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

GF_SIM_API_PTSZ(cuStreamAttachMemAsync, (CUstream h, CUdeviceptr p, size_t l, unsigned int f),
                stream_attach(h, ptds, p, l, f))

static CUresult stream_get_attr(CUstream h, int ptds, CUstreamAttrID attr, CUstreamAttrValue *v)
{
    gf_ctx *c;
    gf_stream *s;
    CUresult rc = stream_arg_valid(h, ptds, v != NULL, &c, &s);
    if (rc) return rc;
    memset(v, 0, sizeof *v);
    if (attr == CU_LAUNCH_ATTRIBUTE_PRIORITY) v->priority = s->priority;
    return CUDA_SUCCESS;
}

static CUresult stream_set_attr(CUstream h, int ptds, CUstreamAttrID attr, const CUstreamAttrValue *v)
{
    gf_ctx *c;
    gf_stream *s;
    CUresult rc = stream_arg_valid(h, ptds, v != NULL, &c, &s);
    if (rc) return rc;
    if (attr == CU_LAUNCH_ATTRIBUTE_PRIORITY) s->priority = v->priority;
    return CUDA_SUCCESS;
}

GF_SIM_API_PTSZ(cuStreamGetAttribute, (CUstream h, CUstreamAttrID a, CUstreamAttrValue *v),
                stream_get_attr(h, ptds, a, v))
GF_SIM_API_PTSZ(cuStreamSetAttribute, (CUstream h, CUstreamAttrID a, const CUstreamAttrValue *v),
                stream_set_attr(h, ptds, a, v))

/* ---- events -------------------------------------------------------------------------------- */

GF_SIM_API CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!phEvent) return CUDA_ERROR_INVALID_VALUE;
    if (Flags & ~(unsigned)(CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS))
        return CUDA_ERROR_INVALID_VALUE;
    if ((Flags & CU_EVENT_INTERPROCESS) && !(Flags & CU_EVENT_DISABLE_TIMING))
        return CUDA_ERROR_INVALID_VALUE;
    gf_event *e = gf_drv__obj_new(GF_DRV_EVENT);
    if (!e) return CUDA_ERROR_OUT_OF_MEMORY;
    e->ctx = c;
    e->flags = Flags;
    gf_drv__obj_publish(e);
    *phEvent = (CUevent)e;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuEventDestroy_v2(CUevent hEvent)
{
    GF_CHECK_INIT();
    gf_event *e = gf_drv__obj_get(GF_DRV_EVENT, hEvent);
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    e->h.live = 0;
    gf_drv__obj_unref(e);
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuEventDestroy(CUevent hEvent)
{
    return cuEventDestroy_v2(hEvent);
}

static CUresult event_record(CUevent ev, CUstream h, int ptds, unsigned flags)
{
    GF_CHECK_INIT();
    gf_event *e = gf_drv__obj_get(GF_DRV_EVENT, ev);
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    gf_ctx *c;
    gf_stream *s;
    CUresult rc = gf_drv__stream_arg(h, ptds, &c, &s);
    if (rc) return rc;
    if (flags & ~(unsigned)CU_EVENT_RECORD_EXTERNAL) return CUDA_ERROR_INVALID_VALUE;
    if (e->ctx != c) return CUDA_ERROR_INVALID_HANDLE;
    gf_op *op = gf_drv__op_new(GF_OP_EVENT);
    if (!op) return CUDA_ERROR_OUT_OF_MEMORY;
    gf_drv__obj_ref(e);
    op->u.event.ev = e;
    return gf_drv__enqueue(s, op);
}

GF_SIM_API_PTSZ(cuEventRecord, (CUevent e, CUstream s), event_record(e, s, ptds, 0))
GF_SIM_API_PTSZ(cuEventRecordWithFlags, (CUevent e, CUstream s, unsigned int f), event_record(e, s, ptds, f))

GF_SIM_API CUresult cuEventQuery(CUevent hEvent)
{
    GF_CHECK_INIT();
    gf_event *e = gf_drv__obj_get(GF_DRV_EVENT, hEvent);
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    CUresult sticky = atomic_load(&e->ctx->sticky);
    if (sticky) return sticky;
    GF_DRV_LOCK();
    int done = !e->recorded || dep_done(&e->at);
    GF_DRV_UNLOCK();
    return done ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

GF_SIM_API CUresult cuEventSynchronize(CUevent hEvent)
{
    GF_CHECK_INIT();
    gf_event *e = gf_drv__obj_get(GF_DRV_EVENT, hEvent);
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    GF_DRV_LOCK();
    int recorded = e->recorded;
    gf_dep d = e->at;
    GF_DRV_UNLOCK();
    if (recorded) wait_dep(d);
    return atomic_load(&e->ctx->sticky);
}

GF_SIM_API CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    GF_CHECK_INIT();
    if (!pMilliseconds) return CUDA_ERROR_INVALID_VALUE;
    gf_event *a = gf_drv__obj_get(GF_DRV_EVENT, hStart);
    gf_event *b = gf_drv__obj_get(GF_DRV_EVENT, hEnd);
    if (!a || !b) return CUDA_ERROR_INVALID_HANDLE;
    if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING) return CUDA_ERROR_INVALID_HANDLE;
    GF_DRV_LOCK();
    CUresult rc = CUDA_SUCCESS;
    if (!a->recorded || !b->recorded)
        rc = CUDA_ERROR_INVALID_HANDLE;
    else if (!dep_done(&a->at) || !dep_done(&b->at) || !a->stamped || !b->stamped)
        rc = CUDA_ERROR_NOT_READY;
    else
        *pMilliseconds = (float)(((double)b->time_ns - (double)a->time_ns) / 1e6);
    GF_DRV_UNLOCK();
    return rc;
}

GF_SIM_API CUresult cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    return cuEventElapsedTime_v2(pMilliseconds, hStart, hEnd);
}

GF_SIM_API CUresult cuCtxRecordEvent(CUcontext hCtx, CUevent hEvent)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_arg(hCtx, &c);
    if (rc) return rc;
    gf_event *e = gf_drv__obj_get(GF_DRV_EVENT, hEvent);
    if (!e || e->ctx != c) return CUDA_ERROR_INVALID_HANDLE;
    /* the point after everything queued in the context so far: record on the legacy stream,
     * which waits for the blocking streams; non-blocking streams are waited for explicitly */
    struct idle_arg a = {.c = c};
    GF_DRV_LOCK();
    gf_drv__obj_foreach_any(GF_DRV_STREAM, idle_cb, &a);
    GF_DRV_UNLOCK();
    gf_op *op = gf_drv__op_new(GF_OP_EVENT);
    if (!op) {
        free(a.op.deps);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    op->deps = a.op.deps;
    op->ndeps = a.op.ndeps;
    gf_drv__obj_ref(e);
    op->u.event.ev = e;
    return gf_drv__enqueue(c->legacy, op);
}

GF_SIM_API CUresult cuCtxWaitEvent(CUcontext hCtx, CUevent hEvent)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_arg(hCtx, &c);
    if (rc) return rc;
    return stream_wait_event((CUstream)c->legacy, 0, hEvent, 0);
}

static CUresult stream_copy_attrs(CUstream dst, CUstream src, int ptds)
{
    gf_ctx *c;
    gf_stream *d, *s;
    CUresult rc = gf_drv__stream_arg(dst, ptds, &c, &d);
    if (rc || (rc = gf_drv__stream_arg(src, ptds, &c, &s))) return rc;
    d->priority = s->priority;
    return CUDA_SUCCESS;
}

GF_SIM_API_PTSZ(cuStreamCopyAttributes, (CUstream dst, CUstream src), stream_copy_attrs(dst, src, ptds))
