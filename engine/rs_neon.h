/* What the AArch64 NEON kernels share (included on AArch64 only): the intrinsics, and
 * forced inlining for the small helpers and tiles that must stay in registers. */
#ifndef RS_NEON_H
#define RS_NEON_H

#include <arm_neon.h>

#if defined(_MSC_VER) && !defined(__clang__)
#define RS_ALWAYS_INLINE __forceinline
#else
#define RS_ALWAYS_INLINE inline __attribute__((always_inline))
#endif

#endif
