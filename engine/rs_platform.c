/* rs_platform.h for POSIX and for Windows. */
#include "rs_platform.h"

#include <stdint.h>
#include <stdlib.h>

#if defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#include <malloc.h>
#include <windows.h>

static BOOL CALLBACK run_once(PINIT_ONCE once, PVOID fn, PVOID *context) {
    (void)once; (void)context;
    ((void (*)(void))fn)();
    return TRUE;
}

void rs_call_once(rs_once *once, void (*fn)(void)) {
    InitOnceExecuteOnce((PINIT_ONCE)once, run_once, (PVOID)fn, NULL);
}

/* FlsAlloc's callback runs at thread exit like a pthread key destructor; it has the
 * WINAPI calling convention, so the destructor (one per process: the engine makes one
 * key) is called through it. */
static void (*tls_destructor)(void *);
static VOID WINAPI run_tls_destructor(PVOID value) {
    if (value && tls_destructor) tls_destructor(value);
}

int rs_tls_create(rs_tls_key *key, void (*destructor)(void *)) {
    tls_destructor = destructor;
    DWORD index = FlsAlloc(destructor ? run_tls_destructor : NULL);
    if (index == FLS_OUT_OF_INDEXES) return 1;
    *key = index;
    return 0;
}

void *rs_tls_get(rs_tls_key key) { return FlsGetValue((DWORD)key); }
int rs_tls_set(rs_tls_key key, void *value) { return FlsSetValue((DWORD)key, value) ? 0 : 1; }

static DWORD WINAPI run_thread(LPVOID arg) {
    rs_thread *t = arg;
    t->fn(t->arg);
    return 0;
}

int rs_thread_start(rs_thread *t, void *(*fn)(void *), void *arg) {
    t->fn = fn;
    t->arg = arg;
    t->handle = CreateThread(NULL, 0, run_thread, t, 0, NULL);
    return t->handle ? 0 : 1;
}

void rs_thread_join(rs_thread *t) {
    WaitForSingleObject((HANDLE)t->handle, INFINITE);
    CloseHandle((HANDLE)t->handle);
}

int rs_mutex_init(rs_mutex *m) { InitializeSRWLock((PSRWLOCK)m); return 0; }
void rs_mutex_destroy(rs_mutex *m) { (void)m; }
void rs_mutex_lock(rs_mutex *m) { AcquireSRWLockExclusive((PSRWLOCK)m); }
void rs_mutex_unlock(rs_mutex *m) { ReleaseSRWLockExclusive((PSRWLOCK)m); }
int rs_cond_init(rs_cond *c) { InitializeConditionVariable((PCONDITION_VARIABLE)c); return 0; }
void rs_cond_destroy(rs_cond *c) { (void)c; }
void rs_cond_wait(rs_cond *c, rs_mutex *m) {
    SleepConditionVariableSRW((PCONDITION_VARIABLE)c, (PSRWLOCK)m, INFINITE, 0);
}
void rs_cond_signal(rs_cond *c) { WakeConditionVariable((PCONDITION_VARIABLE)c); }
void rs_cond_broadcast(rs_cond *c) { WakeAllConditionVariable((PCONDITION_VARIABLE)c); }

/* The Interlocked functions are full barriers; a plain load is not, hence the no-op
 * exchange-add for rs_atomic_load. */
int rs_atomic_load(const volatile int *p) { return (int)InterlockedExchangeAdd((volatile LONG *)p, 0); }
void rs_atomic_store(volatile int *p, int value) { InterlockedExchange((volatile LONG *)p, value); }
int rs_atomic_add(volatile int *p, int delta) { return (int)InterlockedExchangeAdd((volatile LONG *)p, delta) + delta; }
int rs_atomic_cas(volatile int *p, int expected, int desired) {
    return (int)InterlockedCompareExchange((volatile LONG *)p, desired, expected) == expected;
}
void rs_cpu_relax(void) { YieldProcessor(); }

void *rs_aligned_alloc(size_t alignment, size_t size) {
    return _aligned_malloc(size ? size : 1, alignment);
}

void rs_aligned_free(void *p) { _aligned_free(p); }

/* VirtualUnlock on pages that are not locked removes them from the working set (its
 * documented side effect; it then reports ERROR_NOT_LOCKED, which is expected). */
void rs_release_pages(const void *start, size_t nbytes) {
    SYSTEM_INFO info;
    GetSystemInfo(&info);
    const uintptr_t page = info.dwPageSize;
    const uintptr_t begin = ((uintptr_t)start + page - 1) / page * page;
    const uintptr_t end = ((uintptr_t)start + nbytes) / page * page;
    if (end > begin) VirtualUnlock((LPVOID)begin, (SIZE_T)(end - begin));
}

#else
#include <sys/mman.h>
#include <unistd.h>

void rs_call_once(rs_once *once, void (*fn)(void)) { pthread_once(once, fn); }

int rs_tls_create(rs_tls_key *key, void (*destructor)(void *)) {
    return pthread_key_create(key, destructor) != 0;
}

void *rs_tls_get(rs_tls_key key) { return pthread_getspecific(key); }
int rs_tls_set(rs_tls_key key, void *value) { return pthread_setspecific(key, value) != 0; }

int rs_thread_start(rs_thread *t, void *(*fn)(void *), void *arg) {
    return pthread_create(&t->handle, NULL, fn, arg) != 0;
}

void rs_thread_join(rs_thread *t) { pthread_join(t->handle, NULL); }

int rs_mutex_init(rs_mutex *m) { return pthread_mutex_init(m, NULL) != 0; }
void rs_mutex_destroy(rs_mutex *m) { pthread_mutex_destroy(m); }
void rs_mutex_lock(rs_mutex *m) { pthread_mutex_lock(m); }
void rs_mutex_unlock(rs_mutex *m) { pthread_mutex_unlock(m); }
int rs_cond_init(rs_cond *c) { return pthread_cond_init(c, NULL) != 0; }
void rs_cond_destroy(rs_cond *c) { pthread_cond_destroy(c); }
void rs_cond_wait(rs_cond *c, rs_mutex *m) { pthread_cond_wait(c, m); }
void rs_cond_signal(rs_cond *c) { pthread_cond_signal(c); }
void rs_cond_broadcast(rs_cond *c) { pthread_cond_broadcast(c); }

int rs_atomic_load(const volatile int *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
void rs_atomic_store(volatile int *p, int value) { __atomic_store_n(p, value, __ATOMIC_SEQ_CST); }
int rs_atomic_add(volatile int *p, int delta) { return __atomic_add_fetch(p, delta, __ATOMIC_SEQ_CST); }
int rs_atomic_cas(volatile int *p, int expected, int desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

void rs_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* posix_memalign rather than C11 aligned_alloc: macOS has it only from 10.15 on, and it
 * needs no size rounding. */
void *rs_aligned_alloc(size_t alignment, size_t size) {
    void *p = NULL;
    return posix_memalign(&p, alignment, size ? size : 1) == 0 ? p : NULL;
}

void rs_aligned_free(void *p) { free(p); }

void rs_release_pages(const void *start, size_t nbytes) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t begin = ((uintptr_t)start + page - 1) / page * page;
    const uintptr_t end = ((uintptr_t)start + nbytes) / page * page;
    if (end > begin) madvise((void *)begin, end - begin, MADV_DONTNEED);
}
#endif
