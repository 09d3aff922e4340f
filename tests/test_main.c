/* SPDX-License-Identifier: Apache-2.0 */
/* main() for test programs: runs each registered TEST in a forked child with a timeout and
 * prints one "PASS name" / "FAIL name" line per test for tests/run to count. */
#include "test.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 512

static struct {
    const char *name;
    gf_test_fn fn;
    const char *file;
} tests[MAX_TESTS];
static int ntests;
static const char *current;

void gf_test_register(const char *name, gf_test_fn fn, const char *file)
{
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "too many tests (max %d): raise MAX_TESTS\n", MAX_TESTS);
        abort();
    }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    tests[ntests].file = file;
    ntests++;
}

void gf_test_fail(void)
{
    fflush(stdout);
    _exit(1);
}

const char *gf_test_path(const char *rel)
{
    static char bufs[8][4096];
    static int slot;
    const char *dir = getenv("GPUFUSE_TEST_DIR");
    char *b = bufs[slot++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", dir && *dir ? dir : ".", rel);
    return b;
}

char *gf_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

const char *gf_test_tmp_path(const char *tag)
{
    static char bufs[8][512];
    static int slot;
    const char *dir = getenv("TMPDIR");
    char *b = bufs[slot++ % 8];
    snprintf(b, sizeof bufs[0], "%s/gf-%s-%d-%s", dir && *dir ? dir : "/tmp",
             current ? current : "test", (int)getpid(), tag);
    return b;
}

uint64_t gf_test_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int run_one(int i, int timeout_s)
{
    fflush(stdout);
    fflush(stderr);
    uint64_t t0 = gf_test_now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        printf("FAIL %s: fork: %s\n", tests[i].name, strerror(errno));
        return 1;
    }
    if (pid == 0) {
        setpgid(0, 0); /* so a timeout kills helpers the test started too */
        current = tests[i].name;
        tests[i].fn();
        fflush(stdout);
        _exit(0);
    }
    setpgid(pid, pid);
    int status = 0;
    uint64_t deadline = t0 + (uint64_t)timeout_s * 1000000000ull;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) break;
        if (gf_test_now_ns() > deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            printf("FAIL %s: timed out after %d s (GF_TEST_TIMEOUT)\n", tests[i].name,
                   timeout_s);
            fflush(stdout);
            return 1;
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    /* Helpers the test forgot (or that outlived a failed assert) must not leak into the next. */
    kill(-pid, SIGKILL);
    double ms = (double)(gf_test_now_ns() - t0) / 1e6;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        printf("PASS %s (%.0f ms)\n", tests[i].name, ms);
        fflush(stdout);
        return 0;
    }
    if (WIFSIGNALED(status))
        printf("FAIL %s: killed by signal %d (%s)\n", tests[i].name, WTERMSIG(status),
               strsignal(WTERMSIG(status)));
    else
        printf("FAIL %s (%s)\n", tests[i].name, tests[i].file);
    fflush(stdout);
    return 1;
}

int main(int argc, char **argv)
{
    const char *t = getenv("GF_TEST_TIMEOUT");
    int timeout_s = t && atoi(t) > 0 ? atoi(t) : 120;
    if (argc > 1 && !strcmp(argv[1], "--list")) {
        for (int i = 0; i < ntests; i++) printf("%s\n", tests[i].name);
        return 0;
    }
    int failed = 0, ran = 0;
    for (int i = 0; i < ntests; i++) {
        int selected = argc < 2;
        for (int a = 1; a < argc; a++)
            if (!strcmp(argv[a], tests[i].name)) selected = 1;
        if (!selected) continue;
        ran++;
        failed += run_one(i, timeout_s);
    }
    if (argc > 1 && ran == 0) {
        fprintf(stderr, "no test named %s; --list shows them\n", argv[1]);
        return 2;
    }
    return failed ? 1 : 0;
}
