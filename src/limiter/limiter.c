/* SPDX-License-Identifier: Apache-2.0 */
/* The limiter's shared regions: per-vGPU VRAM accounting and GPU-time token buckets with
 * dead-process reclaim, and the per-GPU ring of kernel end times (include/gpufuse/limiter.h). */
#include "gpufuse/limiter.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VGPU_MAGIC 0x55504776u /* "vGPU" */
#define GPU_MAGIC 0x52555047u  /* "GPUR" */
#define VGPU_MAJOR 1
#define VGPU_MINOR 1 /* 1.1 appended vgpu_ext (launches, refused allocations) */
#define GPU_MAJOR 1
#define GPU_MINOR 0
#define GPU_RING 512

/* ---- region layouts (shared across processes: no pointers, fixed-size fields) -------------- */

typedef struct vgpu_dev {
    uint64_t vram_limit;
    uint64_t vram_used;
    double fraction;          /* 0 = unlimited */
    int64_t tokens_ns;        /* GPU time this slot may still use; negative = in debt */
    uint64_t refill_ns;       /* CLOCK_MONOTONIC of the last refill */
    uint64_t busy_ns;
    uint64_t throttled_ns;
} vgpu_dev;

typedef struct vgpu_proc {
    int32_t pid;              /* 0 = free slot */
    uint32_t pad;
    uint64_t start_time;
    uint64_t vram[GF_LIMITER_MAX_DEVICES];
} vgpu_proc;

typedef struct vgpu_region {
    _Atomic uint32_t magic;   /* written last at creation: the region is ready */
    uint16_t major, minor;
    uint32_t size;            /* sizeof(vgpu_region) */
    uint32_t pad;
    pthread_mutex_t lock;     /* robust, process-shared */
    uint64_t depth_ns;
    uint64_t created_ns;
    vgpu_dev dev[GF_LIMITER_MAX_DEVICES];
    vgpu_proc proc[GF_LIMITER_MAX_PROCS];
    /* Minor 1: counters appended after the v1.0 layout, so a v1.1 reader still opens a v1.0
     * region (mapped at its own size; these read as 0) -- see VGPU_V10_SIZE. Atomics: bumped
     * without the lock on the launch path. */
    struct vgpu_ext {
        _Atomic uint64_t launches[GF_LIMITER_MAX_DEVICES];
        _Atomic uint64_t refused[GF_LIMITER_MAX_DEVICES]; /* mem_reserve answered GF_ENOSPC */
    } ext;
} vgpu_region;

#define VGPU_V10_SIZE offsetof(vgpu_region, ext)

typedef struct gpu_entry {
    _Atomic uint64_t end_ns;
} gpu_entry;

typedef struct gpu_region {
    _Atomic uint32_t magic;
    uint16_t major, minor;
    uint32_t size;
    uint32_t pad;
    _Atomic uint64_t head;
    gpu_entry ring[GPU_RING];
} gpu_region;

struct gf_limiter {
    vgpu_region *r;
    size_t mapped;            /* sizeof(vgpu_region), or VGPU_V10_SIZE for a v1.0 region */
    int attached;
    int slot;                 /* this process's proc[] index, -1 when not attached */
    pid_t pid;
};

struct gf_limiter_gpu {
    gpu_region *r;
};

/* ---- helpers -------------------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int valid_name(const char *name)
{
    if (!name || !*name || strlen(name) >= GF_LIMITER_NAME_MAX) return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return 0;
    return name[0] != '.';
}

static gf_status region_path(const char *kind, const char *name, char *buf, size_t buflen)
{
    if (!valid_name(name)) return GF_EINVAL;
    const char *dir = getenv("GPUFUSE_SHM_DIR");
    if (!dir || !*dir) dir = "/dev/shm";
    int n = snprintf(buf, buflen, "%s/gpufuse-%s-%s", dir, kind, name);
    return n > 0 && (size_t)n < buflen ? GF_OK : GF_ERANGE;
}

gf_status gf_limiter_path(const char *name, char *buf, size_t buflen)
{
    return region_path("vgpu", name, buf, buflen);
}

uint64_t gf_limiter_proc_start_time(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    /* The command name (field 2) may hold spaces and parentheses: fields restart after the
     * last ')'. Field 3 is the state; start time is field 22. */
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    p++;
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p + 1, ' ');
    }
    if (!p) return 0;
    unsigned long long st = strtoull(p + 1, NULL, 10);
    /* A zombie has exited: its memory is gone, whatever its parent does with it. */
    char *state = strrchr(buf, ')');
    if (state && state[1] == ' ' && (state[2] == 'Z' || state[2] == 'X')) return 0;
    return st ? st : 1;
}

static int proc_alive(const vgpu_proc *p)
{
    if (p->pid <= 0) return 0;
    uint64_t st = gf_limiter_proc_start_time(p->pid);
    if (st == 0) {
        /* Without /proc (not mounted) only kill(0) can tell; with it, no entry means gone. */
        if (access("/proc/self", F_OK) == 0) return 0;
        return kill(p->pid, 0) == 0 || errno == EPERM;
    }
    return st == p->start_time;
}

/* Locks the region; after a holder died mid-update, rebuilds the counters from the process
 * records (the one invariant a half-done update can break). */
static void rlock(vgpu_region *r)
{
    int rc = pthread_mutex_lock(&r->lock);
    if (rc == EOWNERDEAD) {
        for (int d = 0; d < GF_LIMITER_MAX_DEVICES; d++) {
            uint64_t sum = 0;
            for (int i = 0; i < GF_LIMITER_MAX_PROCS; i++)
                if (r->proc[i].pid) sum += r->proc[i].vram[d];
            r->dev[d].vram_used = sum;
        }
        pthread_mutex_consistent(&r->lock);
    }
}

static void runlock(vgpu_region *r)
{
    pthread_mutex_unlock(&r->lock);
}

static void drop_proc(vgpu_region *r, vgpu_proc *p)
{
    for (int d = 0; d < GF_LIMITER_MAX_DEVICES; d++) {
        uint64_t b = p->vram[d];
        r->dev[d].vram_used = r->dev[d].vram_used >= b ? r->dev[d].vram_used - b : 0;
    }
    memset(p, 0, sizeof *p);
}

/* Under the lock. */
static unsigned reclaim_locked(vgpu_region *r, pid_t self)
{
    unsigned n = 0;
    for (int i = 0; i < GF_LIMITER_MAX_PROCS; i++) {
        vgpu_proc *p = &r->proc[i];
        if (!p->pid || p->pid == self) continue;
        if (!proc_alive(p)) {
            drop_proc(r, p);
            n++;
        }
    }
    return n;
}

/* Maps path at size; an existing file of min_size (an older minor version's layout) is mapped
 * at that size instead, and *mapped says which. */
static gf_status map_file(const char *path, size_t size, size_t min_size, int create,
                          int exclusive, int *created, void **out, size_t *mapped, char *err,
                          size_t errlen)
{
    *created = 0;
    int fd = -1;
    if (create) {
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *created = 1;
            fchmod(fd, 0666); /* umask must not keep another user of the GPU out */
            if (ftruncate(fd, (off_t)size) != 0) {
                snprintf(err, errlen, "%s: cannot size the region: %s", path, strerror(errno));
                close(fd);
                unlink(path);
                return GF_EIO;
            }
        } else if (errno == EEXIST && exclusive) {
            snprintf(err, errlen, "%s already exists (another vGPU with that name?)", path);
            return GF_EEXIST;
        } else if (errno != EEXIST) {
            snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
            return GF_EIO;
        }
    }
    if (fd < 0) {
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
            return e == ENOENT ? GF_ENOENT : GF_EIO;
        }
        /* A creator may still be sizing it. */
        struct stat st;
        for (int i = 0; i < 1000; i++) {
            if (fstat(fd, &st) == 0 && (size_t)st.st_size >= min_size) break;
            usleep(1000);
        }
        if (fstat(fd, &st) == 0 && (size_t)st.st_size == min_size) size = min_size;
        if (fstat(fd, &st) != 0 || (size_t)st.st_size != size) {
            snprintf(err, errlen,
                     "%s: size %lld, expected %zu: made by another gpufuse version; remove it",
                     path, (long long)st.st_size, size);
            close(fd);
            return GF_EPROTO;
        }
    }
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno));
        if (*created) unlink(path);
        return GF_EIO;
    }
    *out = m;
    *mapped = size;
    return GF_OK;
}

/* Waits for a region's creator to publish the magic; checks the version. */
static gf_status check_ready(_Atomic uint32_t *magic, uint32_t want, uint16_t major,
                             uint16_t have_major, uint32_t size, uint32_t have_size,
                             const char *path, char *err, size_t errlen)
{
    for (int i = 0; i < 1000 && atomic_load(magic) != want; i++) usleep(1000);
    if (atomic_load(magic) != want) {
        snprintf(err, errlen, "%s: not a gpufuse region (bad magic); remove it", path);
        return GF_EPROTO;
    }
    if (have_major != major || have_size != size) {
        snprintf(err, errlen, "%s: version %u, size %u; this gpufuse needs version %u, size %u",
                 path, have_major, have_size, major, size);
        return GF_EPROTO;
    }
    return GF_OK;
}

/* ---- vGPU regions --------------------------------------------------------------------------- */

static void init_vgpu(vgpu_region *r, const gf_limiter_config *cfg)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&r->lock, &a);
    pthread_mutexattr_destroy(&a);
    r->major = VGPU_MAJOR;
    r->minor = VGPU_MINOR;
    r->size = sizeof *r;
    r->depth_ns = cfg && cfg->bucket_depth_ns ? cfg->bucket_depth_ns : GF_LIMITER_DEFAULT_DEPTH_NS;
    r->created_ns = now_ns();
    for (int d = 0; d < GF_LIMITER_MAX_DEVICES; d++) {
        vgpu_dev *v = &r->dev[d];
        v->vram_limit = cfg ? cfg->vram_limit[d] : 0;
        double f = cfg ? cfg->compute_fraction[d] : 0;
        v->fraction = f > 0 && f < 1 ? f : 0;
        v->tokens_ns = 0;
        v->refill_ns = r->created_ns;
    }
    atomic_store(&r->magic, VGPU_MAGIC);
}

gf_status gf_limiter_create(const char *name, const gf_limiter_config *cfg, int exclusive,
                            char *err, size_t errlen)
{
    char path[256];
    if (gf_limiter_path(name, path, sizeof path) != GF_OK) {
        snprintf(err, errlen, "vGPU name \"%s\": use 1-%d of A-Z a-z 0-9 . _ -",
                 name ? name : "(null)", GF_LIMITER_NAME_MAX - 1);
        return GF_EINVAL;
    }
    void *m;
    int created;
    size_t mapped;
    gf_status s = map_file(path, sizeof(vgpu_region), VGPU_V10_SIZE, 1, exclusive, &created, &m,
                           &mapped, err, errlen);
    if (s != GF_OK) return s;
    vgpu_region *r = m;
    if (created) {
        init_vgpu(r, cfg);
    } else {
        s = check_ready(&r->magic, VGPU_MAGIC, VGPU_MAJOR, r->major, (uint32_t)mapped, r->size,
                        path, err, errlen);
    }
    munmap(m, mapped);
    return s;
}

static gf_status open_common(const char *name, int attach, gf_limiter **out, char *err,
                             size_t errlen)
{
    *out = NULL;
    char path[256];
    if (gf_limiter_path(name, path, sizeof path) != GF_OK) {
        snprintf(err, errlen, "vGPU name \"%s\": use 1-%d of A-Z a-z 0-9 . _ -",
                 name ? name : "(null)", GF_LIMITER_NAME_MAX - 1);
        return GF_EINVAL;
    }
    void *m;
    int created;
    size_t mapped;
    gf_status s = map_file(path, sizeof(vgpu_region), VGPU_V10_SIZE, 0, 0, &created, &m, &mapped,
                           err, errlen);
    if (s != GF_OK) return s;
    vgpu_region *r = m;
    s = check_ready(&r->magic, VGPU_MAGIC, VGPU_MAJOR, r->major, (uint32_t)mapped, r->size, path,
                    err, errlen);
    if (s != GF_OK) {
        munmap(m, mapped);
        return s;
    }
    gf_limiter *l = calloc(1, sizeof *l);
    if (!l) {
        munmap(m, mapped);
        snprintf(err, errlen, "out of memory");
        return GF_ENOMEM;
    }
    l->r = r;
    l->mapped = mapped;
    l->slot = -1;
    l->pid = getpid();
    if (attach) {
        l->attached = 1;
        gf_limiter_after_fork(l);
        if (l->slot < 0) {
            snprintf(err, errlen, "%s: %d processes already attached to this vGPU", path,
                     GF_LIMITER_MAX_PROCS);
            gf_limiter_close(l);
            return GF_ENOSPC;
        }
    }
    *out = l;
    return GF_OK;
}

gf_status gf_limiter_open(const char *name, gf_limiter **out, char *err, size_t errlen)
{
    return open_common(name, 1, out, err, errlen);
}

gf_status gf_limiter_open_observer(const char *name, gf_limiter **out, char *err, size_t errlen)
{
    return open_common(name, 0, out, err, errlen);
}

void gf_limiter_after_fork(gf_limiter *l)
{
    if (!l || !l->attached) return;
    vgpu_region *r = l->r;
    pid_t self = getpid();
    uint64_t st = gf_limiter_proc_start_time(self);
    l->pid = self;
    l->slot = -1;
    rlock(r);
    for (int pass = 0; pass < 2 && l->slot < 0; pass++) {
        if (pass == 1) reclaim_locked(r, self);
        for (int i = 0; i < GF_LIMITER_MAX_PROCS; i++) {
            vgpu_proc *p = &r->proc[i];
            if (p->pid == self && p->start_time == st) { /* re-attach */
                l->slot = i;
                break;
            }
        }
        if (l->slot >= 0) break;
        for (int i = 0; i < GF_LIMITER_MAX_PROCS; i++) {
            vgpu_proc *p = &r->proc[i];
            if (p->pid == self) drop_proc(r, p); /* a dead process with our pid */
            if (!p->pid) {
                memset(p, 0, sizeof *p);
                p->pid = self;
                p->start_time = st;
                l->slot = i;
                break;
            }
        }
    }
    runlock(r);
}

void gf_limiter_close(gf_limiter *l)
{
    if (!l) return;
    if (l->attached && l->slot >= 0 && l->pid == getpid()) {
        rlock(l->r);
        vgpu_proc *p = &l->r->proc[l->slot];
        if (p->pid == l->pid) drop_proc(l->r, p);
        runlock(l->r);
    }
    munmap(l->r, l->mapped);
    free(l);
}

gf_status gf_limiter_unlink(const char *name)
{
    char path[256];
    if (gf_limiter_path(name, path, sizeof path) != GF_OK) return GF_EINVAL;
    if (unlink(path) != 0) return errno == ENOENT ? GF_ENOENT : GF_EIO;
    return GF_OK;
}

static vgpu_proc *me(gf_limiter *l)
{
    if (!l->attached || l->slot < 0) return NULL;
    vgpu_proc *p = &l->r->proc[l->slot];
    return p->pid == l->pid ? p : NULL;
}

gf_status gf_limiter_mem_reserve(gf_limiter *l, unsigned dev, uint64_t bytes)
{
    if (!l || dev >= GF_LIMITER_MAX_DEVICES) return GF_EINVAL;
    vgpu_region *r = l->r;
    vgpu_dev *d = &r->dev[dev];
    gf_status s = GF_OK;
    rlock(r);
    if (d->vram_limit && (bytes > d->vram_limit || d->vram_used > d->vram_limit - bytes)) {
        reclaim_locked(r, l->pid);
        if (bytes > d->vram_limit || d->vram_used > d->vram_limit - bytes) s = GF_ENOSPC;
    }
    if (s == GF_ENOSPC && l->mapped == sizeof *r) atomic_fetch_add(&r->ext.refused[dev], 1);
    if (s == GF_OK) {
        d->vram_used += bytes;
        vgpu_proc *p = me(l);
        if (p) p->vram[dev] += bytes;
    }
    runlock(r);
    return s;
}

void gf_limiter_mem_release(gf_limiter *l, unsigned dev, uint64_t bytes)
{
    if (!l || dev >= GF_LIMITER_MAX_DEVICES) return;
    vgpu_region *r = l->r;
    rlock(r);
    vgpu_proc *p = me(l);
    if (p) {
        /* Never return more than this process holds: a record reclaimed by mistake must not
         * let another process's bytes go uncounted. */
        if (bytes > p->vram[dev]) bytes = p->vram[dev];
        p->vram[dev] -= bytes;
    }
    r->dev[dev].vram_used = r->dev[dev].vram_used >= bytes ? r->dev[dev].vram_used - bytes : 0;
    runlock(r);
}

void gf_limiter_mem_info(gf_limiter *l, unsigned dev, uint64_t *used, uint64_t *limit)
{
    uint64_t u = 0, lim = 0;
    if (l && dev < GF_LIMITER_MAX_DEVICES) {
        rlock(l->r);
        reclaim_locked(l->r, l->pid);
        u = l->r->dev[dev].vram_used;
        lim = l->r->dev[dev].vram_limit;
        runlock(l->r);
    }
    if (used) *used = u;
    if (limit) *limit = lim;
}

uint64_t gf_limiter_proc_vram(gf_limiter *l, unsigned dev)
{
    if (!l || dev >= GF_LIMITER_MAX_DEVICES) return 0;
    rlock(l->r);
    vgpu_proc *p = me(l);
    uint64_t v = p ? p->vram[dev] : 0;
    runlock(l->r);
    return v;
}

double gf_limiter_compute_fraction(const gf_limiter *l, unsigned dev)
{
    if (!l || dev >= GF_LIMITER_MAX_DEVICES) return 0;
    return l->r->dev[dev].fraction;
}

/* Under the lock: adds fraction x elapsed wall time, up to the depth. */
static void refill(vgpu_region *r, vgpu_dev *d, uint64_t now)
{
    if (now > d->refill_ns) {
        double add = d->fraction * (double)(now - d->refill_ns);
        double t = (double)d->tokens_ns + add;
        d->tokens_ns = t > (double)r->depth_ns ? (int64_t)r->depth_ns : (int64_t)t;
        d->refill_ns = now;
    }
}

uint64_t gf_limiter_compute_delay_ns(gf_limiter *l, unsigned dev, uint64_t now)
{
    if (!l || dev >= GF_LIMITER_MAX_DEVICES) return 0;
    vgpu_region *r = l->r;
    vgpu_dev *d = &r->dev[dev];
    if (d->fraction <= 0) return 0;
    rlock(r);
    refill(r, d, now);
    uint64_t wait = d->tokens_ns >= 0 ? 0 : (uint64_t)((double)-d->tokens_ns / d->fraction) + 1;
    runlock(r);
    return wait;
}

uint64_t gf_limiter_compute_wait(gf_limiter *l, unsigned dev)
{
    uint64_t t0 = now_ns(), t = t0, waited = 0;
    for (;;) {
        uint64_t w = gf_limiter_compute_delay_ns(l, dev, t);
        if (!w) break;
        struct timespec ts = {(time_t)(w / 1000000000ull), (long)(w % 1000000000ull)};
        nanosleep(&ts, NULL);
        t = now_ns();
    }
    waited = t - t0;
    if (waited) {
        rlock(l->r);
        l->r->dev[dev].throttled_ns += waited;
        runlock(l->r);
    }
    return waited;
}

void gf_limiter_compute_charge(gf_limiter *l, unsigned dev, uint64_t busy_ns, uint64_t now)
{
    if (!l || dev >= GF_LIMITER_MAX_DEVICES) return;
    vgpu_region *r = l->r;
    vgpu_dev *d = &r->dev[dev];
    rlock(r);
    d->busy_ns += busy_ns;
    if (d->fraction > 0) {
        refill(r, d, now);
        d->tokens_ns -= (int64_t)busy_ns;
    }
    runlock(r);
}

unsigned gf_limiter_reclaim(gf_limiter *l)
{
    if (!l) return 0;
    rlock(l->r);
    unsigned n = reclaim_locked(l->r, l->attached ? l->pid : 0);
    runlock(l->r);
    return n;
}

unsigned gf_limiter_live_procs(gf_limiter *l)
{
    if (!l) return 0;
    unsigned n = 0;
    rlock(l->r);
    reclaim_locked(l->r, l->attached ? l->pid : 0);
    for (int i = 0; i < GF_LIMITER_MAX_PROCS; i++)
        if (l->r->proc[i].pid) n++;
    runlock(l->r);
    return n;
}

unsigned gf_limiter_procs(gf_limiter *l, unsigned dev, pid_t *pids, uint64_t *bytes,
                          unsigned max)
{
    if (!l || dev >= GF_LIMITER_MAX_DEVICES) return 0;
    unsigned n = 0;
    rlock(l->r);
    reclaim_locked(l->r, l->attached ? l->pid : 0);
    for (int i = 0; i < GF_LIMITER_MAX_PROCS; i++) {
        vgpu_proc *p = &l->r->proc[i];
        if (!p->pid) continue;
        if (n < max) {
            if (pids) pids[n] = p->pid;
            if (bytes) bytes[n] = p->vram[dev];
        }
        n++;
    }
    runlock(l->r);
    return n;
}

gf_status gf_limiter_stats(gf_limiter *l, unsigned dev, gf_limiter_dev_stats *st)
{
    if (!l || !st || dev >= GF_LIMITER_MAX_DEVICES) return GF_EINVAL;
    rlock(l->r);
    reclaim_locked(l->r, l->attached ? l->pid : 0);
    vgpu_dev *d = &l->r->dev[dev];
    st->vram_limit = d->vram_limit;
    st->vram_used = d->vram_used;
    st->compute_fraction = d->fraction;
    st->busy_ns = d->busy_ns;
    st->throttled_ns = d->throttled_ns;
    int ext = l->mapped == sizeof *l->r;
    st->launches = ext ? atomic_load(&l->r->ext.launches[dev]) : 0;
    st->refused_allocs = ext ? atomic_load(&l->r->ext.refused[dev]) : 0;
    runlock(l->r);
    return GF_OK;
}

void gf_limiter_count_launch(gf_limiter *l, unsigned dev)
{
    if (!l || dev >= GF_LIMITER_MAX_DEVICES || l->mapped != sizeof *l->r) return;
    atomic_fetch_add_explicit(&l->r->ext.launches[dev], 1, memory_order_relaxed);
}

/* ---- GPU regions ---------------------------------------------------------------------------- */

gf_status gf_limiter_gpu_open(const char *id, gf_limiter_gpu **out, char *err, size_t errlen)
{
    *out = NULL;
    char path[256];
    if (region_path("gpu", id, path, sizeof path) != GF_OK) {
        snprintf(err, errlen, "GPU id \"%s\": use A-Z a-z 0-9 . _ -", id ? id : "(null)");
        return GF_EINVAL;
    }
    void *m;
    int created;
    size_t mapped;
    gf_status s = map_file(path, sizeof(gpu_region), sizeof(gpu_region), 1, 0, &created, &m,
                           &mapped, err, errlen);
    if (s != GF_OK) return s;
    gpu_region *r = m;
    if (created) {
        r->major = GPU_MAJOR;
        r->minor = GPU_MINOR;
        r->size = sizeof *r;
        atomic_store(&r->magic, GPU_MAGIC);
    } else {
        s = check_ready(&r->magic, GPU_MAGIC, GPU_MAJOR, r->major, sizeof *r, r->size, path,
                        err, errlen);
        if (s != GF_OK) {
            munmap(m, sizeof *r);
            return s;
        }
    }
    gf_limiter_gpu *g = calloc(1, sizeof *g);
    if (!g) {
        munmap(m, sizeof *r);
        return GF_ENOMEM;
    }
    g->r = r;
    *out = g;
    return GF_OK;
}

void gf_limiter_gpu_close(gf_limiter_gpu *g)
{
    if (!g) return;
    munmap(g->r, sizeof *g->r);
    free(g);
}

uint64_t gf_limiter_gpu_account(gf_limiter_gpu *g, uint64_t start_ns, uint64_t end_ns)
{
    if (end_ns <= start_ns) return 0;
    uint64_t s = start_ns;
    if (g) {
        for (int i = 0; i < GPU_RING; i++) {
            uint64_t e = atomic_load_explicit(&g->r->ring[i].end_ns, memory_order_relaxed);
            if (e > s && e < end_ns) s = e;
        }
        uint64_t h = atomic_fetch_add(&g->r->head, 1);
        atomic_store_explicit(&g->r->ring[h % GPU_RING].end_ns, end_ns, memory_order_relaxed);
    }
    return end_ns - s;
}
