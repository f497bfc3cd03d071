/* The encoder and bridge: sources (ids or feature frames) in, memory and the decoder's
 * initial states out. */
#ifndef RS_ENCODER_H
#define RS_ENCODER_H

#include <stddef.h>

#include "rs_model.h"

typedef struct {
    int batch, max_len;
    int *lengths;     /* [batch]: memory positions per sentence (the source lengths unless
                         the encoder subsamples) */
    float *memory;    /* [batch, max_len, D_m]; positions past a sentence's length unused */
    float *keys;      /* [batch, max_len, key_width], set by rs_attention_prepare;
                         == memory when keys are not projected */
    int key_width;
    float *aux;       /* [batch, max_len, aux_width]: what the attention type reads of every
                         position besides the keys (rs_attention_ops.prepare), or NULL */
    int aux_width;
    float *values;    /* [batch, max_len, value_width], set by rs_attention_prepare: what
                         the context sums; == memory unless key-value attention splits or
                         projects it */
    int value_width;
    float *value_panels; /* [batch, ceil(value_width / 16), max_len, 16]: the values in
                            panels for rs_context_rows, set by rs_attention_prepare for the
                            types that read them, else NULL */
    float *chunk_keys; /* [batch, max_len, chunk width]: mocha's chunk energy keys, or NULL */
    int chunk_key_width;
    float *pooled;    /* [batch, rows * D_m]: encoder.pooling's summary, or NULL */
    float *pool_weights; /* [batch, rows, max_len]: its weights, or NULL */
    float *init_h;    /* [dec_layers, batch, H_d] */
    float *init_c;    /* [dec_layers, batch, H_d] (LSTM decoders) */
} rs_encoded;

/* Encode sources order[0..batch) of `input`, whose lengths must be non-increasing and
 * >= 1. Fails (non-zero, message in err) when out of memory or when subsampling leaves a
 * sentence no positions. */
int rs_encode(const rs_model *m, int batch, const rs_input *input, const int *order,
              rs_encoded *out, char *err, size_t err_size);
void rs_encoded_free(rs_encoded *e);

/* Encode sources order[0..n) of `input` (each of length >= 1) and prepare their attention
 * keys; order is sorted longest first (stable) in place and sentence i of *enc is
 * order[i]. Returns 0, 1 when out of memory, or 2 with rs_encode's message in err; on
 * failure *enc holds nothing. (rs_encode_batch.c) */
int rs_encode_sentences(const rs_model *m, int n, int *order, const rs_input *input,
                        rs_encoded *enc, char *err, size_t err_size);

#endif
