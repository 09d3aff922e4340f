/* SPDX-License-Identifier: Apache-2.0 */
/* Mirrors: memory that both the program (through host pointers) and kernels on the remote GPU
 * use — managed memory, and pinned host memory mapped for the device. The worker holds the
 * device's copy; the program's pages here are kept coherent with it at the points CUDA's
 * memory model makes visible: host writes reach the worker before the next call that puts work
 * on the device, and the device's writes reach the host after a synchronizing call.
 *
 * Page protection tracks what the program touches, so only touched pages travel:
 *   DIRTY    read-write: the host wrote it since the worker's copy was current;
 *   CLEAN    read-only: same bytes on both sides; a write faults and makes it DIRTY;
 *   INVALID  no access (managed only): the device may have written it; the first access faults
 *            and fetches it (FETCHING while the bytes are on their way).
 * Managed pages are a memfd mapped twice: at the worker's own address for the program (the
 * same pointer works on both sides, as with unified memory) and once more for this library, so
 * a fetch fills a page without opening it to the program half-written. Pinned host memory and
 * registered memory are the program's own pages; their device copy is made when a device
 * pointer is first asked for (or at once for DEVICEMAP), and is fetched whole after each
 * synchronizing call. A page that registered memory shares with other data (its first and last,
 * usually) is never protected — a system call writing the other data there would get EFAULT —
 * so it is STICKY: sent before the first call that puts work on the device after each
 * synchronization.
 *
 * Locks: the connection's lock before mir_lk. No code holding mir_lk allocates or touches a
 * protected page (the table lives in pages of its own, mmap'ed), so the fault handler, which
 * takes mir_lk (and the connection's lock only to fetch), never waits on its own thread.
 * docs/remote.md, "Managed and mapped host memory". */
#include "remote.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { PG_INVALID, PG_CLEAN, PG_DIRTY, PG_FETCHING, PG_STICKY };

typedef struct gf_mirror {
    uint64_t base, size;  /* the program's bytes */
    uint64_t dev;         /* their address on the worker (0: no device copy yet) */
    uint64_t pbase, plen; /* the pages they lie in */
    uint8_t *view;        /* managed: this library's mapping of the same pages */
    uint8_t *state;       /* PG_* per page */
    uint64_t ctx, module;
    unsigned kind, flags;
    size_t dirty;         /* pages PG_DIRTY */
} gf_mirror;

#define FETCH_PAGES 64u /* a fault fetches up to this many invalid pages at once */
#define DIRTY_PAGES 16u /* a write fault opens the aligned block of this many clean pages */
#define MAX_MIRRORS 65536u

static pthread_mutex_t mir_lk = PTHREAD_MUTEX_INITIALIZER;
static gf_mirror **mirs;
static size_t nmirs, capmirs;
static uint64_t pg;
static atomic_size_t dirty_pages;
static atomic_size_t sticky_mirrors; /* armed registered mirrors with sticky pages */
/* Under the connection's lock: sticky pages were fetched (a synchronization) and the host may
 * have written them since; sent once, before the next device work. Not before each: a kernel
 * queued earlier may be writing them on the worker. */
static int sticky_due;
static int dev_pending; /* under the connection's lock: device work since the last full sync */
int gf_mirror_sync_due;
_Thread_local int gf_mirror_busy;
_Thread_local int gf_remote_tl_locked;
static _Thread_local int tl_mir_held;
static struct sigaction old_segv;

/* The table's memory: pages of its own, never a heap page a mirror may protect. */
static void *meta_alloc(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void meta_free(void *p, size_t n)
{
    if (p) munmap(p, n);
}
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;

static void mir_lock(void)
{
    pthread_mutex_lock(&mir_lk);
    tl_mir_held = 1;
}

static void mir_unlock(void)
{
    tl_mir_held = 0;
    pthread_mutex_unlock(&mir_lk);
}

static size_t npages(const gf_mirror *m)
{
    return (size_t)(m->plen / pg);
}

static int prot_of(int st)
{
    return st == PG_INVALID || st == PG_FETCHING ? PROT_NONE
           : st == PG_CLEAN                      ? PROT_READ
                                                 : PROT_READ | PROT_WRITE;
}

/* The table is sorted by base. The programs' bytes never overlap, so the page ranges' starts and
 * ends both grow with the index, and the mirrors with pages in [a, b) are one run of indexes:
 * *lo..*hi-1 (empty: *lo == *hi). mir_lk held. */
static void run_of(uint64_t a, uint64_t b, size_t *lo, size_t *hi)
{
    size_t l = 0, h = nmirs;
    while (l < h) { /* first with pbase >= b */
        size_t mid = (l + h) / 2;
        if (mirs[mid]->pbase < b) l = mid + 1;
        else h = mid;
    }
    *hi = l;
    while (l > 0 && mirs[l - 1]->pbase + mirs[l - 1]->plen > a) l--;
    *lo = l;
}

/* Pages [a, b) (addresses) to state st in every mirror that has them, and their protection;
 * sticky pages (a registered mirror's first or last) stay as they are. mir_lk held. */
static void pages_set(uint64_t a, uint64_t b, int st)
{
    size_t lo, hi;
    run_of(a, b, &lo, &hi);
    for (size_t i = lo; i < hi; i++) {
        gf_mirror *m = mirs[i];
        uint64_t l = a > m->pbase ? a : m->pbase, h = b < m->pbase + m->plen ? b : m->pbase + m->plen;
        for (uint64_t p = l; p < h; p += pg) {
            uint8_t *s = &m->state[(p - m->pbase) / pg];
            if (*s == PG_STICKY) continue;
            if (*s == PG_DIRTY && st != PG_DIRTY) {
                m->dirty--;
                atomic_fetch_sub(&dirty_pages, 1);
            } else if (*s != PG_DIRTY && st == PG_DIRTY) {
                m->dirty++;
                atomic_fetch_add(&dirty_pages, 1);
            }
            *s = (uint8_t)st;
        }
    }
    /* One mprotect per run between sticky pages (in address order, as the table is). */
    uint64_t run = a;
    for (size_t i = lo; i < hi; i++) {
        gf_mirror *m = mirs[i];
        size_t last = npages(m) - 1;
        uint64_t sp[2] = {m->state[0] == PG_STICKY ? m->pbase : 0,
                          last && m->state[last] == PG_STICKY ? m->pbase + last * pg : 0};
        for (int k = 0; k < 2; k++) {
            if (!sp[k] || sp[k] < run || sp[k] >= b) continue;
            if (sp[k] > run) mprotect((void *)(uintptr_t)run, sp[k] - run, prot_of(st));
            run = sp[k] + pg;
        }
    }
    if (b > run) mprotect((void *)(uintptr_t)run, b - run, prot_of(st));
}

/* The mirror whose pages hold address a (the first, for a page registered ranges share). */
static gf_mirror *find_page(uint64_t a)
{
    size_t lo, hi;
    run_of(a, a + 1, &lo, &hi);
    return lo < hi ? mirs[lo] : NULL;
}

/* The mirror holding byte p; *straddles when [p, p + n) runs over a mirror's edge. */
/* The index of the first mirror whose base is above p. mir_lk held. */
static size_t above(uint64_t p)
{
    size_t l = 0, h = nmirs;
    while (l < h) {
        size_t mid = (l + h) / 2;
        if (mirs[mid]->base <= p) l = mid + 1;
        else h = mid;
    }
    return l;
}

static gf_mirror *find_bytes(uint64_t p, uint64_t n, int *straddles)
{
    *straddles = 0;
    size_t l = above(p);
    gf_mirror *m = l ? mirs[l - 1] : NULL;
    if (m && p - m->base < m->size) {
        if (n > m->size - (p - m->base)) *straddles = 1;
        return m;
    }
    if (n && l < nmirs && p + n > mirs[l]->base) *straddles = 1;
    return NULL;
}

/* ---- talking to the worker (the connection's lock held) ------------------------------------- */

/* Queues the bytes at src as the worker's copy of [dev, dev + n). */
static CUresult send_bytes(uint64_t dev, const uint8_t *src, uint64_t n)
{
    while (n) {
        uint64_t k = n < GF_RPC_MIRROR_CHUNK ? n : GF_RPC_MIRROR_CHUNK;
        gf_rreq q;
        gf_rreq_init(&q, GF_RPC_MIRROR_WRITE);
        gf_wire_writer w;
        gf_wire_writer_init(&w, 0);
        gf_wire_put_handle(&w, dev);
        gf_wire_put_bytes(&w, src, k);
        q.w = w;
        CUresult r = gf_remote_async(&q);
        gf_wire_writer_free(&w);
        if (r != CUDA_SUCCESS) return r;
        dev += k;
        src += k;
        n -= k;
    }
    return CUDA_SUCCESS;
}

/* Reads the worker's copy of [dev, dev + n) into dst. */
static CUresult recv_bytes(uint64_t dev, uint8_t *dst, uint64_t n)
{
    while (n) {
        uint64_t k = n < GF_RPC_MIRROR_CHUNK ? n : GF_RPC_MIRROR_CHUNK;
        gf_rreq q;
        gf_rreq_init(&q, GF_RPC_MIRROR_READ);
        gf_wire_put_handle(&q.w, dev);
        gf_wire_put_u64(&q.w, k);
        CUresult rc;
        gf_wire_reader rep;
        CUresult t = gf_remote_sync(&q, &rc, &rep, NULL);
        if (t != CUDA_SUCCESS) return t;
        if (rc != CUDA_SUCCESS) return rc;
        if (gf_wire_get_bytes_into(&rep, dst, k) != k) return CUDA_ERROR_UNKNOWN;
        dev += k;
        dst += k;
        n -= k;
    }
    return CUDA_SUCCESS;
}

/* Runs f with the mirror's context current for the worker (its copies need one). */
#define IN_CTX(m, expr)                                                                       \
    do {                                                                                      \
        uint64_t saved_ = gf_remote_tl_ctx;                                                   \
        gf_remote_tl_ctx = (m)->ctx;                                                          \
        r = (expr);                                                                           \
        gf_remote_tl_ctx = saved_;                                                            \
    } while (0)

/* ---- the fault handler ----------------------------------------------------------------------- */

static void say(const char *msg)
{
    ssize_t k = write(2, msg, strlen(msg));
    (void)k;
}

/* Fetches the invalid pages from page index i on (up to FETCH_PAGES) of a managed mirror. The
 * connection's lock held, mir_lk held on entry and exit (dropped while the bytes travel). */
static CUresult fetch_run(gf_mirror *m, size_t i)
{
    size_t j = i, n = npages(m);
    while (j < n && j - i < FETCH_PAGES && m->state[j] == PG_INVALID) j++;
    uint64_t a = m->pbase + i * pg, b = m->pbase + j * pg;
    pages_set(a, b, PG_FETCHING);
    uint64_t lo = a > m->base ? a : m->base, hi = b < m->base + m->size ? b : m->base + m->size;
    mir_unlock();
    CUresult r = CUDA_SUCCESS;
    if (hi > lo) IN_CTX(m, recv_bytes(m->dev + (lo - m->base), m->view + (lo - m->pbase), hi - lo));
    mir_lock();
    pages_set(a, b, r == CUDA_SUCCESS ? PG_CLEAN : PG_INVALID);
    return r;
}

/* 1 when the fault at a was a mirror's page doing its job (the access can be retried). */
static int fault(uint64_t a)
{
    if (tl_mir_held) return 0;
    a &= ~(pg - 1);
    mir_lock();
    gf_mirror *m = find_page(a);
    int st = m ? m->state[(a - m->pbase) / pg] : -1;
    if (st == PG_CLEAN) {
        /* A write: the host's copy is now the newer one. Programs write runs of pages, so the
         * aligned block around it opens at once (one fault instead of 16) when all of it is
         * clean; a block page the program then leaves alone is sent for nothing. */
        uint64_t blk = DIRTY_PAGES * pg, lo = a & ~(blk - 1), hi = lo + blk;
        if (lo < m->pbase) lo = m->pbase;
        if (hi > m->pbase + m->plen) hi = m->pbase + m->plen;
        for (uint64_t p = lo; p < hi; p += pg)
            if (m->state[(p - m->pbase) / pg] != PG_CLEAN) {
                lo = a;
                hi = a + pg;
                break;
            }
        pages_set(lo, hi, PG_DIRTY);
        mir_unlock();
        return 1;
    }
    mir_unlock();
    if (st != PG_INVALID && st != PG_FETCHING) return 0;
    if (gf_remote_tl_locked || gf_mirror_busy) {
        /* Inside a call the connection is busy: a host function (cuLaunchHostFunc, a stream
         * callback) runs there, and the worker may be waiting for it to return. */
        say("gpufuse: managed memory the device wrote since the last synchronization was read "
            "inside a host function (cuLaunchHostFunc or a stream callback), which a remote vGPU "
            "cannot fetch there; read it after a synchronization instead (docs/remote.md)\n");
        return 0;
    }
    if (gf_remote_lock() != CUDA_SUCCESS) {
        say("gpufuse: managed memory cannot be read: the remote GPU is gone\n");
        return 0;
    }
    gf_mirror_busy = 1;
    mir_lock();
    int ok = 1;
    m = find_page(a);
    if (m && m->state[(a - m->pbase) / pg] == PG_INVALID)
        ok = fetch_run(m, (size_t)((a - m->pbase) / pg)) == CUDA_SUCCESS;
    else if (!m)
        ok = 0;
    mir_unlock();
    gf_mirror_busy = 0;
    gf_remote_unlock();
    if (!ok) say("gpufuse: managed memory could not be fetched from the remote GPU\n");
    return ok;
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    int ours = si && pg && fault((uint64_t)(uintptr_t)si->si_addr);
    errno = saved;
    if (ours) return;
    if (old_segv.sa_flags & SA_SIGINFO) {
        if (old_segv.sa_sigaction) old_segv.sa_sigaction(sig, si, uc);
        return;
    }
    if (old_segv.sa_handler == SIG_DFL || old_segv.sa_handler == SIG_IGN) {
        /* Not ours: the access faults again, now with the default action. */
        signal(SIGSEGV, SIG_DFL);
        return;
    }
    old_segv.sa_handler(sig);
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
}

/* ---- the table --------------------------------------------------------------------------------- */

/* Adds m (made by the caller, not yet visible). Allocation happens before mir_lk. */
static int table_add(gf_mirror *m)
{
    pthread_once(&handler_once, install_handler);
    gf_mirror **grown = NULL;
    pthread_mutex_lock(&mir_lk);
    size_t need = nmirs + 1, cap = capmirs, ncap = cap ? cap * 2 : 512;
    pthread_mutex_unlock(&mir_lk);
    if (need > MAX_MIRRORS) return -1;
    if (need > cap && !(grown = meta_alloc(ncap * sizeof *grown))) return -1;
    mir_lock();
    gf_mirror **old = NULL;
    size_t oldcap = capmirs;
    if (grown && need > capmirs && ncap > capmirs) {
        if (nmirs) memcpy(grown, mirs, nmirs * sizeof *grown);
        old = mirs;
        mirs = grown;
        capmirs = ncap;
        grown = NULL;
    }
    int ok = nmirs < capmirs;
    if (ok) {
        size_t at = above(m->base);
        memmove(&mirs[at + 1], &mirs[at], (nmirs - at) * sizeof *mirs);
        mirs[at] = m;
        nmirs++;
    }
    mir_unlock();
    if (old) meta_free(old, oldcap * sizeof *old);
    if (grown) meta_free(grown, ncap * sizeof *grown);
    return ok ? 0 : -1;
}

static gf_mirror *mirror_new(uint64_t base, uint64_t size, unsigned kind)
{
    if (!pg) pg = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t pbase = base & ~(pg - 1), plen = ((base + size + pg - 1) & ~(pg - 1)) - pbase;
    gf_mirror *m = meta_alloc(sizeof *m + plen / pg);
    if (!m) return NULL;
    m->base = base;
    m->size = size;
    m->pbase = pbase;
    m->plen = plen;
    m->kind = kind;
    m->state = (uint8_t *)(m + 1);
    memset(m->state, PG_CLEAN, npages(m)); /* read-write until a device copy exists (arm) */
    if (kind == GF_MIRROR_REGISTERED) {
        if (base != pbase) m->state[0] = PG_STICKY;
        if ((base + size) & (pg - 1)) m->state[npages(m) - 1] = PG_STICKY;
    }
    return m;
}

static void mirror_free(gf_mirror *m)
{
    if (m) meta_free(m, sizeof *m + npages(m));
}

int gf_mirror_map_managed(uint64_t dev, uint64_t size, uint64_t ctx, uint64_t module, int fresh)
{
    gf_mirror *m = mirror_new(dev, size, GF_MIRROR_MANAGED);
    if (!m) return ENOMEM;
    if (m->pbase != dev) { /* a __managed__ variable in the middle of a page */
        mir_lock();
        int shared = find_page(m->pbase) || find_page(m->pbase + m->plen - pg);
        mir_unlock();
        if (shared) {
            mirror_free(m);
            return EEXIST;
        }
    }
    int fd = memfd_create("gpufuse-managed", MFD_CLOEXEC);
    int err = 0;
    void *user = MAP_FAILED, *view = MAP_FAILED;
    if (fd < 0 || ftruncate(fd, (off_t)m->plen) != 0) err = errno;
    if (!err) {
        user = mmap((void *)(uintptr_t)m->pbase, m->plen, fresh ? PROT_READ : PROT_NONE,
                    MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
        if (user == MAP_FAILED) err = errno;
        else if ((uintptr_t)user != m->pbase) err = EEXIST; /* a kernel that took it as a hint */
    }
    if (!err && (view = mmap(NULL, m->plen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
        err = errno;
    if (fd >= 0) close(fd);
    if (!err) {
        m->view = view;
        m->dev = dev;
        m->ctx = ctx;
        m->module = module;
        /* A fresh allocation holds nothing yet: both sides are "the same" until one writes. */
        memset(m->state, fresh ? PG_CLEAN : PG_INVALID, npages(m));
        if (table_add(m) != 0) err = ENOMEM;
    }
    if (err) {
        if (user != MAP_FAILED && (uintptr_t)user == m->pbase) munmap(user, m->plen);
        else if (user != MAP_FAILED) munmap(user, m->plen);
        if (view != MAP_FAILED) munmap(view, m->plen);
        mirror_free(m);
    }
    return err;
}

int gf_mirror_add_host(uint64_t base, uint64_t size, unsigned kind, unsigned flags, uint64_t ctx)
{
    gf_mirror *m = mirror_new(base, size, kind);
    if (!m) return ENOMEM;
    m->flags = flags;
    m->ctx = ctx;
    if (table_add(m) != 0) {
        mirror_free(m);
        return ENOMEM;
    }
    return 0;
}

static int info_of(const gf_mirror *m, gf_mirror_info *out)
{
    if (out) *out = (gf_mirror_info){m->base, m->size, m->dev, m->ctx, m->kind, m->flags};
    return 1;
}

int gf_mirror_find(uint64_t p, uint64_t n, gf_mirror_info *out)
{
    int straddles;
    mir_lock();
    gf_mirror *m = find_bytes(p, n, &straddles);
    int r = straddles ? -1 : m ? info_of(m, out) : 0;
    mir_unlock();
    return r;
}

/* Under the connection's lock: the device copy of a host mirror: made on the worker (at the
 * program's own address when it is free there), filled with the host's bytes, then tracked. */
CUresult gf_mirror_arm(uint64_t base, uint64_t *dev)
{
    mir_lock();
    int straddles;
    gf_mirror *m = find_bytes(base, 1, &straddles);
    uint64_t have = m ? m->dev : 0;
    mir_unlock();
    if (!m || m->kind == GF_MIRROR_MANAGED) return CUDA_ERROR_INVALID_VALUE;
    if (have) {
        *dev = have;
        return CUDA_SUCCESS;
    }
    gf_rreq q;
    gf_rreq_init(&q, GF_RPC_MIRROR_ALLOC);
    gf_wire_put_u32(&q.w, GF_RPC_MIRROR_HOST);
    gf_wire_put_u64(&q.w, m->size);
    gf_wire_put_u32(&q.w, 0);
    gf_wire_put_handle(&q.w, m->base);
    CUresult rc, r;
    gf_wire_reader rep;
    gf_mirror_busy = 1;
    IN_CTX(m, gf_remote_sync(&q, &rc, &rep, NULL));
    if (r == CUDA_SUCCESS && rc == CUDA_SUCCESS) {
        uint64_t d = gf_wire_get_handle(&rep);
        IN_CTX(m, send_bytes(d, (const uint8_t *)(uintptr_t)m->base, m->size));
        if (r == CUDA_SUCCESS) {
            mir_lock();
            m->dev = d;
            pages_set(m->pbase, m->pbase + m->plen, PG_CLEAN);
            if (m->state[0] == PG_STICKY || m->state[npages(m) - 1] == PG_STICKY) {
                atomic_fetch_add(&sticky_mirrors, 1);
                sticky_due = 1; /* the host may write them before the first launch */
            }
            mir_unlock();
            *dev = d;
        }
    } else if (r == CUDA_SUCCESS) {
        r = rc;
    }
    gf_mirror_busy = 0;
    return r;
}

int gf_mirror_forget(uint64_t base, gf_mirror_info *out)
{
    mir_lock();
    size_t i = above(base);
    gf_mirror *m = i && mirs[i - 1]->base == base ? mirs[--i] : NULL;
    if (!m) {
        mir_unlock();
        return 0;
    }
    info_of(m, out);
    if (m->dirty) atomic_fetch_sub(&dirty_pages, m->dirty);
    if (m->dev && (m->state[0] == PG_STICKY || m->state[npages(m) - 1] == PG_STICKY))
        atomic_fetch_sub(&sticky_mirrors, 1);
    memmove(&mirs[i], &mirs[i + 1], (--nmirs - i) * sizeof *mirs);
    /* Host pages go back to read-write unless another mirror still has them. */
    if (m->kind != GF_MIRROR_MANAGED)
        for (uint64_t p = m->pbase; p < m->pbase + m->plen; p += pg)
            if (!find_page(p)) mprotect((void *)(uintptr_t)p, pg, PROT_READ | PROT_WRITE);
    mir_unlock();
    if (m->kind == GF_MIRROR_MANAGED) {
        munmap((void *)(uintptr_t)m->pbase, m->plen);
        munmap(m->view, m->plen);
    }
    mirror_free(m);
    return 1;
}

void gf_mirror_forget_owner(uint64_t ctx, uint64_t module)
{
    for (;;) {
        uint64_t base = 0;
        mir_lock();
        for (size_t i = 0; i < nmirs && !base; i++)
            if ((ctx && mirs[i]->ctx == ctx) || (module && mirs[i]->module == module))
                base = mirs[i]->base;
        mir_unlock();
        if (!base) return;
        gf_mirror_forget(base, NULL);
    }
}

/* ---- coherence (the connection's lock held) -------------------------------------------------- */

/* Calls that may put work on the device (and so read what the host wrote). */
static int device_work(uint32_t kind)
{
    switch (kind) {
    case GF_RPC_LAUNCH:
    case GF_RPC_MEMSET:
    case GF_RPC_MEMCPY_DTOD:
    case GF_RPC_MEMCPY_HTOD:
    case GF_RPC_MEMCPY_HTOD_ASYNC:
    case GF_RPC_MEMCPY_DTOH:
    case GF_RPC_MEMCPY_DTOH_ASYNC: return 1;
    default: return 0;
    }
}

/* Sends the sticky pages of armed registered mirrors (their bytes only). */
static CUresult flush_sticky(void)
{
    CUresult r = CUDA_SUCCESS;
    mir_lock();
    for (size_t i = 0; i < nmirs && r == CUDA_SUCCESS; i++) {
        gf_mirror *m = mirs[i];
        if (!m->dev || m->kind != GF_MIRROR_REGISTERED) continue;
        size_t last = npages(m) - 1;
        for (size_t j = 0; j <= last && r == CUDA_SUCCESS; j = j ? last + 1 : last) {
            if (m->state[j] != PG_STICKY) {
                if (!last) break;
                continue;
            }
            uint64_t a = m->pbase + j * pg, b = a + pg;
            uint64_t lo = a > m->base ? a : m->base, hi = b < m->base + m->size ? b : m->base + m->size;
            mir_unlock(); /* the table does not change: its changes need the connection's lock */
            IN_CTX(m, send_bytes(m->dev + (lo - m->base), (const uint8_t *)(uintptr_t)lo, hi - lo));
            mir_lock();
            if (!last) break;
        }
    }
    mir_unlock();
    return r;
}

/* Host writes to the worker: each dirty run is made clean (read-only) first, then read, so a
 * write that lands meanwhile faults and is sent next time. Sticky pages go before device work
 * only. */
CUresult gf_mirror_flush(uint32_t kind)
{
    if (gf_mirror_busy) return CUDA_SUCCESS;
    int sticky = sticky_due && atomic_load(&sticky_mirrors) && device_work(kind);
    if (!atomic_load(&dirty_pages) && !sticky) return CUDA_SUCCESS;
    gf_mirror_busy = 1;
    CUresult r = CUDA_SUCCESS;
    while (r == CUDA_SUCCESS && atomic_load(&dirty_pages)) {
        struct {
            gf_mirror *m;
            uint64_t lo, hi;
        } plan[32];
        unsigned np = 0;
        uint64_t runs[32][2];
        mir_lock();
        for (size_t i = 0; i < nmirs && np < 32; i++) {
            gf_mirror *m = mirs[i];
            if (!m->dirty || !m->dev) continue;
            size_t n = npages(m);
            for (size_t j = 0; j < n && np < 32;) {
                if (m->state[j] != PG_DIRTY) {
                    j++;
                    continue;
                }
                size_t k = j;
                while (k < n && m->state[k] == PG_DIRTY) k++;
                uint64_t a = m->pbase + j * pg, b = m->pbase + k * pg;
                plan[np].m = m;
                plan[np].lo = a > m->base ? a : m->base;
                plan[np].hi = b < m->base + m->size ? b : m->base + m->size;
                runs[np][0] = a;
                runs[np][1] = b;
                np++;
                j = k;
            }
        }
        /* Every mirror's share of a run is planned before any page of it turns clean. */
        for (unsigned i = 0; i < np; i++) pages_set(runs[i][0], runs[i][1], PG_CLEAN);
        mir_unlock();
        if (!np) break;
        for (unsigned i = 0; i < np && r == CUDA_SUCCESS; i++) {
            gf_mirror *m = plan[i].m;
            const uint8_t *src = m->view ? m->view + (plan[i].lo - m->pbase)
                                         : (const uint8_t *)(uintptr_t)plan[i].lo;
            if (plan[i].hi > plan[i].lo)
                IN_CTX(m, send_bytes(m->dev + (plan[i].lo - m->base), src, plan[i].hi - plan[i].lo));
        }
    }
    if (r == CUDA_SUCCESS && sticky) {
        r = flush_sticky();
        sticky_due = 0;
    }
    gf_mirror_busy = 0;
    return r;
}

void gf_mirror_sent(uint32_t kind)
{
    if (kind != GF_RPC_MEMCPY_DTOH && kind != GF_RPC_MEMCPY_DTOH_ASYNC && device_work(kind))
        dev_pending = 1;
}

void gf_mirror_answered(uint32_t kind)
{
    if (gf_mirror_busy || !dev_pending || !nmirs) return;
    switch (kind) {
    case GF_RPC_CTX_SYNC:
    case GF_RPC_STREAM_SYNC:
    case GF_RPC_STREAM_QUERY:
    case GF_RPC_EVENT_SYNC:
    case GF_RPC_EVENT_QUERY:
    case GF_RPC_MEMCPY_DTOH:
    case GF_RPC_MEMCPY_HTOD:
    case GF_RPC_MEMCPY_DTOD: /* answered: the synchronous forms, done when they return */
    case GF_RPC_MEMSET: gf_mirror_sync_due = kind == GF_RPC_CTX_SYNC ? 2 : 1; break;
    default: break;
    }
}

/* Before a host function runs (the connection's lock held): the stream's work before it is done
 * on the worker, so the managed pages the host has not written since are stale. They become
 * inaccessible; the function cannot fetch them (the worker may be waiting for it), so touching
 * one ends the program with a message (fault) rather than reading stale bytes. */
void gf_mirror_before_host_fn(void)
{
    if (!dev_pending) return;
    mir_lock();
    for (size_t i = 0; i < nmirs; i++) {
        gf_mirror *m = mirs[i];
        if (m->kind != GF_MIRROR_MANAGED || !m->dev) continue;
        size_t n = npages(m);
        for (size_t j = 0; j < n;) {
            if (m->state[j] != PG_CLEAN) {
                j++;
                continue;
            }
            size_t k = j;
            while (k < n && m->state[k] == PG_CLEAN) k++;
            pages_set(m->pbase + j * pg, m->pbase + k * pg, PG_INVALID);
            j = k;
        }
    }
    mir_unlock();
}

/* After a synchronizing answer (from gf_remote_unlock): the device may have written any mirror.
 * Managed pages become invalid (fetched when touched); host mirrors are fetched whole. Only a
 * context-wide synchronization ends "device work pending": work on other streams may still be
 * writing after a stream's or an event's. */
void gf_mirror_after_sync(void)
{
    int full = gf_mirror_sync_due == 2;
    gf_mirror_sync_due = 0;
    if (gf_mirror_busy || gf_mirror_flush(0) != CUDA_SUCCESS) return;
    gf_mirror_busy = 1;
    for (size_t i = 0;; i++) {
        mir_lock();
        if (i >= nmirs) {
            mir_unlock();
            break;
        }
        gf_mirror *m = mirs[i];
        if (!m->dev) {
            mir_unlock();
            continue;
        }
        if (m->kind == GF_MIRROR_MANAGED) {
            pages_set(m->pbase, m->pbase + m->plen, PG_INVALID);
            mir_unlock();
            continue;
        }
        pages_set(m->pbase, m->pbase + m->plen, PG_FETCHING);
        mprotect((void *)(uintptr_t)m->pbase, m->plen, PROT_READ | PROT_WRITE);
        mir_unlock();
        CUresult r;
        IN_CTX(m, recv_bytes(m->dev, (uint8_t *)(uintptr_t)m->base, m->size));
        (void)r; /* on failure the pages keep the host's bytes; the call's own answer tells */
        mir_lock();
        pages_set(m->pbase, m->pbase + m->plen, PG_CLEAN);
        mir_unlock();
        sticky_due = 1;
    }
    gf_mirror_busy = 0;
    if (full) dev_pending = 0;
}
