/* SPDX-License-Identifier: Apache-2.0 */
/* Bulk transfers: a large buffer as a run of ordered BULK chunks, sent without copies and
 * received straight into the destination, so network and device copies can overlap. */
#include <stdio.h>

#include "wire/wire_internal.h"

gf_status gf_wire_bulk_send(gf_wire_conn *c, uint64_t request_id, const void *buf, size_t len,
                            size_t chunk, int timeout_ms, char *err, size_t errlen)
{
    if (chunk == 0) chunk = GF_WIRE_BULK_CHUNK_DEFAULT;
    if (chunk > c->dec.max_payload) chunk = (size_t)c->dec.max_payload;
    const uint8_t *p = buf;
    size_t off = 0;
    do {
        size_t n = len - off < chunk ? len - off : chunk;
        uint16_t fl = off + n < len ? GF_WIRE_F_MORE : 0;
        gf_status st = gf_wire_send(c, GF_WIRE_K_BULK, fl, request_id, p + off, n, timeout_ms,
                                    err, errlen);
        if (st != GF_OK) return st;
        off += n;
    } while (off < len);
    return GF_OK;
}

void gf_wire_bulk_rx_init(gf_wire_bulk_rx *rx, uint64_t request_id, uint64_t total)
{
    rx->request_id = request_id;
    rx->total = total;
    rx->received = 0;
    rx->done = 0;
}

gf_status gf_wire_bulk_rx_chunk(gf_wire_bulk_rx *rx, const gf_wire_frame *f, uint64_t *offset,
                                const uint8_t **data, size_t *n, char *err, size_t errlen)
{
    const gf_wire_hdr *h = &f->hdr;
    if (rx->done)
        return gf_wire__err(err, errlen, GF_EPROTO, "bulk transfer %llu already complete",
                            (unsigned long long)rx->request_id);
    if (h->kind != GF_WIRE_K_BULK || h->request_id != rx->request_id)
        return gf_wire__err(err, errlen, GF_EPROTO,
                            "expected a bulk chunk of request %llu, got kind 0x%x request %llu",
                            (unsigned long long)rx->request_id, h->kind,
                            (unsigned long long)h->request_id);
    uint64_t left = rx->total - rx->received;
    if (h->payload_len > left)
        return gf_wire__err(err, errlen, GF_EPROTO,
                            "bulk chunk of %llu bytes overruns transfer %llu (%llu of %llu "
                            "bytes left)",
                            (unsigned long long)h->payload_len,
                            (unsigned long long)rx->request_id, (unsigned long long)left,
                            (unsigned long long)rx->total);
    int more = (h->flags & GF_WIRE_F_MORE) != 0;
    if (more != (h->payload_len < left))
        return gf_wire__err(err, errlen, GF_EPROTO,
                            "bulk transfer %llu: chunk at %llu %s the MORE flag (%llu of %llu "
                            "bytes after it)",
                            (unsigned long long)rx->request_id,
                            (unsigned long long)rx->received, more ? "wrongly has" : "lacks",
                            (unsigned long long)(rx->received + h->payload_len),
                            (unsigned long long)rx->total);
    *offset = rx->received;
    *data = f->payload;
    *n = (size_t)h->payload_len;
    rx->received += h->payload_len;
    rx->done = !more;
    return GF_OK;
}

struct route_ctx {
    gf_wire_bulk_rx *rx;
    uint8_t *dst;
};

/* Places the payload of this transfer's next chunk directly at its destination. */
static void *route_chunk(void *ctx, const gf_wire_hdr *h)
{
    struct route_ctx *r = ctx;
    if (h->kind != GF_WIRE_K_BULK || h->request_id != r->rx->request_id ||
        h->payload_len > r->rx->total - r->rx->received)
        return NULL; /* not ours or oversized: lands in the decoder's buffer, then refused */
    return r->dst + r->rx->received;
}

gf_status gf_wire_bulk_recv(gf_wire_conn *c, uint64_t request_id, void *buf, size_t len,
                            int timeout_ms, char *err, size_t errlen)
{
    gf_wire_bulk_rx rx;
    gf_wire_bulk_rx_init(&rx, request_id, len);
    struct route_ctx rc = {&rx, buf};
    gf_wire_decoder_set_route(&c->dec, route_chunk, &rc);
    gf_status st = GF_OK;
    while (!rx.done) {
        gf_wire_frame f;
        st = gf_wire_recv(c, &f, timeout_ms, err, errlen);
        if (st != GF_OK) break;
        uint64_t off;
        const uint8_t *d;
        size_t n;
        char why[200];
        st = gf_wire_bulk_rx_chunk(&rx, &f, &off, &d, &n, why, sizeof why);
        if (st != GF_OK) {
            gf_wire__err(err, errlen, st, "from %s: %s", c->peer, why);
            break;
        }
        if (n && d != (const uint8_t *)buf + off) memcpy((uint8_t *)buf + off, d, n);
    }
    gf_wire_decoder_set_route(&c->dec, NULL, NULL);
    if (st != GF_OK && c->dec.routed && c->dec.state != 0 && !c->broken) {
        /* A chunk is half-received into buf, which the caller may free now: the rest of the
         * stream can no longer be placed, so this session is over. */
        c->broken = 1;
        c->broken_status = st;
        snprintf(c->ioerr, sizeof c->ioerr, "bulk transfer %llu from %.160s abandoned mid-chunk",
                 (unsigned long long)request_id, c->peer);
    }
    return st;
}
