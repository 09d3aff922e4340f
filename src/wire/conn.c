/* SPDX-License-Identifier: Apache-2.0 */
/* The transport-independent connection: framing over a byte transport, the outgoing queue
 * (batching, non-blocking sends that never stall an event loop), deadlines, connect/listen/
 * accept dispatch by scheme. */
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire/wire_internal.h"

/* Reads at least this large go straight into the frame payload instead of through rbuf. */
#define DIRECT_READ_MIN (16u << 10)
/* gf_wire_queue tries a non-blocking write once this much is queued. */
#define QUEUE_SOFT (256u << 10)
#define MAX_IOV 64

struct gf_wire_listener {
    gf_wire_scheme scheme;
    int fd;
    gf_wire_opts opts;
    char url[320];
    char unlink_path[108]; /* shm path socket to remove on close */
    void *tls_ctx;
};

struct gf_wire_conn *gf_wire__conn_new(const gf_wire_ops *ops, gf_wire_scheme scheme, int fd,
                                       const gf_wire_opts *o, const char *peer)
{
    gf_wire_opts def;
    if (!o) {
        gf_wire_opts_init(&def);
        o = &def;
    }
    struct gf_wire_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->rbuf = malloc(GF_WIRE__RBUF);
    if (!c->rbuf) {
        free(c);
        return NULL;
    }
    c->ops = ops;
    c->scheme = scheme;
    c->fd = fd;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : GF_WIRE_TIMEOUT_MS_DEFAULT;
    c->max_queue = o->max_queue ? o->max_queue : (256u << 20);
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    gf_wire_decoder_init(&c->dec, o->max_payload, 0);
    return c;
}

/* Marks the conn unusable with st and a message (kept for later calls) and returns st. */
static gf_status broken(gf_wire_conn *c, gf_status st, char *err, size_t errlen,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static gf_status broken(gf_wire_conn *c, gf_status st, char *err, size_t errlen,
                        const char *fmt, ...)
{
    if (!c->broken) {
        char msg[sizeof c->ioerr];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        memcpy(c->ioerr, msg, sizeof msg);
        c->broken = 1;
        c->broken_status = st;
    }
    return gf_wire__err(err, errlen, c->broken_status, "%s", c->ioerr);
}

static int eff_timeout(const gf_wire_conn *c, int timeout_ms)
{
    return timeout_ms < 0 ? c->timeout_ms : timeout_ms;
}

/* Appends bytes to the outgoing queue (no I/O). */
static gf_status qappend(gf_wire_conn *c, const void *p, size_t n)
{
    if (n == 0) return GF_OK;
    if (c->qpos == c->qlen) c->qpos = c->qlen = 0;
    if (c->qlen + n > c->qcap && c->qpos > 0) {
        memmove(c->qbuf, c->qbuf + c->qpos, c->qlen - c->qpos);
        c->qlen -= c->qpos;
        c->qpos = 0;
    }
    if (c->qlen + n > c->qcap) {
        size_t ncap = c->qcap ? c->qcap : 4096;
        while (ncap < c->qlen + n) ncap *= 2;
        uint8_t *b = realloc(c->qbuf, ncap);
        if (!b) return GF_ENOMEM;
        c->qbuf = b;
        c->qcap = ncap;
    }
    memcpy(c->qbuf + c->qlen, p, n);
    c->qlen += n;
    return GF_OK;
}

size_t gf_wire_queued(const gf_wire_conn *c) { return c->qlen - c->qpos; }

/* Writes iov[0..cnt) (modified in place as it advances). timeout 0: one pass of what the peer
 * takes now; else until all is written or the deadline. *written = bytes written. */
static gf_status write_all(gf_wire_conn *c, struct iovec *iov, int cnt, int timeout_ms,
                           size_t *written, char *err, size_t errlen)
{
    uint64_t deadline = gf_wire__now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    *written = 0;
    c->blocking = timeout_ms != 0;
    int i = 0;
    while (i < cnt && iov[i].iov_len == 0) i++;
    while (i < cnt) {
        int k = cnt - i > MAX_IOV ? MAX_IOV : cnt - i;
        size_t asked = 0;
        for (int j = 0; j < k; j++) asked += iov[i + j].iov_len;
        long n = c->ops->writev(c, iov + i, k);
        if (n > 0) {
            *written += (size_t)n;
            if ((size_t)n < asked && timeout_ms != 0 && c->scheme == GF_WIRE_TCP) {
                /* The socket buffer is full: a retry now would only fail. */
                int left = gf_wire__left_ms(deadline);
                if (left > 0 && c->ops->wait(c, POLLOUT, left) == GF_WIRE__ERROR)
                    return broken(c, GF_EIO, err, errlen, "waiting on %s: %s", c->peer,
                                  c->ioerr);
            }
            size_t left = (size_t)n;
            while (i < cnt && left >= iov[i].iov_len) {
                left -= iov[i].iov_len;
                i++;
            }
            if (i < cnt) {
                iov[i].iov_base = (char *)iov[i].iov_base + left;
                iov[i].iov_len -= left;
            }
            while (i < cnt && iov[i].iov_len == 0) i++;
            continue;
        }
        if (n == GF_WIRE__CLOSED)
            return broken(c, GF_ECLOSED, err, errlen, "connection to %s lost while sending",
                          c->peer);
        if (n == GF_WIRE__ERROR)
            return broken(c, GF_EIO, err, errlen, "sending to %s: %s", c->peer, c->ioerr);
        if (timeout_ms == 0) return GF_OK;
        int left = gf_wire__left_ms(deadline);
        if (left == 0)
            return gf_wire__err(err, errlen, GF_ETIMEDOUT,
                                "%s took no data for %d ms (peer stalled or gone)", c->peer,
                                timeout_ms);
        if (c->ops->wait(c, POLLOUT, left) == GF_WIRE__ERROR)
            return broken(c, GF_EIO, err, errlen, "waiting on %s: %s", c->peer, c->ioerr);
    }
    return GF_OK;
}

/* Sends queue + extra iovs; the unsent rest of extra goes to the queue. */
static gf_status send_iov(gf_wire_conn *c, const struct iovec *extra, int nextra, int timeout_ms,
                          char *err, size_t errlen)
{
    struct iovec iov[MAX_IOV + 2];
    int cnt = 0;
    size_t qpend = c->qlen - c->qpos;
    if (qpend) iov[cnt++] = (struct iovec){c->qbuf + c->qpos, qpend};
    for (int k = 0; k < nextra; k++) iov[cnt++] = extra[k];
    size_t w = 0;
    gf_status st = write_all(c, iov, cnt, timeout_ms, &w, err, errlen);
    if (c->broken) return st;
    /* Account for what left: first the old queue, then the new frame's bytes. */
    if (w < qpend) {
        c->qpos += w;
        w = 0;
    } else {
        c->qpos = c->qlen = 0;
        w -= qpend;
    }
    size_t rest_total = 0;
    for (int k = 0; k < nextra; k++) {
        const uint8_t *b = extra[k].iov_base;
        size_t n = extra[k].iov_len;
        if (w >= n) {
            w -= n;
            continue;
        }
        if (qappend(c, b + w, n - w) != GF_OK)
            return broken(c, GF_ENOMEM, err, errlen, "queueing for %s: out of memory", c->peer);
        rest_total += n - w;
        w = 0;
    }
    (void)rest_total;
    if (st == GF_OK && gf_wire_queued(c) > c->max_queue)
        return broken(c, GF_ENOSPC, err, errlen,
                      "%s is not reading: %zu bytes queued, limit %llu; closing it", c->peer,
                      gf_wire_queued(c), (unsigned long long)c->max_queue);
    return st;
}

gf_status gf_wire_sendv(gf_wire_conn *c, uint32_t kind, uint16_t flags, uint64_t request_id,
                        const struct iovec *iov, int iovcnt, int timeout_ms, char *err,
                        size_t errlen)
{
    if (c->broken) return gf_wire__err(err, errlen, c->broken_status, "%s", c->ioerr);
    if (iovcnt < 0 || iovcnt > MAX_IOV)
        return gf_wire__err(err, errlen, GF_EINVAL, "gf_wire_sendv: %d iovecs (max %d)", iovcnt,
                            MAX_IOV);
    struct iovec all[MAX_IOV + 1];
    uint8_t hdr[GF_WIRE_HDR_SIZE];
    uint64_t total = 0;
    for (int k = 0; k < iovcnt; k++) {
        total += iov[k].iov_len;
        all[k + 1] = iov[k];
    }
    gf_wire_hdr_encode(hdr, kind, flags, request_id, total);
    all[0] = (struct iovec){hdr, sizeof hdr};
    return send_iov(c, all, iovcnt + 1, eff_timeout(c, timeout_ms), err, errlen);
}

gf_status gf_wire_send(gf_wire_conn *c, uint32_t kind, uint16_t flags, uint64_t request_id,
                       const void *payload, size_t len, int timeout_ms, char *err, size_t errlen)
{
    struct iovec iov = {(void *)payload, len};
    return gf_wire_sendv(c, kind, flags, request_id, &iov, len ? 1 : 0, timeout_ms, err,
                         errlen);
}

static gf_status after_queue(gf_wire_conn *c, char *err, size_t errlen)
{
    if (gf_wire_queued(c) > c->max_queue)
        return broken(c, GF_ENOSPC, err, errlen,
                      "%s is not reading: %zu bytes queued, limit %llu; closing it", c->peer,
                      gf_wire_queued(c), (unsigned long long)c->max_queue);
    if (gf_wire_queued(c) >= QUEUE_SOFT) {
        gf_status st = gf_wire_flush(c, 0, err, errlen);
        if (st != GF_OK && st != GF_EBUSY) return st;
    }
    return GF_OK;
}

gf_status gf_wire_queue(gf_wire_conn *c, uint32_t kind, uint16_t flags, uint64_t request_id,
                        const void *payload, size_t len, char *err, size_t errlen)
{
    if (c->broken) return gf_wire__err(err, errlen, c->broken_status, "%s", c->ioerr);
    uint8_t hdr[GF_WIRE_HDR_SIZE];
    gf_wire_hdr_encode(hdr, kind, flags, request_id, len);
    if (qappend(c, hdr, sizeof hdr) != GF_OK || qappend(c, payload, len) != GF_OK)
        return broken(c, GF_ENOMEM, err, errlen, "queueing for %s: out of memory", c->peer);
    return after_queue(c, err, errlen);
}

gf_status gf_wire_queue_writer(gf_wire_conn *c, const gf_wire_writer *w, char *err,
                               size_t errlen)
{
    if (c->broken) return gf_wire__err(err, errlen, c->broken_status, "%s", c->ioerr);
    if (w->status != GF_OK || w->frame_at != SIZE_MAX)
        return gf_wire__err(err, errlen, GF_EINVAL,
                            "gf_wire_queue_writer: the writer failed (%s) or has an open frame",
                            gf_strerror(w->status));
    if (qappend(c, w->buf, w->len) != GF_OK)
        return broken(c, GF_ENOMEM, err, errlen, "queueing for %s: out of memory", c->peer);
    return after_queue(c, err, errlen);
}

gf_status gf_wire_flush(gf_wire_conn *c, int timeout_ms, char *err, size_t errlen)
{
    if (c->broken) return gf_wire__err(err, errlen, c->broken_status, "%s", c->ioerr);
    if (gf_wire_queued(c) == 0) return GF_OK;
    gf_status st = send_iov(c, NULL, 0, eff_timeout(c, timeout_ms), err, errlen);
    if (st != GF_OK) return st;
    return gf_wire_queued(c) ? GF_EBUSY : GF_OK;
}

static int mid_frame(const gf_wire_conn *c)
{
    return c->dec.state != 0 || c->dec.hdr_have > 0 || c->rpos < c->rlen;
}

gf_status gf_wire_recv(gf_wire_conn *c, gf_wire_frame *f, int timeout_ms, char *err,
                       size_t errlen)
{
    if (c->broken) return gf_wire__err(err, errlen, c->broken_status, "%s", c->ioerr);
    int tmo = eff_timeout(c, timeout_ms);
    uint64_t deadline = gf_wire__now_ms() + (uint64_t)tmo;
    char derr[200];
    c->blocking = tmo != 0;
    for (;;) {
        int done = 0;
        gf_status st;
        if (c->rpos < c->rlen) {
            size_t used = 0;
            st = gf_wire_decoder_feed(&c->dec, c->rbuf + c->rpos, c->rlen - c->rpos, &used,
                                      &done, f, derr, sizeof derr);
            c->rpos += used;
            if (st != GF_OK)
                return broken(c, st, err, errlen, "from %s: %s", c->peer, derr);
            if (done) return GF_OK;
            continue;
        }
        c->rpos = c->rlen = 0;
        uint8_t *w;
        size_t wl;
        gf_wire_decoder_window(&c->dec, &w, &wl);
        long n;
        int direct = wl >= DIRECT_READ_MIN;
        size_t want = direct ? wl : GF_WIRE__RBUF;
        int waited = 0;
        if (c->drained && tmo != 0 && c->scheme == GF_WIRE_TCP) {
            /* The last read emptied the socket: wait first rather than make a read that is
             * sure to fail (one system call less per message). With nothing to send, the read
             * itself waits (one more less: the raw ping-pong's single recv). */
            c->drained = 0;
            int left = gf_wire__left_ms(deadline);
            if (left == 0) continue;
            if (c->ops->read_wait && !gf_wire_queued(c)) {
                n = c->ops->read_wait(c, direct ? w : c->rbuf, want, left);
                waited = 1;
            } else if (c->ops->wait(c, (short)(POLLIN | (gf_wire_queued(c) ? POLLOUT : 0)),
                                    left) == GF_WIRE__ERROR) {
                return broken(c, GF_EIO, err, errlen, "waiting on %s: %s", c->peer, c->ioerr);
            }
        }
        if (!waited) n = c->ops->read(c, direct ? w : c->rbuf, want);
        c->drained = n > 0 && (size_t)n < want;
        if (n > 0) {
            if (!direct) {
                c->rlen = (size_t)n;
                continue;
            }
            st = gf_wire_decoder_commit(&c->dec, (size_t)n, &done, f, derr, sizeof derr);
            if (st != GF_OK) return broken(c, st, err, errlen, "from %s: %s", c->peer, derr);
            if (done) return GF_OK;
            continue;
        }
        if (n == GF_WIRE__CLOSED) {
            c->eof = 1;
            if (mid_frame(c))
                return broken(c, GF_ECLOSED, err, errlen,
                              "connection to %s lost mid-frame (kind 0x%x, %llu of %llu "
                              "payload bytes)",
                              c->peer, c->dec.hdr.kind,
                              (unsigned long long)c->dec.payload_have,
                              (unsigned long long)c->dec.hdr.payload_len);
            return broken(c, GF_ECLOSED, err, errlen, "%s closed the connection", c->peer);
        }
        if (n == GF_WIRE__ERROR)
            return broken(c, GF_EIO, err, errlen, "receiving from %s: %s", c->peer, c->ioerr);
        /* Nothing readable now: push out what we owe the peer, then wait. */
        if (gf_wire_queued(c)) {
            st = gf_wire_flush(c, 0, err, errlen);
            if (st != GF_OK && st != GF_EBUSY) return st;
            c->blocking = tmo != 0;
        }
        if (tmo == 0) return GF_EBUSY;
        int left = gf_wire__left_ms(deadline);
        if (left == 0)
            return gf_wire__err(err, errlen, GF_ETIMEDOUT, "no %s from %s within %d ms",
                                mid_frame(c) ? "complete frame" : "answer", c->peer, tmo);
        short ev = POLLIN | (gf_wire_queued(c) ? POLLOUT : 0);
        if (c->ops->wait(c, ev, left) == GF_WIRE__ERROR)
            return broken(c, GF_EIO, err, errlen, "waiting on %s: %s", c->peer, c->ioerr);
    }
}

gf_status gf_wire_call(gf_wire_conn *c, uint32_t kind, uint64_t request_id, const void *payload,
                       size_t len, gf_wire_frame *reply, int timeout_ms, char *err,
                       size_t errlen)
{
    int tmo = eff_timeout(c, timeout_ms);
    if (tmo == 0) tmo = c->timeout_ms;
    uint64_t deadline = gf_wire__now_ms() + (uint64_t)tmo;
    gf_status st = gf_wire_send(c, kind, 0, request_id, payload, len, tmo, err, errlen);
    if (st != GF_OK) return st;
    for (;;) {
        int left = gf_wire__left_ms(deadline);
        if (left == 0)
            return gf_wire__err(err, errlen, GF_ETIMEDOUT,
                                "no reply from %s to request %llu (kind 0x%x) within %d ms",
                                c->peer, (unsigned long long)request_id, kind, tmo);
        st = gf_wire_recv(c, reply, left, err, errlen);
        if (st == GF_ETIMEDOUT)
            return gf_wire__err(err, errlen, GF_ETIMEDOUT,
                                "no reply from %s to request %llu (kind 0x%x) within %d ms",
                                c->peer, (unsigned long long)request_id, kind, tmo);
        if (st != GF_OK) return st;
        if (!(reply->hdr.flags & GF_WIRE_F_REPLY) || reply->hdr.request_id != request_id)
            return broken(c, GF_EPROTO, err, errlen,
                          "from %s: expected the reply to request %llu, got kind 0x%x request "
                          "%llu flags 0x%x",
                          c->peer, (unsigned long long)request_id, reply->hdr.kind,
                          (unsigned long long)reply->hdr.request_id, reply->hdr.flags);
        if (reply->hdr.flags & GF_WIRE_F_ERROR) {
            gf_status rs;
            char msg[256];
            gf_wire_error_decode(reply, &rs, msg, sizeof msg);
            return gf_wire__err(err, errlen, rs, "%s: %s", c->peer, msg);
        }
        return GF_OK;
    }
}

void gf_wire__conn_set_route(gf_wire_conn *c, gf_wire_route_fn fn, void *ctx)
{
    gf_wire_decoder_set_route(&c->dec, fn, ctx);
}

int gf_wire_conn_fd(const gf_wire_conn *c) { return c->fd; }

int gf_wire_conn_has_buffered(const gf_wire_conn *c)
{
    if (c->broken) return 0;
    return c->rpos < c->rlen || (c->ops->buffered && c->ops->buffered(c));
}
short gf_wire_conn_events(const gf_wire_conn *c) { return c->ops->events(c); }
const char *gf_wire_conn_peer(const gf_wire_conn *c) { return c->peer; }
gf_wire_scheme gf_wire_conn_scheme(const gf_wire_conn *c) { return c->scheme; }
uint8_t gf_wire_conn_peer_minor(const gf_wire_conn *c) { return c->peer_minor; }
uint64_t gf_wire_conn_session_id(const gf_wire_conn *c) { return c->session_id; }

void gf_wire_conn_set_timeout(gf_wire_conn *c, int timeout_ms)
{
    if (timeout_ms > 0) c->timeout_ms = timeout_ms;
}

void gf_wire_close(gf_wire_conn *c)
{
    if (!c) return;
    if (!c->broken && gf_wire_queued(c)) gf_wire_flush(c, 0, NULL, 0);
    c->ops->close(c);
    gf_wire_decoder_free(&c->dec);
    free(c->rbuf);
    free(c->qbuf);
    free(c);
}

void gf_wire_conn_release_after_fork(gf_wire_conn *c)
{
    if (!c) return;
    c->released = 1; /* the transports' close does no I/O (tls_close: no close_notify) */
    c->ops->close(c);
    gf_wire_decoder_free(&c->dec);
    free(c->rbuf);
    free(c->qbuf);
    free(c);
}

/* ---- connect / listen / accept ---------------------------------------------------------- */

gf_status gf_wire_connect(const char *addr, const gf_wire_opts *opts, gf_wire_conn **out,
                          char *err, size_t errlen)
{
    gf_wire_opts def;
    if (!opts) {
        gf_wire_opts_init(&def);
        opts = &def;
    }
    *out = NULL;
    gf_wire_addr a;
    gf_status st = gf_wire_parse_addr("remote address", addr, &a, err, errlen);
    if (st != GF_OK) return st;
    if (a.scheme == GF_WIRE_SHM) return gf_wire__shm_connect(&a, opts, out, err, errlen);
    int fd;
    uint64_t t0 = gf_wire__now_ms();
    st = gf_wire__tcp_connect(&a, opts, &fd, err, errlen);
    if (st != GF_OK) return st;
    char peer[300];
    snprintf(peer, sizeof peer, "%s", addr);
    gf_wire_conn *c = gf_wire__conn_new(&gf_wire__tcp_ops, a.scheme, fd, opts, peer);
    if (!c) {
        close(fd);
        return gf_wire__err(err, errlen, GF_ENOMEM, "connecting to %s: out of memory", addr);
    }
    if (a.scheme == GF_WIRE_TCP) gf_wire__tcp_blocking(c);
    if (a.scheme == GF_WIRE_TLS) {
        gf_wire_opts o2 = *opts;
        int spent = (int)(gf_wire__now_ms() - t0);
        int tmo = opts->timeout_ms > 0 ? opts->timeout_ms : GF_WIRE_TIMEOUT_MS_DEFAULT;
        o2.timeout_ms = tmo - spent > 1 ? tmo - spent : 1;
        st = gf_wire__tls_client(c, &a, &o2, err, errlen);
        if (st != GF_OK) {
            gf_wire_close(c);
            return st;
        }
    }
    *out = c;
    return GF_OK;
}

gf_status gf_wire_listen(const char *addr, const gf_wire_opts *opts, gf_wire_listener **out,
                         char *err, size_t errlen)
{
    *out = NULL;
    gf_wire_addr a;
    gf_status st = gf_wire_parse_addr("listen address", addr, &a, err, errlen);
    if (st != GF_OK) return st;
    gf_wire_listener *l = calloc(1, sizeof *l);
    if (!l) return gf_wire__err(err, errlen, GF_ENOMEM, "listen: out of memory");
    if (opts)
        l->opts = *opts;
    else
        gf_wire_opts_init(&l->opts);
    /* The conns outlive the caller's strings; the listener keeps only what it needs. */
    l->opts.tls_cert_file = l->opts.tls_key_file = l->opts.tls_ca_file = NULL;
    l->opts.tls_server_name = NULL;
    l->scheme = a.scheme;
    l->fd = -1;
    if (a.scheme == GF_WIRE_TLS) {
        st = gf_wire__tls_server_ctx(opts, &l->tls_ctx, err, errlen);
        if (st != GF_OK) goto fail;
    }
    if (a.scheme == GF_WIRE_SHM) {
        st = gf_wire__shm_listen(&a, &l->fd, err, errlen);
        if (st != GF_OK) goto fail;
        if (a.path[0] == '/') {
            snprintf(l->unlink_path, sizeof l->unlink_path, "%s", a.path);
            snprintf(l->url, sizeof l->url, "shm://%s", a.path);
        } else {
            snprintf(l->url, sizeof l->url, "shm://%s", a.path + strlen("@gpufuse-"));
        }
    } else {
        uint16_t port = 0;
        st = gf_wire__tcp_listen(&a, &l->opts, &l->fd, &port, err, errlen);
        if (st != GF_OK) goto fail;
        int v6 = strchr(a.host, ':') != NULL;
        snprintf(l->url, sizeof l->url, "%s://%s%s%s:%u", a.scheme == GF_WIRE_TLS ? "tls" : "tcp",
                 v6 ? "[" : "", a.host, v6 ? "]" : "", port);
    }
    *out = l;
    return GF_OK;
fail:
    gf_wire_listener_close(l);
    return st;
}

int gf_wire_listener_fd(const gf_wire_listener *l) { return l->fd; }

void gf_wire_listener_addr(const gf_wire_listener *l, char *buf, size_t len)
{
    if (len) snprintf(buf, len, "%s", l->url);
}

gf_status gf_wire_accept(gf_wire_listener *l, gf_wire_conn **out, char *err, size_t errlen)
{
    *out = NULL;
    if (l->scheme == GF_WIRE_SHM) return gf_wire__shm_accept(l->fd, &l->opts, l->url, out, err, errlen);
    int fd;
    char peer[300];
    gf_status st = gf_wire__tcp_accept(l->fd, &l->opts, &fd, peer, sizeof peer, err, errlen);
    if (st != GF_OK) return st;
    if (l->scheme == GF_WIRE_TLS) memcpy(peer, "tls", 3);
    gf_wire_conn *c = gf_wire__conn_new(&gf_wire__tcp_ops, l->scheme, fd, &l->opts, peer);
    if (!c) {
        close(fd);
        return gf_wire__err(err, errlen, GF_ENOMEM, "accept: out of memory");
    }
    if (l->scheme == GF_WIRE_TCP) gf_wire__tcp_blocking(c);
    if (l->scheme == GF_WIRE_TLS) {
        st = gf_wire__tls_server(c, l->tls_ctx, err, errlen);
        if (st != GF_OK) {
            gf_wire_close(c);
            return st;
        }
    }
    *out = c;
    return GF_OK;
}

void gf_wire_listener_release_after_fork(gf_wire_listener *l)
{
    if (!l) return;
    l->unlink_path[0] = 0; /* the other process still serves it */
    gf_wire_listener_close(l);
}

void gf_wire_listener_close(gf_wire_listener *l)
{
    if (!l) return;
    if (l->fd >= 0) close(l->fd);
    if (l->unlink_path[0]) unlink(l->unlink_path);
    if (l->tls_ctx) gf_wire__tls_ctx_free(l->tls_ctx);
    free(l);
}
