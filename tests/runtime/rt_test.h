// SPDX-License-Identifier: Apache-2.0
// A tiny harness for the runtime-API test programs: each RT_TEST runs in order and prints
// "PASS <program>/<test>" or "FAIL <program>/<test>" with what was expected and what came, or
// "SKIP <program>/<test>: reason".
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

struct rt_test_entry {
    const char *name;
    bool (*fn)();
};
static rt_test_entry rt_tests[64];
static int rt_ntests;
struct rt_test_reg {
    rt_test_reg(const char *n, bool (*f)()) { rt_tests[rt_ntests++] = {n, f}; }
};

#define RT_TEST(name)                                                                        \
    static bool rt_test_##name();                                                            \
    static rt_test_reg rt_reg_##name(#name, rt_test_##name);                                 \
    static bool rt_test_##name()

// A runtime call that must succeed.
#define CHECK(call)                                                                          \
    do {                                                                                     \
        cudaError_t e_ = (call);                                                             \
        if (e_ != cudaSuccess) {                                                             \
            fprintf(stderr, "  %s:%d: %s: expected cudaSuccess, got %s (%s)\n", __FILE__,    \
                    __LINE__, #call, cudaGetErrorName(e_), cudaGetErrorString(e_));          \
            return false;                                                                    \
        }                                                                                    \
    } while (0)

// A runtime call that must fail with a given error.
#define CHECK_ERR(call, want)                                                                \
    do {                                                                                     \
        cudaError_t e_ = (call);                                                             \
        if (e_ != (want)) {                                                                  \
            fprintf(stderr, "  %s:%d: %s: expected %s, got %s\n", __FILE__, __LINE__, #call, \
                    cudaGetErrorName(want), cudaGetErrorName(e_));                           \
            return false;                                                                    \
        }                                                                                    \
    } while (0)

#define EXPECT(cond, ...)                                                                    \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "  %s:%d: expected %s: ", __FILE__, __LINE__, #cond);            \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fputc('\n', stderr);                                                             \
            return false;                                                                    \
        }                                                                                    \
    } while (0)

// Every element against the CPU reference; reports the first mismatch and the count.
template <typename T>
static bool rt_check_all(const char *what, const T *got, const T *want, size_t n, double tol)
{
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        double g = (double)got[i], w = (double)want[i];
        if (!(std::fabs(g - w) <= tol * (1.0 + std::fabs(w)))) {
            if (!bad) first = i;
            bad++;
        }
    }
    if (bad) {
        fprintf(stderr, "  %s: %zu of %zu elements differ; first [%zu]: expected %.9g, got %.9g\n",
                what, bad, n, first, (double)want[first], (double)got[first]);
        return false;
    }
    return true;
}

// A test that cannot check anything where it runs says why and is reported as SKIP.
static const char *rt_skip_reason;
#define RT_SKIP(reason)                                                                      \
    do {                                                                                     \
        rt_skip_reason = (reason);                                                           \
        return true;                                                                         \
    } while (0)

// The reason RT_SKIP="test=reason;test=reason" (set by tests/integration/runtime.sh for what a
// backend cannot do yet) gives for this test, written into buf; NULL when it is not listed.
static const char *rt_skip_listed(const char *test, char *buf, size_t len)
{
    const char *list = getenv("RT_SKIP");
    size_t tl = strlen(test);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > tl && !strncmp(p, test, tl) && p[tl] == '=') {
            snprintf(buf, len, "%.*s", (int)(n - tl - 1), p + tl + 1);
            return buf;
        }
        p = end ? end + 1 : p + n;
    }
    return NULL;
}

// Runs every test in order; prints "PASS|FAIL|SKIP <program>/<test>[: reason]" for each.
static int rt_main(const char *program)
{
    int failed = 0;
    for (int i = 0; i < rt_ntests; i++) {
        char why[512];
        if (rt_skip_listed(rt_tests[i].name, why, sizeof why)) {
            printf("SKIP %s/%s: %s\n", program, rt_tests[i].name, why);
            fflush(stdout);
            continue;
        }
        rt_skip_reason = NULL;
        bool ok = rt_tests[i].fn();
        fflush(stderr);
        if (ok && rt_skip_reason)
            printf("SKIP %s/%s: %s\n", program, rt_tests[i].name, rt_skip_reason);
        else
            printf("%s %s/%s\n", ok ? "PASS" : "FAIL", program, rt_tests[i].name);
        fflush(stdout);
        failed += !ok;
    }
    return failed ? 1 : 0;
}
