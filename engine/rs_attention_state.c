/* Shared by the attention types that carry state: docs/model-format.md, "location". */
#include "rs_attention_state.h"

#include <string.h>

#include "rs_kernels.h"
#include "rs_vmath.h"

void rs_weights_start(rs_weights_init init, int len, int S, float *w) {
    memset(w, 0, sizeof(float) * S);
    if (init == RS_WEIGHTS_UNIFORM) {
        const float u = 1.0f / (float)len; /* as ESPnet's mask / length in float32 */
        for (int j = 0; j < len; j++) w[j] = u;
    } else if (init == RS_WEIGHTS_FIRST && len > 0) {
        w[0] = 1.0f;
    }
}

RS_CLONES
void rs_additive_energies(const float *v, const float *q, const float *keys, int key_stride,
                          const float *extra, int extra_stride, int A, int len, float *e,
                          float *tmp) {
    for (int j = 0; j < len; j++) {
        const float *k = keys + (size_t)j * key_stride;
        if (extra) {
            const float *x = extra + (size_t)j * extra_stride;
            for (int i = 0; i < A; i++) tmp[i] = (x[i] + k[i]) + q[i];
        } else {
            for (int i = 0; i < A; i++) tmp[i] = k[i] + q[i];
        }
        rs_vtanh(tmp, A);
        if (v) {
            e[j] = rs_dot_inline(v, tmp, A);
        } else {
            float s = 0.0f;
            for (int i = 0; i < A; i++) s += tmp[i];
            e[j] = s;
        }
    }
}

RS_CLONES
void rs_location_conv(const float *conv, int C, int inputs, int k, const float *x, int S,
                      int len, float *F) {
    const int half = (k - 1) / 2;
    for (int j = 0; j < len; j++) {
        /* taps d with 0 <= j + d - half < len */
        const int d0 = half - j > 0 ? half - j : 0;
        const int d1 = len + half - j < k ? len + half - j : k;
        for (int c = 0; c < C; c++) {
            float s = 0.0f;
            for (int i = 0; i < inputs; i++)
                s += rs_dot_inline(conv + ((size_t)c * inputs + i) * k + d0,
                                   x + (size_t)i * S + j - half + d0, d1 - d0);
            F[(size_t)j * C + c] = s;
        }
    }
}
