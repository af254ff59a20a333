/* hcsb-bench: measures hcsbridge through its public API.
 *
 *   hcsb-bench --connect ADDRESS --mode seq|pipe [--inflight N]
 *              (--count M | --duration S) [--warmup M] [--activity zero|random]
 *       GetProperties(ProcessList) on an opened container, as a shim polling
 *       stats does; prints
 *       RESULT impl=hcsbridge label=L mode=M conc=N ops_s=X p50_us=X
 *              p99_us=X allocs_op=X
 *       and exits non-zero if any call failed.
 *   hcsb-bench --connect ADDRESS --pending N
 *       N calls outstanding against a peer that never answers (hcsb-fastpeer
 *       --never-answer): library heap and RSS per pending call.
 *   hcsb-bench --fanout CONNS --procs P --peer FASTPEER [--payload BYTES]
 *              [--relay-dir DIR] [--timeout S]
 *       one loop, CONNS spawned peers, P processes each with stdout: the
 *       longest loop stall.  Relay sockets go under DIR (default $TMPDIR,
 *       else /dev/shm when writable).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/bench/bench.h"
#include "tools/bench/payload.h"

int bench_conn_open(uv_loop_t *loop, const char *address, hcsb_conn_open_cb cb,
                    void *data, hcsb_conn_t **out) {
  hcsb_conn_options_t o;

  hcsb_conn_options_init(&o);
  o.address = address;
  return hcsb_conn_open(loop, &o, cb, data, out);
}

void bench_report_error(const char *what, int status,
                        const hcsb_guest_error_t *gerr) {
  char buf[512];

  if (gerr != NULL) {
    hcsb_guest_error_format(gerr, buf, sizeof(buf));
    fprintf(stderr, "hcsb-bench: %s: %s: %s\n", what, hcsb_strerror(status),
            buf);
  } else {
    fprintf(stderr, "hcsb-bench: %s: %s\n", what, hcsb_strerror(status));
  }
}

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "hcsb-bench: no progress before the time limit, giving up\n");
  exit(1);
}

void bench_watchdog(uv_loop_t *loop, uv_timer_t *t, double seconds) {
  uv_timer_init(loop, t);
  uv_timer_start(t, on_watchdog, (uint64_t)(seconds * 1000), 0);
  /* It must not keep a finished loop alive. */
  uv_unref((uv_handle_t *)t);
}

void bench_close_noop(void *data) {
  (void)data;
}

static void usage(void) {
  fprintf(
      stderr,
      "usage: hcsb-bench --connect ADDRESS --mode seq|pipe [--inflight N]\n"
      "                  (--count M | --duration S) [--warmup M]\n"
      "                  [--activity zero|random] [--label L]\n"
      "       hcsb-bench --connect ADDRESS --pending N\n"
      "       hcsb-bench --fanout CONNS --procs P --peer FASTPEER\n"
      "                  [--payload BYTES] [--relay-dir DIR] [--timeout S]\n");
  exit(2);
}

static unsigned long number(const char *s, unsigned long max) {
  char *end;
  unsigned long v = strtoul(s, &end, 10);

  if (end == s || *end != '\0' || v > max) usage();
  return v;
}

int main(int argc, char **argv) {
  bench_fanout_opts_t fo;
  bench_args_t a;
  uint64_t pending = 0;
  int i, random_activity = 0;

  bench_args_init(&a, "hcsbridge");
  memset(&fo, 0, sizeof(fo));
  fo.procs = 32;
  fo.payload = BENCH_PAYLOAD_DEFAULT;
  fo.timeout_s = 120;
  for (i = 1; i < argc; i++) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

    if (bench_args_take(&a, argc, argv, &i)) continue;
    if (val == NULL) usage();
    i++;
    if (strcmp(opt, "--activity") == 0 && strcmp(val, "zero") == 0)
      random_activity = 0;
    else if (strcmp(opt, "--activity") == 0 && strcmp(val, "random") == 0)
      random_activity = 1;
    else if (strcmp(opt, "--pending") == 0)
      pending = number(val, 100000000);
    else if (strcmp(opt, "--fanout") == 0)
      fo.conns = (unsigned)number(val, 20000);
    else if (strcmp(opt, "--procs") == 0)
      fo.procs = (unsigned)number(val, 99999);
    else if (strcmp(opt, "--peer") == 0)
      fo.peer = val;
    else if (strcmp(opt, "--payload") == 0)
      fo.payload = number(val, BENCH_PAYLOAD_MAX);
    else if (strcmp(opt, "--relay-dir") == 0)
      fo.relay_dir = val;
    else if (strcmp(opt, "--timeout") == 0)
      fo.timeout_s = (double)number(val, 86400);
    else
      usage();
  }

  if (fo.conns > 0) {
    if (fo.peer == NULL || fo.procs == 0 || fo.payload == 0) usage();
    fo.random_activity = random_activity;
    if (fo.relay_dir == NULL && getenv("TMPDIR") == NULL &&
        access("/dev/shm", W_OK | X_OK) == 0)
      fo.relay_dir = "/dev/shm";
    return bench_fanout(&fo);
  }
  if (pending > 0) {
    if (a.connect == NULL) usage();
    return bench_pending(a.connect, pending);
  }
  if (bench_args_check(&a, "hcsb-bench") != 0) usage();
  return bench_calls(&a, random_activity);
}
