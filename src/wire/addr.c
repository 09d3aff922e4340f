/* SPDX-License-Identifier: Apache-2.0 */
/* Remote addresses (tcp://, tls://, shm://), connection options and GPUFUSE_REMOTE_TIMEOUT:
 * parsing with messages that name the value and the fix. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "gpufuse/units.h"
#include "wire/wire_internal.h"

void gf_wire_opts_init(gf_wire_opts *o)
{
    memset(o, 0, sizeof *o);
    o->timeout_ms = GF_WIRE_TIMEOUT_MS_DEFAULT;
    o->max_payload = GF_WIRE_MAX_PAYLOAD_DEFAULT;
    o->max_queue = 256u << 20;
    o->sockbuf_bytes = 4 << 20;
    o->shm_ring_bytes = 8u << 20;
}

static int shm_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') return 0;
    return 1;
}

static gf_status parse_hostport(const char *what, const char *text, const char *rest,
                                gf_wire_addr *out, char *err, size_t errlen)
{
    const char *colon;
    if (rest[0] == '[') {
        const char *close = strchr(rest, ']');
        if (!close || close[1] != ':')
            return gf_wire__err(err, errlen, GF_EINVAL,
                                "%s=\"%s\": an IPv6 address needs brackets and a port, e.g. "
                                "tcp://[::1]:7000",
                                what, text);
        size_t n = (size_t)(close - rest - 1);
        if (n == 0 || n >= sizeof out->host)
            return gf_wire__err(err, errlen, GF_EINVAL, "%s=\"%s\": bad IPv6 host", what, text);
        memcpy(out->host, rest + 1, n);
        out->host[n] = 0;
        colon = close + 1;
    } else {
        colon = strrchr(rest, ':');
        if (!colon)
            return gf_wire__err(err, errlen, GF_EINVAL,
                                "%s=\"%s\": missing port; use HOST:PORT, e.g. tcp://gpu-node:7000",
                                what, text);
        size_t n = (size_t)(colon - rest);
        if (memchr(rest, ':', n))
            return gf_wire__err(err, errlen, GF_EINVAL,
                                "%s=\"%s\": an IPv6 address needs brackets, e.g. tcp://[::1]:7000",
                                what, text);
        if (n == 0 || n >= sizeof out->host)
            return gf_wire__err(err, errlen, GF_EINVAL, "%s=\"%s\": missing or too long host",
                                what, text);
        memcpy(out->host, rest, n);
        out->host[n] = 0;
    }
    const char *port = colon + 1;
    char *end;
    unsigned long v = strtoul(port, &end, 10);
    if (!*port || *end || !isdigit((unsigned char)*port) || v > 65535)
        return gf_wire__err(err, errlen, GF_EINVAL,
                            "%s=\"%s\": port \"%s\" is not a number in 0-65535", what, text,
                            port);
    out->port = (uint16_t)v;
    return GF_OK;
}

gf_status gf_wire_parse_addr(const char *what, const char *text, gf_wire_addr *out, char *err,
                             size_t errlen)
{
    if (!what) what = "address";
    memset(out, 0, sizeof *out);
    if (!text || !*text)
        return gf_wire__err(err, errlen, GF_EINVAL,
                            "%s is empty; use tcp://HOST:PORT, tls://HOST:PORT or shm://NAME",
                            what);
    const char *sep = strstr(text, "://");
    if (!sep)
        return gf_wire__err(err, errlen, GF_EINVAL,
                            "%s=\"%s\": missing scheme; use tcp://HOST:PORT, tls://HOST:PORT "
                            "or shm://NAME",
                            what, text);
    size_t sl = (size_t)(sep - text);
    const char *rest = sep + 3;
    if (sl == 3 && !strncmp(text, "tcp", 3)) {
        out->scheme = GF_WIRE_TCP;
        return parse_hostport(what, text, rest, out, err, errlen);
    }
    if (sl == 3 && !strncmp(text, "tls", 3)) {
        out->scheme = GF_WIRE_TLS;
        return parse_hostport(what, text, rest, out, err, errlen);
    }
    if (sl == 3 && !strncmp(text, "shm", 3)) {
        out->scheme = GF_WIRE_SHM;
        if (rest[0] == '/') {
            if (strlen(rest) >= sizeof out->path)
                return gf_wire__err(err, errlen, GF_EINVAL,
                                    "%s=\"%s\": socket path longer than %zu bytes", what, text,
                                    sizeof out->path - 1);
            snprintf(out->path, sizeof out->path, "%s", rest);
            return GF_OK;
        }
        if (!shm_name_ok(rest))
            return gf_wire__err(err, errlen, GF_EINVAL,
                                "%s=\"%s\": shm name \"%s\" must be 1-64 of [A-Za-z0-9._-] (or "
                                "an absolute socket path: shm:///run/gpufuse.sock)",
                                what, text, rest);
        snprintf(out->path, sizeof out->path, "@gpufuse-%s", rest);
        return GF_OK;
    }
    return gf_wire__err(err, errlen, GF_EINVAL,
                        "%s=\"%s\": unknown scheme \"%.*s\"; use tcp://, tls:// or shm://", what,
                        text, (int)(sl > 32 ? 32 : sl), text);
}

gf_status gf_wire_timeout_from_env(int *ms, char *err, size_t errlen)
{
    *ms = GF_WIRE_TIMEOUT_MS_DEFAULT;
    const char *v = getenv(GF_WIRE_TIMEOUT_ENV);
    if (!v || !*v) return GF_OK;
    uint64_t ns;
    gf_status st = gf_parse_duration_ns(GF_WIRE_TIMEOUT_ENV, v, &ns, err, errlen);
    if (st != GF_OK) return st;
    if (ns < 1000000ull || ns > 86400ull * 1000000000ull)
        return gf_wire__err(err, errlen, GF_ERANGE,
                            "%s=\"%s\": must be between 1ms and 24h (e.g. 5s)",
                            GF_WIRE_TIMEOUT_ENV, v);
    *ms = (int)(ns / 1000000ull);
    return GF_OK;
}
