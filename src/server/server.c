/* SPDX-License-Identifier: Apache-2.0 */
/* The server object's life: open the store, rebuild the allocator, prepare the admin token,
 * run the lifecycle loop until asked to stop, and shut down in reverse order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gpufuse/log.h"
#include "server/alerts.h"
#include "server/observe.h"
#include "server/server.h"

gf_status gf_server_new(const gf_server_config *cfg, gf_server **out, char *err, size_t errlen)
{
    gf_status st;
    if (!cfg->data_dir || !cfg->data_dir[0]) {
        snprintf(err, errlen, "--data: required; name a directory for the server's state");
        return GF_EINVAL;
    }
    if (mkdir(cfg->data_dir, 0700) && errno != EEXIST) {
        snprintf(err, errlen, "--data: %s: cannot create: %s", cfg->data_dir, strerror(errno));
        return GF_EIO;
    }
    gf_server *srv = calloc(1, sizeof *srv);
    if (!srv) return GF_ENOMEM;
    srv->cfg = *cfg;
    srv->listen_fd = -1;
    if (!srv->cfg.heartbeat_timeout_ms)
        srv->cfg.heartbeat_timeout_ms = GF_SRV_DEFAULT_HEARTBEAT_TIMEOUT_MS;
    if (!srv->cfg.lost_grace_ms) srv->cfg.lost_grace_ms = GF_SRV_DEFAULT_LOST_GRACE_MS;
    if (!srv->cfg.max_body) srv->cfg.max_body = GF_SRV_DEFAULT_MAX_BODY;
    snprintf(srv->data_dir, sizeof srv->data_dir, "%s", cfg->data_dir);
    if (cfg->token_file && cfg->token_file[0])
        snprintf(srv->token_path, sizeof srv->token_path, "%s", cfg->token_file);
    else
        snprintf(srv->token_path, sizeof srv->token_path, "%s/admin.token", cfg->data_dir);
    srv->cfg.data_dir = srv->data_dir;
    srv->cfg.token_file = srv->token_path;
    pthread_mutex_init(&srv->lock, NULL);
    srv->started_ms = gf_srv_now_ms();
    if ((st = gf_store_open(srv->data_dir, &srv->store, err, errlen)) != GF_OK) goto fail;
    if ((st = gf_alloc_new(&srv->alloc)) != GF_OK) {
        snprintf(err, errlen, "cannot create the allocator: %s", gf_strerror(st));
        goto fail;
    }
    if ((st = gf_srv__restore(srv, err, errlen)) != GF_OK) {
        char e2[1024];
        snprintf(e2, sizeof e2, "%.400s/%s: cannot restore the state: %.500s", srv->data_dir,
                 GF_STORE_FILE, err);
        snprintf(err, errlen, "%s", e2);
        goto fail;
    }
    if ((st = gf_srv__admin_token_init(srv, err, errlen)) != GF_OK) goto fail;
    gf_srv__metrics_init(srv);
    if ((st = gf_srv__alerts_init(srv, err, errlen)) != GF_OK) goto fail; /* alerts.h */
    if ((st = gf_srv__obs_init(srv, err, errlen)) != GF_OK) goto fail; /* observe.h */
    *out = srv;
    return GF_OK;
fail:
    gf_server_free(srv);
    return st;
}

void gf_server_run(gf_server *srv, volatile sig_atomic_t *stop)
{
    uint64_t step = srv->cfg.heartbeat_timeout_ms / 10;
    if (step > 500) step = 500;
    if (step < 20) step = 20;
    while (!*stop) {
        gf_srv_tick(srv, gf_srv_now_ms());
        struct timespec ts = {(time_t)(step / 1000), (long)(step % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    gf_srv__http_stop(srv);
}

void gf_server_free(gf_server *srv)
{
    if (!srv) return;
    gf_srv__http_stop(srv);
    gf_srv__alerts_free(srv);
    gf_srv__cache_clear(srv);
    gf_srv__obs_free(srv);
    gf_alloc_free(srv->alloc);
    gf_store_close(srv->store);
    pthread_mutex_destroy(&srv->lock);
    free(srv->tls_cert_pem);
    free(srv->tls_key_pem);
    free(srv);
}
