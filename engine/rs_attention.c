/* The attention registry and what every type shares: the keys computed once per batch and
 * the weighted sum of the memory. The types themselves live in rs_attention_<type>.c. */
#include "rs_attention.h"

#include <stdlib.h>
#include <string.h>

#include "rs_kernels.h"

extern const rs_attention_ops rs_attention_global;
extern const rs_attention_ops rs_attention_location, rs_attention_coverage,
    rs_attention_forward, rs_attention_multi_head;

static const rs_attention_ops *const TYPES[] = {&rs_attention_global, &rs_attention_location,
                                                &rs_attention_coverage, &rs_attention_forward,
                                                &rs_attention_multi_head};

const rs_attention_ops *rs_attention_named(const char *name) {
    for (size_t i = 0; i < sizeof(TYPES) / sizeof(TYPES[0]); i++)
        if (strcmp(TYPES[i]->name, name) == 0) return TYPES[i];
    return NULL;
}

int rs_attention_prepare(const rs_attention *a, rs_encoded *enc) {
    const int B = enc->batch, S = enc->max_len, D = a->memory_width;
    if (!a->ops) return 0;
    if (!RS_HAS_LINEAR(a->key)) {
        enc->key_width = D;
        enc->keys = enc->memory; /* keys are the memory itself */
        return a->ops->prepare ? a->ops->prepare(a, enc) : 0;
    }
    enc->key_width = a->key.out;
    enc->keys = calloc((size_t)B * S * enc->key_width + 1, sizeof(float));
    if (!enc->keys) return 1;
    for (int b = 0; b < B; b++)
        rs_linear_forward(&a->key, enc->lengths[b], enc->memory + (size_t)b * S * D, D,
                          enc->keys + (size_t)b * S * enc->key_width, enc->key_width, 0);
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

RS_CLONES
void rs_attention_context(const float *probs, const float *memory, int len, int D,
                          float *context) {
    memset(context, 0, sizeof(float) * D);
    for (int j = 0; j < len; j++) {
        const float a = probs[j], *h = memory + (size_t)j * D;
        for (int i = 0; i < D; i++) context[i] += a * h[i];
    }
}
