/* SPDX-License-Identifier: Apache-2.0 */
/* The server without HTTP: request validation (gf_api_parse_*), and the handler driven
 * directly — auth roles, workloads through the allocator, node loss with a made-up clock, and a
 * restart from the same data directory. */
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/api_request.h"
#include "server/server.h"
#include "test.h"

#define PARSE(body, w) gf_api_parse_workload(body, strlen(body), 0, w, err, sizeof err)

TEST(parse_sizes_numbers_and_strings)
{
    char err[512];
    gf_api_workload w;
    ASSERT_EQ_INT(PARSE("{\"vram_request\": \"4Gi\", \"vram_limit\": 8589934592}", &w), GF_OK);
    ASSERT_EQ_U64(w.vram_request, 4ull << 30);
    ASSERT_EQ_U64(w.vram_limit, 8ull << 30);
    ASSERT_EQ_INT(PARSE("{\"vram_request\": 1024.0}", &w), GF_OK);
    ASSERT_EQ_U64(w.vram_request, 1024);
    ASSERT_EQ_INT(PARSE("{\"tflops_request\": \"19.5\", \"tflops_limit\": 40}", &w), GF_OK);
    ASSERT_NEAR(w.tflops_request, 19.5, 1e-9);
    ASSERT_EQ_INT(PARSE("{\"compute_percent_request\": \"50%\"}", &w), GF_OK);
    ASSERT_NEAR(w.percent_request, 50, 1e-9);
    ASSERT_EQ_INT(w.qos, GF_API_QOS_MEDIUM);
    ASSERT_EQ_INT(PARSE("{\"gpu_models\": [\"H100\", \"A100-80G\"], \"node_labels\": "
                        "{\"zone\": \"a\"}, \"qos\": \"critical\", \"remote\": true}",
                        &w),
                  GF_OK);
    ASSERT_EQ_INT(w.n_models, 2);
    ASSERT_EQ_STR(w.models[1], "A100-80G");
    ASSERT_EQ_STR(w.labels[0].key, "zone");
    ASSERT_EQ_INT(w.qos, GF_API_QOS_CRITICAL);
    ASSERT_EQ_INT(w.remote, 1);
}

TEST(parse_refusals_name_the_field)
{
    char err[512];
    gf_api_workload w;
    ASSERT_EQ_INT(PARSE("{\"vram_request\": -1}", &w), GF_EINVAL);
    ASSERT_CONTAINS(err, "vram_request");
    ASSERT_CONTAINS(err, "negative");
    ASSERT_EQ_INT(PARSE("{\"vram_request\": 1e30}", &w), GF_ERANGE);
    ASSERT_CONTAINS(err, "1 EiB");
    ASSERT_EQ_INT(PARSE("{\"vram_request\": 99999999999999999999999999}", &w), GF_EINVAL);
    ASSERT_CONTAINS(err, "malformed JSON");
    ASSERT_EQ_INT(PARSE("{\"vram\": 1}", &w), GF_EINVAL);
    ASSERT_CONTAINS(err, "unknown field \"vram\"");
    ASSERT_EQ_INT(PARSE("{\"gpu_count\": 65}", &w), GF_ERANGE);
    ASSERT_EQ_INT(PARSE("{\"gpu_count\": true}", &w), GF_EINVAL);
    ASSERT_CONTAINS(err, "gpu_count: expected an integer, got a boolean");
    ASSERT_EQ_INT(PARSE("{\"tflops_request\": 0}", &w), GF_EINVAL);
    ASSERT_EQ_INT(PARSE("{\"vram_request\": \"2Gi\", \"vram_limit\": \"1Gi\"}", &w), GF_EINVAL);
    ASSERT_CONTAINS(err, "vram_limit");
    ASSERT_EQ_INT(PARSE("{\"name\": \"UPPER\"}", &w), GF_EINVAL);
    ASSERT_EQ_INT(PARSE("{\"name\": \"a\\u0000b\"}", &w), GF_EINVAL);
    ASSERT_EQ_INT(PARSE("[]", &w), GF_EINVAL);
    ASSERT_EQ_INT(PARSE("", &w), GF_EINVAL);
    ASSERT_EQ_INT(gf_api_parse_workload("{\"profile\": \"p\"}", 16, 1, &w, err, sizeof err),
                  GF_EINVAL); /* a profile names no profile */
}

TEST(parse_lease)
{
    char err[512];
    gf_api_workload w;
    ASSERT_EQ_INT(PARSE("{\"lease_ms\": \"30s\"}", &w), GF_OK);
    ASSERT_EQ_U64(w.lease_ms, 30000);
    ASSERT_EQ_INT(PARSE("{\"lease_ms\": 2500}", &w), GF_OK);
    ASSERT_EQ_U64(w.lease_ms, 2500);
    ASSERT_EQ_INT(PARSE("{}", &w), GF_OK);
    ASSERT_EQ_U64(w.lease_ms, 0);
    ASSERT_EQ_INT(PARSE("{\"lease_ms\": 500}", &w), GF_EINVAL);
    ASSERT_CONTAINS(err, "lease_ms: 500 ms: a lease must be from 1 s to 24 h");
    ASSERT_EQ_INT(PARSE("{\"lease_ms\": \"2d\"}", &w), GF_EINVAL);
    ASSERT_CONTAINS(err, "lease_ms");
    ASSERT_EQ_INT(PARSE("{\"lease_ms\": \"25h\"}", &w), GF_ERANGE);
    ASSERT_EQ_INT(PARSE("{\"lease_ms\": true}", &w), GF_EINVAL);
    ASSERT_CONTAINS(err, "lease_ms: expected milliseconds");
    /* A lease is the client's, not a kind of request: profiles have none. */
    ASSERT_EQ_INT(gf_api_parse_workload("{\"lease_ms\": 5000}", 18, 1, &w, err, sizeof err),
                  GF_EINVAL);
    ASSERT_CONTAINS(err, "unknown field \"lease_ms\"");
    uint64_t ms = 1;
#define RENEW1 "{\"lease_ms\": \"1m\"}"
    ASSERT_EQ_INT(gf_api_parse_renew(NULL, 0, &ms, err, sizeof err), GF_OK);
    ASSERT_EQ_U64(ms, 0);
    ASSERT_EQ_INT(gf_api_parse_renew(RENEW1, strlen(RENEW1), &ms, err, sizeof err), GF_OK);
    ASSERT_EQ_U64(ms, 60000);
    ASSERT_EQ_INT(gf_api_parse_renew("{\"ttl\": 1}", 10, &ms, err, sizeof err), GF_EINVAL);
    ASSERT_CONTAINS(err, "unknown field \"ttl\"");
}

TEST(parse_register_and_usage)
{
    char err[512];
    gf_api_register *r = malloc(sizeof *r);
    gf_api_usage *u = malloc(sizeof *u);
    const char *ok = "{\"name\": \"n1\", \"gpus\": [{\"uuid\": \"GPU-1\", \"index\": 0, "
                     "\"model\": \"NVIDIA H100 80GB HBM3\", \"vram_bytes\": \"80Gi\"}]}";
    ASSERT_EQ_INT(gf_api_parse_register(ok, strlen(ok), r, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(r->n_gpus, 1);
    ASSERT_EQ_U64(r->gpus[0].vram_bytes, 80ull << 30);
    const char *dup = "{\"name\": \"n1\", \"gpus\": [{\"uuid\": \"G\", \"model\": \"T4\", "
                      "\"vram_bytes\": 1}, {\"uuid\": \"G\", \"model\": \"T4\", \"vram_bytes\": 1}]}";
    ASSERT_EQ_INT(gf_api_parse_register(dup, strlen(dup), r, err, sizeof err), GF_EINVAL);
    ASSERT_CONTAINS(err, "appears twice");
    const char *us = "{\"gpus\": [{\"uuid\": \"G\", \"utilization\": 101}]}";
    ASSERT_EQ_INT(gf_api_parse_usage(us, strlen(us), u, err, sizeof err), GF_EINVAL);
    ASSERT_CONTAINS(err, "utilization");
    free(r);
    free(u);
}

/* ---- the handler ------------------------------------------------------------------------------ */

static gf_server *srv;
static char admin[256], hdr[300];

static void open_server_with(const char *dir, uint64_t heartbeat_timeout_ms)
{
    char err[1024];
    gf_server_config cfg = {.data_dir = dir, .heartbeat_timeout_ms = heartbeat_timeout_ms,
                            .lost_grace_ms = 2000};
    if (gf_server_new(&cfg, &srv, err, sizeof err) != GF_OK) GF_TEST_FAILF("server: %s", err);
    char path[4200];
    snprintf(path, sizeof path, "%s/admin.token", dir);
    char *t = gf_test_read_file(path, NULL);
    ASSERT_TRUE(t != NULL);
    t[strcspn(t, "\n")] = 0;
    snprintf(admin, sizeof admin, "%s", t);
    snprintf(hdr, sizeof hdr, "Bearer %s", admin);
    free(t);
}

static void open_server(const char *dir)
{
    open_server_with(dir, 1000);
}

/* Calls the handler; returns the status and leaves the parsed answer in *out (caller frees). */
static unsigned call(const char *auth, const char *method, const char *path, const char *body,
                     json_t **out)
{
    gf_srv_req req = {.method = method, .path = path, .authorization = auth, .body = body,
                      .body_len = body ? strlen(body) : 0};
    gf_srv_resp resp;
    gf_srv_handle(srv, &req, &resp);
    if (out) *out = json_loadb(resp.body, resp.body_len, 0, NULL);
    free(resp.body);
    return resp.status;
}

static const char *node_reg =
    "{\"name\": \"n1\", \"gpus\": [{\"uuid\": \"GPU-a\", \"index\": 0, \"model\": \"H100\", "
    "\"vram_bytes\": \"80Gi\"}, {\"uuid\": \"GPU-b\", \"index\": 1, \"model\": \"T4\", "
    "\"vram_bytes\": \"16Gi\"}]}";

TEST(auth_roles)
{
    open_server(gf_test_tmp_path("auth"));
    json_t *v;
    ASSERT_EQ_INT(call(NULL, "GET", "/api/v1/gpus", NULL, NULL), 401);
    ASSERT_EQ_INT(call("Bearer nope", "GET", "/api/v1/gpus", NULL, NULL), 401);
    ASSERT_EQ_INT(call("Basic abc", "GET", "/api/v1/gpus", NULL, NULL), 401);
    ASSERT_EQ_INT(call(NULL, "GET", "/healthz", NULL, NULL), 200);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/tokens", "{\"node\": \"n1\"}", &v), 201);
    char ntok[300];
    snprintf(ntok, sizeof ntok, "Bearer %s", json_string_value(json_object_get(v, "token")));
    json_decref(v);
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/nodes/register", node_reg, NULL), 201);
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/nodes/n1/heartbeat", NULL, NULL), 200);
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/nodes/n2/heartbeat", NULL, NULL), 403);
    ASSERT_EQ_INT(call(ntok, "GET", "/api/v1/workloads", NULL, NULL), 403);
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/tokens", "{\"admin\": true}", NULL), 403);
    gf_server_free(srv);
}

TEST(workload_lifecycle_and_restart)
{
    const char *dir = gf_test_tmp_path("wl");
    open_server(dir);
    json_t *v;
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/nodes/register", node_reg, NULL), 201);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"w\", \"vram_request\": \"60Gi\"}", &v),
                  201);
    ASSERT_EQ_STR(json_string_value(json_object_get(
                      json_array_get(json_object_get(v, "allocations"), 0), "gpu_uuid")),
                  "GPU-a");
    json_decref(v);
    /* The "why not" message in numbers. */
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"w2\", \"vram_request\": \"30Gi\"}", &v),
                  409);
    ASSERT_CONTAINS(json_string_value(json_object_get(v, "error")), "GiB");
    json_decref(v);
    /* Restart: everything is there, and the allocator remembers the 60 GiB. */
    gf_server_free(srv);
    open_server(dir);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/workloads/w", NULL, &v), 200);
    ASSERT_EQ_STR(json_string_value(json_object_get(v, "status")), "Running");
    json_decref(v);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"w2\", \"vram_request\": \"30Gi\"}", NULL),
                  409);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"w3\", \"vram_request\": \"19Gi\"}", NULL),
                  201);
    /* Node loss with a made-up clock: lost, then released after the grace. */
    uint64_t now = gf_srv_now_ms();
    gf_srv_tick(srv, now + 500);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/allocations/w-0", NULL, &v), 200);
    ASSERT_EQ_STR(json_string_value(json_object_get(v, "state")), "active");
    json_decref(v);
    gf_srv_tick(srv, now + 1100);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/allocations/w-0", NULL, &v), 200);
    ASSERT_EQ_STR(json_string_value(json_object_get(v, "state")), "lost");
    json_decref(v);
    gf_srv_tick(srv, now + 1100 + 2100);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/workloads/w", NULL, &v), 200);
    ASSERT_EQ_STR(json_string_value(json_object_get(v, "status")), "Released");
    ASSERT_EQ_INT(json_array_size(json_object_get(v, "allocations")), 0);
    json_decref(v);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/allocations/w-0", NULL, NULL), 404);
    /* The node heartbeats again: Ready, and the capacity is back. */
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/nodes/n1/heartbeat", NULL, NULL), 200);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"w4\", \"vram_request\": \"60Gi\"}", NULL),
                  201);
    ASSERT_EQ_INT(call(hdr, "DELETE", "/api/v1/workloads/w", NULL, NULL), 200);
    ASSERT_EQ_INT(call(hdr, "DELETE", "/api/v1/workloads/w", NULL, NULL), 404);
    gf_server_free(srv);
}

TEST(bad_requests_are_400_with_message)
{
    open_server(gf_test_tmp_path("bad"));
    json_t *v;
    static const char *const bodies[] = {
        "{", "null", "{\"vram_request\": -1}", "{\"vram_request\": \"1Xi\"}",
        "{\"gpu_count\": 1.5}", "{\"x\": 1}", "{\"node_labels\": []}",
        "{\"gpu_models\": [1]}", "{\"tflops_request\": 1e300}"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads", bodies[i], &v), 400);
        ASSERT_TRUE(json_string_length(json_object_get(v, "error")) > 10);
        json_decref(v);
    }
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/nodes/register",
                       "{\"name\": \"n\", \"gpus\": [{\"uuid\": \"u\", \"model\": \"Mystery\", "
                       "\"vram_bytes\": 1}]}",
                       &v),
                  400);
    ASSERT_CONTAINS(json_string_value(json_object_get(v, "error")), "model table");
    json_decref(v);
    gf_srv_req req = {.method = "POST", .path = "/api/v1/workloads", .authorization = hdr,
                      .body_too_large = 1};
    gf_srv_resp resp;
    gf_srv_handle(srv, &req, &resp);
    ASSERT_EQ_INT(resp.status, 413);
    free(resp.body);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/../../etc/passwd", NULL, NULL), 404);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/a/b/c/d/e/f", NULL, NULL), 404);
    gf_server_free(srv);
}

static int64_t jint(json_t *o, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(o, k));
}

/* Leases with a made-up clock: kept while renewed, deleted (GPUs free again) when not, a full
 * term after a restart; the worker token is in the creation answer only, its hash goes to the
 * node. */
TEST(leases_and_worker_tokens)
{
    const char *dir = gf_test_tmp_path("lease");
    open_server_with(dir, 3600 * 1000); /* the node stays Ready whatever the made-up clock */
    json_t *v;
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/tokens", "{\"node\": \"n1\"}", &v), 201);
    char ntok[300];
    snprintf(ntok, sizeof ntok, "Bearer %s", json_string_value(json_object_get(v, "token")));
    json_decref(v);
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/nodes/register", node_reg, NULL), 201);
    uint64_t t0 = gf_srv_now_ms();
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"l\", \"vram_request\": \"60Gi\", \"lease_ms\": \"2s\"}", &v),
                  201);
    ASSERT_EQ_INT(jint(v, "lease_ms"), 2000);
    ASSERT_TRUE(jint(v, "lease_expires_ms") >= (int64_t)t0 + 2000);
    const char *tok = json_string_value(json_object_get(v, "worker_token"));
    ASSERT_TRUE(tok && !strncmp(tok, "gfw_", 4) && strlen(tok) == 68);
    char want_hash[65];
    gf_srv__sha256_hex(tok, want_hash);
    json_decref(v);
    /* The token is shown once: not by GET, not in lists, not to the node (only its hash). */
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/workloads/l", NULL, &v), 200);
    ASSERT_TRUE(json_object_get(v, "worker_token") == NULL);
    ASSERT_EQ_INT(jint(v, "lease_ms"), 2000);
    json_decref(v);
    gf_srv_req req = {.method = "GET", .path = "/api/v1/workloads", .authorization = hdr};
    gf_srv_resp resp;
    gf_srv_handle(srv, &req, &resp);
    ASSERT_TRUE(resp.status == 200 && !strstr(resp.body, "gfw_") && !strstr(resp.body, want_hash));
    free(resp.body);
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/nodes/n1/heartbeat", NULL, &v), 200);
    json_t *al = json_array_get(json_object_get(v, "allocations"), 0);
    ASSERT_EQ_STR(json_string_value(json_object_get(al, "worker_token_sha256")), want_hash);
    json_decref(v);
    /* Renewing: the node may not; an unknown workload is 404; a bad body 400. */
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/workloads/l/renew", NULL, NULL), 403);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads/nope/renew", NULL, NULL), 404);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads/l/renew", "{\"lease_ms\": 5}", NULL), 400);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/workloads/l/renew", NULL, NULL), 405);
    /* A workload without a lease behaves as before: no expiry, nothing to renew. */
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"forever\", \"vram_request\": \"1Gi\"}", &v), 201);
    ASSERT_TRUE(json_is_null(json_object_get(v, "lease_ms")));
    ASSERT_TRUE(json_is_null(json_object_get(v, "lease_expires_ms")));
    json_decref(v);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads/forever/renew", NULL, &v), 409);
    ASSERT_CONTAINS(json_string_value(json_object_get(v, "error")), "has no lease");
    json_decref(v);
    /* Renewed (for 5 s from now): a tick past the first expiry keeps it. */
    uint64_t t1 = gf_srv_now_ms();
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads/l/renew", "{\"lease_ms\": \"5s\"}", &v),
                  200);
    ASSERT_EQ_INT(jint(v, "lease_ms"), 5000);
    ASSERT_TRUE(jint(v, "lease_expires_ms") >= (int64_t)t1 + 5000);
    int64_t expires = jint(v, "lease_expires_ms");
    json_decref(v);
    gf_srv_tick(srv, t0 + 2000 + 1000);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/workloads/l", NULL, NULL), 200);
    /* Not renewed past its expiry: gone, and its 60 GiB are free again. */
    gf_srv_tick(srv, (uint64_t)expires);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/workloads/l", NULL, NULL), 404);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/allocations/l-0", NULL, NULL), 404);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/workloads/forever", NULL, NULL), 200);
    req.path = "/metrics";
    req.authorization = NULL;
    gf_srv_handle(srv, &req, &resp);
    ASSERT_CONTAINS(resp.body, "gpufuse_allocations_released_total{reason=\"lease_expired\"} 1");
    free(resp.body);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"l2\", \"vram_request\": \"60Gi\", \"lease_ms\": 2000}", NULL),
                  201);
    /* A restart after a long outage: the lease gets a full term from the start, not 0. */
    gf_server_free(srv);
    char db[4200];
    snprintf(db, sizeof db, "%s/gpufuse.db", dir);
    sqlite3 *h;
    ASSERT_EQ_INT(sqlite3_open(db, &h), SQLITE_OK);
    ASSERT_EQ_INT(sqlite3_exec(h, "UPDATE workloads SET lease_expires_ms = 1 WHERE name = 'l2'",
                               NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    uint64_t t2 = gf_srv_now_ms();
    open_server_with(dir, 3600 * 1000);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/workloads/l2", NULL, &v), 200);
    ASSERT_TRUE(jint(v, "lease_expires_ms") >= (int64_t)t2 + 2000);
    json_decref(v);
    gf_srv_tick(srv, t2);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/workloads/l2", NULL, NULL), 200);
    gf_server_free(srv);
}

/* DELETE /api/v1/nodes/NAME: 409 naming the workloads, force deletes them, the node's token is
 * revoked with a message; a re-registration without a GPU removes it when free, marks it Missing
 * (and unplaceable) while a workload uses it, and removes it once that workload is deleted. */
static unsigned call_force(const char *method, const char *path, json_t **out)
{
    const char *args[] = {"force", "true"};
    gf_srv_req req = {.method = method, .path = path, .authorization = hdr, .args = args,
                      .n_args = 1};
    gf_srv_resp resp;
    gf_srv_handle(srv, &req, &resp);
    if (out) *out = json_loadb(resp.body, resp.body_len, 0, NULL);
    free(resp.body);
    return resp.status;
}

static const char *gpu_status(const char *uuid)
{
    static char st[32];
    char path[128];
    json_t *v;
    snprintf(path, sizeof path, "/api/v1/gpus/%s", uuid);
    if (call(hdr, "GET", path, NULL, &v) != 200) {
        json_decref(v);
        return "(absent)";
    }
    snprintf(st, sizeof st, "%s", json_string_value(json_object_get(v, "status")));
    json_decref(v);
    return st;
}

TEST(node_removal_and_missing_gpus)
{
    const char *dir = gf_test_tmp_path("rmnode");
    open_server(dir);
    json_t *v;
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/tokens", "{\"node\": \"n1\"}", &v), 201);
    char ntok[300];
    snprintf(ntok, sizeof ntok, "Bearer %s", json_string_value(json_object_get(v, "token")));
    json_decref(v);
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/nodes/register", node_reg, NULL), 201);
    ASSERT_EQ_STR(gpu_status("GPU-a"), "Ready");
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"w\", \"vram_request\": \"60Gi\"}", NULL), 201);
    /* re-registered with GPU-a only: GPU-b is free, so it goes */
    const char *only_a = "{\"name\": \"n1\", \"gpus\": [{\"uuid\": \"GPU-a\", \"index\": 0, "
                         "\"model\": \"H100\", \"vram_bytes\": \"80Gi\"}]}";
    const char *only_b = "{\"name\": \"n1\", \"gpus\": [{\"uuid\": \"GPU-b\", \"index\": 1, "
                         "\"model\": \"T4\", \"vram_bytes\": \"16Gi\"}]}";
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/nodes/register", only_a, NULL), 200);
    ASSERT_EQ_STR(gpu_status("GPU-b"), "(absent)");
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"t\", \"vram_request\": \"1Gi\", \"gpu_models\": [\"T4\"]}",
                       NULL), 409);
    /* with GPU-b only: GPU-a holds w, so it stays Missing and takes nothing new */
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/nodes/register", only_b, NULL), 200);
    ASSERT_EQ_STR(gpu_status("GPU-a"), "Missing");
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"big\", \"vram_request\": \"10Gi\", \"gpu_models\": [\"H100\"]}",
                       &v), 409);
    json_decref(v);
    /* still Missing after a restart */
    gf_server_free(srv);
    open_server(dir);
    ASSERT_EQ_STR(gpu_status("GPU-a"), "Missing");
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"big\", \"vram_request\": \"10Gi\", \"gpu_models\": [\"H100\"]}",
                       NULL), 409);
    ASSERT_EQ_INT(call(hdr, "DELETE", "/api/v1/workloads/w", NULL, NULL), 200);
    ASSERT_EQ_STR(gpu_status("GPU-a"), "(absent)");
    /* node removal */
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"w2\", \"vram_request\": \"1Gi\"}", NULL), 201);
    ASSERT_EQ_INT(call(hdr, "DELETE", "/api/v1/nodes/nope", NULL, NULL), 404);
    ASSERT_EQ_INT(call(ntok, "DELETE", "/api/v1/nodes/n1", NULL, NULL), 403);
    ASSERT_EQ_INT(call(hdr, "DELETE", "/api/v1/nodes/n1", NULL, &v), 409);
    ASSERT_CONTAINS(json_string_value(json_object_get(v, "error")), "w2");
    ASSERT_CONTAINS(json_string_value(json_object_get(v, "error")), "force");
    ASSERT_EQ_STR(json_string_value(json_array_get(json_object_get(v, "workloads"), 0)), "w2");
    json_decref(v);
    ASSERT_EQ_INT(call_force("DELETE", "/api/v1/nodes/n1", &v), 200);
    ASSERT_EQ_INT(json_integer_value(json_object_get(v, "tokens_revoked")), 1);
    json_decref(v);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/workloads/w2", NULL, NULL), 404);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/nodes/n1", NULL, NULL), 404);
    ASSERT_EQ_STR(gpu_status("GPU-b"), "(absent)");
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/nodes/register", node_reg, &v), 401);
    ASSERT_CONTAINS(json_string_value(json_object_get(v, "error")), "revoked");
    json_decref(v);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"w3\", \"vram_request\": \"1Gi\"}", NULL), 409);
    /* the admin may add it again, with the same GPUs */
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/nodes/register", node_reg, NULL), 201);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"w3\", \"vram_request\": \"1Gi\"}", NULL), 201);
    gf_server_free(srv);
}

/* DELETE with query arguments k=v (NULL v: bare). */
static unsigned call_args(const char *path, const char *k, const char *v, json_t **out)
{
    const char *args[] = {k, v};
    gf_srv_req req = {.method = "DELETE", .path = path, .authorization = hdr, .args = args,
                      .n_args = 1};
    gf_srv_resp resp;
    gf_srv_handle(srv, &req, &resp);
    if (out) *out = json_loadb(resp.body, resp.body_len, 0, NULL);
    free(resp.body);
    return resp.status;
}

/* DELETE /api/v1/gpus/UUID: 404 for an unknown GPU, 403 for a node token, 400 naming a bad
 * query argument, 409 naming the workloads on it (nothing changes), force deletes them; the GPU
 * leaves the store and the allocator (a request only it could take is refused, others still
 * land on the node's other GPU), stays gone after a restart, and comes back when its node
 * registers again still reporting it. */
TEST(gpu_removal)
{
    const char *dir = gf_test_tmp_path("rmgpu");
    open_server(dir);
    json_t *v;
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/tokens", "{\"node\": \"n1\"}", &v), 201);
    char ntok[300];
    snprintf(ntok, sizeof ntok, "Bearer %s", json_string_value(json_object_get(v, "token")));
    json_decref(v);
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/nodes/register", node_reg, NULL), 201);
    /* 60 GiB fits GPU-a (H100) only */
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"w\", \"vram_request\": \"60Gi\"}", NULL), 201);
    ASSERT_EQ_INT(call(hdr, "DELETE", "/api/v1/gpus/GPU-nope", NULL, &v), 404);
    ASSERT_CONTAINS(json_string_value(json_object_get(v, "error")), "GPU-nope");
    json_decref(v);
    ASSERT_EQ_INT(call(ntok, "DELETE", "/api/v1/gpus/GPU-a", NULL, NULL), 403);
    ASSERT_EQ_INT(call_args("/api/v1/gpus/GPU-a", "force", "maybe", &v), 400);
    ASSERT_CONTAINS(json_string_value(json_object_get(v, "error")), "force");
    json_decref(v);
    ASSERT_EQ_INT(call_args("/api/v1/gpus/GPU-a", "now", "1", &v), 400);
    ASSERT_CONTAINS(json_string_value(json_object_get(v, "error")), "\"now\"");
    json_decref(v);
    ASSERT_EQ_INT(call(hdr, "DELETE", "/api/v1/gpus/GPU-a", NULL, &v), 409);
    ASSERT_CONTAINS(json_string_value(json_object_get(v, "error")), "n1");
    ASSERT_CONTAINS(json_string_value(json_object_get(v, "error")), "force");
    ASSERT_EQ_STR(json_string_value(json_array_get(json_object_get(v, "workloads"), 0)), "w");
    json_decref(v);
    ASSERT_EQ_STR(gpu_status("GPU-a"), "Ready");
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/workloads/w", NULL, NULL), 200);
    ASSERT_EQ_INT(call_force("DELETE", "/api/v1/gpus/GPU-a", &v), 200);
    ASSERT_EQ_STR(json_string_value(json_object_get(v, "deleted")), "GPU-a");
    ASSERT_EQ_STR(json_string_value(json_object_get(v, "node")), "n1");
    ASSERT_EQ_INT((int)json_array_size(json_object_get(v, "workloads_deleted")), 1);
    json_decref(v);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/workloads/w", NULL, NULL), 404);
    ASSERT_EQ_STR(gpu_status("GPU-a"), "(absent)");
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/nodes/n1", NULL, NULL), 200);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"big\", \"vram_request\": \"60Gi\"}", &v), 409);
    ASSERT_CONTAINS(json_string_value(json_object_get(v, "error")), "GPU 1");
    json_decref(v);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"small\", \"vram_request\": \"1Gi\"}", &v), 201);
    char *dump = json_dumps(v, 0);
    ASSERT_CONTAINS(dump, "GPU-b");
    free(dump);
    json_decref(v);
    /* a free GPU goes without force */
    ASSERT_EQ_INT(call(hdr, "DELETE", "/api/v1/workloads/small", NULL, NULL), 200);
    ASSERT_EQ_INT(call(hdr, "DELETE", "/api/v1/gpus/GPU-b", NULL, &v), 200);
    ASSERT_EQ_INT((int)json_array_size(json_object_get(v, "workloads_deleted")), 0);
    json_decref(v);
    ASSERT_EQ_INT(call(hdr, "DELETE", "/api/v1/gpus/GPU-b", NULL, NULL), 404);
    /* gone after a restart too; back when the node registers again with it */
    gf_server_free(srv);
    open_server(dir);
    ASSERT_EQ_STR(gpu_status("GPU-a"), "(absent)");
    ASSERT_EQ_STR(gpu_status("GPU-b"), "(absent)");
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"small\", \"vram_request\": \"1Gi\"}", NULL), 409);
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/nodes/register", node_reg, NULL), 200);
    ASSERT_EQ_STR(gpu_status("GPU-a"), "Ready");
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"big\", \"vram_request\": \"60Gi\"}", NULL), 201);
    gf_server_free(srv);
}

/* POST with an optional body and query argument. */
static unsigned call_post(const char *auth, const char *path, const char *body, const char *k,
                          json_t **out)
{
    const char *args[] = {k, "1"};
    gf_srv_req req = {.method = "POST", .path = path, .authorization = auth, .body = body,
                      .body_len = body ? strlen(body) : 0, .args = args, .n_args = k ? 1 : 0};
    gf_srv_resp resp;
    gf_srv_handle(srv, &req, &resp);
    if (out) *out = json_loadb(resp.body, resp.body_len, 0, NULL);
    free(resp.body);
    return resp.status;
}

static int gpu_cordoned(const char *uuid)
{
    char path[128];
    json_t *v;
    snprintf(path, sizeof path, "/api/v1/gpus/%s", uuid);
    ASSERT_EQ_INT(call(hdr, "GET", path, NULL, &v), 200);
    int on = json_is_true(json_object_get(v, "cordoned"));
    ASSERT_TRUE(json_is_boolean(json_object_get(v, "cordoned")));
    json_decref(v);
    return on;
}

/* POST /api/v1/gpus/UUID/cordon | uncordon: a cordoned GPU takes no new placement, its workload
 * stays; the cordon holds across a restart and a re-registration, and uncordoning a Missing GPU
 * leaves it unplaceable until its node reports it again. Bad input: 404, 403, 400 naming the
 * body or the query argument, 405. */
TEST(gpu_cordon_route)
{
    const char *dir = gf_test_tmp_path("cordon");
    open_server(dir);
    json_t *v;
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/tokens", "{\"node\": \"n1\"}", &v), 201);
    char ntok[300];
    snprintf(ntok, sizeof ntok, "Bearer %s", json_string_value(json_object_get(v, "token")));
    json_decref(v);
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/nodes/register", node_reg, NULL), 201);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads",
                       "{\"name\": \"w\", \"vram_request\": \"60Gi\"}", NULL), 201);
    const char *h1 = "{\"name\": \"h1\", \"vram_request\": \"10Gi\", \"gpu_models\": [\"H100\"]}";
    ASSERT_TRUE(!(gpu_cordoned("GPU-a")));
    /* bad input */
    ASSERT_EQ_INT(call_post(hdr, "/api/v1/gpus/GPU-nope/cordon", NULL, NULL, &v), 404);
    ASSERT_CONTAINS(json_string_value(json_object_get(v, "error")), "GPU-nope");
    json_decref(v);
    ASSERT_EQ_INT(call_post(ntok, "/api/v1/gpus/GPU-a/cordon", NULL, NULL, NULL), 403);
    ASSERT_EQ_INT(call_post(hdr, "/api/v1/gpus/GPU-a/cordon", "{\"on\": true}", NULL, &v), 400);
    ASSERT_CONTAINS(json_string_value(json_object_get(v, "error")), "body");
    json_decref(v);
    ASSERT_EQ_INT(call_post(hdr, "/api/v1/gpus/GPU-a/cordon", NULL, "until", &v), 400);
    ASSERT_CONTAINS(json_string_value(json_object_get(v, "error")), "until");
    json_decref(v);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/gpus/GPU-a/cordon", NULL, NULL), 405);
    ASSERT_TRUE(!(gpu_cordoned("GPU-a")));
    /* cordoned: w stays, nothing new lands there */
    ASSERT_EQ_INT(call_post(hdr, "/api/v1/gpus/GPU-a/cordon", NULL, NULL, &v), 200);
    ASSERT_TRUE(json_is_true(json_object_get(v, "cordoned")));
    ASSERT_EQ_STR(json_string_value(json_object_get(v, "status")), "Ready");
    json_decref(v);
    ASSERT_EQ_INT(call(hdr, "GET", "/api/v1/workloads/w", NULL, NULL), 200);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads", h1, NULL), 409);
    /* across a restart and a re-registration */
    gf_server_free(srv);
    open_server(dir);
    ASSERT_TRUE(gpu_cordoned("GPU-a"));
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads", h1, NULL), 409);
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/nodes/register", node_reg, NULL), 200);
    ASSERT_TRUE(gpu_cordoned("GPU-a"));
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads", h1, NULL), 409);
    /* Missing (its node stopped reporting it; w holds it): uncordoned, still unplaceable */
    const char *only_b = "{\"name\": \"n1\", \"gpus\": [{\"uuid\": \"GPU-b\", \"index\": 1, "
                         "\"model\": \"T4\", \"vram_bytes\": \"16Gi\"}]}";
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/nodes/register", only_b, NULL), 200);
    ASSERT_EQ_INT(call_post(hdr, "/api/v1/gpus/GPU-a/uncordon", NULL, NULL, &v), 200);
    ASSERT_TRUE(!(json_is_true(json_object_get(v, "cordoned"))));
    ASSERT_EQ_STR(json_string_value(json_object_get(v, "status")), "Missing");
    json_decref(v);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads", h1, NULL), 409);
    /* reported again: placeable */
    ASSERT_EQ_INT(call(ntok, "POST", "/api/v1/nodes/register", node_reg, NULL), 200);
    ASSERT_EQ_INT(call(hdr, "POST", "/api/v1/workloads", h1, NULL), 201);
    gf_server_free(srv);
}
