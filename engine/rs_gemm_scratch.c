/* rs_gemm_scratch.h: a thread-local buffer through the platform layer's per-thread
 * storage, whose destructor frees it when the thread ends. */
#include "rs_gemm_scratch.h"

#include <stdlib.h>

#include "rs_platform.h"

static rs_tls_key scratch_key;
static int scratch_key_made;
static rs_once scratch_once = RS_ONCE_INIT;
typedef struct { void *data; size_t size; } scratch;
static void scratch_free(void *p) { if (p) { free(((scratch *)p)->data); free(p); } }
static void scratch_init(void) { scratch_key_made = rs_tls_create(&scratch_key, scratch_free) == 0; }

void *rs_gemm_scratch(size_t size) {
    rs_call_once(&scratch_once, scratch_init);
    if (!scratch_key_made) return NULL;
    scratch *s = rs_tls_get(scratch_key);
    if (!s) {
        s = calloc(1, sizeof(scratch));
        if (!s) return NULL;
        if (rs_tls_set(scratch_key, s)) { free(s); return NULL; }
    }
    if (s->size < size) {
        void *d = realloc(s->data, size);
        if (!d) return NULL;
        s->data = d;
        s->size = size;
    }
    return s->data;
}
