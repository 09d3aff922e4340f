/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's view of the GPUs: NVML loaded with dlopen (the real driver's or the sim's), so
 * that gpufuse runs, and says why, on machines without NVIDIA's driver. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "client/findlib.h"
#include "gpufuse/gpu_models.h"
#include "gpufuse/log.h"
#include "gpufuse/nvml.h"

struct gf_agent_nvml {
    void *lib;
    char path[4096];
    __typeof__(&nvmlInit_v2) init;
    __typeof__(&nvmlShutdown) shutdown;
    __typeof__(&nvmlErrorString) error_string;
    __typeof__(&nvmlDeviceGetCount_v2) count;
    __typeof__(&nvmlDeviceGetHandleByIndex_v2) handle;
    __typeof__(&nvmlDeviceGetName) name;
    __typeof__(&nvmlDeviceGetUUID) uuid;
    __typeof__(&nvmlDeviceGetMemoryInfo) memory;
    __typeof__(&nvmlDeviceGetUtilizationRates) utilization;
    __typeof__(&nvmlDeviceGetTemperature) temperature;
    __typeof__(&nvmlDeviceGetPowerUsage) power;
};

static const char *nvml_err(gf_agent_nvml *nv, nvmlReturn_t r)
{
    return nv->error_string ? nv->error_string(r) : "NVML error";
}

gf_status gf_agent_nvml_open(gf_agent_nvml **out, gf_agent_gpu *gpus, unsigned max,
                             unsigned *n, char *err, size_t errlen)
{
    gf_agent_nvml *nv = calloc(1, sizeof *nv);
    if (!nv) return GF_ENOMEM;
    nv->lib = gf_findlib_load("GPUFUSE_NVML", "libnvidia-ml.so.1", "gpufuse_client_marker",
                              RTLD_NOW | RTLD_LOCAL, nv->path, sizeof nv->path, err, errlen);
    if (!nv->lib) {
        free(nv);
        return GF_ENOENT;
    }
#define SYM(field, name)                                                                         \
    do {                                                                                         \
        *(void **)&nv->field = dlsym(nv->lib, name);                                             \
        if (!nv->field) {                                                                        \
            snprintf(err, errlen, "%s: no symbol %s; is it NVIDIA's libnvidia-ml.so.1?",         \
                     nv->path, name);                                                            \
            goto fail;                                                                           \
        }                                                                                        \
    } while (0)
    SYM(init, "nvmlInit_v2");
    SYM(shutdown, "nvmlShutdown");
    SYM(error_string, "nvmlErrorString");
    SYM(count, "nvmlDeviceGetCount_v2");
    SYM(handle, "nvmlDeviceGetHandleByIndex_v2");
    SYM(name, "nvmlDeviceGetName");
    SYM(uuid, "nvmlDeviceGetUUID");
    SYM(memory, "nvmlDeviceGetMemoryInfo");
    SYM(utilization, "nvmlDeviceGetUtilizationRates");
    SYM(temperature, "nvmlDeviceGetTemperature");
    SYM(power, "nvmlDeviceGetPowerUsage");
#undef SYM
    nvmlReturn_t r = nv->init();
    if (r != NVML_SUCCESS) {
        snprintf(err, errlen, "%s: nvmlInit failed: %s", nv->path, nvml_err(nv, r));
        goto fail;
    }
    unsigned count = 0;
    if ((r = nv->count(&count)) != NVML_SUCCESS) {
        snprintf(err, errlen, "%s: nvmlDeviceGetCount failed: %s", nv->path, nvml_err(nv, r));
        nv->shutdown();
        goto fail;
    }
    if (count > max) count = max;
    unsigned got = 0;
    for (unsigned i = 0; i < count; i++) {
        nvmlDevice_t d;
        gf_agent_gpu *g = &gpus[got];
        memset(g, 0, sizeof *g);
        nvmlMemory_t mem;
        if (nv->handle(i, &d) != NVML_SUCCESS || nv->uuid(d, g->uuid, sizeof g->uuid) ||
            nv->name(d, g->name, sizeof g->name) || nv->memory(d, &mem)) {
            gf_log(GF_LOG_WARN, "agent", "GPU %u: NVML could not describe it; skipped", i);
            continue;
        }
        g->index = i;
        g->vram_total = mem.total;
        const gf_gpu_model *m = gf_gpu_model_find(g->name);
        g->tflops = m ? m->fp16_tflops : 0;
        if (!m)
            gf_log(GF_LOG_WARN, "agent", "GPU %u \"%s\" is not in the GPU model table; the "
                   "server will refuse it until data/gpu_models.csv lists it", i, g->name);
        g->temperature_c = -1;
        g->power_mw = -1;
        got++;
    }
    *n = got;
    *out = nv;
    gf_log(GF_LOG_INFO, "agent", "NVML %s: %u GPU(s)", nv->path, got);
    return GF_OK;
fail:
    dlclose(nv->lib);
    free(nv);
    return GF_EIO;
}

void gf_agent_nvml_sample(gf_agent_nvml *nv, gf_agent_gpu *gpus, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        gf_agent_gpu *g = &gpus[i];
        nvmlDevice_t d;
        if (nv->handle(g->index, &d) != NVML_SUCCESS) continue;
        nvmlMemory_t mem;
        if (nv->memory(d, &mem) == NVML_SUCCESS) g->vram_used = mem.used;
        nvmlUtilization_t u;
        if (nv->utilization(d, &u) == NVML_SUCCESS) g->utilization = u.gpu;
        unsigned t, p;
        g->temperature_c = nv->temperature(d, NVML_TEMPERATURE_GPU, &t) == NVML_SUCCESS ? (int)t : -1;
        g->power_mw = nv->power(d, &p) == NVML_SUCCESS ? (int64_t)p : -1;
    }
}

void gf_agent_nvml_close(gf_agent_nvml *nv)
{
    if (!nv) return;
    nv->shutdown();
    /* Not dlclose'd: a driver library may keep state past nvmlShutdown (the sim does), and
     * unmapping it would turn that state into a leak report; the process is ending anyway. */
    free(nv);
}
