/* SPDX-License-Identifier: Apache-2.0 */
/* The tls:// transport: OpenSSL (TLS >= 1.2) over the tcp socket, non-blocking, through a small
 * BIO that sends with MSG_NOSIGNAL so a dead peer never raises SIGPIPE in the host process. */
#include <errno.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "wire/wire_internal.h"

extern const gf_wire_ops gf_wire__tls_ops_;

/* ---- the socket BIO ----------------------------------------------------------------------- */

static int bio_write(BIO *b, const char *buf, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n;
    do n = send(fd, buf, (size_t)len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_write(b);
    return (int)n;
}

static int bio_read(BIO *b, char *buf, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n;
    do n = recv(fd, buf, (size_t)len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_read(b);
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *the_method;
static pthread_once_t method_once = PTHREAD_ONCE_INIT;

static void method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gf_wire socket");
    if (!m) return;
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    the_method = m;
}

static gf_status attach(struct gf_wire_conn *c, SSL_CTX *ctx, char *err, size_t errlen)
{
    pthread_once(&method_once, method_init);
    if (!the_method) return gf_wire__err(err, errlen, GF_ENOMEM, "TLS: cannot create a BIO method");
    SSL *ssl = SSL_new(ctx);
    BIO *bio = ssl ? BIO_new(the_method) : NULL;
    if (!bio) {
        SSL_free(ssl);
        return gf_wire__err(err, errlen, GF_ENOMEM, "TLS: cannot create a session");
    }
    BIO_set_data(bio, (void *)(intptr_t)c->fd);
    SSL_set_bio(ssl, bio, bio);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    c->tls = ssl;
    c->ops = &gf_wire__tls_ops_;
    return GF_OK;
}

/* The OpenSSL error queue's first entry (or errno), for messages; clears the queue. */
static const char *ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "%s", errno ? strerror(errno) : "unexpected EOF");
    ERR_clear_error();
    return buf;
}

/* ---- transport operations ---------------------------------------------------------------- */

/* Maps an SSL result to the transport's convention. */
static long ssl_result(struct gf_wire_conn *c, int r)
{
    if (r > 0) return r;
    int e = SSL_get_error(c->tls, r);
    char why[200];
    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->tls_want_write = 0;
        return GF_WIRE__AGAIN;
    case SSL_ERROR_WANT_WRITE:
        c->tls_want_write = 1;
        return GF_WIRE__AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return GF_WIRE__CLOSED;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        return GF_WIRE__CLOSED; /* EOF without close_notify, reset: the peer is gone */
    default:
        snprintf(c->ioerr, sizeof c->ioerr, "TLS: %s", ssl_reason(why, sizeof why));
        return GF_WIRE__ERROR;
    }
}

static long tls_read(struct gf_wire_conn *c, void *buf, size_t len)
{
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(c->tls, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    return ssl_result(c, n);
}

/* Small iovs are coalesced so that a frame header and a small payload make one TLS record.
 * A retry after WANT_WRITE always starts with the same bytes and is at least as long, as
 * OpenSSL requires, because unsent bytes stay at the head of the queue. */
static long tls_writev(struct gf_wire_conn *c, const struct iovec *iov, int iovcnt)
{
    uint8_t tmp[16384];
    long total = 0;
    int i = 0;
    while (i < iovcnt) {
        const void *p;
        size_t n;
        if (iov[i].iov_len >= sizeof tmp) {
            p = iov[i].iov_base;
            n = iov[i].iov_len > (1u << 30) ? (1u << 30) : iov[i].iov_len;
            i++;
        } else {
            n = 0;
            while (i < iovcnt && n + iov[i].iov_len <= sizeof tmp) {
                memcpy(tmp + n, iov[i].iov_base, iov[i].iov_len);
                n += iov[i].iov_len;
                i++;
            }
            if (n == 0) { /* next iov alone is too big for what is left of tmp */
                size_t k = sizeof tmp;
                memcpy(tmp, iov[i].iov_base, k);
                n = k;
                i = iovcnt; /* partial iov: stop after it */
            }
            p = tmp;
        }
        ERR_clear_error();
        errno = 0;
        int w = SSL_write(c->tls, p, (int)n);
        if (w <= 0) {
            long r = ssl_result(c, w);
            return total ? total : r;
        }
        total += w;
        if ((size_t)w < n) break;
    }
    return total ? total : GF_WIRE__AGAIN;
}

static int tls_wait(struct gf_wire_conn *c, short events, int ms)
{
    /* A TLS read may need the socket writable and a write readable (handshake, key update). */
    if (c->tls_want_write) events |= POLLOUT;
    if (SSL_pending(c->tls) > 0) return 0;
    struct pollfd p = {.fd = c->fd, .events = events};
    if (poll(&p, 1, ms) < 0 && errno != EINTR) {
        snprintf(c->ioerr, sizeof c->ioerr, "poll: %s", strerror(errno));
        return GF_WIRE__ERROR;
    }
    return 0;
}

static short tls_events(const struct gf_wire_conn *c)
{
    return (short)(POLLIN | (gf_wire_queued(c) || c->tls_want_write ? POLLOUT : 0));
}

static void tls_close(struct gf_wire_conn *c)
{
    if (c->tls) {
        /* Best effort close_notify, non-blocking; none from a process that only gives up its
         * copy of the conn after a fork (the session goes on in the other one). */
        if (!c->broken && !c->released) SSL_shutdown(c->tls);
        SSL_free(c->tls);
        ERR_clear_error();
    }
    c->tls = NULL;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

static int tls_buffered(const struct gf_wire_conn *c) { return SSL_pending(c->tls) > 0; }

const gf_wire_ops gf_wire__tls_ops_ = {tls_read, tls_writev, tls_wait, tls_events, tls_close,
                                       tls_buffered, NULL};

/* ---- contexts and handshakes --------------------------------------------------------------- */

gf_status gf_wire__tls_server_ctx(const gf_wire_opts *o, void **out, char *err, size_t errlen)
{
    char why[200];
    *out = NULL;
    if (!o || !o->tls_cert_file || !o->tls_key_file)
        return gf_wire__err(err, errlen, GF_EINVAL,
                            "tls:// listener needs a certificate and a key (--tls-cert FILE "
                            "--tls-key FILE)");
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return gf_wire__err(err, errlen, GF_ENOMEM, "TLS: %s", ssl_reason(why, sizeof why));
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert_file) != 1) {
        SSL_CTX_free(ctx);
        return gf_wire__err(err, errlen, GF_EINVAL,
                            "TLS certificate \"%s\": %s (a PEM certificate is expected)",
                            o->tls_cert_file, ssl_reason(why, sizeof why));
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, o->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        SSL_CTX_free(ctx);
        return gf_wire__err(err, errlen, GF_EINVAL,
                            "TLS key \"%s\": %s (a PEM key matching \"%s\" is expected)",
                            o->tls_key_file, ssl_reason(why, sizeof why), o->tls_cert_file);
    }
    *out = ctx;
    return GF_OK;
}

void gf_wire__tls_ctx_free(void *ctx) { SSL_CTX_free(ctx); }

gf_status gf_wire__tls_server(struct gf_wire_conn *c, void *ctx, char *err, size_t errlen)
{
    gf_status st = attach(c, ctx, err, errlen);
    if (st != GF_OK) return st;
    SSL_set_accept_state(c->tls); /* the handshake runs inside the first reads and writes */
    return GF_OK;
}

static int is_ip(const char *h)
{
    unsigned char b[16];
    return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

gf_status gf_wire__tls_client(struct gf_wire_conn *c, const gf_wire_addr *a,
                              const gf_wire_opts *o, char *err, size_t errlen)
{
    char why[200];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return gf_wire__err(err, errlen, GF_ENOMEM, "TLS: %s", ssl_reason(why, sizeof why));
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (o->tls_insecure_skip_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        int ok = o->tls_ca_file ? SSL_CTX_load_verify_locations(ctx, o->tls_ca_file, NULL)
                                : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            SSL_CTX_free(ctx);
            return gf_wire__err(err, errlen, GF_EINVAL, "TLS CA file \"%s\": %s",
                                o->tls_ca_file ? o->tls_ca_file : "(system store)",
                                ssl_reason(why, sizeof why));
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    gf_status st = attach(c, ctx, err, errlen);
    SSL_CTX_free(ctx); /* the session holds its own reference */
    if (st != GF_OK) return st;
    const char *name = o->tls_server_name ? o->tls_server_name : a->host;
    if (!is_ip(name)) SSL_set_tlsext_host_name(c->tls, name);
    if (!o->tls_insecure_skip_verify) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->tls);
        if (is_ip(name))
            X509_VERIFY_PARAM_set1_ip_asc(vp, name);
        else
            X509_VERIFY_PARAM_set1_host(vp, name, 0);
    }
    SSL_set_connect_state(c->tls);
    uint64_t deadline = gf_wire__now_ms() + (uint64_t)o->timeout_ms;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_do_handshake(c->tls);
        if (r == 1) return GF_OK;
        int e = SSL_get_error(c->tls, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            int left = gf_wire__left_ms(deadline);
            if (left == 0)
                return gf_wire__err(err, errlen, GF_ETIMEDOUT,
                                    "TLS handshake with %s:%u: no answer within %d ms (is it a "
                                    "tls:// worker?)",
                                    a->host, a->port, o->timeout_ms);
            gf_wire__wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, left, NULL, 0);
            continue;
        }
        long vr = SSL_get_verify_result(c->tls);
        if (vr != X509_V_OK)
            return gf_wire__err(err, errlen, GF_EPERM,
                                "TLS: the certificate of %s:%u is not trusted: %s (give the "
                                "client the CA that signed the worker's certificate)",
                                a->host, a->port, X509_verify_cert_error_string(vr));
        if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
            ERR_clear_error();
            return gf_wire__err(err, errlen, GF_ECLOSED,
                                "TLS handshake with %s:%u: connection closed by the peer (is it "
                                "a tls:// worker, or a tcp:// one?)",
                                a->host, a->port);
        }
        return gf_wire__err(err, errlen, GF_EIO, "TLS handshake with %s:%u: %s", a->host,
                            a->port, ssl_reason(why, sizeof why));
    }
}
