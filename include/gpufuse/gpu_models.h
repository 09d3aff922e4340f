/* SPDX-License-Identifier: Apache-2.0 */
/* The table of GPU models (VRAM, SMs, FP16 TFLOPs, clocks, power), generated from
 * data/gpu_models.csv: how gpufuse converts between TFLOPs and a share of a card, what the sim
 * pretends to be, and what a GPU discovered through NVML is. See docs/gpu-models.md. */
#ifndef GPUFUSE_GPU_MODELS_H
#define GPUFUSE_GPU_MODELS_H

#include <stdint.h>

/* One GPU model. Every string is static; nothing here is ever freed. */
typedef struct gf_gpu_model {
    const char *key;            /* short name used in flags and env vars: "H100", "A100-80G" */
    const char *name;           /* as NVML/the driver reports it: "NVIDIA H100 80GB HBM3" */
    uint64_t vram_bytes;        /* total memory as the driver reports it */
    uint32_t sm_count;
    uint32_t cc_major, cc_minor;
    double fp16_tflops;         /* dense FP16 tensor TFLOPs (FP32 accumulate, no sparsity) */
    uint32_t clock_mhz;         /* max SM clock */
    uint32_t mem_clock_mhz;     /* max memory clock */
    uint32_t mem_bus_width;     /* bits */
    uint32_t tdp_watts;
    const char *source;         /* datasheet / whitepaper the numbers come from */
} gf_gpu_model;

/* Number of models in the table (at least one). */
unsigned gf_gpu_model_count(void);

/* The i-th model in table order, or NULL when i >= gf_gpu_model_count(). */
const gf_gpu_model *gf_gpu_model_at(unsigned i);

/* Finds a model by, in order of preference: its key (case-insensitive: "h100", "A100-80G"), its
 * full name (case-insensitive: "Tesla T4"), or a driver-reported name that names the model
 * ("NVIDIA H100 PCIe" -> H100, "NVIDIA A100-PCIE-40GB" -> A100-40G): the key's first part must
 * be a word of the name ("RTX4090" may be split as "RTX 4090") and each further part ("40G")
 * must start a word of it; the model matching the most parts wins, and a tie is no match.
 * Returns NULL when nothing matches or key_or_name is NULL. */
const gf_gpu_model *gf_gpu_model_find(const char *key_or_name);

#endif
