/* The copy generator (pointer-generator, See et al. 2017) as OpenNMT-py computes it
 * (onmt/modules/copy_generator.py and collapse_copy_scores): the output layer's softmax
 * mixed with the attention scattered onto a per-sentence "dynamic" vocabulary of the
 * sentence's own source words.
 *
 *   p      = sigmoid(w_copy . h~ + b_copy)               (the copy switch)
 *   P_gen  = softmax(W h~ + b) with the padding token at -inf, times (1 - p)
 *   P_copy[x] = sum of p * a_j over the source positions j holding dynamic word x
 *   every dynamic word x >= 1 that the target vocabulary has (id t) moves its mass to
 *   P_gen[t] and keeps 1e-10; probabilities over V + (dynamic words) come out (OpenNMT-py
 *   takes their log: log 0 = -inf).
 *
 * a is the copy attention: the decoder's own attention (reuse_copy_attn), or a second
 * global attention queried with h~ that OpenNMT-py computes without a padding mask: over
 * an OpenNMT-py batch it spans the batch's longest source, padding (zero memory) included. */
#ifndef RS_COPY_H
#define RS_COPY_H

#include "rs_encoder.h"
#include "rs_model.h"

typedef struct rs_copy_generator {
    rs_attention attention; /* the copy attention; ops NULL: the decoder's attention is reused */
    rs_linear gate;         /* [1, D_a]: the copy switch's logit */
    int pad_id;             /* the target padding token, never generated */
} rs_copy_generator;

/* What the caller knows about each sentence's dynamic vocabulary. */
typedef struct {
    const int *src_map;  /* [batch, stride]: the dynamic word of each source position */
    int stride;
    const int *collapse; /* [batch, max_words]: the target id dynamic word x adds to, or -1 */
    const int *words;    /* [batch]: dynamic words of each sentence (<= max_words) */
    int max_words;
} rs_copy_inputs;

/* The copy attention's keys, once per batch: a shallow copy of enc with keys of its own
 * (free with rs_copy_release). With pad_to_longest, the copy attention of every sentence
 * spans enc->max_len positions (the memory past a sentence's end must be zero), as in an
 * OpenNMT-py batch; otherwise only the sentence's own. Returns non-zero when out of memory. */
int rs_copy_prepare(const rs_copy_generator *g, const rs_encoded *enc, int pad_to_longest,
                    rs_encoded *copy_enc, int *lengths_storage);
void rs_copy_release(rs_encoded *copy_enc);

/* Scratch floats of rs_copy_step over up to `rows` rows. */
size_t rs_copy_work_floats(const rs_copy_generator *g, int rows, int max_source);

/* One step for `rows` rows: hidden [rows, D_a] is the vector the output layer read, logits
 * [rows, V] its output (overwritten). The copy attention lands in copy_probs [rows,
 * enc->max_len] (the decoder's probs when reused: pass the same array as decoder_probs);
 * out receives probabilities [rows, V + in->max_words]. */
void rs_copy_step(const rs_copy_generator *g, const rs_model *m, const rs_encoded *copy_enc,
                  const rs_copy_inputs *in, int rows, int t, const int *sentence,
                  const float *hidden, float *logits, const float *decoder_probs,
                  float *copy_probs, float *out, float *work);

#endif
