/* Numeric kernels: matrix products and element-wise functions over row blocks. */
#ifndef RS_KERNELS_H
#define RS_KERNELS_H

#include <string.h>

#include "rs_model.h"

/* y[r*ys + o] = (accumulate ? y[r*ys + o] : 0) + b[o] + sum_i x[r*xs + i] * W[o, i]
 * for r < rows, o < L->out. Each output is summed in the same order whatever `rows` is,
 * so a row's result never depends on the other rows of the block. */
void rs_linear_forward(const rs_linear *L, int rows, const float *x, int xs,
                       float *y, int ys, int accumulate);

/* Which instruction set rs_linear_forward runs with on this CPU (for bench output). */
const char *rs_kernel_isa(void);

/* A specific kernel ("portable", "avx2", "avx512", "avx2-packed", "avx512-packed",
 * "neon-packed"), or NULL if this CPU lacks it. */
#include "rs_gemm.h"
rs_gemm_fn rs_gemm_named(const char *isa);

/* Pack L for this CPU's SIMD kernel (the portable kernel reads W as it is). *owned
 * receives the buffer to rs_aligned_free() when the model goes away. Returns 1 when out of
 * memory, 2 when W holds NaN or inf (checked while packing, nearly free). */
int rs_pack_linear(rs_linear *L, float **owned);
/* Whether rs_pack_linear makes a copy of W (a SIMD kernel) or keeps reading W (portable). */
int rs_kernel_packs(void);
/* The index of the first NaN or inf among x[0..n), or n if all are finite. */
size_t rs_first_nonfinite(const float *x, size_t n);
/* The same, copying x into dst on the way (one pass over x). */
size_t rs_copy_finite(float *restrict dst, const float *restrict src, size_t n);
/* Non-zero (once) if a product on this thread could not run since the last call. */
int rs_kernel_failed(void);
/* Report on this thread a product that could not run on another (a worker's part). */
void rs_kernel_mark_failed(void);

/* A dot product with 16 partial sums combined in a fixed order: deterministic, and
 * vectorised in whichever instruction set the caller is compiled for. */
#define RS_DOT_LANES 16
static inline float rs_reduce_lanes(const float *acc) {
    float s = 0.0f;
    for (int k = 0; k < RS_DOT_LANES; k++) s += acc[k];
    return s;
}
#if defined(__GNUC__) || defined(__clang__)
#define RS_KERNEL_INLINE static inline __attribute__((always_inline))
/* The 16 partial sums as two GNU vectors of 8 (lanes 0-7 and 8-15): one ymm each, or two
 * xmm, each lane the same IEEE operations as a scalar loop over the lanes would do. (A
 * float[16] loop let GCC 12 vectorise across iterations on AVX2, a permute per element;
 * a 16-float vector type it split through the stack. Both ran at scalar speed.) */
typedef float rs_half_lanes __attribute__((vector_size(RS_DOT_LANES / 2 * sizeof(float))));
typedef struct { rs_half_lanes lo, hi; } rs_lanes;
#define RS_LANES_ZERO {{0}, {0}}
RS_KERNEL_INLINE void rs_lanes_load(rs_lanes *v, const float *p) {
    memcpy(&v->lo, p, sizeof v->lo);
    memcpy(&v->hi, p + RS_DOT_LANES / 2, sizeof v->hi);
}
/* acc += x * w, lane by lane (a product, then a sum: no contraction) */
RS_KERNEL_INLINE void rs_lanes_mul_add(rs_lanes *acc, const rs_lanes *x, const rs_lanes *w) {
    acc->lo += x->lo * w->lo;
    acc->hi += x->hi * w->hi;
}
RS_KERNEL_INLINE float rs_reduce_vector(const rs_lanes *acc) {
    float lanes[RS_DOT_LANES];
    memcpy(lanes, &acc->lo, sizeof acc->lo);
    memcpy(lanes + RS_DOT_LANES / 2, &acc->hi, sizeof acc->hi);
    return rs_reduce_lanes(lanes);
}
#else
#define RS_KERNEL_INLINE static inline
#endif

RS_KERNEL_INLINE float rs_dot_inline(const float *x, const float *w, int n) {
    int i = 0;
    float s;
#if defined(__GNUC__) || defined(__clang__)
    rs_lanes acc = RS_LANES_ZERO, xv, wv;
    for (; i + RS_DOT_LANES <= n; i += RS_DOT_LANES) {
        rs_lanes_load(&xv, x + i);
        rs_lanes_load(&wv, w + i);
        rs_lanes_mul_add(&acc, &xv, &wv);
    }
    s = rs_reduce_vector(&acc);
#else
    float acc[RS_DOT_LANES] = {0};
    for (; i + RS_DOT_LANES <= n; i += RS_DOT_LANES)
        for (int k = 0; k < RS_DOT_LANES; k++) acc[k] += x[i + k] * w[i + k];
    s = rs_reduce_lanes(acc);
#endif
    for (; i < n; i++) s += x[i] * w[i];
    return s;
}
/* Four vectors against one: w is read once for four dot products, and the four
 * reductions overlap. Each out[k] has exactly rs_dot_inline(xk, w, n)'s arithmetic (and
 * rs_dot_inline(w, xk, n)'s: a product does not depend on its operands' order). */
/* (always inlined: into each instruction set's clone of its caller, and compiled for it) */
RS_KERNEL_INLINE void rs_dot_four_inline(const float *x0, const float *x1, const float *x2,
                                      const float *x3, const float *w, int n, float *out) {
    int i = 0;
    float s0, s1, s2, s3;
#if defined(__GNUC__) || defined(__clang__)
    rs_lanes a0 = RS_LANES_ZERO, a1 = RS_LANES_ZERO, a2 = RS_LANES_ZERO, a3 = RS_LANES_ZERO,
             wv, xv;
    for (; i + RS_DOT_LANES <= n; i += RS_DOT_LANES) {
        rs_lanes_load(&wv, w + i);
        rs_lanes_load(&xv, x0 + i); rs_lanes_mul_add(&a0, &xv, &wv);
        rs_lanes_load(&xv, x1 + i); rs_lanes_mul_add(&a1, &xv, &wv);
        rs_lanes_load(&xv, x2 + i); rs_lanes_mul_add(&a2, &xv, &wv);
        rs_lanes_load(&xv, x3 + i); rs_lanes_mul_add(&a3, &xv, &wv);
    }
    s0 = rs_reduce_vector(&a0); s1 = rs_reduce_vector(&a1);
    s2 = rs_reduce_vector(&a2); s3 = rs_reduce_vector(&a3);
#else
    float a0[RS_DOT_LANES] = {0}, a1[RS_DOT_LANES] = {0}, a2[RS_DOT_LANES] = {0},
          a3[RS_DOT_LANES] = {0};
    for (; i + RS_DOT_LANES <= n; i += RS_DOT_LANES) {
        for (int k = 0; k < RS_DOT_LANES; k++) {
            const float wk = w[i + k];
            a0[k] += x0[i + k] * wk;
            a1[k] += x1[i + k] * wk;
            a2[k] += x2[i + k] * wk;
            a3[k] += x3[i + k] * wk;
        }
    }
    s0 = rs_reduce_lanes(a0); s1 = rs_reduce_lanes(a1);
    s2 = rs_reduce_lanes(a2); s3 = rs_reduce_lanes(a3);
#endif
    for (; i < n; i++) {
        s0 += x0[i] * w[i];
        s1 += x1[i] * w[i];
        s2 += x2[i] * w[i];
        s3 += x3[i] * w[i];
    }
    out[0] = s0; out[1] = s1; out[2] = s2; out[3] = s3;
}

/* Compile a function once per instruction set, chosen by the loader (GCC on Linux). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define RS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RS_CLONES
#endif
void rs_apply_activation(rs_activation act, float *x, int n);
/* x <- x - logsumexp(x); returns the maximum of the input (NaN if the row has NaN).
 * tmp holds n floats. */
float rs_log_softmax(float *x, int n, float *tmp);
/* logsumexp(x), the shift rs_log_softmax subtracts (the maximum itself when that is
 * infinite, NaN if the row has NaN). */
float rs_logsumexp(const float *x, int n, float *tmp);
/* The same for a row whose (finite) maximum m is known. */
float rs_logsumexp_from(const float *x, int n, float m, float *tmp);

/* max of x[0..n) (-inf for n == 0), NaN if any element is NaN; vectorised over fixed
 * lanes, so the same on every instruction set. */
float rs_vmax(const float *x, int n);
/* x <- softmax(x) over n entries. */
void rs_softmax(float *x, int n);


#endif
