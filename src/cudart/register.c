/* SPDX-License-Identifier: Apache-2.0 */
/* The entry points nvcc's host code calls to register its fatbins, kernels and variables, the
 * lazy loading of each fatbin as a CUlibrary (cuLibraryLoadData on nvcc's wrapper), and the
 * symbol API (cudaMemcpyToSymbol, cudaGetSymbolAddress, ...).
 *
 * What nvcc emits (CUDA 13): a constructor calls __cudaRegisterFatBinary(&wrapper), where wrapper
 * is {u32 0x466243B1, u32 version, fatbin pointer, ...}; then one __cudaRegisterFunction per
 * kernel (host stub address -> mangled name), __cudaRegisterVar / __cudaRegisterManagedVar per
 * variable, __cudaRegisterFatBinaryEnd; and atexit(__cudaUnregisterFatBinary). Each launch site
 * asks __cudaGetKernel once for a cudaKernel_t (our CUkernel) and launches with it.
 *
 * A module loads when one of its kernels or variables is first used (CUDA's lazy loading), or
 * at the first context set-up with CUDA_MODULE_LOADING=EAGER. A CUlibrary is context-free, so a
 * module loads once per process; the driver instantiates it in each context it is used in.
 */
#include "cudart.h"

#include <stdlib.h>
#include <string.h>

#define GF_RT_FATBIN_WRAPPER_MAGIC 0x466243B1u

struct gf_rt_module {
    struct gf_rt_module *next;
    const void *wrapper;
    int loaded;                /* 0: not tried, 1: loaded, -1: failed (load_err) */
    cudaError_t load_err;
    CUlibrary lib;
    gf_rt_func **funcs;
    size_t nfuncs, capfuncs;
    gf_rt_var **vars;
    size_t nvars, capvars;
};

/* ---- a pointer-keyed hash map (open addressing, linear probing, tombstones) ----------------- */

typedef struct ptrmap {
    const void **keys;
    void **vals;
    size_t cap, used;          /* used counts live entries and tombstones */
} ptrmap;

#define PTRMAP_TOMB ((const void *)1)

static size_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static void *ptrmap_get(const ptrmap *m, const void *k)
{
    if (!m->cap) return NULL;
    for (size_t i = ptr_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == k) return m->vals[i];
        if (!m->keys[i]) return NULL;
    }
}

static int ptrmap_put(ptrmap *m, const void *k, void *v);

static int ptrmap_grow(ptrmap *m)
{
    ptrmap n = {.cap = m->cap ? m->cap * 2 : 64};
    n.keys = calloc(n.cap, sizeof *n.keys);
    n.vals = calloc(n.cap, sizeof *n.vals);
    if (!n.keys || !n.vals) {
        free(n.keys);
        free(n.vals);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] && m->keys[i] != PTRMAP_TOMB) ptrmap_put(&n, m->keys[i], m->vals[i]);
    free(m->keys);
    free(m->vals);
    *m = n;
    return 0;
}

/* Inserts or replaces; -1 on OOM. */
static int ptrmap_put(ptrmap *m, const void *k, void *v)
{
    if ((m->used + 1) * 2 > m->cap && ptrmap_grow(m) < 0) return -1;
    size_t tomb = (size_t)-1;
    for (size_t i = ptr_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == k) {
            m->vals[i] = v;
            return 0;
        }
        if (m->keys[i] == PTRMAP_TOMB && tomb == (size_t)-1) tomb = i;
        if (!m->keys[i]) {
            if (tomb != (size_t)-1) i = tomb;
            else m->used++;
            m->keys[i] = k;
            m->vals[i] = v;
            return 0;
        }
    }
}

/* Removes k if it maps to v. */
static void ptrmap_del(ptrmap *m, const void *k, const void *v)
{
    if (!m->cap) return;
    for (size_t i = ptr_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == k) {
            if (m->vals[i] == v) {
                m->keys[i] = PTRMAP_TOMB;
                m->vals[i] = NULL;
            }
            return;
        }
        if (!m->keys[i]) return;
    }
}

static void ptrmap_free(ptrmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- the registry -------------------------------------------------------------------------- */

static struct {
    pthread_rwlock_t lock;     /* the maps and the module list */
    pthread_mutex_t load_lock; /* module loading */
    ptrmap funcs;              /* host stub -> gf_rt_func */
    ptrmap kernels;            /* CUkernel -> gf_rt_func */
    ptrmap vars;               /* host shadow -> gf_rt_var */
    gf_rt_module *modules;
} reg = {.lock = PTHREAD_RWLOCK_INITIALIZER, .load_lock = PTHREAD_MUTEX_INITIALIZER};

static int push_ptr(void ***arr, size_t *n, size_t *cap, void *p)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        void **na = realloc(*arr, nc * sizeof *na);
        if (!na) return -1;
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = p;
    return 0;
}

GF_RT_API void **__cudaRegisterFatBinary(void *fatCubin)
{
    gf_rt_module *m = calloc(1, sizeof *m);
    if (!m) {
        gf_log(GF_LOG_ERROR, GF_RT_LOG, "out of memory registering a fatbin");
        return NULL;
    }
    m->wrapper = fatCubin;
    if (!fatCubin || *(const uint32_t *)fatCubin != GF_RT_FATBIN_WRAPPER_MAGIC)
        gf_log(GF_LOG_WARN, GF_RT_LOG,
               "__cudaRegisterFatBinary: %p is not nvcc's fatbin wrapper (magic 0x%08x); its "
               "kernels will fail to load",
               fatCubin, fatCubin ? *(const uint32_t *)fatCubin : 0u);
    pthread_rwlock_wrlock(&reg.lock);
    m->next = reg.modules;
    reg.modules = m;
    pthread_rwlock_unlock(&reg.lock);
    return (void **)m;
}

GF_RT_API void __cudaRegisterFatBinaryEnd(void **fatCubinHandle)
{
    (void)fatCubinHandle;
}

GF_RT_API void __cudaRegisterFunction(void **fatCubinHandle, const char *hostFun, char *deviceFun,
                                      const char *deviceName, int thread_limit, uint3 *tid,
                                      uint3 *bid, dim3 *bDim, dim3 *gDim, int *wSize)
{
    (void)deviceFun, (void)thread_limit, (void)tid, (void)bid, (void)bDim, (void)gDim,
        (void)wSize;
    gf_rt_module *m = (gf_rt_module *)fatCubinHandle;
    gf_rt_func *f = calloc(1, sizeof *f);
    if (!m || !f) {
        free(f);
        return;
    }
    f->host = hostFun;
    f->name = deviceName;
    f->mod = m;
    pthread_rwlock_wrlock(&reg.lock);
    if (push_ptr((void ***)&m->funcs, &m->nfuncs, &m->capfuncs, f) < 0 ||
        ptrmap_put(&reg.funcs, hostFun, f) < 0) {
        gf_log(GF_LOG_ERROR, GF_RT_LOG, "out of memory registering kernel %s", deviceName);
        if (m->nfuncs && m->funcs[m->nfuncs - 1] == f) m->nfuncs--;
        free(f);
    }
    pthread_rwlock_unlock(&reg.lock);
}

static void register_var(gf_rt_module *m, const void *host, const char *name, size_t size,
                         int constant, void **managed)
{
    gf_rt_var *v = calloc(1, sizeof *v);
    if (!m || !v) {
        free(v);
        return;
    }
    v->host = host;
    v->name = name;
    v->mod = m;
    v->size = size;
    v->constant = constant;
    v->managed = managed;
    pthread_rwlock_wrlock(&reg.lock);
    if (push_ptr((void ***)&m->vars, &m->nvars, &m->capvars, v) < 0 ||
        ptrmap_put(&reg.vars, host, v) < 0) {
        gf_log(GF_LOG_ERROR, GF_RT_LOG, "out of memory registering variable %s", name);
        if (m->nvars && m->vars[m->nvars - 1] == v) m->nvars--;
        free(v);
    }
    pthread_rwlock_unlock(&reg.lock);
}

GF_RT_API void __cudaRegisterVar(void **fatCubinHandle, char *hostVar, char *deviceAddress,
                                 const char *deviceName, int ext, size_t size, int constant,
                                 int global)
{
    (void)deviceAddress, (void)ext, (void)global;
    register_var((gf_rt_module *)fatCubinHandle, hostVar, deviceName, size, constant, NULL);
}

GF_RT_API void __cudaRegisterManagedVar(void **fatCubinHandle, void **hostVarPtrAddress,
                                        char *deviceAddress, const char *deviceName, int ext,
                                        size_t size, int constant, int global)
{
    (void)deviceAddress, (void)ext, (void)global;
    register_var((gf_rt_module *)fatCubinHandle, hostVarPtrAddress, deviceName, size, constant,
                 hostVarPtrAddress);
}

GF_RT_API void __cudaUnregisterFatBinary(void **fatCubinHandle)
{
    gf_rt_module *m = (gf_rt_module *)fatCubinHandle;
    if (!m) return;
    pthread_rwlock_wrlock(&reg.lock);
    for (gf_rt_module **pp = &reg.modules; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    for (size_t i = 0; i < m->nfuncs; i++) {
        ptrmap_del(&reg.funcs, m->funcs[i]->host, m->funcs[i]);
        if (m->funcs[i]->kernel) ptrmap_del(&reg.kernels, m->funcs[i]->kernel, m->funcs[i]);
        free(m->funcs[i]);
    }
    for (size_t i = 0; i < m->nvars; i++) {
        ptrmap_del(&reg.vars, m->vars[i]->host, m->vars[i]);
        if (m->vars[i]->managed && *m->vars[i]->managed)
            ptrmap_del(&reg.vars, *m->vars[i]->managed, m->vars[i]);
        free(m->vars[i]);
    }
    int last = reg.modules == NULL;
    pthread_rwlock_unlock(&reg.lock);
    /* nvcc's atexit handler: unload (the driver keeps an instance alive while work that uses
     * it is still queued) so that nothing of the module outlives the process's last word. */
    if (m->loaded == 1) CU(cuLibraryUnload, m->lib);
    free(m->funcs);
    free(m->vars);
    free(m);
    if (last) {
        pthread_rwlock_wrlock(&reg.lock);
        ptrmap_free(&reg.funcs);
        ptrmap_free(&reg.kernels);
        ptrmap_free(&reg.vars);
        pthread_rwlock_unlock(&reg.lock);
    }
}

/* ---- loading ------------------------------------------------------------------------------- */

static cudaError_t load_error(CUresult rc)
{
    switch (rc) {
    case CUDA_ERROR_NO_BINARY_FOR_GPU: return cudaErrorNoKernelImageForDevice;
    case CUDA_ERROR_INVALID_PTX: return cudaErrorInvalidPtx;
    case CUDA_ERROR_INVALID_IMAGE: return cudaErrorInvalidKernelImage;
    default: return gf_rt__err(rc);
    }
}

/* Loads m once; returns its load result. Takes load_lock, then reg.lock for writing. */
static cudaError_t module_load(gf_rt_module *m)
{
    if (__atomic_load_n(&m->loaded, __ATOMIC_ACQUIRE) == 1) return cudaSuccess;
    cudaError_t e = gf_rt__init();
    if (e != cudaSuccess) return e;
    pthread_mutex_lock(&reg.load_lock);
    if (m->loaded) {
        e = m->loaded == 1 ? cudaSuccess : m->load_err;
        pthread_mutex_unlock(&reg.load_lock);
        return e;
    }
    CUlibrary lib = NULL;
    CUresult rc = CU(cuLibraryLoadData, &lib, m->wrapper, NULL, NULL, 0, NULL, NULL, 0);
    if (rc != CUDA_SUCCESS) {
        m->load_err = load_error(rc);
        gf_log(GF_LOG_ERROR, GF_RT_LOG,
               "cuLibraryLoadData of a fatbin with %zu kernel(s)%s%s failed: CUresult %d",
               m->nfuncs, m->nfuncs ? ", first " : "", m->nfuncs ? m->funcs[0]->name : "",
               (int)rc);
        __atomic_store_n(&m->loaded, -1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&reg.load_lock);
        return m->load_err;
    }
    m->lib = lib;
    pthread_rwlock_wrlock(&reg.lock);
    for (size_t i = 0; i < m->nfuncs; i++) {
        gf_rt_func *f = m->funcs[i];
        rc = CU(cuLibraryGetKernel, &f->kernel, lib, f->name);
        if (rc != CUDA_SUCCESS) {
            gf_log(GF_LOG_WARN, GF_RT_LOG, "cuLibraryGetKernel(%s): CUresult %d", f->name,
                   (int)rc);
            f->kernel = NULL;
            continue;
        }
        ptrmap_put(&reg.kernels, f->kernel, f);
    }
    pthread_rwlock_unlock(&reg.lock);
    __atomic_store_n(&m->loaded, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&reg.load_lock);
    return cudaSuccess;
}

cudaError_t gf_rt__func(const void *host_or_kernel, gf_rt_func **out)
{
    pthread_rwlock_rdlock(&reg.lock);
    gf_rt_func *f = ptrmap_get(&reg.funcs, host_or_kernel);
    if (!f) f = ptrmap_get(&reg.kernels, host_or_kernel);
    pthread_rwlock_unlock(&reg.lock);
    if (!f) return cudaErrorInvalidResourceHandle; /* not a kernel: as NVIDIA's CUDA 13 runtime */
    cudaError_t e = module_load(f->mod);
    if (e != cudaSuccess) return e;
    if (!f->kernel) return cudaErrorInvalidDeviceFunction;
    *out = f;
    return cudaSuccess;
}

cudaError_t gf_rt__func_handle(gf_rt_func *f, CUfunction *out)
{
    return gf_rt__err(CU(cuKernelGetFunction, out, f->kernel));
}

/* The variable's address in the current context (cached per device and reset epoch). */
static cudaError_t var_addr(gf_rt_var *v, CUdeviceptr *addr)
{
    int dev = gf_rt_tls.dev;
    unsigned ep = atomic_load(&gf_rt.dev[dev].epoch) + 1;
    if (__atomic_load_n(&v->epoch[dev], __ATOMIC_ACQUIRE) == ep) {
        *addr = v->addr[dev];
        return cudaSuccess;
    }
    cudaError_t e = module_load(v->mod);
    if (e != cudaSuccess) return e;
    CUdeviceptr p = 0;
    size_t bytes = 0;
    /* A __managed__ variable is only ever its managed address: the host reads it through
     * *v->managed, so a driver without managed memory (a remote vGPU) must not hand out a device
     * address there (the host would fault on it); the variable's users get the error instead. */
    CUresult rc = v->managed ? CU(cuLibraryGetManaged, &p, &bytes, v->mod->lib, v->name)
                             : CU(cuLibraryGetGlobal, &p, &bytes, v->mod->lib, v->name);
    if (rc != CUDA_SUCCESS) {
        if (v->managed)
            gf_log(GF_LOG_ERROR, GF_RT_LOG, "__managed__ variable %s: cuLibraryGetManaged failed "
                   "(CUresult %d): this driver has no managed memory for it, so the program's "
                   "host accesses to it will fault", v->name, (int)rc);
        else
            gf_log(GF_LOG_WARN, GF_RT_LOG, "cuLibraryGetGlobal(%s): CUresult %d", v->name, (int)rc);
        return rc == CUDA_ERROR_NOT_FOUND ? cudaErrorInvalidSymbol : gf_rt__err(rc);
    }
    v->addr[dev] = p;
    __atomic_store_n(&v->epoch[dev], ep, __ATOMIC_RELEASE);
    if (v->managed && *v->managed != (void *)(uintptr_t)p) {
        /* nvcc's host code reads a __managed__ variable through this pointer, and passes the
         * managed address itself as the symbol (cudaMemcpyToSymbol(var, ...) is &*ptr). */
        pthread_rwlock_wrlock(&reg.lock);
        if (*v->managed) ptrmap_del(&reg.vars, *v->managed, v);
        *v->managed = (void *)(uintptr_t)p;
        ptrmap_put(&reg.vars, *v->managed, v);
        pthread_rwlock_unlock(&reg.lock);
    }
    *addr = p;
    return cudaSuccess;
}

cudaError_t gf_rt__symbol(const void *symbol, CUdeviceptr *addr, size_t *size)
{
    pthread_rwlock_rdlock(&reg.lock);
    gf_rt_var *v = ptrmap_get(&reg.vars, symbol);
    pthread_rwlock_unlock(&reg.lock);
    if (!v) return cudaErrorInvalidSymbol;
    if (size) *size = v->size;
    return addr ? var_addr(v, addr) : cudaSuccess;
}

/* Runs fn on every registered module (snapshot under the lock; modules are only freed by
 * __cudaUnregisterFatBinary at exit). */
static void each_module(void (*fn)(gf_rt_module *))
{
    gf_rt_module *snap[256];
    size_t n = 0;
    pthread_rwlock_rdlock(&reg.lock);
    for (gf_rt_module *m = reg.modules; m && n < 256; m = m->next) snap[n++] = m;
    pthread_rwlock_unlock(&reg.lock);
    for (size_t i = 0; i < n; i++) fn(snap[i]);
}

static void instantiate(gf_rt_module *m)
{
    if (module_load(m) != cudaSuccess) return;
    for (size_t i = 0; i < m->nfuncs; i++) {
        CUfunction fn;
        if (m->funcs[i]->kernel) CU(cuKernelGetFunction, &fn, m->funcs[i]->kernel);
    }
    for (size_t i = 0; i < m->nvars; i++) {
        CUdeviceptr p;
        var_addr(m->vars[i], &p);
    }
}

void gf_rt__load_all(void)
{
    each_module(instantiate);
}

GF_RT_API char __cudaInitModule(void **fatCubinHandle)
{
    gf_rt_module *m = (gf_rt_module *)fatCubinHandle;
    if (!m || gf_rt__ctx() != cudaSuccess) return 0;
    if (module_load(m) != cudaSuccess) return 0;
    for (size_t i = 0; i < m->nvars; i++) {
        CUdeviceptr p;
        if (m->vars[i]->managed && var_addr(m->vars[i], &p) != cudaSuccess) return 0;
    }
    return 1;
}

/* ---- the symbol API ------------------------------------------------------------------------ */

static cudaError_t symbol_range(const void *symbol, size_t count, size_t offset, CUdeviceptr *p)
{
    size_t size;
    cudaError_t e = gf_rt__symbol(symbol, p, &size);
    if (e != cudaSuccess) return e;
    if (offset > size || count > size - offset) return cudaErrorInvalidValue;
    *p += offset;
    return cudaSuccess;
}

static cudaError_t to_symbol(const void *symbol, const void *src, size_t count, size_t offset,
                             enum cudaMemcpyKind kind, cudaStream_t stream, int ptsz, int async)
{
    GF_RT_ENTER();
    if (kind != cudaMemcpyHostToDevice && kind != cudaMemcpyDeviceToDevice &&
        kind != cudaMemcpyDefault)
        return gf_rt__ret(cudaErrorInvalidMemcpyDirection);
    CUdeviceptr p;
    cudaError_t e = symbol_range(symbol, count, offset, &p);
    if (e != cudaSuccess) return gf_rt__ret(e);
    return gf_rt__memcpy((void *)(uintptr_t)p, src, count, kind, stream, ptsz, async);
}

static cudaError_t from_symbol(void *dst, const void *symbol, size_t count, size_t offset,
                               enum cudaMemcpyKind kind, cudaStream_t stream, int ptsz, int async)
{
    GF_RT_ENTER();
    if (kind != cudaMemcpyDeviceToHost && kind != cudaMemcpyDeviceToDevice &&
        kind != cudaMemcpyDefault)
        return gf_rt__ret(cudaErrorInvalidMemcpyDirection);
    CUdeviceptr p;
    cudaError_t e = symbol_range(symbol, count, offset, &p);
    if (e != cudaSuccess) return gf_rt__ret(e);
    return gf_rt__memcpy(dst, (const void *)(uintptr_t)p, count, kind, stream, ptsz, async);
}

GF_RT_API cudaError_t cudaMemcpyToSymbol(const void *symbol, const void *src, size_t count,
                                         size_t offset, enum cudaMemcpyKind kind)
{
    return to_symbol(symbol, src, count, offset, kind, NULL, 0, 0);
}

GF_RT_API cudaError_t cudaMemcpyToSymbol_ptds(const void *symbol, const void *src, size_t count,
                                              size_t offset, enum cudaMemcpyKind kind)
{
    return to_symbol(symbol, src, count, offset, kind, NULL, 1, 0);
}

GF_RT_API cudaError_t cudaMemcpyFromSymbol(void *dst, const void *symbol, size_t count,
                                           size_t offset, enum cudaMemcpyKind kind)
{
    return from_symbol(dst, symbol, count, offset, kind, NULL, 0, 0);
}

GF_RT_API cudaError_t cudaMemcpyFromSymbol_ptds(void *dst, const void *symbol, size_t count,
                                                size_t offset, enum cudaMemcpyKind kind)
{
    return from_symbol(dst, symbol, count, offset, kind, NULL, 1, 0);
}

GF_RT_API cudaError_t cudaMemcpyToSymbolAsync(const void *symbol, const void *src, size_t count,
                                              size_t offset, enum cudaMemcpyKind kind,
                                              cudaStream_t stream)
{
    return to_symbol(symbol, src, count, offset, kind, stream, 0, 1);
}

GF_RT_API cudaError_t cudaMemcpyToSymbolAsync_ptsz(const void *symbol, const void *src,
                                                   size_t count, size_t offset,
                                                   enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return to_symbol(symbol, src, count, offset, kind, stream, 1, 1);
}

GF_RT_API cudaError_t cudaMemcpyFromSymbolAsync(void *dst, const void *symbol, size_t count,
                                                size_t offset, enum cudaMemcpyKind kind,
                                                cudaStream_t stream)
{
    return from_symbol(dst, symbol, count, offset, kind, stream, 0, 1);
}

GF_RT_API cudaError_t cudaMemcpyFromSymbolAsync_ptsz(void *dst, const void *symbol, size_t count,
                                                     size_t offset, enum cudaMemcpyKind kind,
                                                     cudaStream_t stream)
{
    return from_symbol(dst, symbol, count, offset, kind, stream, 1, 1);
}

GF_RT_API cudaError_t cudaGetSymbolAddress(void **devPtr, const void *symbol)
{
    GF_RT_ENTER();
    if (!devPtr) return gf_rt__ret(cudaErrorInvalidValue);
    CUdeviceptr p;
    cudaError_t e = gf_rt__symbol(symbol, &p, NULL);
    if (e == cudaSuccess) *devPtr = (void *)(uintptr_t)p;
    return gf_rt__ret(e);
}

GF_RT_API cudaError_t cudaGetSymbolSize(size_t *size, const void *symbol)
{
    GF_RT_ENTER();
    if (!size) return gf_rt__ret(cudaErrorInvalidValue);
    CUdeviceptr p;
    /* Resolving the address too makes an unloadable module an error here, as in CUDA. */
    return gf_rt__ret(gf_rt__symbol(symbol, &p, size));
}
