/* Matrix-product kernels, one per instruction set, all with the same contract:
 * y[r*ys + o] = (accumulate ? y[r*ys + o] : 0) + b[o] + sum_i x[r*xs + i] * W[o, i]
 * for r < rows and o_begin <= o < o_end. */
#ifndef RS_GEMM_H
#define RS_GEMM_H

#include "rs_model.h"

typedef void (*rs_gemm_fn)(const rs_linear *L, int rows, const float *x, int xs, float *y,
                           int ys, int accumulate, int o_begin, int o_end);

void rs_gemm_portable(const rs_linear *L, int rows, const float *x, int xs, float *y, int ys,
                      int accumulate, int o_begin, int o_end);
void rs_gemm_avx2(const rs_linear *L, int rows, const float *x, int xs, float *y, int ys,
                  int accumulate, int o_begin, int o_end);
void rs_gemm_avx512(const rs_linear *L, int rows, const float *x, int xs, float *y, int ys,
                    int accumulate, int o_begin, int o_end);
int rs_gemm_x86_available(void);

/* Panel-packed variants (L->packed must be set); o_begin must be a multiple of 16. */
void rs_gemm_packed_avx512(const rs_linear *L, int rows, const float *x, int xs, float *y,
                           int ys, int accumulate, int o_begin, int o_end);
void rs_gemm_packed_avx2(const rs_linear *L, int rows, const float *x, int xs, float *y,
                         int ys, int accumulate, int o_begin, int o_end);
/* The same on AArch64 NEON (rs_gemm_neon.c, AArch64 builds only): bit-identical to the
 * two above. */
void rs_gemm_packed_neon(const rs_linear *L, int rows, const float *x, int xs, float *y,
                         int ys, int accumulate, int o_begin, int o_end);
/* How every panel kernel walks a product: outputs in blocks of panels sized for L2, and in
 * each block the rows in tiles of up to max_rows (by_rows[R] computes R rows over panels
 * [p0, p1)), so the weights stream from memory once per call (rs_gemm_packed.c). */
typedef void (*rs_panel_rows_fn)(const rs_linear *L, int p0, int p1, const float *x, int xs,
                                 float *y, int ys, int accumulate);
void rs_gemm_panels(const rs_panel_rows_fn *by_rows, int max_rows, const rs_linear *L,
                    int rows, const float *x, int xs, float *y, int ys, int accumulate,
                    int o_begin, int o_end);
/* W [out, in] -> a new 64-byte aligned panel buffer (free with rs_aligned_free()), NULL if no memory. */
float *rs_pack_weights(const float *w, int out, int in);
/* The same, and *nonfinite = whether W holds NaN or inf. */
float *rs_pack_weights_checked(const float *w, int out, int in, int *nonfinite);

#endif
