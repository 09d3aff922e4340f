/* SPDX-License-Identifier: Apache-2.0 */
/* The node agent's loop: register this node's GPUs, heartbeat with usage, keep the vGPU shared
 * regions of the allocations the server placed here, and retry through server restarts. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "gpufuse/http_client.h"
#include "gpufuse/limiter.h"
#include "gpufuse/log.h"
#include "gpufuse/prom.h"

#ifndef GPUFUSE_VERSION
#define GPUFUSE_VERSION "0.1.0"
#endif

#define MAX_REGIONS 256

/* A vGPU region this agent created for a workload with allocations on this node. */
typedef struct region {
    char workload[GF_LIMITER_NAME_MAX];
    unsigned nslots;
    char alloc_ids[GF_LIMITER_MAX_DEVICES][160]; /* slot -> allocation id */
    int seen;                                    /* in the latest heartbeat answer */
} region;

/* A vGPU slot's counters as last read from its region, for /metrics. */
typedef struct vgpu_snap {
    char workload[GF_LIMITER_NAME_MAX];
    char alloc_id[160];
    unsigned slot;
    gf_limiter_dev_stats st;
    unsigned procs;
} vgpu_snap;

#define MAX_VSNAP 512

typedef struct agent {
    const gf_agent_config *cfg;
    char node[64];
    gf_http_client *http;
    gf_agent_nvml *nvml;
    gf_agent_gpu gpus[GF_AGENT_MAX_GPUS];
    unsigned n_gpus;
    uint64_t interval_ms;
    region regions[MAX_REGIONS];
    unsigned n_regions;
    /* for /metrics (read by the HTTP thread) */
    pthread_mutex_t mlock;
    gf_agent_gpu snap[GF_AGENT_MAX_GPUS];
    unsigned n_snap;
    vgpu_snap vsnap[MAX_VSNAP];
    unsigned n_vsnap, n_regions_snap;
    uint64_t heartbeats_ok, heartbeats_failed, registrations;
    int registered;
    int hb_refused;          /* the last heartbeat got 401/403 (logged once per episode) */
    struct MHD_Daemon *mhd;
    /* the node's gpufuse worker (--worker-listen): remote vGPUs */
    pid_t worker_pid;            /* 0 = not running */
    char worker_addr[256];       /* its bound address, kept across restarts */
    char address[300];           /* what registration reports */
    char exe[PATH_MAX];          /* this binary, read at start (a rebuild leaves "(deleted)") */
    uint64_t worker_restarts, worker_next_ms, worker_backoff_ms;
    char *tokens_written;        /* the worker's allocation token table as last written */
} agent;

static void sleep_ms(uint64_t ms, volatile sig_atomic_t *stop)
{
    while (ms && !*stop) {
        uint64_t step = ms > 100 ? 100 : ms;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* ---- talking to the server ----------------------------------------------------------------- */

/* POSTs body; returns the HTTP status (0 on a transport failure, logged) and the answer. */
static long post(agent *a, const char *path, const char *body, json_t **answer)
{
    char err[1024];
    long status = 0;
    char *resp = NULL;
    if (answer) *answer = NULL;
    if (gf_http_request(a->http, "POST", path, body, &status, &resp, err, sizeof err) != GF_OK) {
        gf_log(GF_LOG_WARN, "agent", "%s", err);
        return 0;
    }
    json_t *v = json_loads(resp, 0, NULL);
    if (status >= 300) {
        const char *msg = json_string_value(json_object_get(v, "error"));
        gf_log(GF_LOG_WARN, "agent", "POST %s: the server answered %ld: %s", path, status,
               msg ? msg : resp);
    }
    free(resp);
    if (answer) *answer = v;
    else json_decref(v);
    return status;
}

static char *register_body(agent *a)
{
    json_t *o = json_pack("{s:s,s:s}", "name", a->node, "agent_version", GPUFUSE_VERSION);
    if (a->cfg->pool) json_object_set_new(o, "pool", json_string(a->cfg->pool));
    if (a->address[0]) json_object_set_new(o, "address", json_string(a->address));
    json_t *labels = json_object();
    for (unsigned i = 0; i < a->cfg->n_labels; i++) {
        char k[128];
        const char *eq = strchr(a->cfg->labels[i], '=');
        snprintf(k, sizeof k, "%.*s", (int)(eq - a->cfg->labels[i]), a->cfg->labels[i]);
        json_object_set_new(labels, k, json_string(eq + 1));
    }
    json_object_set_new(o, "labels", labels);
    json_t *gpus = json_array();
    for (unsigned i = 0; i < a->n_gpus; i++) {
        const gf_agent_gpu *g = &a->gpus[i];
        json_t *gj = json_pack("{s:s,s:i,s:s,s:I}", "uuid", g->uuid, "index", (int)g->index,
                               "model", g->name, "vram_bytes", (json_int_t)g->vram_total);
        if (g->tflops > 0) json_object_set_new(gj, "tflops", json_real(g->tflops));
        json_array_append_new(gpus, gj);
    }
    json_object_set_new(o, "gpus", gpus);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* Registers; returns 0 on success, 1 on a refusal that retrying cannot fix, -1 to retry. */
static int do_register(agent *a)
{
    char *body = register_body(a);
    json_t *ans = NULL;
    long st = post(a, "/api/v1/nodes/register", body, &ans);
    free(body);
    int rc = -1;
    if (st == 200 || st == 201) {
        json_int_t hb = json_integer_value(json_object_get(ans, "heartbeat_interval_ms"));
        a->interval_ms = a->cfg->interval_ms ? a->cfg->interval_ms
                         : hb > 0            ? (uint64_t)hb
                                             : 5000;
        gf_log(GF_LOG_INFO, "agent", "registered node %s with %u GPU(s); heartbeat every %llu ms",
               a->node, a->n_gpus, (unsigned long long)a->interval_ms);
        pthread_mutex_lock(&a->mlock);
        a->registrations++;
        a->registered = 1;
        pthread_mutex_unlock(&a->mlock);
        rc = 0;
    } else if (st == 400 || st == 401 || st == 403 || st == 409) {
        const char *msg = json_string_value(json_object_get(ans, "error"));
        fprintf(stderr, "gpufuse agent: the server refused node %s (%ld): %s\n", a->node, st,
                msg ? msg : "no message");
        rc = 1;
    }
    json_decref(ans);
    return rc;
}

/* ---- vGPU regions (the limiter's shared memory) ----------------------------------------------- */

static double gpu_tflops(agent *a, const char *uuid)
{
    for (unsigned i = 0; i < a->n_gpus; i++)
        if (!strcmp(a->gpus[i].uuid, uuid)) return a->gpus[i].tflops;
    return 0;
}

static region *find_region(agent *a, const char *wl)
{
    for (unsigned i = 0; i < a->n_regions; i++)
        if (!strcmp(a->regions[i].workload, wl)) return &a->regions[i];
    return NULL;
}

/* The names of the regions this agent made live in a file next to them
 * ($GPUFUSE_SHM_DIR/gpufuse-agent-<node>.regions, tmpfs like the regions), so that an agent
 * restarted after a crash still removes the regions of workloads deleted meanwhile, and never
 * touches regions it did not make (gpufuse run's own). */
static void regions_path(agent *a, char *buf, size_t len)
{
    const char *dir = getenv("GPUFUSE_SHM_DIR");
    snprintf(buf, len, "%s/gpufuse-agent-%s.regions", dir && *dir ? dir : "/dev/shm", a->node);
}

static void regions_save(agent *a)
{
    char path[4096], tmp[4200];
    regions_path(a, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    for (unsigned i = 0; i < a->n_regions; i++) fprintf(f, "%s\n", a->regions[i].workload);
    if (fclose(f) == 0) rename(tmp, path);
}

/* Regions from a previous run: known by name, slots filled at the first heartbeat. */
static void regions_load(agent *a)
{
    char path[4096], line[256];
    regions_path(a, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (a->n_regions < MAX_REGIONS && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || strlen(line) >= GF_LIMITER_NAME_MAX) continue;
        region *r = &a->regions[a->n_regions++];
        memset(r, 0, sizeof *r);
        snprintf(r->workload, sizeof r->workload, "%.63s", line);
    }
    fclose(f);
}

/* Creates the shared region of each workload placed here (slots in slot order) and removes the
 * regions of workloads that are gone. A local process attaches to the region (GPUFUSE_VGPU);
 * a remote client reaches it through this node's worker, whose session joins it by name (the
 * HELLO's allocation id is the workload's name): remote and local allocations alike. */
static void sync_regions(agent *a, json_t *allocs)
{
    char err[512];
    int changed = 0;
    for (unsigned i = 0; i < a->n_regions; i++) a->regions[i].seen = 0;
    size_t i;
    json_t *al;
    json_array_foreach(allocs, i, al) {
        const char *wl = json_string_value(json_object_get(al, "workload"));
        const char *id = json_string_value(json_object_get(al, "id"));
        if (!wl || !id) continue;
        if (strlen(wl) >= GF_LIMITER_NAME_MAX) continue;
        region *r = find_region(a, wl);
        if (r && r->nslots) {
            r->seen = 1;
            continue;
        }
        if (!r) {
            if (a->n_regions == MAX_REGIONS) continue;
            r = &a->regions[a->n_regions++];
            memset(r, 0, sizeof *r);
            snprintf(r->workload, sizeof r->workload, "%s", wl);
        }
        r->seen = 1;
        /* Every allocation of this workload on this node is a slot, in slot order (the
         * answer is sorted by id, and "w-10" sorts before "w-2"). */
        json_t *mine[GF_LIMITER_MAX_DEVICES];
        unsigned nmine = 0;
        size_t j;
        json_t *b;
        json_array_foreach(allocs, j, b) {
            const char *w2 = json_string_value(json_object_get(b, "workload"));
            if (!w2 || strcmp(w2, wl) || nmine == GF_LIMITER_MAX_DEVICES) continue;
            json_int_t sl = json_integer_value(json_object_get(b, "slot"));
            unsigned k = nmine++;
            for (; k > 0 && json_integer_value(json_object_get(mine[k - 1], "slot")) > sl; k--)
                mine[k] = mine[k - 1];
            mine[k] = b;
        }
        gf_limiter_config cfg = {0};
        unsigned n = 0;
        for (unsigned m = 0; m < nmine; m++) {
            b = mine[m];
            double cap = gpu_tflops(a, json_string_value(json_object_get(b, "gpu_uuid")));
            double lim = json_number_value(json_object_get(b, "tflops_limit"));
            cfg.vram_limit[n] = (uint64_t)json_integer_value(json_object_get(b, "vram_limit"));
            cfg.compute_fraction[n] = cap > 0 && lim > 0 && lim < cap ? lim / cap : 0;
            snprintf(r->alloc_ids[n], sizeof r->alloc_ids[n], "%s",
                     json_string_value(json_object_get(b, "id")));
            n++;
        }
        if (gf_limiter_create(wl, &cfg, 0, err, sizeof err) != GF_OK) {
            gf_log(GF_LOG_WARN, "agent", "workload %s: cannot create its vGPU region: %s", wl,
                   err);
            continue;
        }
        r->nslots = n;
        changed = 1;
        gf_log(GF_LOG_INFO, "agent", "workload %s: vGPU region with %u slot(s) ready", wl, n);
    }
    for (unsigned k = 0; k < a->n_regions;) {
        if (a->regions[k].seen) {
            k++;
            continue;
        }
        gf_limiter_unlink(a->regions[k].workload);
        gf_log(GF_LOG_INFO, "agent", "workload %s: released; vGPU region removed",
               a->regions[k].workload);
        a->regions[k] = a->regions[--a->n_regions];
        changed = 1;
    }
    if (changed) regions_save(a);
}

/* ---- the worker's allocation token table ------------------------------------------------------ */

/* $GPUFUSE_SHM_DIR/gpufuse-agent-<node>.worker-tokens: "WORKLOAD SHA256" per workload placed
 * here ("-" for one made before worker tokens), from the server's heartbeat answer. The worker
 * (--allocation-tokens: the agent's own, or one the operator runs next to it) reads it at every
 * HELLO: a client must show the token whose hash is its workload's line. Hashes only, written
 * 0600 all the same. Kept with or without --worker-listen. */
static void tokens_path(agent *a, char *buf, size_t len)
{
    const char *dir = getenv("GPUFUSE_SHM_DIR");
    snprintf(buf, len, "%s/gpufuse-agent-%s.worker-tokens", dir && *dir ? dir : "/dev/shm",
             a->node);
}

/* Replaces the table with text (atomically: readers see the old or the new one). 0, or -1. */
static int tokens_write(agent *a, const char *text)
{
    char path[4096], tmp[4200];
    tokens_path(a, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* A fresh file of ours (the directory is shared, /dev/shm): never through a link. */
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    size_t n = strlen(text), off = 0;
    int ok = 1;
    while (ok && off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        ok = w > 0;
        if (ok) off += (size_t)w;
    }
    if (close(fd) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Before the worker starts: an empty table unless an earlier agent left one (kept until the
 * first heartbeat answer, so that its sessions' clients can still connect meanwhile). */
static int tokens_init(agent *a, char *err, size_t errlen)
{
    char path[4096], old[65536];
    size_t n = 0;
    tokens_path(a, path, sizeof path);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid()) {
        ssize_t r;
        while (n < sizeof old - 1 && (r = read(fd, old + n, sizeof old - 1 - n)) > 0)
            n += (size_t)r;
    }
    if (fd >= 0) close(fd);
    old[n] = 0;
    if (tokens_write(a, old) == 0) return 0;
    snprintf(err, errlen, "cannot write the worker's token table %.900s: %s", path, strerror(errno));
    return -1;
}

/* Rewrites the table from a heartbeat answer's allocations when it changed. */
static void tokens_sync(agent *a, json_t *allocs)
{
    size_t cap = json_array_size(allocs) * (GF_LIMITER_NAME_MAX + 70) + 1, len = 0;
    char *text = malloc(cap);
    if (!text) return;
    text[0] = 0;
    size_t i;
    json_t *al;
    json_array_foreach(allocs, i, al) {
        const char *wl = json_string_value(json_object_get(al, "workload"));
        const char *h = json_string_value(json_object_get(al, "worker_token_sha256"));
        if (!wl || strlen(wl) >= GF_LIMITER_NAME_MAX || strchr(wl, ' ') || strchr(wl, '\n'))
            continue;
        if (!h || strlen(h) != 64 || strspn(h, "0123456789abcdef") != 64) h = "-";
        size_t wn = strlen(wl);
        int dup = 0; /* one line per workload (a workload may have several GPUs here) */
        for (const char *p = text; *p && !dup; p = strchr(p, '\n') + 1)
            dup = !strncmp(p, wl, wn) && p[wn] == ' ';
        if (!dup) len += (size_t)snprintf(text + len, cap - len, "%s %s\n", wl, h);
    }
    if (a->tokens_written && !strcmp(a->tokens_written, text)) {
        free(text);
        return;
    }
    if (tokens_write(a, text) != 0) {
        gf_log(GF_LOG_WARN, "agent", "cannot write the worker's token table: %s; will retry",
               strerror(errno));
        free(text);
        return;
    }
    free(a->tokens_written);
    a->tokens_written = text;
}

/* The per-vGPU usage the limiter's regions hold. */
static json_t *vgpu_usage(agent *a)
{
    json_t *arr = json_array();
    unsigned nv = 0;
    pthread_mutex_lock(&a->mlock);
    for (unsigned i = 0; i < a->n_regions; i++) {
        region *r = &a->regions[i];
        gf_limiter *l = NULL;
        char err[256];
        if (!r->nslots || gf_limiter_open_observer(r->workload, &l, err, sizeof err) != GF_OK)
            continue;
        unsigned procs = gf_limiter_live_procs(l);
        for (unsigned s = 0; s < r->nslots; s++) {
            gf_limiter_dev_stats st;
            if (gf_limiter_stats(l, s, &st) != GF_OK) continue;
            if (nv < MAX_VSNAP) {
                vgpu_snap *v = &a->vsnap[nv++];
                memcpy(v->workload, r->workload, sizeof v->workload);
                memcpy(v->alloc_id, r->alloc_ids[s], sizeof v->alloc_id);
                v->slot = s;
                v->st = st;
                v->procs = procs;
            }
            json_array_append_new(arr, json_pack("{s:s,s:I,s:I,s:I}", "allocation",
                                                 r->alloc_ids[s], "vram_used",
                                                 (json_int_t)st.vram_used, "busy_ns",
                                                 (json_int_t)st.busy_ns, "throttled_ns",
                                                 (json_int_t)st.throttled_ns));
        }
        gf_limiter_close(l);
    }
    a->n_vsnap = nv;
    a->n_regions_snap = a->n_regions;
    pthread_mutex_unlock(&a->mlock);
    return arr;
}

static char *usage_body(agent *a)
{
    json_t *gpus = json_array();
    for (unsigned i = 0; i < a->n_gpus; i++) {
        const gf_agent_gpu *g = &a->gpus[i];
        json_t *gj = json_pack("{s:s,s:I,s:f}", "uuid", g->uuid, "vram_used",
                               (json_int_t)g->vram_used, "utilization", g->utilization);
        if (g->temperature_c >= 0) json_object_set_new(gj, "temperature_c", json_integer(g->temperature_c));
        if (g->power_mw >= 0) json_object_set_new(gj, "power_mw", json_integer(g->power_mw));
        json_array_append_new(gpus, gj);
    }
    json_t *o = json_pack("{s:o,s:o}", "gpus", gpus, "vgpus", vgpu_usage(a));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* One heartbeat with usage. Returns 0 ok, 1 when the server forgot this node (re-register),
 * -1 on failure. */
static int heartbeat(agent *a)
{
    char path[256];
    snprintf(path, sizeof path, "/api/v1/nodes/%s/heartbeat", a->node);
    gf_agent_nvml_sample(a->nvml, a->gpus, a->n_gpus);
    pthread_mutex_lock(&a->mlock);
    memcpy(a->snap, a->gpus, sizeof a->gpus);
    a->n_snap = a->n_gpus;
    pthread_mutex_unlock(&a->mlock);
    char *body = usage_body(a);
    json_t *ans = NULL;
    long st = post(a, path, body, &ans);
    free(body);
    int rc = -1;
    if (st == 200) {
        sync_regions(a, json_object_get(ans, "allocations"));
        tokens_sync(a, json_object_get(ans, "allocations"));
        rc = 0;
    } else if (st == 404) {
        rc = 1;
    } else if ((st == 401 || st == 403) && !a->hb_refused) {
        /* say why once (a token revoked when the node was removed: gpufuse rm node) */
        const char *msg = json_string_value(json_object_get(ans, "error"));
        gf_log(GF_LOG_WARN, "agent", "the server refused the heartbeat of node %s (%ld): %s",
               a->node, st, msg ? msg : "no message");
    }
    a->hb_refused = st == 401 || st == 403;
    json_decref(ans);
    pthread_mutex_lock(&a->mlock);
    if (rc == 0) a->heartbeats_ok++;
    else a->heartbeats_failed++;
    if (rc == 1) a->registered = 0;
    pthread_mutex_unlock(&a->mlock);
    return rc;
}

/* ---- the node's worker (remote vGPUs) ---------------------------------------------------------- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* What the server tells clients: --address, else the worker's bound address with a wildcard
 * host (0.0.0.0, [::]) replaced by this machine's name. */
static void set_reported_address(agent *a)
{
    if (a->cfg->address) {
        snprintf(a->address, sizeof a->address, "%s", a->cfg->address);
        return;
    }
    a->address[0] = 0;
    if (!a->worker_addr[0]) return;
    const char *wild[] = {"://0.0.0.0:", "://[::]:"};
    for (unsigned i = 0; i < 2; i++) {
        const char *w = strstr(a->worker_addr, wild[i]);
        if (!w) continue;
        char host[128] = "localhost";
        gethostname(host, sizeof host - 1);
        snprintf(a->address, sizeof a->address, "%.*s://%s:%s", (int)(w - a->worker_addr),
                 a->worker_addr, host, w + strlen(wild[i]));
        return;
    }
    snprintf(a->address, sizeof a->address, "%s", a->worker_addr);
}

static void worker_ready_path(agent *a, char *buf, size_t len)
{
    const char *dir = getenv("GPUFUSE_SHM_DIR");
    snprintf(buf, len, "%s/gpufuse-agent-%s.worker", dir && *dir ? dir : "/dev/shm", a->node);
}

/* Starts `gpufuse worker` (this binary) on the worker address: the configured one the first
 * time, the address it bound since (a restart keeps the port clients were told). It dies with
 * the agent (PR_SET_PDEATHSIG), SIGKILL included. Waits until it listens; 0, or -1 with err. */
static int worker_start(agent *a, char *err, size_t errlen)
{
    char ready[4200];
    worker_ready_path(a, ready, sizeof ready);
    unlink(ready);
    if (!a->exe[0]) {
        ssize_t n = readlink("/proc/self/exe", a->exe, sizeof a->exe - 1);
        if (n <= 0) {
            snprintf(err, errlen, "cannot find this binary (/proc/self/exe): %s",
                     strerror(errno));
            return -1;
        }
        a->exe[n] = 0;
    }
    const char *exe = a->exe;
    const char *listen = a->worker_addr[0] ? a->worker_addr : a->cfg->worker_listen;
    char tokens[4096];
    tokens_path(a, tokens, sizeof tokens);
    const char *argv[16] = {"gpufuse", "worker", "--listen", listen, "--ready-file", ready,
                            "--allocation-tokens", tokens};
    unsigned k = 8;
    if (a->cfg->worker_token_file) {
        argv[k++] = "--token-file";
        argv[k++] = a->cfg->worker_token_file;
    }
    if (a->cfg->worker_tls_cert) {
        argv[k++] = "--tls-cert";
        argv[k++] = a->cfg->worker_tls_cert;
        argv[k++] = "--tls-key";
        argv[k++] = a->cfg->worker_tls_key;
    }
    argv[k] = NULL;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(exe, (char *const *)argv);
        static const char msg[] = "gpufuse agent: cannot run the worker: exec failed\n";
        if (write(2, msg, sizeof msg - 1) < 0) _exit(127);
        _exit(127);
    }
    a->worker_pid = pid;
    for (int i = 0; i < 200; i++) { /* 10 s */
        FILE *f = fopen(ready, "r");
        char line[256] = "";
        if (f) {
            if (!fgets(line, sizeof line, f)) line[0] = 0;
            fclose(f);
        }
        line[strcspn(line, "\r\n")] = 0;
        if (line[0]) {
            snprintf(a->worker_addr, sizeof a->worker_addr, "%s", line);
            return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            a->worker_pid = 0;
            snprintf(err, errlen, "gpufuse worker --listen %s exited (%s %d) before listening; "
                     "its messages are above", listen, WIFEXITED(st) ? "status" : "signal",
                     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            return -1;
        }
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    a->worker_pid = 0;
    snprintf(err, errlen, "gpufuse worker --listen %s did not listen within 10 s", listen);
    return -1;
}

/* Restarts the worker when it died (backoff from 0 doubling to 10 s while it keeps dying). */
static void worker_supervise(agent *a)
{
    if (!a->cfg->worker_listen) return;
    int st;
    if (a->worker_pid > 0 && waitpid(a->worker_pid, &st, WNOHANG) == a->worker_pid) {
        gf_log(GF_LOG_WARN, "agent", "the worker (pid %d) %s %d; restarting it on %s",
               (int)a->worker_pid, WIFEXITED(st) ? "exited with status" : "was killed by signal",
               WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), a->worker_addr);
        a->worker_pid = 0;
        a->worker_next_ms = mono_ms() + a->worker_backoff_ms;
        a->worker_backoff_ms = a->worker_backoff_ms ? a->worker_backoff_ms * 2 : 500;
        if (a->worker_backoff_ms > 10000) a->worker_backoff_ms = 10000;
    }
    if (a->worker_pid > 0 || mono_ms() < a->worker_next_ms) return;
    char err[512];
    if (worker_start(a, err, sizeof err) != 0) {
        gf_log(GF_LOG_WARN, "agent", "cannot restart the worker: %s", err);
        a->worker_next_ms = mono_ms() + 2000;
        return;
    }
    pthread_mutex_lock(&a->mlock);
    a->worker_restarts++;
    pthread_mutex_unlock(&a->mlock);
    gf_log(GF_LOG_INFO, "agent", "worker restarted (pid %d) on %s", (int)a->worker_pid,
           a->worker_addr);
}

static void worker_stop(agent *a)
{
    if (a->worker_pid <= 0) return;
    kill(a->worker_pid, SIGTERM);
    for (int i = 0; i < 100; i++) { /* 5 s, then SIGKILL */
        if (waitpid(a->worker_pid, NULL, WNOHANG) == a->worker_pid) {
            a->worker_pid = 0;
            return;
        }
        usleep(50000);
    }
    kill(a->worker_pid, SIGKILL);
    waitpid(a->worker_pid, NULL, 0);
    a->worker_pid = 0;
}

/* Sleeps ms in 100 ms steps, restarting the worker in between when it died. */
static void wait_ms(agent *a, uint64_t ms, volatile sig_atomic_t *stop)
{
    while (ms && !*stop) {
        uint64_t step = ms > 100 ? 100 : ms;
        sleep_ms(step, stop);
        ms -= step;
        worker_supervise(a);
    }
}

/* ---- /metrics ----------------------------------------------------------------------------------- */

/* Per vGPU slot, straight from the limiter's region (under mlock). */
static void write_vgpus(agent *a, gf_prom_buf *b)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"gpufuse_vgpu_vram_used_bytes", "gauge", "VRAM charged to the vGPU by live processes"},
        {"gpufuse_vgpu_vram_limit_bytes", "gauge", "The vGPU's VRAM limit (0 = none)"},
        {"gpufuse_vgpu_compute_limit_ratio", "gauge",
         "The vGPU's compute limit as a fraction of its GPU (0 = none)"},
        {"gpufuse_vgpu_busy_seconds_total", "counter", "GPU time the vGPU's kernels used"},
        {"gpufuse_vgpu_throttled_seconds_total", "counter",
         "Time the vGPU's launches waited for its compute limit"},
        {"gpufuse_vgpu_refused_allocations_total", "counter",
         "Allocations refused because they would pass the VRAM limit"},
        {"gpufuse_vgpu_launches_total", "counter", "Kernel launches through the client library"},
        {"gpufuse_vgpu_processes", "gauge", "Live processes attached to the vGPU"},
    };
    char l[768], node[160], wl[160], id[200];
    gf_prom_escape(a->node, node, sizeof node);
    for (unsigned f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        gf_prom_family(b, fam[f].name, fam[f].type, fam[f].help);
        for (unsigned i = 0; i < a->n_vsnap; i++) {
            const vgpu_snap *v = &a->vsnap[i];
            gf_prom_escape(v->workload, wl, sizeof wl);
            gf_prom_escape(v->alloc_id, id, sizeof id);
            snprintf(l, sizeof l, "node=\"%s\",workload=\"%s\",allocation=\"%s\",slot=\"%u\"",
                     node, wl, id, v->slot);
            double x = f == 0   ? (double)v->st.vram_used
                       : f == 1 ? (double)v->st.vram_limit
                       : f == 2 ? v->st.compute_fraction
                       : f == 3 ? (double)v->st.busy_ns / 1e9
                       : f == 4 ? (double)v->st.throttled_ns / 1e9
                       : f == 5 ? (double)v->st.refused_allocs
                       : f == 6 ? (double)v->st.launches
                                : (double)v->procs;
            gf_prom_sample(b, fam[f].name, l, x);
        }
    }
}

static enum MHD_Result on_metrics(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    agent *a = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    gf_prom_buf b = {0};
    unsigned code = 200;
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        code = 405;
        gf_prom_printf(&b, "use GET\n");
    } else if (!strcmp(url, "/healthz")) {
        gf_prom_printf(&b, "ok\n");
    } else if (strcmp(url, "/metrics")) {
        code = 404;
        gf_prom_printf(&b, "only /metrics and /healthz here\n");
    } else {
        char l[1024], e1[192], e2[192], en[160];
        pthread_mutex_lock(&a->mlock);
        static const struct {
            const char *name, *help;
        } fam[] = {
            {"gpufuse_gpu_vram_total_bytes", "GPU memory"},
            {"gpufuse_gpu_vram_used_bytes", "GPU memory in use (NVML)"},
            {"gpufuse_gpu_utilization_ratio", "GPU busy fraction over NVML's last sample period"},
            {"gpufuse_gpu_temperature_celsius", "GPU temperature"},
            {"gpufuse_gpu_power_watts", "GPU power draw"},
        };
        for (unsigned f = 0; f < 5; f++) {
            gf_prom_family(&b, fam[f].name, "gauge", fam[f].help);
            for (unsigned i = 0; i < a->n_snap; i++) {
                const gf_agent_gpu *g = &a->snap[i];
                gf_prom_escape(g->uuid, e1, sizeof e1);
                gf_prom_escape(g->name, e2, sizeof e2);
                gf_prom_escape(a->node, en, sizeof en);
                snprintf(l, sizeof l, "node=\"%s\",gpu=\"%u\",uuid=\"%s\",model=\"%s\"", en,
                         g->index, e1, e2);
                double v = f == 0   ? (double)g->vram_total
                           : f == 1 ? (double)g->vram_used
                           : f == 2 ? g->utilization / 100.0
                           : f == 3 ? (double)g->temperature_c
                                    : (double)g->power_mw / 1000.0;
                if ((f == 3 && g->temperature_c < 0) || (f == 4 && g->power_mw < 0)) continue;
                gf_prom_sample(&b, fam[f].name, l, v);
            }
        }
        gf_prom_family(&b, "gpufuse_agent_heartbeats_total", "counter",
                          "Heartbeats sent to the server, by result");
        gf_prom_sample(&b, "gpufuse_agent_heartbeats_total", "result=\"ok\"",
                          (double)a->heartbeats_ok);
        gf_prom_sample(&b, "gpufuse_agent_heartbeats_total", "result=\"failed\"",
                          (double)a->heartbeats_failed);
        gf_prom_family(&b, "gpufuse_agent_registered", "gauge",
                          "1 when the server knows this node");
        gf_prom_sample(&b, "gpufuse_agent_registered", NULL, a->registered);
        gf_prom_family(&b, "gpufuse_agent_vgpus", "gauge",
                          "vGPU regions this agent keeps for workloads placed here");
        gf_prom_sample(&b, "gpufuse_agent_vgpus", NULL, a->n_regions_snap);
        write_vgpus(a, &b);
        if (a->cfg->worker_listen) {
            gf_prom_family(&b, "gpufuse_agent_worker_restarts_total", "counter",
                              "Times the agent restarted its gpufuse worker after it died");
            gf_prom_sample(&b, "gpufuse_agent_worker_restarts_total", NULL,
                              (double)a->worker_restarts);
        }
        pthread_mutex_unlock(&a->mlock);
    }
    if (b.oom) {
        free(b.data);
        return MHD_NO;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(b.len, b.data ? b.data : (char *)"",
                                                             b.data ? MHD_RESPMEM_MUST_FREE
                                                                    : MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static int start_metrics(agent *a)
{
    const char *l = a->cfg->listen;
    const char *colon = strrchr(l, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || *end || port < 0 || port > 65535) {
        fprintf(stderr, "gpufuse agent: --listen \"%s\": expected HOST:PORT\n", l);
        return -1;
    }
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(colon - l), l);
    if (host[0] && inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
        fprintf(stderr, "gpufuse agent: --listen \"%s\": give an IPv4 address (or :PORT)\n", l);
        return -1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    a->mhd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_metrics, a,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_END);
    if (!a->mhd) {
        fprintf(stderr, "gpufuse agent: --listen \"%s\": cannot listen there (in use?)\n", l);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
    printf("gpufuse agent: metrics on http://%s:%u/metrics\n", host[0] ? host : "0.0.0.0",
           di ? di->port : (unsigned)port);
    fflush(stdout);
    return 0;
}

/* ---- the loop ----------------------------------------------------------------------------------- */

int gf_agent_run(const gf_agent_config *cfg, volatile sig_atomic_t *stop)
{
    char err[1024], token[512];
    int rc = 1;
    agent *a = calloc(1, sizeof *a);
    if (!a) return 1;
    a->cfg = cfg;
    pthread_mutex_init(&a->mlock, NULL);
    if (cfg->node_name) {
        snprintf(a->node, sizeof a->node, "%s", cfg->node_name);
    } else if (gethostname(a->node, sizeof a->node) || !a->node[0]) {
        snprintf(a->node, sizeof a->node, "node");
    }
    for (char *p = a->node; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    if (gf_http_read_token_file(cfg->token_file, token, sizeof token, err, sizeof err) != GF_OK) {
        fprintf(stderr, "gpufuse agent: %s; make one with \"gpufuse token create --node %s\"\n",
                err, a->node);
        goto out;
    }
    gf_http_options ho = {.base_url = cfg->server, .token = token, .ca_file = cfg->ca_file,
                          .timeout_ms = 10000};
    if (gf_http_client_new(&ho, &a->http, err, sizeof err) != GF_OK) {
        fprintf(stderr, "gpufuse agent: %s\n", err);
        goto out;
    }
    memset(token, 0, sizeof token);
    if (gf_agent_nvml_open(&a->nvml, a->gpus, GF_AGENT_MAX_GPUS, &a->n_gpus, err, sizeof err) !=
        GF_OK) {
        fprintf(stderr, "gpufuse agent: cannot read the GPUs: %s\n", err);
        goto out;
    }
    gf_agent_nvml_sample(a->nvml, a->gpus, a->n_gpus);
    memcpy(a->snap, a->gpus, sizeof a->gpus);
    a->n_snap = a->n_gpus;
    regions_load(a);
    if (tokens_init(a, err, sizeof err) != 0) {
        fprintf(stderr, "gpufuse agent: %s\n", err);
        goto out;
    }
    if (cfg->worker_listen && worker_start(a, err, sizeof err) != 0) {
        fprintf(stderr, "gpufuse agent: --worker-listen %s: %s\n", cfg->worker_listen, err);
        goto out;
    }
    set_reported_address(a);
    if (cfg->worker_listen)
        printf("gpufuse agent: worker (pid %d) serves remote vGPUs on %s (reported as %s)\n",
               (int)a->worker_pid, a->worker_addr, a->address);
    if (cfg->listen && start_metrics(a)) goto out;
    printf("gpufuse agent: node %s, %u GPU(s), server %s\n", a->node, a->n_gpus, cfg->server);
    fflush(stdout);

    uint64_t backoff = 500;
    while (!*stop) {
        int r = do_register(a);
        if (r == 1) goto out;
        if (r == 0) break;
        wait_ms(a, backoff, stop);
        if (backoff < 5000) backoff *= 2;
    }
    while (!*stop) {
        int r = heartbeat(a);
        if (r == 1) {
            gf_log(GF_LOG_WARN, "agent", "the server does not know node %s; registering again",
                   a->node);
            int rr;
            while ((rr = do_register(a)) < 0 && !*stop) wait_ms(a, 1000, stop);
            if (rr == 1) goto out;
            continue;
        }
        wait_ms(a, a->interval_ms, stop);
    }
    rc = 0;
out:
    worker_stop(a);
    if (a->mhd) MHD_stop_daemon(a->mhd);
    gf_agent_nvml_close(a->nvml);
    gf_http_client_free(a->http);
    pthread_mutex_destroy(&a->mlock);
    free(a->tokens_written);
    free(a);
    return rc;
}
