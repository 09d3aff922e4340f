/* SPDX-License-Identifier: Apache-2.0 */
/* gpufuse agent: the node agent (flags -> gf_agent_config, signals -> clean stop). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "cli.h"
#include "gpufuse/units.h"
#include "gpufuse/wire.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* A tls:// worker needs both PEM files, and the files mean nothing without tls://. */
static int check_worker_tls(const gf_agent_config *cfg)
{
    int tls = cfg->worker_listen && !strncmp(cfg->worker_listen, "tls://", 6);
    const char *files[2] = {cfg->worker_tls_cert, cfg->worker_tls_key};
    const char *flags[2] = {"--worker-tls-cert", "--worker-tls-key"};
    for (int i = 0; i < 2; i++) {
        if (tls && !files[i]) {
            fprintf(stderr, "gpufuse agent: --worker-listen %s: a tls:// worker needs "
                    "--worker-tls-cert F and --worker-tls-key F (PEM)\n", cfg->worker_listen);
            return -1;
        }
        if (!tls && files[i]) {
            fprintf(stderr, "gpufuse agent: %s: the worker serves TLS only on a tls:// address; "
                    "use --worker-listen tls://HOST:PORT\n", flags[i]);
            return -1;
        }
        if (files[i] && access(files[i], R_OK) != 0) {
            fprintf(stderr, "gpufuse agent: %s %s: %s\n", flags[i], files[i], strerror(errno));
            return -1;
        }
    }
    return 0;
}

int gf_cmd_agent(int argc, char **argv)
{
    gf_agent_config cfg = {0};
    struct gf_cli_conn cc = {0};
    for (int i = 1; i < argc; i++) {
        int r = gf_cli_conn_flag(&cc, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] == '-' && !v) {
            fprintf(stderr, "gpufuse agent: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--node-name")) cfg.node_name = v;
        else if (!strcmp(a, "--pool")) cfg.pool = v;
        else if (!strcmp(a, "--address")) cfg.address = v;
        else if (!strcmp(a, "--worker-token-file")) cfg.worker_token_file = v;
        else if (!strcmp(a, "--worker-tls-cert")) cfg.worker_tls_cert = v;
        else if (!strcmp(a, "--worker-tls-key")) cfg.worker_tls_key = v;
        else if (!strcmp(a, "--worker-listen")) {
            char err[512] = "";
            gf_wire_addr wa;
            if (gf_wire_parse_addr("--worker-listen", v, &wa, err, sizeof err) != GF_OK) {
                fprintf(stderr, "gpufuse agent: %s\n", err);
                return 2;
            }
            cfg.worker_listen = v;
        }
        else if (!strcmp(a, "--listen")) cfg.listen = v;
        else if (!strcmp(a, "--label")) {
            if (!strchr(v, '=') || v[0] == '=' || cfg.n_labels == GF_AGENT_MAX_LABELS) {
                fprintf(stderr, "gpufuse agent: --label \"%s\": give KEY=VALUE (at most %d)\n", v,
                        GF_AGENT_MAX_LABELS);
                return 2;
            }
            cfg.labels[cfg.n_labels++] = v;
        } else if (!strcmp(a, "--interval")) {
            char err[256];
            uint64_t ns;
            if (gf_parse_duration_ns("--interval", v, &ns, err, sizeof err) != GF_OK ||
                ns < 10000000ull) {
                fprintf(stderr, "gpufuse agent: %s\n",
                        err[0] ? err : "--interval: give at least 10ms, e.g. 5s");
                return 2;
            }
            cfg.interval_ms = ns / 1000000ull;
        } else {
            fprintf(stderr, "gpufuse agent: unexpected argument \"%s\"; \"gpufuse agent --help\" "
                    "shows the flags\n", a);
            return 2;
        }
        i++;
    }
    cfg.server = cc.server ? cc.server : getenv("GPUFUSE_SERVER");
    cfg.token_file = cc.token_file ? cc.token_file : getenv("GPUFUSE_TOKEN_FILE");
    cfg.ca_file = cc.ca_file ? cc.ca_file : getenv("GPUFUSE_CA_FILE");
    if (!cfg.server || !*cfg.server) {
        fprintf(stderr, "gpufuse agent: --server URL is required (or GPUFUSE_SERVER)\n");
        return 2;
    }
    if (!cfg.token_file || !*cfg.token_file) {
        fprintf(stderr, "gpufuse agent: --token-file F is required: a node token from "
                "\"gpufuse token create --node NAME\"\n");
        return 2;
    }
    if (cfg.ca_file && !*cfg.ca_file) cfg.ca_file = NULL;
    if (check_worker_tls(&cfg) != 0) return 2;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = gf_agent_run(&cfg, &stop_flag);
    if (!rc) printf("gpufuse agent stopped\n");
    return rc;
}
