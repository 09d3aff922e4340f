/* SPDX-License-Identifier: Apache-2.0 */
/* Bearer tokens: random 256-bit tokens, stored only as SHA-256 hashes; the admin token file
 * (0600) written on first start; role lookup per request. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpufuse/log.h"
#include "server/server.h"

void gf_srv__sha256_hex(const char *text, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < n && i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = 0;
}

gf_status gf_srv__random_token(const char *prefix, char *out, size_t outlen)
{
    size_t pl = strlen(prefix);
    unsigned char r[32];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = getrandom(r + got, sizeof r - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return GF_EIO;
        }
        got += (size_t)n;
    }
    if (outlen < pl + 64 + 1) return GF_ERANGE;
    memcpy(out, prefix, pl);
    for (unsigned i = 0; i < 32; i++) snprintf(out + pl + 2 * i, 3, "%02x", r[i]);
    return GF_OK;
}

gf_status gf_srv__token_new(gf_server *srv, const char *kind, const char *node, char *token,
                            size_t tokenlen)
{
    char hash[65];
    gf_status st = gf_srv__random_token("gf_", token, tokenlen);
    if (st != GF_OK) return st;
    gf_srv__sha256_hex(token, hash);
    return gf_store_exec(srv->store,
                         "INSERT INTO tokens(hash, kind, node, created_ms) VALUES(?, ?, ?, ?)",
                         NULL, "ttti", hash, kind, node, (int64_t)gf_srv_now_ms());
}

/* Reads the first line of path into buf (trailing whitespace cut). */
static gf_status read_token_file(const char *path, char *buf, size_t buflen, char *err,
                                 size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? GF_ENOENT : GF_EIO;
    }
    if (!fgets(buf, (int)buflen, f)) buf[0] = 0;
    fclose(f);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) buf[--n] = 0;
    if (n < 16) {
        snprintf(err, errlen, "%s: the token is empty or shorter than 16 characters; put a "
                 "long random token on its first line (or remove the file to have one made)",
                 path);
        return GF_EINVAL;
    }
    return GF_OK;
}

gf_status gf_srv__admin_token_init(gf_server *srv, char *err, size_t errlen)
{
    char token[256], hash[65];
    gf_status st = read_token_file(srv->token_path, token, sizeof token, err, errlen);
    if (st == GF_ENOENT) {
        if ((st = gf_srv__random_token("gf_", token, sizeof token)) != GF_OK) {
            snprintf(err, errlen, "cannot get random bytes for the admin token");
            return st;
        }
        int fd = open(srv->token_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            snprintf(err, errlen, "%s: cannot create the admin token file: %s",
                     srv->token_path, strerror(errno));
            return GF_EIO;
        }
        size_t len = strlen(token);
        token[len] = '\n';
        int ok = write(fd, token, len + 1) == (ssize_t)(len + 1) && fsync(fd) == 0;
        token[len] = 0;
        close(fd);
        if (!ok) {
            snprintf(err, errlen, "%s: cannot write the admin token", srv->token_path);
            return GF_EIO;
        }
        gf_log(GF_LOG_INFO, "server", "wrote a new admin token to %s", srv->token_path);
    } else if (st != GF_OK) {
        return st;
    }
    gf_srv__sha256_hex(token, hash);
    /* The file is the source of truth for the admin token: replace older admin-file hashes. */
    gf_store_exec(srv->store, "DELETE FROM tokens WHERE kind = 'admin-file' AND hash <> ?", NULL,
                  "t", hash);
    st = gf_store_exec(srv->store,
                       "INSERT OR IGNORE INTO tokens(hash, kind, node, created_ms) "
                       "VALUES(?, 'admin-file', NULL, ?)",
                       NULL, "ti", hash, (int64_t)gf_srv_now_ms());
    memset(token, 0, sizeof token);
    if (st != GF_OK) snprintf(err, errlen, "cannot store the admin token's hash");
    return st;
}

gf_srv_role gf_srv__auth(gf_server *srv, const char *authorization, char *node, size_t nodelen)
{
    if (!authorization) return GF_SRV_ANON;
    if (strncasecmp(authorization, "Bearer ", 7)) return GF_SRV_ANON;
    const char *tok = authorization + 7;
    while (*tok == ' ') tok++;
    if (!*tok || strlen(tok) > 512) return GF_SRV_ANON;
    char hash[65];
    gf_srv__sha256_hex(tok, hash);
    json_t *rows = gf_store_query(srv->store, "SELECT kind, node FROM tokens WHERE hash = ?",
                                  "t", hash);
    gf_srv_role role = GF_SRV_ANON;
    json_t *row = rows ? json_array_get(rows, 0) : NULL;
    if (row) {
        const char *kind = json_string_value(json_object_get(row, "kind"));
        if (kind && !strncmp(kind, "admin", 5)) {
            role = GF_SRV_ADMIN;
        } else if (kind && !strcmp(kind, "node")) {
            role = GF_SRV_NODE;
            const char *n = json_string_value(json_object_get(row, "node"));
            snprintf(node, nodelen, "%s", n ? n : "");
        }
    }
    json_decref(rows);
    return role;
}

int gf_srv__token_revoked(gf_server *srv, const char *authorization, char *node, size_t nodelen)
{
    if (!authorization || strncasecmp(authorization, "Bearer ", 7)) return 0;
    const char *tok = authorization + 7;
    while (*tok == ' ') tok++;
    if (!*tok || strlen(tok) > 512) return 0;
    char hash[65];
    gf_srv__sha256_hex(tok, hash);
    json_t *rows = gf_store_query(srv->store, "SELECT node FROM tokens WHERE hash = ? AND "
                                              "kind = 'node-revoked'", "t", hash);
    json_t *row = rows ? json_array_get(rows, 0) : NULL;
    const char *n = row ? json_string_value(json_object_get(row, "node")) : NULL;
    if (n) snprintf(node, nodelen, "%s", n);
    json_decref(rows);
    return n != NULL;
}
