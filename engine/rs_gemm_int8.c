/* int8 matrix products: y = x W^T + b with W quantized once at load time per output row
 * (w_q = round(W / s_w), s_w = max|W[o, :]| / 127) and x quantized per row on the fly
 * (x_q = round(x / s_x), s_x = max|x[r, :]| / 127). The integer dot products are exact, so
 * every row's result is independent of the rest of the block, as in the float kernels.
 *
 * Layouts (made by rs_quantize_linear for the kernel this CPU runs):
 *  - AVX-512 VNNI: panels of 16 outputs x 4 inputs, [(p * in4 + i4) * 64 + j * 4 + k];
 *    x is fed as unsigned (x_q + 128) to vpdpbusd and 128 * sum_i w_q[o, i] is
 *    subtracted afterwards.
 *  - AVX2: panels of 16 outputs x 2 inputs, [(p * in2 + i2) * 32 + j * 2 + k], widened to
 *    int16 and multiplied with vpmaddwd against int16 x_q.
 *  - AArch64 with DotProd: the VNNI panels, x_q signed (sdot), rs_gemm_int8_neon.c.
 *  - portable, and AArch64 without DotProd (rs_gemm_int8_neon.c): plain [out, in] int8.
 * Every kernel ends with the arithmetic of rs_int8_finish (rs_gemm_int8_kernels.h), so
 * all give the same bits. */
#include "rs_gemm_int8.h"
#include "rs_gemm_int8_kernels.h"
#include "rs_gemm_scratch.h"
#include "rs_platform.h"

#include "rs_finite.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { Q_PORTABLE = 0, Q_AVX2 = 1, Q_VNNI = 2, Q_NEON = 3, Q_NEON_DOT = 4 };
static int q_kind = Q_PORTABLE;
static rs_once q_once = RS_ONCE_INIT;

static void choose(void) {
    const char *want = getenv("RNNSEARCH_ISA");
    if (want && strcmp(want, "portable") == 0) return;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
        !(want && strcmp(want, "avx2") == 0))
        q_kind = Q_VNNI;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        q_kind = Q_AVX2;
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
    q_kind = rs_int8_neon_has_dot() && !(want && strcmp(want, "neon") == 0) ? Q_NEON_DOT : Q_NEON;
#endif
}

const char *rs_int8_isa(void) {
    rs_call_once(&q_once, choose);
    static const char *const names[] = {"portable", "avx2", "avx512-vnni", "neon", "neon-dotprod"};
    return names[q_kind];
}

static inline int round_up(int n, int m) { return (n + m - 1) / m * m; }

/* Output panels per L2-sized block of int8 weights (16 outputs x in_pad bytes a panel,
 * whatever the layout): every row tile runs over one block before the next, so the
 * weights stream from memory once per call instead of once per row tile (a multiple of
 * 4 panels: the VNNI tiles are 4 panels wide). */
#define Q_L2_BLOCK_BYTES (256 * 1024)
static inline int panel_block(int in_pad) {
    int pb = Q_L2_BLOCK_BYTES / (16 * (in_pad > 0 ? in_pad : 1));
    return pb < 4 ? 4 : pb / 4 * 4;
}

void rs_int8_panels(const rs_int8_rows_fn *by_rows, int max_rows, const rs_linear *L,
                    int rows, const void *xq, int pitch, size_t row_bytes, const float *sx,
                    float *y, int ys, int accumulate) {
    const int panels = (L->out + 15) / 16, pb = panel_block(pitch);
    for (int p0 = 0; p0 < panels; p0 += pb) {
        const int pz = p0 + pb < panels ? p0 + pb : panels;
        for (int r = 0; r < rows; r += max_rows) {
            const int R = rows - r < max_rows ? rows - r : max_rows;
            by_rows[R](L, p0, pz, (const char *)xq + (size_t)r * row_bytes, pitch, sx + r,
                       y + (size_t)r * ys, ys, accumulate);
        }
    }
}

/* The value of W[o, i] as int8 at scale s: float weights get the same rounding
 * rnnsearch.quantize applies when it writes an int8 file; stored ones are used as they are. */
static inline int quantized_weight(const rs_linear *L, int o, int i, float s) {
    int v = L->w ? (int)lrintf(L->w[(size_t)o * L->in + i] / s) : L->wq[(size_t)o * L->in + i];
    return v > 127 ? 127 : v < -127 ? -127 : v;
}

/* Whether the kind lays the weights out in 16-output panels (else plain [out, in] rows). */
static inline int panelled(int kind) { return kind == Q_VNNI || kind == Q_AVX2 || kind == Q_NEON_DOT; }

/* Inputs padded to the kernel's input step (4 for VNNI and sdot, 2 for AVX2). */
static inline int padded_in(int kind, int cols) {
    return kind == Q_VNNI || kind == Q_NEON_DOT ? round_up(cols, 4)
         : kind == Q_AVX2 ? round_up(cols, 2) : cols;
}

size_t rs_int8_row_bytes(int in) {
    rs_call_once(&q_once, choose);
    return (size_t)padded_in(q_kind, in);
}

/* Bytes of one part's int8 panels, rounded to a cache line (parts follow each other). */
static size_t part_bytes(int kind, int out, int cols) {
    const int out_pad = panelled(kind) ? round_up(out, 16) : out;
    return ((size_t)out_pad * padded_in(kind, cols) + 63) / 64 * 64;
}

/* Lays out columns [c0, c0 + cols) of L's quantized rows (scales given) for the kernel and
 * their row sums, into zeroed memory (the padding stays zero). */
static void layout_part(int kind, const rs_linear *L, const float *scale, int c0, int cols,
                        int8_t *q, int32_t *colsum) {
    const int in_pad = padded_in(kind, cols);
    for (int o = 0; o < L->out; o++) {
        const int p = o / 16, j = o % 16;
        int32_t sum = 0;
        for (int i = 0; i < cols; i++) {
            const int v = quantized_weight(L, o, c0 + i, scale[o]);
            sum += v;
            size_t at;
            if (kind == Q_VNNI || kind == Q_NEON_DOT) at = ((size_t)p * (in_pad / 4) + i / 4) * 64 + j * 4 + i % 4;
            else if (kind == Q_AVX2) at = ((size_t)p * (in_pad / 2) + i / 2) * 32 + j * 2 + i % 2;
            else at = (size_t)o * cols + i;
            q[at] = (int8_t)v;
        }
        colsum[o] = sum;
    }
}

int rs_quantize_linear(rs_linear *L, void **owned) {
    rs_call_once(&q_once, choose);
    *owned = NULL;
    if ((!L->w && !L->wq) || L->out <= 0 || L->in <= 0) return 0;
    const int out = L->out, in = L->in, kind = q_kind;
    /* parts: [bounds[k], bounds[k + 1]); split points outside (0, in) are ignored */
    int bounds[RS_MAX_QSPLITS + 2], parts = 0;
    bounds[0] = 0;
    for (int k = 0; k < L->nqsplit && k < RS_MAX_QSPLITS; k++)
        if (L->qsplit[k] > bounds[parts] && L->qsplit[k] < in) bounds[++parts] = L->qsplit[k];
    bounds[++parts] = in;
    const size_t rows16 = (size_t)round_up(out, 16);
    const size_t children = parts > 1 ? (size_t)round_up((int)(parts * sizeof(rs_linear)), 64) : 0;
    size_t total = children + rows16 * sizeof(float) + parts * rows16 * sizeof(int32_t);
    for (int k = 0; k < parts; k++) total += part_bytes(kind, out, bounds[k + 1] - bounds[k]);
    unsigned char *block = rs_aligned_alloc(64, total);
    if (!block) return 1;
    memset(block, 0, total);   /* zero padding, and zeroed child structs */
    rs_linear *child = (rs_linear *)block;
    float *scale = (float *)(block + children);
    int32_t *sums = (int32_t *)(scale + rows16);
    int8_t *q = (int8_t *)(sums + parts * rows16);
    for (int o = 0; o < out; o++) {
        /* one scale per output row over the whole row, as in an int8 model file */
        if (L->w) {
            const float *row = L->w + (size_t)o * in;
            float m = 0.0f;
            for (int i = 0; i < in; i++) m = fabsf(row[i]) > m ? fabsf(row[i]) : m;
            if (rs_any_nonfinite(row, (size_t)in)) {   /* non-finite weights: refused, never quantized to a guess */
                rs_aligned_free(block);
                return 2;
            }
            scale[o] = m > 0.0f ? m / 127.0f : 1.0f;
        } else {
            scale[o] = L->wq_scale[o];
        }
    }
    for (int k = 0; k < parts; k++) {
        const int cols = bounds[k + 1] - bounds[k];
        int32_t *colsum = sums + k * rows16;
        layout_part(kind, L, scale, bounds[k], cols, q, colsum);
        if (parts > 1) {
            child[k].out = out;
            child[k].in = cols;
            child[k].b = k == 0 ? L->b : NULL;   /* the bias is added once */
            child[k].qweight = q;
            child[k].qscale = scale;
            child[k].qsum = colsum;
        } else {
            L->qweight = q;
            L->qsum = colsum;
        }
        q += part_bytes(kind, out, cols);
    }
    L->qscale = scale;
    if (parts > 1) {
        L->qparts = child;
        L->qweight = child[0].qweight;   /* marks L as quantized */
    }
    *owned = block;
    return 0;
}

/* x_q for `rows` rows into dst (row stride `pitch` bytes, padded with zeros); returns the
 * per-row scales in sx. Unsigned (+128) for VNNI, int16 for AVX2, int8 otherwise. */
static void quantize_rows(int kind, int rows, const float *x, int xs, int in, int pitch,
                          void *dst, float *sx) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * xs;
        float m = 0.0f;
        for (int i = 0; i < in; i++) m = fabsf(xr[i]) > m ? fabsf(xr[i]) : m;
        if (rs_any_nonfinite(xr, (size_t)in)) {
            /* NaN or inf in the row: its outputs become NaN (never a finite guess), and the
               search reports them */
            sx[r] = NAN;
            memset((char *)dst + (size_t)r * pitch, kind == Q_VNNI ? 128 : 0, (size_t)pitch);
            continue;
        }
        const float s = m > 0.0f ? m / 127.0f : 1.0f, inv = 1.0f / s;
        sx[r] = s;
        if (kind == Q_VNNI) {
            uint8_t *d = (uint8_t *)dst + (size_t)r * pitch;
            for (int i = 0; i < in; i++) d[i] = (uint8_t)(lrintf(xr[i] * inv) + 128);
            for (int i = in; i < pitch; i++) d[i] = 128;
        } else if (kind == Q_AVX2) {
            int16_t *d = (int16_t *)((char *)dst + (size_t)r * pitch);
            for (int i = 0; i < in; i++) d[i] = (int16_t)lrintf(xr[i] * inv);
            for (int i = in; i < pitch / 2; i++) d[i] = 0;
        } else {
            int8_t *d = (int8_t *)dst + (size_t)r * pitch;
            for (int i = 0; i < in; i++) d[i] = (int8_t)lrintf(xr[i] * inv);
            for (int i = in; i < pitch; i++) d[i] = 0;
        }
    }
}

static void gemm_portable(const rs_linear *L, int rows, const int8_t *xq, int pitch,
                          const float *sx, float *y, int ys, int accumulate) {
    const int in = L->in;
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < L->out; o++) {
            const int8_t *w = L->qweight + (size_t)o * in, *xr = xq + (size_t)r * pitch;
            int32_t acc = 0;
            for (int i = 0; i < in; i++) acc += (int32_t)xr[i] * w[i];
            float *yo = y + (size_t)r * ys + o;
            *yo = rs_int8_finish(acc, sx[r], L, o, yo, accumulate);
        }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TVNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

static inline __attribute__((always_inline)) TVNNI void store_vnni(
    __m512i acc, float sx, const rs_linear *L, int o, float *y, int accumulate) {
    const int left = L->out - o;
    const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
    acc = _mm512_sub_epi32(acc, _mm512_slli_epi32(_mm512_loadu_si512(L->qsum + o), 7));
    __m512 scale = _mm512_mul_ps(_mm512_set1_ps(sx), _mm512_loadu_ps(L->qscale + o));
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale);
    if (L->b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, L->b + o));
    if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + o), v);
    _mm512_mask_storeu_ps(y + o, m, v);
}

typedef int32_t unaligned_i32 __attribute__((aligned(1), may_alias));

/* FOR_ROWS_R(M) expands M(0) ... M(R - 1): the tiles below are written out per row. */
#define FOR_ROWS_1(M) M(0)
#define FOR_ROWS_2(M) FOR_ROWS_1(M) M(1)
#define FOR_ROWS_3(M) FOR_ROWS_2(M) M(2)
#define FOR_ROWS_4(M) FOR_ROWS_3(M) M(3)
#define FOR_ROWS_5(M) FOR_ROWS_4(M) M(4)
#define FOR_ROWS_6(M) FOR_ROWS_5(M) M(5)

/* The 4-panel tiles (R = 1..6 rows), written out with named accumulators and vpdpbusd as
 * inline asm (accumulator tied in place). From the generic tile below, GCC 12 keeps the
 * accumulator array on the stack and copies each one around every vpdpbusd, which ran
 * this loop at about a third of the instruction's throughput; the fp32 tile of the same
 * shape does not have the problem. */
#define DP(acc, x, w) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w))
#define ROWx4(r)                                                                          \
    {                                                                                      \
        const __m512i xb =                                                                 \
            _mm512_set1_epi32(*(const unaligned_i32 *)(xq + (size_t)(r) * pitch + 4 * i)); \
        DP(a##r##0, xb, w0); DP(a##r##1, xb, w1); DP(a##r##2, xb, w2); DP(a##r##3, xb, w3); \
    }
#define DECL4(r) __m512i a##r##0 = z, a##r##1 = z, a##r##2 = z, a##r##3 = z;
#define STORE4(r)                                                                           \
    store_vnni(a##r##0, sx[r], L, (p0 + 0) * 16, y + (size_t)(r) * ys, accumulate);        \
    store_vnni(a##r##1, sx[r], L, (p0 + 1) * 16, y + (size_t)(r) * ys, accumulate);        \
    store_vnni(a##r##2, sx[r], L, (p0 + 2) * 16, y + (size_t)(r) * ys, accumulate);        \
    store_vnni(a##r##3, sx[r], L, (p0 + 3) * 16, y + (size_t)(r) * ys, accumulate);

#define TILE_VNNI_X4(R)                                                                      \
    static TVNNI void tile_vnni_##R##x4(const rs_linear *L, int p0, const uint8_t *xq,       \
                                        int pitch, const float *sx, float *y, int ys,        \
                                        int accumulate) {                                    \
        const int in4 = pitch / 4;                                                           \
        const int8_t *W = L->qweight + (size_t)p0 * in4 * 64;                                \
        const __m512i z = _mm512_setzero_si512();                                            \
        FOR_ROWS_##R(DECL4)                                                                  \
        for (int i = 0; i < in4; i++) {                                                      \
            const __m512i w0 = _mm512_load_si512(W + ((size_t)0 * in4 + i) * 64);            \
            const __m512i w1 = _mm512_load_si512(W + ((size_t)1 * in4 + i) * 64);            \
            const __m512i w2 = _mm512_load_si512(W + ((size_t)2 * in4 + i) * 64);            \
            const __m512i w3 = _mm512_load_si512(W + ((size_t)3 * in4 + i) * 64);            \
            FOR_ROWS_##R(ROWx4)                                                              \
        }                                                                                    \
        FOR_ROWS_##R(STORE4)                                                                 \
    }
TILE_VNNI_X4(1) TILE_VNNI_X4(2) TILE_VNNI_X4(3) TILE_VNNI_X4(4) TILE_VNNI_X4(5) TILE_VNNI_X4(6)

static inline __attribute__((always_inline)) TVNNI void tile_vnni(
    const int R, const int P, const rs_linear *L, int p0, const uint8_t *xq, int pitch,
    const float *sx, float *y, int ys, int accumulate) {
    const int in4 = pitch / 4;
    const int8_t *W = L->qweight + (size_t)p0 * in4 * 64;
    __m512i acc[6][4];
    for (int r = 0; r < R; r++)
        for (int p = 0; p < P; p++) acc[r][p] = _mm512_setzero_si512();
    for (int i = 0; i < in4; i++) {
        __m512i w[4];
        for (int p = 0; p < P; p++) w[p] = _mm512_load_si512(W + ((size_t)p * in4 + i) * 64);
        for (int r = 0; r < R; r++) {
            const __m512i xb = _mm512_set1_epi32(*(const unaligned_i32 *)(xq + (size_t)r * pitch + 4 * i));
            for (int p = 0; p < P; p++) acc[r][p] = _mm512_dpbusd_epi32(acc[r][p], xb, w[p]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int p = 0; p < P; p++)
            store_vnni(acc[r][p], sx[r], L, (p0 + p) * 16, y + (size_t)r * ys, accumulate);
}

#define ROWS_VNNI(R)                                                                         \
    static TVNNI void rows_vnni_##R(const rs_linear *L, int pa, int pz, const void *x,       \
                                    int pitch, const float *sx, float *y, int ys, int acc) { \
        const uint8_t *xq = x;                                                               \
        int p = pa;                                                                          \
        for (; p + 4 <= pz; p += 4) tile_vnni_##R##x4(L, p, xq, pitch, sx, y, ys, acc);       \
        switch (pz - p) {                                                                    \
        case 3: tile_vnni(R, 3, L, p, xq, pitch, sx, y, ys, acc); break;                     \
        case 2: tile_vnni(R, 2, L, p, xq, pitch, sx, y, ys, acc); break;                     \
        case 1: tile_vnni(R, 1, L, p, xq, pitch, sx, y, ys, acc); break;                     \
        default: break;                                                                      \
        }                                                                                    \
    }
ROWS_VNNI(1) ROWS_VNNI(2) ROWS_VNNI(3) ROWS_VNNI(4) ROWS_VNNI(5) ROWS_VNNI(6)

static void gemm_vnni(const rs_linear *L, int rows, const uint8_t *xq, int pitch,
                      const float *sx, float *y, int ys, int accumulate) {
    static const rs_int8_rows_fn by_rows[7] = {NULL, rows_vnni_1, rows_vnni_2, rows_vnni_3,
                                               rows_vnni_4, rows_vnni_5, rows_vnni_6};
    rs_int8_panels(by_rows, 6, L, rows, xq, pitch, (size_t)pitch, sx, y, ys, accumulate);
}

#define TAVX2 __attribute__((target("avx2,fma")))

static inline __attribute__((always_inline)) TAVX2 void store_avx2(
    __m256i lo, __m256i hi, float sx, const rs_linear *L, int o, float *y, int accumulate) {
    int32_t acc[16];
    _mm256_storeu_si256((__m256i *)acc, lo);
    _mm256_storeu_si256((__m256i *)(acc + 8), hi);
    const int left = L->out - o < 16 ? L->out - o : 16;
    for (int j = 0; j < left; j++) y[o + j] = rs_int8_finish(acc[j], sx, L, o + j, y + o + j, accumulate);
}

/* One 16-output panel for R = 1..4 rows, with named accumulators: from an accumulator
 * array GCC 12 stores every accumulator to the stack each iteration (as in the VNNI
 * tile above). */
#define DECL2(r) __m256i lo##r = _mm256_setzero_si256(), hi##r = _mm256_setzero_si256();
#define ROWx2(r)                                                                            \
    {                                                                                        \
        const __m256i xb =                                                                   \
            _mm256_set1_epi32(*(const unaligned_i32 *)(xq + (size_t)(r) * pitch16 + 2 * i)); \
        lo##r = _mm256_add_epi32(lo##r, _mm256_madd_epi16(xb, wl));                          \
        hi##r = _mm256_add_epi32(hi##r, _mm256_madd_epi16(xb, wh));                          \
    }
#define STORE2(r) store_avx2(lo##r, hi##r, sx[r], L, p * 16, y + (size_t)(r) * ys, accumulate);
#define TILE_AVX2(R)                                                                         \
    static inline __attribute__((always_inline)) TAVX2 void tile_avx2_##R(                  \
        const rs_linear *L, int p, const int16_t *xq, int pitch16, const float *sx,          \
        float *y, int ys, int accumulate) {                                                  \
        const int in2 = pitch16 / 2;                                                         \
        const int8_t *W = L->qweight + (size_t)p * in2 * 32;                                 \
        FOR_ROWS_##R(DECL2)                                                                  \
        for (int i = 0; i < in2; i++) {                                                      \
            const __m256i w8 = _mm256_load_si256((const __m256i *)(W + (size_t)i * 32));     \
            const __m256i wl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(w8));             \
            const __m256i wh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(w8, 1));        \
            FOR_ROWS_##R(ROWx2)                                                              \
        }                                                                                    \
        FOR_ROWS_##R(STORE2)                                                                 \
    }
TILE_AVX2(1) TILE_AVX2(2) TILE_AVX2(3) TILE_AVX2(4)

#define ROWS_AVX2(R)                                                                         \
    static TAVX2 void rows_avx2_##R(const rs_linear *L, int pa, int pz, const void *xq,      \
                                    int pitch16, const float *sx, float *y, int ys, int acc) { \
        for (int p = pa; p < pz; p++)                                                        \
            tile_avx2_##R(L, p, (const int16_t *)xq, pitch16, sx, y, ys, acc);               \
    }
ROWS_AVX2(1) ROWS_AVX2(2) ROWS_AVX2(3) ROWS_AVX2(4)

static void gemm_avx2(const rs_linear *L, int rows, const int16_t *xq, int pitch16,
                      const float *sx, float *y, int ys, int accumulate) {
    static const rs_int8_rows_fn by_rows[5] = {NULL, rows_avx2_1, rows_avx2_2, rows_avx2_3,
                                               rows_avx2_4};
    rs_int8_panels(by_rows, 4, L, rows, xq, pitch16, sizeof(int16_t) * (size_t)pitch16, sx, y,
                   ys, accumulate);
}
#endif

int rs_gemm_int8(const rs_linear *L, int rows, const float *x, int xs, float *y, int ys,
                 int accumulate) {
    if (L->qparts) {   /* y = part 0 (with the bias) + part 1 + ..., each with its own x scale */
        for (int k = 0, c0 = 0; c0 < L->in; c0 += L->qparts[k].in, k++)
            if (rs_gemm_int8(&L->qparts[k], rows, x + c0, xs, y, ys, accumulate || k > 0)) return 1;
        return 0;
    }
    const int kind = q_kind, in = L->in;
    const int pitch = kind == Q_AVX2 ? padded_in(kind, in) * 2 : padded_in(kind, in);  /* bytes */
    const size_t offset = (size_t)round_up((int)(sizeof(float) * rows), 64);
    unsigned char *buf = rs_gemm_scratch(offset + (size_t)rows * pitch);
    if (!buf) return 1;
    float *sx = (float *)buf;
    void *xq = buf + offset;
    quantize_rows(kind, rows, x, xs, in, pitch, xq, sx);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (kind == Q_VNNI) { gemm_vnni(L, rows, xq, pitch, sx, y, ys, accumulate); return 0; }
    if (kind == Q_AVX2) { gemm_avx2(L, rows, xq, pitch / 2, sx, y, ys, accumulate); return 0; }
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
    if (kind == Q_NEON_DOT) { rs_int8_neon_dot(L, rows, xq, pitch, sx, y, ys, accumulate); return 0; }
    if (kind == Q_NEON) { rs_int8_neon(L, rows, xq, pitch, sx, y, ys, accumulate); return 0; }
#endif
    gemm_portable(L, rows, xq, pitch, sx, y, ys, accumulate);
    return 0;
}
