/* Latency histogram and clock shared by the benchmark programs.
 *
 * Log-linear buckets (128 per power of two, < 0.8% error) in a fixed array:
 * recording never allocates, so it cannot disturb the allocation count of
 * the client being measured, and costs the same in every client. */
#ifndef HCSB_BENCH_HIST_H
#define HCSB_BENCH_HIST_H

#include <stdint.h>
#include <time.h>

#define BENCH_HIST_SUB_BITS 7
#define BENCH_HIST_SUB (1u << BENCH_HIST_SUB_BITS)
/* Values up to 2^40 ns (18 minutes); larger ones land in the last bucket. */
#define BENCH_HIST_MAX_BITS 40
#define BENCH_HIST_BUCKETS \
  ((BENCH_HIST_MAX_BITS - BENCH_HIST_SUB_BITS + 1) * BENCH_HIST_SUB)

typedef struct bench_hist_s {
  uint64_t count;
  uint64_t counts[BENCH_HIST_BUCKETS];
} bench_hist_t;

static inline uint64_t bench_now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_hist_reset(bench_hist_t *h);
void bench_hist_add(bench_hist_t *h, uint64_t ns);
/* The value at quantile q (0..1), in nanoseconds: the middle of its bucket.
 * 0 when nothing was recorded. */
double bench_hist_quantile(const bench_hist_t *h, double q);

#endif
