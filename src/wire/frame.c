/* SPDX-License-Identifier: Apache-2.0 */
/* Frame headers and the incremental frame decoder: validates every header before trusting its
 * length and grows the payload buffer only with bytes that actually arrived. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "wire/wire_internal.h"

enum { ST_HDR = 0, ST_PAYLOAD = 1 };

/* The first allocation for a payload; it doubles as bytes arrive, up to payload_len. */
#define FIRST_ALLOC (1u << 20)
/* A buffer larger than this is released between frames instead of kept for reuse. */
#define KEEP_MAX (4u << 20)

gf_status gf_wire__err(char *err, size_t errlen, gf_status st, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

uint64_t gf_wire__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int gf_wire__left_ms(uint64_t deadline_ms)
{
    uint64_t now = gf_wire__now_ms();
    if (now >= deadline_ms) return 0;
    uint64_t left = deadline_ms - now;
    return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

void gf_wire_hdr_encode(uint8_t out[GF_WIRE_HDR_SIZE], uint32_t kind, uint16_t flags,
                        uint64_t request_id, uint64_t payload_len)
{
    gf_wire__put32(out, GF_WIRE_MAGIC);
    out[4] = GF_WIRE_MAJOR;
    out[5] = GF_WIRE_MINOR;
    gf_wire__put16(out + 6, flags);
    gf_wire__put32(out + 8, kind);
    gf_wire__put32(out + 12, GF_WIRE_HDR_SIZE);
    gf_wire__put64(out + 16, request_id);
    gf_wire__put64(out + 24, payload_len);
}

/* A hint for the most common way to get a bad magic: the wrong protocol on the port. */
static const char *magic_hint(const uint8_t *p)
{
    if (p[0] == 0x16 && p[1] == 0x03) return " (a TLS handshake: use tls:// on both ends)";
    if (!memcmp(p, "GET ", 4) || !memcmp(p, "POST", 4) || !memcmp(p, "HTTP", 4))
        return " (HTTP: this is not a gpufuse worker/client)";
    return " (not a gpufuse wire peer, or the stream lost sync)";
}

gf_status gf_wire_hdr_decode(const void *buf, size_t len, uint64_t max_payload,
                             uint8_t expect_major, gf_wire_hdr *out, char *err, size_t errlen)
{
    const uint8_t *p = buf;
    if (len < GF_WIRE_HDR_SIZE)
        return gf_wire__err(err, errlen, GF_EINVAL, "frame header needs %u bytes, got %zu",
                            GF_WIRE_HDR_SIZE, len);
    uint32_t magic = gf_wire__get32(p);
    if (magic != GF_WIRE_MAGIC)
        return gf_wire__err(err, errlen, GF_EPROTO,
                            "bad frame magic 0x%08x (expected 0x%08x \"GFW1\")%s", magic,
                            GF_WIRE_MAGIC, magic_hint(p));
    memset(out, 0, sizeof *out);
    out->major = p[4];
    out->minor = p[5];
    out->flags = gf_wire__get16(p + 6);
    out->kind = gf_wire__get32(p + 8);
    out->header_size = gf_wire__get32(p + 12);
    out->request_id = gf_wire__get64(p + 16);
    out->payload_len = gf_wire__get64(p + 24);
    if (expect_major && out->major != expect_major)
        return gf_wire__err(err, errlen, GF_EPROTO,
                            "frame of gpufuse wire %u.%u on a %u.x session: peers must speak "
                            "the same major version",
                            out->major, out->minor, expect_major);
    if (out->header_size < GF_WIRE_HDR_SIZE || out->header_size > GF_WIRE_HDR_MAX)
        return gf_wire__err(err, errlen, GF_EPROTO,
                            "frame header_size %u out of range [%u, %u]", out->header_size,
                            GF_WIRE_HDR_SIZE, GF_WIRE_HDR_MAX);
    if (out->payload_len > max_payload)
        return gf_wire__err(err, errlen, GF_EPROTO,
                            "frame payload_len %llu exceeds the limit %llu (kind 0x%x, request "
                            "%llu): refused",
                            (unsigned long long)out->payload_len,
                            (unsigned long long)max_payload, out->kind,
                            (unsigned long long)out->request_id);
    return GF_OK;
}

void gf_wire_decoder_init(gf_wire_decoder *d, uint64_t max_payload, uint8_t expect_major)
{
    memset(d, 0, sizeof *d);
    if (max_payload == 0) max_payload = GF_WIRE_MAX_PAYLOAD_DEFAULT;
    if (max_payload > GF_WIRE_MAX_PAYLOAD_LIMIT) max_payload = GF_WIRE_MAX_PAYLOAD_LIMIT;
    d->max_payload = max_payload;
    d->expect_major = expect_major;
    d->state = ST_HDR;
}

void gf_wire_decoder_free(gf_wire_decoder *d)
{
    free(d->payload);
    d->payload = NULL;
    d->payload_cap = 0;
}

void gf_wire_decoder_set_route(gf_wire_decoder *d, gf_wire_route_fn fn, void *ctx)
{
    d->route = fn;
    d->route_ctx = ctx;
}

uint8_t *gf_wire_decoder_take_payload(gf_wire_decoder *d)
{
    if (d->state != ST_HDR || d->routed || d->hdr.payload_len == 0) return NULL;
    uint8_t *p = d->payload;
    d->payload = NULL;
    d->payload_cap = 0;
    return p;
}

/* Bytes of the header still wanted: the fixed part first, then any extension to skip. */
static size_t hdr_want(const gf_wire_decoder *d)
{
    if (d->hdr_have < GF_WIRE_HDR_SIZE) return GF_WIRE_HDR_SIZE - d->hdr_have;
    return d->hdr.header_size - d->hdr_have;
}

/* Makes room for more payload bytes; 0 on allocation failure. */
static int grow(gf_wire_decoder *d)
{
    uint64_t want = d->hdr.payload_len;
    size_t cap = d->payload_cap;
    if (cap >= want) return 1;
    size_t ncap = cap ? cap * 2 : FIRST_ALLOC;
    if (ncap > want) ncap = (size_t)want;
    uint8_t *p = realloc(d->payload, ncap);
    if (!p) return 0;
    d->payload = p;
    d->payload_cap = ncap;
    return 1;
}

void gf_wire_decoder_window(gf_wire_decoder *d, uint8_t **ptr, size_t *len)
{
    *ptr = NULL;
    *len = 0;
    if (d->failed) return;
    if (d->state == ST_HDR) {
        *ptr = d->hdr_buf + d->hdr_have;
        *len = hdr_want(d);
        return;
    }
    if (d->routed) {
        *ptr = d->routed + d->payload_have;
        *len = (size_t)(d->hdr.payload_len - d->payload_have);
        return;
    }
    if (d->payload_have == d->payload_cap && !grow(d)) return;
    /* The buffer may be larger than this payload (kept from an earlier frame). */
    size_t end = d->payload_cap < d->hdr.payload_len ? d->payload_cap : (size_t)d->hdr.payload_len;
    *ptr = d->payload + d->payload_have;
    *len = end - (size_t)d->payload_have;
}

static void complete(gf_wire_decoder *d, int *done, gf_wire_frame *f)
{
    f->hdr = d->hdr;
    f->payload = d->hdr.payload_len ? (d->routed ? d->routed : d->payload) : NULL;
    *done = 1;
    d->state = ST_HDR;
    d->hdr_have = 0;
}

gf_status gf_wire_decoder_commit(gf_wire_decoder *d, size_t n, int *done, gf_wire_frame *f,
                                 char *err, size_t errlen)
{
    *done = 0;
    if (d->failed) return gf_wire__err(err, errlen, GF_EPROTO, "stream failed earlier");
    if (d->state == ST_PAYLOAD) {
        d->payload_have += n;
        if (d->payload_have == d->hdr.payload_len) complete(d, done, f);
        return GF_OK;
    }
    d->hdr_have += n;
    if (d->hdr_have == GF_WIRE_HDR_SIZE) {
        gf_status st = gf_wire_hdr_decode(d->hdr_buf, GF_WIRE_HDR_SIZE, d->max_payload,
                                          d->expect_major, &d->hdr, err, errlen);
        if (st != GF_OK) {
            d->failed = 1;
            return st;
        }
    }
    if (d->hdr_have < GF_WIRE_HDR_SIZE || d->hdr_have < d->hdr.header_size) return GF_OK;
    /* Header complete: start the payload. */
    d->payload_have = 0;
    d->routed = NULL;
    if (d->payload_cap > KEEP_MAX) {
        free(d->payload);
        d->payload = NULL;
        d->payload_cap = 0;
    }
    if (d->hdr.payload_len && d->route) d->routed = d->route(d->route_ctx, &d->hdr);
    if (d->hdr.payload_len == 0) {
        complete(d, done, f);
        return GF_OK;
    }
    d->state = ST_PAYLOAD;
    return GF_OK;
}

gf_status gf_wire_decoder_feed(gf_wire_decoder *d, const void *data, size_t len, size_t *used,
                               int *done, gf_wire_frame *f, char *err, size_t errlen)
{
    const uint8_t *p = data;
    size_t pos = 0;
    *done = 0;
    *used = 0;
    if (d->failed) return gf_wire__err(err, errlen, GF_EPROTO, "stream failed earlier");
    while (pos < len) {
        uint8_t *w;
        size_t wl;
        gf_wire_decoder_window(d, &w, &wl);
        if (wl == 0)
            return gf_wire__err(err, errlen, GF_ENOMEM,
                                "cannot allocate a %llu-byte frame payload",
                                (unsigned long long)d->hdr.payload_len);
        size_t n = len - pos < wl ? len - pos : wl;
        memcpy(w, p + pos, n);
        pos += n;
        *used = pos;
        gf_status st = gf_wire_decoder_commit(d, n, done, f, err, errlen);
        if (st != GF_OK) return st;
        if (*done) break;
    }
    return GF_OK;
}
