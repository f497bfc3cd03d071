/* rs_workers.h: a caller publishes a job (function, argument, parts) under the pool's
 * mutex and bumps the generation. Workers notice the new generation (spinning for a short
 * while, then asleep on a condition variable) and, like the caller itself, claim the job's
 * parts one at a time under the mutex until none is left. Nobody waits for a worker that
 * has not started: a part no worker claimed in time is run by the caller, so a busy
 * machine (a worker not scheduled) costs no more than running the parts alone. The caller
 * returns when every part has finished; a part is only claimed while its job's generation
 * is current, so a late worker never runs a part of a job that has ended. */
#include "rs_workers.h"

#include <stdlib.h>

#include "rs_platform.h"

/* Spin-wait rounds before sleeping: long enough to cover the gap between two products of
 * one decoding step (a log-softmax, a top-k, the attention), short enough that an idle
 * pool leaves the cores to others within about a millisecond. */
#define SPIN_ROUNDS 20000

typedef struct {
    struct rs_workers *pool;
    int first_seen;     /* the generation when it started */
    rs_thread thread;
} worker;

struct rs_workers {
    rs_mutex lock;
    rs_cond wake;       /* workers sleep here for a new generation */
    rs_cond done;       /* the caller sleeps here for the last part */
    volatile int generation, finished, busy;
    int stop, sleepers, workers;   /* under lock */
    rs_workers_fn fn;              /* the job, under lock */
    void *arg;
    int parts, next;
    worker worker[RS_WORKERS_MAX_THREADS - 1];
};

/* The next unclaimed part of job `generation`, or -1 (none left, or the job has ended). */
static int claim(rs_workers *p, int generation, rs_workers_fn *fn, void **arg, int *parts) {
    int part = -1;
    rs_mutex_lock(&p->lock);
    if (rs_atomic_load(&p->generation) == generation && p->next < p->parts) {
        part = p->next++;
        *fn = p->fn;
        *arg = p->arg;
        *parts = p->parts;
    }
    rs_mutex_unlock(&p->lock);
    return part;
}

/* Parts run by workers since the process started (rs_workers_parts_on_workers). */
static volatile int parts_on_workers = 0;

int rs_workers_parts_on_workers(void) { return rs_atomic_load(&parts_on_workers); }

/* Run the parts of job `generation` this thread can claim. */
static void run_parts(rs_workers *p, int generation, int on_worker) {
    rs_workers_fn fn;
    void *arg;
    int part, parts;
    while ((part = claim(p, generation, &fn, &arg, &parts)) >= 0) {
        fn(arg, part, parts);
        if (on_worker) rs_atomic_add(&parts_on_workers, 1);
        if (rs_atomic_add(&p->finished, 1) == parts) {
            rs_mutex_lock(&p->lock);   /* the caller checks `finished` under the lock */
            rs_cond_signal(&p->done);
            rs_mutex_unlock(&p->lock);
        }
    }
}

static void *worker_main(void *arg) {
    worker *self = arg;
    rs_workers *p = self->pool;
    int seen = self->first_seen;
    for (;;) {
        for (int spin = 0; spin < SPIN_ROUNDS && rs_atomic_load(&p->generation) == seen; spin++)
            rs_cpu_relax();
        rs_mutex_lock(&p->lock);
        if (rs_atomic_load(&p->generation) == seen && !p->stop) {
            p->sleepers++;
            while (rs_atomic_load(&p->generation) == seen && !p->stop) rs_cond_wait(&p->wake, &p->lock);
            p->sleepers--;
        }
        const int stop = p->stop;
        seen = rs_atomic_load(&p->generation);
        rs_mutex_unlock(&p->lock);
        if (stop) return NULL;
        run_parts(p, seen, 1);
    }
}

rs_workers *rs_workers_create(void) {
    rs_workers *p = calloc(1, sizeof(rs_workers));
    if (!p) return NULL;
    if (rs_mutex_init(&p->lock)) { free(p); return NULL; }
    if (rs_cond_init(&p->wake)) { rs_mutex_destroy(&p->lock); free(p); return NULL; }
    if (rs_cond_init(&p->done)) {
        rs_cond_destroy(&p->wake);
        rs_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    return p;
}

int rs_workers_reserve(rs_workers *p, int threads) {
    if (threads > RS_WORKERS_MAX_THREADS) threads = RS_WORKERS_MAX_THREADS;
    rs_mutex_lock(&p->lock);
    while (p->workers < threads - 1) {
        worker *w = &p->worker[p->workers];
        w->pool = p;
        w->first_seen = rs_atomic_load(&p->generation);
        if (rs_thread_start(&w->thread, worker_main, w)) break;
        p->workers++;
    }
    const int have = p->workers + 1;
    rs_mutex_unlock(&p->lock);
    return have;
}

void rs_workers_destroy(rs_workers *p) {
    if (!p) return;
    rs_mutex_lock(&p->lock);
    p->stop = 1;
    rs_atomic_add(&p->generation, 1);
    rs_cond_broadcast(&p->wake);
    const int workers = p->workers;
    rs_mutex_unlock(&p->lock);
    for (int i = 0; i < workers; i++) rs_thread_join(&p->worker[i].thread);
    rs_cond_destroy(&p->done);
    rs_cond_destroy(&p->wake);
    rs_mutex_destroy(&p->lock);
    free(p);
}

int rs_workers_run(rs_workers *p, int parts, rs_workers_fn fn, void *arg) {
    if (parts < 1 || !rs_atomic_cas(&p->busy, 0, 1)) return 0;
    rs_mutex_lock(&p->lock);
    p->fn = fn;
    p->arg = arg;
    p->parts = parts;
    p->next = 0;
    rs_atomic_store(&p->finished, 0);
    const int generation = rs_atomic_add(&p->generation, 1);
    if (p->sleepers) rs_cond_broadcast(&p->wake);
    rs_mutex_unlock(&p->lock);
    run_parts(p, generation, 0);
    /* every part is claimed: wait for those still running on workers */
    for (int spin = 0; spin < SPIN_ROUNDS && rs_atomic_load(&p->finished) < parts; spin++)
        rs_cpu_relax();
    if (rs_atomic_load(&p->finished) < parts) {
        rs_mutex_lock(&p->lock);
        while (rs_atomic_load(&p->finished) < parts) rs_cond_wait(&p->done, &p->lock);
        rs_mutex_unlock(&p->lock);
    }
    rs_atomic_store(&p->busy, 0);
    return parts;
}

static _Thread_local rs_workers *bound_pool = NULL;
static _Thread_local int bound_threads = 1;

void rs_workers_bind(rs_workers *p, int threads) {
    bound_pool = p;
    bound_threads = p && threads > 1 ? threads : 1;
}

rs_workers *rs_workers_bound(int *threads) {
    *threads = bound_threads;
    return bound_pool;
}
