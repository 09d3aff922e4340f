/* SPDX-License-Identifier: Apache-2.0 */
/* A CUDA driver API program the client tests run under gpufuse run / the client library.
 * Built twice: cuprobe (linked -lcuda) and cuprobe_nolink (reaches the driver only through
 * dlopen("libcuda.so.1") + dlsym, or through cuGetProcAddress_v2 alone).
 *
 *   cuprobe[_nolink] [link|dlopen|procaddr] MODE ARGS
 *   MODE: meminfo | fill CHUNK_MIB | hold MIB | paths | vecadd | spin KERNEL_US WINDOW_MS SYNC
 * Prints key=value lines the tests parse. */
#include <cuda.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "read_file.h"

#define FNS(X)                                                                                \
    X(cuInit, cuInit, "cuInit")                                                               \
    X(cuDeviceGet, cuDeviceGet, "cuDeviceGet")                                                \
    X(cuDeviceGetCount, cuDeviceGetCount, "cuDeviceGetCount")                                 \
    X(cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")          \
    X(cuCtxSetCurrent, cuCtxSetCurrent, "cuCtxSetCurrent")                                    \
    X(cuCtxSynchronize, cuCtxSynchronize, "cuCtxSynchronize")                                 \
    X(cuMemGetInfo, cuMemGetInfo_v2, "cuMemGetInfo")                                          \
    X(cuDeviceTotalMem, cuDeviceTotalMem_v2, "cuDeviceTotalMem")                              \
    X(cuMemAlloc, cuMemAlloc_v2, "cuMemAlloc")                                                \
    X(cuMemFree, cuMemFree_v2, "cuMemFree")                                                   \
    X(cuMemcpyHtoD, cuMemcpyHtoD_v2, "cuMemcpyHtoD")                                          \
    X(cuMemcpyDtoH, cuMemcpyDtoH_v2, "cuMemcpyDtoH")                                          \
    X(cuModuleLoadData, cuModuleLoadData, "cuModuleLoadData")                                 \
    X(cuModuleGetFunction, cuModuleGetFunction, "cuModuleGetFunction")                        \
    X(cuModuleUnload, cuModuleUnload, "cuModuleUnload")                                       \
    X(cuLaunchKernel, cuLaunchKernel, "cuLaunchKernel")                                       \
    X(cuGetErrorName, cuGetErrorName, "cuGetErrorName")                                       \
    X(cuMemAllocPitch, cuMemAllocPitch_v2, "cuMemAllocPitch")                                 \
    X(cuMemAllocManaged, cuMemAllocManaged, "cuMemAllocManaged")                              \
    X(cuMemAllocAsync, cuMemAllocAsync, "cuMemAllocAsync")                                    \
    X(cuMemFreeAsync, cuMemFreeAsync, "cuMemFreeAsync")                                       \
    X(cuMemAllocFromPoolAsync, cuMemAllocFromPoolAsync, "cuMemAllocFromPoolAsync")            \
    X(cuDeviceGetDefaultMemPool, cuDeviceGetDefaultMemPool, "cuDeviceGetDefaultMemPool")      \
    X(cuStreamSynchronize, cuStreamSynchronize, "cuStreamSynchronize")                        \
    X(cuMemCreate, cuMemCreate, "cuMemCreate")                                                \
    X(cuMemRelease, cuMemRelease, "cuMemRelease")                                             \
    X(cuMemAddressReserve, cuMemAddressReserve, "cuMemAddressReserve")                        \
    X(cuMemAddressFree, cuMemAddressFree, "cuMemAddressFree")                                 \
    X(cuMemMap, cuMemMap, "cuMemMap")                                                         \
    X(cuMemUnmap, cuMemUnmap, "cuMemUnmap")                                                   \
    X(cuArrayCreate, cuArrayCreate_v2, "cuArrayCreate")                                       \
    X(cuArray3DCreate, cuArray3DCreate_v2, "cuArray3DCreate")                                 \
    X(cuArrayDestroy, cuArrayDestroy, "cuArrayDestroy")                                       \
    X(cuMipmappedArrayCreate, cuMipmappedArrayCreate, "cuMipmappedArrayCreate")               \
    X(cuMipmappedArrayDestroy, cuMipmappedArrayDestroy, "cuMipmappedArrayDestroy")

static struct {
#define X(field, sym, base) __typeof__(&sym) field;
    FNS(X)
#undef X
} cu;

static const char *ename(CUresult r)
{
    const char *n = NULL;
    if (cu.cuGetErrorName) cu.cuGetErrorName(r, &n);
    return n ? n : "?";
}

static int load(const char *how)
{
    if (!strcmp(how, "link")) {
#ifdef CUPROBE_NOLINK
        fprintf(stderr, "this build is not linked with -lcuda\n");
        return -1;
#else
#define X(field, sym, base) cu.field = &sym;
        FNS(X)
#undef X
        return 0;
#endif
    }
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen libcuda.so.1: %s\n", dlerror());
        return -1;
    }
    if (!strcmp(how, "dlopen")) {
#define X(field, sym, base) *(void **)&cu.field = dlsym(h, #sym);
        FNS(X)
#undef X
    } else {
        CUresult (*gpa)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);
        *(void **)&gpa = dlsym(h, "cuGetProcAddress_v2");
        if (!gpa) return -1;
#define X(field, sym, base) gpa(base, (void **)&cu.field, 13000, 0, NULL);
        FNS(X)
#undef X
    }
    printf("loaded=%s cuInit=%p\n", how, (void *)cu.cuInit);
    return 0;
}

#define CK(call)                                                                              \
    do {                                                                                      \
        CUresult r_ = (call);                                                                 \
        if (r_ != CUDA_SUCCESS) {                                                             \
            printf("error=%s at=%s\n", ename(r_), #call);                                    \
            return 1;                                                                         \
        }                                                                                     \
    } while (0)

static CUdevice dev;

static int setup(void)
{
    CUcontext ctx;
    CK(cu.cuInit(0));
    CK(cu.cuDeviceGet(&dev, 0));
    CK(cu.cuDevicePrimaryCtxRetain(&ctx, dev));
    CK(cu.cuCtxSetCurrent(ctx));
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *kernel_path(const char *name)
{
    static char p[4096];
    const char *dir = getenv("GPUFUSE_TEST_DIR");
    snprintf(p, sizeof p, "%s/tests/kernels/%s", dir ? dir : ".", name);
    return p;
}

/* Each path: one allocation over the limit fails with OOM; one within it works and its free
 * gives everything back (checked through cuMemGetInfo). */
static int paths(void)
{
    size_t f0, t, f1;
    CK(cu.cuMemGetInfo(&f0, &t));
    size_t big = t + (1 << 20), small = 64 << 20;
    CUdeviceptr p;
    size_t pitch;
    CUstream s = NULL;
    int fails = 0, unsupported = 0;
#define EXPECT(call, want)                                                                    \
    do {                                                                                      \
        CUresult r_ = (call);                                                                 \
        printf("%s %s -> %s\n", r_ == (want) ? "ok" : "BAD", #call, ename(r_));              \
        fails += r_ != (want);                                                                \
    } while (0)
/* The sim has no arrays: the over-limit refusal is still checked, the small one is skipped. */
#define EXPECT_OR_UNSUPPORTED(call, want)                                                     \
    do {                                                                                      \
        CUresult r_ = (call);                                                                 \
        if (r_ == CUDA_ERROR_NOT_SUPPORTED) {                                                 \
            printf("skip %s -> %s (the driver lacks it)\n", #call, ename(r_));                \
            unsupported = 1;                                                                  \
            break;                                                                            \
        }                                                                                     \
        printf("%s %s -> %s\n", r_ == (want) ? "ok" : "BAD", #call, ename(r_));              \
        fails += r_ != (want);                                                                \
    } while (0)
#define BACK()                                                                                \
    do {                                                                                      \
        cu.cuMemGetInfo(&f1, &t);                                                             \
        printf("%s free back to %zu (was %zu)\n", f1 == f0 ? "ok" : "BAD", f1, f0);          \
        fails += f1 != f0;                                                                    \
    } while (0)
    EXPECT(cu.cuMemAlloc(&p, big), CUDA_ERROR_OUT_OF_MEMORY);
    EXPECT(cu.cuMemAlloc(&p, small), CUDA_SUCCESS);
    EXPECT(cu.cuMemFree(p), CUDA_SUCCESS);
    BACK();
    EXPECT(cu.cuMemAllocPitch(&p, &pitch, big / 1024, 1024, 4), CUDA_ERROR_OUT_OF_MEMORY);
    EXPECT(cu.cuMemAllocPitch(&p, &pitch, 1000, 1000, 4), CUDA_SUCCESS);
    EXPECT(cu.cuMemFree(p), CUDA_SUCCESS);
    BACK();
    EXPECT(cu.cuMemAllocManaged(&p, big, CU_MEM_ATTACH_GLOBAL), CUDA_ERROR_OUT_OF_MEMORY);
    EXPECT(cu.cuMemAllocManaged(&p, small, CU_MEM_ATTACH_GLOBAL), CUDA_SUCCESS);
    EXPECT(cu.cuMemFree(p), CUDA_SUCCESS);
    BACK();
    EXPECT(cu.cuMemAllocAsync(&p, big, s), CUDA_ERROR_OUT_OF_MEMORY);
    EXPECT(cu.cuMemAllocAsync(&p, small, s), CUDA_SUCCESS);
    EXPECT(cu.cuMemFreeAsync(p, s), CUDA_SUCCESS);
    cu.cuStreamSynchronize(s);
    BACK();
    CUmemoryPool pool;
    if (cu.cuDeviceGetDefaultMemPool(&pool, dev) == CUDA_SUCCESS) {
        EXPECT(cu.cuMemAllocFromPoolAsync(&p, big, pool, s), CUDA_ERROR_OUT_OF_MEMORY);
        EXPECT(cu.cuMemAllocFromPoolAsync(&p, small, pool, s), CUDA_SUCCESS);
        EXPECT(cu.cuMemFreeAsync(p, s), CUDA_SUCCESS);
        cu.cuStreamSynchronize(s);
        BACK();
    } else {
        printf("skip cuMemAllocFromPoolAsync: no default pool\n");
    }
    CUmemAllocationProp prop = {0};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = dev;
    CUmemGenericAllocationHandle h;
    EXPECT(cu.cuMemCreate(&h, (big + (2 << 20)) & ~(size_t)((2 << 20) - 1), &prop, 0),
           CUDA_ERROR_OUT_OF_MEMORY);
    EXPECT(cu.cuMemCreate(&h, small, &prop, 0), CUDA_SUCCESS);
    EXPECT(cu.cuMemRelease(h), CUDA_SUCCESS);
    BACK();
    /* Released while mapped: the memory (and its charge) stays until the mapping goes. */
    CUdeviceptr va;
    EXPECT(cu.cuMemCreate(&h, small, &prop, 0), CUDA_SUCCESS);
    EXPECT(cu.cuMemAddressReserve(&va, small, 0, 0, 0), CUDA_SUCCESS);
    EXPECT(cu.cuMemMap(va, small, 0, h, 0), CUDA_SUCCESS);
    EXPECT(cu.cuMemRelease(h), CUDA_SUCCESS);
    size_t fm;
    cu.cuMemGetInfo(&fm, &t);
    printf("%s free while mapped %zu (was %zu)\n", fm < f0 ? "ok" : "BAD", fm, f0);
    fails += fm >= f0;
    EXPECT(cu.cuMemCreate(&h, (big - small + (2 << 20)) & ~(size_t)((2 << 20) - 1), &prop, 0),
           CUDA_ERROR_OUT_OF_MEMORY);
    EXPECT(cu.cuMemUnmap(va, small), CUDA_SUCCESS);
    EXPECT(cu.cuMemAddressFree(va, small), CUDA_SUCCESS);
    BACK();
    CUDA_ARRAY_DESCRIPTOR ad = {.Width = 65536, .Height = (big / 65536 / 4) + 1,
                                .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1};
    CUarray a;
    EXPECT(cu.cuArrayCreate(&a, &ad), CUDA_ERROR_OUT_OF_MEMORY);
    ad.Width = 1024;
    ad.Height = 1024;
    unsupported = 0;
    EXPECT_OR_UNSUPPORTED(cu.cuArrayCreate(&a, &ad), CUDA_SUCCESS);
    if (!unsupported) EXPECT(cu.cuArrayDestroy(a), CUDA_SUCCESS);
    BACK();
    CUDA_ARRAY3D_DESCRIPTOR a3 = {.Width = 1024, .Height = 1024, .Depth = (big >> 22) + 1,
                                  .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1};
    EXPECT(cu.cuArray3DCreate(&a, &a3), CUDA_ERROR_OUT_OF_MEMORY);
    a3.Depth = 4;
    unsupported = 0;
    EXPECT_OR_UNSUPPORTED(cu.cuArray3DCreate(&a, &a3), CUDA_SUCCESS);
    if (!unsupported) EXPECT(cu.cuArrayDestroy(a), CUDA_SUCCESS);
    BACK();
    CUmipmappedArray m;
    a3.Depth = (big >> 22) + 1;
    EXPECT(cu.cuMipmappedArrayCreate(&m, &a3, 3), CUDA_ERROR_OUT_OF_MEMORY);
    a3.Depth = 0;
    unsupported = 0;
    EXPECT_OR_UNSUPPORTED(cu.cuMipmappedArrayCreate(&m, &a3, 3), CUDA_SUCCESS);
    if (!unsupported) EXPECT(cu.cuMipmappedArrayDestroy(m), CUDA_SUCCESS);
    BACK();
    printf("paths_failed=%d\n", fails);
    return fails ? 1 : 0;
}

static int vecadd(void)
{
    char *ptx = gf_read_whole_file(kernel_path("vector_add.ptx"));
    if (!ptx) {
        printf("error=no vector_add.ptx (set GPUFUSE_TEST_DIR)\n");
        return 1;
    }
    CUmodule mod;
    CUfunction fn;
    CK(cu.cuModuleLoadData(&mod, ptx));
    CK(cu.cuModuleGetFunction(&fn, mod, "vector_add"));
    enum { N = 4096 };
    static float a[N], b[N], c[N];
    for (int i = 0; i < N; i++) {
        a[i] = (float)i;
        b[i] = 2.0f * (float)i;
    }
    CUdeviceptr da, db, dc;
    CK(cu.cuMemAlloc(&da, sizeof a));
    CK(cu.cuMemAlloc(&db, sizeof b));
    CK(cu.cuMemAlloc(&dc, sizeof c));
    CK(cu.cuMemcpyHtoD(da, a, sizeof a));
    CK(cu.cuMemcpyHtoD(db, b, sizeof b));
    int n = N;
    void *params[] = {&da, &db, &dc, &n};
    CK(cu.cuLaunchKernel(fn, N / 256, 1, 1, 256, 1, 1, 0, NULL, params, NULL));
    CK(cu.cuCtxSynchronize());
    CK(cu.cuMemcpyDtoH(c, dc, sizeof c));
    int bad = 0;
    for (int i = 0; i < N; i++) bad += c[i] != 3.0f * (float)i;
    printf("vecadd_bad=%d\n", bad);
    cu.cuMemFree(da);
    cu.cuMemFree(db);
    cu.cuMemFree(dc);
    cu.cuModuleUnload(mod);
    free(ptx);
    return bad != 0;
}

/* This process's smUtil from NVML's process samples (-1 when unavailable). */
static int device_util(void)
{
    void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) return -1;
    typedef struct {
        unsigned pid;
        unsigned long long ts;
        unsigned sm, mem, enc, dec;
    } sample;
    int (*init)(void) = (int (*)(void))dlsym(h, "nvmlInit_v2");
    int (*get)(unsigned, void **) = (int (*)(unsigned, void **))dlsym(h, "nvmlDeviceGetHandleByIndex_v2");
    int (*util)(void *, sample *, unsigned *, unsigned long long) =
        (int (*)(void *, sample *, unsigned *, unsigned long long))dlsym(h, "nvmlDeviceGetProcessUtilization");
    void *d;
    sample s[64];
    unsigned n = 64;
    if (!init || !get || !util || init() != 0 || get(0, &d) != 0 || util(d, s, &n, 0) != 0)
        return -1;
    for (unsigned i = 0; i < n; i++)
        if (s[i].pid == (unsigned)getpid()) return (int)s[i].sm;
    return 0;
}

/* Launches spin kernels of kernel_us for window_ms (sync after each when sync is 1) and
 * prints the fraction of wall time the kernels ran. */
static int spin(int kernel_us, int window_ms, int sync)
{
    char *ptx = gf_read_whole_file(kernel_path("spin.ptx"));
    if (!ptx) return 1;
    CUmodule mod;
    CUfunction fn;
    CK(cu.cuModuleLoadData(&mod, ptx));
    CK(cu.cuModuleGetFunction(&fn, mod, "gpufuse_sim_spin"));
    unsigned long long ns = (unsigned long long)kernel_us * 1000;
    void *params[] = {&ns};
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)window_ms * 1000000ull, n = 0;
    while (now_ns() < end) {
        CK(cu.cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL));
        if (sync) CK(cu.cuCtxSynchronize());
        n++;
    }
    /* The device's own account (the sim's NVML through the shim): this process's share of
     * the last GPUFUSE_SIM_UTIL_WINDOW_MS, read just before the loop's end. */
    int sm = device_util();
    CK(cu.cuCtxSynchronize());
    uint64_t wall = now_ns() - t0;
    printf("launches=%llu busy_frac=%.4f device_pct=%d\n", (unsigned long long)n,
           (double)(n * ns) / (double)wall, sm);
    cu.cuModuleUnload(mod);
    free(ptx);
    return 0;
}

int main(int argc, char **argv)
{
    int a = 1;
    const char *how = "link";
    if (a < argc && (!strcmp(argv[a], "link") || !strcmp(argv[a], "dlopen") ||
                     !strcmp(argv[a], "procaddr")))
        how = argv[a++];
    if (a >= argc) {
        fprintf(stderr, "usage: cuprobe [link|dlopen|procaddr] MODE ARGS\n");
        return 2;
    }
    if (load(how) != 0 || setup() != 0) return 1;
    const char *mode = argv[a++];
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(mode, "meminfo")) {
        size_t f, t, tm;
        CK(cu.cuMemGetInfo(&f, &t));
        CK(cu.cuDeviceTotalMem(&tm, dev));
        int n;
        CK(cu.cuDeviceGetCount(&n));
        printf("total=%zu free=%zu devtotal=%zu count=%d\n", t, f, tm, n);
        return 0;
    }
    if (!strcmp(mode, "fill") || !strcmp(mode, "hold")) {
        size_t chunk = (size_t)atol(a < argc ? argv[a] : "64") << 20;
        size_t total = 0;
        CUdeviceptr p;
        CUresult r = CUDA_SUCCESS;
        int hold = !strcmp(mode, "hold");
        while ((r = cu.cuMemAlloc(&p, chunk)) == CUDA_SUCCESS) {
            total += chunk;
            if (hold) break;
        }
        printf("allocated=%zu last=%s\n", total, ename(r));
        if (hold) {
            printf("ready\n");
            fflush(stdout);
            pause();
        }
        return 0;
    }
    if (!strcmp(mode, "paths")) return paths();
    if (!strcmp(mode, "vecadd")) return vecadd();
    if (!strcmp(mode, "spin") && a + 2 < argc)
        return spin(atoi(argv[a]), atoi(argv[a + 1]), atoi(argv[a + 2]));
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
