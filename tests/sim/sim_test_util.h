/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers the sim's driver tests (tests/sim/test_*.c) share: a current context, and the kernels
 * of tests/kernels read, loaded as modules and looked up. Header-only (static inline), so each
 * test program stays one source file; every helper ends the test with a message on failure. */
#ifndef GF_SIM_TEST_UTIL_H
#define GF_SIM_TEST_UTIL_H

#include <cuda.h>

#include "test.h"

/* cuInit, then device 0's primary context, retained and made current. */
static inline CUcontext sim_setup(void)
{
    CUcontext ctx;
    CUdevice dev;
    CHECK_CU(cuInit(0));
    CHECK_CU(cuDeviceGet(&dev, 0));
    CHECK_CU(cuDevicePrimaryCtxRetain(&ctx, dev));
    CHECK_CU(cuCtxSetCurrent(ctx));
    return ctx;
}

/* tests/kernels/<file> (PTX text, a fatbin, a cubin), NUL-terminated and malloc'ed; the caller
 * frees it. *len (when len is not NULL) gets its size without the NUL. */
static inline char *sim_kernel_file(const char *file, size_t *len)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/kernels/%s", file);
    char *s = gf_test_read_file(gf_test_path(rel), len);
    ASSERT_MSG(s != NULL, "cannot read %s (set GPUFUSE_TEST_DIR to the repo root)", rel);
    return s;
}

/* tests/kernels/<file> loaded into the current context with cuModuleLoadData. */
static inline CUmodule sim_load(const char *file)
{
    char *image = sim_kernel_file(file, NULL);
    CUmodule m;
    CHECK_CU(cuModuleLoadData(&m, image));
    free(image);
    return m;
}

/* Kernel name of module m. */
static inline CUfunction sim_func(CUmodule m, const char *name)
{
    CUfunction f;
    CHECK_CU(cuModuleGetFunction(&f, m, name));
    return f;
}

/* tests/kernels/vector_add.ptx's vector_add(a, b, c, n), loaded into the current context. */
static inline CUfunction sim_vector_add(void)
{
    return sim_func(sim_load("vector_add.ptx"), "vector_add");
}

#endif
