/* SPDX-License-Identifier: Apache-2.0 */
/* Kernel launches of the sim driver: argument checking as a real driver does it, parameter
 * packing (kernelParams or extra), queuing on a stream, and execution on the PTX engine under
 * the device's time-slicing lock with modeled duration. Also the occupancy calculator. */
#define __CUDA_API_VERSION_INTERNAL 1
#include "driver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GF_SPIN_KERNEL "gpufuse_sim_spin"

static void sleep_until(uint64_t deadline_ns)
{
    for (;;) {
        uint64_t now = gf_drv__now();
        if (now >= deadline_ns) return;
        uint64_t left = deadline_ns - now;
        if (left > 1000000) left = 1000000; /* 1 ms slices */
        struct timespec ts = {0, (long)left};
        clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
    }
}

CUresult gf_drv__exec_kernel(gf_ctx *c, gf_op *op)
{
    unsigned dev = (unsigned)c->dev;
    const gf_sim_device_info *d = &g_drv.dev[dev].info;
    char err[1024] = "";
    gf_ptx_rc prc = GF_PTX_OK;
    gf_simstate_device_acquire(g_drv.ss, dev);
    uint64_t start = gf_drv__now();
    if (op->u.kernel.spin) {
        sleep_until(start + op->u.kernel.spin_ns);
    } else {
        gf_ptx_stats stats = {0};
        prc = gf_ptx_run(op->u.kernel.k, &op->u.kernel.launch, &stats, err, sizeof err);
        /* modeled time: every SM retires 128 thread-instructions per clock */
        double lanes_per_ns = (double)d->sm_count * 128.0 * (double)d->clock_khz / 1e6;
        if (lanes_per_ns > 0) sleep_until(start + (uint64_t)((double)stats.instructions / lanes_per_ns));
    }
    uint64_t end = gf_drv__now();
    gf_simstate_device_release(g_drv.ss, dev, start, end);
    if (prc == GF_PTX_OK) return CUDA_SUCCESS;
    CUresult rc = gf_drv__ptx_rc(prc);
    const char *name;
    cuGetErrorName(rc, &name);
    gf_log(GF_LOG_ERROR, GF_SIM_LOG, "kernel '%s' failed (%s): %s", gf_ptx_kernel_name(op->u.kernel.k),
           name ? name : "?", err);
    if (rc == CUDA_ERROR_INVALID_VALUE) rc = CUDA_ERROR_LAUNCH_FAILED;
    return rc;
}

typedef struct gf_launch_args {
    void *f;
    unsigned grid[3], block[3];
    unsigned shmem;
    CUstream stream;
    int ptds;
    void **params;
    void **extra;
    int cooperative;
} gf_launch_args;

static CUresult max_active_blocks(gf_function *f, int block, size_t dyn, int *out);

static CUresult pack_params(const gf_ptx_kernel *k, void **params, void **extra, uint8_t **out,
                            size_t *out_size)
{
    size_t size = gf_ptx_kernel_params_size(k);
    unsigned n = gf_ptx_kernel_param_count(k);
    if (params && extra) return CUDA_ERROR_INVALID_VALUE;
    uint8_t *buf = calloc(1, size ? size : 1);
    if (!buf) return CUDA_ERROR_OUT_OF_MEMORY;
    if (params) {
        for (unsigned i = 0; i < n; i++) {
            const gf_ptx_param *p = gf_ptx_kernel_param(k, i);
            if (!params[i]) goto bad;
            memcpy(buf + p->offset, params[i], p->size);
        }
    } else if (extra) {
        const void *ebuf = NULL;
        size_t esize = 0;
        int have_size = 0;
        for (unsigned i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
            if (i > 64) goto bad;
            if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) {
                ebuf = extra[i + 1];
            } else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE) {
                if (!extra[i + 1]) goto bad;
                esize = *(size_t *)extra[i + 1];
                have_size = 1;
            } else {
                goto bad;
            }
        }
        if (n > 0 && (!ebuf || !have_size || esize < size)) goto bad;
        if (ebuf) memcpy(buf, ebuf, size < esize ? size : esize);
    } else if (n > 0) {
        goto bad;
    }
    *out = buf;
    *out_size = size;
    return CUDA_SUCCESS;
bad:
    free(buf);
    return CUDA_ERROR_INVALID_VALUE;
}

static CUresult launch(const gf_launch_args *a)
{
    gf_ctx *c;
    gf_stream *s;
    CUresult rc = gf_drv__stream_arg(a->stream, a->ptds, &c, &s);
    if (rc) return rc;
    gf_function *f;
    if ((rc = gf_drv__func_arg(a->f, c, &f))) return rc;
    const gf_ptx_kernel *k = f->k;
    for (int i = 0; i < 3; i++)
        if (a->grid[i] == 0 || a->block[i] == 0) return CUDA_ERROR_INVALID_VALUE;
    if (a->block[0] > 1024 || a->block[1] > 1024 || a->block[2] > 64) return CUDA_ERROR_INVALID_VALUE;
    uint64_t threads = (uint64_t)a->block[0] * a->block[1] * a->block[2];
    if (threads > 1024) return CUDA_ERROR_INVALID_VALUE;
    if (a->grid[0] > 2147483647u || a->grid[1] > 65535 || a->grid[2] > 65535) return CUDA_ERROR_INVALID_VALUE;
    uint32_t maxntid = gf_ptx_kernel_max_threads(k);
    if (maxntid && threads > maxntid) return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
    if (a->shmem > (unsigned)f->max_dynamic_shared) return CUDA_ERROR_INVALID_VALUE;
    if (a->cooperative) {
        int per_sm = 0;
        max_active_blocks(f, (int)threads, a->shmem, &per_sm);
        uint64_t blocks = (uint64_t)a->grid[0] * a->grid[1] * a->grid[2];
        if (blocks > (uint64_t)per_sm * g_drv.dev[c->dev].info.sm_count)
            return CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE;
    }
    uint8_t *params;
    size_t psize;
    if ((rc = pack_params(k, a->params, a->extra, &params, &psize))) return rc;
    gf_op *op = gf_drv__op_new(GF_OP_KERNEL);
    if (!op) {
        free(params);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    gf_drv__obj_ref(f->mod);
    op->u.kernel.mod = f->mod;
    op->u.kernel.k = k;
    op->u.kernel.params = params;
    if (strcmp(gf_ptx_kernel_name(k), GF_SPIN_KERNEL) == 0 && gf_ptx_kernel_param_count(k) == 1 &&
        psize >= 8) {
        op->u.kernel.spin = 1;
        memcpy(&op->u.kernel.spin_ns, params, 8);
    }
    gf_ptx_launch *l = &op->u.kernel.launch;
    memcpy(l->grid, a->grid, sizeof l->grid);
    memcpy(l->block, a->block, sizeof l->block);
    l->dynamic_shared = a->shmem;
    l->params = params;
    l->params_size = psize;
    l->check = gf_drv__mem_check;
    l->check_ctx = c;
    l->sm_count = g_drv.dev[c->dev].info.sm_count;
    l->globaltimer_ns = gf_drv__now;
    return gf_drv__enqueue(s, op);
}

static CUresult launch_kernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                              unsigned by, unsigned bz, unsigned shmem, CUstream h, void **params,
                              void **extra, int ptds, int coop)
{
    gf_launch_args a = {
        .f = f, .grid = {gx, gy, gz}, .block = {bx, by, bz}, .shmem = shmem, .stream = h,
        .ptds = ptds, .params = params, .extra = extra, .cooperative = coop,
    };
    return launch(&a);
}

GF_SIM_API_PTSZ(cuLaunchKernel,
                (CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                 unsigned int by, unsigned int bz, unsigned int sharedMemBytes, CUstream hStream,
                 void **kernelParams, void **extra),
                launch_kernel(f, gx, gy, gz, bx, by, bz, sharedMemBytes, hStream, kernelParams,
                              extra, ptds, 0))
GF_SIM_API_PTSZ(cuLaunchCooperativeKernel,
                (CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                 unsigned int by, unsigned int bz, unsigned int sharedMemBytes, CUstream hStream,
                 void **kernelParams),
                launch_kernel(f, gx, gy, gz, bx, by, bz, sharedMemBytes, hStream, kernelParams,
                              NULL, ptds, 1))

static CUresult launch_ex(const CUlaunchConfig *config, CUfunction f, void **params, void **extra, int ptds)
{
    GF_CHECK_INIT();
    if (!config) return CUDA_ERROR_INVALID_VALUE;
    if (config->numAttrs && !config->attrs) return CUDA_ERROR_INVALID_VALUE;
    int coop = 0;
    for (unsigned i = 0; i < config->numAttrs; i++)
        if (config->attrs[i].id == CU_LAUNCH_ATTRIBUTE_COOPERATIVE && config->attrs[i].value.cooperative)
            coop = 1;
    return launch_kernel(f, config->gridDimX, config->gridDimY, config->gridDimZ, config->blockDimX,
                         config->blockDimY, config->blockDimZ, config->sharedMemBytes,
                         config->hStream, params, extra, ptds, coop);
}

GF_SIM_API_PTSZ(cuLaunchKernelEx,
                (const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra),
                launch_ex(config, f, kernelParams, extra, ptds))

/* ---- occupancy ----------------------------------------------------------------------------- */

static CUresult max_active_blocks(gf_function *f, int block, size_t dyn, int *out)
{
    int dev = f->mod->ctx->dev;
    int tps = 2048, bps = 32, smem = 0;
    gf_drv__dev_attr(dev, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, &tps);
    gf_drv__dev_attr(dev, CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR, &bps);
    gf_drv__dev_attr(dev, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, &smem);
    uint32_t maxntid = gf_ptx_kernel_max_threads(f->k);
    if (block <= 0 || block > 1024 || (maxntid && (uint32_t)block > maxntid)) {
        *out = 0;
        return CUDA_SUCCESS;
    }
    int warps_threads = (block + 31) / 32 * 32;
    int n = tps / warps_threads;
    if (n > bps) n = bps;
    uint64_t sh = gf_ptx_kernel_static_shared(f->k) + dyn;
    if (sh > 0) {
        uint64_t by_smem = (uint64_t)smem / (sh + 1024);
        if (by_smem < (uint64_t)n) n = (int)by_smem;
    }
    *out = n;
    return CUDA_SUCCESS;
}

static CUresult occ_func(CUfunction h, gf_function **f)
{
    gf_ctx *c;
    CUresult rc = gf_drv__ctx_enter(&c);
    if (rc) return rc;
    return gf_drv__func_arg(h, c, f);
}

GF_SIM_API CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks, CUfunction func,
                                                                         int blockSize, size_t dynamicSMemSize,
                                                                         unsigned int flags)
{
    gf_function *f;
    CUresult rc = occ_func(func, &f);
    if (rc) return rc;
    if (!numBlocks || flags > 1) return CUDA_ERROR_INVALID_VALUE;
    return max_active_blocks(f, blockSize, dynamicSMemSize, numBlocks);
}

GF_SIM_API CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func,
                                                                int blockSize, size_t dynamicSMemSize)
{
    return cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(numBlocks, func, blockSize, dynamicSMemSize, 0);
}

GF_SIM_API CUresult cuOccupancyMaxPotentialBlockSizeWithFlags(int *minGridSize, int *blockSize, CUfunction func,
                                                              CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                                              size_t dynamicSMemSize, int blockSizeLimit,
                                                              unsigned int flags)
{
    gf_function *f;
    CUresult rc = occ_func(func, &f);
    if (rc) return rc;
    if (!minGridSize || !blockSize || flags > 1) return CUDA_ERROR_INVALID_VALUE;
    int limit = 1024;
    uint32_t maxntid = gf_ptx_kernel_max_threads(f->k);
    if (maxntid && (int)maxntid < limit) limit = (int)maxntid;
    if (blockSizeLimit > 0 && blockSizeLimit < limit) limit = blockSizeLimit;
    int best_bs = 0, best_blocks = 0, best_occ = -1;
    for (int bs = (limit + 31) / 32 * 32; bs > 0; bs -= 32) {
        int b = bs > limit ? limit : bs;
        size_t dyn = blockSizeToDynamicSMemSize ? blockSizeToDynamicSMemSize(b) : dynamicSMemSize;
        if (dyn > (size_t)f->max_dynamic_shared) continue;
        int n;
        max_active_blocks(f, b, dyn, &n);
        if (n * b > best_occ) {
            best_occ = n * b;
            best_bs = b;
            best_blocks = n;
        }
    }
    *blockSize = best_bs;
    *minGridSize = best_blocks * (int)g_drv.dev[f->mod->ctx->dev].info.sm_count;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuOccupancyMaxPotentialBlockSize(int *minGridSize, int *blockSize, CUfunction func,
                                                     CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                                     size_t dynamicSMemSize, int blockSizeLimit)
{
    return cuOccupancyMaxPotentialBlockSizeWithFlags(minGridSize, blockSize, func, blockSizeToDynamicSMemSize,
                                                     dynamicSMemSize, blockSizeLimit, 0);
}

GF_SIM_API CUresult cuOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize, CUfunction func,
                                                            int numBlocks, int blockSize)
{
    gf_function *f;
    CUresult rc = occ_func(func, &f);
    if (rc) return rc;
    if (!dynamicSmemSize || numBlocks <= 0 || blockSize <= 0) return CUDA_ERROR_INVALID_VALUE;
    int smem = 0, optin = 0;
    gf_drv__dev_attr(f->mod->ctx->dev, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, &smem);
    gf_drv__dev_attr(f->mod->ctx->dev, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, &optin);
    int64_t per = (int64_t)smem / numBlocks - 1024 - (int64_t)gf_ptx_kernel_static_shared(f->k);
    if (per > optin) per = optin;
    *dynamicSmemSize = per > 0 ? (size_t)per : 0;
    return CUDA_SUCCESS;
}
