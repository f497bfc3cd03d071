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
