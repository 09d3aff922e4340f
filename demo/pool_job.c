/* SPDX-License-Identifier: Apache-2.0 */
/* make demo's pool workload: a CUDA driver API program that shows the vGPU it was given (name,
 * cuMemGetInfo), holds some VRAM, and runs vector_add for a few seconds, checking each result.
 *
 *   pool_job LABEL SECONDS MIB        (PTX from $GPUFUSE_TEST_DIR/tests/kernels/vector_add.ptx)
 * Exit 0 when every result was right. */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *label = "job";

#define CK(call)                                                                              \
    do {                                                                                      \
        CUresult r_ = (call);                                                                 \
        if (r_ != CUDA_SUCCESS) {                                                             \
            const char *n_ = NULL;                                                            \
            cuGetErrorName(r_, &n_);                                                          \
            printf("%s: %s failed: %s\n", label, #call, n_ ? n_ : "?");                      \
            return 1;                                                                         \
        }                                                                                     \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_ptx(void)
{
    const char *dir = getenv("GPUFUSE_TEST_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/kernels/vector_add.ptx", dir ? dir : ".");
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: pool_job LABEL SECONDS MIB\n");
        return 2;
    }
    label = argv[1];
    double secs = atof(argv[2]);
    size_t hold = (size_t)atol(argv[3]) << 20;
    setvbuf(stdout, NULL, _IOLBF, 0);
    CUdevice dev;
    CUcontext ctx;
    char name[128];
    size_t free_b, total_b;
    CK(cuInit(0));
    CK(cuDeviceGet(&dev, 0));
    CK(cuDeviceGetName(name, sizeof name, dev));
    CK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CK(cuCtxSetCurrent(ctx));
    CK(cuMemGetInfo(&free_b, &total_b));
    printf("%s: on %s; cuMemGetInfo: total %.1f GiB, free %.1f GiB\n", label, name,
           (double)total_b / (1 << 30), (double)free_b / (1 << 30));
    CUdeviceptr big = 0;
    if (hold) CK(cuMemAlloc(&big, hold));
    char *ptx = read_ptx();
    if (!ptx) {
        printf("%s: no vector_add.ptx (set GPUFUSE_TEST_DIR to the repository)\n", label);
        return 1;
    }
    CUmodule mod;
    CUfunction fn;
    CK(cuModuleLoadData(&mod, ptx));
    CK(cuModuleGetFunction(&fn, mod, "vector_add"));
    enum { N = 4096 };
    static float a[N], b[N], c[N];
    for (int i = 0; i < N; i++) {
        a[i] = (float)i;
        b[i] = 0.5f * (float)i;
    }
    CUdeviceptr da, db, dc;
    CK(cuMemAlloc(&da, sizeof a));
    CK(cuMemAlloc(&db, sizeof b));
    CK(cuMemAlloc(&dc, sizeof c));
    CK(cuMemcpyHtoD(da, a, sizeof a));
    CK(cuMemcpyHtoD(db, b, sizeof b));
    printf("%s: holding %zu MiB, running vector_add for %.0f s\n", label, hold >> 20, secs);
    int n = N;
    void *params[] = {&da, &db, &dc, &n};
    unsigned long launches = 0, bad = 0;
    double t0 = now_s();
    while (now_s() - t0 < secs) {
        CK(cuLaunchKernel(fn, N / 256, 1, 1, 256, 1, 1, 0, NULL, params, NULL));
        CK(cuMemcpyDtoH(c, dc, sizeof c));
        for (int i = 0; i < N; i++) bad += c[i] != 1.5f * (float)i;
        launches++;
    }
    printf("%s: %lu launches in %.1f s, %s\n", label, launches, now_s() - t0,
           bad ? "WRONG RESULTS" : "every result right");
    cuMemFree(da);
    cuMemFree(db);
    cuMemFree(dc);
    if (big) cuMemFree(big);
    cuModuleUnload(mod);
    free(ptx);
    return bad ? 1 : 0;
}
