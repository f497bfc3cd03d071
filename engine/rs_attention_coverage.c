/* Coverage attention (Tu et al. 2016, See et al. 2017; docs/model-format.md, "coverage"):
 * every position keeps a coverage vector cov_j (N_c floats) that enters the additive score,
 * e_j = v . tanh(W_c cov_j + b_c + W_k h_j + b_k + W_q q + b_q), and is updated after each
 * step from the new weights a: cov_j += a_j (sum: ESPnet coverage, See et al.), or a learned
 * update (Sockeye): act(U_h h_j + U_q q + u_a a_j + U_c cov_j) or GRU([h_j; q; a_j], cov_j). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rs_attention.h"
#include "rs_attention_state.h"
#include "rs_kernels.h"
#include "rs_rnn.h"
#include "rs_vmath.h"

static int gates(const rs_coverage *c) { return c->update == RS_COVERAGE_GRU ? 3 : 1; }

/* Per row: cov [S, N_c]. */
static size_t state_floats(const rs_attention *a, int max_source) {
    return (size_t)max_source * a->coverage.size;
}

/* projected queries [rows, A] and their update terms [rows, G N_c]; per row: W_c cov
   [S, A], tmp [A], the update's input [S, G N_c] and the GRU's scratch */
static size_t work_floats(const rs_attention *a, int rows, int max_source) {
    const rs_coverage *c = &a->coverage;
    const size_t A = a->key_width, S = max_source, G = gates(c) * (size_t)c->size;
    size_t floats = rows * (A + G) + S * A + A + S * G;
    if (c->update == RS_COVERAGE_GRU) floats += rs_rnn_scratch_floats(&c->gru, max_source);
    return floats;
}

static void init_row(const rs_attention *a, int length, int max_source, float *state) {
    const rs_coverage *c = &a->coverage;
    if (c->update == RS_COVERAGE_SUM) /* N_c = 1 */
        rs_weights_start(c->initial, length, max_source, state);
    else
        memset(state, 0, sizeof(float) * state_floats(a, max_source));
}

/* U_h h_j (+ b) of every position, once per batch. */
static int prepare(const rs_attention *a, rs_encoded *enc) {
    const rs_coverage *c = &a->coverage;
    if (c->update == RS_COVERAGE_SUM) return 0;
    const int B = enc->batch, S = enc->max_len, D = a->memory_width, G = gates(c) * c->size;
    enc->aux_width = G;
    enc->aux = calloc((size_t)B * S * G + 1, sizeof(float));
    if (!enc->aux) return 1;
    for (int b = 0; b < B; b++)
        rs_linear_forward(&c->memory, enc->lengths[b], enc->memory + (size_t)b * S * D, D,
                          enc->aux + (size_t)b * S * G, G, 0);
    return 0;
}

static float softrelu(float x) { return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

/* cov of one row after the step's weights p; uq = U_q q (+ b), in = [S, G N_c] scratch. */
static void update(const rs_coverage *c, const float *memory_terms, const float *uq,
                   const float *p, int len, float *cov, float *in, float *scratch) {
    const int N = c->size, G = gates(c) * N;
    if (c->update == RS_COVERAGE_SUM) {
        for (int j = 0; j < len; j++) cov[j] += p[j];
        return;
    }
    for (int j = 0; j < len; j++) {
        const float *m = memory_terms + (size_t)j * G;
        float *x = in + (size_t)j * G;
        for (int i = 0; i < G; i++) x[i] = (m[i] + uq[i]) + c->attention[i] * p[j];
    }
    if (c->update == RS_COVERAGE_GRU) {
        rs_rnn_step(&c->gru, len, in, cov, NULL, scratch);
        return;
    }
    rs_linear_forward(&c->previous, len, cov, N, in, G, 1); /* + U_c cov_j (+ b) */
    const size_t n = (size_t)len * N;
    switch (c->update) {
    case RS_COVERAGE_TANH: rs_vtanh(in, (int)n); break;
    case RS_COVERAGE_SIGMOID: rs_vsigmoid(in, (int)n); break;
    case RS_COVERAGE_RELU: for (size_t i = 0; i < n; i++) in[i] = in[i] > 0.0f ? in[i] : 0.0f; break;
    case RS_COVERAGE_SOFTRELU: for (size_t i = 0; i < n; i++) in[i] = softrelu(in[i]); break;
    default: break;
    }
    memcpy(cov, in, sizeof(float) * n);
}

static void step(const rs_attention *a, const rs_attention_step *s) {
    const rs_coverage *c = &a->coverage;
    const rs_encoded *enc = s->enc;
    const int S = enc->max_len, D = a->memory_width, A = a->key_width, N = c->size;
    const int G = gates(c) * N;
    float *q = s->work, *uq = q + (size_t)s->rows * A, *WC = uq + (size_t)s->rows * G;
    float *tmp = WC + (size_t)S * A, *in = tmp + A, *scratch = in + (size_t)S * G;
    rs_linear_forward(&a->query, s->rows, s->query, a->query_width, q, A, 0);
    if (c->update != RS_COVERAGE_SUM)
        rs_linear_forward(&c->query, s->rows, s->query, a->query_width, uq, G, 0);
    for (int r = 0; r < s->rows; r++) {
        const int b = s->sentence[r], len = enc->lengths[b];
        float *cov = s->state + (size_t)r * S * N, *probs = s->probs + (size_t)r * S;
        rs_linear_forward(&c->projection, len, cov, N, WC, A, 0);
        rs_additive_energies(a->v, q + (size_t)r * A, enc->keys + (size_t)b * S * A, A, WC, A, A,
                             len, probs, tmp);
        rs_attention_softmax(a, s->window ? s->window + 2 * r : NULL, probs, len);
        rs_attention_context(probs, enc->memory + (size_t)b * S * D, len, D,
                             s->context + (size_t)r * a->context_width);
        update(c, enc->aux ? enc->aux + (size_t)b * S * G : NULL, uq + (size_t)r * G, probs, len,
               cov, in, scratch);
    }
}

const rs_attention_ops rs_attention_coverage = {
    .name = "coverage",
    .state_floats = state_floats,
    .work_floats = work_floats,
    .init_row = init_row,
    .step = step,
    .prepare = prepare,
};
