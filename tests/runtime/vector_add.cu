// SPDX-License-Identifier: Apache-2.0
// c = a + b through <<<>>>, cudaLaunchKernel and cudaLaunchKernelExC; every element checked.
#include <vector>

#include "rt_test.h"

__global__ void vector_add(const float *a, const float *b, float *c, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) c[i] = a[i] + b[i];
}

static const int N = 10000;

struct buffers {
    std::vector<float> a, b, want;
    float *da = nullptr, *db = nullptr, *dc = nullptr;
    bool setup()
    {
        a.resize(N), b.resize(N), want.resize(N);
        for (int i = 0; i < N; i++) {
            a[i] = 0.5f * i;
            b[i] = 1000.0f - i;
            want[i] = a[i] + b[i];
        }
        CHECK(cudaMalloc(&da, N * sizeof(float)));
        CHECK(cudaMalloc(&db, N * sizeof(float)));
        CHECK(cudaMalloc(&dc, N * sizeof(float)));
        CHECK(cudaMemcpy(da, a.data(), N * sizeof(float), cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(db, b.data(), N * sizeof(float), cudaMemcpyHostToDevice));
        CHECK(cudaMemset(dc, 0, N * sizeof(float)));
        return true;
    }
    bool check(const char *what)
    {
        std::vector<float> c(N);
        CHECK(cudaMemcpy(c.data(), dc, N * sizeof(float), cudaMemcpyDeviceToHost));
        return rt_check_all(what, c.data(), want.data(), N, 0);
    }
    ~buffers()
    {
        cudaFree(da);
        cudaFree(db);
        cudaFree(dc);
    }
};

RT_TEST(triple_chevron)
{
    buffers b;
    if (!b.setup()) return false;
    vector_add<<<(N + 255) / 256, 256>>>(b.da, b.db, b.dc, N);
    CHECK(cudaGetLastError());
    CHECK(cudaDeviceSynchronize());
    return b.check("vector_add<<<>>>");
}

RT_TEST(cuda_launch_kernel)
{
    buffers b;
    if (!b.setup()) return false;
    int n = N;
    void *args[] = {&b.da, &b.db, &b.dc, &n};
    CHECK(cudaLaunchKernel((const void *)vector_add, dim3((N + 127) / 128), dim3(128), args, 0, 0));
    CHECK(cudaDeviceSynchronize());
    return b.check("cudaLaunchKernel");
}

RT_TEST(cuda_launch_kernel_ex)
{
    buffers b;
    if (!b.setup()) return false;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((N + 63) / 64);
    cfg.blockDim = dim3(64);
    CHECK(cudaLaunchKernelEx(&cfg, vector_add, (const float *)b.da, (const float *)b.db, b.dc, N));
    CHECK(cudaDeviceSynchronize());
    return b.check("cudaLaunchKernelEx");
}

RT_TEST(default_copy_kind)
{
    buffers b;
    if (!b.setup()) return false;
    vector_add<<<(N + 255) / 256, 256>>>(b.da, b.db, b.dc, N);
    std::vector<float> c(N);
    CHECK(cudaMemcpy(c.data(), b.dc, N * sizeof(float), cudaMemcpyDefault));
    return rt_check_all("cudaMemcpyDefault", c.data(), b.want.data(), N, 0);
}

int main()
{
    return rt_main("vector_add");
}
