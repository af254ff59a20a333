/* Allocation counting (see alloc.h). */
#include "config.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tools/bench/alloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define BENCH_SANITIZER_ALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BENCH_SANITIZER_ALLOC 1
#endif
#endif

/* Relaxed atomics: the libuv thread pool may allocate concurrently. */
static uint64_t allocs;

static void count_one(void) {
  __atomic_fetch_add(&allocs, 1, __ATOMIC_RELAXED);
}

uint64_t bench_alloc_count(void) {
  return __atomic_load_n(&allocs, __ATOMIC_RELAXED);
}

#ifdef BENCH_SANITIZER_ALLOC
/* The sanitizer allocator's interface (<sanitizer/allocator_interface.h>,
 * not installed with every compiler). */
extern int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void *, size_t),
    void (*free_hook)(const volatile void *));
extern size_t __sanitizer_get_current_allocated_bytes(void);

static void on_malloc(const volatile void *p, size_t size) {
  (void)p;
  (void)size;
  count_one();
}

static void on_free(const volatile void *p) {
  (void)p;
}

__attribute__((constructor)) static void install_hooks(void) {
  __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}

int64_t bench_heap_in_use(void) {
  return (int64_t)__sanitizer_get_current_allocated_bytes();
}

#else
/* glibc's real allocator entry points. */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);

/* Default visibility: the tree builds with -fvisibility=hidden, and a hidden
 * definition would not interpose on the shared libraries' calls. */
#define BENCH_EXPORT __attribute__((visibility("default")))

BENCH_EXPORT void *malloc(size_t n) {
  count_one();
  return __libc_malloc(n);
}

BENCH_EXPORT void *calloc(size_t n, size_t size) {
  count_one();
  return __libc_calloc(n, size);
}

BENCH_EXPORT void *realloc(void *p, size_t n) {
  count_one();
  return __libc_realloc(p, n);
}

int64_t bench_heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return (int64_t)(mi.uordblks + mi.hblkhd);
}
#endif

int64_t bench_rss(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size, resident;
  int n;

  if (f == NULL) return -1;
  n = fscanf(f, "%ld %ld", &size, &resident);
  fclose(f);
  if (n != 2) return -1;
  return (int64_t)resident * sysconf(_SC_PAGESIZE);
}
