/* SPDX-License-Identifier: Apache-2.0 */
/* make bench (wire): gf_wire round trips and bulk bandwidth next to their baselines measured in
 * the same run — a raw TCP ping-pong of the same bytes on the same loopback, raw socket
 * streaming, memcpy — plus the client's cost of queueing one async call. Prints ratios. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gpufuse/wire.h"

#define K_ECHO (GF_WIRE_K_CTL_FIRST + 1)
#define K_SINK (GF_WIRE_K_CTL_FIRST + 2) /* u64 len: then that many bulk bytes to swallow */
#define K_ASYNC (GF_WIRE_K_CTL_FIRST + 3)
#define K_SYNC (GF_WIRE_K_CTL_FIRST + 4)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench_wire: %s: %s\n", what, err);
    exit(1);
}

/* ---- raw TCP baselines ----------------------------------------------------------------------- */

static int raw_listen(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4)) die("raw listen", "bind");
    socklen_t sl = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &sl);
    *port = ntohs(a.sin_port);
    return s;
}

static void raw_tune(int s)
{
    int one = 1, buf = 4 << 20;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    setsockopt(s, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
}

static int raw_connect(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    raw_tune(s);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(s, (struct sockaddr *)&a, sizeof a)) die("raw connect", "connect");
    return s;
}

static int read_full(int s, void *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(s, (char *)b + got, n - got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static int write_full(int s, const void *b, size_t n)
{
    size_t put = 0;
    while (put < n) {
        ssize_t r = write(s, (const char *)b + put, n - put);
        if (r <= 0) return -1;
        put += (size_t)r;
    }
    return 0;
}

struct raw_srv {
    int lfd;
    size_t msg; /* echo messages of this size; 0 = swallow a stream */
};

static void *raw_server(void *arg)
{
    struct raw_srv *r = arg;
    int c = accept(r->lfd, NULL, NULL);
    raw_tune(c);
    /* Streams land in a 64 MiB buffer at advancing offsets, as gf_wire's bulk receiver
     * writes them into their destination (not into one cache-hot 1 MiB buffer). */
    size_t cap = r->msg ? r->msg : (64u << 20);
    char *b = malloc(cap);
    memset(b, 0, cap); /* touched: no page faults inside the measurement */
    if (r->msg) {
        while (read_full(c, b, r->msg) == 0 && write_full(c, b, r->msg) == 0) {
        }
    } else {
        size_t off = 0;
        ssize_t n;
        while ((n = read(c, b + off, (cap - off) < (1u << 20) ? cap - off : (1u << 20))) > 0)
            off = (off + (size_t)n) % cap;
        write_full(c, "k", 1);
    }
    free(b);
    close(c);
    return NULL;
}

static double raw_rtt(size_t msg, int iters)
{
    int port;
    struct raw_srv r = {raw_listen(&port), msg};
    pthread_t th;
    pthread_create(&th, NULL, raw_server, &r);
    int s = raw_connect(port);
    char *b = calloc(1, msg);
    for (int i = 0; i < iters / 10; i++) write_full(s, b, msg), read_full(s, b, msg);
    double t0 = now_s();
    for (int i = 0; i < iters; i++) write_full(s, b, msg), read_full(s, b, msg);
    double t = (now_s() - t0) / iters;
    close(s);
    pthread_join(th, NULL);
    close(r.lfd);
    free(b);
    return t;
}

static double raw_stream(size_t total, size_t chunk, const char *src)
{
    int port;
    struct raw_srv r = {raw_listen(&port), 0};
    pthread_t th;
    pthread_create(&th, NULL, raw_server, &r);
    int s = raw_connect(port);
    double t0 = now_s();
    for (size_t off = 0; off < total; off += chunk) write_full(s, src + off % (64u << 20), chunk);
    shutdown(s, SHUT_WR);
    char k;
    read_full(s, &k, 1);
    double t = now_s() - t0;
    close(s);
    pthread_join(th, NULL);
    close(r.lfd);
    return (double)total / t;
}

/* ---- gf_wire server: blocking, one session (what the RTT and bandwidth measure) -------------- */

struct wsrv {
    gf_wire_listener *l;
    char url[320];
    size_t total;
};

static void *wire_server(void *arg)
{
    struct wsrv *w = arg;
    char err[512];
    gf_wire_conn *c = NULL;
    while (gf_wire_accept(w->l, &c, err, sizeof err) == GF_EBUSY) usleep(200);
    if (!c) die("accept", err);
    gf_wire_hello h;
    if (gf_wire_server_handshake(c, NULL, 1, "bench", &h, 5000, err, sizeof err) != GF_OK)
        die("server handshake", err);
    char *sink = malloc(64u << 20);
    memset(sink, 0, 64u << 20);
    for (;;) {
        gf_wire_frame f;
        gf_status st = gf_wire_recv(c, &f, 60000, err, sizeof err);
        if (st == GF_ECLOSED) break;
        if (st != GF_OK) die("server recv", err);
        if (f.hdr.kind == K_ECHO || f.hdr.kind == K_SYNC) {
            st = gf_wire_send(c, f.hdr.kind, GF_WIRE_F_REPLY, f.hdr.request_id, f.payload,
                              (size_t)f.hdr.payload_len, -1, err, sizeof err);
        } else if (f.hdr.kind == K_SINK) {
            uint64_t left;
            memcpy(&left, f.payload, 8);
            while (left && st == GF_OK) {
                size_t n = left > (64u << 20) ? (64u << 20) : (size_t)left;
                st = gf_wire_bulk_recv(c, f.hdr.request_id, sink, n, -1, err, sizeof err);
                left -= n;
            }
            if (st == GF_OK)
                st = gf_wire_send(c, K_SINK, GF_WIRE_F_REPLY, f.hdr.request_id, NULL, 0, -1, err,
                                  sizeof err);
        }
        if (st != GF_OK) die("server", err);
    }
    free(sink);
    gf_wire_close(c);
    return NULL;
}

static gf_wire_conn *wire_start(const char *addr, struct wsrv *w, pthread_t *th)
{
    char err[512];
    gf_wire_opts o;
    gf_wire_opts_init(&o);
    o.timeout_ms = 60000;
    if (gf_wire_listen(addr, &o, &w->l, err, sizeof err) != GF_OK) die("listen", err);
    gf_wire_listener_addr(w->l, w->url, sizeof w->url);
    pthread_create(th, NULL, wire_server, w);
    gf_wire_conn *c;
    if (gf_wire_connect(w->url, &o, &c, err, sizeof err) != GF_OK) die("connect", err);
    gf_wire_hello h;
    gf_wire_hello_init(&h);
    gf_wire_welcome wl;
    if (gf_wire_client_handshake(c, &h, &wl, err, sizeof err) != GF_OK) die("handshake", err);
    return c;
}

static void wire_stop(gf_wire_conn *c, struct wsrv *w, pthread_t th)
{
    gf_wire_close(c);
    pthread_join(th, NULL);
    gf_wire_listener_close(w->l);
}

static double wire_rtt(gf_wire_conn *c, size_t msg, int iters)
{
    char err[512];
    char *b = calloc(1, msg ? msg : 1);
    gf_wire_frame f;
    uint64_t id = 1;
    for (int i = 0; i < iters / 10; i++)
        if (gf_wire_call(c, K_ECHO, id++, b, msg, &f, -1, err, sizeof err)) die("call", err);
    double t0 = now_s();
    for (int i = 0; i < iters; i++)
        if (gf_wire_call(c, K_ECHO, id++, b, msg, &f, -1, err, sizeof err)) die("call", err);
    double t = (now_s() - t0) / iters;
    free(b);
    return t;
}

static double wire_stream(gf_wire_conn *c, size_t total, const char *src)
{
    char err[512];
    gf_wire_frame f;
    uint64_t len = total;
    double t0 = now_s();
    if (gf_wire_send(c, K_SINK, 0, 7, &len, 8, -1, err, sizeof err)) die("sink", err);
    for (size_t off = 0; off < total; off += (64u << 20)) {
        size_t n = total - off < (64u << 20) ? total - off : (64u << 20);
        if (gf_wire_bulk_send(c, 7, src, n, 0, -1, err, sizeof err)) die("bulk", err);
    }
    if (gf_wire_recv(c, &f, -1, err, sizeof err)) die("sink reply", err);
    return (double)total / (now_s() - t0);
}

/* Client cost of one asynchronous call: encode a launch-sized frame into the queue, with the
 * flushes it triggers; the server swallows them. */
static double wire_async_cost(gf_wire_conn *c, int n)
{
    char err[512];
    uint8_t args[64];
    memset(args, 7, sizeof args);
    gf_wire_frame f;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        uint8_t b[128];
        gf_wire_writer w;
        gf_wire_writer_init_fixed(&w, b, sizeof b);
        gf_wire_put_handle(&w, 0x1234);
        gf_wire_put_u32(&w, 1);
        gf_wire_put_bytes(&w, args, sizeof args);
        if (gf_wire_queue(c, K_ASYNC, GF_WIRE_F_NOREPLY, 0, w.buf, w.len, err, sizeof err))
            die("queue", err);
    }
    double t = (now_s() - t0) / n;
    if (gf_wire_call(c, K_SYNC, 1, NULL, 0, &f, -1, err, sizeof err)) die("sync", err);
    return t;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "tcp-bulk")) {
        struct wsrv w = {0};
        pthread_t th;
        char *src = calloc(1, 64u << 20);
        gf_wire_conn *c = wire_start("tcp://127.0.0.1:0", &w, &th);
        printf("tcp bulk %.2f GB/s\n", wire_stream(c, 1u << 30, src) / 1e9);
        wire_stop(c, &w, th);
        printf("raw %.2f GB/s\n", raw_stream(1u << 30, 1u << 20, src) / 1e9);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "shm-rtt")) { /* for profiling one piece */
        struct wsrv w = {0};
        pthread_t th;
        gf_wire_conn *c = wire_start("shm://bench-prof", &w, &th);
        printf("shm rtt %.2f us\n", wire_rtt(c, 64, 20000) * 1e6);
        wire_stop(c, &w, th);
        return 0;
    }
    const int iters = 20000;
    const size_t total = 1u << 30;
    char *src = malloc(64u << 20), *dst = malloc(64u << 20);
    for (size_t i = 0; i < (64u << 20); i++) src[i] = (char)i, dst[i] = 0;

    printf("round trip (loopback, %d iterations)       raw TCP     gf_wire    ratio\n", iters);
    struct wsrv w = {0};
    pthread_t th;
    gf_wire_conn *c = wire_start("tcp://127.0.0.1:0", &w, &th);
    size_t sizes[] = {64, 4096, 65536};
    for (int i = 0; i < 3; i++) {
        double r = raw_rtt(sizes[i] + GF_WIRE_HDR_SIZE, iters);
        double g = wire_rtt(c, sizes[i], iters);
        printf("  tcp  %6zu B payload                   %7.2f us  %7.2f us  %5.2fx\n", sizes[i],
               r * 1e6, g * 1e6, g / r);
    }
    double async = wire_async_cost(c, 1000000);
    /* Best of three, alternating, so that a noisy neighbour hurts both sides alike. */
    double rb = 0, gb = 0;
    for (int k = 0; k < 3; k++) {
        double x = raw_stream(total, 1u << 20, src), y = wire_stream(c, total, src);
        rb = x > rb ? x : rb;
        gb = y > gb ? y : gb;
    }
    wire_stop(c, &w, th);

    char shm[64];
    snprintf(shm, sizeof shm, "shm://bench-%d", (int)getpid());
    memset(&w, 0, sizeof w);
    c = wire_start(shm, &w, &th);
    double s64 = wire_rtt(c, 64, iters);
    double s4k = wire_rtt(c, 4096, iters);
    double sb = 0;
    for (int k = 0; k < 3; k++) {
        double y = wire_stream(c, total, src);
        sb = y > sb ? y : sb;
    }
    wire_stop(c, &w, th);
    double raw64 = raw_rtt(64 + GF_WIRE_HDR_SIZE, iters);
    printf("  shm      64 B payload (vs raw TCP)       %7.2f us  %7.2f us  %5.2fx\n", raw64 * 1e6,
           s64 * 1e6, s64 / raw64);
    printf("  shm    4096 B payload                               %7.2f us\n", s4k * 1e6);

    /* memcpy of the same bytes, in the same 1 MiB pieces, through a 64 MiB destination. */
    double mb = 0;
    for (int k = 0; k < 3; k++) {
        double t0 = now_s();
        for (size_t off = 0; off < total; off += 1u << 20)
            memcpy(dst + off % (64u << 20), src + (off + (1u << 20)) % (64u << 20), 1u << 20);
        double x = (double)total / (now_s() - t0);
        mb = x > mb ? x : mb;
    }

    printf("bandwidth (1 GiB, 1 MiB chunks, best of 3)      baseline    gf_wire    ratio\n");
    printf("  tcp bulk vs raw socket stream          %7.2f GB/s %6.2f GB/s  %5.2fx\n", rb / 1e9,
           gb / 1e9, gb / rb);
    printf("  shm bulk vs memcpy                     %7.2f GB/s %6.2f GB/s  %5.2fx\n", mb / 1e9,
           sb / 1e9, sb / mb);
    printf("async call, client cost (queue 1M frames of 88 B):  %.0f ns/call\n", async * 1e9);
    free(src);
    free(dst);
    return 0;
}
