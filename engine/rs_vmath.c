/* Vectorised exp, tanh and sigmoid over arrays (the activations of every cell, softmax and
 * log-softmax), and the maximum of an array or of each chunk of it (rs_vmax_chunks).
 * Cephes-style single-precision approximations (about 1-2 ulp for exp and
 * sigmoid, absolute error below 1e-7 for tanh), in AVX-512, AVX2+FMA, NEON
 * (rs_vmath_neon.c) and portable C, all evaluating the same formulas lane by lane, chosen
 * at first use like the matrix kernels. The SIMD versions fuse multiply-adds and agree bit
 * for bit; portable C (no fusing: -ffp-contract=off) differs from them in the last bits.
 * NaN in gives NaN out on every path (the range clamps would otherwise turn it into a finite
 * value and hide a broken model). exp(-inf) is 0 (masked positions of a softmax); tanh and
 * sigmoid of +-inf are NaN, not +-1 / 0 / 1: their inputs are pre-activations, products of
 * finite weights and finite states, so an infinity there means a product overflowed float32,
 * and saturating it would hide the overflow as a plausible answer (the search then reports
 * the NaN as EngineError, on every instruction set alike). */
#include "rs_vmath.h"
#include "rs_platform.h"
#include "rs_vmath_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- portable */
static float exp_scalar(float x) {
    if (x != x) return x;
    if (x > EXP_HI) x = EXP_HI;
    if (x < EXP_LO) return 0.0f;
    float fx = floorf(x * LOG2E + 0.5f);
    float r = x - fx * C1 - fx * C2;
    float z = r * r;
    float y = ((((P0 * r + P1) * r + P2) * r + P3) * r + P4) * r + P5;
    y = y * z + r + 1.0f;
    return ldexpf(y, (int)fx);
}

static float tanh_scalar(float x) {
    float a = fabsf(x);
    if (a == INFINITY) return NAN;
    if (a < 0.625f) {
        float z = x * x;
        return ((((T0 * z + T1) * z + T2) * z + T3) * z + T4) * z * x + x;
    }
    float t = 1.0f - 2.0f / (exp_scalar(2.0f * a) + 1.0f);
    return x < 0 ? -t : t;
}

static void vexp_portable(float *x, int n) { for (int i = 0; i < n; i++) x[i] = exp_scalar(x[i]); }
static void vtanh_portable(float *x, int n) { for (int i = 0; i < n; i++) x[i] = tanh_scalar(x[i]); }
static void vsigmoid_portable(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = fabsf(x[i]) == INFINITY ? NAN : 1.0f / (1.0f + exp_scalar(-x[i]));
}

/* The maximum of a chunk (rs_vmax_chunks): 16 lanes, lane l taking elements l, l + 16, ...
 * of the chunk's whole blocks of 16, each keeping its first largest value (v > lane); the
 * lanes then halved 16 -> 8 -> 4 -> 2 -> 1 (lane l against lane l + half, the lower kept on
 * ties); then the elements past the last whole block, in order, starting from that; every
 * instruction set does exactly this, so all return the same value (equal values differ at
 * most in the sign of a zero, and this order fixes even that). NaN is flagged, not kept. */
static float lanes_halved(float *lanes) {
    for (int half = 8; half > 0; half /= 2)
        for (int l = 0; l < half; l++)
            lanes[l] = lanes[l] > lanes[l + half] ? lanes[l] : lanes[l + half];
    return lanes[0];
}

/* The outer loop of every instruction set's rs_vmax_chunks: per chunk, blocks(x + v0, count,
   &nan) gives the halved maximum of its `count` whole blocks of 16 (setting nan on a NaN),
   then the rest in order; the chunk's maximum into out, the row's returned (NaN if any). */
#define VMAX_CHUNKS(name, target, blocks)                                                 \
    static target float name(const float *x, int n, int chunk, float *out) {            \
        float row = -INFINITY;                                                           \
        int nan = 0;                                                                     \
        for (int c = 0, v0 = 0, v1; v0 < n; c++, v0 = v1) {                              \
            v1 = n - v0 > chunk ? v0 + chunk : n; /* (no v0 + chunk past INT_MAX) */     \
            const int whole = (v1 - v0) / 16;                                            \
            float m = blocks(x + v0, whole, &nan);                                       \
            for (int v = v0 + 16 * whole; v < v1; v++) {                                 \
                nan |= x[v] != x[v];                                                     \
                m = x[v] > m ? x[v] : m;                                                 \
            }                                                                            \
            if (out) out[c] = m;                                                         \
            row = m > row ? m : row;                                                     \
        }                                                                                \
        return nan ? NAN : row;                                                          \
    }

static inline float blocks_portable(const float *x, int count, int *nan) {
    float lanes[16];
    for (int l = 0; l < 16; l++) lanes[l] = -INFINITY;
    for (int b = 0; b < count; b++, x += 16)
        for (int l = 0; l < 16; l++) {
            *nan |= x[l] != x[l];
            lanes[l] = x[l] > lanes[l] ? x[l] : lanes[l];
        }
    return lanes_halved(lanes);
}
VMAX_CHUNKS(vmax_chunks_portable, , blocks_portable)

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* lanes_halved from 8 lanes on: max_ps(a, b) is a > b ? a : b, lane by lane */
static inline __attribute__((always_inline, target("avx2"))) float halved8(__m256 m8) {
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
    __m128 m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    return _mm_cvtss_f32(_mm_max_ss(m2, _mm_shuffle_ps(m2, m2, 1)));
}

/* ---------------------------------------------------------------- AVX-512 */
#define T512 __attribute__((target("avx512f,fma")))

static inline __attribute__((always_inline)) T512 __m512 exp512(__m512 x) {
    const __m512 given = x;
    const __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_LO), _CMP_LT_OQ);
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    x = _mm512_min_ps(x, _mm512_set1_ps(EXP_HI));
    x = _mm512_max_ps(x, _mm512_set1_ps(EXP_LO));
    __m512 fx = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(LOG2E), _mm512_set1_ps(0.5f)),
                                     _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(C1), x);
    r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(C2), r);
    __m512 z = _mm512_mul_ps(r, r);
    __m512 y = _mm512_set1_ps(P0);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(P1));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(P2));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(P3));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(P4));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(P5));
    y = _mm512_fmadd_ps(y, z, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    y = _mm512_scalef_ps(y, fx);
    y = _mm512_mask_mov_ps(y, under, _mm512_setzero_ps());
    return _mm512_mask_mov_ps(y, nan, given);
}

static inline __attribute__((always_inline)) T512 __m512 tanh512(__m512 x) {
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    __m512 a = _mm512_abs_ps(x);
    __m512 z = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(T0);
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(T1));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(T2));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(T3));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(T4));
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
    __m512 e = exp512(_mm512_add_ps(a, a));
    __m512 big = _mm512_sub_ps(_mm512_set1_ps(1.0f),
                               _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    big = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(big),
                                              _mm512_and_si512(_mm512_castps_si512(x), sign)));
    const __mmask16 is_small = _mm512_cmp_ps_mask(a, _mm512_set1_ps(0.625f), _CMP_LT_OQ);
    const __mmask16 is_inf = _mm512_cmp_ps_mask(a, _mm512_set1_ps(INFINITY), _CMP_EQ_OQ);
    return _mm512_mask_mov_ps(_mm512_mask_mov_ps(big, is_small, small), is_inf,
                              _mm512_set1_ps(NAN));
}

static inline __attribute__((always_inline)) T512 __m512 sigmoid512(__m512 x) {
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    const __mmask16 is_inf = _mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(INFINITY),
                                                _CMP_EQ_OQ);
    return _mm512_mask_mov_ps(
        _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))), is_inf,
        _mm512_set1_ps(NAN));
}

#define MAP512(name, f)                                                          \
    static T512 void name(float *x, int n) {                                     \
        int i = 0;                                                               \
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, f(_mm512_loadu_ps(x + i))); \
        if (i < n) {                                                             \
            const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);               \
            _mm512_mask_storeu_ps(x + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));  \
        }                                                                        \
    }
MAP512(vexp_avx512, exp512)
MAP512(vtanh_avx512, tanh512)
MAP512(vsigmoid_avx512, sigmoid512)

/* ---------------------------------------------------------------- AVX2 + FMA */
#define T256 __attribute__((target("avx2,fma")))

static inline __attribute__((always_inline)) T256 __m256 exp256(__m256 x) {
    const __m256 given = x;
    const __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(EXP_LO), _CMP_LT_OQ);
    const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    x = _mm256_min_ps(x, _mm256_set1_ps(EXP_HI));
    x = _mm256_max_ps(x, _mm256_set1_ps(EXP_LO));
    __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(LOG2E), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(C1), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(C2), r);
    __m256 z = _mm256_mul_ps(r, r);
    __m256 y = _mm256_set1_ps(P0);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(P1));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(P2));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(P3));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(P4));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(P5));
    y = _mm256_fmadd_ps(y, z, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^fx through the exponent bits; fx is in [-126, 127] after the clamps */
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    y = _mm256_andnot_ps(under, y);
    return _mm256_blendv_ps(y, given, nan);
}

static inline __attribute__((always_inline)) T256 __m256 tanh256(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 a = _mm256_andnot_ps(sign, x);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(T0);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(T1));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(T2));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(T3));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(T4));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    __m256 e = exp256(_mm256_add_ps(a, a));
    __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                               _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    big = _mm256_or_ps(big, _mm256_and_ps(x, sign));
    __m256 y = _mm256_blendv_ps(big, small, _mm256_cmp_ps(a, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
    return _mm256_blendv_ps(y, _mm256_set1_ps(NAN),
                            _mm256_cmp_ps(a, _mm256_set1_ps(INFINITY), _CMP_EQ_OQ));
}

static inline __attribute__((always_inline)) T256 __m256 sigmoid256(__m256 x) {
    __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
    __m256 y = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f)));
    const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    return _mm256_blendv_ps(y, _mm256_set1_ps(NAN),
                            _mm256_cmp_ps(a, _mm256_set1_ps(INFINITY), _CMP_EQ_OQ));
}

#define MAP256(name, f)                                                          \
    static T256 void name(float *x, int n) {                                     \
        int i = 0;                                                               \
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, f(_mm256_loadu_ps(x + i))); \
        if (i < n) {                                                             \
            float tmp[8] = {0};                                                  \
            memcpy(tmp, x + i, sizeof(float) * (n - i));                         \
            _mm256_storeu_ps(tmp, f(_mm256_loadu_ps(tmp)));                      \
            memcpy(x + i, tmp, sizeof(float) * (n - i));                         \
        }                                                                        \
    }
MAP256(vexp_avx2, exp256)
MAP256(vtanh_avx2, tanh256)
MAP256(vsigmoid_avx2, sigmoid256)

/* rs_vlstm_cell over 8 units: gates from g and x at offset j of each block, c and h at
   offset 0 of the given pointers (the tail runs on zero-padded copies) */
static inline __attribute__((always_inline)) T256 void lstm8(const float *x, const float *g,
                                                            int H, int j, float *c, float *h) {
#define GATE256(k) _mm256_add_ps(_mm256_loadu_ps(g + (k) * H + j), _mm256_loadu_ps(x + (k) * H + j))
    const __m256 i = sigmoid256(GATE256(0)), f = sigmoid256(GATE256(1));
    const __m256 u = tanh256(GATE256(2)), o = sigmoid256(GATE256(3));
#undef GATE256
    const __m256 cell = _mm256_add_ps(_mm256_mul_ps(f, _mm256_loadu_ps(c)), _mm256_mul_ps(i, u));
    _mm256_storeu_ps(c, cell);
    _mm256_storeu_ps(h, _mm256_mul_ps(o, tanh256(cell)));
}

static T256 void lstm_avx2(const float *x, float *g, float *c, float *h, int H) {
    int j = 0;
    for (; j + 8 <= H; j += 8) lstm8(x, g, H, j, c + j, h + j);
    if (j == H) return;
    const int m = H - j;
    float gx[2][4][8] = {{{0}}}, cell[8] = {0}, out[8];
    for (int k = 0; k < 4; k++) {
        memcpy(gx[0][k], g + k * H + j, sizeof(float) * m);
        memcpy(gx[1][k], x + k * H + j, sizeof(float) * m);
    }
    memcpy(cell, c + j, sizeof(float) * m);
    lstm8(&gx[1][0][0], &gx[0][0][0], 8, 0, cell, out);
    memcpy(c + j, cell, sizeof(float) * m);
    memcpy(h + j, out, sizeof(float) * m);
}

static inline __attribute__((always_inline)) T512 float blocks_avx512(const float *x, int count,
                                                                    int *nan) {
    __m512 lanes = _mm512_set1_ps(-INFINITY);
    __mmask16 unordered = 0;
    for (int b = 0; b < count; b++, x += 16) {
        const __m512 value = _mm512_loadu_ps(x);
        unordered |= _mm512_cmp_ps_mask(value, value, _CMP_UNORD_Q);
        lanes = _mm512_max_ps(value, lanes);
    }
    *nan |= unordered != 0;
    const __m256 lo = _mm512_castps512_ps256(lanes);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(lanes), 1));
    return halved8(_mm256_max_ps(lo, hi));
}
VMAX_CHUNKS(vmax_chunks_avx512, T512, blocks_avx512)

static inline __attribute__((always_inline)) T256 float blocks_avx2(const float *x, int count,
                                                                  int *nan) {
    __m256 lo = _mm256_set1_ps(-INFINITY), hi = lo;   /* lanes 0-7 and 8-15 */
    __m256 unordered = _mm256_setzero_ps();
    for (int b = 0; b < count; b++, x += 16) {
        const __m256 first = _mm256_loadu_ps(x), second = _mm256_loadu_ps(x + 8);
        /* unordered: first or second is NaN */
        unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(first, second, _CMP_UNORD_Q));
        lo = _mm256_max_ps(first, lo);
        hi = _mm256_max_ps(second, hi);
    }
    *nan |= _mm256_movemask_ps(unordered) != 0;
    return halved8(_mm256_max_ps(lo, hi));
}
VMAX_CHUNKS(vmax_chunks_avx2, T256, blocks_avx2)
#endif

/* ---------------------------------------------------------------- dispatch */
typedef void (*map_fn)(float *, int);
static map_fn exp_fn = vexp_portable, tanh_fn = vtanh_portable, sigmoid_fn = vsigmoid_portable;
typedef float (*max_fn)(const float *, int, int, float *);
static max_fn max_chunks_fn = vmax_chunks_portable;
static rs_once once = RS_ONCE_INIT;

/* rs_vlstm_cell as its parts: the element-wise functions over each gate block, then the
   cell and output in plain loops (the same operations in the same order as the fused
   kernels) */
static void lstm_by_parts(const float *x, float *g, float *c, float *h, int H) {
    for (int j = 0; j < 4 * H; j++) g[j] += x[j];
    rs_vsigmoid(g, 2 * H);         /* i, f */
    rs_vtanh(g + 2 * H, H);        /* g */
    rs_vsigmoid(g + 3 * H, H);     /* o */
    for (int j = 0; j < H; j++) {
        c[j] = g[H + j] * c[j] + g[j] * g[2 * H + j];
        g[2 * H + j] = c[j];
    }
    rs_vtanh(g + 2 * H, H);        /* tanh(c') */
    for (int j = 0; j < H; j++) h[j] = g[3 * H + j] * g[2 * H + j];
}
typedef void (*lstm_fn)(const float *, float *, float *, float *, int);
static lstm_fn lstm_cell_fn = lstm_by_parts;

static void choose(void) {
    const char *want = getenv("RNNSEARCH_ISA");
    if (want && strcmp(want, "portable") == 0) return;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && !(want && strcmp(want, "avx2") == 0)) {
        exp_fn = vexp_avx512; tanh_fn = vtanh_avx512; sigmoid_fn = vsigmoid_avx512;
        max_chunks_fn = vmax_chunks_avx512;
        /* the AVX2 cell: its lane functions give the AVX-512 ones' bits */
        lstm_cell_fn = lstm_avx2;
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        exp_fn = vexp_avx2; tanh_fn = vtanh_avx2; sigmoid_fn = vsigmoid_avx2;
        max_chunks_fn = vmax_chunks_avx2;
        lstm_cell_fn = lstm_avx2;
    }
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
    exp_fn = rs_vexp_neon; tanh_fn = rs_vtanh_neon; sigmoid_fn = rs_vsigmoid_neon;
#endif
}

void rs_vexp(float *x, int n) { rs_call_once(&once, choose); if (n > 0) exp_fn(x, n); }
void rs_vtanh(float *x, int n) { rs_call_once(&once, choose); if (n > 0) tanh_fn(x, n); }
void rs_vsigmoid(float *x, int n) { rs_call_once(&once, choose); if (n > 0) sigmoid_fn(x, n); }
void rs_vlstm_cell(const float *x, float *g, float *c, float *h, int H) {
    rs_call_once(&once, choose);
    if (H > 0) lstm_cell_fn(x, g, c, h, H);
}
float rs_vmax_chunks(const float *x, int n, int chunk, float *out) {
    rs_call_once(&once, choose);
    return n > 0 ? max_chunks_fn(x, n, chunk > 0 ? chunk : n, out) : -INFINITY;
}
