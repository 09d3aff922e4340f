// SPDX-License-Identifier: Apache-2.0
// y = a*x + y, the classic bandwidth kernel; used to measure the sim's instruction rate.
extern "C" __global__ void saxpy(int n, float a, const float *x, float *y)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = a * x[i] + y[i];
}
