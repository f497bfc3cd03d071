/* The engine's size limits, in one place, and overflow-checked size arithmetic.
 *
 * Every size the engine allocates by or indexes with is a product of these (batch, beam,
 * vocabulary, source and decoding lengths, layer widths), so bounding the factors and
 * multiplying through rs_size_mul keeps every allocation and index in range. The Python
 * side mirrors the numbers in src/rnnsearch/limits.py (a test checks they agree) so that
 * configs and options are refused with a message before they reach the engine. */
#ifndef RS_LIMITS_H
#define RS_LIMITS_H

#include <limits.h>
#include <stddef.h>

#define RS_MAX_LAYERS 16              /* encoder or decoder layers */
#define RS_MAX_WIDTH 65536            /* embedding, hidden, attention and readout sizes */
#define RS_MAX_VOCAB 16777216         /* tokens in a vocabulary (2^24) */
#define RS_MAX_SOURCE_LENGTH 65536    /* source tokens, BOS/EOS/padding included */
#define RS_MAX_DECODING_LENGTH 65536  /* target tokens */
#define RS_MAX_BEAM 4096              /* beam size */
#define RS_MAX_BATCH 16777216         /* sentences in one call */
/* rows of a decoder block (sentences x beam) times the widest thing a row holds (the
 * vocabulary, gates, a concatenation, the source) must stay an int: the kernels count
 * elements of a block in int */
#define RS_MAX_BLOCK_ELEMENTS INT_MAX

/* *out = a * b; returns non-zero (and leaves *out = SIZE_MAX) if that overflows size_t. */
static inline int rs_size_mul(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > (size_t)-1 / a) {
        *out = (size_t)-1;
        return 1;
    }
    *out = a * b;
    return 0;
}

/* a * b * c checked, or SIZE_MAX on overflow (which no allocation can satisfy). */
static inline size_t rs_size_mul3(size_t a, size_t b, size_t c) {
    size_t ab, abc;
    if (rs_size_mul(a, b, &ab) || rs_size_mul(ab, c, &abc)) return (size_t)-1;
    return abc;
}

#endif
