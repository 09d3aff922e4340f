/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the sim's PTX parser: any bytes must load or fail cleanly, without
 * crashes, leaks or unbounded work, and a loaded module must answer every query. */
#include "sim/ptx.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gf_ptx_module *m = NULL;
    char err[256];
    if (gf_ptx_module_load((const char *)data, size, &m, err, sizeof err) != GF_PTX_OK)
        return 0;
    for (unsigned i = 0; i < gf_ptx_module_kernel_count(m); i++) {
        const gf_ptx_kernel *k = gf_ptx_module_kernel(m, i);
        (void)gf_ptx_module_find_kernel(m, gf_ptx_kernel_name(k));
        for (unsigned j = 0; j < gf_ptx_kernel_param_count(k); j++)
            (void)gf_ptx_kernel_param(k, j);
        (void)gf_ptx_kernel_params_size(k);
        (void)gf_ptx_kernel_static_shared(k);
        (void)gf_ptx_kernel_local_bytes(k);
    }
    for (unsigned i = 0; i < gf_ptx_module_global_count(m); i++)
        gf_ptx_module_bind_global(m, i, 0x1000u * (i + 1));
    gf_ptx_module_free(m);
    return 0;
}
