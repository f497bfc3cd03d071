/* Score functions (docs/model-format.md, "attention"), softmax over the source, context. */
#include "rs_attention.h"

#include <math.h>
#include <string.h>

#include "rs_kernels.h"
#include "rs_vmath.h"

static float additive_score(const rs_model *m, const float *q, const float *k, int width,
                            float *tmp) {
    for (int a = 0; a < width; a++) tmp[a] = q[a] + k[a];
    rs_vtanh(tmp, width);
    if (!m->att_v) {
        float s = 0.0f;
        for (int a = 0; a < width; a++) s += tmp[a];
        return s;
    }
    return rs_dot_inline(m->att_v, tmp, width);
}

RS_CLONES
void rs_attend(const rs_model *m, const float *query, const float *keys, int key_width,
               const float *memory, int len, float *probs, float *context, float *tmp) {
    const int D = m->enc_width;
    float scale = 1.0f;
    if (m->score == RS_SCORE_DOT) scale = m->dot_scale;
    else if (m->score == RS_SCORE_SCALED_DOT) scale = 1.0f / sqrtf((float)m->dec_hidden);

    for (int j = 0; j < len; j++) {
        const float *k = keys + (size_t)j * key_width;
        if (m->score == RS_SCORE_ADDITIVE)
            probs[j] = additive_score(m, query, k, key_width, tmp);
        else
            probs[j] = scale * rs_dot_inline(query, k, key_width);
    }
    rs_softmax(probs, len);
    memset(context, 0, sizeof(float) * D);
    for (int j = 0; j < len; j++) {
        const float a = probs[j], *h = memory + (size_t)j * D;
        for (int i = 0; i < D; i++) context[i] += a * h[i];
    }
}
