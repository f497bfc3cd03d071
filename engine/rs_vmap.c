/* Vocabulary maps: the output layer over a call's candidate target tokens (rs_vmap.h).
 *
 * The gathered layer keeps the kernel's own layout, so each candidate's logit is the same
 * chain of operations as in the full layer (the kernels compute every output on its own:
 * docs/architecture.md, "Determinism across instruction sets"):
 *  - packed float32 panels (rs_gemm_packed.c): packed[(p * in + i) * 16 + j] = W[16 p + j, i];
 *  - plain [out, in] float32 rows (the portable kernel);
 *  - int8 (rs_gemm_int8.c, layout_part): 16-output panels of 4-input groups (AVX-512 VNNI,
 *    AArch64 DotProd) or 2-input groups (AVX2), or plain [out, in] rows (portable, NEON),
 *    with per-row scales and sums.
 * A layer in any other form (int8 with input parts) is not gathered: the full product
 * runs and the candidates' columns are picked from it, which gives the same bits. */
#include "rs_vmap.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_gemm_int8.h"
#include "rs_kernels.h"
#include "rs_platform.h"

#define PANEL 16

static float *gather_packed(const rs_linear *L, const int *ids, int n) {
    const int in = L->in, panels = (n + PANEL - 1) / PANEL;
    float *dst = rs_aligned_alloc(64, (size_t)panels * in * PANEL * sizeof(float) + 64);
    if (!dst) return NULL;
    memset(dst, 0, (size_t)panels * in * PANEL * sizeof(float));
    /* candidates are ascending: those of one source panel are neighbours, so each source
       cache line (16 outputs of one input) is read once for all of them */
    for (int k0 = 0; k0 < n;) {
        const int p = ids[k0] / PANEL;
        int k1 = k0 + 1;
        while (k1 < n && ids[k1] / PANEL == p) k1++;
        const float *src = L->packed + (size_t)p * in * PANEL;
        for (int i = 0; i < in; i++)
            for (int k = k0; k < k1; k++)
                dst[((size_t)(k / PANEL) * in + i) * PANEL + k % PANEL] =
                    src[(size_t)i * PANEL + ids[k] % PANEL];
        k0 = k1;
    }
    return dst;
}

static float *gather_rows(const float *w, int in, const int *ids, int n) {
    float *dst = rs_aligned_alloc(64, (size_t)n * in * sizeof(float) + 64);
    if (!dst) return NULL;
    for (int k = 0; k < n; k++)
        memcpy(dst + (size_t)k * in, w + (size_t)ids[k] * in, sizeof(float) * in);
    return dst;
}

/* The int8 layout rs_quantize_linear made for this CPU: outputs per panel (0: plain rows)
 * and inputs per group. */
static void int8_layout(int *panel, int *group) {
    const char *isa = rs_int8_isa();
    *panel = PANEL;
    if (strcmp(isa, "avx512-vnni") == 0 || strcmp(isa, "neon-dotprod") == 0) *group = 4;
    else if (strcmp(isa, "avx2") == 0) *group = 2;
    else { *panel = 0; *group = 1; }
}

/* Rows ids of the quantized L into one block: weights (the kernel's layout), scales, sums. */
static int gather_int8(const rs_linear *L, const int *ids, int n, rs_linear *out, void **owned) {
    int panel, group;
    int8_layout(&panel, &group);
    const int in = L->in, in_pad = (in + group - 1) / group * group;
    const size_t out_pad = panel ? (size_t)(n + PANEL - 1) / PANEL * PANEL : (size_t)n;
    const size_t weight_bytes = (out_pad * in_pad + 63) / 64 * 64;
    const size_t bytes = weight_bytes + out_pad * (sizeof(float) + sizeof(int32_t)) + 64;
    unsigned char *block = rs_aligned_alloc(64, bytes);
    if (!block) return 1;
    memset(block, 0, weight_bytes);
    int8_t *q = (int8_t *)block;
    float *scale = (float *)(block + weight_bytes);
    int32_t *sum = (int32_t *)(scale + out_pad);
    const int groups = in_pad / group, line = PANEL * group;
    for (int k = 0; k < n; k++) {
        const int o = ids[k];
        if (panel) {   /* output o's `group` bytes in each of its panel's lines */
            const int8_t *src =
                L->qweight + (size_t)(o / PANEL) * groups * line + (o % PANEL) * group;
            int8_t *dst = q + (size_t)(k / PANEL) * groups * line + (k % PANEL) * group;
            for (int g = 0; g < groups; g++)
                memcpy(dst + (size_t)g * line, src + (size_t)g * line, group);
        } else {
            memcpy(q + (size_t)k * in, L->qweight + (size_t)o * in, in);
        }
        scale[k] = L->qscale[o];
        sum[k] = L->qsum[o];
    }
    for (size_t k = n; k < out_pad; k++) { scale[k] = 1.0f; sum[k] = 0; }
    out->qweight = q;
    out->qscale = scale;
    out->qsum = sum;
    *owned = block;
    return 0;
}

/* The output layer's rows v->ids, in its own layout; 0 leaves v->gathered 0 (any other
 * form: the full product is used). Returns 1 when out of memory. */
static int gather_output(const rs_linear *L, rs_vmap *v) {
    const int n = v->size;
    rs_linear *g = &v->output;
    memset(g, 0, sizeof(*g));
    g->out = n;
    g->in = L->in;
    if (L->qweight && !L->qparts) {
        if (gather_int8(L, v->ids, n, g, &v->owned)) return 1;
    } else if (!L->qweight && L->packed && rs_kernel_packs()) {
        float *p = gather_packed(L, v->ids, n);
        if (!p) return 1;
        g->packed = p;
        v->owned = p;
    } else if (!L->qweight && !L->packed && L->w) {
        float *w = gather_rows(L->w, L->in, v->ids, n);
        if (!w) return 1;
        g->w = w;
        v->owned = w;
    } else {
        return 0;
    }
    if (L->b) {
        v->bias = malloc(sizeof(float) * n);
        if (!v->bias) return 1;
        for (int k = 0; k < n; k++) v->bias[k] = L->b[v->ids[k]];
        g->b = v->bias;
    }
    v->gathered = 1;
    return 0;
}

/* The union of the sentences' (checked) candidate lists, ascending; each candidate's
 * column in it. */
static int build_union(rs_vmap *v, int *mark) {
    const int V = v->vocab;
    memset(mark, 0, sizeof(int) * V);
    for (int s = 0; s < v->sentences; s++)
        for (int j = 0; j < v->count[s]; j++) mark[v->cand[s][j]] = 1;
    int U = 0;
    for (int t = 0; t < V; t++) U += mark[t];
    v->ids = malloc(sizeof(int) * (U ? U : 1));
    if (!v->ids) return 1;
    for (int t = 0, u = 0; t < V; t++)
        if (mark[t]) { mark[t] = u; v->ids[u++] = t; }
    v->size = U;
    for (int s = 0; s < v->sentences; s++) {
        v->at[s] = malloc(sizeof(int) * v->count[s]);
        if (!v->at[s]) return 1;
        for (int j = 0; j < v->count[s]; j++) v->at[s][j] = mark[v->cand[s][j]];
    }
    return 0;
}

/* rows x cols floats, or NULL when that overflows or memory is out */
static float *float_block(size_t rows, size_t cols) {
    size_t n;
    if (rs_size_mul(rows, cols, &n) || n > ((size_t)-1) / sizeof(float) - 1) return NULL;
    return malloc(sizeof(float) * (n ? n : 1));
}

int rs_vmap_init(rs_vmap *v, const rs_model *m, const rs_candidates *c, int sentences,
                 const int *rows, int capacity, char *err, size_t err_size) {
    const int V = m->tgt_vocab;
    memset(v, 0, sizeof(*v));
    v->vocab = V;
    v->sentences = sentences;
    for (int s = 0; s < sentences; s++) {
        const size_t a = c->offsets[rows[s]], b = c->offsets[rows[s] + 1];
        int ok = b > a && b - a <= (size_t)V;
        for (size_t k = a; ok && k < b; k++)
            ok = c->ids[k] >= 0 && c->ids[k] < V && (k == a || c->ids[k] > c->ids[k - 1]);
        if (!ok) {
            snprintf(err, err_size, "the vocabulary map's candidates of a sentence must be "
                     "ascending, distinct target ids in [0, %d), at least one", V);
            return 2;
        }
    }
    v->cand = calloc(sentences ? sentences : 1, sizeof(int *));
    v->count = calloc(sentences ? sentences : 1, sizeof(int));
    v->at = calloc(sentences ? sentences : 1, sizeof(int *));
    int *mark = malloc(sizeof(int) * V);
    if (!v->cand || !v->count || !v->at || !mark) { free(mark); return 1; }
    for (int s = 0; s < sentences; s++) {
        const size_t a = c->offsets[rows[s]];
        v->cand[s] = c->ids + a;
        v->count[s] = (int)(c->offsets[rows[s] + 1] - a);
    }
    const int failed = build_union(v, mark);
    free(mark);
    if (failed || gather_output(&m->output, v)) return 1;
    v->logits = float_block((size_t)capacity, (size_t)v->size);
    v->row = float_block(1, (size_t)V);
    if (!v->gathered) v->full = float_block((size_t)capacity, (size_t)V);
    if (!v->logits || !v->row || (!v->gathered && !v->full)) return 1;
    return 0;
}

void rs_vmap_free(rs_vmap *v) {
    if (v->at)
        for (int s = 0; s < v->sentences; s++) free(v->at[s]);
    free(v->at); free(v->cand); free(v->count); free(v->ids); free(v->bias);
    free(v->logits); free(v->row); free(v->full);
    rs_aligned_free(v->owned);
    memset(v, 0, sizeof(*v));
}

void rs_vmap_output(const rs_model *m, rs_vmap *v, int rows, const float *x, int xs) {
    const int U = v->size, V = v->vocab;
    if (v->gathered) {
        rs_linear_forward(&v->output, rows, x, xs, v->logits, U, 0);
        return;
    }
    rs_linear_forward(&m->output, rows, x, xs, v->full, V, 0);
    for (int r = 0; r < rows; r++)
        for (int u = 0; u < U; u++)
            v->logits[(size_t)r * U + u] = v->full[(size_t)r * V + v->ids[u]];
}

float rs_vmap_log_probs(rs_vmap *v, int r, int sentence, float *lp, float *tmp) {
    const int n = v->count[sentence], *at = v->at[sentence], *cand = v->cand[sentence];
    const float *logits = v->logits + (size_t)r * v->size;
    for (int j = 0; j < n; j++) v->row[j] = logits[at[j]];
    const float top = rs_log_softmax(v->row, n, tmp);
    for (int t = 0; t < v->vocab; t++) lp[t] = -INFINITY;
    for (int j = 0; j < n; j++) lp[cand[j]] = v->row[j];
    return top;
}
