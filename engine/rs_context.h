/* Attention contexts of a sentence's beam rows: the weighted sums of its values, read from
 * a copy of the values in 16-column panels (built once per batch) so that every panel of a
 * step is one contiguous run of memory.
 *
 * Row-major values read in register blocks of a few columns walk the memory with a stride of
 * a whole row (8 KB for 2048 values): a cache line per row and page, which the prefetchers do
 * not follow (Show, Attend and Tell at batch 16: 4x slower than the panels). */
#ifndef RS_CONTEXT_H
#define RS_CONTEXT_H

#include <stddef.h>

#define RS_CONTEXT_PANEL 16

/* Floats of one sentence's panels: ceil(width / 16) panels of `positions` x 16, or
 * SIZE_MAX when that overflows. */
size_t rs_context_panel_floats(int positions, int width);

/* panels[(p * positions + j) * 16 + c] = values[j * width + p * 16 + c] for j < len; zero
 * for the columns past width and the positions from len on. */
void rs_context_pack(const float *values, int len, int width, int positions, float *panels);

/* context[r * context_stride + i] = sum over j < len of probs[r * probs_stride + j] *
 * values[j, i], for n rows and i < width, from the panels of rs_context_pack (`positions`
 * as given there): each sum is c = c + a * h in j order, a multiplication then an addition
 * (never fused), from c = 0 -- the bits of the plain loop, whatever n is. */
void rs_context_rows(int n, const float *probs, int probs_stride, const float *panels,
                     int positions, int len, int width, float *context, int context_stride);

#endif
