/* The encoder: the source stage (rs_source.c: embeddings or feature frames), stacked
 * (bi)directional RNN layers with any subsampling and projections between them, and the
 * bridge to the decoder's initial state. (Attention keys are the attention's:
 * rs_attention_prepare.)
 *
 * Sentences come sorted by length, longest first, so that at time step k the sentences
 * still running are a prefix of the batch and one block product serves them all; the
 * input projections of all positions are one product per sentence before the loop. */
#include "rs_encoder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_kernels.h"
#include "rs_norm.h"
#include "rs_platform.h"
#include "rs_pooling.h"
#include "rs_rnn.h"
#include "rs_source.h"
#include "rs_split.h"
#include "rs_workers.h"

#define ALLOC(ptr, count)                                                        \
    do {                                                                         \
        (ptr) = calloc((size_t)(count) > 0 ? (size_t)(count) : 1, sizeof(*(ptr))); \
        if (!(ptr)) goto out_of_memory;                                          \
    } while (0)

static void merge_final(const rs_model *m, const float *fwd, const float *bwd, int B, float *dst) {
    const int H = m->enc_hidden;
    for (int b = 0; b < B; b++) {
        float *d = dst + (size_t)b * m->dec_hidden;
        const float *f = fwd + (size_t)b * H;
        if (!m->enc_bidirectional) {
            memcpy(d, f, sizeof(float) * H);
        } else if (m->enc_merge_sum) {
            const float *k = bwd + (size_t)b * H;
            for (int j = 0; j < H; j++) d[j] = f[j] + k[j];
        } else {
            memcpy(d, f, sizeof(float) * H);
            memcpy(d + H, bwd + (size_t)b * H, sizeof(float) * H);
        }
    }
}

/* The input of a dense bridge, per row: the final states [fwd; bwd] of encoder layers
 * first .. first+count-1, in (layer, direction) order. finals is [L_e, 2, B, H_e]. */
static void concat_finals(const rs_model *m, const float *finals, int first, int count, int B,
                          float *dst) {
    const int H = m->enc_hidden, ndir = m->enc_bidirectional ? 2 : 1;
    const size_t width = (size_t)count * ndir * H;
    for (int b = 0; b < B; b++)
        for (int l = 0; l < count; l++)
            for (int d = 0; d < ndir; d++)
                memcpy(dst + b * width + ((size_t)l * ndir + d) * H,
                       finals + (((size_t)(first + l) * 2 + d) * B + b) * H, sizeof(float) * H);
}

static void dense_bridge(const rs_linear *L, const rs_norm *norm, rs_activation act, int B,
                         const float *in, float *dst) {
    rs_linear_forward(L, B, in, L->in, dst, L->out, 0);
    rs_norm_rows(norm, B, dst, L->out, L->out);
    rs_apply_activation(act, dst, B * L->out);
}

/* The recurrent product h W_hh^T + b_hh of one encoder step, in blocks of outputs walked
 * forwards on even steps and backwards on odd ones. The same matrix is read at every step,
 * and one about the size of L2 (1 MB for an LSTM of 256) read in the same order each time
 * loses each block just before it is needed again; walked back and forth, the blocks read
 * last are read first. An output's sum does not depend on the order of the outputs (or on
 * the block it is in: rs_split.h): the same bits. */
#define ZIGZAG_MIN_BYTES (256 * 1024)
#define ZIGZAG_BLOCKS 8

static void recurrent_product(const rs_linear *L, int rows, const float *h, float *hg,
                              int backwards) {
    const int panels = (L->out + 15) / 16;
    if ((size_t)L->out * L->in * sizeof(float) < ZIGZAG_MIN_BYTES || panels < ZIGZAG_BLOCKS) {
        rs_linear_forward(L, rows, h, L->in, hg, L->out, 0);
        return;
    }
    for (int i = 0; i < ZIGZAG_BLOCKS; i++) {
        const int k = backwards ? ZIGZAG_BLOCKS - 1 - i : i;
        const int o0 = panels * k / ZIGZAG_BLOCKS * 16;
        const int o1 = panels * (k + 1) / ZIGZAG_BLOCKS * 16 < L->out
                           ? panels * (k + 1) / ZIGZAG_BLOCKS * 16 : L->out;
        rs_linear view, parts[RS_MAX_QSPLITS + 1];
        rs_linear_rows_view(L, o0, o1, &view, parts);
        rs_linear_forward(&view, rows, h, L->in, hg + o0, L->out, 0);
    }
}

/* One direction's working memory: the input projections of every position, one step's
 * slice of them, the state, and the recurrent product's scratch. */
typedef struct {
    float *xproj, *xstep, *h, *c, *scratch;
} direction_buffers;

/* One layer of the encoder, as its directions see it. */
typedef struct {
    const rs_model *m;
    int layer, B, S, in_w;
    const int *lengths;
    const float *in;
    float *outbuf, *final_h, *final_c;
    direction_buffers buf[2];
    int failed[2];
} layer_job;

/* Direction d of the layer over every sentence: its outputs go to its own half of outbuf
 * (or, merging by sum, are added to the forward direction's: d = 1 runs after d = 0), its
 * final states to final_h/final_c. */
static void run_direction(const layer_job *j, int d, const direction_buffers *w) {
    const rs_model *m = j->m;
    const int l = j->layer, B = j->B, S = j->S, in_w = j->in_w, He = m->enc_hidden;
    const int De = m->enc_width;
    const int *lengths = j->lengths;
    const rs_rnn *rnn = &m->enc[l][d];
    const int GH = rs_rnn_gates(rnn->cell) * He;
    /* separate stacks: direction d reads its own half of the layer below */
    const float *layer_in = j->in + (l > 0 && m->enc_stacking != RS_STACK_LAYERWISE ? d * He : 0);
    const int backward = m->enc_stacking == RS_STACK_ALTERNATING ? (d + l) % 2 : d;
    for (int b = 0; b < B; b++) {
        rs_linear_forward(&rnn->ih, lengths[b], layer_in + (size_t)b * S * in_w, in_w,
                          w->xproj + (size_t)b * S * GH, GH, 0);
        rs_rnn_norm_input(rnn, lengths[b], w->xproj + (size_t)b * S * GH, GH);
    }
    memset(w->h, 0, sizeof(float) * B * He);
    memset(w->c, 0, sizeof(float) * B * He);
    for (int k = 0; k < S; k++) {
        int n = 0;
        while (n < B && lengths[n] > k) n++;
        if (n == 0) break;
        for (int b = 0; b < n; b++) {
            int p = backward ? lengths[b] - 1 - k : k;
            memcpy(w->xstep + (size_t)b * GH, w->xproj + ((size_t)b * S + p) * GH,
                   sizeof(float) * GH);
        }
        if (rs_rnn_separable(rnn)) {
            recurrent_product(&rnn->hh, n, w->h, w->scratch, k & 1);
            rs_rnn_combine(rnn, n, w->xstep, w->scratch, w->h, w->c);
        } else {
            rs_rnn_step(rnn, n, w->xstep, w->h, w->c, w->scratch);
        }
        for (int b = 0; b < n; b++) {
            int p = backward ? lengths[b] - 1 - k : k;
            float *dst = j->outbuf + ((size_t)b * S + p) * De;
            const float *src_h = w->h + (size_t)b * He;
            if (d == 1 && m->enc_merge_sum)
                for (int i = 0; i < He; i++) dst[i] += src_h[i];
            else
                memcpy(dst + (d == 1 ? He : 0), src_h, sizeof(float) * He);
        }
    }
    memcpy(j->final_h + ((size_t)l * 2 + d) * B * He, w->h, sizeof(float) * B * He);
    memcpy(j->final_c + ((size_t)l * 2 + d) * B * He, w->c, sizeof(float) * B * He);
}

static float *zeroed_floats(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* A direction's buffers for B sentences whose longest layer input has xproj_floats / B
 * positions' projections. Non-zero when out of memory (what was allocated stays in w). */
static int alloc_direction_buffers(direction_buffers *w, const rs_model *m, int B,
                                   size_t xproj_floats) {
    const int He = m->enc_hidden, GH = rs_rnn_gates(m->enc[0][0].cell) * He;
    w->xproj = zeroed_floats(xproj_floats);
    w->xstep = zeroed_floats((size_t)B * GH);
    w->h = zeroed_floats((size_t)B * He);
    w->c = zeroed_floats((size_t)B * He);
    w->scratch = zeroed_floats(rs_rnn_scratch_floats(&m->enc[0][0], B));
    return !w->xproj || !w->xstep || !w->h || !w->c || !w->scratch;
}

static void free_direction_buffers(direction_buffers *w) {
    free(w->xproj); free(w->xstep); free(w->h); free(w->c); free(w->scratch);
}

/* A pool part: one whole direction on this core, its products not split further (two
 * cores each reading their own recurrent matrix beat both splitting each step's product
 * and meeting after it). A product that could not run is reported to the caller. */
static void direction_part(void *arg, int part, int parts) {
    layer_job *j = arg;
    (void)parts;
    int threads;
    rs_workers *pool = rs_workers_bound(&threads);
    rs_workers_bind(NULL, 1);
    run_direction(j, part, &j->buf[part]);
    j->failed[part] = rs_kernel_failed();
    rs_workers_bind(pool, threads);
}

/* Fails (returns 1) when a sentence has no positions left after a subsampling step. */
static int check_lengths(const int *lengths, int B, int step, char *err, size_t err_size) {
    if (B > 0 && lengths[B - 1] < 1) { /* sorted: the last is the shortest */
        snprintf(err, err_size, "a source is too short for the encoder's subsampling "
                 "(no positions left after step %d)", step);
        return 1;
    }
    return 0;
}

int rs_encode(const rs_model *m, int B, const rs_input *input, const int *order,
              rs_encoded *out, char *err, size_t err_size) {
    const rs_source_stage *src = &m->source;
    const int He = m->enc_hidden, De = m->enc_width, Dm = m->memory_width;
    const int ndir = m->enc_bidirectional ? 2 : 1, Le = m->enc_layers;
    const int Ld = m->dec_layers, Hd = m->dec_hidden;
    const int GH = Le ? rs_rnn_gates(m->enc[0][0].cell) * He : 0;
    float *in = NULL, *outbuf = NULL, *final_h = NULL, *final_c = NULL, *bridge_in = NULL;
    int *lengths = NULL;
    /* the directions' buffers: the second only when they run side by side */
    direction_buffers dirs[2] = {{NULL}, {NULL}};
    memset(out, 0, sizeof(*out));
    out->batch = B;

    ALLOC(lengths, B);
    for (int b = 0; b < B; b++) lengths[b] = rs_input_length(input, order[b]);
    int S = B ? lengths[0] : 0;
    const size_t stage = rs_encoder_stage_floats(m, S);
    ALLOC(in, (size_t)B * stage);
    ALLOC(outbuf, (size_t)B * stage);
    ALLOC(final_h, (size_t)Le * 2 * B * He);
    ALLOC(final_c, (size_t)Le * 2 * B * He);
    /* the input projections of the longest layer input (the first, after the source's
       own subsampling) */
    const size_t xproj_floats = Le ? (size_t)B * rs_subsampled_length(src, 0, S) * GH : 0;
    if (Le && alloc_direction_buffers(&dirs[0], m, B, xproj_floats)) goto out_of_memory;

    rs_source_embed(m, B, input, order, lengths, S, in);
    int in_w = src->width;
    rs_subsample(src, 0, B, lengths, in, &S, &in_w);
    if (check_lengths(lengths, B, 0, err, err_size)) goto fail;
    /* with two threads, a bidirectional layer runs its directions side by side */
    int threads;
    rs_workers *pool = rs_workers_bound(&threads);
    const int side_by_side = Le && ndir == 2 && !m->enc_merge_sum && pool && threads == 2;
    if (side_by_side && alloc_direction_buffers(&dirs[1], m, B, xproj_floats)) goto out_of_memory;
    layer_job job = {.m = m, .B = B, .lengths = lengths, .final_h = final_h, .final_c = final_c,
                     .buf = {dirs[0], dirs[1]}};
    for (int l = 0; l < Le; l++) {
        job.layer = l;
        job.S = S;
        job.in_w = in_w;
        job.in = in;
        job.outbuf = outbuf;
        if (!side_by_side || rs_workers_run(pool, 2, direction_part, &job) == 0) {
            for (int d = 0; d < ndir; d++) run_direction(&job, d, &job.buf[0]);
        } else if (job.failed[0] || job.failed[1]) {
            rs_kernel_mark_failed();
        }
        if (m->enc_residual && l > 0)
            for (int b = 0; b < B; b++)
                for (size_t i = (size_t)b * S * De; i < ((size_t)b * S + lengths[b]) * De; i++)
                    outbuf[i] += in[i];
        float *t = in; in = outbuf; outbuf = t;
        in_w = De;
        rs_subsample(src, l + 1, B, lengths, in, &S, &in_w);
        if (check_lengths(lengths, B, l + 1, err, err_size)) goto fail;
        const rs_linear *projection = &src->projection[l];
        if (RS_HAS_LINEAR(*projection)) { /* ESPnet's RNNP: tanh between layers only */
            const int P = projection->out;
            for (int b = 0; b < B; b++) {
                float *dst = outbuf + (size_t)b * S * P;
                rs_linear_forward(projection, lengths[b], in + (size_t)b * S * in_w, in_w, dst, P, 0);
                if (l < Le - 1) rs_apply_activation(src->projection_activation, dst, lengths[b] * P);
            }
            t = in; in = outbuf; outbuf = t;
            in_w = P;
        }
    }
    /* `in` now holds the memory [B, S, D_m] */
    out->memory = in;
    out->max_len = S;
    out->lengths = lengths;
    in = NULL;
    lengths = NULL;
    if (m->pooling.rows && rs_pool(m, out)) goto out_of_memory;

    ALLOC(out->init_h, (size_t)Ld * B * Hd);
    ALLOC(out->init_c, (size_t)Ld * B * Hd);
    ALLOC(bridge_in, (size_t)B * (Dm > Le * 2 * He ? Dm : Le * 2 * He));
    if (m->bridge == RS_BRIDGE_MEAN) {
        const int *len = out->lengths;
        for (int b = 0; b < B; b++) {
            float *dst = bridge_in + (size_t)b * Dm;
            for (int p = 0; p < len[b]; p++)
                for (int j = 0; j < Dm; j++) dst[j] += out->memory[((size_t)b * S + p) * Dm + j];
            for (int j = 0; j < Dm; j++) dst[j] /= (float)len[b];
        }
    }
    for (int l = 0; l < Ld; l++) {
        /* the encoder layers this decoder layer starts from (all_layers: dense only) */
        const int all = m->bridge_from == RS_FROM_ALL_LAYERS;
        const int first = all ? 0 : m->bridge_from == RS_FROM_TOP_LAYER ? Le - 1 : l;
        const int count = all ? Le : 1;
        float *ih = out->init_h + (size_t)l * B * Hd, *ic = out->init_c + (size_t)l * B * Hd;
        int cell_bridged = m->lstm_cell == RS_LSTM_CELL_BRIDGED;
        switch (m->bridge) {
        case RS_BRIDGE_ZEROS:
            break;
        case RS_BRIDGE_LAST: {
            const float *fh = final_h + (size_t)first * 2 * B * He, *bh = fh + (size_t)B * He;
            const float *fc = final_c + (size_t)first * 2 * B * He, *bc = fc + (size_t)B * He;
            merge_final(m, fh, bh, B, ih);
            if (cell_bridged) merge_final(m, fc, bc, B, ic);
            break;
        }
        case RS_BRIDGE_DENSE:
            concat_finals(m, final_h, first, count, B, bridge_in);
            dense_bridge(&m->bridge_hidden[l], &m->bridge_hidden_norm[l], m->bridge_activation, B,
                         bridge_in, ih);
            if (cell_bridged && RS_HAS_LINEAR(m->bridge_cell[l])) {
                concat_finals(m, final_c, first, count, B, bridge_in);
                dense_bridge(&m->bridge_cell[l], &m->bridge_cell_norm[l], m->bridge_activation, B,
                             bridge_in, ic);
            }
            break;
        case RS_BRIDGE_MEAN:
        case RS_BRIDGE_POOLING: {
            const float *summary = m->bridge == RS_BRIDGE_MEAN ? bridge_in : out->pooled;
            dense_bridge(&m->bridge_hidden[l], &m->bridge_hidden_norm[l], m->bridge_activation, B,
                         summary, ih);
            if (cell_bridged && RS_HAS_LINEAR(m->bridge_cell[l]))
                dense_bridge(&m->bridge_cell[l], &m->bridge_cell_norm[l], m->bridge_activation, B,
                             summary, ic);
            break;
        }
        }
        if (m->lstm_cell == RS_LSTM_CELL_COPY_HIDDEN)
            memcpy(ic, ih, sizeof(float) * B * Hd);
    }

    free(outbuf); free(final_h); free(final_c); free(bridge_in);
    free_direction_buffers(&dirs[0]);
    free_direction_buffers(&dirs[1]);
    return 0;

out_of_memory:
    snprintf(err, err_size, "out of memory while encoding a batch of %d sentences of up to %d positions", B, S);
fail:
    free(in); free(outbuf); free(final_h); free(final_c); free(bridge_in); free(lengths);
    free_direction_buffers(&dirs[0]);
    free_direction_buffers(&dirs[1]);
    rs_encoded_free(out);
    return 1;
}

void rs_encoded_free(rs_encoded *e) {
    if (e->keys != e->memory) free(e->keys);
    free(e->aux);
    if (e->values != e->memory) free(e->values);
    rs_aligned_free(e->value_panels);
    free(e->chunk_keys);
    free(e->pooled);
    free(e->pool_weights);
    free(e->memory);
    free(e->lengths);
    free(e->init_h);
    free(e->init_c);
    memset(e, 0, sizeof(*e));
}
