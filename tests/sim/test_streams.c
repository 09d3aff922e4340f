/* SPDX-License-Identifier: Apache-2.0 */
/* Stream and event semantics of the sim's driver: work is really asynchronous (NOT_READY while a
 * spin kernel runs), streams order their own work, events and cuStreamWaitEvent order work
 * across streams, the legacy NULL stream synchronizes with blocking streams but not with
 * CU_STREAM_NON_BLOCKING ones, the per-thread default stream is per thread, async copies keep
 * their place in the stream, and events time what ran between them. */
#include <cuda.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "sim_test_util.h"
#include "test.h"

#define MS 1000000ull

static CUfunction g_spin;

static void spin(CUstream s, uint64_t ns)
{
    if (!g_spin) CHECK_CU(cuModuleGetFunction(&g_spin, sim_load("spin.ptx"), "gpufuse_sim_spin"));
    void *args[] = {&ns};
    CHECK_CU(cuLaunchKernel(g_spin, 1, 1, 1, 1, 1, 1, 0, s, args, NULL));
}

static double ms_since(uint64_t t0)
{
    return (double)(gf_test_now_ns() - t0) / 1e6;
}

TEST(query_is_not_ready_while_a_kernel_runs)
{
    sim_setup();
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, 0));
    CUevent e;
    CHECK_CU(cuEventCreate(&e, 0));
    ASSERT_CU(cuEventQuery(e), CUDA_SUCCESS); /* never recorded */
    spin(s, 1); /* load the module before timing */
    CHECK_CU(cuStreamSynchronize(s));
    uint64_t t0 = gf_test_now_ns();
    spin(s, 200 * MS);
    CHECK_CU(cuEventRecord(e, s));
    ASSERT_MSG(ms_since(t0) < 150, "launch blocked the host for %.1f ms", ms_since(t0));
    ASSERT_CU(cuStreamQuery(s), CUDA_ERROR_NOT_READY);
    ASSERT_CU(cuEventQuery(e), CUDA_ERROR_NOT_READY);
    CHECK_CU(cuStreamSynchronize(s));
    ASSERT_MSG(ms_since(t0) >= 195, "sync returned after %.1f ms of a 200 ms kernel", ms_since(t0));
    ASSERT_CU(cuStreamQuery(s), CUDA_SUCCESS);
    ASSERT_CU(cuEventQuery(e), CUDA_SUCCESS);
    CHECK_CU(cuEventDestroy(e));
    CHECK_CU(cuStreamDestroy(s));
}

TEST(event_elapsed_time_matches_a_spin)
{
    sim_setup();
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CUevent a, b;
    CHECK_CU(cuEventCreate(&a, 0));
    CHECK_CU(cuEventCreate(&b, CU_EVENT_BLOCKING_SYNC));
    uint64_t t0 = gf_test_now_ns();
    CHECK_CU(cuEventRecord(a, s));
    spin(s, 120 * MS);
    CHECK_CU(cuEventRecord(b, s));
    float ms = -1;
    ASSERT_CU(cuEventElapsedTime(&ms, a, b), CUDA_ERROR_NOT_READY);
    CHECK_CU(cuEventSynchronize(b));
    double wall = (double)(gf_test_now_ns() - t0) / 1e6;
    CHECK_CU(cuEventElapsedTime(&ms, a, b));
    /* At least the spin, and no more than the wall-clock time around both records (no timing
     * threshold: a loaded machine stretches both alike). */
    ASSERT_MSG(ms >= 119.0f && ms <= wall + 1.0, "elapsed %.2f ms for a 120 ms spin, %.2f ms "
               "of wall-clock time around the records", ms, wall);
    CHECK_CU(cuEventElapsedTime(&ms, b, a));
    ASSERT_TRUE(ms <= -119.0f);
}

TEST(kernels_of_two_streams_take_turns_on_the_device)
{
    sim_setup();
    CUstream s1, s2;
    CHECK_CU(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING));
    spin(NULL, 1); /* load the module before timing */
    CHECK_CU(cuCtxSynchronize());
    uint64_t t0 = gf_test_now_ns();
    spin(s1, 100 * MS);
    spin(s2, 100 * MS);
    CHECK_CU(cuCtxSynchronize());
    ASSERT_MSG(ms_since(t0) >= 195, "two 100 ms kernels finished in %.1f ms", ms_since(t0));
}

TEST(stream_wait_event_orders_work_across_streams)
{
    sim_setup();
    CUstream s1, s2;
    CHECK_CU(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
    CHECK_CU(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING));
    CUdeviceptr src, dst;
    CHECK_CU(cuMemAlloc(&src, 4096));
    CHECK_CU(cuMemAlloc(&dst, 4096));
    CHECK_CU(cuMemsetD32(src, 1, 1024));
    CUevent e;
    CHECK_CU(cuEventCreate(&e, CU_EVENT_DISABLE_TIMING));
    uint64_t t0 = gf_test_now_ns();
    spin(s1, 150 * MS);
    CHECK_CU(cuMemsetD32Async(src, 7, 1024, s1));
    CHECK_CU(cuEventRecord(e, s1));
    CHECK_CU(cuStreamWaitEvent(s2, e, 0));
    CHECK_CU(cuMemcpyDtoDAsync(dst, src, 4096, s2));
    ASSERT_CU(cuStreamQuery(s2), CUDA_ERROR_NOT_READY);
    CHECK_CU(cuStreamSynchronize(s2));
    ASSERT_MSG(ms_since(t0) >= 145, "s2 finished after %.1f ms, before s1's event", ms_since(t0));
    uint32_t h[1024];
    CHECK_CU(cuMemcpyDtoH(h, dst, sizeof h));
    for (int i = 0; i < 1024; i++) ASSERT_EQ_INT(h[i], 7);
    /* an event re-recorded later moves the wait point */
    CHECK_CU(cuEventRecord(e, s1));
    CHECK_CU(cuStreamWaitEvent(s2, e, 0));
    CHECK_CU(cuStreamSynchronize(s2));
}

TEST(legacy_stream_synchronizes_with_blocking_streams)
{
    sim_setup();
    CUstream blocking;
    CHECK_CU(cuStreamCreate(&blocking, CU_STREAM_DEFAULT));
    CUdeviceptr buf;
    CHECK_CU(cuMemAlloc(&buf, 4096));
    spin(NULL, 1);
    CHECK_CU(cuCtxSynchronize());

    /* work on a blocking stream, then on the NULL stream: the NULL stream waits */
    uint64_t t0 = gf_test_now_ns();
    spin(blocking, 150 * MS);
    CHECK_CU(cuMemsetD32Async(buf, 3, 1024, NULL));
    ASSERT_CU(cuStreamQuery(NULL), CUDA_ERROR_NOT_READY);
    CHECK_CU(cuStreamSynchronize(NULL));
    ASSERT_MSG(ms_since(t0) >= 145, "NULL stream finished after %.1f ms", ms_since(t0));

    /* work on the NULL stream, then on a blocking stream: the blocking stream waits */
    t0 = gf_test_now_ns();
    spin(NULL, 150 * MS);
    CHECK_CU(cuMemsetD32Async(buf, 4, 1024, blocking));
    ASSERT_CU(cuStreamQuery(blocking), CUDA_ERROR_NOT_READY);
    CHECK_CU(cuStreamSynchronize(blocking));
    ASSERT_MSG(ms_since(t0) >= 145, "blocking stream finished after %.1f ms", ms_since(t0));

    /* a synchronous copy (NULL stream) sees the blocking stream's earlier work */
    spin(blocking, 80 * MS);
    CHECK_CU(cuMemsetD32Async(buf, 5, 1024, blocking));
    uint32_t h[1024];
    CHECK_CU(cuMemcpyDtoH(h, buf, sizeof h));
    for (int i = 0; i < 1024; i++) ASSERT_EQ_INT(h[i], 5);
}

TEST(non_blocking_streams_do_not_synchronize_with_the_null_stream)
{
    sim_setup();
    CUstream nb;
    CHECK_CU(cuStreamCreate(&nb, CU_STREAM_NON_BLOCKING));
    unsigned flags;
    CHECK_CU(cuStreamGetFlags(nb, &flags));
    ASSERT_EQ_INT(flags, CU_STREAM_NON_BLOCKING);
    CUdeviceptr buf;
    CHECK_CU(cuMemAlloc(&buf, 4096));
    spin(NULL, 1);
    CHECK_CU(cuCtxSynchronize());

    uint64_t t0 = gf_test_now_ns();
    spin(nb, 300 * MS);
    CHECK_CU(cuMemsetD32Async(buf, 9, 1024, NULL));
    CHECK_CU(cuStreamSynchronize(NULL));
    ASSERT_MSG(ms_since(t0) < 200, "the NULL stream waited %.1f ms for a non-blocking stream",
               ms_since(t0));
    ASSERT_CU(cuStreamQuery(nb), CUDA_ERROR_NOT_READY);

    CHECK_CU(cuStreamSynchronize(nb));
    t0 = gf_test_now_ns();
    spin(NULL, 300 * MS);
    CHECK_CU(cuMemsetD32Async(buf, 10, 1024, nb));
    CHECK_CU(cuStreamSynchronize(nb));
    ASSERT_MSG(ms_since(t0) < 200, "a non-blocking stream waited %.1f ms for the NULL stream",
               ms_since(t0));
    CHECK_CU(cuCtxSynchronize());
}

struct ptds_arg {
    CUcontext ctx;
    CUresult query;
    CUresult query_ptsz;
    unsigned long long id;
};

static void *ptds_thread(void *p)
{
    struct ptds_arg *a = p;
    cuCtxSetCurrent(a->ctx);
    a->query = cuStreamQuery(CU_STREAM_PER_THREAD);
    CUresult (*q)(CUstream) = (CUresult(*)(CUstream))dlsym(RTLD_DEFAULT, "cuStreamQuery_ptsz");
    a->query_ptsz = q ? q(NULL) : CUDA_ERROR_UNKNOWN;
    cuStreamGetId(CU_STREAM_PER_THREAD, &a->id);
    return NULL;
}

TEST(per_thread_default_stream_is_per_thread)
{
    CUcontext ctx = sim_setup();
    spin(NULL, 1);
    CHECK_CU(cuCtxSynchronize());
    spin(CU_STREAM_PER_THREAD, 250 * MS);
    ASSERT_CU(cuStreamQuery(CU_STREAM_PER_THREAD), CUDA_ERROR_NOT_READY);
    CUresult (*q)(CUstream) = (CUresult(*)(CUstream))dlsym(RTLD_DEFAULT, "cuStreamQuery_ptsz");
    ASSERT_TRUE(q != NULL);
    ASSERT_CU(q(NULL), CUDA_ERROR_NOT_READY); /* _ptsz: NULL means the per-thread stream */
    struct ptds_arg a = {.ctx = ctx};
    pthread_t th;
    ASSERT_EQ_INT(pthread_create(&th, NULL, ptds_thread, &a), 0);
    pthread_join(th, NULL);
    ASSERT_CU(a.query, CUDA_SUCCESS);
    ASSERT_CU(a.query_ptsz, CUDA_SUCCESS);
    unsigned long long mine;
    CHECK_CU(cuStreamGetId(CU_STREAM_PER_THREAD, &mine));
    ASSERT_TRUE(mine != a.id);
    /* the per-thread stream is blocking: NULL-stream work waits for it */
    CUdeviceptr buf;
    CHECK_CU(cuMemAlloc(&buf, 64));
    CHECK_CU(cuMemsetD8Async(buf, 1, 64, NULL));
    ASSERT_CU(cuStreamQuery(NULL), CUDA_ERROR_NOT_READY);
    CHECK_CU(cuStreamSynchronize(CU_STREAM_PER_THREAD));
    CHECK_CU(cuCtxSynchronize());
}

TEST(async_copies_and_kernels_keep_stream_order)
{
    sim_setup();
    CUmodule m = sim_load("vector_add.ptx");
    CUfunction f;
    CHECK_CU(cuModuleGetFunction(&f, m, "vector_add"));
    int n = 4096;
    float *a, *b, *c;
    CHECK_CU(cuMemAllocHost((void **)&a, n * 4));
    CHECK_CU(cuMemAllocHost((void **)&b, n * 4));
    CHECK_CU(cuMemHostAlloc((void **)&c, n * 4, 0));
    float *pageable = malloc(n * 4);
    for (int i = 0; i < n; i++) a[i] = (float)i, b[i] = 0.5f, pageable[i] = 100.0f;
    CUdeviceptr da, db, dc;
    CHECK_CU(cuMemAlloc(&da, n * 4));
    CHECK_CU(cuMemAlloc(&db, n * 4));
    CHECK_CU(cuMemAlloc(&dc, n * 4));
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    spin(s, 100 * MS); /* everything below is queued behind this */
    CHECK_CU(cuMemcpyHtoDAsync(da, a, n * 4, s));
    CHECK_CU(cuMemcpyHtoDAsync(db, pageable, n * 4, s));
    for (int i = 0; i < n; i++) pageable[i] = -1.0f; /* pageable source: staged at the call */
    void *args[] = {&da, &db, &dc, &n};
    CHECK_CU(cuLaunchKernel(f, n / 256, 1, 1, 256, 1, 1, 0, s, args, NULL));
    CHECK_CU(cuMemcpyDtoDAsync(da, dc, n * 4, s));
    CHECK_CU(cuLaunchKernel(f, n / 256, 1, 1, 256, 1, 1, 0, s, args, NULL)); /* c = (a+b)+b */
    CHECK_CU(cuMemcpyDtoHAsync(c, dc, n * 4, s));
    ASSERT_CU(cuStreamQuery(s), CUDA_ERROR_NOT_READY);
    CHECK_CU(cuStreamSynchronize(s));
    for (int i = 0; i < n; i++) ASSERT_NEAR(c[i], (float)i + 200.0f, 0);
    CHECK_CU(cuMemFreeHost(a));
    CHECK_CU(cuMemFreeHost(b));
    CHECK_CU(cuMemFreeHost(c));
    free(pageable);
}

static atomic_int g_log[8];
static atomic_int g_nlog;
static uint64_t g_fn_time;

static void host_fn(void *p)
{
    if ((intptr_t)p == 1) g_fn_time = gf_test_now_ns();
    g_log[atomic_fetch_add(&g_nlog, 1)] = (int)(intptr_t)p;
}

static void CUDA_CB callback(CUstream s, CUresult status, void *p)
{
    (void)s;
    g_log[atomic_fetch_add(&g_nlog, 1)] = status == CUDA_SUCCESS ? (int)(intptr_t)p : -1;
}

TEST(host_functions_and_callbacks_run_in_stream_order)
{
    sim_setup();
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, 0));
    spin(NULL, 1);
    CHECK_CU(cuCtxSynchronize());
    uint64_t t0 = gf_test_now_ns();
    spin(s, 80 * MS);
    CHECK_CU(cuLaunchHostFunc(s, host_fn, (void *)1));
    spin(s, 20 * MS);
    CHECK_CU(cuLaunchHostFunc(s, host_fn, (void *)2));
    CHECK_CU(cuStreamAddCallback(s, callback, (void *)3, 0));
    ASSERT_EQ_INT(atomic_load(&g_nlog), 0);
    CHECK_CU(cuStreamSynchronize(s));
    ASSERT_EQ_INT(atomic_load(&g_nlog), 3);
    ASSERT_EQ_INT(g_log[0], 1);
    ASSERT_EQ_INT(g_log[1], 2);
    ASSERT_EQ_INT(g_log[2], 3);
    ASSERT_MSG((g_fn_time - t0) / 1e6 >= 78, "host function ran %.1f ms after launch, before the spin ended",
               (g_fn_time - t0) / 1e6);
}

TEST(destroying_a_busy_stream_lets_its_work_finish)
{
    sim_setup();
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, 0));
    CUdeviceptr buf;
    CHECK_CU(cuMemAlloc(&buf, 256));
    CHECK_CU(cuMemsetD8(buf, 0, 256));
    spin(s, 50 * MS);
    CHECK_CU(cuMemsetD8Async(buf, 0x5a, 256, s));
    CHECK_CU(cuStreamDestroy(s));
    ASSERT_CU(cuStreamQuery(s), CUDA_ERROR_INVALID_HANDLE);
    CHECK_CU(cuCtxSynchronize());
    uint8_t h[256];
    CHECK_CU(cuMemcpyDtoH(h, buf, sizeof h));
    for (int i = 0; i < 256; i++) ASSERT_EQ_INT(h[i], 0x5a);
}

TEST(ctx_synchronize_waits_for_every_stream)
{
    sim_setup();
    CUstream s[4];
    spin(NULL, 1);
    CHECK_CU(cuCtxSynchronize());
    uint64_t t0 = gf_test_now_ns();
    for (int i = 0; i < 4; i++) {
        CHECK_CU(cuStreamCreateWithPriority(&s[i], CU_STREAM_NON_BLOCKING, -i));
        spin(s[i], 40 * MS);
    }
    int prio;
    CHECK_CU(cuStreamGetPriority(s[3], &prio));
    ASSERT_EQ_INT(prio, -3);
    CHECK_CU(cuCtxSynchronize());
    ASSERT_MSG(ms_since(t0) >= 155, "4 x 40 ms finished in %.1f ms", ms_since(t0));
    for (int i = 0; i < 4; i++) ASSERT_CU(cuStreamQuery(s[i]), CUDA_SUCCESS);
}

TEST(event_timing_errors)
{
    sim_setup();
    CUevent a, b, nt;
    CHECK_CU(cuEventCreate(&a, 0));
    CHECK_CU(cuEventCreate(&b, 0));
    CHECK_CU(cuEventCreate(&nt, CU_EVENT_DISABLE_TIMING));
    float ms;
    ASSERT_CU(cuEventElapsedTime(&ms, a, b), CUDA_ERROR_INVALID_HANDLE); /* never recorded */
    CHECK_CU(cuEventRecord(a, NULL));
    CHECK_CU(cuEventRecord(b, NULL));
    CHECK_CU(cuEventRecord(nt, NULL));
    CHECK_CU(cuEventSynchronize(b));
    CHECK_CU(cuEventSynchronize(nt));
    CHECK_CU(cuEventElapsedTime(&ms, a, b));
    ASSERT_TRUE(ms >= 0.0f);
    ASSERT_CU(cuEventElapsedTime(&ms, a, nt), CUDA_ERROR_INVALID_HANDLE);
    ASSERT_CU(cuEventElapsedTime(NULL, a, b), CUDA_ERROR_INVALID_VALUE);
    CUresult (*v2)(float *, CUevent, CUevent) =
        (CUresult(*)(float *, CUevent, CUevent))dlsym(RTLD_DEFAULT, "cuEventElapsedTime_v2");
    ASSERT_TRUE(v2 != NULL);
    CHECK_CU(v2(&ms, a, b));
}

TEST(ctx_record_event_covers_every_stream)
{
    CUcontext ctx = sim_setup();
    CUstream nb;
    CHECK_CU(cuStreamCreate(&nb, CU_STREAM_NON_BLOCKING));
    spin(NULL, 1);
    CHECK_CU(cuCtxSynchronize());
    spin(nb, 120 * MS);
    CUevent e;
    CHECK_CU(cuEventCreate(&e, 0));
    CHECK_CU(cuCtxRecordEvent(ctx, e));
    ASSERT_CU(cuEventQuery(e), CUDA_ERROR_NOT_READY);
    CHECK_CU(cuEventSynchronize(e));
    ASSERT_CU(cuStreamQuery(nb), CUDA_SUCCESS);
}

struct worker_arg {
    CUcontext ctx;
    CUfunction f;
    int id;
    int failures;
};

static void *worker(void *p)
{
    struct worker_arg *w = p;
    cuCtxSetCurrent(w->ctx);
    enum { N = 2048 };
    float *a = malloc(N * 4), *c = malloc(N * 4);
    for (int it = 0; it < 20; it++) {
        CUstream s;
        CUevent e;
        CUdeviceptr da, dc;
        int n = N;
        if (cuStreamCreate(&s, it & 1 ? CU_STREAM_NON_BLOCKING : 0) || cuEventCreate(&e, 0) ||
            cuMemAlloc(&da, N * 4) || cuMemAllocAsync(&dc, N * 4, s)) {
            w->failures++;
            break;
        }
        for (int i = 0; i < N; i++) a[i] = (float)(w->id * 1000 + it + i);
        void *args[] = {&da, &da, &dc, &n};
        if (cuMemcpyHtoDAsync(da, a, N * 4, s) ||
            cuLaunchKernel(w->f, N / 256, 1, 1, 256, 1, 1, 0, s, args, NULL) ||
            cuMemcpyDtoHAsync(c, dc, N * 4, s) || cuEventRecord(e, s) || cuEventSynchronize(e))
            w->failures++;
        for (int i = 0; i < N; i++)
            if (c[i] != 2 * a[i]) {
                w->failures++;
                break;
            }
        if (cuMemFreeAsync(dc, s) || cuStreamSynchronize(s) || cuMemFree(da) || cuEventDestroy(e) ||
            cuStreamDestroy(s))
            w->failures++;
    }
    free(a), free(c);
    return NULL;
}

TEST(many_threads_share_one_context)
{
    CUcontext ctx = sim_setup();
    CUfunction f;
    CHECK_CU(cuModuleGetFunction(&f, sim_load("vector_add.ptx"), "vector_add"));
    enum { T = 8 };
    pthread_t th[T];
    struct worker_arg w[T];
    for (int i = 0; i < T; i++) {
        w[i] = (struct worker_arg){ctx, f, i, 0};
        ASSERT_EQ_INT(pthread_create(&th[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < T; i++) ASSERT_MSG(w[i].failures == 0, "thread %d: %d failures", i, w[i].failures);
    CHECK_CU(cuCtxSynchronize());
}
