// SPDX-License-Identifier: Apache-2.0
// Managed memory used from host and device: cudaMallocManaged buffers written by the host,
// updated by kernels, read back by the host; and a __managed__ variable on both sides.
#include "rt_test.h"

__managed__ int hits;
__managed__ float bias = 1.5f;

__global__ void inc(float *v, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        v[i] = v[i] * 2.0f + bias;
        atomicAdd(&hits, 1);
    }
}

// First, without touching a managed variable: nvcc's host code reads __managed__ variables
// through a pointer the runtime fills when the module loads, so a module that cannot load
// would crash the next test rather than fail it.
RT_TEST(module_loads)
{
    cudaFuncAttributes a;
    CHECK(cudaFuncGetAttributes(&a, inc));
    return true;
}

RT_TEST(managed_variable)
{
    // A __managed__ variable starts with its initializer, read and written from the host, and
    // its device address is its host address.
    EXPECT(bias == 1.5f, "bias %g, want its initializer 1.5", bias);
    void *p = nullptr;
    CHECK(cudaGetSymbolAddress(&p, bias));
    EXPECT(p == (void *)&bias, "device address %p, host address %p", p, (void *)&bias);
    return true;
}

RT_TEST(malloc_managed)
{
    const int n = 5000;
    float *v;
    CHECK(cudaMallocManaged(&v, n * sizeof(float)));
    for (int i = 0; i < n; i++) v[i] = (float)i;
    hits = 0;
    bias = 0.5f;
    inc<<<(n + 255) / 256, 256>>>(v, n);
    CHECK(cudaDeviceSynchronize());
    EXPECT(hits == n, "hits %d, want %d", hits, n);
    int bad = 0, first = -1;
    for (int i = 0; i < n; i++)
        if (v[i] != 2.0f * i + 0.5f) {
            if (first < 0) first = i;
            bad++;
        }
    EXPECT(bad == 0, "%d elements differ, first [%d] = %g", bad, first, first >= 0 ? v[first] : 0.0);
    cudaPointerAttributes a;
    CHECK(cudaPointerGetAttributes(&a, v));
    EXPECT(a.type == cudaMemoryTypeManaged, "type %d", (int)a.type);
    CHECK(cudaFree(v));
    return true;
}

int main()
{
    if (!rt_test_module_loads()) {
        printf("FAIL managed/module_loads\n");
        return 1;
    }
    return rt_main("managed");
}
