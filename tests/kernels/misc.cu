// SPDX-License-Identifier: Apache-2.0
// A grab bag of kernels that exercise the PTX subset the sim's engine claims to run: module
// globals and constants, integer/float/double ops, atomics, 2D/3D grids, local arrays, vector
// loads, half precision and non-inlined device functions. Each kernel writes results that the
// unit test compares with a CPU reference.
#include <cuda_fp16.h>

__device__ int dev_counter = 5;
__device__ float dev_table[4] = {1.5f, -2.0f, 3.25f, 8.0f};
__constant__ float const_coef[8] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f, 8.0f};
__constant__ int const_ints[4] = {10, -20, 30, -40};

// out[i] = in[i] * const_coef[i % 8] + dev_table[i % 4]; also counts threads in dev_counter.
extern "C" __global__ void misc_globals(const float *in, float *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = in[i] * const_coef[i & 7] + dev_table[i & 3] + (float)const_ints[i & 3];
        atomicAdd(&dev_counter, 1);
    }
}

// 16 integer results per input pair (a[i], b[i]).
extern "C" __global__ void misc_int(const int *a, const int *b, int *out32, long long *out64,
                                    int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    int x = a[i], y = b[i];
    unsigned ux = (unsigned)x, uy = (unsigned)y;
    int *o = out32 + i * 16;
    o[0] = y != 0 ? x / y : 0;
    o[1] = y != 0 ? x % y : 0;
    o[2] = uy != 0 ? (int)(ux / uy) : 0;
    o[3] = uy != 0 ? (int)(ux % uy) : 0;
    o[4] = min(x, y);
    o[5] = max(x, y);
    o[6] = (int)min(ux, uy);
    o[7] = x >> (y & 31);
    o[8] = (int)(ux >> (uy & 31));
    o[9] = x << (y & 31);
    o[10] = (x & y) ^ (x | ~y);
    o[11] = __popc(ux) + __clz(x) * 100;
    o[12] = (int)__brev(ux);
    o[13] = abs(x) - __mulhi(x, y);
    o[14] = (int)__umulhi(ux, uy) + __ffs(x);
    o[15] = __byte_perm(x, y, 0x5140);
    long long lx = (long long)x * 1000003LL, ly = (long long)y * -77LL + 5;
    unsigned long long ulx = (unsigned long long)lx, uly = (unsigned long long)ly;
    long long *q = out64 + i * 8;
    q[0] = lx * ly;
    q[1] = ly != 0 ? lx / ly : 0;
    q[2] = ly != 0 ? lx % ly : 0;
    q[3] = uly != 0 ? (long long)(ulx / uly) : 0;
    q[4] = lx >> (y & 63);
    q[5] = (long long)(ulx << (uy & 63)) ^ (long long)__popcll(ulx);
    q[6] = max(lx, ly) - min(lx, ly) + __clzll(ly);
    q[7] = (long long)__umul64hi(ulx, uly) + __mul64hi(lx, ly);
}

// Float and double math; 16 float and 8 double results per element.
extern "C" __global__ void misc_float(const float *a, const float *b, float *outf, double *outd,
                                      int *outi, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float x = a[i], y = b[i];
    float *o = outf + i * 16;
    o[0] = x / y;
    o[1] = sqrtf(fabsf(x));
    o[2] = rsqrtf(fabsf(y) + 1.0f);
    o[3] = expf(x * 0.1f);
    o[4] = logf(fabsf(y) + 1.0f);
    o[5] = sinf(x) + cosf(y);
    o[6] = fminf(x, y) * fmaxf(x, y);
    o[7] = -fabsf(x) + floorf(y) + ceilf(x) + truncf(y) + rintf(x);
    o[8] = (float)(int)x + (float)(unsigned)(fabsf(y));
    o[9] = x > y ? x : y * 2.0f;
    o[10] = __expf(y * 0.05f) + __logf(fabsf(x) + 2.0f);
    o[11] = fmaf(x, y, 1.0f);
    o[12] = copysignf(x, y);
    o[13] = tanhf(x * 0.01f);
    o[14] = __fdividef(x, fabsf(y) + 1.0f);
    o[15] = isnan(x / y) ? 1.0f : (isinf(x / y) ? 2.0f : 0.0f);
    double dx = x, dy = y;
    double *d = outd + i * 8;
    d[0] = dx / dy;
    d[1] = sqrt(fabs(dx)) + dx * dy;
    d[2] = fma(dx, dy, -1.0);
    d[3] = fmin(dx, dy) - fmax(dx, dy);
    d[4] = (double)(long long)(dx * 1e6);
    d[5] = (double)(float)(dx / 3.0);
    d[6] = 1.0 / (fabs(dy) + 0.5);
    d[7] = floor(dx) + ceil(dy);
    int *oi = outi + i * 4;
    oi[0] = (int)(x * 1000.0f);
    oi[1] = (int)(unsigned)(y * 3.0f);
    oi[2] = __float2int_rn(x * 10.0f);
    oi[3] = (int)(long long)(dy * 1e3);
}

// Atomics on one shared set of counters: acc[0..] as documented in the test.
extern "C" __global__ void misc_atomics(int *iacc, float *facc, unsigned long long *uacc, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    atomicAdd(&iacc[0], i);
    atomicMax(&iacc[1], i * 7 % 101);
    atomicMin(&iacc[2], -(i * 13 % 97));
    atomicOr(&iacc[3], 1 << (i & 31));
    atomicAnd(&iacc[4], ~(1 << (i % 29)));
    atomicXor(&iacc[5], i);
    atomicInc((unsigned *)&iacc[6], 16u);
    atomicCAS(&iacc[7], i, i + 1);
    atomicExch(&iacc[8], 42);
    atomicMax((unsigned *)&iacc[9], (unsigned)i * 3u);
    atomicAdd(&facc[0], 0.5f);
    atomicAdd(&uacc[0], (unsigned long long)i * 1000000007ULL);
    atomicCAS(&uacc[1], (unsigned long long)i, (unsigned long long)i + 1);
    atomicAdd((double *)&uacc[2], 0.25);
    __shared__ int sh;
    if (threadIdx.x == 0)
        sh = 0;
    __syncthreads();
    atomicAdd(&sh, 1);
    __syncthreads();
    if (threadIdx.x == 0)
        atomicAdd(&iacc[10], sh);
}

// 3D grid of 3D blocks: each thread writes its linear id computed from all coordinates.
extern "C" __global__ void misc_grid3d(unsigned *out, unsigned nx, unsigned ny, unsigned nz)
{
    unsigned x = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned y = blockIdx.y * blockDim.y + threadIdx.y;
    unsigned z = blockIdx.z * blockDim.z + threadIdx.z;
    if (x < nx && y < ny && z < nz)
        out[(z * ny + y) * nx + x] = x * 10000u + y * 100u + z + gridDim.x * gridDim.y * gridDim.z;
}

// A per-thread array indexed dynamically, so it lives in .local memory.
extern "C" __global__ void misc_local(const int *idx, int *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    int arr[32];
    for (int k = 0; k < 32; k++)
        arr[k] = k * i;
    volatile int j = idx[i] & 31;
    arr[j] += 1000;
    int s = 0;
    for (int k = 0; k < 32; k++)
        s += arr[(k + j) & 31] * (k + 1);
    out[i] = s;
}

// float4 loads and stores (ld.global.v4.f32 / st.global.v4.f32).
extern "C" __global__ void misc_vec4(const float4 *in, float4 *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float4 v = in[i];
    out[i] = make_float4(v.w, v.z * 2.0f, v.y + 1.0f, v.x - v.y);
}

// Half precision: convert, add, multiply, convert back.
extern "C" __global__ void misc_half(const float *in, float *out, __half *hout, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    __half h = __float2half(in[i]);
    __half k = __float2half(1.5f);
    __half r = __hadd(__hmul(h, k), h);
    hout[i] = r;
    out[i] = __half2float(r);
}

struct Pair {
    int a;
    double b;
    char c[3];
};

__device__ __noinline__ float scale_add(float x, float y, int mode)
{
    if (mode == 0)
        return x + y;
    return x * y + (float)mode;
}

__device__ __noinline__ Pair make_pair(int a, double b)
{
    Pair p;
    p.a = a * 2;
    p.b = b * 0.5;
    p.c[0] = 1;
    p.c[1] = 2;
    p.c[2] = 3;
    return p;
}

// Non-inlined device functions (call/ret with .param passing) and a struct passed by value.
extern "C" __global__ void misc_call(Pair p, char tag, const float *x, float *y, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    Pair q = make_pair(p.a + i, p.b);
    y[i] = scale_add(x[i], (float)q.b, i % 3) + (float)q.a + (float)p.c[i % 3] + (float)tag +
           (float)q.c[2];
}

// Warp votes, ballots, and shuffles in all four modes.
extern "C" __global__ void misc_warp(const int *in, unsigned *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int v = i < n ? in[i] : 0;
    unsigned m = __activemask();
    unsigned *o = out + i * 8;
    unsigned ballot = __ballot_sync(0xffffffffu, v > 10);
    int all = __all_sync(0xffffffffu, v >= 0);
    int any = __any_sync(0xffffffffu, v > 90);
    int up = __shfl_up_sync(0xffffffffu, v, 3);
    int bf = __shfl_xor_sync(0xffffffffu, v, 5);
    int ix = __shfl_sync(0xffffffffu, v, (threadIdx.x * 7) & 31);
    int w16 = __shfl_down_sync(0xffffffffu, v, 2, 16);
    if (i < n) {
        o[0] = ballot;
        o[1] = (unsigned)all;
        o[2] = (unsigned)any;
        o[3] = (unsigned)up;
        o[4] = (unsigned)bf;
        o[5] = (unsigned)ix;
        o[6] = (unsigned)w16;
        o[7] = m;
    }
}

extern __shared__ float dyn_smem[];

// Dynamic shared memory: reverses each block's slice through extern __shared__.
extern "C" __global__ void misc_dynsmem(const float *in, float *out, int n)
{
    int t = threadIdx.x;
    int i = blockIdx.x * blockDim.x + t;
    dyn_smem[t] = i < n ? in[i] : 0.0f;
    __syncthreads();
    int j = blockIdx.x * blockDim.x + (blockDim.x - 1 - t);
    if (j < n)
        out[j] = dyn_smem[t];
}
