/* int8 weight matrix products (per-output-row weight scales, per-row activation scales). */
#ifndef RS_GEMM_INT8_H
#define RS_GEMM_INT8_H

#include <stddef.h>

#include "rs_model.h"

/* Quantize L->w (or lay out the stored int8 L->wq) for this CPU's int8 kernel; sets L->qweight/qscale/qsum. *owned receives
 * the block to rs_aligned_free(). Returns 1 when out of memory, 2 when L->w holds NaN or
 * inf. */
int rs_quantize_linear(rs_linear *L, void **owned);

/* Same contract as rs_linear_forward for a quantized L; non-zero when out of memory. */
int rs_gemm_int8(const rs_linear *L, int rows, const float *x, int xs, float *y, int ys,
                 int accumulate);

/* Bytes of laid-out int8 weights per output row of a matrix (or part) with `in` inputs,
 * in every layout: a 16-output panel holds 16 rows, so output o (a multiple of 16) starts
 * o * rs_int8_row_bytes(in) bytes into qweight (rs_split.c views output ranges so). */
size_t rs_int8_row_bytes(int in);

/* "avx512-vnni", "avx2" or "portable". */
const char *rs_int8_isa(void);

#endif
