/* Global attention (docs/model-format.md, "attention"): every source position is scored
 * against the query with dot, scaled dot, general or additive scores, softmax over the
 * sentence, context = the weighted sum of the memory. Stateless. */
#include <math.h>

#include "rs_attention.h"
#include "rs_kernels.h"
#include "rs_vmath.h"

static size_t no_state(const rs_attention *a, int max_source) {
    (void)a; (void)max_source;
    return 0;
}

static void no_init(const rs_attention *a, int length, int max_source, float *state) {
    (void)a; (void)length; (void)max_source; (void)state;
}

/* the projected queries of all rows, then one key's worth of additive scratch */
static size_t work_floats(const rs_attention *a, int rows, int max_source) {
    (void)max_source;
    const size_t projected = RS_HAS_LINEAR(a->query) ? (size_t)rows * a->query.out : 0;
    return projected + (size_t)a->key_width;
}

static float additive_score(const rs_attention *a, const float *q, const float *k, int width,
                            float *tmp) {
    for (int i = 0; i < width; i++) tmp[i] = q[i] + k[i];
    rs_vtanh(tmp, width);
    if (!a->v) {
        float s = 0.0f;
        for (int i = 0; i < width; i++) s += tmp[i];
        return s;
    }
    return rs_dot_inline(a->v, tmp, width);
}

RS_CLONES
static void attend_row(const rs_attention *a, const float *query, const float *keys,
                       int key_width, int len, const int *window, float *probs, float *tmp) {
    float scale = 1.0f;
    if (a->score == RS_SCORE_DOT) scale = a->dot_scale;
    else if (a->score == RS_SCORE_SCALED_DOT) scale = 1.0f / sqrtf((float)a->query_width);
    for (int j = 0; j < len; j++) {
        const float *k = keys + (size_t)j * key_width;
        if (a->score == RS_SCORE_ADDITIVE)
            probs[j] = additive_score(a, query, k, key_width, tmp);
        else
            probs[j] = scale * rs_dot_inline(query, k, key_width);
    }
    rs_attention_softmax(a, window, probs, len);
}

static void step(const rs_attention *a, const rs_attention_step *s) {
    const rs_encoded *enc = s->enc;
    const int S = enc->max_len, D = a->memory_width, KW = enc->key_width;
    const float *query = s->query;
    int qw = a->query_width;
    float *tmp = s->work;
    if (RS_HAS_LINEAR(a->query)) {
        rs_linear_forward(&a->query, s->rows, query, qw, s->work, a->query.out, 0);
        query = s->work;
        qw = a->query.out;
        tmp = s->work + (size_t)s->rows * qw;
    }
    for (int r = 0; r < s->rows; r++) {
        const int b = s->sentence[r], len = enc->lengths[b];
        float *probs = s->probs + (size_t)r * S;
        attend_row(a, query + (size_t)r * qw, enc->keys + (size_t)b * S * KW, KW, len,
                   s->window ? s->window + 2 * r : NULL, probs, tmp);
        rs_attention_context(probs, enc->memory + (size_t)b * S * D, len, D,
                             s->context + (size_t)r * a->context_width);
    }
}

const rs_attention_ops rs_attention_global = {
    .name = "global",
    .state_floats = no_state,
    .work_floats = work_floats,
    .init_row = no_init,
    .step = step,
};
