/* The conditional GRU of Nematus and Marian (docs/model-format.md, decoder type
 * "conditional"): layer 0 updates its state with the embedding (GRU 1), attends with that
 * intermediate state, then updates it again with the context (GRU 2) and runs its deep
 * transition cells; layers above are plain (deep transition) GRU layers (rs_decoder.c).
 * Also the readout with per-part layer normalisation of Marian's deep output. */
#include <string.h>

#include "rs_decoder.h"
#include "rs_kernels.h"
#include "rs_norm.h"
#include "rs_rnn.h"

void rs_conditional_first_layer(const rs_model *m, const rs_encoded *enc, int t, int rows,
                                const int *sentence, rs_decoder_state *st, rs_decoder_work *w,
                                float *probs) {
    const rs_rnn *first = &m->dec[0], *second = &m->cond_cell;
    const int GH = 3 * m->dec_hidden;
    float *h = st->h; /* layer 0's rows */
    rs_linear_forward(&first->ih, rows, w->embedding, m->tgt_embedding_size, w->xg, GH, 0);
    rs_rnn_norm_input(first, rows, w->xg, GH);
    rs_rnn_step(first, rows, w->xg, h, st->c, w->rnn_scratch);
    rs_decoder_attend(m, enc, t, rows, sentence, h, st, w, probs);
    if (!RS_HAS_LINEAR(second->ih)) return; /* a layer of one cell: attend after it */
    rs_linear_forward(&second->ih, rows, w->context, m->attention.context_width, w->xg, GH, 0);
    rs_rnn_norm_input(second, rows, w->xg, GH);
    rs_rnn_step(second, rows, w->xg, h, st->c, w->rnn_scratch);
}

void rs_readout_by_parts(const rs_model *m, int rows, const float *in, int width, float *hidden,
                         float *part) {
    const int R = m->readout_layer.out;
    int offset = 0;
    for (int k = 0; k < m->readout_nparts; k++) {
        const rs_linear *L = &m->readout_parts[k];
        float *dst = k == 0 ? hidden : part;
        rs_linear_forward(L, rows, in + offset, width, dst, R, 0);
        rs_norm_rows(&m->readout_norm[k], rows, dst, R, R);
        if (k > 0)
            for (size_t i = 0; i < (size_t)rows * R; i++) hidden[i] += part[i];
        offset += L->in;
    }
    if (m->readout_layer.b)
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < R; o++) hidden[(size_t)r * R + o] += m->readout_layer.b[o];
}
