/* GetProperties(ProcessList) throughput and latency through the public API.
 *
 * Time is read once per loop iteration, when the first callback of the
 * iteration needs it, and reused by the rest: the raw client reads it once
 * per batch of answers the same way, so neither pays a clock read per call
 * the other does not.
 *
 * `inflight` slots each carry one call at a time: a completion records its
 * latency and immediately starts the slot's next call, so the number of
 * outstanding calls stays constant.  Slots are allocated before the
 * measurement, so every allocation counted in the window is the library's. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/bench/alloc.h"
#include "tools/bench/bench.h"
#include "tools/bench/hist.h"

typedef struct calls_s calls_t;

typedef struct slot_s {
  calls_t *run;
  uint64_t sent_ns;
} slot_t;

struct calls_s {
  const bench_args_t *a;
  uv_loop_t loop;
  uv_timer_t watchdog;
  uv_check_t turns; /* counts loop iterations, forgets their time */
  uint64_t nturns, turns0, turns1, cpu0, cpu1;
  uint64_t now; /* this iteration's time, 0 until read */
  hcsb_bridge_stats_t st0, st1;
  hcsb_conn_t *conn;
  hcsb_container_t *container;
  hcsb_call_opts_t opts;
  const hcsb_call_opts_t *optsp;
  slot_t *slots;
  uint64_t done, measured, outstanding, failures;
  uint64_t t0, t1, allocs0, allocs1;
  int measuring, stopping, closing;
};

static bench_hist_t hist;

static void on_turn(uv_check_t *h) {
  calls_t *r = h->data;
  r->nturns++;
  r->now = 0;
}

static uint64_t now_ns(calls_t *r) {
  if (r->now == 0) r->now = bench_now_ns();
  return r->now;
}

/* The window's start or end: allocations, loop turns, the bridge's
 * counters. */
static void mark(calls_t *r, int end) {
  hcsb_bridge_stats(hcsb_conn_bridge(r->conn), end ? &r->st1 : &r->st0);
  if (end) {
    r->allocs1 = bench_alloc_count();
    r->turns1 = r->nturns;
    r->cpu1 = bench_cpu_ns();
  } else {
    r->allocs0 = bench_alloc_count();
    r->turns0 = r->nturns;
    r->cpu0 = bench_cpu_ns();
  }
}

static void finish(calls_t *r) {
  if (r->closing) return;
  r->closing = 1;
  uv_close((uv_handle_t *)&r->watchdog, NULL);
  uv_close((uv_handle_t *)&r->turns, NULL);
  if (r->container != NULL)
    hcsb_container_close(r->container, bench_close_noop, NULL);
  hcsb_conn_close(r->conn, bench_close_noop, NULL);
}

/* The canned answer of hcsb-fastpeer: processes 1 and 42. */
static int props_ok(const hcsb_properties_t *p) {
  return p != NULL && p->has_process_list && p->nprocesses == 2 &&
         p->processes[0].process_id == 1 && p->processes[1].process_id == 42;
}

static void on_props(void *data, int status, const hcsb_guest_error_t *gerr,
                     const hcsb_properties_t *props);

static void issue(slot_t *s) {
  calls_t *r = s->run;
  int rc;

  s->sent_ns = now_ns(r);
  rc = hcsb_container_process_list(r->container, r->optsp, on_props, s);
  if (rc != 0) {
    bench_report_error("hcsb_container_process_list", rc, NULL);
    r->failures++;
    r->stopping = 1;
    if (r->outstanding == 0) finish(r);
    return;
  }
  r->outstanding++;
}

static void on_props(void *data, int status, const hcsb_guest_error_t *gerr,
                     const hcsb_properties_t *props) {
  slot_t *s = data;
  calls_t *r = s->run;
  uint64_t now = now_ns(r);

  r->outstanding--;
  r->done++;
  if (status != 0 || !props_ok(props)) {
    if (r->failures++ == 0)
      bench_report_error(status ? "GetProperties"
                                : "GetProperties (wrong "
                                  "process list)",
                         status, gerr);
    r->stopping = 1;
  }
  if (!r->stopping) {
    if (r->measuring) {
      bench_hist_add(&hist, now - s->sent_ns);
      r->measured++;
      if (bench_window_over(r->a, r->t0, now, r->measured)) {
        r->stopping = 1;
        r->t1 = now;
        mark(r, 1);
      }
    } else if (r->done >= r->a->warmup) {
      r->measuring = 1;
      r->t0 = now;
      mark(r, 0);
    }
  }
  if (!r->stopping)
    issue(s);
  else if (r->outstanding == 0)
    finish(r);
}

static void on_open(void *data, hcsb_conn_t *conn, int status,
                    const hcsb_guest_error_t *gerr) {
  calls_t *r = data;
  unsigned i;
  int rc;

  (void)conn;
  if (status != 0) {
    bench_report_error("connect", status, gerr);
    r->failures++;
    finish(r);
    return;
  }
  rc = hcsb_conn_open_container(r->conn, r->a->container, &r->container);
  if (rc != 0) {
    bench_report_error("hcsb_conn_open_container", rc, NULL);
    r->failures++;
    finish(r);
    return;
  }
  if (r->a->warmup == 0) {
    r->measuring = 1;
    r->t0 = bench_now_ns();
    mark(r, 0);
  }
  for (i = 0; i < r->a->inflight && !r->stopping; i++) issue(&r->slots[i]);
}

int bench_calls(const bench_args_t *a, int random_activity) {
  calls_t r;
  unsigned i;
  int rc;

  memset(&r, 0, sizeof(r));
  r.a = a;
  /* hcsshim sends the zero GUID as every call's ActivityId. */
  r.opts.activity_id = HCSB_ZERO_GUID;
  r.optsp = random_activity ? NULL : &r.opts;
  r.slots = calloc(a->inflight, sizeof(*r.slots));
  if (r.slots == NULL) {
    fprintf(stderr, "hcsb-bench: out of memory\n");
    return 1;
  }
  for (i = 0; i < a->inflight; i++) r.slots[i].run = &r;
  bench_hist_reset(&hist);
  uv_loop_init(&r.loop);
  uv_check_init(&r.loop, &r.turns);
  r.turns.data = &r;
  uv_check_start(&r.turns, on_turn);
  uv_unref((uv_handle_t *)&r.turns);
  bench_watchdog(
      &r.loop, &r.watchdog,
      a->count ? 60 + (double)a->count / 1000 : 60 + a->duration_s * 2);
  rc = bench_conn_open(&r.loop, a->connect, on_open, &r, &r.conn);
  if (rc != 0) {
    bench_report_error("hcsb_conn_open", rc, NULL);
    return 1;
  }
  uv_run(&r.loop, UV_RUN_DEFAULT);
  uv_loop_close(&r.loop);
  free(r.slots);

  if (r.failures == 0 && r.measured > 0) {
    bench_io_t io;
    io.writes = r.st1.writes - r.st0.writes;
    io.reads = r.st1.reads - r.st0.reads;
    io.bytes_written = r.st1.bytes_sent - r.st0.bytes_sent;
    io.bytes_read = r.st1.bytes_received - r.st0.bytes_received;
    io.turns = r.turns1 - r.turns0;
    io.cpu_ns = r.cpu1 - r.cpu0;
    bench_print_result("hcsbridge", a, r.measured, r.t1 - r.t0, &hist,
                       r.allocs1 - r.allocs0, &io);
  }
  if (r.failures > 0)
    fprintf(stderr, "hcsb-bench: %llu of %llu calls failed\n",
            (unsigned long long)r.failures, (unsigned long long)r.done);
  return r.failures > 0 || r.measured == 0;
}
