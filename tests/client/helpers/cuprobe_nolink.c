/* SPDX-License-Identifier: Apache-2.0 */
/* cuprobe without -lcuda: the driver is reached only by dlopen/dlsym or cuGetProcAddress. */
#define CUPROBE_NOLINK 1
#include "cuprobe.c"
