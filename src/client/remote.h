/* SPDX-License-Identifier: Apache-2.0 */
/* The client library's remote backend (GPUFUSE_REMOTE): the connection to a gpufuse worker, the
 * call helpers every remote entry point uses, and the client-side state (minted handles, the
 * current context per thread, cached device answers). docs/remote.md. */
#ifndef GF_CLIENT_REMOTE_H
#define GF_CLIENT_REMOTE_H

#include <pthread.h>

#include "client.h"
#include "client/remote_proto.h"

#define GF_REMOTE_LOG "remote"
#define GF_REMOTE_MAX_DEVS 16
#define GF_REMOTE_MAX_D2H 256 /* asynchronous D2H copies in flight; more wait (synchronously) */

/* A device as DEVICE_INFO described it (immutable: cached for the process). */
typedef struct gf_rdev {
    char name[256];
    unsigned char uuid[16];
    uint64_t total;
    char pci[64];
    int32_t attrs[GF_RPC_NATTR - 1];
    /* primary context (client side) */
    uint64_t primary;
    unsigned primary_refs;
    unsigned primary_flags;
    /* cuDevicePrimaryCtxReset since the last PRIMARY_RETAIN: the worker made the context again
     * under the same handle, or could not (a kernel fault poisoned the session's process), so
     * the next retain asks it again with that handle. */
    int primary_reset;
} gf_rdev;

/* A CUfunction / CUkernel handed to the program: its worker handle and parameter layout. */
#define GF_RFUNC_MAGIC 0x6766756e63000001ull
#define GF_RFUNC_DEAD 0x6766756e6300dead
typedef struct gf_rfunc {
    uint64_t magic;
    uint64_t id;
    uint64_t module; /* module or library handle */
    struct gf_rfunc *next_all;
    unsigned nparams;
    uint32_t pbytes;
    uint32_t *off, *size;
    char name[256];
    /* CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, asked for at the first launch with
     * dynamic shared memory (max_dyn_known), kept up to date by cuFuncSetAttribute: a launch
     * over it fails at once, as on a driver, not at the next synchronizing call. */
    int max_dyn_known;
    int32_t max_dyn;
} gf_rfunc;

typedef struct gf_remote {
    int enabled;           /* GPUFUSE_REMOTE is set: this process has no local driver */
    char addr[512];
    pthread_mutex_t lk;    /* serializes all use of c */
    gf_wire_conn *c;
    int inited;            /* cuInit succeeded */
    /* A child forked after its parent's cuInit: as on a driver, CUDA is unusable in it (every
     * call, cuInit included, is CUDA_ERROR_NOT_INITIALIZED); NVML still works. */
    int forked;
    int broken;            /* the worker is gone: every call fails with broken_rc */
    CUresult broken_rc;
    /* A kernel fault the worker reported (gpufuse/cuda_faults.h): the session's process on the
     * worker is poisoned, so calls answered here without a round trip (the asynchronous ones)
     * fail with it too, as on a local driver. */
    CUresult fault;
    int timeout_ms;
    uint64_t next_rid;
    atomic_ullong next_handle;
    uint64_t sent_ctx;     /* the context the worker's session has current */
    int driver_version;
    int ndev;
    gf_rdev dev[GF_REMOTE_MAX_DEVS];
    uint8_t peer[GF_REMOTE_MAX_DEVS][GF_REMOTE_MAX_DEVS]; /* device i can access j's memory */
    gf_rfunc *funcs;       /* every function handed out (kept: the program may hold them) */
    pid_t pid;
    unsigned async_since_sync; /* asynchronous calls sent since the last answer */
    unsigned async_window;     /* a FENCE after this many (2 when compute is capped) */
    /* Asynchronous device-to-host copies whose data has not come back yet. */
    struct gf_rd2h {
        uint64_t rid;
        void *dst;
        size_t n;
    } d2h[GF_REMOTE_MAX_D2H];
    unsigned nd2h;
} gf_remote;

extern gf_remote gf_r;

/* A request being encoded: kind + payload in a fixed buffer (no malloc on the launch path). */
typedef struct gf_rreq {
    uint32_t kind;
    gf_wire_writer w;
    uint8_t buf[640];
} gf_rreq;

static inline void gf_rreq_init(gf_rreq *q, uint32_t kind)
{
    q->kind = kind;
    gf_wire_writer_init_fixed(&q->w, q->buf, sizeof q->buf);
}

/* NVML in remote mode. The NVML shim (a separate library) reaches the remote backend through
 * cuGetExportTable with GF_RNVML_TABLE_ID, whose table's snapshot() makes one NVML_SNAPSHOT call
 * on the process's session (connecting first when the program has not called cuInit). Plain C
 * structs: the two libraries share this header, not code. */
#define GF_RNVML_MAX_DEVS 16
#define GF_RNVML_MAX_PROCS 32
typedef struct gf_rnvml_dev {
    char name[96];
    char uuid[96];
    char pci[32];
    unsigned long long total, used;
    int util_rc; /* nvmlReturn_t */
    unsigned util_gpu, util_mem;
    unsigned nprocs;
    unsigned pid[GF_RNVML_MAX_PROCS];
    unsigned long long pbytes[GF_RNVML_MAX_PROCS];
} gf_rnvml_dev;

typedef struct gf_rnvml {
    int nvml_rc;      /* the worker's NVML: 0 loaded */
    int cuda_version; /* cuDriverGetVersion of the worker */
    char driver[80];
    unsigned ndev;
    gf_rnvml_dev dev[GF_RNVML_MAX_DEVS];
} gf_rnvml;

typedef struct gf_rnvml_table {
    size_t size; /* sizeof(gf_rnvml_table) */
    /* Fills *out; CUDA_SUCCESS, or the CUresult of connecting or of the call. */
    CUresult (*snapshot)(gf_rnvml *out);
} gf_rnvml_table;

/* "gpufuse-rnvml-v1" */
#define GF_RNVML_TABLE_ID                                                                     \
    {{'g', 'p', 'u', 'f', 'u', 's', 'e', '-', 'r', 'n', 'v', 'm', 'l', '-', 'v', '1'}}

/* 1 when GPUFUSE_REMOTE selects the remote backend. */
int gf_remote_wanted(void);
/* Fills gf_real with the remote backend's entry points (and NOT_SUPPORTED stubs for the rest);
 * called by gf_client_init instead of loading a driver. */
void gf_remote_setup(void);
/* remote.c: reads GPUFUSE_REMOTE and installs the fork and exit handlers (from setup). */
void gf_remote_init_process(void);

/* Connects and handshakes (cuInit). Takes the lock itself. */
CUresult gf_remote_connect(void);

/* Lock/unlock the connection. gf_remote_lock returns CUDA_SUCCESS with the lock held, or the
 * error every call gets now (not initialized, worker gone) without it. */
CUresult gf_remote_lock(void);
void gf_remote_unlock(void);

/* Under the lock: queues an asynchronous call (NOREPLY). */
CUresult gf_remote_async(gf_rreq *q);
/* Under the lock: queues an already encoded asynchronous call payload (the launch path). */
CUresult gf_remote_queue_raw(uint32_t kind, const void *p, size_t n);
/* Under the lock: a synchronous call; on CUDA_SUCCESS from the transport, *rc is the worker's
 * result and rep reads the reply's outputs (valid until the next call or unlock). The return
 * value is a transport failure (the worker is gone) or CUDA_SUCCESS. *rid the request id. */
CUresult gf_remote_sync(gf_rreq *q, CUresult *rc, gf_wire_reader *rep, uint64_t *rid);
/* Under the lock: like gf_remote_sync with n bytes of data sent after the request as BULK
 * chunks (big host-to-device copies). noreply: an asynchronous call (no answer awaited). */
CUresult gf_remote_sync_bulk(gf_rreq *q, const void *data, size_t n, int noreply, CUresult *rc,
                             gf_wire_reader *rep);
/* Under the lock: queues an asynchronous device-to-host copy (MEMCPY_DTOH_ASYNC) whose data the
 * worker sends before a later synchronizing answer; dst is filled then. CUDA_ERROR_NOT_READY
 * (nothing sent) when too many are in flight: do it synchronously instead. */
CUresult gf_remote_dtoh_async(gf_rreq *q, void *dst, size_t n);
/* Under the lock: queues a host function (fn, or the callback cb with stream) after the work
 * queued so far on stream sh (HOST_FUNC); it runs here when the worker's stream gets there. */
CUresult gf_remote_host_func(uint64_t sh, CUstream stream, CUhostFn fn, CUstreamCallback cb,
                             void *data);
/* Under the lock: receives the n bytes of a reply's BULK transfer into dst. */
CUresult gf_remote_recv_bulk(uint64_t rid, void *dst, size_t n);

/* A fresh handle of a kind (GF_RPC_H_*). */
uint64_t gf_remote_handle(unsigned kind, uint64_t extra);

/* The per-thread current context (a handle, 0 = none) and what the worker has current: queues a
 * CTX_SET when they differ. Under the lock. */
extern _Thread_local uint64_t gf_remote_tl_ctx;
void gf_remote_sync_ctx(void);

/* remote_objs.c: the registry of this process's contexts, streams and events (what a driver
 * would answer about a handle without a round trip). Thread-safe; no lock of gf_r needed. */
enum { GF_RCTX_LIVE = 1, GF_RCTX_INACTIVE, GF_RCTX_DESTROYED };
/* Records context ctx in a state (GF_RCTX_*): created or retained (LIVE), a primary context
 * released to zero or reset (INACTIVE), destroyed (DESTROYED; remembered for good). */
void gf_robj_ctx_set(uint64_t ctx, int state);
/* GF_RCTX_* of ctx, -1 when this process never had it. */
int gf_robj_ctx_state(uint64_t ctx);
/* What a driver says about using ctx: CUDA_SUCCESS, CUDA_ERROR_CONTEXT_IS_DESTROYED, or
 * CUDA_ERROR_INVALID_CONTEXT (0, unknown, or with need_active an inactive primary context). */
CUresult gf_robj_ctx_check(uint64_t ctx, int need_active);
/* Streams and events: h made in context ctx (0 on success, -1 out of memory); 1 and *ctx when
 * h is live; deleted (1 when it was live); every stream and event of ctx dropped. */
int gf_robj_add(uint64_t h, uint64_t ctx);
int gf_robj_find(uint64_t h, uint64_t *ctx);
int gf_robj_del(uint64_t h);
void gf_robj_drop_ctx(uint64_t ctx);
/* ---- mirrors: managed and mapped host memory (remote_mirror.c) ---- */
enum { GF_MIRROR_MANAGED = 1, GF_MIRROR_HOST, GF_MIRROR_REGISTERED };
typedef struct gf_mirror_info {
    uint64_t base, size; /* the program's bytes */
    uint64_t dev;        /* their device address on the worker (0: none yet) */
    uint64_t ctx;
    unsigned kind, flags;
} gf_mirror_info;
/* Set while this thread holds the connection's lock / runs mirror code (the fault handler
 * must not wait for either). */
extern _Thread_local int gf_remote_tl_locked;
extern _Thread_local int gf_mirror_busy;
/* 1 (2 for a context-wide one) when a synchronizing answer came after device work:
 * gf_remote_unlock runs gf_mirror_after_sync. */
extern int gf_mirror_sync_due;
/* Maps managed memory the worker made at dev at the same address here; fresh: a new
 * allocation (nothing to fetch). 0, or an errno (EEXIST: the address is taken here). */
int gf_mirror_map_managed(uint64_t dev, uint64_t size, uint64_t ctx, uint64_t module, int fresh);
/* Records pinned (GF_MIRROR_HOST) or registered host memory; no device copy until armed. */
int gf_mirror_add_host(uint64_t base, uint64_t size, unsigned kind, unsigned flags, uint64_t ctx);
/* The mirror holding [p, p + n): 1 and *out (out may be NULL); 0 none; -1 the bytes run over a
 * mirror's edge. */
int gf_mirror_find(uint64_t p, uint64_t n, gf_mirror_info *out);
/* Under the lock: the device copy of the host mirror at base, made now if it has none. */
CUresult gf_mirror_arm(uint64_t base, uint64_t *dev);
/* Drops the mirror starting at base (unmapping managed pages): 1 and *out, or 0. */
int gf_mirror_forget(uint64_t base, gf_mirror_info *out);
/* Drops the mirrors of a context or a module/library (ctx or module 0: any). */
void gf_mirror_forget_owner(uint64_t ctx, uint64_t module);
/* Under the lock, from the call helpers: host writes go out before any call (flush); calls
 * that may write device memory are noted (sent); synchronizing answers noted (answered). */
CUresult gf_mirror_flush(uint32_t kind);
void gf_mirror_sent(uint32_t kind);
void gf_mirror_answered(uint32_t kind);
void gf_mirror_after_sync(void);
void gf_mirror_before_host_fn(void);

/* NOT_SUPPORTED for a call the backend does not implement, logged once per name. */
CUresult gf_remote_unsupported(const char *name);

#endif
