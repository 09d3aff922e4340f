/* SPDX-License-Identifier: Apache-2.0 */
/* The image reader (include/gpufuse/fatbin.h) on nvcc's own output in tests/kernels: kind and
 * size detection, entry listing, zstd / LZ4 / plain payloads, PTX selection by architecture,
 * and hostile images (every truncation, lying size fields, a wrapping ELF offset) that must
 * fail cleanly. Images sit in buffers of their exact length, so ASan sees any read past it. */
#include "gpufuse/fatbin.h"
#include "test.h"

#include <stdint.h>

/* tests/kernels/<file> in a malloc'ed buffer of exactly its length; the caller frees. */
static uint8_t *image(const char *file, size_t *len)
{
    char rel[128];
    snprintf(rel, sizeof rel, "tests/kernels/%s", file);
    char *s = gf_test_read_file(gf_test_path(rel), len);
    ASSERT_MSG(s != NULL, "cannot read %s (set GPUFUSE_TEST_DIR to the repo root)", rel);
    uint8_t *b = malloc(*len ? *len : 1);
    ASSERT_TRUE(b != NULL);
    memcpy(b, s, *len);
    free(s);
    return b;
}

static void wr64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

/* Offset of entry i of a well-formed fatbin. */
static size_t entry_offset(const uint8_t *fb, unsigned i)
{
    uint16_t hs;
    memcpy(&hs, fb + 6, 2);
    size_t off = hs;
    while (i--) {
        uint32_t ehs;
        uint64_t psz;
        memcpy(&ehs, fb + off + 4, 4);
        memcpy(&psz, fb + off + 8, 8);
        off += ehs + psz;
    }
    return off;
}

static char *entry_text(const gf_fatbin_entry *e)
{
    uint8_t *out = NULL;
    size_t len = 0;
    char err[256] = "";
    ASSERT_MSG(gf_fatbin_entry_data(e, &out, &len, err, sizeof err) == GF_FATBIN_OK,
               "entry sm_%u: %s", e->arch, err);
    ASSERT_EQ_INT(out[len], 0);
    return (char *)out;
}

static gf_fatbin_rc extract(const void *img, size_t avail, unsigned max_arch, unsigned *arch,
                            char *err, size_t errlen)
{
    char *ptx = NULL;
    size_t len = 0;
    gf_fatbin_rc rc = gf_image_extract_ptx(img, avail, max_arch, &ptx, &len, arch, err, errlen);
    if (rc == GF_FATBIN_OK) {
        ASSERT_EQ_INT(strlen(ptx), len);
        ASSERT_CONTAINS(ptx, ".entry");
        free(ptx);
    }
    return rc;
}

TEST(kind_of_each_image)
{
    size_t n;
    uint8_t *fb = image("vector_add_sm80.fatbin", &n);
    ASSERT_EQ_INT(gf_image_kind_of(fb, n), GF_IMAGE_FATBIN);
    uint8_t *cubin = image("vector_add_sm80.cubin", &n);
    ASSERT_EQ_INT(gf_image_kind_of(cubin, n), GF_IMAGE_ELF);
    ASSERT_EQ_INT(gf_image_kind_of(".version 8.0\n", 14), GF_IMAGE_PTX);
    const uint8_t wrapper[16] = {0xB1, 0x43, 0x62, 0x46, 1};
    ASSERT_EQ_INT(gf_image_kind_of(wrapper, 16), GF_IMAGE_WRAPPER);
    ASSERT_EQ_INT(gf_image_kind_of(wrapper, 15), GF_IMAGE_UNKNOWN); /* no room for its pointer */
    ASSERT_EQ_INT(gf_image_kind_of("\x01\x02\x03\x04", 4), GF_IMAGE_UNKNOWN);
    ASSERT_EQ_INT(gf_image_kind_of("", 1), GF_IMAGE_UNKNOWN);
    ASSERT_EQ_INT(gf_image_kind_of(fb, 0), GF_IMAGE_UNKNOWN);
    ASSERT_EQ_INT(gf_image_kind_of(NULL, 64), GF_IMAGE_UNKNOWN);
    free(fb);
    free(cubin);
}

TEST(size_of_each_image)
{
    static const char *const files[] = {"vector_add_sm80.fatbin", "vector_add_lz4.fatbin",
                                        "vector_add_nocomp.fatbin", "vector_add_sass90.fatbin",
                                        "saxpy_multi.fatbin", "vector_add_sm80.cubin"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t n, sz = 0;
        uint8_t *b = image(files[i], &n);
        ASSERT_MSG(gf_image_size(b, n, &sz) == 0 && sz == n, "%s: size %zu of %zu", files[i],
                   sz, n);
        /* One byte short of the whole image is malformed, not a shorter image. */
        ASSERT_MSG(gf_image_size(b, n - 1, &sz) == -1, "%s cut by one byte", files[i]);
        free(b);
    }
    size_t sz;
    ASSERT_EQ_INT(gf_image_size(".version 8.0\n", 14, &sz), 0);
    ASSERT_EQ_INT(sz, 14);
    ASSERT_EQ_INT(gf_image_size(".version 8.0\n", 13, &sz), -1); /* no NUL inside avail */
    ASSERT_EQ_INT(gf_image_size("\x01\x02\x03\x04", 4, &sz), -1);
}

TEST(wrapper_points_at_its_fatbin)
{
    size_t n;
    uint8_t *fb = image("saxpy_multi.fatbin", &n);
    uint8_t w[24] = {0xB1, 0x43, 0x62, 0x46, 1};
    const void *p = fb;
    memcpy(w + 8, &p, sizeof p);
    size_t sz;
    ASSERT_EQ_INT(gf_image_size(w, sizeof w, &sz), 0);
    ASSERT_EQ_INT(sz, n);
    unsigned arch = 0;
    char err[256];
    ASSERT_EQ_INT(extract(w, sizeof w, 90, &arch, err, sizeof err), GF_FATBIN_OK);
    ASSERT_EQ_INT(arch, 90);
    memset(w + 8, 0, 8);
    ASSERT_EQ_INT(gf_image_size(w, sizeof w, &sz), -1);
    ASSERT_EQ_INT(extract(w, sizeof w, 90, &arch, err, sizeof err), GF_FATBIN_BAD);
    ASSERT_CONTAINS(err, "NULL fatbin pointer");
    free(fb);
}

TEST(entries_of_each_fatbin)
{
    size_t n;
    gf_fatbin_entry e[4];
    unsigned count;
    uint8_t *fb = image("vector_add_sm80.fatbin", &n);
    ASSERT_EQ_INT(gf_fatbin_entries(fb, n, e, 4, &count), GF_FATBIN_OK);
    ASSERT_EQ_INT(count, 2);
    ASSERT_EQ_INT(e[0].kind, GF_FATBIN_KIND_ELF);
    ASSERT_EQ_INT(e[0].arch, 80);
    ASSERT_EQ_INT(e[1].kind, GF_FATBIN_KIND_PTX);
    ASSERT_EQ_INT(e[1].arch, 80);
    ASSERT_TRUE(e[1].flags & GF_FATBIN_FLAG_ZSTD);
    ASSERT_TRUE(e[1].payload >= fb && e[1].payload + e[1].payload_size <= fb + n);
    free(fb);

    fb = image("saxpy_multi.fatbin", &n);
    ASSERT_EQ_INT(gf_fatbin_entries(fb, n, e, 2, &count), GF_FATBIN_OK);
    ASSERT_EQ_INT(count, 3); /* all of them counted, two filled */
    ASSERT_EQ_INT(e[0].arch, 75);
    ASSERT_EQ_INT(e[1].arch, 90);
    ASSERT_EQ_INT(gf_fatbin_entries(fb, n - 1, e, 2, &count), GF_FATBIN_BAD);
    ASSERT_EQ_INT(count, 0);
    free(fb);
    uint8_t *cubin = image("vector_add_sm80.cubin", &n);
    ASSERT_EQ_INT(gf_fatbin_entries(cubin, n, e, 4, &count), GF_FATBIN_BAD); /* not a fatbin */
    free(cubin);
}

TEST(zstd_lz4_and_plain_payloads_hold_the_same_ptx)
{
    static const char *const files[] = {"vector_add_sm80.fatbin", "vector_add_lz4.fatbin",
                                        "vector_add_nocomp.fatbin"};
    char *text[3];
    for (int i = 0; i < 3; i++) {
        size_t n;
        uint8_t *fb = image(files[i], &n);
        gf_fatbin_entry e[4];
        unsigned count;
        ASSERT_EQ_INT(gf_fatbin_entries(fb, n, e, 4, &count), GF_FATBIN_OK);
        ASSERT_EQ_INT(count, 2);
        ASSERT_EQ_INT(e[1].kind, GF_FATBIN_KIND_PTX);
        text[i] = entry_text(&e[1]);
        ASSERT_CONTAINS(text[i], ".entry vector_add");
        free(fb);
    }
    ASSERT_EQ_STR(text[0], text[2]);
    ASSERT_EQ_STR(text[1], text[2]);
    for (int i = 0; i < 3; i++) free(text[i]);
}

TEST(ptx_selection_by_architecture)
{
    size_t n;
    uint8_t *fb = image("saxpy_multi.fatbin", &n);
    static const unsigned want[][2] = {{75, 75}, {80, 75}, {89, 75}, {90, 90}, {100, 100}, {120, 100}};
    char err[256];
    unsigned arch;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        arch = 0;
        ASSERT_EQ_INT(extract(fb, n, want[i][0], &arch, err, sizeof err), GF_FATBIN_OK);
        ASSERT_MSG(arch == want[i][1], "device %u: expected compute_%u, got %u", want[i][0],
                   want[i][1], arch);
    }
    ASSERT_EQ_INT(extract(fb, n, 70, &arch, err, sizeof err), GF_FATBIN_NO_PTX);
    ASSERT_EQ_STR(err, "no PTX for compute capability 7.0 in the fat binary (it holds: "
                       "compute_75, compute_90, compute_100)");
    free(fb);

    fb = image("vector_add_sass90.fatbin", &n);
    ASSERT_EQ_INT(extract(fb, n, 90, &arch, err, sizeof err), GF_FATBIN_NO_PTX);
    ASSERT_CONTAINS(err, "it holds: sm_90");
    free(fb);
    uint8_t *cubin = image("vector_add_sm80.cubin", &n);
    ASSERT_EQ_INT(extract(cubin, n, 80, &arch, err, sizeof err), GF_FATBIN_NO_PTX);
    ASSERT_CONTAINS(err, "only SASS");
    free(cubin);
    ASSERT_EQ_INT(extract("\x01\x02\x03\x04", 4, 80, &arch, err, sizeof err), GF_FATBIN_BAD);
    ASSERT_EQ_INT(extract(".version 8.0\n.entry k", 22, 80, &arch, err, sizeof err), GF_FATBIN_OK);
    ASSERT_EQ_INT(arch, 0);
}

/* Every prefix of every image: whatever the answer, nothing reads past the prefix. */
TEST(every_truncation_fails_cleanly)
{
    static const char *const files[] = {"vector_add_sm80.fatbin", "vector_add_lz4.fatbin",
                                        "saxpy_multi.fatbin", "vector_add_sm80.cubin"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t n;
        uint8_t *whole = image(files[f], &n);
        for (size_t cut = 0; cut < n; cut++) {
            uint8_t *b = malloc(cut ? cut : 1);
            memcpy(b, whole, cut);
            size_t sz;
            ASSERT_MSG(gf_image_size(b, cut, &sz) == -1, "%s cut at %zu has a size", files[f],
                       cut);
            unsigned count, arch;
            gf_fatbin_entry e[4];
            (void)gf_fatbin_entries(b, cut, e, 4, &count);
            char err[256];
            ASSERT_MSG(extract(b, cut, 90, &arch, err, sizeof err) != GF_FATBIN_OK,
                       "%s cut at %zu gave PTX", files[f], cut);
            free(b);
        }
        free(whole);
    }
}

TEST(lying_size_fields_are_refused)
{
    size_t n;
    gf_fatbin_entry e[4];
    unsigned count;
    char err[256];
    uint8_t *fb = image("vector_add_lz4.fatbin", &n);
    size_t off = entry_offset(fb, 1);
    /* An LZ4 entry claiming 1 GiB from 513 bytes: more than LZ4 can encode, refused before any
     * allocation. */
    wr64(fb + off + 56, 1ull << 30);
    ASSERT_EQ_INT(gf_fatbin_entries(fb, n, e, 4, &count), GF_FATBIN_OK);
    uint8_t *out;
    size_t len;
    ASSERT_EQ_INT(gf_fatbin_entry_data(&e[1], &out, &len, err, sizeof err), GF_FATBIN_BAD);
    ASSERT_CONTAINS(err, "bad compressed sizes 513 -> 1073741824");
    free(fb);

    /* A zstd entry claiming 2 GiB: memory follows the data, which ends after 921 bytes. */
    fb = image("vector_add_sm80.fatbin", &n);
    off = entry_offset(fb, 1);
    wr64(fb + off + 56, 1ull << 31);
    ASSERT_EQ_INT(gf_fatbin_entries(fb, n, e, 4, &count), GF_FATBIN_OK);
    ASSERT_EQ_INT(gf_fatbin_entry_data(&e[1], &out, &len, err, sizeof err), GF_FATBIN_OK);
    ASSERT_EQ_INT(len, 921); /* the PTX and its NUL */
    free(out);
    /* ... and one claiming less than the data holds is corrupt. */
    wr64(fb + off + 56, 100);
    ASSERT_EQ_INT(gf_fatbin_entries(fb, n, e, 4, &count), GF_FATBIN_OK);
    ASSERT_EQ_INT(gf_fatbin_entry_data(&e[1], &out, &len, err, sizeof err), GF_FATBIN_BAD);
    ASSERT_CONTAINS(err, "zstd");
    /* A total size past the buffer, an entry header larger than the image. */
    wr64(fb + 8, 1ull << 40);
    ASSERT_EQ_INT(gf_fatbin_entries(fb, n, e, 4, &count), GF_FATBIN_BAD);
    wr64(fb + 8, n - 16);
    uint32_t big = 0xffffff00u;
    memcpy(fb + off + 4, &big, 4);
    ASSERT_EQ_INT(gf_fatbin_entries(fb, n, e, 4, &count), GF_FATBIN_BAD);
    free(fb);
}

TEST(elf_offsets_that_wrap_are_malformed)
{
    size_t n, sz;
    uint8_t *cubin = image("vector_add_sm80.cubin", &n);
    wr64(cubin + 0x28, 0xfffffffffffffff0ull); /* e_shoff + the table wraps past 2^64 */
    ASSERT_EQ_INT(gf_image_size(cubin, n, &sz), -1);
    wr64(cubin + 0x28, 0);
    wr64(cubin + 0x20, UINT64_MAX); /* e_phoff */
    ASSERT_EQ_INT(gf_image_size(cubin, n, &sz), -1);
    free(cubin);
}
