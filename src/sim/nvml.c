/* SPDX-License-Identifier: Apache-2.0 */
/* The sim's NVML (build/lib/sim/libnvidia-ml.so.1): answers the NVML calls gpufuse and common
 * tools make from the sim's shared state (simstate.h), so every process naming the same
 * GPUFUSE_SIM_STATE sees the same devices, memory, processes and utilization.
 *
 * Modeled values (docs/nvml-sim.md): memory is exact (what processes charged); GPU utilization
 * is the busy fraction of the last GPUFUSE_SIM_UTIL_WINDOW_MS; memory utilization, temperature
 * and power follow GPU utilization linearly; clocks are the model's maximum.
 * Only nvml* names are exported: the build hides everything else (-fvisibility=hidden), and the
 * pragma below gives the declarations of gpufuse/nvml.h default visibility.
 */
#define NVML_NO_UNVERSIONED_FUNC_DEFS 1
#pragma GCC visibility push(default)
#include "gpufuse/nvml.h"
#include "gpufuse/nvml_errors.h"
/* The original (unversioned) entry points, still exported by NVIDIA's library for old callers. */
nvmlReturn_t nvmlInit(void);
nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount);
nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int *infoCount,
                                                  nvmlProcessInfo_v1_t *infos);
#pragma GCC visibility pop

#include "gpufuse/log.h"
#include "simstate.h"

#include <pthread.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SIM_DRIVER_VERSION "580.65.06"
#define SIM_NVML_VERSION "13.580.65.06"
#define SIM_CUDA_VERSION 13000

#define IDLE_TEMP_C 32.0
#define MAX_TEMP_C 75.0
#define IDLE_POWER_FRACTION 0.10 /* of TDP: ~70 W on a 700 W H100 */
#define MEM_UTIL_FRACTION 0.40   /* memory busy per unit of GPU busy */

/* The layouts NVIDIA's library has on x86-64 and aarch64 Linux (LP64). */
_Static_assert(sizeof(nvmlMemory_t) == 24, "nvmlMemory_t ABI");
_Static_assert(sizeof(nvmlMemory_v2_t) == 40 && nvmlMemory_v2 == 0x02000028u, "nvmlMemory_v2 ABI");
_Static_assert(sizeof(nvmlProcessInfo_v1_t) == 16, "nvmlProcessInfo_v1_t ABI");
_Static_assert(sizeof(nvmlProcessInfo_t) == 24, "nvmlProcessInfo_t ABI");
_Static_assert(sizeof(nvmlProcessUtilizationSample_t) == 32, "nvmlProcessUtilizationSample_t ABI");
_Static_assert(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t ABI");
_Static_assert(sizeof(nvmlUtilization_t) == 8, "nvmlUtilization_t ABI");
_Static_assert(sizeof(nvmlReturn_t) == 4, "nvmlReturn_t ABI");

struct nvmlDevice_st {
    unsigned index;
};

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int refs;
static gf_simstate *ss;
static unsigned ndev;
static struct nvmlDevice_st devices[GF_SIM_MAX_DEVICES];

/* ---- init ---------------------------------------------------------------------------------- */

static nvmlReturn_t init_common(unsigned int flags)
{
    nvmlReturn_t rc = NVML_SUCCESS;
    pthread_mutex_lock(&init_lock);
    if (!ss) {
        char err[512];
        if (gf_simstate_open(&ss, err, sizeof err) != 0) {
            ss = NULL;
            if (!(flags & NVML_INIT_FLAG_NO_GPUS)) {
                gf_log(GF_LOG_ERROR, "nvml-sim", "%s", err);
                rc = NVML_ERROR_DRIVER_NOT_LOADED;
                goto out;
            }
            gf_log(GF_LOG_WARN, "nvml-sim", "%s (continuing without GPUs)", err);
        }
        ndev = ss ? gf_simstate_device_count(ss) : 0;
        for (unsigned i = 0; i < ndev; i++) devices[i].index = i;
    }
    atomic_fetch_add(&refs, 1);
out:
    pthread_mutex_unlock(&init_lock);
    return rc;
}

nvmlReturn_t nvmlInit_v2(void)
{
    return init_common(0);
}

nvmlReturn_t nvmlInit(void)
{
    return init_common(0);
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    return init_common(flags);
}

nvmlReturn_t nvmlShutdown(void)
{
    /* The shared state stays mapped: it lives as long as the process (simstate.h). */
    int cur = atomic_load(&refs);
    while (cur > 0 && !atomic_compare_exchange_weak(&refs, &cur, cur - 1)) {
    }
    return cur > 0 ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
}

const char *nvmlErrorString(nvmlReturn_t result)
{
    return gf_nvml_error_string(result);
}

/* ---- helpers ------------------------------------------------------------------------------- */

static int initialized(void)
{
    return atomic_load(&refs) > 0;
}

/* Checks init and the handle; fills the device's index. */
static nvmlReturn_t dev_index(nvmlDevice_t h, unsigned *idx)
{
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    for (unsigned i = 0; i < ndev; i++)
        if (h == &devices[i]) {
            *idx = i;
            return NVML_SUCCESS;
        }
    return NVML_ERROR_INVALID_ARGUMENT;
}

#define DEVICE_OR_RETURN(h, idx, info)                                                        \
    unsigned idx;                                                                             \
    do {                                                                                      \
        nvmlReturn_t rc_ = dev_index((h), &idx);                                              \
        if (rc_ != NVML_SUCCESS) return rc_;                                                  \
    } while (0);                                                                              \
    const gf_sim_device_info *info = gf_simstate_device(ss, idx)

static nvmlReturn_t copy_str(char *dst, unsigned int len, const char *src)
{
    if (!dst) return NVML_ERROR_INVALID_ARGUMENT;
    size_t n = strlen(src);
    if (len < n + 1) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(dst, src, n + 1);
    return NVML_SUCCESS;
}

static void uuid_string(const gf_sim_device_info *d, char *buf, size_t len)
{
    const uint8_t *u = d->uuid;
    snprintf(buf, len,
             "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
             u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
}

static double utilization(unsigned idx)
{
    return gf_simstate_utilization(ss, idx, gf_simstate_util_window_ns());
}

static unsigned percent(double fraction)
{
    double p = fraction * 100.0 + 0.5;
    return p < 0 ? 0 : p > 100 ? 100 : (unsigned)p;
}

/* CLOCK_MONOTONIC ns -> CLOCK_REALTIME us, NVML's timestamp unit. The offset between the two
 * clocks is measured once per process, so that the same kernel end always maps to the same
 * timestamp and a caller's lastSeenTimeStamp filters it out exactly. */
static unsigned long long mono_to_realtime_us(uint64_t mono_ns)
{
    static _Atomic long long offset_ns; /* realtime - monotonic; 0: not measured yet */
    long long off = atomic_load(&offset_ns);
    if (off == 0) {
        uint64_t best_gap = UINT64_MAX;
        for (int i = 0; i < 3; i++) { /* keep the reading least disturbed by preemption */
            struct timespec rt;
            uint64_t a = gf_sim_now_ns();
            clock_gettime(CLOCK_REALTIME, &rt);
            uint64_t b = gf_sim_now_ns();
            long long rt_ns = (long long)rt.tv_sec * 1000000000ll + rt.tv_nsec;
            if (b - a < best_gap) {
                best_gap = b - a;
                off = rt_ns - (long long)(a + (b - a) / 2);
            }
        }
        if (off == 0) off = 1;
        long long expected = 0;
        if (!atomic_compare_exchange_strong(&offset_ns, &expected, off)) off = expected;
    }
    long long rt_ns = (long long)mono_ns + off;
    return rt_ns > 0 ? (unsigned long long)rt_ns / 1000ull : 0;
}

/* ---- system -------------------------------------------------------------------------------- */

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    return copy_str(version, length, SIM_DRIVER_VERSION);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    /* Like NVIDIA's, answers before nvmlInit too. */
    return copy_str(version, length, SIM_NVML_VERSION);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion)
{
    if (!cudaDriverVersion) return NVML_ERROR_INVALID_ARGUMENT;
    *cudaDriverVersion = SIM_CUDA_VERSION;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion)
{
    return nvmlSystemGetCudaDriverVersion(cudaDriverVersion);
}

/* ---- enumeration and identity -------------------------------------------------------------- */

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount)
{
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    if (!deviceCount) return NVML_ERROR_INVALID_ARGUMENT;
    *deviceCount = ndev;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount)
{
    return nvmlDeviceGetCount_v2(deviceCount);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    if (!device || index >= ndev) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &devices[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device)
{
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    if (!uuid || !device) return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned i = 0; i < ndev; i++) {
        char buf[NVML_DEVICE_UUID_BUFFER_SIZE];
        uuid_string(gf_simstate_device(ss, i), buf, sizeof buf);
        if (!strcasecmp(buf, uuid)) {
            *device = &devices[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
    DEVICE_OR_RETURN(device, idx, info);
    (void)info;
    if (!index) return NVML_ERROR_INVALID_ARGUMENT;
    *index = idx;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
    DEVICE_OR_RETURN(device, idx, info);
    return copy_str(name, length, info->name);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    DEVICE_OR_RETURN(device, idx, info);
    char buf[NVML_DEVICE_UUID_BUFFER_SIZE];
    uuid_string(info, buf, sizeof buf);
    return copy_str(uuid, length, buf);
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    DEVICE_OR_RETURN(device, idx, info);
    if (!pci) return NVML_ERROR_INVALID_ARGUMENT;
    memset(pci, 0, sizeof *pci);
    pci->domain = 0;
    pci->bus = info->pci_bus & 0xff;
    pci->device = 0;
    pci->pciDeviceId = 0x10DE; /* NVIDIA's vendor id; no device id: the sim is no real part */
    pci->pciSubSystemId = 0;
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.0", pci->domain,
             pci->bus, pci->device);
    snprintf(pci->busId, sizeof pci->busId, "%08X:%02X:%02X.0", pci->domain, pci->bus,
             pci->device);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor)
{
    DEVICE_OR_RETURN(device, idx, info);
    if (!major || !minor) return NVML_ERROR_INVALID_ARGUMENT;
    *major = (int)info->cc_major;
    *minor = (int)info->cc_minor;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMultiGpuBoard(nvmlDevice_t device, unsigned int *multiGpuBool)
{
    DEVICE_OR_RETURN(device, idx, info);
    (void)info;
    if (!multiGpuBool) return NVML_ERROR_INVALID_ARGUMENT;
    *multiGpuBool = 0;
    return NVML_SUCCESS;
}

/* ---- memory -------------------------------------------------------------------------------- */

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    DEVICE_OR_RETURN(device, idx, info);
    (void)info;
    if (!memory) return NVML_ERROR_INVALID_ARGUMENT;
    uint64_t free_b, total_b;
    gf_simstate_mem_info(ss, idx, &free_b, &total_b);
    memory->total = total_b;
    memory->free = free_b;
    memory->used = total_b - free_b;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    DEVICE_OR_RETURN(device, idx, info);
    (void)info;
    if (!memory) return NVML_ERROR_INVALID_ARGUMENT;
    if (memory->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    uint64_t free_b, total_b;
    gf_simstate_mem_info(ss, idx, &free_b, &total_b);
    memory->total = total_b;
    memory->reserved = 0; /* the sim's driver sets nothing aside */
    memory->free = free_b;
    memory->used = total_b - free_b;
    return NVML_SUCCESS;
}

/* ---- processes ----------------------------------------------------------------------------- */

/* Fills procs (of size GF_SIM_MAX_PROCS) with dev's processes; returns how many. */
static unsigned list_processes(unsigned idx, gf_sim_proc_usage *procs)
{
    unsigned n = gf_simstate_processes(ss, idx, gf_simstate_util_window_ns(), procs,
                                       GF_SIM_MAX_PROCS);
    return n < GF_SIM_MAX_PROCS ? n : GF_SIM_MAX_PROCS;
}

/* The count protocol shared by every version: returns NVML_SUCCESS when the caller's buffer
 * holds all n entries, else sets *infoCount and says why not. */
static nvmlReturn_t check_count(unsigned int *infoCount, const void *infos, unsigned n)
{
    if (!infoCount) return NVML_ERROR_INVALID_ARGUMENT;
    if (*infoCount < n) {
        *infoCount = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    if (n > 0 && !infos) return NVML_ERROR_INVALID_ARGUMENT;
    *infoCount = n;
    return NVML_SUCCESS;
}

/* The compute processes of a device into the caller's records: nvmlProcessInfo_t (v2 and v3
 * share it) when v3, else the original nvmlProcessInfo_v1_t, which lacks the instance ids. */
static nvmlReturn_t running_processes(nvmlDevice_t device, unsigned int *infoCount, void *infos,
                                      int v3)
{
    DEVICE_OR_RETURN(device, idx, info);
    (void)info;
    gf_sim_proc_usage procs[GF_SIM_MAX_PROCS];
    unsigned n = list_processes(idx, procs);
    nvmlReturn_t rc = check_count(infoCount, infos, n);
    if (rc != NVML_SUCCESS) return rc;
    for (unsigned i = 0; i < n; i++) {
        unsigned pid = (unsigned)procs[i].pid;
        if (v3)
            ((nvmlProcessInfo_t *)infos)[i] = (nvmlProcessInfo_t){
                .pid = pid, .usedGpuMemory = procs[i].used_bytes,
                .gpuInstanceId = 0xFFFFFFFFu, .computeInstanceId = 0xFFFFFFFFu};
        else
            ((nvmlProcessInfo_v1_t *)infos)[i] = (nvmlProcessInfo_v1_t){
                .pid = pid, .usedGpuMemory = procs[i].used_bytes};
    }
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                     nvmlProcessInfo_t *infos)
{
    return running_processes(device, infoCount, infos, 1);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int *infoCount,
                                                     nvmlProcessInfo_v2_t *infos)
{
    return running_processes(device, infoCount, infos, 1);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int *infoCount,
                                                  nvmlProcessInfo_v1_t *infos)
{
    return running_processes(device, infoCount, infos, 0);
}

/* ---- utilization, thermals, power, clocks -------------------------------------------------- */

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization_)
{
    DEVICE_OR_RETURN(device, idx, info);
    (void)info;
    if (!utilization_) return NVML_ERROR_INVALID_ARGUMENT;
    double u = utilization(idx);
    utilization_->gpu = percent(u);
    utilization_->memory = percent(u * MEM_UTIL_FRACTION);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                             nvmlProcessUtilizationSample_t *utilization_,
                                             unsigned int *processSamplesCount,
                                             unsigned long long lastSeenTimeStamp)
{
    DEVICE_OR_RETURN(device, idx, info);
    (void)info;
    if (!processSamplesCount) return NVML_ERROR_INVALID_ARGUMENT;
    uint64_t window = gf_simstate_util_window_ns();
    gf_sim_proc_usage procs[GF_SIM_MAX_PROCS];
    unsigned n = list_processes(idx, procs), m = 0;
    /* Keep the processes that ran kernels after lastSeenTimeStamp, compacting in place. */
    unsigned long long stamps[GF_SIM_MAX_PROCS];
    for (unsigned i = 0; i < n; i++) {
        if (!procs[i].busy_ns_window) continue;
        unsigned long long ts = mono_to_realtime_us(procs[i].last_busy_ns);
        if (ts <= lastSeenTimeStamp) continue;
        stamps[m] = ts;
        procs[m++] = procs[i];
    }
    if (!utilization_) {
        *processSamplesCount = m;
        return m ? NVML_ERROR_INSUFFICIENT_SIZE : NVML_ERROR_NOT_FOUND;
    }
    if (m == 0) {
        *processSamplesCount = 0;
        return NVML_ERROR_NOT_FOUND;
    }
    if (*processSamplesCount < m) {
        *processSamplesCount = m;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned i = 0; i < m; i++) {
        double sm = (double)procs[i].busy_ns_window / (double)window;
        utilization_[i].pid = (unsigned)procs[i].pid;
        utilization_[i].timeStamp = stamps[i];
        utilization_[i].smUtil = percent(sm);
        utilization_[i].memUtil = percent(sm * MEM_UTIL_FRACTION);
        utilization_[i].encUtil = 0;
        utilization_[i].decUtil = 0;
    }
    *processSamplesCount = m;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensorType,
                                      unsigned int *temp)
{
    DEVICE_OR_RETURN(device, idx, info);
    (void)info;
    if (!temp || sensorType != NVML_TEMPERATURE_GPU) return NVML_ERROR_INVALID_ARGUMENT;
    double t = IDLE_TEMP_C + (MAX_TEMP_C - IDLE_TEMP_C) * utilization(idx);
    *temp = (unsigned)(t + 0.5);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power)
{
    DEVICE_OR_RETURN(device, idx, info);
    if (!power) return NVML_ERROR_INVALID_ARGUMENT;
    double tdp = (double)info->power_limit_mw;
    double idle = tdp * IDLE_POWER_FRACTION;
    *power = (unsigned)(idle + (tdp - idle) * utilization(idx) + 0.5);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit)
{
    DEVICE_OR_RETURN(device, idx, info);
    if (!limit) return NVML_ERROR_INVALID_ARGUMENT;
    *limit = info->power_limit_mw;
    return NVML_SUCCESS;
}

static nvmlReturn_t clock_of(const gf_sim_device_info *info, nvmlClockType_t type,
                             unsigned int *clock)
{
    if (!clock) return NVML_ERROR_INVALID_ARGUMENT;
    switch (type) {
    case NVML_CLOCK_GRAPHICS:
    case NVML_CLOCK_SM:
    case NVML_CLOCK_VIDEO:
        *clock = info->clock_khz / 1000u;
        return NVML_SUCCESS;
    case NVML_CLOCK_MEM:
        *clock = info->mem_clock_khz / 1000u;
        return NVML_SUCCESS;
    default:
        return NVML_ERROR_INVALID_ARGUMENT;
    }
}

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type,
                                    unsigned int *clock)
{
    DEVICE_OR_RETURN(device, idx, info);
    return clock_of(info, type, clock);
}

nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, nvmlClockType_t type,
                                       unsigned int *clock)
{
    DEVICE_OR_RETURN(device, idx, info);
    return clock_of(info, type, clock);
}
