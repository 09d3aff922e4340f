#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generates build/gen/gpu_models_data.h (the C initializer of the GPU model table) from
data/gpu_models.csv, checking every row first.

usage: gen_gpu_models.py data/gpu_models.csv build/gen/gpu_models_data.h

A bad row stops the build with "FILE:LINE: column NAME: what is wrong"; nothing is written then.
The output is only rewritten when its content changes, so make does not rebuild for nothing.
"""
import csv
import io
import math
import os
import re
import sys

COLUMNS = ["key", "name", "vram_bytes", "sm_count", "compute_capability", "fp16_tflops",
           "clock_mhz", "mem_clock_mhz", "mem_bus_width", "tdp_watts", "source"]
UINT32_MAX = 0xFFFFFFFF
UINT64_MAX = 0xFFFFFFFFFFFFFFFF
KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RowError(Exception):
    pass


def c_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        else:
            # UTF-8 bytes as octal escapes: never merges with a following hex digit.
            out.extend("\\%03o" % b for b in ch.encode("utf-8"))
    out.append('"')
    return "".join(out)


def parse_uint(col, text, limit):
    if not re.fullmatch(r"[0-9]+", text):
        raise RowError(col, '"%s" is not a whole number (digits only, no units)' % text)
    v = int(text)
    if v <= 0:
        raise RowError(col, "must be positive, got %s" % text)
    if v > limit:
        raise RowError(col, "%s is too large (at most %d)" % (text, limit))
    return v


def parse_float(col, text):
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        raise RowError(col, '"%s" is not a number like 989.4' % text)
    v = float(text)
    if not math.isfinite(v) or v <= 0:
        raise RowError(col, "must be positive, got %s" % text)
    return v


def parse_cc(col, text):
    m = re.fullmatch(r"([0-9]+)\.([0-9]+)", text)
    if not m:
        raise RowError(col, '"%s" is not MAJOR.MINOR like 9.0' % text)
    major, minor = int(m.group(1)), int(m.group(2))
    if major == 0:
        raise RowError(col, "major version must be positive, got %s" % text)
    return major, minor


def parse_row(fields):
    row = dict(zip(COLUMNS, (f.strip() for f in fields)))
    for col in ("key", "name", "source"):
        if not row[col]:
            raise RowError(col, "is empty")
    if not KEY_RE.fullmatch(row["key"]):
        raise RowError("key", '"%s": use letters, digits, ".", "_" or "-"' % row["key"])
    if len(row["name"]) >= 96:
        raise RowError("name", "longer than 95 characters (NVML's name buffer is 96)")
    major, minor = parse_cc("compute_capability", row["compute_capability"])
    return {
        "key": row["key"],
        "name": row["name"],
        "vram_bytes": parse_uint("vram_bytes", row["vram_bytes"], UINT64_MAX),
        "sm_count": parse_uint("sm_count", row["sm_count"], UINT32_MAX),
        "cc_major": major,
        "cc_minor": minor,
        "fp16_tflops": parse_float("fp16_tflops", row["fp16_tflops"]),
        "clock_mhz": parse_uint("clock_mhz", row["clock_mhz"], UINT32_MAX),
        "mem_clock_mhz": parse_uint("mem_clock_mhz", row["mem_clock_mhz"], UINT32_MAX),
        "mem_bus_width": parse_uint("mem_bus_width", row["mem_bus_width"], UINT32_MAX),
        "tdp_watts": parse_uint("tdp_watts", row["tdp_watts"], UINT32_MAX),
        "source": row["source"],
    }


def load(path):
    """Returns the rows of path, or raises SystemExit with a FILE:LINE message."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except OSError as e:
        raise SystemExit("%s: cannot read: %s" % (path, e.strerror))
    except UnicodeDecodeError as e:
        raise SystemExit("%s: not UTF-8 text (%s)" % (path, e.reason))

    rows, keys, header_seen = [], {}, False
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            fields = next(csv.reader(io.StringIO(line)))
        except csv.Error as e:
            raise SystemExit("%s:%d: bad CSV: %s" % (path, lineno, e))
        if not header_seen:
            got = [h.strip() for h in fields]
            if got != COLUMNS:
                raise SystemExit("%s:%d: header must be %s, got %s" %
                                 (path, lineno, ",".join(COLUMNS), ",".join(got)))
            header_seen = True
            continue
        if len(fields) != len(COLUMNS):
            col = COLUMNS[len(fields)] if len(fields) < len(COLUMNS) else "source"
            raise SystemExit("%s:%d: column %s: row has %d columns, want %d (quote a field that "
                             "holds a comma)" % (path, lineno, col, len(fields), len(COLUMNS)))
        try:
            row = parse_row(fields)
        except RowError as e:
            raise SystemExit("%s:%d: column %s: %s" % (path, lineno, e.args[0], e.args[1]))
        k = row["key"].lower()
        if k in keys:
            raise SystemExit("%s:%d: column key: \"%s\" repeats the key of line %d "
                             "(keys are case-insensitive)" % (path, lineno, row["key"], keys[k]))
        keys[k] = lineno
        rows.append(row)
    if not header_seen:
        raise SystemExit("%s: no header line (%s)" % (path, ",".join(COLUMNS)))
    if not rows:
        raise SystemExit("%s: no models" % path)
    return rows


def render(rows, src):
    out = ["/* GENERATED by tools/gen_gpu_models.py from %s -- do not edit. */" % src,
           "/* One initializer per model, in the order of gf_gpu_model's fields: key, name,",
           " * vram_bytes, sm_count, cc_major, cc_minor, fp16_tflops, clock_mhz, mem_clock_mhz,",
           " * mem_bus_width, tdp_watts, source. Included by src/common/gpu_models.c. */"]
    for r in rows:
        out.append("{%s, %s, %dULL, %du, %du, %du, %s, %du, %du, %du, %du," % (
            c_string(r["key"]), c_string(r["name"]), r["vram_bytes"], r["sm_count"],
            r["cc_major"], r["cc_minor"], repr(r["fp16_tflops"]), r["clock_mhz"],
            r["mem_clock_mhz"], r["mem_bus_width"], r["tdp_watts"]))
        out.append(" %s}," % c_string(r["source"]))
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: %s data/gpu_models.csv build/gen/gpu_models_data.h\n" % argv[0])
        return 2
    src, dst = argv[1], argv[2]
    try:
        text = render(load(src), src)
    except SystemExit as e:
        sys.stderr.write("%s\n" % e.code)
        return 1
    try:
        with open(dst, encoding="utf-8") as f:
            if f.read() == text:
                return 0
    except OSError:
        pass
    d = os.path.dirname(dst)
    if d:
        os.makedirs(d, exist_ok=True)
    tmp = "%s.tmp.%d" % (dst, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, dst)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
