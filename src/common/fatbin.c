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

/* end = max(end, off + es * n); -1 when the sum does not fit in 64 bits (a hostile header). */
static int extend(uint64_t *end, uint64_t off, uint64_t es, uint64_t n)
{
    uint64_t span = es * n; /* both at most 16 bits wide */
    if (off > UINT64_MAX - span) return -1;
    if (off + span > *end) *end = off + span;
    return 0;
}

/* The extent of an ELF's headers and sections. Section headers are read only when the whole
 * table lies inside avail; the fields of one section header are at these offsets for each class. */
static int elf_size(const uint8_t *p, size_t avail, size_t *size)
{
    if (avail < 52 || memcmp(p, "\x7f" "ELF", 4) != 0) return -1;
    int is64 = p[4] == 2;
    if (!is64 && p[4] != 1) return -1; /* neither ELFCLASS64 nor ELFCLASS32 */
    if (is64 && avail < 64) return -1;
    uint64_t phoff = is64 ? rd64(p + 0x20) : rd32(p + 0x1c);
    uint64_t shoff = is64 ? rd64(p + 0x28) : rd32(p + 0x20);
    const uint8_t *f = p + (is64 ? 0x36 : 0x2a); /* e_phentsize, e_phnum, e_shentsize, e_shnum */
    uint16_t phes = rd16(f), phn = rd16(f + 2), shes = rd16(f + 4), shn = rd16(f + 6);
    uint64_t end = is64 ? 64 : 52;
    if (extend(&end, phoff, phes, phn) || extend(&end, shoff, shes, shn)) return -1;
    if (shes >= (is64 ? 64 : 40) && end <= avail) {
        for (unsigned i = 0; i < shn; i++) {
            const uint8_t *sh = p + shoff + (uint64_t)i * shes;
            uint32_t type = rd32(sh + 4);
            uint64_t off = is64 ? rd64(sh + 0x18) : rd32(sh + 0x10);
            uint64_t sz = is64 ? rd64(sh + 0x20) : rd32(sh + 0x14);
            if (type == 8 /* SHT_NOBITS */) continue;
            if (off > UINT64_MAX - sz) return -1;
            if (off + sz > end) end = off + sz;
        }
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

/* LZ4 spends at least one input byte per 255 output bytes: a larger claim is a lie. */
#define LZ4_MAX_RATIO 255u
/* The first output buffer for a zstd entry; it doubles as output comes, up to the entry's
 * uncompressed size, so memory follows what the data really holds, not what its header says. */
#define ZSTD_FIRST_OUT (64u * 1024)

static gf_fatbin_rc bad(const gf_fatbin_entry *e, char *err, size_t errlen, const char *what,
                        const char *detail)
{
    snprintf(err, errlen, "fatbin entry (sm_%u): %s%s", e->arch, what, detail);
    return GF_FATBIN_BAD;
}

static gf_fatbin_rc unzstd(const gf_fatbin_entry *e, uint64_t csz, uint64_t usz, uint8_t **out,
                           size_t *len, char *err, size_t errlen)
{
    ZSTD_DStream *z = ZSTD_createDStream();
    if (!z) return GF_FATBIN_NOMEM;
    gf_fatbin_rc rc = GF_FATBIN_OK;
    size_t cap = usz < ZSTD_FIRST_OUT ? (size_t)usz : ZSTD_FIRST_OUT;
    uint8_t *buf = malloc(cap + 1);
    ZSTD_inBuffer in = {e->payload, (size_t)csz, 0};
    ZSTD_outBuffer o = {buf, cap, 0};
    int done = 0;
    while (buf && !done) {
        size_t in0 = in.pos, out0 = o.pos;
        size_t r = ZSTD_decompressStream(z, &o, &in);
        if (ZSTD_isError(r)) {
            rc = bad(e, err, errlen, "zstd: ", ZSTD_getErrorName(r));
            break;
        }
        done = r == 0 && in.pos == in.size; /* every frame complete, all input used */
        if (done) break;
        if (o.pos < o.size) {
            if (in.pos == in.size || (in.pos == in0 && o.pos == out0)) {
                rc = bad(e, err, errlen, "zstd: ", "truncated frame");
                break;
            }
            continue;
        }
        if (cap >= usz) {
            rc = bad(e, err, errlen, "zstd: ", "more data than the entry's uncompressed size");
            break;
        }
        size_t ncap = cap > usz / 2 ? (size_t)usz : 2 * cap;
        uint8_t *nb = realloc(buf, ncap + 1);
        if (!nb) break;
        buf = nb;
        cap = ncap;
        o.dst = buf;
        o.size = cap;
    }
    ZSTD_freeDStream(z);
    if (rc == GF_FATBIN_OK && !done) rc = GF_FATBIN_NOMEM;
    if (rc != GF_FATBIN_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = o.pos;
    return GF_FATBIN_OK;
}

static gf_fatbin_rc unlz4(const gf_fatbin_entry *e, uint64_t csz, uint64_t usz, uint8_t **out,
                          size_t *len, char *err, size_t errlen)
{
    uint8_t *buf = malloc(usz + 1);
    if (!buf) return GF_FATBIN_NOMEM;
    int r = LZ4_decompress_safe((const char *)e->payload, (char *)buf, (int)csz, (int)usz);
    if (r < 0) {
        free(buf);
        return bad(e, err, errlen, "corrupt LZ4 data", "");
    }
    *out = buf;
    *len = (size_t)r;
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
        /* Sizes the decompressors take as int / size_t, and for LZ4 a ratio it can hold. */
        if (csz > e->payload_size || csz > INT32_MAX || usz == 0 || usz > (1ull << 31) ||
            (lz4 && !zstd && usz > csz * LZ4_MAX_RATIO + 16)) {
            snprintf(err, errlen, "fatbin entry (sm_%u): bad compressed sizes %llu -> %llu", e->arch,
                     (unsigned long long)csz, (unsigned long long)usz);
            return GF_FATBIN_BAD;
        }
        gf_fatbin_rc rc = zstd ? unzstd(e, csz, usz, &buf, &n, err, errlen)
                               : unlz4(e, csz, usz, &buf, &n, err, errlen);
        if (rc) return rc;
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
