/* RNN cells over a block of rows. */
#ifndef RS_RNN_H
#define RS_RNN_H

#include <stddef.h>

#include "rs_model.h"

int rs_rnn_gates(rs_cell_kind cell);

/* One step for `rows` rows: xg [rows, G*H] holds W_ih x + b_ih (normalised by
 * rs_rnn_norm_input); h (and c for LSTM) [rows, H] are updated in place, then the cell's
 * deep transition cells run. scratch holds rs_rnn_scratch_floats(rnn, rows). */
void rs_rnn_step(const rs_rnn *rnn, int rows, const float *xg, float *h, float *c,
                 float *scratch);
size_t rs_rnn_scratch_floats(const rs_rnn *rnn, int rows);

/* rs_rnn_step in two halves, for callers that compute the recurrent product h W_hh^T +
 * b_hh themselves (in another order of outputs, say): whether the cell's step splits so
 * (all but the GRU that resets before its product), and the rest of the step given that
 * product hg [rows, G*H] (used as scratch). */
int rs_rnn_separable(const rs_rnn *rnn);
void rs_rnn_combine(const rs_rnn *rnn, int rows, const float *xg, float *hg, float *h, float *c);

/* The cell's layer normalisation of its input part (a GRU's norm_ih), in place on `rows`
 * rows of xg (row r at xg + r * stride) after the caller's W_ih x + b_ih; no-op without. */
void rs_rnn_norm_input(const rs_rnn *rnn, int rows, float *xg, int stride);

#endif
