/* SPDX-License-Identifier: Apache-2.0 */
/* gpufuse cost: what each workload and pool cost over a period (GET /api/v1/costs), as a
 * table or -o json. See docs/costs.md. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gpufuse/http_client.h"

static const char *js(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static double jn(json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

/* Appends "&name=value" (value URL-encoded) to q. */
static int add_arg(char *q, size_t qlen, const char *name, const char *value)
{
    if (!value) return 0;
    char *enc = curl_easy_escape(NULL, value, 0);
    if (!enc) return -1;
    size_t used = strlen(q);
    int n = snprintf(q + used, qlen - used, "%s%s=%s", used ? "&" : "?", name, enc);
    curl_free(enc);
    return n < 0 || (size_t)n >= qlen - used ? -1 : 0;
}

static void print_table(json_t *v)
{
    json_t *wls = json_object_get(v, "workloads"), *pools = json_object_get(v, "pools");
    size_t i;
    json_t *r;
    printf("%-24s %-12s %-9s %12s %12s %12s %12s %12s\n", "WORKLOAD", "POOL", "QOS",
           "TFLOP-H", "GIB-H", "RESERVED", "BURST", "TOTAL");
    json_array_foreach(wls, i, r)
        printf("%-24s %-12s %-9s %12.3f %12.3f %12.2f %12.2f %12.2f\n", js(r, "workload"),
               js(r, "pool"), js(r, "qos"), jn(r, "reserved_tflop_hours"),
               jn(r, "reserved_gib_hours"), jn(r, "reserved_cost"), jn(r, "burst_cost"),
               jn(r, "cost"));
    if (json_array_size(pools)) {
        printf("\n%-24s %12s %12s %14s %16s %12s\n", "POOL", "CAP-TFLOP-H", "CHARGED",
               "UNALLOCATED", "ALLOCATED-IDLE", "");
        json_array_foreach(pools, i, r) {
            json_t *un = json_object_get(r, "unallocated_cost");
            char unb[32] = "-";
            if (un) snprintf(unb, sizeof unb, "%.2f", json_number_value(un));
            printf("%-24s %12.3f %12.2f %14s %16.2f\n", js(r, "pool"),
                   jn(r, "capacity_tflop_hours"), jn(r, "cost"), unb,
                   jn(r, "idle_allocated_cost"));
        }
    }
    json_t *t = json_object_get(v, "total");
    printf("\ntotal %.2f (reserved %.2f + burst %.2f)\n", jn(t, "cost"), jn(t, "reserved_cost"),
           jn(t, "burst_cost"));
}

int gf_cmd_cost(int argc, char **argv)
{
    struct gf_cli_conn cc = {0};
    const char *pool = NULL, *workload = NULL, *from = NULL, *to = NULL;
    int json_out = 0;
    for (int i = 1; i < argc; i++) {
        int r = gf_cli_conn_flag(&cc, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        const char *a = argv[i];
        const char **dst = !strcmp(a, "--pool")       ? &pool
                           : !strcmp(a, "--workload") ? &workload
                           : !strcmp(a, "--from")     ? &from
                           : !strcmp(a, "--to")       ? &to
                                                      : NULL;
        if (dst) {
            if (i + 1 >= argc) {
                fprintf(stderr, "gpufuse cost: %s needs a value\n", a);
                return 2;
            }
            *dst = argv[++i];
        } else if (!strcmp(a, "-o") && i + 1 < argc && !strcmp(argv[i + 1], "json")) {
            json_out = 1;
            i++;
        } else {
            fprintf(stderr, "gpufuse cost: unknown argument \"%s\"; see gpufuse help cost\n", a);
            return 2;
        }
    }
    char path[2048] = "";
    if (add_arg(path, sizeof path, "pool", pool) || add_arg(path, sizeof path, "workload", workload) ||
        add_arg(path, sizeof path, "from", from) || add_arg(path, sizeof path, "to", to)) {
        fprintf(stderr, "gpufuse cost: arguments too long\n");
        return 2;
    }
    char full[2200];
    snprintf(full, sizeof full, "/api/v1/costs%s", path);
    gf_http_client *c = gf_cli_connect("cost", &cc);
    if (!c) return 1;
    char err[1024], *resp = NULL;
    long status = 0;
    int rc = 1;
    if (gf_http_request(c, "GET", full, NULL, &status, &resp, err, sizeof err) != GF_OK) {
        fprintf(stderr, "gpufuse cost: %s\n", err);
        goto out;
    }
    json_t *v = json_loads(resp ? resp : "", 0, NULL);
    if (status != 200) {
        const char *msg = json_string_value(json_object_get(v, "error"));
        fprintf(stderr, "gpufuse cost: the server answered %ld: %s\n", status,
                msg ? msg : resp ? resp : "");
    } else if (!v) {
        fprintf(stderr, "gpufuse cost: the server's answer is not JSON\n");
    } else {
        if (json_out) {
            char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
            if (s) puts(s);
            free(s);
        } else {
            print_table(v);
        }
        rc = 0;
    }
    json_decref(v);
out:
    free(resp);
    gf_http_client_free(c);
    return rc;
}
