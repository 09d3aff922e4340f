// SPDX-License-Identifier: Apache-2.0
// Tiled matrix multiply with shared-memory tiles and a 2D grid, on pitched device memory
// (cudaMallocPitch + cudaMemcpy2D); every element of C checked against the CPU product.
#include <vector>

#include "rt_test.h"

#define TILE 16

__global__ void matmul(const float *A, size_t lda, const float *B, size_t ldb, float *C,
                       size_t ldc, int M, int N, int K)
{
    __shared__ float As[TILE][TILE];
    __shared__ float Bs[TILE][TILE];
    int row = blockIdx.y * TILE + threadIdx.y;
    int col = blockIdx.x * TILE + threadIdx.x;
    float acc = 0.0f;
    for (int t = 0; t < (K + TILE - 1) / TILE; t++) {
        int ka = t * TILE + threadIdx.x, kb = t * TILE + threadIdx.y;
        As[threadIdx.y][threadIdx.x] = (row < M && ka < K) ? A[row * lda + ka] : 0.0f;
        Bs[threadIdx.y][threadIdx.x] = (kb < K && col < N) ? B[kb * ldb + col] : 0.0f;
        __syncthreads();
        for (int k = 0; k < TILE; k++) acc += As[threadIdx.y][k] * Bs[k][threadIdx.x];
        __syncthreads();
    }
    if (row < M && col < N) C[row * ldc + col] = acc;
}

RT_TEST(tiled_matmul_pitched)
{
    const int M = 70, N = 50, K = 40;
    std::vector<float> A(M * K), B(K * N), C(M * N), want(M * N);
    for (int i = 0; i < M * K; i++) A[i] = (float)((i % 11) - 5) * 0.25f;
    for (int i = 0; i < K * N; i++) B[i] = (float)((i % 7) - 3) * 0.5f;
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) {
            float s = 0;
            for (int k = 0; k < K; k++) s += A[r * K + k] * B[k * N + c];
            want[r * N + c] = s;
        }
    float *dA, *dB, *dC;
    size_t pA, pB, pC;
    CHECK(cudaMallocPitch((void **)&dA, &pA, K * sizeof(float), M));
    CHECK(cudaMallocPitch((void **)&dB, &pB, N * sizeof(float), K));
    CHECK(cudaMallocPitch((void **)&dC, &pC, N * sizeof(float), M));
    EXPECT(pA >= K * sizeof(float) && pA % sizeof(float) == 0, "pitch %zu", pA);
    CHECK(cudaMemcpy2D(dA, pA, A.data(), K * sizeof(float), K * sizeof(float), M, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy2D(dB, pB, B.data(), N * sizeof(float), N * sizeof(float), K, cudaMemcpyHostToDevice));
    CHECK(cudaMemset2D(dC, pC, 0xff, N * sizeof(float), M));
    dim3 block(TILE, TILE), grid((N + TILE - 1) / TILE, (M + TILE - 1) / TILE);
    matmul<<<grid, block>>>(dA, pA / sizeof(float), dB, pB / sizeof(float), dC, pC / sizeof(float), M, N, K);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy2D(C.data(), N * sizeof(float), dC, pC, N * sizeof(float), M, cudaMemcpyDeviceToHost));
    bool ok = rt_check_all("C", C.data(), want.data(), M * N, 1e-5);
    CHECK(cudaFree(dA));
    CHECK(cudaFree(dB));
    CHECK(cudaFree(dC));
    return ok;
}

int main()
{
    return rt_main("matmul");
}
