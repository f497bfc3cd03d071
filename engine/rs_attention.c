/* The attention registry and what every type shares: the keys and values computed once
 * per batch, the query projection, the score functions, reading the context from the
 * weights (soft or hard) and the context gate. The types live in rs_attention_<type>.c. */
#include "rs_attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rs_context.h"
#include "rs_kernels.h"
#include "rs_limits.h"
#include "rs_norm.h"
#include "rs_platform.h"
#include "rs_vmath.h"

extern const rs_attention_ops rs_attention_global;
extern const rs_attention_ops rs_attention_local, rs_attention_monotonic, rs_attention_mocha;
extern const rs_attention_ops rs_attention_location, rs_attention_coverage,
    rs_attention_forward, rs_attention_multi_head;

static const rs_attention_ops *const TYPES[] = {
    &rs_attention_global,   &rs_attention_local,    &rs_attention_monotonic,
    &rs_attention_mocha,    &rs_attention_location, &rs_attention_coverage,
    &rs_attention_forward,  &rs_attention_multi_head};

const rs_attention_ops *rs_attention_named(const char *name) {
    for (size_t i = 0; i < sizeof(TYPES) / sizeof(TYPES[0]); i++)
        if (strcmp(TYPES[i]->name, name) == 0) return TYPES[i];
    return NULL;
}

/* [B, S, L->out] = L applied to columns [first, first + L->in) of every real position of
 * the memory, or those columns copied when L is NULL (width `width`). NULL: out of memory. */
static float *memory_part(const rs_encoded *enc, int D, const rs_linear *L, int first,
                          int width) {
    const int B = enc->batch, S = enc->max_len, W = L ? L->out : width;
    float *out = calloc((size_t)B * S * W + 1, sizeof(float));
    if (!out) return NULL;
    for (int b = 0; b < B; b++) {
        const float *src = enc->memory + (size_t)b * S * D + first;
        float *dst = out + (size_t)b * S * W;
        if (L) {
            rs_linear_forward(L, enc->lengths[b], src, D, dst, W, 0);
        } else {
            for (int j = 0; j < enc->lengths[b]; j++)
                memcpy(dst + (size_t)j * W, src + (size_t)j * D, sizeof(float) * W);
        }
    }
    return out;
}

/* [B, panels, S, 16]: every sentence's values in panels (rs_context.h). NULL: out of
 * memory. */
static float *value_panels(const rs_encoded *enc) {
    const int S = enc->max_len, VW = enc->value_width;
    const size_t each = rs_context_panel_floats(S, VW);
    size_t floats, bytes;
    if (rs_size_mul(each, (size_t)enc->batch, &floats) ||
        rs_size_mul(floats ? floats : 1, sizeof(float), &bytes))
        return NULL;
    float *panels = rs_aligned_alloc(64, bytes);
    if (!panels) return NULL;
    for (int b = 0; b < enc->batch; b++)
        rs_context_pack(enc->values + (size_t)b * S * VW, enc->lengths[b], VW, S,
                        panels + (size_t)b * each);
    return panels;
}

int rs_attention_prepare(const rs_attention *a, rs_encoded *enc) {
    const int D = a->memory_width;
    enc->key_width = D;
    enc->keys = enc->memory; /* keys are the memory itself */
    enc->value_width = D;
    enc->values = enc->memory;
    enc->value_panels = NULL;
    if (!a->ops) return 0;
    const int split = a->key_split, key_in = split ? split : D;
    if (RS_HAS_LINEAR(a->key) || split) {
        const rs_linear *L = RS_HAS_LINEAR(a->key) ? &a->key : NULL;
        enc->key_width = L ? L->out : key_in;
        if (!(enc->keys = memory_part(enc, D, L, 0, key_in))) return 1;
        if (L) /* attention.layer_norm (Marian): over the projected keys */
            for (int b = 0; b < enc->batch; b++)
                rs_norm_rows(&a->key_norm, enc->lengths[b],
                             enc->keys + (size_t)b * enc->max_len * enc->key_width,
                             enc->key_width, enc->key_width);
    }
    if (RS_HAS_LINEAR(a->value) || split) {
        const rs_linear *L = RS_HAS_LINEAR(a->value) ? &a->value : NULL;
        enc->value_width = L ? L->out : D - split;
        if (!(enc->values = memory_part(enc, D, L, split, D - split))) return 1;
    }
    if (RS_HAS_LINEAR(a->chunk_key)) {
        enc->chunk_key_width = a->chunk_key.out;
        if (!(enc->chunk_keys = memory_part(enc, D, &a->chunk_key, 0, key_in))) return 1;
    }
    if (a->ops->reads_value_panels && !a->hard && !(enc->value_panels = value_panels(enc)))
        return 1;
    return a->ops->prepare ? a->ops->prepare(a, enc) : 0;
}

void rs_attention_softmax(const rs_attention *a, const int *window, float *x, int len) {
    int lo = 0, hi = len;
    if (window) {
        lo = window[0];
        hi = window[1];
        for (int j = 0; j < lo; j++) x[j] = 0.0f;
        for (int j = hi; j < len; j++) x[j] = 0.0f;
    }
    if (hi <= lo) return; /* the search never builds an empty window */
    if (a->scaling != 1.0f)
        for (int j = lo; j < hi; j++) x[j] *= a->scaling;
    rs_softmax(x + lo, hi - lo);
}

void rs_attention_clip_window(const rs_attention_step *s, int r, int *lo, int *hi) {
    if (!s->window) return;
    const int wlo = s->window[2 * r], whi = s->window[2 * r + 1];
    if (*lo < wlo) *lo = wlo;
    if (*hi > whi) *hi = whi;
    if (*hi < *lo) *hi = *lo;
}

int rs_attention_output_width(const rs_attention *a) {
    if (!a->ops) return 0;
    return RS_HAS_LINEAR(a->context_projection) ? a->context_projection.out : a->context_width;
}

size_t rs_attention_work_floats(const rs_attention *a, int rows, int max_source) {
    const size_t step = a->ops->work_floats(a, rows, max_source);
    const size_t gate = RS_HAS_LINEAR(a->gate) ? (size_t)rows * a->gate.out : 0;
    return step > gate ? step : gate; /* the gate runs after the step, in the same scratch */
}

void rs_attention_run(const rs_attention *a, const rs_attention_step *s, float *output) {
    a->ops->step(a, s);
    if (RS_HAS_LINEAR(a->gate)) {
        /* Xu et al. 2015, section 4.2.1: beta = sigmoid(f_beta(h)) scales the context, as
         * one scalar or (G == context_width) one factor per dimension; one product over
         * the block (reading the gate's weights once per step, not once per row) */
        const int G = a->gate.out, C = a->context_width;
        float *beta = s->work;
        rs_linear_forward(&a->gate, s->rows, s->query, a->query_width, beta, G, 0);
        for (int r = 0; r < s->rows; r++) {
            const float *b = beta + (size_t)r * G;
            float *c = s->context + (size_t)r * C;
            rs_vsigmoid(beta + (size_t)r * G, G);
            if (G == 1)
                for (int i = 0; i < C; i++) c[i] *= b[0];
            else
                for (int i = 0; i < C; i++) c[i] *= b[i];
        }
    }
    if (RS_HAS_LINEAR(a->context_projection)) /* SpeechBrain's mlp_out */
        rs_linear_forward(&a->context_projection, s->rows, s->context, a->context_width,
                          output, a->context_projection.out, 0);
}

size_t rs_attention_query_floats(const rs_attention *a, int rows) {
    const size_t projected = RS_HAS_LINEAR(a->query) ? (size_t)rows * a->query.out : 0;
    return projected + (size_t)a->key_width;
}

rs_attention_queries_t rs_attention_queries(const rs_attention *a, const rs_attention_step *s) {
    rs_attention_queries_t q = {s->query, a->query_width, s->work};
    if (!RS_HAS_LINEAR(a->query)) return q;
    rs_linear_forward(&a->query, s->rows, s->query, a->query_width, s->work, a->query.out, 0);
    rs_norm_rows(&a->query_norm, s->rows, s->work, a->query.out, a->query.out);
    q.rows = s->work;
    q.width = a->query.out;
    q.scratch = s->work + (size_t)s->rows * a->query.out;
    return q;
}

size_t rs_attention_no_state(const rs_attention *a, int max_source) {
    (void)a; (void)max_source;
    return 0;
}

void rs_attention_no_init(const rs_attention *a, int length, int max_source, float *state) {
    (void)a; (void)length; (void)max_source; (void)state;
}

/* inlined into the score loop's clone for each instruction set */
static inline float additive(const float *v, const float *q, const float *k, int width,
                             int relu, float *tmp) {
    for (int i = 0; i < width; i++) tmp[i] = q[i] + k[i];
    if (relu)   /* the Show-Attend-Tell tutorial's scores (attention.score_activation) */
        for (int i = 0; i < width; i++) tmp[i] = tmp[i] > 0.0f ? tmp[i] : 0.0f;
    else
        rs_vtanh(tmp, width);
    if (!v) {
        float s = 0.0f;
        for (int i = 0; i < width; i++) s += tmp[i];
        return s;
    }
    return rs_dot_inline(v, tmp, width);
}

float rs_attention_additive(const float *v, const float *q, const float *k, int width,
                            float *tmp) {
    return additive(v, q, k, width, 0, tmp);
}

RS_CLONES
void rs_attention_scores(const rs_attention *a, const float *query, const float *keys,
                         int key_width, int lo, int hi, float *scores, float *tmp) {
    float scale = 1.0f;
    if (a->score == RS_SCORE_DOT) scale = a->dot_scale;
    else if (a->score == RS_SCORE_SCALED_DOT) scale = 1.0f / sqrtf((float)a->query_width);
    int j = lo;
    if (a->score != RS_SCORE_ADDITIVE)   /* four keys at a time: the same sums, overlapped */
        for (; j + 4 <= hi; j += 4) {
            const float *k = keys + (size_t)j * key_width;
            float s[4];
            rs_dot_four_inline(k, k + key_width, k + 2 * (size_t)key_width,
                               k + 3 * (size_t)key_width, query, key_width, s);
            for (int t = 0; t < 4; t++) scores[j - lo + t] = scale * s[t];
        }
    for (; j < hi; j++) {
        const float *k = keys + (size_t)j * key_width;
        if (a->score == RS_SCORE_ADDITIVE)
            scores[j - lo] = additive(a->v, query, k, key_width, a->score_relu, tmp);
        else
            scores[j - lo] = scale * rs_dot_inline(query, k, key_width);
    }
}

/* v . relu(q + k): additive()'s values (the same tmp, the same dot product) with the sum
   and the relu in one pass over tmp instead of two */
static inline float additive_relu(const float *v, const float *q, const float *k, int width,
                                  float *restrict tmp) {
    for (int i = 0; i < width; i++) {
        const float t = q[i] + k[i];
        tmp[i] = t > 0.0f ? t : 0.0f;
    }
    return rs_dot_inline(v, tmp, width);
}

RS_CLONES
void rs_attention_scores_rows(const rs_attention *a, int n, const float *queries, int query_stride,
                              const float *keys, int key_width, int len, float *scores,
                              int score_stride, float *tmp) {
    if (!(a->score == RS_SCORE_ADDITIVE && a->score_relu && a->v)) {
        for (int r = 0; r < n; r++)
            rs_attention_scores(a, queries + (size_t)r * query_stride, keys, key_width, 0, len,
                                scores + (size_t)r * score_stride, tmp);
        return;
    }
    for (int j = 0; j < len; j++) { /* key j read once for the n rows */
        const float *k = keys + (size_t)j * key_width;
        for (int r = 0; r < n; r++)
            scores[(size_t)r * score_stride + j] =
                additive_relu(a->v, queries + (size_t)r * query_stride, k, key_width, tmp);
    }
}

void rs_attention_poison(float *probs, int len, float *context, int context_width) {
    for (int j = 0; j < len; j++) probs[j] = NAN;
    for (int i = 0; i < context_width; i++) context[i] = NAN;
}

void rs_attention_read(const rs_attention *a, float *probs, int lo, int hi,
                       const float *values, int value_width, float *context) {
    if (!a->hard || hi <= lo) {
        rs_attention_context(probs + lo, values + (size_t)lo * value_width,
                             hi > lo ? hi - lo : 0, value_width, context);
        return;
    }
    /* Xu et al. 2015, eq. 8-9 at inference: the position of the largest weight */
    int best = lo;
    for (int j = lo; j < hi; j++) {
        if (probs[j] != probs[j]) {   /* NaN would never be the maximum: keep it visible */
            for (int i = 0; i < value_width; i++) context[i] = NAN;
            return;
        }
        if (probs[j] > probs[best]) best = j;
    }
    for (int j = lo; j < hi; j++) probs[j] = 0.0f;
    probs[best] = 1.0f;
    memcpy(context, values + (size_t)best * value_width, sizeof(float) * value_width);
}

RS_CLONES
void rs_attention_context(const float *probs, const float *memory, int len, int D,
                          float *context) {
    memset(context, 0, sizeof(float) * D);
    for (int j = 0; j < len; j++) {
        const float a = probs[j], *h = memory + (size_t)j * D;
        for (int i = 0; i < D; i++) context[i] += a * h[i];
    }
}

void rs_attention_sentence_contexts(const rs_attention *a, const rs_attention_step *s, int r,
                                    int n) {
    const rs_encoded *enc = s->enc;
    const int b = s->sentence[r], S = enc->max_len, VW = enc->value_width;
    rs_context_rows(n, s->probs + (size_t)r * S, S,
                    enc->value_panels + (size_t)b * rs_context_panel_floats(S, VW), S,
                    enc->lengths[b], VW, s->context + (size_t)r * a->context_width,
                    a->context_width);
}

int rs_attention_sentence_run(const rs_attention_step *s, int r) {
    int n = 1;
    while (r + n < s->rows && s->sentence[r + n] == s->sentence[r]) n++;
    return n;
}
