/* SPDX-License-Identifier: Apache-2.0 */
/* The dashboard's static files (web/), embedded at build time by tools/gen_web_assets.py and
 * served at / without a token: the page asks for one and sends it on every API call. */
#include <stdlib.h>
#include <string.h>

#include "server/observe.h"
#include "web_assets.h"

int gf_srv__web_serve(gf_server *srv, const gf_srv_req *req, gf_srv_resp *resp)
{
    (void)srv;
    const char *m = req->method ? req->method : "";
    const char *path = req->path ? req->path : "";
    if (strcmp(m, "GET") && strcmp(m, "HEAD")) return 0;
    if (!strncmp(path, "/api/", 5)) return 0;
    if (!strcmp(path, "/")) path = "/index.html";
    for (size_t i = 0; i < sizeof gf_web_assets / sizeof gf_web_assets[0]; i++) {
        const struct gf_web_asset *a = &gf_web_assets[i];
        if (strcmp(a->path, path)) continue;
        resp->body = malloc(a->size + 1);
        if (!resp->body) {
            gf_srv__error(resp, 500, "out of memory");
            return 1;
        }
        memcpy(resp->body, a->data, a->size + 1);
        resp->body_len = a->size;
        resp->status = 200;
        resp->content_type = a->type;
        return 1;
    }
    return 0;
}
