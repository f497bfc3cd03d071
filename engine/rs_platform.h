/* What the engine needs from the operating system, on POSIX (Linux, macOS, musl) and on
 * Windows: run-once initialisation, per-thread storage with a destructor, threads,
 * mutexes, condition variables, atomic ints, aligned memory, and giving back the resident pages of a memory-mapped weight that
 * has been repacked. POSIX maps them onto pthreads, posix_memalign and madvise; Windows
 * onto InitOnce, fiber-local storage, CreateThread, _aligned_malloc and VirtualUnlock
 * (rs_platform.c). Nothing else in the engine includes an OS header. */
#ifndef RS_PLATFORM_H
#define RS_PLATFORM_H

#include <stddef.h>

#if defined(_WIN32)
typedef struct { void *opaque; } rs_once;   /* an INIT_ONCE */
#define RS_ONCE_INIT {0}
typedef unsigned long rs_tls_key;           /* a fiber-local storage index */
typedef struct {
    void *handle;
    void *(*fn)(void *);
    void *arg;
} rs_thread;
typedef struct { void *opaque; } rs_mutex; /* an SRWLOCK */
typedef struct { void *opaque; } rs_cond;  /* a CONDITION_VARIABLE */
#else
#include <pthread.h>
typedef pthread_once_t rs_once;
#define RS_ONCE_INIT PTHREAD_ONCE_INIT
typedef pthread_key_t rs_tls_key;
typedef struct { pthread_t handle; } rs_thread;
typedef pthread_mutex_t rs_mutex;
typedef pthread_cond_t rs_cond;
#endif

/* Runs fn exactly once per `once`, however many threads call at the same time. */
void rs_call_once(rs_once *once, void (*fn)(void));

/* A per-thread pointer; `destructor` runs at thread exit on a non-NULL value (also for
 * threads the engine did not start). Non-zero return: failed. */
int rs_tls_create(rs_tls_key *key, void (*destructor)(void *));
void *rs_tls_get(rs_tls_key key);
int rs_tls_set(rs_tls_key key, void *value);

/* Starts fn(arg) on a new thread; non-zero when it could not be started. `t` must stay
 * in place until rs_thread_join. */
int rs_thread_start(rs_thread *t, void *(*fn)(void *), void *arg);
void rs_thread_join(rs_thread *t);

/* A mutex and a condition variable (for the worker pool, rs_pool.c). init returns non-zero
 * when it failed. rs_cond_wait may wake spuriously: callers wait in a loop. */
int rs_mutex_init(rs_mutex *m);
void rs_mutex_destroy(rs_mutex *m);
void rs_mutex_lock(rs_mutex *m);
void rs_mutex_unlock(rs_mutex *m);
int rs_cond_init(rs_cond *c);
void rs_cond_destroy(rs_cond *c);
void rs_cond_wait(rs_cond *c, rs_mutex *m);
void rs_cond_signal(rs_cond *c);
void rs_cond_broadcast(rs_cond *c);

/* Sequentially consistent operations on an int shared between threads. rs_atomic_add
 * returns the new value; rs_atomic_cas swaps in `desired` if *p == expected and returns
 * whether it did. rs_cpu_relax: a pause instruction inside a spin-wait loop. */
int rs_atomic_load(const volatile int *p);
void rs_atomic_store(volatile int *p, int value);
int rs_atomic_add(volatile int *p, int delta);
int rs_atomic_cas(volatile int *p, int expected, int desired);
void rs_cpu_relax(void);

/* `size` bytes aligned to `alignment` (a power of two, at least sizeof(void *)); NULL when
 * out of memory. Free only with rs_aligned_free. */
void *rs_aligned_alloc(size_t alignment, size_t size);
void rs_aligned_free(void *p);

/* The whole pages inside [start, start + nbytes) of a read-only file mapping are not
 * needed any more: let the OS drop them from this process's resident memory (they are
 * read back from the file if touched again). */
void rs_release_pages(const void *start, size_t nbytes);

#endif
