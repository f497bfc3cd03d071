/* int8 matrix products on AArch64 (see rs_gemm_int8.c for the quantization and
 * rs_gemm_int8_kernels.h for the contract): exact int32 sums of the int8 products, then
 * rs_int8_finish, so the results are those of every other int8 kernel, bit for bit.
 *
 *  - With the DotProd extension (Armv8.2+: Neoverse N1/V1/N2, Cortex-A76 and later,
 *    Apple M1 and later), sdot multiplies 4 int8 pairs and adds them into each int32
 *    lane: the weights are in the VNNI panel layout (16 outputs x 4 inputs per 64
 *    bytes), a register holds 4 outputs x 4 inputs, and each row's group of 4 inputs is
 *    taken by lane (vdotq_laneq_s32).
 *  - Without it (Cortex-A53/A55/A72/A73), a tile of up to 4 rows x 4 outputs multiplies
 *    16 inputs at a time into int16 (vmull_s8/vmlal_s8: two products of |q| <= 127 stay
 *    below 2^15) and adds pairs into int32 (vpadalq_s16).
 * The DotProd kernel is compiled for Armv8.2-a+dotprod and chosen only when the CPU
 * reports the extension (rs_int8_neon_has_dot). */
#include "rs_gemm_int8_kernels.h"

#if defined(__aarch64__) || defined(_M_ARM64)
#include "rs_neon.h"
#include <string.h>

#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#elif defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#ifndef PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE
#define PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE 43
#endif
#endif

/* How the sdot kernel is compiled: for the whole file when the build targets DotProd
 * already, else for those functions only (GCC; clang 17+ also has arm_neon.h intrinsics
 * usable under a target attribute). */
#if defined(__ARM_FEATURE_DOTPROD)
#define HAVE_DOT 1
#define TDOT
#elif defined(__GNUC__) && !defined(__clang__)
#define HAVE_DOT 1
#define TDOT __attribute__((target("arch=armv8.2-a+dotprod")))
#elif defined(__clang__) && __clang_major__ >= 17 && !defined(__apple_build_version__)
#define HAVE_DOT 1
#define TDOT __attribute__((target("dotprod")))
#else
#define HAVE_DOT 0
#endif

int rs_int8_neon_has_dot(void) {
#if !HAVE_DOT
    return 0;
#elif defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
    int has = 0;
    size_t size = sizeof(has);
    if (sysctlbyname("hw.optional.arm.FEAT_DotProd", &has, &size, NULL, 0) != 0)
        return 1;   /* macOS before 12 does not name features; every Apple M1+ has it */
    return has != 0;
#elif defined(_WIN32)
    return IsProcessorFeaturePresent(PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE) != 0;
#else
    return 0;
#endif
}

/* ------------------------------------------------------------- widening (all AArch64) */

/* acc += x[0..16) * w[0..16) as int32 lanes (pairs of int16 products). */
static RS_ALWAYS_INLINE int32x4_t mla16(int32x4_t acc, int8x16_t x, int8x16_t w) {
    int16x8_t p = vmull_s8(vget_low_s8(x), vget_low_s8(w));
    p = vmlal_s8(p, vget_high_s8(x), vget_high_s8(w));
    return vpadalq_s16(acc, p);
}

/* R rows (1..4) x O outputs (1..4) starting at output o. */
static RS_ALWAYS_INLINE void tile_widen(const int R, const int O, const rs_linear *L, int o,
                                     const int8_t *xq, int pitch, const float *sx, float *y,
                                     int ys, int accumulate) {
    const int in = L->in;
    const int8_t *W = L->qweight + (size_t)o * in;
    int32x4_t acc[4][4];
    for (int r = 0; r < R; r++)
        for (int k = 0; k < O; k++) acc[r][k] = vdupq_n_s32(0);
    int i = 0;
    for (; i + 16 <= in; i += 16) {
        int8x16_t xv[4], wv[4];
        for (int r = 0; r < R; r++) xv[r] = vld1q_s8(xq + (size_t)r * pitch + i);
        for (int k = 0; k < O; k++) wv[k] = vld1q_s8(W + (size_t)k * in + i);
        for (int r = 0; r < R; r++)
            for (int k = 0; k < O; k++) acc[r][k] = mla16(acc[r][k], xv[r], wv[k]);
    }
    for (int r = 0; r < R; r++)
        for (int k = 0; k < O; k++) {
            const int8_t *xr = xq + (size_t)r * pitch, *w = W + (size_t)k * in;
            int32_t s = vaddvq_s32(acc[r][k]);
            for (int t = i; t < in; t++) s += (int32_t)xr[t] * w[t];
            float *yo = y + (size_t)r * ys + o + k;
            *yo = rs_int8_finish(s, sx[r], L, o + k, yo, accumulate);
        }
}

#define ROWS_WIDEN(R)                                                                     \
    static void rows_widen_##R(const rs_linear *L, const int8_t *xq, int pitch,           \
                               const float *sx, float *y, int ys, int accumulate) {       \
        int o = 0;                                                                        \
        for (; o + 4 <= L->out; o += 4)                                                   \
            tile_widen(R, 4, L, o, xq, pitch, sx, y, ys, accumulate);                     \
        for (; o < L->out; o++) tile_widen(R, 1, L, o, xq, pitch, sx, y, ys, accumulate); \
    }
ROWS_WIDEN(1) ROWS_WIDEN(2) ROWS_WIDEN(3) ROWS_WIDEN(4)

void rs_int8_neon(const rs_linear *L, int rows, const int8_t *xq, int pitch, const float *sx,
                  float *y, int ys, int accumulate) {
    typedef void (*fn)(const rs_linear *, const int8_t *, int, const float *, float *, int, int);
    static const fn by_rows[5] = {NULL, rows_widen_1, rows_widen_2, rows_widen_3, rows_widen_4};
    for (int r = 0; r < rows; r += 4) {
        const int R = rows - r < 4 ? rows - r : 4;
        by_rows[R](L, xq + (size_t)r * pitch, pitch, sx + r, y + (size_t)r * ys, ys, accumulate);
    }
}

/* ------------------------------------------------------------- sdot (DotProd) */
#if HAVE_DOT

static void store_panel(const int32x4_t acc[4], float sx, const rs_linear *L, int o,
                        float *y, int accumulate) {
    int32_t sums[16];
    for (int q = 0; q < 4; q++) vst1q_s32(sums + 4 * q, acc[q]);
    const int left = L->out - o < 16 ? L->out - o : 16;
    for (int j = 0; j < left; j++) y[o + j] = rs_int8_finish(sums[j], sx, L, o + j, y + o + j, accumulate);
}

/* Inputs 4 * (i4 + LANE) .. + 3 of the R rows held in xv, into the accumulators. */
#define DOT_LANE(LANE)                                                                   \
    {                                                                                    \
        const int8_t *w = W + (size_t)(i4 + LANE) * 64;                                  \
        const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16), w2 = vld1q_s8(w + 32),  \
                        w3 = vld1q_s8(w + 48);                                           \
        for (int r = 0; r < R; r++) {                                                    \
            acc[r][0] = vdotq_laneq_s32(acc[r][0], w0, xv[r], LANE);                     \
            acc[r][1] = vdotq_laneq_s32(acc[r][1], w1, xv[r], LANE);                     \
            acc[r][2] = vdotq_laneq_s32(acc[r][2], w2, xv[r], LANE);                     \
            acc[r][3] = vdotq_laneq_s32(acc[r][3], w3, xv[r], LANE);                     \
        }                                                                                \
    }

/* R rows (1..4) against panel p (16 outputs). */
static RS_ALWAYS_INLINE TDOT void tile_dot(const int R, const rs_linear *L, int p,
                                        const int8_t *xq, int pitch, const float *sx,
                                        float *y, int ys, int accumulate) {
    const int in4 = pitch / 4;
    const int8_t *W = L->qweight + (size_t)p * in4 * 64;
    int32x4_t acc[4][4];
    for (int r = 0; r < R; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = vdupq_n_s32(0);
    int i4 = 0;
    for (; i4 + 4 <= in4; i4 += 4) {
        int8x16_t xv[4];
        for (int r = 0; r < R; r++) xv[r] = vld1q_s8(xq + (size_t)r * pitch + 4 * i4);
        DOT_LANE(0) DOT_LANE(1) DOT_LANE(2) DOT_LANE(3)
    }
    for (; i4 < in4; i4++) {
        const int8_t *w = W + (size_t)i4 * 64;
        const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16), w2 = vld1q_s8(w + 32),
                        w3 = vld1q_s8(w + 48);
        for (int r = 0; r < R; r++) {
            int32_t group;
            memcpy(&group, xq + (size_t)r * pitch + 4 * i4, 4);
            const int8x16_t xb = vreinterpretq_s8_s32(vdupq_n_s32(group));
            acc[r][0] = vdotq_s32(acc[r][0], w0, xb);
            acc[r][1] = vdotq_s32(acc[r][1], w1, xb);
            acc[r][2] = vdotq_s32(acc[r][2], w2, xb);
            acc[r][3] = vdotq_s32(acc[r][3], w3, xb);
        }
    }
    for (int r = 0; r < R; r++)
        store_panel(acc[r], sx[r], L, p * 16, y + (size_t)r * ys, accumulate);
}

#define ROWS_DOT(R)                                                                      \
    static TDOT void rows_dot_##R(const rs_linear *L, int pa, int pz, const void *xq,    \
                                  int pitch, const float *sx, float *y, int ys, int acc) { \
        for (int p = pa; p < pz; p++)                                                    \
            tile_dot(R, L, p, (const int8_t *)xq, pitch, sx, y, ys, acc);                \
    }
ROWS_DOT(1) ROWS_DOT(2) ROWS_DOT(3) ROWS_DOT(4)

void rs_int8_neon_dot(const rs_linear *L, int rows, const int8_t *xq, int pitch,
                      const float *sx, float *y, int ys, int accumulate) {
    static const rs_int8_rows_fn by_rows[5] = {NULL, rows_dot_1, rows_dot_2, rows_dot_3,
                                               rows_dot_4};
    rs_int8_panels(by_rows, 4, L, rows, xq, pitch, (size_t)pitch, sx, y, ys, accumulate);
}
#else   /* a compiler without DotProd intrinsics: never called, rs_int8_neon_has_dot is 0 */
void rs_int8_neon_dot(const rs_linear *L, int rows, const int8_t *xq, int pitch,
                      const float *sx, float *y, int ys, int accumulate) {
    (void)L; (void)rows; (void)xq; (void)pitch; (void)sx; (void)y; (void)ys; (void)accumulate;
}
#endif

#else
int rs_int8_neon_has_dot(void) { return 0; }
#endif
