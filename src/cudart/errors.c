/* SPDX-License-Identifier: Apache-2.0 */
/* cudaGetLastError / cudaPeekAtLastError and the names and strings of every cudaError_t. */
#include "cudart.h"

/* A fault that poisoned the process is not kept here: the driver answers every later call that
 * needs the device with it, and that call records it again (as with NVIDIA's runtime). */
GF_RT_API cudaError_t cudaGetLastError(void)
{
    cudaError_t e = gf_rt_tls.last;
    gf_rt_tls.last = cudaSuccess;
    return e;
}

GF_RT_API cudaError_t cudaPeekAtLastError(void)
{
    return gf_rt_tls.last;
}

GF_RT_API const char *cudaGetErrorName(cudaError_t error)
{
    switch ((int)error) {
#define GF_CUDART_ERR(name, value, desc)                                                      \
    case value: return #name;
#include "cudart_errors.h"
    default: return "cudaErrorUnknown";
    }
}

/* The short strings programs print most, as CUDA's runtime words them; every other code gets
 * the first sentence of its description in driver_types.h. */
static const char *short_string(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidSymbol: return "invalid device symbol";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver:
        return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoKernelImageForDevice:
        return "no kernel image is available for execution on the device";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorSymbolNotFound: return "named symbol not found";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorUnknown: return "unknown error";
    default: return NULL;
    }
}

GF_RT_API const char *cudaGetErrorString(cudaError_t error)
{
    const char *s = short_string(error);
    if (s) return s;
    switch ((int)error) {
#define GF_CUDART_ERR(name, value, desc)                                                      \
    case value: return desc;
#include "cudart_errors.h"
    default: return "unrecognized error code";
    }
}
