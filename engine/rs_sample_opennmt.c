/* OpenNMT-py's greedy search and random sampling (onmt/translate/greedy_search.py; 1.x:
 * with -beam_size 1, 2.x and 3.x: with -random_sampling_topk or -random_sampling_topp).
 *
 * Each sentence runs `paths` independent rows (-beam_size of them in 2.x/3.x, one in 1.x).
 * Each step a row's log-probabilities (EOS banned before min_length, UNK under
 * -ban_unk_token) give its next token: the best one when the temperature is 0 or top_k is
 * 1 (score: log-probability / temperature), else one drawn from softmax(log-probabilities
 * / temperature) after top-p filtering (sorted, keep while the cumulated probability is
 * below p, and the one crossing it) and top-k filtering (keep those not below the k-th
 * value), filtered values set to -10000 (score: the tempered log-probability drawn). A row
 * ends at EOS or max_length: 2.x/3.x score it with the sum of its scores divided by the
 * length penalty, 1.x with its last token's score only. -block_ngram_repeat does nothing
 * here (OpenNMT-py never fills the n-grams this search would look up).
 *
 * Draws: each sentence has its own stream (splitmix64 from its seed), so a sentence's
 * samples do not depend on the rest of the batch. The distribution drawn from is
 * OpenNMT-py's; the draws are not torch's. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_onmt_batch.h"
#include "rs_thread_memory.h"
#include "rs_topk_torch.h"

#define FILTERED -10000.0f

static uint64_t next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* uniform in [0, 1) with 53 bits */
static double uniform(uint64_t *state) { return (double)(next_random(state) >> 11) * 0x1.0p-53; }

static int by_value_desc(const void *a, const void *b) {
    const rs_ranked *x = a, *y = b;
    if (x->value != y->value) return x->value < y->value ? 1 : -1;
    return x->index - y->index;
}

/* sample_topp: keep the most probable tokens while their cumulated probability is below p,
 * and the first one that reaches it. */
static void filter_top_p(float *logits, int n, double p, rs_ranked *sorted) {
    for (int v = 0; v < n; v++) sorted[v] = (rs_ranked){logits[v], v};
    qsort(sorted, n, sizeof(rs_ranked), by_value_desc);
    const float top = sorted[0].value;
    float total = 0.0f;
    for (int i = 0; i < n; i++) total += expf(sorted[i].value - top);
    float cumulated = 0.0f;
    int kept = 0;
    for (int i = 0; i < n; i++) {
        cumulated += expf(sorted[i].value - top) / total;
        if (!(cumulated < (float)p)) break;
        kept++;
    }
    if (kept > n - 1) kept = n - 1;
    for (int i = kept + 1; i < n; i++) logits[sorted[i].index] = FILTERED;
}

/* sample_topk: keep every token not below the k-th largest value. */
static void filter_top_k(float *logits, int n, int k, rs_ranked *sorted) {
    for (int v = 0; v < n; v++) sorted[v] = (rs_ranked){logits[v], v};
    qsort(sorted, n, sizeof(rs_ranked), by_value_desc);
    const float kth = sorted[(k < n ? k : n) - 1].value;
    for (int v = 0; v < n; v++)
        if (logits[v] < kth) logits[v] = FILTERED;
}

/* The sentence's next uniform draw: from the caller's list, or from its stream (NaN when
 * the caller's list is exhausted). */
typedef struct {
    uint64_t state;
    const double *given;
    int used, available;
} draws;

static double next_draw(draws *d) {
    if (!d->given) return uniform(&d->state);
    return d->used < d->available ? d->given[d->used++] : NAN;
}

static int draw(const float *logits, int n, double u) {
    float top = logits[0];
    for (int v = 1; v < n; v++) top = logits[v] > top ? logits[v] : top;
    double total = 0.0;
    for (int v = 0; v < n; v++) total += exp((double)logits[v] - top);
    const double target = u * total;
    double cumulated = 0.0;
    int last = 0;
    for (int v = 0; v < n; v++) {
        const double p = exp((double)logits[v] - top);
        if (p <= 0.0) continue;
        cumulated += p;
        last = v;
        if (target < cumulated) return v;
    }
    return last; /* rounding: the last token with any probability */
}

/* sample_with_temperature: the token and its score. */
static int pick(const rs_onmt_options *o, float *row, int n, draws *stream, rs_ranked *sorted,
                rs_ranked *work, float *score) {
    if (o->temperature == 0.0 || o->top_k == 1) {
        rs_ranked best;
        rs_torch_topk(row, n, 1, work, &best);
        *score = o->temperature > 0 ? best.value / (float)o->temperature : best.value;
        return best.index;
    }
    for (int v = 0; v < n; v++) row[v] /= (float)o->temperature;
    if (o->top_p > 0) filter_top_p(row, n, o->top_p, sorted);
    if (o->top_k > 0) filter_top_k(row, n, o->top_k, sorted);
    const double u = next_draw(stream);
    if (isnan(u)) return -1;
    const int token = draw(row, n, u);
    *score = row[token];
    return token;
}

int onmt_greedy_search(onmt_batch *x, rs_onmt_result *results, char *err, size_t err_size) {
    const rs_onmt_options *o = x->o;
    const int B = x->batch, W = x->W, S = x->S;
    int L = 0;
    for (int b = 0; b < B; b++) L = o->max_lengths[b] > L ? o->max_lengths[b] : L;
    const int paths = o->version >= 2 ? o->beam_size : 1, cap = B * paths;
    const int eos = x->m->eos_id;
    const int keep_att = o->return_attention && x->m->attention.ops;
    int status = 1;
    onmt_hyps *hyps = rs_block_calloc(B, sizeof(onmt_hyps));
    int *row_sent = rs_block_alloc(sizeof(int) * cap), *row_origin = rs_block_alloc(sizeof(int) * cap);
    int *tokens = rs_block_alloc(sizeof(int) * cap), *keep = rs_block_alloc(sizeof(int) * cap);
    int *history = rs_block_alloc(sizeof(int) * (size_t)cap * L);
    float *att = keep_att ? rs_block_alloc(sizeof(float) * (size_t)cap * L * S) : NULL;
    float *total = rs_block_calloc(cap, sizeof(float)), *last = rs_block_calloc(cap, sizeof(float));
    draws *streams = rs_block_alloc(sizeof(draws) * B);
    rs_ranked *sorted = rs_block_alloc(sizeof(rs_ranked) * W);
    rs_ranked *work = rs_block_alloc(sizeof(rs_ranked) * W);
    if (!hyps || !row_sent || !row_origin || !tokens || !keep || !history ||
        (keep_att && !att) || !total || !last || !streams || !sorted || !work)
        goto oom;
    for (int b = 0; b < B; b++)
        streams[b] = (draws){o->seeds ? o->seeds[b] : 0,
                             o->draws ? o->draws + (size_t)b * o->draws_stride : NULL, 0,
                             o->draws_stride};
    int rows = cap;
    for (int r = 0; r < rows; r++) {
        row_sent[r] = r / paths;
        row_origin[r] = r;
        tokens[r] = x->m->bos_id;
    }
    onmt_batch_start_rows(x, rows, row_sent);

    for (int t = 0; t < L && rows > 0; t++) {
        if (onmt_batch_step(x, t, 0, rows, tokens, row_sent, err, err_size)) goto fail;
        onmt_batch_materialize(x, rows);
        const float lp = (float)onmt_length_penalty(o, t + 2);
        int n_keep = 0;
        for (int r = 0; r < rows; r++) {
            float *row = x->log_probs + (size_t)r * W, score;
            onmt_ban_tokens(x, t + 1, row);
            const int token = pick(o, row, W, &streams[row_sent[r]], sorted, work, &score);
            if (token < 0) {
                snprintf(err, err_size, "sentence %d needs more than the %d random draws "
                         "given", row_sent[r], o->draws_stride);
                goto fail;
            }
            const int o_r = row_origin[r];
            total[o_r] += score;
            last[o_r] = score;
            history[(size_t)o_r * L + t] = token;
            if (keep_att)
                memcpy(att + ((size_t)o_r * L + t) * S, x->attention + (size_t)r * S,
                       sizeof(float) * S);
            tokens[r] = token;
            if (token != eos && t < o->max_lengths[row_sent[r]] - 1) {
                keep[n_keep++] = r;
                continue;
            }
            /* a finished row; OpenNMT-py keeps the attention columns up to the length it
               reads at the row's index (2.x/1.x: in the batch as it started) */
            const int b = row_sent[r], width = onmt_attention_width(x, b);
            const int cut = o->version >= 3 || o->per_sentence ? x->lengths[b] : x->lengths[r / paths];
            int *out = malloc(sizeof(int) * (t + 1));
            float *a = keep_att ? malloc(sizeof(float) * (size_t)(t + 1) * width) : NULL;
            if (!out || (keep_att && !a)) {
                free(out);
                free(a);
                goto oom;
            }
            memcpy(out, history + (size_t)o_r * L, sizeof(int) * (t + 1));
            for (int u = 0; keep_att && u <= t; u++)
                memcpy(a + (size_t)u * width, att + ((size_t)o_r * L + u) * S, sizeof(float) * width);
            const float final = o->version >= 2 ? total[o_r] / lp : last[o_r];
            if (onmt_hyps_add(&hyps[b], final, t + 1, out, a, cut)) goto oom;
        }
        for (int i = 0; i < n_keep; i++) {
            const int r = keep[i];
            row_sent[i] = row_sent[r];
            row_origin[i] = row_origin[r];
            tokens[i] = tokens[r];
        }
        rows = n_keep;
        onmt_batch_reorder(x, rows, keep);
    }
    for (int b = 0; b < B; b++)
        if (onmt_hyps_take_best(&hyps[b], o->n_best, onmt_attention_width(x, b), &results[b]))
            goto oom;
    status = 0;
    goto done;
oom:
    snprintf(err, err_size, "out of memory while sampling a batch of %d sentences", B);
fail:
    status = 1;
done:
    for (int b = 0; hyps && b < B; b++) onmt_hyps_free(&hyps[b]);
    void *buffers[] = {hyps, row_sent, row_origin, tokens, keep, history, att, total, last,
                       streams, sorted, work};
    for (size_t k = 0; k < sizeof(buffers) / sizeof(buffers[0]); k++) rs_block_free(buffers[k]);
    return status;
}
