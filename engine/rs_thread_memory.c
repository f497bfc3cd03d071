/* rs_thread_memory.h: one record per thread, made on first use and freed at thread exit,
 * holding the kernels' scratch buffer and the cache of freed call buffers. */
#include "rs_thread_memory.h"

#include <stdlib.h>
#include <string.h>

#include "rs_gemm_scratch.h"
#include "rs_platform.h"

/* Every block starts with this header (16 bytes on 64-bit targets, so the caller's
 * pointer keeps malloc's alignment): its capacity (a size class, or the exact size of a
 * block too large to keep) and, while cached, the next block of its class. */
typedef struct block {
    size_t capacity;
    struct block *next;
} block;

/* Size classes: multiples of 64 bytes up to 512, then 8 classes per doubling up to
 * RS_BLOCK_KEEP_MAX (16 MB = 2^24): at most 1/8 of a block unused. */
enum { SMALL_CLASSES = 8, STEPS = 8, FIRST_SHIFT = 9, LAST_SHIFT = 24 };
#define CLASSES (SMALL_CLASSES + (LAST_SHIFT - FIRST_SHIFT) * STEPS)

typedef struct {
    void *scratch;
    size_t scratch_size;
    block *cached[CLASSES];
    size_t cached_bytes;
} thread_memory;

static volatile int poison; /* rs_block_poison */
static rs_tls_key memory_key;
static int memory_key_made;
static rs_once memory_once = RS_ONCE_INIT;

static void memory_free(void *p) {
    thread_memory *t = p;
    if (!t) return;
    for (int c = 0; c < CLASSES; c++)
        for (block *b = t->cached[c]; b;) {
            block *next = b->next;
            free(b);
            b = next;
        }
    free(t->scratch);
    free(t);
}

static void memory_init(void) { memory_key_made = rs_tls_create(&memory_key, memory_free) == 0; }

/* This thread's record, made on first use; NULL when it cannot be made. */
static thread_memory *this_thread(void) {
    rs_call_once(&memory_once, memory_init);
    if (!memory_key_made) return NULL;
    thread_memory *t = rs_tls_get(memory_key);
    if (!t) {
        t = calloc(1, sizeof(thread_memory));
        if (!t) return NULL;
        if (rs_tls_set(memory_key, t)) {
            free(t);
            return NULL;
        }
    }
    return t;
}

void *rs_gemm_scratch(size_t size) {
    thread_memory *t = this_thread();
    if (!t) return NULL;
    if (t->scratch_size < size) {
        void *d = realloc(t->scratch, size);
        if (!d) return NULL;
        t->scratch = d;
        t->scratch_size = size;
    }
    return t->scratch;
}

/* The class of a request of `size` bytes (<= RS_BLOCK_KEEP_MAX) and its capacity. */
static int size_class(size_t size, size_t *capacity) {
    if (size <= (size_t)64 * SMALL_CLASSES) {
        const int c = size <= 64 ? 0 : (int)((size - 1) / 64);
        *capacity = (size_t)64 * (c + 1);
        return c;
    }
    int shift = FIRST_SHIFT; /* 2^shift < size <= 2^(shift + 1) */
    while (((size_t)2 << shift) < size) shift++;
    const size_t base = (size_t)1 << shift, step = base / STEPS;
    const size_t k = (size - base + step - 1) / step; /* 1 .. STEPS */
    *capacity = base + k * step;
    return SMALL_CLASSES + (shift - FIRST_SHIFT) * STEPS + (int)k - 1;
}

void *rs_block_alloc(size_t size) {
    if (size == 0) size = 1;
    size_t capacity = size;
    int c = -1;
    if (size <= RS_BLOCK_KEEP_MAX) c = size_class(size, &capacity);
    thread_memory *t = c >= 0 ? this_thread() : NULL;
    block *b = NULL;
    if (t && t->cached[c]) {
        b = t->cached[c];
        t->cached[c] = b->next;
        t->cached_bytes -= b->capacity;
    } else {
        if (capacity > (size_t)-1 - sizeof(block)) return NULL;
        b = malloc(sizeof(block) + capacity);
        if (!b) return NULL;
        b->capacity = capacity;
    }
    b->next = NULL;
    if (rs_atomic_load(&poison)) memset(b + 1, 0xFF, b->capacity);
    return b + 1;
}

void *rs_block_calloc(size_t count, size_t size) {
    if (size && count > (size_t)-1 / size) return NULL;
    void *p = rs_block_alloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void rs_block_free(void *p) {
    if (!p) return;
    block *b = (block *)p - 1;
    thread_memory *t = b->capacity <= RS_BLOCK_KEEP_MAX ? this_thread() : NULL;
    if (!t || t->cached_bytes + b->capacity > RS_BLOCK_KEEP_TOTAL) {
        free(b);
        return;
    }
    size_t capacity;
    const int c = size_class(b->capacity, &capacity);
    b->next = t->cached[c];
    t->cached[c] = b;
    t->cached_bytes += b->capacity;
}

size_t rs_block_cached_bytes(void) {
    thread_memory *t = this_thread();
    return t ? t->cached_bytes : 0;
}

void rs_block_poison(int on) { rs_atomic_store(&poison, on != 0); }
