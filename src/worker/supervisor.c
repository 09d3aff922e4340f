/* SPDX-License-Identifier: Apache-2.0 */
/* The worker's first process, the supervisor: it listens, accepts, and forks one session
 * process per connection, which loads the driver and serves that one client (loop.c,
 * session.c). On NVIDIA's driver a kernel fault poisons the whole process that made it: every
 * later call that needs the device fails in every context and no context can be made again
 * ("the process must be terminated and relaunched", cuda.h; seen on an H200). With a process per
 * session a tenant's fault, or a crash inside the driver, ends only that tenant's session. The
 * supervisor itself never loads the driver (CUDA does not survive fork): the GPU count it checks
 * --gpu against comes from a short-lived child. It stays single-threaded, so fork is safe. */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STOP_NOTE_MS 5000 /* while stopping: how often the supervisor says whom it waits for */

/* A session process. */
typedef struct kid {
    pid_t pid;
    uint64_t id;
    int counted; /* counts against --max-sessions (not a process that only refuses) */
    char peer[300];
} kid;

typedef struct supervisor {
    gf_wk_worker w; /* what every session process starts from (opts, GPUs, driver path) */
    gf_wire_listener *ls[8];
    int nls;
    int epfd;
    int sigfd; /* SIGTERM, SIGINT, SIGCHLD (blocked, read here) */
    kid *kids;
    size_t nkids, cap;
    unsigned live; /* counted kids */
    uint64_t next_id;
    int stop;   /* SIGTERM/SIGINT received (a second one while stopping: SIGKILL the rest) */
    int failed; /* a session process exited with a non-zero status */
    int in_child; /* this is a session process now: gf_wk_run returns its status */
    int child_status;
} supervisor;

/* ---- the GPU count, from a child that loads the driver ------------------------------------- */

struct probe_msg {
    int loaded;
    int count;
    char path[512];
    char err[1024];
};

/* Forks a child that loads the driver, reports the GPU count and the driver's path, and exits
 * without unloading anything: the supervisor itself never initializes CUDA. 0, or -1 with the
 * reason in err (the same message a failed load gives). */
static int probe_driver(gf_wk_worker *w, int *count, char *err, size_t errlen)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        static struct probe_msg m;
        if (gf_wk_driver_load(m.path, sizeof m.path, m.err, sizeof m.err) == GF_OK) {
            m.loaded = 1;
            if (gf_wk_drv.cuDeviceGetCount(&m.count) != CUDA_SUCCESS) m.count = 0;
        }
        const char *p = (const char *)&m;
        size_t left = sizeof m;
        while (left) {
            ssize_t n = write(fds[1], p, left);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            p += n;
            left -= (size_t)n;
        }
        _exit(0); /* no exit handlers: nothing of the driver is torn down here */
    }
    close(fds[1]);
    struct probe_msg m;
    size_t got = 0;
    while (got < sizeof m) {
        ssize_t n = read(fds[0], (char *)&m + got, sizeof m - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (got != sizeof m) {
        if (WIFSIGNALED(st))
            snprintf(err, errlen, "loading the driver killed the process that tried (signal %d, "
                                  "%s); check GPUFUSE_DRIVER and the GPU's driver",
                     WTERMSIG(st), strsignal(WTERMSIG(st)));
        else
            snprintf(err, errlen, "the process that loads the driver exited (status %d) before "
                                  "it reported; check GPUFUSE_DRIVER and the GPU's driver",
                     WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return -1;
    }
    m.err[sizeof m.err - 1] = 0;
    m.path[sizeof m.path - 1] = 0;
    snprintf(w->driver_path, sizeof w->driver_path, "%s", m.path);
    if (!m.loaded) {
        snprintf(err, errlen, "%s", m.err);
        return -1;
    }
    *count = m.count;
    return 0;
}

/* ---- session processes -------------------------------------------------------------------- */

static void kid_remove(supervisor *sv, size_t i)
{
    if (sv->kids[i].counted) sv->live--;
    sv->kids[i] = sv->kids[--sv->nkids];
}

/* Reaps every session process that ended; says how each ended when it was not cleanly. */
static void reap(supervisor *sv)
{
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid < 0 && errno == EINTR) continue;
        if (pid <= 0) return;
        size_t i = 0;
        while (i < sv->nkids && sv->kids[i].pid != pid) i++;
        if (i == sv->nkids) continue; /* not a session process (inherited across exec) */
        kid *k = &sv->kids[i];
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            gf_log(GF_LOG_DEBUG, GF_WK_LOG, "session %" PRIu64 " (%s): its process %d ended",
                   k->id, k->peer, (int)pid);
        } else {
            if (WIFEXITED(st)) {
                gf_log(GF_LOG_ERROR, GF_WK_LOG,
                       "session %" PRIu64 " (%s): its process %d exited with status %d (its "
                       "messages are above); the other sessions go on",
                       k->id, k->peer, (int)pid, WEXITSTATUS(st));
                sv->failed = 1;
            } else {
                gf_log(GF_LOG_WARN, GF_WK_LOG,
                       "session %" PRIu64 " (%s): its process %d was killed by signal %d (%s); "
                       "the session ended with it, its GPU memory went with the process, the "
                       "other sessions go on",
                       k->id, k->peer, (int)pid, WTERMSIG(st), strsignal(WTERMSIG(st)));
            }
            /* A process that died could not remove its vGPU's private limiter region. */
            char name[GF_LIMITER_NAME_MAX];
            gf_wk_lim_name(name, sizeof name, (long)pid, k->id);
            gf_limiter_unlink(name);
        }
        kid_remove(sv, i);
    }
}

/* In the new session process: drops what belongs to the supervisor, loads the driver, serves
 * the connection. Returns the process's exit status. */
static int session_child(supervisor *sv, gf_wire_conn *c, uint64_t id, int refuse,
                         pid_t supervisor_pid)
{
    /* A supervisor that dies (even by SIGKILL) takes its sessions with it: they close in
     * order (SIGTERM), freeing what they hold. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    char comm[16];
    snprintf(comm, sizeof comm, "gpufuse-s%" PRIu64, id);
    prctl(PR_SET_NAME, comm); /* what ps -o comm / top show for this process */
    for (int i = 0; i < sv->nls; i++) gf_wire_listener_release_after_fork(sv->ls[i]);
    sv->nls = 0;
    close(sv->epfd);
    close(sv->sigfd);
    free(sv->kids);
    sv->kids = NULL;
    sv->nkids = sv->cap = 0;
    signal(SIGCHLD, SIG_DFL);
    gf_wk_worker *w = &sv->w;
    if (getppid() != supervisor_pid) w->stop = 1; /* it died before PDEATHSIG was set */
    if (refuse) {
        w->refuse = GF_ENOSPC;
        snprintf(w->refuse_reason, sizeof w->refuse_reason,
                 "the worker serves at most %d sessions; try later or another worker",
                 w->opts.max_sessions);
    } else {
        char err[1024];
        char path[512];
        if (gf_wk_driver_load(path, sizeof path, err, sizeof err) != GF_OK) {
            gf_log(GF_LOG_ERROR, GF_WK_LOG, "session %" PRIu64 " (%s): cannot load the driver: %s",
                   id, gf_wire_conn_peer(c), err);
            w->refuse = GF_EIO;
            snprintf(w->refuse_reason, sizeof w->refuse_reason,
                     "the worker cannot use its GPU driver: %.300s", err);
        }
    }
    return gf_wk_session_process(w, c, id);
}

/* Forks the session process of c. In the parent c is released (never closed: that would
 * talk to the peer) and the process recorded; in the child this returns 1 (sv->in_child). */
static int spawn_session(supervisor *sv, gf_wire_conn *c)
{
    if (sv->nkids == sv->cap) {
        size_t nc = sv->cap ? sv->cap * 2 : 16;
        kid *n = realloc(sv->kids, nc * sizeof *n);
        if (!n) {
            gf_log(GF_LOG_ERROR, GF_WK_LOG, "%s: out of memory; closing the connection",
                   gf_wire_conn_peer(c));
            gf_wire_close(c);
            return 0;
        }
        sv->kids = n;
        sv->cap = nc;
    }
    uint64_t id = ++sv->next_id;
    int refuse = sv->w.opts.max_sessions && sv->live >= (unsigned)sv->w.opts.max_sessions;
    pid_t me = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        gf_log(GF_LOG_ERROR, GF_WK_LOG, "session %" PRIu64 " (%s): cannot fork its process: %s; "
               "closing the connection", id, gf_wire_conn_peer(c), strerror(errno));
        gf_wire_close(c);
        return 0;
    }
    if (pid == 0) {
        sv->in_child = 1;
        sv->child_status = session_child(sv, c, id, refuse, me);
        return 1;
    }
    kid *k = &sv->kids[sv->nkids++];
    k->pid = pid;
    k->id = id;
    k->counted = !refuse;
    snprintf(k->peer, sizeof k->peer, "%s", gf_wire_conn_peer(c));
    sv->live += (unsigned)k->counted;
    gf_log(GF_LOG_INFO, GF_WK_LOG, "session %" PRIu64 " from %s: process %d%s", id, k->peer,
           (int)pid, refuse ? " (to refuse it: --max-sessions reached)" : "");
    gf_wire_conn_release_after_fork(c);
    return 0;
}

/* Accepts every pending connection of l; 1 when this is now a session process. */
static int accept_all(supervisor *sv, gf_wire_listener *l)
{
    for (;;) {
        gf_wire_conn *c = NULL;
        char err[512];
        gf_status st = gf_wire_accept(l, &c, err, sizeof err);
        if (st == GF_EBUSY) return 0;
        if (st != GF_OK) {
            gf_log(GF_LOG_WARN, GF_WK_LOG, "accept: %s", err);
            return 0;
        }
        if (spawn_session(sv, c)) return 1;
    }
}

/* Reads the signals that arrived: SIGCHLD reaps, SIGTERM/SIGINT stop. */
static void read_signals(supervisor *sv)
{
    struct signalfd_siginfo si;
    while (read(sv->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) sv->stop++;
    }
    reap(sv);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* SIGTERM to every session process, then waits for all of them; a second SIGTERM/SIGINT
 * SIGKILLs those still running (a call that never returns). */
static void stop_sessions(supervisor *sv)
{
    gf_log(GF_LOG_INFO, GF_WK_LOG, "stopping: ending %zu session process(es)", sv->nkids);
    for (size_t i = 0; i < sv->nkids; i++) kill(sv->kids[i].pid, SIGTERM);
    int killed = 0;
    uint64_t note = mono_ms() + STOP_NOTE_MS;
    reap(sv);
    while (sv->nkids) {
        struct pollfd p = {.fd = sv->sigfd, .events = POLLIN};
        if (poll(&p, 1, 1000) < 0 && errno != EINTR) break;
        read_signals(sv);
        if (sv->stop > 1 && !killed) {
            gf_log(GF_LOG_WARN, GF_WK_LOG, "asked again to stop: killing %zu session "
                   "process(es)", sv->nkids);
            for (size_t i = 0; i < sv->nkids; i++) kill(sv->kids[i].pid, SIGKILL);
            killed = 1;
        }
        if (sv->nkids && mono_ms() >= note) {
            note = mono_ms() + STOP_NOTE_MS;
            for (size_t i = 0; i < sv->nkids; i++)
                gf_log(GF_LOG_WARN, GF_WK_LOG, "stopping: waiting for session %" PRIu64
                       " (%s, process %d) to finish its call; SIGTERM again kills it",
                       sv->kids[i].id, sv->kids[i].peer, (int)sv->kids[i].pid);
        }
    }
}

static int write_ready_file(supervisor *sv)
{
    if (!sv->w.opts.ready_file) return 0;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", sv->w.opts.ready_file);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    for (int i = 0; i < sv->nls; i++) {
        char a[512];
        gf_wire_listener_addr(sv->ls[i], a, sizeof a);
        fprintf(f, "%s\n", a);
    }
    fclose(f);
    return rename(tmp, sv->w.opts.ready_file);
}

/* The GPUs served: --gpu's, checked against the driver's count, else all of them. */
static int pick_gpus(supervisor *sv, int n)
{
    gf_wk_worker *w = &sv->w;
    const gf_wk_opts *o = &w->opts;
    if (o->ngpus) {
        for (int i = 0; i < o->ngpus; i++) {
            if (o->gpus[i] < 0 || o->gpus[i] >= n) {
                fprintf(stderr, "gpufuse worker: --gpu %d: the driver (%s) has %d GPU(s), "
                                "0 to %d\n", o->gpus[i], w->driver_path, n, n - 1);
                return 2;
            }
            w->real_devs[w->nreal++] = o->gpus[i];
        }
    } else {
        for (int i = 0; i < n && i < GF_WK_MAX_DEVS; i++) w->real_devs[w->nreal++] = i;
    }
    if (!w->nreal) {
        fprintf(stderr, "gpufuse worker: the driver (%s) reports no GPU\n", w->driver_path);
        return 1;
    }
    return 0;
}

static int start_listening(supervisor *sv)
{
    const gf_wk_opts *o = &sv->w.opts;
    char err[1024];
    gf_wire_opts wo;
    gf_wire_opts_init(&wo);
    wo.tls_cert_file = o->tls_cert;
    wo.tls_key_file = o->tls_key;
    for (int i = 0; i < o->nlisten; i++) {
        if (gf_wire_listen(o->listen[i], &wo, &sv->ls[sv->nls], err, sizeof err) != GF_OK) {
            fprintf(stderr, "gpufuse worker: --listen %s: %s\n", o->listen[i], err);
            return 1;
        }
        sv->nls++;
    }
    return 0;
}

int gf_wk_run(const gf_wk_opts *o)
{
    static supervisor sv;
    memset(&sv, 0, sizeof sv);
    sv.w.opts = *o;
    sv.epfd = sv.sigfd = -1;
    char err[1024];
    int n = 0, rc;
    if (probe_driver(&sv.w, &n, err, sizeof err) != 0) {
        fprintf(stderr, "gpufuse worker: %s\n", err);
        return 1;
    }
    if ((rc = pick_gpus(&sv, n)) != 0) return rc;
    /* The signals are read from a signalfd in the loop; session processes inherit them
     * blocked and unblock them once their own handlers are in place. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    rc = 1;
    if (start_listening(&sv) != 0) goto out;
    sv.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    sv.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (sv.sigfd < 0 || sv.epfd < 0) {
        fprintf(stderr, "gpufuse worker: signalfd/epoll: %s\n", strerror(errno));
        goto out;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(sv.epfd, EPOLL_CTL_ADD, sv.sigfd, &ev);
    for (int i = 0; i < sv.nls; i++) {
        struct epoll_event le = {.events = EPOLLIN, .data.ptr = sv.ls[i]};
        epoll_ctl(sv.epfd, EPOLL_CTL_ADD, gf_wire_listener_fd(sv.ls[i]), &le);
    }
    for (int i = 0; i < sv.nls; i++) {
        char a[512];
        gf_wire_listener_addr(sv.ls[i], a, sizeof a);
        gf_log(GF_LOG_INFO, GF_WK_LOG, "listening on %s (driver %s, %d GPU(s); a process per "
               "session)", a, sv.w.driver_path, sv.w.nreal);
    }
    if (write_ready_file(&sv) != 0)
        fprintf(stderr, "gpufuse worker: cannot write %s: %s\n", o->ready_file, strerror(errno));

    struct epoll_event evs[16];
    while (!sv.stop) {
        int k = epoll_wait(sv.epfd, evs, 16, -1);
        if (k < 0 && errno != EINTR) {
            gf_log(GF_LOG_ERROR, GF_WK_LOG, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < k && !sv.stop; i++) {
            if (!evs[i].data.ptr) {
                read_signals(&sv);
                continue;
            }
            if (accept_all(&sv, evs[i].data.ptr)) return sv.child_status; /* a session process */
        }
    }
    /* New clients are refused from now on; those in session finish in their processes. */
    for (int i = 0; i < sv.nls; i++) gf_wire_listener_close(sv.ls[i]);
    sv.nls = 0;
    stop_sessions(&sv);
    rc = sv.failed;
    if (sv.failed)
        gf_log(GF_LOG_ERROR, GF_WK_LOG, "stopped; a session process failed (see above): exit "
               "status 1");
out:
    for (int i = 0; i < sv.nls; i++) gf_wire_listener_close(sv.ls[i]);
    if (sv.epfd >= 0) close(sv.epfd);
    if (sv.sigfd >= 0) close(sv.sigfd);
    free(sv.kids);
    /* The signals stay blocked: one that came late is not delivered with its default action
     * (death) on the way out. */
    return rc;
}
