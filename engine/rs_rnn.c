/* One time step of an RNN cell (LSTM, GRU both reset orders, tanh/relu RNN) over a block
 * of rows. The input projection W_ih x + b_ih is computed by the caller (for the encoder,
 * for all positions at once); this file adds the recurrent part and the gate equations,
 * and for GRUs the layer normalisation and deep transition of Marian and Nematus. */
#include "rs_rnn.h"

#include <math.h>
#include <string.h>

#include "rs_kernels.h"
#include "rs_norm.h"
#include "rs_vmath.h"

int rs_rnn_gates(rs_cell_kind cell) {
    return cell == RS_CELL_LSTM ? 4 : cell == RS_CELL_GRU ? 3 : 1;
}

/* A GRU (reset after the recurrent product) from its input part x and recurrent part g,
 * both [r, z, n] pre-activations; h is updated in place, g is overwritten. */
static inline void gru_combine(const float *x, float *g, float *h, int H) {
    for (int j = 0; j < 2 * H; j++) g[j] += x[j];
    rs_vsigmoid(g, 2 * H);         /* r, z */
    for (int j = 0; j < H; j++) g[2 * H + j] = x[2 * H + j] + g[j] * g[2 * H + j];
    rs_vtanh(g + 2 * H, H);        /* n */
    for (int j = 0; j < H; j++) h[j] = (1.0f - g[H + j]) * g[2 * H + j] + g[H + j] * h[j];
}

void rs_rnn_norm_input(const rs_rnn *rnn, int rows, float *xg, int stride) {
    rs_norm_rows(&rnn->norm_ih, rows, xg, rs_rnn_gates(rnn->cell) * rnn->hidden, stride);
}

/* The deep transition cells after a GRU step: each reads no input (its constant ih.b) and
 * updates h. */
static void gru_transitions(const rs_rnn *rnn, int rows, float *h, float *hg) {
    for (int k = 0; k < rnn->ntransitions; k++) {
        const rs_rnn *T = &rnn->transitions[k];
        const int H = T->hidden, GH = 3 * H;
        rs_linear_forward(&T->hh, rows, h, H, hg, GH, 0);
        rs_norm_rows(&T->norm_hh, rows, hg, GH, GH);
        for (int r = 0; r < rows; r++)
            gru_combine(T->ih.b, hg + (size_t)r * GH, h + (size_t)r * H, H);
    }
}

void rs_rnn_step(const rs_rnn *rnn, int rows, const float *xg, float *h, float *c,
                 float *scratch) {
    const int H = rnn->hidden, G = rs_rnn_gates(rnn->cell), GH = G * H;
    float *hg = scratch; /* [rows, G*H] recurrent projection */

    if (rnn->cell == RS_CELL_GRU && !rnn->reset_after) {
        /* r and z from W_hr h, W_hz h; then n needs W_hn (r * h). */
        float *rh = scratch + (size_t)rows * GH; /* [rows, H] */
        rs_linear_forward(&rnn->hh_rz, rows, h, H, hg, GH, 0);
        for (int r = 0; r < rows; r++) {
            const float *x = xg + (size_t)r * GH;
            float *g = hg + (size_t)r * GH;
            for (int j = 0; j < 2 * H; j++) g[j] += x[j];
            rs_vsigmoid(g, 2 * H); /* r, z */
            for (int j = 0; j < H; j++) rh[(size_t)r * H + j] = g[j] * h[(size_t)r * H + j];
        }
        rs_linear_forward(&rnn->hh_n, rows, rh, H, hg + 2 * H, GH, 0);
        for (int r = 0; r < rows; r++) {
            const float *x = xg + (size_t)r * GH;
            float *g = hg + (size_t)r * GH, *hr = h + (size_t)r * H;
            for (int j = 0; j < H; j++) g[2 * H + j] += x[2 * H + j];
            rs_vtanh(g + 2 * H, H);
            for (int j = 0; j < H; j++) hr[j] = (1.0f - g[H + j]) * g[2 * H + j] + g[H + j] * hr[j];
        }
        return;
    }

    rs_linear_forward(&rnn->hh, rows, h, H, hg, GH, 0);
    rs_rnn_combine(rnn, rows, xg, hg, h, c);
}

int rs_rnn_separable(const rs_rnn *rnn) {
    return !(rnn->cell == RS_CELL_GRU && !rnn->reset_after);
}

void rs_rnn_combine(const rs_rnn *rnn, int rows, const float *xg, float *hg, float *h, float *c) {
    const int H = rnn->hidden, GH = rs_rnn_gates(rnn->cell) * H;
    rs_norm_rows(&rnn->norm_hh, rows, hg, GH, GH); /* GRU only */
    for (int r = 0; r < rows; r++) {
        const float *x = xg + (size_t)r * GH;
        float *g = hg + (size_t)r * GH, *hr = h + (size_t)r * H;
        switch (rnn->cell) {
        case RS_CELL_LSTM:
            rs_vlstm_cell(x, g, c + (size_t)r * H, hr, H);
            break;
        case RS_CELL_GRU:
            gru_combine(x, g, hr, H);
            break;
        case RS_CELL_RNN_TANH:
            for (int j = 0; j < H; j++) hr[j] = x[j] + g[j];
            rs_vtanh(hr, H);
            break;
        case RS_CELL_RNN_RELU:
            for (int j = 0; j < H; j++) {
                float v = x[j] + g[j];
                hr[j] = v > 0.0f || v != v ? v : 0.0f; /* NaN stays NaN */
            }
            break;
        }
    }
    if (rnn->ntransitions) gru_transitions(rnn, rows, h, hg);
}

size_t rs_rnn_scratch_floats(const rs_rnn *rnn, int rows) {
    /* recurrent projection, plus r*h for GRU without reset_after */
    return (size_t)rows * (rs_rnn_gates(rnn->cell) + 1) * rnn->hidden;
}
