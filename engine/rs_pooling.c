/* Self-attentive pooling (docs/model-format.md, "pooling"): Lin et al. 2017, eq. 5-6,
 * A = softmax(W_s2 tanh(W_s1 H^T)), with a bias on W_s1 as in Yang et al. 2016 (HAN,
 * eq. 5-7: u_j = tanh(W h_j + b), a_j = softmax_j(u_j . u_w), the r = 1 case); the
 * summary M = A H, rows x D_m, row-major. */
#include "rs_pooling.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_attention.h"
#include "rs_finite.h"
#include "rs_kernels.h"
#include "rs_vmath.h"

int rs_pool(const rs_model *m, rs_encoded *enc) {
    const rs_pooling *p = &m->pooling;
    const int B = enc->batch, S = enc->max_len, D = m->memory_width, R = p->rows, A = p->size;
    enc->pooled = calloc((size_t)B * R * D + 1, sizeof(float));
    enc->pool_weights = calloc((size_t)B * R * S + 1, sizeof(float));
    float *hidden = malloc(sizeof(float) * ((size_t)S * A + 1));
    if (!enc->pooled || !enc->pool_weights || !hidden) {
        free(hidden);
        return 1;
    }
    for (int b = 0; b < B; b++) {
        const int len = enc->lengths[b];
        const float *memory = enc->memory + (size_t)b * S * D;
        rs_linear_forward(&p->projection, len, memory, D, hidden, A, 0);
        for (int j = 0; j < len; j++) rs_vtanh(hidden + (size_t)j * A, A);
        for (int i = 0; i < R; i++) {
            float *weights = enc->pool_weights + ((size_t)b * R + i) * S;
            for (int j = 0; j < len; j++)
                weights[j] = rs_dot_inline(p->query + (size_t)i * A, hidden + (size_t)j * A, A);
            rs_softmax(weights, len);
            rs_attention_context(weights, memory, len, D, enc->pooled + ((size_t)b * R + i) * D);
        }
    }
    free(hidden);
    return 0;
}

int rs_embed(const rs_model *m, int batch, const int *ids, int stride, const int *lengths,
             float *out, float *weights, char *err, size_t err_size) {
    const int R = m->pooling.rows;
    const size_t P = (size_t)R * m->memory_width;
    for (int b = 0; b < batch; b++) {
        rs_encoded enc;
        const rs_input input = {.ids = ids + (size_t)b * stride, .stride = stride,
                                .lengths = lengths + b};
        const int first = 0;
        if (rs_encode(m, 1, &input, &first, &enc, err, err_size))
            return 1;
        if (!enc.pooled && rs_pool(m, &enc)) {
            rs_encoded_free(&enc);
            snprintf(err, err_size, "out of memory while pooling a sentence of %d tokens", lengths[b]);
            return 1;
        }
        if (rs_any_nonfinite(enc.pooled, P)) {
            rs_encoded_free(&enc);
            snprintf(err, err_size, "sentence %d: the model produced non-finite embeddings (NaN "
                     "or infinity): its weights overflow float32 arithmetic", b);
            return 1;
        }
        memcpy(out + b * P, enc.pooled, sizeof(float) * P);
        if (weights)
            for (int i = 0; i < R; i++)
                memcpy(weights + ((size_t)b * R + i) * stride, enc.pool_weights + (size_t)i * lengths[b],
                       sizeof(float) * lengths[b]);
        rs_encoded_free(&enc);
    }
    return 0;
}
