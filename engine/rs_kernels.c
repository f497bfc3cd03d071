/* Element-wise kernels, the portable matrix product, and the choice of matrix-product
 * kernel for this CPU (AVX-512, AVX2+FMA, AArch64 NEON or portable C), made once at first
 * use and overridable with RNNSEARCH_ISA=portable|avx2|avx512|neon (for tests and
 * benchmarks).
 * The portable product sums 16 partial sums in a fixed order, so it is deterministic
 * and a row's result does not depend on its neighbours. */
#include "rs_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rs_finite.h"
#include "rs_gemm.h"
#include "rs_gemm_bf16.h"
#include "rs_gemm_int8.h"
#include "rs_platform.h"
#include "rs_split.h"
#include "rs_vmath.h"

#define LANES RS_DOT_LANES
#define dot_one rs_dot_inline

static inline float finish(float sum, const float *b, int o, const float *y, int accumulate) {
    float v = b ? sum + b[o] : sum;
    return accumulate ? *y + v : v;
}

void rs_gemm_portable(const rs_linear *L, int rows, const float *x, int xs, float *y, int ys,
                      int accumulate, int o_begin, int o_end) {
    const int in = L->in;
    const float *W = L->w, *b = L->b;
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *x0 = x + (size_t)r * xs;
        float *y0 = y + (size_t)r * ys;
        for (int o = o_begin; o < o_end; o++) {
            float s[4];
            rs_dot_four_inline(x0, x0 + xs, x0 + 2 * (size_t)xs, x0 + 3 * (size_t)xs,
                               W + (size_t)o * in, in, s);
            for (int k = 0; k < 4; k++) {
                float *yk = y0 + (size_t)k * ys + o;
                *yk = finish(s[k], b, o, yk, accumulate);
            }
        }
    }
    for (; r < rows; r++) {
        const float *xr = x + (size_t)r * xs;
        float *yr = y + (size_t)r * ys;
        for (int o = o_begin; o < o_end; o++)
            yr[o] = finish(dot_one(xr, W + (size_t)o * in, in), b, o, yr + o, accumulate);
    }
}

static rs_gemm_fn gemm_kernel = rs_gemm_portable;
static rs_gemm_fn packed_kernel = NULL;
static const char *gemm_name = "portable";
static rs_once gemm_once = RS_ONCE_INIT;

static void choose_gemm(void) {
    const char *want = getenv("RNNSEARCH_ISA");
#if defined(__GNUC__) && defined(__x86_64__)
    if (rs_gemm_x86_available()) {
        __builtin_cpu_init();
        int has512 = __builtin_cpu_supports("avx512f");
        int has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        if (want && strcmp(want, "portable") == 0) return;
        if (has512 && !(want && strcmp(want, "avx2") == 0)) {
            gemm_kernel = rs_gemm_avx512;
            packed_kernel = rs_gemm_packed_avx512;
            gemm_name = "avx512";
            return;
        }
        if (has2) {
            gemm_kernel = rs_gemm_avx2;
            packed_kernel = rs_gemm_packed_avx2;
            gemm_name = "avx2";
        }
    }
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
    if (!(want && strcmp(want, "portable") == 0)) {
        packed_kernel = rs_gemm_packed_neon;   /* NEON is part of every AArch64 CPU */
        gemm_name = "neon";
    }
#endif
    (void)want;
}

/* Set when a product could not run (int8 scratch out of memory and no float weights to
 * fall back on); the search checks it after every step. Per thread, like the work. */
static _Thread_local int kernel_failed = 0;

int rs_kernel_failed(void) {
    const int failed = kernel_failed;
    kernel_failed = 0;
    return failed;
}

void rs_kernel_mark_failed(void) { kernel_failed = 1; }

/* The product on this thread; non-zero when it could not run. */
static int linear_here(const rs_linear *L, int rows, const float *x, int xs, float *y, int ys,
                       int accumulate) {
    /* int8 and bfloat16 fall back to the float weights only if their scratch cannot be
       allocated */
    if (L->qweight && rs_gemm_int8(L, rows, x, xs, y, ys, accumulate) == 0) return 0;
    if (L->bf16 && rs_gemm_bf16(L, rows, x, xs, y, ys, accumulate, 0, L->out) == 0) return 0;
    if (L->packed && packed_kernel) packed_kernel(L, rows, x, xs, y, ys, accumulate, 0, L->out);
    else if (L->w) gemm_kernel(L, rows, x, xs, y, ys, accumulate, 0, L->out);
    else return 1;
    return 0;
}

void rs_linear_forward(const rs_linear *L, int rows, const float *x, int xs,
                       float *y, int ys, int accumulate) {
    rs_call_once(&gemm_once, choose_gemm);
    if (rows <= 0 || L->out <= 0) return;
    int failed = 0;
    /* by output rows over the intra-sentence pool, when one is bound (rs_split.h) */
    if (!rs_split_linear(linear_here, L, rows, x, xs, y, ys, accumulate, &failed))
        failed = linear_here(L, rows, x, xs, y, ys, accumulate);
    if (failed) kernel_failed = 1;
}

size_t rs_copy_finite(float *restrict dst, const float *restrict src, size_t n) {
    uint32_t bad = 0;
    if (dst)
        for (size_t i = 0; i < n; i++) {
            dst[i] = src[i];
            bad |= rs_nonfinite_bit(src[i]);
        }
    else
        bad = rs_any_nonfinite(src, n);
    if (!bad) return n;
    size_t i = 0;
    while (!rs_nonfinite_bit(src[i])) i++;
    return i;
}

size_t rs_first_nonfinite(const float *x, size_t n) { return rs_copy_finite(NULL, x, n); }

int rs_pack_linear(rs_linear *L, float **owned) {
    rs_call_once(&gemm_once, choose_gemm);
    *owned = NULL;
    if (!L->w) return 0;
    if (!packed_kernel)   /* the portable kernel reads W as it is: only check it */
        return rs_any_nonfinite(L->w, (size_t)L->out * L->in) ? 2 : 0;
    int nonfinite = 0;
    *owned = rs_pack_weights_checked(L->w, L->out, L->in, &nonfinite);
    if (!*owned) return 1;
    if (nonfinite) {
        rs_aligned_free(*owned);
        *owned = NULL;
        return 2;
    }
    L->packed = *owned;
    return 0;
}

int rs_kernel_packs(void) {
    rs_call_once(&gemm_once, choose_gemm);
    return packed_kernel != NULL;
}

const char *rs_kernel_isa(void) {
    rs_call_once(&gemm_once, choose_gemm);
    return gemm_name;
}


void rs_apply_activation(rs_activation act, float *x, int n) {
    if (act == RS_ACT_TANH)
        rs_vtanh(x, n);
    else if (act == RS_ACT_RELU)
        for (int i = 0; i < n; i++) x[i] = x[i] > 0.0f || x[i] != x[i] ? x[i] : 0.0f; /* NaN stays NaN */
}

/* The sum runs over LANES independent accumulators in a fixed order: the compiler
 * vectorises it (a single running sum is one long dependency chain, which made log-softmax
 * a tenth of a batched NMT decode over a 32k vocabulary), and every instruction set still
 * gives the same result, because the order is in the C code. The maximum is explicit SIMD
 * (rs_vmath.c): compilers do not vectorise a NaN-aware maximum without fast-math. */

float rs_vmax(const float *x, int n) {
    return rs_vmax_chunks(x, n, n, NULL);
}

float rs_logsumexp_from(const float *x, int n, float m, float *tmp) {
    int i;
    for (i = 0; i < n; i++) tmp[i] = x[i] - m;
    rs_vexp(tmp, n);
    float acc[LANES] = {0};
    for (i = 0; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += tmp[i + l];
    double sum = 0.0;
    for (; i < n; i++) sum += tmp[i];
    for (int l = 0; l < LANES; l++) sum += acc[l];
    return m + (float)log(sum);
}

float rs_logsumexp(const float *x, int n, float *tmp) {
    const float m = rs_vmax(x, n);
    return isnan(m) || isinf(m) ? m : rs_logsumexp_from(x, n, m, tmp);
}

float rs_log_softmax(float *x, int n, float *tmp) {
    const float m = rs_vmax(x, n);
    if (isnan(m) || isinf(m)) return m;
    const float shift = rs_logsumexp_from(x, n, m, tmp);
    for (int i = 0; i < n; i++) x[i] -= shift;
    return m;
}

void rs_softmax(float *x, int n) {
    float m = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > m) m = x[i];
    for (int i = 0; i < n; i++) x[i] -= m;
    rs_vexp(x, n);
    float sum = 0.0f;
    for (int i = 0; i < n; i++) sum += x[i];
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) x[i] *= inv;
}

rs_gemm_fn rs_gemm_named(const char *isa) {
    if (strcmp(isa, "portable") == 0) return rs_gemm_portable;
#if defined(__aarch64__) || defined(_M_ARM64)
    if (strcmp(isa, "neon-packed") == 0) return rs_gemm_packed_neon;
#endif
#if defined(__GNUC__) && defined(__x86_64__)
    __builtin_cpu_init();
    if (rs_gemm_x86_available() && strcmp(isa, "avx2-packed") == 0 && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        return rs_gemm_packed_avx2;
    if (rs_gemm_x86_available() && strcmp(isa, "avx512-packed") == 0 && __builtin_cpu_supports("avx512f"))
        return rs_gemm_packed_avx512;
#endif
#if defined(__GNUC__) && defined(__x86_64__)
    __builtin_cpu_init();
    if (rs_gemm_x86_available() && strcmp(isa, "avx2") == 0 && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        return rs_gemm_avx2;
    if (rs_gemm_x86_available() && strcmp(isa, "avx512") == 0 && __builtin_cpu_supports("avx512f"))
        return rs_gemm_avx512;
#endif
    return NULL;
}
