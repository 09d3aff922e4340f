/* SPDX-License-Identifier: Apache-2.0 */
/* gf_wire: the gpufuse wire protocol (frames, payload codec, handshake, bulk transfers) and its
 * transports (tcp://, tls://, shm://) — the contract the worker and the client's remote backend
 * are built on. The protocol itself is specified in docs/wire.md; this header is its C API.
 *
 * Conventions of every function here:
 *   - returns a gf_status; results go through out-parameters;
 *   - `err`/`errlen` is a caller-owned buffer (may be NULL/0) that receives a one-line message
 *     naming what failed, the value involved and what to do, whenever the status is not GF_OK
 *     (except GF_EBUSY "would block", which carries no message: it is not an error);
 *   - timeouts are in milliseconds: > 0 a deadline for the whole call, 0 "do not block" (the
 *     event-loop mode: the call does what it can now and answers GF_EBUSY for "nothing yet"),
 *     GF_WIRE_TIMEOUT_DEFAULT (-1) the connection's default (gf_wire_opts.timeout_ms).
 *   - Nothing here is thread-safe per object: one thread uses a gf_wire_conn at a time (the
 *     client's remote backend serializes with its own lock; the worker owns its conns in one
 *     event loop). Different objects may be used from different threads freely.
 *   - Nothing here installs signal handlers or writes to stdout/stderr (the caller logs).
 */
#ifndef GPUFUSE_WIRE_H
#define GPUFUSE_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "gpufuse/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ============================================================================================
 * Versions and limits
 * ============================================================================================ */

/* The protocol version this build speaks. A different MAJOR is refused at the handshake; a
 * different MINOR is accepted (a newer minor only adds kinds, flags, trailing header bytes and
 * trailing payload fields that an older peer ignores). */
#define GF_WIRE_MAJOR 1
#define GF_WIRE_MINOR 1

/* "GFW1" read as a little-endian u32 ('G' first on the wire). Frozen forever. */
#define GF_WIRE_MAGIC 0x31574647u

/* Bytes of the v1 frame header. A peer may send a larger header_size (a later minor appends
 * fields); receivers skip the bytes they do not know, up to GF_WIRE_HDR_MAX. */
#define GF_WIRE_HDR_SIZE 32u
#define GF_WIRE_HDR_MAX 256u

/* Default and hard ceiling of a frame's payload. The default bounds what a malformed or hostile
 * length can make a receiver allocate; it is configurable per connection (gf_wire_opts) and
 * never above GF_WIRE_MAX_PAYLOAD_LIMIT. */
#define GF_WIRE_MAX_PAYLOAD_DEFAULT (64u << 20)
#define GF_WIRE_MAX_PAYLOAD_LIMIT (1u << 30)

/* Chunk size of bulk transfers unless the caller picks another (see "Bulk transfers"). */
#define GF_WIRE_BULK_CHUNK_DEFAULT (1u << 20)

/* Default deadline of a blocking call, and the variable that overrides it (a duration:
 * "5s", "250ms", "2m"; see gf_wire_timeout_from_env). */
#define GF_WIRE_TIMEOUT_MS_DEFAULT 5000
#define GF_WIRE_TIMEOUT_ENV "GPUFUSE_REMOTE_TIMEOUT"
#define GF_WIRE_TIMEOUT_DEFAULT (-1)

/* ============================================================================================
 * Frames
 *
 * Every message is one frame: a fixed little-endian header, then payload_len payload bytes.
 *
 *   offset size field
 *        0    4 magic        GF_WIRE_MAGIC
 *        4    1 major        GF_WIRE_MAJOR of the sender
 *        5    1 minor        GF_WIRE_MINOR of the sender
 *        6    2 flags        GF_WIRE_F_*
 *        8    4 kind         GF_WIRE_K_* (protocol) or an opcode from an application range
 *       12    4 header_size  32 in v1; receivers skip bytes [32, header_size)
 *       16    8 request_id   pairs a reply with its request; 0 = not part of a call
 *       24    8 payload_len  bytes after the header; <= the receiver's max payload
 * ============================================================================================ */

/* Frame flags. Receivers ignore bits they do not know (a later minor may add advisory bits). */
#define GF_WIRE_F_REPLY 0x0001u   /* this frame answers the request with the same request_id */
#define GF_WIRE_F_ERROR 0x0002u   /* a reply whose payload is gf_wire_error_encode's */
#define GF_WIRE_F_NOREPLY 0x0004u /* async request: the sender waits for no reply (batching) */
#define GF_WIRE_F_MORE 0x0008u    /* bulk chunk: more chunks of this transfer follow */

/* Frame kinds. Kinds below 0x1000 belong to this protocol layer; the ranges above are handed
 * to the layers built on it, which assign opcodes inside them (and document them). */
#define GF_WIRE_K_HELLO 0x0001u   /* client -> server, first frame: gf_wire_hello */
#define GF_WIRE_K_WELCOME 0x0002u /* server -> client, answer to HELLO: gf_wire_welcome */
#define GF_WIRE_K_PING 0x0003u    /* either way; answered by PONG with the same payload */
#define GF_WIRE_K_PONG 0x0004u
#define GF_WIRE_K_GOODBYE 0x0005u /* orderly close: the sender sends nothing more */
#define GF_WIRE_K_ERROR 0x0006u   /* a protocol error report sent just before closing */
#define GF_WIRE_K_BULK 0x0007u    /* one chunk of a bulk transfer (see "Bulk transfers") */
#define GF_WIRE_K_CUDA_FIRST 0x1000u /* CUDA driver API calls: 0x1000-0x1fff (remote backend) */
#define GF_WIRE_K_CUDA_LAST 0x1fffu
#define GF_WIRE_K_NVML_FIRST 0x2000u /* NVML calls: 0x2000-0x2fff */
#define GF_WIRE_K_NVML_LAST 0x2fffu
#define GF_WIRE_K_CTL_FIRST 0x3000u /* gpufuse session control (stats, limits): 0x3000-0x3fff */
#define GF_WIRE_K_CTL_LAST 0x3fffu

/* A decoded frame header (host byte order). */
typedef struct gf_wire_hdr {
    uint8_t major;
    uint8_t minor;
    uint16_t flags;
    uint32_t kind;
    uint32_t header_size; /* as sent; gf_wire_hdr_encode always writes GF_WIRE_HDR_SIZE */
    uint64_t request_id;
    uint64_t payload_len;
} gf_wire_hdr;

/* A received frame: the header and its payload. The payload is owned by whatever produced the
 * frame (the decoder or the connection) and stays valid until the next receive on it; copy it,
 * or steal it with gf_wire_decoder_take_payload, to keep it longer. payload is NULL when
 * payload_len is 0. */
typedef struct gf_wire_frame {
    gf_wire_hdr hdr;
    uint8_t *payload;
} gf_wire_frame;

/* Writes the 32-byte v1 header for (kind, flags, request_id, payload_len) with this build's
 * magic and version into out. Cannot fail. */
void gf_wire_hdr_encode(uint8_t out[GF_WIRE_HDR_SIZE], uint32_t kind, uint16_t flags,
                        uint64_t request_id, uint64_t payload_len);

/* Parses and validates the fixed part of a header from buf (len >= GF_WIRE_HDR_SIZE bytes):
 * the magic, 32 <= header_size <= GF_WIRE_HDR_MAX, payload_len <= max_payload, and — when
 * expect_major is not 0 — major == expect_major. GF_EPROTO with a message for any violation;
 * GF_EINVAL when len is short. Reads only the first GF_WIRE_HDR_SIZE bytes. */
gf_status gf_wire_hdr_decode(const void *buf, size_t len, uint64_t max_payload,
                             uint8_t expect_major, gf_wire_hdr *out, char *err, size_t errlen);

/* Incremental frame decoder: feed it the byte stream in pieces of any size (a partial read,
 * one byte at a time, several frames at once) and it yields whole frames. It never trusts a
 * length: a header is validated before any payload memory is reserved, and the payload buffer
 * grows with the bytes that actually arrive, so a hostile length costs nothing. After a
 * GF_EPROTO the decoder stays failed (every later feed returns GF_EPROTO): close the session.
 * The struct is public so it can live inside another struct; treat its fields as private. */
typedef void *(*gf_wire_route_fn)(void *ctx, const gf_wire_hdr *hdr);
typedef struct gf_wire_decoder {
    uint64_t max_payload;
    uint8_t expect_major; /* 0 = any major (before the handshake) */
    int failed;
    int state;            /* private */
    uint8_t hdr_buf[GF_WIRE_HDR_MAX];
    size_t hdr_have;
    gf_wire_hdr hdr;
    uint8_t *payload;     /* malloc'd, owned by the decoder unless routed */
    size_t payload_cap;
    uint64_t payload_have;
    uint8_t *routed;      /* set when route() supplied the destination of this payload */
    gf_wire_route_fn route;
    void *route_ctx;
} gf_wire_decoder;

/* Initializes d (no allocation yet). max_payload 0 means GF_WIRE_MAX_PAYLOAD_DEFAULT; it is
 * clamped to GF_WIRE_MAX_PAYLOAD_LIMIT. expect_major 0 accepts any major. */
void gf_wire_decoder_init(gf_wire_decoder *d, uint64_t max_payload, uint8_t expect_major);

/* Frees the decoder's buffers; d may be re-initialized afterwards. */
void gf_wire_decoder_free(gf_wire_decoder *d);

/* Consumes bytes from data[0..len) and stops at the end of the first complete frame:
 * *used = bytes consumed (<= len); *done = 1 when a frame completed, and then *f describes it
 * (its payload owned by the decoder until the next feed). Call again with the rest of the data
 * to get the next frame. GF_EPROTO (message in err) on a malformed header; GF_ENOMEM when the
 * payload buffer cannot grow. A frame with an empty payload completes with the last byte of
 * its header. */
gf_status gf_wire_decoder_feed(gf_wire_decoder *d, const void *data, size_t len, size_t *used,
                               int *done, gf_wire_frame *f, char *err, size_t errlen);

/* Where the decoder wants its next bytes: a pointer and how many it can take without crossing
 * a frame boundary. Lets a transport read straight into the payload (no copy) when a large
 * payload is pending; after writing n bytes there call gf_wire_decoder_commit(d, n, ...),
 * which behaves like gf_wire_decoder_feed for those bytes. */
void gf_wire_decoder_window(gf_wire_decoder *d, uint8_t **ptr, size_t *len);
gf_status gf_wire_decoder_commit(gf_wire_decoder *d, size_t n, int *done, gf_wire_frame *f,
                                 char *err, size_t errlen);

/* Gives the payload of the frame just completed to the caller (free() it); the decoder starts
 * the next payload in a fresh buffer. NULL when the payload was empty or routed. */
uint8_t *gf_wire_decoder_take_payload(gf_wire_decoder *d);

/* Optional: called once per frame after its header validated; returning a non-NULL pointer to
 * at least hdr->payload_len writable bytes makes the decoder put the payload there instead of
 * its own buffer (zero-copy receive of bulk chunks into their destination). */
void gf_wire_decoder_set_route(gf_wire_decoder *d, gf_wire_route_fn fn, void *ctx);

/* ============================================================================================
 * Payload codec
 *
 * A payload is a sequence of tagged values: one tag byte, then the value, little-endian.
 *   u32 (tag 1, 4 bytes)  u64 (2, 8)  i32 (3, 4)  i64 (4, 8)  f64 (5, 8: IEEE-754 bits)
 *   handle (6, 8: an opaque 64-bit id: CUdeviceptr, CUstream, ... as the worker minted it)
 *   bytes (7, u32 length + bytes)  string (8, u32 length + bytes, no NUL; valid UTF-8 is not
 *   checked, an embedded NUL is refused on read).
 * The tags make a client/worker disagreement fail loudly (GF_EPROTO "expected u64, found
 * string at offset 12") instead of silently misreading.
 * ============================================================================================ */

enum gf_wire_tag {
    GF_WIRE_T_U32 = 1,
    GF_WIRE_T_U64 = 2,
    GF_WIRE_T_I32 = 3,
    GF_WIRE_T_I64 = 4,
    GF_WIRE_T_F64 = 5,
    GF_WIRE_T_HANDLE = 6,
    GF_WIRE_T_BYTES = 7,
    GF_WIRE_T_STR = 8,
};

/* Encoder over a buffer. Either growable (gf_wire_writer_init: malloc'ed, grows up to max) or
 * fixed (gf_wire_writer_init_fixed: the caller's array, never allocates — for hot paths).
 * Errors are sticky: after the first failure (GF_ENOSPC past the limit, GF_ENOMEM) every put is
 * a no-op and gf_wire_writer_status reports it, so an encoder can put all fields and check
 * once. The struct is public for embedding; treat fields as private. */
typedef struct gf_wire_writer {
    uint8_t *buf;
    size_t len;
    size_t cap;
    size_t max;      /* growth ceiling */
    int owned;       /* buf is malloc'ed by the writer */
    gf_status status;
    size_t frame_at; /* offset of the frame opened by gf_wire_writer_begin_frame, or SIZE_MAX */
} gf_wire_writer;

/* Growable writer; max 0 means GF_WIRE_MAX_PAYLOAD_DEFAULT + GF_WIRE_HDR_SIZE. Allocates
 * lazily. Free with gf_wire_writer_free. */
void gf_wire_writer_init(gf_wire_writer *w, size_t max);
/* Writer over buf[0..cap) owned by the caller; never allocates. */
void gf_wire_writer_init_fixed(gf_wire_writer *w, void *buf, size_t cap);
/* Frees a growable writer's buffer (no-op for fixed). */
void gf_wire_writer_free(gf_wire_writer *w);
/* Empties the writer (keeps its buffer) and clears its error. */
void gf_wire_writer_reset(gf_wire_writer *w);
/* Gives the growable buffer to the caller (free() it) and empties the writer; *len its size. */
uint8_t *gf_wire_writer_take(gf_wire_writer *w, size_t *len);

void gf_wire_put_u32(gf_wire_writer *w, uint32_t v);
void gf_wire_put_u64(gf_wire_writer *w, uint64_t v);
void gf_wire_put_i32(gf_wire_writer *w, int32_t v);
void gf_wire_put_i64(gf_wire_writer *w, int64_t v);
void gf_wire_put_f64(gf_wire_writer *w, double v);
void gf_wire_put_handle(gf_wire_writer *w, uint64_t h);
/* len > UINT32_MAX sets GF_ERANGE. data may be NULL when len is 0. */
void gf_wire_put_bytes(gf_wire_writer *w, const void *data, size_t len);
/* s NULL is encoded as "". */
void gf_wire_put_str(gf_wire_writer *w, const char *s);
/* Raw bytes without a tag (frame headers, bulk data). */
void gf_wire_put_raw(gf_wire_writer *w, const void *data, size_t len);

/* Frames inside a writer, so that one buffer can hold many whole frames for one write (the
 * batching path): begin reserves a header, the puts fill the payload, end patches the header's
 * payload_len. Frames cannot nest (GF_EINVAL). */
void gf_wire_writer_begin_frame(gf_wire_writer *w, uint32_t kind, uint16_t flags,
                                uint64_t request_id);
void gf_wire_writer_end_frame(gf_wire_writer *w);

/* GF_OK, or the first error of the writer. */
gf_status gf_wire_writer_status(const gf_wire_writer *w);

/* Bounds-checked reader over buf[0..len) (not copied: the buffer must outlive the reader).
 * Every get checks the tag and the remaining length first; on any failure the reader becomes
 * failed (sticky), the out-value is zeroed and every later get fails too, so a decoder can read
 * all fields and check gf_wire_reader_status once. Never reads outside the buffer. */
typedef struct gf_wire_reader {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    gf_status status;
    char msg[128]; /* why it failed: "expected u64 at offset 9, found tag 8 (string)" */
} gf_wire_reader;

void gf_wire_reader_init(gf_wire_reader *r, const void *buf, size_t len);
/* Convenience: a reader over a received frame's payload. */
void gf_wire_reader_init_frame(gf_wire_reader *r, const gf_wire_frame *f);

uint32_t gf_wire_get_u32(gf_wire_reader *r);
uint64_t gf_wire_get_u64(gf_wire_reader *r);
int32_t gf_wire_get_i32(gf_wire_reader *r);
int64_t gf_wire_get_i64(gf_wire_reader *r);
double gf_wire_get_f64(gf_wire_reader *r);
uint64_t gf_wire_get_handle(gf_wire_reader *r);
/* Points *data into the reader's buffer (no copy); returns the length. *data = NULL on error. */
size_t gf_wire_get_bytes(gf_wire_reader *r, const uint8_t **data);
/* Copies a bytes value into out[0..cap); a longer value fails the reader (GF_ERANGE). */
size_t gf_wire_get_bytes_into(gf_wire_reader *r, void *out, size_t cap);
/* Copies a string into out[0..cap) NUL-terminated; a value that does not fit (with its NUL) or
 * holds a NUL fails the reader (GF_ERANGE / GF_EPROTO) and leaves out = "". Returns out. */
char *gf_wire_get_str(gf_wire_reader *r, char *out, size_t cap);
/* Raw untagged bytes: points *data into the buffer; fails when fewer than n remain. */
int gf_wire_get_raw(gf_wire_reader *r, const uint8_t **data, size_t n);

/* Bytes not read yet (0 after a failure). */
size_t gf_wire_reader_remaining(const gf_wire_reader *r);
/* GF_OK, or the first failure (GF_EPROTO for truncation/bad tag, GF_ERANGE for a value larger
 * than the caller's buffer); when not GF_OK copies the reason into err. Pass require_end = 1 to
 * also fail (GF_EPROTO) when unread bytes remain — but note that a newer minor may append
 * fields, so decoders of replies normally pass 0. */
gf_status gf_wire_reader_status(const gf_wire_reader *r, int require_end, char *err,
                                size_t errlen);

/* Error payload (frames with GF_WIRE_F_ERROR, and GF_WIRE_K_ERROR): {u32 status, string msg}.
 * encode appends to w; decode fills *status/msg (msg[0..cap)) and fails GF_EPROTO when the
 * payload is not one. */
void gf_wire_error_encode(gf_wire_writer *w, gf_status status, const char *msg);
gf_status gf_wire_error_decode(const gf_wire_frame *f, gf_status *status, char *msg,
                               size_t cap);

/* ============================================================================================
 * Addresses
 *   tcp://HOST:PORT   HOST a name, an IPv4 address, or [an IPv6 address]; PORT 0-65535
 *                     (0 when listening = an ephemeral port; gf_wire_listener_addr tells it)
 *   tls://HOST:PORT   the same, encrypted with TLS >= 1.2 (OpenSSL)
 *   shm://NAME        same machine: NAME [A-Za-z0-9._-]{1,64}; the worker listens on the
 *                     abstract unix socket "@gpufuse-NAME"
 *   shm:///PATH       same machine, the listening unix socket at the absolute PATH
 * ============================================================================================ */

typedef enum gf_wire_scheme {
    GF_WIRE_TCP = 1,
    GF_WIRE_TLS = 2,
    GF_WIRE_SHM = 3,
} gf_wire_scheme;

typedef struct gf_wire_addr {
    gf_wire_scheme scheme;
    char host[256];  /* tcp/tls: without brackets */
    uint16_t port;   /* tcp/tls */
    char path[108];  /* shm: the unix socket; starts with '@' for an abstract name */
} gf_wire_addr;

/* Parses text into *out. `what` names where the text came from, for the message:
 * gf_wire_parse_addr("GPUFUSE_REMOTE", "tpc://x", ...) fails GF_EINVAL with
 * `GPUFUSE_REMOTE="tpc://x": unknown scheme "tpc"; use tcp://, tls:// or shm://`. */
gf_status gf_wire_parse_addr(const char *what, const char *text, gf_wire_addr *out, char *err,
                             size_t errlen);

/* Reads GF_WIRE_TIMEOUT_ENV into *ms (GF_WIRE_TIMEOUT_MS_DEFAULT when unset or empty).
 * GF_EINVAL/GF_ERANGE with a message naming the variable for a bad value (not a duration,
 * 0, or more than a day). */
gf_status gf_wire_timeout_from_env(int *ms, char *err, size_t errlen);

/* ============================================================================================
 * Connections and listeners
 * ============================================================================================ */

/* Options of a connection or listener. Start from gf_wire_opts_init; zero fields take the
 * defaults listed. Strings are copied by connect/listen. */
typedef struct gf_wire_opts {
    int timeout_ms;            /* default deadline of blocking calls (5000) */
    uint64_t max_payload;      /* largest payload accepted (GF_WIRE_MAX_PAYLOAD_DEFAULT) */
    uint64_t max_queue;        /* outgoing bytes a conn may hold queued before a send fails
                                  GF_ENOSPC "peer is not reading" (256 MiB) */
    int sockbuf_bytes;         /* tcp/tls SO_SNDBUF and SO_RCVBUF (4 MiB; the kernel caps it) */
    uint32_t shm_ring_bytes;   /* shm listener: bytes of each ring, a power of two between
                                  64 KiB and 1 GiB (8 MiB) */
    /* tls:// only */
    const char *tls_cert_file; /* listener: PEM certificate (chain) — required */
    const char *tls_key_file;  /* listener: PEM private key — required */
    const char *tls_ca_file;   /* client: PEM CA bundle to verify the worker against; NULL =
                                  the system store */
    const char *tls_server_name; /* client: name to verify and send as SNI (default: HOST) */
    int tls_insecure_skip_verify; /* client: 1 = accept any certificate. Only when a user
                                     asked for it explicitly; never a default. */
} gf_wire_opts;

/* Fills o with the defaults (timeout_ms from GF_WIRE_TIMEOUT_MS_DEFAULT, not the environment:
 * call gf_wire_timeout_from_env and store the result to honor GPUFUSE_REMOTE_TIMEOUT). */
void gf_wire_opts_init(gf_wire_opts *o);

typedef struct gf_wire_conn gf_wire_conn;
typedef struct gf_wire_listener gf_wire_listener;

/* Connects to addr (a string as gf_wire_parse_addr takes; errors name it as "remote address")
 * and, for tls://, completes the TLS handshake, all within opts->timeout_ms. opts may be NULL
 * (defaults). On success *out is a new connection (gf_wire_close frees it) in the pre-handshake
 * state: the first frame to send is HELLO (gf_wire_client_handshake does it).
 * Errors: GF_EINVAL bad address; GF_ENOENT unknown host / no shm listener of that name;
 * GF_ECLOSED refused or reset; GF_ETIMEDOUT; GF_EPERM TLS verification failed; GF_EIO other. */
gf_status gf_wire_connect(const char *addr, const gf_wire_opts *opts, gf_wire_conn **out,
                          char *err, size_t errlen);

/* Starts listening on addr (tcp: SO_REUSEADDR, IPv4 or IPv6 as the host says, "0.0.0.0" or
 * "[::]" for all; tls: loads and checks the cert and key now; shm: binds the unix socket).
 * The listener is non-blocking: poll gf_wire_listener_fd for POLLIN, then gf_wire_accept.
 * Errors: GF_EINVAL bad address or options; GF_EEXIST address in use; GF_EPERM; GF_EIO. */
gf_status gf_wire_listen(const char *addr, const gf_wire_opts *opts, gf_wire_listener **out,
                         char *err, size_t errlen);

/* The fd to poll for POLLIN (a pending connection). */
int gf_wire_listener_fd(const gf_wire_listener *l);

/* The bound address as a URL ("tcp://127.0.0.1:40123", "shm://name"), with the real port when
 * listening on port 0. Copies at most len bytes, NUL-terminated. */
void gf_wire_listener_addr(const gf_wire_listener *l, char *buf, size_t len);

/* Accepts one pending connection without blocking: GF_OK with *out a new conn, GF_EBUSY when
 * none is pending. Never waits on the new peer: a TLS handshake completes inside the conn's
 * first receives/flushes, and shm sends its ring descriptor in one non-blocking message, so a
 * slow or silent client cannot stall the listener. The new conn uses the listener's options.
 * Other errors concern that one peer only (GF_EIO with a message); keep listening. */
gf_status gf_wire_accept(gf_wire_listener *l, gf_wire_conn **out, char *err, size_t errlen);

/* Stops listening and frees l (conns already accepted live on). NULL is a no-op. For shm path
 * sockets the socket file is removed. */
void gf_wire_listener_close(gf_wire_listener *l);

/* The child's side of a fork per connection: frees this process's copy of l and closes its fd,
 * without removing anything the other process still listens on (an shm:///PATH socket file
 * stays; a tls:// listener's certificate context is only released here, conns made from it
 * keep their own reference). The other process's listener is unaffected. NULL is a no-op. */
void gf_wire_listener_release_after_fork(gf_wire_listener *l);

/* Sends one frame: header + payload[0..len). Anything already queued goes first, in one
 * writev. With a timeout > 0 (or the default) it blocks until the whole frame is written or the
 * deadline passes (GF_ETIMEDOUT; the unsent rest stays queued). With timeout 0 it writes what
 * the peer takes now and queues the rest (GF_OK; poll the conn and gf_wire_flush later) — the
 * worker's mode: a slow reader never blocks the event loop; GF_ENOSPC when the queue would
 * exceed opts.max_queue (the peer is not reading: close it). GF_ECLOSED when the peer is gone.
 * The payload is not kept after the call returns. */
gf_status gf_wire_send(gf_wire_conn *c, uint32_t kind, uint16_t flags, uint64_t request_id,
                       const void *payload, size_t len, int timeout_ms, char *err,
                       size_t errlen);

/* Like gf_wire_send with a payload gathered from iov[0..iovcnt) (e.g. a call's fixed arguments
 * and a user buffer, without copying them together). */
gf_status gf_wire_sendv(gf_wire_conn *c, uint32_t kind, uint16_t flags, uint64_t request_id,
                        const struct iovec *iov, int iovcnt, int timeout_ms, char *err,
                        size_t errlen);

/* Batching: appends a whole frame to the conn's outgoing queue without any I/O (a copy of the
 * payload). Many queued frames leave in one writev at the next gf_wire_flush or gf_wire_send,
 * or when the queue passes 256 KiB (then a non-blocking partial write is attempted).
 * GF_ENOSPC beyond opts.max_queue. */
gf_status gf_wire_queue(gf_wire_conn *c, uint32_t kind, uint16_t flags, uint64_t request_id,
                        const void *payload, size_t len, char *err, size_t errlen);

/* Appends frames already encoded in a writer (gf_wire_writer_begin_frame/end_frame) to the
 * queue: the cheapest batching path (one memcpy for all of them). */
gf_status gf_wire_queue_writer(gf_wire_conn *c, const gf_wire_writer *w, char *err,
                               size_t errlen);

/* Writes the queue. timeout > 0: until empty or GF_ETIMEDOUT. 0: writes what the peer takes
 * now; GF_OK when the queue emptied, GF_EBUSY when bytes remain (poll for
 * gf_wire_conn_events and call again). GF_ECLOSED when the peer is gone. */
gf_status gf_wire_flush(gf_wire_conn *c, int timeout_ms, char *err, size_t errlen);

/* Bytes waiting in the outgoing queue. */
size_t gf_wire_queued(const gf_wire_conn *c);

/* Receives the next frame. timeout > 0: blocks until a whole frame arrived (GF_OK),
 * the deadline passed (GF_ETIMEDOUT: "no answer from tcp://h:p within 5000 ms"), the peer closed
 * (GF_ECLOSED — "closed by peer" at a frame boundary, "connection lost mid-frame" otherwise) or
 * sent a malformed frame (GF_EPROTO: close this conn, the others are unaffected). 0: returns a
 * frame already buffered or readable now, else GF_EBUSY. Partial frames are kept across calls.
 * While blocked, queued outgoing bytes are flushed too (so two peers can never deadlock on
 * full buffers). f->payload is owned by the conn until the next gf_wire_recv/close. */
gf_status gf_wire_recv(gf_wire_conn *c, gf_wire_frame *f, int timeout_ms, char *err,
                       size_t errlen);

/* Sends a request and receives frames until the reply (REPLY flag, same request_id) arrives;
 * other frames received meanwhile are a protocol error (GF_EPROTO), so use it only where
 * nothing else can arrive (handshake, simple clients, tests). An ERROR-flagged reply returns
 * its status and message. */
gf_status gf_wire_call(gf_wire_conn *c, uint32_t kind, uint64_t request_id, const void *payload,
                       size_t len, gf_wire_frame *reply, int timeout_ms, char *err,
                       size_t errlen);

/* Event loop integration: the fd to register, and the events to wait for now (POLLIN always;
 * POLLOUT while tcp/tls bytes are queued). When the fd is ready call gf_wire_recv(c, .., 0)
 * until GF_EBUSY and gf_wire_flush(c, 0, ..). For shm the fd is the unix socket that carries
 * wakeups and tells of the peer's death: it only ever needs POLLIN. The fd belongs to c. */
int gf_wire_conn_fd(const gf_wire_conn *c);
short gf_wire_conn_events(const gf_wire_conn *c);

/* 1 when c holds received bytes the fd cannot announce (read ahead into the conn's buffer,
 * decrypted TLS records, data in the shm ring): a loop that stops calling gf_wire_recv before
 * GF_EBUSY (a per-session budget, for fairness) must not sleep in poll while any conn says 1. */
int gf_wire_conn_has_buffered(const gf_wire_conn *c);

/* "tcp://127.0.0.1:5555" / "tls://[::1]:443" / "shm://name": the peer, for messages. */
const char *gf_wire_conn_peer(const gf_wire_conn *c);
gf_wire_scheme gf_wire_conn_scheme(const gf_wire_conn *c);

/* The handshake's outcome, recorded on the conn by the handshake functions: the peer's minor
 * (the session speaks min(ours, theirs)), the session id (0 before). After the handshake the
 * decoder refuses frames of another major. */
uint8_t gf_wire_conn_peer_minor(const gf_wire_conn *c);
uint64_t gf_wire_conn_session_id(const gf_wire_conn *c);

/* Changes the conn's default timeout (ms > 0). */
void gf_wire_conn_set_timeout(gf_wire_conn *c, int timeout_ms);

/* Tries (briefly, without blocking) to flush, sends nothing else, closes the transport and
 * frees c and its buffers. The peer sees an orderly close. NULL is a no-op. */
void gf_wire_close(gf_wire_conn *c);

/* For a server that forks a process per connection (the worker): after fork() both processes
 * hold c; the one that gives it up (the parent) calls this instead of gf_wire_close. It frees
 * this process's copy of c and closes this process's fd, and does nothing the peer or the other
 * process could see: no flush of queued bytes, no TLS close_notify (SSL_shutdown) — the TLS
 * session lives on in the other process —, and for shm:// only this process's mapping of the
 * rings goes (the region and its socket stay the other process's). The other process keeps a
 * fully working conn. Only for a conn that no thread of this process uses any more; best right
 * after fork, before any I/O here. NULL is a no-op. */
void gf_wire_conn_release_after_fork(gf_wire_conn *c);

/* ============================================================================================
 * Handshake
 *
 * The client's first frame is HELLO; the server answers WELCOME (accepted or refused with a
 * reason), then both sides speak. The first two fields of HELLO (major, minor) and of WELCOME
 * (accepted, reason) are frozen across majors, so that any two versions can still tell each
 * other why they cannot talk.
 * ============================================================================================ */

/* What the client asks for: the limits of a vGPU, or an allocation made by the server. */
typedef enum gf_wire_compute_unit {
    GF_WIRE_COMPUTE_NONE = 0,    /* no compute limit */
    GF_WIRE_COMPUTE_TFLOPS = 1,  /* FP16 dense TFLOPs */
    GF_WIRE_COMPUTE_PERCENT = 2, /* percent of the GPU */
} gf_wire_compute_unit;

typedef struct gf_wire_hello {
    uint8_t major, minor;    /* filled by gf_wire_hello_init with this build's version */
    char token[256];         /* shared secret ("" = none) */
    char client_name[128];   /* for logs: "pytorch@host-a pid 4242" */
    char allocation_id[128]; /* non-empty: use this allocation; the fields below are ignored */
    uint64_t vram_bytes;     /* 0 = the whole GPU's VRAM */
    uint32_t compute_unit;   /* gf_wire_compute_unit */
    double compute;          /* TFLOPs or percent, per compute_unit */
    char gpu[96];            /* "" = any; "0" an index; "GPU-..." a UUID */
} gf_wire_hello;

typedef struct gf_wire_welcome {
    int accepted;
    char reason[256];         /* why refused (empty when accepted) */
    gf_status status;         /* why refused, as a code: GF_EPERM token, GF_EPROTO version,
                                 GF_ENOSPC no capacity, ... (GF_OK when accepted) */
    uint64_t session_id;
    uint8_t major, minor;     /* the server's protocol version */
    char server_version[64];  /* the gpufuse release, e.g. "0.1.0" */
} gf_wire_welcome;

/* Zeroes h and sets major/minor to this build's. */
void gf_wire_hello_init(gf_wire_hello *h);

/* Payload codecs of HELLO and WELCOME (append to w / parse a frame's payload). decode fails
 * GF_EPROTO with a message on a malformed payload. hello_decode of a different major fills
 * only major/minor and returns GF_OK (nothing else of it is understood). */
void gf_wire_hello_encode(gf_wire_writer *w, const gf_wire_hello *h);
gf_status gf_wire_hello_decode(const gf_wire_frame *f, gf_wire_hello *h, char *err,
                               size_t errlen);
void gf_wire_welcome_encode(gf_wire_writer *w, const gf_wire_welcome *wl);
gf_status gf_wire_welcome_decode(const gf_wire_frame *f, gf_wire_welcome *wl, char *err,
                                 size_t errlen);

/* 1 when a equals b, in time that depends on neither content nor the position of a difference
 * (both are hashed with SHA-256, the digests compared with CRYPTO_memcmp). NULL = "". */
int gf_wire_token_equal(const char *a, const char *b);

/* The server's check of a decoded HELLO: GF_EPROTO when the major differs ("worker speaks
 * gpufuse wire 1.0, client 2.0: upgrade the client or the worker to the same major version"),
 * GF_EPERM when the token is wrong ("wrong token: pass the worker's token with --token-file or
 * GPUFUSE_REMOTE_TOKEN"), else GF_OK. expected_token NULL or "" accepts any token. The reason
 * goes to reason[0..cap) (to send back and to log). */
gf_status gf_wire_check_hello(const gf_wire_hello *h, const char *expected_token, char *reason,
                              size_t cap);

/* Client side, blocking: sends HELLO, waits for WELCOME within the conn's timeout. GF_OK when
 * accepted (*wl filled, the session id recorded on c). When refused: the server's status
 * (GF_EPERM wrong token, GF_EPROTO version mismatch, GF_ENOSPC no capacity, ...) with its
 * reason in err ("worker tcp://h:p refused the session: wrong token: ..."); timeouts and
 * closure as gf_wire_recv. */
gf_status gf_wire_client_handshake(gf_wire_conn *c, const gf_wire_hello *h,
                                   gf_wire_welcome *wl, char *err, size_t errlen);

/* Server side, blocking (tests and simple servers; the worker's event loop instead decodes the
 * first frame with gf_wire_hello_decode, checks it, and answers with gf_wire_server_answer):
 * receives HELLO within timeout_ms, checks it against expected_token, answers, and returns
 * GF_OK with *h filled, or the refusal's status with the same reason the client got. */
gf_status gf_wire_server_handshake(gf_wire_conn *c, const char *expected_token,
                                   uint64_t session_id, const char *server_version,
                                   gf_wire_hello *h, int timeout_ms, char *err, size_t errlen);

/* Sends WELCOME for a HELLO received with request_id: accepted when status is GF_OK, else
 * refused with that status and reason (e.g. GF_ENOSPC, "GPU 0 has 2 GiB free, 4 GiB asked"),
 * with the given timeout (0 = queue it: the event loop's mode). On acceptance it records
 * session_id and the peer's minor on c and makes its decoder strict about the major. Close a
 * refused conn once the answer is flushed. */
gf_status gf_wire_server_answer(gf_wire_conn *c, uint64_t request_id, const gf_wire_hello *h,
                                uint64_t session_id, const char *server_version,
                                gf_status status, const char *reason, int timeout_ms, char *err,
                                size_t errlen);

/* ============================================================================================
 * Bulk transfers
 *
 * A large buffer (a cuMemcpyHtoD source, a DtoH result) travels as a run of GF_WIRE_K_BULK
 * frames with the request_id of the call they belong to, each carrying up to `chunk` raw bytes
 * in order, GF_WIRE_F_MORE on all but the last. The call's own frame says the total length
 * first, so the receiver knows what to expect and checks each chunk against it. The receiver
 * can consume chunk k (e.g. copy it to the device) while chunk k+1 is still on the network.
 * ============================================================================================ */

/* Sends buf[0..len) as bulk chunks of `chunk` bytes (0 = GF_WIRE_BULK_CHUNK_DEFAULT) for
 * request_id, blocking with the deadline applied per chunk (a slow but moving peer is fine; a
 * stalled one fails GF_ETIMEDOUT). len 0 sends one empty final chunk. */
gf_status gf_wire_bulk_send(gf_wire_conn *c, uint64_t request_id, const void *buf, size_t len,
                            size_t chunk, int timeout_ms, char *err, size_t errlen);

/* Receiver state of one transfer: expects `total` bytes for request_id. */
typedef struct gf_wire_bulk_rx {
    uint64_t request_id;
    uint64_t total;
    uint64_t received;
    int done;
} gf_wire_bulk_rx;

void gf_wire_bulk_rx_init(gf_wire_bulk_rx *rx, uint64_t request_id, uint64_t total);

/* Checks one received frame against rx (kind BULK, request_id, no more bytes than expected,
 * MORE set exactly when bytes remain) and advances it; *offset, *data and *n say where this chunk's
 * bytes belong and where they are (in the frame). GF_EPROTO with a message otherwise. Event-loop
 * friendly: the caller decides what to do with each chunk (cuMemcpyHtoDAsync, ...). */
gf_status gf_wire_bulk_rx_chunk(gf_wire_bulk_rx *rx, const gf_wire_frame *f, uint64_t *offset,
                                const uint8_t **data, size_t *n, char *err, size_t errlen);

/* Blocking receive of a whole transfer into buf[0..len) (len = the total announced): chunks are
 * read straight into buf (no intermediate copy). Deadline per chunk as for bulk_send. A frame
 * that is not this transfer's chunk is GF_EPROTO. */
gf_status gf_wire_bulk_recv(gf_wire_conn *c, uint64_t request_id, void *buf, size_t len,
                            int timeout_ms, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
