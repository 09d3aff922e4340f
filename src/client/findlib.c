/* SPDX-License-Identifier: Apache-2.0 */
/* Finds the real libcuda.so.1 / libnvidia-ml.so.1 for the client library, the NVML shim and
 * gpufuse run: never a gpufuse library, however the library path is arranged. */
#include "findlib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const std_dirs[] = {
    "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/local/nvidia/lib64", "/usr/local/nvidia/lib",
    "/usr/lib/aarch64-linux-gnu", "/run/nvidia/driver/usr/lib/x86_64-linux-gnu",
    "/usr/lib/wsl/lib", "/usr/lib", "/lib64", "/lib/x86_64-linux-gnu",
};

static void self_anchor(void)
{
}

/* Loads path when it is a real library: not our own file, no marker symbol. */
static void *try_path(const char *path, const char *marker, int flags, char *tried, size_t tlen)
{
    struct stat cand, self;
    if (stat(path, &cand) != 0) return NULL;
    size_t n = strlen(tried);
    if (n + strlen(path) + 3 < tlen) snprintf(tried + n, tlen - n, "%s%s", n ? ", " : "", path);
    Dl_info info;
    if (dladdr((void *)self_anchor, &info) && info.dli_fname && stat(info.dli_fname, &self) == 0 &&
        self.st_dev == cand.st_dev && self.st_ino == cand.st_ino)
        return NULL;
    void *h = dlopen(path, flags);
    if (!h) return NULL;
    if (marker && dlsym(h, marker)) { /* a gpufuse library (another copy of ours) */
        dlclose(h);
        return NULL;
    }
    return h;
}

void *gf_findlib_load(const char *env, const char *base, const char *marker, int dlopen_flags,
                      char *path_out, size_t path_len, char *err, size_t errlen)
{
    char tried[1024] = "";
    char path[4096];
    const char *v = env ? getenv(env) : NULL;
    void *h;
    if (v && *v) {
        h = try_path(v, marker, dlopen_flags, tried, sizeof tried);
        if (h) {
            snprintf(path_out, path_len, "%s", v);
            return h;
        }
        const char *why = dlerror();
        snprintf(err, errlen,
                 "%s=%s: cannot load it as the real %s (%s); point %s at the real driver's %s",
                 env, v, base, access(v, R_OK) ? "no such file" : why ? why : "it is gpufuse's own",
                 env, base);
        return NULL;
    }
    for (size_t i = 0; i < sizeof std_dirs / sizeof std_dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", std_dirs[i], base);
        if ((h = try_path(path, marker, dlopen_flags, tried, sizeof tried))) goto found;
    }
    const char *llp = getenv("LD_LIBRARY_PATH");
    if (llp) {
        char *copy = strdup(llp), *save = NULL;
        for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
            if (!*d) continue;
            snprintf(path, sizeof path, "%s/%s", d, base);
            if ((h = try_path(path, marker, dlopen_flags, tried, sizeof tried))) {
                free(copy);
                goto found;
            }
        }
        free(copy);
    }
    snprintf(err, errlen, "no real %s found (tried: %s); install the NVIDIA driver or set %s",
             base, *tried ? tried : "nothing", env ? env : "its path");
    return NULL;
found:
    snprintf(path_out, path_len, "%s", path);
    return h;
}
