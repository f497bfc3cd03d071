/* Hard monotonic attention at test time (Raffel et al. 2017, Algorithm 1) and MoChA
 * (Chiu & Raffel 2018, Algorithm 1, test time); docs/model-format.md, "monotonic".
 *
 * From the position chosen at the previous step (0 at the first), the energies
 * e_j = score(q, k_j) + r are read left to right and the first j with sigmoid(e_j) >= 0.5
 * (e_j >= 0) is chosen: monotonic attends to it alone; mocha takes a softmax of the chunk
 * energies u_k = v_c . tanh(W_c q + b_c + U_c h_k) over the chunk [j - w + 1, j]. When
 * no position is chosen the context is zero, and stays zero for the rest of the
 * hypothesis: the previous attention is then all zeros, from which nothing can be chosen
 * (TensorFlow's monotonic_attention(mode="hard"), Raffel's reference code).
 *
 * With the decode-time attention constraint, only positions inside its window can be
 * chosen (none there: nothing is chosen) and mocha's chunk is cut to it; attention.scaling
 * multiplies mocha's chunk energies (monotonic refuses it: it could change nothing).
 *
 * State per row: the previous position, or -1 once nothing was chosen. */
#include <string.h>

#include "rs_attention.h"
#include "rs_kernels.h"

static size_t one_state(const rs_attention *a, int max_source) {
    (void)a; (void)max_source;
    return 1;
}

static void start_at_zero(const rs_attention *a, int length, int max_source, float *state) {
    (void)a; (void)length; (void)max_source;
    state[0] = 0.0f;
}

/* queries and score scratch, then mocha's projected chunk queries and their scratch */
static size_t work_floats(const rs_attention *a, int rows, int max_source) {
    (void)max_source;
    const size_t chunk = RS_HAS_LINEAR(a->chunk_query)
                             ? (size_t)rows * a->chunk_query.out + (size_t)a->chunk_query.out
                             : 0;
    return rs_attention_query_floats(a, rows) + chunk;
}

/* The first j in [from, len) whose energy is >= 0, or -1 (-2 at a NaN energy, from weights
 * that overflow float32). Energies are computed one at a time, only as far as needed (the
 * linear-time decoding of the paper). */
static int choose(const rs_attention *a, const float *query, const float *keys, int KW,
                  int from, int len, float *tmp) {
    for (int j = from; j < len; j++) {
        float e;
        rs_attention_scores(a, query, keys, KW, j, j + 1, &e, tmp);
        e += a->energy_bias;
        if (e != e) return -2;
        if (e >= 0.0f) return j;
    }
    return -1;
}

static void step(const rs_attention *a, const rs_attention_step *s) {
    const rs_encoded *enc = s->enc;
    const int S = enc->max_len, KW = enc->key_width, VW = enc->value_width;
    const rs_attention_queries_t q = rs_attention_queries(a, s);
    float *tmp = q.scratch;
    const int mocha = RS_HAS_LINEAR(a->chunk_query);
    const int C = mocha ? a->chunk_query.out : 0;
    float *chunk_q = tmp + KW, *chunk_tmp = chunk_q + (size_t)s->rows * C;
    if (mocha) rs_linear_forward(&a->chunk_query, s->rows, s->query, a->query_width, chunk_q, C, 0);
    for (int r = 0; r < s->rows; r++) {
        const int b = s->sentence[r], len = enc->lengths[b];
        float *probs = s->probs + (size_t)r * S, *context = s->context + (size_t)r * a->context_width;
        float *state = s->state + (size_t)r;
        const float *values = enc->values + (size_t)b * S * VW;
        memset(probs, 0, sizeof(float) * len);
        const int previous = (int)state[0];
        int from = previous, to = len; /* with the attention constraint: inside its window */
        rs_attention_clip_window(s, r, &from, &to);
        const int j = previous < 0 ? -1
                                   : choose(a, q.rows + (size_t)r * q.width, enc->keys + (size_t)b * S * KW,
                                            KW, from, to, tmp);
        if (j == -2) {
            rs_attention_poison(probs, len, context, a->context_width);
            state[0] = -1.0f;
            continue;
        }
        state[0] = (float)j;
        if (j < 0) {
            memset(context, 0, sizeof(float) * a->context_width);
            continue;
        }
        if (!mocha) {
            probs[j] = 1.0f;
            memcpy(context, values + (size_t)j * VW, sizeof(float) * VW);
            continue;
        }
        int lo = j - a->chunk_size + 1 > 0 ? j - a->chunk_size + 1 : 0, hi = j + 1;
        rs_attention_clip_window(s, r, &lo, &hi);
        const float *ck = enc->chunk_keys + (size_t)b * S * C;
        for (int k = lo; k <= j; k++)
            probs[k] = rs_attention_additive(a->chunk_v, chunk_q + (size_t)r * C, ck + (size_t)k * C, C,
                                             chunk_tmp);
        if (a->scaling != 1.0f)
            for (int k = lo; k <= j; k++) probs[k] *= a->scaling;
        rs_softmax(probs + lo, j - lo + 1);
        rs_attention_context(probs + lo, values + (size_t)lo * VW, j - lo + 1, VW, context);
    }
}

/* state_floats is the stride of s->state: one float per row */
const rs_attention_ops rs_attention_monotonic = {
    .name = "monotonic",
    .state_floats = one_state,
    .work_floats = work_floats,
    .init_row = start_at_zero,
    .step = step,
};

const rs_attention_ops rs_attention_mocha = {
    .name = "mocha",
    .state_floats = one_state,
    .work_floats = work_floats,
    .init_row = start_at_zero,
    .step = step,
};
