/* Vocabulary maps (docs/vmap.md): each sentence is decoded over its own candidate target
 * tokens. The output layer computes only the rows of the union of a call's candidates
 * (a gathered copy of its weights, made once per call), and every hypothesis's
 * log-softmax runs over its own sentence's candidates, so a sentence's result never
 * depends on the other sentences of the batch; every other token gets log-probability
 * -inf. With every token a candidate, the logits and log-probabilities are the bits of the
 * full output layer. */
#ifndef RS_VMAP_H
#define RS_VMAP_H

#include <stddef.h>

#include "rs_model.h"

/* A call's candidates: source row b's are ids[offsets[b] .. offsets[b + 1]), ascending,
 * distinct target ids (rows as rs_input_row numbers them). */
typedef struct rs_candidates {
    const int *ids;
    const size_t *offsets;
} rs_candidates;

/* The output layer over one group's union of candidates. */
typedef struct rs_vmap {
    int vocab, size;        /* V, and U: the union's size */
    int *ids;               /* [U] the union, ascending */
    rs_linear output;       /* the output layer's rows ids (gathered), when `gathered` */
    void *owned;            /* the gathered weights */
    float *bias;            /* the gathered bias, or NULL */
    int gathered;           /* 0: the full product runs into `full`, then columns are picked */
    float *full;            /* [capacity, V] (not gathered only) */
    float *logits;          /* [capacity, U] the step's logits over the union */
    float *row;             /* [V] one row's logits over its sentence's candidates */
    int sentences;
    const int **cand;       /* [sentences] each sentence's candidate ids */
    int *count;             /* [sentences] */
    int **at;               /* [sentences] each candidate's column in the union */
} rs_vmap;

/* Build the union and the gathered output layer for `sentences` sentences, sentence i
 * being source row rows[i] of c, with room for `capacity` rows a step. Returns 0, 1 when
 * out of memory, 2 when the candidates are not ascending distinct ids in [0, V) or a
 * sentence has none (message in err). */
int rs_vmap_init(rs_vmap *v, const rs_model *m, const rs_candidates *c, int sentences,
                 const int *rows, int capacity, char *err, size_t err_size);
void rs_vmap_free(rs_vmap *v);

/* The output layer for `rows` rows of x (width xs): v->logits [rows, U]. */
void rs_vmap_output(const rs_model *m, rs_vmap *v, int rows, const float *x, int xs);

/* Row r of the last step, hypothesis of sentence `sentence`: lp [V] <- -inf except at the
 * sentence's candidates, which get their log-softmax over the candidates. Returns what
 * rs_log_softmax returns (the maximum logit; not finite if the row is not). tmp: V floats. */
float rs_vmap_log_probs(rs_vmap *v, int r, int sentence, float *lp, float *tmp);

#endif
