/* SPDX-License-Identifier: Apache-2.0 */
/* Memory in the sim's driver: device, pitched, pinned host, registered, managed, stream-ordered
 * pools and the VMM calls as PyTorch's expandable segments use them; cuMemGetInfo follows VRAM;
 * 1D/2D/unified/peer copies; pointer attributes. */
#include <cuda.h>
#include <stdint.h>
#include <unistd.h>

#include "sim_test_util.h"
#include "test.h"

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

static void add(CUfunction f, CUdeviceptr a, CUdeviceptr b, CUdeviceptr c, int n, CUstream s)
{
    void *args[] = {&a, &b, &c, &n};
    CHECK_CU(cuLaunchKernel(f, (n + 255) / 256, 1, 1, 256, 1, 1, 0, s, args, NULL));
}

static size_t free_vram(void)
{
    size_t f, t;
    CHECK_CU(cuMemGetInfo(&f, &t));
    ASSERT_TRUE(f <= t);
    return f;
}

static long rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

TEST(alloc_free_and_mem_get_info)
{
    sim_setup();
    size_t total;
    size_t f0 = free_vram();
    CHECK_CU(cuDeviceTotalMem(&total, 0));
    ASSERT_TRUE(f0 <= total);
    CUdeviceptr p;
    CHECK_CU(cuMemAlloc(&p, 256 * MiB));
    ASSERT_EQ_U64(p % 512, 0);
    size_t f1 = free_vram();
    ASSERT_MSG(f0 - f1 >= 256 * MiB && f0 - f1 <= 260 * MiB, "256 MiB alloc took %zu bytes", f0 - f1);
    CUdeviceptr base;
    size_t size;
    CHECK_CU(cuMemGetAddressRange(&base, &size, p + 12345));
    ASSERT_EQ_U64(base, p);
    ASSERT_EQ_U64(size, 256 * MiB);
    ASSERT_CU(cuMemFree(p + 512), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemFree(p));
    ASSERT_CU(cuMemFree(p), CUDA_ERROR_INVALID_VALUE);
    ASSERT_EQ_U64(free_vram(), f0);
    /* small allocations are distinct and aligned */
    CUdeviceptr q[64];
    for (int i = 0; i < 64; i++) {
        CHECK_CU(cuMemAlloc(&q[i], 1 + i * 37));
        ASSERT_EQ_U64(q[i] % 512, 0);
        CHECK_CU(cuMemsetD8(q[i], (unsigned char)i, 1 + i * 37));
    }
    for (int i = 0; i < 64; i++) {
        unsigned char buf[1 + 63 * 37];
        CHECK_CU(cuMemcpyDtoH(buf, q[i], 1 + i * 37));
        for (int j = 0; j < 1 + i * 37; j++) ASSERT_EQ_INT(buf[j], i);
        CHECK_CU(cuMemFree(q[i]));
    }
    ASSERT_EQ_U64(free_vram(), f0);
}

TEST(a_60_gib_allocation_costs_no_ram_until_touched)
{
    sim_setup();
    size_t total;
    CHECK_CU(cuDeviceTotalMem(&total, 0));
    long rss0 = rss_kib();
    CUdeviceptr p;
    size_t big = total * 3 / 4;
    CHECK_CU(cuMemAlloc(&p, big));
    ASSERT_MSG(rss_kib() - rss0 < 64 * 1024, "RSS grew by %ld KiB", rss_kib() - rss0);
    CHECK_CU(cuMemsetD8(p + big - 4096, 0xab, 4096));
    unsigned char c;
    CHECK_CU(cuMemcpyDtoH(&c, p + big - 1, 1));
    ASSERT_EQ_INT(c, 0xab);
    CUdeviceptr q;
    ASSERT_CU(cuMemAlloc(&q, total / 2), CUDA_ERROR_OUT_OF_MEMORY);
    CHECK_CU(cuMemFree(p));
    CHECK_CU(cuMemAlloc(&q, total / 2));
    CHECK_CU(cuMemFree(q));
}

TEST(pitched_memory_and_2d_copies)
{
    sim_setup();
    CUdeviceptr d;
    size_t pitch;
    size_t w = 1000, h = 37;
    CHECK_CU(cuMemAllocPitch(&d, &pitch, w, h, 4));
    ASSERT_TRUE(pitch >= w && pitch % 256 == 0);
    CHECK_CU(cuMemsetD2D32(d, pitch, 0xdeadbeef, w / 4, h));
    uint8_t *src = malloc(w * h), *dst = malloc(pitch * h);
    for (size_t i = 0; i < w * h; i++) src[i] = (uint8_t)(i * 7);
    /* copy a 600x30 window of src (starting at column 100, row 5) to device column 200, row 2 */
    CUDA_MEMCPY2D c = {0};
    c.srcMemoryType = CU_MEMORYTYPE_HOST;
    c.srcHost = src;
    c.srcPitch = w;
    c.srcXInBytes = 100;
    c.srcY = 5;
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.dstDevice = d;
    c.dstPitch = pitch;
    c.dstXInBytes = 200;
    c.dstY = 2;
    c.WidthInBytes = 600;
    c.Height = 30;
    CHECK_CU(cuMemcpy2D(&c));
    CHECK_CU(cuMemcpyDtoH(dst, d, pitch * h));
    for (size_t y = 0; y < h; y++) {
        for (size_t x = 0; x < w; x++) {
            uint8_t want = ((uint8_t[]){0xef, 0xbe, 0xad, 0xde})[x & 3];
            if (y >= 2 && y < 32 && x >= 200 && x < 800) want = src[(y - 2 + 5) * w + (x - 200 + 100)];
            ASSERT_MSG(dst[y * pitch + x] == want, "(%zu,%zu) = %#x, expected %#x", x, y,
                       dst[y * pitch + x], want);
        }
    }
    /* device to host, async, back into a tight buffer */
    CUDA_MEMCPY2D back = {0};
    back.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    back.srcDevice = d;
    back.srcPitch = pitch;
    back.dstMemoryType = CU_MEMORYTYPE_HOST;
    back.dstHost = dst;
    back.dstPitch = w;
    back.WidthInBytes = w;
    back.Height = h;
    CHECK_CU(cuMemcpy2DAsync(&back, NULL));
    CHECK_CU(cuStreamSynchronize(NULL));
    ASSERT_EQ_INT(dst[3 * w + 250], src[6 * w + 150]);
    /* a 2D copy that runs past the allocation */
    back.Height = h + 1;
    ASSERT_CU(cuMemcpy2D(&back), CUDA_ERROR_INVALID_VALUE);
    back.Height = h;
    back.srcPitch = w - 1;
    ASSERT_CU(cuMemcpy2D(&back), CUDA_ERROR_INVALID_VALUE);
    free(src), free(dst);
}

TEST(pinned_registered_and_managed_memory)
{
    sim_setup();
    CUfunction f = sim_vector_add();
    size_t f0 = free_vram();
    int n = 5000;
    float *a, *b, *c;
    CHECK_CU(cuMemAllocHost((void **)&a, n * 4));
    CHECK_CU(cuMemHostAlloc((void **)&b, n * 4, CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE));
    ASSERT_EQ_U64(free_vram(), f0); /* host memory is not VRAM */
    unsigned flags;
    CHECK_CU(cuMemHostGetFlags(&flags, b));
    ASSERT_TRUE(flags & CU_MEMHOSTALLOC_PORTABLE);
    c = malloc(n * 4);
    CHECK_CU(cuMemHostRegister(c, n * 4, 0));
    ASSERT_CU(cuMemHostRegister(c + 10, 64, 0), CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
    for (int i = 0; i < n; i++) a[i] = (float)i, b[i] = 1.0f, c[i] = 0;
    CUdeviceptr da, db, dc;
    CHECK_CU(cuMemHostGetDevicePointer(&da, a, 0));
    CHECK_CU(cuMemHostGetDevicePointer(&db, b, 0));
    CHECK_CU(cuMemHostGetDevicePointer(&dc, c, 0));
    ASSERT_TRUE(da == (CUdeviceptr)(uintptr_t)a);
    add(f, da, db, dc, n, NULL); /* kernels read and write host memory directly (UVA) */
    CHECK_CU(cuCtxSynchronize());
    for (int i = 0; i < n; i++) ASSERT_NEAR(c[i], i + 1.0, 0);
    CHECK_CU(cuMemHostUnregister(c));
    ASSERT_CU(cuMemHostUnregister(c), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
    ASSERT_CU(cuMemHostGetDevicePointer(&dc, c, 0), CUDA_ERROR_INVALID_VALUE);

    /* managed memory counts as VRAM and is usable from both sides */
    CUdeviceptr m;
    CHECK_CU(cuMemAllocManaged(&m, 64 * MiB, CU_MEM_ATTACH_GLOBAL));
    ASSERT_TRUE(f0 - free_vram() >= 64 * MiB);
    float *hm = (float *)(uintptr_t)m;
    for (int i = 0; i < n; i++) hm[i] = 2.0f;
    add(f, m, m, m, n, NULL);
    CHECK_CU(cuCtxSynchronize());
    for (int i = 0; i < n; i++) ASSERT_NEAR(hm[i], 4.0, 0);
    CUmemLocation loc = {CU_MEM_LOCATION_TYPE_DEVICE, 0};
    CHECK_CU(cuMemPrefetchAsync(m, 4096, loc, 0, NULL));
    CHECK_CU(cuMemFree(m));
    ASSERT_CU(cuMemFreeHost(c), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemFreeHost(a));
    CHECK_CU(cuMemFreeHost(b));
    ASSERT_EQ_U64(free_vram(), f0);
    free(c);
}

TEST(stream_ordered_pools)
{
    sim_setup();
    CUfunction f = sim_vector_add();
    size_t f0 = free_vram();
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CUmemoryPool pool, dflt;
    CHECK_CU(cuDeviceGetDefaultMemPool(&dflt, 0));
    CHECK_CU(cuDeviceGetMemPool(&pool, 0));
    ASSERT_TRUE(pool == dflt);
    CUmemLocation loc = {CU_MEM_LOCATION_TYPE_DEVICE, 0};
    CHECK_CU(cuMemGetDefaultMemPool(&pool, &loc, CU_MEM_ALLOCATION_TYPE_PINNED));
    ASSERT_TRUE(pool == dflt);
    int n = 1 << 16;
    CUdeviceptr a, b;
    CHECK_CU(cuMemAllocAsync(&a, n * 4, s));
    CHECK_CU(cuMemAllocAsync(&b, n * 4, s));
    CHECK_CU(cuMemsetD32Async(a, 0x3f800000, n, s)); /* 1.0f */
    CHECK_CU(cuMemsetD32Async(b, 0x40000000, n, s)); /* 2.0f */
    add(f, a, b, b, n, s);
    cuuint64_t used = 0;
    CHECK_CU(cuMemPoolGetAttribute(dflt, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used));
    ASSERT_TRUE(used >= 2ull * n * 4);
    ASSERT_TRUE(f0 - free_vram() >= 2ull * n * 4);
    float h[4];
    CHECK_CU(cuMemcpyDtoHAsync(h, b + 4 * 1000, sizeof h, s));
    CHECK_CU(cuMemFreeAsync(a, s));
    CHECK_CU(cuMemFreeAsync(b, s));
    ASSERT_CU(cuMemFreeAsync(b, s), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuStreamSynchronize(s));
    ASSERT_NEAR(h[2], 3.0, 0);
    ASSERT_EQ_U64(free_vram(), f0); /* freed stream-ordered memory is freed VRAM */
    CHECK_CU(cuMemPoolGetAttribute(dflt, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used));
    ASSERT_EQ_U64(used, 0);
    cuuint64_t thr = 1 << 30;
    CHECK_CU(cuMemPoolSetAttribute(dflt, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &thr));
    thr = 0;
    CHECK_CU(cuMemPoolGetAttribute(dflt, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &thr));
    ASSERT_EQ_U64(thr, 1 << 30);
    CHECK_CU(cuMemPoolTrimTo(dflt, 0));

    /* an explicit pool */
    CUmemPoolProps props = {0};
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    props.location.id = 0;
    CUmemoryPool mine;
    CHECK_CU(cuMemPoolCreate(&mine, &props));
    CUdeviceptr p;
    CHECK_CU(cuMemAllocFromPoolAsync(&p, 1 * MiB, mine, s));
    CUmemoryPool got;
    CHECK_CU(cuPointerGetAttribute(&got, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, p));
    ASSERT_TRUE(got == mine);
    CHECK_CU(cuMemFreeAsync(p, s));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_CU(cuMemPoolDestroy(mine));
    ASSERT_CU(cuMemPoolDestroy(dflt), CUDA_ERROR_INVALID_VALUE);
    ASSERT_EQ_U64(free_vram(), f0);
}

/* PyTorch's expandable segments: reserve a large VA range once, back it with 2 MiB physical
 * handles as it grows, map them at increasing offsets, set access, and later unmap and release.
 * Tensors span handle boundaries, so copies and kernels cross mappings. */
TEST(vmm_expandable_segments)
{
    sim_setup();
    CUfunction f = sim_vector_add();
    CUmemAllocationProp prop = {0};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    size_t gran;
    CHECK_CU(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED));
    ASSERT_EQ_U64(gran, 2 * MiB);
    size_t f0 = free_vram();
    CUdeviceptr va;
    CHECK_CU(cuMemAddressReserve(&va, 1 * GiB, 0, 0, 0));
    ASSERT_EQ_U64(free_vram(), f0); /* address space is not memory */
    enum { NH = 5 };
    CUmemGenericAllocationHandle h[NH];
    for (int i = 0; i < NH; i++) {
        CHECK_CU(cuMemCreate(&h[i], gran, &prop, 0));
        CHECK_CU(cuMemMap(va + i * gran, gran, 0, h[i], 0));
    }
    ASSERT_EQ_U64(f0 - free_vram(), NH * gran); /* charged at cuMemCreate */
    CUmemAccessDesc acc = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CHECK_CU(cuMemSetAccess(va, NH * gran, &acc, 1));
    unsigned long long aflags;
    CHECK_CU(cuMemGetAccess(&aflags, &acc.location, va + gran));
    ASSERT_EQ_INT(aflags, CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
    CUmemAllocationProp back;
    CHECK_CU(cuMemGetAllocationPropertiesFromHandle(&back, h[2]));
    ASSERT_EQ_INT(back.location.id, 0);

    /* three float arrays, each 1.5 handles long, so each one straddles a mapping boundary */
    int n = (int)(gran * 3 / 2 / 4);
    CUdeviceptr a = va, b = va + n * 4, c = va + 2 * (size_t)n * 4;
    CHECK_CU(cuMemsetD32(a, 0x3f800000, n));  /* 1.0f */
    CHECK_CU(cuMemsetD32(b, 0x40400000, n));  /* 3.0f */
    add(f, a, b, c, n, NULL);
    float *out = malloc(n * 4);
    CHECK_CU(cuMemcpyDtoH(out, c, n * 4));
    for (int i = 0; i < n; i++) ASSERT_NEAR(out[i], 4.0, 0);

    /* the same physical memory mapped twice aliases */
    CUdeviceptr va2;
    CHECK_CU(cuMemAddressReserve(&va2, 2 * gran, 0, 0, 0));
    CHECK_CU(cuMemMap(va2, gran, 0, h[4], 0));
    CHECK_CU(cuMemSetAccess(va2, gran, &acc, 1));
    CHECK_CU(cuMemsetD32(va2 + 64, 0x12345678, 1));
    uint32_t v;
    CHECK_CU(cuMemcpyDtoH(&v, va + 4 * gran + 64, 4));
    ASSERT_EQ_INT(v, 0x12345678);
    /* export as a file descriptor and import it again: a third view of the same bytes */
    int fd = -1;
    CHECK_CU(cuMemExportToShareableHandle(&fd, h[4], CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
    ASSERT_TRUE(fd >= 0);
    CUmemGenericAllocationHandle imported;
    CHECK_CU(cuMemImportFromShareableHandle(&imported, (void *)(intptr_t)fd, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR));
    close(fd);
    ASSERT_EQ_U64(f0 - free_vram(), NH * gran); /* importing charges nothing more */
    CHECK_CU(cuMemMap(va2 + gran, gran, 0, imported, 0));
    CHECK_CU(cuMemSetAccess(va2 + gran, gran, &acc, 1));
    CHECK_CU(cuMemcpyDtoH(&v, va2 + gran + 64, 4));
    ASSERT_EQ_INT(v, 0x12345678);
    CHECK_CU(cuMemUnmap(va2 + gran, gran));
    CHECK_CU(cuMemRelease(imported));
    CUmemGenericAllocationHandle r;
    CHECK_CU(cuMemRetainAllocationHandle(&r, (void *)(uintptr_t)(va2 + 100)));
    ASSERT_TRUE(r == h[4]);
    CHECK_CU(cuMemRelease(r));

    /* release the handles first: mappings keep the memory until they go */
    for (int i = 0; i < NH; i++) CHECK_CU(cuMemRelease(h[i]));
    ASSERT_EQ_U64(f0 - free_vram(), NH * gran);
    CHECK_CU(cuMemUnmap(va, NH * gran));
    ASSERT_EQ_U64(f0 - free_vram(), gran); /* h[4] is still mapped at va2 */
    CHECK_CU(cuMemUnmap(va2, gran));
    ASSERT_EQ_U64(free_vram(), f0);
    ASSERT_CU(cuMemcpyDtoH(&v, va, 4), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemAddressFree(va2, 2 * gran));
    CHECK_CU(cuMemAddressFree(va, 1 * GiB));
    ASSERT_CU(cuMemAddressFree(va, 1 * GiB), CUDA_ERROR_INVALID_VALUE);
    free(out);
}

TEST(pointer_attributes)
{
    CUcontext ctx = sim_setup();
    CUdeviceptr d;
    CHECK_CU(cuMemAlloc(&d, 1000));
    unsigned type;
    CHECK_CU(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d + 10));
    ASSERT_EQ_INT(type, CU_MEMORYTYPE_DEVICE);
    CUcontext pc;
    CHECK_CU(cuPointerGetAttribute(&pc, CU_POINTER_ATTRIBUTE_CONTEXT, d));
    ASSERT_TRUE(pc == ctx);
    int ord, managed;
    CHECK_CU(cuPointerGetAttribute(&ord, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, d));
    ASSERT_EQ_INT(ord, 0);
    CHECK_CU(cuPointerGetAttribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, d));
    ASSERT_EQ_INT(managed, 0);
    CUdeviceptr start;
    size_t size;
    CHECK_CU(cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, d + 999));
    CHECK_CU(cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, d + 999));
    ASSERT_EQ_U64(start, d);
    ASSERT_EQ_U64(size, 1000);
    CUdeviceptr dp;
    CHECK_CU(cuPointerGetAttribute(&dp, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, d + 5));
    ASSERT_EQ_U64(dp, d + 5);
    void *hp;
    ASSERT_CU(cuPointerGetAttribute(&hp, CU_POINTER_ATTRIBUTE_HOST_POINTER, d), CUDA_ERROR_INVALID_VALUE);

    int stack_var = 0;
    CUdeviceptr hostp = (CUdeviceptr)(uintptr_t)&stack_var;
    ASSERT_CU(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, hostp), CUDA_ERROR_INVALID_VALUE);
    CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_CONTEXT,
                                   CU_POINTER_ATTRIBUTE_IS_MANAGED};
    unsigned t2 = 99;
    CUcontext c2 = ctx;
    int m2 = 7;
    void *data[] = {&t2, &c2, &m2};
    CHECK_CU(cuPointerGetAttributes(3, attrs, data, hostp));
    ASSERT_EQ_INT(t2, 0);
    ASSERT_TRUE(c2 == NULL);
    ASSERT_EQ_INT(m2, 0);
    CHECK_CU(cuPointerGetAttributes(3, attrs, data, d));
    ASSERT_EQ_INT(t2, CU_MEMORYTYPE_DEVICE);
    ASSERT_TRUE(c2 == ctx);
}

/* Apart from pointer_attributes: host memory the driver knows (pinned, managed) lives on the
 * client's machine in remote mode (docs/remote.md, "Managed and mapped host memory"), a
 * mechanism of its own next to the device memory the worker holds. */
TEST(pointer_attributes_of_pinned_and_managed_memory)
{
    sim_setup();
    unsigned type;
    void *pinned;
    CHECK_CU(cuMemAllocHost(&pinned, 64));
    CHECK_CU(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)(uintptr_t)pinned));
    ASSERT_EQ_INT(type, CU_MEMORYTYPE_HOST);
    CUdeviceptr m;
    int managed;
    CHECK_CU(cuMemAllocManaged(&m, 4096, CU_MEM_ATTACH_GLOBAL));
    CHECK_CU(cuPointerGetAttribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, m));
    ASSERT_EQ_INT(managed, 1);
}

TEST(unified_copies_and_copy_bounds)
{
    sim_setup();
    CUdeviceptr a, b;
    CHECK_CU(cuMemAlloc(&a, 4096));
    CHECK_CU(cuMemAlloc(&b, 4096));
    uint32_t h[1024], g[1024];
    for (int i = 0; i < 1024; i++) h[i] = (uint32_t)i * 3u;
    CHECK_CU(cuMemcpy(a, (CUdeviceptr)(uintptr_t)h, sizeof h));       /* H -> D */
    CHECK_CU(cuMemcpy(b, a, sizeof h));                                 /* D -> D */
    CHECK_CU(cuMemcpyAsync((CUdeviceptr)(uintptr_t)g, b, sizeof g, NULL)); /* D -> H */
    CHECK_CU(cuStreamSynchronize(NULL));
    for (int i = 0; i < 1024; i++) ASSERT_EQ_INT(g[i], i * 3);
    CHECK_CU(cuMemcpyDtoD(b + 100, a, 1000));
    /* past the end of an allocation, by one byte */
    ASSERT_CU(cuMemcpyHtoD(a + 1, h, 4096), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemcpyDtoH(g, a + 4095, 2), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemcpyDtoD(b, a + 8, 4096), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemsetD32(a + 4, 0, 1024), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemsetD32(a + 2, 0, 4), CUDA_ERROR_INVALID_VALUE); /* misaligned */
    ASSERT_CU(cuMemcpyHtoDAsync(a, h, 8192, NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemsetD16(a + 2, 0x1234, 3));
    uint16_t s[4];
    CHECK_CU(cuMemcpyDtoH(s, a, 8));
    ASSERT_EQ_INT(s[1], 0x1234);
    ASSERT_EQ_INT(s[3], 0x1234);
    CHECK_CU(cuMemcpyHtoD(a, h, 0)); /* zero bytes is fine */
}

TEST(peer_copies_between_two_devices)
{
    /* a private state file with two GPUs */
    setenv("GPUFUSE_SIM_STATE", gf_test_tmp_path("two-gpus"), 1);
    setenv("GPUFUSE_SIM_GPUS", "H100:2", 1);
    CHECK_CU(cuInit(0));
    int count;
    CHECK_CU(cuDeviceGetCount(&count));
    ASSERT_EQ_INT(count, 2);
    CUcontext c0, c1;
    CHECK_CU(cuCtxCreate(&c0, NULL, 0, 0));
    CHECK_CU(cuCtxCreate(&c1, NULL, 0, 1));
    int can;
    CHECK_CU(cuDeviceCanAccessPeer(&can, 0, 1));
    ASSERT_EQ_INT(can, 1);
    CUdeviceptr d1;
    CHECK_CU(cuMemAlloc(&d1, 4096)); /* on device 1 (c1 is current) */
    CHECK_CU(cuMemsetD32(d1, 0xabcd, 1024));
    CHECK_CU(cuCtxPushCurrent(c0));
    CUdeviceptr d0;
    CHECK_CU(cuMemAlloc(&d0, 4096));
    CHECK_CU(cuMemcpyPeer(d0, c0, d1, c1, 4096));
    uint32_t h[1024];
    CHECK_CU(cuMemcpyDtoH(h, d0, sizeof h));
    for (int i = 0; i < 1024; i++) ASSERT_EQ_INT(h[i], 0xabcd);
    CHECK_CU(cuCtxEnablePeerAccess(c1, 0));
    ASSERT_CU(cuCtxEnablePeerAccess(c1, 0), CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED);
    CHECK_CU(cuCtxDisablePeerAccess(c1));
    ASSERT_CU(cuCtxDisablePeerAccess(c1), CUDA_ERROR_PEER_ACCESS_NOT_ENABLED);
    int ord;
    CHECK_CU(cuPointerGetAttribute(&ord, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, d1));
    ASSERT_EQ_INT(ord, 1);
    CHECK_CU(cuCtxDestroy(c0));
    CHECK_CU(cuCtxDestroy(c1));
    unlink(getenv("GPUFUSE_SIM_STATE"));
}
