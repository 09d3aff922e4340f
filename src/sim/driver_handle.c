/* SPDX-License-Identifier: Apache-2.0 */
/* Handle objects of the sim driver: one slab per handle type, so that any value a program
 * passes as a CUstream, CUevent, ... can be checked without reading memory we do not own. */
#include "driver.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define GF_SLAB_CAP (1u << 20)

typedef struct gf_slab {
    pthread_mutex_t lock;
    uint8_t *base;
    size_t stride;
    atomic_uint count;        /* slots ever handed out */
    uint32_t *next_free;      /* free-list links, one per slot */
    uint32_t free_head;       /* slot + 1; 0 = empty */
} gf_slab;

static gf_slab g_slabs[GF_DRV_NTYPES] = {
    [0 ... GF_DRV_NTYPES - 1] = {.lock = PTHREAD_MUTEX_INITIALIZER},
};

static size_t type_size(gf_drv_type t)
{
    switch (t) {
    case GF_DRV_CTX: return sizeof(gf_ctx);
    case GF_DRV_STREAM: return sizeof(gf_stream);
    case GF_DRV_EVENT: return sizeof(gf_event);
    case GF_DRV_MODULE: return sizeof(gf_module);
    case GF_DRV_FUNC: return sizeof(gf_function);
    case GF_DRV_LIBRARY: return sizeof(gf_library);
    case GF_DRV_KERNEL: return sizeof(gf_kernel);
    case GF_DRV_POOL: return sizeof(gf_pool);
    case GF_DRV_MEMHANDLE: return sizeof(gf_memhandle);
    default: return 0;
    }
}

static int slab_init(gf_slab *s, gf_drv_type t)
{
    if (s->base) return 0;
    size_t stride = (type_size(t) + 63) & ~(size_t)63;
    void *b = mmap(NULL, stride * GF_SLAB_CAP, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (b == MAP_FAILED) return -1;
    void *n = mmap(NULL, sizeof(uint32_t) * GF_SLAB_CAP, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (n == MAP_FAILED) {
        munmap(b, stride * GF_SLAB_CAP);
        return -1;
    }
    s->stride = stride;
    s->next_free = n;
    s->base = b;
    return 0;
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
/* The slabs are mmap'ed, and LeakSanitizer does not scan such memory: what a live object points
 * to (a module's function table, ...) would read as leaked when the process exits with objects
 * alive. Made roots here, before the leak check (it runs after the libraries' destructors). */
__attribute__((destructor)) static void slabs_are_roots(void)
{
    for (unsigned t = 0; t < sizeof g_slabs / sizeof g_slabs[0]; t++)
        if (g_slabs[t].base)
            __lsan_register_root_region(g_slabs[t].base,
                                        (size_t)atomic_load(&g_slabs[t].count) * g_slabs[t].stride);
}
#endif

void *gf_drv__obj_new(gf_drv_type t)
{
    gf_slab *s = &g_slabs[t];
    pthread_mutex_lock(&s->lock);
    if (slab_init(s, t) != 0) {
        pthread_mutex_unlock(&s->lock);
        return NULL;
    }
    uint32_t slot;
    if (s->free_head) {
        slot = s->free_head - 1;
        s->free_head = s->next_free[slot];
    } else {
        slot = atomic_load(&s->count);
        if (slot >= GF_SLAB_CAP) {
            pthread_mutex_unlock(&s->lock);
            return NULL;
        }
    }
    gf_obj *o = (gf_obj *)(s->base + (size_t)slot * s->stride);
    /* The header stays valid for concurrent scans; only the body is cleared. */
    memset((uint8_t *)o + sizeof *o, 0, s->stride - sizeof *o);
    atomic_store(&o->live, 0);
    atomic_store(&o->born, 0);
    o->reuse++;
    atomic_store(&o->refs, 1);
    if (slot == atomic_load(&s->count)) {
        o->magic = GF_DRV_MAGIC + (uint32_t)t;
        atomic_store(&s->count, slot + 1);
    }
    pthread_mutex_unlock(&s->lock);
    return o;
}

static gf_obj *lookup(gf_drv_type t, const void *h)
{
    if ((unsigned)t >= GF_DRV_NTYPES) return NULL;
    gf_slab *s = &g_slabs[t];
    uintptr_t p = (uintptr_t)h, b = (uintptr_t)s->base;
    if (!b || p < b) return NULL;
    uintptr_t off = p - b;
    if (off % s->stride != 0 || off / s->stride >= atomic_load(&s->count)) return NULL;
    gf_obj *o = (gf_obj *)p;
    if (o->magic != GF_DRV_MAGIC + (uint32_t)t) return NULL;
    return o;
}

void gf_drv__obj_publish(void *p)
{
    gf_obj *o = p;
    atomic_store(&o->born, 1);
    atomic_store(&o->live, 1);
}

void *gf_drv__obj_get(gf_drv_type t, const void *h)
{
    gf_obj *o = lookup(t, h);
    return o && atomic_load(&o->live) ? o : NULL;
}

void *gf_drv__obj_any(gf_drv_type t, const void *h)
{
    gf_obj *o = lookup(t, h);
    /* contexts are never recycled, so a destroyed one is still recognizably ours */
    return o && atomic_load(&o->born) ? o : NULL;
}

void gf_drv__obj_ref(void *o)
{
    atomic_fetch_add(&((gf_obj *)o)->refs, 1);
}

void gf_drv__fin_module(gf_module *m);
void gf_drv__fin_library(gf_library *l);
void gf_drv__fin_memhandle(gf_memhandle *mh);

static void finalize(gf_drv_type t, gf_obj *o)
{
    switch (t) {
    case GF_DRV_MODULE: gf_drv__fin_module((gf_module *)o); break;
    case GF_DRV_LIBRARY: gf_drv__fin_library((gf_library *)o); break;
    case GF_DRV_MEMHANDLE: gf_drv__fin_memhandle((gf_memhandle *)o); break;
    default: break;
    }
}

void gf_drv__obj_unref(void *p)
{
    gf_obj *o = p;
    if (atomic_fetch_sub(&o->refs, 1) != 1) return;
    gf_drv_type t = (gf_drv_type)(o->magic - GF_DRV_MAGIC);
    finalize(t, o);
    atomic_store(&o->live, 0);
    /* Contexts are never recycled: other threads may still hold them on their stacks, and
     * must get CUDA_ERROR_CONTEXT_IS_DESTROYED rather than a stranger's context. */
    if (t == GF_DRV_CTX) return;
    atomic_store(&o->born, 0);
    gf_slab *s = &g_slabs[t];
    pthread_mutex_lock(&s->lock);
    uint32_t slot = (uint32_t)(((uint8_t *)o - s->base) / s->stride);
    s->next_free[slot] = s->free_head;
    s->free_head = slot + 1;
    pthread_mutex_unlock(&s->lock);
}

static void foreach(gf_drv_type t, int any, void (*fn)(void *obj, void *arg), void *arg)
{
    gf_slab *s = &g_slabs[t];
    if (!s->base) return;
    unsigned n = atomic_load(&s->count);
    for (unsigned i = 0; i < n; i++) {
        gf_obj *o = (gf_obj *)(s->base + (size_t)i * s->stride);
        if (o->magic == GF_DRV_MAGIC + (uint32_t)t && atomic_load(any ? &o->born : &o->live)) fn(o, arg);
    }
}

void gf_drv__obj_foreach(gf_drv_type t, void (*fn)(void *obj, void *arg), void *arg)
{
    foreach(t, 0, fn, arg);
}

void gf_drv__obj_foreach_any(gf_drv_type t, void (*fn)(void *obj, void *arg), void *arg)
{
    foreach(t, 1, fn, arg);
}
