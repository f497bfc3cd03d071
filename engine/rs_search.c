/* Beam search (K = 1 is greedy) over a row block of all live hypotheses of all sentences,
 * exactly as docs/model-format.md, "Decoding", describes. Finished sentences leave the
 * block; hypotheses are rebuilt from back-pointers at the end. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_attention.h"
#include "rs_decoder.h"
#include "rs_encoder.h"
#include "rs_kernels.h"
#include "rs_model.h"
#include "rs_platform.h"
#include "rs_thread_memory.h"
#include "rs_workers.h"
#include "rs_vmap.h"

typedef struct {
    int step, parent, token; /* token -1: ended by EOS */
    float score, total;
} finished_hyp;

typedef struct {
    float total;
    int hyp, token; /* token `token` after hypothesis `hyp` */
} candidate;

/* Per-sentence search state. History index (step t, slot k): the hypothesis in slot k
 * after step t came from slot par[t][k] of the previous step and chose tok[t][k];
 * att[t][k] is the attention computed at step t by the hypothesis in slot k before it. */
typedef struct {
    int length;     /* source length */
    int last_step;  /* the last step this sentence may take */
    int width;      /* shrinking beam: K minus the hypotheses finished so far */
    int live, done;
    int capacity;   /* history steps allocated */
    int *tok, *par;
    float *att;     /* NULL unless attention is kept */
    int n_finished;
    finished_hyp *finished;
    candidate *top;
    const int *prefix; int prefix_len; /* forced first tokens (target_prefix) */
} sentence_search;

static int grow_history(sentence_search *s, int K, int keep_attention) {
    int cap = s->capacity ? 2 * s->capacity : 32;
    size_t slots, floats;
    if (rs_size_mul((size_t)cap, (size_t)K, &slots) || slots > RS_MAX_BLOCK_ELEMENTS ||
        rs_size_mul(slots, (size_t)s->length, &floats))
        return 1;
    int *tok = realloc(s->tok, sizeof(int) * slots);
    if (tok) s->tok = tok;
    int *par = realloc(s->par, sizeof(int) * slots);
    if (par) s->par = par;
    if (!tok || !par) return 1;
    if (keep_attention) {
        if (floats > (size_t)-1 / sizeof(float)) return 1;
        float *att = realloc(s->att, sizeof(float) * floats);
        if (!att) return 1;
        s->att = att;
    }
    s->capacity = cap;
    return 0;
}

/* Insert into the sorted list of the best `limit` candidates; among equal totals the
 * earlier (smaller hyp, then token) stays ahead, because candidates arrive in that order. */
static void offer(candidate *top, int *count, int limit, float total, int hyp, int token) {
    if (*count == limit && !(total > top[limit - 1].total)) return;
    int i = *count < limit ? (*count)++ : limit - 1;
    while (i > 0 && total > top[i - 1].total) {
        top[i] = top[i - 1];
        i--;
    }
    top[i].total = total;
    top[i].hyp = hyp;
    top[i].token = token;
}

/* The top-k scan looks at the vocabulary in chunks: most chunks' maximum (rs_vmax,
 * vectorised) cannot beat the current k-th best. */
#define SCAN_CHUNK 64

static float coverage_penalty(const sentence_search *s, int K, int step, int slot, float beta) {
    const int S = s->length;
    float pen = 0.0f;
    for (int j = 0; j < S; j++) {
        float sum = 0.0f;
        int k = slot;
        for (int t = step; t >= 0; t--) {
            sum += s->att[((size_t)t * K + k) * S + j];
            if (t > 0) k = s->par[(size_t)(t - 1) * K + k];
        }
        pen += logf(sum < 1.0f ? sum : 1.0f);
    }
    return beta * pen;
}

static float final_score(const rs_options *o, const sentence_search *s, int K, int step, int slot,
                         float total, int length) {
    float lp = 1.0f;
    if (o->normalize_scores) lp = (float)length;
    else if (o->length_exponent != 0.0f) lp = powf((float)length, o->length_exponent);
    else if (o->length_penalty != 0.0f) lp = powf((5.0f + length) / 6.0f, o->length_penalty);
    if (o->word_penalty != 0.0f) total -= o->word_penalty * (float)length;
    float score = total / lp;
    if (o->coverage_penalty != 0.0f && s->att) score += coverage_penalty(s, K, step, slot, o->coverage_penalty);
    return score;
}

/* Rebuild a finished hypothesis's tokens and attention rows from the back-pointers. */
static int build_hypothesis(const sentence_search *s, int K, const finished_hyp *f, int want_att,
                            int eos_attention, rs_hypothesis *out) {
    const int S = s->length;
    int n = f->token >= 0 ? f->step + 1 : f->step;
    const int rows = eos_attention ? f->step + 1 : n; /* attention rows kept */
    out->length = n;
    out->score = f->score;
    out->log_prob = f->total;
    out->attention_rows = rows;
    out->tokens = malloc(sizeof(int) * (n ? n : 1));
    out->attention = want_att && s->att ? malloc(sizeof(float) * ((size_t)rows * S + 1)) : NULL;
    if (!out->tokens || (want_att && s->att && !out->attention)) return 1;
    if (f->token >= 0) out->tokens[n - 1] = f->token;
    int slot = f->parent;
    for (int t = f->step; t >= 0; t--) {
        if (out->attention && t < rows)
            memcpy(out->attention + (size_t)t * S, s->att + ((size_t)t * K + slot) * S, sizeof(float) * S);
        if (t > 0) {
            out->tokens[t - 1] = s->tok[(size_t)(t - 1) * K + slot];
            slot = s->par[(size_t)(t - 1) * K + slot];
        }
    }
    return 0;
}

/* Every option and size in range; messages say "must be" (the wrapper's ValueError). */
static int validate(const rs_model *m, const rs_options *o, int batch, const rs_input *input,
                    char *err, size_t n) {
    if (o->beam_size < 1 || o->beam_size > RS_MAX_BEAM) {
        snprintf(err, n, "beam_size must be between 1 and %d, got %d", RS_MAX_BEAM, o->beam_size);
        return 1;
    }
    if (o->num_hypotheses < 1 || o->num_hypotheses > o->beam_size) {
        snprintf(err, n, "num_hypotheses must be between 1 and beam_size (%d), got %d", o->beam_size, o->num_hypotheses);
        return 1;
    }
    if (o->on_token && o->beam_size != 1) {
        snprintf(err, n, "beam_size must be 1 with a token callback (beam search knows no token before it ends), got %d", o->beam_size);
        return 1;
    }
    if (o->max_length < 1 || o->max_length > RS_MAX_DECODING_LENGTH) {
        snprintf(err, n, "max_decoding_length must be between 1 and %d, got %d", RS_MAX_DECODING_LENGTH, o->max_length);
        return 1;
    }
    if (o->min_length < 0 || o->min_length > o->max_length) {
        snprintf(err, n, "min_decoding_length must be between 0 and max_decoding_length, got %d", o->min_length);
        return 1;
    }
    if (o->constrain && (!m->attention.ops || o->constraint_backward < 0 || o->constraint_forward < 1)) {
        snprintf(err, n, "the attention constraint must be a window (backward >= 0, forward >= 1) "
                 "on a model with attention");
        return 1;
    }
    if (!isfinite(o->length_penalty) || !isfinite(o->coverage_penalty)) {
        snprintf(err, n, "length_penalty and coverage_penalty must be finite");
        return 1;
    }
    if (batch < 0 || batch > RS_MAX_BATCH) {
        snprintf(err, n, "the batch must be at most %d sentences, got %d", RS_MAX_BATCH, batch);
        return 1;
    }
    int S = 0;
    for (int b = 0; b < batch; b++) {
        const int length = rs_input_length(input, b);
        if (length < 0 || length > RS_MAX_SOURCE_LENGTH) {
            snprintf(err, n, "a source must be at most %d %s, got %d", RS_MAX_SOURCE_LENGTH,
                     input->features ? "frames" : "tokens", length);
            return 1;
        }
        if (length > S) S = length; /* memory positions are at most the source's */
    }
    size_t rows, elements;
    if (rs_size_mul((size_t)batch, (size_t)o->beam_size, &rows) ||
        rs_size_mul(rows, rs_decoder_row_floats(m, S), &elements) || elements > RS_MAX_BLOCK_ELEMENTS) {
        snprintf(err, n, "the batch (%d sentences) x beam_size (%d) must be smaller for this model "
                 "(%zu floats per row): lower the batch size or the beam size",
                 batch, o->beam_size, rs_decoder_row_floats(m, S));
        return 1;
    }
    if (!(o->max_length_factor >= 0.0f) || !isfinite(o->max_length_factor) ||
        !isfinite(o->length_exponent) || !isfinite(o->word_penalty)) {
        snprintf(err, n, "max_length_factor must be >= 0, length_exponent and word_penalty finite");
        return 1;
    }
    return 0;
}

static int translate_serial(const rs_model *m, const rs_options *o, int batch,
                            const rs_input *input, rs_result *results, char *err,
                            size_t err_size) {
    int status = 1;
    const int K = o->beam_size, V = m->tgt_vocab, eos = m->eos_id;
    const int keep_att = m->attention.ops && (o->return_attention || o->coverage_penalty != 0.0f);
    int *order = NULL;
    int *row_token = NULL, *row_sent = NULL, *next_token = NULL, *next_sent = NULL, *parent = NULL;
    float *row_score = NULL, *next_score = NULL, *logits = NULL, *probs = NULL, *exp_tmp = NULL;
    sentence_search *ss = NULL;
    rs_encoded enc;
    rs_decoder_state sa, sb;
    rs_decoder_work work;
    rs_vmap vmap;
    int have_enc = 0, have_dec = 0, have_vmap = 0, nb = 0, S = 0;
    memset(results, 0, sizeof(rs_result) * (size_t)(batch > 0 ? batch : 0));
    memset(&enc, 0, sizeof(enc));
    if (validate(m, o, batch, input, err, err_size)) return 1;

    /* Empty sources translate to one empty hypothesis without running the model. */
    order = rs_block_alloc(sizeof(int) * (batch ? batch : 1));
    if (!order) goto oom;
    for (int b = 0; b < batch; b++) {
        if (rs_input_length(input, b) > 0) order[nb++] = b;
        else {
            results[b].count = 1;
            results[b].hyps = calloc(1, sizeof(rs_hypothesis));
            if (!results[b].hyps) goto oom;
            results[b].hyps[0].tokens = malloc(sizeof(int));
            if (!results[b].hyps[0].tokens) goto oom;
        }
    }
    if (nb == 0) { rs_block_free(order); return 0; }
    switch (rs_encode_sentences(m, nb, order, input, &enc, err, err_size)) {
    case 1: goto oom;
    case 2: goto fail;
    }
    have_enc = 1;
    if (rs_kernel_failed()) goto oom;
    S = enc.max_len; /* memory positions: fewer than source positions when subsampled */

    const int cap = nb * K; /* validate() bounds nb x K x the widest row by INT_MAX */
    if (rs_decoder_alloc(m, cap, S, &sa, &sb, &work)) goto oom;
    have_dec = 1;
    work.constrain = m->attention.ops && o->constrain;
    work.backward = o->constraint_backward;
    work.forward = o->constraint_forward;
    rs_decoder_state *cur = &sa, *nxt = &sb;
    row_token = rs_block_alloc(sizeof(int) * cap); row_sent = rs_block_alloc(sizeof(int) * cap);
    next_token = rs_block_alloc(sizeof(int) * cap); next_sent = rs_block_alloc(sizeof(int) * cap);
    parent = rs_block_alloc(sizeof(int) * cap);
    row_score = rs_block_alloc(sizeof(float) * cap); next_score = rs_block_alloc(sizeof(float) * cap);
    logits = rs_block_alloc(rs_size_mul3(sizeof(float), (size_t)cap, (size_t)V));
    probs = rs_block_calloc(rs_size_mul3(1, (size_t)cap, (size_t)S), sizeof(float));
    exp_tmp = rs_block_alloc(sizeof(float) * V);
    ss = rs_block_calloc(nb, sizeof(sentence_search));
    if (!row_token || !row_sent || !next_token || !next_sent || !parent || !row_score || !next_score ||
        !logits || !probs || !exp_tmp || !ss)
        goto oom;
    if (o->candidates) {
        for (int i = 0; i < nb; i++) row_sent[i] = rs_input_row(input, order[i]);
        const int failed = rs_vmap_init(&vmap, m, o->candidates, nb, row_sent, cap, err, err_size);
        have_vmap = 1;
        if (failed == 1) goto oom;
        if (failed) goto fail;
        work.vmap = &vmap;
    }
    for (int i = 0; i < nb; i++) {
        ss[i].length = enc.lengths[i];   /* memory positions */
        ss[i].last_step = o->max_length - 1;
        if (o->max_length_factor > 0.0f) {
            /* Marian stops once the steps taken reach factor * source length */
            const float limit = ceilf(o->max_length_factor * (float)rs_input_length(input, order[i]));
            if (limit < (float)o->max_length) ss[i].last_step = limit < 1.0f ? 0 : (int)limit - 1;
        }
        ss[i].width = K;
        ss[i].live = 1;
        if (o->prefix) {
            ss[i].prefix = o->prefix + (size_t)order[i] * o->prefix_stride;
            ss[i].prefix_len = o->prefix_lengths[order[i]];
        }
        ss[i].finished = rs_block_alloc(sizeof(finished_hyp) * 2 * K);
        ss[i].top = rs_block_alloc(sizeof(candidate) * 2 * K);
        if (!ss[i].finished || !ss[i].top || grow_history(&ss[i], K, keep_att)) goto oom;
        row_token[i] = m->bos_id;
        row_sent[i] = i;
        row_score[i] = 0.0f;
    }
    int rows = nb;
    rs_decoder_init_rows(m, &enc, rows, row_sent, cap, cur);

    for (int t = 0; t < o->max_length && rows > 0; t++) {
        rs_decoder_step(m, &enc, t, rows, row_token, row_sent, cur, &work, logits, probs);
        if (rs_kernel_failed()) goto oom;
        for (int r = 0; r < rows; r++) {
            float *lp = logits + (size_t)r * V;
            const float top = work.vmap ? rs_vmap_log_probs(work.vmap, r, row_sent[r], lp, exp_tmp)
                                        : rs_log_softmax(lp, V, exp_tmp);
            if (!isfinite(top)) {
                snprintf(err, err_size, "the model produced non-finite scores (NaN or infinity) at "
                         "decoding step %d: its weights overflow float32 arithmetic", t);
                goto fail;
            }
            if (t < o->min_length) lp[eos] = -INFINITY;
            for (int k = 0; k < o->num_suppress; k++) lp[o->suppress[k]] = -INFINITY;
        }
        int next_rows = 0;
        for (int r0 = 0; r0 < rows;) {
            sentence_search *s = &ss[row_sent[r0]];
            const int n = s->live, last = t == s->last_step;
            /* candidates kept: 2K (enough for K live ones besides those ending), or with
               the shrinking beam exactly the beam's current width */
            const int limit = o->shrinking_beam ? s->width : 2 * K;
            if (t >= s->capacity && grow_history(s, K, keep_att)) goto oom;
            if (keep_att)
                for (int k = 0; k < n; k++)
                    memcpy(s->att + ((size_t)t * K + k) * s->length, probs + (size_t)(r0 + k) * S,
                           sizeof(float) * s->length);
            int count = 0;
            if (t < s->prefix_len) {
                /* a prefix token is forced (n == 1 here); as in CTranslate2, the score
                   starts after the prefix */
                s->top[0].total = 0.0f;
                s->top[0].hyp = 0;
                s->top[0].token = s->prefix[t];
                count = 1;
            }
            for (int k = 0; k < n && t >= s->prefix_len; k++) {
                const float base = row_score[r0 + k], *lp = logits + (size_t)(r0 + k) * V;
                for (int v0 = 0; v0 < V; v0 += SCAN_CHUNK) {
                    const int v1 = v0 + SCAN_CHUNK < V ? v0 + SCAN_CHUNK : V;
                    /* skip a chunk none of whose totals can enter the full list
                       (fl(base + x) is monotonic in x, so this skips nothing offer keeps) */
                    if (count == limit && !(base + rs_vmax(lp + v0, v1 - v0) > s->top[limit - 1].total))
                        continue;
                    for (int v = v0; v < v1; v++) {
                        const float total = base + lp[v];
                        if (total == -INFINITY) continue;
                        offer(s->top, &count, limit, total, k, v);
                    }
                }
            }
            /* greedy: report the chosen token (not a forced prefix token, as CTranslate2);
               the caller may end the sentence with it */
            int stop = 0;
            if (o->on_token && count > 0 && t >= s->prefix_len) {
                const int v = s->top[0].token;
                stop = o->on_token(o->on_token_ctx, order[row_sent[r0]], t, v,
                                   logits[(size_t)r0 * V + v], v == eos || last) != 0;
            }
            int live = 0;
            for (int i = 0; i < count; i++) {
                const int k = s->top[i].hyp, v = s->top[i].token;
                if (v == eos || last || (i == 0 && stop)) {
                    if (i < K) {
                        finished_hyp *f = &s->finished[s->n_finished++];
                        f->step = t;
                        f->parent = k;
                        f->token = v == eos ? -1 : v;
                        f->total = s->top[i].total;
                        f->score = final_score(o, s, K, t, k, s->top[i].total, t + 1);
                        if (isnan(f->score) || f->score == INFINITY) {
                            snprintf(err, err_size, "a hypothesis got a non-finite score (%g): the "
                                     "length or coverage penalty overflows float32", f->score);
                            goto fail;
                        }
                        s->width--;
                    }
                } else if (live < K) {
                    s->tok[(size_t)t * K + live] = v;
                    s->par[(size_t)t * K + live] = k;
                    parent[next_rows + live] = r0 + k;
                    next_token[next_rows + live] = v;
                    next_sent[next_rows + live] = row_sent[r0];
                    next_score[next_rows + live] = s->top[i].total;
                    live++;
                }
            }
            s->done = s->n_finished >= K || last || live == 0;
            s->live = s->done ? 0 : live;
            next_rows += s->live;
            r0 += n;
        }
        rs_decoder_gather(m, next_rows, parent, cap, cur, nxt);
        rs_decoder_state *tmp = cur; cur = nxt; nxt = tmp;
        int *ti = row_token; row_token = next_token; next_token = ti;
        ti = row_sent; row_sent = next_sent; next_sent = ti;
        float *tf = row_score; row_score = next_score; next_score = tf;
        rows = next_rows;
    }

    for (int i = 0; i < nb; i++) {
        sentence_search *s = &ss[i];
        /* stable insertion sort, best score first */
        for (int a = 1; a < s->n_finished; a++) {
            finished_hyp f = s->finished[a];
            int j = a;
            while (j > 0 && s->finished[j - 1].score < f.score) { s->finished[j] = s->finished[j - 1]; j--; }
            s->finished[j] = f;
        }
        rs_result *res = &results[order[i]];
        int count = s->n_finished < o->num_hypotheses ? s->n_finished : o->num_hypotheses;
        res->hyps = calloc(count ? count : 1, sizeof(rs_hypothesis));
        if (!res->hyps) goto oom;
        res->count = count;
        res->attention_width = s->length;
        for (int h = 0; h < count; h++)
            if (build_hypothesis(s, K, &s->finished[h], o->return_attention, o->eos_attention,
                                 &res->hyps[h]))
                goto oom;
    }
    status = 0;
    goto cleanup;

oom:
    snprintf(err, err_size, "out of memory while decoding a batch of %d sentences (beam %d)", batch, K);
fail:
    rs_free_results(results, batch);
cleanup:
    if (ss)
        for (int i = 0; i < nb; i++) {
            free(ss[i].tok); free(ss[i].par); free(ss[i].att);
            rs_block_free(ss[i].finished); rs_block_free(ss[i].top);
        }
    if (have_vmap) rs_vmap_free(&vmap);
    if (have_dec) rs_decoder_release(&sa, &sb, &work);
    if (have_enc) rs_encoded_free(&enc);
    void *buffers[] = {ss, order, row_token, row_sent, next_token, next_sent, parent,
                       row_score, next_score, logits, probs, exp_tmp};
    for (size_t k = 0; k < sizeof(buffers) / sizeof(buffers[0]); k++) rs_block_free(buffers[k]);
    return status;
}

/* ------------------------------------------------------------------ threads
 * Sentences are independent, so a batch is split into groups decoded by separate threads
 * (round-robin over lengths, so groups get similar work); every sentence's arithmetic is
 * the same as in a serial call, so results are identical. */
typedef struct {
    const rs_model *m;
    const rs_options *caller; /* the caller's options: its token callback, if any */
    int count;
    rs_input input; /* the call's sources, seen through the group's rows */
    int *index;
    int *prefix, *prefix_lengths; /* the group's target prefixes, or NULL */
    rs_options options; /* threads 1; a token callback goes through report_token */
    rs_result *results;
    int status;
    char err[256];
} group_job;

/* The group's sentence index -> the caller's batch index. */
static int report_token(void *ctx, int sentence, int step, int token, float log_prob, int is_last) {
    const group_job *g = ctx;
    return g->caller->on_token(g->caller->on_token_ctx, g->index[sentence], step, token, log_prob, is_last);
}

static void *run_group(void *arg) {
    group_job *g = arg;
    g->status = translate_serial(g->m, &g->options, g->count, &g->input, g->results, g->err,
                                 sizeof(g->err));
    return NULL;
}

static int translate_input(const rs_model *m, const rs_options *o, int batch,
                           const rs_input *input, rs_result *results, char *err,
                           size_t err_size) {
    int T = o->threads < 1 ? 1 : o->threads;
    if (T > batch && o->pool) {
        /* fewer sentences than threads: split each step's products instead (rs_split.h) */
        rs_workers_bind(o->pool, T);
        const int status = translate_serial(m, o, batch, input, results, err, err_size);
        rs_workers_bind(NULL, 1);
        return status;
    }
    if (T > batch) T = batch;
    if (T <= 1) return translate_serial(m, o, batch, input, results, err, err_size);
    if (validate(m, o, batch, input, err, err_size)) return 1;

    int status = 0;
    int *order = malloc(sizeof(int) * batch);
    group_job *jobs = calloc(T, sizeof(group_job));
    rs_thread *threads = calloc(T, sizeof(rs_thread));
    int *started = calloc(T, sizeof(int));
    if (!order || !jobs || !threads || !started) { status = 1; goto done; }
    for (int b = 0; b < batch; b++) order[b] = b;
    for (int i = 1; i < batch; i++) { /* longest first, stable */
        int v = order[i], j = i;
        while (j > 0 && rs_input_length(input, order[j - 1]) < rs_input_length(input, v)) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    rs_options serial = *o;
    serial.threads = 1;
    for (int g = 0; g < T; g++) {
        group_job *job = &jobs[g];
        job->m = m;
        job->count = (batch - g + T - 1) / T;
        job->input = *input;
        job->input.rows = malloc(sizeof(int) * job->count);
        job->index = malloc(sizeof(int) * job->count);
        job->results = calloc(job->count, sizeof(rs_result));
        job->options = serial;
        job->caller = o;
        if (o->on_token) {
            job->options.on_token = report_token;
            job->options.on_token_ctx = job;
        }
        if (o->prefix) {
            job->prefix = malloc(sizeof(int) * (size_t)job->count * (o->prefix_stride > 0 ? o->prefix_stride : 1));
            job->prefix_lengths = malloc(sizeof(int) * job->count);
            job->options.prefix = job->prefix;
            job->options.prefix_lengths = job->prefix_lengths;
            if (!job->prefix || !job->prefix_lengths) { status = 1; goto done; }
        }
        if (!job->input.rows || !job->index || !job->results) { status = 1; goto done; }
        for (int k = 0; k < job->count; k++) {
            int b = order[g + k * T];
            job->index[k] = b;
            ((int *)job->input.rows)[k] = rs_input_row(input, b);
            if (o->prefix) {
                job->prefix_lengths[k] = o->prefix_lengths[b];
                memcpy(job->prefix + (size_t)k * o->prefix_stride, o->prefix + (size_t)b * o->prefix_stride,
                       sizeof(int) * o->prefix_lengths[b]);
            }
        }
    }
    for (int g = 1; g < T; g++)
        started[g] = rs_thread_start(&threads[g], run_group, &jobs[g]) == 0;
    run_group(&jobs[0]);
    for (int g = 1; g < T; g++) {
        if (started[g]) rs_thread_join(&threads[g]);
        else run_group(&jobs[g]); /* could not start a thread: do its share here */
    }
    for (int g = 0; g < T; g++)
        if (jobs[g].status && !status) {
            status = 2;
            snprintf(err, err_size, "%s", jobs[g].err);
        }
    if (!status)
        for (int g = 0; g < T; g++)
            for (int k = 0; k < jobs[g].count; k++) {
                results[jobs[g].index[k]] = jobs[g].results[k];
                jobs[g].results[k].count = 0;
                jobs[g].results[k].hyps = NULL;
            }
done:
    if (status == 1) snprintf(err, err_size, "out of memory while splitting a batch over %d threads", T);
    if (jobs)
        for (int g = 0; g < T; g++) {
            if (jobs[g].results) rs_free_results(jobs[g].results, jobs[g].count);
            free((int *)jobs[g].input.rows); free(jobs[g].index); free(jobs[g].results);
            free(jobs[g].prefix); free(jobs[g].prefix_lengths);
        }
    free(order); free(jobs); free(threads); free(started);
    if (status) memset(results, 0, sizeof(rs_result) * batch);
    return status;
}

int rs_translate(const rs_model *m, const rs_options *o, int batch, const int *ids, int stride,
                 const int *lengths, rs_result *results, char *err, size_t err_size) {
    const rs_input input = {.ids = ids, .stride = stride, .lengths = lengths};
    return translate_input(m, o, batch, &input, results, err, err_size);
}

int rs_translate_features(const rs_model *m, const rs_options *o, int batch,
                          const float *features, int stride, const int *lengths,
                          rs_result *results, char *err, size_t err_size) {
    const rs_input input = {.features = features, .stride = stride, .lengths = lengths};
    return translate_input(m, o, batch, &input, results, err, err_size);
}

void rs_free_results(rs_result *results, int batch) {
    for (int b = 0; b < batch; b++) {
        for (int h = 0; h < results[b].count; h++) {
            free(results[b].hyps[h].tokens);
            free(results[b].hyps[h].attention);
        }
        free(results[b].hyps);
        results[b].hyps = NULL;
        results[b].count = 0;
    }
}
