/* SPDX-License-Identifier: Apache-2.0 */
/* The pool's client commands: gpufuse ls, describe, rm and token (REST calls to the server,
 * aligned tables or -o json), and the connection flags they share with gpufuse agent. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "gpufuse/http_client.h"
#include "gpufuse/units.h"

/* ---- connection ------------------------------------------------------------------------------- */

int gf_cli_conn_flag(struct gf_cli_conn *cc, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    const char **dst = !strcmp(a, "--server")       ? &cc->server
                       : !strcmp(a, "--token-file") ? &cc->token_file
                       : !strcmp(a, "--ca-file")    ? &cc->ca_file
                                                    : NULL;
    if (!dst) return 0;
    if (!v) {
        fprintf(stderr, "gpufuse: %s needs a value\n", a);
        return -1;
    }
    *dst = v;
    (*i)++;
    return 1;
}

gf_http_client *gf_cli_connect(const char *cmd, const struct gf_cli_conn *cc)
{
    return gf_cli_connect_timeout(cmd, cc, 15000);
}

gf_http_client *gf_cli_connect_timeout(const char *cmd, const struct gf_cli_conn *cc,
                                       long timeout_ms)
{
    char err[1024], token[512] = "";
    const char *server = cc->server ? cc->server : getenv("GPUFUSE_SERVER");
    const char *ca = cc->ca_file ? cc->ca_file : getenv("GPUFUSE_CA_FILE");
    const char *tf = cc->token_file ? cc->token_file : getenv("GPUFUSE_TOKEN_FILE");
    const char *tok = getenv("GPUFUSE_TOKEN");
    if (!server || !*server) server = "http://127.0.0.1:7070";
    if (tf && *tf) {
        if (gf_http_read_token_file(tf, token, sizeof token, err, sizeof err) != GF_OK) {
            fprintf(stderr, "gpufuse %s: %s\n", cmd, err);
            return NULL;
        }
    } else if (tok && *tok) {
        snprintf(token, sizeof token, "%s", tok);
    }
    gf_http_options o = {.base_url = server, .token = token[0] ? token : NULL,
                         .ca_file = ca && *ca ? ca : NULL, .timeout_ms = timeout_ms};
    gf_http_client *c = NULL;
    if (gf_http_client_new(&o, &c, err, sizeof err) != GF_OK) {
        fprintf(stderr, "gpufuse %s: %s\n", cmd, err);
        return NULL;
    }
    return c;
}

/* Sends the request; on a 2xx returns the parsed answer, else prints the server's error. */
static json_t *call(const char *cmd, gf_http_client *c, const char *method, const char *path,
                    const char *body, long *status_out)
{
    char err[1024];
    long status = 0;
    char *resp = NULL;
    if (gf_http_request(c, method, path, body, &status, &resp, err, sizeof err) != GF_OK) {
        fprintf(stderr, "gpufuse %s: %s\n", cmd, err);
        return NULL;
    }
    if (status_out) *status_out = status;
    json_t *v = json_loads(resp, 0, NULL);
    if (status < 200 || status >= 300) {
        const char *msg = json_string_value(json_object_get(v, "error"));
        fprintf(stderr, "gpufuse %s: the server answered %ld: %s\n", cmd, status,
                msg ? msg : resp);
        if (status == 401)
            fprintf(stderr, "gpufuse %s: give a token with GPUFUSE_TOKEN or --token-file "
                    "(the admin token is in the server's DATA/admin.token)\n", cmd);
        json_decref(v);
        v = NULL;
    } else if (!v) {
        fprintf(stderr, "gpufuse %s: the server's answer is not JSON: %.200s\n", cmd, resp);
    }
    free(resp);
    return v;
}

/* ---- tables ----------------------------------------------------------------------------------- */

#define MAX_COLS 12

typedef struct table {
    unsigned ncol;
    size_t nrow, cap;
    char **cells; /* nrow * ncol, owned */
} table;

static void table_add(table *t, const char *const *cells)
{
    if (t->nrow == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, cap * t->ncol * sizeof *c);
        if (!c) return;
        t->cells = c;
        t->cap = cap;
    }
    for (unsigned i = 0; i < t->ncol; i++) t->cells[t->nrow * t->ncol + i] = strdup(cells[i]);
    t->nrow++;
}

static void table_print(table *t)
{
    size_t w[MAX_COLS] = {0};
    for (size_t r = 0; r < t->nrow; r++)
        for (unsigned c = 0; c < t->ncol; c++) {
            const char *s = t->cells[r * t->ncol + c];
            size_t l = s ? strlen(s) : 0;
            if (l > w[c]) w[c] = l;
        }
    for (size_t r = 0; r < t->nrow; r++) {
        for (unsigned c = 0; c < t->ncol; c++) {
            const char *s = t->cells[r * t->ncol + c];
            if (c + 1 == t->ncol)
                printf("%s", s ? s : "");
            else
                printf("%-*s  ", (int)w[c], s ? s : "");
        }
        putchar('\n');
    }
    for (size_t i = 0; i < t->nrow * t->ncol; i++) free(t->cells[i]);
    free(t->cells);
}

static const char *js(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static double jn(json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static void fmt_size(double bytes, char *buf, size_t len)
{
    gf_format_size(bytes > 0 ? (uint64_t)bytes : 0, buf, len);
}

/* "12 GiB/80 GiB" */
static void fmt_frac_size(double used, double total, char *buf, size_t len)
{
    char a[32], b[32];
    fmt_size(used, a, sizeof a);
    fmt_size(total, b, sizeof b);
    snprintf(buf, len, "%s/%s", a, b);
}

static void fmt_age(double ms, char *buf, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
    double s = (now - ms) / 1000;
    if (ms <= 0) snprintf(buf, len, "-");
    else if (s < 0) snprintf(buf, len, "0s");
    else if (s < 120) snprintf(buf, len, "%.0fs", s);
    else if (s < 7200) snprintf(buf, len, "%.0fm", s / 60);
    else snprintf(buf, len, "%.0fh", s / 3600);
}

static void print_pools(json_t *items)
{
    table t = {.ncol = 7};
    table_add(&t, (const char *[]){"NAME", "STRATEGY", "NODES", "GPUS", "VRAM-REQ/TOTAL",
                                   "TFLOPS-REQ/TOTAL", "WORKLOADS"});
    size_t i;
    json_t *r;
    json_array_foreach(items, i, r) {
        char nodes[32], gpus[16], vram[64], tf[64], wl[16];
        snprintf(nodes, sizeof nodes, "%.0f/%.0f", jn(r, "nodes_ready"), jn(r, "nodes"));
        snprintf(gpus, sizeof gpus, "%.0f", jn(r, "gpus"));
        fmt_frac_size(jn(r, "vram_requested"), jn(r, "vram_bytes"), vram, sizeof vram);
        snprintf(tf, sizeof tf, "%.1f/%.1f", jn(r, "tflops_requested"), jn(r, "tflops"));
        snprintf(wl, sizeof wl, "%.0f", jn(r, "workloads"));
        table_add(&t, (const char *[]){js(r, "name"), js(r, "strategy"), nodes, gpus, vram, tf, wl});
    }
    table_print(&t);
}

static void print_nodes(json_t *items)
{
    table t = {.ncol = 8};
    table_add(&t, (const char *[]){"NAME", "POOL", "STATUS", "GPUS", "ALLOCATIONS", "LOST",
                                   "HEARTBEAT", "ADDRESS"});
    size_t i;
    json_t *r;
    json_array_foreach(items, i, r) {
        char gpus[16], al[16], lost[16], hb[32];
        snprintf(gpus, sizeof gpus, "%.0f", jn(r, "gpus"));
        snprintf(al, sizeof al, "%.0f", jn(r, "allocations"));
        snprintf(lost, sizeof lost, "%.0f", jn(r, "allocations_lost"));
        fmt_age(jn(r, "last_heartbeat_ms"), hb, sizeof hb);
        strncat(hb, " ago", sizeof hb - strlen(hb) - 1);
        table_add(&t, (const char *[]){js(r, "name"), js(r, "pool"), js(r, "status"), gpus, al,
                                       lost, hb, *js(r, "address") ? js(r, "address") : "-"});
    }
    table_print(&t);
}

static void print_gpus(json_t *items)
{
    table t = {.ncol = 10};
    table_add(&t, (const char *[]){"NODE", "INDEX", "MODEL", "STATUS", "VRAM-REQ/TOTAL",
                                   "TFLOPS-REQ/TOTAL", "VGPUS", "VRAM-USED", "UTIL", "UUID"});
    size_t i;
    json_t *r;
    json_array_foreach(items, i, r) {
        char idx[16], vram[64], tf[64], vg[16], used[32], util[16];
        snprintf(idx, sizeof idx, "%.0f", jn(r, "index"));
        fmt_frac_size(jn(r, "vram_requested"), jn(r, "vram_bytes"), vram, sizeof vram);
        snprintf(tf, sizeof tf, "%.1f/%.1f", jn(r, "tflops_requested"), jn(r, "tflops"));
        snprintf(vg, sizeof vg, "%.0f", jn(r, "vgpus"));
        fmt_size(jn(r, "vram_used"), used, sizeof used);
        snprintf(util, sizeof util, "%.0f%%", jn(r, "utilization"));
        const char *model = *js(r, "model_key") ? js(r, "model_key") : js(r, "model");
        char node[96];
        snprintf(node, sizeof node, "%s%s", js(r, "node"),
                 strcmp(js(r, "node_status"), "Ready") ? " (NotReady)" : "");
        /* Missing: its agent no longer reports it; it takes no new workload */
        char status[48];
        snprintf(status, sizeof status, "%s%s", *js(r, "status") ? js(r, "status") : "Ready",
                 json_is_true(json_object_get(r, "cordoned")) ? ",Cordoned" : "");
        table_add(&t, (const char *[]){node, idx, model, status, vram, tf, vg, used, util,
                                       js(r, "uuid")});
    }
    table_print(&t);
}

/* A lease as the time left ("28s", "expired"), "-" for a workload without one. */
static void fmt_lease(json_t *r, char *out, size_t len)
{
    json_t *e = json_object_get(r, "lease_expires_ms");
    if (!json_is_integer(e)) {
        snprintf(out, len, "-");
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    long long left = (long long)json_integer_value(e) - now;
    if (left <= 0) snprintf(out, len, "expired");
    else snprintf(out, len, "%llds", (left + 999) / 1000);
}

static void print_workloads(json_t *items)
{
    table t = {.ncol = 8};
    table_add(&t, (const char *[]){"NAME", "POOL", "STATUS", "QOS", "VRAM", "TFLOPS",
                                   "LEASE", "PLACEMENT"});
    size_t i;
    json_t *r;
    json_array_foreach(items, i, r) {
        json_t *spec = json_object_get(r, "spec");
        json_t *allocs = json_object_get(r, "allocations");
        char vram[32] = "-", tf[32] = "-", place[512] = "", lease[32];
        fmt_lease(r, lease, sizeof lease);
        if (json_object_get(spec, "vram_request")) fmt_size(jn(spec, "vram_request"), vram, sizeof vram);
        if (json_object_get(spec, "tflops_request"))
            snprintf(tf, sizeof tf, "%g", jn(spec, "tflops_request"));
        else if (json_object_get(spec, "compute_percent_request"))
            snprintf(tf, sizeof tf, "%g%%", jn(spec, "compute_percent_request"));
        size_t j;
        json_t *a;
        size_t pl = 0;
        json_array_foreach(allocs, j, a) {
            if (pl + 1 >= sizeof place) break;
            int n = snprintf(place + pl, sizeof place - pl, "%s%s/gpu%.0f%s", j ? "," : "",
                             js(a, "node"), jn(a, "gpu_index"),
                             strcmp(js(a, "state"), "lost") ? "" : "(lost)");
            if (n > 0) pl += (size_t)n;
        }
        if (!place[0]) snprintf(place, sizeof place, "-");
        table_add(&t, (const char *[]){js(r, "name"), js(r, "pool"), js(r, "status"),
                                       js(spec, "qos"), vram, tf, lease, place});
    }
    table_print(&t);
}

static void print_allocations(json_t *items)
{
    table t = {.ncol = 8};
    table_add(&t, (const char *[]){"ID", "WORKLOAD", "NODE", "GPU", "VRAM-REQ/LIMIT",
                                   "TFLOPS-REQ/LIMIT", "STATE", "VRAM-USED"});
    size_t i;
    json_t *r;
    json_array_foreach(items, i, r) {
        char gpu[16], vram[64], tf[64], used[32];
        snprintf(gpu, sizeof gpu, "%.0f", jn(r, "gpu_index"));
        fmt_frac_size(jn(r, "vram_request"), jn(r, "vram_limit"), vram, sizeof vram);
        snprintf(tf, sizeof tf, "%g/%g", jn(r, "tflops_request"), jn(r, "tflops_limit"));
        fmt_size(jn(r, "vram_used"), used, sizeof used);
        table_add(&t, (const char *[]){js(r, "id"), js(r, "workload"), js(r, "node"), gpu, vram,
                                       tf, js(r, "state"), used});
    }
    table_print(&t);
}

static void print_profiles(json_t *items)
{
    table t = {.ncol = 2};
    table_add(&t, (const char *[]){"NAME", "SPEC"});
    size_t i;
    json_t *r;
    json_array_foreach(items, i, r) {
        char *spec = json_dumps(json_object_get(r, "spec"), JSON_COMPACT | JSON_SORT_KEYS);
        table_add(&t, (const char *[]){js(r, "name"), spec ? spec : ""});
        free(spec);
    }
    table_print(&t);
}

static const struct kind {
    const char *name, *alias, *path;
    void (*print)(json_t *items);
} kinds[] = {
    {"pools", "pool", "/api/v1/pools", print_pools},
    {"nodes", "node", "/api/v1/nodes", print_nodes},
    {"gpus", "gpu", "/api/v1/gpus", print_gpus},
    {"workloads", "workload", "/api/v1/workloads", print_workloads},
    {"allocations", "allocation", "/api/v1/allocations", print_allocations},
    {"profiles", "profile", "/api/v1/profiles", print_profiles},
};

static const struct kind *find_kind(const char *name)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i].name, name) || !strcmp(kinds[i].alias, name)) return &kinds[i];
    return NULL;
}

/* Percent-encodes a path segment. */
static void encode_seg(const char *in, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *in && o + 4 < outlen; in++) {
        unsigned char c = (unsigned char)*in;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = 0;
}

/* Parses the shared flags; positional arguments are collected into pos. */
static int parse_common(const char *cmd, int argc, char **argv, struct gf_cli_conn *cc,
                        int *json, const char **pos, int maxpos, int *npos)
{
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        int r = gf_cli_conn_flag(cc, argc, argv, &i);
        if (r < 0) return -1;
        if (r) continue;
        if (json && !strcmp(argv[i], "-o")) {
            if (i + 1 >= argc || (strcmp(argv[i + 1], "json") && strcmp(argv[i + 1], "table"))) {
                fprintf(stderr, "gpufuse %s: -o takes json or table\n", cmd);
                return -1;
            }
            *json = !strcmp(argv[++i], "json");
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "gpufuse %s: unknown flag \"%s\"; \"gpufuse %s --help\" lists them\n",
                    cmd, argv[i], cmd);
            return -1;
        } else if (*npos < maxpos) {
            pos[(*npos)++] = argv[i];
        } else {
            fprintf(stderr, "gpufuse %s: unexpected argument \"%s\"\n", cmd, argv[i]);
            return -1;
        }
    }
    return 0;
}

int gf_cmd_ls(int argc, char **argv)
{
    struct gf_cli_conn cc = {0};
    int json = 0, npos;
    const char *pos[1];
    if (parse_common("ls", argc, argv, &cc, &json, pos, 1, &npos)) return 2;
    const struct kind *k = npos ? find_kind(pos[0]) : NULL;
    if (!k) {
        fprintf(stderr, "gpufuse ls: %s%s%s; use pools, nodes, gpus, workloads, allocations or "
                "profiles\n", npos ? "unknown kind \"" : "what to list?", npos ? pos[0] : "",
                npos ? "\"" : "");
        return 2;
    }
    gf_http_client *c = gf_cli_connect("ls", &cc);
    if (!c) return 1;
    json_t *v = call("ls", c, "GET", k->path, NULL, NULL);
    gf_http_client_free(c);
    if (!v) return 1;
    json_t *items = json_object_get(v, "items");
    if (json) {
        char *s = json_dumps(items, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s ? s : "[]");
        free(s);
    } else {
        k->print(items);
    }
    json_decref(v);
    return 0;
}

/* key: value lines, nested objects indented. */
static void describe_print(json_t *v, int indent)
{
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        printf("%*s%s:", indent, "", key);
        if (json_is_object(val)) {
            printf(json_object_size(val) ? "\n" : " {}\n");
            describe_print(val, indent + 2);
        } else if (json_is_array(val)) {
            printf(json_array_size(val) ? "\n" : " []\n");
            size_t i;
            json_t *e;
            json_array_foreach(val, i, e) {
                if (json_is_object(e)) {
                    printf("%*s- #%zu\n", indent + 2, "", i);
                    describe_print(e, indent + 4);
                } else {
                    char *s = json_dumps(e, JSON_ENCODE_ANY);
                    printf("%*s- %s\n", indent + 2, "", s ? s : "");
                    free(s);
                }
            }
        } else if (json_is_string(val)) {
            printf(" %s\n", json_string_value(val));
        } else {
            char *s = json_dumps(val, JSON_ENCODE_ANY);
            printf(" %s\n", s ? s : "");
            free(s);
        }
    }
}

int gf_cmd_describe(int argc, char **argv)
{
    struct gf_cli_conn cc = {0};
    int json = 0, npos;
    const char *pos[2];
    if (parse_common("describe", argc, argv, &cc, &json, pos, 2, &npos)) return 2;
    const struct kind *k = npos == 2 ? find_kind(pos[0]) : NULL;
    if (!k) {
        fprintf(stderr, "gpufuse describe: usage: gpufuse describe pool|node|gpu|workload|"
                "allocation|profile NAME\n");
        return 2;
    }
    char seg[512], path[700];
    encode_seg(pos[1], seg, sizeof seg);
    snprintf(path, sizeof path, "%s/%s", k->path, seg);
    gf_http_client *c = gf_cli_connect("describe", &cc);
    if (!c) return 1;
    json_t *v = call("describe", c, "GET", path, NULL, NULL);
    gf_http_client_free(c);
    if (!v) return 1;
    if (json) {
        char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s ? s : "{}");
        free(s);
    } else {
        describe_print(v, 0);
    }
    json_decref(v);
    return 0;
}

int gf_cmd_rm(int argc, char **argv)
{
    struct gf_cli_conn cc = {0};
    int npos, force = 0;
    const char *pos[2];
    /* --force (nodes and GPUs) is taken out before the common flags are parsed */
    char **args = calloc((size_t)argc + 1, sizeof *args);
    if (!args) return 1;
    int nargs = 0;
    for (int i = 0; i < argc; i++) {
        if (i && !strcmp(argv[i], "--force"))
            force = 1;
        else
            args[nargs++] = argv[i];
    }
    int bad = parse_common("rm", nargs, args, &cc, NULL, pos, 2, &npos);
    free(args);
    if (bad) return 2;
    const struct kind *k = npos == 2 ? find_kind(pos[0]) : NULL;
    int hw = k && (!strcmp(k->name, "nodes") || !strcmp(k->name, "gpus"));
    if (!k || (strcmp(k->name, "workloads") && strcmp(k->name, "profiles") && !hw)) {
        fprintf(stderr, "gpufuse rm: usage: gpufuse rm workload|profile NAME | gpufuse rm "
                "node NAME [--force] | gpufuse rm gpu UUID [--force]\n");
        return 2;
    }
    if (force && !hw) {
        fprintf(stderr, "gpufuse rm: --force is for nodes and GPUs only (gpufuse rm node NAME "
                "--force, gpufuse rm gpu UUID --force)\n");
        return 2;
    }
    char seg[512], path[700];
    encode_seg(pos[1], seg, sizeof seg);
    snprintf(path, sizeof path, "%s/%s%s", k->path, seg, force ? "?force=true" : "");
    gf_http_client *c = gf_cli_connect("rm", &cc);
    if (!c) return 1;
    json_t *v = call("rm", c, "DELETE", path, NULL, NULL);
    gf_http_client_free(c);
    if (!v) return 1;
    if (!strcmp(k->name, "nodes")) {
        json_t *wl = json_object_get(v, "workloads_deleted");
        printf("node \"%s\" deleted: %.0f GPU(s) removed, %zu workload(s) deleted", pos[1],
               jn(v, "gpus"), json_array_size(wl));
        size_t i;
        json_t *w;
        json_array_foreach(wl, i, w) printf("%s%s", i ? ", " : " (", json_string_value(w));
        printf("%s, %.0f node token(s) revoked\n", json_array_size(wl) ? ")" : "",
               jn(v, "tokens_revoked"));
    } else if (!strcmp(k->name, "gpus")) {
        json_t *wl = json_object_get(v, "workloads_deleted");
        printf("GPU \"%s\" (node \"%s\", index %.0f) deleted, %zu workload(s) deleted", pos[1],
               js(v, "node"), jn(v, "index"), json_array_size(wl));
        size_t i;
        json_t *w;
        json_array_foreach(wl, i, w) printf("%s%s", i ? ", " : " (", json_string_value(w));
        printf("%s\n", json_array_size(wl) ? ")" : "");
    } else {
        printf("%s \"%s\" deleted\n", k->alias, pos[1]);
    }
    json_decref(v);
    return 0;
}

int gf_cmd_cordon(int argc, char **argv)
{
    struct gf_cli_conn cc = {0};
    int npos;
    const char *pos[2];
    const char *cmd = !strcmp(argv[0], "uncordon") ? "uncordon" : "cordon";
    if (parse_common(cmd, argc, argv, &cc, NULL, pos, 2, &npos)) return 2;
    if (npos != 2 || strcmp(pos[0], "gpu")) {
        fprintf(stderr, "gpufuse %s: usage: gpufuse %s gpu UUID\n", cmd, cmd);
        return 2;
    }
    char seg[512], path[700];
    encode_seg(pos[1], seg, sizeof seg);
    snprintf(path, sizeof path, "/api/v1/gpus/%s/%s", seg, cmd);
    gf_http_client *c = gf_cli_connect(cmd, &cc);
    if (!c) return 1;
    json_t *v = call(cmd, c, "POST", path, NULL, NULL);
    gf_http_client_free(c);
    if (!v) return 1;
    printf("GPU \"%s\" (node \"%s\", index %.0f) %s\n", pos[1], js(v, "node"), jn(v, "index"),
           json_is_true(json_object_get(v, "cordoned")) ? "cordoned: it takes no new placement"
                                                         : "uncordoned");
    json_decref(v);
    return 0;
}

int gf_cmd_token(int argc, char **argv)
{
    struct gf_cli_conn cc = {0};
    const char *node = NULL;
    int admin = 0;
    if (argc < 2 || strcmp(argv[1], "create")) {
        fprintf(stderr, "gpufuse token: usage: gpufuse token create --node NAME | --admin\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        int r = gf_cli_conn_flag(&cc, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(argv[i], "--node") && i + 1 < argc) {
            node = argv[++i];
        } else if (!strcmp(argv[i], "--admin")) {
            admin = 1;
        } else {
            fprintf(stderr, "gpufuse token: unexpected argument \"%s\"; usage: gpufuse token "
                    "create --node NAME | --admin\n", argv[i]);
            return 2;
        }
    }
    if (!node == !admin) {
        fprintf(stderr, "gpufuse token create: give --node NAME (a token for that node's agent) "
                "or --admin\n");
        return 2;
    }
    json_t *body = admin ? json_pack("{s:b}", "admin", 1) : json_pack("{s:s}", "node", node);
    char *b = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    gf_http_client *c = gf_cli_connect("token", &cc);
    json_t *v = c ? call("token", c, "POST", "/api/v1/tokens", b, NULL) : NULL;
    free(b);
    gf_http_client_free(c);
    if (!v) return 1;
    printf("%s\n", js(v, "token"));
    json_decref(v);
    return 0;
}
