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
    int cordoned;             /* gf_alloc_gpu_cordon: never indexed, takes no placement */
    uint64_t key[2];          /* index keys: eff - lim, clamped at 0 */
    gf_alloc__tnode tn[2];
    /* least-fragmentation contribution, valid while the pool's aggregates are built */
    int frag_in;              /* in a state group or special (and counted in the aggregates) */
    /* valid while the pool keeps aggregates (p->agg) */
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
    int32_t bkt;              /* its score class (bucket), NIL while the classes are stale */
    uint64_t key[2];          /* free keys of the state (eff - lim, clamped at 0) */
    uint64_t ver;             /* s, wnofit below are valid while == the pool's snapshot version */
    int64_t s;                /* free share of the state, ppm */
    uint64_t wnofit;          /* weight of the task types that do not fit the state */
} gf_alloc__grp;

/* The score table of a scoring snapshot. Which weighted task types fit a GPU of compute
 * capacity C depends only on x = min(C, free compute) and y = min(VRAM capacity, free VRAM): a
 * type asking t micro-TFLOPs fits when t <= x, one asking a share of ppm parts per million when
 * ceil(C ppm / 1e6) <= x, that is when ppm <= floor(x 1e6 / C), and both need their VRAM v <= y.
 * So the weight that fits is the sum of two cells, one of a 2-D prefix sum over the TFLOPs types
 * (their distinct t against their distinct v) and one over the share types, and the same table
 * serves every capacity. Cells are numbered by rank: how many distinct needs are <= the amount. */
enum { GF_ALLOC__NA = 0, GF_ALLOC__NS = 1, GF_ALLOC__NV = 2 }; /* TFLOPs, shares, VRAM needs */
typedef struct gf_alloc__ftab {
    uint64_t ver;             /* snapshot version it was built for; 0 = never */
    uint32_t n[3];            /* distinct needs of weighted types, ascending, per kind */
    uint64_t need[3][GF_ALLOC__MAX_TYPES];
    uint64_t *w[2];           /* (n[k]+1) x (n[NV]+1): [r][c] = weight of the types of kind k
                                 whose compute need has rank <= r and VRAM need rank <= c */
    size_t cap_w[2];
} gf_alloc__ftab;

/* Where free amounts fall in the table: the ranks of x, of floor(x 1e6 / C) and of y. */
typedef struct gf_alloc__cell {
    uint32_t a, s, v;
} gf_alloc__cell;

/* A score class: the state groups of one GPU shape (capacity, ratio capacity) whose free amounts
 * fall in one cell of the score table, so they share the weight of the types that do not fit.
 * Members are sorted by (free VRAM, free compute, group id). */
typedef struct gf_alloc__bkt {
    uint64_t cap[2], eff[2];
    gf_alloc__cell c;
    uint32_t *m;
    uint32_t n, cap_m;
    uint32_t apos;            /* position in the pool's list of non-empty classes */
    uint64_t min_t;           /* least free compute of a member, unless min_stale */
    int min_stale;
} gf_alloc__bkt;

/* One run of a placement's search: members [lo, hi) of class b whose placement moves them to the
 * same VRAM cell, and a lower bound on their deltas. */
typedef struct gf_alloc__run {
    gf_alloc__fd bound;
    uint32_t b, lo, hi;
    uint32_t ja;              /* the VRAM cell after the placement */
} gf_alloc__run;

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
    /* the node order (alloc_index.c), valid while its pool's nord_shape == shape */
    uint64_t ksum[2];         /* sum of its GPUs' keys: what binpack and spread rank nodes by */
    uint32_t nrank[2];        /* its position in the pool's nord[t] */
    int ndirty;               /* a key changed since ksum was summed; on the pool's dirty list */
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
    /* least-fragmentation aggregates, per (node position, type); kept while agg (there are
     * weighted multi-GPU types), see gf_alloc__frag_gpu */
    int frag_built, agg;
    int used[2];
    uint16_t *fitcnt;
    int64_t *nofit;
    int64_t *total;
    size_t frag_nodes;
    /* the scoring snapshot of the distribution (see docs/allocator.md) */
    uint64_t swsum, obs_since, sver;
    int n_multi;               /* weighted task types with k > 1 */
    int reference;             /* tests: score every GPU from scratch (the slow reference) */
    /* state groups of the plain GPUs and the special GPUs */
    gf_alloc__grp *grps;
    size_t n_grps, cap_grps;
    uint32_t *gfree;           /* unused group ids */
    size_t n_gfree;
    int32_t *gtab;             /* open addressing: state -> group id, NIL = empty */
    size_t gtab_cap, gtab_n;
    uint32_t *act;             /* ids of non-empty groups */
    size_t n_act;
    uint32_t *spec;            /* seqs of special GPUs */
    size_t n_spec, cap_spec;
    gf_alloc__ftab *ftab;      /* the score table, built on demand per snapshot */
    /* score classes of the state groups (alloc_frag.c), valid while bver == layout */
    uint64_t layout, bver;     /* layout: changes when the weighted types' needs may have */
    int n_weighted;            /* weighted task types at the last snapshot */
    gf_alloc__bkt *bkts;
    size_t n_bkts, cap_bkts;
    int32_t *btab;             /* open addressing: (shape, cell) -> class id */
    size_t btab_cap;
    uint32_t *bact;            /* ids of non-empty classes */
    size_t n_bact;
    gf_alloc__run *runs;       /* scratch of a placement */
    size_t cap_runs;
    /* the node order for local multi-GPU binpack and spread (alloc_index.c): node seqs sorted by
     * (ksum[t], pool_pos), built on the first such request, kept by moving the nodes whose keys
     * changed; rebuilt when shape (nodes or GPUs added or removed) moved on */
    uint32_t *nord[2];
    uint32_t *ndirty;          /* seqs of dirty nodes (at most one entry each) */
    size_t n_nord, n_ndirty;
    uint64_t shape, nord_shape; /* nord is valid while nord_shape == shape + 1 */
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
/* The node order: a key of g changed (its node is re-ranked before the next use). */
void gf_alloc__node_touch(gf_alloc *a, const gf_alloc__gpu *g);
/* Makes p->nord current. 0, or -1 when out of memory (then nodes are scanned). */
int gf_alloc__nord_sync(gf_alloc *a, gf_alloc__pool *p);
void gf_alloc__nord_free(gf_alloc__pool *p);

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
gf_alloc__fd gf_alloc__frag_delta1(const gf_alloc *a, gf_alloc__pool *p,
                                   const gf_alloc__gpu *g, const uint64_t nk[2]);
/* Same for a plain (non-special) GPU: depends on its state only, read from score tables. */
gf_alloc__fd gf_alloc__frag_delta_state(gf_alloc__pool *p, const gf_alloc__gpu *g,
                                        const uint64_t nk[2]);
/* Free share and weight of the non-fitting types of group G's state (cached per snapshot). */
void gf_alloc__grp_score(gf_alloc__pool *p, gf_alloc__grp *G, const gf_alloc__gpu *rep);
/* The score table of the current snapshot (NULL: no memory). */
const gf_alloc__ftab *gf_alloc__ftab_get(gf_alloc__pool *p);
/* How many of v[0..n) (ascending) are <= x. */
uint32_t gf_alloc__rank(const uint64_t *v, uint32_t n, uint64_t x);
/* floor(x 1e6 / cap_t): a free compute x as parts per million of the capacity. */
uint64_t gf_alloc__ppm_of_cap(uint64_t x, uint64_t cap_t);
/* The cell of a GPU of capacity cap with keys k (free amounts above the capacity count as it). */
void gf_alloc__cell_of(const gf_alloc__ftab *f, const uint64_t cap[2], const uint64_t k[2],
                       gf_alloc__cell *c);
/* The weight of the types that fit a cell. */
static inline uint64_t gf_alloc__wfit(const gf_alloc__ftab *f, const gf_alloc__cell *c)
{
    size_t w = (size_t)f->n[GF_ALLOC__NV] + 1;
    return f->w[0][c->a * w + c->v] + f->w[1][c->s * w + c->v];
}
/* Free share (ppm) of a GPU like g with keys k, and the weight of the types that do not fit it,
 * from table f (f may be NULL: every type is tested). */
void gf_alloc__score(gf_alloc__pool *p, const gf_alloc__ftab *f, const gf_alloc__gpu *g,
                     const uint64_t k[2], int64_t *s, uint64_t *wnofit);
/* An upper bound on how much placing limits l lowers the free share (ppm) of a GPU of ratio
 * capacity eff. */
int64_t gf_alloc__share_drop_max(const gf_alloc__pool *p, const uint64_t eff[2],
                                 const uint64_t l[2]);
/* Free share (ppm) of a GPU of ratio capacity eff with keys k. */
int64_t gf_alloc__share(const gf_alloc__pool *p, const uint64_t eff[2], const uint64_t k[2]);
/* Makes the score classes current (rebuilt after the types' needs changed). 0, or -1 when out
 * of memory (then the pool scores from scratch). */
int gf_alloc__bkt_sync(gf_alloc__pool *p);
/* The least free compute of class b's members. */
uint64_t gf_alloc__bkt_min_t(gf_alloc__pool *p, gf_alloc__bkt *b);
/* One node's fragmentation while a local multi-GPU request's GPUs are chosen one by one: a
 * copy of the node's per-type aggregates that each chosen GPU updates (see alloc_frag.c). */
typedef struct gf_alloc__nev {
    int agg;                  /* 0: no aggregates; every GPU is plain (state deltas add up) */
    int64_t tot;
    int64_t fc[GF_ALLOC__MAX_TYPES];
    int64_t nf[GF_ALLOC__MAX_TYPES];
} gf_alloc__nev;
/* Starts an evaluation of node n as it is: 0, or -1 when the pool scores from scratch (no
 * aggregates built, a reference run, a GPU of n not counted) and the caller must too. */
int gf_alloc__nev_init(const gf_alloc *a, const gf_alloc__pool *p, const gf_alloc__node *n,
                       gf_alloc__nev *e);
/* F_n's change if g (Ready, of n, not yet committed) had keys nk, on top of the commits so far. */
gf_alloc__fd gf_alloc__nev_delta(gf_alloc__pool *p, gf_alloc__nev *e, const gf_alloc__gpu *g,
                                 const uint64_t nk[2]);
/* Makes g's keys nk part of the evaluation (the step chosen). */
void gf_alloc__nev_commit(gf_alloc__pool *p, gf_alloc__nev *e, const gf_alloc__gpu *g,
                          const uint64_t nk[2]);
/* Tests: nonzero makes least-fragmentation score every fitting GPU from scratch. */
void gf_alloc__frag_set_reference(gf_alloc *a, const char *pool, int on);

#endif
