/* SPDX-License-Identifier: Apache-2.0 */
/* Device management: count/get/set/reset/synchronize/flags, properties and attributes, limits,
 * versions, peer access, and cudaGetDriverEntryPoint through the driver's cuGetProcAddress. */
#include "cudart.h"

#include <stdlib.h>
#include <string.h>

GF_RT_API cudaError_t cudaGetDeviceCount(int *count)
{
    if (!count) return gf_rt__ret(cudaErrorInvalidValue);
    cudaError_t e = gf_rt__init();
    *count = e == cudaSuccess ? gf_rt.ndev : 0;
    return gf_rt__ret(e);
}

GF_RT_API cudaError_t cudaGetDevice(int *device)
{
    if (!device) return gf_rt__ret(cudaErrorInvalidValue);
    cudaError_t e = gf_rt__init();
    if (e != cudaSuccess) return gf_rt__ret(e);
    *device = gf_rt_tls.dev;
    return cudaSuccess;
}

GF_RT_API cudaError_t cudaSetDevice(int device)
{
    cudaError_t e = gf_rt__init();
    if (e != cudaSuccess) return gf_rt__ret(e);
    if (device < 0 || device >= gf_rt.ndev) return gf_rt__ret(cudaErrorInvalidDevice);
    gf_rt_thread *t = &gf_rt_tls;
    if (t->dev != device) {
        t->dev = device;
        t->cur = NULL;
    }
    /* Since CUDA 12 cudaSetDevice initializes the device's primary context right away. */
    return gf_rt__ret(gf_rt__ctx());
}

GF_RT_API cudaError_t cudaInitDevice(int device, unsigned int deviceFlags, unsigned int flags)
{
    cudaError_t e = gf_rt__init();
    if (e != cudaSuccess) return gf_rt__ret(e);
    if (device < 0 || device >= gf_rt.ndev) return gf_rt__ret(cudaErrorInvalidDevice);
    if (flags & ~1u) return gf_rt__ret(cudaErrorInvalidValue);
    gf_rt_device *d = &gf_rt.dev[device];
    pthread_mutex_lock(&d->lock);
    if (deviceFlags) d->flags = deviceFlags & ~(unsigned)cudaDeviceMapHost;
    pthread_mutex_unlock(&d->lock);
    gf_rt__device_ctx(device, &e);
    /* cudaInitDeviceFlagsAreValid: also make it the thread's device */
    if (e == cudaSuccess && (flags & 1)) e = cudaSetDevice(device);
    return gf_rt__ret(e);
}

GF_RT_API cudaError_t cudaDeviceSynchronize(void)
{
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuCtxSynchronize));
}

GF_RT_API cudaError_t cudaDeviceReset(void)
{
    cudaError_t e = gf_rt__init();
    if (e != cudaSuccess) return gf_rt__ret(e);
    int dev = gf_rt_tls.dev;
    if (gf_rt.dev[dev].ctx) {
        /* Let queued work finish; its errors die with the context. */
        gf_rt__ctx();
        CU(cuCtxSynchronize);
    }
    e = gf_rt__device_reset(dev);
    /* Reset clears the thread's last error as well: the state it described is gone. */
    gf_rt_tls.last = cudaSuccess;
    return gf_rt__ret(e);
}

GF_RT_API cudaError_t cudaSetDeviceFlags(unsigned int flags)
{
    cudaError_t e = gf_rt__init();
    if (e != cudaSuccess) return gf_rt__ret(e);
    /* cudaDeviceScheduleMask | cudaDeviceMapHost | cudaDeviceLmemResizeToMax */
    if (flags & ~0x1fu) return gf_rt__ret(cudaErrorInvalidValue);
    gf_rt_device *d = &gf_rt.dev[gf_rt_tls.dev];
    pthread_mutex_lock(&d->lock);
    d->flags = flags & ~(unsigned)cudaDeviceMapHost; /* mapping is always on with UVA */
    CUdevice cudev;
    CUresult rc = CU(cuDeviceGet, &cudev, gf_rt_tls.dev);
    if (rc == CUDA_SUCCESS) rc = CU(cuDevicePrimaryCtxSetFlags_v2, cudev, d->flags);
    pthread_mutex_unlock(&d->lock);
    return GF_RT_CU(rc == CUDA_ERROR_NOT_SUPPORTED ? CUDA_SUCCESS : rc);
}

GF_RT_API cudaError_t cudaGetDeviceFlags(unsigned int *flags)
{
    if (!flags) return gf_rt__ret(cudaErrorInvalidValue);
    cudaError_t e = gf_rt__init();
    if (e != cudaSuccess) return gf_rt__ret(e);
    CUdevice cudev;
    unsigned f = 0;
    int active = 0;
    CUresult rc = CU(cuDeviceGet, &cudev, gf_rt_tls.dev);
    if (rc == CUDA_SUCCESS) rc = CU(cuDevicePrimaryCtxGetState, cudev, &f, &active);
    if (rc != CUDA_SUCCESS) f = gf_rt.dev[gf_rt_tls.dev].flags;
    *flags = f | cudaDeviceMapHost;
    return cudaSuccess;
}

GF_RT_API cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device)
{
    /* cudaDeviceAttr's values are CUdevice_attribute's. */
    if (!value) return gf_rt__ret(cudaErrorInvalidValue);
    cudaError_t e = gf_rt__init();
    if (e != cudaSuccess) return gf_rt__ret(e);
    if (device < 0 || device >= gf_rt.ndev) return gf_rt__ret(cudaErrorInvalidDevice);
    CUdevice cudev;
    CUresult rc = CU(cuDeviceGet, &cudev, device);
    if (rc == CUDA_SUCCESS) rc = CU(cuDeviceGetAttribute, value, (CUdevice_attribute)attr, cudev);
    return GF_RT_CU(rc);
}

static int attr_or(CUdevice dev, CUdevice_attribute a, int dflt)
{
    int v;
    return CU(cuDeviceGetAttribute, &v, a, dev) == CUDA_SUCCESS ? v : dflt;
}

GF_RT_API cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
    if (!prop) return gf_rt__ret(cudaErrorInvalidValue);
    cudaError_t e = gf_rt__init();
    if (e != cudaSuccess) return gf_rt__ret(e);
    if (device < 0 || device >= gf_rt.ndev) return gf_rt__ret(cudaErrorInvalidDevice);
    CUdevice d;
    CUresult rc = CU(cuDeviceGet, &d, device);
    if (rc != CUDA_SUCCESS) return GF_RT_CU(rc);
    memset(prop, 0, sizeof *prop);
    rc = CU(cuDeviceGetName, prop->name, (int)sizeof prop->name, d);
    if (rc != CUDA_SUCCESS) return GF_RT_CU(rc);
    CU(cuDeviceGetUuid_v2, (CUuuid *)&prop->uuid, d);
    size_t total = 0;
    CU(cuDeviceTotalMem_v2, &total, d);
    prop->totalGlobalMem = total;
#define A(a, dflt) attr_or(d, CU_DEVICE_ATTRIBUTE_##a, dflt)
    prop->sharedMemPerBlock = (size_t)A(MAX_SHARED_MEMORY_PER_BLOCK, 48 * 1024);
    prop->regsPerBlock = A(MAX_REGISTERS_PER_BLOCK, 65536);
    prop->warpSize = A(WARP_SIZE, 32);
    prop->memPitch = (size_t)A(MAX_PITCH, 2147483647);
    prop->maxThreadsPerBlock = A(MAX_THREADS_PER_BLOCK, 1024);
    prop->maxThreadsDim[0] = A(MAX_BLOCK_DIM_X, 1024);
    prop->maxThreadsDim[1] = A(MAX_BLOCK_DIM_Y, 1024);
    prop->maxThreadsDim[2] = A(MAX_BLOCK_DIM_Z, 64);
    prop->maxGridSize[0] = A(MAX_GRID_DIM_X, 2147483647);
    prop->maxGridSize[1] = A(MAX_GRID_DIM_Y, 65535);
    prop->maxGridSize[2] = A(MAX_GRID_DIM_Z, 65535);
    prop->totalConstMem = (size_t)A(TOTAL_CONSTANT_MEMORY, 65536);
    prop->major = A(COMPUTE_CAPABILITY_MAJOR, 0);
    prop->minor = A(COMPUTE_CAPABILITY_MINOR, 0);
    prop->textureAlignment = (size_t)A(TEXTURE_ALIGNMENT, 512);
    prop->texturePitchAlignment = (size_t)A(TEXTURE_PITCH_ALIGNMENT, 32);
    prop->multiProcessorCount = A(MULTIPROCESSOR_COUNT, 1);
    prop->integrated = A(INTEGRATED, 0);
    prop->canMapHostMemory = A(CAN_MAP_HOST_MEMORY, 1);
    prop->maxTexture1D = A(MAXIMUM_TEXTURE1D_WIDTH, 0);
    prop->maxTexture2D[0] = A(MAXIMUM_TEXTURE2D_WIDTH, 0);
    prop->maxTexture2D[1] = A(MAXIMUM_TEXTURE2D_HEIGHT, 0);
    prop->maxTexture3D[0] = A(MAXIMUM_TEXTURE3D_WIDTH, 0);
    prop->maxTexture3D[1] = A(MAXIMUM_TEXTURE3D_HEIGHT, 0);
    prop->maxTexture3D[2] = A(MAXIMUM_TEXTURE3D_DEPTH, 0);
    prop->surfaceAlignment = (size_t)A(SURFACE_ALIGNMENT, 512);
    prop->concurrentKernels = A(CONCURRENT_KERNELS, 1);
    prop->ECCEnabled = A(ECC_ENABLED, 0);
    prop->pciBusID = A(PCI_BUS_ID, 0);
    prop->pciDeviceID = A(PCI_DEVICE_ID, 0);
    prop->pciDomainID = A(PCI_DOMAIN_ID, 0);
    prop->tccDriver = A(TCC_DRIVER, 0);
    prop->asyncEngineCount = A(ASYNC_ENGINE_COUNT, 2);
    prop->unifiedAddressing = A(UNIFIED_ADDRESSING, 1);
    prop->memoryBusWidth = A(GLOBAL_MEMORY_BUS_WIDTH, 0);
    prop->l2CacheSize = A(L2_CACHE_SIZE, 0);
    prop->persistingL2CacheMaxSize = A(MAX_PERSISTING_L2_CACHE_SIZE, 0);
    prop->maxThreadsPerMultiProcessor = A(MAX_THREADS_PER_MULTIPROCESSOR, 2048);
    prop->streamPrioritiesSupported = A(STREAM_PRIORITIES_SUPPORTED, 1);
    prop->globalL1CacheSupported = A(GLOBAL_L1_CACHE_SUPPORTED, 1);
    prop->localL1CacheSupported = A(LOCAL_L1_CACHE_SUPPORTED, 1);
    prop->sharedMemPerMultiprocessor = (size_t)A(MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 0);
    prop->regsPerMultiprocessor = A(MAX_REGISTERS_PER_MULTIPROCESSOR, 65536);
    prop->managedMemory = A(MANAGED_MEMORY, 1);
    prop->isMultiGpuBoard = A(MULTI_GPU_BOARD, 0);
    prop->multiGpuBoardGroupID = A(MULTI_GPU_BOARD_GROUP_ID, 0);
    prop->hostNativeAtomicSupported = A(HOST_NATIVE_ATOMIC_SUPPORTED, 0);
    prop->pageableMemoryAccess = A(PAGEABLE_MEMORY_ACCESS, 0);
    prop->concurrentManagedAccess = A(CONCURRENT_MANAGED_ACCESS, 0);
    prop->computePreemptionSupported = A(COMPUTE_PREEMPTION_SUPPORTED, 0);
    prop->canUseHostPointerForRegisteredMem = A(CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM, 0);
    prop->cooperativeLaunch = A(COOPERATIVE_LAUNCH, 0);
    prop->sharedMemPerBlockOptin = (size_t)A(MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 0);
    prop->pageableMemoryAccessUsesHostPageTables =
        A(PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES, 0);
    prop->directManagedMemAccessFromHost = A(DIRECT_MANAGED_MEM_ACCESS_FROM_HOST, 0);
    prop->maxBlocksPerMultiProcessor = A(MAX_BLOCKS_PER_MULTIPROCESSOR, 32);
    prop->accessPolicyMaxWindowSize = A(MAX_ACCESS_POLICY_WINDOW_SIZE, 0);
    prop->reservedSharedMemPerBlock = (size_t)A(RESERVED_SHARED_MEMORY_PER_BLOCK, 0);
    prop->hostRegisterSupported = A(HOST_REGISTER_SUPPORTED, 1);
    prop->memoryPoolsSupported = A(MEMORY_POOLS_SUPPORTED, 1);
    prop->gpuDirectRDMASupported = A(GPU_DIRECT_RDMA_SUPPORTED, 0);
    prop->clusterLaunch = A(CLUSTER_LAUNCH, 0);
    prop->unifiedFunctionPointers = A(UNIFIED_FUNCTION_POINTERS, 0);
    prop->hostNumaId = A(HOST_NUMA_ID, -1);
#undef A
    return cudaSuccess;
}

GF_RT_API cudaError_t cudaDeviceGetLimit(size_t *pValue, enum cudaLimit limit)
{
    /* cudaLimit's values are CUlimit's. */
    if (!pValue) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    CUresult rc = CU(cuCtxGetLimit, pValue, (CUlimit)limit);
    return GF_RT_CU(rc == CUDA_ERROR_INVALID_VALUE ? CUDA_ERROR_UNSUPPORTED_LIMIT : rc);
}

GF_RT_API cudaError_t cudaDeviceSetLimit(enum cudaLimit limit, size_t value)
{
    GF_RT_ENTER();
    CUresult rc = CU(cuCtxSetLimit, (CUlimit)limit, value);
    return GF_RT_CU(rc == CUDA_ERROR_INVALID_VALUE ? CUDA_ERROR_UNSUPPORTED_LIMIT : rc);
}

GF_RT_API cudaError_t cudaDeviceGetStreamPriorityRange(int *leastPriority, int *greatestPriority)
{
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuCtxGetStreamPriorityRange, leastPriority, greatestPriority));
}

GF_RT_API cudaError_t cudaDeviceGetCacheConfig(enum cudaFuncCache *pCacheConfig)
{
    if (!pCacheConfig) return gf_rt__ret(cudaErrorInvalidValue);
    *pCacheConfig = cudaFuncCachePreferNone;
    return cudaSuccess;
}

GF_RT_API cudaError_t cudaDeviceSetCacheConfig(enum cudaFuncCache cacheConfig)
{
    (void)cacheConfig; /* a preference; the sim and remote devices have no L1/shared split */
    return cudaSuccess;
}

GF_RT_API cudaError_t cudaDriverGetVersion(int *driverVersion)
{
    if (!driverVersion) return gf_rt__ret(cudaErrorInvalidValue);
    *driverVersion = 0;
    /* Without a driver CUDA answers 0 and success. */
    if (gf_rt__init() == cudaErrorInsufficientDriver || !gf_rt.drv.cuDriverGetVersion)
        return cudaSuccess;
    return GF_RT_CU(gf_rt.drv.cuDriverGetVersion(driverVersion));
}

GF_RT_API cudaError_t cudaRuntimeGetVersion(int *runtimeVersion)
{
    if (!runtimeVersion) return gf_rt__ret(cudaErrorInvalidValue);
    *runtimeVersion = CUDART_VERSION;
    return cudaSuccess;
}

GF_RT_API cudaError_t cudaDeviceCanAccessPeer(int *canAccessPeer, int device, int peerDevice)
{
    if (!canAccessPeer) return gf_rt__ret(cudaErrorInvalidValue);
    cudaError_t e = gf_rt__init();
    if (e != cudaSuccess) return gf_rt__ret(e);
    if (device < 0 || device >= gf_rt.ndev || peerDevice < 0 || peerDevice >= gf_rt.ndev)
        return gf_rt__ret(cudaErrorInvalidDevice);
    CUdevice a, b;
    CUresult rc = CU(cuDeviceGet, &a, device);
    if (rc == CUDA_SUCCESS) rc = CU(cuDeviceGet, &b, peerDevice);
    if (rc == CUDA_SUCCESS) rc = CU(cuDeviceCanAccessPeer, canAccessPeer, a, b);
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaDeviceEnablePeerAccess(int peerDevice, unsigned int flags)
{
    GF_RT_ENTER();
    cudaError_t e;
    CUcontext peer = gf_rt__device_ctx(peerDevice, &e);
    if (!peer) return gf_rt__ret(e);
    return GF_RT_CU(CU(cuCtxEnablePeerAccess, peer, flags));
}

GF_RT_API cudaError_t cudaDeviceDisablePeerAccess(int peerDevice)
{
    GF_RT_ENTER();
    cudaError_t e;
    CUcontext peer = gf_rt__device_ctx(peerDevice, &e);
    if (!peer) return gf_rt__ret(e);
    return GF_RT_CU(CU(cuCtxDisablePeerAccess, peer));
}

GF_RT_API cudaError_t cudaDeviceGetPCIBusId(char *pciBusId, int len, int device)
{
    cudaError_t e = gf_rt__init();
    if (e != cudaSuccess) return gf_rt__ret(e);
    if (device < 0 || device >= gf_rt.ndev) return gf_rt__ret(cudaErrorInvalidDevice);
    CUdevice d;
    CUresult rc = CU(cuDeviceGet, &d, device);
    if (rc == CUDA_SUCCESS) rc = CU(cuDeviceGetPCIBusId, pciBusId, len, d);
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaChooseDevice(int *device, const struct cudaDeviceProp *prop)
{
    if (!device || !prop) return gf_rt__ret(cudaErrorInvalidValue);
    cudaError_t e = gf_rt__init();
    if (e != cudaSuccess) return gf_rt__ret(e);
    /* The device whose compute capability is closest to the one asked for. */
    int best = 0, best_d = -1;
    for (int i = 0; i < gf_rt.ndev; i++) {
        int ma = 0, mi = 0;
        cudaDeviceGetAttribute(&ma, cudaDevAttrComputeCapabilityMajor, i);
        cudaDeviceGetAttribute(&mi, cudaDevAttrComputeCapabilityMinor, i);
        int dd = abs((ma * 10 + mi) - (prop->major * 10 + prop->minor));
        if (best_d < 0 || dd < best_d) best = i, best_d = dd;
    }
    *device = best;
    return cudaSuccess;
}

/* ---- driver entry points ------------------------------------------------------------------- */

static cudaError_t entry_point(const char *symbol, void **funcPtr, unsigned version,
                               unsigned long long flags,
                               enum cudaDriverEntryPointQueryResult *status, int ptsz)
{
    if (!symbol || !funcPtr) return gf_rt__ret(cudaErrorInvalidValue);
    *funcPtr = NULL;
    cudaError_t e = gf_rt__init();
    if (e != cudaSuccess) return gf_rt__ret(e);
    /* cudaEnableDefault in a per-thread build means the per-thread default stream. */
    if (ptsz && flags == cudaEnableDefault) flags = cudaEnablePerThreadDefaultStream;
    CUdriverProcAddressQueryResult q = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    CUresult rc = CU(cuGetProcAddress_v2, symbol, funcPtr, (int)version, flags, &q);
    if (status) {
        switch (q) {
        case CU_GET_PROC_ADDRESS_SUCCESS: *status = cudaDriverEntryPointSuccess; break;
        case CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT:
            *status = cudaDriverEntryPointVersionNotSufficent;
            break;
        default: *status = cudaDriverEntryPointSymbolNotFound; break;
        }
    }
    /* CUDA answers a missing symbol through driverStatus, with cudaSuccess. */
    if (rc == CUDA_ERROR_NOT_FOUND)
        return status ? cudaSuccess : gf_rt__ret(cudaErrorSymbolNotFound);
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaGetDriverEntryPoint(const char *symbol, void **funcPtr,
                                              unsigned long long flags,
                                              enum cudaDriverEntryPointQueryResult *driverStatus)
{
    return entry_point(symbol, funcPtr, CUDART_VERSION, flags, driverStatus, 0);
}

GF_RT_API cudaError_t cudaGetDriverEntryPoint_ptsz(
    const char *symbol, void **funcPtr, unsigned long long flags,
    enum cudaDriverEntryPointQueryResult *driverStatus)
{
    return entry_point(symbol, funcPtr, CUDART_VERSION, flags, driverStatus, 1);
}

GF_RT_API cudaError_t cudaGetDriverEntryPointByVersion(
    const char *symbol, void **funcPtr, unsigned int cudaVersion, unsigned long long flags,
    enum cudaDriverEntryPointQueryResult *driverStatus)
{
    return entry_point(symbol, funcPtr, cudaVersion, flags, driverStatus, 0);
}

GF_RT_API cudaError_t cudaGetDriverEntryPointByVersion_ptsz(
    const char *symbol, void **funcPtr, unsigned int cudaVersion, unsigned long long flags,
    enum cudaDriverEntryPointQueryResult *driverStatus)
{
    return entry_point(symbol, funcPtr, cudaVersion, flags, driverStatus, 1);
}

GF_RT_API cudaError_t cudaProfilerStart(void)
{
    return cudaSuccess;
}

GF_RT_API cudaError_t cudaProfilerStop(void)
{
    return cudaSuccess;
}
