/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the server's request bodies: every gf_api_parse_* on the same bytes (a
 * client controls them all), plus the profile merge, final checks and canonical JSON of a
 * parsed workload. Must never crash, leak or read out of bounds; errors must be NUL-terminated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/api_request.h"

static gf_api_workload w, p;
static gf_api_register reg;
static gf_api_usage usage;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    const char *body = (const char *)data;
    err[0] = 0;
    if (gf_api_parse_workload(body, size, 0, &w, err, sizeof err) == GF_OK) {
        char *s = gf_api_workload_to_json(&w, 1);
        free(s);
        if (gf_api_parse_workload(body, size, 1, &p, err, sizeof err) == GF_OK) {
            gf_api_workload_apply_profile(&w, &p);
            gf_api_workload_check(&w, err, sizeof err);
        }
    }
    if (strnlen(err, sizeof err) == sizeof err) abort();
    gf_api_parse_register(body, size, &reg, err, sizeof err);
    gf_api_parse_usage(body, size, &usage, err, sizeof err);
    gf_api_pool pool;
    gf_api_parse_pool(body, size, &pool, err, sizeof err);
    gf_api_token_req tok;
    gf_api_parse_token_req(body, size, &tok, err, sizeof err);
    uint64_t lease_ms;
    gf_api_parse_renew(body, size, &lease_ms, err, sizeof err);
    if (strnlen(err, sizeof err) == sizeof err) abort();
    return 0;
}
