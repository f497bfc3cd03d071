/* Checks for NaN and infinity over float arrays, written on the bits so that compilers
 * vectorise them (a float comparison reduced into a flag is not vectorised without
 * -ffast-math, which the engine does not use). Used where weights are laid out at load
 * time and where int8 quantizes activations. */
#ifndef RS_FINITE_H
#define RS_FINITE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Whether x is NaN or +-inf: its exponent bits are all ones. */
static inline uint32_t rs_nonfinite_bit(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return (~bits & 0x7f800000u) == 0;
}

/* Non-zero if any of x[0..n) is NaN or infinite. */
static inline uint32_t rs_any_nonfinite(const float *x, size_t n) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) bad |= rs_nonfinite_bit(x[i]);
    return bad;
}

#endif
