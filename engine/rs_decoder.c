/* The decoder step of docs/model-format.md: Bahdanau (attend, then update), Luong (update,
 * then attend, with input feeding and an attentional layer), conditional (layer 0 in
 * rs_decoder_conditional.c) and attention-free decoders. Every layer is one block product
 * over all live rows of all sentences. */
#include "rs_decoder.h"

#include <stdlib.h>
#include <string.h>

#include "rs_attention.h"
#include "rs_kernels.h"
#include "rs_rnn.h"
#include "rs_thread_memory.h"
#include "rs_vmap.h"

static int first_input_width(const rs_model *m) { return m->dec[0].input; }

/* what the decoder reads of the attention: the type's context, or its projection */
static int context_width(const rs_model *m) { return rs_attention_output_width(&m->attention); }

static int concat_width(const rs_model *m) {
    /* the widest concatenation a step builds: luong's [c; s] or bahdanau's readout input */
    return context_width(m) + m->dec_hidden + m->tgt_embedding_size;
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

size_t rs_decoder_row_floats(const rs_model *m, int max_source) {
    size_t w = max_size((size_t)m->tgt_vocab, (size_t)max_source);
    w = max_size(w, (size_t)rs_rnn_gates(m->dec[0].cell) * m->dec_hidden);
    w = max_size(w, (size_t)rs_rnn_gates(m->enc[0][0].cell) * m->enc_hidden);
    w = max_size(w, (size_t)context_width(m) + m->dec_hidden + m->tgt_embedding_size);
    w = max_size(w, (size_t)m->src_embedding_size + m->enc_width);
    w = max_size(w, (size_t)m->readout_layer.out);
    w = max_size(w, (size_t)m->attentional_width);
    const rs_attention *att = &m->attention;
    if (att->ops) {
        w = max_size(w, att->ops->state_floats(att, max_source));
        w = max_size(w, (size_t)att->context_width); /* the type's context before its projection */
        /* a type's scratch per row (its projections: query, position, chunk query) */
        w = max_size(w, rs_attention_work_floats(att, 1, max_source));
    }
    return w;
}

size_t rs_decoder_block_floats(const rs_model *m, int rows, int max_source) {
    const rs_attention *att = &m->attention;
    const size_t state = att->ops ? att->ops->state_floats(att, max_source) : 0;
    const size_t work = att->ops ? rs_attention_work_floats(att, rows, max_source) : 0;
    size_t per_row, block;
    if (rs_size_mul(2, state, &per_row) || per_row > (size_t)-1 - rs_decoder_row_floats(m, max_source))
        return (size_t)-1;
    per_row += rs_decoder_row_floats(m, max_source);
    if (rs_size_mul((size_t)rows, per_row, &block) || block > (size_t)-1 - work) return (size_t)-1;
    return block + work;
}

/* The buffers come from the thread's cache of call buffers (rs_thread_memory.h): a call
 * of the same shape as the last reuses them. */
int rs_decoder_alloc(const rs_model *m, int capacity, int max_source, rs_decoder_state *a,
                     rs_decoder_state *b, rs_decoder_work *w) {
    const size_t cap = (size_t)capacity, Hd = m->dec_hidden, L = m->dec_layers;
    const size_t GH = (size_t)rs_rnn_gates(m->dec[0].cell) * Hd;
    size_t hidden = m->output.in;
    if (m->readout != RS_READOUT_NONE && (size_t)m->readout_layer.out > hidden) hidden = m->readout_layer.out;
    if (RS_HAS_LINEAR(m->attentional) && (size_t)m->attentional.out > hidden) hidden = m->attentional.out;
    const rs_attention *att = &m->attention;
    const size_t att_floats = att->ops ? att->ops->state_floats(att, max_source) : 0;
    const size_t att_work = att->ops ? rs_attention_work_floats(att, capacity, max_source) : 0;
    memset(a, 0, sizeof(*a));
    memset(b, 0, sizeof(*b));
    memset(w, 0, sizeof(*w));
    w->capacity = capacity;
    w->max_source = max_source;
    rs_decoder_state *states[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        states[i]->h = rs_block_calloc(L * cap * Hd, sizeof(float));
        states[i]->c = rs_block_calloc(L * cap * Hd, sizeof(float));
        states[i]->feed = rs_block_calloc(cap * (m->feed_width ? m->feed_width : 1), sizeof(float));
        states[i]->top = rs_block_calloc(cap * Hd, sizeof(float));
        states[i]->att = rs_block_calloc(cap * att_floats + 1, sizeof(float));
        states[i]->att_floats = att_floats;
        states[i]->attended = rs_block_calloc(cap, sizeof(int));
        if (!states[i]->h || !states[i]->c || !states[i]->feed || !states[i]->top || !states[i]->att ||
            !states[i]->attended)
            goto fail;
    }
    w->embedding = rs_block_calloc(cap * m->tgt_embedding_size, sizeof(float));
    w->x0 = rs_block_calloc(cap * first_input_width(m), sizeof(float));
    w->layer_a = rs_block_calloc(cap * Hd, sizeof(float));
    w->layer_b = rs_block_calloc(cap * Hd, sizeof(float));
    w->xg = rs_block_calloc(cap * GH, sizeof(float));
    w->rnn_scratch = rs_block_calloc(rs_rnn_scratch_floats(&m->dec[0], capacity), sizeof(float));
    w->context = rs_block_calloc(cap * context_width(m) + 1, sizeof(float));
    w->type_context = rs_block_calloc(cap * (att->ops ? att->context_width : 0) + 1, sizeof(float));
    w->att_work = rs_block_calloc(att_work + 1, sizeof(float));
    w->concat = rs_block_calloc(cap * concat_width(m), sizeof(float));
    w->hidden = rs_block_calloc(cap * hidden, sizeof(float));
    w->window = rs_block_calloc(cap * 2, sizeof(int));
    w->part = rs_block_calloc(m->readout_nparts ? cap * m->readout_layer.out : 1, sizeof(float));
    if (!w->embedding || !w->x0 || !w->layer_a || !w->layer_b || !w->xg || !w->rnn_scratch ||
        !w->context || !w->att_work || !w->concat || !w->hidden || !w->window || !w->type_context ||
        !w->part)
        goto fail;
    return 0;
fail:
    rs_decoder_release(a, b, w);
    return 1;
}

void rs_decoder_release(rs_decoder_state *a, rs_decoder_state *b, rs_decoder_work *w) {
    rs_decoder_state *states[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        rs_decoder_state *s = states[i];
        void *buffers[] = {s->h, s->c, s->feed, s->top, s->att, s->attended};
        for (size_t k = 0; k < sizeof(buffers) / sizeof(buffers[0]); k++) rs_block_free(buffers[k]);
        memset(s, 0, sizeof(*s));
    }
    void *buffers[] = {w->embedding, w->x0, w->layer_a, w->layer_b, w->xg, w->rnn_scratch,
                       w->context, w->att_work, w->concat, w->hidden, w->window,
                       w->type_context, w->part};
    for (size_t k = 0; k < sizeof(buffers) / sizeof(buffers[0]); k++) rs_block_free(buffers[k]);
    memset(w, 0, sizeof(*w));
}

void rs_decoder_init_rows(const rs_model *m, const rs_encoded *enc, int rows, const int *sentence,
                          int capacity, rs_decoder_state *st) {
    const int Hd = m->dec_hidden, L = m->dec_layers, B = enc->batch;
    for (int r = 0; r < rows; r++) {
        const int s = sentence[r];
        for (int l = 0; l < L; l++) {
            memcpy(st->h + ((size_t)l * capacity + r) * Hd, enc->init_h + ((size_t)l * B + s) * Hd,
                   sizeof(float) * Hd);
            memcpy(st->c + ((size_t)l * capacity + r) * Hd, enc->init_c + ((size_t)l * B + s) * Hd,
                   sizeof(float) * Hd);
        }
        /* o_{-1}: the top layer's initial state */
        memcpy(st->top + (size_t)r * Hd, enc->init_h + ((size_t)(L - 1) * B + s) * Hd, sizeof(float) * Hd);
        if (m->feed_width)
            memset(st->feed + (size_t)r * m->feed_width, 0, sizeof(float) * m->feed_width);
        st->attended[r] = 0;
        if (st->att_floats)
            m->attention.ops->init_row(&m->attention, enc->lengths[s], enc->max_len,
                                       st->att + (size_t)r * st->att_floats);
    }
}

void rs_decoder_gather(const rs_model *m, int rows, const int *parent, int capacity,
                       const rs_decoder_state *from, rs_decoder_state *to) {
    const int Hd = m->dec_hidden, L = m->dec_layers, Da = m->feed_width;
    for (int r = 0; r < rows; r++) {
        const int p = parent[r];
        for (int l = 0; l < L; l++) {
            memcpy(to->h + ((size_t)l * capacity + r) * Hd, from->h + ((size_t)l * capacity + p) * Hd,
                   sizeof(float) * Hd);
            if (m->dec[0].cell == RS_CELL_LSTM)
                memcpy(to->c + ((size_t)l * capacity + r) * Hd, from->c + ((size_t)l * capacity + p) * Hd,
                       sizeof(float) * Hd);
        }
        memcpy(to->top + (size_t)r * Hd, from->top + (size_t)p * Hd, sizeof(float) * Hd);
        if (Da) memcpy(to->feed + (size_t)r * Da, from->feed + (size_t)p * Da, sizeof(float) * Da);
        to->attended[r] = from->attended[p];
        if (from->att_floats)
            memcpy(to->att + (size_t)r * from->att_floats, from->att + (size_t)p * from->att_floats,
                   sizeof(float) * from->att_floats);
    }
}

/* The attention type's step for every row; the query rows are H_d wide. With the
 * attention constraint, each row's weights are limited to a window around its previous
 * argmax (ESPnet's _apply_attention_constraint), and the new argmax is remembered. */
void rs_decoder_attend(const rs_model *m, const rs_encoded *enc, int t, int rows,
                       const int *sentence, const float *query, rs_decoder_state *st,
                       rs_decoder_work *w, float *probs) {
    const int S = enc->max_len;
    if (w->constrain)
        for (int r = 0; r < rows; r++) {
            const int len = enc->lengths[sentence[r]], last = st->attended[r];
            /* no int overflow for any backward, forward >= 0 (0 <= last <= len) */
            w->window[2 * r] = w->backward < last ? last - w->backward : 0;
            w->window[2 * r + 1] = w->forward < len - last ? last + w->forward : len;
        }
    const rs_attention *a = &m->attention;
    const int projected = RS_HAS_LINEAR(a->context_projection);
    const rs_attention_step step = {
        .rows = rows, .step = t, .query = query, .embedding = w->embedding,
        .window = w->constrain ? w->window : NULL, .sentence = sentence, .enc = enc,
        .state = st->att, .probs = probs, .context = projected ? w->type_context : w->context,
        .work = w->att_work,
    };
    rs_attention_run(a, &step, w->context);
    if (w->constrain)
        for (int r = 0; r < rows; r++) { /* the first maximum, as torch.argmax; a row with
                                             no weight at all keeps its previous position */
            const float *p = probs + (size_t)r * S;
            int best = 0;
            for (int j = 1; j < enc->lengths[sentence[r]]; j++)
                if (p[j] > p[best]) best = j;
            if (p[best] > 0.0f) st->attended[r] = best;
        }
}

/* dst row r = [a row r (width wa); b row r (width wb)] */
static void concat_rows(int rows, float *dst, const float *a, int wa, const float *b, int wb) {
    for (int r = 0; r < rows; r++) {
        memcpy(dst + (size_t)r * (wa + wb), a + (size_t)r * wa, sizeof(float) * wa);
        if (wb) memcpy(dst + (size_t)r * (wa + wb) + wa, b + (size_t)r * wb, sizeof(float) * wb);
    }
}

static void add_split(rs_linear *L, int at) {
    if (L->nqsplit < RS_MAX_QSPLITS) L->qsplit[L->nqsplit++] = at;
}

void rs_decoder_mark_input_parts(rs_model *m) {
    /* the layouts concat_rows builds below: layer 0 [embedding; context or feed], the
       attentional layer [c; s], the readout [state; context; embedding] (those present) */
    if (m->dec_layers > 0 && m->dec[0].ih.in > m->tgt_embedding_size)
        add_split(&m->dec[0].ih, m->tgt_embedding_size);
    add_split(&m->attentional, context_width(m));
    const int present[3] = {m->readout_state, m->readout_context, m->readout_embedding};
    const int width[3] = {m->dec_hidden, context_width(m), m->tgt_embedding_size};
    for (int k = 0, at = 0; k < 3; k++)
        if (present[k]) {
            if (at > 0) add_split(&m->readout_layer, at);
            at += width[k];
        }
}

void rs_decoder_step(const rs_model *m, const rs_encoded *enc, int t, int rows,
                     const int *tokens, const int *sentence, rs_decoder_state *st,
                     rs_decoder_work *w, float *logits, float *probs) {
    const int Hd = m->dec_hidden, Et = m->tgt_embedding_size, D = context_width(m);
    const int cap = w->capacity, V = m->tgt_vocab;
    const int GH = rs_rnn_gates(m->dec[0].cell) * Hd;

    if (t == 0 && m->start_zeros)
        memset(w->embedding, 0, sizeof(float) * rows * Et);
    else
        for (int r = 0; r < rows; r++)
            memcpy(w->embedding + (size_t)r * Et, m->tgt_embedding + (size_t)tokens[r] * Et, sizeof(float) * Et);

    /* layer 0 input */
    const float *x = w->embedding;
    int xw = Et;
    if (m->decoder == RS_DECODER_BAHDANAU) {
        /* the previous step's top output, or layer 0's state (ESPnet's decoders) */
        rs_decoder_attend(m, enc, t, rows, sentence, m->query_first_layer ? st->h : st->top, st,
                          w, probs);
        concat_rows(rows, w->x0, w->embedding, Et, w->context, D);
        x = w->x0;
        xw = Et + D;
    } else if (m->decoder == RS_DECODER_LUONG && m->input_feeding) {
        concat_rows(rows, w->x0, w->embedding, Et, st->feed, m->feed_width);
        x = w->x0;
        xw = Et + m->feed_width;
    }

    int first = 0;
    if (m->decoder == RS_DECODER_CONDITIONAL) {
        rs_conditional_first_layer(m, enc, t, rows, sentence, st, w, probs);
        x = st->h; /* layer 0's output is its state */
        xw = Hd;
        first = 1;
    }
    for (int l = first; l < m->dec_layers; l++) {
        const rs_rnn *rnn = &m->dec[l];
        float *h = st->h + (size_t)l * cap * Hd, *c = st->c + (size_t)l * cap * Hd;
        float *out = (l % 2 == 0) ? w->layer_a : w->layer_b;
        rs_linear_forward(&rnn->ih, rows, x, xw, w->xg, GH, 0);
        rs_rnn_norm_input(rnn, rows, w->xg, GH);
        rs_rnn_step(rnn, rows, w->xg, h, c, w->rnn_scratch);
        memcpy(out, h, sizeof(float) * rows * Hd);
        if (m->dec_residual && l > 0)
            for (size_t i = 0; i < (size_t)rows * Hd; i++) out[i] += x[i];
        x = out;
        xw = Hd;
    }
    const float *o = x; /* decoder output o_t, [rows, H_d] */
    memcpy(st->top, o, sizeof(float) * rows * Hd);

    const float *final_in = o;
    int final_w = Hd;
    if (m->decoder == RS_DECODER_LUONG) {
        rs_decoder_attend(m, enc, t, rows, sentence, m->query_first_layer ? st->h : o, st, w,
                          probs);
        concat_rows(rows, w->concat, w->context, D, o, Hd);
        if (m->input_feeding && m->feed_context)
            memcpy(st->feed, w->context, sizeof(float) * rows * D);
        final_in = w->concat;
        final_w = D + Hd;
        if (RS_HAS_LINEAR(m->attentional)) {
            const int Da = m->attentional_width;
            rs_linear_forward(&m->attentional, rows, w->concat, D + Hd, w->hidden, Da, 0);
            rs_apply_activation(m->attentional_activation, w->hidden, rows * Da);
            if (m->input_feeding && !m->feed_context)
                memcpy(st->feed, w->hidden, sizeof(float) * rows * Da);
            final_in = w->hidden;
            final_w = Da;
        }
    } else if (m->decoder == RS_DECODER_BAHDANAU || m->decoder == RS_DECODER_CONDITIONAL) {
        const int Ir = (m->readout_state ? Hd : 0) + (m->readout_context ? D : 0) +
                       (m->readout_embedding ? Et : 0);
        for (int r = 0; r < rows; r++) {
            float *dst = w->concat + (size_t)r * Ir;
            if (m->readout_state) { memcpy(dst, o + (size_t)r * Hd, sizeof(float) * Hd); dst += Hd; }
            if (m->readout_context) { memcpy(dst, w->context + (size_t)r * D, sizeof(float) * D); dst += D; }
            if (m->readout_embedding) memcpy(dst, w->embedding + (size_t)r * Et, sizeof(float) * Et);
        }
        final_in = w->concat;
        final_w = Ir;
        if (m->readout != RS_READOUT_NONE) {
            const int R = m->readout_layer.out;
            if (m->readout_nparts)
                rs_readout_by_parts(m, rows, w->concat, Ir, w->hidden, w->part);
            else
                rs_linear_forward(&m->readout_layer, rows, w->concat, Ir, w->hidden, R, 0);
            final_w = R;
            if (m->readout == RS_READOUT_TANH) {
                rs_apply_activation(RS_ACT_TANH, w->hidden, rows * R);
            } else if (m->readout == RS_READOUT_MAXOUT) {
                /* max over adjacent pairs, compacted in place to [rows, R/2] */
                for (int r = 0; r < rows; r++)
                    for (int k = 0; k < R / 2; k++) {
                        const float a = w->hidden[(size_t)r * R + 2 * k], b = w->hidden[(size_t)r * R + 2 * k + 1];
                        w->hidden[(size_t)r * (R / 2) + k] = a > b || a != a ? a : b;
                    }
                final_w = R / 2;
            }
            final_in = w->hidden;
        }
    }
    w->output_input = final_in;
    if (w->vmap) rs_vmap_output(m, w->vmap, rows, final_in, final_w); /* its own logits */
    else rs_linear_forward(&m->output, rows, final_in, final_w, logits, V, 0);
}
