/* Vectorised element-wise functions, in place over n floats. */
#ifndef RS_VMATH_H
#define RS_VMATH_H

void rs_vexp(float *x, int n);
void rs_vtanh(float *x, int n);
void rs_vsigmoid(float *x, int n);

#endif
