/* SPDX-License-Identifier: Apache-2.0 */
/* The CUDA layer of the wire protocol: the opcodes the client library's remote backend sends
 * and `gpufuse worker` executes, and the payload of each (docs/remote.md is the reference).
 * Shared by src/client/remote*.c and src/worker/. */
#ifndef GF_REMOTE_PROTO_H
#define GF_REMOTE_PROTO_H

#include "gpufuse/wire.h"

/*
 * One X entry per opcode: X(NAME, number, sync). Frame kind = GF_WIRE_K_CUDA_FIRST + number.
 * sync 1: a request with a reply (REPLY flag, same request_id) whose payload starts with
 * `u32 CUresult`; sync 0: sent with NOREPLY and batched, its error (if any) is remembered by the
 * worker and returned by the next synchronizing call (those marked S below).
 *
 * Payloads, in order (h = handle, all handles minted by the client except device pointers):
 *   DEVICE_INFO     -> u32 driver_version, u32 ndev, then per device: str name, bytes uuid[16],
 *                      u64 total_mem, str pci_bus_id, bytes attrs (i32 value per attribute
 *                      1..GF_RPC_NATTR-1; INT32_MIN = not supported)
 *   CTX_SET         h ctx (0 = none)
 *   CTX_CREATE      h new, u32 flags, i32 dev
 *   PRIMARY_RETAIN  h new, i32 dev
 *   PRIMARY_RESET   i32 dev                      (frees what the session's primary ctx held;
 *                      libraries and their kernels stay valid, as CUlibrary/CUkernel handles do
 *                      on a driver: loaded again in the context current at their next use;
 *                      modules and their functions become invalid. CTX_DESTROY alike.)
 *   CTX_DESTROY     h ctx
 *   CTX_SYNC   (S)
 *   MEM_ALLOC       u64 bytes                    -> h dptr
 *   MEM_ALLOC_PITCH u64 width, u64 height, u32 elem -> h dptr, u64 pitch
 *   MEM_FREE        h dptr
 *   MEM_GET_INFO                                 -> u64 free, u64 total
 *   MEM_RANGE       h dptr                       -> h base, u64 size
 *   MEMCPY_HTOD (S) h dst, u64 n, u32 inline, [bytes data | n bytes as BULK chunks]
 *   MEMCPY_HTOD_ASYNC  h dst, u64 n, h stream, u32 inline, [bytes | BULK]
 *   MEMCPY_DTOH (S) h src, u64 n, h stream, u32 async -> (then, on success, n bytes as BULK)
 *   MEMCPY_DTOD     h dst, h src, u64 n, h stream, u32 async
 *   MEMSET          h dst, u32 value, u32 elem (1|2|4), u64 count, h stream, u32 async
 *   MEM_ALLOC_ASYNC u64 bytes, h stream          -> h dptr
 *   MEM_FREE_ASYNC  h dptr, h stream
 *   MODULE_LOAD     h new, u32 library (0 module, 1 library), bytes image
 *   MODULE_UNLOAD   h mod, u32 library
 *   GET_FUNCTION    h mod, u32 library, h new, str name -> u32 nparams, then per parameter
 *                      u64 offset, u64 size
 *   GET_GLOBAL      h mod, u32 library, str name -> h dptr, u64 size
 *   FUNC_ATTR       h fn, i32 attr               -> i32 value
 *   FUNC_SET_ATTR   h fn, i32 attr, i32 value   (sent with a reply, so that a refused value
 *                   fails the call, as on a driver; a worker answers it with or without)
 *   LAUNCH          h fn, u32 gx, gy, gz, bx, by, bz, u32 shmem, h stream, u32 flags,
 *                   bytes params (packed at the offsets GET_FUNCTION reported)
 *   STREAM_CREATE   h new, u32 flags, i32 priority
 *   STREAM_DESTROY  h stream
 *   STREAM_SYNC (S) h stream
 *   STREAM_QUERY (S) h stream
 *   STREAM_WAIT_EVENT h stream, h event, u32 flags
 *   EVENT_CREATE    h new, u32 flags
 *   EVENT_DESTROY   h event
 *   EVENT_RECORD    h event, h stream, u32 flags
 *   EVENT_SYNC (S)  h event
 *   EVENT_QUERY (S) h event
 *   EVENT_ELAPSED   h start, h end               -> f64 ms
 *   OCCUPANCY       h fn, i32 block, u64 shmem, u32 flags -> i32 blocks per SM
 *   STATS           -> u64 allocations, u64 bytes, u64 handles (tests, gpufuse tooling)
 *   FENCE           (answered once every earlier call ran: bounds the client's queue of
 *                   asynchronous calls, as a device's launch queue does)
 *   MEMCPY_DTOH_ASYNC  h src, u64 n, h stream; NOREPLY with a request_id of its own that the
 *                   client keeps with the destination. The worker copies into a host buffer in
 *                   stream order and, once the copy is done, sends DTOH_DATA before its answer
 *                   to a synchronizing call (S) or a MEMCPY_DTOH.
 *   DTOH_DATA       worker -> client, request_id of the MEMCPY_DTOH_ASYNC: u32 CUresult, u64 n;
 *                   on success n bytes follow as BULK. Exactly one per MEMCPY_DTOH_ASYNC.
 *
 * Mirrors (managed and mapped host memory; docs/remote.md, "Managed and mapped host memory"):
 *   MIRROR_ALLOC    u32 kind (GF_RPC_MIRROR_*), u64 bytes, u32 flags, h hint -> h dptr.
 *                   MANAGED: cuMemAllocManaged(bytes, flags), charged as VRAM. HOST: pinned
 *                   host memory on the worker mapped for the device, at the client's address
 *                   hint when that is free on the worker too (then dptr == hint), not VRAM.
 *                   Freed by MEM_FREE.
 *   GET_MANAGED     h library, str name          -> h dptr, u64 size (cuLibraryGetManaged)
 *   MIRROR_WRITE    h dptr, bytes data           (the client's bytes of a mirror: the range
 *                   must be inside a MANAGED, __managed__ or HOST range of the session; at
 *                   most GF_RPC_MIRROR_CHUNK bytes; done before the next call runs)
 *   MIRROR_READ     h dptr, u64 n                -> bytes data (same ranges and limit)
 *
 * Libraries, stream-ordered memory pools, virtual memory management (VMM) and peer access.
 * "props" below is u32 type (CUmemAllocationType), u32 handle types, u32 location type, i32
 * location id (a device ordinal of the session), u32 alloc flags (compressionType |
 * gpuDirectRDMACapable << 8 | usage << 16). Pools (kind MEMPOOL) and VMM allocation handles
 * (kind VMEM) are minted by the client; a device's default pool is GF_RPC_MEMPOOL_DEFAULT(dev).
 * Reserved address ranges and mappings are device addresses, checked like allocations: a mapped
 * range is valid for copies and memsets (adjacent mappings as one range) until it is unmapped.
 *   LIB_KERNEL_COUNT  h lib                      -> u32 count
 *   MEMPOOL_CREATE  h new, props, u64 max size
 *   MEMPOOL_DESTROY h pool                       (a device's default pool: INVALID_VALUE)
 *   MEMPOOL_ATTR    h pool, i32 attr, u32 set, u64 value -> u64 value (int attributes as u64)
 *   MEMPOOL_TRIM    h pool, u64 keep bytes
 *   DEVICE_SET_MEMPOOL i32 dev, h pool           (cuMemAllocAsync on dev then uses pool)
 *   MEM_ALLOC_FROM_POOL u64 bytes, h pool, h stream -> h dptr (charged like MEM_ALLOC_ASYNC)
 *   VA_RESERVE      u64 size, u64 alignment, h hint address, u64 flags -> h address
 *   VA_FREE         h address, u64 size          (a whole reservation with nothing mapped in it)
 *   MEM_CREATE      h new, u64 size, props, u64 flags (charged to the vGPU until the physical
 *                   memory goes: every handle released and every mapping of it unmapped)
 *   MEM_RELEASE     h handle
 *   MEM_MAP         h address, u64 size, u64 offset, h handle, u64 flags (inside a reservation,
 *                   over nothing mapped)
 *   MEM_UNMAP       h address, u64 size          (whole mappings)
 *   MEM_SET_ACCESS  h address, u64 size, u32 n, then n x (u32 location type, i32 location id,
 *                   u32 flags)                   (mapped memory only)
 *   MEM_GET_ACCESS  u32 location type, i32 location id, h address -> u64 flags
 *   MEM_RETAIN_HANDLE h address                  -> h handle (the one mapped there), props
 *   PEER_ACCESS     h peer ctx, u32 enable, u32 flags (for the current context)
 *   MEM_GRANULARITY props, u32 option            -> u64 granularity
 *   MEM_EXPORT      h handle, u32 handle type    (checks that the handle can be exported as
 *                   that type; the client keeps the shareable handle, see docs/remote.md)
 *   MEM_IMPORT      h new, h exported handle, u32 handle type -> props (of the exported handle)
 * Events, JIT logs, occupancy (docs/remote.md):
 *   CTX_RECORD_EVENT h ctx, h event              (cuCtxRecordEvent: the event of ctx records
 *                   the point after all work queued in ctx so far, every stream's)
 *   CTX_WAIT_EVENT  h ctx, h event               (cuCtxWaitEvent: later work of ctx waits)
 *   JIT_LOG         -> bytes info log, u64 info bytes, bytes error log, u64 error bytes: the
 *                   JIT's logs of the session's last MODULE_LOAD (failed or not) and how many
 *                   bytes of each the driver reports filled (the client asks only when the
 *                   program gave log buffers: CU_JIT_INFO/ERROR_LOG_BUFFER)
 *   OCCUPANCY_BLOCK_SIZE h fn, u64 dynamic smem, i32 block size limit, u32 flags, u32 n,
 *                   bytes of n little-endian u64: the dynamic smem for block sizes 32, 64, ...
 *                   32n (n 0: the fixed size applies) -> i32 min grid size, i32 block size
 *                   (cuOccupancyMaxPotentialBlockSize[WithFlags]; the client evaluates the
 *                   program's block-size-to-smem callback for each block size)
 *   HOST_FUNC       h stream, u64 token         (cuLaunchHostFunc, cuStreamAddCallback: the
 *                   worker puts a gate in the stream: when the stream reaches it, it sends
 *                   HOST_FUNC_RUN and holds the stream until HOST_FUNC_DONE)
 *   HOST_FUNC_RUN   worker -> client, NOREPLY, request_id = the token, no payload: run the
 *                   host function now (between any other frames, also while a call waits)
 *   HOST_FUNC_DONE  client -> worker, NOREPLY, request_id = the token, no payload: it ran;
 *                   handled when read, not in call order (the session's thread may be waiting
 *                   in the driver for the very stream it opens)
 */
#define GF_RPC_OPS(X)                                                                         \
    X(DEVICE_INFO, 1, 1)                                                                      \
    X(CTX_SET, 2, 0)                                                                          \
    X(CTX_CREATE, 3, 1)                                                                       \
    X(PRIMARY_RETAIN, 4, 1)                                                                   \
    X(PRIMARY_RESET, 5, 1)                                                                    \
    X(CTX_DESTROY, 6, 1)                                                                      \
    X(CTX_SYNC, 7, 1)                                                                         \
    X(MEM_ALLOC, 8, 1)                                                                        \
    X(MEM_ALLOC_PITCH, 9, 1)                                                                  \
    X(MEM_FREE, 10, 1)                                                                        \
    X(MEM_GET_INFO, 11, 1)                                                                    \
    X(MEM_RANGE, 12, 1)                                                                       \
    X(MEMCPY_HTOD, 13, 1)                                                                     \
    X(MEMCPY_HTOD_ASYNC, 14, 0)                                                               \
    X(MEMCPY_DTOH, 15, 1)                                                                     \
    X(MEMCPY_DTOD, 16, 0)                                                                     \
    X(MEMSET, 17, 0)                                                                          \
    X(MEM_ALLOC_ASYNC, 18, 1)                                                                 \
    X(MEM_FREE_ASYNC, 19, 0)                                                                  \
    X(MODULE_LOAD, 20, 1)                                                                     \
    X(MODULE_UNLOAD, 21, 1)                                                                   \
    X(GET_FUNCTION, 22, 1)                                                                    \
    X(GET_GLOBAL, 23, 1)                                                                      \
    X(FUNC_ATTR, 24, 1)                                                                       \
    X(FUNC_SET_ATTR, 25, 1)                                                                   \
    X(LAUNCH, 26, 0)                                                                          \
    X(STREAM_CREATE, 27, 0)                                                                   \
    X(STREAM_DESTROY, 28, 0)                                                                  \
    X(STREAM_SYNC, 29, 1)                                                                     \
    X(STREAM_QUERY, 30, 1)                                                                    \
    X(STREAM_WAIT_EVENT, 31, 0)                                                               \
    X(EVENT_CREATE, 32, 0)                                                                    \
    X(EVENT_DESTROY, 33, 0)                                                                   \
    X(EVENT_RECORD, 34, 0)                                                                    \
    X(EVENT_SYNC, 35, 1)                                                                      \
    X(EVENT_QUERY, 36, 1)                                                                     \
    X(EVENT_ELAPSED, 37, 1)                                                                   \
    X(OCCUPANCY, 38, 1)                                                                       \
    X(STATS, 39, 1)                                                                           \
    X(FENCE, 40, 1)                                                                           \
    X(MEMCPY_DTOH_ASYNC, 41, 0)                                                               \
    X(DTOH_DATA, 42, 0)                                                                       \
    X(MIRROR_ALLOC, 60, 1)                                                                    \
    X(GET_MANAGED, 61, 1)                                                                     \
    X(MIRROR_WRITE, 62, 0)                                                                    \
    X(MIRROR_READ, 63, 1)                                                                     \
    X(LIB_KERNEL_COUNT, 70, 1)                                                                \
    X(MEMPOOL_CREATE, 71, 1)                                                                  \
    X(MEMPOOL_DESTROY, 72, 1)                                                                 \
    X(MEMPOOL_ATTR, 73, 1)                                                                    \
    X(MEMPOOL_TRIM, 74, 1)                                                                    \
    X(DEVICE_SET_MEMPOOL, 75, 1)                                                              \
    X(MEM_ALLOC_FROM_POOL, 76, 1)                                                             \
    X(VA_RESERVE, 77, 1)                                                                      \
    X(VA_FREE, 78, 1)                                                                         \
    X(MEM_CREATE, 79, 1)                                                                      \
    X(MEM_RELEASE, 80, 1)                                                                     \
    X(MEM_MAP, 81, 1)                                                                         \
    X(MEM_UNMAP, 82, 1)                                                                       \
    X(MEM_SET_ACCESS, 83, 1)                                                                  \
    X(MEM_GET_ACCESS, 84, 1)                                                                  \
    X(MEM_RETAIN_HANDLE, 85, 1)                                                               \
    X(PEER_ACCESS, 86, 1)                                                                     \
    X(MEM_GRANULARITY, 87, 1)                                                                 \
    X(MEM_EXPORT, 88, 1)                                                                      \
    X(MEM_IMPORT, 89, 1)                                                                      \
    X(CTX_RECORD_EVENT, 90, 0)                                                                \
    X(CTX_WAIT_EVENT, 91, 0)                                                                  \
    X(JIT_LOG, 92, 1)                                                                         \
    X(OCCUPANCY_BLOCK_SIZE, 93, 1)                                                            \
    X(HOST_FUNC, 94, 0)                                                                       \
    X(HOST_FUNC_RUN, 95, 0)                                                                   \
    X(HOST_FUNC_DONE, 96, 0)

enum gf_rpc_op {
#define GF__RPC_ENUM(name, num, sync) GF_RPC_##name = GF_WIRE_K_CUDA_FIRST + (num),
    GF_RPC_OPS(GF__RPC_ENUM)
#undef GF__RPC_ENUM
    GF_RPC_OP_END
};

/*
 * NVML calls (kinds GF_WIRE_K_NVML_FIRST..): synchronous, the reply starts with u32 CUresult
 * like the CUDA calls, then:
 *   NVML_SNAPSHOT  u32 client pid -> u32 nvml_rc (the worker's NVML: 0 loaded, else the
 *                  nvmlReturn_t of loading it; the fields below then come from CUDA),
 *                  str driver version, u32 ndev, then per device of the session: str name,
 *                  str uuid ("GPU-..."), str pci bus id, u64 total (the vGPU's limit, else the
 *                  GPU's), u64 used (the vGPU's), u32 util_rc (nvmlReturn_t), u32 util gpu %,
 *                  u32 util memory %, u32 nprocs, per process u32 pid, u64 bytes.
 * One call answers every query of the NVML shim (src/client/nvml_shim.c): a snapshot of what the
 * session's vGPU looks like now.
 */
#define GF_RPC_NVML_SNAPSHOT (GF_WIRE_K_NVML_FIRST + 1u)

/* "MEM_ALLOC" for a kind, NULL when unknown. */
static inline const char *gf_rpc_op_name(uint32_t kind)
{
    switch (kind) {
#define GF__RPC_NAME(name, num, sync)                                                         \
    case GF_WIRE_K_CUDA_FIRST + (num): return #name;
        GF_RPC_OPS(GF__RPC_NAME)
#undef GF__RPC_NAME
    case GF_RPC_NVML_SNAPSHOT: return "NVML_SNAPSHOT";
    default: return NULL;
    }
}

/* Attributes DEVICE_INFO reports: CUdevice_attribute 1 .. GF_RPC_NATTR-1. */
#define GF_RPC_NATTR 160
#define GF_RPC_ATTR_NONE INT32_MIN

/* Payloads up to this size travel inside the call's frame; larger ones as BULK chunks. */
#define GF_RPC_INLINE_MAX (64u * 1024u)
/* Bulk chunk size of copies (both ways). */
#define GF_RPC_CHUNK (1u << 20)
/* Most kernel parameters of one function (the PTX limit is 4 KiB of parameter space). */
#define GF_RPC_MAX_PARAMS 512
#define GF_RPC_MAX_PARAM_BYTES 32768u
/* The largest module image a MODULE_LOAD carries (within the default frame payload). */
#define GF_RPC_IMAGE_MAX (GF_WIRE_MAX_PAYLOAD_DEFAULT - 4096u)

/* MIRROR_ALLOC kinds, and the most bytes one MIRROR_WRITE or MIRROR_READ carries. */
#define GF_RPC_MIRROR_MANAGED 1u
#define GF_RPC_MIRROR_HOST 2u
#define GF_RPC_MIRROR_CHUNK (512u << 10)

/* LAUNCH flags. */
#define GF_RPC_LAUNCH_COOPERATIVE 1u

/* Special stream handles passed through as they are (not session objects). */
#define GF_RPC_STREAM_LEGACY 0x1u
#define GF_RPC_STREAM_PER_THREAD 0x2u

/* Handle kinds, in the top byte of client-minted handles (so a forged handle of the wrong kind
 * never matches), and the worker's table limit per session. */
enum {
    GF_RPC_H_CTX = 1,
    GF_RPC_H_MODULE,
    GF_RPC_H_LIBRARY,
    GF_RPC_H_FUNCTION,
    GF_RPC_H_STREAM,
    GF_RPC_H_EVENT,
    GF_RPC_H_MEMPOOL,
    GF_RPC_H_VMEM, /* a VMM allocation handle (CUmemGenericAllocationHandle) */
};
#define GF_RPC_HANDLE(kind, n) (((uint64_t)(kind) << 56) | ((n) & 0x00ffffffffffffffull))
#define GF_RPC_HANDLE_KIND(h) ((unsigned)((h) >> 56))
/* Device dev's default memory pool: never minted (minted handles keep bits 48..55 clear). */
#define GF_RPC_MEMPOOL_DEFAULT_MARK 0x00ff000000000000ull
#define GF_RPC_MEMPOOL_DEFAULT(dev)                                                           \
    GF_RPC_HANDLE(GF_RPC_H_MEMPOOL, GF_RPC_MEMPOOL_DEFAULT_MARK | (uint64_t)(uint32_t)(dev))

#endif
