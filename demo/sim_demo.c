/* SPDX-License-Identifier: Apache-2.0 */
/* The demo: lists the GPUs like deviceQuery, runs the test kernels on them through the CUDA
 * driver API, checks every result against the CPU, and shows what NVML sees. Runs on whatever
 * libcuda.so.1 comes first on the library path: the sim, or a real driver. */
#include <cuda.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpufuse/nvml.h"

#define CK(call)                                                                             \
    do {                                                                                     \
        CUresult r_ = (call);                                                                \
        if (r_ != CUDA_SUCCESS) {                                                            \
            const char *n_ = "?";                                                            \
            cuGetErrorName(r_, &n_);                                                         \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, n_);        \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

static const char *kernel_dir;
static int mismatches; /* the exit status says whether every result matched */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static CUmodule load(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.ptx", kernel_dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s (set GPUFUSE_TEST_DIR to the source tree)\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    if (!text || fread(text, 1, (size_t)n, f) != (size_t)n) exit(1);
    text[n] = 0;
    fclose(f);
    CUmodule m;
    CK(cuModuleLoadData(&m, text));
    free(text);
    return m;
}

static void device_query(int ndev)
{
    printf("Detected %d CUDA capable device(s)\n", ndev);
    int drv;
    CK(cuDriverGetVersion(&drv));
    printf("  CUDA driver version: %d.%d\n", drv / 1000, (drv % 1000) / 10);
    for (int i = 0; i < ndev; i++) {
        CUdevice d;
        char name[256];
        size_t mem;
        int major, minor, sms, clock, threads, smem, warp, busid;
        CUuuid uuid;
        CK(cuDeviceGet(&d, i));
        CK(cuDeviceGetName(name, sizeof name, d));
        CK(cuDeviceTotalMem(&mem, d));
        CK(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d));
        CK(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d));
        CK(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, d));
        CK(cuDeviceGetAttribute(&clock, CU_DEVICE_ATTRIBUTE_CLOCK_RATE, d));
        CK(cuDeviceGetAttribute(&threads, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, d));
        CK(cuDeviceGetAttribute(&smem, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, d));
        CK(cuDeviceGetAttribute(&warp, CU_DEVICE_ATTRIBUTE_WARP_SIZE, d));
        CK(cuDeviceGetAttribute(&busid, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, d));
        CK(cuDeviceGetUuid(&uuid, d));
        printf("\nDevice %d: \"%s\"\n", i, name);
        printf("  UUID:                              GPU-");
        for (int b = 0; b < 16; b++)
            printf("%02x%s", (unsigned char)uuid.bytes[b],
                   (b == 3 || b == 5 || b == 7 || b == 9) ? "-" : "");
        printf("\n");
        printf("  CUDA capability:                   %d.%d\n", major, minor);
        printf("  Global memory:                     %.0f MiB (%zu bytes)\n",
               mem / 1048576.0, mem);
        printf("  Multiprocessors:                   %d\n", sms);
        printf("  GPU max clock rate:                %.0f MHz\n", clock / 1000.0);
        printf("  Max threads per block:             %d\n", threads);
        printf("  Shared memory per block:           %d bytes\n", smem);
        printf("  Warp size:                         %d\n", warp);
        printf("  PCI bus id:                        %d\n", busid);
    }
}

static void run_kernels(CUdevice dev)
{
    CUcontext ctx;
    CK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CK(cuCtxSetCurrent(ctx));
    printf("\nRunning the test kernels on device %d:\n", (int)dev);

    /* vector_add + saxpy */
    enum { N = 1 << 16 };
    float *a = malloc(N * 4), *b = malloc(N * 4), *c = malloc(N * 4);
    for (int i = 0; i < N; i++) {
        a[i] = (float)i * 0.5f;
        b[i] = (float)(N - i);
    }
    CUdeviceptr da, db, dc;
    CK(cuMemAlloc(&da, N * 4));
    CK(cuMemAlloc(&db, N * 4));
    CK(cuMemAlloc(&dc, N * 4));
    CK(cuMemcpyHtoD(da, a, N * 4));
    CK(cuMemcpyHtoD(db, b, N * 4));
    CUmodule m = load("vector_add");
    CUfunction f;
    CK(cuModuleGetFunction(&f, m, "vector_add"));
    int n = N;
    void *args[] = {&da, &db, &dc, &n};
    double t0 = now_ms();
    CK(cuLaunchKernel(f, (N + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
    CK(cuCtxSynchronize());
    double t1 = now_ms();
    CK(cuMemcpyDtoH(c, dc, N * 4));
    int bad = 0;
    for (int i = 0; i < N; i++) bad += c[i] != a[i] + b[i];
    printf("  vector_add   n=%d            %s  (%.1f ms)\n", N, bad ? "MISMATCH" : "ok", t1 - t0);
    mismatches += bad != 0;

    CUmodule ms = load("saxpy");
    CK(cuModuleGetFunction(&f, ms, "saxpy"));
    float alpha = 2.5f;
    void *sargs[] = {&n, &alpha, &da, &db};
    t0 = now_ms();
    CK(cuLaunchKernel(f, (N + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, sargs, NULL));
    CK(cuCtxSynchronize());
    t1 = now_ms();
    CK(cuMemcpyDtoH(c, db, N * 4));
    bad = 0;
    for (int i = 0; i < N; i++) bad += fabsf(c[i] - (alpha * a[i] + b[i])) > 1e-3f * fabsf(c[i]);
    printf("  saxpy        n=%d a=%.1f      %s  (%.1f ms)\n", N, alpha, bad ? "MISMATCH" : "ok",
           t1 - t0);
    mismatches += bad != 0;

    /* reduction */
    CUmodule mr = load("reduce");
    CK(cuModuleGetFunction(&f, mr, "reduce_sum"));
    CUdeviceptr dsum;
    CK(cuMemAlloc(&dsum, 4));
    CK(cuMemsetD32(dsum, 0, 1));
    for (int i = 0; i < N; i++) a[i] = (float)(i % 100) / 10.0f;
    CK(cuMemcpyHtoD(da, a, N * 4));
    unsigned un = N;
    void *rargs[] = {&da, &dsum, &un};
    t0 = now_ms();
    CK(cuLaunchKernel(f, N / 256, 1, 1, 256, 1, 1, 0, NULL, rargs, NULL));
    CK(cuCtxSynchronize());
    t1 = now_ms();
    float sum;
    CK(cuMemcpyDtoH(&sum, dsum, 4));
    double ref = 0;
    for (int i = 0; i < N; i++) ref += a[i];
    printf("  reduce_sum   n=%d sum=%.1f  %s  (%.1f ms)\n", N, sum,
           fabs(sum - ref) <= 1e-4 * ref ? "ok" : "MISMATCH", t1 - t0);
    mismatches += !(fabs(sum - ref) <= 1e-4 * ref);

    /* the same with warp shuffles: 64 blocks of 128 threads stride over the input */
    CK(cuModuleGetFunction(&f, mr, "reduce_warp"));
    CK(cuMemsetD32(dsum, 0, 1));
    t0 = now_ms();
    CK(cuLaunchKernel(f, 64, 1, 1, 128, 1, 1, 0, NULL, rargs, NULL));
    CK(cuCtxSynchronize());
    t1 = now_ms();
    CK(cuMemcpyDtoH(&sum, dsum, 4));
    printf("  reduce_warp  n=%d sum=%.1f  %s  (%.1f ms)\n", N, sum,
           fabs(sum - ref) <= 1e-4 * ref ? "ok" : "MISMATCH", t1 - t0);
    mismatches += !(fabs(sum - ref) <= 1e-4 * ref);

    /* tiled matmul */
    enum { M = 96, K = 80, P = 112 };
    float *A = malloc(M * K * 4), *B = malloc(K * P * 4), *C = malloc(M * P * 4);
    for (int i = 0; i < M * K; i++) A[i] = (float)((i * 7) % 13) - 6;
    for (int i = 0; i < K * P; i++) B[i] = (float)((i * 5) % 11) - 5;
    CUdeviceptr dA, dB, dC;
    CK(cuMemAlloc(&dA, M * K * 4));
    CK(cuMemAlloc(&dB, K * P * 4));
    CK(cuMemAlloc(&dC, M * P * 4));
    CK(cuMemcpyHtoD(dA, A, M * K * 4));
    CK(cuMemcpyHtoD(dB, B, K * P * 4));
    CUmodule mm = load("matmul");
    CK(cuModuleGetFunction(&f, mm, "matmul_tiled"));
    int im = M, ip = P, ik = K;
    void *margs[] = {&dA, &dB, &dC, &im, &ip, &ik};
    t0 = now_ms();
    CK(cuLaunchKernel(f, (P + 15) / 16, (M + 15) / 16, 1, 16, 16, 1, 0, NULL, margs, NULL));
    CK(cuCtxSynchronize());
    t1 = now_ms();
    CK(cuMemcpyDtoH(C, dC, M * P * 4));
    bad = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < P; j++) {
            float r = 0;
            for (int k = 0; k < K; k++) r += A[i * K + k] * B[k * P + j];
            bad += C[i * P + j] != r;
        }
    printf("  matmul_tiled %dx%dx%d         %s  (%.1f ms)\n", M, K, P, bad ? "MISMATCH" : "ok",
           t1 - t0);
    mismatches += bad != 0;

    size_t free_b, total_b;
    CK(cuMemGetInfo(&free_b, &total_b));
    printf("  cuMemGetInfo: %.1f MiB used of %.0f MiB\n", (total_b - free_b) / 1048576.0,
           total_b / 1048576.0);

    CK(cuMemFree(da));
    CK(cuMemFree(db));
    CK(cuMemFree(dc));
    CK(cuMemFree(dsum));
    CK(cuMemFree(dA));
    CK(cuMemFree(dB));
    CK(cuMemFree(dC));
    CK(cuModuleUnload(m));
    CK(cuModuleUnload(ms));
    CK(cuModuleUnload(mr));
    CK(cuModuleUnload(mm));
    CK(cuDevicePrimaryCtxRelease(dev));
    free(a), free(b), free(c), free(A), free(B), free(C);
}

static void nvml_view(void)
{
    if (nvmlInit_v2() != NVML_SUCCESS) {
        printf("\nNVML: not available\n");
        return;
    }
    unsigned n = 0;
    nvmlDeviceGetCount_v2(&n);
    printf("\nNVML view:\n");
    for (unsigned i = 0; i < n; i++) {
        nvmlDevice_t d;
        char name[96], uuid[96];
        nvmlMemory_t mem;
        nvmlUtilization_t util;
        unsigned temp = 0, power = 0;
        if (nvmlDeviceGetHandleByIndex_v2(i, &d) != NVML_SUCCESS) continue;
        nvmlDeviceGetName(d, name, sizeof name);
        nvmlDeviceGetUUID(d, uuid, sizeof uuid);
        nvmlDeviceGetMemoryInfo(d, &mem);
        nvmlDeviceGetUtilizationRates(d, &util);
        nvmlDeviceGetTemperature(d, NVML_TEMPERATURE_GPU, &temp);
        nvmlDeviceGetPowerUsage(d, &power);
        printf("  %u  %-28s %s  mem %llu/%llu MiB  util %u%%  %u C  %.0f W\n", i, name, uuid,
               (unsigned long long)(mem.used >> 20), (unsigned long long)(mem.total >> 20),
               util.gpu, temp, power / 1000.0);
    }
    nvmlShutdown();
}

int main(void)
{
    const char *dir = getenv("GPUFUSE_TEST_DIR");
    static char kd[4096];
    snprintf(kd, sizeof kd, "%s/tests/kernels", dir && *dir ? dir : ".");
    kernel_dir = kd;
    CK(cuInit(0));
    int ndev;
    CK(cuDeviceGetCount(&ndev));
    device_query(ndev);
    for (int i = 0; i < ndev; i++) run_kernels(i);
    nvml_view();
    if (mismatches) fprintf(stderr, "\n%d kernel result(s) did not match the CPU\n", mismatches);
    return mismatches ? 1 : 0;
}
