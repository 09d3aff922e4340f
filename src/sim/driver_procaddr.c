/* SPDX-License-Identifier: Apache-2.0 */
/* cuGetProcAddress for the sim: (name, CUDA version, flags) -> the exported symbol of that ABI
 * (from the generated table, gf_cuda_procaddr_resolve), then dlsym on this very library, so
 * that libcudart and frameworks reach every function the sim has, including the stubs that
 * answer CUDA_ERROR_NOT_SUPPORTED. Works before cuInit, as cudart needs it to find cuInit. */
#define __CUDA_API_VERSION_INTERNAL 1
#include "driver.h"

#include <dlfcn.h>

#include "gpufuse/cuda_procaddr.h"

static pthread_once_t g_self_once = PTHREAD_ONCE_INIT;
static void *g_self;

static void find_self(void)
{
    Dl_info info;
    if (dladdr((void *)&find_self, &info) && info.dli_fname)
        g_self = dlopen(info.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
    if (!g_self)
        gf_log(GF_LOG_ERROR, GF_SIM_LOG, "cuGetProcAddress: cannot open the sim's own library: %s", dlerror());
}

static CUresult get_proc(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                         CUdriverProcAddressQueryResult *status)
{
    if (status) *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    if (!symbol || !pfn) return CUDA_ERROR_INVALID_VALUE;
    *pfn = NULL;
    if (flags & ~(cuuint64_t)(CU_GET_PROC_ADDRESS_LEGACY_STREAM | CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM))
        return CUDA_ERROR_INVALID_VALUE;
    if (cudaVersion <= 0 || cudaVersion > CUDA_VERSION) return CUDA_ERROR_INVALID_VALUE;
    const char *name = NULL;
    int r = gf_cuda_procaddr_resolve(symbol, cudaVersion, flags, &name);
    if (r == GF_PROCADDR_VERSION_NOT_SUFFICIENT) {
        if (status) *status = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
        return CUDA_ERROR_NOT_FOUND;
    }
    if (r != GF_PROCADDR_FOUND || !name) return CUDA_ERROR_NOT_FOUND;
    pthread_once(&g_self_once, find_self);
    void *f = g_self ? dlsym(g_self, name) : NULL;
    if (!f) {
        gf_log(GF_LOG_DEBUG, GF_SIM_LOG, "cuGetProcAddress: %s (%s) is not exported", symbol, name);
        return CUDA_ERROR_NOT_FOUND;
    }
    *pfn = f;
    if (status) *status = CU_GET_PROC_ADDRESS_SUCCESS;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                                        CUdriverProcAddressQueryResult *symbolStatus)
{
    return get_proc(symbol, pfn, cudaVersion, flags, symbolStatus);
}

GF_SIM_API CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
    return get_proc(symbol, pfn, cudaVersion, flags, NULL);
}
