/* SPDX-License-Identifier: Apache-2.0 */
/* The client library's remote backend (GPUFUSE_REMOTE): the connection to a gpufuse worker, the
 * call helpers every remote entry point uses, and the client-side state (minted handles, the
 * current context per thread, cached device answers). docs/remote.md. */
#ifndef GF_CLIENT_REMOTE_H
#define GF_CLIENT_REMOTE_H

#include <pthread.h>

#include "client.h"
#include "client/remote_proto.h"

#define GF_REMOTE_LOG "remote"
#define GF_REMOTE_MAX_DEVS 16

/* A device as DEVICE_INFO described it (immutable: cached for the process). */
typedef struct gf_rdev {
    char name[256];
    unsigned char uuid[16];
    uint64_t total;
    char pci[64];
    int32_t attrs[GF_RPC_NATTR - 1];
    /* primary context (client side) */
    uint64_t primary;
    unsigned primary_refs;
    unsigned primary_flags;
} gf_rdev;

/* A CUfunction / CUkernel handed to the program: its worker handle and parameter layout. */
#define GF_RFUNC_MAGIC 0x6766756e63000001ull
#define GF_RFUNC_DEAD 0x6766756e6300dead
typedef struct gf_rfunc {
    uint64_t magic;
    uint64_t id;
    uint64_t module; /* module or library handle */
    struct gf_rfunc *next_all;
    unsigned nparams;
    uint32_t pbytes;
    uint32_t *off, *size;
    char name[256];
} gf_rfunc;

typedef struct gf_remote {
    int enabled;           /* GPUFUSE_REMOTE is set: this process has no local driver */
    char addr[512];
    pthread_mutex_t lk;    /* serializes all use of c */
    gf_wire_conn *c;
    int inited;            /* cuInit succeeded */
    int broken;            /* the worker is gone: every call fails with broken_rc */
    CUresult broken_rc;
    int timeout_ms;
    uint64_t next_rid;
    atomic_ullong next_handle;
    uint64_t sent_ctx;     /* the context the worker's session has current */
    int driver_version;
    int ndev;
    gf_rdev dev[GF_REMOTE_MAX_DEVS];
    gf_rfunc *funcs;       /* every function handed out (kept: the program may hold them) */
    pid_t pid;
    unsigned async_since_sync; /* asynchronous calls sent since the last answer */
    unsigned async_window;     /* a FENCE after this many (2 when compute is capped) */
} gf_remote;

extern gf_remote gf_r;

/* A request being encoded: kind + payload in a fixed buffer (no malloc on the launch path). */
typedef struct gf_rreq {
    uint32_t kind;
    gf_wire_writer w;
    uint8_t buf[640];
} gf_rreq;

static inline void gf_rreq_init(gf_rreq *q, uint32_t kind)
{
    q->kind = kind;
    gf_wire_writer_init_fixed(&q->w, q->buf, sizeof q->buf);
}

/* 1 when GPUFUSE_REMOTE selects the remote backend. */
int gf_remote_wanted(void);
/* Fills gf_real with the remote backend's entry points (and NOT_SUPPORTED stubs for the rest);
 * called by gf_client_init instead of loading a driver. */
void gf_remote_setup(void);
/* remote.c: reads GPUFUSE_REMOTE and installs the fork and exit handlers (from setup). */
void gf_remote_init_process(void);

/* Connects and handshakes (cuInit). Takes the lock itself. */
CUresult gf_remote_connect(void);

/* Lock/unlock the connection. gf_remote_lock returns CUDA_SUCCESS with the lock held, or the
 * error every call gets now (not initialized, worker gone) without it. */
CUresult gf_remote_lock(void);
void gf_remote_unlock(void);

/* Under the lock: queues an asynchronous call (NOREPLY). */
CUresult gf_remote_async(gf_rreq *q);
/* Under the lock: queues an already encoded asynchronous call payload (the launch path). */
CUresult gf_remote_queue_raw(uint32_t kind, const void *p, size_t n);
/* Under the lock: a synchronous call; on CUDA_SUCCESS from the transport, *rc is the worker's
 * result and rep reads the reply's outputs (valid until the next call or unlock). The return
 * value is a transport failure (the worker is gone) or CUDA_SUCCESS. *rid the request id. */
CUresult gf_remote_sync(gf_rreq *q, CUresult *rc, gf_wire_reader *rep, uint64_t *rid);
/* Under the lock: like gf_remote_sync with n bytes of data sent after the request as BULK
 * chunks (big host-to-device copies). noreply: an asynchronous call (no answer awaited). */
CUresult gf_remote_sync_bulk(gf_rreq *q, const void *data, size_t n, int noreply, CUresult *rc,
                             gf_wire_reader *rep);
/* Under the lock: receives the n bytes of a reply's BULK transfer into dst. */
CUresult gf_remote_recv_bulk(uint64_t rid, void *dst, size_t n);

/* A fresh handle of a kind (GF_RPC_H_*). */
uint64_t gf_remote_handle(unsigned kind, uint64_t extra);

/* The per-thread current context (a handle, 0 = none) and what the worker has current: queues a
 * CTX_SET when they differ. Under the lock. */
extern _Thread_local uint64_t gf_remote_tl_ctx;
void gf_remote_sync_ctx(void);

/* NOT_SUPPORTED for a call the backend does not implement, logged once per name. */
CUresult gf_remote_unsupported(const char *name);

#endif
