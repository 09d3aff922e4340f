/* SPDX-License-Identifier: Apache-2.0 */
/* Device memory of the sim driver. Device memory lives in the host address space, so that the
 * PTX engine can dereference device pointers: one large PROT_NONE arena is reserved per process
 * and allocations are carved out of it (read-write while allocated, returned to the kernel when
 * freed), so an allocation costs no RAM until it is touched. VRAM is charged to the shared
 * simstate, which is what makes cuMemAlloc fail with CUDA_ERROR_OUT_OF_MEMORY when the
 * simulated device is full. The allocation table (sorted by base) validates every pointer an
 * API call or a kernel uses. Also here: pinned host memory, managed memory, stream-ordered
 * pools and the virtual memory management calls (cuMemCreate/cuMemMap...). */
#define __CUDA_API_VERSION_INTERNAL 1
#include "driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GF_PAGE 4096ull
#define GF_GRAN (2ull << 20)

static uint64_t round_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

/* ---- the arena: free extents of address space ---------------------------------------------- */

typedef struct gf_extent {
    uint64_t base, len;
} gf_extent;

static gf_extent *g_free;
static size_t g_nfree, g_capfree;

typedef struct gf_reservation {
    uint64_t base, size;
} gf_reservation;

static gf_reservation *g_resv;
static size_t g_nresv, g_capresv;

int gf_drv__arena_init(char *err, size_t errlen)
{
    static const uint64_t sizes[] = {1ull << 40, 1ull << 38, 1ull << 36, 1ull << 34};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = mmap(NULL, sizes[i], PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) continue;
        g_drv.arena = p;
        g_drv.arena_size = sizes[i];
        uint64_t b = round_up((uint64_t)(uintptr_t)p, GF_GRAN);
        g_free = malloc(16 * sizeof *g_free);
        if (!g_free) break;
        g_capfree = 16;
        g_free[0] = (gf_extent){b, (uint64_t)(uintptr_t)p + sizes[i] - b};
        g_nfree = 1;
        return 0;
    }
    snprintf(err, errlen, "cannot reserve address space for device memory (mmap: %s)", strerror(errno));
    return -1;
}

/* Takes len bytes aligned to align from the arena; 0 when none is left. mem_lock held. */
static uint64_t va_take(uint64_t len, uint64_t align)
{
    for (size_t i = 0; i < g_nfree; i++) {
        gf_extent *e = &g_free[i];
        uint64_t start = round_up(e->base, align);
        if (start + len > e->base + e->len || start < e->base) continue;
        uint64_t end = start + len, eend = e->base + e->len;
        if (start == e->base && end == eend) {
            memmove(e, e + 1, (g_nfree - i - 1) * sizeof *e);
            g_nfree--;
        } else if (start == e->base) {
            e->base = end;
            e->len = eend - end;
        } else if (end == eend) {
            e->len = start - e->base;
        } else {
            if (g_nfree == g_capfree) {
                gf_extent *n = realloc(g_free, 2 * g_capfree * sizeof *n);
                if (!n) return 0;
                g_free = n;
                g_capfree *= 2;
                e = &g_free[i];
            }
            memmove(e + 2, e + 1, (g_nfree - i - 1) * sizeof *e);
            g_nfree++;
            e->len = start - e->base;
            e[1] = (gf_extent){end, eend - end};
        }
        return start;
    }
    return 0;
}

/* Gives [base, base+len) back to the arena, coalescing. mem_lock held. */
static void va_give(uint64_t base, uint64_t len)
{
    size_t i = 0;
    while (i < g_nfree && g_free[i].base < base) i++;
    int merge_prev = i > 0 && g_free[i - 1].base + g_free[i - 1].len == base;
    int merge_next = i < g_nfree && base + len == g_free[i].base;
    if (merge_prev && merge_next) {
        g_free[i - 1].len += len + g_free[i].len;
        memmove(&g_free[i], &g_free[i + 1], (g_nfree - i - 1) * sizeof *g_free);
        g_nfree--;
    } else if (merge_prev) {
        g_free[i - 1].len += len;
    } else if (merge_next) {
        g_free[i].base = base;
        g_free[i].len += len;
    } else {
        if (g_nfree == g_capfree) {
            gf_extent *n = realloc(g_free, 2 * g_capfree * sizeof *n);
            if (!n) return; /* leaks the range; never happens in practice */
            g_free = n;
            g_capfree *= 2;
        }
        memmove(&g_free[i + 1], &g_free[i], (g_nfree - i) * sizeof *g_free);
        g_free[i] = (gf_extent){base, len};
        g_nfree++;
    }
}

static void va_release_pages(uint64_t base, uint64_t len)
{
    void *p = (void *)(uintptr_t)base;
    madvise(p, len, MADV_DONTNEED);
    mprotect(p, len, PROT_NONE);
}

/* ---- the allocation table ------------------------------------------------------------------ */

/* Index of the last allocation whose base <= p, or -1. mem_lock held. */
static ssize_t table_floor(uint64_t p)
{
    ssize_t lo = 0, hi = (ssize_t)g_drv.nallocs - 1, r = -1;
    while (lo <= hi) {
        ssize_t mid = (lo + hi) / 2;
        if (g_drv.allocs[mid].base <= p) {
            r = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return r;
}

static ssize_t table_find(uint64_t p)
{
    ssize_t i = table_floor(p);
    if (i < 0) return -1;
    const gf_alloc *a = &g_drv.allocs[i];
    return p < a->base + (a->size ? a->size : 1) ? i : -1;
}

static int table_insert(const gf_alloc *a)
{
    if (g_drv.nallocs == g_drv.cap_allocs) {
        size_t cap = g_drv.cap_allocs ? 2 * g_drv.cap_allocs : 256;
        gf_alloc *n = realloc(g_drv.allocs, cap * sizeof *n);
        if (!n) return -1;
        g_drv.allocs = n;
        g_drv.cap_allocs = cap;
    }
    ssize_t i = table_floor(a->base) + 1;
    memmove(&g_drv.allocs[i + 1], &g_drv.allocs[i], (g_drv.nallocs - (size_t)i) * sizeof *a);
    g_drv.allocs[i] = *a;
    g_drv.nallocs++;
    return 0;
}

static void table_remove(ssize_t i)
{
    memmove(&g_drv.allocs[i], &g_drv.allocs[i + 1], (g_drv.nallocs - (size_t)i - 1) * sizeof(gf_alloc));
    g_drv.nallocs--;
}

int gf_drv__mem_find(uint64_t p, uint64_t len, gf_alloc *out)
{
    pthread_rwlock_rdlock(&g_drv.mem_lock);
    ssize_t i = table_find(p);
    int ok = i >= 0 && (len == 0 || p + len <= g_drv.allocs[i].base + g_drv.allocs[i].size);
    if (ok && out) *out = g_drv.allocs[i];
    pthread_rwlock_unlock(&g_drv.mem_lock);
    return ok;
}

int gf_drv__peer_enabled(gf_ctx *from, int dev);

static int kernel_may_use(const gf_alloc *a, gf_ctx *c)
{
    if (!a->accessible) return 0;
    switch (a->kind) {
    case GF_MEM_HOST:
    case GF_MEM_REGISTERED:
    case GF_MEM_MANAGED: return 1;
    default: return !c || a->dev == c->dev || gf_drv__peer_enabled(c, a->dev);
    }
}

int gf_drv__mem_check(void *ctx, uint64_t addr, uint64_t len, uint64_t *base, uint64_t *blen)
{
    int ok = 0;
    pthread_rwlock_rdlock(&g_drv.mem_lock);
    ssize_t i = table_find(addr);
    if (i >= 0) {
        const gf_alloc *a = &g_drv.allocs[i];
        if (addr + len <= a->base + a->size && kernel_may_use(a, ctx)) {
            ok = 1;
            if (base) *base = a->base;
            if (blen) *blen = a->size;
        }
    }
    pthread_rwlock_unlock(&g_drv.mem_lock);
    return ok;
}

CUresult gf_drv__mem_check_range(uint64_t p, uint64_t len)
{
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_rdlock(&g_drv.mem_lock);
    ssize_t i = table_find(p);
    while (i >= 0 && (size_t)i < g_drv.nallocs) {
        const gf_alloc *a = &g_drv.allocs[i];
        if (!a->accessible) break;
        uint64_t end = a->base + a->size;
        if (p + len <= end) {
            rc = CUDA_SUCCESS;
            break;
        }
        /* consecutive VMM mappings form one range (PyTorch's expandable segments) */
        if (a->kind != GF_MEM_MAPPED || (size_t)i + 1 >= g_drv.nallocs) break;
        const gf_alloc *b = &g_drv.allocs[i + 1];
        if (b->kind != GF_MEM_MAPPED || b->base != end) break;
        i++;
    }
    pthread_rwlock_unlock(&g_drv.mem_lock);
    return rc;
}

int gf_drv__mem_is_pinned(const void *p, size_t len)
{
    gf_alloc a;
    if (!gf_drv__mem_find((uint64_t)(uintptr_t)p, len, &a)) return 0;
    return a.kind == GF_MEM_HOST || a.kind == GF_MEM_REGISTERED;
}

static int charged_kind(gf_mem_kind k)
{
    return k == GF_MEM_DEVICE || k == GF_MEM_MANAGED || k == GF_MEM_POOL || k == GF_MEM_GLOBAL;
}

CUresult gf_drv__mem_alloc(gf_ctx *c, gf_mem_kind kind, uint64_t size, unsigned flags,
                           gf_pool *pool, uint64_t *out)
{
    if (size == 0) return CUDA_ERROR_INVALID_VALUE;
    if (size > g_drv.arena_size / 2) return CUDA_ERROR_OUT_OF_MEMORY;
    uint64_t align = size >= (1ull << 20) ? GF_GRAN : GF_PAGE;
    uint64_t fp = round_up(size, align);
    int dev = pool ? pool->dev : c->dev;
    uint64_t charge = charged_kind(kind) ? fp : 0;
    if (charge && gf_simstate_mem_reserve(g_drv.ss, (unsigned)dev, charge) != 0) {
        gf_log(GF_LOG_INFO, GF_SIM_LOG, "out of memory: %llu bytes requested on device %d",
               (unsigned long long)size, dev);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_rwlock_wrlock(&g_drv.mem_lock);
    uint64_t base = va_take(fp, align);
    if (!base) {
        pthread_rwlock_unlock(&g_drv.mem_lock);
        if (charge) gf_simstate_mem_release(g_drv.ss, (unsigned)dev, charge);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (mprotect((void *)(uintptr_t)base, fp, PROT_READ | PROT_WRITE) != 0) {
        va_give(base, fp);
        pthread_rwlock_unlock(&g_drv.mem_lock);
        if (charge) gf_simstate_mem_release(g_drv.ss, (unsigned)dev, charge);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    gf_alloc a = {
        .base = base, .size = size, .footprint = fp, .charged = charge, .kind = kind,
        .dev = dev, .ctx = c, .flags = flags, .accessible = 1, .pool = pool,
        .id = atomic_fetch_add(&g_drv.next_id, 1) + 1,
    };
    if (table_insert(&a) != 0) {
        va_release_pages(base, fp);
        va_give(base, fp);
        pthread_rwlock_unlock(&g_drv.mem_lock);
        if (charge) gf_simstate_mem_release(g_drv.ss, (unsigned)dev, charge);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (pool) {
        pool->used += fp;
        if (pool->used > pool->used_high) pool->used_high = pool->used;
        if (pool->used > pool->reserved_high) pool->reserved_high = pool->used;
    }
    pthread_rwlock_unlock(&g_drv.mem_lock);
    *out = base;
    return CUDA_SUCCESS;
}

/* Removes entry i and returns its pages; mem_lock held (write). Charges are returned by the
 * caller after unlocking, from *a. */
static void free_entry(ssize_t i, gf_alloc *a)
{
    *a = g_drv.allocs[i];
    table_remove(i);
    if (a->kind != GF_MEM_REGISTERED) {
        va_release_pages(a->base, a->footprint);
        va_give(a->base, a->footprint);
    }
    if (a->pool) a->pool->used -= a->footprint;
}

static void uncharge(const gf_alloc *a)
{
    if (a->charged) gf_simstate_mem_release(g_drv.ss, (unsigned)a->dev, a->charged);
}

CUresult gf_drv__mem_free(uint64_t p, unsigned kinds)
{
    gf_alloc a;
    pthread_rwlock_wrlock(&g_drv.mem_lock);
    ssize_t i = table_find(p);
    if (i < 0 || g_drv.allocs[i].base != p || !(kinds & (1u << g_drv.allocs[i].kind))) {
        pthread_rwlock_unlock(&g_drv.mem_lock);
        return CUDA_ERROR_INVALID_VALUE;
    }
    free_entry(i, &a);
    pthread_rwlock_unlock(&g_drv.mem_lock);
    uncharge(&a);
    return CUDA_SUCCESS;
}

CUresult gf_drv__mem_free_async_exec(CUdeviceptr p)
{
    return gf_drv__mem_free(p, 1u << GF_MEM_POOL | 1u << GF_MEM_DEVICE);
}

void gf_drv__mem_free_ctx(gf_ctx *c)
{
    for (;;) {
        gf_alloc a;
        int found = 0;
        pthread_rwlock_wrlock(&g_drv.mem_lock);
        for (size_t i = 0; i < g_drv.nallocs; i++) {
            gf_alloc *e = &g_drv.allocs[i];
            if (e->ctx == c && e->kind != GF_MEM_MAPPED) {
                free_entry((ssize_t)i, &a);
                found = 1;
                break;
            }
        }
        pthread_rwlock_unlock(&g_drv.mem_lock);
        if (!found) break;
        uncharge(&a);
    }
}

/* Waits for the work of the context that owns p, so memory is not freed under a kernel. */
static void quiesce_owner(uint64_t p)
{
    gf_alloc a;
    if (gf_drv__mem_find(p, 0, &a) && a.ctx && a.ctx->h.live) gf_drv__ctx_wait_idle(a.ctx);
}

/* ---- allocation API ------------------------------------------------------------------------ */

GF_SIM_API CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!dptr) return CUDA_ERROR_INVALID_VALUE;
    uint64_t p;
    if ((rc = gf_drv__mem_alloc(c, GF_MEM_DEVICE, bytesize, 0, NULL, &p))) return rc;
    *dptr = p;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
                                       size_t Height, unsigned int ElementSizeBytes)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!dptr || !pPitch || !WidthInBytes || !Height) return CUDA_ERROR_INVALID_VALUE;
    if (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16)
        return CUDA_ERROR_INVALID_VALUE;
    size_t pitch = (size_t)round_up(WidthInBytes, 512);
    uint64_t p;
    if ((rc = gf_drv__mem_alloc(c, GF_MEM_DEVICE, (uint64_t)pitch * Height, 0, NULL, &p))) return rc;
    *dptr = p;
    *pPitch = pitch;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (dptr == 0) return CUDA_SUCCESS;
    quiesce_owner(dptr);
    return gf_drv__mem_free(dptr, 1u << GF_MEM_DEVICE | 1u << GF_MEM_MANAGED | 1u << GF_MEM_POOL);
}

GF_SIM_API CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!free_bytes || !total) return CUDA_ERROR_INVALID_VALUE;
    uint64_t f, t;
    gf_simstate_mem_info(g_drv.ss, (unsigned)c->dev, &f, &t);
    *free_bytes = f;
    *total = t;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    gf_alloc a;
    if (!gf_drv__mem_find(dptr, 0, &a)) return CUDA_ERROR_NOT_FOUND;
    if (pbase) *pbase = a.base;
    if (psize) *psize = a.size;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!pp) return CUDA_ERROR_INVALID_VALUE;
    if (Flags & ~(unsigned)(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP |
                            CU_MEMHOSTALLOC_WRITECOMBINED))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t p;
    if ((rc = gf_drv__mem_alloc(c, GF_MEM_HOST, bytesize, Flags, NULL, &p))) return rc;
    *pp = (void *)(uintptr_t)p;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemAllocHost_v2(void **pp, size_t bytesize)
{
    return cuMemHostAlloc(pp, bytesize, 0);
}

GF_SIM_API CUresult cuMemFreeHost(void *p)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!p) return CUDA_SUCCESS; /* free(NULL) semantics, as the real driver */
    quiesce_owner((uint64_t)(uintptr_t)p);
    return gf_drv__mem_free((uint64_t)(uintptr_t)p, 1u << GF_MEM_HOST);
}

GF_SIM_API CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!pdptr || Flags != 0) return CUDA_ERROR_INVALID_VALUE;
    gf_alloc a;
    if (!gf_drv__mem_find((uint64_t)(uintptr_t)p, 0, &a) ||
        (a.kind != GF_MEM_HOST && a.kind != GF_MEM_REGISTERED))
        return CUDA_ERROR_INVALID_VALUE;
    *pdptr = (CUdeviceptr)(uintptr_t)p;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemHostGetFlags(unsigned int *pFlags, void *p)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!pFlags) return CUDA_ERROR_INVALID_VALUE;
    gf_alloc a;
    if (!gf_drv__mem_find((uint64_t)(uintptr_t)p, 0, &a) ||
        (a.kind != GF_MEM_HOST && a.kind != GF_MEM_REGISTERED))
        return CUDA_ERROR_INVALID_VALUE;
    *pFlags = a.flags | CU_MEMHOSTALLOC_DEVICEMAP;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!p || !bytesize) return CUDA_ERROR_INVALID_VALUE;
    if (Flags & ~(unsigned)(CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP |
                            CU_MEMHOSTREGISTER_IOMEMORY | CU_MEMHOSTREGISTER_READ_ONLY))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t b = (uint64_t)(uintptr_t)p;
    pthread_rwlock_wrlock(&g_drv.mem_lock);
    ssize_t i = table_floor(b + bytesize - 1);
    if (i >= 0 && g_drv.allocs[i].base + g_drv.allocs[i].size > b) {
        pthread_rwlock_unlock(&g_drv.mem_lock);
        return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    }
    gf_alloc a = {
        .base = b, .size = bytesize, .footprint = bytesize, .kind = GF_MEM_REGISTERED,
        .dev = c->dev, .ctx = c, .flags = Flags, .accessible = 1,
        .id = atomic_fetch_add(&g_drv.next_id, 1) + 1,
    };
    rc = table_insert(&a) ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
    pthread_rwlock_unlock(&g_drv.mem_lock);
    return rc;
}

GF_SIM_API CUresult cuMemHostRegister(void *p, size_t bytesize, unsigned int Flags)
{
    return cuMemHostRegister_v2(p, bytesize, Flags);
}

GF_SIM_API CUresult cuMemHostUnregister(void *p)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    quiesce_owner((uint64_t)(uintptr_t)p);
    rc = gf_drv__mem_free((uint64_t)(uintptr_t)p, 1u << GF_MEM_REGISTERED);
    return rc ? CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED : CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!dptr || (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t p;
    if ((rc = gf_drv__mem_alloc(c, GF_MEM_MANAGED, bytesize, flags, NULL, &p))) return rc;
    *dptr = p;
    return CUDA_SUCCESS;
}

static CUresult managed_range(CUdeviceptr p, size_t count)
{
    gf_alloc a;
    if (!count || !gf_drv__mem_find(p, count, &a)) return CUDA_ERROR_INVALID_VALUE;
    return a.kind == GF_MEM_MANAGED ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

GF_SIM_API CUresult cuMemAdvise(CUdeviceptr p, size_t count, CUmem_advise advice, CUdevice d)
{
    gf_ctx *c;
    (void)advice;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (d != CU_DEVICE_CPU && (rc = gf_drv__dev_check(d))) return rc;
    return managed_range(p, count);
}

GF_SIM_API CUresult cuMemAdvise_v2(CUdeviceptr p, size_t count, CUmem_advise advice, CUmemLocation loc)
{
    gf_ctx *c;
    (void)advice, (void)loc;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    return managed_range(p, count);
}

static CUresult prefetch(CUdeviceptr p, size_t count, CUstream h, int ptds)
{
    gf_ctx *c;
    gf_stream *s;
    CUresult rc = gf_drv__stream_arg(h, ptds, &c, &s);
    if (rc) return rc;
    return managed_range(p, count);
}

GF_SIM_API_PTSZ(cuMemPrefetchAsync, (CUdeviceptr p, size_t n, CUdevice d, CUstream s),
                ((void)d, prefetch(p, n, s, ptds)))
GF_SIM_API_PTSZ(cuMemPrefetchAsync_v2, (CUdeviceptr p, size_t n, CUmemLocation l, unsigned int f, CUstream s),
                ((void)l, (void)f, prefetch(p, n, s, ptds)))

/* ---- pointer attributes -------------------------------------------------------------------- */

static CUresult pointer_attr(void *data, CUpointer_attribute attr, const gf_alloc *a, CUdeviceptr p)
{
    int known = a != NULL;
    int host = known && (a->kind == GF_MEM_HOST || a->kind == GF_MEM_REGISTERED);
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: *(CUcontext *)data = known ? (CUcontext)a->ctx : NULL; break;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        *(unsigned *)data = !known ? 0 : host ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
        break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: *(CUdeviceptr *)data = known ? p : 0; break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        if (known && !host && a->kind != GF_MEM_MANAGED) return CUDA_ERROR_INVALID_VALUE;
        *(void **)data = known ? (void *)(uintptr_t)p : NULL;
        break;
    case CU_POINTER_ATTRIBUTE_P2P_TOKENS: return CUDA_ERROR_NOT_SUPPORTED;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS: *(int *)data = 1; break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID: *(unsigned long long *)data = known ? a->id : 0; break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED: *(int *)data = known && a->kind == GF_MEM_MANAGED; break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *(int *)data = known ? a->dev : -2; break;
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE: *(int *)data = 0; break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: *(CUdeviceptr *)data = known ? a->base : 0; break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE: *(size_t *)data = known ? a->size : 0; break;
    case CU_POINTER_ATTRIBUTE_MAPPED: *(int *)data = known; break;
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES: *(unsigned long long *)data = 0; break;
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE: *(int *)data = 0; break;
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
        *(int *)data = known && a->accessible ? CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE : 0;
        break;
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
        *(CUmemoryPool *)data = known ? (CUmemoryPool)a->pool : NULL;
        break;
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE: *(size_t *)data = known ? a->size : 0; break;
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR: *(void **)data = known ? (void *)(uintptr_t)a->base : NULL; break;
    case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID: *(unsigned long long *)data = known ? a->id : 0; break;
    case CU_POINTER_ATTRIBUTE_IS_HW_DECOMPRESS_CAPABLE: *(int *)data = 0; break;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
    GF_CHECK_INIT();
    if (!data) return CUDA_ERROR_INVALID_VALUE;
    gf_alloc a;
    if (!gf_drv__mem_find(ptr, 0, &a)) return CUDA_ERROR_INVALID_VALUE;
    return pointer_attr(data, attribute, &a, ptr);
}

GF_SIM_API CUresult cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute *attributes,
                                           void **data, CUdeviceptr ptr)
{
    GF_CHECK_INIT();
    if (!numAttributes || !attributes || !data) return CUDA_ERROR_INVALID_VALUE;
    gf_alloc a;
    int known = gf_drv__mem_find(ptr, 0, &a);
    for (unsigned i = 0; i < numAttributes; i++) {
        if (!data[i]) return CUDA_ERROR_INVALID_VALUE;
        CUresult rc = pointer_attr(data[i], attributes[i], known ? &a : NULL, ptr);
        if (rc == CUDA_ERROR_INVALID_VALUE && attributes[i] == CU_POINTER_ATTRIBUTE_HOST_POINTER)
            *(void **)data[i] = NULL;
        else if (rc == CUDA_ERROR_NOT_SUPPORTED)
            continue;
        else if (rc)
            return rc;
    }
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuPointerSetAttribute(const void *value, CUpointer_attribute attribute, CUdeviceptr ptr)
{
    GF_CHECK_INIT();
    if (!value) return CUDA_ERROR_INVALID_VALUE;
    if (attribute != CU_POINTER_ATTRIBUTE_SYNC_MEMOPS) return CUDA_ERROR_INVALID_VALUE;
    return gf_drv__mem_find(ptr, 0, NULL) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* ---- stream-ordered allocation ------------------------------------------------------------- */

static gf_pool *pool_new(int dev, int is_default, const CUmemPoolProps *props)
{
    gf_pool *p = gf_drv__obj_new(GF_DRV_POOL);
    if (!p) return NULL;
    p->dev = dev;
    p->is_default = is_default;
    p->reuse_follow = p->reuse_opportunistic = p->reuse_internal = 1;
    if (props) p->props = *props;
    p->props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    p->props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    p->props.location.id = dev;
    gf_drv__obj_publish(p);
    return p;
}

static gf_pool *default_pool(int dev)
{
    gf_device *d = &g_drv.dev[dev];
    GF_DRV_LOCK();
    if (!d->default_pool) d->default_pool = pool_new(dev, 1, NULL);
    if (!d->current_pool) d->current_pool = d->default_pool;
    gf_pool *p = d->current_pool;
    GF_DRV_UNLOCK();
    return p;
}

GF_SIM_API CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool_out, CUdevice dev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    if (!pool_out) return CUDA_ERROR_INVALID_VALUE;
    default_pool(dev);
    *pool_out = (CUmemoryPool)g_drv.dev[dev].default_pool;
    return *pool_out ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

GF_SIM_API CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    if (!pool) return CUDA_ERROR_INVALID_VALUE;
    *pool = (CUmemoryPool)default_pool(dev);
    return *pool ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

GF_SIM_API CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    gf_pool *p = gf_drv__obj_get(GF_DRV_POOL, pool);
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    if (p->dev != dev) return CUDA_ERROR_INVALID_DEVICE;
    default_pool(dev);
    g_drv.dev[dev].current_pool = p;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *poolProps)
{
    GF_CHECK_INIT();
    if (!pool || !poolProps) return CUDA_ERROR_INVALID_VALUE;
    if (poolProps->allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
        poolProps->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    if (poolProps->location.id < 0 || (unsigned)poolProps->location.id >= g_drv.ndev)
        return CUDA_ERROR_INVALID_DEVICE;
    gf_pool *p = pool_new(poolProps->location.id, 0, poolProps);
    if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
    *pool = (CUmemoryPool)p;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
    GF_CHECK_INIT();
    gf_pool *p = gf_drv__obj_get(GF_DRV_POOL, pool);
    if (!p || p->is_default) return CUDA_ERROR_INVALID_VALUE;
    gf_device *d = &g_drv.dev[p->dev];
    if (d->current_pool == p) d->current_pool = d->default_pool;
    p->h.live = 0;
    gf_drv__obj_unref(p);
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep)
{
    (void)minBytesToKeep;
    GF_CHECK_INIT();
    return gf_drv__obj_get(GF_DRV_POOL, pool) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

GF_SIM_API CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    GF_CHECK_INIT();
    gf_pool *p = gf_drv__obj_get(GF_DRV_POOL, pool);
    if (!p || !value) return CUDA_ERROR_INVALID_VALUE;
    switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES: p->reuse_follow = *(int *)value; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC: p->reuse_opportunistic = *(int *)value; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: p->reuse_internal = *(int *)value; break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: p->release_threshold = *(cuuint64_t *)value; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
        if (*(cuuint64_t *)value != 0) return CUDA_ERROR_INVALID_VALUE;
        p->reserved_high = p->used;
        break;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
        if (*(cuuint64_t *)value != 0) return CUDA_ERROR_INVALID_VALUE;
        p->used_high = p->used;
        break;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    GF_CHECK_INIT();
    gf_pool *p = gf_drv__obj_get(GF_DRV_POOL, pool);
    if (!p || !value) return CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_rdlock(&g_drv.mem_lock);
    switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES: *(int *)value = p->reuse_follow; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC: *(int *)value = p->reuse_opportunistic; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: *(int *)value = p->reuse_internal; break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: *(cuuint64_t *)value = p->release_threshold; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT: *(cuuint64_t *)value = p->used; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH: *(cuuint64_t *)value = p->reserved_high; break;
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT: *(cuuint64_t *)value = p->used; break;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH: *(cuuint64_t *)value = p->used_high; break;
    default: pthread_rwlock_unlock(&g_drv.mem_lock); return CUDA_ERROR_INVALID_VALUE;
    }
    pthread_rwlock_unlock(&g_drv.mem_lock);
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemPoolSetAccess(CUmemoryPool pool, const CUmemAccessDesc *map, size_t count)
{
    GF_CHECK_INIT();
    if (!gf_drv__obj_get(GF_DRV_POOL, pool) || (count && !map)) return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemPoolGetAccess(CUmemAccess_flags *flags, CUmemoryPool pool, CUmemLocation *location)
{
    GF_CHECK_INIT();
    gf_pool *p = gf_drv__obj_get(GF_DRV_POOL, pool);
    if (!p || !flags || !location) return CUDA_ERROR_INVALID_VALUE;
    *flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return CUDA_SUCCESS;
}

static CUresult alloc_async(CUdeviceptr *dptr, size_t size, gf_pool *pool, CUstream h, int ptds)
{
    gf_ctx *c;
    gf_stream *s;
    CUresult rc = gf_drv__stream_arg(h, ptds, &c, &s);
    if (rc) return rc;
    if (!dptr || !size) return CUDA_ERROR_INVALID_VALUE;
    if (!pool) pool = default_pool(c->dev);
    if (!pool) return CUDA_ERROR_OUT_OF_MEMORY;
    uint64_t p;
    if ((rc = gf_drv__mem_alloc(c, GF_MEM_POOL, size, 0, pool, &p))) return rc;
    *dptr = p;
    return CUDA_SUCCESS;
}

GF_SIM_API_PTSZ(cuMemAllocAsync, (CUdeviceptr *d, size_t n, CUstream s),
                alloc_async(d, n, NULL, s, ptds))

static CUresult alloc_from_pool(CUdeviceptr *d, size_t n, CUmemoryPool pool, CUstream s, int ptds)
{
    GF_CHECK_INIT();
    gf_pool *p = gf_drv__obj_get(GF_DRV_POOL, pool);
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    return alloc_async(d, n, p, s, ptds);
}

GF_SIM_API_PTSZ(cuMemAllocFromPoolAsync, (CUdeviceptr *d, size_t n, CUmemoryPool p, CUstream s),
                alloc_from_pool(d, n, p, s, ptds))

static CUresult free_async(CUdeviceptr dptr, CUstream h, int ptds)
{
    gf_ctx *c;
    gf_stream *s;
    CUresult rc = gf_drv__stream_arg(h, ptds, &c, &s);
    if (rc) return rc;
    pthread_rwlock_wrlock(&g_drv.mem_lock);
    ssize_t i = table_find(dptr);
    if (i < 0 || g_drv.allocs[i].base != dptr ||
        (g_drv.allocs[i].kind != GF_MEM_POOL && g_drv.allocs[i].kind != GF_MEM_DEVICE) ||
        g_drv.allocs[i].flags == ~0u) {
        pthread_rwlock_unlock(&g_drv.mem_lock);
        return CUDA_ERROR_INVALID_VALUE;
    }
    g_drv.allocs[i].flags = ~0u; /* a free is queued: a second one is an error */
    pthread_rwlock_unlock(&g_drv.mem_lock);
    gf_op *op = gf_drv__op_new(GF_OP_FREE);
    if (!op) return CUDA_ERROR_OUT_OF_MEMORY;
    op->u.free.ptr = dptr;
    return gf_drv__enqueue(s, op);
}

GF_SIM_API_PTSZ(cuMemFreeAsync, (CUdeviceptr d, CUstream s), free_async(d, s, ptds))

/* ---- virtual memory management ------------------------------------------------------------- */

GF_SIM_API CUresult cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop,
                                                  CUmemAllocationGranularity_flags option)
{
    GF_CHECK_INIT();
    if (!granularity || !prop) return CUDA_ERROR_INVALID_VALUE;
    if (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM && option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED)
        return CUDA_ERROR_INVALID_VALUE;
    if (prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE &&
        (prop->location.id < 0 || (unsigned)prop->location.id >= g_drv.ndev))
        return CUDA_ERROR_INVALID_DEVICE;
    *granularity = GF_GRAN;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                        CUdeviceptr addr, unsigned long long flags)
{
    GF_CHECK_INIT();
    (void)addr;
    if (!ptr || !size || size % GF_GRAN || flags != 0) return CUDA_ERROR_INVALID_VALUE;
    if (alignment & (alignment - 1)) return CUDA_ERROR_INVALID_VALUE;
    if (alignment < GF_GRAN) alignment = GF_GRAN;
    pthread_rwlock_wrlock(&g_drv.mem_lock);
    CUresult rc = CUDA_SUCCESS;
    if (g_nresv == g_capresv) {
        size_t cap = g_capresv ? 2 * g_capresv : 16;
        gf_reservation *n = realloc(g_resv, cap * sizeof *n);
        if (!n) {
            rc = CUDA_ERROR_OUT_OF_MEMORY;
            goto out;
        }
        g_resv = n;
        g_capresv = cap;
    }
    uint64_t b = va_take(size, alignment);
    if (!b) {
        rc = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    g_resv[g_nresv++] = (gf_reservation){b, size};
    *ptr = b;
out:
    pthread_rwlock_unlock(&g_drv.mem_lock);
    return rc;
}

GF_SIM_API CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
    GF_CHECK_INIT();
    pthread_rwlock_wrlock(&g_drv.mem_lock);
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < g_nresv; i++) {
        if (g_resv[i].base == ptr && g_resv[i].size == size) {
            ssize_t j = table_floor(ptr + size - 1);
            if (j >= 0 && g_drv.allocs[j].base + g_drv.allocs[j].size > ptr) break; /* mapped */
            g_resv[i] = g_resv[--g_nresv];
            va_give(ptr, size);
            rc = CUDA_SUCCESS;
            break;
        }
    }
    pthread_rwlock_unlock(&g_drv.mem_lock);
    return rc;
}

void gf_drv__fin_memhandle(gf_memhandle *mh)
{
    if (mh->fd >= 0) close(mh->fd);
    mh->fd = -1;
    if (mh->charged) gf_simstate_mem_release(g_drv.ss, (unsigned)mh->dev, mh->charged);
}

GF_SIM_API CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                                const CUmemAllocationProp *prop, unsigned long long flags)
{
    GF_CHECK_INIT();
    if (!handle || !prop || !size || size % GF_GRAN || flags != 0) return CUDA_ERROR_INVALID_VALUE;
    if (prop->type != CU_MEM_ALLOCATION_TYPE_PINNED || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    int dev = prop->location.id;
    if (dev < 0 || (unsigned)dev >= g_drv.ndev) return CUDA_ERROR_INVALID_DEVICE;
    /* requestedHandleTypes (PyTorch asks for POSIX file descriptors) is accepted; exporting
     * the handle is what the sim does not support. */
    if (gf_simstate_mem_reserve(g_drv.ss, (unsigned)dev, size) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    int fd = memfd_create("gpufuse-sim-vram", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
        if (fd >= 0) close(fd);
        gf_simstate_mem_release(g_drv.ss, (unsigned)dev, size);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    gf_memhandle *mh = gf_drv__obj_new(GF_DRV_MEMHANDLE);
    if (!mh) {
        close(fd);
        gf_simstate_mem_release(g_drv.ss, (unsigned)dev, size);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    mh->dev = dev;
    mh->fd = fd;
    mh->size = size;
    mh->charged = size;
    mh->prop = *prop;
    mh->user_flags = 1; /* user-visible references (create + retains) */
    gf_drv__obj_publish(mh);
    *handle = (CUmemGenericAllocationHandle)(uintptr_t)mh;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
    GF_CHECK_INIT();
    gf_memhandle *mh = gf_drv__obj_get(GF_DRV_MEMHANDLE, (void *)(uintptr_t)handle);
    if (!mh) return CUDA_ERROR_INVALID_VALUE;
    GF_DRV_LOCK();
    if (--mh->user_flags == 0) mh->h.live = 0;
    GF_DRV_UNLOCK();
    gf_drv__obj_unref(mh);
    return CUDA_SUCCESS;
}

static int in_reservation(uint64_t p, uint64_t size)
{
    for (size_t i = 0; i < g_nresv; i++)
        if (p >= g_resv[i].base && p + size <= g_resv[i].base + g_resv[i].size) return 1;
    return 0;
}

GF_SIM_API CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                             CUmemGenericAllocationHandle handle, unsigned long long flags)
{
    GF_CHECK_INIT();
    gf_memhandle *mh = gf_drv__obj_get(GF_DRV_MEMHANDLE, (void *)(uintptr_t)handle);
    if (!mh || !size || flags != 0 || size % GF_GRAN || offset % GF_GRAN || ptr % GF_GRAN)
        return CUDA_ERROR_INVALID_VALUE;
    if (offset + size > mh->size) return CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_wrlock(&g_drv.mem_lock);
    CUresult rc = CUDA_SUCCESS;
    if (!in_reservation(ptr, size)) {
        rc = CUDA_ERROR_INVALID_VALUE;
        goto out;
    }
    ssize_t j = table_floor(ptr + size - 1);
    if (j >= 0 && g_drv.allocs[j].base + g_drv.allocs[j].size > ptr) {
        rc = CUDA_ERROR_ALREADY_MAPPED;
        goto out;
    }
    void *m = mmap((void *)(uintptr_t)ptr, size, PROT_NONE, MAP_SHARED | MAP_FIXED, mh->fd, (off_t)offset);
    if (m == MAP_FAILED) {
        rc = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    gf_alloc a = {
        .base = ptr, .size = size, .footprint = size, .kind = GF_MEM_MAPPED, .dev = mh->dev,
        .ctx = NULL, .accessible = 0, .mh = mh, .mh_offset = offset,
        .id = atomic_fetch_add(&g_drv.next_id, 1) + 1,
    };
    if (table_insert(&a) != 0) {
        mmap((void *)(uintptr_t)ptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
        rc = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    gf_drv__obj_ref(mh);
out:
    pthread_rwlock_unlock(&g_drv.mem_lock);
    return rc;
}

static void quiesce_ctx_cb(void *o, void *arg)
{
    gf_ctx *c = o;
    (void)arg;
    if (!c->primary || c->active) gf_drv__ctx_wait_idle(c);
}

GF_SIM_API CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    GF_CHECK_INIT();
    if (!size) return CUDA_ERROR_INVALID_VALUE;
    /* kernels may still use the range */
    if (gf_drv__mem_find(ptr, 0, NULL)) gf_drv__obj_foreach(GF_DRV_CTX, quiesce_ctx_cb, NULL);
    gf_memhandle *drop[64];
    size_t ndrop = 0;
    pthread_rwlock_wrlock(&g_drv.mem_lock);
    CUresult rc = CUDA_SUCCESS;
    /* the range must be exactly covered by mappings */
    uint64_t p = ptr;
    ssize_t i = table_find(ptr);
    if (i < 0 || g_drv.allocs[i].base != ptr) {
        rc = CUDA_ERROR_INVALID_VALUE;
        goto out;
    }
    for (ssize_t k = i; p < ptr + size; k++) {
        if ((size_t)k >= g_drv.nallocs || g_drv.allocs[k].kind != GF_MEM_MAPPED || g_drv.allocs[k].base != p) {
            rc = CUDA_ERROR_INVALID_VALUE;
            goto out;
        }
        p += g_drv.allocs[k].size;
    }
    if (p != ptr + size) {
        rc = CUDA_ERROR_INVALID_VALUE;
        goto out;
    }
    while ((size_t)i < g_drv.nallocs && g_drv.allocs[i].base < ptr + size) {
        gf_alloc *a = &g_drv.allocs[i];
        mmap((void *)(uintptr_t)a->base, a->size, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
        if (ndrop < 64)
            drop[ndrop++] = a->mh;
        else
            gf_drv__obj_unref(a->mh);
        table_remove(i);
    }
out:
    pthread_rwlock_unlock(&g_drv.mem_lock);
    for (size_t k = 0; k < ndrop; k++) gf_drv__obj_unref(drop[k]);
    return rc;
}

GF_SIM_API CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count)
{
    GF_CHECK_INIT();
    if (!size || !desc || !count) return CUDA_ERROR_INVALID_VALUE;
    int prot = PROT_NONE, access = 0;
    for (size_t k = 0; k < count; k++) {
        if (desc[k].location.type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
        if (desc[k].location.id < 0 || (unsigned)desc[k].location.id >= g_drv.ndev)
            return CUDA_ERROR_INVALID_DEVICE;
        switch (desc[k].flags) {
        case CU_MEM_ACCESS_FLAGS_PROT_NONE: break;
        case CU_MEM_ACCESS_FLAGS_PROT_READ: prot |= PROT_READ; access = 1; break;
        case CU_MEM_ACCESS_FLAGS_PROT_READWRITE: prot |= PROT_READ | PROT_WRITE; access = 1; break;
        default: return CUDA_ERROR_INVALID_VALUE;
        }
    }
    pthread_rwlock_wrlock(&g_drv.mem_lock);
    CUresult rc = CUDA_SUCCESS;
    uint64_t p = ptr;
    ssize_t i = table_find(ptr);
    for (ssize_t k = i; k >= 0 && p < ptr + size; k++) {
        if ((size_t)k >= g_drv.nallocs || g_drv.allocs[k].kind != GF_MEM_MAPPED ||
            g_drv.allocs[k].base > p) {
            rc = CUDA_ERROR_INVALID_VALUE;
            break;
        }
        p = g_drv.allocs[k].base + g_drv.allocs[k].size;
    }
    if (i < 0 || p < ptr + size) rc = CUDA_ERROR_INVALID_VALUE;
    if (!rc) {
        mprotect((void *)(uintptr_t)ptr, size, prot);
        for (ssize_t k = i; (size_t)k < g_drv.nallocs && g_drv.allocs[k].base < ptr + size; k++)
            g_drv.allocs[k].accessible = access ? (prot & PROT_WRITE ? 3 : 1) : 0;
    }
    pthread_rwlock_unlock(&g_drv.mem_lock);
    return rc;
}

GF_SIM_API CUresult cuMemGetAccess(unsigned long long *flags, const CUmemLocation *location, CUdeviceptr ptr)
{
    GF_CHECK_INIT();
    if (!flags || !location) return CUDA_ERROR_INVALID_VALUE;
    gf_alloc a;
    if (!gf_drv__mem_find(ptr, 0, &a) || a.kind != GF_MEM_MAPPED) return CUDA_ERROR_INVALID_VALUE;
    *flags = a.accessible == 3 ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE
             : a.accessible    ? CU_MEM_ACCESS_FLAGS_PROT_READ
                               : CU_MEM_ACCESS_FLAGS_PROT_NONE;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *prop,
                                                           CUmemGenericAllocationHandle handle)
{
    GF_CHECK_INIT();
    gf_memhandle *mh = gf_drv__obj_get(GF_DRV_MEMHANDLE, (void *)(uintptr_t)handle);
    if (!prop || !mh) return CUDA_ERROR_INVALID_VALUE;
    *prop = mh->prop;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
    GF_CHECK_INIT();
    if (!handle) return CUDA_ERROR_INVALID_VALUE;
    gf_alloc a;
    if (!gf_drv__mem_find((uint64_t)(uintptr_t)addr, 0, &a) || a.kind != GF_MEM_MAPPED)
        return CUDA_ERROR_INVALID_VALUE;
    GF_DRV_LOCK();
    a.mh->user_flags++;
    a.mh->h.live = 1;
    GF_DRV_UNLOCK();
    gf_drv__obj_ref(a.mh);
    *handle = (CUmemGenericAllocationHandle)(uintptr_t)a.mh;
    return CUDA_SUCCESS;
}

/* A POSIX file descriptor for the handle's memory (a dup of its memfd): another process that
 * imports it maps the same bytes, which are charged to the exporter only. */
GF_SIM_API CUresult cuMemExportToShareableHandle(void *shareableHandle, CUmemGenericAllocationHandle handle,
                                                 CUmemAllocationHandleType handleType, unsigned long long flags)
{
    GF_CHECK_INIT();
    gf_memhandle *mh = gf_drv__obj_get(GF_DRV_MEMHANDLE, (void *)(uintptr_t)handle);
    if (!mh || !shareableHandle || flags != 0) return CUDA_ERROR_INVALID_VALUE;
    if (handleType != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) {
        GF_LOG_ONCE(GF_LOG_WARN, GF_SIM_LOG, "cuMemExportToShareableHandle: the sim exports POSIX file descriptors only");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (!(mh->prop.requestedHandleTypes & CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)) return CUDA_ERROR_INVALID_VALUE;
    int fd = dup(mh->fd);
    if (fd < 0) return CUDA_ERROR_OUT_OF_MEMORY;
    *(int *)shareableHandle = fd;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *handle, void *osHandle,
                                                   CUmemAllocationHandleType shHandleType)
{
    GF_CHECK_INIT();
    if (!handle) return CUDA_ERROR_INVALID_VALUE;
    if (shHandleType != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) return CUDA_ERROR_NOT_SUPPORTED;
    int fd = (int)(intptr_t)osHandle;
    off_t size = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
    if (size <= 0 || (uint64_t)size % GF_GRAN) return CUDA_ERROR_INVALID_VALUE;
    int mine = dup(fd);
    if (mine < 0) return CUDA_ERROR_INVALID_VALUE;
    gf_memhandle *mh = gf_drv__obj_new(GF_DRV_MEMHANDLE);
    if (!mh) {
        close(mine);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    mh->dev = 0;
    mh->fd = mine;
    mh->size = (uint64_t)size;
    mh->prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    mh->prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    mh->prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    mh->user_flags = 1;
    gf_drv__obj_publish(mh);
    *handle = (CUmemGenericAllocationHandle)(uintptr_t)mh;
    return CUDA_SUCCESS;
}

/* CUDA 13's location-based pool queries; the sim has device pools only. */
static CUresult pool_location(const CUmemLocation *loc, CUmemAllocationType type, int *dev)
{
    GF_CHECK_INIT();
    if (!loc) return CUDA_ERROR_INVALID_VALUE;
    if (type != CU_MEM_ALLOCATION_TYPE_PINNED || loc->type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_NOT_SUPPORTED;
    if (loc->id < 0 || (unsigned)loc->id >= g_drv.ndev) return CUDA_ERROR_INVALID_DEVICE;
    *dev = loc->id;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuMemGetDefaultMemPool(CUmemoryPool *pool_out, CUmemLocation *location, CUmemAllocationType type)
{
    int dev;
    CUresult rc = pool_location(location, type, &dev);
    return rc ? rc : cuDeviceGetDefaultMemPool(pool_out, dev);
}

GF_SIM_API CUresult cuMemGetMemPool(CUmemoryPool *pool, CUmemLocation *location, CUmemAllocationType type)
{
    int dev;
    CUresult rc = pool_location(location, type, &dev);
    return rc ? rc : cuDeviceGetMemPool(pool, dev);
}

GF_SIM_API CUresult cuMemSetMemPool(CUmemLocation *location, CUmemAllocationType type, CUmemoryPool pool)
{
    int dev;
    CUresult rc = pool_location(location, type, &dev);
    return rc ? rc : cuDeviceSetMemPool(dev, pool);
}
