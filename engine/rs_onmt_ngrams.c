/* OpenNMT-py's n-gram dictionaries: see rs_onmt_ngrams.h.
 *
 * A dictionary is a list of token sets, each with its key (n - 1 tokens). The sets live in
 * one pool, their keys and tokens in two arrays of the pool (so a step's copies cost no
 * allocation once the arrays have grown): a deep copy (2.x, 3.x) clones a parent's sets, a
 * shallow copy (1.x) lists the same ones. Deep copies are made into a second pool that then
 * replaces the first, so the pool only holds what the current dictionaries use; 1.x's shared
 * sets stay for the whole search (they are few: one per new key a row meets). */
#include "rs_onmt_ngrams.h"

#include <stdlib.h>
#include <string.h>


typedef struct {
    int key;              /* offset of its n - 1 key tokens in the pool's keys */
    int start;            /* offset of its tokens in the pool's tokens */
    int count, capacity;
} token_set;

typedef struct {
    token_set *sets;
    int count, capacity;
    int *keys;
    int keys_count, keys_capacity;
    int *tokens;
    int tokens_count, tokens_capacity;
} set_pool;

typedef struct {
    int count, capacity;
    int *sets; /* pool indices */
} dictionary;

struct onmt_ngrams {
    int rows, n, shared;
    const int *ignore;
    int num_ignore;
    set_pool pool, spare;
    dictionary *cur, *next;
};

static int grow(void **items, int *capacity, int need, size_t size) {
    if (need <= *capacity) return 0;
    const int capacity2 = need > 2 * *capacity ? need : 2 * *capacity;
    void *grown = realloc(*items, size * (size_t)capacity2);
    if (!grown) return 1;
    *items = grown;
    *capacity = capacity2;
    return 0;
}

static void pool_clear(set_pool *p) {
    p->count = 0;
    p->keys_count = 0;
    p->tokens_count = 0;
}

static void pool_free(set_pool *p) {
    free(p->sets);
    free(p->keys);
    free(p->tokens);
    memset(p, 0, sizeof(*p));
}

/* `count` free token slots at the end of the pool's tokens: their offset, or -1 */
static int reserve_tokens(set_pool *p, int count) {
    if (grow((void **)&p->tokens, &p->tokens_capacity, p->tokens_count + count, sizeof(int)))
        return -1;
    const int start = p->tokens_count;
    p->tokens_count += count;
    return start;
}

/* a new set holding `count` tokens (room for one more) under a key of k tokens; its
   index, or -1 */
static int new_set(set_pool *p, const int *key, int k, const int *tokens, int count) {
    if (grow((void **)&p->sets, &p->capacity, p->count + 1, sizeof(token_set)) ||
        grow((void **)&p->keys, &p->keys_capacity, p->keys_count + k, sizeof(int)))
        return -1;
    const int start = reserve_tokens(p, count + 1);
    if (start < 0) return -1;
    token_set *s = &p->sets[p->count];
    *s = (token_set){.key = p->keys_count, .start = start, .count = count, .capacity = count + 1};
    if (count) memcpy(p->tokens + start, tokens, sizeof(int) * count);
    memcpy(p->keys + p->keys_count, key, sizeof(int) * k);
    p->keys_count += k;
    return p->count++;
}

onmt_ngrams *onmt_ngrams_new(int rows, int n, int shared_sets, const int *ignore,
                             int num_ignore) {
    onmt_ngrams *g = calloc(1, sizeof(onmt_ngrams));
    if (!g) return NULL;
    g->rows = rows;
    g->n = n;
    g->shared = shared_sets;
    g->ignore = ignore;
    g->num_ignore = num_ignore;
    g->cur = calloc(rows > 0 ? rows : 1, sizeof(dictionary));
    g->next = calloc(rows > 0 ? rows : 1, sizeof(dictionary));
    if (!g->cur || !g->next) {
        onmt_ngrams_free(g);
        return NULL;
    }
    return g;
}

void onmt_ngrams_free(onmt_ngrams *g) {
    if (!g) return;
    for (int r = 0; r < g->rows; r++) {
        if (g->cur) free(g->cur[r].sets);
        if (g->next) free(g->next[r].sets);
    }
    free(g->cur);
    free(g->next);
    pool_free(&g->pool);
    pool_free(&g->spare);
    free(g);
}

static int find(const set_pool *p, const dictionary *d, const int *key, int k) {
    for (int i = 0; i < d->count; i++)
        if (memcmp(p->keys + p->sets[d->sets[i]].key, key, sizeof(int) * k) == 0)
            return d->sets[i];
    return -1;
}

int onmt_ngrams_blocked(const onmt_ngrams *g, int p, const int *seq, int length,
                        const int **tokens) {
    const int k = g->n - 1;
    if (k < 1 || length < k) return 0;
    const int s = find(&g->pool, &g->cur[p], seq + length - k, k);
    if (s < 0) return 0;
    *tokens = g->pool.tokens + g->pool.sets[s].start;
    return g->pool.sets[s].count;
}

static int ignored(const onmt_ngrams *g, const int *window) {
    for (int j = 0; j < g->n; j++)
        for (int i = 0; i < g->num_ignore; i++)
            if (g->ignore[i] == window[j]) return 1;
    return 0;
}

/* setdefault(key, set()).add(token) on one dictionary */
static int add(onmt_ngrams *g, set_pool *p, dictionary *d, const int *window) {
    const int k = g->n - 1, token = window[k];
    int s = find(p, d, window, k);
    if (s < 0) {
        if ((s = new_set(p, window, k, NULL, 0)) < 0) return 1;
        if (grow((void **)&d->sets, &d->capacity, d->count + 1, sizeof(int))) return 1;
        d->sets[d->count++] = s;
    }
    token_set *set = &p->sets[s];
    for (int i = 0; i < set->count; i++)
        if (p->tokens[set->start + i] == token) return 0;
    if (set->count == set->capacity) { /* a shared set (1.x) grows: moved to the end */
        const int start = reserve_tokens(p, 2 * set->capacity);
        if (start < 0) return 1;
        memcpy(p->tokens + start, p->tokens + set->start, sizeof(int) * set->count);
        set->start = start;
        set->capacity *= 2;
    }
    p->tokens[set->start + set->count++] = token;
    return 0;
}

int onmt_ngrams_advance(onmt_ngrams *g, int rows, const int *parent, const int *windows) {
    set_pool *target = g->shared ? &g->pool : &g->spare;
    if (!g->shared) pool_clear(target);
    for (int r = 0; r < rows; r++) {
        const dictionary *from = &g->cur[parent[r]];
        dictionary *to = &g->next[r];
        if (grow((void **)&to->sets, &to->capacity, from->count, sizeof(int))) return 1;
        to->count = from->count;
        for (int i = 0; i < from->count; i++) {
            const token_set *s = &g->pool.sets[from->sets[i]];
            to->sets[i] = g->shared ? from->sets[i]
                                    : new_set(target, g->pool.keys + s->key, g->n - 1,
                                              g->pool.tokens + s->start, s->count);
            if (to->sets[i] < 0) return 1;
        }
        if (g->n > 1 && !ignored(g, windows + (size_t)r * g->n) &&
            add(g, target, to, windows + (size_t)r * g->n))
            return 1;
    }
    /* the other positions keep what they had (OpenNMT-py rebuilds the list for the live
       rows only; later rows are never read before being rebuilt) */
    dictionary *t = g->cur;
    g->cur = g->next;
    g->next = t;
    if (!g->shared) {
        set_pool tp = g->pool;
        g->pool = g->spare;
        g->spare = tp;
    }
    return 0;
}

void onmt_ngrams_move(onmt_ngrams *g, int to, int from) {
    const dictionary t = g->cur[to];
    g->cur[to] = g->cur[from];
    g->cur[from] = t;
}
