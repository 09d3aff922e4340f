/* SPDX-License-Identifier: Apache-2.0 */
/* gf_cuda_procaddr_resolve: cuGetProcAddress's (name, version, flags) -> symbol lookup over the
 * generated table of build/gen/cuda_procaddr.h (rows sorted by name, then version). */
#include "gpufuse/cuda_procaddr.h"

#include <stddef.h>
#include <string.h>

#include "cuda_procaddr.h" /* generated: gf_cuda_procaddr_table[] */

/* Index of the first row whose name is >= name (strcmp order), the classic lower bound. */
static size_t lower_bound(const char *name)
{
    size_t lo = 0, hi = gf_cuda_procaddr_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(gf_cuda_procaddr_table[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Is sym exactly base followed by "_ptds" or "_ptsz"? The generator builds every flavored
 * symbol that way, so this ties a per-thread row to the plain ABI it shadows. */
static int is_flavor_of(const char *sym, const char *base)
{
    size_t n = strlen(base);
    return strncmp(sym, base, n) == 0 &&
           (strcmp(sym + n, "_ptds") == 0 || strcmp(sym + n, "_ptsz") == 0);
}

int gf_cuda_procaddr_resolve(const char *name, int cuda_version, unsigned long long flags,
                             const char **symbol_out)
{
    const struct gf_cuda_procaddr *plain = NULL, *flavored = NULL;
    size_t i;

    if (symbol_out) *symbol_out = NULL;
    if (!name) return GF_PROCADDR_SYMBOL_NOT_FOUND;
    i = lower_bound(name);
    if (i == gf_cuda_procaddr_count || strcmp(gf_cuda_procaddr_table[i].name, name) != 0)
        return GF_PROCADDR_SYMBOL_NOT_FOUND;

    /* Rows of one name are in ascending version: the last fitting one of each kind wins. */
    for (; i < gf_cuda_procaddr_count && strcmp(gf_cuda_procaddr_table[i].name, name) == 0; i++) {
        const struct gf_cuda_procaddr *r = &gf_cuda_procaddr_table[i];
        if (r->version > cuda_version) break;
        if (r->stream_flavor == GF_PROC_NONE)
            plain = r;
        else
            flavored = r;
    }
    if (!plain) return GF_PROCADDR_VERSION_NOT_SUFFICIENT;

    /* A per-thread variant only counts if it is the same ABI as the plain answer: at 13000 a
     * name whose newest ABI has no _ptsz twin must not fall back to an older ABI's _ptsz. */
    if ((flags & GF_PROCADDR_FLAG_PER_THREAD_DEFAULT_STREAM) && flavored &&
        is_flavor_of(flavored->symbol, plain->symbol)) {
        if (symbol_out) *symbol_out = flavored->symbol;
        return GF_PROCADDR_FOUND;
    }
    if (symbol_out) *symbol_out = plain->symbol;
    return GF_PROCADDR_FOUND;
}
