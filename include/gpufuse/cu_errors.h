/* SPDX-License-Identifier: Apache-2.0 */
/* Names and descriptions of the driver's results (CUresult, as int so that no cuda.h is needed):
 * what cuGetErrorName / cuGetErrorString answer, for the sim and for the remote backend. */
#ifndef GPUFUSE_CU_ERRORS_H
#define GPUFUSE_CU_ERRORS_H

/* "CUDA_ERROR_OUT_OF_MEMORY", or NULL for a code cuda.h does not define. */
const char *gf_cu_error_name(int code);
/* "out of memory" (the real driver's text where known, else cuda.h's first sentence), or NULL. */
const char *gf_cu_error_string(int code);

#endif
