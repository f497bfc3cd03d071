/* One OpenNMT-py batch under decoding, and the rules both of its searches apply: see
 * rs_onmt_batch.h. */
#include "rs_onmt_batch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_attention.h"
#include "rs_kernels.h"
#include "rs_thread_memory.h"
#include "rs_vmath.h"

/* the batch's buffers come from the thread's cache of call buffers (rs_thread_memory.h) */
#define ALLOC(ptr, count)                                                                 \
    do {                                                                                  \
        (ptr) = rs_block_calloc((size_t)(count) > 0 ? (size_t)(count) : 1, sizeof(*(ptr))); \
        if (!(ptr)) goto out_of_memory;                                                   \
    } while (0)

/* The copy generator's inputs in the encoder's order, each row of the source map S wide
 * (positions past the sentence: -1). */
static int reorder_copy(onmt_batch *x, const rs_copy_inputs *in) {
    const int B = x->batch, S = x->S, X = in->max_words;
    x->copy_map = rs_block_alloc(sizeof(int) * (size_t)B * S);
    x->copy_collapse = rs_block_alloc(sizeof(int) * (size_t)B * (X > 0 ? X : 1));
    x->copy_words = rs_block_alloc(sizeof(int) * (size_t)B);
    if (!x->copy_map || !x->copy_collapse || !x->copy_words) return 1;
    for (int b = 0; b < B; b++) {
        const int e = x->encoded[b];
        for (int j = 0; j < S; j++)
            x->copy_map[(size_t)e * S + j] = j < x->lengths[b] ? in->src_map[(size_t)b * in->stride + j] : -1;
        memcpy(x->copy_collapse + (size_t)e * X, in->collapse + (size_t)b * X, sizeof(int) * X);
        x->copy_words[e] = in->words[b];
    }
    x->copy.src_map = x->copy_map;
    x->copy.stride = S;
    x->copy.collapse = x->copy_collapse;
    x->copy.words = x->copy_words;
    x->copy.max_words = X;
    return 0;
}

int onmt_batch_open(onmt_batch *x, const rs_model *m, const rs_onmt_options *o, int batch,
                    const int *ids, int stride, const int *lengths,
                    const rs_copy_inputs *copy, int capacity, char *err, size_t err_size) {
    memset(x, 0, sizeof(*x));
    x->m = m;
    x->o = o;
    x->batch = batch;
    x->lengths = lengths;
    x->V = m->tgt_vocab;
    x->W = m->tgt_vocab + (m->copy ? copy->max_words : 0);
    x->capacity = capacity;
    int *order = NULL;
    ALLOC(order, batch);
    ALLOC(x->encoded, batch);
    /* the encoder wants the longest first (stable) */
    for (int b = 0; b < batch; b++) order[b] = b;
    for (int i = 1; i < batch; i++) {
        int v = order[i], j = i;
        while (j > 0 && lengths[order[j - 1]] < lengths[v]) { order[j] = order[j - 1]; j--; }
        order[j] = v;
    }
    x->S = lengths[order[0]];
    const int S = x->S;
    ALLOC(x->sorted_lengths, batch);
    for (int i = 0; i < batch; i++) {
        x->encoded[order[i]] = i;
        x->sorted_lengths[i] = lengths[order[i]];
    }
    const rs_input input = {.ids = ids, .stride = stride, .lengths = lengths};
    if (rs_encode(m, batch, &input, order, &x->enc, err, err_size)) goto fail;
    rs_block_free(order);
    order = NULL;
    if (x->enc.max_len != S) { /* OpenNMT-py's search reads one memory row per token */
        x->have_enc = 1;
        snprintf(err, err_size, "search='opennmt' needs one encoder position per source token "
                 "(this model subsamples its source)");
        goto fail;
    }
    x->have_enc = 1;
    if (rs_attention_prepare(&m->attention, &x->enc)) goto out_of_memory;
    if (m->copy) {
        /* OpenNMT-py's copy attention reads the padding's memory, which its encoder leaves
           at zero */
        const int D = m->memory_width;
        for (int i = 0; i < batch; i++)
            memset(x->enc.memory + ((size_t)i * S + x->sorted_lengths[i]) * D, 0,
                   sizeof(float) * (size_t)(S - x->sorted_lengths[i]) * D);
        if (reorder_copy(x, copy)) goto out_of_memory;
        ALLOC(x->copy_lengths, batch);
        if (rs_copy_prepare(m->copy, &x->enc, !o->per_sentence, &x->copy_enc, x->copy_lengths))
            goto out_of_memory;
        x->have_copy = 1;
        ALLOC(x->copy_probs, (size_t)capacity * S);
        ALLOC(x->copy_work, rs_copy_work_floats(m->copy, capacity, S));
    }
    if (rs_decoder_alloc(m, capacity, S, &x->sa, &x->sb, &x->work)) goto out_of_memory;
    x->have_dec = 1;
    x->cur = &x->sa;
    x->nxt = &x->sb;
    ALLOC(x->dec_tokens, capacity);
    ALLOC(x->dec_sentence, capacity);
    ALLOC(x->logits, (size_t)capacity * x->V);
    ALLOC(x->probs, (size_t)capacity * S);
    ALLOC(x->exp_tmp, x->W);
    ALLOC(x->log_probs, (size_t)capacity * x->W);
    ALLOC(x->shift, capacity);
    x->chunks = (x->W + ONMT_CHUNK - 1) / ONMT_CHUNK;
    ALLOC(x->chunk_max, (size_t)capacity * x->chunks);
    x->probabilities = m->copy != NULL;
    ALLOC(x->attention, (size_t)capacity * S);
    return 0;

out_of_memory:
    snprintf(err, err_size, "out of memory while decoding a batch of %d sentences", batch);
fail:
    rs_block_free(order);
    onmt_batch_close(x);
    return 1;
}

void onmt_batch_close(onmt_batch *x) {
    if (x->have_copy) rs_copy_release(&x->copy_enc);
    if (x->have_dec) rs_decoder_release(&x->sa, &x->sb, &x->work);
    if (x->have_enc) rs_encoded_free(&x->enc);
    void *buffers[] = {x->encoded, x->sorted_lengths, x->copy_lengths, x->copy_map,
                       x->copy_collapse, x->copy_words, x->dec_tokens, x->dec_sentence,
                       x->logits, x->probs, x->copy_probs, x->copy_work, x->exp_tmp,
                       x->log_probs, x->attention, x->shift, x->chunk_max};
    for (size_t k = 0; k < sizeof(buffers) / sizeof(buffers[0]); k++) rs_block_free(buffers[k]);
    memset(x, 0, sizeof(*x));
}

void onmt_batch_start_rows(onmt_batch *x, int rows, const int *sentence) {
    for (int r = 0; r < rows; r++) x->dec_sentence[r] = x->encoded[sentence[r]];
    rs_decoder_init_rows(x->m, &x->enc, rows, x->dec_sentence, x->capacity, x->cur);
}

int onmt_attention_width(const onmt_batch *x, int b) {
    return x->o->per_sentence ? x->lengths[b] : x->S;
}

/* The decoder state of positions first, first + 1, ... as a state of its own (the state's
 * arrays hold rows at a fixed stride, layers `capacity` rows apart: rs_decoder.h). */
static rs_decoder_state rows_from(const onmt_batch *x, int first) {
    const rs_model *m = x->m;
    rs_decoder_state view = *x->cur;
    view.h += (size_t)first * m->dec_hidden;
    view.c += (size_t)first * m->dec_hidden;
    view.feed += (size_t)first * (m->attentional_width ? m->attentional_width : 1);
    view.top += (size_t)first * m->dec_hidden;
    view.att += (size_t)first * view.att_floats;
    return view;
}

int onmt_batch_step(onmt_batch *x, int t, int first, int rows, const int *tokens,
                    const int *sentence, char *err, size_t err_size) {
    const rs_model *m = x->m;
    const int V = x->V, W = x->W, S = x->S, end = first + rows;
    x->decoded_rows += rows;
    for (int p = first; p < end; p++) {
        x->dec_tokens[p] = tokens[p] < V ? tokens[p] : x->o->unk_id; /* a copied word */
        x->dec_sentence[p] = x->encoded[sentence[p]];
    }
    rs_decoder_state view = rows_from(x, first);
    /* without a copy generator the logits are the scores (W = V) */
    rs_decoder_step(m, &x->enc, t, rows, x->dec_tokens + first, x->dec_sentence + first, &view,
                    &x->work, m->copy ? x->logits + (size_t)first * V
                                      : x->log_probs + (size_t)first * W,
                    x->probs + (size_t)first * S);
    const float *seen = x->probs; /* the attention the search sees */
    const rs_encoded *seen_enc = &x->enc;
    if (m->copy) {
        rs_copy_step(m->copy, m, &x->copy_enc, &x->copy, rows, t, x->dec_sentence + first,
                     x->work.output_input, x->logits + (size_t)first * V,
                     x->probs + (size_t)first * S, x->copy_probs + (size_t)first * S,
                     x->log_probs + (size_t)first * W, x->copy_work);
        if (m->copy->attention.ops) {
            seen = x->copy_probs;
            seen_enc = &x->copy_enc;
        }
    }
    for (int p = first; p < end; p++) {
        const float *row = x->log_probs + (size_t)p * W;
        /* the maximum of every ONMT_CHUNK scores, and of the row (NaN if it has a NaN) */
        const float top = rs_vmax_chunks(row, W, ONMT_CHUNK, x->chunk_max + (size_t)p * x->chunks);
        if (isnan(top)) {
            snprintf(err, err_size, "the model produced NaN scores (corrupt or non-finite weights?)");
            return 1;
        }
        /* log_softmax's shift (rs_log_softmax leaves a row with an infinite maximum be) */
        if (!m->copy)
            x->shift[p] = isinf(top) ? 0.0f : rs_logsumexp_from(row, V, top, x->exp_tmp);
    }
    if (m->attention.ops)
        for (int p = first; p < end; p++) {
            const int valid = seen_enc->lengths[x->dec_sentence[p]];
            float *dst = x->attention + (size_t)p * S;
            memcpy(dst, seen + (size_t)p * S, sizeof(float) * valid);
            memset(dst + valid, 0, sizeof(float) * (S - valid));
        }
    return 0;
}

void onmt_batch_materialize(onmt_batch *x, int rows) {
    for (int r = 0; r < rows; r++) {
        float *row = x->log_probs + (size_t)r * x->W;
        if (x->probabilities)
            for (int v = 0; v < x->W; v++) row[v] = logf(row[v]);
        else
            for (int v = 0; v < x->W; v++) row[v] -= x->shift[r];
    }
}

void onmt_batch_reorder(onmt_batch *x, int rows, const int *parent) {
    rs_decoder_gather(x->m, rows, parent, x->capacity, x->cur, x->nxt);
    rs_decoder_state *t = x->cur;
    x->cur = x->nxt;
    x->nxt = t;
}

/* ------------------------------------------------------------------ rules */

void onmt_ban_tokens(const onmt_batch *x, int length, float *row) {
    const rs_onmt_options *o = x->o;
    if (length <= o->min_length) row[x->m->eos_id] = ONMT_BANNED(o->version);
    if (o->ban_unk) row[o->unk_id] = ONMT_BANNED(o->version);
}

double onmt_length_penalty(const rs_onmt_options *o, int length) {
    switch (o->length_penalty) {
    case RS_ONMT_LENGTH_AVG: return pow((double)length, o->alpha);
    case RS_ONMT_LENGTH_WU: return pow((5.0 + length) / 6.0, o->alpha);
    default: return 1.0;
    }
}

float onmt_coverage_penalty(const rs_onmt_options *o, const float *coverage, int width) {
    float penalty = 0.0f;
    if (o->coverage_penalty == RS_ONMT_COVERAGE_WU) {
        for (int j = 0; j < width; j++) penalty += logf(coverage[j] < 1.0f ? coverage[j] : 1.0f);
        penalty = -penalty;
    } else if (o->coverage_penalty == RS_ONMT_COVERAGE_SUMMARY) {
        for (int j = 0; j < width; j++) penalty += coverage[j] > 1.0f ? coverage[j] : 1.0f;
        penalty -= (float)width;
    }
    return (float)o->beta * penalty;
}

/* ------------------------------------------------------------------ hypotheses */

int onmt_hyps_add(onmt_hyps *h, float score, int length, int *tokens, float *attention,
                  int cut) {
    if (h->count == h->capacity) {
        const int capacity = h->capacity ? 2 * h->capacity : 8;
        onmt_hyp *items = realloc(h->items, sizeof(onmt_hyp) * (size_t)capacity);
        if (!items) {
            free(tokens);
            free(attention);
            return 1;
        }
        h->items = items;
        h->capacity = capacity;
    }
    h->items[h->count++] = (onmt_hyp){score, length, tokens, attention, cut};
    return 0;
}

int onmt_hyps_take_best(onmt_hyps *h, int n, int width, rs_onmt_result *result) {
    /* stable insertion sort, best first (Python's sorted(..., reverse=True)) */
    for (int a = 1; a < h->count; a++) {
        onmt_hyp v = h->items[a];
        int j = a;
        while (j > 0 && h->items[j - 1].score < v.score) { h->items[j] = h->items[j - 1]; j--; }
        h->items[j] = v;
    }
    const int count = h->count < n ? h->count : n;
    result->width = width;
    result->result.count = 0;
    result->result.hyps = calloc(count > 0 ? count : 1, sizeof(rs_hypothesis));
    result->cuts = calloc(count > 0 ? count : 1, sizeof(int));
    if (!result->result.hyps || !result->cuts) return 1;
    for (int i = 0; i < count; i++) {
        onmt_hyp *v = &h->items[i];
        /* log_prob: OpenNMT-py's search keeps no penalty-free sum (unused here) */
        result->result.hyps[i] = (rs_hypothesis){.length = v->length, .tokens = v->tokens,
                                                 .score = v->score, .log_prob = NAN,
                                                 .attention = v->attention,
                                                 .attention_rows = v->length};
        result->cuts[i] = v->cut;
        v->tokens = NULL;
        v->attention = NULL;
    }
    result->result.count = count;
    return 0;
}

void onmt_hyps_free(onmt_hyps *h) {
    for (int i = 0; i < h->count; i++) {
        free(h->items[i].tokens);
        free(h->items[i].attention);
    }
    free(h->items);
    memset(h, 0, sizeof(*h));
}
