/* Minimal test harness shared by every test binary.
 *
 * Each test runs in a forked child with a time limit, so a crash, a hang or
 * an abort in one test is reported as that test's failure and the others
 * still run.  HCSB_TEST_NOFORK=1 runs tests in-process (for gdb).
 * The binary ends with a plain "N passed, N failed" line and exits non-zero
 * when anything failed.  Arguments select tests by substring.
 */
#ifndef HCSB_TEST_RUNNER_H
#define HCSB_TEST_RUNNER_H

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*hcsb_test_fn)(void);

typedef struct hcsb_test_s {
  const char *name;
  hcsb_test_fn fn;
  unsigned timeout_s; /* 0 = default (30 s) */
} hcsb_test_t;

#define TEST_ENTRY(name) \
  { #name, test_##name, 0 }
#define TEST_ENTRY_T(name, secs) \
  { #name, test_##name, secs }

int hcsb_test_main(int argc, char **argv, const hcsb_test_t *tests, size_t n);

/* Path of a file under test/data in the source tree (e.g.
 * "transcripts/raw/01_negotiate.gcs-to-host.bin"). */
const char *hcsb_test_data_path(const char *rel);
/* The whole file at `path`, NUL-terminated (*len excludes the NUL); the
 * test fails when it cannot be read.  free() it. */
uint8_t *hcsb_test_read_file(const char *path, size_t *len);
/* Path of a built program (e.g. "src/hcsb-guest") in the build tree. */
const char *hcsb_test_build_path(const char *rel);
/* A fresh private temporary directory (removed by the harness afterwards). */
const char *hcsb_test_tmpdir(void);
/* What every deadline of a test is multiplied by: HCSB_TEST_TIMEOUT_SCALE
 * when it is above 1 (valgrind runs everything many times slower), else
 * 1.  The harness scales each test's own time limit by it too. */
unsigned hcsb_test_timeout_scale(void);

/* A small deterministic generator (xorshift64): generated cases are the
 * same every run.  `*state` is the caller's seed, never 0. */
static inline uint64_t hcsb_test_xorshift(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *state = x;
}
/* CLOCK_MONOTONIC in milliseconds, for deadlines and timings. */
double hcsb_test_now_ms(void);

void hcsb_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) hcsb_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); \
  } while (0)

#define CHECK_INT(a, op, b)                                                  \
  do {                                                                       \
    long long hcsb_a_ = (long long)(a), hcsb_b_ = (long long)(b);            \
    if (!(hcsb_a_ op hcsb_b_))                                               \
      hcsb_test_fail(__FILE__, __LINE__, "%s %s %s (%lld vs %lld)", #a, #op, \
                     #b, hcsb_a_, hcsb_b_);                                  \
  } while (0)
#define CHECK_EQ(a, b) CHECK_INT(a, ==, b)

#define CHECK_U64(a, b)                                                   \
  do {                                                                    \
    uint64_t hcsb_a_ = (uint64_t)(a), hcsb_b_ = (uint64_t)(b);            \
    if (hcsb_a_ != hcsb_b_)                                               \
      hcsb_test_fail(__FILE__, __LINE__,                                  \
                     "%s == %s (0x%" PRIx64 " vs 0x%" PRIx64 ")", #a, #b, \
                     hcsb_a_, hcsb_b_);                                   \
  } while (0)

#define CHECK_STR(a, b)                                                      \
  do {                                                                       \
    const char *hcsb_a_ = (a), *hcsb_b_ = (b);                               \
    if (hcsb_a_ == NULL || hcsb_b_ == NULL || strcmp(hcsb_a_, hcsb_b_) != 0) \
      hcsb_test_fail(__FILE__, __LINE__, "%s == %s (\"%s\" vs \"%s\")", #a,  \
                     #b, hcsb_a_ ? hcsb_a_ : "(null)",                       \
                     hcsb_b_ ? hcsb_b_ : "(null)");                          \
  } while (0)

#define CHECK_MEM(a, b, n)                                                  \
  do {                                                                      \
    if (memcmp((a), (b), (n)) != 0)                                         \
      hcsb_test_fail(__FILE__, __LINE__, "memcmp(%s, %s, %s) != 0", #a, #b, \
                     #n);                                                   \
  } while (0)

#endif
