/* SPDX-License-Identifier: Apache-2.0 */
/* The sim driver's process state, cuInit, versions, devices and their attributes, error
 * names, and the calls the sim refuses (unsupported stubs, cuGetExportTable). */
#define __CUDA_API_VERSION_INTERNAL 1
#include "driver.h"

#include "gpufuse/cu_errors.h"
#include "gpufuse/pci.h"

#include <ctype.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

gf_drv_state g_drv = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
    .mem_lock = PTHREAD_RWLOCK_INITIALIZER,
};

static pthread_mutex_t g_init_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_atfork_done;
static volatile int g_forked_child; /* set in a child forked after cuInit */

uint64_t gf_drv__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A forked child inherits the parent's state but none of its executor threads, and maybe a
 * lock some other thread held at the fork: like a real driver, it must not use CUDA. The
 * locks are re-initialized so that the child's calls fail cleanly instead of hanging. */
static void atfork_child(void)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    memcpy(&g_drv.lock, &m, sizeof m);
    memcpy(&g_drv.cv, &cv, sizeof cv);
    memcpy(&g_drv.mem_lock, &rw, sizeof rw);
    memcpy(&g_init_lock, &m, sizeof m);
    g_forked_child = 1;
}

CUresult gf_drv__check_init(void)
{
    if (!__atomic_load_n(&g_drv.initialized, __ATOMIC_ACQUIRE)) return CUDA_ERROR_NOT_INITIALIZED;
    if (g_forked_child) {
        GF_LOG_ONCE(GF_LOG_ERROR, GF_SIM_LOG,
                    "CUDA was initialized in the parent process (pid %d) before fork(); a forked "
                    "child cannot use it: initialize CUDA after fork, or use spawn",
                    (int)g_drv.init_pid);
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuInit(unsigned int Flags)
{
    if (Flags != 0) return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_init_lock);
    CUresult rc = CUDA_SUCCESS;
    if (g_drv.initialized) {
        rc = gf_drv__check_init();
        goto out;
    }
    char err[512];
    if (gf_simstate_open(&g_drv.ss, err, sizeof err) != 0) {
        gf_log(GF_LOG_ERROR, GF_SIM_LOG, "cuInit: cannot open the sim's state: %s", err);
        rc = CUDA_ERROR_NO_DEVICE;
        goto out;
    }
    g_drv.ndev = gf_simstate_device_count(g_drv.ss);
    if (g_drv.ndev == 0) {
        gf_log(GF_LOG_ERROR, GF_SIM_LOG,
               "cuInit: the sim has no devices; set GPUFUSE_SIM_GPUS (e.g. \"H100:2,T4\")");
        rc = CUDA_ERROR_NO_DEVICE;
        goto out;
    }
    if (g_drv.ndev > GF_SIM_MAX_DEVICES) g_drv.ndev = GF_SIM_MAX_DEVICES;
    for (unsigned i = 0; i < g_drv.ndev; i++)
        g_drv.dev[i].info = *gf_simstate_device(g_drv.ss, i);
    if (gf_drv__arena_init(err, sizeof err) != 0) {
        gf_log(GF_LOG_ERROR, GF_SIM_LOG, "cuInit: %s", err);
        rc = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    if (!g_atfork_done) {
        pthread_atfork(NULL, NULL, atfork_child);
        g_atfork_done = 1;
    }
    g_drv.init_pid = getpid();
    atomic_store(&g_drv.fault, CUDA_SUCCESS);
    __atomic_store_n(&g_drv.initialized, 1, __ATOMIC_RELEASE);
    gf_log(GF_LOG_DEBUG, GF_SIM_LOG, "cuInit: %u simulated device(s)", g_drv.ndev);
out:
    pthread_mutex_unlock(&g_init_lock);
    return rc;
}

GF_SIM_API CUresult cuDriverGetVersion(int *driverVersion)
{
    if (!driverVersion) return CUDA_ERROR_INVALID_VALUE;
    *driverVersion = CUDA_VERSION;
    return CUDA_SUCCESS;
}

/* ---- devices ------------------------------------------------------------------------------- */

CUresult gf_drv__dev_check(CUdevice d)
{
    GF_CHECK_INIT();
    if (d < 0 || (unsigned)d >= g_drv.ndev) return CUDA_ERROR_INVALID_DEVICE;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
    GF_CHECK_INIT();
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    if (ordinal < 0 || (unsigned)ordinal >= g_drv.ndev) return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuDeviceGetCount(int *count)
{
    GF_CHECK_INIT();
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    *count = (int)g_drv.ndev;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    snprintf(name, (size_t)len, "%s", g_drv.dev[dev].info.name);
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    if (!uuid) return CUDA_ERROR_INVALID_VALUE;
    memcpy(uuid->bytes, g_drv.dev[dev].info.uuid, 16);
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    return cuDeviceGetUuid_v2(uuid, dev);
}

GF_SIM_API CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    *bytes = g_drv.dev[dev].info.total_bytes;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    if (!major || !minor) return CUDA_ERROR_INVALID_VALUE;
    *major = (int)g_drv.dev[dev].info.cc_major;
    *minor = (int)g_drv.dev[dev].info.cc_minor;
    return CUDA_SUCCESS;
}

/* Per-architecture limits that the model table does not carry (from NVIDIA's CUDA C
 * programming guide, "Technical Specifications per Compute Capability"). */
typedef struct gf_arch_limits {
    int threads_per_sm, blocks_per_sm, smem_per_sm, smem_optin;
} gf_arch_limits;

static gf_arch_limits arch_limits(int cc)
{
    switch (cc) {
    case 70: case 72: return (gf_arch_limits){2048, 32, 98304, 98304 - 1024};
    case 75: return (gf_arch_limits){1024, 16, 65536, 65536};
    case 80: return (gf_arch_limits){2048, 32, 167936, 166912};
    case 86: return (gf_arch_limits){1536, 16, 102400, 101376};
    case 87: return (gf_arch_limits){2048, 32, 167936, 166912};
    case 89: return (gf_arch_limits){1536, 24, 102400, 101376};
    case 90: return (gf_arch_limits){2048, 32, 233472, 232448};
    case 100: case 103: return (gf_arch_limits){2048, 32, 233472, 232448};
    case 120: case 121: return (gf_arch_limits){1536, 32, 102400, 101376};
    default:
        if (cc < 70) return (gf_arch_limits){2048, 32, 98304, 49152};
        return (gf_arch_limits){2048, 32, 233472, 232448};
    }
}

static int l2_bytes(const gf_sim_device_info *d)
{
    static const struct { const char *prefix; int mib; } t[] = {
        {"H200", 50}, {"H100", 50}, {"H20", 60}, {"GH200", 50}, {"B200", 126}, {"A100", 40},
        {"A800", 40}, {"A10", 6}, {"A30", 24}, {"A40", 6}, {"L40", 96}, {"L4", 48},
        {"T4", 4}, {"V100", 6}, {"RTX4090", 72}, {"4090", 72}, {"RTX3090", 6}, {"3090", 6},
        {"RTX5090", 96}, {"5090", 96},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strncmp(d->model, t[i].prefix, strlen(t[i].prefix)) == 0) return t[i].mib << 20;
    return 40 << 20;
}

CUresult gf_drv__dev_attr(int dev, int attr, int *out)
{
    const gf_sim_device_info *d = &g_drv.dev[dev].info;
    int cc = (int)(d->cc_major * 10 + d->cc_minor);
    gf_arch_limits al = arch_limits(cc);
    int v;
    switch ((CUdevice_attribute)attr) {
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: v = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: v = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: v = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: v = 64; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: v = 2147483647; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y: v = 65535; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: v = 65535; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: v = 49152; break;
    case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY: v = 65536; break;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE: v = 32; break;
    case CU_DEVICE_ATTRIBUTE_MAX_PITCH: v = 2147483647; break;
    case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK: v = 65536; break;
    case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: v = (int)d->clock_khz; break;
    case CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT: v = 512; break;
    case CU_DEVICE_ATTRIBUTE_GPU_OVERLAP: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: v = (int)d->sm_count; break;
    case CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_INTEGRATED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_MODE: v = CU_COMPUTEMODE_DEFAULT; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_WIDTH: v = 131072; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_WIDTH: v = 131072; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_HEIGHT: v = 65536; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_WIDTH: v = 16384; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_HEIGHT: v = 16384; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_DEPTH: v = 16384; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LAYERED_WIDTH: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LAYERED_HEIGHT: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LAYERED_LAYERS: v = 2048; break;
    case CU_DEVICE_ATTRIBUTE_SURFACE_ALIGNMENT: v = 512; break;
    case CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_ECC_ENABLED: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: v = (int)d->pci_bus; break;
    case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_TCC_DRIVER: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: v = (int)d->mem_clock_khz; break;
    case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: v = (int)d->mem_bus_width; break;
    case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: v = l2_bytes(d); break;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: v = al.threads_per_sm; break;
    case CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT: v = 2; break;
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LAYERED_WIDTH: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LAYERED_LAYERS: v = 2048; break;
    case CU_DEVICE_ATTRIBUTE_CAN_TEX2D_GATHER: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_GATHER_WIDTH: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_GATHER_HEIGHT: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_WIDTH_ALTERNATE: v = 8192; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_HEIGHT_ALTERNATE: v = 8192; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_DEPTH_ALTERNATE: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT: v = 32; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURECUBEMAP_WIDTH: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURECUBEMAP_LAYERED_WIDTH: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURECUBEMAP_LAYERED_LAYERS: v = 2046; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE1D_WIDTH: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_WIDTH: v = 131072; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_HEIGHT: v = 65536; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE3D_WIDTH: v = 16384; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE3D_HEIGHT: v = 16384; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE3D_DEPTH: v = 16384; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE1D_LAYERED_WIDTH: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE1D_LAYERED_LAYERS: v = 2048; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_LAYERED_WIDTH: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_LAYERED_HEIGHT: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_LAYERED_LAYERS: v = 2048; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACECUBEMAP_WIDTH: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACECUBEMAP_LAYERED_WIDTH: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACECUBEMAP_LAYERED_LAYERS: v = 2046; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LINEAR_WIDTH: v = 268435456; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LINEAR_WIDTH: v = 131072; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LINEAR_HEIGHT: v = 65000; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LINEAR_PITCH: v = 2097120; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_MIPMAPPED_WIDTH: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_MIPMAPPED_HEIGHT: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: v = (int)d->cc_major; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: v = (int)d->cc_minor; break;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_MIPMAPPED_WIDTH: v = 32768; break;
    case CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_GLOBAL_L1_CACHE_SUPPORTED: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_LOCAL_L1_CACHE_SUPPORTED: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: v = al.smem_per_sm; break;
    case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR: v = 65536; break;
    case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD_GROUP_ID: v = dev; break;
    case CU_DEVICE_ATTRIBUTE_HOST_NATIVE_ATOMIC_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_SINGLE_TO_DOUBLE_PRECISION_PERF_RATIO: v = (cc == 80 || cc == 90 || cc == 70) ? 2 : 32; break;
    case CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_PREEMPTION_SUPPORTED: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_CAN_USE_STREAM_MEM_OPS_V1: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_CAN_USE_64_BIT_STREAM_MEM_OPS_V1: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_CAN_USE_STREAM_WAIT_VALUE_NOR_V1: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_COOPERATIVE_MULTI_DEVICE_LAUNCH: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: v = al.smem_optin; break;
    case CU_DEVICE_ATTRIBUTE_CAN_FLUSH_REMOTE_WRITES: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_DIRECT_MANAGED_MEM_ACCESS_FROM_HOST: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_WIN32_HANDLE_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_WIN32_KMT_HANDLE_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR: v = al.blocks_per_sm; break;
    case CU_DEVICE_ATTRIBUTE_GENERIC_COMPRESSION_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE: v = l2_bytes(d) / 4 * 3; break;
    case CU_DEVICE_ATTRIBUTE_MAX_ACCESS_POLICY_WINDOW_SIZE: v = 134213632; break;
    case CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WITH_CUDA_VMM_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK: v = 1024; break;
    case CU_DEVICE_ATTRIBUTE_SPARSE_CUDA_ARRAY_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_TIMELINE_SEMAPHORE_INTEROP_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_FLUSH_WRITES_OPTIONS: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WRITES_ORDERING: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH: v = cc >= 90; break;
    case CU_DEVICE_ATTRIBUTE_DEFERRED_MAPPING_CUDA_ARRAY_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_CAN_USE_64_BIT_STREAM_MEM_OPS: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_CAN_USE_STREAM_WAIT_VALUE_NOR: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_IPC_EVENT_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_MEM_SYNC_DOMAIN_COUNT: v = cc >= 90 ? 4 : 1; break;
    case CU_DEVICE_ATTRIBUTE_TENSOR_MAP_ACCESS_SUPPORTED: v = cc >= 90; break;
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_FABRIC_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_UNIFIED_FUNCTION_POINTERS: v = 1; break;
    case CU_DEVICE_ATTRIBUTE_NUMA_CONFIG: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_NUMA_ID: v = -1; break;
    case CU_DEVICE_ATTRIBUTE_MULTICAST_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_MPS_ENABLED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_D3D12_CIG_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_MEM_DECOMPRESS_ALGORITHM_MASK: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_MEM_DECOMPRESS_MAXIMUM_LENGTH: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_VULKAN_CIG_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_GPU_PCI_DEVICE_ID: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_GPU_PCI_SUBSYSTEM_ID: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_HOST_NUMA_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_HOST_NUMA_MEMORY_POOLS_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_HOST_NUMA_MULTINODE_IPC_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_HOST_MEMORY_POOLS_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_HOST_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_HOST_ALLOC_DMA_BUF_SUPPORTED: v = 0; break;
    case CU_DEVICE_ATTRIBUTE_ONLY_PARTIAL_HOST_NATIVE_ATOMIC_SUPPORTED: v = 0; break;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    *out = v;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    if (!pi) return CUDA_ERROR_INVALID_VALUE;
    return gf_drv__dev_attr(dev, (int)attrib, pi);
}

GF_SIM_API CUresult cuDeviceGetProperties(CUdevprop *prop, CUdevice dev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    if (!prop) return CUDA_ERROR_INVALID_VALUE;
    memset(prop, 0, sizeof *prop);
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = 1024;
    prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 2147483647;
    prop->maxGridSize[1] = 65535;
    prop->maxGridSize[2] = 65535;
    prop->sharedMemPerBlock = 49152;
    prop->totalConstantMemory = 65536;
    prop->SIMDWidth = 32;
    prop->memPitch = 2147483647;
    prop->regsPerBlock = 65536;
    prop->clockRate = (int)g_drv.dev[dev].info.clock_khz;
    prop->textureAlign = 512;
    return CUDA_SUCCESS;
}

static void pci_string(int dev, char *buf, size_t len)
{
    snprintf(buf, len, "0000:%02X:00.0", g_drv.dev[dev].info.pci_bus & 0xff);
}

GF_SIM_API CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    if (!pciBusId || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    char buf[32];
    pci_string(dev, buf, sizeof buf);
    snprintf(pciBusId, (size_t)len, "%s", buf);
    return CUDA_SUCCESS;
}

/* Parses "[domain:]bus:device.function" in hex. */
GF_SIM_API CUresult cuDeviceGetByPCIBusId(CUdevice *dev, const char *pciBusId)
{
    GF_CHECK_INIT();
    if (!dev || !pciBusId) return CUDA_ERROR_INVALID_VALUE;
    unsigned dom, bus, dn, fn;
    if (gf_pci_parse(pciBusId, &dom, &bus, &dn, &fn) != 0) return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < g_drv.ndev; i++) {
        if (dom == 0 && bus == (g_drv.dev[i].info.pci_bus & 0xff) && dn == 0 && fn == 0) {
            *dev = (CUdevice)i;
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_INVALID_DEVICE;
}

GF_SIM_API CUresult cuDeviceCanAccessPeer(int *canAccessPeer, CUdevice dev, CUdevice peerDev)
{
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    if ((rc = gf_drv__dev_check(peerDev))) return rc;
    if (!canAccessPeer) return CUDA_ERROR_INVALID_VALUE;
    *canAccessPeer = dev != peerDev;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuDeviceGetP2PAttribute(int *value, CUdevice_P2PAttribute attrib,
                                            CUdevice srcDevice, CUdevice dstDevice)
{
    CUresult rc = gf_drv__dev_check(srcDevice);
    if (rc) return rc;
    if ((rc = gf_drv__dev_check(dstDevice))) return rc;
    if (!value || srcDevice == dstDevice) return CUDA_ERROR_INVALID_DEVICE;
    switch (attrib) {
    case CU_DEVICE_P2P_ATTRIBUTE_PERFORMANCE_RANK: *value = 0; break;
    case CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED: *value = 1; break;
    case CU_DEVICE_P2P_ATTRIBUTE_NATIVE_ATOMIC_SUPPORTED: *value = 0; break;
    case CU_DEVICE_P2P_ATTRIBUTE_CUDA_ARRAY_ACCESS_SUPPORTED: *value = 0; break;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuDeviceGetLuid(char *luid, unsigned int *deviceNodeMask, CUdevice dev)
{
    (void)luid, (void)deviceNodeMask;
    CUresult rc = gf_drv__dev_check(dev);
    return rc ? rc : CUDA_ERROR_NOT_SUPPORTED;
}

GF_SIM_API CUresult cuDeviceGetTexture1DLinearMaxWidth(size_t *maxWidthInElements,
                                                       CUarray_format format,
                                                       unsigned numChannels, CUdevice dev)
{
    (void)format, (void)numChannels;
    CUresult rc = gf_drv__dev_check(dev);
    if (rc) return rc;
    if (!maxWidthInElements) return CUDA_ERROR_INVALID_VALUE;
    *maxWidthInElements = 268435456;
    return CUDA_SUCCESS;
}

GF_SIM_API CUresult cuFlushGPUDirectRDMAWrites(CUflushGPUDirectRDMAWritesTarget target,
                                               CUflushGPUDirectRDMAWritesScope scope)
{
    (void)target, (void)scope;
    GF_CHECK_INIT();
    return CUDA_SUCCESS;
}

/* ---- errors -------------------------------------------------------------------------------- */

GF_SIM_API CUresult cuGetErrorName(CUresult error, const char **pStr)
{
    if (!pStr) return CUDA_ERROR_INVALID_VALUE;
    *pStr = gf_cu_error_name((int)error);
    return *pStr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

GF_SIM_API CUresult cuGetErrorString(CUresult error, const char **pStr)
{
    if (!pStr) return CUDA_ERROR_INVALID_VALUE;
    *pStr = gf_cu_error_string((int)error);
    return *pStr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult gf_drv__ptx_rc(gf_ptx_rc rc)
{
    switch (rc) {
    case GF_PTX_OK: return CUDA_SUCCESS;
    case GF_PTX_ERR_SYNTAX:
    case GF_PTX_ERR_UNSUPPORTED: return CUDA_ERROR_INVALID_PTX;
    case GF_PTX_ERR_NOMEM: return CUDA_ERROR_OUT_OF_MEMORY;
    case GF_PTX_ERR_ADDRESS: return CUDA_ERROR_ILLEGAL_ADDRESS;
    case GF_PTX_ERR_MISALIGNED: return CUDA_ERROR_MISALIGNED_ADDRESS;
    case GF_PTX_ERR_TRAP: return CUDA_ERROR_LAUNCH_FAILED;
    case GF_PTX_ERR_LAUNCH: return CUDA_ERROR_INVALID_VALUE;
    case GF_PTX_ERR_DEADLOCK: return CUDA_ERROR_LAUNCH_FAILED;
    }
    return CUDA_ERROR_UNKNOWN;
}

/* ---- refused calls ------------------------------------------------------------------------- */

#define GF_UNSUP_MAX 1024
static const char *g_unsup_seen[GF_UNSUP_MAX];
static pthread_mutex_t g_unsup_lock = PTHREAD_MUTEX_INITIALIZER;

/* Called by the generated stubs (build/gen/sim_stubs.c) for every driver function the sim does
 * not implement; logs once per symbol. */
GF_SIM_API void gf_sim_unsupported(const char *symbol)
{
    pthread_mutex_lock(&g_unsup_lock);
    size_t i;
    for (i = 0; i < GF_UNSUP_MAX && g_unsup_seen[i]; i++)
        if (strcmp(g_unsup_seen[i], symbol) == 0) break;
    int first = i < GF_UNSUP_MAX && !g_unsup_seen[i];
    if (first) g_unsup_seen[i] = symbol;
    pthread_mutex_unlock(&g_unsup_lock);
    if (first || i == GF_UNSUP_MAX)
        gf_log(GF_LOG_WARN, GF_SIM_LOG,
               "%s is not supported by the sim; it returns CUDA_ERROR_NOT_SUPPORTED", symbol);
}

/* dl_iterate_phdr callback: the path of a loaded libcudart.so* (NVIDIA's shared runtime), if any. */
static int find_cudart(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    const char *n = info->dlpi_name, *base = n ? strrchr(n, '/') : NULL;
    base = base ? base + 1 : n;
    if (!base || strncmp(base, "libcudart.so", 12) != 0) return 0;
    snprintf(data, 512, "%s", n);
    return 1;
}

/* Only NVIDIA's runtime asks for export tables (gpufuse's never does). Linked statically, it is
 * inside the program and only a rebuild helps; loaded as libcudart.so.13, putting gpufuse's
 * runtime first on the library path is enough. */
GF_SIM_API CUresult cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId)
{
    (void)pExportTableId;
    if (ppExportTable) *ppExportTable = NULL;
    char cudart[512] = "";
    dl_iterate_phdr(find_cudart, cudart);
    if (!cudart[0])
        GF_LOG_ONCE(GF_LOG_ERROR, GF_SIM_LOG,
                    "this program links NVIDIA's CUDA runtime statically (nvcc's default), which "
                    "needs private driver tables the sim does not provide; rebuild it with "
                    "`nvcc -cudart shared` and run it with gpufuse's libcudart.so.13 (build/lib) "
                    "first on LD_LIBRARY_PATH");
    else
        GF_LOG_ONCE(GF_LOG_ERROR, GF_SIM_LOG,
                    "this program loaded NVIDIA's CUDA runtime (%s), which needs private driver "
                    "tables the sim does not provide; put gpufuse's libcudart.so.13 (build/lib) "
                    "first on LD_LIBRARY_PATH (gpufuse run --runtime gpufuse)", cudart);
    return CUDA_ERROR_NOT_SUPPORTED;
}
