/* SPDX-License-Identifier: Apache-2.0 */
/* The vGPU's view of devices: cuInit (finds the vGPU's GPU), device enumeration limited to it,
 * total and free memory as the vGPU's limit, context teardown, and cuGetProcAddress handing out
 * this library's entry points. */
#include "client.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gpufuse/cuda_procaddr.h"

struct gf_own_fn {
    const char *name;
    void *fn;
    size_t real_off;
};
extern struct gf_own_fn gf_own_fns[];
extern const unsigned gf_own_fn_count;

/* ---- cuInit and the remapped device list --------------------------------------------------- */

/* GPUFUSE_VGPU_UUID is one UUID or a comma-separated list (gpufuse run --server --gpus N):
 * the vGPU's slot i is the i-th UUID, shown to the program as ordinal i. */
static CUresult resolve_remap(void)
{
    int n = 0;
    CUresult r = gf_real.cuDeviceGetCount(&n);
    if (r != CUDA_SUCCESS) return r;
    const char *p = gf_g.remap_uuid;
    int found = 0;
    gf_g.remap_n = 0;
    while (*p && gf_g.remap_n < GF_LIMITER_MAX_DEVICES) {
        size_t len = strcspn(p, ",");
        found = 0;
        for (int i = 0; i < n && !found; i++) {
            CUdevice d;
            char u[96];
            if (gf_real.cuDeviceGet(&d, i) != CUDA_SUCCESS) continue;
            if (gf_client_uuid_string(d, u, sizeof u) == 0 && strlen(u) == len &&
                !strncasecmp(u, p, len)) {
                gf_g.remap_devs[gf_g.remap_n++] = d;
                found = 1;
            }
        }
        if (!found) {
            gf_log(GF_LOG_ERROR, GF_CLIENT_LOG,
                   "GPUFUSE_VGPU_UUID=%s: the driver (%s) has no GPU %.*s among its %d; check "
                   "the vGPU's --gpu and CUDA_VISIBLE_DEVICES",
                   gf_g.remap_uuid, gf_g.driver_path, (int)len, p, n);
            gf_g.remap_n = 0;
            return CUDA_ERROR_NO_DEVICE;
        }
        p += len;
        if (*p == ',') p++;
    }
    gf_g.remap_resolved = gf_g.remap_n > 0;
    return gf_g.remap_resolved ? CUDA_SUCCESS : CUDA_ERROR_NO_DEVICE;
}

GF_EXPORT CUresult cuInit(unsigned int Flags)
{
    gf_ensure();
    if (!gf_g.driver_ok) return CUDA_ERROR_NO_DEVICE;
    CUresult r = gf_real.cuInit(Flags);
    if (r != CUDA_SUCCESS || !gf_g.remap || gf_g.remap_resolved) return r;
    return resolve_remap();
}

GF_EXPORT CUresult cuDeviceGetCount(int *count)
{
    gf_ensure();
    if (!gf_g.remap || gf_in_wrapper) return gf_real.cuDeviceGetCount(count);
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    if (!gf_g.remap_resolved) {
        CUresult r = gf_real.cuDeviceGetCount(count); /* NOT_INITIALIZED before cuInit */
        if (r != CUDA_SUCCESS) return r;
    }
    *count = gf_g.remap_resolved ? gf_g.remap_n : 0;
    return CUDA_SUCCESS;
}

GF_EXPORT CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
    gf_ensure();
    if (!gf_g.remap || gf_in_wrapper) return gf_real.cuDeviceGet(device, ordinal);
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    if (!gf_g.remap_resolved) {
        CUresult r = gf_real.cuDeviceGet(device, ordinal);
        if (r != CUDA_SUCCESS) return r;
        return CUDA_ERROR_INVALID_DEVICE;
    }
    if (ordinal < 0 || ordinal >= gf_g.remap_n) return CUDA_ERROR_INVALID_DEVICE;
    *device = gf_g.remap_devs[ordinal];
    return CUDA_SUCCESS;
}

/* ---- memory totals ------------------------------------------------------------------------- */

/* The vGPU's (total, free) for slot, given the real ones. */
static void vgpu_view(int slot, uint64_t *free_b, uint64_t *total_b)
{
    if (!gf_g.lim || slot < 0) return;
    uint64_t used, limit;
    gf_limiter_mem_info(gf_g.lim, (unsigned)slot, &used, &limit);
    if (!limit) return;
    uint64_t f = used >= limit ? 0 : limit - used;
    if (f > *free_b) f = *free_b;
    *free_b = f;
    *total_b = limit;
}

GF_EXPORT CUresult cuMemGetInfo_v2(size_t *free_b, size_t *total_b)
{
    gf_ensure();
    CUresult r = gf_real.cuMemGetInfo_v2(free_b, total_b);
    if (r != CUDA_SUCCESS || gf_in_wrapper || !gf_g.lim) return r;
    uint64_t f = *free_b, t = *total_b;
    vgpu_view(gf_client_current_slot(), &f, &t);
    *free_b = (size_t)f;
    *total_b = (size_t)t;
    return r;
}

GF_EXPORT CUresult cuMemGetInfo(unsigned int *free_b, unsigned int *total_b)
{
    gf_ensure();
    if (!free_b || !total_b) return gf_real.cuMemGetInfo(free_b, total_b);
    size_t f, t;
    CUresult r = cuMemGetInfo_v2(&f, &t);
    if (r != CUDA_SUCCESS) return r;
    *free_b = f > 0xffffffffu ? 0xffffffffu : (unsigned)f;
    *total_b = t > 0xffffffffu ? 0xffffffffu : (unsigned)t;
    return r;
}

GF_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    gf_ensure();
    CUresult r = gf_real.cuDeviceTotalMem_v2(bytes, dev);
    if (r != CUDA_SUCCESS || gf_in_wrapper || !gf_g.lim) return r;
    uint64_t f = *bytes, t = *bytes;
    vgpu_view(gf_client_slot(dev), &f, &t);
    *bytes = (size_t)t;
    return r;
}

GF_EXPORT CUresult cuDeviceTotalMem(unsigned int *bytes, CUdevice dev)
{
    gf_ensure();
    if (!bytes) return gf_real.cuDeviceTotalMem(bytes, dev);
    size_t t;
    CUresult r = cuDeviceTotalMem_v2(&t, dev);
    if (r == CUDA_SUCCESS) *bytes = t > 0xffffffffu ? 0xffffffffu : (unsigned)t;
    return r;
}

/* ---- context teardown: what the driver frees with a context stops counting ----------------- */

GF_EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    gf_ensure();
    if (!gf_in_wrapper) gf_launch_forget_ctx(ctx);
    CUresult r = gf_real.cuCtxDestroy_v2(ctx);
    if (r == CUDA_SUCCESS && !gf_in_wrapper) gf_mem_forget_ctx(ctx);
    return r;
}

GF_EXPORT CUresult cuCtxDestroy(CUcontext ctx)
{
    gf_ensure();
    if (!gf_in_wrapper) gf_launch_forget_ctx(ctx);
    CUresult r = gf_real.cuCtxDestroy(ctx);
    if (r == CUDA_SUCCESS && !gf_in_wrapper) gf_mem_forget_ctx(ctx);
    return r;
}

static CUresult primary_reset(CUresult (*reset)(CUdevice), CUdevice dev)
{
    gf_ensure();
    CUcontext pctx = NULL;
    unsigned flags = 0;
    int active = 0;
    if (!gf_in_wrapper && gf_real.cuDevicePrimaryCtxGetState &&
        gf_real.cuDevicePrimaryCtxGetState(dev, &flags, &active) == CUDA_SUCCESS && active &&
        gf_real.cuDevicePrimaryCtxRetain(&pctx, dev) == CUDA_SUCCESS) {
        gf_real.cuDevicePrimaryCtxRelease_v2(dev);
        gf_launch_forget_ctx(pctx);
    }
    CUresult r = reset(dev);
    if (r == CUDA_SUCCESS && pctx) gf_mem_forget_ctx(pctx);
    return r;
}

GF_EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    gf_ensure();
    return primary_reset(gf_real.cuDevicePrimaryCtxReset_v2, dev);
}

GF_EXPORT CUresult cuDevicePrimaryCtxReset(CUdevice dev)
{
    gf_ensure();
    return primary_reset(gf_real.cuDevicePrimaryCtxReset, dev);
}

/* ---- cuGetProcAddress ---------------------------------------------------------------------- */

static int own_cmp(const void *a, const void *b)
{
    return strcmp(((const struct gf_own_fn *)a)->name, ((const struct gf_own_fn *)b)->name);
}

static atomic_int own_sorted;
static pthread_mutex_t own_lock = PTHREAD_MUTEX_INITIALIZER;

/* Our function for an exported symbol, when the real driver has that symbol too. */
static void *own_fn(const char *sym)
{
    if (!atomic_load_explicit(&own_sorted, memory_order_acquire)) {
        pthread_mutex_lock(&own_lock);
        if (!atomic_load(&own_sorted)) {
            qsort(gf_own_fns, gf_own_fn_count, sizeof gf_own_fns[0], own_cmp);
            atomic_store_explicit(&own_sorted, 1, memory_order_release);
        }
        pthread_mutex_unlock(&own_lock);
    }
    struct gf_own_fn key = {sym, NULL, 0};
    struct gf_own_fn *f = bsearch(&key, gf_own_fns, gf_own_fn_count, sizeof key, own_cmp);
    if (!f) return NULL;
    void *real = *(void **)((char *)&gf_real + f->real_off);
    return real ? f->fn : NULL;
}

GF_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
                                       cuuint64_t flags, CUdriverProcAddressQueryResult *status)
{
    gf_ensure();
    if (!gf_real.cuGetProcAddress_v2) return gf_g.driver_ok ? CUDA_ERROR_NOT_SUPPORTED
                                                            : CUDA_ERROR_NOT_INITIALIZED;
    if (symbol && pfn && !gf_in_wrapper) {
        const char *sym = NULL;
        if (gf_cuda_procaddr_resolve(symbol, cudaVersion, flags, &sym) == GF_PROCADDR_FOUND) {
            void *f = own_fn(sym);
            if (f) {
                /* Let the real driver validate version and flags first. */
                void *realp = NULL;
                CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SUCCESS;
                CUresult r = gf_real.cuGetProcAddress_v2(symbol, &realp, cudaVersion, flags, &st);
                if (r == CUDA_SUCCESS && st == CU_GET_PROC_ADDRESS_SUCCESS) {
                    *pfn = f;
                    if (status) *status = CU_GET_PROC_ADDRESS_SUCCESS;
                    return CUDA_SUCCESS;
                }
                if (status) *status = st;
                *pfn = NULL;
                return r;
            }
        }
    }
    return gf_real.cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, status);
}

GF_EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion,
                                    cuuint64_t flags)
{
    gf_ensure();
    if (!gf_real.cuGetProcAddress_v2 && gf_real.cuGetProcAddress)
        return gf_real.cuGetProcAddress(symbol, pfn, cudaVersion, flags);
    return cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, NULL);
}
