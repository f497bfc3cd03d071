/* Attention contexts from values in panels: see rs_context.h. */
#include "rs_context.h"

#include <string.h>

#include "rs_kernels.h"
#include "rs_limits.h"

#define PANEL RS_CONTEXT_PANEL

size_t rs_context_panel_floats(int positions, int width) {
    const size_t panels = width > 0 ? ((size_t)width + PANEL - 1) / PANEL : 0;
    return rs_size_mul3(panels, positions > 0 ? (size_t)positions : 0, PANEL);
}

void rs_context_pack(const float *values, int len, int width, int positions, float *panels) {
    const int P = (width + PANEL - 1) / PANEL;
    for (int p = 0; p < P; p++) {
        const int c0 = p * PANEL, cols = width - c0 < PANEL ? width - c0 : PANEL;
        float *panel = panels + (size_t)p * positions * PANEL;
        for (int j = 0; j < len; j++) {
            float *dst = panel + (size_t)j * PANEL;
            memcpy(dst, values + (size_t)j * width + c0, sizeof(float) * cols);
            for (int c = cols; c < PANEL; c++) dst[c] = 0.0f;
        }
        memset(panel + (size_t)len * PANEL, 0, sizeof(float) * PANEL * (size_t)(positions - len));
    }
}

#if defined(__GNUC__) || defined(__clang__)
/* 8 lanes: one ymm on AVX2 and AVX-512 (a 16-float vector went through the stack on AVX2),
   two q registers on NEON */
typedef float context_lanes __attribute__((vector_size(8 * sizeof(float))));

/* N rows by Q panels from panel p: 2 N Q sums in registers while the panels' positions
   stream past in order. */
static inline __attribute__((always_inline)) void tile(
    const int N, const int Q, const float *probs, int probs_stride, const float *panels,
    int positions, int len, int width, int p, float *context, int context_stride) {
    context_lanes lo[6][4], hi[6][4];
    for (int r = 0; r < N; r++)
        for (int q = 0; q < Q; q++) lo[r][q] = hi[r][q] = (context_lanes){0};
    const float *base = panels + (size_t)p * positions * PANEL;
    for (int j = 0; j < len; j++) {
        context_lanes hl[4], hh[4];
        for (int q = 0; q < Q; q++) {
            const float *h = base + ((size_t)q * positions + j) * PANEL;
            memcpy(&hl[q], h, sizeof hl[q]);
            memcpy(&hh[q], h + 8, sizeof hh[q]);
        }
        for (int r = 0; r < N; r++) {
            const float a = probs[(size_t)r * probs_stride + j];
            for (int q = 0; q < Q; q++) {
                lo[r][q] += a * hl[q];
                hi[r][q] += a * hh[q];
            }
        }
    }
    for (int r = 0; r < N; r++)
        for (int q = 0; q < Q; q++) {
            float sums[PANEL];
            memcpy(sums, &lo[r][q], sizeof lo[r][q]);
            memcpy(sums + 8, &hi[r][q], sizeof hi[r][q]);
            const int c0 = (p + q) * PANEL, cols = width - c0 < PANEL ? width - c0 : PANEL;
            memcpy(context + (size_t)r * context_stride + c0, sums, sizeof(float) * cols);
        }
}

/* panels per tile for N rows: at least 8 independent sums (the additions' latency times
   their ports), at most 12 (16 vector registers with the loads and the broadcast) */
#define CONTEXT_PANELS(N) ((N) == 1 ? 4 : (N) <= 3 ? 2 : 1)

static inline __attribute__((always_inline)) void group(
    const int N, const float *probs, int probs_stride, const float *panels, int positions,
    int len, int width, float *context, int context_stride) {
    const int P = (width + PANEL - 1) / PANEL, Q = CONTEXT_PANELS(N);
    int p = 0;
    for (; p + Q <= P; p += Q)
        tile(N, Q, probs, probs_stride, panels, positions, len, width, p, context, context_stride);
    for (; p < P; p++)
        tile(N, 1, probs, probs_stride, panels, positions, len, width, p, context, context_stride);
}
#else
/* other compilers: the same sums one row and column at a time */
static void group(const int N, const float *probs, int probs_stride, const float *panels,
                  int positions, int len, int width, float *context, int context_stride) {
    for (int r = 0; r < N; r++)
        for (int i = 0; i < width; i++) {
            const float *h = panels + ((size_t)(i / PANEL) * positions) * PANEL + i % PANEL;
            float c = 0.0f;
            for (int j = 0; j < len; j++) c += probs[(size_t)r * probs_stride + j] * h[(size_t)j * PANEL];
            context[(size_t)r * context_stride + i] = c;
        }
}
#endif

RS_CLONES
void rs_context_rows(int n, const float *probs, int probs_stride, const float *panels,
                     int positions, int len, int width, float *context, int context_stride) {
    for (int r = 0, g; r < n; r += g) { /* up to six rows per pass over the panels */
        g = n - r < 6 ? n - r : 6;
        const float *p = probs + (size_t)r * probs_stride;
        float *c = context + (size_t)r * context_stride;
        switch (g) {
        case 6: group(6, p, probs_stride, panels, positions, len, width, c, context_stride); break;
        case 5: group(5, p, probs_stride, panels, positions, len, width, c, context_stride); break;
        case 4: group(4, p, probs_stride, panels, positions, len, width, c, context_stride); break;
        case 3: group(3, p, probs_stride, panels, positions, len, width, c, context_stride); break;
        case 2: group(2, p, probs_stride, panels, positions, len, width, c, context_stride); break;
        default: group(1, p, probs_stride, panels, positions, len, width, c, context_stride); break;
        }
    }
}
