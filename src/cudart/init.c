/* SPDX-License-Identifier: Apache-2.0 */
/* Runtime start-up: loading libcuda.so.1, the per-device primary contexts made current per
 * thread, and the mapping of driver results to runtime errors. */
#include "cudart.h"

#include "gpufuse/cuda_faults.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

gf_rt_state gf_rt = {.once = PTHREAD_ONCE_INIT};
__thread gf_rt_thread gf_rt_tls;

static void resolve_driver(void)
{
#define GF_RT_RESOLVE(sym)                                                                    \
    gf_rt.drv.sym = (gf_rt_pfn_##sym)dlsym(gf_rt.dl, #sym);                                   \
    if (!gf_rt.drv.sym) gf_log(GF_LOG_DEBUG, GF_RT_LOG, "libcuda.so.1 has no %s", #sym);
    GF_RT_DRIVER_FNS(GF_RT_RESOLVE)
#undef GF_RT_RESOLVE
}

static void init_once(void)
{
    for (int d = 0; d < GF_RT_MAX_DEVICES; d++) pthread_mutex_init(&gf_rt.dev[d].lock, NULL);
    const char *ml = getenv("CUDA_MODULE_LOADING");
    gf_rt.eager = ml && !strcmp(ml, "EAGER");

    gf_rt.dl = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (!gf_rt.dl) {
        gf_log(GF_LOG_ERROR, GF_RT_LOG,
               "cannot load libcuda.so.1 (%s): install the NVIDIA driver, or put gpufuse's sim "
               "(build/lib/sim) or client library on LD_LIBRARY_PATH",
               dlerror());
        gf_rt.init_err = cudaErrorInsufficientDriver;
        return;
    }
    resolve_driver();
    if (!gf_rt.drv.cuInit || !gf_rt.drv.cuDeviceGetCount || !gf_rt.drv.cuDevicePrimaryCtxRetain) {
        gf_log(GF_LOG_ERROR, GF_RT_LOG,
               "the loaded libcuda.so.1 lacks cuInit/cuDeviceGetCount/cuDevicePrimaryCtxRetain");
        gf_rt.init_err = cudaErrorInsufficientDriver;
        return;
    }
    CUresult rc = gf_rt.drv.cuInit(0);
    if (rc == CUDA_SUCCESS) rc = gf_rt.drv.cuDeviceGetCount(&gf_rt.ndev);
    if (rc != CUDA_SUCCESS) {
        gf_rt.init_err = rc == CUDA_ERROR_NO_DEVICE ? cudaErrorNoDevice : gf_rt__err(rc);
        gf_log(GF_LOG_WARN, GF_RT_LOG, "cuInit failed: CUresult %d", (int)rc);
        return;
    }
    if (gf_rt.ndev > GF_RT_MAX_DEVICES) gf_rt.ndev = GF_RT_MAX_DEVICES;
    gf_rt.init_err = gf_rt.ndev > 0 ? cudaSuccess : cudaErrorNoDevice;
}

cudaError_t gf_rt__init(void)
{
    pthread_once(&gf_rt.once, init_once);
    return gf_rt.init_err;
}

static void read_limits(gf_rt_device *d, CUdevice dev)
{
    static const CUdevice_attribute a[8] = {
        CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X,
        CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y,       CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z,
        CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X,        CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y,
        CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z,        CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
    };
    int v[8] = {1024, 1024, 1024, 64, 2147483647, 65535, 65535, 48 * 1024};
    for (int i = 0; i < 8; i++) {
        int x;
        if (CU(cuDeviceGetAttribute, &x, a[i], dev) == CUDA_SUCCESS && x > 0) v[i] = x;
    }
    d->max_threads = v[0];
    for (int i = 0; i < 3; i++) {
        d->max_block[i] = v[1 + i];
        d->max_grid[i] = v[4 + i];
    }
    d->max_shmem = v[7];
}

/* Retains device dev's primary context once per process (under its lock). */
static cudaError_t retain_locked(int dev, gf_rt_device *d)
{
    if (d->ctx) return cudaSuccess;
    CUdevice cudev;
    CUresult rc = CU(cuDeviceGet, &cudev, dev);
    if (rc != CUDA_SUCCESS) return gf_rt__err(rc);
    if (d->flags) {
        rc = CU(cuDevicePrimaryCtxSetFlags_v2, cudev, d->flags);
        if (rc != CUDA_SUCCESS)
            gf_log(GF_LOG_DEBUG, GF_RT_LOG, "cuDevicePrimaryCtxSetFlags(%u): %d", d->flags, rc);
    }
    CUcontext c;
    rc = gf_rt.drv.cuDevicePrimaryCtxRetain(&c, cudev);
    if (rc == CUDA_ERROR_OUT_OF_MEMORY) return cudaErrorMemoryAllocation;
    /* A kernel fault poisoned the process: after cudaDeviceReset the context cannot be made
     * again, which NVIDIA's runtime reports as cudaErrorDevicesUnavailable (seen on an H200). */
    if (gf_cuda_process_fatal(rc))
        return cudaErrorDevicesUnavailable;
    if (rc != CUDA_SUCCESS) return gf_rt__err(rc);
    read_limits(d, cudev);
    d->eager_done = 0;
    d->ctx = c;
    return cudaSuccess;
}

CUcontext gf_rt__device_ctx(int dev, cudaError_t *err)
{
    *err = gf_rt__init();
    if (*err != cudaSuccess) return NULL;
    if (dev < 0 || dev >= gf_rt.ndev) {
        *err = cudaErrorInvalidDevice;
        return NULL;
    }
    gf_rt_device *d = &gf_rt.dev[dev];
    pthread_mutex_lock(&d->lock);
    *err = retain_locked(dev, d);
    CUcontext c = d->ctx;
    pthread_mutex_unlock(&d->lock);
    return c;
}

cudaError_t gf_rt__ctx_slow(void)
{
    gf_rt_thread *t = &gf_rt_tls;
    cudaError_t e = gf_rt__init();
    if (e != cudaSuccess) return e;
    if (t->dev < 0 || t->dev >= gf_rt.ndev) return cudaErrorInvalidDevice;
    gf_rt_device *d = &gf_rt.dev[t->dev];
    pthread_mutex_lock(&d->lock);
    e = retain_locked(t->dev, d);
    CUcontext c = d->ctx;
    unsigned epoch = atomic_load(&d->epoch);
    int eager = gf_rt.eager && !d->eager_done;
    if (eager) d->eager_done = 1;
    pthread_mutex_unlock(&d->lock);
    if (e != cudaSuccess) return e;
    CUresult rc = CU(cuCtxSetCurrent, c);
    if (rc != CUDA_SUCCESS) return gf_rt__err(rc);
    t->cur = c;
    t->epoch = epoch;
    if (eager) gf_rt__load_all();
    return cudaSuccess;
}

cudaError_t gf_rt__device_reset(int dev)
{
    gf_rt_device *d = &gf_rt.dev[dev];
    pthread_mutex_lock(&d->lock);
    cudaError_t e = cudaSuccess;
    if (d->ctx) {
        CUdevice cudev;
        CUresult rc = CU(cuDeviceGet, &cudev, dev);
        if (rc == CUDA_SUCCESS) rc = CU(cuDevicePrimaryCtxRelease_v2, cudev);
        if (rc == CUDA_SUCCESS) rc = CU(cuDevicePrimaryCtxReset_v2, cudev);
        if (rc != CUDA_SUCCESS) e = gf_rt__err(rc);
        d->ctx = NULL;
    }
    atomic_fetch_add(&d->epoch, 1);
    pthread_mutex_unlock(&d->lock);
    if (gf_rt_tls.dev == dev) {
        gf_rt_tls.cur = NULL;
        CU(cuCtxSetCurrent, NULL);
    }
    return e;
}

/* ---- errors -------------------------------------------------------------------------------- */

static int is_runtime_error(int v)
{
    switch (v) {
#define GF_CUDART_ERR(name, value, desc) case value:
#include "cudart_errors.h"
        return 1;
    default:
        return 0;
    }
}

cudaError_t gf_rt__err(CUresult rc)
{
    if (__builtin_expect(rc == CUDA_SUCCESS, 1)) return cudaSuccess;
    cudaError_t e;
    switch (rc) {
    case CUDA_ERROR_NOT_INITIALIZED: e = cudaErrorInitializationError; break;
    case CUDA_ERROR_OUT_OF_MEMORY: e = cudaErrorMemoryAllocation; break;
    default: e = is_runtime_error((int)rc) ? (cudaError_t)rc : cudaErrorUnknown; break;
    }
    return e;
}

void gf_cudart__unsupported(const char *symbol)
{
    /* Once per name: the stubs pass distinct string literals, so pointers identify names. */
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static const char *seen[512];
    static unsigned nseen;
    int first = 1;
    pthread_mutex_lock(&lock);
    for (unsigned i = 0; i < nseen; i++)
        if (seen[i] == symbol) first = 0;
    if (first && nseen < sizeof seen / sizeof seen[0]) seen[nseen++] = symbol;
    pthread_mutex_unlock(&lock);
    if (first)
        gf_log(GF_LOG_WARN, GF_RT_LOG,
               "%s is not implemented by gpufuse's CUDA runtime; returning cudaErrorNotSupported",
               symbol);
}
