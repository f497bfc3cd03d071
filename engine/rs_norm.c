/* Layer normalisation (Ba et al. 2016) as Marian and Nematus compute it: the biased
 * variance, eps inside the square root, gain * ((x - mean) / sigma) + bias. */
#include "rs_norm.h"

#include <math.h>

static void norm_span(float *x, int n, const float *gain, const float *bias, float eps) {
    float sum = 0.0f;
    for (int i = 0; i < n; i++) sum += x[i];
    const float mean = sum / (float)n;
    float sq = 0.0f;
    for (int i = 0; i < n; i++) {
        const float d = x[i] - mean;
        sq += d * d;
    }
    const float sigma = sqrtf(sq / (float)n + eps);
    for (int i = 0; i < n; i++) {
        float t = gain[i] * ((x[i] - mean) / sigma);
        x[i] = bias ? t + bias[i] : t;
    }
}

void rs_norm_rows(const rs_norm *n, int rows, float *x, int width, int stride) {
    if (!n->gain) return;
    const int first = n->split > 0 && n->split < width ? n->split : width;
    for (int r = 0; r < rows; r++) {
        float *row = x + (size_t)r * stride;
        norm_span(row, first, n->gain, n->bias, n->eps);
        if (first < width)
            norm_span(row + first, width - first, n->gain + first, n->bias ? n->bias + first : NULL,
                      n->eps);
    }
}
