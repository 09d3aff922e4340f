/* SPDX-License-Identifier: Apache-2.0 */
/* Internal structures of the allocator (src/allocator/): inventory records, the free-capacity
 * index (two treaps per pool), the least-fragmentation aggregates, and the helpers the files of
 * this folder share. Nothing here is part of the contract (include/gpufuse/allocator.h). */
#ifndef GF_ALLOC_INTERNAL_H
#define GF_ALLOC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "gpufuse/allocator.h"

/* Micro-TFLOPs per TFLOP: compute is kept as integers so sums are exact. */
#define GF_ALLOC__UT 1000000.0
/* Percent is kept as parts per million of a GPU. */
#define GF_ALLOC__PPM 1000000u
#define GF_ALLOC__MAX_TFLOPS 1e6
#define GF_ALLOC__MAX_VRAM (1ull << 50)
/* Task types a pool's workload distribution may hold (least-fragmentation). */
#define GF_ALLOC__MAX_TYPES 256
#define GF_ALLOC__TYPE_WORDS (GF_ALLOC__MAX_TYPES / 64)
#define GF_ALLOC__NIL (-1)
/* Score tables a pool keeps at most (one per distinct compute capacity; a cache). */
#define GF_ALLOC__FTABS 16
/* Observed mode: the scoring snapshot is refreshed once the observations since the last refresh
 * reach 1 + (snapshot mass) / GF_ALLOC__REFRESH_DIV, so it lags the observed mass by < 1/64. */
#define GF_ALLOC__REFRESH_DIV 64
/* Target mode: weights are normalized to this integer total. */
#define GF_ALLOC__WSCALE (1u << 20)

enum { GF_ALLOC__T = 0, GF_ALLOC__V = 1 }; /* tree / dimension numbers */

/* A string -> pointer hash map (open addressing, linear probing, backward-shift delete). Keys
 * point into the records themselves, so they live as long as the entry. */
typedef struct gf_alloc__map {
    const char **keys;
    void **vals;
    size_t cap, n;
} gf_alloc__map;

/* Treap links of one GPU in one tree; nodes are GPUs, addressed by their seq. */
typedef struct gf_alloc__tnode {
    int32_t l, r;
} gf_alloc__tnode;

typedef struct gf_alloc__gpu {
    char uuid[GF_ALLOC_NAME_MAX];
    char model[GF_ALLOC_NAME_MAX];
    int model_id;             /* interned model */
    uint32_t seq;             /* stable id: order of addition */
    uint32_t node, pool;      /* indexes into a->nodes / a->pools */
    uint32_t index;
    uint32_t prio;            /* treap priority, a hash of seq */
    uint64_t cap[2];          /* physical capacity: [T] micro-TFLOPs, [V] bytes */
    uint64_t eff[2];          /* cap * pool ratio */
    uint64_t req[2], lim[2], req_hi[2];
    uint32_t n_allocs;
    int in_tree;              /* node Ready: indexed, and counted by least-fragmentation */
    uint64_t key[2];          /* index keys: eff - lim, clamped at 0 */
    gf_alloc__tnode tn[2];
    /* least-fragmentation contribution, valid while the pool's aggregates are built */
    int frag_in;              /* counted in its node's aggregates */
    int64_t s_ppm;            /* free share of the GPU, ppm, in the dimensions the pool uses */
    uint64_t fit[GF_ALLOC__TYPE_WORDS]; /* bit m: task type m fits */
    /* least-fragmentation fast path (alloc_frag.c): either in a state group or special */
    int32_t grp;              /* its state group, GF_ALLOC__NIL when none */
    uint32_t hpos;            /* position in the group's heap */
    int special;              /* its delta depends on its node (multi-GPU types), not state */
    uint32_t spos;            /* position in the pool's special list */
} gf_alloc__gpu;

/* A GPU's fragmentation is measured in ppm of a GPU times integer weights; sums are exact. */
typedef __int128 gf_alloc__fd;

/* GPUs that share one state (capacity, ratio, sums): for least-fragmentation they score the same,
 * so a placement evaluates each state once. Members are a min-heap of seqs. */
typedef struct gf_alloc__grp {
    uint64_t st[10];          /* cap[2], eff[2], lim[2], req[2], req_hi[2] */
    uint32_t *heap;
    uint32_t n, cap;
    uint32_t apos;            /* position in the pool's active list */
    uint64_t ver;             /* s, wnofit below are valid while == the pool's snapshot version */
    int64_t s;                /* free share of the state, ppm */
    uint64_t wnofit;          /* weight of the task types that do not fit the state */
} gf_alloc__grp;

/* The score table of GPUs of one compute capacity (percent task types scale with it), for one
 * scoring snapshot: which weighted task types fit a GPU depends only on where its free amounts
 * (capped at its capacity) fall among the types' needs, so the weight that fits is read from a
 * 2-D prefix sum over the distinct needs instead of testing every type. */
typedef struct gf_alloc__ftab {
    uint64_t cap_t;           /* compute capacity of the GPUs it serves */
    uint64_t ver;             /* snapshot version it was built for; 0 = empty */
    uint32_t nt, nv;          /* distinct needs of weighted types, ascending */
    uint64_t need[2][GF_ALLOC__MAX_TYPES]; /* [T] compute, [V] VRAM */
    uint64_t *wfit;           /* (nt+1) x (nv+1): [i][j] = weight of the types whose compute
                                 need is <= need[T][i-1] and VRAM need <= need[V][j-1] */
    size_t cap_wfit;
} gf_alloc__ftab;

typedef struct gf_alloc__node {
    char name[GF_ALLOC_NAME_MAX];
    uint32_t seq, pool, pool_pos;
    char (*lkeys)[GF_ALLOC_NAME_MAX];
    char (*lvals)[GF_ALLOC_NAME_MAX];
    size_t n_labels;
    int ready;
    uint32_t *gpus;
    size_t n_gpus, cap_gpus;
    uint64_t sel_gen;         /* per-request selector cache */
    int sel_ok;
} gf_alloc__node;

/* One task type: per-GPU limit in each dimension (t_ppm != 0: compute as a share). */
typedef struct gf_alloc__type {
    uint64_t v, t;
    uint32_t t_ppm;
    uint32_t k;
    double w;                 /* popularity: observed count, or the target's weight */
    uint64_t sw;              /* the weight placements score with (snapshot, integer) */
} gf_alloc__type;

typedef struct gf_alloc__pool {
    char name[GF_ALLOC_NAME_MAX];
    gf_alloc_strategy strategy;
    double ratio[2];
    int32_t root[2];
    uint32_t *gpus;            /* seqs, ascending */
    size_t n_gpus, cap_gpus;
    uint32_t *nodes;           /* node indexes, ascending */
    size_t n_nodes, cap_nodes;
    uint64_t min_cap_t;
    /* workload distribution */
    gf_alloc__type types[GF_ALLOC__MAX_TYPES];
    size_t n_types;
    int target;                /* types were set by gf_alloc_pool_set_workload */
    double wsum;
    /* least-fragmentation aggregates, per (node position, type) */
    int frag_built;
    int used[2];
    uint16_t *fitcnt;
    int64_t *nofit;
    int64_t *total;
    size_t frag_nodes;
    /* the scoring snapshot of the distribution (see docs/allocator.md) */
    uint64_t swsum, obs_since, sver;
    int n_multi;               /* weighted task types with k > 1 */
    int n_ppm;                 /* weighted task types that ask a percent of a GPU */
    int reference;             /* tests: score every GPU from scratch (the slow reference) */
    /* state groups of the plain GPUs, the special GPUs, and the state memo */
    gf_alloc__grp *grps;
    size_t n_grps, cap_grps;
    uint32_t *gfree;           /* unused group ids */
    size_t n_gfree;
    int32_t *gtab;             /* open addressing: state -> group id, NIL = empty */
    size_t gtab_cap, gtab_n;
    uint32_t *act;             /* ids of non-empty groups */
    size_t n_act;
    uint32_t *cand;            /* scratch of a placement: candidate groups (cap_grps) */
    gf_alloc__fd *cbound;      /* and their lower bounds */
    uint32_t *spec;            /* seqs of special GPUs */
    size_t n_spec, cap_spec;
    gf_alloc__ftab *ftabs;     /* GF_ALLOC__FTABS score tables, built on demand */
    size_t n_ftabs, ftab_next; /* in use; the next to replace when all are */
} gf_alloc__pool;

typedef struct gf_alloc__part {
    uint32_t gpu;
    uint64_t req[2], lim[2];
} gf_alloc__part;

typedef struct gf_alloc__rec {
    char id[GF_ALLOC_NAME_MAX];
    uint32_t pool;
    gf_alloc_qos qos;
    int lost;
    uint32_t n;
    gf_alloc__part parts[];
} gf_alloc__rec;

struct gf_alloc {
    gf_alloc__pool **pools;
    size_t n_pools, cap_pools;
    gf_alloc__node **nodes;
    size_t n_nodes, cap_nodes;
    gf_alloc__gpu **gpus;
    size_t n_gpus, cap_gpus;
    char (*models)[GF_ALLOC_NAME_MAX];
    size_t n_models, cap_models;
    gf_alloc__map pool_map, node_map, gpu_map, rec_map;
    uint64_t gen;
};

/* ---- alloc.c ---- */
void gf_alloc__errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int gf_alloc__name_ok(const char *s);
void *gf_alloc__map_get(const gf_alloc__map *m, const char *key);
int gf_alloc__map_put(gf_alloc__map *m, const char *key, void *val);
void gf_alloc__map_del(gf_alloc__map *m, const char *key);
void gf_alloc__map_free(gf_alloc__map *m);
/* Canonical model key (the table's key when it knows the name) into out. */
void gf_alloc__canon_model(const char *name, char *out);
/* Interned id of a canonical model, -1 when no GPU has it. */
int gf_alloc__model_lookup(const gf_alloc *a, const char *canon);
/* Charges (sign +1) or returns (sign -1) one placement to its GPU, keeping index and
 * least-fragmentation aggregates current. */
void gf_alloc__charge(gf_alloc *a, gf_alloc__gpu *g, int sign, const uint64_t req[2],
                      const uint64_t lim[2], int hi);
gf_alloc__pool *gf_alloc__pool_get(const gf_alloc *a, const char *name);
void gf_alloc__fmt_tflops(uint64_t ut, char *buf, size_t len);

/* ---- alloc_index.c ---- */
void gf_alloc__tree_insert(gf_alloc *a, gf_alloc__pool *p, int t, gf_alloc__gpu *g);
void gf_alloc__tree_erase(gf_alloc *a, gf_alloc__pool *p, int t, gf_alloc__gpu *g);
/* Smallest GPU with (key, seq) >= (k, s); NULL when none. */
gf_alloc__gpu *gf_alloc__tree_ge(const gf_alloc *a, const gf_alloc__pool *p, int t, uint64_t k,
                                 uint32_t s);
/* Largest GPU with (key, seq) <= (k, s); NULL when none. */
gf_alloc__gpu *gf_alloc__tree_le(const gf_alloc *a, const gf_alloc__pool *p, int t, uint64_t k,
                                 uint32_t s);
void gf_alloc__gpu_index(gf_alloc *a, gf_alloc__gpu *g);   /* insert into both trees */
void gf_alloc__gpu_unindex(gf_alloc *a, gf_alloc__gpu *g); /* erase from both trees */

/* ---- alloc_frag.c ---- */
/* Requirement of task type m on g in dimension d. */
uint64_t gf_alloc__type_need(const gf_alloc__type *m, const gf_alloc__gpu *g, int d);
void gf_alloc__frag_build(gf_alloc *a, gf_alloc__pool *p);
void gf_alloc__frag_drop(gf_alloc__pool *p);
void gf_alloc__frag_gpu(gf_alloc *a, gf_alloc__pool *p, gf_alloc__gpu *g, int sign);
/* Adds one observation (or a new type) to the pool's distribution; keeps aggregates. */
void gf_alloc__frag_observe(gf_alloc *a, gf_alloc__pool *p, const gf_alloc__type *m);
/* Expected fragmentation change (ppm of a GPU x scoring weight, unnormalized) of node n when
 * GPUs gs[0..k) get headroom keys nk[i][2] instead of their own. From scratch: the reference. */
gf_alloc__fd gf_alloc__frag_delta(const gf_alloc *a, const gf_alloc__pool *p,
                                  const gf_alloc__node *n, const uint32_t *gs,
                                  const uint64_t (*nk)[2], size_t k);
/* F_n itself (unnormalized), GPUs gs[0..k) seeing keys nk[i]; k == 0: as it is. */
gf_alloc__fd gf_alloc__frag_node(const gf_alloc *a, const gf_alloc__pool *p,
                                 const gf_alloc__node *n, const uint32_t *gs,
                                 const uint64_t (*nk)[2], size_t k);
/* Same, O(types), for one GPU, from the node's aggregates. */
gf_alloc__fd gf_alloc__frag_delta1(const gf_alloc *a, const gf_alloc__pool *p,
                                   const gf_alloc__gpu *g, const uint64_t nk[2]);
/* Same for a plain (non-special) GPU: depends on its state only, read from score tables. */
gf_alloc__fd gf_alloc__frag_delta_state(gf_alloc__pool *p, const gf_alloc__gpu *g,
                                        const uint64_t nk[2]);
/* Free share and weight of the non-fitting types of group G's state (cached per snapshot). */
void gf_alloc__grp_score(gf_alloc__pool *p, gf_alloc__grp *G, const gf_alloc__gpu *rep);
/* Tests: nonzero makes least-fragmentation score every fitting GPU from scratch. */
void gf_alloc__frag_set_reference(gf_alloc *a, const char *pool, int on);

#endif
