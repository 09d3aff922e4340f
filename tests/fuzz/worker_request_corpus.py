#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Writes the seed inputs of tests/fuzz/fuzz_worker_request.c (records of [u8 op][u8 flags]
# [u16 len][payload], payloads in the wire's tagged encoding, opcodes of
# src/client/remote_proto.h). Run: cd tests/fuzz/corpus/worker_request && python3 ../../worker_request_corpus.py
import struct

OPS = dict(DEVICE_INFO=1, CTX_SET=2, CTX_CREATE=3, PRIMARY_RETAIN=4, PRIMARY_RESET=5, CTX_DESTROY=6,
           CTX_SYNC=7, MEM_ALLOC=8, MEM_ALLOC_PITCH=9, MEM_FREE=10, MEM_GET_INFO=11, MEM_RANGE=12,
           MEMCPY_HTOD=13, MEMCPY_HTOD_ASYNC=14, MEMCPY_DTOH=15, MEMCPY_DTOD=16, MEMSET=17,
           MEM_ALLOC_ASYNC=18, MEM_FREE_ASYNC=19, MODULE_LOAD=20, MODULE_UNLOAD=21,
           GET_FUNCTION=22, GET_GLOBAL=23, FUNC_ATTR=24, FUNC_SET_ATTR=25, LAUNCH=26,
           STREAM_CREATE=27, STREAM_DESTROY=28, STREAM_SYNC=29, STREAM_QUERY=30,
           STREAM_WAIT_EVENT=31, EVENT_CREATE=32, EVENT_DESTROY=33, EVENT_RECORD=34,
           EVENT_SYNC=35, EVENT_QUERY=36, EVENT_ELAPSED=37, OCCUPANCY=38, STATS=39, FENCE=40,
           MEMCPY_DTOH_ASYNC=41, DTOH_DATA=42,
           LIB_KERNEL_COUNT=70, MEMPOOL_CREATE=71, MEMPOOL_DESTROY=72, MEMPOOL_ATTR=73,
           MEMPOOL_TRIM=74, DEVICE_SET_MEMPOOL=75, MEM_ALLOC_FROM_POOL=76, VA_RESERVE=77,
           VA_FREE=78, MEM_CREATE=79, MEM_RELEASE=80, MEM_MAP=81, MEM_UNMAP=82,
           MEM_SET_ACCESS=83, MEM_GET_ACCESS=84, MEM_RETAIN_HANDLE=85, PEER_ACCESS=86,
           MEM_GRANULARITY=87, MEM_EXPORT=88, MEM_IMPORT=89,
           BULK=48, NVML=49, PING=50,
           MIRROR_ALLOC=60, GET_MANAGED=61, MIRROR_WRITE=62, MIRROR_READ=63,
           CTX_RECORD_EVENT=90, CTX_WAIT_EVENT=91, JIT_LOG=92, OCCUPANCY_BLOCK_SIZE=93,
           HOST_FUNC=94, HOST_FUNC_RUN=95, HOST_FUNC_DONE=96)
H_CTX, H_MOD, H_LIB, H_FUNC, H_STREAM, H_EVENT, H_POOL, H_VMEM = 1, 2, 3, 4, 5, 6, 7, 8
POOL_DEFAULT0 = (H_POOL << 56) | 0x00ff000000000000
BASE = 0x100000000000  # the fake driver's first allocation


def h(kind, n): return (kind << 56) | n
def u32(v): return b'\x01' + struct.pack('<I', v & 0xffffffff)
def u64(v): return b'\x02' + struct.pack('<Q', v)
def i32(v): return b'\x03' + struct.pack('<i', v)
def hd(v): return b'\x06' + struct.pack('<Q', v)
def byt(b): return b'\x07' + struct.pack('<I', len(b)) + b
def st(s): return b'\x08' + struct.pack('<I', len(s)) + s.encode()


def rec(op, *fields, flags=0, raw=None):
    p = raw if raw is not None else b''.join(fields)
    return bytes([OPS[op], flags]) + struct.pack('<H', len(p)) + p


NOREPLY, MORE = 1, 2
CTX = h(H_CTX, 1)
setup = rec('PRIMARY_RETAIN', hd(CTX), i32(0)) + rec('CTX_SET', hd(CTX), flags=NOREPLY)
VA = 0x200000000000  # the fake driver's first reservation
# props: pinned device memory on device 0, exportable as a file descriptor
PROPS = u32(1) + u32(1) + u32(1) + i32(0) + u32(0)

seeds = {
    'memory': setup + rec('MEM_ALLOC', u64(4096)) +
    rec('MEMCPY_HTOD', hd(BASE), u64(16), u32(1), byt(b'0123456789abcdef')) +
    rec('MEMCPY_DTOH', hd(BASE), u64(16), hd(0), u32(0)) +
    rec('MEMSET', hd(BASE), u32(7), u32(4), u64(1024), hd(0), u32(1), flags=NOREPLY) +
    rec('MEMCPY_DTOD', hd(BASE + 2048), hd(BASE), u64(2048), hd(0), u32(1), flags=NOREPLY) +
    rec('MEM_RANGE', hd(BASE + 100)) + rec('MEM_GET_INFO') + rec('STATS') +
    rec('MEM_FREE', hd(BASE)) + rec('CTX_SYNC'),
    'bulk_htod': setup + rec('MEM_ALLOC', u64(100000)) +
    rec('MEMCPY_HTOD', hd(BASE), u64(100000), u32(0)) +
    rec('BULK', raw=b'\xaa' * 65535, flags=MORE) + rec('BULK', raw=b'\xbb' * 34465) +
    rec('MEMCPY_DTOH', hd(BASE), u64(100000), hd(0), u32(0)) + rec('CTX_SYNC'),
    'async_htod': setup + rec('MEM_ALLOC', u64(8192)) +
    rec('STREAM_CREATE', hd(h(H_STREAM, 2)), u32(1), i32(0), flags=NOREPLY) +
    rec('MEMCPY_HTOD_ASYNC', hd(BASE), u64(4), hd(h(H_STREAM, 2)), u32(1), byt(b'abcd'), flags=NOREPLY) +
    rec('MEMCPY_HTOD_ASYNC', hd(BASE), u64(8192), hd(h(H_STREAM, 2)), u32(0), flags=NOREPLY) +
    rec('BULK', raw=b'\x01' * 8192) +
    rec('MEMCPY_DTOH', hd(BASE), u64(8192), hd(h(H_STREAM, 2)), u32(1)) +
    rec('STREAM_SYNC', hd(h(H_STREAM, 2))),
    'module': setup + rec('MODULE_LOAD', hd(h(H_MOD, 3)), u32(0), byt(b'FZ module')) +
    rec('GET_FUNCTION', hd(h(H_MOD, 3)), u32(0), hd(h(H_FUNC, 4)), st('k2')) +
    rec('GET_GLOBAL', hd(h(H_MOD, 3)), u32(0), st('g')) +
    rec('LAUNCH', hd(h(H_FUNC, 4)), u32(1), u32(1), u32(1), u32(32), u32(1), u32(1), u32(0),
        hd(0), u32(0), byt(b'\0' * 16), flags=NOREPLY) +
    rec('FUNC_ATTR', hd(h(H_FUNC, 4)), i32(0)) +
    rec('FUNC_SET_ATTR', hd(h(H_FUNC, 4)), i32(8), i32(1024), flags=NOREPLY) +
    rec('OCCUPANCY', hd(h(H_FUNC, 4)), i32(128), u64(0), u32(0)) +
    rec('MEMCPY_HTOD', hd(BASE), u64(8), u32(1), byt(b'12345678')) +
    rec('CTX_SYNC') + rec('MODULE_UNLOAD', hd(h(H_MOD, 3)), u32(0)),
    'library_first': rec('MODULE_LOAD', hd(h(H_LIB, 5)), u32(1), byt(b'FZ lib')) + setup +
    rec('GET_FUNCTION', hd(h(H_LIB, 5)), u32(1), hd(h(H_FUNC, 6)), st('k1')) +
    rec('LAUNCH', hd(h(H_FUNC, 6)), u32(1), u32(1), u32(1), u32(1), u32(1), u32(1), u32(0),
        hd(1), u32(1), byt(b'\0' * 8), flags=NOREPLY) + rec('CTX_SYNC'),
    'streams_events': setup +
    rec('STREAM_CREATE', hd(h(H_STREAM, 7)), u32(0), i32(0), flags=NOREPLY) +
    rec('EVENT_CREATE', hd(h(H_EVENT, 8)), u32(0), flags=NOREPLY) +
    rec('EVENT_CREATE', hd(h(H_EVENT, 9)), u32(2), flags=NOREPLY) +
    rec('EVENT_RECORD', hd(h(H_EVENT, 8)), hd(h(H_STREAM, 7)), u32(0), flags=NOREPLY) +
    rec('STREAM_WAIT_EVENT', hd(2), hd(h(H_EVENT, 8)), u32(0), flags=NOREPLY) +
    rec('EVENT_RECORD', hd(h(H_EVENT, 9)), hd(0), u32(1), flags=NOREPLY) +
    rec('EVENT_SYNC', hd(h(H_EVENT, 9))) + rec('EVENT_QUERY', hd(h(H_EVENT, 8))) +
    rec('EVENT_ELAPSED', hd(h(H_EVENT, 8)), hd(h(H_EVENT, 9))) +
    rec('STREAM_QUERY', hd(h(H_STREAM, 7))) +
    rec('EVENT_DESTROY', hd(h(H_EVENT, 8)), flags=NOREPLY) +
    rec('STREAM_DESTROY', hd(h(H_STREAM, 7)), flags=NOREPLY) + rec('FENCE'),
    'forged': setup + rec('MEM_ALLOC', u64(4096)) +
    rec('MEMCPY_DTOH', hd(BASE + 4096), u64(16), hd(0), u32(0)) +
    rec('MEMCPY_DTOH', hd(BASE + 4090), u64(16), hd(0), u32(0)) +
    rec('MEMCPY_HTOD', hd(BASE - 1), u64(1), u32(1), byt(b'x')) +
    rec('MEMSET', hd(BASE), u32(0), u32(4), u64(1 << 62), hd(0), u32(0)) +
    rec('MEM_FREE', hd(BASE + 8)) + rec('STREAM_SYNC', hd(h(H_STREAM, 99))) +
    rec('EVENT_SYNC', hd(h(H_CTX, 1))) + rec('CTX_SET', hd(h(H_CTX, 77)), flags=NOREPLY) +
    rec('MEM_ALLOC', u64(64)),
    'contexts': rec('DEVICE_INFO') + rec('NVML', u32(4242)) +
    rec('CTX_CREATE', hd(h(H_CTX, 10)), u32(0), i32(0)) + rec('MEM_ALLOC', u64(4096)) +
    rec('MEM_ALLOC_PITCH', u64(100), u64(10), u32(4)) +
    rec('MEM_ALLOC_ASYNC', u64(512), hd(0)) +
    rec('MEM_FREE_ASYNC', hd(BASE + 0x20000 + 0x10000), hd(0), flags=NOREPLY) +
    rec('NVML', u32(4242)) + setup + rec('PRIMARY_RESET', i32(0)) +
    rec('CTX_DESTROY', hd(h(H_CTX, 10))) + rec('PING', raw=b'hi'),
    'async_dtoh': setup + rec('MEM_ALLOC', u64(4096)) +
    rec('STREAM_CREATE', hd(h(H_STREAM, 2)), u32(1), i32(0), flags=NOREPLY) +
    rec('MEMCPY_DTOH_ASYNC', hd(BASE), u64(4096), hd(h(H_STREAM, 2)), flags=NOREPLY) +
    rec('MEMCPY_DTOH_ASYNC', hd(BASE + 4000), u64(4096), hd(0), flags=NOREPLY) +
    rec('MEMCPY_DTOH_ASYNC', hd(BASE), u64(16), hd(0), flags=NOREPLY) +
    rec('STREAM_QUERY', hd(h(H_STREAM, 2))) + rec('STREAM_SYNC', hd(h(H_STREAM, 2))) +
    rec('MEMCPY_DTOH_ASYNC', hd(BASE), u64(64), hd(0), flags=NOREPLY) +
    rec('CTX_DESTROY', hd(CTX)) + rec('CTX_SYNC'),
    'host_functions': setup +
    rec('STREAM_CREATE', hd(h(H_STREAM, 7)), u32(0), i32(0), flags=NOREPLY) +
    rec('HOST_FUNC', hd(h(H_STREAM, 7)), u64(1), flags=NOREPLY) +
    rec('HOST_FUNC', hd(0), u64(2), flags=NOREPLY) +
    rec('HOST_FUNC', hd(h(H_STREAM, 99)), u64(3), flags=NOREPLY) +
    rec('HOST_FUNC_DONE', flags=NOREPLY) + rec('STREAM_QUERY', hd(h(H_STREAM, 7))) +
    rec('STREAM_DESTROY', hd(h(H_STREAM, 7)), flags=NOREPLY) + rec('CTX_SYNC'),
    'mirrors': setup + rec('MIRROR_ALLOC', u32(1), u64(8192), u32(1), hd(0)) +
    rec('MIRROR_WRITE', hd(BASE + 16), byt(b'0123456789abcdef'), flags=NOREPLY) +
    rec('MIRROR_READ', hd(BASE), u64(64)) +
    rec('MIRROR_READ', hd(BASE + 8000), u64(500)) +
    rec('MIRROR_ALLOC', u32(2), u64(4096), u32(0), hd(0x300000000000)) +
    rec('MIRROR_ALLOC', u32(2), u64(100), u32(0), hd(0)) +
    rec('MODULE_LOAD', hd(h(H_LIB, 5)), u32(1), byt(b'FZ lib')) +
    rec('GET_MANAGED', hd(h(H_LIB, 5)), st('g')) +
    rec('MEM_ALLOC', u64(64)) + rec('MIRROR_READ', hd(BASE + 0x10000), u64(8)) +
    rec('MEM_FREE', hd(BASE)) + rec('CTX_SYNC'),
    'ctx_events_jit_occupancy': setup +
    rec('MODULE_LOAD', hd(h(H_MOD, 3)), u32(0), byt(b'not an image')) + rec('JIT_LOG') +
    rec('MODULE_LOAD', hd(h(H_MOD, 3)), u32(0), byt(b'FZ module')) + rec('JIT_LOG') +
    rec('GET_FUNCTION', hd(h(H_MOD, 3)), u32(0), hd(h(H_FUNC, 4)), st('k2')) +
    rec('OCCUPANCY_BLOCK_SIZE', hd(h(H_FUNC, 4)), u64(0), i32(0), u32(0), u32(0), byt(b'')) +
    rec('OCCUPANCY_BLOCK_SIZE', hd(h(H_FUNC, 4)), u64(0), i32(100), u32(0), u32(4),
        byt(struct.pack('<4Q', 0, 128, 256, 1 << 40))) +
    rec('EVENT_CREATE', hd(h(H_EVENT, 8)), u32(0), flags=NOREPLY) +
    rec('CTX_RECORD_EVENT', hd(CTX), hd(h(H_EVENT, 8)), flags=NOREPLY) +
    rec('CTX_WAIT_EVENT', hd(CTX), hd(h(H_EVENT, 8)), flags=NOREPLY) +
    rec('CTX_RECORD_EVENT', hd(h(H_CTX, 77)), hd(h(H_EVENT, 8)), flags=NOREPLY) +
    rec('CTX_SYNC') + rec('MODULE_UNLOAD', hd(h(H_MOD, 3)), u32(0)),
    'pools': setup + rec('MEMPOOL_CREATE', hd(h(H_POOL, 11)), PROPS, u64(0)) +
    rec('MEM_ALLOC_FROM_POOL', u64(4096), hd(h(H_POOL, 11)), hd(0)) +
    rec('MEM_ALLOC_FROM_POOL', u64(4096), hd(POOL_DEFAULT0), hd(0)) +
    rec('MEMPOOL_ATTR', hd(POOL_DEFAULT0), i32(7), u32(0), u64(0)) +
    rec('MEMPOOL_ATTR', hd(h(H_POOL, 11)), i32(4), u32(1), u64(1 << 30)) +
    rec('MEMPOOL_ATTR', hd(h(H_POOL, 11)), i32(1), u32(1), u64(1)) +
    rec('DEVICE_SET_MEMPOOL', i32(0), hd(h(H_POOL, 11))) +
    rec('MEMPOOL_TRIM', hd(POOL_DEFAULT0), u64(0)) +
    rec('MEM_FREE_ASYNC', hd(BASE), hd(0), flags=NOREPLY) +
    rec('MEMPOOL_DESTROY', hd(h(H_POOL, 11))) + rec('MEMPOOL_DESTROY', hd(POOL_DEFAULT0)) +
    rec('MEMPOOL_ATTR', hd(h(H_POOL, 12)), i32(7), u32(0), u64(0)) + rec('CTX_SYNC'),
    'vmm': setup + rec('MEM_GRANULARITY', PROPS, u32(1)) +
    rec('VA_RESERVE', u64(65536), u64(0), hd(0), u64(0)) +
    rec('MEM_CREATE', hd(h(H_VMEM, 12)), u64(8192), PROPS, u64(0)) +
    rec('MEM_CREATE', hd(h(H_VMEM, 13)), u64(8192), PROPS, u64(0)) +
    rec('MEM_MAP', hd(VA), u64(8192), u64(0), hd(h(H_VMEM, 12)), u64(0)) +
    rec('MEM_MAP', hd(VA + 8192), u64(8192), u64(0), hd(h(H_VMEM, 13)), u64(0)) +
    rec('MEM_SET_ACCESS', hd(VA), u64(16384), u32(1), u32(1), i32(0), u32(3)) +
    rec('MEM_GET_ACCESS', u32(1), i32(0), hd(VA + 100)) +
    rec('MEMSET', hd(VA + 4096), u32(7), u32(4), u64(2048), hd(0), u32(0)) +
    rec('MEMCPY_DTOH', hd(VA + 8000), u64(400), hd(0), u32(0)) +
    rec('MEM_RETAIN_HANDLE', hd(VA + 9000)) + rec('MEM_RELEASE', hd(h(H_VMEM, 13))) +
    rec('MEM_EXPORT', hd(h(H_VMEM, 12)), u32(1)) +
    rec('MEM_IMPORT', hd(h(H_VMEM, 14)), hd(h(H_VMEM, 12)), u32(1)) +
    rec('MEM_MAP', hd(VA + 16384), u64(8192), u64(0), hd(h(H_VMEM, 14)), u64(0)) +
    rec('MEM_RELEASE', hd(h(H_VMEM, 12))) + rec('MEM_RELEASE', hd(h(H_VMEM, 14))) +
    rec('MEM_UNMAP', hd(VA), u64(16384)) + rec('MEM_RELEASE', hd(h(H_VMEM, 13))) +
    rec('VA_FREE', hd(VA), u64(65536)) + rec('MEM_UNMAP', hd(VA + 16384), u64(8192)) +
    rec('VA_FREE', hd(VA), u64(65536)) + rec('CTX_SYNC'),
    'peer_and_library': setup + rec('CTX_CREATE', hd(h(H_CTX, 2)), u32(0), i32(0)) +
    rec('PEER_ACCESS', hd(CTX), u32(1), u32(0)) + rec('PEER_ACCESS', hd(CTX), u32(0), u32(0)) +
    rec('MODULE_LOAD', hd(h(H_LIB, 5)), u32(1), byt(b'FZ lib')) +
    rec('LIB_KERNEL_COUNT', hd(h(H_LIB, 5))) + rec('LIB_KERNEL_COUNT', hd(h(H_LIB, 6))) +
    rec('CTX_DESTROY', hd(h(H_CTX, 2))),
    'bulk_dtoh': setup + rec('MEM_ALLOC', u64(1200000)) +
    rec('MEMCPY_DTOH', hd(BASE), u64(1200000), hd(0), u32(0)) + rec('CTX_SYNC'),
}
for name, data in seeds.items():
    with open(name, 'wb') as f:
        f.write(data)
