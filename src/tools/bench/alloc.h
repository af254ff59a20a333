/* Heap accounting for the benchmark programs, with no external tool.
 *
 * Normal builds interpose malloc/calloc/realloc in the executable (glibc
 * routes every caller, shared libraries included, to the executable's
 * definition) and forward to glibc's own entry points.  Sanitizer builds use
 * the sanitizer allocator's hooks instead, since ASan owns malloc there. */
#ifndef HCSB_BENCH_ALLOC_H
#define HCSB_BENCH_ALLOC_H

#include <stdint.h>

/* Allocation calls (malloc, calloc, realloc) made so far by the process. */
uint64_t bench_alloc_count(void);
/* Heap bytes in use now (glibc mallinfo2, or the sanitizer allocator's
 * count), or -1 when unknown. */
int64_t bench_heap_in_use(void);
/* Resident set size in bytes from /proc/self/statm, or -1. */
int64_t bench_rss(void);

#endif
