/* SPDX-License-Identifier: Apache-2.0 */
/* make bench (API): requests/s and p99 latency of GET /api/v1/gpus on `gpufuse server`, loaded
 * from this (second) process over keep-alive HTTP/1.1 connections, next to the trivial /healthz
 * measured the same way in the same run, and once more while another connection writes usage
 * reports as fast as it can (every write is a durable commit and invalidates the list cache, so
 * most GETs then query SQLite). The server runs with a pool of 8 nodes x 8 GPUs.
 *
 *   build/bench/bench_api [seconds-per-target=3] [connections=4]
 *   GPUFUSE_BIN=path/to/gpufuse overrides the server binary (default: ../bin/gpufuse next to
 *   this program). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int port;
static char token[256];

static int connect_server(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        perror("bench_api: connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* One request on a keep-alive connection; returns the HTTP status (or -1). */
static int request(int fd, const char *method, const char *path, const char *body, char *buf,
                   size_t cap)
{
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, token, body ? strlen(body) : 0, body ? body : "");
    if (write(fd, req, (size_t)n) != n) return -1;
    size_t got = 0;
    char *hdr_end = NULL;
    long clen = -1;
    for (;;) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r <= 0) return -1;
        got += (size_t)r;
        buf[got] = 0;
        if (!hdr_end && (hdr_end = strstr(buf, "\r\n\r\n"))) {
            char *cl = strcasestr(buf, "\r\nContent-Length:");
            clen = cl && cl < hdr_end ? strtol(cl + 17, NULL, 10) : 0;
        }
        if (hdr_end && got >= (size_t)(hdr_end + 4 - buf) + (size_t)clen) break;
        if (got + 1 >= cap) return -1;
    }
    return atoi(buf + 9);
}

struct load {
    const char *path;
    const char *post_body; /* when set: POST this to path instead of GET */
    double seconds;
    double *lat;
    size_t n, cap;
    int errors;
};

static void *load_thread(void *arg)
{
    struct load *l = arg;
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    int fd = connect_server();
    double end = now_s() + l->seconds;
    for (;;) {
        double t0 = now_s();
        if (t0 >= end) break;
        int st = request(fd, l->post_body ? "POST" : "GET", l->path, l->post_body, buf, cap);
        double t1 = now_s();
        if (st != 200) {
            l->errors++;
            close(fd);
            fd = connect_server();
            continue;
        }
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 4096;
            l->lat = realloc(l->lat, l->cap * sizeof *l->lat);
        }
        l->lat[l->n++] = t1 - t0;
    }
    close(fd);
    free(buf);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Runs conns threads against path; reports requests/s and p50/p99 in ms. With writer set, one
 * more connection POSTs usage reports all along (each write invalidates the list cache), and
 * *writes_ps gets their rate. */
static void run(const char *path, double seconds, int conns, double *rps, double *p50,
                double *p99, int writer, double *writes_ps)
{
    struct load *l = calloc((size_t)conns, sizeof *l);
    pthread_t *th = calloc((size_t)conns, sizeof *th);
    struct load w = {.path = "/api/v1/nodes/node-0/usage", .seconds = seconds,
                     .post_body = "{\"gpus\": [{\"uuid\": \"GPU-0-0\", \"vram_used\": \"1Gi\", "
                                  "\"utilization\": 50}]}"};
    pthread_t wth;
    if (writer) pthread_create(&wth, NULL, load_thread, &w);
    double t0 = now_s();
    for (int i = 0; i < conns; i++) {
        l[i].path = path;
        l[i].seconds = seconds;
        pthread_create(&th[i], NULL, load_thread, &l[i]);
    }
    size_t total = 0;
    int errors = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        total += l[i].n;
        errors += l[i].errors;
    }
    double el = now_s() - t0;
    if (writer) {
        pthread_join(wth, NULL);
        *writes_ps = (double)w.n / el;
        free(w.lat);
    }
    double *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < conns; i++) {
        memcpy(all + k, l[i].lat, l[i].n * sizeof *all);
        k += l[i].n;
        free(l[i].lat);
    }
    qsort(all, total, sizeof *all, cmp_double);
    *rps = (double)total / el;
    *p50 = total ? all[total / 2] * 1e3 : 0;
    *p99 = total ? all[(size_t)((double)total * 0.99)] * 1e3 : 0;
    if (errors) fprintf(stderr, "bench_api: %d failed requests on %s\n", errors, path);
    free(all);
    free(l);
    free(th);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 3;
    int conns = argc > 2 ? atoi(argv[2]) : 4;
    if (seconds <= 0 || conns < 1 || conns > 256) {
        fprintf(stderr, "usage: bench_api [seconds>0] [connections 1..256]\n");
        return 2;
    }
    char bin[4096], self[4096];
    const char *env = getenv("GPUFUSE_BIN");
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl < 0) return 1;
    self[sl] = 0;
    *strrchr(self, '/') = 0;
    snprintf(bin, sizeof bin, "%s", env ? env : strcat(self, "/../bin/gpufuse"));
    char dir[] = "/tmp/gf-bench-api-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char data[256], urlf[300], tokf[300];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(urlf, sizeof urlf, "%s/server.url", data);
    snprintf(tokf, sizeof tokf, "%s/admin.token", data);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        execl(bin, "gpufuse", "server", "--data", data, "--listen", "127.0.0.1:0",
              "--heartbeat-timeout", "1h", (char *)NULL);
        perror("bench_api: exec gpufuse");
        _exit(127);
    }
    FILE *f = NULL;
    for (int i = 0; i < 100 && !f; i++) {
        usleep(50000);
        f = fopen(urlf, "r");
    }
    if (!f) {
        fprintf(stderr, "bench_api: %s did not start (no %s)\n", bin, urlf);
        kill(pid, SIGKILL);
        return 1;
    }
    char url[256] = "";
    if (!fgets(url, sizeof url, f)) url[0] = 0;
    fclose(f);
    port = atoi(strrchr(url, ':') + 1);
    f = fopen(tokf, "r");
    if (!f || !fgets(token, sizeof token, f)) return 1;
    fclose(f);
    token[strcspn(token, "\n")] = 0;

    /* A pool of 8 nodes x 8 H100s so that /api/v1/gpus has rows to join and encode. */
    char *buf = malloc(1 << 20);
    int fd = connect_server();
    for (int nd = 0; nd < 8; nd++) {
        char body[4096];
        int n = snprintf(body, sizeof body, "{\"name\": \"node-%d\", \"gpus\": [", nd);
        for (int g = 0; g < 8; g++)
            n += snprintf(body + n, sizeof body - (size_t)n,
                          "%s{\"uuid\": \"GPU-%d-%d\", \"index\": %d, \"model\": \"H100\", "
                          "\"vram_bytes\": \"80Gi\"}",
                          g ? "," : "", nd, g, g);
        snprintf(body + n, sizeof body - (size_t)n, "]}");
        if (request(fd, "POST", "/api/v1/nodes/register", body, buf, 1 << 20) != 201) {
            fprintf(stderr, "bench_api: register failed: %s\n", buf);
            kill(pid, SIGKILL);
            return 1;
        }
    }
    for (int w = 0; w < 32; w++) {
        char body[256];
        snprintf(body, sizeof body, "{\"name\": \"w%d\", \"vram_request\": \"10Gi\", "
                 "\"tflops_request\": 50}", w);
        request(fd, "POST", "/api/v1/workloads", body, buf, 1 << 20);
    }
    close(fd);
    free(buf);

    double h_rps, h_p50, h_p99, g_rps, g_p50, g_p99, m_rps, m_p50, m_p99, wps = 0;
    run("/healthz", 0.5, conns, &h_rps, &h_p50, &h_p99, 0, NULL); /* warm-up */
    run("/healthz", seconds, conns, &h_rps, &h_p50, &h_p99, 0, NULL);
    run("/api/v1/gpus", seconds, conns, &g_rps, &g_p50, &g_p99, 0, NULL);
    run("/api/v1/gpus", seconds, conns, &m_rps, &m_p50, &m_p99, 1, &wps);
    printf("API load: %d keep-alive connections from a second process, %.1f s per target, "
           "64 GPUs, 32 workloads\n", conns, seconds);
    printf("  GET /healthz (baseline)  %9.0f req/s   p50 %6.3f ms   p99 %6.3f ms\n", h_rps,
           h_p50, h_p99);
    printf("  GET /api/v1/gpus         %9.0f req/s   p50 %6.3f ms   p99 %6.3f ms\n", g_rps,
           g_p50, g_p99);
    printf("  GET /api/v1/gpus + writer %9.0f req/s   p50 %6.3f ms   p99 %6.3f ms   (%.0f usage "
           "writes/s, durable)\n", m_rps, m_p50, m_p99, wps);
    printf("  ratio /api/v1/gpus vs /healthz: throughput %.2fx, p99 latency %.2fx\n",
           g_rps / h_rps, g_p99 / h_p99);
    printf("  ratio /api/v1/gpus under writes vs /healthz: throughput %.3fx, p99 latency %.1fx\n",
           m_rps / h_rps, m_p99 / h_p99);
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "bench_api: the server did not stop cleanly (status %d)\n", status);
        return 1;
    }
    return 0;
}
