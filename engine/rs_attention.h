/* Global attention for one decoder row against its own sentence's keys and memory. */
#ifndef RS_ATTENTION_H
#define RS_ATTENTION_H

#include "rs_model.h"

/* query: the decoder's query vector, already projected by W_q for additive attention with
 * a query projection. Writes probs[0..len) (softmax over the sentence) and
 * context[0..D_m). tmp holds key_width floats. */
void rs_attend(const rs_model *m, const float *query, const float *keys, int key_width,
               const float *memory, int len, float *probs, float *context, float *tmp);

#endif
