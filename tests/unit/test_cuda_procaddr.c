/* SPDX-License-Identifier: Apache-2.0 */
/* gf_cuda_procaddr_resolve against answers read off cuda.h/cudaTypedefs.h (CUDA 13.0), and the
 * generated table's own invariants. */
#include "gpufuse/cuda_procaddr.h"

#include "cuda_procaddr.h" /* generated table, for the invariant checks */
#include "test.h"

#define PTDS GF_PROCADDR_FLAG_PER_THREAD_DEFAULT_STREAM
#define LEGACY GF_PROCADDR_FLAG_LEGACY_STREAM

/* Resolves and asserts a found symbol. */
#define ASSERT_RESOLVES(name, ver, flags, want)                                              \
    do {                                                                                     \
        const char *got_ = "(unset)";                                                        \
        ASSERT_EQ_INT(gf_cuda_procaddr_resolve((name), (ver), (flags), &got_),               \
                      GF_PROCADDR_FOUND);                                                    \
        ASSERT_EQ_STR(got_, (want));                                                         \
    } while (0)

TEST(procaddr_version_picks_abi)
{
    ASSERT_RESOLVES("cuCtxSynchronize", 12000, 0, "cuCtxSynchronize");
    ASSERT_RESOLVES("cuCtxSynchronize", 13000, 0, "cuCtxSynchronize_v2");
    ASSERT_RESOLVES("cuMemAlloc", 2000, 0, "cuMemAlloc");
    ASSERT_RESOLVES("cuMemAlloc", 3010, 0, "cuMemAlloc");
    ASSERT_RESOLVES("cuMemAlloc", 3020, 0, "cuMemAlloc_v2");
    ASSERT_RESOLVES("cuMemAlloc", 13000, 0, "cuMemAlloc_v2");
    ASSERT_RESOLVES("cuCtxCreate", 11040, 0, "cuCtxCreate_v3");
    ASSERT_RESOLVES("cuCtxCreate", 12050, 0, "cuCtxCreate_v4");
    ASSERT_RESOLVES("cuGetProcAddress", 11030, 0, "cuGetProcAddress");
    ASSERT_RESOLVES("cuGetProcAddress", 12000, 0, "cuGetProcAddress_v2");
    ASSERT_RESOLVES("cuLibraryLoadData", 12000, 0, "cuLibraryLoadData");
    ASSERT_RESOLVES("cuKernelGetFunction", 13000, 0, "cuKernelGetFunction");
    ASSERT_RESOLVES("cuGetExportTable", 13000, 0, "cuGetExportTable");
    /* cuda.h's `#define cuGraphInstantiate cuGraphInstantiateWithFlags` is a source alias only. */
    ASSERT_RESOLVES("cuGraphInstantiate", 12000, 0, "cuGraphInstantiate_v2");
}

TEST(procaddr_per_thread_stream)
{
    ASSERT_RESOLVES("cuMemcpyHtoD", 12000, PTDS, "cuMemcpyHtoD_v2_ptds");
    ASSERT_RESOLVES("cuMemcpyHtoD", 12000, 0, "cuMemcpyHtoD_v2");
    ASSERT_RESOLVES("cuMemcpyHtoD", 12000, LEGACY, "cuMemcpyHtoD_v2");
    ASSERT_RESOLVES("cuLaunchKernel", 12000, PTDS, "cuLaunchKernel_ptsz");
    ASSERT_RESOLVES("cuLaunchKernel", 12000, 0, "cuLaunchKernel");
    ASSERT_RESOLVES("cuMemsetD8Async", 12000, PTDS, "cuMemsetD8Async_ptsz");
    /* Per-thread streams arrived in 7.0: older requests get the legacy symbol. */
    ASSERT_RESOLVES("cuMemcpyHtoD", 6050, PTDS, "cuMemcpyHtoD_v2");
    /* Several ABIs each with their own _ptsz twin. */
    ASSERT_RESOLVES("cuStreamGetCaptureInfo", 11030, PTDS, "cuStreamGetCaptureInfo_v2_ptsz");
    ASSERT_RESOLVES("cuStreamGetCaptureInfo", 12030, PTDS, "cuStreamGetCaptureInfo_v3_ptsz");
    ASSERT_RESOLVES("cuStreamBeginCapture", 10000, PTDS, "cuStreamBeginCapture_ptsz");
    ASSERT_RESOLVES("cuStreamBeginCapture", 13000, PTDS, "cuStreamBeginCapture_v2_ptsz");
    /* No stream, no per-thread variant: the flag falls back to the plain symbol. */
    ASSERT_RESOLVES("cuCtxSynchronize", 13000, PTDS, "cuCtxSynchronize_v2");
    ASSERT_RESOLVES("cuMemAlloc", 13000, PTDS, "cuMemAlloc_v2");
}

TEST(procaddr_not_found)
{
    const char *sym = "(unset)";
    ASSERT_EQ_INT(gf_cuda_procaddr_resolve("cuNoSuchThing", 13000, 0, &sym),
                  GF_PROCADDR_SYMBOL_NOT_FOUND);
    ASSERT_TRUE(sym == NULL);
    /* Versioned symbols are not base names. */
    ASSERT_EQ_INT(gf_cuda_procaddr_resolve("cuMemAlloc_v2", 13000, 0, &sym),
                  GF_PROCADDR_SYMBOL_NOT_FOUND);
    ASSERT_EQ_INT(gf_cuda_procaddr_resolve("", 13000, 0, &sym), GF_PROCADDR_SYMBOL_NOT_FOUND);
    ASSERT_EQ_INT(gf_cuda_procaddr_resolve(NULL, 13000, 0, &sym), GF_PROCADDR_SYMBOL_NOT_FOUND);
    /* Names sorting before the first row and after the last one. */
    ASSERT_EQ_INT(gf_cuda_procaddr_resolve("a", 13000, 0, NULL), GF_PROCADDR_SYMBOL_NOT_FOUND);
    ASSERT_EQ_INT(gf_cuda_procaddr_resolve("zz", 13000, 0, NULL), GF_PROCADDR_SYMBOL_NOT_FOUND);
}

TEST(procaddr_version_not_sufficient)
{
    const char *sym = "(unset)";
    ASSERT_EQ_INT(gf_cuda_procaddr_resolve("cuLibraryLoadData", 11000, 0, &sym),
                  GF_PROCADDR_VERSION_NOT_SUFFICIENT);
    ASSERT_TRUE(sym == NULL);
    ASSERT_EQ_INT(gf_cuda_procaddr_resolve("cuMemAlloc", 1000, PTDS, &sym),
                  GF_PROCADDR_VERSION_NOT_SUFFICIENT);
    ASSERT_EQ_INT(gf_cuda_procaddr_resolve("cuGetProcAddress", 11020, 0, NULL),
                  GF_PROCADDR_VERSION_NOT_SUFFICIENT);
}

/* The binary search relies on the order; every row must be reachable at its own version. */
TEST(procaddr_table_sorted_and_reachable)
{
    ASSERT_TRUE(gf_cuda_procaddr_count > 500);
    for (unsigned i = 0; i < gf_cuda_procaddr_count; i++) {
        const struct gf_cuda_procaddr *r = &gf_cuda_procaddr_table[i];
        if (i > 0) {
            const struct gf_cuda_procaddr *p = &gf_cuda_procaddr_table[i - 1];
            int c = strcmp(p->name, r->name);
            ASSERT_MSG(c < 0 || (c == 0 && (p->version < r->version ||
                                            (p->version == r->version &&
                                             p->stream_flavor < r->stream_flavor))),
                       "row %u (%s v%d) is out of order after %s v%d", i, r->name, r->version,
                       p->name, p->version);
        }
        if (r->stream_flavor != GF_PROC_NONE) continue;
        const char *sym = NULL;
        ASSERT_EQ_INT(gf_cuda_procaddr_resolve(r->name, r->version, 0, &sym), GF_PROCADDR_FOUND);
        ASSERT_EQ_STR(sym, r->symbol);
    }
}
