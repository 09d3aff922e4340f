/* SPDX-License-Identifier: Apache-2.0 */
/* Who may open a session: the worker's shared token (--token-file), and the per-allocation
 * token table an agent keeps for the workloads placed on its node (--allocation-tokens): one
 * line "NAME SHA256-HEX" (or "NAME -" for a workload made before tokens existed) per workload.
 * The table holds hashes only, so neither the file nor the server's copy is a credential. It is
 * read at every HELLO (each session is a fresh process), so the agent's rewrites apply at once. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "worker/worker.h"

#define NO_TOKEN "-"

static void sha256_hex(const char *text, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL) || n != 32) {
        memset(out, 'x', 64); /* matches no table entry: fail closed */
        out[64] = 0;
        return;
    }
    for (unsigned i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = 0;
}

gf_status gf_wk_allocation_token(const char *path, const char *allocation, char *hash,
                                 size_t cap, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read its allocation token table %s (%s); is its agent "
                 "running?", path, strerror(errno));
        return GF_EIO;
    }
    char line[512];
    gf_status st = GF_ENOENT;
    while (st == GF_ENOENT && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *sp = strchr(line, ' ');
        if (line[0] == '#' || !sp) continue;
        *sp = 0;
        if (strcmp(line, allocation)) continue;
        snprintf(hash, cap, "%s", sp + 1);
        st = GF_OK;
    }
    fclose(f);
    return st;
}

gf_status gf_wk_check_client(const gf_wk_opts *o, const gf_wire_hello *h, char *reason,
                             size_t cap)
{
    /* The version first: a HELLO of another major carries nothing else we understand. */
    gf_status st = gf_wire_check_hello(h, NULL, reason, cap);
    if (st != GF_OK || !o->alloc_tokens) {
        if (st == GF_OK) st = gf_wire_check_hello(h, o->token, reason, cap);
        return st;
    }
    int shared = o->token[0] && gf_wire_token_equal(h->token, o->token);
    if (!h->allocation_id[0]) {
        if (shared) return GF_OK;
        snprintf(reason, cap, "this worker serves the pool's allocations only: run the program "
                 "with gpufuse run --server (or set GPUFUSE_REMOTE_ALLOCATION to the workload's "
                 "name and GPUFUSE_REMOTE_TOKEN to its worker token)");
        return GF_EPERM;
    }
    char want[128], err[600];
    st = gf_wk_allocation_token(o->alloc_tokens, h->allocation_id, want, sizeof want, err,
                                sizeof err);
    if (st == GF_ENOENT) {
        snprintf(reason, cap, "allocation %s is not on this node (not yet: its agent learns of "
                 "it at its next heartbeat; or no longer)", h->allocation_id);
        return GF_ENOENT;
    }
    if (st != GF_OK) {
        snprintf(reason, cap, "the worker %s", err);
        return GF_EIO;
    }
    if (shared) return GF_OK;
    if (!strcmp(want, NO_TOKEN)) {
        /* A workload from before worker tokens: what the shared token says, as before. */
        return gf_wire_check_hello(h, o->token, reason, cap);
    }
    char got[65];
    sha256_hex(h->token, got);
    if (strlen(want) == 64 && CRYPTO_memcmp(got, want, 64) == 0) return GF_OK;
    snprintf(reason, cap, "wrong token for allocation %s%s: give the workload's worker token "
             "(\"worker_token\" in the answer that created it; gpufuse run --server passes it) "
             "in GPUFUSE_REMOTE_TOKEN", h->allocation_id, h->token[0] ? "" : " (none sent)");
    return GF_EPERM;
}
