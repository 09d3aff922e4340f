/* SPDX-License-Identifier: Apache-2.0 */
/* The test harness every gpufuse test program uses: a registry of TEST()s, each run in its own
 * forked child with a timeout, and typed asserts that print what was expected and what came. */
#ifndef GF_TEST_H
#define GF_TEST_H

#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*gf_test_fn)(void);
void gf_test_register(const char *name, gf_test_fn fn, const char *file);
/* Ends the current test as failed (after the assert printed why). */
void gf_test_fail(void) __attribute__((noreturn));
/* Path of a file in the source tree: $GPUFUSE_TEST_DIR/rel (default "./rel"). Static buffer
 * per call slot; copy it if you need several at once. */
const char *gf_test_path(const char *rel);
/* Whole file, NUL-terminated, malloc'ed (caller frees); NULL if unreadable. */
char *gf_test_read_file(const char *path, size_t *len);
/* A fresh path under $TMPDIR (or /tmp) for this test: "<dir>/gf-<test>-<pid>-<tag>". */
const char *gf_test_tmp_path(const char *tag);
/* CLOCK_MONOTONIC in ns. */
uint64_t gf_test_now_ns(void);

#define TEST(name)                                                                           \
    static void name(void);                                                                  \
    __attribute__((constructor)) static void gf_test_reg_##name(void)                       \
    {                                                                                        \
        gf_test_register(#name, name, __FILE__);                                             \
    }                                                                                        \
    static void name(void)

#define GF_TEST_FAILF(...)                                                                   \
    do {                                                                                     \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                                   \
        fprintf(stderr, __VA_ARGS__);                                                        \
        fputc('\n', stderr);                                                                 \
        gf_test_fail();                                                                      \
    } while (0)

#define ASSERT_TRUE(x)                                                                       \
    do {                                                                                     \
        if (!(x)) GF_TEST_FAILF("expected true: %s", #x);                                    \
    } while (0)

#define ASSERT_MSG(cond, ...)                                                                \
    do {                                                                                     \
        if (!(cond)) GF_TEST_FAILF(__VA_ARGS__);                                             \
    } while (0)

#define ASSERT_EQ_INT(a, b)                                                                  \
    do {                                                                                     \
        long long gf_a_ = (long long)(a), gf_b_ = (long long)(b);                            \
        if (gf_a_ != gf_b_)                                                                  \
            GF_TEST_FAILF("%s == %s: expected %lld, got %lld", #a, #b, gf_b_, gf_a_);        \
    } while (0)

#define ASSERT_EQ_U64(a, b)                                                                  \
    do {                                                                                     \
        uint64_t gf_a_ = (uint64_t)(a), gf_b_ = (uint64_t)(b);                               \
        if (gf_a_ != gf_b_)                                                                  \
            GF_TEST_FAILF("%s == %s: expected %" PRIu64 ", got %" PRIu64, #a, #b, gf_b_,     \
                          gf_a_);                                                            \
    } while (0)

#define ASSERT_EQ_STR(a, b)                                                                  \
    do {                                                                                     \
        const char *gf_a_ = (a), *gf_b_ = (b);                                               \
        if (!gf_a_ || !gf_b_ || strcmp(gf_a_, gf_b_))                                        \
            GF_TEST_FAILF("%s == %s: expected \"%s\", got \"%s\"", #a, #b,                   \
                          gf_b_ ? gf_b_ : "(null)", gf_a_ ? gf_a_ : "(null)");               \
    } while (0)

#define ASSERT_NEAR(a, b, eps)                                                               \
    do {                                                                                     \
        double gf_a_ = (double)(a), gf_b_ = (double)(b), gf_e_ = (double)(eps);              \
        if (!(fabs(gf_a_ - gf_b_) <= gf_e_))                                                 \
            GF_TEST_FAILF("%s ~= %s: expected %.9g (±%g), got %.9g", #a, #b, gf_b_, gf_e_,   \
                          gf_a_);                                                            \
    } while (0)

#define ASSERT_CONTAINS(hay, needle)                                                         \
    do {                                                                                     \
        const char *gf_h_ = (hay), *gf_n_ = (needle);                                        \
        if (!gf_h_ || !strstr(gf_h_, gf_n_))                                                 \
            GF_TEST_FAILF("%s contains \"%s\": got \"%s\"", #hay, gf_n_,                     \
                          gf_h_ ? gf_h_ : "(null)");                                         \
    } while (0)

/* For CUDA driver results: prints both codes by name. Include <cuda.h> before test.h. */
#ifdef __cuda_cuda_h__
#define ASSERT_CU(call, expected)                                                            \
    do {                                                                                     \
        CUresult gf_r_ = (call), gf_x_ = (expected);                                         \
        if (gf_r_ != gf_x_) {                                                                \
            const char *gf_rn_ = NULL, *gf_xn_ = NULL;                                       \
            cuGetErrorName(gf_r_, &gf_rn_);                                                  \
            cuGetErrorName(gf_x_, &gf_xn_);                                                  \
            GF_TEST_FAILF("%s: expected %s (%d), got %s (%d)", #call,                        \
                          gf_xn_ ? gf_xn_ : "?", (int)gf_x_, gf_rn_ ? gf_rn_ : "?",          \
                          (int)gf_r_);                                                       \
        }                                                                                    \
    } while (0)
#define CHECK_CU(call) ASSERT_CU(call, CUDA_SUCCESS)
#endif

#endif
