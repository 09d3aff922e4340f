/* SPDX-License-Identifier: Apache-2.0 */
/* Internal contract between the sim driver's files (driver_*.c): the process state, the handle
 * objects every CUDA handle points at, the device-memory arena, and the stream executor.
 *
 * Handles. Every CUcontext, CUstream, CUevent, CUmodule, CUfunction, CUlibrary, CUkernel,
 * CUmemoryPool and CUmemGenericAllocationHandle the sim hands out is the address of an object in
 * a per-type slab (one large mapping per type, never unmapped). A handle is checked by address
 * arithmetic against that slab before it is read, then by its magic and live flag, so a
 * destroyed or made-up handle gives CUDA_ERROR_INVALID_HANDLE, never a crash. Objects are
 * reference counted (the handle itself holds one reference, each queued operation that uses the
 * object another) and go back to the slab's free list only when the last reference goes.
 *
 * Locking. g_drv.lock (a plain mutex) guards the object registries, the stream queues and the
 * contexts; g_drv.cv is broadcast whenever queued work completes or new work is queued. The
 * allocation table has its own rwlock (g_drv.mem_lock) because kernels consult it from the
 * executors while API calls change it. Kernels, copies and host functions run with no lock held.
 */
#ifndef GF_SIM_DRIVER_H
#define GF_SIM_DRIVER_H

#include <cuda.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "gpufuse/log.h"
#include "ptx.h"
#include "simstate.h"

#define GF_SIM_API __attribute__((visibility("default")))
#define GF_SIM_LOG "sim"

/* ---- handle objects ------------------------------------------------------------------------ */

typedef enum gf_drv_type {
    GF_DRV_CTX = 0,
    GF_DRV_STREAM,
    GF_DRV_EVENT,
    GF_DRV_MODULE,
    GF_DRV_FUNC,
    GF_DRV_LIBRARY,
    GF_DRV_KERNEL,
    GF_DRV_POOL,
    GF_DRV_MEMHANDLE,
    GF_DRV_NTYPES
} gf_drv_type;

typedef struct gf_obj {
    uint32_t magic;         /* GF_DRV_MAGIC + type, written once when the slot is first used */
    _Atomic uint32_t live;  /* 1 from gf_drv__obj_publish until destroyed */
    _Atomic uint32_t born;  /* 1 from publish until the last reference goes (a tombstone when
                             * live is 0); contexts stay born forever */
    atomic_int refs;
    uint32_t reuse;         /* bumped each time the slot is handed out again */
} gf_obj;

#define GF_DRV_MAGIC 0x6f5e1000u

/* Allocates an object of the type, zeroed after its header, with refs = 1, not yet visible to
 * gf_drv__obj_get / foreach; NULL when the slab is full. The creator fills it in, then calls
 * gf_drv__obj_publish. */
void *gf_drv__obj_new(gf_drv_type t);
/* Makes a new object live: from now on its handle is valid. */
void gf_drv__obj_publish(void *o);
/* The object behind handle h when h is a live object of type t, else NULL. Reads no memory
 * outside the type's slab. */
void *gf_drv__obj_get(gf_drv_type t, const void *h);
/* Same, but also accepts tombstones (destroyed, still referenced); for diagnostics. */
void *gf_drv__obj_any(gf_drv_type t, const void *h);
void gf_drv__obj_ref(void *o);
/* Drops one reference; at zero the object's slot goes back to the free list (after the type's
 * finalizer ran). */
void gf_drv__obj_unref(void *o);
/* Calls fn on every live object of type t (under no lock; fn must tolerate races). */
void gf_drv__obj_foreach(gf_drv_type t, void (*fn)(void *obj, void *arg), void *arg);
/* Same, including destroyed objects that are still referenced (a destroyed stream that still
 * has queued work). */
void gf_drv__obj_foreach_any(gf_drv_type t, void (*fn)(void *obj, void *arg), void *arg);

/* ---- devices and contexts ------------------------------------------------------------------ */

typedef struct gf_stream gf_stream;
typedef struct gf_module gf_module;

typedef struct gf_ctx {
    gf_obj h;
    int dev;
    unsigned flags;
    int primary;              /* the device's primary context */
    int active;               /* primary: retained at least once and not reset; else alive */
    unsigned long long id;
    _Atomic CUresult sticky;  /* an error from a kernel that makes the context unusable */
    gf_stream *legacy;        /* the NULL stream */
    size_t limits[10];
    CUfunc_cache cache_config;
    CUsharedconfig shared_config;
} gf_ctx;

typedef struct gf_device {
    gf_sim_device_info info;
    gf_ctx *primary;          /* allocated on first retain, never freed */
    unsigned primary_refs;
    unsigned primary_flags;
    struct gf_pool *default_pool;
    struct gf_pool *current_pool;
} gf_device;

/* ---- streams, events and queued operations ------------------------------------------------- */

/* A point in a stream: done when the stream reached seq, or when the stream slot was reused
 * (gen changed), which only happens after it drained. */
typedef struct gf_dep {
    gf_stream *s;
    uint32_t gen;
    uint64_t seq;
} gf_dep;

typedef enum gf_op_kind {
    GF_OP_NOP = 0,
    GF_OP_KERNEL,
    GF_OP_COPY,       /* 2D/3D copy; a 1D copy is height = depth = 1 */
    GF_OP_MEMSET,
    GF_OP_HOSTFN,
    GF_OP_CALLBACK,
    GF_OP_EVENT,
    GF_OP_FREE,       /* cuMemFreeAsync */
} gf_op_kind;

typedef struct gf_copy {
    uint8_t *dst;
    const uint8_t *src;
    size_t width, height, depth;
    size_t dpitch, dheight;   /* bytes per row, rows per slice */
    size_t spitch, sheight;
} gf_copy;

struct gf_function;

typedef struct gf_op {
    struct gf_op *next;
    gf_op_kind kind;
    uint64_t seq;
    unsigned ndeps;
    gf_dep *deps;
    void *owned;              /* freed with the op: a staging copy of pageable host data */
    union {
        struct {
            struct gf_module *mod;        /* referenced by the op */
            const gf_ptx_kernel *k;
            gf_ptx_launch launch;
            uint8_t *params;
            int spin;                     /* gpufuse_sim_spin: hold the device spin_ns */
            uint64_t spin_ns;
        } kernel;
        gf_copy copy;
        struct {
            uint8_t *dst;
            size_t pitch, width, height;   /* width in elements */
            uint32_t value;
            unsigned elem;                 /* 1, 2 or 4 */
        } memset;
        struct {
            CUhostFn fn;
            void *arg;
        } hostfn;
        struct {
            CUstreamCallback fn;
            void *arg;
            CUstream stream;
        } callback;
        struct {
            struct gf_event *ev;
            uint64_t rec;
        } event;
        struct {
            CUdeviceptr ptr;
        } free;
    } u;
} gf_op;

struct gf_stream {
    gf_obj h;
    gf_ctx *ctx;
    unsigned flags;           /* CU_STREAM_DEFAULT / CU_STREAM_NON_BLOCKING */
    int priority;
    int legacy;               /* the context's NULL stream */
    int per_thread;           /* a thread's per-thread default stream */
    unsigned long long id;
    uint32_t gen;
    uint64_t submitted;       /* seq of the last queued op */
    uint64_t completed;       /* seq of the last finished op */
    gf_op *head, *tail;
    int thread_running;
    int destroyed;
};

typedef struct gf_event {
    gf_obj h;
    gf_ctx *ctx;
    unsigned flags;
    int recorded;
    gf_dep at;                /* the recorded point */
    uint64_t rec;             /* bumps on each record, so an old record op does not stamp */
    uint64_t time_ns;
    int stamped;
} gf_event;

/* ---- modules, functions, libraries --------------------------------------------------------- */

typedef struct gf_function {
    gf_obj h;
    struct gf_module *mod;
    const gf_ptx_kernel *k;
    unsigned index;
    int max_dynamic_shared;
    int preferred_carveout;
    CUfunc_cache cache_config;
    int required_cluster[3];
    int non_portable_cluster;
} gf_function;

struct gf_library;

struct gf_module {
    gf_obj h;
    gf_ctx *ctx;
    gf_ptx_module *ptx;
    unsigned nfuncs;
    gf_function **funcs;
    unsigned nglobals;
    CUdeviceptr *globals;
    struct gf_library *lib;   /* the library this module instantiates, if any */
    unsigned ptx_arch;
};

typedef struct gf_lib_inst {
    gf_ctx *ctx;
    gf_module *mod;
} gf_lib_inst;

typedef struct gf_kernel {
    gf_obj h;
    struct gf_library *lib;
    unsigned index;
    char name[256];
    int max_dynamic_shared;
} gf_kernel;

typedef struct gf_library {
    gf_obj h;
    char *ptx;                /* the PTX text, owned */
    size_t ptx_len;
    unsigned ptx_arch;
    gf_ptx_module *proto;     /* parsed once for names, never bound or run */
    unsigned nkernels;
    gf_kernel **kernels;
    unsigned ninst;
    gf_lib_inst *inst;
} gf_library;

/* ---- memory -------------------------------------------------------------------------------- */

typedef enum gf_mem_kind {
    GF_MEM_DEVICE = 1,
    GF_MEM_HOST,          /* cuMemAllocHost / cuMemHostAlloc: pinned host memory in the arena */
    GF_MEM_REGISTERED,    /* cuMemHostRegister: the caller's memory */
    GF_MEM_MANAGED,
    GF_MEM_POOL,          /* cuMemAllocAsync */
    GF_MEM_MAPPED,        /* a cuMemMap'ed range */
    GF_MEM_GLOBAL,        /* a module's __device__ variables */
} gf_mem_kind;

typedef struct gf_memhandle {
    gf_obj h;
    int dev;
    int fd;                   /* memfd holding the bytes; mapped MAP_SHARED at each mapping */
    uint64_t size;
    uint64_t charged;         /* VRAM charged here (0 for a handle imported from elsewhere) */
    CUmemAllocationProp prop;
    unsigned long long user_flags;
} gf_memhandle;

typedef struct gf_alloc {
    uint64_t base;
    uint64_t size;            /* what the caller asked for */
    uint64_t footprint;       /* VA taken from the arena (a page multiple) */
    uint64_t charged;         /* VRAM charged to simstate */
    gf_mem_kind kind;
    int dev;
    gf_ctx *ctx;
    unsigned flags;
    int accessible;           /* kernels may touch it (VMM: after cuMemSetAccess) */
    gf_memhandle *mh;         /* GF_MEM_MAPPED */
    uint64_t mh_offset;
    struct gf_pool *pool;
    unsigned long long id;
} gf_alloc;

typedef struct gf_pool {
    gf_obj h;
    int dev;
    uint64_t release_threshold;
    uint64_t used, used_high, reserved_high;
    int reuse_follow, reuse_opportunistic, reuse_internal;
    int is_default;
    CUmemPoolProps props;
} gf_pool;

/* ---- process state ------------------------------------------------------------------------- */

typedef struct gf_drv_state {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int initialized;
    pid_t init_pid;
    gf_simstate *ss;
    unsigned ndev;
    gf_device dev[GF_SIM_MAX_DEVICES];
    /* the arena */
    uint8_t *arena;
    uint64_t arena_size;
    pthread_rwlock_t mem_lock;
    gf_alloc *allocs;         /* sorted by base */
    size_t nallocs, cap_allocs;
    atomic_ullong next_id;
    /* The first kernel fault in this process (CUDA_ERROR_ILLEGAL_ADDRESS, ...). As on NVIDIA's
     * driver it poisons the whole process, not only the faulting context: every call that does
     * device work, in any context, returns it from then on, new contexts cannot be made, and
     * cuDevicePrimaryCtxReset does not bring the device back (cuda.h: "the process must be
     * terminated and relaunched"; measured on an H200 by tests/gpu/run). */
    _Atomic CUresult fault;
} gf_drv_state;

extern gf_drv_state g_drv;

/* Returns CUDA_SUCCESS when cuInit succeeded in this process (and not in a parent before
 * fork), else CUDA_ERROR_NOT_INITIALIZED. */
CUresult gf_drv__check_init(void);

/* The thread's current context (top of its stack) or NULL. */
gf_ctx *gf_drv__current(void);
/* Checks init and fetches the current context: CUDA_ERROR_INVALID_CONTEXT without one,
 * CUDA_ERROR_CONTEXT_IS_DESTROYED when it was destroyed, its sticky error when a kernel
 * failed in it. */
CUresult gf_drv__ctx_enter(gf_ctx **out);
/* Checks a context handle given explicitly (NULL means the current one). */
CUresult gf_drv__ctx_arg(CUcontext h, gf_ctx **out);
/* Marks the context unusable after a failed operation, and with it the process (g_drv.fault)
 * when rc is a kernel fault (gf_cuda_process_fatal). */
void gf_drv__ctx_set_sticky(gf_ctx *c, CUresult rc);
/* Frees everything a context owns after draining its streams; used by destroy and reset. */
void gf_drv__ctx_teardown(gf_ctx *c);

/* Device index check: CUDA_ERROR_INVALID_DEVICE when out of range. */
CUresult gf_drv__dev_check(CUdevice d);
/* One attribute of a device; CUDA_ERROR_INVALID_VALUE for an unknown attribute. */
CUresult gf_drv__dev_attr(int dev, int attr, int *out);

/* Streams. Resolves a CUstream argument (NULL, CU_STREAM_LEGACY, CU_STREAM_PER_THREAD or a
 * handle) to a stream of the current context; ptds selects the per-thread default stream for
 * NULL. */
CUresult gf_drv__stream_arg(CUstream h, int ptds, gf_ctx **ctx_out, gf_stream **out);
/* A new stream of c; locked says whether the caller holds g_drv.lock. */
gf_stream *gf_drv__stream_new(gf_ctx *c, unsigned flags, int priority, int legacy, int locked);
/* Allocates a zeroed op; NULL on OOM. */
gf_op *gf_drv__op_new(gf_op_kind kind);
void gf_drv__op_free(gf_op *op);
/* Queues op at the end of s (adding the implicit legacy-stream dependencies) and returns its
 * seq; the executor thread runs it. Takes ownership of op. */
CUresult gf_drv__enqueue(gf_stream *s, gf_op *op);
/* Runs op on the calling thread once everything queued before it on s (and, for the legacy
 * stream, on the blocking streams) has finished: the path of the synchronous copies. */
CUresult gf_drv__run_sync(gf_stream *s, gf_op *op);
/* Blocks until s has finished everything queued so far. */
void gf_drv__stream_wait_idle(gf_stream *s);
/* Blocks until every stream of c is idle. */
void gf_drv__ctx_wait_idle(gf_ctx *c);
/* Runs one op now (the executor's body); returns the CUresult of a failed kernel or CUDA_SUCCESS. */
CUresult gf_drv__op_exec(gf_ctx *c, gf_op *op);
void gf_drv__stream_destroy(gf_stream *s);

/* Memory. */
int gf_drv__arena_init(char *err, size_t errlen);
/* Finds the allocation containing [p, p+len) (len 0 means just p); copies it into *out. */
int gf_drv__mem_find(uint64_t p, uint64_t len, gf_alloc *out);
/* Kernel access check (gf_ptx_addr_check_fn). */
int gf_drv__mem_check(void *ctx, uint64_t addr, uint64_t len, uint64_t *base, uint64_t *blen);
/* Allocates size bytes of the given kind from the arena, charging VRAM for device kinds. */
CUresult gf_drv__mem_alloc(gf_ctx *c, gf_mem_kind kind, uint64_t size, unsigned flags,
                           struct gf_pool *pool, uint64_t *out);
/* Frees the allocation that starts at p (must be its base; kinds lists accepted kinds as a
 * bit mask of 1 << gf_mem_kind). */
CUresult gf_drv__mem_free(uint64_t p, unsigned kinds);
/* Frees every allocation owned by context c. */
void gf_drv__mem_free_ctx(gf_ctx *c);
/* Checks that a device range [p, p+len) lies inside one allocation usable by the host copy
 * engine: CUDA_ERROR_INVALID_VALUE otherwise. */
CUresult gf_drv__mem_check_range(uint64_t p, uint64_t len);
/* Nonzero when p lies in pinned host memory (cuMemAllocHost/HostAlloc/HostRegister). */
int gf_drv__mem_is_pinned(const void *p, size_t len);

/* Nonzero when context from enabled peer access to a context on dev. */
int gf_drv__peer_enabled(gf_ctx *from, int dev);

/* Modules. */
/* The CUfunction for h, which may be a CUfunction or a CUkernel (instantiated in the current
 * context); CUDA_ERROR_INVALID_HANDLE when neither. */
CUresult gf_drv__func_arg(void *h, gf_ctx *c, gf_function **out);
/* Unloads every module of context c. */
void gf_drv__modules_free_ctx(gf_ctx *c);

/* The monotonic clock in ns. */
uint64_t gf_drv__now(void);

/* Maps an engine status to the CUresult a real driver gives. */
CUresult gf_drv__ptx_rc(gf_ptx_rc rc);

#define GF_DRV_LOCK() pthread_mutex_lock(&g_drv.lock)
#define GF_DRV_UNLOCK() pthread_mutex_unlock(&g_drv.lock)

#define GF_CHECK_INIT()                                                                       \
    do {                                                                                      \
        CUresult rc_init_ = gf_drv__check_init();                                             \
        if (rc_init_ != CUDA_SUCCESS) return rc_init_;                                        \
    } while (0)

/* Defines an exported entry point and its per-thread-default-stream twin, which differ only in
 * what a NULL stream means: name (the legacy stream) and name##_ptsz, or for calls without a
 * stream argument name and name##_ptds. The body is the expression call, in which the local
 * ptds is 0 for the first and 1 for the second. cuda.h declares both, so a params list that
 * does not match the real signature fails to compile. */
#define GF_SIM_API_PT(name, suffix, params, call)                                              \
    GF_SIM_API CUresult name params                                                           \
    {                                                                                         \
        const int ptds = 0;                                                                   \
        return call;                                                                          \
    }                                                                                         \
    GF_SIM_API CUresult name##suffix params                                                   \
    {                                                                                         \
        const int ptds = 1;                                                                   \
        return call;                                                                          \
    }
#define GF_SIM_API_PTSZ(name, params, call) GF_SIM_API_PT(name, _ptsz, params, call)
#define GF_SIM_API_PTDS(name, params, call) GF_SIM_API_PT(name, _ptds, params, call)

#endif
