/* exp, tanh and sigmoid on AArch64 NEON: the formulas of the AVX2 kernels in rs_vmath.c,
 * operation for operation (fused multiply-adds where they fuse, the same clamps with the
 * same NaN behaviour as vminps/vmaxps, 2^n through the exponent bits, IEEE division), so
 * the results are those of AVX2 and AVX-512, bit for bit. */
#include "rs_vmath_impl.h"

#if defined(__aarch64__) || defined(_M_ARM64)
#include <arm_neon.h>
#include <string.h>

#if defined(_MSC_VER) && !defined(__clang__)
#define ALWAYS_INLINE __forceinline
#else
#define ALWAYS_INLINE inline __attribute__((always_inline))
#endif

/* x < b ? x : b and x > b ? x : b: what vminps/vmaxps return, NaN x included (it gives b). */
static ALWAYS_INLINE float32x4_t min_like_x86(float32x4_t x, float32x4_t b) {
    return vbslq_f32(vcltq_f32(x, b), x, b);
}
static ALWAYS_INLINE float32x4_t max_like_x86(float32x4_t x, float32x4_t b) {
    return vbslq_f32(vcgtq_f32(x, b), x, b);
}

static ALWAYS_INLINE float32x4_t exp4(float32x4_t x) {
    const uint32x4_t under = vcltq_f32(x, vdupq_n_f32(EXP_LO));
    x = min_like_x86(x, vdupq_n_f32(EXP_HI));
    x = max_like_x86(x, vdupq_n_f32(EXP_LO));
    const float32x4_t fx = vrndmq_f32(vfmaq_f32(vdupq_n_f32(0.5f), x, vdupq_n_f32(LOG2E)));
    float32x4_t r = vfmsq_f32(x, fx, vdupq_n_f32(C1));
    r = vfmsq_f32(r, fx, vdupq_n_f32(C2));
    const float32x4_t z = vmulq_f32(r, r);
    float32x4_t y = vdupq_n_f32(P0);
    y = vfmaq_f32(vdupq_n_f32(P1), y, r);
    y = vfmaq_f32(vdupq_n_f32(P2), y, r);
    y = vfmaq_f32(vdupq_n_f32(P3), y, r);
    y = vfmaq_f32(vdupq_n_f32(P4), y, r);
    y = vfmaq_f32(vdupq_n_f32(P5), y, r);
    y = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), y, z);
    /* 2^fx through the exponent bits; fx is in [-126, 127] after the clamps */
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(fx), vdupq_n_s32(127)), 23);
    y = vmulq_f32(y, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), under));
}

static ALWAYS_INLINE float32x4_t tanh4(float32x4_t x) {
    const uint32x4_t sign = vdupq_n_u32(0x80000000u);
    const float32x4_t a = vabsq_f32(x);
    const float32x4_t z = vmulq_f32(x, x);
    float32x4_t p = vdupq_n_f32(T0);
    p = vfmaq_f32(vdupq_n_f32(T1), p, z);
    p = vfmaq_f32(vdupq_n_f32(T2), p, z);
    p = vfmaq_f32(vdupq_n_f32(T3), p, z);
    p = vfmaq_f32(vdupq_n_f32(T4), p, z);
    const float32x4_t small = vfmaq_f32(x, vmulq_f32(p, z), x);
    const float32x4_t e = exp4(vaddq_f32(a, a));
    float32x4_t big = vsubq_f32(vdupq_n_f32(1.0f),
                                vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(e, vdupq_n_f32(1.0f))));
    big = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(big),
                                          vandq_u32(vreinterpretq_u32_f32(x), sign)));
    return vbslq_f32(vcltq_f32(a, vdupq_n_f32(0.625f)), small, big);
}

static ALWAYS_INLINE float32x4_t sigmoid4(float32x4_t x) {
    const float32x4_t e = exp4(vsubq_f32(vdupq_n_f32(0.0f), x));
    return vdivq_f32(vdupq_n_f32(1.0f), vaddq_f32(e, vdupq_n_f32(1.0f)));
}

/* Whole vectors, then the tail through a zero-padded vector (lanes are independent). */
#define MAP4(name, f)                                                         \
    void name(float *x, int n) {                                              \
        int i = 0;                                                            \
        for (; i + 4 <= n; i += 4) vst1q_f32(x + i, f(vld1q_f32(x + i)));     \
        if (i < n) {                                                          \
            float tmp[4] = {0};                                               \
            memcpy(tmp, x + i, sizeof(float) * (n - i));                      \
            vst1q_f32(tmp, f(vld1q_f32(tmp)));                                \
            memcpy(x + i, tmp, sizeof(float) * (n - i));                      \
        }                                                                     \
    }
MAP4(rs_vexp_neon, exp4)
MAP4(rs_vtanh_neon, tanh4)
MAP4(rs_vsigmoid_neon, sigmoid4)
#endif
