/* SPDX-License-Identifier: Apache-2.0 */
/* gf_alloc: the pool allocator — inventory (pools, nodes, GPUs), placement of vGPU requests with
 * binpack / spread / least-fragmentation (FGD), oversubscription and QoS admission, release,
 * node loss, and restore from persisted allocations. Pure C: no I/O, no logging, no threads.
 * The server owns one gf_alloc and persists what it returns. See docs/allocator.md.
 *
 * Conventions of every function here:
 *   - returns a gf_status; results go through out-parameters;
 *   - `err`/`errlen` is a caller-owned buffer (may be NULL/0) that receives a one-line message
 *     naming what failed, the value involved and what to do whenever the status is not GF_OK;
 *   - every string argument is copied: the caller may free or reuse it after the call returns;
 *     names (pools, nodes, GPU uuids, models, label keys/values, allocation ids) are 1 to
 *     GF_ALLOC_NAME_MAX-1 bytes, with no control characters;
 *   - not thread-safe: one thread (the server's event loop) uses a gf_alloc at a time;
 *   - deterministic: the same calls in the same order give the same placements; ties are broken
 *     by the order in which GPUs were added (their stable ids), never by addresses or hashing.
 *
 * Units. VRAM is in bytes. Compute is FP16 dense TFLOPs, kept internally as integer
 * micro-TFLOPs (1e-6 TFLOPs) so that place/release/restore are exact: a TFLOPs value given here
 * is rounded up to the next micro-TFLOP, a percent is converted with the chosen GPU's capacity
 * and rounded up the same way. Requests and limits are per GPU.
 *
 * Admission on one GPU of capacity C (TFLOPs, likewise VRAM V) in a pool with oversubscription
 * ratio r (>= 1; one ratio for TFLOPs, one for VRAM), for a request q and limit l (q <= l):
 *   - any QoS:            l <= C                       (one vGPU never exceeds its GPU)
 *                         sum(requests) + q <= C * r   (requests may be oversubscribed by r)
 *                         sum(limits)   + l <= C * r   (and so may limits — never beyond)
 *   - QoS high, critical: sum(high+critical requests) + q <= C
 *                         (never oversubscribed: their requests are backed by real capacity;
 *                          low/medium fill the rest up to C * r and are throttled first)
 * With r == 1 (the default) nothing is oversubscribed. Sums run over every allocation on the GPU
 * (lost ones included, until released).
 */
#ifndef GPUFUSE_ALLOCATOR_H
#define GPUFUSE_ALLOCATOR_H

#include <stddef.h>
#include <stdint.h>

#include "gpufuse/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest name + its NUL. */
#define GF_ALLOC_NAME_MAX 128
/* Most GPUs one request may ask for (gpu_count). */
#define GF_ALLOC_MAX_GPUS 64
/* Most labels on a node, and most key=value pairs in a node selector. */
#define GF_ALLOC_MAX_LABELS 32
/* Most allowed models in one request. */
#define GF_ALLOC_MAX_MODELS 16
/* Largest oversubscription ratio a pool may have. */
#define GF_ALLOC_MAX_RATIO 100.0
/* Length of gf_alloc_result.msg. */
#define GF_ALLOC_MSG_MAX 512

/* The opaque allocator: inventory, allocations and the free-capacity index. */
typedef struct gf_alloc gf_alloc;

/* Placement strategy of a pool. Numbers are frozen (the server persists them). */
typedef enum gf_alloc_strategy {
    GF_ALLOC_BINPACK = 0,   /* fullest GPU (least free) that fits: keeps whole GPUs free */
    GF_ALLOC_SPREAD = 1,    /* emptiest GPU (most free) that fits: spreads load */
    GF_ALLOC_LEAST_FRAG = 2 /* where the pool's expected fragmentation grows least (FGD) */
} gf_alloc_strategy;

/* QoS class of a request. Numbers are frozen. */
typedef enum gf_alloc_qos {
    GF_ALLOC_QOS_LOW = 0,
    GF_ALLOC_QOS_MEDIUM = 1,
    GF_ALLOC_QOS_HIGH = 2,
    GF_ALLOC_QOS_CRITICAL = 3
} gf_alloc_qos;

/* A node label, or one key=value term of a node selector. */
typedef struct gf_alloc_label {
    const char *key;
    const char *value;
} gf_alloc_label;

/* A pool's settings. */
typedef struct gf_alloc_pool_spec {
    const char *name;
    gf_alloc_strategy strategy;
    double oversub_tflops; /* ratio for TFLOPs, in [1, GF_ALLOC_MAX_RATIO]; 0 means 1 */
    double oversub_vram;   /* ratio for VRAM, likewise; 0 means 1 */
} gf_alloc_pool_spec;

/* A node (one GPU machine, or a machine that has none yet). */
typedef struct gf_alloc_node_spec {
    const char *name;
    const char *pool;             /* NULL or "" = "default"; created with defaults if absent */
    const gf_alloc_label *labels; /* n_labels of them; keys unique */
    size_t n_labels;
    int ready;                    /* nonzero = Ready: its GPUs take new placements */
} gf_alloc_node_spec;

/* One physical GPU. */
typedef struct gf_alloc_gpu_spec {
    const char *uuid;     /* unique over the whole allocator */
    const char *node;     /* an existing node */
    const char *model;    /* a key or name gf_gpu_model_find knows ("H100", "Tesla T4"), or any
                             other name (then vram_bytes and tflops must be given) */
    uint32_t index;       /* the GPU's index on its node (as NVML numbers it) */
    uint64_t vram_bytes;  /* 0 = the model table's */
    double tflops;        /* FP16 dense TFLOPs; 0 = the model table's */
} gf_alloc_gpu_spec;

/* A request for a vGPU: gpu_count GPUs, each with the same request/limit. */
typedef struct gf_alloc_request {
    const char *pool;              /* NULL or "" = "default" */
    /* Compute, per GPU: either TFLOPs or percent of the GPU (converted with the capacity of the
     * GPU it lands on), not both for the same field. A limit of 0 means "same as the request".
     * Compute and VRAM requests may not both be 0. */
    double tflops_request, tflops_limit;
    double percent_request, percent_limit; /* (0, 100] when given */
    uint64_t vram_request, vram_limit;     /* bytes; limit 0 = same as the request */
    uint32_t gpu_count;                    /* 1..GF_ALLOC_MAX_GPUS; 0 is taken as 1 */
    const char *const *models;             /* allowed models (keys or names); n_models == 0 =
                                              any model */
    size_t n_models;
    gf_alloc_qos qos;
    int remote;                    /* 0: local, all GPUs on one node; 1: any nodes */
    const gf_alloc_label *selector; /* node labels that must all match; may be NULL */
    size_t n_selector;
    const char *node;              /* optional: only this node */
    const char *gpu;               /* optional: only this GPU (uuid); gpu_count must be 1 */
} gf_alloc_request;

/* Where one GPU's share of an allocation lives. Values are what was admitted on that GPU. */
typedef struct gf_alloc_placement {
    char node[GF_ALLOC_NAME_MAX];
    char gpu_uuid[GF_ALLOC_NAME_MAX];
    uint32_t gpu_index;
    double tflops_request, tflops_limit; /* exact multiples of 1e-6 */
    uint64_t vram_request, vram_limit;
} gf_alloc_placement;

/* Why a request was refused (the message says it with numbers). Numbers are frozen. */
typedef enum gf_alloc_why {
    GF_ALLOC_WHY_NONE = 0,       /* placed */
    GF_ALLOC_WHY_INVALID = 1,    /* bad request (GF_EINVAL) */
    GF_ALLOC_WHY_NO_POOL = 2,    /* no such pool (GF_ENOENT) */
    GF_ALLOC_WHY_NO_GPUS = 3,    /* the pool has no GPU */
    GF_ALLOC_WHY_MODEL = 4,      /* no GPU of an allowed model */
    GF_ALLOC_WHY_SELECTOR = 5,   /* the node selector / node / gpu matches no ready node */
    GF_ALLOC_WHY_NOT_READY = 6,  /* every candidate node is NotReady */
    GF_ALLOC_WHY_VRAM = 7,       /* not enough VRAM (request or limit) on any GPU */
    GF_ALLOC_WHY_TFLOPS = 8,     /* not enough compute (request or limit) on any GPU */
    GF_ALLOC_WHY_BOTH = 9,       /* enough of each somewhere, never both on one GPU */
    GF_ALLOC_WHY_QOS = 10,       /* only with oversubscription, which this QoS may not use */
    GF_ALLOC_WHY_MULTI = 11,     /* single GPUs fit, but not gpu_count of them (on one node) */
    GF_ALLOC_WHY_EXISTS = 12     /* the allocation id is taken (GF_EEXIST) */
} gf_alloc_why;

/* The answer of gf_alloc_place. */
typedef struct gf_alloc_result {
    uint32_t n;                                  /* placements filled (gpu_count on success) */
    gf_alloc_placement placements[GF_ALLOC_MAX_GPUS];
    gf_alloc_why why;
    char msg[GF_ALLOC_MSG_MAX];                  /* "" on success; else why, in numbers */
} gf_alloc_result;

/* An allocation as gf_alloc_foreach reports it. Pointers are valid during the callback only. */
typedef struct gf_alloc_info {
    const char *id;
    const char *pool;
    gf_alloc_qos qos;
    int lost;                          /* on a node that was lost, not yet released */
    uint32_t n;
    const gf_alloc_placement *placements;
} gf_alloc_info;

/* Usage of one GPU (gf_alloc_gpu_get). Sums over every allocation on it. */
typedef struct gf_alloc_gpu_info {
    char uuid[GF_ALLOC_NAME_MAX];
    char node[GF_ALLOC_NAME_MAX];
    char pool[GF_ALLOC_NAME_MAX];
    char model[GF_ALLOC_NAME_MAX];   /* the model table's key when known, else as given */
    uint32_t index;
    int ready;                       /* its node is Ready */
    uint64_t vram_bytes;
    double tflops;
    uint64_t vram_request_sum, vram_limit_sum;
    double tflops_request_sum, tflops_limit_sum;
    double tflops_request_hi_sum;    /* QoS high + critical */
    uint64_t vram_request_hi_sum;
    uint64_t vram_free;              /* what a low-QoS limit may still take: V*r - limits, >= 0 */
    double tflops_free;              /* likewise for TFLOPs */
    uint32_t n_allocs;
    int cordoned;                    /* gf_alloc_gpu_cordon: takes no new placement */
} gf_alloc_gpu_info;

/* One kind of task in a pool's workload distribution (least-fragmentation). */
typedef struct gf_alloc_task_type {
    double tflops;      /* per GPU; or 0 with percent */
    double percent;     /* per GPU, of the GPU's capacity; or 0 with tflops */
    uint64_t vram;      /* per GPU */
    uint32_t gpu_count; /* >= 1 */
    double weight;      /* > 0: relative popularity */
} gf_alloc_task_type;

/* ---- lifetime ----------------------------------------------------------------------------- */

/* Creates an empty allocator (no pools). *out is owned by the caller: gf_alloc_free.
 * GF_ENOMEM when out of memory, GF_EINVAL when out is NULL. */
gf_status gf_alloc_new(gf_alloc **out);

/* Frees everything the allocator holds. NULL is a no-op. */
void gf_alloc_free(gf_alloc *a);

/* ---- inventory ---------------------------------------------------------------------------- */

/* Creates the pool spec->name, or updates its strategy and ratios when it exists (allocations
 * stay where they are; later admissions use the new ratios, so a lowered ratio may leave a GPU
 * over its new capacity, which then takes nothing until enough is released).
 * GF_EINVAL for a bad name, strategy or ratio (not in [1, GF_ALLOC_MAX_RATIO], NaN). */
gf_status gf_alloc_pool_set(gf_alloc *a, const gf_alloc_pool_spec *spec, char *err, size_t errlen);

/* Sets the target workload distribution of a pool for least-fragmentation: n task types with
 * relative weights (copied). n == 0 returns the pool to "the distribution of the requests seen so
 * far" (the default). GF_ENOENT for an unknown pool, GF_EINVAL for a bad type (as for a request),
 * GF_ERANGE for more than 256 types. */
gf_status gf_alloc_pool_set_workload(gf_alloc *a, const char *pool, const gf_alloc_task_type *types,
                                     size_t n, char *err, size_t errlen);

/* Adds a node; its pool is created with defaults (binpack, no oversubscription) when absent.
 * GF_EEXIST when the name is taken, GF_EINVAL for a bad name, label or too many labels. */
gf_status gf_alloc_node_add(gf_alloc *a, const gf_alloc_node_spec *spec, char *err, size_t errlen);

/* Marks a node Ready (ready != 0) or NotReady. A NotReady node's GPUs take no new placements;
 * its allocations stay. Marking it Ready again clears the lost mark of its allocations (the
 * agent came back before the server released them). GF_ENOENT for an unknown node. */
gf_status gf_alloc_node_set_ready(gf_alloc *a, const char *node, int ready, char *err,
                                  size_t errlen);

/* Adds a GPU to an existing node. GF_ENOENT for an unknown node, GF_EEXIST when the uuid is
 * taken, GF_EINVAL for a bad uuid, a model the table does not know while vram_bytes or tflops is
 * 0, or a capacity that is NaN, negative, zero or above 1e6 TFLOPs / 2^50 bytes. */
gf_status gf_alloc_gpu_add(gf_alloc *a, const gf_alloc_gpu_spec *spec, char *err, size_t errlen);

/* Fills *out with the GPU's capacity and usage. GF_ENOENT for an unknown uuid. */
gf_status gf_alloc_gpu_get(const gf_alloc *a, const char *uuid, gf_alloc_gpu_info *out);

/* Calls fn for every GPU in the order they were added (stable ids); stops early when fn returns
 * nonzero. Returns the number of GPUs visited. */
size_t gf_alloc_gpu_foreach(const gf_alloc *a, int (*fn)(const gf_alloc_gpu_info *gpu, void *ctx),
                            void *ctx);

/* Takes GPU uuid out of the allocator: out of its pool's free-capacity index, least-
 * fragmentation's state groups and per-node aggregates, its node, gf_alloc_gpu_get and
 * gf_alloc_gpu_foreach; later placements never consider it. Its stable id is not reused, so the
 * order of the other GPUs (tie-breaks) is unchanged; adding the uuid again makes a new GPU.
 * GF_EBUSY while an allocation (lost ones included) has a placement on it: err names those
 * allocations (in id order) and says to release them first; nothing changes. GF_ENOENT for an
 * unknown uuid. */
gf_status gf_alloc_gpu_remove(gf_alloc *a, const char *uuid, char *err, size_t errlen);

/* Cordons GPU uuid (on != 0: it takes no new placement, as if its node were NotReady, while its
 * allocations stay and count) or uncordons it (on == 0: it takes placements again when its node
 * is Ready). For a GPU that vanished while allocations still use it: cordon it, and remove it
 * (gf_alloc_gpu_remove) once they are released. GF_ENOENT for an unknown uuid. */
gf_status gf_alloc_gpu_cordon(gf_alloc *a, const char *uuid, int on, char *err, size_t errlen);

/* Takes node and all of its GPUs out of the allocator, as gf_alloc_gpu_remove does for each;
 * its pool stays (even when empty). GF_EBUSY while any allocation has a placement on one of its
 * GPUs (err names them; nothing changes), GF_ENOENT for an unknown node. */
gf_status gf_alloc_node_remove(gf_alloc *a, const char *node, char *err, size_t errlen);

/* ---- placement ---------------------------------------------------------------------------- */

/* Places req and, when id is not NULL, records it as allocation id (the server's name). With
 * id == NULL it only answers where the request would go (a dry run changes nothing). While the
 * pool uses least-fragmentation, a valid request with an id counts in its observed workload
 * distribution whether it is placed or refused.
 * On GF_OK res->n == gpu_count placements, in the order of the GPUs' stable ids within the
 * chosen set, res->why == GF_ALLOC_WHY_NONE, res->msg == "". All-or-nothing: on any other
 * status nothing was recorded. Statuses: GF_EINVAL a bad request (negative, zero, NaN, inf,
 * huge values, limit < request, percent and TFLOPs both given, too many models or selector
 * terms, gpu with gpu_count > 1) — res->msg names the field and value; GF_ENOENT no such pool,
 * node or gpu; GF_EEXIST id is already an allocation; GF_ENOSPC nothing fits — res->why says
 * which constraint, res->msg says it in numbers, built from the current state, e.g.
 *   "largest free VRAM in pool 'default' is 12 GiB on node-3 GPU 1; asked 40 GiB"
 *   "no GPU of model H100 in pool 'default' (models there: A10, T4)"
 *   "node selector zone=us-east matches no ready node in pool 'default'"
 * res may not be NULL; req and a may not be NULL (GF_EINVAL). */
gf_status gf_alloc_place(gf_alloc *a, const char *id, const gf_alloc_request *req,
                         gf_alloc_result *res);

/* Releases allocation id, returning exactly what it held to its GPUs. GF_ENOENT when unknown. */
gf_status gf_alloc_release(gf_alloc *a, const char *id);

/* A node was lost: marks it NotReady and every allocation with a placement on it lost, and
 * calls fn (may be NULL) with each such allocation's id, in id order. Their capacity stays
 * held until gf_alloc_release / gf_alloc_node_release (the server's grace period).
 * *n_out (may be NULL) gets how many were marked. GF_ENOENT for an unknown node. */
gf_status gf_alloc_node_lost(gf_alloc *a, const char *node, void (*fn)(const char *id, void *ctx),
                             void *ctx, size_t *n_out);

/* Releases every allocation with a placement on node (all of its placements, on every node),
 * calling fn (may be NULL) with each id before it is released, in id order. *n_out (may be
 * NULL) gets how many. GF_ENOENT for an unknown node. */
gf_status gf_alloc_node_release(gf_alloc *a, const char *node,
                                void (*fn)(const char *id, void *ctx), void *ctx, size_t *n_out);

/* ---- persistence -------------------------------------------------------------------------- */

/* Calls fn for every allocation, in id order (strcmp); stops early when fn returns nonzero.
 * Returns the number visited. What it reports is what gf_alloc_restore takes back. */
size_t gf_alloc_foreach(const gf_alloc *a, int (*fn)(const gf_alloc_info *info, void *ctx),
                        void *ctx);

/* Puts back a persisted allocation without placing it again: charges each placement's
 * request/limit to the GPU named by its gpu_uuid (node and gpu_index are not consulted), with
 * no admission check (what was acknowledged is kept even if the pool's ratio was lowered since),
 * and marks it lost when lost != 0. GPUs must have been added first. GF_EEXIST for a taken id,
 * GF_ENOENT for an unknown GPU or pool (the GPUs must be in that pool), GF_EINVAL for n outside
 * 1..GF_ALLOC_MAX_GPUS, the same GPU twice, or a value that is negative, NaN or limit < request.
 * Nothing is charged unless every placement is valid. */
gf_status gf_alloc_restore(gf_alloc *a, const char *id, const char *pool, gf_alloc_qos qos,
                           int lost, const gf_alloc_placement *placements, uint32_t n, char *err,
                           size_t errlen);

/* Number of allocations held. */
size_t gf_alloc_count(const gf_alloc *a);

/* ---- names -------------------------------------------------------------------------------- */

/* "binpack", "spread", "least-fragmentation"; NULL for a number not in the enum. */
const char *gf_alloc_strategy_name(gf_alloc_strategy s);
/* Parses those names (case-insensitive; also "least-frag", "fgd"). GF_EINVAL otherwise. */
gf_status gf_alloc_strategy_parse(const char *text, gf_alloc_strategy *out);
/* "low", "medium", "high", "critical"; NULL for a number not in the enum. */
const char *gf_alloc_qos_name(gf_alloc_qos q);
/* Parses those names (case-insensitive). GF_EINVAL otherwise. */
gf_status gf_alloc_qos_parse(const char *text, gf_alloc_qos *out);

#ifdef __cplusplus
}
#endif

#endif
