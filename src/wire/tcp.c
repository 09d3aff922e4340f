/* SPDX-License-Identifier: Apache-2.0 */
/* The tcp:// transport: non-blocking sockets (IPv4/IPv6), TCP_NODELAY, large buffers,
 * keepalive, connect with a deadline, listen and non-blocking accept. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "wire/wire_internal.h"

int gf_wire__set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

gf_status gf_wire__wait_fd(int fd, short events, int ms, char *err, size_t errlen)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, ms);
    if (r < 0 && errno != EINTR)
        return gf_wire__err(err, errlen, GF_EIO, "poll: %s", strerror(errno));
    return r > 0 ? GF_OK : GF_ETIMEDOUT;
}

static void tune(int fd, const gf_wire_opts *o)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int buf = o && o->sockbuf_bytes > 0 ? o->sockbuf_bytes : 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    /* A peer whose machine vanished is noticed in ~30 s even when nobody is sending. */
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    int idle = 10, intvl = 5, cnt = 4;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    unsigned user_timeout = 30000;
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
}

static long tcp_recv(struct gf_wire_conn *c, void *buf, size_t len, int flags, int retry_eintr)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, flags);
        if (n > 0) return n;
        if (n == 0) return GF_WIRE__CLOSED;
        if (errno == EINTR) {
            if (retry_eintr) continue;
            return GF_WIRE__AGAIN; /* the caller looks at its deadline and waits again */
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) return GF_WIRE__AGAIN;
        if (errno == ECONNRESET || errno == EPIPE || errno == ETIMEDOUT) return GF_WIRE__CLOSED;
        snprintf(c->ioerr, sizeof c->ioerr, "recv: %s", strerror(errno));
        return GF_WIRE__ERROR;
    }
}

static long tcp_read(struct gf_wire_conn *c, void *buf, size_t len)
{
    return tcp_recv(c, buf, len, MSG_DONTWAIT, 1);
}

static long tcp_read_wait(struct gf_wire_conn *c, void *buf, size_t len, int ms)
{
    if (!c->fd_blocking) return tcp_read(c, buf, len);
    if (ms != c->rcvtimeo_ms) {
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) return tcp_read(c, buf, len);
        c->rcvtimeo_ms = ms;
    }
    return tcp_recv(c, buf, len, 0, 0);
}

void gf_wire__tcp_blocking(struct gf_wire_conn *c)
{
    int fl = fcntl(c->fd, F_GETFL);
    if (fl >= 0 && fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK) == 0) c->fd_blocking = 1;
}

static long tcp_writev(struct gf_wire_conn *c, const struct iovec *iov, int iovcnt)
{
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    for (;;) {
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0) return n > 0 ? n : GF_WIRE__AGAIN;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return GF_WIRE__AGAIN;
        if (errno == ECONNRESET || errno == EPIPE || errno == ETIMEDOUT) return GF_WIRE__CLOSED;
        snprintf(c->ioerr, sizeof c->ioerr, "send: %s", strerror(errno));
        return GF_WIRE__ERROR;
    }
}

static int tcp_wait(struct gf_wire_conn *c, short events, int ms)
{
    struct pollfd p = {.fd = c->fd, .events = events};
    if (poll(&p, 1, ms) < 0 && errno != EINTR) {
        snprintf(c->ioerr, sizeof c->ioerr, "poll: %s", strerror(errno));
        return GF_WIRE__ERROR;
    }
    return 0;
}

static short tcp_events(const struct gf_wire_conn *c)
{
    return (short)(POLLIN | (gf_wire_queued(c) ? POLLOUT : 0));
}

static void tcp_close(struct gf_wire_conn *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

const gf_wire_ops gf_wire__tcp_ops = {tcp_read,  tcp_writev, tcp_wait,     tcp_events,
                                      tcp_close, NULL,       tcp_read_wait};

static gf_status resolve(const gf_wire_addr *a, int passive, struct addrinfo **res, char *err,
                         size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (passive) hints.ai_flags = AI_PASSIVE;
    char port[8];
    snprintf(port, sizeof port, "%u", a->port);
    int r = getaddrinfo(a->host, port, &hints, res);
    if (r == 0) return GF_OK;
    return gf_wire__err(err, errlen, r == EAI_NONAME || r == EAI_NODATA ? GF_ENOENT : GF_EIO,
                        "cannot resolve host \"%s\": %s", a->host, gai_strerror(r));
}

gf_status gf_wire__tcp_connect(const gf_wire_addr *a, const gf_wire_opts *o, int *fd, char *err,
                               size_t errlen)
{
    struct addrinfo *res, *ai;
    gf_status st = resolve(a, 0, &res, err, errlen);
    if (st != GF_OK) return st;
    int tmo = o->timeout_ms > 0 ? o->timeout_ms : GF_WIRE_TIMEOUT_MS_DEFAULT;
    uint64_t deadline = gf_wire__now_ms() + (uint64_t)tmo;
    int last = 0;
    st = GF_EIO;
    *fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        int s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s < 0) {
            last = errno;
            continue;
        }
        tune(s, o);
        int r = connect(s, ai->ai_addr, ai->ai_addrlen);
        if (r < 0 && errno == EINPROGRESS) {
            int left = gf_wire__left_ms(deadline);
            struct pollfd p = {.fd = s, .events = POLLOUT};
            int pr;
            do pr = poll(&p, 1, left);
            while (pr < 0 && errno == EINTR && (left = gf_wire__left_ms(deadline)) > 0);
            if (pr == 0) {
                close(s);
                freeaddrinfo(res);
                return gf_wire__err(err, errlen, GF_ETIMEDOUT,
                                    "connecting to %s:%u: no answer within %d ms (host down, "
                                    "or a firewall drops the port?)",
                                    a->host, a->port, tmo);
            }
            socklen_t sl = sizeof r;
            int soerr = 0;
            getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            r = soerr ? -1 : 0;
            errno = soerr;
        }
        if (r == 0) {
            *fd = s;
            break;
        }
        last = errno;
        close(s);
    }
    freeaddrinfo(res);
    if (*fd >= 0) return GF_OK;
    if (last == ECONNREFUSED)
        return gf_wire__err(err, errlen, GF_ECLOSED,
                            "connecting to %s:%u: connection refused (is `gpufuse worker --listen "
                            "...:%u` running there?)",
                            a->host, a->port, a->port);
    return gf_wire__err(err, errlen, last == ETIMEDOUT ? GF_ETIMEDOUT : GF_EIO,
                        "connecting to %s:%u: %s", a->host, a->port, strerror(last));
}

gf_status gf_wire__tcp_listen(const gf_wire_addr *a, const gf_wire_opts *o, int *fd,
                              uint16_t *port, char *err, size_t errlen)
{
    struct addrinfo *res;
    gf_status st = resolve(a, 1, &res, err, errlen);
    if (st != GF_OK) return st;
    int last = 0;
    *fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s < 0) {
            last = errno;
            continue;
        }
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        tune(s, o);
        if (bind(s, ai->ai_addr, ai->ai_addrlen) == 0 && listen(s, 1024) == 0) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            getsockname(s, (struct sockaddr *)&ss, &sl);
            *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
            *fd = s;
            break;
        }
        last = errno;
        close(s);
    }
    freeaddrinfo(res);
    if (*fd >= 0) return GF_OK;
    return gf_wire__err(err, errlen,
                        last == EADDRINUSE ? GF_EEXIST
                        : last == EACCES   ? GF_EPERM
                                           : GF_EIO,
                        "listening on %s:%u: %s%s", a->host, a->port, strerror(last),
                        last == EADDRINUSE ? " (another worker on this port? pick another)"
                        : last == EACCES   ? " (ports below 1024 need root)"
                                           : "");
}

gf_status gf_wire__tcp_accept(int lfd, const gf_wire_opts *o, int *fd, char *peer, size_t plen,
                              char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int s;
    do s = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    while (s < 0 && errno == EINTR);
    if (s < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) return GF_EBUSY;
        return gf_wire__err(err, errlen, GF_EIO, "accept: %s", strerror(errno));
    }
    tune(s, o);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
        port = ntohs(s6->sin6_port);
        snprintf(peer, plen, "tcp://[%s]:%u", host, port);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
        port = ntohs(s4->sin_port);
        snprintf(peer, plen, "tcp://%s:%u", host, port);
    }
    *fd = s;
    return GF_OK;
}
