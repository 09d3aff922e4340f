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

#endif
