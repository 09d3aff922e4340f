/* SPDX-License-Identifier: Apache-2.0 */
/* Internal contract of the client library (libgpufuse.so): the real driver's function table,
 * the process state (limiter, device remap), and what each file provides. */
#ifndef GF_CLIENT_H
#define GF_CLIENT_H

#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <stdatomic.h>
#include <stdint.h>

#include "gpufuse/limiter.h"
#include "gpufuse/log.h"

#define GF_EXPORT __attribute__((visibility("default")))
#define GF_CLIENT_LOG "client"

/* The real driver's entry points, one per cuda_api.h symbol; NULL when it lacks one. */
#define GF_CUDA_FN(sym, ret, params, args) typedef ret (*gf_pfn_##sym) params;
#include "cuda_api.h"

typedef struct gf_real_table {
#define GF_CUDA_FN(sym, ret, params, args) gf_pfn_##sym sym;
#include "cuda_api.h"
} gf_real_table;

extern gf_real_table gf_real;

/* Process state, set up once by gf_client_init(). */
typedef struct gf_client {
    atomic_int ready;          /* 1 after init (successful or not) */
    int driver_ok;             /* the real driver was loaded */
    void *driver;              /* its dlopen handle */
    char driver_path[512];
    gf_limiter *lim;           /* NULL: no vGPU, pure pass-through */
    int compute_limited;       /* some slot has a compute fraction */
    int remap;                 /* the vGPU shows only its devices: real remap_devs[i] as i */
    char remap_uuid[GF_LIMITER_MAX_DEVICES * 48]; /* "GPU-...[,GPU-...]" from GPUFUSE_VGPU_UUID */
    CUdevice remap_devs[GF_LIMITER_MAX_DEVICES];  /* slot i -> real ordinal */
    int remap_n;               /* resolved devices (the vGPU's slots, in order) */
    int remap_resolved;
} gf_client;

extern gf_client gf_g;

/* Loads the real driver and attaches the vGPU; idempotent and thread-safe. */
void gf_client_init(void);

static inline void gf_ensure(void)
{
    if (__builtin_expect(!atomic_load_explicit(&gf_g.ready, memory_order_acquire), 0))
        gf_client_init();
}

/* Nonzero while this thread is inside a wrapper: a real driver that calls its own exports
 * through the global scope reaches our symbols again and must then be passed straight through. */
extern _Thread_local int gf_in_wrapper;

/* The limiter slot of a real device ordinal, or -1 when the vGPU does not include it. */
int gf_client_slot(CUdevice dev);
/* The slot of the current context's device (-1: none current / not in the vGPU). */
int gf_client_current_slot(void);
/* Fills "GPU-xxxxxxxx-..." for a real device. */
int gf_client_uuid_string(CUdevice dev, char *buf, size_t len);

/* memory.c: drops accounting of allocations made in ctx (cuCtxDestroy, primary reset). */
void gf_mem_forget_ctx(CUcontext ctx);
/* launch.c: forgets per-context launch state; called before ctx is destroyed. */
void gf_launch_forget_ctx(CUcontext ctx);
/* launch.c: after fork in the child. */
void gf_launch_after_fork(void);
void gf_launch_shutdown(void);

#include "findlib.h"

#endif
