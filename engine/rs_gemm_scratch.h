/* Per-thread scratch memory for the matrix kernels that convert their input rows before
 * the product (int8 quantizes them, bfloat16 rounds them): one buffer per thread, grown
 * when needed, freed at thread exit (rs_thread_memory.c, which keeps it
 * in the same per-thread record as the cache of call buffers). A kernel uses it for one product
 * at a time, so the kernels of one thread share it. */
#ifndef RS_GEMM_SCRATCH_H
#define RS_GEMM_SCRATCH_H

#include <stddef.h>

/* At least `size` bytes for this thread (valid until its next call); NULL when out of
 * memory. */
void *rs_gemm_scratch(size_t size);

#endif
