/* SPDX-License-Identifier: Apache-2.0 */
/* gpufuse: the one binary; dispatches subcommands (gpufuse help CMD says what each does). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct gf_cli_command commands[] = {
    {"run", "run a command on a vGPU: a VRAM and compute slice of one GPU", gf_cmd_run,
     "usage: gpufuse run [--vram SIZE] [--tflops N | --compute-percent P] [--gpu INDEX|UUID]"
     " [--remote ADDR] -- CMD ARGS...\n"
     "Creates a vGPU on one GPU (default 0), runs CMD with gpufuse's libcuda.so.1 and\n"
     "libnvidia-ml.so.1 in place, forwards signals, and returns CMD's exit status.\n"
     "SIZE: 4Gi, 512Mi, 1G or bytes. N: FP16 dense TFLOPs. P: percent of the GPU.\n"
     "No limits = the whole GPU. --remote tcp://|tls://|shm://: a vGPU of a gpufuse worker\n"
     "(no GPU or driver needed here; docs/remote.md). See docs/run.md.\n"},
    {"worker", "serve remote vGPUs on this machine's GPUs (tcp://, tls://, shm://)", gf_cmd_worker,
     "usage: gpufuse worker --listen ADDR [--listen ADDR...] [--tls-cert F --tls-key F]\n"
     "                      [--token-file F] [--gpu N[,N...]] [--max-sessions N] [--ready-file F]\n"
     "ADDR: tcp://HOST:PORT, tls://HOST:PORT or shm://NAME. Clients reach it with\n"
     "GPUFUSE_REMOTE=ADDR or gpufuse run --remote ADDR. The real driver is found through\n"
     "GPUFUSE_DRIVER (the sim: build/lib/sim/libcuda.so.1). See docs/worker.md.\n"},
    {"help", "show help for gpufuse or one of its commands", gf_cmd_help,
     "usage: gpufuse help [COMMAND]\n"},
    {"version", "print gpufuse's version and the CUDA version it was built against",
     gf_cmd_version, "usage: gpufuse version\n"},
    {"models", "list the GPU models gpufuse knows (VRAM, SMs, FP16 TFLOPs, source)",
     gf_cmd_models,
     "usage: gpufuse models [-o json]\n"
     "Lists the GPU model table (data/gpu_models.csv) that converts FP16 TFLOPs to a share\n"
     "of a GPU and that the sim's devices come from.\n"},
};

const struct gf_cli_command *gf_cli_commands(size_t *n)
{
    *n = sizeof commands / sizeof commands[0];
    return commands;
}

const struct gf_cli_command *gf_cli_find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        gf_cmd_help(1, argv);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return gf_cmd_help(1, argv);
    if (!strcmp(argv[1], "--version")) return gf_cmd_version(1, argv);
    const struct gf_cli_command *c = gf_cli_find(argv[1]);
    if (!c) {
        fprintf(stderr, "gpufuse: unknown command \"%s\"; \"gpufuse help\" lists them\n",
                argv[1]);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(c->usage, stdout);
            return 0;
        }
    }
    return c->run(argc - 1, argv + 1);
}
