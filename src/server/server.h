/* SPDX-License-Identifier: Apache-2.0 */
/* gpufuse server internals: the server object (store + allocator + HTTP daemon + metrics under
 * one lock), the transport-free request handler the HTTP layer and the unit tests call, and the
 * node lifecycle (heartbeat timeouts, lost allocations, grace release). See docs/server.md. */
#ifndef GF_SERVER_SERVER_H
#define GF_SERVER_SERVER_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "gpufuse/allocator.h"
#include "gpufuse/status.h"
#include "server/metrics.h"
#include "server/store.h"

#define GF_SRV_DEFAULT_HEARTBEAT_TIMEOUT_MS 15000
#define GF_SRV_DEFAULT_LOST_GRACE_MS 60000
#define GF_SRV_DEFAULT_MAX_BODY (1u << 20)

typedef struct gf_server_config {
    const char *listen;      /* "HOST:PORT" (":0" or "127.0.0.1:0" picks a free port) */
    const char *data_dir;    /* holds gpufuse.db, admin.token, server.url */
    const char *tls_cert;    /* PEM files; both or neither */
    const char *tls_key;
    const char *token_file;  /* the admin token (created 0600 when absent); NULL = DIR/admin.token */
    uint64_t heartbeat_timeout_ms;
    uint64_t lost_grace_ms;
    size_t max_body;         /* bytes; larger bodies get 413 */
    unsigned threads;        /* HTTP threads (1 = one internal event loop thread) */
    const char *alerts_file;   /* alert rules (docs/alerts.md); NULL = built-in defaults */
    const char *alert_webhook; /* Alertmanager-format webhook URL, or NULL (issue 6) */
} gf_server_config;

typedef struct gf_server gf_server;

#define GF_SRV_LIST_CACHE 8
/* A list answer, reused until the store's next write (see routes.c). */
typedef struct gf_srv_list_cache {
    const char *key;     /* the route's SQL literal */
    uint64_t generation; /* gf_store_generation when computed */
    char *body;
    size_t len;
} gf_srv_list_cache;

/* Who a request's bearer token belongs to. */
typedef enum gf_srv_role { GF_SRV_ANON = 0, GF_SRV_ADMIN = 1, GF_SRV_NODE = 2 } gf_srv_role;

struct gf_server {
    gf_server_config cfg;
    char data_dir[4096];
    char token_path[4096];
    gf_store *store;
    gf_alloc *alloc;
    pthread_mutex_t lock;    /* guards store and alloc: held by every handler and by tick */
    gf_metrics metrics;
    struct gf_srv_alerts *alerts; /* built-in alerts (alerts.h, issue 6) */
    uint64_t started_ms;     /* nodes get a full timeout after a restart before going NotReady */
    struct MHD_Daemon *mhd;
    int listen_fd;
    char url[400];           /* http(s)://host:port once listening */
    char *tls_cert_pem, *tls_key_pem;
    gf_srv_list_cache list_cache[GF_SRV_LIST_CACHE]; /* under lock */
    struct gf_srv_obs *obs;  /* usage samples + chargeback (observe.h, issue 6); under lock */
};

/* A request as the HTTP layer hands it over (all strings NUL-terminated, borrowed). */
typedef struct gf_srv_req {
    const char *method;
    const char *path;          /* without the query string */
    const char *authorization; /* the Authorization header, or NULL */
    const char *body;          /* may be NULL when body_len == 0 */
    size_t body_len;
    int body_too_large;        /* the body passed max_body and was dropped */
    const char *const *args;   /* query string: n_args (key, value) pairs, decoded; value may
                                * be NULL ("?key" without "="); NULL when none */
    unsigned n_args;
} gf_srv_req;

/* The answer: status, malloc'ed body (freed by the caller), content type (static). */
typedef struct gf_srv_resp {
    unsigned status;
    char *body;
    size_t body_len;
    const char *content_type;
} gf_srv_resp;

/* Opens the store, rebuilds the allocator from it, and prepares the admin token. Does not
 * listen. *out owned by the caller (gf_server_free). */
gf_status gf_server_new(const gf_server_config *cfg, gf_server **out, char *err, size_t errlen);

/* Binds cfg->listen and starts the HTTP daemon (TLS when configured); writes the URL into
 * srv->url and DIR/server.url. */
gf_status gf_server_listen(gf_server *srv, char *err, size_t errlen);

/* Runs the lifecycle loop until *stop is set (a signal handler sets it), then stops the HTTP
 * daemon (in-flight requests finish). */
void gf_server_run(gf_server *srv, volatile sig_atomic_t *stop);

/* Stops listening (if listening) and frees everything. NULL is a no-op. */
void gf_server_free(gf_server *srv);

/* Answers one request (takes the lock). The heart of the server, callable without HTTP. */
void gf_srv_handle(gf_server *srv, const gf_srv_req *req, gf_srv_resp *resp);

/* One lifecycle pass at now_ms (wall clock, ms): nodes past the heartbeat timeout go NotReady
 * with their allocations lost; lost allocations past the grace period are released. Takes the
 * lock. Tests call it with a made-up clock. */
void gf_srv_tick(gf_server *srv, uint64_t now_ms);

/* Wall clock in ms since the epoch. */
uint64_t gf_srv_now_ms(void);

/* ---- internal, between the server's files --------------------------------------------------- */

/* auth.c: the role of a bearer token (and its node for node tokens). */
gf_srv_role gf_srv__auth(gf_server *srv, const char *authorization, char *node, size_t nodelen);
/* auth.c: makes a token of kind "admin" or "node" and stores its hash; token gets the text. */
/* Is authorization a node token revoked when its node was removed? Then node gets its name. */
int gf_srv__token_revoked(gf_server *srv, const char *authorization, char *node, size_t nodelen);
/* Missing GPUs (no longer reported by their agent) that no allocation uses any more leave the
 * store and the allocator. */
void gf_srv__missing_sweep(gf_server *srv);
gf_status gf_srv__token_new(gf_server *srv, const char *kind, const char *node, char *token,
                            size_t tokenlen);
/* auth.c: reads or creates the admin token file. */
gf_status gf_srv__admin_token_init(gf_server *srv, char *err, size_t errlen);
/* auth.c: prefix + 64 hex digits (256 bits) from the kernel's CSPRNG into out (GF_ERANGE when
 * it does not fit, GF_EIO when getrandom fails). */
gf_status gf_srv__random_token(const char *prefix, char *out, size_t outlen);
/* auth.c: lowercase hex SHA-256 of text (65 bytes out). */
void gf_srv__sha256_hex(const char *text, char out[65]);

/* lifecycle.c: rebuilds the allocator from the store at start. */
gf_status gf_srv__restore(gf_server *srv, char *err, size_t errlen);
/* lifecycle.c: registers the server's state collector with metrics. */
void gf_srv__metrics_init(gf_server *srv);

/* http.c: stops the HTTP daemon and closes the listening socket (idempotent). */
void gf_srv__http_stop(gf_server *srv);

/* routes.c: frees the list cache. */
void gf_srv__cache_clear(gf_server *srv);

/* Sets resp to a JSON error {"error": msg}. */
void gf_srv__error(gf_srv_resp *resp, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
