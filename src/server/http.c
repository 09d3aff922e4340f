/* SPDX-License-Identifier: Apache-2.0 */
/* The server's HTTP(S) front: binds the listen address, runs libmicrohttpd with its own
 * epoll thread, collects each request's body (up to max_body), and hands it to gf_srv_handle. */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gpufuse/log.h"
#include "server/server.h"

struct conn_ctx {
    char *body;
    size_t len, cap;
    int too_large;
};

static enum MHD_Result queue(struct MHD_Connection *c, gf_srv_resp *resp)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(resp->body_len, resp->body,
                                                             MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(resp->body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            resp->content_type ? resp->content_type : "application/json");
    enum MHD_Result ret = MHD_queue_response(c, resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

#define MAX_ARGS 16

struct args_ctx {
    const char *kv[2 * MAX_ARGS];
    unsigned n;
    int too_many;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct args_ctx *a = cls;
    (void)kind;
    if (a->n == MAX_ARGS) {
        a->too_many = 1;
        return MHD_NO;
    }
    a->kv[2 * a->n] = key;
    a->kv[2 * a->n + 1] = value;
    a->n++;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    gf_server *srv = cls;
    struct conn_ctx *cc = *con_cls;
    (void)version;
    if (!cc) {
        cc = calloc(1, sizeof *cc);
        if (!cc) return MHD_NO;
        *con_cls = cc;
        /* Refuse a declared oversized body before reading it. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > srv->cfg.max_body) {
            gf_srv_resp resp = {0};
            gf_srv__error(&resp, 413, "request body of %s bytes is over the limit of %zu bytes; "
                          "send less", cl, srv->cfg.max_body);
            gf_metrics_inc(&srv->metrics, GF_SRV_C_API_4XX);
            return queue(c, &resp);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (cc->too_large || cc->len + n > srv->cfg.max_body) {
            cc->too_large = 1;
            return MHD_YES;
        }
        if (cc->len + n + 1 > cc->cap) {
            size_t cap = cc->cap ? cc->cap : 1024;
            while (cap < cc->len + n + 1) cap *= 2;
            char *b = realloc(cc->body, cap);
            if (!b) return MHD_NO;
            cc->body = b;
            cc->cap = cap;
        }
        memcpy(cc->body + cc->len, upload_data, n);
        cc->len += n;
        cc->body[cc->len] = 0;
        return MHD_YES;
    }
    gf_srv_req req = {
        .method = method,
        .path = url,
        .authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_AUTHORIZATION),
        .body = cc->body,
        .body_len = cc->too_large ? 0 : cc->len,
        .body_too_large = cc->too_large,
    };
    /* The query string's arguments (issue 6: /api/v1/costs?pool=...); at most MAX_ARGS. */
    struct args_ctx args = {.n = 0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &args);
    gf_srv_resp resp;
    if (args.too_many) {
        gf_srv__error(&resp, 400, "more than %d query arguments; send fewer", MAX_ARGS);
        gf_metrics_inc(&srv->metrics, GF_SRV_C_API_4XX);
        return queue(c, &resp);
    }
    req.args = args.n ? args.kv : NULL;
    req.n_args = args.n;
    gf_srv_handle(srv, &req, &resp);
    return queue(c, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct conn_ctx *cc = *con_cls;
    if (!cc) return;
    free(cc->body);
    free(cc);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    gf_log(GF_LOG_INFO, "server", "http: %s", msg);
}

static char *read_file(const char *flag, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s %s: %s", flag, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    if (!n) {
        snprintf(err, errlen, "%s %s: empty file; give a PEM file", flag, path);
        free(buf);
        return NULL;
    }
    return buf;
}

/* Splits "host:port", "[v6]:port" or ":port" (host NULL = every address). */
static int split_addr(const char *addr, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon;
    host[0] = 0;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':') return -1;
        snprintf(host, hostlen, "%.*s", (int)(end - addr - 1), addr + 1);
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon) return -1;
        snprintf(host, hostlen, "%.*s", (int)(colon - addr), addr);
    }
    snprintf(port, portlen, "%s", colon + 1);
    if (!port[0]) return -1;
    for (const char *p = port; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    return 0;
}

static int bind_listen(const char *addr, char *url_host, size_t url_hostlen, int *port_out,
                       char *err, size_t errlen)
{
    char host[256], port[16];
    if (split_addr(addr, host, sizeof host, port, sizeof port)) {
        snprintf(err, errlen, "--listen: \"%s\": expected HOST:PORT, [IPV6]:PORT or :PORT "
                 "(port 0 picks a free one)", addr);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc) {
        snprintf(err, errlen, "--listen: \"%s\": %s", addr, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 512) == 0) break;
        snprintf(err, errlen, "--listen: \"%s\": %s; pick another port or address", addr,
                 strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return -1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (!host[0] || !strcmp(host, "0.0.0.0"))
        snprintf(url_host, url_hostlen, "127.0.0.1");
    else if (!strcmp(host, "::"))
        snprintf(url_host, url_hostlen, "[::1]");
    else if (strchr(host, ':'))
        snprintf(url_host, url_hostlen, "[%s]", host);
    else
        snprintf(url_host, url_hostlen, "%s", host);
    return fd;
}

gf_status gf_server_listen(gf_server *srv, char *err, size_t errlen)
{
    const gf_server_config *cfg = &srv->cfg;
    int tls = cfg->tls_cert || cfg->tls_key;
    if (tls && !(cfg->tls_cert && cfg->tls_key)) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together; give both PEM files");
        return GF_EINVAL;
    }
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, errlen, "this libmicrohttpd was built without TLS; install Debian's "
                 "libmicrohttpd12 (GnuTLS) or run without --tls-cert");
        return GF_ENOTSUP;
    }
    if (tls) {
        srv->tls_cert_pem = read_file("--tls-cert", cfg->tls_cert, err, errlen);
        if (!srv->tls_cert_pem) return GF_EIO;
        srv->tls_key_pem = read_file("--tls-key", cfg->tls_key, err, errlen);
        if (!srv->tls_key_pem) return GF_EIO;
    }
    char host[300];
    int port = 0;
    int fd = bind_listen(cfg->listen ? cfg->listen : "127.0.0.1:7070", host, sizeof host, &port,
                         err, errlen);
    if (fd < 0) return GF_EIO;
    srv->listen_fd = fd;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES) flags |= MHD_USE_EPOLL;
    if (tls) flags |= MHD_USE_TLS;
    struct MHD_OptionItem opts[8];
    unsigned no = 0;
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, fd, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, NULL};
    if (cfg->threads > 1)
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, cfg->threads, NULL};
    if (tls) {
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert_pem};
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key_pem};
    }
    opts[no] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    srv->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_ARRAY, opts,
                                MHD_OPTION_END);
    if (!srv->mhd) {
        snprintf(err, errlen, "could not start the HTTP%s server on %s%s", tls ? "S" : "",
                 cfg->listen, tls ? "; check that --tls-cert and --tls-key are a matching PEM "
                                    "certificate and key" : "");
        close(fd);
        srv->listen_fd = -1;
        return GF_EIO;
    }
    snprintf(srv->url, sizeof srv->url, "%s://%s:%d", tls ? "https" : "http", host, port);
    /* DIR/server.url: where scripts and tests find the server (written atomically). */
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/server.url", srv->data_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "%s\n", srv->url);
        fclose(f);
        rename(tmp, path);
    }
    return GF_OK;
}

void gf_srv__http_stop(gf_server *srv)
{
    if (srv->mhd) {
        MHD_stop_daemon(srv->mhd);
        srv->mhd = NULL;
    }
    if (srv->listen_fd >= 0) {
        close(srv->listen_fd);
        srv->listen_fd = -1;
    }
}
