/* The model as the engine sees it: plain structs of pointers into the weights file,
 * filled once at load time by the Cython wrapper (engine/_engine.pyx), plus the one
 * entry point, rs_translate. Layouts and equations: docs/model-format.md. */
#ifndef RS_MODEL_H
#define RS_MODEL_H

#include <stddef.h>

#include "rs_limits.h"

typedef enum { RS_CELL_LSTM = 0, RS_CELL_GRU = 1, RS_CELL_RNN_TANH = 2, RS_CELL_RNN_RELU = 3 } rs_cell_kind;
typedef enum { RS_BRIDGE_ZEROS = 0, RS_BRIDGE_LAST = 1, RS_BRIDGE_DENSE = 2, RS_BRIDGE_MEAN = 3,
               RS_BRIDGE_POOLING = 4 } rs_bridge_kind;
/* which encoder layers' final states a last/dense bridge reads for decoder layer l */
typedef enum { RS_FROM_MATCHING_LAYER = 0, RS_FROM_TOP_LAYER = 1, RS_FROM_ALL_LAYERS = 2 } rs_bridge_from;
typedef enum { RS_ACT_TANH = 0, RS_ACT_RELU = 1, RS_ACT_IDENTITY = 2 } rs_activation;
typedef enum { RS_LSTM_CELL_ZEROS = 0, RS_LSTM_CELL_BRIDGED = 1, RS_LSTM_CELL_COPY_HIDDEN = 2 } rs_lstm_cell_init;
typedef enum { RS_SCORE_DOT = 0, RS_SCORE_SCALED_DOT = 1, RS_SCORE_GENERAL = 2, RS_SCORE_ADDITIVE = 3,
               RS_SCORE_TANH_DOT = 4 /* multi_head only */ } rs_score_kind;
typedef enum { RS_DECODER_BAHDANAU = 0, RS_DECODER_LUONG = 1, RS_DECODER_NONE = 2,
               RS_DECODER_CONDITIONAL = 3 } rs_decoder_kind;
/* how a bidirectional encoder stacks its layers: every layer reads the merged output of the
   layer below (layerwise), or each direction is a stack of its own, merged at the top
   (separate), whose layers alternate direction (alternating; Marian's enc-type) */
typedef enum { RS_STACK_LAYERWISE = 0, RS_STACK_SEPARATE = 1, RS_STACK_ALTERNATING = 2 } rs_stacking;
typedef enum { RS_READOUT_NONE = 0, RS_READOUT_LINEAR = 1, RS_READOUT_TANH = 2, RS_READOUT_MAXOUT = 3 } rs_readout_kind;
/* what the encoder reads: token ids (one-hot sources arrive as ids), or feature frames */
typedef enum { RS_SOURCE_IDS = 0, RS_SOURCE_FEATURES = 1 } rs_source_kind;
typedef enum { RS_SUBSAMPLE_CONCAT = 0, RS_SUBSAMPLE_STRIDE = 1 } rs_subsample_mode;

#define RS_MAX_QSPLITS 3

/* y = W x + b with W [out, in] row-major; w == NULL means "no such layer". */
typedef struct rs_linear {
    const float *w;
    const float *b;      /* NULL: no bias */
    int out, in;
    const float *packed; /* W in 16-output panels for the SIMD kernels (rs_gemm_packed.c),
                            made at load time; NULL: use w */
    const unsigned short *bf16; /* bfloat16 weights in panels (rs_gemm_bf16.c); NULL: not */
    const signed char *qweight; /* int8 weights (rs_gemm_int8.c); NULL: float */
    const float *qscale;        /* [out] per-row weight scales */
    const int *qsum;            /* [out] row sums of the int8 weights */
    /* weights stored int8 in the model file (rnnsearch convert --quantize int8): [out, in]
       rows and their per-row scales; laid out for the kernel by rs_quantize_linear, w NULL */
    const signed char *wq;
    const float *wq_scale;
    /* int8 only: input columns where x changes meaning (the concatenations [embedding;
       context], [context; state], ...). Set before rs_quantize_linear; each part of x then
       gets its own activation scale, so a part of small values (a recurrent state next to
       large embeddings) keeps its precision. The parts' kernels live in qparts. */
    int qsplit[RS_MAX_QSPLITS], nqsplit;
    const struct rs_linear *qparts; /* [nqsplit + 1] when nqsplit > 0 */
} rs_linear;

/* Whether the layer exists: float weights (as given, or packed: the engine drops its
 * pointer to weights it packed from the model file), int8 weights from the file (before or
 * after they are laid out), or float weights quantized or rounded to bfloat16 at load. */
#define RS_HAS_LINEAR(L) ((L).w != NULL || (L).packed != NULL || (L).wq != NULL || (L).qweight != NULL || (L).bf16 != NULL)

/* Layer normalisation of a row (docs/model-format.md, "Layer normalisation"):
 * x <- gain * (x - mean) / sqrt(var + eps) + bias, over the whole row, or over [0, split)
 * and [split, width) separately when split > 0. gain NULL: no normalisation. */
typedef struct {
    const float *gain;
    const float *bias;   /* NULL: none */
    int split;
    float eps;
} rs_norm;

typedef struct rs_rnn {
    rs_cell_kind cell;
    int reset_after; /* GRU only */
    int input, hidden;
    rs_linear ih; /* [G*H, input] + bias_ih */
    rs_linear hh; /* [G*H, H] + bias_hh */
    /* GRU with reset_after = 0 needs W_h{r,z} h and W_hn (r * h) separately */
    rs_linear hh_rz, hh_n;
    /* GRU only: layer normalisation of W_ih x + b_ih and of W_hh h + b_hh */
    rs_norm norm_ih, norm_hh;
    /* deep transition: cells without input that run after this one in the same step
       (a cell without ih weights reads the constant ih.b, or zeros) */
    const struct rs_rnn *transitions;
    int ntransitions;
} rs_rnn;

/* Attention that carries state from step to step (docs/model-format.md, "location",
 * "coverage"): what the weights of earlier steps contribute to the additive score. */
typedef enum { RS_LOC_PREVIOUS = 0, RS_LOC_CUMULATIVE = 1, RS_LOC_PREVIOUS_AND_CUMULATIVE = 2,
               RS_LOC_HISTORY = 3 } rs_location_input;
typedef enum { RS_WEIGHTS_UNIFORM = 0, RS_WEIGHTS_ZEROS = 1, RS_WEIGHTS_FIRST = 2 } rs_weights_init;
typedef enum { RS_COVERAGE_SUM = 0, RS_COVERAGE_TANH = 1, RS_COVERAGE_SIGMOID = 2,
               RS_COVERAGE_RELU = 3, RS_COVERAGE_SOFTRELU = 4, RS_COVERAGE_GRU = 5 } rs_coverage_update;
typedef struct {
    rs_location_input input;
    int inputs;             /* N_in: weight vectors the convolution reads (1, 2 or history) */
    int channels, kernel;   /* C, k (odd) */
    const float *conv;      /* [C, N_in, k], no bias */
    rs_linear projection;   /* [A, C] (+ bias) */
    rs_weights_init initial;
    int recurrent;          /* conv -> relu -> max over positions -> LSTM cell (A), whose
                               state enters every position's score */
    rs_rnn lstm;            /* [4A, C], [4A, A], no biases */
} rs_location;
typedef struct {
    rs_coverage_update update;
    int size;               /* N_c: floats of coverage per position */
    rs_weights_init initial;
    rs_linear projection;   /* [A, N_c] (+ bias): the coverage's term in the score */
    /* the learned updates (Tu et al. 2016, Sockeye), G = 3 for gru, else 1 */
    rs_linear memory;       /* [G N_c, D_m] (+ bias), computed once per batch */
    rs_linear query;        /* [G N_c, H_d] (+ bias) */
    const float *attention; /* [G N_c]: times the position's new weight */
    rs_linear previous;     /* activations: [N_c, N_c] (+ bias) on the old coverage */
    rs_rnn gru;             /* gru: the cell whose state is the coverage (hh = previous) */
} rs_coverage;

/* ESPnet's multi-head attention (rs_attention_multihead.c): H heads of key width d_k
 * (attention.key / .query / .v stacked by head), values projected to d_v per head and the
 * heads' contexts projected back to D_m; one head without value projection is ESPnet's dot. */
#define RS_MAX_HEADS 16
typedef struct {
    int heads, value_size;  /* value_size 0: the values are the memory (one head) */
    int tanh_dot;           /* score sum(tanh(K) * tanh(q)) instead of additive */
    rs_linear value;        /* [H d_v, D_m] */
    rs_linear output;       /* [D_m, H d_v] */
    int location;           /* every head has location features of its previous weights */
    rs_location head_location[RS_MAX_HEADS];
} rs_multi_head;

/* The decoder's attention: which type computes it (rs_attention.h) and the weights the
 * types share. A type with weights of its own adds them here. */
struct rs_attention_ops;
typedef struct {
    const struct rs_attention_ops *ops; /* NULL: the decoder has no attention */
    rs_score_kind score;
    float dot_scale;     /* dot: a learned scalar on the score (1 if none) */
    rs_linear key;       /* general / additive key projection, w may be NULL */
    rs_linear query;     /* additive query projection, w may be NULL */
    const float *v;      /* additive, NULL = ones */
    int score_relu;      /* additive: relu instead of tanh (the Show, Attend and Tell
                            PyTorch tutorial) */
    int query_width;     /* the decoder's query before any projection (H_d) */
    int memory_width;    /* D_m: one encoder position */
    int key_width;       /* a key as the scores read it: key.out, or D_m */
    int context_width;   /* the type's context per row: the values' width (the decoder
                            reads rs_attention_output_width) */
    float scaling;       /* the weights are softmax(scaling * e) */
    rs_linear context_projection; /* attention.context: the decoder reads W c + b (width
                                     .out) instead of the type's context; w may be NULL */
    rs_location location;  /* location, and forward's features (rs_attention_location.c) */
    rs_linear transition;  /* forward with the transition agent: [1, D_m + E_t + H_d] */
    rs_coverage coverage;  /* coverage (rs_attention_coverage.c) */
    rs_multi_head multi_head; /* multi_head (rs_attention_multihead.c) */
    /* options of every type (docs/model-format.md, "attention") */
    int hard;                /* the context is the value at the weights' argmax */
    rs_linear gate;          /* [gate rows, query_width]: beta = sigmoid(gate q + b) scales
                                the context; w may be NULL: no gate. 1 row: one beta for the
                                whole context (Xu et al.); context_width rows: one per
                                dimension (the PyTorch captioning tutorial's f_beta) */
    int key_split;           /* key_value.split: keys read memory[0, split), values the
                                rest; 0: keys and values both read the whole memory */
    rs_linear value;         /* key_value value projection, w may be NULL */
    /* local (rs_attention_local.c) */
    int local_predictive, local_window, local_gaussian, local_round, local_zero_pad;
    rs_linear position;      /* local-p: W_p (and b_p) */
    const float *position_v; /* local-p: v_p */
    float position_v_bias;   /* local-p: a bias inside the sigmoid (0 in the paper) */
    /* monotonic and mocha (rs_attention_monotonic.c); v is already g v / |v| */
    float energy_bias;       /* r */
    int chunk_size;          /* mocha: w */
    rs_linear chunk_key, chunk_query; /* mocha's chunk energy */
    const float *chunk_v;
    rs_norm key_norm;        /* on the projected keys (after key.b), once per sentence */
    rs_norm query_norm;      /* on the projected query, for every type */
} rs_attention;

/* The encoder's source stage and its reshaping along time (rs_source.c,
 * docs/model-format.md "Encoders over features"). */
typedef struct {
    rs_source_kind kind;
    int feature_size;             /* F (features) */
    rs_linear input_projection;   /* features: [P, F], w may be NULL */
    rs_activation input_activation;
    int width;                    /* what the stage gives: E_s, F or P */
    rs_subsample_mode mode;
    int factors[RS_MAX_LAYERS + 1]; /* of the input, then after each layer; 1 = none */
    rs_linear projection[RS_MAX_LAYERS]; /* after each layer's subsampling (ESPnet's
                                            RNNP), w may be NULL */
    rs_activation projection_activation; /* between layers; none after the top */
} rs_source_stage;

/* Self-attentive pooling of the memory (rs_pooling.c): A = softmax_rows(Q tanh(W H^T + b)),
 * summary = A H, rows x D_m. rows == 0: none. */
typedef struct {
    int rows, size;
    rs_linear projection; /* W [size, D_m], b */
    const float *query;   /* Q [rows, size] */
} rs_pooling;

typedef struct {
    /* encoder */
    const float *src_embedding; int src_vocab, src_embedding_size;
    int enc_layers, enc_bidirectional, enc_merge_sum, enc_residual, enc_hidden;
    rs_rnn enc[RS_MAX_LAYERS][2];
    int enc_width; /* D_e: a layer's merged output */
    rs_stacking enc_stacking;
    rs_source_stage source;
    int memory_width; /* D_m: D_e, or after the top layer's subsampling and projection */

    /* bridge */
    rs_bridge_kind bridge; rs_bridge_from bridge_from; rs_activation bridge_activation;
    rs_lstm_cell_init lstm_cell;
    rs_linear bridge_hidden[RS_MAX_LAYERS], bridge_cell[RS_MAX_LAYERS];
    rs_norm bridge_hidden_norm[RS_MAX_LAYERS], bridge_cell_norm[RS_MAX_LAYERS];
    rs_pooling pooling;

    rs_attention attention;

    /* decoder */
    const float *tgt_embedding; int tgt_vocab, tgt_embedding_size;
    rs_decoder_kind decoder; int dec_layers, dec_hidden, dec_residual;
    int query_first_layer; /* the attention's query is layer 0's state, not the top's */
    rs_rnn dec[RS_MAX_LAYERS];
    int start_zeros; /* the first step reads a zero embedding instead of BOS's (Marian) */
    /* conditional: the cell after the attention in layer 0 (reads the context; ih NULL
       when the layer has one cell) */
    rs_rnn cond_cell;
    int input_feeding;
    int feed_context;    /* luong input feeding feeds the context, not h~ (SpeechBrain) */
    int feed_width;      /* floats fed back: D_a, or the context's width */
    rs_linear attentional; /* luong, w may be NULL */
    rs_activation attentional_activation; /* tanh, or identity (OpenNMT-py's mlp attention) */
    rs_readout_kind readout; int readout_state, readout_context, readout_embedding;
    rs_linear readout_layer;
    /* readout with layer normalisation: one product per input part, each normalised,
       summed (then readout_layer.b and the activation); nparts 0: one product */
    int readout_nparts;
    rs_linear readout_parts[3];
    rs_norm readout_norm[3];
    rs_linear output;
    int attentional_width;
    /* OpenNMT-py's copy generator (rs_copy.h), which mixes copying into the output layer;
       NULL: a plain softmax output. Only OpenNMT-py's search (rs_search_opennmt.c) runs it. */
    const struct rs_copy_generator *copy;

    int bos_id, eos_id;
} rs_model;

typedef int (*rs_token_fn)(void *ctx, int sentence, int step, int token, float log_prob,
                           int is_last);

typedef struct {
    int beam_size, num_hypotheses;
    int min_length, max_length;
    float length_penalty, coverage_penalty;
    int normalize_scores;
    /* Marian's search (docs/model-format.md, "Decoding"): finished hypotheses leave the
       beam, which narrows; score (total - word_penalty * length) / length^length_exponent;
       at most ceil(max_length_factor * source length) steps (0: no such limit) */
    int shrinking_beam;
    float length_exponent, word_penalty, max_length_factor;
    int eos_attention; /* the attention rows include the EOS step's */
    int return_attention;
    /* decode-time attention constraint (Deep Voice 3): the weights of a step are limited
       to [last - backward, last + forward) around the previous step's argmax `last` */
    int constrain, constraint_backward, constraint_forward;
    int threads; /* sentences are split into this many groups decoded in parallel */
    /* with fewer sentences than threads: the pool (rs_workers.h) each step's products are
       split over by output rows instead; NULL: such a call runs on one thread */
    struct rs_workers *pool;
    const int *suppress; int num_suppress; /* target ids never produced (log-prob -inf) */
    /* Greedy search only (beam_size 1): called after every step with each live sentence's
     * chosen token (its index in the batch, the step, the token, its log-probability, and
     * whether it ends the sentence); a nonzero return ends that sentence there. NULL (the
     * default) costs nothing. It may be called from several threads at once. */
    rs_token_fn on_token; void *on_token_ctx;
    /* target prefixes (NULL: none): sentence b's first prefix_lengths[b] tokens are
       prefix[b * prefix_stride ...], forced as in CTranslate2 (their log-probabilities are
       not part of the score; they are part of the hypothesis and its length) */
    const int *prefix; const int *prefix_lengths; int prefix_stride;
    /* vocabulary map (rs_vmap.h): each sentence's candidate target tokens; NULL: all */
    const struct rs_candidates *candidates;
} rs_options;

typedef struct {
    int length;        /* number of tokens */
    int *tokens;       /* [length] */
    float score;
    float log_prob;    /* the sum of its log-probabilities (before any penalty) */
    float *attention;  /* [attention_rows, source_length] or NULL */
    int attention_rows; /* length, plus the EOS step's row with eos_attention */
} rs_hypothesis;

typedef struct {
    int count;
    rs_hypothesis *hyps; /* best first */
    int attention_width; /* columns of every attention row: the sentence's memory positions */
} rs_result;

/* A call's sources: token ids or feature frames, row b holding lengths[b] positions. */
typedef struct {
    const int *ids;        /* [rows, stride], or NULL */
    const float *features; /* [rows, stride, feature_size], or NULL */
    int stride;            /* positions per row */
    const int *lengths;    /* [rows] */
    const int *rows;       /* source b of the call is row rows[b]; NULL: row b */
} rs_input;

static inline int rs_input_row(const rs_input *in, int b) { return in->rows ? in->rows[b] : b; }
static inline int rs_input_length(const rs_input *in, int b) { return in->lengths[rs_input_row(in, b)]; }

/* Translate `batch` sentences: source ids of sentence b are ids[b*stride .. +lengths[b]].
 * On success returns 0 and fills results[0..batch) (free with rs_free_results).
 * On failure returns non-zero and writes a message into err. Thread-safe: the model is
 * read only, every buffer belongs to the call. */
int rs_translate(const rs_model *model, const rs_options *options, int batch,
                 const int *ids, int stride, const int *lengths,
                 rs_result *results, char *err, size_t err_size);
/* As rs_translate for feature frames: sentence b is features[b*stride*F ..], lengths[b]
 * frames of F = model->source.feature_size floats. */
int rs_translate_features(const rs_model *model, const rs_options *options, int batch,
                          const float *features, int stride, const int *lengths,
                          rs_result *results, char *err, size_t err_size);
void rs_free_results(rs_result *results, int batch);

#endif
