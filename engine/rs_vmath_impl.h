/* Inside the element-wise functions (rs_vmath.c): the constants of the exp and tanh
 * approximations, which every instruction set evaluates with the same formulas, and the
 * kernels that live in files of their own. */
#ifndef RS_VMATH_IMPL_H
#define RS_VMATH_IMPL_H

#define EXP_HI 88.0f /* e^88 < FLT_MAX, so 2^fx never overflows */
#define EXP_LO -87.3365447504f
#define LOG2E 1.44269504088896341f
#define C1 0.693359375f
#define C2 -2.12194440e-4f
#define P0 1.9875691500e-4f
#define P1 1.3981999507e-3f
#define P2 8.3334519073e-3f
#define P3 4.1665795894e-2f
#define P4 1.6666665459e-1f
#define P5 5.0000001201e-1f
/* tanh for |x| < 0.625: x + x^3 Q(x^2) */
#define T0 -5.70498872745e-3f
#define T1 2.06390887954e-2f
#define T2 -5.37397155531e-2f
#define T3 1.33314422036e-1f
#define T4 -3.33332819422e-1f

/* AArch64 NEON (rs_vmath_neon.c): the AVX2 formulas lane for lane, bit-identical to them. */
void rs_vexp_neon(float *x, int n);
void rs_vtanh_neon(float *x, int n);
void rs_vsigmoid_neon(float *x, int n);

#endif
