/* y = x W^T + b on AArch64 with NEON, from the 16-output weight panels of
 * rs_gemm_packed.c (packed[(p * in + i) * 16 + j] = W[p * 16 + j, i]): a panel is four
 * 128-bit registers, and a tile of up to 4 rows keeps 16 accumulators, fed one input at a
 * time with fused multiply-adds by lane (vfmaq_laneq_f32).
 *
 * Each output element is the fused multiply-add chain over i = 0..in-1 in order, then
 * + bias, then + the old y when accumulating, exactly as in the AVX2 and AVX-512 panel
 * kernels: a fused multiply-add rounds once on every instruction set, so the three give
 * bit-identical results, and a row's result does not depend on the rest of the block. */
#include "rs_gemm.h"

#if defined(__aarch64__) || defined(_M_ARM64)
#include "rs_neon.h"

#define PANEL 16

/* y[o .. o + 16) from one accumulated panel: + bias, then the old y added to it. */
static inline void store_panel(const float32x4_t acc[4], const rs_linear *L, int o, float *y,
                               int accumulate) {
    const int left = L->out - o;
    if (left >= PANEL) {
        for (int q = 0; q < 4; q++) {
            float32x4_t v = acc[q];
            if (L->b) v = vaddq_f32(v, vld1q_f32(L->b + o + 4 * q));
            if (accumulate) v = vaddq_f32(vld1q_f32(y + o + 4 * q), v);
            vst1q_f32(y + o + 4 * q, v);
        }
        return;
    }
    float tmp[PANEL];
    for (int q = 0; q < 4; q++) vst1q_f32(tmp + 4 * q, acc[q]);
    for (int j = 0; j < left; j++) {
        const float v = L->b ? tmp[j] + L->b[o + j] : tmp[j];
        y[o + j] = accumulate ? y[o + j] + v : v;
    }
}

/* Input i + LANE of the R rows held in xv, into the accumulators. */
#define FMA_LANE(LANE)                                                                 \
    {                                                                                  \
        const float *w = W + (size_t)(i + LANE) * PANEL;                               \
        const float32x4_t w0 = vld1q_f32(w), w1 = vld1q_f32(w + 4),                    \
                          w2 = vld1q_f32(w + 8), w3 = vld1q_f32(w + 12);               \
        for (int r = 0; r < R; r++) {                                                  \
            acc[r][0] = vfmaq_laneq_f32(acc[r][0], w0, xv[r], LANE);                   \
            acc[r][1] = vfmaq_laneq_f32(acc[r][1], w1, xv[r], LANE);                   \
            acc[r][2] = vfmaq_laneq_f32(acc[r][2], w2, xv[r], LANE);                   \
            acc[r][3] = vfmaq_laneq_f32(acc[r][3], w3, xv[r], LANE);                   \
        }                                                                              \
    }

/* R rows (1..4) of x against panel p. */
static RS_ALWAYS_INLINE void tile(
    const int R, const rs_linear *L, int p, const float *x, int xs, float *y, int ys,
    int accumulate) {
    const int in = L->in;
    const float *W = L->packed + (size_t)p * in * PANEL;
    float32x4_t acc[4][4];
    for (int r = 0; r < R; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 4 <= in; i += 4) {
        float32x4_t xv[4];
        for (int r = 0; r < R; r++) xv[r] = vld1q_f32(x + (size_t)r * xs + i);
        FMA_LANE(0) FMA_LANE(1) FMA_LANE(2) FMA_LANE(3)
    }
    for (; i < in; i++) {
        const float *w = W + (size_t)i * PANEL;
        const float32x4_t w0 = vld1q_f32(w), w1 = vld1q_f32(w + 4), w2 = vld1q_f32(w + 8),
                          w3 = vld1q_f32(w + 12);
        for (int r = 0; r < R; r++) {
            const float xr = x[(size_t)r * xs + i];
            acc[r][0] = vfmaq_n_f32(acc[r][0], w0, xr);
            acc[r][1] = vfmaq_n_f32(acc[r][1], w1, xr);
            acc[r][2] = vfmaq_n_f32(acc[r][2], w2, xr);
            acc[r][3] = vfmaq_n_f32(acc[r][3], w3, xr);
        }
    }
    for (int r = 0; r < R; r++) store_panel(acc[r], L, p * PANEL, y + (size_t)r * ys, accumulate);
}

#define ROWS(R)                                                                         \
    static void rows_##R(const rs_linear *L, int pa, int pz, const float *x, int xs,     \
                         float *y, int ys, int acc) {                                    \
        for (int p = pa; p < pz; p++) tile(R, L, p, x, xs, y, ys, acc);                  \
    }
ROWS(1) ROWS(2) ROWS(3) ROWS(4)

/* Tiles of up to 4 rows: 16 accumulators, 4 weight vectors and 4 row vectors of the 32
 * registers. */
void rs_gemm_packed_neon(const rs_linear *L, int rows, const float *x, int xs, float *y,
                         int ys, int accumulate, int o_begin, int o_end) {
    static const rs_panel_rows_fn by_rows[5] = {NULL, rows_1, rows_2, rows_3, rows_4};
    rs_gemm_panels(by_rows, 4, L, rows, x, xs, y, ys, accumulate, o_begin, o_end);
}

#endif
