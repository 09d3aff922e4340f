/* SPDX-License-Identifier: Apache-2.0 */
/* A small HTTP(S) client for talking to the gpufuse server (libcurl): the agent and the CLI use
 * it. Bearer token, JSON bodies, TLS with the system store or a private CA (--ca-file /
 * GPUFUSE_CA_FILE), timeouts, and error messages that name the URL and what to check. */
#ifndef GPUFUSE_HTTP_CLIENT_H
#define GPUFUSE_HTTP_CLIENT_H

#include <stddef.h>

#include "gpufuse/status.h"

typedef struct gf_http_client gf_http_client;

typedef struct gf_http_options {
    const char *base_url;   /* "http://host:port" or "https://host:port" (no trailing path) */
    const char *token;      /* bearer token, or NULL */
    const char *ca_file;    /* PEM bundle to trust instead of the system store, or NULL */
    long timeout_ms;        /* whole request; 0 = 10 s */
} gf_http_options;

/* Creates a client (copies every string). GF_EINVAL with a message for a URL that is not
 * http(s)://, GF_ENOENT when ca_file is not readable. *out is owned by the caller
 * (gf_http_client_free). Not thread-safe: one client per thread. */
gf_status gf_http_client_new(const gf_http_options *opts, gf_http_client **out, char *err,
                             size_t errlen);
void gf_http_client_free(gf_http_client *c);

/* Sends METHOD base_url+path with body (JSON, may be NULL) and waits for the answer.
 * On GF_OK *status is the HTTP status and *resp a malloc'ed NUL-terminated body (caller frees;
 * may be NULL if not wanted). Transport failures (connect, TLS, timeout) return GF_EIO /
 * GF_ETIMEDOUT with a message naming the URL and the likely fix. */
gf_status gf_http_request(gf_http_client *c, const char *method, const char *path,
                          const char *body, long *status, char **resp, char *err,
                          size_t errlen);

/* Reads a token from a file's first line (whitespace trimmed) into buf. GF_ENOENT/GF_EIO with
 * a message naming the file; GF_EINVAL for an empty one. */
gf_status gf_http_read_token_file(const char *path, char *buf, size_t buflen, char *err,
                                  size_t errlen);

#endif
