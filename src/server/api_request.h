/* SPDX-License-Identifier: Apache-2.0 */
/* The server's request bodies: JSON text -> validated C structs, with one error message per
 * refusal that names the field and what to fix. Pure functions (no I/O, no globals) so that the
 * fuzz target (tests/fuzz/fuzz_api_request.c) and the unit tests call exactly what the server
 * calls. See docs/api.md for every field. */
#ifndef GF_SERVER_API_REQUEST_H
#define GF_SERVER_API_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "gpufuse/status.h"

#define GF_API_NAME_MAX 64    /* names: [a-z0-9]([a-z0-9._-]*), < 64 chars */
#define GF_API_MODEL_MAX 64   /* a GPU model key or name */
#define GF_API_MAX_MODELS 16
#define GF_API_MAX_LABELS 16
#define GF_API_LABEL_MAX 64
#define GF_API_MAX_GPUS 64    /* GPUs a node may register; GPUs a workload may ask for */
#define GF_API_UUID_MAX 96
#define GF_API_MAX_VGPUS 256  /* vGPU usage rows in one usage report */
/* A workload's lease (lease_ms): gpufuse run renews it; the server deletes the workload when
 * it expires. */
#define GF_API_LEASE_MIN_MS 1000ull
#define GF_API_LEASE_MAX_MS (24ull * 3600 * 1000)
/* Sizes above this are refused as "huge" (1 EiB: far beyond any GPU, far below overflow). */
#define GF_API_SIZE_MAX (1ull << 60)
#define GF_API_TFLOPS_MAX 1.0e6

typedef enum gf_api_qos {
    GF_API_QOS_LOW = 0,
    GF_API_QOS_MEDIUM = 1,
    GF_API_QOS_HIGH = 2,
    GF_API_QOS_CRITICAL = 3,
} gf_api_qos;

/* "low" ... "critical"; NULL for a value outside the enum. */
const char *gf_api_qos_name(int qos);

/* Which fields of a gf_api_workload the body gave (a profile fills the others). */
enum {
    GF_API_F_POOL = 1u << 0,
    GF_API_F_TFLOPS_REQ = 1u << 1,
    GF_API_F_TFLOPS_LIM = 1u << 2,
    GF_API_F_PCT_REQ = 1u << 3,
    GF_API_F_PCT_LIM = 1u << 4,
    GF_API_F_VRAM_REQ = 1u << 5,
    GF_API_F_VRAM_LIM = 1u << 6,
    GF_API_F_GPU_COUNT = 1u << 7,
    GF_API_F_MODELS = 1u << 8,
    GF_API_F_QOS = 1u << 9,
    GF_API_F_REMOTE = 1u << 10,
    GF_API_F_NODE = 1u << 11,
    GF_API_F_LABELS = 1u << 12,
};

typedef struct gf_api_label {
    char key[GF_API_LABEL_MAX];
    char value[GF_API_LABEL_MAX];
} gf_api_label;

/* A vGPU request (POST /api/v1/workloads) or a workload profile (PUT /api/v1/profiles/NAME:
 * the same fields without name/profile). Zero means "not asked" for every quantity. */
typedef struct gf_api_workload {
    char name[GF_API_NAME_MAX];    /* "" = the server picks one */
    char profile[GF_API_NAME_MAX]; /* "" = none */
    char pool[GF_API_NAME_MAX];    /* "" = "default" */
    double tflops_request, tflops_limit;   /* FP16 TFLOPs per GPU */
    double percent_request, percent_limit; /* percent of a GPU, (0, 100] */
    uint64_t vram_request, vram_limit;     /* bytes per GPU */
    unsigned gpu_count;                    /* 0 = 1 */
    unsigned n_models;
    char models[GF_API_MAX_MODELS][GF_API_MODEL_MAX]; /* allowed GPU models; none = any */
    int qos;                               /* gf_api_qos; default medium */
    int remote;                            /* 0 local, 1 remote */
    char node[GF_API_NAME_MAX];            /* "" = any node */
    unsigned n_labels;
    gf_api_label labels[GF_API_MAX_LABELS]; /* node selector: every label must match */
    uint64_t lease_ms;                     /* 0 = no lease (workloads only, not profiles) */
    unsigned set;                          /* GF_API_F_* of what the body gave */
} gf_api_workload;

/* Parses a workload (is_profile 0) or profile (is_profile 1) body. Unknown fields, wrong types,
 * negative or huge sizes, limits below requests and both TFLOPs and percent are refused with
 * GF_EINVAL (GF_ERANGE for numbers out of range) and a message in err. */
gf_status gf_api_parse_workload(const char *body, size_t len, int is_profile,
                                gf_api_workload *out, char *err, size_t errlen);

/* Fills every field of w that w->set lacks from profile p (a parsed profile). */
void gf_api_workload_apply_profile(gf_api_workload *w, const gf_api_workload *p);

/* Final checks once a profile is merged: limits >= requests, tflops vs percent exclusive. */
gf_status gf_api_workload_check(const gf_api_workload *w, char *err, size_t errlen);

/* The canonical JSON of w's fields (what is stored and shown): malloc'ed, caller frees. */
char *gf_api_workload_to_json(const gf_api_workload *w, int with_name);

struct json_t;
/* A lease duration (lease_ms): an integer of milliseconds or a duration string ("30s", "2m",
 * "500ms"), from GF_API_LEASE_MIN_MS to GF_API_LEASE_MAX_MS. Exposed for the tests. */
gf_status gf_api_lease(const char *field, struct json_t *v, uint64_t *out_ms, char *err,
                       size_t errlen);

/* POST /api/v1/workloads/NAME/renew: an empty body or {} (renew for the workload's own
 * duration; *lease_ms = 0), or {"lease_ms": D} (renew for D from now on, and keep D). */
gf_status gf_api_parse_renew(const char *body, size_t len, uint64_t *lease_ms, char *err,
                             size_t errlen);

typedef struct gf_api_gpu_info {
    char uuid[GF_API_UUID_MAX];
    unsigned index;
    char model[GF_API_MODEL_MAX];  /* as NVML names it */
    uint64_t vram_bytes;
    double tflops;                 /* FP16 dense; 0 = look it up in the model table */
} gf_api_gpu_info;

/* POST /api/v1/nodes/register. */
typedef struct gf_api_register {
    char name[GF_API_NAME_MAX];
    char pool[GF_API_NAME_MAX];     /* "" = "default" */
    char address[256];              /* where its workers listen ("" = none) */
    char agent_version[32];
    unsigned n_labels;
    gf_api_label labels[GF_API_MAX_LABELS];
    unsigned n_gpus;
    gf_api_gpu_info gpus[GF_API_MAX_GPUS];
} gf_api_register;

gf_status gf_api_parse_register(const char *body, size_t len, gf_api_register *out, char *err,
                                size_t errlen);

typedef struct gf_api_gpu_usage {
    char uuid[GF_API_UUID_MAX];
    uint64_t vram_used;
    double utilization;    /* percent 0..100 */
    int temperature_c;     /* -1 unknown */
    int64_t power_mw;      /* -1 unknown */
} gf_api_gpu_usage;

typedef struct gf_api_vgpu_usage {
    char allocation[2 * GF_API_NAME_MAX + 16];
    uint64_t vram_used;
    uint64_t busy_ns;      /* GPU time charged since the vGPU was created */
    uint64_t throttled_ns;
} gf_api_vgpu_usage;

/* POST /api/v1/nodes/NAME/usage (and the optional body of a heartbeat). */
typedef struct gf_api_usage {
    unsigned n_gpus;
    gf_api_gpu_usage gpus[GF_API_MAX_GPUS];
    unsigned n_vgpus;
    gf_api_vgpu_usage vgpus[GF_API_MAX_VGPUS];
} gf_api_usage;

gf_status gf_api_parse_usage(const char *body, size_t len, gf_api_usage *out, char *err,
                             size_t errlen);

/* PUT /api/v1/pools/NAME. */
typedef struct gf_api_pool {
    char strategy[32];      /* binpack | spread | least-fragmentation; "" = keep/binpack */
    double oversub_tflops;  /* ratio in [1, 100]; 0 = keep (1 for a new pool) */
    double oversub_vram;    /* likewise for VRAM */
} gf_api_pool;

gf_status gf_api_parse_pool(const char *body, size_t len, gf_api_pool *out, char *err,
                            size_t errlen);

/* POST /api/v1/tokens: {"node": "NAME"} makes a node token; {"admin": true} an admin token. */
typedef struct gf_api_token_req {
    char node[GF_API_NAME_MAX];
    int admin;
} gf_api_token_req;

gf_status gf_api_parse_token_req(const char *body, size_t len, gf_api_token_req *out, char *err,
                                 size_t errlen);

/* A resource name: 1..63 of [a-z0-9._-], starting with a letter or digit. Writes a message
 * naming what on failure. */
gf_status gf_api_check_name(const char *what, const char *name, char *err, size_t errlen);

/* Parses a size given as a JSON number (bytes, integral, >= 0) or string ("4Gi"). field names
 * it in messages. Exposed for the tests. */
struct json_t;
gf_status gf_api_size(const char *field, struct json_t *v, uint64_t *out, char *err,
                      size_t errlen);

#endif
