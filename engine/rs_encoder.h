/* The encoder and bridge: source ids in, memory and the decoder's initial states out. */
#ifndef RS_ENCODER_H
#define RS_ENCODER_H

#include <stddef.h>

#include "rs_model.h"

typedef struct {
    int batch, max_len;
    const int *lengths; /* [batch]: the caller's source lengths */
    float *memory;    /* [batch, max_len, D_m]; positions past a sentence's length unused */
    float *keys;      /* [batch, max_len, key_width], set by rs_attention_prepare;
                         == memory when keys are not projected */
    int key_width;
    float *aux;       /* [batch, max_len, aux_width]: what the attention type reads of every
                         position besides the keys (rs_attention_ops.prepare), or NULL */
    int aux_width;
    float *init_h;    /* [dec_layers, batch, H_d] */
    float *init_c;    /* [dec_layers, batch, H_d] (LSTM decoders) */
} rs_encoded;

/* lengths must be sorted in non-increasing order, each >= 1 and <= S. */
int rs_encode(const rs_model *m, int batch, const int *ids, int stride, const int *lengths,
              int S, rs_encoded *out, char *err, size_t err_size);
void rs_encoded_free(rs_encoded *e);

#endif
