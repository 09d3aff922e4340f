/* SPDX-License-Identifier: Apache-2.0 */
/* gf_http_*: libcurl easy handle per client (connection reuse), bearer auth, private CA. */
#include "gpufuse/http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct gf_http_client {
    CURL *curl;
    char *base_url;
    char *auth_header;
    char *ca_file;
    long timeout_ms;
};

struct buf {
    char *data;
    size_t len, cap;
    int oom;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        /* 64 MiB is far beyond any answer of the server: stop a runaway peer. */
        if (cap > (64u << 20)) {
            b->oom = 1;
            return 0;
        }
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = 1;
            return 0;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

gf_status gf_http_client_new(const gf_http_options *opts, gf_http_client **out, char *err,
                             size_t errlen)
{
    pthread_once(&curl_once, curl_init_once);
    const char *url = opts->base_url;
    if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) {
        snprintf(err, errlen, "server URL \"%s\": must start with http:// or https:// (e.g. "
                 "--server http://127.0.0.1:7070 or GPUFUSE_SERVER)", url ? url : "");
        return GF_EINVAL;
    }
    if (opts->ca_file && opts->ca_file[0] && access(opts->ca_file, R_OK)) {
        snprintf(err, errlen, "--ca-file %s: %s; name a readable PEM file", opts->ca_file,
                 strerror(errno));
        return GF_ENOENT;
    }
    gf_http_client *c = calloc(1, sizeof *c);
    if (!c) return GF_ENOMEM;
    c->curl = curl_easy_init();
    c->base_url = strdup(url);
    size_t n = strlen(c->base_url);
    while (n && c->base_url[n - 1] == '/') c->base_url[--n] = 0;
    if (opts->token && opts->token[0]) {
        size_t tl = strlen(opts->token) + 32;
        c->auth_header = malloc(tl);
        if (c->auth_header) snprintf(c->auth_header, tl, "Authorization: Bearer %s", opts->token);
    }
    if (opts->ca_file && opts->ca_file[0]) c->ca_file = strdup(opts->ca_file);
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 10000;
    if (!c->curl || !c->base_url) {
        gf_http_client_free(c);
        return GF_ENOMEM;
    }
    *out = c;
    return GF_OK;
}

void gf_http_client_free(gf_http_client *c)
{
    if (!c) return;
    if (c->curl) curl_easy_cleanup(c->curl);
    free(c->base_url);
    if (c->auth_header) memset(c->auth_header, 0, strlen(c->auth_header));
    free(c->auth_header);
    free(c->ca_file);
    free(c);
}

gf_status gf_http_request(gf_http_client *c, const char *method, const char *path,
                          const char *body, long *status, char **resp, char *err,
                          size_t errlen)
{
    char url[4096];
    snprintf(url, sizeof url, "%s%s", c->base_url, path);
    struct buf b = {0};
    struct curl_slist *hdrs = NULL;
    CURL *h = c->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms < 5000 ? c->timeout_ms : 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!strcmp(method, "HEAD")) curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (c->ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    if (c->auth_header) hdrs = curl_slist_append(hdrs, c->auth_header);
    if (body) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else if (!strcmp(method, "POST") || !strcmp(method, "PUT")) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        free(b.data);
        const char *hint = "";
        switch (rc) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
            hint = "; is the server running there? check --server / GPUFUSE_SERVER";
            break;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CONNECT_ERROR:
            hint = "; for a private CA or self-signed certificate give --ca-file FILE or "
                   "GPUFUSE_CA_FILE";
            break;
        case CURLE_OPERATION_TIMEDOUT: hint = "; the server did not answer in time"; break;
        default: break;
        }
        snprintf(err, errlen, "%s %s: %s%s", method, url, curl_easy_strerror(rc), hint);
        return rc == CURLE_OPERATION_TIMEDOUT ? GF_ETIMEDOUT : GF_EIO;
    }
    if (b.oom) {
        free(b.data);
        snprintf(err, errlen, "%s %s: answer too large or out of memory", method, url);
        return GF_ENOMEM;
    }
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (status) *status = code;
    if (resp) {
        *resp = b.data ? b.data : strdup("");
    } else {
        free(b.data);
    }
    return GF_OK;
}

gf_status gf_http_read_token_file(const char *path, char *buf, size_t buflen, char *err,
                                  size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
        return errno == ENOENT ? GF_ENOENT : GF_EIO;
    }
    if (!fgets(buf, (int)buflen, f)) buf[0] = 0;
    fclose(f);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
                 buf[n - 1] == '\t'))
        buf[--n] = 0;
    if (!n) {
        snprintf(err, errlen, "token file %s is empty; put the token on its first line", path);
        return GF_EINVAL;
    }
    return GF_OK;
}
