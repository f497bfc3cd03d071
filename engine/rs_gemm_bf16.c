/* bfloat16 matrix products (compute_type "bfloat16"): y = x W^T + b with W rounded to
 * bfloat16 once at load time (half the bytes of float32: batch-1 decoding streams its
 * weights from memory, so it reads half as much) and each row of x rounded to bfloat16
 * per call; the products are summed in float32.
 *
 * Layout (rs_bf16_pack_linear): panels of 16 outputs by input pairs,
 *   bf16[((p * in2 + i2) * 16 + j) * 2 + k] = bf16(W[p * 16 + j, 2 * i2 + k])
 * (zero past the last output and input), which is what vdpbf16ps multiplies: one 32-bit
 * word of x (the pair x[2 i2], x[2 i2 + 1]) broadcast against a 64-byte panel row.
 *
 * Kernels, chosen at run time: AVX512_BF16 (vdpbf16ps); AVX-512F and AVX2+FMA, which
 * widen bfloat16 to float32 by a 16-bit shift (the even input of a pair) or a mask (the
 * odd one) and use fused multiply-adds; AArch64 NEON, the same widening; portable C.
 * All of them compute, for each output, over the input pairs in order,
 *   acc = acc + x[2 i2 + 1] * w[2 i2 + 1];  acc = acc + x[2 i2] * w[2 i2]
 * (vdpbf16ps's documented order), then + bias, then + the old y. The product of two
 * bfloat16 numbers is exact in float32, so a fused multiply-add and a separate multiply
 * and add round the same: every kernel, portable C included, gives the same bits
 * (unless one product is below float32's smallest normal number, which vdpbf16ps
 * flushes to zero). Rounding flushes subnormal inputs to zero, as vdpbf16ps reads them.
 * A row's result never depends on the other rows of its block. */
#include "rs_gemm_bf16.h"

#include <stdlib.h>
#include <string.h>

#include "rs_gemm.h"
#include "rs_gemm_scratch.h"
#include "rs_platform.h"

#define PANEL 16

/* The word (bfloat16 pair) at p: through memcpy, which compiles to one load and reads
 * the 16-bit buffers without breaking the aliasing rules. */
static inline uint32_t word_at(const uint16_t *p) {
    uint32_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* x[2 i2 + 1] and x[2 i2] as float32, from one word of bfloat16 x. */
static inline float odd_of(uint32_t pair) {
    uint32_t u = pair & 0xffff0000u;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline float even_of(uint32_t pair) {
    uint32_t u = pair << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ------------------------------------------------------------------ load time */

int rs_bf16_pack_linear(rs_linear *L, void **owned) {
    *owned = NULL;
    if (!L->w || L->out <= 0 || L->in <= 0) return 0;
    const int out = L->out, in = L->in, in2 = (in + 1) / 2, panels = (out + PANEL - 1) / PANEL;
    const size_t count = (size_t)panels * in2 * PANEL * 2;
    uint16_t *packed = rs_aligned_alloc(64, count * sizeof(uint16_t) + 64);
    if (!packed) return 1;
    memset(packed, 0, count * sizeof(uint16_t));
    uint16_t bad = 0;   /* exponent bits all ones: inf or NaN (also a finite value past
                           bfloat16's range, which rounds to inf) */
    for (int o = 0; o < out; o++) {
        const float *row = L->w + (size_t)o * in;
        uint16_t *dst = packed + (size_t)(o / PANEL) * in2 * PANEL * 2 + (o % PANEL) * 2;
        for (int i = 0; i < in; i++) {
            const uint16_t v = rs_bf16_round(row[i]);
            bad |= (uint16_t)((v & 0x7f80u) == 0x7f80u);
            dst[(size_t)(i / 2) * PANEL * 2 + (i % 2)] = v;
        }
    }
    if (bad) {
        rs_aligned_free(packed);
        return 2;
    }
    L->bf16 = packed;
    *owned = packed;
    return 0;
}

/* x's rows as bfloat16 words: row r at dst + r * pitch words, padded with zero. */
static void round_rows(int rows, const float *x, int xs, int in, int pitch, uint16_t *dst) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * xs;
        uint16_t *d = dst + (size_t)r * pitch * 2;
        for (int i = 0; i < in; i++) d[i] = rs_bf16_round(xr[i]);
        for (int i = in; i < 2 * pitch; i++) d[i] = 0;
    }
}

/* ------------------------------------------------------------------ portable C */

/* One row against panels [pa, pz). x is the row's bfloat16 words (the panel walker's
 * float pointer carries them). */
static void rows_portable_1(const rs_linear *L, int pa, int pz, const float *x, int xs,
                            float *y, int ys, int accumulate) {
    (void)xs; (void)ys;
    const int in2 = (L->in + 1) / 2;
    const uint16_t *xw = (const uint16_t *)x;
    for (int p = pa; p < pz; p++) {
        const uint16_t *W = L->bf16 + (size_t)p * in2 * PANEL * 2;
        float acc[PANEL] = {0};
        for (int i2 = 0; i2 < in2; i2++) {
            const uint32_t pair = word_at(xw + 2 * (size_t)i2);
            const float xo = odd_of(pair), xe = even_of(pair);
            const uint16_t *w = W + (size_t)i2 * PANEL * 2;
            for (int j = 0; j < PANEL; j++) {
                acc[j] = acc[j] + xo * odd_of(word_at(w + 2 * j));
                acc[j] = acc[j] + xe * even_of(word_at(w + 2 * j));
            }
        }
        const int o = p * PANEL, left = L->out - o < PANEL ? L->out - o : PANEL;
        for (int j = 0; j < left; j++) {
            const float v = L->b ? acc[j] + L->b[o + j] : acc[j];
            y[o + j] = accumulate ? y[o + j] + v : v;
        }
    }
}

static const rs_panel_rows_fn rows_portable[2] = {NULL, rows_portable_1};

/* ------------------------------------------------------------------ x86-64 */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "rs_gemm_panel_store.h"

#define TBF16 __attribute__((target("avx512f,avx512bw,avx512bf16,fma")))

/* R rows (1..6) by P panels (1..4) with vdpbf16ps: 24 accumulators at most. */
static inline __attribute__((always_inline)) TBF16 void tile_bf16(
    const int R, const int P, const rs_linear *L, int p0, const float *x, int xs, float *y,
    int ys, int accumulate) {
    const int in2 = (L->in + 1) / 2;
    const uint16_t *W = L->bf16 + (size_t)p0 * in2 * PANEL * 2;
    const uint16_t *xw = (const uint16_t *)x;
    __m512 acc[6][4];
    for (int r = 0; r < R; r++)
        for (int p = 0; p < P; p++) acc[r][p] = _mm512_setzero_ps();
    for (int i2 = 0; i2 < in2; i2++) {
        __m512bh w[4];
        for (int p = 0; p < P; p++)
            w[p] = (__m512bh)_mm512_load_si512(W + ((size_t)p * in2 + i2) * PANEL * 2);
        for (int r = 0; r < R; r++) {
            const __m512bh xv = (__m512bh)_mm512_set1_epi32((int)word_at(xw + 2 * ((size_t)r * xs + i2)));
            for (int p = 0; p < P; p++) acc[r][p] = _mm512_dpbf16_ps(acc[r][p], xv, w[p]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int p = 0; p < P; p++)
            store512(acc[r][p], L, (p0 + p) * PANEL, y + (size_t)r * ys, accumulate);
}

/* The same arithmetic on AVX-512F: each panel row widened into its odd and even inputs.
 * R rows (1..4) by P panels (1..4). */
static inline __attribute__((always_inline)) T512 void tile_512(
    const int R, const int P, const rs_linear *L, int p0, const float *x, int xs, float *y,
    int ys, int accumulate) {
    const int in2 = (L->in + 1) / 2;
    const uint16_t *W = L->bf16 + (size_t)p0 * in2 * PANEL * 2;
    const uint16_t *xw = (const uint16_t *)x;
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int p = 0; p < P; p++) acc[r][p] = _mm512_setzero_ps();
    for (int i2 = 0; i2 < in2; i2++) {
        __m512 wo[4], we[4];
        for (int p = 0; p < P; p++) {
            const __m512i w = _mm512_load_si512(W + ((size_t)p * in2 + i2) * PANEL * 2);
            wo[p] = _mm512_castsi512_ps(_mm512_and_si512(w, high));
            we[p] = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
        }
        for (int r = 0; r < R; r++) {
            const uint32_t pair = word_at(xw + 2 * ((size_t)r * xs + i2));
            const __m512 xo = _mm512_set1_ps(odd_of(pair)), xe = _mm512_set1_ps(even_of(pair));
            for (int p = 0; p < P; p++) {
                acc[r][p] = _mm512_fmadd_ps(xo, wo[p], acc[r][p]);
                acc[r][p] = _mm512_fmadd_ps(xe, we[p], acc[r][p]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int p = 0; p < P; p++)
            store512(acc[r][p], L, (p0 + p) * PANEL, y + (size_t)r * ys, accumulate);
}

/* The same on AVX2: a panel row is two 256-bit halves (outputs 0..7 and 8..15). R rows
 * (1..4) by one panel: 8 accumulators, 4 widened weights, 2 broadcasts. */
static inline __attribute__((always_inline)) T256 void tile_256(
    const int R, const rs_linear *L, int p, const float *x, int xs, float *y, int ys,
    int accumulate) {
    const int in2 = (L->in + 1) / 2;
    const uint16_t *W = L->bf16 + (size_t)p * in2 * PANEL * 2;
    const uint16_t *xw = (const uint16_t *)x;
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    __m256 lo[4], hi[4];
    for (int r = 0; r < R; r++) lo[r] = hi[r] = _mm256_setzero_ps();
    for (int i2 = 0; i2 < in2; i2++) {
        const __m256i wl = _mm256_load_si256((const __m256i *)(W + (size_t)i2 * PANEL * 2));
        const __m256i wh = _mm256_load_si256((const __m256i *)(W + (size_t)i2 * PANEL * 2 + 16));
        const __m256 lo_o = _mm256_castsi256_ps(_mm256_and_si256(wl, high));
        const __m256 lo_e = _mm256_castsi256_ps(_mm256_slli_epi32(wl, 16));
        const __m256 hi_o = _mm256_castsi256_ps(_mm256_and_si256(wh, high));
        const __m256 hi_e = _mm256_castsi256_ps(_mm256_slli_epi32(wh, 16));
        for (int r = 0; r < R; r++) {
            const uint32_t pair = word_at(xw + 2 * ((size_t)r * xs + i2));
            const __m256 xo = _mm256_set1_ps(odd_of(pair)), xe = _mm256_set1_ps(even_of(pair));
            lo[r] = _mm256_fmadd_ps(xo, lo_o, lo[r]);
            lo[r] = _mm256_fmadd_ps(xe, lo_e, lo[r]);
            hi[r] = _mm256_fmadd_ps(xo, hi_o, hi[r]);
            hi[r] = _mm256_fmadd_ps(xe, hi_e, hi[r]);
        }
    }
    for (int r = 0; r < R; r++) store256(lo[r], hi[r], L, p * PANEL, y + (size_t)r * ys, accumulate);
}

/* Panels [pa, pz) for R rows: 4-panel tiles, then the rest. */
#define ROWS_X4(NAME, ATTR, TILE, R)                                                        \
    static ATTR void NAME##_##R(const rs_linear *L, int pa, int pz, const float *x, int xs, \
                                float *y, int ys, int acc) {                                \
        int p = pa;                                                                         \
        for (; p + 4 <= pz; p += 4) TILE(R, 4, L, p, x, xs, y, ys, acc);                    \
        switch (pz - p) {                                                                   \
        case 3: TILE(R, 3, L, p, x, xs, y, ys, acc); break;                                 \
        case 2: TILE(R, 2, L, p, x, xs, y, ys, acc); break;                                 \
        case 1: TILE(R, 1, L, p, x, xs, y, ys, acc); break;                                 \
        default: break;                                                                     \
        }                                                                                   \
    }
ROWS_X4(rows_bf16, TBF16, tile_bf16, 1) ROWS_X4(rows_bf16, TBF16, tile_bf16, 2)
ROWS_X4(rows_bf16, TBF16, tile_bf16, 3) ROWS_X4(rows_bf16, TBF16, tile_bf16, 4)
ROWS_X4(rows_bf16, TBF16, tile_bf16, 5) ROWS_X4(rows_bf16, TBF16, tile_bf16, 6)
ROWS_X4(rows_512, T512, tile_512, 1) ROWS_X4(rows_512, T512, tile_512, 2)
ROWS_X4(rows_512, T512, tile_512, 3) ROWS_X4(rows_512, T512, tile_512, 4)

#define ROWS_256(R)                                                                         \
    static T256 void rows_256_##R(const rs_linear *L, int pa, int pz, const float *x, int xs, \
                                  float *y, int ys, int acc) {                              \
        for (int p = pa; p < pz; p++) tile_256(R, L, p, x, xs, y, ys, acc);                 \
    }
ROWS_256(1) ROWS_256(2) ROWS_256(3) ROWS_256(4)

static const rs_panel_rows_fn rows_bf16[7] = {NULL, rows_bf16_1, rows_bf16_2, rows_bf16_3,
                                              rows_bf16_4, rows_bf16_5, rows_bf16_6};
static const rs_panel_rows_fn rows_512[5] = {NULL, rows_512_1, rows_512_2, rows_512_3,
                                             rows_512_4};
static const rs_panel_rows_fn rows_256[5] = {NULL, rows_256_1, rows_256_2, rows_256_3,
                                             rows_256_4};
#endif

/* ------------------------------------------------------------------ AArch64 NEON */
#if defined(__aarch64__) || defined(_M_ARM64)
#include "rs_neon.h"

/* R rows (1..4) by one panel: a panel row is four 128-bit quarters (4 outputs x 2
 * inputs each), widened as on x86. 16 accumulators, 8 widened weights. */
static RS_ALWAYS_INLINE void tile_neon(const int R, const rs_linear *L, int p, const float *x,
                                       int xs, float *y, int ys, int accumulate) {
    const int in2 = (L->in + 1) / 2;
    const uint16_t *W = L->bf16 + (size_t)p * in2 * PANEL * 2;
    const uint16_t *xw = (const uint16_t *)x;
    const uint32x4_t high = vdupq_n_u32(0xffff0000u);
    float32x4_t acc[4][4];
    for (int r = 0; r < R; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = vdupq_n_f32(0.0f);
    for (int i2 = 0; i2 < in2; i2++) {
        float32x4_t wo[4], we[4];
        for (int q = 0; q < 4; q++) {
            const uint32x4_t w = vld1q_u32((const uint32_t *)(W + (size_t)i2 * PANEL * 2 + 8 * q));
            wo[q] = vreinterpretq_f32_u32(vandq_u32(w, high));
            we[q] = vreinterpretq_f32_u32(vshlq_n_u32(w, 16));
        }
        for (int r = 0; r < R; r++) {
            const uint32_t pair = word_at(xw + 2 * ((size_t)r * xs + i2));
            const float xo = odd_of(pair), xe = even_of(pair);
            for (int q = 0; q < 4; q++) {
                acc[r][q] = vfmaq_n_f32(acc[r][q], wo[q], xo);
                acc[r][q] = vfmaq_n_f32(acc[r][q], we[q], xe);
            }
        }
    }
    for (int r = 0; r < R; r++) {
        float sums[PANEL];
        for (int q = 0; q < 4; q++) vst1q_f32(sums + 4 * q, acc[r][q]);
        float *yr = y + (size_t)r * ys;
        const int o = p * PANEL, left = L->out - o < PANEL ? L->out - o : PANEL;
        for (int j = 0; j < left; j++) {
            const float v = L->b ? sums[j] + L->b[o + j] : sums[j];
            yr[o + j] = accumulate ? yr[o + j] + v : v;
        }
    }
}

#define ROWS_NEON(R)                                                                        \
    static void rows_neon_##R(const rs_linear *L, int pa, int pz, const float *x, int xs,   \
                              float *y, int ys, int acc) {                                  \
        for (int p = pa; p < pz; p++) tile_neon(R, L, p, x, xs, y, ys, acc);                \
    }
ROWS_NEON(1) ROWS_NEON(2) ROWS_NEON(3) ROWS_NEON(4)

static const rs_panel_rows_fn rows_neon[5] = {NULL, rows_neon_1, rows_neon_2, rows_neon_3,
                                              rows_neon_4};
#endif

/* ------------------------------------------------------------------ dispatch */

/* A kernel: its tiles by row count (1..max_rows), walked by rs_gemm_panels over x's
 * rounded rows (words, the walker's float pointer carrying them). */
typedef struct { const char *name; const rs_panel_rows_fn *by_rows; int max_rows; } bf16_choice;

/* The kernels this CPU can run, best first (portable last, always there). */
static int available(bf16_choice *out) {
    int n = 0;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw"))
        out[n++] = (bf16_choice){"avx512-bf16", rows_bf16, 6};
    if (__builtin_cpu_supports("avx512f")) out[n++] = (bf16_choice){"avx512", rows_512, 4};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        out[n++] = (bf16_choice){"avx2", rows_256, 4};
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
    out[n++] = (bf16_choice){"neon", rows_neon, 4};   /* NEON is part of every AArch64 CPU */
#endif
    out[n++] = (bf16_choice){"portable", rows_portable, 1};
    return n;
}

static bf16_choice chosen = {"portable", rows_portable, 1};
static rs_once choose_once = RS_ONCE_INIT;

/* The best kernel, or the one RNNSEARCH_ISA names: portable, avx2, neon, or
 * avx512-nobf16 (AVX-512F without vdpbf16ps); any other value keeps the best. */
static void choose(void) {
    bf16_choice all[5];
    const int n = available(all);
    const char *want = getenv("RNNSEARCH_ISA");
    chosen = all[0];
    if (!want) return;
    const char *name = strcmp(want, "avx512-nobf16") == 0 ? "avx512" : want;
    for (int k = 0; k < n; k++)
        if (strcmp(all[k].name, name) == 0) chosen = all[k];
}

const char *rs_bf16_isa(void) {
    rs_call_once(&choose_once, choose);
    return chosen.name;
}

static int run(const bf16_choice *kernel, const rs_linear *L, int rows, const float *x, int xs,
               float *y, int ys, int accumulate, int o_begin, int o_end) {
    if (rows <= 0 || o_begin >= o_end) return 0;
    const int pitch = (L->in + 1) / 2;   /* words per row */
    uint16_t *xb = rs_gemm_scratch((size_t)rows * pitch * sizeof(uint32_t));
    if (!xb) return 1;
    round_rows(rows, x, xs, L->in, pitch, xb);
    rs_gemm_panels(kernel->by_rows, kernel->max_rows, L, rows, (const float *)xb, pitch, y, ys,
                   accumulate, o_begin, o_end);
    return 0;
}

int rs_gemm_bf16(const rs_linear *L, int rows, const float *x, int xs, float *y, int ys,
                 int accumulate, int o_begin, int o_end) {
    rs_call_once(&choose_once, choose);
    return run(&chosen, L, rows, x, xs, y, ys, accumulate, o_begin, o_end);
}

int rs_gemm_bf16_named(const char *isa, const rs_linear *L, int rows, const float *x, int xs,
                       float *y, int ys, int accumulate) {
    bf16_choice all[5];
    const int n = available(all);
    for (int k = 0; k < n; k++)
        if (strcmp(all[k].name, isa) == 0)
            return run(&all[k], L, rows, x, xs, y, ys, accumulate, 0, L->out);
    return -1;
}
