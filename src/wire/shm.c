/* SPDX-License-Identifier: Apache-2.0 */
/* The shm:// transport: two single-producer single-consumer byte rings in a sealed memfd that
 * the worker creates per session and passes over a unix socket; the socket then carries only
 * wakeups (one byte, sent only when the other side sleeps) and tells each side the other died. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "wire/wire_internal.h"

/* Layout version of the shared region (independent of the frame protocol's). */
#define SHM_MAGIC 0x52534647u  /* "GFSR" */
#define RING_MAGIC 0x47524647u /* "GFRG" */
#define GREET_MAGIC 0x48534647u /* "GFSH": the message that carries the memfd */
#define SHM_MAJOR 1
#define SHM_MINOR 0
#define SHM_HDR_BYTES 4096u
#define RING_MIN (64u << 10)
#define RING_MAX (1u << 30)
#define SPIN_NS 50000u
#define STEP (64u << 10) /* bytes copied between two publications of head/tail */

/* Page 0 of the region. Offsets only, no pointers; counters on their own cache lines. */
struct shm_ring {
    uint32_t magic;
    uint16_t major, minor;
    uint32_t size;          /* sizeof(struct shm_ring) */
    uint32_t reserved;
    uint64_t capacity;      /* bytes, a power of two */
    uint64_t data_offset;   /* from the region's start */
    uint8_t pad0[64 - 32];
    _Atomic uint64_t head;  /* total bytes produced (written by the producer only) */
    uint8_t pad1[56];
    _Atomic uint64_t tail;  /* total bytes consumed (written by the consumer only) */
    uint8_t pad2[56];
    _Atomic uint32_t consumer_waiting; /* consumer sleeps: producer rings after producing */
    _Atomic uint32_t producer_waiting; /* producer sleeps: consumer rings after consuming */
    uint8_t pad3[56];
};

struct shm_region {
    uint32_t magic;
    uint16_t major, minor;
    uint32_t header_size;   /* sizeof(struct shm_region) */
    uint32_t ring_count;    /* 2: [0] client -> worker, [1] worker -> client */
    uint64_t region_size;
    uint64_t ring_bytes;
    uint64_t ring_offset[2]; /* of each struct shm_ring */
    uint8_t pad[64 - 48];
    struct shm_ring ring[2];
};

_Static_assert(sizeof(struct shm_ring) == 256, "ring header layout");
_Static_assert(offsetof(struct shm_region, ring) == 64, "region header layout");
_Static_assert(sizeof(struct shm_region) <= SHM_HDR_BYTES, "region header fits page 0");

/* What travels with the memfd over the unix socket. */
struct shm_greet {
    uint32_t magic;
    uint16_t major, minor;
    uint32_t size;
    uint32_t reserved;
    uint64_t region_size;
    uint64_t ring_bytes;
};

struct gf_wire_shm {
    uint8_t *map;
    size_t map_len;
    struct shm_ring *rx, *tx;   /* in the map */
    uint8_t *rx_data, *tx_data; /* in the map */
    uint64_t cap;               /* our own copy: never re-read from shared memory */
    uint64_t rx_tail;           /* our consumer counter */
    uint64_t tx_head;           /* our producer counter */
    int peer_gone;
};

static void doorbell(struct gf_wire_conn *c)
{
    char b = 1;
    ssize_t n;
    do n = send(c->fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) ((struct gf_wire_shm *)c->shm)->peer_gone = 1;
}

/* Empties the socket of wakeup bytes; notices the peer's exit. */
static void drain(struct gf_wire_conn *c)
{
    struct gf_wire_shm *s = c->shm;
    char buf[256];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) continue;
        if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) s->peer_gone = 1;
        if (n < 0 && errno == EINTR) continue;
        return;
    }
}

static long corrupt(struct gf_wire_conn *c, const char *which, uint64_t v)
{
    snprintf(c->ioerr, sizeof c->ioerr,
             "shm ring corrupted by the peer (%s counter %llu out of range): closing the session",
             which, (unsigned long long)v);
    return GF_WIRE__ERROR;
}

static int rx_ready(struct gf_wire_shm *s)
{
    return atomic_load_explicit(&s->rx->head, memory_order_acquire) != s->rx_tail;
}

static int tx_ready(struct gf_wire_shm *s)
{
    return s->tx_head - atomic_load_explicit(&s->tx->tail, memory_order_acquire) < s->cap;
}

static long shm_read(struct gf_wire_conn *c, void *buf, size_t len)
{
    struct gf_wire_shm *s = c->shm;
    uint64_t head = atomic_load_explicit(&s->rx->head, memory_order_acquire);
    uint64_t avail = head - s->rx_tail;
    if (avail > s->cap) return corrupt(c, "head", head);
    if (avail == 0) {
        if (!c->blocking) {
            /* Event loop: ask for a wakeup, then re-check (the producer may have just
             * published without seeing the flag). */
            atomic_store(&s->rx->consumer_waiting, 1);
            drain(c);
            if (rx_ready(s)) return shm_read(c, buf, len);
        }
        return s->peer_gone ? GF_WIRE__CLOSED : GF_WIRE__AGAIN;
    }
    size_t n = len < avail ? len : (size_t)avail;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < STEP ? n - done : STEP;
        size_t off = (size_t)(s->rx_tail & (s->cap - 1));
        size_t first = k < s->cap - off ? k : (size_t)(s->cap - off);
        memcpy((uint8_t *)buf + done, s->rx_data + off, first);
        if (k > first) memcpy((uint8_t *)buf + done + first, s->rx_data, k - first);
        s->rx_tail += k;
        done += k;
        atomic_store_explicit(&s->rx->tail, s->rx_tail, memory_order_release);
    }
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->rx->producer_waiting, memory_order_relaxed) &&
        atomic_exchange(&s->rx->producer_waiting, 0))
        doorbell(c);
    return (long)n;
}

static long shm_writev(struct gf_wire_conn *c, const struct iovec *iov, int iovcnt)
{
    struct gf_wire_shm *s = c->shm;
    if (s->peer_gone) return GF_WIRE__CLOSED;
    uint64_t tail = atomic_load_explicit(&s->tx->tail, memory_order_acquire);
    uint64_t used = s->tx_head - tail;
    if (used > s->cap) return corrupt(c, "tail", tail);
    uint64_t space = s->cap - used;
    if (space == 0) {
        if (!c->blocking) {
            atomic_store(&s->tx->producer_waiting, 1);
            drain(c);
            if (s->peer_gone) return GF_WIRE__CLOSED;
            if (tx_ready(s)) return shm_writev(c, iov, iovcnt);
        }
        return GF_WIRE__AGAIN;
    }
    size_t total = 0;
    for (int i = 0; i < iovcnt && space; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t n = iov[i].iov_len < space ? iov[i].iov_len : (size_t)space;
        /* Large copies are published in steps so the consumer copies out concurrently. */
        for (size_t done = 0; done < n;) {
            size_t k = n - done < STEP ? n - done : STEP;
            size_t off = (size_t)(s->tx_head & (s->cap - 1));
            size_t first = k < s->cap - off ? k : (size_t)(s->cap - off);
            memcpy(s->tx_data + off, p + done, first);
            if (k > first) memcpy(s->tx_data, p + done + first, k - first);
            s->tx_head += k;
            done += k;
            if (done < n) atomic_store_explicit(&s->tx->head, s->tx_head, memory_order_release);
        }
        space -= n;
        total += n;
        if (n < iov[i].iov_len) break;
    }
    atomic_store_explicit(&s->tx->head, s->tx_head, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->tx->consumer_waiting, memory_order_relaxed) &&
        atomic_exchange(&s->tx->consumer_waiting, 0))
        doorbell(c);
    return (long)total;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int shm_wait(struct gf_wire_conn *c, short events, int ms)
{
    struct gf_wire_shm *s = c->shm;
    /* Spin briefly: a reply usually comes within microseconds, far below a sleep/wake cost. */
    if (ms > 0) {
        uint64_t t0 = now_ns();
        for (unsigned i = 1;; i++) {
            if (((events & POLLIN) && rx_ready(s)) || ((events & POLLOUT) && tx_ready(s)))
                return 0;
            /* Pure spinning for the first microseconds, then yielding, so that on a busy
             * machine the peer can run on this CPU. */
            if (i < 256)
                cpu_relax();
            else
                sched_yield();
            if ((i & 15) == 0 && now_ns() - t0 >= SPIN_NS) break;
        }
    }
    if (events & POLLIN) atomic_store(&s->rx->consumer_waiting, 1);
    if (events & POLLOUT) atomic_store(&s->tx->producer_waiting, 1);
    atomic_thread_fence(memory_order_seq_cst);
    if (((events & POLLIN) && rx_ready(s)) || ((events & POLLOUT) && tx_ready(s))) return 0;
    if (s->peer_gone) return 0;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int r = poll(&p, 1, ms);
    if (r < 0 && errno != EINTR) {
        snprintf(c->ioerr, sizeof c->ioerr, "poll: %s", strerror(errno));
        return GF_WIRE__ERROR;
    }
    if (r > 0) drain(c);
    return 0;
}

static short shm_events(const struct gf_wire_conn *c)
{
    (void)c;
    return POLLIN;
}

static void shm_close(struct gf_wire_conn *c)
{
    struct gf_wire_shm *s = c->shm;
    if (s) {
        if (s->map) munmap(s->map, s->map_len);
        free(s);
    }
    c->shm = NULL;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

static int shm_buffered(const struct gf_wire_conn *c)
{
    const struct gf_wire_shm *s = c->shm;
    return atomic_load_explicit(&s->rx->head, memory_order_acquire) != s->rx_tail;
}

static const gf_wire_ops shm_ops = {shm_read, shm_writev, shm_wait, shm_events, shm_close,
                                    shm_buffered, NULL};

/* ---- set-up -------------------------------------------------------------------------------- */

static socklen_t unix_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (path[0] == '@') { /* abstract: leading NUL, no terminator */
        memcpy(sa->sun_path + 1, path + 1, n - 1);
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    }
    memcpy(sa->sun_path, path, n);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

gf_status gf_wire__shm_listen(const gf_wire_addr *a, int *fd, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    socklen_t sl = unix_addr(a->path, &sa);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) return gf_wire__err(err, errlen, GF_EIO, "shm listener: socket: %s", strerror(errno));
    int r = bind(s, (struct sockaddr *)&sa, sl);
    if (r < 0 && errno == EADDRINUSE && a->path[0] == '/') {
        /* A socket file left by a dead worker is removed; a live one is kept. */
        int t = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (t >= 0 && connect(t, (struct sockaddr *)&sa, sl) < 0 && errno == ECONNREFUSED) {
            unlink(a->path);
            r = bind(s, (struct sockaddr *)&sa, sl);
        } else {
            errno = EADDRINUSE;
        }
        if (t >= 0) close(t);
    }
    if (r < 0 || listen(s, 1024) < 0) {
        int e = errno;
        close(s);
        return gf_wire__err(err, errlen, e == EADDRINUSE ? GF_EEXIST : e == EACCES ? GF_EPERM : GF_EIO,
                            "shm listener on unix socket \"%s\": %s%s", a->path, strerror(e),
                            e == EADDRINUSE ? " (another worker serves this name; pick another)" : "");
    }
    *fd = s;
    return GF_OK;
}

static gf_status map_region(int mfd, size_t len, int create, uint64_t ring_bytes,
                            struct gf_wire_shm **out, int is_server, char *err, size_t errlen)
{
    uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    if (m == MAP_FAILED)
        return gf_wire__err(err, errlen, GF_ENOMEM, "shm: mmap of %zu bytes: %s", len, strerror(errno));
    struct shm_region *r = (struct shm_region *)m;
    if (create) {
        memset(r, 0, sizeof *r);
        r->magic = SHM_MAGIC;
        r->major = SHM_MAJOR;
        r->minor = SHM_MINOR;
        r->header_size = sizeof *r;
        r->ring_count = 2;
        r->region_size = len;
        r->ring_bytes = ring_bytes;
        for (int i = 0; i < 2; i++) {
            r->ring_offset[i] = offsetof(struct shm_region, ring) + (uint64_t)i * sizeof r->ring[0];
            struct shm_ring *g = &r->ring[i];
            g->magic = RING_MAGIC;
            g->major = SHM_MAJOR;
            g->minor = SHM_MINOR;
            g->size = sizeof *g;
            g->capacity = ring_bytes;
            g->data_offset = SHM_HDR_BYTES + (uint64_t)i * ring_bytes;
        }
    } else if (r->magic != SHM_MAGIC || r->major != SHM_MAJOR || r->header_size < sizeof *r ||
               r->ring_count != 2 || r->region_size != len || r->ring_bytes != ring_bytes ||
               r->ring[0].magic != RING_MAGIC || r->ring[1].magic != RING_MAGIC) {
        unsigned maj = r->magic == SHM_MAGIC ? r->major : 0;
        munmap(m, len);
        return gf_wire__err(err, errlen, GF_EPROTO,
                            "shm region from the worker has an unknown layout (magic/version %u): "
                            "client and worker must come from compatible gpufuse releases", maj);
    }
    struct gf_wire_shm *s = calloc(1, sizeof *s);
    if (!s) {
        munmap(m, len);
        return gf_wire__err(err, errlen, GF_ENOMEM, "shm: out of memory");
    }
    s->map = m;
    s->map_len = len;
    s->cap = ring_bytes;
    /* Offsets are computed here, never taken from the shared page. */
    int rx = is_server ? 0 : 1, tx = 1 - rx;
    s->rx = &r->ring[rx];
    s->tx = &r->ring[tx];
    s->rx_data = m + SHM_HDR_BYTES + (size_t)rx * ring_bytes;
    s->tx_data = m + SHM_HDR_BYTES + (size_t)tx * ring_bytes;
    s->rx_tail = atomic_load(&s->rx->tail);
    s->tx_head = atomic_load(&s->tx->head);
    *out = s;
    return GF_OK;
}

gf_status gf_wire__shm_accept(int lfd, const gf_wire_opts *o, const char *url,
                              struct gf_wire_conn **out, char *err, size_t errlen)
{
    int s;
    do s = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    while (s < 0 && errno == EINTR);
    if (s < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) return GF_EBUSY;
        return gf_wire__err(err, errlen, GF_EIO, "shm accept: %s", strerror(errno));
    }
    uint64_t ring = o->shm_ring_bytes ? o->shm_ring_bytes : (8u << 20);
    if (ring < RING_MIN || ring > RING_MAX || (ring & (ring - 1))) {
        close(s);
        return gf_wire__err(err, errlen, GF_EINVAL,
                            "shm ring size %llu: must be a power of two between 64 KiB and 1 GiB",
                            (unsigned long long)ring);
    }
    size_t len = SHM_HDR_BYTES + 2 * (size_t)ring;
    gf_status st = GF_EIO;
    struct gf_wire_shm *sh = NULL;
    int mfd = memfd_create("gpufuse-wire", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0) {
        st = gf_wire__err(err, errlen, GF_EIO, "shm: memfd_create: %s", strerror(errno));
        goto fail;
    }
    /* Sealed so that a client cannot shrink the file under the worker (SIGBUS). */
    if (ftruncate(mfd, (off_t)len) < 0 ||
        fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        st = gf_wire__err(err, errlen, GF_ENOMEM, "shm: sizing a %zu-byte region: %s", len,
                          strerror(errno));
        goto fail;
    }
    st = map_region(mfd, len, 1, ring, &sh, 1, err, errlen);
    if (st != GF_OK) goto fail;
    struct shm_greet g = {GREET_MAGIC, SHM_MAJOR, SHM_MINOR, sizeof g, 0, len, ring};
    struct iovec iov = {&g, sizeof g};
    char ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof ctl);
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                       .msg_controllen = sizeof ctl};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &mfd, sizeof(int));
    if (sendmsg(s, &m, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof g) {
        st = gf_wire__err(err, errlen, GF_EIO, "shm: sending the region to the client: %s",
                          strerror(errno));
        goto fail;
    }
    close(mfd);
    mfd = -1;
    struct gf_wire_conn *c = gf_wire__conn_new(&shm_ops, GF_WIRE_SHM, s, o, url);
    if (!c) {
        st = gf_wire__err(err, errlen, GF_ENOMEM, "shm accept: out of memory");
        goto fail;
    }
    c->shm = sh;
    *out = c;
    return GF_OK;
fail:
    if (sh) {
        munmap(sh->map, sh->map_len);
        free(sh);
    }
    if (mfd >= 0) close(mfd);
    close(s);
    return st;
}

gf_status gf_wire__shm_connect(const gf_wire_addr *a, const gf_wire_opts *o,
                               struct gf_wire_conn **out, char *err, size_t errlen)
{
    int tmo = o->timeout_ms > 0 ? o->timeout_ms : GF_WIRE_TIMEOUT_MS_DEFAULT;
    uint64_t deadline = gf_wire__now_ms() + (uint64_t)tmo;
    char url[160];
    if (a->path[0] == '@')
        snprintf(url, sizeof url, "shm://%s", a->path + strlen("@gpufuse-"));
    else
        snprintf(url, sizeof url, "shm://%s", a->path);
    struct sockaddr_un sa;
    socklen_t sl = unix_addr(a->path, &sa);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) return gf_wire__err(err, errlen, GF_EIO, "%s: socket: %s", url, strerror(errno));
    int r;
    /* A full backlog answers EAGAIN: retry until the deadline rather than block. */
    while ((r = connect(s, (struct sockaddr *)&sa, sl)) < 0 && (errno == EAGAIN || errno == EINTR) &&
           gf_wire__left_ms(deadline) > 0) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (r < 0) {
        int e = errno;
        close(s);
        return gf_wire__err(err, errlen, e == ENOENT || e == ECONNREFUSED ? GF_ENOENT : GF_EIO,
                            "connecting to %s: %s (is `gpufuse worker --listen %s` running on "
                            "this machine, in this network namespace?)",
                            url, strerror(e), url);
    }
    struct shm_greet g;
    struct iovec iov = {&g, sizeof g};
    char ctl[CMSG_SPACE(sizeof(int))];
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                       .msg_controllen = sizeof ctl};
    ssize_t n;
    for (;;) {
        n = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
        if (n >= 0 || (errno != EAGAIN && errno != EINTR)) break;
        int left = gf_wire__left_ms(deadline);
        if (left == 0) {
            close(s);
            return gf_wire__err(err, errlen, GF_ETIMEDOUT,
                                "%s: the worker sent no ring within %d ms", url, tmo);
        }
        gf_wire__wait_fd(s, POLLIN, left, NULL, 0);
    }
    int mfd = -1;
    struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&m) : NULL;
    if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
        cm->cmsg_len == CMSG_LEN(sizeof(int)))
        memcpy(&mfd, CMSG_DATA(cm), sizeof(int));
    if (n != (ssize_t)sizeof g || mfd < 0 || g.magic != GREET_MAGIC || g.major != SHM_MAJOR ||
        g.ring_bytes < RING_MIN || g.ring_bytes > RING_MAX || (g.ring_bytes & (g.ring_bytes - 1)) ||
        g.region_size != SHM_HDR_BYTES + 2 * g.ring_bytes) {
        if (mfd >= 0) close(mfd);
        close(s);
        if (n == 0)
            return gf_wire__err(err, errlen, GF_ECLOSED, "%s closed the connection at set-up", url);
        return gf_wire__err(err, errlen, GF_EPROTO,
                            "%s: the listener did not send a gpufuse shm ring (%zd bytes, magic "
                            "0x%08x, layout %u): is it a gpufuse worker of a compatible release?",
                            url, n, n >= 4 ? g.magic : 0, n >= 6 ? g.major : 0);
    }
    struct stat stt;
    if (fstat(mfd, &stt) < 0 || (uint64_t)stt.st_size != g.region_size) {
        close(mfd);
        close(s);
        return gf_wire__err(err, errlen, GF_EPROTO, "%s: the shared region has the wrong size", url);
    }
    struct gf_wire_shm *sh;
    gf_status st = map_region(mfd, (size_t)g.region_size, 0, g.ring_bytes, &sh, 0, err, errlen);
    close(mfd);
    if (st != GF_OK) {
        close(s);
        return st;
    }
    struct gf_wire_conn *c = gf_wire__conn_new(&shm_ops, GF_WIRE_SHM, s, o, url);
    if (!c) {
        munmap(sh->map, sh->map_len);
        free(sh);
        close(s);
        return gf_wire__err(err, errlen, GF_ENOMEM, "%s: out of memory", url);
    }
    c->shm = sh;
    *out = c;
    return GF_OK;
}
