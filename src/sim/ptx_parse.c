/* SPDX-License-Identifier: Apache-2.0 */
/* The PTX engine's front end: lexes and parses PTX text into the decoded IR of
 * ptx_internal.h, and implements the module/kernel query half of ptx.h.
 *
 * Errors unwind with longjmp to gf_ptx_module_load(), which frees the half-built module:
 * every allocation is reachable from the parser or the module, so nothing leaks. All
 * sizes taken from the input are bounded before anything is allocated from them.
 */
#include "sim/ptx_internal.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const gf_ptx__type_info gf_ptx__types[GF_T_COUNT] = {
    [GF_T_NONE] = {0, 0, 0},  [GF_T_PRED] = {1, 0, 0},  [GF_T_B8] = {1, 0, 0},
    [GF_T_B16] = {2, 0, 0},   [GF_T_B32] = {4, 0, 0},   [GF_T_B64] = {8, 0, 0},
    [GF_T_U8] = {1, 0, 0},    [GF_T_U16] = {2, 0, 0},   [GF_T_U32] = {4, 0, 0},
    [GF_T_U64] = {8, 0, 0},   [GF_T_S8] = {1, 1, 0},    [GF_T_S16] = {2, 1, 0},
    [GF_T_S32] = {4, 1, 0},   [GF_T_S64] = {8, 1, 0},   [GF_T_F16] = {2, 0, 3},
    [GF_T_F16X2] = {4, 0, 4}, [GF_T_BF16] = {2, 0, 5},  [GF_T_BF16X2] = {4, 0, 6},
    [GF_T_F32] = {4, 0, 1},   [GF_T_F64] = {8, 0, 2},
};

/* Bounds on what one module may ask for; real hardware limits are far below these. */
#define MAX_VAR_BYTES   (1ull << 32)   /* one variable, shared/local/param frame */
#define MAX_INIT_BYTES  (16u << 20)    /* an initialized module variable */
#define MAX_LIST        64             /* elements of one {...} or (...) operand */
#define MAX_WORDS       16             /* dot-separated parts of one opcode */

/* ---- tokens ---------------------------------------------------------------------------- */

enum { TK_EOF = 0, TK_ID = 256, TK_NUM, TK_STR };

typedef struct tok {
    int k;
    const char *s;
    uint32_t n;
    uint32_t line;
} tok;

/* ---- symbol table: string -> value, with scopes popped in LIFO order ---------------------- */

enum { SY_REG = 1, SY_GLOBAL, SY_SHARED, SY_KSHARED, SY_DYNSMEM, SY_LOCAL, SY_MODLOCAL,
       SY_KPARAM, SY_FPARAM, SY_FUNC, SY_LABEL };

typedef struct sym {
    const char *s;
    uint32_t n, hash;
    int32_t next;
    uint8_t kind;
    uint8_t defined;   /* labels */
    uint32_t idx;      /* slot, offset, index, instruction */
    uint32_t size;     /* bytes, for params */
} sym;

typedef struct symtab {
    sym *e;
    uint32_t n, cap;
    int32_t *b;
    uint32_t nb;
} symtab;

/* A ranged register declaration "%r<N>": slots are given out on first use, so huge N
 * costs nothing. */
typedef struct rdecl {
    const char *s;
    uint32_t n;
    uint64_t count;
    uint32_t id;
} rdecl;

typedef struct fixup {
    uint32_t insn, op;
    const char *s;
    uint32_t n, line;
} fixup;

typedef struct raw {
    uint8_t k;
    uint8_t neg;
    uint8_t has_pair;
    uint8_t symk;     /* for RK_SYM / address base: SY_* */
    uint32_t reg;     /* slot, sreg id, symbol idx */
    uint32_t pair;
    uint32_t el0, nel;
    uint64_t ival;    /* integer value or float bits */
    double dval;
    int64_t off;
    uint8_t abase;    /* address base: 0 absolute, 1 register, 2 symbol, 3 unresolved id */
    const char *id;
    uint32_t idn;
} raw;

enum { RK_REG = 1, RK_INT, RK_F32, RK_F64, RK_DBL, RK_SYM, RK_ID, RK_SREG, RK_ADDR, RK_VEC,
       RK_LIST, RK_SINK };

typedef struct P {
    const char *src, *cur, *end;
    uint32_t line;
    tok t;
    char *err;
    size_t errlen;
    jmp_buf jb;
    gf_ptx_module *m;
    size_t capfuncs, capentries, capglobals, cappool, capstrs;
    symtab st;
    /* per function */
    struct gf_ptx_kernel *f;
    size_t capcode;
    rdecl *rd;
    uint32_t nrd, caprd, rdid;
    uint64_t *rkeys;   /* open-addressing map (decl id << 32 | number) + 1 -> slot */
    uint32_t *rvals;
    uint32_t nrk, caprk;
    fixup *fx;
    uint32_t nfx, capfx;
    symtab labels;
    uint32_t kshared;  /* entry's own static shared bytes */
    uint32_t kshared_align;
    uint32_t param_cur;
    /* per instruction */
    raw ops[GF_PTX_MAX_OPS + 2];
    uint32_t nops;
    raw els[MAX_LIST * 2];
    uint32_t nels;
    char opc[96];
    struct gf_ptx_kernel sig; /* signature being parsed; freed on error */
    sym *keep;                /* parameter symbols being moved; freed on error */
    uint8_t *ibuf, *init;     /* initializer being parsed, and its result; freed on error */
    uint32_t pmark;           /* symbol table mark of the current parameter scope */
} P;

static _Noreturn void perr(P *p, gf_ptx_rc rc, uint32_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static _Noreturn void perr(P *p, gf_ptx_rc rc, uint32_t line, const char *fmt, ...)
{
    if (p->err && p->errlen) {
        int n = snprintf(p->err, p->errlen, "line %u: ", line);
        if (n < 0)
            n = 0;
        if ((size_t)n < p->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    longjmp(p->jb, (int)rc);
}

#define NOMEM(p) perr(p, GF_PTX_ERR_NOMEM, (p)->line, "out of host memory")

/* Grows *arr (elements of esz bytes) so that index n fits. */
static void grow(P *p, void **arr, size_t *cap, size_t n, size_t esz)
{
    if (n < *cap)
        return;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc <= n)
        nc *= 2;
    if (nc > SIZE_MAX / esz)
        NOMEM(p);
    void *q = realloc(*arr, nc * esz);
    if (!q)
        NOMEM(p);
    *arr = q;
    *cap = nc;
}

#define GROW(p, arr, cap, n) grow(p, (void **)&(arr), &(cap), (n), sizeof(*(arr)))

static uint32_t fnv(const char *s, uint32_t n)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static sym *st_find(symtab *t, const char *s, uint32_t n)
{
    if (!t->nb)
        return NULL;
    uint32_t h = fnv(s, n);
    for (int32_t i = t->b[h & (t->nb - 1)]; i >= 0; i = t->e[i].next)
        if (t->e[i].hash == h && t->e[i].n == n && !memcmp(t->e[i].s, s, n))
            return &t->e[i];
    return NULL;
}

static sym *st_add(P *p, symtab *t, const char *s, uint32_t n, int kind, uint32_t idx)
{
    if (t->n + 1 > t->nb) {
        uint32_t nb = t->nb ? t->nb * 2 : 64;
        int32_t *b = malloc(sizeof(*b) * nb);
        if (!b)
            NOMEM(p);
        free(t->b);
        t->b = b;
        t->nb = nb;
        for (uint32_t i = 0; i < nb; i++)
            b[i] = -1;
        for (uint32_t i = 0; i < t->n; i++) {
            uint32_t h = t->e[i].hash & (nb - 1);
            t->e[i].next = b[h];
            b[h] = (int32_t)i;
        }
    }
    if (t->n >= t->cap) {
        size_t cap = t->cap;
        GROW(p, t->e, cap, t->n);
        t->cap = (uint32_t)cap;
    }
    sym *e = &t->e[t->n];
    memset(e, 0, sizeof(*e));
    e->s = s;
    e->n = n;
    e->hash = fnv(s, n);
    e->kind = (uint8_t)kind;
    e->idx = idx;
    uint32_t h = e->hash & (t->nb - 1);
    e->next = t->b[h];
    t->b[h] = (int32_t)t->n;
    t->n++;
    return e;
}

static void st_pop(symtab *t, uint32_t mark)
{
    while (t->n > mark) {
        t->n--;
        t->b[t->e[t->n].hash & (t->nb - 1)] = t->e[t->n].next;
    }
}

static void st_free(symtab *t)
{
    free(t->e);
    free(t->b);
    memset(t, 0, sizeof(*t));
}

/* ---- lexer ----------------------------------------------------------------------------- */

static int idstart(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' ||
           c == '%' || c == '.';
}

static int idchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '$' || c == '.';
}

static void next(P *p)
{
    const char *c = p->cur, *e = p->end;
    for (;;) {
        while (c < e && (*c == ' ' || *c == '\t' || *c == '\r' || *c == '\n' || *c == '\f' ||
                         *c == '\v')) {
            if (*c == '\n')
                p->line++;
            c++;
        }
        if (c + 1 < e && c[0] == '/' && c[1] == '/') {
            while (c < e && *c != '\n')
                c++;
            continue;
        }
        if (c + 1 < e && c[0] == '/' && c[1] == '*') {
            uint32_t l0 = p->line;
            c += 2;
            while (c + 1 < e && !(c[0] == '*' && c[1] == '/')) {
                if (*c == '\n')
                    p->line++;
                c++;
            }
            if (c + 1 >= e)
                perr(p, GF_PTX_ERR_SYNTAX, l0, "unterminated /* comment");
            c += 2;
            continue;
        }
        break;
    }
    p->t.s = c;
    p->t.line = p->line;
    if (c >= e) {
        p->t.k = TK_EOF;
        p->t.n = 0;
        p->cur = c;
        return;
    }
    int ch = (unsigned char)*c;
    if (idstart(ch)) {
        const char *s = c++;
        for (;;) {
            if (c < e && idchar((unsigned char)*c))
                c++;
            else if (c + 2 < e && c[0] == ':' && c[1] == ':' && idchar((unsigned char)c[2]))
                c += 2;  /* ".shared::cta", ".L2::cache_hint" */
            else
                break;
        }
        p->t.k = TK_ID;
        p->t.n = (uint32_t)(c - s);
    } else if (ch >= '0' && ch <= '9') {
        const char *s = c++;
        int hex = (c < e && (*c == 'x' || *c == 'X' || *c == 'f' || *c == 'F' || *c == 'd' ||
                             *c == 'D'));
        while (c < e) {
            if (idchar((unsigned char)*c))
                c++;
            else if (!hex && (*c == '+' || *c == '-') && (c[-1] == 'e' || c[-1] == 'E'))
                c++;
            else
                break;
        }
        p->t.k = TK_NUM;
        p->t.n = (uint32_t)(c - s);
    } else if (ch == '"') {
        const char *s = c++;
        while (c < e && *c != '"' && *c != '\n')
            c++;
        if (c >= e || *c != '"')
            perr(p, GF_PTX_ERR_SYNTAX, p->line, "unterminated string");
        c++;
        p->t.k = TK_STR;
        p->t.n = (uint32_t)(c - s);
    } else {
        p->t.k = ch;
        p->t.n = 1;
        c++;
    }
    if (p->t.n > 4096)
        perr(p, GF_PTX_ERR_SYNTAX, p->line, "token too long");
    p->cur = c;
}

static int is(P *p, const char *w)
{
    size_t n = strlen(w);
    return p->t.k == TK_ID && p->t.n == n && !memcmp(p->t.s, w, n);
}

static int accept(P *p, int k)
{
    if (p->t.k != k)
        return 0;
    next(p);
    return 1;
}

static const char *tokdesc(P *p, char *buf, size_t n)
{
    if (p->t.k == TK_EOF)
        return "end of file";
    snprintf(buf, n, "'%.*s'", (int)(p->t.n > 40 ? 40 : p->t.n), p->t.s);
    return buf;
}

static void expect(P *p, int k, const char *what)
{
    if (p->t.k != k) {
        char b[64];
        perr(p, GF_PTX_ERR_SYNTAX, p->t.line, "expected %s, got %s", what, tokdesc(p, b, sizeof b));
    }
    next(p);
}

static void expect_id(P *p, const char *w)
{
    if (!is(p, w)) {
        char b[64];
        perr(p, GF_PTX_ERR_SYNTAX, p->t.line, "expected '%s', got %s", w, tokdesc(p, b, sizeof b));
    }
    next(p);
}

static void skip_line(P *p)
{
    while (p->cur < p->end && *p->cur != '\n')
        p->cur++;
    next(p);
}

/* ---- numbers --------------------------------------------------------------------------- */

static int hexv(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Parses the current TK_NUM into r (RK_INT, RK_F32, RK_F64 or RK_DBL) and advances. */
static void parse_num(P *p, raw *r)
{
    const char *s = p->t.s;
    uint32_t n = p->t.n;
    memset(r, 0, sizeof(*r));
    if (n > 2 && s[0] == '0' && (s[1] == 'f' || s[1] == 'F' || s[1] == 'd' || s[1] == 'D')) {
        uint32_t want = (s[1] == 'f' || s[1] == 'F') ? 8 : 16;
        if (n != want + 2)
            goto bad;
        uint64_t v = 0;
        for (uint32_t i = 2; i < n; i++) {
            int h = hexv((unsigned char)s[i]);
            if (h < 0)
                goto bad;
            v = v << 4 | (uint64_t)h;
        }
        r->k = want == 8 ? RK_F32 : RK_F64;
        r->ival = v;
        next(p);
        return;
    }
    int isflt = 0;
    if (!(n > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')))
        for (uint32_t i = 0; i < n; i++)
            if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
                isflt = 1;
    if (isflt) {
        char buf[80];
        if (n >= sizeof buf)
            goto bad;
        memcpy(buf, s, n);
        buf[n] = 0;
        char *endp;
        r->dval = strtod(buf, &endp);
        if (*endp)
            goto bad;
        r->k = RK_DBL;
        next(p);
        return;
    }
    uint32_t i = 0, base = 10;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        base = 16, i = 2;
    else if (n > 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B'))
        base = 2, i = 2;
    else if (n > 1 && s[0] == '0')
        base = 8, i = 1;
    if (n > 0 && (s[n - 1] == 'U' || s[n - 1] == 'u'))
        n--;
    if (i >= n)
        goto bad;
    uint64_t v = 0;
    for (; i < n; i++) {
        int h = hexv((unsigned char)s[i]);
        if (h < 0 || (uint32_t)h >= base)
            goto bad;
        v = v * base + (uint64_t)h;
    }
    r->k = RK_INT;
    r->ival = v;
    next(p);
    return;
bad:
    perr(p, GF_PTX_ERR_SYNTAX, p->t.line, "malformed number '%.*s'", (int)(p->t.n > 40 ? 40 : p->t.n),
         p->t.s);
}

/* Reads an unsigned integer token (array sizes, .align, counts). */
static uint64_t parse_uint(P *p, const char *what)
{
    if (p->t.k != TK_NUM) {
        char b[64];
        perr(p, GF_PTX_ERR_SYNTAX, p->t.line, "expected %s, got %s", what, tokdesc(p, b, sizeof b));
    }
    raw r;
    uint32_t line = p->t.line;
    parse_num(p, &r);
    if (r.k != RK_INT)
        perr(p, GF_PTX_ERR_SYNTAX, line, "expected an integer %s", what);
    return r.ival;
}

/* ---- words of an opcode ---------------------------------------------------------------- */

static const struct { const char *w; uint8_t t; } type_words[] = {
    {"pred", GF_T_PRED}, {"b8", GF_T_B8},     {"b16", GF_T_B16},   {"b32", GF_T_B32},
    {"b64", GF_T_B64},   {"u8", GF_T_U8},     {"u16", GF_T_U16},   {"u32", GF_T_U32},
    {"u64", GF_T_U64},   {"s8", GF_T_S8},     {"s16", GF_T_S16},   {"s32", GF_T_S32},
    {"s64", GF_T_S64},   {"f16", GF_T_F16},   {"f16x2", GF_T_F16X2}, {"bf16", GF_T_BF16},
    {"bf16x2", GF_T_BF16X2}, {"f32", GF_T_F32}, {"f64", GF_T_F64},
};

static int type_of(const char *s, uint32_t n)
{
    for (size_t i = 0; i < sizeof type_words / sizeof type_words[0]; i++)
        if (strlen(type_words[i].w) == n && !memcmp(type_words[i].w, s, n))
            return type_words[i].t;
    return 0;
}

/* An opcode split at the dots: base name, the type words in order, the other words. */
typedef struct words {
    const char *base;
    uint32_t nbase;
    uint8_t types[4];
    uint32_t ntypes;
    const char *w[MAX_WORDS];
    uint32_t wn[MAX_WORDS];
    uint8_t used[MAX_WORDS];
    uint32_t nw;
} words;

static int base_is(const words *w, const char *s)
{
    return strlen(s) == w->nbase && !memcmp(w->base, s, w->nbase);
}

/* Consumes word s when present. */
static int take(words *w, const char *s)
{
    size_t n = strlen(s);
    for (uint32_t i = 0; i < w->nw; i++)
        if (!w->used[i] && w->wn[i] == n && !memcmp(w->w[i], s, n)) {
            w->used[i] = 1;
            return 1;
        }
    return 0;
}

/* Returns the index in list of the first unused word found there, or -1. */
static int take_one(words *w, const char *const *list)
{
    for (int j = 0; list[j]; j++)
        if (take(w, list[j]))
            return j;
    return -1;
}

static _Noreturn void unsupported(P *p, uint32_t line)
{
    perr(p, GF_PTX_ERR_UNSUPPORTED, line, "unsupported instruction '%s'", p->opc);
}

/* Words that change nothing in a sequential interpreter: memory ordering, scopes, cache
 * and eviction hints, alignment promises. */
static void drop_hints(words *w)
{
    static const char *const hints[] = {
        "volatile", "relaxed", "acquire", "release", "acq_rel", "sc", "weak", "mmio", "cta",
        "gpu", "sys", "cluster", "nc", "ca", "cg", "cs", "lu", "cv", "wb", "wt", "aligned",
        "uni", "L1::evict_normal", "L1::evict_unchanged", "L1::evict_first",
        "L1::evict_last", "L1::no_allocate", "L2::evict_normal", "L2::evict_first",
        "L2::evict_last", "L2::64B", "L2::128B", "L2::256B", "noftz", NULL};
    for (uint32_t i = 0; i < w->nw; i++)
        for (int j = 0; hints[j]; j++)
            if (!w->used[i] && w->wn[i] == strlen(hints[j]) && !memcmp(w->w[i], hints[j], w->wn[i]))
                w->used[i] = 1;
}

static void all_used(P *p, words *w, uint32_t line)
{
    for (uint32_t i = 0; i < w->nw; i++)
        if (!w->used[i])
            unsupported(p, line);
}

/* ---- registers and symbols --------------------------------------------------------------- */

static const struct { const char *n; uint8_t id; } sregs[] = {
    {"%tid.x", GF_SR_TID_X},       {"%tid.y", GF_SR_TID_Y},       {"%tid.z", GF_SR_TID_Z},
    {"%ntid.x", GF_SR_NTID_X},     {"%ntid.y", GF_SR_NTID_Y},     {"%ntid.z", GF_SR_NTID_Z},
    {"%ctaid.x", GF_SR_CTAID_X},   {"%ctaid.y", GF_SR_CTAID_Y},   {"%ctaid.z", GF_SR_CTAID_Z},
    {"%nctaid.x", GF_SR_NCTAID_X}, {"%nctaid.y", GF_SR_NCTAID_Y}, {"%nctaid.z", GF_SR_NCTAID_Z},
    {"%laneid", GF_SR_LANEID},     {"%warpid", GF_SR_WARPID},     {"%nwarpid", GF_SR_NWARPID},
    {"%smid", GF_SR_SMID},         {"%nsmid", GF_SR_NSMID},       {"%gridid", GF_SR_GRIDID},
    {"%clock", GF_SR_CLOCK},       {"%clock_hi", GF_SR_CLOCK_HI}, {"%clock64", GF_SR_CLOCK64},
    {"%globaltimer", GF_SR_GLOBALTIMER}, {"%globaltimer_lo", GF_SR_GLOBALTIMER_LO},
    {"%globaltimer_hi", GF_SR_GLOBALTIMER_HI}, {"%lanemask_eq", GF_SR_LANEMASK_EQ},
    {"%lanemask_le", GF_SR_LANEMASK_LE}, {"%lanemask_lt", GF_SR_LANEMASK_LT},
    {"%lanemask_ge", GF_SR_LANEMASK_GE}, {"%lanemask_gt", GF_SR_LANEMASK_GT},
    {"%dynamic_smem_size", GF_SR_DYN_SMEM}, {"%total_smem_size", GF_SR_TOTAL_SMEM},
    {"%aggr_smem_size", GF_SR_TOTAL_SMEM}, {"WARP_SZ", GF_SR_WARPSZ},
    {"%reserved_smem_offset_begin", GF_SR_ZERO}, {"%reserved_smem_offset_end", GF_SR_ZERO},
    {"%reserved_smem_offset_cap", GF_SR_ZERO},
};

static int sreg_of(const char *s, uint32_t n)
{
    for (size_t i = 0; i < sizeof sregs / sizeof sregs[0]; i++)
        if (strlen(sregs[i].n) == n && !memcmp(sregs[i].n, s, n))
            return sregs[i].id;
    return -1;
}

static uint32_t new_slot(P *p)
{
    if (p->f->nslots >= (1u << 24))
        perr(p, GF_PTX_ERR_UNSUPPORTED, p->t.line, "too many registers in one function");
    return p->f->nslots++;
}

/* Slot of register number num of ranged declaration id. */
static uint32_t range_slot(P *p, uint32_t id, uint64_t num)
{
    uint64_t key = ((uint64_t)id << 32 | num) + 1;
    if (p->nrk * 2 >= p->caprk) {
        uint32_t nc = p->caprk ? p->caprk * 2 : 256;
        uint64_t *k = calloc(nc, sizeof(*k));
        uint32_t *v = calloc(nc, sizeof(*v));
        if (!k || !v) {
            free(k);
            free(v);
            NOMEM(p);
        }
        for (uint32_t i = 0; i < p->caprk; i++)
            if (p->rkeys[i]) {
                uint32_t h = (uint32_t)((p->rkeys[i] * 0x9E3779B97F4A7C15ull) >> 32) & (nc - 1);
                while (k[h])
                    h = (h + 1) & (nc - 1);
                k[h] = p->rkeys[i];
                v[h] = p->rvals[i];
            }
        free(p->rkeys);
        free(p->rvals);
        p->rkeys = k;
        p->rvals = v;
        p->caprk = nc;
    }
    uint32_t h = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (p->caprk - 1);
    while (p->rkeys[h]) {
        if (p->rkeys[h] == key)
            return p->rvals[h];
        h = (h + 1) & (p->caprk - 1);
    }
    p->rkeys[h] = key;
    p->rvals[h] = new_slot(p);
    p->nrk++;
    return p->rvals[h];
}

/* Looks up a register name; returns 0 when it is not one. */
static int find_reg(P *p, const char *s, uint32_t n, uint32_t *slot)
{
    sym *y = st_find(&p->st, s, n);
    if (y && y->kind == SY_REG) {
        *slot = y->idx;
        return 1;
    }
    if (y)
        return 0;
    uint32_t d = n;
    while (d > 0 && s[d - 1] >= '0' && s[d - 1] <= '9')
        d--;
    if (d == n || n - d > 10)
        return 0;
    uint64_t num = 0;
    for (uint32_t i = d; i < n; i++)
        num = num * 10 + (uint64_t)(s[i] - '0');
    for (uint32_t i = p->nrd; i-- > 0;)
        if (p->rd[i].n == d && !memcmp(p->rd[i].s, s, d) && num < p->rd[i].count) {
            *slot = range_slot(p, p->rd[i].id, num);
            return 1;
        }
    return 0;
}

/* ---- operands ------------------------------------------------------------------------------ */

static void parse_operand(P *p, raw *r, int in_list);

/* Resolves an identifier operand at the current token into r. */
static void parse_ident(P *p, raw *r)
{
    const char *s = p->t.s;
    uint32_t n = p->t.n, line = p->t.line;
    memset(r, 0, sizeof(*r));
    next(p);
    if (n == 1 && s[0] == '_') {
        r->k = RK_SINK;
        return;
    }
    uint32_t slot;
    if (find_reg(p, s, n, &slot)) {
        r->k = RK_REG;
        r->reg = slot;
        return;
    }
    int sr = sreg_of(s, n);
    if (sr >= 0) {
        r->k = RK_SREG;
        r->reg = (uint32_t)sr;
        return;
    }
    if (s[0] == '%') {
        if (n >= 4 && !memcmp(s, "%tid", 4) && n == 4)
            perr(p, GF_PTX_ERR_UNSUPPORTED, line, "vector special register '%%tid' is not supported");
        perr(p, GF_PTX_ERR_SYNTAX, line, "unknown register '%.*s'", (int)(n > 40 ? 40 : n), s);
    }
    sym *y = st_find(&p->st, s, n);
    if (y && y->kind != SY_LABEL) {
        r->k = RK_SYM;
        r->symk = y->kind;
        r->reg = y->idx;
    } else {
        r->k = RK_ID;
    }
    r->id = s;
    r->idn = n;
}

static int64_t parse_offset(P *p)
{
    int neg = 0;
    if (accept(p, '+')) {
        if (accept(p, '-'))
            neg = 1;
    } else if (accept(p, '-')) {
        neg = 1;
    } else {
        return 0;
    }
    uint64_t v = parse_uint(p, "an offset");
    return neg ? (int64_t)(0 - v) : (int64_t)v;
}

static void parse_list(P *p, raw *r, int close, int kind)
{
    uint32_t line = p->t.line;
    next(p);
    uint32_t el[MAX_LIST];
    raw tmp;
    uint32_t n = 0;
    if (p->t.k != close) {
        for (;;) {
            if (n >= MAX_LIST)
                perr(p, GF_PTX_ERR_UNSUPPORTED, line, "more than %d elements in one operand list",
                     MAX_LIST);
            parse_operand(p, &tmp, 1);
            if (p->nels >= sizeof p->els / sizeof p->els[0])
                perr(p, GF_PTX_ERR_UNSUPPORTED, line, "too many operand list elements");
            el[n] = p->nels;
            p->els[p->nels++] = tmp;
            n++;
            if (!accept(p, ','))
                break;
        }
    }
    expect(p, close, close == '}' ? "'}'" : "')'");
    memset(r, 0, sizeof(*r));
    r->k = (uint8_t)kind;
    r->el0 = n ? el[0] : 0;
    r->nel = n;
}

static void parse_operand(P *p, raw *r, int in_list)
{
    uint32_t line = p->t.line;
    char b[64];
    switch (p->t.k) {
    case '!':
        next(p);
        parse_operand(p, r, in_list);
        if (r->k != RK_REG)
            perr(p, GF_PTX_ERR_SYNTAX, line, "'!' applies to predicate registers only");
        r->neg = 1;
        return;
    case '-':
        next(p);
        if (p->t.k != TK_NUM)
            perr(p, GF_PTX_ERR_SYNTAX, line, "expected a number after '-'");
        parse_num(p, r);
        if (r->k == RK_INT)
            r->ival = 0 - r->ival;
        else if (r->k == RK_DBL)
            r->dval = -r->dval;
        else if (r->k == RK_F32)
            r->ival ^= 0x80000000u;
        else
            r->ival ^= 0x8000000000000000ull;
        return;
    case TK_NUM:
        parse_num(p, r);
        return;
    case '[': {
        next(p);
        memset(r, 0, sizeof(*r));
        raw base;
        if (p->t.k == TK_ID) {
            parse_ident(p, &base);
            if (base.k == RK_REG) {
                r->abase = 1;
                r->reg = base.reg;
            } else if (base.k == RK_SYM) {
                r->abase = 2;
                r->symk = base.symk;
                r->reg = base.reg;
            } else if (base.k == RK_ID) {
                perr(p, GF_PTX_ERR_SYNTAX, line, "unknown symbol '%.*s'",
                     (int)(base.idn > 40 ? 40 : base.idn), base.id);
            } else {
                perr(p, GF_PTX_ERR_SYNTAX, line, "bad address base");
            }
            r->off = parse_offset(p);
        } else if (p->t.k == TK_NUM) {
            r->abase = 0;
            r->off = (int64_t)parse_uint(p, "an address");
            r->off += parse_offset(p);
        } else {
            perr(p, GF_PTX_ERR_SYNTAX, line, "expected an address, got %s", tokdesc(p, b, sizeof b));
        }
        expect(p, ']', "']'");
        r->k = RK_ADDR;
        return;
    }
    case '{':
        if (in_list)
            perr(p, GF_PTX_ERR_SYNTAX, line, "nested operand list");
        parse_list(p, r, '}', RK_VEC);
        return;
    case '(':
        if (in_list)
            perr(p, GF_PTX_ERR_SYNTAX, line, "nested operand list");
        parse_list(p, r, ')', RK_LIST);
        return;
    case TK_ID:
        parse_ident(p, r);
        if (r->k == RK_REG && p->t.k == '|') {
            next(p);
            raw q;
            if (p->t.k != TK_ID)
                perr(p, GF_PTX_ERR_SYNTAX, line, "expected a predicate after '|'");
            parse_ident(p, &q);
            if (q.k != RK_REG && q.k != RK_SINK)
                perr(p, GF_PTX_ERR_SYNTAX, line, "expected a predicate after '|'");
            r->has_pair = q.k == RK_REG ? 1 : 2;
            r->pair = q.reg;
        } else if ((r->k == RK_SYM || r->k == RK_ID) && (p->t.k == '+' || p->t.k == '-')) {
            r->off = parse_offset(p);
        }
        return;
    default:
        perr(p, GF_PTX_ERR_SYNTAX, line, "expected an operand, got %s", tokdesc(p, b, sizeof b));
    }
}

/* ---- raw operand -> IR operand --------------------------------------------------------------- */

/* The bits of numeric literal r (after parse_num) for an operand or variable whose type has
 * float kind fl (gf_ptx__type_info.flt): an integer literal converts by value to a float type,
 * an f32 / f64 bit pattern (0f..., 0d...) converts between the two float widths, and a decimal
 * float literal is an error (naming what) for an integer type. */
static uint64_t literal_bits(P *p, const raw *r, int fl, uint32_t line, const char *what)
{
    switch (r->k) {
    case RK_INT:
        if (fl == 1) return gf_ptx__f32_bits((float)(int64_t)r->ival);
        if (fl == 2) return gf_ptx__f64_bits((double)(int64_t)r->ival);
        return r->ival;
    case RK_F32: return fl == 2 ? gf_ptx__f64_bits((double)gf_ptx__f32(r->ival)) : r->ival;
    case RK_F64: return fl == 1 ? gf_ptx__f32_bits((float)gf_ptx__f64(r->ival)) : r->ival;
    default: /* RK_DBL */
        if (fl == 1) return gf_ptx__f32_bits((float)r->dval);
        if (fl == 2) return gf_ptx__f64_bits(r->dval);
        perr(p, GF_PTX_ERR_SYNTAX, line, "floating-point %s", what);
    }
}

static void sym_opnd(P *p, gf_ptx__opnd *o, int symk, uint32_t idx, int64_t off, uint32_t line)
{
    o->kind = GF_K_SYM;
    o->idx = idx;
    o->imm = (uint64_t)off;
    switch (symk) {
    case SY_GLOBAL: o->sub = GF_S_GLOBAL; break;
    case SY_SHARED: o->sub = GF_S_SHARED; break;
    case SY_KSHARED: o->sub = GF_S_SHARED; o->pad = 1; break;
    case SY_DYNSMEM: o->sub = GF_S_DYNSMEM; break;
    case SY_LOCAL: o->sub = GF_S_LOCAL; break;
    case SY_MODLOCAL: o->sub = GF_S_MODLOCAL; break;
    case SY_KPARAM: o->sub = GF_S_KPARAM; break;
    case SY_FPARAM: o->sub = GF_S_FPARAM; break;
    case SY_FUNC: o->sub = GF_S_FUNC; break;
    default: perr(p, GF_PTX_ERR_SYNTAX, line, "symbol cannot be used here");
    }
}

/* A source operand of scalar type t. */
static void src(P *p, gf_ptx__opnd *o, const raw *r, int t, uint32_t line)
{
    memset(o, 0, sizeof(*o));
    int fl = gf_ptx__types[t].flt;
    switch (r->k) {
    case RK_REG:
        o->kind = r->neg ? GF_K_NREG : GF_K_REG;
        o->idx = r->reg;
        o->neg = r->neg;
        if (r->has_pair)
            perr(p, GF_PTX_ERR_SYNTAX, line, "'|' is only valid on a destination");
        return;
    case RK_SREG:
        o->kind = GF_K_SREG;
        o->idx = r->reg;
        return;
    case RK_SYM:
        sym_opnd(p, o, r->symk, r->reg, r->off, line);
        if (o->sub == GF_S_FUNC)
            perr(p, GF_PTX_ERR_UNSUPPORTED, line, "function addresses are not supported");
        return;
    case RK_INT:
    case RK_F32:
    case RK_F64:
    case RK_DBL:
        o->kind = GF_K_IMM;
        o->imm = literal_bits(p, r, fl, line, "literal for an integer operand");
        return;
    case RK_ID:
        perr(p, GF_PTX_ERR_SYNTAX, line, "unknown symbol '%.*s'", (int)(r->idn > 40 ? 40 : r->idn),
             r->id);
    default:
        perr(p, GF_PTX_ERR_SYNTAX, line, "bad operand for '%s'", p->opc);
    }
}

static void dst(P *p, gf_ptx__opnd *o, const raw *r, uint32_t line)
{
    memset(o, 0, sizeof(*o));
    if (r->k == RK_SINK) {
        o->kind = GF_K_SINK;
        return;
    }
    if (r->k != RK_REG || r->neg)
        perr(p, GF_PTX_ERR_SYNTAX, line, "destination of '%s' must be a register", p->opc);
    o->kind = GF_K_REG;
    o->idx = r->reg;
}

static void addr(P *p, gf_ptx__opnd *o, const raw *r, uint32_t line)
{
    memset(o, 0, sizeof(*o));
    if (r->k != RK_ADDR)
        perr(p, GF_PTX_ERR_SYNTAX, line, "'%s' needs an [address] operand", p->opc);
    if (r->abase == 1) {
        o->kind = GF_K_AREG;
        o->idx = r->reg;
        o->imm = (uint64_t)r->off;
    } else if (r->abase == 2) {
        sym_opnd(p, o, r->symk, r->reg, r->off, line);
        if (o->sub == GF_S_FUNC)
            perr(p, GF_PTX_ERR_SYNTAX, line, "a function is not an address");
    } else {
        o->kind = GF_K_IMM;
        o->imm = (uint64_t)r->off;
    }
}

/* Copies a {…} or (…) list into the module's pool as sources (dest=0) or destinations. */
static void vec(P *p, gf_ptx__opnd *o, const raw *r, int t, int dest, uint32_t line)
{
    gf_ptx_module *m = p->m;
    memset(o, 0, sizeof(*o));
    o->kind = GF_K_VEC;
    o->sub = (uint8_t)r->nel;
    o->idx = m->npool;
    GROW(p, m->pool, p->cappool, (size_t)m->npool + r->nel);
    for (uint32_t i = 0; i < r->nel; i++) {
        const raw *e = &p->els[r->el0 + i];
        if (dest)
            dst(p, &m->pool[m->npool + i], e, line);
        else if (e->k == RK_SINK)
            m->pool[m->npool + i] = (gf_ptx__opnd){.kind = GF_K_SINK};
        else
            src(p, &m->pool[m->npool + i], e, t, line);
    }
    m->npool += r->nel;
}

/* ---- instruction decoding ------------------------------------------------------------------- */

static const char *const cmp_words[] = {"eq", "ne", "lt", "le", "gt", "ge", "lo", "ls", "hi", "hs",
                                        "equ", "neu", "ltu", "leu", "gtu", "geu", "num", "nan",
                                        NULL};
static const char *const rnd_words[] = {"rn", "rz", "rm", "rp", "rni", "rzi", "rmi", "rpi", NULL};
static const char *const space_words[] = {"global", "shared", "local", "const", "param",
                                          "shared::cta", "param::entry", "param::func", NULL};
static const uint8_t space_ids[] = {GF_SP_GLOBAL, GF_SP_SHARED, GF_SP_LOCAL, GF_SP_CONST,
                                    GF_SP_PARAM, GF_SP_SHARED, GF_SP_PARAM, GF_SP_PARAM};

static void need_ops(P *p, uint32_t lo, uint32_t hi, uint32_t line)
{
    if (p->nops < lo || p->nops > hi)
        perr(p, GF_PTX_ERR_SYNTAX, line, "wrong number of operands for '%s'", p->opc);
}

static int one_type(P *p, words *w, uint32_t line)
{
    if (w->ntypes != 1)
        unsupported(p, line);
    return w->types[0];
}

static int isint(int t) { return t >= GF_T_B8 && t <= GF_T_S64; }
static int isflt(int t) { return gf_ptx__types[t].flt != 0; }

/* Decodes the instruction whose words and raw operands are in p into in. */
static void decode(P *p, words *w, gf_ptx__insn *in, uint32_t line)
{
    raw *r = p->ops;
    int rnd = take_one(w, rnd_words);
    in->rnd = (uint8_t)(rnd < 0 ? GF_RND_NONE : rnd + 1);
    if (take(w, "sat"))
        in->flags |= GF_F_SAT;
    if (take(w, "ftz"))
        in->flags |= GF_F_FTZ;
    if (take(w, "approx"))
        in->flags |= GF_F_APPROX;
    take(w, "full");
    drop_hints(w);
    int sp = take_one(w, space_words);
    in->space = (uint8_t)(sp < 0 ? GF_SP_GENERIC : space_ids[sp]);
    int t = w->ntypes ? w->types[0] : GF_T_NONE;
    in->type = (uint8_t)t;

#define OPS(lo, hi) need_ops(p, lo, hi, line)
#define D(i, ri) dst(p, &in->o[i], &r[ri], line)
#define S(i, ri, ty) src(p, &in->o[i], &r[ri], ty, line)

    if (base_is(w, "mov")) {
        t = one_type(p, w, line);
        OPS(2, 2);
        if (r[0].k == RK_VEC) {
            in->op = GF_OP_UNPACK;
            vec(p, &in->o[0], &r[0], t, 1, line);
            S(1, 1, t);
        } else if (r[1].k == RK_VEC) {
            in->op = GF_OP_PACK;
            D(0, 0);
            vec(p, &in->o[1], &r[1], GF_T_B64, 0, line);
        } else {
            in->op = GF_OP_MOV;
            D(0, 0);
            S(1, 1, t);
        }
        if (in->op != GF_OP_MOV) {
            uint32_t n = in->o[in->op == GF_OP_UNPACK ? 0 : 1].sub;
            if (n < 2 || gf_ptx__types[t].size % n)
                perr(p, GF_PTX_ERR_SYNTAX, line, "bad vector for '%s'", p->opc);
        }
    } else if (base_is(w, "ld") || base_is(w, "ldu") || base_is(w, "st")) {
        int st = base_is(w, "st");
        in->op = st ? GF_OP_ST : GF_OP_LD;
        in->mod2 = 1;
        if (take(w, "v2"))
            in->mod2 = 2;
        else if (take(w, "v4"))
            in->mod2 = 4;
        int hint = take(w, "L2::cache_hint");
        t = one_type(p, w, line);
        if (t == GF_T_PRED)
            unsupported(p, line);
        OPS(2 + (uint32_t)hint, 2 + (uint32_t)hint);
        uint32_t ai = st ? 0 : 1, vi = st ? 1 : 0;
        addr(p, &in->o[0], &r[ai], line);
        if (in->mod2 > 1) {
            if (r[vi].k != RK_VEC || r[vi].nel != in->mod2)
                perr(p, GF_PTX_ERR_SYNTAX, line, "'%s' needs a %u-element vector", p->opc,
                     in->mod2);
            vec(p, &in->o[1], &r[vi], t, !st, line);
        } else if (st) {
            S(1, vi, t);
        } else {
            D(1, vi);
        }
        in->nops = 2;
    } else if (base_is(w, "cvta")) {
        in->op = take(w, "to") ? GF_OP_CVTA_TO : GF_OP_CVTA;
        t = one_type(p, w, line);
        if (sp < 0 || (t != GF_T_U32 && t != GF_T_U64))
            unsupported(p, line);
        OPS(2, 2);
        D(0, 0);
        S(1, 1, t);
    } else if (base_is(w, "add") || base_is(w, "sub") || base_is(w, "addc") ||
               base_is(w, "subc")) {
        int c = w->base[w->nbase - 1] == 'c';
        int sub = w->base[0] == 's';
        in->op = c ? (sub ? GF_OP_SUBC : GF_OP_ADDC) : (sub ? GF_OP_SUB : GF_OP_ADD);
        if (take(w, "cc")) {
            in->flags |= GF_F_CC;
            if (!c)
                in->op = sub ? GF_OP_SUBC : GF_OP_ADDC, in->mod = 1; /* no carry in */
        }
        t = one_type(p, w, line);
        if (t == GF_T_PRED || ((in->op == GF_OP_ADDC || in->op == GF_OP_SUBC) &&
                               !(isint(t) && gf_ptx__types[t].size >= 4)))
            unsupported(p, line);
        OPS(3, 3);
        D(0, 0);
        S(1, 1, t);
        S(2, 2, t);
    } else if (base_is(w, "mul") || base_is(w, "mad") || base_is(w, "mul24") ||
               base_is(w, "mad24") || base_is(w, "fma")) {
        int mad = w->base[1] == 'a' || w->base[0] == 'f';
        int is24 = w->nbase == 5;
        in->op = w->base[0] == 'f' ? GF_OP_FMA
                 : is24            ? (mad ? GF_OP_MAD24 : GF_OP_MUL24)
                                   : (mad ? GF_OP_MAD : GF_OP_MUL);
        if (take(w, "hi"))
            in->mod = GF_M_HI;
        else if (take(w, "wide"))
            in->mod = GF_M_WIDE;
        else
            take(w, "lo");
        t = one_type(p, w, line);
        if (t == GF_T_PRED || (isflt(t) && in->mod) || (in->op == GF_OP_FMA && !isflt(t)) ||
            (is24 && t != GF_T_U32 && t != GF_T_S32) ||
            (in->mod == GF_M_WIDE && gf_ptx__types[t].size > 4))
            unsupported(p, line);
        if (in->op == GF_OP_MAD && isflt(t))
            in->op = GF_OP_FMA;
        int st = t;
        in->type2 = (uint8_t)t;
        if (in->mod == GF_M_WIDE)
            in->type = (uint8_t)(gf_ptx__types[t].sign ? (t == GF_T_S16 ? GF_T_S32 : GF_T_S64)
                                                       : (t == GF_T_U16 ? GF_T_U32 : GF_T_U64));
        int nsrc = (in->op == GF_OP_MUL || in->op == GF_OP_MUL24) ? 2 : 3;
        OPS(1 + (uint32_t)nsrc, 1 + (uint32_t)nsrc);
        D(0, 0);
        S(1, 1, st);
        S(2, 2, st);
        if (nsrc == 3)
            S(3, 3, in->type);
    } else if (base_is(w, "sad")) {
        in->op = GF_OP_SAD;
        t = one_type(p, w, line);
        OPS(4, 4);
        D(0, 0);
        S(1, 1, t);
        S(2, 2, t);
        S(3, 3, t);
    } else if (base_is(w, "div") || base_is(w, "rem") || base_is(w, "min") || base_is(w, "max") ||
               base_is(w, "copysign")) {
        in->op = base_is(w, "div")   ? GF_OP_DIV
                 : base_is(w, "rem") ? GF_OP_REM
                 : base_is(w, "min") ? GF_OP_MIN
                 : base_is(w, "max") ? GF_OP_MAX
                                     : GF_OP_COPYSIGN;
        if (take(w, "NaN"))
            in->flags |= GF_F_NAN;
        t = one_type(p, w, line);
        if (t == GF_T_PRED || (in->op == GF_OP_REM && isflt(t)) ||
            (in->op == GF_OP_COPYSIGN && t != GF_T_F32 && t != GF_T_F64))
            unsupported(p, line);
        OPS(3, 3);
        D(0, 0);
        S(1, 1, t);
        S(2, 2, t);
    } else if (base_is(w, "abs") || base_is(w, "neg") || base_is(w, "popc") || base_is(w, "clz") ||
               base_is(w, "brev") || base_is(w, "not") || base_is(w, "cnot") ||
               base_is(w, "rcp") || base_is(w, "sqrt") || base_is(w, "rsqrt") ||
               base_is(w, "sin") || base_is(w, "cos") || base_is(w, "ex2") || base_is(w, "lg2") ||
               base_is(w, "tanh")) {
        static const char *const names[] = {"abs", "neg", "popc", "clz", "brev", "not", "cnot",
                                            "rcp", "sqrt", "rsqrt", "sin", "cos", "ex2", "lg2",
                                            "tanh", NULL};
        static const uint8_t opcodes[] = {GF_OP_ABS, GF_OP_NEG, GF_OP_POPC, GF_OP_CLZ,
                                          GF_OP_BREV, GF_OP_NOT, GF_OP_CNOT, GF_OP_RCP,
                                          GF_OP_SQRT, GF_OP_RSQRT, GF_OP_SIN, GF_OP_COS,
                                          GF_OP_EX2, GF_OP_LG2, GF_OP_TANH};
        for (int i = 0; names[i]; i++)
            if (base_is(w, names[i]))
                in->op = opcodes[i];
        t = one_type(p, w, line);
        int fop = in->op >= GF_OP_RCP;
        if ((fop && t != GF_T_F32 && t != GF_T_F64 &&
             !(t == GF_T_F16 || t == GF_T_F16X2 || t == GF_T_BF16 || t == GF_T_BF16X2)) ||
            (!fop && in->op != GF_OP_ABS && in->op != GF_OP_NEG && isflt(t)) ||
            (t == GF_T_PRED && in->op != GF_OP_NOT))
            unsupported(p, line);
        if (fop && gf_ptx__types[t].flt >= 3 && in->op != GF_OP_EX2 && in->op != GF_OP_TANH)
            unsupported(p, line);
        OPS(2, 2);
        D(0, 0);
        S(1, 1, t);
    } else if (base_is(w, "bfe") || base_is(w, "bfi") || base_is(w, "prmt") ||
               base_is(w, "shf") || base_is(w, "shl") || base_is(w, "shr") || base_is(w, "lop3") ||
               base_is(w, "bfind") || base_is(w, "and") || base_is(w, "or") || base_is(w, "xor")) {
        if (base_is(w, "bfe")) {
            in->op = GF_OP_BFE;
        } else if (base_is(w, "bfi")) {
            in->op = GF_OP_BFI;
        } else if (base_is(w, "prmt")) {
            in->op = GF_OP_PRMT;
            static const char *const pm[] = {"f4e", "b4e", "rc8", "ecl", "ecr", "rc16", NULL};
            int mo = take_one(w, pm);
            in->mod = (uint8_t)(mo + 1);
        } else if (base_is(w, "shf")) {
            in->op = GF_OP_SHF;
            if (take(w, "r"))
                in->flags |= GF_F_SHF_R;
            else if (!take(w, "l"))
                unsupported(p, line);
            if (take(w, "clamp"))
                in->flags |= GF_F_CLAMP;
            else if (!take(w, "wrap"))
                unsupported(p, line);
        } else if (base_is(w, "bfind")) {
            in->op = GF_OP_BFIND;
            in->mod = (uint8_t)take(w, "shiftamt");
        } else {
            in->op = base_is(w, "shl")    ? GF_OP_SHL
                     : base_is(w, "shr")  ? GF_OP_SHR
                     : base_is(w, "lop3") ? GF_OP_LOP3
                     : base_is(w, "and")  ? GF_OP_AND
                     : base_is(w, "or")   ? GF_OP_OR
                                          : GF_OP_XOR;
        }
        t = one_type(p, w, line);
        if (isflt(t) || (t == GF_T_PRED && in->op < GF_OP_AND))
            unsupported(p, line);
        uint32_t n = in->op == GF_OP_BFI ? 5 : (in->op == GF_OP_BFE || in->op == GF_OP_PRMT ||
                                                in->op == GF_OP_SHF) ? 4
                                             : in->op == GF_OP_LOP3 ? 5
                                             : in->op == GF_OP_BFIND ? 2 : 3;
        OPS(n, n);
        D(0, 0);
        for (uint32_t i = 1; i < n; i++) {
            int ot = t;
            if ((in->op == GF_OP_SHL || in->op == GF_OP_SHR) && i == 2)
                ot = GF_T_U32;
            if (in->op == GF_OP_BFE && i >= 2)
                ot = GF_T_U32;
            if (in->op == GF_OP_BFI && i >= 3)
                ot = GF_T_U32;
            if (in->op == GF_OP_SHF && i == 3)
                ot = GF_T_U32;
            S(i, i, ot);
        }
    } else if (base_is(w, "setp") || base_is(w, "set")) {
        int setp = base_is(w, "setp");
        in->op = setp ? GF_OP_SETP : GF_OP_SET;
        int c = take_one(w, cmp_words);
        if (c < 0)
            unsupported(p, line);
        in->mod = (uint8_t)c;
        static const char *const bw[] = {"and", "or", "xor", NULL};
        int bo = take_one(w, bw);
        in->mod2 = (uint8_t)(bo + 1);
        int st;
        if (setp) {
            st = one_type(p, w, line);
        } else {
            if (w->ntypes != 2)
                unsupported(p, line);
            in->type = w->types[0];
            st = w->types[1];
        }
        in->type2 = (uint8_t)st;
        if (st == GF_T_PRED || gf_ptx__types[st].flt == 4 || gf_ptx__types[st].flt == 6 ||
            (!setp && in->type == GF_T_PRED))
            unsupported(p, line);
        if (isint(st) && c >= GF_CMP_EQU)
            unsupported(p, line);
        OPS(3 + (uint32_t)(bo >= 0), 3 + (uint32_t)(bo >= 0));
        D(0, 0);
        if (setp && r[0].has_pair) {
            in->o[4].kind = r[0].has_pair == 1 ? GF_K_REG : GF_K_SINK;
            in->o[4].idx = r[0].pair;
        }
        S(1, 1, st);
        S(2, 2, st);
        if (bo >= 0)
            S(3, 3, GF_T_PRED);
    } else if (base_is(w, "selp") || base_is(w, "slct")) {
        int selp = base_is(w, "selp");
        in->op = selp ? GF_OP_SELP : GF_OP_SLCT;
        if (selp) {
            t = one_type(p, w, line);
            in->type2 = GF_T_PRED;
        } else {
            if (w->ntypes != 2 || (w->types[1] != GF_T_S32 && w->types[1] != GF_T_F32))
                unsupported(p, line);
            t = in->type = w->types[0];
            in->type2 = w->types[1];
        }
        OPS(4, 4);
        D(0, 0);
        S(1, 1, t);
        S(2, 2, t);
        S(3, 3, in->type2);
    } else if (base_is(w, "cvt")) {
        in->op = GF_OP_CVT;
        take(w, "relu");
        if (w->ntypes != 2)
            unsupported(p, line);
        in->type = w->types[0];
        in->type2 = w->types[1];
        int dt = in->type, st = in->type2;
        if (dt == GF_T_PRED || st == GF_T_PRED || gf_ptx__types[st].flt == 4 ||
            gf_ptx__types[st].flt == 6)
            unsupported(p, line);
        if (gf_ptx__types[dt].flt == 4 || gf_ptx__types[dt].flt == 6) {
            if (st != GF_T_F32)
                unsupported(p, line);
            OPS(3, 3);
            D(0, 0);
            S(1, 1, st);
            S(2, 2, st);
        } else {
            OPS(2, 2);
            D(0, 0);
            S(1, 1, st);
        }
    } else if (base_is(w, "testp")) {
        in->op = GF_OP_TESTP;
        static const char *const tw[] = {"finite", "infinite", "number", "notanumber", "normal",
                                         "subnormal", NULL};
        int m = take_one(w, tw);
        t = one_type(p, w, line);
        if (m < 0 || (t != GF_T_F32 && t != GF_T_F64))
            unsupported(p, line);
        in->mod = (uint8_t)m;
        OPS(2, 2);
        D(0, 0);
        S(1, 1, t);
    } else if (base_is(w, "bra")) {
        in->op = GF_OP_BRA;
        take(w, "uni");
        OPS(1, 1);
        if (r[0].k != RK_ID && r[0].k != RK_SYM)
            perr(p, GF_PTX_ERR_SYNTAX, line, "bra needs a label");
        size_t cap = p->capfx;
        GROW(p, p->fx, cap, p->nfx);
        p->capfx = (uint32_t)cap;
        p->fx[p->nfx++] = (fixup){p->f->ncode, 0, r[0].id, r[0].idn, line};
        in->o[0].kind = GF_K_IMM;
    } else if (base_is(w, "call")) {
        in->op = GF_OP_CALL;
        take(w, "uni");
        uint32_t i = 0;
        raw *ret = NULL, *fn, *args = NULL;
        if (p->nops >= 1 && r[0].k == RK_LIST)
            ret = &r[i++];
        if (i >= p->nops)
            perr(p, GF_PTX_ERR_SYNTAX, line, "call needs a target");
        fn = &r[i++];
        if (i < p->nops && r[i].k == RK_LIST)
            args = &r[i++];
        if (i != p->nops)
            perr(p, GF_PTX_ERR_UNSUPPORTED, line, "indirect calls are not supported");
        if (fn->k != RK_SYM || fn->symk != SY_FUNC)
            perr(p, GF_PTX_ERR_UNSUPPORTED, line, "call target must be a declared function");
        in->o[1].kind = GF_K_SYM;
        in->o[1].sub = GF_S_FUNC;
        in->o[1].idx = fn->reg;
        raw empty = {.k = RK_LIST};
        vec(p, &in->o[0], ret ? ret : &empty, GF_T_B64, 0, line);
        vec(p, &in->o[2], args ? args : &empty, GF_T_B64, 0, line);
        in->nops = 3;
    } else if (base_is(w, "ret") || base_is(w, "exit") || base_is(w, "trap") ||
               base_is(w, "brkpt")) {
        in->op = base_is(w, "ret") ? GF_OP_RET : base_is(w, "exit") ? GF_OP_EXIT : GF_OP_TRAP;
        in->mod = base_is(w, "brkpt");
        take(w, "uni");
        OPS(0, 0);
    } else if (base_is(w, "bar") || base_is(w, "barrier")) {
        take(w, "cta");
        if (take(w, "warp")) {
            if (!take(w, "sync"))
                unsupported(p, line);
            in->op = GF_OP_WARPSYNC;
            OPS(1, 1);
            S(0, 0, GF_T_B32);
        } else {
            in->op = GF_OP_BAR;
            int red = 0;
            if (take(w, "sync") || (base_is(w, "bar") && w->nw == 0))
                in->mod = GF_BAR_SYNC;
            else if (take(w, "arrive"))
                in->mod = GF_BAR_ARRIVE;
            else if (take(w, "red")) {
                red = 1;
                static const char *const rw[] = {"popc", "and", "or", NULL};
                int m = take_one(w, rw);
                if (m < 0)
                    unsupported(p, line);
                in->mod = (uint8_t)(GF_BAR_RED_POPC + m);
                t = one_type(p, w, line);
                if ((m == 0) != (t == GF_T_U32))
                    unsupported(p, line);
            } else
                unsupported(p, line);
            drop_hints(w);
            uint32_t base = (uint32_t)red;
            OPS(base + 1 + (uint32_t)red, base + 2 + (uint32_t)red);
            if (red)
                D(0, 0);
            S(1, base, GF_T_U32);
            if (p->nops == base + 2 + (uint32_t)red)
                S(2, base + 1, GF_T_U32);
            if (red)
                S(3, p->nops - 1, GF_T_PRED);
            if (in->mod == GF_BAR_ARRIVE && p->nops != 2)
                perr(p, GF_PTX_ERR_SYNTAX, line, "bar.arrive needs a thread count");
            in->nops = 4;
        }
    } else if (base_is(w, "membar") || base_is(w, "fence") || base_is(w, "prefetch") ||
               base_is(w, "prefetchu") || base_is(w, "pmevent")) {
        in->op = GF_OP_NOP;
        take(w, "gl");
        take(w, "L1");
        take(w, "L2");
        take(w, "proxy");
        take(w, "alias");
        take(w, "async");
        take(w, "once");
        take(w, "mask");
        return; /* operands (prefetch address, event) are ignored */
    } else if (base_is(w, "nanosleep")) {
        in->op = GF_OP_NANOSLEEP;
        t = one_type(p, w, line);
        OPS(1, 1);
        S(0, 0, GF_T_U32);
    } else if (base_is(w, "atom") || base_is(w, "red")) {
        in->op = GF_OP_ATOM;
        int isred = base_is(w, "red");
        if (isred)
            in->flags |= GF_F_NODEST;
        static const char *const aw[] = {"add", "min", "max", "inc", "dec", "and", "or", "xor",
                                         "exch", "cas", NULL};
        int a = take_one(w, aw);
        t = one_type(p, w, line);
        if (a < 0 || (isred && a >= GF_ATOM_EXCH))
            unsupported(p, line);
        in->mod = (uint8_t)a;
        int sz = gf_ptx__types[t].size;
        if ((sz != 4 && sz != 8) || t == GF_T_F16X2 || t == GF_T_BF16X2 ||
            (isflt(t) && a != GF_ATOM_ADD && a != GF_ATOM_EXCH && a != GF_ATOM_CAS &&
             a != GF_ATOM_MIN && a != GF_ATOM_MAX) ||
            ((a == GF_ATOM_INC || a == GF_ATOM_DEC) && t != GF_T_U32) ||
            (in->space != GF_SP_GENERIC && in->space != GF_SP_GLOBAL &&
             in->space != GF_SP_SHARED))
            unsupported(p, line);
        uint32_t n = (isred ? 2 : 3) + (a == GF_ATOM_CAS);
        OPS(n, n);
        uint32_t i = 0;
        if (!isred)
            D(3, i++);
        else
            in->o[3].kind = GF_K_SINK;
        addr(p, &in->o[0], &r[i++], line);
        S(1, i++, t);
        if (a == GF_ATOM_CAS)
            S(2, i, t);
        in->nops = 4;
    } else if (base_is(w, "shfl")) {
        in->op = GF_OP_SHFL;
        take(w, "sync");
        static const char *const sw[] = {"up", "down", "bfly", "idx", NULL};
        int m = take_one(w, sw);
        t = one_type(p, w, line);
        if (m < 0 || gf_ptx__types[t].size != 4 || isflt(t) != 0)
            unsupported(p, line);
        in->mod = (uint8_t)m;
        OPS(4, 5);
        D(0, 0);
        if (r[0].has_pair) {
            in->o[5].kind = r[0].has_pair == 1 ? GF_K_REG : GF_K_SINK;
            in->o[5].idx = r[0].pair;
        }
        S(1, 1, t);
        S(2, 2, GF_T_U32);
        S(3, 3, GF_T_U32);
        if (p->nops == 5)
            S(4, 4, GF_T_U32);
        else
            in->o[4] = (gf_ptx__opnd){.kind = GF_K_IMM, .imm = 0xffffffffu};
        in->nops = 6;
    } else if (base_is(w, "vote")) {
        in->op = GF_OP_VOTE;
        take(w, "sync");
        static const char *const vw[] = {"all", "any", "uni", "ballot", NULL};
        int m = take_one(w, vw);
        t = one_type(p, w, line);
        if (m < 0 || (m == GF_VOTE_BALLOT) != (t == GF_T_B32) ||
            (m != GF_VOTE_BALLOT && t != GF_T_PRED))
            unsupported(p, line);
        in->mod = (uint8_t)m;
        OPS(2, 3);
        D(0, 0);
        S(1, 1, GF_T_PRED);
        if (p->nops == 3)
            S(2, 2, GF_T_U32);
        else
            in->o[2] = (gf_ptx__opnd){.kind = GF_K_IMM, .imm = 0xffffffffu};
    } else if (base_is(w, "activemask")) {
        in->op = GF_OP_ACTIVEMASK;
        t = one_type(p, w, line);
        OPS(1, 1);
        D(0, 0);
    } else if (base_is(w, "dp4a") || base_is(w, "dp2a")) {
        in->op = w->base[2] == '4' ? GF_OP_DP4A : GF_OP_DP2A;
        if (in->op == GF_OP_DP2A) {
            if (take(w, "hi"))
                in->mod = 1;
            else
                take(w, "lo");
        }
        if (w->ntypes != 2)
            unsupported(p, line);
        in->type = w->types[0];
        in->type2 = w->types[1];
        OPS(4, 4);
        D(0, 0);
        S(1, 1, GF_T_B32);
        S(2, 2, GF_T_B32);
        S(3, 3, GF_T_B32);
    } else if (base_is(w, "isspacep")) {
        in->op = GF_OP_ISSPACEP;
        if (sp < 0)
            unsupported(p, line);
        OPS(2, 2);
        D(0, 0);
        S(1, 1, GF_T_U64);
    } else {
        unsupported(p, line);
    }
    all_used(p, w, line);
    if (in->nops == 0)
        in->nops = (uint8_t)p->nops;
    if (in->op == GF_OP_ADD || in->op == GF_OP_SUB || in->op == GF_OP_MUL || in->op == GF_OP_FMA ||
        in->op == GF_OP_DIV || in->op == GF_OP_SQRT || in->op == GF_OP_RCP) {
        if (in->rnd >= GF_RND_RNI)
            unsupported(p, line);
    }
#undef OPS
#undef D
#undef S
}

/* Splits opcode text "ld.global.v4.f32" into w. */
static void split_words(P *p, const char *s, uint32_t n, words *w, uint32_t line)
{
    memset(w, 0, sizeof(*w));
    uint32_t i = 0;
    while (i < n && s[i] != '.')
        i++;
    w->base = s;
    w->nbase = i;
    while (i < n) {
        uint32_t j = ++i;
        while (i < n && s[i] != '.')
            i++;
        if (i == j)
            perr(p, GF_PTX_ERR_SYNTAX, line, "malformed opcode '%s'", p->opc);
        int t = type_of(s + j, i - j);
        if (t) {
            if (w->ntypes >= 4)
                unsupported(p, line);
            w->types[w->ntypes++] = (uint8_t)t;
        } else {
            if (w->nw >= MAX_WORDS)
                unsupported(p, line);
            w->w[w->nw] = s + j;
            w->wn[w->nw++] = i - j;
        }
    }
}

static uint32_t add_str(P *p, const char *s)
{
    gf_ptx_module *m = p->m;
    size_t n = strlen(s) + 1;
    if ((size_t)m->nstrs + n > UINT32_MAX)
        NOMEM(p);
    GROW(p, m->strs, p->capstrs, (size_t)m->nstrs + n);
    memcpy(m->strs + m->nstrs, s, n);
    uint32_t off = m->nstrs;
    m->nstrs += (uint32_t)n;
    return off;
}

/* Parses one instruction; the current token is its opcode (after any guard). */
static void parse_insn(P *p, uint32_t guard, int gneg, uint32_t line)
{
    uint32_t n = p->t.n;
    if (n >= sizeof p->opc)
        perr(p, GF_PTX_ERR_SYNTAX, line, "opcode too long");
    memcpy(p->opc, p->t.s, n);
    p->opc[n] = 0;
    const char *os = p->t.s;
    /* An opcode the engine does not know fails here, before its operands (whose syntax
     * may be unknown too) are parsed. */
    static const char *const known[] = {
        "mov", "ld", "ldu", "st", "cvta", "add", "sub", "addc", "subc", "mul", "mad", "mul24",
        "mad24", "fma", "sad", "div", "rem", "min", "max", "copysign", "abs", "neg", "popc",
        "clz", "brev", "not", "cnot", "rcp", "sqrt", "rsqrt", "sin", "cos", "ex2", "lg2", "tanh",
        "bfe", "bfi", "prmt", "shf", "shl", "shr", "lop3", "bfind", "and", "or", "xor", "setp",
        "set", "selp", "slct", "cvt", "testp", "bra", "call", "ret", "exit", "trap", "brkpt",
        "bar", "barrier", "membar", "fence", "prefetch", "prefetchu", "pmevent", "nanosleep",
        "atom", "red", "shfl", "vote", "activemask", "dp4a", "dp2a", "isspacep", NULL};
    uint32_t bl = 0;
    while (bl < n && os[bl] != '.')
        bl++;
    int ok = 0;
    for (int i = 0; known[i] && !ok; i++)
        ok = strlen(known[i]) == bl && !memcmp(known[i], os, bl);
    if (!ok)
        unsupported(p, line);
    next(p);
    p->nops = 0;
    p->nels = 0;
    if (p->t.k != ';') {
        for (;;) {
            if (p->nops >= GF_PTX_MAX_OPS + 2)
                perr(p, GF_PTX_ERR_SYNTAX, line, "too many operands for '%s'", p->opc);
            parse_operand(p, &p->ops[p->nops++], 0);
            if (!accept(p, ','))
                break;
        }
    }
    expect(p, ';', "';'");
    words w;
    split_words(p, os, n, &w, line);
    struct gf_ptx_kernel *f = p->f;
    GROW(p, f->code, p->capcode, f->ncode);
    gf_ptx__insn *in = &f->code[f->ncode];
    memset(in, 0, sizeof(*in));
    in->guard = guard;
    in->gneg = (uint8_t)gneg;
    in->line = line;
    decode(p, &w, in, line);
    in->text = add_str(p, p->opc);
    f->ncode++;
}

/* ---- declarations ------------------------------------------------------------------------- */

typedef struct vdecl {
    const char *name;
    uint32_t n;
    int type;
    uint32_t align;
    uint64_t size;      /* total bytes; 0 for "[]" */
    uint64_t elems;     /* type elements (size / type size) */
    int managed;        /* .attribute(.managed): a __managed__ variable */
    int unsized;
    uint32_t line;
} vdecl;

/* Parses "[.align N] [.vN] .type name[dims]" (state space already consumed). */
static void parse_vdecl(P *p, vdecl *v, int allow_ptr)
{
    memset(v, 0, sizeof(*v));
    v->line = p->t.line;
    uint32_t vecn = 1;
    int ptr = 0;
    for (;;) {
        if (is(p, ".align")) {
            next(p);
            uint64_t a = parse_uint(p, "an alignment");
            if (a == 0 || a > 4096 || (a & (a - 1)))
                perr(p, GF_PTX_ERR_SYNTAX, v->line, "bad alignment %llu", (unsigned long long)a);
            if (!ptr) /* after .ptr, .align is the pointee's alignment, not the param's */
                v->align = (uint32_t)a;
        } else if (is(p, ".v2") || is(p, ".v4") || is(p, ".v8")) {
            vecn = (uint32_t)(p->t.s[2] - '0');
            next(p);
        } else if (is(p, ".attribute")) {
            /* nvcc marks __managed__ variables ".attribute(.managed)"; .unified(uuid) is the
             * only other attribute PTX defines and means nothing to a CPU. */
            next(p);
            expect(p, '(', "'(' after .attribute");
            while (p->t.k != ')' && p->t.k != TK_EOF) {
                if (is(p, ".managed"))
                    v->managed = 1;
                next(p);
            }
            expect(p, ')', "')' closing .attribute");
        } else if (allow_ptr && (is(p, ".ptr") || is(p, ".global") || is(p, ".shared") ||
                                 is(p, ".local") || is(p, ".const"))) {
            if (is(p, ".ptr"))
                ptr = 1;
            next(p);
        } else if (p->t.k == TK_ID && p->t.s[0] == '.' && type_of(p->t.s + 1, p->t.n - 1)) {
            if (v->type)
                perr(p, GF_PTX_ERR_SYNTAX, v->line, "two types in one declaration");
            v->type = type_of(p->t.s + 1, p->t.n - 1);
            next(p);
        } else {
            break;
        }
    }
    if (!v->type) {
        if (is(p, ".texref") || is(p, ".samplerref") || is(p, ".surfref"))
            perr(p, GF_PTX_ERR_UNSUPPORTED, v->line, "textures and surfaces are not supported");
        char b[64];
        perr(p, GF_PTX_ERR_SYNTAX, v->line, "expected a type, got %s", tokdesc(p, b, sizeof b));
    }
    if (p->t.k != TK_ID || p->t.s[0] == '.') {
        char b[64];
        perr(p, GF_PTX_ERR_SYNTAX, v->line, "expected a name, got %s", tokdesc(p, b, sizeof b));
    }
    v->name = p->t.s;
    v->n = p->t.n;
    next(p);
    uint64_t esz = (uint64_t)gf_ptx__types[v->type].size * vecn;
    uint64_t count = 1;
    while (p->t.k == '[') {
        next(p);
        if (p->t.k == ']') {
            if (v->unsized)
                perr(p, GF_PTX_ERR_UNSUPPORTED, v->line, "only the first dimension may be empty");
            v->unsized = 1;
        } else {
            uint64_t d = parse_uint(p, "an array size");
            if (d > MAX_VAR_BYTES || count * d > MAX_VAR_BYTES / (esz ? esz : 1))
                perr(p, GF_PTX_ERR_UNSUPPORTED, v->line, "variable '%.*s' is too large",
                     (int)(v->n > 40 ? 40 : v->n), v->name);
            count *= d;
        }
        expect(p, ']', "']'");
    }
    v->elems = count * vecn;
    v->size = v->unsized ? 0 : count * esz;
    if (!v->align)
        v->align = (uint32_t)(esz ? (esz > 16 ? 16 : esz) : 1);
    if (v->type == GF_T_PRED && !allow_ptr)
        perr(p, GF_PTX_ERR_SYNTAX, v->line, "predicate variables exist only as registers");
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static void put_le(uint8_t *d, uint64_t v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        d[i] = (uint8_t)(v >> (8 * i));
}

/* Parses "= value" or "= {...}" for a module variable into p->init (size bytes). */
static void parse_init(P *p, vdecl *v)
{
    uint32_t esz = gf_ptx__types[v->type].size;
    uint64_t cap = v->unsized ? MAX_INIT_BYTES : v->size;
    if (cap > MAX_INIT_BYTES)
        perr(p, GF_PTX_ERR_UNSUPPORTED, v->line, "initializer of '%.*s' is too large",
             (int)(v->n > 40 ? 40 : v->n), v->name);
    size_t bufcap = 0;
    uint64_t count = 0;
    int depth = 0;
    int fl = gf_ptx__types[v->type].flt;
    do {
        while (p->t.k == '{') {
            if (++depth > 8)
                perr(p, GF_PTX_ERR_SYNTAX, p->t.line, "initializer nested too deeply");
            next(p);
        }
        raw r;
        uint32_t line = p->t.line;
        if (p->t.k == TK_ID)
            perr(p, GF_PTX_ERR_UNSUPPORTED, line, "address-valued initializers are not supported");
        int neg = accept(p, '-');
        if (p->t.k != TK_NUM) {
            char b[64];
            perr(p, GF_PTX_ERR_SYNTAX, line, "expected an initializer value, got %s",
                 tokdesc(p, b, sizeof b));
        }
        parse_num(p, &r);
        if (neg) {
            if (r.k == RK_INT)
                r.ival = 0 - r.ival;
            else if (r.k == RK_DBL)
                r.dval = -r.dval;
            else
                r.ival ^= r.k == RK_F32 ? 0x80000000ull : 0x8000000000000000ull;
        }
        if ((count + 1) * esz > cap)
            perr(p, GF_PTX_ERR_SYNTAX, line, "too many initializers for '%.*s'",
                 (int)(v->n > 40 ? 40 : v->n), v->name);
        uint64_t bits = literal_bits(p, &r, fl, line, "initializer for an integer variable");
        size_t need = (size_t)((count + 1) * esz);
        if (need > bufcap) {
            size_t nc = bufcap ? bufcap * 2 : 64;
            while (nc < need)
                nc *= 2;
            uint8_t *q = realloc(p->ibuf, nc);
            if (!q)
                NOMEM(p);
            p->ibuf = q;
            bufcap = nc;
        }
        put_le(p->ibuf + count * esz, bits, esz);
        count++;
        while (depth > 0 && p->t.k == '}') {
            depth--;
            next(p);
        }
    } while (depth > 0 && accept(p, ','));
    if (depth)
        perr(p, GF_PTX_ERR_SYNTAX, p->t.line, "expected '}'");
    if (v->unsized) {
        v->size = count * esz;
        v->unsized = 0;
    }
    p->init = calloc(1, v->size ? (size_t)v->size : 1);
    if (!p->init)
        NOMEM(p);
    if (count)
        memcpy(p->init, p->ibuf, (size_t)(count * esz));
    free(p->ibuf);
    p->ibuf = NULL;
}

static char *dupn(P *p, const char *s, uint32_t n)
{
    char *d = malloc((size_t)n + 1);
    if (!d)
        NOMEM(p);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static void check_dup(P *p, const char *s, uint32_t n, uint32_t mark, uint32_t line)
{
    sym *y = st_find(&p->st, s, n);
    if (y && (uint32_t)(y - p->st.e) >= mark)
        perr(p, GF_PTX_ERR_SYNTAX, line, "'%.*s' declared twice", (int)(n > 40 ? 40 : n), s);
}

/* Module-scope .global/.const/.shared/.local declaration(s) after the state space word. */
static void module_var(P *p, int space, int is_extern)
{
    gf_ptx_module *m = p->m;
    for (;;) {
        vdecl v;
        parse_vdecl(p, &v, 0);
        check_dup(p, v.name, v.n, 0, v.line);
        if (accept(p, '=')) {
            if (space != GF_SP_GLOBAL && space != GF_SP_CONST)
                perr(p, GF_PTX_ERR_SYNTAX, v.line, "only .global and .const may be initialized");
            parse_init(p, &v);
        }
        if (space == GF_SP_SHARED) {
            if (is_extern || v.unsized) {
                st_add(p, &p->st, v.name, v.n, SY_DYNSMEM, 0);
            } else {
                uint64_t off = align_up(m->mod_shared, v.align);
                if (off + v.size > MAX_VAR_BYTES)
                    perr(p, GF_PTX_ERR_UNSUPPORTED, v.line, "too much .shared memory");
                st_add(p, &p->st, v.name, v.n, SY_SHARED, (uint32_t)off);
                m->mod_shared = (uint32_t)(off + v.size);
            }
        } else if (space == GF_SP_LOCAL) {
            uint64_t off = align_up(m->mod_local, v.align);
            if (off + v.size > MAX_VAR_BYTES)
                perr(p, GF_PTX_ERR_UNSUPPORTED, v.line, "too much .local memory");
            st_add(p, &p->st, v.name, v.n, SY_MODLOCAL, (uint32_t)off);
            m->mod_local = (uint32_t)(off + v.size);
        } else {
            if (v.unsized)
                perr(p, GF_PTX_ERR_SYNTAX, v.line, "'%.*s' needs a size", (int)(v.n > 40 ? 40 : v.n),
                     v.name);
            if (m->nglobals >= 1u << 20)
                perr(p, GF_PTX_ERR_UNSUPPORTED, v.line, "too many module variables");
            if (m->nglobals >= p->capglobals) {
                size_t nc = p->capglobals ? p->capglobals * 2 : 16;
                gf_ptx_global *g = realloc(m->globals, nc * sizeof(*m->globals));
                if (!g)
                    NOMEM(p);
                m->globals = g;
                uint64_t *ga = realloc(m->gaddr, nc * sizeof(*m->gaddr));
                if (!ga)
                    NOMEM(p);
                m->gaddr = ga;
                p->capglobals = nc;
            }
            gf_ptx_global *g = &m->globals[m->nglobals];
            memset(g, 0, sizeof(*g));
            g->init = p->init;
            p->init = NULL;
            m->gaddr[m->nglobals] = 0;
            m->nglobals++;
            g->name = dupn(p, v.name, v.n);
            g->size = v.size;
            g->align = v.align;
            g->is_const = space == GF_SP_CONST;
            g->is_managed = v.managed;
            st_add(p, &p->st, v.name, v.n, SY_GLOBAL, m->nglobals - 1);
        }
        if (!accept(p, ','))
            break;
    }
    expect(p, ';', "';'");
}

/* A .param list of an entry or func: "( .param ... , ... )". */
static void param_list(P *p, struct gf_ptx_kernel *f, int rets, uint32_t *off)
{
    expect(p, '(', "'('");
    if (p->t.k == ')') {
        next(p);
        return;
    }
    for (;;) {
        uint32_t line = p->t.line;
        if (is(p, ".reg"))
            perr(p, GF_PTX_ERR_UNSUPPORTED, line, ".reg function parameters are not supported");
        expect_id(p, ".param");
        vdecl v;
        parse_vdecl(p, &v, 1);
        if (v.unsized || v.size > (1u << 20))
            perr(p, GF_PTX_ERR_UNSUPPORTED, line, "bad parameter size");
        uint64_t o = align_up(*off, v.align);
        if (o + v.size > (1u << 24))
            perr(p, GF_PTX_ERR_UNSUPPORTED, line, "parameters too large");
        gf_ptx_param **arr = rets ? &f->rets : &f->params;
        unsigned *n = rets ? &f->nrets : &f->nparams;
        if (*n >= 4096)
            perr(p, GF_PTX_ERR_UNSUPPORTED, line, "too many parameters");
        gf_ptx_param *q = realloc(*arr, sizeof(**arr) * (*n + 1));
        if (!q)
            NOMEM(p);
        *arr = q;
        q[*n] = (gf_ptx_param){(uint32_t)o, (uint32_t)v.size, v.align};
        (*n)++;
        *off = (uint32_t)(o + v.size);
        if (!rets)
            f->params_size = *off;
        if (f->defined || p->f == f) {
            check_dup(p, v.name, v.n, p->pmark, line);
            sym *y = st_add(p, &p->st, v.name, v.n, f->is_entry ? SY_KPARAM : SY_FPARAM,
                            (uint32_t)o);
            y->size = (uint32_t)v.size;
        }
        if (!accept(p, ','))
            break;
    }
    expect(p, ')', "')'");
}

static void body(P *p, struct gf_ptx_kernel *f);

static struct gf_ptx_kernel *new_func(P *p, const char *name, uint32_t n, int entry)
{
    gf_ptx_module *m = p->m;
    if (m->nfuncs >= 1u << 16)
        perr(p, GF_PTX_ERR_UNSUPPORTED, p->t.line, "too many functions");
    GROW(p, m->funcs, p->capfuncs, m->nfuncs);
    struct gf_ptx_kernel *f = calloc(1, sizeof(*f));
    if (!f)
        NOMEM(p);
    m->funcs[m->nfuncs++] = f;
    f->mod = m;
    f->index = m->nfuncs - 1;
    f->is_entry = entry;
    f->name = dupn(p, name, n);
    if (entry) {
        GROW(p, m->entries, p->capentries, m->nentries);
        m->entries[m->nentries++] = m->nfuncs - 1;
    }
    return f;
}

static void perf_directives(P *p, struct gf_ptx_kernel *f)
{
    for (;;) {
        uint32_t line = p->t.line;
        if (is(p, ".maxntid") || is(p, ".reqntid")) {
            next(p);
            uint64_t prod = 1;
            for (int i = 0; i < 3; i++) {
                uint64_t v = parse_uint(p, "a thread count");
                if (v == 0 || v > 1024)
                    perr(p, GF_PTX_ERR_SYNTAX, line, "bad thread count %llu", (unsigned long long)v);
                prod *= v;
                if (!accept(p, ','))
                    break;
            }
            f->max_threads = prod > UINT32_MAX ? UINT32_MAX : (uint32_t)prod;
        } else if (is(p, ".minnctapersm") || is(p, ".maxnreg") || is(p, ".maxnctapersm") ||
                   is(p, ".maxclusterrank")) {
            next(p);
            parse_uint(p, "a number");
        } else if (is(p, ".reqnctapercluster") || is(p, ".explicitcluster")) {
            perr(p, GF_PTX_ERR_UNSUPPORTED, line, "thread block clusters are not supported");
        } else if (is(p, ".noreturn") || is(p, ".abi_preserve") || is(p, ".abi_preserve_control")) {
            next(p);
            if (p->t.k == TK_NUM)
                next(p);
        } else if (is(p, ".pragma")) {
            next(p);
            while (p->t.k == TK_STR || p->t.k == ',')
                next(p);
            expect(p, ';', "';'");
        } else {
            return;
        }
    }
}

/* .entry / .func after the keyword. */
static void function(P *p, int entry)
{
    uint32_t line = p->t.line;
    uint32_t mark = p->st.n;
    struct gf_ptx_kernel *sig = &p->sig;
    memset(sig, 0, sizeof(*sig));
    p->pmark = mark;
    sig->is_entry = entry;
    /* Parse the signature into p->sig, with the parameter names in a fresh scope. */
    p->f = sig;
    uint32_t poff = 0;
    if (!entry && p->t.k == '(')
        param_list(p, sig, 1, &poff);
    if (p->t.k != TK_ID || p->t.s[0] == '.' || p->t.s[0] == '%') {
        char b[64];
        perr(p, GF_PTX_ERR_SYNTAX, line, "expected a function name, got %s", tokdesc(p, b, sizeof b));
    }
    const char *name = p->t.s;
    uint32_t nn = p->t.n;
    next(p);
    /* Results precede formals in a .func's param area; an entry's formals are the kernel
     * parameter buffer, laid out from 0. */
    uint32_t foff = entry ? 0 : poff;
    if (p->t.k == '(')
        param_list(p, sig, 0, &foff);
    p->f = NULL;
    perf_directives(p, sig);
    /* Find or create the function object, then move the signature into it. A parameter
     * with the function's name is not the function. */
    sym *y = st_find(&p->st, name, nn);
    if (y && (uint32_t)(y - p->st.e) >= mark)
        y = NULL;
    struct gf_ptx_kernel *f;
    if (y && y->kind == SY_FUNC) {
        f = p->m->funcs[y->idx];
        if (f->is_entry != entry || f->nparams != sig->nparams || f->nrets != sig->nrets)
            perr(p, GF_PTX_ERR_SYNTAX, line, "'%s' redeclared differently", f->name);
        free(f->params);
        free(f->rets);
    } else if (y) {
        perr(p, GF_PTX_ERR_SYNTAX, line, "'%.*s' declared twice", (int)(nn > 40 ? 40 : nn), name);
    } else {
        f = new_func(p, name, nn, entry);
    }
    f->params = sig->params;
    f->nparams = sig->nparams;
    f->rets = sig->rets;
    f->nrets = sig->nrets;
    f->params_size = sig->params_size;
    f->max_threads = sig->max_threads;
    sig->params = NULL;
    sig->rets = NULL;
    if (!y) {
        /* The parameter symbols sit above mark; re-add them above the function's symbol so
         * that the function outlives its parameter scope. */
        uint32_t np = p->st.n - mark;
        if (np) {
            p->keep = malloc(sizeof(*p->keep) * np);
            if (!p->keep)
                NOMEM(p);
            memcpy(p->keep, p->st.e + mark, sizeof(*p->keep) * np);
        }
        st_pop(&p->st, mark);
        st_add(p, &p->st, name, nn, SY_FUNC, p->m->nfuncs - 1);
        mark = p->st.n;
        for (uint32_t i = 0; i < np; i++) {
            sym *e = st_add(p, &p->st, p->keep[i].s, p->keep[i].n, p->keep[i].kind, p->keep[i].idx);
            e->size = p->keep[i].size;
        }
        free(p->keep);
        p->keep = NULL;
    }
    if (accept(p, ';')) {
        st_pop(&p->st, mark);
        return;
    }
    if (f->defined)
        perr(p, GF_PTX_ERR_SYNTAX, line, "'%s' defined twice", f->name);
    f->defined = 1;
    f->param_size = entry ? 0 : foff;
    body(p, f);
    st_pop(&p->st, mark);
}

/* A declaration inside a function body, after the state space word. */
static void local_decl(P *p, struct gf_ptx_kernel *f, int space)
{
    for (;;) {
        vdecl v;
        parse_vdecl(p, &v, 0);
        if (v.unsized)
            perr(p, GF_PTX_ERR_UNSUPPORTED, v.line, "unsized variable in a function");
        if (p->t.k == '=')
            perr(p, GF_PTX_ERR_UNSUPPORTED, v.line, "initialized function-scope variables");
        if (space == GF_SP_LOCAL) {
            uint64_t off = align_up(f->local_size, v.align);
            if (off + v.size > MAX_VAR_BYTES)
                perr(p, GF_PTX_ERR_UNSUPPORTED, v.line, "too much .local memory");
            st_add(p, &p->st, v.name, v.n, SY_LOCAL, (uint32_t)off);
            f->local_size = (uint32_t)(off + v.size);
        } else if (space == GF_SP_SHARED) {
            if (!f->is_entry)
                perr(p, GF_PTX_ERR_UNSUPPORTED, v.line, ".shared variables in a .func");
            uint64_t off = align_up(p->kshared, v.align);
            if (off + v.size > MAX_VAR_BYTES)
                perr(p, GF_PTX_ERR_UNSUPPORTED, v.line, "too much .shared memory");
            st_add(p, &p->st, v.name, v.n, SY_KSHARED, (uint32_t)off);
            p->kshared = (uint32_t)(off + v.size);
            if (v.align > p->kshared_align)
                p->kshared_align = v.align;
        } else { /* .param: call scratch in the frame */
            uint64_t off = align_up(p->param_cur, v.align);
            if (off + v.size > (1u << 24))
                perr(p, GF_PTX_ERR_UNSUPPORTED, v.line, "too much .param memory");
            sym *y = st_add(p, &p->st, v.name, v.n, SY_FPARAM, (uint32_t)off);
            y->size = (uint32_t)v.size;
            p->param_cur = (uint32_t)(off + v.size);
            if (p->param_cur > f->param_size)
                f->param_size = p->param_cur;
        }
        if (!accept(p, ','))
            break;
    }
    expect(p, ';', "';'");
}

static void reg_decl(P *p, struct gf_ptx_kernel *f)
{
    uint32_t line = p->t.line;
    if (is(p, ".v2") || is(p, ".v4"))
        perr(p, GF_PTX_ERR_UNSUPPORTED, line, "vector registers are not supported");
    if (p->t.k != TK_ID || p->t.s[0] != '.' || !type_of(p->t.s + 1, p->t.n - 1)) {
        char b[64];
        perr(p, GF_PTX_ERR_SYNTAX, line, "expected a register type, got %s", tokdesc(p, b, sizeof b));
    }
    next(p);
    for (;;) {
        if (p->t.k != TK_ID || p->t.s[0] == '.') {
            char b[64];
            perr(p, GF_PTX_ERR_SYNTAX, line, "expected a register name, got %s",
                 tokdesc(p, b, sizeof b));
        }
        const char *s = p->t.s;
        uint32_t n = p->t.n;
        next(p);
        if (accept(p, '<')) {
            uint64_t c = parse_uint(p, "a register count");
            expect(p, '>', "'>'");
            size_t cap = p->caprd;
            GROW(p, p->rd, cap, p->nrd);
            p->caprd = (uint32_t)cap;
            p->rd[p->nrd++] = (rdecl){s, n, c, p->rdid++};
            uint64_t tot = (uint64_t)f->declared_regs + c;
            f->declared_regs = tot > UINT32_MAX ? UINT32_MAX : (uint32_t)tot;
        } else {
            st_add(p, &p->st, s, n, SY_REG, new_slot(p));
            if (f->declared_regs < UINT32_MAX)
                f->declared_regs++;
        }
        if (!accept(p, ','))
            break;
    }
    expect(p, ';', "';'");
}

/* The scope marks of nested { } blocks. */
typedef struct scope {
    uint32_t st, rd, param;
} scope;

static void body(P *p, struct gf_ptx_kernel *f)
{
    p->f = f;
    p->capcode = 0;
    p->nrd = 0;
    p->nrk = 0;
    if (p->rkeys)
        memset(p->rkeys, 0, sizeof(*p->rkeys) * p->caprk);
    p->nfx = 0;
    st_pop(&p->labels, 0);
    p->kshared = 0;
    p->kshared_align = 1;
    p->param_cur = f->param_size;
    scope sc[64];
    int depth = 0;
    expect(p, '{', "'{'");
    for (;;) {
        uint32_t line = p->t.line;
        if (p->t.k == '}') {
            next(p);
            if (depth == 0)
                break;
            depth--;
            st_pop(&p->st, sc[depth].st);
            p->nrd = sc[depth].rd;
            p->param_cur = sc[depth].param;
            continue;
        }
        if (p->t.k == '{') {
            if (depth >= 64)
                perr(p, GF_PTX_ERR_SYNTAX, line, "blocks nested too deeply");
            sc[depth++] = (scope){p->st.n, p->nrd, p->param_cur};
            next(p);
            continue;
        }
        if (p->t.k == TK_EOF)
            perr(p, GF_PTX_ERR_SYNTAX, line, "missing '}' at end of '%s'", f->name);
        if (p->t.k == ';') {
            next(p);
            continue;
        }
        if (is(p, ".reg")) {
            next(p);
            reg_decl(p, f);
        } else if (is(p, ".local") || is(p, ".shared") || is(p, ".param")) {
            int sp = is(p, ".local") ? GF_SP_LOCAL : is(p, ".shared") ? GF_SP_SHARED : GF_SP_PARAM;
            next(p);
            local_decl(p, f, sp);
        } else if (is(p, ".loc") || is(p, ".file")) {
            skip_line(p);
        } else if (is(p, ".pragma")) {
            next(p);
            while (p->t.k == TK_STR || p->t.k == ',')
                next(p);
            expect(p, ';', "';'");
        } else if (p->t.k == TK_ID && p->t.s[0] == '.') {
            perr(p, GF_PTX_ERR_UNSUPPORTED, line, "unsupported directive '%.*s'",
                 (int)(p->t.n > 40 ? 40 : p->t.n), p->t.s);
        } else if (p->t.k == '@') {
            next(p);
            int neg = accept(p, '!');
            uint32_t slot;
            if (p->t.k != TK_ID || !find_reg(p, p->t.s, p->t.n, &slot))
                perr(p, GF_PTX_ERR_SYNTAX, line, "expected a predicate register after '@'");
            next(p);
            if (p->t.k != TK_ID)
                perr(p, GF_PTX_ERR_SYNTAX, line, "expected an instruction");
            parse_insn(p, slot + 1, neg, line);
        } else if (p->t.k == TK_ID) {
            /* A label "name:" or an instruction. */
            const char *s = p->t.s;
            uint32_t n = p->t.n;
            const char *save = p->cur;
            uint32_t sl = p->line;
            next(p);
            if (p->t.k == ':') {
                next(p);
                sym *y = st_find(&p->labels, s, n);
                if (y)
                    perr(p, GF_PTX_ERR_SYNTAX, line, "label '%.*s' defined twice",
                         (int)(n > 40 ? 40 : n), s);
                st_add(p, &p->labels, s, n, SY_LABEL, f->ncode);
                continue;
            }
            p->cur = save;
            p->line = sl;
            p->t = (tok){TK_ID, s, n, line};
            parse_insn(p, 0, 0, line);
        } else {
            char b[64];
            perr(p, GF_PTX_ERR_SYNTAX, line, "expected an instruction, got %s", tokdesc(p, b, sizeof b));
        }
    }
    /* Branch targets. A label at the very end points past the last instruction; the
     * interpreter treats running off the end as ret. */
    for (uint32_t i = 0; i < p->nfx; i++) {
        sym *y = st_find(&p->labels, p->fx[i].s, p->fx[i].n);
        if (!y)
            perr(p, GF_PTX_ERR_SYNTAX, p->fx[i].line, "unknown label '%.*s'",
                 (int)(p->fx[i].n > 40 ? 40 : p->fx[i].n), p->fx[i].s);
        f->code[p->fx[i].insn].o[p->fx[i].op].imm = y->idx;
    }
    /* Always end with a ret so falling off the end is well defined. */
    GROW(p, f->code, p->capcode, f->ncode);
    gf_ptx__insn *in = &f->code[f->ncode++];
    memset(in, 0, sizeof(*in));
    in->op = GF_OP_RET;
    in->line = p->t.line;
    in->text = add_str(p, "ret");
    if (f->is_entry) {
        uint64_t base = align_up(p->m->mod_shared, 16);
        uint64_t tot = base + p->kshared;
        if (tot > MAX_VAR_BYTES)
            perr(p, GF_PTX_ERR_UNSUPPORTED, p->t.line, "too much .shared memory");
        f->shared_size = (uint32_t)tot;
        /* Offsets of the entry's own .shared variables become window offsets. */
        for (uint32_t i = 0; i < f->ncode; i++)
            for (int j = 0; j < GF_PTX_MAX_OPS; j++)
                if (f->code[i].o[j].kind == GF_K_SYM && f->code[i].o[j].pad) {
                    f->code[i].o[j].idx += (uint32_t)base;
                    f->code[i].o[j].pad = 0;
                }
    }
    p->f = NULL;
}

/* ---- call graph: how deep can a thread's frames go ---------------------------------------- */

#define RECURSION_DEPTH 32

static void stack_needs(P *p)
{
    gf_ptx_module *m = p->m;
    unsigned n = m->nfuncs;
    if (!n)
        return;
    /* state: 0 new, 1 on stack, 2 done */
    uint8_t *state = calloc(n, 1);
    uint32_t *stk = malloc(sizeof(*stk) * n * 2);
    if (!state || !stk) {
        free(state);
        free(stk);
        NOMEM(p);
    }
    for (unsigned root = 0; root < n; root++) {
        if (state[root])
            continue;
        uint32_t sp = 0;
        stk[sp++] = root;
        stk[sp++] = 0;
        state[root] = 1;
        while (sp) {
            struct gf_ptx_kernel *f = m->funcs[stk[sp - 2]];
            uint32_t *pc = &stk[sp - 1];
            int pushed = 0;
            while (*pc < f->ncode) {
                gf_ptx__insn *in = &f->code[(*pc)++];
                if (in->op != GF_OP_CALL)
                    continue;
                uint32_t c = in->o[1].idx;
                if (state[c] == 1) {
                    f->recursive = 1;
                    m->funcs[c]->recursive = 1;
                } else if (state[c] == 0) {
                    state[c] = 1;
                    stk[sp++] = c;
                    stk[sp++] = 0;
                    pushed = 1;
                    break;
                }
            }
            if (pushed)
                continue;
            /* All callees done: combine. */
            uint64_t s = 0, l = 0, pa = 0, d = 0;
            int rec = f->recursive;
            for (uint32_t i = 0; i < f->ncode; i++) {
                gf_ptx__insn *in = &f->code[i];
                if (in->op != GF_OP_CALL)
                    continue;
                struct gf_ptx_kernel *c = m->funcs[in->o[1].idx];
                if (c->recursive || state[in->o[1].idx] != 2)
                    rec = 1;
                if (c->stack_slots > s) s = c->stack_slots;
                if (c->stack_local > l) l = c->stack_local;
                if (c->stack_param > pa) pa = c->stack_param;
                if (c->stack_depth > d) d = c->stack_depth;
                /* A recursive callee's own frame may repeat. */
                if (c->nslots > s) s = c->nslots;
                if (c->local_size > l) l = c->local_size;
                if (c->param_size > pa) pa = c->param_size;
            }
            f->recursive = rec;
            if (rec) {
                s *= RECURSION_DEPTH, l *= RECURSION_DEPTH, pa *= RECURSION_DEPTH;
                d = RECURSION_DEPTH;
            }
            s += f->nslots;
            l += align_up(f->local_size, 16);
            pa += align_up(f->param_size, 16);
            d += 1;
            f->stack_slots = s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
            f->stack_local = l > UINT32_MAX ? UINT32_MAX : (uint32_t)l;
            f->stack_param = pa > UINT32_MAX ? UINT32_MAX : (uint32_t)pa;
            f->stack_depth = d > 4096 ? 4096 : (uint32_t)d;
            state[stk[sp - 2]] = 2;
            sp -= 2;
        }
    }
    free(state);
    free(stk);
}

/* Checks calls against their targets' signatures now that every function is known. */
static void check_calls(P *p)
{
    gf_ptx_module *m = p->m;
    for (unsigned i = 0; i < m->nfuncs; i++) {
        struct gf_ptx_kernel *f = m->funcs[i];
        for (uint32_t j = 0; j < f->ncode; j++) {
            gf_ptx__insn *in = &f->code[j];
            if (in->op != GF_OP_CALL)
                continue;
            struct gf_ptx_kernel *c = m->funcs[in->o[1].idx];
            if (c->is_entry)
                perr(p, GF_PTX_ERR_SYNTAX, in->line, "call to kernel '%s'", c->name);
            if (!c->defined)
                perr(p, GF_PTX_ERR_UNSUPPORTED, in->line, "call to external function '%s'", c->name);
            if (in->o[0].sub != c->nrets || in->o[2].sub != c->nparams)
                perr(p, GF_PTX_ERR_SYNTAX, in->line, "call to '%s' with the wrong number of arguments",
                     c->name);
        }
    }
}

/* ---- module ------------------------------------------------------------------------------- */

static void module(P *p)
{
    next(p);
    while (p->t.k != TK_EOF) {
        uint32_t line = p->t.line;
        if (is(p, ".version")) {
            next(p);
            if (p->t.k != TK_NUM)
                perr(p, GF_PTX_ERR_SYNTAX, line, "expected a version number");
            next(p);
        } else if (is(p, ".target")) {
            next(p);
            do {
                if (p->t.k != TK_ID)
                    perr(p, GF_PTX_ERR_SYNTAX, line, "expected a target name");
                next(p);
            } while (accept(p, ','));
        } else if (is(p, ".address_size")) {
            next(p);
            uint64_t a = parse_uint(p, "an address size");
            if (a != 64)
                perr(p, GF_PTX_ERR_UNSUPPORTED, line, ".address_size %llu (only 64 is supported)",
                     (unsigned long long)a);
        } else if (is(p, ".file") || is(p, ".loc")) {
            skip_line(p);
        } else if (is(p, ".section")) {
            next(p);
            while (p->t.k != '{' && p->t.k != TK_EOF)
                next(p);
            int d = 0;
            do {
                if (p->t.k == '{')
                    d++;
                else if (p->t.k == '}')
                    d--;
                else if (p->t.k == TK_EOF)
                    perr(p, GF_PTX_ERR_SYNTAX, line, "unterminated .section");
                next(p);
            } while (d > 0);
        } else if (is(p, ".pragma")) {
            next(p);
            while (p->t.k == TK_STR || p->t.k == ',')
                next(p);
            expect(p, ';', "';'");
        } else if (p->t.k == ';') {
            next(p);
        } else {
            int is_extern = 0;
            while (is(p, ".visible") || is(p, ".extern") || is(p, ".weak") || is(p, ".common")) {
                if (is(p, ".extern"))
                    is_extern = 1;
                next(p);
            }
            if (is(p, ".entry")) {
                next(p);
                function(p, 1);
            } else if (is(p, ".func")) {
                next(p);
                function(p, 0);
            } else if (is(p, ".global") || is(p, ".const") || is(p, ".shared") || is(p, ".local")) {
                int sp = is(p, ".global") ? GF_SP_GLOBAL : is(p, ".const") ? GF_SP_CONST
                         : is(p, ".shared") ? GF_SP_SHARED : GF_SP_LOCAL;
                next(p);
                module_var(p, sp, is_extern);
            } else if (is(p, ".tex") || is(p, ".surf") || is(p, ".sampler") || is(p, ".texref")) {
                perr(p, GF_PTX_ERR_UNSUPPORTED, line, "textures and surfaces are not supported");
            } else {
                char b[64];
                perr(p, GF_PTX_ERR_SYNTAX, line, "expected a directive, got %s", tokdesc(p, b, sizeof b));
            }
        }
    }
    check_calls(p);
    stack_needs(p);
}

void gf_ptx_module_free(gf_ptx_module *m)
{
    if (!m)
        return;
    for (unsigned i = 0; i < m->nfuncs; i++) {
        struct gf_ptx_kernel *f = m->funcs[i];
        free(f->name);
        free(f->code);
        free(f->params);
        free(f->rets);
        free(f);
    }
    free(m->funcs);
    free(m->entries);
    for (unsigned i = 0; i < m->nglobals; i++) {
        free((void *)m->globals[i].name);
        free((void *)m->globals[i].init);
    }
    free(m->globals);
    free(m->gaddr);
    free(m->pool);
    free(m->strs);
    free(m);
}

gf_ptx_rc gf_ptx_module_load(const char *text, size_t len, gf_ptx_module **out, char *err,
                             size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (out)
        *out = NULL;
    if (!text || !out) {
        if (err && errlen)
            snprintf(err, errlen, "no PTX text");
        return GF_PTX_ERR_SYNTAX;
    }
    P *p = calloc(1, sizeof(*p));
    gf_ptx_module *m = calloc(1, sizeof(*m));
    if (!p || !m) {
        free(p);
        free(m);
        if (err && errlen)
            snprintf(err, errlen, "out of host memory");
        return GF_PTX_ERR_NOMEM;
    }
    p->src = p->cur = text;
    p->end = text + len;
    p->line = 1;
    p->err = err;
    p->errlen = errlen;
    p->m = m;
    gf_ptx_rc rc = (gf_ptx_rc)setjmp(p->jb);
    if (rc == GF_PTX_OK) {
        module(p);
        if (!m->nentries && !m->nfuncs && !m->nglobals && p->src == p->cur)
            perr(p, GF_PTX_ERR_SYNTAX, 1, "empty PTX module");
    }
    free(p->sig.params);
    free(p->sig.rets);
    free(p->keep);
    free(p->ibuf);
    free(p->init);
    st_free(&p->st);
    st_free(&p->labels);
    free(p->rd);
    free(p->rkeys);
    free(p->rvals);
    free(p->fx);
    free(p);
    if (rc != GF_PTX_OK) {
        gf_ptx_module_free(m);
        return rc;
    }
    *out = m;
    return GF_PTX_OK;
}

unsigned gf_ptx_module_kernel_count(const gf_ptx_module *m)
{
    return m ? m->nentries : 0;
}

const gf_ptx_kernel *gf_ptx_module_kernel(const gf_ptx_module *m, unsigned index)
{
    if (!m || index >= m->nentries)
        return NULL;
    return m->funcs[m->entries[index]];
}

const gf_ptx_kernel *gf_ptx_module_find_kernel(const gf_ptx_module *m, const char *name)
{
    if (!m || !name)
        return NULL;
    for (unsigned i = 0; i < m->nentries; i++)
        if (!strcmp(m->funcs[m->entries[i]]->name, name))
            return m->funcs[m->entries[i]];
    return NULL;
}

unsigned gf_ptx_module_global_count(const gf_ptx_module *m)
{
    return m ? m->nglobals : 0;
}

const gf_ptx_global *gf_ptx_module_global(const gf_ptx_module *m, unsigned index)
{
    if (!m || index >= m->nglobals)
        return NULL;
    return &m->globals[index];
}

void gf_ptx_module_bind_global(gf_ptx_module *m, unsigned index, uint64_t device_addr)
{
    if (m && index < m->nglobals)
        m->gaddr[index] = device_addr;
}

const char *gf_ptx_kernel_name(const gf_ptx_kernel *k) { return k->name; }
unsigned gf_ptx_kernel_param_count(const gf_ptx_kernel *k) { return k->nparams; }

const gf_ptx_param *gf_ptx_kernel_param(const gf_ptx_kernel *k, unsigned index)
{
    return index < k->nparams ? &k->params[index] : NULL;
}

uint32_t gf_ptx_kernel_params_size(const gf_ptx_kernel *k) { return k->params_size; }
uint32_t gf_ptx_kernel_static_shared(const gf_ptx_kernel *k) { return k->shared_size; }
uint32_t gf_ptx_kernel_num_regs(const gf_ptx_kernel *k) { return k->declared_regs; }
uint32_t gf_ptx_kernel_max_threads(const gf_ptx_kernel *k) { return k->max_threads; }

uint32_t gf_ptx_kernel_local_bytes(const gf_ptx_kernel *k)
{
    uint64_t v = (uint64_t)k->mod->mod_local + k->stack_local;
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}
