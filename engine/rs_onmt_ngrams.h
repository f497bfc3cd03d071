/* -block_ngram_repeat as OpenNMT-py's beam search keeps it (decode_strategy.py,
 * forbidden_tokens): per row position, a dictionary from the first n - 1 tokens of every
 * n-gram the row has produced to the tokens that followed them. Each step a row's
 * dictionary becomes a copy of its parent's, plus the row's newest n-gram (unless it holds
 * an -ignore_when_blocking token); the next step, tokens following the row's last n - 1
 * tokens are blocked.
 *
 * Two of OpenNMT-py's own rules are kept because they change outputs:
 * - the dictionaries belong to row positions: when finished sentences leave the batch,
 *   the rows after them move up but the dictionaries do not, so a row then reads (and
 *   inherits) another row's n-grams;
 * - 1.x copies a dictionary shallowly (dict(...), 2.x/3.x deepcopy): the token sets are
 *   shared by every row that inherited them, and a token added by one is seen by all. */
#ifndef RS_ONMT_NGRAMS_H
#define RS_ONMT_NGRAMS_H

typedef struct onmt_ngrams onmt_ngrams;

/* For up to `rows` row positions and n-grams of n >= 1 tokens; shared_sets: 1.x's shallow
 * copies. NULL when out of memory. */
onmt_ngrams *onmt_ngrams_new(int rows, int n, int shared_sets, const int *ignore,
                             int num_ignore);
void onmt_ngrams_free(onmt_ngrams *g);

/* The tokens to block (*tokens, their count returned): those the dictionary of row position
 * p lists after the last n - 1 tokens of seq (`length` tokens, the start token first). For
 * n = 1 OpenNMT-py's key is the whole sequence (its slice [-0:]) and nothing is blocked. */
int onmt_ngrams_blocked(const onmt_ngrams *g, int p, const int *seq, int length,
                        const int **tokens);

/* The next dictionaries: row r copies row position parent[r]'s and adds the n-gram
 * windows[r*n .. r*n+n). Returns non-zero when out of memory. */
int onmt_ngrams_advance(onmt_ngrams *g, int rows, const int *parent, const int *windows);

/* Per-sentence decoding: the dictionary of row position `from` moves to `to`. */
void onmt_ngrams_move(onmt_ngrams *g, int to, int from);

#endif
