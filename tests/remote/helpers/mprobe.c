/* SPDX-License-Identifier: Apache-2.0 */
/* Managed and mapped host memory on a remote vGPU (linked -lcuda = the client library, remote
 * mode): the cases where host and device copies could drift apart, each checked element by
 * element. Prints one "mirror CASE ok" or "mirror CASE FAILED: why" line per case and exits 1 if
 * any failed. `mprobe hostfn`: a host function reads managed memory a kernel before it wrote,
 * which the remote backend cannot fetch there: the program must end with its message, not read
 * stale bytes (it prints "hostfn read N" if it ever does). Used by tests/remote/test_remote.c. */
#include <cuda.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* inc(p, n): p[i] += 1 for i < n. */
static const char inc_ptx[] =
    ".version 7.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry inc(.param .u64 inc_p, .param .u32 inc_n)\n{\n"
    "\t.reg .pred %p<2>;\n\t.reg .b32 %r<8>;\n\t.reg .b64 %rd<5>;\n"
    "\tld.param.u64 %rd1, [inc_p];\n\tld.param.u32 %r1, [inc_n];\n"
    "\tmov.u32 %r2, %ctaid.x;\n\tmov.u32 %r3, %ntid.x;\n\tmov.u32 %r4, %tid.x;\n"
    "\tmad.lo.s32 %r5, %r2, %r3, %r4;\n\tsetp.ge.u32 %p1, %r5, %r1;\n\t@%p1 bra DONE;\n"
    "\tcvta.to.global.u64 %rd2, %rd1;\n\tmul.wide.u32 %rd3, %r5, 4;\n"
    "\tadd.s64 %rd4, %rd2, %rd3;\n\tld.global.u32 %r6, [%rd4];\n\tadd.s32 %r7, %r6, 1;\n"
    "\tst.global.u32 [%rd4], %r7;\nDONE:\n\tret;\n}\n";

static CUfunction inc_fn;
static int failed;

static const char *ename(CUresult r)
{
    const char *n = NULL;
    cuGetErrorName(r, &n);
    return n ? n : "?";
}

#define TRY(call)                                                                             \
    do {                                                                                      \
        CUresult r_ = (call);                                                                 \
        if (r_ != CUDA_SUCCESS) {                                                             \
            printf("mirror %s FAILED: %s = %s\n", name, #call, ename(r_));                    \
            failed = 1;                                                                       \
            return;                                                                           \
        }                                                                                     \
    } while (0)

#define EXPECT(cond, ...)                                                                     \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            printf("mirror %s FAILED: ", name);                                               \
            printf(__VA_ARGS__);                                                              \
            printf("\n");                                                                     \
            failed = 1;                                                                       \
            return;                                                                           \
        }                                                                                     \
    } while (0)

static CUresult inc(CUdeviceptr p, unsigned n, CUstream s)
{
    void *args[] = {&p, &n};
    return cuLaunchKernel(inc_fn, (n + 255) / 256, 1, 1, 256, 1, 1, 0, s, args, NULL);
}

/* First element of p[0..n) that is not want(i), or -1. */
static long first_bad(const uint32_t *p, unsigned n, uint32_t add)
{
    for (unsigned i = 0; i < n; i++)
        if (p[i] != i + add) return i;
    return -1;
}

/* Two launches with no host access between them, then one page written by the host. */
static void managed_chain(void)
{
    const char *name = "managed_chain";
    unsigned n = 3 * 1024 + 25; /* four pages, the last one partly */
    CUdeviceptr m;
    TRY(cuMemAllocManaged(&m, n * 4, CU_MEM_ATTACH_GLOBAL));
    uint32_t *h = (uint32_t *)(uintptr_t)m;
    for (unsigned i = 0; i < n; i++) h[i] = i;
    TRY(inc(m, n, NULL));
    TRY(inc(m, n, NULL));
    TRY(cuCtxSynchronize());
    long b = first_bad(h, n, 2);
    EXPECT(b < 0, "after two launches h[%ld] = %u, want %ld", b, h[b], b + 2);
    h[1500] += 100; /* one page dirty; the others must not be sent back stale */
    TRY(inc(m, n, NULL));
    TRY(cuCtxSynchronize());
    EXPECT(h[1500] == 1500 + 103, "h[1500] = %u, want %u", h[1500], 1500 + 103);
    h[1500] -= 100;
    b = first_bad(h, n, 3);
    EXPECT(b < 0, "after the third launch h[%ld] = %u, want %ld", b, h[b], b + 3);
    unsigned managed = 0;
    TRY(cuPointerGetAttribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, m + 40));
    EXPECT(managed == 1, "IS_MANAGED %u", managed);
    TRY(cuMemFree(m));
    printf("mirror %s ok\n", name);
}

/* Copies and memsets into and out of managed memory, and host writes seen by them. */
static void managed_copies(void)
{
    const char *name = "managed_copies";
    unsigned n = 2048;
    CUdeviceptr m, d;
    TRY(cuMemAllocManaged(&m, n * 4, CU_MEM_ATTACH_GLOBAL));
    TRY(cuMemAlloc(&d, n * 4));
    uint32_t *h = (uint32_t *)(uintptr_t)m, host[2048];
    for (unsigned i = 0; i < n; i++) host[i] = i + 10;
    TRY(cuMemcpyHtoD(m, host, n * 4)); /* into managed memory: the host sees it after */
    long b = first_bad(h, n, 10);
    EXPECT(b < 0, "after cuMemcpyHtoD h[%ld] = %u", b, h[b]);
    TRY(cuMemsetD32(m, 9, n));
    EXPECT(h[0] == 9 && h[n - 1] == 9, "after cuMemsetD32 %u %u", h[0], h[n - 1]);
    h[7] = 77;                             /* a host write ... */
    TRY(cuMemcpyDtoH(host, m, n * 4));     /* ... that a copy out of managed memory sees */
    EXPECT(host[7] == 77 && host[8] == 9, "cuMemcpyDtoH read %u %u", host[7], host[8]);
    for (unsigned i = 0; i < n; i++) h[i] = i;
    TRY(cuMemcpyDtoD(d, m, n * 4));
    TRY(inc(d, n, NULL));
    TRY(cuMemcpy(m, d, n * 4)); /* unified addressing: device to managed */
    b = first_bad(h, n, 1);
    EXPECT(b < 0, "after cuMemcpy h[%ld] = %u", b, h[b]);
    CUstream s;
    TRY(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    TRY(inc(m, n, s));
    TRY(cuStreamSynchronize(s));
    b = first_bad(h, n, 2);
    EXPECT(b < 0, "after a stream's launch h[%ld] = %u", b, h[b]);
    TRY(cuStreamDestroy(s));
    TRY(cuMemFree(d));
    TRY(cuMemFree(m));
    printf("mirror %s ok\n", name);
}

/* Registered memory that shares its first and last pages with other data: the other data is
 * the program's alone (written meanwhile, filled by a system call) and stays as it is. */
static void registered_unaligned(void)
{
    const char *name = "registered_unaligned";
    unsigned n = 2 * 1024 + 50;
    uint8_t *buf = malloc(4 * 4096 + 1000);
    if (!buf) return;
    uint32_t *reg = (uint32_t *)(buf + 100);
    uint8_t *after = (uint8_t *)(reg + n);
    memset(buf, 0x11, 100);
    memset(after, 0x22, 64);
    for (unsigned i = 0; i < n; i++) reg[i] = i;
    TRY(cuMemHostRegister(reg, n * 4, 0));
    CUdeviceptr d;
    TRY(cuMemHostGetDevicePointer(&d, reg, 0));
    TRY(inc(d, n, NULL));
    memset(buf, 0x33, 100); /* the neighbours change while the kernel runs */
    int fd = open("/dev/zero", O_RDONLY);
    ssize_t got = fd >= 0 ? read(fd, after, 64) : -1;
    if (fd >= 0) close(fd);
    EXPECT(got == 64, "read() into the data after the registered range: %zd (%s)", got,
           strerror(errno));
    TRY(cuCtxSynchronize());
    long b = first_bad(reg, n, 1);
    EXPECT(b < 0, "reg[%ld] = %u, want %ld", b, reg[b], b + 1);
    EXPECT(buf[0] == 0x33 && buf[99] == 0x33 && after[0] == 0 && after[63] == 0,
           "neighbours %#x %#x %#x %#x", buf[0], buf[99], after[0], after[63]);
    reg[0] = 1000; /* first page (shared): sent before every launch */
    reg[1500] = 2000;
    TRY(inc(d, n, NULL));
    TRY(cuCtxSynchronize());
    EXPECT(reg[0] == 1001 && reg[1500] == 2001 && reg[n - 1] == n + 1, "%u %u %u", reg[0],
           reg[1500], reg[n - 1]);
    unsigned type = 0;
    TRY(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)(uintptr_t)reg));
    EXPECT(type == CU_MEMORYTYPE_HOST, "memory type %u", type);
    TRY(cuMemHostUnregister(reg));
    reg[3] = 5; /* writable as ever */
    free(buf);
    printf("mirror %s ok\n", name);
}

/* Registered buffers that share pages with each other (three in one page, then a long one from
 * the same page on), and many pinned buffers: every one stays its own. */
static void registered_neighbours(void)
{
    const char *name = "registered_neighbours";
    uint8_t *blk = aligned_alloc(4096, 4 * 4096);
    if (!blk) return;
    uint32_t *r[4] = {(uint32_t *)(blk + 64), (uint32_t *)(blk + 1024), (uint32_t *)(blk + 2048),
                      (uint32_t *)(blk + 3072)};
    unsigned len[4] = {100, 200, 150, 2000}; /* the last runs over two more pages */
    CUdeviceptr d[4];
    memset(blk, 0x5a, 64);
    for (int k = 0; k < 4; k++) {
        for (unsigned i = 0; i < len[k]; i++) r[k][i] = i + 1000u * (unsigned)k;
        TRY(cuMemHostRegister(r[k], len[k] * 4, CU_MEMHOSTREGISTER_DEVICEMAP));
        TRY(cuMemHostGetDevicePointer(&d[k], r[k], 0));
    }
    uint32_t *pinned[64];
    for (int k = 0; k < 64; k++) {
        TRY(cuMemAllocHost((void **)&pinned[k], 4096));
        pinned[k][0] = (uint32_t)k;
    }
    for (int k = 0; k < 4; k++) TRY(inc(d[k], len[k], NULL));
    TRY(cuCtxSynchronize());
    for (int k = 0; k < 4; k++)
        for (unsigned i = 0; i < len[k]; i++)
            EXPECT(r[k][i] == i + 1000u * (unsigned)k + 1, "buffer %d [%u] = %u", k, i, r[k][i]);
    EXPECT(blk[0] == 0x5a && blk[63] == 0x5a, "bytes before the first buffer %#x %#x", blk[0],
           blk[63]);
    for (int k = 0; k < 64; k++) {
        EXPECT(pinned[k][0] == (uint32_t)k, "pinned %d holds %u", k, pinned[k][0]);
        TRY(cuMemFreeHost(pinned[k]));
    }
    for (int k = 0; k < 4; k++) TRY(cuMemHostUnregister(r[k]));
    free(blk);
    printf("mirror %s ok\n", name);
}

/* Pinned memory mapped at allocation: the host pointer is the device pointer (the worker put
 * its copy at the same address) and a kernel reaches it through either. */
static void hostalloc_devicemap(void)
{
    const char *name = "hostalloc_devicemap";
    unsigned n = 5000;
    uint32_t *h;
    TRY(cuMemHostAlloc((void **)&h, n * 4, CU_MEMHOSTALLOC_DEVICEMAP));
    for (unsigned i = 0; i < n; i++) h[i] = i;
    CUdeviceptr d;
    TRY(cuMemHostGetDevicePointer(&d, h, 0));
    TRY(inc(d, n, NULL));
    TRY(cuCtxSynchronize());
    long b = first_bad(h, n, 1);
    EXPECT(b < 0, "h[%ld] = %u", b, h[b]);
    printf("mirror %s ok uva=%d\n", name, d == (CUdeviceptr)(uintptr_t)h);
    TRY(cuMemFreeHost(h));
}

static void read_first(void *p)
{
    printf("hostfn read %u\n", *(volatile uint32_t *)p);
    fflush(stdout);
}

static int hostfn(void)
{
    CUdeviceptr m;
    if (cuMemAllocManaged(&m, 4096, CU_MEM_ATTACH_GLOBAL) != CUDA_SUCCESS) return 2;
    uint32_t *h = (uint32_t *)(uintptr_t)m;
    h[0] = 41;
    if (inc(m, 1, NULL) != CUDA_SUCCESS ||
        cuLaunchHostFunc(NULL, read_first, h) != CUDA_SUCCESS)
        return 2;
    cuCtxSynchronize();
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* each line out before a sanitizer's report at exit */
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
        cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS || cuCtxSetCurrent(ctx) != CUDA_SUCCESS ||
        cuModuleLoadData(&mod, inc_ptx) != CUDA_SUCCESS ||
        cuModuleGetFunction(&inc_fn, mod, "inc") != CUDA_SUCCESS) {
        printf("mirror setup FAILED\n");
        return 1;
    }
    if (argc > 1 && !strcmp(argv[1], "hostfn")) return hostfn();
    managed_chain();
    managed_copies();
    registered_unaligned();
    registered_neighbours();
    hostalloc_devicemap();
    return failed;
}
