# The C engine's interface as the Cython wrapper (_engine.pyx) cimports it: the structs of
# rs_model.h and the functions it calls. Keep in step with the headers.
from libc.stddef cimport size_t

cdef extern from "rs_limits.h" nogil:
    enum:
        RS_MAX_LAYERS
        RS_MAX_WIDTH
        RS_MAX_VOCAB
        RS_MAX_SOURCE_LENGTH
        RS_MAX_DECODING_LENGTH
        RS_MAX_BEAM
        RS_MAX_BATCH
        RS_MAX_BLOCK_ELEMENTS

cdef extern from "rs_workers.h" nogil:
    ctypedef struct rs_workers:
        pass
    rs_workers *rs_workers_create()
    int rs_workers_reserve(rs_workers *p, int threads)
    void rs_workers_destroy(rs_workers *p)
    int rs_workers_parts_on_workers()

cdef extern from "rs_split.h" nogil:
    int rs_split_set_min_macs(int macs)
    int rs_split_count()

cdef extern from "rs_thread_memory.h" nogil:
    size_t rs_block_cached_bytes()
    void rs_block_poison(int on)

cdef extern from "rs_vmap.h" nogil:
    ctypedef struct rs_candidates:
        const int *ids
        const size_t *offsets

cdef extern from "rs_model.h" nogil:
    ctypedef struct rs_linear:
        const float *w
        const float *b
        int out
        int input "in"
        const float *packed
        const unsigned short *bf16
        const signed char *qweight
        const signed char *wq
        const float *wq_scale
        int qsplit[3]
        int nqsplit
    ctypedef struct rs_norm:
        const float *gain
        const float *bias
        int split
        float eps
    ctypedef struct rs_rnn:
        int cell
        int reset_after
        int input
        int hidden
        rs_linear ih
        rs_linear hh
        rs_linear hh_rz
        rs_linear hh_n
        rs_norm norm_ih, norm_hh
        const rs_rnn *transitions
        int ntransitions
    ctypedef struct rs_attention_ops:
        pass
    ctypedef struct rs_location:
        int input
        int inputs, channels, kernel
        const float *conv
        rs_linear projection
        int initial, recurrent
        rs_rnn lstm
    ctypedef struct rs_coverage:
        int update, size, initial
        rs_linear projection, memory, query, previous
        const float *attention
        rs_rnn gru
    ctypedef struct rs_multi_head:
        int heads, value_size, tanh_dot
        rs_linear value, output
        int location
        rs_location head_location[16]
    ctypedef struct rs_attention:
        const rs_attention_ops *ops
        int score
        float dot_scale
        rs_linear key
        rs_linear query
        const float *v
        int score_relu
        int query_width, memory_width, key_width, context_width
        float scaling
        rs_linear context_projection
        rs_location location
        rs_linear transition
        rs_coverage coverage
        rs_multi_head multi_head
        int hard
        rs_linear gate
        int key_split
        rs_linear value
        int local_predictive, local_window, local_gaussian, local_round, local_zero_pad
        rs_linear position
        const float *position_v
        float position_v_bias
        float energy_bias
        int chunk_size
        rs_linear chunk_key, chunk_query
        const float *chunk_v
        rs_norm key_norm, query_norm
    ctypedef struct rs_pooling:
        int rows, size
        rs_linear projection
        const float *query
    ctypedef struct rs_source_stage:
        int kind
        int feature_size
        rs_linear input_projection
        int input_activation
        int width
        int mode
        int factors[RS_MAX_LAYERS + 1]
        rs_linear projection[RS_MAX_LAYERS]
        int projection_activation
    ctypedef struct rs_copy_generator:  # rs_copy.h
        rs_attention attention
        rs_linear gate
        int pad_id
    ctypedef struct rs_model:
        const float *src_embedding
        int src_vocab, src_embedding_size
        int enc_layers, enc_bidirectional, enc_merge_sum, enc_residual, enc_hidden
        rs_rnn enc[RS_MAX_LAYERS][2]
        int enc_width
        int enc_stacking
        rs_source_stage source
        int memory_width
        int bridge, bridge_from, bridge_activation, lstm_cell
        rs_linear bridge_hidden[RS_MAX_LAYERS]
        rs_linear bridge_cell[RS_MAX_LAYERS]
        rs_norm bridge_hidden_norm[RS_MAX_LAYERS]
        rs_norm bridge_cell_norm[RS_MAX_LAYERS]
        rs_pooling pooling
        rs_attention attention
        const float *tgt_embedding
        int tgt_vocab, tgt_embedding_size
        int decoder, dec_layers, dec_hidden, dec_residual
        int query_first_layer
        rs_rnn dec[RS_MAX_LAYERS]
        int start_zeros
        rs_rnn cond_cell
        int input_feeding, feed_context, feed_width
        rs_linear attentional
        int attentional_activation
        int readout, readout_state, readout_context, readout_embedding
        rs_linear readout_layer
        int readout_nparts
        rs_linear readout_parts[3]
        rs_norm readout_norm[3]
        rs_linear output
        int attentional_width
        const rs_copy_generator *copy
        int bos_id, eos_id
    ctypedef int (*rs_token_fn)(void *ctx, int sentence, int step, int token, float log_prob,
                                int is_last) noexcept nogil
    ctypedef struct rs_options:
        int beam_size, num_hypotheses, min_length, max_length
        float length_penalty, coverage_penalty
        int normalize_scores
        int shrinking_beam
        float length_exponent, word_penalty, max_length_factor
        int eos_attention, return_attention, threads
        rs_workers *pool
        int constrain, constraint_backward, constraint_forward
        const int *suppress
        int num_suppress
        rs_token_fn on_token
        void *on_token_ctx
        const int *prefix
        const int *prefix_lengths
        int prefix_stride
        const rs_candidates *candidates
    ctypedef struct rs_hypothesis:
        int length
        int *tokens
        float score
        float log_prob
        float *attention
        int attention_rows
    ctypedef struct rs_result:
        int count
        rs_hypothesis *hyps
        int attention_width
    int rs_translate(const rs_model *model, const rs_options *options, int batch,
                     const int *ids, int stride, const int *lengths,
                     rs_result *results, char *err, size_t err_size)
    int rs_translate_features(const rs_model *model, const rs_options *options, int batch,
                              const float *features, int stride, const int *lengths,
                              rs_result *results, char *err, size_t err_size)
    void rs_free_results(rs_result *results, int batch)
    bint RS_HAS_LINEAR(rs_linear L)

cdef extern from "rs_score.h" nogil:
    int rs_score(const rs_model *m, int batch, const int *src, int src_stride,
                 const int *src_lengths, const int *tgt, int tgt_stride,
                 const int *tgt_lengths, float *log_probs, float *totals, char *err,
                 size_t err_size)

cdef extern from "rs_kernels.h" nogil:
    const char *rs_kernel_isa()
    ctypedef void (*rs_gemm_fn)(const rs_linear *L, int rows, const float *x, int xs, float *y,
                               int ys, int accumulate, int o_begin, int o_end)
    rs_gemm_fn rs_gemm_named(const char *isa)
    int rs_pack_linear(rs_linear *L, float **owned)
    int rs_kernel_packs()
    size_t rs_first_nonfinite(const float *x, size_t n)
    size_t rs_copy_finite(float *dst, const float *src, size_t n)
    float *rs_pack_weights(const float *w, int out, int input)
    float rs_log_softmax(float *x, int n, float *tmp)

cdef extern from "rs_attention.h" nogil:
    const rs_attention_ops *rs_attention_named(const char *name)

cdef extern from "rs_pooling.h" nogil:
    int rs_embed(const rs_model *m, int batch, const int *ids, int stride, const int *lengths,
                 float *out, float *weights, char *err, size_t err_size)

cdef extern from "rs_decoder.h" nogil:
    void rs_decoder_mark_input_parts(rs_model *m)
    size_t rs_decoder_block_floats(const rs_model *m, int rows, int max_source)

cdef extern from "rs_gemm_bf16.h" nogil:
    int rs_bf16_pack_linear(rs_linear *L, void **owned)
    const char *rs_bf16_isa()
    int rs_gemm_bf16_named(const char *isa, const rs_linear *L, int rows, const float *x, int xs,
                           float *y, int ys, int accumulate)

cdef extern from "rs_gemm_int8.h" nogil:
    int rs_quantize_linear(rs_linear *L, void **owned)
    int rs_gemm_int8(const rs_linear *L, int rows, const float *x, int xs, float *y, int ys,
                     int accumulate)
    const char *rs_int8_isa()

cdef extern from "rs_vmath.h" nogil:
    void rs_vexp(float *x, int n)
    float rs_vmax_chunks(const float *x, int n, int chunk, float *out)
    void rs_vtanh(float *x, int n)
    void rs_vsigmoid(float *x, int n)

cdef extern from "stdlib.h" nogil:
    void free(void *ptr)

cdef extern from "rs_platform.h" nogil:
    void *rs_aligned_alloc(size_t alignment, size_t size)
    void rs_aligned_free(void *p)
    void rs_release_pages(const void *start, size_t nbytes)
cdef extern from "rs_copy.h" nogil:
    ctypedef struct rs_copy_inputs:
        const int *src_map
        int stride
        const int *collapse
        const int *words
        int max_words

from libc.stdint cimport uint64_t

cdef extern from "rs_search_opennmt.h" nogil:
    ctypedef struct rs_onmt_options:
        int version, beam_size, n_best, min_length
        const int *max_lengths
        int length_penalty
        double alpha
        int coverage_penalty
        double beta
        int stepwise_penalty, block_ngram_repeat
        const int *ignore_ids
        int num_ignore
        double ratio
        int ban_unk, unk_id, sampling, top_k
        double top_p, temperature
        const uint64_t *seeds
        const double *draws
        int draws_stride
        int per_sentence, return_attention
    ctypedef struct rs_onmt_result:
        rs_result result
        int width
        int *cuts
    int rs_translate_opennmt(const rs_model *m, const rs_onmt_options *o, int batch,
                             const int *ids, int stride, const int *lengths,
                             const rs_copy_inputs *copy, rs_onmt_result *results,
                             long long *decoded_rows, char *err, size_t err_size)
    void rs_onmt_free_results(rs_onmt_result *results, int batch)

cdef extern from "rs_topk_torch.h" nogil:
    ctypedef struct rs_ranked:
        float value
        int index
    void rs_torch_topk(const float *values, int n, int k, rs_ranked *work, rs_ranked *out)
