/* SPDX-License-Identifier: Apache-2.0 */
/* The client library's start-up: loads the real driver (never itself), resolves its entry
 * points, attaches the vGPU named by GPUFUSE_VGPU (or the HAMi variables), and says so. */
#include "client.h"
#include "remote.h"

#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

gf_real_table gf_real;
gf_client gf_g;
_Thread_local int gf_in_wrapper;

/* Exported so that the driver finder (ours, or another gpufuse copy's) never loads this file as
 * "the real driver". */
GF_EXPORT const char gpufuse_client_marker[] = "gpufuse client library";

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

static void load_driver(void)
{
    char err[1024];
    int flags = RTLD_NOW | RTLD_LOCAL;
#if !defined(__SANITIZE_ADDRESS__)
    /* The real driver must bind its own calls to itself, not to our exports that stand before
     * it in the global scope (ASan refuses RTLD_DEEPBIND; gf_in_wrapper covers that case). */
    flags |= RTLD_DEEPBIND;
#endif
    gf_g.driver = gf_findlib_load("GPUFUSE_DRIVER", "libcuda.so.1", "gpufuse_client_marker",
                                  flags, gf_g.driver_path, sizeof gf_g.driver_path, err,
                                  sizeof err);
    if (!gf_g.driver) {
        gf_log(GF_LOG_ERROR, GF_CLIENT_LOG, "%s", err);
        return;
    }
    gf_g.driver_ok = 1;
#define GF_CUDA_FN(sym, ret, params, args) gf_real.sym = (gf_pfn_##sym)dlsym(gf_g.driver, #sym);
#include "cuda_api.h"
    gf_log(GF_LOG_DEBUG, GF_CLIENT_LOG, "real driver: %s", gf_g.driver_path);
}

/* HAMi's sizes: a number with an optional k/m/g suffix (powers of 1024); plain = bytes. */
static int parse_hami_size(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !isdigit((unsigned char)*s)) return -1;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mul = 1;
    switch (tolower((unsigned char)*end)) {
    case 0: break;
    case 'k': mul = 1ull << 10; end++; break;
    case 'm': mul = 1ull << 20; end++; break;
    case 'g': mul = 1ull << 30; end++; break;
    default: return -1;
    }
    if (*end == 'i' || *end == 'I') end++;
    if (*end == 'b' || *end == 'B') end++;
    if (*end) return -1;
    *out = (uint64_t)v * mul;
    return 0;
}

/* HAMi's device plugin sets CUDA_DEVICE_MEMORY_LIMIT[_i] and CUDA_DEVICE_SM_LIMIT; their
 * processes share one vGPU region per container (its /dev/shm). */
static void attach_hami(void)
{
    const char *mem = getenv("CUDA_DEVICE_MEMORY_LIMIT");
    const char *sm = getenv("CUDA_DEVICE_SM_LIMIT");
    gf_limiter_config cfg = {0};
    int any = 0;
    for (int d = 0; d < GF_LIMITER_MAX_DEVICES; d++) {
        char var[64];
        snprintf(var, sizeof var, "CUDA_DEVICE_MEMORY_LIMIT_%d", d);
        const char *v = getenv(var);
        if (!v) v = mem;
        if (v && *v) {
            if (parse_hami_size(v, &cfg.vram_limit[d]) != 0) {
                gf_log(GF_LOG_ERROR, GF_CLIENT_LOG,
                       "%s=\"%s\": not a size (use e.g. 1024m or 1g); ignoring it",
                       getenv(var) ? var : "CUDA_DEVICE_MEMORY_LIMIT", v);
                cfg.vram_limit[d] = 0;
            }
            any |= cfg.vram_limit[d] != 0;
        }
        if (sm && *sm) {
            char *end;
            double p = strtod(sm, &end);
            if (*end || p < 0 || p > 100) {
                if (d == 0)
                    gf_log(GF_LOG_ERROR, GF_CLIENT_LOG,
                           "CUDA_DEVICE_SM_LIMIT=\"%s\": not a percentage 0-100; ignoring it", sm);
            } else if (p > 0 && p < 100) {
                cfg.compute_fraction[d] = p / 100.0;
                any = 1;
            }
        }
    }
    if (!any) return;
    char name[GF_LIMITER_NAME_MAX], err[512];
    snprintf(name, sizeof name, "hami-%u", (unsigned)getuid());
    if (gf_limiter_create(name, &cfg, 0, err, sizeof err) != GF_OK ||
        gf_limiter_open(name, &gf_g.lim, err, sizeof err) != GF_OK) {
        gf_log(GF_LOG_ERROR, GF_CLIENT_LOG, "HAMi limits: %s; running without limits", err);
        gf_g.lim = NULL;
    }
}

static void attach_vgpu(void)
{
    const char *name = getenv("GPUFUSE_VGPU");
    if (name && *name) {
        char err[512];
        if (gf_limiter_open(name, &gf_g.lim, err, sizeof err) != GF_OK) {
            gf_log(GF_LOG_ERROR, GF_CLIENT_LOG, "GPUFUSE_VGPU=%s: %s", name, err);
            gf_g.lim = NULL;
        }
    } else {
        attach_hami();
    }
    for (unsigned d = 0; gf_g.lim && d < GF_LIMITER_MAX_DEVICES; d++)
        if (gf_limiter_compute_fraction(gf_g.lim, d) > 0) gf_g.compute_limited = 1;
    const char *uuid = getenv("GPUFUSE_VGPU_UUID");
    if (uuid && *uuid) {
        snprintf(gf_g.remap_uuid, sizeof gf_g.remap_uuid, "%s", uuid);
        gf_g.remap = 1;
    }
}

static void after_fork_child(void)
{
    if (gf_g.lim) gf_limiter_after_fork(gf_g.lim);
    gf_launch_after_fork();
}

static void at_exit(void)
{
    gf_launch_shutdown();
}

void gf_client_init(void)
{
    pthread_mutex_lock(&init_lock);
    if (!atomic_load(&gf_g.ready)) {
        if (gf_remote_wanted()) { /* GPUFUSE_REMOTE: no driver here (src/client/remote*.c) */
            gf_remote_setup();
            gf_g.driver_ok = 1;
            snprintf(gf_g.driver_path, sizeof gf_g.driver_path, "remote %s", getenv("GPUFUSE_REMOTE"));
        } else {
            load_driver();
            attach_vgpu();
        }
        pthread_atfork(NULL, NULL, after_fork_child);
        atexit(at_exit);
        atomic_store_explicit(&gf_g.ready, 1, memory_order_release);
    }
    pthread_mutex_unlock(&init_lock);
}

int gf_client_slot(CUdevice dev)
{
    if (gf_g.remap) {
        for (int i = 0; gf_g.remap_resolved && i < gf_g.remap_n; i++)
            if (gf_g.remap_devs[i] == dev) return i;
        return -1;
    }
    return dev >= 0 && dev < GF_LIMITER_MAX_DEVICES ? (int)dev : -1;
}

int gf_client_current_slot(void)
{
    CUdevice d;
    if (!gf_real.cuCtxGetDevice || gf_real.cuCtxGetDevice(&d) != CUDA_SUCCESS) return -1;
    return gf_client_slot(d);
}

int gf_client_uuid_string(CUdevice dev, char *buf, size_t len)
{
    CUuuid u;
    CUresult r = gf_real.cuDeviceGetUuid_v2 ? gf_real.cuDeviceGetUuid_v2(&u, dev)
                                            : CUDA_ERROR_NOT_SUPPORTED;
    if (r != CUDA_SUCCESS) return -1;
    const unsigned char *b = (const unsigned char *)u.bytes;
    snprintf(buf, len,
             "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}
