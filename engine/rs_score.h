/* Forced decoding (score_batch): the log-probabilities of given target sentences. */
#ifndef RS_SCORE_H
#define RS_SCORE_H

#include <stddef.h>

#include "rs_model.h"

/* Score `batch` sentences: source b is src[b*src_stride .. +src_lengths[b]] (non-empty),
 * its target tgt[b*tgt_stride .. +tgt_lengths[b]] (without BOS/EOS; EOS is scored after
 * it). Writes log_probs[b*(tgt_stride+1) + t] for t = 0..tgt_lengths[b] (the last is EOS's)
 * and totals[b], their sum in order. Returns non-zero with a message in err on failure.
 * Thread-safe like rs_translate; every sentence's numbers are independent of the batch. */
int rs_score(const rs_model *m, int batch, const int *src, int src_stride, const int *src_lengths,
             const int *tgt, int tgt_stride, const int *tgt_lengths, float *log_probs,
             float *totals, char *err, size_t err_size);

#endif
