/* A batch's encoding as the searches need it: the sentences sorted longest first (so the
 * encoder's running sentences form a prefix), encoded, and the attention keys prepared.
 * Shared by the beam search (rs_search.c) and forced decoding (rs_score.c). */
#include <stdlib.h>
#include <string.h>

#include "rs_attention.h"
#include "rs_encoder.h"

int rs_encode_sentences(const rs_model *m, int n, int *order, const int *ids, int stride,
                        const int *lengths, int *sorted_len, rs_encoded *enc, char *err,
                        size_t err_size) {
    memset(enc, 0, sizeof(*enc));
    for (int i = 1; i < n; i++) { /* stable insertion sort, longest first */
        int v = order[i], j = i;
        while (j > 0 && lengths[order[j - 1]] < lengths[v]) { order[j] = order[j - 1]; j--; }
        order[j] = v;
    }
    const int S = lengths[order[0]];
    int *sorted_ids = malloc(rs_size_mul3(sizeof(int), (size_t)n, (size_t)S));
    int status = 1;
    if (sorted_ids) {
        for (int i = 0; i < n; i++) {
            sorted_len[i] = lengths[order[i]];
            memcpy(sorted_ids + (size_t)i * S, ids + (size_t)order[i] * stride, sizeof(int) * sorted_len[i]);
        }
        status = rs_encode(m, n, sorted_ids, S, sorted_len, S, enc, err, err_size) ? 2 : 0;
        if (!status && rs_attention_prepare(&m->attention, enc)) {
            rs_encoded_free(enc);
            status = 1;
        }
    }
    free(sorted_ids);
    return status;
}
