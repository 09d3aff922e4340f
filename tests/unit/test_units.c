/* SPDX-License-Identifier: Apache-2.0 */
/* Size, TFLOPs, percent and duration parsing: good values, and bad ones with clear errors. */
#include "gpufuse/units.h"
#include "test.h"

TEST(size_units)
{
    char err[256];
    uint64_t v;
    ASSERT_EQ_INT(gf_parse_size("--vram", "4Gi", &v, err, sizeof err), GF_OK);
    ASSERT_EQ_U64(v, 4ull << 30);
    ASSERT_EQ_INT(gf_parse_size("--vram", "512Mi", &v, err, sizeof err), GF_OK);
    ASSERT_EQ_U64(v, 512ull << 20);
    ASSERT_EQ_INT(gf_parse_size("--vram", "1G", &v, err, sizeof err), GF_OK);
    ASSERT_EQ_U64(v, 1000000000ull);
    ASSERT_EQ_INT(gf_parse_size("--vram", "1.5Gi", &v, err, sizeof err), GF_OK);
    ASSERT_EQ_U64(v, 3ull << 29);
    ASSERT_EQ_INT(gf_parse_size("--vram", "12345", &v, err, sizeof err), GF_OK);
    ASSERT_EQ_U64(v, 12345);
    ASSERT_EQ_INT(gf_parse_size("--vram", "0", &v, err, sizeof err), GF_OK);
    ASSERT_EQ_U64(v, 0);
}

TEST(size_errors_name_flag_and_value)
{
    char err[256];
    uint64_t v;
    ASSERT_EQ_INT(gf_parse_size("--vram", "4GB", &v, err, sizeof err), GF_EINVAL);
    ASSERT_CONTAINS(err, "--vram");
    ASSERT_CONTAINS(err, "\"4GB\"");
    ASSERT_CONTAINS(err, "unknown unit");
    ASSERT_EQ_INT(gf_parse_size("--vram", "-1Gi", &v, err, sizeof err), GF_EINVAL);
    ASSERT_EQ_INT(gf_parse_size("--vram", "", &v, err, sizeof err), GF_EINVAL);
    ASSERT_EQ_INT(gf_parse_size("--vram", "nan", &v, err, sizeof err), GF_EINVAL);
    ASSERT_EQ_INT(gf_parse_size("--vram", "0.5", &v, err, sizeof err), GF_EINVAL);
    ASSERT_EQ_INT(gf_parse_size("--vram", "99999999Pi", &v, err, sizeof err), GF_ERANGE);
}

TEST(tflops_and_percent)
{
    char err[256];
    double d;
    ASSERT_EQ_INT(gf_parse_tflops("--tflops", "19.5", &d, err, sizeof err), GF_OK);
    ASSERT_NEAR(d, 19.5, 1e-12);
    ASSERT_EQ_INT(gf_parse_tflops("--tflops", "0", &d, err, sizeof err), GF_ERANGE);
    ASSERT_EQ_INT(gf_parse_tflops("--tflops", "ten", &d, err, sizeof err), GF_EINVAL);
    ASSERT_CONTAINS(err, "--tflops");
    ASSERT_EQ_INT(gf_parse_percent("--compute-percent", "50%", &d, err, sizeof err), GF_OK);
    ASSERT_NEAR(d, 50, 1e-12);
    ASSERT_EQ_INT(gf_parse_percent("--compute-percent", "101", &d, err, sizeof err), GF_ERANGE);
    ASSERT_EQ_INT(gf_parse_percent("--compute-percent", "5x", &d, err, sizeof err), GF_EINVAL);
}

TEST(durations)
{
    char err[256];
    uint64_t ns;
    ASSERT_EQ_INT(gf_parse_duration_ns("--timeout", "250ms", &ns, err, sizeof err), GF_OK);
    ASSERT_EQ_U64(ns, 250000000ull);
    ASSERT_EQ_INT(gf_parse_duration_ns("--timeout", "1.5s", &ns, err, sizeof err), GF_OK);
    ASSERT_EQ_U64(ns, 1500000000ull);
    ASSERT_EQ_INT(gf_parse_duration_ns("--timeout", "30", &ns, err, sizeof err), GF_EINVAL);
    ASSERT_CONTAINS(err, "unit");
}

TEST(format_size)
{
    char b[32];
    gf_format_size(80ull << 30, b, sizeof b);
    ASSERT_EQ_STR(b, "80 GiB");
    gf_format_size(1536ull << 10, b, sizeof b);
    ASSERT_EQ_STR(b, "1.50 MiB");
    gf_format_size(512, b, sizeof b);
    ASSERT_EQ_STR(b, "512 B");
}
