/* Log-linear latency histogram (see hist.h). */
#include "config.h"

#include <string.h>

#include "tools/bench/hist.h"

void bench_hist_reset(bench_hist_t *h) {
  memset(h, 0, sizeof(*h));
}

static unsigned bucket_of(uint64_t v) {
  unsigned msb, shift;

  if (v < BENCH_HIST_SUB) return (unsigned)v;
  msb = 63u - (unsigned)__builtin_clzll(v);
  if (msb >= BENCH_HIST_MAX_BITS) return BENCH_HIST_BUCKETS - 1;
  /* v >> shift lies in [SUB, 2*SUB): that is the sub-bucket, offset by the
   * range's first index. */
  shift = msb - BENCH_HIST_SUB_BITS;
  return (shift + 1) * BENCH_HIST_SUB + (unsigned)(v >> shift) - BENCH_HIST_SUB;
}

static double bucket_mid(unsigned b) {
  unsigned range = b / BENCH_HIST_SUB, sub = b % BENCH_HIST_SUB;
  double width, low;

  if (range == 0) return (double)sub;
  width = (double)(1ull << (range - 1));
  low = (double)(BENCH_HIST_SUB + sub) * width;
  return low + width / 2;
}

void bench_hist_add(bench_hist_t *h, uint64_t ns) {
  h->counts[bucket_of(ns)]++;
  h->count++;
}

double bench_hist_quantile(const bench_hist_t *h, double q) {
  uint64_t rank, seen = 0;
  unsigned b;

  if (h->count == 0) return 0;
  /* The smallest value with at least q of the samples at or below it. */
  rank = (uint64_t)(q * (double)h->count + 0.5);
  if (rank < 1) rank = 1;
  if (rank > h->count) rank = h->count;
  for (b = 0; b < BENCH_HIST_BUCKETS; b++) {
    seen += h->counts[b];
    if (seen >= rank) return bucket_mid(b);
  }
  return bucket_mid(BENCH_HIST_BUCKETS - 1);
}
