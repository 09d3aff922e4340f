/* SPDX-License-Identifier: Apache-2.0 */
/* gpufuse agent internals: GPU discovery and sampling through NVML (dlopen'ed), the
 * register/heartbeat/usage loop against the server, the vGPU shared regions of the allocations
 * placed on this node, and the agent's /metrics. See docs/agent.md. */
#ifndef GF_AGENT_AGENT_H
#define GF_AGENT_AGENT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "gpufuse/status.h"

#define GF_AGENT_MAX_GPUS 64
#define GF_AGENT_MAX_LABELS 16

typedef struct gf_agent_config {
    const char *server;      /* http(s)://host:port */
    const char *token_file;  /* the node token (gpufuse token create --node NAME) */
    const char *ca_file;     /* private CA for an https server, or NULL */
    const char *node_name;   /* NULL = the host name */
    const char *pool;        /* NULL = "default" */
    const char *address;     /* where this node's worker listens (reported), or NULL: the
                                worker's bound address when worker_listen is set */
    const char *worker_listen;     /* ADDR: start and supervise a gpufuse worker there */
    const char *worker_token_file; /* the worker's shared secret (its --token-file), or NULL */
    const char *worker_tls_cert;   /* PEM certificate and key for a tls:// worker_listen */
    const char *worker_tls_key;
    const char *listen;      /* HOST:PORT for /metrics, or NULL for none */
    const char *labels[GF_AGENT_MAX_LABELS]; /* "key=value" */
    unsigned n_labels;
    uint64_t interval_ms;    /* heartbeat period; 0 = what the server asks (timeout / 3) */
} gf_agent_config;

/* One GPU as NVML shows it, with its latest sample. */
typedef struct gf_agent_gpu {
    unsigned index;
    char uuid[96];
    char name[96];
    uint64_t vram_total;
    double tflops;           /* from the model table; 0 when the model is unknown */
    /* latest sample */
    uint64_t vram_used;
    double utilization;      /* percent */
    int temperature_c;       /* -1 unknown */
    int64_t power_mw;        /* -1 unknown */
} gf_agent_gpu;

typedef struct gf_agent_nvml gf_agent_nvml;

/* Loads NVML (GPUFUSE_NVML, else the driver's usual places; never gpufuse's own shim),
 * initializes it and lists the GPUs. *out owned by the caller (gf_agent_nvml_close). */
gf_status gf_agent_nvml_open(gf_agent_nvml **out, gf_agent_gpu *gpus, unsigned max,
                             unsigned *n, char *err, size_t errlen);
/* Refreshes the sample fields of gpus[0..n). */
void gf_agent_nvml_sample(gf_agent_nvml *nv, gf_agent_gpu *gpus, unsigned n);
void gf_agent_nvml_close(gf_agent_nvml *nv);

/* Runs the agent until *stop is set. Returns 0 on a clean stop, 1 on a fatal error (message
 * printed: bad token, node refused by the server, no NVML). */
int gf_agent_run(const gf_agent_config *cfg, volatile sig_atomic_t *stop);

#endif
