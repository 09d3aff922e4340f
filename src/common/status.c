/* SPDX-License-Identifier: Apache-2.0 */
/* Names and messages for gf_status, generated from GF_STATUS_MAP. */
#include "gpufuse/status.h"

const char *gf_strerror(gf_status s)
{
    switch (s) {
#define GF__STATUS_TEXT(name, num, text)                                                      \
    case name:                                                                                \
        return text;
        GF_STATUS_MAP(GF__STATUS_TEXT)
#undef GF__STATUS_TEXT
    }
    return "unknown status";
}

const char *gf_status_name(gf_status s)
{
    switch (s) {
#define GF__STATUS_NAME(name, num, text)                                                      \
    case name:                                                                                \
        return #name;
        GF_STATUS_MAP(GF__STATUS_NAME)
#undef GF__STATUS_NAME
    }
    return "GF_UNKNOWN";
}
