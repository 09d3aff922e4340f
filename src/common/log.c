/* SPDX-License-Identifier: Apache-2.0 */
/* gf_log: stderr logging with a level chosen by GPUFUSE_LOG, one write(2) per line. */
#include "gpufuse/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int log_level = -1;

static int parse_level(const char *s)
{
    if (!s || !*s) return GF_LOG_WARN;
    if (!strcmp(s, "error")) return GF_LOG_ERROR;
    if (!strcmp(s, "warn") || !strcmp(s, "warning")) return GF_LOG_WARN;
    if (!strcmp(s, "info")) return GF_LOG_INFO;
    if (!strcmp(s, "debug")) return GF_LOG_DEBUG;
    /* An unknown level is itself worth saying once, then treated as the default. */
    fprintf(stderr, "gpufuse: GPUFUSE_LOG=\"%s\": unknown level; use error, warn, info or debug\n",
            s);
    return GF_LOG_WARN;
}

int gf_log_enabled(gf_log_level level)
{
    int cur = atomic_load(&log_level);
    if (cur < 0) {
        cur = parse_level(getenv("GPUFUSE_LOG"));
        atomic_store(&log_level, cur);
    }
    return (int)level <= cur;
}

void gf_log(gf_log_level level, const char *component, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (!gf_log_enabled(level)) return;
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "gpufuse[%s:%d] %s: ", component ? component : "?",
                     (int)getpid(), names[level]);
    if (n < 0) return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof buf - 2) len = sizeof buf - 2;
    buf[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, len);
    (void)w;
}
