/* torch.topk's order of equal candidates: see rs_topk_torch.h. The routines below follow
 * libstdc++'s std::partial_sort, std::nth_element and std::sort (bits/stl_heap.h,
 * bits/stl_algo.h) step for step, for the comparator TopKImpl.h gives them: x before y when
 * x is NaN and y is not, or x > y. */
#include "rs_topk_torch.h"

#include <math.h>
#include <string.h>

#include "rs_kernels.h"

#define SORT_THRESHOLD 16 /* libstdc++'s _S_threshold */
#define CHUNK 64

static int before(const rs_ranked *x, const rs_ranked *y) {
    return (isnan(x->value) && !isnan(y->value)) || x->value > y->value;
}

static void swap(rs_ranked *a, rs_ranked *b) {
    const rs_ranked t = *a;
    *a = *b;
    *b = t;
}

static int floor_log2(long n) {
    int k = 0;
    while (n > 1) {
        n >>= 1;
        k++;
    }
    return k;
}

/* ---- heaps (stl_heap.h) */

static void push_heap(rs_ranked *first, long hole, long top, rs_ranked value) {
    long parent = (hole - 1) / 2;
    while (hole > top && before(&first[parent], &value)) {
        first[hole] = first[parent];
        hole = parent;
        parent = (hole - 1) / 2;
    }
    first[hole] = value;
}

static void adjust_heap(rs_ranked *first, long hole, long len, rs_ranked value) {
    const long top = hole;
    long child = hole;
    while (child < (len - 1) / 2) {
        child = 2 * (child + 1);
        if (before(&first[child], &first[child - 1])) child--;
        first[hole] = first[child];
        hole = child;
    }
    if ((len & 1) == 0 && child == (len - 2) / 2) {
        child = 2 * (child + 1);
        first[hole] = first[child - 1];
        hole = child - 1;
    }
    push_heap(first, hole, top, value);
}

/* the heap's top goes to *result, *result's old value into the heap */
static void pop_heap(rs_ranked *first, long len, rs_ranked *result) {
    const rs_ranked value = *result;
    *result = first[0];
    adjust_heap(first, 0, len, value);
}

static void make_heap(rs_ranked *first, long len) {
    if (len < 2) return;
    for (long parent = (len - 2) / 2;; parent--) {
        adjust_heap(first, parent, len, first[parent]);
        if (parent == 0) return;
    }
}

static void sort_heap(rs_ranked *first, long len) {
    while (len > 1) {
        len--;
        pop_heap(first, len, &first[len]);
    }
}

static void heap_select(rs_ranked *first, long middle, long len) {
    make_heap(first, middle);
    for (long i = middle; i < len; i++)
        if (before(&first[i], &first[0])) pop_heap(first, middle, &first[i]);
}

/* ---- sorting and selection (stl_algo.h) */

static void unguarded_linear_insert(rs_ranked *last) {
    const rs_ranked value = *last;
    rs_ranked *next = last - 1;
    while (before(&value, next)) {
        *last = *next;
        last = next;
        next--;
    }
    *last = value;
}

static void insertion_sort(rs_ranked *first, rs_ranked *last) {
    if (first == last) return;
    for (rs_ranked *i = first + 1; i != last; i++) {
        if (before(i, first)) {
            const rs_ranked value = *i;
            memmove(first + 1, first, sizeof(rs_ranked) * (size_t)(i - first));
            *first = value;
        } else {
            unguarded_linear_insert(i);
        }
    }
}

static void move_median_to_first(rs_ranked *result, rs_ranked *a, rs_ranked *b, rs_ranked *c) {
    if (before(a, b)) {
        if (before(b, c)) swap(result, b);
        else if (before(a, c)) swap(result, c);
        else swap(result, a);
    } else if (before(a, c)) {
        swap(result, a);
    } else if (before(b, c)) {
        swap(result, c);
    } else {
        swap(result, b);
    }
}

static rs_ranked *unguarded_partition(rs_ranked *first, rs_ranked *last, const rs_ranked *pivot) {
    for (;;) {
        while (before(first, pivot)) first++;
        last--;
        while (before(pivot, last)) last--;
        if (!(first < last)) return first;
        swap(first, last);
        first++;
    }
}

static rs_ranked *partition_pivot(rs_ranked *first, rs_ranked *last) {
    rs_ranked *mid = first + (last - first) / 2;
    move_median_to_first(first, first + 1, mid, last - 1);
    return unguarded_partition(first + 1, last, first);
}

static void introsort_loop(rs_ranked *first, rs_ranked *last, int depth) {
    while (last - first > SORT_THRESHOLD) {
        if (depth == 0) {
            heap_select(first, last - first, last - first);
            sort_heap(first, last - first);
            return;
        }
        depth--;
        rs_ranked *cut = partition_pivot(first, last);
        introsort_loop(cut, last, depth);
        last = cut;
    }
}

static void std_sort(rs_ranked *first, rs_ranked *last) {
    if (first == last) return;
    introsort_loop(first, last, floor_log2(last - first) * 2);
    if (last - first > SORT_THRESHOLD) {
        insertion_sort(first, first + SORT_THRESHOLD);
        for (rs_ranked *i = first + SORT_THRESHOLD; i != last; i++) unguarded_linear_insert(i);
    } else {
        insertion_sort(first, last);
    }
}

static void nth_element(rs_ranked *first, rs_ranked *nth, rs_ranked *last) {
    if (first == last || nth == last) return;
    int depth = floor_log2(last - first) * 2;
    while (last - first > 3) {
        if (depth == 0) {
            heap_select(first, nth + 1 - first, last - first);
            swap(first, nth);
            return;
        }
        depth--;
        rs_ranked *cut = partition_pivot(first, last);
        if (cut <= nth) first = cut;
        else last = cut;
    }
    insertion_sort(first, last);
}

void rs_topk_stream_start(rs_topk_stream *s, int n, int k, rs_ranked *work) {
    *s = (rs_topk_stream){work, n, k, 0, (long)k * 64 <= n};
}

int rs_topk_stream_ignores(const rs_topk_stream *s, float bound) {
    /* the heap only takes values above its top (NaN would, so it is never ignored) */
    return s->partial && s->count >= s->k && !isnan(bound) && !(bound > s->work[0].value);
}

void rs_topk_stream_offer(rs_topk_stream *s, float value, int index) {
    rs_ranked x = {value, index};
    if (!s->partial || s->count < s->k) {
        s->work[s->count++] = x;
        if (s->partial && s->count == s->k) make_heap(s->work, s->k);
    } else if (before(&x, &s->work[0])) {
        pop_heap(s->work, s->k, &x);
    }
}

void rs_topk_stream_finish(rs_topk_stream *s, rs_ranked *out) {
    if (s->partial) {
        sort_heap(s->work, s->k);
    } else {
        nth_element(s->work, s->work + s->k - 1, s->work + s->count);
        std_sort(s->work, s->work + s->k - 1);
    }
    memcpy(out, s->work, sizeof(rs_ranked) * (size_t)s->k);
}

void rs_torch_topk(const float *values, int n, int k, rs_ranked *work, rs_ranked *out) {
    if ((long)k * 64 <= n) {
        /* std::partial_sort: a heap of the first k, then every later value that beats its
           top replaces it (the later values are read once, so they need no copy) */
        for (int i = 0; i < k; i++) work[i] = (rs_ranked){values[i], i};
        make_heap(work, k);
        for (int i0 = k; i0 < n; i0 += CHUNK) {
            const int i1 = i0 + CHUNK < n ? i0 + CHUNK : n;
            /* a chunk none of whose values beats the top changes nothing */
            if (!(rs_vmax(values + i0, i1 - i0) > work[0].value)) continue;
            for (int i = i0; i < i1; i++) {
                rs_ranked x = {values[i], i};
                if (before(&x, &work[0])) pop_heap(work, k, &x);
            }
        }
        sort_heap(work, k);
    } else {
        for (int i = 0; i < n; i++) work[i] = (rs_ranked){values[i], i};
        nth_element(work, work + k - 1, work + n);
        std_sort(work, work + k - 1);
    }
    memcpy(out, work, sizeof(rs_ranked) * (size_t)k);
}
