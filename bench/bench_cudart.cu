// SPDX-License-Identifier: Apache-2.0
// make bench (runtime): the cost of one <<<>>> launch through gpufuse's CUDA runtime next to a
// direct cuLaunchKernel of the same kernel in the same context, on the sim, in the same process.
// Built with nvcc -cudart shared; the driver's cuLaunchKernel is reached through
// cudaGetDriverEntryPointByVersion, so both paths end in the same libcuda.so.1.
//
// Each round queues N launches of an empty kernel on one stream and waits for it; the two paths
// alternate (and alternate which goes first), and the median round of each gives the per-launch cost. Also reported:
// the submission cost alone (the launch calls without the wait).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <cuda.h>
#include <cuda_runtime.h>
#include <vector>

__global__ void null_kernel(int *p) {}

#define CK(call)                                                                             \
    do {                                                                                     \
        cudaError_t e_ = (call);                                                             \
        if (e_ != cudaSuccess) {                                                             \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorName(e_)); \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

static double now_ns()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

typedef CUresult (*launch_fn)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                              unsigned, unsigned, CUstream, void **, void **);

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000, rounds = argc > 2 ? atoi(argv[2]) : 15;
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    int *arg = nullptr;
    void *params[] = {&arg};
    launch_fn cu_launch = nullptr;
    cudaDriverEntryPointQueryResult q;
    CK(cudaGetDriverEntryPointByVersion("cuLaunchKernel", (void **)&cu_launch, 12000,
                                        cudaEnableDefault, &q));
    cudaFunction_t fn;
    CK(cudaGetFuncBySymbol(&fn, (const void *)null_kernel));
    // Warm up both paths (module load, context instantiation).
    null_kernel<<<1, 32, 0, s>>>(arg);
    if (cu_launch((CUfunction)fn, 1, 1, 1, 32, 1, 1, 0, (CUstream)s, params, nullptr) != CUDA_SUCCESS) {
        fprintf(stderr, "cuLaunchKernel failed\n");
        return 1;
    }
    CK(cudaStreamSynchronize(s));
    std::vector<double> rt_total, cu_total, rt_submit, cu_submit;
    auto run_rt = [&] {
        double t0 = now_ns();
        for (int i = 0; i < n; i++) null_kernel<<<1, 32, 0, s>>>(arg);
        double t1 = now_ns();
        CK(cudaStreamSynchronize(s));
        double t2 = now_ns();
        CK(cudaGetLastError());
        rt_submit.push_back((t1 - t0) / n);
        rt_total.push_back((t2 - t0) / n);
    };
    auto run_cu = [&] {
        double t0 = now_ns();
        for (int i = 0; i < n; i++)
            cu_launch((CUfunction)fn, 1, 1, 1, 32, 1, 1, 0, (CUstream)s, params, nullptr);
        double t1 = now_ns();
        CK(cudaStreamSynchronize(s));
        double t2 = now_ns();
        cu_submit.push_back((t1 - t0) / n);
        cu_total.push_back((t2 - t0) / n);
    };
    for (int r = 0; r < rounds; r++) {
        // Alternate which path goes first, so that neither always follows the other.
        if (r % 2) {
            run_rt();
            run_cu();
        } else {
            run_cu();
            run_rt();
        }
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    double rt = median(rt_total), cu = median(cu_total);
    double rts = median(rt_submit), cus = median(cu_submit);
    printf("runtime <<<>>> launch: %.0f ns per launch (submit %.0f ns); direct cuLaunchKernel: %.0f ns "
           "(submit %.0f ns); %d launches x %d rounds, median\n",
           rt, rts, cu, cus, n, rounds);
    printf("ratio <<<>>> / cuLaunchKernel: %.3f (goal <= 1.1); submit only: %.3f\n", rt / cu, rts / cus);
    CK(cudaStreamDestroy(s));
    return 0;
}
