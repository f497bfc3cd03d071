/* Self-attentive pooling of the encoder's memory into a fixed-size summary (Yang et al.
 * 2016; Lin et al. 2017): what a `pooling` bridge reads and Translator.encode returns. */
#ifndef RS_POOLING_H
#define RS_POOLING_H

#include <stddef.h>

#include "rs_encoder.h"
#include "rs_model.h"

/* enc->pooled [batch, rows * D_m] and enc->pool_weights [batch, rows, max_len] from
 * enc->memory. Returns non-zero when out of memory. */
int rs_pool(const rs_model *m, rs_encoded *enc);

/* Sentence embeddings: encode each sentence (ids b*stride .. + lengths[b], each >= 1) and
 * pool it: out [batch, rows * D_m]; weights [batch, rows, stride] (zeros past a sentence's
 * length) unless NULL. Sentences are encoded one at a time. Returns non-zero with a
 * message in err on failure. */
int rs_embed(const rs_model *m, int batch, const int *ids, int stride, const int *lengths,
             float *out, float *weights, char *err, size_t err_size);

#endif
