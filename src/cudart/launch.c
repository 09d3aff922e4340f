/* SPDX-License-Identifier: Apache-2.0 */
/* Kernel launch: the <<<>>> configuration stack, __cudaLaunchKernel (what nvcc 13's launch
 * stubs call), cudaLaunchKernel/ExC, kernel attributes and the occupancy calculators.
 *
 * The launch path allocates nothing and takes no lock: a thread-local configuration stack, the
 * fast context check of gf_rt__ctx(), a geometry check against limits read once per device, and
 * one cuLaunchKernel with the CUkernel passed where a CUfunction is expected (the driver
 * instantiates it in the current context), as NVIDIA's runtime does.
 */
#include "cudart.h"

#include <string.h>

GF_RT_API unsigned __cudaPushCallConfiguration(dim3 gridDim, dim3 blockDim, size_t sharedMem,
                                               struct CUstream_st *stream)
{
    gf_rt_thread *t = &gf_rt_tls;
    if (t->ncfg == GF_RT_MAX_CONFIGS) return 1;
    t->cfg[t->ncfg++] = (gf_rt_config){gridDim, blockDim, sharedMem, stream};
    return 0;
}

GF_RT_API cudaError_t __cudaPopCallConfiguration(dim3 *gridDim, dim3 *blockDim, size_t *sharedMem,
                                                 void *stream)
{
    gf_rt_thread *t = &gf_rt_tls;
    if (t->ncfg == 0) return gf_rt__ret(cudaErrorMissingConfiguration);
    gf_rt_config *c = &t->cfg[--t->ncfg];
    *gridDim = c->grid;
    *blockDim = c->block;
    *sharedMem = c->shmem;
    *(cudaStream_t *)stream = c->stream;
    return cudaSuccess;
}

/* A geometry the device cannot run: cudaErrorInvalidValue, as NVIDIA's CUDA 13 runtime answers
 * (the driver's CUDA_ERROR_INVALID_VALUE; seen on an H200 by tests/gpu/run), without a call. */
static inline cudaError_t check_geometry(dim3 g, dim3 b, size_t shmem)
{
    const gf_rt_device *d = &gf_rt.dev[gf_rt_tls.dev];
    if (__builtin_expect(!g.x || !g.y || !g.z || !b.x || !b.y || !b.z, 0))
        return cudaErrorInvalidValue;
    if (__builtin_expect(b.x > (unsigned)d->max_block[0] || b.y > (unsigned)d->max_block[1] ||
                             b.z > (unsigned)d->max_block[2] ||
                             (uint64_t)b.x * b.y * b.z > (uint64_t)d->max_threads ||
                             g.x > (unsigned)d->max_grid[0] || g.y > (unsigned)d->max_grid[1] ||
                             g.z > (unsigned)d->max_grid[2] || shmem > (size_t)d->max_shmem,
                         0))
        return cudaErrorInvalidValue;
    return cudaSuccess;
}

static inline cudaError_t launch(CUkernel k, dim3 g, dim3 b, void **args, size_t shmem,
                                 cudaStream_t stream, int ptsz)
{
    GF_RT_ENTER();
    cudaError_t e = check_geometry(g, b, shmem);
    if (e != cudaSuccess) return gf_rt__ret(e);
    CUresult rc = CU(cuLaunchKernel, (CUfunction)k, g.x, g.y, g.z, b.x, b.y, b.z,
                     (unsigned)shmem, gf_rt__stream(stream, ptsz), args, NULL);
    if (__builtin_expect(rc != CUDA_SUCCESS, 0)) return gf_rt__ret(gf_rt__err(rc));
    return cudaSuccess;
}

GF_RT_API cudaError_t __cudaGetKernel(cudaKernel_t *kernel, const void *func)
{
    gf_rt_func *f;
    cudaError_t e = gf_rt__func(func, &f);
    if (e != cudaSuccess) return gf_rt__ret(e);
    *kernel = (cudaKernel_t)f->kernel;
    return cudaSuccess;
}

GF_RT_API cudaError_t cudaGetKernel(cudaKernel_t *kernelPtr, const void *entryFuncAddr)
{
    if (!kernelPtr) return gf_rt__ret(cudaErrorInvalidValue);
    return __cudaGetKernel(kernelPtr, entryFuncAddr);
}

/* A launch site whose __cudaGetKernel failed passes a NULL kernel: report why. */
static cudaError_t null_kernel(void)
{
    cudaError_t e = gf_rt__init();
    return gf_rt__ret(e != cudaSuccess ? e : cudaErrorInvalidDeviceFunction);
}

GF_RT_API cudaError_t __cudaLaunchKernel(cudaKernel_t kernel, dim3 gridDim, dim3 blockDim,
                                         void **args, size_t sharedMem, cudaStream_t stream)
{
    if (__builtin_expect(!kernel, 0)) return null_kernel();
    return launch((CUkernel)kernel, gridDim, blockDim, args, sharedMem, stream, 0);
}

GF_RT_API cudaError_t __cudaLaunchKernel_ptsz(cudaKernel_t kernel, dim3 gridDim, dim3 blockDim,
                                              void **args, size_t sharedMem, cudaStream_t stream)
{
    if (__builtin_expect(!kernel, 0)) return null_kernel();
    return launch((CUkernel)kernel, gridDim, blockDim, args, sharedMem, stream, 1);
}

static cudaError_t launch_func(const void *func, dim3 g, dim3 b, void **args, size_t shmem,
                               cudaStream_t stream, int ptsz)
{
    gf_rt_func *f;
    cudaError_t e = gf_rt__func(func, &f);
    if (e != cudaSuccess) return gf_rt__ret(e);
    return launch(f->kernel, g, b, args, shmem, stream, ptsz);
}

GF_RT_API cudaError_t cudaLaunchKernel(const void *func, dim3 gridDim, dim3 blockDim, void **args,
                                       size_t sharedMem, cudaStream_t stream)
{
    return launch_func(func, gridDim, blockDim, args, sharedMem, stream, 0);
}

GF_RT_API cudaError_t cudaLaunchKernel_ptsz(const void *func, dim3 gridDim, dim3 blockDim,
                                            void **args, size_t sharedMem, cudaStream_t stream)
{
    return launch_func(func, gridDim, blockDim, args, sharedMem, stream, 1);
}

/* cudaLaunchAttribute and CUlaunchAttribute share their layout and ids. */
_Static_assert(sizeof(cudaLaunchAttribute) == sizeof(CUlaunchAttribute),
               "cudaLaunchAttribute and CUlaunchAttribute differ");

static cudaError_t launch_ex(const cudaLaunchConfig_t *config, const void *func, void **args,
                             int ptsz)
{
    if (!config) return gf_rt__ret(cudaErrorInvalidValue);
    if (config->numAttrs == 0)
        return launch_func(func, config->gridDim, config->blockDim, args,
                           config->dynamicSmemBytes, config->stream, ptsz);
    gf_rt_func *f;
    cudaError_t e = gf_rt__func(func, &f);
    if (e != cudaSuccess) return gf_rt__ret(e);
    GF_RT_ENTER();
    e = check_geometry(config->gridDim, config->blockDim, config->dynamicSmemBytes);
    if (e != cudaSuccess) return gf_rt__ret(e);
    CUlaunchConfig c = {
        .gridDimX = config->gridDim.x,
        .gridDimY = config->gridDim.y,
        .gridDimZ = config->gridDim.z,
        .blockDimX = config->blockDim.x,
        .blockDimY = config->blockDim.y,
        .blockDimZ = config->blockDim.z,
        .sharedMemBytes = (unsigned)config->dynamicSmemBytes,
        .hStream = gf_rt__stream(config->stream, ptsz),
        .attrs = (CUlaunchAttribute *)config->attrs,
        .numAttrs = config->numAttrs,
    };
    return GF_RT_CU(CU(cuLaunchKernelEx, &c, (CUfunction)f->kernel, args, NULL));
}

GF_RT_API cudaError_t cudaLaunchKernelExC(const cudaLaunchConfig_t *config, const void *func,
                                          void **args)
{
    return launch_ex(config, func, args, 0);
}

GF_RT_API cudaError_t cudaLaunchKernelExC_ptsz(const cudaLaunchConfig_t *config, const void *func,
                                               void **args)
{
    return launch_ex(config, func, args, 1);
}

/* ---- kernel attributes --------------------------------------------------------------------- */

/* The registered kernel's CUfunction in the current context. */
static cudaError_t func_handle(const void *func, CUfunction *out, gf_rt_func **fout)
{
    cudaError_t e = gf_rt__ctx();
    if (e != cudaSuccess) return e;
    gf_rt_func *f;
    e = gf_rt__func(func, &f);
    if (e != cudaSuccess) return e;
    if (fout) *fout = f;
    return gf_rt__func_handle(f, out);
}

static int fattr(CUfunction fn, CUfunction_attribute a, int dflt)
{
    int v;
    return CU(cuFuncGetAttribute, &v, a, fn) == CUDA_SUCCESS ? v : dflt;
}

GF_RT_API cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, const void *func)
{
    if (!attr) return gf_rt__ret(cudaErrorInvalidValue);
    CUfunction fn;
    cudaError_t e = func_handle(func, &fn, NULL);
    if (e != cudaSuccess) return gf_rt__ret(e);
    int max_threads;
    CUresult rc = CU(cuFuncGetAttribute, &max_threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, fn);
    if (rc != CUDA_SUCCESS) return GF_RT_CU(rc);
    memset(attr, 0, sizeof *attr);
    attr->maxThreadsPerBlock = max_threads;
    attr->sharedSizeBytes = (size_t)fattr(fn, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, 0);
    attr->constSizeBytes = (size_t)fattr(fn, CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES, 0);
    attr->localSizeBytes = (size_t)fattr(fn, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, 0);
    attr->numRegs = fattr(fn, CU_FUNC_ATTRIBUTE_NUM_REGS, 0);
    attr->ptxVersion = fattr(fn, CU_FUNC_ATTRIBUTE_PTX_VERSION, 0);
    attr->binaryVersion = fattr(fn, CU_FUNC_ATTRIBUTE_BINARY_VERSION, 0);
    attr->cacheModeCA = fattr(fn, CU_FUNC_ATTRIBUTE_CACHE_MODE_CA, 0);
    attr->maxDynamicSharedSizeBytes =
        fattr(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 48 * 1024);
    attr->preferredShmemCarveout =
        fattr(fn, CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT, -1);
    attr->clusterDimMustBeSet = fattr(fn, CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET, 0);
    attr->requiredClusterWidth = fattr(fn, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH, 0);
    attr->requiredClusterHeight = fattr(fn, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT, 0);
    attr->requiredClusterDepth = fattr(fn, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH, 0);
    attr->clusterSchedulingPolicyPreference =
        fattr(fn, CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE, 0);
    attr->nonPortableClusterSizeAllowed =
        fattr(fn, CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 0);
    return cudaSuccess;
}

GF_RT_API cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr,
                                           int value)
{
    /* cudaFuncAttribute's values are CUfunction_attribute's (8 = max dynamic shared, ...). */
    gf_rt_func *f;
    CUfunction fn;
    cudaError_t e = func_handle(func, &fn, &f);
    if (e != cudaSuccess) return gf_rt__ret(e);
    if ((int)attr < 8 || attr >= cudaFuncAttributeMax) return gf_rt__ret(cudaErrorInvalidValue);
    CUdevice dev;
    CUresult rc = CU(cuDeviceGet, &dev, gf_rt_tls.dev);
    if (rc == CUDA_SUCCESS)
        rc = CU(cuKernelSetAttribute, (CUfunction_attribute)attr, value, f->kernel, dev);
    if (rc == CUDA_ERROR_NOT_SUPPORTED)
        rc = CU(cuFuncSetAttribute, fn, (CUfunction_attribute)attr, value);
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaFuncSetCacheConfig(const void *func, enum cudaFuncCache cacheConfig)
{
    CUfunction fn;
    cudaError_t e = func_handle(func, &fn, NULL);
    if (e != cudaSuccess) return gf_rt__ret(e);
    CUresult rc = CU(cuFuncSetCacheConfig, fn, (CUfunc_cache)cacheConfig);
    /* A preference only: a driver without it still runs the kernel. */
    return GF_RT_CU(rc == CUDA_ERROR_NOT_SUPPORTED ? CUDA_SUCCESS : rc);
}

GF_RT_API cudaError_t cudaFuncGetName(const char **name, const void *func)
{
    if (!name) return gf_rt__ret(cudaErrorInvalidValue);
    gf_rt_func *f;
    cudaError_t e = gf_rt__func(func, &f);
    if (e != cudaSuccess) return gf_rt__ret(e);
    *name = f->name;
    return cudaSuccess;
}

GF_RT_API cudaError_t cudaGetFuncBySymbol(cudaFunction_t *functionPtr, const void *symbolPtr)
{
    if (!functionPtr) return gf_rt__ret(cudaErrorInvalidValue);
    CUfunction fn;
    cudaError_t e = func_handle(symbolPtr, &fn, NULL);
    if (e == cudaSuccess) *functionPtr = (cudaFunction_t)fn;
    return gf_rt__ret(e);
}

/* ---- occupancy ----------------------------------------------------------------------------- */

static int dev_attr(CUdevice_attribute a, int dflt)
{
    int v;
    CUdevice dev;
    if (CU(cuDeviceGet, &dev, gf_rt_tls.dev) != CUDA_SUCCESS) return dflt;
    return CU(cuDeviceGetAttribute, &v, a, dev) == CUDA_SUCCESS ? v : dflt;
}

/* The calculator CUDA documents, from the device's per-SM limits, for a driver without one. */
static int occupancy_fallback(CUfunction fn, int block, size_t smem)
{
    int threads_sm = dev_attr(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, 2048);
    int blocks_sm = dev_attr(CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR, 32);
    int smem_sm = dev_attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 228 * 1024);
    int regs_sm = dev_attr(CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR, 65536);
    int warp = dev_attr(CU_DEVICE_ATTRIBUTE_WARP_SIZE, 32);
    int max_block = fattr(fn, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 1024);
    if (block <= 0 || block > max_block) return 0;
    int warps = (block + warp - 1) / warp;
    int n = threads_sm / (warps * warp);
    if (n > blocks_sm) n = blocks_sm;
    size_t smem_block = smem + (size_t)fattr(fn, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, 0);
    if (smem_block && (int)(smem_sm / smem_block) < n) n = (int)(smem_sm / smem_block);
    int regs = fattr(fn, CU_FUNC_ATTRIBUTE_NUM_REGS, 0);
    if (regs > 0 && regs_sm / (regs * warps * warp) < n) n = regs_sm / (regs * warps * warp);
    return n;
}

static cudaError_t max_active(int *numBlocks, const void *func, int blockSize, size_t smem,
                              unsigned flags)
{
    if (!numBlocks || blockSize <= 0) return gf_rt__ret(cudaErrorInvalidValue);
    CUfunction fn;
    cudaError_t e = func_handle(func, &fn, NULL);
    if (e != cudaSuccess) return gf_rt__ret(e);
    CUresult rc = CU(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags, numBlocks, fn,
                     blockSize, smem, flags);
    if (rc == CUDA_ERROR_NOT_SUPPORTED) {
        *numBlocks = occupancy_fallback(fn, blockSize, smem);
        return cudaSuccess;
    }
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks,
                                                                    const void *func,
                                                                    int blockSize,
                                                                    size_t dynamicSMemSize)
{
    return max_active(numBlocks, func, blockSize, dynamicSMemSize, 0);
}

GF_RT_API cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(
    int *numBlocks, const void *func, int blockSize, size_t dynamicSMemSize, unsigned int flags)
{
    return max_active(numBlocks, func, blockSize, dynamicSMemSize, flags);
}

GF_RT_API cudaError_t cudaOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize,
                                                                const void *func, int numBlocks,
                                                                int blockSize)
{
    if (!dynamicSmemSize || numBlocks <= 0 || blockSize <= 0)
        return gf_rt__ret(cudaErrorInvalidValue);
    CUfunction fn;
    cudaError_t e = func_handle(func, &fn, NULL);
    if (e != cudaSuccess) return gf_rt__ret(e);
    CUresult rc = CU(cuOccupancyAvailableDynamicSMemPerBlock, dynamicSmemSize, fn, numBlocks,
                     blockSize);
    if (rc == CUDA_ERROR_NOT_SUPPORTED) {
        size_t smem_sm =
            (size_t)dev_attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 228 * 1024);
        size_t per_block =
            (size_t)dev_attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 48 * 1024);
        size_t s = smem_sm / (size_t)numBlocks;
        size_t stat = (size_t)fattr(fn, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, 0);
        s = s > stat ? s - stat : 0;
        *dynamicSmemSize = s < per_block ? s : per_block;
        return cudaSuccess;
    }
    return GF_RT_CU(rc);
}
