// SPDX-License-Identifier: Apache-2.0
// Error semantics as NVIDIA's CUDA 13 runtime and driver have them (each expectation seen on an
// H200 with driver 580 by tests/gpu/run): a launch geometry the device cannot run gives
// cudaErrorInvalidValue, a pointer that is no kernel cudaErrorInvalidResourceHandle, out of
// memory gives cudaErrorMemoryAllocation and is not sticky, cudaGetLastError returns and clears,
// cudaPeekAtLastError does not, cudaErrorNotReady is never recorded, an illegal address poisons
// the whole process (cudaDeviceReset does not bring it back); names and strings.
#include <cstdint>
#include <cstring>
#include <vector>

#include "rt_test.h"

__global__ void touch(int *p, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) p[i] = i;
}

// The sim holds the device busy for ns nanoseconds when a kernel has this name.
extern "C" __global__ void gpufuse_sim_spin(unsigned long long ns) {}

RT_TEST(bad_launch_configuration)
{
    int *d;
    CHECK(cudaMalloc(&d, 1024 * sizeof(int)));
    touch<<<1, 4096>>>(d, 1024); // more threads than a block may have
    CHECK_ERR(cudaPeekAtLastError(), cudaErrorInvalidValue);
    CHECK_ERR(cudaPeekAtLastError(), cudaErrorInvalidValue); // peek does not clear
    CHECK_ERR(cudaGetLastError(), cudaErrorInvalidValue);
    CHECK(cudaGetLastError()); // get cleared it
    touch<<<0, 32>>>(d, 1024); // an empty grid
    CHECK_ERR(cudaGetLastError(), cudaErrorInvalidValue);
    touch<<<dim3(1, 1, 1), dim3(32, 1, 128)>>>(d, 1024); // z above 64
    CHECK_ERR(cudaGetLastError(), cudaErrorInvalidValue);
    touch<<<dim3(1, 70000, 1), dim3(32)>>>(d, 1024); // grid y above 65535
    CHECK_ERR(cudaGetLastError(), cudaErrorInvalidValue);
    touch<<<1, 32, 1 << 20>>>(d, 1024); // more dynamic shared memory than a block may have
    CHECK_ERR(cudaGetLastError(), cudaErrorInvalidValue);
    void *args[] = {&d, &d};
    CHECK_ERR(cudaLaunchKernel((const void *)touch, dim3(1), dim3(2048), args, 0, 0),
              cudaErrorInvalidValue);
    CHECK_ERR(cudaGetLastError(), cudaErrorInvalidValue);
    CHECK_ERR(cudaLaunchKernel((const void *)touch, dim3(0), dim3(32), args, 0, 0),
              cudaErrorInvalidValue);
    CHECK_ERR(cudaGetLastError(), cudaErrorInvalidValue);
    // The device is fine afterwards.
    touch<<<4, 256>>>(d, 1024);
    CHECK(cudaGetLastError());
    CHECK(cudaDeviceSynchronize());
    std::vector<int> h(1024);
    CHECK(cudaMemcpy(h.data(), d, 1024 * sizeof(int), cudaMemcpyDeviceToHost));
    std::vector<int> want(1024);
    for (int i = 0; i < 1024; i++) want[i] = i;
    if (!rt_check_all("touch", h.data(), want.data(), 1024, 0)) return false;
    CHECK(cudaFree(d));
    return true;
}

RT_TEST(out_of_memory_is_not_sticky)
{
    size_t freeb = 0, total = 0;
    CHECK(cudaMemGetInfo(&freeb, &total));
    EXPECT(total > 0 && freeb <= total, "free %zu total %zu", freeb, total);
    void *p = nullptr;
    CHECK_ERR(cudaMalloc(&p, total + ((size_t)1 << 30)), cudaErrorMemoryAllocation);
    CHECK_ERR(cudaPeekAtLastError(), cudaErrorMemoryAllocation);
    CHECK_ERR(cudaGetLastError(), cudaErrorMemoryAllocation);
    CHECK(cudaGetLastError());
    CHECK(cudaMalloc(&p, 1 << 20));
    CHECK(cudaFree(p));
    return true;
}

RT_TEST(invalid_arguments)
{
    int n = -1;
    CHECK_ERR(cudaSetDevice(12345), cudaErrorInvalidDevice);
    CHECK_ERR(cudaGetLastError(), cudaErrorInvalidDevice);
    CHECK(cudaGetDevice(&n));
    EXPECT(n == 0, "device %d after a failed cudaSetDevice", n);
    CHECK_ERR(cudaMemcpy(&n, &n, 4, (cudaMemcpyKind)42), cudaErrorInvalidMemcpyDirection);
    CHECK_ERR(cudaStreamDestroy(cudaStreamPerThread), cudaErrorInvalidResourceHandle);
    static int not_a_kernel;
    void *args[] = {nullptr};
    CHECK_ERR(cudaLaunchKernel(&not_a_kernel, dim3(1), dim3(1), args, 0, 0),
              cudaErrorInvalidResourceHandle);
    CHECK_ERR(cudaGetLastError(), cudaErrorInvalidResourceHandle);
    CHECK(cudaGetLastError());
    cudaFuncAttributes fa;
    CHECK_ERR(cudaFuncGetAttributes(nullptr, (const void *)touch), cudaErrorInvalidValue);
    CHECK_ERR(cudaFuncGetAttributes(&fa, &not_a_kernel), cudaErrorInvalidResourceHandle);
    CHECK_ERR(cudaGetLastError(), cudaErrorInvalidResourceHandle);
    return true;
}

RT_TEST(not_ready_is_not_recorded)
{
    cudaStream_t s;
    CHECK(cudaStreamCreate(&s));
    gpufuse_sim_spin<<<1, 1, 0, s>>>(300ull * 1000 * 1000);
    cudaError_t q = cudaStreamQuery(s);
    EXPECT(q == cudaErrorNotReady || q == cudaSuccess, "query: %s", cudaGetErrorName(q));
    CHECK(cudaGetLastError());
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaStreamQuery(s));
    CHECK(cudaStreamDestroy(s));
    return true;
}

RT_TEST(names_and_strings)
{
    EXPECT(!strcmp(cudaGetErrorName(cudaSuccess), "cudaSuccess"), "%s", cudaGetErrorName(cudaSuccess));
    EXPECT(!strcmp(cudaGetErrorName(cudaErrorMemoryAllocation), "cudaErrorMemoryAllocation"), "%s",
           cudaGetErrorName(cudaErrorMemoryAllocation));
    EXPECT(!strcmp(cudaGetErrorString(cudaErrorMemoryAllocation), "out of memory"), "%s",
           cudaGetErrorString(cudaErrorMemoryAllocation));
    EXPECT(!strcmp(cudaGetErrorString(cudaErrorInvalidConfiguration), "invalid configuration argument"),
           "%s", cudaGetErrorString(cudaErrorInvalidConfiguration));
    // Every code has a name and a string.
    for (int e = 0; e < 1000; e++) {
        const char *name = cudaGetErrorName((cudaError_t)e), *str = cudaGetErrorString((cudaError_t)e);
        EXPECT(name && str && *name && *str, "code %d", e);
    }
    return true;
}

// Last: it poisons the process. Every later call that needs the device fails, in this context
// and any other; cudaGetLastError clears the recorded error but the next such call records it
// again; cudaDeviceReset returns cudaSuccess yet the device cannot be used again (the primary
// context cannot be made: cudaErrorDevicesUnavailable). Calls that do not touch the device work.
RT_TEST(illegal_address_poisons_the_process)
{
    int *ok = nullptr;
    CHECK(cudaMalloc(&ok, 4096));
    touch<<<1, 32>>>((int *)(uintptr_t)0x10, 32);
    CHECK(cudaGetLastError()); // the launch itself was fine
    CHECK_ERR(cudaDeviceSynchronize(), cudaErrorIllegalAddress);
    CHECK_ERR(cudaDeviceSynchronize(), cudaErrorIllegalAddress);
    CHECK_ERR(cudaPeekAtLastError(), cudaErrorIllegalAddress);
    CHECK_ERR(cudaGetLastError(), cudaErrorIllegalAddress);
    CHECK(cudaGetLastError()); // cleared, although the process stays poisoned
    void *p = nullptr;
    CHECK_ERR(cudaMalloc(&p, 64), cudaErrorIllegalAddress);
    CHECK_ERR(cudaGetLastError(), cudaErrorIllegalAddress);
    int h[32];
    CHECK_ERR(cudaMemcpy(h, ok, sizeof h, cudaMemcpyDeviceToHost), cudaErrorIllegalAddress);
    cudaStream_t s;
    CHECK_ERR(cudaStreamCreate(&s), cudaErrorIllegalAddress);
    size_t fr, tot;
    CHECK_ERR(cudaMemGetInfo(&fr, &tot), cudaErrorIllegalAddress);
    CHECK_ERR(cudaGetLastError(), cudaErrorIllegalAddress); // each failing call records it
    int n = 0;
    CHECK(cudaGetDeviceCount(&n));
    CHECK(cudaGetDevice(&n));
    CHECK(cudaSetDevice(0));
    CHECK(cudaGetLastError());
    CHECK(cudaDeviceReset());
    cudaGetLastError(); // NVIDIA's runtime records the fault here; what matters is what follows
    CHECK_ERR(cudaMalloc(&p, 4096), cudaErrorDevicesUnavailable);
    CHECK_ERR(cudaDeviceSynchronize(), cudaErrorDevicesUnavailable);
    return true;
}

int main()
{
    return rt_main("errors");
}
