/* One time step of an RNN cell (LSTM, GRU both reset orders, tanh/relu RNN) over a block
 * of rows. The input projection W_ih x + b_ih is computed by the caller (for the encoder,
 * for all positions at once); this file adds the recurrent part and the gate equations. */
#include "rs_rnn.h"

#include <math.h>
#include <string.h>

#include "rs_kernels.h"

int rs_rnn_gates(rs_cell_kind cell) {
    return cell == RS_CELL_LSTM ? 4 : cell == RS_CELL_GRU ? 3 : 1;
}

void rs_rnn_step(const rs_rnn *rnn, int rows, const float *xg, float *h, float *c,
                 float *scratch) {
    const int H = rnn->hidden, G = rs_rnn_gates(rnn->cell), GH = G * H;
    float *hg = scratch; /* [rows, G*H] recurrent projection */

    if (rnn->cell == RS_CELL_GRU && !rnn->reset_after) {
        /* r and z from W_hr h, W_hz h; then n needs W_hn (r * h). */
        rs_linear rz = {rnn->hh.w, rnn->hh.b, 2 * H, H};
        rs_linear hn = {rnn->hh.w + (size_t)2 * H * H, rnn->hh.b ? rnn->hh.b + 2 * H : NULL, H, H};
        float *rh = scratch + (size_t)rows * GH; /* [rows, H] */
        rs_linear_forward(&rz, rows, h, H, hg, GH, 0);
        for (int r = 0; r < rows; r++) {
            const float *x = xg + (size_t)r * GH;
            float *g = hg + (size_t)r * GH;
            for (int j = 0; j < H; j++) {
                g[j] = rs_sigmoid(x[j] + g[j]); /* r */
                rh[(size_t)r * H + j] = g[j] * h[(size_t)r * H + j];
            }
        }
        rs_linear_forward(&hn, rows, rh, H, hg + 2 * H, GH, 0);
        for (int r = 0; r < rows; r++) {
            const float *x = xg + (size_t)r * GH;
            const float *g = hg + (size_t)r * GH;
            float *hr = h + (size_t)r * H;
            for (int j = 0; j < H; j++) {
                float z = rs_sigmoid(x[H + j] + g[H + j]);
                float n = tanhf(x[2 * H + j] + g[2 * H + j]);
                hr[j] = (1.0f - z) * n + z * hr[j];
            }
        }
        return;
    }

    rs_linear_forward(&rnn->hh, rows, h, H, hg, GH, 0);
    for (int r = 0; r < rows; r++) {
        const float *x = xg + (size_t)r * GH;
        const float *g = hg + (size_t)r * GH;
        float *hr = h + (size_t)r * H;
        switch (rnn->cell) {
        case RS_CELL_LSTM: {
            float *cr = c + (size_t)r * H;
            for (int j = 0; j < H; j++) {
                float i = rs_sigmoid(x[j] + g[j]);
                float f = rs_sigmoid(x[H + j] + g[H + j]);
                float gg = tanhf(x[2 * H + j] + g[2 * H + j]);
                float o = rs_sigmoid(x[3 * H + j] + g[3 * H + j]);
                cr[j] = f * cr[j] + i * gg;
                hr[j] = o * tanhf(cr[j]);
            }
            break;
        }
        case RS_CELL_GRU:
            for (int j = 0; j < H; j++) {
                float rr = rs_sigmoid(x[j] + g[j]);
                float z = rs_sigmoid(x[H + j] + g[H + j]);
                float n = tanhf(x[2 * H + j] + rr * g[2 * H + j]);
                hr[j] = (1.0f - z) * n + z * hr[j];
            }
            break;
        case RS_CELL_RNN_TANH:
            for (int j = 0; j < H; j++) hr[j] = tanhf(x[j] + g[j]);
            break;
        case RS_CELL_RNN_RELU:
            for (int j = 0; j < H; j++) {
                float v = x[j] + g[j];
                hr[j] = v > 0.0f ? v : 0.0f;
            }
            break;
        }
    }
}

size_t rs_rnn_scratch_floats(const rs_rnn *rnn, int rows) {
    /* recurrent projection, plus r*h for GRU without reset_after */
    return (size_t)rows * (rs_rnn_gates(rnn->cell) + 1) * rnn->hidden;
}
