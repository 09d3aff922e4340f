/* SPDX-License-Identifier: Apache-2.0 */
/* Which CUDA results poison the whole process. On NVIDIA's driver a kernel fault leaves every
 * context of the process unusable (cuda.h: "the process must be terminated and relaunched");
 * seen on an H200 with driver 580 by tests/gpu/run: device work in any context fails with it,
 * no context can be made, cuDevicePrimaryCtxReset does not bring the device back. The sim, the
 * runtime and the remote backend model it from this one list. Needs cuda.h first. */
#ifndef GPUFUSE_CUDA_FAULTS_H
#define GPUFUSE_CUDA_FAULTS_H

static inline int gf_cuda_process_fatal(CUresult rc)
{
    switch (rc) {
    case CUDA_ERROR_ILLEGAL_ADDRESS:
    case CUDA_ERROR_LAUNCH_TIMEOUT:
    case CUDA_ERROR_ASSERT:
    case CUDA_ERROR_HARDWARE_STACK_ERROR:
    case CUDA_ERROR_ILLEGAL_INSTRUCTION:
    case CUDA_ERROR_MISALIGNED_ADDRESS:
    case CUDA_ERROR_INVALID_ADDRESS_SPACE:
    case CUDA_ERROR_INVALID_PC:
    case CUDA_ERROR_LAUNCH_FAILED: return 1;
    default: return 0;
    }
}

#endif
