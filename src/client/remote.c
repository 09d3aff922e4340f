/* SPDX-License-Identifier: Apache-2.0 */
/* The remote backend's connection: reading GPUFUSE_REMOTE* , connecting and handshaking with the
 * worker, synchronous calls (with a liveness ping while a long one runs), batched asynchronous
 * calls, bulk data both ways, and failing every call fast once the worker is gone. */
#include "remote.h"

#include "gpufuse/cuda_faults.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gpufuse/units.h"
#include "wire/wire_internal.h"

gf_remote gf_r = {.lk = PTHREAD_MUTEX_INITIALIZER};
_Thread_local uint64_t gf_remote_tl_ctx;

/* A conn dropped in a forked child stays reachable here (never closed: it is the parent's). */
static gf_wire_conn *orphaned[8];

/* Host functions queued whose HOST_FUNC_RUN has not come (below; under gf_r.lk). */
static struct gf_rhostfn {
    uint64_t token;
    CUhostFn fn;
    CUstreamCallback cb;
    CUstream stream; /* the program's, for a callback */
    void *data;
} *hfs;
static unsigned nhf, caphf;
static uint64_t hf_token;

/* The flusher thread (below): woken through flush_cv when a call is queued. */
static pthread_cond_t flush_cv = PTHREAD_COND_INITIALIZER;
static int flusher_pid;  /* the process the flusher thread runs in (none after a fork) */
static int flush_wanted; /* under gf_r.lk */

int gf_remote_wanted(void)
{
    const char *a = getenv("GPUFUSE_REMOTE");
    return a && *a;
}

uint64_t gf_remote_handle(unsigned kind, uint64_t extra)
{
    uint64_t n = atomic_fetch_add(&gf_r.next_handle, 1) + 1;
    return GF_RPC_HANDLE(kind, (extra << 32) | (n & 0xffffffffu));
}

static void after_fork_child(void)
{
    /* The session belongs to the parent. A child forked before cuInit starts its own at its
     * cuInit; one forked after it cannot use CUDA, as on a driver (gf_r.forked), and its NVML
     * queries get a session of their own. */
    for (unsigned i = 0; i < 8; i++)
        if (!orphaned[i]) {
            orphaned[i] = gf_r.c;
            break;
        }
    gf_r.c = NULL;
    if (gf_r.inited) gf_r.forked = 1;
    gf_r.inited = 0;
    gf_r.broken = 0;
    gf_r.sent_ctx = 0;
    gf_r.nd2h = 0;
    gf_remote_tl_ctx = 0;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    gf_r.lk = m;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    flush_cv = cv;
    nhf = 0; /* the parent's host functions are the parent's */
    flush_wanted = 0; /* the flusher is the parent's; a child that connects starts its own */
}

static void at_exit(void)
{
    pthread_mutex_lock(&gf_r.lk);
    if (gf_r.c && !gf_r.broken && gf_r.pid == getpid()) {
        /* Queued asynchronous work runs; then an orderly goodbye. */
        gf_wire_send(gf_r.c, GF_WIRE_K_GOODBYE, 0, 0, NULL, 0, gf_r.timeout_ms, NULL, 0);
        gf_wire_close(gf_r.c);
        gf_r.c = NULL;
    }
    pthread_mutex_unlock(&gf_r.lk);
}

/* The worker is gone (or spoke nonsense): every later call fails at once with rc. Under lk. */
static CUresult broken(gf_status st, const char *err)
{
    if (!gf_r.broken) {
        gf_r.broken = 1;
        gf_r.broken_rc = CUDA_ERROR_DEVICE_UNAVAILABLE;
        gf_log(GF_LOG_ERROR, GF_REMOTE_LOG,
               "lost the remote GPU at %s (%s: %s); CUDA calls fail with "
               "CUDA_ERROR_DEVICE_UNAVAILABLE from now on",
               gf_r.addr, gf_status_name(st), err && *err ? err : "no detail");
    }
    return gf_r.broken_rc;
}

CUresult gf_remote_lock(void)
{
    pthread_mutex_lock(&gf_r.lk);
    if (!gf_r.inited || !gf_r.c) {
        pthread_mutex_unlock(&gf_r.lk);
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (gf_r.broken) {
        pthread_mutex_unlock(&gf_r.lk);
        return gf_r.broken_rc;
    }
    gf_remote_tl_locked = 1;
    return CUDA_SUCCESS;
}

void gf_remote_unlock(void)
{
    if (gf_mirror_sync_due && !gf_mirror_busy && !gf_r.broken) gf_mirror_after_sync();
    gf_remote_tl_locked = 0;
    pthread_mutex_unlock(&gf_r.lk);
}

void gf_remote_sync_ctx(void)
{
    if (gf_remote_tl_ctx == gf_r.sent_ctx) return;
    uint8_t buf[32];
    gf_wire_writer w;
    gf_wire_writer_init_fixed(&w, buf, sizeof buf);
    gf_wire_put_handle(&w, gf_remote_tl_ctx);
    char err[256];
    if (gf_wire_queue(gf_r.c, GF_RPC_CTX_SET, GF_WIRE_F_NOREPLY, 0, w.buf, w.len, err,
                      sizeof err) != GF_OK)
        broken(GF_ENOSPC, err);
    gf_r.sent_ctx = gf_remote_tl_ctx;
}

static CUresult wait_reply(uint64_t rid, CUresult *rc, gf_wire_reader *rep);

/* ---- the flusher ------------------------------------------------------------------------------
 * Asynchronous calls are batched: they leave with the next synchronizing call. A program that
 * queues work and then computes on the host without calling CUDA would leave the device idle
 * meanwhile, where a GPU starts a launch at once. So a thread of the backend's own writes what
 * is queued GF_REMOTE_FLUSH_US after the first call queued since the last write (calls queued
 * within that window still leave as one write), without waiting for the socket. */
#define GF_REMOTE_FLUSH_US 200


/* ---- host functions ----------------------------------------------------------------------------
 * cuLaunchHostFunc / cuStreamAddCallback queue HOST_FUNC; the worker holds the stream at that
 * point and sends HOST_FUNC_RUN when the stream gets there. The function runs here, on whichever
 * thread holds the connection then: one waiting for a call's answer (wait_reply, bulk data), or
 * the flusher thread, which looks for RUN frames while host functions are out so that they run
 * even when the program makes no CUDA call (it may be waiting for the function itself). Then
 * HOST_FUNC_DONE lets the worker's stream go on. All of it under gf_r.lk. */

static void host_run(uint64_t token)
{
    unsigned i = 0;
    while (i < nhf && hfs[i].token != token) i++;
    if (i == nhf) {
        broken(GF_EPROTO, "HOST_FUNC_RUN for no host function queued");
        return;
    }
    struct gf_rhostfn h = hfs[i];
    hfs[i] = hfs[--nhf];
    gf_mirror_before_host_fn();
    if (h.fn) h.fn(h.data);
    else h.cb(h.stream, gf_r.fault, h.data);
    char err[256];
    gf_status st = gf_wire_send(gf_r.c, GF_RPC_HOST_FUNC_DONE, GF_WIRE_F_NOREPLY, token, NULL, 0,
                                gf_r.timeout_ms, err, sizeof err);
    if (st != GF_OK) broken(st, err);
}

CUresult gf_remote_host_func(uint64_t sh, CUstream stream, CUhostFn fn, CUstreamCallback cb,
                             void *data)
{
    if (gf_r.fault) return gf_r.fault;
    if (nhf == caphf) {
        unsigned nc = caphf ? caphf * 2 : 16;
        struct gf_rhostfn *n = realloc(hfs, nc * sizeof *n);
        if (!n) return CUDA_ERROR_OUT_OF_MEMORY;
        hfs = n;
        caphf = nc;
    }
    uint64_t token = ++hf_token;
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_HOST_FUNC);
    gf_wire_put_handle(&q.w, sh);
    gf_wire_put_u64(&q.w, token);
    hfs[nhf++] = (struct gf_rhostfn){token, fn, cb, stream, data};
    CUresult r = gf_remote_async(&q);
    if (r != CUDA_SUCCESS) nhf--;
    return r;
}

static CUresult d2h_data(const gf_wire_frame *f);

/* The flusher's look for RUN frames: whatever the worker sent, without waiting. */
static void host_poll(void)
{
    for (;;) {
        gf_wire_frame f;
        char err[256];
        gf_status st = gf_wire_recv(gf_r.c, &f, 0, err, sizeof err);
        if (st == GF_EBUSY || st == GF_ETIMEDOUT) return;
        if (st != GF_OK) {
            broken(st, err);
            return;
        }
        if (f.hdr.kind == GF_RPC_HOST_FUNC_RUN) host_run(f.hdr.request_id);
        else if (f.hdr.kind == GF_RPC_DTOH_DATA && !(f.hdr.flags & GF_WIRE_F_REPLY)) d2h_data(&f);
        else if (f.hdr.kind != GF_WIRE_K_PONG) { /* no call is waiting for anything else */
            broken(GF_EPROTO, "a frame came while no call was waiting");
            return;
        }
        if (gf_r.broken) return;
    }
}

static void *flusher_main(void *arg)
{
    (void)arg;
    /* Holding the lock, as a call does (a host function run here must not wait for it). */
    gf_remote_tl_locked = 1;
    pthread_mutex_lock(&gf_r.lk);
    for (;;) {
        while (!flush_wanted && !nhf) pthread_cond_wait(&flush_cv, &gf_r.lk);
        int flush = flush_wanted;
        pthread_mutex_unlock(&gf_r.lk);
        struct timespec ts = {0, (flush ? GF_REMOTE_FLUSH_US : 1000) * 1000L};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&gf_r.lk);
        flush_wanted = 0;
        if (!gf_r.c || gf_r.broken || gf_r.pid != getpid()) {
            nhf = 0; /* nothing will run them now */
            continue;
        }
        char err[256];
        gf_status st = gf_wire_flush(gf_r.c, 0, err, sizeof err);
        if (st == GF_EBUSY) flush_wanted = 1; /* the socket is full: the rest after the window */
        else if (st != GF_OK) broken(st, err);
        else if (nhf) host_poll();
    }
    return NULL;
}

/* Under the lock, after queueing: the flusher writes it soon unless a call does first. */
static void want_flush(void)
{
    if (flush_wanted) return;
    if (flusher_pid != getpid()) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &a, flusher_main, NULL);
        pthread_attr_destroy(&a);
        if (rc != 0) return; /* then the next synchronizing call sends it, as before */
        flusher_pid = getpid();
    }
    flush_wanted = 1;
    pthread_cond_signal(&flush_cv);
}

CUresult gf_remote_dtoh_async(gf_rreq *q, void *dst, size_t n)
{
    if (gf_r.fault) return gf_r.fault;
    if (gf_r.nd2h == GF_REMOTE_MAX_D2H) return CUDA_ERROR_NOT_READY;
    if (gf_wire_writer_status(&q->w) != GF_OK) return CUDA_ERROR_INVALID_VALUE;
    char err[256];
    gf_mirror_flush(q->kind);
    gf_remote_sync_ctx();
    uint64_t rid = ++gf_r.next_rid;
    gf_status st = gf_wire_queue(gf_r.c, q->kind, GF_WIRE_F_NOREPLY, rid, q->w.buf, q->w.len, err,
                                 sizeof err);
    if (st != GF_OK) return broken(st, err);
    gf_r.d2h[gf_r.nd2h++] = (struct gf_rd2h){rid, dst, n};
    want_flush();
    return CUDA_SUCCESS;
}

/* A DTOH_DATA frame: the data of an asynchronous device-to-host copy, into its destination. */
static CUresult d2h_data(const gf_wire_frame *f)
{
    unsigned i = 0;
    while (i < gf_r.nd2h && gf_r.d2h[i].rid != f->hdr.request_id) i++;
    if (i == gf_r.nd2h) return broken(GF_EPROTO, "DTOH_DATA for no copy in flight");
    struct gf_rd2h d = gf_r.d2h[i];
    gf_r.d2h[i] = gf_r.d2h[--gf_r.nd2h];
    gf_wire_reader r;
    gf_wire_reader_init_frame(&r, f);
    CUresult st = (CUresult)gf_wire_get_u32(&r);
    uint64_t n = gf_wire_get_u64(&r);
    char err[256];
    if (gf_wire_reader_status(&r, 0, err, sizeof err) != GF_OK) return broken(GF_EPROTO, err);
    if (st != CUDA_SUCCESS) return CUDA_SUCCESS; /* the error comes with the next answer */
    if (n != d.n) return broken(GF_EPROTO, "DTOH_DATA of another length than the copy");
    return gf_remote_recv_bulk(d.rid, d.dst, d.n);
}

/* Every async_window asynchronous calls, wait until the worker has run them all: the queue of
 * work in flight stays bounded (a capped vGPU's launches cannot run far ahead of its cap). */
static CUresult maybe_fence(void)
{
    if (++gf_r.async_since_sync < gf_r.async_window) return CUDA_SUCCESS;
    char err[256];
    uint64_t rid = ++gf_r.next_rid;
    gf_status st = gf_wire_send(gf_r.c, GF_RPC_FENCE, 0, rid, NULL, 0, gf_r.timeout_ms, err,
                                sizeof err);
    if (st != GF_OK) return broken(st, err);
    CUresult rc;
    gf_wire_reader rep;
    return wait_reply(rid, &rc, &rep);
}

CUresult gf_remote_async(gf_rreq *q)
{
    if (gf_r.fault) return gf_r.fault;
    char err[256];
    if (gf_wire_writer_status(&q->w) != GF_OK) return CUDA_ERROR_INVALID_VALUE;
    gf_mirror_flush(q->kind);
    gf_remote_sync_ctx();
    gf_status st = gf_wire_queue(gf_r.c, q->kind, GF_WIRE_F_NOREPLY, 0, q->w.buf, q->w.len, err,
                                 sizeof err);
    if (st != GF_OK) return broken(st, err);
    gf_mirror_sent(q->kind);
    want_flush();
    return maybe_fence();
}

CUresult gf_remote_queue_raw(uint32_t kind, const void *p, size_t n)
{
    if (gf_r.fault) return gf_r.fault;
    char err[256];
    gf_mirror_flush(kind);
    gf_remote_sync_ctx();
    gf_status st = gf_wire_queue(gf_r.c, kind, GF_WIRE_F_NOREPLY, 0, p, n, err, sizeof err);
    if (st != GF_OK) return broken(st, err);
    gf_mirror_sent(kind);
    want_flush();
    return maybe_fence();
}

/* Waits for the reply to rid. A worker busy with a long call still answers PING from its event
 * loop, so silence for a whole timeout means it is gone, and a long kernel is not. */
static CUresult wait_reply(uint64_t rid, CUresult *rc, gf_wire_reader *rep)
{
    char err[512];
    int pinged = 0;
    for (;;) {
        gf_wire_frame f;
        gf_status st = gf_wire_recv(gf_r.c, &f, gf_r.timeout_ms, err, sizeof err);
        if (st == GF_ETIMEDOUT && !pinged) {
            pinged = 1;
            if ((st = gf_wire_send(gf_r.c, GF_WIRE_K_PING, 0, 0, NULL, 0, gf_r.timeout_ms, err,
                                   sizeof err)) == GF_OK)
                continue;
        }
        if (st != GF_OK) return broken(st, err);
        if (f.hdr.kind == GF_WIRE_K_PONG) {
            pinged = 0;
            continue;
        }
        if (f.hdr.kind == GF_RPC_HOST_FUNC_RUN && !(f.hdr.flags & GF_WIRE_F_REPLY)) {
            host_run(f.hdr.request_id);
            if (gf_r.broken) return gf_r.broken_rc;
            continue;
        }
        if (f.hdr.kind == GF_RPC_DTOH_DATA && !(f.hdr.flags & GF_WIRE_F_REPLY)) {
            CUresult dr = d2h_data(&f);
            if (dr != CUDA_SUCCESS) return dr;
            continue;
        }
        if (!(f.hdr.flags & GF_WIRE_F_REPLY) || f.hdr.request_id != rid) {
            snprintf(err, sizeof err, "unexpected frame kind 0x%x for request %llu",
                     (unsigned)f.hdr.kind, (unsigned long long)f.hdr.request_id);
            return broken(GF_EPROTO, err);
        }
        if (f.hdr.flags & GF_WIRE_F_ERROR) {
            gf_status es;
            char msg[256];
            if (gf_wire_error_decode(&f, &es, msg, sizeof msg) != GF_OK) return broken(GF_EPROTO, "bad error reply");
            gf_log(GF_LOG_DEBUG, GF_REMOTE_LOG, "worker: %s", msg);
            *rc = CUDA_ERROR_NOT_SUPPORTED;
            gf_wire_reader_init(rep, NULL, 0);
            return CUDA_SUCCESS;
        }
        gf_r.async_since_sync = 0;
        gf_wire_reader_init_frame(rep, &f);
        *rc = (CUresult)gf_wire_get_u32(rep);
        if (gf_wire_reader_status(rep, 0, err, sizeof err) != GF_OK) return broken(GF_EPROTO, err);
        if (!gf_r.fault && gf_cuda_process_fatal(*rc)) gf_r.fault = *rc;
        return CUDA_SUCCESS;
    }
}

/* Calls that wait for device work on the worker: before one is sent, the host functions out
 * run first (host_drain), so that the worker's thread is not the one waiting in the driver for
 * a stream held at a gate; it then sends each function's RUN after the data of the copies that
 * finished before it (the function may read their destination, as on a GPU). */
static int waits_for_work(uint32_t kind)
{
    switch (kind) {
    case GF_RPC_CTX_SYNC:
    case GF_RPC_STREAM_SYNC:
    case GF_RPC_EVENT_SYNC:
    case GF_RPC_MEMCPY_HTOD:
    case GF_RPC_MEMCPY_DTOH:
    case GF_RPC_MEM_FREE:
    case GF_RPC_CTX_DESTROY:
    case GF_RPC_PRIMARY_RESET:
    case GF_RPC_MODULE_UNLOAD: return 1;
    default: return 0;
    }
}

static CUresult host_drain(void)
{
    char err[512];
    gf_status st = gf_wire_flush(gf_r.c, gf_r.timeout_ms, err, sizeof err);
    if (st != GF_OK) return broken(st, err);
    int pinged = 0;
    while (nhf && !gf_r.broken) {
        gf_wire_frame f;
        st = gf_wire_recv(gf_r.c, &f, gf_r.timeout_ms, err, sizeof err);
        if (st == GF_ETIMEDOUT && !pinged) { /* a long kernel before the function */
            pinged = 1;
            if ((st = gf_wire_send(gf_r.c, GF_WIRE_K_PING, 0, 0, NULL, 0, gf_r.timeout_ms, err,
                                   sizeof err)) == GF_OK)
                continue;
        }
        if (st != GF_OK) return broken(st, err);
        if (f.hdr.kind == GF_WIRE_K_PONG) pinged = 0;
        else if (f.hdr.kind == GF_RPC_HOST_FUNC_RUN) host_run(f.hdr.request_id);
        else if (f.hdr.kind == GF_RPC_DTOH_DATA && !(f.hdr.flags & GF_WIRE_F_REPLY)) {
            CUresult r = d2h_data(&f);
            if (r != CUDA_SUCCESS) return r;
        } else {
            return broken(GF_EPROTO, "a frame came while host functions were out");
        }
    }
    return gf_r.broken ? gf_r.broken_rc : CUDA_SUCCESS;
}

CUresult gf_remote_sync(gf_rreq *q, CUresult *rc, gf_wire_reader *rep, uint64_t *rid_out)
{
    char err[512];
    if (gf_wire_writer_status(&q->w) != GF_OK) {
        *rc = CUDA_ERROR_INVALID_VALUE;
        return CUDA_SUCCESS;
    }
    if (nhf && waits_for_work(q->kind)) {
        CUresult d = host_drain();
        if (d != CUDA_SUCCESS) return d;
    }
    gf_mirror_flush(q->kind);
    gf_remote_sync_ctx();
    uint64_t rid = ++gf_r.next_rid;
    if (rid_out) *rid_out = rid;
    gf_status st = gf_wire_send(gf_r.c, q->kind, 0, rid, q->w.buf, q->w.len, gf_r.timeout_ms, err,
                                sizeof err);
    if (st != GF_OK) return broken(st, err);
    gf_mirror_sent(q->kind);
    CUresult t = wait_reply(rid, rc, rep);
    if (t == CUDA_SUCCESS) gf_mirror_answered(q->kind);
    return t;
}

CUresult gf_remote_sync_bulk(gf_rreq *q, const void *data, size_t n, int noreply, CUresult *rc,
                             gf_wire_reader *rep)
{
    char err[512];
    if (nhf && !noreply && waits_for_work(q->kind)) {
        CUresult d = host_drain();
        if (d != CUDA_SUCCESS) return d;
    }
    gf_mirror_flush(q->kind);
    gf_remote_sync_ctx();
    uint64_t rid = ++gf_r.next_rid;
    gf_status st = gf_wire_send(gf_r.c, q->kind, noreply ? GF_WIRE_F_NOREPLY : 0, rid, q->w.buf,
                                q->w.len, gf_r.timeout_ms, err, sizeof err);
    if (st == GF_OK)
        st = gf_wire_bulk_send(gf_r.c, rid, data, n, GF_RPC_CHUNK, gf_r.timeout_ms, err, sizeof err);
    if (st != GF_OK) return broken(st, err);
    gf_mirror_sent(q->kind);
    if (noreply) {
        *rc = CUDA_SUCCESS;
        return CUDA_SUCCESS;
    }
    CUresult t = wait_reply(rid, rc, rep);
    if (t == CUDA_SUCCESS) gf_mirror_answered(q->kind);
    return t;
}

/* The route of a D2H transfer: each chunk lands in its place in the destination. */
typedef struct d2h_route {
    uint64_t rid;
    uint8_t *dst;
    size_t n, next; /* bytes expected; offset of the next chunk */
} d2h_route;

static void *route_d2h(void *ctx, const gf_wire_hdr *h)
{
    d2h_route *rt = ctx;
    if (h->kind != GF_WIRE_K_BULK || h->request_id != rt->rid || h->payload_len > rt->n - rt->next)
        return NULL;
    void *p = rt->dst + rt->next;
    rt->next += (size_t)h->payload_len;
    return p;
}

CUresult gf_remote_recv_bulk(uint64_t rid, void *dst, size_t n)
{
    char err[512];
    gf_wire_bulk_rx rx;
    gf_wire_bulk_rx_init(&rx, rid, n);
    d2h_route rt = {rid, dst, n, 0};
    /* Straight from the socket into dst; chunk by chunk (a PONG may come between them). */
    gf_wire__conn_set_route(gf_r.c, route_d2h, &rt);
    CUresult r = CUDA_SUCCESS;
    while (!rx.done) {
        gf_wire_frame f;
        gf_status st = gf_wire_recv(gf_r.c, &f, gf_r.timeout_ms, err, sizeof err);
        if (st != GF_OK) {
            r = broken(st, err);
            break;
        }
        if (f.hdr.kind == GF_WIRE_K_PONG) continue;
        if (f.hdr.kind == GF_RPC_HOST_FUNC_RUN) {
            host_run(f.hdr.request_id);
            if (gf_r.broken) {
                r = gf_r.broken_rc;
                break;
            }
            continue;
        }
        uint64_t off;
        const uint8_t *d;
        size_t k;
        if (gf_wire_bulk_rx_chunk(&rx, &f, &off, &d, &k, err, sizeof err) != GF_OK) {
            r = broken(GF_EPROTO, err);
            break;
        }
        if (k && d != (uint8_t *)dst + off) memmove((uint8_t *)dst + off, d, k);
    }
    gf_wire__conn_set_route(gf_r.c, NULL, NULL);
    return r;
}

/* ---- connecting -------------------------------------------------------------------------------- */

static void read_token(char *out, size_t cap)
{
    const char *t = getenv("GPUFUSE_REMOTE_TOKEN");
    if (t && *t) {
        snprintf(out, cap, "%s", t);
        return;
    }
    const char *path = getenv("GPUFUSE_REMOTE_TOKEN_FILE");
    if (!path || !*path) return;
    FILE *f = fopen(path, "r");
    if (!f) {
        gf_log(GF_LOG_ERROR, GF_REMOTE_LOG, "GPUFUSE_REMOTE_TOKEN_FILE=%s: %s", path,
               strerror(errno));
        return;
    }
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = 0;
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ')) out[--n] = 0;
}

/* The vGPU the client asks for: GPUFUSE_REMOTE_VRAM, _COMPUTE_PERCENT or _TFLOPS, _GPU,
 * _ALLOCATION (gpufuse run --remote sets them from its flags). */
static int fill_hello(gf_wire_hello *h)
{
    char err[256];
    gf_wire_hello_init(h);
    read_token(h->token, sizeof h->token);
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    char exe[256] = "?";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) exe[n] = 0;
    const char *base = strrchr(exe, '/');
    snprintf(h->client_name, sizeof h->client_name, "%.60s@%.40s pid %d", base ? base + 1 : exe,
             host, (int)getpid());
    const char *v;
    if ((v = getenv("GPUFUSE_REMOTE_ALLOCATION")) && *v)
        snprintf(h->allocation_id, sizeof h->allocation_id, "%s", v);
    if ((v = getenv("GPUFUSE_REMOTE_VRAM")) && *v &&
        gf_parse_size("GPUFUSE_REMOTE_VRAM", v, &h->vram_bytes, err, sizeof err) != GF_OK) {
        gf_log(GF_LOG_ERROR, GF_REMOTE_LOG, "%s", err);
        return -1;
    }
    if ((v = getenv("GPUFUSE_REMOTE_COMPUTE_PERCENT")) && *v) {
        if (gf_parse_percent("GPUFUSE_REMOTE_COMPUTE_PERCENT", v, &h->compute, err, sizeof err) != GF_OK) {
            gf_log(GF_LOG_ERROR, GF_REMOTE_LOG, "%s", err);
            return -1;
        }
        h->compute_unit = GF_WIRE_COMPUTE_PERCENT;
    } else if ((v = getenv("GPUFUSE_REMOTE_TFLOPS")) && *v) {
        if (gf_parse_tflops("GPUFUSE_REMOTE_TFLOPS", v, &h->compute, err, sizeof err) != GF_OK) {
            gf_log(GF_LOG_ERROR, GF_REMOTE_LOG, "%s", err);
            return -1;
        }
        h->compute_unit = GF_WIRE_COMPUTE_TFLOPS;
    }
    if ((v = getenv("GPUFUSE_REMOTE_GPU")) && *v) snprintf(h->gpu, sizeof h->gpu, "%s", v);
    return 0;
}

static CUresult fetch_devices(void)
{
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_DEVICE_INFO);
    CUresult rc;
    gf_wire_reader rep;
    CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
    if (t != CUDA_SUCCESS) return t;
    if (rc != CUDA_SUCCESS) return rc;
    gf_r.driver_version = (int)gf_wire_get_u32(&rep);
    uint32_t n = gf_wire_get_u32(&rep);
    if (n > GF_REMOTE_MAX_DEVS) n = GF_REMOTE_MAX_DEVS;
    for (uint32_t i = 0; i < n; i++) {
        gf_rdev *d = &gf_r.dev[i];
        gf_wire_get_str(&rep, d->name, sizeof d->name);
        gf_wire_get_bytes_into(&rep, d->uuid, sizeof d->uuid);
        d->total = gf_wire_get_u64(&rep);
        gf_wire_get_str(&rep, d->pci, sizeof d->pci);
        gf_wire_get_bytes_into(&rep, d->attrs, sizeof d->attrs);
        /* What the remote device is from here (remote_mirror.c): the host sees managed memory
         * only between synchronizations, and registered memory has a device address of its
         * own; no device reads this process's pageable memory. */
        d->attrs[CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS - 1] = 0;
        d->attrs[CU_DEVICE_ATTRIBUTE_DIRECT_MANAGED_MEM_ACCESS_FROM_HOST - 1] = 0;
        d->attrs[CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS - 1] = 0;
        d->attrs[CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES - 1] = 0;
        d->attrs[CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM - 1] = 0;
    }
    /* Peer access between the session's devices (a worker before it sends none: no access). */
    memset(gf_r.peer, 0, sizeof gf_r.peer);
    if (gf_wire_reader_remaining(&rep)) {
        uint8_t peer[GF_REMOTE_MAX_DEVS * GF_REMOTE_MAX_DEVS];
        size_t np = gf_wire_get_bytes_into(&rep, peer, sizeof peer);
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < n; j++)
                if ((size_t)i * n + j < np) gf_r.peer[i][j] = peer[i * n + j];
    }
    char err[256];
    if (gf_wire_reader_status(&rep, 0, err, sizeof err) != GF_OK) return broken(GF_EPROTO, err);
    gf_r.ndev = (int)n;
    return CUDA_SUCCESS;
}

CUresult gf_remote_connect(void)
{
    pthread_mutex_lock(&gf_r.lk);
    if (gf_r.inited && gf_r.c) {
        CUresult r = gf_r.broken ? gf_r.broken_rc : CUDA_SUCCESS;
        pthread_mutex_unlock(&gf_r.lk);
        return r;
    }
    char err[1024];
    int ms = GF_WIRE_TIMEOUT_MS_DEFAULT;
    if (gf_wire_timeout_from_env(&ms, err, sizeof err) != GF_OK) {
        gf_log(GF_LOG_ERROR, GF_REMOTE_LOG, "%s; using %d ms", err, GF_WIRE_TIMEOUT_MS_DEFAULT);
        ms = GF_WIRE_TIMEOUT_MS_DEFAULT;
    }
    gf_r.timeout_ms = ms;
    const char *cap = getenv("GPUFUSE_REMOTE_COMPUTE_PERCENT");
    const char *tf = getenv("GPUFUSE_REMOTE_TFLOPS");
    gf_r.async_window = (cap && *cap) || (tf && *tf) ? 2 : 1024;
    gf_wire_opts o;
    gf_wire_opts_init(&o);
    o.timeout_ms = ms;
    o.tls_ca_file = getenv("GPUFUSE_REMOTE_CA");
    if (o.tls_ca_file && !*o.tls_ca_file) o.tls_ca_file = NULL;
    o.tls_server_name = getenv("GPUFUSE_REMOTE_SERVER_NAME");
    if (o.tls_server_name && !*o.tls_server_name) o.tls_server_name = NULL;
    const char *ins = getenv("GPUFUSE_REMOTE_INSECURE");
    o.tls_insecure_skip_verify = ins && !strcmp(ins, "1");
    gf_wire_hello h;
    gf_wire_welcome wl;
    CUresult r = CUDA_ERROR_NO_DEVICE;
    gf_status st;
    if (fill_hello(&h) != 0) goto out;
    if ((st = gf_wire_connect(gf_r.addr, &o, &gf_r.c, err, sizeof err)) != GF_OK) {
        gf_log(GF_LOG_ERROR, GF_REMOTE_LOG, "GPUFUSE_REMOTE=%s: %s", gf_r.addr, err);
        goto out;
    }
    if ((st = gf_wire_client_handshake(gf_r.c, &h, &wl, err, sizeof err)) != GF_OK) {
        gf_log(GF_LOG_ERROR, GF_REMOTE_LOG, "%s", err);
        gf_wire_close(gf_r.c);
        gf_r.c = NULL;
        goto out;
    }
    gf_r.broken = 0;
    gf_r.sent_ctx = 0;
    gf_r.pid = getpid();
    if ((r = fetch_devices()) != CUDA_SUCCESS) goto out;
    gf_r.inited = 1;
    gf_log(GF_LOG_DEBUG, GF_REMOTE_LOG, "session %llu on %s: %d GPU(s)",
           (unsigned long long)wl.session_id, gf_r.addr, gf_r.ndev);
out:
    pthread_mutex_unlock(&gf_r.lk);
    return r;
}

CUresult gf_remote_unsupported(const char *name)
{
    static const char *seen[256];
    static unsigned nseen;
    static pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lk);
    unsigned i = 0;
    while (i < nseen && seen[i] != name) i++;
    if (i == nseen && nseen < 256) {
        seen[nseen++] = name;
        gf_log(GF_LOG_WARN, GF_REMOTE_LOG,
               "%s is not supported by the remote backend (GPUFUSE_REMOTE=%s); returning "
               "CUDA_ERROR_NOT_SUPPORTED",
               name, gf_r.addr);
    }
    pthread_mutex_unlock(&lk);
    return CUDA_ERROR_NOT_SUPPORTED;
}

void gf_remote_init_process(void)
{
    snprintf(gf_r.addr, sizeof gf_r.addr, "%s", getenv("GPUFUSE_REMOTE"));
    gf_r.enabled = 1;
    pthread_atfork(NULL, NULL, after_fork_child);
    atexit(at_exit);
}
