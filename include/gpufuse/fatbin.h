/* SPDX-License-Identifier: Apache-2.0 */
/* Reading the images a CUDA program hands the driver: PTX text, NVIDIA fat binaries
 * (0xBA55ED50), the CUDA runtime's fatbin wrapper (0x466243B1) and ELF cubins.
 *
 * Used by the sim (to find PTX to run), the client library and the wire protocol (to know how
 * many bytes an image pointer covers before shipping it to a worker). Every function takes the
 * number of bytes known to be readable at the image (`avail`); pass SIZE_MAX when the image
 * comes from a program and its length is unknown, as with cuModuleLoadData. With a real bound
 * the parsers never read outside [image, image + avail), so they are safe on hostile input.
 */
#ifndef GPUFUSE_FATBIN_H
#define GPUFUSE_FATBIN_H

#include <stddef.h>
#include <stdint.h>

#define GF_FATBIN_MAGIC 0xBA55ED50u
#define GF_FATBIN_WRAPPER_MAGIC 0x466243B1u

#define GF_FATBIN_KIND_PTX 1u
#define GF_FATBIN_KIND_ELF 2u
#define GF_FATBIN_FLAG_LZ4 0x2000u
#define GF_FATBIN_FLAG_ZSTD 0x8000u

typedef enum gf_image_kind {
    GF_IMAGE_UNKNOWN = 0, /* none of the below: the driver answers CUDA_ERROR_INVALID_IMAGE */
    GF_IMAGE_PTX,         /* NUL-terminated PTX text */
    GF_IMAGE_FATBIN,
    GF_IMAGE_WRAPPER,     /* {u32 magic, u32 version, const void *fatbin, void *unused} */
    GF_IMAGE_ELF,         /* a cubin: SASS for one architecture */
} gf_image_kind;

typedef enum gf_fatbin_rc {
    GF_FATBIN_OK = 0,
    GF_FATBIN_BAD,        /* malformed or truncated image          -> CUDA_ERROR_INVALID_IMAGE */
    GF_FATBIN_NO_PTX,     /* only SASS, or PTX for newer GPUs only -> CUDA_ERROR_NO_BINARY_FOR_GPU */
    GF_FATBIN_NOMEM,
} gf_fatbin_rc;

/* One entry of a fat binary, as stored (payload may be compressed). */
typedef struct gf_fatbin_entry {
    unsigned kind;                /* GF_FATBIN_KIND_PTX or GF_FATBIN_KIND_ELF */
    unsigned arch;                /* compute capability * 10: 80 for sm_80 / compute_80 */
    uint64_t flags;               /* GF_FATBIN_FLAG_ZSTD, GF_FATBIN_FLAG_LZ4, ... */
    const uint8_t *payload;
    uint64_t payload_size;        /* bytes stored */
    uint64_t compressed_size;     /* 0 when not compressed */
    uint64_t uncompressed_size;   /* 0 when not compressed */
} gf_fatbin_entry;

/* What image is, from its first bytes. */
gf_image_kind gf_image_kind_of(const void *image, size_t avail);

/* Total bytes image covers: strlen + 1 for PTX, header + entries for a fatbin, the fatbin's size
 * for a wrapper (following its pointer, which is not bounded by avail), the extent of headers
 * and sections for an ELF. Returns 0, or -1 when the image is unknown or malformed. */
int gf_image_size(const void *image, size_t avail, size_t *size);

/* Lists the entries of a fat binary (not a wrapper). Fills up to max entries and sets *count to
 * how many there are. Returns GF_FATBIN_OK or GF_FATBIN_BAD. */
gf_fatbin_rc gf_fatbin_entries(const void *fatbin, size_t avail, gf_fatbin_entry *out, unsigned max,
                               unsigned *count);

/* Decompresses (or copies) an entry's payload into a new buffer with one extra NUL byte; the
 * caller frees *out. The header's uncompressed size is only a ceiling: zstd output grows as the
 * data really decompresses, and an LZ4 entry claiming more than LZ4 can encode (255 times its
 * compressed size) is refused before allocating. Returns GF_FATBIN_OK, GF_FATBIN_BAD (with err
 * filled) or GF_FATBIN_NOMEM. */
gf_fatbin_rc gf_fatbin_entry_data(const gf_fatbin_entry *e, uint8_t **out, size_t *len, char *err,
                                  size_t errlen);

/* Finds the PTX to run on a device of compute capability max_arch (e.g. 90): from PTX text as
 * is, or from a fatbin / wrapper the PTX entry with the highest arch <= max_arch. *ptx is a new
 * NUL-terminated string the caller frees; *len its strlen; *arch the entry's arch (0 for plain
 * text). Returns GF_FATBIN_OK, GF_FATBIN_BAD, GF_FATBIN_NO_PTX (err says what the image holds)
 * or GF_FATBIN_NOMEM. */
gf_fatbin_rc gf_image_extract_ptx(const void *image, size_t avail, unsigned max_arch, char **ptx,
                                  size_t *len, unsigned *arch, char *err, size_t errlen);

#endif
