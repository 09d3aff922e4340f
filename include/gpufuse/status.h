/* SPDX-License-Identifier: Apache-2.0 */
/* gf_status: the status codes of gpufuse's own (non-CUDA) functions, from one frozen list. */
#ifndef GPUFUSE_STATUS_H
#define GPUFUSE_STATUS_H

/* Numbers are frozen: append new codes, never renumber or reuse a retired slot. */
#define GF_STATUS_MAP(X)                                                                      \
    X(GF_OK, 0, "success")                                                                    \
    X(GF_EINVAL, 1, "invalid argument")                                                       \
    X(GF_ENOMEM, 2, "out of host memory")                                                     \
    X(GF_ENOENT, 3, "not found")                                                              \
    X(GF_EEXIST, 4, "already exists")                                                         \
    X(GF_EIO, 5, "I/O error")                                                                 \
    X(GF_ERANGE, 6, "value out of range")                                                     \
    X(GF_EPROTO, 7, "protocol error")                                                         \
    X(GF_ETIMEDOUT, 8, "timed out")                                                           \
    X(GF_EPERM, 9, "permission denied")                                                       \
    X(GF_EBUSY, 10, "resource busy")                                                          \
    X(GF_ENOSPC, 11, "no capacity left")                                                      \
    X(GF_ENOTSUP, 12, "not supported")                                                        \
    X(GF_ECLOSED, 13, "connection closed")

typedef enum gf_status {
#define GF__STATUS_ENUM(name, num, text) name = num,
    GF_STATUS_MAP(GF__STATUS_ENUM)
#undef GF__STATUS_ENUM
} gf_status;

/* "invalid argument"; "unknown status" for a number not in the list. Static strings. */
const char *gf_strerror(gf_status s);
/* "GF_EINVAL"; "GF_UNKNOWN" for a number not in the list. */
const char *gf_status_name(gf_status s);

#endif
