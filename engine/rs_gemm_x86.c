/* y = x W^T + b on x86 with explicit AVX-512 and AVX2 (+FMA) intrinsics.
 *
 * W stays in its file layout ([out, in], row-major, memory-mapped: no repacking), so the
 * kernel is a block of dot products: a tile of up to 4 rows of x by 4 rows of W keeps 16
 * vector accumulators along `in`, each reduced once at the end. Outputs are walked in
 * blocks small enough for L2, and every row tile runs over a block before the next, so W
 * comes from memory once per call however many rows there are.
 *
 * Every (row, output) element is computed by the same instruction sequence whatever the
 * tile shape, so a row's result does not depend on the rest of the block. */
#include "rs_gemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define L2_BLOCK_BYTES (192 * 1024)

static inline int output_block(int in) {
    int ob = L2_BLOCK_BYTES / (int)(sizeof(float) * (in > 0 ? in : 1));
    ob &= ~3;
    return ob < 4 ? 4 : ob;
}

static inline float finish(float sum, const float *b, int o, const float *y, int accumulate) {
    float v = b ? sum + b[o] : sum;
    return accumulate ? *y + v : v;
}

/* ---------------------------------------------------------------- AVX-512 */
#define T512 __attribute__((target("avx512f,fma")))

static inline __attribute__((always_inline)) T512 void tile512(
    const int R, const int O, const float *x, int xs, const float *W, int in, float *sums) {
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int o = 0; o < O; o++) acc[r][o] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= in; i += 16) {
        __m512 xv[4], wv[4];
        for (int r = 0; r < R; r++) xv[r] = _mm512_loadu_ps(x + (size_t)r * xs + i);
        for (int o = 0; o < O; o++) wv[o] = _mm512_loadu_ps(W + (size_t)o * in + i);
        for (int r = 0; r < R; r++)
            for (int o = 0; o < O; o++) acc[r][o] = _mm512_fmadd_ps(xv[r], wv[o], acc[r][o]);
    }
    if (i < in) {
        const __mmask16 m = (__mmask16)((1u << (in - i)) - 1u);
        __m512 xv[4], wv[4];
        for (int r = 0; r < R; r++) xv[r] = _mm512_maskz_loadu_ps(m, x + (size_t)r * xs + i);
        for (int o = 0; o < O; o++) wv[o] = _mm512_maskz_loadu_ps(m, W + (size_t)o * in + i);
        for (int r = 0; r < R; r++)
            for (int o = 0; o < O; o++) acc[r][o] = _mm512_fmadd_ps(xv[r], wv[o], acc[r][o]);
    }
    for (int r = 0; r < R; r++)
        for (int o = 0; o < O; o++) sums[r * 4 + o] = _mm512_reduce_add_ps(acc[r][o]);
}

/* One row tile (R rows) over outputs [o0, o1). */
static inline __attribute__((always_inline)) T512 void rows512(
    const int R, const rs_linear *L, int o0, int o1, const float *x, int xs, float *y, int ys,
    int accumulate) {
    float sums[16];
    const int in = L->in;
    int o = o0;
    for (; o + 4 <= o1; o += 4) {
        tile512(R, 4, x, xs, L->w + (size_t)o * in, in, sums);
        for (int r = 0; r < R; r++)
            for (int k = 0; k < 4; k++) {
                float *yk = y + (size_t)r * ys + o + k;
                *yk = finish(sums[r * 4 + k], L->b, o + k, yk, accumulate);
            }
    }
    for (; o < o1; o++) {
        tile512(R, 1, x, xs, L->w + (size_t)o * in, in, sums);
        for (int r = 0; r < R; r++) {
            float *yk = y + (size_t)r * ys + o;
            *yk = finish(sums[r * 4], L->b, o, yk, accumulate);
        }
    }
}

T512 void rs_gemm_avx512(const rs_linear *L, int rows, const float *x, int xs, float *y, int ys,
                         int accumulate, int o_begin, int o_end) {
    const int ob = output_block(L->in);
    for (int o0 = o_begin; o0 < o_end; o0 += ob) {
        const int o1 = o0 + ob < o_end ? o0 + ob : o_end;
        int r = 0;
        for (; r + 4 <= rows; r += 4)
            rows512(4, L, o0, o1, x + (size_t)r * xs, xs, y + (size_t)r * ys, ys, accumulate);
        switch (rows - r) {
        case 3: rows512(3, L, o0, o1, x + (size_t)r * xs, xs, y + (size_t)r * ys, ys, accumulate); break;
        case 2: rows512(2, L, o0, o1, x + (size_t)r * xs, xs, y + (size_t)r * ys, ys, accumulate); break;
        case 1: rows512(1, L, o0, o1, x + (size_t)r * xs, xs, y + (size_t)r * ys, ys, accumulate); break;
        default: break;
        }
    }
}

/* ---------------------------------------------------------------- AVX2 + FMA */
#define T256 __attribute__((target("avx2,fma")))

static inline __attribute__((always_inline)) T256 float reduce256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

static inline __attribute__((always_inline)) T256 void tile256(
    const int R, const int O, const float *x, int xs, const float *W, int in, float *sums) {
    __m256 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int o = 0; o < O; o++) acc[r][o] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= in; i += 8) {
        __m256 xv[4], wv[4];
        for (int r = 0; r < R; r++) xv[r] = _mm256_loadu_ps(x + (size_t)r * xs + i);
        for (int o = 0; o < O; o++) wv[o] = _mm256_loadu_ps(W + (size_t)o * in + i);
        for (int r = 0; r < R; r++)
            for (int o = 0; o < O; o++) acc[r][o] = _mm256_fmadd_ps(xv[r], wv[o], acc[r][o]);
    }
    if (i < in) {
        const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(in - i), idx);
        __m256 xv[4], wv[4];
        for (int r = 0; r < R; r++) xv[r] = _mm256_maskload_ps(x + (size_t)r * xs + i, m);
        for (int o = 0; o < O; o++) wv[o] = _mm256_maskload_ps(W + (size_t)o * in + i, m);
        for (int r = 0; r < R; r++)
            for (int o = 0; o < O; o++) acc[r][o] = _mm256_fmadd_ps(xv[r], wv[o], acc[r][o]);
    }
    for (int r = 0; r < R; r++)
        for (int o = 0; o < O; o++) sums[r * 4 + o] = reduce256(acc[r][o]);
}

static inline __attribute__((always_inline)) T256 void rows256(
    const int R, const rs_linear *L, int o0, int o1, const float *x, int xs, float *y, int ys,
    int accumulate) {
    float sums[16];
    const int in = L->in;
    int o = o0;
    for (; o + 4 <= o1; o += 4) {
        tile256(R, 4, x, xs, L->w + (size_t)o * in, in, sums);
        for (int r = 0; r < R; r++)
            for (int k = 0; k < 4; k++) {
                float *yk = y + (size_t)r * ys + o + k;
                *yk = finish(sums[r * 4 + k], L->b, o + k, yk, accumulate);
            }
    }
    for (; o < o1; o++) {
        tile256(R, 1, x, xs, L->w + (size_t)o * in, in, sums);
        for (int r = 0; r < R; r++) {
            float *yk = y + (size_t)r * ys + o;
            *yk = finish(sums[r * 4], L->b, o, yk, accumulate);
        }
    }
}

T256 void rs_gemm_avx2(const rs_linear *L, int rows, const float *x, int xs, float *y, int ys,
                       int accumulate, int o_begin, int o_end) {
    const int ob = output_block(L->in);
    for (int o0 = o_begin; o0 < o_end; o0 += ob) {
        const int o1 = o0 + ob < o_end ? o0 + ob : o_end;
        int r = 0;
        for (; r + 4 <= rows; r += 4)
            rows256(4, L, o0, o1, x + (size_t)r * xs, xs, y + (size_t)r * ys, ys, accumulate);
        switch (rows - r) {
        case 3: rows256(3, L, o0, o1, x + (size_t)r * xs, xs, y + (size_t)r * ys, ys, accumulate); break;
        case 2: rows256(2, L, o0, o1, x + (size_t)r * xs, xs, y + (size_t)r * ys, ys, accumulate); break;
        case 1: rows256(1, L, o0, o1, x + (size_t)r * xs, xs, y + (size_t)r * ys, ys, accumulate); break;
        default: break;
        }
    }
}

int rs_gemm_x86_available(void) { return 1; }

#else
int rs_gemm_x86_available(void) { return 0; }
#endif
