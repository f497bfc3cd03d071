/* OpenNMT-py's beam search (onmt/translate/beam_search.py with decode_strategy.py and
 * penalties.py), rule for rule, and the entry point of its searches.
 *
 * Every unfinished sentence keeps beam_size rows. Each step, every row's log-probabilities
 * (EOS banned before min_length, UNK under -ban_unk_token) are added to the row's score;
 * divided by the length penalty of the length the hypothesis would have (counting the start
 * token, so n + 1 for n tokens); tokens completing a repeated n-gram are blocked; the best
 * beam_size of the sentence's rows x words are kept, their scores multiplied back by the
 * penalty. The coverage penalty of the attention summed so far is subtracted from the
 * kept candidates (or, -stepwise_penalty, from the row scores before the next step). Kept
 * candidates that end in EOS (all of them at max_length) become hypotheses; their rows stay
 * in the beam with a score of -65504 (3.x) or -1e10 (1.x, 2.x). A sentence is done when its
 * best candidate of the step ended (2.x, 1.x: ever ended) and it has n_best hypotheses
 * (2.x: beam_size) -- or, with -ratio r, when the best candidate's score / (r x source
 * length) is no better than the best finished score / length. Its n_best best (stable)
 * come out.
 *
 * Quirks kept because they change outputs: 2.x evaluates the end of every sentence of the
 * batch whenever one sentence of it finished a hypothesis, 3.x only of that sentence; the
 * source length of -ratio and of the attention kept for -replace_unk is read at the
 * sentence's position in the batch from a per-row array (2.x: the batch as it started). */
#include "rs_search_opennmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_onmt_batch.h"
#include "rs_onmt_ngrams.h"
#include "rs_thread_memory.h"
#include "rs_topk_torch.h"

typedef struct {
    int done;
    int capacity;   /* history steps allocated */
    int *tok, *par; /* [step, K]: the token chosen by slot k at step t, and its parent slot */
    float *att;     /* [step, K, S] the attention slot k's parent computed at step t */
    int top_finished;   /* 1.x, 2.x: its best candidate has ended at some step */
    float best2;        /* -ratio: best finished score / length (2.x: a float tensor) */
    double best3;       /* (3.x: a Python float) */
    onmt_hyps hyps;
} beam_sentence;

static int resize(void **items, size_t count, size_t size) {
    void *grown = realloc(*items, count * size);
    if (!grown) return 1;
    *items = grown;
    return 0;
}

/* Room for twice as many steps of the sentence's history. */
static int grow(beam_sentence *s, int K, int S, int keep_attention) {
    const int capacity = s->capacity ? 2 * s->capacity : 32;
    if (resize((void **)&s->tok, (size_t)capacity * K, sizeof(int)) ||
        resize((void **)&s->par, (size_t)capacity * K, sizeof(int)) ||
        (keep_attention && resize((void **)&s->att, (size_t)capacity * K * S, sizeof(float))))
        return 1;
    s->capacity = capacity;
    return 0;
}

/* The tokens of slot k after step t, start token first: out[0..t+1]. */
static void path(const beam_sentence *s, int K, int t, int k, int bos, int *out) {
    out[0] = bos;
    for (int u = t; u >= 0; u--) {
        out[u + 1] = s->tok[(size_t)u * K + k];
        k = s->par[(size_t)u * K + k];
    }
}

/* Offer a row's candidates to the sentence's top-k as OpenNMT-py scores them: (the
 * log-probability, a banned EOS/UNK's replaced, + the row's score) / the length penalty,
 * the tokens blocked by -block_ngram_repeat at ONMT_BLOCKED; index slot * W + word. The
 * values are computed here rather than stored: a run of words none of which can enter
 * (their largest bound) is skipped, which changes nothing. */
static void offer_row(const onmt_batch *x, int r, int slot, float base, float lpf, int length,
                      const int *blocked, int n_blocked, rs_topk_stream *top) {
    const rs_onmt_options *o = x->o;
    const int W = x->W, eos = x->m->eos_id, unk = o->unk_id;
    const int ban_eos = length <= o->min_length, ban_unk = o->ban_unk;
    const float banned = (ONMT_BANNED(o->version) + base) / lpf;
    const float *chunk_max = x->chunk_max + (size_t)r * x->chunks;
    for (int c = 0, v0 = 0; v0 < W; c++, v0 += ONMT_CHUNK) {
        const int v1 = v0 + ONMT_CHUNK < W ? v0 + ONMT_CHUNK : W;
        int special = (ban_eos && eos >= v0 && eos < v1) || (ban_unk && unk >= v0 && unk < v1);
        for (int i = 0; i < n_blocked && !special; i++)
            special = blocked[i] >= v0 && blocked[i] < v1;
        if (!special) {
            const float m = chunk_max[c]; /* the scores grow with the raw value */
            const float bound = x->probabilities ? (logf(m) + base) / lpf
                                                 : ((m - x->shift[r]) + base) / lpf;
            if (rs_topk_stream_ignores(top, bound)) continue;
        }
        for (int v = v0; v < v1; v++) {
            float value = (onmt_log_prob(x, r, v) + base) / lpf;
            if (special) {
                if ((ban_eos && v == eos) || (ban_unk && v == unk)) value = banned;
                for (int i = 0; i < n_blocked; i++)
                    if (blocked[i] == v) value = ONMT_BLOCKED;
            }
            rs_topk_stream_offer(top, value, slot * W + v);
        }
    }
}

/* A finished slot's hypothesis: its tokens (without the start token) and attention rows. */
static int add_hypothesis(const onmt_batch *x, beam_sentence *s, int K, int t, int k,
                          float score, int cut, int width, int *seq) {
    const int n = t + 1, S = x->S;
    path(s, K, t, k, x->m->bos_id, seq);
    int *tokens = malloc(sizeof(int) * n);
    float *attention = NULL;
    if (!tokens) return 1;
    memcpy(tokens, seq + 1, sizeof(int) * n);
    if (x->o->return_attention && s->att) {
        attention = malloc(sizeof(float) * (size_t)n * width);
        if (!attention) {
            free(tokens);
            return 1;
        }
        for (int u = t; u >= 0; u--) {
            memcpy(attention + (size_t)u * width, s->att + ((size_t)u * K + k) * S,
                   sizeof(float) * width);
            k = s->par[(size_t)u * K + k];
        }
    }
    return onmt_hyps_add(&s->hyps, score, n, tokens, attention, cut);
}

/* Rows are decoded at block positions: those whose candidates can win first, then the
 * "cold" ones -- a finished hypothesis kept in the beam, and at the first step every copy
 * of the start but one -- whose every candidate is at most their score (-65504, -1e10,
 * -inf) over the length penalty. A cold row is decoded only when that bound could still
 * enter its sentence's top-k (a starved beam, or a vocabulary too small for torch's partial
 * sort, whose ties depend on every value): then its sentence is chosen again with it. */
typedef struct {
    int *pos;     /* [cap] logical row (sentence i, slot k: i * K + k) -> block position */
    int *cold;    /* [cap] by logical row */
    int *token, *sentence; /* [cap] by position: the previous token, the sentence */
    int hot;      /* positions [0, hot) hold the rows that are not cold */
} row_layout;

/* Place `rows` logical rows: the ones not cold first, in order, then the cold ones. */
static void place_rows(row_layout *l, int rows, const int *token, const int *sentence) {
    int p = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) l->hot = p;
        for (int r = 0; r < rows; r++)
            if (l->cold[r] == pass) {
                l->pos[r] = p;
                l->token[p] = token[r];
                l->sentence[p] = sentence[r];
                p++;
            }
    }
}

int onmt_beam_search(onmt_batch *x, rs_onmt_result *results, char *err, size_t err_size) {
    const rs_onmt_options *o = x->o;
    const int B = x->batch, K = o->beam_size, W = x->W, S = x->S, V3 = o->version >= 3;
    const int eos = x->m->eos_id, cap = B * K;
    const int cov = o->coverage_penalty != RS_ONMT_COVERAGE_NONE;
    const int stepwise = cov && o->stepwise_penalty;
    const int keep_att = o->return_attention && x->m->attention.ops;
    /* cold rows may wait when torch's partial sort chooses (only values above its k-th
       count) and every score is bounded (a stepwise coverage penalty of beta < 0 could
       raise a finished row's score) */
    const int lazy = (long)K * 64 <= (long)K * W && !(stepwise && o->beta < 0);
    int status = 1;
    beam_sentence *ss = rs_block_calloc(B, sizeof(beam_sentence));
    int *live = rs_block_alloc(sizeof(int) * B), *next_live = rs_block_alloc(sizeof(int) * B);
    int *row_sent = rs_block_calloc(cap, sizeof(int)), *tokens = rs_block_alloc(sizeof(int) * cap);
    int *parent = rs_block_alloc(sizeof(int) * cap), *finished = rs_block_alloc(sizeof(int) * cap);
    int *chosen_token = rs_block_alloc(sizeof(int) * cap), *chosen_parent = rs_block_alloc(sizeof(int) * cap);
    float *base = rs_block_alloc(sizeof(float) * cap), *score = rs_block_alloc(sizeof(float) * cap);
    float *step_base = rs_block_alloc(sizeof(float) * cap);
    int *have_base = rs_block_alloc(sizeof(int) * cap);
    float *prev_penalty = rs_block_calloc(cap, sizeof(float));
    float *coverage = rs_block_calloc((size_t)cap * S, sizeof(float));
    float *next_coverage = rs_block_calloc((size_t)cap * S, sizeof(float));
    float *summed = rs_block_alloc(sizeof(float) * S);
    row_layout layout = {rs_block_alloc(sizeof(int) * cap), rs_block_calloc(cap, sizeof(int)),
                         rs_block_alloc(sizeof(int) * cap), rs_block_alloc(sizeof(int) * cap), 0};
    int longest = 0;
    for (int b = 0; b < B; b++) longest = o->max_lengths[b] > longest ? o->max_lengths[b] : longest;
    int *seq = rs_block_alloc(sizeof(int) * (longest + 2));
    int *initial_length = rs_block_alloc(sizeof(int) * B);
    rs_ranked *top = rs_block_alloc(sizeof(rs_ranked) * K);
    rs_ranked *ranking = rs_block_alloc(sizeof(rs_ranked) * (size_t)K * W);
    const int n_gram = o->block_ngram_repeat;
    onmt_ngrams *forbidden = n_gram > 0 ? onmt_ngrams_new(cap, n_gram, o->version == 1,
                                                          o->ignore_ids, o->num_ignore) : NULL;
    int *windows = n_gram > 0 ? rs_block_alloc(sizeof(int) * (size_t)cap * n_gram) : NULL;
    if ((n_gram > 0 && (!forbidden || !windows)) || !ss || !live || !next_live || !row_sent ||
        !tokens || !parent || !finished || !chosen_token || !chosen_parent || !base ||
        !score || !step_base || !have_base || !prev_penalty || !coverage || !next_coverage ||
        !summed || !layout.pos || !layout.cold || !layout.token || !layout.sentence || !seq ||
        !initial_length || !top || !ranking)
        goto oom;

    int n_live = B;
    for (int i = 0; i < B; i++) {
        live[i] = i;
        initial_length[i] = x->lengths[i];
        ss[i].best2 = -1e10f;
        ss[i].best3 = -1e10;
        if (grow(&ss[i], K, S, keep_att)) goto oom;
        for (int k = 0; k < K; k++) {
            const int r = i * K + k;
            row_sent[r] = i;
            tokens[r] = x->m->bos_id;
            base[r] = k == 0 ? 0.0f : -INFINITY;
            layout.cold[r] = lazy && k > 0;
        }
    }
    place_rows(&layout, n_live * K, tokens, row_sent);
    onmt_batch_start_rows(x, n_live * K, layout.sentence);

    for (int t = 0; t < longest && n_live > 0; t++) {
        const int rows = n_live * K, length = t + 1; /* len(alive_seq) before this step */
        if (onmt_batch_step(x, t, 0, layout.hot, layout.token, layout.sentence, err, err_size))
            goto fail;
        int cold_decoded = layout.hot == rows;
        /* (3.x divides only when the penalty is not 1: the same, x / 1 being x) */
        const float lpf = (float)onmt_length_penalty(o, length + 1);
        memset(have_base, 0, sizeof(int) * rows);
        int any_finished = 0;
        for (int i = 0; i < n_live; i++) {
            beam_sentence *s = &ss[live[i]];
            const int b = live[i], width = onmt_attention_width(x, b);
            if (t >= s->capacity && grow(s, K, S, keep_att)) goto oom;
            rs_topk_stream stream;
            for (int attempt = 0;; attempt++) {
                rs_topk_stream_start(&stream, K * W, K, ranking);
                float cold_bound = -INFINITY;
                for (int k = 0; k < K; k++) {
                    const int r = i * K + k, p = layout.pos[r];
                    if (layout.cold[r] && !cold_decoded) {
                        const float bound = (base[r] + (stepwise && t > 0 ? prev_penalty[r] : 0.0f)) / lpf;
                        cold_bound = bound > cold_bound ? bound : cold_bound;
                        continue;
                    }
                    if (!have_base[r]) {
                        step_base[r] = base[r];
                        if (stepwise && t > 0) {
                            const float *a = x->attention + (size_t)p * S, *c = coverage + (size_t)r * S;
                            for (int j = 0; j < width; j++) summed[j] = c[j] + a[j];
                            step_base[r] += prev_penalty[r];
                            step_base[r] -= onmt_coverage_penalty(o, summed, width);
                        }
                        have_base[r] = 1;
                    }
                    const int *blocked = NULL;
                    int n_blocked = 0;
                    if (n_gram > 0 && length >= n_gram) {
                        path(s, K, t - 1, k, x->m->bos_id, seq);
                        n_blocked = onmt_ngrams_blocked(forbidden, r, seq, length, &blocked);
                    }
                    offer_row(x, p, k, step_base[r], lpf, length, blocked, n_blocked, &stream);
                }
                if (cold_decoded || rs_topk_stream_ignores(&stream, cold_bound)) break;
                /* a cold row could enter: decode them all, and choose this sentence again */
                if (onmt_batch_step(x, t, layout.hot, rows - layout.hot, layout.token,
                                    layout.sentence, err, err_size))
                    goto fail;
                cold_decoded = 1;
            }
            rs_topk_stream_finish(&stream, top);
            for (int j = 0; j < K; j++) {
                const int r = i * K + j, k = top[j].index / W, v = top[j].index % W;
                const int from = i * K + k;
                const float *a = x->attention + (size_t)layout.pos[from] * S;
                s->tok[(size_t)t * K + j] = v;
                s->par[(size_t)t * K + j] = k;
                chosen_token[r] = v;
                chosen_parent[r] = from;
                score[r] = top[j].value;
                if (keep_att) memcpy(s->att + ((size_t)t * K + j) * S, a, sizeof(float) * S);
                if (cov) {
                    float *c = next_coverage + (size_t)r * S;
                    for (int q = 0; q < S; q++)
                        c[q] = t == 0 ? a[q] : coverage[(size_t)from * S + q] + a[q];
                    prev_penalty[r] = t == 0 ? 0.0f : onmt_coverage_penalty(o, c, width);
                    if (!o->stepwise_penalty) score[r] -= onmt_coverage_penalty(o, c, width);
                }
                finished[r] = v == eos || t == o->max_lengths[b] - 1;
                any_finished |= finished[r];
            }
            for (int j = 0; j < K; j++) base[i * K + j] = top[j].value * lpf;
        }
        if (cov) {
            float *tmp = coverage; coverage = next_coverage; next_coverage = tmp;
        }
        if (n_gram > 0 && length + 1 >= n_gram) { /* maybe_update_forbidden_tokens */
            for (int i = 0; i < n_live; i++)
                for (int j = 0; j < K; j++) {
                    path(&ss[live[i]], K, t, j, x->m->bos_id, seq);
                    memcpy(windows + (size_t)(i * K + j) * n_gram, seq + length + 1 - n_gram,
                           sizeof(int) * n_gram);
                }
            if (onmt_ngrams_advance(forbidden, rows, chosen_parent, windows)) goto oom;
        }
        /* update_finished: only when some row of the batch ended */
        int n_next = 0;
        for (int i = 0; i < n_live; i++) {
            beam_sentence *s = &ss[live[i]];
            const int b = live[i], r0 = i * K;
            int any = 0, all = 1;
            for (int j = 0; j < K; j++) {
                any |= finished[r0 + j];
                all &= finished[r0 + j];
            }
            if (any_finished) {
                for (int j = 0; j < K; j++)
                    if (finished[r0 + j]) base[r0 + j] = ONMT_FINISHED(o->version);
                if (!V3 && finished[r0]) s->top_finished = 1;
            }
            if (any_finished && (any || !(V3 || o->per_sentence))) {
                /* the source length OpenNMT-py reads at index i of a per-row array */
                const int q = i / K;
                const int read_length = o->per_sentence ? x->lengths[b]
                                        : V3 ? x->lengths[live[q]] : initial_length[q];
                for (int j = 0; j < K; j++) {
                    if (!finished[r0 + j]) continue;
                    if (o->ratio > 0) {
                        if (V3) {
                            const double v = (double)score[r0 + j] / (t + 3);
                            if (v > s->best3) s->best3 = v;
                        } else {
                            const float v = score[r0 + j] / (float)(t + 3);
                            if (s->best2 < v) s->best2 = v;
                        }
                    }
                    if (add_hypothesis(x, s, K, t, j, score[r0 + j], read_length,
                                       onmt_attention_width(x, b), seq))
                        goto oom;
                }
                int finish;
                if (o->ratio > 0) {
                    const float pred_len = (float)read_length * (float)o->ratio;
                    const float top_score = score[r0] / pred_len;
                    finish = (V3 ? top_score <= s->best3 : top_score <= s->best2) || all;
                } else {
                    finish = V3 ? finished[r0] : s->top_finished;
                }
                const int need = o->version == 2 ? K : o->n_best;
                if (finish && s->hyps.count >= need) s->done = 1;
            }
            if (!s->done) next_live[n_next++] = i;
        }
        /* the surviving sentences' rows, each continuing its chosen parent (a row that
           just finished is cold next step) */
        for (int ni = 0; ni < n_next; ni++) {
            const int i = next_live[ni];
            for (int j = 0; j < K; j++) {
                const int from = i * K + j, to = ni * K + j;
                parent[to] = layout.pos[chosen_parent[from]];
                tokens[to] = chosen_token[from];
                base[to] = base[from];
                prev_penalty[to] = prev_penalty[from];
                finished[to] = finished[from];
                if (cov && to != from)
                    memcpy(coverage + (size_t)to * S, coverage + (size_t)from * S, sizeof(float) * S);
                if (n_gram > 0 && o->per_sentence && to != from) /* a batch of its own */
                    onmt_ngrams_move(forbidden, to, from);
            }
        }
        for (int ni = 0; ni < n_next; ni++) {
            const int b = live[next_live[ni]];
            for (int j = 0; j < K; j++) row_sent[ni * K + j] = b;
            next_live[ni] = b;
        }
        memcpy(live, next_live, sizeof(int) * n_next);
        n_live = n_next;
        /* the next block: position p continues the row at position parent_at[p] */
        int *parent_at = chosen_parent; /* free now: reused for the positions' parents */
        for (int r = 0; r < n_live * K; r++) layout.cold[r] = lazy && finished[r];
        place_rows(&layout, n_live * K, tokens, row_sent);
        for (int r = 0; r < n_live * K; r++) parent_at[layout.pos[r]] = parent[r];
        onmt_batch_reorder(x, n_live * K, parent_at);
    }
    for (int b = 0; b < B; b++)
        if (onmt_hyps_take_best(&ss[b].hyps, o->n_best, onmt_attention_width(x, b), &results[b]))
            goto oom;
    status = 0;
    goto done;
oom:
    snprintf(err, err_size, "out of memory while decoding a batch of %d sentences (beam %d)", B, K);
fail:
    status = 1;
done:
    if (ss)
        for (int b = 0; b < B; b++) {
            free(ss[b].tok); free(ss[b].par); free(ss[b].att);
            onmt_hyps_free(&ss[b].hyps);
        }
    void *buffers[] = {ss, live, next_live, row_sent, tokens, parent, finished, chosen_token,
                       chosen_parent, base, score, step_base, have_base, prev_penalty, coverage,
                       next_coverage, summed, layout.pos, layout.cold, layout.token,
                       layout.sentence, seq, initial_length, top, ranking, windows};
    for (size_t k = 0; k < sizeof(buffers) / sizeof(buffers[0]); k++) rs_block_free(buffers[k]);
    onmt_ngrams_free(forbidden);
    return status;
}

/* ------------------------------------------------------------------ entry */

static int validate(const rs_model *m, const rs_onmt_options *o, const rs_copy_inputs *copy,
                    char *err, size_t n) {
    if (o->version < 1 || o->version > 3) { snprintf(err, n, "OpenNMT-py version must be 1, 2 or 3, got %d", o->version); return 1; }
    if (o->beam_size < 1) { snprintf(err, n, "beam_size must be >= 1, got %d", o->beam_size); return 1; }
    if (o->n_best < 1) { snprintf(err, n, "n_best must be >= 1, got %d", o->n_best); return 1; }
    if (o->min_length < 0) { snprintf(err, n, "min_length must be >= 0, got %d", o->min_length); return 1; }
    if (o->unk_id < 0 || o->unk_id >= m->tgt_vocab) { snprintf(err, n, "the unknown-word id must be a target id"); return 1; }
    if (o->coverage_penalty != RS_ONMT_COVERAGE_NONE && !m->attention.ops) {
        snprintf(err, n, "coverage_penalty must be 'none' for a model without attention");
        return 1;
    }
    if (m->copy && !copy) { snprintf(err, n, "the copy generator needs the sentences' dynamic vocabularies"); return 1; }
    if (o->sampling && !o->seeds && !o->draws) { snprintf(err, n, "sampling needs the sentences' seeds or draws"); return 1; }
    return 0;
}

int rs_translate_opennmt(const rs_model *m, const rs_onmt_options *o, int batch,
                         const int *ids, int stride, const int *lengths,
                         const rs_copy_inputs *copy, rs_onmt_result *results,
                         long long *decoded_rows, char *err, size_t err_size) {
    memset(results, 0, sizeof(rs_onmt_result) * (size_t)(batch > 0 ? batch : 0));
    if (decoded_rows) *decoded_rows = 0;
    if (batch <= 0) return 0;
    if (validate(m, o, copy, err, err_size)) return 1;
    for (int b = 0; b < batch; b++) {
        if (lengths[b] < 1) {
            snprintf(err, err_size, "every source of an OpenNMT-py batch must have a token");
            return 1;
        }
        if (o->max_lengths[b] < 1) {
            snprintf(err, err_size, "max_length must be >= 1, got %d", o->max_lengths[b]);
            return 1;
        }
    }
    const int paths = o->sampling ? (o->version >= 2 ? o->beam_size : 1) : o->beam_size;
    onmt_batch x;
    if (onmt_batch_open(&x, m, o, batch, ids, stride, lengths, copy, batch * paths, err, err_size))
        return 1;
    const int status = o->sampling ? onmt_greedy_search(&x, results, err, err_size)
                                   : onmt_beam_search(&x, results, err, err_size);
    if (decoded_rows) *decoded_rows = x.decoded_rows;
    onmt_batch_close(&x);
    if (status) rs_onmt_free_results(results, batch);
    return status;
}

void rs_onmt_free_results(rs_onmt_result *results, int batch) {
    for (int b = 0; b < batch; b++) {
        rs_free_results(&results[b].result, 1);
        free(results[b].cuts);
        results[b].cuts = NULL;
    }
}
