/* Layer normalisation over row blocks (rs_norm in rs_model.h). */
#ifndef RS_NORM_H
#define RS_NORM_H

#include "rs_model.h"

/* Normalise `rows` rows of `width` floats, row r at x + r * stride, in place. No-op when
 * n->gain is NULL. */
void rs_norm_rows(const rs_norm *n, int rows, float *x, int width, int stride);

#endif
