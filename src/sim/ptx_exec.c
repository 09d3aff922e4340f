/* SPDX-License-Identifier: Apache-2.0 */
/* The PTX engine's interpreter: runs a decoded kernel over a grid on the calling thread.
 *
 * Blocks run one after another. Inside a block each thread runs alone until it reaches a
 * barrier, a warp-synchronous instruction (shfl/vote/activemask/bar.warp.sync) or its end;
 * when no thread can run, the scheduler executes waiting warp groups together and releases
 * completed barriers, or reports a deadlock. Arithmetic wraps through unsigned types and
 * memory goes through memcpy, so no PTX program can make the engine itself misbehave.
 */
#include "sim/ptx_internal.h"

#include <fenv.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Launch-time bounds: beyond these a launch fails instead of allocating the host away. */
#define MAX_SHARED      (4u << 20)
#define MAX_LOCAL_TOTAL (1ull << 30)
#define MAX_STACK_TOTAL (1ull << 30)

enum { TS_RUN = 0, TS_BAR, TS_WARP, TS_DONE };

typedef struct frame {
    uint64_t *r;
    uint8_t *param;
    uint32_t local_off;
    uint32_t fn;
    uint32_t ret_pc;
} frame;

typedef struct thr {
    uint64_t *r;         /* current frame's registers */
    uint8_t *param;      /* current frame's .param area */
    uint32_t local_off;  /* current frame's offset in the .local window */
    uint32_t fn, pc, depth;
    uint8_t state, carry, barid, red;
    uint32_t red_dst;    /* bar.red destination slot */
    uint32_t lin, lane, warp;
    uint32_t tid[3];
    uint64_t *regbase;
    uint8_t *parambase;
    uint8_t *local;      /* host address of this thread's .local window */
    frame *frames;
} thr;

typedef struct bar {
    uint32_t arrived, expected, popc;
    uint8_t all, any, used;
    uint32_t line;
} bar;

typedef struct ex {
    const gf_ptx_module *m;
    const struct gf_ptx_kernel *k;
    const gf_ptx_launch *L;
    char *err;
    size_t errlen;
    uint8_t *smem;
    uint32_t smem_size, dyn_off;
    const uint8_t *kparams;
    uint32_t kparams_size;
    uint32_t nthreads, nwarps, ctaid[3], blocklin;
    uint32_t local_per, slots_per, param_per, depth_max;
    thr *t;
    uint64_t cbase[4], clen[4]; /* ranges the check callback approved, most recent first */
    uint32_t cnext;
    uint64_t ninsn;
    uint32_t nexited;
    bar bars[16];
} ex;

/* ---- bits and floats -------------------------------------------------------------------- */

static inline uint64_t msk(uint64_t v, unsigned sz)
{
    return sz >= 8 ? v : v & ((1ull << (sz * 8)) - 1);
}

static inline int64_t sx(uint64_t v, unsigned sz)
{
    unsigned sh = 64 - sz * 8;
    return (int64_t)(v << sh) >> sh;
}

/* Short names for the interpreter's many float <-> bits moves. */
static inline float F(uint64_t v) { return gf_ptx__f32(v); }
static inline uint64_t FB(float f) { return gf_ptx__f32_bits(f); }
static inline double D(uint64_t v) { return gf_ptx__f64(v); }
static inline uint64_t DB(double d) { return gf_ptx__f64_bits(d); }

static inline float ftz32(float x)
{
    uint32_t u = (uint32_t)FB(x);
    if ((u & 0x7f800000u) == 0 && (u & 0x7fffffu))
        u &= 0x80000000u;
    return F(u);
}

static inline float sat32(float x)
{
    if (!(x > 0.0f))
        return 0.0f; /* NaN and negatives */
    return x > 1.0f ? 1.0f : x;
}

static inline double sat64(double x)
{
    if (!(x > 0.0))
        return 0.0;
    return x > 1.0 ? 1.0 : x;
}

/* f16 (mb=10, bias=15) and bf16 (mb=7, bias=127) from and to double. */
static double small2d(uint32_t h, int mb, int bias)
{
    int emax = bias * 2 + 1;
    int e = (int)(h >> mb) & emax;
    uint32_t m = h & ((1u << mb) - 1);
    double v;
    if (e == 0)
        v = ldexp((double)m, 1 - bias - mb);
    else if (e == emax)
        v = m ? NAN : INFINITY;
    else
        v = ldexp((double)(m | (1u << mb)), e - bias - mb);
    return (h >> (mb + (mb == 10 ? 5 : 8))) & 1 ? -v : v;
}

static double rnd_int(double q, int rnd, int neg)
{
    switch (rnd) {
    case GF_RND_RZ: return trunc(q);
    case GF_RND_RM: return neg ? ceil(q) : floor(q);
    case GF_RND_RP: return neg ? floor(q) : ceil(q);
    default: return nearbyint(q);
    }
}

static uint32_t d2small(double x, int rnd, int mb, int bias)
{
    int ebits = mb == 10 ? 5 : 8;
    uint32_t sign = signbit(x) ? 1u << (mb + ebits) : 0;
    uint32_t inf = (uint32_t)((2 * bias + 1) << mb);
    if (isnan(x))
        return 0x7fffu; /* the canonical NaN NVIDIA hardware produces */
    int neg = sign != 0;
    double a = fabs(x);
    uint32_t maxfin = inf - 1;
    if (isinf(a))
        return sign | inf;
    int minexp = 1 - bias;
    double q;
    int e;
    if (a < ldexp(1.0, minexp)) {
        q = rnd_int(ldexp(a, bias - 1 + mb), rnd, neg);
        return sign | (uint32_t)q; /* may round up to the smallest normal: still right */
    }
    frexp(a, &e);
    e -= 1;
    q = rnd_int(ldexp(a, mb - e), rnd, neg);
    if (q >= ldexp(1.0, mb + 1)) {
        q = ldexp(1.0, mb);
        e++;
    }
    if (e > bias) {
        int to_inf = rnd == GF_RND_RN || rnd == GF_RND_NONE || (rnd == GF_RND_RM && neg) ||
                     (rnd == GF_RND_RP && !neg);
        return sign | (to_inf ? inf : maxfin);
    }
    return sign | (uint32_t)((e + bias) << mb) | ((uint32_t)q - (1u << mb));
}

static int fenv_mode(int rnd)
{
    switch (rnd) {
    case GF_RND_RZ: case GF_RND_RZI: return FE_TOWARDZERO;
    case GF_RND_RM: case GF_RND_RMI: return FE_DOWNWARD;
    case GF_RND_RP: case GF_RND_RPI: return FE_UPWARD;
    default: return FE_TONEAREST;
    }
}

static inline int directed(int rnd)
{
    return rnd == GF_RND_RZ || rnd == GF_RND_RM || rnd == GF_RND_RP;
}

/* f32/f64 add, sub, mul, fma, div, sqrt, rcp under a directed rounding mode. The volatile
 * operands keep the compiler from moving the arithmetic across fesetround(). */
static uint64_t fround(int op, int is64, int rnd, uint64_t a, uint64_t b, uint64_t c)
{
    int old = fegetround();
    fesetround(fenv_mode(rnd));
    uint64_t res;
    if (is64) {
        volatile double x = D(a), y = D(b), z = D(c), rr;
        switch (op) {
        case GF_OP_ADD: rr = x + y; break;
        case GF_OP_SUB: rr = x - y; break;
        case GF_OP_MUL: rr = x * y; break;
        case GF_OP_FMA: rr = fma(x, y, z); break;
        case GF_OP_DIV: rr = x / y; break;
        case GF_OP_SQRT: rr = sqrt(x); break;
        default: rr = 1.0 / x; break;
        }
        res = DB(rr);
    } else {
        volatile float x = F(a), y = F(b), z = F(c), rr;
        switch (op) {
        case GF_OP_ADD: rr = x + y; break;
        case GF_OP_SUB: rr = x - y; break;
        case GF_OP_MUL: rr = x * y; break;
        case GF_OP_FMA: rr = fmaf(x, y, z); break;
        case GF_OP_DIV: rr = x / y; break;
        case GF_OP_SQRT: rr = sqrtf(x); break;
        default: rr = 1.0f / x; break;
        }
        res = FB(rr);
    }
    fesetround(old);
    return res;
}

/* Half-precision family (f16, f16x2, bf16, bf16x2): lane by lane through double. */
static uint64_t hop(int op, int type, int rnd, int flags, uint64_t a, uint64_t b, uint64_t c)
{
    int fl = gf_ptx__types[type].flt;
    int lanes = (fl == 4 || fl == 6) ? 2 : 1;
    int mb = fl >= 5 ? 7 : 10, bias = fl >= 5 ? 127 : 15;
    uint64_t out = 0;
    for (int i = 0; i < lanes; i++) {
        uint32_t x = (uint32_t)(a >> (16 * i)) & 0xffff, y = (uint32_t)(b >> (16 * i)) & 0xffff;
        uint32_t z = (uint32_t)(c >> (16 * i)) & 0xffff, h;
        if (op == GF_OP_NEG) {
            h = x ^ 0x8000;
        } else if (op == GF_OP_ABS) {
            h = x & 0x7fff;
        } else {
            double dx = small2d(x, mb, bias), dy = small2d(y, mb, bias);
            double dz = small2d(z, mb, bias), v;
            switch (op) {
            case GF_OP_ADD: v = dx + dy; break;
            case GF_OP_SUB: v = dx - dy; break;
            case GF_OP_MUL: v = dx * dy; break;
            case GF_OP_FMA: v = fma(dx, dy, dz); break;
            case GF_OP_MIN:
                v = (flags & GF_F_NAN) && (isnan(dx) || isnan(dy)) ? NAN : fmin(dx, dy);
                break;
            case GF_OP_MAX:
                v = (flags & GF_F_NAN) && (isnan(dx) || isnan(dy)) ? NAN : fmax(dx, dy);
                break;
            case GF_OP_EX2: v = exp2(dx); break;
            case GF_OP_TANH: v = tanh(dx); break;
            default: v = dx; break;
            }
            if (flags & GF_F_SAT)
                v = sat64(v);
            h = d2small(v, rnd, mb, bias);
        }
        out |= (uint64_t)h << (16 * i);
    }
    return out;
}

/* A float operand of any float type as double. */
static double fget(int type, uint64_t v)
{
    switch (gf_ptx__types[type].flt) {
    case 1: return F(v);
    case 2: return D(v);
    case 3: return small2d((uint32_t)v & 0xffff, 10, 15);
    case 5: return small2d((uint32_t)v & 0xffff, 7, 127);
    default: return 0.0;
    }
}

static int fcmp(int cmp, double a, double b)
{
    int un = isnan(a) || isnan(b);
    switch (cmp) {
    case GF_CMP_EQ: return !un && a == b;
    case GF_CMP_NE: return !un && a != b;
    case GF_CMP_LT: case GF_CMP_LO: return !un && a < b;
    case GF_CMP_LE: case GF_CMP_LS: return !un && a <= b;
    case GF_CMP_GT: case GF_CMP_HI: return !un && a > b;
    case GF_CMP_GE: case GF_CMP_HS: return !un && a >= b;
    case GF_CMP_EQU: return un || a == b;
    case GF_CMP_NEU: return un || a != b;
    case GF_CMP_LTU: return un || a < b;
    case GF_CMP_LEU: return un || a <= b;
    case GF_CMP_GTU: return un || a > b;
    case GF_CMP_GEU: return un || a >= b;
    case GF_CMP_NUM: return !un;
    default: return un;
    }
}

static inline int icmp(int cmp, int sign, unsigned sz, uint64_t a, uint64_t b)
{
    uint64_t ua = msk(a, sz), ub = msk(b, sz);
    int64_t sa = sx(a, sz), sb = sx(b, sz);
    switch (cmp) {
    case GF_CMP_EQ: return ua == ub;
    case GF_CMP_NE: return ua != ub;
    case GF_CMP_LT: return sign ? sa < sb : ua < ub;
    case GF_CMP_LE: return sign ? sa <= sb : ua <= ub;
    case GF_CMP_GT: return sign ? sa > sb : ua > ub;
    case GF_CMP_GE: return sign ? sa >= sb : ua >= ub;
    case GF_CMP_LO: return ua < ub;
    case GF_CMP_LS: return ua <= ub;
    case GF_CMP_HI: return ua > ub;
    default: return ua >= ub;
    }
}

static inline int combine(int bop, int p, uint64_t c)
{
    int cv = (int)(c & 1);
    switch (bop) {
    case GF_BOOL_AND: return p & cv;
    case GF_BOOL_OR: return p | cv;
    case GF_BOOL_XOR: return p ^ cv;
    default: return p;
    }
}

/* Float (as double) to integer of size sz, saturating, NaN -> 0, after rounding. */
static uint64_t f2i(double x, int rnd, int sign, unsigned sz)
{
    if (isnan(x))
        return 0;
    switch (rnd) {
    case GF_RND_RNI: case GF_RND_RN: x = nearbyint(x); break;
    case GF_RND_RMI: case GF_RND_RM: x = floor(x); break;
    case GF_RND_RPI: case GF_RND_RP: x = ceil(x); break;
    default: x = trunc(x); break;
    }
    if (sign) {
        double lo = -ldexp(1.0, (int)sz * 8 - 1), hi = ldexp(1.0, (int)sz * 8 - 1);
        if (x < lo)
            return msk((uint64_t)1 << (sz * 8 - 1), sz);
        if (x >= hi)
            return msk(((uint64_t)1 << (sz * 8 - 1)) - 1, sz);
        return msk((uint64_t)(int64_t)x, sz);
    }
    double hi = ldexp(1.0, (int)sz * 8);
    if (x <= 0)
        return 0;
    if (x >= hi)
        return msk(~0ull, sz);
    return (uint64_t)x;
}

static uint64_t cvt(const gf_ptx__insn *in, uint64_t a)
{
    const gf_ptx__type_info *dt = &gf_ptx__types[in->type], *st = &gf_ptx__types[in->type2];
    int rnd = in->rnd, sat = in->flags & GF_F_SAT, ftz = in->flags & GF_F_FTZ;
    if (!dt->flt && !st->flt) {
        uint64_t v = msk(a, st->size);
        if (sat) {
            int64_t sv = st->sign ? sx(a, st->size) : 0;
            unsigned ds = dt->size;
            if (dt->sign) {
                int64_t lo = ds >= 8 ? INT64_MIN : -((int64_t)1 << (ds * 8 - 1));
                int64_t hi = ds >= 8 ? INT64_MAX : ((int64_t)1 << (ds * 8 - 1)) - 1;
                if (st->sign)
                    sv = sv < lo ? lo : sv > hi ? hi : sv;
                else
                    sv = v > (uint64_t)hi ? hi : (int64_t)v;
                return msk((uint64_t)sv, ds);
            }
            uint64_t hi = msk(~0ull, ds);
            if (st->sign && sv < 0)
                return 0;
            return v > hi ? hi : v;
        }
        if (st->sign)
            v = (uint64_t)sx(a, st->size);
        return msk(v, dt->size);
    }
    if (!st->flt) { /* integer -> float */
        int64_t sv = sx(a, st->size);
        uint64_t uv = msk(a, st->size);
        if (dt->flt == 1 || dt->flt == 2) {
            int old = 0;
            if (directed(rnd)) {
                old = fegetround();
                fesetround(fenv_mode(rnd));
            }
            volatile float f = 0;
            volatile double d = 0;
            if (dt->flt == 1)
                f = st->sign ? (float)sv : (float)uv;
            else
                d = st->sign ? (double)sv : (double)uv;
            if (directed(rnd))
                fesetround(old);
            if (dt->flt == 1)
                return FB(sat ? sat32(f) : f);
            return DB(sat ? sat64(d) : d);
        }
        double d = st->sign ? (double)sv : (double)uv;
        if (sat)
            d = sat64(d);
        return d2small(d, rnd, dt->flt >= 5 ? 7 : 10, dt->flt >= 5 ? 127 : 15);
    }
    double x = fget(in->type2, a);
    if (st->flt == 1 && ftz)
        x = ftz32((float)x);
    if (!dt->flt) /* float -> integer */
        return f2i(x, rnd, dt->sign, dt->size);
    /* float -> float */
    if (rnd >= GF_RND_RNI) {
        switch (rnd) {
        case GF_RND_RNI: x = nearbyint(x); break;
        case GF_RND_RZI: x = trunc(x); break;
        case GF_RND_RMI: x = floor(x); break;
        default: x = ceil(x); break;
        }
        rnd = GF_RND_RN;
    }
    if (sat)
        x = sat64(x);
    if (dt->flt == 1) {
        float f;
        if (st->flt == 2 && directed(rnd)) {
            int old = fegetround();
            fesetround(fenv_mode(rnd));
            volatile double vx = x;
            volatile float vf = (float)vx;
            fesetround(old);
            f = vf;
        } else {
            f = (float)x;
        }
        if (ftz)
            f = ftz32(f);
        if (st->flt == 1 && isnan(x))
            return a & 0xffffffffu;
        return FB(f);
    }
    if (dt->flt == 2)
        return DB(x);
    return d2small(x, rnd, dt->flt >= 5 ? 7 : 10, dt->flt >= 5 ? 127 : 15);
}

/* ---- errors -------------------------------------------------------------------------------- */

static gf_ptx_rc fail(ex *e, const thr *t, const gf_ptx__insn *in, gf_ptx_rc rc, const char *fmt,
                      uint64_t a, uint32_t len)
{
    if (e->err && e->errlen) {
        char what[128];
        snprintf(what, sizeof what, fmt, (unsigned long long)a, len);
        snprintf(e->err, e->errlen,
                 "%s at line %u '%s' in kernel '%s', block (%u,%u,%u) thread (%u,%u,%u)", what,
                 in ? in->line : 0, in ? e->m->strs + in->text : "?", e->k->name, e->ctaid[0],
                 e->ctaid[1], e->ctaid[2], t ? t->tid[0] : 0, t ? t->tid[1] : 0,
                 t ? t->tid[2] : 0);
    }
    return rc;
}

/* ---- memory ------------------------------------------------------------------------------- */

/* Host address of [a, a+len) in space sp, or NULL with *rc set. kp: a .param access means
 * the kernel parameter buffer (otherwise the frame's .param area). */
static inline uint8_t *xlat(ex *e, thr *t, const gf_ptx__insn *in, int sp, int kp, uint64_t a,
                            uint32_t len, int wr, gf_ptx_rc *rc)
{
    if (UNLIKELY(a & (len - 1))) {
        *rc = fail(e, t, in, GF_PTX_ERR_MISALIGNED, "misaligned address 0x%llx (%u bytes)", a, len);
        return NULL;
    }
    switch (sp) {
    case GF_SP_SHARED:
        if (LIKELY(a < e->smem_size && len <= e->smem_size - a))
            return e->smem + a;
        break;
    case GF_SP_LOCAL:
        if (LIKELY(a < e->local_per && len <= e->local_per - a))
            return t->local + a;
        break;
    case GF_SP_PARAM:
        if (kp) {
            if (!wr && a < e->kparams_size && len <= e->kparams_size - a)
                return (uint8_t *)(uintptr_t)(e->kparams + a);
        } else {
            uint32_t ps = e->m->funcs[t->fn]->param_size;
            if (a < ps && len <= ps - a)
                return t->param + a;
        }
        break;
    case GF_SP_GENERIC: {
        uintptr_t s = (uintptr_t)e->smem, l = (uintptr_t)t->local;
        if (a - s < e->smem_size && len <= e->smem_size - (a - s))
            return (uint8_t *)(uintptr_t)a;
        if (a - l < e->local_per && len <= e->local_per - (a - l))
            return (uint8_t *)(uintptr_t)a;
        uintptr_t kpp = (uintptr_t)e->kparams;
        if (!wr && a - kpp < e->kparams_size && len <= e->kparams_size - (a - kpp))
            return (uint8_t *)(uintptr_t)a;
    }
        /* fall through */
    default: /* global, const */
        if (!e->L->check) {
            if (a >= 4096) /* without a check, only the null page is known to be bad */
                return (uint8_t *)(uintptr_t)a;
            break;
        }
        /* A kernel typically streams through a few buffers at once: keep a few ranges. */
        for (int i = 0; i < 4; i++)
            if (a - e->cbase[i] < e->clen[i] && len <= e->clen[i] - (a - e->cbase[i]))
                return (uint8_t *)(uintptr_t)a;
        {
            uint64_t b = 0, l = 0;
            if (e->L->check(e->L->check_ctx, a, len, &b, &l)) {
                if (a - b < l && len <= l - (a - b)) {
                    e->cbase[e->cnext & 3] = b;
                    e->clen[e->cnext & 3] = l;
                    e->cnext++;
                }
                return (uint8_t *)(uintptr_t)a;
            }
        }
        break;
    }
    *rc = fail(e, t, in, GF_PTX_ERR_ADDRESS, "illegal address 0x%llx (%u bytes)", a, len);
    return NULL;
}

static inline uint64_t ldv(const uint8_t *p, unsigned sz)
{
    switch (sz) {
    case 1: return *p;
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

static inline void stv(uint8_t *p, uint64_t v, unsigned sz)
{
    switch (sz) {
    case 1: *p = (uint8_t)v; break;
    case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
    default: memcpy(p, &v, 8); break;
    }
}

static uint64_t atom_new(int op, int type, uint64_t old, uint64_t b)
{
    const gf_ptx__type_info *ti = &gf_ptx__types[type];
    unsigned sz = ti->size;
    switch (op) {
    case GF_ATOM_ADD:
        if (ti->flt == 1)
            return FB(F(old) + F(b));
        if (ti->flt == 2)
            return DB(D(old) + D(b));
        return msk(old + b, sz);
    case GF_ATOM_MIN:
    case GF_ATOM_MAX: {
        int lt;
        if (ti->flt == 1)
            lt = F(b) < F(old) || isnan(F(old));
        else if (ti->flt == 2)
            lt = D(b) < D(old) || isnan(D(old));
        else
            lt = ti->sign ? sx(b, sz) < sx(old, sz) : msk(b, sz) < msk(old, sz);
        int gt;
        if (ti->flt == 1)
            gt = F(b) > F(old) || isnan(F(old));
        else if (ti->flt == 2)
            gt = D(b) > D(old) || isnan(D(old));
        else
            gt = ti->sign ? sx(b, sz) > sx(old, sz) : msk(b, sz) > msk(old, sz);
        return (op == GF_ATOM_MIN ? lt : gt) ? msk(b, sz) : old;
    }
    case GF_ATOM_INC: return msk(old, 4) >= msk(b, 4) ? 0 : msk(old + 1, 4);
    case GF_ATOM_DEC:
        return (msk(old, 4) == 0 || msk(old, 4) > msk(b, 4)) ? msk(b, 4) : msk(old - 1, 4);
    case GF_ATOM_AND: return old & b;
    case GF_ATOM_OR: return old | b;
    case GF_ATOM_XOR: return msk(old ^ b, sz);
    default: return msk(b, sz);
    }
}

/* Performs the atomic at p (aligned, size 4 or 8); returns the old value. */
static uint64_t atom(int op, int type, uint8_t *p, uint64_t b, uint64_t c)
{
    unsigned sz = gf_ptx__types[type].size;
    if (sz == 4) {
        uint32_t *q = (uint32_t *)(void *)p;
        if (op == GF_ATOM_CAS) {
            uint32_t exp = (uint32_t)b;
            __atomic_compare_exchange_n(q, &exp, (uint32_t)c, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST);
            return exp;
        }
        if (op == GF_ATOM_EXCH)
            return __atomic_exchange_n(q, (uint32_t)b, __ATOMIC_SEQ_CST);
        if (op == GF_ATOM_ADD && !gf_ptx__types[type].flt)
            return __atomic_fetch_add(q, (uint32_t)b, __ATOMIC_SEQ_CST);
        uint32_t old = __atomic_load_n(q, __ATOMIC_SEQ_CST);
        while (!__atomic_compare_exchange_n(q, &old, (uint32_t)atom_new(op, type, old, b), 0,
                                            __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            ;
        return old;
    }
    uint64_t *q = (uint64_t *)(void *)p;
    if (op == GF_ATOM_CAS) {
        uint64_t exp = b;
        __atomic_compare_exchange_n(q, &exp, c, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        return exp;
    }
    if (op == GF_ATOM_EXCH)
        return __atomic_exchange_n(q, b, __ATOMIC_SEQ_CST);
    if (op == GF_ATOM_ADD && !gf_ptx__types[type].flt)
        return __atomic_fetch_add(q, b, __ATOMIC_SEQ_CST);
    uint64_t old = __atomic_load_n(q, __ATOMIC_SEQ_CST);
    while (!__atomic_compare_exchange_n(q, &old, atom_new(op, type, old, b), 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
        ;
    return old;
}

/* ---- operands -------------------------------------------------------------------------------- */

static uint64_t now_ns(const ex *e)
{
    if (e->L->globaltimer_ns)
        return e->L->globaltimer_ns();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t sreg(ex *e, const thr *t, uint32_t id)
{
    const gf_ptx_launch *L = e->L;
    uint32_t lane = t->lane;
    switch (id) {
    case GF_SR_TID_X: return t->tid[0];
    case GF_SR_TID_Y: return t->tid[1];
    case GF_SR_TID_Z: return t->tid[2];
    case GF_SR_NTID_X: return L->block[0];
    case GF_SR_NTID_Y: return L->block[1];
    case GF_SR_NTID_Z: return L->block[2];
    case GF_SR_CTAID_X: return e->ctaid[0];
    case GF_SR_CTAID_Y: return e->ctaid[1];
    case GF_SR_CTAID_Z: return e->ctaid[2];
    case GF_SR_NCTAID_X: return L->grid[0];
    case GF_SR_NCTAID_Y: return L->grid[1];
    case GF_SR_NCTAID_Z: return L->grid[2];
    case GF_SR_LANEID: return lane;
    case GF_SR_WARPID: return t->warp;
    case GF_SR_NWARPID: return e->nwarps;
    case GF_SR_SMID: return e->blocklin % (L->sm_count ? L->sm_count : 1);
    case GF_SR_NSMID: return L->sm_count ? L->sm_count : 1;
    case GF_SR_GRIDID: return 1;
    case GF_SR_CLOCK: return now_ns(e) & 0xffffffffu;
    case GF_SR_CLOCK_HI: return now_ns(e) >> 32;
    case GF_SR_CLOCK64: case GF_SR_GLOBALTIMER: return now_ns(e);
    case GF_SR_GLOBALTIMER_LO: return now_ns(e) & 0xffffffffu;
    case GF_SR_GLOBALTIMER_HI: return now_ns(e) >> 32;
    case GF_SR_LANEMASK_EQ: return 1u << lane;
    case GF_SR_LANEMASK_LE: return (uint32_t)((2ull << lane) - 1);
    case GF_SR_LANEMASK_LT: return (1u << lane) - 1;
    case GF_SR_LANEMASK_GE: return ~((1u << lane) - 1);
    case GF_SR_LANEMASK_GT: return (uint32_t)~((2ull << lane) - 1);
    case GF_SR_DYN_SMEM: return L->dynamic_shared;
    case GF_SR_TOTAL_SMEM: return e->smem_size;
    case GF_SR_WARPSZ: return 32;
    default: return 0;
    }
}

static uint64_t opval(ex *e, const thr *t, const uint64_t *r, const gf_ptx__opnd *o)
{
    switch (o->kind) {
    case GF_K_REG: return r[o->idx];
    case GF_K_NREG: return r[o->idx] ^ 1;
    case GF_K_IMM: return o->imm;
    case GF_K_SREG: return sreg(e, t, o->idx);
    case GF_K_AREG: return r[o->idx] + o->imm;
    case GF_K_SYM:
        switch (o->sub) {
        case GF_S_GLOBAL: return e->m->gaddr[o->idx] + o->imm;
        case GF_S_DYNSMEM: return e->dyn_off + o->imm;
        case GF_S_LOCAL: return t->local_off + o->idx + o->imm;
        default: return o->idx + o->imm;
        }
    default: return 0;
    }
}

/* Whether a .param access through operand o means the kernel parameter buffer. */
static inline int kparam_of(const ex *e, const thr *t, const gf_ptx__opnd *o)
{
    if (o->kind == GF_K_SYM)
        return o->sub == GF_S_KPARAM;
    return e->m->funcs[t->fn]->is_entry;
}

/* ---- the interpreter loop ---------------------------------------------------------------- */

#define OPV(i) (LIKELY(in->o[i].kind == GF_K_REG) ? r[in->o[i].idx] : opval(e, t, r, &in->o[i]))
#define WR(i, v)                                       \
    do {                                               \
        if (LIKELY(in->o[i].kind == GF_K_REG))         \
            r[in->o[i].idx] = (v);                     \
    } while (0)

static gf_ptx_rc call_fn(ex *e, thr *t, const gf_ptx__insn *in, uint32_t ret_pc)
{
    const gf_ptx_module *m = e->m;
    const struct gf_ptx_kernel *f = m->funcs[t->fn], *c = m->funcs[in->o[1].idx];
    uint64_t *nr = t->r + f->nslots;
    uint8_t *np = t->param + ((f->param_size + 15u) & ~15u);
    uint64_t nl = (uint64_t)t->local_off + ((f->local_size + 15u) & ~15u);
    if (t->depth + 1 >= e->depth_max || (uint64_t)(nr - t->regbase) + c->nslots > e->slots_per ||
        (uint64_t)(np - t->parambase) + c->param_size > e->param_per ||
        nl + c->local_size > e->local_per)
        return fail(e, t, in, GF_PTX_ERR_LAUNCH, "call stack overflow calling a function%.0llx%.0u",
                    0, 0);
    for (unsigned i = 0; i < c->nparams; i++) {
        const gf_ptx__opnd *a = &m->pool[in->o[2].idx + i];
        uint8_t *d = np + c->params[i].offset;
        uint32_t sz = c->params[i].size;
        if (a->kind == GF_K_SYM && a->sub == GF_S_FPARAM) {
            uint64_t off = a->idx + a->imm;
            if (off > f->param_size || sz > f->param_size - off)
                return fail(e, t, in, GF_PTX_ERR_ADDRESS, "call argument out of range%.0llx%.0u",
                            0, 0);
            memmove(d, t->param + off, sz);
        } else {
            uint64_t v = opval(e, t, t->r, a);
            memset(d, 0, sz);
            memcpy(d, &v, sz < 8 ? sz : 8);
        }
    }
    frame *fr = &t->frames[t->depth++];
    fr->r = t->r;
    fr->param = t->param;
    fr->local_off = t->local_off;
    fr->fn = t->fn;
    fr->ret_pc = ret_pc;
    t->r = nr;
    t->param = np;
    t->local_off = (uint32_t)nl;
    t->fn = in->o[1].idx;
    t->pc = 0;
    return GF_PTX_OK;
}

/* Returns from a .func: copies the results into the caller's call operands. */
static gf_ptx_rc ret_fn(ex *e, thr *t)
{
    const gf_ptx_module *m = e->m;
    const struct gf_ptx_kernel *c = m->funcs[t->fn];
    frame *fr = &t->frames[--t->depth];
    const struct gf_ptx_kernel *f = m->funcs[fr->fn];
    const gf_ptx__insn *in = &f->code[fr->ret_pc - 1];
    for (unsigned i = 0; i < c->nrets; i++) {
        const gf_ptx__opnd *o = &m->pool[in->o[0].idx + i];
        const uint8_t *s = t->param + c->rets[i].offset;
        uint32_t sz = c->rets[i].size;
        if (o->kind == GF_K_SYM && o->sub == GF_S_FPARAM) {
            uint64_t off = o->idx + o->imm;
            if (off > f->param_size || sz > f->param_size - off)
                return fail(e, t, in, GF_PTX_ERR_ADDRESS, "call result out of range%.0llx%.0u", 0,
                            0);
            memmove(fr->param + off, s, sz);
        } else if (o->kind == GF_K_REG) {
            uint64_t v = 0;
            memcpy(&v, s, sz < 8 ? sz : 8);
            fr->r[o->idx] = v;
        }
    }
    t->r = fr->r;
    t->param = fr->param;
    t->local_off = fr->local_off;
    t->fn = fr->fn;
    t->pc = fr->ret_pc;
    return GF_PTX_OK;
}

static void thread_exit(ex *e, thr *t)
{
    t->state = TS_DONE;
    e->nexited++;
}

/* Runs thread t until it blocks or ends. */
static gf_ptx_rc run(ex *e, thr *t)
{
    const gf_ptx_module *m = e->m;
    const struct gf_ptx_kernel *f = m->funcs[t->fn];
    const gf_ptx__insn *code = f->code;
    uint64_t *r = t->r;
    uint32_t pc = t->pc;
    uint64_t n = 0;
    gf_ptx_rc rc = GF_PTX_OK;
    for (;;) {
        const gf_ptx__insn *in = &code[pc++];
        n++;
        if (in->guard && ((r[in->guard - 1] & 1) == in->gneg))
            continue;
        const gf_ptx__type_info *ti = &gf_ptx__types[in->type];
        unsigned sz = ti->size;
        switch (in->op) {
        case GF_OP_MOV:
            WR(0, msk(OPV(1), sz));
            break;
        case GF_OP_PACK: {
            const gf_ptx__opnd *v = &m->pool[in->o[1].idx];
            unsigned k = in->o[1].sub, es = sz / k;
            uint64_t x = 0;
            for (unsigned i = 0; i < k; i++)
                x |= msk(opval(e, t, r, &v[i]), es) << (i * es * 8);
            WR(0, x);
            break;
        }
        case GF_OP_UNPACK: {
            const gf_ptx__opnd *v = &m->pool[in->o[0].idx];
            unsigned k = in->o[0].sub, es = sz / k;
            uint64_t x = OPV(1);
            for (unsigned i = 0; i < k; i++)
                if (v[i].kind == GF_K_REG)
                    r[v[i].idx] = msk(x >> (i * es * 8), es);
            break;
        }
        case GF_OP_LD: {
            uint64_t a = OPV(0);
            unsigned k = in->mod2;
            int kp = in->space == GF_SP_PARAM && kparam_of(e, t, &in->o[0]);
            t->r = r;
            uint8_t *p = xlat(e, t, in, in->space, kp, a, sz * k, 0, &rc);
            if (UNLIKELY(!p))
                goto out;
            if (k == 1) {
                uint64_t v = ldv(p, sz);
                WR(1, ti->sign ? (uint64_t)sx(v, sz) : v);
            } else {
                const gf_ptx__opnd *v = &m->pool[in->o[1].idx];
                for (unsigned i = 0; i < k; i++)
                    if (v[i].kind == GF_K_REG) {
                        uint64_t x = ldv(p + i * sz, sz);
                        r[v[i].idx] = ti->sign ? (uint64_t)sx(x, sz) : x;
                    }
            }
            break;
        }
        case GF_OP_ST: {
            uint64_t a = OPV(0);
            unsigned k = in->mod2;
            int kp = in->space == GF_SP_PARAM && kparam_of(e, t, &in->o[0]);
            t->r = r;
            uint8_t *p = xlat(e, t, in, in->space, kp, a, sz * k, 1, &rc);
            if (UNLIKELY(!p))
                goto out;
            if (k == 1) {
                stv(p, OPV(1), sz);
            } else {
                const gf_ptx__opnd *v = &m->pool[in->o[1].idx];
                for (unsigned i = 0; i < k; i++)
                    if (v[i].kind != GF_K_SINK)
                        stv(p + i * sz, opval(e, t, r, &v[i]), sz);
            }
            break;
        }
        case GF_OP_CVTA:
        case GF_OP_CVTA_TO: {
            uint64_t a = OPV(1), base = 0;
            if (in->space == GF_SP_SHARED)
                base = (uintptr_t)e->smem;
            else if (in->space == GF_SP_LOCAL)
                base = (uintptr_t)t->local;
            else if (in->space == GF_SP_PARAM)
                base = f->is_entry ? (uintptr_t)e->kparams : (uintptr_t)t->param;
            WR(0, msk(in->op == GF_OP_CVTA ? a + base : a - base, sz));
            break;
        }
        case GF_OP_ADD:
        case GF_OP_SUB: {
            uint64_t a = OPV(1), b = OPV(2);
            int sub = in->op == GF_OP_SUB;
            if (LIKELY(!ti->flt)) {
                if (UNLIKELY(in->flags & GF_F_SAT)) {
                    int64_t x = sx(a, 4), y = sx(b, 4), s = sub ? x - y : x + y;
                    s = s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : s;
                    WR(0, msk((uint64_t)s, 4));
                } else {
                    WR(0, msk(sub ? a - b : a + b, sz));
                }
            } else if (ti->flt == 1) {
                if (UNLIKELY(directed(in->rnd))) {
                    WR(0, fround(in->op, 0, in->rnd, a, b, 0));
                    break;
                }
                float x = F(a), y = F(b);
                if (in->flags & GF_F_FTZ)
                    x = ftz32(x), y = ftz32(y);
                float z = sub ? x - y : x + y;
                if (in->flags & GF_F_SAT)
                    z = sat32(z);
                WR(0, FB(in->flags & GF_F_FTZ ? ftz32(z) : z));
            } else if (ti->flt == 2) {
                if (UNLIKELY(directed(in->rnd))) {
                    WR(0, fround(in->op, 1, in->rnd, a, b, 0));
                    break;
                }
                double z = sub ? D(a) - D(b) : D(a) + D(b);
                WR(0, DB(in->flags & GF_F_SAT ? sat64(z) : z));
            } else {
                WR(0, hop(in->op, in->type, in->rnd, in->flags, a, b, 0));
            }
            break;
        }
        case GF_OP_ADDC:
        case GF_OP_SUBC: {
            uint64_t a = msk(OPV(1), sz), b = msk(OPV(2), sz);
            uint64_t cin = in->mod ? 0 : t->carry, res, cout;
            if (in->op == GF_OP_ADDC) {
                res = a + b + cin;
                cout = sz == 4 ? res >> 32 : (res < a || (cin && res == a));
            } else {
                res = a - b - cin;
                cout = sz == 4 ? (res >> 32) & 1 : (a < b || (cin && a == b));
            }
            if (in->flags & GF_F_CC)
                t->carry = (uint8_t)(cout & 1);
            WR(0, msk(res, sz));
            break;
        }
        case GF_OP_MUL:
        case GF_OP_MAD: {
            uint64_t a = OPV(1), b = OPV(2), res;
            if (ti->flt || gf_ptx__types[in->type2].flt) {
                /* mul.f*: mad.f* was decoded as fma */
                if (ti->flt == 1) {
                    if (UNLIKELY(directed(in->rnd))) {
                        WR(0, fround(GF_OP_MUL, 0, in->rnd, a, b, 0));
                        break;
                    }
                    float x = F(a), y = F(b);
                    if (in->flags & GF_F_FTZ)
                        x = ftz32(x), y = ftz32(y);
                    float z = x * y;
                    if (in->flags & GF_F_SAT)
                        z = sat32(z);
                    WR(0, FB(in->flags & GF_F_FTZ ? ftz32(z) : z));
                } else if (ti->flt == 2) {
                    if (UNLIKELY(directed(in->rnd))) {
                        WR(0, fround(GF_OP_MUL, 1, in->rnd, a, b, 0));
                        break;
                    }
                    double z = D(a) * D(b);
                    WR(0, DB(in->flags & GF_F_SAT ? sat64(z) : z));
                } else {
                    WR(0, hop(GF_OP_MUL, in->type, in->rnd, in->flags, a, b, 0));
                }
                break;
            }
            const gf_ptx__type_info *si = &gf_ptx__types[in->type2];
            unsigned ss = si->size;
            if (in->mod == GF_M_LO) {
                res = a * b;
            } else if (in->mod == GF_M_WIDE) {
                res = si->sign ? (uint64_t)(sx(a, ss) * sx(b, ss)) : msk(a, ss) * msk(b, ss);
            } else if (ss == 8) {
                if (si->sign)
                    res = (uint64_t)(((__int128)(int64_t)a * (__int128)(int64_t)b) >> 64);
                else
                    res = (uint64_t)(((unsigned __int128)a * b) >> 64);
            } else {
                res = si->sign ? (uint64_t)((sx(a, ss) * sx(b, ss)) >> (ss * 8))
                               : (msk(a, ss) * msk(b, ss)) >> (ss * 8);
            }
            if (in->op == GF_OP_MAD) {
                uint64_t c = OPV(3);
                if (UNLIKELY(in->flags & GF_F_SAT)) {
                    int64_t s = sx(res, 4) + sx(c, 4);
                    s = s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : s;
                    res = (uint64_t)s;
                } else {
                    res += c;
                }
            }
            WR(0, msk(res, sz));
            break;
        }
        case GF_OP_MUL24:
        case GF_OP_MAD24: {
            uint64_t a = OPV(1), b = OPV(2);
            uint64_t prod = ti->sign ? (uint64_t)(sx(a, 3) * sx(b, 3)) : msk(a, 3) * msk(b, 3);
            uint64_t res = in->mod == GF_M_HI ? prod >> 16 : prod;
            if (in->op == GF_OP_MAD24)
                res += OPV(3);
            WR(0, msk(res, 4));
            break;
        }
        case GF_OP_SAD: {
            uint64_t a = OPV(1), b = OPV(2), c = OPV(3), d;
            if (ti->sign)
                d = sx(a, sz) < sx(b, sz) ? (uint64_t)sx(b, sz) - (uint64_t)sx(a, sz)
                                          : (uint64_t)sx(a, sz) - (uint64_t)sx(b, sz);
            else
                d = msk(a, sz) < msk(b, sz) ? msk(b, sz) - msk(a, sz) : msk(a, sz) - msk(b, sz);
            WR(0, msk(c + d, sz));
            break;
        }
        case GF_OP_DIV:
        case GF_OP_REM: {
            uint64_t a = OPV(1), b = OPV(2), res;
            if (ti->flt == 1) {
                if (UNLIKELY(directed(in->rnd))) {
                    WR(0, fround(GF_OP_DIV, 0, in->rnd, a, b, 0));
                    break;
                }
                float x = F(a), y = F(b);
                if (in->flags & GF_F_FTZ)
                    x = ftz32(x), y = ftz32(y);
                float z = x / y;
                WR(0, FB(in->flags & GF_F_FTZ ? ftz32(z) : z));
                break;
            }
            if (ti->flt == 2) {
                WR(0, directed(in->rnd) ? fround(GF_OP_DIV, 1, in->rnd, a, b, 0)
                                        : DB(D(a) / D(b)));
                break;
            }
            if (ti->flt) {
                double z = fget(in->type, a) / fget(in->type, b);
                WR(0, d2small(z, in->rnd, ti->flt >= 5 ? 7 : 10, ti->flt >= 5 ? 127 : 15));
                break;
            }
            int rem = in->op == GF_OP_REM;
            if (ti->sign) {
                int64_t x = sx(a, sz), y = sx(b, sz);
                if (y == 0)
                    res = rem ? (uint64_t)x : ~0ull;
                else if (y == -1)
                    res = rem ? 0 : 0 - (uint64_t)x;
                else
                    res = (uint64_t)(rem ? x % y : x / y);
            } else {
                uint64_t x = msk(a, sz), y = msk(b, sz);
                res = y == 0 ? (rem ? x : ~0ull) : rem ? x % y : x / y;
            }
            WR(0, msk(res, sz));
            break;
        }
        case GF_OP_ABS:
        case GF_OP_NEG: {
            uint64_t a = OPV(1);
            int neg = in->op == GF_OP_NEG;
            if (!ti->flt) {
                if (neg)
                    WR(0, msk(0 - a, sz));
                else
                    WR(0, msk(sx(a, sz) < 0 ? 0 - a : a, sz));
            } else if (ti->flt == 1) {
                float x = F(a);
                if (in->flags & GF_F_FTZ)
                    x = ftz32(x);
                WR(0, neg ? FB(x) ^ 0x80000000u : FB(x) & 0x7fffffffu);
            } else if (ti->flt == 2) {
                WR(0, neg ? a ^ 0x8000000000000000ull : a & 0x7fffffffffffffffull);
            } else {
                WR(0, hop(in->op, in->type, in->rnd, in->flags, a, 0, 0));
            }
            break;
        }
        case GF_OP_MIN:
        case GF_OP_MAX: {
            uint64_t a = OPV(1), b = OPV(2);
            int mx = in->op == GF_OP_MAX;
            if (!ti->flt) {
                int lt = ti->sign ? sx(a, sz) < sx(b, sz) : msk(a, sz) < msk(b, sz);
                WR(0, msk(lt != mx ? a : b, sz));
            } else if (ti->flt == 1) {
                float x = F(a), y = F(b);
                if (in->flags & GF_F_FTZ)
                    x = ftz32(x), y = ftz32(y);
                float z;
                if ((in->flags & GF_F_NAN) && (isnan(x) || isnan(y)))
                    z = NAN;
                else
                    z = mx ? fmaxf(x, y) : fminf(x, y);
                WR(0, FB(z));
            } else if (ti->flt == 2) {
                double x = D(a), y = D(b), z;
                if ((in->flags & GF_F_NAN) && (isnan(x) || isnan(y)))
                    z = NAN;
                else
                    z = mx ? fmax(x, y) : fmin(x, y);
                WR(0, DB(z));
            } else {
                WR(0, hop(in->op, in->type, in->rnd, in->flags, a, b, 0));
            }
            break;
        }
        case GF_OP_POPC:
            WR(0, (uint64_t)__builtin_popcountll(msk(OPV(1), sz)));
            break;
        case GF_OP_CLZ: {
            uint64_t a = msk(OPV(1), sz);
            WR(0, a ? (uint64_t)(__builtin_clzll(a) - (64 - (int)sz * 8)) : sz * 8);
            break;
        }
        case GF_OP_BREV: {
            uint64_t a = OPV(1), d = 0;
            for (unsigned i = 0; i < sz * 8; i++)
                d |= ((a >> i) & 1) << (sz * 8 - 1 - i);
            WR(0, d);
            break;
        }
        case GF_OP_BFE: {
            uint64_t a = msk(OPV(1), sz);
            unsigned pos = (unsigned)(OPV(2) & 0xff), len = (unsigned)(OPV(3) & 0xff);
            unsigned msb = sz * 8 - 1;
            uint64_t sbit = 0;
            if (ti->sign && len) {
                unsigned sb = pos + len - 1 > msb ? msb : pos + len - 1;
                sbit = (a >> sb) & 1;
            }
            unsigned avail = pos <= msb ? msb + 1 - pos : 0;
            unsigned nb = len < avail ? len : avail;
            uint64_t field = pos <= msb ? a >> pos : 0;
            uint64_t fm = nb >= 64 ? ~0ull : (1ull << nb) - 1;
            uint64_t d = (field & fm) | (sbit ? ~fm : 0);
            WR(0, msk(d, sz));
            break;
        }
        case GF_OP_BFI: {
            uint64_t a = OPV(1), b = msk(OPV(2), sz);
            unsigned pos = (unsigned)(OPV(3) & 0xff), len = (unsigned)(OPV(4) & 0xff);
            unsigned msb = sz * 8 - 1;
            for (unsigned i = 0; i < len && pos + i <= msb; i++)
                b = (b & ~(1ull << (pos + i))) | (((a >> i) & 1) << (pos + i));
            WR(0, b);
            break;
        }
        case GF_OP_BFIND: {
            uint64_t a = msk(OPV(1), sz);
            if (ti->sign && sx(a, sz) < 0)
                a = msk(~a, sz);
            uint64_t d;
            if (!a)
                d = 0xffffffffu;
            else {
                unsigned idx = 63 - (unsigned)__builtin_clzll(a);
                d = in->mod ? sz * 8 - 1 - idx : idx;
            }
            WR(0, d);
            break;
        }
        case GF_OP_PRMT: {
            uint64_t a = msk(OPV(1), 4), b = msk(OPV(2), 4), c = OPV(3);
            uint64_t tmp = b << 32 | a, d = 0;
            if (!in->mod) {
                for (unsigned i = 0; i < 4; i++) {
                    unsigned sel = (unsigned)(c >> (4 * i)) & 0xf;
                    uint64_t byte = (tmp >> (8 * (sel & 7))) & 0xff;
                    if (sel & 8)
                        byte = (byte & 0x80) ? 0xff : 0;
                    d |= byte << (8 * i);
                }
            } else {
                /* byte selectors for d.b0..b3 by mode (f4e b4e rc8 ecl ecr rc16) and c[1:0] */
                static const uint8_t tab[6][4][4] = {
                    {{0, 1, 2, 3}, {1, 2, 3, 4}, {2, 3, 4, 5}, {3, 4, 5, 6}},
                    {{0, 7, 6, 5}, {1, 0, 7, 6}, {2, 1, 0, 7}, {3, 2, 1, 0}},
                    {{0, 0, 0, 0}, {1, 1, 1, 1}, {2, 2, 2, 2}, {3, 3, 3, 3}},
                    {{0, 1, 2, 3}, {1, 1, 2, 3}, {2, 2, 2, 3}, {3, 3, 3, 3}},
                    {{0, 0, 0, 0}, {0, 1, 1, 1}, {0, 1, 2, 2}, {0, 1, 2, 3}},
                    {{0, 1, 0, 1}, {2, 3, 2, 3}, {0, 1, 0, 1}, {2, 3, 2, 3}},
                };
                const uint8_t *s = tab[in->mod - 1][c & 3];
                for (unsigned i = 0; i < 4; i++)
                    d |= ((tmp >> (8 * s[i])) & 0xff) << (8 * i);
            }
            WR(0, d);
            break;
        }
        case GF_OP_SHF: {
            uint64_t a = msk(OPV(1), 4), b = msk(OPV(2), 4), c = msk(OPV(3), 4);
            unsigned nsh = (in->flags & GF_F_CLAMP) ? (c > 32 ? 32 : (unsigned)c) : (unsigned)(c & 31);
            uint64_t v = b << 32 | a;
            WR(0, (in->flags & GF_F_SHF_R) ? msk(v >> nsh, 4) : msk((v << nsh) >> 32, 4));
            break;
        }
        case GF_OP_SHL: {
            uint64_t a = OPV(1), b = msk(OPV(2), 4);
            WR(0, b >= sz * 8 ? 0 : msk(a << b, sz));
            break;
        }
        case GF_OP_SHR: {
            uint64_t a = OPV(1), b = msk(OPV(2), 4);
            if (ti->sign) {
                unsigned s = b >= sz * 8 ? sz * 8 - 1 : (unsigned)b;
                WR(0, msk((uint64_t)(sx(a, sz) >> s), sz));
            } else {
                WR(0, b >= sz * 8 ? 0 : msk(a, sz) >> b);
            }
            break;
        }
        case GF_OP_AND:
            WR(0, msk(OPV(1) & OPV(2), sz));
            break;
        case GF_OP_OR:
            WR(0, msk(OPV(1) | OPV(2), sz));
            break;
        case GF_OP_XOR:
            WR(0, msk(OPV(1) ^ OPV(2), sz));
            break;
        case GF_OP_NOT:
            WR(0, in->type == GF_T_PRED ? (OPV(1) & 1) ^ 1 : msk(~OPV(1), sz));
            break;
        case GF_OP_CNOT:
            WR(0, msk(OPV(1), sz) == 0);
            break;
        case GF_OP_LOP3: {
            uint64_t a = OPV(1), b = OPV(2), c = OPV(3), lut = OPV(4), d = 0;
            for (unsigned i = 0; i < 8; i++)
                if ((lut >> i) & 1)
                    d |= ((i & 4) ? a : ~a) & ((i & 2) ? b : ~b) & ((i & 1) ? c : ~c);
            WR(0, msk(d, sz));
            break;
        }
        case GF_OP_SETP:
        case GF_OP_SET: {
            uint64_t a = OPV(1), b = OPV(2);
            const gf_ptx__type_info *si = &gf_ptx__types[in->type2];
            int p;
            if (!si->flt)
                p = icmp(in->mod, si->sign, si->size, a, b);
            else if (si->flt == 1)
                p = fcmp(in->mod, (in->flags & GF_F_FTZ) ? ftz32(F(a)) : F(a),
                         (in->flags & GF_F_FTZ) ? ftz32(F(b)) : F(b));
            else
                p = fcmp(in->mod, fget(in->type2, a), fget(in->type2, b));
            uint64_t c = in->mod2 ? OPV(3) : 0;
            int res = combine(in->mod2, p, c);
            if (in->op == GF_OP_SETP) {
                WR(0, (uint64_t)res);
                if (in->o[4].kind == GF_K_REG)
                    r[in->o[4].idx] = (uint64_t)combine(in->mod2, !p, c);
            } else if (ti->flt == 1) {
                WR(0, res ? FB(1.0f) : 0);
            } else {
                WR(0, res ? msk(~0ull, sz) : 0);
            }
            break;
        }
        case GF_OP_SELP:
            WR(0, msk((OPV(3) & 1) ? OPV(1) : OPV(2), sz));
            break;
        case GF_OP_SLCT: {
            uint64_t c = OPV(3);
            int ge = in->type2 == GF_T_F32 ? ((in->flags & GF_F_FTZ) ? ftz32(F(c)) : F(c)) >= 0.0f
                                           : sx(c, 4) >= 0;
            WR(0, msk(ge ? OPV(1) : OPV(2), sz));
            break;
        }
        case GF_OP_FMA: {
            uint64_t a = OPV(1), b = OPV(2), c = OPV(3);
            if (ti->flt == 1) {
                if (UNLIKELY(directed(in->rnd))) {
                    WR(0, fround(GF_OP_FMA, 0, in->rnd, a, b, c));
                    break;
                }
                float x = F(a), y = F(b), z = F(c);
                if (in->flags & GF_F_FTZ)
                    x = ftz32(x), y = ftz32(y), z = ftz32(z);
                float res = fmaf(x, y, z);
                if (in->flags & GF_F_SAT)
                    res = sat32(res);
                WR(0, FB(in->flags & GF_F_FTZ ? ftz32(res) : res));
            } else if (ti->flt == 2) {
                if (UNLIKELY(directed(in->rnd))) {
                    WR(0, fround(GF_OP_FMA, 1, in->rnd, a, b, c));
                    break;
                }
                double res = fma(D(a), D(b), D(c));
                WR(0, DB(in->flags & GF_F_SAT ? sat64(res) : res));
            } else {
                WR(0, hop(GF_OP_FMA, in->type, in->rnd, in->flags, a, b, c));
            }
            break;
        }
        case GF_OP_RCP:
        case GF_OP_SQRT:
        case GF_OP_RSQRT:
        case GF_OP_SIN:
        case GF_OP_COS:
        case GF_OP_EX2:
        case GF_OP_LG2:
        case GF_OP_TANH: {
            uint64_t a = OPV(1);
            if (ti->flt >= 3) {
                WR(0, hop(in->op, in->type, in->rnd, in->flags, a, 0, 0));
                break;
            }
            if ((in->op == GF_OP_RCP || in->op == GF_OP_SQRT) && directed(in->rnd)) {
                WR(0, fround(in->op, ti->flt == 2, in->rnd, a, 0, 0));
                break;
            }
            if (ti->flt == 1) {
                float x = F(a), z;
                if (in->flags & GF_F_FTZ)
                    x = ftz32(x);
                switch (in->op) {
                case GF_OP_RCP: z = 1.0f / x; break;
                case GF_OP_SQRT: z = sqrtf(x); break;
                case GF_OP_RSQRT: z = 1.0f / sqrtf(x); break;
                case GF_OP_SIN: z = sinf(x); break;
                case GF_OP_COS: z = cosf(x); break;
                case GF_OP_EX2: z = exp2f(x); break;
                case GF_OP_LG2: z = log2f(x); break;
                default: z = tanhf(x); break;
                }
                WR(0, FB(in->flags & GF_F_FTZ ? ftz32(z) : z));
            } else {
                double x = D(a), z;
                switch (in->op) {
                case GF_OP_RCP: z = 1.0 / x; break;
                case GF_OP_SQRT: z = sqrt(x); break;
                case GF_OP_RSQRT: z = 1.0 / sqrt(x); break;
                case GF_OP_SIN: z = sin(x); break;
                case GF_OP_COS: z = cos(x); break;
                case GF_OP_EX2: z = exp2(x); break;
                case GF_OP_LG2: z = log2(x); break;
                default: z = tanh(x); break;
                }
                WR(0, DB(z));
            }
            break;
        }
        case GF_OP_CVT: {
            const gf_ptx__type_info *di = &gf_ptx__types[in->type];
            if (di->flt == 4 || di->flt == 6) {
                gf_ptx__insn one = *in;
                one.type = di->flt == 4 ? GF_T_F16 : GF_T_BF16;
                uint64_t hi = cvt(&one, OPV(1)), lo = cvt(&one, OPV(2));
                WR(0, (hi & 0xffff) << 16 | (lo & 0xffff));
            } else {
                uint64_t v = cvt(in, OPV(1));
                /* A signed integer result is kept sign-extended like a signed load. */
                WR(0, di->sign ? (uint64_t)sx(v, di->size) : v);
            }
            break;
        }
        case GF_OP_COPYSIGN: {
            uint64_t a = OPV(1), b = OPV(2);
            if (ti->flt == 1)
                WR(0, (b & 0x7fffffffu) | (a & 0x80000000u));
            else
                WR(0, (b & 0x7fffffffffffffffull) | (a & 0x8000000000000000ull));
            break;
        }
        case GF_OP_TESTP: {
            double x = fget(in->type, OPV(1));
            int c = fpclassify(ti->flt == 1 ? (double)F(OPV(1)) : x);
            if (ti->flt == 1)
                c = fpclassify(F(OPV(1)));
            int res;
            switch (in->mod) {
            case GF_TESTP_FINITE: res = isfinite(x); break;
            case GF_TESTP_INFINITE: res = isinf(x); break;
            case GF_TESTP_NUMBER: res = !isnan(x); break;
            case GF_TESTP_NAN: res = isnan(x); break;
            case GF_TESTP_NORMAL: res = c == FP_NORMAL; break;
            default: res = c == FP_SUBNORMAL; break;
            }
            WR(0, (uint64_t)(res != 0));
            break;
        }
        case GF_OP_BRA:
            pc = (uint32_t)in->o[0].imm;
            break;
        case GF_OP_CALL:
            t->r = r;
            rc = call_fn(e, t, in, pc);
            if (rc)
                goto out;
            f = m->funcs[t->fn];
            code = f->code;
            r = t->r;
            pc = 0;
            break;
        case GF_OP_RET:
            if (t->depth == 0) {
                thread_exit(e, t);
                goto out;
            }
            t->r = r;
            rc = ret_fn(e, t);
            if (rc)
                goto out;
            f = m->funcs[t->fn];
            code = f->code;
            r = t->r;
            pc = t->pc;
            break;
        case GF_OP_EXIT:
            thread_exit(e, t);
            goto out;
        case GF_OP_BAR: {
            uint32_t id = (uint32_t)OPV(1);
            if (id >= 16) {
                t->r = r;
                rc = fail(e, t, in, GF_PTX_ERR_LAUNCH, "barrier id %llu out of range%.0u", id, 0);
                goto out;
            }
            bar *b = &e->bars[id];
            uint32_t cnt = in->o[2].kind != GF_K_NONE ? (uint32_t)OPV(2) : 0;
            if (!b->used) {
                b->used = 1;
                b->all = 1;
                b->any = 0;
                b->popc = 0;
                b->expected = cnt;
                b->line = in->line;
            }
            b->arrived++;
            if (in->mod >= GF_BAR_RED_POPC) {
                int c = (int)(OPV(3) & 1);
                b->popc += (uint32_t)c;
                b->all &= (uint8_t)c;
                b->any |= (uint8_t)c;
                t->red = in->mod;
                t->red_dst = in->o[0].kind == GF_K_REG ? in->o[0].idx + 1 : 0;
            } else {
                t->red = 0;
            }
            if (in->mod == GF_BAR_ARRIVE)
                break;
            t->state = TS_BAR;
            t->barid = (uint8_t)id;
            goto out;
        }
        case GF_OP_NOP:
        case GF_OP_NANOSLEEP:
            break;
        case GF_OP_ATOM: {
            uint64_t a = OPV(0), b = OPV(1), c = in->mod == GF_ATOM_CAS ? OPV(2) : 0;
            t->r = r;
            uint8_t *p = xlat(e, t, in, in->space, 0, a, sz, 1, &rc);
            if (UNLIKELY(!p))
                goto out;
            uint64_t old = atom(in->mod, in->type, p, b, c);
            WR(3, ti->sign ? (uint64_t)sx(old, sz) : old);
            break;
        }
        case GF_OP_SHFL:
        case GF_OP_VOTE:
        case GF_OP_ACTIVEMASK:
        case GF_OP_WARPSYNC:
            t->state = TS_WARP;
            pc--;
            n--; /* counted when the group executes */
            goto out;
        case GF_OP_TRAP:
            t->r = r;
            rc = fail(e, t, in, GF_PTX_ERR_TRAP, in->mod ? "brkpt%.0llx%.0u" : "trap%.0llx%.0u", 0, 0);
            goto out;
        case GF_OP_DP4A:
        case GF_OP_DP2A: {
            uint64_t a = OPV(1), b = OPV(2), c = OPV(3);
            int as = gf_ptx__types[in->type].sign, bs = gf_ptx__types[in->type2].sign;
            uint64_t acc = c;
            if (in->op == GF_OP_DP4A) {
                for (unsigned i = 0; i < 4; i++) {
                    uint64_t x = (a >> (8 * i)) & 0xff, y = (b >> (8 * i)) & 0xff;
                    acc += (as ? (uint64_t)sx(x, 1) : x) * (bs ? (uint64_t)sx(y, 1) : y);
                }
            } else {
                for (unsigned i = 0; i < 2; i++) {
                    uint64_t x = (a >> (16 * i)) & 0xffff;
                    uint64_t y = (b >> (8 * (i + (in->mod ? 2 : 0)))) & 0xff;
                    acc += (as ? (uint64_t)sx(x, 2) : x) * (bs ? (uint64_t)sx(y, 1) : y);
                }
            }
            WR(0, msk(acc, 4));
            break;
        }
        case GF_OP_ISSPACEP: {
            uint64_t a = OPV(1);
            uintptr_t s = (uintptr_t)e->smem, l = (uintptr_t)t->local;
            int in_s = a - s < e->smem_size, in_l = a - l < e->local_per;
            int res;
            switch (in->space) {
            case GF_SP_SHARED: res = in_s; break;
            case GF_SP_LOCAL: res = in_l; break;
            case GF_SP_PARAM: res = a - (uintptr_t)e->kparams < e->kparams_size; break;
            default: res = !in_s && !in_l; break;
            }
            WR(0, (uint64_t)res);
            break;
        }
        default:
            t->r = r;
            rc = fail(e, t, in, GF_PTX_ERR_UNSUPPORTED, "internal: opcode %llu%.0u", in->op, 0);
            goto out;
        }
    }
out:
    t->r = r;
    t->pc = pc;
    e->ninsn += n;
    return rc;
}

/* ---- warp groups and barriers ----------------------------------------------------------------- */

/* Executes the warp-synchronous instruction that threads g[0..n) wait at, together. */
static void warp_group(ex *e, thr **g, unsigned n)
{
    const struct gf_ptx_kernel *f = e->m->funcs[g[0]->fn];
    const gf_ptx__insn *in = &f->code[g[0]->pc];
    uint64_t a[32], res[32];
    uint8_t pr[32];
    int lane_of[32];
    uint32_t active = 0;
    for (unsigned i = 0; i < 32; i++)
        lane_of[i] = -1;
    for (unsigned i = 0; i < n; i++) {
        active |= 1u << g[i]->lane;
        lane_of[g[i]->lane] = (int)i;
    }
    for (unsigned i = 0; i < n; i++) {
        thr *t = g[i];
        const uint64_t *r = t->r;
        switch (in->op) {
        case GF_OP_SHFL:
            a[i] = msk(opval(e, t, r, &in->o[1]), 4);
            break;
        case GF_OP_VOTE:
            a[i] = opval(e, t, r, &in->o[1]) & 1;
            break;
        default:
            a[i] = 0;
            break;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        thr *t = g[i];
        const uint64_t *r = t->r;
        pr[i] = 0;
        if (in->op == GF_OP_SHFL) {
            int lane = (int)t->lane;
            int bval = (int)(opval(e, t, r, &in->o[2]) & 31);
            uint32_t c = (uint32_t)opval(e, t, r, &in->o[3]);
            int cval = (int)(c & 31), seg = (int)((c >> 8) & 31);
            int maxl = (lane & seg) | (cval & ~seg), minl = lane & seg, j, pv;
            switch (in->mod) {
            case GF_SHFL_UP: j = lane - bval; pv = j >= maxl; break;
            case GF_SHFL_DOWN: j = lane + bval; pv = j <= maxl; break;
            case GF_SHFL_BFLY: j = lane ^ bval; pv = j <= maxl; break;
            default: j = minl | (bval & ~seg); pv = j <= maxl; break;
            }
            if (!pv || j < 0 || j > 31)
                j = lane;
            res[i] = lane_of[j] >= 0 ? a[lane_of[j]] : a[i];
            pr[i] = (uint8_t)pv;
        } else if (in->op == GF_OP_VOTE) {
            uint32_t mm = (uint32_t)opval(e, t, r, &in->o[2]) & active;
            int all = 1, any = 0;
            uint32_t ballot = 0;
            for (unsigned k = 0; k < n; k++)
                if (mm & (1u << g[k]->lane)) {
                    all &= (int)a[k];
                    any |= (int)a[k];
                    if (a[k])
                        ballot |= 1u << g[k]->lane;
                }
            switch (in->mod) {
            case GF_VOTE_ALL: res[i] = (uint64_t)all; break;
            case GF_VOTE_ANY: res[i] = (uint64_t)any; break;
            case GF_VOTE_UNI: res[i] = (uint64_t)(all || !any); break;
            default: res[i] = ballot; break;
            }
        } else {
            res[i] = active;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        thr *t = g[i];
        if (in->op != GF_OP_WARPSYNC && in->o[0].kind == GF_K_REG)
            t->r[in->o[0].idx] = res[i];
        if (in->op == GF_OP_SHFL && in->o[5].kind == GF_K_REG)
            t->r[in->o[5].idx] = pr[i];
        t->pc++;
        t->state = TS_RUN;
    }
    e->ninsn += n;
}

static int run_warp_groups(ex *e)
{
    int progress = 0;
    thr *g[32];
    for (uint32_t w = 0; w < e->nwarps; w++) {
        uint32_t lo = w * 32, hi = lo + 32 < e->nthreads ? lo + 32 : e->nthreads;
        for (;;) {
            thr *first = NULL;
            unsigned n = 0;
            for (uint32_t i = lo; i < hi; i++) {
                thr *t = &e->t[i];
                if (t->state != TS_WARP)
                    continue;
                if (!first)
                    first = t;
                if (t->fn == first->fn && t->pc == first->pc)
                    g[n++] = t;
            }
            if (!n)
                break;
            warp_group(e, g, n);
            progress = 1;
        }
    }
    return progress;
}

static int release_barriers(ex *e)
{
    int progress = 0;
    for (unsigned id = 0; id < 16; id++) {
        bar *b = &e->bars[id];
        if (!b->used)
            continue;
        uint32_t need = b->expected ? b->expected : e->nthreads;
        if (b->arrived + e->nexited < need)
            continue;
        for (uint32_t i = 0; i < e->nthreads; i++) {
            thr *t = &e->t[i];
            if (t->state != TS_BAR || t->barid != id)
                continue;
            if (t->red && t->red_dst) {
                uint64_t v = t->red == GF_BAR_RED_POPC ? b->popc
                             : t->red == GF_BAR_RED_AND ? b->all : b->any;
                t->r[t->red_dst - 1] = v;
            }
            t->state = TS_RUN;
        }
        memset(b, 0, sizeof(*b));
        progress = 1;
    }
    return progress;
}

static gf_ptx_rc deadlock(ex *e)
{
    char msg[256];
    size_t o = 0;
    msg[0] = 0;
    for (unsigned id = 0; id < 16 && o < sizeof msg - 64; id++) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < e->nthreads; i++)
            n += e->t[i].state == TS_BAR && e->t[i].barid == id;
        if (n) {
            int w = snprintf(msg + o, sizeof msg - o, "%s%u threads at barrier %u (line %u)",
                             o ? ", " : "", n, id, e->bars[id].line);
            if (w > 0)
                o += (size_t)w;
        }
    }
    if (e->err && e->errlen)
        snprintf(e->err, e->errlen,
                 "barrier deadlock in kernel '%s', block (%u,%u,%u): %s; %u of %u threads exited",
                 e->k->name, e->ctaid[0], e->ctaid[1], e->ctaid[2], msg, e->nexited, e->nthreads);
    return GF_PTX_ERR_DEADLOCK;
}

static gf_ptx_rc run_block(ex *e)
{
    const struct gf_ptx_kernel *k = e->k;
    const gf_ptx_launch *L = e->L;
    uint32_t bx = L->block[0], by = L->block[1];
    uint32_t local0 = (e->m->mod_local + 15u) & ~15u;
    for (uint32_t i = 0; i < e->nthreads; i++) {
        thr *t = &e->t[i];
        t->r = t->regbase;
        memset(t->r, 0, sizeof(uint64_t) * k->nslots);
        t->param = t->parambase;
        t->local_off = local0;
        t->fn = k->index;
        t->pc = 0;
        t->depth = 0;
        t->state = TS_RUN;
        t->carry = 0;
        t->red = 0;
        t->lin = i;
        t->lane = i & 31;
        t->warp = i >> 5;
        t->tid[0] = i % bx;
        t->tid[1] = (i / bx) % by;
        t->tid[2] = i / (bx * by);
    }
    memset(e->bars, 0, sizeof(e->bars));
    e->nexited = 0;
    for (;;) {
        for (uint32_t i = 0; i < e->nthreads; i++) {
            thr *t = &e->t[i];
            if (t->state != TS_RUN)
                continue;
            gf_ptx_rc rc = run(e, t);
            if (rc)
                return rc;
        }
        if (run_warp_groups(e))
            continue;
        if (release_barriers(e))
            continue;
        if (e->nexited == e->nthreads)
            return GF_PTX_OK;
        return deadlock(e);
    }
}

static gf_ptx_rc launch_fail(char *err, size_t errlen, gf_ptx_rc rc, const char *fmt,
                             const char *name, unsigned long long v)
{
    if (err && errlen) {
        char what[160];
        snprintf(what, sizeof what, fmt, v);
        snprintf(err, errlen, "kernel '%s': %s", name, what);
    }
    return rc;
}

gf_ptx_rc gf_ptx_run(const gf_ptx_kernel *k, const gf_ptx_launch *L, gf_ptx_stats *stats,
                     char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (stats)
        stats->instructions = 0;
    if (!k || !L)
        return GF_PTX_ERR_LAUNCH;
    const gf_ptx_module *m = k->mod;
    if (!k->is_entry)
        return launch_fail(err, errlen, GF_PTX_ERR_LAUNCH, "not a kernel%.0llu", k->name, 0);
    uint64_t nthreads = (uint64_t)L->block[0] * L->block[1] * L->block[2];
    if (!L->block[0] || !L->block[1] || !L->block[2] || L->block[0] > 1024 ||
        L->block[1] > 1024 || L->block[2] > 64 || nthreads > 1024)
        return launch_fail(err, errlen, GF_PTX_ERR_LAUNCH, "bad block size (%llu threads)",
                           k->name, nthreads);
    if (!L->grid[0] || !L->grid[1] || !L->grid[2] || L->grid[0] > 0x7fffffffu ||
        L->grid[1] > 65535 || L->grid[2] > 65535)
        return launch_fail(err, errlen, GF_PTX_ERR_LAUNCH, "bad grid size%.0llu", k->name, 0);
    if (k->max_threads && nthreads > k->max_threads)
        return launch_fail(err, errlen, GF_PTX_ERR_LAUNCH,
                           "block of %llu threads exceeds the kernel's .maxntid", k->name,
                           nthreads);
    if (L->params_size < k->params_size || (k->params_size && !L->params))
        return launch_fail(err, errlen, GF_PTX_ERR_LAUNCH,
                           "parameter buffer too small (%llu bytes)", k->name, L->params_size);
    uint64_t dyn_off = ((uint64_t)k->shared_size + 15) & ~15ull;
    uint64_t smem = dyn_off + L->dynamic_shared;
    if (smem > MAX_SHARED)
        return launch_fail(err, errlen, GF_PTX_ERR_LAUNCH, "%llu bytes of shared memory",
                           k->name, smem);
    uint64_t local_per = (((uint64_t)m->mod_local + 15) & ~15ull) + k->stack_local;
    local_per = (local_per + 15) & ~15ull;
    uint64_t param_per = ((uint64_t)k->stack_param + 15) & ~15ull;
    if (local_per * nthreads > MAX_LOCAL_TOTAL ||
        ((uint64_t)k->stack_slots * 8 + param_per) * nthreads > MAX_STACK_TOTAL)
        return launch_fail(err, errlen, GF_PTX_ERR_LAUNCH, "%llu bytes of local memory per thread",
                           k->name, local_per);

    gf_ptx_rc rc = GF_PTX_OK;
    ex e;
    memset(&e, 0, sizeof(e));
    e.m = m;
    e.k = k;
    e.L = L;
    e.err = err;
    e.errlen = errlen;
    e.nthreads = (uint32_t)nthreads;
    e.nwarps = (e.nthreads + 31) / 32;
    e.smem_size = (uint32_t)smem;
    e.dyn_off = (uint32_t)dyn_off;
    e.kparams = L->params;
    e.kparams_size = (uint32_t)(L->params_size > UINT32_MAX ? UINT32_MAX : L->params_size);
    e.local_per = (uint32_t)local_per;
    e.slots_per = k->stack_slots ? k->stack_slots : 1;
    e.param_per = (uint32_t)param_per;
    e.depth_max = k->stack_depth ? k->stack_depth : 1;
    e.t = calloc(nthreads, sizeof(thr));
    uint64_t *regs = calloc(nthreads * e.slots_per, sizeof(uint64_t));
    uint8_t *params = calloc(nthreads, param_per ? param_per : 16);
    uint8_t *local = calloc(nthreads, local_per ? local_per : 16);
    frame *frames = calloc(nthreads * e.depth_max, sizeof(frame));
    e.smem = aligned_alloc(64, (smem + 63) & ~63ull ? (smem + 63) & ~63ull : 64);
    if (!e.t || !regs || !params || !local || !frames || !e.smem) {
        rc = launch_fail(err, errlen, GF_PTX_ERR_NOMEM, "out of host memory%.0llu", k->name, 0);
        goto out;
    }
    for (uint32_t i = 0; i < e.nthreads; i++) {
        thr *t = &e.t[i];
        t->regbase = regs + (uint64_t)i * e.slots_per;
        t->parambase = params + (uint64_t)i * (param_per ? param_per : 16);
        t->local = local + (uint64_t)i * (local_per ? local_per : 16);
        t->frames = frames + (uint64_t)i * e.depth_max;
    }
    for (uint32_t z = 0; z < L->grid[2] && !rc; z++)
        for (uint32_t y = 0; y < L->grid[1] && !rc; y++)
            for (uint32_t x = 0; x < L->grid[0] && !rc; x++) {
                e.ctaid[0] = x;
                e.ctaid[1] = y;
                e.ctaid[2] = z;
                e.blocklin = (uint32_t)(((uint64_t)z * L->grid[1] + y) * L->grid[0] + x);
                memset(e.smem, 0, smem);
                rc = run_block(&e);
            }
out:
    if (stats)
        stats->instructions = e.ninsn;
    free(e.t);
    free(regs);
    free(params);
    free(local);
    free(frames);
    free(e.smem);
    return rc;
}
