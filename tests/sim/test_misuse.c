/* SPDX-License-Identifier: Apache-2.0 */
/* Misuse of the sim's driver gives the error a real driver gives: calls before cuInit, without a
 * context, with destroyed or made-up handles, NULL out-pointers, bad sizes and flags, bad images,
 * bad launch geometry, a kernel that faults (sticky, as on a GPU), a forked child. One TEST per
 * area; each ASSERT_CU line is one row of that area's table and names itself when it fails. */
#include <cuda.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sim_test_util.h"
#include "test.h"

#define BOGUS_PTR ((CUdeviceptr)0x1234)
#define BOGUS_HANDLE ((void *)0x7777)

TEST(calls_before_cuInit)
{
    int v;
    CUdevice d;
    CUcontext c;
    CUdeviceptr p;
    CUmodule m;
    CUstream s;
    CUevent e;
    CUlibrary l;
    size_t f, t;
    char name[64];
    ASSERT_CU(cuDeviceGet(&d, 0), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuDeviceGetCount(&v), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuDeviceGetName(name, sizeof name, 0), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 0), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuDeviceTotalMem(&f, 0), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuCtxCreate(&c, NULL, 0, 0), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuCtxGetCurrent(&c), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuCtxSetCurrent(NULL), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuCtxSynchronize(), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuDevicePrimaryCtxRetain(&c, 0), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuMemAlloc(&p, 16), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuMemFree(BOGUS_PTR), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuMemGetInfo(&f, &t), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuModuleLoadData(&m, ".version 9.0\n"), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuLibraryLoadData(&l, ".version 9.0\n", NULL, NULL, 0, NULL, NULL, 0), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuStreamCreate(&s, 0), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuStreamQuery(NULL), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuEventCreate(&e, 0), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuPointerGetAttribute(&v, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, BOGUS_PTR), CUDA_ERROR_NOT_INITIALIZED);
    ASSERT_CU(cuMemcpyHtoD(BOGUS_PTR, name, 1), CUDA_ERROR_NOT_INITIALIZED);
    /* these work before cuInit, as on a real driver */
    CHECK_CU(cuDriverGetVersion(&v));
    ASSERT_EQ_INT(v, 13000);
    const char *str;
    CHECK_CU(cuGetErrorName(CUDA_ERROR_OUT_OF_MEMORY, &str));
    ASSERT_EQ_STR(str, "CUDA_ERROR_OUT_OF_MEMORY");
    ASSERT_CU(cuInit(1), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuInit(0));
    CHECK_CU(cuInit(0)); /* idempotent */
}

TEST(calls_without_a_current_context)
{
    CHECK_CU(cuInit(0));
    CUdeviceptr p = 0;
    CUstream s;
    CUevent e;
    CUmodule m;
    CUcontext c;
    CUdevice d;
    size_t f, t;
    unsigned u;
    void *h;
    CUfunction fn = NULL;
    ASSERT_CU(cuMemAlloc(&p, 16), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuMemAllocHost(&h, 16), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuMemAllocManaged(&p, 16, CU_MEM_ATTACH_GLOBAL), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuMemGetInfo(&f, &t), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuStreamCreate(&s, 0), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuStreamSynchronize(NULL), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuEventCreate(&e, 0), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuModuleLoadData(&m, ".version 9.0\n"), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuCtxSynchronize(), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuCtxGetDevice(&d), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuCtxGetFlags(&u), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuCtxGetLimit(&f, CU_LIMIT_STACK_SIZE), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuCtxPopCurrent(&c), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuMemcpyHtoD(BOGUS_PTR, &u, 4), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuMemsetD8(BOGUS_PTR, 0, 4), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL), CUDA_ERROR_INVALID_CONTEXT);
    CHECK_CU(cuCtxGetCurrent(&c));
    ASSERT_TRUE(c == NULL);
}

TEST(devices)
{
    sim_setup();
    CUdevice d;
    int v, count;
    char name[128];
    size_t bytes;
    CHECK_CU(cuDeviceGetCount(&count));
    ASSERT_CU(cuDeviceGet(&d, count), CUDA_ERROR_INVALID_DEVICE);
    ASSERT_CU(cuDeviceGet(&d, -1), CUDA_ERROR_INVALID_DEVICE);
    ASSERT_CU(cuDeviceGet(NULL, 0), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuDeviceGetCount(NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuDeviceGetName(NULL, 10, 0), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuDeviceGetName(name, sizeof name, 99), CUDA_ERROR_INVALID_DEVICE);
    ASSERT_CU(cuDeviceTotalMem(NULL, 0), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuDeviceTotalMem(&bytes, 99), CUDA_ERROR_INVALID_DEVICE);
    ASSERT_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 99), CUDA_ERROR_INVALID_DEVICE);
    ASSERT_CU(cuDeviceGetAttribute(NULL, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 0), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuDeviceGetAttribute(&v, (CUdevice_attribute)0, 0), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MAX, 0), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuDeviceGetAttribute(&v, (CUdevice_attribute)100000, 0), CUDA_ERROR_INVALID_VALUE);
    /* every attribute the enum has answers */
    for (int a = 1; a < CU_DEVICE_ATTRIBUTE_MAX; a++)
        ASSERT_MSG(cuDeviceGetAttribute(&v, (CUdevice_attribute)a, 0) == CUDA_SUCCESS, "attribute %d", a);
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 0));
    ASSERT_EQ_INT(v, 1024);
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 0));
    ASSERT_EQ_INT(v, 32);
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 0));
    ASSERT_EQ_INT(v, 1);
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, 0));
    ASSERT_EQ_INT(v, 1);
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, 0));
    ASSERT_EQ_INT(v, 1);
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0));
    ASSERT_TRUE(v > 0);
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 0));
    ASSERT_EQ_INT(v, 49152);
    CHECK_CU(cuDeviceGetName(name, sizeof name, 0));
    ASSERT_CONTAINS(name, "NVIDIA");
    char pci[32];
    CHECK_CU(cuDeviceGetPCIBusId(pci, sizeof pci, 0));
    CHECK_CU(cuDeviceGetByPCIBusId(&d, pci));
    ASSERT_EQ_INT(d, 0);
    ASSERT_CU(cuDeviceGetByPCIBusId(&d, "not a bus id"), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuDeviceGetByPCIBusId(&d, "0000:ee:1f.0"), CUDA_ERROR_INVALID_DEVICE);
    ASSERT_CU(cuDeviceGetPCIBusId(NULL, 13, 0), CUDA_ERROR_INVALID_VALUE);
    CUuuid u1, u2;
    CHECK_CU(cuDeviceGetUuid(&u1, 0));
    CUresult (*v1)(CUuuid *, CUdevice) = (CUresult(*)(CUuuid *, CUdevice))dlsym(RTLD_DEFAULT, "cuDeviceGetUuid");
    ASSERT_TRUE(v1 != NULL);
    CHECK_CU(v1(&u2, 0));
    ASSERT_TRUE(memcmp(&u1, &u2, sizeof u1) == 0);
    ASSERT_CU(cuDeviceGetUuid(NULL, 0), CUDA_ERROR_INVALID_VALUE);
}

struct thread_arg {
    CUcontext ctx;
    CUresult before, after;
    pthread_mutex_t *m;
    pthread_cond_t *cv;
    int *stage;
};

static void *use_ctx_thread(void *p)
{
    struct thread_arg *a = p;
    CUdeviceptr d;
    cuCtxSetCurrent(a->ctx);
    a->before = cuMemAlloc(&d, 64);
    pthread_mutex_lock(a->m);
    *a->stage = 1;
    pthread_cond_broadcast(a->cv);
    while (*a->stage != 2) pthread_cond_wait(a->cv, a->m);
    pthread_mutex_unlock(a->m);
    a->after = cuMemAlloc(&d, 64);
    return NULL;
}

TEST(contexts)
{
    CHECK_CU(cuInit(0));
    CUcontext c, c2, got;
    unsigned v;
    ASSERT_CU(cuCtxCreate(&c, NULL, 0x100, 0), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuCtxCreate(&c, NULL, 3, 0), CUDA_ERROR_INVALID_VALUE); /* two schedule flags */
    ASSERT_CU(cuCtxCreate(NULL, NULL, 0, 0), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuCtxCreate(&c, NULL, 0, 42), CUDA_ERROR_INVALID_DEVICE);
    CHECK_CU(cuCtxCreate(&c, NULL, CU_CTX_SCHED_BLOCKING_SYNC, 0));
    CHECK_CU(cuCtxGetFlags(&v));
    ASSERT_EQ_INT(v & CU_CTX_SCHED_MASK, CU_CTX_SCHED_BLOCKING_SYNC);
    CHECK_CU(cuCtxCreate(&c2, NULL, 0, 0));
    CHECK_CU(cuCtxGetCurrent(&got));
    ASSERT_TRUE(got == c2);
    CHECK_CU(cuCtxPopCurrent(&got));
    ASSERT_TRUE(got == c2);
    CHECK_CU(cuCtxGetCurrent(&got));
    ASSERT_TRUE(got == c);
    unsigned long long id1, id2;
    CHECK_CU(cuCtxGetId(c, &id1));
    CHECK_CU(cuCtxGetId(c2, &id2));
    ASSERT_TRUE(id1 != id2);
    size_t lim;
    ASSERT_CU(cuCtxSetLimit((CUlimit)0x55, 1), CUDA_ERROR_UNSUPPORTED_LIMIT);
    ASSERT_CU(cuCtxGetLimit(&lim, (CUlimit)0x55), CUDA_ERROR_UNSUPPORTED_LIMIT);
    CHECK_CU(cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE, 64 << 20));
    CHECK_CU(cuCtxGetLimit(&lim, CU_LIMIT_MALLOC_HEAP_SIZE));
    ASSERT_EQ_U64(lim, 64 << 20);
    ASSERT_CU(cuCtxSetCacheConfig((CUfunc_cache)9), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuCtxSetCacheConfig(CU_FUNC_CACHE_PREFER_SHARED));
    CUfunc_cache cc;
    CHECK_CU(cuCtxGetCacheConfig(&cc));
    ASSERT_EQ_INT(cc, CU_FUNC_CACHE_PREFER_SHARED);
    CHECK_CU(cuCtxSynchronize_v2(c2));
    CHECK_CU(cuCtxGetApiVersion(c2, &v));

    /* destroy: the handle dies; a thread that still has it current gets CONTEXT_IS_DESTROYED */
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    int stage = 0;
    struct thread_arg a = {c2, 0, 0, &m, &cv, &stage};
    pthread_t th;
    ASSERT_EQ_INT(pthread_create(&th, NULL, use_ctx_thread, &a), 0);
    pthread_mutex_lock(&m);
    while (stage != 1) pthread_cond_wait(&cv, &m);
    pthread_mutex_unlock(&m);
    CHECK_CU(cuCtxDestroy(c2));
    pthread_mutex_lock(&m);
    stage = 2;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&m);
    pthread_join(th, NULL);
    ASSERT_CU(a.before, CUDA_SUCCESS);
    ASSERT_CU(a.after, CUDA_ERROR_CONTEXT_IS_DESTROYED);
    ASSERT_CU(cuCtxDestroy(c2), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuCtxSetCurrent(c2), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuCtxPushCurrent(c2), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuCtxGetApiVersion(c2, &v), CUDA_ERROR_CONTEXT_IS_DESTROYED);
    ASSERT_CU(cuCtxPushCurrent((CUcontext)BOGUS_HANDLE), CUDA_ERROR_INVALID_CONTEXT);
    ASSERT_CU(cuCtxGetId((CUcontext)BOGUS_HANDLE, &id1), CUDA_ERROR_INVALID_CONTEXT);
    CHECK_CU(cuCtxDestroy(c));
    CHECK_CU(cuCtxGetCurrent(&got));
    ASSERT_TRUE(got == NULL);
    ASSERT_CU(cuCtxPopCurrent(&got), CUDA_ERROR_INVALID_CONTEXT);

    /* primary contexts */
    int active;
    ASSERT_CU(cuDevicePrimaryCtxRelease(0), CUDA_ERROR_INVALID_CONTEXT);
    CHECK_CU(cuDevicePrimaryCtxGetState(0, &v, &active));
    ASSERT_EQ_INT(active, 0);
    CHECK_CU(cuDevicePrimaryCtxSetFlags(0, CU_CTX_SCHED_SPIN));
    ASSERT_CU(cuDevicePrimaryCtxSetFlags(0, 0x1000), CUDA_ERROR_INVALID_VALUE);
    CUcontext p1, p2;
    CHECK_CU(cuDevicePrimaryCtxRetain(&p1, 0));
    CHECK_CU(cuDevicePrimaryCtxRetain(&p2, 0));
    ASSERT_TRUE(p1 == p2);
    CHECK_CU(cuDevicePrimaryCtxGetState(0, &v, &active));
    ASSERT_EQ_INT(active, 1);
    ASSERT_EQ_INT(v, CU_CTX_SCHED_SPIN);
    ASSERT_CU(cuCtxDestroy(p1), CUDA_ERROR_INVALID_CONTEXT);
    CHECK_CU(cuDevicePrimaryCtxRelease(0));
    CHECK_CU(cuDevicePrimaryCtxRelease(0));
    CHECK_CU(cuCtxSetCurrent(p1));
    CUdeviceptr d;
    ASSERT_CU(cuMemAlloc(&d, 16), CUDA_ERROR_INVALID_CONTEXT); /* released: inactive */
    CHECK_CU(cuDevicePrimaryCtxRetain(&p2, 0));
    CHECK_CU(cuMemAlloc(&d, 16));
    CHECK_CU(cuDevicePrimaryCtxReset(0));
    ASSERT_CU(cuMemAlloc(&d, 16), CUDA_ERROR_INVALID_CONTEXT);
}

TEST(memory)
{
    sim_setup();
    CUdeviceptr p, q;
    size_t total, pitch, f, t;
    void *h;
    CHECK_CU(cuDeviceTotalMem(&total, 0));
    ASSERT_CU(cuMemAlloc(&p, 0), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemAlloc(NULL, 16), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemAlloc(&p, total + 1), CUDA_ERROR_OUT_OF_MEMORY);
    ASSERT_CU(cuMemAlloc(&p, (size_t)1 << 50), CUDA_ERROR_OUT_OF_MEMORY);
    ASSERT_CU(cuMemAllocManaged(&p, 2 * total, CU_MEM_ATTACH_GLOBAL), CUDA_ERROR_OUT_OF_MEMORY);
    ASSERT_CU(cuMemAllocManaged(&p, 64, 0), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemAllocPitch(&p, &pitch, 100, 10, 3), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemAllocPitch(&p, &pitch, 0, 10, 4), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemHostAlloc(&h, 64, 0x80), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemGetInfo(NULL, &t), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemGetInfo(&f, &t));
    CHECK_CU(cuMemAlloc(&p, 4096));
    ASSERT_CU(cuMemFree(BOGUS_PTR), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemFree(p + 16), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemFree(0));
    CHECK_CU(cuMemFreeHost(NULL));
    ASSERT_CU(cuMemHostUnregister(NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemFreeHost((void *)(uintptr_t)p), CUDA_ERROR_INVALID_VALUE); /* device memory */
    ASSERT_CU(cuMemGetAddressRange(&q, &f, BOGUS_PTR), CUDA_ERROR_NOT_FOUND);
    ASSERT_CU(cuMemcpyHtoD(BOGUS_PTR, &f, 4), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemcpyHtoD(p, NULL, 4), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemcpyDtoH(&f, BOGUS_PTR, 4), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemcpyDtoD(p, p + 4000, 200), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemsetD8(BOGUS_PTR, 0, 1), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemsetD8(p, 0, 4097), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemsetD32Async(p + 1, 0, 1, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemsetD8Async(p, 0, 1, (CUstream)BOGUS_HANDLE), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuMemcpyHtoDAsync(p, &f, 4, (CUstream)BOGUS_HANDLE), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuPointerGetAttribute(NULL, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuPointerGetAttribute(&f, (CUpointer_attribute)999, p), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemFreeAsync(BOGUS_PTR, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemAllocAsync(&q, 0, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemAllocFromPoolAsync(&q, 64, (CUmemoryPool)BOGUS_HANDLE, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemAllocAsync(&q, 2 * total, NULL), CUDA_ERROR_OUT_OF_MEMORY);
    CHECK_CU(cuMemFree(p));
    ASSERT_CU(cuMemFree(p), CUDA_ERROR_INVALID_VALUE);

    /* virtual memory management */
    CUmemAllocationProp prop = {0};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    CUmemGenericAllocationHandle mh;
    size_t g;
    ASSERT_CU(cuMemGetAllocationGranularity(&g, NULL, CU_MEM_ALLOC_GRANULARITY_MINIMUM), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    ASSERT_CU(cuMemCreate(&mh, g + 4096, &prop, 0), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemCreate(&mh, g, NULL, 0), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemCreate(&mh, (total / g + 1) * g, &prop, 0), CUDA_ERROR_OUT_OF_MEMORY);
    prop.location.id = 7;
    ASSERT_CU(cuMemCreate(&mh, g, &prop, 0), CUDA_ERROR_INVALID_DEVICE);
    prop.location.id = 0;
    ASSERT_CU(cuMemAddressReserve(&q, 0, 0, 0, 0), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemAddressReserve(&q, g + 1, 0, 0, 0), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemRelease((CUmemGenericAllocationHandle)0x999), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemCreate(&mh, g, &prop, 0));
    CUdeviceptr va;
    CHECK_CU(cuMemAddressReserve(&va, 4 * g, 0, 0, 0));
    ASSERT_CU(cuMemMap(va + 4 * g, g, 0, mh, 0), CUDA_ERROR_INVALID_VALUE); /* outside the reservation */
    ASSERT_CU(cuMemMap(va, 2 * g, 0, mh, 0), CUDA_ERROR_INVALID_VALUE);     /* larger than the handle */
    CHECK_CU(cuMemMap(va, g, 0, mh, 0));
    ASSERT_CU(cuMemMap(va, g, 0, mh, 0), CUDA_ERROR_ALREADY_MAPPED);
    ASSERT_CU(cuMemAddressFree(va, 4 * g), CUDA_ERROR_INVALID_VALUE); /* still mapped */
    ASSERT_CU(cuMemUnmap(va + g, g), CUDA_ERROR_INVALID_VALUE);       /* not mapped */
    ASSERT_CU(cuMemcpyHtoD(va, &f, 4), CUDA_ERROR_INVALID_VALUE);     /* no access yet */
    CHECK_CU(cuMemUnmap(va, g));
    CHECK_CU(cuMemRelease(mh));
    ASSERT_CU(cuMemRelease(mh), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuMemMap(va, g, 0, mh, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemAddressFree(va, 4 * g));
}

TEST(streams_and_events)
{
    CUcontext ctx = sim_setup();
    CUstream s;
    CUevent e, e2;
    unsigned u;
    float ms;
    ASSERT_CU(cuStreamCreate(&s, 0x4), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuStreamCreate(NULL, 0), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuStreamQuery((CUstream)BOGUS_HANDLE), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuStreamSynchronize((CUstream)BOGUS_HANDLE), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuStreamDestroy(NULL), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuStreamDestroy(CU_STREAM_PER_THREAD), CUDA_ERROR_INVALID_HANDLE);
    CHECK_CU(cuStreamCreate(&s, 0));
    CHECK_CU(cuStreamGetFlags(s, &u));
    CUcontext sc;
    CHECK_CU(cuStreamGetCtx(s, &sc));
    ASSERT_TRUE(sc == ctx);
    ASSERT_CU(cuStreamGetFlags(s, NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuStreamDestroy(s));
    ASSERT_CU(cuStreamDestroy(s), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuStreamQuery(s), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuStreamSynchronize(s), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuStreamGetFlags(s, &u), CUDA_ERROR_INVALID_HANDLE);

    ASSERT_CU(cuEventCreate(&e, 0x80), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuEventCreate(&e, CU_EVENT_INTERPROCESS), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuEventCreate(NULL, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuEventCreate(&e, 0));
    CHECK_CU(cuEventCreate(&e2, 0));
    ASSERT_CU(cuEventRecord(e, (CUstream)BOGUS_HANDLE), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuEventRecord((CUevent)BOGUS_HANDLE, NULL), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuEventRecordWithFlags(e, NULL, 0x10), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuEventElapsedTime(&ms, e, e2), CUDA_ERROR_INVALID_HANDLE); /* not recorded */
    CHECK_CU(cuEventDestroy(e2));
    ASSERT_CU(cuEventDestroy(e2), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuEventQuery(e2), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuEventSynchronize(e2), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuEventRecord(e2, NULL), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuStreamWaitEvent(NULL, e2, 0), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuStreamWaitEvent(NULL, e, 0x10), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuEventElapsedTime(&ms, e, e2), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuLaunchHostFunc(NULL, NULL, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuStreamAddCallback(NULL, NULL, NULL, 0), CUDA_ERROR_INVALID_VALUE);
    /* events of one context cannot be recorded on another's stream */
    CUcontext other;
    CHECK_CU(cuCtxCreate(&other, NULL, 0, 0));
    CUstream os;
    CHECK_CU(cuStreamCreate(&os, 0));
    ASSERT_CU(cuEventRecord(e, os), CUDA_ERROR_INVALID_HANDLE);
    CHECK_CU(cuCtxDestroy(other));
    ASSERT_CU(cuStreamQuery(os), CUDA_ERROR_INVALID_HANDLE); /* died with its context */
}

TEST(modules_and_libraries)
{
    sim_setup();
    CUmodule m;
    CUfunction f;
    CUlibrary l;
    CUkernel k;
    size_t len;
    ASSERT_CU(cuModuleLoadData(&m, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuModuleLoadData(NULL, ".version 9.0\n"), CUDA_ERROR_INVALID_VALUE);
    const char *bad_ptx = ".version 9.0\n.target sm_80\n.address_size 64\n"
                          ".visible .entry broken(.param .u64 p)\n{\n\tfrobnicate.u32 %r1, 5;\n\tret;\n}\n";
    ASSERT_CU(cuModuleLoadData(&m, bad_ptx), CUDA_ERROR_INVALID_PTX);
    char log[512] = "";
    CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *vals[] = {log, (void *)(uintptr_t)sizeof log};
    ASSERT_CU(cuModuleLoadDataEx(&m, bad_ptx, 2, opts, vals), CUDA_ERROR_INVALID_PTX);
    ASSERT_MSG(strlen(log) > 0, "the JIT error log is empty");
    ASSERT_CU(cuLibraryLoadData(&l, bad_ptx, NULL, NULL, 0, NULL, NULL, 0), CUDA_ERROR_INVALID_PTX);
    static const unsigned char garbage[] = {0x00, 0x13, 0x37, 0xff, 0xfe, 0x01, 0x02, 0x03};
    ASSERT_CU(cuModuleLoadData(&m, garbage), CUDA_ERROR_INVALID_IMAGE);
    ASSERT_CU(cuModuleLoadData(&m, "\x01\x02\x03\x04"), CUDA_ERROR_INVALID_IMAGE);
    char *sass = sim_kernel_file("vector_add_sass90.fatbin", &len);
    ASSERT_CU(cuModuleLoadData(&m, sass), CUDA_ERROR_NO_BINARY_FOR_GPU);
    ASSERT_CU(cuLibraryLoadData(&l, sass, NULL, NULL, 0, NULL, NULL, 0), CUDA_ERROR_NO_BINARY_FOR_GPU);
    free(sass);
    char *cubin = sim_kernel_file("vector_add_sm80.cubin", &len);
    ASSERT_CU(cuModuleLoadData(&m, cubin), CUDA_ERROR_NO_BINARY_FOR_GPU);
    free(cubin);
    char *fb = sim_kernel_file("vector_add_sm80.fatbin", &len);
    fb[12] ^= 0x7f; /* corrupt the entries size */
    ASSERT_CU(cuModuleLoadData(&m, fb), CUDA_ERROR_INVALID_IMAGE);
    free(fb);
    ASSERT_CU(cuModuleLoad(&m, "/nonexistent/kernel.ptx"), CUDA_ERROR_FILE_NOT_FOUND);

    m = sim_load("vector_add.ptx");
    ASSERT_CU(cuModuleGetFunction(&f, m, "no_such_kernel"), CUDA_ERROR_NOT_FOUND);
    ASSERT_CU(cuModuleGetFunction(&f, m, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuModuleGetFunction(&f, (CUmodule)BOGUS_HANDLE, "vector_add"), CUDA_ERROR_INVALID_HANDLE);
    CHECK_CU(cuModuleGetFunction(&f, m, "vector_add"));
    int v;
    ASSERT_CU(cuFuncGetAttribute(&v, (CUfunction_attribute)77, f), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f));
    ASSERT_EQ_INT(v, 1024);
    CHECK_CU(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_NUM_REGS, f));
    ASSERT_TRUE(v > 0);
    ASSERT_CU(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 1 << 30), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_NUM_REGS, 3), CUDA_ERROR_INVALID_VALUE);
    size_t off, sz;
    ASSERT_CU(cuFuncGetParamInfo(f, 4, &off, &sz), CUDA_ERROR_INVALID_VALUE);
    const char *name;
    CHECK_CU(cuFuncGetName(&name, f));
    ASSERT_EQ_STR(name, "vector_add");
    CUmodule fm;
    CHECK_CU(cuFuncGetModule(&fm, f));
    ASSERT_TRUE(fm == m);
    CHECK_CU(cuModuleUnload(m));
    ASSERT_CU(cuModuleUnload(m), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuModuleGetFunction(&f, m, "vector_add"), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_NUM_REGS, f), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL), CUDA_ERROR_INVALID_HANDLE);

    char *ptx = sim_kernel_file("vector_add.ptx", NULL);
    CHECK_CU(cuLibraryLoadData(&l, ptx, NULL, NULL, 0, NULL, NULL, 0));
    free(ptx);
    ASSERT_CU(cuLibraryGetKernel(&k, l, "nope"), CUDA_ERROR_NOT_FOUND);
    CHECK_CU(cuLibraryGetKernel(&k, l, "vector_add"));
    CHECK_CU(cuLibraryUnload(l));
    ASSERT_CU(cuLibraryUnload(l), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuLibraryGetKernel(&k, l, "vector_add"), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuKernelGetFunction(&f, k), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuLaunchKernel((CUfunction)k, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL), CUDA_ERROR_INVALID_HANDLE);
}

TEST(launch_geometry_and_parameters)
{
    sim_setup();
    CUfunction f = sim_vector_add();
    CUdeviceptr a;
    CHECK_CU(cuMemAlloc(&a, 4096));
    int n = 1;
    void *args[] = {&a, &a, &a, &n};
    ASSERT_CU(cuLaunchKernel(f, 0, 1, 1, 32, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuLaunchKernel(f, 1, 1, 1, 0, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuLaunchKernel(f, 1, 1, 1, 1025, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuLaunchKernel(f, 1, 1, 1, 1, 1, 65, 0, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuLaunchKernel(f, 1, 1, 1, 32, 32, 2, 0, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuLaunchKernel(f, 1, 65536, 1, 32, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuLaunchKernel(f, 1, 1, 65536, 32, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuLaunchKernel(f, 0x80000000u, 1, 1, 32, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 49153, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL), CUDA_ERROR_INVALID_VALUE);
    void *extra[] = {CU_LAUNCH_PARAM_END};
    ASSERT_CU(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, args, extra), CUDA_ERROR_INVALID_VALUE);
    size_t small = 8;
    void *extra_small[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &a, CU_LAUNCH_PARAM_BUFFER_SIZE, &small,
                           CU_LAUNCH_PARAM_END};
    ASSERT_CU(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, extra_small), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuLaunchKernel((CUfunction)BOGUS_HANDLE, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL),
              CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, (CUstream)BOGUS_HANDLE, args, NULL),
              CUDA_ERROR_INVALID_HANDLE);
    /* opting in to more dynamic shared memory makes the same launch valid */
    CHECK_CU(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 64 * 1024));
    CHECK_CU(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 64 * 1024, NULL, args, NULL));
    CHECK_CU(cuLaunchKernel(f, 2147483647u / 1024 / 1024, 1, 1, 1024, 1, 1, 0, NULL, args, NULL));
    CUlaunchConfig cfg = {0};
    cfg.gridDimX = cfg.gridDimY = cfg.gridDimZ = 1;
    cfg.blockDimX = 2048;
    cfg.blockDimY = cfg.blockDimZ = 1;
    ASSERT_CU(cuLaunchKernelEx(&cfg, f, args, NULL), CUDA_ERROR_INVALID_VALUE);
    ASSERT_CU(cuLaunchKernelEx(NULL, f, args, NULL), CUDA_ERROR_INVALID_VALUE);
    cfg.blockDimX = 64;
    CHECK_CU(cuLaunchKernelEx(&cfg, f, args, NULL));
    CHECK_CU(cuCtxSynchronize());
    int blocks;
    CHECK_CU(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, 256, 0));
    ASSERT_TRUE(blocks >= 1);
    int grid, block;
    CHECK_CU(cuOccupancyMaxPotentialBlockSize(&grid, &block, f, NULL, 0, 0));
    ASSERT_TRUE(block >= 32 && block <= 1024 && grid >= 1);
}

TEST(illegal_address_is_sticky)
{
    sim_setup();
    CUfunction f = sim_vector_add();
    CUdeviceptr a, c;
    CHECK_CU(cuMemAlloc(&a, 1000 * 4));
    CHECK_CU(cuMemAlloc(&c, 1000 * 4));
    int n = 1100; /* 100 elements past the end of both */
    void *args[] = {&a, &a, &c, &n};
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, 0));
    CHECK_CU(cuLaunchKernel(f, 5, 1, 1, 256, 1, 1, 0, s, args, NULL)); /* launches are async */
    ASSERT_CU(cuStreamSynchronize(s), CUDA_ERROR_ILLEGAL_ADDRESS);
    CUdeviceptr p;
    ASSERT_CU(cuMemAlloc(&p, 16), CUDA_ERROR_ILLEGAL_ADDRESS);
    ASSERT_CU(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
    ASSERT_CU(cuStreamQuery(s), CUDA_ERROR_ILLEGAL_ADDRESS);
    ASSERT_CU(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_ILLEGAL_ADDRESS);
    ASSERT_CU(cuMemcpyHtoD(a, &n, 4), CUDA_ERROR_ILLEGAL_ADDRESS);
    /* As on NVIDIA's driver (seen on an H200), the fault poisons the process: another context,
     * made before it, cannot do device work, no context can be made, and a reset of the primary
     * context succeeds but it cannot be made again. Queries that need no device work still
     * answer. */
    CUcontext other, fresh;
    int sms;
    CHECK_CU(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0));
    ASSERT_CU(cuCtxCreate(&fresh, NULL, 0, 0), CUDA_ERROR_ILLEGAL_ADDRESS);
    CHECK_CU(cuDevicePrimaryCtxReset(0));
    ASSERT_CU(cuDevicePrimaryCtxRetain(&other, 0), CUDA_ERROR_ILLEGAL_ADDRESS);
}

TEST(a_fault_poisons_contexts_made_before_it)
{
    sim_setup();
    CUcontext prim, other;
    CHECK_CU(cuCtxGetCurrent(&prim));
    CHECK_CU(cuCtxCreate(&other, NULL, 0, 0));
    CUdeviceptr q;
    CHECK_CU(cuMemAlloc(&q, 4096));
    CHECK_CU(cuCtxSetCurrent(prim));
    CUfunction f = sim_vector_add();
    CUdeviceptr a, c;
    CHECK_CU(cuMemAlloc(&a, 1000 * 4));
    CHECK_CU(cuMemAlloc(&c, 1000 * 4));
    int n = 1100;
    void *args[] = {&a, &a, &c, &n};
    CHECK_CU(cuLaunchKernel(f, 5, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
    ASSERT_CU(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
    CHECK_CU(cuCtxSetCurrent(other));
    ASSERT_CU(cuMemsetD32(q, 7, 1024), CUDA_ERROR_ILLEGAL_ADDRESS);
    ASSERT_CU(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
    CHECK_CU(cuCtxDestroy(other));
}

TEST(kernel_touching_unmapped_or_foreign_memory_faults)
{
    sim_setup();
    CUfunction f = sim_vector_add();
    CUdeviceptr a;
    CHECK_CU(cuMemAlloc(&a, 4096));
    CUmemAllocationProp prop = {0};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    CUmemGenericAllocationHandle mh;
    CHECK_CU(cuMemCreate(&mh, 2 << 20, &prop, 0));
    CUdeviceptr va;
    CHECK_CU(cuMemAddressReserve(&va, 2 << 20, 0, 0, 0));
    CHECK_CU(cuMemMap(va, 2 << 20, 0, mh, 0)); /* mapped but no cuMemSetAccess */
    int n = 16;
    void *args[] = {&a, &a, &va, &n};
    CHECK_CU(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
    ASSERT_CU(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
}

TEST(error_names_for_every_result)
{
    static const struct {
        CUresult code;
        const char *name;
    } all[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED"},
    {CUDA_ERROR_DEINITIALIZED, "CUDA_ERROR_DEINITIALIZED"},
    {CUDA_ERROR_PROFILER_DISABLED, "CUDA_ERROR_PROFILER_DISABLED"},
    {CUDA_ERROR_PROFILER_NOT_INITIALIZED, "CUDA_ERROR_PROFILER_NOT_INITIALIZED"},
    {CUDA_ERROR_PROFILER_ALREADY_STARTED, "CUDA_ERROR_PROFILER_ALREADY_STARTED"},
    {CUDA_ERROR_PROFILER_ALREADY_STOPPED, "CUDA_ERROR_PROFILER_ALREADY_STOPPED"},
    {CUDA_ERROR_STUB_LIBRARY, "CUDA_ERROR_STUB_LIBRARY"},
    {CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER, "CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER"},
    {CUDA_ERROR_DEVICE_UNAVAILABLE, "CUDA_ERROR_DEVICE_UNAVAILABLE"},
    {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE"},
    {CUDA_ERROR_DEVICE_NOT_LICENSED, "CUDA_ERROR_DEVICE_NOT_LICENSED"},
    {CUDA_ERROR_INVALID_IMAGE, "CUDA_ERROR_INVALID_IMAGE"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT"},
    {CUDA_ERROR_CONTEXT_ALREADY_CURRENT, "CUDA_ERROR_CONTEXT_ALREADY_CURRENT"},
    {CUDA_ERROR_MAP_FAILED, "CUDA_ERROR_MAP_FAILED"},
    {CUDA_ERROR_UNMAP_FAILED, "CUDA_ERROR_UNMAP_FAILED"},
    {CUDA_ERROR_ARRAY_IS_MAPPED, "CUDA_ERROR_ARRAY_IS_MAPPED"},
    {CUDA_ERROR_ALREADY_MAPPED, "CUDA_ERROR_ALREADY_MAPPED"},
    {CUDA_ERROR_NO_BINARY_FOR_GPU, "CUDA_ERROR_NO_BINARY_FOR_GPU"},
    {CUDA_ERROR_ALREADY_ACQUIRED, "CUDA_ERROR_ALREADY_ACQUIRED"},
    {CUDA_ERROR_NOT_MAPPED, "CUDA_ERROR_NOT_MAPPED"},
    {CUDA_ERROR_NOT_MAPPED_AS_ARRAY, "CUDA_ERROR_NOT_MAPPED_AS_ARRAY"},
    {CUDA_ERROR_NOT_MAPPED_AS_POINTER, "CUDA_ERROR_NOT_MAPPED_AS_POINTER"},
    {CUDA_ERROR_ECC_UNCORRECTABLE, "CUDA_ERROR_ECC_UNCORRECTABLE"},
    {CUDA_ERROR_UNSUPPORTED_LIMIT, "CUDA_ERROR_UNSUPPORTED_LIMIT"},
    {CUDA_ERROR_CONTEXT_ALREADY_IN_USE, "CUDA_ERROR_CONTEXT_ALREADY_IN_USE"},
    {CUDA_ERROR_PEER_ACCESS_UNSUPPORTED, "CUDA_ERROR_PEER_ACCESS_UNSUPPORTED"},
    {CUDA_ERROR_INVALID_PTX, "CUDA_ERROR_INVALID_PTX"},
    {CUDA_ERROR_INVALID_GRAPHICS_CONTEXT, "CUDA_ERROR_INVALID_GRAPHICS_CONTEXT"},
    {CUDA_ERROR_NVLINK_UNCORRECTABLE, "CUDA_ERROR_NVLINK_UNCORRECTABLE"},
    {CUDA_ERROR_JIT_COMPILER_NOT_FOUND, "CUDA_ERROR_JIT_COMPILER_NOT_FOUND"},
    {CUDA_ERROR_UNSUPPORTED_PTX_VERSION, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"},
    {CUDA_ERROR_JIT_COMPILATION_DISABLED, "CUDA_ERROR_JIT_COMPILATION_DISABLED"},
    {CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY, "CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY"},
    {CUDA_ERROR_UNSUPPORTED_DEVSIDE_SYNC, "CUDA_ERROR_UNSUPPORTED_DEVSIDE_SYNC"},
    {CUDA_ERROR_CONTAINED, "CUDA_ERROR_CONTAINED"},
    {CUDA_ERROR_INVALID_SOURCE, "CUDA_ERROR_INVALID_SOURCE"},
    {CUDA_ERROR_FILE_NOT_FOUND, "CUDA_ERROR_FILE_NOT_FOUND"},
    {CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND, "CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND"},
    {CUDA_ERROR_SHARED_OBJECT_INIT_FAILED, "CUDA_ERROR_SHARED_OBJECT_INIT_FAILED"},
    {CUDA_ERROR_OPERATING_SYSTEM, "CUDA_ERROR_OPERATING_SYSTEM"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE"},
    {CUDA_ERROR_ILLEGAL_STATE, "CUDA_ERROR_ILLEGAL_STATE"},
    {CUDA_ERROR_LOSSY_QUERY, "CUDA_ERROR_LOSSY_QUERY"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND"},
    {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY"},
    {CUDA_ERROR_ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS"},
    {CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"},
    {CUDA_ERROR_LAUNCH_TIMEOUT, "CUDA_ERROR_LAUNCH_TIMEOUT"},
    {CUDA_ERROR_LAUNCH_INCOMPATIBLE_TEXTURING, "CUDA_ERROR_LAUNCH_INCOMPATIBLE_TEXTURING"},
    {CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED, "CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED"},
    {CUDA_ERROR_PEER_ACCESS_NOT_ENABLED, "CUDA_ERROR_PEER_ACCESS_NOT_ENABLED"},
    {CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE, "CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE"},
    {CUDA_ERROR_CONTEXT_IS_DESTROYED, "CUDA_ERROR_CONTEXT_IS_DESTROYED"},
    {CUDA_ERROR_ASSERT, "CUDA_ERROR_ASSERT"},
    {CUDA_ERROR_TOO_MANY_PEERS, "CUDA_ERROR_TOO_MANY_PEERS"},
    {CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED, "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED"},
    {CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED"},
    {CUDA_ERROR_HARDWARE_STACK_ERROR, "CUDA_ERROR_HARDWARE_STACK_ERROR"},
    {CUDA_ERROR_ILLEGAL_INSTRUCTION, "CUDA_ERROR_ILLEGAL_INSTRUCTION"},
    {CUDA_ERROR_MISALIGNED_ADDRESS, "CUDA_ERROR_MISALIGNED_ADDRESS"},
    {CUDA_ERROR_INVALID_ADDRESS_SPACE, "CUDA_ERROR_INVALID_ADDRESS_SPACE"},
    {CUDA_ERROR_INVALID_PC, "CUDA_ERROR_INVALID_PC"},
    {CUDA_ERROR_LAUNCH_FAILED, "CUDA_ERROR_LAUNCH_FAILED"},
    {CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE, "CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE"},
    {CUDA_ERROR_TENSOR_MEMORY_LEAK, "CUDA_ERROR_TENSOR_MEMORY_LEAK"},
    {CUDA_ERROR_NOT_PERMITTED, "CUDA_ERROR_NOT_PERMITTED"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED"},
    {CUDA_ERROR_SYSTEM_NOT_READY, "CUDA_ERROR_SYSTEM_NOT_READY"},
    {CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"},
    {CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE, "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE"},
    {CUDA_ERROR_MPS_CONNECTION_FAILED, "CUDA_ERROR_MPS_CONNECTION_FAILED"},
    {CUDA_ERROR_MPS_RPC_FAILURE, "CUDA_ERROR_MPS_RPC_FAILURE"},
    {CUDA_ERROR_MPS_SERVER_NOT_READY, "CUDA_ERROR_MPS_SERVER_NOT_READY"},
    {CUDA_ERROR_MPS_MAX_CLIENTS_REACHED, "CUDA_ERROR_MPS_MAX_CLIENTS_REACHED"},
    {CUDA_ERROR_MPS_MAX_CONNECTIONS_REACHED, "CUDA_ERROR_MPS_MAX_CONNECTIONS_REACHED"},
    {CUDA_ERROR_MPS_CLIENT_TERMINATED, "CUDA_ERROR_MPS_CLIENT_TERMINATED"},
    {CUDA_ERROR_CDP_NOT_SUPPORTED, "CUDA_ERROR_CDP_NOT_SUPPORTED"},
    {CUDA_ERROR_CDP_VERSION_MISMATCH, "CUDA_ERROR_CDP_VERSION_MISMATCH"},
    {CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED"},
    {CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED"},
    {CUDA_ERROR_STREAM_CAPTURE_MERGE, "CUDA_ERROR_STREAM_CAPTURE_MERGE"},
    {CUDA_ERROR_STREAM_CAPTURE_UNMATCHED, "CUDA_ERROR_STREAM_CAPTURE_UNMATCHED"},
    {CUDA_ERROR_STREAM_CAPTURE_UNJOINED, "CUDA_ERROR_STREAM_CAPTURE_UNJOINED"},
    {CUDA_ERROR_STREAM_CAPTURE_ISOLATION, "CUDA_ERROR_STREAM_CAPTURE_ISOLATION"},
    {CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, "CUDA_ERROR_STREAM_CAPTURE_IMPLICIT"},
    {CUDA_ERROR_CAPTURED_EVENT, "CUDA_ERROR_CAPTURED_EVENT"},
    {CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD, "CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD"},
    {CUDA_ERROR_TIMEOUT, "CUDA_ERROR_TIMEOUT"},
    {CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE, "CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE"},
    {CUDA_ERROR_EXTERNAL_DEVICE, "CUDA_ERROR_EXTERNAL_DEVICE"},
    {CUDA_ERROR_INVALID_CLUSTER_SIZE, "CUDA_ERROR_INVALID_CLUSTER_SIZE"},
    {CUDA_ERROR_FUNCTION_NOT_LOADED, "CUDA_ERROR_FUNCTION_NOT_LOADED"},
    {CUDA_ERROR_INVALID_RESOURCE_TYPE, "CUDA_ERROR_INVALID_RESOURCE_TYPE"},
    {CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION, "CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION"},
    {CUDA_ERROR_KEY_ROTATION, "CUDA_ERROR_KEY_ROTATION"},
    {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN"},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *name = NULL, *str = NULL;
        ASSERT_CU(cuGetErrorName(all[i].code, &name), CUDA_SUCCESS);
        ASSERT_EQ_STR(name, all[i].name);
        ASSERT_CU(cuGetErrorString(all[i].code, &str), CUDA_SUCCESS);
        ASSERT_MSG(str && *str, "no description for %s", all[i].name);
    }
    const char *s = "unchanged";
    ASSERT_CU(cuGetErrorName((CUresult)12345, &s), CUDA_ERROR_INVALID_VALUE);
    ASSERT_TRUE(s == NULL);
    s = "unchanged";
    ASSERT_CU(cuGetErrorString((CUresult)12345, &s), CUDA_ERROR_INVALID_VALUE);
    ASSERT_TRUE(s == NULL);
    ASSERT_CU(cuGetErrorName(CUDA_SUCCESS, NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuGetErrorString(CUDA_ERROR_OUT_OF_MEMORY, &s));
    ASSERT_EQ_STR(s, "out of memory");
    CHECK_CU(cuGetErrorString(CUDA_ERROR_ILLEGAL_ADDRESS, &s));
    ASSERT_EQ_STR(s, "an illegal memory access was encountered");
}

TEST(unsupported_calls_and_export_tables)
{
    sim_setup();
    CUarray arr;
    CUDA_ARRAY_DESCRIPTOR desc = {16, 16, CU_AD_FORMAT_FLOAT, 1};
    ASSERT_CU(cuArrayCreate(&arr, &desc), CUDA_ERROR_NOT_SUPPORTED);
    const void *table = (const void *)1;
    CUuuid id = {{0}};
    ASSERT_CU(cuGetExportTable(&table, &id), CUDA_ERROR_NOT_SUPPORTED);
    ASSERT_TRUE(table == NULL);
}

TEST(a_forked_child_cannot_use_its_parents_cuda)
{
    sim_setup();
    CUdeviceptr p;
    CHECK_CU(cuMemAlloc(&p, 64));
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, 0));
    CHECK_CU(cuMemsetD8Async(p, 1, 64, s)); /* executor threads exist in the parent */
    fflush(NULL);
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        int count;
        CUdeviceptr q;
        int ok = cuInit(0) == CUDA_ERROR_NOT_INITIALIZED &&
                 cuDeviceGetCount(&count) == CUDA_ERROR_NOT_INITIALIZED &&
                 cuMemAlloc(&q, 64) == CUDA_ERROR_NOT_INITIALIZED &&
                 cuStreamSynchronize(s) == CUDA_ERROR_NOT_INITIALIZED;
        _exit(ok ? 0 : 1);
    }
    int st;
    ASSERT_EQ_INT(waitpid(pid, &st, 0), pid);
    ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    CHECK_CU(cuStreamSynchronize(s)); /* the parent is unaffected */
}
