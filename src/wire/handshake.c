/* SPDX-License-Identifier: Apache-2.0 */
/* The session handshake: HELLO/WELCOME payloads, the server's checks (major version, token in
 * constant time) and blocking client/server helpers that report refusals on both ends. */
#include <stdio.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "wire/wire_internal.h"

void gf_wire_hello_init(gf_wire_hello *h)
{
    memset(h, 0, sizeof *h);
    h->major = GF_WIRE_MAJOR;
    h->minor = GF_WIRE_MINOR;
}

/* HELLO v1: u32 major, u32 minor (frozen for all majors), then str token, str client_name,
 * str allocation_id, u64 vram_bytes, u32 compute_unit, f64 compute, str gpu. */
void gf_wire_hello_encode(gf_wire_writer *w, const gf_wire_hello *h)
{
    gf_wire_put_u32(w, h->major);
    gf_wire_put_u32(w, h->minor);
    gf_wire_put_str(w, h->token);
    gf_wire_put_str(w, h->client_name);
    gf_wire_put_str(w, h->allocation_id);
    gf_wire_put_u64(w, h->vram_bytes);
    gf_wire_put_u32(w, h->compute_unit);
    gf_wire_put_f64(w, h->compute);
    gf_wire_put_str(w, h->gpu);
}

gf_status gf_wire_hello_decode(const gf_wire_frame *f, gf_wire_hello *h, char *err,
                               size_t errlen)
{
    gf_wire_reader r;
    memset(h, 0, sizeof *h);
    if (f->hdr.kind != GF_WIRE_K_HELLO)
        return gf_wire__err(err, errlen, GF_EPROTO,
                            "expected HELLO as the first frame, got kind 0x%x", f->hdr.kind);
    gf_wire_reader_init_frame(&r, f);
    uint32_t major = gf_wire_get_u32(&r), minor = gf_wire_get_u32(&r);
    if (r.status == GF_OK && (major > 255 || minor > 255))
        return gf_wire__err(err, errlen, GF_EPROTO, "HELLO: version %u.%u out of range", major,
                            minor);
    h->major = (uint8_t)major;
    h->minor = (uint8_t)minor;
    if (r.status == GF_OK && major != GF_WIRE_MAJOR) return GF_OK; /* nothing else is ours */
    gf_wire_get_str(&r, h->token, sizeof h->token);
    gf_wire_get_str(&r, h->client_name, sizeof h->client_name);
    gf_wire_get_str(&r, h->allocation_id, sizeof h->allocation_id);
    h->vram_bytes = gf_wire_get_u64(&r);
    h->compute_unit = gf_wire_get_u32(&r);
    h->compute = gf_wire_get_f64(&r);
    gf_wire_get_str(&r, h->gpu, sizeof h->gpu);
    char why[160];
    if (gf_wire_reader_status(&r, 0, why, sizeof why) != GF_OK)
        return gf_wire__err(err, errlen, GF_EPROTO, "malformed HELLO: %s", why);
    if (h->compute_unit > GF_WIRE_COMPUTE_PERCENT || h->compute != h->compute || h->compute < 0 ||
        (h->compute_unit == GF_WIRE_COMPUTE_PERCENT && h->compute > 100))
        return gf_wire__err(err, errlen, GF_EPROTO, "HELLO: bad compute limit %g (unit %u)",
                            h->compute, h->compute_unit);
    return GF_OK;
}

/* WELCOME v1: u32 accepted, str reason, u32 status (frozen for all majors), then
 * u64 session_id, u32 major, u32 minor, str server_version. */
void gf_wire_welcome_encode(gf_wire_writer *w, const gf_wire_welcome *wl)
{
    gf_wire_put_u32(w, wl->accepted ? 1 : 0);
    gf_wire_put_str(w, wl->reason);
    gf_wire_put_u32(w, (uint32_t)wl->status);
    gf_wire_put_u64(w, wl->session_id);
    gf_wire_put_u32(w, wl->major);
    gf_wire_put_u32(w, wl->minor);
    gf_wire_put_str(w, wl->server_version);
}

gf_status gf_wire_welcome_decode(const gf_wire_frame *f, gf_wire_welcome *wl, char *err,
                                 size_t errlen)
{
    gf_wire_reader r;
    memset(wl, 0, sizeof *wl);
    if (f->hdr.kind != GF_WIRE_K_WELCOME)
        return gf_wire__err(err, errlen, GF_EPROTO, "expected WELCOME, got kind 0x%x",
                            f->hdr.kind);
    gf_wire_reader_init_frame(&r, f);
    wl->accepted = gf_wire_get_u32(&r) == 1;
    /* A reason longer than our buffer is cut, not an error: it is for humans. */
    size_t at = r.pos;
    if (at < r.len && r.buf[at] == GF_WIRE_T_STR && r.len - at >= 5) {
        uint32_t sl = gf_wire__get32(r.buf + at + 1);
        if (sl <= r.len - at - 5) {
            size_t k = sl < sizeof wl->reason - 1 ? sl : sizeof wl->reason - 1;
            memcpy(wl->reason, r.buf + at + 5, k);
            wl->reason[k] = 0;
            for (size_t i = 0; i < k; i++)
                if (!wl->reason[i] || wl->reason[i] == '\n') wl->reason[i] = ' ';
            r.pos = at + 5 + sl;
        } else {
            r.status = GF_EPROTO;
            snprintf(r.msg, sizeof r.msg, "reason string truncated");
        }
    } else if (r.status == GF_OK) {
        r.status = GF_EPROTO;
        snprintf(r.msg, sizeof r.msg, "reason string missing");
    }
    if (r.status != GF_OK) r.pos = r.len;
    char why[160];
    uint32_t rs = gf_wire_get_u32(&r);
    wl->status = wl->accepted ? GF_OK : (rs == GF_OK || rs > 0xffff) ? GF_EPERM : (gf_status)rs;
    if (!wl->accepted && r.status == GF_OK) { /* a refusal from any major: the reason is enough */
        if (r.pos < r.len) {
            wl->session_id = gf_wire_get_u64(&r);
            uint32_t ma = gf_wire_get_u32(&r), mi = gf_wire_get_u32(&r);
            wl->major = (uint8_t)ma;
            wl->minor = (uint8_t)mi;
        }
        return GF_OK;
    }
    wl->session_id = gf_wire_get_u64(&r);
    uint32_t ma = gf_wire_get_u32(&r), mi = gf_wire_get_u32(&r);
    gf_wire_get_str(&r, wl->server_version, sizeof wl->server_version);
    if (gf_wire_reader_status(&r, 0, why, sizeof why) != GF_OK)
        return gf_wire__err(err, errlen, GF_EPROTO, "malformed WELCOME: %s", why);
    if (ma > 255 || mi > 255)
        return gf_wire__err(err, errlen, GF_EPROTO, "WELCOME: version %u.%u out of range", ma, mi);
    wl->major = (uint8_t)ma;
    wl->minor = (uint8_t)mi;
    return GF_OK;
}

int gf_wire_token_equal(const char *a, const char *b)
{
    unsigned char da[32], db[32];
    unsigned int la = 0, lb = 0;
    if (!a) a = "";
    if (!b) b = "";
    if (!EVP_Digest(a, strlen(a), da, &la, EVP_sha256(), NULL) ||
        !EVP_Digest(b, strlen(b), db, &lb, EVP_sha256(), NULL) || la != 32 || lb != 32)
        return 0; /* fail closed */
    return CRYPTO_memcmp(da, db, 32) == 0;
}

gf_status gf_wire_check_hello(const gf_wire_hello *h, const char *expected_token, char *reason,
                              size_t cap)
{
    if (h->major != GF_WIRE_MAJOR)
        return gf_wire__err(reason, cap, GF_EPROTO,
                            "worker speaks gpufuse wire %u.%u, client %u.%u: upgrade the %s so "
                            "both speak wire %u.x",
                            GF_WIRE_MAJOR, GF_WIRE_MINOR, h->major, h->minor,
                            h->major < GF_WIRE_MAJOR ? "client" : "worker",
                            h->major < GF_WIRE_MAJOR ? GF_WIRE_MAJOR : h->major);
    if (expected_token && *expected_token && !gf_wire_token_equal(h->token, expected_token))
        return gf_wire__err(reason, cap, GF_EPERM,
                            "wrong token%s: give the client the worker's token "
                            "(GPUFUSE_REMOTE_TOKEN, or the worker's --token-file)",
                            h->token[0] ? "" : " (none sent)");
    return GF_OK;
}

gf_status gf_wire_client_handshake(gf_wire_conn *c, const gf_wire_hello *h, gf_wire_welcome *wl,
                                   char *err, size_t errlen)
{
    uint8_t buf[1024];
    gf_wire_writer w;
    gf_wire_writer_init_fixed(&w, buf, sizeof buf);
    gf_wire_hello_encode(&w, h);
    if (w.status != GF_OK)
        return gf_wire__err(err, errlen, GF_EINVAL, "HELLO does not fit %zu bytes", sizeof buf);
    gf_wire_frame f;
    gf_status st = gf_wire_call(c, GF_WIRE_K_HELLO, 1, w.buf, w.len, &f, -1, err, errlen);
    if (st != GF_OK) return st;
    char why[200];
    st = gf_wire_welcome_decode(&f, wl, why, sizeof why);
    if (st != GF_OK)
        return gf_wire__err(err, errlen, st, "handshake with %s: %s", c->peer, why);
    if (!wl->accepted)
        return gf_wire__err(err, errlen, wl->status, "worker %s refused the session: %s",
                            c->peer, wl->reason);
    if (wl->major != GF_WIRE_MAJOR)
        return gf_wire__err(err, errlen, GF_EPROTO,
                            "worker %s speaks gpufuse wire %u.%u, client %u.%u: upgrade so both "
                            "speak the same major version",
                            c->peer, wl->major, wl->minor, GF_WIRE_MAJOR, GF_WIRE_MINOR);
    c->session_id = wl->session_id;
    c->peer_minor = wl->minor;
    c->dec.expect_major = GF_WIRE_MAJOR;
    return GF_OK;
}

gf_status gf_wire_server_answer(gf_wire_conn *c, uint64_t request_id, const gf_wire_hello *h,
                                uint64_t session_id, const char *server_version,
                                gf_status status, const char *reason, int timeout_ms, char *err,
                                size_t errlen)
{
    gf_wire_welcome wl;
    memset(&wl, 0, sizeof wl);
    wl.accepted = status == GF_OK;
    wl.status = status;
    if (!wl.accepted)
        snprintf(wl.reason, sizeof wl.reason, "%s", reason && *reason ? reason : gf_strerror(status));
    wl.session_id = wl.accepted ? session_id : 0;
    wl.major = GF_WIRE_MAJOR;
    wl.minor = GF_WIRE_MINOR;
    snprintf(wl.server_version, sizeof wl.server_version, "%s",
             server_version ? server_version : "");
    uint8_t buf[1024];
    gf_wire_writer w;
    gf_wire_writer_init_fixed(&w, buf, sizeof buf);
    gf_wire_welcome_encode(&w, &wl);
    gf_status st = gf_wire_send(c, GF_WIRE_K_WELCOME, GF_WIRE_F_REPLY, request_id, w.buf, w.len,
                                timeout_ms, err, errlen);
    if (st != GF_OK) return st;
    if (wl.accepted) {
        c->session_id = session_id;
        c->peer_minor = h ? h->minor : 0;
        c->dec.expect_major = GF_WIRE_MAJOR;
    }
    return GF_OK;
}

gf_status gf_wire_server_handshake(gf_wire_conn *c, const char *expected_token,
                                   uint64_t session_id, const char *server_version,
                                   gf_wire_hello *h, int timeout_ms, char *err, size_t errlen)
{
    gf_wire_frame f;
    gf_status st = gf_wire_recv(c, &f, timeout_ms, err, errlen);
    if (st != GF_OK) return st;
    char why[256];
    st = gf_wire_hello_decode(&f, h, why, sizeof why);
    if (st == GF_OK) st = gf_wire_check_hello(h, expected_token, why, sizeof why);
    if (st != GF_OK) {
        gf_wire_server_answer(c, f.hdr.request_id, h, 0, server_version, st, why, timeout_ms,
                              NULL, 0);
        return gf_wire__err(err, errlen, st, "refused %s (%s): %s", c->peer,
                            h->client_name[0] ? h->client_name : "unnamed client", why);
    }
    return gf_wire_server_answer(c, f.hdr.request_id, h, session_id, server_version, GF_OK,
                                 NULL, timeout_ms, err, errlen);
}
