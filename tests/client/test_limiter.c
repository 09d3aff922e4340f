/* SPDX-License-Identifier: Apache-2.0 */
/* The limiter on its own (no CUDA): VRAM accounting across processes, reclaim after SIGKILL,
 * the GPU-time token bucket's rate, the per-GPU end-time ring, and region versioning. */
#include "gpufuse/limiter.h"
#include "test.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024ull * 1024)

static char name_buf[64];

/* A private shm dir and a fresh vGPU name per test. */
static const char *setup(const char *tag)
{
    const char *dir = gf_test_tmp_path("shm");
    mkdir(dir, 0700);
    setenv("GPUFUSE_SHM_DIR", dir, 1);
    snprintf(name_buf, sizeof name_buf, "t-%s-%d", tag, (int)getpid());
    return name_buf;
}

static const char *make_vgpu(const char *tag, uint64_t vram, double frac)
{
    const char *name = setup(tag);
    gf_limiter_config cfg = {0};
    cfg.vram_limit[0] = vram;
    cfg.compute_fraction[0] = frac;
    char err[256];
    gf_status s = gf_limiter_create(name, &cfg, 1, err, sizeof err);
    ASSERT_MSG(s == GF_OK, "create: %s", err);
    return name;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    nanosleep(&ts, NULL);
}

TEST(vram_limit_and_release)
{
    const char *name = make_vgpu("vram", 100 * MiB, 0);
    gf_limiter *l;
    char err[256];
    ASSERT_EQ_INT(gf_limiter_open(name, &l, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(gf_limiter_mem_reserve(l, 0, 60 * MiB), GF_OK);
    ASSERT_EQ_INT(gf_limiter_mem_reserve(l, 0, 40 * MiB), GF_OK);
    ASSERT_EQ_INT(gf_limiter_mem_reserve(l, 0, 1), GF_ENOSPC);
    uint64_t used, limit;
    gf_limiter_mem_info(l, 0, &used, &limit);
    ASSERT_EQ_U64(used, 100 * MiB);
    ASSERT_EQ_U64(limit, 100 * MiB);
    gf_limiter_mem_release(l, 0, 40 * MiB);
    ASSERT_EQ_INT(gf_limiter_mem_reserve(l, 0, 40 * MiB), GF_OK);
    ASSERT_EQ_U64(gf_limiter_proc_vram(l, 0), 100 * MiB);
    /* Slot 1 has no limit. */
    ASSERT_EQ_INT(gf_limiter_mem_reserve(l, 1, 1ull << 40), GF_OK);
    ASSERT_EQ_INT(gf_limiter_mem_reserve(l, GF_LIMITER_MAX_DEVICES, 1), GF_EINVAL);
    gf_limiter_close(l);
    /* Closing returned everything the process held. */
    ASSERT_EQ_INT(gf_limiter_open_observer(name, &l, err, sizeof err), GF_OK);
    gf_limiter_mem_info(l, 0, &used, NULL);
    ASSERT_EQ_U64(used, 0);
    gf_limiter_close(l);
    ASSERT_EQ_INT(gf_limiter_unlink(name), GF_OK);
    ASSERT_EQ_INT(gf_limiter_unlink(name), GF_ENOENT);
}

TEST(two_processes_share_one_limit)
{
    const char *name = make_vgpu("share", 100 * MiB, 0);
    char err[256];
    int go[2];
    ASSERT_TRUE(pipe(go) == 0);
    pid_t child = fork();
    if (child == 0) {
        gf_limiter *c;
        if (gf_limiter_open(name, &c, err, sizeof err) != GF_OK) _exit(2);
        if (gf_limiter_mem_reserve(c, 0, 70 * MiB) != GF_OK) _exit(3);
        if (write(go[1], "x", 1) != 1) _exit(4);
        pause(); /* until killed */
        _exit(0);
    }
    char x;
    ASSERT_EQ_INT(read(go[0], &x, 1), 1);
    gf_limiter *l;
    ASSERT_EQ_INT(gf_limiter_open(name, &l, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(gf_limiter_live_procs(l), 2);
    ASSERT_EQ_INT(gf_limiter_mem_reserve(l, 0, 40 * MiB), GF_ENOSPC);
    ASSERT_EQ_INT(gf_limiter_mem_reserve(l, 0, 30 * MiB), GF_OK);
    /* SIGKILL: the child's 70 MiB come back on the next reservation that needs them. */
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    uint64_t t0 = gf_test_now_ns();
    ASSERT_EQ_INT(gf_limiter_mem_reserve(l, 0, 70 * MiB), GF_OK);
    ASSERT_TRUE(gf_test_now_ns() - t0 < 1000000000ull);
    ASSERT_EQ_INT(gf_limiter_live_procs(l), 1);
    gf_limiter_close(l);
    gf_limiter_unlink(name);
}

TEST(zombie_counts_as_dead)
{
    /* A child that exited but was not waited for holds no GPU memory any more. */
    const char *name = make_vgpu("zombie", 10 * MiB, 0);
    char err[256];
    pid_t child = fork();
    if (child == 0) {
        gf_limiter *c;
        if (gf_limiter_open(name, &c, err, sizeof err) != GF_OK) _exit(2);
        gf_limiter_mem_reserve(c, 0, 10 * MiB);
        _exit(0); /* without close */
    }
    usleep(100000);
    gf_limiter *l;
    ASSERT_EQ_INT(gf_limiter_open(name, &l, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(gf_limiter_mem_reserve(l, 0, 10 * MiB), GF_OK);
    waitpid(child, NULL, 0);
    gf_limiter_close(l);
    gf_limiter_unlink(name);
}

TEST(start_time_tells_processes_apart)
{
    uint64_t self = gf_limiter_proc_start_time(getpid());
    ASSERT_TRUE(self != 0);
    ASSERT_EQ_U64(gf_limiter_proc_start_time(getpid()), self);
    ASSERT_EQ_U64(gf_limiter_proc_start_time(0x3ffffff0), 0); /* no such pid */
}

TEST(after_fork_attaches_child_separately)
{
    const char *name = make_vgpu("fork", 100 * MiB, 0);
    char err[256];
    gf_limiter *l;
    ASSERT_EQ_INT(gf_limiter_open(name, &l, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(gf_limiter_mem_reserve(l, 0, 50 * MiB), GF_OK);
    pid_t child = fork();
    if (child == 0) {
        gf_limiter_after_fork(l);
        /* The child holds nothing; the parent's 50 MiB stay the parent's. */
        if (gf_limiter_proc_vram(l, 0) != 0) _exit(2);
        if (gf_limiter_mem_reserve(l, 0, 50 * MiB) != GF_OK) _exit(3);
        if (gf_limiter_mem_reserve(l, 0, 1) != GF_ENOSPC) _exit(4);
        _exit(0);
    }
    int st;
    waitpid(child, &st, 0);
    ASSERT_EQ_INT(WEXITSTATUS(st), 0);
    ASSERT_EQ_U64(gf_limiter_proc_vram(l, 0), 50 * MiB);
    ASSERT_EQ_INT(gf_limiter_mem_reserve(l, 0, 50 * MiB), GF_OK); /* child's came back */
    gf_limiter_close(l);
    gf_limiter_unlink(name);
}

TEST(bucket_delay_follows_charge)
{
    uint64_t t0 = gf_test_now_ns();
    const char *name = make_vgpu("bucket", 0, 0.25);
    char err[256];
    gf_limiter *l;
    ASSERT_EQ_INT(gf_limiter_open(name, &l, err, sizeof err), GF_OK);
    ASSERT_NEAR(gf_limiter_compute_fraction(l, 0), 0.25, 1e-12);
    ASSERT_NEAR(gf_limiter_compute_fraction(l, 1), 0, 1e-12);
    uint64_t t = gf_test_now_ns();
    ASSERT_EQ_U64(gf_limiter_compute_delay_ns(l, 0, t), 0);
    /* 4 ms of GPU time at 25% costs 16 ms of wall time, less the credit the bucket earned
     * (at 25%) between its creation and t — which a loaded machine makes non-zero. */
    double credit = (double)(t - t0) * 0.25;
    gf_limiter_compute_charge(l, 0, 4000000, t);
    uint64_t d = gf_limiter_compute_delay_ns(l, 0, t);
    ASSERT_MSG(d <= 16.5e6 && d >= 16e6 - credit - 0.5e6,
               "delay after 4 ms at 25%%: %.2f ms, expected 16 ms less up to %.2f ms credit",
               d / 1e6, credit / 1e6);
    uint64_t d8 = gf_limiter_compute_delay_ns(l, 0, t + 8000000);
    ASSERT_MSG(d8 + 8000000 >= d - 500000 && d8 + 8000000 <= d + 500000,
               "8 ms later the delay must be 8 ms shorter: %.2f then %.2f ms", d / 1e6,
               d8 / 1e6);
    ASSERT_EQ_U64(gf_limiter_compute_delay_ns(l, 0, t + 17000000), 0);
    /* Unlimited slot: never waits. */
    gf_limiter_compute_charge(l, 1, 1000000000, t);
    ASSERT_EQ_U64(gf_limiter_compute_delay_ns(l, 1, t), 0);
    gf_limiter_close(l);
    gf_limiter_unlink(name);
}

/* Emulates a program that launches 1 ms "kernels" as fast as the limiter lets it: the busy
 * fraction must come out at the cap. */
static double run_rate(gf_limiter *l, uint64_t kernel_ns, uint64_t window_ns)
{
    uint64_t t0 = gf_test_now_ns(), busy = 0, now;
    while ((now = gf_test_now_ns()) - t0 < window_ns) {
        gf_limiter_compute_wait(l, 0);
        uint64_t s = gf_test_now_ns();
        sleep_ns(kernel_ns);
        uint64_t e = gf_test_now_ns();
        busy += e - s;
        gf_limiter_compute_charge(l, 0, e - s, e);
    }
    return (double)busy / (double)(now - t0);
}

TEST(bucket_rate_matches_cap)
{
    double caps[] = {0.1, 0.5, 0.9};
    for (unsigned i = 0; i < 3; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "rate%u", i);
        const char *name = make_vgpu(tag, 0, caps[i]);
        char err[256];
        gf_limiter *l;
        ASSERT_EQ_INT(gf_limiter_open(name, &l, err, sizeof err), GF_OK);
        /* Above the cap is a limiter bug, always. Below it can also mean this (shared) machine
         * did not give the emulated program the CPU to use its share: measure again, twice at
         * most, before calling that a failure. */
        double got = 0;
        for (int attempt = 0; attempt < 3; attempt++) {
            got = run_rate(l, 1000000, 400000000);
            printf("  cap %.0f%%: got %.1f%%\n", caps[i] * 100, got * 100);
            ASSERT_MSG(got <= caps[i] + 0.03, "cap %.0f%% exceeded: %.1f%%", caps[i] * 100,
                       got * 100);
            if (got >= caps[i] - 0.03) break;
        }
        ASSERT_NEAR(got, caps[i], 0.03);
        gf_limiter_dev_stats st;
        ASSERT_EQ_INT(gf_limiter_stats(l, 0, &st), GF_OK);
        ASSERT_TRUE(st.busy_ns > 0);
        if (caps[i] < 0.9) ASSERT_TRUE(st.throttled_ns > 0);
        gf_limiter_close(l);
        gf_limiter_unlink(name);
    }
}

TEST(gpu_ring_subtracts_time_queued_behind_others)
{
    setup("gpu");
    char err[256];
    gf_limiter_gpu *a, *b;
    ASSERT_EQ_INT(gf_limiter_gpu_open("GPU-test", &a, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(gf_limiter_gpu_open("GPU-test", &b, err, sizeof err), GF_OK);
    /* b's kernel ran [100, 200]; a's kernel was queued at 150 and ended at 260: it ran 60. */
    ASSERT_EQ_U64(gf_limiter_gpu_account(b, 100, 200), 100);
    ASSERT_EQ_U64(gf_limiter_gpu_account(a, 150, 260), 60);
    /* An end outside the interval does not count. */
    ASSERT_EQ_U64(gf_limiter_gpu_account(b, 300, 400), 100);
    ASSERT_EQ_U64(gf_limiter_gpu_account(a, 1000, 1010), 10);
    ASSERT_EQ_U64(gf_limiter_gpu_account(a, 1010, 1010), 0);
    ASSERT_EQ_U64(gf_limiter_gpu_account(NULL, 5, 10), 5);
    gf_limiter_gpu_close(a);
    gf_limiter_gpu_close(b);
    ASSERT_EQ_INT(gf_limiter_gpu_open("bad/name", &a, err, sizeof err), GF_EINVAL);
}

TEST(regions_are_versioned)
{
    const char *name = setup("ver");
    char err[256], path[256];
    gf_limiter *l;
    ASSERT_EQ_INT(gf_limiter_open(name, &l, err, sizeof err), GF_ENOENT);
    ASSERT_EQ_INT(gf_limiter_path(name, path, sizeof path), GF_OK);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    ASSERT_TRUE(fd >= 0);
    ASSERT_TRUE(ftruncate(fd, 4096) == 0);
    close(fd);
    ASSERT_EQ_INT(gf_limiter_open(name, &l, err, sizeof err), GF_EPROTO);
    ASSERT_CONTAINS(err, path);
    unlink(path);
    ASSERT_EQ_INT(gf_limiter_create("bad name", NULL, 1, err, sizeof err), GF_EINVAL);
    ASSERT_CONTAINS(err, "bad name");
    ASSERT_EQ_INT(gf_limiter_create(name, NULL, 1, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(gf_limiter_create(name, NULL, 1, err, sizeof err), GF_EEXIST);
    ASSERT_EQ_INT(gf_limiter_create(name, NULL, 0, err, sizeof err), GF_OK);
    gf_limiter_unlink(name);
}
