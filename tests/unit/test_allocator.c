/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the pool allocator: exact placements per strategy, oversubscription and QoS
 * admission, model filters, node selectors, multi-GPU all-or-nothing, release, node loss,
 * restore, the "why not" messages and bad requests. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocator/alloc_internal.h" /* gf_alloc__frag_set_reference */
#include "gpufuse/allocator.h"
#include "test.h"

#define GiB (1024ull * 1024 * 1024)

static gf_alloc *mk(gf_alloc_strategy s, double ratio_t, double ratio_v)
{
    gf_alloc *a = NULL;
    ASSERT_EQ_INT(gf_alloc_new(&a), GF_OK);
    gf_alloc_pool_spec ps = {"default", s, ratio_t, ratio_v};
    char err[256] = "";
    ASSERT_MSG(gf_alloc_pool_set(a, &ps, err, sizeof(err)) == GF_OK, "pool_set: %s", err);
    return a;
}

static void node(gf_alloc *a, const char *name, const char *zone, int ready)
{
    gf_alloc_label l = {"zone", zone};
    gf_alloc_node_spec ns = {name, "default", zone ? &l : NULL, zone ? 1 : 0, ready};
    char err[256] = "";
    ASSERT_MSG(gf_alloc_node_add(a, &ns, err, sizeof(err)) == GF_OK, "node_add: %s", err);
}

static void gpu(gf_alloc *a, const char *uuid, const char *nd, unsigned idx, const char *model,
                uint64_t vram, double tflops)
{
    gf_alloc_gpu_spec gs = {uuid, nd, model, idx, vram, tflops};
    char err[256] = "";
    ASSERT_MSG(gf_alloc_gpu_add(a, &gs, err, sizeof(err)) == GF_OK, "gpu_add: %s", err);
}

static gf_alloc_request vreq(uint64_t vram)
{
    gf_alloc_request r;
    memset(&r, 0, sizeof(r));
    r.vram_request = vram;
    return r;
}

static gf_alloc_request treq(double req, double lim, gf_alloc_qos q)
{
    gf_alloc_request r;
    memset(&r, 0, sizeof(r));
    r.tflops_request = req;
    r.tflops_limit = lim;
    r.qos = q;
    return r;
}

/* Places and returns the uuid of the first placement ("" when refused). */
static const char *put(gf_alloc *a, const char *id, const gf_alloc_request *r,
                       gf_alloc_result *res)
{
    gf_status st = gf_alloc_place(a, id, r, res);
    return st == GF_OK ? res->placements[0].gpu_uuid : "";
}

static gf_alloc_gpu_info info(gf_alloc *a, const char *uuid)
{
    gf_alloc_gpu_info gi;
    ASSERT_EQ_INT(gf_alloc_gpu_get(a, uuid, &gi), GF_OK);
    return gi;
}

/* 3 GPUs of 40 GiB: gA, gB on n1, gC on n2; gB has 10 GiB free, gC 30 GiB. */
static gf_alloc *three(gf_alloc_strategy s)
{
    gf_alloc *a = mk(s, 1, 1);
    node(a, "n1", NULL, 1);
    node(a, "n2", NULL, 1);
    gpu(a, "gA", "n1", 0, "A100-40G", 40 * GiB, 100);
    gpu(a, "gB", "n1", 1, "A100-40G", 40 * GiB, 100);
    gpu(a, "gC", "n2", 0, "A100-40G", 40 * GiB, 100);
    gf_alloc_result res;
    gf_alloc_request r = vreq(30 * GiB);
    r.gpu = "gB";
    ASSERT_EQ_STR(put(a, "pre-b", &r, &res), "gB");
    r = vreq(10 * GiB);
    r.gpu = "gC";
    ASSERT_EQ_STR(put(a, "pre-c", &r, &res), "gC");
    return a;
}

TEST(binpack_picks_fullest_gpu_that_fits)
{
    gf_alloc *a = three(GF_ALLOC_BINPACK);
    gf_alloc_result res;
    gf_alloc_request r = vreq(8 * GiB);
    ASSERT_EQ_STR(put(a, "w1", &r, &res), "gB");
    ASSERT_EQ_STR(res.placements[0].node, "n1");
    ASSERT_EQ_INT(res.placements[0].gpu_index, 1);
    ASSERT_EQ_U64(res.placements[0].vram_request, 8 * GiB);
    ASSERT_EQ_U64(res.placements[0].vram_limit, 8 * GiB);
    r = vreq(15 * GiB); /* gB has 2 GiB left now; gC 30, gA 40 */
    ASSERT_EQ_STR(put(a, "w2", &r, &res), "gC");
    r = vreq(35 * GiB);
    ASSERT_EQ_STR(put(a, "w3", &r, &res), "gA");
    gf_alloc_free(a);
}

TEST(spread_picks_emptiest_gpu_ties_by_stable_id)
{
    gf_alloc *a = three(GF_ALLOC_SPREAD);
    gf_alloc_result res;
    gf_alloc_request r = vreq(8 * GiB);
    ASSERT_EQ_STR(put(a, "w1", &r, &res), "gA"); /* 40 free */
    ASSERT_EQ_STR(put(a, "w2", &r, &res), "gA"); /* 32 vs gC 30 */
    ASSERT_EQ_STR(put(a, "w3", &r, &res), "gC"); /* 30 vs gA 24 */
    gf_alloc_free(a);

    a = mk(GF_ALLOC_SPREAD, 1, 1);
    node(a, "n1", NULL, 1);
    gpu(a, "g0", "n1", 0, "T4", 0, 0);
    gpu(a, "g1", "n1", 1, "T4", 0, 0);
    r = vreq(1 * GiB);
    ASSERT_EQ_STR(put(a, "x", &r, &res), "g0");
    ASSERT_EQ_STR(put(a, "y", &r, &res), "g1");
    ASSERT_EQ_STR(put(a, "z", &r, &res), "g0");
    gf_alloc_free(a);
}

/* FGD: two single-GPU nodes, g0 with 60% free, g1 empty; the workload is all 50% tasks. A 20%
 * task on g0 would leave 40% that no 50% task can use (a fragment); on g1 it leaves 80%. */
TEST(least_fragmentation_avoids_creating_fragments)
{
    for (int s = 0; s < 3; s++) {
        gf_alloc *a = mk((gf_alloc_strategy)s, 1, 1);
        node(a, "n0", NULL, 1);
        node(a, "n1", NULL, 1);
        gpu(a, "g0", "n0", 0, "X", 16 * GiB, 100);
        gpu(a, "g1", "n1", 0, "X", 16 * GiB, 100);
        gf_alloc_task_type tt = {0, 50, 0, 1, 1.0};
        char err[256] = "";
        ASSERT_MSG(gf_alloc_pool_set_workload(a, "default", &tt, 1, err, sizeof(err)) == GF_OK,
                   "%s", err);
        gf_alloc_result res;
        gf_alloc_request r = treq(0, 0, GF_ALLOC_QOS_LOW);
        r.percent_request = 40;
        r.gpu = "g0";
        ASSERT_EQ_STR(put(a, "pre", &r, &res), "g0");
        r.gpu = NULL;
        r.percent_request = 20;
        const char *want = s == GF_ALLOC_LEAST_FRAG ? "g1" : s == GF_ALLOC_BINPACK ? "g0" : "g1";
        ASSERT_EQ_STR(put(a, "w", &r, &res), want);
        ASSERT_NEAR(res.placements[0].tflops_request, 20.0, 0);
        /* a 10% task: g0 60->50 still fits a 50% task, so FGD, like binpack, fills g0 */
        if (s == GF_ALLOC_LEAST_FRAG) {
            r.percent_request = 10;
            ASSERT_EQ_STR(put(a, "w2", &r, &res), "g0");
        }
        gf_alloc_free(a);
    }
}

TEST(least_fragmentation_learns_distribution_seen_so_far)
{
    gf_alloc *a = mk(GF_ALLOC_LEAST_FRAG, 1, 1);
    node(a, "n0", NULL, 1);
    node(a, "n1", NULL, 1);
    gpu(a, "g0", "n0", 0, "X", 16 * GiB, 100);
    gpu(a, "g1", "n1", 0, "X", 16 * GiB, 100);
    gf_alloc_result res;
    gf_alloc_request r = treq(50, 0, GF_ALLOC_QOS_LOW);
    ASSERT_EQ_STR(put(a, "a", &r, &res), "g0"); /* nothing fragments yet: ties by id */
    r = treq(30, 0, GF_ALLOC_QOS_LOW);
    /* seen: {50, 30}. g0 50->20: both types lose g0 (20 free strands); g1 100->70: fits both */
    ASSERT_EQ_STR(put(a, "b", &r, &res), "g1");
    gf_alloc_free(a);
}

TEST(oversubscription_checks_requests_and_limits)
{
    gf_alloc *a = mk(GF_ALLOC_BINPACK, 1.5, 1);
    node(a, "n0", NULL, 1);
    gpu(a, "g0", "n0", 0, "X", 16 * GiB, 100);
    gf_alloc_result res;
    gf_alloc_request r = treq(60, 60, GF_ALLOC_QOS_LOW);
    ASSERT_EQ_STR(put(a, "a", &r, &res), "g0");
    ASSERT_EQ_STR(put(a, "b", &r, &res), "g0"); /* 120 of 150 */
    r = treq(20, 40, GF_ALLOC_QOS_MEDIUM);       /* requests 140 <= 150, limits 160 > 150 */
    ASSERT_EQ_INT(gf_alloc_place(a, "c", &r, &res), GF_ENOSPC);
    ASSERT_EQ_INT(res.why, GF_ALLOC_WHY_TFLOPS);
    ASSERT_EQ_STR(res.msg, "largest compute left for limits in pool 'default' is 30 TFLOPs on n0 "
                           "GPU 0 (limits count against capacity x 1.5); limit asks 40 TFLOPs");
    r = treq(20, 30, GF_ALLOC_QOS_MEDIUM);
    ASSERT_EQ_STR(put(a, "c", &r, &res), "g0");
    gf_alloc_gpu_info gi = info(a, "g0");
    ASSERT_NEAR(gi.tflops_request_sum, 140, 0);
    ASSERT_NEAR(gi.tflops_limit_sum, 150, 0);
    ASSERT_NEAR(gi.tflops_free, 0, 0);
    /* a single limit never exceeds the GPU, whatever the ratio */
    gf_alloc_free(a);
    a = mk(GF_ALLOC_BINPACK, 2, 1);
    node(a, "n0", NULL, 1);
    gpu(a, "g0", "n0", 0, "X", 16 * GiB, 100);
    r = treq(10, 120, GF_ALLOC_QOS_LOW);
    ASSERT_EQ_INT(gf_alloc_place(a, "big", &r, &res), GF_ENOSPC);
    ASSERT_EQ_STR(res.msg, "compute limit 120 TFLOPs is more than any GPU in pool 'default' has "
                           "(largest: 100 TFLOPs on n0 GPU 0)");
    gf_alloc_free(a);
}

TEST(qos_high_is_never_oversubscribed)
{
    gf_alloc *a = mk(GF_ALLOC_BINPACK, 2, 1);
    node(a, "n0", NULL, 1);
    gpu(a, "g0", "n0", 0, "X", 16 * GiB, 100);
    gf_alloc_result res;
    gf_alloc_request r = treq(50, 0, GF_ALLOC_QOS_LOW);
    ASSERT_EQ_STR(put(a, "low", &r, &res), "g0");
    r = treq(80, 0, GF_ALLOC_QOS_HIGH);
    ASSERT_EQ_STR(put(a, "hi", &r, &res), "g0"); /* high 80 <= 100; all 130 <= 200 */
    r = treq(30, 0, GF_ALLOC_QOS_CRITICAL);      /* high+critical 110 > 100 */
    ASSERT_EQ_INT(gf_alloc_place(a, "crit", &r, &res), GF_ENOSPC);
    ASSERT_EQ_INT(res.why, GF_ALLOC_WHY_QOS);
    ASSERT_EQ_STR(res.msg, "largest compute free to QoS high/critical in pool 'default' is 20 "
                           "TFLOPs on n0 GPU 0 (high and critical requests are never "
                           "oversubscribed); asked 30 TFLOPs");
    r = treq(30, 0, GF_ALLOC_QOS_LOW); /* low may use the oversubscribed part: 160 <= 200 */
    ASSERT_EQ_STR(put(a, "low2", &r, &res), "g0");
    r = treq(20, 0, GF_ALLOC_QOS_HIGH);
    ASSERT_EQ_STR(put(a, "hi2", &r, &res), "g0"); /* exactly 100 of high */
    gf_alloc_gpu_info gi = info(a, "g0");
    ASSERT_NEAR(gi.tflops_request_hi_sum, 100, 0);
    ASSERT_NEAR(gi.tflops_request_sum, 180, 0);
    /* with ratio 1, low and high are the same */
    gf_alloc_free(a);
}

TEST(model_filter)
{
    gf_alloc *a = mk(GF_ALLOC_BINPACK, 1, 1);
    node(a, "n0", NULL, 1);
    gpu(a, "t4", "n0", 0, "Tesla T4", 0, 0);
    gpu(a, "a10", "n0", 1, "A10", 0, 0);
    gpu(a, "t4b", "n0", 2, "T4", 0, 0);
    gf_alloc_result res;
    gf_alloc_request r = vreq(1 * GiB);
    const char *h100[] = {"H100"};
    r.models = h100;
    r.n_models = 1;
    ASSERT_EQ_INT(gf_alloc_place(a, "x", &r, &res), GF_ENOSPC);
    ASSERT_EQ_INT(res.why, GF_ALLOC_WHY_MODEL);
    ASSERT_EQ_STR(res.msg, "no GPU of model H100 in pool 'default' (models there: A10, T4)");
    const char *two[] = {"nvidia h100 80gb hbm3", "NVIDIA A10"};
    r.models = two;
    r.n_models = 2;
    ASSERT_EQ_STR(put(a, "y", &r, &res), "a10");
    const char *t4[] = {"t4"};
    r.models = t4;
    r.n_models = 1;
    r.vram_request = 14 * GiB;
    ASSERT_EQ_STR(put(a, "z", &r, &res), "t4");
    ASSERT_EQ_STR(put(a, "z2", &r, &res), "t4b");
    ASSERT_EQ_INT(gf_alloc_place(a, "z3", &r, &res), GF_ENOSPC);
    ASSERT_EQ_INT(res.why, GF_ALLOC_WHY_VRAM);
    ASSERT_EQ_STR(res.msg, "largest free VRAM in pool 'default' is 759.06 MiB on n0 GPU 0; asked "
                           "14 GiB");
    gf_alloc_free(a);
}

TEST(node_selector_and_readiness)
{
    gf_alloc *a = mk(GF_ALLOC_BINPACK, 1, 1);
    node(a, "west-1", "us-west", 1);
    node(a, "east-1", "us-east", 0);
    gpu(a, "w0", "west-1", 0, "X", 16 * GiB, 10);
    gpu(a, "e0", "east-1", 0, "X", 16 * GiB, 10);
    gf_alloc_result res;
    gf_alloc_request r = vreq(1 * GiB);
    gf_alloc_label sel = {"zone", "eu-central"};
    r.selector = &sel;
    r.n_selector = 1;
    ASSERT_EQ_INT(gf_alloc_place(a, "x", &r, &res), GF_ENOSPC);
    ASSERT_EQ_INT(res.why, GF_ALLOC_WHY_SELECTOR);
    ASSERT_EQ_STR(res.msg, "node selector zone=eu-central matches no ready node in pool 'default'");
    sel.value = "us-east";
    ASSERT_EQ_INT(gf_alloc_place(a, "x", &r, &res), GF_ENOSPC);
    ASSERT_EQ_INT(res.why, GF_ALLOC_WHY_NOT_READY);
    ASSERT_EQ_STR(res.msg, "node selector zone=us-east matches no ready node in pool 'default'");
    ASSERT_EQ_INT(gf_alloc_node_set_ready(a, "east-1", 1, NULL, 0), GF_OK);
    ASSERT_EQ_STR(put(a, "x", &r, &res), "e0");
    sel.value = "us-west";
    ASSERT_EQ_STR(put(a, "y", &r, &res), "w0");
    r.selector = NULL;
    r.n_selector = 0;
    r.node = "east-1";
    ASSERT_EQ_STR(put(a, "z", &r, &res), "e0");
    gf_alloc_free(a);
}

static uint64_t vfree(gf_alloc *a, const char *u)
{
    return info(a, u).vram_free;
}

TEST(multi_gpu_all_or_nothing)
{
    gf_alloc *a = mk(GF_ALLOC_BINPACK, 1, 1);
    node(a, "n0", NULL, 1);
    node(a, "n1", NULL, 1);
    gpu(a, "a0", "n0", 0, "X", 40 * GiB, 100);
    gpu(a, "a1", "n0", 1, "X", 40 * GiB, 100);
    gpu(a, "b0", "n1", 0, "X", 40 * GiB, 100);
    gpu(a, "b1", "n1", 1, "X", 40 * GiB, 100);
    gf_alloc_result res;
    gf_alloc_request r = vreq(20 * GiB);
    r.gpu = "a1";
    ASSERT_EQ_STR(put(a, "pre", &r, &res), "a1"); /* a1: 20 free */
    r = vreq(30 * GiB);
    r.gpu_count = 2;
    ASSERT_EQ_INT(gf_alloc_place(a, "m1", &r, &res), GF_OK);
    ASSERT_EQ_INT(res.n, 2);
    ASSERT_EQ_STR(res.placements[0].gpu_uuid, "b0");
    ASSERT_EQ_STR(res.placements[1].gpu_uuid, "b1");
    /* again: only a0 fits on one node */
    ASSERT_EQ_INT(gf_alloc_place(a, "m2", &r, &res), GF_ENOSPC);
    ASSERT_EQ_INT(res.why, GF_ALLOC_WHY_MULTI);
    ASSERT_EQ_INT(res.n, 0);
    ASSERT_EQ_STR(res.msg, "asked 2 GPUs on one node; at most 1 fit on one node in pool 'default' "
                           "(n0); ask for fewer GPUs or a remote vGPU");
    /* remote, 2 x 15 GiB: a1 (20 free) and a0 (40); binpack fills a1 first */
    r = vreq(15 * GiB);
    r.gpu_count = 3;
    r.remote = 1;
    ASSERT_EQ_INT(gf_alloc_place(a, "m3", &r, &res), GF_ENOSPC);
    ASSERT_EQ_STR(res.msg, "asked 3 GPUs; only 2 GPUs in pool 'default' can take the request");
    ASSERT_EQ_U64(vfree(a, "a0"), 40 * GiB); /* no residue */
    ASSERT_EQ_U64(vfree(a, "a1"), 20 * GiB);
    ASSERT_EQ_U64(vfree(a, "b0"), 10 * GiB);
    ASSERT_EQ_U64(vfree(a, "b1"), 10 * GiB);
    ASSERT_EQ_INT(gf_alloc_count(a), 2);
    r.gpu_count = 2;
    ASSERT_EQ_INT(gf_alloc_place(a, "m3", &r, &res), GF_OK);
    ASSERT_EQ_STR(res.placements[0].gpu_uuid, "a0");
    ASSERT_EQ_STR(res.placements[1].gpu_uuid, "a1");
    ASSERT_EQ_U64(vfree(a, "a0"), 25 * GiB);
    ASSERT_EQ_U64(vfree(a, "a1"), 5 * GiB);
    gf_alloc_free(a);
}

static int snap_fn(const gf_alloc_gpu_info *g, void *ctx)
{
    gf_alloc_gpu_info *v = ctx;
    while (v->uuid[0]) v++;
    *v = *g;
    return 0;
}

static void snapshot(gf_alloc *a, gf_alloc_gpu_info *v, size_t n)
{
    memset(v, 0, n * sizeof(*v));
    ASSERT_TRUE(gf_alloc_gpu_foreach(a, snap_fn, v) <= n);
}

static void same(const gf_alloc_gpu_info *x, const gf_alloc_gpu_info *y, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ_STR(x[i].uuid, y[i].uuid);
        ASSERT_EQ_U64(x[i].vram_free, y[i].vram_free);
        ASSERT_EQ_U64(x[i].vram_request_sum, y[i].vram_request_sum);
        ASSERT_EQ_U64(x[i].vram_limit_sum, y[i].vram_limit_sum);
        ASSERT_EQ_U64(x[i].vram_request_hi_sum, y[i].vram_request_hi_sum);
        ASSERT_TRUE(x[i].tflops_free == y[i].tflops_free);
        ASSERT_TRUE(x[i].tflops_request_sum == y[i].tflops_request_sum);
        ASSERT_TRUE(x[i].tflops_limit_sum == y[i].tflops_limit_sum);
        ASSERT_TRUE(x[i].tflops_request_hi_sum == y[i].tflops_request_hi_sum);
        ASSERT_EQ_INT(x[i].n_allocs, y[i].n_allocs);
    }
}

static void inventory(gf_alloc *a)
{
    node(a, "n0", "z1", 1);
    node(a, "n1", "z2", 1);
    gpu(a, "h0", "n0", 0, "H100", 0, 0);
    gpu(a, "h1", "n0", 1, "H100", 0, 0);
    gpu(a, "t0", "n1", 0, "T4", 0, 0);
    gpu(a, "t1", "n1", 1, "T4", 0, 0);
}

static void workload(gf_alloc *a)
{
    gf_alloc_result res;
    char id[32];
    for (int i = 0; i < 12; i++) {
        gf_alloc_request r = treq(0, 0, (gf_alloc_qos)(i % 4));
        if (i % 3 == 0) {
            r.percent_request = 7.3 + i;
            r.percent_limit = 9.1 + i;
        } else {
            r.tflops_request = 1.1 * i + 0.3;
        }
        r.vram_request = (uint64_t)(i + 1) * 333333333ull;
        r.vram_limit = r.vram_request + 12345;
        r.gpu_count = i % 5 == 4 ? 2 : 1;
        snprintf(id, sizeof(id), "w%02d", i);
        ASSERT_MSG(gf_alloc_place(a, id, &r, &res) == GF_OK, "%s: %s", id, res.msg);
    }
}

TEST(release_restores_capacity_exactly)
{
    for (int s = 0; s < 3; s++) {
        gf_alloc *a = mk((gf_alloc_strategy)s, 1.25, 1.1);
        inventory(a);
        gf_alloc_gpu_info before[8], after[8];
        snapshot(a, before, 8);
        workload(a);
        char id[32];
        for (int i = 11; i >= 0; i--) {
            snprintf(id, sizeof(id), "w%02d", i);
            ASSERT_EQ_INT(gf_alloc_release(a, id), GF_OK);
        }
        ASSERT_EQ_INT(gf_alloc_release(a, "w00"), GF_ENOENT);
        ASSERT_EQ_INT(gf_alloc_count(a), 0);
        snapshot(a, after, 8);
        same(before, after, 4);
        gf_alloc_free(a);
    }
}

static int restore_fn(const gf_alloc_info *in, void *ctx)
{
    gf_alloc *b = ctx;
    char err[256] = "";
    ASSERT_MSG(gf_alloc_restore(b, in->id, in->pool, in->qos, in->lost, in->placements, in->n,
                                err, sizeof(err)) == GF_OK,
               "restore %s: %s", in->id, err);
    return 0;
}

TEST(restore_from_enumeration_gives_identical_state)
{
    gf_alloc *a = mk(GF_ALLOC_LEAST_FRAG, 1.25, 1.1), *b = mk(GF_ALLOC_LEAST_FRAG, 1.25, 1.1);
    inventory(a);
    inventory(b);
    workload(a);
    ASSERT_EQ_INT(gf_alloc_foreach(a, restore_fn, b), 12);
    ASSERT_EQ_INT(gf_alloc_count(b), 12);
    gf_alloc_gpu_info x[8], y[8];
    snapshot(a, x, 8);
    snapshot(b, y, 8);
    same(x, y, 4);
    /* the same next placement in both */
    gf_alloc_result r1, r2;
    gf_alloc_request r = treq(3.3, 0, GF_ALLOC_QOS_LOW);
    ASSERT_EQ_STR(put(a, "next", &r, &r1), put(b, "next", &r, &r2));
    /* restoring a taken id or an unknown GPU is refused with nothing charged */
    gf_alloc_placement pl;
    memset(&pl, 0, sizeof(pl));
    snprintf(pl.gpu_uuid, sizeof(pl.gpu_uuid), "nope");
    pl.vram_request = pl.vram_limit = GiB;
    ASSERT_EQ_INT(gf_alloc_restore(b, "w00", "default", GF_ALLOC_QOS_LOW, 0, &pl, 1, NULL, 0),
                  GF_EEXIST);
    ASSERT_EQ_INT(gf_alloc_restore(b, "new", "default", GF_ALLOC_QOS_LOW, 0, &pl, 1, NULL, 0),
                  GF_ENOENT);
    gf_alloc_free(a);
    gf_alloc_free(b);
}

static void count_cb(const char *id, void *ctx)
{
    (void)id;
    (*(int *)ctx)++;
}

static int lost_fn(const gf_alloc_info *in, void *ctx)
{
    if (in->lost) (*(int *)ctx)++;
    return 0;
}

TEST(node_lost_then_released)
{
    gf_alloc *a = mk(GF_ALLOC_BINPACK, 1, 1);
    inventory(a);
    gf_alloc_result res;
    gf_alloc_request r = vreq(GiB);
    r.node = "n1";
    ASSERT_EQ_STR(put(a, "on-n1", &r, &res), "t0");
    r.node = "n0";
    ASSERT_EQ_STR(put(a, "on-n0", &r, &res), "h0");
    int calls = 0, lost = 0;
    size_t n = 0;
    ASSERT_EQ_INT(gf_alloc_node_lost(a, "n1", count_cb, &calls, &n), GF_OK);
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_INT(calls, 1);
    gf_alloc_foreach(a, lost_fn, &lost);
    ASSERT_EQ_INT(lost, 1);
    ASSERT_EQ_INT(info(a, "t0").ready, 0);
    r.node = "n1";
    ASSERT_EQ_INT(gf_alloc_place(a, "x", &r, &res), GF_ENOSPC);
    ASSERT_EQ_STR(res.msg, "node 'n1' is NotReady");
    ASSERT_EQ_INT(gf_alloc_node_release(a, "n1", NULL, NULL, &n), GF_OK);
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_INT(gf_alloc_count(a), 1);
    ASSERT_EQ_INT(info(a, "t0").n_allocs, 0);
    ASSERT_EQ_U64(info(a, "t0").vram_free, info(a, "t0").vram_bytes);
    ASSERT_EQ_INT(gf_alloc_node_set_ready(a, "n1", 1, NULL, 0), GF_OK);
    ASSERT_EQ_STR(put(a, "x", &r, &res), "t0");
    gf_alloc_free(a);
}

TEST(why_not_largest_free_vram_exact)
{
    gf_alloc *a = mk(GF_ALLOC_BINPACK, 1, 1);
    node(a, "node-1", NULL, 1);
    node(a, "node-3", NULL, 1);
    gpu(a, "u1", "node-1", 0, "X", 48 * GiB, 100);
    gpu(a, "u2", "node-3", 0, "X", 48 * GiB, 100);
    gpu(a, "u3", "node-3", 1, "X", 48 * GiB, 100);
    gf_alloc_result res;
    gf_alloc_request r = vreq(40 * GiB);
    ASSERT_EQ_STR(put(a, "a", &r, &res), "u1");
    ASSERT_EQ_STR(put(a, "b", &r, &res), "u2");
    r = vreq(36 * GiB);
    ASSERT_EQ_STR(put(a, "c", &r, &res), "u3");
    r = vreq(40 * GiB);
    ASSERT_EQ_INT(gf_alloc_place(a, "d", &r, &res), GF_ENOSPC);
    ASSERT_EQ_INT(res.why, GF_ALLOC_WHY_VRAM);
    ASSERT_EQ_STR(res.msg, "largest free VRAM in pool 'default' is 12 GiB on node-3 GPU 1; asked "
                           "40 GiB");
    r = treq(0, 0, GF_ALLOC_QOS_LOW);
    r.percent_request = 95;
    r.gpu = "u3";
    ASSERT_EQ_STR(put(a, "e", &r, &res), "u3");
    r.gpu = NULL;
    r.percent_request = 50;
    r.vram_request = 10 * GiB;
    ASSERT_EQ_INT(gf_alloc_place(a, "f", &r, &res), GF_ENOSPC);
    ASSERT_EQ_INT(res.why, GF_ALLOC_WHY_BOTH);
    ASSERT_EQ_STR(res.msg, "no GPU in pool 'default' has 10 GiB VRAM and 50% of a GPU free at once "
                           "(most VRAM free: 12 GiB with 5 TFLOPs on node-3 GPU 1; most compute "
                           "free: 100 TFLOPs with 8 GiB on node-1 GPU 0)");
    gf_alloc_request nopool = vreq(GiB);
    nopool.pool = "gpu-big";
    ASSERT_EQ_INT(gf_alloc_place(a, "h", &nopool, &res), GF_ENOENT);
    ASSERT_EQ_STR(res.msg, "no pool 'gpu-big' (pools: default)");
    gf_alloc_free(a);

    a = mk(GF_ALLOC_BINPACK, 1, 1);
    r = vreq(GiB);
    ASSERT_EQ_INT(gf_alloc_place(a, "x", &r, &res), GF_ENOSPC);
    ASSERT_EQ_INT(res.why, GF_ALLOC_WHY_NO_GPUS);
    gf_alloc_free(a);
}

TEST(percent_is_converted_with_the_gpu_capacity)
{
    gf_alloc *a = mk(GF_ALLOC_BINPACK, 1, 1);
    node(a, "n0", NULL, 1);
    gpu(a, "g0", "n0", 0, "X", 16 * GiB, 65);
    gf_alloc_result res;
    gf_alloc_request r = treq(0, 0, GF_ALLOC_QOS_LOW);
    r.percent_request = 50;
    r.percent_limit = 100;
    ASSERT_EQ_STR(put(a, "a", &r, &res), "g0");
    ASSERT_NEAR(res.placements[0].tflops_request, 32.5, 0);
    ASSERT_NEAR(res.placements[0].tflops_limit, 65, 0);
    ASSERT_EQ_INT(gf_alloc_release(a, "a"), GF_OK);
    r.percent_request = 100;
    r.percent_limit = 0;
    ASSERT_EQ_STR(put(a, "whole", &r, &res), "g0");
    ASSERT_NEAR(info(a, "g0").tflops_free, 0, 0);
    gf_alloc_free(a);
}

TEST(dry_run_and_duplicate_id)
{
    gf_alloc *a = mk(GF_ALLOC_BINPACK, 1, 1);
    node(a, "n0", NULL, 1);
    gpu(a, "g0", "n0", 0, "X", 16 * GiB, 65);
    gf_alloc_result res;
    gf_alloc_request r = vreq(10 * GiB);
    ASSERT_EQ_STR(put(a, NULL, &r, &res), "g0");
    ASSERT_EQ_INT(gf_alloc_count(a), 0);
    ASSERT_EQ_U64(vfree(a, "g0"), 16 * GiB);
    r.gpu_count = 1;
    ASSERT_EQ_STR(put(a, "a", &r, &res), "g0");
    ASSERT_EQ_INT(gf_alloc_place(a, "a", &r, &res), GF_EEXIST);
    ASSERT_EQ_INT(res.why, GF_ALLOC_WHY_EXISTS);
    ASSERT_EQ_STR(res.msg, "allocation 'a' already exists");
    gf_alloc_free(a);
}

TEST(bad_requests_are_einval_with_a_message)
{
    gf_alloc *a = mk(GF_ALLOC_BINPACK, 1, 1);
    node(a, "n0", NULL, 1);
    gpu(a, "g0", "n0", 0, "X", 16 * GiB, 65);
    gf_alloc_result res;
    struct {
        gf_alloc_request r;
        const char *field;
    } bad[12];
    memset(bad, 0, sizeof(bad));
    bad[0].r.tflops_request = -1, bad[0].field = "tflops_request: -1";
    bad[1].r.tflops_request = NAN, bad[1].field = "tflops_request: nan";
    bad[2].r.tflops_limit = INFINITY, bad[2].field = "tflops_limit: inf";
    bad[3].r.tflops_request = 1e300, bad[3].field = "tflops_request: 1e+300";
    bad[4].r.percent_request = 101, bad[4].field = "percent_request: 101";
    bad[5].r.vram_request = 1ull << 62, bad[5].field = "vram:";
    bad[6].r.vram_request = 2 * GiB, bad[6].r.vram_limit = GiB, bad[6].field = "vram_limit:";
    bad[7].field = "asks for nothing";
    bad[8].r.tflops_request = 1, bad[8].r.percent_request = 5, bad[8].field = "not both";
    bad[9].r.vram_request = GiB, bad[9].r.gpu_count = 65, bad[9].field = "gpu_count: 65";
    bad[10].r.tflops_request = 5, bad[10].r.tflops_limit = 4, bad[10].field = "tflops_limit: 4";
    bad[11].r.vram_request = GiB, bad[11].r.qos = (gf_alloc_qos)7, bad[11].field = "qos: 7";
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ASSERT_EQ_INT(gf_alloc_place(a, "x", &bad[i].r, &res), GF_EINVAL);
        ASSERT_EQ_INT(res.why, GF_ALLOC_WHY_INVALID);
        ASSERT_CONTAINS(res.msg, bad[i].field);
    }
    ASSERT_EQ_INT(gf_alloc_count(a), 0);
    ASSERT_EQ_U64(vfree(a, "g0"), 16 * GiB);
    /* inventory checks */
    gf_alloc_pool_spec ps = {"p", GF_ALLOC_BINPACK, 0.5, 1};
    char err[256];
    ASSERT_EQ_INT(gf_alloc_pool_set(a, &ps, err, sizeof(err)), GF_EINVAL);
    ASSERT_CONTAINS(err, "oversubscription ratio 0.5");
    ps.oversub_tflops = NAN;
    ASSERT_EQ_INT(gf_alloc_pool_set(a, &ps, err, sizeof(err)), GF_EINVAL);
    gf_alloc_gpu_spec gs = {"gx", "n0", "NoSuchCard", 0, 0, 0};
    ASSERT_EQ_INT(gf_alloc_gpu_add(a, &gs, err, sizeof(err)), GF_EINVAL);
    ASSERT_CONTAINS(err, "'NoSuchCard' is not in the GPU model table");
    gs.vram_bytes = GiB;
    gs.tflops = -3;
    ASSERT_EQ_INT(gf_alloc_gpu_add(a, &gs, err, sizeof(err)), GF_EINVAL);
    gs.tflops = 3;
    gs.node = "nope";
    ASSERT_EQ_INT(gf_alloc_gpu_add(a, &gs, err, sizeof(err)), GF_ENOENT);
    gs.node = "n0";
    gs.uuid = "g0";
    ASSERT_EQ_INT(gf_alloc_gpu_add(a, &gs, err, sizeof(err)), GF_EEXIST);
    gf_alloc_free(a);
}

TEST(names_round_trip)
{
    for (int s = 0; s < 3; s++) {
        gf_alloc_strategy out;
        ASSERT_EQ_INT(gf_alloc_strategy_parse(gf_alloc_strategy_name((gf_alloc_strategy)s), &out),
                      GF_OK);
        ASSERT_EQ_INT(out, s);
    }
    gf_alloc_qos q;
    ASSERT_EQ_INT(gf_alloc_qos_parse("Critical", &q), GF_OK);
    ASSERT_EQ_INT(q, GF_ALLOC_QOS_CRITICAL);
    ASSERT_EQ_INT(gf_alloc_qos_parse("urgent", &q), GF_EINVAL);
    ASSERT_TRUE(gf_alloc_strategy_name((gf_alloc_strategy)9) == NULL);
}

/* Removing a GPU or a node: refused with the allocations' names while one is used; once gone,
 * no placement, lookup or enumeration sees it, and the same names may come back. */
static int count_fn(const gf_alloc_gpu_info *g, void *ctx)
{
    (void)g;
    (*(int *)ctx)++;
    return 0;
}

TEST(gpu_and_node_remove)
{
    gf_alloc *a = three(GF_ALLOC_BINPACK);
    gf_alloc_result res;
    char err[256] = "";
    ASSERT_EQ_INT(gf_alloc_gpu_remove(a, "gB", err, sizeof(err)), GF_EBUSY);
    ASSERT_EQ_STR(err, "GPU gB (n1 GPU 1) is used by 1 allocation: pre-b; release it first");
    ASSERT_EQ_INT(info(a, "gB").n_allocs, 1); /* nothing changed */
    ASSERT_EQ_INT(gf_alloc_gpu_remove(a, "nope", err, sizeof(err)), GF_ENOENT);
    ASSERT_EQ_STR(err, "no GPU 'nope'");
    /* gA is empty: binpack would pick it for 35 GiB; once removed nothing fits */
    gf_alloc_request r = vreq(35 * GiB);
    ASSERT_EQ_STR(put(a, NULL, &r, &res), "gA");
    ASSERT_EQ_INT(gf_alloc_gpu_remove(a, "gA", err, sizeof(err)), GF_OK);
    gf_alloc_gpu_info gi;
    ASSERT_EQ_INT(gf_alloc_gpu_get(a, "gA", &gi), GF_ENOENT);
    int n = 0;
    ASSERT_EQ_INT(gf_alloc_gpu_foreach(a, count_fn, &n), 2);
    ASSERT_EQ_INT(n, 2);
    ASSERT_EQ_INT(gf_alloc_place(a, "big", &r, &res), GF_ENOSPC);
    ASSERT_EQ_STR(res.msg, "largest free VRAM in pool 'default' is 30 GiB on n2 GPU 0; asked "
                           "35 GiB");
    r = vreq(GiB);
    r.gpu = "gA";
    ASSERT_EQ_INT(gf_alloc_place(a, "x", &r, &res), GF_ENOENT);
    /* a node with two allocations: refused, names both */
    r = vreq(GiB);
    r.node = "n2";
    ASSERT_EQ_STR(put(a, "on-n2", &r, &res), "gC");
    ASSERT_EQ_INT(gf_alloc_node_remove(a, "n2", err, sizeof(err)), GF_EBUSY);
    ASSERT_EQ_STR(err, "node 'n2' is used by 2 allocations: on-n2, pre-c; release them first");
    size_t k = 0;
    ASSERT_EQ_INT(gf_alloc_node_release(a, "n2", NULL, NULL, &k), GF_OK);
    ASSERT_EQ_INT(k, 2);
    ASSERT_EQ_INT(gf_alloc_node_remove(a, "n2", err, sizeof(err)), GF_OK);
    ASSERT_EQ_INT(gf_alloc_gpu_get(a, "gC", &gi), GF_ENOENT);
    ASSERT_EQ_INT(gf_alloc_node_remove(a, "n2", err, sizeof(err)), GF_ENOENT);
    ASSERT_EQ_INT(gf_alloc_place(a, "x", &r, &res), GF_ENOENT); /* r.node = n2 */
    r.node = NULL;
    ASSERT_EQ_STR(put(a, "y", &r, &res), "gB");
    /* the names come back as new GPUs and nodes */
    node(a, "n2", NULL, 1);
    gpu(a, "gC", "n2", 0, "A100-40G", 40 * GiB, 100);
    gpu(a, "gA", "n1", 0, "A100-40G", 40 * GiB, 100);
    r = vreq(35 * GiB);
    ASSERT_EQ_STR(put(a, "z", &r, &res), "gC"); /* ties by stable id: gC was added first */
    ASSERT_EQ_INT(info(a, "gA").n_allocs, 0);
    gf_alloc_free(a);
}

/* A cordoned GPU keeps its allocations but takes no new placement, by any path. */
TEST(gpu_cordon)
{
    gf_alloc *a = three(GF_ALLOC_SPREAD);
    gf_alloc_result res;
    gf_alloc_request r = vreq(GiB);
    ASSERT_EQ_STR(put(a, NULL, &r, &res), "gA"); /* spread: the emptiest */
    ASSERT_EQ_INT(gf_alloc_gpu_cordon(a, "gA", 1, NULL, 0), GF_OK);
    ASSERT_EQ_INT(gf_alloc_gpu_cordon(a, "nope", 1, NULL, 0), GF_ENOENT);
    ASSERT_EQ_INT(info(a, "gA").cordoned, 1);
    ASSERT_EQ_STR(put(a, NULL, &r, &res), "gC");
    r.gpu = "gA";
    ASSERT_EQ_INT(gf_alloc_place(a, "x", &r, &res), GF_ENOSPC);
    r.gpu = NULL;
    r.node = "n1";
    ASSERT_EQ_STR(put(a, NULL, &r, &res), "gB");
    /* its allocations stay; a node going NotReady and back leaves it cordoned */
    ASSERT_EQ_INT(gf_alloc_gpu_cordon(a, "gB", 1, NULL, 0), GF_OK);
    ASSERT_EQ_INT(info(a, "gB").n_allocs, 1);
    ASSERT_EQ_INT(gf_alloc_node_set_ready(a, "n1", 0, NULL, 0), GF_OK);
    ASSERT_EQ_INT(gf_alloc_node_set_ready(a, "n1", 1, NULL, 0), GF_OK);
    ASSERT_EQ_INT(gf_alloc_place(a, "x", &r, &res), GF_ENOSPC);
    ASSERT_EQ_INT(gf_alloc_release(a, "pre-b"), GF_OK);
    ASSERT_EQ_INT(gf_alloc_gpu_remove(a, "gB", NULL, 0), GF_OK);
    ASSERT_EQ_INT(gf_alloc_gpu_cordon(a, "gA", 0, NULL, 0), GF_OK);
    ASSERT_EQ_STR(put(a, NULL, &r, &res), "gA");
    gf_alloc_free(a);
}

/* Clears live[] for each allocation a node release takes ("w<N>"). */
static void unlive_cb(const char *id, void *ctx)
{
    ((int *)ctx)[atoi(id + 1)] = 0;
}

/* Empties node nd (releasing what is on it, in both allocators), then removes GPU gpu_uuid of
 * it, or the whole node when gpu_uuid is NULL. */
static void empty_and_remove(gf_alloc *x, gf_alloc *y, const char *nd, const char *gpu_uuid,
                             int *live)
{
    gf_alloc *both[2] = {x, y};
    for (int i = 0; i < 2 && both[i]; i++) {
        char err[256] = "";
        ASSERT_EQ_INT(gf_alloc_node_release(both[i], nd, unlive_cb, live, NULL), GF_OK);
        gf_status st = gpu_uuid ? gf_alloc_gpu_remove(both[i], gpu_uuid, err, sizeof(err))
                                : gf_alloc_node_remove(both[i], nd, err, sizeof(err));
        ASSERT_MSG(st == GF_OK, "remove %s: %s", gpu_uuid ? gpu_uuid : nd, err);
    }
}

/* Index vs. a linear scan: many random place/release rounds give the binpack choice a scan
 * computes (fullest GPU by free VRAM, then stable id). */
TEST(index_matches_linear_scan)
{
    gf_alloc *a = mk(GF_ALLOC_BINPACK, 1, 1);
    char nm[32], u[32];
    for (int n = 0; n < 20; n++) {
        snprintf(nm, sizeof(nm), "n%02d", n);
        node(a, nm, NULL, 1);
        for (int g = 0; g < 4; g++) {
            snprintf(u, sizeof(u), "g%02d-%d", n, g);
            gpu(a, u, nm, (unsigned)g, "X", 64 * GiB, 100);
        }
    }
    uint64_t seed = 42;
    gf_alloc_result res;
    char id[32];
    int live[400] = {0};
    for (int i = 0; i < 400; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t want = ((seed >> 33) % 64 + 1) * GiB / 2;
        /* scan */
        gf_alloc_gpu_info all[80];
        snapshot(a, all, 80);
        int bi = -1;
        for (int k = 0; k < 80; k++)
            if (all[k].vram_free >= want && (bi < 0 || all[k].vram_free < all[bi].vram_free))
                bi = k;
        gf_alloc_request r = vreq(want);
        snprintf(id, sizeof(id), "a%03d", i);
        gf_status st = gf_alloc_place(a, id, &r, &res);
        if (bi < 0) {
            ASSERT_EQ_INT(st, GF_ENOSPC);
        } else {
            ASSERT_EQ_INT(st, GF_OK);
            ASSERT_EQ_STR(res.placements[0].gpu_uuid, all[bi].uuid);
            live[i] = 1;
        }
        if ((seed >> 20) % 3 == 0) { /* release a random live one */
            int j = (int)((seed >> 40) % (uint64_t)(i + 1));
            if (live[j]) {
                snprintf(id, sizeof(id), "a%03d", j);
                ASSERT_EQ_INT(gf_alloc_release(a, id), GF_OK);
                live[j] = 0;
            }
        }
    }
    gf_alloc_free(a);
}

/* Local multi-GPU binpack and spread through the node order (nodes by the sum of their GPUs'
 * free keys) against the scan of every node (the reference mode): randomized place/release
 * sequences of 1..4-GPU requests (whole or fractional, TFLOPs or percent, some restricted to a
 * model) on nodes of 1..8 GPUs of two models must give the same placements, step by step,
 * through a node going NotReady and back, a change of the pool's ratios (every key moves), a
 * GPU and a node removed, a GPU cordoned, and nodes and GPUs added. */
static gf_alloc *order_pool(gf_alloc_strategy s, uint64_t seed)
{
    gf_alloc *a = mk(s, 1.25, 1);
    char nm[32], u[32];
    for (int n = 0; n < 16; n++) {
        snprintf(nm, sizeof(nm), "n%02d", n);
        node(a, nm, NULL, 1);
        int k = 1 + (int)((seed >> (n * 3)) % 8);
        for (int g = 0; g < k; g++) {
            snprintf(u, sizeof(u), "g%02d-%d", n, g);
            if (n % 4 == 3)
                gpu(a, u, nm, (unsigned)g, "T4-like", 16 * GiB, 65);
            else
                gpu(a, u, nm, (unsigned)g, "H100-like", 80 * GiB, 400);
        }
    }
    return a;
}

static void order_random_sequence(gf_alloc_strategy strat, uint64_t seed)
{
    gf_alloc *fast = order_pool(strat, seed), *ref = order_pool(strat, seed);
    gf_alloc *both[2] = {fast, ref};
    gf_alloc__frag_set_reference(ref, "default", 1);
    static gf_alloc_result rf, rr;
    char id[32], err[256];
    int live[700] = {0};
    const char *t4[] = {"T4-like"};
    for (int i = 0; i < 700; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t x = seed >> 11;
        gf_alloc_request r;
        memset(&r, 0, sizeof(r));
        if (x % 2)
            r.percent_request = (double)(10 * (1 + (x >> 1) % 10));
        else
            r.tflops_request = (double)(5 * (1 + (x >> 1) % 12));
        r.vram_request = ((x >> 8) % 4) * 3 * GiB;
        r.gpu_count = 1 + (uint32_t)((x >> 12) % 4);
        if ((x >> 28) % 3 == 0) r.percent_request = 100, r.tflops_request = 0, r.vram_request = 0;
        if ((x >> 18) % 10 == 0) {
            r.models = t4;
            r.n_models = 1;
        }
        snprintf(id, sizeof(id), "w%03d", i);
        gf_status sf = gf_alloc_place(fast, id, &r, &rf);
        gf_status sr = gf_alloc_place(ref, id, &r, &rr);
        ASSERT_MSG(sf == sr, "%s step %d: ordered status %s, scan %s",
                   gf_alloc_strategy_name(strat), i, gf_status_name(sf), gf_status_name(sr));
        if (sf == GF_OK) {
            ASSERT_EQ_INT((int)rf.n, (int)rr.n);
            for (uint32_t j = 0; j < rf.n; j++)
                ASSERT_MSG(!strcmp(rf.placements[j].gpu_uuid, rr.placements[j].gpu_uuid),
                           "%s step %d placement %u: ordered %s, scan %s",
                           gf_alloc_strategy_name(strat), i, j, rf.placements[j].gpu_uuid,
                           rr.placements[j].gpu_uuid);
            live[i] = 1;
        }
        if ((x >> 20) % 3 == 0) { /* release a random live one */
            int j = (int)((x >> 24) % (uint64_t)(i + 1));
            if (live[j]) {
                snprintf(id, sizeof(id), "w%03d", j);
                ASSERT_EQ_INT(gf_alloc_release(fast, id), GF_OK);
                ASSERT_EQ_INT(gf_alloc_release(ref, id), GF_OK);
                live[j] = 0;
            }
        }
        for (int b = 0; b < 2; b++) {
            gf_alloc *a = both[b];
            if (i == 150 || i == 250)
                ASSERT_EQ_INT(gf_alloc_node_set_ready(a, "n02", i == 250, NULL, 0), GF_OK);
            if (i == 200 || i == 450) {
                gf_alloc_pool_spec ps = {"default", strat, i == 200 ? 1.5 : 1.25, 1};
                ASSERT_EQ_INT(gf_alloc_pool_set(a, &ps, err, sizeof(err)), GF_OK);
            }
            if (i == 350) ASSERT_EQ_INT(gf_alloc_gpu_cordon(a, "g04-0", 1, NULL, 0), GF_OK);
            if (i == 400) {
                node(a, "n16", NULL, 1);
                gpu(a, "g16-0", "n16", 0, "H100-like", 80 * GiB, 400);
                gpu(a, "g16-1", "n16", 1, "H100-like", 80 * GiB, 400);
                gpu(a, "g05-9", "n05", 9, "H100-like", 80 * GiB, 400);
            }
        }
        if (i == 300) {
            empty_and_remove(fast, ref, "n06", NULL, live);
            empty_and_remove(fast, ref, "n01", "g01-0", live);
        }
    }
    gf_alloc_free(fast);
    gf_alloc_free(ref);
}

TEST(multi_gpu_node_order_matches_scan)
{
    for (uint64_t s = 1; s <= 8; s++) {
        order_random_sequence(GF_ALLOC_BINPACK, s * 0x9e3779b97f4a7c15ull);
        order_random_sequence(GF_ALLOC_SPREAD, s * 0x2545f4914f6cdd1dull);
    }
}

/* Least-fragmentation's fast path (state groups, memoized state scores, special GPUs at a
 * multi-GPU threshold) against the reference that scores every fitting GPU from scratch
 * (docs/allocator.md): randomized place/release sequences on a mixed pool (two models, nodes of
 * 2..8 GPUs, TFLOPs and percent requests, limits above requests, 1..4 GPUs local and remote,
 * whole or fractional, model filters, a node going NotReady) must give the same placements,
 * step by step, in the observed-distribution mode and in two target modes: with multi-GPU types
 * (local multi-GPU requests scored by the node evaluator over the per-node aggregates) and
 * without (no aggregates: scored from the GPUs' states). */
static gf_alloc *lf_pool(uint64_t seed, int target)
{
    gf_alloc *a = mk(GF_ALLOC_LEAST_FRAG, 1.25, 1);
    char nm[32], u[32];
    for (int n = 0; n < 12; n++) {
        snprintf(nm, sizeof(nm), "n%02d", n);
        node(a, nm, NULL, 1);
        int k = 2 + (int)((seed >> (n * 3)) % 7);
        for (int g = 0; g < k; g++) {
            snprintf(u, sizeof(u), "g%02d-%d", n, g);
            if (n % 3 == 2)
                gpu(a, u, nm, (unsigned)g, "T4-like", 16 * GiB, 65);
            else
                gpu(a, u, nm, (unsigned)g, "H100-like", 80 * GiB, 400);
        }
    }
    if (target) {
        gf_alloc_task_type tt[] = {{0, 25, 8 * GiB, 1, 5}, {0, 50, 16 * GiB, 1, 3},
                                   {40, 0, 4 * GiB, 1, 4}, {120, 0, 10 * GiB, 1, 2},
                                   {0, 100, 16 * GiB, 2, 1.5}, {0, 100, 16 * GiB, 4, 0.7}};
        /* target 2: single-GPU types only, so the pool keeps no per-node aggregates and
         * multi-GPU requests are scored from the GPUs' states */
        char err[256] = "";
        ASSERT_MSG(gf_alloc_pool_set_workload(a, "default", tt, target == 2 ? 4 : 6, err,
                                              sizeof(err)) == GF_OK,
                   "set_workload: %s", err);
    }
    return a;
}

static void lf_random_sequence(uint64_t seed, int target)
{
    gf_alloc *fast = lf_pool(seed, target), *ref = lf_pool(seed, target);
    gf_alloc__frag_set_reference(ref, "default", 1);
    static gf_alloc_result rf, rr;
    char id[32];
    int live[600] = {0};
    const char *h100[] = {"H100-like"};
    for (int i = 0; i < 600; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t x = seed >> 11;
        gf_alloc_request r;
        memset(&r, 0, sizeof(r));
        if (x % 2) {
            r.percent_request = (double)(5 * (1 + (x >> 1) % 20));
            r.percent_limit = (x >> 6) % 4 == 0 ? 100 : 0;
        } else {
            r.tflops_request = (double)(10 * (1 + (x >> 1) % 12));
        }
        r.vram_request = ((x >> 8) % 5) * 4 * GiB;
        uint32_t k = (x >> 12) % 10;
        r.gpu_count = k < 6 ? 1 : k < 8 ? 2 : k < 9 ? 3 : 4;
        /* multi-GPU: whole GPUs, or the single request's share on each */
        if (r.gpu_count > 1 && (x >> 28) % 2)
            r.percent_request = 100, r.percent_limit = 0, r.tflops_request = 0;
        r.remote = (x >> 16) % 4 == 0;
        if ((x >> 18) % 8 == 0) {
            r.models = h100;
            r.n_models = 1;
        }
        snprintf(id, sizeof(id), "w%03d", i);
        gf_status sf = gf_alloc_place(fast, id, &r, &rf);
        gf_status sr = gf_alloc_place(ref, id, &r, &rr);
        ASSERT_MSG(sf == sr, "seed %llu step %d: fast status %s, reference %s", (unsigned long long)seed, i,
                   gf_status_name(sf), gf_status_name(sr));
        if (sf == GF_OK) {
            ASSERT_EQ_INT((int)rf.n, (int)rr.n);
            for (uint32_t j = 0; j < rf.n; j++)
                ASSERT_MSG(!strcmp(rf.placements[j].gpu_uuid, rr.placements[j].gpu_uuid),
                           "step %d placement %u: fast %s, reference %s", i, j,
                           rf.placements[j].gpu_uuid, rr.placements[j].gpu_uuid);
            live[i] = 1;
        }
        if ((x >> 20) % 3 == 0) { /* release a random live one */
            int j = (int)((x >> 24) % (uint64_t)(i + 1));
            if (live[j]) {
                snprintf(id, sizeof(id), "w%03d", j);
                ASSERT_EQ_INT(gf_alloc_release(fast, id), GF_OK);
                ASSERT_EQ_INT(gf_alloc_release(ref, id), GF_OK);
                live[j] = 0;
            }
        }
        if (i == 250) { /* a GPU and a node leave for good; a GPU in use is cordoned */
            empty_and_remove(fast, ref, "n05", "g05-0", live);
            empty_and_remove(fast, ref, "n07", NULL, live);
            ASSERT_EQ_INT(gf_alloc_gpu_cordon(fast, "g01-1", 1, NULL, 0), GF_OK);
            ASSERT_EQ_INT(gf_alloc_gpu_cordon(ref, "g01-1", 1, NULL, 0), GF_OK);
        }
        if (i == 500) {
            ASSERT_EQ_INT(gf_alloc_gpu_cordon(fast, "g01-1", 0, NULL, 0), GF_OK);
            ASSERT_EQ_INT(gf_alloc_gpu_cordon(ref, "g01-1", 0, NULL, 0), GF_OK);
        }
        for (uint32_t j = 0; i > 250 && sf == GF_OK && j < rf.n; j++)
            ASSERT_MSG(strcmp(rf.placements[j].gpu_uuid, "g05-0") &&
                       strcmp(rf.placements[j].node, "n07") &&
                       (i >= 500 || strcmp(rf.placements[j].gpu_uuid, "g01-1")),
                       "step %d: placed on removed or cordoned %s", i, rf.placements[j].gpu_uuid);
        if (i == 300 || i == 400) { /* a node leaves the index and comes back */
            ASSERT_EQ_INT(gf_alloc_node_set_ready(fast, "n04", i == 300 ? 0 : 1, NULL, 0), GF_OK);
            ASSERT_EQ_INT(gf_alloc_node_set_ready(ref, "n04", i == 300 ? 0 : 1, NULL, 0), GF_OK);
        }
    }
    gf_alloc_free(fast);
    gf_alloc_free(ref);
}

TEST(least_fragmentation_fast_path_matches_reference)
{
    for (uint64_t s = 1; s <= 6; s++) {
        lf_random_sequence(s * 0x9e3779b97f4a7c15ull, 0);
        lf_random_sequence(s * 0x2545f4914f6cdd1dull, 1);
        lf_random_sequence(s * 0xd6e8feb86659fd93ull, 2);
    }
}

/* ---- least-fragmentation against a simple reference kept here ----------------------------- */

/* What least-fragmentation must choose for one GPU, from the definition (docs/allocator.md) and
 * nothing else: every eligible GPU that admits the request is scored by recomputing its node's
 * expected fragmentation F_n = sum_m w_m F_n(m) before and after, from the GPUs' raw sums and
 * the pool's scoring weights (the snapshot, p->types[m].sw); the smallest delta wins, ties go to
 * the smaller free key of the driving dimension (VRAM when the request has a VRAM limit), then
 * the smaller stable id. This is how least-fragmentation chose before its per-class score
 * tables; the allocator's own data structures (aggregates, groups, tables) are not consulted.
 * ref_view holds every GPU's sums so that a placement can be taken back or replayed. */
typedef struct ref_view {
    uint64_t req[2], lim[2], hi[2];
} ref_view;

typedef struct ref_req {
    uint64_t q[2], l[2];   /* [T] unused when ppm */
    uint32_t q_ppm, l_ppm;
    int ppm, hi;
    char model[GF_ALLOC_NAME_MAX]; /* canonical; "" = any */
    const char *node;      /* NULL = any */
} ref_req;

static uint64_t ref_ceil_ppm(uint64_t cap, uint32_t ppm)
{
    return (cap * ppm + 999999) / 1000000;
}

static void ref_need(const ref_req *r, const gf_alloc__gpu *g, uint64_t q[2], uint64_t l[2])
{
    q[GF_ALLOC__V] = r->q[GF_ALLOC__V];
    l[GF_ALLOC__V] = r->l[GF_ALLOC__V];
    q[GF_ALLOC__T] = r->ppm ? ref_ceil_ppm(g->cap[GF_ALLOC__T], r->q_ppm) : r->q[GF_ALLOC__T];
    l[GF_ALLOC__T] = r->ppm ? ref_ceil_ppm(g->cap[GF_ALLOC__T], r->l_ppm) : r->l[GF_ALLOC__T];
}

static void ref_key(const gf_alloc__gpu *g, const ref_view *v, uint64_t k[2])
{
    for (int d = 0; d < 2; d++) k[d] = v->lim[d] >= g->eff[d] ? 0 : g->eff[d] - v->lim[d];
}

/* Free share in ppm: mean over the dimensions the workload uses of min(key, eff) / eff. */
static int64_t ref_share(const gf_alloc__pool *p, const gf_alloc__gpu *g, const uint64_t k[2])
{
    int64_t s = 0;
    int n = 0;
    for (int d = 0; d < 2; d++) {
        if (!p->used[d] || !g->eff[d]) continue;
        uint64_t kk = k[d] < g->eff[d] ? k[d] : g->eff[d];
        s += (int64_t)((unsigned __int128)kk * 1000000 / g->eff[d]);
        n++;
    }
    return n ? s / n : 0;
}

static int ref_type_fits(const gf_alloc__type *m, const gf_alloc__gpu *g, const uint64_t k[2])
{
    uint64_t need[2] = {m->t_ppm ? ref_ceil_ppm(g->cap[GF_ALLOC__T], m->t_ppm) : m->t, m->v};
    for (int d = 0; d < 2; d++)
        if (need[d] > g->cap[d] || need[d] > k[d]) return 0;
    return 1;
}

/* F_n with GPU `who` (a seq, or UINT32_MAX for none) seeing keys wk instead of its own. */
static gf_alloc__fd ref_node_frag(const gf_alloc *a, const gf_alloc__pool *p,
                                  const gf_alloc__node *n, const ref_view *view, uint32_t who,
                                  const uint64_t wk[2])
{
    gf_alloc__fd f = 0;
    for (size_t m = 0; m < p->n_types; m++) {
        const gf_alloc__type *t = &p->types[m];
        if (!t->sw) continue;
        int64_t tot = 0, nofit = 0;
        uint32_t cnt = 0;
        for (size_t i = 0; i < n->n_gpus; i++) {
            const gf_alloc__gpu *g = a->gpus[n->gpus[i]];
            if (!g->in_tree) continue;
            uint64_t k[2];
            ref_key(g, &view[g->seq], k);
            if (g->seq == who) memcpy(k, wk, sizeof(k));
            int64_t s = ref_share(p, g, k);
            tot += s;
            if (ref_type_fits(t, g, k))
                cnt++;
            else
                nofit += s;
        }
        f += (gf_alloc__fd)t->sw * (cnt >= t->k ? nofit : tot);
    }
    return f;
}

/* The seq the reference picks (UINT32_MAX when nothing admits r), GPUs excl[0..nx) excluded. */
static uint32_t ref_pick(const gf_alloc *a, const gf_alloc__pool *p, const ref_req *r,
                         const ref_view *view, const uint32_t *excl, size_t nx)
{
    int drive = r->l[GF_ALLOC__V] ? GF_ALLOC__V : GF_ALLOC__T;
    uint32_t best = UINT32_MAX;
    gf_alloc__fd bd = 0;
    uint64_t bkey = 0;
    for (size_t i = 0; i < p->n_gpus; i++) {
        const gf_alloc__gpu *g = a->gpus[p->gpus[i]];
        const gf_alloc__node *n = a->nodes[g->node];
        const ref_view *v = &view[g->seq];
        int skip = !g->in_tree || (r->model[0] && strcmp(g->model, r->model)) ||
                   (r->node && strcmp(n->name, r->node));
        for (size_t j = 0; j < nx && !skip; j++) skip = excl[j] == g->seq;
        if (skip) continue;
        uint64_t q[2], l[2], k[2], nk[2];
        ref_need(r, g, q, l);
        int ok = 1;
        for (int d = 0; d < 2; d++)
            ok = ok && l[d] <= g->cap[d] && v->req[d] + q[d] <= g->eff[d] &&
                 v->lim[d] + l[d] <= g->eff[d] && (!r->hi || v->hi[d] + q[d] <= g->cap[d]);
        if (!ok) continue;
        ref_key(g, v, k);
        for (int d = 0; d < 2; d++) nk[d] = k[d] > l[d] ? k[d] - l[d] : 0;
        gf_alloc__fd d = ref_node_frag(a, p, n, view, g->seq, nk) -
                         ref_node_frag(a, p, n, view, UINT32_MAX, NULL);
        if (best == UINT32_MAX || d < bd || (d == bd && k[drive] < bkey)) {
            best = g->seq; /* GPUs are visited in ascending seq: a full tie keeps the first */
            bd = d;
            bkey = k[drive];
        }
    }
    return best;
}

static void ref_charge(const gf_alloc__gpu *g, ref_view *v, const ref_req *r, int sign)
{
    uint64_t q[2], l[2];
    ref_need(r, g, q, l);
    for (int d = 0; d < 2; d++) {
        v->req[d] += sign * q[d];
        v->lim[d] += sign * l[d];
        if (r->hi) v->hi[d] += sign * q[d];
    }
}

/* Checks one gf_alloc_place answer (already applied to a) against the reference: takes the
 * placement back in a view of the sums, replays the reference's picks one GPU at a time (a
 * remote multi-GPU request is placed that way too) and requires the same GPUs, or no fit when
 * the allocator refused. Local multi-GPU requests pick a node first (pick_node) and are checked
 * by least_fragmentation_fast_path_matches_reference instead. */
static void ref_check(gf_alloc *a, const gf_alloc_request *req, gf_status st,
                      const gf_alloc_result *res, const char *what, int step)
{
    const gf_alloc__pool *p = a->pools[0];
    uint32_t k = req->gpu_count ? req->gpu_count : 1;
    if (k > 1 && !req->remote) return;
    if (st != GF_OK && st != GF_ENOSPC) return;
    ref_req r;
    memset(&r, 0, sizeof(r));
    r.ppm = req->percent_request > 0 || req->percent_limit > 0;
    r.q_ppm = (uint32_t)llround(req->percent_request * 10000.0);
    r.l_ppm = req->percent_limit > 0 ? (uint32_t)llround(req->percent_limit * 10000.0) : r.q_ppm;
    r.q[GF_ALLOC__T] = (uint64_t)ceil(req->tflops_request * 1e6 - 1e-6);
    r.l[GF_ALLOC__T] = req->tflops_limit > 0 ? (uint64_t)ceil(req->tflops_limit * 1e6 - 1e-6)
                                             : r.q[GF_ALLOC__T];
    r.q[GF_ALLOC__V] = req->vram_request;
    r.l[GF_ALLOC__V] = req->vram_limit ? req->vram_limit : req->vram_request;
    r.hi = req->qos >= GF_ALLOC_QOS_HIGH;
    if (req->n_models) gf_alloc__canon_model(req->models[0], r.model);
    r.node = req->node;
    static ref_view view[1024];
    ASSERT_TRUE(a->n_gpus <= 1024);
    for (size_t i = 0; i < a->n_gpus; i++) {
        const gf_alloc__gpu *g = a->gpus[i];
        if (!g) continue; /* removed */
        for (int d = 0; d < 2; d++) {
            view[i].req[d] = g->req[d];
            view[i].lim[d] = g->lim[d];
            view[i].hi[d] = g->req_hi[d];
        }
    }
    uint32_t got[GF_ALLOC_MAX_GPUS], picked[GF_ALLOC_MAX_GPUS];
    uint32_t n_got = st == GF_OK ? res->n : 0;
    for (uint32_t j = 0; j < n_got; j++) {
        const gf_alloc__gpu *g = gf_alloc__map_get(&a->gpu_map, res->placements[j].gpu_uuid);
        ASSERT_TRUE(g != NULL);
        got[j] = g->seq;
        ref_charge(g, &view[g->seq], &r, -1); /* as it was before this placement */
    }
    uint32_t n = 0;
    for (; n < k; n++) {
        uint32_t s = ref_pick(a, p, &r, view, picked, n);
        if (s == UINT32_MAX) break;
        picked[n] = s;
        ref_charge(a->gpus[s], &view[s], &r, +1);
    }
    if (st == GF_ENOSPC) {
        ASSERT_MSG(n < k, "%s step %d: refused, but the reference places it on %s", what, step,
                   a->gpus[picked[0]]->uuid);
        return;
    }
    ASSERT_MSG(n == k, "%s step %d: placed on %s, but the reference finds only %u GPUs", what,
               step, res->placements[0].gpu_uuid, n);
    for (uint32_t i = 0; i < k; i++) {
        int hit = 0;
        for (uint32_t j = 0; j < n_got; j++) hit |= got[j] == picked[i];
        ASSERT_MSG(hit, "%s step %d: placed on %s (+%u more), reference picks %s", what, step,
                   res->placements[0].gpu_uuid, n_got - 1, a->gpus[picked[i]]->uuid);
    }
}

/* A pool of nn nodes, 1..8 GPUs each, of three shapes (compute-, VRAM-rich and a small one, so
 * that percent requests differ in TFLOPs and some task types never fit some GPUs); with varied,
 * every GPU has its own compute capacity (and its own shape). */
static gf_alloc *ref_pool(uint64_t seed, int nn, double ratio_t, double ratio_v, int varied)
{
    gf_alloc *a = mk(GF_ALLOC_LEAST_FRAG, ratio_t, ratio_v);
    char nm[32], u[32];
    for (int n = 0; n < nn; n++) {
        snprintf(nm, sizeof(nm), "n%02d", n);
        node(a, nm, NULL, 1);
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int k = 1 + (int)((seed >> 40) % 8);
        for (int g = 0; g < k; g++) {
            double more = varied ? (n * 8 + g) * 0.5 : 0;
            snprintf(u, sizeof(u), "g%02d-%d", n, g);
            if (n % 4 == 3)
                gpu(a, u, nm, (unsigned)g, "small-like", 16 * GiB, 65 + more);
            else if (n % 4 == 1)
                gpu(a, u, nm, (unsigned)g, "A100-like", 40 * GiB, 312 + more);
            else
                gpu(a, u, nm, (unsigned)g, "H100-like", 80 * GiB, 494.7 + more);
        }
    }
    return a;
}

/* A random stream: the first 40 requests ask VRAM only (then compute joins and the pool's
 * scoring dimensions change), then TFLOPs or percent or none, limits above requests, QoS
 * high, 1..3 GPUs local and remote, model and node filters, releases, a node going NotReady and
 * back. `types` bounds the distinct request shapes (above 256 the rarest are not tracked); with
 * small, every shape is small, so that many GPUs fit every type before and after a placement
 * (their deltas tie at 0 and the key, then the stable id, decides). */
static void ref_sequence(uint64_t seed, int nn, int steps, int types, int target,
                         double ratio_t, double ratio_v, int varied, int small)
{
    gf_alloc *a = ref_pool(seed, nn, ratio_t, ratio_v, varied);
    if (target) {
        gf_alloc_task_type tt[] = {{0, 25, 8 * GiB, 1, 5},     {0, 50, 16 * GiB, 1, 3},
                                   {40, 0, 4 * GiB, 1, 4},     {0, 100, 16 * GiB, 2, 1.5},
                                   {0, 100, 16 * GiB, 4, 0.7}, {120, 0, 10 * GiB, 1, 2},
                                   {0, 0, 30 * GiB, 1, 2.5},   {7, 0, 0, 1, 1},
                                   {300, 0, 64 * GiB, 1, 0.5}};
        char err[256] = "";
        ASSERT_MSG(gf_alloc_pool_set_workload(a, "default", tt, 9, err, sizeof(err)) == GF_OK,
                   "set_workload: %s", err);
    }
    static gf_alloc_result res;
    static int live[4096];
    ASSERT_TRUE(steps <= 4096);
    memset(live, 0, sizeof(live));
    const char *models[] = {"H100-like", "A100-like", "small-like"};
    char id[32], nd[32], what[64];
    snprintf(what, sizeof(what), "seed %llx", (unsigned long long)seed);
    for (int i = 0; i < steps; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t x = seed >> 11, shape = x % (uint64_t)types;
        gf_alloc_request r;
        memset(&r, 0, sizeof(r));
        uint64_t c = shape % 24, v = shape / 24;
        if (i >= 40 && c < 10)
            r.tflops_request = (double)(1 + c * 7);
        else if (i >= 40 && c < 20)
            r.percent_request = (double)(5 * (c - 9));
        r.vram_request = (v % 16) * 2 * GiB + (c >= 20 || i < 40 ? GiB : 0);
        if (small) {
            r.tflops_request = r.tflops_request > 0 ? (double)(1 + c % 4) : 0;
            r.percent_request = r.percent_request > 0 ? (double)(1 + c % 3) : 0;
            r.vram_request = (v % 3 + (c >= 20 || i < 40)) * GiB;
        }
        if ((x >> 20) % 5 == 0) { /* limits above requests */
            if (r.tflops_request > 0) r.tflops_limit = r.tflops_request * 2;
            if (r.percent_request > 0) r.percent_limit = r.percent_request < 50 ? 50 : 100;
            r.vram_limit = r.vram_request + 4 * GiB;
        }
        if ((x >> 24) % 7 == 0) r.qos = GF_ALLOC_QOS_HIGH;
        uint32_t kk = (x >> 28) % 16;
        if (kk >= 13) {
            r.gpu_count = kk - 11;            /* 2 or 3 GPUs */
            r.remote = (x >> 32) % 2;
        }
        if ((x >> 34) % 9 == 0) {
            r.models = &models[(x >> 38) % 3];
            r.n_models = 1;
        } else if ((x >> 34) % 9 == 1 && r.gpu_count <= 1) {
            snprintf(nd, sizeof(nd), "n%02d", (int)((x >> 38) % (uint64_t)nn));
            if (i > steps / 3 && !strcmp(nd, "n03")) snprintf(nd, sizeof(nd), "n04"); /* gone */
            r.node = nd;
        }
        snprintf(id, sizeof(id), "w%04d", i);
        gf_status st = gf_alloc_place(a, id, &r, &res);
        ASSERT_MSG(st == GF_OK || st == GF_ENOSPC, "%s step %d: %s: %s", what, i,
                   gf_status_name(st), res.msg);
        ref_check(a, &r, st, &res, what, i);
        live[i] = st == GF_OK;
        if ((x >> 44) % 5 < 2) { /* release a random live one */
            int j = (int)((x >> 47) % (uint64_t)(i + 1));
            if (live[j]) {
                snprintf(id, sizeof(id), "w%04d", j);
                ASSERT_EQ_INT(gf_alloc_release(a, id), GF_OK);
                live[j] = 0;
            }
        }
        if (i == steps / 3) { /* a GPU and a node leave for good; a GPU in use is cordoned */
            empty_and_remove(a, NULL, "n05", "g05-0", live);
            empty_and_remove(a, NULL, "n03", NULL, live);
            ASSERT_EQ_INT(gf_alloc_gpu_cordon(a, "g01-0", 1, NULL, 0), GF_OK);
        }
        if (i == steps * 2 / 3) ASSERT_EQ_INT(gf_alloc_gpu_cordon(a, "g01-0", 0, NULL, 0), GF_OK);
        for (uint32_t j = 0; i > steps / 3 && st == GF_OK && j < res.n; j++)
            ASSERT_MSG(strcmp(res.placements[j].gpu_uuid, "g05-0") &&
                       strcmp(res.placements[j].node, "n03"),
                       "%s step %d: placed on removed %s", what, i, res.placements[j].gpu_uuid);
        if (i == steps / 2 || i == steps * 3 / 4) /* a node leaves the index and comes back */
            ASSERT_EQ_INT(gf_alloc_node_set_ready(a, "n02", i == steps / 2 ? 0 : 1, NULL, 0),
                          GF_OK);
    }
    gf_alloc_free(a);
}

TEST(least_fragmentation_matches_simple_reference)
{
    for (uint64_t s = 1; s <= 3; s++) {
        /* the distribution seen so far, a few dozen shapes, oversubscribed compute */
        ref_sequence(s * 0x9e3779b97f4a7c15ull, 16, 900, 60, 0, 1.5, 1, 0, 0);
        /* a target distribution, oversubscribed VRAM */
        ref_sequence(s * 0x2545f4914f6cdd1dull, 16, 700, 96, 1, 1, 1.25, 0, 0);
    }
    /* more shapes than the 256 a pool tracks (the rarest are not counted) */
    ref_sequence(0x5851f42d4c957f2dull, 10, 1500, 384, 0, 1, 1, 0, 0);
    /* every GPU of its own compute capacity */
    ref_sequence(0x14057b7ef767814full, 24, 600, 60, 0, 1, 1, 1, 0);
    /* small requests only: many ties */
    ref_sequence(0x27bb2ee687b0b0fdull, 16, 900, 60, 0, 1, 1, 0, 1);
    ref_sequence(0x2127599bf4325c37ull, 16, 900, 60, 0, 1.5, 1, 1, 1);
}
