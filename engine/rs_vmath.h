/* Vectorised element-wise functions, in place over n floats, and the maximum of n floats. */
#ifndef RS_VMATH_H
#define RS_VMATH_H

void rs_vexp(float *x, int n);
void rs_vtanh(float *x, int n);
void rs_vsigmoid(float *x, int n);

/* One row of an LSTM cell, gates in blocks of H (i, f, g, o): with a = g + x,
 * c <- sigmoid(a_f) * c + sigmoid(a_i) * tanh(a_g), h <- sigmoid(a_o) * tanh(c), each a
 * multiplication and an addition (never fused); g is clobbered. The same bits as
 * rs_vsigmoid and rs_vtanh over the blocks and those loops, in one pass with AVX2 (also
 * on AVX-512 CPUs). */
void rs_vlstm_cell(const float *x, float *g, float *c, float *h, int H);

/* The largest of x[0..n) (-inf when n is 0, NaN when any is NaN), and, when out is not NULL,
 * the largest of every `chunk` of them (the last may be shorter) into out[0..]. The same
 * value on every instruction set (rs_vmath.c: the lanes and their order). */
float rs_vmax_chunks(const float *x, int n, int chunk, float *out);

#endif
