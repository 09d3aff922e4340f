// SPDX-License-Identifier: Apache-2.0
// saxpy split over several streams with pinned memory, async copies, events (ordering and
// elapsed time), cross-stream waits and host functions; every element checked.
#include <atomic>
#include <vector>

#include "rt_test.h"

__global__ void saxpy(int n, float a, const float *x, float *y)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        y[i] = a * x[i] + y[i];
}

__global__ void scale(int n, float s, float *y)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] *= s;
}

static const int NSTREAMS = 4;
static const int CHUNK = 4096;
static const int N = NSTREAMS * CHUNK;

RT_TEST(streams_events_elapsed)
{
    float *hx, *hy;
    CHECK(cudaMallocHost(&hx, N * sizeof(float)));
    CHECK(cudaHostAlloc(&hy, N * sizeof(float), cudaHostAllocDefault));
    std::vector<float> want(N);
    for (int i = 0; i < N; i++) {
        hx[i] = (float)(i % 97);
        hy[i] = (float)(i % 13) - 6.0f;
        want[i] = 2.5f * hx[i] + hy[i];
    }
    float *dx, *dy;
    CHECK(cudaMalloc(&dx, N * sizeof(float)));
    CHECK(cudaMalloc(&dy, N * sizeof(float)));
    cudaStream_t s[NSTREAMS];
    cudaEvent_t start, stop;
    CHECK(cudaEventCreate(&start));
    CHECK(cudaEventCreate(&stop));
    for (int k = 0; k < NSTREAMS; k++) CHECK(cudaStreamCreateWithFlags(&s[k], cudaStreamNonBlocking));
    CHECK(cudaEventRecord(start, s[0]));
    for (int k = 0; k < NSTREAMS; k++) {
        size_t off = (size_t)k * CHUNK;
        CHECK(cudaMemcpyAsync(dx + off, hx + off, CHUNK * sizeof(float), cudaMemcpyHostToDevice, s[k]));
        CHECK(cudaMemcpyAsync(dy + off, hy + off, CHUNK * sizeof(float), cudaMemcpyHostToDevice, s[k]));
        saxpy<<<8, 128, 0, s[k]>>>(CHUNK, 2.5f, dx + off, dy + off);
        CHECK(cudaGetLastError());
        CHECK(cudaMemcpyAsync(hy + off, dy + off, CHUNK * sizeof(float), cudaMemcpyDeviceToHost, s[k]));
    }
    // stop on stream 0 after every other stream finished.
    for (int k = 1; k < NSTREAMS; k++) {
        cudaEvent_t done;
        CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
        CHECK(cudaEventRecord(done, s[k]));
        CHECK(cudaStreamWaitEvent(s[0], done, 0));
        CHECK(cudaEventDestroy(done));
    }
    CHECK(cudaEventRecord(stop, s[0]));
    CHECK(cudaEventSynchronize(stop));
    float ms = -1;
    CHECK(cudaEventElapsedTime(&ms, start, stop));
    EXPECT(ms >= 0.0f && ms < 60000.0f, "elapsed %.3f ms", ms);
    for (int k = 0; k < NSTREAMS; k++) CHECK(cudaStreamQuery(s[k]));
    bool ok = rt_check_all("saxpy", hy, want.data(), N, 1e-6);
    for (int k = 0; k < NSTREAMS; k++) CHECK(cudaStreamDestroy(s[k]));
    CHECK(cudaEventDestroy(start));
    CHECK(cudaEventDestroy(stop));
    CHECK(cudaFree(dx));
    CHECK(cudaFree(dy));
    CHECK(cudaFreeHost(hx));
    CHECK(cudaFreeHost(hy));
    return ok;
}

static std::atomic<int> host_step;
static void CUDART_CB host_fn(void *arg)
{
    // Runs after the kernel before it on the stream: the data must already be scaled.
    float *h = (float *)arg;
    if (h[0] == 4.0f) host_step.fetch_add(1);
}

RT_TEST(host_func_and_legacy_stream)
{
    const int n = 1000;
    float *h;
    CHECK(cudaMallocHost(&h, n * sizeof(float)));
    for (int i = 0; i < n; i++) h[i] = 2.0f;
    float *d;
    CHECK(cudaMalloc(&d, n * sizeof(float)));
    cudaStream_t s;
    CHECK(cudaStreamCreate(&s)); // blocking: orders with the legacy default stream
    CHECK(cudaMemcpyAsync(d, h, n * sizeof(float), cudaMemcpyHostToDevice, 0));
    scale<<<(n + 255) / 256, 256, 0, s>>>(n, 2.0f, d); // after the legacy copy
    CHECK(cudaMemcpyAsync(h, d, n * sizeof(float), cudaMemcpyDeviceToHost, s));
    host_step = 0;
    CHECK(cudaLaunchHostFunc(s, host_fn, h));
    CHECK(cudaStreamSynchronize(s));
    EXPECT(host_step.load() == 1, "host function saw h[0] = %g, step %d", h[0], host_step.load());
    std::vector<float> want(n, 4.0f);
    bool ok = rt_check_all("scale", h, want.data(), n, 0);
    unsigned flags = 99;
    CHECK(cudaStreamGetFlags(s, &flags));
    EXPECT(flags == cudaStreamDefault, "flags %u", flags);
    CHECK(cudaStreamDestroy(s));
    CHECK(cudaFree(d));
    CHECK(cudaFreeHost(h));
    return ok;
}

int main()
{
    return rt_main("saxpy_streams");
}
