/* SPDX-License-Identifier: Apache-2.0 */
/* The wire transports over real sockets and the shm ring: a small event-loop server (the way
 * the worker will use the API) serving tcp://, tls:// and shm:// clients; handshakes accepted and
 * refused, malformed peers, killed and stalled peers, 100 concurrent sessions, batching, bulk,
 * a process per connection (gf_wire_conn_release_after_fork). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "gpufuse/wire.h"
#include "test.h"

#define K_ECHO (GF_WIRE_K_CTL_FIRST + 1)   /* reply with the same payload */
#define K_SUM (GF_WIRE_K_CTL_FIRST + 2)    /* async: add the u64 to the session's sum */
#define K_GETSUM (GF_WIRE_K_CTL_FIRST + 3) /* reply: u64 sum, u64 count of K_SUM */
#define K_UPLOAD (GF_WIRE_K_CTL_FIRST + 4) /* u64 len, then bulk chunks; reply u64 checksum */
#define K_DOWNLOAD (GF_WIRE_K_CTL_FIRST + 5) /* u64 len: reply, then that many bulk bytes */
#define TOKEN "t0ken"
#define MAXC 256

/* ---- the test server: one poll loop, non-blocking conns ------------------------------------ */

struct sess {
    gf_wire_conn *c;
    int hello_done;
    uint64_t sum, count;
    gf_wire_bulk_rx up;
    int uploading;
    uint64_t up_sum;
};

struct server {
    gf_wire_listener *l;
    char url[320];
    int stop[2];
    pthread_t th;
    atomic_int sessions, closed_errors, accepted;
    char last_err[512];
    pthread_mutex_t mu;
};

static uint64_t checksum(const uint8_t *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void note_err(struct server *s, const char *e)
{
    pthread_mutex_lock(&s->mu);
    snprintf(s->last_err, sizeof s->last_err, "%s", e);
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&s->closed_errors, 1);
}

/* Handles one frame; nonzero = close the session. */
static int handle(struct server *s, struct sess *x, gf_wire_frame *f)
{
    char err[512];
    gf_status st = GF_OK;
    if (!x->hello_done) {
        gf_wire_hello h;
        char why[256];
        st = gf_wire_hello_decode(f, &h, why, sizeof why);
        if (st == GF_OK) st = gf_wire_check_hello(&h, TOKEN, why, sizeof why);
        gf_wire_server_answer(x->c, f->hdr.request_id, &h, 1000 + (uint64_t)x->c % 1000, "test",
                              st, why, 0, err, sizeof err);
        if (st != GF_OK) {
            note_err(s, why);
            gf_wire_flush(x->c, 1000, NULL, 0);
            return 1;
        }
        x->hello_done = 1;
        return 0;
    }
    if (x->uploading) {
        uint64_t off;
        const uint8_t *d;
        size_t n;
        st = gf_wire_bulk_rx_chunk(&x->up, f, &off, &d, &n, err, sizeof err);
        if (st != GF_OK) goto fail;
        x->up_sum = checksum(d, n, x->up_sum);
        if (x->up.done) {
            x->uploading = 0;
            uint8_t b[16];
            gf_wire_writer w;
            gf_wire_writer_init_fixed(&w, b, sizeof b);
            gf_wire_put_u64(&w, x->up_sum);
            st = gf_wire_send(x->c, K_UPLOAD, GF_WIRE_F_REPLY, x->up.request_id, w.buf, w.len,
                              0, err, sizeof err);
            if (st != GF_OK) goto fail;
        }
        return 0;
    }
    gf_wire_reader r;
    gf_wire_reader_init_frame(&r, f);
    switch (f->hdr.kind) {
    case GF_WIRE_K_PING:
    case K_ECHO:
        st = gf_wire_send(x->c, f->hdr.kind == K_ECHO ? K_ECHO : GF_WIRE_K_PONG, GF_WIRE_F_REPLY,
                          f->hdr.request_id, f->payload, (size_t)f->hdr.payload_len, 0, err,
                          sizeof err);
        break;
    case K_SUM:
        x->sum += gf_wire_get_u64(&r);
        x->count++;
        st = gf_wire_reader_status(&r, 1, err, sizeof err);
        break;
    case K_GETSUM: {
        uint8_t b[32];
        gf_wire_writer w;
        gf_wire_writer_init_fixed(&w, b, sizeof b);
        gf_wire_put_u64(&w, x->sum);
        gf_wire_put_u64(&w, x->count);
        st = gf_wire_send(x->c, K_GETSUM, GF_WIRE_F_REPLY, f->hdr.request_id, w.buf, w.len, 0,
                          err, sizeof err);
        break;
    }
    case K_UPLOAD: {
        uint64_t n = gf_wire_get_u64(&r);
        st = gf_wire_reader_status(&r, 1, err, sizeof err);
        gf_wire_bulk_rx_init(&x->up, f->hdr.request_id, n);
        x->uploading = 1;
        x->up_sum = 1469598103934665603ull;
        break;
    }
    case K_DOWNLOAD: {
        /* Test-only: a blocking bulk send from the loop (the real worker streams chunks). */
        uint64_t n = gf_wire_get_u64(&r);
        st = gf_wire_reader_status(&r, 1, err, sizeof err);
        if (st != GF_OK || n > (256u << 20)) break;
        uint8_t *buf = malloc(n ? n : 1);
        for (uint64_t i = 0; i < n; i++) buf[i] = (uint8_t)(i * 31 + 7);
        st = gf_wire_send(x->c, K_DOWNLOAD, GF_WIRE_F_REPLY, f->hdr.request_id, NULL, 0, 5000,
                          err, sizeof err);
        if (st == GF_OK)
            st = gf_wire_bulk_send(x->c, f->hdr.request_id, buf, n, 0, 5000, err, sizeof err);
        free(buf);
        break;
    }
    default: {
        uint8_t b[256];
        gf_wire_writer w;
        gf_wire_writer_init_fixed(&w, b, sizeof b);
        gf_wire_error_encode(&w, GF_ENOTSUP, "unknown kind");
        st = gf_wire_send(x->c, f->hdr.kind, GF_WIRE_F_REPLY | GF_WIRE_F_ERROR,
                          f->hdr.request_id, w.buf, w.len, 0, err, sizeof err);
    }
    }
    if (st == GF_OK) return 0;
fail:
    note_err(s, err);
    return 1;
}

static void *serve(void *arg)
{
    struct server *s = arg;
    struct sess *ss = calloc(MAXC, sizeof *ss);
    struct pollfd pf[MAXC + 2];
    int n = 0;
    char err[512];
    for (;;) {
        pf[0] = (struct pollfd){.fd = s->stop[0], .events = POLLIN};
        pf[1] = (struct pollfd){.fd = gf_wire_listener_fd(s->l), .events = POLLIN};
        int busy = 0;
        for (int i = 0; i < n; i++) {
            pf[i + 2] = (struct pollfd){.fd = gf_wire_conn_fd(ss[i].c),
                                        .events = gf_wire_conn_events(ss[i].c)};
            busy |= gf_wire_conn_has_buffered(ss[i].c);
        }
        if (poll(pf, (nfds_t)n + 2, busy ? 0 : 1000) < 0 && errno != EINTR) break;
        if (pf[0].revents) break;
        if (pf[1].revents) {
            gf_wire_conn *c;
            gf_status st;
            while ((st = gf_wire_accept(s->l, &c, err, sizeof err)) == GF_OK) {
                if (n == MAXC) {
                    gf_wire_close(c);
                    continue;
                }
                memset(&ss[n], 0, sizeof ss[n]);
                ss[n++].c = c;
                atomic_fetch_add(&s->accepted, 1);
                atomic_fetch_add(&s->sessions, 1);
            }
        }
        for (int i = 0; i < n; i++) {
            struct sess *x = &ss[i];
            int close_it = 0;
            for (int k = 0; k < 64 && !close_it; k++) {
                gf_wire_frame f;
                gf_status st = gf_wire_recv(x->c, &f, 0, err, sizeof err);
                if (st == GF_EBUSY) break;
                if (st != GF_OK) {
                    if (st != GF_ECLOSED || strstr(err, "mid-frame")) note_err(s, err);
                    close_it = 1;
                    break;
                }
                close_it = handle(s, x, &f);
            }
            if (!close_it) {
                gf_status st = gf_wire_flush(x->c, 0, err, sizeof err);
                if (st != GF_OK && st != GF_EBUSY) {
                    note_err(s, err);
                    close_it = 1;
                }
            }
            if (close_it) {
                gf_wire_close(x->c);
                ss[i] = ss[--n];
                i--;
                atomic_fetch_sub(&s->sessions, 1);
            }
        }
    }
    for (int i = 0; i < n; i++) gf_wire_close(ss[i].c);
    free(ss);
    return NULL;
}

static void server_start(struct server *s, const char *addr, const gf_wire_opts *o)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    char err[512];
    gf_status st = gf_wire_listen(addr, o, &s->l, err, sizeof err);
    ASSERT_MSG(st == GF_OK, "listen %s: %s", addr, err);
    gf_wire_listener_addr(s->l, s->url, sizeof s->url);
    ASSERT_TRUE(pipe(s->stop) == 0);
    pthread_create(&s->th, NULL, serve, s);
}

static void server_stop(struct server *s)
{
    ASSERT_TRUE(write(s->stop[1], "x", 1) == 1);
    pthread_join(s->th, NULL);
    gf_wire_listener_close(s->l);
    close(s->stop[0]);
    close(s->stop[1]);
}

static const char *server_err(struct server *s)
{
    static char buf[512];
    pthread_mutex_lock(&s->mu);
    snprintf(buf, sizeof buf, "%s", s->last_err);
    pthread_mutex_unlock(&s->mu);
    return buf;
}

static gf_wire_conn *client(const char *url, const gf_wire_opts *o, const char *token)
{
    gf_wire_conn *c;
    char err[512];
    gf_status st = gf_wire_connect(url, o, &c, err, sizeof err);
    ASSERT_MSG(st == GF_OK, "connect %s: %s: %s", url, gf_status_name(st), err);
    gf_wire_hello h;
    gf_wire_hello_init(&h);
    snprintf(h.token, sizeof h.token, "%s", token);
    snprintf(h.client_name, sizeof h.client_name, "test_wire_net");
    h.vram_bytes = 1ull << 30;
    gf_wire_welcome wl;
    st = gf_wire_client_handshake(c, &h, &wl, err, sizeof err);
    ASSERT_MSG(st == GF_OK, "handshake with %s: %s: %s", url, gf_status_name(st), err);
    ASSERT_TRUE(wl.accepted);
    ASSERT_TRUE(gf_wire_conn_session_id(c) >= 1000);
    ASSERT_EQ_STR(wl.server_version, "test");
    return c;
}

static void echo_check(gf_wire_conn *c, uint64_t id, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++) p[i] = (uint8_t)(i + id);
    gf_wire_frame f;
    char err[512];
    gf_status st = gf_wire_call(c, K_ECHO, id, p, len, &f, -1, err, sizeof err);
    ASSERT_MSG(st == GF_OK, "echo %zu bytes: %s: %s", len, gf_status_name(st), err);
    ASSERT_EQ_U64(f.hdr.payload_len, len);
    ASSERT_TRUE(len == 0 || !memcmp(f.payload, p, len));
    free(p);
}

/* ---- TLS material generated in-process ----------------------------------------------------- */

static void make_cert(const char *cert_path, const char *key_path)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    ASSERT_TRUE(k != NULL);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    const char *exts[][2] = {{"subjectAltName", "DNS:localhost,IP:127.0.0.1,IP:::1"},
                             {"basicConstraints", "critical,CA:TRUE"},
                             {"keyUsage", "critical,digitalSignature,keyCertSign"}};
    for (size_t i = 0; i < 3; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
        ASSERT_TRUE(e != NULL);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    ASSERT_TRUE(X509_sign(x, k, EVP_sha256()) > 0);
    FILE *f = fopen(cert_path, "w");
    ASSERT_TRUE(f && PEM_write_X509(f, x));
    fclose(f);
    f = fopen(key_path, "w");
    ASSERT_TRUE(f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL));
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* A fresh self-signed certificate and the options of a tls:// listener (lo) and of a client
 * that trusts it (co); cert and key hold the paths and must outlive the options. */
static void tls_test_opts(char cert[256], char key[256], gf_wire_opts *lo, gf_wire_opts *co)
{
    snprintf(cert, 256, "%s", gf_test_tmp_path("cert.pem"));
    snprintf(key, 256, "%s", gf_test_tmp_path("key.pem"));
    make_cert(cert, key);
    gf_wire_opts_init(lo);
    lo->tls_cert_file = cert;
    lo->tls_key_file = key;
    gf_wire_opts_init(co);
    co->tls_ca_file = cert;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void roundtrips(const char *listen_addr, gf_wire_opts *lo, gf_wire_opts *co)
{
    struct server s;
    server_start(&s, listen_addr, lo);
    gf_wire_conn *c = client(s.url, co, TOKEN);
    size_t sizes[] = {0, 1, 31, 32, 33, 4096, 65535, 65536, 1 << 20, (3 << 20) + 7};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) echo_check(c, 10 + i, sizes[i]);

    /* All codec types through the peer and back. */
    gf_wire_writer w;
    gf_wire_writer_init(&w, 0);
    gf_wire_put_u32(&w, 7);
    gf_wire_put_i32(&w, -7);
    gf_wire_put_u64(&w, 1ull << 40);
    gf_wire_put_i64(&w, -(1ll << 40));
    gf_wire_put_f64(&w, 3.25);
    gf_wire_put_handle(&w, 0xabcdef);
    gf_wire_put_bytes(&w, "\0\1\2", 3);
    gf_wire_put_str(&w, "héllo");
    gf_wire_frame f;
    char err[512];
    ASSERT_EQ_INT(gf_wire_call(c, K_ECHO, 99, w.buf, w.len, &f, -1, err, sizeof err), GF_OK);
    gf_wire_reader r;
    gf_wire_reader_init_frame(&r, &f);
    char str[16];
    uint8_t b3[3];
    ASSERT_EQ_U64(gf_wire_get_u32(&r), 7);
    ASSERT_EQ_INT(gf_wire_get_i32(&r), -7);
    ASSERT_EQ_U64(gf_wire_get_u64(&r), 1ull << 40);
    ASSERT_TRUE(gf_wire_get_i64(&r) == -(1ll << 40));
    ASSERT_NEAR(gf_wire_get_f64(&r), 3.25, 0);
    ASSERT_EQ_U64(gf_wire_get_handle(&r), 0xabcdef);
    ASSERT_EQ_U64(gf_wire_get_bytes_into(&r, b3, 3), 3);
    ASSERT_EQ_STR(gf_wire_get_str(&r, str, sizeof str), "héllo");
    ASSERT_EQ_INT(gf_wire_reader_status(&r, 1, err, sizeof err), GF_OK);
    gf_wire_writer_free(&w);

    /* An ERROR reply comes back as its status with the message. */
    ASSERT_EQ_INT(gf_wire_call(c, GF_WIRE_K_CTL_LAST, 100, NULL, 0, &f, -1, err, sizeof err),
                  GF_ENOTSUP);
    ASSERT_CONTAINS(err, "unknown kind");

    /* Batching: 2000 async frames queued, one flush, then a sync call sees them all. */
    uint64_t want = 0;
    for (uint64_t i = 1; i <= 2000; i++) {
        uint8_t b[16];
        gf_wire_writer_init_fixed(&w, b, sizeof b);
        gf_wire_put_u64(&w, i);
        want += i;
        ASSERT_EQ_INT(gf_wire_queue(c, K_SUM, GF_WIRE_F_NOREPLY, 0, w.buf, w.len, err, sizeof err),
                      GF_OK);
    }
    ASSERT_EQ_INT(gf_wire_flush(c, -1, err, sizeof err), GF_OK);
    ASSERT_EQ_U64(gf_wire_queued(c), 0);
    gf_status gs = gf_wire_call(c, K_GETSUM, 101, NULL, 0, &f, -1, err, sizeof err);
    ASSERT_MSG(gs == GF_OK, "GETSUM: %s: %s (server: %s)", gf_status_name(gs), err, server_err(&s));
    gf_wire_reader_init_frame(&r, &f);
    ASSERT_EQ_U64(gf_wire_get_u64(&r), want);
    ASSERT_EQ_U64(gf_wire_get_u64(&r), 2000);

    /* Batching through a writer holding many whole frames. */
    gf_wire_writer_init(&w, 0);
    for (uint64_t i = 0; i < 100; i++) {
        gf_wire_writer_begin_frame(&w, K_SUM, GF_WIRE_F_NOREPLY, 0);
        gf_wire_put_u64(&w, 1);
        gf_wire_writer_end_frame(&w);
    }
    ASSERT_EQ_INT(gf_wire_queue_writer(c, &w, err, sizeof err), GF_OK);
    gf_wire_writer_free(&w);
    ASSERT_EQ_INT(gf_wire_call(c, K_GETSUM, 102, NULL, 0, &f, -1, err, sizeof err), GF_OK);
    gf_wire_reader_init_frame(&r, &f);
    ASSERT_EQ_U64(gf_wire_get_u64(&r), want + 100);

    /* Bulk up (chunks checked by the server's event loop) and down (straight into our buffer). */
    size_t n = (5u << 20) + 12345;
    uint8_t *up = malloc(n), *down = malloc(n);
    for (size_t i = 0; i < n; i++) up[i] = (uint8_t)(i * 31 + 7);
    uint8_t b[16];
    gf_wire_writer_init_fixed(&w, b, sizeof b);
    gf_wire_put_u64(&w, n);
    ASSERT_EQ_INT(gf_wire_send(c, K_UPLOAD, 0, 200, w.buf, w.len, -1, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(gf_wire_bulk_send(c, 200, up, n, 256 << 10, -1, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(gf_wire_recv(c, &f, -1, err, sizeof err), GF_OK);
    gf_wire_reader_init_frame(&r, &f);
    ASSERT_EQ_U64(gf_wire_get_u64(&r), checksum(up, n, 1469598103934665603ull));
    ASSERT_EQ_INT(gf_wire_call(c, K_DOWNLOAD, 201, w.buf, w.len, &f, -1, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(gf_wire_bulk_recv(c, 201, down, n, -1, err, sizeof err), GF_OK);
    ASSERT_TRUE(!memcmp(up, down, n));
    free(up);
    free(down);

    gf_wire_close(c);
    server_stop(&s);
}

TEST(wire_tcp_roundtrips_batching_bulk)
{
    roundtrips("tcp://127.0.0.1:0", NULL, NULL);
}

TEST(wire_tcp_ipv6_roundtrip)
{
    gf_wire_listener *l;
    char err[256];
    if (gf_wire_listen("tcp://[::1]:0", NULL, &l, err, sizeof err) != GF_OK) {
        printf("PASS wire_tcp_ipv6_roundtrip (skipped: no IPv6 loopback: %s)\n", err);
        return;
    }
    gf_wire_listener_close(l);
    struct server s;
    server_start(&s, "tcp://[::1]:0", NULL);
    ASSERT_CONTAINS(s.url, "tcp://[::1]:");
    gf_wire_conn *c = client(s.url, NULL, TOKEN);
    echo_check(c, 1, 1000);
    gf_wire_close(c);
    server_stop(&s);
}

TEST(wire_shm_roundtrips_batching_bulk)
{
    char addr[128];
    snprintf(addr, sizeof addr, "shm://test-%d", (int)getpid());
    gf_wire_opts o;
    gf_wire_opts_init(&o);
    o.shm_ring_bytes = 256u << 10; /* small rings: every transfer wraps many times */
    roundtrips(addr, &o, NULL);
}

TEST(wire_shm_path_socket)
{
    char addr[300];
    snprintf(addr, sizeof addr, "shm://%s", gf_test_tmp_path("sock"));
    struct server s;
    server_start(&s, addr, NULL);
    ASSERT_EQ_STR(s.url, addr);
    gf_wire_conn *c = client(s.url, NULL, TOKEN);
    echo_check(c, 1, 100000);
    gf_wire_close(c);
    server_stop(&s);
    ASSERT_TRUE(access(gf_test_tmp_path("sock"), F_OK) != 0); /* removed on close */
}

TEST(wire_tls_roundtrips_and_verification)
{
    char cert[256], key[256];
    gf_wire_opts lo, co;
    tls_test_opts(cert, key, &lo, &co);
    roundtrips("tls://127.0.0.1:0", &lo, &co);

    struct server s;
    server_start(&s, "tls://127.0.0.1:0", &lo);
    char err[512];
    gf_wire_conn *c;
    /* Not trusted: the system store does not know our self-signed CA. */
    gf_wire_opts def;
    gf_wire_opts_init(&def);
    ASSERT_EQ_INT(gf_wire_connect(s.url, &def, &c, err, sizeof err), GF_EPERM);
    ASSERT_CONTAINS(err, "not trusted");
    /* Wrong name. */
    co.tls_server_name = "gpu.example.com";
    ASSERT_EQ_INT(gf_wire_connect(s.url, &co, &c, err, sizeof err), GF_EPERM);
    co.tls_server_name = NULL;
    /* Explicitly asked to skip verification: works. */
    def.tls_insecure_skip_verify = 1;
    c = client(s.url, &def, TOKEN);
    echo_check(c, 1, 70000);
    gf_wire_close(c);
    /* A plain-tcp client against a TLS listener fails cleanly, the server keeps serving. */
    char tcpurl[400];
    snprintf(tcpurl, sizeof tcpurl, "tcp%.300s", s.url + 3);
    ASSERT_EQ_INT(gf_wire_connect(tcpurl, NULL, &c, err, sizeof err), GF_OK);
    gf_wire_hello h;
    gf_wire_hello_init(&h);
    gf_wire_welcome wl;
    gf_wire_conn_set_timeout(c, 2000);
    ASSERT_TRUE(gf_wire_client_handshake(c, &h, &wl, err, sizeof err) != GF_OK);
    gf_wire_close(c);
    c = client(s.url, &def, TOKEN);
    echo_check(c, 2, 10);
    gf_wire_close(c);
    server_stop(&s);

    /* Listener errors name the file. */
    gf_wire_listener *l;
    lo.tls_key_file = "/nonexistent/key.pem";
    ASSERT_EQ_INT(gf_wire_listen("tls://127.0.0.1:0", &lo, &l, err, sizeof err), GF_EINVAL);
    ASSERT_CONTAINS(err, "/nonexistent/key.pem");
    lo.tls_cert_file = NULL;
    ASSERT_EQ_INT(gf_wire_listen("tls://127.0.0.1:0", &lo, &l, err, sizeof err), GF_EINVAL);
    ASSERT_CONTAINS(err, "--tls-cert");
}

static void handshake_refusals(const char *addr)
{
    struct server s;
    server_start(&s, addr, NULL);
    char err[512];
    gf_wire_conn *c;
    gf_wire_hello h;
    gf_wire_welcome wl;

    /* Bad token: refused with the reason on both ends. */
    ASSERT_EQ_INT(gf_wire_connect(s.url, NULL, &c, err, sizeof err), GF_OK);
    gf_wire_hello_init(&h);
    snprintf(h.token, sizeof h.token, "wrong");
    ASSERT_EQ_INT(gf_wire_client_handshake(c, &h, &wl, err, sizeof err), GF_EPERM);
    ASSERT_CONTAINS(err, "refused the session: wrong token");
    gf_wire_close(c);

    /* A client of a future major: refused, and told why. */
    ASSERT_EQ_INT(gf_wire_connect(s.url, NULL, &c, err, sizeof err), GF_OK);
    gf_wire_hello_init(&h);
    h.major = GF_WIRE_MAJOR + 1;
    snprintf(h.token, sizeof h.token, TOKEN);
    ASSERT_EQ_INT(gf_wire_client_handshake(c, &h, &wl, err, sizeof err), GF_EPROTO);
    ASSERT_CONTAINS(err, "worker speaks gpufuse wire 1.1, client 2.1: upgrade the worker");
    gf_wire_close(c);

    /* Both messages reached the server's side too. */
    for (int i = 0; i < 200 && atomic_load(&s.closed_errors) < 2; i++) usleep(5000);
    ASSERT_CONTAINS(server_err(&s), "worker speaks gpufuse wire 1.1, client 2.1");

    /* And a good client still gets in. */
    c = client(s.url, NULL, TOKEN);
    echo_check(c, 1, 10);
    gf_wire_close(c);
    server_stop(&s);
}

TEST(wire_handshake_refusals_tcp) { handshake_refusals("tcp://127.0.0.1:0"); }

TEST(wire_handshake_refusals_shm)
{
    char addr[128];
    snprintf(addr, sizeof addr, "shm://hs-%d", (int)getpid());
    handshake_refusals(addr);
}

TEST(wire_blocking_server_handshake_reports_refusal)
{
    gf_wire_listener *l;
    char err[512], url[320];
    ASSERT_EQ_INT(gf_wire_listen("tcp://127.0.0.1:0", NULL, &l, err, sizeof err), GF_OK);
    gf_wire_listener_addr(l, url, sizeof url);
    pid_t pid = fork();
    if (pid == 0) {
        gf_wire_conn *c;
        gf_wire_hello h;
        gf_wire_welcome wl;
        if (gf_wire_connect(url, NULL, &c, NULL, 0) != GF_OK) _exit(2);
        gf_wire_hello_init(&h);
        _exit(gf_wire_client_handshake(c, &h, &wl, NULL, 0) == GF_EPERM ? 0 : 3);
    }
    gf_wire_conn *sc = NULL;
    for (int i = 0; i < 500 && gf_wire_accept(l, &sc, err, sizeof err) == GF_EBUSY; i++)
        usleep(2000);
    ASSERT_TRUE(sc != NULL);
    gf_wire_hello h;
    ASSERT_EQ_INT(gf_wire_server_handshake(sc, "secret", 5, "t", &h, 2000, err, sizeof err),
                  GF_EPERM);
    ASSERT_CONTAINS(err, "wrong token (none sent)");
    int stt;
    waitpid(pid, &stt, 0);
    ASSERT_TRUE(WIFEXITED(stt) && WEXITSTATUS(stt) == 0);
    gf_wire_close(sc);
    gf_wire_listener_close(l);
}

/* Raw bytes on a fresh socket/shm conn (no handshake) to provoke the server. */
static void garbage_does_not_affect_others(const char *addr)
{
    struct server s;
    server_start(&s, addr, NULL);
    char err[512];
    gf_wire_conn *good = client(s.url, NULL, TOKEN);

    /* A well-framed call whose payload lies (a string claiming 4 GiB): the server's reader
     * refuses it and closes that session only. (Malformed headers: the tcp test below.) */
    gf_wire_conn *bad = client(s.url, NULL, TOKEN);
    uint8_t junk[] = {GF_WIRE_T_STR, 0xff, 0xff, 0xff, 0xff};
    ASSERT_EQ_INT(gf_wire_send(bad, K_SUM, GF_WIRE_F_NOREPLY, 0, junk, sizeof junk, -1, err,
                               sizeof err),
                  GF_OK);
    gf_wire_frame f;
    gf_status st = gf_wire_recv(bad, &f, 2000, err, sizeof err);
    ASSERT_MSG(st == GF_ECLOSED, "expected the server to close the bad session, got %s: %s",
               gf_status_name(st), err);
    gf_wire_close(bad);
    echo_check(good, 2, 1000);
    gf_wire_close(good);
    server_stop(&s);
}

TEST(wire_shm_garbage_payload_closes_only_that_session)
{
    char addr[128];
    snprintf(addr, sizeof addr, "shm://g-%d", (int)getpid());
    garbage_does_not_affect_others(addr);
}

TEST(wire_tcp_garbage_frames_close_only_that_session)
{
    garbage_does_not_affect_others("tcp://127.0.0.1:0");
    struct server s;
    server_start(&s, "tcp://127.0.0.1:0", NULL);
    char err[512];
    gf_wire_conn *good = client(s.url, NULL, TOKEN);
    gf_wire_addr a;
    ASSERT_EQ_INT(gf_wire_parse_addr("url", s.url, &a, err, sizeof err), GF_OK);
    const char *garbage[] = {"GET / HTTP/1.1\r\nHost: x\r\n\r\n.....", "\x16\x03\x01\x02\x00xxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                             NULL};
    for (int g = 0; g < 3; g++) {
        gf_wire_conn *raw;
        ASSERT_EQ_INT(gf_wire_connect(s.url, NULL, &raw, err, sizeof err), GF_OK);
        int fd = gf_wire_conn_fd(raw);
        uint8_t buf[64];
        size_t n;
        if (garbage[g]) {
            n = 32;
            memcpy(buf, garbage[g], n);
        } else { /* a well-formed header with a 1 TiB payload */
            gf_wire_hdr_encode(buf, GF_WIRE_K_HELLO, 0, 1, 1ull << 40);
            n = GF_WIRE_HDR_SIZE;
        }
        ASSERT_TRUE(send(fd, buf, n, MSG_NOSIGNAL) == (ssize_t)n);
        gf_wire_frame f;
        gf_status st = gf_wire_recv(raw, &f, 2000, err, sizeof err);
        ASSERT_MSG(st == GF_ECLOSED, "garbage %d: expected GF_ECLOSED, got %s: %s", g,
                   gf_status_name(st), err);
        gf_wire_close(raw);
        echo_check(good, 10 + (uint64_t)g, 100);
    }
    for (int i = 0; i < 200 && !strstr(server_err(&s), "exceeds the limit"); i++) usleep(5000);
    ASSERT_CONTAINS(server_err(&s), "exceeds the limit");
    gf_wire_close(good);
    server_stop(&s);
}

TEST(wire_tcp_split_writes_at_every_byte)
{
    struct server s;
    server_start(&s, "tcp://127.0.0.1:0", NULL);
    gf_wire_conn *c = client(s.url, NULL, TOKEN);
    int fd = gf_wire_conn_fd(c);
    uint8_t buf[GF_WIRE_HDR_SIZE + 40];
    gf_wire_hdr_encode(buf, K_ECHO, 0, 77, 40);
    for (int i = 0; i < 40; i++) buf[GF_WIRE_HDR_SIZE + i] = (uint8_t)i;
    /* Byte by byte, with pauses so each arrives on its own (TCP_NODELAY). */
    for (size_t i = 0; i < sizeof buf; i++) {
        while (send(fd, buf + i, 1, MSG_NOSIGNAL) != 1) usleep(100);
        usleep(300);
    }
    gf_wire_frame f;
    char err[512];
    ASSERT_EQ_INT(gf_wire_recv(c, &f, -1, err, sizeof err), GF_OK);
    ASSERT_EQ_U64(f.hdr.request_id, 77);
    ASSERT_TRUE(!memcmp(f.payload, buf + GF_WIRE_HDR_SIZE, 40));
    gf_wire_close(c);
    server_stop(&s);
}

/* A server process that answers the handshake, then misbehaves on the first call. */
enum { DIE_MID_FRAME, STALL };
static void bad_server(const char *addr, int how, char *url, size_t urllen, pid_t *pid)
{
    gf_wire_listener *l;
    char err[512];
    ASSERT_EQ_INT(gf_wire_listen(addr, NULL, &l, err, sizeof err), GF_OK);
    gf_wire_listener_addr(l, url, urllen);
    *pid = fork();
    if (*pid) {
        gf_wire_listener_close(l);
        return;
    }
    gf_wire_conn *c = NULL;
    struct pollfd p = {.fd = gf_wire_listener_fd(l), .events = POLLIN};
    while (!c) {
        poll(&p, 1, 1000);
        gf_wire_accept(l, &c, NULL, 0);
    }
    gf_wire_hello h;
    if (gf_wire_server_handshake(c, NULL, 1, "bad", &h, 5000, NULL, 0) != GF_OK) _exit(2);
    gf_wire_frame f;
    if (gf_wire_recv(c, &f, 5000, NULL, 0) != GF_OK) _exit(3);
    if (how == DIE_MID_FRAME) {
        /* Half a reply, then SIGKILL: no orderly shutdown of anything. */
        uint8_t big[100000];
        memset(big, 1, sizeof big);
        uint8_t hdr[GF_WIRE_HDR_SIZE];
        gf_wire_hdr_encode(hdr, K_ECHO, GF_WIRE_F_REPLY, f.hdr.request_id, sizeof big);
        gf_wire_writer w;
        gf_wire_writer_init(&w, 0);
        gf_wire_put_raw(&w, hdr, sizeof hdr);
        gf_wire_put_raw(&w, big, 5000);
        gf_wire_queue_writer(c, &w, NULL, 0); /* the raw bytes go out as they are */
        gf_wire_flush(c, 5000, NULL, 0);
        usleep(50000);
        kill(getpid(), SIGKILL);
    }
    for (;;) pause(); /* STALL: alive, connected, silent */
}

static void dead_and_stalled_peers(const char *addr)
{
    char url[320], err[512];
    pid_t pid;
    gf_wire_frame f;
    gf_wire_opts o;
    gf_wire_opts_init(&o);
    o.timeout_ms = 400;

    bad_server(addr, DIE_MID_FRAME, url, sizeof url, &pid);
    gf_wire_conn *c;
    ASSERT_EQ_INT(gf_wire_connect(url, &o, &c, err, sizeof err), GF_OK);
    gf_wire_hello h;
    gf_wire_hello_init(&h);
    gf_wire_welcome wl;
    ASSERT_EQ_INT(gf_wire_client_handshake(c, &h, &wl, err, sizeof err), GF_OK);
    uint64_t t0 = gf_test_now_ns();
    gf_status st = gf_wire_call(c, K_ECHO, 5, "x", 1, &f, 3000, err, sizeof err);
    double ms = (double)(gf_test_now_ns() - t0) / 1e6;
    ASSERT_MSG(st == GF_ECLOSED, "expected GF_ECLOSED, got %s: %s", gf_status_name(st), err);
    ASSERT_CONTAINS(err, "lost mid-frame");
    ASSERT_MSG(ms < 2500, "took %.0f ms to notice the dead peer", ms);
    /* Later calls fail at once with the same story. */
    ASSERT_EQ_INT(gf_wire_send(c, K_ECHO, 0, 6, "x", 1, -1, err, sizeof err), GF_ECLOSED);
    gf_wire_close(c);
    waitpid(pid, NULL, 0);

    bad_server(addr, STALL, url, sizeof url, &pid);
    ASSERT_EQ_INT(gf_wire_connect(url, &o, &c, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(gf_wire_client_handshake(c, &h, &wl, err, sizeof err), GF_OK);
    t0 = gf_test_now_ns();
    st = gf_wire_call(c, K_ECHO, 5, "x", 1, &f, -1, err, sizeof err);
    ms = (double)(gf_test_now_ns() - t0) / 1e6;
    ASSERT_MSG(st == GF_ETIMEDOUT, "expected GF_ETIMEDOUT, got %s: %s", gf_status_name(st), err);
    ASSERT_CONTAINS(err, "within 400 ms");
    ASSERT_MSG(ms >= 390 && ms < 1500, "timeout after %.0f ms, wanted ~400", ms);
    /* The stalled peer now dies: the next call knows at once. */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    t0 = gf_test_now_ns();
    st = gf_wire_recv(c, &f, 3000, err, sizeof err);
    ASSERT_EQ_INT(st, GF_ECLOSED);
    ASSERT_MSG(gf_test_now_ns() - t0 < 1000000000ull, "noticed the death too late");
    gf_wire_close(c);
}

TEST(wire_tcp_dead_and_stalled_peers) { dead_and_stalled_peers("tcp://127.0.0.1:0"); }

TEST(wire_shm_dead_and_stalled_peers)
{
    char addr[128];
    snprintf(addr, sizeof addr, "shm://dead-%d", (int)getpid());
    dead_and_stalled_peers(addr);
}

TEST(wire_connect_failures_are_quick_and_clear)
{
    char err[512];
    gf_wire_conn *c;
    gf_wire_opts o;
    gf_wire_opts_init(&o);
    o.timeout_ms = 1000;
    /* A port with no listener: refused. */
    gf_wire_listener *l;
    char url[320];
    ASSERT_EQ_INT(gf_wire_listen("tcp://127.0.0.1:0", NULL, &l, err, sizeof err), GF_OK);
    gf_wire_listener_addr(l, url, sizeof url);
    gf_wire_listener_close(l);
    ASSERT_EQ_INT(gf_wire_connect(url, &o, &c, err, sizeof err), GF_ECLOSED);
    ASSERT_CONTAINS(err, "connection refused");
    ASSERT_EQ_INT(gf_wire_connect("shm://nobody-listens-here", &o, &c, err, sizeof err), GF_ENOENT);
    ASSERT_CONTAINS(err, "gpufuse worker --listen shm://nobody-listens-here");
    ASSERT_EQ_INT(gf_wire_connect("tpc://x:1", &o, &c, err, sizeof err), GF_EINVAL);
    ASSERT_CONTAINS(err, "unknown scheme \"tpc\"");
    ASSERT_EQ_INT(gf_wire_connect("tcp://no-such-host.invalid:1", &o, &c, err, sizeof err), GF_ENOENT);
    /* Address in use. */
    gf_wire_listener *l2;
    ASSERT_EQ_INT(gf_wire_listen("tcp://127.0.0.1:0", NULL, &l, err, sizeof err), GF_OK);
    gf_wire_listener_addr(l, url, sizeof url);
    ASSERT_EQ_INT(gf_wire_listen(url, NULL, &l2, err, sizeof err), GF_EEXIST);
    gf_wire_listener_close(l);
    char shm[128];
    snprintf(shm, sizeof shm, "shm://dup-%d", (int)getpid());
    ASSERT_EQ_INT(gf_wire_listen(shm, NULL, &l, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(gf_wire_listen(shm, NULL, &l2, err, sizeof err), GF_EEXIST);
    gf_wire_listener_close(l);
}

static void many_clients(const char *addr, int nclients)
{
    struct server s;
    server_start(&s, addr, NULL);
    gf_wire_conn **cs = calloc((size_t)nclients, sizeof *cs);
    for (int i = 0; i < nclients; i++) cs[i] = client(s.url, NULL, TOKEN);
    ASSERT_EQ_INT(atomic_load(&s.sessions), nclients);
    /* Every client has a request in flight at once, then they collect the answers. */
    char err[512];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < nclients; i++) {
            uint64_t id = (uint64_t)i * 10 + (uint64_t)round;
            ASSERT_EQ_INT(gf_wire_send(cs[i], K_ECHO, 0, id, &id, sizeof id, -1, err, sizeof err),
                          GF_OK);
        }
        for (int i = 0; i < nclients; i++) {
            gf_wire_frame f;
            uint64_t id = (uint64_t)i * 10 + (uint64_t)round, got;
            ASSERT_EQ_INT(gf_wire_recv(cs[i], &f, -1, err, sizeof err), GF_OK);
            ASSERT_EQ_U64(f.hdr.request_id, id);
            memcpy(&got, f.payload, sizeof got);
            ASSERT_EQ_U64(got, id);
        }
    }
    for (int i = 0; i < nclients; i++) gf_wire_close(cs[i]);
    for (int i = 0; i < 400 && atomic_load(&s.sessions) > 0; i++) usleep(5000);
    ASSERT_EQ_INT(atomic_load(&s.sessions), 0);
    ASSERT_EQ_INT(atomic_load(&s.closed_errors), 0);
    free(cs);
    server_stop(&s);
}

TEST(wire_tcp_100_concurrent_sessions) { many_clients("tcp://127.0.0.1:0", 100); }

TEST(wire_shm_20_concurrent_sessions)
{
    char addr[128];
    snprintf(addr, sizeof addr, "shm://many-%d", (int)getpid());
    many_clients(addr, 20);
}

static void stalled_reader(const char *addr)
{
    gf_wire_opts o;
    gf_wire_opts_init(&o);
    o.max_queue = 8u << 20;
    o.shm_ring_bytes = 1u << 20;
    struct server s;
    server_start(&s, addr, &o);
    char err[512];
    /* The stalled client sends echo requests and never reads the answers. */
    gf_wire_conn *stalled = client(s.url, NULL, TOKEN);
    static uint8_t blob[256 << 10];
    int sent = 0;
    gf_status st = GF_OK;
    for (; sent < 400; sent++) {
        st = gf_wire_send(stalled, K_ECHO, 0, (uint64_t)sent, blob, sizeof blob, 300, err,
                          sizeof err);
        if (st != GF_OK) break;
        if (sent % 20 == 0) {
            /* Meanwhile, others are served promptly. */
            gf_wire_conn *c = client(s.url, NULL, TOKEN);
            uint64_t t0 = gf_test_now_ns();
            echo_check(c, 1, 1000);
            ASSERT_MSG(gf_test_now_ns() - t0 < 2000000000ull, "a session waited on the stalled one");
            gf_wire_close(c);
        }
    }
    /* The server gave up on the stalled session (queue limit) or we ran out of send buffer;
     * either way the listener never blocked, and it still serves. */
    ASSERT_MSG(st != GF_OK || sent == 400, "unexpected: %s", err);
    gf_wire_conn *c = client(s.url, NULL, TOKEN);
    echo_check(c, 2, 1000);
    gf_wire_close(c);
    gf_wire_close(stalled);
    for (int i = 0; i < 200 && !strstr(server_err(&s), "is not reading"); i++) usleep(5000);
    ASSERT_CONTAINS(server_err(&s), "is not reading");
    server_stop(&s);
}

TEST(wire_tcp_stalled_reader_does_not_block_others) { stalled_reader("tcp://127.0.0.1:0"); }

TEST(wire_shm_stalled_reader_does_not_block_others)
{
    char addr[128];
    snprintf(addr, sizeof addr, "shm://stall-%d", (int)getpid());
    stalled_reader(addr);
}

/* ---- a process per connection (the worker's model) -------------------------------------------
 * A server process accepts, forks a child per connection and gives up its copy of the conn with
 * gf_wire_conn_release_after_fork right away, before the child has done any I/O on it; the child
 * gives up its copy of the listener the same way and serves the client (the TLS handshake, the
 * HELLO, echoes). The second connection is handshaken by the parent before it forks (a TLS
 * session established in both processes). Nothing the parent does may reach the client (no
 * close_notify, no EOF, no unmapped ring), and the listener keeps working for the next
 * connection (an shm path socket stays). */

/* The child: serves c until the client closes it. Its exit status: 0 when all went well. */
static int forked_server_child(gf_wire_listener *l, gf_wire_conn *c, uint64_t id, int greeted)
{
    gf_wire_listener_release_after_fork(l);
    char err[512];
    gf_wire_hello h;
    if (!greeted &&
        gf_wire_server_handshake(c, TOKEN, id, "test", &h, 5000, err, sizeof err) != GF_OK) {
        fprintf(stderr, "forked server: handshake: %s\n", err);
        return 1;
    }
    for (;;) {
        gf_wire_frame f;
        gf_status st = gf_wire_recv(c, &f, 5000, err, sizeof err);
        if (st == GF_ECLOSED) break;
        if (st != GF_OK) {
            fprintf(stderr, "forked server: recv: %s\n", err);
            return 1;
        }
        if (f.hdr.kind == K_ECHO &&
            gf_wire_send(c, K_ECHO, GF_WIRE_F_REPLY, f.hdr.request_id, f.payload,
                         f.hdr.payload_len, 5000, err, sizeof err) != GF_OK) {
            fprintf(stderr, "forked server: send: %s\n", err);
            return 1;
        }
    }
    gf_wire_close(c);
    return 0;
}

/* The server process: accepts n connections, one child each; exits 0 when every child did. */
static void forked_server(gf_wire_listener *l, int n)
{
    int bad = 0;
    pid_t kids[8];
    for (int i = 0; i < n; i++) {
        gf_wire_conn *c = NULL;
        char err[512];
        gf_status st;
        while ((st = gf_wire_accept(l, &c, err, sizeof err)) == GF_EBUSY) {
            struct pollfd p = {.fd = gf_wire_listener_fd(l), .events = POLLIN};
            poll(&p, 1, 5000);
        }
        if (st != GF_OK) {
            fprintf(stderr, "forked server: accept: %s\n", err);
            _exit(1);
        }
        int greeted = i == 1;
        gf_wire_hello h;
        if (greeted && gf_wire_server_handshake(c, TOKEN, 1000 + (uint64_t)i, "test", &h, 5000,
                                                err, sizeof err) != GF_OK) {
            fprintf(stderr, "forked server: handshake before the fork: %s\n", err);
            _exit(1);
        }
        pid_t pid = fork();
        if (pid == 0) _exit(forked_server_child(l, c, 1000 + (uint64_t)i, greeted));
        gf_wire_conn_release_after_fork(c);
        kids[i] = pid;
    }
    for (int i = 0; i < n; i++) {
        int st = 0;
        waitpid(kids[i], &st, 0);
        bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    gf_wire_listener_close(l);
    _exit(bad);
}

static void release_after_fork(const char *addr, const gf_wire_opts *lo, const gf_wire_opts *co)
{
    gf_wire_listener *l;
    char err[512], url[320];
    ASSERT_MSG(gf_wire_listen(addr, lo, &l, err, sizeof err) == GF_OK, "%s: %s", addr, err);
    gf_wire_listener_addr(l, url, sizeof url);
    pid_t srv = fork();
    ASSERT_TRUE(srv >= 0);
    if (srv == 0) forked_server(l, 2);
    gf_wire_listener_release_after_fork(l); /* the server process listens; nothing is removed */
    for (uint64_t k = 1; k <= 2; k++) {
        gf_wire_conn *c = client(url, co, TOKEN);
        ASSERT_EQ_U64(gf_wire_conn_session_id(c), 1000 + k - 1);
        echo_check(c, k, 10);
        echo_check(c, k + 10, 300000); /* several TLS records, ring wraps */
        echo_check(c, k + 20, 0);
        gf_wire_close(c);
    }
    int st = 0;
    waitpid(srv, &st, 0);
    ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the forked server ended with 0x%x", st);
}

TEST(wire_tcp_release_after_fork)
{
    release_after_fork("tcp://127.0.0.1:0", NULL, NULL);
}

TEST(wire_tls_release_after_fork)
{
    char cert[256], key[256];
    gf_wire_opts lo, co;
    tls_test_opts(cert, key, &lo, &co);
    release_after_fork("tls://127.0.0.1:0", &lo, &co);
}

TEST(wire_shm_release_after_fork)
{
    char addr[128];
    snprintf(addr, sizeof addr, "shm://test-fork-%d", (int)getpid());
    gf_wire_opts o;
    gf_wire_opts_init(&o);
    o.shm_ring_bytes = 64u << 10;
    release_after_fork(addr, &o, NULL);
    char path[300];
    snprintf(path, sizeof path, "shm://%s", gf_test_tmp_path("sock"));
    release_after_fork(path, &o, NULL); /* the socket file outlives the children's release */
}
