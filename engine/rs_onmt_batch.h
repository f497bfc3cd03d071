/* What OpenNMT-py's searches (rs_search_opennmt.c: beam search, rs_sample_opennmt.c: greedy
 * search and sampling) share: one OpenNMT-py batch encoded once, a decoder step over any
 * block of rows that yields log-probabilities (over the target vocabulary, or over it and
 * the sentences' copied words) and the attention the search sees, the rules both searches
 * apply to a row's log-probabilities, and the hypotheses they collect. Internal to the
 * engine. */
#ifndef RS_ONMT_BATCH_H
#define RS_ONMT_BATCH_H

#include <math.h>
#include <stddef.h>

#include "rs_copy.h"
#include "rs_decoder.h"
#include "rs_encoder.h"
#include "rs_search_opennmt.h"

/* OpenNMT-py's stand-ins for minus infinity: what a forbidden EOS / UNK gets
   (decode_strategy.py: -1e20 in 1.x/2.x, -65504 in 3.x), what a blocked n-gram gets
   (-10e20), and the score of a finished beam kept in the beam (-1e10 / -65504) */
#define ONMT_BANNED(version) ((version) >= 3 ? -65504.0f : -1e20f)
#define ONMT_BLOCKED -10e20f
#define ONMT_FINISHED(version) ((version) >= 3 ? -65504.0f : -1e10f)
#define ONMT_CHUNK 64

typedef struct {
    const rs_model *m;
    const rs_onmt_options *o;
    int batch;              /* sentences, in OpenNMT-py's batch order */
    const int *lengths;     /* [batch] */
    int S;                  /* the longest source */
    int V, W;               /* target vocabulary; log-probability width (V + copied words) */
    int *encoded;           /* [batch]: the sentence's index in enc (longest first) */
    int *sorted_lengths;
    rs_encoded enc, copy_enc;
    int *copy_lengths;
    int have_enc, have_copy, have_dec;
    rs_copy_inputs copy;    /* NULL src_map: no copy generator; else reordered like enc */
    int *copy_map, *copy_collapse, *copy_words;
    rs_decoder_state sa, sb, *cur, *nxt;
    rs_decoder_work work;
    int capacity;
    int *dec_tokens, *dec_sentence;
    float *logits, *probs, *copy_probs, *copy_work, *exp_tmp;
    /* a step's scores, [capacity, W]: logits whose log-probability is the value minus the
       row's shift (shift[r] = logsumexp), or probabilities (copy models: log of the value) */
    float *log_probs, *shift;
    int probabilities;
    /* [capacity, chunks]: each row's maximum value over every ONMT_CHUNK of its scores (the
       search skips a chunk none of whose words can be chosen) */
    float *chunk_max;
    int chunks;
    float *attention;       /* [capacity, S]: the attention the search sees, zero past
                               what the model attended to */
    long long decoded_rows; /* rows the decoder has stepped (the work benchmarks' floors
                               count) */
} onmt_batch;

/* Encode the batch and size everything for `capacity` rows. Returns 0, or non-zero with a
 * message in err (the batch is then closed). */
int onmt_batch_open(onmt_batch *x, const rs_model *m, const rs_onmt_options *o, int batch,
                    const int *ids, int stride, const int *lengths,
                    const rs_copy_inputs *copy, int capacity, char *err, size_t err_size);
void onmt_batch_close(onmt_batch *x);

/* Row r starts sentence sentence[r] (batch order). */
void onmt_batch_start_rows(onmt_batch *x, int rows, const int *sentence);

/* One decoder step for the rows at positions first .. first + rows - 1: tokens[p] is the
 * previous token at position p (copied words are fed back as UNK), sentence[p] its sentence
 * (batch order). Fills those positions of x->log_probs (with x->shift) and x->attention.
 * Returns non-zero (message in err) when the model produced NaN. */
int onmt_batch_step(onmt_batch *x, int t, int first, int rows, const int *tokens,
                    const int *sentence, char *err, size_t err_size);

/* The log-probability of entry v of row r (OpenNMT-py's log_softmax, or log of the copy
 * generator's probability). */
static inline float onmt_log_prob(const onmt_batch *x, int r, int v) {
    const float value = x->log_probs[(size_t)r * x->W + v];
    return x->probabilities ? logf(value) : value - x->shift[r];
}

/* Turn rows 0..rows-1 of x->log_probs into log-probabilities in place. */
void onmt_batch_materialize(onmt_batch *x, int rows);

/* Row i of the next step continues row parent[i]. */
void onmt_batch_reorder(onmt_batch *x, int rows, const int *parent);

/* The attention columns of sentence b: the batch's longest source (OpenNMT-py pads the
 * batch), or per sentence its own length. */
int onmt_attention_width(const onmt_batch *x, int b);

/* ---- the rules applied to a row's log-probabilities before choosing */

/* EOS before min_length and UNK under -ban_unk_token get ONMT_BANNED; `length` counts the
 * row's tokens with the start token, as OpenNMT-py's len(alive_seq). */
void onmt_ban_tokens(const onmt_batch *x, int length, float *row);

/* The length penalty of OpenNMT-py's penalties.py for `length` tokens. */
double onmt_length_penalty(const rs_onmt_options *o, int length);

/* The coverage penalty (beta times wu or summary) of `width` summed attention weights. */
float onmt_coverage_penalty(const rs_onmt_options *o, const float *coverage, int width);

/* ---- collected hypotheses */

typedef struct {
    float score;
    int length;
    int *tokens;
    float *attention;  /* [length, width] or NULL */
    int cut;
} onmt_hyp;

typedef struct {
    int count, capacity;
    onmt_hyp *items;
} onmt_hyps;

/* Append one (takes ownership of tokens and attention); non-zero when out of memory. */
int onmt_hyps_add(onmt_hyps *h, float score, int length, int *tokens, float *attention,
                  int cut);
/* The n best, stable (equal scores keep their order of arrival), moved into result. */
int onmt_hyps_take_best(onmt_hyps *h, int n, int width, rs_onmt_result *result);
void onmt_hyps_free(onmt_hyps *h);

/* The two searches, each over one open batch. */
int onmt_beam_search(onmt_batch *x, rs_onmt_result *results, char *err, size_t err_size);
int onmt_greedy_search(onmt_batch *x, rs_onmt_result *results, char *err, size_t err_size);

#endif
