/* torch.topk(values, k) on CPU, equal values included: which of several equal candidates it
 * returns, and in which order, follows from the C++ library algorithms PyTorch runs
 * (aten/src/ATen/native/TopKImpl.h: std::partial_sort when k * 64 <= n, else
 * std::nth_element and std::sort of the first k - 1, with libstdc++'s implementations).
 * OpenNMT-py's searches choose with torch.topk, so their ties resolve this way. */
#ifndef RS_TOPK_TORCH_H
#define RS_TOPK_TORCH_H

typedef struct {
    float value;
    int index;
} rs_ranked;

/* The k largest of values[0..n) in torch.topk's order (1 <= k <= n). work holds n entries
 * (only k are used when k * 64 <= n). */
void rs_torch_topk(const float *values, int n, int k, rs_ranked *work, rs_ranked *out);

/* The same over values produced one at a time, in index order 0, 1, ..., n - 1, for a
 * caller that computes them on the fly: offer each (or skip a run of values that
 * rs_topk_stream_ignores: that changes nothing), then finish. work holds k entries when
 * k * 64 <= n (torch's partial sort), else n. */
typedef struct {
    rs_ranked *work;
    int n, k, count, partial;
} rs_topk_stream;

void rs_topk_stream_start(rs_topk_stream *s, int n, int k, rs_ranked *work);
/* Whether values none of which exceeds `bound` would change nothing now. */
int rs_topk_stream_ignores(const rs_topk_stream *s, float bound);
void rs_topk_stream_offer(rs_topk_stream *s, float value, int index);
void rs_topk_stream_finish(rs_topk_stream *s, rs_ranked *out);

#endif
