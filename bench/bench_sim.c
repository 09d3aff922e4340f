/* SPDX-License-Identifier: Apache-2.0 */
/* make bench (sim): null-kernel launch rate and H2D/D2H copy bandwidth through the sim's
 * driver API, each next to its baseline measured in the same run (a plain function call loop,
 * memcpy of the same buffers). */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CK(call)                                                                             \
    do {                                                                                     \
        CUresult r_ = (call);                                                                \
        if (r_ != CUDA_SUCCESS) {                                                            \
            const char *n_ = "?";                                                            \
            cuGetErrorName(r_, &n_);                                                         \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, n_);               \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char null_ptx[] = ".version 9.0\n.target sm_80\n.address_size 64\n"
                               ".visible .entry null_kernel()\n{\n\tret;\n}\n";

static void __attribute__((noinline)) empty_call(volatile int *x) { (*x)++; }

static void bench_launch(void)
{
    CUmodule m;
    CUfunction f;
    CK(cuModuleLoadData(&m, null_ptx));
    CK(cuModuleGetFunction(&f, m, "null_kernel"));
    enum { N = 20000 };
    for (int i = 0; i < 200; i++) CK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
    CK(cuCtxSynchronize());
    double t0 = now_s();
    for (int i = 0; i < N; i++) CK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
    double t_enqueue = now_s() - t0;
    CK(cuCtxSynchronize());
    double t_all = now_s() - t0;

    double t1 = now_s();
    for (int i = 0; i < N / 10; i++) {
        CK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
        CK(cuCtxSynchronize());
    }
    double t_sync = (now_s() - t1) / (N / 10);

    volatile int x = 0;
    double b0 = now_s();
    for (int i = 0; i < N * 100; i++) empty_call(&x);
    double base = (now_s() - b0) / (N * 100);

    printf("null-kernel launch (1 thread):\n");
    printf("  enqueue            %8.2f us/launch   %10.0f launches/s\n", t_enqueue / N * 1e6,
           N / t_enqueue);
    printf("  enqueue+execute    %8.2f us/launch   %10.0f launches/s\n", t_all / N * 1e6,
           N / t_all);
    printf("  launch+synchronize %8.2f us/launch   %10.0f launches/s\n", t_sync * 1e6,
           1 / t_sync);
    printf("  baseline: a plain function call %.2f ns; launch/call ratio %.0fx\n", base * 1e9,
           (t_enqueue / N) / base);
    CK(cuModuleUnload(m));
}

static void bench_copy(void)
{
    size_t sizes[] = {64 << 10, 1 << 20, 16 << 20, 128 << 20};
    printf("copy bandwidth (GB/s), pageable host memory, next to memcpy of the same buffers:\n");
    printf("  %10s %10s %10s %10s %10s %8s\n", "size", "H2D", "D2H", "D2D", "memcpy", "H2D/memcpy");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        char *h = malloc(n), *h2 = malloc(n);
        memset(h, 1, n);
        memset(h2, 2, n);
        CUdeviceptr d, d2;
        CK(cuMemAlloc(&d, n));
        CK(cuMemAlloc(&d2, n));
        int reps = (int)(512ull * 1024 * 1024 / n);
        if (reps > 2000) reps = 2000;
        /* Touch every buffer once first: the sim maps device memory lazily, and the first
         * write to a page is a page fault the copies after it do not pay. */
        CK(cuMemcpyHtoD(d, h, n));
        CK(cuMemcpyDtoD(d2, d, n));
        CK(cuMemcpyDtoH(h2, d, n));
        double t0 = now_s();
        for (int i = 0; i < reps; i++) CK(cuMemcpyHtoD(d, h, n));
        double th2d = (now_s() - t0) / reps;
        t0 = now_s();
        for (int i = 0; i < reps; i++) CK(cuMemcpyDtoH(h2, d, n));
        double td2h = (now_s() - t0) / reps;
        t0 = now_s();
        for (int i = 0; i < reps; i++) CK(cuMemcpyDtoD(d2, d, n));
        double td2d = (now_s() - t0) / reps;
        t0 = now_s();
        for (int i = 0; i < reps; i++) {
            memcpy(h2, h, n);
            __asm__ volatile("" ::"r"(h2) : "memory");
        }
        double tmc = (now_s() - t0) / reps;
        printf("  %8zuKi %10.2f %10.2f %10.2f %10.2f %8.2f\n", n >> 10, n / th2d / 1e9,
               n / td2h / 1e9, n / td2d / 1e9, n / tmc / 1e9, tmc / th2d);
        CK(cuMemFree(d));
        CK(cuMemFree(d2));
        free(h);
        free(h2);
    }
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    CK(cuInit(0));
    CK(cuDeviceGet(&dev, 0));
    CK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CK(cuCtxSetCurrent(ctx));
    bench_launch();
    bench_copy();
    CK(cuDevicePrimaryCtxRelease(dev));
    return 0;
}
