/* Deadlines and the order of calls across the bridge's request lists.
 *
 * Calls whose deadlines arrive in order ride on the request list, the
 * others go into a heap, calls without a deadline sit on a list of their
 * own (src/bridge/internal.h).  Whatever the mix: calls time out in the
 * order of their deadlines (ties in the order they were made), a closed
 * bridge fails them in the order they were made, and calls made before
 * negotiation go out in that order too. */
#include <hcsbridge/bridge.h>

#include <stdio.h>
#include <string.h>

#include "runner.h"
#include "test-bridge-peer.h"

#define START_RESP HCSB_MSG_START_RESPONSE

static void script_swallow(peer_t *p) {
  peer_negotiate(p);
  peer_drain(p);
}

/* Made in one loop turn, so equal timeouts mean equal deadlines. */
static const struct {
  uint32_t timeout_ms;
  int rank; /* place in the timeout order; -1: never times out */
} mix[] = {
    {300, 3}, /* in order */
    {100, 0}, /* heap */
    {300, 4}, /* in order, ties with 0 */
    {0, -1},  /* no deadline */
    {200, 2}, /* heap */
    {400, 6}, /* in order */
    {100, 1}, /* heap, ties with 1 */
    {400, 7}, /* in order, ties with 5 */
    {300, 5}, /* heap (below 400), ties with 0 and 2, made after them */
};
#define NMIX (sizeof mix / sizeof mix[0])

static void test_timeouts_in_deadline_order(void) {
  fx_t fx;
  rec_t r[NMIX];
  int timed = 0;
  memset(r, 0, sizeof r);
  fx_open(&fx, script_swallow, NULL);
  fx_run_until(&fx, &fx.ready_n, 1);
  for (size_t i = 0; i < NMIX; i++) {
    hcsb_request_t q = req_start("c");
    CHECK_EQ(api_call(fx.b, &q, mix[i].timeout_ms, rec_cb, &r[i], NULL), 0);
    timed += mix[i].rank >= 0;
  }
  fx_run_until(&fx, &r[7].n, 1); /* the last deadline */
  int first = 0;
  for (size_t i = 0; i < NMIX; i++)
    if (mix[i].rank == 0) first = r[i].order;
  for (size_t i = 0; i < NMIX; i++) {
    if (mix[i].rank < 0) {
      CHECK_EQ(r[i].n, 0);
      continue;
    }
    CHECK_EQ(r[i].n, 1);
    CHECK_EQ(r[i].status, -ETIMEDOUT);
    if (r[i].order - first != mix[i].rank)
      hcsb_test_fail(__FILE__, __LINE__,
                     "call %zu (%u ms) timed out %d-th, want %d-th", i,
                     mix[i].timeout_ms, r[i].order - first, mix[i].rank);
  }
  hcsb_bridge_stats_t st;
  hcsb_bridge_stats(fx.b, &st);
  CHECK_EQ(st.pending, 1);
  api_close(&fx);
  fx_run_until(&fx, &r[3].n, 1);
  CHECK_EQ(r[3].status, -ECANCELED);
  CHECK_EQ(timed, 8);
  fx_finish(&fx, 0);
}

/* A call made later with a shorter timeout than the in-order ones before
 * it still times out first, and a late in-order call behind heap calls
 * is found. */
static rec_t late_r[3];
static fx_t *late_fx;

static void make_late(rec_t *r) {
  (void)r;
  hcsb_request_t q = req_start("later");
  /* 400 ms ago the first call was made with 500: this one is out of order
   * (heap), then one in order behind it. */
  CHECK_EQ(api_call(late_fx->b, &q, 50, rec_cb, &late_r[1], NULL), 0);
  CHECK_EQ(api_call(late_fx->b, &q, 600, rec_cb, &late_r[2], NULL), 0);
}

static void test_timeouts_across_turns(void) {
  fx_t fx;
  rec_t tick;
  memset(late_r, 0, sizeof late_r);
  memset(&tick, 0, sizeof tick);
  late_fx = &fx;
  fx_open(&fx, script_swallow, NULL);
  fx_run_until(&fx, &fx.ready_n, 1);
  hcsb_request_t q = req_start("first");
  CHECK_EQ(api_call(fx.b, &q, 500, rec_cb, &late_r[0], NULL), 0);
  /* A call timing out after 100 ms makes the next two from its callback. */
  tick.then = make_late;
  CHECK_EQ(api_call(fx.b, &q, 100, rec_cb, &tick, NULL), 0);
  fx_run_until(&fx, &late_r[2].n, 1);
  CHECK_EQ(tick.status, -ETIMEDOUT);
  for (int i = 0; i < 3; i++) CHECK_EQ(late_r[i].status, -ETIMEDOUT);
  CHECK(tick.order < late_r[1].order);
  CHECK(late_r[1].order < late_r[0].order);
  CHECK(late_r[0].order < late_r[2].order);
  fx_finish(&fx, 1);
}

/* Closing fails every call in the order the calls were made, whichever
 * list or structure holds them. */
static void test_close_fails_in_send_order(void) {
  enum { N = 40 };
  fx_t fx;
  rec_t r[N];
  memset(r, 0, sizeof r);
  fx_open(&fx, script_swallow, NULL);
  fx_run_until(&fx, &fx.ready_n, 1);
  for (int i = 0; i < N; i++) {
    /* untimed, in order, out of order (shrinking), in order again */
    static const uint32_t t[] = {0, 60000, 0, 50000, 40000, 0, 90000, 90000};
    hcsb_request_t q = req_start("c");
    uint32_t timeout = t[i % 8] != 0 ? t[i % 8] + (uint32_t)(i / 8) : 0;
    CHECK_EQ(api_call(fx.b, &q, timeout, rec_cb, &r[i], NULL), 0);
  }
  uv_run(&fx.loop, UV_RUN_NOWAIT);
  api_close(&fx);
  fx_run_until(&fx, &r[N - 1].n, 1);
  for (int i = 0; i < N; i++) {
    CHECK_EQ(r[i].n, 1);
    CHECK_EQ(r[i].status, -ECANCELED);
    if (i > 0) CHECK(r[i - 1].order < r[i].order);
  }
  fx_finish(&fx, 0);
}

/* Calls made before negotiation, with and without deadlines, one of them
 * cancelled: they go out in the order they were made, with IDs in that
 * order, and the cancelled one never does. */
static const char *const waiting_cids[] = {"w0", "w1", "w2", "w3", "w4", "w5"};
static const uint32_t waiting_timeouts[] = {0, 50000, 0, 10000, 0, 90000};

static void script_waiting(peer_t *p) {
  peer_negotiate(p);
  for (int i = 0, k = 0; i < 6; i++) {
    if (i == 2) continue; /* cancelled */
    pframe_t f;
    char want[32];
    CHECK_EQ(peer_read(p, &f), 0);
    CHECK_U64(f.id, 2 + (uint64_t)k++);
    snprintf(want, sizeof want, "\"ContainerId\":\"%s\"", waiting_cids[i]);
    if (strstr(f.body, want) == NULL)
      hcsb_test_fail(__FILE__, __LINE__, "frame %llu: %s, want %s",
                     (unsigned long long)f.id, f.body, want);
    peer_send(p, START_RESP, f.id, PEER_OK_BODY);
    pframe_free(&f);
  }
  CHECK_EQ(peer_drain(p), 0);
}

static void test_waiting_calls_go_out_in_order(void) {
  fx_t fx;
  rec_t r[6];
  hcsb_call_t *calls[6];
  memset(r, 0, sizeof r);
  int fd = fx_init(&fx, script_waiting, NULL);
  for (int i = 0; i < 6; i++) {
    hcsb_request_t q = req_start(waiting_cids[i]);
    CHECK_EQ(api_call(fx.b, &q, waiting_timeouts[i], rec_cb, &r[i], &calls[i]),
             0);
  }
  CHECK_EQ(api_cancel(calls[2]), 0);
  fx_open_fd(&fx, fd);
  fx_run_until(&fx, &r[5].n, 1);
  for (int i = 0, k = 0; i < 6; i++) {
    CHECK_EQ(r[i].n, 1);
    if (i == 2) {
      CHECK_EQ(r[i].status, -ECANCELED);
      continue;
    }
    CHECK_EQ(r[i].status, 0);
    CHECK_U64(r[i].id, 2 + (uint64_t)k++);
  }
  fx_finish(&fx, 1);
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(timeouts_in_deadline_order),
      TEST_ENTRY(timeouts_across_turns),
      TEST_ENTRY(close_fails_in_send_order),
      TEST_ENTRY(waiting_calls_go_out_in_order),
  };
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
