/* SPDX-License-Identifier: Apache-2.0 */
/* A remote-mode client for tests/remote/test_remote.c (linked -lcuda = the client library):
 *   rprobe loop          calls cuCtxSynchronize + cuMemAlloc/cuMemFree every 10 ms; prints
 *                        "ready" after the first round and, on the first error,
 *                        "error=NAME after_ms=T" (T: ms since the last call that succeeded)
 *   rprobe hold MIB      allocates MIB, fills it, prints "ready ptr=0x..." and sleeps
 *   rprobe forge PTR     copies from, memsets, frees a pointer it does not own (another
 *                        session's) and offsets past its own allocation; prints one
 *                        "refused=NAME" line per attempt */
#include <cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *ename(CUresult r)
{
    const char *n = NULL;
    cuGetErrorName(r, &n);
    return n ? n : "?";
}

#define CK(call)                                                                              \
    do {                                                                                      \
        CUresult r_ = (call);                                                                 \
        if (r_ != CUDA_SUCCESS) {                                                             \
            printf("error=%s at=%s\n", ename(r_), #call);                                    \
            return 1;                                                                         \
        }                                                                                     \
    } while (0)

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) return 2;
    CUdevice dev;
    CUcontext ctx;
    CK(cuInit(0));
    CK(cuDeviceGet(&dev, 0));
    CK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CK(cuCtxSetCurrent(ctx));
    if (!strcmp(argv[1], "loop")) {
        uint64_t last = now_ms();
        int ready = 0;
        for (;;) {
            CUdeviceptr p;
            CUresult r = cuCtxSynchronize();
            if (r == CUDA_SUCCESS) r = cuMemAlloc(&p, 4096);
            if (r == CUDA_SUCCESS) r = cuMemFree(p);
            if (r != CUDA_SUCCESS) {
                printf("error=%s after_ms=%llu\n", ename(r), (unsigned long long)(now_ms() - last));
                r = cuCtxSynchronize();
                printf("again=%s\n", ename(r));
                return 0;
            }
            last = now_ms();
            if (!ready++) printf("ready\n");
            usleep(10000);
        }
    }
    if (!strcmp(argv[1], "hold") && argc > 2) {
        size_t n = (size_t)atoi(argv[2]) << 20;
        CUdeviceptr p;
        CK(cuMemAlloc(&p, n));
        CK(cuMemsetD8(p, 0x5a, n));
        CK(cuCtxSynchronize());
        printf("ready ptr=0x%llx\n", (unsigned long long)p);
        for (;;) pause();
    }
    if (!strcmp(argv[1], "forge") && argc > 2) {
        CUdeviceptr other = (CUdeviceptr)strtoull(argv[2], NULL, 0), mine;
        char buf[256];
        CK(cuMemAlloc(&mine, 4096));
        printf("refused=%s\n", ename(cuMemcpyDtoH(buf, other, sizeof buf)));
        printf("refused=%s\n", ename(cuMemcpyDtoH(buf, other + 4096, 16)));
        printf("refused=%s\n", ename(cuMemcpyHtoD(other, buf, sizeof buf)));
        printf("refused=%s\n", ename(cuMemsetD8(other, 0, 64)));
        printf("refused=%s\n", ename(cuMemcpyDtoD(mine, other, 64)));
        printf("refused=%s\n", ename(cuMemFree(other)));
        printf("refused=%s\n", ename(cuMemcpyDtoH(buf, mine + 4090, 16)));
        printf("refused=%s\n", ename(cuMemcpyHtoD(mine + 4096, buf, 1)));
        printf("refused=%s\n", ename(cuMemFree(mine + 8)));
        srand(42);
        int ok = 0;
        for (int i = 0; i < 1000; i++) {
            CUdeviceptr r = ((CUdeviceptr)rand() << 33) ^ ((CUdeviceptr)rand() << 2);
            if (r >= mine && r < mine + 4096) continue;
            ok += cuMemcpyDtoH(buf, r, 8) == CUDA_SUCCESS;
        }
        printf("random_accepted=%d\n", ok);
        CUstream fake = (CUstream)(uintptr_t)0x0500000000000001ull;
        printf("refused=%s\n", ename(cuStreamSynchronize(fake)));
        CK(cuMemFree(mine));
        return 0;
    }
    return 2;
}
