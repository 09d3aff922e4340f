/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for what a remote client controls in a worker session: arbitrary request
 * frames (kind, flags, payload, bulk chunks) go through the session's real reading, decoding,
 * argument validation and dispatch (src/worker/session.c, included whole) over a socketpair,
 * with a fake driver underneath that aborts when the worker hands it anything the session did
 * not create: a device range outside the session's allocations, a handle that is not live, a
 * context that still owns objects when it is destroyed. At the end of each input every object
 * the session made must have been freed (no leak on the driver side either).
 *
 * Input: records of [u8 op][u8 flags][u16 len LE][len payload bytes]. op < 48 and 51..127 are
 * the CUDA call GF_WIRE_K_CUDA_FIRST + op, 48 a BULK chunk (of the last request), 49
 * NVML_SNAPSHOT, 50 PING, anything else a kind of op << 8. flags bit 0 NOREPLY, bit 1 MORE, bit 2 REPLY.
 * Corpus: tests/fuzz/corpus/worker_request/ (seeds written by tests/fuzz/worker_request_corpus.py). */
#include "../../src/worker/session.c"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

/* ---- the fake driver ------------------------------------------------------------------------ */

enum { F_CTX = 1, F_MOD, F_LIB, F_FUNC, F_STREAM, F_EVENT, F_POOL, F_VMEM };

typedef struct fobj {
    uint32_t magic;
    int kind, live;
    struct fobj *ctx; /* owning context (not for contexts) */
    unsigned nparams; /* functions */
    struct fobj *mod; /* functions: module or library */
    uint64_t global;  /* modules: their global's base */
    unsigned refs;    /* VMM handles: references (cuMemCreate/import 1, each retain 1) */
    uint64_t size;    /* VMM handles */
} fobj;

#define FMAGIC 0x66616b65u
#define MAXOBJ 4096
static fobj *objs[MAXOBJ];
static unsigned nobjs;

typedef struct falloc {
    uint64_t base, size;
    fobj *ctx;
    fobj *mod; /* a module global */
    int live;
    int vmm;   /* a VMM mapping (no context; cuMemUnmap ends it) */
    fobj *handle; /* a mapping's handle */
} falloc;

#define MAXALLOC 4096
static falloc allocs[MAXALLOC];
static unsigned nallocs;
static uint64_t next_base = 0x100000000000ull;
static void *hostallocs[64];
static size_t hostsize[64];
static fobj *hostctx[64];
static void *hostregs[64]; /* cuMemHostRegister'ed */
static size_t regsize[64];
static fobj *current;

#define DIE(...)                                                                              \
    do {                                                                                      \
        fprintf(stderr, "fuzz_worker_request: " __VA_ARGS__);                                 \
        fputc('\n', stderr);                                                                  \
        abort();                                                                              \
    } while (0)

static fobj *fnew(int kind)
{
    if (nobjs == MAXOBJ) return NULL;
    fobj *o = calloc(1, sizeof *o);
    o->magic = FMAGIC;
    o->kind = kind;
    o->live = 1;
    o->ctx = current;
    objs[nobjs++] = o;
    return o;
}

/* Every handle the worker passes must be one the fake made and has not destroyed. */
static fobj *fget(const void *h, int kind, const char *what)
{
    for (unsigned i = 0; i < nobjs; i++)
        if (objs[i] == h) {
            if (!objs[i]->live || objs[i]->kind != kind)
                DIE("%s: handle %p is dead or of another kind", what, h);
            return objs[i];
        }
    DIE("%s: %p is not a handle the driver made", what, h);
}

static void fkill(fobj *o) { o->live = 0; }

static void stream_ok(CUstream s, const char *what)
{
    if (s == NULL || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD) return;
    fget(s, F_STREAM, what);
}

/* [p, p + n) must lie inside one live allocation (or mappings that touch). */
static void range_ok(uint64_t p, uint64_t n, const char *what)
{
    if (!n) n = 1;
    for (unsigned i = 0; i < nallocs; i++) {
        falloc *a = &allocs[i];
        if (!a->live || p < a->base || p - a->base >= a->size) continue;
        if (n <= a->size - (p - a->base)) return;
        if (a->vmm) {
            uint64_t left = n - (a->size - (p - a->base));
            range_ok(a->base + a->size, left, what);
            for (unsigned k = 0; k < nallocs; k++) /* the next one must be a mapping too */
                if (allocs[k].live && allocs[k].base == a->base + a->size && allocs[k].vmm) return;
        }
    }
    DIE("%s: device range 0x%llx + %llu reached the driver", what, (unsigned long long)p,
        (unsigned long long)n);
}

static void host_touch(const void *p, size_t n, int write)
{
    if (!n) return;
    volatile uint8_t *b = (volatile uint8_t *)p;
    if (write) {
        b[0] = 0;
        b[n - 1] = 0;
    } else {
        (void)b[0];
        (void)b[n - 1];
    }
}

static CUresult falloc_new(uint64_t bytes, fobj *mod, CUdeviceptr *p)
{
    if (!current) return CUDA_ERROR_INVALID_CONTEXT;
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    if (bytes > (2u << 20) || nallocs == MAXALLOC) return CUDA_ERROR_OUT_OF_MEMORY;
    falloc *a = &allocs[nallocs++];
    *a = (falloc){next_base, bytes, current, mod, 1, 0, NULL}; /* every field: slots are reused */
    next_base += (bytes + 0xffff) & ~0xffffull;
    next_base += 0x10000;
    *p = a->base;
    return CUDA_SUCCESS;
}

static CUresult f_free(CUdeviceptr p)
{
    for (unsigned i = 0; i < nallocs; i++)
        if (allocs[i].live && allocs[i].base == p && !allocs[i].mod && !allocs[i].vmm) {
            allocs[i].live = 0;
            return CUDA_SUCCESS;
        }
    DIE("cuMemFree(0x%llx): not the start of a live allocation", (unsigned long long)p);
}

static CUresult f_ctx_create(CUcontext *c, unsigned flags, CUdevice d)
{
    (void)flags;
    if (d != 0) DIE("cuCtxCreate: device %d", d);
    fobj *o = fnew(F_CTX);
    if (!o) return CUDA_ERROR_OUT_OF_MEMORY;
    o->ctx = NULL;
    current = o;
    *c = (CUcontext)o;
    return CUDA_SUCCESS;
}

static CUresult f_ctx_destroy(CUcontext c)
{
    fobj *o = fget(c, F_CTX, "cuCtxDestroy");
    for (unsigned i = 0; i < nallocs; i++)
        if (allocs[i].live && allocs[i].ctx == o && !allocs[i].mod)
            DIE("cuCtxDestroy: the context still holds an allocation the worker forgot");
    for (unsigned i = 0; i < nobjs; i++)
        if (objs[i]->live && objs[i]->ctx == o && objs[i]->kind != F_FUNC)
            DIE("cuCtxDestroy: the context still holds an object (kind %d)", objs[i]->kind);
    for (unsigned i = 0; i < 64; i++)
        if (hostallocs[i] && hostctx[i] == o) DIE("cuCtxDestroy: pinned memory left");
    fkill(o);
    if (current == o) current = NULL;
    return CUDA_SUCCESS;
}

static CUresult f_ctx_set(CUcontext c)
{
    current = c ? fget(c, F_CTX, "cuCtxSetCurrent") : NULL;
    return CUDA_SUCCESS;
}

static CUresult f_ctx_sync(void) { return current ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT; }

static CUresult f_attr(int *v, CUdevice_attribute a, CUdevice d)
{
    (void)a;
    if (d != 0) DIE("cuDeviceGetAttribute: device %d", d);
    *v = 1;
    return CUDA_SUCCESS;
}

static CUresult f_name(char *n, int len, CUdevice d)
{
    if (d != 0) DIE("cuDeviceGetName: device %d", d);
    snprintf(n, (size_t)len, "Fake GPU");
    return CUDA_SUCCESS;
}

static CUresult f_pci(char *n, int len, CUdevice d)
{
    if (d != 0) DIE("cuDeviceGetPCIBusId: device %d", d);
    snprintf(n, (size_t)len, "0000:01:00.0");
    return CUDA_SUCCESS;
}

static CUresult f_uuid(CUuuid *u, CUdevice d)
{
    if (d != 0) DIE("cuDeviceGetUuid: device %d", d);
    memset(u, 0x42, sizeof *u);
    return CUDA_SUCCESS;
}

static CUresult f_total(size_t *t, CUdevice d)
{
    if (d != 0) DIE("cuDeviceTotalMem: device %d", d);
    *t = 16ull << 30;
    return CUDA_SUCCESS;
}

static CUresult f_version(int *v)
{
    *v = 13000;
    return CUDA_SUCCESS;
}

static CUresult f_alloc(CUdeviceptr *p, size_t n) { return falloc_new(n, NULL, p); }

static CUresult f_alloc_pitch(CUdeviceptr *p, size_t *pitch, size_t w, size_t h, unsigned e)
{
    (void)e;
    *pitch = (w + 511) & ~(size_t)511;
    if (h && *pitch > (2u << 20) / h) return CUDA_ERROR_OUT_OF_MEMORY;
    return falloc_new((uint64_t)*pitch * h, NULL, p);
}

static CUresult f_alloc_async(CUdeviceptr *p, size_t n, CUstream s)
{
    stream_ok(s, "cuMemAllocAsync");
    return falloc_new(n, NULL, p);
}

static CUresult f_free_async(CUdeviceptr p, CUstream s)
{
    stream_ok(s, "cuMemFreeAsync");
    return f_free(p);
}

static CUresult f_info(size_t *f, size_t *t)
{
    if (!current) return CUDA_ERROR_INVALID_CONTEXT;
    *f = 8ull << 30;
    *t = 16ull << 30;
    return CUDA_SUCCESS;
}

static CUresult f_htod(CUdeviceptr d, const void *s, size_t n)
{
    range_ok(d, n, "cuMemcpyHtoD");
    host_touch(s, n, 0);
    return CUDA_SUCCESS;
}

static CUresult f_htod_async(CUdeviceptr d, const void *s, size_t n, CUstream st)
{
    stream_ok(st, "cuMemcpyHtoDAsync");
    return f_htod(d, s, n);
}

static CUresult f_dtoh(void *d, CUdeviceptr s, size_t n)
{
    range_ok(s, n, "cuMemcpyDtoH");
    host_touch(d, n, 1);
    return CUDA_SUCCESS;
}

static CUresult f_dtoh_async(void *d, CUdeviceptr s, size_t n, CUstream st)
{
    stream_ok(st, "cuMemcpyDtoHAsync");
    return f_dtoh(d, s, n);
}

static CUresult f_dtod(CUdeviceptr d, CUdeviceptr s, size_t n)
{
    range_ok(d, n, "cuMemcpyDtoD dst");
    range_ok(s, n, "cuMemcpyDtoD src");
    return CUDA_SUCCESS;
}

static CUresult f_dtod_async(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st)
{
    stream_ok(st, "cuMemcpyDtoDAsync");
    return f_dtod(d, s, n);
}

static CUresult f_set8(CUdeviceptr d, unsigned char v, size_t n) { (void)v; range_ok(d, n, "cuMemsetD8"); return CUDA_SUCCESS; }
static CUresult f_set16(CUdeviceptr d, unsigned short v, size_t n) { (void)v; range_ok(d, n * 2, "cuMemsetD16"); return CUDA_SUCCESS; }
static CUresult f_set32(CUdeviceptr d, unsigned v, size_t n) { (void)v; range_ok(d, n * 4, "cuMemsetD32"); return CUDA_SUCCESS; }
static CUresult f_set8a(CUdeviceptr d, unsigned char v, size_t n, CUstream s) { stream_ok(s, "memset"); return f_set8(d, v, n); }
static CUresult f_set16a(CUdeviceptr d, unsigned short v, size_t n, CUstream s) { stream_ok(s, "memset"); return f_set16(d, v, n); }
static CUresult f_set32a(CUdeviceptr d, unsigned v, size_t n, CUstream s) { stream_ok(s, "memset"); return f_set32(d, v, n); }

/* Images starting "FZ" load; the module has one 256-byte global "g". */
static CUresult load_image(int kind, void **out, const void *img)
{
    const char *p = img;
    if (p[0] != 'F' || p[1] != 'Z') return CUDA_ERROR_INVALID_IMAGE;
    fobj *m = fnew(kind);
    if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
    CUdeviceptr g;
    fobj *save = current;
    if (!current) current = m; /* a library loaded before any context: its own "context" */
    CUresult r = falloc_new(256, m, &g);
    current = save;
    if (r != CUDA_SUCCESS) {
        fkill(m);
        return r;
    }
    m->global = g;
    *out = m;
    return CUDA_SUCCESS;
}

static CUresult unload(void *h, int kind)
{
    fobj *m = fget(h, kind, "unload");
    for (unsigned i = 0; i < nallocs; i++)
        if (allocs[i].live && allocs[i].mod == m) allocs[i].live = 0;
    for (unsigned i = 0; i < nobjs; i++)
        if (objs[i]->live && objs[i]->mod == m) fkill(objs[i]);
    fkill(m);
    return CUDA_SUCCESS;
}

static CUresult f_mod_load(CUmodule *m, const void *img) { return load_image(F_MOD, (void **)m, img); }
static CUresult f_mod_unload(CUmodule m) { return unload(m, F_MOD); }
/* The JIT log options must point at buffers of the sizes they claim: the fake JIT fills them. */
static CUresult f_mod_load_ex(CUmodule *m, const void *img, unsigned n, CUjit_option *o, void **v)
{
    for (unsigned i = 0; i + 1 < n; i++)
        if ((o[i] == CU_JIT_ERROR_LOG_BUFFER && o[i + 1] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES) ||
            (o[i] == CU_JIT_INFO_LOG_BUFFER && o[i + 1] == CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES)) {
            size_t cap = (size_t)(uintptr_t)v[i + 1];
            if (cap) memset(v[i], 'j', cap - 1), ((char *)v[i])[cap - 1] = 0;
            v[i + 1] = (void *)(uintptr_t)(cap ? cap - 1 : 0);
        }
    return f_mod_load(m, img);
}
static CUresult f_lib_load(CUlibrary *l, const void *img, CUjit_option *a, void **b, unsigned c,
                           CUlibraryOption *d, void **e, unsigned f)
{
    (void)a, (void)b, (void)c, (void)d, (void)e, (void)f;
    return load_image(F_LIB, (void **)l, img);
}
static CUresult f_lib_unload(CUlibrary l) { return unload(l, F_LIB); }

/* Functions "k0".."k9" take that many 8-byte parameters. */
static CUresult get_func(void *m, const char *name, void **out)
{
    if (name[0] != 'k' || name[1] < '0' || name[1] > '9' || name[2]) return CUDA_ERROR_NOT_FOUND;
    fobj *f = fnew(F_FUNC);
    if (!f) return CUDA_ERROR_OUT_OF_MEMORY;
    f->nparams = (unsigned)(name[1] - '0');
    f->mod = m;
    *out = f;
    return CUDA_SUCCESS;
}

static CUresult f_get_function(CUfunction *f, CUmodule m, const char *name)
{
    return get_func(fget(m, F_MOD, "cuModuleGetFunction"), name, (void **)f);
}

static CUresult f_get_kernel(CUkernel *k, CUlibrary l, const char *name)
{
    return get_func(fget(l, F_LIB, "cuLibraryGetKernel"), name, (void **)k);
}

static CUresult get_global(void *m, CUdeviceptr *p, size_t *n, const char *name)
{
    fobj *o = m;
    if (strcmp(name, "g")) return CUDA_ERROR_NOT_FOUND;
    *p = o->global;
    *n = 256;
    return CUDA_SUCCESS;
}

static CUresult f_mod_global(CUdeviceptr *p, size_t *n, CUmodule m, const char *name)
{
    return get_global(fget(m, F_MOD, "cuModuleGetGlobal"), p, n, name);
}

static CUresult f_lib_global(CUdeviceptr *p, size_t *n, CUlibrary l, const char *name)
{
    return get_global(fget(l, F_LIB, "cuLibraryGetGlobal"), p, n, name);
}

static CUresult f_param_info(CUfunction f, size_t i, size_t *off, size_t *size)
{
    fobj *o = fget(f, F_FUNC, "cuFuncGetParamInfo");
    if (i >= o->nparams) return CUDA_ERROR_INVALID_VALUE;
    *off = i * 8;
    *size = 8;
    return CUDA_SUCCESS;
}

static CUresult f_func_attr(int *v, CUfunction_attribute a, CUfunction f)
{
    (void)a;
    fget(f, F_FUNC, "cuFuncGetAttribute");
    *v = 0;
    return CUDA_SUCCESS;
}

static CUresult f_func_set_attr(CUfunction f, CUfunction_attribute a, int v)
{
    (void)a, (void)v;
    fget(f, F_FUNC, "cuFuncSetAttribute");
    return CUDA_SUCCESS;
}

static CUresult f_occupancy(int *n, CUfunction f, int b, size_t s, unsigned fl)
{
    (void)b, (void)s, (void)fl;
    fget(f, F_FUNC, "cuOccupancy");
    *n = 1;
    return CUDA_SUCCESS;
}

static CUresult f_block_size(int *grid, int *block, CUfunction f, CUoccupancyB2DSize cb,
                             size_t smem, int limit, unsigned fl)
{
    (void)smem, (void)limit, (void)fl;
    fget(f, F_FUNC, "cuOccupancyMaxPotentialBlockSize");
    if (cb)
        for (int b = 1; b <= 1024; b += 31) (void)cb(b);
    *grid = 1;
    *block = 32;
    return CUDA_SUCCESS;
}

static CUresult ctx_event(CUcontext c, CUevent e, const char *what)
{
    fobj *x = fget(c, F_CTX, what), *ev = fget(e, F_EVENT, what);
    if (ev->ctx != x) return CUDA_ERROR_INVALID_HANDLE;
    return CUDA_SUCCESS;
}

static CUresult f_ctx_record_event(CUcontext c, CUevent e)
{
    return ctx_event(c, e, "cuCtxRecordEvent");
}

static CUresult f_ctx_wait_event(CUcontext c, CUevent e)
{
    return ctx_event(c, e, "cuCtxWaitEvent");
}

static CUresult f_launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                         unsigned by, unsigned bz, unsigned sh, CUstream st, void **args,
                         void **extra)
{
    (void)gx, (void)gy, (void)gz, (void)bx, (void)by, (void)bz, (void)sh, (void)extra;
    fobj *o = fget(f, F_FUNC, "cuLaunchKernel");
    stream_ok(st, "cuLaunchKernel");
    if (o->nparams && !args) DIE("cuLaunchKernel: no parameters for a function that takes %u", o->nparams);
    for (unsigned i = 0; i < o->nparams; i++) host_touch(args[i], 8, 0);
    return CUDA_SUCCESS;
}

static CUresult f_launch_coop(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                              unsigned by, unsigned bz, unsigned sh, CUstream st, void **args)
{
    return f_launch(f, gx, gy, gz, bx, by, bz, sh, st, args, NULL);
}

static CUresult f_stream_create(CUstream *s, unsigned fl, int prio)
{
    (void)fl, (void)prio;
    if (!current) return CUDA_ERROR_INVALID_CONTEXT;
    fobj *o = fnew(F_STREAM);
    if (!o) return CUDA_ERROR_OUT_OF_MEMORY;
    *s = (CUstream)o;
    return CUDA_SUCCESS;
}

static CUresult f_stream_destroy(CUstream s) { fkill(fget(s, F_STREAM, "cuStreamDestroy")); return CUDA_SUCCESS; }
static CUresult f_stream_sync(CUstream s) { stream_ok(s, "cuStreamSynchronize"); return CUDA_SUCCESS; }

static CUresult f_event_create(CUevent *e, unsigned fl)
{
    (void)fl;
    if (!current) return CUDA_ERROR_INVALID_CONTEXT;
    fobj *o = fnew(F_EVENT);
    if (!o) return CUDA_ERROR_OUT_OF_MEMORY;
    *e = (CUevent)o;
    return CUDA_SUCCESS;
}

static CUresult f_event_destroy(CUevent e) { fkill(fget(e, F_EVENT, "cuEventDestroy")); return CUDA_SUCCESS; }
static CUresult f_event_sync(CUevent e) { fget(e, F_EVENT, "cuEventSynchronize"); return CUDA_SUCCESS; }

static CUresult f_event_record(CUevent e, CUstream s)
{
    fget(e, F_EVENT, "cuEventRecord");
    stream_ok(s, "cuEventRecord");
    return CUDA_SUCCESS;
}

static CUresult f_event_record_flags(CUevent e, CUstream s, unsigned fl)
{
    (void)fl;
    return f_event_record(e, s);
}

static CUresult f_elapsed(float *ms, CUevent a, CUevent b)
{
    fget(a, F_EVENT, "cuEventElapsedTime");
    fget(b, F_EVENT, "cuEventElapsedTime");
    *ms = 1;
    return CUDA_SUCCESS;
}

static CUresult f_wait_event(CUstream s, CUevent e, unsigned fl)
{
    (void)fl;
    stream_ok(s, "cuStreamWaitEvent");
    fget(e, F_EVENT, "cuStreamWaitEvent");
    return CUDA_SUCCESS;
}

/* The worker's host-function gates wait for the client's HOST_FUNC_DONE; the fake has no stream
 * thread to run them on, so they run at the session's end (gates open then), others at once. */
static void *gates_due[256];
static unsigned ngates_due;

static void run_gates(void)
{
    while (ngates_due) gate_wait(gates_due[--ngates_due]);
}

static CUresult f_host_func(CUstream s, CUhostFn fn, void *data)
{
    stream_ok(s, "cuLaunchHostFunc");
    if (fn != gate_wait) {
        fn(data);
        return CUDA_SUCCESS;
    }
    if (ngates_due == sizeof gates_due / sizeof gates_due[0]) return CUDA_ERROR_OUT_OF_MEMORY;
    gates_due[ngates_due++] = data;
    return CUDA_SUCCESS;
}

/* Memory pools and VMM. A pool allocation is an allocation; a mapping is an allocation with no
 * context, valid while mapped; handles count their references as the driver does. */
static fobj *dflt_pool; /* the device's default pool, made at first use */

typedef struct fva {
    uint64_t base, size;
    int live;
} fva;
#define MAXVA 64
static fva vas[MAXVA];
static unsigned nvas;
static uint64_t next_va = 0x200000000000ull;

static CUresult f_lib_kernel_count(unsigned *n, CUlibrary l)
{
    fget(l, F_LIB, "cuLibraryGetKernelCount");
    *n = 1;
    return CUDA_SUCCESS;
}

static CUresult f_default_pool(CUmemoryPool *p, CUdevice d)
{
    if (d != 0) DIE("cuDeviceGetDefaultMemPool: device %d", d);
    if (!dflt_pool) {
        fobj *saved = current;
        current = NULL;
        dflt_pool = fnew(F_POOL);
        current = saved;
        if (!dflt_pool) return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *p = (CUmemoryPool)dflt_pool;
    return CUDA_SUCCESS;
}

static CUresult f_pool_create(CUmemoryPool *p, const CUmemPoolProps *props)
{
    if (props->location.type != CU_MEM_LOCATION_TYPE_DEVICE || props->location.id != 0)
        DIE("cuMemPoolCreate: location %d/%d", (int)props->location.type, props->location.id);
    fobj *saved = current;
    current = NULL; /* pools belong to no context */
    fobj *o = fnew(F_POOL);
    current = saved;
    if (!o) return CUDA_ERROR_OUT_OF_MEMORY;
    *p = (CUmemoryPool)o;
    return CUDA_SUCCESS;
}

static CUresult f_pool_destroy(CUmemoryPool p)
{
    fobj *o = fget(p, F_POOL, "cuMemPoolDestroy");
    if (o == dflt_pool) DIE("cuMemPoolDestroy: the default pool");
    fkill(o);
    return CUDA_SUCCESS;
}

static CUresult f_pool_attr(CUmemoryPool p, CUmemPool_attribute a, void *v)
{
    fget(p, F_POOL, "cuMemPoolGet/SetAttribute");
    if (a <= CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES) host_touch(v, sizeof(int), 1);
    else host_touch(v, sizeof(cuuint64_t), 1);
    return CUDA_SUCCESS;
}

static CUresult f_pool_trim(CUmemoryPool p, size_t keep)
{
    (void)keep;
    fget(p, F_POOL, "cuMemPoolTrimTo");
    return CUDA_SUCCESS;
}

static CUresult f_set_pool(CUdevice d, CUmemoryPool p)
{
    if (d != 0) DIE("cuDeviceSetMemPool: device %d", d);
    fget(p, F_POOL, "cuDeviceSetMemPool");
    return CUDA_SUCCESS;
}

static CUresult f_alloc_from_pool(CUdeviceptr *p, size_t n, CUmemoryPool pool, CUstream s)
{
    fget(pool, F_POOL, "cuMemAllocFromPoolAsync");
    stream_ok(s, "cuMemAllocFromPoolAsync");
    return falloc_new(n, NULL, p);
}

static CUresult f_granularity(size_t *g, const CUmemAllocationProp *p,
                              CUmemAllocationGranularity_flags o)
{
    (void)o;
    if (p->location.type != CU_MEM_LOCATION_TYPE_DEVICE || p->location.id != 0)
        DIE("cuMemGetAllocationGranularity: location %d/%d", (int)p->location.type, p->location.id);
    *g = 4096;
    return CUDA_SUCCESS;
}

static CUresult f_reserve(CUdeviceptr *p, size_t size, size_t align, CUdeviceptr hint,
                          unsigned long long fl)
{
    (void)align, (void)hint, (void)fl;
    if (size > (1ull << 30) || nvas == MAXVA) return CUDA_ERROR_OUT_OF_MEMORY;
    vas[nvas++] = (fva){next_va, size, 1};
    *p = next_va;
    next_va += (size + 0xffff) & ~0xffffull;
    next_va += 0x10000;
    return CUDA_SUCCESS;
}

/* Mappings inside [p, p + n), as allocations. */
static int mapped_in(uint64_t p, uint64_t n)
{
    int k = 0;
    for (unsigned i = 0; i < nallocs; i++)
        if (allocs[i].live && allocs[i].vmm && allocs[i].base - p < n) k++;
    return k;
}

static CUresult f_address_free(CUdeviceptr p, size_t size)
{
    for (unsigned i = 0; i < nvas; i++)
        if (vas[i].live && vas[i].base == p && vas[i].size == size) {
            if (mapped_in(p, size)) DIE("cuMemAddressFree: 0x%llx is still mapped", (unsigned long long)p);
            vas[i].live = 0;
            return CUDA_SUCCESS;
        }
    DIE("cuMemAddressFree(0x%llx, %zu): not a live reservation", (unsigned long long)p, size);
}

static CUresult f_mem_create(CUmemGenericAllocationHandle *h, size_t size,
                             const CUmemAllocationProp *p, unsigned long long fl)
{
    (void)fl;
    if (p->location.type != CU_MEM_LOCATION_TYPE_DEVICE || p->location.id != 0)
        DIE("cuMemCreate: location %d/%d", (int)p->location.type, p->location.id);
    if (size > (2u << 20)) return CUDA_ERROR_OUT_OF_MEMORY;
    fobj *saved = current;
    current = NULL;
    fobj *o = fnew(F_VMEM);
    current = saved;
    if (!o) return CUDA_ERROR_OUT_OF_MEMORY;
    o->refs = 1;
    o->size = size;
    *h = (CUmemGenericAllocationHandle)(uintptr_t)o;
    return CUDA_SUCCESS;
}

static CUresult f_mem_release(CUmemGenericAllocationHandle h)
{
    fobj *o = fget((void *)(uintptr_t)h, F_VMEM, "cuMemRelease");
    if (--o->refs == 0) fkill(o);
    return CUDA_SUCCESS;
}

static CUresult f_mem_map(CUdeviceptr p, size_t size, size_t off, CUmemGenericAllocationHandle h,
                          unsigned long long fl)
{
    (void)fl;
    fobj *o = fget((void *)(uintptr_t)h, F_VMEM, "cuMemMap");
    if (off > o->size || size > o->size - off) DIE("cuMemMap: %zu + %zu past the handle", off, size);
    int in = 0;
    for (unsigned i = 0; i < nvas && !in; i++)
        in = vas[i].live && p >= vas[i].base && p - vas[i].base < vas[i].size &&
             size <= vas[i].size - (p - vas[i].base);
    if (!in) DIE("cuMemMap: 0x%llx + %zu is not inside a reservation", (unsigned long long)p, size);
    if (mapped_in(p, size)) DIE("cuMemMap: 0x%llx is mapped already", (unsigned long long)p);
    for (unsigned i = 0; i < nallocs; i++)
        if (allocs[i].live && allocs[i].vmm && p - allocs[i].base < allocs[i].size)
            DIE("cuMemMap: 0x%llx is mapped already", (unsigned long long)p);
    if (nallocs == MAXALLOC) return CUDA_ERROR_OUT_OF_MEMORY;
    allocs[nallocs++] = (falloc){p, size, NULL, NULL, 1, 1, o};
    return CUDA_SUCCESS;
}

static CUresult f_mem_unmap(CUdeviceptr p, size_t size)
{
    uint64_t covered = 0;
    for (unsigned i = 0; i < nallocs; i++)
        if (allocs[i].live && allocs[i].vmm && allocs[i].base - p < size) {
            if (allocs[i].size > size - (allocs[i].base - p)) DIE("cuMemUnmap: part of a mapping");
            allocs[i].live = 0;
            covered += allocs[i].size;
        }
    if (covered != size) DIE("cuMemUnmap(0x%llx, %zu): not all mapped", (unsigned long long)p, size);
    return CUDA_SUCCESS;
}

static CUresult f_set_access(CUdeviceptr p, size_t size, const CUmemAccessDesc *d, size_t n)
{
    if (!n) DIE("cuMemSetAccess: no descriptors");
    for (size_t i = 0; i < n; i++)
        if (d[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE || d[i].location.id != 0)
            DIE("cuMemSetAccess: location %d/%d", (int)d[i].location.type, d[i].location.id);
    /* mapped throughout: adjacent mappings count as one range */
    uint64_t at = p;
    while (at < p + size) {
        unsigned i = 0;
        while (i < nallocs && !(allocs[i].live && allocs[i].vmm && at - allocs[i].base < allocs[i].size)) i++;
        if (i == nallocs) DIE("cuMemSetAccess: 0x%llx is not mapped", (unsigned long long)at);
        at = allocs[i].base + allocs[i].size;
    }
    return CUDA_SUCCESS;
}

static CUresult f_get_access(unsigned long long *fl, const CUmemLocation *loc, CUdeviceptr p)
{
    if (loc->type != CU_MEM_LOCATION_TYPE_DEVICE || loc->id != 0) DIE("cuMemGetAccess: location");
    range_ok(p, 1, "cuMemGetAccess");
    *fl = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return CUDA_SUCCESS;
}

static CUresult f_retain(CUmemGenericAllocationHandle *h, void *addr)
{
    for (unsigned i = 0; i < nallocs; i++)
        if (allocs[i].live && allocs[i].vmm && (uint64_t)(uintptr_t)addr - allocs[i].base < allocs[i].size) {
            fobj *o = allocs[i].handle; /* alive again if it had been released */
            o->live = 1;
            o->refs++;
            *h = (CUmemGenericAllocationHandle)(uintptr_t)o;
            return CUDA_SUCCESS;
        }
    DIE("cuMemRetainAllocationHandle(%p): not mapped", addr);
}

static CUresult f_export(void *out, CUmemGenericAllocationHandle h, CUmemAllocationHandleType t,
                         unsigned long long fl)
{
    (void)fl;
    fget((void *)(uintptr_t)h, F_VMEM, "cuMemExportToShareableHandle");
    if (t != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) DIE("cuMemExportToShareableHandle: type %d", (int)t);
    int fd = eventfd(0, EFD_CLOEXEC);
    if (fd < 0) return CUDA_ERROR_OUT_OF_MEMORY;
    *(int *)out = fd;
    return CUDA_SUCCESS;
}

static CUresult f_import(CUmemGenericAllocationHandle *h, void *os, CUmemAllocationHandleType t)
{
    if (t != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR || (intptr_t)os < 0)
        DIE("cuMemImportFromShareableHandle: type %d fd %d", (int)t, (int)(intptr_t)os);
    fobj *saved = current;
    current = NULL;
    fobj *o = fnew(F_VMEM);
    current = saved;
    if (!o) return CUDA_ERROR_OUT_OF_MEMORY;
    o->refs = 1;
    o->size = 2u << 20;
    *h = (CUmemGenericAllocationHandle)(uintptr_t)o;
    return CUDA_SUCCESS;
}

static CUresult f_peer(CUcontext peer, unsigned fl)
{
    (void)fl;
    fget(peer, F_CTX, "cuCtxEnablePeerAccess");
    return CUDA_SUCCESS;
}

static CUresult f_peer_off(CUcontext peer)
{
    fget(peer, F_CTX, "cuCtxDisablePeerAccess");
    return CUDA_SUCCESS;
}

/* Pinned memory comes from a few buffers kept for the whole run (a fresh megabyte per input
 * would make the run slow, not better). */
#define POOL 4
static void *pool[POOL];
static int pool_used[POOL];

static CUresult f_host_alloc(void **p, size_t n, unsigned fl)
{
    (void)fl;
    if (!current) return CUDA_ERROR_INVALID_CONTEXT;
    if (n > (64u << 20)) return CUDA_ERROR_OUT_OF_MEMORY;
    for (unsigned i = 0; i < 64; i++)
        if (!hostallocs[i]) {
            void *b = NULL;
            for (int k = 0; k < POOL && !b && n <= GF_RPC_CHUNK; k++)
                if (!pool_used[k]) {
                    if (!pool[k]) pool[k] = malloc(GF_RPC_CHUNK);
                    pool_used[k] = 1;
                    b = pool[k];
                }
            if (!b) b = malloc(n);
            hostallocs[i] = *p = b;
            hostsize[i] = n;
            hostctx[i] = current;
            return *p ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
        }
    return CUDA_ERROR_OUT_OF_MEMORY;
}

/* Host memory mapped for the device: its device address (the host address) becomes a range
 * the worker may hand to the driver. */
static void host_range_drop(void *p)
{
    for (unsigned i = 0; i < nallocs; i++)
        if (allocs[i].live && allocs[i].base == (uintptr_t)p && !allocs[i].mod) allocs[i].live = 0;
}

static CUresult f_free_host(void *p)
{
    for (unsigned i = 0; i < 64; i++)
        if (hostallocs[i] == p) {
            int k = 0;
            while (k < POOL && pool[k] != p) k++;
            if (k < POOL) pool_used[k] = 0;
            else free(p);
            hostallocs[i] = NULL;
            host_range_drop(p);
            return CUDA_SUCCESS;
        }
    DIE("cuMemFreeHost(%p): not pinned memory", p);
}

static CUresult f_host_register(void *p, size_t n, unsigned fl)
{
    (void)fl;
    if (!current) return CUDA_ERROR_INVALID_CONTEXT;
    for (unsigned i = 0; i < 64; i++)
        if (!hostregs[i]) {
            hostregs[i] = p;
            regsize[i] = n;
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_OUT_OF_MEMORY;
}

static CUresult f_host_unregister(void *p)
{
    for (unsigned i = 0; i < 64; i++)
        if (hostregs[i] == p) {
            hostregs[i] = NULL;
            host_range_drop(p);
            return CUDA_SUCCESS;
        }
    DIE("cuMemHostUnregister(%p): not registered", p);
}

static CUresult f_host_dptr(CUdeviceptr *d, void *p, unsigned fl)
{
    if (fl) DIE("cuMemHostGetDevicePointer: flags %u", fl);
    size_t n = 0;
    for (unsigned i = 0; i < 64 && !n; i++) {
        if (hostregs[i] == p) n = regsize[i];
        if (hostallocs[i] == p) n = hostsize[i];
    }
    if (!n) DIE("cuMemHostGetDevicePointer(%p): not pinned or registered memory", p);
    if (nallocs == MAXALLOC) return CUDA_ERROR_OUT_OF_MEMORY;
    allocs[nallocs++] = (falloc){(uintptr_t)p, n, current, NULL, 1, 0, NULL};
    *d = (uintptr_t)p;
    return CUDA_SUCCESS;
}

static CUresult f_alloc_managed(CUdeviceptr *p, size_t n, unsigned fl)
{
    (void)fl;
    return falloc_new(n, NULL, p);
}

static CUresult f_lib_managed(CUdeviceptr *p, size_t *n, CUlibrary l, const char *name)
{
    return get_global(fget(l, F_LIB, "cuLibraryGetManaged"), p, n, name);
}

/* cuMemcpy of the mirror calls: one side is the worker's buffer, the other a session range. */
static CUresult f_memcpy(CUdeviceptr d, CUdeviceptr s, size_t n)
{
    if (!current) return CUDA_ERROR_INVALID_CONTEXT;
    range_ok(d >= 0x100000000000ull && d < next_base ? d : s, n, "cuMemcpy");
    return CUDA_SUCCESS;
}

static void install_fake_driver(void)
{
    gf_wk_driver *d = &gf_wk_drv;
    memset(d, 0, sizeof *d);
    d->cuCtxCreate_v2 = f_ctx_create;
    d->cuCtxDestroy_v2 = f_ctx_destroy;
    d->cuCtxSetCurrent = f_ctx_set;
    d->cuCtxSynchronize = f_ctx_sync;
    d->cuDeviceGetAttribute = f_attr;
    d->cuDeviceGetName = f_name;
    d->cuDeviceGetPCIBusId = f_pci;
    d->cuDeviceGetUuid_v2 = f_uuid;
    d->cuDeviceTotalMem_v2 = f_total;
    d->cuDriverGetVersion = f_version;
    d->cuMemAlloc_v2 = f_alloc;
    d->cuMemAllocPitch_v2 = f_alloc_pitch;
    d->cuMemAllocAsync = f_alloc_async;
    d->cuMemFree_v2 = f_free;
    d->cuMemFreeAsync = f_free_async;
    d->cuMemGetInfo_v2 = f_info;
    d->cuMemcpyHtoD_v2 = f_htod;
    d->cuMemcpyHtoDAsync_v2 = f_htod_async;
    d->cuMemcpyDtoH_v2 = f_dtoh;
    d->cuMemcpyDtoHAsync_v2 = f_dtoh_async;
    d->cuMemcpyDtoD_v2 = f_dtod;
    d->cuMemcpyDtoDAsync_v2 = f_dtod_async;
    d->cuMemsetD8_v2 = f_set8;
    d->cuMemsetD16_v2 = f_set16;
    d->cuMemsetD32_v2 = f_set32;
    d->cuMemsetD8Async = f_set8a;
    d->cuMemsetD16Async = f_set16a;
    d->cuMemsetD32Async = f_set32a;
    d->cuModuleLoadData = f_mod_load;
    d->cuModuleLoadDataEx = f_mod_load_ex;
    d->cuOccupancyMaxPotentialBlockSizeWithFlags = f_block_size;
    d->cuCtxRecordEvent = f_ctx_record_event;
    d->cuCtxWaitEvent = f_ctx_wait_event;
    d->cuModuleUnload = f_mod_unload;
    d->cuModuleGetFunction = f_get_function;
    d->cuModuleGetGlobal_v2 = f_mod_global;
    d->cuLibraryLoadData = f_lib_load;
    d->cuLibraryUnload = f_lib_unload;
    d->cuLibraryGetKernel = f_get_kernel;
    d->cuLibraryGetGlobal = f_lib_global;
    d->cuFuncGetParamInfo = f_param_info;
    d->cuFuncGetAttribute = f_func_attr;
    d->cuFuncSetAttribute = f_func_set_attr;
    d->cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags = f_occupancy;
    d->cuLaunchKernel = f_launch;
    d->cuLaunchCooperativeKernel = f_launch_coop;
    d->cuStreamCreateWithPriority = f_stream_create;
    d->cuStreamDestroy_v2 = f_stream_destroy;
    d->cuStreamSynchronize = f_stream_sync;
    d->cuStreamQuery = f_stream_sync;
    d->cuStreamWaitEvent = f_wait_event;
    d->cuEventCreate = f_event_create;
    d->cuEventDestroy_v2 = f_event_destroy;
    d->cuEventRecord = f_event_record;
    d->cuEventRecordWithFlags = f_event_record_flags;
    d->cuEventSynchronize = f_event_sync;
    d->cuEventQuery = f_event_sync;
    d->cuEventElapsedTime_v2 = f_elapsed;
    d->cuLaunchHostFunc = f_host_func;
    d->cuMemHostAlloc = f_host_alloc;
    d->cuMemFreeHost = f_free_host;
    d->cuMemHostRegister_v2 = f_host_register;
    d->cuMemHostUnregister = f_host_unregister;
    d->cuMemHostGetDevicePointer_v2 = f_host_dptr;
    d->cuMemAllocManaged = f_alloc_managed;
    d->cuLibraryGetManaged = f_lib_managed;
    d->cuMemcpy = f_memcpy;
    d->cuLibraryGetKernelCount = f_lib_kernel_count;
    d->cuDeviceGetDefaultMemPool = f_default_pool;
    d->cuMemPoolCreate = f_pool_create;
    d->cuMemPoolDestroy = f_pool_destroy;
    d->cuMemPoolGetAttribute = f_pool_attr;
    d->cuMemPoolSetAttribute = f_pool_attr;
    d->cuMemPoolTrimTo = f_pool_trim;
    d->cuDeviceSetMemPool = f_set_pool;
    d->cuMemAllocFromPoolAsync = f_alloc_from_pool;
    d->cuMemGetAllocationGranularity = f_granularity;
    d->cuMemAddressReserve = f_reserve;
    d->cuMemAddressFree = f_address_free;
    d->cuMemCreate = f_mem_create;
    d->cuMemRelease = f_mem_release;
    d->cuMemMap = f_mem_map;
    d->cuMemUnmap = f_mem_unmap;
    d->cuMemSetAccess = f_set_access;
    d->cuMemGetAccess = f_get_access;
    d->cuMemRetainAllocationHandle = f_retain;
    d->cuMemExportToShareableHandle = f_export;
    d->cuMemImportFromShareableHandle = f_import;
    d->cuCtxEnablePeerAccess = f_peer;
    d->cuCtxDisablePeerAccess = f_peer_off;
}

/* After a session ended: the worker freed everything it made (module globals go with their
 * module; libraries loaded without a context are the session's too). */
static void check_nothing_left(void)
{
    for (unsigned i = 0; i < nallocs; i++)
        if (allocs[i].live) DIE("allocation 0x%llx (%llu bytes) leaked by the session",
                                (unsigned long long)allocs[i].base,
                                (unsigned long long)allocs[i].size);
    for (unsigned i = 0; i < nobjs; i++) {
        if (objs[i]->live && objs[i]->kind != F_FUNC && objs[i] != dflt_pool)
            DIE("object of kind %d leaked by the session", objs[i]->kind);
        free(objs[i]);
    }
    for (unsigned i = 0; i < nvas; i++)
        if (vas[i].live) DIE("reservation 0x%llx leaked by the session", (unsigned long long)vas[i].base);
    nvas = 0;
    next_va = 0x200000000000ull;
    dflt_pool = NULL;
    for (unsigned i = 0; i < 64; i++)
        if (hostallocs[i] || hostregs[i]) DIE("pinned buffer leaked by the session");
    nobjs = nallocs = 0;
    next_base = 0x100000000000ull; /* the same addresses for the same input */
    current = NULL;
}

/* ---- what loop.c and driver.c provide in the worker --------------------------------------- */

gf_wk_driver gf_wk_drv;
gf_wk_nvml gf_wk_nv = {.rc = 12};

void gf_wk_nvml_load(void)
{
}

void gf_wk_wake(gf_wk_worker *w)
{
    uint64_t v;
    ssize_t n = read(w->wakefd, &v, sizeof v); /* keep the counter from growing */
    (void)n;
}

/* ---- the peer: reads and drops the replies ------------------------------------------------
 * The requests are placed in the conn's read buffer before the session starts (its peer has
 * already shut down writing, so the session sees EOF after them); one thread that lives for the
 * whole run drains what the session writes, so that big replies never block it. */

static pthread_mutex_t drain_lk = PTHREAD_MUTEX_INITIALIZER;
static int drain_ep = -1;
static int drain_fd = -1; /* the current peer fd, under drain_lk */

static void *drain_main(void *arg)
{
    (void)arg;
    static uint8_t buf[1 << 16];
    for (;;) {
        struct epoll_event ev;
        if (epoll_wait(drain_ep, &ev, 1, -1) < 1) continue;
        pthread_mutex_lock(&drain_lk);
        if (drain_fd >= 0 && ev.data.fd == drain_fd) {
            while (read(drain_fd, buf, sizeof buf) > 0) {
            }
        }
        pthread_mutex_unlock(&drain_lk);
    }
    return NULL;
}

static void drain_start(int fd)
{
    pthread_mutex_lock(&drain_lk);
    drain_fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(drain_ep, EPOLL_CTL_ADD, fd, &ev);
    pthread_mutex_unlock(&drain_lk);
}

static void drain_stop(int fd)
{
    pthread_mutex_lock(&drain_lk);
    epoll_ctl(drain_ep, EPOLL_CTL_DEL, fd, NULL);
    drain_fd = -1;
    close(fd);
    pthread_mutex_unlock(&drain_lk);
}

/* Turns the fuzz records into wire frames. */
static size_t frames(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    size_t pos = 0, len = 0;
    uint64_t rid = 1, last = 1;
    while (pos + 4 <= n) {
        uint8_t op = in[pos], fl = in[pos + 1];
        size_t pl = (size_t)in[pos + 2] | ((size_t)in[pos + 3] << 8);
        pos += 4;
        if (pl > n - pos) pl = n - pos;
        uint32_t kind;
        if (op < 48 || (op > 50 && op < 128)) kind = GF_WIRE_K_CUDA_FIRST + op;
        else if (op == 48) kind = GF_WIRE_K_BULK;
        else if (op == 49) kind = GF_RPC_NVML_SNAPSHOT;
        else if (op == 50) kind = GF_WIRE_K_PING;
        else kind = (uint32_t)op << 8;
        uint16_t flags = (uint16_t)((fl & 1 ? GF_WIRE_F_NOREPLY : 0) | (fl & 2 ? GF_WIRE_F_MORE : 0) |
                                    (fl & 4 ? GF_WIRE_F_REPLY : 0));
        uint64_t id = kind == GF_WIRE_K_BULK ? last : (last = ++rid);
        if (len + GF_WIRE_HDR_SIZE + pl > cap) break;
        gf_wire_hdr_encode(out + len, kind, flags, id, pl);
        memcpy(out + len + GF_WIRE_HDR_SIZE, in + pos, pl);
        len += GF_WIRE_HDR_SIZE + pl;
        pos += pl;
    }
    return len;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    setenv("GPUFUSE_LOG", "error", 1);
    signal(SIGPIPE, SIG_IGN);
    install_fake_driver();
    drain_ep = epoll_create1(EPOLL_CLOEXEC);
    pthread_t t;
    pthread_create(&t, NULL, drain_main, NULL);
    pthread_detach(t);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t wire[1 << 20];
    if (size > 256 * 1024) return 0;
    size_t wlen = frames(data, size, wire, sizeof wire);

    static gf_wk_worker w;
    w.wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w.epfd = -1;
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) abort();
    gf_wire__set_nonblock(sp[0]);
    gf_wk_session *s = calloc(1, sizeof *s);
    s->w = &w;
    s->id = 1;
    s->c = gf_wire__conn_new(&gf_wire__tcp_ops, GF_WIRE_TCP, sp[0], NULL, "fuzz");
    snprintf(s->peer, sizeof s->peer, "fuzz");
    snprintf(s->client_name, sizeof s->client_name, "fuzzer");
    pthread_mutex_init(&s->io, NULL);
    pthread_mutex_init(&s->qlk, NULL);
    pthread_cond_init(&s->qcv, NULL);
    pthread_cond_init(&s->outcv, NULL);
    s->handshaken = 1;
    s->thread_io = 1;
    s->registered_events = -1;
    s->ndev = 1;
    s->devmap[0] = 0;

    /* The requests, already received; then EOF. */
    if (wlen > GF_WIRE__RBUF) {
        uint8_t *b = realloc(s->c->rbuf, wlen);
        if (!b) abort();
        s->c->rbuf = b;
    }
    memcpy(s->c->rbuf, wire, wlen);
    s->c->rpos = 0;
    s->c->rlen = wlen;
    shutdown(sp[1], SHUT_WR);
    gf_wire__set_nonblock(sp[1]);
    drain_start(sp[1]);
    gf_wk_session_main(s); /* until EOF; then frees what the session held */
    run_gates();
    check_nothing_left();
    drain_stop(sp[1]);

    gf_wire_close(s->c);
    close(w.wakefd);
    pthread_mutex_destroy(&s->io);
    pthread_mutex_destroy(&s->qlk);
    pthread_cond_destroy(&s->qcv);
    pthread_cond_destroy(&s->outcv);
    if (s->hf_inited) {
        pthread_mutex_destroy(&s->hf_lk);
        pthread_cond_destroy(&s->hf_cv);
    }
    free(s);
    return 0;
}
