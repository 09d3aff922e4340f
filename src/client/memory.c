/* SPDX-License-Identifier: Apache-2.0 */
/* VRAM limits: every allocation path charges the vGPU's shared counter before (or right after)
 * the real driver allocates, and every free path returns exactly what that allocation took,
 * found in a process-local map from pointer/handle to (size, slot, context). */
#include "client.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

enum { K_PTR = 1, K_HANDLE, K_ARRAY, K_MIPMAP, K_MAPPING };

typedef struct entry {
    uint64_t key;   /* 0 = empty */
    uint8_t kind;   /* 0 with key 1 = tombstone */
    int8_t slot;
    uint32_t refs;  /* K_HANDLE: the handle itself, its retains and its mappings */
    uint64_t bytes; /* K_MAPPING: the mapped size */
    CUcontext ctx;
    uint64_t handle; /* K_MAPPING: what is mapped there */
} entry;

static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;
static entry *map;
static size_t map_cap, map_used; /* used counts tombstones too */

static size_t hash(uint64_t key, uint8_t kind)
{
    uint64_t h = (key ^ ((uint64_t)kind << 56)) * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 17);
}

/* Under map_lock. */
static int map_grow(void)
{
    size_t ncap = map_cap ? map_cap * 2 : 1024;
    entry *n = calloc(ncap, sizeof *n);
    if (!n) return -1;
    for (size_t i = 0; i < map_cap; i++) {
        entry *e = &map[i];
        if (!e->kind) continue;
        size_t j = hash(e->key, e->kind) & (ncap - 1);
        while (n[j].key) j = (j + 1) & (ncap - 1);
        n[j] = *e;
    }
    size_t live = 0;
    for (size_t i = 0; i < ncap; i++) live += n[i].kind != 0;
    free(map);
    map = n;
    map_cap = ncap;
    map_used = live;
    return 0;
}

static void map_put(uint8_t kind, uint64_t key, int slot, uint64_t bytes, CUcontext ctx)
{
    pthread_mutex_lock(&map_lock);
    if ((map_used + 1) * 4 >= map_cap * 3 && map_grow() != 0) {
        pthread_mutex_unlock(&map_lock);
        gf_log(GF_LOG_ERROR, GF_CLIENT_LOG, "out of host memory for VRAM accounting");
        return;
    }
    size_t j = hash(key, kind) & (map_cap - 1);
    while (map[j].key && !(map[j].kind == kind && map[j].key == key)) j = (j + 1) & (map_cap - 1);
    if (!map[j].key) map_used++;
    map[j] = (entry){key, kind, (int8_t)slot, 1, bytes, ctx, 0};
    pthread_mutex_unlock(&map_lock);
}

/* Under map_lock: the live entry (kind, key), or NULL. */
static entry *map_find(uint8_t kind, uint64_t key)
{
    if (!map_cap) return NULL;
    for (size_t j = hash(key, kind) & (map_cap - 1); map[j].key; j = (j + 1) & (map_cap - 1))
        if (map[j].kind == kind && map[j].key == key) return &map[j];
    return NULL;
}

/* Removes (kind, key); returns 1 with its slot and size when it was there. */
static int map_take(uint8_t kind, uint64_t key, int *slot, uint64_t *bytes)
{
    int found = 0;
    pthread_mutex_lock(&map_lock);
    if (map_cap) {
        size_t j = hash(key, kind) & (map_cap - 1);
        while (map[j].key) {
            if (map[j].kind == kind && map[j].key == key) {
                *slot = map[j].slot;
                *bytes = map[j].bytes;
                map[j].kind = 0; /* tombstone: key stays nonzero */
                found = 1;
                break;
            }
            j = (j + 1) & (map_cap - 1);
        }
    }
    pthread_mutex_unlock(&map_lock);
    return found;
}

void gf_mem_forget_ctx(CUcontext ctx)
{
    if (!gf_g.lim || !ctx) return;
    pthread_mutex_lock(&map_lock);
    for (size_t i = 0; i < map_cap; i++) {
        entry *e = &map[i];
        if (e->kind && e->kind != K_HANDLE && e->kind != K_MAPPING && e->ctx == ctx) {
            if (e->slot >= 0) gf_limiter_mem_release(gf_g.lim, (unsigned)e->slot, e->bytes);
            e->kind = 0;
        }
    }
    pthread_mutex_unlock(&map_lock);
}

/* ---- charging ------------------------------------------------------------------------------ */

static CUcontext current_ctx(void)
{
    CUcontext c = NULL;
    if (gf_real.cuCtxGetCurrent) gf_real.cuCtxGetCurrent(&c);
    return c;
}

/* Charges bytes to slot; CUDA_ERROR_OUT_OF_MEMORY (logged once) over the vGPU's limit. */
static CUresult charge(int slot, uint64_t bytes, const char *fn)
{
    if (slot < 0 || !bytes) return CUDA_SUCCESS;
    if (gf_limiter_mem_reserve(gf_g.lim, (unsigned)slot, bytes) == GF_OK) return CUDA_SUCCESS;
    uint64_t used, limit;
    gf_limiter_mem_info(gf_g.lim, (unsigned)slot, &used, &limit);
    GF_LOG_ONCE(GF_LOG_WARN, GF_CLIENT_LOG,
                "%s(%llu bytes): over the vGPU's VRAM limit of %llu bytes (%llu in use by its "
                "processes); returning CUDA_ERROR_OUT_OF_MEMORY",
                fn, (unsigned long long)bytes, (unsigned long long)limit,
                (unsigned long long)used);
    gf_log(GF_LOG_DEBUG, GF_CLIENT_LOG, "%s(%llu): over the VRAM limit (%llu/%llu used)", fn,
           (unsigned long long)bytes, (unsigned long long)used, (unsigned long long)limit);
    return CUDA_ERROR_OUT_OF_MEMORY;
}

static void uncharge(int slot, uint64_t bytes)
{
    if (slot >= 0 && bytes) gf_limiter_mem_release(gf_g.lim, (unsigned)slot, bytes);
}

static void release_key(uint8_t kind, uint64_t key)
{
    int slot;
    uint64_t bytes;
    if (map_take(kind, key, &slot, &bytes)) uncharge(slot, bytes);
}

/* The common shape: charge first, allocate, track; undo the charge when the driver fails. */
#define LIMITED (gf_g.lim && !gf_in_wrapper)
#define ENTER() gf_in_wrapper++
#define LEAVE() gf_in_wrapper--

static CUresult alloc_tracked(uint8_t kind, int slot, uint64_t bytes, const char *fn,
                              CUresult (*call)(void *), void *arg, uint64_t *key)
{
    CUresult r = charge(slot, bytes, fn);
    if (r != CUDA_SUCCESS) return r;
    ENTER();
    r = call(arg);
    LEAVE();
    if (r != CUDA_SUCCESS) {
        uncharge(slot, bytes);
        return r;
    }
    map_put(kind, *key, slot, bytes, current_ctx());
    return r;
}

/* ---- cuMemAlloc family --------------------------------------------------------------------- */

struct a_alloc {
    CUdeviceptr *dptr;
    size_t bytes;
    uint64_t key;
};

static CUresult do_alloc_v2(void *p)
{
    struct a_alloc *a = p;
    CUresult r = gf_real.cuMemAlloc_v2(a->dptr, a->bytes);
    if (r == CUDA_SUCCESS) a->key = *a->dptr;
    return r;
}

GF_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    gf_ensure();
    if (!LIMITED || !dptr || !bytesize) return gf_real.cuMemAlloc_v2(dptr, bytesize);
    struct a_alloc a = {dptr, bytesize, 0};
    return alloc_tracked(K_PTR, gf_client_current_slot(), bytesize, "cuMemAlloc", do_alloc_v2,
                         &a, &a.key);
}

struct a_alloc_v1 {
    CUdeviceptr_v1 *dptr;
    unsigned bytes;
    uint64_t key;
};

static CUresult do_alloc_v1(void *p)
{
    struct a_alloc_v1 *a = p;
    CUresult r = gf_real.cuMemAlloc(a->dptr, a->bytes);
    if (r == CUDA_SUCCESS) a->key = *a->dptr;
    return r;
}

GF_EXPORT CUresult cuMemAlloc(CUdeviceptr_v1 *dptr, unsigned int bytesize)
{
    gf_ensure();
    if (!LIMITED || !dptr || !bytesize) return gf_real.cuMemAlloc(dptr, bytesize);
    struct a_alloc_v1 a = {dptr, bytesize, 0};
    return alloc_tracked(K_PTR, gf_client_current_slot(), bytesize, "cuMemAlloc", do_alloc_v1,
                         &a, &a.key);
}

struct a_managed {
    CUdeviceptr *dptr;
    size_t bytes;
    unsigned flags;
    uint64_t key;
};

static CUresult do_managed(void *p)
{
    struct a_managed *a = p;
    CUresult r = gf_real.cuMemAllocManaged(a->dptr, a->bytes, a->flags);
    if (r == CUDA_SUCCESS) a->key = *a->dptr;
    return r;
}

GF_EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    gf_ensure();
    if (!LIMITED || !dptr || !bytesize) return gf_real.cuMemAllocManaged(dptr, bytesize, flags);
    struct a_managed a = {dptr, bytesize, flags, 0};
    return alloc_tracked(K_PTR, gf_client_current_slot(), bytesize, "cuMemAllocManaged",
                         do_managed, &a, &a.key);
}

/* Pitch allocations: the size is known only after the driver chose the pitch, so charge the
 * minimum first and the padding after. */
static CUresult pitch_common(CUdeviceptr *dptr, size_t *pitch, size_t w, size_t h, unsigned esz,
                             int v2)
{
    gf_ensure();
    if (!LIMITED || !dptr || !pitch || !w || !h)
        return v2 ? gf_real.cuMemAllocPitch_v2(dptr, pitch, w, h, esz)
                  : gf_real.cuMemAllocPitch((CUdeviceptr_v1 *)dptr, (unsigned *)pitch,
                                            (unsigned)w, (unsigned)h, esz);
    int slot = gf_client_current_slot();
    uint64_t min = (uint64_t)w * h;
    CUresult r = charge(slot, min, "cuMemAllocPitch");
    if (r != CUDA_SUCCESS) return r;
    ENTER();
    uint64_t key;
    size_t p;
    if (v2) {
        r = gf_real.cuMemAllocPitch_v2(dptr, pitch, w, h, esz);
        key = *dptr;
        p = *pitch;
    } else {
        CUdeviceptr_v1 *d1 = (CUdeviceptr_v1 *)dptr;
        unsigned *p1 = (unsigned *)pitch;
        r = gf_real.cuMemAllocPitch(d1, p1, (unsigned)w, (unsigned)h, esz);
        key = *d1;
        p = *p1;
    }
    LEAVE();
    if (r != CUDA_SUCCESS) {
        uncharge(slot, min);
        return r;
    }
    uint64_t total = (uint64_t)p * h;
    if (total > min && charge(slot, total - min, "cuMemAllocPitch") != CUDA_SUCCESS) {
        ENTER();
        if (v2) gf_real.cuMemFree_v2(key);
        else gf_real.cuMemFree((CUdeviceptr_v1)key);
        LEAVE();
        uncharge(slot, min);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    map_put(K_PTR, key, slot, total > min ? total : min, current_ctx());
    return r;
}

GF_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
                                      size_t Height, unsigned int ElementSizeBytes)
{
    return pitch_common(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes, 1);
}

GF_EXPORT CUresult cuMemAllocPitch(CUdeviceptr_v1 *dptr, unsigned int *pPitch,
                                   unsigned int WidthInBytes, unsigned int Height,
                                   unsigned int ElementSizeBytes)
{
    /* The v1 ABI writes 32-bit values; pitch_common casts back for it. */
    return pitch_common((CUdeviceptr *)dptr, (size_t *)pPitch, WidthInBytes, Height,
                        ElementSizeBytes, 0);
}

GF_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    gf_ensure();
    if (!LIMITED || !dptr) return gf_real.cuMemFree_v2(dptr);
    ENTER();
    CUresult r = gf_real.cuMemFree_v2(dptr);
    LEAVE();
    if (r == CUDA_SUCCESS) release_key(K_PTR, dptr);
    return r;
}

GF_EXPORT CUresult cuMemFree(CUdeviceptr_v1 dptr)
{
    gf_ensure();
    if (!LIMITED || !dptr) return gf_real.cuMemFree(dptr);
    ENTER();
    CUresult r = gf_real.cuMemFree(dptr);
    LEAVE();
    if (r == CUDA_SUCCESS) release_key(K_PTR, dptr);
    return r;
}

/* ---- stream-ordered allocations ------------------------------------------------------------ */

typedef CUresult (*pfn_async)(CUdeviceptr *, size_t, CUstream);
typedef CUresult (*pfn_pool_async)(CUdeviceptr *, size_t, CUmemoryPool, CUstream);

static CUresult async_common(CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool, CUstream s,
                             pfn_async plain, pfn_pool_async from_pool, const char *fn)
{
    gf_ensure();
    if (!LIMITED || !dptr || !bytes)
        return plain ? plain(dptr, bytes, s) : from_pool(dptr, bytes, pool, s);
    int slot = gf_client_current_slot();
    CUresult r = charge(slot, bytes, fn);
    if (r != CUDA_SUCCESS) return r;
    ENTER();
    r = plain ? plain(dptr, bytes, s) : from_pool(dptr, bytes, pool, s);
    LEAVE();
    if (r != CUDA_SUCCESS) {
        uncharge(slot, bytes);
        return r;
    }
    map_put(K_PTR, *dptr, slot, bytes, current_ctx());
    return r;
}

GF_EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    return async_common(dptr, bytesize, NULL, hStream, gf_real.cuMemAllocAsync, NULL,
                        "cuMemAllocAsync");
}

GF_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    return async_common(dptr, bytesize, NULL, hStream, gf_real.cuMemAllocAsync_ptsz, NULL,
                        "cuMemAllocAsync");
}

GF_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                           CUstream hStream)
{
    return async_common(dptr, bytesize, pool, hStream, NULL, gf_real.cuMemAllocFromPoolAsync,
                        "cuMemAllocFromPoolAsync");
}

GF_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize,
                                                CUmemoryPool pool, CUstream hStream)
{
    return async_common(dptr, bytesize, pool, hStream, NULL,
                        gf_real.cuMemAllocFromPoolAsync_ptsz, "cuMemAllocFromPoolAsync");
}

static CUresult free_async(CUdeviceptr dptr, CUstream s, CUresult (*f)(CUdeviceptr, CUstream))
{
    gf_ensure();
    if (!LIMITED || !dptr) return f(dptr, s);
    ENTER();
    CUresult r = f(dptr, s);
    LEAVE();
    if (r == CUDA_SUCCESS) release_key(K_PTR, dptr);
    return r;
}

GF_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
{
    return free_async(dptr, hStream, gf_real.cuMemFreeAsync);
}

GF_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream)
{
    return free_async(dptr, hStream, gf_real.cuMemFreeAsync_ptsz);
}

/* ---- virtual memory management ------------------------------------------------------------- */

GF_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                               const CUmemAllocationProp *prop, unsigned long long flags)
{
    gf_ensure();
    if (!LIMITED || !handle || !prop || !size) return gf_real.cuMemCreate(handle, size, prop, flags);
    int slot = prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE
                   ? gf_client_slot((CUdevice)prop->location.id)
                   : -1;
    CUresult r = charge(slot, size, "cuMemCreate");
    if (r != CUDA_SUCCESS) return r;
    ENTER();
    r = gf_real.cuMemCreate(handle, size, prop, flags);
    LEAVE();
    if (r != CUDA_SUCCESS) {
        uncharge(slot, size);
        return r;
    }
    map_put(K_HANDLE, (uint64_t)*handle, slot, size, NULL);
    return r;
}

/* A cuMemCreate handle's memory lives while the handle, a retained copy of it or a mapping of it
 * does (programs commonly release the handle right after mapping it): the charge is returned
 * when the last of them goes. */
static void handle_ref(uint64_t handle, int delta)
{
    int slot = -1;
    uint64_t bytes = 0;
    pthread_mutex_lock(&map_lock);
    entry *e = map_find(K_HANDLE, handle);
    if (e) {
        if (delta > 0) {
            e->refs++;
        } else if (--e->refs == 0) {
            slot = e->slot;
            bytes = e->bytes;
            e->kind = 0;
        }
    }
    pthread_mutex_unlock(&map_lock);
    uncharge(slot, bytes);
}

GF_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
    gf_ensure();
    if (!LIMITED) return gf_real.cuMemRelease(handle);
    ENTER();
    CUresult r = gf_real.cuMemRelease(handle);
    LEAVE();
    if (r == CUDA_SUCCESS) handle_ref((uint64_t)handle, -1);
    return r;
}

GF_EXPORT CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
    gf_ensure();
    if (!LIMITED) return gf_real.cuMemRetainAllocationHandle(handle, addr);
    ENTER();
    CUresult r = gf_real.cuMemRetainAllocationHandle(handle, addr);
    LEAVE();
    if (r == CUDA_SUCCESS && handle) handle_ref((uint64_t)*handle, 1);
    return r;
}

GF_EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                            CUmemGenericAllocationHandle handle, unsigned long long flags)
{
    gf_ensure();
    if (!LIMITED) return gf_real.cuMemMap(ptr, size, offset, handle, flags);
    ENTER();
    CUresult r = gf_real.cuMemMap(ptr, size, offset, handle, flags);
    LEAVE();
    if (r != CUDA_SUCCESS) return r;
    handle_ref((uint64_t)handle, 1);
    map_put(K_MAPPING, (uint64_t)ptr, -1, size, NULL);
    pthread_mutex_lock(&map_lock);
    entry *e = map_find(K_MAPPING, (uint64_t)ptr);
    if (e) e->handle = (uint64_t)handle;
    pthread_mutex_unlock(&map_lock);
    return r;
}

/* Every mapping inside [ptr, ptr + size) goes (the driver unmaps whole mappings only). */
GF_EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    gf_ensure();
    if (!LIMITED) return gf_real.cuMemUnmap(ptr, size);
    ENTER();
    CUresult r = gf_real.cuMemUnmap(ptr, size);
    LEAVE();
    if (r != CUDA_SUCCESS) return r;
    for (;;) {
        uint64_t handle = 0;
        int found = 0;
        pthread_mutex_lock(&map_lock);
        for (size_t i = 0; i < map_cap && !found; i++) {
            entry *e = &map[i];
            if (e->kind == K_MAPPING && e->key >= ptr && e->key - ptr < size) {
                handle = e->handle;
                e->kind = 0;
                found = 1;
            }
        }
        pthread_mutex_unlock(&map_lock);
        if (!found) break;
        handle_ref(handle, -1);
    }
    return r;
}

/* ---- arrays -------------------------------------------------------------------------------- */

static uint64_t format_bytes(CUarray_format f)
{
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8: return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF: return 2;
    default: return 4; /* 32-bit formats; a safe upper bound for packed/compressed ones */
    }
}

static uint64_t dim(size_t v)
{
    return v ? v : 1;
}

/* Bytes of an array: width x height x depth x channels x element size (the driver's padding
 * and alignment are not visible through the API; docs/limiter.md). */
static uint64_t array_bytes(size_t w, size_t h, size_t d, unsigned ch, CUarray_format f)
{
    return dim(w) * dim(h) * dim(d) * (ch ? ch : 1) * format_bytes(f);
}

static uint64_t mipmap_bytes(const CUDA_ARRAY3D_DESCRIPTOR *a, unsigned levels)
{
    uint64_t total = 0;
    size_t w = a->Width, h = a->Height, d = a->Depth;
    for (unsigned i = 0; i < (levels ? levels : 1); i++) {
        total += array_bytes(w, h, d, a->NumChannels, a->Format);
        w = w > 1 ? w / 2 : 1;
        h = h > 1 ? h / 2 : h;
        d = d > 1 ? d / 2 : d;
    }
    return total;
}

/* The array creators differ only in their descriptor and the bytes it means: each charges
 * first (so an array over the limit never reaches the driver) and gives back on failure. */
#define CHARGED_CREATE(fn, kind, what, params, bytes, real_call)                              \
    GF_EXPORT CUresult fn params                                                              \
    {                                                                                         \
        gf_ensure();                                                                          \
        if (!LIMITED || !pHandle || !desc) return real_call;                                  \
        int slot = gf_client_current_slot();                                                  \
        uint64_t b = (bytes);                                                                 \
        CUresult r = charge(slot, b, what);                                                   \
        if (r != CUDA_SUCCESS) return r;                                                      \
        ENTER();                                                                              \
        r = real_call;                                                                        \
        LEAVE();                                                                              \
        if (r != CUDA_SUCCESS) uncharge(slot, b);                                             \
        else map_put(kind, (uint64_t)(uintptr_t)*pHandle, slot, b, current_ctx());           \
        return r;                                                                             \
    }

CHARGED_CREATE(cuArrayCreate_v2, K_ARRAY, "cuArrayCreate",
               (CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *desc),
               array_bytes(desc->Width, desc->Height, 1, desc->NumChannels, desc->Format),
               gf_real.cuArrayCreate_v2(pHandle, desc))
CHARGED_CREATE(cuArrayCreate, K_ARRAY, "cuArrayCreate",
               (CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR_v1 *desc),
               array_bytes(desc->Width, desc->Height, 1, desc->NumChannels, desc->Format),
               gf_real.cuArrayCreate(pHandle, desc))
CHARGED_CREATE(cuArray3DCreate_v2, K_ARRAY, "cuArray3DCreate",
               (CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *desc),
               array_bytes(desc->Width, desc->Height, desc->Depth, desc->NumChannels,
                           desc->Format),
               gf_real.cuArray3DCreate_v2(pHandle, desc))
CHARGED_CREATE(cuArray3DCreate, K_ARRAY, "cuArray3DCreate",
               (CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR_v1 *desc),
               array_bytes(desc->Width, desc->Height, desc->Depth, desc->NumChannels,
                           desc->Format),
               gf_real.cuArray3DCreate(pHandle, desc))

GF_EXPORT CUresult cuArrayDestroy(CUarray hArray)
{
    gf_ensure();
    if (!LIMITED || !hArray) return gf_real.cuArrayDestroy(hArray);
    ENTER();
    CUresult r = gf_real.cuArrayDestroy(hArray);
    LEAVE();
    if (r == CUDA_SUCCESS) release_key(K_ARRAY, (uint64_t)(uintptr_t)hArray);
    return r;
}

CHARGED_CREATE(cuMipmappedArrayCreate, K_MIPMAP, "cuMipmappedArrayCreate",
               (CUmipmappedArray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *desc,
                unsigned int numMipmapLevels),
               mipmap_bytes(desc, numMipmapLevels),
               gf_real.cuMipmappedArrayCreate(pHandle, desc, numMipmapLevels))

GF_EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray h)
{
    gf_ensure();
    if (!LIMITED || !h) return gf_real.cuMipmappedArrayDestroy(h);
    ENTER();
    CUresult r = gf_real.cuMipmappedArrayDestroy(h);
    LEAVE();
    if (r == CUDA_SUCCESS) release_key(K_MIPMAP, (uint64_t)(uintptr_t)h);
    return r;
}
