/* The engine's matrix and element-wise kernels, checked outside Python so that they can be
 * built for another CPU (AArch64, with a cross compiler) and run under an emulator
 * (qemu-aarch64): tests/test_native_kernels.py builds and runs this file.
 *
 * Every kernel this CPU chooses (and the portable ones) is compared with a plain
 * reference on awkward sizes: the float products with a double-precision sum, the int8
 * products with the exact integer product and the engine's documented rounding (bit for
 * bit), the bfloat16 products with the documented arithmetic on the rounded operands (bit
 * for bit) and a double-precision sum, exp/tanh/sigmoid/log-softmax with the C library in
 * double. Rows and vector tails
 * are checked to be independent of their neighbours, and threads to give the serial
 * results. Each family's outputs are hashed and printed ("digest NAME HEX"), so that runs
 * on different instruction sets and CPUs can be compared bit for bit.
 *
 * Output: "isa fp32=... int8=...", "bf16 ISA", one "digest" line per family, "FAIL ..."
 * lines, and "checked N" at the end; exit status 0 when nothing failed. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_context.h"
#include "rs_gemm.h"
#include "rs_gemm_bf16.h"
#include "rs_gemm_int8.h"
#include "rs_kernels.h"
#include "rs_platform.h"
#include "rs_vmath.h"

static int failures, checks;

static void expect(int ok, const char *what, int a, int b, int c) {
    checks++;
    if (!ok && failures++ < 30) printf("FAIL %s (%d, %d, %d)\n", what, a, b, c);
}

/* ------------------------------------------------------------ inputs and digests */
static uint64_t rng_state = 88172645463325252ull;

/* uniform in [-1, 1) on a 2^-23 grid: the same floats on every platform */
static float uniform(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((int32_t)(rng_state >> 32) >> 8) * (1.0f / 8388608.0f);
}

static float *random_floats(size_t n, float scale) {
    float *a = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) a[i] = uniform() * scale;
    return a;
}

typedef struct { const char *name; uint64_t h; } digest;
static digest digests[16];
static int n_digests;

static void hash_into(const char *name, const float *a, size_t n) {
    digest *d = NULL;
    for (int k = 0; k < n_digests; k++)
        if (strcmp(digests[k].name, name) == 0) d = &digests[k];
    if (!d) {
        d = &digests[n_digests++];
        d->name = name;
        d->h = 1469598103934665603ull;   /* FNV-1a */
    }
    const unsigned char *p = (const unsigned char *)a;
    for (size_t i = 0; i < n * sizeof(float); i++) d->h = (d->h ^ p[i]) * 1099511628211ull;
}

static int same_bits(const float *a, const float *b, size_t n) {
    return n == 0 || memcmp(a, b, n * sizeof(float)) == 0;
}

/* ------------------------------------------------------------ LSTM cell */
/* rs_vlstm_cell against its parts (rs_vsigmoid and rs_vtanh over the gate blocks, the
 * cell and output as plain loops): the same bits for widths with and without a vector
 * tail, with gates that saturate, overflow and are NaN. */
static void check_lstm_cell(void) {
    static const int WIDTHS[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 40, 128, 129};
    for (size_t wi = 0; wi < sizeof(WIDTHS) / sizeof(WIDTHS[0]); wi++) {
        const int H = WIDTHS[wi];
        float *x = random_floats((size_t)4 * H, 6.0f), *g = random_floats((size_t)4 * H, 6.0f);
        float *c0 = random_floats(H, 3.0f);
        const float special[] = {NAN, INFINITY, -INFINITY, 100.0f, -100.0f, 0.0f, -0.0f};
        for (int k = 0; k < 7 && k < 4 * H; k++) g[(k * 5 + 1) % (4 * H)] = special[k];
        float *ga = malloc(sizeof(float) * 4 * H), *gb = malloc(sizeof(float) * 4 * H);
        float *ca = malloc(sizeof(float) * H), *cb = malloc(sizeof(float) * H);
        float *ha = malloc(sizeof(float) * H), *hb = malloc(sizeof(float) * H);
        memcpy(ga, g, sizeof(float) * 4 * H);
        memcpy(gb, g, sizeof(float) * 4 * H);
        memcpy(ca, c0, sizeof(float) * H);
        memcpy(cb, c0, sizeof(float) * H);
        rs_vlstm_cell(x, ga, ca, ha, H);
        for (int j = 0; j < 4 * H; j++) gb[j] += x[j];
        rs_vsigmoid(gb, 2 * H);
        rs_vtanh(gb + 2 * H, H);
        rs_vsigmoid(gb + 3 * H, H);
        for (int j = 0; j < H; j++) {
            const float keep = gb[H + j] * cb[j], add = gb[j] * gb[2 * H + j];
            cb[j] = keep + add;
            gb[2 * H + j] = cb[j];
        }
        rs_vtanh(gb + 2 * H, H);
        for (int j = 0; j < H; j++) hb[j] = gb[3 * H + j] * gb[2 * H + j];
        expect(same_bits(ca, cb, H) && same_bits(ha, hb, H), "lstm cell", H, 0, 0);
        hash_into("lstm", ha, H);
        hash_into("lstm", ca, H);
        free(x); free(g); free(c0); free(ga); free(gb); free(ca); free(cb); free(ha); free(hb);
    }
}

/* ------------------------------------------------------------ attention contexts */
/* rs_context_rows against the plain loop (c = c + a * h, j in order, never fused): the
 * same bits for every row count (row groups of 6 and their panel tiles), width (panel
 * tails) and length, and nothing written past a row's width. */
static void check_contexts(void) {
    static const int ROWS[] = {1, 2, 3, 4, 5, 6, 7, 13};
    static const int WIDTHS[] = {1, 15, 16, 17, 40, 64, 80, 100};
    static const int LENGTHS[] = {0, 1, 7, 33};
    for (size_t wi = 0; wi < sizeof(WIDTHS) / sizeof(WIDTHS[0]); wi++)
        for (size_t li = 0; li < sizeof(LENGTHS) / sizeof(LENGTHS[0]); li++) {
            const int width = WIDTHS[wi], len = LENGTHS[li], positions = len + 3;
            const int stride = width + 5, probs_stride = positions;
            float *values = random_floats((size_t)len * width, 2.0f);
            float *probs = random_floats((size_t)13 * probs_stride, 1.0f);
            float *panels = malloc(sizeof(float) * (rs_context_panel_floats(positions, width) + 1));
            rs_context_pack(values, len, width, positions, panels);
            for (size_t ri = 0; ri < sizeof(ROWS) / sizeof(ROWS[0]); ri++) {
                const int n = ROWS[ri];
                float *got = malloc(sizeof(float) * (size_t)n * stride);
                float *want = malloc(sizeof(float) * (size_t)n * stride);
                for (int k = 0; k < n * stride; k++) got[k] = want[k] = -7.0f;
                for (int r = 0; r < n; r++)
                    for (int i = 0; i < width; i++) {
                        float c = 0.0f;
                        for (int j = 0; j < len; j++) {
                            const float term = probs[(size_t)r * probs_stride + j] * values[(size_t)j * width + i];
                            c = c + term;
                        }
                        want[(size_t)r * stride + i] = c;
                    }
                rs_context_rows(n, probs, probs_stride, panels, positions, len, width, got, stride);
                expect(same_bits(got, want, (size_t)n * stride), "context rows", n, width, len);
                hash_into("context", got, (size_t)n * stride);
                free(got); free(want);
            }
            free(values); free(probs); free(panels);
        }
}

/* ------------------------------------------------------------ float matrix products */
static const int SHAPES[][3] = {   /* rows, in, out */
    {1, 1, 1}, {1, 7, 3}, {3, 17, 5}, {4, 16, 16}, {5, 33, 9}, {9, 100, 31}, {6, 1, 129},
    {13, 257, 67}, {7, 64, 100}, {2, 3, 17}, {8, 5, 33}, {1, 300, 1000}, {3, 1030, 40},
};
#define N_SHAPES (int)(sizeof(SHAPES) / sizeof(SHAPES[0]))

static void reference(int rows, int in, int out, const float *x, const float *w, const float *b,
                      const float *y0, double *ref) {
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < in; i++) s += (double)x[(size_t)r * in + i] * w[(size_t)o * in + i];
            ref[(size_t)r * out + o] = s + (y0 ? y0[(size_t)r * out + o] : 0.0);
        }
}

static int close_to(const float *got, const double *ref, size_t n, int in) {
    const double atol = 1e-4 * sqrt(in > 1 ? in : 1);
    for (size_t k = 0; k < n; k++)
        if (!(fabs(got[k] - ref[k]) <= atol + 1e-5 * fabs(ref[k]))) return 0;
    return 1;
}

/* y (+)= x W^T + b through rs_linear_forward, with W packed for this CPU when it packs. */
static void forward(rs_linear *L, int rows, const float *x, float *y, int accumulate) {
    rs_linear_forward(L, rows, x, L->in, y, L->out, accumulate);
}

static void check_float_products(void) {
    for (int s = 0; s < N_SHAPES; s++) {
        const int rows = SHAPES[s][0], in = SHAPES[s][1], out = SHAPES[s][2];
        const size_t ny = (size_t)rows * out;
        float *x = random_floats((size_t)rows * in, 2.0f), *w = random_floats((size_t)out * in, 1.0f);
        float *b = random_floats(out, 1.0f), *y0 = random_floats(ny, 3.0f);
        float *y = malloc(sizeof(float) * ny), *one = malloc(sizeof(float) * out);
        double *ref = malloc(sizeof(double) * ny);
        rs_linear L = {0};
        L.w = w; L.b = b; L.out = out; L.in = in;
        float *packed = NULL;
        expect(rs_pack_linear(&L, &packed) == 0, "pack", rows, in, out);

        reference(rows, in, out, x, w, b, NULL, ref);
        forward(&L, rows, x, y, 0);
        expect(close_to(y, ref, ny, in), "fp32 x W^T + b", rows, in, out);
        hash_into("fp32", y, ny);
        for (int r = 0; r < rows; r++) {   /* a row alone gives the bits it has in the block */
            forward(&L, 1, x + (size_t)r * in, one, 0);
            expect(same_bits(one, y + (size_t)r * out, out), "fp32 row independence", rows, in, r);
        }
        memcpy(y, y0, sizeof(float) * ny);
        forward(&L, rows, x, y, 1);
        reference(rows, in, out, x, w, b, y0, ref);
        expect(close_to(y, ref, ny, in), "fp32 accumulate", rows, in, out);
        hash_into("fp32", y, ny);
        L.b = NULL;
        forward(&L, rows, x, y, 0);
        reference(rows, in, out, x, w, NULL, NULL, ref);
        expect(close_to(y, ref, ny, in), "fp32 without bias", rows, in, out);
        hash_into("fp32", y, ny);

        rs_gemm_portable(&L, rows, x, in, y, out, 0, 0, out);   /* the plain C kernel */
        expect(close_to(y, ref, ny, in), "fp32 portable", rows, in, out);
        hash_into("fp32-portable", y, ny);

        rs_aligned_free(packed);
        free(x); free(w); free(b); free(y0); free(y); free(one); free(ref);
    }
}

/* ------------------------------------------------------------ int8 matrix products */

/* The documented quantization (docs/model-format.md, rs_gemm_int8.c): per row,
 * s = max|a| / 127 (1 for a zero row); weights round(w / s), activations round(x * (1/s)). */
static float quantize_row(const float *a, int n, int activation, int *q) {
    float m = 0.0f;
    for (int i = 0; i < n; i++) m = fabsf(a[i]) > m ? fabsf(a[i]) : m;
    const float s = m > 0.0f ? m / 127.0f : 1.0f, inv = 1.0f / s;
    for (int i = 0; i < n; i++) {
        const long v = lrintf(activation ? a[i] * inv : a[i] / s);
        q[i] = v > 127 ? 127 : v < -127 ? -127 : (int)v;
    }
    return s;
}

/* y = sum over parts of (x_q . w_q) * (s_x * s_w) + b, in the engine's float order */
static void int8_reference(int rows, int in, int out, const float *x, const float *w,
                           const float *b, const int *bounds, int parts, float *y) {
    int *xq = malloc(sizeof(int) * in), *wq = malloc(sizeof(int) * in * (size_t)out);
    float *sw = malloc(sizeof(float) * out);
    for (int o = 0; o < out; o++) sw[o] = quantize_row(w + (size_t)o * in, in, 0, wq + (size_t)o * in);
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < parts; k++) {
            const int c0 = bounds[k], c1 = bounds[k + 1];
            const float sx = quantize_row(x + (size_t)r * in + c0, c1 - c0, 1, xq);
            for (int o = 0; o < out; o++) {
                int32_t acc = 0;
                for (int i = c0; i < c1; i++) acc += xq[i - c0] * wq[(size_t)o * in + i];
                float v = (float)acc * (sx * sw[o]);
                if (b && k == 0) v = v + b[o];
                float *yo = y + (size_t)r * out + o;
                *yo = k > 0 ? *yo + v : v;
            }
        }
    free(xq); free(wq); free(sw);
}

static void check_int8_products(void) {
    static const int SPLITS[][3] = {{0}, {7, 20, 0}, {64, 0, 0}};
    for (int s = 0; s < N_SHAPES; s++) {
        const int rows = SHAPES[s][0], in = SHAPES[s][1], out = SHAPES[s][2];
        const size_t ny = (size_t)rows * out;
        float *x = random_floats((size_t)rows * in, 2.0f), *w = random_floats((size_t)out * in, 1.0f);
        float *b = random_floats(out, 1.0f);
        float *y = malloc(sizeof(float) * ny), *want = malloc(sizeof(float) * ny);
        float *one = malloc(sizeof(float) * out);
        for (int variant = 0; variant < 3; variant++) {
            rs_linear L = {0};
            L.w = w; L.b = b; L.out = out; L.in = in;
            int bounds[5] = {0}, parts = 0;
            for (int k = 0; k < 3 && SPLITS[variant][k]; k++)
                if (SPLITS[variant][k] < in) {
                    L.qsplit[L.nqsplit++] = SPLITS[variant][k];
                    bounds[++parts] = SPLITS[variant][k];
                }
            bounds[++parts] = in;
            void *owned = NULL;
            expect(rs_quantize_linear(&L, &owned) == 0, "quantize", rows, in, out);
            expect(rs_gemm_int8(&L, rows, x, in, y, out, 0) == 0, "int8 product", rows, in, out);
            int8_reference(rows, in, out, x, w, b, bounds, parts, want);
            expect(same_bits(y, want, ny), "int8 = exact integer product, scaled", rows, in, variant);
            hash_into("int8", y, ny);
            for (int r = 0; r < rows; r++) {
                rs_gemm_int8(&L, 1, x + (size_t)r * in, in, one, out, 0);
                expect(same_bits(one, y + (size_t)r * out, out), "int8 row independence", rows, in, r);
            }
            rs_aligned_free(owned);
        }
        free(x); free(w); free(b); free(y); free(want); free(one);
    }
}

/* ------------------------------------------------------------ bfloat16 matrix products */

/* float32 -> bfloat16 -> float32, nearest with ties to even, subnormals to zero (the
 * documented rounding, written here from the definition: the bits below the top 16 are
 * dropped after adding half an ulp, or half an ulp less one when the kept last bit is
 * even). Finite values in bfloat16's range only. */
static float bf16_reference_round(float f) {
    if (fabsf(f) < 1.17549435e-38f) return f < 0 ? -0.0f : 0.0f;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    const uint32_t kept_last = (u >> 16) & 1u;
    u = (u + (kept_last ? 0x8000u : 0x7fffu)) & 0xffff0000u;
    memcpy(&f, &u, sizeof u);
    return f;
}

/* The documented arithmetic (rs_gemm_bf16.c): per output, over the input pairs in order,
 * the odd input's product then the even one's added to a float sum; + b; + y0. */
static void bf16_reference(int rows, int in, int out, const float *x, const float *w,
                           const float *b, const float *y0, float *y, double *exact) {
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            float acc = 0.0f;
            double sum = b ? b[o] : 0.0;
            for (int i = 0; i < in; i += 2) {
                for (int k = i + 1 < in ? 1 : 0; k >= 0; k--) {
                    const float xv = bf16_reference_round(x[(size_t)r * in + i + k]);
                    const float wv = bf16_reference_round(w[(size_t)o * in + i + k]);
                    const float product = xv * wv;
                    acc = acc + product;
                    sum += (double)xv * wv;
                }
            }
            float v = b ? acc + b[o] : acc;
            const size_t at = (size_t)r * out + o;
            y[at] = y0 ? y0[at] + v : v;
            exact[at] = sum + (y0 ? y0[at] : 0.0);
        }
}

static void check_bf16_products(void) {
    for (int s = 0; s < N_SHAPES; s++) {
        const int rows = SHAPES[s][0], in = SHAPES[s][1], out = SHAPES[s][2];
        const size_t ny = (size_t)rows * out;
        float *x = random_floats((size_t)rows * in, 2.0f), *w = random_floats((size_t)out * in, 1.0f);
        float *b = random_floats(out, 1.0f), *y0 = random_floats(ny, 3.0f);
        float *y = malloc(sizeof(float) * ny), *want = malloc(sizeof(float) * ny);
        float *one = malloc(sizeof(float) * out);
        double *exact = malloc(sizeof(double) * ny);
        rs_linear L = {0};
        L.w = w; L.b = b; L.out = out; L.in = in;
        void *owned = NULL;
        expect(rs_bf16_pack_linear(&L, &owned) == 0, "bf16 pack", rows, in, out);
        for (int accumulate = 0; accumulate < 2; accumulate++) {
            if (accumulate) memcpy(y, y0, sizeof(float) * ny);
            expect(rs_gemm_bf16(&L, rows, x, in, y, out, accumulate, 0, out) == 0, "bf16 product",
                   rows, in, out);
            bf16_reference(rows, in, out, x, w, b, accumulate ? y0 : NULL, want, exact);
            expect(same_bits(y, want, ny), "bf16 = documented arithmetic", rows, in, accumulate);
            int ok = 1;
            for (size_t k = 0; k < ny; k++) ok &= fabs(y[k] - exact[k]) <= 1e-5 * sqrt(in) + 1e-6 * fabs(exact[k]);
            expect(ok, "bf16 = product of the rounded operands", rows, in, accumulate);
            hash_into("bf16", y, ny);
        }
        rs_gemm_bf16(&L, rows, x, in, y, out, 0, 0, out);
        for (int r = 0; r < rows; r++) {   /* a row alone gives the bits it has in the block */
            rs_gemm_bf16(&L, 1, x + (size_t)r * in, in, one, out, 0, 0, out);
            expect(same_bits(one, y + (size_t)r * out, out), "bf16 row independence", rows, in, r);
        }
        rs_aligned_free(owned);
        free(x); free(w); free(b); free(y0); free(y); free(want); free(one); free(exact);
    }
}

/* ------------------------------------------------------------ element-wise functions */
static void check_elementwise(void) {
    enum { N = 4000 };
    static float base[N + 16];
    int n = 0;
    for (int i = 0; i < 2001; i++) base[n++] = -100.0f + 0.1f * (float)i;
    for (int i = 0; i < 1001; i++) base[n++] = -1.0f + 0.002f * (float)i;
    const float special[] = {0.0f, -0.0f, 1e-8f, -1e-8f, 1e-40f, 87.9f, 88.0f, 88.5f, -87.3f,
                             -87.4f, -88.0f, -1000.0f, 1000.0f, 0.625f, -0.625f, 0.62499997f,
                             INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) base[n++] = special[i];
    while (n < N) base[n++] = uniform() * 20.0f;
    float *v = malloc(sizeof(float) * N), *part = malloc(sizeof(float) * 64);
    static const char *const NAMES[] = {"exp", "tanh", "sigmoid"};
    void (*const FNS[])(float *, int) = {rs_vexp, rs_vtanh, rs_vsigmoid};
    for (int f = 0; f < 3; f++) {
        memcpy(v, base, sizeof(float) * N);
        FNS[f](v, N);
        hash_into(NAMES[f], v, N);
        for (int i = 0; i < N; i++) {
            const double x = base[i];
            if (!isfinite(x) || (f == 0 && x >= 87.0)) continue;
            const double want = f == 0 ? exp(x) : f == 1 ? tanh(x) : 1.0 / (1.0 + exp(-x));
            const double tol = f == 0 ? 3e-7 * want + 1e-37 : f == 1 ? 2e-7 + 1e-6 * fabs(want)
                                                                      : 1e-7 + 2e-6 * want;
            expect(fabs(v[i] - want) <= tol, NAMES[f], i, (int)(x * 1000), 0);
        }
        for (int len = 1; len <= 33; len++) {   /* tails: a lane's result is its own */
            memcpy(part, base + 1000 + len, sizeof(float) * len);
            FNS[f](part, len);
            memcpy(v, base, sizeof(float) * N);
            FNS[f](v, N);
            expect(same_bits(part, v + 1000 + len, len), "vector tail", f, len, 0);
        }
    }
    /* tanh and sigmoid of +-inf: NaN (an overflowed pre-activation, rs_vmath.c); exp(-inf) 0 */
    for (int len = 1; len <= 33; len += 16) {
        for (int f = 0; f < 3; f++)
            for (int sign = -1; sign <= 1; sign += 2) {
                for (int i = 0; i < len; i++) part[i] = 0.5f;
                part[len - 1] = (float)sign * INFINITY;
                FNS[f](part, len);
                const float got = part[len - 1];
                const int ok = f == 0 ? (sign < 0 ? got == 0.0f : got > 0.0f) : isnan(got);
                expect(ok, NAMES[f], sign, len, 0);
            }
    }
    float *tmp = malloc(sizeof(float) * N);
    static const int LENGTHS[] = {1, 15, 16, 17, 33, 1000, N};
    for (size_t k = 0; k < sizeof(LENGTHS) / sizeof(LENGTHS[0]); k++) {
        const int len = LENGTHS[k];
        for (int i = 0; i < len; i++) v[i] = uniform() * 10.0f;
        double m = -INFINITY, sum = 0.0;
        for (int i = 0; i < len; i++) m = v[i] > m ? v[i] : m;
        for (int i = 0; i < len; i++) sum += exp(v[i] - m);
        const double lse = m + log(sum);
        float *want = malloc(sizeof(float) * len);
        for (int i = 0; i < len; i++) want[i] = (float)(v[i] - lse);
        rs_log_softmax(v, len, tmp);
        int ok = 1;
        for (int i = 0; i < len; i++) ok &= fabs(v[i] - want[i]) <= 2e-5;
        expect(ok, "log_softmax", len, 0, 0);
        hash_into("log_softmax", v, len);
        free(want);
    }
    free(v); free(part); free(tmp);
}

/* ------------------------------------------------------------ threads */
typedef struct {
    rs_linear *fp32, *int8, *bf16;
    const float *x;
    int rows;
    float *y_fp32, *y_int8, *y_bf16;
} thread_job;

static void *thread_main(void *arg) {
    thread_job *j = arg;
    for (int repeat = 0; repeat < 3; repeat++) {
        forward(j->fp32, j->rows, j->x, j->y_fp32, 0);
        rs_gemm_int8(j->int8, j->rows, j->x, j->int8->in, j->y_int8, j->int8->out, 0);
        rs_gemm_bf16(j->bf16, j->rows, j->x, j->bf16->in, j->y_bf16, j->bf16->out, 0, 0,
                     j->bf16->out);
    }
    return NULL;
}

/* Threads (rs_platform: threads, per-thread int8 and bfloat16 scratch) give the serial
 * results. */
static void check_threads(void) {
    enum { T = 4, ROWS = 5, IN = 70, OUT = 45 };
    float *x = random_floats(ROWS * IN, 1.0f), *w = random_floats(OUT * IN, 1.0f);
    rs_linear f = {0}, q = {0}, h = {0};
    f.w = q.w = h.w = w; f.out = q.out = h.out = OUT; f.in = q.in = h.in = IN;
    float *packed = NULL;
    void *owned = NULL, *half = NULL;
    rs_pack_linear(&f, &packed);
    rs_quantize_linear(&q, &owned);
    rs_bf16_pack_linear(&h, &half);
    float serial_f[ROWS * OUT], serial_q[ROWS * OUT], serial_h[ROWS * OUT];
    forward(&f, ROWS, x, serial_f, 0);
    rs_gemm_int8(&q, ROWS, x, IN, serial_q, OUT, 0);
    rs_gemm_bf16(&h, ROWS, x, IN, serial_h, OUT, 0, 0, OUT);
    rs_thread threads[T];
    thread_job jobs[T];
    float out[T][3][ROWS * OUT];
    int started[T];
    for (int t = 0; t < T; t++) {
        jobs[t] = (thread_job){&f, &q, &h, x, ROWS, out[t][0], out[t][1], out[t][2]};
        started[t] = rs_thread_start(&threads[t], thread_main, &jobs[t]) == 0;
        expect(started[t], "thread start", t, 0, 0);
    }
    for (int t = 0; t < T; t++)
        if (started[t]) {
            rs_thread_join(&threads[t]);
            expect(same_bits(out[t][0], serial_f, ROWS * OUT), "fp32 in a thread", t, 0, 0);
            expect(same_bits(out[t][1], serial_q, ROWS * OUT), "int8 in a thread", t, 0, 0);
            expect(same_bits(out[t][2], serial_h, ROWS * OUT), "bf16 in a thread", t, 0, 0);
        }
    rs_aligned_free(packed);
    rs_aligned_free(owned);
    rs_aligned_free(half);
    free(x); free(w);
}

int main(void) {
    printf("isa fp32=%s int8=%s\n", rs_kernel_isa(), rs_int8_isa());
    printf("bf16 %s\n", rs_bf16_isa());
    check_float_products();
    check_int8_products();
    check_bf16_products();
    check_elementwise();
    check_threads();
    check_contexts();
    check_lstm_cell();
    for (int k = 0; k < n_digests; k++)
        printf("digest %s %016llx\n", digests[k].name, (unsigned long long)digests[k].h);
    printf("checked %d, failed %d\n", checks, failures);
    return failures ? 1 : 0;
}
