/* SPDX-License-Identifier: Apache-2.0 */
/* Internal contract between the files of gpufuse's CUDA runtime (libcudart.so.13): the driver
 * table, per-device and per-thread state, error recording and the kernel/variable registry.
 *
 * The runtime sits on whatever libcuda.so.1 the dynamic loader finds (the sim, gpufuse's client
 * library, a real driver). It dlopen()s it on first use and resolves the exact ABI symbols it
 * calls (cuMemAlloc_v2, ...) with dlsym; a symbol the driver lacks makes the runtime calls that
 * need it return cudaErrorNotSupported. As NVIDIA's runtime does, it uses each device's primary
 * context, retained once per process and made current per thread on the first call that needs it.
 *
 * Streams: a cudaStream_t is a CUstream and a cudaEvent_t a CUevent. Stream 0 means the legacy
 * default stream in the plain entry points and the calling thread's per-thread default stream
 * in the _ptsz/_ptds ones; gf_rt__stream() turns that into the driver's handle.
 *
 * Errors: every exported function returns through gf_rt__ret(), which records a failure as the
 * thread's last error (cudaGetLastError), except cudaErrorNotReady, which CUDA never records.
 * Errors that leave a context unusable (a kernel's illegal address, ...) are also stored per
 * device and returned by every later call on it until cudaDeviceReset.
 */
#ifndef GF_CUDART_H
#define GF_CUDART_H

#ifndef __CUDA_API_VERSION_INTERNAL
#define __CUDA_API_VERSION_INTERNAL 1
#endif
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "gpufuse/log.h"

#define GF_RT_API __attribute__((visibility("default")))
#define GF_RT_LOG "cudart"
#define GF_RT_MAX_DEVICES 64

/* ---- the driver table ---------------------------------------------------------------------- */

/* Every driver symbol the runtime calls, by its exported (ABI-exact) name. */
#define GF_RT_DRIVER_FNS(X)                                                                   \
    X(cuInit) X(cuDriverGetVersion) X(cuGetErrorName) X(cuGetProcAddress_v2)                  \
    X(cuDeviceGetCount) X(cuDeviceGet) X(cuDeviceGetName) X(cuDeviceGetAttribute)             \
    X(cuDeviceTotalMem_v2) X(cuDeviceGetUuid_v2) X(cuDeviceCanAccessPeer)                     \
    X(cuDeviceGetPCIBusId)                                                                    \
    X(cuDevicePrimaryCtxRetain) X(cuDevicePrimaryCtxRelease_v2) X(cuDevicePrimaryCtxReset_v2) \
    X(cuDevicePrimaryCtxSetFlags_v2) X(cuDevicePrimaryCtxGetState)                            \
    X(cuCtxSetCurrent) X(cuCtxGetCurrent) X(cuCtxSynchronize) X(cuCtxGetLimit) X(cuCtxSetLimit)  \
    X(cuCtxGetStreamPriorityRange) X(cuCtxEnablePeerAccess) X(cuCtxDisablePeerAccess)          \
    X(cuMemAlloc_v2) X(cuMemFree_v2) X(cuMemAllocHost_v2) X(cuMemHostAlloc) X(cuMemFreeHost)   \
    X(cuMemAllocManaged) X(cuMemAllocPitch_v2) X(cuMemAllocAsync) X(cuMemFreeAsync)            \
    X(cuMemHostRegister_v2) X(cuMemHostUnregister) X(cuMemHostGetDevicePointer_v2)             \
    X(cuMemHostGetFlags) X(cuMemGetInfo_v2) X(cuMemGetAddressRange_v2)                        \
    X(cuMemcpy) X(cuMemcpyAsync) X(cuMemcpyHtoD_v2) X(cuMemcpyDtoH_v2) X(cuMemcpyDtoD_v2)     \
    X(cuMemcpyHtoDAsync_v2) X(cuMemcpyDtoHAsync_v2) X(cuMemcpyDtoDAsync_v2)                   \
    X(cuMemcpy2D_v2) X(cuMemcpy2DAsync_v2) X(cuMemcpyPeer) X(cuMemcpyPeerAsync)               \
    X(cuMemsetD8_v2) X(cuMemsetD8Async) X(cuMemsetD2D8_v2) X(cuMemsetD2D8Async)               \
    X(cuPointerGetAttribute) X(cuPointerGetAttributes) X(cuMemPrefetchAsync_v2)               \
    X(cuStreamCreate) X(cuStreamCreateWithPriority) X(cuStreamDestroy_v2)                     \
    X(cuStreamSynchronize) X(cuStreamQuery) X(cuStreamWaitEvent) X(cuStreamGetFlags)           \
    X(cuStreamGetPriority) X(cuStreamGetId) X(cuStreamGetDevice) X(cuStreamAddCallback)       \
    X(cuLaunchHostFunc)                                                                       \
    X(cuEventCreate) X(cuEventDestroy_v2) X(cuEventRecord) X(cuEventRecordWithFlags)          \
    X(cuEventSynchronize) X(cuEventQuery) X(cuEventElapsedTime_v2) X(cuEventElapsedTime)      \
    X(cuLibraryLoadData) X(cuLibraryUnload) X(cuLibraryGetKernel) X(cuLibraryGetGlobal)        \
    X(cuLibraryGetManaged) X(cuKernelGetFunction) X(cuKernelGetAttribute)                     \
    X(cuKernelSetAttribute) X(cuFuncGetAttribute) X(cuFuncSetAttribute)                       \
    X(cuFuncSetCacheConfig) X(cuLaunchKernel) X(cuLaunchKernelEx)                              \
    X(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags)                                   \
    X(cuOccupancyAvailableDynamicSMemPerBlock)

#define GF_RT_PFN(sym) typedef __typeof__(&sym) gf_rt_pfn_##sym;
GF_RT_DRIVER_FNS(GF_RT_PFN)
#undef GF_RT_PFN

typedef struct gf_rt_driver {
#define GF_RT_SLOT(sym) gf_rt_pfn_##sym sym;
    GF_RT_DRIVER_FNS(GF_RT_SLOT)
#undef GF_RT_SLOT
} gf_rt_driver;

/* Calls a driver function, or answers CUDA_ERROR_NOT_SUPPORTED when the loaded libcuda.so.1
 * does not export it. */
#define CU(sym, ...) (gf_rt.drv.sym ? gf_rt.drv.sym(__VA_ARGS__) : CUDA_ERROR_NOT_SUPPORTED)

/* ---- process and thread state -------------------------------------------------------------- */

typedef struct gf_rt_device {
    pthread_mutex_t lock;
    CUcontext ctx;             /* the retained primary context; NULL before use and after reset */
    atomic_uint epoch;         /* bumps at cudaDeviceReset: threads re-fetch the context */
    unsigned flags;            /* cudaSetDeviceFlags, applied at the next retain */
    int eager_done;            /* CUDA_MODULE_LOADING=EAGER: modules instantiated in ctx */
    /* launch limits, read once at the first retain */
    int max_threads, max_block[3], max_grid[3], max_shmem; /* launch limits (check_geometry) */
} gf_rt_device;

typedef struct gf_rt_state {
    pthread_once_t once;
    cudaError_t init_err;      /* cudaSuccess once the driver is loaded and cuInit succeeded */
    void *dl;
    gf_rt_driver drv;
    int ndev;
    int eager;                 /* CUDA_MODULE_LOADING=EAGER */
    gf_rt_device dev[GF_RT_MAX_DEVICES];
} gf_rt_state;

extern gf_rt_state gf_rt;

#define GF_RT_MAX_CONFIGS 16

typedef struct gf_rt_config {
    dim3 grid, block;
    size_t shmem;
    cudaStream_t stream;
} gf_rt_config;

typedef struct gf_rt_thread {
    int dev;                   /* cudaSetDevice, default 0 */
    CUcontext cur;             /* the context this thread made current, NULL until first use */
    unsigned epoch;            /* gf_rt.dev[dev].epoch when cur was set */
    cudaError_t last;          /* cudaGetLastError */
    int ncfg;                  /* <<<>>> configurations pushed and not yet popped */
    gf_rt_config cfg[GF_RT_MAX_CONFIGS];
} gf_rt_thread;

extern __thread gf_rt_thread gf_rt_tls;

/* Loads the driver and runs cuInit once per process; returns cudaErrorInsufficientDriver when no
 * libcuda.so.1 can be loaded, cudaErrorNoDevice when it has no device, else cudaSuccess. */
cudaError_t gf_rt__init(void);

/* Makes the thread's device's primary context current (retaining it on first use), the
 * prerequisite of every call that touches a device. Fast when nothing changed. */
cudaError_t gf_rt__ctx_slow(void);
static inline cudaError_t gf_rt__ctx(void)
{
    gf_rt_thread *t = &gf_rt_tls;
    if (__builtin_expect(t->cur != NULL, 1) &&
        t->epoch == atomic_load_explicit(&gf_rt.dev[t->dev].epoch, memory_order_acquire))
        return cudaSuccess;
    return gf_rt__ctx_slow();
}

/* The primary context of device dev, retained (for peer copies); NULL with *err set. */
CUcontext gf_rt__device_ctx(int dev, cudaError_t *err);

/* Releases and resets the current device's primary context (cudaDeviceReset). */
cudaError_t gf_rt__device_reset(int dev);

/* ---- errors -------------------------------------------------------------------------------- */

/* The cudaError_t for a driver result (same numbers where CUDA has the code, else
 * cudaErrorUnknown). */
cudaError_t gf_rt__err(CUresult rc);

/* Records e as the thread's last error unless it is cudaSuccess or cudaErrorNotReady, and
 * returns it: every exported function returns through this. */
static inline cudaError_t gf_rt__ret(cudaError_t e)
{
    if (__builtin_expect(e != cudaSuccess, 0) && e != cudaErrorNotReady) gf_rt_tls.last = e;
    return e;
}
#define GF_RT_CU(call) gf_rt__ret(gf_rt__err(call))

/* Evaluates to the error of gf_rt__ctx() and returns it (recorded) from the calling function. */
#define GF_RT_ENTER()                                                                         \
    do {                                                                                      \
        cudaError_t e_enter_ = gf_rt__ctx();                                                  \
        if (__builtin_expect(e_enter_ != cudaSuccess, 0)) return gf_rt__ret(e_enter_);        \
    } while (0)

/* Logs once per name that a runtime function is not implemented (used by the generated stubs). */
void gf_cudart__unsupported(const char *symbol);

/* ---- streams ------------------------------------------------------------------------------- */

/* The driver stream for a runtime stream: 0 is the legacy default stream, or the thread's
 * per-thread default stream when ptsz (the _ptsz/_ptds entry points). */
static inline CUstream gf_rt__stream(cudaStream_t s, int ptsz)
{
    if (s == NULL) return ptsz ? CU_STREAM_PER_THREAD : NULL;
    return (CUstream)s;
}

/* ---- registry of kernels and variables (register.c) ---------------------------------------- */

typedef struct gf_rt_module gf_rt_module;

typedef struct gf_rt_func {
    const void *host;          /* the host stub's address: what <<<>>> and cudaLaunchKernel pass */
    const char *name;          /* the mangled device name */
    gf_rt_module *mod;
    CUkernel kernel;           /* set when the module is loaded */
} gf_rt_func;

typedef struct gf_rt_var {
    const void *host;          /* the host shadow's address (cudaMemcpyToSymbol's symbol) */
    const char *name;
    gf_rt_module *mod;
    size_t size;
    int constant;
    void **managed;            /* __managed__: the host pointer nvcc's code reads through */
    CUdeviceptr addr[GF_RT_MAX_DEVICES];
    unsigned epoch[GF_RT_MAX_DEVICES]; /* gf_rt.dev[d].epoch + 1 when addr[d] is valid */
} gf_rt_var;

/* The registered kernel for a host function address, or for a cudaKernel_t we handed out;
 * loads its module on first use. cudaErrorInvalidResourceHandle when unknown; the module's
 * load error (cudaErrorNoKernelImageForDevice, cudaErrorInvalidPtx, ...) when it cannot load. */
cudaError_t gf_rt__func(const void *host_or_kernel, gf_rt_func **out);

/* The kernel's CUfunction in the current context (the caller did gf_rt__ctx()). */
cudaError_t gf_rt__func_handle(gf_rt_func *f, CUfunction *out);

/* The device address and size of a registered __device__/__constant__ variable in the current
 * context; cudaErrorInvalidSymbol when symbol is not one. */
cudaError_t gf_rt__symbol(const void *symbol, CUdeviceptr *addr, size_t *size);

/* Loads every registered module and instantiates its kernels in the current context
 * (CUDA_MODULE_LOADING=EAGER). */
void gf_rt__load_all(void);

/* Copies (memory.c), shared with the symbol functions. */
cudaError_t gf_rt__memcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
                          cudaStream_t stream, int ptsz, int async);

#endif
