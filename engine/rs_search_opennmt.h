/* OpenNMT-py's own decoding (onmt_translate), beside the engine's default search
 * (rs_search.c): its beam search (onmt/translate/beam_search.py, decode_strategy.py,
 * penalties.py) and its greedy search and random sampling (greedy_search.py), in the
 * variants of its releases 1.x, 2.x and 3.x. One call decodes one OpenNMT-py batch: the
 * sentences in the order OpenNMT-py holds them in the batch, because some of its rules look
 * across the batch (see docs/convert-opennmt.md, "Search"). Shares the encoder, the decoder
 * step and the copy generator (rs_copy.h) with the rest of the engine. */
#ifndef RS_SEARCH_OPENNMT_H
#define RS_SEARCH_OPENNMT_H

#include <stddef.h>
#include <stdint.h>

#include "rs_copy.h"
#include "rs_model.h"

typedef enum { RS_ONMT_LENGTH_NONE = 0, RS_ONMT_LENGTH_AVG = 1, RS_ONMT_LENGTH_WU = 2 } rs_onmt_length_penalty;
typedef enum { RS_ONMT_COVERAGE_NONE = 0, RS_ONMT_COVERAGE_WU = 1, RS_ONMT_COVERAGE_SUMMARY = 2 } rs_onmt_coverage_penalty;

typedef struct {
    int version;          /* the OpenNMT-py release whose rules apply: 1, 2 or 3 */
    int beam_size, n_best;
    int min_length;
    const int *max_lengths; /* [batch]: -max_length, capped by -max_length_ratio */
    int length_penalty; double alpha;
    int coverage_penalty; double beta; int stepwise_penalty;
    int block_ngram_repeat; const int *ignore_ids; int num_ignore;
    double ratio;
    int ban_unk; int unk_id;
    /* greedy search / random sampling (GreedySearch) instead of beam search: beam_size
       paths per sentence (1 for version 1), each token drawn from the top_k / top_p
       filtered distribution at temperature (top_k 1 or temperature 0: the best token) */
    int sampling; int top_k; double top_p; double temperature;
    const uint64_t *seeds; /* [batch]: each sentence's random stream */
    /* or the uniform draws in [0, 1) to use instead, each sentence's in the order its rows
       draw them (a step's rows in turn): draws[b * draws_stride ..], NaN past the last */
    const double *draws; int draws_stride;
    /* 0: OpenNMT-py's batch rules (its attention spans the batch's longest source, some
       rules look across the batch); 1: every sentence as a batch of its own */
    int per_sentence;
    int return_attention;
} rs_onmt_options;

typedef struct {
    rs_result result; /* the hypotheses, best first: tokens (EOS included when a hypothesis
                         ended with it; ids >= V are copied words, V + dynamic id), score,
                         attention [length, width] or NULL */
    int width;        /* attention columns */
    int *cuts;        /* [result.count]: OpenNMT-py keeps columns [0, cut) of each */
} rs_onmt_result;

/* Decode one OpenNMT-py batch (sentence b: ids[b*stride .. +lengths[b]], lengths >= 1).
 * copy: the dynamic vocabularies when the model has a copy generator (else NULL). Returns
 * 0 and fills results[0..batch) (free with rs_onmt_free_results), or non-zero with a
 * message in err. *decoded_rows (unless NULL) receives how many rows the decoder stepped:
 * the batch's work, for benchmarks. */
int rs_translate_opennmt(const rs_model *m, const rs_onmt_options *o, int batch,
                         const int *ids, int stride, const int *lengths,
                         const rs_copy_inputs *copy, rs_onmt_result *results,
                         long long *decoded_rows, char *err, size_t err_size);
void rs_onmt_free_results(rs_onmt_result *results, int batch);

#endif
