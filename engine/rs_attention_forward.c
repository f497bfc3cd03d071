/* Forward attention (Zhang et al. 2018; ESPnet AttForward / AttForwardTA;
 * docs/model-format.md, "forward"): location-aware energies over the previous weights p,
 * w = softmax(scaling * e), then the forward recursion
 *   w'_j = (p_j + p_{j-1}) w_j, clamped below at 1e-6 and L1-normalised,
 * or with the transition agent w'_j = (u p_j + (1 - u) p_{j-1}) w_j, where the row's
 * u = sigmoid(W [c; E y_prev; q] + b) is computed after each step for the next (starting at
 * 1/2). The weights start on position 0 unless the config says otherwise. */
#include <math.h>
#include <string.h>

#include "rs_attention.h"
#include "rs_attention_state.h"
#include "rs_kernels.h"

/* Per row: the previous weights [S], then u. */
static size_t state_floats(const rs_attention *a, int max_source) {
    (void)a;
    return (size_t)max_source + 1;
}

/* projected queries [rows, A]; per row: F [S, C], P F [S, A], tmp [A], [c; e; q] */
static size_t work_floats(const rs_attention *a, int rows, int max_source) {
    const size_t A = a->key_width, S = max_source, C = a->location.channels;
    const size_t agent = RS_HAS_LINEAR(a->transition) ? (size_t)a->transition.in : 0;
    return rows * A + S * C + S * A + A + agent + 1;
}

static void init_row(const rs_attention *a, int length, int max_source, float *state) {
    rs_weights_start(a->location.initial, length, max_source, state);
    state[max_source] = 0.5f;
}

/* w <- the forward recursion over the previous weights p (both [len]); agent: mix with u */
static void recurse(const float *p, int agent, float u, int len, float *w) {
    float previous = 0.0f, sum = 0.0f; /* p_{j-1}, zero before the first position */
    for (int j = 0; j < len; j++) {
        const float mixed = agent ? u * p[j] + (1.0f - u) * previous : p[j] + previous;
        const float v = mixed * w[j];
        previous = p[j];
        w[j] = v > 1e-6f ? v : 1e-6f;
        sum += w[j];
    }
    for (int j = 0; j < len; j++) w[j] /= sum;
}

static float transition(const rs_attention *a, const float *context, const float *embedding,
                        const float *query, float *in) {
    const int D = a->context_width, Q = a->query_width, E = a->transition.in - D - Q;
    float x;
    memcpy(in, context, sizeof(float) * D);
    memcpy(in + D, embedding, sizeof(float) * E);
    memcpy(in + D + E, query, sizeof(float) * Q);
    rs_linear_forward(&a->transition, 1, in, a->transition.in, &x, 1, 0);
    return 1.0f / (1.0f + expf(-x));
}

static void step(const rs_attention *a, const rs_attention_step *s) {
    const rs_location *L = &a->location;
    const rs_encoded *enc = s->enc;
    const int S = enc->max_len, D = a->memory_width, A = a->key_width, C = L->channels;
    const int agent = RS_HAS_LINEAR(a->transition);
    const int E = agent ? a->transition.in - a->context_width - a->query_width : 0;
    float *q = s->work, *F = q + (size_t)s->rows * A, *PF = F + (size_t)S * C;
    float *tmp = PF + (size_t)S * A, *in = tmp + A;
    rs_linear_forward(&a->query, s->rows, s->query, a->query_width, q, A, 0);
    for (int r = 0; r < s->rows; r++) {
        const int b = s->sentence[r], len = enc->lengths[b];
        float *p = s->state + (size_t)r * (S + 1), *probs = s->probs + (size_t)r * S;
        float *context = s->context + (size_t)r * a->context_width;
        rs_location_conv(L->conv, C, 1, L->kernel, p, S, len, F);
        rs_linear_forward(&L->projection, len, F, C, PF, A, 0);
        rs_additive_energies(a->v, q + (size_t)r * A, enc->keys + (size_t)b * S * A, A, PF, A, A,
                             len, probs, tmp);
        rs_attention_softmax(a, s->window ? s->window + 2 * r : NULL, probs, len);
        recurse(p, agent, p[S], len, probs);
        rs_attention_context(probs, enc->memory + (size_t)b * S * D, len, D, context);
        memcpy(p, probs, sizeof(float) * len);
        if (agent)
            p[S] = transition(a, context, s->embedding + (size_t)r * E,
                              s->query + (size_t)r * a->query_width, in);
    }
}

const rs_attention_ops rs_attention_forward = {
    .name = "forward",
    .state_floats = state_floats,
    .work_floats = work_floats,
    .init_row = init_row,
    .step = step,
};
