/* One matrix product split by output rows over the pool bound to this thread (rs_workers.h):
 * every output is computed by the same kernel over the same inputs in the same order as
 * without the split, so the results are the same bits. */
#ifndef RS_SPLIT_H
#define RS_SPLIT_H

#include "rs_model.h"

/* The product of rs_linear_forward, computed by `serial` over output ranges on the bound
 * pool when there is one and the product is worth splitting. Returns 1 if it ran (then
 * *failed says whether some part could not run), 0 if the caller must compute it. */
typedef int (*rs_linear_serial_fn)(const rs_linear *L, int rows, const float *x, int xs,
                                   float *y, int ys, int accumulate);
int rs_split_linear(rs_linear_serial_fn serial, const rs_linear *L, int rows, const float *x,
                    int xs, float *y, int ys, int accumulate, int *failed);

/* Outputs [o0, o1) of L (o0 a multiple of 16) as a matrix of its own: y of the view at
 * column c is y of L at column o0 + c. parts: room for L's int8 parts (RS_MAX_QSPLITS + 1). */
void rs_linear_rows_view(const rs_linear *L, int o0, int o1, rs_linear *view, rs_linear *parts);

/* For tests and benchmarks: the fewest multiply-adds a part of a split product must have
 * (set when macs >= 1; returns the previous value), and how many products were split since
 * the process started. */
int rs_split_set_min_macs(int macs);
int rs_split_count(void);

#endif
