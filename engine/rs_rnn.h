/* RNN cells over a block of rows. */
#ifndef RS_RNN_H
#define RS_RNN_H

#include <stddef.h>

#include "rs_model.h"

int rs_rnn_gates(rs_cell_kind cell);

/* One step for `rows` rows: xg [rows, G*H] holds W_ih x + b_ih; h (and c for LSTM)
 * [rows, H] are updated in place. scratch holds rs_rnn_scratch_floats(rnn, rows). */
void rs_rnn_step(const rs_rnn *rnn, int rows, const float *xg, float *h, float *c,
                 float *scratch);
size_t rs_rnn_scratch_floats(const rs_rnn *rnn, int rows);

#endif
