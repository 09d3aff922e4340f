/* SPDX-License-Identifier: Apache-2.0 */
/* cuGetProcAddress's lookup: (base name, CUDA version, flags) -> the exported driver symbol,
 * answered from the table tools/gen_cuda_api.py generates from cudaTypedefs.h. No cuda.h needed. */
#ifndef GPUFUSE_CUDA_PROCADDR_H
#define GPUFUSE_CUDA_PROCADDR_H

/* Results of gf_cuda_procaddr_resolve; the numbers match CUdriverProcAddressQueryResult. */
enum gf_cuda_procaddr_result {
    GF_PROCADDR_FOUND = 0,                  /* CU_GET_PROC_ADDRESS_SUCCESS */
    GF_PROCADDR_SYMBOL_NOT_FOUND = 1,       /* CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND */
    GF_PROCADDR_VERSION_NOT_SUFFICIENT = 2, /* CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT */
};

/* The flag bits of cuGetProcAddress (CUdriverProcAddress_flags). */
#define GF_PROCADDR_FLAG_LEGACY_STREAM 1ULL            /* CU_GET_PROC_ADDRESS_LEGACY_STREAM */
#define GF_PROCADDR_FLAG_PER_THREAD_DEFAULT_STREAM 2ULL /* ..._PER_THREAD_DEFAULT_STREAM */

/*
 * Finds the driver symbol that cuGetProcAddress(name, .., cuda_version, flags) stands for.
 *
 * name is the base name ("cuMemAlloc", never "cuMemAlloc_v2"); cuda_version is 1000 * major +
 * 10 * minor, the ABI the caller was built against. The answer is the row of name with the
 * greatest version <= cuda_version: cuMemAlloc at 2000 is "cuMemAlloc" (unsigned int sizes), at
 * 3020 and later "cuMemAlloc_v2"; cuCtxSynchronize at 12000 is "cuCtxSynchronize", at 13000
 * "cuCtxSynchronize_v2".
 *
 * flags: with GF_PROCADDR_FLAG_PER_THREAD_DEFAULT_STREAM set, the _ptds/_ptsz variant of that same
 * ABI is returned when one exists at cuda_version (cuMemcpyHtoD at 12000 ->
 * "cuMemcpyHtoD_v2_ptds", cuLaunchKernel -> "cuLaunchKernel_ptsz"), else the plain symbol (most
 * functions take no stream). 0 (CU_GET_PROC_ADDRESS_DEFAULT) and LEGACY_STREAM give the
 * legacy-stream symbol: the driver never sees how its caller was compiled (cuda.h's per-thread
 * build turns 0 into PER_THREAD_DEFAULT_STREAM itself). Other bits are ignored here; validating
 * flags, and refusing a cuda_version newer than the driver (CUDA_ERROR_INVALID_VALUE), is the
 * caller's job.
 *
 * On GF_PROCADDR_FOUND, *symbol_out points at a static string (never freed); otherwise it is set
 * to NULL. symbol_out may be NULL. Returns GF_PROCADDR_SYMBOL_NOT_FOUND for a name the table does
 * not know (or NULL), GF_PROCADDR_VERSION_NOT_SUFFICIENT when name exists but every row is newer
 * than cuda_version (cuLibraryLoadData at 11000). Thread-safe; does not allocate.
 */
int gf_cuda_procaddr_resolve(const char *name, int cuda_version, unsigned long long flags,
                             const char **symbol_out);

#endif
