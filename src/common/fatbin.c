/* SPDX-License-Identifier: Apache-2.0 */
/* Parsing of CUDA images: PTX text, fat binaries (with zstd / LZ4 compressed entries), the
 * runtime's fatbin wrapper and ELF cubins. See include/gpufuse/fatbin.h. */
#include "gpufuse/fatbin.h"

#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define FATBIN_HEADER_MIN 16u
#define ENTRY_HEADER_MIN 64u

static uint16_t rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static int is_text_byte(uint8_t c)
{
    return c == '\t' || c == '\n' || c == '\r' || c == '\f' || (c >= 0x20 && c < 0x7f);
}

gf_image_kind gf_image_kind_of(const void *image, size_t avail)
{
    const uint8_t *p = image;
    if (!p || avail == 0) return GF_IMAGE_UNKNOWN;
    if (avail >= 4) {
        uint32_t m = rd32(p);
        if (m == GF_FATBIN_MAGIC) return GF_IMAGE_FATBIN;
        if (m == GF_FATBIN_WRAPPER_MAGIC) return avail >= 16 ? GF_IMAGE_WRAPPER : GF_IMAGE_UNKNOWN;
        if (memcmp(p, "\x7f" "ELF", 4) == 0) return GF_IMAGE_ELF;
    }
    /* PTX is text; look at the first bytes up to a NUL */
    size_t n = 0;
    while (n < avail && n < 64 && p[n]) {
        if (!is_text_byte(p[n])) return GF_IMAGE_UNKNOWN;
        n++;
    }
    return n > 0 ? GF_IMAGE_PTX : GF_IMAGE_UNKNOWN;
}

static const void *wrapper_target(const void *image)
{
    const void *fb;
    memcpy(&fb, (const uint8_t *)image + 8, sizeof fb);
    return fb;
}

static int fatbin_size(const uint8_t *p, size_t avail, size_t *size)
{
    if (avail < FATBIN_HEADER_MIN || rd32(p) != GF_FATBIN_MAGIC) return -1;
    uint16_t hs = rd16(p + 6);
    uint64_t es = rd64(p + 8);
    if (hs < FATBIN_HEADER_MIN || es > SIZE_MAX - hs) return -1;
    if ((uint64_t)hs + es > avail) return -1;
    *size = (size_t)(hs + es);
    return 0;
}

static int elf_size(const uint8_t *p, size_t avail, size_t *size)
{
    if (avail < 52 || memcmp(p, "\x7f" "ELF", 4) != 0) return -1;
    uint64_t end = 0;
    if (p[4] == 2) { /* ELFCLASS64 */
        if (avail < 64) return -1;
        uint64_t phoff = rd64(p + 0x20), shoff = rd64(p + 0x28);
        uint16_t phes = rd16(p + 0x36), phn = rd16(p + 0x38), shes = rd16(p + 0x3a), shn = rd16(p + 0x3c);
        end = 64;
        if (phoff + (uint64_t)phes * phn > end) end = phoff + (uint64_t)phes * phn;
        if (shoff + (uint64_t)shes * shn > end) end = shoff + (uint64_t)shes * shn;
        if (shes >= 64 && shoff + (uint64_t)shes * shn <= avail) {
            for (unsigned i = 0; i < shn; i++) {
                const uint8_t *sh = p + shoff + (uint64_t)i * shes;
                uint32_t type = rd32(sh + 4);
                uint64_t off = rd64(sh + 0x18), sz = rd64(sh + 0x20);
                if (type != 8 /* SHT_NOBITS */ && off + sz > end) end = off + sz;
            }
        }
    } else if (p[4] == 1) { /* ELFCLASS32 */
        uint32_t phoff = rd32(p + 0x1c), shoff = rd32(p + 0x20);
        uint16_t phes = rd16(p + 0x2a), phn = rd16(p + 0x2c), shes = rd16(p + 0x2e), shn = rd16(p + 0x30);
        end = 52;
        if ((uint64_t)phoff + (uint64_t)phes * phn > end) end = (uint64_t)phoff + (uint64_t)phes * phn;
        if ((uint64_t)shoff + (uint64_t)shes * shn > end) end = (uint64_t)shoff + (uint64_t)shes * shn;
        if (shes >= 40 && (uint64_t)shoff + (uint64_t)shes * shn <= avail) {
            for (unsigned i = 0; i < shn; i++) {
                const uint8_t *sh = p + shoff + (uint64_t)i * shes;
                uint32_t type = rd32(sh + 4), off = rd32(sh + 0x10), sz = rd32(sh + 0x14);
                if (type != 8 && (uint64_t)off + sz > end) end = (uint64_t)off + sz;
            }
        }
    } else {
        return -1;
    }
    if (end > avail) return -1;
    *size = (size_t)end;
    return 0;
}

int gf_image_size(const void *image, size_t avail, size_t *size)
{
    const uint8_t *p = image;
    switch (gf_image_kind_of(image, avail)) {
    case GF_IMAGE_PTX: {
        const uint8_t *z = memchr(p, 0, avail);
        if (!z) return -1;
        *size = (size_t)(z - p) + 1;
        return 0;
    }
    case GF_IMAGE_FATBIN: return fatbin_size(p, avail, size);
    case GF_IMAGE_WRAPPER: {
        const void *fb = wrapper_target(image);
        if (!fb) return -1;
        return fatbin_size(fb, SIZE_MAX, size);
    }
    case GF_IMAGE_ELF: return elf_size(p, avail, size);
    default: return -1;
    }
}

gf_fatbin_rc gf_fatbin_entries(const void *fatbin, size_t avail, gf_fatbin_entry *out, unsigned max,
                               unsigned *count)
{
    const uint8_t *p = fatbin;
    size_t total;
    *count = 0;
    if (fatbin_size(p, avail, &total) != 0) return GF_FATBIN_BAD;
    size_t off = rd16(p + 6);
    unsigned n = 0;
    while (off < total) {
        if (total - off < ENTRY_HEADER_MIN) return GF_FATBIN_BAD;
        const uint8_t *e = p + off;
        uint32_t hs = rd32(e + 4);
        uint64_t psz = rd64(e + 8);
        if (hs < ENTRY_HEADER_MIN || hs > total - off || psz > total - off - hs) return GF_FATBIN_BAD;
        if (n < max) {
            gf_fatbin_entry *x = &out[n];
            x->kind = rd16(e);
            x->arch = rd32(e + 28);
            x->flags = rd64(e + 40);
            x->payload = e + hs;
            x->payload_size = psz;
            x->compressed_size = rd32(e + 16);
            x->uncompressed_size = hs >= 64 ? rd64(e + 56) : 0;
        }
        n++;
        off += hs + psz;
    }
    *count = n;
    return GF_FATBIN_OK;
}

gf_fatbin_rc gf_fatbin_entry_data(const gf_fatbin_entry *e, uint8_t **out, size_t *len, char *err,
                                  size_t errlen)
{
    uint8_t *buf;
    size_t n;
    int zstd = (e->flags & GF_FATBIN_FLAG_ZSTD) != 0, lz4 = (e->flags & GF_FATBIN_FLAG_LZ4) != 0;
    if (zstd || lz4) {
        uint64_t csz = e->compressed_size ? e->compressed_size : e->payload_size;
        uint64_t usz = e->uncompressed_size;
        if (csz > e->payload_size || usz == 0 || usz > (1ull << 31)) {
            snprintf(err, errlen, "fatbin entry (sm_%u): bad compressed sizes %llu -> %llu", e->arch,
                     (unsigned long long)csz, (unsigned long long)usz);
            return GF_FATBIN_BAD;
        }
        buf = malloc(usz + 1);
        if (!buf) return GF_FATBIN_NOMEM;
        if (zstd) {
            size_t r = ZSTD_decompress(buf, usz, e->payload, csz);
            if (ZSTD_isError(r)) {
                snprintf(err, errlen, "fatbin entry (sm_%u): zstd: %s", e->arch, ZSTD_getErrorName(r));
                free(buf);
                return GF_FATBIN_BAD;
            }
            n = r;
        } else {
            int r = LZ4_decompress_safe((const char *)e->payload, (char *)buf, (int)csz, (int)usz);
            if (r < 0) {
                snprintf(err, errlen, "fatbin entry (sm_%u): corrupt LZ4 data", e->arch);
                free(buf);
                return GF_FATBIN_BAD;
            }
            n = (size_t)r;
        }
    } else {
        n = e->payload_size;
        buf = malloc(n + 1);
        if (!buf) return GF_FATBIN_NOMEM;
        memcpy(buf, e->payload, n);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return GF_FATBIN_OK;
}

#define MAX_ENTRIES 256

static gf_fatbin_rc fatbin_ptx(const void *fb, size_t avail, unsigned max_arch, char **ptx,
                               size_t *len, unsigned *arch, char *err, size_t errlen)
{
    gf_fatbin_entry *ents = malloc(MAX_ENTRIES * sizeof *ents);
    if (!ents) return GF_FATBIN_NOMEM;
    unsigned n;
    gf_fatbin_rc rc = gf_fatbin_entries(fb, avail, ents, MAX_ENTRIES, &n);
    if (rc) {
        snprintf(err, errlen, "malformed fat binary");
        free(ents);
        return rc;
    }
    if (n > MAX_ENTRIES) n = MAX_ENTRIES;
    int best = -1;
    char have[256] = "";
    size_t hl = 0;
    for (unsigned i = 0; i < n; i++) {
        if (hl < sizeof have - 24)
            hl += (size_t)snprintf(have + hl, sizeof have - hl, "%s%s_%u", hl ? ", " : "",
                                   ents[i].kind == GF_FATBIN_KIND_PTX ? "compute" : "sm", ents[i].arch);
        if (ents[i].kind != GF_FATBIN_KIND_PTX || ents[i].arch > max_arch) continue;
        if (best < 0 || ents[i].arch > ents[best].arch) best = (int)i;
    }
    if (best < 0) {
        snprintf(err, errlen, "no PTX for compute capability %u.%u in the fat binary (it holds: %s)",
                 max_arch / 10, max_arch % 10, hl ? have : "nothing");
        free(ents);
        return GF_FATBIN_NO_PTX;
    }
    uint8_t *data;
    size_t dlen;
    rc = gf_fatbin_entry_data(&ents[best], &data, &dlen, err, errlen);
    if (!rc) {
        *ptx = (char *)data;
        *len = strnlen((char *)data, dlen);
        *arch = ents[best].arch;
    }
    free(ents);
    return rc;
}

gf_fatbin_rc gf_image_extract_ptx(const void *image, size_t avail, unsigned max_arch, char **ptx,
                                  size_t *len, unsigned *arch, char *err, size_t errlen)
{
    if (errlen) err[0] = 0;
    switch (gf_image_kind_of(image, avail)) {
    case GF_IMAGE_PTX: {
        size_t sz;
        if (gf_image_size(image, avail, &sz) != 0) {
            snprintf(err, errlen, "PTX text is not NUL-terminated");
            return GF_FATBIN_BAD;
        }
        char *t = malloc(sz);
        if (!t) return GF_FATBIN_NOMEM;
        memcpy(t, image, sz);
        *ptx = t;
        *len = sz - 1;
        *arch = 0;
        return GF_FATBIN_OK;
    }
    case GF_IMAGE_FATBIN: return fatbin_ptx(image, avail, max_arch, ptx, len, arch, err, errlen);
    case GF_IMAGE_WRAPPER: {
        const void *fb = wrapper_target(image);
        if (!fb) {
            snprintf(err, errlen, "fatbin wrapper with a NULL fatbin pointer");
            return GF_FATBIN_BAD;
        }
        return fatbin_ptx(fb, SIZE_MAX, max_arch, ptx, len, arch, err, errlen);
    }
    case GF_IMAGE_ELF:
        snprintf(err, errlen, "an ELF cubin holds only SASS");
        return GF_FATBIN_NO_PTX;
    default:
        snprintf(err, errlen, "not PTX, a fat binary or a cubin");
        return GF_FATBIN_BAD;
    }
}
