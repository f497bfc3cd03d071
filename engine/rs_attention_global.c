/* Global attention (docs/model-format.md, "attention"): every source position is scored
 * against the query with dot, scaled dot, general or additive (tanh or relu) scores, softmax
 * over the sentence (softmax(scaling * e), within the attention constraint's window when
 * there is one), context = the weighted sum of the values (or, hard, the value at the argmax).
 * Stateless. */
#include "rs_attention.h"
#include "rs_kernels.h"

static size_t work_floats(const rs_attention *a, int rows, int max_source) {
    (void)max_source;
    return rs_attention_query_floats(a, rows);
}

static void step(const rs_attention *a, const rs_attention_step *s) {
    const rs_encoded *enc = s->enc;
    const int S = enc->max_len, KW = enc->key_width, VW = enc->value_width;
    const rs_attention_queries_t q = rs_attention_queries(a, s);
    float *tmp = q.scratch;
    for (int r = 0, n; r < s->rows; r += n) { /* a sentence's rows together */
        const int b = s->sentence[r];
        n = rs_attention_sentence_run(s, r);
        rs_attention_scores_rows(a, n, q.rows + (size_t)r * q.width, q.width,
                                 enc->keys + (size_t)b * S * KW, KW, enc->lengths[b],
                                 s->probs + (size_t)r * S, S, tmp);
    }
    for (int r = 0; r < s->rows; r++) {
        const int b = s->sentence[r], len = enc->lengths[b];
        float *probs = s->probs + (size_t)r * S;
        rs_attention_softmax(a, s->window ? s->window + 2 * r : NULL, probs, len);
        if (a->hard)
            rs_attention_read(a, probs, 0, len, enc->values + (size_t)b * S * VW, VW,
                              s->context + (size_t)r * a->context_width);
    }
    if (a->hard) return;
    /* soft contexts: the rows of a sentence together, its values read once */
    for (int r = 0, n; r < s->rows; r += n) {
        n = rs_attention_sentence_run(s, r);
        rs_attention_sentence_contexts(a, s, r, n);
    }
}

const rs_attention_ops rs_attention_global = {
    .name = "global",
    .state_floats = rs_attention_no_state,
    .work_floats = work_floats,
    .init_row = rs_attention_no_init,
    .step = step,
    .reads_value_panels = 1,
};
