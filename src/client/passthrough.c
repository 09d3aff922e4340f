/* SPDX-License-Identifier: Apache-2.0 */
/* The whole driver API surface, generated from cuda_api.h (tools/gen_cuda_api.py): a weak
 * pass-through per function that calls the real driver. The wrappers gpufuse limits are strong
 * definitions in the other files of this library and win at link time. Also the table of our
 * own entry points that cuGetProcAddress hands out. */
#include "client.h"

#include <stddef.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

/* Called when the real driver has no such function (older than our cuda.h) or none was found. */
__attribute__((noinline, cold)) static CUresult missing(const char *sym)
{
    if (!gf_g.driver_ok) {
        GF_LOG_ONCE(GF_LOG_ERROR, GF_CLIENT_LOG,
                    "%s: no real CUDA driver is loaded (see the error above; set GPUFUSE_DRIVER)",
                    sym);
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    gf_log(GF_LOG_DEBUG, GF_CLIENT_LOG, "%s: the real driver (%s) does not have it", sym,
           gf_g.driver_path);
    return CUDA_ERROR_NOT_SUPPORTED;
}

#define GF_CUDA_FN(sym, ret, params, args)                                                    \
    __attribute__((weak)) GF_EXPORT ret sym params                                            \
    {                                                                                         \
        gf_ensure();                                                                          \
        gf_pfn_##sym gf_fn_ = gf_real.sym;                                                    \
        if (__builtin_expect(!gf_fn_, 0)) return missing(#sym);                              \
        return gf_fn_ args;                                                                   \
    }
#include "cuda_api.h"

/* Our entry point for each exported name, in cuda_api.h order (sorted by gf_procaddr_own). */
struct gf_own_fn {
    const char *name;
    void *fn;
    size_t real_off; /* offset of the name's pointer in gf_real */
};

struct gf_own_fn gf_own_fns[] = {
#define GF_CUDA_FN(sym, ret, params, args) {#sym, (void *)sym, offsetof(gf_real_table, sym)},
#include "cuda_api.h"
};
const unsigned gf_own_fn_count = sizeof gf_own_fns / sizeof gf_own_fns[0];
