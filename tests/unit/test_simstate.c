/* SPDX-License-Identifier: Apache-2.0 */
/* The sim's shared state (src/sim/state.c): VRAM shared across processes, dead and reused pids
 * reclaimed, the per-device kernel lock across processes and across a SIGKILLed holder,
 * utilization math, GPUFUSE_SIM_GPUS errors, and concurrent creation of the state file. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim/simstate.h"
#include "test.h"

#define GiB (1024ull * 1024 * 1024)
#define MiB (1024ull * 1024)
#define MS (1000000ull)

/* In state.c for tests; deliberately in no header. */
int gf_simstate__test_set_start_time(gf_simstate *s, pid_t pid, uint64_t start_time);

/* Points GPUFUSE_SIM_STATE at a fresh path for this test and names the GPUs. */
static const char *fresh_state(const char *tag, const char *gpus)
{
    const char *p = gf_test_tmp_path(tag);
    unlink(p);
    setenv("GPUFUSE_SIM_STATE", p, 1);
    if (gpus)
        setenv("GPUFUSE_SIM_GPUS", gpus, 1);
    else
        unsetenv("GPUFUSE_SIM_GPUS");
    return p;
}

static gf_simstate *open_ok(void)
{
    gf_simstate *s = NULL;
    char err[512] = "";
    int rc = gf_simstate_open(&s, err, sizeof err);
    ASSERT_MSG(rc == 0 && s, "gf_simstate_open failed: %s", err);
    return s;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static pid_t fork_child(void)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    return pid;
}

static int wait_exit(pid_t pid)
{
    int st;
    ASSERT_EQ_INT(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

static void read_byte(int fd)
{
    char c;
    ASSERT_EQ_INT(read(fd, &c, 1), 1);
}

static void write_byte(int fd)
{
    ASSERT_EQ_INT(write(fd, "x", 1), 1);
}

static uint64_t free_bytes(gf_simstate *s, unsigned dev)
{
    uint64_t f, t;
    gf_simstate_mem_info(s, dev, &f, &t);
    return f;
}

/* A child that reserves bytes on device 0, says so on ready, and then waits to be killed. */
static pid_t spawn_holder(uint64_t bytes, int *ready_rd)
{
    int p[2];
    ASSERT_EQ_INT(pipe(p), 0);
    pid_t pid = fork_child();
    if (pid == 0) {
        close(p[0]);
        gf_simstate *s = open_ok();
        if (gf_simstate_mem_reserve(s, 0, bytes) != 0) _exit(3);
        write_byte(p[1]);
        for (;;) pause();
    }
    close(p[1]);
    *ready_rd = p[0];
    return pid;
}

TEST(two_processes_share_vram)
{
    const char *path = fresh_state("share", "T4");
    gf_simstate *s = open_ok();
    ASSERT_EQ_INT(gf_simstate_device_count(s), 1);
    const gf_sim_device_info *d = gf_simstate_device(s, 0);
    ASSERT_EQ_STR(d->name, "Tesla T4");
    ASSERT_EQ_STR(d->model, "T4");
    uint64_t total = d->total_bytes;
    ASSERT_EQ_U64(total, 15828320256ull);
    ASSERT_EQ_U64(free_bytes(s, 0), total);

    int to_child[2], from_child[2];
    ASSERT_EQ_INT(pipe(to_child), 0);
    ASSERT_EQ_INT(pipe(from_child), 0);
    pid_t pid = fork_child();
    if (pid == 0) {
        /* Uses the handle inherited through fork: it must charge the child, not the parent. */
        if (gf_simstate_mem_reserve(s, 0, 4 * GiB) != 0) _exit(3);
        write_byte(from_child[1]);
        read_byte(to_child[0]);
        gf_simstate_mem_release(s, 0, 4 * GiB);
        _exit(0);
    }
    read_byte(from_child[0]);
    ASSERT_EQ_U64(free_bytes(s, 0), total - 4 * GiB);
    /* The parent cannot take more than what the child left. */
    ASSERT_EQ_INT(gf_simstate_mem_reserve(s, 0, total - 4 * GiB + 1), -1);
    ASSERT_EQ_INT(gf_simstate_mem_reserve(s, 0, 8 * GiB), 0);
    ASSERT_EQ_U64(free_bytes(s, 0), total - 12 * GiB);

    gf_sim_proc_usage u[8];
    ASSERT_EQ_INT(gf_simstate_processes(s, 0, 500 * MS, u, 8), 2);
    uint64_t sum = u[0].used_bytes + u[1].used_bytes;
    ASSERT_EQ_U64(sum, 12 * GiB);
    ASSERT_TRUE(u[0].pid == pid || u[1].pid == pid);
    ASSERT_TRUE(u[0].pid == getpid() || u[1].pid == getpid());

    write_byte(to_child[1]);
    ASSERT_EQ_INT(wait_exit(pid), 0);
    ASSERT_EQ_U64(free_bytes(s, 0), total - 8 * GiB);
    gf_simstate_mem_release(s, 0, 8 * GiB);
    ASSERT_EQ_U64(free_bytes(s, 0), total);
    /* Releasing more than one holds clamps at zero instead of wrapping. */
    gf_simstate_mem_release(s, 0, 1 * GiB);
    ASSERT_EQ_U64(free_bytes(s, 0), total);
    unlink(path);
}

TEST(killed_child_memory_is_reclaimed)
{
    const char *path = fresh_state("killed", "H100");
    gf_simstate *s = open_ok();
    uint64_t total = gf_simstate_device(s, 0)->total_bytes;
    int rd;
    pid_t pid = spawn_holder(60 * GiB, &rd);
    read_byte(rd);
    ASSERT_EQ_U64(free_bytes(s, 0), total - 60 * GiB);
    gf_sim_proc_usage u[4];
    ASSERT_EQ_INT(gf_simstate_processes(s, 0, 500 * MS, u, 4), 1);
    ASSERT_EQ_INT(u[0].pid, pid);

    /* Not reaped yet: a zombie holds no memory either. */
    ASSERT_EQ_INT(kill(pid, SIGKILL), 0);
    uint64_t deadline = gf_test_now_ns() + 5000 * MS;
    while (free_bytes(s, 0) != total && gf_test_now_ns() < deadline) sleep_ms(5);
    ASSERT_EQ_U64(free_bytes(s, 0), total);
    ASSERT_EQ_INT(wait_exit(pid), 128 + SIGKILL);
    ASSERT_EQ_INT(gf_simstate_processes(s, 0, 500 * MS, u, 4), 0);
    unlink(path);
}

TEST(reserve_reclaims_dead_process_when_full)
{
    const char *path = fresh_state("full", "L4");
    gf_simstate *s = open_ok();
    uint64_t total = gf_simstate_device(s, 0)->total_bytes;
    int rd;
    pid_t pid = spawn_holder(total - 1 * GiB, &rd);
    read_byte(rd);
    ASSERT_EQ_INT(gf_simstate_mem_reserve(s, 0, 2 * GiB), -1);
    kill(pid, SIGKILL);
    ASSERT_EQ_INT(wait_exit(pid), 128 + SIGKILL);
    /* No mem_info in between: reserve itself must reclaim before failing. */
    ASSERT_EQ_INT(gf_simstate_mem_reserve(s, 0, total), 0);
    ASSERT_EQ_U64(free_bytes(s, 0), 0);
    unlink(path);
}

TEST(reused_pid_is_treated_as_dead)
{
    const char *path = fresh_state("reuse", "H100");
    gf_simstate *s = open_ok();
    uint64_t total = gf_simstate_device(s, 0)->total_bytes;
    int rd;
    pid_t pid = spawn_holder(10 * GiB, &rd);
    read_byte(rd);
    ASSERT_EQ_U64(free_bytes(s, 0), total - 10 * GiB);
    /* The child is alive, but the table now says its pid belonged to an older process. */
    ASSERT_EQ_INT(gf_simstate__test_set_start_time(s, pid, 12345), 0);
    ASSERT_EQ_U64(free_bytes(s, 0), total);
    kill(pid, SIGKILL);
    wait_exit(pid);
    unlink(path);
}

TEST(device_lock_excludes_other_processes)
{
    const char *path = fresh_state("lock", "H100:2");
    gf_simstate *s = open_ok();
    gf_simstate_device_acquire(s, 0);
    uint64_t t0 = gf_sim_now_ns();
    int p[2];
    ASSERT_EQ_INT(pipe(p), 0);
    pid_t pid = fork_child();
    if (pid == 0) {
        gf_simstate *cs = open_ok();
        /* Device 1 is independent: free at once. */
        gf_simstate_device_acquire(cs, 1);
        gf_simstate_device_release(cs, 1, gf_sim_now_ns(), gf_sim_now_ns());
        write_byte(p[1]);
        uint64_t a = gf_sim_now_ns();
        gf_simstate_device_acquire(cs, 0);
        uint64_t waited = gf_sim_now_ns() - a;
        gf_simstate_device_release(cs, 0, gf_sim_now_ns(), gf_sim_now_ns());
        _exit(waited >= 150 * MS ? 0 : 4);
    }
    read_byte(p[0]);
    sleep_ms(250);
    gf_simstate_device_release(s, 0, t0, gf_sim_now_ns());
    ASSERT_MSG(wait_exit(pid) == 0, "the child took device 0 while the parent held it");
    unlink(path);
}

TEST(killed_lock_holder_does_not_wedge_device)
{
    const char *path = fresh_state("wedge", "A100-80G");
    gf_simstate *s = open_ok();
    int p[2];
    ASSERT_EQ_INT(pipe(p), 0);
    pid_t pid = fork_child();
    if (pid == 0) {
        gf_simstate *cs = open_ok();
        gf_simstate_device_acquire(cs, 0);
        write_byte(p[1]);
        for (;;) pause();
    }
    read_byte(p[0]);
    sleep_ms(50);
    /* The child is mid-kernel: the device is busy. */
    ASSERT_TRUE(gf_simstate_utilization(s, 0, 1000 * MS) > 0.03);
    kill(pid, SIGKILL);
    ASSERT_EQ_INT(wait_exit(pid), 128 + SIGKILL);
    uint64_t a = gf_sim_now_ns();
    gf_simstate_device_acquire(s, 0); /* must not hang: the test's timeout would fail it */
    ASSERT_TRUE(gf_sim_now_ns() - a < 2000 * MS);
    uint64_t now = gf_sim_now_ns();
    gf_simstate_device_release(s, 0, now, now);
    /* And again, normally. */
    gf_simstate_device_acquire(s, 0);
    gf_simstate_device_release(s, 0, now, now);
    unlink(path);
}

TEST(utilization_counts_intervals_in_the_window)
{
    const char *path = fresh_state("util", "H100:2");
    gf_simstate *s = open_ok();
    const uint64_t W = 1000 * MS;
    ASSERT_NEAR(gf_simstate_utilization(s, 0, W), 0.0, 1e-9);
    uint64_t now = gf_sim_now_ns();
    /* 200 ms inside the window, and 600 ms of which 100 ms fall inside it. */
    gf_simstate_device_acquire(s, 0);
    gf_simstate_device_release(s, 0, now - 300 * MS, now - 100 * MS);
    gf_simstate_device_acquire(s, 0);
    gf_simstate_device_release(s, 0, now - 1500 * MS, now - 900 * MS);
    /* Time passes while the test runs (d ns): the window's start moves into the older
     * interval, so the exact answer is 0.3 - d/W. Check it between bounds. */
    double util = gf_simstate_utilization(s, 0, W);
    double d = (double)(gf_sim_now_ns() - now);
    ASSERT_TRUE(util <= 0.3 + 1e-9);
    ASSERT_NEAR(util, 0.3 - d / (double)W, d / (double)W + 1e-6);
    ASSERT_NEAR(gf_simstate_utilization(s, 1, W), 0.0, 1e-9);
    /* A narrower window sees only its part: [now-200ms, now] holds 100 ms. */
    util = gf_simstate_utilization(s, 0, 200 * MS);
    d = (double)(gf_sim_now_ns() - now);
    ASSERT_TRUE(util <= 0.5 + 1e-9);
    ASSERT_NEAR(util, 0.5 - d / (200.0 * MS), d / (200.0 * MS) + 1e-6);

    gf_sim_proc_usage u[4];
    ASSERT_EQ_INT(gf_simstate_processes(s, 0, W, u, 4), 1);
    ASSERT_EQ_INT(u[0].pid, getpid());
    ASSERT_TRUE(u[0].busy_ns_window <= 300 * MS);
    ASSERT_TRUE(u[0].busy_ns_window + (gf_sim_now_ns() - now) >= 300 * MS);
    ASSERT_NEAR((double)u[0].last_busy_ns, (double)(now - 100 * MS), 1.0);
    /* No memory and no kernel on device 1: not listed. */
    ASSERT_EQ_INT(gf_simstate_processes(s, 1, W, u, 4), 0);

    /* A kernel running now counts while it runs. */
    gf_simstate_device_acquire(s, 1);
    sleep_ms(200);
    util = gf_simstate_utilization(s, 1, W);
    ASSERT_TRUE(util >= 0.2 && util < 0.9);
    ASSERT_EQ_INT(gf_simstate_processes(s, 1, W, u, 4), 1);
    ASSERT_TRUE(u[0].busy_ns_window >= 190 * MS);
    uint64_t end = gf_sim_now_ns();
    gf_simstate_device_release(s, 1, end - 200 * MS, end);

    /* Busy longer than the window clamps to 1 (the end lies ahead so that the time the
     * test itself takes cannot open a gap). */
    gf_simstate_device_acquire(s, 1);
    gf_simstate_device_release(s, 1, end - 5000 * MS, gf_sim_now_ns() + 5000 * MS);
    ASSERT_NEAR(gf_simstate_utilization(s, 1, W), 1.0, 1e-9);
    ASSERT_EQ_INT(gf_simstate_processes(s, 1, W, u, 4), 1);
    ASSERT_TRUE(u[0].busy_ns_window <= W);
    unlink(path);
}

TEST(util_window_env)
{
    unsetenv("GPUFUSE_SIM_UTIL_WINDOW_MS");
    ASSERT_EQ_U64(gf_simstate_util_window_ns(), 500 * MS);
    setenv("GPUFUSE_SIM_UTIL_WINDOW_MS", "250", 1);
    ASSERT_EQ_U64(gf_simstate_util_window_ns(), 250 * MS);
    setenv("GPUFUSE_SIM_UTIL_WINDOW_MS", "fast", 1);
    ASSERT_EQ_U64(gf_simstate_util_window_ns(), 500 * MS);
}

static void expect_bad_gpus(const char *value, const char *want1, const char *want2)
{
    const char *path = fresh_state("bad", value);
    gf_simstate *s = NULL;
    char err[1024] = "";
    ASSERT_MSG(gf_simstate_open(&s, err, sizeof err) == -1,
               "GPUFUSE_SIM_GPUS=\"%s\" was accepted", value);
    ASSERT_CONTAINS(err, "GPUFUSE_SIM_GPUS");
    ASSERT_CONTAINS(err, want1);
    if (want2) ASSERT_CONTAINS(err, want2);
    struct stat st;
    ASSERT_MSG(stat(path, &st) != 0, "a state file was created for a bad value");
}

TEST(bad_sim_gpus_values_are_clear_errors)
{
    expect_bad_gpus("X100", "unknown GPU model \"X100\"", "known models: H100, ");
    expect_bad_gpus("H100,GTX480:2", "unknown GPU model \"GTX480\"", "T4");
    expect_bad_gpus("H100:0", "count \"0\"", "1 to 16");
    expect_bad_gpus("H100:", "count \"\"", NULL);
    expect_bad_gpus("H100:2x", "count \"2x\"", NULL);
    expect_bad_gpus("H100:-1", "count \"-1\"", NULL);
    expect_bad_gpus("H100:17", "count \"17\"", NULL);
    expect_bad_gpus("H100,,T4", "empty item", "\"H100,,T4\"");
    expect_bad_gpus("H100,", "empty item", NULL);
    expect_bad_gpus("H100:9,T4:8", "more than 16 devices", NULL);
}

TEST(sim_gpus_syntax_and_models)
{
    const char *path = fresh_state("good", " h100:2 , Tesla T4,A100-80G:1");
    gf_simstate *s = open_ok();
    ASSERT_EQ_INT(gf_simstate_device_count(s), 4);
    ASSERT_EQ_STR(gf_simstate_device(s, 0)->model, "H100");
    ASSERT_EQ_STR(gf_simstate_device(s, 1)->name, "NVIDIA H100 80GB HBM3");
    ASSERT_EQ_STR(gf_simstate_device(s, 2)->model, "T4");
    ASSERT_EQ_STR(gf_simstate_device(s, 3)->name, "NVIDIA A100-SXM4-80GB");
    ASSERT_TRUE(gf_simstate_device(s, 4) == NULL);
    const gf_sim_device_info *h = gf_simstate_device(s, 0);
    ASSERT_EQ_U64(h->total_bytes, 85520809984ull);
    ASSERT_EQ_INT(h->sm_count, 132);
    ASSERT_EQ_INT(h->cc_major, 9);
    ASSERT_NEAR(h->fp16_tflops, 989.4, 1e-9);
    ASSERT_EQ_INT(h->power_limit_mw, 700000);
    ASSERT_EQ_INT(h->clock_khz, 1980000);
    /* UUIDs: distinct per device, RFC 4122 version/variant bits. */
    ASSERT_TRUE(memcmp(gf_simstate_device(s, 0)->uuid, gf_simstate_device(s, 1)->uuid, 16));
    ASSERT_EQ_INT(h->uuid[6] >> 4, 4);
    ASSERT_EQ_INT(h->uuid[8] >> 6, 2);
    /* Same process, same path: the same handle. */
    gf_simstate *again = open_ok();
    ASSERT_TRUE(again == s);
    unlink(path);
}

TEST(default_gpus_is_one_h100)
{
    const char *path = fresh_state("default", NULL);
    gf_simstate *s = open_ok();
    ASSERT_EQ_INT(gf_simstate_device_count(s), 1);
    ASSERT_EQ_STR(gf_simstate_device(s, 0)->model, "H100");
    unlink(path);
}

/* Exit 0 after creating the state file with the current environment. */
static void create_in_child(uint8_t uuid_out[16])
{
    int p[2];
    ASSERT_EQ_INT(pipe(p), 0);
    pid_t pid = fork_child();
    if (pid == 0) {
        gf_simstate *s = open_ok();
        ASSERT_EQ_INT(write(p[1], gf_simstate_device(s, 0)->uuid, 16), 16);
        _exit(0);
    }
    ASSERT_EQ_INT(read(p[0], uuid_out, 16), 16);
    ASSERT_EQ_INT(wait_exit(pid), 0);
    close(p[0]);
    close(p[1]);
}

TEST(existing_file_with_other_gpus_is_an_error)
{
    uint8_t u1[16], u2[16];
    const char *path = fresh_state("mismatch", "H100:2,T4");
    char saved[512];
    snprintf(saved, sizeof saved, "%s", path);
    create_in_child(u1);

    setenv("GPUFUSE_SIM_GPUS", "T4", 1);
    gf_simstate *s = NULL;
    char err[1024] = "";
    ASSERT_EQ_INT(gf_simstate_open(&s, err, sizeof err), -1);
    ASSERT_CONTAINS(err, saved);
    ASSERT_CONTAINS(err, "holds H100:2,T4:1");
    ASSERT_CONTAINS(err, "asks for T4:1");
    /* Same devices written differently is no mismatch. */
    setenv("GPUFUSE_SIM_GPUS", "H100,h100:1,T4:1", 1);
    create_in_child(u2);
    ASSERT_TRUE(!memcmp(u1, u2, 16));
    /* A process that names no GPUs takes the file as it is. */
    unsetenv("GPUFUSE_SIM_GPUS");
    s = open_ok();
    ASSERT_EQ_INT(gf_simstate_device_count(s), 3);
    ASSERT_TRUE(!memcmp(gf_simstate_device(s, 0)->uuid, u1, 16));
    unlink(saved);
}

TEST(uuid_is_stable_per_path_and_index)
{
    uint8_t a[16], b[16], c[16];
    const char *path = fresh_state("uuid", "H100");
    char saved[512];
    snprintf(saved, sizeof saved, "%s", path);
    create_in_child(a);
    unlink(saved);
    create_in_child(b); /* the same path again, created anew */
    ASSERT_TRUE(!memcmp(a, b, 16));
    unlink(saved);
    fresh_state("uuid-other", "H100");
    create_in_child(c);
    ASSERT_TRUE(memcmp(a, c, 16) != 0);
    unlink(getenv("GPUFUSE_SIM_STATE"));
}

TEST(foreign_file_is_rejected)
{
    const char *path = fresh_state("foreign", "H100");
    FILE *f = fopen(path, "w");
    ASSERT_TRUE(f != NULL);
    for (int i = 0; i < 4096; i++) fputc('z', f);
    fclose(f);
    gf_simstate *s = NULL;
    char err[1024] = "";
    ASSERT_EQ_INT(gf_simstate_open(&s, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "not a gpufuse sim state file");
    ASSERT_CONTAINS(err, path);
    unlink(path);
}

TEST(concurrent_creation_yields_one_file)
{
    enum { N = 16 };
    const char *path = fresh_state("race", "H100:2,L40S");
    char saved[512];
    snprintf(saved, sizeof saved, "%s", path);
    int go[2], res[2];
    ASSERT_EQ_INT(pipe(go), 0);
    ASSERT_EQ_INT(pipe(res), 0);
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = fork_child();
        if (pids[i] == 0) {
            close(go[1]);
            char c;
            (void)!read(go[0], &c, 1); /* EOF when the parent closes: everybody starts at once */
            gf_simstate *s = NULL;
            char err[512];
            if (gf_simstate_open(&s, err, sizeof err) != 0) {
                fprintf(stderr, "child %d: %s\n", i, err);
                _exit(3);
            }
            if (gf_simstate_device_count(s) != 3) _exit(4);
            if (gf_simstate_mem_reserve(s, 2, 1 * GiB) != 0) _exit(5);
            uint8_t msg[17];
            memcpy(msg, gf_simstate_device(s, 0)->uuid, 16);
            msg[16] = (uint8_t)i;
            if (write(res[1], msg, sizeof msg) != (ssize_t)sizeof msg) _exit(6);
            for (;;) pause();
        }
    }
    close(go[0]);
    close(go[1]);
    uint8_t first[16];
    for (int i = 0; i < N; i++) {
        uint8_t msg[17];
        ASSERT_EQ_INT(read(res[0], msg, sizeof msg), (int)sizeof msg);
        if (i == 0) memcpy(first, msg, 16);
        ASSERT_MSG(!memcmp(first, msg, 16), "child %d saw another file (different UUID)", msg[16]);
    }
    gf_simstate *s = open_ok();
    uint64_t total = gf_simstate_device(s, 2)->total_bytes;
    ASSERT_EQ_U64(free_bytes(s, 2), total - N * GiB);
    for (int i = 0; i < N; i++) kill(pids[i], SIGKILL);
    for (int i = 0; i < N; i++) ASSERT_EQ_INT(wait_exit(pids[i]), 128 + SIGKILL);
    ASSERT_EQ_U64(free_bytes(s, 2), total);

    /* No temporary files left next to it. */
    char dir[512], base[256];
    snprintf(dir, sizeof dir, "%s", saved);
    char *slash = strrchr(dir, '/');
    ASSERT_TRUE(slash != NULL);
    *slash = '\0';
    snprintf(base, sizeof base, "%s.tmp.", slash + 1);
    DIR *dp = opendir(dir);
    ASSERT_TRUE(dp != NULL);
    struct dirent *e;
    while ((e = readdir(dp)) != NULL)
        ASSERT_MSG(strncmp(e->d_name, base, strlen(base)) != 0, "left behind: %s", e->d_name);
    closedir(dp);
    unlink(saved);
}
