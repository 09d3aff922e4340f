/* SPDX-License-Identifier: Apache-2.0 */
/* A session process's event loop: one thread that handshakes and reaps the process's one
 * session (the supervisor, supervisor.c, accepted its connection and forked this process for
 * it), while the session's own thread reads its requests, makes its driver calls and writes its
 * replies, so a synchronous call crosses no thread hand-off. While the session's call runs long
 * (LONG_CALL_MS), the loop watches its connection: it answers PINGs (a long kernel is not a dead
 * worker), queues what else arrives for the thread, and notices a client that went away. */
#include "worker.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define RECV_BUDGET 64           /* frames read from one session per turn (fairness) */
#define THROTTLE_BYTES (64u << 20) /* inbound bytes queued before the loop stops reading */
#define GF_WORKER_VERSION "0.1.0"
#define LONG_CALL_MS 100 /* a driver call running longer: the loop watches the conn */
#define TICK_MS 50       /* how often the loop looks for such calls */

static gf_wk_worker *the_worker;

static void on_signal(int sig)
{
    (void)sig;
    if (!the_worker) return;
    the_worker->stop = 1;
    uint64_t one = 1;
    ssize_t n = write(the_worker->wakefd, &one, sizeof one);
    (void)n;
}

void gf_wk_wake(gf_wk_worker *w)
{
    uint64_t one = 1;
    ssize_t n = write(w->wakefd, &one, sizeof one);
    (void)n;
}

/* ---- sessions from the loop's side ----------------------------------------------------------- */

/* 1 when the loop may use s->c now (under s->io): before the handshake, or during a long call
 * of the session's thread once the loop watches it. */
static int loop_owns(const gf_wk_session *s)
{
    return !s->handshaken || (!s->thread_io && s->registered_events >= 0);
}

/* Under s->io: the events the loop waits for on a conn it owns. */
static void update_events_locked(gf_wk_worker *w, gf_wk_session *s)
{
    if (atomic_load(&s->closing) || !s->c || s->registered_events < 0) return;
    int want = atomic_load(&s->throttled) ? 0 : EPOLLIN;
    if (gf_wire_conn_events(s->c) & POLLOUT) want |= EPOLLOUT;
    if (want == s->registered_events) return;
    struct epoll_event ev = {.events = (uint32_t)want, .data.ptr = s};
    epoll_ctl(w->epfd, EPOLL_CTL_MOD, gf_wire_conn_fd(s->c), &ev);
    s->registered_events = want;
}


/* Stops reading s and tells its thread to finish; the thread frees what the session holds and
 * the loop reaps it (reap_finished). */
static void begin_close(gf_wk_worker *w, gf_wk_session *s, const char *why)
{
    pthread_mutex_lock(&s->io);
    if (s->registered_events >= 0 && s->c) {
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, gf_wire_conn_fd(s->c), NULL);
        s->registered_events = -1;
    }
    pthread_mutex_unlock(&s->io);
    if (!atomic_exchange(&s->closing, 1) && why)
        gf_log(GF_LOG_INFO, GF_WK_LOG, "session %" PRIu64 " (%s, %s): %s", s->id, s->peer,
               s->client_name, why);
    gf_wk_host_release(s);
    pthread_mutex_lock(&s->qlk);
    pthread_cond_broadcast(&s->qcv);
    pthread_cond_broadcast(&s->outcv);
    pthread_mutex_unlock(&s->qlk);
    if (!s->thr_started) atomic_store(&s->finished, 1);
    gf_wk_wake(w);
}

static void session_free(gf_wk_worker *w, gf_wk_session *s)
{
    gf_wk_session **pp = &w->sessions;
    while (*pp && *pp != s) pp = &(*pp)->next;
    if (*pp) *pp = s->next;
    w->nsessions--;
    if (s->thr_started) pthread_join(s->thr, NULL);
    gf_wire_close(s->c);
    pthread_mutex_destroy(&s->io);
    pthread_mutex_destroy(&s->qlk);
    pthread_cond_destroy(&s->qcv);
    pthread_cond_destroy(&s->outcv);
    while (s->head) {
        gf_wk_msg *m = s->head;
        s->head = m->next;
        free(m->payload);
        free(m);
    }
    free(s);
}

static void enqueue(gf_wk_session *s, gf_wk_msg *m)
{
    pthread_mutex_lock(&s->qlk);
    if (s->tail) s->tail->next = m;
    else s->head = m;
    s->tail = m;
    atomic_fetch_add(&s->qbytes, m->hdr.payload_len);
    atomic_fetch_add_explicit(&s->qcount, 1, memory_order_release);
    pthread_cond_signal(&s->qcv);
    pthread_mutex_unlock(&s->qlk);
}

/* What the thread needs before it runs. */
static int start_thread_prepare(gf_wk_session *s)
{
    s->thread_io = 0;
    atomic_store(&s->busy_since_ns, UINT64_MAX);
    return 0;
}

static int start_thread(gf_wk_session *s)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->thr, NULL, gf_wk_session_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0) s->thr_started = 1;
    return rc;
}

/* The first frame: HELLO. Under s->io. Returns 0 to go on, -1 to close. */
static int handshake(gf_wk_worker *w, gf_wk_session *s, const gf_wire_frame *f)
{
    char err[512], reason[512] = "";
    gf_wire_hello h;
    if (f->hdr.kind != GF_WIRE_K_HELLO) {
        gf_log(GF_LOG_WARN, GF_WK_LOG, "%s: first frame is kind 0x%x, not HELLO; closing",
               s->peer, (unsigned)f->hdr.kind);
        return -1;
    }
    if (gf_wire_hello_decode(f, &h, err, sizeof err) != GF_OK) {
        gf_log(GF_LOG_WARN, GF_WK_LOG, "%s: bad HELLO: %s; closing", s->peer, err);
        return -1;
    }
    snprintf(s->client_name, sizeof s->client_name, "%s", h.client_name);
    gf_status st = gf_wk_check_client(&w->opts, &h, reason, sizeof reason);
    if (st == GF_OK && w->refuse != GF_OK) {
        snprintf(reason, sizeof reason, "%s", w->refuse_reason);
        st = w->refuse;
    }
    if (st == GF_OK) st = gf_wk_session_setup(s, &h, reason, sizeof reason);
    if (st == GF_OK && start_thread_prepare(s) != 0) {
        snprintf(reason, sizeof reason, "the worker is out of memory");
        st = GF_ENOMEM;
    }
    gf_status a = gf_wire_server_answer(s->c, f->hdr.request_id, &h, s->id, GF_WORKER_VERSION, st,
                                        reason, 0, err, sizeof err);
    if (st != GF_OK) {
        gf_log(GF_LOG_WARN, GF_WK_LOG, "refused session from %s (%s): %s", s->peer,
               h.client_name, reason);
        gf_wire_flush(s->c, 200, NULL, 0);
        return -1;
    }
    if (a != GF_OK) {
        gf_log(GF_LOG_WARN, GF_WK_LOG, "%s: cannot answer HELLO: %s", s->peer, err);
        return -1;
    }
    if (start_thread(s) != 0) {
        gf_log(GF_LOG_ERROR, GF_WK_LOG, "%s: cannot start a session thread", s->peer);
        return -1;
    }
    s->handshaken = 1;
    s->thread_io = 1; /* the thread takes over the conn (it waits for s->io first) */
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, gf_wire_conn_fd(s->c), NULL);
    s->registered_events = -1;
    gf_log(GF_LOG_INFO, GF_WK_LOG,
           "session %" PRIu64 " from %s (%s): %d GPU(s), VRAM limit %" PRIu64 " bytes, compute %g",
           s->id, s->peer, s->client_name, s->ndev, h.vram_bytes, s->compute_frac);
    return 0;
}

/* One frame of an established session. Under s->io. Returns -1 to close. */
static int intake(gf_wk_session *s, const gf_wire_frame *f)
{
    uint32_t k = f->hdr.kind;
    if (k == GF_WIRE_K_PING) {
        return gf_wire_send(s->c, GF_WIRE_K_PONG, GF_WIRE_F_REPLY, f->hdr.request_id, f->payload,
                            f->hdr.payload_len, 0, NULL, 0) == GF_OK ? 0 : -1;
    }
    if (k == GF_WIRE_K_GOODBYE || k == GF_WIRE_K_ERROR) return -1;
    if (k == GF_RPC_HOST_FUNC_DONE) { /* now: the session's thread may wait for it */
        gf_wk_host_done(s, f);
        return 0;
    }
    if (k == GF_WIRE_K_BULK || (k >= GF_WIRE_K_CUDA_FIRST && k <= GF_WIRE_K_CUDA_LAST) ||
        (k >= GF_WIRE_K_NVML_FIRST && k <= GF_WIRE_K_NVML_LAST)) {
        gf_wk_msg *m = calloc(1, sizeof *m);
        if (!m) return -1;
        m->hdr = f->hdr;
        if (f->hdr.payload_len) {
            m->payload = malloc(f->hdr.payload_len);
            if (!m->payload) {
                free(m);
                return -1;
            }
            memcpy(m->payload, f->payload, f->hdr.payload_len);
        }
        enqueue(s, m);
        return 0;
    }
    if (f->hdr.flags & (GF_WIRE_F_NOREPLY | GF_WIRE_F_REPLY)) return 0;
    uint8_t buf[256];
    gf_wire_writer wr;
    gf_wire_writer_init_fixed(&wr, buf, sizeof buf);
    gf_wire_error_encode(&wr, GF_ENOTSUP, "this worker does not serve this kind of call");
    return gf_wire_send(s->c, k, GF_WIRE_F_REPLY | GF_WIRE_F_ERROR, f->hdr.request_id, wr.buf,
                        wr.len, 0, NULL, 0) == GF_OK ? 0 : -1;
}

/* Reads what s has (up to a budget) and flushes its output. */
static void service(gf_wk_worker *w, gf_wk_session *s)
{
    if (atomic_load(&s->closing)) return;
    char err[512] = "";
    const char *why = NULL;
    pthread_mutex_lock(&s->io);
    if (!loop_owns(s)) {
        pthread_mutex_unlock(&s->io);
        return;
    }
    for (int n = 0; n < RECV_BUDGET && !atomic_load(&s->throttled) && loop_owns(s); n++) {
        gf_wire_frame f;
        gf_status st = gf_wire_recv(s->c, &f, 0, err, sizeof err);
        if (st == GF_EBUSY) break;
        if (st != GF_OK) {
            why = st == GF_ECLOSED ? "client disconnected" : err;
            break;
        }
        int was = s->handshaken;
        int rc = was ? intake(s, &f) : handshake(w, s, &f);
        if (rc != 0) {
            why = was ? "closed" : "handshake failed";
            break;
        }
        if (!was) break; /* the session's thread reads what follows the HELLO */
        if (atomic_load(&s->qbytes) > THROTTLE_BYTES) atomic_store(&s->throttled, 1);
    }
    if (!why && loop_owns(s)) gf_wk_host_send_ready(s);
    if (!why) {
        gf_status st = gf_wire_flush(s->c, 0, err, sizeof err);
        if (st != GF_OK && st != GF_EBUSY) why = err;
    }
    if (!why) update_events_locked(w, s);
    pthread_mutex_unlock(&s->io);
    if (why) begin_close(w, s, why);
}

/* The session of conn c, in the loop's list and epoll set. NULL when memory is short. */
static gf_wk_session *session_new(gf_wk_worker *w, gf_wire_conn *c, uint64_t id)
{
    gf_wk_session *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->w = w;
    s->c = c;
    s->id = id;
    snprintf(s->peer, sizeof s->peer, "%s", gf_wire_conn_peer(c));
    pthread_mutex_init(&s->io, NULL);
    pthread_mutex_init(&s->qlk, NULL);
    pthread_cond_init(&s->qcv, NULL);
    pthread_cond_init(&s->outcv, NULL);
    s->next = w->sessions;
    w->sessions = s;
    w->nsessions++;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, gf_wire_conn_fd(c), &ev);
    s->registered_events = EPOLLIN;
    return s;
}

/* Reaps finished sessions, closes those whose thread gave up, refreshes the others' events. */
static void housekeeping(gf_wk_worker *w)
{
    gf_wk_session *s = w->sessions;
    while (s) {
        gf_wk_session *next = s->next;
        if (atomic_load(&s->finished)) {
            session_free(w, s);
        } else if (atomic_load(&s->closing)) {
            begin_close(w, s, NULL);
        } else {
            if (atomic_load(&s->throttled) && atomic_load(&s->qbytes) < THROTTLE_BYTES / 4) {
                atomic_store(&s->throttled, 0);
                service(w, s);
            }
            if (!atomic_load(&s->closing)) {
                gf_status st = GF_OK;
                pthread_mutex_lock(&s->io);
                if (loop_owns(s)) {
                    gf_wk_host_send_ready(s);
                    st = gf_wire_flush(s->c, 0, NULL, 0);
                    if (st == GF_OK || st == GF_EBUSY) update_events_locked(w, s);
                }
                pthread_mutex_unlock(&s->io);
                if (st != GF_OK && st != GF_EBUSY) begin_close(w, s, "connection lost");
            }
        }
        s = next;
    }
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sessions whose thread has been in one driver call for LONG_CALL_MS: the loop watches their
 * conn until the thread takes it back (io_enter in session.c). */
static void watch_long_calls(gf_wk_worker *w)
{
    uint64_t now = mono_ns();
    for (gf_wk_session *s = w->sessions; s; s = s->next) {
        if (!s->handshaken || atomic_load(&s->closing)) continue;
        uint64_t since = atomic_load(&s->busy_since_ns);
        /* A host function that is due cannot wait for the call to count as long: its driver
         * thread holds a stream the call may be waiting for. */
        int due = atomic_load(&s->hf_ready) > 0;
        if (since == UINT64_MAX || now < since ||
            (now - since < LONG_CALL_MS * 1000000ull && !due))
            continue;
        pthread_mutex_lock(&s->io);
        if (!s->thread_io && s->registered_events < 0 && s->c) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
            if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, gf_wire_conn_fd(s->c), &ev) == 0)
                s->registered_events = EPOLLIN;
        }
        if (loop_owns(s)) gf_wk_host_send_ready(s);
        pthread_mutex_unlock(&s->io);
    }
}

/* 1 when the loop owns s's conn and it holds bytes its fd cannot announce. */
static int loop_buffered(gf_wk_session *s)
{
    if (atomic_load(&s->closing) || atomic_load(&s->throttled) || !s->c) return 0;
    if (pthread_mutex_trylock(&s->io) != 0) return 0;
    int b = loop_owns(s) && gf_wire_conn_has_buffered(s->c);
    pthread_mutex_unlock(&s->io);
    return b;
}

int gf_wk_session_process(gf_wk_worker *w, gf_wire_conn *c, uint64_t id)
{
    int status = w->refuse == GF_EIO ? 1 : 0;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    gf_wk_session *s = NULL;
    if (w->epfd < 0 || w->wakefd < 0 || !(s = session_new(w, c, id))) {
        gf_log(GF_LOG_ERROR, GF_WK_LOG, "session %" PRIu64 " (%s): cannot set up its event "
               "loop: %s", id, gf_wire_conn_peer(c), strerror(errno ? errno : ENOMEM));
        gf_wire_close(c);
        status = 1;
        goto out;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev);
    the_worker = w;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t mine;
    sigemptyset(&mine);
    sigaddset(&mine, SIGINT);
    sigaddset(&mine, SIGTERM);
    sigaddset(&mine, SIGCHLD);
    pthread_sigmask(SIG_UNBLOCK, &mine, NULL); /* blocked by the supervisor around fork */
    service(w, s); /* TLS and shm may already hold bytes */

    struct epoll_event evs[8];
    while (!w->stop && w->sessions) {
        int timeout = TICK_MS;
        for (gf_wk_session *t = w->sessions; t; t = t->next)
            if (loop_buffered(t)) timeout = 0;
        int k = epoll_wait(w->epfd, evs, 8, timeout);
        if (k < 0 && errno != EINTR) break;
        int wake = 0;
        for (int i = 0; i < k; i++) {
            void *p = evs[i].data.ptr;
            if (!p) {
                uint64_t v;
                ssize_t r = read(w->wakefd, &v, sizeof v);
                (void)r;
                wake = 1;
                continue;
            }
            service(w, p);
        }
        /* Bytes a conn holds that its fd cannot announce (docs/wire.md's event-loop rule). */
        for (gf_wk_session *t = w->sessions; t; t = t->next)
            if (loop_buffered(t)) service(w, t);
        if (wake) housekeeping(w);
        watch_long_calls(w);
    }
    if (w->sessions && w->stop)
        gf_log(GF_LOG_INFO, GF_WK_LOG, "session %" PRIu64 ": the worker stops; closing it", id);
    for (gf_wk_session *t = w->sessions; t; t = t->next) begin_close(w, t, NULL);
    while (w->sessions) session_free(w, w->sessions);
out:
    if (w->epfd >= 0) close(w->epfd);
    if (w->wakefd >= 0) close(w->wakefd);
    w->epfd = w->wakefd = -1;
    the_worker = NULL;
    return status;
}
