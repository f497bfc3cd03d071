/* Location-aware attention (Chorowski et al. 2015; docs/model-format.md, "location"):
 * e_j = v . tanh(P F_j + b_P + W_k h_j + b_k + W_q q + b_q), a = softmax(scaling * e),
 * c = sum_j a_j h_j, where F = conv(earlier weights). The earlier weights a row keeps
 * (its state) are the previous step's (ESPnet location, SpeechBrain), their running sum
 * (ESPnet coverage_location), both (Tacotron 2), or the last N steps' (ESPnet location2d).
 * Recurrent (ESPnet location_recurrent): relu(F) is max-pooled over the positions into an
 * LSTM cell whose state h_att replaces P F_j + b_P at every position. */
#include <stdlib.h>
#include <string.h>

#include "rs_attention.h"
#include "rs_attention_state.h"
#include "rs_kernels.h"
#include "rs_rnn.h"

/* Per row: the weight vectors [N_in, S], then with recurrent the LSTM's h and c [A each]. */
static size_t state_floats(const rs_attention *a, int max_source) {
    const rs_location *L = &a->location;
    return (size_t)L->inputs * max_source + (L->recurrent ? 2 * (size_t)a->key_width : 0);
}

/* projected queries [rows, A]; then per row: F [S, C], P F [S, A], tmp [A], and the
   recurrent cell's input and scratch */
static size_t work_floats(const rs_attention *a, int rows, int max_source) {
    const rs_location *L = &a->location;
    const size_t A = a->key_width, S = max_source, C = L->channels;
    size_t floats = rows * A + S * C + S * A + A;
    if (L->recurrent) floats += C + 4 * A + rs_rnn_scratch_floats(&L->lstm, 1);
    return floats;
}

static void init_row(const rs_attention *a, int length, int max_source, float *state) {
    const rs_location *L = &a->location;
    memset(state, 0, sizeof(float) * state_floats(a, max_source));
    for (int i = 0; i < L->inputs; i++)
        rs_weights_start(L->initial, length, max_source, state + (size_t)i * max_source);
}

/* The new weights p enter the row's state. */
static void remember(const rs_location *L, const float *p, int len, int S, float *x) {
    switch (L->input) {
    case RS_LOC_PREVIOUS:
        memcpy(x, p, sizeof(float) * len);
        break;
    case RS_LOC_CUMULATIVE:
        for (int j = 0; j < len; j++) x[j] += p[j];
        break;
    case RS_LOC_PREVIOUS_AND_CUMULATIVE:
        memcpy(x, p, sizeof(float) * len);
        for (int j = 0; j < len; j++) x[S + j] += p[j];
        break;
    case RS_LOC_HISTORY: /* oldest first */
        memmove(x, x + S, sizeof(float) * (size_t)(L->inputs - 1) * S);
        memcpy(x + (size_t)(L->inputs - 1) * S, p, sizeof(float) * len);
        break;
    }
}

/* The recurrent variant's location term: h_att after one LSTM step on max_j relu(F_j). */
static const float *recurrent_term(const rs_location *L, const float *F, int len, float *state_hc,
                                   int A, float *scratch) {
    const int C = L->channels;
    float *pooled = scratch, *gates = scratch + C, *cell_scratch = gates + 4 * A;
    for (int c = 0; c < C; c++) {
        float m = 0.0f; /* relu makes every feature >= 0 */
        for (int j = 0; j < len; j++)
            if (F[(size_t)j * C + c] > m) m = F[(size_t)j * C + c];
        pooled[c] = m;
    }
    rs_linear_forward(&L->lstm.ih, 1, pooled, C, gates, 4 * A, 0);
    rs_rnn_step(&L->lstm, 1, gates, state_hc, state_hc + A, cell_scratch);
    return state_hc;
}

static void step(const rs_attention *a, const rs_attention_step *s) {
    const rs_location *L = &a->location;
    const rs_encoded *enc = s->enc;
    const int S = enc->max_len, A = a->key_width, C = L->channels;
    const size_t floats = state_floats(a, S);
    float *q = s->work, *F = q + (size_t)s->rows * A, *PF = F + (size_t)S * C;
    float *tmp = PF + (size_t)S * A, *scratch = tmp + A;
    rs_linear_forward(&a->query, s->rows, s->query, a->query_width, q, A, 0);
    for (int r = 0; r < s->rows; r++) {
        const int b = s->sentence[r], len = enc->lengths[b];
        float *x = s->state + r * floats, *probs = s->probs + (size_t)r * S;
        rs_location_conv(L->conv, C, L->inputs, L->kernel, x, S, len, F);
        const float *extra = PF;
        int stride = A;
        if (L->recurrent) {
            for (size_t i = 0; i < (size_t)len * C; i++) F[i] = F[i] > 0.0f ? F[i] : 0.0f;
            extra = recurrent_term(L, F, len, x + (size_t)L->inputs * S, A, scratch);
            stride = 0;
        } else {
            rs_linear_forward(&L->projection, len, F, C, PF, A, 0);
        }
        rs_additive_energies(a->v, q + (size_t)r * A, enc->keys + (size_t)b * S * A, A, extra, stride,
                             A, len, probs, tmp);
        rs_attention_softmax(a, s->window ? s->window + 2 * r : NULL, probs, len);
        remember(L, probs, len, S, x);
    }
    for (int r = 0, n; r < s->rows; r += n) { /* a sentence's rows together */
        n = rs_attention_sentence_run(s, r);
        rs_attention_sentence_contexts(a, s, r, n);
    }
}

const rs_attention_ops rs_attention_location = {
    .name = "location",
    .state_floats = state_floats,
    .work_floats = work_floats,
    .init_row = init_row,
    .step = step,
    .reads_value_panels = 1,
};
