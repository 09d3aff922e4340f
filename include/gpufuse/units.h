/* SPDX-License-Identifier: Apache-2.0 */
/* Parsing and printing of the quantities users type: sizes ("4Gi", "512Mi", "1G", bytes),
 * compute ("19.5" FP16 TFLOPs, "50%"), durations ("30s", "5m", "250ms"). */
#ifndef GPUFUSE_UNITS_H
#define GPUFUSE_UNITS_H

#include <stddef.h>
#include <stdint.h>

#include "gpufuse/status.h"

/* Parses a size: an integer or decimal number, optionally followed by one of the units
 * Ki Mi Gi Ti Pi (powers of 1024), K/k M G T P (powers of 1000), or B/bytes; "0" is allowed.
 * On error returns GF_EINVAL (or GF_ERANGE on overflow) and writes into err a message that
 * names what (e.g. "--vram") and the value: `--vram: "4GB": unknown unit "GB"; use Ki, Mi, Gi,
 * Ti, K, M, G, T or plain bytes`. */
gf_status gf_parse_size(const char *what, const char *text, uint64_t *out, char *err,
                        size_t errlen);

/* Parses a positive decimal number (TFLOPs). Rejects NaN, inf, negatives, trailing garbage. */
gf_status gf_parse_tflops(const char *what, const char *text, double *out, char *err,
                          size_t errlen);

/* Parses a percentage "50", "50%" or "12.5%" into (0, 100]. */
gf_status gf_parse_percent(const char *what, const char *text, double *out, char *err,
                           size_t errlen);

/* Parses a duration: a number with unit ns, us, ms, s, m or h ("1.5s"); bare numbers are
 * rejected because their unit would be a guess. */
gf_status gf_parse_duration_ns(const char *what, const char *text, uint64_t *out, char *err,
                               size_t errlen);

/* Formats bytes with a binary unit and up to two decimals: "80 GiB", "1.5 MiB", "512 B". */
void gf_format_size(uint64_t bytes, char *buf, size_t buflen);

#endif
