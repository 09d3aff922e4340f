/* SPDX-License-Identifier: Apache-2.0 */
/* Chargeback arithmetic with made-up clocks (gf_cost_add, to the cent), the period parser,
 * the usage-sample rings, and the cost tables kept by triggers through the request handler. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/observe.h"
#include "server/server.h"
#include "test.h"

#define H 3600000LL /* one hour in ms */
#define GI (1024.0 * 1024 * 1024)

/* 10 TFLOPs + 4 GiB reserved for two hours at 2 per TFLOP-hour and 0.5 per GiB-hour, burst x1.5:
 * hour 1 used 15 TFLOPs and 6 GiB (5 and 2 above the request), hour 2 used 5 TFLOPs, 2 GiB. */
static const gf_cost_usage usage[] = {
    {.start_ms = 0, .end_ms = H, .tflops_used = 15, .vram_used = 6 * GI},
    {.start_ms = H, .end_ms = 2 * H, .tflops_used = 5, .vram_used = 2 * GI},
};
static const gf_cost_alloc alloc = {.start_ms = 0, .end_ms = 2 * H, .tflops_request = 10,
                                    .vram_request = 4 * GI, .usage = usage, .n_usage = 2};
static const gf_price price = {.tflop_hour = 2, .gib_hour = 0.5, .burst_ratio = 1.5};

TEST(cost_whole_life_to_the_cent)
{
    gf_cost_sum s = {0};
    gf_cost_add(&alloc, 0, 2 * H, &price, &s);
    ASSERT_NEAR(s.reserved_tflop_h, 20, 1e-9);
    ASSERT_NEAR(s.reserved_gib_h, 8, 1e-9);
    ASSERT_NEAR(s.burst_tflop_h, 5, 1e-9);
    ASSERT_NEAR(s.burst_gib_h, 2, 1e-9);
    ASSERT_NEAR(s.used_tflop_h, 15, 1e-9); /* within the request: 10 + 5 */
    ASSERT_EQ_INT(gf_cost_cents(s.reserved_cost), 4400);  /* 20 x 2 + 8 x 0.5 */
    ASSERT_EQ_INT(gf_cost_cents(s.burst_cost), 1650);     /* (5 x 2 + 2 x 0.5) x 1.5 */
    ASSERT_EQ_INT(gf_cost_cents(s.idle_cost), 1100);      /* (20 - 15) x 2 + (8 - 6) x 0.5 */
}

TEST(cost_window_clips_reservation_and_usage)
{
    gf_cost_sum s = {0};
    gf_cost_add(&alloc, H / 2, H + H / 2, &price, &s); /* half of each hour */
    ASSERT_EQ_INT(gf_cost_cents(s.reserved_cost), 2200);
    ASSERT_EQ_INT(gf_cost_cents(s.burst_cost), 825);      /* (2.5 x 2 + 1 x 0.5) x 1.5 */
    gf_cost_sum none = {0};
    gf_cost_add(&alloc, 3 * H, 4 * H, &price, &none);     /* after its life */
    ASSERT_EQ_INT(gf_cost_cents(none.reserved_cost + none.burst_cost), 0);
    /* A window larger than the life charges only the life. */
    gf_cost_sum big = {0};
    gf_cost_add(&alloc, -H, 10 * H, &price, &big);
    ASSERT_EQ_INT(gf_cost_cents(big.reserved_cost), 4400);
}

TEST(cost_time_without_reports_is_unused)
{
    gf_cost_alloc a = alloc;
    a.n_usage = 0;
    gf_cost_sum s = {0};
    gf_cost_add(&a, 0, 2 * H, &price, &s);
    ASSERT_EQ_INT(gf_cost_cents(s.burst_cost), 0);
    ASSERT_EQ_INT(gf_cost_cents(s.idle_cost), 4400);
}

TEST(cost_cents_rounding)
{
    ASSERT_EQ_INT(gf_cost_cents(0.145), 15); /* 14.499999... in binary */
    ASSERT_EQ_INT(gf_cost_cents(1.004), 100);
    ASSERT_EQ_INT(gf_cost_cents(0), 0);
}

TEST(cost_parse_time)
{
    char err[256];
    int64_t t = 0, now = 1700000000000LL;
    ASSERT_EQ_INT(gf_cost_parse_time("from", "1234", now, &t, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(t, 1234);
    ASSERT_EQ_INT(gf_cost_parse_time("from", "now", now, &t, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(t, now);
    ASSERT_EQ_INT(gf_cost_parse_time("from", "-24h", now, &t, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(t, now - 24 * H);
    ASSERT_EQ_INT(gf_cost_parse_time("from", "2024-05-01", now, &t, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(t, 1714521600000LL);
    ASSERT_EQ_INT(gf_cost_parse_time("to", "2024-05-01T01:00:00Z", now, &t, err, sizeof err),
                  GF_OK);
    ASSERT_EQ_INT(t, 1714521600000LL + H);
    const char *bad[] = {"", "yesterday", "2024-13-01", "2024-05-01T01:00:00", "-3parsecs",
                         "2024-05-01T25:00:00Z", "12345678901234567"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_MSG(gf_cost_parse_time("to", bad[i], now, &t, err, sizeof err) == GF_EINVAL,
                   "\"%s\" should be refused", bad[i]);
        ASSERT_CONTAINS(err, "to");
    }
}

TEST(samples_ring_is_bounded_and_ordered)
{
    gf_samples *s = gf_samples_new();
    ASSERT_TRUE(s != NULL);
    for (int i = 0; i < GF_SAMPLES_PER_SERIES + 10; i++)
        gf_samples_add(s, "GPU-1", 1000 + i, i % 100, (uint64_t)i);
    gf_sample *out = malloc(GF_SAMPLES_PER_SERIES * 2 * sizeof *out);
    size_t n = gf_samples_get(s, "GPU-1", 0, out, GF_SAMPLES_PER_SERIES * 2);
    ASSERT_EQ_INT(n, GF_SAMPLES_PER_SERIES);
    ASSERT_EQ_INT(out[0].t_ms, 1010);
    ASSERT_EQ_INT(out[n - 1].t_ms, 1000 + GF_SAMPLES_PER_SERIES + 9);
    ASSERT_EQ_INT(gf_samples_get(s, "GPU-1", 1000 + GF_SAMPLES_PER_SERIES + 5, out, 100), 5);
    ASSERT_EQ_INT(gf_samples_get(s, "nope", 0, out, 100), 0);
    /* Allocations: busy time over wall time; the first report only primes. */
    gf_samples_add_busy(s, "w-0", 10000, 0, 1);
    gf_samples_add_busy(s, "w-0", 11000, 250000000, 2); /* 0.25 s busy in 1 s */
    ASSERT_EQ_INT(gf_samples_get(s, "w-0", 0, out, 10), 1);
    ASSERT_NEAR(out[0].utilization, 25, 1e-9);
    /* More series than kept: the least recently reported go. */
    char key[32];
    for (int i = 0; i < GF_SAMPLES_MAX_SERIES + 5; i++) {
        snprintf(key, sizeof key, "g%d", i);
        gf_samples_add(s, key, 20000 + i, 1, 1);
    }
    ASSERT_EQ_INT(gf_samples_get(s, "GPU-1", 0, out, 10), 0);
    ASSERT_EQ_INT(gf_samples_get(s, key, 0, out, 10), 1);
    free(out);
    gf_samples_free(s);
}

/* ---- through the handler ---------------------------------------------------------------------- */

static gf_server *srv;
static char hdr[300];

static unsigned call(const char *method, const char *path, const char *body,
                     const char *const *args, unsigned n_args, json_t **out)
{
    gf_srv_req req = {.method = method, .path = path, .authorization = hdr, .body = body,
                      .body_len = body ? strlen(body) : 0, .args = args, .n_args = n_args};
    gf_srv_resp resp;
    gf_srv_handle(srv, &req, &resp);
    if (out) *out = json_loads(resp.body ? resp.body : "null", JSON_DECODE_ANY, NULL);
    free(resp.body);
    return resp.status;
}

TEST(costs_kept_after_delete_by_triggers)
{
    char err[1024];
    const char *dir = gf_test_tmp_path("data");
    gf_server_config cfg = {.data_dir = dir};
    if (gf_server_new(&cfg, &srv, err, sizeof err) != GF_OK) GF_TEST_FAILF("server: %s", err);
    char path[4200];
    snprintf(path, sizeof path, "%s/admin.token", dir);
    char *t = gf_test_read_file(path, NULL);
    t[strcspn(t, "\n")] = 0;
    snprintf(hdr, sizeof hdr, "Bearer %s", t);
    free(t);
    ASSERT_EQ_INT(call("POST", "/api/v1/nodes/register",
                       "{\"name\": \"n1\", \"gpus\": [{\"uuid\": \"G1\", \"model\": \"x\", "
                       "\"vram_bytes\": \"80Gi\", \"tflops\": 100}]}", NULL, 0, NULL), 201);
    ASSERT_EQ_INT(call("POST", "/api/v1/workloads", "{\"name\": \"w\", \"tflops_request\": 10}",
                       NULL, 0, NULL), 201);
    int64_t open = -1;
    gf_store_query_int(srv->store, "SELECT COUNT(*) FROM cost_allocs WHERE id = 'w-0' AND "
                       "end_ms IS NULL", 0, &open, "");
    ASSERT_EQ_INT(open, 1);
    ASSERT_EQ_INT(call("DELETE", "/api/v1/workloads/w", NULL, NULL, 0, NULL), 200);
    gf_store_query_int(srv->store, "SELECT COUNT(*) FROM cost_allocs WHERE id = 'w-0' AND "
                       "end_ms IS NOT NULL", 0, &open, "");
    ASSERT_EQ_INT(open, 1);
    /* Move its life to a known hour: 10 TFLOPs x 1 h at 2 per TFLOP-hour = 20.00. */
    gf_store_exec(srv->store, "UPDATE cost_allocs SET start_ms = 0, end_ms = 3600000", NULL, "");
    ASSERT_EQ_INT(call("PUT", "/api/v1/pools/default/prices", "{\"tflop_hour\": 2}", NULL, 0,
                       NULL), 200);
    const char *args[] = {"workload", "w", "from", "0", "to", "7200000"};
    json_t *v = NULL;
    ASSERT_EQ_INT(call("GET", "/api/v1/costs", NULL, args, 3, &v), 200);
    json_t *w = json_array_get(json_object_get(v, "workloads"), 0);
    ASSERT_EQ_INT(json_integer_value(json_object_get(w, "cost_cents")), 2000);
    json_decref(v);
    const char *bad[] = {"from", "soon"};
    ASSERT_EQ_INT(call("GET", "/api/v1/costs", NULL, bad, 1, &v), 400);
    ASSERT_CONTAINS(json_string_value(json_object_get(v, "error")), "from");
    json_decref(v);
    gf_server_free(srv);
}
