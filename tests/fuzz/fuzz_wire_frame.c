/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for what a wire peer controls: the incremental frame decoder (fed in
 * input-chosen pieces), the payload reader, and the HELLO/WELCOME/error/bulk decoders. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpufuse/wire.h"

/* Reads a payload as whatever tags it claims to hold, with buffers of varying size. */
static void read_all(const uint8_t *p, size_t n)
{
    gf_wire_reader r;
    gf_wire_reader_init(&r, p, n);
    char s[16];
    uint8_t b[8];
    const uint8_t *d;
    while (gf_wire_reader_remaining(&r) > 0) {
        switch (r.buf[r.pos]) {
        case GF_WIRE_T_U32: gf_wire_get_u32(&r); break;
        case GF_WIRE_T_U64: gf_wire_get_u64(&r); break;
        case GF_WIRE_T_I32: gf_wire_get_i32(&r); break;
        case GF_WIRE_T_I64: gf_wire_get_i64(&r); break;
        case GF_WIRE_T_F64: gf_wire_get_f64(&r); break;
        case GF_WIRE_T_HANDLE: gf_wire_get_handle(&r); break;
        case GF_WIRE_T_BYTES:
            if (r.pos & 1) gf_wire_get_bytes_into(&r, b, sizeof b);
            else gf_wire_get_bytes(&r, &d);
            break;
        case GF_WIRE_T_STR: gf_wire_get_str(&r, s, sizeof s); break;
        default: gf_wire_get_raw(&r, &d, 1 + (r.pos & 3)); break;
        }
    }
    char err[64];
    gf_wire_reader_status(&r, 1, err, sizeof err);
}

static void on_frame(const gf_wire_frame *f)
{
    char err[256];
    read_all(f->payload, f->payload ? (size_t)f->hdr.payload_len : 0);
    gf_wire_hello h;
    gf_wire_frame g = *f;
    g.hdr.kind = GF_WIRE_K_HELLO;
    if (gf_wire_hello_decode(&g, &h, err, sizeof err) == GF_OK)
        gf_wire_check_hello(&h, "token", err, sizeof err);
    gf_wire_welcome wl;
    g.hdr.kind = GF_WIRE_K_WELCOME;
    gf_wire_welcome_decode(&g, &wl, err, sizeof err);
    gf_status st;
    gf_wire_error_decode(f, &st, err, sizeof err);
    gf_wire_bulk_rx rx;
    gf_wire_bulk_rx_init(&rx, f->hdr.request_id, 1000);
    uint64_t off;
    const uint8_t *d;
    size_t n;
    gf_wire_bulk_rx_chunk(&rx, f, &off, &d, &n, err, sizeof err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    /* First byte: piece size for feeding (1..16, or all at once), and whether the decoder
     * accepts any major. */
    unsigned piece = (data[0] & 15) + 1;
    int whole = data[0] & 0x40;
    uint8_t major = (data[0] & 0x80) ? GF_WIRE_MAJOR : 0;
    data++;
    size--;
    gf_wire_decoder d;
    gf_wire_decoder_init(&d, 1u << 20, major);
    size_t pos = 0;
    char err[256];
    while (pos < size) {
        size_t n = whole ? size - pos : (size - pos < piece ? size - pos : piece);
        size_t used;
        int done;
        gf_wire_frame f;
        if (gf_wire_decoder_feed(&d, data + pos, n, &used, &done, &f, err, sizeof err) != GF_OK)
            break;
        pos += used;
        if (done) on_frame(&f);
    }
    gf_wire_decoder_free(&d);
    read_all(data, size);
    gf_wire_addr a;
    char text[128];
    size_t tl = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, tl);
    text[tl] = 0;
    gf_wire_parse_addr("fuzz", text, &a, err, sizeof err);
    return 0;
}
