/* Local attention (Luong et al. 2015, section 3.2; docs/model-format.md, "local"): only a
 * window of 2D+1 positions around p_t is scored. local-m: p_t = t (the decoding step);
 * local-p: p_t = S sigmoid(v_p . tanh(W_p h_t + b_p) + c_p) (eq. 9, with optional biases). The window is
 * [c - D, c + D] with c = floor(p_t) (or round(p_t)); positions outside the sentence are
 * left out of the softmax ("clip") or take part as zero memory vectors ("zero_pad", as
 * OpenNMT's Lua LocalAttention does). With the Gaussian, the softmax weights are
 * multiplied by exp(-(j - p_t)^2 / (2 sigma^2)), sigma = D / 2, real-valued p_t (eq. 10),
 * and not renormalised. With the decode-time attention constraint only the positions in
 * both windows are scored; attention.scaling multiplies every score (pads included)
 * before the softmax. Stateless: the step comes from the decoder. */
#include <math.h>
#include <string.h>

#include "rs_attention.h"
#include "rs_kernels.h"
#include "rs_norm.h"
#include "rs_vmath.h"

/* queries and score scratch, the key of a zero memory vector (zero_pad), the rows'
 * positions, then local-p's position layer for every row */
static size_t work_floats(const rs_attention *a, int rows, int max_source) {
    (void)max_source;
    const size_t position = a->local_predictive ? (size_t)rows * a->position.out : 0;
    return rs_attention_query_floats(a, rows) + (size_t)a->key_width + (size_t)rows + position;
}

/* p_t of every row: local-p's predicted positions into p[rows] */
static void positions(const rs_attention *a, const rs_attention_step *s, float *hidden,
                      float *p) {
    const int P = a->position.out;
    rs_linear_forward(&a->position, s->rows, s->query, a->query_width, hidden, P, 0);
    for (int r = 0; r < s->rows; r++) rs_vtanh(hidden + (size_t)r * P, P);
    for (int r = 0; r < s->rows; r++) {
        const float x = rs_dot_inline(a->position_v, hidden + (size_t)r * P, P) + a->position_v_bias;
        p[r] = (float)s->enc->lengths[s->sentence[r]] * (1.0f / (1.0f + expf(-x)));
    }
}

/* softmax over probs[0, n) together with `pads` more entries of score `pad` */
static void softmax_with_pads(float *probs, int n, int pads, float pad) {
    if (!pads) {
        rs_softmax(probs, n);
        return;
    }
    float m = pad;
    for (int i = 0; i < n; i++)
        if (probs[i] > m) m = probs[i];
    for (int i = 0; i < n; i++) probs[i] -= m;
    rs_vexp(probs, n);
    float sum = (float)pads * expf(pad - m);
    for (int i = 0; i < n; i++) sum += probs[i];
    const float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) probs[i] *= inv;
}

static void step(const rs_attention *a, const rs_attention_step *s) {
    const rs_encoded *enc = s->enc;
    const int S = enc->max_len, KW = enc->key_width, VW = enc->value_width;
    const int D = a->local_window;
    const rs_attention_queries_t q = rs_attention_queries(a, s);
    float *tmp = q.scratch;
    float *pad_key = tmp + KW, *p_rows = pad_key + KW, *hidden = p_rows + s->rows;
    if (a->local_predictive) positions(a, s, hidden, p_rows);
    for (int i = 0; i < KW; i++) pad_key[i] = RS_HAS_LINEAR(a->key) && a->key.b ? a->key.b[i] : 0.0f;
    if (RS_HAS_LINEAR(a->key)) rs_norm_rows(&a->key_norm, 1, pad_key, KW, KW); /* as the keys */
    const float inv_two_sigma2 = D > 0 ? 2.0f / ((float)D * (float)D) : 0.0f;
    for (int r = 0; r < s->rows; r++) {
        const int b = s->sentence[r], len = enc->lengths[b];
        float *probs = s->probs + (size_t)r * S, *context = s->context + (size_t)r * a->context_width;
        const float p = a->local_predictive ? p_rows[r] : (float)s->step;
        if (p != p) {   /* NaN: weights that overflow float32; the search reports it */
            rs_attention_poison(probs, len, context, a->context_width);
            continue;
        }
        const float centre = a->local_round ? nearbyintf(p) : floorf(p);
        /* the window in a wide type: p and t can be far past the sentence */
        const double lo_w = (double)centre - D, hi_w = (double)centre + D + 1;
        const int lo = lo_w < 0 ? 0 : lo_w > len ? len : (int)lo_w;
        const int hi = hi_w > len ? len : hi_w < lo ? lo : (int)hi_w;
        /* the zero-padded positions are the local window's outside the sentence; the
           attention constraint then narrows the sentence's part of it */
        const int pads = a->local_zero_pad ? 2 * D + 1 - (hi - lo) : 0;
        int from = lo, to = hi;
        rs_attention_clip_window(s, r, &from, &to);
        memset(probs, 0, sizeof(float) * len);
        const float *keys = enc->keys + (size_t)b * S * KW;
        rs_attention_scores(a, q.rows + (size_t)r * q.width, keys, KW, from, to, probs + from, tmp);
        float pad = 0.0f;
        if (pads) rs_attention_scores(a, q.rows + (size_t)r * q.width, pad_key, KW, 0, 1, &pad, tmp);
        if (a->scaling != 1.0f) {
            for (int j = from; j < to; j++) probs[j] *= a->scaling;
            pad *= a->scaling;
        }
        if (to > from || pads) softmax_with_pads(probs + from, to - from, pads, pad);
        if (a->local_gaussian)
            for (int j = from; j < to; j++) {
                const float d = (float)j - p;
                probs[j] *= expf(-d * d * inv_two_sigma2);
            }
        rs_attention_read(a, probs, from, to, enc->values + (size_t)b * S * VW, VW, context);
    }
}

const rs_attention_ops rs_attention_local = {
    .name = "local",
    .state_floats = rs_attention_no_state,
    .work_floats = work_floats,
    .init_row = rs_attention_no_init,
    .step = step,
};
