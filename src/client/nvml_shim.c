/* SPDX-License-Identifier: Apache-2.0 */
/* The NVML shim (build/lib/libnvidia-ml.so.1): NVML as a vGPU's processes should see it. The
 * vGPU's GPU is the only device, its memory total is the vGPU's limit and used is what the
 * vGPU's processes hold, and the running processes are the vGPU's. Everything else it exports
 * is passed to the real NVML (GPUFUSE_NVML or the usual driver locations). */
#define NVML_NO_UNVERSIONED_FUNC_DEFS 1
#pragma GCC visibility push(default)
#include "gpufuse/nvml.h"
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
        if (u) snprintf(remap_uuid, sizeof remap_uuid, "%s", u);
        loaded = 1;
    }
    pthread_mutex_unlock(&lock);
}

#define REAL(name, ...)                                                                       \
    do {                                                                                      \
        if (!loaded) load();                                                                  \
        static void *fn_;                                                                     \
        if (!fn_) fn_ = sym(#name);                                                           \
        if (!fn_) return real ? NVML_ERROR_FUNCTION_NOT_FOUND : NVML_ERROR_LIBRARY_NOT_FOUND;  \
        return ((nvmlReturn_t(*)())fn_)(__VA_ARGS__);                                         \
    } while (0)

#define PASS0(name)                                                                           \
    nvmlReturn_t name(void) { REAL(name); }

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
    nvmlReturn_t (*f)() = real_fn("nvmlInit_v2");
    return after_init(f ? f() : NVML_ERROR_LIBRARY_NOT_FOUND);
}

nvmlReturn_t nvmlInit(void)
{
    nvmlReturn_t (*f)() = real_fn("nvmlInit");
    return after_init(f ? f() : NVML_ERROR_LIBRARY_NOT_FOUND);
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    nvmlReturn_t (*f)() = real_fn("nvmlInitWithFlags");
    return after_init(f ? f(flags) : NVML_ERROR_LIBRARY_NOT_FOUND);
}

PASS0(nvmlShutdown)

const char *nvmlErrorString(nvmlReturn_t result)
{
    if (!loaded) load();
    const char *(*f)(nvmlReturn_t) = (const char *(*)(nvmlReturn_t))sym("nvmlErrorString");
    return f ? f(result) : "NVML library not found (set GPUFUSE_NVML)";
}

/* ---- the vGPU's device list ---------------------------------------------------------------- */

static nvmlReturn_t count_common(const char *name, unsigned int *n)
{
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

nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned int n) { REAL(nvmlSystemGetDriverVersion, v, n); }
nvmlReturn_t nvmlSystemGetNVMLVersion(char *v, unsigned int n) { REAL(nvmlSystemGetNVMLVersion, v, n); }
nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) { REAL(nvmlSystemGetCudaDriverVersion, v); }
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) { REAL(nvmlSystemGetCudaDriverVersion_v2, v); }
nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *u, nvmlDevice_t *d) { REAL(nvmlDeviceGetHandleByUUID, u, d); }
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *s, unsigned int n) { REAL(nvmlDeviceGetName, d, s, n); }
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *s, unsigned int n) { REAL(nvmlDeviceGetUUID, d, s, n); }
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *p) { REAL(nvmlDeviceGetPciInfo_v3, d, p); }
nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int *a, int *b) { REAL(nvmlDeviceGetCudaComputeCapability, d, a, b); }
nvmlReturn_t nvmlDeviceGetMultiGpuBoard(nvmlDevice_t d, unsigned int *b) { REAL(nvmlDeviceGetMultiGpuBoard, d, b); }
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u) { REAL(nvmlDeviceGetUtilizationRates, d, u); }
nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t d, nvmlProcessUtilizationSample_t *u, unsigned int *n, unsigned long long t) { REAL(nvmlDeviceGetProcessUtilization, d, u, n, t); }
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, nvmlTemperatureSensors_t s, unsigned int *t) { REAL(nvmlDeviceGetTemperature, d, s, t); }
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *p) { REAL(nvmlDeviceGetPowerUsage, d, p); }
nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *p) { REAL(nvmlDeviceGetEnforcedPowerLimit, d, p); }
nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, nvmlClockType_t t, unsigned int *c) { REAL(nvmlDeviceGetClockInfo, d, t, c); }
nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t d, nvmlClockType_t t, unsigned int *c) { REAL(nvmlDeviceGetMaxClockInfo, d, t, c); }
