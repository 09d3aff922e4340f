/* SPDX-License-Identifier: Apache-2.0 */
/* One worker session: its thread, which reads the client's calls from the connection itself,
 * runs them on the real driver in order and writes the answers, and what it owns (contexts,
 * memory ranges, modules, functions, streams, events, the vGPU's limiter region). Every handle
 * and device pointer a client sends is checked against these tables before the driver sees it;
 * anything else is refused with the error a driver gives. */
#include "worker.h"

#include <endian.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/types.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "gpufuse/gpu_models.h"
#include "wire/wire_internal.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#define D gf_wk_drv
#define TOMB ((gf_wk_obj *)(uintptr_t)1)
/* Handler results that are not CUDA results. */
#define WK_PROTO ((CUresult)-1)   /* malformed request: close the session */
#define WK_REPLIED ((CUresult)-2) /* the handler sent its reply itself */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- refusals are logged: a client probing for other tenants' objects shows in the log ------ */

static CUresult deny(gf_wk_session *s, CUresult r, const char *call, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static CUresult deny(gf_wk_session *s, CUresult r, const char *call, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gf_log(GF_LOG_WARN, GF_WK_LOG, "session %" PRIu64 " (%s, %s): refused %s: %s", s->id,
           s->peer, s->client_name, call, msg);
    return r;
}

/* ---- object table ---------------------------------------------------------------------------- */

static size_t obj_hash(uint64_t id)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20);
}

static gf_wk_obj *obj_get(gf_wk_session *s, uint64_t id, int kind)
{
    if (!s->obj_cap || !id) return NULL;
    size_t j = obj_hash(id) & (s->obj_cap - 1);
    for (;;) {
        gf_wk_obj *o = s->objs[j];
        if (!o) return NULL;
        if (o != TOMB && o->id == id) return o->kind == kind ? o : NULL;
        j = (j + 1) & (s->obj_cap - 1);
    }
}

static int obj_grow(gf_wk_session *s)
{
    size_t ncap = s->obj_cap ? s->obj_cap * 2 : 256;
    while (s->obj_live * 2 >= ncap) ncap *= 2;
    gf_wk_obj **n = calloc(ncap, sizeof *n);
    if (!n) return -1;
    for (size_t i = 0; i < s->obj_cap; i++) {
        gf_wk_obj *o = s->objs[i];
        if (!o || o == TOMB) continue;
        size_t j = obj_hash(o->id) & (ncap - 1);
        while (n[j]) j = (j + 1) & (ncap - 1);
        n[j] = o;
    }
    free(s->objs);
    s->objs = n;
    s->obj_cap = ncap;
    s->obj_used = s->obj_live;
    return 0;
}

static void obj_free(gf_wk_obj *o)
{
    free(o->poff);
    free(o->psize);
    free(o->image);
    free(o->name);
    free(o);
}

/* Takes ownership of o (calloc'ed). Fails (frees o) when the id is taken or memory is short. */
static CUresult obj_put(gf_wk_session *s, gf_wk_obj *o, const char *call)
{
    if (!o->id || GF_RPC_HANDLE_KIND(o->id) != (unsigned)o->kind) {
        uint64_t id = o->id;
        obj_free(o);
        return deny(s, CUDA_ERROR_INVALID_VALUE, call, "handle 0x%" PRIx64 " is not a fresh "
                    "handle of this kind", id);
    }
    if ((s->obj_used + 1) * 4 >= s->obj_cap * 3 && obj_grow(s) != 0) {
        obj_free(o);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    size_t j = obj_hash(o->id) & (s->obj_cap - 1);
    ssize_t tomb = -1;
    for (;;) {
        gf_wk_obj *e = s->objs[j];
        if (!e) break;
        if (e == TOMB) {
            if (tomb < 0) tomb = (ssize_t)j;
        } else if (e->id == o->id) {
            uint64_t id = o->id;
            obj_free(o);
            return deny(s, CUDA_ERROR_INVALID_VALUE, call, "handle 0x%" PRIx64 " already in use",
                        id);
        }
        j = (j + 1) & (s->obj_cap - 1);
    }
    if (tomb >= 0) j = (size_t)tomb;
    else s->obj_used++;
    s->objs[j] = o;
    s->obj_live++;
    return CUDA_SUCCESS;
}

static void obj_del(gf_wk_session *s, gf_wk_obj *o)
{
    size_t j = obj_hash(o->id) & (s->obj_cap - 1);
    while (s->objs[j] != o) j = (j + 1) & (s->obj_cap - 1);
    s->objs[j] = TOMB;
    s->obj_live--;
    obj_free(o);
}

static gf_wk_obj *obj_new(uint64_t id, int kind, void *real, uint64_t ctx)
{
    gf_wk_obj *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->id = id;
    o->kind = kind;
    o->real = real;
    o->ctx = ctx;
    return o;
}

/* ---- device memory ranges -------------------------------------------------------------------- */

/* Index of the first range with base > p. */
static size_t range_upper(gf_wk_session *s, uint64_t p)
{
    size_t lo = 0, hi = s->nranges;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->ranges[mid].base <= p) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The range holding [p, p + n), or NULL. n 0 is checked as 1 byte. VMM mappings that touch
 * (a tensor across two 2 MiB handles, as PyTorch's expandable segments make them) count as one
 * range: the first is returned. */
static gf_wk_range *range_find(gf_wk_session *s, uint64_t p, uint64_t n)
{
    size_t i = range_upper(s, p);
    if (!i) return NULL;
    gf_wk_range *r = &s->ranges[i - 1];
    if (!n) n = 1;
    if (p - r->base >= r->size) return NULL;
    if (n <= r->size - (p - r->base)) return r;
    if (r->kind != GF_WK_R_MAPPING) return NULL;
    uint64_t left = n - (r->size - (p - r->base)), end = r->base + r->size;
    for (size_t k = i; k < s->nranges; k++) {
        gf_wk_range *x = &s->ranges[k];
        if (x->kind != GF_WK_R_MAPPING || x->base != end) return NULL;
        if (left <= x->size) return r;
        left -= x->size;
        end += x->size;
    }
    return NULL;
}

static int range_add(gf_wk_session *s, gf_wk_range r)
{
    if (s->nranges == s->cap_ranges) {
        size_t nc = s->cap_ranges ? s->cap_ranges * 2 : 64;
        gf_wk_range *n = realloc(s->ranges, nc * sizeof *n);
        if (!n) return -1;
        s->ranges = n;
        s->cap_ranges = nc;
    }
    size_t i = range_upper(s, r.base);
    memmove(&s->ranges[i + 1], &s->ranges[i], (s->nranges - i) * sizeof r);
    s->ranges[i] = r;
    s->nranges++;
    return 0;
}

static void range_del(gf_wk_session *s, gf_wk_range *r)
{
    size_t i = (size_t)(r - s->ranges);
    memmove(&s->ranges[i], &s->ranges[i + 1], (s->nranges - i - 1) * sizeof *r);
    s->nranges--;
}

static CUresult check_range(gf_wk_session *s, uint64_t p, uint64_t n, const char *call)
{
    if (range_find(s, p, n)) return CUDA_SUCCESS;
    return deny(s, CUDA_ERROR_INVALID_VALUE, call,
                "device range 0x%" PRIx64 " + %" PRIu64 " is not inside an allocation of this "
                "session", p, n);
}

/* Gives a range's memory back to the driver (module globals go with their module). */
static void range_release(gf_wk_range *r)
{
    switch (r->kind) {
    case GF_WK_R_ALLOC:
    case GF_WK_R_ASYNC:
    case GF_WK_R_MANAGED: D.cuMemFree_v2((CUdeviceptr)r->base); break;
    case GF_WK_R_HOST:
        if (r->mapped) {
            D.cuMemHostUnregister(r->host);
            munmap((void *)((uintptr_t)r->host & ~(uintptr_t)4095), r->mapped);
        } else {
            D.cuMemFreeHost(r->host);
        }
        break;
    default: break;
    }
}

/* ---- the vGPU's limits ------------------------------------------------------------------------ */

static CUresult charge(gf_wk_session *s, int dev, uint64_t bytes, const char *call)
{
    if (!s->lim || !bytes) return CUDA_SUCCESS;
    if (gf_limiter_mem_reserve(s->lim, (unsigned)dev, bytes) == GF_OK) return CUDA_SUCCESS;
    uint64_t used, limit;
    gf_limiter_mem_info(s->lim, (unsigned)dev, &used, &limit);
    gf_log(GF_LOG_INFO, GF_WK_LOG,
           "session %" PRIu64 ": %s(%" PRIu64 " bytes): over the vGPU's VRAM limit of %" PRIu64
           " bytes (%" PRIu64 " in use); CUDA_ERROR_OUT_OF_MEMORY",
           s->id, call, bytes, limit, used);
    return CUDA_ERROR_OUT_OF_MEMORY;
}

static void uncharge(gf_wk_session *s, int dev, uint64_t bytes)
{
    if (s->lim && bytes) gf_limiter_mem_release(s->lim, (unsigned)dev, bytes);
}

/* ---- session set-up ---------------------------------------------------------------------------- */

static int uuid_of(int real, char *buf, size_t len)
{
    CUuuid u;
    if (!D.cuDeviceGetUuid_v2 || D.cuDeviceGetUuid_v2(&u, real) != CUDA_SUCCESS) return -1;
    const unsigned char *b = (const unsigned char *)u.bytes;
    snprintf(buf, len,
             "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

gf_status gf_wk_session_setup(gf_wk_session *s, const gf_wire_hello *h, char *reason, size_t cap)
{
    gf_wk_worker *w = s->w;
    snprintf(s->client_name, sizeof s->client_name, "%s", h->client_name);
    /* Devices: the worker's, or the one the client named. */
    s->ndev = 0;
    if (!h->gpu[0]) {
        for (int i = 0; i < w->nreal && i < GF_WK_MAX_DEVS; i++) s->devmap[s->ndev++] = w->real_devs[i];
    } else {
        /* One GPU, or a comma-separated list (a multi-GPU vGPU: slot i = the i-th). */
        for (const char *p = h->gpu; *p && s->ndev < GF_WK_MAX_DEVS; p += *p == ',') {
            char one[96];
            size_t len = strcspn(p, ",");
            snprintf(one, sizeof one, "%.*s", (int)len, p);
            p += len;
            char *end;
            long idx = strtol(one, &end, 10);
            int found = 0;
            for (int i = 0; i < w->nreal && !found; i++) {
                char u[96];
                if ((!*end && end != one && idx == i) ||
                    (uuid_of(w->real_devs[i], u, sizeof u) == 0 && !strcasecmp(u, one))) {
                    s->devmap[s->ndev++] = w->real_devs[i];
                    found = 1;
                }
            }
            if (!found) {
                snprintf(reason, cap, "no GPU \"%s\" on this worker (it serves %d); ask for an "
                                      "index below %d or one of its UUIDs", one, w->nreal, w->nreal);
                return GF_ENOSPC;
            }
        }
    }
    /* Limits: a vGPU region made by someone else (the agent), or a private one. */
    char err[512];
    if (h->allocation_id[0]) {
        if (gf_limiter_open(h->allocation_id, &s->lim, err, sizeof err) != GF_OK) {
            snprintf(reason, cap, "allocation \"%s\": %s", h->allocation_id, err);
            return GF_ENOENT;
        }
        /* The region's compute caps apply here too (kernels wait for its token bucket). */
        for (int i = 0; i < s->ndev && i < GF_LIMITER_MAX_DEVICES; i++)
            if (gf_limiter_compute_fraction(s->lim, (unsigned)i) > s->compute_frac)
                s->compute_frac = gf_limiter_compute_fraction(s->lim, (unsigned)i);
        return GF_OK;
    }
    gf_limiter_config cfg;
    memset(&cfg, 0, sizeof cfg);
    for (int i = 0; i < s->ndev; i++) {
        size_t total = 0;
        char name[256] = "";
        D.cuDeviceTotalMem_v2(&total, s->devmap[i]);
        D.cuDeviceGetName(name, sizeof name, s->devmap[i]);
        if (h->vram_bytes > total) {
            snprintf(reason, cap, "GPU %d (%s) has %zu bytes of VRAM, %" PRIu64 " asked",
                     s->devmap[i], name, total, h->vram_bytes);
            return GF_ENOSPC;
        }
        cfg.vram_limit[i] = h->vram_bytes;
        double frac = 0;
        if (h->compute_unit == GF_WIRE_COMPUTE_PERCENT) {
            frac = h->compute / 100.0;
        } else if (h->compute_unit == GF_WIRE_COMPUTE_TFLOPS) {
            const gf_gpu_model *m = gf_gpu_model_find(name);
            if (!m || m->fp16_tflops <= 0) {
                snprintf(reason, cap, "compute in TFLOPs: GPU %d (\"%s\") is not in the GPU "
                                      "model table; ask for a percent instead", s->devmap[i], name);
                return GF_ENOSPC;
            }
            frac = h->compute / m->fp16_tflops;
        }
        if (frac < 0 || frac != frac) frac = 0;
        cfg.compute_fraction[i] = frac >= 1 ? 0 : frac;
        if (cfg.compute_fraction[i] > 0) s->compute_frac = cfg.compute_fraction[i];
    }
    s->vram_limit = h->vram_bytes;
    if (!h->vram_bytes && s->compute_frac <= 0) return GF_OK;
    gf_wk_lim_name(s->lim_name, sizeof s->lim_name, (long)getpid(), s->id);
    if (gf_limiter_create(s->lim_name, &cfg, 1, err, sizeof err) != GF_OK ||
        gf_limiter_open(s->lim_name, &s->lim, err, sizeof err) != GF_OK) {
        gf_limiter_unlink(s->lim_name);
        s->lim_name[0] = 0;
        snprintf(reason, cap, "cannot create the vGPU's limits: %s", err);
        return GF_EIO;
    }
    return GF_OK;
}

/* ---- I/O from the session thread ------------------------------------------------------------- */

/* How long one blocking receive or send of the thread waits before it looks at `closing`. */
#define SLICE_MS 100

static void end_session(gf_wk_session *s, int level, const char *why)
{
    gf_wk_host_release(s);
    if (!atomic_exchange(&s->closing, 1))
        gf_log(level, GF_WK_LOG, "session %" PRIu64 " (%s, %s): %s; closing it", s->id, s->peer,
               s->client_name, why);
    gf_wk_wake(s->w);
}

static void fail_session(gf_wk_session *s, const char *why)
{
    end_session(s, GF_LOG_WARN, why);
}

/* The thread takes c back from the loop (if the loop had it, during a long call). */
static void io_enter(gf_wk_session *s)
{
    pthread_mutex_lock(&s->io);
    if (!s->thread_io) {
        s->thread_io = 1;
        if (s->registered_events >= 0) {
            epoll_ctl(s->w->epfd, EPOLL_CTL_DEL, gf_wire_conn_fd(s->c), NULL);
            s->registered_events = -1;
        }
    }
    pthread_mutex_unlock(&s->io);
}

/* The thread is about to make driver calls: the loop may use c if they take long. */
static void io_leave(gf_wk_session *s)
{
    atomic_store(&s->busy_since_ns, now_ns());
    pthread_mutex_lock(&s->io);
    s->thread_io = 0;
    pthread_mutex_unlock(&s->io);
}

/* Sends one frame, blocking (in slices, so that a worker stop is noticed) until the peer took
 * it; a peer that does not read stalls only this session. */
static void send_frame(gf_wk_session *s, uint32_t kind, uint16_t flags, uint64_t rid,
                       const void *p, size_t n)
{
    if (atomic_load(&s->closing)) return;
    char err[256];
    io_enter(s);
    gf_status st = gf_wire_send(s->c, kind, flags, rid, p, n, SLICE_MS, err, sizeof err);
    while (st == GF_ETIMEDOUT && !atomic_load(&s->closing))
        st = gf_wire_flush(s->c, SLICE_MS, err, sizeof err);
    if (st != GF_OK && st != GF_ETIMEDOUT)
        end_session(s, st == GF_ECLOSED ? GF_LOG_INFO : GF_LOG_WARN, err);
}

/* A frame the thread read that is not a call: answered here. 0 to go on, -1 to end. */
static int control_frame(gf_wk_session *s, const gf_wire_frame *f)
{
    uint32_t k = f->hdr.kind;
    if (k == GF_WIRE_K_PING) {
        send_frame(s, GF_WIRE_K_PONG, GF_WIRE_F_REPLY, f->hdr.request_id, f->payload,
                   f->hdr.payload_len);
        return 0;
    }
    if (k == GF_WIRE_K_GOODBYE || k == GF_WIRE_K_ERROR) {
        end_session(s, GF_LOG_INFO, k == GF_WIRE_K_GOODBYE ? "the client said goodbye"
                                                           : "the client reported an error");
        return -1;
    }
    if (f->hdr.flags & (GF_WIRE_F_NOREPLY | GF_WIRE_F_REPLY)) return 0;
    uint8_t buf[256];
    gf_wire_writer wr;
    gf_wire_writer_init_fixed(&wr, buf, sizeof buf);
    gf_wire_error_encode(&wr, GF_ENOTSUP, "this worker does not serve this kind of call");
    send_frame(s, k, GF_WIRE_F_REPLY | GF_WIRE_F_ERROR, f->hdr.request_id, wr.buf, wr.len);
    return 0;
}

static int is_call(uint32_t k)
{
    return k == GF_WIRE_K_BULK || (k >= GF_WIRE_K_CUDA_FIRST && k <= GF_WIRE_K_CUDA_LAST) ||
           (k >= GF_WIRE_K_NVML_FIRST && k <= GF_WIRE_K_NVML_LAST);
}

/* The next message of this session; NULL when it is closing. Messages the loop queued (during
 * a long call) come first; otherwise the thread reads the connection itself, so a request wakes
 * exactly the thread that runs it. The returned message may borrow the conn's buffer: use it
 * before the next call of next_msg. */
static void d2h_send(gf_wk_session *s, int release);

static gf_wk_msg *next_msg(gf_wk_session *s)
{
    for (;;) {
        if (atomic_load(&s->closing)) return NULL;
        if (atomic_load_explicit(&s->qcount, memory_order_acquire)) {
            gf_wk_msg *m = NULL;
            pthread_mutex_lock(&s->qlk);
            if (s->head) {
                m = s->head;
                s->head = m->next;
                if (!s->head) s->tail = NULL;
                atomic_fetch_sub(&s->qcount, 1);
                size_t left = atomic_fetch_sub(&s->qbytes, m->hdr.payload_len) - m->hdr.payload_len;
                if (atomic_load(&s->throttled) && left < (16u << 20)) gf_wk_wake(s->w);
            }
            pthread_mutex_unlock(&s->qlk);
            if (m) return m;
        }
        io_enter(s);
        if (atomic_load_explicit(&s->qcount, memory_order_acquire)) continue;
        if (atomic_load(&s->hf_ready)) {
            /* Copies to the host that finished before the gate go first: the host function
             * may read their destination, as it may on a GPU. */
            if (s->nd2h) d2h_send(s, 0);
            gf_wk_host_send_ready(s);
        }
        gf_wire_frame f;
        char err[256];
        /* While host functions are out, look for due ones often: their driver threads wait. */
        int out = 0;
        if (s->hf_inited) {
            pthread_mutex_lock(&s->hf_lk);
            out = s->gates != NULL;
            pthread_mutex_unlock(&s->hf_lk);
        }
        gf_status st = gf_wire_recv(s->c, &f, out ? 2 : SLICE_MS, err, sizeof err);
        if (st == GF_ETIMEDOUT) continue;
        if (st != GF_OK) {
            end_session(s, st == GF_ECLOSED ? GF_LOG_INFO : GF_LOG_WARN,
                        st == GF_ECLOSED ? "client disconnected" : err);
            return NULL;
        }
        if (f.hdr.kind == GF_RPC_HOST_FUNC_DONE) {
            gf_wk_host_done(s, &f);
            continue;
        }
        if (!is_call(f.hdr.kind)) {
            if (control_frame(s, &f) != 0) return NULL;
            continue;
        }
        s->direct.next = NULL;
        s->direct.hdr = f.hdr;
        s->direct.payload = (uint8_t *)f.payload;
        s->direct.borrowed = 1;
        return &s->direct;
    }
}

static void msg_free(gf_wk_msg *m)
{
    if (!m || m->borrowed) return;
    free(m->payload);
    free(m);
}

/* ---- pinned staging for bulk copies ------------------------------------------------------------ */

static void pin_wait(gf_wk_session *s, int i)
{
    if (s->pev_live[i]) D.cuEventSynchronize(s->pev[i]);
    s->pev_live[i] = 0;
}

/* Frees the staging buffers (their context must still exist). */
static void pin_free(gf_wk_session *s)
{
    if (!s->pin_ctx) return;
    for (int i = 0; i < 2; i++) {
        pin_wait(s, i);
        if (s->pev[i]) D.cuEventDestroy_v2(s->pev[i]);
        if (s->pin[i]) D.cuMemFreeHost(s->pin[i]);
        s->pev[i] = NULL;
        s->pin[i] = NULL;
    }
    s->pin_ctx = 0;
}

/* Pinned buffers and events in the current context; 0 when they are ready, -1 when this driver
 * or context cannot have them (the copy then goes through s->staging, synchronously). */
static int pin_ready(gf_wk_session *s)
{
    if (s->pin_ctx == s->cur_ctx && s->pin_ctx) return 0;
    if (s->pin_ctx) {
        gf_wk_obj *old = obj_get(s, s->pin_ctx, GF_RPC_H_CTX);
        if (old) {
            D.cuCtxSetCurrent((CUcontext)old->real);
            pin_free(s);
            gf_wk_obj *cur = obj_get(s, s->cur_ctx, GF_RPC_H_CTX);
            D.cuCtxSetCurrent(cur ? (CUcontext)cur->real : NULL);
        }
        s->pin_ctx = 0;
    }
    if (!s->cur_ctx || !D.cuMemHostAlloc || !D.cuEventCreate) return -1;
    for (int i = 0; i < 2; i++) {
        if (D.cuMemHostAlloc(&s->pin[i], GF_RPC_CHUNK, CU_MEMHOSTALLOC_PORTABLE) != CUDA_SUCCESS ||
            D.cuEventCreate(&s->pev[i], CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS) {
            s->pin_ctx = s->cur_ctx;
            pin_free(s);
            return -1;
        }
        s->pev_live[i] = 0;
    }
    s->pin_ctx = s->cur_ctx;
    return 0;
}

/* The decoder route of a host-to-device transfer: chunk payloads land in the staging buffer
 * whose previous device copy has finished. */
typedef struct h2d_route {
    gf_wk_session *s;
    uint64_t rid;
    int next;
} h2d_route;

static void *route_h2d(void *ctx, const gf_wire_hdr *h)
{
    h2d_route *rt = ctx;
    if (h->kind != GF_WIRE_K_BULK || h->request_id != rt->rid || h->payload_len > GF_RPC_CHUNK)
        return NULL;
    pin_wait(rt->s, rt->next);
    return rt->s->pin[rt->next];
}

/* ---- handlers ---------------------------------------------------------------------------------- */

typedef struct call {
    gf_wk_session *s;
    gf_wk_msg *m;
    gf_wire_reader r;
    gf_wire_writer out;
    const char *name;
} call;

#define READ_OK(c) (gf_wire_reader_status(&(c)->r, 0, NULL, 0) == GF_OK)

static int client_dev(gf_wk_session *s, int32_t dev)
{
    return dev >= 0 && dev < s->ndev ? s->devmap[dev] : -1;
}

static CUresult get_ctx(call *c, uint64_t id, gf_wk_obj **out)
{
    gf_wk_obj *o = obj_get(c->s, id, GF_RPC_H_CTX);
    if (!o) return deny(c->s, CUDA_ERROR_INVALID_CONTEXT, c->name,
                        "context 0x%" PRIx64 " is not one of this session's", id);
    *out = o;
    return CUDA_SUCCESS;
}

/* The current context's object (CTX_SET), or INVALID_CONTEXT. */
static CUresult cur_ctx(call *c, gf_wk_obj **out)
{
    if (!c->s->cur_ctx) return CUDA_ERROR_INVALID_CONTEXT;
    return get_ctx(c, c->s->cur_ctx, out);
}

static CUresult get_obj(call *c, uint64_t id, int kind, const char *what, gf_wk_obj **out)
{
    gf_wk_obj *o = obj_get(c->s, id, kind);
    if (!o) return deny(c->s, CUDA_ERROR_INVALID_HANDLE, c->name,
                        "%s 0x%" PRIx64 " is not one of this session's", what, id);
    *out = o;
    return CUDA_SUCCESS;
}

static CUresult get_stream(call *c, uint64_t h, CUstream *out)
{
    if (h == 0) *out = NULL;
    else if (h == GF_RPC_STREAM_LEGACY) *out = CU_STREAM_LEGACY;
    else if (h == GF_RPC_STREAM_PER_THREAD) *out = CU_STREAM_PER_THREAD;
    else {
        gf_wk_obj *o = NULL;
        CUresult r = get_obj(c, h, GF_RPC_H_STREAM, "stream", &o);
        if (r != CUDA_SUCCESS) return r;
        *out = (CUstream)o->real;
    }
    return CUDA_SUCCESS;
}

static CUresult op_device_info(call *c)
{
    gf_wk_session *s = c->s;
    int ver = 0;
    D.cuDriverGetVersion(&ver);
    gf_wire_put_u32(&c->out, (uint32_t)ver);
    gf_wire_put_u32(&c->out, (uint32_t)s->ndev);
    for (int i = 0; i < s->ndev; i++) {
        int real = s->devmap[i];
        char name[256] = "", pci[64] = "";
        CUuuid u;
        memset(&u, 0, sizeof u);
        size_t total = 0;
        D.cuDeviceGetName(name, sizeof name, real);
        if (D.cuDeviceGetUuid_v2) D.cuDeviceGetUuid_v2(&u, real);
        D.cuDeviceTotalMem_v2(&total, real);
        if (s->vram_limit && s->vram_limit < total) total = s->vram_limit;
        if (s->lim && !s->vram_limit) {
            uint64_t used, limit;
            gf_limiter_mem_info(s->lim, (unsigned)i, &used, &limit);
            if (limit && limit < total) total = limit;
        }
        if (D.cuDeviceGetPCIBusId) D.cuDeviceGetPCIBusId(pci, sizeof pci, real);
        int32_t attrs[GF_RPC_NATTR - 1];
        for (int a = 1; a < GF_RPC_NATTR; a++) {
            int v = 0;
            attrs[a - 1] = D.cuDeviceGetAttribute(&v, (CUdevice_attribute)a, real) == CUDA_SUCCESS
                               ? v
                               : GF_RPC_ATTR_NONE;
        }
        gf_wire_put_str(&c->out, name);
        gf_wire_put_bytes(&c->out, u.bytes, 16);
        gf_wire_put_u64(&c->out, total);
        gf_wire_put_str(&c->out, pci);
        gf_wire_put_bytes(&c->out, attrs, sizeof attrs);
    }
    /* Appended in 1.0 (older clients stop reading before it): which devices can access which. */
    uint8_t peer[GF_WK_MAX_DEVS * GF_WK_MAX_DEVS];
    for (int i = 0; i < s->ndev; i++)
        for (int j = 0; j < s->ndev; j++) {
            int can = 0;
            if (i != j && D.cuDeviceCanAccessPeer &&
                D.cuDeviceCanAccessPeer(&can, s->devmap[i], s->devmap[j]) != CUDA_SUCCESS)
                can = 0;
            peer[i * s->ndev + j] = (uint8_t)(can != 0);
        }
    gf_wire_put_bytes(&c->out, peer, (size_t)s->ndev * (size_t)s->ndev);
    return CUDA_SUCCESS;
}

static void set_current(gf_wk_session *s)
{
    gf_wk_obj *o = s->cur_ctx ? obj_get(s, s->cur_ctx, GF_RPC_H_CTX) : NULL;
    D.cuCtxSetCurrent(o ? (CUcontext)o->real : NULL);
}

static CUresult op_ctx_set(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    if (id && !obj_get(c->s, id, GF_RPC_H_CTX)) {
        c->s->cur_ctx = 0;
        set_current(c->s);
        return deny(c->s, CUDA_ERROR_INVALID_CONTEXT, c->name,
                    "context 0x%" PRIx64 " is not one of this session's", id);
    }
    c->s->cur_ctx = id;
    set_current(c->s);
    return CUDA_SUCCESS;
}

static CUresult make_ctx(call *c, uint64_t id, int32_t dev, unsigned flags, int primary)
{
    gf_wk_session *s = c->s;
    int real = client_dev(s, dev);
    if (real < 0) return CUDA_ERROR_INVALID_DEVICE;
    CUcontext ctx = NULL;
    CUresult r = D.cuCtxCreate_v2(&ctx, flags, real);
    if (r != CUDA_SUCCESS) {
        set_current(s);
        return r;
    }
    gf_wk_obj *o = obj_new(id, GF_RPC_H_CTX, ctx, 0);
    if (!o) r = CUDA_ERROR_OUT_OF_MEMORY;
    else {
        o->dev = dev;
        o->primary = primary;
        r = obj_put(s, o, c->name);
    }
    if (r != CUDA_SUCCESS) {
        D.cuCtxDestroy_v2(ctx);
        set_current(s);
        return r;
    }
    if (primary) {
        s->primary[dev] = id;
        set_current(s); /* retaining a primary context does not make it current */
    } else {
        s->cur_ctx = id; /* cuCtxCreate makes the new context current, as the client does */
    }
    return CUDA_SUCCESS;
}

static CUresult op_ctx_create(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r);
    uint32_t flags = gf_wire_get_u32(&c->r);
    int32_t dev = gf_wire_get_i32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    return make_ctx(c, id, dev, flags & 0xff, 0);
}

static CUresult op_primary_retain(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r);
    int32_t dev = gf_wire_get_i32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    if (client_dev(c->s, dev) < 0) return CUDA_ERROR_INVALID_DEVICE;
    if (c->s->primary[dev]) return c->s->primary[dev] == id ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    return make_ctx(c, id, dev, 0, 1);
}

static void d2h_detach_ctx(gf_wk_session *s, uint64_t ctx);
static void d2h_flush(gf_wk_session *s);

/* Unloads library o from the driver but keeps its handle (and its kernels' handles): the next
 * use loads it again from its image in the context then current (lib_ready). Its globals'
 * ranges go with it. */
static void lib_unmaterialize(gf_wk_session *s, gf_wk_obj *o)
{
    if (o->real) D.cuLibraryUnload((CUlibrary)o->real);
    o->real = NULL;
    o->ctx = 0;
    for (size_t i = 0; i < s->obj_cap; i++) {
        gf_wk_obj *f = s->objs[i];
        if (f && f != TOMB && f->kind == GF_RPC_H_FUNCTION && f->parent == o->id) {
            f->real = NULL;
            f->ctx = 0;
        }
    }
    for (size_t i = s->nranges; i-- > 0;)
        if (gf_wk_range_is_global(s->ranges[i].kind) && s->ranges[i].charged == o->id) range_del(s, &s->ranges[i]);
}

/* Frees everything made in context ctx (allocations, modules, streams, events) and, with
 * destroy, the context. */
static void drop_ctx(gf_wk_session *s, gf_wk_obj *ctx, int destroy)
{
    D.cuCtxSetCurrent((CUcontext)ctx->real);
    D.cuCtxSynchronize();
    for (size_t i = s->nranges; i-- > 0;) {
        gf_wk_range *r = &s->ranges[i];
        if (r->ctx != ctx->id || r->kind == GF_WK_R_MAPPING) continue;
        range_release(r);
        if (!gf_wk_range_is_global(r->kind)) uncharge(s, r->dev, r->charged);
        range_del(s, r);
    }
    /* Functions before their modules, modules and libraries, then streams and events. A
     * library and its kernels outlive the context (as CUlibrary/CUkernel handles do on a
     * driver): they are unloaded here and loaded again at their next use (lib_ready). */
    static const int order[] = {GF_RPC_H_FUNCTION, GF_RPC_H_MODULE, GF_RPC_H_LIBRARY,
                                GF_RPC_H_STREAM, GF_RPC_H_EVENT};
    for (unsigned k = 0; k < sizeof order / sizeof order[0]; k++) {
        for (size_t i = 0; i < s->obj_cap; i++) {
            gf_wk_obj *o = s->objs[i];
            if (!o || o == TOMB || o->kind != order[k] || o->ctx != ctx->id) continue;
            if (o->kind == GF_RPC_H_FUNCTION && o->name) {
                o->real = NULL; /* a library kernel: looked up again at its next use */
                o->ctx = 0;
                continue;
            }
            if (o->kind == GF_RPC_H_LIBRARY) {
                lib_unmaterialize(s, o);
                continue;
            }
            if (o->kind == GF_RPC_H_MODULE) D.cuModuleUnload((CUmodule)o->real);
            else if (o->kind == GF_RPC_H_STREAM) D.cuStreamDestroy_v2((CUstream)o->real);
            else if (o->kind == GF_RPC_H_EVENT) D.cuEventDestroy_v2((CUevent)o->real);
            obj_del(s, o);
        }
    }
    if (destroy) {
        if (s->pin_ctx == ctx->id) pin_free(s);
        d2h_detach_ctx(s, ctx->id);
        D.cuCtxSetCurrent(NULL);
        D.cuCtxDestroy_v2((CUcontext)ctx->real);
        if (ctx->primary) s->primary[ctx->dev] = 0;
        if (s->cur_ctx == ctx->id) s->cur_ctx = 0;
        obj_del(s, ctx);
    }
    set_current(s);
}

static CUresult op_ctx_destroy(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *o = NULL;
    CUresult r = get_ctx(c, id, &o);
    if (r != CUDA_SUCCESS) return r;
    drop_ctx(c->s, o, 1);
    return CUDA_SUCCESS;
}

static CUresult op_primary_reset(call *c)
{
    int32_t dev = gf_wire_get_i32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    if (client_dev(c->s, dev) < 0) return CUDA_ERROR_INVALID_DEVICE;
    gf_wk_obj *o = c->s->primary[dev] ? obj_get(c->s, c->s->primary[dev], GF_RPC_H_CTX) : NULL;
    if (o) {
        uint64_t id = o->id;
        int was_current = c->s->cur_ctx == id;
        drop_ctx(c->s, o, 1);
        /* Made again at once under the same handle, so that the client's handle stays good.
         * As on NVIDIA's driver the reset succeeds even when that fails (a kernel fault
         * poisoned this process: no context can be made): the primary stays unset, and the
         * client's next cuDevicePrimaryCtxRetain asks for it and gets the driver's error. */
        CUresult r = make_ctx(c, id, dev, 0, 1);
        if (r != CUDA_SUCCESS) {
            c->s->primary[dev] = 0;
            const char *n = "?";
            if (D.cuGetErrorName) D.cuGetErrorName(r, &n);
            gf_log(GF_LOG_INFO, GF_WK_LOG, "session %" PRIu64 ": the primary context of device "
                   "%d was reset and cannot be made again (%s); its next retain gets that",
                   c->s->id, (int)dev, n);
        }
        if (was_current) {
            /* Current again once it exists (make_ctx through PRIMARY_RETAIN: set_current). */
            c->s->cur_ctx = id;
            set_current(c->s);
        }
    }
    return CUDA_SUCCESS;
}

static CUresult op_ctx_sync(call *c)
{
    gf_wk_obj *o = NULL;
    CUresult r = cur_ctx(c, &o);
    if (r != CUDA_SUCCESS) return r;
    return D.cuCtxSynchronize();
}

static CUresult track(call *c, gf_wk_obj *ctx, uint64_t base, uint64_t size, uint64_t charged,
                      int kind)
{
    gf_wk_range rg = {base, size, ctx->id, charged, ctx->dev, kind, NULL, 0, 0};
    if (range_add(c->s, rg) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    return CUDA_SUCCESS;
}

static CUresult op_mem_alloc(call *c)
{
    uint64_t bytes = gf_wire_get_u64(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *ctx = NULL;
    CUresult r = cur_ctx(c, &ctx);
    if (r != CUDA_SUCCESS) return r;
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    if ((r = charge(c->s, ctx->dev, bytes, "cuMemAlloc")) != CUDA_SUCCESS) return r;
    CUdeviceptr p = 0;
    r = D.cuMemAlloc_v2(&p, bytes);
    if (r == CUDA_SUCCESS && (r = track(c, ctx, p, bytes, bytes, GF_WK_R_ALLOC)) != CUDA_SUCCESS)
        D.cuMemFree_v2(p);
    if (r != CUDA_SUCCESS) {
        uncharge(c->s, ctx->dev, bytes);
        return r;
    }
    gf_wire_put_handle(&c->out, p);
    return CUDA_SUCCESS;
}

static CUresult op_mem_alloc_pitch(call *c)
{
    uint64_t wdt = gf_wire_get_u64(&c->r), h = gf_wire_get_u64(&c->r);
    uint32_t esz = gf_wire_get_u32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *ctx = NULL;
    CUresult r = cur_ctx(c, &ctx);
    if (r != CUDA_SUCCESS) return r;
    if (!wdt || !h || h > (1ull << 40) || wdt > (1ull << 40)) return CUDA_ERROR_INVALID_VALUE;
    CUdeviceptr p = 0;
    size_t pitch = 0;
    r = D.cuMemAllocPitch_v2(&p, &pitch, wdt, h, esz);
    if (r != CUDA_SUCCESS) return r;
    uint64_t bytes = (uint64_t)pitch * h;
    if ((r = charge(c->s, ctx->dev, bytes, "cuMemAllocPitch")) != CUDA_SUCCESS) {
        D.cuMemFree_v2(p);
        return r;
    }
    if ((r = track(c, ctx, p, bytes, bytes, GF_WK_R_ALLOC)) != CUDA_SUCCESS) {
        uncharge(c->s, ctx->dev, bytes);
        D.cuMemFree_v2(p);
        return r;
    }
    gf_wire_put_handle(&c->out, p);
    gf_wire_put_u64(&c->out, pitch);
    return CUDA_SUCCESS;
}

static CUresult op_mem_free(call *c)
{
    uint64_t p = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    if (!p) return CUDA_SUCCESS;
    gf_wk_range *rg = range_find(c->s, p, 1);
    if (!rg || rg->base != p || gf_wk_range_is_global(rg->kind) || rg->kind == GF_WK_R_MAPPING)
        return deny(c->s, CUDA_ERROR_INVALID_VALUE, c->name,
                    "0x%" PRIx64 " is not the start of an allocation of this session", p);
    if (rg->kind == GF_WK_R_HOST) {
        range_release(rg);
        range_del(c->s, rg);
        return CUDA_SUCCESS;
    }
    CUresult r = D.cuMemFree_v2(p);
    if (r != CUDA_SUCCESS) return r;
    uncharge(c->s, rg->dev, rg->charged);
    range_del(c->s, rg);
    return CUDA_SUCCESS;
}

static CUresult op_mem_get_info(call *c)
{
    gf_wk_obj *ctx = NULL;
    CUresult r = cur_ctx(c, &ctx);
    if (r != CUDA_SUCCESS) return r;
    size_t f = 0, t = 0;
    if ((r = D.cuMemGetInfo_v2(&f, &t)) != CUDA_SUCCESS) return r;
    uint64_t fr = f, tot = t;
    if (c->s->lim) {
        uint64_t used, limit;
        gf_limiter_mem_info(c->s->lim, (unsigned)ctx->dev, &used, &limit);
        if (limit) {
            uint64_t lf = used >= limit ? 0 : limit - used;
            if (lf < fr) fr = lf;
            tot = limit;
        }
    }
    gf_wire_put_u64(&c->out, fr);
    gf_wire_put_u64(&c->out, tot);
    return CUDA_SUCCESS;
}

static CUresult op_mem_range(call *c)
{
    uint64_t p = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_range *rg = range_find(c->s, p, 1);
    if (!rg) return deny(c->s, CUDA_ERROR_NOT_FOUND, c->name,
                         "0x%" PRIx64 " is in no allocation of this session", p);
    gf_wire_put_handle(&c->out, rg->base);
    gf_wire_put_u64(&c->out, rg->size);
    return CUDA_SUCCESS;
}

static CUresult op_mem_alloc_async(call *c)
{
    uint64_t bytes = gf_wire_get_u64(&c->r), sh = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *ctx = NULL;
    CUstream st = NULL;
    CUresult r = cur_ctx(c, &ctx);
    if (r != CUDA_SUCCESS || (r = get_stream(c, sh, &st)) != CUDA_SUCCESS) return r;
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    if ((r = charge(c->s, ctx->dev, bytes, "cuMemAllocAsync")) != CUDA_SUCCESS) return r;
    CUdeviceptr p = 0;
    r = D.cuMemAllocAsync(&p, bytes, st);
    if (r == CUDA_SUCCESS && (r = track(c, ctx, p, bytes, bytes, GF_WK_R_ASYNC)) != CUDA_SUCCESS)
        D.cuMemFreeAsync(p, st);
    if (r != CUDA_SUCCESS) {
        uncharge(c->s, ctx->dev, bytes);
        return r;
    }
    gf_wire_put_handle(&c->out, p);
    return CUDA_SUCCESS;
}

static CUresult op_mem_free_async(call *c)
{
    uint64_t p = gf_wire_get_handle(&c->r), sh = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    CUstream st = NULL;
    CUresult r = get_stream(c, sh, &st);
    if (r != CUDA_SUCCESS) return r;
    gf_wk_range *rg = range_find(c->s, p, 1);
    if (!rg || rg->base != p || gf_wk_range_is_global(rg->kind) || rg->kind == GF_WK_R_HOST ||
        rg->kind == GF_WK_R_MAPPING)
        return deny(c->s, CUDA_ERROR_INVALID_VALUE, c->name,
                    "0x%" PRIx64 " is not the start of an allocation of this session", p);
    r = rg->kind == GF_WK_R_ASYNC ? D.cuMemFreeAsync(p, st) : D.cuMemFree_v2(p);
    if (r != CUDA_SUCCESS) return r;
    uncharge(c->s, rg->dev, rg->charged);
    range_del(c->s, rg);
    return CUDA_SUCCESS;
}

static void free_host_buf(void *p)
{
    free(p);
}

/* Host-to-device: from the request itself (inline) or from the BULK chunks that follow it.
 * Chunks are received straight into one of two pinned buffers and copied to the device
 * asynchronously from there, so chunk k's device copy runs while chunk k+1 arrives. */
static CUresult op_htod(call *c, int async)
{
    gf_wk_session *s = c->s;
    uint64_t dst = gf_wire_get_handle(&c->r), n = gf_wire_get_u64(&c->r), sh = 0;
    if (async) sh = gf_wire_get_handle(&c->r);
    uint32_t inl = gf_wire_get_u32(&c->r);
    const uint8_t *data = NULL;
    size_t dn = 0;
    if (inl) dn = gf_wire_get_bytes(&c->r, &data);
    if (!READ_OK(c) || (inl && dn != n)) return WK_PROTO;
    gf_wk_obj *ctx = NULL;
    CUstream st = NULL;
    CUresult r = cur_ctx(c, &ctx);
    if (r == CUDA_SUCCESS && async) r = get_stream(c, sh, &st);
    if (r == CUDA_SUCCESS && n) r = check_range(s, dst, n, c->name);
    if (inl) {
        if (r != CUDA_SUCCESS || !n) return r;
        if (!async) return D.cuMemcpyHtoD_v2(dst, data, n);
        /* The data must live until the copy ran: a host function on the stream frees it. */
        uint8_t *own = NULL;
        if (c->m->borrowed) {
            if (!(own = malloc(n))) return CUDA_ERROR_OUT_OF_MEMORY;
            memcpy(own, data, n);
            data = own;
        } else {
            own = c->m->payload;
        }
        r = D.cuMemcpyHtoDAsync_v2(dst, data, n, st);
        if (r == CUDA_SUCCESS && D.cuLaunchHostFunc(st, free_host_buf, own) == CUDA_SUCCESS) {
            if (!c->m->borrowed) c->m->payload = NULL;
            return r;
        }
        if (r == CUDA_SUCCESS) D.cuStreamSynchronize(st);
        if (c->m->borrowed) free(own);
        return r;
    }
    int piped = r == CUDA_SUCCESS && pin_ready(s) == 0;
    h2d_route rt = {s, c->m->hdr.request_id, 0};
    if (piped) {
        io_enter(s); /* the route belongs to the thread's reads only */
        gf_wire__conn_set_route(s->c, route_h2d, &rt);
    }
    else if (r == CUDA_SUCCESS && async) r = D.cuStreamSynchronize(st);
    gf_wire_bulk_rx rx;
    gf_wire_bulk_rx_init(&rx, c->m->hdr.request_id, n);
    while (!rx.done) {
        gf_wk_msg *b = next_msg(s);
        if (!b) break;
        gf_wire_frame f = {b->hdr, b->payload};
        uint64_t off;
        const uint8_t *d;
        size_t k;
        char err[256];
        if (gf_wire_bulk_rx_chunk(&rx, &f, &off, &d, &k, err, sizeof err) != GF_OK) {
            msg_free(b);
            fail_session(s, err);
            break;
        }
        if (r == CUDA_SUCCESS && k) {
            if (piped && d == s->pin[rt.next]) {
                r = D.cuMemcpyHtoDAsync_v2(dst + off, d, k, st);
                if (r == CUDA_SUCCESS && D.cuEventRecord(s->pev[rt.next], st) == CUDA_SUCCESS)
                    s->pev_live[rt.next] = 1;
                rt.next ^= 1;
            } else {
                if (piped) D.cuStreamSynchronize(st);
                r = D.cuMemcpyHtoD_v2(dst + off, d, k);
            }
        }
        msg_free(b);
    }
    if (piped) {
        gf_wire__conn_set_route(s->c, NULL, NULL);
        /* A synchronous copy is done when the call returns; an asynchronous one when the
         * stream reaches it (the buffers are waited for before their next use). */
        if (!async) {
            pin_wait(s, 0);
            pin_wait(s, 1);
        }
    }
    if (!rx.done) return WK_REPLIED;
    return r;
}

/* Device-to-host: the first chunk is copied before answering (so that a device error is the
 * answer), then each chunk is sent from one pinned buffer while the next is copied into the
 * other. */
static CUresult op_dtoh(call *c)
{
    gf_wk_session *s = c->s;
    uint64_t src = gf_wire_get_handle(&c->r), n = gf_wire_get_u64(&c->r);
    uint64_t sh = gf_wire_get_handle(&c->r);
    uint32_t async = gf_wire_get_u32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *ctx = NULL;
    CUstream st = NULL;
    CUresult r = cur_ctx(c, &ctx);
    if (r == CUDA_SUCCESS && async) r = get_stream(c, sh, &st);
    if (r == CUDA_SUCCESS && n) r = check_range(s, src, n, c->name);
    int piped = r == CUDA_SUCCESS && n > 0 && pin_ready(s) == 0;
    if (r == CUDA_SUCCESS && n > 0 && !piped && !s->staging && !(s->staging = malloc(GF_RPC_CHUNK)))
        r = CUDA_ERROR_OUT_OF_MEMORY;
    uint8_t *buf[2] = {s->staging, s->staging};
    if (piped) {
        buf[0] = s->pin[0];
        buf[1] = s->pin[1];
    } else if (r == CUDA_SUCCESS && async) {
        r = D.cuStreamSynchronize(st);
    }
    uint64_t first = n < GF_RPC_CHUNK ? n : GF_RPC_CHUNK;
    if (r == CUDA_SUCCESS && first) {
        if (piped) {
            pin_wait(s, 0);
            r = D.cuMemcpyDtoHAsync_v2(buf[0], src, first, st);
            if (r == CUDA_SUCCESS) r = D.cuStreamSynchronize(st);
        } else {
            r = D.cuMemcpyDtoH_v2(buf[0], src, first);
        }
    }
    if (r == CUDA_SUCCESS && s->sticky != CUDA_SUCCESS) {
        r = s->sticky;
        s->sticky = CUDA_SUCCESS;
    }
    d2h_flush(s);
    uint8_t rep[16];
    gf_wire_writer w;
    gf_wire_writer_init_fixed(&w, rep, sizeof rep);
    gf_wire_put_u32(&w, (uint32_t)r);
    send_frame(s, c->m->hdr.kind, GF_WIRE_F_REPLY, c->m->hdr.request_id, w.buf, w.len);
    if (r != CUDA_SUCCESS) return WK_REPLIED;
    uint64_t off = 0, k = first;
    int cur = 0;
    do {
        uint64_t noff = off + k, nk = n - noff < GF_RPC_CHUNK ? n - noff : GF_RPC_CHUNK;
        int queued = 0;
        if (nk && piped) {
            pin_wait(s, cur ^ 1);
            if (D.cuMemcpyDtoHAsync_v2(buf[cur ^ 1], src + noff, nk, st) == CUDA_SUCCESS &&
                D.cuEventRecord(s->pev[cur ^ 1], st) == CUDA_SUCCESS) {
                s->pev_live[cur ^ 1] = 1;
                queued = 1;
            }
        }
        send_frame(s, GF_WIRE_K_BULK, noff < n ? GF_WIRE_F_MORE : 0, c->m->hdr.request_id,
                   buf[cur], k);
        if (!nk) break;
        if (piped) {
            cur ^= 1;
            pin_wait(s, cur);
            if (!queued && D.cuMemcpyDtoH_v2(buf[cur], src + noff, nk) != CUDA_SUCCESS)
                memset(buf[cur], 0, nk); /* too late to fail the call: the data is zeros */
        } else if (D.cuMemcpyDtoH_v2(buf[cur], src + noff, nk) != CUDA_SUCCESS) {
            memset(buf[cur], 0, nk);
        }
        off = noff;
        k = nk;
    } while (!atomic_load(&s->closing));
    return WK_REPLIED;
}

/* ---- asynchronous device-to-host copies ----------------------------------------------------- */

/* Bytes of asynchronous D2H results a session may hold before further ones run synchronously. */
#define D2H_MAX_BYTES (256ull << 20)

struct gf_wk_d2h {
    uint64_t rid;
    uint64_t ctx;  /* the context it was made in */
    uint64_t n;
    CUresult st;   /* an error to report instead of data */
    uint8_t *buf;  /* n bytes: pinned (ev set) or malloc'ed */
    CUevent ev;    /* recorded after the copy; NULL once done or for a malloc'ed buffer */
    int sent;      /* its DTOH_DATA went out before a host function ran; only buf is left */
};

static void d2h_release(gf_wk_session *s, struct gf_wk_d2h *d)
{
    if (d->ev) {
        D.cuEventDestroy_v2(d->ev);
        D.cuMemFreeHost(d->buf);
    } else {
        free(d->buf);
    }
    s->d2h_bytes -= d->buf ? d->n : 0;
    d->buf = NULL;
    d->ev = NULL;
}

/* Queues the copy in stream order into a host buffer of its own; the data leaves with
 * d2h_flush once the copy is done. Errors are reported twice on purpose: in the DTOH_DATA (the
 * client forgets the copy) and as the session's asynchronous error. */
static CUresult op_dtoh_async(call *c)
{
    gf_wk_session *s = c->s;
    uint64_t src = gf_wire_get_handle(&c->r), n = gf_wire_get_u64(&c->r);
    uint64_t sh = gf_wire_get_handle(&c->r);
    if (!READ_OK(c) || !c->m->hdr.request_id) return WK_PROTO;
    if (s->nd2h == s->cap_d2h) {
        size_t nc = s->cap_d2h ? s->cap_d2h * 2 : 16;
        struct gf_wk_d2h *a = realloc(s->d2h, nc * sizeof *a);
        if (!a) return WK_PROTO;
        s->d2h = a;
        s->cap_d2h = nc;
    }
    struct gf_wk_d2h *d = &s->d2h[s->nd2h++];
    memset(d, 0, sizeof *d);
    d->rid = c->m->hdr.request_id;
    d->ctx = s->cur_ctx;
    d->n = n;
    gf_wk_obj *ctx = NULL;
    CUstream st = NULL;
    CUresult r = cur_ctx(c, &ctx);
    if (r == CUDA_SUCCESS) r = get_stream(c, sh, &st);
    if (r == CUDA_SUCCESS && n) r = check_range(s, src, n, c->name);
    if (r == CUDA_SUCCESS && n > D2H_MAX_BYTES) r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && n) {
        int sync = s->d2h_bytes + n > D2H_MAX_BYTES;
        void *p = NULL;
        if (!sync && D.cuMemHostAlloc(&p, n, 0) == CUDA_SUCCESS) {
            if (D.cuEventCreate(&d->ev, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS) {
                D.cuMemFreeHost(p);
                p = NULL;
                d->ev = NULL;
            }
        }
        if (p) {
            d->buf = p;
            s->d2h_bytes += n;
            r = D.cuMemcpyDtoHAsync_v2(p, src, n, st);
            if (r == CUDA_SUCCESS) r = D.cuEventRecord(d->ev, st);
        } else if (!(d->buf = malloc(n))) {
            r = CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            s->d2h_bytes += n;
            r = D.cuStreamSynchronize(st);
            if (r == CUDA_SUCCESS) r = D.cuMemcpyDtoH_v2(d->buf, src, n);
        }
        if (r != CUDA_SUCCESS) d2h_release(s, d);
    }
    d->st = r;
    return r;
}

/* Sends the data of every asynchronous D2H copy that is done (before the answer to a
 * synchronizing call, so that the client has it when the program may look). */
/* Sends the data of every finished copy; release: and frees their buffers (cuMemFreeHost may
 * wait for the device, so before a host function's RUN, while its gate holds a stream, the
 * buffers are kept for the next flush). */
static void d2h_send(gf_wk_session *s, int release)
{
    size_t k = 0;
    for (size_t i = 0; i < s->nd2h; i++) {
        struct gf_wk_d2h *d = &s->d2h[i];
        if (d->sent) {
            if (release) d2h_release(s, d);
            else s->d2h[k++] = *d;
            continue;
        }
        if (d->ev && d->st == CUDA_SUCCESS) {
            CUresult q = D.cuEventQuery(d->ev);
            if (q == CUDA_ERROR_NOT_READY) {
                s->d2h[k++] = *d;
                continue;
            }
            if (q != CUDA_SUCCESS) d->st = q;
        }
        uint8_t hdr[32];
        gf_wire_writer w;
        gf_wire_writer_init_fixed(&w, hdr, sizeof hdr);
        gf_wire_put_u32(&w, (uint32_t)d->st);
        gf_wire_put_u64(&w, d->n);
        send_frame(s, GF_RPC_DTOH_DATA, 0, d->rid, w.buf, w.len);
        if (d->st == CUDA_SUCCESS) {
            uint64_t off = 0;
            do {
                uint64_t k2 = d->n - off < GF_RPC_CHUNK ? d->n - off : GF_RPC_CHUNK;
                /* A zero-length copy has no buffer: no pointer arithmetic on NULL. */
                send_frame(s, GF_WIRE_K_BULK, off + k2 < d->n ? GF_WIRE_F_MORE : 0, d->rid,
                           d->buf ? d->buf + off : NULL, k2);
                off += k2;
            } while (off < d->n && !atomic_load(&s->closing));
        }
        if (release) {
            d2h_release(s, d);
        } else {
            d->sent = 1;
            s->d2h[k++] = *d;
        }
    }
    s->nd2h = k;
}

static void d2h_flush(gf_wk_session *s)
{
    d2h_send(s, 1);
}

/* Before context ctx goes: its copies are done (it was synchronized); their data moves out of
 * its pinned memory, to be sent at the next synchronizing answer. */
static void d2h_detach_ctx(gf_wk_session *s, uint64_t ctx)
{
    for (size_t i = 0; i < s->nd2h; i++) {
        struct gf_wk_d2h *d = &s->d2h[i];
        if (d->ctx != ctx || !d->ev) continue;
        uint8_t *copy = malloc(d->n ? d->n : 1);
        if (copy) memcpy(copy, d->buf, d->n);
        else d->st = CUDA_ERROR_OUT_OF_MEMORY;
        uint64_t n = d->n;
        d2h_release(s, d);
        d->buf = copy;
        if (copy) s->d2h_bytes += n;
    }
}

static CUresult op_dtod(call *c)
{
    uint64_t dst = gf_wire_get_handle(&c->r), src = gf_wire_get_handle(&c->r);
    uint64_t n = gf_wire_get_u64(&c->r), sh = gf_wire_get_handle(&c->r);
    uint32_t async = gf_wire_get_u32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *ctx = NULL;
    CUstream st = NULL;
    CUresult r = cur_ctx(c, &ctx);
    if (r == CUDA_SUCCESS) r = get_stream(c, sh, &st);
    if (r == CUDA_SUCCESS && n) r = check_range(c->s, dst, n, c->name);
    if (r == CUDA_SUCCESS && n) r = check_range(c->s, src, n, c->name);
    if (r != CUDA_SUCCESS || !n) return r;
    return async ? D.cuMemcpyDtoDAsync_v2(dst, src, n, st) : D.cuMemcpyDtoD_v2(dst, src, n);
}

static CUresult op_memset(call *c)
{
    uint64_t dst = gf_wire_get_handle(&c->r);
    uint32_t val = gf_wire_get_u32(&c->r), esz = gf_wire_get_u32(&c->r);
    uint64_t count = gf_wire_get_u64(&c->r), sh = gf_wire_get_handle(&c->r);
    uint32_t async = gf_wire_get_u32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    if (esz != 1 && esz != 2 && esz != 4) return WK_PROTO;
    gf_wk_obj *ctx = NULL;
    CUstream st = NULL;
    CUresult r = cur_ctx(c, &ctx);
    if (r == CUDA_SUCCESS) r = get_stream(c, sh, &st);
    if (r == CUDA_SUCCESS && count) {
        if (count > UINT64_MAX / esz) return CUDA_ERROR_INVALID_VALUE;
        r = check_range(c->s, dst, count * esz, c->name);
    }
    if (r != CUDA_SUCCESS || !count) return r;
    if (esz == 1)
        return async ? D.cuMemsetD8Async(dst, (unsigned char)val, count, st)
                     : D.cuMemsetD8_v2(dst, (unsigned char)val, count);
    if (esz == 2)
        return async ? D.cuMemsetD16Async(dst, (unsigned short)val, count, st)
                     : D.cuMemsetD16_v2(dst, (unsigned short)val, count);
    return async ? D.cuMemsetD32Async(dst, val, count, st) : D.cuMemsetD32_v2(dst, val, count);
}

static CUresult op_module_load(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r);
    uint32_t lib = gf_wire_get_u32(&c->r);
    const uint8_t *img;
    size_t n = gf_wire_get_bytes(&c->r, &img);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_session *s = c->s;
    s->jit_info[0] = s->jit_err[0] = 0;
    s->jit_info_n = s->jit_err_n = 0;
    gf_wk_obj *ctx = NULL;
    CUresult r = cur_ctx(c, &ctx);
    if (r != CUDA_SUCCESS && !lib) return r;
    if (!n) return CUDA_ERROR_INVALID_IMAGE;
    /* The driver reads PTX up to its NUL and a fatbin by its header: give it an aligned copy
     * that is NUL-terminated, so that a hostile image cannot make it read past the request. */
    uint8_t *copy = malloc(n + 16);
    if (!copy) return CUDA_ERROR_OUT_OF_MEMORY;
    memcpy(copy, img, n);
    memset(copy + n, 0, 16);
    void *h = NULL;
    /* The JIT's logs go to the session, for a JIT_LOG that asks for them. */
    CUjit_option jo[4] = {CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES,
                          CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *jv[4] = {s->jit_info, (void *)(uintptr_t)(GF_WK_JIT_LOG - 1), s->jit_err,
                   (void *)(uintptr_t)(GF_WK_JIT_LOG - 1)};
    if (lib) r = D.cuLibraryLoadData((CUlibrary *)&h, copy, jo, jv, 4, NULL, NULL, 0);
    else if (D.cuModuleLoadDataEx) r = D.cuModuleLoadDataEx((CUmodule *)&h, copy, 4, jo, jv);
    else r = D.cuModuleLoadData((CUmodule *)&h, copy);
    s->jit_info[GF_WK_JIT_LOG - 1] = s->jit_err[GF_WK_JIT_LOG - 1] = 0;
    s->jit_info_n = (uintptr_t)jv[1];
    s->jit_err_n = (uintptr_t)jv[3];
    if (r != CUDA_SUCCESS || !lib) {
        free(copy);
        copy = NULL;
    }
    if (r != CUDA_SUCCESS) return r;
    gf_wk_obj *o = obj_new(id, lib ? GF_RPC_H_LIBRARY : GF_RPC_H_MODULE, h,
                           c->s->cur_ctx);
    if (o && lib) { /* kept: the library is loaded again after its context went (lib_ready) */
        o->image = copy;
        o->image_len = n + 16;
    } else {
        free(copy);
    }
    r = o ? obj_put(c->s, o, c->name) : CUDA_ERROR_OUT_OF_MEMORY;
    if (r != CUDA_SUCCESS) {
        if (lib) D.cuLibraryUnload((CUlibrary)h);
        else D.cuModuleUnload((CUmodule)h);
    }
    return r;
}

/* The JIT's logs of the session's last MODULE_LOAD. */
static CUresult op_jit_log(call *c)
{
    gf_wk_session *s = c->s;
    gf_wire_put_bytes(&c->out, s->jit_info, strlen(s->jit_info));
    gf_wire_put_u64(&c->out, s->jit_info_n);
    gf_wire_put_bytes(&c->out, s->jit_err, strlen(s->jit_err));
    gf_wire_put_u64(&c->out, s->jit_err_n);
    return CUDA_SUCCESS;
}

static CUresult op_module_unload(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r);
    uint32_t lib = gf_wire_get_u32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *o = NULL;
    CUresult r = get_obj(c, id, lib ? GF_RPC_H_LIBRARY : GF_RPC_H_MODULE, "module", &o);
    if (r != CUDA_SUCCESS) return r;
    if (!lib) r = D.cuModuleUnload((CUmodule)o->real);
    else if (o->real) r = D.cuLibraryUnload((CUlibrary)o->real);
    if (r != CUDA_SUCCESS) return r;
    for (size_t i = 0; i < c->s->obj_cap; i++) {
        gf_wk_obj *f = c->s->objs[i];
        if (f && f != TOMB && f->kind == GF_RPC_H_FUNCTION && f->parent == id) obj_del(c->s, f);
    }
    for (size_t i = c->s->nranges; i-- > 0;) /* its globals */
        if (gf_wk_range_is_global(c->s->ranges[i].kind) && c->s->ranges[i].charged == id) range_del(c->s, &c->s->ranges[i]);
    obj_del(c->s, o);
    return CUDA_SUCCESS;
}

/* Library m loaded in the driver: again, in the current context, after the context it was
 * loaded in went (lib_unmaterialize). */
static CUresult lib_ready(call *c, gf_wk_obj *m)
{
    if (m->kind != GF_RPC_H_LIBRARY || m->real) return CUDA_SUCCESS;
    if (!m->image) return CUDA_ERROR_INVALID_HANDLE;
    void *h = NULL;
    CUresult r = D.cuLibraryLoadData((CUlibrary *)&h, m->image, NULL, NULL, 0, NULL, NULL, 0);
    if (r != CUDA_SUCCESS) return r;
    m->real = h;
    m->ctx = c->s->cur_ctx;
    return CUDA_SUCCESS;
}

/* Kernel k of library m as the function to hand the driver: the context's CUfunction when a
 * context is current (*fctx = it), else the CUkernel itself (*fctx = 0). */
static CUresult lib_kernel(call *c, gf_wk_obj *m, const char *name, CUfunction *out,
                           uint64_t *fctx)
{
    CUresult r = lib_ready(c, m);
    if (r != CUDA_SUCCESS) return r;
    CUkernel k = NULL;
    r = D.cuLibraryGetKernel(&k, (CUlibrary)m->real, name);
    if (r != CUDA_SUCCESS) return r;
    *out = (CUfunction)k; /* the driver takes a CUkernel where a CUfunction goes */
    *fctx = 0;
    CUfunction kf = NULL;
    if (c->s->cur_ctx && D.cuKernelGetFunction && D.cuKernelGetFunction(&kf, k) == CUDA_SUCCESS &&
        kf) {
        *out = kf;
        *fctx = c->s->cur_ctx;
    }
    return CUDA_SUCCESS;
}

/* Function f usable: a library kernel whose library or context went is looked up again. */
static CUresult func_ready(call *c, gf_wk_obj *f)
{
    if (f->real) return CUDA_SUCCESS;
    gf_wk_obj *m = f->name ? obj_get(c->s, f->parent, GF_RPC_H_LIBRARY) : NULL;
    if (!m) return CUDA_ERROR_INVALID_HANDLE;
    CUfunction fn = NULL;
    uint64_t fctx = 0;
    CUresult r = lib_kernel(c, m, f->name, &fn, &fctx);
    if (r != CUDA_SUCCESS) return r;
    f->real = fn;
    f->ctx = fctx;
    for (int a = 0; a < 32; a++) /* what the program set on the kernel holds on */
        if (f->attr_set & (1u << a))
            D.cuFuncSetAttribute(fn, (CUfunction_attribute)a, f->attr_val[a]);
    return CUDA_SUCCESS;
}

static CUresult op_get_function(call *c)
{
    uint64_t mid = gf_wire_get_handle(&c->r);
    uint32_t lib = gf_wire_get_u32(&c->r);
    uint64_t fid = gf_wire_get_handle(&c->r);
    char name[1024];
    gf_wire_get_str(&c->r, name, sizeof name);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *m = NULL;
    CUresult r = get_obj(c, mid, lib ? GF_RPC_H_LIBRARY : GF_RPC_H_MODULE, "module", &m);
    if (r != CUDA_SUCCESS) return r;
    CUfunction f = NULL;
    uint64_t fctx = m->ctx;
    if (lib) r = lib_kernel(c, m, name, &f, &fctx);
    else r = D.cuModuleGetFunction(&f, (CUmodule)m->real, name);
    if (r != CUDA_SUCCESS) return r;
    gf_wk_obj *o = obj_new(fid, GF_RPC_H_FUNCTION, f, fctx);
    if (!o) return CUDA_ERROR_OUT_OF_MEMORY;
    o->parent = mid;
    if (lib && !(o->name = strdup(name))) {
        obj_free(o);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    uint32_t off[GF_RPC_MAX_PARAMS], sz[GF_RPC_MAX_PARAMS];
    unsigned np = 0;
    uint32_t total = 0;
    while (np < GF_RPC_MAX_PARAMS) {
        size_t po = 0, ps = 0;
        if (!D.cuFuncGetParamInfo || D.cuFuncGetParamInfo(f, np, &po, &ps) != CUDA_SUCCESS) break;
        if (po + ps > GF_RPC_MAX_PARAM_BYTES) break;
        off[np] = (uint32_t)po;
        sz[np] = (uint32_t)ps;
        if (po + ps > total) total = (uint32_t)(po + ps);
        np++;
    }
    o->nparams = np;
    o->pbytes = total;
    o->poff = malloc((np ? np : 1) * sizeof *o->poff);
    o->psize = malloc((np ? np : 1) * sizeof *o->psize);
    if (!o->poff || !o->psize) {
        obj_free(o);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    memcpy(o->poff, off, np * sizeof *off);
    memcpy(o->psize, sz, np * sizeof *sz);
    if ((r = obj_put(c->s, o, c->name)) != CUDA_SUCCESS) return r;
    gf_wire_put_u32(&c->out, np);
    for (unsigned i = 0; i < np; i++) {
        gf_wire_put_u64(&c->out, off[i]);
        gf_wire_put_u64(&c->out, sz[i]);
    }
    return CUDA_SUCCESS;
}

static CUresult op_get_global(call *c)
{
    uint64_t mid = gf_wire_get_handle(&c->r);
    uint32_t lib = gf_wire_get_u32(&c->r);
    char name[1024];
    gf_wire_get_str(&c->r, name, sizeof name);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *m = NULL;
    CUresult r = get_obj(c, mid, lib ? GF_RPC_H_LIBRARY : GF_RPC_H_MODULE, "module", &m);
    if (r != CUDA_SUCCESS || (r = lib_ready(c, m)) != CUDA_SUCCESS) return r;
    CUdeviceptr p = 0;
    size_t n = 0;
    r = lib ? D.cuLibraryGetGlobal(&p, &n, (CUlibrary)m->real, name)
            : D.cuModuleGetGlobal_v2(&p, &n, (CUmodule)m->real, name);
    if (r != CUDA_SUCCESS) return r;
    if (n && !range_find(c->s, p, n)) {
        gf_wk_obj *ctx = obj_get(c->s, c->s->cur_ctx, GF_RPC_H_CTX);
        gf_wk_range rg = {p, n, ctx ? ctx->id : 0, mid, ctx ? ctx->dev : 0, GF_WK_R_GLOBAL,
                          NULL, 0, 0};
        if (range_add(c->s, rg) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    }
    gf_wire_put_handle(&c->out, p);
    gf_wire_put_u64(&c->out, n);
    return CUDA_SUCCESS;
}

/* ---- mirrors: managed and mapped host memory ---------------------------------------------- */

/* Pinned host memory for a client's mirror: at the client's own address when it is free here
 * too (the device address is then the client's host address, as on a local GPU with unified
 * addressing), else wherever cuMemHostAlloc puts it. */
static CUresult host_mirror(uint64_t bytes, uint64_t hint, gf_wk_range *rg)
{
    uint64_t page = hint & ~4095ull, len = ((hint + bytes + 4095) & ~4095ull) - page;
    void *m = hint ? mmap((void *)(uintptr_t)page, len, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
                   : MAP_FAILED;
    if (m != MAP_FAILED && (uintptr_t)m != page) { /* a kernel without MAP_FIXED_NOREPLACE */
        munmap(m, len);
        m = MAP_FAILED;
    }
    CUdeviceptr dp = 0;
    if (m != MAP_FAILED) {
        void *h = (void *)(uintptr_t)hint;
        if (D.cuMemHostRegister_v2(h, bytes, CU_MEMHOSTREGISTER_PORTABLE |
                                                 CU_MEMHOSTREGISTER_DEVICEMAP) == CUDA_SUCCESS &&
            D.cuMemHostGetDevicePointer_v2(&dp, h, 0) == CUDA_SUCCESS) {
            rg->host = h;
            rg->mapped = len;
            rg->base = dp;
            return CUDA_SUCCESS;
        }
        D.cuMemHostUnregister(h);
        munmap(m, len);
    }
    void *h = NULL;
    CUresult r = D.cuMemHostAlloc(&h, bytes, CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP);
    if (r != CUDA_SUCCESS) return r;
    if ((r = D.cuMemHostGetDevicePointer_v2(&dp, h, 0)) != CUDA_SUCCESS) {
        D.cuMemFreeHost(h);
        return r;
    }
    rg->host = h;
    rg->mapped = 0;
    rg->base = dp;
    return CUDA_SUCCESS;
}

static CUresult op_mirror_alloc(call *c)
{
    uint32_t kind = gf_wire_get_u32(&c->r);
    uint64_t bytes = gf_wire_get_u64(&c->r);
    uint32_t flags = gf_wire_get_u32(&c->r);
    uint64_t hint = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *ctx = NULL;
    CUresult r = cur_ctx(c, &ctx);
    if (r != CUDA_SUCCESS) return r;
    if (!bytes || bytes > (1ull << 46)) return CUDA_ERROR_INVALID_VALUE;
    gf_wk_range rg = {0, bytes, ctx->id, 0, ctx->dev, 0, NULL, 0, 0};
    if (kind == GF_RPC_MIRROR_MANAGED) {
        if ((r = charge(c->s, ctx->dev, bytes, "cuMemAllocManaged")) != CUDA_SUCCESS) return r;
        CUdeviceptr p = 0;
        if ((r = D.cuMemAllocManaged(&p, bytes, flags)) != CUDA_SUCCESS) {
            uncharge(c->s, ctx->dev, bytes);
            return r;
        }
        rg.base = p;
        rg.charged = bytes;
        rg.kind = GF_WK_R_MANAGED;
    } else if (kind == GF_RPC_MIRROR_HOST) {
        if (flags) return CUDA_ERROR_INVALID_VALUE;
        if ((r = host_mirror(bytes, hint, &rg)) != CUDA_SUCCESS) return r;
        rg.kind = GF_WK_R_HOST;
    } else {
        return deny(c->s, CUDA_ERROR_INVALID_VALUE, c->name, "unknown mirror kind %u", kind);
    }
    if (range_add(c->s, rg) != 0) {
        range_release(&rg);
        uncharge(c->s, rg.dev, rg.charged);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    gf_wire_put_handle(&c->out, rg.base);
    return CUDA_SUCCESS;
}

static CUresult op_get_managed(call *c)
{
    uint64_t mid = gf_wire_get_handle(&c->r);
    char name[1024];
    gf_wire_get_str(&c->r, name, sizeof name);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *m = NULL;
    CUresult r = get_obj(c, mid, GF_RPC_H_LIBRARY, "library", &m);
    if (r != CUDA_SUCCESS || (r = lib_ready(c, m)) != CUDA_SUCCESS) return r;
    CUdeviceptr p = 0;
    size_t n = 0;
    if ((r = D.cuLibraryGetManaged(&p, &n, (CUlibrary)m->real, name)) != CUDA_SUCCESS) return r;
    if (n && !range_find(c->s, p, n)) {
        gf_wk_obj *ctx = obj_get(c->s, c->s->cur_ctx, GF_RPC_H_CTX);
        gf_wk_range rg = {p, n, ctx ? ctx->id : 0, mid, ctx ? ctx->dev : 0,
                          GF_WK_R_MANAGED_GLOBAL, NULL, 0, 0};
        if (range_add(c->s, rg) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    }
    gf_wire_put_handle(&c->out, p);
    gf_wire_put_u64(&c->out, n);
    return CUDA_SUCCESS;
}

/* The mirror range holding [p, p + n): the only memory MIRROR_READ/WRITE reach. */
static CUresult mirror_range(call *c, uint64_t p, uint64_t n, gf_wk_range **out)
{
    gf_wk_range *rg = n && n <= GF_RPC_MIRROR_CHUNK ? range_find(c->s, p, n) : NULL;
    if (!rg || (rg->kind != GF_WK_R_MANAGED && rg->kind != GF_WK_R_MANAGED_GLOBAL &&
                rg->kind != GF_WK_R_HOST))
        return deny(c->s, CUDA_ERROR_INVALID_VALUE, c->name,
                    "0x%" PRIx64 " + %" PRIu64 " is not inside managed or mapped host memory of "
                    "this session", p, n);
    *out = rg;
    return CUDA_SUCCESS;
}

/* Host memory is copied as host memory; managed memory with a synchronous copy in the
 * session's current context, so the driver migrates what it must. */
static CUresult op_mirror_write(call *c)
{
    uint64_t p = gf_wire_get_handle(&c->r);
    const uint8_t *data;
    size_t n = gf_wire_get_bytes(&c->r, &data);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_range *rg;
    CUresult r = mirror_range(c, p, n, &rg);
    if (r != CUDA_SUCCESS) return r;
    if (rg->kind == GF_WK_R_HOST) {
        memcpy((uint8_t *)rg->host + (p - rg->base), data, n);
        return CUDA_SUCCESS;
    }
    gf_wk_obj *ctx = NULL;
    if ((r = cur_ctx(c, &ctx)) != CUDA_SUCCESS) return r;
    return D.cuMemcpy(p, (CUdeviceptr)(uintptr_t)data, n);
}

static CUresult op_mirror_read(call *c)
{
    uint64_t p = gf_wire_get_handle(&c->r), n = gf_wire_get_u64(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_range *rg;
    CUresult r = mirror_range(c, p, n, &rg);
    if (r != CUDA_SUCCESS) return r;
    if (rg->kind == GF_WK_R_HOST) {
        gf_wire_put_bytes(&c->out, (const uint8_t *)rg->host + (p - rg->base), n);
        return CUDA_SUCCESS;
    }
    gf_wk_obj *ctx = NULL;
    if ((r = cur_ctx(c, &ctx)) != CUDA_SUCCESS) return r;
    if (!c->s->staging && !(c->s->staging = malloc(GF_RPC_CHUNK))) return CUDA_ERROR_OUT_OF_MEMORY;
    if ((r = D.cuMemcpy((CUdeviceptr)(uintptr_t)c->s->staging, p, n)) != CUDA_SUCCESS) return r;
    gf_wire_put_bytes(&c->out, c->s->staging, n);
    return CUDA_SUCCESS;
}

static CUresult op_func_attr(call *c, int set)
{
    uint64_t fid = gf_wire_get_handle(&c->r);
    int32_t attr = gf_wire_get_i32(&c->r), val = set ? gf_wire_get_i32(&c->r) : 0;
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *f = NULL;
    CUresult r = get_obj(c, fid, GF_RPC_H_FUNCTION, "function", &f);
    if (r != CUDA_SUCCESS || (r = func_ready(c, f)) != CUDA_SUCCESS) return r;
    if (set) {
        r = D.cuFuncSetAttribute((CUfunction)f->real, (CUfunction_attribute)attr, val);
        if (r == CUDA_SUCCESS && f->name && attr >= 0 && attr < 32) {
            f->attr_set |= 1u << attr;
            f->attr_val[attr] = val;
        }
        return r;
    }
    int v = 0;
    r = D.cuFuncGetAttribute(&v, (CUfunction_attribute)attr, (CUfunction)f->real);
    if (r == CUDA_SUCCESS) gf_wire_put_i32(&c->out, v);
    return r;
}

static CUresult op_occupancy(call *c)
{
    uint64_t fid = gf_wire_get_handle(&c->r);
    int32_t block = gf_wire_get_i32(&c->r);
    uint64_t shmem = gf_wire_get_u64(&c->r);
    uint32_t flags = gf_wire_get_u32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *f = NULL;
    CUresult r = get_obj(c, fid, GF_RPC_H_FUNCTION, "function", &f);
    if (r != CUDA_SUCCESS || (r = func_ready(c, f)) != CUDA_SUCCESS) return r;
    int n = 0;
    r = D.cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&n, (CUfunction)f->real, block,
                                                                shmem, flags);
    if (r == CUDA_SUCCESS) gf_wire_put_i32(&c->out, n);
    return r;
}

/* OCCUPANCY_BLOCK_SIZE: the program's block-size-to-smem callback runs on the client, which
 * sends its value for each block size; the driver's callback reads them back (it is called on
 * this thread, during the call). */
static _Thread_local const uint8_t *occ_tab;
static _Thread_local uint32_t occ_n;

static size_t occ_smem(int block)
{
    uint32_t i = block > 0 ? (uint32_t)(block + 31) / 32 - 1 : 0;
    if (i >= occ_n) i = occ_n - 1;
    uint64_t v;
    memcpy(&v, occ_tab + 8 * (size_t)i, 8);
    return (size_t)le64toh(v);
}

static CUresult op_occupancy_block_size(call *c)
{
    uint64_t fid = gf_wire_get_handle(&c->r);
    uint64_t smem = gf_wire_get_u64(&c->r);
    int32_t limit = gf_wire_get_i32(&c->r);
    uint32_t flags = gf_wire_get_u32(&c->r);
    uint32_t n = gf_wire_get_u32(&c->r);
    const uint8_t *tab;
    size_t tn = gf_wire_get_bytes(&c->r, &tab);
    if (!READ_OK(c) || n > 64 || tn != 8 * (size_t)n) return WK_PROTO;
    gf_wk_obj *f = NULL;
    CUresult r = get_obj(c, fid, GF_RPC_H_FUNCTION, "function", &f);
    if (r != CUDA_SUCCESS || (r = func_ready(c, f)) != CUDA_SUCCESS) return r;
    if (!D.cuOccupancyMaxPotentialBlockSizeWithFlags) return CUDA_ERROR_NOT_SUPPORTED;
    occ_tab = tab;
    occ_n = n;
    int grid = 0, block = 0;
    r = D.cuOccupancyMaxPotentialBlockSizeWithFlags(&grid, &block, (CUfunction)f->real,
                                                    n ? occ_smem : NULL, smem, limit, flags);
    occ_tab = NULL;
    occ_n = 0;
    if (r != CUDA_SUCCESS) return r;
    gf_wire_put_i32(&c->out, grid);
    gf_wire_put_i32(&c->out, block);
    return CUDA_SUCCESS;
}

static CUresult op_launch(call *c)
{
    gf_wk_session *s = c->s;
    uint64_t fid = gf_wire_get_handle(&c->r);
    uint32_t g[6];
    for (int i = 0; i < 6; i++) g[i] = gf_wire_get_u32(&c->r);
    uint32_t shmem = gf_wire_get_u32(&c->r);
    uint64_t sh = gf_wire_get_handle(&c->r);
    uint32_t flags = gf_wire_get_u32(&c->r);
    const uint8_t *pb;
    size_t pn = gf_wire_get_bytes(&c->r, &pb);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *f = NULL, *ctx = NULL;
    CUstream st = NULL;
    CUresult r = cur_ctx(c, &ctx);
    if (r != CUDA_SUCCESS || (r = get_obj(c, fid, GF_RPC_H_FUNCTION, "function", &f)) != CUDA_SUCCESS ||
        (r = get_stream(c, sh, &st)) != CUDA_SUCCESS || (r = func_ready(c, f)) != CUDA_SUCCESS)
        return r;
    if (pn != f->pbytes || pn > GF_RPC_MAX_PARAM_BYTES)
        return deny(s, CUDA_ERROR_INVALID_VALUE, c->name,
                    "%zu bytes of parameters, the function takes %u", pn, f->pbytes);
    /* An aligned copy: the driver may read each parameter as its own type. */
    memcpy(s->params, pb, pn);
    void *args[GF_RPC_MAX_PARAMS];
    for (unsigned i = 0; i < f->nparams; i++) args[i] = s->params + f->poff[i];
    int slot = ctx->dev;
    uint64_t t0 = 0;
    if (s->lim && s->compute_frac > 0) {
        gf_limiter_compute_wait(s->lim, (unsigned)slot);
        t0 = now_ns();
    }
    if (flags & GF_RPC_LAUNCH_COOPERATIVE)
        r = D.cuLaunchCooperativeKernel((CUfunction)f->real, g[0], g[1], g[2], g[3], g[4], g[5],
                                        shmem, st, f->nparams ? args : NULL);
    else
        r = D.cuLaunchKernel((CUfunction)f->real, g[0], g[1], g[2], g[3], g[4], g[5], shmem, st,
                             f->nparams ? args : NULL, NULL);
    if (t0 && r == CUDA_SUCCESS) {
        /* Compute cap: the worker runs a capped session's kernels one at a time and charges
         * each one's wall time on the device. */
        D.cuStreamSynchronize(st);
        uint64_t t1 = now_ns();
        gf_limiter_compute_charge(s->lim, (unsigned)slot, t1 - t0, t1);
    }
    return r;
}

static CUresult op_stream_create(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r);
    uint32_t flags = gf_wire_get_u32(&c->r);
    int32_t prio = gf_wire_get_i32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *ctx = NULL;
    CUresult r = cur_ctx(c, &ctx);
    if (r != CUDA_SUCCESS) return r;
    CUstream st = NULL;
    if ((r = D.cuStreamCreateWithPriority(&st, flags, prio)) != CUDA_SUCCESS) return r;
    gf_wk_obj *o = obj_new(id, GF_RPC_H_STREAM, st, ctx->id);
    r = o ? obj_put(c->s, o, c->name) : CUDA_ERROR_OUT_OF_MEMORY;
    if (r != CUDA_SUCCESS) D.cuStreamDestroy_v2(st);
    return r;
}

static CUresult op_event_create(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r);
    uint32_t flags = gf_wire_get_u32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *ctx = NULL;
    CUresult r = cur_ctx(c, &ctx);
    if (r != CUDA_SUCCESS) return r;
    CUevent e = NULL;
    if ((r = D.cuEventCreate(&e, flags)) != CUDA_SUCCESS) return r;
    gf_wk_obj *o = obj_new(id, GF_RPC_H_EVENT, e, ctx->id);
    r = o ? obj_put(c->s, o, c->name) : CUDA_ERROR_OUT_OF_MEMORY;
    if (r != CUDA_SUCCESS) D.cuEventDestroy_v2(e);
    return r;
}

static CUresult op_destroy(call *c, int kind)
{
    uint64_t id = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *o = NULL;
    CUresult r = get_obj(c, id, kind, kind == GF_RPC_H_STREAM ? "stream" : "event", &o);
    if (r != CUDA_SUCCESS) return r;
    r = kind == GF_RPC_H_STREAM ? D.cuStreamDestroy_v2((CUstream)o->real)
                                : D.cuEventDestroy_v2((CUevent)o->real);
    if (r == CUDA_SUCCESS) obj_del(c->s, o);
    return r;
}

static CUresult op_stream_sync(call *c, int query)
{
    uint64_t sh = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    CUstream st = NULL;
    CUresult r = get_stream(c, sh, &st);
    if (r != CUDA_SUCCESS) return r;
    if (!c->s->cur_ctx && (sh == 0 || sh == GF_RPC_STREAM_LEGACY || sh == GF_RPC_STREAM_PER_THREAD))
        return CUDA_ERROR_INVALID_CONTEXT;
    return query ? D.cuStreamQuery(st) : D.cuStreamSynchronize(st);
}

static CUresult op_stream_wait_event(call *c)
{
    uint64_t sh = gf_wire_get_handle(&c->r), eh = gf_wire_get_handle(&c->r);
    uint32_t flags = gf_wire_get_u32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    CUstream st = NULL;
    gf_wk_obj *e = NULL;
    CUresult r = get_stream(c, sh, &st);
    if (r == CUDA_SUCCESS) r = get_obj(c, eh, GF_RPC_H_EVENT, "event", &e);
    if (r != CUDA_SUCCESS) return r;
    return D.cuStreamWaitEvent(st, (CUevent)e->real, flags);
}

static CUresult op_event_record(call *c)
{
    uint64_t eh = gf_wire_get_handle(&c->r), sh = gf_wire_get_handle(&c->r);
    uint32_t flags = gf_wire_get_u32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    CUstream st = NULL;
    gf_wk_obj *e = NULL;
    CUresult r = get_obj(c, eh, GF_RPC_H_EVENT, "event", &e);
    if (r == CUDA_SUCCESS) r = get_stream(c, sh, &st);
    if (r != CUDA_SUCCESS) return r;
    return flags ? D.cuEventRecordWithFlags((CUevent)e->real, st, flags)
                 : D.cuEventRecord((CUevent)e->real, st);
}

/* ---- host functions ----------------------------------------------------------------------------
 * A host function runs on the client. HOST_FUNC puts a gate in the stream (a driver host
 * function of the worker's own): when the stream reaches it, the gate becomes due, whoever owns
 * the connection sends HOST_FUNC_RUN, and the driver thread waits until the client's
 * HOST_FUNC_DONE (or the session's end) opens it, so the stream's later work waits for the
 * client's function, as on a GPU. */
typedef struct gf_wk_gate {
    struct gf_wk_gate *next;
    gf_wk_session *s;
    uint64_t token;
    int state; /* GATE_* */
} gf_wk_gate;
enum { GATE_QUEUED, GATE_DUE, GATE_SENT, GATE_OPEN };

static void CUDA_CB gate_wait(void *p)
{
    gf_wk_gate *g = p;
    gf_wk_session *s = g->s;
    pthread_mutex_lock(&s->hf_lk);
    if (!s->hf_release) {
        g->state = GATE_DUE;
        atomic_fetch_add(&s->hf_ready, 1);
        gf_wk_wake(s->w); /* the loop sends it if it owns the connection now */
        while (g->state != GATE_OPEN && !s->hf_release) pthread_cond_wait(&s->hf_cv, &s->hf_lk);
    }
    gf_wk_gate **pp = &s->gates;
    while (*pp && *pp != g) pp = &(*pp)->next;
    if (*pp) *pp = g->next;
    pthread_mutex_unlock(&s->hf_lk);
    free(g);
}

void gf_wk_host_send_ready(gf_wk_session *s)
{
    if (!s->hf_inited || !atomic_load(&s->hf_ready)) return;
    for (;;) {
        uint64_t token = 0;
        pthread_mutex_lock(&s->hf_lk);
        for (gf_wk_gate *g = s->gates; g && !token; g = g->next)
            if (g->state == GATE_DUE) {
                g->state = GATE_SENT;
                atomic_fetch_sub(&s->hf_ready, 1);
                token = g->token;
            }
        pthread_mutex_unlock(&s->hf_lk);
        if (!token) return;
        char err[256];
        gf_status st = gf_wire_queue(s->c, GF_RPC_HOST_FUNC_RUN, GF_WIRE_F_NOREPLY, token, NULL, 0,
                                     err, sizeof err);
        if (st == GF_OK) st = gf_wire_flush(s->c, 0, err, sizeof err);
        if (st != GF_OK && st != GF_EBUSY) {
            end_session(s, GF_LOG_WARN, err);
            return;
        }
    }
}

void gf_wk_host_done(gf_wk_session *s, const gf_wire_frame *f)
{
    if (!s->hf_inited) return;
    pthread_mutex_lock(&s->hf_lk);
    for (gf_wk_gate *g = s->gates; g; g = g->next)
        if (g->token == f->hdr.request_id && g->state == GATE_SENT) {
            g->state = GATE_OPEN;
            pthread_cond_broadcast(&s->hf_cv);
            break;
        }
    pthread_mutex_unlock(&s->hf_lk);
}

/* The session ends: every gate opens, so that no driver thread waits for a client that is gone
 * (the contexts' teardown then finds their streams able to finish). */
void gf_wk_host_release(gf_wk_session *s)
{
    if (!s->hf_inited) return;
    pthread_mutex_lock(&s->hf_lk);
    s->hf_release = 1;
    pthread_cond_broadcast(&s->hf_cv);
    pthread_mutex_unlock(&s->hf_lk);
}

static CUresult op_host_func(call *c)
{
    gf_wk_session *s = c->s;
    uint64_t sh = gf_wire_get_handle(&c->r), token = gf_wire_get_u64(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *ctx = NULL;
    CUstream st = NULL;
    CUresult r = cur_ctx(c, &ctx);
    if (r != CUDA_SUCCESS || (r = get_stream(c, sh, &st)) != CUDA_SUCCESS) return r;
    if (!D.cuLaunchHostFunc) return CUDA_ERROR_NOT_SUPPORTED;
    if (!s->hf_inited) {
        pthread_mutex_init(&s->hf_lk, NULL);
        pthread_cond_init(&s->hf_cv, NULL);
        s->hf_inited = 1;
    }
    gf_wk_gate *g = calloc(1, sizeof *g);
    if (!g) return CUDA_ERROR_OUT_OF_MEMORY;
    g->s = s;
    g->token = token;
    pthread_mutex_lock(&s->hf_lk);
    g->next = s->gates;
    s->gates = g;
    pthread_mutex_unlock(&s->hf_lk);
    r = D.cuLaunchHostFunc(st, gate_wait, g);
    if (r != CUDA_SUCCESS) {
        pthread_mutex_lock(&s->hf_lk);
        gf_wk_gate **pp = &s->gates;
        while (*pp && *pp != g) pp = &(*pp)->next;
        if (*pp) *pp = g->next;
        pthread_mutex_unlock(&s->hf_lk);
        free(g);
    }
    return r;
}

/* CTX_RECORD_EVENT / CTX_WAIT_EVENT: the context and the event must be the session's. */
static CUresult op_ctx_event(call *c, int wait)
{
    uint64_t ch = gf_wire_get_handle(&c->r), eh = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *ctx = NULL, *e = NULL;
    CUresult r = get_ctx(c, ch, &ctx);
    if (r == CUDA_SUCCESS) r = get_obj(c, eh, GF_RPC_H_EVENT, "event", &e);
    if (r != CUDA_SUCCESS) return r;
    CUresult (*fn)(CUcontext, CUevent) = wait ? D.cuCtxWaitEvent : D.cuCtxRecordEvent;
    if (!fn) return CUDA_ERROR_NOT_SUPPORTED;
    return fn((CUcontext)ctx->real, (CUevent)e->real);
}

static CUresult op_event_sync(call *c, int query)
{
    uint64_t eh = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *e = NULL;
    CUresult r = get_obj(c, eh, GF_RPC_H_EVENT, "event", &e);
    if (r != CUDA_SUCCESS) return r;
    return query ? D.cuEventQuery((CUevent)e->real) : D.cuEventSynchronize((CUevent)e->real);
}

static CUresult op_event_elapsed(call *c)
{
    uint64_t a = gf_wire_get_handle(&c->r), b = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *ea = NULL, *eb = NULL;
    CUresult r = get_obj(c, a, GF_RPC_H_EVENT, "event", &ea);
    if (r == CUDA_SUCCESS) r = get_obj(c, b, GF_RPC_H_EVENT, "event", &eb);
    if (r != CUDA_SUCCESS) return r;
    float ms = 0;
    r = D.cuEventElapsedTime_v2 ? D.cuEventElapsedTime_v2(&ms, (CUevent)ea->real, (CUevent)eb->real)
                                : D.cuEventElapsedTime(&ms, (CUevent)ea->real, (CUevent)eb->real);
    if (r == CUDA_SUCCESS) gf_wire_put_f64(&c->out, ms);
    return r;
}

static void held(gf_wk_session *s, int dev, int vram, uint64_t *n, uint64_t *bytes);

static CUresult op_stats(call *c)
{
    uint64_t bytes = 0, n = 0;
    held(c->s, -1, 0, &n, &bytes);
    gf_wire_put_u64(&c->out, n);
    gf_wire_put_u64(&c->out, bytes);
    gf_wire_put_u64(&c->out, c->s->obj_live);
    return CUDA_SUCCESS;
}

/* NVML as the session's vGPU shows it (remote_proto.h): its devices, the vGPU's limit as total
 * and its usage as used, the client's process, the real GPU's utilization. */
static CUresult op_nvml_snapshot(call *c)
{
    gf_wk_session *s = c->s;
    uint32_t pid = gf_wire_get_u32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_nvml_load(); /* once per session process, when its client first asks */
    char drv[80] = "";
    if (!gf_wk_nv.rc && gf_wk_nv.driver_version) gf_wk_nv.driver_version(drv, sizeof drv);
    gf_wire_put_u32(&c->out, (uint32_t)gf_wk_nv.rc);
    gf_wire_put_str(&c->out, drv);
    gf_wire_put_u32(&c->out, (uint32_t)s->ndev);
    for (int i = 0; i < s->ndev; i++) {
        int real = s->devmap[i];
        char name[256] = "", uuid[96] = "", pci[64] = "";
        size_t total = 0;
        D.cuDeviceGetName(name, sizeof name, real);
        uuid_of(real, uuid, sizeof uuid);
        if (D.cuDeviceGetPCIBusId) D.cuDeviceGetPCIBusId(pci, sizeof pci, real);
        D.cuDeviceTotalMem_v2(&total, real);
        uint64_t tot = total, used = 0, nheld;
        held(s, i, 1, &nheld, &used);
        uint64_t mine = used;
        if (s->lim) {
            uint64_t lu = 0, limit = 0;
            gf_limiter_mem_info(s->lim, (unsigned)i, &lu, &limit);
            if (limit && limit < tot) tot = limit;
            used = lu; /* a vGPU shared through an allocation id: everyone's usage */
        }
        if (used > tot) used = tot;
        unsigned util[2] = {0, 0};
        int urc = 3; /* NVML_ERROR_NOT_SUPPORTED */
        void *nd = NULL;
        if (!gf_wk_nv.rc && gf_wk_nv.util && gf_wk_nv.by_uuid(uuid, &nd) == 0)
            urc = gf_wk_nv.util(nd, util);
        gf_wire_put_str(&c->out, name);
        gf_wire_put_str(&c->out, uuid);
        gf_wire_put_str(&c->out, pci);
        gf_wire_put_u64(&c->out, tot);
        gf_wire_put_u64(&c->out, used);
        gf_wire_put_u32(&c->out, (uint32_t)urc);
        gf_wire_put_u32(&c->out, urc ? 0 : util[0]);
        gf_wire_put_u32(&c->out, urc ? 0 : util[1]);
        gf_wire_put_u32(&c->out, mine ? 1 : 0);
        if (mine) {
            gf_wire_put_u32(&c->out, pid);
            gf_wire_put_u64(&c->out, mine);
        }
    }
    return CUDA_SUCCESS;
}

/* ---- libraries, memory pools, virtual memory management, peer access ------------------------ */

/* Driver functions an older driver may lack: such a call is not supported rather than a crash. */
#define NEED(fn)                                                                              \
    do {                                                                                      \
        if (!D.fn) return CUDA_ERROR_NOT_SUPPORTED;                                           \
    } while (0)

/* Allocations and bytes the session holds on client device dev (-1: all; vram: device memory
 * only, not pinned host memory): its allocations and the physical memory of its VMM handles (a
 * mapping is not memory of its own, a module global its module's). */
static void held(gf_wk_session *s, int dev, int vram, uint64_t *n, uint64_t *bytes)
{
    *n = *bytes = 0;
    for (size_t i = 0; i < s->nranges; i++) {
        gf_wk_range *r = &s->ranges[i];
        if (gf_wk_range_is_global(r->kind) || r->kind == GF_WK_R_MAPPING ||
            (vram && r->kind == GF_WK_R_HOST) || (dev >= 0 && r->dev != dev))
            continue;
        (*n)++;
        *bytes += r->size;
    }
    for (size_t i = 0; i < s->obj_cap; i++) {
        gf_wk_obj *o = s->objs[i];
        if (!o || o == TOMB || o->kind != GF_RPC_H_VMEM || o->phys != o->id) continue;
        if (dev >= 0 && o->dev != dev) continue;
        (*n)++;
        *bytes += o->size;
    }
}

static CUresult op_lib_kernel_count(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    NEED(cuLibraryGetKernelCount);
    gf_wk_obj *m = NULL;
    CUresult r = get_obj(c, id, GF_RPC_H_LIBRARY, "library", &m);
    if (r != CUDA_SUCCESS || (r = lib_ready(c, m)) != CUDA_SUCCESS) return r;
    unsigned n = 0;
    if ((r = D.cuLibraryGetKernelCount(&n, (CUlibrary)m->real)) == CUDA_SUCCESS)
        gf_wire_put_u32(&c->out, n);
    return r;
}

/* Reads "props" (remote_proto.h) into *p, its location turned into the real device's; *cdev
 * gets the client's ordinal. Only device memory is served (host locations: NOT_SUPPORTED). */
static CUresult get_props(call *c, CUmemAllocationProp *p, uint32_t raw[5], int *cdev)
{
    for (int i = 0; i < 5; i++)
        raw[i] = i == 3 ? (uint32_t)gf_wire_get_i32(&c->r) : gf_wire_get_u32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    memset(p, 0, sizeof *p);
    p->type = (CUmemAllocationType)raw[0];
    p->requestedHandleTypes = (CUmemAllocationHandleType)raw[1];
    p->location.type = (CUmemLocationType)raw[2];
    p->allocFlags.compressionType = (unsigned char)(raw[4] & 0xff);
    p->allocFlags.gpuDirectRDMACapable = (unsigned char)((raw[4] >> 8) & 0xff);
    p->allocFlags.usage = (unsigned short)(raw[4] >> 16);
    if (p->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return deny(c->s, CUDA_ERROR_NOT_SUPPORTED, c->name,
                    "memory at location type %u: a remote vGPU serves device memory only", raw[2]);
    int real = client_dev(c->s, (int32_t)raw[3]);
    if (real < 0) return CUDA_ERROR_INVALID_DEVICE;
    p->location.id = real;
    *cdev = (int32_t)raw[3];
    return CUDA_SUCCESS;
}

/* A pool of the session: one it made, or the default pool of one of its devices. *dev gets the
 * pool's client device. */
static CUresult get_pool(call *c, uint64_t id, CUmemoryPool *out, int *dev)
{
    if (GF_RPC_HANDLE_KIND(id) == GF_RPC_H_MEMPOOL &&
        (id & GF_RPC_MEMPOOL_DEFAULT_MARK) == GF_RPC_MEMPOOL_DEFAULT_MARK) {
        uint64_t d = id & ~(GF_RPC_MEMPOOL_DEFAULT_MARK | 0xff00000000000000ull);
        int real = d < (uint64_t)c->s->ndev ? client_dev(c->s, (int32_t)d) : -1;
        if (real < 0 || !D.cuDeviceGetDefaultMemPool)
            return deny(c->s, CUDA_ERROR_INVALID_VALUE, c->name,
                        "memory pool 0x%" PRIx64 " is not one of this session's", id);
        *dev = (int)d;
        return D.cuDeviceGetDefaultMemPool(out, real);
    }
    gf_wk_obj *o = obj_get(c->s, id, GF_RPC_H_MEMPOOL);
    if (!o) return deny(c->s, CUDA_ERROR_INVALID_VALUE, c->name,
                        "memory pool 0x%" PRIx64 " is not one of this session's", id);
    *out = (CUmemoryPool)o->real;
    *dev = o->dev;
    return CUDA_SUCCESS;
}

static CUresult op_mempool_create(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r);
    CUmemAllocationProp ap;
    uint32_t raw[5];
    int dev = 0;
    CUresult r = get_props(c, &ap, raw, &dev);
    uint64_t maxsize = gf_wire_get_u64(&c->r);
    if (r == WK_PROTO || !READ_OK(c)) return WK_PROTO;
    if (r != CUDA_SUCCESS) return r;
    NEED(cuMemPoolCreate);
    CUmemPoolProps pp;
    memset(&pp, 0, sizeof pp);
    pp.allocType = ap.type;
    pp.handleTypes = ap.requestedHandleTypes;
    pp.location = ap.location;
    pp.maxSize = maxsize;
    pp.usage = ap.allocFlags.usage;
    CUmemoryPool pool = NULL;
    if ((r = D.cuMemPoolCreate(&pool, &pp)) != CUDA_SUCCESS) return r;
    gf_wk_obj *o = obj_new(id, GF_RPC_H_MEMPOOL, pool, 0);
    if (o) o->dev = dev;
    r = o ? obj_put(c->s, o, c->name) : CUDA_ERROR_OUT_OF_MEMORY;
    if (r != CUDA_SUCCESS) D.cuMemPoolDestroy(pool);
    return r;
}

/* Allocations made from the pool stay valid until freed, as on a driver. */
static CUresult op_mempool_destroy(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *o = obj_get(c->s, id, GF_RPC_H_MEMPOOL);
    if (!o) return deny(c->s, CUDA_ERROR_INVALID_VALUE, c->name,
                        "memory pool 0x%" PRIx64 " is not a pool this session created", id);
    NEED(cuMemPoolDestroy);
    CUresult r = D.cuMemPoolDestroy((CUmemoryPool)o->real);
    if (r == CUDA_SUCCESS) obj_del(c->s, o);
    return r;
}

static CUresult op_mempool_attr(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r);
    int32_t attr = gf_wire_get_i32(&c->r);
    uint32_t set = gf_wire_get_u32(&c->r);
    uint64_t val = gf_wire_get_u64(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    NEED(cuMemPoolGetAttribute);
    NEED(cuMemPoolSetAttribute);
    CUmemoryPool pool;
    int dev;
    CUresult r = get_pool(c, id, &pool, &dev);
    if (r != CUDA_SUCCESS) return r;
    /* The value's type is the attribute's (cuda.h): int for the reuse policies. */
    int is_int = attr >= CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES &&
                 attr <= CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES;
    if (!is_int && (attr < CU_MEMPOOL_ATTR_RELEASE_THRESHOLD || attr > CU_MEMPOOL_ATTR_USED_MEM_HIGH))
        return CUDA_ERROR_INVALID_VALUE;
    int iv = (int)val;
    cuuint64_t uv = val;
    void *p = is_int ? (void *)&iv : (void *)&uv;
    r = set ? D.cuMemPoolSetAttribute(pool, (CUmemPool_attribute)attr, p)
            : D.cuMemPoolGetAttribute(pool, (CUmemPool_attribute)attr, p);
    if (r == CUDA_SUCCESS) gf_wire_put_u64(&c->out, is_int ? (uint64_t)(int64_t)iv : uv);
    return r;
}

static CUresult op_mempool_trim(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r), keep = gf_wire_get_u64(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    NEED(cuMemPoolTrimTo);
    CUmemoryPool pool;
    int dev;
    CUresult r = get_pool(c, id, &pool, &dev);
    return r != CUDA_SUCCESS ? r : D.cuMemPoolTrimTo(pool, keep);
}

static CUresult op_device_set_mempool(call *c)
{
    int32_t dev = gf_wire_get_i32(&c->r);
    uint64_t id = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    NEED(cuDeviceSetMemPool);
    int real = client_dev(c->s, dev);
    if (real < 0) return CUDA_ERROR_INVALID_DEVICE;
    CUmemoryPool pool;
    int pdev;
    CUresult r = get_pool(c, id, &pool, &pdev);
    if (r != CUDA_SUCCESS) return r;
    return D.cuDeviceSetMemPool(real, pool);
}

static CUresult op_mem_alloc_from_pool(call *c)
{
    uint64_t bytes = gf_wire_get_u64(&c->r), id = gf_wire_get_handle(&c->r);
    uint64_t sh = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    NEED(cuMemAllocFromPoolAsync);
    gf_wk_obj *ctx = NULL;
    CUstream st = NULL;
    CUmemoryPool pool;
    int dev = 0;
    CUresult r = cur_ctx(c, &ctx);
    if (r != CUDA_SUCCESS || (r = get_stream(c, sh, &st)) != CUDA_SUCCESS ||
        (r = get_pool(c, id, &pool, &dev)) != CUDA_SUCCESS)
        return r;
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    if ((r = charge(c->s, dev, bytes, "cuMemAllocFromPoolAsync")) != CUDA_SUCCESS) return r;
    CUdeviceptr p = 0;
    r = D.cuMemAllocFromPoolAsync(&p, bytes, pool, st);
    gf_wk_range rg = {p, bytes, ctx->id, bytes, dev, GF_WK_R_ASYNC, NULL, 0, 0};
    if (r == CUDA_SUCCESS && range_add(c->s, rg) != 0) {
        D.cuMemFreeAsync(p, st);
        r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (r != CUDA_SUCCESS) {
        uncharge(c->s, dev, bytes);
        return r;
    }
    gf_wire_put_handle(&c->out, p);
    return CUDA_SUCCESS;
}

/* The reservation holding [p, p + n), or NULL. */
static gf_wk_va *va_find(gf_wk_session *s, uint64_t p, uint64_t n)
{
    for (size_t i = 0; i < s->nvas; i++) {
        gf_wk_va *v = &s->vas[i];
        if (p >= v->base && p - v->base < v->size && n <= v->size - (p - v->base)) return v;
    }
    return NULL;
}

static CUresult op_va_reserve(call *c)
{
    uint64_t size = gf_wire_get_u64(&c->r), align = gf_wire_get_u64(&c->r);
    uint64_t hint = gf_wire_get_handle(&c->r), flags = gf_wire_get_u64(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    NEED(cuMemAddressReserve);
    gf_wk_session *s = c->s;
    if (!size) return CUDA_ERROR_INVALID_VALUE;
    if (s->nvas == s->cap_vas) {
        size_t nc = s->cap_vas ? s->cap_vas * 2 : 16;
        gf_wk_va *n = realloc(s->vas, nc * sizeof *n);
        if (!n) return CUDA_ERROR_OUT_OF_MEMORY;
        s->vas = n;
        s->cap_vas = nc;
    }
    CUdeviceptr p = 0;
    /* The hint is only a wish: the driver picks a free range of this process either way. */
    CUresult r = D.cuMemAddressReserve(&p, size, align, hint, flags);
    if (r != CUDA_SUCCESS) return r;
    s->vas[s->nvas++] = (gf_wk_va){p, size};
    gf_wire_put_handle(&c->out, p);
    return CUDA_SUCCESS;
}

static CUresult op_va_free(call *c)
{
    uint64_t p = gf_wire_get_handle(&c->r), size = gf_wire_get_u64(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    NEED(cuMemAddressFree);
    gf_wk_session *s = c->s;
    gf_wk_va *v = va_find(s, p, size ? size : 1);
    if (!v || v->base != p || v->size != size)
        return deny(s, CUDA_ERROR_INVALID_VALUE, c->name,
                    "0x%" PRIx64 " + %" PRIu64 " is not an address range this session reserved",
                    p, size);
    for (size_t i = 0; i < s->nranges; i++)
        if (s->ranges[i].kind == GF_WK_R_MAPPING && s->ranges[i].base - p < size)
            return deny(s, CUDA_ERROR_INVALID_VALUE, c->name,
                        "0x%" PRIx64 " is still mapped: unmap it first", s->ranges[i].base);
    CUresult r = D.cuMemAddressFree(p, size);
    if (r == CUDA_SUCCESS) *v = s->vas[--s->nvas];
    return r;
}

static CUresult op_mem_create(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r), size = gf_wire_get_u64(&c->r);
    CUmemAllocationProp ap;
    uint32_t raw[5];
    int dev = 0;
    CUresult r = get_props(c, &ap, raw, &dev);
    uint64_t flags = gf_wire_get_u64(&c->r);
    if (r == WK_PROTO || !READ_OK(c)) return WK_PROTO;
    if (r != CUDA_SUCCESS) return r;
    NEED(cuMemCreate);
    if (!size) return CUDA_ERROR_INVALID_VALUE;
    if ((r = charge(c->s, dev, size, "cuMemCreate")) != CUDA_SUCCESS) return r;
    CUmemGenericAllocationHandle h = 0;
    if ((r = D.cuMemCreate(&h, size, &ap, flags)) != CUDA_SUCCESS) {
        uncharge(c->s, dev, size);
        return r;
    }
    gf_wk_obj *o = obj_new(id, GF_RPC_H_VMEM, (void *)(uintptr_t)h, 0);
    if (o) {
        o->dev = dev;
        o->size = size;
        o->hrefs = 1;
        o->phys = id;
        o->phys_refs = 1;
        memcpy(o->props, raw, sizeof o->props);
    }
    r = o ? obj_put(c->s, o, c->name) : CUDA_ERROR_OUT_OF_MEMORY;
    if (r != CUDA_SUCCESS) {
        D.cuMemRelease(h);
        uncharge(c->s, dev, size);
    }
    return r;
}

/* A handle the program may still use (released ones linger only while mappings or imports of
 * their memory remain). */
static CUresult get_vmem(call *c, uint64_t id, gf_wk_obj **out)
{
    gf_wk_obj *o = obj_get(c->s, id, GF_RPC_H_VMEM);
    if (!o || !o->hrefs)
        return deny(c->s, CUDA_ERROR_INVALID_VALUE, c->name,
                    "allocation handle 0x%" PRIx64 " is not a live one of this session", id);
    *out = o;
    return CUDA_SUCCESS;
}

/* After o's references changed: once none remain it stops holding its physical memory, and
 * when no handle holds that memory any more its bytes go back to the vGPU. */
static void vmem_settle(gf_wk_session *s, gf_wk_obj *o)
{
    if (o->hrefs || o->mrefs || o->settled) return;
    o->settled = 1;
    gf_wk_obj *p = o->phys == o->id ? o : obj_get(s, o->phys, GF_RPC_H_VMEM);
    if (o != p) obj_del(s, o);
    if (!p) return;
    if (p->phys_refs) p->phys_refs--;
    if (!p->phys_refs && p->settled) {
        uncharge(s, p->dev, p->size);
        obj_del(s, p);
    }
}

static CUresult op_mem_release(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    NEED(cuMemRelease);
    gf_wk_obj *o = NULL;
    CUresult r = get_vmem(c, id, &o);
    if (r != CUDA_SUCCESS) return r;
    if ((r = D.cuMemRelease((CUmemGenericAllocationHandle)(uintptr_t)o->real)) != CUDA_SUCCESS)
        return r;
    o->hrefs--;
    vmem_settle(c->s, o);
    return CUDA_SUCCESS;
}

static CUresult op_mem_map(call *c)
{
    uint64_t p = gf_wire_get_handle(&c->r), size = gf_wire_get_u64(&c->r);
    uint64_t off = gf_wire_get_u64(&c->r), id = gf_wire_get_handle(&c->r);
    uint64_t flags = gf_wire_get_u64(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    NEED(cuMemMap);
    gf_wk_session *s = c->s;
    gf_wk_obj *o = NULL;
    CUresult r = get_vmem(c, id, &o);
    if (r != CUDA_SUCCESS) return r;
    if (!size || off > o->size || size > o->size - off) return CUDA_ERROR_INVALID_VALUE;
    if (!va_find(s, p, size))
        return deny(s, CUDA_ERROR_INVALID_VALUE, c->name,
                    "0x%" PRIx64 " + %" PRIu64 " is not inside an address range this session "
                    "reserved", p, size);
    size_t i = range_upper(s, p + size - 1);
    if (i && s->ranges[i - 1].base + s->ranges[i - 1].size > p) /* the driver's answer */
        return deny(s, CUDA_ERROR_ALREADY_MAPPED, c->name,
                    "0x%" PRIx64 " + %" PRIu64 " overlaps memory already mapped", p, size);
    r = D.cuMemMap(p, size, off, (CUmemGenericAllocationHandle)(uintptr_t)o->real, flags);
    if (r != CUDA_SUCCESS) return r;
    gf_wk_range rg = {p, size, 0, 0, o->dev, GF_WK_R_MAPPING, NULL, 0, id};
    if (range_add(s, rg) != 0) {
        D.cuMemUnmap(p, size);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    o->mrefs++;
    return CUDA_SUCCESS;
}

/* Drops the mapping at index i (already unmapped in the driver). */
static void mapping_del(gf_wk_session *s, size_t i)
{
    uint64_t id = s->ranges[i].handle;
    range_del(s, &s->ranges[i]);
    gf_wk_obj *o = obj_get(s, id, GF_RPC_H_VMEM);
    if (o && o->mrefs) {
        o->mrefs--;
        vmem_settle(s, o);
    }
}

static CUresult op_mem_unmap(call *c)
{
    uint64_t p = gf_wire_get_handle(&c->r), size = gf_wire_get_u64(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    NEED(cuMemUnmap);
    gf_wk_session *s = c->s;
    /* Whole mappings only, back to back from p to p + size. */
    size_t i = range_upper(s, p), first = i ? i - 1 : 0, k = first;
    uint64_t at = p;
    while (size && k < s->nranges && s->ranges[k].kind == GF_WK_R_MAPPING && s->ranges[k].base == at &&
           s->ranges[k].size <= p + size - at) {
        at += s->ranges[k].size;
        k++;
    }
    if (!size || !i || at != p + size)
        return deny(s, CUDA_ERROR_INVALID_VALUE, c->name,
                    "0x%" PRIx64 " + %" PRIu64 " is not a run of whole mappings of this session",
                    p, size);
    CUresult r = D.cuMemUnmap(p, size);
    if (r != CUDA_SUCCESS) return r;
    while (k-- > first) mapping_del(s, k);
    return CUDA_SUCCESS;
}

static CUresult get_location(call *c, CUmemLocation *loc)
{
    uint32_t type = gf_wire_get_u32(&c->r);
    int32_t id = gf_wire_get_i32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    if (type != CU_MEM_LOCATION_TYPE_DEVICE)
        return deny(c->s, CUDA_ERROR_NOT_SUPPORTED, c->name,
                    "access from location type %u: a remote vGPU serves devices only", type);
    int real = client_dev(c->s, id);
    if (real < 0) return CUDA_ERROR_INVALID_DEVICE;
    loc->type = CU_MEM_LOCATION_TYPE_DEVICE;
    loc->id = real;
    return CUDA_SUCCESS;
}

static CUresult op_mem_set_access(call *c)
{
    uint64_t p = gf_wire_get_handle(&c->r), size = gf_wire_get_u64(&c->r);
    uint32_t n = gf_wire_get_u32(&c->r);
    if (!READ_OK(c) || n > GF_WK_MAX_DEVS) return WK_PROTO;
    CUmemAccessDesc d[GF_WK_MAX_DEVS];
    CUresult r = CUDA_SUCCESS;
    for (uint32_t i = 0; i < n; i++) {
        CUresult x = get_location(c, &d[i].location);
        if (x == WK_PROTO) return x;
        if (r == CUDA_SUCCESS) r = x;
        d[i].flags = (CUmemAccess_flags)gf_wire_get_u32(&c->r);
    }
    if (!READ_OK(c)) return WK_PROTO;
    if (r != CUDA_SUCCESS) return r;
    if (!n) return CUDA_ERROR_INVALID_VALUE;
    NEED(cuMemSetAccess);
    gf_wk_range *rg = size ? range_find(c->s, p, size) : NULL;
    if (!rg || rg->kind != GF_WK_R_MAPPING)
        return deny(c->s, CUDA_ERROR_INVALID_VALUE, c->name,
                    "0x%" PRIx64 " + %" PRIu64 " is not memory this session mapped", p, size);
    return D.cuMemSetAccess(p, size, d, n);
}

static CUresult op_mem_get_access(call *c)
{
    CUmemLocation loc;
    CUresult r = get_location(c, &loc);
    uint64_t p = gf_wire_get_handle(&c->r);
    if (r == WK_PROTO || !READ_OK(c)) return WK_PROTO;
    if (r != CUDA_SUCCESS) return r;
    NEED(cuMemGetAccess);
    gf_wk_range *rg = range_find(c->s, p, 1);
    if (!rg || rg->kind != GF_WK_R_MAPPING)
        return deny(c->s, CUDA_ERROR_INVALID_VALUE, c->name,
                    "0x%" PRIx64 " is not memory this session mapped", p);
    unsigned long long flags = 0;
    if ((r = D.cuMemGetAccess(&flags, &loc, p)) == CUDA_SUCCESS) gf_wire_put_u64(&c->out, flags);
    return r;
}

static CUresult op_mem_retain_handle(call *c)
{
    uint64_t p = gf_wire_get_handle(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    NEED(cuMemRetainAllocationHandle);
    gf_wk_range *rg = range_find(c->s, p, 1);
    gf_wk_obj *o = rg && rg->kind == GF_WK_R_MAPPING ? obj_get(c->s, rg->handle, GF_RPC_H_VMEM) : NULL;
    if (!o)
        return deny(c->s, CUDA_ERROR_INVALID_VALUE, c->name,
                    "0x%" PRIx64 " is not memory this session mapped", p);
    CUmemGenericAllocationHandle h = 0;
    CUresult r = D.cuMemRetainAllocationHandle(&h, (void *)(uintptr_t)p);
    if (r != CUDA_SUCCESS) return r;
    o->hrefs++;
    gf_wire_put_handle(&c->out, o->id);
    for (int i = 0; i < 5; i++) gf_wire_put_u32(&c->out, o->props[i]);
    return CUDA_SUCCESS;
}

static CUresult op_peer_access(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r);
    uint32_t enable = gf_wire_get_u32(&c->r), flags = gf_wire_get_u32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    NEED(cuCtxEnablePeerAccess);
    NEED(cuCtxDisablePeerAccess);
    gf_wk_obj *cur = NULL, *peer = NULL;
    CUresult r = cur_ctx(c, &cur);
    if (r != CUDA_SUCCESS || (r = get_ctx(c, id, &peer)) != CUDA_SUCCESS) return r;
    return enable ? D.cuCtxEnablePeerAccess((CUcontext)peer->real, flags)
                  : D.cuCtxDisablePeerAccess((CUcontext)peer->real);
}

static CUresult op_mem_granularity(call *c)
{
    CUmemAllocationProp ap;
    uint32_t raw[5];
    int dev = 0;
    CUresult r = get_props(c, &ap, raw, &dev);
    uint32_t option = gf_wire_get_u32(&c->r);
    if (r == WK_PROTO || !READ_OK(c)) return WK_PROTO;
    if (r != CUDA_SUCCESS) return r;
    NEED(cuMemGetAllocationGranularity);
    size_t g = 0;
    r = D.cuMemGetAllocationGranularity(&g, &ap, (CUmemAllocationGranularity_flags)option);
    if (r == CUDA_SUCCESS) gf_wire_put_u64(&c->out, g);
    return r;
}

/* A POSIX file descriptor of o's memory, in this process (the caller closes it). Only that
 * type: a descriptor is what PyTorch and NCCL ask for on Linux. */
static CUresult vmem_export_fd(call *c, gf_wk_obj *o, uint32_t type, int *fd)
{
    if (type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
        return deny(c->s, CUDA_ERROR_NOT_SUPPORTED, c->name,
                    "shareable handle type %u: a remote vGPU exports POSIX file descriptors only",
                    type);
    NEED(cuMemExportToShareableHandle);
    return D.cuMemExportToShareableHandle(fd, (CUmemGenericAllocationHandle)(uintptr_t)o->real,
                                          CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
}

static CUresult op_mem_export(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r);
    uint32_t type = gf_wire_get_u32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    gf_wk_obj *o = NULL;
    int fd = -1;
    CUresult r = get_vmem(c, id, &o);
    if (r == CUDA_SUCCESS) r = vmem_export_fd(c, o, type, &fd);
    if (fd >= 0) close(fd); /* exported again at import: the client holds a stand-in */
    return r;
}

static CUresult op_mem_import(call *c)
{
    uint64_t id = gf_wire_get_handle(&c->r), src = gf_wire_get_handle(&c->r);
    uint32_t type = gf_wire_get_u32(&c->r);
    if (!READ_OK(c)) return WK_PROTO;
    NEED(cuMemImportFromShareableHandle);
    gf_wk_obj *o = obj_get(c->s, src, GF_RPC_H_VMEM), *p = NULL;
    if (o && !o->settled) p = o->phys == o->id ? o : obj_get(c->s, o->phys, GF_RPC_H_VMEM);
    if (!p)
        return deny(c->s, CUDA_ERROR_INVALID_VALUE, c->name,
                    "allocation handle 0x%" PRIx64 " (exported) is not a live one of this "
                    "session", src);
    int fd = -1;
    CUresult r = vmem_export_fd(c, o, type, &fd);
    if (r != CUDA_SUCCESS) return r;
    CUmemGenericAllocationHandle h = 0;
    r = D.cuMemImportFromShareableHandle(&h, (void *)(intptr_t)fd,
                                         CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
    close(fd);
    if (r != CUDA_SUCCESS) return r;
    gf_wk_obj *n = obj_new(id, GF_RPC_H_VMEM, (void *)(uintptr_t)h, 0);
    if (n) {
        n->dev = o->dev;
        n->size = o->size;
        n->hrefs = 1;
        n->phys = p->id;
        memcpy(n->props, o->props, sizeof n->props);
    }
    r = n ? obj_put(c->s, n, c->name) : CUDA_ERROR_OUT_OF_MEMORY;
    if (r != CUDA_SUCCESS) {
        D.cuMemRelease(h);
        return r;
    }
    p->phys_refs++;
    for (int i = 0; i < 5; i++) gf_wire_put_u32(&c->out, o->props[i]);
    return CUDA_SUCCESS;
}

/* At the session's end, before its contexts go: every mapping, VMM handle, reservation and
 * pool it made (allocations from a pool stay valid until drop_ctx frees them). */
static void vmem_release_all(gf_wk_session *s)
{
    for (size_t i = s->nranges; i-- > 0;) {
        if (s->ranges[i].kind != GF_WK_R_MAPPING) continue;
        if (D.cuMemUnmap) D.cuMemUnmap(s->ranges[i].base, s->ranges[i].size);
        mapping_del(s, i);
    }
    for (size_t i = 0; i < s->obj_cap; i++) {
        gf_wk_obj *o = s->objs[i];
        if (!o || o == TOMB || o->kind != GF_RPC_H_VMEM) continue;
        for (; o->hrefs; o->hrefs--)
            if (D.cuMemRelease) D.cuMemRelease((CUmemGenericAllocationHandle)(uintptr_t)o->real);
        if (!o->settled) {
            o->settled = 1;
            gf_wk_obj *p = o->phys == o->id ? o : obj_get(s, o->phys, GF_RPC_H_VMEM);
            if (p && p->phys_refs) p->phys_refs--;
        }
    }
    for (size_t i = 0; i < s->obj_cap; i++) {
        gf_wk_obj *o = s->objs[i];
        if (!o || o == TOMB) continue;
        if (o->kind == GF_RPC_H_VMEM) {
            if (o->phys == o->id) uncharge(s, o->dev, o->size);
            obj_del(s, o);
        } else if (o->kind == GF_RPC_H_MEMPOOL) {
            if (D.cuMemPoolDestroy) D.cuMemPoolDestroy((CUmemoryPool)o->real);
            obj_del(s, o);
        }
    }
    for (size_t i = 0; i < s->nvas; i++)
        if (D.cuMemAddressFree) D.cuMemAddressFree(s->vas[i].base, s->vas[i].size);
    free(s->vas);
    s->vas = NULL;
    s->nvas = s->cap_vas = 0;
}

/* Calls whose answer also reports the errors of earlier asynchronous calls. */
static int synchronizing(uint32_t kind)
{
    switch (kind) {
    case GF_RPC_CTX_SYNC:
    case GF_RPC_STREAM_SYNC:
    case GF_RPC_STREAM_QUERY:
    case GF_RPC_EVENT_SYNC:
    case GF_RPC_EVENT_QUERY:
    case GF_RPC_MEMCPY_HTOD: return 1;
    default: return 0;
    }
}

static void dispatch(gf_wk_session *s, gf_wk_msg *m)
{
    call c;
    c.s = s;
    c.m = m;
    c.name = gf_rpc_op_name(m->hdr.kind);
    gf_wire_reader_init(&c.r, m->payload, m->hdr.payload_len);
    uint8_t outbuf[2048];
    gf_wire_writer_init(&c.out, 1u << 20);
    int noreply = (m->hdr.flags & GF_WIRE_F_NOREPLY) != 0;
    CUresult r;
    switch (m->hdr.kind) {
    case GF_RPC_DEVICE_INFO: r = op_device_info(&c); break;
    case GF_RPC_CTX_SET: r = op_ctx_set(&c); break;
    case GF_RPC_CTX_CREATE: r = op_ctx_create(&c); break;
    case GF_RPC_PRIMARY_RETAIN: r = op_primary_retain(&c); break;
    case GF_RPC_PRIMARY_RESET: r = op_primary_reset(&c); break;
    case GF_RPC_CTX_DESTROY: r = op_ctx_destroy(&c); break;
    case GF_RPC_CTX_SYNC: r = op_ctx_sync(&c); break;
    case GF_RPC_MEM_ALLOC: r = op_mem_alloc(&c); break;
    case GF_RPC_MEM_ALLOC_PITCH: r = op_mem_alloc_pitch(&c); break;
    case GF_RPC_MEM_FREE: r = op_mem_free(&c); break;
    case GF_RPC_MEM_GET_INFO: r = op_mem_get_info(&c); break;
    case GF_RPC_MEM_RANGE: r = op_mem_range(&c); break;
    case GF_RPC_MEMCPY_HTOD: r = op_htod(&c, 0); break;
    case GF_RPC_MEMCPY_HTOD_ASYNC: r = op_htod(&c, 1); break;
    case GF_RPC_MEMCPY_DTOH: r = noreply ? WK_PROTO : op_dtoh(&c); break;
    case GF_RPC_MEMCPY_DTOD: r = op_dtod(&c); break;
    case GF_RPC_MEMSET: r = op_memset(&c); break;
    case GF_RPC_MEM_ALLOC_ASYNC: r = op_mem_alloc_async(&c); break;
    case GF_RPC_MEM_FREE_ASYNC: r = op_mem_free_async(&c); break;
    case GF_RPC_MODULE_LOAD: r = op_module_load(&c); break;
    case GF_RPC_MODULE_UNLOAD: r = op_module_unload(&c); break;
    case GF_RPC_JIT_LOG: r = noreply ? WK_PROTO : op_jit_log(&c); break;
    case GF_RPC_GET_FUNCTION: r = op_get_function(&c); break;
    case GF_RPC_GET_GLOBAL: r = op_get_global(&c); break;
    case GF_RPC_FUNC_ATTR: r = op_func_attr(&c, 0); break;
    case GF_RPC_FUNC_SET_ATTR: r = op_func_attr(&c, 1); break;
    case GF_RPC_LAUNCH: r = op_launch(&c); break;
    case GF_RPC_STREAM_CREATE: r = op_stream_create(&c); break;
    case GF_RPC_STREAM_DESTROY: r = op_destroy(&c, GF_RPC_H_STREAM); break;
    case GF_RPC_STREAM_SYNC: r = op_stream_sync(&c, 0); break;
    case GF_RPC_STREAM_QUERY: r = op_stream_sync(&c, 1); break;
    case GF_RPC_STREAM_WAIT_EVENT: r = op_stream_wait_event(&c); break;
    case GF_RPC_EVENT_CREATE: r = op_event_create(&c); break;
    case GF_RPC_EVENT_DESTROY: r = op_destroy(&c, GF_RPC_H_EVENT); break;
    case GF_RPC_EVENT_RECORD: r = op_event_record(&c); break;
    case GF_RPC_EVENT_SYNC: r = op_event_sync(&c, 0); break;
    case GF_RPC_EVENT_QUERY: r = op_event_sync(&c, 1); break;
    case GF_RPC_EVENT_ELAPSED: r = op_event_elapsed(&c); break;
    case GF_RPC_CTX_RECORD_EVENT: r = op_ctx_event(&c, 0); break;
    case GF_RPC_CTX_WAIT_EVENT: r = op_ctx_event(&c, 1); break;
    case GF_RPC_HOST_FUNC: r = op_host_func(&c); break;
    case GF_RPC_OCCUPANCY_BLOCK_SIZE: r = noreply ? WK_PROTO : op_occupancy_block_size(&c); break;
    case GF_RPC_OCCUPANCY: r = op_occupancy(&c); break;
    case GF_RPC_STATS: r = op_stats(&c); break;
    case GF_RPC_FENCE: r = CUDA_SUCCESS; break;
    case GF_RPC_NVML_SNAPSHOT: r = noreply ? WK_PROTO : op_nvml_snapshot(&c); break;
    case GF_RPC_MEMCPY_DTOH_ASYNC: r = noreply ? op_dtoh_async(&c) : WK_PROTO; break;
    case GF_RPC_MIRROR_ALLOC: r = op_mirror_alloc(&c); break;
    case GF_RPC_GET_MANAGED: r = op_get_managed(&c); break;
    case GF_RPC_MIRROR_WRITE: r = op_mirror_write(&c); break;
    case GF_RPC_MIRROR_READ: r = noreply ? WK_PROTO : op_mirror_read(&c); break;
    case GF_RPC_LIB_KERNEL_COUNT: r = op_lib_kernel_count(&c); break;
    case GF_RPC_MEMPOOL_CREATE: r = op_mempool_create(&c); break;
    case GF_RPC_MEMPOOL_DESTROY: r = op_mempool_destroy(&c); break;
    case GF_RPC_MEMPOOL_ATTR: r = op_mempool_attr(&c); break;
    case GF_RPC_MEMPOOL_TRIM: r = op_mempool_trim(&c); break;
    case GF_RPC_DEVICE_SET_MEMPOOL: r = op_device_set_mempool(&c); break;
    case GF_RPC_MEM_ALLOC_FROM_POOL: r = op_mem_alloc_from_pool(&c); break;
    case GF_RPC_VA_RESERVE: r = op_va_reserve(&c); break;
    case GF_RPC_VA_FREE: r = op_va_free(&c); break;
    case GF_RPC_MEM_CREATE: r = op_mem_create(&c); break;
    case GF_RPC_MEM_RELEASE: r = op_mem_release(&c); break;
    case GF_RPC_MEM_MAP: r = op_mem_map(&c); break;
    case GF_RPC_MEM_UNMAP: r = op_mem_unmap(&c); break;
    case GF_RPC_MEM_SET_ACCESS: r = op_mem_set_access(&c); break;
    case GF_RPC_MEM_GET_ACCESS: r = op_mem_get_access(&c); break;
    case GF_RPC_MEM_RETAIN_HANDLE: r = op_mem_retain_handle(&c); break;
    case GF_RPC_PEER_ACCESS: r = op_peer_access(&c); break;
    case GF_RPC_MEM_GRANULARITY: r = op_mem_granularity(&c); break;
    case GF_RPC_MEM_EXPORT: r = op_mem_export(&c); break;
    case GF_RPC_MEM_IMPORT: r = op_mem_import(&c); break;
    default: {
        /* A newer client's call: an ERROR reply, the session goes on (docs/wire.md). */
        gf_wire_writer_free(&c.out);
        if (noreply) {
            if (s->sticky == CUDA_SUCCESS) s->sticky = CUDA_ERROR_NOT_SUPPORTED;
            return;
        }
        gf_wire_writer w;
        gf_wire_writer_init_fixed(&w, outbuf, sizeof outbuf);
        char msg[128];
        snprintf(msg, sizeof msg, "this worker does not know call kind 0x%x; upgrade it",
                 (unsigned)m->hdr.kind);
        gf_wire_error_encode(&w, GF_ENOTSUP, msg);
        send_frame(s, m->hdr.kind, GF_WIRE_F_REPLY | GF_WIRE_F_ERROR, m->hdr.request_id, w.buf,
                   w.len);
        return;
    }
    }
    if (r == WK_PROTO) {
        char why[200];
        snprintf(why, sizeof why, "malformed %s request: %s", c.name ? c.name : "?",
                 c.r.status != GF_OK ? c.r.msg : "bad field value");
        fail_session(s, why);
    } else if (r != WK_REPLIED) {
        if (noreply) {
            if (r != CUDA_SUCCESS && s->sticky == CUDA_SUCCESS) s->sticky = r;
        } else {
            if (r == CUDA_SUCCESS && s->sticky != CUDA_SUCCESS && synchronizing(m->hdr.kind)) {
                r = s->sticky;
                s->sticky = CUDA_SUCCESS;
            }
            if (s->nd2h && synchronizing(m->hdr.kind)) d2h_flush(s);
            gf_wire_writer w;
            gf_wire_writer_init(&w, 0);
            gf_wire_put_u32(&w, (uint32_t)r);
            if (r == CUDA_SUCCESS) gf_wire_put_raw(&w, c.out.buf, c.out.len);
            if (gf_wire_writer_status(&w) != GF_OK) fail_session(s, "reply too large");
            else send_frame(s, m->hdr.kind, GF_WIRE_F_REPLY, m->hdr.request_id, w.buf, w.len);
            gf_wire_writer_free(&w);
        }
    }
    gf_wire_writer_free(&c.out);
}

void *gf_wk_session_main(void *arg)
{
    gf_wk_session *s = arg;
    s->params = aligned_alloc(64, GF_RPC_MAX_PARAM_BYTES);
    if (!s->params) fail_session(s, "out of host memory");
    D.cuCtxSetCurrent(NULL);
    for (;;) {
        gf_wk_msg *m = next_msg(s);
        if (!m) break;
        io_leave(s);
        dispatch(s, m);
        msg_free(m);
    }
    gf_wk_session_release(s);
    atomic_store(&s->finished, 1);
    gf_wk_wake(s->w);
    return NULL;
}

void gf_wk_session_release(gf_wk_session *s)
{
    uint64_t nalloc = 0, bytes = 0;
    held(s, -1, 0, &nalloc, &bytes);
    gf_wk_host_release(s); /* no stream waits for a host function any more */
    /* VMM mappings, handles and reservations, and pools belong to no context: first, while a
     * context is still current. */
    vmem_release_all(s);
    /* Every context, with what was made in it. */
    for (;;) {
        gf_wk_obj *ctx = NULL;
        for (size_t i = 0; i < s->obj_cap && !ctx; i++)
            if (s->objs[i] && s->objs[i] != TOMB && s->objs[i]->kind == GF_RPC_H_CTX) ctx = s->objs[i];
        if (!ctx) break;
        drop_ctx(s, ctx, 1);
    }
    /* Libraries loaded before any context belong to none: unload them too. */
    for (size_t i = 0; i < s->obj_cap; i++) {
        gf_wk_obj *o = s->objs[i];
        if (!o || o == TOMB) continue;
        if (o->kind == GF_RPC_H_MODULE) D.cuModuleUnload((CUmodule)o->real);
        else if (o->kind == GF_RPC_H_LIBRARY && o->real) D.cuLibraryUnload((CUlibrary)o->real);
        obj_free(o);
    }
    free(s->objs);
    s->objs = NULL;
    s->obj_cap = s->obj_live = s->obj_used = 0;
    free(s->ranges);
    s->ranges = NULL;
    s->nranges = s->cap_ranges = 0;
    D.cuCtxSetCurrent(NULL);
    if (s->lim) gf_limiter_close(s->lim);
    s->lim = NULL;
    if (s->lim_name[0]) gf_limiter_unlink(s->lim_name);
    for (size_t i = 0; i < s->nd2h; i++) d2h_release(s, &s->d2h[i]);
    free(s->d2h);
    s->d2h = NULL;
    s->nd2h = s->cap_d2h = 0;
    free(s->staging);
    free(s->params);
    s->staging = s->params = NULL;
    pthread_mutex_lock(&s->qlk);
    while (s->head) {
        gf_wk_msg *m = s->head;
        s->head = m->next;
        msg_free(m);
    }
    s->tail = NULL;
    pthread_mutex_unlock(&s->qlk);
    gf_log(GF_LOG_INFO, GF_WK_LOG,
           "session %" PRIu64 " (%s, %s) ended; freed %" PRIu64 " allocations (%" PRIu64 " bytes)",
           s->id, s->peer, s->client_name, nalloc, bytes);
}
