// SPDX-License-Identifier: Apache-2.0
// A shared-memory tree reduction per block, blocks combined with atomicAdd; checked against
// the CPU sum (integers, so exactly), plus a per-bin histogram with atomics on every element.
#include <vector>

#include "rt_test.h"

__global__ void block_sum(const int *in, int n, unsigned long long *total)
{
    extern __shared__ int buf[];
    int t = threadIdx.x;
    int i = blockIdx.x * blockDim.x * 2 + t;
    int v = 0;
    if (i < n) v += in[i];
    if (i + blockDim.x < n) v += in[i + blockDim.x];
    buf[t] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) buf[t] += buf[t + s];
        __syncthreads();
    }
    if (t == 0) atomicAdd(total, (unsigned long long)buf[0]);
}

__global__ void histogram(const int *in, int n, int *bins, int nbins)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        atomicAdd(&bins[in[i] % nbins], 1);
}

static const int N = 1 << 16;

RT_TEST(shared_memory_sum)
{
    std::vector<int> h(N);
    unsigned long long want = 0;
    for (int i = 0; i < N; i++) {
        h[i] = (i * 7919) % 1000;
        want += (unsigned long long)h[i];
    }
    int *d;
    unsigned long long *dtotal;
    CHECK(cudaMalloc(&d, N * sizeof(int)));
    CHECK(cudaMalloc(&dtotal, sizeof *dtotal));
    CHECK(cudaMemcpy(d, h.data(), N * sizeof(int), cudaMemcpyHostToDevice));
    CHECK(cudaMemset(dtotal, 0, sizeof *dtotal));
    const int threads = 256;
    block_sum<<<(N + threads * 2 - 1) / (threads * 2), threads, threads * sizeof(int)>>>(d, N, dtotal);
    CHECK(cudaGetLastError());
    unsigned long long got = 0;
    CHECK(cudaMemcpy(&got, dtotal, sizeof got, cudaMemcpyDeviceToHost));
    EXPECT(got == want, "sum %llu, want %llu", got, want);
    CHECK(cudaFree(d));
    CHECK(cudaFree(dtotal));
    return true;
}

RT_TEST(atomic_histogram)
{
    const int nbins = 37;
    std::vector<int> h(N), want(nbins, 0), got(nbins);
    for (int i = 0; i < N; i++) {
        h[i] = (i * 31 + 7) % 1009;
        want[h[i] % nbins]++;
    }
    int *d, *dbins;
    CHECK(cudaMalloc(&d, N * sizeof(int)));
    CHECK(cudaMalloc(&dbins, nbins * sizeof(int)));
    CHECK(cudaMemcpy(d, h.data(), N * sizeof(int), cudaMemcpyHostToDevice));
    CHECK(cudaMemset(dbins, 0, nbins * sizeof(int)));
    histogram<<<32, 128>>>(d, N, dbins, nbins);
    CHECK(cudaMemcpy(got.data(), dbins, nbins * sizeof(int), cudaMemcpyDeviceToHost));
    bool ok = rt_check_all("histogram", got.data(), want.data(), nbins, 0);
    CHECK(cudaFree(d));
    CHECK(cudaFree(dbins));
    return ok;
}

int main()
{
    return rt_main("reduce");
}
