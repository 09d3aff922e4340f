/* SPDX-License-Identifier: Apache-2.0 */
/* Issue 6's glue in the server: sets up the sample store and the chargeback tables, takes each
 * usage report, and routes /api/v1/{gpus,allocations}/ID/samples, /pools/NAME/prices and
 * /costs to samples.c and costs.c. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/observe.h"

struct gf_srv_obs {
    gf_samples *samples;
};

void gf_srv__obs_json(gf_srv_resp *resp, unsigned status, json_t *v)
{
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12))
                   : NULL;
    json_decref(v);
    if (!resp->body) {
        resp->status = 500;
        resp->body = strdup("{\"error\":\"out of memory while writing the answer\"}");
    }
    resp->body_len = resp->body ? strlen(resp->body) : 0;
}

gf_status gf_srv__obs_init(gf_server *srv, char *err, size_t errlen)
{
    srv->obs = calloc(1, sizeof *srv->obs);
    if (srv->obs) srv->obs->samples = gf_samples_new();
    if (!srv->obs || !srv->obs->samples) {
        snprintf(err, errlen, "out of memory for the usage samples");
        return GF_ENOMEM;
    }
    return gf_srv__costs_init(srv, err, errlen);
}

void gf_srv__obs_free(gf_server *srv)
{
    if (!srv->obs) return;
    gf_samples_free(srv->obs->samples);
    free(srv->obs);
    srv->obs = NULL;
}

gf_status gf_srv__obs_usage(gf_server *srv, const char *node, const gf_api_usage *u,
                            int64_t now_ms)
{
    /* Only the node's own GPUs and allocations: a node cannot draw on another's charts. */
    for (unsigned i = 0; i < u->n_gpus; i++) {
        int64_t own = 0;
        gf_store_query_int(srv->store, "SELECT COUNT(*) FROM gpus WHERE uuid = ? AND node = ?",
                           0, &own, "tt", u->gpus[i].uuid, node);
        if (own)
            gf_samples_add(srv->obs->samples, u->gpus[i].uuid, now_ms, u->gpus[i].utilization,
                           u->gpus[i].vram_used);
    }
    for (unsigned i = 0; i < u->n_vgpus; i++) {
        int64_t own = 0;
        gf_store_query_int(srv->store,
                           "SELECT COUNT(*) FROM allocations WHERE id = ? AND node = ?", 0, &own,
                           "tt", u->vgpus[i].allocation, node);
        if (own)
            gf_samples_add_busy(srv->obs->samples, u->vgpus[i].allocation, now_ms,
                                u->vgpus[i].busy_ns, u->vgpus[i].vram_used);
    }
    return gf_srv__costs_usage(srv, node, u, now_ms);
}

/* GET /api/v1/gpus/UUID/samples, /api/v1/allocations/ID/samples [?since=MS]. */
void gf_srv__samples_route(gf_server *srv, const char *kind, const char *id,
                           const gf_srv_req *req, gf_srv_resp *resp)
{
    int gpu = !strcmp(kind, "gpus");
    int64_t since = 0, exists = 0;
    for (unsigned i = 0; i < req->n_args; i++) {
        const char *k = req->args[2 * i], *v = req->args[2 * i + 1];
        char *end = NULL;
        if (strcmp(k, "since")) {
            gf_srv__error(resp, 400, "unknown query argument \"%.60s\"; samples take since=MS",
                          k);
            return;
        }
        since = v ? strtoll(v, &end, 10) : -1;
        if (!v || !*v || *end || since < 0) {
            gf_srv__error(resp, 400, "since: \"%.60s\": give milliseconds since the epoch",
                          v ? v : "");
            return;
        }
    }
    if (gpu)
        gf_store_query_int(srv->store, "SELECT COUNT(*) FROM gpus WHERE uuid = ?", 0, &exists,
                           "t", id);
    else
        gf_store_query_int(srv->store, "SELECT COUNT(*) FROM allocations WHERE id = ?", 0,
                           &exists, "t", id);
    if (!exists) {
        gf_srv__error(resp, 404, "%s \"%.100s\" not found; \"gpufuse ls %s\" lists them",
                      gpu ? "gpu" : "allocation", id, kind);
        return;
    }
    gf_sample *buf = malloc(GF_SAMPLES_PER_SERIES * sizeof *buf);
    if (!buf) {
        gf_srv__error(resp, 500, "out of memory");
        return;
    }
    size_t n = gf_samples_get(srv->obs->samples, id, since, buf, GF_SAMPLES_PER_SERIES);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, json_pack("{s:I,s:f,s:I}", "t_ms", (json_int_t)buf[i].t_ms,
                                               "utilization", buf[i].utilization, "vram_used",
                                               (json_int_t)buf[i].vram_used));
    free(buf);
    gf_srv__obs_json(resp, 200, json_pack("{s:s,s:o}", gpu ? "uuid" : "allocation", id,
                                          "items", items));
}

int gf_srv__obs_route(gf_server *srv, const gf_srv_req *req, unsigned n, char segs[][160],
                      gf_srv_resp *resp)
{
    const char *m = req->method;
    int get = !strcmp(m, "GET");
    if (n == 5 && !strcmp(segs[4], "samples") &&
        (!strcmp(segs[2], "gpus") || !strcmp(segs[2], "allocations"))) {
        if (get) gf_srv__samples_route(srv, segs[2], segs[3], req, resp);
        else gf_srv__error(resp, 405, "%s %s: method not allowed; use GET", m, req->path);
        return 1;
    }
    if (n == 5 && !strcmp(segs[2], "pools") && !strcmp(segs[4], "prices")) {
        if (get) gf_srv__prices_get(srv, segs[3], resp);
        else if (!strcmp(m, "PUT")) gf_srv__prices_put(srv, segs[3], req, resp);
        else gf_srv__error(resp, 405, "%s %s: method not allowed; use GET or PUT", m, req->path);
        return 1;
    }
    if (n == 3 && !strcmp(segs[2], "costs")) {
        if (get) gf_srv__costs_get(srv, req, resp);
        else gf_srv__error(resp, 405, "%s %s: method not allowed; use GET", m, req->path);
        return 1;
    }
    return 0;
}
