/* SPDX-License-Identifier: Apache-2.0 */
/* A remote-mode client for tests/remote/test_remote.c (linked -lcuda = the client library):
 *   rprobe loop          calls cuCtxSynchronize + cuMemAlloc/cuMemFree every 10 ms; prints
 *                        "ready" after the first round and, on the first error,
 *                        "error=NAME after_ms=T" (T: ms since the last call that succeeded)
 *   rprobe hold MIB      allocates MIB, fills it, prints "ready ptr=0x..." and sleeps
 *   rprobe forge PTR     copies from, memsets, frees a pointer it does not own (another
 *                        session's) and offsets past its own allocation; prints one
 *                        "refused=NAME" line per attempt
 *   rprobe nvml MIB      allocates MIB and prints what NVML (dlopen'ed: the NVML shim, remote
 *                        mode) says about the device next to what CUDA says:
 *                        "nvml count=.. name_match=.. uuid_match=.. total=.. used=..
 *                        procs=.. mine=BYTES util_rc=.. unsupported_rc=.." */
#include <cuda.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
    if (!strcmp(argv[1], "nvml") && argc > 2) {
        size_t n = (size_t)atoi(argv[2]) << 20;
        CUdeviceptr p;
        CK(cuMemAlloc(&p, n));
        void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW);
        if (!h) {
            printf("error=%s\n", dlerror());
            return 1;
        }
        /* NVML's ABI (include/gpufuse/nvml.h); declared here to keep this helper header-free. */
        typedef struct { unsigned long long total, free, used; } mem_t;
        typedef struct { unsigned pid; unsigned long long used; unsigned gi, ci; } proc_t;
        typedef struct { unsigned gpu, memory; } util_t;
        int (*init)(void) = (int (*)(void))dlsym(h, "nvmlInit_v2");
        int (*count)(unsigned *) = (int (*)(unsigned *))dlsym(h, "nvmlDeviceGetCount_v2");
        int (*handle)(unsigned, void **) = (int (*)(unsigned, void **))dlsym(h, "nvmlDeviceGetHandleByIndex_v2");
        int (*name)(void *, char *, unsigned) = (int (*)(void *, char *, unsigned))dlsym(h, "nvmlDeviceGetName");
        int (*uuid)(void *, char *, unsigned) = (int (*)(void *, char *, unsigned))dlsym(h, "nvmlDeviceGetUUID");
        int (*mem)(void *, mem_t *) = (int (*)(void *, mem_t *))dlsym(h, "nvmlDeviceGetMemoryInfo");
        int (*procs)(void *, unsigned *, proc_t *) =
            (int (*)(void *, unsigned *, proc_t *))dlsym(h, "nvmlDeviceGetComputeRunningProcesses_v3");
        int (*util)(void *, util_t *) = (int (*)(void *, util_t *))dlsym(h, "nvmlDeviceGetUtilizationRates");
        int (*temp)(void *, int, unsigned *) = (int (*)(void *, int, unsigned *))dlsym(h, "nvmlDeviceGetTemperature");
        int (*shut)(void) = (int (*)(void))dlsym(h, "nvmlShutdown");
        if (!init || !count || !handle || !name || !uuid || !mem || !procs || !util || !temp || !shut) {
            printf("error=an NVML entry point is missing\n");
            return 1;
        }
        int rc = init();
        unsigned cnt = 0;
        void *d = NULL;
        if (rc == 0) rc = count(&cnt);
        if (rc == 0) rc = handle(0, &d);
        if (rc != 0) {
            printf("error=nvml rc %d\n", rc);
            return 1;
        }
        char nn[96] = "", cn[256] = "", nu[96] = "", cu[96] = "";
        name(d, nn, sizeof nn);
        uuid(d, nu, sizeof nu);
        cuDeviceGetName(cn, sizeof cn, dev);
        CUuuid u;
        cuDeviceGetUuid(&u, dev);
        const unsigned char *b = (const unsigned char *)u.bytes;
        snprintf(cu, sizeof cu, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                 b[13], b[14], b[15]);
        mem_t m = {0, 0, 0};
        int mrc = mem(d, &m);
        proc_t pr[8];
        unsigned np = 8;
        int prc = procs(d, &np, pr);
        unsigned long long mine = 0;
        for (unsigned i = 0; prc == 0 && i < np; i++)
            if (pr[i].pid == (unsigned)getpid()) mine = pr[i].used;
        util_t ut = {0, 0};
        int urc = util(d, &ut);
        unsigned t = 0;
        printf("nvml count=%u name_match=%d uuid_match=%d total=%llu used=%llu mem_rc=%d procs=%u "
               "procs_rc=%d mine=%llu util_rc=%d unsupported_rc=%d shutdown_rc=%d\n",
               cnt, strcmp(nn, cn) == 0, strcasecmp(nu, cu) == 0, m.total, m.used, mrc, np, prc,
               mine, urc, temp(d, 0, &t), shut());
        CK(cuMemFree(p));
        return 0;
    }
    return 2;
}
