/* SPDX-License-Identifier: Apache-2.0 */
/* gpufuse run: creates a vGPU (VRAM and compute limits on one GPU), runs a command with the
 * client library in place, forwards signals, returns the command's exit status, and removes the
 * vGPU's state when its last process is gone. See docs/run.md. */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
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
#include "gpufuse/limiter.h"
#include "gpufuse/nvml.h"
#include "gpufuse/units.h"
#include "gpufuse/wire.h"

struct run_opts {
    uint64_t vram;         /* 0 = whole GPU */
    double tflops;         /* 0 = not given */
    double percent;        /* 0 = not given */
    const char *gpu;       /* index or UUID; NULL = 0 */
    const char *remote;    /* --remote ADDR: a worker's vGPU (docs/remote.md) */
    char **cmd;
};

static int usage_error(const char *msg)
{
    fprintf(stderr, "gpufuse run: %s\n", msg);
    fprintf(stderr, "usage: gpufuse run [--vram SIZE] [--tflops N | --compute-percent P] "
                    "[--gpu INDEX|UUID] [--remote ADDR] -- CMD ARGS...\n");
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
        const char *names[] = {"--vram", "--tflops", "--compute-percent", "--gpu", "--remote"};
        const char *val = NULL, *flag = NULL;
        for (unsigned k = 0; k < 5; k++) {
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
        if (!strcmp(flag, "--vram")) {
            s = gf_parse_size("--vram", val, &o->vram, err, sizeof err);
            if (s == GF_OK && o->vram == 0) {
                snprintf(err, sizeof err, "--vram: \"%s\": must be more than 0", val);
                s = GF_EINVAL;
            }
        } else if (!strcmp(flag, "--tflops")) {
            s = gf_parse_tflops("--tflops", val, &o->tflops, err, sizeof err);
        } else if (!strcmp(flag, "--compute-percent")) {
            s = gf_parse_percent("--compute-percent", val, &o->percent, err, sizeof err);
        } else if (!strcmp(flag, "--remote")) {
            o->remote = val;
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

static void set_child_env(const char *libdir, const char *vgpu, const struct gpu *g)
{
    setenv("GPUFUSE_VGPU", vgpu, 1);
    setenv("GPUFUSE_VGPU_UUID", g->uuid, 1);
    prepend_env("LD_LIBRARY_PATH", libdir, ':');
    char pre[PATH_MAX + 32];
    if (snprintf(pre, sizeof pre, "%s/libgpufuse.so", libdir) >= (int)sizeof pre) return;
    prepend_env("LD_PRELOAD", pre, ' ');
    char san[2048] = "";
    dl_iterate_phdr(san_cb, san);
    if (san[0]) prepend_env("LD_PRELOAD", san, ' ');
}

/* ---- running it ------------------------------------------------------------------------------ */

static const int fwd_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH,
                                  SIGCONT, SIGTSTP};

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
    prepend_env("LD_LIBRARY_PATH", libdir, ':');
    char pre[PATH_MAX + 32];
    if (snprintf(pre, sizeof pre, "%s/libgpufuse.so", libdir) < (int)sizeof pre)
        prepend_env("LD_PRELOAD", pre, ' ');
    char san[2048] = "";
    dl_iterate_phdr(san_cb, san);
    if (san[0]) prepend_env("LD_PRELOAD", san, ' ');
    fflush(NULL);
    execvp(o->cmd[0], o->cmd);
    fprintf(stderr, "gpufuse run: %s: %s\n", o->cmd[0], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}

int gf_cmd_run(int argc, char **argv)
{
    struct run_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
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
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    for (unsigned i = 0; i < sizeof fwd_signals / sizeof fwd_signals[0]; i++)
        sigaddset(&set, fwd_signals[i]);
    sigprocmask(SIG_BLOCK, &set, &old);

    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "gpufuse run: fork: %s\n", strerror(errno));
        gf_limiter_unlink(vgpu);
        return 1;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        set_child_env(libdir, vgpu, &g);
        execvp(o.cmd[0], o.cmd);
        fprintf(stderr, "gpufuse run: %s: %s\n", o.cmd[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }

    int status = 0;
    for (;;) {
        struct timespec ts = {0, 250000000};
        siginfo_t si;
        int sig = sigtimedwait(&set, &si, &ts);
        if (sig > 0 && sig != SIGCHLD) {
            kill(child, sig);
            continue;
        }
        if (sig < 0 && obs) gf_limiter_reclaim(obs); /* a dead process's share back in < 1 s */
        pid_t w = waitpid(child, &status, WNOHANG);
        if (w == child) break;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (obs) gf_limiter_close(obs);
    remove_when_unused(vgpu);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
