/* SPDX-License-Identifier: Apache-2.0 */
/* The payload codec: a tagged little-endian writer (growable or fixed, sticky errors) and a
 * bounds-checked reader that fails cleanly on truncation, wrong tags and oversize values. */
#include <stdio.h>
#include <stdlib.h>

#include "wire/wire_internal.h"

static const char *tag_name(unsigned t)
{
    switch (t) {
    case GF_WIRE_T_U32: return "u32";
    case GF_WIRE_T_U64: return "u64";
    case GF_WIRE_T_I32: return "i32";
    case GF_WIRE_T_I64: return "i64";
    case GF_WIRE_T_F64: return "f64";
    case GF_WIRE_T_HANDLE: return "handle";
    case GF_WIRE_T_BYTES: return "bytes";
    case GF_WIRE_T_STR: return "string";
    default: return "unknown";
    }
}

/* ---- writer ---------------------------------------------------------------------------- */

void gf_wire_writer_init(gf_wire_writer *w, size_t max)
{
    memset(w, 0, sizeof *w);
    w->max = max ? max : (size_t)GF_WIRE_MAX_PAYLOAD_DEFAULT + GF_WIRE_HDR_SIZE;
    w->owned = 1;
    w->frame_at = SIZE_MAX;
}

void gf_wire_writer_init_fixed(gf_wire_writer *w, void *buf, size_t cap)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = cap;
    w->max = cap;
    w->frame_at = SIZE_MAX;
}

void gf_wire_writer_free(gf_wire_writer *w)
{
    if (w->owned) free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

void gf_wire_writer_reset(gf_wire_writer *w)
{
    w->len = 0;
    w->status = GF_OK;
    w->frame_at = SIZE_MAX;
}

uint8_t *gf_wire_writer_take(gf_wire_writer *w, size_t *len)
{
    uint8_t *b = w->owned ? w->buf : NULL;
    if (len) *len = b ? w->len : 0;
    if (w->owned) {
        w->buf = NULL;
        w->cap = 0;
    }
    gf_wire_writer_reset(w);
    return b;
}

gf_status gf_wire_writer_status(const gf_wire_writer *w) { return w->status; }

/* Reserves n bytes at the end; NULL (and the sticky error) when it cannot. */
static uint8_t *reserve(gf_wire_writer *w, size_t n)
{
    if (w->status != GF_OK) return NULL;
    if (n > w->max - w->len) {
        w->status = GF_ENOSPC;
        return NULL;
    }
    if (w->len + n > w->cap) {
        if (!w->owned) {
            w->status = GF_ENOSPC;
            return NULL;
        }
        size_t ncap = w->cap ? w->cap : 256;
        while (ncap < w->len + n) ncap = ncap > w->max / 2 ? w->max : ncap * 2;
        uint8_t *b = realloc(w->buf, ncap);
        if (!b) {
            w->status = GF_ENOMEM;
            return NULL;
        }
        w->buf = b;
        w->cap = ncap;
    }
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

static void put_tag64(gf_wire_writer *w, uint8_t tag, uint64_t v)
{
    uint8_t *p = reserve(w, 9);
    if (!p) return;
    p[0] = tag;
    gf_wire__put64(p + 1, v);
}

static void put_tag32(gf_wire_writer *w, uint8_t tag, uint32_t v)
{
    uint8_t *p = reserve(w, 5);
    if (!p) return;
    p[0] = tag;
    gf_wire__put32(p + 1, v);
}

void gf_wire_put_u32(gf_wire_writer *w, uint32_t v) { put_tag32(w, GF_WIRE_T_U32, v); }
void gf_wire_put_i32(gf_wire_writer *w, int32_t v) { put_tag32(w, GF_WIRE_T_I32, (uint32_t)v); }
void gf_wire_put_u64(gf_wire_writer *w, uint64_t v) { put_tag64(w, GF_WIRE_T_U64, v); }
void gf_wire_put_i64(gf_wire_writer *w, int64_t v) { put_tag64(w, GF_WIRE_T_I64, (uint64_t)v); }
void gf_wire_put_handle(gf_wire_writer *w, uint64_t h) { put_tag64(w, GF_WIRE_T_HANDLE, h); }

void gf_wire_put_f64(gf_wire_writer *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_tag64(w, GF_WIRE_T_F64, bits);
}

static void put_lenval(gf_wire_writer *w, uint8_t tag, const void *data, size_t len)
{
    if (w->status != GF_OK) return;
    if (len > UINT32_MAX) {
        w->status = GF_ERANGE;
        return;
    }
    uint8_t *p = reserve(w, 5 + len);
    if (!p) return;
    p[0] = tag;
    gf_wire__put32(p + 1, (uint32_t)len);
    if (len) memcpy(p + 5, data, len);
}

void gf_wire_put_bytes(gf_wire_writer *w, const void *data, size_t len)
{
    put_lenval(w, GF_WIRE_T_BYTES, data, len);
}

void gf_wire_put_str(gf_wire_writer *w, const char *s)
{
    put_lenval(w, GF_WIRE_T_STR, s ? s : "", s ? strlen(s) : 0);
}

void gf_wire_put_raw(gf_wire_writer *w, const void *data, size_t len)
{
    uint8_t *p = reserve(w, len);
    if (p && len) memcpy(p, data, len);
}

void gf_wire_writer_begin_frame(gf_wire_writer *w, uint32_t kind, uint16_t flags,
                                uint64_t request_id)
{
    if (w->status != GF_OK) return;
    if (w->frame_at != SIZE_MAX) {
        w->status = GF_EINVAL;
        return;
    }
    size_t at = w->len;
    uint8_t *p = reserve(w, GF_WIRE_HDR_SIZE);
    if (!p) return;
    gf_wire_hdr_encode(p, kind, flags, request_id, 0);
    w->frame_at = at;
}

void gf_wire_writer_end_frame(gf_wire_writer *w)
{
    if (w->status != GF_OK) return;
    if (w->frame_at == SIZE_MAX) {
        w->status = GF_EINVAL;
        return;
    }
    uint64_t plen = w->len - w->frame_at - GF_WIRE_HDR_SIZE;
    gf_wire__put64(w->buf + w->frame_at + 24, plen);
    w->frame_at = SIZE_MAX;
}

/* ---- reader ---------------------------------------------------------------------------- */

void gf_wire_reader_init(gf_wire_reader *r, const void *buf, size_t len)
{
    r->buf = buf;
    r->len = buf ? len : 0;
    r->pos = 0;
    r->status = GF_OK;
    r->msg[0] = 0;
}

void gf_wire_reader_init_frame(gf_wire_reader *r, const gf_wire_frame *f)
{
    gf_wire_reader_init(r, f->payload, f->payload ? (size_t)f->hdr.payload_len : 0);
}

static void fail(gf_wire_reader *r, gf_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(gf_wire_reader *r, gf_status st, const char *fmt, ...)
{
    if (r->status != GF_OK) return;
    r->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
}

/* Checks the tag at pos and that n value bytes follow; returns the value's address. */
static const uint8_t *take(gf_wire_reader *r, uint8_t tag, size_t n)
{
    if (r->status != GF_OK) return NULL;
    if (r->pos >= r->len) {
        fail(r, GF_EPROTO, "expected %s at offset %zu, payload ends there", tag_name(tag),
             r->pos);
        return NULL;
    }
    uint8_t t = r->buf[r->pos];
    if (t != tag) {
        fail(r, GF_EPROTO, "expected %s at offset %zu, found tag %u (%s)", tag_name(tag), r->pos,
             t, tag_name(t));
        return NULL;
    }
    if (r->len - r->pos - 1 < n) {
        fail(r, GF_EPROTO, "%s at offset %zu is truncated: needs %zu bytes, %zu left",
             tag_name(tag), r->pos, n, r->len - r->pos - 1);
        return NULL;
    }
    const uint8_t *p = r->buf + r->pos + 1;
    r->pos += 1 + n;
    return p;
}

static uint64_t get64(gf_wire_reader *r, uint8_t tag)
{
    const uint8_t *p = take(r, tag, 8);
    return p ? gf_wire__get64(p) : 0;
}

static uint32_t get32(gf_wire_reader *r, uint8_t tag)
{
    const uint8_t *p = take(r, tag, 4);
    return p ? gf_wire__get32(p) : 0;
}

uint32_t gf_wire_get_u32(gf_wire_reader *r) { return get32(r, GF_WIRE_T_U32); }
int32_t gf_wire_get_i32(gf_wire_reader *r) { return (int32_t)get32(r, GF_WIRE_T_I32); }
uint64_t gf_wire_get_u64(gf_wire_reader *r) { return get64(r, GF_WIRE_T_U64); }
int64_t gf_wire_get_i64(gf_wire_reader *r) { return (int64_t)get64(r, GF_WIRE_T_I64); }
uint64_t gf_wire_get_handle(gf_wire_reader *r) { return get64(r, GF_WIRE_T_HANDLE); }

double gf_wire_get_f64(gf_wire_reader *r)
{
    uint64_t bits = get64(r, GF_WIRE_T_F64);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static size_t get_lenval(gf_wire_reader *r, uint8_t tag, const uint8_t **data)
{
    *data = NULL;
    size_t at = r->pos;
    const uint8_t *p = take(r, tag, 4);
    if (!p) return 0;
    uint32_t n = gf_wire__get32(p);
    if (n > r->len - r->pos) {
        r->pos = at;
        fail(r, GF_EPROTO, "%s at offset %zu claims %u bytes, %zu left", tag_name(tag), at, n,
             r->len - r->pos - 5);
        return 0;
    }
    *data = r->buf + r->pos;
    r->pos += n;
    return n;
}

size_t gf_wire_get_bytes(gf_wire_reader *r, const uint8_t **data)
{
    return get_lenval(r, GF_WIRE_T_BYTES, data);
}

size_t gf_wire_get_bytes_into(gf_wire_reader *r, void *out, size_t cap)
{
    const uint8_t *d;
    size_t at = r->pos;
    size_t n = get_lenval(r, GF_WIRE_T_BYTES, &d);
    if (!d) return 0;
    if (n > cap) {
        fail(r, GF_ERANGE, "bytes at offset %zu: %zu bytes do not fit a %zu-byte buffer", at, n,
             cap);
        return 0;
    }
    if (n) memcpy(out, d, n);
    return n;
}

char *gf_wire_get_str(gf_wire_reader *r, char *out, size_t cap)
{
    const uint8_t *d;
    size_t at = r->pos;
    if (cap) out[0] = 0;
    size_t n = get_lenval(r, GF_WIRE_T_STR, &d);
    if (!d) return out;
    if (memchr(d, 0, n)) {
        fail(r, GF_EPROTO, "string at offset %zu holds a NUL byte", at);
        return out;
    }
    if (n >= cap) {
        fail(r, GF_ERANGE, "string at offset %zu: %zu bytes do not fit a %zu-byte buffer", at,
             n, cap);
        return out;
    }
    memcpy(out, d, n);
    out[n] = 0;
    return out;
}

int gf_wire_get_raw(gf_wire_reader *r, const uint8_t **data, size_t n)
{
    *data = NULL;
    if (r->status != GF_OK) return 0;
    if (n > r->len - r->pos) {
        fail(r, GF_EPROTO, "raw read of %zu bytes at offset %zu: only %zu left", n, r->pos,
             r->len - r->pos);
        return 0;
    }
    *data = r->buf + r->pos;
    r->pos += n;
    return 1;
}

size_t gf_wire_reader_remaining(const gf_wire_reader *r)
{
    return r->status == GF_OK ? r->len - r->pos : 0;
}

gf_status gf_wire_reader_status(const gf_wire_reader *r, int require_end, char *err,
                                size_t errlen)
{
    if (r->status != GF_OK) return gf_wire__err(err, errlen, r->status, "payload: %s", r->msg);
    if (require_end && r->pos != r->len)
        return gf_wire__err(err, errlen, GF_EPROTO, "payload: %zu unexpected bytes at offset %zu",
                            r->len - r->pos, r->pos);
    return GF_OK;
}

void gf_wire_error_encode(gf_wire_writer *w, gf_status status, const char *msg)
{
    gf_wire_put_u32(w, (uint32_t)status);
    gf_wire_put_str(w, msg);
}

gf_status gf_wire_error_decode(const gf_wire_frame *f, gf_status *status, char *msg, size_t cap)
{
    gf_wire_reader r;
    gf_wire_reader_init_frame(&r, f);
    uint32_t st = gf_wire_get_u32(&r);
    const uint8_t *d;
    size_t n = get_lenval(&r, GF_WIRE_T_STR, &d);
    if (r.status != GF_OK) {
        *status = GF_EPROTO;
        if (cap) snprintf(msg, cap, "malformed error report: %s", r.msg);
        return GF_EPROTO;
    }
    *status = st == GF_OK ? GF_EIO : (gf_status)st;
    if (cap) snprintf(msg, cap, "%.*s", (int)(n < 4096 ? n : 4096), d ? (const char *)d : "");
    return GF_OK;
}
