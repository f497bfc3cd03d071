/* The source stage and the reshaping along time of docs/model-format.md, "Encoders over
 * features". Subsampling works in place: both modes only move data towards the start of
 * the buffer. */
#include "rs_source.h"

#include <string.h>

#include "rs_kernels.h"

void rs_source_embed(const rs_model *m, int B, const rs_input *input, const int *order,
                     const int *lengths, int S, float *dst) {
    const rs_source_stage *s = &m->source;
    const int W = s->width;
    for (int b = 0; b < B; b++) {
        const int row = rs_input_row(input, order[b]);
        float *out = dst + (size_t)b * S * W;
        if (s->kind == RS_SOURCE_IDS) {
            const int *ids = input->ids + (size_t)row * input->stride;
            for (int p = 0; p < lengths[b]; p++)
                memcpy(out + (size_t)p * W, m->src_embedding + (size_t)ids[p] * W,
                       sizeof(float) * W);
            continue;
        }
        const int F = s->feature_size;
        const float *frames = input->features + (size_t)row * input->stride * F;
        if (RS_HAS_LINEAR(s->input_projection)) {
            rs_linear_forward(&s->input_projection, lengths[b], frames, F, out, W, 0);
            rs_apply_activation(s->input_activation, out, lengths[b] * W);
        } else {
            memcpy(out, frames, sizeof(float) * (size_t)lengths[b] * F);
        }
    }
}

int rs_subsampled_length(const rs_source_stage *s, int index, int length) {
    const int f = s->factors[index];
    if (f <= 1) return length;
    if (s->mode == RS_SUBSAMPLE_CONCAT) return length / f; /* a last incomplete group goes */
    /* ESPnet: its data loader's x[::f] at the input, its RNNP's (L + 1) // f after a layer */
    return index == 0 ? (length + f - 1) / f : (length + 1) / f;
}

void rs_subsample(const rs_source_stage *s, int index, int B, int *lengths, float *x, int *S,
                  int *width) {
    const int f = s->factors[index], W = *width, S0 = *S;
    if (f <= 1) return;
    const int S1 = rs_subsampled_length(s, index, S0);
    if (s->mode == RS_SUBSAMPLE_CONCAT) {
        /* f consecutive positions are already side by side in a sentence's block: only the
           blocks move closer (sentence b from b*S0*W to b*S1*f*W, never forwards) */
        for (int b = 0; b < B; b++)
            memmove(x + (size_t)b * S1 * f * W, x + (size_t)b * S0 * W,
                    sizeof(float) * (size_t)S1 * f * W);
        *width = f * W;
    } else {
        for (int b = 0; b < B; b++)
            for (int p = 0; p < S1; p++)
                memmove(x + ((size_t)b * S1 + p) * W, x + ((size_t)b * S0 + (size_t)p * f) * W,
                        sizeof(float) * W);
    }
    for (int b = 0; b < B; b++) lengths[b] = rs_subsampled_length(s, index, lengths[b]);
    *S = S1;
}

static void subsampled_shape(const rs_source_stage *s, int index, int *S, int *width) {
    *S = rs_subsampled_length(s, index, *S);
    if (s->mode == RS_SUBSAMPLE_CONCAT && s->factors[index] > 1) *width *= s->factors[index];
}

static size_t larger(size_t most, int S, int width) {
    return (size_t)S * width > most ? (size_t)S * width : most;
}

size_t rs_encoder_stage_floats(const rs_model *m, int S) {
    const rs_source_stage *s = &m->source;
    int width = s->width;
    size_t most = larger(0, S, width);
    subsampled_shape(s, 0, &S, &width);
    most = larger(most, S, width);
    for (int l = 0; l < m->enc_layers; l++) {
        width = m->enc_width;
        most = larger(most, S, width);
        subsampled_shape(s, l + 1, &S, &width);
        most = larger(most, S, width);
        if (RS_HAS_LINEAR(s->projection[l])) most = larger(most, S, width = s->projection[l].out);
    }
    return most;
}
