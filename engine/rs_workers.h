/* A persistent pool of worker threads for splitting one product across cores (used when a
 * call has fewer sentences than intra_threads: rs_search.c, rs_split.c).
 *
 * One pool belongs to one loaded model (the Python Engine creates it on first need and
 * destroys it with the model). Its workers wait for work, spinning briefly and then
 * sleeping, and are joined by rs_workers_destroy. One caller at a time runs work on it: a
 * caller that finds the pool busy (another Python thread decoding with the same model)
 * runs its work alone, which gives the same bits, since every split is by output rows.
 * Any thread may run any part: the caller runs the parts no worker has claimed yet. */
#ifndef RS_WORKERS_H
#define RS_WORKERS_H

/* The most threads a pool runs (the caller and RS_WORKERS_MAX_THREADS - 1 workers). */
#define RS_WORKERS_MAX_THREADS 64

typedef struct rs_workers rs_workers;

/* A pool with no workers yet; NULL when out of memory. */
rs_workers *rs_workers_create(void);

/* Start workers until the pool can run `threads` parts at once (at most
 * RS_WORKERS_MAX_THREADS). Returns the parts it can run now (fewer if a thread could not be
 * started). Safe while another thread runs work on the pool; not to be called from two
 * threads at once (the Python wrapper calls it holding the GIL). */
int rs_workers_reserve(rs_workers *p, int threads);

/* Stop and join every worker and free the pool. Nothing may be using it. NULL: no-op. */
void rs_workers_destroy(rs_workers *p);

/* Part `part` of `parts` of a job; runs on a worker or on the caller. */
typedef void (*rs_workers_fn)(void *arg, int part, int parts);

/* Runs fn(arg, i, parts) for every i < parts, on the calling thread and on whichever
 * workers claim a part first, and returns parts once all have returned. Returns 0 and
 * runs nothing when the pool is busy with another caller. */
int rs_workers_run(rs_workers *p, int parts, rs_workers_fn fn, void *arg);

/* How many parts worker threads (not callers) have run since the process started, over
 * every pool: for tests and benchmarks, which check that the work really was shared. */
int rs_workers_parts_on_workers(void);

/* The pool this thread's products may split over, and into how many parts (rs_split.c):
 * bound around a decode by rs_search.c; rs_workers_bind(NULL, 1) unbinds. */
void rs_workers_bind(rs_workers *p, int threads);
rs_workers *rs_workers_bound(int *threads);

#endif
