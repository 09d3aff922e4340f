/* SPDX-License-Identifier: Apache-2.0 */
/* The sim's PTX engine: parses PTX text as nvcc emits it and executes kernels on the CPU.
 *
 * This is an internal contract between the engine (src/sim/ptx_*.c) and the sim's driver
 * (src/sim/driver_*.c). It knows nothing of CUDA types: the driver maps gf_ptx_rc to CUresult.
 * The engine holds no global state; a module may be used by several threads at once (each
 * launch has its own register files and shared memory).
 */
#ifndef GF_SIM_PTX_H
#define GF_SIM_PTX_H

#include <stddef.h>
#include <stdint.h>

typedef enum gf_ptx_rc {
    GF_PTX_OK = 0,
    GF_PTX_ERR_SYNTAX,      /* malformed PTX text           -> CUDA_ERROR_INVALID_PTX */
    GF_PTX_ERR_UNSUPPORTED, /* valid PTX the engine lacks    -> CUDA_ERROR_INVALID_PTX */
    GF_PTX_ERR_NOMEM,       /* host allocation failed        -> CUDA_ERROR_OUT_OF_MEMORY */
    GF_PTX_ERR_ADDRESS,     /* load/store outside any valid range -> CUDA_ERROR_ILLEGAL_ADDRESS */
    GF_PTX_ERR_MISALIGNED,  /* misaligned access             -> CUDA_ERROR_MISALIGNED_ADDRESS */
    GF_PTX_ERR_TRAP,        /* trap / brkpt executed         -> CUDA_ERROR_LAUNCH_FAILED */
    GF_PTX_ERR_LAUNCH,      /* bad geometry / shared memory too large -> CUDA_ERROR_INVALID_VALUE */
    GF_PTX_ERR_DEADLOCK,    /* barrier never reached by all threads -> CUDA_ERROR_LAUNCH_FAILED */
} gf_ptx_rc;

typedef struct gf_ptx_module gf_ptx_module;
typedef struct gf_ptx_kernel gf_ptx_kernel;

/* One .param of an .entry, in declaration order. offset is within the packed parameter
 * buffer, honouring each param's natural or .align alignment, as CUDA lays out kernelParams. */
typedef struct gf_ptx_param {
    uint32_t offset;
    uint32_t size;
    uint32_t align;
} gf_ptx_param;

/* A module-scope .global or .const variable (a __device__ or __constant__ variable). The
 * driver gives each one device memory after loading and binds its address with
 * gf_ptx_module_bind_global(); init (size bytes, or NULL for zero-filled) is its initial value. */
typedef struct gf_ptx_global {
    const char *name;
    uint64_t size;
    uint32_t align;
    int is_const;          /* declared in .const space */
    int is_managed;        /* .attribute(.managed): a __managed__ variable */
    const uint8_t *init;   /* owned by the module; NULL means zero-initialized */
} gf_ptx_global;

/* Parses PTX text (len bytes, need not be NUL-terminated). On success *out is a new module
 * the caller frees with gf_ptx_module_free(). On failure fills err (always NUL-terminated)
 * with the line number and what was expected, e.g. "line 42: unsupported instruction
 * 'tex.2d.v4.f32.f32'", and returns GF_PTX_ERR_SYNTAX, GF_PTX_ERR_UNSUPPORTED or
 * GF_PTX_ERR_NOMEM. Every instruction is decoded at load time, so an instruction the engine
 * cannot execute fails the load, never the launch. */
gf_ptx_rc gf_ptx_module_load(const char *text, size_t len, gf_ptx_module **out, char *err,
                             size_t errlen);
void gf_ptx_module_free(gf_ptx_module *m);

/* Kernels (.entry functions, .visible or not) in declaration order. */
unsigned gf_ptx_module_kernel_count(const gf_ptx_module *m);
const gf_ptx_kernel *gf_ptx_module_kernel(const gf_ptx_module *m, unsigned index);
/* NULL when no .entry has that name. */
const gf_ptx_kernel *gf_ptx_module_find_kernel(const gf_ptx_module *m, const char *name);

/* Module-scope variables. */
unsigned gf_ptx_module_global_count(const gf_ptx_module *m);
const gf_ptx_global *gf_ptx_module_global(const gf_ptx_module *m, unsigned index);
/* Tells the engine where the driver put variable `index`; kernels then read and write it
 * there. Must be called for every global before the first launch. */
void gf_ptx_module_bind_global(gf_ptx_module *m, unsigned index, uint64_t device_addr);

const char *gf_ptx_kernel_name(const gf_ptx_kernel *k);
unsigned gf_ptx_kernel_param_count(const gf_ptx_kernel *k);
const gf_ptx_param *gf_ptx_kernel_param(const gf_ptx_kernel *k, unsigned index);
/* Size of the packed parameter buffer (last offset + size, rounded to 8 is NOT applied). */
uint32_t gf_ptx_kernel_params_size(const gf_ptx_kernel *k);
/* Bytes of statically declared .shared memory in the kernel (and module-scope .shared). */
uint32_t gf_ptx_kernel_static_shared(const gf_ptx_kernel *k);
/* Number of registers declared (a stand-in for CU_FUNC_ATTRIBUTE_NUM_REGS). */
uint32_t gf_ptx_kernel_num_regs(const gf_ptx_kernel *k);
/* .maxntid product, or 0 when the kernel declares none. */
uint32_t gf_ptx_kernel_max_threads(const gf_ptx_kernel *k);
/* Bytes of .local memory per thread. */
uint32_t gf_ptx_kernel_local_bytes(const gf_ptx_kernel *k);

/* Decides whether [addr, addr+len) may be accessed by a kernel: returns nonzero when it is
 * inside memory the launching context may use. Called for every global/generic access that
 * does not hit the engine's last-range cache, so it should be fast. */
typedef int (*gf_ptx_addr_check_fn)(void *ctx, uint64_t addr, uint64_t len, uint64_t *range_base,
                                    uint64_t *range_len);

typedef struct gf_ptx_launch {
    uint32_t grid[3];
    uint32_t block[3];
    uint32_t dynamic_shared;       /* bytes of extern .shared memory */
    const void *params;            /* packed per gf_ptx_kernel_param() offsets */
    size_t params_size;
    gf_ptx_addr_check_fn check;    /* when NULL every global address is accepted */
    void *check_ctx;
    uint32_t sm_count;             /* %nsmid; used for %smid */
    uint64_t (*globaltimer_ns)(void); /* %globaltimer; NULL uses CLOCK_MONOTONIC */
} gf_ptx_launch;

typedef struct gf_ptx_stats {
    uint64_t instructions;         /* dynamic thread-instructions executed */
} gf_ptx_stats;

/* Runs kernel k over the whole grid described by launch, on the calling thread. Returns
 * GF_PTX_OK, or an error with err filled ("illegal address 0x... (8 bytes) at line 57
 * 'st.global.f32' in kernel 'saxpy', block (3,0,0) thread (17,0,0)"). stats may be NULL. */
gf_ptx_rc gf_ptx_run(const gf_ptx_kernel *k, const gf_ptx_launch *launch, gf_ptx_stats *stats,
                     char *err, size_t errlen);

#endif
