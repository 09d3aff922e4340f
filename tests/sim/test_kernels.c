/* SPDX-License-Identifier: Apache-2.0 */
/* The sim's driver running real nvcc output: every kernel in tests/kernels, loaded as PTX text,
 * as fat binaries (zstd, LZ4, uncompressed, several PTX archs) and through the CUDA runtime's
 * wrapper with cuLibraryLoadData, launched through the driver API, and every output element
 * checked against a CPU reference. */
#include <cuda.h>
#include <math.h>
#include <stdint.h>

#include "kernels/misc_ref.h"
#include "sim_test_util.h"
#include "test.h"

static uint32_t g_seed = 12345;
static uint32_t rnd(void)
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return g_seed >> 8;
}
static float frnd(float lo, float hi)
{
    return lo + (hi - lo) * (float)(rnd() & 0xffff) / 65535.0f;
}

static int close_rel(double got, double want, double tol)
{
    if (got == want) return 1;
    return fabs(got - want) <= tol * fmax(1.0, fabs(want));
}

static CUdeviceptr dalloc(size_t n)
{
    CUdeviceptr p;
    CHECK_CU(cuMemAlloc(&p, n));
    return p;
}

static CUdeviceptr upload(const void *h, size_t n)
{
    CUdeviceptr p = dalloc(n);
    CHECK_CU(cuMemcpyHtoD(p, h, n));
    return p;
}

/* vector_add through any loaded function, checked element by element */
static void run_vector_add(CUfunction f)
{
    int n = 10007;
    float *a = malloc(n * 4), *b = malloc(n * 4), *c = malloc(n * 4);
    for (int i = 0; i < n; i++) a[i] = frnd(-100, 100), b[i] = frnd(-100, 100);
    CUdeviceptr da = upload(a, n * 4), db = upload(b, n * 4), dc = dalloc(n * 4);
    void *args[] = {&da, &db, &dc, &n};
    CHECK_CU(cuLaunchKernel(f, (n + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
    CHECK_CU(cuMemcpyDtoH(c, dc, n * 4));
    for (int i = 0; i < n; i++)
        ASSERT_MSG(c[i] == a[i] + b[i], "c[%d] = %g, expected %g", i, c[i], a[i] + b[i]);
    CHECK_CU(cuMemFree(da));
    CHECK_CU(cuMemFree(db));
    CHECK_CU(cuMemFree(dc));
    free(a), free(b), free(c);
}

TEST(vector_add_ptx)
{
    sim_setup();
    CUmodule m = sim_load("vector_add.ptx");
    run_vector_add(sim_func(m, "vector_add"));
    CHECK_CU(cuModuleUnload(m));
}

TEST(vector_add_from_file_and_extra_params)
{
    sim_setup();
    CUmodule m;
    CHECK_CU(cuModuleLoad(&m, gf_test_path("tests/kernels/vector_add.ptx")));
    CUfunction f = sim_func(m, "vector_add");
    int n = 1000;
    float a[1000], b[1000], c[1000];
    for (int i = 0; i < n; i++) a[i] = (float)i, b[i] = (float)(2 * i);
    CUdeviceptr da = upload(a, sizeof a), db = upload(b, sizeof b), dc = dalloc(sizeof c);
    /* the packed form: three pointers then an int, as the PTX .entry lays them out */
    struct {
        CUdeviceptr a, b, c;
        int n;
        int pad;
    } buf = {da, db, dc, n, 0};
    size_t size = sizeof buf;
    void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
                     CU_LAUNCH_PARAM_END};
    CHECK_CU(cuLaunchKernel(f, 4, 1, 1, 256, 1, 1, 0, NULL, NULL, extra));
    CHECK_CU(cuMemcpyDtoH(c, dc, sizeof c));
    for (int i = 0; i < n; i++) ASSERT_EQ_INT((int)c[i], 3 * i);
    size_t off, psz;
    CHECK_CU(cuFuncGetParamInfo(f, 3, &off, &psz));
    ASSERT_EQ_INT(off, 24);
    ASSERT_EQ_INT(psz, 4);
    CHECK_CU(cuModuleUnload(m));
}

static const char *const g_fatbins[] = {"vector_add_sm80.fatbin", "vector_add_lz4.fatbin",
                                        "vector_add_nocomp.fatbin"};

TEST(vector_add_fatbins_zstd_lz4_plain)
{
    sim_setup();
    for (size_t i = 0; i < sizeof g_fatbins / sizeof g_fatbins[0]; i++) {
        char *fb = sim_kernel_file(g_fatbins[i], NULL);
        CUmodule m;
        ASSERT_CU(cuModuleLoadData(&m, fb), CUDA_SUCCESS);
        run_vector_add(sim_func(m, "vector_add"));
        CHECK_CU(cuModuleUnload(m));
        CHECK_CU(cuModuleLoadFatBinary(&m, fb));
        run_vector_add(sim_func(m, "vector_add"));
        CHECK_CU(cuModuleUnload(m));
        free(fb);
    }
}

/* What cudart 13 does: cuLibraryLoadData with the wrapper, then a CUkernel passed to
 * cuLaunchKernel as if it were a CUfunction. */
TEST(vector_add_library_through_cudart_wrapper)
{
    sim_setup();
    for (size_t i = 0; i < sizeof g_fatbins / sizeof g_fatbins[0]; i++) {
        char *fb = sim_kernel_file(g_fatbins[i], NULL);
        struct {
            uint32_t magic, version;
            const void *data;
            void *unused;
        } wrapper = {0x466243B1u, 1, fb, NULL};
        CUlibrary lib;
        CHECK_CU(cuLibraryLoadData(&lib, &wrapper, NULL, NULL, 0, NULL, NULL, 0));
        CUkernel k;
        CHECK_CU(cuLibraryGetKernel(&k, lib, "vector_add"));
        run_vector_add((CUfunction)k);
        CUfunction f;
        CHECK_CU(cuKernelGetFunction(&f, k));
        run_vector_add(f);
        const char *name;
        CHECK_CU(cuKernelGetName(&name, k));
        ASSERT_EQ_STR(name, "vector_add");
        unsigned count;
        CHECK_CU(cuLibraryGetKernelCount(&count, lib));
        ASSERT_EQ_INT(count, 1);
        CUmodule mod;
        CHECK_CU(cuLibraryGetModule(&mod, lib));
        CUfunction f2;
        CHECK_CU(cuModuleGetFunction(&f2, mod, "vector_add"));
        ASSERT_TRUE(f2 == f);
        CHECK_CU(cuLibraryUnload(lib));
        free(fb);
    }
}

TEST(library_loaded_before_any_context)
{
    CUdevice dev;
    CHECK_CU(cuInit(0));
    char *ptx = sim_kernel_file("vector_add.ptx", NULL);
    CUlibrary lib;
    CHECK_CU(cuLibraryLoadData(&lib, ptx, NULL, NULL, 0, NULL, NULL, 0));
    free(ptx);
    CUkernel k;
    CHECK_CU(cuLibraryGetKernel(&k, lib, "vector_add"));
    CHECK_CU(cuDeviceGet(&dev, 0));
    CUcontext ctx;
    CHECK_CU(cuCtxCreate(&ctx, NULL, 0, dev));
    run_vector_add((CUfunction)k);
    CHECK_CU(cuLibraryUnload(lib));
    CHECK_CU(cuCtxDestroy(ctx));
}

/* Several PTX entries: the sim picks the highest arch not above the device's. */
TEST(saxpy_multi_arch_fatbin_picks_best_ptx)
{
    sim_setup();
    char *fb = sim_kernel_file("saxpy_multi.fatbin", NULL);
    CUlibrary lib;
    CHECK_CU(cuLibraryLoadData(&lib, fb, NULL, NULL, 0, NULL, NULL, 0));
    CUkernel k;
    CHECK_CU(cuLibraryGetKernel(&k, lib, "saxpy"));
    int major;
    CUdevice dev;
    CHECK_CU(cuCtxGetDevice(&dev));
    CHECK_CU(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
    int ptxv;
    CHECK_CU(cuKernelGetAttribute(&ptxv, CU_FUNC_ATTRIBUTE_PTX_VERSION, k, dev));
    ASSERT_EQ_INT(ptxv, major >= 10 ? 100 : major >= 9 ? 90 : 75);
    int n = 5000;
    float a = 1.75f, *x = malloc(n * 4), *y = malloc(n * 4), *r = malloc(n * 4);
    for (int i = 0; i < n; i++) x[i] = frnd(-10, 10), y[i] = frnd(-10, 10);
    CUdeviceptr dx = upload(x, n * 4), dy = upload(y, n * 4);
    void *args[] = {&n, &a, &dx, &dy};
    CHECK_CU(cuLaunchKernel((CUfunction)k, (n + 127) / 128, 1, 1, 128, 1, 1, 0, NULL, args, NULL));
    CHECK_CU(cuMemcpyDtoH(r, dy, n * 4));
    for (int i = 0; i < n; i++)
        ASSERT_MSG(close_rel(r[i], fmaf(a, x[i], y[i]), 1e-6), "y[%d] = %g, expected %g", i, r[i],
                   fmaf(a, x[i], y[i]));
    CHECK_CU(cuLibraryUnload(lib));
    free(fb), free(x), free(y), free(r);
}

TEST(saxpy)
{
    sim_setup();
    CUmodule m = sim_load("saxpy.ptx");
    CUfunction f = sim_func(m, "saxpy");
    int n = (1 << 16) + 3;
    float a = -0.5f, *x = malloc(n * 4), *y = malloc(n * 4), *r = malloc(n * 4);
    for (int i = 0; i < n; i++) x[i] = frnd(-10, 10), y[i] = frnd(-10, 10);
    CUdeviceptr dx = upload(x, n * 4), dy = upload(y, n * 4);
    void *args[] = {&n, &a, &dx, &dy};
    CHECK_CU(cuLaunchKernel(f, (n + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
    CHECK_CU(cuMemcpyDtoH(r, dy, n * 4));
    for (int i = 0; i < n; i++)
        ASSERT_MSG(close_rel(r[i], fmaf(a, x[i], y[i]), 1e-6), "y[%d] = %g, expected %g", i, r[i],
                   fmaf(a, x[i], y[i]));
    free(x), free(y), free(r);
}

static void run_reduce(const char *kernel, unsigned n, unsigned grid, unsigned block)
{
    CUmodule m = sim_load("reduce.ptx");
    CUfunction f = sim_func(m, kernel);
    float *in = malloc(n * 4);
    double want = 0;
    for (unsigned i = 0; i < n; i++) {
        in[i] = frnd(-1, 1);
        want += in[i];
    }
    CUdeviceptr din = upload(in, n * 4), dout = dalloc(4);
    CHECK_CU(cuMemsetD32(dout, 0, 1));
    void *args[] = {&din, &dout, &n};
    CHECK_CU(cuLaunchKernel(f, grid, 1, 1, block, 1, 1, 0, NULL, args, NULL));
    float got;
    CHECK_CU(cuMemcpyDtoH(&got, dout, 4));
    /* float partial sums in a different order: allow a few ulps of the total magnitude */
    ASSERT_MSG(fabs(got - want) <= 1e-3 + 1e-5 * n, "%s: sum = %.6f, expected %.6f", kernel, got,
               want);
    CHECK_CU(cuModuleUnload(m));
    free(in);
}

TEST(reduce_sum_and_reduce_warp)
{
    sim_setup();
    run_reduce("reduce_sum", 100003, (100003 + 255) / 256, 256);
    run_reduce("reduce_warp", 100003, 40, 1024);
    run_reduce("reduce_warp", 777, 3, 96);
}

TEST(matmul_tiled_non_multiple_of_16)
{
    sim_setup();
    CUmodule m = sim_load("matmul.ptx");
    CUfunction f = sim_func(m, "matmul_tiled");
    int M = 200, N = 300, K = 170;
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) A[i] = frnd(-1, 1);
    for (int i = 0; i < K * N; i++) B[i] = frnd(-1, 1);
    CUdeviceptr dA = upload(A, sizeof(float) * M * K), dB = upload(B, sizeof(float) * K * N);
    CUdeviceptr dC = dalloc(sizeof(float) * M * N);
    void *args[] = {&dA, &dB, &dC, &M, &N, &K};
    CHECK_CU(cuLaunchKernel(f, (N + 15) / 16, (M + 15) / 16, 1, 16, 16, 1, 0, NULL, args, NULL));
    CHECK_CU(cuMemcpyDtoH(C, dC, sizeof(float) * M * N));
    for (int r = 0; r < M; r++) {
        for (int c = 0; c < N; c++) {
            double want = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                want += (double)A[r * K + k] * B[k * N + c];
                mag += fabs((double)A[r * K + k] * B[k * N + c]);
            }
            ASSERT_MSG(fabs(C[r * N + c] - want) <= 1e-5 * mag + 1e-6, "C[%d][%d] = %.7g, expected %.7g",
                       r, c, C[r * N + c], want);
        }
    }
    free(A), free(B), free(C);
}

TEST(misc_globals_through_module_get_global)
{
    sim_setup();
    CUmodule m = sim_load("misc.ptx");
    CUdeviceptr counter, coef;
    size_t bytes;
    CHECK_CU(cuModuleGetGlobal(&counter, &bytes, m, "dev_counter"));
    ASSERT_EQ_INT(bytes, 4);
    CHECK_CU(cuModuleGetGlobal(&coef, &bytes, m, "const_coef"));
    ASSERT_EQ_INT(bytes, 32);
    int c0;
    CHECK_CU(cuMemcpyDtoH(&c0, counter, 4));
    ASSERT_EQ_INT(c0, 5);
    /* rewrite a __constant__ from the host, as cudaMemcpyToSymbol does */
    float newcoef[8] = {2, 2, 2, 2, 2, 2, 2, 2};
    CHECK_CU(cuMemcpyHtoD(coef, newcoef, sizeof newcoef));
    int n = 300;
    float *in = malloc(n * 4), *out = malloc(n * 4);
    for (int i = 0; i < n; i++) in[i] = frnd(-5, 5);
    CUdeviceptr din = upload(in, n * 4), dout = dalloc(n * 4);
    void *args[] = {&din, &dout, &n};
    CHECK_CU(cuLaunchKernel(sim_func(m, "misc_globals"), 3, 1, 1, 128, 1, 1, 0, NULL, args, NULL));
    CHECK_CU(cuMemcpyDtoH(out, dout, n * 4));
    static const float table[4] = {1.5f, -2.0f, 3.25f, 8.0f};
    static const int ints[4] = {10, -20, 30, -40};
    for (int i = 0; i < n; i++) {
        float want = fmaf(in[i], 2.0f, table[i & 3]) + (float)ints[i & 3];
        ASSERT_MSG(close_rel(out[i], want, 1e-6), "out[%d] = %g, expected %g", i, out[i], want);
    }
    CHECK_CU(cuMemcpyDtoH(&c0, counter, 4));
    ASSERT_EQ_INT(c0, 5 + n);
    /* a second module has its own copy of the variables */
    CUmodule m2 = sim_load("misc.ptx");
    CUdeviceptr counter2;
    CHECK_CU(cuModuleGetGlobal(&counter2, NULL, m2, "dev_counter"));
    ASSERT_TRUE(counter2 != counter);
    CHECK_CU(cuMemcpyDtoH(&c0, counter2, 4));
    ASSERT_EQ_INT(c0, 5);
    ASSERT_CU(cuModuleGetGlobal(&counter2, NULL, m2, "no_such_variable"), CUDA_ERROR_NOT_FOUND);
    free(in), free(out);
}

static uint32_t brev32(uint32_t x)
{
    uint32_t r = 0;
    for (int i = 0; i < 32; i++) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}

static uint32_t byte_perm(uint32_t x, uint32_t y, uint32_t s)
{
    uint64_t t = (uint64_t)y << 32 | x;
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) r |= (uint32_t)((t >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
    return r;
}

TEST(misc_int)
{
    sim_setup();
    CUmodule m = sim_load("misc.ptx");
    int n = 300;
    int32_t *A = malloc(n * 4), *B = malloc(n * 4), *o32 = malloc(n * 64);
    int64_t *o64 = malloc(n * 64);
    for (int i = 0; i < n; i++) {
        A[i] = (int32_t)(rnd() * 2654435761u);
        B[i] = (int32_t)(rnd() % 2001) - 1000;
        if (A[i] == INT32_MIN) A[i] = 5;
        if (B[i] == 0) B[i] = 3;
    }
    CUdeviceptr dA = upload(A, n * 4), dB = upload(B, n * 4), d32 = dalloc(n * 64), d64 = dalloc(n * 64);
    void *args[] = {&dA, &dB, &d32, &d64, &n};
    CHECK_CU(cuLaunchKernel(sim_func(m, "misc_int"), 3, 1, 1, 128, 1, 1, 0, NULL, args, NULL));
    CHECK_CU(cuMemcpyDtoH(o32, d32, n * 64));
    CHECK_CU(cuMemcpyDtoH(o64, d64, n * 64));
    for (int i = 0; i < n; i++) {
        int32_t x = A[i], y = B[i];
        uint32_t ux = (uint32_t)x, uy = (uint32_t)y;
        int32_t e[16] = {
            x / y, x % y, (int32_t)(ux / uy), (int32_t)(ux % uy), x < y ? x : y, x > y ? x : y,
            (int32_t)(ux < uy ? ux : uy), x >> (y & 31), (int32_t)(ux >> (uy & 31)),
            (int32_t)(ux << (y & 31)), (x & y) ^ (x | ~y),
            (int32_t)((uint32_t)__builtin_popcount(ux) + (uint32_t)(x ? __builtin_clz(ux) : 32) * 100u),
            (int32_t)brev32(ux),
            (int32_t)((uint32_t)(x < 0 ? -x : x) - (uint32_t)(int32_t)(((int64_t)x * y) >> 32)),
            (int32_t)((uint32_t)(((uint64_t)ux * uy) >> 32) + (uint32_t)__builtin_ffs(x)),
            (int32_t)byte_perm(ux, uy, 0x5140),
        };
        for (int j = 0; j < 16; j++)
            ASSERT_MSG(o32[i * 16 + j] == e[j], "x=%d y=%d: out32[%d] = %d, expected %d", x, y, j,
                       o32[i * 16 + j], e[j]);
        int64_t lx = (int64_t)x * 1000003LL, ly = (int64_t)y * -77LL + 5;
        uint64_t ulx = (uint64_t)lx, uly = (uint64_t)ly;
        int64_t q[8] = {
            (int64_t)(ulx * uly), lx / ly, lx % ly, (int64_t)(ulx / uly), lx >> (y & 63),
            (int64_t)((ulx << (uy & 63)) ^ (uint64_t)__builtin_popcountll(ulx)),
            (int64_t)((uint64_t)(lx > ly ? lx : ly) - (uint64_t)(lx < ly ? lx : ly) +
                      (uint64_t)__builtin_clzll(uly)),
            (int64_t)((uint64_t)(((unsigned __int128)ulx * uly) >> 64) +
                      (uint64_t)(((__int128)lx * ly) >> 64)),
        };
        for (int j = 0; j < 8; j++)
            ASSERT_MSG(o64[i * 8 + j] == q[j], "x=%d y=%d: out64[%d] = %lld, expected %lld", x, y, j,
                       (long long)o64[i * 8 + j], (long long)q[j]);
    }
    free(A), free(B), free(o32), free(o64);
}

TEST(misc_atomics_grid3d_local)
{
    sim_setup();
    CUmodule m = sim_load("misc.ptx");
    /* atomics */
    int n = 200;
    int32_t ia[16] = {0};
    ia[4] = -1;
    CUdeviceptr dia = upload(ia, sizeof ia), dfa = dalloc(16), dua = dalloc(24);
    CHECK_CU(cuMemsetD8(dfa, 0, 16));
    CHECK_CU(cuMemsetD8(dua, 0, 24));
    void *aargs[] = {&dia, &dfa, &dua, &n};
    CHECK_CU(cuLaunchKernel(sim_func(m, "misc_atomics"), 4, 1, 1, 64, 1, 1, 0, NULL, aargs, NULL));
    float fa;
    uint64_t ua[3];
    CHECK_CU(cuMemcpyDtoH(ia, dia, sizeof ia));
    CHECK_CU(cuMemcpyDtoH(&fa, dfa, 4));
    CHECK_CU(cuMemcpyDtoH(ua, dua, sizeof ua));
    misc_atomics_check(ia, fa, ua, n);

    /* 3D grid of 3D blocks */
    unsigned nx = 37, ny = 11, nz = 9;
    CUdeviceptr dg = dalloc(nx * ny * nz * 4);
    void *gargs[] = {&dg, &nx, &ny, &nz};
    unsigned gx = (nx + 7) / 8, gy = (ny + 3) / 4, gz = (nz + 1) / 2;
    CHECK_CU(cuLaunchKernel(sim_func(m, "misc_grid3d"), gx, gy, gz, 8, 4, 2, 0, NULL, gargs, NULL));
    uint32_t *g = malloc(nx * ny * nz * 4);
    CHECK_CU(cuMemcpyDtoH(g, dg, nx * ny * nz * 4));
    for (unsigned z = 0; z < nz; z++)
        for (unsigned y = 0; y < ny; y++)
            for (unsigned x = 0; x < nx; x++)
                ASSERT_EQ_INT(g[(z * ny + y) * nx + x], misc_grid3d_value(x, y, z, gx * gy * gz));
    free(g);

    /* local arrays */
    int ln = 257;
    int *idx = malloc(ln * 4), *out = malloc(ln * 4);
    for (int i = 0; i < ln; i++) idx[i] = (int)rnd();
    CUdeviceptr didx = upload(idx, ln * 4), dout = dalloc(ln * 4);
    void *largs[] = {&didx, &dout, &ln};
    CHECK_CU(cuLaunchKernel(sim_func(m, "misc_local"), 3, 1, 1, 128, 1, 1, 0, NULL, largs, NULL));
    CHECK_CU(cuMemcpyDtoH(out, dout, ln * 4));
    for (int i = 0; i < ln; i++) ASSERT_EQ_INT(out[i], misc_local_value(i, idx[i]));
    free(idx), free(out);
}

TEST(misc_vec4_dynsmem_and_struct_params)
{
    sim_setup();
    CUmodule m = sim_load("misc.ptx");
    int n = 150;
    float *in = malloc(n * 16), *out = malloc(n * 16);
    for (int i = 0; i < n * 4; i++) in[i] = frnd(-8, 8);
    CUdeviceptr din = upload(in, n * 16), dout = dalloc(n * 16);
    void *args[] = {&din, &dout, &n};
    CHECK_CU(cuLaunchKernel(sim_func(m, "misc_vec4"), 3, 1, 1, 64, 1, 1, 0, NULL, args, NULL));
    CHECK_CU(cuMemcpyDtoH(out, dout, n * 16));
    for (int i = 0; i < n; i++) {
        const float *v = in + 4 * i, *o = out + 4 * i;
        ASSERT_MSG(misc_vec4_ok(v, o), "vec4 element %d", i);
    }

    /* dynamic shared memory: 64 floats per block */
    CHECK_CU(cuMemsetD32(dout, 0, n));
    CHECK_CU(cuLaunchKernel(sim_func(m, "misc_dynsmem"), 3, 1, 1, 64, 1, 1, 64 * 4, NULL, args, NULL));
    CHECK_CU(cuMemcpyDtoH(out, dout, n * 4));
    for (int j = 0; j < n; j++) {
        int b = j / 64, t = 63 - (j - b * 64), i = b * 64 + t;
        ASSERT_NEAR(out[j], i < n ? in[i] : 0.0f, 0);
    }

    /* a struct passed by value and a char: kernelParams points at each, the driver packs them
     * at the PTX offsets (0, 24, 32, 40, 48) */
    struct Pair {
        int a;
        double b;
        char c[3];
    } p = {11, 3.5, {5, -6, 7}};
    char tag = 9;
    int cn = 77;
    void *cargs[] = {&p, &tag, &din, &dout, &cn};
    CHECK_CU(cuLaunchKernel(sim_func(m, "misc_call"), 2, 1, 1, 64, 1, 1, 0, NULL, cargs, NULL));
    CHECK_CU(cuMemcpyDtoH(out, dout, cn * 4));
    for (int i = 0; i < cn; i++) {
        int qa = (p.a + i) * 2, mode = i % 3;
        float qb = (float)(p.b * 0.5);
        float s = mode == 0 ? in[i] + qb : fmaf(in[i], qb, (float)mode);
        float want = s + (float)qa + (float)p.c[i % 3] + (float)tag + 3.0f;
        ASSERT_MSG(close_rel(out[i], want, 1e-6), "y[%d] = %g, expected %g", i, out[i], want);
    }
    free(in), free(out);
}

TEST(misc_warp_and_half)
{
    sim_setup();
    CUmodule m = sim_load("misc.ptx");
    int n = 50;
    int in[64] = {0};
    for (int i = 0; i < n; i++) in[i] = (int)(rnd() % 101);
    in[7] = 95;
    CUdeviceptr din = upload(in, sizeof in), dout = dalloc(64 * 8 * 4);
    void *args[] = {&din, &dout, &n};
    CHECK_CU(cuLaunchKernel(sim_func(m, "misc_warp"), 1, 1, 1, 64, 1, 1, 0, NULL, args, NULL));
    uint32_t out[64 * 8];
    CHECK_CU(cuMemcpyDtoH(out, dout, sizeof out));
    misc_warp_check(in, out, n);

    int hn = 100;
    float hin[100], hout[100];
    uint16_t hh[100];
    for (int i = 0; i < hn; i++) hin[i] = frnd(-8, 8);
    CUdeviceptr dhin = upload(hin, sizeof hin), dhout = dalloc(sizeof hout), dhh = dalloc(sizeof hh);
    void *hargs[] = {&dhin, &dhout, &dhh, &hn};
    CHECK_CU(cuLaunchKernel(sim_func(m, "misc_half"), 2, 1, 1, 64, 1, 1, 0, NULL, hargs, NULL));
    CHECK_CU(cuMemcpyDtoH(hout, dhout, sizeof hout));
    CHECK_CU(cuMemcpyDtoH(hh, dhh, sizeof hh));
    for (int i = 0; i < hn; i++) {
        uint16_t h = hh[i];
        int e = (h >> 10) & 31, mant = h & 1023;
        double v = e ? ldexp(mant + 1024, e - 25) : ldexp(mant, -24);
        if (h & 0x8000) v = -v;
        ASSERT_NEAR(hout[i], v, 0);
        ASSERT_MSG(fabs(v - hin[i] * 2.5) <= fabs(hin[i]) * 2.5 * 3e-3 + 1e-4, "half: %g*2.5 gave %g",
                   hin[i], v);
    }
}

TEST(misc_float)
{
    sim_setup();
    CUmodule m = sim_load("misc.ptx");
    int n = 160;
    float *A = malloc(n * 4), *B = malloc(n * 4), *of = malloc(n * 64);
    double *od = malloc(n * 64);
    int *oi = malloc(n * 16);
    for (int i = 0; i < n; i++) A[i] = frnd(-100, 100), B[i] = frnd(-50, 50);
    A[0] = 2.5f, B[0] = -1.5f;
    CUdeviceptr dA = upload(A, n * 4), dB = upload(B, n * 4), df = dalloc(n * 64), dd = dalloc(n * 64),
                di = dalloc(n * 16);
    void *args[] = {&dA, &dB, &df, &dd, &di, &n};
    CHECK_CU(cuLaunchKernel(sim_func(m, "misc_float"), 2, 1, 1, 128, 1, 1, 0, NULL, args, NULL));
    CHECK_CU(cuMemcpyDtoH(of, df, n * 64));
    CHECK_CU(cuMemcpyDtoH(od, dd, n * 64));
    CHECK_CU(cuMemcpyDtoH(oi, di, n * 16));
    for (int i = 0; i < n; i++) {
        float x = A[i], y = B[i];
        double e[16] = {
            x / y, sqrtf(fabsf(x)), 1.0f / sqrtf(fabsf(y) + 1.0f), expf(x * 0.1f),
            logf(fabsf(y) + 1.0f), sinf(x) + cosf(y), fminf(x, y) * fmaxf(x, y),
            -fabsf(x) + floorf(y) + ceilf(x) + truncf(y) + rintf(x),
            (float)(int)x + (float)(unsigned)(fabsf(y)), x > y ? x : y * 2.0f,
            expf(y * 0.05f) + logf(fabsf(x) + 2.0f), fmaf(x, y, 1.0f), copysignf(x, y),
            tanhf(x * 0.01f), x / (fabsf(y) + 1.0f), isnan(x / y) ? 1.0f : (isinf(x / y) ? 2.0f : 0.0f),
        };
        for (int j = 0; j < 16; j++) {
            double tol = (j == 10 || j == 13 || j == 14) ? 1e-4 : (j == 5 ? 1e-5 : 1e-6);
            ASSERT_MSG(close_rel(of[i * 16 + j], e[j], tol), "x=%g y=%g: f[%d] = %.9g, expected %.9g", x,
                       y, j, of[i * 16 + j], e[j]);
        }
        double dx = x, dy = y;
        double d[8] = {dx / dy, sqrt(fabs(dx)) + dx * dy, fma(dx, dy, -1.0), fmin(dx, dy) - fmax(dx, dy),
                       (double)(long long)(dx * 1e6), (double)(float)(dx / 3.0), 1.0 / (fabs(dy) + 0.5),
                       floor(dx) + ceil(dy)};
        for (int j = 0; j < 8; j++)
            ASSERT_MSG(close_rel(od[i * 8 + j], d[j], 1e-15), "x=%g y=%g: d[%d] = %.17g, expected %.17g",
                       x, y, j, od[i * 8 + j], d[j]);
        float y3 = y * 3.0f;
        int ei[4] = {(int)(x * 1000.0f), y3 <= 0 ? 0 : (int)(unsigned)y3, (int)lrintf(x * 10.0f),
                     (int)(long long)(dy * 1e3)};
        for (int j = 0; j < 4; j++)
            ASSERT_MSG(oi[i * 4 + j] == ei[j], "x=%g y=%g: i[%d] = %d, expected %d", x, y, j, oi[i * 4 + j],
                       ei[j]);
    }
    free(A), free(B), free(of), free(od), free(oi);
}

/* A kernel that runs far more instructions than a small one takes measurably longer: the
 * model charges instructions / (SMs x 128 lanes x clock). */
TEST(modeled_time_grows_with_work)
{
    sim_setup();
    CUmodule m = sim_load("vector_add.ptx");
    CUfunction f = sim_func(m, "vector_add");
    int n = 1 << 20;
    CUdeviceptr a = dalloc(n * 4), b = dalloc(n * 4), c = dalloc(n * 4);
    void *args[] = {&a, &b, &c, &n};
    CUevent e0, e1;
    CHECK_CU(cuEventCreate(&e0, 0));
    CHECK_CU(cuEventCreate(&e1, 0));
    CHECK_CU(cuEventRecord(e0, NULL));
    CHECK_CU(cuLaunchKernel(f, n / 256, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
    CHECK_CU(cuEventRecord(e1, NULL));
    CHECK_CU(cuEventSynchronize(e1));
    float ms;
    CHECK_CU(cuEventElapsedTime(&ms, e0, e1));
    /* ~12 instructions per thread on a 132-SM H100 at 1.98 GHz: well under a millisecond of
     * modeled time; the CPU takes longer, and the kernel is held at least that long */
    ASSERT_MSG(ms > 0.0f && ms < 60000.0f, "elapsed %.3f ms", ms);
}
