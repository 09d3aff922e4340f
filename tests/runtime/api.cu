// SPDX-License-Identifier: Apache-2.0
// The rest of the surface programs lean on: devices and properties, attributes, limits,
// versions, driver entry points, kernel attributes and occupancy, memory kinds (mapped,
// stream-ordered) and pointer attributes, a vGPU's VRAM limit (RT_EXPECT_VRAM), and a second
// device when there is one.
#include <cstring>
#include <vector>

#include "rt_test.h"

__global__ void add_one(int *v, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) v[i] += 1;
}

__global__ void dyn_shared(int *out)
{
    extern __shared__ int s[];
    s[threadIdx.x] = threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = s[blockDim.x - 1 - threadIdx.x];
}

RT_TEST(device_properties)
{
    int n = 0, dev = -1, v = 0;
    CHECK(cudaGetDeviceCount(&n));
    EXPECT(n >= 1, "%d devices", n);
    CHECK(cudaGetDevice(&dev));
    EXPECT(dev == 0, "device %d", dev);
    cudaDeviceProp p;
    CHECK(cudaGetDeviceProperties(&p, 0));
    EXPECT(p.name[0] && p.totalGlobalMem > 0 && p.major >= 1 && p.multiProcessorCount > 0 &&
               p.maxThreadsPerBlock >= 256 && p.warpSize == 32,
           "name '%s' mem %zu cc %d.%d sms %d threads %d warp %d", p.name, p.totalGlobalMem, p.major,
           p.minor, p.multiProcessorCount, p.maxThreadsPerBlock, p.warpSize);
    CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, 0));
    EXPECT(v == p.multiProcessorCount, "attribute %d, property %d", v, p.multiProcessorCount);
    CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrComputeCapabilityMajor, 0));
    EXPECT(v == p.major, "attribute %d, property %d", v, p.major);
    size_t freeb = 0, total = 0;
    CHECK(cudaMemGetInfo(&freeb, &total));
    EXPECT(total == p.totalGlobalMem, "cudaMemGetInfo total %zu, totalGlobalMem %zu", total, p.totalGlobalMem);
    CHECK_ERR(cudaGetDeviceProperties(&p, n), cudaErrorInvalidDevice);
    CHECK_ERR(cudaDeviceGetAttribute(&v, cudaDevAttrWarpSize, -1), cudaErrorInvalidDevice);
    cudaGetLastError();
    return true;
}

RT_TEST(versions_and_limits)
{
    int rv = 0, dv = 0;
    CHECK(cudaRuntimeGetVersion(&rv));
    CHECK(cudaDriverGetVersion(&dv));
    EXPECT(rv == CUDART_VERSION && dv >= 12000, "runtime %d driver %d", rv, dv);
    size_t stack = 0;
    CHECK(cudaDeviceGetLimit(&stack, cudaLimitStackSize));
    CHECK(cudaDeviceSetLimit(cudaLimitStackSize, 4096));
    CHECK(cudaDeviceGetLimit(&stack, cudaLimitStackSize));
    EXPECT(stack >= 4096, "stack %zu", stack);
    int lo = 0, hi = 0;
    CHECK(cudaDeviceGetStreamPriorityRange(&lo, &hi));
    EXPECT(hi <= lo, "priorities [%d, %d]", lo, hi);
    return true;
}

RT_TEST(driver_entry_point)
{
    void *fn = nullptr;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    CHECK(cudaGetDriverEntryPointByVersion("cuDeviceGetCount", &fn, 12000, cudaEnableDefault, &q));
    EXPECT(fn && q == cudaDriverEntryPointSuccess, "fn %p status %d", fn, (int)q);
    int n = -1, rn = -1;
    typedef int (*count_fn)(int *);
    EXPECT(((count_fn)fn)(&n) == 0, "cuDeviceGetCount through the entry point failed");
    CHECK(cudaGetDeviceCount(&rn));
    EXPECT(n == rn, "driver says %d devices, runtime %d", n, rn);
    fn = (void *)1;
    CHECK(cudaGetDriverEntryPointByVersion("cuNoSuchFunction", &fn, 12000, cudaEnableDefault, &q));
    EXPECT(!fn && q == cudaDriverEntryPointSymbolNotFound, "fn %p status %d", fn, (int)q);
    return true;
}

RT_TEST(kernel_attributes_and_occupancy)
{
    cudaFuncAttributes a;
    CHECK(cudaFuncGetAttributes(&a, add_one));
    EXPECT(a.maxThreadsPerBlock >= 256, "maxThreadsPerBlock %d", a.maxThreadsPerBlock);
    int blocks = 0;
    CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, add_one, 256, 0));
    EXPECT(blocks >= 1, "%d blocks per SM", blocks);
    int min_grid = 0, block = 0;
    CHECK(cudaOccupancyMaxPotentialBlockSize(&min_grid, &block, add_one, 0, 0));
    EXPECT(block >= 32 && block <= a.maxThreadsPerBlock && min_grid >= 1, "grid %d block %d", min_grid, block);
    // Opting in to more dynamic shared memory than the 48 KiB default.
    CHECK(cudaFuncSetAttribute(dyn_shared, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024));
    CHECK(cudaFuncGetAttributes(&a, dyn_shared));
    EXPECT(a.maxDynamicSharedSizeBytes == 64 * 1024, "max dynamic shared %d", a.maxDynamicSharedSizeBytes);
    int *d;
    CHECK(cudaMalloc(&d, 256 * sizeof(int)));
    dyn_shared<<<1, 256, 256 * sizeof(int)>>>(d);
    CHECK(cudaGetLastError());
    std::vector<int> h(256), want(256);
    CHECK(cudaMemcpy(h.data(), d, 256 * sizeof(int), cudaMemcpyDeviceToHost));
    for (int i = 0; i < 256; i++) want[i] = 255 - i;
    if (!rt_check_all("dyn_shared", h.data(), want.data(), 256, 0)) return false;
    const char *name = nullptr;
    CHECK(cudaFuncGetName(&name, add_one));
    EXPECT(name && !strcmp(name, "_Z7add_onePii"), "name %s", name ? name : "(null)");
    CHECK(cudaFree(d));
    return true;
}

RT_TEST(mapped_host_memory)
{
    // Registered host memory, reached by a kernel through its device pointer.
    const int n = 4096;
    std::vector<int> reg(n);
    for (int i = 0; i < n; i++) reg[i] = i;
    CHECK(cudaHostRegister(reg.data(), n * sizeof(int), cudaHostRegisterMapped));
    int *dreg = nullptr;
    CHECK(cudaHostGetDevicePointer((void **)&dreg, reg.data(), 0));
    add_one<<<n / 256, 256>>>(dreg, n);
    CHECK(cudaDeviceSynchronize());
    for (int i = 0; i < n; i++) EXPECT(reg[i] == i + 1, "reg[%d] = %d", i, reg[i]);
    cudaPointerAttributes pa;
    CHECK(cudaPointerGetAttributes(&pa, reg.data()));
    EXPECT(pa.type == cudaMemoryTypeHost, "registered memory type %d", (int)pa.type);
    CHECK(cudaHostUnregister(reg.data()));
    return true;
}

RT_TEST(stream_ordered_memory)
{
    const int n = 4096;
    cudaStream_t s;
    CHECK(cudaStreamCreate(&s));
    int *d = nullptr;
    CHECK(cudaMallocAsync((void **)&d, n * sizeof(int), s));
    CHECK(cudaMemsetAsync(d, 0, n * sizeof(int), s));
    add_one<<<n / 256, 256, 0, s>>>(d, n);
    std::vector<int> h(n), ones(n, 1);
    CHECK(cudaMemcpyAsync(h.data(), d, n * sizeof(int), cudaMemcpyDeviceToHost, s));
    CHECK(cudaFreeAsync(d, s));
    CHECK(cudaStreamSynchronize(s));
    if (!rt_check_all("mallocAsync", h.data(), ones.data(), n, 0)) return false;
    CHECK(cudaStreamDestroy(s));
    return true;
}

RT_TEST(pointer_attributes)
{
    int *d = nullptr;
    cudaPointerAttributes pa;
    CHECK(cudaMalloc((void **)&d, 64));
    CHECK(cudaPointerGetAttributes(&pa, d));
    EXPECT(pa.type == cudaMemoryTypeDevice && pa.device == 0 && pa.devicePointer == d,
           "type %d device %d pointer %p", (int)pa.type, pa.device, pa.devicePointer);
    int local = 0;
    CHECK(cudaPointerGetAttributes(&pa, &local));
    EXPECT(pa.type == cudaMemoryTypeUnregistered, "plain host memory type %d", (int)pa.type);
    CHECK(cudaFree(d));
    return true;
}

RT_TEST(peer_copy_within_one_device)
{
    std::vector<int> h(16), ones(16, 1);
    int *d, *d2;
    CHECK(cudaMalloc((void **)&d, 64));
    CHECK(cudaMalloc((void **)&d2, 64));
    CHECK(cudaMemcpy(d, ones.data(), 64, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpyPeer(d2, 0, d, 0, 64));
    CHECK(cudaMemcpy(h.data(), d2, 64, cudaMemcpyDeviceToHost));
    if (!rt_check_all("peer", h.data(), ones.data(), 16, 0)) return false;
    CHECK(cudaFree(d));
    CHECK(cudaFree(d2));
    return true;
}

// A vGPU's VRAM limit (gpufuse run --vram, or a remote vGPU's): with RT_EXPECT_VRAM=bytes the
// device reports exactly that much memory and allocations stop there.
RT_TEST(vram_limit)
{
    const char *env = getenv("RT_EXPECT_VRAM");
    if (!env || !*env) RT_SKIP("no VRAM limit to check here (RT_EXPECT_VRAM unset)");
    const size_t want = strtoull(env, nullptr, 0);
    size_t freeb = 0, total = 0;
    CHECK(cudaMemGetInfo(&freeb, &total));
    EXPECT(total == want && freeb <= want, "cudaMemGetInfo free %zu total %zu, want total %zu",
           freeb, total, want);
    cudaDeviceProp p;
    CHECK(cudaGetDeviceProperties(&p, 0));
    EXPECT(p.totalGlobalMem == want, "totalGlobalMem %zu, want %zu", p.totalGlobalMem, want);
    void *q = nullptr;
    CHECK_ERR(cudaMalloc(&q, want + 1), cudaErrorMemoryAllocation);
    CHECK_ERR(cudaGetLastError(), cudaErrorMemoryAllocation);
    // Fill it in 64 MiB pieces: what was free fits (to a piece), the piece past it is refused.
    const size_t chunk = (size_t)64 << 20;
    std::vector<void *> held;
    cudaError_t e = cudaSuccess;
    while (held.size() * chunk <= want) {
        e = cudaMalloc(&q, chunk);
        if (e != cudaSuccess) break;
        held.push_back(q);
    }
    const size_t got = held.size() * chunk;
    for (void *h : held) CHECK(cudaFree(h));
    EXPECT(e == cudaErrorMemoryAllocation,
           "allocating past the limit: got %s after %zu bytes (limit %zu)", cudaGetErrorName(e), got,
           want);
    EXPECT(got + chunk > freeb, "only %zu of %zu free bytes could be allocated", got, freeb);
    CHECK_ERR(cudaGetLastError(), cudaErrorMemoryAllocation); // recorded, not sticky
    CHECK(cudaMalloc(&q, chunk));
    CHECK(cudaFree(q));
    return true;
}

RT_TEST(second_device)
{
    int n = 0;
    CHECK(cudaGetDeviceCount(&n));
    if (n < 2) RT_SKIP("one device here (the sim run uses GPUFUSE_SIM_GPUS=H100:2)");
    const int cnt = 1024;
    std::vector<int> ones(cnt, 1), h(cnt), twos(cnt, 2);
    int *d0, *d1;
    CHECK(cudaSetDevice(0));
    CHECK(cudaMalloc((void **)&d0, cnt * sizeof(int)));
    CHECK(cudaMemcpy(d0, ones.data(), cnt * sizeof(int), cudaMemcpyHostToDevice));
    CHECK(cudaSetDevice(1));
    int dev = -1;
    CHECK(cudaGetDevice(&dev));
    EXPECT(dev == 1, "device %d", dev);
    CHECK(cudaMalloc((void **)&d1, cnt * sizeof(int)));
    cudaPointerAttributes pa;
    CHECK(cudaPointerGetAttributes(&pa, d1));
    EXPECT(pa.device == 1, "allocation on device %d", pa.device);
    CHECK(cudaMemcpyPeer(d1, 1, d0, 0, cnt * sizeof(int)));
    add_one<<<cnt / 256, 256>>>(d1, cnt);
    CHECK(cudaMemcpy(h.data(), d1, cnt * sizeof(int), cudaMemcpyDeviceToHost));
    if (!rt_check_all("on device 1", h.data(), twos.data(), cnt, 0)) return false;
    CHECK(cudaFree(d1));
    CHECK(cudaSetDevice(0));
    CHECK(cudaFree(d0));
    return true;
}

int main()
{
    return rt_main("api");
}
