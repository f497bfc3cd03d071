/* A batch's encoding as the searches need it: the sentences sorted longest first (so the
 * encoder's running sentences form a prefix), encoded, and the attention keys prepared.
 * Shared by the beam search (rs_search.c) and forced decoding (rs_score.c). */
#include <string.h>

#include "rs_attention.h"
#include "rs_encoder.h"

int rs_encode_sentences(const rs_model *m, int n, int *order, const rs_input *input,
                        rs_encoded *enc, char *err, size_t err_size) {
    memset(enc, 0, sizeof(*enc));
    for (int i = 1; i < n; i++) { /* stable insertion sort, longest first */
        int v = order[i], j = i;
        while (j > 0 && rs_input_length(input, order[j - 1]) < rs_input_length(input, v)) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    if (rs_encode(m, n, input, order, enc, err, err_size)) return 2;
    if (rs_attention_prepare(&m->attention, enc)) {
        rs_encoded_free(enc);
        return 1;
    }
    return 0;
}
