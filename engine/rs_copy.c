/* The copy generator: see rs_copy.h. */
#include "rs_copy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rs_attention.h"
#include "rs_kernels.h"
#include "rs_platform.h"

/* what collapse_copy_scores leaves on a dynamic word the target vocabulary also has */
#define COLLAPSED_COPY_PROB 1e-10f

int rs_copy_prepare(const rs_copy_generator *g, const rs_encoded *enc, int pad_to_longest,
                    rs_encoded *copy_enc, int *lengths_storage) {
    *copy_enc = *enc;
    copy_enc->keys = NULL;
    copy_enc->value_panels = NULL; /* its own when its attention is prepared below */
    if (!g->attention.ops) return 0; /* the decoder's attention is reused */
    if (rs_attention_prepare(&g->attention, copy_enc)) return 1;
    for (int b = 0; b < enc->batch; b++)
        lengths_storage[b] = pad_to_longest ? enc->max_len : enc->lengths[b];
    copy_enc->lengths = lengths_storage;
    return 0;
}

void rs_copy_release(rs_encoded *copy_enc) {
    if (copy_enc->keys && copy_enc->keys != copy_enc->memory) free(copy_enc->keys);
    rs_aligned_free(copy_enc->value_panels);
    memset(copy_enc, 0, sizeof(*copy_enc));
}

size_t rs_copy_work_floats(const rs_copy_generator *g, int rows, int max_source) {
    const rs_attention *a = &g->attention;
    size_t n = (size_t)rows; /* the switch's logits */
    if (a->ops)
        n += (size_t)rows * a->context_width + rs_attention_work_floats(a, rows, max_source);
    return n;
}

void rs_copy_step(const rs_copy_generator *g, const rs_model *m, const rs_encoded *copy_enc,
                  const rs_copy_inputs *in, int rows, int t, const int *sentence,
                  const float *hidden, float *logits, const float *decoder_probs,
                  float *copy_probs, float *out, float *work) {
    const int V = m->tgt_vocab, S = copy_enc->max_len, W = V + in->max_words;
    const int D = m->output.in;
    float *p_copy = work;
    const float *attention = decoder_probs;
    if (g->attention.ops) {
        float *context = work + rows;
        const rs_attention_step step = {
            .rows = rows, .step = t, .query = hidden, .sentence = sentence, .enc = copy_enc,
            .state = NULL, .probs = copy_probs, .context = context,
            .work = context + (size_t)rows * g->attention.context_width,
        };
        g->attention.ops->step(&g->attention, &step);
        attention = copy_probs;
    }
    rs_linear_forward(&g->gate, rows, hidden, D, p_copy, 1, 0);
    for (int r = 0; r < rows; r++) {
        const int b = sentence[r], span = copy_enc->lengths[b] < in->stride ? copy_enc->lengths[b] : in->stride;
        const float p = 1.0f / (1.0f + expf(-p_copy[r])), keep = 1.0f - p;
        float *lg = logits + (size_t)r * V, *o = out + (size_t)r * W, *copy = o + V;
        const float *a = attention + (size_t)r * S;
        const int *map = in->src_map + (size_t)b * in->stride;
        const int *collapse = in->collapse + (size_t)b * in->max_words;
        lg[g->pad_id] = -INFINITY;
        rs_softmax(lg, V);
        for (int v = 0; v < V; v++) o[v] = lg[v] * keep;
        memset(copy, 0, sizeof(float) * in->max_words);
        /* padding positions of an OpenNMT-py batch (map -1) hold no word: their share of
           the copy attention is lost */
        for (int j = 0; j < span; j++)
            if (map[j] >= 0) copy[map[j]] += a[j] * p;
        for (int x = 1; x < in->words[b]; x++)
            if (collapse[x] >= 0) {
                o[collapse[x]] += copy[x];
                copy[x] = COLLAPSED_COPY_PROB;
            }
    }
}
