/* SPDX-License-Identifier: Apache-2.0 */
/* gpufuse run: creates a vGPU (VRAM and compute limits on one GPU), runs a command with the
 * client library in place, forwards signals, returns the command's exit status, and removes the
 * vGPU's state when its last process is gone. See docs/run.md. */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client/findlib.h"
#include "gpufuse/gpu_models.h"
#include "gpufuse/http_client.h"
#include "gpufuse/limiter.h"
#include "gpufuse/nvml.h"
#include "gpufuse/units.h"
#include "gpufuse/wire.h"

/* The vGPU's size flags, the same with and without --server: 1 when flag is one of them (its
 * parse status in *st), else 0. */
static int vgpu_size_flag(const char *flag, const char *val, uint64_t *vram, double *tflops,
                          double *percent, char *err, size_t errlen, gf_status *st)
{
    if (!strcmp(flag, "--vram")) {
        *st = gf_parse_size("--vram", val, vram, err, errlen);
        if (*st == GF_OK && *vram == 0) {
            snprintf(err, errlen, "--vram: \"%s\": must be more than 0", val);
            *st = GF_EINVAL;
        }
    } else if (!strcmp(flag, "--tflops")) {
        *st = gf_parse_tflops("--tflops", val, tflops, err, errlen);
    } else if (!strcmp(flag, "--compute-percent")) {
        *st = gf_parse_percent("--compute-percent", val, percent, err, errlen);
    } else {
        return 0;
    }
    return 1;
}

struct run_opts {
    uint64_t vram;         /* 0 = whole GPU */
    double tflops;         /* 0 = not given */
    double percent;        /* 0 = not given */
    const char *gpu;       /* index or UUID; NULL = 0 */
    const char *remote;    /* --remote ADDR: a worker's vGPU (docs/remote.md) */
    const char *runtime;   /* --runtime gpufuse|nvidia; NULL = chosen (runtime_is_gpufuse) */
    char **cmd;
};

static int usage_error(const char *msg)
{
    fprintf(stderr, "gpufuse run: %s\n", msg);
    fprintf(stderr, "usage: gpufuse run [--vram SIZE] [--tflops N | --compute-percent P] "
                    "[--gpu INDEX|UUID] [--remote ADDR] [--runtime gpufuse|nvidia] -- CMD "
                    "ARGS...\n");
    return 2;
}

/* Parses argv (argv[0] = "run"); returns 0 or an exit code. */
static int parse(int argc, char **argv, struct run_opts *o)
{
    char err[512];
    memset(o, 0, sizeof *o);
    int i = 1;
    for (; i < argc; i++) {
        char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (a[0] != '-') break;
        const char *names[] = {"--vram", "--tflops", "--compute-percent", "--gpu", "--remote",
                               "--runtime"};
        const char *val = NULL, *flag = NULL;
        for (unsigned k = 0; k < sizeof names / sizeof names[0]; k++) {
            size_t n = strlen(names[k]);
            if (!strncmp(a, names[k], n) && (a[n] == 0 || a[n] == '=')) {
                flag = names[k];
                if (a[n] == '=') val = a + n + 1;
                else if (i + 1 < argc) val = argv[++i];
                else {
                    snprintf(err, sizeof err, "%s: missing value", flag);
                    return usage_error(err);
                }
            }
        }
        if (!flag) {
            snprintf(err, sizeof err, "unknown flag \"%s\"", a);
            return usage_error(err);
        }
        gf_status s = GF_OK;
        if (vgpu_size_flag(flag, val, &o->vram, &o->tflops, &o->percent, err, sizeof err, &s)) {
            /* parsed (status in s) */
        } else if (!strcmp(flag, "--remote")) {
            o->remote = val;
        } else if (!strcmp(flag, "--runtime")) {
            if (strcmp(val, "gpufuse") && strcmp(val, "nvidia")) {
                snprintf(err, sizeof err, "--runtime: \"%s\": use gpufuse or nvidia", val);
                s = GF_EINVAL;
            }
            o->runtime = val;
        } else {
            if (!*val) {
                snprintf(err, sizeof err, "--gpu: empty value; give an index or a UUID");
                s = GF_EINVAL;
            }
            o->gpu = val;
        }
        if (s != GF_OK) return usage_error(err);
    }
    if (o->tflops > 0 && o->percent > 0)
        return usage_error("--tflops and --compute-percent: give one of them, not both");
    if (i >= argc) return usage_error("no command given after the flags (-- CMD ARGS...)");
    o->cmd = argv + i;
    return 0;
}

/* ---- the GPU: found through the real NVML --------------------------------------------------- */

struct gpu {
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    unsigned index;
    uint64_t total;
};

#define NVML_FN(h, name) ((nvmlReturn_t(*)())dlsym((h), (name)))

static int find_gpu(const char *want, struct gpu *g)
{
    char err[1024], path[512];
    void *h = gf_findlib_load("GPUFUSE_NVML", "libnvidia-ml.so.1", "gpufuse_nvml_marker",
                              RTLD_NOW | RTLD_LOCAL, path, sizeof path, err, sizeof err);
    if (!h) {
        fprintf(stderr, "gpufuse run: cannot list GPUs: %s\n", err);
        return -1;
    }
    nvmlReturn_t (*init)() = NVML_FN(h, "nvmlInit_v2");
    nvmlReturn_t (*count)() = NVML_FN(h, "nvmlDeviceGetCount_v2");
    nvmlReturn_t (*by_index)() = NVML_FN(h, "nvmlDeviceGetHandleByIndex_v2");
    nvmlReturn_t (*get_name)() = NVML_FN(h, "nvmlDeviceGetName");
    nvmlReturn_t (*get_uuid)() = NVML_FN(h, "nvmlDeviceGetUUID");
    nvmlReturn_t (*get_mem)() = NVML_FN(h, "nvmlDeviceGetMemoryInfo");
    unsigned n = 0;
    if (!init || !count || !by_index || !get_name || !get_uuid || !get_mem || init() != 0 ||
        count(&n) != 0) {
        fprintf(stderr, "gpufuse run: %s: NVML did not initialize or list GPUs\n", path);
        return -1;
    }
    if (n == 0) {
        fprintf(stderr, "gpufuse run: no GPU found (NVML %s)\n", path);
        return -1;
    }
    char *end = NULL;
    long idx = want ? strtol(want, &end, 10) : 0;
    int by_number = !want || (end && *end == 0 && end != want);
    for (unsigned i = 0; i < n; i++) {
        nvmlDevice_t d;
        if (by_index(i, &d) != 0) continue;
        g->index = i;
        get_name(d, g->name, (unsigned)sizeof g->name);
        get_uuid(d, g->uuid, (unsigned)sizeof g->uuid);
        nvmlMemory_t m;
        g->total = get_mem(d, &m) == 0 ? m.total : 0;
        if (by_number ? (long)i == idx : !strcasecmp(want, g->uuid)) return 0;
    }
    if (by_number)
        fprintf(stderr, "gpufuse run: --gpu: \"%s\": no such GPU; this machine has %u (0-%u)\n",
                want, n, n - 1);
    else
        fprintf(stderr, "gpufuse run: --gpu: \"%s\": no GPU has that UUID (gpufuse ls lists "
                        "them)\n", want);
    return -1;
}

/* ---- the environment of the command ---------------------------------------------------------- */

static int lib_dir(char *out, size_t len)
{
    const char *env = getenv("GPUFUSE_LIB_DIR");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return -1;
    *slash = 0;
    const char *cands[] = {"%s/../lib", "%s/../lib/gpufuse"};
    for (unsigned i = 0; i < 2; i++) {
        char p[PATH_MAX + 64];
        snprintf(p, sizeof p, cands[i], exe);
        char f[PATH_MAX + 96];
        if (snprintf(f, sizeof f, "%s/libgpufuse.so", p) >= (int)sizeof f) continue;
        if (access(f, R_OK) == 0) {
            if (!realpath(p, out) && snprintf(out, len, "%s", p) >= (int)len) return -1;
            return 0;
        }
    }
    return -1;
}

static void prepend_env(const char *var, const char *val, char sep)
{
    const char *old = getenv(var);
    if (!old || !*old) {
        setenv(var, val, 1);
        return;
    }
    size_t n = strlen(val) + strlen(old) + 2;
    char *s = malloc(n);
    if (!s) return;
    snprintf(s, n, "%s%c%s", val, sep, old);
    setenv(var, s, 1);
    free(s);
}

/* A sanitized gpufuse (make test) loads a sanitized libgpufuse.so; its runtime must come first
 * in the command, so preload it too. */
static int san_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    char *buf = data;
    const char *n = info->dlpi_name;
    if (n && (strstr(n, "libasan.so") || strstr(n, "libubsan.so"))) {
        size_t l = strlen(buf);
        snprintf(buf + l, 2048 - l, "%s%s", l ? " " : "", n);
    }
    return 0;
}

/* ---- whose CUDA runtime the command gets (docs/run.md, "--runtime") ----------------------- */

static const char *g_runtime; /* --runtime as given (gpufuse|nvidia), NULL = chosen */

/* Whether the driver the client library will load is gpufuse's sim: GPUFUSE_DRIVER names the
 * sim that sits next to this gpufuse's libraries (<libdir>/sim/libcuda.so.1, compared as files). */
static int driver_is_sim(const char *libdir)
{
    const char *drv = getenv("GPUFUSE_DRIVER");
    char sim[PATH_MAX + 32];
    struct stat a, b;
    if (!drv || !*drv) return 0;
    if (snprintf(sim, sizeof sim, "%s/sim/libcuda.so.1", libdir) >= (int)sizeof sim) return 0;
    return stat(drv, &a) == 0 && stat(sim, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* gpufuse's runtime where NVIDIA's cannot run (a remote vGPU, the sim: both refuse its private
 * export tables), NVIDIA's on a local real GPU; flag (--runtime) decides when given. */
static int runtime_is_gpufuse(const char *flag, int remote, const char *libdir)
{
    if (flag) return !strcmp(flag, "gpufuse");
    return remote || driver_is_sim(libdir);
}

/* Puts the client library in. gpufuse's runtime: libdir first on LD_LIBRARY_PATH (its
 * libcuda.so.1, libnvidia-ml.so.1 and libcudart.so.13) and libgpufuse.so preloaded for programs
 * with an RPATH to another libcuda. NVIDIA's: libdir stays off the path, so the program finds
 * its own libcudart.so.13, and both driver libraries are preloaded instead (a preloaded library
 * answers DT_NEEDED and dlopen() for its SONAME). A sanitized gpufuse preloads its runtime too. */
static void put_libs(const char *libdir, int gpufuse_rt)
{
    char pre[2 * PATH_MAX + 64];
    if (gpufuse_rt) {
        prepend_env("LD_LIBRARY_PATH", libdir, ':');
        snprintf(pre, sizeof pre, "%s/libgpufuse.so", libdir);
    } else {
        snprintf(pre, sizeof pre, "%s/libgpufuse.so %s/libnvidia-ml.so.1", libdir, libdir);
    }
    prepend_env("LD_PRELOAD", pre, ' ');
    char san[2048] = "";
    dl_iterate_phdr(san_cb, san);
    if (san[0]) prepend_env("LD_PRELOAD", san, ' ');
}

/* uuids: the vGPU's GPU, or a comma-separated list (slot order) for a multi-GPU vGPU. */
static void set_child_env(const char *libdir, const char *vgpu, const char *uuids)
{
    setenv("GPUFUSE_VGPU", vgpu, 1);
    setenv("GPUFUSE_VGPU_UUID", uuids, 1);
    put_libs(libdir, runtime_is_gpufuse(g_runtime, 0, libdir));
}

/* ---- running it ------------------------------------------------------------------------------ */

static const int fwd_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH,
                                  SIGCONT, SIGTSTP};

/* Waits for child with the signals of set blocked, forwarding them to it; returns its wait
 * status. obs: reclaims a dead process's share of the vGPU in under a second. */
static int wait_child(pid_t child, const sigset_t *set, gf_limiter *obs)
{
    int status = 0;
    for (;;) {
        struct timespec ts = {0, 250000000};
        siginfo_t si;
        int sig = sigtimedwait(set, &si, &ts);
        if (sig > 0 && sig != SIGCHLD) {
            kill(child, sig);
            continue;
        }
        if (sig < 0 && obs) gf_limiter_reclaim(obs);
        pid_t w = waitpid(child, &status, WNOHANG);
        if (w == child) return status;
        if (w < 0 && errno != EINTR) return status;
    }
}

static void block_signals(sigset_t *set, sigset_t *old)
{
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    for (unsigned i = 0; i < sizeof fwd_signals / sizeof fwd_signals[0]; i++)
        sigaddset(set, fwd_signals[i]);
    sigprocmask(SIG_BLOCK, set, old);
}

static int exit_code(int status)
{
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* After the command: remove the region now, or when the last process that attached is gone
 * (a daemon it left behind), from a detached watcher. */
static void remove_when_unused(const char *vgpu)
{
    gf_limiter *obs;
    char err[256];
    if (gf_limiter_open_observer(vgpu, &obs, err, sizeof err) != GF_OK) {
        gf_limiter_unlink(vgpu);
        return;
    }
    if (gf_limiter_live_procs(obs) == 0) {
        gf_limiter_close(obs);
        gf_limiter_unlink(vgpu);
        return;
    }
    pid_t p = fork();
    if (p == 0) {
        if (fork() != 0) _exit(0);
        setsid();
        while (gf_limiter_live_procs(obs) > 0) usleep(250000);
        gf_limiter_unlink(vgpu);
        _exit(0);
    }
    if (p > 0) waitpid(p, NULL, 0);
    gf_limiter_close(obs);
}

/* --remote: the command talks to a worker; no local GPU, driver or vGPU region. The limits
 * travel in the session's HELLO (GPUFUSE_REMOTE_*). Replaces this process with the command. */
static int run_remote(const struct run_opts *o)
{
    char err[512];
    gf_wire_addr a;
    if (gf_wire_parse_addr("--remote", o->remote, &a, err, sizeof err) != GF_OK)
        return usage_error(err);
    char libdir[PATH_MAX];
    if (lib_dir(libdir, sizeof libdir) != 0) {
        fprintf(stderr, "gpufuse run: cannot find libgpufuse.so next to this binary "
                        "(../lib); set GPUFUSE_LIB_DIR\n");
        return 1;
    }
    char v[64];
    setenv("GPUFUSE_REMOTE", o->remote, 1);
    if (o->vram) {
        snprintf(v, sizeof v, "%llu", (unsigned long long)o->vram);
        setenv("GPUFUSE_REMOTE_VRAM", v, 1);
    }
    if (o->percent > 0) {
        snprintf(v, sizeof v, "%g", o->percent);
        setenv("GPUFUSE_REMOTE_COMPUTE_PERCENT", v, 1);
    } else if (o->tflops > 0) {
        snprintf(v, sizeof v, "%g", o->tflops);
        setenv("GPUFUSE_REMOTE_TFLOPS", v, 1);
    }
    if (o->gpu) setenv("GPUFUSE_REMOTE_GPU", o->gpu, 1);
    int gpufuse_rt = runtime_is_gpufuse(o->runtime, 1, libdir);
    if (!gpufuse_rt)
        fprintf(stderr, "gpufuse run: --runtime nvidia: NVIDIA's CUDA runtime cannot run on a "
                        "remote vGPU; programs that use it will fail\n");
    put_libs(libdir, gpufuse_rt);
    fflush(NULL);
    execvp(o->cmd[0], o->cmd);
    fprintf(stderr, "gpufuse run: %s: %s\n", o->cmd[0], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}

/* With --server (before "--"): a vGPU from the pool (below). */
static int run_pool(int argc, char **argv);

static int wants_server(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--server") || !strncmp(argv[i], "--server=", 9)) return 1;
    return 0;
}

int gf_cmd_run(int argc, char **argv)
{
    if (wants_server(argc, argv)) return run_pool(argc, argv);
    struct run_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    g_runtime = o.runtime;
    if (o.remote) return run_remote(&o);

    struct gpu g;
    if (find_gpu(o.gpu, &g) != 0) return 1;
    char total_s[32], vram_s[32];
    gf_format_size(g.total, total_s, sizeof total_s);
    if (o.vram && g.total && o.vram > g.total) {
        gf_format_size(o.vram, vram_s, sizeof vram_s);
        fprintf(stderr, "gpufuse run: --vram: %s is more than GPU %u (%s) has (%s)\n", vram_s,
                g.index, g.name, total_s);
        return 2;
    }
    double fraction = 0;
    if (o.tflops > 0) {
        const gf_gpu_model *m = gf_gpu_model_find(g.name);
        if (!m || m->fp16_tflops <= 0) {
            fprintf(stderr, "gpufuse run: --tflops: GPU %u (\"%s\") is not in the GPU model table "
                            "(gpufuse models); use --compute-percent\n", g.index, g.name);
            return 2;
        }
        if (o.tflops > m->fp16_tflops * (1 + 1e-9)) {
            fprintf(stderr, "gpufuse run: --tflops: %g is more than GPU %u (%s) has (%g FP16 "
                            "TFLOPs)\n", o.tflops, g.index, g.name, m->fp16_tflops);
            return 2;
        }
        fraction = o.tflops / m->fp16_tflops;
    } else if (o.percent > 0) {
        fraction = o.percent / 100.0;
    }

    char libdir[PATH_MAX];
    if (lib_dir(libdir, sizeof libdir) != 0) {
        fprintf(stderr, "gpufuse run: cannot find libgpufuse.so next to this binary "
                        "(../lib); set GPUFUSE_LIB_DIR\n");
        return 1;
    }

    char vgpu[GF_LIMITER_NAME_MAX], err[512];
    srand((unsigned)(time(NULL) ^ getpid()));
    snprintf(vgpu, sizeof vgpu, "run-%d-%04x", (int)getpid(), rand() & 0xffff);
    gf_limiter_config cfg = {0};
    cfg.vram_limit[0] = o.vram;
    cfg.compute_fraction[0] = fraction >= 1 ? 0 : fraction;
    if (gf_limiter_create(vgpu, &cfg, 1, err, sizeof err) != GF_OK) {
        fprintf(stderr, "gpufuse run: cannot create the vGPU: %s\n", err);
        return 1;
    }
    gf_limiter *obs = NULL;
    gf_limiter_open_observer(vgpu, &obs, err, sizeof err);

    sigset_t set, old;
    block_signals(&set, &old);

    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "gpufuse run: fork: %s\n", strerror(errno));
        gf_limiter_unlink(vgpu);
        return 1;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        set_child_env(libdir, vgpu, g.uuid);
        execvp(o.cmd[0], o.cmd);
        fprintf(stderr, "gpufuse run: %s: %s\n", o.cmd[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }

    int status = wait_child(child, &set, obs);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (obs) gf_limiter_close(obs);
    remove_when_unused(vgpu);
    return exit_code(status);
}

/* ---- gpufuse run --server: a vGPU from the pool ------------------------------------------------
 * POST /api/v1/workloads asks the server's allocator; the answer names the GPUs and their node.
 * GPUs this machine's NVML lists: the node's agent made the vGPU region (named after the
 * workload); the command attaches to it as above. Otherwise (or --remote) the command runs in
 * remote mode against the node's worker (the address its agent reported), whose session joins
 * the same region. DELETE releases the workload when the command is gone. */

#define POOL_MAX_GPUS 16

#define POOL_LEASE_DEFAULT_MS 30000ull
#define POOL_LEASE_MIN_MS 1000ull
#define POOL_LEASE_MAX_MS (24ull * 3600 * 1000)

struct pool_opts {
    struct gf_cli_conn cc;
    const char *pool, *qos, *name, *node;
    const char *models[16];
    unsigned n_models;
    uint64_t vram;
    uint64_t lease_ms;     /* the workload's lease (--lease), renewed while CMD runs */
    double tflops, percent;
    long gpus;
    int remote;
    const char *runtime;   /* --runtime gpufuse|nvidia; NULL = chosen, as without --server */
    char **cmd;
};

struct pool_alloc {
    char id[160], node[64], uuid[96], addr[256];
    int index; /* the GPU's index on its node */
    uint64_t vram_limit;
};

static int pool_usage(const char *msg)
{
    fprintf(stderr, "gpufuse run: %s\n", msg);
    fprintf(stderr, "usage: gpufuse run --server URL [--pool P] [--vram SIZE] [--tflops N | "
                    "--compute-percent P] [--gpus N] [--remote] [--qos low|medium|high|critical] "
                    "[--model M] [--node N] [--name NAME] [--runtime gpufuse|nvidia] "
                    "[--lease DURATION] [--token-file F] [--ca-file F] -- CMD ARGS...\n");
    return 2;
}

static int pool_parse(int argc, char **argv, struct pool_opts *o)
{
    char err[512];
    memset(o, 0, sizeof *o);
    o->gpus = 1;
    o->lease_ms = POOL_LEASE_DEFAULT_MS;
    int i = 1;
    for (; i < argc; i++) {
        char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (a[0] != '-') break;
        if (!strncmp(a, "--server=", 9)) {
            o->cc.server = a + 9;
            continue;
        }
        int r = gf_cli_conn_flag(&o->cc, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(a, "--remote")) {
            o->remote = 1;
            continue;
        }
        if (!strncmp(a, "--remote=", 9))
            return pool_usage("--remote: with --server it takes no address (the server says "
                              "which node's worker serves the vGPU)");
        if (!strcmp(a, "--gpu") || !strncmp(a, "--gpu=", 6))
            return pool_usage("--gpu: not with --server (the server picks the GPU); use "
                              "--model, --node or --gpus");
        const char *names[] = {"--pool", "--qos", "--name", "--node", "--model", "--vram",
                               "--tflops", "--compute-percent", "--gpus", "--runtime",
                               "--lease"};
        const char *val = NULL, *flag = NULL;
        for (unsigned k = 0; k < sizeof names / sizeof names[0]; k++) {
            size_t n = strlen(names[k]);
            if (!strncmp(a, names[k], n) && (a[n] == 0 || a[n] == '=')) {
                flag = names[k];
                if (a[n] == '=') val = a + n + 1;
                else if (i + 1 < argc) val = argv[++i];
            }
        }
        if (!flag) {
            snprintf(err, sizeof err, "unknown flag \"%s\"", a);
            return pool_usage(err);
        }
        if (!val || !*val) {
            snprintf(err, sizeof err, "%s: missing value", flag);
            return pool_usage(err);
        }
        gf_status s = GF_OK;
        if (!strcmp(flag, "--pool")) o->pool = val;
        else if (!strcmp(flag, "--name")) o->name = val;
        else if (!strcmp(flag, "--node")) o->node = val;
        else if (!strcmp(flag, "--runtime")) {
            if (strcmp(val, "gpufuse") && strcmp(val, "nvidia")) {
                snprintf(err, sizeof err, "--runtime: \"%s\": use gpufuse or nvidia", val);
                return pool_usage(err);
            }
            o->runtime = val;
        } else if (!strcmp(flag, "--qos")) {
            if (strcmp(val, "low") && strcmp(val, "medium") && strcmp(val, "high") &&
                strcmp(val, "critical")) {
                snprintf(err, sizeof err, "--qos: \"%s\": use low, medium, high or critical", val);
                return pool_usage(err);
            }
            o->qos = val;
        } else if (!strcmp(flag, "--model")) {
            if (o->n_models == sizeof o->models / sizeof o->models[0])
                return pool_usage("--model: at most 16");
            o->models[o->n_models++] = val;
        } else if (vgpu_size_flag(flag, val, &o->vram, &o->tflops, &o->percent, err, sizeof err,
                                  &s)) {
            /* parsed (status in s) */
        } else if (!strcmp(flag, "--lease")) {
            uint64_t ns;
            s = gf_parse_duration_ns("--lease", val, &ns, err, sizeof err);
            if (s == GF_OK && (ns / 1000000u < POOL_LEASE_MIN_MS ||
                               ns / 1000000u > POOL_LEASE_MAX_MS)) {
                snprintf(err, sizeof err, "--lease: \"%s\": give from 1s to 24h (e.g. 30s, 5m)",
                         val);
                s = GF_EINVAL;
            }
            o->lease_ms = ns / 1000000u;
        } else {
            char *end;
            o->gpus = strtol(val, &end, 10);
            if (*end || o->gpus < 1 || o->gpus > POOL_MAX_GPUS) {
                snprintf(err, sizeof err, "--gpus: \"%s\": give a number from 1 to %d", val,
                         POOL_MAX_GPUS);
                return pool_usage(err);
            }
        }
        if (s != GF_OK) return pool_usage(err);
    }
    if (o->tflops > 0 && o->percent > 0)
        return pool_usage("--tflops and --compute-percent: give one of them, not both");
    if (i >= argc) return pool_usage("no command given after the flags (-- CMD ARGS...)");
    o->cmd = argv + i;
    return 0;
}

/* The request body: the limits equal the requests (docs/api.md). Nothing asked = a whole GPU. */
static char *pool_body(const struct pool_opts *o, const char *name)
{
    json_t *b = json_pack("{s:s}", "name", name);
    if (o->pool) json_object_set_new(b, "pool", json_string(o->pool));
    if (o->vram) json_object_set_new(b, "vram_request", json_integer((json_int_t)o->vram));
    if (o->tflops > 0) json_object_set_new(b, "tflops_request", json_real(o->tflops));
    else if (o->percent > 0)
        json_object_set_new(b, "compute_percent_request", json_real(o->percent));
    else if (!o->vram) json_object_set_new(b, "compute_percent_request", json_integer(100));
    if (o->gpus > 1) json_object_set_new(b, "gpu_count", json_integer(o->gpus));
    if (o->qos) json_object_set_new(b, "qos", json_string(o->qos));
    if (o->node) json_object_set_new(b, "node", json_string(o->node));
    if (o->remote) json_object_set_new(b, "remote", json_true());
    json_object_set_new(b, "lease_ms", json_integer((json_int_t)o->lease_ms));
    if (o->n_models) {
        json_t *m = json_array();
        for (unsigned i = 0; i < o->n_models; i++) json_array_append_new(m, json_string(o->models[i]));
        json_object_set_new(b, "gpu_models", m);
    }
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return s;
}

/* DELETE the workload (three tries); says how to clean up by hand when the server is gone. */
static void pool_release(gf_http_client *c, const char *name)
{
    char path[256], err[1024] = "";
    snprintf(path, sizeof path, "/api/v1/workloads/%s", name);
    for (int t = 0; t < 3; t++) {
        long st = 0;
        if (gf_http_request(c, "DELETE", path, NULL, &st, NULL, err, sizeof err) == GF_OK) {
            if (st == 200 || st == 404) return;
            snprintf(err, sizeof err, "the server answered %ld", st);
        }
        usleep(300000);
    }
    fprintf(stderr, "gpufuse run: could not release workload %s: %s; release it with "
                    "\"gpufuse rm workload %s\"\n", name, err, name);
}

/* ---- the lease: renewed while the command runs --------------------------------------------------
 * A thread renews the workload's lease every third of its term (retrying sooner after a failure:
 * a restarting server, a lost packet), so that the workload outlives the lease only while this
 * process lives. When the server says the workload is gone (its lease ran out, or someone deleted
 * it), the command is stopped: its GPUs may already be someone else's. */

struct renewer {
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* CLOCK_MONOTONIC */
    int stop;            /* under mu */
    int gone;            /* under mu: the server no longer has the workload */
    pid_t child;         /* under mu: the command, once started */
    gf_http_client *c;   /* its own connection (the main thread has the other) */
    char name[64], path[160];
    uint64_t lease_ms;
};

static struct renewer *g_renew; /* NULL: no lease (or no thread) */

static void *renew_main(void *arg)
{
    struct renewer *r = arg;
    uint64_t period = r->lease_ms / 3, retry = r->lease_ms / 10, wait = period;
    if (retry < 100) retry = 100;
    int failing = 0;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += (time_t)(wait / 1000);
        dl.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &dl) != ETIMEDOUT) {
        }
        if (r->stop) break;
        pthread_mutex_unlock(&r->mu);
        char err[1024] = "";
        long st = 0;
        gf_status hs = gf_http_request(r->c, "POST", r->path, NULL, &st, NULL, err, sizeof err);
        pthread_mutex_lock(&r->mu);
        if (r->stop) break;
        if (hs == GF_OK && st == 200) {
            if (failing)
                fprintf(stderr, "gpufuse run: the lease of workload %s is renewed again\n",
                        r->name);
            failing = 0;
            wait = period;
            continue;
        }
        if (hs == GF_OK && st == 409) { /* it has no lease (made so by hand): cannot expire */
            fprintf(stderr, "gpufuse run: workload %s has no lease to renew\n", r->name);
            break;
        }
        if (hs == GF_OK && st == 404) {
            fprintf(stderr, "gpufuse run: workload %s is gone from the server (its lease of "
                    "%llu ms ran out, or it was deleted); stopping the command\n", r->name,
                    (unsigned long long)r->lease_ms);
            r->gone = 1;
            if (r->child > 0) kill(r->child, SIGTERM);
            break;
        }
        if (hs == GF_OK) snprintf(err, sizeof err, "the server answered HTTP %ld", st);
        if (!failing)
            fprintf(stderr, "gpufuse run: could not renew the lease of workload %s (%s); "
                    "retrying every %llu ms until it runs out\n", r->name, err,
                    (unsigned long long)retry);
        failing = 1;
        wait = retry;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Starts renewing name's lease; 0, or -1 after printing why. */
static int renew_start(const struct pool_opts *o, const char *name)
{
    struct renewer *r = calloc(1, sizeof *r);
    if (!r) return -1;
    long timeout = (long)(o->lease_ms / 3);
    r->c = gf_cli_connect_timeout("run", &o->cc, timeout < 1000 ? 1000 : timeout);
    if (!r->c) {
        free(r);
        return -1;
    }
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->path, sizeof r->path, "/api/v1/workloads/%s/renew", name);
    r->lease_ms = o->lease_ms;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&r->mu, NULL);
    if (pthread_create(&r->thr, NULL, renew_main, r) != 0) {
        fprintf(stderr, "gpufuse run: cannot start the thread that renews the lease\n");
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        gf_http_client_free(r->c);
        free(r);
        return -1;
    }
    g_renew = r;
    return 0;
}

/* The command started (pid): stopped at once when the workload is already gone. */
static void renew_set_child(pid_t pid)
{
    struct renewer *r = g_renew;
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->child = pid;
    if (r->gone) kill(pid, SIGTERM);
    pthread_mutex_unlock(&r->mu);
}

/* Whether the server said the workload is gone. */
static int renew_gone(void)
{
    struct renewer *r = g_renew;
    if (!r) return 0;
    pthread_mutex_lock(&r->mu);
    int g = r->gone;
    pthread_mutex_unlock(&r->mu);
    return g;
}

static void renew_stop(void)
{
    struct renewer *r = g_renew;
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thr, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    gf_http_client_free(r->c);
    free(r);
    g_renew = NULL;
}

/* The UUIDs this machine's NVML lists (0 when there is no NVML here: a client without GPUs). */
static unsigned local_uuids(char uuids[][NVML_DEVICE_UUID_V2_BUFFER_SIZE], unsigned max)
{
    char err[1024], path[512];
    void *h = gf_findlib_load("GPUFUSE_NVML", "libnvidia-ml.so.1", "gpufuse_nvml_marker",
                              RTLD_NOW | RTLD_LOCAL, path, sizeof path, err, sizeof err);
    if (!h) return 0;
    nvmlReturn_t (*init)() = NVML_FN(h, "nvmlInit_v2");
    nvmlReturn_t (*count)() = NVML_FN(h, "nvmlDeviceGetCount_v2");
    nvmlReturn_t (*by_index)() = NVML_FN(h, "nvmlDeviceGetHandleByIndex_v2");
    nvmlReturn_t (*get_uuid)() = NVML_FN(h, "nvmlDeviceGetUUID");
    unsigned n = 0, k = 0;
    if (!init || !count || !by_index || !get_uuid || init() != 0 || count(&n) != 0) return 0;
    for (unsigned i = 0; i < n && k < max; i++) {
        nvmlDevice_t d;
        if (by_index(i, &d) == 0 &&
            get_uuid(d, uuids[k], (unsigned)NVML_DEVICE_UUID_V2_BUFFER_SIZE) == 0)
            k++;
    }
    return k;
}

static int pool_is_local(const struct pool_alloc *al, unsigned n)
{
    char uu[64][NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    unsigned m = local_uuids(uu, 64);
    for (unsigned i = 0; i < n; i++) {
        unsigned k = 0;
        while (k < m && strcasecmp(uu[k], al[i].uuid)) k++;
        if (k == m) return 0;
    }
    return 1;
}

/* Reads the allocations (slot order) of a workload answer; returns how many, -1 on a bad one. */
static int pool_allocs(json_t *wl, struct pool_alloc *al, unsigned max)
{
    json_t *arr = json_object_get(wl, "allocations");
    size_t i;
    json_t *a;
    unsigned n = 0;
    json_array_foreach(arr, i, a) {
        if (n == max) return -1;
        const char *id = json_string_value(json_object_get(a, "id"));
        const char *node = json_string_value(json_object_get(a, "node"));
        const char *uuid = json_string_value(json_object_get(a, "gpu_uuid"));
        const char *addr = json_string_value(json_object_get(a, "node_address"));
        if (!id || !node || !uuid) return -1;
        struct pool_alloc *p = &al[n++];
        snprintf(p->id, sizeof p->id, "%s", id);
        snprintf(p->node, sizeof p->node, "%s", node);
        snprintf(p->uuid, sizeof p->uuid, "%s", uuid);
        snprintf(p->addr, sizeof p->addr, "%s", addr ? addr : "");
        p->vram_limit = (uint64_t)json_integer_value(json_object_get(a, "vram_limit"));
        p->index = (int)json_integer_value(json_object_get(a, "gpu_index"));
    }
    return (int)n;
}

/* How long to wait for the node's agent to make the vGPU region (its next heartbeat). */
static double pool_wait_s(void)
{
    const char *v = getenv("GPUFUSE_RUN_WAIT");
    uint64_t ns;
    char err[256];
    if (v && *v && gf_parse_duration_ns("GPUFUSE_RUN_WAIT", v, &ns, err, sizeof err) == GF_OK)
        return (double)ns / 1e9;
    return 30;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Local: waits for the region the agent makes, then runs the command attached to it. */
static int pool_run_local(const struct pool_opts *o, const char *name, const char *uuids,
                          const char *libdir, const sigset_t *set, const sigset_t *old)
{
    char err[512];
    gf_limiter *obs = NULL;
    double deadline = mono_s() + pool_wait_s();
    while (gf_limiter_open_observer(name, &obs, err, sizeof err) != GF_OK) {
        if (renew_gone()) return 1;
        if (mono_s() > deadline) {
            fprintf(stderr, "gpufuse run: the vGPU region of workload %s did not appear within "
                            "%.0f s (%s); is \"gpufuse agent\" running on this machine (with the "
                            "same GPUFUSE_SHM_DIR)? GPUFUSE_RUN_WAIT waits longer\n", name,
                    pool_wait_s(), err);
            return 1;
        }
        usleep(50000);
    }
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "gpufuse run: fork: %s\n", strerror(errno));
        gf_limiter_close(obs);
        return 1;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, old, NULL);
        set_child_env(libdir, name, uuids);
        setenv("GPUFUSE_WORKLOAD", name, 1);
        execvp(o->cmd[0], o->cmd);
        fprintf(stderr, "gpufuse run: %s: %s\n", o->cmd[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    renew_set_child(child);
    int status = wait_child(child, set, obs);
    gf_limiter_close(obs);
    return exit_code(status);
}

/* Remote: waits until the node's worker accepts a session on the workload's region (the agent
 * makes it at its next heartbeat); 0, or 1 after printing why not. */
static int pool_probe_worker(const char *addr, const char *name, const char *gpus,
                             const char *token, const char *ca)
{
    char err[1024] = "";
    double deadline = mono_s() + pool_wait_s();
    gf_wire_opts wo;
    gf_wire_opts_init(&wo);
    wo.timeout_ms = 3000;
    wo.tls_ca_file = ca;
    wo.tls_server_name = getenv("GPUFUSE_REMOTE_SERVER_NAME");
    if (wo.tls_server_name && !*wo.tls_server_name) wo.tls_server_name = NULL;
    const char *ins = getenv("GPUFUSE_REMOTE_INSECURE");
    wo.tls_insecure_skip_verify = ins && !strcmp(ins, "1");
    gf_wire_hello h;
    gf_wire_hello_init(&h);
    snprintf(h.client_name, sizeof h.client_name, "gpufuse run (probe) pid %d", (int)getpid());
    snprintf(h.allocation_id, sizeof h.allocation_id, "%s", name);
    if (strlen(gpus) >= sizeof h.gpu) return 1; /* pool_remote_gpus made it fit */
    memcpy(h.gpu, gpus, strlen(gpus) + 1);
    const char *tok = token ? token : getenv("GPUFUSE_REMOTE_TOKEN");
    const char *tokf = token ? NULL : getenv("GPUFUSE_REMOTE_TOKEN_FILE");
    if (tok && *tok) snprintf(h.token, sizeof h.token, "%s", tok);
    else if (tokf && *tokf &&
             gf_http_read_token_file(tokf, h.token, sizeof h.token, err, sizeof err) != GF_OK) {
        fprintf(stderr, "gpufuse run: GPUFUSE_REMOTE_TOKEN_FILE: %s\n", err);
        return 1;
    }
    for (;;) {
        gf_wire_conn *c = NULL;
        gf_wire_welcome wl;
        gf_status st = gf_wire_connect(addr, &wo, &c, err, sizeof err);
        if (st == GF_OK) {
            st = gf_wire_client_handshake(c, &h, &wl, err, sizeof err);
            gf_wire_close(c);
            if (st == GF_OK) return 0;
            /* A refusal other than "no such region yet" will not change by waiting. */
            if (st != GF_ENOENT) break;
        }
        if (mono_s() > deadline || renew_gone()) break;
        usleep(100000);
    }
    fprintf(stderr, "gpufuse run: the worker at %s did not serve workload %s: %s%s\n", addr,
            name, err,
            !strncmp(addr, "tls://", 6) && !ca
                ? " (the pool's workers use TLS: give their CA with --ca-file, GPUFUSE_CA_FILE "
                  "or GPUFUSE_REMOTE_CA)"
                : "");
    return 1;
}

/* The worker's GPU list for the HELLO (95 characters at most): the UUIDs in slot order when
 * they fit (one or two GPUs), else the node's GPU indexes. */
static void pool_remote_gpus(const struct pool_alloc *al, int n, char *out, size_t cap)
{
    size_t l = 0;
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        int w = snprintf(out + l, cap - l, "%s%s", i ? "," : "", al[i].uuid);
        if (w < 0 || (size_t)w >= cap - l) goto indexes;
        l += (size_t)w;
    }
    return;
indexes:
    l = 0;
    out[0] = 0;
    for (int i = 0; i < n && l < cap; i++) {
        int w = snprintf(out + l, cap - l, "%s%d", i ? "," : "", al[i].index);
        if (w < 0) break;
        l += (size_t)w;
    }
}

/* The CA that verifies a tls:// worker: GPUFUSE_REMOTE_CA, else the one that verifies the
 * server (--ca-file, GPUFUSE_CA_FILE): a pool usually has one private CA. NULL: the system's. */
static const char *pool_worker_ca(const struct pool_opts *o)
{
    const char *ca = getenv("GPUFUSE_REMOTE_CA");
    if (ca && *ca) return ca;
    ca = o->cc.ca_file ? o->cc.ca_file : getenv("GPUFUSE_CA_FILE");
    return ca && *ca ? ca : NULL;
}

/* Remote: the command in remote mode on the node's worker, joining the workload's region, with
 * the workload's worker token (token: from the server's answer; NULL: the caller's
 * GPUFUSE_REMOTE_TOKEN[_FILE], for a server without worker tokens). */
static int pool_run_remote(const struct pool_opts *o, const char *name, const char *addr,
                           const char *uuids, const char *token, const char *libdir,
                           const sigset_t *set, const sigset_t *old)
{
    const char *ca = pool_worker_ca(o);
    if (pool_probe_worker(addr, name, uuids, token, ca) != 0) return 1;
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "gpufuse run: fork: %s\n", strerror(errno));
        return 1;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, old, NULL);
        setenv("GPUFUSE_REMOTE", addr, 1);
        setenv("GPUFUSE_REMOTE_ALLOCATION", name, 1);
        setenv("GPUFUSE_REMOTE_GPU", uuids, 1);
        setenv("GPUFUSE_WORKLOAD", name, 1);
        if (token) {
            setenv("GPUFUSE_REMOTE_TOKEN", token, 1);
            unsetenv("GPUFUSE_REMOTE_TOKEN_FILE");
        }
        if (ca) setenv("GPUFUSE_REMOTE_CA", ca, 1);
        unsetenv("GPUFUSE_REMOTE_VRAM");
        unsetenv("GPUFUSE_REMOTE_COMPUTE_PERCENT");
        unsetenv("GPUFUSE_REMOTE_TFLOPS");
        put_libs(libdir, runtime_is_gpufuse(o->runtime, 1, libdir));
        execvp(o->cmd[0], o->cmd);
        fprintf(stderr, "gpufuse run: %s: %s\n", o->cmd[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    renew_set_child(child);
    return exit_code(wait_child(child, set, NULL));
}

static int run_pool(int argc, char **argv)
{
    struct pool_opts o;
    int rc = pool_parse(argc, argv, &o);
    if (rc) return rc;
    g_runtime = o.runtime; /* the local path picks the runtime as a plain gpufuse run does */
    char libdir[PATH_MAX];
    if (lib_dir(libdir, sizeof libdir) != 0) {
        fprintf(stderr, "gpufuse run: cannot find libgpufuse.so next to this binary "
                        "(../lib); set GPUFUSE_LIB_DIR\n");
        return 1;
    }
    char name[64];
    if (o.name) {
        snprintf(name, sizeof name, "%s", o.name);
    } else {
        uint32_t r = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
        FILE *f = fopen("/dev/urandom", "rb");
        if (f) {
            if (fread(&r, sizeof r, 1, f) != 1) r ^= (uint32_t)clock();
            fclose(f);
        }
        snprintf(name, sizeof name, "run-%d-%08x", (int)getpid(), r);
    }
    gf_http_client *c = gf_cli_connect("run", &o.cc);
    if (!c) return 1;
    /* From here a signal is forwarded to the command, and the workload is always released. */
    sigset_t set, old;
    block_signals(&set, &old);
    char *body = pool_body(&o, name), *resp = NULL, err[1024];
    long st = 0;
    rc = 1;
    json_t *wl = NULL;
    gf_status hs = gf_http_request(c, "POST", "/api/v1/workloads", body, &st, &resp, err, sizeof err);
    free(body);
    if (hs != GF_OK) {
        fprintf(stderr, "gpufuse run: %s\n", err);
        goto out;
    }
    wl = json_loads(resp ? resp : "", 0, NULL);
    if (st != 201) {
        const char *msg = json_string_value(json_object_get(wl, "error"));
        if (st == 409 && json_object_get(wl, "why"))
            fprintf(stderr, "gpufuse run: no vGPU for this request: %s\n", msg ? msg : resp);
        else
            fprintf(stderr, "gpufuse run: the server refused the request (HTTP %ld): %s\n", st,
                    msg ? msg : resp ? resp : "no message");
        goto out;
    }
    /* From here the lease is renewed until the workload is released. */
    if (renew_start(&o, name) != 0) goto release;
    struct pool_alloc al[POOL_MAX_GPUS];
    int n = pool_allocs(wl, al, POOL_MAX_GPUS);
    if (n <= 0) {
        fprintf(stderr, "gpufuse run: the server's answer for workload %s lists no usable "
                        "allocation: %s\n", name, resp);
        goto release;
    }
    char uuids[POOL_MAX_GPUS * 100] = "";
    for (int i = 0; i < n; i++) {
        size_t l = strlen(uuids);
        snprintf(uuids + l, sizeof uuids - l, "%s%s", i ? "," : "", al[i].uuid);
    }
    int local = !o.remote && pool_is_local(al, (unsigned)n);
    if (local) {
        rc = pool_run_local(&o, name, uuids, libdir, &set, &old);
        goto release;
    }
    for (int i = 1; i < n; i++)
        if (strcmp(al[i].node, al[0].node)) {
            fprintf(stderr, "gpufuse run: workload %s got GPUs on nodes %s and %s; a remote-mode "
                            "program talks to one node's worker, so --gpus N --remote needs N "
                            "GPUs on one node (add --node NAME)\n", name, al[0].node, al[i].node);
            goto release;
        }
    if (!al[0].addr[0]) {
        fprintf(stderr, "gpufuse run: workload %s is on node %s (GPU %s), not on this machine, "
                        "and node %s reports no worker address; start its agent with "
                        "--worker-listen ADDR\n", name, al[0].node, al[0].uuid, al[0].node);
        goto release;
    }
    char gpus[96];
    pool_remote_gpus(al, n, gpus, sizeof gpus);
    const char *token = json_string_value(json_object_get(wl, "worker_token"));
    rc = pool_run_remote(&o, name, al[0].addr, gpus, token, libdir, &set, &old);
release:
    renew_stop();
    pool_release(c, name);
out:
    sigprocmask(SIG_SETMASK, &old, NULL);
    json_decref(wl);
    free(resp);
    gf_http_client_free(c);
    return rc;
}
