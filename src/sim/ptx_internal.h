/* SPDX-License-Identifier: Apache-2.0 */
/* The PTX engine's decoded IR, shared by the parser (ptx_parse.c) and the interpreter
 * (ptx_exec.c); nothing outside src/sim/ptx_*.c includes it.
 *
 * The parser turns every instruction into a fixed-size gf_ptx__insn whose operands are
 * register slots, immediates, special registers or symbol references, so the interpreter's
 * loop is one switch with no string handling and no allocation.
 */
#ifndef GF_SIM_PTX_INTERNAL_H
#define GF_SIM_PTX_INTERNAL_H

#include "sim/ptx.h"

#include <stdint.h>

/* Floats as the bits registers and immediates hold (low 32 bits for an f32), and back. */
static inline float gf_ptx__f32(uint64_t bits) { return (union { uint32_t u; float f; }){(uint32_t)bits}.f; }
static inline uint64_t gf_ptx__f32_bits(float f) { return (union { float f; uint32_t u; }){f}.u; }
static inline double gf_ptx__f64(uint64_t bits) { return (union { uint64_t u; double d; }){bits}.d; }
static inline uint64_t gf_ptx__f64_bits(double d) { return (union { double d; uint64_t u; }){d}.u; }

/* Scalar types. The order matters: gf_ptx__type_info[] is indexed by it. */
enum {
    GF_T_NONE = 0,
    GF_T_PRED,
    GF_T_B8, GF_T_B16, GF_T_B32, GF_T_B64,
    GF_T_U8, GF_T_U16, GF_T_U32, GF_T_U64,
    GF_T_S8, GF_T_S16, GF_T_S32, GF_T_S64,
    GF_T_F16, GF_T_F16X2, GF_T_BF16, GF_T_BF16X2,
    GF_T_F32, GF_T_F64,
    GF_T_COUNT
};

typedef struct gf_ptx__type_info {
    uint8_t size;   /* bytes */
    uint8_t sign;   /* signed integer */
    uint8_t flt;    /* 1 f32, 2 f64, 3 f16, 4 f16x2, 5 bf16, 6 bf16x2 */
} gf_ptx__type_info;

extern const gf_ptx__type_info gf_ptx__types[GF_T_COUNT];

/* Operand kinds. */
enum {
    GF_K_NONE = 0,
    GF_K_REG,   /* idx = register slot in the current frame */
    GF_K_IMM,   /* imm = bits, already in the instruction's type */
    GF_K_SREG,  /* idx = GF_SR_* */
    GF_K_SYM,   /* sub = GF_S_*, idx = symbol index or offset base; value = address + imm */
    GF_K_AREG,  /* address: register idx + imm byte offset */
    GF_K_VEC,   /* idx = first operand in the module's vector pool, sub = element count */
    GF_K_SINK,  /* "_": result discarded */
    GF_K_NREG,  /* "!%p": a predicate register, negated */
};

/* Symbol kinds for GF_K_SYM: what address the symbol stands for. */
enum {
    GF_S_GLOBAL = 0, /* module .global/.const variable idx: its bound device address */
    GF_S_SHARED,     /* idx = byte offset in the block's shared window */
    GF_S_DYNSMEM,    /* extern .shared: offset just after the kernel's static shared */
    GF_S_LOCAL,      /* idx = byte offset in the current frame's .local area */
    GF_S_MODLOCAL,   /* idx = byte offset in the thread's module-scope .local area */
    GF_S_KPARAM,     /* idx = byte offset in the kernel parameter buffer */
    GF_S_FPARAM,     /* idx = byte offset in the current frame's .param area */
    GF_S_FUNC,       /* idx = function index (call targets only) */
};

/* Special registers. */
enum {
    GF_SR_TID_X = 0, GF_SR_TID_Y, GF_SR_TID_Z,
    GF_SR_NTID_X, GF_SR_NTID_Y, GF_SR_NTID_Z,
    GF_SR_CTAID_X, GF_SR_CTAID_Y, GF_SR_CTAID_Z,
    GF_SR_NCTAID_X, GF_SR_NCTAID_Y, GF_SR_NCTAID_Z,
    GF_SR_LANEID, GF_SR_WARPID, GF_SR_NWARPID, GF_SR_SMID, GF_SR_NSMID, GF_SR_GRIDID,
    GF_SR_CLOCK, GF_SR_CLOCK_HI, GF_SR_CLOCK64, GF_SR_GLOBALTIMER, GF_SR_GLOBALTIMER_LO,
    GF_SR_GLOBALTIMER_HI,
    GF_SR_LANEMASK_EQ, GF_SR_LANEMASK_LE, GF_SR_LANEMASK_LT, GF_SR_LANEMASK_GE,
    GF_SR_LANEMASK_GT,
    GF_SR_DYN_SMEM, GF_SR_TOTAL_SMEM, GF_SR_WARPSZ, GF_SR_ZERO,
};

/* State spaces. */
enum {
    GF_SP_GENERIC = 0, GF_SP_GLOBAL, GF_SP_SHARED, GF_SP_LOCAL, GF_SP_CONST, GF_SP_PARAM,
};

/* Opcodes. Variants (.hi/.wide, compare op, ...) live in gf_ptx__insn.mod. */
enum {
    GF_OP_MOV = 0, GF_OP_PACK, GF_OP_UNPACK, GF_OP_LD, GF_OP_ST, GF_OP_CVTA, GF_OP_CVTA_TO,
    GF_OP_ADD, GF_OP_SUB, GF_OP_ADDC, GF_OP_SUBC, GF_OP_MUL, GF_OP_MAD, GF_OP_MUL24,
    GF_OP_MAD24, GF_OP_SAD, GF_OP_DIV, GF_OP_REM, GF_OP_ABS, GF_OP_NEG, GF_OP_MIN, GF_OP_MAX,
    GF_OP_POPC, GF_OP_CLZ, GF_OP_BREV, GF_OP_BFE, GF_OP_BFI, GF_OP_BFIND, GF_OP_PRMT,
    GF_OP_SHF, GF_OP_SHL, GF_OP_SHR, GF_OP_AND, GF_OP_OR, GF_OP_XOR, GF_OP_NOT, GF_OP_CNOT,
    GF_OP_LOP3, GF_OP_SETP, GF_OP_SET, GF_OP_SELP, GF_OP_SLCT, GF_OP_FMA, GF_OP_RCP,
    GF_OP_SQRT, GF_OP_RSQRT, GF_OP_SIN, GF_OP_COS, GF_OP_EX2, GF_OP_LG2, GF_OP_TANH,
    GF_OP_CVT, GF_OP_COPYSIGN, GF_OP_TESTP, GF_OP_BRA, GF_OP_CALL, GF_OP_RET, GF_OP_EXIT,
    GF_OP_BAR, GF_OP_NOP, GF_OP_ATOM, GF_OP_SHFL, GF_OP_VOTE, GF_OP_ACTIVEMASK,
    GF_OP_WARPSYNC, GF_OP_TRAP, GF_OP_DP4A, GF_OP_DP2A, GF_OP_ISSPACEP, GF_OP_NANOSLEEP,
    GF_OP_COUNT
};

/* gf_ptx__insn.mod meanings per opcode. */
enum { GF_M_LO = 0, GF_M_HI, GF_M_WIDE };                          /* mul, mad, mul24 */
enum { GF_CMP_EQ = 0, GF_CMP_NE, GF_CMP_LT, GF_CMP_LE, GF_CMP_GT, GF_CMP_GE,
       GF_CMP_LO, GF_CMP_LS, GF_CMP_HI, GF_CMP_HS,
       GF_CMP_EQU, GF_CMP_NEU, GF_CMP_LTU, GF_CMP_LEU, GF_CMP_GTU, GF_CMP_GEU,
       GF_CMP_NUM, GF_CMP_NAN };                                    /* setp, set */
enum { GF_BOOL_NONE = 0, GF_BOOL_AND, GF_BOOL_OR, GF_BOOL_XOR };   /* setp/set combine (mod2) */
enum { GF_ATOM_ADD = 0, GF_ATOM_MIN, GF_ATOM_MAX, GF_ATOM_INC, GF_ATOM_DEC, GF_ATOM_AND,
       GF_ATOM_OR, GF_ATOM_XOR, GF_ATOM_EXCH, GF_ATOM_CAS };
enum { GF_SHFL_UP = 0, GF_SHFL_DOWN, GF_SHFL_BFLY, GF_SHFL_IDX };
enum { GF_VOTE_ALL = 0, GF_VOTE_ANY, GF_VOTE_UNI, GF_VOTE_BALLOT };
enum { GF_BAR_SYNC = 0, GF_BAR_ARRIVE, GF_BAR_RED_POPC, GF_BAR_RED_AND, GF_BAR_RED_OR };
enum { GF_TESTP_FINITE = 0, GF_TESTP_INFINITE, GF_TESTP_NUMBER, GF_TESTP_NAN,
       GF_TESTP_NORMAL, GF_TESTP_SUBNORMAL };
/* Rounding (gf_ptx__insn.rnd). The *I forms round to an integral value. */
enum { GF_RND_NONE = 0, GF_RND_RN, GF_RND_RZ, GF_RND_RM, GF_RND_RP,
       GF_RND_RNI, GF_RND_RZI, GF_RND_RMI, GF_RND_RPI };

/* gf_ptx__insn.flags bits. */
#define GF_F_SAT     0x01u
#define GF_F_FTZ     0x02u
#define GF_F_APPROX  0x04u
#define GF_F_CC      0x08u  /* add.cc / sub.cc: writes the carry flag */
#define GF_F_NODEST  0x10u  /* red (atom without a result) */
#define GF_F_SHF_R   0x20u  /* shf.r (otherwise shf.l) */
#define GF_F_CLAMP   0x40u  /* shf.clamp */
#define GF_F_NAN     0x80u  /* min/max .NaN */

typedef struct gf_ptx__opnd {
    uint8_t kind;  /* GF_K_* */
    uint8_t sub;   /* GF_S_* for symbols, element count for vectors */
    uint8_t neg;   /* "!%p": logical negation of a predicate source */
    uint8_t pad;
    uint32_t idx;
    uint64_t imm;
} gf_ptx__opnd;

#define GF_PTX_MAX_OPS 6

typedef struct gf_ptx__insn {
    uint8_t op;      /* GF_OP_* */
    uint8_t type;    /* GF_T_* of the operation (destination type for cvt) */
    uint8_t type2;   /* source type for cvt/set/slct, operand type for mul.wide... */
    uint8_t mod;     /* per-opcode variant, see the enums above */
    uint8_t mod2;    /* setp/set boolean combine; ld/st/atom vector width */
    uint8_t space;   /* GF_SP_* for ld/st/atom/cvta */
    uint8_t rnd;     /* GF_RND_* */
    uint8_t flags;   /* GF_F_* */
    uint8_t nops;
    uint8_t gneg;    /* the guard is "@!%p" */
    uint16_t pad;
    uint32_t guard;  /* predicate slot + 1, 0 when unguarded */
    uint32_t line;   /* source line, for error messages */
    uint32_t text;   /* offset of the opcode text in the module's string pool */
    gf_ptx__opnd o[GF_PTX_MAX_OPS];
} gf_ptx__insn;

/* A .param of a function: where it lives in the kernel buffer or the frame's param area. */
typedef struct gf_ptx__pdecl {
    uint32_t offset;
    uint32_t size;
    uint32_t align;
} gf_ptx__pdecl;

/* An .entry or .func. gf_ptx_kernel is the public name of the same struct. */
struct gf_ptx_kernel {
    char *name;
    const gf_ptx_module *mod;
    uint32_t index;         /* in gf_ptx_module.funcs */
    int is_entry;
    int defined;
    gf_ptx__insn *code;
    uint32_t ncode;
    uint32_t nslots;        /* register slots of one frame */
    uint32_t declared_regs; /* what .reg declared (saturating) */
    uint32_t local_size;    /* .local bytes of one frame */
    uint32_t param_size;    /* .param bytes of one frame (formals, results, call scratch) */
    uint32_t shared_size;   /* entry: static shared bytes (module scope included) */
    uint32_t max_threads;   /* .maxntid/.reqntid product, 0 if none */
    gf_ptx_param *params;   /* formals, in declaration order */
    unsigned nparams;
    uint32_t params_size;
    gf_ptx_param *rets;     /* .func results */
    unsigned nrets;
    /* Whole-call-chain needs, computed after parsing (recursion uses a fixed budget). */
    int recursive;
    uint32_t stack_slots, stack_local, stack_param, stack_depth;
};

struct gf_ptx_module {
    struct gf_ptx_kernel **funcs;
    unsigned nfuncs;
    unsigned *entries;
    unsigned nentries;
    gf_ptx_global *globals;
    uint64_t *gaddr;        /* bound device addresses */
    unsigned nglobals;
    uint32_t mod_shared;    /* module-scope static .shared bytes (start of every window) */
    uint32_t mod_local;     /* module-scope .local bytes per thread */
    gf_ptx__opnd *pool;     /* vector and call operand lists */
    uint32_t npool;
    char *strs;             /* opcode texts for error messages */
    uint32_t nstrs;
};

#endif
