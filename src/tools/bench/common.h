/* Options and output shared by hcsb-bench and hcsb-bench-raw, so both
 * clients measure the same window the same way and print the same line. */
#ifndef HCSB_BENCH_COMMON_H
#define HCSB_BENCH_COMMON_H

#include <stdint.h>

#include "tools/bench/hist.h"

#define BENCH_CONTAINER_ID \
  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct bench_args_s {
  const char *connect;   /* address (hcsb-bench) or Unix path (raw) */
  int pipe;              /* --mode pipe */
  unsigned inflight;     /* calls kept outstanding (1 in seq mode) */
  uint64_t count;        /* measured calls, or 0 with a duration */
  double duration_s;     /* measured seconds, or 0 with a count */
  uint64_t warmup;       /* calls completed before measuring starts */
  const char *container; /* container ID the calls name */
  const char *label;
} bench_args_t;

void bench_args_init(bench_args_t *a, const char *label);
/* Consumes argv[*i] (and its value) when it is a common option: returns 1
 * then, 0 when the option is not a common one.  Exits on a bad value. */
int bench_args_take(bench_args_t *a, int argc, char **argv, int *i);
/* Checks the combination; prints a message and returns -1 when wrong. */
int bench_args_check(bench_args_t *a, const char *prog);
/* The measurement window: started at `t0`, is it over after `done` calls
 * completing at `now`? */
int bench_window_over(const bench_args_t *a, uint64_t t0, uint64_t now,
                      uint64_t done);

/* What a client did with its socket during the measurement. */
typedef struct bench_io_s {
  uint64_t writes, reads;             /* write and read system calls */
  uint64_t bytes_written, bytes_read; /* through them */
  uint64_t turns;                     /* waits for the socket (poll, loop) */
  uint64_t cpu_ns;                    /* the process's user + system time */
} bench_io_t;

/* The process's CPU time so far (user + system), in nanoseconds: what a
 * call costs the client, whatever else the machine runs. */
uint64_t bench_cpu_ns(void);

/* RESULT impl=I label=L mode=M conc=N ops_s=X p50_us=X p99_us=X allocs_op=X
 *        writes_op=X reads_op=X turns_op=X bytes_write=X bytes_read=X
 *        cpu_us_op=X */
void bench_print_result(const char *impl, const bench_args_t *a, uint64_t ops,
                        uint64_t elapsed_ns, const bench_hist_t *h,
                        uint64_t allocs, const bench_io_t *io);

#endif
