/* SPDX-License-Identifier: Apache-2.0 */
/* Memory: allocation (device, pinned host, managed, pitched, stream-ordered, registered host),
 * copies (1D, 2D, async, peer) and memsets, cudaMemGetInfo and cudaPointerGetAttributes.
 *
 * Copies: a synchronous legacy-stream copy uses the driver's synchronous call for its direction;
 * a synchronous per-thread-stream copy (_ptds) queues the asynchronous call on
 * CU_STREAM_PER_THREAD and waits for that stream; cudaMemcpyDefault resolves each pointer's kind
 * with cuPointerGetAttribute (unified addressing). cudaMemcpyHostToHost is a plain memcpy, after
 * the stream drained for the asynchronous form.
 */
#include "cudart.h"

#include <string.h>

#define DPTR(p) ((CUdeviceptr)(uintptr_t)(p))

/* ---- allocation ---------------------------------------------------------------------------- */

GF_RT_API cudaError_t cudaMalloc(void **devPtr, size_t size)
{
    if (!devPtr) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    if (size == 0) {
        *devPtr = NULL;
        return cudaSuccess;
    }
    CUdeviceptr p;
    CUresult rc = CU(cuMemAlloc_v2, &p, size);
    if (rc != CUDA_SUCCESS) return GF_RT_CU(rc);
    *devPtr = (void *)(uintptr_t)p;
    return cudaSuccess;
}

GF_RT_API cudaError_t cudaFree(void *devPtr)
{
    GF_RT_ENTER(); /* cudaFree(0) is the classic way to initialize the runtime */
    if (!devPtr) return cudaSuccess;
    return GF_RT_CU(CU(cuMemFree_v2, DPTR(devPtr)));
}

GF_RT_API cudaError_t cudaMallocHost(void **ptr, size_t size)
{
    if (!ptr) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    if (size == 0) {
        *ptr = NULL;
        return cudaSuccess;
    }
    return GF_RT_CU(CU(cuMemAllocHost_v2, ptr, size));
}

GF_RT_API cudaError_t cudaHostAlloc(void **pHost, size_t size, unsigned int flags)
{
    /* cudaHostAllocPortable/Mapped/WriteCombined = CU_MEMHOSTALLOC_PORTABLE/DEVICEMAP/
     * WRITECOMBINED */
    if (!pHost || (flags & ~7u)) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    if (size == 0) {
        *pHost = NULL;
        return cudaSuccess;
    }
    return GF_RT_CU(CU(cuMemHostAlloc, pHost, size, flags));
}

GF_RT_API cudaError_t cudaFreeHost(void *ptr)
{
    GF_RT_ENTER();
    if (!ptr) return cudaSuccess;
    return GF_RT_CU(CU(cuMemFreeHost, ptr));
}

GF_RT_API cudaError_t cudaMallocManaged(void **devPtr, size_t size, unsigned int flags)
{
    /* cudaMemAttachGlobal/Host = CU_MEM_ATTACH_GLOBAL/HOST */
    if (!devPtr || (flags != cudaMemAttachGlobal && flags != cudaMemAttachHost))
        return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    if (size == 0) return gf_rt__ret(cudaErrorInvalidValue);
    CUdeviceptr p;
    CUresult rc = CU(cuMemAllocManaged, &p, size, flags);
    if (rc == CUDA_SUCCESS) *devPtr = (void *)(uintptr_t)p;
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaMallocPitch(void **devPtr, size_t *pitch, size_t width, size_t height)
{
    if (!devPtr || !pitch) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    if (width == 0 || height == 0) {
        *devPtr = NULL;
        *pitch = 0;
        return cudaSuccess;
    }
    CUdeviceptr p;
    size_t pt;
    CUresult rc = CU(cuMemAllocPitch_v2, &p, &pt, width, height, 16);
    if (rc == CUDA_ERROR_NOT_SUPPORTED) {
        pt = (width + 511) & ~(size_t)511;
        rc = CU(cuMemAlloc_v2, &p, pt * height);
    }
    if (rc != CUDA_SUCCESS) return GF_RT_CU(rc);
    *devPtr = (void *)(uintptr_t)p;
    *pitch = pt;
    return cudaSuccess;
}

static cudaError_t malloc_async(void **devPtr, size_t size, cudaStream_t s, int ptsz)
{
    if (!devPtr) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    CUdeviceptr p;
    CUresult rc = CU(cuMemAllocAsync, &p, size, gf_rt__stream(s, ptsz));
    if (rc == CUDA_SUCCESS) *devPtr = (void *)(uintptr_t)p;
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaMallocAsync(void **devPtr, size_t size, cudaStream_t hStream)
{
    return malloc_async(devPtr, size, hStream, 0);
}

GF_RT_API cudaError_t cudaMallocAsync_ptsz(void **devPtr, size_t size, cudaStream_t hStream)
{
    return malloc_async(devPtr, size, hStream, 1);
}

static cudaError_t free_async(void *devPtr, cudaStream_t s, int ptsz)
{
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuMemFreeAsync, DPTR(devPtr), gf_rt__stream(s, ptsz)));
}

GF_RT_API cudaError_t cudaFreeAsync(void *devPtr, cudaStream_t hStream)
{
    return free_async(devPtr, hStream, 0);
}

GF_RT_API cudaError_t cudaFreeAsync_ptsz(void *devPtr, cudaStream_t hStream)
{
    return free_async(devPtr, hStream, 1);
}

GF_RT_API cudaError_t cudaHostRegister(void *ptr, size_t size, unsigned int flags)
{
    /* cudaHostRegisterPortable/Mapped/IoMemory/ReadOnly = CU_MEMHOSTREGISTER_* */
    if (!ptr || !size || (flags & ~15u)) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuMemHostRegister_v2, ptr, size, flags));
}

GF_RT_API cudaError_t cudaHostUnregister(void *ptr)
{
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuMemHostUnregister, ptr));
}

GF_RT_API cudaError_t cudaHostGetDevicePointer(void **pDevice, void *pHost, unsigned int flags)
{
    if (!pDevice || flags) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    CUdeviceptr p;
    CUresult rc = CU(cuMemHostGetDevicePointer_v2, &p, pHost, 0);
    if (rc == CUDA_SUCCESS) *pDevice = (void *)(uintptr_t)p;
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaHostGetFlags(unsigned int *pFlags, void *pHost)
{
    if (!pFlags) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuMemHostGetFlags, pFlags, pHost));
}

GF_RT_API cudaError_t cudaMemGetInfo(size_t *free, size_t *total)
{
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuMemGetInfo_v2, free, total));
}

GF_RT_API cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attributes,
                                               const void *ptr)
{
    if (!attributes) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    memset(attributes, 0, sizeof *attributes);
    unsigned type = 0;
    CUresult rc = CU(cuPointerGetAttribute, &type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, DPTR(ptr));
    if (rc == CUDA_ERROR_INVALID_VALUE || (rc == CUDA_SUCCESS && type == 0)) {
        /* Memory CUDA does not know: plain host memory, as CUDA 11+ reports it. */
        attributes->type = cudaMemoryTypeUnregistered;
        attributes->device = -2;
        return cudaSuccess;
    }
    if (rc != CUDA_SUCCESS) return GF_RT_CU(rc);
    unsigned managed = 0;
    int ordinal = gf_rt_tls.dev;
    void *dp = NULL, *hp = NULL;
    CU(cuPointerGetAttribute, &managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, DPTR(ptr));
    CU(cuPointerGetAttribute, &ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, DPTR(ptr));
    if (CU(cuPointerGetAttribute, &dp, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, DPTR(ptr)) !=
        CUDA_SUCCESS)
        dp = NULL;
    if (CU(cuPointerGetAttribute, &hp, CU_POINTER_ATTRIBUTE_HOST_POINTER, DPTR(ptr)) !=
        CUDA_SUCCESS)
        hp = NULL;
    attributes->device = ordinal;
    attributes->devicePointer = dp;
    attributes->hostPointer = hp;
    if (managed & 0xff) {
        attributes->type = cudaMemoryTypeManaged;
        if (!attributes->hostPointer) attributes->hostPointer = (void *)ptr;
        if (!attributes->devicePointer) attributes->devicePointer = (void *)ptr;
    } else if (type == CU_MEMORYTYPE_HOST) {
        attributes->type = cudaMemoryTypeHost;
    } else {
        attributes->type = cudaMemoryTypeDevice;
        attributes->hostPointer = NULL;
    }
    return cudaSuccess;
}

/* ---- copies -------------------------------------------------------------------------------- */

/* Whether p is device (or managed) memory: *dev = 1, or 0 for host memory of any kind (a driver
 * answers CUDA_ERROR_INVALID_VALUE for an address it does not know, i.e. plain host memory). Any
 * other answer is returned: a driver that cannot tell (a remote vGPU does not forward
 * cuPointerGetAttribute) must fail the copy, not have it guessed to be a host memmove. */
static CUresult is_device(const void *p, int *dev)
{
    unsigned type = 0;
    CUresult rc = CU(cuPointerGetAttribute, &type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, DPTR(p));
    *dev = rc == CUDA_SUCCESS && (type == CU_MEMORYTYPE_DEVICE || type == CU_MEMORYTYPE_UNIFIED);
    return rc == CUDA_ERROR_INVALID_VALUE ? CUDA_SUCCESS : rc;
}

/* cudaMemcpyDefault resolved into *k from both pointers (unified addressing). */
static CUresult resolve_kind(const void *dst, const void *src, enum cudaMemcpyKind *k)
{
    if (*k != cudaMemcpyDefault) return CUDA_SUCCESS;
    int d = 0, s = 0;
    CUresult rc = is_device(dst, &d);
    if (rc == CUDA_SUCCESS) rc = is_device(src, &s);
    if (rc != CUDA_SUCCESS) return rc;
    *k = (enum cudaMemcpyKind)((s ? 2 : 0) + (d ? 1 : 0)); /* H2H 0, H2D 1, D2H 2, D2D 3 */
    return CUDA_SUCCESS;
}

cudaError_t gf_rt__memcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
                          cudaStream_t stream, int ptsz, int async)
{
    if ((unsigned)kind > cudaMemcpyDefault) return gf_rt__ret(cudaErrorInvalidMemcpyDirection);
    if (n == 0) return cudaSuccess;
    if (!dst || !src) return gf_rt__ret(cudaErrorInvalidValue);
    CUresult rc = resolve_kind(dst, src, &kind);
    if (rc != CUDA_SUCCESS) return GF_RT_CU(rc);
    CUstream s = gf_rt__stream(stream, ptsz);
    if (kind == cudaMemcpyHostToHost) {
        if (async && (rc = CU(cuStreamSynchronize, s)) != CUDA_SUCCESS) return GF_RT_CU(rc);
        memmove(dst, src, n);
        return cudaSuccess;
    }
    if (!async && !ptsz) {
        switch (kind) {
        case cudaMemcpyHostToDevice: rc = CU(cuMemcpyHtoD_v2, DPTR(dst), src, n); break;
        case cudaMemcpyDeviceToHost: rc = CU(cuMemcpyDtoH_v2, dst, DPTR(src), n); break;
        default: rc = CU(cuMemcpyDtoD_v2, DPTR(dst), DPTR(src), n); break;
        }
        return GF_RT_CU(rc);
    }
    switch (kind) {
    case cudaMemcpyHostToDevice: rc = CU(cuMemcpyHtoDAsync_v2, DPTR(dst), src, n, s); break;
    case cudaMemcpyDeviceToHost: rc = CU(cuMemcpyDtoHAsync_v2, dst, DPTR(src), n, s); break;
    default: rc = CU(cuMemcpyDtoDAsync_v2, DPTR(dst), DPTR(src), n, s); break;
    }
    if (rc == CUDA_SUCCESS && !async) rc = CU(cuStreamSynchronize, s);
    return GF_RT_CU(rc);
}

static cudaError_t memcpy_entry(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
                                cudaStream_t s, int ptsz, int async)
{
    GF_RT_ENTER();
    return gf_rt__memcpy(dst, src, n, kind, s, ptsz, async);
}

GF_RT_API cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
    return memcpy_entry(dst, src, count, kind, NULL, 0, 0);
}

GF_RT_API cudaError_t cudaMemcpy_ptds(void *dst, const void *src, size_t count,
                                      enum cudaMemcpyKind kind)
{
    return memcpy_entry(dst, src, count, kind, NULL, 1, 0);
}

GF_RT_API cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count,
                                      enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return memcpy_entry(dst, src, count, kind, stream, 0, 1);
}

GF_RT_API cudaError_t cudaMemcpyAsync_ptsz(void *dst, const void *src, size_t count,
                                           enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return memcpy_entry(dst, src, count, kind, stream, 1, 1);
}

static void side_2d(enum cudaMemcpyKind k, int is_dst, const void *p, CUmemorytype *type,
                    const void **host, CUdeviceptr *dev)
{
    int device;
    switch (k) {
    case cudaMemcpyHostToHost: device = 0; break;
    case cudaMemcpyHostToDevice: device = is_dst; break;
    case cudaMemcpyDeviceToHost: device = !is_dst; break;
    case cudaMemcpyDeviceToDevice: device = 1; break;
    default: device = -1; break;
    }
    if (device == 1) {
        *type = CU_MEMORYTYPE_DEVICE;
        *dev = DPTR(p);
    } else if (device == 0) {
        *type = CU_MEMORYTYPE_HOST;
        *host = p;
    } else {
        *type = CU_MEMORYTYPE_UNIFIED;
        *dev = DPTR(p);
    }
}

static cudaError_t memcpy2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                            size_t height, enum cudaMemcpyKind kind, cudaStream_t stream, int ptsz,
                            int async)
{
    GF_RT_ENTER();
    if ((unsigned)kind > cudaMemcpyDefault) return gf_rt__ret(cudaErrorInvalidMemcpyDirection);
    if (width == 0 || height == 0) return cudaSuccess;
    if (width > dpitch || width > spitch) return gf_rt__ret(cudaErrorInvalidPitchValue);
    CUDA_MEMCPY2D c;
    memset(&c, 0, sizeof c);
    const void *dh = NULL;
    side_2d(kind, 0, src, &c.srcMemoryType, &c.srcHost, &c.srcDevice);
    side_2d(kind, 1, dst, &c.dstMemoryType, &dh, &c.dstDevice);
    c.dstHost = (void *)dh;
    c.srcPitch = spitch;
    c.dstPitch = dpitch;
    c.WidthInBytes = width;
    c.Height = height;
    CUstream s = gf_rt__stream(stream, ptsz);
    CUresult rc;
    if (!async && !ptsz) {
        rc = CU(cuMemcpy2D_v2, &c);
    } else {
        rc = CU(cuMemcpy2DAsync_v2, &c, s);
        if (rc == CUDA_SUCCESS && !async) rc = CU(cuStreamSynchronize, s);
    }
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaMemcpy2D(void *dst, size_t dpitch, const void *src, size_t spitch,
                                   size_t width, size_t height, enum cudaMemcpyKind kind)
{
    return memcpy2d(dst, dpitch, src, spitch, width, height, kind, NULL, 0, 0);
}

GF_RT_API cudaError_t cudaMemcpy2D_ptds(void *dst, size_t dpitch, const void *src, size_t spitch,
                                        size_t width, size_t height, enum cudaMemcpyKind kind)
{
    return memcpy2d(dst, dpitch, src, spitch, width, height, kind, NULL, 1, 0);
}

GF_RT_API cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch,
                                        size_t width, size_t height, enum cudaMemcpyKind kind,
                                        cudaStream_t stream)
{
    return memcpy2d(dst, dpitch, src, spitch, width, height, kind, stream, 0, 1);
}

GF_RT_API cudaError_t cudaMemcpy2DAsync_ptsz(void *dst, size_t dpitch, const void *src,
                                             size_t spitch, size_t width, size_t height,
                                             enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return memcpy2d(dst, dpitch, src, spitch, width, height, kind, stream, 1, 1);
}

static cudaError_t memcpy_peer(void *dst, int dstDevice, const void *src, int srcDevice,
                               size_t count, cudaStream_t stream, int async)
{
    GF_RT_ENTER();
    if (count == 0) return cudaSuccess;
    cudaError_t e;
    CUcontext cd = gf_rt__device_ctx(dstDevice, &e);
    if (!cd) return gf_rt__ret(e);
    CUcontext cs = gf_rt__device_ctx(srcDevice, &e);
    if (!cs) return gf_rt__ret(e);
    CUresult rc = async ? CU(cuMemcpyPeerAsync, DPTR(dst), cd, DPTR(src), cs, count,
                             gf_rt__stream(stream, 0))
                        : CU(cuMemcpyPeer, DPTR(dst), cd, DPTR(src), cs, count);
    if (rc == CUDA_ERROR_NOT_SUPPORTED) /* unified addressing: a device-to-device copy */
        return gf_rt__memcpy(dst, src, count, cudaMemcpyDeviceToDevice, stream, 0, async);
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaMemcpyPeer(void *dst, int dstDevice, const void *src, int srcDevice,
                                     size_t count)
{
    return memcpy_peer(dst, dstDevice, src, srcDevice, count, NULL, 0);
}

GF_RT_API cudaError_t cudaMemcpyPeerAsync(void *dst, int dstDevice, const void *src,
                                          int srcDevice, size_t count, cudaStream_t stream)
{
    return memcpy_peer(dst, dstDevice, src, srcDevice, count, stream, 1);
}

/* ---- memsets ------------------------------------------------------------------------------- */

static cudaError_t memset_impl(void *p, int value, size_t n, cudaStream_t stream, int ptsz,
                               int async)
{
    GF_RT_ENTER();
    if (n == 0) return cudaSuccess;
    CUstream s = gf_rt__stream(stream, ptsz);
    CUresult rc;
    if (!async && !ptsz) {
        rc = CU(cuMemsetD8_v2, DPTR(p), (unsigned char)value, n);
    } else {
        rc = CU(cuMemsetD8Async, DPTR(p), (unsigned char)value, n, s);
        if (rc == CUDA_SUCCESS && !async) rc = CU(cuStreamSynchronize, s);
    }
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaMemset(void *devPtr, int value, size_t count)
{
    return memset_impl(devPtr, value, count, NULL, 0, 0);
}

GF_RT_API cudaError_t cudaMemset_ptds(void *devPtr, int value, size_t count)
{
    return memset_impl(devPtr, value, count, NULL, 1, 0);
}

GF_RT_API cudaError_t cudaMemsetAsync(void *devPtr, int value, size_t count, cudaStream_t stream)
{
    return memset_impl(devPtr, value, count, stream, 0, 1);
}

GF_RT_API cudaError_t cudaMemsetAsync_ptsz(void *devPtr, int value, size_t count,
                                           cudaStream_t stream)
{
    return memset_impl(devPtr, value, count, stream, 1, 1);
}

static cudaError_t memset2d(void *p, size_t pitch, int value, size_t width, size_t height,
                            cudaStream_t stream, int ptsz, int async)
{
    GF_RT_ENTER();
    if (width == 0 || height == 0) return cudaSuccess;
    if (width > pitch) return gf_rt__ret(cudaErrorInvalidPitchValue);
    CUstream s = gf_rt__stream(stream, ptsz);
    CUresult rc;
    if (!async && !ptsz) {
        rc = CU(cuMemsetD2D8_v2, DPTR(p), pitch, (unsigned char)value, width, height);
    } else {
        rc = CU(cuMemsetD2D8Async, DPTR(p), pitch, (unsigned char)value, width, height, s);
        if (rc == CUDA_SUCCESS && !async) rc = CU(cuStreamSynchronize, s);
    }
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaMemset2D(void *devPtr, size_t pitch, int value, size_t width,
                                   size_t height)
{
    return memset2d(devPtr, pitch, value, width, height, NULL, 0, 0);
}

GF_RT_API cudaError_t cudaMemset2D_ptds(void *devPtr, size_t pitch, int value, size_t width,
                                        size_t height)
{
    return memset2d(devPtr, pitch, value, width, height, NULL, 1, 0);
}

GF_RT_API cudaError_t cudaMemset2DAsync(void *devPtr, size_t pitch, int value, size_t width,
                                        size_t height, cudaStream_t stream)
{
    return memset2d(devPtr, pitch, value, width, height, stream, 0, 1);
}

GF_RT_API cudaError_t cudaMemset2DAsync_ptsz(void *devPtr, size_t pitch, int value, size_t width,
                                             size_t height, cudaStream_t stream)
{
    return memset2d(devPtr, pitch, value, width, height, stream, 1, 1);
}

static cudaError_t prefetch(const void *p, size_t n, struct cudaMemLocation loc, unsigned flags,
                            cudaStream_t stream, int ptsz)
{
    GF_RT_ENTER();
    CUmemLocation l = {.type = (CUmemLocationType)loc.type, .id = loc.id};
    CUresult rc = CU(cuMemPrefetchAsync_v2, DPTR(p), n, l, flags, gf_rt__stream(stream, ptsz));
    /* A hint: where the driver has no migration (the sim, remote) the data is already there. */
    return GF_RT_CU(rc == CUDA_ERROR_NOT_SUPPORTED ? CUDA_SUCCESS : rc);
}

GF_RT_API cudaError_t cudaMemPrefetchAsync(const void *devPtr, size_t count,
                                           struct cudaMemLocation location, unsigned int flags,
                                           cudaStream_t stream)
{
    return prefetch(devPtr, count, location, flags, stream, 0);
}

GF_RT_API cudaError_t cudaMemPrefetchAsync_ptsz(const void *devPtr, size_t count,
                                                struct cudaMemLocation location,
                                                unsigned int flags, cudaStream_t stream)
{
    return prefetch(devPtr, count, location, flags, stream, 1);
}
