/* SPDX-License-Identifier: Apache-2.0 */
/* Strict parsers for sizes, TFLOPs, percentages and durations typed by users. */
#include "gpufuse/units.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
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

/* Fills err like snprintf and returns st: every error below is one line. */
static gf_status fail(gf_status st, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static gf_status fail(gf_status st, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return st;
}

typedef struct unit_scale {
    const char *unit;
    double scale;
} unit_scale;

/* Splits text (see split_number) and scales the number by its unit's entry in units[n] (names
 * compared with cmp); *unit is the unit as typed. GF_ENOENT, with err untouched, when the unit
 * is not in the table, so that the caller says which units it takes. */
static gf_status parse_scaled(const char *what, const char *text, const unit_scale *units, size_t n,
                              int (*cmp)(const char *, const char *), double *scaled,
                              const char **unit, char *err, size_t errlen)
{
    double v;
    gf_status st = split_number(what, text, &v, unit, err, errlen);
    if (st != GF_OK) return st;
    for (size_t i = 0; i < n; i++) {
        if (cmp(*unit, units[i].unit) == 0) {
            *scaled = v * units[i].scale;
            return GF_OK;
        }
    }
    return GF_ENOENT;
}

#define NUNITS(a) (sizeof(a) / sizeof((a)[0]))

gf_status gf_parse_size(const char *what, const char *text, uint64_t *out, char *err,
                        size_t errlen)
{
    static const unit_scale units[] = {
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
    double bytes;
    const char *unit;
    gf_status st = parse_scaled(what, text, units, NUNITS(units), strcmp, &bytes, &unit, err, errlen);
    if (st == GF_ENOENT)
        return fail(GF_EINVAL, err, errlen,
                    "%s: \"%s\": unknown unit \"%s\"; use Ki, Mi, Gi, Ti, K, M, G, T or plain bytes",
                    what, text, unit);
    if (st != GF_OK) return st;
    if (bytes >= 18446744073709551616.0)
        return fail(GF_ERANGE, err, errlen, "%s: \"%s\": too large", what, text);
    if (bytes != floor(bytes))
        return fail(GF_EINVAL, err, errlen, "%s: \"%s\": not a whole number of bytes", what, text);
    *out = (uint64_t)bytes;
    return GF_OK;
}

gf_status gf_parse_tflops(const char *what, const char *text, double *out, char *err,
                          size_t errlen)
{
    static const unit_scale units[] = {{"", 1}, {"TFLOPs", 1}};
    double v;
    const char *unit;
    gf_status st = parse_scaled(what, text, units, NUNITS(units), strcasecmp, &v, &unit, err, errlen);
    if (st == GF_ENOENT)
        return fail(GF_EINVAL, err, errlen,
                    "%s: \"%s\": expected FP16 TFLOPs as a number, e.g. 19.5", what, text);
    if (st != GF_OK) return st;
    if (v <= 0) return fail(GF_ERANGE, err, errlen, "%s: \"%s\": must be greater than 0", what, text);
    *out = v;
    return GF_OK;
}

gf_status gf_parse_percent(const char *what, const char *text, double *out, char *err,
                           size_t errlen)
{
    static const unit_scale units[] = {{"", 1}, {"%", 1}};
    double v;
    const char *unit;
    gf_status st = parse_scaled(what, text, units, NUNITS(units), strcmp, &v, &unit, err, errlen);
    if (st == GF_ENOENT)
        return fail(GF_EINVAL, err, errlen,
                    "%s: \"%s\": expected a percentage such as 50 or 50%%", what, text);
    if (st != GF_OK) return st;
    if (v <= 0 || v > 100)
        return fail(GF_ERANGE, err, errlen, "%s: \"%s\": must be in (0, 100]", what, text);
    *out = v;
    return GF_OK;
}

gf_status gf_parse_duration_ns(const char *what, const char *text, uint64_t *out, char *err,
                               size_t errlen)
{
    static const unit_scale units[] = {{"ns", 1},   {"us", 1e3},  {"ms", 1e6},
                                       {"s", 1e9},  {"m", 60e9},  {"h", 3600e9}};
    double ns;
    const char *unit;
    gf_status st = parse_scaled(what, text, units, NUNITS(units), strcmp, &ns, &unit, err, errlen);
    if (st == GF_ENOENT)
        return fail(GF_EINVAL, err, errlen,
                    "%s: \"%s\": expected a duration with a unit: ns, us, ms, s, m or h", what,
                    text);
    if (st != GF_OK) return st;
    if (ns >= 9.2e18) return fail(GF_ERANGE, err, errlen, "%s: \"%s\": too large", what, text);
    *out = (uint64_t)llround(ns);
    return GF_OK;
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
