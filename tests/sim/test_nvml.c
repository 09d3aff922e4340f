/* SPDX-License-Identifier: Apache-2.0 */
/* The sim's NVML (build/lib/sim/libnvidia-ml.so.1): devices from GPUFUSE_SIM_GPUS, memory and
 * processes from every process sharing the state file, utilization from busy intervals, and the
 * error codes real NVML gives (before init, bad handles, small buffers). */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gpufuse/nvml.h"
#include "sim/simstate.h"
#include "test.h"

#define GiB (1024ull * 1024 * 1024)
#define MS (1000000ull)

#define ASSERT_NVML(call, expected)                                                           \
    do {                                                                                      \
        nvmlReturn_t r_ = (call), x_ = (expected);                                            \
        if (r_ != x_)                                                                         \
            GF_TEST_FAILF("%s: expected %d (%s), got %d (%s)", #call, (int)x_,                \
                          nvmlErrorString(x_), (int)r_, nvmlErrorString(r_));                 \
    } while (0)
#define CHECK_NVML(call) ASSERT_NVML(call, NVML_SUCCESS)

/* Each test names its GPUs and gets a state file of its own, before anything opens it. */
static const char *fresh_state(const char *tag, const char *gpus)
{
    const char *p = gf_test_tmp_path(tag);
    unlink(p);
    setenv("GPUFUSE_SIM_STATE", p, 1);
    setenv("GPUFUSE_SIM_GPUS", gpus, 1);
    return p;
}

static gf_simstate *state(void)
{
    gf_simstate *s = NULL;
    char err[512] = "";
    ASSERT_MSG(gf_simstate_open(&s, err, sizeof err) == 0, "gf_simstate_open: %s", err);
    return s;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int wait_exit(pid_t pid)
{
    int st;
    ASSERT_EQ_INT(waitpid(pid, &st, 0), pid);
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

/* A child holding bytes of VRAM on dev until killed. */
static pid_t spawn_holder(unsigned dev, uint64_t bytes)
{
    int p[2];
    ASSERT_EQ_INT(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        gf_simstate *s = state();
        char c = gf_simstate_mem_reserve(s, dev, bytes) == 0 ? 'y' : 'n';
        if (write(p[1], &c, 1) != 1) _exit(2);
        for (;;) pause();
    }
    char c = 0;
    ASSERT_EQ_INT(read(p[0], &c, 1), 1);
    ASSERT_EQ_INT(c, 'y');
    close(p[0]);
    close(p[1]);
    return pid;
}

static nvmlDevice_t device(unsigned i)
{
    nvmlDevice_t d = NULL;
    CHECK_NVML(nvmlDeviceGetHandleByIndex_v2(i, &d));
    return d;
}

TEST(calls_before_init_are_uninitialized)
{
    fresh_state("uninit", "H100");
    unsigned n = 0;
    ASSERT_NVML(nvmlDeviceGetCount_v2(&n), NVML_ERROR_UNINITIALIZED);
    nvmlDevice_t d = NULL;
    ASSERT_NVML(nvmlDeviceGetHandleByIndex_v2(0, &d), NVML_ERROR_UNINITIALIZED);
    nvmlMemory_t m;
    ASSERT_NVML(nvmlDeviceGetMemoryInfo(d, &m), NVML_ERROR_UNINITIALIZED);
    char buf[96];
    ASSERT_NVML(nvmlSystemGetDriverVersion(buf, sizeof buf), NVML_ERROR_UNINITIALIZED);
    ASSERT_NVML(nvmlShutdown(), NVML_ERROR_UNINITIALIZED);

    /* Init is counted: two inits need two shutdowns. */
    CHECK_NVML(nvmlInit_v2());
    CHECK_NVML(nvmlInitWithFlags(0));
    CHECK_NVML(nvmlShutdown());
    CHECK_NVML(nvmlDeviceGetCount_v2(&n));
    CHECK_NVML(nvmlShutdown());
    ASSERT_NVML(nvmlDeviceGetCount_v2(&n), NVML_ERROR_UNINITIALIZED);
}

TEST(error_strings_cover_every_code)
{
    static const int codes[] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 999};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = nvmlErrorString((nvmlReturn_t)codes[i]);
        ASSERT_TRUE(s && *s);
        if (codes[i] != 999) ASSERT_MSG(strcmp(s, "Unknown Error"), "code %d unnamed", codes[i]);
    }
    ASSERT_EQ_STR(nvmlErrorString(NVML_SUCCESS), "Success");
    ASSERT_EQ_STR(nvmlErrorString(NVML_ERROR_INSUFFICIENT_SIZE), "Insufficient Size");
    ASSERT_EQ_STR(nvmlErrorString((nvmlReturn_t)12345), "Unknown Error");
}

TEST(devices_follow_sim_gpus)
{
    const char *path = fresh_state("devices", "H100:2,T4");
    CHECK_NVML(nvmlInit_v2());
    unsigned n = 0;
    CHECK_NVML(nvmlDeviceGetCount_v2(&n));
    ASSERT_EQ_INT(n, 3);

    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
    CHECK_NVML(nvmlDeviceGetName(device(0), name, sizeof name));
    ASSERT_EQ_STR(name, "NVIDIA H100 80GB HBM3");
    CHECK_NVML(nvmlDeviceGetName(device(2), name, sizeof name));
    ASSERT_EQ_STR(name, "Tesla T4");
    ASSERT_NVML(nvmlDeviceGetName(device(0), name, 5), NVML_ERROR_INSUFFICIENT_SIZE);

    char u0[NVML_DEVICE_UUID_V2_BUFFER_SIZE], u1[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    CHECK_NVML(nvmlDeviceGetUUID(device(0), u0, sizeof u0));
    CHECK_NVML(nvmlDeviceGetUUID(device(1), u1, sizeof u1));
    ASSERT_EQ_INT(strlen(u0), 40);
    ASSERT_TRUE(!strncmp(u0, "GPU-", 4) && u0[12] == '-' && u0[17] == '-' && u0[22] == '-' &&
                u0[27] == '-');
    ASSERT_TRUE(strcmp(u0, u1) != 0);
    ASSERT_NVML(nvmlDeviceGetUUID(device(0), u1, 40), NVML_ERROR_INSUFFICIENT_SIZE);
    nvmlDevice_t byuuid = NULL;
    CHECK_NVML(nvmlDeviceGetHandleByUUID(u0, &byuuid));
    ASSERT_TRUE(byuuid == device(0));
    ASSERT_NVML(nvmlDeviceGetHandleByUUID("GPU-00000000-0000-0000-0000-000000000000", &byuuid),
                NVML_ERROR_NOT_FOUND);

    /* The UUID is the state file's: the sim's own API sees the same bytes. */
    const gf_sim_device_info *info = gf_simstate_device(state(), 0);
    char hex[3];
    snprintf(hex, sizeof hex, "%02x", info->uuid[0]);
    ASSERT_TRUE(!strncmp(u0 + 4, hex, 2));

    unsigned idx = 99;
    CHECK_NVML(nvmlDeviceGetIndex(device(2), &idx));
    ASSERT_EQ_INT(idx, 2);
    int major = 0, minor = 0;
    CHECK_NVML(nvmlDeviceGetCudaComputeCapability(device(0), &major, &minor));
    ASSERT_EQ_INT(major * 10 + minor, 90);
    CHECK_NVML(nvmlDeviceGetCudaComputeCapability(device(2), &major, &minor));
    ASSERT_EQ_INT(major * 10 + minor, 75);

    nvmlPciInfo_t pci;
    CHECK_NVML(nvmlDeviceGetPciInfo_v3(device(1), &pci));
    ASSERT_EQ_INT(pci.pciDeviceId & 0xffff, 0x10DE);
    char want[32];
    snprintf(want, sizeof want, "%08X:%02X:00.0", 0u, pci.bus);
    ASSERT_EQ_STR(pci.busId, want);

    unsigned v = 0;
    CHECK_NVML(nvmlDeviceGetMaxClockInfo(device(0), NVML_CLOCK_SM, &v));
    ASSERT_EQ_INT(v, 1980);
    CHECK_NVML(nvmlDeviceGetMaxClockInfo(device(0), NVML_CLOCK_MEM, &v));
    ASSERT_EQ_INT(v, 2619);
    CHECK_NVML(nvmlDeviceGetClockInfo(device(2), NVML_CLOCK_GRAPHICS, &v));
    ASSERT_EQ_INT(v, 1590);
    ASSERT_NVML(nvmlDeviceGetClockInfo(device(0), (nvmlClockType_t)7, &v),
                NVML_ERROR_INVALID_ARGUMENT);
    CHECK_NVML(nvmlDeviceGetEnforcedPowerLimit(device(2), &v));
    ASSERT_EQ_INT(v, 70000);
    CHECK_NVML(nvmlDeviceGetMultiGpuBoard(device(0), &v));
    ASSERT_EQ_INT(v, 0);

    char ver[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
    CHECK_NVML(nvmlSystemGetDriverVersion(ver, sizeof ver));
    ASSERT_TRUE(strlen(ver) > 0);
    CHECK_NVML(nvmlSystemGetNVMLVersion(ver, sizeof ver));
    int cuda = 0;
    CHECK_NVML(nvmlSystemGetCudaDriverVersion_v2(&cuda));
    ASSERT_EQ_INT(NVML_CUDA_DRIVER_VERSION_MAJOR(cuda), 13);

    /* Bad handles and bad arguments. */
    unsigned n2;
    ASSERT_NVML(nvmlDeviceGetHandleByIndex_v2(3, &byuuid), NVML_ERROR_INVALID_ARGUMENT);
    ASSERT_NVML(nvmlDeviceGetName(NULL, name, sizeof name), NVML_ERROR_INVALID_ARGUMENT);
    ASSERT_NVML(nvmlDeviceGetName((nvmlDevice_t)&n2, name, sizeof name),
                NVML_ERROR_INVALID_ARGUMENT);
    ASSERT_NVML(nvmlDeviceGetCount_v2(NULL), NVML_ERROR_INVALID_ARGUMENT);
    ASSERT_NVML(nvmlDeviceGetTemperature(device(0), NVML_TEMPERATURE_COUNT, &v),
                NVML_ERROR_INVALID_ARGUMENT);
    CHECK_NVML(nvmlShutdown());
    unlink(path);
}

TEST(bad_sim_gpus_fails_init)
{
    const char *path = fresh_state("badgpus", "H100:zero");
    ASSERT_NVML(nvmlInit_v2(), NVML_ERROR_DRIVER_NOT_LOADED);
    unsigned n = 7;
    ASSERT_NVML(nvmlDeviceGetCount_v2(&n), NVML_ERROR_UNINITIALIZED);
    /* NO_GPUS: init succeeds with no devices. */
    CHECK_NVML(nvmlInitWithFlags(NVML_INIT_FLAG_NO_GPUS));
    CHECK_NVML(nvmlDeviceGetCount_v2(&n));
    ASSERT_EQ_INT(n, 0);
    CHECK_NVML(nvmlShutdown());
    unlink(path);
}

TEST(memory_info_shows_other_processes)
{
    const char *path = fresh_state("memory", "H100,T4");
    CHECK_NVML(nvmlInit_v2());
    nvmlMemory_t m;
    CHECK_NVML(nvmlDeviceGetMemoryInfo(device(0), &m));
    ASSERT_EQ_U64(m.total, 85520809984ull);
    ASSERT_EQ_U64(m.used, 0);
    ASSERT_EQ_U64(m.free, m.total);

    pid_t pid = spawn_holder(0, 10 * GiB);
    CHECK_NVML(nvmlDeviceGetMemoryInfo(device(0), &m));
    ASSERT_EQ_U64(m.used, 10 * GiB);
    ASSERT_EQ_U64(m.free + m.used, m.total);
    nvmlMemory_v2_t m2;
    memset(&m2, 0, sizeof m2);
    ASSERT_NVML(nvmlDeviceGetMemoryInfo_v2(device(0), &m2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    m2.version = nvmlMemory_v2;
    ASSERT_EQ_U64(nvmlMemory_v2, sizeof(nvmlMemory_v2_t) | 2u << 24);
    CHECK_NVML(nvmlDeviceGetMemoryInfo_v2(device(0), &m2));
    ASSERT_EQ_U64(m2.used, 10 * GiB);
    ASSERT_EQ_U64(m2.total, 85520809984ull);
    ASSERT_EQ_U64(m2.free + m2.used, m2.total);
    /* The other device is untouched. */
    CHECK_NVML(nvmlDeviceGetMemoryInfo(device(1), &m));
    ASSERT_EQ_U64(m.used, 0);
    ASSERT_EQ_U64(m.total, 15828320256ull);

    kill(pid, SIGKILL);
    ASSERT_EQ_INT(wait_exit(pid), 128 + SIGKILL);
    CHECK_NVML(nvmlDeviceGetMemoryInfo(device(0), &m));
    ASSERT_EQ_U64(m.used, 0);
    CHECK_NVML(nvmlShutdown());
    unlink(path);
}

TEST(running_processes_and_small_buffers)
{
    const char *path = fresh_state("procs", "A100-80G");
    CHECK_NVML(nvmlInit_v2());
    nvmlDevice_t d = device(0);
    unsigned n = 0;
    /* None: a count query answers success with zero. */
    CHECK_NVML(nvmlDeviceGetComputeRunningProcesses_v3(d, &n, NULL));
    ASSERT_EQ_INT(n, 0);

    pid_t a = spawn_holder(0, 1 * GiB), b = spawn_holder(0, 3 * GiB);
    n = 0;
    ASSERT_NVML(nvmlDeviceGetComputeRunningProcesses_v3(d, &n, NULL),
                NVML_ERROR_INSUFFICIENT_SIZE);
    ASSERT_EQ_INT(n, 2);
    nvmlProcessInfo_t infos[8];
    n = 1;
    ASSERT_NVML(nvmlDeviceGetComputeRunningProcesses_v3(d, &n, infos),
                NVML_ERROR_INSUFFICIENT_SIZE);
    ASSERT_EQ_INT(n, 2);
    n = 8;
    CHECK_NVML(nvmlDeviceGetComputeRunningProcesses_v3(d, &n, infos));
    ASSERT_EQ_INT(n, 2);
    for (unsigned i = 0; i < n; i++) {
        ASSERT_TRUE(infos[i].pid == (unsigned)a || infos[i].pid == (unsigned)b);
        ASSERT_EQ_U64(infos[i].usedGpuMemory, infos[i].pid == (unsigned)a ? 1 * GiB : 3 * GiB);
        ASSERT_EQ_U64(infos[i].gpuInstanceId, 0xFFFFFFFFu);
        ASSERT_EQ_U64(infos[i].computeInstanceId, 0xFFFFFFFFu);
    }

    /* The original entry point fills the 16-byte v1 struct. */
    typedef nvmlReturn_t (*v1_fn)(nvmlDevice_t, unsigned *, nvmlProcessInfo_v1_t *);
    v1_fn v1 = (v1_fn)dlsym(RTLD_DEFAULT, "nvmlDeviceGetComputeRunningProcesses");
    ASSERT_TRUE(v1 != NULL);
    nvmlProcessInfo_v1_t old[3];
    memset(old, 0xab, sizeof old);
    n = 3;
    CHECK_NVML(v1(d, &n, old));
    ASSERT_EQ_INT(n, 2);
    ASSERT_EQ_U64(old[0].usedGpuMemory + old[1].usedGpuMemory, 4 * GiB);
    ASSERT_EQ_INT(old[2].pid, 0xababababu);

    kill(a, SIGKILL);
    wait_exit(a);
    n = 8;
    CHECK_NVML(nvmlDeviceGetComputeRunningProcesses_v3(d, &n, infos));
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_INT(infos[0].pid, b);
    kill(b, SIGKILL);
    wait_exit(b);
    CHECK_NVML(nvmlShutdown());
    unlink(path);
}

static unsigned long long realtime_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull;
}

TEST(utilization_temperature_and_power_follow_busy_time)
{
    const char *path = fresh_state("util", "H100:2");
    setenv("GPUFUSE_SIM_UTIL_WINDOW_MS", "1000", 1);
    CHECK_NVML(nvmlInit_v2());
    gf_simstate *s = state();

    nvmlUtilization_t u;
    unsigned temp = 0, power = 0, count = 0;
    CHECK_NVML(nvmlDeviceGetUtilizationRates(device(0), &u));
    ASSERT_EQ_INT(u.gpu, 0);
    CHECK_NVML(nvmlDeviceGetTemperature(device(0), NVML_TEMPERATURE_GPU, &temp));
    ASSERT_EQ_INT(temp, 32);
    CHECK_NVML(nvmlDeviceGetPowerUsage(device(0), &power));
    ASSERT_EQ_INT(power, 70000);
    ASSERT_NVML(nvmlDeviceGetProcessUtilization(device(0), NULL, &count, 0),
                NVML_ERROR_NOT_FOUND);

    /* 400 ms of kernels in the last second. */
    uint64_t now = gf_sim_now_ns();
    unsigned long long before_us = realtime_us();
    gf_simstate_device_acquire(s, 0);
    gf_simstate_device_release(s, 0, now - 500 * MS, now - 100 * MS);

    CHECK_NVML(nvmlDeviceGetUtilizationRates(device(0), &u));
    ASSERT_NEAR(u.gpu, 40, 3);
    ASSERT_NEAR(u.memory, 16, 2);
    CHECK_NVML(nvmlDeviceGetTemperature(device(0), NVML_TEMPERATURE_GPU, &temp));
    ASSERT_NEAR(temp, 32 + 43 * 0.4, 2);
    CHECK_NVML(nvmlDeviceGetPowerUsage(device(0), &power));
    ASSERT_NEAR(power / 1000.0, 70 + 630 * 0.4, 15);
    CHECK_NVML(nvmlDeviceGetUtilizationRates(device(1), &u));
    ASSERT_EQ_INT(u.gpu, 0);

    /* Per process: ask the count, then read; a second read since that sample finds nothing. */
    count = 0;
    ASSERT_NVML(nvmlDeviceGetProcessUtilization(device(0), NULL, &count, 0),
                NVML_ERROR_INSUFFICIENT_SIZE);
    ASSERT_EQ_INT(count, 1);
    nvmlProcessUtilizationSample_t smp[4];
    count = 0;
    ASSERT_NVML(nvmlDeviceGetProcessUtilization(device(0), smp, &count, 0),
                NVML_ERROR_INSUFFICIENT_SIZE);
    count = 4;
    CHECK_NVML(nvmlDeviceGetProcessUtilization(device(0), smp, &count, 0));
    ASSERT_EQ_INT(count, 1);
    ASSERT_EQ_INT(smp[0].pid, getpid());
    ASSERT_NEAR(smp[0].smUtil, 40, 3);
    /* Its timestamp is when that kernel ended: ~100 ms before the call, in wall-clock us. */
    ASSERT_NEAR((double)smp[0].timeStamp, (double)(before_us - 100000), 20000);
    count = 4;
    ASSERT_NVML(nvmlDeviceGetProcessUtilization(device(0), smp, &count, smp[0].timeStamp),
                NVML_ERROR_NOT_FOUND);
    ASSERT_EQ_INT(count, 0);

    /* A kernel running now is utilization now, and newer than the last sample. */
    unsigned long long last = smp[0].timeStamp;
    gf_simstate_device_acquire(s, 0);
    sleep_ms(100);
    count = 4;
    CHECK_NVML(nvmlDeviceGetProcessUtilization(device(0), smp, &count, last));
    ASSERT_EQ_INT(count, 1);
    ASSERT_TRUE(smp[0].timeStamp > last);
    ASSERT_TRUE(smp[0].smUtil >= 48);
    uint64_t end = gf_sim_now_ns();
    gf_simstate_device_release(s, 0, end - 100 * MS, end);

    /* Saturated: 100%, 75 C, TDP. */
    gf_simstate_device_acquire(s, 1);
    gf_simstate_device_release(s, 1, end - 2000 * MS, gf_sim_now_ns() + 2000 * MS);
    CHECK_NVML(nvmlDeviceGetUtilizationRates(device(1), &u));
    ASSERT_EQ_INT(u.gpu, 100);
    CHECK_NVML(nvmlDeviceGetTemperature(device(1), NVML_TEMPERATURE_GPU, &temp));
    ASSERT_EQ_INT(temp, 75);
    CHECK_NVML(nvmlDeviceGetPowerUsage(device(1), &power));
    ASSERT_EQ_INT(power, 700000);
    CHECK_NVML(nvmlShutdown());
    unlink(path);
}
