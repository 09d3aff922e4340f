/* SPDX-License-Identifier: Apache-2.0 */
/* The sim as one GPU shared by processes: one VRAM pool, NVML sees everyone, a SIGKILLed
 * process's memory comes back, and kernels from several processes time-slice the device. */
#include <cuda.h>
#include <signal.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gpufuse/nvml.h"
#include "test.h"

#define GiB (1024ull * 1024 * 1024)

/* Runs fn in a child process; returns its pid. The child reports through its exit code. */
static pid_t spawn(int (*fn)(void *), void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) _exit(fn(arg));
    return pid;
}

static int wait_exit(pid_t pid)
{
    int st;
    ASSERT_EQ_INT(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st)) return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return WEXITSTATUS(st);
}

static CUcontext make_ctx(void)
{
    CUcontext ctx;
    CUdevice dev;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) ||
        cuCtxSetCurrent(ctx))
        return NULL;
    return ctx;
}

struct holder {
    int ready_fd;
    uint64_t bytes;
};

/* Allocates and keeps bytes until killed. */
static int hold_memory(void *p)
{
    struct holder *h = p;
    if (!make_ctx()) return 10;
    CUdeviceptr d;
    CUresult r = cuMemAlloc(&d, h->bytes);
    char c = r == CUDA_SUCCESS ? 'y' : 'n';
    if (write(h->ready_fd, &c, 1) != 1) return 11;
    if (r != CUDA_SUCCESS) return 12;
    for (;;) pause();
}

static uint64_t try_alloc_bytes;
/* Exit code 0 = allocation succeeded, 2 = CUDA_ERROR_OUT_OF_MEMORY, other = unexpected. */
static int try_alloc(void *p)
{
    (void)p;
    if (!make_ctx()) return 10;
    CUdeviceptr d;
    CUresult r = cuMemAlloc(&d, try_alloc_bytes);
    if (r == CUDA_SUCCESS) return cuMemFree(d) == CUDA_SUCCESS ? 0 : 3;
    return r == CUDA_ERROR_OUT_OF_MEMORY ? 2 : 4;
}

static pid_t expected_pid;
/* Exit code 0 when NVML shows expected_pid holding >= 60 GiB and used >= 60 GiB. */
static int nvml_sees_holder(void *p)
{
    (void)p;
    if (nvmlInit_v2() != NVML_SUCCESS) return 10;
    nvmlDevice_t d;
    if (nvmlDeviceGetHandleByIndex_v2(0, &d) != NVML_SUCCESS) return 11;
    nvmlMemory_t mem;
    if (nvmlDeviceGetMemoryInfo(d, &mem) != NVML_SUCCESS) return 12;
    if (mem.used < 60 * GiB) return 13;
    nvmlProcessInfo_t procs[16];
    unsigned n = 16;
    if (nvmlDeviceGetComputeRunningProcesses_v3(d, &n, procs) != NVML_SUCCESS) return 14;
    int found = 0;
    for (unsigned i = 0; i < n; i++)
        if ((pid_t)procs[i].pid == expected_pid && procs[i].usedGpuMemory >= 60 * GiB) found = 1;
    nvmlShutdown();
    return found ? 0 : 15;
}

static int nvml_used_below(void *p)
{
    uint64_t limit = *(uint64_t *)p;
    if (nvmlInit_v2() != NVML_SUCCESS) return 10;
    nvmlDevice_t d;
    nvmlMemory_t mem;
    if (nvmlDeviceGetHandleByIndex_v2(0, &d) || nvmlDeviceGetMemoryInfo(d, &mem)) return 11;
    nvmlShutdown();
    return mem.used < limit ? 0 : 12;
}

TEST(vram_is_one_pool_across_processes_and_sigkill_returns_it)
{
    setenv("GPUFUSE_SIM_GPUS", "H100", 1);
    int fds[2];
    ASSERT_EQ_INT(pipe(fds), 0);
    struct holder h = {fds[1], 60 * GiB};
    pid_t holder = spawn(hold_memory, &h);
    char c = 0;
    ASSERT_EQ_INT(read(fds[0], &c, 1), 1);
    ASSERT_MSG(c == 'y', "the 60 GiB allocation of an 80 GiB H100 failed");

    try_alloc_bytes = 30 * GiB;
    ASSERT_MSG(wait_exit(spawn(try_alloc, NULL)) == 2,
               "a second process's 30 GiB must fail with CUDA_ERROR_OUT_OF_MEMORY");
    try_alloc_bytes = 10 * GiB;
    ASSERT_MSG(wait_exit(spawn(try_alloc, NULL)) == 0, "10 GiB still fits next to 60 GiB");

    expected_pid = holder;
    ASSERT_MSG(wait_exit(spawn(nvml_sees_holder, NULL)) == 0,
               "NVML in a third process must show the holder's 60 GiB");

    ASSERT_EQ_INT(kill(holder, SIGKILL), 0);
    ASSERT_EQ_INT(wait_exit(holder), 128 + SIGKILL);
    try_alloc_bytes = 30 * GiB;
    ASSERT_MSG(wait_exit(spawn(try_alloc, NULL)) == 0,
               "after SIGKILL of the holder its 60 GiB must be back");
    uint64_t limit = 1 * GiB;
    ASSERT_MSG(wait_exit(spawn(nvml_used_below, &limit)) == 0,
               "NVML must no longer count the killed process's memory");
}

/* --- time: spin kernels ---------------------------------------------------------------- */

static CUfunction load_spin(void)
{
    size_t len;
    char *ptx = gf_test_read_file(gf_test_path("tests/kernels/spin.ptx"), &len);
    ASSERT_TRUE(ptx != NULL);
    CUmodule m;
    CHECK_CU(cuModuleLoadData(&m, ptx));
    free(ptx);
    CUfunction f;
    CHECK_CU(cuModuleGetFunction(&f, m, "gpufuse_sim_spin"));
    return f;
}

static void spin(CUfunction f, CUstream s, uint64_t ns)
{
    void *args[] = {&ns};
    CHECK_CU(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, s, args, NULL));
}

static double gpu_util(void)
{
    nvmlDevice_t d;
    nvmlUtilization_t u;
    if (nvmlDeviceGetHandleByIndex_v2(0, &d) || nvmlDeviceGetUtilizationRates(d, &u)) return -1;
    return u.gpu;
}

TEST(spin_kernels_take_their_time_on_one_stream)
{
    ASSERT_TRUE(make_ctx() != NULL);
    CUfunction f = load_spin();
    uint64_t t0 = gf_test_now_ns();
    for (int i = 0; i < 10; i++) spin(f, NULL, 10 * 1000000ull);
    CHECK_CU(cuCtxSynchronize());
    uint64_t dt = gf_test_now_ns() - t0;
    ASSERT_MSG(dt >= 100 * 1000000ull, "10 x 10 ms spins took %.1f ms, expected >= 100 ms",
               dt / 1e6);
}

TEST(utilization_is_high_while_spinning_and_zero_a_second_later)
{
    ASSERT_TRUE(make_ctx() != NULL);
    ASSERT_EQ_INT(nvmlInit_v2(), NVML_SUCCESS);
    CUfunction f = load_spin();
    CUstream s;
    CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    for (int i = 0; i < 100; i++) spin(f, s, 10 * 1000000ull); /* 1 s of work */
    struct timespec ts = {0, 700 * 1000000};                   /* > the 500 ms window */
    nanosleep(&ts, NULL);
    double busy = gpu_util();
    ASSERT_MSG(busy >= 90, "utilization while spinning: %.0f%%, expected ~100%%", busy);
    CHECK_CU(cuStreamSynchronize(s));
    ts.tv_sec = 1;
    ts.tv_nsec = 0;
    nanosleep(&ts, NULL);
    double idle = gpu_util();
    ASSERT_MSG(idle <= 5, "utilization a second after the spins: %.0f%%, expected ~0%%", idle);
    nvmlShutdown();
}

/* Two processes each run 20 x 10 ms: they share one device, so together it takes >= 400 ms,
 * and both make progress. */
static int spinner(void *p)
{
    int fd = *(int *)p;
    if (!make_ctx()) return 10;
    CUfunction f = load_spin();
    char c;
    if (read(fd, &c, 1) != 1) return 11; /* start together */
    for (int i = 0; i < 20; i++) spin(f, NULL, 10 * 1000000ull);
    return cuCtxSynchronize() == CUDA_SUCCESS ? 0 : 12;
}

TEST(two_processes_spinning_share_the_device)
{
    int go[2];
    ASSERT_EQ_INT(pipe(go), 0);
    pid_t a = spawn(spinner, &go[0]);
    pid_t b = spawn(spinner, &go[0]);
    usleep(300 * 1000); /* let both load their modules */
    uint64_t t0 = gf_test_now_ns();
    ASSERT_EQ_INT(write(go[1], "ab", 2), 2);
    ASSERT_EQ_INT(wait_exit(a), 0);
    ASSERT_EQ_INT(wait_exit(b), 0);
    uint64_t dt = gf_test_now_ns() - t0;
    ASSERT_MSG(dt >= 400 * 1000000ull,
               "two processes x 200 ms of spin finished in %.1f ms: the device must run one "
               "kernel at a time",
               dt / 1e6);
}
