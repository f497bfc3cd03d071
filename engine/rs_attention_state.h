/* What the attention types that carry state (location, coverage, forward, ...) share:
 * the starting weights, the additive energy with a per-position term of the state, and
 * the convolution of earlier weights. */
#ifndef RS_ATTENTION_STATE_H
#define RS_ATTENTION_STATE_H

#include "rs_model.h"

/* w[0..S) = the weights a row starts from: uniform 1/len over [0, len) (ESPnet,
 * SpeechBrain), zeros (Tacotron 2), or all on position 0 (forward attention); 0 past len. */
void rs_weights_start(rs_weights_init init, int len, int S, float *w);

/* e[j] = v . tanh((extra_j + keys_j) + q) for j < len, A-wide: keys_j is row j of `keys`
 * (key_stride floats apart), extra_j row j of `extra` (extra_stride apart; stride 0: the
 * same row for every j; extra NULL: no term). v NULL: all ones. tmp holds A floats. */
void rs_additive_energies(const float *v, const float *q, const float *keys, int key_stride,
                          const float *extra, int extra_stride, int A, int len, float *e,
                          float *tmp);

/* The location features of Chorowski et al. (2015): F[j, c] = sum_i sum_d
 * conv[c, i, d] x_i[j + d - (k-1)/2] for j < len, c < C, over N_in input vectors x_i
 * (x_i = x + i * S, zero outside [0, len)); conv is [C, N_in, k]. */
void rs_location_conv(const float *conv, int C, int inputs, int k, const float *x, int S,
                      int len, float *F);

#endif
