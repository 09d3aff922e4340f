/* SPDX-License-Identifier: Apache-2.0 */
/* Compute limits: every launch of a vGPU with a compute cap waits while the vGPU's GPU-time
 * bucket is negative, then runs between two events; a harvester (this process's own thread,
 * and every later launch) turns finished event pairs into GPU time -- minus time spent queued
 * behind other vGPUs' kernels -- and charges it to the bucket. See docs/limiter.md. */
#include "client.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#define MAX_CTX 16
#define MAX_PENDING 512
#define POOL 256
#define REANCHOR_NS 5000000000ull /* keeps float ms from the anchor event precise to ~0.5 us */
#define POLL_NS 200000ull
/* Launches of a capped vGPU in flight per context: GPU time is known only when a kernel ends,
 * so a deep queue would let a burst far past the cap run before the bucket sees it. Two keep
 * the GPU fed while one is being measured. */
#define MAX_INFLIGHT 2

typedef struct ctxstate {
    CUcontext ctx;
    CUstream priv;        /* idle stream for anchor events */
    CUevent ref;          /* recorded at host time anchor_ns */
    uint64_t anchor_ns;
    unsigned npending;
    unsigned nfree;
    CUevent free_ev[POOL];
} ctxstate;

typedef struct rec {
    ctxstate *cs;
    CUevent start, end;
    int slot;
} rec;

static pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static ctxstate ctxs[MAX_CTX];
static rec pending[MAX_PENDING];
static unsigned npending;
static gf_limiter_gpu *gpus[GF_LIMITER_MAX_DEVICES];
static int gpu_tried[GF_LIMITER_MAX_DEVICES];
static pthread_t harvester;
static int harvester_running, stopping;
static pid_t harvester_pid;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static CUresult elapsed(float *ms, CUevent a, CUevent b)
{
    return gf_real.cuEventElapsedTime_v2 ? gf_real.cuEventElapsedTime_v2(ms, a, b)
                                         : gf_real.cuEventElapsedTime(ms, a, b);
}

/* Records ref on the idle private stream and notes the host time it happened (the midpoint of
 * a short enough record+synchronize). Under lk, with cs->ctx current. */
static int anchor(ctxstate *cs)
{
    for (int tries = 0; tries < 5; tries++) {
        uint64_t t0 = now_ns();
        if (gf_real.cuEventRecord(cs->ref, cs->priv) != CUDA_SUCCESS ||
            gf_real.cuEventSynchronize(cs->ref) != CUDA_SUCCESS)
            return -1;
        uint64_t t1 = now_ns();
        cs->anchor_ns = t0 + (t1 - t0) / 2;
        if (t1 - t0 < 200000) break;
    }
    return 0;
}

/* Under lk. The state of the current context ctx, made on first use. */
static ctxstate *ctx_get(CUcontext ctx)
{
    ctxstate *free_cs = NULL;
    for (int i = 0; i < MAX_CTX; i++) {
        if (ctxs[i].ctx == ctx) return &ctxs[i];
        if (!ctxs[i].ctx && !free_cs) free_cs = &ctxs[i];
    }
    if (!free_cs) return NULL;
    ctxstate *cs = free_cs;
    memset(cs, 0, sizeof *cs);
    if (gf_real.cuStreamCreate(&cs->priv, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) return NULL;
    if (gf_real.cuEventCreate(&cs->ref, CU_EVENT_DEFAULT) != CUDA_SUCCESS) {
        gf_real.cuStreamDestroy_v2(cs->priv);
        return NULL;
    }
    cs->ctx = ctx;
    if (anchor(cs) != 0) {
        gf_real.cuEventDestroy_v2(cs->ref);
        gf_real.cuStreamDestroy_v2(cs->priv);
        cs->ctx = NULL;
        return NULL;
    }
    return cs;
}

static CUevent ev_get(ctxstate *cs)
{
    if (cs->nfree) return cs->free_ev[--cs->nfree];
    CUevent e = NULL;
    if (gf_real.cuEventCreate(&e, CU_EVENT_DEFAULT) != CUDA_SUCCESS) return NULL;
    return e;
}

static void ev_put(ctxstate *cs, CUevent e)
{
    if (!e) return;
    if (cs->nfree < POOL) cs->free_ev[cs->nfree++] = e;
    else gf_real.cuEventDestroy_v2(e);
}

static gf_limiter_gpu *gpu_of(int slot)
{
    if (gpus[slot] || gpu_tried[slot]) return gpus[slot];
    gpu_tried[slot] = 1;
    CUdevice d;
    char id[96], err[256];
    if (gf_real.cuCtxGetDevice(&d) == CUDA_SUCCESS && gf_client_uuid_string(d, id, sizeof id) == 0 &&
        gf_limiter_gpu_open(id, &gpus[slot], err, sizeof err) != GF_OK)
        gf_log(GF_LOG_WARN, GF_CLIENT_LOG,
               "%s; time queued behind other vGPUs' kernels will count as this vGPU's", err);
    return gpus[slot];
}

/* Charges every finished launch; with wait, first waits for the oldest. Under lk. */
static void harvest_locked(int wait_oldest)
{
    if (wait_oldest && npending) gf_real.cuEventSynchronize(pending[0].end);
    unsigned keep = 0;
    for (unsigned i = 0; i < npending; i++) {
        rec *r = &pending[i];
        CUresult q = gf_real.cuEventQuery(r->end);
        if (q == CUDA_ERROR_NOT_READY) {
            pending[keep++] = *r;
            continue;
        }
        ctxstate *cs = r->cs;
        float ms_s, ms_e;
        if (q == CUDA_SUCCESS && elapsed(&ms_s, cs->ref, r->start) == CUDA_SUCCESS &&
            elapsed(&ms_e, cs->ref, r->end) == CUDA_SUCCESS) {
            uint64_t s = cs->anchor_ns + (uint64_t)((double)(ms_s > 0 ? ms_s : 0) * 1e6);
            uint64_t e = cs->anchor_ns + (uint64_t)((double)(ms_e > 0 ? ms_e : 0) * 1e6);
            uint64_t busy = gf_limiter_gpu_account(gpus[r->slot], s, e);
            gf_limiter_compute_charge(gf_g.lim, (unsigned)r->slot, busy, now_ns());
        }
        cs->npending--;
        ev_put(cs, r->start);
        ev_put(cs, r->end);
    }
    npending = keep;
}

static void *harvester_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lk);
    while (!stopping) {
        if (!npending) {
            pthread_cond_wait(&cv, &lk);
            continue;
        }
        harvest_locked(0);
        pthread_mutex_unlock(&lk);
        struct timespec ts = {0, (long)POLL_NS};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&lk);
    }
    pthread_mutex_unlock(&lk);
    return NULL;
}

/* Under lk. */
static void start_harvester(void)
{
    if (harvester_running) return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the application's signals are not for it */
    if (pthread_create(&harvester, NULL, harvester_main, NULL) == 0) {
        harvester_running = 1;
        harvester_pid = getpid();
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void gf_launch_shutdown(void)
{
    pthread_mutex_lock(&lk);
    int join = harvester_running && harvester_pid == getpid();
    stopping = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&lk);
    if (join) pthread_join(harvester, NULL);
    harvester_running = 0;
}

void gf_launch_after_fork(void)
{
    /* The child has no harvester thread and none of the parent's contexts. */
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    lk = m;
    cv = c;
    harvester_running = 0;
    stopping = 0;
    npending = 0;
    memset(ctxs, 0, sizeof ctxs);
}

void gf_launch_forget_ctx(CUcontext ctx)
{
    if (!gf_g.compute_limited || !ctx) return;
    pthread_mutex_lock(&lk);
    for (int i = 0; i < MAX_CTX; i++) {
        ctxstate *cs = &ctxs[i];
        if (cs->ctx != ctx) continue;
        unsigned keep = 0;
        for (unsigned j = 0; j < npending; j++)
            if (pending[j].cs != cs) pending[keep++] = pending[j];
        npending = keep;
        /* The context's destruction frees its events and stream. */
        memset(cs, 0, sizeof *cs);
    }
    pthread_mutex_unlock(&lk);
}

/* ---- the launch path ----------------------------------------------------------------------- */

typedef struct launch {
    int on;
    int slot;
    ctxstate *cs;
    CUevent start, end;
} launch;

typedef CUresult (*pfn_record)(CUevent, CUstream);

/* Throttles, then records the start event. Leaves l->on == 0 when this launch is not measured. */
static void begin(launch *l, CUstream s, pfn_record rec_fn)
{
    l->on = 0;
    if (gf_in_wrapper) return;
    int slot = gf_client_current_slot();
    if (slot >= 0) gf_limiter_count_launch(gf_g.lim, (unsigned)slot); /* /metrics, issue 6 */
    if (slot < 0 || gf_limiter_compute_fraction(gf_g.lim, (unsigned)slot) <= 0) return;
    CUcontext ctx = NULL;
    if (gf_real.cuCtxGetCurrent(&ctx) != CUDA_SUCCESS || !ctx) return;

    /* What finished since the last launch is charged before deciding to wait, so a program that
     * synchronizes after each launch is throttled on exactly what it used. */
    for (;;) {
        unsigned inflight = 0;
        pthread_mutex_lock(&lk);
        harvest_locked(0);
        for (int i = 0; i < MAX_CTX; i++)
            if (ctxs[i].ctx == ctx) inflight = ctxs[i].npending;
        pthread_mutex_unlock(&lk);
        if (inflight < MAX_INFLIGHT) break;
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    gf_limiter_compute_wait(gf_g.lim, (unsigned)slot);

    pthread_mutex_lock(&lk);
    gpu_of(slot);
    ctxstate *cs = ctx_get(ctx);
    if (!cs) {
        pthread_mutex_unlock(&lk);
        GF_LOG_ONCE(GF_LOG_WARN, GF_CLIENT_LOG,
                    "cannot measure kernels in context %p (events unavailable or more than %d "
                    "contexts); its launches are not charged",
                    (void *)ctx, MAX_CTX);
        return;
    }
    while (npending == MAX_PENDING) harvest_locked(1);
    if (!cs->npending && now_ns() - cs->anchor_ns > REANCHOR_NS) anchor(cs);
    l->start = ev_get(cs);
    l->end = ev_get(cs);
    if (!l->start || !l->end || rec_fn(l->start, s) != CUDA_SUCCESS) {
        ev_put(cs, l->start);
        ev_put(cs, l->end);
        pthread_mutex_unlock(&lk);
        return;
    }
    cs->npending++; /* reserved: no re-anchoring while this launch is in flight */
    pthread_mutex_unlock(&lk);
    l->cs = cs;
    l->slot = slot;
    l->on = 1;
}

static void end(launch *l, CUresult launched, CUstream s, pfn_record rec_fn)
{
    if (!l->on) return;
    pthread_mutex_lock(&lk);
    if (launched == CUDA_SUCCESS && rec_fn(l->end, s) == CUDA_SUCCESS &&
        npending < MAX_PENDING) {
        pending[npending++] = (rec){l->cs, l->start, l->end, l->slot};
        start_harvester();
        pthread_cond_signal(&cv);
    } else {
        /* Nothing ran (or cannot be measured): the start event is recorded but harmless. */
        l->cs->npending--;
        ev_put(l->cs, l->start);
        ev_put(l->cs, l->end);
    }
    pthread_mutex_unlock(&lk);
}

#define MEASURED(stream, recfn, call)                                                         \
    do {                                                                                      \
        gf_ensure();                                                                          \
        if (__builtin_expect(!gf_g.compute_limited, 1)) return call;                          \
        launch l_;                                                                            \
        begin(&l_, (stream), (recfn));                                                        \
        gf_in_wrapper++;                                                                      \
        CUresult r_ = call;                                                                   \
        gf_in_wrapper--;                                                                      \
        end(&l_, r_, (stream), (recfn));                                                      \
        return r_;                                                                            \
    } while (0)

#define LEGACY gf_real.cuEventRecord
#define PTSZ gf_real.cuEventRecord_ptsz

GF_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                  unsigned int bx, unsigned int by, unsigned int bz,
                                  unsigned int shmem, CUstream s, void **params, void **extra)
{
    MEASURED(s, LEGACY, gf_real.cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra));
}

GF_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy,
                                       unsigned int gz, unsigned int bx, unsigned int by,
                                       unsigned int bz, unsigned int shmem, CUstream s,
                                       void **params, void **extra)
{
    MEASURED(s, PTSZ,
             gf_real.cuLaunchKernel_ptsz(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra));
}

GF_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **params,
                                    void **extra)
{
    MEASURED(config ? config->hStream : NULL, LEGACY,
             gf_real.cuLaunchKernelEx(config, f, params, extra));
}

GF_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f,
                                         void **params, void **extra)
{
    MEASURED(config ? config->hStream : NULL, PTSZ,
             gf_real.cuLaunchKernelEx_ptsz(config, f, params, extra));
}

GF_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy,
                                             unsigned int gz, unsigned int bx, unsigned int by,
                                             unsigned int bz, unsigned int shmem, CUstream s,
                                             void **params)
{
    MEASURED(s, LEGACY,
             gf_real.cuLaunchCooperativeKernel(f, gx, gy, gz, bx, by, bz, shmem, s, params));
}

GF_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy,
                                                  unsigned int gz, unsigned int bx,
                                                  unsigned int by, unsigned int bz,
                                                  unsigned int shmem, CUstream s, void **params)
{
    MEASURED(s, PTSZ,
             gf_real.cuLaunchCooperativeKernel_ptsz(f, gx, gy, gz, bx, by, bz, shmem, s, params));
}

GF_EXPORT CUresult cuGraphLaunch(CUgraphExec g, CUstream s)
{
    MEASURED(s, LEGACY, gf_real.cuGraphLaunch(g, s));
}

GF_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec g, CUstream s)
{
    MEASURED(s, PTSZ, gf_real.cuGraphLaunch_ptsz(g, s));
}

GF_EXPORT CUresult cuLaunch(CUfunction f)
{
    MEASURED(NULL, LEGACY, gf_real.cuLaunch(f));
}

GF_EXPORT CUresult cuLaunchGrid(CUfunction f, int w, int h)
{
    MEASURED(NULL, LEGACY, gf_real.cuLaunchGrid(f, w, h));
}

GF_EXPORT CUresult cuLaunchGridAsync(CUfunction f, int w, int h, CUstream s)
{
    MEASURED(s, LEGACY, gf_real.cuLaunchGridAsync(f, w, h, s));
}
