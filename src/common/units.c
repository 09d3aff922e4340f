/* SPDX-License-Identifier: Apache-2.0 */
/* Strict parsers for sizes, TFLOPs, percentages and durations typed by users. */
#include "gpufuse/units.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Splits "12.5Gi" into the number and the unit; the number must start with a digit or '.'
 * so that signs, "inf" and "nan" never get through strtod. */
static gf_status split_number(const char *what, const char *text, double *num,
                              const char **unit, char *err, size_t errlen)
{
    if (!text || !*text) {
        snprintf(err, errlen, "%s: empty value", what);
        return GF_EINVAL;
    }
    if (!isdigit((unsigned char)text[0]) && text[0] != '.') {
        snprintf(err, errlen, "%s: \"%s\": expected a non-negative number", what, text);
        return GF_EINVAL;
    }
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || errno == ERANGE || !isfinite(v)) {
        snprintf(err, errlen, "%s: \"%s\": not a number", what, text);
        return GF_EINVAL;
    }
    while (*end == ' ') end++;
    *num = v;
    *unit = end;
    return GF_OK;
}

gf_status gf_parse_size(const char *what, const char *text, uint64_t *out, char *err,
                        size_t errlen)
{
    static const struct {
        const char *unit;
        double mult;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"bytes", 1},
        {"Ki", 1024.0},
        {"Mi", 1024.0 * 1024},
        {"Gi", 1024.0 * 1024 * 1024},
        {"Ti", 1024.0 * 1024 * 1024 * 1024},
        {"Pi", 1024.0 * 1024 * 1024 * 1024 * 1024},
        {"K", 1e3},
        {"k", 1e3},
        {"M", 1e6},
        {"G", 1e9},
        {"T", 1e12},
        {"P", 1e15},
    };
    double v;
    const char *unit;
    gf_status st = split_number(what, text, &v, &unit, err, errlen);
    if (st != GF_OK) return st;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(unit, units[i].unit)) continue;
        double bytes = v * units[i].mult;
        if (bytes >= 18446744073709551616.0) {
            snprintf(err, errlen, "%s: \"%s\": too large", what, text);
            return GF_ERANGE;
        }
        if (bytes != floor(bytes)) {
            snprintf(err, errlen, "%s: \"%s\": not a whole number of bytes", what, text);
            return GF_EINVAL;
        }
        *out = (uint64_t)bytes;
        return GF_OK;
    }
    snprintf(err, errlen,
             "%s: \"%s\": unknown unit \"%s\"; use Ki, Mi, Gi, Ti, K, M, G, T or plain bytes",
             what, text, unit);
    return GF_EINVAL;
}

gf_status gf_parse_tflops(const char *what, const char *text, double *out, char *err,
                          size_t errlen)
{
    double v;
    const char *unit;
    gf_status st = split_number(what, text, &v, &unit, err, errlen);
    if (st != GF_OK) return st;
    if (*unit && strcasecmp(unit, "TFLOPs") && strcasecmp(unit, "TFLOPS")) {
        snprintf(err, errlen, "%s: \"%s\": expected FP16 TFLOPs as a number, e.g. 19.5", what,
                 text);
        return GF_EINVAL;
    }
    if (v <= 0) {
        snprintf(err, errlen, "%s: \"%s\": must be greater than 0", what, text);
        return GF_ERANGE;
    }
    *out = v;
    return GF_OK;
}

gf_status gf_parse_percent(const char *what, const char *text, double *out, char *err,
                           size_t errlen)
{
    double v;
    const char *unit;
    gf_status st = split_number(what, text, &v, &unit, err, errlen);
    if (st != GF_OK) return st;
    if (*unit && strcmp(unit, "%")) {
        snprintf(err, errlen, "%s: \"%s\": expected a percentage such as 50 or 50%%", what,
                 text);
        return GF_EINVAL;
    }
    if (v <= 0 || v > 100) {
        snprintf(err, errlen, "%s: \"%s\": must be in (0, 100]", what, text);
        return GF_ERANGE;
    }
    *out = v;
    return GF_OK;
}

gf_status gf_parse_duration_ns(const char *what, const char *text, uint64_t *out, char *err,
                               size_t errlen)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    double v;
    const char *unit;
    gf_status st = split_number(what, text, &v, &unit, err, errlen);
    if (st != GF_OK) return st;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(unit, units[i].unit)) continue;
        double ns = v * units[i].ns;
        if (ns >= 9.2e18) {
            snprintf(err, errlen, "%s: \"%s\": too large", what, text);
            return GF_ERANGE;
        }
        *out = (uint64_t)llround(ns);
        return GF_OK;
    }
    snprintf(err, errlen, "%s: \"%s\": expected a duration with a unit: ns, us, ms, s, m or h",
             what, text);
    return GF_EINVAL;
}

void gf_format_size(uint64_t bytes, char *buf, size_t buflen)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, buflen, "%llu B", (unsigned long long)bytes);
    else if (v == floor(v))
        snprintf(buf, buflen, "%.0f %s", v, units[u]);
    else
        snprintf(buf, buflen, "%.2f %s", v, units[u]);
}
