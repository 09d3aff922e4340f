/* SPDX-License-Identifier: Apache-2.0 */
/* The wire protocol without sockets: frame headers, the incremental decoder (every split of the
 * stream, hostile lengths), the payload codec (every type, truncation, tags), addresses,
 * GPUFUSE_REMOTE_TIMEOUT, handshake payloads and checks, bulk chunk validation. */
#include "gpufuse/wire.h"
#include "test.h"

/* Three frames back to back: empty, small, a few KiB. */
static uint8_t *three_frames(size_t *len)
{
    gf_wire_writer w;
    gf_wire_writer_init(&w, 0);
    gf_wire_writer_begin_frame(&w, GF_WIRE_K_PING, 0, 1);
    gf_wire_writer_end_frame(&w);
    gf_wire_writer_begin_frame(&w, GF_WIRE_K_CUDA_FIRST + 7, GF_WIRE_F_NOREPLY, 2);
    gf_wire_put_u32(&w, 0xdeadbeef);
    gf_wire_put_str(&w, "hello");
    gf_wire_writer_end_frame(&w);
    gf_wire_writer_begin_frame(&w, GF_WIRE_K_BULK, 0, 3);
    for (int i = 0; i < 3000; i++) {
        uint8_t b = (uint8_t)(i * 7);
        gf_wire_put_raw(&w, &b, 1);
    }
    gf_wire_writer_end_frame(&w);
    ASSERT_EQ_INT(gf_wire_writer_status(&w), GF_OK);
    return gf_wire_writer_take(&w, len);
}

static void check_three(gf_wire_frame *f, int i)
{
    ASSERT_EQ_U64(f->hdr.request_id, (uint64_t)i + 1);
    if (i == 0) {
        ASSERT_EQ_INT(f->hdr.kind, GF_WIRE_K_PING);
        ASSERT_EQ_U64(f->hdr.payload_len, 0);
        ASSERT_TRUE(f->payload == NULL);
    } else if (i == 1) {
        ASSERT_EQ_INT(f->hdr.flags, GF_WIRE_F_NOREPLY);
        gf_wire_reader r;
        char s[16];
        gf_wire_reader_init_frame(&r, f);
        ASSERT_EQ_U64(gf_wire_get_u32(&r), 0xdeadbeef);
        ASSERT_EQ_STR(gf_wire_get_str(&r, s, sizeof s), "hello");
        ASSERT_EQ_INT(gf_wire_reader_status(&r, 1, NULL, 0), GF_OK);
    } else {
        ASSERT_EQ_U64(f->hdr.payload_len, 3000);
        for (int k = 0; k < 3000; k++) ASSERT_EQ_INT(f->payload[k], (uint8_t)(k * 7));
    }
}

TEST(wire_header_layout_is_little_endian_and_versioned)
{
    uint8_t h[GF_WIRE_HDR_SIZE];
    gf_wire_hdr_encode(h, 0x01020304, 0x0506, 0x1112131415161718ull, 0x2122232425262728ull);
    static const uint8_t want[32] = {'G', 'F', 'W', '1', GF_WIRE_MAJOR, GF_WIRE_MINOR, 0x06, 0x05,
                                     4, 3, 2, 1, 32, 0, 0, 0,
                                     0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,
                                     0x28, 0x27, 0x26, 0x25, 0x24, 0x23, 0x22, 0x21};
    for (int i = 0; i < 32; i++) ASSERT_EQ_INT(h[i], want[i]);
    gf_wire_hdr d;
    char err[256];
    ASSERT_EQ_INT(gf_wire_hdr_decode(h, sizeof h, UINT64_MAX, 1, &d, err, sizeof err), GF_OK);
    ASSERT_EQ_U64(d.request_id, 0x1112131415161718ull);
    ASSERT_EQ_INT(gf_wire_hdr_decode(h, sizeof h, 1000, 1, &d, err, sizeof err), GF_EPROTO);
    ASSERT_CONTAINS(err, "exceeds the limit 1000");
    ASSERT_EQ_INT(gf_wire_hdr_decode(h, sizeof h, UINT64_MAX, 2, &d, err, sizeof err), GF_EPROTO);
    ASSERT_CONTAINS(err, "same major version");
    memcpy(h, "\x16\x03\x01\x02", 4);
    ASSERT_EQ_INT(gf_wire_hdr_decode(h, sizeof h, UINT64_MAX, 1, &d, err, sizeof err), GF_EPROTO);
    ASSERT_CONTAINS(err, "use tls:// on both ends");
    ASSERT_EQ_INT(gf_wire_hdr_decode(h, 31, UINT64_MAX, 1, &d, err, sizeof err), GF_EINVAL);
}

TEST(wire_decoder_every_split_point)
{
    size_t len;
    uint8_t *s = three_frames(&len);
    /* Two pieces, cut at every byte. */
    for (size_t cut = 0; cut <= len; cut++) {
        gf_wire_decoder d;
        gf_wire_decoder_init(&d, 0, GF_WIRE_MAJOR);
        int got = 0;
        size_t pieces[2][2] = {{0, cut}, {cut, len}};
        for (int p = 0; p < 2; p++) {
            size_t pos = pieces[p][0], end = pieces[p][1];
            while (pos < end) {
                size_t used;
                int done;
                gf_wire_frame f;
                ASSERT_EQ_INT(gf_wire_decoder_feed(&d, s + pos, end - pos, &used, &done, &f,
                                                   NULL, 0),
                              GF_OK);
                pos += used;
                if (done) check_three(&f, got++);
            }
        }
        ASSERT_MSG(got == 3, "cut at %zu: expected 3 frames, got %d", cut, got);
        gf_wire_decoder_free(&d);
    }
    /* One byte at a time. */
    gf_wire_decoder d;
    gf_wire_decoder_init(&d, 0, 0);
    int got = 0;
    for (size_t i = 0; i < len; i++) {
        size_t used;
        int done;
        gf_wire_frame f;
        ASSERT_EQ_INT(gf_wire_decoder_feed(&d, s + i, 1, &used, &done, &f, NULL, 0), GF_OK);
        ASSERT_EQ_U64(used, 1);
        if (done) check_three(&f, got++);
    }
    ASSERT_EQ_INT(got, 3);
    gf_wire_decoder_free(&d);
    free(s);
}

TEST(wire_decoder_skips_a_longer_header_of_a_newer_minor)
{
    uint8_t buf[64 + 5];
    gf_wire_hdr_encode(buf, GF_WIRE_K_PING, 0, 9, 5);
    buf[5] = GF_WIRE_MINOR + 1;
    buf[12] = 64; /* header_size: 32 bytes this build does not know */
    memset(buf + 32, 0xee, 32);
    memcpy(buf + 64, "abcde", 5);
    gf_wire_decoder d;
    gf_wire_decoder_init(&d, 0, GF_WIRE_MAJOR);
    size_t used;
    int done;
    gf_wire_frame f;
    ASSERT_EQ_INT(gf_wire_decoder_feed(&d, buf, sizeof buf, &used, &done, &f, NULL, 0), GF_OK);
    ASSERT_TRUE(done);
    ASSERT_EQ_U64(used, sizeof buf);
    ASSERT_EQ_INT(f.hdr.minor, GF_WIRE_MINOR + 1);
    ASSERT_TRUE(!memcmp(f.payload, "abcde", 5));
    gf_wire_decoder_free(&d);
}

TEST(wire_decoder_refuses_hostile_lengths_without_allocating)
{
    uint8_t h[GF_WIRE_HDR_SIZE];
    char err[256];
    gf_wire_decoder d;
    size_t used;
    int done;
    gf_wire_frame f;
    /* 64 MiB + 1 against the default limit: refused at the header, sticky. */
    gf_wire_hdr_encode(h, GF_WIRE_K_BULK, 0, 1, GF_WIRE_MAX_PAYLOAD_DEFAULT + 1ull);
    gf_wire_decoder_init(&d, 0, 0);
    ASSERT_EQ_INT(gf_wire_decoder_feed(&d, h, sizeof h, &used, &done, &f, err, sizeof err),
                  GF_EPROTO);
    ASSERT_CONTAINS(err, "exceeds the limit");
    ASSERT_TRUE(d.payload == NULL);
    ASSERT_EQ_INT(gf_wire_decoder_feed(&d, h, sizeof h, &used, &done, &f, err, sizeof err),
                  GF_EPROTO);
    gf_wire_decoder_free(&d);
    /* 2^64-1 */
    gf_wire_hdr_encode(h, GF_WIRE_K_BULK, 0, 1, UINT64_MAX);
    gf_wire_decoder_init(&d, 0, 0);
    ASSERT_EQ_INT(gf_wire_decoder_feed(&d, h, sizeof h, &used, &done, &f, err, sizeof err),
                  GF_EPROTO);
    gf_wire_decoder_free(&d);
    /* A legal 64 MiB length with 10 bytes behind it: at most the first chunk is reserved. */
    gf_wire_hdr_encode(h, GF_WIRE_K_BULK, 0, 1, GF_WIRE_MAX_PAYLOAD_DEFAULT);
    gf_wire_decoder_init(&d, 0, 0);
    ASSERT_EQ_INT(gf_wire_decoder_feed(&d, h, sizeof h, &used, &done, &f, err, sizeof err),
                  GF_OK);
    ASSERT_EQ_INT(gf_wire_decoder_feed(&d, "0123456789", 10, &used, &done, &f, err, sizeof err),
                  GF_OK);
    ASSERT_TRUE(!done);
    ASSERT_TRUE(d.payload_cap <= (1u << 20));
    gf_wire_decoder_free(&d);
    /* Garbage. */
    gf_wire_decoder_init(&d, 0, 0);
    ASSERT_EQ_INT(gf_wire_decoder_feed(&d, "GET / HTTP/1.1\r\nHost: x\r\n\r\n12345", 32, &used,
                                       &done, &f, err, sizeof err),
                  GF_EPROTO);
    ASSERT_CONTAINS(err, "HTTP");
    gf_wire_decoder_free(&d);
}

TEST(wire_decoder_take_payload_and_route)
{
    uint8_t buf[GF_WIRE_HDR_SIZE + 4];
    gf_wire_hdr_encode(buf, 0x1234, 0, 5, 4);
    memcpy(buf + GF_WIRE_HDR_SIZE, "wxyz", 4);
    gf_wire_decoder d;
    gf_wire_decoder_init(&d, 0, 0);
    size_t used;
    int done;
    gf_wire_frame f;
    ASSERT_EQ_INT(gf_wire_decoder_feed(&d, buf, sizeof buf, &used, &done, &f, NULL, 0), GF_OK);
    uint8_t *p = gf_wire_decoder_take_payload(&d);
    ASSERT_TRUE(p == f.payload && !memcmp(p, "wxyz", 4));
    free(p);
    ASSERT_EQ_INT(gf_wire_decoder_feed(&d, buf, sizeof buf, &used, &done, &f, NULL, 0), GF_OK);
    ASSERT_TRUE(done && !memcmp(f.payload, "wxyz", 4));
    gf_wire_decoder_free(&d);
}

TEST(wire_codec_round_trips_every_type)
{
    gf_wire_writer w;
    gf_wire_writer_init(&w, 0);
    uint8_t blob[300];
    for (int i = 0; i < 300; i++) blob[i] = (uint8_t)i;
    gf_wire_put_u32(&w, 0);
    gf_wire_put_u32(&w, UINT32_MAX);
    gf_wire_put_u64(&w, UINT64_MAX);
    gf_wire_put_i32(&w, INT32_MIN);
    gf_wire_put_i64(&w, INT64_MIN);
    gf_wire_put_f64(&w, -1.5e300);
    gf_wire_put_handle(&w, 0x7f0000001000ull);
    gf_wire_put_bytes(&w, blob, sizeof blob);
    gf_wire_put_bytes(&w, NULL, 0);
    gf_wire_put_str(&w, "cuMemAlloc_v2");
    gf_wire_put_str(&w, NULL);
    ASSERT_EQ_INT(gf_wire_writer_status(&w), GF_OK);

    gf_wire_reader r;
    gf_wire_reader_init(&r, w.buf, w.len);
    ASSERT_EQ_U64(gf_wire_get_u32(&r), 0);
    ASSERT_EQ_U64(gf_wire_get_u32(&r), UINT32_MAX);
    ASSERT_EQ_U64(gf_wire_get_u64(&r), UINT64_MAX);
    ASSERT_EQ_INT(gf_wire_get_i32(&r), INT32_MIN);
    ASSERT_TRUE(gf_wire_get_i64(&r) == INT64_MIN);
    ASSERT_NEAR(gf_wire_get_f64(&r), -1.5e300, 0);
    ASSERT_EQ_U64(gf_wire_get_handle(&r), 0x7f0000001000ull);
    const uint8_t *d;
    ASSERT_EQ_U64(gf_wire_get_bytes(&r, &d), 300);
    ASSERT_TRUE(!memcmp(d, blob, 300));
    uint8_t small[4];
    ASSERT_EQ_U64(gf_wire_get_bytes_into(&r, small, sizeof small), 0);
    char s[32];
    ASSERT_EQ_STR(gf_wire_get_str(&r, s, sizeof s), "cuMemAlloc_v2");
    ASSERT_EQ_STR(gf_wire_get_str(&r, s, sizeof s), "");
    ASSERT_EQ_INT(gf_wire_reader_status(&r, 1, NULL, 0), GF_OK);
    /* Past the end: sticky failure, zero values. */
    ASSERT_EQ_U64(gf_wire_get_u64(&r), 0);
    ASSERT_EQ_U64(gf_wire_get_u32(&r), 0);
    char err[256];
    ASSERT_EQ_INT(gf_wire_reader_status(&r, 0, err, sizeof err), GF_EPROTO);
    ASSERT_CONTAINS(err, "payload ends there");
    gf_wire_writer_free(&w);
}

TEST(wire_reader_fails_cleanly_on_every_truncation_and_wrong_tag)
{
    gf_wire_writer w;
    gf_wire_writer_init(&w, 0);
    gf_wire_put_u64(&w, 42);
    gf_wire_put_str(&w, "abcdef");
    gf_wire_put_bytes(&w, "xyz", 3);
    for (size_t cut = 0; cut < w.len; cut++) {
        /* A heap copy of exactly cut bytes, so ASan sees any read past it. */
        uint8_t *b = malloc(cut ? cut : 1);
        memcpy(b, w.buf, cut);
        gf_wire_reader r;
        gf_wire_reader_init(&r, b, cut);
        char s[16];
        const uint8_t *d;
        gf_wire_get_u64(&r);
        gf_wire_get_str(&r, s, sizeof s);
        gf_wire_get_bytes(&r, &d);
        ASSERT_MSG(gf_wire_reader_status(&r, 0, NULL, 0) == GF_EPROTO,
                   "cut at %zu: expected GF_EPROTO", cut);
        free(b);
    }
    char err[256];
    gf_wire_reader r;
    gf_wire_reader_init(&r, w.buf, w.len);
    gf_wire_get_u32(&r);
    ASSERT_EQ_INT(gf_wire_reader_status(&r, 0, err, sizeof err), GF_EPROTO);
    ASSERT_CONTAINS(err, "expected u32 at offset 0, found tag 2 (u64)");
    /* A string longer than the caller's buffer: GF_ERANGE, out = "". */
    gf_wire_reader_init(&r, w.buf, w.len);
    gf_wire_get_u64(&r);
    char tiny[4] = "zz";
    ASSERT_EQ_STR(gf_wire_get_str(&r, tiny, sizeof tiny), "");
    ASSERT_EQ_INT(gf_wire_reader_status(&r, 0, NULL, 0), GF_ERANGE);
    /* A length field claiming more than the buffer holds. */
    uint8_t bad[] = {GF_WIRE_T_BYTES, 0xff, 0xff, 0xff, 0x7f, 1, 2};
    const uint8_t *d;
    gf_wire_reader_init(&r, bad, sizeof bad);
    ASSERT_EQ_U64(gf_wire_get_bytes(&r, &d), 0);
    ASSERT_TRUE(d == NULL);
    ASSERT_EQ_INT(gf_wire_reader_status(&r, 0, err, sizeof err), GF_EPROTO);
    ASSERT_CONTAINS(err, "claims");
    /* Embedded NUL in a string. */
    uint8_t nul[] = {GF_WIRE_T_STR, 3, 0, 0, 0, 'a', 0, 'b'};
    char s[8];
    gf_wire_reader_init(&r, nul, sizeof nul);
    gf_wire_get_str(&r, s, sizeof s);
    ASSERT_EQ_INT(gf_wire_reader_status(&r, 0, NULL, 0), GF_EPROTO);
    gf_wire_writer_free(&w);
}

TEST(wire_fixed_writer_never_allocates_and_fails_sticky)
{
    uint8_t buf[12];
    gf_wire_writer w;
    gf_wire_writer_init_fixed(&w, buf, sizeof buf);
    gf_wire_put_u64(&w, 1); /* 9 bytes */
    gf_wire_put_u32(&w, 2); /* 5 more: does not fit */
    gf_wire_put_raw(&w, "x", 1);
    ASSERT_EQ_INT(gf_wire_writer_status(&w), GF_ENOSPC);
    ASSERT_EQ_U64(w.len, 9);
    gf_wire_writer_reset(&w);
    gf_wire_writer_end_frame(&w);
    ASSERT_EQ_INT(gf_wire_writer_status(&w), GF_EINVAL);
    /* Growable writer with a ceiling. */
    gf_wire_writer g;
    gf_wire_writer_init(&g, 100);
    uint8_t big[200] = {0};
    gf_wire_put_bytes(&g, big, 50);
    ASSERT_EQ_INT(gf_wire_writer_status(&g), GF_OK);
    gf_wire_put_bytes(&g, big, 50);
    ASSERT_EQ_INT(gf_wire_writer_status(&g), GF_ENOSPC);
    gf_wire_writer_free(&g);
}

TEST(wire_error_payload)
{
    gf_wire_writer w;
    gf_wire_writer_init(&w, 0);
    gf_wire_error_encode(&w, GF_EPERM, "no such allocation \"abc\"");
    gf_wire_frame f = {.hdr = {.payload_len = w.len}, .payload = w.buf};
    gf_status st;
    char msg[64];
    ASSERT_EQ_INT(gf_wire_error_decode(&f, &st, msg, sizeof msg), GF_OK);
    ASSERT_EQ_INT(st, GF_EPERM);
    ASSERT_EQ_STR(msg, "no such allocation \"abc\"");
    f.hdr.payload_len = 3;
    ASSERT_EQ_INT(gf_wire_error_decode(&f, &st, msg, sizeof msg), GF_EPROTO);
    gf_wire_writer_free(&w);
}

TEST(wire_addresses)
{
    gf_wire_addr a;
    char err[256];
    ASSERT_EQ_INT(gf_wire_parse_addr("GPUFUSE_REMOTE", "tcp://gpu-node-3:7000", &a, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(a.scheme, GF_WIRE_TCP);
    ASSERT_EQ_STR(a.host, "gpu-node-3");
    ASSERT_EQ_INT(a.port, 7000);
    ASSERT_EQ_INT(gf_wire_parse_addr("x", "tls://[::1]:443", &a, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(a.scheme, GF_WIRE_TLS);
    ASSERT_EQ_STR(a.host, "::1");
    ASSERT_EQ_INT(gf_wire_parse_addr("x", "shm://gpu0", &a, err, sizeof err), GF_OK);
    ASSERT_EQ_STR(a.path, "@gpufuse-gpu0");
    ASSERT_EQ_INT(gf_wire_parse_addr("x", "shm:///run/gf.sock", &a, err, sizeof err), GF_OK);
    ASSERT_EQ_STR(a.path, "/run/gf.sock");

    ASSERT_EQ_INT(gf_wire_parse_addr("GPUFUSE_REMOTE", "tpc://x", &a, err, sizeof err), GF_EINVAL);
    ASSERT_EQ_STR(err, "GPUFUSE_REMOTE=\"tpc://x\": unknown scheme \"tpc\"; use tcp://, tls:// or shm://");
    ASSERT_EQ_INT(gf_wire_parse_addr("GPUFUSE_REMOTE", "tcp://host", &a, err, sizeof err), GF_EINVAL);
    ASSERT_CONTAINS(err, "missing port");
    ASSERT_EQ_INT(gf_wire_parse_addr("GPUFUSE_REMOTE", "tcp://host:99999", &a, err, sizeof err), GF_EINVAL);
    ASSERT_CONTAINS(err, "port \"99999\"");
    ASSERT_EQ_INT(gf_wire_parse_addr("GPUFUSE_REMOTE", "tcp://::1:80", &a, err, sizeof err), GF_EINVAL);
    ASSERT_CONTAINS(err, "brackets");
    ASSERT_EQ_INT(gf_wire_parse_addr("GPUFUSE_REMOTE", "shm://a b", &a, err, sizeof err), GF_EINVAL);
    ASSERT_CONTAINS(err, "shm name");
    ASSERT_EQ_INT(gf_wire_parse_addr("GPUFUSE_REMOTE", "gpu-node:7000", &a, err, sizeof err), GF_EINVAL);
    ASSERT_CONTAINS(err, "missing scheme");
    ASSERT_EQ_INT(gf_wire_parse_addr("GPUFUSE_REMOTE", "", &a, err, sizeof err), GF_EINVAL);
}

TEST(wire_timeout_from_env)
{
    int ms;
    char err[256];
    unsetenv(GF_WIRE_TIMEOUT_ENV);
    ASSERT_EQ_INT(gf_wire_timeout_from_env(&ms, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(ms, GF_WIRE_TIMEOUT_MS_DEFAULT);
    setenv(GF_WIRE_TIMEOUT_ENV, "250ms", 1);
    ASSERT_EQ_INT(gf_wire_timeout_from_env(&ms, err, sizeof err), GF_OK);
    ASSERT_EQ_INT(ms, 250);
    setenv(GF_WIRE_TIMEOUT_ENV, "5", 1);
    ASSERT_EQ_INT(gf_wire_timeout_from_env(&ms, err, sizeof err), GF_EINVAL);
    ASSERT_CONTAINS(err, GF_WIRE_TIMEOUT_ENV);
    setenv(GF_WIRE_TIMEOUT_ENV, "2d", 1);
    ASSERT_TRUE(gf_wire_timeout_from_env(&ms, err, sizeof err) != GF_OK);
    setenv(GF_WIRE_TIMEOUT_ENV, "48h", 1);
    ASSERT_EQ_INT(gf_wire_timeout_from_env(&ms, err, sizeof err), GF_ERANGE);
}

static gf_wire_frame frame_of(gf_wire_writer *w, uint32_t kind)
{
    gf_wire_frame f = {.hdr = {.kind = kind, .payload_len = w->len}, .payload = w->buf};
    return f;
}

TEST(wire_hello_welcome_codec_and_checks)
{
    gf_wire_hello h, h2;
    gf_wire_hello_init(&h);
    snprintf(h.token, sizeof h.token, "s3cret");
    snprintf(h.client_name, sizeof h.client_name, "train.py@host-a");
    h.vram_bytes = 4ull << 30;
    h.compute_unit = GF_WIRE_COMPUTE_PERCENT;
    h.compute = 25;
    snprintf(h.gpu, sizeof h.gpu, "GPU-1234");
    gf_wire_writer w;
    gf_wire_writer_init(&w, 0);
    gf_wire_hello_encode(&w, &h);
    gf_wire_frame f = frame_of(&w, GF_WIRE_K_HELLO);
    char err[256];
    ASSERT_EQ_INT(gf_wire_hello_decode(&f, &h2, err, sizeof err), GF_OK);
    ASSERT_EQ_STR(h2.token, "s3cret");
    ASSERT_EQ_STR(h2.client_name, "train.py@host-a");
    ASSERT_EQ_U64(h2.vram_bytes, 4ull << 30);
    ASSERT_NEAR(h2.compute, 25, 0);
    ASSERT_EQ_STR(h2.gpu, "GPU-1234");
    ASSERT_EQ_INT(gf_wire_check_hello(&h2, "s3cret", err, sizeof err), GF_OK);
    ASSERT_EQ_INT(gf_wire_check_hello(&h2, "other", err, sizeof err), GF_EPERM);
    ASSERT_CONTAINS(err, "wrong token");
    ASSERT_EQ_INT(gf_wire_check_hello(&h2, NULL, err, sizeof err), GF_OK);
    h2.major = 2;
    ASSERT_EQ_INT(gf_wire_check_hello(&h2, "s3cret", err, sizeof err), GF_EPROTO);
    ASSERT_CONTAINS(err, "worker speaks gpufuse wire 1.1, client 2.1: upgrade the worker");
    /* Truncated HELLO. */
    f.hdr.payload_len = w.len - 3;
    ASSERT_EQ_INT(gf_wire_hello_decode(&f, &h2, err, sizeof err), GF_EPROTO);
    ASSERT_CONTAINS(err, "malformed HELLO");
    gf_wire_writer_reset(&w);

    gf_wire_welcome wl = {.accepted = 0, .major = 1}, wl2;
    snprintf(wl.reason, sizeof wl.reason, "wrong token");
    gf_wire_welcome_encode(&w, &wl);
    f = frame_of(&w, GF_WIRE_K_WELCOME);
    ASSERT_EQ_INT(gf_wire_welcome_decode(&f, &wl2, err, sizeof err), GF_OK);
    ASSERT_TRUE(!wl2.accepted);
    ASSERT_EQ_STR(wl2.reason, "wrong token");
    gf_wire_writer_free(&w);

    ASSERT_TRUE(gf_wire_token_equal("abc", "abc"));
    ASSERT_TRUE(!gf_wire_token_equal("abc", "abd"));
    ASSERT_TRUE(!gf_wire_token_equal("abc", "abcd"));
    ASSERT_TRUE(gf_wire_token_equal(NULL, ""));
}

TEST(wire_bulk_chunk_validation)
{
    gf_wire_bulk_rx rx;
    gf_wire_bulk_rx_init(&rx, 7, 10);
    uint8_t data[10] = "0123456789";
    gf_wire_frame f = {.hdr = {.kind = GF_WIRE_K_BULK, .request_id = 7, .flags = GF_WIRE_F_MORE,
                               .payload_len = 6},
                       .payload = data};
    uint64_t off;
    const uint8_t *d;
    size_t n;
    char err[256];
    ASSERT_EQ_INT(gf_wire_bulk_rx_chunk(&rx, &f, &off, &d, &n, err, sizeof err), GF_OK);
    ASSERT_EQ_U64(off, 0);
    ASSERT_EQ_U64(n, 6);
    f.hdr.payload_len = 5; /* overruns */
    f.hdr.flags = 0;
    ASSERT_EQ_INT(gf_wire_bulk_rx_chunk(&rx, &f, &off, &d, &n, err, sizeof err), GF_EPROTO);
    ASSERT_CONTAINS(err, "overruns");
    f.hdr.payload_len = 4;
    f.hdr.flags = GF_WIRE_F_MORE; /* last chunk must not say MORE */
    ASSERT_EQ_INT(gf_wire_bulk_rx_chunk(&rx, &f, &off, &d, &n, err, sizeof err), GF_EPROTO);
    f.hdr.flags = 0;
    f.hdr.request_id = 8;
    ASSERT_EQ_INT(gf_wire_bulk_rx_chunk(&rx, &f, &off, &d, &n, err, sizeof err), GF_EPROTO);
    f.hdr.request_id = 7;
    ASSERT_EQ_INT(gf_wire_bulk_rx_chunk(&rx, &f, &off, &d, &n, err, sizeof err), GF_OK);
    ASSERT_EQ_U64(off, 6);
    ASSERT_TRUE(rx.done);
}

TEST(wire_decoder_reused_large_buffer_stops_at_frame_boundary)
{
    /* A 2 MiB frame leaves a 2 MiB buffer behind; the small frames after it, arriving in the
     * same piece, must not be swallowed into that buffer's spare room. */
    size_t big = 2u << 20, slen;
    uint8_t *small = three_frames(&slen);
    uint8_t *s = malloc(GF_WIRE_HDR_SIZE + big + 2 * slen);
    gf_wire_hdr_encode(s, GF_WIRE_K_BULK, 0, 1, big);
    memset(s + GF_WIRE_HDR_SIZE, 0x5a, big);
    memcpy(s + GF_WIRE_HDR_SIZE + big, small, slen);
    memcpy(s + GF_WIRE_HDR_SIZE + big + slen, small, slen);
    size_t len = GF_WIRE_HDR_SIZE + big + 2 * slen, pos = 0;
    gf_wire_decoder d;
    gf_wire_decoder_init(&d, 0, 0);
    int got = 0;
    while (pos < len) {
        size_t used;
        int done;
        gf_wire_frame f;
        ASSERT_EQ_INT(gf_wire_decoder_feed(&d, s + pos, len - pos, &used, &done, &f, NULL, 0),
                      GF_OK);
        pos += used;
        if (done && got == 0) ASSERT_EQ_U64(f.hdr.payload_len, big);
        if (done && got > 0) check_three(&f, (got - 1) % 3);
        if (done) got++;
    }
    ASSERT_EQ_INT(got, 7);
    gf_wire_decoder_free(&d);
    free(s);
    free(small);
}
