// SPDX-License-Identifier: Apache-2.0
// Sum reductions: a shared-memory tree with bar.sync, and a warp-shuffle variant.

// Launch with 256 threads per block; each block adds its partial sum to *out.
extern "C" __global__ void reduce_sum(const float *in, float *out, unsigned n)
{
    __shared__ float s[256];
    unsigned t = threadIdx.x;
    unsigned i = blockIdx.x * blockDim.x + t;
    s[t] = i < n ? in[i] : 0.0f;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (t < stride)
            s[t] += s[t + stride];
        __syncthreads();
    }
    if (t == 0)
        atomicAdd(out, s[0]);
}

// Any block size that is a multiple of 32 (up to 1024): per-warp shuffles, then one warp
// reduces the per-warp sums held in shared memory.
extern "C" __global__ void reduce_warp(const float *in, float *out, unsigned n)
{
    __shared__ float warp_sums[32];
    unsigned t = threadIdx.x;
    float v = 0.0f;
    for (unsigned i = blockIdx.x * blockDim.x + t; i < n; i += blockDim.x * gridDim.x)
        v += in[i];
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, off);
    if ((t & 31) == 0)
        warp_sums[t >> 5] = v;
    __syncthreads();
    if (t < 32) {
        v = t < (blockDim.x >> 5) ? warp_sums[t] : 0.0f;
        for (int off = 16; off > 0; off >>= 1)
            v += __shfl_down_sync(0xffffffffu, v, off);
        if (t == 0)
            atomicAdd(out, v);
    }
}
