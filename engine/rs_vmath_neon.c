/* exp, tanh and sigmoid on AArch64 NEON: the formulas of the AVX2 kernels in rs_vmath.c,
 * operation for operation (fused multiply-adds where they fuse, the same clamps with the
 * same behaviour as vminps/vmaxps, 2^n through the exponent bits, IEEE division, and a NaN
 * input given back as it came), so the results are those of AVX2 and AVX-512, bit for
 * bit. */
#include "rs_vmath_impl.h"

#if defined(__aarch64__) || defined(_M_ARM64)
#include "rs_neon.h"
#include <math.h>
#include <string.h>

/* x < b ? x : b and x > b ? x : b: what vminps/vmaxps return, NaN x included (it gives b). */
static RS_ALWAYS_INLINE float32x4_t min_like_x86(float32x4_t x, float32x4_t b) {
    return vbslq_f32(vcltq_f32(x, b), x, b);
}
static RS_ALWAYS_INLINE float32x4_t max_like_x86(float32x4_t x, float32x4_t b) {
    return vbslq_f32(vcgtq_f32(x, b), x, b);
}

/* c[0] x^(n-1) + c[1] x^(n-2) + ... + c[n-1] by Horner's rule, one fused multiply-add a
 * step, as the AVX2 kernels evaluate it. */
static RS_ALWAYS_INLINE float32x4_t horner(float32x4_t x, const float *c, int n) {
    float32x4_t y = vdupq_n_f32(c[0]);
    for (int k = 1; k < n; k++) y = vfmaq_f32(vdupq_n_f32(c[k]), y, x);
    return y;
}

static const float EXP_POLY[] = {P0, P1, P2, P3, P4, P5};
static const float TANH_POLY[] = {T0, T1, T2, T3, T4};

static RS_ALWAYS_INLINE float32x4_t exp4(float32x4_t x) {
    const float32x4_t given = x;
    const uint32x4_t nan = vmvnq_u32(vceqq_f32(x, x));
    const uint32x4_t under = vcltq_f32(x, vdupq_n_f32(EXP_LO));
    x = min_like_x86(x, vdupq_n_f32(EXP_HI));
    x = max_like_x86(x, vdupq_n_f32(EXP_LO));
    const float32x4_t fx = vrndmq_f32(vfmaq_f32(vdupq_n_f32(0.5f), x, vdupq_n_f32(LOG2E)));
    float32x4_t r = vfmsq_f32(x, fx, vdupq_n_f32(C1));
    r = vfmsq_f32(r, fx, vdupq_n_f32(C2));
    const float32x4_t z = vmulq_f32(r, r);
    float32x4_t y = horner(r, EXP_POLY, 6);
    y = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), y, z);
    /* 2^fx through the exponent bits; fx is in [-126, 127] after the clamps */
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(fx), vdupq_n_s32(127)), 23);
    y = vmulq_f32(y, vreinterpretq_f32_s32(e));
    y = vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), under));
    return vbslq_f32(nan, given, y);   /* NaN stays NaN, as on x86 */
}

static RS_ALWAYS_INLINE float32x4_t tanh4(float32x4_t x) {
    const uint32x4_t sign = vdupq_n_u32(0x80000000u);
    const float32x4_t a = vabsq_f32(x);
    const float32x4_t z = vmulq_f32(x, x);
    const float32x4_t p = horner(z, TANH_POLY, 5);
    const float32x4_t small = vfmaq_f32(x, vmulq_f32(p, z), x);
    const float32x4_t e = exp4(vaddq_f32(a, a));
    float32x4_t big = vsubq_f32(vdupq_n_f32(1.0f),
                                vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(e, vdupq_n_f32(1.0f))));
    big = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(big),
                                          vandq_u32(vreinterpretq_u32_f32(x), sign)));
    const float32x4_t y = vbslq_f32(vcltq_f32(a, vdupq_n_f32(0.625f)), small, big);
    /* an infinite pre-activation is an overflow: NaN, as on x86 (rs_vmath.c) */
    return vbslq_f32(vceqq_f32(a, vdupq_n_f32(INFINITY)), vdupq_n_f32(NAN), y);
}

static RS_ALWAYS_INLINE float32x4_t sigmoid4(float32x4_t x) {
    const float32x4_t e = exp4(vsubq_f32(vdupq_n_f32(0.0f), x));
    const float32x4_t y = vdivq_f32(vdupq_n_f32(1.0f), vaddq_f32(e, vdupq_n_f32(1.0f)));
    return vbslq_f32(vceqq_f32(vabsq_f32(x), vdupq_n_f32(INFINITY)), vdupq_n_f32(NAN), y);
}

/* f over whole vectors, then over the tail in a zero-padded vector (lanes are independent,
 * so the tail gets the bits the same values get inside a vector). */
static RS_ALWAYS_INLINE void map(float *x, int n, float32x4_t (*f)(float32x4_t)) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, f(vld1q_f32(x + i)));
    if (i < n) {
        float tail[4] = {0};
        memcpy(tail, x + i, sizeof(float) * (n - i));
        vst1q_f32(tail, f(vld1q_f32(tail)));
        memcpy(x + i, tail, sizeof(float) * (n - i));
    }
}

void rs_vexp_neon(float *x, int n) { map(x, n, exp4); }
void rs_vtanh_neon(float *x, int n) { map(x, n, tanh4); }
void rs_vsigmoid_neon(float *x, int n) { map(x, n, sigmoid4); }
#endif
