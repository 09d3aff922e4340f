/* SPDX-License-Identifier: Apache-2.0 */
/* Finding and loading the real driver libraries (libcuda.so.1, libnvidia-ml.so.1), never
 * gpufuse's own: shared by the client library, the NVML shim and gpufuse run. */
#ifndef GF_CLIENT_FINDLIB_H
#define GF_CLIENT_FINDLIB_H

#include <stddef.h>

/*
 * Loads the real library named base ("libcuda.so.1"): the path in environment variable env when
 * it is set (and then only that path), else the usual driver locations
 * (/usr/lib/x86_64-linux-gnu, /usr/lib64, /usr/local/nvidia/lib64, ...), else each directory of
 * LD_LIBRARY_PATH. A candidate that is the calling object's own file (same device and inode) or
 * that exports the symbol marker (gpufuse's libraries do) is skipped. dlopen_flags are passed
 * to dlopen. Returns the dlopen handle (path written into path_out), or NULL with a message in
 * err that names env and what was tried.
 */
void *gf_findlib_load(const char *env, const char *base, const char *marker, int dlopen_flags,
                      char *path_out, size_t path_len, char *err, size_t errlen);

#endif
