/* SPDX-License-Identifier: Apache-2.0 */
/* The sim's shared machine state: one mmap'ed file per GPUFUSE_SIM_STATE holding the simulated
 * devices, each process's VRAM, and each device's busy intervals (see simstate.h).
 *
 * Layout rules: the file is one struct sim_file with a magic, a major/minor version and its own
 * size up front, and no pointers anywhere (robust mutexes are the only non-plain members, and
 * they are designed to live in shared memory). The file appears under its name only once it is
 * fully initialized: a process builds it in a temporary file next to it and link(2)s it into
 * place, which fails with EEXIST for everybody but the first, who then open the winner's file.
 *
 * Locking: sim_file.lock (robust, process-shared) guards the process table, the busy rings and
 * each device's "running" fields. Each device also has its own robust mutex, held for the length
 * of one kernel: that is the time-slicing. A device lock is never taken while holding the table
 * lock, so the two cannot deadlock.
 */
#include "simstate.h"

#include "gpufuse/gpu_models.h"
#include "gpufuse/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SIM_MAGIC 0x31545353464d4953ull /* "SIMFSST1" little-endian */
#define SIM_MAJOR 1
#define SIM_MINOR 0
#define SIM_RING 512
#define SIM_SPEC_LEN 256
#define SIM_MAX_OPEN 8

/* One process's slot in the table; pid 0 means free. */
struct sim_proc {
    int32_t pid;
    uint32_t reserved0;
    uint64_t start_time;                 /* /proc/<pid>/stat field 22, clock ticks after boot */
    uint64_t used[GF_SIM_MAX_DEVICES];   /* bytes charged on each device */
};

/* One finished kernel. */
struct sim_busy {
    int32_t pid;
    uint32_t reserved0;
    uint64_t start_ns, end_ns;           /* CLOCK_MONOTONIC */
};

struct sim_dev {
    gf_sim_device_info info;
    pthread_mutex_t run_lock;            /* held for the length of one kernel */
    int32_t run_pid;                     /* kernel running now (0: none); under the table lock */
    uint32_t reserved0;
    uint64_t run_start_ns;
    uint32_t ring_next;                  /* index the next interval goes to */
    uint32_t ring_used;                  /* valid entries, up to SIM_RING */
    struct sim_busy ring[SIM_RING];
};

struct sim_file {
    uint64_t magic;
    uint16_t major, minor;
    uint32_t size;                       /* sizeof(struct sim_file) of the writer */
    uint32_t mutex_size;                 /* sizeof(pthread_mutex_t) of the writer */
    uint32_t ndev;
    char spec[SIM_SPEC_LEN];             /* canonical device list: "H100:2,T4:1" */
    pthread_mutex_t lock;                /* the table lock */
    struct sim_proc procs[GF_SIM_MAX_PROCS];
    struct sim_dev devs[GF_SIM_MAX_DEVICES];
};

struct gf_simstate {
    struct sim_file *f;
    char path[PATH_MAX];
    pid_t pid;                           /* the process registered in slot (changes on fork) */
    int slot;
};

static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static gf_simstate *opened[SIM_MAX_OPEN];

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

uint64_t gf_sim_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t gf_simstate_util_window_ns(void)
{
    const char *s = getenv("GPUFUSE_SIM_UTIL_WINDOW_MS");
    if (!s || !*s) return 500ull * 1000000ull;
    char *end;
    errno = 0;
    unsigned long long ms = strtoull(s, &end, 10);
    if (errno || *end || !isdigit((unsigned char)*s) || ms == 0 || ms > 3600000ull) {
        GF_LOG_ONCE(GF_LOG_WARN, "sim",
                    "GPUFUSE_SIM_UTIL_WINDOW_MS=\"%s\": not a whole number of milliseconds "
                    "from 1 to 3600000; using 500",
                    s);
        return 500ull * 1000000ull;
    }
    return ms * 1000000ull;
}

/* ---- processes ----------------------------------------------------------------------------- */

/* Reads field 22 (starttime) and field 3 (state) of /proc/<pid>/stat. Returns 0, or -1 when the
 * process does not exist (or cannot be read). */
static int proc_stat(pid_t pid, uint64_t *start_time, char *state)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    /* comm (field 2) may hold spaces and parentheses: fields resume after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    p++;
    for (int field = 3; field <= 22; field++) {
        while (*p == ' ') p++;
        if (!*p) return -1;
        if (field == 3 && state) *state = *p;
        if (field == 22) {
            *start_time = strtoull(p, NULL, 10);
            return 0;
        }
        while (*p && *p != ' ') p++;
    }
    return -1;
}

static uint64_t self_start_time(void)
{
    uint64_t st = 0;
    proc_stat(getpid(), &st, NULL);
    return st;
}

/* A process is dead when its pid is gone, is a zombie, or now names another process (its start
 * time differs: the pid was reused). */
static int proc_dead(const struct sim_proc *p)
{
    if (p->pid <= 0) return 1;
    if (kill(p->pid, 0) != 0 && errno == ESRCH) return 1;
    uint64_t st;
    char state = '?';
    if (proc_stat(p->pid, &st, &state) != 0) {
        /* Without a readable /proc (an odd container), kill(2) is all there is to go on. */
        return access("/proc/self/stat", R_OK) == 0;
    }
    if (state == 'Z' || state == 'X') return 1;
    return st != p->start_time;
}

/* ---- locking ------------------------------------------------------------------------------- */

static int init_robust_mutex(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc) return rc;
    rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (!rc) rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (!rc) rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return rc;
}

/* Locks a robust mutex. Returns 1 when the previous owner died holding it (the caller repairs
 * what it guarded), 0 otherwise. */
static int robust_lock(pthread_mutex_t *m, const char *what)
{
    int rc = pthread_mutex_lock(m);
    if (rc == 0) return 0;
    if (rc == EOWNERDEAD) {
        pthread_mutex_consistent(m);
        gf_log(GF_LOG_DEBUG, "sim", "%s: previous holder died; recovered", what);
        return 1;
    }
    if (rc == ENOTRECOVERABLE) {
        /* Only reachable if a holder unlocked without marking it consistent, which this file
         * never does; re-create it rather than wedge every process forever. */
        gf_log(GF_LOG_ERROR, "sim", "%s: mutex not recoverable; re-initializing it", what);
        init_robust_mutex(m);
        return robust_lock(m, what);
    }
    gf_log(GF_LOG_ERROR, "sim", "%s: pthread_mutex_lock: %s", what, strerror(rc));
    return 0;
}

static void table_lock(gf_simstate *s)
{
    robust_lock(&s->f->lock, "sim state table lock");
}

static void table_unlock(gf_simstate *s)
{
    pthread_mutex_unlock(&s->f->lock);
}

/* Frees the slots of dead processes (their VRAM comes back) and forgets a dead process's running
 * kernel. Table lock held. */
static void reclaim_dead(struct sim_file *f, pid_t self)
{
    for (unsigned i = 0; i < GF_SIM_MAX_PROCS; i++) {
        struct sim_proc *p = &f->procs[i];
        if (p->pid == 0 || p->pid == self) continue;
        if (proc_dead(p)) {
            gf_log(GF_LOG_DEBUG, "sim", "reclaiming pid %d (gone)", (int)p->pid);
            memset(p, 0, sizeof *p);
        }
    }
}

/* Finds or makes the calling process's slot. Table lock held. Returns the slot or -1. */
static int register_self(struct sim_file *f, pid_t self)
{
    uint64_t st = self_start_time();
    int free_slot = -1;
    for (int i = 0; i < GF_SIM_MAX_PROCS; i++) {
        struct sim_proc *p = &f->procs[i];
        if (p->pid == self) {
            if (p->start_time == st) return i;
            memset(p, 0, sizeof *p); /* an earlier process with our pid: it is dead */
        }
        if (p->pid == 0 && free_slot < 0) free_slot = i;
    }
    if (free_slot < 0) {
        reclaim_dead(f, self);
        for (int i = 0; i < GF_SIM_MAX_PROCS && free_slot < 0; i++)
            if (f->procs[i].pid == 0) free_slot = i;
    }
    if (free_slot < 0) return -1;
    f->procs[free_slot].pid = self;
    f->procs[free_slot].start_time = st;
    return free_slot;
}

/* The calling process's slot, re-registering after fork(). Table lock held. */
static struct sim_proc *self_proc(gf_simstate *s)
{
    pid_t self = getpid();
    if (s->pid != self || s->slot < 0 || s->f->procs[s->slot].pid != self) {
        s->slot = register_self(s->f, self);
        s->pid = self;
        if (s->slot < 0) {
            GF_LOG_ONCE(GF_LOG_ERROR, "sim",
                        "%s: all %d process slots are held by live processes; this process's "
                        "usage is not recorded",
                        s->path, GF_SIM_MAX_PROCS);
            return NULL;
        }
    }
    return &s->f->procs[s->slot];
}

/* ---- GPUFUSE_SIM_GPUS ---------------------------------------------------------------------- */

static int known_models(char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < gf_gpu_model_count() && off < len; i++) {
        int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", gf_gpu_model_at(i)->key);
        if (n < 0) break;
        off += (size_t)n;
    }
    return 0;
}

/* Model by key (case-insensitive) or exact driver name; no fuzzy matching here. */
static const gf_gpu_model *model_strict(const char *s)
{
    for (unsigned i = 0; i < gf_gpu_model_count(); i++) {
        const gf_gpu_model *m = gf_gpu_model_at(i);
        if (!strcasecmp(m->key, s) || !strcasecmp(m->name, s)) return m;
    }
    return NULL;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    size_t k = 0;
    while (isspace((unsigned char)s[k])) k++;
    memmove(s, s + k, n - k + 1);
}

/* Parses "H100:2,T4" into models[] (one per device) and the canonical spec "H100:2,T4:1".
 * Returns the device count, or -1 with err filled. */
static int parse_gpus(const char *value, const gf_gpu_model **models, char *spec, size_t speclen,
                      char *err, size_t errlen)
{
    char known[512];
    known_models(known, sizeof known);
    if (strlen(value) >= 1024)
        return fail(err, errlen, "GPUFUSE_SIM_GPUS: value longer than 1023 characters");
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", value);
    int ndev = 0;
    spec[0] = '\0';
    size_t specoff = 0;
    char *item = buf;
    /* strtok would skip empty items; walk commas by hand so "H100,,T4" is an error. */
    for (;;) {
        char *comma = strchr(item, ',');
        if (comma) *comma = '\0';
        char one[1024];
        snprintf(one, sizeof one, "%s", item);
        trim(one);
        if (!*one)
            return fail(err, errlen,
                        "GPUFUSE_SIM_GPUS=\"%s\": empty item; write MODEL[:COUNT] separated by "
                        "commas, e.g. \"H100:2,T4\"",
                        value);
        char *colon = strchr(one, ':');
        long count = 1;
        if (colon) {
            *colon = '\0';
            char *cnt = colon + 1;
            trim(cnt);
            trim(one);
            char *end;
            errno = 0;
            count = isdigit((unsigned char)*cnt) ? strtol(cnt, &end, 10) : -1;
            if (count < 1 || errno || *end || count > GF_SIM_MAX_DEVICES)
                return fail(err, errlen,
                            "GPUFUSE_SIM_GPUS=\"%s\": count \"%s\" for %s must be a whole "
                            "number from 1 to %d",
                            value, cnt, one, GF_SIM_MAX_DEVICES);
        }
        const gf_gpu_model *m = model_strict(one);
        if (!m)
            return fail(err, errlen,
                        "GPUFUSE_SIM_GPUS=\"%s\": unknown GPU model \"%s\"; known models: %s",
                        value, one, known);
        if (ndev + count > GF_SIM_MAX_DEVICES)
            return fail(err, errlen,
                        "GPUFUSE_SIM_GPUS=\"%s\": asks for more than %d devices, the most the "
                        "sim holds",
                        value, GF_SIM_MAX_DEVICES);
        for (long i = 0; i < count; i++) models[ndev++] = m;
        if (!comma) break;
        item = comma + 1;
    }
    /* Canonical form: runs of one model merged, so "H100,H100" == "H100:2". */
    for (int i = 0; i < ndev;) {
        int j = i;
        while (j < ndev && models[j] == models[i]) j++;
        int n = snprintf(spec + specoff, speclen - specoff, "%s%s:%d", i ? "," : "",
                         models[i]->key, j - i);
        if (n < 0 || (size_t)n >= speclen - specoff)
            return fail(err, errlen, "GPUFUSE_SIM_GPUS=\"%s\": too long", value);
        specoff += (size_t)n;
        i = j;
    }
    return ndev;
}

/* ---- creating and opening the file --------------------------------------------------------- */

/* 128-bit FNV-1a-style hash of (path, index), shaped as an RFC 4122 version-4 UUID: stable for
 * a state file, different across files and devices. */
static void make_uuid(const char *path, unsigned index, uint8_t out[16])
{
    uint64_t h[2] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull};
    char tag[PATH_MAX + 32];
    int n = snprintf(tag, sizeof tag, "gpufuse-sim:%s:%u", path, index);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < n; i++) {
            h[k] ^= (uint8_t)tag[i] + (uint64_t)k * 0x9e;
            h[k] *= 0x100000001b3ull;
            h[k] ^= h[k] >> 29;
        }
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(h[0] >> (8 * i));
        out[8 + i] = (uint8_t)(h[1] >> (8 * i));
    }
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x40);
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}

static void fill_device(struct sim_dev *d, const gf_gpu_model *m, const char *path, unsigned i)
{
    gf_sim_device_info *info = &d->info;
    snprintf(info->name, sizeof info->name, "%s", m->name);
    snprintf(info->model, sizeof info->model, "%s", m->key);
    make_uuid(path, i, info->uuid);
    info->total_bytes = m->vram_bytes;
    info->sm_count = m->sm_count;
    info->cc_major = m->cc_major;
    info->cc_minor = m->cc_minor;
    info->fp16_tflops = m->fp16_tflops;
    info->clock_khz = m->clock_mhz * 1000u;
    info->mem_clock_khz = m->mem_clock_mhz * 1000u;
    info->mem_bus_width = m->mem_bus_width;
    info->pci_bus = 0x18 + i * 0x0e; /* spread out like a multi-GPU board; <= 0xea for 16 */
    info->power_limit_mw = m->tdp_watts * 1000u;
}

/* Builds a complete state file in a temporary name and links it to path. Returns 0 when this
 * process created it, 1 when another process had already (path exists), -1 on error. */
static int create_file(const char *path, const gf_gpu_model **models, int ndev, const char *spec,
                       char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d.%llx", path, (int)getpid(),
                 (unsigned long long)gf_sim_now_ns()) >= (int)sizeof tmp)
        return fail(err, errlen, "GPUFUSE_SIM_STATE=%s: path too long", path);
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(err, errlen,
                    "GPUFUSE_SIM_STATE=%s: cannot create %s: %s; point GPUFUSE_SIM_STATE at a "
                    "writable directory",
                    path, tmp, strerror(errno));
    int rc = -1;
    struct sim_file *f = MAP_FAILED;
    if (ftruncate(fd, sizeof *f) != 0) {
        fail(err, errlen, "GPUFUSE_SIM_STATE=%s: cannot size %s: %s", path, tmp, strerror(errno));
        goto out;
    }
    f = mmap(NULL, sizeof *f, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (f == MAP_FAILED) {
        fail(err, errlen, "GPUFUSE_SIM_STATE=%s: mmap: %s", path, strerror(errno));
        goto out;
    }
    f->magic = SIM_MAGIC;
    f->major = SIM_MAJOR;
    f->minor = SIM_MINOR;
    f->size = (uint32_t)sizeof *f;
    f->mutex_size = (uint32_t)sizeof(pthread_mutex_t);
    f->ndev = (uint32_t)ndev;
    snprintf(f->spec, sizeof f->spec, "%s", spec);
    if (init_robust_mutex(&f->lock) != 0) {
        fail(err, errlen, "GPUFUSE_SIM_STATE=%s: cannot make a process-shared robust mutex",
             path);
        goto out;
    }
    for (int i = 0; i < ndev; i++) {
        fill_device(&f->devs[i], models[i], path, (unsigned)i);
        if (init_robust_mutex(&f->devs[i].run_lock) != 0) {
            fail(err, errlen, "GPUFUSE_SIM_STATE=%s: cannot make a process-shared robust mutex",
                 path);
            goto out;
        }
    }
    if (link(tmp, path) == 0) {
        rc = 0;
    } else if (errno == EEXIST) {
        rc = 1;
    } else {
        fail(err, errlen, "GPUFUSE_SIM_STATE=%s: cannot link %s into place: %s", path, tmp,
             strerror(errno));
    }
out:
    if (f != MAP_FAILED) munmap(f, sizeof *f);
    close(fd);
    unlink(tmp);
    return rc;
}

/* Maps an existing state file and checks that it is one of ours, of this layout. */
static int map_file(const char *path, struct sim_file **out, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 1 : fail(err, errlen, "GPUFUSE_SIM_STATE=%s: cannot "
                                                  "open: %s", path, strerror(errno));
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) != 0) {
        fail(err, errlen, "GPUFUSE_SIM_STATE=%s: fstat: %s", path, strerror(errno));
        goto out;
    }
    if ((size_t)st.st_size < offsetof(struct sim_file, spec)) {
        fail(err, errlen,
             "GPUFUSE_SIM_STATE=%s: not a gpufuse sim state file (%lld bytes); delete it or "
             "choose another path",
             path, (long long)st.st_size);
        goto out;
    }
    struct sim_file *f = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (f == MAP_FAILED) {
        fail(err, errlen, "GPUFUSE_SIM_STATE=%s: mmap: %s", path, strerror(errno));
        goto out;
    }
    if (f->magic != SIM_MAGIC) {
        fail(err, errlen,
             "GPUFUSE_SIM_STATE=%s: not a gpufuse sim state file (bad magic); delete it or "
             "choose another path",
             path);
    } else if (f->major != SIM_MAJOR || f->size != sizeof *f || (size_t)st.st_size != sizeof *f ||
               f->mutex_size != sizeof(pthread_mutex_t) || f->ndev > GF_SIM_MAX_DEVICES) {
        fail(err, errlen,
             "GPUFUSE_SIM_STATE=%s: made by another gpufuse version (layout %u.%u, %u bytes; "
             "this build uses %u.%u, %zu bytes); delete the file or choose another path",
             path, f->major, f->minor, f->size, SIM_MAJOR, SIM_MINOR, sizeof *f);
    } else {
        *out = f;
        rc = 0;
    }
    if (rc != 0) munmap(f, (size_t)st.st_size);
out:
    close(fd);
    return rc;
}

static int state_path(char *buf, size_t len)
{
    const char *p = getenv("GPUFUSE_SIM_STATE");
    if (p && *p) return snprintf(buf, len, "%s", p) < (int)len ? 0 : -1;
    return snprintf(buf, len, "/dev/shm/gpufuse-sim-%u", (unsigned)getuid()) < (int)len ? 0 : -1;
}

int gf_simstate_open(gf_simstate **out, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (state_path(path, sizeof path) != 0)
        return fail(err, errlen, "GPUFUSE_SIM_STATE: path longer than %d bytes", PATH_MAX - 1);

    pthread_mutex_lock(&open_lock);
    int rc = -1;
    gf_simstate *s = NULL;
    for (int i = 0; i < SIM_MAX_OPEN; i++)
        if (opened[i] && !strcmp(opened[i]->path, path)) {
            /* Registers a forked child on its first call; a no-op otherwise. */
            table_lock(opened[i]);
            struct sim_proc *me = self_proc(opened[i]);
            table_unlock(opened[i]);
            if (!me) {
                fail(err, errlen,
                     "GPUFUSE_SIM_STATE=%s: all %d process slots are held by live processes",
                     path, GF_SIM_MAX_PROCS);
                goto out;
            }
            *out = opened[i];
            rc = 0;
            goto out;
        }

    const char *gpus_env = getenv("GPUFUSE_SIM_GPUS");
    const char *gpus = gpus_env && *gpus_env ? gpus_env : "H100";
    const gf_gpu_model *models[GF_SIM_MAX_DEVICES];
    char spec[SIM_SPEC_LEN];
    int ndev = parse_gpus(gpus, models, spec, sizeof spec, err, errlen);
    if (ndev < 0) goto out;

    struct sim_file *f = NULL;
    for (int attempt = 0; attempt < 3 && !f; attempt++) {
        int m = map_file(path, &f, err, errlen);
        if (m < 0) goto out;
        if (m == 0) break;
        if (create_file(path, models, ndev, spec, err, errlen) < 0) goto out;
        /* Created by us or by a concurrent process: either way it is complete now. */
    }
    if (!f) {
        fail(err, errlen, "GPUFUSE_SIM_STATE=%s: file keeps disappearing while opening it", path);
        goto out;
    }
    /* A process that names no GPUs takes the file as it is; one that does must match it. */
    if (gpus_env && *gpus_env && strcmp(f->spec, spec) != 0) {
        fail(err, errlen,
             "GPUFUSE_SIM_STATE=%s holds %s but GPUFUSE_SIM_GPUS=\"%s\" asks for %s; delete the "
             "file, set GPUFUSE_SIM_GPUS to match, or choose another GPUFUSE_SIM_STATE",
             path, f->spec, gpus_env, spec);
        munmap(f, sizeof *f);
        goto out;
    }

    int free_slot = -1;
    for (int i = 0; i < SIM_MAX_OPEN && free_slot < 0; i++)
        if (!opened[i]) free_slot = i;
    s = calloc(1, sizeof *s);
    if (!s || free_slot < 0) {
        fail(err, errlen, "GPUFUSE_SIM_STATE=%s: %s", path,
             s ? "too many different state files opened by one process" : "out of memory");
        munmap(f, sizeof *f);
        free(s);
        goto out;
    }
    s->f = f;
    snprintf(s->path, sizeof s->path, "%s", path);
    s->slot = -1;
    table_lock(s);
    struct sim_proc *me = self_proc(s);
    table_unlock(s);
    if (!me) {
        fail(err, errlen,
             "GPUFUSE_SIM_STATE=%s: all %d process slots are held by live processes", path,
             GF_SIM_MAX_PROCS);
        munmap(f, sizeof *f);
        free(s);
        goto out;
    }
    opened[free_slot] = s;
    *out = s;
    rc = 0;
out:
    pthread_mutex_unlock(&open_lock);
    return rc;
}

unsigned gf_simstate_device_count(const gf_simstate *s)
{
    return s ? s->f->ndev : 0;
}

const gf_sim_device_info *gf_simstate_device(const gf_simstate *s, unsigned dev)
{
    if (!s || dev >= s->f->ndev) return NULL;
    return &s->f->devs[dev].info;
}

/* ---- memory -------------------------------------------------------------------------------- */

static uint64_t used_total(const struct sim_file *f, unsigned dev)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < GF_SIM_MAX_PROCS; i++)
        if (f->procs[i].pid) sum += f->procs[i].used[dev];
    return sum;
}

int gf_simstate_mem_reserve(gf_simstate *s, unsigned dev, uint64_t bytes)
{
    if (!s || dev >= s->f->ndev) return -1;
    uint64_t total = s->f->devs[dev].info.total_bytes;
    int rc = -1;
    table_lock(s);
    struct sim_proc *me = self_proc(s);
    if (!me) goto out;
    uint64_t used = used_total(s->f, dev);
    if (used > total || bytes > total - used) {
        reclaim_dead(s->f, s->pid);
        used = used_total(s->f, dev);
    }
    if (used <= total && bytes <= total - used) {
        me->used[dev] += bytes;
        rc = 0;
    }
out:
    table_unlock(s);
    return rc;
}

void gf_simstate_mem_release(gf_simstate *s, unsigned dev, uint64_t bytes)
{
    if (!s || dev >= s->f->ndev) return;
    table_lock(s);
    struct sim_proc *me = self_proc(s);
    if (me) me->used[dev] -= bytes < me->used[dev] ? bytes : me->used[dev];
    table_unlock(s);
}

void gf_simstate_mem_info(gf_simstate *s, unsigned dev, uint64_t *free_bytes,
                          uint64_t *total_bytes)
{
    uint64_t total = 0, used = 0;
    if (s && dev < s->f->ndev) {
        total = s->f->devs[dev].info.total_bytes;
        table_lock(s);
        reclaim_dead(s->f, getpid());
        used = used_total(s->f, dev);
        table_unlock(s);
    }
    if (free_bytes) *free_bytes = used < total ? total - used : 0;
    if (total_bytes) *total_bytes = total;
}

/* ---- time-slicing and busy time ------------------------------------------------------------ */

/* Appends [start, end] for pid to dev's ring, merging with the previous interval of the same
 * process when they touch (back-to-back kernels), so the ring covers more time. Table lock held. */
static void ring_push(struct sim_dev *d, pid_t pid, uint64_t start, uint64_t end)
{
    if (end < start) end = start;
    if (d->ring_used) {
        struct sim_busy *last = &d->ring[(d->ring_next + SIM_RING - 1) % SIM_RING];
        if (last->pid == pid && start <= last->end_ns && end >= last->start_ns) {
            if (start < last->start_ns) last->start_ns = start;
            if (end > last->end_ns) last->end_ns = end;
            return;
        }
    }
    struct sim_busy *b = &d->ring[d->ring_next];
    b->pid = pid;
    b->start_ns = start;
    b->end_ns = end;
    d->ring_next = (d->ring_next + 1) % SIM_RING;
    if (d->ring_used < SIM_RING) d->ring_used++;
}

void gf_simstate_device_acquire(gf_simstate *s, unsigned dev)
{
    if (!s || dev >= s->f->ndev) return;
    struct sim_dev *d = &s->f->devs[dev];
    int owner_died = robust_lock(&d->run_lock, "sim device lock");
    uint64_t now = gf_sim_now_ns();
    table_lock(s);
    if (owner_died && d->run_pid) {
        /* The holder died inside its kernel: that kernel is over now. */
        ring_push(d, d->run_pid, d->run_start_ns, now);
        gf_log(GF_LOG_INFO, "sim", "device %u: pid %d died while running a kernel", dev,
               (int)d->run_pid);
    }
    self_proc(s);
    d->run_pid = getpid();
    d->run_start_ns = now;
    table_unlock(s);
}

void gf_simstate_device_release(gf_simstate *s, unsigned dev, uint64_t start_ns, uint64_t end_ns)
{
    if (!s || dev >= s->f->ndev) return;
    struct sim_dev *d = &s->f->devs[dev];
    table_lock(s);
    pid_t self = getpid();
    ring_push(d, self, start_ns, end_ns);
    if (d->run_pid == self) {
        d->run_pid = 0;
        d->run_start_ns = 0;
    }
    table_unlock(s);
    pthread_mutex_unlock(&d->run_lock);
}

static uint64_t overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
    uint64_t lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
    return hi > lo ? hi - lo : 0;
}

/* The interval of the kernel running now, if its process is alive. Table lock held. */
static int running_interval(const struct sim_file *f, const struct sim_dev *d, uint64_t now,
                            uint64_t *start)
{
    if (!d->run_pid) return 0;
    for (unsigned i = 0; i < GF_SIM_MAX_PROCS; i++) {
        const struct sim_proc *p = &f->procs[i];
        if (p->pid == d->run_pid) {
            if (proc_dead(p)) return 0;
            *start = d->run_start_ns;
            return *start <= now;
        }
    }
    return 0;
}

double gf_simstate_utilization(gf_simstate *s, unsigned dev, uint64_t window_ns)
{
    if (!s || dev >= s->f->ndev || window_ns == 0) return 0.0;
    const struct sim_dev *d = &s->f->devs[dev];
    uint64_t now = gf_sim_now_ns();
    uint64_t lo = now > window_ns ? now - window_ns : 0;
    uint64_t busy = 0, start;
    table_lock(s);
    for (uint32_t i = 0; i < d->ring_used; i++)
        busy += overlap(d->ring[i].start_ns, d->ring[i].end_ns, lo, now);
    if (running_interval(s->f, d, now, &start)) busy += overlap(start, now, lo, now);
    table_unlock(s);
    double u = (double)busy / (double)window_ns;
    return u < 0.0 ? 0.0 : u > 1.0 ? 1.0 : u;
}

unsigned gf_simstate_processes(gf_simstate *s, unsigned dev, uint64_t window_ns,
                               gf_sim_proc_usage *out, unsigned max)
{
    if (!s || dev >= s->f->ndev) return 0;
    const struct sim_dev *d = &s->f->devs[dev];
    uint64_t now = gf_sim_now_ns();
    uint64_t lo = now > window_ns ? now - window_ns : 0;
    unsigned n = 0;
    table_lock(s);
    reclaim_dead(s->f, getpid());
    uint64_t run_start = 0;
    int running = running_interval(s->f, d, now, &run_start);
    for (unsigned i = 0; i < GF_SIM_MAX_PROCS; i++) {
        const struct sim_proc *p = &s->f->procs[i];
        if (!p->pid) continue;
        uint64_t busy = 0, last = 0;
        for (uint32_t k = 0; k < d->ring_used; k++) {
            const struct sim_busy *b = &d->ring[k];
            if (b->pid != p->pid) continue;
            uint64_t o = overlap(b->start_ns, b->end_ns, lo, now);
            if (o == 0) continue;
            busy += o;
            if (b->end_ns > last) last = b->end_ns < now ? b->end_ns : now;
        }
        if (running && d->run_pid == p->pid) {
            busy += overlap(run_start, now, lo, now);
            last = now;
        }
        if (busy > window_ns) busy = window_ns;
        if (!p->used[dev] && !busy) continue;
        if (n < max && out) {
            out[n].pid = p->pid;
            out[n].used_bytes = p->used[dev];
            out[n].busy_ns_window = busy;
            out[n].last_busy_ns = last;
        }
        n++;
    }
    table_unlock(s);
    return n;
}

/* For tests only (declared by tests/unit/test_simstate.c, in no header): overwrites the start
 * time recorded for pid, to fake a pid that was reused by another process. Returns 0, or -1 when
 * pid has no slot. */
int gf_simstate__test_set_start_time(gf_simstate *s, pid_t pid, uint64_t start_time)
{
    int rc = -1;
    table_lock(s);
    for (unsigned i = 0; i < GF_SIM_MAX_PROCS; i++)
        if (s->f->procs[i].pid == pid) {
            s->f->procs[i].start_time = start_time;
            rc = 0;
        }
    table_unlock(s);
    return rc;
}
