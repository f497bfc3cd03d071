/* The encoder's source stage and its reshaping along time: token ids through the
 * embedding, feature frames through the optional input projection, subsampling (the
 * pyramid of Listen, Attend and Spell; ESPnet's strides) and ESPnet's per-layer
 * projections. The encoder (rs_encoder.c) runs its layers between these. */
#ifndef RS_SOURCE_H
#define RS_SOURCE_H

#include <stddef.h>

#include "rs_model.h"

/* dst [B, S, width] (S = max length) from sources order[0..B) of `input`: embeddings of
 * the ids, or the frames (projected when the model says so). */
void rs_source_embed(const rs_model *m, int B, const rs_input *input, const int *order,
                     const int *lengths, int S, float *dst);

/* Positions a sentence of `length` keeps after subsampling step `index` (0: the input,
 * l + 1: after layer l). */
int rs_subsampled_length(const rs_source_stage *s, int index, int length);

/* Subsampling step `index` in place on x [B, S, width]: lengths are updated, the new
 * layout is [B, S', width'] with S' and width' returned through S and width. */
void rs_subsample(const rs_source_stage *s, int index, int B, int *lengths, float *x, int *S,
                  int *width);

/* The largest S x width any stage of the encoder holds for sentences of up to S
 * positions (the size of its two ping-pong buffers, per sentence). */
size_t rs_encoder_stage_floats(const rs_model *m, int S);

#endif
