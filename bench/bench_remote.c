/* SPDX-License-Identifier: Apache-2.0 */
/* make bench: the remote backend against its baselines, measured in the same run. Starts a
 * `gpufuse worker` on the sim (tcp:// and shm://), re-runs itself as a remote-mode client of each
 * (the client library is this program's libcuda.so.1), and prints:
 *   sync RTT      cuCtxSynchronize on an idle context  / a raw TCP ping-pong of the same sizes
 *   launch cost   client time per asynchronous cuLaunchKernel (goal <= 1 us)
 *   H2D, D2H      64 MiB copies over tcp:// / raw TCP socket bandwidth (goal >= 0.9)
 *   shm H2D, D2H  the same over shm:// / memcpy bandwidth (goal >= 0.7)
 *
 *   GPUFUSE_BUILD_DIR=build GPUFUSE_TEST_DIR=. build/bench/bench_remote */
#include <cuda.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../tests/read_file.h"

#define COPY_BYTES (64u << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define CK(call)                                                                              \
    do {                                                                                      \
        CUresult r_ = (call);                                                                 \
        if (r_ != CUDA_SUCCESS) {                                                             \
            const char *n_ = "?";                                                             \
            cuGetErrorName(r_, &n_);                                                          \
            fprintf(stderr, "bench_remote: %s: %s\n", #call, n_);                            \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

/* ---- the client side (a child, GPUFUSE_REMOTE set) -------------------------------------------- */

static int client(void)
{
    CUdevice dev;
    CUcontext ctx;
    CK(cuInit(0));
    CK(cuDeviceGet(&dev, 0));
    CK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CK(cuCtxSetCurrent(ctx));
    /* sync round trip */
    for (int i = 0; i < 2000; i++) CK(cuCtxSynchronize());
    int n = 20000;
    double t0 = now_s();
    for (int i = 0; i < n; i++) CK(cuCtxSynchronize());
    double rtt = (now_s() - t0) / n;
    /* launch cost: batches below the queue bound, the sync between them not timed */
    char path[4096];
    const char *dir = getenv("GPUFUSE_TEST_DIR");
    snprintf(path, sizeof path, "%s/tests/kernels/spin.ptx", dir ? dir : ".");
    char *ptx = gf_read_whole_file(path);
    if (!ptx) {
        fprintf(stderr, "bench_remote: %s: cannot read (set GPUFUSE_TEST_DIR)\n", path);
        return 1;
    }
    CUmodule mod;
    CUfunction fn;
    CK(cuModuleLoadData(&mod, ptx));
    CK(cuModuleGetFunction(&fn, mod, "gpufuse_sim_spin"));
    unsigned long long ns = 0;
    void *params[] = {&ns};
    double launch_t = 0;
    int launches = 0;
    for (int rep = 0; rep < 20; rep++) {
        double a = now_s();
        for (int i = 0; i < 1000; i++) CK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL));
        launch_t += now_s() - a;
        launches += 1000;
        CK(cuCtxSynchronize());
    }
    /* bulk copies */
    CUdeviceptr d;
    CK(cuMemAlloc(&d, COPY_BYTES));
    char *h = malloc(COPY_BYTES);
    memset(h, 1, COPY_BYTES);
    CK(cuMemcpyHtoD(d, h, COPY_BYTES));
    CK(cuMemcpyDtoH(h, d, COPY_BYTES));
    double h2d = 1e30, d2h = 1e30;
    for (int i = 0; i < 5; i++) {
        double a = now_s();
        CK(cuMemcpyHtoD(d, h, COPY_BYTES));
        double b = now_s();
        CK(cuMemcpyDtoH(h, d, COPY_BYTES));
        double c = now_s();
        if (b - a < h2d) h2d = b - a;
        if (c - b < d2h) d2h = c - b;
    }
    /* managed memory (a mirror): the host writes every page, a launch sends them; after a
     * synchronize the host reads every page, each fetched on first touch */
    CUdeviceptr m;
    CK(cuMemAllocManaged(&m, COPY_BYTES, CU_MEM_ATTACH_GLOBAL));
    double mh2d = 1e30, md2h = 1e30;
    volatile unsigned char *mp = (unsigned char *)(uintptr_t)m;
    for (int i = 0; i < 5; i++) {
        double a = now_s();
        memset((void *)mp, i, COPY_BYTES);
        CK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL));
        CK(cuCtxSynchronize());
        double b = now_s();
        unsigned sum = 0;
        for (size_t k = 0; k < COPY_BYTES; k += 4096) sum += mp[k];
        double c = now_s();
        if (sum != (unsigned)i * (COPY_BYTES / 4096)) {
            fprintf(stderr, "bench_remote: managed memory read back %u, want %u\n", sum,
                    (unsigned)i * (COPY_BYTES / 4096));
            return 1;
        }
        if (b - a < mh2d) mh2d = b - a;
        if (c - b < md2h) md2h = c - b;
    }
    CK(cuMemFree(m));
    printf("rtt_us=%.2f launch_us=%.3f h2d_gbs=%.3f d2h_gbs=%.3f mh2d_gbs=%.3f md2h_gbs=%.3f\n",
           rtt * 1e6, launch_t / launches * 1e6, COPY_BYTES / h2d / 1e9, COPY_BYTES / d2h / 1e9,
           COPY_BYTES / mh2d / 1e9, COPY_BYTES / md2h / 1e9);
    free(h);
    free(ptx);
    CK(cuMemFree(d));
    CK(cuModuleUnload(mod));
    return 0;
}

/* ---- baselines --------------------------------------------------------------------------------- */

static int lfd_port(int *lfd)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    *lfd = socket(AF_INET, SOCK_STREAM, 0);
    bind(*lfd, (struct sockaddr *)&a, sizeof a);
    listen(*lfd, 1);
    socklen_t l = sizeof a;
    getsockname(*lfd, (struct sockaddr *)&a, &l);
    return ntohs(a.sin_port);
}

static int tcp_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return -1;
    int one = 1, buf = 4 << 20;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    return fd;
}

static int readn(int fd, void *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)b + got, n - got);
        if (k <= 0) return -1;
        got += (size_t)k;
    }
    return 0;
}

/* The same sizes as a cuCtxSynchronize: a 32-byte request, a 37-byte answer. */
static void *echo_main(void *arg)
{
    int lfd = *(int *)arg, fd = accept(lfd, NULL, NULL), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b[64] = {0};
    while (readn(fd, b, 32) == 0)
        if (write(fd, b, 37) != 37) break;
    close(fd);
    return NULL;
}

static double raw_rtt(void)
{
    int lfd, port = lfd_port(&lfd);
    pthread_t t;
    pthread_create(&t, NULL, echo_main, &lfd);
    int fd = tcp_connect(port);
    char b[64] = {0};
    for (int i = 0; i < 2000; i++) {
        if (write(fd, b, 32) != 32 || readn(fd, b, 37)) break;
    }
    int n = 20000;
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        if (write(fd, b, 32) != 32 || readn(fd, b, 37)) break;
    double r = (now_s() - t0) / n;
    close(fd);
    pthread_join(t, NULL);
    close(lfd);
    return r;
}

static void *sink_main(void *arg)
{
    int lfd = *(int *)arg, fd = accept(lfd, NULL, NULL), buf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    char *b = malloc(COPY_BYTES);
    for (int i = 0; i < 6; i++)
        if (readn(fd, b, COPY_BYTES)) break;
    if (write(fd, "k", 1) != 1) perror("sink");
    free(b);
    close(fd);
    return NULL;
}

static double raw_bandwidth(void)
{
    int lfd, port = lfd_port(&lfd);
    pthread_t t;
    pthread_create(&t, NULL, sink_main, &lfd);
    int fd = tcp_connect(port);
    char *b = malloc(COPY_BYTES);
    memset(b, 1, COPY_BYTES);
    double best = 1e30;
    for (int i = 0; i < 6; i++) {
        double a = now_s();
        for (size_t off = 0; off < COPY_BYTES;) {
            ssize_t k = write(fd, b + off, (COPY_BYTES - off) < (1u << 20) ? COPY_BYTES - off : (1u << 20));
            if (k <= 0) break;
            off += (size_t)k;
        }
        double e = now_s() - a;
        if (i && e < best) best = e; /* the receiver drains concurrently; the last may lag */
    }
    char k;
    if (readn(fd, &k, 1)) best = 1e30;
    free(b);
    close(fd);
    pthread_join(t, NULL);
    close(lfd);
    return COPY_BYTES / best / 1e9;
}

static double memcpy_bandwidth(void)
{
    char *a = malloc(COPY_BYTES), *b = malloc(COPY_BYTES);
    memset(a, 1, COPY_BYTES);
    memset(b, 2, COPY_BYTES);
    double best = 1e30;
    for (int i = 0; i < 5; i++) {
        double t = now_s();
        memcpy(b, a, COPY_BYTES);
        t = now_s() - t;
        if (t < best) best = t;
    }
    volatile char sink = b[12345];
    (void)sink;
    free(a);
    free(b);
    return COPY_BYTES / best / 1e9;
}

/* ---- the driver of it all ----------------------------------------------------------------------- */

static pid_t start_worker(const char *build, const char *listen, char *addr, size_t len)
{
    char ready[256], drv[1024], cmd[4096];
    snprintf(ready, sizeof ready, "/tmp/gf-bench-remote-%d-%s", (int)getpid(), listen + 3);
    for (char *p = ready + 5; *p; p++)
        if (*p == '/' || *p == ':') *p = '_';
    unlink(ready);
    const char *real = getenv("GPUFUSE_BENCH_DRIVER"); /* a real driver, from tests/gpu/run */
    if (real && *real) snprintf(drv, sizeof drv, "%s", real);
    else snprintf(drv, sizeof drv, "%s/lib/sim/libcuda.so.1", build);
    snprintf(cmd, sizeof cmd, "exec %s/bin/gpufuse worker --listen %s --ready-file %s", build,
             listen, ready);
    pid_t p = fork();
    if (p == 0) {
        setenv("GPUFUSE_DRIVER", drv, 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(ready, "r");
        if (f) {
            char *ok = fgets(addr, (int)len, f);
            fclose(f);
            if (ok) {
                addr[strcspn(addr, "\n")] = 0;
                unlink(ready);
                return p;
            }
        }
        usleep(10000);
    }
    fprintf(stderr, "bench_remote: the worker did not start: %s\n", cmd);
    kill(p, SIGTERM);
    return -1;
}

static int run_client(const char *self, const char *addr, double v[6])
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "GPUFUSE_REMOTE=%s %s --client", addr, self);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    int n = fscanf(p, "rtt_us=%lf launch_us=%lf h2d_gbs=%lf d2h_gbs=%lf mh2d_gbs=%lf md2h_gbs=%lf",
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]);
    int st = pclose(p);
    return n == 6 && st == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--client")) return client();
    const char *build = getenv("GPUFUSE_BUILD_DIR");
    if (!build || !*build) build = "build";
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) return 1;
    self[sl] = 0;
    double rtt_raw = raw_rtt(), bw_raw = raw_bandwidth(), bw_mem = memcpy_bandwidth();
    char addr[512], shm[64];
    double t[6], s[6];
    pid_t w = start_worker(build, "tcp://127.0.0.1:0", addr, sizeof addr);
    if (w < 0 || run_client(self, addr, t) != 0) {
        fprintf(stderr, "bench_remote: the tcp client failed\n");
        return 1;
    }
    kill(w, SIGTERM);
    waitpid(w, NULL, 0);
    snprintf(shm, sizeof shm, "shm://gf-bench-%d", (int)getpid());
    w = start_worker(build, shm, addr, sizeof addr);
    if (w < 0 || run_client(self, addr, s) != 0) {
        fprintf(stderr, "bench_remote: the shm client failed\n");
        return 1;
    }
    kill(w, SIGTERM);
    waitpid(w, NULL, 0);
    const char *real = getenv("GPUFUSE_BENCH_DRIVER");
    printf("remote backend (worker on %s, loopback), baselines measured in this run:\n",
           real && *real ? real : "the sim");
    printf("  sync call RTT  tcp %.1f us / raw TCP ping-pong %.1f us = %.2fx (goal <= 1.2)\n", t[0],
           rtt_raw * 1e6, t[0] / (rtt_raw * 1e6));
    printf("  sync call RTT  shm %.1f us\n", s[0]);
    printf("  async launch   client cost %.3f us per cuLaunchKernel (tcp), %.3f us (shm) "
           "(goal <= 1)\n", t[1], s[1]);
    printf("  H2D tcp %.2f GB/s, D2H tcp %.2f GB/s / raw TCP %.2f GB/s = %.2f, %.2f (goal >= 0.9)\n",
           t[2], t[3], bw_raw, t[2] / bw_raw, t[3] / bw_raw);
    printf("  H2D shm %.2f GB/s, D2H shm %.2f GB/s / memcpy %.2f GB/s = %.2f, %.2f (goal >= 0.7)\n",
           s[2], s[3], bw_mem, s[2] / bw_mem, s[3] / bw_mem);
    printf("  managed memory (host writes every page, a launch; then reads every page) tcp %.2f / "
           "%.2f GB/s = %.2f, %.2f of cuMemcpyHtoD/DtoH; shm %.2f / %.2f GB/s = %.2f, %.2f\n",
           t[4], t[5], t[4] / t[2], t[5] / t[3], s[4], s[5], s[4] / s[2], s[5] / s[3]);
    return 0;
}
