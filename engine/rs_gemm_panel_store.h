/* The end of a 16-output panel in the x86 panel kernels (float32 in rs_gemm_packed.c,
 * bfloat16 in rs_gemm_bf16.c): the panel's sums + bias, then the old y added to that when
 * accumulating, for the outputs that exist. One epilogue, so every panel kernel rounds
 * the same way. Included by x86-64 GCC/clang builds only. */
#ifndef RS_GEMM_PANEL_STORE_H
#define RS_GEMM_PANEL_STORE_H

#include <immintrin.h>

#include "rs_model.h"

#define T512 __attribute__((target("avx512f,fma")))
#define T256 __attribute__((target("avx2,fma")))

static inline __attribute__((always_inline)) T512 void store512(
    __m512 acc, const rs_linear *L, int o, float *y, int accumulate) {
    const int left = L->out - o;
    const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
    if (L->b) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, L->b + o));
    if (accumulate) acc = _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + o), acc);
    _mm512_mask_storeu_ps(y + o, m, acc);
}

static inline __attribute__((always_inline)) T256 void store256(
    __m256 lo, __m256 hi, const rs_linear *L, int o, float *y, int accumulate) {
    const int left = L->out - o;
    if (left >= 16) {
        if (L->b) { lo = _mm256_add_ps(lo, _mm256_loadu_ps(L->b + o)); hi = _mm256_add_ps(hi, _mm256_loadu_ps(L->b + o + 8)); }
        if (accumulate) { lo = _mm256_add_ps(_mm256_loadu_ps(y + o), lo); hi = _mm256_add_ps(_mm256_loadu_ps(y + o + 8), hi); }
        _mm256_storeu_ps(y + o, lo);
        _mm256_storeu_ps(y + o + 8, hi);
        return;
    }
    float tmp[16];
    _mm256_storeu_ps(tmp, lo);
    _mm256_storeu_ps(tmp + 8, hi);
    for (int j = 0; j < left; j++) {
        float v = L->b ? tmp[j] + L->b[o + j] : tmp[j];
        y[o + j] = accumulate ? y[o + j] + v : v;
    }
}

#endif
