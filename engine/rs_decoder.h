/* One decoder step over a block of rows (hypotheses of several sentences). */
#ifndef RS_DECODER_H
#define RS_DECODER_H

#include "rs_encoder.h"
#include "rs_model.h"

/* Recurrent state of every row; two of these are swapped when beams are reordered. */
typedef struct {
    float *h;    /* [dec_layers, capacity, H_d] */
    float *c;    /* [dec_layers, capacity, H_d] (LSTM) */
    float *feed; /* [capacity, D_a] previous attentional vector (luong input feeding) */
    float *top;  /* [capacity, H_d] previous step's output (bahdanau query) */
    float *att;  /* [capacity, att_floats] the attention type's per-row state */
    size_t att_floats;
    int *attended; /* [capacity] the previous step's argmax (the attention constraint) */
} rs_decoder_state;

/* Scratch buffers of one step, sized once per batch. */
typedef struct {
    int capacity, max_source;
    float *embedding, *x0, *layer_a, *layer_b, *xg, *rnn_scratch, *context, *att_work;
    float *concat, *hidden;
    int constrain, backward, forward; /* the attention constraint (rs_options) */
    int *window; /* [capacity, 2] each row's constrained range */
    float *type_context; /* [capacity, type's context width] before attention.context */
    const float *output_input; /* after a step: the rows the output layer read */
    float *part; /* one readout part's product (readout with layer normalisation) */
    struct rs_vmap *vmap; /* NULL, or the output layer over candidates only (rs_vmap.h) */
} rs_decoder_work;

/* The most floats one row of a decoder (or encoder) block holds at once (the vocabulary,
 * the gates, a concatenation, the source, the attention state). The kernels count a
 * block's elements in int, so rows x this must stay within RS_MAX_BLOCK_ELEMENTS. */
size_t rs_decoder_row_floats(const rs_model *m, int max_source);

/* A lower bound of the floats a decoder block of `rows` rows allocates beyond the model:
 * its widest per-row block, the attention type's state twice (this step's and the next's)
 * and the type's scratch for the block. The Python memory estimate adds it
 * (rnnsearch.limits.decoding_bytes). (size_t)-1 if it does not fit a size_t. */
size_t rs_decoder_block_floats(const rs_model *m, int rows, int max_source);

int rs_decoder_alloc(const rs_model *m, int capacity, int max_source, rs_decoder_state *a,
                     rs_decoder_state *b, rs_decoder_work *w);
void rs_decoder_release(rs_decoder_state *a, rs_decoder_state *b, rs_decoder_work *w);

/* Mark, on the decoder's matrices whose inputs are concatenations built by
 * rs_decoder_step, where each part begins (rs_linear.qsplit), so the int8 kernel gives
 * every part its own activation scale. Call before the matrices are quantized. */
void rs_decoder_mark_input_parts(rs_model *m);

/* Row r starts as sentence sentence[r] of enc (no previous step). */
void rs_decoder_init_rows(const rs_model *m, const rs_encoded *enc, int rows, const int *sentence,
                          int capacity, rs_decoder_state *st);

/* Copy the state of row parent[i] of `from` into row i of `to`. */
void rs_decoder_gather(const rs_model *m, int rows, const int *parent, int capacity,
                       const rs_decoder_state *from, rs_decoder_state *to);

/* Advance every row by one token (decoding step t, 0 for the first target token):
 * tokens[r] is row r's previous token, sentence[r] its sentence in enc. Writes logits
 * [rows, V] and, with attention, the attention probabilities [rows, enc->max_len]. */
void rs_decoder_step(const rs_model *m, const rs_encoded *enc, int t, int rows,
                     const int *tokens, const int *sentence, rs_decoder_state *st,
                     rs_decoder_work *w, float *logits, float *probs);

/* The attention type's step for every row (query rows H_d wide): probs and w->context. */
void rs_decoder_attend(const rs_model *m, const rs_encoded *enc, int t, int rows,
                       const int *sentence, const float *query, rs_decoder_state *st,
                       rs_decoder_work *w, float *probs);

/* rs_decoder_conditional.c: layer 0 of a conditional decoder (its state st->h layer 0, the
 * context in w->context, the weights in probs), from the embeddings in w->embedding. */
void rs_conditional_first_layer(const rs_model *m, const rs_encoded *enc, int t, int rows,
                                const int *sentence, rs_decoder_state *st, rs_decoder_work *w,
                                float *probs);

/* rs_decoder_conditional.c: the readout with layer normalisation, before its activation:
 * hidden = sum_k norm_k(W_k x_k + b_k) + b over the parts x_k of in [rows, width]; part is
 * scratch [rows, R]. */
void rs_readout_by_parts(const rs_model *m, int rows, const float *in, int width, float *hidden,
                         float *part);

#endif
