/* SPDX-License-Identifier: Apache-2.0 */
/* gpufuse help, version and models: the commands that need no GPU and no other process. */
#include <cuda.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "gpufuse/gpu_models.h"
#include "gpufuse/units.h"

#ifndef GPUFUSE_VERSION
#define GPUFUSE_VERSION "0.1.0"
#endif

int gf_cmd_help(int argc, char **argv)
{
    if (argc >= 2) {
        const struct gf_cli_command *c = gf_cli_find(argv[1]);
        if (!c) {
            fprintf(stderr, "gpufuse help: unknown command \"%s\"\n", argv[1]);
            return 2;
        }
        fputs(c->usage, stdout);
        return 0;
    }
    size_t n;
    const struct gf_cli_command *cmds = gf_cli_commands(&n);
    printf("usage: gpufuse COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < n; i++) printf("  %-10s %s\n", cmds[i].name, cmds[i].summary);
    printf("\n\"gpufuse help COMMAND\" or \"gpufuse COMMAND --help\" for more.\n");
    return 0;
}

int gf_cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("gpufuse %s (built against CUDA %d.%d)\n", GPUFUSE_VERSION, CUDA_VERSION / 1000,
           (CUDA_VERSION % 1000) / 10);
    return 0;
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

int gf_cmd_models(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc && !strcmp(argv[i + 1], "json")) {
            json = 1;
            i++;
        } else {
            fprintf(stderr, "gpufuse models: unexpected argument \"%s\"; usage: gpufuse models "
                            "[-o json]\n",
                    argv[i]);
            return 2;
        }
    }
    unsigned n = gf_gpu_model_count();
    if (json) {
        printf("[");
        for (unsigned i = 0; i < n; i++) {
            const gf_gpu_model *m = gf_gpu_model_at(i);
            printf("%s\n  {\"key\": ", i ? "," : "");
            json_str(m->key);
            printf(", \"name\": ");
            json_str(m->name);
            printf(", \"vram_bytes\": %llu, \"sm_count\": %u, \"compute_capability\": \"%u.%u\", "
                   "\"fp16_tflops\": %.2f, \"clock_mhz\": %u, \"source\": ",
                   (unsigned long long)m->vram_bytes, m->sm_count, m->cc_major, m->cc_minor,
                   m->fp16_tflops, m->clock_mhz);
            json_str(m->source);
            printf("}");
        }
        printf("\n]\n");
        return 0;
    }
    printf("%-10s %-32s %10s %5s %4s %11s\n", "MODEL", "NAME", "VRAM", "SMS", "CC",
           "FP16-TFLOPS");
    for (unsigned i = 0; i < n; i++) {
        const gf_gpu_model *m = gf_gpu_model_at(i);
        char vram[32], cc[16];
        gf_format_size(m->vram_bytes, vram, sizeof vram);
        snprintf(cc, sizeof cc, "%u.%u", m->cc_major, m->cc_minor);
        printf("%-10s %-32s %10s %5u %4s %11.1f\n", m->key, m->name, vram, m->sm_count, cc,
               m->fp16_tflops);
    }
    return 0;
}
