/* SPDX-License-Identifier: Apache-2.0 */
/* The gpufuse binary's subcommands: one gf_cmd_* per command, each in its own file. */
#ifndef GF_CLI_H
#define GF_CLI_H

#include <stddef.h>

struct gf_cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name; returns the exit code */
    const char *usage;
};

const struct gf_cli_command *gf_cli_commands(size_t *n);
const struct gf_cli_command *gf_cli_find(const char *name);

int gf_cmd_help(int argc, char **argv);
int gf_cmd_version(int argc, char **argv);
int gf_cmd_models(int argc, char **argv);
int gf_cmd_run(int argc, char **argv);
/* Remote vGPUs (issue 4): cmd_worker.c. */
int gf_cmd_worker(int argc, char **argv);
/* The pool (issue 5): cmd_server.c, cmd_agent.c, cmd_ls.c. */
int gf_cmd_server(int argc, char **argv);
int gf_cmd_agent(int argc, char **argv);
int gf_cmd_ls(int argc, char **argv);
int gf_cmd_describe(int argc, char **argv);
int gf_cmd_rm(int argc, char **argv);
/* gpufuse cordon gpu UUID | gpufuse uncordon gpu UUID (argv[0] says which). */
int gf_cmd_cordon(int argc, char **argv);
int gf_cmd_token(int argc, char **argv);
/* Chargeback (issue 6): cmd_cost.c. */
int gf_cmd_cost(int argc, char **argv);

/* How a client command reaches the server: --server URL (GPUFUSE_SERVER), --token-file F
 * (GPUFUSE_TOKEN_FILE; else GPUFUSE_TOKEN), --ca-file F (GPUFUSE_CA_FILE). */
struct gf_cli_conn {
    const char *server, *token_file, *ca_file;
};
struct gf_http_client;
/* Takes argv[*i] (and its value) when it is one of the connection flags: returns 1 (and
 * advances *i), 0 when it is not one, -1 (message printed) when its value is missing. */
int gf_cli_conn_flag(struct gf_cli_conn *cc, int argc, char **argv, int *i);
/* A client for the server per cc and the environment; NULL after printing why. */
struct gf_http_client *gf_cli_connect(const char *cmd, const struct gf_cli_conn *cc);
/* The same with a request timeout of timeout_ms (gf_cli_connect: 15 s). */
struct gf_http_client *gf_cli_connect_timeout(const char *cmd, const struct gf_cli_conn *cc,
                                              long timeout_ms);

#endif
