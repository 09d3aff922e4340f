/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the image reader (src/common/fatbin.c): on any bytes with their exact
 * length as the bound, kind and size detection, entry listing, decompression and PTX selection
 * must answer or fail cleanly, never read past the bytes (ASan sees the buffer's end) and never
 * allocate what a header's size fields merely claim. A wrapper's fatbin pointer is not bounded
 * by contract, so for a wrapper the target points it at the rest of the input, when that is a
 * well-formed fatbin within its bound. */
#include "gpufuse/fatbin.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every entry of a fatbin: its payload decompressed (or copied) within the entry's bounds. */
static void all_entries(const uint8_t *data, size_t size)
{
    gf_fatbin_entry ents[8];
    unsigned n;
    char err[256];
    if (gf_fatbin_entries(data, size, ents, 8, &n) != GF_FATBIN_OK) return;
    for (unsigned i = 0; i < n && i < 8; i++) {
        uint8_t *out;
        size_t len;
        if (gf_fatbin_entry_data(&ents[i], &out, &len, err, sizeof err) == GF_FATBIN_OK) {
            if (out[len] != 0) abort(); /* the promised NUL */
            free(out);
        }
    }
}

static void extract(const void *image, size_t avail)
{
    static const unsigned archs[] = {75, 80, 90, 120};
    char err[256];
    for (unsigned i = 0; i < sizeof archs / sizeof archs[0]; i++) {
        char *ptx = NULL;
        size_t len = 0;
        unsigned arch = 0;
        if (gf_image_extract_ptx(image, avail, archs[i], &ptx, &len, &arch, err, sizeof err) ==
            GF_FATBIN_OK) {
            if (ptx[len] != 0 || arch > archs[i]) abort();
            free(ptx);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t sz;
    gf_image_kind kind = gf_image_kind_of(data, size);
    if (kind != GF_IMAGE_WRAPPER) {
        if (gf_image_size(data, size, &sz) == 0 && sz > size) abort();
        all_entries(data, size);
        extract(data, size);
        return 0;
    }
    /* {magic, version, fatbin pointer, unused}: aim the pointer at the bytes after it. */
    const uint8_t *rest = data + 16;
    size_t rest_len = size - 16;
    if (gf_image_kind_of(rest, rest_len) != GF_IMAGE_FATBIN || gf_image_size(rest, rest_len, &sz))
        return 0;
    uint8_t *w = malloc(size);
    if (!w) return 0;
    memcpy(w, data, size);
    const void *target = w + 16;
    memcpy(w + 8, &target, sizeof target);
    if (gf_image_size(w, 16, &sz) != 0 || sz > rest_len) abort();
    extract(w, 16);
    free(w);
    return 0;
}
