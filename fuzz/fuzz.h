/* The one entry point every fuzz target defines.  libFuzzer calls it with
 * -fsanitize=fuzzer; fuzz/replay.c calls it for `make check` with any
 * compiler.  A target reports a broken invariant by aborting (FUZZ_CHECK), as
 * libFuzzer expects of a crash. */
#ifndef HCSB_FUZZ_H
#define HCSB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
              #cond);                                                      \
      abort();                                                             \
    }                                                                      \
  } while (0)

/* A fuzz input read as a stream of values, for the targets that drive a
 * sequence of operations from it (vsockd, vhost).  Past the end every read
 * gives zeros, so a target never checks how much is left before reading. */
typedef struct fuzz_in_s {
  const uint8_t *p;
  size_t n;
} fuzz_in_t;

static inline uint8_t fuzz_u8(fuzz_in_t *in) {
  if (in->n == 0) return 0;
  in->n--;
  return *in->p++;
}

/* `bytes` (at most 8) bytes, little-endian. */
static inline uint64_t fuzz_uN(fuzz_in_t *in, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v |= (uint64_t)fuzz_u8(in) << (8 * i);
  return v;
}

/* The next `n` bytes into dst, zero-filled past the end. */
static inline void fuzz_take(fuzz_in_t *in, uint8_t *dst, size_t n) {
  size_t k = n < in->n ? n : in->n;
  memcpy(dst, in->p, k);
  memset(dst + k, 0, n - k);
  in->p += k;
  in->n -= k;
}

#endif
