/* SPDX-License-Identifier: Apache-2.0 */
/* Private pieces shared by the src/wire files: error formatting, little-endian helpers, the
 * connection object and the transport operations each scheme implements. */
#ifndef GF_WIRE_INTERNAL_H
#define GF_WIRE_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "gpufuse/wire.h"

/* Formats into the caller's err buffer (may be NULL) and returns st, for `return gf_wire__err(..)`. */
gf_status gf_wire__err(char *err, size_t errlen, gf_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline void gf_wire__put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void gf_wire__put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void gf_wire__put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t gf_wire__get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t gf_wire__get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static inline uint64_t gf_wire__get64(const uint8_t *p)
{
    return (uint64_t)gf_wire__get32(p) | ((uint64_t)gf_wire__get32(p + 4) << 32);
}

/* CLOCK_MONOTONIC in ms, and the remaining ms until a deadline (0 when passed). */
uint64_t gf_wire__now_ms(void);
int gf_wire__left_ms(uint64_t deadline_ms);

/* Result of a transport operation: bytes moved (>0), or one of these. */
enum {
    GF_WIRE__AGAIN = -1,  /* would block */
    GF_WIRE__CLOSED = -2, /* orderly EOF / peer gone */
    GF_WIRE__ERROR = -3,  /* error, message in conn->ioerr */
};

struct gf_wire_conn;
/* A transport: how bytes move for one scheme. All operations are non-blocking. */
typedef struct gf_wire_ops {
    /* Reads up to len bytes into buf. */
    long (*read)(struct gf_wire_conn *c, void *buf, size_t len);
    /* Writes from iov (total > 0). */
    long (*writev)(struct gf_wire_conn *c, const struct iovec *iov, int iovcnt);
    /* Waits until the transport may make progress for POLLIN and/or POLLOUT in events, at most
     * ms; returns 0 (then retry the operation), or GF_WIRE__ERROR on a poll failure. */
    int (*wait)(struct gf_wire_conn *c, short events, int ms);
    /* POLLIN/POLLOUT the event loop should wait for. */
    short (*events)(const struct gf_wire_conn *c);
    void (*close)(struct gf_wire_conn *c);
    /* Received bytes held below the conn (TLS records, the shm ring); NULL = none. */
    int (*buffered)(const struct gf_wire_conn *c);
    /* Optional: like read, but waits up to ms (> 0) for the first byte in the read itself, so
     * that a blocking receive on an empty socket costs one system call, not a poll and a read
     * (the sync-call round trip). GF_WIRE__AGAIN when nothing came in time. */
    long (*read_wait)(struct gf_wire_conn *c, void *buf, size_t len, int ms);
} gf_wire_ops;

#define GF_WIRE__RBUF 65536u

struct gf_wire_conn {
    const gf_wire_ops *ops;
    gf_wire_scheme scheme;
    int fd;            /* socket (tcp/tls), unix socket (shm) */
    void *tls;         /* SSL * */
    void *shm;         /* struct gf_wire_shm * */
    int tls_want_write; /* last SSL op asked for POLLOUT */
    int blocking;      /* inside a call with a deadline (shm: spin, then sleep in wait) */
    int drained;       /* the last read returned less than asked: the socket is empty */
    int fd_blocking;   /* tcp: the socket itself blocks (gf_wire__tcp_blocking); every other
                        * operation on it passes MSG_DONTWAIT */
    int rcvtimeo_ms;   /* SO_RCVTIMEO last set on it (0: none yet) */
    int timeout_ms;
    uint64_t max_queue;
    char peer[300];
    char ioerr[256];   /* message of the last GF_WIRE__ERROR */
    gf_wire_decoder dec;
    uint8_t *rbuf;     /* read buffer: rbuf[rpos..rlen) not fed yet */
    size_t rpos, rlen;
    uint8_t *qbuf;     /* outgoing queue: qbuf[qpos..qlen) */
    size_t qpos, qlen, qcap;
    int broken;        /* a protocol error or EOF happened: every later call fails */
    gf_status broken_status;
    int eof;
    int released;      /* gf_wire_conn_release_after_fork: close without any I/O */
    uint8_t peer_minor;
    uint64_t session_id;
};

/* Allocates a conn with the common parts set up (options from o, may be NULL). */
struct gf_wire_conn *gf_wire__conn_new(const gf_wire_ops *ops, gf_wire_scheme scheme, int fd,
                                       const gf_wire_opts *o, const char *peer);

/* Sets (fn non-NULL) or clears the conn's decoder route (gf_wire_decoder_set_route): payloads
 * of the frames it accepts are received straight into the buffer it returns. For gpufuse's own
 * bulk receivers (the worker's pinned staging buffers, the client's D2H destination); not part of
 * the public API. Only between whole frames (the route is asked once per frame header). */
void gf_wire__conn_set_route(struct gf_wire_conn *c, gf_wire_route_fn fn, void *ctx);

/* Socket helpers (tcp.c). */
int gf_wire__set_nonblock(int fd);
/* A plain tcp:// conn: clears O_NONBLOCK so that read_wait can block in recv (non-blocking
 * reads and writes pass MSG_DONTWAIT). Not for tls:// (OpenSSL reads the socket itself). */
void gf_wire__tcp_blocking(struct gf_wire_conn *c);
gf_status gf_wire__wait_fd(int fd, short events, int ms, char *err, size_t errlen);

/* Scheme entry points. */
gf_status gf_wire__tcp_connect(const gf_wire_addr *a, const gf_wire_opts *o, int *fd,
                               char *err, size_t errlen);
gf_status gf_wire__tcp_listen(const gf_wire_addr *a, const gf_wire_opts *o, int *fd,
                              uint16_t *port, char *err, size_t errlen);
gf_status gf_wire__tcp_accept(int lfd, const gf_wire_opts *o, int *fd, char *peer, size_t plen,
                              char *err, size_t errlen);
extern const gf_wire_ops gf_wire__tcp_ops;

gf_status gf_wire__tls_server_ctx(const gf_wire_opts *o, void **ctx, char *err, size_t errlen);
void gf_wire__tls_ctx_free(void *ctx);
gf_status gf_wire__tls_client(struct gf_wire_conn *c, const gf_wire_addr *a,
                              const gf_wire_opts *o, char *err, size_t errlen);
gf_status gf_wire__tls_server(struct gf_wire_conn *c, void *ctx, char *err, size_t errlen);

gf_status gf_wire__shm_connect(const gf_wire_addr *a, const gf_wire_opts *o,
                               struct gf_wire_conn **out, char *err, size_t errlen);
gf_status gf_wire__shm_listen(const gf_wire_addr *a, int *fd, char *err, size_t errlen);
gf_status gf_wire__shm_accept(int lfd, const gf_wire_opts *o, const char *url,
                              struct gf_wire_conn **out, char *err, size_t errlen);

#endif
