// SPDX-License-Identifier: Apache-2.0
// Built with --default-stream per-thread: stream 0 is each host thread's own stream, so the
// _ptsz/_ptds entry points are the ones called. Several threads launch and copy concurrently on
// their default streams and check every element; cudaStreamPerThread is used explicitly too.
// nvcc-flags: --default-stream per-thread
#include <thread>
#include <vector>

#include "rt_test.h"

__global__ void fill(int *v, int n, int base)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) v[i] = base + i * 3;
}

static bool worker(int id, bool *ok)
{
    const int n = 2000;
    int *d;
    std::vector<int> h(n), want(n);
    for (int i = 0; i < n; i++) want[i] = id * 100000 + i * 3;
    *ok = false;
    CHECK(cudaMalloc(&d, n * sizeof(int)));
    CHECK(cudaMemset(d, 0, n * sizeof(int)));            // cudaMemset_ptds
    fill<<<(n + 127) / 128, 128>>>(d, n, id * 100000); // __cudaLaunchKernel_ptsz
    CHECK(cudaGetLastError());
    CHECK(cudaStreamSynchronize(0));                     // this thread's stream
    CHECK(cudaMemcpy(h.data(), d, n * sizeof(int), cudaMemcpyDeviceToHost)); // cudaMemcpy_ptds
    if (!rt_check_all("fill", h.data(), want.data(), n, 0)) return false;
    // The same through the explicit handle.
    CHECK(cudaMemsetAsync(d, 0, n * sizeof(int), cudaStreamPerThread));
    fill<<<(n + 127) / 128, 128, 0, cudaStreamPerThread>>>(d, n, id * 100000);
    CHECK(cudaMemcpyAsync(h.data(), d, n * sizeof(int), cudaMemcpyDeviceToHost, cudaStreamPerThread));
    CHECK(cudaStreamSynchronize(cudaStreamPerThread));
    if (!rt_check_all("fill (cudaStreamPerThread)", h.data(), want.data(), n, 0)) return false;
    CHECK(cudaFree(d));
    *ok = true;
    return true;
}

RT_TEST(threads_on_their_default_streams)
{
    const int nthreads = 4;
    bool ok[nthreads];
    std::vector<std::thread> ts;
    for (int t = 0; t < nthreads; t++) ts.emplace_back([t, &ok] { worker(t, &ok[t]); });
    for (auto &t : ts) t.join();
    for (int t = 0; t < nthreads; t++) EXPECT(ok[t], "thread %d failed", t);
    return true;
}

RT_TEST(per_thread_stream_is_not_legacy)
{
    unsigned long long a = 0, b = 0;
    CHECK(cudaStreamGetId(0, &a));
    CHECK(cudaStreamGetId(cudaStreamLegacy, &b));
    EXPECT(a != b, "stream 0 (id %llu) is the legacy stream (id %llu)", a, b);
    return true;
}

int main()
{
    return rt_main("ptds");
}
