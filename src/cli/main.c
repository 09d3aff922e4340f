/* SPDX-License-Identifier: Apache-2.0 */
/* gpufuse: the one binary; dispatches subcommands (gpufuse help CMD says what each does). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct gf_cli_command commands[] = {
    {"run", "run a command on a vGPU: a VRAM and compute slice of one GPU", gf_cmd_run,
     "usage: gpufuse run [--vram SIZE] [--tflops N | --compute-percent P] [--gpu INDEX|UUID]"
     " [--remote ADDR] [--runtime gpufuse|nvidia] -- CMD ARGS...\n"
     "Creates a vGPU on one GPU (default 0), runs CMD with gpufuse's libcuda.so.1 and\n"
     "libnvidia-ml.so.1 in place, forwards signals, and returns CMD's exit status.\n"
     "SIZE: 4Gi, 512Mi, 1G or bytes. N: FP16 dense TFLOPs. P: percent of the GPU.\n"
     "No limits = the whole GPU. --remote tcp://|tls://|shm://: a vGPU of a gpufuse worker\n"
     "(no GPU or driver needed here; docs/remote.md). See docs/run.md.\n"
     "       gpufuse run --server URL [--pool P] [--vram SIZE] [--tflops N | --compute-percent P]\n"
     "                   [--gpus N] [--remote] [--qos Q] [--model M] [--node N] [--name NAME]\n"
     "                   [--runtime gpufuse|nvidia] [--lease 30s]\n"
     "                   [--token-file F] [--ca-file F] -- CMD ARGS...\n"
     "Asks the server for the vGPU, runs CMD on it (here when its GPUs are on this machine,\n"
     "else through its node's worker), and releases it when CMD exits. The workload's lease is\n"
     "renewed while CMD runs: if gpufuse run is killed, the server frees it when it runs out.\n"},
    {"worker", "serve remote vGPUs on this machine's GPUs (tcp://, tls://, shm://)", gf_cmd_worker,
     "usage: gpufuse worker --listen ADDR [--listen ADDR...] [--tls-cert F --tls-key F]\n"
     "                      [--token-file F] [--allocation-tokens F] [--gpu N[,N...]]\n"
     "                      [--max-sessions N] [--ready-file F]\n"
     "ADDR: tcp://HOST:PORT, tls://HOST:PORT or shm://NAME. Clients reach it with\n"
     "GPUFUSE_REMOTE=ADDR or gpufuse run --remote ADDR. The real driver is found through\n"
     "GPUFUSE_DRIVER (the sim: build/lib/sim/libcuda.so.1). See docs/worker.md.\n"},
    {"server", "run the control plane: pools, nodes, GPUs, workloads, REST API", gf_cmd_server,
     "usage: gpufuse server --data DIR [--listen HOST:PORT] [--tls-cert F --tls-key F]\n"
     "                      [--token-file F] [--heartbeat-timeout 15s] [--lost-grace 60s]\n"
     "                      [--max-body 1Mi] [--threads N] [--alerts FILE]\n"
     "                      [--alert-webhook URL]\n"
     "Keeps its state in DIR/gpufuse.db (SQLite), serves /api/v1 (bearer tokens; the admin\n"
     "token is written to DIR/admin.token on first start), /healthz and /metrics. --listen\n"
     "defaults to 127.0.0.1:7070; port 0 picks a free port (printed, and written to\n"
     "DIR/server.url). SIGTERM stops it cleanly. See docs/server.md and docs/api.md.\n"
     "Built-in alerts (rules in FILE, defaults otherwise) go to the webhook in Alertmanager's\n"
     "format and to GET /api/v1/alerts: docs/alerts.md. Metrics: docs/metrics.md.\n"},
    {"agent", "run the node agent: register this machine's GPUs with a server", gf_cmd_agent,
     "usage: gpufuse agent --server URL --token-file F [--node-name N] [--pool P]\n"
     "                     [--label K=V]... [--address HOST:PORT] [--listen HOST:PORT]\n"
     "                     [--ca-file F] [--interval 5s] [--worker-listen ADDR]\n"
     "                     [--worker-token-file F] [--worker-tls-cert F --worker-tls-key F]\n"
     "Discovers GPUs through NVML (GPUFUSE_NVML or the driver's libnvidia-ml.so.1), registers\n"
     "them, heartbeats, reports usage, and creates the vGPU shared regions of the\n"
     "allocations placed on this node. --listen serves /metrics. --worker-listen starts and\n"
     "supervises a gpufuse worker for remote vGPUs and reports its address; clients need their\n"
     "workload's worker token. See docs/agent.md.\n"},
    {"ls", "list pools, nodes, gpus, workloads, allocations or profiles", gf_cmd_ls,
     "usage: gpufuse ls pools|nodes|gpus|workloads|allocations|profiles [-o json]\n"
     "                  [--server URL] [--token-file F] [--ca-file F]\n"
     "Server: --server or GPUFUSE_SERVER (default http://127.0.0.1:7070). Token: --token-file,\n"
     "GPUFUSE_TOKEN_FILE or GPUFUSE_TOKEN. CA: --ca-file or GPUFUSE_CA_FILE.\n"},
    {"describe", "show one pool, node, gpu, workload, allocation or profile", gf_cmd_describe,
     "usage: gpufuse describe KIND NAME [-o json] [--server URL] [--token-file F] [--ca-file F]\n"},
    {"rm", "delete a workload (releasing its GPUs), a profile, a node or a GPU", gf_cmd_rm,
     "usage: gpufuse rm workload|profile NAME [--server URL] [--token-file F] [--ca-file F]\n"
     "       gpufuse rm node NAME [--force] [--server URL] [--token-file F] [--ca-file F]\n"
     "       gpufuse rm gpu UUID [--force] [--server URL] [--token-file F] [--ca-file F]\n"
     "Removing a node takes it and its GPUs out of the pool and revokes its node tokens; stop\n"
     "its agent first. It is refused while workloads hold GPUs there, unless --force, which\n"
     "deletes those workloads first. Removing a GPU does the same for one GPU; its agent adds\n"
     "it back if it registers again while still reporting it. See docs/cli.md.\n"},
    {"cordon", "take a GPU out of placement, keeping its workloads", gf_cmd_cordon,
     "usage: gpufuse cordon gpu UUID [--server URL] [--token-file F] [--ca-file F]\n"
     "The GPU takes no new placement until \"gpufuse uncordon gpu UUID\"; its workloads keep\n"
     "running and counting. Kept across server restarts and agent registrations.\n"},
    {"uncordon", "let a cordoned GPU take placements again", gf_cmd_cordon,
     "usage: gpufuse uncordon gpu UUID [--server URL] [--token-file F] [--ca-file F]\n"},
    {"token", "make an API token for a node's agent (or another admin token)", gf_cmd_token,
     "usage: gpufuse token create --node NAME | --admin [--server URL] [--token-file F]\n"
     "Prints the new token; a node token may only register, heartbeat and report for NAME.\n"},
    {"cost", "what workloads and pools cost over a period (chargeback)", gf_cmd_cost,
     "usage: gpufuse cost [--pool P] [--workload W] [--from T] [--to T] [-o json]\n"
     "                    [--server URL] [--token-file F] [--ca-file F]\n"
     "Cost = reserved (request x time) + burst (use above the request x burst ratio), at the\n"
     "pool's prices (PUT /api/v1/pools/NAME/prices). T: ms since the epoch, 2024-05-01,\n"
     "2024-05-01T00:00:00Z, now, or -24h. Default: everything recorded. See docs/costs.md.\n"},
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
