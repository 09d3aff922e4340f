/* SPDX-License-Identifier: Apache-2.0 */
/* gpufuse run + the client library on the sim, end to end: VRAM limits on every allocation
 * path, two processes sharing a vGPU and a SIGKILLed one's share coming back, -lcuda / dlopen /
 * cuGetProcAddress programs, kernels through the library, compute caps measured by the device
 * (the sim's NVML), two vGPUs on one GPU, HAMi variables, and flag errors.
 *
 * Runs in every flavor: in the sanitized one gpufuse run preloads the sanitizer runtime ahead of
 * the (sanitized) libgpufuse.so, so the (sanitized) helper programs run normally; the one test
 * that goes through /bin/sh turns leak detection off for it and says so. */
#include "test.h"

#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char cmdbuf[8192];

static const char *build_dir(void)
{
    const char *b = getenv("GPUFUSE_BUILD_DIR");
    return b && *b ? b : "build";
}

/* Environment every run needs: the sim as the real driver and NVML, a private sim state and
 * shm dir, a 600 ms utilization window. */
static void sim_env(void)
{
    static char drv[4096], nvml[4096];
    snprintf(drv, sizeof drv, "%s/lib/sim/libcuda.so.1", build_dir());
    snprintf(nvml, sizeof nvml, "%s/lib/sim/libnvidia-ml.so.1", build_dir());
    setenv("GPUFUSE_DRIVER", drv, 1);
    setenv("GPUFUSE_NVML", nvml, 1);
    setenv("GPUFUSE_SIM_STATE", gf_test_tmp_path("sim"), 1);
    const char *shm = gf_test_tmp_path("shm");
    mkdir(shm, 0700);
    setenv("GPUFUSE_SHM_DIR", shm, 1);
    setenv("GPUFUSE_SIM_UTIL_WINDOW_MS", "1000", 1);
}

/* Runs a shell command line, returns its output (static buffer) and exit status. */
static const char *run(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *run(int *status, const char *fmt, ...)
{
    static char out[65536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmdbuf, sizeof cmdbuf, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmdbuf, "r");
    ASSERT_TRUE(p != NULL);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int st = pclose(p);
    if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return out;
}

static unsigned long long field(const char *out, const char *key)
{
    const char *p = strstr(out, key);
    ASSERT_MSG(p != NULL, "no \"%s\" in output of `%s`:\n%s", key, cmdbuf, out);
    return strtoull(p + strlen(key), NULL, 10);
}

#define GF "%s/bin/gpufuse"
#define PROBE "%s/tests/client/helpers/cuprobe"
#define NOLINK "%s/tests/client/helpers/cuprobe_nolink"
#define B build_dir()

TEST(vram_limit_seen_by_meminfo_and_enforced)
{
    sim_env();
    int st;
    const char *o = run(&st, GF " run --vram 1Gi -- " PROBE " meminfo 2>&1", B, B);
    ASSERT_EQ_INT(st, 0);
    ASSERT_EQ_U64(field(o, "total="), 1ull << 30);
    ASSERT_EQ_U64(field(o, "devtotal="), 1ull << 30);
    ASSERT_EQ_U64(field(o, "count="), 1);
    o = run(&st, GF " run --vram 1Gi -- " PROBE " fill 64 2>&1", B, B);
    ASSERT_EQ_U64(field(o, "allocated="), 1ull << 30);
    ASSERT_CONTAINS(o, "last=CUDA_ERROR_OUT_OF_MEMORY");
    ASSERT_CONTAINS(o, "over the vGPU's VRAM limit of 1073741824 bytes");
}

TEST(vram_every_allocation_path)
{
    sim_env();
    int st;
    const char *o = run(&st, GF " run --vram 1Gi -- " PROBE " paths 2>&1", B, B);
    ASSERT_MSG(st == 0 && strstr(o, "paths_failed=0"), "paths:\n%s", o);
}

TEST(two_processes_share_and_sigkill_returns_share)
{
    sim_env();
    /* Goes through /bin/sh, which is not sanitized: no leak report for it. */
    printf("  (leak detection off for /bin/sh in this test)\n");
    int st;
    const char *o = run(&st,
                        "ASAN_OPTIONS=detect_leaks=0 " GF " run --vram 1Gi -- sh -c '"
                        "f=$(mktemp); " PROBE " hold 600 >$f 2>&1 & h=$!; "
                        "while ! grep -q ready $f; do sleep 0.05; done; "
                        "echo A; " PROBE " fill 100; "
                        "kill -9 $h; wait $h; "
                        "echo B; " PROBE " fill 100; rm -f $f' 2>&1",
                        B, B, B, B);
    const char *a = strstr(o, "A\n"), *b = strstr(o, "B\n");
    ASSERT_MSG(a && b, "output:\n%s", o);
    ASSERT_EQ_U64(field(a, "allocated="), 400ull << 20); /* 600 MiB held by the other */
    ASSERT_EQ_U64(field(b, "allocated="), 1000ull << 20); /* its share came back */
}

TEST(linked_dlopen_and_procaddr_programs)
{
    sim_env();
    const char *modes[] = {"link", "dlopen", "procaddr"};
    for (int i = 0; i < 3; i++) {
        int st;
        const char *o = run(&st, GF " run --vram 512Mi -- " "%s/tests/client/helpers/%s %s meminfo 2>&1", B,
                B, i ? "cuprobe_nolink" : "cuprobe", modes[i]);
        ASSERT_MSG(st == 0, "%s:\n%s", modes[i], o);
        ASSERT_EQ_U64(field(o, "total="), 512ull << 20);
        o = run(&st, GF " run --vram 512Mi -- %s/tests/client/helpers/%s %s fill 100 2>&1", B, B,
                i ? "cuprobe_nolink" : "cuprobe", modes[i]);
        ASSERT_EQ_U64(field(o, "allocated="), 500ull << 20);
        o = run(&st, GF " run -- %s/tests/client/helpers/%s %s vecadd 2>&1", B, B,
                i ? "cuprobe_nolink" : "cuprobe", modes[i]);
        ASSERT_MSG(st == 0 && strstr(o, "vecadd_bad=0"), "%s vecadd:\n%s", modes[i], o);
    }
}

static int device_pct(const char *o)
{
    return (int)field(o, "device_pct=");
}

TEST(compute_caps_hold_with_sync_after_each_launch)
{
    sim_env();
    int caps[] = {10, 30, 50, 70, 90};
    for (int i = 0; i < 5; i++) {
        int st;
        /* At 90% the sim's own per-launch overhead leaves no room with a sync after each
         * launch; that cap is measured with launches queued instead. Above the cap is a
         * limiter bug, always; below it may be this shared machine starving the program of
         * CPU, so a low reading is measured again (twice at most) before it fails. */
        int pct = 0;
        for (int attempt = 0; attempt < 3; attempt++) {
            const char *o = run(&st, GF " run --compute-percent %d -- " PROBE " spin 5000 2500 %d 2>&1",
                                B, caps[i], B, caps[i] < 90);
            pct = device_pct(o);
            printf("  cap %d%%: device %d%% (%s)\n", caps[i], pct,
                   caps[i] < 90 ? "sync after each launch" : "async");
            ASSERT_MSG(pct <= caps[i] + 3, "cap %d%% exceeded: device %d%%", caps[i], pct);
            if (pct >= caps[i] - 3) break;
        }
        ASSERT_NEAR(pct, caps[i], 3);
    }
}

TEST(two_vgpus_split_one_gpu)
{
    sim_env();
    int st, pa = 0, pb = 0;
    /* Launches are queued here: 30% + 70% asks for a device busy 100% of the time, and with a
     * sync after every launch the sim's ~0.3 ms per-launch gap (a real GPU's is ~5 us) would
     * leave the 70% vGPU physically short of its share. Caps with a sync after every launch
     * are covered by compute_caps_hold_with_sync_after_each_launch. As above: exceeding a cap
     * fails at once; a low share is measured again first. */
    for (int attempt = 0; attempt < 3; attempt++) {
        const char *o = run(&st,
                            "(" GF " run --compute-percent 30 -- " PROBE " spin 5000 3000 0 | sed s/^/A/ & "
                            GF " run --compute-percent 70 -- " PROBE " spin 5000 3000 0 | sed s/^/B/; wait) 2>&1",
                            B, B, B, B);
        const char *a = strstr(o, "Alaunches"), *b = strstr(o, "Blaunches");
        ASSERT_MSG(a && b, "output:\n%s", o);
        pa = (int)field(a, "device_pct=");
        pb = (int)field(b, "device_pct=");
        printf("  30%% vGPU: device %d%%, 70%% vGPU: device %d%%\n", pa, pb);
        ASSERT_MSG(pa <= 33 && pb <= 73, "a cap was exceeded: 30%% vGPU %d%%, 70%% vGPU %d%%",
                   pa, pb);
        if (pa >= 27 && pb >= 67) break;
    }
    ASSERT_NEAR(pa, 30, 3);
    ASSERT_NEAR(pb, 70, 3);
}

TEST(hami_variables_are_honored)
{
    sim_env();
    int st;
    const char *o = run(&st,
                        "CUDA_DEVICE_MEMORY_LIMIT=256m LD_LIBRARY_PATH=%s/lib:$LD_LIBRARY_PATH "
                        PROBE " meminfo 2>&1", B, B);
    ASSERT_EQ_U64(field(o, "total="), 256ull << 20);
}

TEST(exit_status_signals_and_cleanup)
{
    sim_env();
    int st;
    run(&st, GF " run -- " PROBE " nosuchmode 2>/dev/null", B, B);
    ASSERT_EQ_INT(st, 2);
    run(&st, GF " run -- /nonexistent/cmd 2>/dev/null", B);
    ASSERT_EQ_INT(st, 127);
    run(&st, GF " run -- " PROBE " hold 10 >/dev/null 2>&1 & p=$!; sleep 0.5; kill -TERM $p; wait $p", B, B);
    ASSERT_EQ_INT(st, 128 + 15); /* TERM forwarded, CMD's death reported */
    /* Nothing left in the shm dir once the command is gone. */
    const char *o = run(&st, "ls %s | grep -c gpufuse-vgpu", getenv("GPUFUSE_SHM_DIR"));
    ASSERT_EQ_INT(atoi(o), 0);
}

TEST(bad_flags_name_the_flag)
{
    sim_env();
    int st;
    const char *o = run(&st, GF " run --vram 4GB -- true 2>&1", B);
    ASSERT_EQ_INT(st, 2);
    ASSERT_CONTAINS(o, "--vram: \"4GB\"");
    o = run(&st, GF " run --vram 100Gi -- true 2>&1", B);
    ASSERT_EQ_INT(st, 2);
    ASSERT_CONTAINS(o, "--vram: 100 GiB is more than GPU 0");
    o = run(&st, GF " run --tflops 10 --compute-percent 10 -- true 2>&1", B);
    ASSERT_EQ_INT(st, 2);
    ASSERT_CONTAINS(o, "--tflops and --compute-percent");
    o = run(&st, GF " run --tflops 5000 -- true 2>&1", B);
    ASSERT_CONTAINS(o, "--tflops: 5000 is more than GPU 0");
    o = run(&st, GF " run --compute-percent 150 -- true 2>&1", B);
    ASSERT_EQ_INT(st, 2);
    ASSERT_CONTAINS(o, "--compute-percent");
    o = run(&st, GF " run --gpu 7 -- true 2>&1", B);
    ASSERT_CONTAINS(o, "--gpu: \"7\": no such GPU");
    o = run(&st, GF " run --vram 1Gi 2>&1", B);
    ASSERT_EQ_INT(st, 2);
    ASSERT_CONTAINS(o, "no command");
}
