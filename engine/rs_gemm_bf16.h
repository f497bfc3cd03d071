/* bfloat16 matrix products: y = x W^T + b with W rounded to bfloat16 once at load time and
 * each row of x rounded to bfloat16 per call, products summed in float32 (rs_gemm_bf16.c). */
#ifndef RS_GEMM_BF16_H
#define RS_GEMM_BF16_H

#include <stdint.h>
#include <string.h>

#include "rs_model.h"

/* f rounded to the nearest bfloat16, ties to even; NaN stays a (quiet) NaN, values past
 * the largest bfloat16 become inf, and subnormal values become zero of their sign (as
 * vdpbf16ps reads them). */
static inline uint16_t rs_bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);   /* zero, subnormal */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Lay L->w out as bfloat16 panels for rs_gemm_bf16 (sets L->bf16). *owned receives the
 * buffer to rs_aligned_free(). Returns 1 when out of memory, 2 when W holds NaN or inf or
 * a value that rounds to inf in bfloat16. */
int rs_bf16_pack_linear(rs_linear *L, void **owned);

/* Same contract as rs_linear_forward for outputs [o_begin, o_end) (o_begin a multiple of
 * 16) of a bfloat16 L; non-zero when out of memory (its scratch). */
int rs_gemm_bf16(const rs_linear *L, int rows, const float *x, int xs, float *y, int ys,
                 int accumulate, int o_begin, int o_end);

/* The kernel this CPU runs ("avx512-bf16", "avx512", "avx2", "neon" or "portable"), chosen
 * once; RNNSEARCH_ISA=portable|avx2|avx512-nobf16|neon forces a lesser one. */
const char *rs_bf16_isa(void);
/* Run a named kernel (for tests): 0 when done, -1 when this CPU lacks it, 1 out of
 * memory. */
int rs_gemm_bf16_named(const char *isa, const rs_linear *L, int rows, const float *x, int xs,
                       float *y, int ys, int accumulate);

#endif
