/* SPDX-License-Identifier: Apache-2.0 */
/* Modules, functions, libraries and kernels of the sim driver. An image (PTX text, a fat
 * binary, the runtime's fatbin wrapper) is reduced to PTX (src/common/fatbin.c) and parsed by
 * the PTX engine; module-scope variables get device memory at load. Libraries (CUDA 12+) are
 * context-independent: the PTX is kept and instantiated as a module in each context that uses
 * it. A CUkernel is accepted wherever a CUfunction is, as cudart 13 passes one. */
#define __CUDA_API_VERSION_INTERNAL 1
#include "driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpufuse/fatbin.h"

/* Where the engine's error for the last failed load goes (CU_JIT_ERROR_LOG_BUFFER). */
typedef struct gf_jit_log {
    char *buf;
    size_t size;
} gf_jit_log;

static void jit_log(gf_jit_log *log, const char *msg)
{
    if (log && log->buf && log->size) snprintf(log->buf, log->size, "%s", msg);
}

static void jit_options(unsigned n, const CUjit_option *opts, void *const *vals, gf_jit_log *log)
{
    if (!opts || !vals) return;
    for (unsigned i = 0; i < n; i++) {
        if (opts[i] == CU_JIT_ERROR_LOG_BUFFER) log->buf = vals[i];
        if (opts[i] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES) log->size = (size_t)(uintptr_t)vals[i];
    }
}

/* Extracts PTX for a device from image. */
static CUresult image_ptx(const void *image, size_t avail, int dev, char **ptx, size_t *len,
                          unsigned *arch, gf_jit_log *log)
{
    if (!image) return CUDA_ERROR_INVALID_VALUE;
    const gf_sim_device_info *d = &g_drv.dev[dev].info;
    unsigned cc = d->cc_major * 10 + d->cc_minor;
    char err[512];
    gf_fatbin_rc rc = gf_image_extract_ptx(image, avail, cc, ptx, len, arch, err, sizeof err);
    switch (rc) {
    case GF_FATBIN_OK: return CUDA_SUCCESS;
    case GF_FATBIN_NOMEM: return CUDA_ERROR_OUT_OF_MEMORY;
    case GF_FATBIN_NO_PTX:
        gf_log(GF_LOG_ERROR, GF_SIM_LOG,
               "module load: %s; the sim runs PTX only: compile with nvcc's default (which "
               "embeds PTX) or add -gencode arch=compute_%u,code=compute_%u",
               err, cc >= 80 ? 80u : cc, cc >= 80 ? 80u : cc);
        jit_log(log, err);
        return CUDA_ERROR_NO_BINARY_FOR_GPU;
    default:
        gf_log(GF_LOG_ERROR, GF_SIM_LOG, "module load: invalid image: %s", err);
        jit_log(log, err);
        return CUDA_ERROR_INVALID_IMAGE;
    }
}

static CUresult parse_ptx(const char *ptx, size_t len, gf_ptx_module **out, gf_jit_log *log)
{
    char err[1024];
    gf_ptx_rc prc = gf_ptx_module_load(ptx, len, out, err, sizeof err);
    if (prc == GF_PTX_OK) return CUDA_SUCCESS;
    CUresult rc = gf_drv__ptx_rc(prc);
    if (rc == CUDA_ERROR_INVALID_PTX) {
        gf_log(GF_LOG_ERROR, GF_SIM_LOG, "PTX load failed: %s", err);
        jit_log(log, err);
    }
    return rc;
}

void gf_drv__fin_module(gf_module *m)
{
    for (unsigned i = 0; i < m->nglobals; i++)
        if (m->globals[i]) gf_drv__mem_free(m->globals[i], 1u << GF_MEM_GLOBAL | 1u << GF_MEM_MANAGED);
    free(m->globals);
    m->globals = NULL;
    free(m->funcs);
    m->funcs = NULL;
    if (m->ptx) gf_ptx_module_free(m->ptx);
    m->ptx = NULL;
}

/* Builds a module object around a parsed PTX module (takes ownership of pm). */
static CUresult module_new(gf_ctx *c, gf_ptx_module *pm, unsigned arch, gf_module **out)
{
    gf_module *m = gf_drv__obj_new(GF_DRV_MODULE);
    if (!m) {
        gf_ptx_module_free(pm);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    m->ctx = c;
    m->ptx = pm;
    m->ptx_arch = arch;
    unsigned nk = gf_ptx_module_kernel_count(pm), ng = gf_ptx_module_global_count(pm);
    m->funcs = calloc(nk ? nk : 1, sizeof *m->funcs);
    m->globals = calloc(ng ? ng : 1, sizeof *m->globals);
    CUresult rc = CUDA_SUCCESS;
    if (!m->funcs || !m->globals) {
        rc = CUDA_ERROR_OUT_OF_MEMORY;
        goto fail;
    }
    for (unsigned i = 0; i < ng; i++) {
        const gf_ptx_global *g = gf_ptx_module_global(pm, i);
        uint64_t p;
        /* a __managed__ variable is managed memory: the host may touch it directly */
        rc = gf_drv__mem_alloc(c, g->is_managed ? GF_MEM_MANAGED : GF_MEM_GLOBAL, g->size ? g->size : 1,
                               g->is_managed ? CU_MEM_ATTACH_GLOBAL : 0, NULL, &p);
        if (rc) goto fail;
        m->globals[i] = p;
        m->nglobals = i + 1;
        if (g->init) memcpy((void *)(uintptr_t)p, g->init, g->size);
        gf_ptx_module_bind_global(pm, i, p);
    }
    for (unsigned i = 0; i < nk; i++) {
        gf_function *f = gf_drv__obj_new(GF_DRV_FUNC);
        if (!f) {
            rc = CUDA_ERROR_OUT_OF_MEMORY;
            goto fail;
        }
        f->mod = m;
        f->k = gf_ptx_module_kernel(pm, i);
        f->index = i;
        uint32_t st = gf_ptx_kernel_static_shared(f->k);
        f->max_dynamic_shared = st < 49152 ? (int)(49152 - st) : 0;
        f->preferred_carveout = -1;
        gf_drv__obj_publish(f);
        m->funcs[i] = f;
        m->nfuncs = i + 1;
    }
    gf_drv__obj_publish(m);
    *out = m;
    return CUDA_SUCCESS;
fail:
    for (unsigned i = 0; i < m->nfuncs; i++) {
        m->funcs[i]->h.live = 0;
        gf_drv__obj_unref(m->funcs[i]);
    }
    m->nfuncs = 0;
    m->h.live = 0;
    gf_drv__obj_unref(m);
    return rc;
}

/* Unloads: the handle and its functions die now; the memory goes when no queued launch
 * uses the module any more. */
static void module_unload(gf_module *m)
{
    for (unsigned i = 0; i < m->nfuncs; i++) {
        m->funcs[i]->h.live = 0;
        gf_drv__obj_unref(m->funcs[i]);
    }
    m->h.live = 0;
    gf_drv__obj_unref(m);
}

static CUresult load_module(gf_ctx *c, const void *image, size_t avail, gf_module **out, gf_jit_log *log)
{
    char *ptx;
    size_t len;
    unsigned arch;
    CUresult rc = image_ptx(image, avail, c->dev, &ptx, &len, &arch, log);
    if (rc) return rc;
    gf_ptx_module *pm;
    rc = parse_ptx(ptx, len, &pm, log);
    free(ptx);
    if (rc) return rc;
    return module_new(c, pm, arch, out);
}

GF_SIM_API CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions,
                                       CUjit_option *options, void **optionValues)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!module || !image) return CUDA_ERROR_INVALID_VALUE;
    gf_jit_log log = {0};
    jit_options(numOptions, options, optionValues, &log);
    gf_module *m;
    if ((rc = load_module(c, image, SIZE_MAX, &m, &log))) return rc;
    *module = (CUmodule)m;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
    return cuModuleLoadDataEx(module, image, 0, NULL, NULL);
}

GF_SIM_API CUresult cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin)
{
    return cuModuleLoadDataEx(module, fatCubin, 0, NULL, NULL);
}

/* Reads a whole file plus a NUL. */
static CUresult read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        gf_log(GF_LOG_INFO, GF_SIM_LOG, "cannot open module file '%s'", path);
        return CUDA_ERROR_FILE_NOT_FOUND;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(buf, 2 * cap + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (!buf) return CUDA_ERROR_OUT_OF_MEMORY;
    buf[n] = 0;
    *out = buf;
    *len = n;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuModuleLoad(CUmodule *module, const char *fname)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!module || !fname) return CUDA_ERROR_INVALID_VALUE;
    char *buf;
    size_t len;
    if ((rc = read_file(fname, &buf, &len))) return rc;
    gf_module *m;
    rc = load_module(c, buf, len + 1, &m, NULL);
    free(buf);
    if (rc) return rc;
    *module = (CUmodule)m;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuModuleUnload(CUmodule hmod)
{
    GF_CHECK_INIT();
    gf_module *m = gf_drv__obj_get(GF_DRV_MODULE, hmod);
    if (!m || m->lib) return CUDA_ERROR_INVALID_HANDLE;
    module_unload(m);
    return CUDA_SUCCESS;
}

static void free_module_cb(void *o, void *arg)
{
    gf_module *m = o;
    if (m->ctx == arg) module_unload(m);
}

static void drop_instances_cb(void *o, void *arg)
{
    gf_library *l = o;
    GF_DRV_LOCK();
    for (unsigned i = 0; i < l->ninst;) {
        if (l->inst[i].ctx == arg)
            l->inst[i] = l->inst[--l->ninst];
        else
            i++;
    }
    GF_DRV_UNLOCK();
}

void gf_drv__modules_free_ctx(gf_ctx *c)
{
    gf_drv__obj_foreach(GF_DRV_LIBRARY, drop_instances_cb, c);
    gf_drv__obj_foreach(GF_DRV_MODULE, free_module_cb, c);
}

/* ---- the kernels of a module (CUfunctions) or of a library (CUkernels) -------------------- */

/* cuModuleGetFunction / cuLibraryGetKernel, ...Count and Enumerate... work alike on both: t is
 * GF_DRV_MODULE or GF_DRV_LIBRARY, o the object of that type. */
static unsigned kernel_count(gf_drv_type t, const void *o)
{
    return t == GF_DRV_MODULE ? ((const gf_module *)o)->nfuncs : ((const gf_library *)o)->nkernels;
}

static void *kernel_at(gf_drv_type t, const void *o, unsigned i)
{
    if (t == GF_DRV_MODULE) return ((const gf_module *)o)->funcs[i];
    return ((const gf_library *)o)->kernels[i];
}

static const char *kernel_name_at(gf_drv_type t, const void *o, unsigned i)
{
    if (t == GF_DRV_MODULE) return gf_ptx_kernel_name(((const gf_module *)o)->funcs[i]->k);
    return ((const gf_library *)o)->kernels[i]->name;
}

/* The module or library behind h, then CUDA_ERROR_INVALID_VALUE unless valid. */
static CUresult kernels_arg(gf_drv_type t, const void *h, int valid, void **o)
{
    GF_CHECK_INIT();
    *o = gf_drv__obj_get(t, h);
    if (!*o) return CUDA_ERROR_INVALID_HANDLE;
    return valid ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

static CUresult kernel_by_name(gf_drv_type t, const void *h, int valid, const char *name, void **out)
{
    void *o;
    CUresult rc = kernels_arg(t, h, valid && name, &o);
    if (rc) return rc;
    for (unsigned i = 0; i < kernel_count(t, o); i++) {
        if (strcmp(kernel_name_at(t, o, i), name) == 0) {
            *out = kernel_at(t, o, i);
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_NOT_FOUND;
}

/* The three calls over the kernels of a module (CUfunctions) and of a library (CUkernels),
 * which take the same arguments in the same order. */
#define KERNELS_API(t, handle_t, kernel_t, get, count, list)                                   \
    GF_SIM_API CUresult get(kernel_t *out, handle_t h, const char *name)                       \
    {                                                                                         \
        void *k;                                                                              \
        CUresult rc = kernel_by_name(t, h, out != NULL, name, &k);                            \
        if (!rc) *out = k;                                                                    \
        return rc;                                                                            \
    }                                                                                         \
    GF_SIM_API CUresult count(unsigned int *n, handle_t h)                                     \
    {                                                                                         \
        void *o;                                                                              \
        CUresult rc = kernels_arg(t, h, n != NULL, &o);                                       \
        if (!rc) *n = kernel_count(t, o);                                                     \
        return rc;                                                                            \
    }                                                                                         \
    GF_SIM_API CUresult list(kernel_t *out, unsigned int max, handle_t h)                      \
    {                                                                                         \
        void *o;                                                                              \
        CUresult rc = kernels_arg(t, h, out != NULL, &o);                                     \
        for (unsigned i = 0; !rc && i < max && i < kernel_count(t, o); i++)                   \
            out[i] = kernel_at(t, o, i);                                                      \
        return rc;                                                                            \
    }

KERNELS_API(GF_DRV_MODULE, CUmodule, CUfunction, cuModuleGetFunction, cuModuleGetFunctionCount,
            cuModuleEnumerateFunctions)

/* managed: -1 any variable, 1 only __managed__ ones */
static CUresult module_global_kind(gf_module *m, const char *name, int managed, CUdeviceptr *dptr,
                                   size_t *bytes)
{
    if (!name) return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < m->nglobals; i++) {
        const gf_ptx_global *g = gf_ptx_module_global(m->ptx, i);
        if (strcmp(g->name, name) == 0 && (managed < 0 || g->is_managed)) {
            if (dptr) *dptr = m->globals[i];
            if (bytes) *bytes = g->size;
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_NOT_FOUND;
}

GF_SIM_API CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod, const char *name)
{
    GF_CHECK_INIT();
    gf_module *m = gf_drv__obj_get(GF_DRV_MODULE, hmod);
    if (!m) return CUDA_ERROR_INVALID_HANDLE;
    return module_global_kind(m, name, -1, dptr, bytes);
}

GF_SIM_API CUresult cuModuleGetLoadingMode(CUmoduleLoadingMode *mode)
{
    GF_CHECK_INIT();
    if (!mode) return CUDA_ERROR_INVALID_VALUE;
    *mode = CU_MODULE_EAGER_LOADING;
    return CUDA_SUCCESS;
}

/* ---- libraries ----------------------------------------------------------------------------- */

void gf_drv__fin_library(gf_library *l)
{
    free(l->ptx);
    l->ptx = NULL;
    if (l->proto) gf_ptx_module_free(l->proto);
    l->proto = NULL;
    free(l->kernels);
    l->kernels = NULL;
    free(l->inst);
    l->inst = NULL;
}

/* The library's module in context c, created on first use. */
static CUresult library_module(gf_library *l, gf_ctx *c, gf_module **out)
{
    GF_DRV_LOCK();
    for (unsigned i = 0; i < l->ninst; i++) {
        if (l->inst[i].ctx == c) {
            *out = l->inst[i].mod;
            GF_DRV_UNLOCK();
            return CUDA_SUCCESS;
        }
    }
    GF_DRV_UNLOCK();
    gf_ptx_module *pm;
    CUresult rc = parse_ptx(l->ptx, l->ptx_len, &pm, NULL);
    if (rc) return rc;
    gf_module *m;
    if ((rc = module_new(c, pm, l->ptx_arch, &m))) return rc;
    m->lib = l;
    GF_DRV_LOCK();
    for (unsigned i = 0; i < l->ninst; i++) {
        if (l->inst[i].ctx == c) { /* another thread won */
            *out = l->inst[i].mod;
            GF_DRV_UNLOCK();
            module_unload(m);
            return CUDA_SUCCESS;
        }
    }
    gf_lib_inst *n = realloc(l->inst, (l->ninst + 1) * sizeof *n);
    if (!n) {
        GF_DRV_UNLOCK();
        module_unload(m);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    l->inst = n;
    l->inst[l->ninst++] = (gf_lib_inst){c, m};
    for (unsigned i = 0; i < l->nkernels && i < m->nfuncs; i++)
        m->funcs[i]->max_dynamic_shared = l->kernels[i]->max_dynamic_shared;
    GF_DRV_UNLOCK();
    *out = m;
    return CUDA_SUCCESS;
}

static CUresult library_load(CUlibrary *library, const void *code, size_t avail, unsigned nopt,
                             CUjit_option *opts, void **vals)
{
    GF_CHECK_INIT();
    if (!library || !code) return CUDA_ERROR_INVALID_VALUE;
    gf_jit_log log = {0};
    jit_options(nopt, opts, vals, &log);
    gf_ctx *c = gf_drv__current();
    int dev = c && c->h.live ? c->dev : 0;
    char *ptx;
    size_t len;
    unsigned arch;
    CUresult rc = image_ptx(code, avail, dev, &ptx, &len, &arch, &log);
    if (rc) return rc;
    gf_ptx_module *pm;
    if ((rc = parse_ptx(ptx, len, &pm, &log))) {
        free(ptx);
        return rc;
    }
    gf_library *l = gf_drv__obj_new(GF_DRV_LIBRARY);
    if (!l) {
        free(ptx);
        gf_ptx_module_free(pm);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    l->ptx = ptx;
    l->ptx_len = len;
    l->ptx_arch = arch;
    l->proto = pm;
    gf_drv__obj_publish(l);
    unsigned nk = gf_ptx_module_kernel_count(pm);
    l->kernels = calloc(nk ? nk : 1, sizeof *l->kernels);
    if (!l->kernels) goto oom;
    for (unsigned i = 0; i < nk; i++) {
        gf_kernel *k = gf_drv__obj_new(GF_DRV_KERNEL);
        if (!k) goto oom;
        k->lib = l;
        k->index = i;
        snprintf(k->name, sizeof k->name, "%s", gf_ptx_kernel_name(gf_ptx_module_kernel(pm, i)));
        uint32_t st = gf_ptx_kernel_static_shared(gf_ptx_module_kernel(pm, i));
        k->max_dynamic_shared = st < 49152 ? (int)(49152 - st) : 0;
        gf_drv__obj_publish(k);
        l->kernels[i] = k;
        l->nkernels = i + 1;
    }
    /* Load eagerly into the current context, as a real driver does with eager loading. */
    if (c && c->h.live && !atomic_load(&c->sticky) && (!c->primary || c->active)) {
        gf_module *m;
        if ((rc = library_module(l, c, &m))) {
            cuLibraryUnload((CUlibrary)l);
            return rc;
        }
    }
    *library = (CUlibrary)l;
    return CUDA_SUCCESS;
oom:
    cuLibraryUnload((CUlibrary)l);
    return CUDA_ERROR_OUT_OF_MEMORY;
}

GF_SIM_API CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions,
                                      void **jitOptionsValues, unsigned int numJitOptions,
                                      CUlibraryOption *libraryOptions, void **libraryOptionValues,
                                      unsigned int numLibraryOptions)
{
    (void)libraryOptions, (void)libraryOptionValues, (void)numLibraryOptions;
    return library_load(library, code, SIZE_MAX, numJitOptions, jitOptions, jitOptionsValues);
}

GF_SIM_API CUresult cuLibraryLoadFromFile(CUlibrary *library, const char *fileName,
                                          CUjit_option *jitOptions, void **jitOptionsValues,
                                          unsigned int numJitOptions, CUlibraryOption *libraryOptions,
                                          void **libraryOptionValues, unsigned int numLibraryOptions)
{
    (void)libraryOptions, (void)libraryOptionValues, (void)numLibraryOptions;
    GF_CHECK_INIT();
    if (!library || !fileName) return CUDA_ERROR_INVALID_VALUE;
    char *buf;
    size_t len;
    CUresult rc = read_file(fileName, &buf, &len);
    if (rc) return rc;
    rc = library_load(library, buf, len + 1, numJitOptions, jitOptions, jitOptionsValues);
    free(buf);
    return rc;
}

GF_SIM_API CUresult cuLibraryUnload(CUlibrary library)
{
    GF_CHECK_INIT();
    gf_library *l = gf_drv__obj_get(GF_DRV_LIBRARY, library);
    if (!l) return CUDA_ERROR_INVALID_HANDLE;
    GF_DRV_LOCK();
    l->h.live = 0;
    unsigned ninst = l->ninst;
    gf_lib_inst *inst = l->inst;
    l->inst = NULL;
    l->ninst = 0;
    GF_DRV_UNLOCK();
    for (unsigned i = 0; i < ninst; i++) module_unload(inst[i].mod);
    free(inst);
    for (unsigned i = 0; i < l->nkernels; i++) {
        l->kernels[i]->h.live = 0;
        gf_drv__obj_unref(l->kernels[i]);
    }
    l->nkernels = 0;
    gf_drv__obj_unref(l);
    return CUDA_SUCCESS;
}

KERNELS_API(GF_DRV_LIBRARY, CUlibrary, CUkernel, cuLibraryGetKernel, cuLibraryGetKernelCount,
            cuLibraryEnumerateKernels)

GF_SIM_API CUresult cuLibraryGetModule(CUmodule *pMod, CUlibrary library)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    gf_library *l = gf_drv__obj_get(GF_DRV_LIBRARY, library);
    if (!l) return CUDA_ERROR_INVALID_HANDLE;
    if (!pMod) return CUDA_ERROR_INVALID_VALUE;
    gf_module *m;
    if ((rc = library_module(l, c, &m))) return rc;
    *pMod = (CUmodule)m;
    return CUDA_SUCCESS;
}

/* A variable of the library's module in the current context; managed as in module_global_kind. */
static CUresult library_global(CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name,
                               int managed)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    gf_library *l = gf_drv__obj_get(GF_DRV_LIBRARY, library);
    if (!l) return CUDA_ERROR_INVALID_HANDLE;
    gf_module *m;
    if ((rc = library_module(l, c, &m))) return rc;
    return module_global_kind(m, name, managed, dptr, bytes);
}

GF_SIM_API CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name)
{
    return library_global(dptr, bytes, library, name, -1);
}

GF_SIM_API CUresult cuLibraryGetManaged(CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name)
{
    return library_global(dptr, bytes, library, name, 1);
}

GF_SIM_API CUresult cuLibraryGetUnifiedFunction(void **fptr, CUlibrary library, const char *symbol)
{
    (void)fptr;
    GF_CHECK_INIT();
    if (!gf_drv__obj_get(GF_DRV_LIBRARY, library)) return CUDA_ERROR_INVALID_HANDLE;
    if (!symbol) return CUDA_ERROR_INVALID_VALUE;
    return CUDA_ERROR_NOT_FOUND;
}

CUresult gf_drv__func_arg(void *h, gf_ctx *c, gf_function **out)
{
    gf_function *f = gf_drv__obj_get(GF_DRV_FUNC, h);
    if (f) {
        *out = f;
        return CUDA_SUCCESS;
    }
    gf_kernel *k = gf_drv__obj_get(GF_DRV_KERNEL, h);
    if (!k) return CUDA_ERROR_INVALID_HANDLE;
    if (!c) {
        CUresult rc = gf_drv__ctx_enter(&c);
        if (rc) return rc;
    }
    gf_module *m;
    CUresult rc = library_module(k->lib, c, &m);
    if (rc) return rc;
    if (k->index >= m->nfuncs) return CUDA_ERROR_INVALID_HANDLE;
    *out = m->funcs[k->index];
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    if (!gf_drv__obj_get(GF_DRV_KERNEL, kernel)) return CUDA_ERROR_INVALID_HANDLE;
    if (!pFunc) return CUDA_ERROR_INVALID_VALUE;
    gf_function *f;
    if ((rc = gf_drv__func_arg(kernel, c, &f))) return rc;
    *pFunc = (CUfunction)f;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuKernelGetName(const char **name, CUkernel hfunc)
{
    GF_CHECK_INIT();
    gf_kernel *k = gf_drv__obj_get(GF_DRV_KERNEL, hfunc);
    if (!k) return CUDA_ERROR_INVALID_HANDLE;
    if (!name) return CUDA_ERROR_INVALID_VALUE;
    *name = k->name;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuKernelGetLibrary(CUlibrary *pLib, CUkernel kernel)
{
    GF_CHECK_INIT();
    gf_kernel *k = gf_drv__obj_get(GF_DRV_KERNEL, kernel);
    if (!k) return CUDA_ERROR_INVALID_HANDLE;
    if (!pLib) return CUDA_ERROR_INVALID_VALUE;
    *pLib = (CUlibrary)k->lib;
    return CUDA_SUCCESS;
}

static CUresult param_info(const gf_ptx_kernel *k, size_t idx, size_t *off, size_t *size)
{
    if (idx >= gf_ptx_kernel_param_count(k)) return CUDA_ERROR_INVALID_VALUE;
    const gf_ptx_param *p = gf_ptx_kernel_param(k, (unsigned)idx);
    if (off) *off = p->offset;
    if (size) *size = p->size;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t *paramOffset, size_t *paramSize)
{
    GF_CHECK_INIT();
    gf_kernel *k = gf_drv__obj_get(GF_DRV_KERNEL, kernel);
    if (!k) return CUDA_ERROR_INVALID_HANDLE;
    if (!paramOffset) return CUDA_ERROR_INVALID_VALUE;
    return param_info(gf_ptx_module_kernel(k->lib->proto, k->index), paramIndex, paramOffset, paramSize);
}

GF_SIM_API CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset, size_t *paramSize)
{
    GF_CHECK_INIT();
    gf_function *f = gf_drv__obj_get(GF_DRV_FUNC, func);
    if (!f) return cuKernelGetParamInfo((CUkernel)func, paramIndex, paramOffset, paramSize);
    if (!paramOffset) return CUDA_ERROR_INVALID_VALUE;
    return param_info(f->k, paramIndex, paramOffset, paramSize);
}

/* Attribute values shared by functions and kernels. */
static CUresult func_attr(const gf_ptx_kernel *k, unsigned ptx_arch, int dev, int max_dyn,
                          int carveout, CUfunction_attribute attrib, int *pi)
{
    const gf_sim_device_info *d = &g_drv.dev[dev].info;
    switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: {
        uint32_t m = gf_ptx_kernel_max_threads(k);
        *pi = m && m < 1024 ? (int)m : 1024;
        break;
    }
    case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *pi = (int)gf_ptx_kernel_static_shared(k); break;
    case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES: *pi = 0; break;
    case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES: *pi = (int)gf_ptx_kernel_local_bytes(k); break;
    case CU_FUNC_ATTRIBUTE_NUM_REGS: {
        uint32_t r = gf_ptx_kernel_num_regs(k);
        *pi = r > 255 ? 255 : (int)r;
        break;
    }
    case CU_FUNC_ATTRIBUTE_PTX_VERSION: *pi = ptx_arch ? (int)ptx_arch : (int)(d->cc_major * 10 + d->cc_minor); break;
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *pi = (int)(d->cc_major * 10 + d->cc_minor); break;
    case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA: *pi = 0; break;
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: *pi = max_dyn; break;
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT: *pi = carveout; break;
    case CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE: *pi = 0; break;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

static int optin_limit(int dev)
{
    int v = 49152;
    gf_drv__dev_attr(dev, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, &v);
    return v;
}

GF_SIM_API CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc)
{
    GF_CHECK_INIT();
    gf_function *f = gf_drv__obj_get(GF_DRV_FUNC, hfunc);
    if (!f) {
        gf_kernel *k = gf_drv__obj_get(GF_DRV_KERNEL, hfunc);
        if (!k) return CUDA_ERROR_INVALID_HANDLE;
        if (!pi) return CUDA_ERROR_INVALID_VALUE;
        gf_ctx *c = gf_drv__current();
        return func_attr(gf_ptx_module_kernel(k->lib->proto, k->index), k->lib->ptx_arch,
                         c && c->h.live ? c->dev : 0, k->max_dynamic_shared, -1, attrib, pi);
    }
    if (!pi) return CUDA_ERROR_INVALID_VALUE;
    return func_attr(f->k, f->mod->ptx_arch, f->mod->ctx->dev, f->max_dynamic_shared,
                     f->preferred_carveout, attrib, pi);
}

static CUresult set_attr(const gf_ptx_kernel *k, int dev, int *max_dyn, int *carveout,
                         CUfunction_attribute attrib, int value)
{
    switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
        if (value < 0 || (uint64_t)value + gf_ptx_kernel_static_shared(k) > (uint64_t)optin_limit(dev))
            return CUDA_ERROR_INVALID_VALUE;
        *max_dyn = value;
        return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
        if (value < -1 || value > 100) return CUDA_ERROR_INVALID_VALUE;
        if (carveout) *carveout = value;
        return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE: return CUDA_SUCCESS;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
}

GF_SIM_API CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)
{
    GF_CHECK_INIT();
    gf_function *f = gf_drv__obj_get(GF_DRV_FUNC, hfunc);
    if (!f) {
        gf_kernel *k = gf_drv__obj_get(GF_DRV_KERNEL, hfunc);
        if (!k) return CUDA_ERROR_INVALID_HANDLE;
        gf_ctx *c = gf_drv__current();
        return cuKernelSetAttribute(attrib, value, (CUkernel)k, c && c->h.live ? c->dev : 0);
    }
    return set_attr(f->k, f->mod->ctx->dev, &f->max_dynamic_shared, &f->preferred_carveout, attrib, value);
}

GF_SIM_API CUresult cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel kernel, CUdevice dev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    gf_kernel *k = gf_drv__obj_get(GF_DRV_KERNEL, kernel);
    if (!k) return CUDA_ERROR_INVALID_HANDLE;
    if (!pi) return CUDA_ERROR_INVALID_VALUE;
    return func_attr(gf_ptx_module_kernel(k->lib->proto, k->index), k->lib->ptx_arch, dev,
                     k->max_dynamic_shared, -1, attrib, pi);
}

GF_SIM_API CUresult cuKernelSetAttribute(CUfunction_attribute attrib, int val, CUkernel kernel, CUdevice dev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    gf_kernel *k = gf_drv__obj_get(GF_DRV_KERNEL, kernel);
    if (!k) return CUDA_ERROR_INVALID_HANDLE;
    int carve = -1;
    rc = set_attr(gf_ptx_module_kernel(k->lib->proto, k->index), dev, &k->max_dynamic_shared, &carve,
                  attrib, val);
    if (rc) return rc;
    GF_DRV_LOCK();
    for (unsigned i = 0; i < k->lib->ninst; i++) {
        gf_module *m = k->lib->inst[i].mod;
        if (k->index < m->nfuncs) {
            m->funcs[k->index]->max_dynamic_shared = k->max_dynamic_shared;
            if (attrib == CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT)
                m->funcs[k->index]->preferred_carveout = carve;
        }
    }
    GF_DRV_UNLOCK();
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuKernelSetCacheConfig(CUkernel kernel, CUfunc_cache config, CUdevice dev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    if (!gf_drv__obj_get(GF_DRV_KERNEL, kernel)) return CUDA_ERROR_INVALID_HANDLE;
    if ((unsigned)config > CU_FUNC_CACHE_PREFER_EQUAL) return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config)
{
    GF_CHECK_INIT();
    gf_function *f = gf_drv__obj_get(GF_DRV_FUNC, hfunc);
    if (!f && !gf_drv__obj_get(GF_DRV_KERNEL, hfunc)) return CUDA_ERROR_INVALID_HANDLE;
    if ((unsigned)config > CU_FUNC_CACHE_PREFER_EQUAL) return CUDA_ERROR_INVALID_VALUE;
    if (f) f->cache_config = config;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuFuncSetSharedMemConfig(CUfunction hfunc, CUsharedconfig config)
{
    GF_CHECK_INIT();
    if (!gf_drv__obj_get(GF_DRV_FUNC, hfunc) && !gf_drv__obj_get(GF_DRV_KERNEL, hfunc))
        return CUDA_ERROR_INVALID_HANDLE;
    if ((unsigned)config > CU_SHARED_MEM_CONFIG_EIGHT_BYTE_BANK_SIZE) return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuFuncGetName(const char **name, CUfunction hfunc)
{
    GF_CHECK_INIT();
    gf_function *f = gf_drv__obj_get(GF_DRV_FUNC, hfunc);
    if (!f) return cuKernelGetName(name, (CUkernel)hfunc);
    if (!name) return CUDA_ERROR_INVALID_VALUE;
    *name = gf_ptx_kernel_name(f->k);
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuFuncGetModule(CUmodule *hmod, CUfunction hfunc)
{
    GF_CHECK_INIT();
    gf_function *f = gf_drv__obj_get(GF_DRV_FUNC, hfunc);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if (!hmod) return CUDA_ERROR_INVALID_VALUE;
    *hmod = (CUmodule)f->mod;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuFuncIsLoaded(CUfunctionLoadingState *state, CUfunction function)
{
    GF_CHECK_INIT();
    if (!gf_drv__obj_get(GF_DRV_FUNC, function) && !gf_drv__obj_get(GF_DRV_KERNEL, function))
        return CUDA_ERROR_INVALID_HANDLE;
    if (!state) return CUDA_ERROR_INVALID_VALUE;
    *state = CU_FUNCTION_LOADING_STATE_LOADED;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuFuncLoad(CUfunction function)
{
    GF_CHECK_INIT();
    if (!gf_drv__obj_get(GF_DRV_FUNC, function) && !gf_drv__obj_get(GF_DRV_KERNEL, function))
        return CUDA_ERROR_INVALID_HANDLE;
    return CUDA_SUCCESS;
}
