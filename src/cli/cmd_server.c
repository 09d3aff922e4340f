/* SPDX-License-Identifier: Apache-2.0 */
/* gpufuse server: the control plane daemon (flags -> gf_server_config, signals -> clean stop). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "gpufuse/units.h"
#include "server/server.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "gpufuse server: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\"gpufuse server --help\" shows the flags\n");
    return 2;
}

static int parse_ms(const char *flag, const char *text, uint64_t *out)
{
    char err[256];
    uint64_t ns = 0;
    if (gf_parse_duration_ns(flag, text, &ns, err, sizeof err) != GF_OK) {
        fprintf(stderr, "gpufuse server: %s\n", err);
        return -1;
    }
    if (ns < 1000000ull) {
        fprintf(stderr, "gpufuse server: %s \"%s\": give at least 1ms, e.g. 15s\n", flag, text);
        return -1;
    }
    *out = ns / 1000000ull;
    return 0;
}

int gf_cmd_server(int argc, char **argv)
{
    gf_server_config cfg = {.listen = "127.0.0.1:7070", .threads = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE(flag)                                                                               \
    (!strcmp(a, flag) && (v ? (i++, 1) : (usage_error("%s needs a value", flag), exit(2), 0)))
        if (TAKE("--listen")) cfg.listen = v;
        else if (TAKE("--data")) cfg.data_dir = v;
        else if (TAKE("--tls-cert")) cfg.tls_cert = v;
        else if (TAKE("--tls-key")) cfg.tls_key = v;
        else if (TAKE("--token-file")) cfg.token_file = v;
        else if (TAKE("--alerts")) cfg.alerts_file = v;         /* issue 6: docs/alerts.md */
        else if (TAKE("--alert-webhook")) cfg.alert_webhook = v;
        else if (TAKE("--heartbeat-timeout")) {
            if (parse_ms("--heartbeat-timeout", v, &cfg.heartbeat_timeout_ms)) return 2;
        } else if (TAKE("--lost-grace")) {
            if (parse_ms("--lost-grace", v, &cfg.lost_grace_ms)) return 2;
        } else if (TAKE("--max-body")) {
            char err[256];
            uint64_t b;
            if (gf_parse_size("--max-body", v, &b, err, sizeof err) != GF_OK || b < 1024 ||
                b > (64u << 20)) {
                fprintf(stderr, "gpufuse server: --max-body \"%s\": give 1Ki to 64Mi\n", v);
                return 2;
            }
            cfg.max_body = (size_t)b;
        } else if (TAKE("--threads")) {
            char *end;
            long t = strtol(v, &end, 10);
            if (*end || t < 1 || t > 64) return usage_error("--threads \"%s\": give 1 to 64", v);
            cfg.threads = (unsigned)t;
        } else {
            return usage_error("unexpected argument \"%s\"", a);
        }
#undef TAKE
    }
    if (!cfg.data_dir) return usage_error("%s", "--data DIR is required (the state directory)");

    char err[1024] = "";
    gf_server *srv = NULL;
    if (gf_server_new(&cfg, &srv, err, sizeof err) != GF_OK) {
        fprintf(stderr, "gpufuse server: %s\n", err);
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (gf_server_listen(srv, err, sizeof err) != GF_OK) {
        fprintf(stderr, "gpufuse server: %s\n", err);
        gf_server_free(srv);
        return 1;
    }
    printf("gpufuse server listening on %s (data %s, admin token in %s)\n", srv->url,
           srv->data_dir, srv->token_path);
    fflush(stdout);
    gf_server_run(srv, &stop_flag);
    gf_server_free(srv);
    printf("gpufuse server stopped\n");
    return 0;
}
