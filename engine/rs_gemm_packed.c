/* y = x W^T + b with W repacked once at load time into panels of 16 outputs:
 *   packed[(p * in + i) * 16 + j] = W[p * 16 + j, i]   (zero past the last output)
 * so one vector load brings the weights of 16 outputs for input i. A tile of R rows by
 * P panels broadcasts x[r, i] and accumulates with FMA: no horizontal reductions, and the
 * weights stream once per call (outputs are walked in L2-sized blocks, every row tile
 * runs over a block before the next).
 *
 * Each output element is the FMA chain over i = 0..in-1 in order, then + bias, then
 * + the old y when accumulating, whatever the tile shape: a row's result does not depend
 * on the other rows of the block. */
#include "rs_gemm.h"
#include "rs_finite.h"
#include "rs_platform.h"

#include <stdlib.h>
#include <string.h>

#define PANEL 16
#define L2_BLOCK_BYTES (256 * 1024)

float *rs_pack_weights_checked(const float *w, int out, int in, int *nonfinite) {
    const int panels = (out + PANEL - 1) / PANEL;
    float *packed = rs_aligned_alloc(64, (size_t)panels * in * PANEL * sizeof(float) + 64);
    if (!packed) return NULL;
    /* packing reads every weight once anyway: each panel is checked for NaN and inf
       right after it is written, while it is still in cache */
    int bad = 0;
    for (int p = 0; p < panels; p++) {
        float *panel = packed + (size_t)p * in * PANEL;
        for (int i = 0; i < in; i++) {
            float *dst = panel + (size_t)i * PANEL;
            for (int j = 0; j < PANEL; j++) {
                const int o = p * PANEL + j;
                dst[j] = o < out ? w[(size_t)o * in + i] : 0.0f;
            }
        }
        bad |= rs_any_nonfinite(panel, (size_t)in * PANEL) != 0;
    }
    *nonfinite = bad;
    return packed;
}

float *rs_pack_weights(const float *w, int out, int in) {
    int nonfinite;
    return rs_pack_weights_checked(w, out, in, &nonfinite);
}

static inline int panel_block(int in) {
    int pb = L2_BLOCK_BYTES / (int)(sizeof(float) * PANEL * (in > 0 ? in : 1));
    return pb < 4 ? 4 : pb & ~3;
}

void rs_gemm_panels(const rs_panel_rows_fn *by_rows, int max_rows, const rs_linear *L,
                    int rows, const float *x, int xs, float *y, int ys, int accumulate,
                    int o_begin, int o_end) {
    const int pb = panel_block(L->in), pa = o_begin / PANEL, pz = (o_end + PANEL - 1) / PANEL;
    for (int p0 = pa; p0 < pz; p0 += pb) {
        const int p1 = p0 + pb < pz ? p0 + pb : pz;
        for (int r = 0; r < rows; r += max_rows) {
            const int R = rows - r < max_rows ? rows - r : max_rows;
            by_rows[R](L, p0, p1, x + (size_t)r * xs, xs, y + (size_t)r * ys, ys, accumulate);
        }
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "rs_gemm_panel_store.h"

/* ---------------------------------------------------------------- AVX-512 */

static inline __attribute__((always_inline)) T512 void tile512(
    const int R, const int P, const rs_linear *L, int p0, const float *x, int xs, float *y,
    int ys, int accumulate) {
    const int in = L->in;
    const float *W = L->packed + (size_t)p0 * in * PANEL;
    __m512 acc[6][4];
    for (int r = 0; r < R; r++)
        for (int p = 0; p < P; p++) acc[r][p] = _mm512_setzero_ps();
    for (int i = 0; i < in; i++) {
        __m512 w[4];
        for (int p = 0; p < P; p++) w[p] = _mm512_load_ps(W + ((size_t)p * in + i) * PANEL);
        for (int r = 0; r < R; r++) {
            const __m512 xv = _mm512_set1_ps(x[(size_t)r * xs + i]);
            for (int p = 0; p < P; p++) acc[r][p] = _mm512_fmadd_ps(xv, w[p], acc[r][p]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int p = 0; p < P; p++)
            store512(acc[r][p], L, (p0 + p) * PANEL, y + (size_t)r * ys, accumulate);
}

#define ROWS512(R)                                                                          \
    static T512 void rows512_##R(const rs_linear *L, int pa, int pz, const float *x, int xs,  \
                                 float *y, int ys, int acc) {                               \
        int p = pa;                                                                         \
        for (; p + 4 <= pz; p += 4) tile512(R, 4, L, p, x, xs, y, ys, acc);                 \
        switch (pz - p) {                                                                   \
        case 3: tile512(R, 3, L, p, x, xs, y, ys, acc); break;                              \
        case 2: tile512(R, 2, L, p, x, xs, y, ys, acc); break;                              \
        case 1: tile512(R, 1, L, p, x, xs, y, ys, acc); break;                              \
        default: break;                                                                     \
        }                                                                                   \
    }
ROWS512(1) ROWS512(2) ROWS512(3) ROWS512(4) ROWS512(5) ROWS512(6)

T512 void rs_gemm_packed_avx512(const rs_linear *L, int rows, const float *x, int xs, float *y,
                                int ys, int accumulate, int o_begin, int o_end) {
    static const rs_panel_rows_fn by_rows[7] = {NULL, rows512_1, rows512_2, rows512_3, rows512_4, rows512_5, rows512_6};
    rs_gemm_panels(by_rows, 6, L, rows, x, xs, y, ys, accumulate, o_begin, o_end);
}

/* ---------------------------------------------------------------- AVX2 + FMA */

/* R rows by P panels: 2 R P accumulators. With one panel a 1-row product has only two
   FMA chains, so it waits on the FMA latency (4 cycles, 2 ports: 8 chains keep it busy);
   small row counts therefore take several panels at once (PANELS256).
   Tiles of 2 or more rows also ask for their panels' weights 2 KB ahead: their FMAs fill
   the out-of-order window, so too few loads are in flight for the weights of a matrix
   larger than the caches to stream at the memory's rate (Zen 3, five rows of the products
   of a Show-Attend-Tell step, 51 MB of weights: 3.1 -> 2.1 ms). A 1-row tile has loads
   enough in flight and is slower with them. */
#define PREFETCH_AHEAD (32 * PANEL) /* floats: 32 cache lines */
static inline __attribute__((always_inline)) T256 void tile256(
    const int R, const int P, const rs_linear *L, int p0, const float *x, int xs, float *y,
    int ys, int accumulate) {
    const int in = L->in;
    const float *W = L->packed + (size_t)p0 * in * PANEL;
    __m256 lo[6][4], hi[6][4];
    for (int r = 0; r < R; r++)
        for (int p = 0; p < P; p++) lo[r][p] = hi[r][p] = _mm256_setzero_ps();
    for (int i = 0; i < in; i++) {
        for (int p = 0; p < P; p++) {
            const float *w = W + ((size_t)p * in + i) * PANEL;
            if (R > 1) _mm_prefetch((const char *)(w + PREFETCH_AHEAD), _MM_HINT_T0);
            const __m256 wl = _mm256_load_ps(w), wh = _mm256_load_ps(w + 8);
            for (int r = 0; r < R; r++) {
                const __m256 xv = _mm256_set1_ps(x[(size_t)r * xs + i]);
                lo[r][p] = _mm256_fmadd_ps(xv, wl, lo[r][p]);
                hi[r][p] = _mm256_fmadd_ps(xv, wh, hi[r][p]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int p = 0; p < P; p++)
            store256(lo[r][p], hi[r][p], L, (p0 + p) * PANEL, y + (size_t)r * ys, accumulate);
}

/* panels per tile for R rows: the most that fit 16 registers with >= 8 chains */
#define PANELS256(R) ((R) == 1 ? 4 : (R) <= 3 ? 2 : 1)

#define ROWS256(R)                                                                          \
    static T256 void rows256_##R(const rs_linear *L, int pa, int pz, const float *x, int xs,  \
                                 float *y, int ys, int acc) {                               \
        const int P = PANELS256(R);                                                         \
        int p = pa;                                                                         \
        for (; p + P <= pz; p += P) tile256(R, P, L, p, x, xs, y, ys, acc);                 \
        for (; p < pz; p++) tile256(R, 1, L, p, x, xs, y, ys, acc);                         \
    }
ROWS256(1) ROWS256(2) ROWS256(3) ROWS256(4) ROWS256(5) ROWS256(6)

T256 void rs_gemm_packed_avx2(const rs_linear *L, int rows, const float *x, int xs, float *y,
                              int ys, int accumulate, int o_begin, int o_end) {
    static const rs_panel_rows_fn by_rows[7] = {NULL, rows256_1, rows256_2, rows256_3, rows256_4, rows256_5, rows256_6};
    rs_gemm_panels(by_rows, 6, L, rows, x, xs, y, ys, accumulate, o_begin, o_end);
}
#endif
