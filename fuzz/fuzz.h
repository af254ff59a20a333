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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
              #cond);                                                      \
      abort();                                                             \
    }                                                                      \
  } while (0)

#endif
