/* hcsb-bench: the measurements it can run, each on the public API only. */
#ifndef HCSB_BENCH_BENCH_H
#define HCSB_BENCH_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include <hcsbridge.h>

#include "tools/bench/common.h"

/* Opens a connection to `address` with default options. */
int bench_conn_open(uv_loop_t *loop, const char *address, hcsb_conn_open_cb cb,
                    void *data, hcsb_conn_t **out);
/* Prints "hcsb-bench: WHAT: <status>[: <guest error>]" to stderr. */
void bench_report_error(const char *what, int status,
                        const hcsb_guest_error_t *gerr);
/* Ends the process if the loop is still running after `seconds`: a hung
 * measurement must not hang its caller. */
void bench_watchdog(uv_loop_t *loop, uv_timer_t *t, double seconds);
void bench_close_noop(void *data);

/* GetProperties(ProcessList) throughput and latency; `random_activity`
 * leaves the ActivityId to the library (a fresh GUID per call) instead of
 * the zero GUID hcsshim sends.  Returns the exit status. */
int bench_calls(const bench_args_t *a, int random_activity);

/* Library memory per pending call: `calls` calls outstanding against a peer
 * that never answers. */
int bench_pending(const char *address, uint64_t calls);

typedef struct bench_fanout_opts_s {
  const char *peer; /* hcsb-fastpeer executable */
  unsigned conns;
  unsigned procs; /* per connection */
  size_t payload; /* stdout bytes per process */
  double timeout_s;
  int random_activity;
  const char *relay_dir; /* parent of the per-connection relay directories */
} bench_fanout_opts_t;

/* One loop, `conns` spawned fast peers, `procs` processes each with a
 * stdout relay; reports the longest loop stall. */
int bench_fanout(const bench_fanout_opts_t *o);

#endif
