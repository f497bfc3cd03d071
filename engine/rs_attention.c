/* The attention registry and what every type shares: the keys computed once per batch and
 * the weighted sum of the memory. The types themselves live in rs_attention_<type>.c. */
#include "rs_attention.h"

#include <stdlib.h>
#include <string.h>

#include "rs_kernels.h"
#include "rs_norm.h"

extern const rs_attention_ops rs_attention_global;

static const rs_attention_ops *const TYPES[] = {&rs_attention_global};

const rs_attention_ops *rs_attention_named(const char *name) {
    for (size_t i = 0; i < sizeof(TYPES) / sizeof(TYPES[0]); i++)
        if (strcmp(TYPES[i]->name, name) == 0) return TYPES[i];
    return NULL;
}

int rs_attention_prepare(const rs_attention *a, rs_encoded *enc) {
    const int B = enc->batch, S = enc->max_len, D = a->memory_width;
    if (!a->ops || !RS_HAS_LINEAR(a->key)) {
        enc->key_width = D;
        enc->keys = enc->memory; /* keys are the memory itself */
        return 0;
    }
    enc->key_width = a->key.out;
    enc->keys = calloc((size_t)B * S * enc->key_width + 1, sizeof(float));
    if (!enc->keys) return 1;
    for (int b = 0; b < B; b++) {
        float *keys = enc->keys + (size_t)b * S * enc->key_width;
        rs_linear_forward(&a->key, enc->lengths[b], enc->memory + (size_t)b * S * D, D, keys,
                          enc->key_width, 0);
        rs_norm_rows(&a->key_norm, enc->lengths[b], keys, enc->key_width, enc->key_width);
    }
    return 0;
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
