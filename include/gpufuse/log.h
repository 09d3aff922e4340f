/* SPDX-License-Identifier: Apache-2.0 */
/* Logging for every gpufuse component: one line per event on stderr, filtered by GPUFUSE_LOG. */
#ifndef GPUFUSE_LOG_H
#define GPUFUSE_LOG_H

#include <stdatomic.h>

typedef enum gf_log_level {
    GF_LOG_ERROR = 0,
    GF_LOG_WARN = 1,
    GF_LOG_INFO = 2,
    GF_LOG_DEBUG = 3,
} gf_log_level;

/* Writes "gpufuse[<component>:<pid>] <level>: <message>\n" to stderr in one write(2), when
 * level is at or below GPUFUSE_LOG (error|warn|info|debug; default warn). Safe from any
 * thread; never allocates more than a fixed stack buffer; long messages are cut. */
void gf_log(gf_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Nonzero when a message at level would be written. */
int gf_log_enabled(gf_log_level level);

/* Logs at most once per call site for the life of the process (e.g. "cuFoo is not supported"). */
#define GF_LOG_ONCE(level, component, ...)                                                    \
    do {                                                                                      \
        static atomic_int gf__once_;                                                          \
        if (atomic_exchange(&gf__once_, 1) == 0) gf_log((level), (component), __VA_ARGS__);   \
    } while (0)

#endif
