/* SPDX-License-Identifier: Apache-2.0 */
/* A whole file, NUL-terminated and malloc'ed (the caller frees it), or NULL: for test helper
 * programs and benchmarks that load PTX and other inputs. */
#ifndef GF_TEST_READ_FILE_H
#define GF_TEST_READ_FILE_H

#include <stdio.h>
#include <stdlib.h>

static inline char *gf_read_whole_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (b) b[n] = 0;
    fclose(f);
    return b;
}

#endif
