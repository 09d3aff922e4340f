/* SPDX-License-Identifier: Apache-2.0 */
/* Copies and memsets of the sim driver, synchronous and stream-ordered, 1D, 2D and 3D. Every
 * device-side range is checked against the allocation table first (a copy that runs past the
 * end of an allocation is CUDA_ERROR_INVALID_VALUE, as on a real driver). Synchronous calls are
 * ordered on the legacy stream (or the per-thread stream for the _ptds entry points) and return
 * when done. An async copy from pageable host memory takes a snapshot of the source, so the
 * caller may reuse its buffer at once, as the real driver's staging copy allows. */
#define __CUDA_API_VERSION_INTERNAL 1
#include "driver.h"

#include <stdlib.h>
#include <string.h>

#define GF_SNAPSHOT_MAX (64u << 20)

typedef enum { SIDE_HOST, SIDE_DEVICE, SIDE_ANY } gf_side;

/* Checks one side of a copy. A device side must lie in one allocation; a unified (ANY) pointer
 * is a device pointer when the table knows it. Sets *pageable for host memory the driver did
 * not pin. */
static CUresult check_side(uint64_t p, uint64_t len, gf_side side, int *pageable)
{
    *pageable = 0;
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    if (side == SIDE_HOST) {
        *pageable = !gf_drv__mem_is_pinned((void *)(uintptr_t)p, 1);
        return CUDA_SUCCESS;
    }
    gf_alloc a;
    if (!gf_drv__mem_find(p, 0, &a)) {
        if (side == SIDE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
        *pageable = 1;
        return CUDA_SUCCESS;
    }
    return gf_drv__mem_check_range(p, len);
}

/* Queues (async) or runs (sync) a copy. */
static CUresult submit_copy(const gf_copy *cp, CUstream h, int ptds, int async, int src_pageable)
{
    gf_ctx *c;
    gf_stream *s;
    CUresult rc = gf_drv__stream_arg(h, ptds, &c, &s);
    if (rc) return rc;
    if (cp->width == 0 || cp->height == 0 || cp->depth == 0) return CUDA_SUCCESS;
    gf_op *op = gf_drv__op_new(GF_OP_COPY);
    if (!op) return CUDA_ERROR_OUT_OF_MEMORY;
    op->u.copy = *cp;
    if (!async) return gf_drv__run_sync(s, op);
    if (src_pageable) {
        if (cp->height > 1 || cp->depth > 1 || cp->width > GF_SNAPSHOT_MAX) return gf_drv__run_sync(s, op);
        op->owned = malloc(cp->width);
        if (!op->owned) {
            gf_drv__op_free(op);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        memcpy(op->owned, cp->src, cp->width);
        op->u.copy.src = op->owned;
    }
    return gf_drv__enqueue(s, op);
}

static CUresult copy1d(uint64_t dst, gf_side dside, uint64_t src, gf_side sside, size_t n, CUstream h,
                       int ptds, int async)
{
    GF_CHECK_INIT();
    int dpage, spage;
    CUresult rc;
    if (n == 0) {
        gf_ctx *c;
        gf_stream *s;
        return gf_drv__stream_arg(h, ptds, &c, &s);
    }
    if ((rc = check_side(dst, n, dside, &dpage)) || (rc = check_side(src, n, sside, &spage))) {
        gf_ctx *c;
        gf_stream *s;
        CUresult crc = gf_drv__stream_arg(h, ptds, &c, &s);
        return crc ? crc : rc;
    }
    gf_copy cp = {
        .dst = (uint8_t *)(uintptr_t)dst, .src = (const uint8_t *)(uintptr_t)src,
        .width = n, .height = 1, .depth = 1, .dpitch = n, .spitch = n, .dheight = 1, .sheight = 1,
    };
    return submit_copy(&cp, h, ptds, async, spage);
}

#define HP(p) ((uint64_t)(uintptr_t)(p))

GF_SIM_API_PTDS(cuMemcpyHtoD_v2, (CUdeviceptr d, const void *s, size_t n),
                copy1d(d, SIDE_DEVICE, HP(s), SIDE_HOST, n, NULL, ptds, 0))
GF_SIM_API_PTDS(cuMemcpyDtoH_v2, (void *d, CUdeviceptr s, size_t n),
                copy1d(HP(d), SIDE_HOST, s, SIDE_DEVICE, n, NULL, ptds, 0))
GF_SIM_API_PTDS(cuMemcpyDtoD_v2, (CUdeviceptr d, CUdeviceptr s, size_t n),
                copy1d(d, SIDE_DEVICE, s, SIDE_DEVICE, n, NULL, ptds, 0))
GF_SIM_API_PTDS(cuMemcpy, (CUdeviceptr d, CUdeviceptr s, size_t n),
                copy1d(d, SIDE_ANY, s, SIDE_ANY, n, NULL, ptds, 0))

GF_SIM_API_PTSZ(cuMemcpyHtoDAsync_v2, (CUdeviceptr d, const void *s, size_t n, CUstream h),
                copy1d(d, SIDE_DEVICE, HP(s), SIDE_HOST, n, h, ptds, 1))
GF_SIM_API_PTSZ(cuMemcpyDtoHAsync_v2, (void *d, CUdeviceptr s, size_t n, CUstream h),
                copy1d(HP(d), SIDE_HOST, s, SIDE_DEVICE, n, h, ptds, 1))
GF_SIM_API_PTSZ(cuMemcpyDtoDAsync_v2, (CUdeviceptr d, CUdeviceptr s, size_t n, CUstream h),
                copy1d(d, SIDE_DEVICE, s, SIDE_DEVICE, n, h, ptds, 1))
GF_SIM_API_PTSZ(cuMemcpyAsync, (CUdeviceptr d, CUdeviceptr s, size_t n, CUstream h),
                copy1d(d, SIDE_ANY, s, SIDE_ANY, n, h, ptds, 1))

static CUresult peer_ctx(CUcontext h)
{
    GF_CHECK_INIT();
    gf_ctx *c = gf_drv__obj_any(GF_DRV_CTX, h);
    if (!c || (c->primary && !c->active)) return CUDA_ERROR_INVALID_CONTEXT;
    if (!c->h.live) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
    return CUDA_SUCCESS;
}

static CUresult copy_peer(CUdeviceptr d, CUcontext dc, CUdeviceptr s, CUcontext sc, size_t n, CUstream h,
                          int ptds, int async)
{
    CUresult rc = peer_ctx(dc);
    if (rc || (rc = peer_ctx(sc))) return rc;
    return copy1d(d, SIDE_DEVICE, s, SIDE_DEVICE, n, h, ptds, async);
}

GF_SIM_API_PTDS(cuMemcpyPeer, (CUdeviceptr d, CUcontext dc, CUdeviceptr s, CUcontext sc, size_t n),
                copy_peer(d, dc, s, sc, n, NULL, ptds, 0))
GF_SIM_API_PTSZ(cuMemcpyPeerAsync, (CUdeviceptr d, CUcontext dc, CUdeviceptr s, CUcontext sc, size_t n, CUstream h),
                copy_peer(d, dc, s, sc, n, h, ptds, 1))

/* ---- 2D and 3D ----------------------------------------------------------------------------- */

typedef struct gf_side3 {
    CUmemorytype type;
    uint64_t ptr;
    size_t x, y, z, pitch, height;
} gf_side3;

/* Resolves one side of a 2D/3D copy to its first byte and checks the whole footprint. */
static CUresult side3(const gf_side3 *sd, size_t w, size_t h, size_t d, uint64_t *first, int *pageable)
{
    *pageable = 0;
    if (sd->type == CU_MEMORYTYPE_ARRAY) {
        GF_LOG_ONCE(GF_LOG_WARN, GF_SIM_LOG, "CUDA arrays are not supported by the sim");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (sd->type != CU_MEMORYTYPE_HOST && sd->type != CU_MEMORYTYPE_DEVICE && sd->type != CU_MEMORYTYPE_UNIFIED)
        return CUDA_ERROR_INVALID_VALUE;
    if ((h > 1 || d > 1) && sd->pitch < w + sd->x) return CUDA_ERROR_INVALID_VALUE;
    if (d > 1 && sd->height < h + sd->y) return CUDA_ERROR_INVALID_VALUE;
    uint64_t base = sd->ptr + sd->z * sd->pitch * sd->height + sd->y * sd->pitch + sd->x;
    uint64_t span = (d - 1) * sd->pitch * sd->height + (h - 1) * sd->pitch + w;
    gf_side side = sd->type == CU_MEMORYTYPE_HOST ? SIDE_HOST : sd->type == CU_MEMORYTYPE_DEVICE ? SIDE_DEVICE : SIDE_ANY;
    CUresult rc = check_side(base, span, side, pageable);
    if (rc) return rc;
    *first = base;
    return CUDA_SUCCESS;
}

static CUresult copy3d(const gf_side3 *dst, const gf_side3 *src, size_t w, size_t h, size_t d, CUstream hs,
                       int ptds, int async)
{
    GF_CHECK_INIT();
    if (w == 0 || h == 0 || d == 0) {
        gf_ctx *c;
        gf_stream *s;
        return gf_drv__stream_arg(hs, ptds, &c, &s);
    }
    uint64_t dp, sp;
    int dpage, spage;
    CUresult rc;
    if ((rc = side3(dst, w, h, d, &dp, &dpage)) || (rc = side3(src, w, h, d, &sp, &spage))) {
        gf_ctx *c;
        gf_stream *s;
        CUresult crc = gf_drv__stream_arg(hs, ptds, &c, &s);
        return crc ? crc : rc;
    }
    gf_copy cp = {
        .dst = (uint8_t *)(uintptr_t)dp, .src = (const uint8_t *)(uintptr_t)sp, .width = w, .height = h,
        .depth = d, .dpitch = dst->pitch ? dst->pitch : w, .spitch = src->pitch ? src->pitch : w,
        .dheight = dst->height ? dst->height : h, .sheight = src->height ? src->height : h,
    };
    return submit_copy(&cp, hs, ptds, async, spage);
}

static CUresult copy2d(const CUDA_MEMCPY2D *p, CUstream h, int ptds, int async)
{
    GF_CHECK_INIT();
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    gf_side3 s = {p->srcMemoryType, p->srcMemoryType == CU_MEMORYTYPE_HOST ? HP(p->srcHost) : p->srcDevice,
                  p->srcXInBytes, p->srcY, 0, p->srcPitch, p->Height};
    gf_side3 d = {p->dstMemoryType, p->dstMemoryType == CU_MEMORYTYPE_HOST ? HP(p->dstHost) : p->dstDevice,
                  p->dstXInBytes, p->dstY, 0, p->dstPitch, p->Height};
    if (p->srcMemoryType == CU_MEMORYTYPE_UNIFIED) s.ptr = p->srcDevice;
    if (p->dstMemoryType == CU_MEMORYTYPE_UNIFIED) d.ptr = p->dstDevice;
    if (p->Height > 1 && (p->srcPitch < p->WidthInBytes || p->dstPitch < p->WidthInBytes))
        return CUDA_ERROR_INVALID_VALUE;
    return copy3d(&d, &s, p->WidthInBytes, p->Height, 1, h, ptds, async);
}

GF_SIM_API_PTDS(cuMemcpy2D_v2, (const CUDA_MEMCPY2D *p), copy2d(p, NULL, ptds, 0))
GF_SIM_API_PTDS(cuMemcpy2DUnaligned_v2, (const CUDA_MEMCPY2D *p), copy2d(p, NULL, ptds, 0))
GF_SIM_API_PTSZ(cuMemcpy2DAsync_v2, (const CUDA_MEMCPY2D *p, CUstream h), copy2d(p, h, ptds, 1))

static CUresult copy3d_desc(const CUDA_MEMCPY3D *p, CUstream h, int ptds, int async)
{
    GF_CHECK_INIT();
    if (!p || p->reserved0 || p->reserved1 || p->srcLOD || p->dstLOD) return CUDA_ERROR_INVALID_VALUE;
    gf_side3 s = {p->srcMemoryType, p->srcMemoryType == CU_MEMORYTYPE_HOST ? HP(p->srcHost) : p->srcDevice,
                  p->srcXInBytes, p->srcY, p->srcZ, p->srcPitch, p->srcHeight ? p->srcHeight : p->Height};
    gf_side3 d = {p->dstMemoryType, p->dstMemoryType == CU_MEMORYTYPE_HOST ? HP(p->dstHost) : p->dstDevice,
                  p->dstXInBytes, p->dstY, p->dstZ, p->dstPitch, p->dstHeight ? p->dstHeight : p->Height};
    return copy3d(&d, &s, p->WidthInBytes, p->Height, p->Depth, h, ptds, async);
}

GF_SIM_API_PTDS(cuMemcpy3D_v2, (const CUDA_MEMCPY3D *p), copy3d_desc(p, NULL, ptds, 0))
GF_SIM_API_PTSZ(cuMemcpy3DAsync_v2, (const CUDA_MEMCPY3D *p, CUstream h),
                copy3d_desc(p, h, ptds, 1))

/* ---- memset -------------------------------------------------------------------------------- */

static CUresult memset2d(CUdeviceptr dst, size_t pitch, uint32_t value, unsigned elem, size_t width,
                         size_t height, CUstream h, int ptds, int async)
{
    gf_ctx *c;
    gf_stream *s;
    CUresult rc = gf_drv__stream_arg(h, ptds, &c, &s);
    if (rc) return rc;
    if (width == 0 || height == 0) return CUDA_SUCCESS;
    if (dst % elem || (height > 1 && (pitch < width * elem || pitch % elem))) return CUDA_ERROR_INVALID_VALUE;
    uint64_t span = (height - 1) * (uint64_t)pitch + width * elem;
    if (!gf_drv__mem_find(dst, 0, NULL) || gf_drv__mem_check_range(dst, span)) return CUDA_ERROR_INVALID_VALUE;
    gf_op *op = gf_drv__op_new(GF_OP_MEMSET);
    if (!op) return CUDA_ERROR_OUT_OF_MEMORY;
    op->u.memset.dst = (uint8_t *)(uintptr_t)dst;
    op->u.memset.pitch = height > 1 ? pitch : width * elem;
    op->u.memset.width = width;
    op->u.memset.height = height;
    op->u.memset.value = value;
    op->u.memset.elem = elem;
    return async ? gf_drv__enqueue(s, op) : gf_drv__run_sync(s, op);
}

/* The memset family: each element size, 1D and 2D, synchronous (_ptds) and async (_ptsz). */
#define MEMSET_SIZES(X) X(8, unsigned char, 1) X(16, unsigned short, 2) X(32, unsigned int, 4)
#define MEMSET_FNS(bits, T, elem)                                                              \
    GF_SIM_API_PTDS(cuMemsetD##bits##_v2, (CUdeviceptr d, T v, size_t n),                      \
                    memset2d(d, n * elem, v, elem, n, 1, NULL, ptds, 0))                       \
    GF_SIM_API_PTSZ(cuMemsetD##bits##Async, (CUdeviceptr d, T v, size_t n, CUstream h),        \
                    memset2d(d, n * elem, v, elem, n, 1, h, ptds, 1))                          \
    GF_SIM_API_PTDS(cuMemsetD2D##bits##_v2,                                                    \
                    (CUdeviceptr d, size_t pitch, T v, size_t w, size_t hgt),                  \
                    memset2d(d, pitch, v, elem, w, hgt, NULL, ptds, 0))                        \
    GF_SIM_API_PTSZ(cuMemsetD2D##bits##Async,                                                  \
                    (CUdeviceptr d, size_t pitch, T v, size_t w, size_t hgt, CUstream h),      \
                    memset2d(d, pitch, v, elem, w, hgt, h, ptds, 1))

MEMSET_SIZES(MEMSET_FNS)
