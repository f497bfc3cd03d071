/* One time step of an RNN cell (LSTM, GRU both reset orders, tanh/relu RNN) over a block
 * of rows. The input projection W_ih x + b_ih is computed by the caller (for the encoder,
 * for all positions at once); this file adds the recurrent part and the gate equations. */
#include "rs_rnn.h"

#include <math.h>
#include <string.h>

#include "rs_kernels.h"
#include "rs_vmath.h"

int rs_rnn_gates(rs_cell_kind cell) {
    return cell == RS_CELL_LSTM ? 4 : cell == RS_CELL_GRU ? 3 : 1;
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
    for (int r = 0; r < rows; r++) {
        const float *x = xg + (size_t)r * GH;
        float *g = hg + (size_t)r * GH, *hr = h + (size_t)r * H;
        switch (rnn->cell) {
        case RS_CELL_LSTM: {
            float *cr = c + (size_t)r * H;
            for (int j = 0; j < GH; j++) g[j] += x[j];
            rs_vsigmoid(g, 2 * H);         /* i, f */
            rs_vtanh(g + 2 * H, H);        /* g */
            rs_vsigmoid(g + 3 * H, H);     /* o */
            for (int j = 0; j < H; j++) {
                cr[j] = g[H + j] * cr[j] + g[j] * g[2 * H + j];
                g[2 * H + j] = cr[j];
            }
            rs_vtanh(g + 2 * H, H);        /* tanh(c') */
            for (int j = 0; j < H; j++) hr[j] = g[3 * H + j] * g[2 * H + j];
            break;
        }
        case RS_CELL_GRU:
            for (int j = 0; j < 2 * H; j++) g[j] += x[j];
            rs_vsigmoid(g, 2 * H);         /* r, z */
            for (int j = 0; j < H; j++) g[2 * H + j] = x[2 * H + j] + g[j] * g[2 * H + j];
            rs_vtanh(g + 2 * H, H);        /* n */
            for (int j = 0; j < H; j++) hr[j] = (1.0f - g[H + j]) * g[2 * H + j] + g[H + j] * hr[j];
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
}

size_t rs_rnn_scratch_floats(const rs_rnn *rnn, int rows) {
    /* recurrent projection, plus r*h for GRU without reset_after */
    return (size_t)rows * (rs_rnn_gates(rnn->cell) + 1) * rnn->hidden;
}
