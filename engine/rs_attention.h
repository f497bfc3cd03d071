/* The attention interface: what a decoder step asks of an attention type.
 *
 * An attention type is one table of functions (rs_attention_ops) in one C file, listed in
 * rs_attention.c's registry. The decoder calls it for a block of rows (hypotheses of
 * several sentences) per step; the beam search never sees it.
 *
 * State: a type may carry floats from one step to the next for every row (previous
 * weights, cumulative weights, a position). It says how many (state_floats); the decoder
 * allocates them with the other recurrent state, starts each row with init_row, hands
 * them to step to read and update in place, copies them with the row when the beam
 * reorders hypotheses, and frees them with the batch. Because the state is plain floats,
 * reorder and release need nothing from the type. */
#ifndef RS_ATTENTION_H
#define RS_ATTENTION_H

#include <stddef.h>

#include "rs_encoder.h"
#include "rs_model.h"

/* One step of attention for `rows` rows. */
typedef struct {
    int rows;
    int step;               /* decoding step: 0 for the first target token */
    const float *query;     /* [rows, query_width]: the decoder's query (Bahdanau: the
                               previous top-layer output; Luong: the new one) */
    const float *embedding; /* [rows, embedding_width]: each row's previous target token's
                               embedding (forward attention's transition agent reads it) */
    const int *window;      /* NULL, or [rows, 2]: the decode-time attention constraint's
                               range [lo, hi) of each row; weights outside it are 0 */
    const int *sentence;    /* [rows]: the sentence of enc each row belongs to */
    const rs_encoded *enc;  /* memory, keys (rs_attention_prepare) and source lengths */
    float *state;           /* [rows, state_floats]: read and updated in place */
    float *probs;           /* out [rows, enc->max_len]: the weights over the source */
    float *context;         /* out [rows, context_width] */
    float *work;            /* work_floats(a, rows, enc->max_len) floats of scratch */
} rs_attention_step;

typedef struct rs_attention_ops {
    const char *name;       /* the config's attention.type */
    /* per-row state floats for sources of up to max_source positions (0: stateless) */
    size_t (*state_floats)(const rs_attention *a, int max_source);
    /* scratch floats of one step over up to `rows` rows */
    size_t (*work_floats)(const rs_attention *a, int rows, int max_source);
    /* the state of a row starting a sentence of `length` positions (the row holds
       state_floats(a, max_source) floats) */
    void (*init_row)(const rs_attention *a, int length, int max_source, float *state);
    void (*step)(const rs_attention *a, const rs_attention_step *s);
    /* optional (NULL: nothing): once per batch after the keys, what the type reads of
       every position besides them, into enc->aux (rs_encoded_free frees it). Non-zero
       when out of memory. */
    int (*prepare)(const rs_attention *a, rs_encoded *enc);
    /* 1: the step sums soft contexts of a sentence's rows with rs_context_rows from
       enc->value_panels (rs_attention_prepare builds them unless a->hard) */
    int reads_value_panels;
} rs_attention_ops;

/* The type called `name`, or NULL. */
const rs_attention_ops *rs_attention_named(const char *name);

/* Once per batch, after encoding: the keys every position is scored against
 * (enc->keys, enc->key_width): the key projection of the memory (or of its key part), or
 * the memory itself; the values the context sums (enc->values, enc->value_width); mocha's
 * chunk keys; then the type's own prepare (enc->aux). Returns non-zero when out of
 * memory. */
int rs_attention_prepare(const rs_attention *a, rs_encoded *enc);

/* Shared by the types: x[0..len) <- softmax_j(a->scaling * x[j]) over the row's window
 * [window[0], window[1]) (all of [0, len) when window is NULL); weights outside it are 0. */
void rs_attention_softmax(const rs_attention *a, const int *window, float *x, int len);
/* One step of the model's attention for a block of rows; the decoder calls this, not
 * ops->step: the type's step (its context into s->context, [rows, a->context_width]), then
 * the options every type shares: the context gate, and attention.context's projection
 * into `output` ([rows, rs_attention_output_width(a)]; `output` is s->context when the
 * model has no projection). */
/* The scratch floats rs_attention_run needs over up to `rows` rows: the type's step's, or
 * the gate's betas when larger (s->work must hold this many). */
size_t rs_attention_work_floats(const rs_attention *a, int rows, int max_source);
void rs_attention_run(const rs_attention *a, const rs_attention_step *s, float *output);

/* What the decoder reads per row: the projection's width, else a->context_width. */
int rs_attention_output_width(const rs_attention *a);

/* Shared by the types: the constraint's window [lo, hi) of row r of s intersected with
 * [lo, hi) (unchanged when the step has no window). */
void rs_attention_clip_window(const rs_attention_step *s, int r, int *lo, int *hi);

/* Scratch floats of the query projection (rs_attention_queries) plus one key's worth. */
size_t rs_attention_query_floats(const rs_attention *a, int rows);

/* The rows' queries as the scores read them: projected by attention.query into s->work
 * when there is one, else as given; then the scratch that follows them in s->work:
 * key_width floats for the scores, then the type's own. */
typedef struct {
    const float *rows; /* row r at rows + r * width */
    int width;
    float *scratch;
} rs_attention_queries_t;
rs_attention_queries_t rs_attention_queries(const rs_attention *a, const rs_attention_step *s);

/* For stateless types: no state floats, nothing to initialise. */
size_t rs_attention_no_state(const rs_attention *a, int max_source);
void rs_attention_no_init(const rs_attention *a, int length, int max_source, float *state);

/* Scores e_j, j in [lo, hi), of one row's (projected) query against the keys of its
 * sentence (keys row j at keys + j * key_width) with the score function; tmp holds
 * key_width floats. */
void rs_attention_scores(const rs_attention *a, const float *query, const float *keys,
                         int key_width, int lo, int hi, float *scores, float *tmp);

/* The scores over [0, len) of n rows of one sentence (row r's query at queries +
 * r * query_stride, its scores at scores + r * score_stride): rs_attention_scores' values,
 * bit for bit; relu additive scores (Show, Attend and Tell) are computed in one pass per
 * key and row, with each key read once for all n rows. */
void rs_attention_scores_rows(const rs_attention *a, int n, const float *queries, int query_stride,
                              const float *keys, int key_width, int len, float *scores,
                              int score_stride, float *tmp);

/* v . tanh(q + k) over width entries (v NULL: all ones); tmp holds width floats. */
float rs_attention_additive(const float *v, const float *q, const float *k, int width,
                            float *tmp);

/* The context of one row from its weights over [lo, hi): the weighted sum of the values,
 * or with a->hard the value at the weights' first maximum (the weights become one-hot).
 * An empty range gives a zero context. */
void rs_attention_read(const rs_attention *a, float *probs, int lo, int hi,
                       const float *values, int value_width, float *context);

/* A row whose scores came out NaN (weights that overflow float32): its weights and context
 * become NaN, so that the scores turn NaN and the search raises its non-finite error
 * instead of a type's selection (argmax, threshold, window) hiding the NaN. */
void rs_attention_poison(float *probs, int len, float *context, int context_width);

/* Shared by the types: context[0..D) = sum_j probs[j] * memory[j, 0..D). */
void rs_attention_context(const float *probs, const float *memory, int len, int D,
                          float *context);
/* The contexts of the n rows of sentence b from row r on (rs_attention_sentence_run):
 * rs_context_rows over the sentence's value panels, into s->context. Each row's sums are
 * rs_attention_context's, in the same order: the same bits. */
void rs_attention_sentence_contexts(const rs_attention *a, const rs_attention_step *s, int r,
                                    int n);
/* How many rows from row r on belong to r's sentence (the search keeps a sentence's rows
 * together). */
int rs_attention_sentence_run(const rs_attention_step *s, int r);

#endif
