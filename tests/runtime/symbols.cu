// SPDX-License-Identifier: Apache-2.0
// __constant__ and __device__ variables: cudaMemcpyToSymbol/FromSymbol (sync, async, offset),
// cudaGetSymbolAddress/Size, kernels reading constants and updating a device counter.
#include <vector>

#include "rt_test.h"

__constant__ float coeff[8];
__device__ int counter;
__device__ float table[256];

__global__ void poly(const float *x, float *y, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = 0.0f;
    for (int k = 7; k >= 0; k--) v = v * x[i] + coeff[k];
    y[i] = v + table[i % 256];
    atomicAdd(&counter, 1);
}

RT_TEST(constant_and_device_symbols)
{
    const int n = 3000;
    float c[8];
    for (int k = 0; k < 8; k++) c[k] = 0.125f * (k + 1) * (k % 2 ? -1 : 1);
    std::vector<float> tab(256), x(n), y(n), want(n);
    for (int i = 0; i < 256; i++) tab[i] = (float)i;
    for (int i = 0; i < n; i++) {
        x[i] = (float)(i % 10) * 0.1f;
        float v = 0;
        for (int k = 7; k >= 0; k--) v = v * x[i] + c[k];
        want[i] = v + tab[i % 256];
    }
    // coeff in two halves: the offset form.
    CHECK(cudaMemcpyToSymbol(coeff, c, 4 * sizeof(float)));
    CHECK(cudaMemcpyToSymbol(coeff, c + 4, 4 * sizeof(float), 4 * sizeof(float)));
    CHECK(cudaMemcpyToSymbolAsync(table, tab.data(), sizeof(float) * 256, 0, cudaMemcpyHostToDevice, 0));
    int zero = 0;
    CHECK(cudaMemcpyToSymbol(counter, &zero, sizeof zero));
    float *dx, *dy;
    CHECK(cudaMalloc(&dx, n * sizeof(float)));
    CHECK(cudaMalloc(&dy, n * sizeof(float)));
    CHECK(cudaMemcpy(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    poly<<<(n + 127) / 128, 128>>>(dx, dy, n);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(y.data(), dy, n * sizeof(float), cudaMemcpyDeviceToHost));
    if (!rt_check_all("poly", y.data(), want.data(), n, 1e-5)) return false;
    int got = -1;
    CHECK(cudaMemcpyFromSymbol(&got, counter, sizeof got));
    EXPECT(got == n, "counter %d, want %d", got, n);
    float back[8];
    CHECK(cudaMemcpyFromSymbolAsync(back, coeff, sizeof back, 0, cudaMemcpyDeviceToHost, 0));
    CHECK(cudaStreamSynchronize(0));
    if (!rt_check_all("coeff", back, c, 8, 0)) return false;
    CHECK(cudaFree(dx));
    CHECK(cudaFree(dy));
    return true;
}

RT_TEST(symbol_address_and_size)
{
    void *p = nullptr;
    size_t sz = 0;
    CHECK(cudaGetSymbolAddress(&p, table));
    CHECK(cudaGetSymbolSize(&sz, table));
    EXPECT(p != nullptr && sz == 256 * sizeof(float), "address %p size %zu", p, sz);
    // The address is ordinary device memory: copy through it.
    std::vector<float> v(256, 7.0f), back(256);
    CHECK(cudaMemcpy(p, v.data(), sz, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpyFromSymbol(back.data(), table, sz));
    if (!rt_check_all("table via address", back.data(), v.data(), 256, 0)) return false;
    CHECK(cudaGetSymbolSize(&sz, counter));
    EXPECT(sz == sizeof(int), "size %zu", sz);
    return true;
}

RT_TEST(symbol_errors)
{
    static int not_a_symbol;
    size_t sz;
    CHECK_ERR(cudaGetSymbolSize(&sz, &not_a_symbol), cudaErrorInvalidSymbol);
    CHECK_ERR(cudaGetLastError(), cudaErrorInvalidSymbol);
    float big[16] = {};
    CHECK_ERR(cudaMemcpyToSymbol(coeff, big, sizeof big), cudaErrorInvalidValue);
    CHECK_ERR(cudaMemcpyToSymbol(coeff, big, 4, 0, cudaMemcpyDeviceToHost), cudaErrorInvalidMemcpyDirection);
    CHECK_ERR(cudaGetLastError(), cudaErrorInvalidMemcpyDirection);
    CHECK(cudaGetLastError());
    return true;
}

int main()
{
    return rt_main("symbols");
}
