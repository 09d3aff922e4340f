/* SPDX-License-Identifier: Apache-2.0 */
/* The NVML shim (build/lib/libnvidia-ml.so.1): NVML as a vGPU's processes should see it. The
 * vGPU's GPU is the only device, its memory total is the vGPU's limit and used is what the
 * vGPU's processes hold, and the running processes are the vGPU's. Everything else it exports
 * is passed to the real NVML (GPUFUSE_NVML or the usual driver locations).
 *
 * In remote mode (GPUFUSE_REMOTE set) there is no local NVML: every query is answered from the
 * worker's view of this process's session (the remote backend's NVML_SNAPSHOT, reached through
 * the client library's cuGetExportTable), and what the worker cannot answer is
 * NVML_ERROR_NOT_SUPPORTED. */
#define NVML_NO_UNVERSIONED_FUNC_DEFS 1
#pragma GCC visibility push(default)
#include "gpufuse/nvml.h"
#include "gpufuse/nvml_errors.h"
nvmlReturn_t nvmlInit(void);
nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount);
nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int *infoCount,
                                                  nvmlProcessInfo_v1_t *infos);
extern const char gpufuse_nvml_marker[];
#pragma GCC visibility pop

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "findlib.h"
#include "remote.h"
#include "gpufuse/limiter.h"
#include "gpufuse/log.h"

#define LOG "nvml-shim"

const char gpufuse_nvml_marker[] = "gpufuse NVML shim";

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int loaded;
static void *real;
static gf_limiter *lim;
static char remap_uuid[96];
static nvmlDevice_t remap_dev; /* the vGPU's GPU once nvmlInit found it */

static void *sym(const char *name)
{
    return real ? dlsym(real, name) : NULL;
}

static void load(void)
{
    pthread_mutex_lock(&lock);
    if (!loaded) {
        char err[1024], path[512];
        real = gf_findlib_load("GPUFUSE_NVML", "libnvidia-ml.so.1", "gpufuse_nvml_marker",
                               RTLD_NOW | RTLD_LOCAL, path, sizeof path, err, sizeof err);
        if (!real) gf_log(GF_LOG_ERROR, LOG, "%s", err);
        const char *v = getenv("GPUFUSE_VGPU");
        char hami[GF_LIMITER_NAME_MAX];
        if ((!v || !*v) && (getenv("CUDA_DEVICE_MEMORY_LIMIT") || getenv("CUDA_DEVICE_SM_LIMIT"))) {
            snprintf(hami, sizeof hami, "hami-%u", (unsigned)getuid());
            v = hami;
        }
        if (v && *v && gf_limiter_open_observer(v, &lim, err, sizeof err) != GF_OK) lim = NULL;
        const char *u = getenv("GPUFUSE_VGPU_UUID");
        /* NVML shows the vGPU's first GPU only (a list: gpufuse run --server --gpus N). */
        if (u) snprintf(remap_uuid, sizeof remap_uuid, "%.*s", (int)strcspn(u, ","), u);
        loaded = 1;
    }
    pthread_mutex_unlock(&lock);
}

#define REAL(name, ...)                                                                       \
    do {                                                                                      \
        if (is_remote()) return NVML_ERROR_NOT_SUPPORTED;                                     \
        if (!loaded) load();                                                                  \
        static void *fn_;                                                                     \
        if (!fn_) fn_ = sym(#name);                                                           \
        if (!fn_) return real ? NVML_ERROR_FUNCTION_NOT_FOUND : NVML_ERROR_LIBRARY_NOT_FOUND;  \
        return ((nvmlReturn_t(*)())fn_)(__VA_ARGS__);                                         \
    } while (0)

#define PASS0(name)                                                                           \
    nvmlReturn_t name(void) { REAL(name); }

/* ---- remote mode: answers from the worker ------------------------------------------------ */

static int remote_mode = -1; /* -1 unknown, 0 local, 1 remote */
static const gf_rnvml_table *rtab;
/* Successful nvmlInit calls not yet matched by an nvmlShutdown: as in NVML, init is counted and
 * each needs its shutdown. */
static atomic_int rinit;
static gf_rnvml_dev rdev_tokens[GF_RNVML_MAX_DEVS]; /* their addresses are the nvmlDevice_t */

static int is_remote(void)
{
    if (remote_mode < 0) {
        const char *r = getenv("GPUFUSE_REMOTE");
        remote_mode = r && *r;
    }
    return remote_mode;
}

/* The client library's NVML table (the process's libcuda.so.1 must be gpufuse's). */
static nvmlReturn_t remote_table(void)
{
    pthread_mutex_lock(&lock);
    if (!rtab) {
        void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
        if (!h) h = dlopen("libcuda.so.1", RTLD_NOW);
        CUresult (*get)(const void **, const CUuuid *) =
            h ? (CUresult(*)(const void **, const CUuuid *))dlsym(h, "cuGetExportTable") : NULL;
        static const CUuuid id = GF_RNVML_TABLE_ID;
        const void *t = NULL;
        if (get && get(&t, &id) == CUDA_SUCCESS && t &&
            ((const gf_rnvml_table *)t)->size >= sizeof(gf_rnvml_table))
            rtab = t;
        else
            gf_log(GF_LOG_ERROR, LOG, "GPUFUSE_REMOTE=%s: libcuda.so.1 here is not gpufuse's "
                                      "client library (%s); put gpufuse's lib directory first "
                                      "on LD_LIBRARY_PATH (gpufuse run --remote does)",
                   getenv("GPUFUSE_REMOTE"), h ? "no gpufuse NVML table" : dlerror());
    }
    pthread_mutex_unlock(&lock);
    return rtab ? NVML_SUCCESS : NVML_ERROR_LIBRARY_NOT_FOUND;
}

/* A fresh view of the session's vGPU; snap is big, so callers keep it off their stack. */
static nvmlReturn_t remote_snap(gf_rnvml *snap)
{
    if (!rinit) return NVML_ERROR_UNINITIALIZED;
    if (!rtab && remote_table() != NVML_SUCCESS) return NVML_ERROR_LIBRARY_NOT_FOUND;
    CUresult r = rtab->snapshot(snap);
    if (r == CUDA_SUCCESS) return NVML_SUCCESS;
    return r == CUDA_ERROR_DEVICE_UNAVAILABLE || r == CUDA_ERROR_NO_DEVICE
               ? NVML_ERROR_GPU_IS_LOST
               : NVML_ERROR_UNKNOWN;
}

static nvmlReturn_t remote_init(void)
{
    nvmlReturn_t r = remote_table();
    if (r != NVML_SUCCESS) return r;
    gf_rnvml *snap = malloc(sizeof *snap);
    if (!snap) return NVML_ERROR_MEMORY;
    atomic_fetch_add(&rinit, 1);
    r = remote_snap(snap);
    free(snap);
    if (r != NVML_SUCCESS) {
        atomic_fetch_sub(&rinit, 1);
        return r == NVML_ERROR_GPU_IS_LOST ? NVML_ERROR_DRIVER_NOT_LOADED : r;
    }
    return NVML_SUCCESS;
}

/* The device index of a handle this shim gave out, or -1. */
static int rindex_of(nvmlDevice_t d)
{
    for (int i = 0; i < GF_RNVML_MAX_DEVS; i++)
        if ((void *)d == (void *)&rdev_tokens[i]) return i;
    return -1;
}

/* Takes a snapshot and the device of handle d: *snap (free it) and *dev, or an error. */
static nvmlReturn_t remote_dev(nvmlDevice_t d, gf_rnvml **snap, gf_rnvml_dev **dev)
{
    int i = rindex_of(d);
    if (!rinit) return NVML_ERROR_UNINITIALIZED;
    if (i < 0) return NVML_ERROR_INVALID_ARGUMENT;
    gf_rnvml *s = malloc(sizeof *s);
    if (!s) return NVML_ERROR_MEMORY;
    nvmlReturn_t r = remote_snap(s);
    if (r == NVML_SUCCESS && (unsigned)i >= s->ndev) r = NVML_ERROR_GPU_IS_LOST;
    if (r != NVML_SUCCESS) {
        free(s);
        return r;
    }
    *snap = s;
    *dev = &s->dev[i];
    return NVML_SUCCESS;
}

static nvmlReturn_t copy_out(char *dst, unsigned int n, const char *src)
{
    if (!dst) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(src) + 1 > n) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(dst, src, strlen(src) + 1);
    return NVML_SUCCESS;
}

static nvmlReturn_t remote_count(unsigned int *n)
{
    if (!n) return NVML_ERROR_INVALID_ARGUMENT;
    gf_rnvml *s = malloc(sizeof *s);
    if (!s) return NVML_ERROR_MEMORY;
    nvmlReturn_t r = remote_snap(s);
    if (r == NVML_SUCCESS) *n = s->ndev;
    free(s);
    return r;
}

static nvmlReturn_t remote_handle(unsigned int index, nvmlDevice_t *d)
{
    unsigned n = 0;
    nvmlReturn_t r = remote_count(&n);
    if (r != NVML_SUCCESS) return r;
    if (!d || index >= n) return NVML_ERROR_INVALID_ARGUMENT;
    *d = (nvmlDevice_t)(void *)&rdev_tokens[index];
    return NVML_SUCCESS;
}

static nvmlReturn_t remote_procs(nvmlDevice_t d, unsigned *count, void *infos, size_t esz)
{
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    gf_rnvml *s;
    gf_rnvml_dev *v;
    nvmlReturn_t r = remote_dev(d, &s, &v);
    if (r != NVML_SUCCESS) return r;
    unsigned n = v->nprocs, have = *count;
    *count = n;
    if (n > have || (n && !infos)) {
        free(s);
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned i = 0; i < n; i++) {
        char *e = (char *)infos + i * esz;
        memset(e, 0, esz);
        memcpy(e, &v->pid[i], sizeof v->pid[i]);
        memcpy(e + 8, &v->pbytes[i], sizeof v->pbytes[i]);
        if (esz >= sizeof(nvmlProcessInfo_v2_t)) {
            unsigned none = 0xFFFFFFFFu;
            memcpy(e + 16, &none, 4);
            memcpy(e + 20, &none, 4);
        }
    }
    free(s);
    return NVML_SUCCESS;
}

/* One device field as a string: 0 name, 1 uuid, 2 pci bus id. */
static nvmlReturn_t remote_str(nvmlDevice_t d, int what, char *out, unsigned int n)
{
    gf_rnvml *s;
    gf_rnvml_dev *v;
    nvmlReturn_t r = remote_dev(d, &s, &v);
    if (r != NVML_SUCCESS) return r;
    r = copy_out(out, n, what == 0 ? v->name : what == 1 ? v->uuid : v->pci);
    free(s);
    return r;
}

/* ---- init: also finds the vGPU's GPU ------------------------------------------------------ */

static nvmlReturn_t (*real_fn(const char *name))()
{
    if (!loaded) load();
    return (nvmlReturn_t(*)())sym(name);
}

static nvmlReturn_t after_init(nvmlReturn_t r)
{
    if (r != NVML_SUCCESS || !remap_uuid[0]) return r;
    nvmlReturn_t (*by_uuid)() = real_fn("nvmlDeviceGetHandleByUUID");
    if (!by_uuid || by_uuid(remap_uuid, &remap_dev) != NVML_SUCCESS) {
        gf_log(GF_LOG_ERROR, LOG, "GPUFUSE_VGPU_UUID=%s: NVML has no such GPU", remap_uuid);
        remap_dev = NULL;
    }
    return r;
}

nvmlReturn_t nvmlInit_v2(void)
{
    if (is_remote()) return remote_init();
    nvmlReturn_t (*f)() = real_fn("nvmlInit_v2");
    return after_init(f ? f() : NVML_ERROR_LIBRARY_NOT_FOUND);
}

nvmlReturn_t nvmlInit(void)
{
    if (is_remote()) return remote_init();
    nvmlReturn_t (*f)() = real_fn("nvmlInit");
    return after_init(f ? f() : NVML_ERROR_LIBRARY_NOT_FOUND);
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    if (is_remote()) return remote_init();
    nvmlReturn_t (*f)() = real_fn("nvmlInitWithFlags");
    return after_init(f ? f(flags) : NVML_ERROR_LIBRARY_NOT_FOUND);
}

nvmlReturn_t nvmlShutdown(void)
{
    if (is_remote()) {
        int cur = atomic_load(&rinit);
        while (cur > 0 && !atomic_compare_exchange_weak(&rinit, &cur, cur - 1)) {
        }
        return cur > 0 ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
    }
    REAL(nvmlShutdown);
}

const char *nvmlErrorString(nvmlReturn_t result)
{
    if (is_remote()) {
        switch (result) { /* where gpufuse's remote NVML has more to say */
        case NVML_ERROR_NOT_SUPPORTED: return "Not Supported (by gpufuse's remote NVML)";
        case NVML_ERROR_LIBRARY_NOT_FOUND: return "gpufuse's client library not found";
        case NVML_ERROR_GPU_IS_LOST: return "GPU is lost (the remote worker is gone)";
        default: return gf_nvml_error_string(result);
        }
    }
    if (!loaded) load();
    const char *(*f)(nvmlReturn_t) = (const char *(*)(nvmlReturn_t))sym("nvmlErrorString");
    return f ? f(result) : "NVML library not found (set GPUFUSE_NVML)";
}

/* ---- the vGPU's device list ---------------------------------------------------------------- */

static nvmlReturn_t count_common(const char *name, unsigned int *n)
{
    if (is_remote()) return remote_count(n);
    nvmlReturn_t (*f)() = real_fn(name);
    if (!f) return NVML_ERROR_LIBRARY_NOT_FOUND;
    nvmlReturn_t r = f(n);
    if (r == NVML_SUCCESS && remap_uuid[0]) *n = remap_dev ? 1 : 0;
    return r;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n)
{
    return count_common("nvmlDeviceGetCount_v2", n);
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int *n)
{
    return count_common("nvmlDeviceGetCount", n);
}

static nvmlReturn_t handle_common(const char *name, unsigned int index, nvmlDevice_t *d)
{
    if (is_remote()) return remote_handle(index, d);
    nvmlReturn_t (*f)() = real_fn(name);
    if (!f) return NVML_ERROR_LIBRARY_NOT_FOUND;
    if (!remap_uuid[0]) return f(index, d);
    if (!d) return NVML_ERROR_INVALID_ARGUMENT;
    if (index != 0 || !remap_dev) return NVML_ERROR_INVALID_ARGUMENT;
    *d = remap_dev;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *d)
{
    return handle_common("nvmlDeviceGetHandleByIndex_v2", index, d);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *d)
{
    return handle_common("nvmlDeviceGetHandleByIndex", index, d);
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
    if (is_remote()) {
        int i = rindex_of(device);
        if (!rinit) return NVML_ERROR_UNINITIALIZED;
        if (i < 0 || !index) return NVML_ERROR_INVALID_ARGUMENT;
        *index = (unsigned)i;
        return NVML_SUCCESS;
    }
    nvmlReturn_t (*f)() = real_fn("nvmlDeviceGetIndex");
    if (!f) return NVML_ERROR_LIBRARY_NOT_FOUND;
    nvmlReturn_t r = f(device, index);
    if (r == NVML_SUCCESS && remap_uuid[0] && index) *index = 0;
    return r;
}

/* The limiter slot of an NVML device: 0 for the remapped GPU; the NVML index otherwise. */
static int slot_of(nvmlDevice_t d)
{
    if (!lim) return -1;
    if (remap_uuid[0]) return d == remap_dev ? 0 : -1;
    unsigned idx;
    nvmlReturn_t (*f)() = real_fn("nvmlDeviceGetIndex");
    if (!f || f(d, &idx) != NVML_SUCCESS || idx >= GF_LIMITER_MAX_DEVICES) return -1;
    return (int)idx;
}

/* ---- memory and processes: the vGPU's view ------------------------------------------------- */

static int vgpu_mem(nvmlDevice_t d, unsigned long long *total, unsigned long long *used)
{
    int slot = slot_of(d);
    if (slot < 0) return 0;
    uint64_t u, limit;
    gf_limiter_mem_info(lim, (unsigned)slot, &u, &limit);
    if (!limit) return 0;
    *total = limit;
    *used = u > limit ? limit : u;
    return 1;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *m)
{
    if (is_remote()) {
        gf_rnvml *s;
        gf_rnvml_dev *v;
        if (!m) return NVML_ERROR_INVALID_ARGUMENT;
        nvmlReturn_t r = remote_dev(device, &s, &v);
        if (r != NVML_SUCCESS) return r;
        m->total = v->total;
        m->used = v->used;
        m->free = v->total - v->used;
        free(s);
        return NVML_SUCCESS;
    }
    nvmlReturn_t (*f)() = real_fn("nvmlDeviceGetMemoryInfo");
    if (!f) return NVML_ERROR_LIBRARY_NOT_FOUND;
    nvmlReturn_t r = f(device, m);
    unsigned long long t, u;
    if (r == NVML_SUCCESS && m && vgpu_mem(device, &t, &u)) {
        m->total = t;
        m->used = u;
        m->free = t - u;
    }
    return r;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *m)
{
    if (is_remote()) {
        gf_rnvml *s;
        gf_rnvml_dev *v;
        if (!m) return NVML_ERROR_INVALID_ARGUMENT;
        if (m->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        nvmlReturn_t r = remote_dev(device, &s, &v);
        if (r != NVML_SUCCESS) return r;
        m->total = v->total;
        m->reserved = 0;
        m->used = v->used;
        m->free = v->total - v->used;
        free(s);
        return NVML_SUCCESS;
    }
    nvmlReturn_t (*f)() = real_fn("nvmlDeviceGetMemoryInfo_v2");
    if (!f) return NVML_ERROR_LIBRARY_NOT_FOUND;
    nvmlReturn_t r = f(device, m);
    unsigned long long t, u;
    if (r == NVML_SUCCESS && m && vgpu_mem(device, &t, &u)) {
        m->total = t;
        m->reserved = 0;
        m->used = u;
        m->free = t - u;
    }
    return r;
}

/* Fills the vGPU's processes; entries of size esz with pid at 0 and usedGpuMemory at 8. */
static nvmlReturn_t procs_common(const char *name, nvmlDevice_t d, unsigned *count, void *infos,
                                 size_t esz)
{
    if (is_remote()) return remote_procs(d, count, infos, esz);
    nvmlReturn_t (*f)() = real_fn(name);
    if (!f) return NVML_ERROR_LIBRARY_NOT_FOUND;
    int slot = slot_of(d);
    if (slot < 0) return f(d, count, infos);
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    pid_t pids[GF_LIMITER_MAX_PROCS];
    uint64_t bytes[GF_LIMITER_MAX_PROCS];
    unsigned n = gf_limiter_procs(lim, (unsigned)slot, pids, bytes, GF_LIMITER_MAX_PROCS);
    unsigned have = *count;
    *count = n;
    if (n > have || (n && !infos)) return n ? NVML_ERROR_INSUFFICIENT_SIZE : NVML_SUCCESS;
    for (unsigned i = 0; i < n; i++) {
        char *e = (char *)infos + i * esz;
        memset(e, 0, esz);
        unsigned pid = (unsigned)pids[i];
        unsigned long long b = bytes[i];
        memcpy(e, &pid, sizeof pid);
        memcpy(e + 8, &b, sizeof b);
        if (esz >= sizeof(nvmlProcessInfo_v2_t)) {
            unsigned none = 0xFFFFFFFFu;
            memcpy(e + 16, &none, 4);
            memcpy(e + 20, &none, 4);
        }
    }
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *count,
                                                     nvmlProcessInfo_t *infos)
{
    return procs_common("nvmlDeviceGetComputeRunningProcesses_v3", d, count, infos,
                        sizeof *infos);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t d, unsigned int *count,
                                                     nvmlProcessInfo_v2_t *infos)
{
    return procs_common("nvmlDeviceGetComputeRunningProcesses_v2", d, count, infos,
                        sizeof *infos);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t d, unsigned int *count,
                                                  nvmlProcessInfo_v1_t *infos)
{
    return procs_common("nvmlDeviceGetComputeRunningProcesses", d, count, infos, sizeof *infos);
}

/* ---- pass-through of the rest of gpufuse/nvml.h -------------------------------------------- */

nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned int n)
{
    if (is_remote()) {
        gf_rnvml *s = malloc(sizeof *s);
        if (!s) return NVML_ERROR_MEMORY;
        nvmlReturn_t r = remote_snap(s);
        if (r == NVML_SUCCESS) r = s->driver[0] ? copy_out(v, n, s->driver) : NVML_ERROR_NOT_SUPPORTED;
        free(s);
        return r;
    }
    REAL(nvmlSystemGetDriverVersion, v, n);
}
nvmlReturn_t nvmlSystemGetNVMLVersion(char *v, unsigned int n) { REAL(nvmlSystemGetNVMLVersion, v, n); }
static nvmlReturn_t remote_cuda_version(int *v)
{
    if (!v) return NVML_ERROR_INVALID_ARGUMENT;
    gf_rnvml *s = malloc(sizeof *s);
    if (!s) return NVML_ERROR_MEMORY;
    nvmlReturn_t r = remote_snap(s);
    if (r == NVML_SUCCESS) *v = s->cuda_version;
    free(s);
    return r;
}
nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v)
{
    if (is_remote()) return remote_cuda_version(v);
    REAL(nvmlSystemGetCudaDriverVersion, v);
}
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v)
{
    if (is_remote()) return remote_cuda_version(v);
    REAL(nvmlSystemGetCudaDriverVersion_v2, v);
}
nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *u, nvmlDevice_t *d)
{
    if (is_remote()) {
        if (!u || !d) return NVML_ERROR_INVALID_ARGUMENT;
        gf_rnvml *s = malloc(sizeof *s);
        if (!s) return NVML_ERROR_MEMORY;
        nvmlReturn_t r = remote_snap(s);
        if (r == NVML_SUCCESS) {
            r = NVML_ERROR_NOT_FOUND;
            for (unsigned i = 0; i < s->ndev; i++)
                if (!strcasecmp(s->dev[i].uuid, u)) {
                    *d = (nvmlDevice_t)(void *)&rdev_tokens[i];
                    r = NVML_SUCCESS;
                }
        }
        free(s);
        return r;
    }
    REAL(nvmlDeviceGetHandleByUUID, u, d);
}
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *s, unsigned int n)
{
    if (is_remote()) return remote_str(d, 0, s, n);
    REAL(nvmlDeviceGetName, d, s, n);
}
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *s, unsigned int n)
{
    if (is_remote()) return remote_str(d, 1, s, n);
    REAL(nvmlDeviceGetUUID, d, s, n);
}
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *p)
{
    if (is_remote()) {
        if (!p) return NVML_ERROR_INVALID_ARGUMENT;
        char bus[32];
        nvmlReturn_t r = remote_str(d, 2, bus, sizeof bus);
        if (r != NVML_SUCCESS) return r;
        memset(p, 0, sizeof *p);
        unsigned dom = 0, b = 0, dv = 0, fn = 0;
        sscanf(bus, "%x:%x:%x.%x", &dom, &b, &dv, &fn);
        p->domain = dom;
        p->bus = b;
        p->device = dv;
        p->pciDeviceId = 0x10DE;
        snprintf(p->busIdLegacy, sizeof p->busIdLegacy, "%04X:%02X:%02X.%X", dom & 0xffff,
                 b & 0xff, dv & 0xff, fn & 0xf);
        snprintf(p->busId, sizeof p->busId, "%08X:%02X:%02X.%X", dom, b & 0xff, dv & 0xff,
                 fn & 0xf);
        return NVML_SUCCESS;
    }
    REAL(nvmlDeviceGetPciInfo_v3, d, p);
}
nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int *a, int *b) { REAL(nvmlDeviceGetCudaComputeCapability, d, a, b); }
nvmlReturn_t nvmlDeviceGetMultiGpuBoard(nvmlDevice_t d, unsigned int *b) { REAL(nvmlDeviceGetMultiGpuBoard, d, b); }
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u)
{
    if (is_remote()) {
        gf_rnvml *s;
        gf_rnvml_dev *v;
        if (!u) return NVML_ERROR_INVALID_ARGUMENT;
        nvmlReturn_t r = remote_dev(d, &s, &v);
        if (r != NVML_SUCCESS) return r;
        r = (nvmlReturn_t)v->util_rc;
        if (r == NVML_SUCCESS) {
            u->gpu = v->util_gpu;
            u->memory = v->util_mem;
        }
        free(s);
        return r;
    }
    REAL(nvmlDeviceGetUtilizationRates, d, u);
}
nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t d, nvmlProcessUtilizationSample_t *u, unsigned int *n, unsigned long long t) { REAL(nvmlDeviceGetProcessUtilization, d, u, n, t); }
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, nvmlTemperatureSensors_t s, unsigned int *t) { REAL(nvmlDeviceGetTemperature, d, s, t); }
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *p) { REAL(nvmlDeviceGetPowerUsage, d, p); }
nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *p) { REAL(nvmlDeviceGetEnforcedPowerLimit, d, p); }
nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, nvmlClockType_t t, unsigned int *c) { REAL(nvmlDeviceGetClockInfo, d, t, c); }
nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t d, nvmlClockType_t t, unsigned int *c) { REAL(nvmlDeviceGetMaxClockInfo, d, t, c); }
