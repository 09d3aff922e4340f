/* SPDX-License-Identifier: Apache-2.0 */
/* Streams, events and host functions: thin maps onto the driver (a cudaStream_t is a CUstream,
 * a cudaEvent_t a CUevent), with stream 0 resolved per entry point (legacy or per-thread). */
#include "cudart.h"

#include <stdlib.h>

static cudaError_t create(cudaStream_t *s, unsigned flags, int priority, int with_priority)
{
    if (!s) return gf_rt__ret(cudaErrorInvalidValue);
    if (flags & ~(unsigned)cudaStreamNonBlocking) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    CUstream cs;
    CUresult rc = with_priority ? CU(cuStreamCreateWithPriority, &cs, flags, priority)
                                : CU(cuStreamCreate, &cs, flags);
    if (rc == CUDA_SUCCESS) *s = (cudaStream_t)cs;
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaStreamCreate(cudaStream_t *pStream)
{
    return create(pStream, cudaStreamDefault, 0, 0);
}

GF_RT_API cudaError_t cudaStreamCreateWithFlags(cudaStream_t *pStream, unsigned int flags)
{
    return create(pStream, flags, 0, 0);
}

GF_RT_API cudaError_t cudaStreamCreateWithPriority(cudaStream_t *pStream, unsigned int flags,
                                                   int priority)
{
    return create(pStream, flags, priority, 1);
}

GF_RT_API cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    GF_RT_ENTER();
    if (stream == NULL || stream == cudaStreamLegacy || stream == cudaStreamPerThread)
        return gf_rt__ret(cudaErrorInvalidResourceHandle);
    return GF_RT_CU(CU(cuStreamDestroy_v2, (CUstream)stream));
}

static cudaError_t sync_impl(cudaStream_t s, int ptsz)
{
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuStreamSynchronize, gf_rt__stream(s, ptsz)));
}

GF_RT_API cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    return sync_impl(stream, 0);
}

GF_RT_API cudaError_t cudaStreamSynchronize_ptsz(cudaStream_t stream)
{
    return sync_impl(stream, 1);
}

static cudaError_t query_impl(cudaStream_t s, int ptsz)
{
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuStreamQuery, gf_rt__stream(s, ptsz)));
}

GF_RT_API cudaError_t cudaStreamQuery(cudaStream_t stream)
{
    return query_impl(stream, 0);
}

GF_RT_API cudaError_t cudaStreamQuery_ptsz(cudaStream_t stream)
{
    return query_impl(stream, 1);
}

static cudaError_t wait_impl(cudaStream_t s, cudaEvent_t ev, unsigned flags, int ptsz)
{
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuStreamWaitEvent, gf_rt__stream(s, ptsz), (CUevent)ev, flags));
}

GF_RT_API cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event,
                                          unsigned int flags)
{
    return wait_impl(stream, event, flags, 0);
}

GF_RT_API cudaError_t cudaStreamWaitEvent_ptsz(cudaStream_t stream, cudaEvent_t event,
                                               unsigned int flags)
{
    return wait_impl(stream, event, flags, 1);
}

static cudaError_t flags_impl(cudaStream_t s, unsigned *flags, int ptsz)
{
    if (!flags) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuStreamGetFlags, gf_rt__stream(s, ptsz), flags));
}

GF_RT_API cudaError_t cudaStreamGetFlags(cudaStream_t hStream, unsigned int *flags)
{
    return flags_impl(hStream, flags, 0);
}

GF_RT_API cudaError_t cudaStreamGetFlags_ptsz(cudaStream_t hStream, unsigned int *flags)
{
    return flags_impl(hStream, flags, 1);
}

static cudaError_t prio_impl(cudaStream_t s, int *prio, int ptsz)
{
    if (!prio) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuStreamGetPriority, gf_rt__stream(s, ptsz), prio));
}

GF_RT_API cudaError_t cudaStreamGetPriority(cudaStream_t hStream, int *priority)
{
    return prio_impl(hStream, priority, 0);
}

GF_RT_API cudaError_t cudaStreamGetPriority_ptsz(cudaStream_t hStream, int *priority)
{
    return prio_impl(hStream, priority, 1);
}

static cudaError_t id_impl(cudaStream_t s, unsigned long long *id, int ptsz)
{
    if (!id) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuStreamGetId, gf_rt__stream(s, ptsz), id));
}

GF_RT_API cudaError_t cudaStreamGetId(cudaStream_t hStream, unsigned long long *streamId)
{
    return id_impl(hStream, streamId, 0);
}

GF_RT_API cudaError_t cudaStreamGetId_ptsz(cudaStream_t hStream, unsigned long long *streamId)
{
    return id_impl(hStream, streamId, 1);
}

static cudaError_t dev_impl(cudaStream_t s, int *device, int ptsz)
{
    if (!device) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    CUdevice d;
    CUresult rc = CU(cuStreamGetDevice, gf_rt__stream(s, ptsz), &d);
    if (rc == CUDA_ERROR_NOT_SUPPORTED && (s == NULL || s == cudaStreamLegacy ||
                                           s == cudaStreamPerThread)) {
        *device = gf_rt_tls.dev;
        return cudaSuccess;
    }
    if (rc == CUDA_SUCCESS) *device = (int)d;
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaStreamGetDevice(cudaStream_t hStream, int *device)
{
    return dev_impl(hStream, device, 0);
}

GF_RT_API cudaError_t cudaStreamGetDevice_ptsz(cudaStream_t hStream, int *device)
{
    return dev_impl(hStream, device, 1);
}

/* cudaStreamAddCallback's callback takes a cudaError_t; the driver's a CUresult. */
typedef struct callback_tramp {
    cudaStreamCallback_t fn;
    void *arg;
} callback_tramp;

static void CUDA_CB run_callback(CUstream s, CUresult status, void *p)
{
    callback_tramp t = *(callback_tramp *)p;
    free(p);
    t.fn((cudaStream_t)s, gf_rt__err(status), t.arg);
}

static cudaError_t callback_impl(cudaStream_t s, cudaStreamCallback_t fn, void *arg,
                                 unsigned flags, int ptsz)
{
    if (!fn || flags) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    callback_tramp *t = malloc(sizeof *t);
    if (!t) return gf_rt__ret(cudaErrorMemoryAllocation);
    t->fn = fn;
    t->arg = arg;
    CUresult rc = CU(cuStreamAddCallback, gf_rt__stream(s, ptsz), run_callback, t, 0);
    if (rc != CUDA_SUCCESS) free(t);
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaStreamAddCallback(cudaStream_t stream, cudaStreamCallback_t callback,
                                            void *userData, unsigned int flags)
{
    return callback_impl(stream, callback, userData, flags, 0);
}

GF_RT_API cudaError_t cudaStreamAddCallback_ptsz(cudaStream_t stream,
                                                 cudaStreamCallback_t callback, void *userData,
                                                 unsigned int flags)
{
    return callback_impl(stream, callback, userData, flags, 1);
}

static cudaError_t hostfn_impl(cudaStream_t s, cudaHostFn_t fn, void *arg, int ptsz)
{
    if (!fn) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuLaunchHostFunc, gf_rt__stream(s, ptsz), (CUhostFn)fn, arg));
}

GF_RT_API cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void *userData)
{
    return hostfn_impl(stream, fn, userData, 0);
}

GF_RT_API cudaError_t cudaLaunchHostFunc_ptsz(cudaStream_t stream, cudaHostFn_t fn,
                                              void *userData)
{
    return hostfn_impl(stream, fn, userData, 1);
}

/* ---- events -------------------------------------------------------------------------------- */

GF_RT_API cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags)
{
    /* cudaEventBlockingSync, DisableTiming, Interprocess = CU_EVENT_* */
    if (!event || (flags & ~7u)) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    CUevent ev;
    CUresult rc = CU(cuEventCreate, &ev, flags);
    if (rc == CUDA_SUCCESS) *event = (cudaEvent_t)ev;
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaEventCreate(cudaEvent_t *event)
{
    return cudaEventCreateWithFlags(event, cudaEventDefault);
}

GF_RT_API cudaError_t cudaEventDestroy(cudaEvent_t event)
{
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuEventDestroy_v2, (CUevent)event));
}

static cudaError_t record_impl(cudaEvent_t ev, cudaStream_t s, unsigned flags, int ptsz)
{
    GF_RT_ENTER();
    CUresult rc = flags ? CU(cuEventRecordWithFlags, (CUevent)ev, gf_rt__stream(s, ptsz), flags)
                        : CU(cuEventRecord, (CUevent)ev, gf_rt__stream(s, ptsz));
    return GF_RT_CU(rc);
}

GF_RT_API cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
    return record_impl(event, stream, 0, 0);
}

GF_RT_API cudaError_t cudaEventRecord_ptsz(cudaEvent_t event, cudaStream_t stream)
{
    return record_impl(event, stream, 0, 1);
}

GF_RT_API cudaError_t cudaEventRecordWithFlags(cudaEvent_t event, cudaStream_t stream,
                                               unsigned int flags)
{
    return record_impl(event, stream, flags, 0);
}

GF_RT_API cudaError_t cudaEventRecordWithFlags_ptsz(cudaEvent_t event, cudaStream_t stream,
                                                    unsigned int flags)
{
    return record_impl(event, stream, flags, 1);
}

GF_RT_API cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuEventSynchronize, (CUevent)event));
}

GF_RT_API cudaError_t cudaEventQuery(cudaEvent_t event)
{
    GF_RT_ENTER();
    return GF_RT_CU(CU(cuEventQuery, (CUevent)event));
}

GF_RT_API cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    if (!ms) return gf_rt__ret(cudaErrorInvalidValue);
    GF_RT_ENTER();
    CUresult rc = CU(cuEventElapsedTime_v2, ms, (CUevent)start, (CUevent)end);
    if (rc == CUDA_ERROR_NOT_SUPPORTED)
        rc = CU(cuEventElapsedTime, ms, (CUevent)start, (CUevent)end);
    return GF_RT_CU(rc);
}
