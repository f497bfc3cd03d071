/* Memory a thread keeps between engine calls, in one per-thread record freed when the
 * thread ends (rs_thread_memory.c, through the platform layer's per-thread storage, which
 * allows the engine one destructor):
 *
 * - the matrix kernels' scratch buffer (rs_gemm_scratch.h);
 * - a cache of freed call buffers. rs_block_alloc / rs_block_calloc / rs_block_free stand
 *   for malloc / calloc / free for the buffers a call allocates and frees before it returns
 *   (the decoder's state and scratch, the searches' arrays). A freed block is kept by the
 *   thread that frees it, filed by size class, and the next call of the same shape takes
 *   it back: no allocator call, and no fresh pages from the OS -- glibc hands freed memory
 *   above its trim and mmap thresholds back to the OS, so every call of a batch's size
 *   page-faulted the same megabytes in again. Bounded: a block above RS_BLOCK_KEEP_MAX
 *   bytes is not kept, nor more than RS_BLOCK_KEEP_TOTAL bytes per thread.
 *
 * A block may be freed by another thread than the one that allocated it, but only with
 * rs_block_free (it carries a header); results handed to the caller stay on malloc. */
#ifndef RS_THREAD_MEMORY_H
#define RS_THREAD_MEMORY_H

#include <stddef.h>

#define RS_BLOCK_KEEP_MAX ((size_t)16 << 20)
#define RS_BLOCK_KEEP_TOTAL ((size_t)32 << 20)

/* Like malloc (contents undefined) and calloc (zeroed; NULL when count x size overflows);
 * NULL when out of memory. */
void *rs_block_alloc(size_t size);
void *rs_block_calloc(size_t count, size_t size);
/* Like free: NULL is allowed. */
void rs_block_free(void *block);

/* For tests: the bytes this thread's cache holds now; and, when on (process-wide), every
 * block rs_block_alloc hands out is first filled with 0xFF bytes (NaN floats, -1 ints), so
 * that a buffer read before it is written cannot go unnoticed. */
size_t rs_block_cached_bytes(void);
void rs_block_poison(int on);

#endif
