/* Vectorised element-wise functions, in place over n floats, and the maximum of n floats. */
#ifndef RS_VMATH_H
#define RS_VMATH_H

void rs_vexp(float *x, int n);
void rs_vtanh(float *x, int n);
void rs_vsigmoid(float *x, int n);

/* The largest of x[0..n) (-inf when n is 0, NaN when any is NaN), and, when out is not NULL,
 * the largest of every `chunk` of them (the last may be shorter) into out[0..]. The same
 * value on every instruction set (rs_vmath.c: the lanes and their order). */
float rs_vmax_chunks(const float *x, int n, int chunk, float *out);

#endif
