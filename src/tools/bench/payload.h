/* The stdout payload the fast peer writes for each process, shared with the
 * client that verifies it: "pid=<N> " then letters, ending in a newline, so
 * bytes that reach the wrong process or arrive out of order are caught. */
#ifndef HCSB_BENCH_PAYLOAD_H
#define HCSB_BENCH_PAYLOAD_H

#include <stdint.h>
#include <stdio.h>

#define BENCH_PAYLOAD_DEFAULT 64u
#define BENCH_PAYLOAD_MAX (1u << 20)

/* Fills buf[0..len) (len >= 1). */
static inline void bench_payload(char *buf, size_t len, uint32_t pid) {
  char head[24];
  size_t i, hl;

  hl = (size_t)snprintf(head, sizeof(head), "pid=%u ", (unsigned)pid);
  for (i = 0; i + 1 < len; i++)
    buf[i] = i < hl ? head[i] : (char)('a' + (i - hl) % 26);
  buf[len - 1] = '\n';
}

#endif
