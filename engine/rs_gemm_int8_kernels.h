/* Inside the int8 matrix products (rs_gemm_int8.c): the epilogue every kernel shares and
 * the kernels that live in files of their own. Every kernel sums the integer products
 * exactly and then applies rs_int8_finish, so all of them give bit-identical results. */
#ifndef RS_GEMM_INT8_KERNELS_H
#define RS_GEMM_INT8_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "rs_model.h"

/* y = acc * (s_x * s_w[o]) (+ b[o]) (+ the old y): the same float operations, in the same
 * order, in every kernel. */
static inline float rs_int8_finish(int32_t acc, float sx, const rs_linear *L, int o,
                                   const float *y, int accumulate) {
    float v = (float)acc * (sx * L->qscale[o]);
    if (L->b) v = v + L->b[o];
    return accumulate ? *y + v : v;
}

/* How the panel kernels walk a product (rs_gemm_int8.c): outputs in L2-sized blocks of
 * 16-output panels, and in each block the rows in tiles of up to max_rows; by_rows[R]
 * computes R rows (their activations `row_bytes` apart from xq, `pitch` in the kernel's
 * own unit) over panels [p0, p1). */
typedef void (*rs_int8_rows_fn)(const rs_linear *L, int p0, int p1, const void *xq, int pitch,
                                const float *sx, float *y, int ys, int accumulate);
void rs_int8_panels(const rs_int8_rows_fn *by_rows, int max_rows, const rs_linear *L,
                    int rows, const void *xq, int pitch, size_t row_bytes, const float *sx,
                    float *y, int ys, int accumulate);

/* AArch64 only (rs_gemm_int8_neon.c). xq: `rows` rows of int8 activations, `pitch` bytes apart;
 * sx: their scales.
 *  - rs_int8_neon: weights in the portable [out, in] layout, widening multiplies
 *    (every AArch64 CPU);
 *  - rs_int8_neon_dot: weights in 16-output x 4-input panels (the VNNI layout), signed
 *    dot products (sdot, Armv8.2 DotProd); pitch a multiple of 4, x zero-padded. */
void rs_int8_neon(const rs_linear *L, int rows, const int8_t *xq, int pitch, const float *sx,
                  float *y, int ys, int accumulate);
void rs_int8_neon_dot(const rs_linear *L, int rows, const int8_t *xq, int pitch,
                      const float *sx, float *y, int ys, int accumulate);
/* 1 on AArch64 when this build and this CPU can run rs_int8_neon_dot (0 elsewhere). */
int rs_int8_neon_has_dot(void);

#endif
