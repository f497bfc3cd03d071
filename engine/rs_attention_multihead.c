/* ESPnet's multi-head attention for RNN decoders (docs/model-format.md, "multi_head"):
 * per head h, keys K_h = W_k,h h_j (+ b), queries q_h = W_q,h q + b; energies
 * tanh_dot: e_j = sum(tanh(K_h,j) * tanh(q_h)) (ESPnet multi_head_dot; with one head and no
 * value projection ESPnet's dot), or additive: v_h . tanh(K_h,j + q_h (+ P_h F_h,j)) with
 * optional location features of the head's previous weights (multi_head_add / _loc /
 * _multi_res_loc); w_h = softmax(scaling e); c_h = sum_j w_h,j W_v,h h_j; the context is
 * W_o [c_1; ...; c_H]. The weights returned (alignments, the constraint's argmax) are the
 * heads' mean. */
#include <stdlib.h>
#include <string.h>

#include "rs_attention.h"
#include "rs_attention_state.h"
#include "rs_kernels.h"
#include "rs_vmath.h"

/* Per row with location features: every head's previous weights [H, S]. */
static size_t state_floats(const rs_attention *a, int max_source) {
    const rs_multi_head *m = &a->multi_head;
    return m->location ? (size_t)m->heads * max_source : 0;
}

static int max_channels(const rs_multi_head *m) {
    int C = 0;
    for (int h = 0; h < m->heads; h++)
        if (m->location && m->head_location[h].channels > C) C = m->head_location[h].channels;
    return C;
}

/* queries [rows, H d_k], the heads' contexts [rows, H d_v]; per head: w [S], F [S, C],
   P F [S, d_k], tmp [d_k] */
static size_t work_floats(const rs_attention *a, int rows, int max_source) {
    const rs_multi_head *m = &a->multi_head;
    const size_t HK = a->key_width, dk = HK / m->heads, S = max_source;
    return rows * (HK + (size_t)m->heads * m->value_size) + S + S * max_channels(m) + S * dk + dk;
}

static void init_row(const rs_attention *a, int length, int max_source, float *state) {
    const rs_multi_head *m = &a->multi_head;
    if (!m->location) return;
    for (int h = 0; h < m->heads; h++)
        rs_weights_start(m->head_location[h].initial, length, max_source,
                         state + (size_t)h * max_source);
}

/* tanh of the keys (tanh_dot) and the values W_v h_j of every position, once per batch */
static int prepare(const rs_attention *a, rs_encoded *enc) {
    const rs_multi_head *m = &a->multi_head;
    const int B = enc->batch, S = enc->max_len, D = a->memory_width, HK = enc->key_width;
    if (m->tanh_dot)
        for (int b = 0; b < B; b++)
            rs_vtanh(enc->keys + (size_t)b * S * HK, enc->lengths[b] * HK);
    if (!m->value_size) return 0;
    const int HV = m->heads * m->value_size;
    enc->aux_width = HV;
    enc->aux = calloc((size_t)B * S * HV + 1, sizeof(float));
    if (!enc->aux) return 1;
    for (int b = 0; b < B; b++)
        rs_linear_forward(&m->value, enc->lengths[b], enc->memory + (size_t)b * S * D, D,
                          enc->aux + (size_t)b * S * HV, HV, 0);
    return 0;
}

/* context[0..dv) = sum_j w_j values[j * stride + 0..dv) */
static void head_context(const float *w, const float *values, int stride, int len, int dv,
                         float *context) {
    memset(context, 0, sizeof(float) * dv);
    for (int j = 0; j < len; j++) {
        const float *x = values + (size_t)j * stride;
        for (int i = 0; i < dv; i++) context[i] += w[j] * x[i];
    }
}

static void step(const rs_attention *a, const rs_attention_step *s) {
    const rs_multi_head *m = &a->multi_head;
    const rs_encoded *enc = s->enc;
    const int S = enc->max_len, D = a->memory_width, H = m->heads, HK = a->key_width;
    const int dk = HK / H, dv = m->value_size, HV = H * dv;
    float *q = s->work, *contexts = q + (size_t)s->rows * HK, *w = contexts + (size_t)s->rows * HV;
    float *F = w + S, *PF = F + (size_t)S * max_channels(m), *tmp = PF + (size_t)S * dk;
    rs_linear_forward(&a->query, s->rows, s->query, a->query_width, q, HK, 0);
    if (m->tanh_dot) rs_vtanh(q, s->rows * HK);
    for (int r = 0; r < s->rows; r++) {
        const int b = s->sentence[r], len = enc->lengths[b];
        const float *keys = enc->keys + (size_t)b * S * HK;
        const int *window = s->window ? s->window + 2 * r : NULL;
        float *mean = s->probs + (size_t)r * S, *previous = s->state + (size_t)r * H * S;
        memset(mean, 0, sizeof(float) * len);
        for (int h = 0; h < H; h++) {
            const float *qh = q + (size_t)r * HK + (size_t)h * dk;
            if (m->tanh_dot) {
                for (int j = 0; j < len; j++)
                    w[j] = rs_dot_inline(keys + (size_t)j * HK + (size_t)h * dk, qh, dk);
            } else {
                const float *extra = NULL;
                if (m->location) {
                    const rs_location *L = &m->head_location[h];
                    rs_location_conv(L->conv, L->channels, 1, L->kernel, previous + (size_t)h * S,
                                     S, len, F);
                    rs_linear_forward(&L->projection, len, F, L->channels, PF, dk, 0);
                    extra = PF;
                }
                rs_additive_energies(a->v ? a->v + (size_t)h * dk : NULL, qh,
                                     keys + (size_t)h * dk, HK, extra, dk, dk, len, w, tmp);
            }
            rs_attention_softmax(a, window, w, len);
            if (dv)
                head_context(w, enc->aux + (size_t)b * S * HV + (size_t)h * dv, HV, len, dv,
                             contexts + (size_t)r * HV + (size_t)h * dv);
            else
                rs_attention_context(w, enc->memory + (size_t)b * S * D, len, D,
                                     s->context + (size_t)r * a->context_width);
            if (m->location) memcpy(previous + (size_t)h * S, w, sizeof(float) * len);
            for (int j = 0; j < len; j++) mean[j] += w[j];
        }
        if (H > 1)
            for (int j = 0; j < len; j++) mean[j] /= (float)H;
    }
    if (dv) rs_linear_forward(&m->output, s->rows, contexts, HV, s->context, a->context_width, 0);
}

const rs_attention_ops rs_attention_multi_head = {
    .name = "multi_head",
    .state_floats = state_floats,
    .work_floats = work_floats,
    .init_row = init_row,
    .step = step,
    .prepare = prepare,
};
