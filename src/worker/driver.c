/* SPDX-License-Identifier: Apache-2.0 */
/* The worker's real driver: found as the client library finds it (GPUFUSE_DRIVER, else the usual
 * driver locations, never a gpufuse library), every entry point resolved into gf_wk_drv. */
#include "worker.h"

#include <dlfcn.h>
#include <stdio.h>

#include "gpufuse/log.h"

#include "client/findlib.h"

gf_wk_driver gf_wk_drv;

gf_status gf_wk_driver_load(char *path, size_t pathlen, char *err, size_t errlen)
{
    char why[1024];
    void *h = gf_findlib_load("GPUFUSE_DRIVER", "libcuda.so.1", "gpufuse_client_marker",
                              RTLD_NOW | RTLD_LOCAL, path, pathlen, why, sizeof why);
    if (!h) {
        snprintf(err, errlen, "%s", why);
        return GF_ENOENT;
    }
#define GF_CUDA_FN(sym, ret, params, args) gf_wk_drv.sym = (gf_wk_pfn_##sym)dlsym(h, #sym);
#include "cuda_api.h"
    if (!gf_wk_drv.cuInit || !gf_wk_drv.cuCtxCreate_v2 || !gf_wk_drv.cuMemAlloc_v2 ||
        !gf_wk_drv.cuLaunchKernel) {
        snprintf(err, errlen, "%s: not a CUDA driver (cuInit, cuCtxCreate_v2, cuMemAlloc_v2 or "
                              "cuLaunchKernel missing); point GPUFUSE_DRIVER at libcuda.so.1",
                 path);
        return GF_EINVAL;
    }
    CUresult r = gf_wk_drv.cuInit(0);
    if (r != CUDA_SUCCESS) {
        const char *n = "?";
        if (gf_wk_drv.cuGetErrorName) gf_wk_drv.cuGetErrorName(r, &n);
        snprintf(err, errlen, "%s: cuInit failed with %s; check the GPU and its driver", path, n);
        return GF_EIO;
    }
    return GF_OK;
}

gf_wk_nvml gf_wk_nv = {.rc = 12};

void gf_wk_nvml_load(void)
{
    static int tried;
    if (tried) return;
    tried = 1;
    char why[1024];
    void *h = gf_findlib_load("GPUFUSE_NVML", "libnvidia-ml.so.1", "gpufuse_nvml_marker",
                              RTLD_NOW | RTLD_LOCAL, gf_wk_nv.path, sizeof gf_wk_nv.path, why,
                              sizeof why);
    if (!h) {
        gf_log(GF_LOG_INFO, GF_WK_LOG, "no NVML (%s): NVML queries of remote clients get CUDA's "
                                       "answers and no utilization", why);
        return;
    }
    /* NVML's ABI: nvmlReturn_t is an int, nvmlDevice_t a pointer, nvmlUtilization_t two
     * unsigned ints (include/gpufuse/nvml.h). */
    gf_wk_nv.init = (int (*)(void))dlsym(h, "nvmlInit_v2");
    gf_wk_nv.by_uuid = (int (*)(const char *, void **))dlsym(h, "nvmlDeviceGetHandleByUUID");
    gf_wk_nv.util = (int (*)(void *, unsigned int *))dlsym(h, "nvmlDeviceGetUtilizationRates");
    gf_wk_nv.driver_version = (int (*)(char *, unsigned int))dlsym(h, "nvmlSystemGetDriverVersion");
    if (!gf_wk_nv.init || !gf_wk_nv.by_uuid) {
        gf_log(GF_LOG_WARN, GF_WK_LOG, "%s: not NVML (nvmlInit_v2 missing); set GPUFUSE_NVML",
               gf_wk_nv.path);
        gf_wk_nv.rc = 13;
        return;
    }
    gf_wk_nv.rc = gf_wk_nv.init();
    if (gf_wk_nv.rc)
        gf_log(GF_LOG_WARN, GF_WK_LOG, "%s: nvmlInit_v2 failed (%d); NVML queries get CUDA's "
                                       "answers", gf_wk_nv.path, gf_wk_nv.rc);
}
