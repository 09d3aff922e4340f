/* SPDX-License-Identifier: Apache-2.0 */
/* CPU references for kernels of misc.cu, shared by the PTX engine's unit test
 * (tests/unit/test_ptx.c) and the sim driver's test (tests/sim/test_kernels.c), so both check
 * the same answers. */
#ifndef GF_TEST_KERNELS_MISC_REF_H
#define GF_TEST_KERNELS_MISC_REF_H

#include <stdint.h>
#include <string.h>

#include "test.h"

/* Checks the counters misc_atomics(ia, fa, ua, n) leaves that do not depend on the order its
 * threads ran in: ia[0..5] and ia[8..10], fa[0], ua[0] and ua[2] (a double's bits). */
static inline void misc_atomics_check(const int32_t *ia, float fa, const uint64_t *ua, int n)
{
    int32_t sum = 0, mx = 0, mn = 0, orv = 0, andv = -1, xorv = 0;
    uint64_t usum = 0;
    for (int i = 0; i < n; i++) {
        sum += i;
        mx = i * 7 % 101 > mx ? i * 7 % 101 : mx;
        mn = -(i * 13 % 97) < mn ? -(i * 13 % 97) : mn;
        orv |= (int32_t)(1u << (i & 31));
        andv &= ~(1 << (i % 29));
        xorv ^= i;
        usum += (uint64_t)i * 1000000007ull;
    }
    ASSERT_EQ_INT(ia[0], sum);
    ASSERT_EQ_INT(ia[1], mx);
    ASSERT_EQ_INT(ia[2], mn);
    ASSERT_EQ_INT(ia[3], orv);
    ASSERT_EQ_INT(ia[4], andv);
    ASSERT_EQ_INT(ia[5], xorv);
    ASSERT_EQ_INT(ia[8], 42);
    ASSERT_EQ_INT((uint32_t)ia[9], (uint32_t)(n - 1) * 3u);
    ASSERT_EQ_INT(ia[10], n); /* shared atomics; early-exited threads pass bar.sync */
    ASSERT_NEAR(fa, 0.5 * n, 0);
    ASSERT_EQ_U64(ua[0], usum);
    double d;
    memcpy(&d, &ua[2], 8);
    ASSERT_NEAR(d, 0.25 * n, 0);
}

/* What misc_grid3d stores for element (x, y, z) of a grid of nblocks blocks. */
static inline uint32_t misc_grid3d_value(unsigned x, unsigned y, unsigned z, unsigned nblocks)
{
    return x * 10000 + y * 100 + z + nblocks;
}

/* What misc_local stores for thread i given its index idx. */
static inline int misc_local_value(int i, int idx)
{
    int arr[32], j = idx & 31, s = 0;
    for (int q = 0; q < 32; q++) arr[q] = q * i;
    arr[j] += 1000;
    for (int q = 0; q < 32; q++) s += arr[(q + j) & 31] * (q + 1);
    return s;
}

/* Checks the 8 words misc_warp(in, out, n) stores per thread (votes and shuffles within each
 * warp of 32) for its first n threads. */
static inline void misc_warp_check(const int *in, const uint32_t *out, int n)
{
    for (int i = 0; i < n; i++) {
        int w = i / 32, lane = i % 32, v[32];
        for (int l = 0; l < 32; l++) v[l] = w * 32 + l < n ? in[w * 32 + l] : 0;
        uint32_t ballot = 0;
        int any = 0;
        for (int l = 0; l < 32; l++) {
            ballot |= (uint32_t)(v[l] > 10) << l;
            any |= v[l] > 90;
        }
        int maxl = (lane & 16) | 15;
        uint32_t e[8] = {ballot, 1, (uint32_t)any, (uint32_t)(lane >= 3 ? v[lane - 3] : v[lane]),
                         (uint32_t)v[lane ^ 5], (uint32_t)v[(lane * 7) & 31],
                         (uint32_t)(lane + 2 <= maxl ? v[lane + 2] : v[lane]), 0xffffffffu};
        for (int j = 0; j < 8; j++)
            ASSERT_MSG(out[i * 8 + j] == e[j], "thread %d: out[%d] = %#x, expected %#x", i, j,
                       out[i * 8 + j], e[j]);
    }
}

/* Whether misc_vec4 turned the float4 v into o. */
static inline int misc_vec4_ok(const float *v, const float *o)
{
    return o[0] == v[3] && o[1] == v[2] * 2.0f && o[2] == v[1] + 1.0f && o[3] == v[0] - v[1];
}

#endif
