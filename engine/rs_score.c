/* Forced decoding: the log-probability of given target sentences (CTranslate2's
 * score_batch). Every sentence runs through the same encoder and decoder step as the beam
 * search, fed its own target tokens instead of searched ones, so a token's log-probability
 * here is bit for bit the one the search computed for it, and the total (summed in the
 * same order, in float) is the search's total for the same tokens. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_attention.h"
#include "rs_decoder.h"
#include "rs_encoder.h"
#include "rs_kernels.h"
#include "rs_score.h"

int rs_score(const rs_model *m, int batch, const int *src, int src_stride, const int *src_lengths,
             const int *tgt, int tgt_stride, const int *tgt_lengths, float *log_probs,
             float *totals, char *err, size_t err_size) {
    int status = 1, have_enc = 0, have_dec = 0;
    const int V = m->tgt_vocab;
    int *order = NULL;
    int *row_sent = NULL, *row_token = NULL, *next_sent = NULL, *parent = NULL;
    float *logits = NULL, *probs = NULL, *exp_tmp = NULL;
    rs_encoded enc;
    rs_decoder_state sa, sb;
    rs_decoder_work work;
    memset(&enc, 0, sizeof(enc));
    if (batch <= 0) return 0;
    int S = 0;
    for (int b = 0; b < batch; b++) {
        if (src_lengths[b] < 1 || src_lengths[b] > RS_MAX_SOURCE_LENGTH || tgt_lengths[b] < 0 ||
            tgt_lengths[b] > tgt_stride || tgt_lengths[b] >= RS_MAX_DECODING_LENGTH) {
            snprintf(err, err_size, "sentence %d: the source must be 1 to %d tokens and the "
                     "target at most %d", b, RS_MAX_SOURCE_LENGTH, RS_MAX_DECODING_LENGTH - 1);
            return 1;
        }
        if (src_lengths[b] > S) S = src_lengths[b];
    }
    size_t elements;
    if (batch > RS_MAX_BATCH || rs_size_mul((size_t)batch, rs_decoder_row_floats(m, S), &elements) ||
        elements > RS_MAX_BLOCK_ELEMENTS) {
        snprintf(err, err_size, "the batch (%d sentences) must be smaller for this model: "
                 "score fewer sentences at a time", batch);
        return 1;
    }
    order = malloc(sizeof(int) * batch);
    if (!order) goto oom;
    for (int i = 0; i < batch; i++) order[i] = i;
    const rs_input input = {.ids = src, .stride = src_stride, .lengths = src_lengths};
    switch (rs_encode_sentences(m, batch, order, &input, &enc, err, err_size)) {
    case 1: goto oom;
    case 2: goto fail;
    }
    have_enc = 1;
    if (rs_kernel_failed()) goto oom;
    S = enc.max_len;
    if (rs_decoder_alloc(m, batch, S, &sa, &sb, &work)) goto oom;
    have_dec = 1;
    row_sent = malloc(sizeof(int) * batch); row_token = malloc(sizeof(int) * batch);
    next_sent = malloc(sizeof(int) * batch); parent = malloc(sizeof(int) * batch);
    logits = malloc(rs_size_mul3(sizeof(float), (size_t)batch, (size_t)V));
    probs = calloc(rs_size_mul3(1, (size_t)batch, (size_t)S), sizeof(float));
    exp_tmp = malloc(sizeof(float) * V);
    if (!row_sent || !row_token || !next_sent || !parent || !logits || !probs || !exp_tmp) goto oom;
    for (int i = 0; i < batch; i++) {
        row_sent[i] = i;
        totals[order[i]] = 0.0f;
    }
    rs_decoder_state *cur = &sa, *nxt = &sb;
    rs_decoder_init_rows(m, &enc, batch, row_sent, batch, cur);

    /* step t feeds token t-1 (BOS first) and scores token t; the token after a sentence's
       last is EOS, and the sentence then leaves the block */
    int rows = batch;
    for (int t = 0; rows > 0; t++) {
        for (int r = 0; r < rows; r++) {
            const int b = order[row_sent[r]];
            row_token[r] = t == 0 ? m->bos_id : tgt[(size_t)b * tgt_stride + t - 1];
        }
        rs_decoder_step(m, &enc, t, rows, row_token, row_sent, cur, &work, logits, probs);
        if (rs_kernel_failed()) goto oom;
        int next_rows = 0;
        for (int r = 0; r < rows; r++) {
            const int b = order[row_sent[r]];
            float *lp = logits + (size_t)r * V;
            if (!isfinite(rs_log_softmax(lp, V, exp_tmp))) {
                snprintf(err, err_size, "the model produced non-finite scores (NaN or infinity) at "
                         "step %d: its weights overflow float32 arithmetic", t);
                goto fail;
            }
            const int last = t == tgt_lengths[b];
            const float value = lp[last ? m->eos_id : tgt[(size_t)b * tgt_stride + t]];
            log_probs[(size_t)b * (tgt_stride + 1) + t] = value;
            totals[b] += value;
            if (!last) {
                parent[next_rows] = r;
                next_sent[next_rows++] = row_sent[r];
            }
        }
        rs_decoder_gather(m, next_rows, parent, batch, cur, nxt);
        rs_decoder_state *tmp = cur; cur = nxt; nxt = tmp;
        int *ti = row_sent; row_sent = next_sent; next_sent = ti;
        rows = next_rows;
    }
    status = 0;
    goto cleanup;

oom:
    snprintf(err, err_size, "out of memory while scoring a batch of %d sentences", batch);
fail:
cleanup:
    if (have_dec) rs_decoder_release(&sa, &sb, &work);
    if (have_enc) rs_encoded_free(&enc);
    free(order);
    free(row_sent); free(row_token); free(next_sent); free(parent);
    free(logits); free(probs); free(exp_tmp);
    return status;
}
