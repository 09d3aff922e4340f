/* SPDX-License-Identifier: Apache-2.0 */
/* The limiter: VRAM accounting and compute rate control for one vGPU, kept in a shared-memory
 * region so that every process of a workload (and later the remote worker) sees one set of
 * numbers. Used by the client library (src/client/) and by gpufuse run. See docs/limiter.md.
 *
 * A vGPU region (/dev/shm/gpufuse-vgpu-<name>, or $GPUFUSE_SHM_DIR/gpufuse-vgpu-<name>) holds,
 * per device slot (the ordinals the vGPU's processes see): the VRAM limit and the bytes charged,
 * and a token bucket of GPU time (tokens = allowed fraction x wall time, refilled continuously,
 * a small depth; measured kernel time is charged after the fact; a launch waits while the bucket
 * is negative). It also lists the processes attached to it (pid + start time) with what each
 * holds, so the usage of a process that died (SIGKILL included) is reclaimed, and a reused pid
 * is never mistaken for the dead one.
 *
 * A GPU region (/dev/shm/gpufuse-gpu-<id>) is shared by every vGPU on one physical GPU: a ring
 * of the end times of recently measured kernels, so that time a kernel spent queued behind
 * another vGPU's kernel is not charged to it (gf_limiter_gpu_account).
 *
 * Regions are versioned (magic, major/minor, size), hold no pointers, and are guarded by a
 * process-shared robust mutex: a process that dies holding it does not wedge the others.
 */
#ifndef GPUFUSE_LIMITER_H
#define GPUFUSE_LIMITER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gpufuse/status.h"

#define GF_LIMITER_MAX_DEVICES 16
#define GF_LIMITER_MAX_PROCS 256
#define GF_LIMITER_NAME_MAX 64
/* Bucket depth when the config leaves it 0: how much unused GPU time a vGPU may save up. */
#define GF_LIMITER_DEFAULT_DEPTH_NS 20000000ull /* 20 ms */

typedef struct gf_limiter gf_limiter;
typedef struct gf_limiter_gpu gf_limiter_gpu;

/* What a vGPU may use, per device slot. A zero limit means "no limit" (the whole device). */
typedef struct gf_limiter_config {
    uint64_t vram_limit[GF_LIMITER_MAX_DEVICES];       /* bytes; 0 = unlimited */
    double compute_fraction[GF_LIMITER_MAX_DEVICES];   /* (0, 1); 0 or >= 1 = unlimited */
    uint64_t bucket_depth_ns;                          /* 0 = GF_LIMITER_DEFAULT_DEPTH_NS */
} gf_limiter_config;

/* Usage of one device slot, as gf_limiter_stats reports it. */
typedef struct gf_limiter_dev_stats {
    uint64_t vram_limit;     /* 0 = unlimited */
    uint64_t vram_used;      /* bytes charged by live processes */
    double compute_fraction; /* 0 = unlimited */
    uint64_t busy_ns;        /* GPU time charged since the region was created */
    uint64_t throttled_ns;   /* time launches waited for the bucket, all processes */
    uint64_t launches;       /* kernel launches through the client library (region v1.1+) */
    uint64_t refused_allocs; /* allocations refused over the VRAM limit (region v1.1+) */
} gf_limiter_dev_stats;

/* Writes the region's path for name into buf ("/dev/shm/gpufuse-vgpu-<name>"). Names are
 * [A-Za-z0-9._-], 1..GF_LIMITER_NAME_MAX-1 chars. Returns GF_EINVAL for a bad name. */
gf_status gf_limiter_path(const char *name, char *buf, size_t buflen);

/* Creates the region of vGPU name with cfg. exclusive: fail with GF_EEXIST when it exists;
 * otherwise an existing region is kept as it is (its limits win) and GF_OK is returned. Does
 * not attach the caller. err gets a message naming the path on error (GF_EIO, GF_EINVAL). */
gf_status gf_limiter_create(const char *name, const gf_limiter_config *cfg, int exclusive,
                            char *err, size_t errlen);

/* Maps the region of vGPU name and attaches the calling process (pid + start time): its usage
 * is counted from now on and reclaimed when it dies. *out is owned by the caller
 * (gf_limiter_close). GF_ENOENT when no such vGPU, GF_EPROTO when the region has another major
 * version or size, GF_ENOSPC when GF_LIMITER_MAX_PROCS processes are attached. */
gf_status gf_limiter_open(const char *name, gf_limiter **out, char *err, size_t errlen);

/* Maps the region without attaching (for gpufuse run, monitors): reads and reclaim only. */
gf_status gf_limiter_open_observer(const char *name, gf_limiter **out, char *err,
                                   size_t errlen);

/* After fork(): attaches the child as a new process (the parent's record stays the parent's)
 * if l was attached. Call it in the child before using l. */
void gf_limiter_after_fork(gf_limiter *l);

/* Detaches the calling process (returning what it still holds) and unmaps. NULL is a no-op. */
void gf_limiter_close(gf_limiter *l);

/* Removes the region's name; processes that have it mapped keep working. GF_ENOENT if gone. */
gf_status gf_limiter_unlink(const char *name);

/* Charges bytes on device slot dev to the calling process. When that would exceed the slot's
 * limit it first reclaims dead processes, then answers GF_ENOSPC (nothing charged). GF_EINVAL
 * for a bad slot. Thread-safe. */
gf_status gf_limiter_mem_reserve(gf_limiter *l, unsigned dev, uint64_t bytes);

/* Returns bytes charged by gf_limiter_mem_reserve from the calling process. */
void gf_limiter_mem_release(gf_limiter *l, unsigned dev, uint64_t bytes);

/* The slot's limit (0 = unlimited) and bytes charged by live processes (dead ones reclaimed
 * first). */
void gf_limiter_mem_info(gf_limiter *l, unsigned dev, uint64_t *used, uint64_t *limit);

/* The slot's compute fraction in (0, 1), or 0 when compute is not limited. */
double gf_limiter_compute_fraction(const gf_limiter *l, unsigned dev);

/* How long a launch on slot dev must wait at now_ns (CLOCK_MONOTONIC) before it may start:
 * 0 when the bucket is not negative or compute is not limited. */
uint64_t gf_limiter_compute_delay_ns(gf_limiter *l, unsigned dev, uint64_t now_ns);

/* Blocks until a launch on slot dev may start (sleeping, never spinning); returns the ns it
 * waited. Does nothing when compute is not limited. */
uint64_t gf_limiter_compute_wait(gf_limiter *l, unsigned dev);

/* Charges busy_ns of GPU time, measured for a kernel of this vGPU, to slot dev's bucket. */
void gf_limiter_compute_charge(gf_limiter *l, unsigned dev, uint64_t busy_ns, uint64_t now_ns);

/* Reclaims the usage of attached processes that are gone (or whose pid now belongs to a
 * process with another start time). Returns how many were reclaimed. */
unsigned gf_limiter_reclaim(gf_limiter *l);

/* Number of live attached processes (after reclaiming dead ones). */
unsigned gf_limiter_live_procs(gf_limiter *l);

/* Counts one kernel launch on slot dev (lock-free; capped or not). A v1.0 region (made by an
 * older gpufuse) has no counter: nothing is counted. */
void gf_limiter_count_launch(gf_limiter *l, unsigned dev);

/* Fills st with slot dev's usage. GF_EINVAL for a bad slot. */
gf_status gf_limiter_stats(gf_limiter *l, unsigned dev, gf_limiter_dev_stats *st);

/* Bytes the calling process holds on slot dev according to the region. */
uint64_t gf_limiter_proc_vram(gf_limiter *l, unsigned dev);

/* Lists up to max live attached processes: pids[i] and the bytes each holds on slot dev
 * (bytes may be NULL). Returns how many there are (may exceed max). */
unsigned gf_limiter_procs(gf_limiter *l, unsigned dev, pid_t *pids, uint64_t *bytes,
                          unsigned max);

/* The start time of process pid (clock ticks since boot, /proc/<pid>/stat field 22), or 0
 * when there is no such process. */
uint64_t gf_limiter_proc_start_time(pid_t pid);

/* Maps (creating it if needed) the region shared by every vGPU on the physical GPU named id
 * (a UUID or other stable name, [A-Za-z0-9._-]). *out is owned by the caller
 * (gf_limiter_gpu_close). */
gf_status gf_limiter_gpu_open(const char *id, gf_limiter_gpu **out, char *err, size_t errlen);
void gf_limiter_gpu_close(gf_limiter_gpu *g);

/* A kernel of this process ran on the GPU within [start_ns, end_ns] (CLOCK_MONOTONIC, start =
 * when its stream reached it). Because a GPU without MPS runs one context's kernels at a time,
 * the part of the interval before the latest end of another kernel (published here by any
 * process) was spent waiting for that kernel, not running. Returns end - max(start, that end)
 * -- the GPU time to charge -- and publishes this kernel's end. Lock-free. */
uint64_t gf_limiter_gpu_account(gf_limiter_gpu *g, uint64_t start_ns, uint64_t end_ns);

#endif
