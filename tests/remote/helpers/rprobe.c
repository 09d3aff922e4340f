/* SPDX-License-Identifier: Apache-2.0 */
/* A remote-mode client for tests/remote/test_remote.c (linked -lcuda = the client library):
 *   rprobe loop          calls cuCtxSynchronize + cuMemAlloc/cuMemFree every 10 ms; prints
 *                        "ready" after the first round and, on the first error,
 *                        "error=NAME after_ms=T" (T: ms since the last call that succeeded)
 *   rprobe hold MIB      allocates MIB, fills it, prints "ready ptr=0x..." and sleeps
 *   rprobe forge PTR     copies from, memsets, frees a pointer it does not own (another
 *                        session's; its own allocation is kept away from it) and offsets
 *                        past its own allocation; prints one "refused=NAME" line per attempt
 *   rprobe nvml MIB      allocates MIB and prints what NVML (dlopen'ed: the NVML shim, remote
 *                        mode) says about the device next to what CUDA says:
 *                        "nvml count=.. name_match=.. uuid_match=.. total=.. used=..
 *                        procs=.. mine=BYTES util_rc=.. unsupported_rc=.."
 *   rprobe serve         a session driven from stdin, one command a line, one answer a line
 *                        (prints "ready" first; EOF or "quit" ends it):
 *                          vecadd  c = a + b over 4096 floats (alloc, copy in, launch, copy
 *                                  back, check, free): "vecadd=NAME bad=N" (NAME of the first
 *                                  failing call, CUDA_SUCCESS when all worked)
 *                          fault   an out-of-bounds vector_add (n 1100 over 1000 elements):
 *                                  "fault=NAME after=NAME" (its synchronize, then a cuMemAlloc)
 *                          reset   cuDevicePrimaryCtxReset then cuDevicePrimaryCtxRetain:
 *                                  "reset=NAME retain=NAME"
 *   rprobe reset         loads one PTX image as a library and as a module, resets the primary
 *                        context, and prints what still works, as on a driver: the library,
 *                        its kernels and globals (loaded again, globals initialized again) but
 *                        not the module: "reset lib_launch=.. global=.. kfunc_launch=..
 *                        mod_get=NAME mod_unload=NAME destroyed_ctx_lib=.. lib_unload=NAME"
 *   rprobe hostfn        queues two host functions behind a memset on a stream and then waits
 *                        for them without any CUDA call (up to 10 s), as a program may:
 *                        "hostfn ran=N order=AB" (N functions ran, in the order A then B) */
#include <cuda.h>
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "read_file.h"

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

/* fill(p, v): p[tid] = v + tid; g (initially 7) is a global. */
static const char reset_ptx[] =
    ".version 7.0\n.target sm_80\n.address_size 64\n"
    ".visible .global .align 4 .u32 g = 7;\n"
    ".visible .entry fill(.param .u64 fill_p, .param .u32 fill_v)\n{\n"
    "\t.reg .b32 %r<4>;\n\t.reg .b64 %rd<5>;\n"
    "\tld.param.u64 %rd1, [fill_p];\n\tld.param.u32 %r1, [fill_v];\n"
    "\tmov.u32 %r2, %tid.x;\n\tadd.s32 %r3, %r1, %r2;\n"
    "\tcvta.to.global.u64 %rd2, %rd1;\n\tmul.wide.u32 %rd3, %r2, 4;\n"
    "\tadd.s64 %rd4, %rd2, %rd3;\n\tst.global.u32 [%rd4], %r3;\n\tret;\n}\n";

/* Launches f(p, v) with 32 threads and checks p[i] == v + i; 1 on success. */
static int fill_ok(CUfunction f, unsigned v)
{
    CUdeviceptr p;
    if (cuMemAlloc(&p, 128) != CUDA_SUCCESS) return 0;
    void *args[] = {&p, &v};
    unsigned h[32];
    int ok = cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL) == CUDA_SUCCESS &&
             cuCtxSynchronize() == CUDA_SUCCESS && cuMemcpyDtoH(h, p, sizeof h) == CUDA_SUCCESS;
    for (unsigned i = 0; ok && i < 32; i++) ok = h[i] == v + i;
    cuMemFree(p);
    return ok;
}

#define CK(call)                                                                              \
    do {                                                                                      \
        CUresult r_ = (call);                                                                 \
        if (r_ != CUDA_SUCCESS) {                                                             \
            printf("error=%s at=%s\n", ename(r_), #call);                                    \
            return 1;                                                                         \
        }                                                                                     \
    } while (0)

/* serve's vecadd: NULL when every call worked, else the name of the call that failed. */
static const char *vecadd_round(CUfunction f, CUresult *rc, int *bad)
{
    enum { N = 4096 };
    static float a[N], b[N], c[N];
    for (int i = 0; i < N; i++) {
        a[i] = (float)i;
        b[i] = (float)(2 * i);
        c[i] = -1;
    }
    CUdeviceptr da = 0, db = 0, dc = 0;
    int n = N;
    void *args[] = {&da, &db, &dc, &n};
    const char *at = NULL;
#define STEP(call)                                                                                if (!at && (*rc = (call)) != CUDA_SUCCESS) at = #call
    STEP(cuMemAlloc(&da, sizeof a));
    STEP(cuMemAlloc(&db, sizeof b));
    STEP(cuMemAlloc(&dc, sizeof c));
    STEP(cuMemcpyHtoD(da, a, sizeof a));
    STEP(cuMemcpyHtoD(db, b, sizeof b));
    STEP(cuLaunchKernel(f, N / 256, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
    STEP(cuCtxSynchronize());
    STEP(cuMemcpyDtoH(c, dc, sizeof c));
    STEP(cuMemFree(da));
    STEP(cuMemFree(db));
    STEP(cuMemFree(dc));
#undef STEP
    *bad = 0;
    for (int i = 0; i < N; i++) *bad += c[i] != (float)(3 * i);
    return at;
}

static int serve(CUdevice dev)
{
    const char *dir = getenv("GPUFUSE_TEST_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/kernels/vector_add.ptx", dir ? dir : ".");
    char *ptx = gf_read_whole_file(path);
    if (!ptx) {
        printf("error=no %s (set GPUFUSE_TEST_DIR)\n", path);
        return 1;
    }
    CUmodule mod;
    CUfunction f;
    CK(cuModuleLoadData(&mod, ptx));
    free(ptx);
    CK(cuModuleGetFunction(&f, mod, "vector_add"));
    printf("ready\n");
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!strcmp(line, "quit")) break;
        if (!strcmp(line, "vecadd")) {
            CUresult r = CUDA_SUCCESS;
            int bad = -1;
            const char *at = vecadd_round(f, &r, &bad);
            printf("vecadd=%s bad=%d%s%s\n", ename(r), bad, at ? " at=" : "", at ? at : "");
        } else if (!strcmp(line, "fault")) {
            CUdeviceptr a = 0, c = 0, p = 0;
            int n = 1100; /* 100 elements past the end of both */
            void *args[] = {&a, &a, &c, &n};
            CUresult r = cuMemAlloc(&a, 1000 * 4);
            if (r == CUDA_SUCCESS) r = cuMemAlloc(&c, 1000 * 4);
            if (r == CUDA_SUCCESS) r = cuLaunchKernel(f, 5, 1, 1, 256, 1, 1, 0, NULL, args, NULL);
            if (r == CUDA_SUCCESS) r = cuCtxSynchronize();
            printf("fault=%s after=%s\n", ename(r), ename(cuMemAlloc(&p, 16)));
        } else if (!strcmp(line, "reset")) {
            CUresult r = cuDevicePrimaryCtxReset(dev);
            CUcontext ctx = NULL;
            CUresult q = cuDevicePrimaryCtxRetain(&ctx, dev);
            if (q == CUDA_SUCCESS) cuCtxSetCurrent(ctx);
            printf("reset=%s retain=%s\n", ename(r), ename(q));
        } else {
            printf("error=unknown command \"%s\"\n", line);
        }
    }
    return 0;
}

static atomic_int marks_n;
static int marks[2];

static void mark(void *p)
{
    int i = atomic_load(&marks_n);
    if (i < 2) marks[i] = (int)(intptr_t)p;
    atomic_store(&marks_n, i + 1);
}

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
    if (!strcmp(argv[1], "serve")) return serve(dev);
    if (!strcmp(argv[1], "hostfn")) {
        CUstream s;
        CUdeviceptr p;
        CK(cuStreamCreate(&s, 0));
        CK(cuMemAlloc(&p, 1 << 20));
        CK(cuMemsetD8Async(p, 1, 1 << 20, s));
        CK(cuLaunchHostFunc(s, mark, (void *)1));
        CK(cuLaunchHostFunc(s, mark, (void *)2));
        for (int i = 0; i < 1000 && atomic_load(&marks_n) < 2; i++) usleep(10000);
        printf("hostfn ran=%d order=%d%d\n", atomic_load(&marks_n), marks[0], marks[1]);
        CK(cuStreamSynchronize(s));
        return 0;
    }
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
        CUdeviceptr other = (CUdeviceptr)strtoull(argv[2], NULL, 0), mine, spare[8];
        char buf[256];
        /* Each session has a process of its own on the worker, and two processes' device
         * addresses may coincide (as two local processes' do): this session must hold nothing
         * where it probes the other's, or the attempts below would touch its own memory. */
        unsigned nspare = 0;
        CK(cuMemAlloc(&mine, 4096));
        while (mine < other + 8192 && other < mine + 4096 && nspare < 8) {
            spare[nspare++] = mine;
            CK(cuMemAlloc(&mine, 4096));
        }
        for (unsigned i = 0; i < nspare; i++) CK(cuMemFree(spare[i]));
        printf("refused=%s\n", ename(cuMemcpyDtoH(buf, other, sizeof buf)));
        printf("refused=%s\n", ename(cuMemcpyDtoH(buf, other + 4096, 16)));
        printf("refused=%s\n", ename(cuMemcpyHtoD(other, buf, sizeof buf)));
        printf("refused=%s\n", ename(cuMemsetD8(other, 0, 64)));
        printf("refused=%s\n", ename(cuMemcpyDtoD(mine, other, 64)));
        printf("refused=%s\n", ename(cuMemFree(other)));
        printf("refused=%s\n", ename(cuMemcpyDtoH(buf, mine + 4090, 16)));
        printf("refused=%s\n", ename(cuMemcpyHtoD(mine + 4096, buf, 1)));
        printf("refused=%s\n", ename(cuMemFree(mine + 8)));
        /* 2D, peer and pointer queries on the other session's memory: refused too */
        CUDA_MEMCPY2D c2 = {0};
        c2.srcMemoryType = CU_MEMORYTYPE_DEVICE;
        c2.srcDevice = other;
        c2.srcPitch = 64;
        c2.dstMemoryType = CU_MEMORYTYPE_HOST;
        c2.dstHost = buf;
        c2.dstPitch = 64;
        c2.WidthInBytes = 64;
        c2.Height = 2;
        printf("refused=%s\n", ename(cuMemcpy2D(&c2)));
        printf("refused=%s\n", ename(cuMemsetD2D8(other, 64, 0, 64, 2)));
        CUcontext cur;
        CK(cuCtxGetCurrent(&cur));
        printf("refused=%s\n", ename(cuMemcpyPeer(mine, cur, other, cur, 64)));
        unsigned mt = 0;
        printf("refused=%s\n",
               ename(cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, other)));
        /* ... and work on this session's own: 2D device-to-device with pitches, a 2D memset,
         * a peer copy, its pointer attributes */
        CK(cuMemsetD2D16Async(mine, 128, 0x0102, 32, 8, NULL)); /* 64 of each 128 bytes */
        CUDA_MEMCPY2D d2 = {0};
        d2.srcMemoryType = CU_MEMORYTYPE_UNIFIED;
        d2.srcDevice = mine;
        d2.srcPitch = 128;
        d2.dstMemoryType = CU_MEMORYTYPE_DEVICE;
        d2.dstDevice = mine + 2048;
        d2.dstPitch = 64;
        d2.WidthInBytes = 64;
        d2.Height = 8;
        CK(cuMemcpy2DUnaligned(&d2));
        CK(cuMemcpyPeer(mine + 3072, cur, mine + 2048, cur, 512));
        uint16_t got[256];
        CK(cuMemcpyDtoH(got, mine + 3072, 512));
        int good = 1;
        for (int i = 0; i < 256; i++) good &= got[i] == 0x0102;
        CUdeviceptr start = 0;
        size_t size = 0;
        CUcontext pc = NULL;
        CK(cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, mine + 100));
        CK(cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, mine + 100));
        CK(cuPointerGetAttribute(&pc, CU_POINTER_ATTRIBUTE_CONTEXT, mine + 100));
        printf("own_2d_peer_ok=%d attrs_ok=%d\n", good, start == mine && size == 4096 && pc == cur);
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
    if (!strcmp(argv[1], "reset")) {
        CUlibrary lib;
        CUmodule mod;
        CUkernel k;
        CUfunction mf, kf, f2;
        CUdeviceptr g;
        size_t gn = 0;
        unsigned gv = 0;
        CK(cuLibraryLoadData(&lib, reset_ptx, NULL, NULL, 0, NULL, NULL, 0));
        CK(cuModuleLoadData(&mod, reset_ptx));
        CK(cuLibraryGetKernel(&k, lib, "fill"));
        CK(cuKernelGetFunction(&kf, k));
        CK(cuModuleGetFunction(&mf, mod, "fill"));
        CK(cuLibraryGetGlobal(&g, &gn, lib, "g"));
        gv = 99;
        CK(cuMemcpyHtoD(g, &gv, sizeof gv));
        if (!fill_ok((CUfunction)k, 1) || !fill_ok(mf, 2)) {
            printf("error=launch before the reset\n");
            return 1;
        }
        CK(cuDevicePrimaryCtxReset(dev));
        CK(cuDevicePrimaryCtxRetain(&ctx, dev));
        CK(cuCtxSetCurrent(ctx));
        int lib_launch = fill_ok((CUfunction)k, 10);
        int kfunc_launch = fill_ok(kf, 20);
        CK(cuLibraryGetGlobal(&g, &gn, lib, "g"));
        CK(cuMemcpyDtoH(&gv, g, sizeof gv));
        CUresult mod_get = cuModuleGetFunction(&f2, mod, "fill");
        CUresult mod_unload = cuModuleUnload(mod);
        /* A library loaded in a context that is then destroyed lives on too. */
        CUcontext other;
        CUlibrary lib2;
        CUkernel k2;
        CK(cuCtxCreate(&other, NULL, 0, dev));
        CK(cuLibraryLoadData(&lib2, reset_ptx, NULL, NULL, 0, NULL, NULL, 0));
        CK(cuLibraryGetKernel(&k2, lib2, "fill"));
        CK(cuCtxDestroy(other));
        CK(cuCtxSetCurrent(ctx));
        int destroyed_ctx_lib = fill_ok((CUfunction)k2, 30);
        CK(cuLibraryUnload(lib2));
        printf("reset lib_launch=%d global=%u kfunc_launch=%d mod_get=%s mod_unload=%s "
               "destroyed_ctx_lib=%d lib_unload=%s\n",
               lib_launch, gv, kfunc_launch, ename(mod_get), ename(mod_unload), destroyed_ctx_lib,
               ename(cuLibraryUnload(lib)));
        return 0;
    }
    return 2;
}
