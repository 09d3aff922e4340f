/* SPDX-License-Identifier: Apache-2.0 */
/* Internal contract of gpufuse worker (src/worker/): the real driver's table, the worker's
 * first process (supervisor.c: listens, forks one process per client connection, reaps them;
 * it never loads the driver), the session process (loop.c: one event loop doing only I/O for
 * its one connection), the session (session.c: a thread that makes its driver calls) and the
 * per-session object tables that isolation is checked against. docs/worker.md describes the
 * behaviour; src/client/remote_proto.h the calls. */
#ifndef GF_WORKER_H
#define GF_WORKER_H

#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdint.h>

#include "client/remote_proto.h"
#include "gpufuse/limiter.h"
#include "gpufuse/log.h"
#include "gpufuse/wire.h"

#define GF_WK_LOG "worker"
#define GF_WK_MAX_DEVS 16

/* ---- the real driver (driver.c) ------------------------------------------------------------ */
#define GF_CUDA_FN(sym, ret, params, args) typedef ret (*gf_wk_pfn_##sym) params;
#include "cuda_api.h"

typedef struct gf_wk_driver {
#define GF_CUDA_FN(sym, ret, params, args) gf_wk_pfn_##sym sym;
#include "cuda_api.h"
} gf_wk_driver;

extern gf_wk_driver gf_wk_drv;

/* Loads the real driver (GPUFUSE_DRIVER, else the usual places; never gpufuse's own library)
 * and calls cuInit. GF_OK, or an error with a message naming what to set. */
gf_status gf_wk_driver_load(char *path, size_t pathlen, char *err, size_t errlen);

/* ---- the real NVML (driver.c), optional: NVML_SNAPSHOT falls back to CUDA's answers ------- */
typedef struct gf_wk_nvml {
    int rc; /* 0 loaded and initialized, else an nvmlReturn_t (12 = library not found) */
    char path[512];
    int (*init)(void);
    int (*by_uuid)(const char *uuid, void **dev);
    int (*util)(void *dev, unsigned int util[2]);
    int (*driver_version)(char *buf, unsigned int len);
} gf_wk_nvml;

extern gf_wk_nvml gf_wk_nv;

/* Loads NVML (GPUFUSE_NVML, else the usual places; never gpufuse's shim) and calls nvmlInit_v2.
 * Never fails: gf_wk_nv.rc says what happened (logged once). Only the first call does anything
 * (a session process loads NVML when its client first asks an NVML question). */
void gf_wk_nvml_load(void);

/* ---- options --------------------------------------------------------------------------------- */
typedef struct gf_wk_opts {
    const char *listen[8]; /* addresses */
    int nlisten;
    const char *tls_cert, *tls_key;
    char token[256];        /* "" = none */
    const char *alloc_tokens; /* --allocation-tokens: an agent's table of per-allocation token
                                 hashes (access.c), or NULL */
    int gpus[GF_WK_MAX_DEVS]; /* real ordinals served; ngpus 0 = all */
    int ngpus;
    int max_sessions;
    const char *ready_file; /* written with the bound addresses once listening (tests) */
} gf_wk_opts;

/* ---- who may open a session (access.c) ------------------------------------------------------ */

/* Checks a decoded HELLO: its version, then its token. Without an allocation token table, the
 * shared token (none = anyone). With one: a HELLO for allocation A needs A's token (its SHA-256
 * is A's line in the table) or the shared token; A missing from the table is GF_ENOENT (the
 * agent has not written it yet: the client may retry); a HELLO for no allocation (an ad-hoc
 * vGPU) needs the shared token. GF_OK, or the refusal's status with reason (sent back, logged;
 * it never contains a token). */
gf_status gf_wk_check_client(const gf_wk_opts *o, const gf_wire_hello *h, char *reason,
                             size_t cap);

/* Looks allocation up in the table at path: GF_OK with its hash ("-" = made without a token),
 * GF_ENOENT when absent, GF_EIO (err says why) when the table cannot be read. */
gf_status gf_wk_allocation_token(const char *path, const char *allocation, char *hash,
                                 size_t cap, char *err, size_t errlen);

/* ---- per-session objects (session.c) --------------------------------------------------------- */

/* An object a session created, keyed by the client's handle. */
typedef struct gf_wk_obj {
    uint64_t id;
    int kind;         /* GF_RPC_H_* */
    void *real;       /* CUcontext / CUmodule / CUlibrary / CUfunction / CUstream / CUevent */
    uint64_t ctx;     /* owning context's id (0 for contexts) */
    uint64_t parent;  /* functions: their module/library id */
    int dev;          /* contexts: client-visible device */
    int primary;      /* contexts: the session's stand-in for the device's primary context */
    unsigned nparams; /* functions: parameter layout (cuFuncGetParamInfo) */
    uint32_t *poff, *psize;
    uint32_t pbytes;
    /* Libraries: the image (NUL-padded), kept so that the library outlives the context it was
     * loaded in, as a CUlibrary does on a driver: when that context goes (cuCtxDestroy,
     * cuDevicePrimaryCtxReset) the worker unloads it (real = NULL) and loads it again in the
     * context current at its next use. Library kernels: their name, to look them up again. */
    uint8_t *image;
    size_t image_len;
    char *name;
    uint32_t attr_set;     /* library kernels: attributes set (bit a = attribute a < 32) ... */
    int32_t attr_val[32];  /* ... and their values, set again when looked up again */
    /* VMM allocation handles (real: the CUmemGenericAllocationHandle). The physical memory
     * lives while any handle of it (made by cuMemCreate, retained, imported) or any mapping of
     * it remains; its bytes are charged to the vGPU on the cuMemCreate handle (phys) until then. */
    uint64_t size;
    uint32_t hrefs;     /* the program's references: cuMemCreate/import 1, each retain 1 */
    uint32_t mrefs;     /* mappings made with this handle */
    int settled;        /* hrefs and mrefs reached 0: no longer counted in phys_refs */
    uint64_t phys;      /* the cuMemCreate handle's id (its own for one made by cuMemCreate) */
    uint32_t phys_refs; /* on the cuMemCreate handle: its handles not settled yet */
    uint32_t props[5];  /* type, handle types, location type, location id, alloc flags */
} gf_wk_obj;

/* A device memory range the session may touch. */
typedef struct gf_wk_range {
    uint64_t base, size;
    uint64_t ctx;     /* the context it was made in */
    uint64_t charged; /* bytes charged to the vGPU (module globals: their module's handle) */
    int dev;
    int kind;         /* GF_WK_R_* */
    void *host;       /* GF_WK_R_HOST: the worker's host address of base */
    size_t mapped;    /* GF_WK_R_HOST: bytes mmap'ed at a client's address (0: cuMemHostAlloc) */
    uint64_t handle;  /* GF_WK_R_MAPPING: the id of the VMM handle mapped here */
} gf_wk_range;

/* What a session's range is. Module globals belong to their module (freed with it, never by
 * cuMemFree); the managed and host kinds back the client's mirrors (docs/remote.md, "Managed
 * and mapped host memory") and are the only ones MIRROR_READ/MIRROR_WRITE reach. A VMM mapping
 * is memory while mapped (cuMemUnmap ends it, never cuMemFree) but no allocation of its own:
 * its bytes are its handle's (cuMemCreate). */
enum {
    GF_WK_R_ALLOC,          /* cuMemAlloc, cuMemAllocPitch */
    GF_WK_R_ASYNC,          /* stream-ordered (cuMemAllocAsync, cuMemAllocFromPoolAsync) */
    GF_WK_R_GLOBAL,         /* module global */
    GF_WK_R_MANAGED,        /* cuMemAllocManaged */
    GF_WK_R_MANAGED_GLOBAL, /* __managed__ variable (cuLibraryGetManaged) */
    GF_WK_R_HOST,           /* pinned host memory mapped for the device */
    GF_WK_R_MAPPING,        /* a VMM mapping (cuMemMap) */
};
static inline int gf_wk_range_is_global(int kind)
{
    return kind == GF_WK_R_GLOBAL || kind == GF_WK_R_MANAGED_GLOBAL;
}

/* A reserved virtual address range (cuMemAddressReserve). */
typedef struct gf_wk_va {
    uint64_t base, size;
} gf_wk_va;

typedef struct gf_wk_msg {
    struct gf_wk_msg *next;
    gf_wire_hdr hdr;
    uint8_t *payload; /* malloc'ed copy owned by the message, or borrowed (below) */
    int borrowed;     /* payload is the conn's: valid until the thread's next receive */
} gf_wk_msg;

struct gf_wk_worker;

#define GF_WK_JIT_LOG 4096 /* bytes of each JIT log a session keeps */

typedef struct gf_wk_session {
    struct gf_wk_worker *w;
    struct gf_wk_session *next; /* the worker's list */
    uint64_t id;
    gf_wire_conn *c;
    char peer[300];
    char client_name[128];
    int handshaken;

    /* Who uses c. The session thread does its own I/O (thread_io 1): it reads requests and
     * writes replies itself, so a synchronous call costs no hand-off between threads. While it
     * runs a driver call (thread_io 0) the loop may use c, under io; it only does so once the
     * call has taken long (busy_since), to answer PINGs and notice a closed peer. io guards
     * thread_io, registered_events and c while the loop uses it. */
    pthread_mutex_t io;
    int thread_io;
    _Atomic uint64_t busy_since_ns;

    /* inbound queue: the loop appends, the session thread takes */
    pthread_mutex_t qlk;
    pthread_cond_t qcv;
    pthread_cond_t outcv; /* signaled by the loop after it flushed c */
    gf_wk_msg *head, *tail;
    atomic_size_t qbytes;
    atomic_int qcount;
    atomic_int closing;   /* set by the loop (peer gone) or the thread (fatal); never cleared */
    atomic_int finished;  /* the thread has freed everything and exits */
    atomic_int throttled; /* the loop stopped reading: too much queued */
    int registered_events; /* in the loop's epoll set with these events; -1 not (under io) */
    pthread_t thr;
    int thr_started;

    /* what the thread owns (only the session thread touches these) */
    gf_wk_obj **objs; /* open addressing on id; NULL empty, TOMB deleted */
    size_t obj_cap, obj_used, obj_live;
    gf_wk_range *ranges; /* sorted by base */
    size_t nranges, cap_ranges;
    gf_wk_va *vas; /* reserved address ranges (VMM), unsorted */
    size_t nvas, cap_vas;
    uint64_t cur_ctx; /* the id made current by CTX_SET */
    uint64_t primary[GF_WK_MAX_DEVS];
    CUresult sticky; /* first error of an asynchronous call since the last synchronizing one */
    int ndev;
    int devmap[GF_WK_MAX_DEVS]; /* client ordinal -> real ordinal */
    gf_limiter *lim;
    char lim_name[GF_LIMITER_NAME_MAX];
    double compute_frac;
    uint64_t vram_limit;
    uint8_t *staging; /* GF_RPC_CHUNK bytes: fallback when pinned buffers are unavailable */
    gf_wk_msg direct; /* the request the thread read itself (borrowed payload) */
    /* Bulk copies: two pinned buffers of GF_RPC_CHUNK and an event each, made in context
     * pin_ctx, so that the device copy of chunk k overlaps the network transfer of chunk k+1. */
    void *pin[2];
    CUevent pev[2];
    int pev_live[2]; /* an event was recorded since the buffer was last waited for */
    uint64_t pin_ctx;
    /* Asynchronous device-to-host copies (MEMCPY_DTOH_ASYNC) whose data is not sent yet. */
    struct gf_wk_d2h *d2h;
    size_t nd2h, cap_d2h;
    uint64_t d2h_bytes;
    uint8_t *params;  /* GF_RPC_MAX_PARAM_BYTES, aligned */
    /* The JIT's info and error logs of the last MODULE_LOAD (JIT_LOG), NUL-terminated, and the
     * bytes the driver says it filled. */
    char jit_info[GF_WK_JIT_LOG], jit_err[GF_WK_JIT_LOG];
    uint64_t jit_info_n, jit_err_n;
    /* Host functions (HOST_FUNC): gates at which a driver thread holds the stream until the
     * client ran the function (HOST_FUNC_DONE). hf_lk guards gates and hf_release; hf_ready
     * counts gates whose HOST_FUNC_RUN is due (whoever owns c sends it). */
    pthread_mutex_t hf_lk;
    pthread_cond_t hf_cv;
    int hf_inited;  /* hf_lk and hf_cv made (by the thread, before the first gate) */
    int hf_release; /* the session ends: every gate opens */
    atomic_uint hf_ready;
    struct gf_wk_gate *gates;
} gf_wk_session;

/* A session process's worker: its event loop and its one session. The supervisor fills opts,
 * real_devs, nreal and driver_path before it forks; the session process the rest. */
typedef struct gf_wk_worker {
    gf_wk_opts opts;
    int epfd;
    int wakefd; /* eventfd: the session thread and signals ask the loop to look */
    gf_wk_session *sessions; /* the process's session (a list for the loop's sake) */
    unsigned nsessions;
    int real_devs[GF_WK_MAX_DEVS];
    int nreal;
    char driver_path[512];
    /* Not GF_OK: the HELLO is refused with this status and reason (the supervisor's
     * --max-sessions, or the driver that could not be loaded in this process). */
    gf_status refuse;
    char refuse_reason[400];
    volatile sig_atomic_t stop;
} gf_wk_worker;

/* The name of the private limiter region of session id in process pid (session.c makes it,
 * the supervisor removes it when that process died without doing so). */
static inline void gf_wk_lim_name(char *buf, size_t len, long pid, uint64_t id)
{
    snprintf(buf, len, "worker-%ld-%llu", pid, (unsigned long long)id);
}

/* session.c: sets up what a session needs to run calls after its HELLO was accepted (devices,
 * the vGPU's limiter region); GF_OK or a refusal status with reason. */
gf_status gf_wk_session_setup(gf_wk_session *s, const gf_wire_hello *h, char *reason,
                              size_t cap);
/* session.c: the session thread. */
void *gf_wk_session_main(void *arg);
/* session.c: frees what the thread owns (called by the thread on exit). */
void gf_wk_session_release(gf_wk_session *s);
/* Host functions (session.c): sends HOST_FUNC_RUN for every gate that is due; the caller owns
 * s->c (the session's thread, or the loop under s->io during a long call). A HOST_FUNC_DONE
 * frame read from the client (by either) opens its gate; unknown ones are ignored. Both are
 * no-ops for a session with no host functions. */
void gf_wk_host_send_ready(gf_wk_session *s);
void gf_wk_host_done(gf_wk_session *s, const gf_wire_frame *f);
/* The session ends (its client is gone, or the worker stops): every gate opens, so that no
 * driver thread, and no call of the session's thread, waits for a client that will not answer. */
void gf_wk_host_release(gf_wk_session *s);

/* loop.c: asks the loop to look at s (its output queue, its end). Any thread. */
void gf_wk_wake(gf_wk_worker *w);

/* loop.c, in a session process: serves connection c (accepted by the supervisor, owned from
 * now on) as session id until the session ends or SIGTERM/SIGINT arrives: the handshake, the
 * session's thread, PINGs during long calls. Installs this process's SIGTERM/SIGINT handlers
 * and unblocks them. Frees everything it made. Returns the process's exit status: 0 when the
 * session ended cleanly (a refused HELLO and a vanished client included), 1 when this process
 * could not serve it (w->refuse GF_EIO: no driver; out of memory). */
int gf_wk_session_process(gf_wk_worker *w, gf_wire_conn *c, uint64_t id);

/* supervisor.c: gpufuse worker. Finds the GPUs (in a short-lived child), listens, and forks a
 * session process per connection; returns the exit status when SIGTERM/SIGINT stopped it (0,
 * or 1 when a session process failed), or a start-up failure (1, 2 for a bad --gpu). In a
 * session process it returns that process's status instead (the caller just exits with it). */
int gf_wk_run(const gf_wk_opts *o);

#endif
