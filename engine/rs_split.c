/* rs_split.h. Each part of a split product is a view of some of L's output rows: the same
 * weights, from a later row on (whole 16-output panels, so the packed and int8 layouts
 * stay aligned and every kernel sees the layout it expects). A row's dot product does not
 * depend on which other outputs share its call (rs_gemm.h, rs_gemm_int8.c), so the split
 * changes no bit. Every weight field of rs_linear must be offset here. */
#include "rs_split.h"

#include "rs_gemm_int8.h"
#include "rs_workers.h"

#include "rs_platform.h"

/* Products smaller than this many multiply-adds per part are not split: waking a worker
 * costs about as much as a product of this size at batch 1. */
#define MIN_PART_MACS (64 * 1024)
#define PANEL 16

static volatile int min_part_macs = MIN_PART_MACS;
static volatile int products_split = 0;

int rs_split_set_min_macs(int macs) {
    const int old = rs_atomic_load(&min_part_macs);
    if (macs >= 1) rs_atomic_store(&min_part_macs, macs);
    return old;
}

int rs_split_count(void) { return rs_atomic_load(&products_split); }

static void view_one(const rs_linear *L, int o0, int o1, rs_linear *v) {
    const size_t skip = (size_t)o0 * L->in;
    *v = *L;
    v->out = o1 - o0;
    if (L->w) v->w = L->w + skip;
    if (L->b) v->b = L->b + o0;
    if (L->packed) v->packed = L->packed + skip; /* 16-output panels: o0 rows of `in` floats */
    if (L->wq) v->wq = L->wq + skip;
    if (L->wq_scale) v->wq_scale = L->wq_scale + o0;
    if (L->qweight) v->qweight = L->qweight + (size_t)o0 * rs_int8_row_bytes(L->in);
    if (L->qscale) v->qscale = L->qscale + o0;
    if (L->qsum) v->qsum = L->qsum + o0;
    /* bfloat16 panels of 16 outputs by input pairs (rs_gemm_bf16.c): o0 rows of the even
       input count */
    if (L->bf16) v->bf16 = L->bf16 + (size_t)o0 * ((L->in + 1) & ~1);
}

void rs_linear_rows_view(const rs_linear *L, int o0, int o1, rs_linear *view, rs_linear *parts) {
    view_one(L, o0, o1, view);
    if (!L->qparts) return;
    /* as rs_gemm_int8 walks them: parts until their inputs cover L's */
    for (int k = 0, c0 = 0; c0 < L->in && k <= RS_MAX_QSPLITS; c0 += L->qparts[k].in, k++)
        view_one(&L->qparts[k], o0, o1, &parts[k]);
    view->qweight = parts[0].qweight;   /* marks the view as quantized, as in L */
    view->qparts = parts;
}

typedef struct {
    rs_linear_serial_fn serial;
    const rs_linear *L;
    int rows, xs, ys, accumulate, panels;
    const float *x;
    float *y;
    int failed[RS_WORKERS_MAX_THREADS];
} split_job;

static void run_part(void *arg, int part, int parts) {
    split_job *j = arg;
    const int p0 = (int)((long long)j->panels * part / parts);
    const int p1 = (int)((long long)j->panels * (part + 1) / parts);
    const int o0 = p0 * PANEL, o1 = p1 * PANEL < j->L->out ? p1 * PANEL : j->L->out;
    j->failed[part] = 0;
    if (o0 >= o1) return;
    rs_linear view, qparts[RS_MAX_QSPLITS + 1];
    rs_linear_rows_view(j->L, o0, o1, &view, qparts);
    j->failed[part] = j->serial(&view, j->rows, j->x, j->xs, j->y + o0, j->ys, j->accumulate);
}

int rs_split_linear(rs_linear_serial_fn serial, const rs_linear *L, int rows, const float *x,
                    int xs, float *y, int ys, int accumulate, int *failed) {
    int threads;
    rs_workers *pool = rs_workers_bound(&threads);
    if (!pool || threads < 2) return 0;
    const int panels = (L->out + PANEL - 1) / PANEL;
    const double macs = (double)rows * L->out * L->in, min_macs = rs_atomic_load(&min_part_macs);
    int parts = threads < panels ? threads : panels;
    if (parts > RS_WORKERS_MAX_THREADS) parts = RS_WORKERS_MAX_THREADS;
    while (parts > 1 && macs / parts < min_macs) parts--;
    if (parts < 2) return 0;
    split_job job = {serial, L, rows, xs, ys, accumulate, panels, x, y, {0}};
    const int ran = rs_workers_run(pool, parts, run_part, &job);
    if (ran == 0) return 0;   /* the pool is busy with another call: compute it here */
    if (ran > 1) rs_atomic_add(&products_split, 1);
    *failed = 0;
    for (int i = 0; i < ran; i++) *failed |= job.failed[i];
    return 1;
}
