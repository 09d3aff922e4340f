/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the sim's PTX engine: runs the nvcc-generated kernels in tests/kernels over
 * host buffers and compares every output with a CPU reference, and checks the errors
 * (syntax, unsupported instructions, bad addresses, deadlocks, traps). */
#include "kernels/misc_ref.h"
#include "sim/ptx.h"
#include "test.h"

#include <limits.h>

/* ---- helpers ------------------------------------------------------------------------------- */

static gf_ptx_module *load_text(const char *text)
{
    gf_ptx_module *m = NULL;
    char err[256];
    gf_ptx_rc rc = gf_ptx_module_load(text, strlen(text), &m, err, sizeof err);
    ASSERT_MSG(rc == GF_PTX_OK, "load failed (%d): %s", rc, err);
    return m;
}

static gf_ptx_module *load_file(const char *name)
{
    char rel[128];
    snprintf(rel, sizeof rel, "tests/kernels/%s.ptx", name);
    size_t len = 0;
    char *text = gf_test_read_file(gf_test_path(rel), &len);
    ASSERT_MSG(text != NULL, "cannot read %s (set GPUFUSE_TEST_DIR to the repo root)", rel);
    gf_ptx_module *m = NULL;
    char err[256];
    gf_ptx_rc rc = gf_ptx_module_load(text, len, &m, err, sizeof err);
    free(text);
    ASSERT_MSG(rc == GF_PTX_OK, "load %s failed (%d): %s", rel, rc, err);
    return m;
}

static const gf_ptx_kernel *kernel(const gf_ptx_module *m, const char *name)
{
    const gf_ptx_kernel *k = gf_ptx_module_find_kernel(m, name);
    ASSERT_MSG(k != NULL, "kernel %s not found", name);
    return k;
}

/* Device memory for a test: every buffer is registered so the address check knows it. */
typedef struct arena {
    struct {
        uint64_t base, len;
    } r[32];
    int n;
    int checks;
} arena;

static void *arena_alloc(arena *a, size_t len)
{
    void *p = aligned_alloc(64, (len + 63) & ~(size_t)63);
    ASSERT_TRUE(p != NULL && a->n < 32);
    memset(p, 0, (len + 63) & ~(size_t)63);
    a->r[a->n].base = (uintptr_t)p;
    a->r[a->n].len = len;
    a->n++;
    return p;
}

static int arena_check(void *ctx, uint64_t addr, uint64_t len, uint64_t *base, uint64_t *rlen)
{
    arena *a = ctx;
    a->checks++;
    for (int i = 0; i < a->n; i++)
        if (addr >= a->r[i].base && addr - a->r[i].base < a->r[i].len &&
            len <= a->r[i].len - (addr - a->r[i].base)) {
            *base = a->r[i].base;
            *rlen = a->r[i].len;
            return 1;
        }
    return 0;
}

/* Packs params per the kernel's reported layout. vals[i] points at the i-th value. */
static void pack(const gf_ptx_kernel *k, uint8_t *buf, const void *const *vals)
{
    for (unsigned i = 0; i < gf_ptx_kernel_param_count(k); i++) {
        const gf_ptx_param *p = gf_ptx_kernel_param(k, i);
        memcpy(buf + p->offset, vals[i], p->size);
    }
}

static gf_ptx_rc launch(const gf_ptx_kernel *k, arena *a, unsigned gx, unsigned gy, unsigned gz,
                        unsigned bx, unsigned by, unsigned bz, unsigned dyn, const void *params,
                        char *err, size_t errlen, gf_ptx_stats *st)
{
    gf_ptx_launch L;
    memset(&L, 0, sizeof L);
    L.grid[0] = gx, L.grid[1] = gy, L.grid[2] = gz;
    L.block[0] = bx, L.block[1] = by, L.block[2] = bz;
    L.dynamic_shared = dyn;
    L.params = params;
    L.params_size = gf_ptx_kernel_params_size(k);
    L.check = a ? arena_check : NULL;
    L.check_ctx = a;
    L.sm_count = 8;
    return gf_ptx_run(k, &L, st, err, errlen);
}

#define RUN_OK(...)                                                                        \
    do {                                                                                   \
        char err_[512] = "";                                                               \
        gf_ptx_rc rc_ = launch(__VA_ARGS__, err_, sizeof err_, NULL);                      \
        ASSERT_MSG(rc_ == GF_PTX_OK, "launch failed (%d): %s", rc_, err_);                \
    } while (0)

/* Binds every module variable to a fresh arena buffer holding its initial value. */
static void bind_globals(gf_ptx_module *m, arena *a, void **addrs)
{
    for (unsigned i = 0; i < gf_ptx_module_global_count(m); i++) {
        const gf_ptx_global *g = gf_ptx_module_global(m, i);
        void *p = arena_alloc(a, g->size ? g->size : 1);
        if (g->init)
            memcpy(p, g->init, g->size);
        gf_ptx_module_bind_global(m, i, (uintptr_t)p);
        if (addrs)
            addrs[i] = p;
    }
}

static void *global_by_name(gf_ptx_module *m, void **addrs, const char *name)
{
    for (unsigned i = 0; i < gf_ptx_module_global_count(m); i++)
        if (!strcmp(gf_ptx_module_global(m, i)->name, name))
            return addrs[i];
    ASSERT_MSG(0, "no module variable %s", name);
    return NULL;
}

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

static float frnd(float lo, float hi)
{
    return lo + (hi - lo) * (float)(rnd() & 0xffff) / 65535.0f;
}

/* Relative comparison that treats NaN == NaN and equal infinities as equal. */
static int close_enough(double got, double want, double rel)
{
    if (isnan(want))
        return isnan(got);
    if (isinf(want))
        return got == want;
    return fabs(got - want) <= rel * fmax(1.0, fabs(want));
}

/* ---- the basic kernels ---------------------------------------------------------------------- */

TEST(ptx_vector_add)
{
    gf_ptx_module *m = load_file("vector_add");
    const gf_ptx_kernel *k = kernel(m, "vector_add");
    arena a = {0};
    int n = 1000;
    float *x = arena_alloc(&a, n * 4), *y = arena_alloc(&a, n * 4), *z = arena_alloc(&a, n * 4);
    for (int i = 0; i < n; i++)
        x[i] = frnd(-10, 10), y[i] = frnd(-10, 10);
    uint8_t params[64];
    pack(k, params, (const void *[]){&x, &y, &z, &n});
    gf_ptx_stats st;
    char err[256];
    ASSERT_EQ_INT(launch(k, &a, 4, 1, 1, 256, 1, 1, 0, params, err, sizeof err, &st), GF_PTX_OK);
    for (int i = 0; i < n; i++)
        ASSERT_MSG(z[i] == x[i] + y[i], "c[%d] = %g, expected %g", i, z[i], x[i] + y[i]);
    ASSERT_TRUE(st.instructions > (uint64_t)n * 10);
    ASSERT_TRUE(a.checks > 0 && a.checks < 100); /* the range cache works */
    gf_ptx_module_free(m);
}

TEST(ptx_saxpy)
{
    gf_ptx_module *m = load_file("saxpy");
    const gf_ptx_kernel *k = kernel(m, "saxpy");
    arena a = {0};
    int n = 100003;
    float alpha = 1.75f;
    float *x = arena_alloc(&a, n * 4), *y = arena_alloc(&a, n * 4);
    float *ref = malloc(n * 4);
    for (int i = 0; i < n; i++) {
        x[i] = frnd(-100, 100), y[i] = frnd(-100, 100);
        ref[i] = fmaf(alpha, x[i], y[i]);
    }
    uint8_t params[64];
    pack(k, params, (const void *[]){&n, &alpha, &x, &y});
    RUN_OK(k, &a, (n + 255) / 256, 1, 1, 256, 1, 1, 0, params);
    for (int i = 0; i < n; i++)
        ASSERT_MSG(y[i] == ref[i], "y[%d] = %g, expected %g", i, y[i], ref[i]);
    free(ref);
    gf_ptx_module_free(m);
}

TEST(ptx_param_layout)
{
    gf_ptx_module *m = load_file("vector_add");
    const gf_ptx_kernel *k = kernel(m, "vector_add");
    ASSERT_EQ_INT(gf_ptx_kernel_param_count(k), 4);
    static const uint32_t off[] = {0, 8, 16, 24}, sz[] = {8, 8, 8, 4};
    for (unsigned i = 0; i < 4; i++) {
        ASSERT_EQ_INT(gf_ptx_kernel_param(k, i)->offset, off[i]);
        ASSERT_EQ_INT(gf_ptx_kernel_param(k, i)->size, sz[i]);
        ASSERT_EQ_INT(gf_ptx_kernel_param(k, i)->align, sz[i]);
    }
    ASSERT_EQ_INT(gf_ptx_kernel_params_size(k), 28);
    ASSERT_TRUE(gf_ptx_kernel_param(k, 4) == NULL);
    gf_ptx_module_free(m);

    m = load_file("saxpy");
    k = kernel(m, "saxpy");
    static const uint32_t soff[] = {0, 4, 8, 16}, ssz[] = {4, 4, 8, 8};
    for (unsigned i = 0; i < 4; i++) {
        ASSERT_EQ_INT(gf_ptx_kernel_param(k, i)->offset, soff[i]);
        ASSERT_EQ_INT(gf_ptx_kernel_param(k, i)->size, ssz[i]);
    }
    ASSERT_EQ_INT(gf_ptx_kernel_params_size(k), 24);
    gf_ptx_module_free(m);

    /* struct by value (.align 8 .b8 [24]), char, two pointers, int */
    m = load_file("misc");
    k = kernel(m, "misc_call");
    static const uint32_t moff[] = {0, 24, 32, 40, 48}, msz[] = {24, 1, 8, 8, 4},
                          mal[] = {8, 1, 8, 8, 4};
    ASSERT_EQ_INT(gf_ptx_kernel_param_count(k), 5);
    for (unsigned i = 0; i < 5; i++) {
        ASSERT_EQ_INT(gf_ptx_kernel_param(k, i)->offset, moff[i]);
        ASSERT_EQ_INT(gf_ptx_kernel_param(k, i)->size, msz[i]);
        ASSERT_EQ_INT(gf_ptx_kernel_param(k, i)->align, mal[i]);
    }
    ASSERT_EQ_INT(gf_ptx_kernel_params_size(k), 52);
    ASSERT_EQ_INT(gf_ptx_module_kernel_count(m), 11);
    ASSERT_EQ_STR(gf_ptx_kernel_name(gf_ptx_module_kernel(m, 0)), "misc_globals");
    gf_ptx_module_free(m);

    m = load_file("reduce");
    ASSERT_EQ_INT(gf_ptx_kernel_static_shared(kernel(m, "reduce_sum")), 1024);
    ASSERT_EQ_INT(gf_ptx_kernel_static_shared(kernel(m, "reduce_warp")), 128);
    ASSERT_TRUE(gf_ptx_kernel_num_regs(kernel(m, "reduce_sum")) > 10);
    gf_ptx_module_free(m);
}

TEST(ptx_reduce)
{
    gf_ptx_module *m = load_file("reduce");
    arena a = {0};
    unsigned n = 10007;
    float *in = arena_alloc(&a, n * 4), *out = arena_alloc(&a, 8);
    double ref = 0;
    for (unsigned i = 0; i < n; i++) {
        in[i] = frnd(-1, 1);
        ref += in[i];
    }
    uint8_t params[64];
    const gf_ptx_kernel *k = kernel(m, "reduce_sum");
    pack(k, params, (const void *[]){&in, &out, &n});
    RUN_OK(k, &a, (n + 255) / 256, 1, 1, 256, 1, 1, 0, params);
    ASSERT_NEAR(out[0], ref, 1e-3);

    out[0] = 0;
    k = kernel(m, "reduce_warp");
    pack(k, params, (const void *[]){&in, &out, &n});
    RUN_OK(k, &a, 7, 1, 1, 96, 1, 1, 0, params);
    ASSERT_NEAR(out[0], ref, 1e-3);
    gf_ptx_module_free(m);
}

TEST(ptx_matmul)
{
    gf_ptx_module *m = load_file("matmul");
    const gf_ptx_kernel *k = kernel(m, "matmul_tiled");
    arena a = {0};
    int M = 37, N = 29, K = 45;
    float *A = arena_alloc(&a, M * K * 4), *B = arena_alloc(&a, K * N * 4);
    float *C = arena_alloc(&a, M * N * 4);
    for (int i = 0; i < M * K; i++)
        A[i] = frnd(-1, 1);
    for (int i = 0; i < K * N; i++)
        B[i] = frnd(-1, 1);
    uint8_t params[64];
    pack(k, params, (const void *[]){&A, &B, &C, &M, &N, &K});
    RUN_OK(k, &a, (N + 15) / 16, (M + 15) / 16, 1, 16, 16, 1, 0, params);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int l = 0; l < K; l++)
                s += (double)A[i * K + l] * B[l * N + j];
            ASSERT_MSG(fabs(C[i * N + j] - s) < 1e-4, "C[%d][%d] = %g, expected %g", i, j,
                       C[i * N + j], s);
        }
    gf_ptx_module_free(m);
}

static uint64_t fake_ns;
static uint64_t fake_timer(void)
{
    return fake_ns += 100;
}

TEST(ptx_spin)
{
    gf_ptx_module *m = load_file("spin");
    const gf_ptx_kernel *k = kernel(m, "gpufuse_sim_spin");
    uint64_t ns = 10000;
    gf_ptx_launch L;
    memset(&L, 0, sizeof L);
    L.grid[0] = L.grid[1] = L.grid[2] = 1;
    L.block[0] = L.block[1] = L.block[2] = 1;
    L.params = &ns;
    L.params_size = 8;
    L.globaltimer_ns = fake_timer;
    gf_ptx_stats st;
    char err[256];
    ASSERT_EQ_INT(gf_ptx_run(k, &L, &st, err, sizeof err), GF_PTX_OK);
    ASSERT_TRUE(fake_ns >= 10000 && fake_ns <= 10300);
    ASSERT_TRUE(st.instructions > 300);
    gf_ptx_module_free(m);
}

/* ---- misc.cu ------------------------------------------------------------------------------ */

TEST(ptx_misc_globals)
{
    gf_ptx_module *m = load_file("misc");
    arena a = {0};
    void *g[16];
    ASSERT_TRUE(gf_ptx_module_global_count(m) <= 16);
    bind_globals(m, &a, g);
    int found_const = 0;
    for (unsigned i = 0; i < gf_ptx_module_global_count(m); i++) {
        const gf_ptx_global *gl = gf_ptx_module_global(m, i);
        if (!strcmp(gl->name, "const_coef")) {
            found_const = 1;
            ASSERT_TRUE(gl->is_const);
            ASSERT_EQ_U64(gl->size, 32);
            ASSERT_EQ_INT(gl->align, 4);
        }
        if (!strcmp(gl->name, "dev_counter"))
            ASSERT_TRUE(!gl->is_const && gl->size == 4);
    }
    ASSERT_TRUE(found_const);
    const gf_ptx_kernel *k = kernel(m, "misc_globals");
    int n = 300;
    float *in = arena_alloc(&a, n * 4), *out = arena_alloc(&a, n * 4);
    for (int i = 0; i < n; i++)
        in[i] = frnd(-5, 5);
    uint8_t params[64];
    pack(k, params, (const void *[]){&in, &out, &n});
    RUN_OK(k, &a, 3, 1, 1, 128, 1, 1, 0, params);
    static const float coef[8] = {1, 2, 3, 4, 5, 6, 7, 8}, table[4] = {1.5f, -2.0f, 3.25f, 8.0f};
    static const int ints[4] = {10, -20, 30, -40};
    for (int i = 0; i < n; i++) {
        float want = fmaf(in[i], coef[i & 7], table[i & 3]) + (float)ints[i & 3];
        ASSERT_MSG(close_enough(out[i], want, 1e-6), "out[%d] = %g, expected %g", i, out[i],
                   want);
    }
    ASSERT_EQ_INT(*(int *)global_by_name(m, g, "dev_counter"), 5 + n);
    gf_ptx_module_free(m);
}

static uint32_t brev32(uint32_t x)
{
    uint32_t r = 0;
    for (int i = 0; i < 32; i++)
        r |= ((x >> i) & 1u) << (31 - i);
    return r;
}

static uint32_t byte_perm(uint32_t x, uint32_t y, uint32_t s)
{
    uint64_t t = (uint64_t)y << 32 | x;
    uint32_t r = 0;
    for (int i = 0; i < 4; i++)
        r |= (uint32_t)((t >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
    return r;
}

TEST(ptx_misc_int)
{
    gf_ptx_module *m = load_file("misc");
    arena a = {0};
    bind_globals(m, &a, NULL);
    const gf_ptx_kernel *k = kernel(m, "misc_int");
    int n = 200;
    int32_t *A = arena_alloc(&a, n * 4), *B = arena_alloc(&a, n * 4);
    int32_t *o32 = arena_alloc(&a, n * 16 * 4);
    int64_t *o64 = arena_alloc(&a, n * 8 * 8);
    static const int32_t edge[][2] = {{0, 0}, {7, 0}, {-7, 3}, {INT_MAX, -1}, {-1, -1},
                                      {INT_MIN + 1, 7}, {12345, -32}, {1, 31}, {-8, 2}};
    for (int i = 0; i < n; i++) {
        if (i < (int)(sizeof edge / sizeof edge[0])) {
            A[i] = edge[i][0], B[i] = edge[i][1];
        } else {
            A[i] = (int32_t)(rnd() * 2654435761u);
            B[i] = (int32_t)(rnd() % 2001) - 1000;
            if (A[i] == INT_MIN)
                A[i] = 5;
        }
    }
    uint8_t params[64];
    pack(k, params, (const void *[]){&A, &B, &o32, &o64, &n});
    RUN_OK(k, &a, 2, 1, 1, 128, 1, 1, 0, params);
    for (int i = 0; i < n; i++) {
        int32_t x = A[i], y = B[i];
        uint32_t ux = (uint32_t)x, uy = (uint32_t)y;
        int32_t e[16];
        e[0] = y ? x / y : 0;
        e[1] = y ? x % y : 0;
        e[2] = uy ? (int32_t)(ux / uy) : 0;
        e[3] = uy ? (int32_t)(ux % uy) : 0;
        e[4] = x < y ? x : y;
        e[5] = x > y ? x : y;
        e[6] = (int32_t)(ux < uy ? ux : uy);
        e[7] = x >> (y & 31);
        e[8] = (int32_t)(ux >> (uy & 31));
        e[9] = (int32_t)(ux << (y & 31));
        e[10] = (x & y) ^ (x | ~y);
        e[11] = (int32_t)((uint32_t)__builtin_popcount(ux) +
                          (uint32_t)(x ? __builtin_clz(ux) : 32) * 100u);
        e[12] = (int32_t)brev32(ux);
        e[13] = (int32_t)((uint32_t)(x < 0 ? -x : x) -
                          (uint32_t)(int32_t)(((int64_t)x * y) >> 32));
        e[14] = (int32_t)((uint32_t)(((uint64_t)ux * uy) >> 32) + (uint32_t)__builtin_ffs(x));
        e[15] = (int32_t)byte_perm(ux, uy, 0x5140);
        for (int j = 0; j < 16; j++)
            ASSERT_MSG(o32[i * 16 + j] == e[j], "x=%d y=%d: out32[%d] = %d, expected %d", x, y, j,
                       o32[i * 16 + j], e[j]);
        int64_t lx = (int64_t)x * 1000003LL, ly = (int64_t)y * -77LL + 5;
        uint64_t ulx = (uint64_t)lx, uly = (uint64_t)ly;
        int64_t q[8];
        q[0] = (int64_t)(ulx * uly);
        q[1] = lx / ly;
        q[2] = lx % ly;
        q[3] = (int64_t)(ulx / uly);
        q[4] = lx >> (y & 63);
        q[5] = (int64_t)((ulx << (uy & 63)) ^ (uint64_t)__builtin_popcountll(ulx));
        q[6] = (int64_t)((uint64_t)(lx > ly ? lx : ly) - (uint64_t)(lx < ly ? lx : ly) +
                         (uint64_t)__builtin_clzll(uly));
        q[7] = (int64_t)((uint64_t)(((unsigned __int128)ulx * uly) >> 64) +
                         (uint64_t)(((__int128)lx * ly) >> 64));
        for (int j = 0; j < 8; j++)
            ASSERT_MSG(o64[i * 8 + j] == q[j], "x=%d y=%d: out64[%d] = %lld, expected %lld", x, y,
                       j, (long long)o64[i * 8 + j], (long long)q[j]);
    }
    gf_ptx_module_free(m);
}

TEST(ptx_misc_float)
{
    gf_ptx_module *m = load_file("misc");
    arena a = {0};
    bind_globals(m, &a, NULL);
    const gf_ptx_kernel *k = kernel(m, "misc_float");
    int n = 160;
    float *A = arena_alloc(&a, n * 4), *B = arena_alloc(&a, n * 4);
    float *of = arena_alloc(&a, n * 16 * 4);
    double *od = arena_alloc(&a, n * 8 * 8);
    int *oi = arena_alloc(&a, n * 4 * 4);
    for (int i = 0; i < n; i++) {
        A[i] = frnd(-100, 100), B[i] = frnd(-50, 50);
        if (i == 0)
            A[i] = 0, B[i] = 0;
        if (i == 1)
            A[i] = 3, B[i] = 0;
        if (i == 2)
            A[i] = 2.5f, B[i] = -1.5f;
        if (i == 3)
            A[i] = 1e6f, B[i] = 1e-3f; /* large sin/cos arguments take the slow path */
    }
    uint8_t params[64];
    pack(k, params, (const void *[]){&A, &B, &of, &od, &oi, &n});
    RUN_OK(k, &a, 2, 1, 1, 128, 1, 1, 0, params);
    for (int i = 0; i < n; i++) {
        float x = A[i], y = B[i];
        double e[16];
        e[0] = x / y;
        e[1] = sqrtf(fabsf(x));
        e[2] = 1.0f / sqrtf(fabsf(y) + 1.0f);
        e[3] = expf(x * 0.1f);
        e[4] = logf(fabsf(y) + 1.0f);
        e[5] = sinf(x) + cosf(y);
        e[6] = fminf(x, y) * fmaxf(x, y);
        e[7] = -fabsf(x) + floorf(y) + ceilf(x) + truncf(y) + rintf(x);
        e[8] = (float)(int)x + (float)(unsigned)(fabsf(y));
        e[9] = x > y ? x : y * 2.0f;
        e[10] = expf(y * 0.05f) + logf(fabsf(x) + 2.0f);
        e[11] = fmaf(x, y, 1.0f);
        e[12] = copysignf(x, y);
        e[13] = tanhf(x * 0.01f);
        e[14] = x / (fabsf(y) + 1.0f);
        e[15] = isnan(x / y) ? 1.0f : (isinf(x / y) ? 2.0f : 0.0f);
        for (int j = 0; j < 16; j++) {
            double tol = (j == 10 || j == 13 || j == 14) ? 1e-4 : (j == 5 ? 1e-5 : 1e-6);
            ASSERT_MSG(close_enough(of[i * 16 + j], e[j], tol), "x=%g y=%g: f[%d] = %.9g, expected %.9g",
                       x, y, j, of[i * 16 + j], e[j]);
        }
        double dx = x, dy = y, d[8];
        d[0] = dx / dy;
        d[1] = sqrt(fabs(dx)) + dx * dy;
        d[2] = fma(dx, dy, -1.0);
        d[3] = fmin(dx, dy) - fmax(dx, dy);
        d[4] = (double)(long long)(dx * 1e6);
        d[5] = (double)(float)(dx / 3.0);
        d[6] = 1.0 / (fabs(dy) + 0.5);
        d[7] = floor(dx) + ceil(dy);
        for (int j = 0; j < 8; j++)
            ASSERT_MSG(close_enough(od[i * 8 + j], d[j], 1e-15), "x=%g y=%g: d[%d] = %.17g, expected %.17g",
                       x, y, j, od[i * 8 + j], d[j]);
        float y3 = y * 3.0f;
        int ei[4] = {(int)(x * 1000.0f), y3 <= 0 ? 0 : (int)(unsigned)y3, (int)lrintf(x * 10.0f),
                     (int)(long long)(dy * 1e3)};
        for (int j = 0; j < 4; j++)
            ASSERT_MSG(oi[i * 4 + j] == ei[j], "x=%g y=%g: i[%d] = %d, expected %d", x, y, j,
                       oi[i * 4 + j], ei[j]);
    }
    gf_ptx_module_free(m);
}

TEST(ptx_misc_atomics)
{
    gf_ptx_module *m = load_file("misc");
    arena a = {0};
    bind_globals(m, &a, NULL);
    const gf_ptx_kernel *k = kernel(m, "misc_atomics");
    int n = 200;
    int32_t *ia = arena_alloc(&a, 16 * 4);
    float *fa = arena_alloc(&a, 16);
    uint64_t *ua = arena_alloc(&a, 3 * 8);
    ia[4] = -1;
    uint8_t params[64];
    pack(k, params, (const void *[]){&ia, &fa, &ua, &n});
    RUN_OK(k, &a, 4, 1, 1, 64, 1, 1, 0, params);
    misc_atomics_check(ia, fa[0], ua, n);
    ASSERT_EQ_INT(ia[6], n % 17);
    ASSERT_EQ_INT(ia[7], n); /* threads run in order here, so every CAS succeeds */
    ASSERT_EQ_U64(ua[1], (uint64_t)n);
    gf_ptx_module_free(m);
}

TEST(ptx_misc_grid3d)
{
    gf_ptx_module *m = load_file("misc");
    arena a = {0};
    bind_globals(m, &a, NULL);
    const gf_ptx_kernel *k = kernel(m, "misc_grid3d");
    unsigned nx = 7, ny = 5, nz = 5;
    uint32_t *out = arena_alloc(&a, nx * ny * nz * 4);
    uint8_t params[64];
    pack(k, params, (const void *[]){&out, &nx, &ny, &nz});
    RUN_OK(k, &a, 2, 3, 2, 4, 2, 3, 0, params);
    for (unsigned z = 0; z < nz; z++)
        for (unsigned y = 0; y < ny; y++)
            for (unsigned x = 0; x < nx; x++)
                ASSERT_EQ_INT(out[(z * ny + y) * nx + x], misc_grid3d_value(x, y, z, 12));
    gf_ptx_module_free(m);
}

TEST(ptx_misc_local)
{
    gf_ptx_module *m = load_file("misc");
    arena a = {0};
    bind_globals(m, &a, NULL);
    const gf_ptx_kernel *k = kernel(m, "misc_local");
    ASSERT_TRUE(gf_ptx_kernel_local_bytes(k) >= 128);
    int n = 100;
    int *idx = arena_alloc(&a, n * 4), *out = arena_alloc(&a, n * 4);
    for (int i = 0; i < n; i++)
        idx[i] = (int)rnd();
    uint8_t params[64];
    pack(k, params, (const void *[]){&idx, &out, &n});
    RUN_OK(k, &a, 2, 1, 1, 64, 1, 1, 0, params);
    for (int i = 0; i < n; i++)
        ASSERT_EQ_INT(out[i], misc_local_value(i, idx[i]));
    gf_ptx_module_free(m);
}

TEST(ptx_misc_vec4_half_dynsmem)
{
    gf_ptx_module *m = load_file("misc");
    arena a = {0};
    bind_globals(m, &a, NULL);
    int n = 150;
    float *in = arena_alloc(&a, n * 16), *out = arena_alloc(&a, n * 16);
    uint16_t *hout = arena_alloc(&a, n * 2);
    for (int i = 0; i < n * 4; i++)
        in[i] = frnd(-8, 8);
    uint8_t params[64];

    const gf_ptx_kernel *k = kernel(m, "misc_vec4");
    pack(k, params, (const void *[]){&in, &out, &n});
    RUN_OK(k, &a, 3, 1, 1, 64, 1, 1, 0, params);
    for (int i = 0; i < n; i++) {
        const float *v = in + 4 * i, *o = out + 4 * i;
        ASSERT_MSG(misc_vec4_ok(v, o), "vec4 element %d", i);
    }

    k = kernel(m, "misc_half");
    pack(k, params, (const void *[]){&in, &out, &hout, &n});
    RUN_OK(k, &a, 3, 1, 1, 64, 1, 1, 0, params);
    for (int i = 0; i < n; i++) {
        uint16_t h = hout[i];
        int e = (h >> 10) & 31, mant = h & 1023;
        double v = e ? ldexp(mant + 1024, e - 25) : ldexp(mant, -24);
        if (h & 0x8000)
            v = -v;
        ASSERT_NEAR(out[i], v, 0);
        ASSERT_MSG(fabs(v - in[i] * 2.5) <= fabs(in[i]) * 2.5 * 3e-3 + 1e-4,
                   "half: %g*2.5 gave %g", in[i], v);
    }

    k = kernel(m, "misc_dynsmem");
    memset(out, 0, n * 4);
    pack(k, params, (const void *[]){&in, &out, &n});
    RUN_OK(k, &a, 3, 1, 1, 64, 1, 1, 64 * 4, params);
    for (int j = 0; j < n; j++) {
        int b = j / 64, t = 63 - (j - b * 64), i = b * 64 + t;
        ASSERT_NEAR(out[j], i < n ? in[i] : 0.0f, 0);
    }
    gf_ptx_module_free(m);
}

TEST(ptx_misc_call)
{
    gf_ptx_module *m = load_file("misc");
    arena a = {0};
    bind_globals(m, &a, NULL);
    const gf_ptx_kernel *k = kernel(m, "misc_call");
    int n = 77;
    float *x = arena_alloc(&a, n * 4), *y = arena_alloc(&a, n * 4);
    for (int i = 0; i < n; i++)
        x[i] = frnd(-4, 4);
    uint8_t params[64];
    memset(params, 0, sizeof params);
    int pa = 11;
    double pb = 3.5;
    char pc[3] = {5, -6, 7}, tag = 9;
    memcpy(params + 0, &pa, 4);
    memcpy(params + 8, &pb, 8);
    memcpy(params + 16, pc, 3);
    memcpy(params + 24, &tag, 1);
    memcpy(params + 32, &x, 8);
    memcpy(params + 40, &y, 8);
    memcpy(params + 48, &n, 4);
    RUN_OK(k, &a, 2, 1, 1, 64, 1, 1, 0, params);
    for (int i = 0; i < n; i++) {
        int qa = (pa + i) * 2, mode = i % 3;
        float qb = (float)(pb * 0.5);
        float s = mode == 0 ? x[i] + qb : fmaf(x[i], qb, (float)mode);
        float want = s + (float)qa + (float)pc[i % 3] + (float)tag + 3.0f;
        ASSERT_MSG(close_enough(y[i], want, 1e-6), "y[%d] = %g, expected %g", i, y[i], want);
    }
    gf_ptx_module_free(m);
}

TEST(ptx_misc_warp)
{
    gf_ptx_module *m = load_file("misc");
    arena a = {0};
    bind_globals(m, &a, NULL);
    const gf_ptx_kernel *k = kernel(m, "misc_warp");
    int n = 50;
    int *in = arena_alloc(&a, 64 * 4);
    uint32_t *out = arena_alloc(&a, 64 * 8 * 4);
    for (int i = 0; i < n; i++)
        in[i] = (int)(rnd() % 101);
    in[7] = 95;
    uint8_t params[64];
    pack(k, params, (const void *[]){&in, &out, &n});
    RUN_OK(k, &a, 1, 1, 1, 64, 1, 1, 0, params);
    misc_warp_check(in, out, n);
    gf_ptx_module_free(m);
}

/* ---- hand-written PTX ---------------------------------------------------------------------- */

#define HDR ".version 9.0\n.target sm_80\n.address_size 64\n"

/* Bit-twiddling, half packing, bar.red and friends, one thread. */
TEST(ptx_handwritten_ops)
{
    const char *src = HDR
        ".visible .entry ops(.param .u64 out)\n"
        "{\n"
        "  .reg .pred %p<4>;\n"
        "  .reg .b32 %r<40>;\n"
        "  .reg .f32 %f<4>;\n"
        "  .reg .b64 %rd<4>;\n"
        "  ld.param.u64 %rd1, [out];\n"
        "  mov.u32 %r1, 0xF0F01234;\n"
        "  bfe.u32 %r2, %r1, 4, 8;\n"          /* 0x23 */
        "  bfe.s32 %r3, %r1, 28, 8;\n"         /* sign-filled 0xffffffff */
        "  bfi.b32 %r4, 0xA, %r1, 8, 4;\n"     /* 0xF0F01A34 */
        "  prmt.b32 %r5, %r1, 0x11223344, 0x7340;\n"
        "  shf.l.wrap.b32 %r6, %r1, 0x80000001, 4;\n"
        "  shf.r.clamp.b32 %r7, %r1, 0x80000001, 40;\n"
        "  lop3.b32 %r8, %r1, 0xFF00FF00, 0x0F0F0F0F, 0xE8;\n" /* majority */
        "  bfind.u32 %r9, %r1;\n"
        "  bfind.shiftamt.u32 %r10, 0x00010000;\n"
        "  mov.f32 %f1, 0fC0490FDB;\n"         /* -pi */
        "  mov.f32 %f2, 0f3F800000;\n"
        "  cvt.rn.f16x2.f32 %r11, %f1, %f2;\n" /* {-pi, 1.0} */
        "  copysign.f32 %f3, %f1, %f2;\n"      /* -1 */
        "  mov.b32 %r12, %f3;\n"
        "  testp.infinite.f32 %p1, 0f7F800000;\n"
        "  selp.u32 %r13, 7, 9, %p1;\n"
        "  mov.u32 %r14, %tid.x;\n"
        "  setp.lt.u32 %p2, %r14, 1;\n"
        "  bar.red.popc.u32 %r15, 0, %p2;\n"
        "  bar.red.or.pred %p3, 0, !%p2;\n"
        "  selp.u32 %r16, 1, 0, %p3;\n"
        "  mul.hi.u32 %r17, 0xFFFFFFFF, 0xFFFFFFFF;\n"
        "  mul24.lo.s32 %r18, -3, 5;\n"
        "  sad.u32 %r19, 3, 10, 100;\n"
        "  add.cc.u32 %r20, 0xFFFFFFFF, 2;\n"
        "  addc.u32 %r21, 0, 0;\n"
        "  cvt.rni.s32.f32 %r22, 0f40200000;\n" /* 2.5 -> 2 */
        "  cvt.rzi.u32.f32 %r23, 0fC0200000;\n" /* -2.5 -> 0 */
        "  cvt.sat.s8.s32 %r24, 300;\n"
        "  cvt.rzi.s32.f32 %r25, 0f7FC00000;\n" /* NaN -> 0 */
        "  shl.b32 %r26, 1, 40;\n"
        "  shr.s32 %r27, 0x80000000, 99;\n"
        "  clz.b32 %r28, 0;\n"
        "  dp4a.u32.u32 %r29, 0x01020304, 0x01010101, 10;\n"
        "  min.s32 %r30, -5, 3;\n"
        "  rem.s32 %r31, -7, 0;\n"
        "  div.u32 %r32, 7, 0;\n"
        "  set.lt.u32.s32 %r33, -1, 0;\n"
        "  slct.u32.s32 %r34, 1, 2, -1;\n"
        "  st.global.v4.u32 [%rd1], {%r2, %r3, %r4, %r5};\n"
        "  st.global.v4.u32 [%rd1+16], {%r6, %r7, %r8, %r9};\n"
        "  st.global.v4.u32 [%rd1+32], {%r10, %r11, %r12, %r13};\n"
        "  st.global.v4.u32 [%rd1+48], {%r15, %r16, %r17, %r18};\n"
        "  st.global.v4.u32 [%rd1+64], {%r19, %r20, %r21, %r22};\n"
        "  st.global.v4.u32 [%rd1+80], {%r23, %r24, %r25, %r26};\n"
        "  st.global.v4.u32 [%rd1+96], {%r27, %r28, %r29, %r30};\n"
        "  st.global.v4.u32 [%rd1+112], {%r31, %r32, %r33, %r34};\n"
        "  exit;\n"
        "}\n";
    gf_ptx_module *m = load_text(src);
    uint32_t *out = aligned_alloc(64, 128);
    memset(out, 0, 128);
    RUN_OK(kernel(m, "ops"), NULL, 1, 1, 1, 1, 1, 1, 0, &out);
    /* Values whose derivation is not obvious are spelled out here. */
    uint64_t v = (uint64_t)0x80000001u << 32 | 0xF0F01234u;
    uint32_t maj = (0xF0F01234u & 0xFF00FF00u) | (0xF0F01234u & 0x0F0F0F0Fu) |
                   (0xFF00FF00u & 0x0F0F0F0Fu);
    uint32_t e[32] = {0x23, 0xffffffff, 0xF0F01A34, byte_perm(0xF0F01234u, 0x11223344u, 0x7340),
                      (uint32_t)((v << 4) >> 32), (uint32_t)(v >> 32), maj, 31,
                      15, 0xC2483C00u, 0xbf800000u, 7,
                      1, 0, 0xfffffffeu, (uint32_t)-15,
                      107, 1, 1, 2,
                      0, 127, 0, 0,
                      0xffffffffu, 32, 20, (uint32_t)-5,
                      (uint32_t)-7, 0xffffffffu, 0xffffffffu, 2};
    for (int i = 0; i < 32; i++)
        ASSERT_MSG(out[i] == e[i], "slot %d: got %#x, expected %#x", i, out[i], e[i]);
    free(out);
    gf_ptx_module_free(m);
}

TEST(ptx_recursion_and_huge_regs)
{
    const char *src = HDR
        ".func (.param .b32 ret) fact(.param .b32 n)\n"
        "{\n"
        "  .reg .pred %p<2>;\n"
        "  .reg .b32 %r<999999999>;\n"
        "  ld.param.u32 %r1, [n];\n"
        "  setp.le.u32 %p1, %r1, 1;\n"
        "  @%p1 bra DONE;\n"
        "  add.u32 %r2, %r1, -1;\n"
        "  {\n"
        "  .param .b32 a0;\n"
        "  .param .b32 r0;\n"
        "  st.param.b32 [a0+0], %r2;\n"
        "  call.uni (r0), fact, (a0);\n"
        "  ld.param.b32 %r3, [r0+0];\n"
        "  }\n"
        "  mul.lo.u32 %r1, %r1, %r3;\n"
        "DONE:\n"
        "  st.param.b32 [ret+0], %r1;\n"
        "  ret;\n"
        "}\n"
        ".visible .entry k(.param .u64 out, .param .u32 n)\n"
        "{\n"
        "  .reg .b32 %r<3>;\n"
        "  .reg .b64 %rd<2>;\n"
        "  ld.param.u64 %rd1, [out];\n"
        "  ld.param.u32 %r1, [n];\n"
        "  {\n"
        "  .param .b32 a0;\n"
        "  .param .b32 r0;\n"
        "  st.param.b32 [a0+0], %r1;\n"
        "  call.uni (r0), fact, (a0);\n"
        "  ld.param.b32 %r2, [r0+0];\n"
        "  }\n"
        "  st.global.u32 [%rd1], %r2;\n"
        "  ret;\n"
        "}\n";
    gf_ptx_module *m = load_text(src);
    const gf_ptx_kernel *k = kernel(m, "k");
    uint8_t params[16];
    uint32_t *out = aligned_alloc(64, 64);
    uint32_t n = 10;
    memcpy(params, &out, 8);
    memcpy(params + 8, &n, 4);
    RUN_OK(k, NULL, 1, 1, 1, 2, 1, 1, 0, params);
    ASSERT_EQ_INT(out[0], 3628800);
    /* Deeper than the recursion budget: a clean launch error, not a crash. */
    n = 1000;
    memcpy(params + 8, &n, 4);
    char err[256];
    ASSERT_EQ_INT(launch(k, NULL, 1, 1, 1, 1, 1, 1, 0, params, err, sizeof err, NULL),
                  GF_PTX_ERR_LAUNCH);
    ASSERT_CONTAINS(err, "call stack overflow");
    free(out);
    gf_ptx_module_free(m);
}

static gf_ptx_rc load_err(const char *src, char *err, size_t n)
{
    gf_ptx_module *m = NULL;
    gf_ptx_rc rc = gf_ptx_module_load(src, strlen(src), &m, err, n);
    ASSERT_TRUE(rc == GF_PTX_OK || m == NULL);
    gf_ptx_module_free(m);
    return rc;
}

TEST(ptx_load_errors)
{
    char err[256];
    ASSERT_EQ_INT(load_err(HDR ".visible .entry k()\n{\n  .reg .f32 %f<5>;\n  .reg .b64 %rd<2>;\n"
                           "  tex.2d.v4.f32.f32 {%f1, %f2, %f3, %f4}, [%rd1, {%f1, %f2}];\n"
                           "  ret;\n}\n",
                           err, sizeof err),
                  GF_PTX_ERR_UNSUPPORTED);
    ASSERT_EQ_STR(err, "line 8: unsupported instruction 'tex.2d.v4.f32.f32'");
    /* A known opcode with a modifier the engine lacks. */
    ASSERT_EQ_INT(load_err(HDR ".visible .entry k()\n{\n  .reg .b32 %r<3>;\n"
                           "  mul.lo.frobnicate.u32 %r1, %r2, %r2;\n  ret;\n}\n",
                           err, sizeof err),
                  GF_PTX_ERR_UNSUPPORTED);
    ASSERT_EQ_STR(err, "line 7: unsupported instruction 'mul.lo.frobnicate.u32'");
    ASSERT_EQ_INT(load_err(HDR ".visible .entry k()\n{\n  .reg .b32 %r<3>;\n"
                           "  add.u32 %r1, %r2, %r2\n  ret;\n}\n",
                           err, sizeof err),
                  GF_PTX_ERR_SYNTAX);
    ASSERT_CONTAINS(err, "line 8: expected ';'");
    ASSERT_EQ_INT(load_err(HDR ".visible .entry k()\n{\n  .reg .b32 %r<3>;\n"
                           "  add.u32 %r1, %r7, %r2;\n  ret;\n}\n",
                           err, sizeof err),
                  GF_PTX_ERR_SYNTAX);
    ASSERT_CONTAINS(err, "line 7: unknown register '%r7'");
    ASSERT_EQ_INT(load_err(HDR ".visible .entry k()\n{\n  bra NOWHERE;\n}\n", err, sizeof err),
                  GF_PTX_ERR_SYNTAX);
    ASSERT_CONTAINS(err, "unknown label 'NOWHERE'");
    ASSERT_EQ_INT(load_err(HDR ".visible .entry k()\n{\n  ret;\n", err, sizeof err),
                  GF_PTX_ERR_SYNTAX);
    ASSERT_EQ_INT(load_err(HDR ".global .b8 big[4294967297] = {1};\n", err, sizeof err),
                  GF_PTX_ERR_UNSUPPORTED);
    ASSERT_EQ_INT(load_err("/* unterminated", err, sizeof err), GF_PTX_ERR_SYNTAX);
    ASSERT_EQ_INT(load_err(HDR ".extern .func (.param .b32 r) vprintf(.param .b64 a, .param .b64 b);\n"
                           ".visible .entry k()\n{\n  .reg .b32 %r<2>;\n  {\n  .param .b64 a0;\n"
                           "  .param .b64 a1;\n  .param .b32 r0;\n"
                           "  call.uni (r0), vprintf, (a0, a1);\n  }\n  ret;\n}\n",
                           err, sizeof err),
                  GF_PTX_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(err, "vprintf");
    /* Comments, .pragma, .loc and an empty module scope are all fine. */
    ASSERT_EQ_INT(load_err(HDR "// c\n/* block */ .file 1 \"x.cu\"\n.visible .entry k()\n"
                           ".maxntid 128, 1, 1\n{\n  .loc 1 2 3\n  .pragma \"nounroll\";\n"
                           "  { ret; }\n}\n",
                           err, sizeof err),
                  GF_PTX_OK);
}

static const char *barrier_src = HDR
    ".visible .entry b(.param .u64 cnt, .param .u32 mode)\n"
    "{\n"
    "  .reg .pred %p<3>;\n"
    "  .reg .b32 %r<4>;\n"
    "  .reg .b64 %rd<2>;\n"
    "  ld.param.u64 %rd1, [cnt];\n"
    "  ld.param.u32 %r2, [mode];\n"
    "  mov.u32 %r1, %tid.x;\n"
    "  setp.lt.u32 %p1, %r1, 16;\n"
    "  setp.eq.u32 %p2, %r2, 0;\n"
    "  @%p1 bra LOW;\n"
    "  @%p2 exit;\n"
    "  bar.sync 1;\n"
    "  ret;\n"
    "LOW:\n"
    "  bar.sync 0;\n"
    "  atom.global.add.u32 %r3, [%rd1], 1;\n"
    "  ret;\n"
    "}\n";

TEST(ptx_barrier_exit_and_deadlock)
{
    gf_ptx_module *m = load_text(barrier_src);
    const gf_ptx_kernel *k = kernel(m, "b");
    uint32_t *cnt = aligned_alloc(64, 64);
    cnt[0] = 0;
    uint8_t params[16];
    uint32_t mode = 0;
    memcpy(params, &cnt, 8);
    memcpy(params + 8, &mode, 4);
    /* Threads that exit count as arrived: the 16 low threads get through. */
    RUN_OK(k, NULL, 2, 1, 1, 48, 1, 1, 0, params);
    ASSERT_EQ_INT(cnt[0], 32);
    /* The others wait at barrier 1 instead: nobody can finish. */
    mode = 1;
    memcpy(params + 8, &mode, 4);
    char err[256];
    ASSERT_EQ_INT(launch(k, NULL, 1, 1, 1, 48, 1, 1, 0, params, err, sizeof err, NULL),
                  GF_PTX_ERR_DEADLOCK);
    ASSERT_CONTAINS(err, "barrier deadlock in kernel 'b'");
    ASSERT_CONTAINS(err, "16 threads at barrier 0");
    ASSERT_CONTAINS(err, "32 threads at barrier 1");
    free(cnt);
    gf_ptx_module_free(m);
}

TEST(ptx_address_errors)
{
    gf_ptx_module *m = load_file("vector_add");
    const gf_ptx_kernel *k = kernel(m, "vector_add");
    arena a = {0};
    int n = 64;
    float *x = arena_alloc(&a, n * 4), *y = arena_alloc(&a, n * 4);
    float *z = malloc(n * 4); /* not registered: the check must reject it */
    uint8_t params[64];
    pack(k, params, (const void *[]){&x, &y, &z, &n});
    char err[512];
    ASSERT_EQ_INT(launch(k, &a, 1, 1, 1, 64, 1, 1, 0, params, err, sizeof err, NULL),
                  GF_PTX_ERR_ADDRESS);
    ASSERT_CONTAINS(err, "illegal address 0x");
    ASSERT_CONTAINS(err, "(4 bytes)");
    ASSERT_CONTAINS(err, "'st.global.f32' in kernel 'vector_add', block (0,0,0) thread (0,0,0)");
    /* One element past the end of a registered buffer. */
    float *zz = arena_alloc(&a, (n - 1) * 4);
    pack(k, params, (const void *[]){&x, &y, &zz, &n});
    ASSERT_EQ_INT(launch(k, &a, 1, 1, 1, 64, 1, 1, 0, params, err, sizeof err, NULL),
                  GF_PTX_ERR_ADDRESS);
    ASSERT_CONTAINS(err, "thread (63,0,0)");
    /* Misaligned float pointer. */
    float *mis = (float *)(void *)((char *)y + 2);
    pack(k, params, (const void *[]){&mis, &y, &x, &n});
    ASSERT_EQ_INT(launch(k, &a, 1, 1, 1, 64, 1, 1, 0, params, err, sizeof err, NULL),
                  GF_PTX_ERR_MISALIGNED);
    ASSERT_CONTAINS(err, "misaligned address");
    /* Bad geometry and a short parameter buffer. */
    ASSERT_EQ_INT(launch(k, &a, 1, 1, 1, 2048, 1, 1, 0, params, err, sizeof err, NULL),
                  GF_PTX_ERR_LAUNCH);
    gf_ptx_launch L;
    memset(&L, 0, sizeof L);
    L.grid[0] = L.grid[1] = L.grid[2] = 1;
    L.block[0] = L.block[1] = L.block[2] = 1;
    L.params = params;
    L.params_size = 8;
    ASSERT_EQ_INT(gf_ptx_run(k, &L, NULL, err, sizeof err), GF_PTX_ERR_LAUNCH);
    free(z);
    gf_ptx_module_free(m);

    /* Shared memory out of range and trap. */
    m = load_text(HDR ".visible .entry s()\n{\n  .reg .b32 %r<3>;\n  .shared .b32 sh[4];\n"
                      "  mov.u32 %r1, sh;\n  st.shared.u32 [%r1+16], 1;\n  ret;\n}\n"
                      ".visible .entry t()\n{\n  trap;\n}\n");
    ASSERT_EQ_INT(launch(kernel(m, "s"), NULL, 1, 1, 1, 1, 1, 1, 0, NULL, err, sizeof err, NULL),
                  GF_PTX_ERR_ADDRESS);
    ASSERT_CONTAINS(err, "'st.shared.u32'");
    ASSERT_EQ_INT(launch(kernel(m, "t"), NULL, 1, 1, 1, 1, 1, 1, 0, NULL, err, sizeof err, NULL),
                  GF_PTX_ERR_TRAP);
    ASSERT_CONTAINS(err, "trap at line");
    gf_ptx_module_free(m);
}

TEST(ptx_ptr_params_and_null)
{
    /* .align after .ptr describes the pointee: the parameter keeps its natural alignment. */
    gf_ptx_module *m = load_text(HDR ".visible .entry k(.param .u32 n, .param .u64 .ptr .global "
                                     ".align 1 p)\n{\n  .reg .b64 %rd<2>;\n"
                                     "  ld.param.u64 %rd1, [p];\n  st.global.u32 [%rd1], 1;\n"
                                     "  ret;\n}\n");
    const gf_ptx_kernel *k = kernel(m, "k");
    ASSERT_EQ_INT(gf_ptx_kernel_param(k, 1)->offset, 8);
    ASSERT_EQ_INT(gf_ptx_kernel_param(k, 1)->align, 8);
    /* A null pointer fails cleanly even without an address check. */
    uint8_t params[16] = {0};
    char err[256];
    ASSERT_EQ_INT(launch(k, NULL, 1, 1, 1, 1, 1, 1, 0, params, err, sizeof err, NULL),
                  GF_PTX_ERR_ADDRESS);
    ASSERT_CONTAINS(err, "illegal address 0x0 (4 bytes)");
    gf_ptx_module_free(m);
}

/* nvcc emits __managed__ variables as ".global .attribute(.managed)"; cudart needs them. */
TEST(managed_variable_is_a_global_marked_managed)
{
    static const char src[] = ".version 9.0\n.target sm_80\n.address_size 64\n"
                              ".global .attribute(.managed) .align 4 .f32 bias = 0f3FC00000;\n"
                              ".global .align 4 .u32 plain;\n";
    gf_ptx_module *m = NULL;
    char err[256];
    ASSERT_EQ_INT(gf_ptx_module_load(src, sizeof src - 1, &m, err, sizeof err), GF_PTX_OK);
    ASSERT_EQ_INT(gf_ptx_module_global_count(m), 2);
    const gf_ptx_global *g = gf_ptx_module_global(m, 0);
    ASSERT_EQ_STR(g->name, "bias");
    ASSERT_EQ_INT(g->is_managed, 1);
    ASSERT_EQ_U64(g->size, 4);
    float f;
    ASSERT_TRUE(g->init != NULL);
    memcpy(&f, g->init, 4);
    ASSERT_NEAR(f, 1.5, 0);
    ASSERT_EQ_INT(gf_ptx_module_global(m, 1)->is_managed, 0);
    gf_ptx_module_free(m);
}
