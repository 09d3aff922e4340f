/* SPDX-License-Identifier: Apache-2.0 */
/* How programs find the sim's driver functions: cuGetProcAddress in both ABIs (CUDA 12's with a
 * query result, CUDA 11.3's without), with the version selecting the ABI and the per-thread flag
 * selecting _ptds/_ptsz, and dlopen("libcuda.so.1") + dlsym as NVIDIA's runtime does it. Calls
 * go through the returned pointers. */
#include <cuda.h>
#include <dlfcn.h>
#include <stdint.h>

#include "test.h"

typedef CUresult (*get_proc_v2_fn)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);
typedef CUresult (*get_proc_v1_fn)(const char *, void **, int, cuuint64_t);

static get_proc_v2_fn g_gp2;
static get_proc_v1_fn g_gp1;

static void open_driver(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    ASSERT_MSG(h != NULL, "dlopen(libcuda.so.1): %s", dlerror());
    g_gp2 = (get_proc_v2_fn)dlsym(h, "cuGetProcAddress_v2");
    g_gp1 = (get_proc_v1_fn)dlsym(h, "cuGetProcAddress");
    ASSERT_TRUE(g_gp2 != NULL && g_gp1 != NULL);
    ASSERT_TRUE((void *)g_gp2 == (void *)&cuGetProcAddress_v2); /* the library we linked */
}

static void *lookup(const char *name, int version, cuuint64_t flags)
{
    void *fn = NULL;
    CUdriverProcAddressQueryResult st = (CUdriverProcAddressQueryResult)-1;
    CUresult rc = g_gp2(name, &fn, version, flags, &st);
    ASSERT_MSG(rc == CUDA_SUCCESS && st == CU_GET_PROC_ADDRESS_SUCCESS && fn,
               "cuGetProcAddress(%s, %d, %llu): rc %d status %d", name, version,
               (unsigned long long)flags, (int)rc, (int)st);
    return fn;
}

static void *sym(const char *exported)
{
    void *f = dlsym(RTLD_DEFAULT, exported);
    ASSERT_MSG(f != NULL, "%s is not exported", exported);
    return f;
}

TEST(versions_and_flags_select_the_abi)
{
    open_driver();
    static const struct {
        const char *name;
        int version;
        cuuint64_t flags;
        const char *exported;
    } rows[] = {
        {"cuInit", 2000, 0, "cuInit"},
        {"cuDriverGetVersion", 13000, 0, "cuDriverGetVersion"},
        {"cuMemAlloc", 13000, 0, "cuMemAlloc_v2"},
        {"cuMemAlloc", 3020, 0, "cuMemAlloc_v2"},
        {"cuMemAlloc", 3000, 0, "cuMemAlloc"},
        {"cuMemFree", 12000, 0, "cuMemFree_v2"},
        {"cuCtxCreate", 12000, 0, "cuCtxCreate_v3"},
        {"cuCtxCreate", 13000, 0, "cuCtxCreate_v4"},
        {"cuCtxSynchronize", 12000, 0, "cuCtxSynchronize"},
        {"cuCtxSynchronize", 13000, 0, "cuCtxSynchronize_v2"},
        {"cuDeviceGetUuid", 11040, 0, "cuDeviceGetUuid_v2"},
        {"cuDeviceTotalMem", 12000, 0, "cuDeviceTotalMem_v2"},
        {"cuMemcpyHtoD", 12000, 0, "cuMemcpyHtoD_v2"},
        {"cuMemcpyHtoD", 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, "cuMemcpyHtoD_v2_ptds"},
        {"cuMemcpyHtoDAsync", 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, "cuMemcpyHtoDAsync_v2_ptsz"},
        {"cuLaunchKernel", 13000, 0, "cuLaunchKernel"},
        {"cuLaunchKernel", 13000, CU_GET_PROC_ADDRESS_LEGACY_STREAM, "cuLaunchKernel"},
        {"cuLaunchKernel", 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, "cuLaunchKernel_ptsz"},
        {"cuStreamQuery", 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, "cuStreamQuery_ptsz"},
        {"cuEventRecord", 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, "cuEventRecord_ptsz"},
        {"cuStreamDestroy", 13000, 0, "cuStreamDestroy_v2"},
        {"cuEventElapsedTime", 13000, 0, "cuEventElapsedTime_v2"},
        {"cuModuleGetGlobal", 13000, 0, "cuModuleGetGlobal_v2"},
        {"cuLibraryLoadData", 12000, 0, "cuLibraryLoadData"},
        {"cuGetProcAddress", 13000, 0, "cuGetProcAddress_v2"},
        {"cuDevicePrimaryCtxRelease", 13000, 0, "cuDevicePrimaryCtxRelease_v2"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        void *got = lookup(rows[i].name, rows[i].version, rows[i].flags);
        ASSERT_MSG(got == sym(rows[i].exported), "%s at %d flags %llu is not %s", rows[i].name,
                   rows[i].version, (unsigned long long)rows[i].flags, rows[i].exported);
    }
}

TEST(lookup_errors)
{
    open_driver();
    void *fn = (void *)1;
    CUdriverProcAddressQueryResult st;
    ASSERT_CU(g_gp2("cuNoSuchFunction", &fn, 13000, 0, &st), CUDA_ERROR_NOT_FOUND);
    ASSERT_EQ_INT(st, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    ASSERT_TRUE(fn == NULL);
    ASSERT_CU(g_gp2("cuLibraryLoadData", &fn, 11000, 0, &st), CUDA_ERROR_NOT_FOUND);
    ASSERT_EQ_INT(st, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
    ASSERT_CU(g_gp2(NULL, &fn, 13000, 0, &st), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(g_gp2("cuInit", NULL, 13000, 0, &st), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(g_gp2("cuInit", &fn, 13000, 4, &st), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(g_gp2("cuInit", &fn, 13000, 0, NULL), CUDA_SUCCESS); /* the status is optional */
    ASSERT_CU(g_gp1("cuNoSuchFunction", &fn, 13000, 0), CUDA_ERROR_NOT_FOUND);
    ASSERT_CU(g_gp1("cuInit", &fn, 11030, 0), CUDA_SUCCESS);
    ASSERT_TRUE(fn == sym("cuInit"));
}

TEST(calls_through_the_returned_pointers)
{
    open_driver();
    CUresult (*init)(unsigned) = lookup("cuInit", 13000, 0);
    CUresult (*count)(int *) = lookup("cuDeviceGetCount", 13000, 0);
    CUresult (*retain)(CUcontext *, CUdevice) = lookup("cuDevicePrimaryCtxRetain", 13000, 0);
    CUresult (*set)(CUcontext) = lookup("cuCtxSetCurrent", 13000, 0);
    CUresult (*alloc)(CUdeviceptr *, size_t) = lookup("cuMemAlloc", 13000, 0);
    CUresult (*htod)(CUdeviceptr, const void *, size_t) =
        lookup("cuMemcpyHtoD", 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
    CUresult (*dtoh)(void *, CUdeviceptr, size_t) = lookup("cuMemcpyDtoH", 13000, 0);
    CUresult (*load)(CUmodule *, const void *) = lookup("cuModuleLoadData", 13000, 0);
    CUresult (*getfn)(CUfunction *, CUmodule, const char *) = lookup("cuModuleGetFunction", 13000, 0);
    CUresult (*launch)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                       CUstream, void **, void **) =
        lookup("cuLaunchKernel", 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
    CUresult (*sync2)(CUcontext) = lookup("cuCtxSynchronize", 13000, 0);
    CUresult (*name)(CUresult, const char **) = lookup("cuGetErrorName", 13000, 0);
    CUresult (*array)(CUarray *, const CUDA_ARRAY_DESCRIPTOR *) = lookup("cuArrayCreate", 13000, 0);

    CHECK_CU(init(0));
    int n;
    CHECK_CU(count(&n));
    ASSERT_TRUE(n >= 1);
    CUcontext ctx;
    CHECK_CU(retain(&ctx, 0));
    CHECK_CU(set(ctx));
    char *ptx = gf_test_read_file(gf_test_path("tests/kernels/vector_add.ptx"), NULL);
    ASSERT_TRUE(ptx != NULL);
    CUmodule m;
    CHECK_CU(load(&m, ptx));
    free(ptx);
    CUfunction f;
    CHECK_CU(getfn(&f, m, "vector_add"));
    int len = 300;
    float a[300], c[300];
    for (int i = 0; i < len; i++) a[i] = (float)i;
    CUdeviceptr da, dc;
    CHECK_CU(alloc(&da, sizeof a));
    CHECK_CU(alloc(&dc, sizeof c));
    CHECK_CU(htod(da, a, sizeof a));
    void *args[] = {&da, &da, &dc, &len};
    CHECK_CU(launch(f, 2, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
    CHECK_CU(sync2(ctx));
    CHECK_CU(dtoh(c, dc, sizeof c));
    for (int i = 0; i < len; i++) ASSERT_NEAR(c[i], 2.0 * i, 0);
    const char *s;
    CHECK_CU(name(CUDA_ERROR_INVALID_PTX, &s));
    ASSERT_EQ_STR(s, "CUDA_ERROR_INVALID_PTX");
    /* a function the sim only has as a stub resolves, and says so when called */
    CUarray arr;
    CUDA_ARRAY_DESCRIPTOR d = {4, 4, CU_AD_FORMAT_FLOAT, 1};
    ASSERT_CU(array(&arr, &d), CUDA_ERROR_NOT_SUPPORTED);
}

/* What NVIDIA's libcudart does at startup: look up a few hundred names at its own version. */
TEST(a_runtime_style_bulk_lookup)
{
    open_driver();
    static const char *const names[] = {
        "cuInit", "cuDriverGetVersion", "cuDeviceGet", "cuDeviceGetCount", "cuDeviceGetName",
        "cuDeviceGetUuid", "cuDeviceTotalMem", "cuDeviceGetAttribute", "cuDevicePrimaryCtxRetain",
        "cuDevicePrimaryCtxRelease", "cuDevicePrimaryCtxGetState", "cuCtxGetCurrent", "cuCtxSetCurrent",
        "cuCtxPushCurrent", "cuCtxPopCurrent", "cuCtxGetDevice", "cuCtxSynchronize", "cuMemAlloc",
        "cuMemFree", "cuMemAllocHost", "cuMemFreeHost", "cuMemHostAlloc", "cuMemGetInfo",
        "cuMemcpy", "cuMemcpyAsync", "cuMemcpyHtoD", "cuMemcpyDtoH", "cuMemsetD8", "cuMemsetD32Async",
        "cuStreamCreate", "cuStreamCreateWithPriority", "cuStreamDestroy", "cuStreamSynchronize",
        "cuStreamQuery", "cuStreamWaitEvent", "cuEventCreate", "cuEventRecord", "cuEventQuery",
        "cuEventSynchronize", "cuEventElapsedTime", "cuEventDestroy", "cuLibraryLoadData",
        "cuLibraryGetKernel", "cuLibraryUnload", "cuKernelGetFunction", "cuKernelGetAttribute",
        "cuLaunchKernel", "cuLaunchKernelEx", "cuLaunchHostFunc", "cuFuncGetAttribute",
        "cuOccupancyMaxActiveBlocksPerMultiprocessor", "cuPointerGetAttributes", "cuMemAllocAsync",
        "cuMemFreeAsync", "cuMemPoolGetAttribute", "cuGetErrorString", "cuGetErrorName",
        "cuGraphCreate", "cuGetExportTable",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        lookup(names[i], 13000, 0);
        lookup(names[i], 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
    }
}
