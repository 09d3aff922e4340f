/* SPDX-License-Identifier: Apache-2.0 */
/* The sim's machine state, shared by every process that names the same GPUFUSE_SIM_STATE file.
 *
 * One mmap'ed file holds the simulated devices (from GPUFUSE_SIM_GPUS and the GPU model
 * table), the VRAM each process holds on each device, and each device's busy intervals. It is
 * what makes several processes see one GPU: one VRAM pool, one kernel at a time, and NVML that
 * shows everybody's usage. Internal contract between src/sim/state.c and the sim's driver
 * (driver_*.c) and NVML (nvml.c).
 *
 * Crash safety: the region is guarded by a process-shared robust mutex; a process that dies
 * holding it (even by SIGKILL) does not wedge the others, and the VRAM of a process whose pid
 * is gone, or whose pid was reused (start time differs), is reclaimed before any allocation
 * fails and before NVML reports usage.
 */
#ifndef GF_SIM_SIMSTATE_H
#define GF_SIM_SIMSTATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GF_SIM_MAX_DEVICES 16
#define GF_SIM_MAX_PROCS 256

typedef struct gf_simstate gf_simstate;

/* What a simulated device is; fixed for the life of the state file. */
typedef struct gf_sim_device_info {
    char name[96];              /* "NVIDIA H100 80GB HBM3" as the real driver names it */
    char model[32];             /* the model table's key: "H100" */
    uint8_t uuid[16];           /* stable per (state file, index) */
    uint64_t total_bytes;       /* VRAM */
    uint32_t sm_count;
    uint32_t cc_major, cc_minor;
    double fp16_tflops;         /* dense FP16 tensor TFLOPs */
    uint32_t clock_khz;         /* SM boost clock */
    uint32_t mem_clock_khz;
    uint32_t mem_bus_width;     /* bits */
    uint32_t pci_bus;           /* bus id: 0000:<bus>:00.0 */
    uint32_t power_limit_mw;
} gf_sim_device_info;

/* One process's usage of one device, as NVML reports it. */
typedef struct gf_sim_proc_usage {
    pid_t pid;
    uint64_t used_bytes;
    uint64_t busy_ns_window;    /* kernel time in the utilization window */
    uint64_t last_busy_ns;      /* CLOCK_MONOTONIC end of its latest kernel in the window (now
                                 * while one runs); 0 when it ran none. For NVML's
                                 * lastSeenTimeStamp. */
} gf_sim_proc_usage;

/* Opens (creating if needed) the state file named by GPUFUSE_SIM_STATE, default
 * /dev/shm/gpufuse-sim-<uid>, and registers the calling process (pid + start time). The file's
 * devices come from GPUFUSE_SIM_GPUS when it is created ("H100:2,T4"; default one H100); a
 * process that names different GPUs than an existing file holds gets an error saying so (delete
 * the file or use another GPUFUSE_SIM_STATE). Returns 0, or -1 with err filled. Idempotent per
 * process: later calls return the same handle. The handle lives until process exit. */
int gf_simstate_open(gf_simstate **out, char *err, size_t errlen);

unsigned gf_simstate_device_count(const gf_simstate *s);
/* NULL when dev is out of range. */
const gf_sim_device_info *gf_simstate_device(const gf_simstate *s, unsigned dev);

/* Charges bytes of VRAM on dev to the calling process. Reclaims dead processes' usage first
 * when the device looks full. Returns 0, or -1 when the device has less than bytes free. */
int gf_simstate_mem_reserve(gf_simstate *s, unsigned dev, uint64_t bytes);
/* Returns bytes charged by gf_simstate_mem_reserve() from the calling process. */
void gf_simstate_mem_release(gf_simstate *s, unsigned dev, uint64_t bytes);
/* Free and total VRAM of dev, after reclaiming dead processes. */
void gf_simstate_mem_info(gf_simstate *s, unsigned dev, uint64_t *free_bytes,
                          uint64_t *total_bytes);

/* Takes the device for one kernel: blocks until no other kernel (of any process) runs on dev.
 * Time-slices the GPU like a device without MPS. Robust against holders dying. */
void gf_simstate_device_acquire(gf_simstate *s, unsigned dev);
/* Gives the device back and records [start_ns, end_ns] (CLOCK_MONOTONIC) as busy time of the
 * calling process on dev. */
void gf_simstate_device_release(gf_simstate *s, unsigned dev, uint64_t start_ns, uint64_t end_ns);

/* Busy fraction (0..1) of dev over the last window_ns ending now. */
double gf_simstate_utilization(gf_simstate *s, unsigned dev, uint64_t window_ns);
/* Fills up to max entries with the live processes that hold memory or ran kernels on dev;
 * returns how many there are (may exceed max). */
unsigned gf_simstate_processes(gf_simstate *s, unsigned dev, uint64_t window_ns,
                               gf_sim_proc_usage *out, unsigned max);

/* The sample window NVML uses for utilization: GPUFUSE_SIM_UTIL_WINDOW_MS, default 500 ms. */
uint64_t gf_simstate_util_window_ns(void);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t gf_sim_now_ns(void);

#endif
