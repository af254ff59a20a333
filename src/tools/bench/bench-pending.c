/* Library memory per pending call.
 *
 * Against a peer that negotiates and then never answers, N GetProperties
 * calls are started (in batches across loop turns, as a busy shim would,
 * so a one-off write-queue peak is not mistaken for per-call state).  Once
 * every request has been written, the heap in use and the RSS are compared
 * with the values before the first call.  Closing the connection must then
 * complete every call exactly once with -ECANCELED. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tools/bench/alloc.h"
#include "tools/bench/bench.h"

#define BATCH 1024u

typedef struct pending_s {
  uv_loop_t loop;
  uv_idle_t issuer;
  uv_timer_t poll;
  uv_timer_t watchdog;
  hcsb_conn_t *conn;
  hcsb_container_t *container;
  hcsb_call_opts_t opts;
  uint64_t calls, issued, cancelled, other;
  int64_t heap0, rss0, heap1, rss1;
  uint64_t allocs0, allocs1;
  int failed, measured;
} pending_t;

static void on_props(void *data, int status, const hcsb_guest_error_t *gerr,
                     const hcsb_properties_t *props) {
  pending_t *p = data;

  (void)props;
  if (status == -ECANCELED) {
    p->cancelled++;
  } else if (p->other++ == 0) {
    bench_report_error("pending call completed unexpectedly", status, gerr);
  }
}

static void shut_down(pending_t *p) {
  uv_close((uv_handle_t *)&p->issuer, NULL);
  uv_close((uv_handle_t *)&p->poll, NULL);
  uv_close((uv_handle_t *)&p->watchdog, NULL);
  if (p->container != NULL)
    hcsb_container_close(p->container, bench_close_noop, NULL);
  hcsb_conn_close(p->conn, bench_close_noop, NULL);
}

/* Measures once every request has left the library's write queue. */
static void on_poll(uv_timer_t *t) {
  pending_t *p = t->data;
  hcsb_bridge_stats_t st;

  hcsb_bridge_stats(hcsb_conn_bridge(p->conn), &st);
  if (st.pending < p->calls || st.queued_bytes > 0) return;
  p->heap1 = bench_heap_in_use();
  p->rss1 = bench_rss();
  p->allocs1 = bench_alloc_count();
  p->measured = 1;
  uv_timer_stop(t);
  shut_down(p);
}

static void on_issue(uv_idle_t *h) {
  pending_t *p = h->data;
  unsigned i;
  int rc;

  for (i = 0; i < BATCH && p->issued < p->calls; i++) {
    rc = hcsb_container_process_list(p->container, &p->opts, on_props, p);
    if (rc != 0) {
      bench_report_error("hcsb_container_process_list", rc, NULL);
      p->failed = 1;
      uv_idle_stop(h);
      shut_down(p);
      return;
    }
    p->issued++;
  }
  if (p->issued == p->calls) {
    uv_idle_stop(h);
    uv_timer_start(&p->poll, on_poll, 5, 5);
  }
}

static void on_open(void *data, hcsb_conn_t *conn, int status,
                    const hcsb_guest_error_t *gerr) {
  pending_t *p = data;
  int rc;

  (void)conn;
  if (status != 0) {
    bench_report_error("connect", status, gerr);
    p->failed = 1;
    shut_down(p);
    return;
  }
  rc = hcsb_conn_open_container(p->conn, BENCH_CONTAINER_ID, &p->container);
  if (rc != 0) {
    bench_report_error("hcsb_conn_open_container", rc, NULL);
    p->failed = 1;
    shut_down(p);
    return;
  }
  p->heap0 = bench_heap_in_use();
  p->rss0 = bench_rss();
  p->allocs0 = bench_alloc_count();
  uv_idle_start(&p->issuer, on_issue);
}

int bench_pending(const char *address, uint64_t calls) {
  pending_t p;
  double n = (double)calls;
  int rc;

  memset(&p, 0, sizeof(p));
  p.calls = calls;
  p.opts.activity_id = HCSB_ZERO_GUID;
  uv_loop_init(&p.loop);
  uv_idle_init(&p.loop, &p.issuer);
  uv_timer_init(&p.loop, &p.poll);
  p.issuer.data = p.poll.data = &p;
  bench_watchdog(&p.loop, &p.watchdog, 60 + n / 10000);
  rc = bench_conn_open(&p.loop, address, on_open, &p, &p.conn);
  if (rc != 0) {
    bench_report_error("hcsb_conn_open", rc, NULL);
    return 1;
  }
  uv_run(&p.loop, UV_RUN_DEFAULT);
  uv_loop_close(&p.loop);

  if (p.measured) {
    printf(
        "RESULT impl=hcsbridge label=pending calls=%llu heap_bytes_call=%.1f "
        "rss_bytes_call=%.1f allocs_call=%.2f\n",
        (unsigned long long)calls, (double)(p.heap1 - p.heap0) / n,
        (double)(p.rss1 - p.rss0) / n, (double)(p.allocs1 - p.allocs0) / n);
    fflush(stdout);
  }
  if (p.cancelled != p.issued || p.other != 0) {
    fprintf(stderr,
            "hcsb-bench: %llu calls started, %llu cancelled on close, %llu "
            "other completions\n",
            (unsigned long long)p.issued, (unsigned long long)p.cancelled,
            (unsigned long long)p.other);
    return 1;
  }
  return p.failed || !p.measured;
}
