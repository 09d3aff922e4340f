/* SPDX-License-Identifier: Apache-2.0 */
/* The client library's cost: ns per call added over the raw sim for cuLaunchKernel and
 * cuMemAlloc+cuMemFree (both measured in this process, so the ratio compares like with like),
 * with no limit and with a VRAM limit; then the compute-cap accuracy table (gpufuse run on the
 * sim, device utilization as the sim's NVML reports it). Run by make bench. */
#define _GNU_SOURCE 1
#include <cuda.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef CUresult (*pfn_launch)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                               unsigned, unsigned, CUstream, void **, void **);
typedef CUresult (*pfn_alloc)(CUdeviceptr *, size_t);
typedef CUresult (*pfn_free)(CUdeviceptr);

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static char build[4096], root[4096];

static double launch_ns(pfn_launch launch, CUfunction f, CUstream s, int n)
{
    unsigned long long ns = 0;
    void *params[] = {&ns};
    uint64_t best = UINT64_MAX;
    for (int rep = 0; rep < 5; rep++) {
        uint64_t t0 = now_ns();
        for (int i = 0; i < n; i++) launch(f, 1, 1, 1, 1, 1, 1, 0, s, params, NULL);
        uint64_t t = now_ns() - t0;
        cuStreamSynchronize(s);
        if (t < best) best = t;
    }
    return (double)best / n;
}

static double alloc_ns(pfn_alloc a, pfn_free f, int n)
{
    uint64_t best = UINT64_MAX;
    for (int rep = 0; rep < 5; rep++) {
        uint64_t t0 = now_ns();
        for (int i = 0; i < n; i++) {
            CUdeviceptr p;
            a(&p, 1 << 20);
            f(p);
        }
        uint64_t t = now_ns() - t0;
        if (t < best) best = t;
    }
    return (double)best / n;
}

/* Per-call overhead, in this process: raw sim entry points vs the library's. */
static int overhead(const char *label)
{
    char path[8192];
    const char *drv = getenv("GPUFUSE_BENCH_DRIVER");
    if (drv && *drv) snprintf(path, sizeof path, "%s", drv);
    else snprintf(path, sizeof path, "%s/lib/sim/libcuda.so.1", build);
    void *sim = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    setenv("GPUFUSE_DRIVER", path, 1);
    snprintf(path, sizeof path, "%s/lib/libgpufuse.so", build);
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!sim || !lib) {
        fprintf(stderr, "bench_client: %s\n", dlerror());
        return 1;
    }
    CUresult (*init)(unsigned) = (CUresult(*)(unsigned))dlsym(lib, "cuInit");
    if (init(0) != CUDA_SUCCESS) return 1;
    CUdevice dev;
    CUcontext ctx;
    cuDeviceGet(&dev, 0);
    cuDevicePrimaryCtxRetain(&ctx, dev);
    cuCtxSetCurrent(ctx);
    snprintf(path, sizeof path, "%s/tests/kernels/spin.ptx", root);
    FILE *fp = fopen(path, "rb");
    if (!fp) return 1;
    static char ptx[1 << 16];
    size_t n = fread(ptx, 1, sizeof ptx - 1, fp);
    ptx[n] = 0;
    fclose(fp);
    CUmodule m;
    CUfunction f;
    CUstream s;
    if (cuModuleLoadData(&m, ptx) || cuModuleGetFunction(&f, m, "gpufuse_sim_spin")) return 1;
    cuStreamCreate(&s, CU_STREAM_NON_BLOCKING);
    pfn_launch raw_l = (pfn_launch)dlsym(sim, "cuLaunchKernel");
    pfn_launch lib_l = (pfn_launch)dlsym(lib, "cuLaunchKernel");
    pfn_alloc raw_a = (pfn_alloc)dlsym(sim, "cuMemAlloc_v2");
    pfn_alloc lib_a = (pfn_alloc)dlsym(lib, "cuMemAlloc_v2");
    pfn_free raw_f = (pfn_free)dlsym(sim, "cuMemFree_v2");
    pfn_free lib_f = (pfn_free)dlsym(lib, "cuMemFree_v2");
    /* Alternate raw and library rounds and keep each one's best, so that warm-up and the
     * machine's load hit both alike. */
    double rl = 1e18, ll = 1e18, ra = 1e18, la = 1e18, v;
    launch_ns(raw_l, f, s, 2000);
    for (int round = 0; round < 4; round++) {
        if ((v = launch_ns(raw_l, f, s, 2000)) < rl) rl = v;
        if ((v = launch_ns(lib_l, f, s, 2000)) < ll) ll = v;
        if ((v = alloc_ns(raw_a, raw_f, 500)) < ra) ra = v;
        if ((v = alloc_ns(lib_a, lib_f, 500)) < la) la = v;
    }
    printf("%-34s %10s %10s %10s %8s\n", label, drv && *drv ? "raw drv" : "raw sim", "library", "added", "ratio");
    printf("%-34s %8.0f ns %8.0f ns %8.0f ns %8.3f\n", "  cuLaunchKernel", rl, ll, ll - rl,
           ll / rl);
    printf("%-34s %8.0f ns %8.0f ns %8.0f ns %8.3f\n", "  cuMemAlloc+cuMemFree (1 MiB)", ra, la,
           la - ra, la / ra);
    return 0;
}

static int cap_table(void)
{
    printf("\ncompute caps on the sim (spin kernels of 5 ms for 2.5 s; device utilization from the "
           "sim's NVML)\n");
    printf("%-8s %-24s %10s %8s\n", "cap", "mode", "device", "error");
    int caps[] = {10, 30, 50, 70, 90};
    for (int i = 0; i < 5; i++) {
        for (int sync = 1; sync >= 0; sync--) {
            if (caps[i] == 90 && sync) continue; /* the sim's per-launch overhead caps sync at ~88% */
            char cmd[16384], out[4096];
            snprintf(cmd, sizeof cmd,
                     "GPUFUSE_SIM_UTIL_WINDOW_MS=1000 %s/bin/gpufuse run --compute-percent %d -- "
                     "%s/tests/client/helpers/cuprobe spin 5000 2500 %d 2>&1",
                     build, caps[i], build, sync);
            FILE *p = popen(cmd, "r");
            size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
            out[n] = 0;
            if (p) pclose(p);
            const char *d = strstr(out, "device_pct=");
            if (!d) {
                fprintf(stderr, "bench_client: no device_pct from \"%s\"; it said:\n%s\n", cmd,
                        out);
                return 1;
            }
            int pct = atoi(d + 11);
            printf("%5d%%   %-24s %9d%% %+7d\n", caps[i], sync ? "sync after each launch" : "queued",
                   pct, pct - caps[i]);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *b = getenv("GPUFUSE_BUILD_DIR");
    const char *r = getenv("GPUFUSE_TEST_DIR");
    snprintf(root, sizeof root, "%s", r ? r : ".");
    if (b) snprintf(build, sizeof build, "%s", b);
    else if (snprintf(build, sizeof build, "%.4000s/build", root) >= (int)sizeof build) return 1;
    setenv("GPUFUSE_TEST_DIR", root, 1);
    setenv("GPUFUSE_BUILD_DIR", build, 1);
    /* GPUFUSE_BENCH_DRIVER=/path/libcuda.so.1 measures against a real driver (tests/gpu/run);
     * the cap table reads the sim's NVML and is left out then. */
    const char *real = getenv("GPUFUSE_BENCH_DRIVER");
    char sp[8192];
    snprintf(sp, sizeof sp, "%s/lib/sim/libnvidia-ml.so.1", build);
    if (!real || !*real) setenv("GPUFUSE_NVML", sp, 1);
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "--caps")) return cap_table();
    if (!strcmp(mode, "--limited")) return overhead("with a VRAM limit (accounting on)");
    if (overhead("no limit (pass-through)")) return 1;
    fflush(stdout);
    /* The library reads its vGPU once per process: the limited case runs in a child, with
     * HAMi's variable (no gpufuse run needed) and a private shm dir. */
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "GPUFUSE_SHM_DIR=$(mktemp -d) CUDA_DEVICE_MEMORY_LIMIT=8g %s --limited", argv[0]);
    if (system(cmd) != 0) return 1;
    return real && *real ? 0 : cap_table();
}
