/* SPDX-License-Identifier: Apache-2.0 */
/* gpufuse worker: serves remote vGPUs on this machine's GPUs to clients of the remote backend
 * (GPUFUSE_REMOTE / gpufuse run --remote). Flag parsing here; the worker is src/worker/.
 * See docs/worker.md. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "worker/worker.h"

static int usage_error(const char *msg)
{
    fprintf(stderr, "gpufuse worker: %s\n", msg);
    fprintf(stderr, "usage: gpufuse worker --listen ADDR [--listen ADDR...] [--tls-cert F "
                    "--tls-key F] [--token-file F] [--allocation-tokens F] [--gpu N[,N...]] "
                    "[--max-sessions N]\n");
    return 2;
}

static int read_token(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "gpufuse worker: --token-file %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = 0;
    while (n && isspace((unsigned char)out[n - 1])) out[--n] = 0;
    if (!n) {
        fprintf(stderr, "gpufuse worker: --token-file %s: the file is empty; put the token "
                        "on its first line\n", path);
        return -1;
    }
    return 0;
}

static int parse_gpus(const char *v, gf_wk_opts *o)
{
    const char *p = v;
    while (*p) {
        char *end;
        long g = strtol(p, &end, 10);
        if (end == p || g < 0 || g >= 1024 || (*end && *end != ',')) return -1;
        if (o->ngpus == GF_WK_MAX_DEVS) return -1;
        o->gpus[o->ngpus++] = (int)g;
        p = *end ? end + 1 : end;
    }
    return o->ngpus ? 0 : -1;
}

int gf_cmd_worker(int argc, char **argv)
{
    gf_wk_opts o;
    memset(&o, 0, sizeof o);
    char msg[600];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *flags[] = {"--listen", "--tls-cert", "--tls-key", "--token-file", "--gpu",
                               "--max-sessions", "--ready-file", "--allocation-tokens"};
        const char *flag = NULL, *val = NULL;
        for (unsigned k = 0; k < sizeof flags / sizeof flags[0]; k++) {
            size_t n = strlen(flags[k]);
            if (!strncmp(a, flags[k], n) && (a[n] == 0 || a[n] == '=')) {
                flag = flags[k];
                if (a[n] == '=') val = a + n + 1;
                else if (i + 1 < argc) val = argv[++i];
            }
        }
        if (!flag) {
            snprintf(msg, sizeof msg, "unknown argument \"%s\"", a);
            return usage_error(msg);
        }
        if (!val || !*val) {
            snprintf(msg, sizeof msg, "%s: missing value", flag);
            return usage_error(msg);
        }
        if (!strcmp(flag, "--listen")) {
            if (o.nlisten == 8) return usage_error("--listen: at most 8 addresses");
            gf_wire_addr ad;
            char err[512];
            if (gf_wire_parse_addr("--listen", val, &ad, err, sizeof err) != GF_OK)
                return usage_error(err);
            o.listen[o.nlisten++] = val;
        } else if (!strcmp(flag, "--tls-cert")) {
            o.tls_cert = val;
        } else if (!strcmp(flag, "--tls-key")) {
            o.tls_key = val;
        } else if (!strcmp(flag, "--token-file")) {
            if (read_token(val, o.token, sizeof o.token) != 0) return 2;
        } else if (!strcmp(flag, "--allocation-tokens")) {
            FILE *f = fopen(val, "r");
            if (!f) {
                fprintf(stderr, "gpufuse worker: --allocation-tokens %s: %s (the agent writes "
                        "this table; create it empty to refuse every allocation)\n", val,
                        strerror(errno));
                return 2;
            }
            fclose(f);
            o.alloc_tokens = val;
        } else if (!strcmp(flag, "--gpu")) {
            if (parse_gpus(val, &o) != 0) {
                snprintf(msg, sizeof msg, "--gpu: \"%s\": give GPU indexes, e.g. 0 or 0,1", val);
                return usage_error(msg);
            }
        } else if (!strcmp(flag, "--max-sessions")) {
            char *end;
            long n = strtol(val, &end, 10);
            if (*end || n < 1 || n > 100000) {
                snprintf(msg, sizeof msg, "--max-sessions: \"%s\": give a number from 1 to 100000",
                         val);
                return usage_error(msg);
            }
            o.max_sessions = (int)n;
        } else {
            o.ready_file = val;
        }
    }
    if (!o.nlisten) return usage_error("--listen: give at least one address (tcp://0.0.0.0:7070, "
                                       "tls://..., shm://NAME)");
    int tls = 0;
    for (int i = 0; i < o.nlisten; i++) tls |= !strncmp(o.listen[i], "tls://", 6);
    if (tls && (!o.tls_cert || !o.tls_key))
        return usage_error("a tls:// address needs --tls-cert and --tls-key (PEM files)");
    if (!o.token[0]) {
        const char *t = getenv("GPUFUSE_WORKER_TOKEN");
        if (t && *t) snprintf(o.token, sizeof o.token, "%s", t);
    }
    return gf_wk_run(&o);
}
