/* SPDX-License-Identifier: Apache-2.0 */
/* PCI bus ids as cuDeviceGetByPCIBusId takes them: "domain:bus:device.function" or
 * "bus:device.function", hexadecimal (the sim and the remote backend). */
#ifndef GPUFUSE_PCI_H
#define GPUFUSE_PCI_H

#include <stdio.h>

/* 0 and the parts, or -1 when s is not such an id (then CUDA_ERROR_INVALID_VALUE). */
static inline int gf_pci_parse(const char *s, unsigned *dom, unsigned *bus, unsigned *devn,
                               unsigned *fn)
{
    unsigned a, b, c, d;
    char tail;
    if (sscanf(s, "%x:%x:%x.%x%c", &a, &b, &c, &d, &tail) == 4) {
        *dom = a, *bus = b, *devn = c, *fn = d;
        return 0;
    }
    if (sscanf(s, "%x:%x.%x%c", &b, &c, &d, &tail) == 3) {
        *dom = 0, *bus = b, *devn = c, *fn = d;
        return 0;
    }
    return -1;
}

#endif
