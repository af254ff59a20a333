/* Embedded calls that send a request template, the API layer's common
 * case, which the bridge starts in one pass when it can (call_start_fast
 * in src/bridge/call.c) and through the general path otherwise (an empty
 * write buffer, a deadline out of order, trace logging).  Whichever way a
 * call starts, the guest sees the same frames (IDs in order, each call's
 * own ActivityId), deadlines are honoured in their order, and each
 * callback runs once, never inside the call that started it. */
#include <hcsbridge/bridge.h>

#include <stdio.h>
#include <string.h>

#include "bridge/call.h"
#include "bridge/internal.h"
#include "proto/proto.h"
#include "runner.h"
#include "test-bridge-peer.h"

#define PROPS_RESP HCSB_MSG_GET_PROPERTIES_RESPONSE
#define NCALLS 12
#define GUID_A "0123abcd-4567-89ef-0123-456789abcdef"

typedef struct tcall_s {
  hcsb_call_t call; /* the bridge hands it back as the callback's data */
  int n, status, order;
} tcall_t;

static int in_start, done_seq, nlogs;

static void count_log(void *data, hcsb_log_level_t level,
                      const char *activity_id, const char *msg) {
  (void)data;
  (void)level;
  (void)activity_id;
  (void)msg;
  nlogs++;
}

static void on_done(void *data, int status, const hcsb_guest_error_t *gerr,
                    const hcsb_response_t *resp) {
  tcall_t *t = HCSB__CONTAINER_OF((hcsb_call_t *)data, tcall_t, call);
  (void)gerr;
  CHECK(!in_start);
  CHECK(!hcsb__call_busy(&t->call));
  t->n++;
  t->status = status;
  t->order = ++done_seq;
  if (status == 0) CHECK_U64(resp->type, PROPS_RESP);
}

static void tmpl_props(hcsb__tmpl_t *t) {
  hcsb_request_t req;
  memset(&req, 0, sizeof req);
  req.type = HCSB_MSG_GET_PROPERTIES;
  req.container_id = "c1";
  req.u.get_properties.query = "{\"PropertyTypes\":[\"ProcessList\"]}";
  *t = (hcsb__tmpl_t)HCSB__TMPL_INIT;
  CHECK_EQ(hcsb__tmpl_build(t, &req), 0);
}

/* Call i's ActivityId: none, the zero GUID, or GUID_A. */
static const char *activity_of(int i) {
  return i % 3 == 0 ? NULL : i % 3 == 1 ? HCSB_ZERO_GUID : GUID_A;
}

static int start(fx_t *fx, tcall_t *t, const hcsb__tmpl_t *tmpl, int i,
                 uint32_t timeout_ms) {
  hcsb__call_embed(&t->call);
  CHECK_EQ(hcsb__call_set_activity(&t->call, activity_of(i)), 0);
  in_start = 1;
  int rc =
      hcsb__bridge_call_in(fx->b, &t->call, NULL, tmpl, timeout_ms, on_done);
  in_start = 0;
  return rc;
}

/* ------------------------------------------------------------------------ */

static void script_answer_reversed(peer_t *p) {
  uint64_t ids[NCALLS];
  peer_negotiate(p);
  for (int i = 0; i < NCALLS; i++) {
    pframe_t f;
    CHECK_EQ(peer_read(p, &f), 0);
    CHECK_U64(f.type, HCSB_MSG_GET_PROPERTIES);
    CHECK_U64(f.id, 2 + (uint64_t)i);
    ids[i] = f.id;
    /* A call without one sends the zero GUID, as hcsshim does. */
    const char *aid = activity_of(i) != NULL ? activity_of(i) : HCSB_ZERO_GUID;
    char want[64];
    snprintf(want, sizeof want, "\"ActivityId\":\"%s\"", aid);
    CHECK(strstr(f.body, want) != NULL);
    CHECK(strstr(f.body, "\"ContainerId\":\"c1\"") != NULL);
    CHECK(strstr(f.body, "ProcessList") != NULL);
    pframe_free(&f);
  }
  for (int i = NCALLS - 1; i >= 0; i--)
    peer_send(p, PROPS_RESP, ids[i], PEER_OK_BODY);
  CHECK_EQ(peer_drain(p), 0);
}

static void test_both_paths_same_frames(void) {
  /* Each call's timeout, and whether trace logging is on while it starts.
   * The first call finds the write buffer empty, 3 has a deadline before
   * those made earlier (the heap), 6 is made with trace logging on: those
   * take the general path, the others the one-pass start. */
  static const struct {
    uint32_t timeout_ms;
    int trace;
  } plan[NCALLS] = {{0, 0},     {60000, 0}, {60000, 0}, {30000, 0},
                    {0, 0},     {90000, 0}, {90000, 1}, {0, 0},
                    {90000, 0}, {0, 0},     {95000, 0}, {95000, 0}};
  fx_t fx;
  tcall_t t[NCALLS];
  hcsb__tmpl_t tmpl;
  hcsb_bridge_stats_t st;

  memset(t, 0, sizeof t);
  done_seq = 0;
  tmpl_props(&tmpl);
  fx_open(&fx, script_answer_reversed, NULL);
  fx_run_until(&fx, &fx.ready_n, 1);
  CHECK_EQ(fx.ready_status, 0);
  /* The fixture logs everything; the one-pass start needs trace off. */
  hcsb_bridge_set_log(fx.b, NULL, NULL, HCSB_LOG_DEBUG);
  for (int i = 0; i < NCALLS; i++) {
    size_t heap_before = fx.b->heap.n;
    int logs_before = nlogs;
    if (plan[i].trace)
      hcsb_bridge_set_log(fx.b, count_log, NULL, HCSB_LOG_TRACE);
    CHECK_EQ(start(&fx, &t[i], &tmpl, i, plan[i].timeout_ms), 0);
    hcsb_bridge_set_log(fx.b, NULL, NULL, HCSB_LOG_DEBUG);
    /* The general path traced the frame it sent. */
    CHECK_EQ(nlogs, logs_before + plan[i].trace);
    CHECK_U64(hcsb_call_id(&t[i].call), 2 + (uint64_t)i);
    CHECK(hcsb__call_busy(&t[i].call));
    /* Only the out-of-order deadline went into the heap. */
    CHECK_EQ(fx.b->heap.n, heap_before + (i == 3));
  }
  for (int i = 0; i < NCALLS; i++) CHECK_EQ(t[i].n, 0);
  hcsb_bridge_stats(fx.b, &st);
  CHECK_U64(st.calls_started, NCALLS);
  fx_run_until(&fx, &t[0].n, 1); /* answered last */
  for (int i = 0; i < NCALLS; i++) {
    CHECK_EQ(t[i].n, 1);
    CHECK_EQ(t[i].status, 0);
    CHECK_EQ(t[i].order, NCALLS - i);
  }
  hcsb_bridge_stats(fx.b, &st);
  CHECK_U64(st.calls_completed, NCALLS);
  CHECK_EQ(fx.b->heap.n, 0);
  CHECK_EQ(fx.b->npending, 0);
  fx_finish(&fx, 1);
  hcsb__tmpl_free(&tmpl);
}

/* ------------------------------------------------------------------------ */

static void script_swallow(peer_t *p) {
  peer_negotiate(p);
  peer_drain(p);
}

/* Calls started in one pass time out in the order of their deadlines
 * together with those the general path put in the heap. */
static void test_deadlines_across_paths(void) {
  /* Made in one loop turn: 1 and 3 are in order (one pass), 2 goes into
   * the heap, 0 has none. */
  static const uint32_t timeout_ms[4] = {0, 200, 100, 300};
  static const int rank[4] = {-1, 1, 0, 2};
  fx_t fx;
  tcall_t t[4], warm;
  hcsb__tmpl_t tmpl;

  memset(t, 0, sizeof t);
  memset(&warm, 0, sizeof warm);
  done_seq = 0;
  tmpl_props(&tmpl);
  fx_open(&fx, script_swallow, NULL);
  fx_run_until(&fx, &fx.ready_n, 1);
  hcsb_bridge_set_log(fx.b, NULL, NULL, HCSB_LOG_DEBUG);
  /* A first call gives the write buffer its room; cancelled at once. */
  CHECK_EQ(start(&fx, &warm, &tmpl, 0, 0), 0);
  CHECK_EQ(hcsb_call_cancel(&warm.call), 0);
  for (int i = 0; i < 4; i++) {
    CHECK_EQ(start(&fx, &t[i], &tmpl, i, timeout_ms[i]), 0);
    CHECK_EQ(fx.b->heap.n, (size_t)(i >= 2));
  }
  fx_run_until(&fx, &t[3].n, 1);
  CHECK_EQ(warm.n, 1);
  CHECK_EQ(warm.status, -ECANCELED);
  CHECK_EQ(t[0].n, 0);
  for (int i = 1; i < 4; i++) {
    CHECK_EQ(t[i].n, 1);
    CHECK_EQ(t[i].status, -ETIMEDOUT);
    CHECK_EQ(t[i].order, 2 + rank[i]); /* the cancellation came first */
  }
  CHECK_EQ(hcsb_call_cancel(&t[0].call), 0);
  fx_run_until(&fx, &t[0].n, 1);
  CHECK_EQ(t[0].status, -ECANCELED);
  fx_finish(&fx, 1);
  hcsb__tmpl_free(&tmpl);
}

/* ------------------------------------------------------------------------ */

/* The one-pass start refuses nothing itself: a busy call, a template of a
 * watched type, a full write queue get the general path's answers. */
static void test_refusals(void) {
  fx_t fx;
  tcall_t a, b;
  hcsb__tmpl_t tmpl, bad;
  hcsb_request_t req;

  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  tmpl_props(&tmpl);
  memset(&req, 0, sizeof req);
  req.type = HCSB_MSG_MODIFY_SETTINGS;
  req.container_id = "c1";
  req.u.modify.request = "{}";
  bad = (hcsb__tmpl_t)HCSB__TMPL_INIT;
  CHECK_EQ(hcsb__tmpl_build(&bad, &req), 0);
  fx_open(&fx, script_swallow, NULL);
  fx_run_until(&fx, &fx.ready_n, 1);
  hcsb_bridge_set_log(fx.b, NULL, NULL, HCSB_LOG_DEBUG);
  CHECK_EQ(start(&fx, &a, &tmpl, 0, 0), 0);
  in_start = 1;
  CHECK_EQ(hcsb__bridge_call_in(fx.b, &a.call, NULL, &tmpl, 0, on_done),
           -EBUSY);
  in_start = 0;
  hcsb__call_embed(&b.call);
  CHECK_EQ(hcsb__bridge_call_in(fx.b, &b.call, NULL, &bad, 0, on_done),
           -EINVAL);
  CHECK_EQ(hcsb_bridge_set_max_write_queue(fx.b, 1), 0);
  CHECK_EQ(hcsb__bridge_call_in(fx.b, &b.call, NULL, &tmpl, 0, on_done),
           -ENOBUFS);
  CHECK(!hcsb__call_busy(&b.call));
  CHECK_EQ(hcsb_call_cancel(&a.call), 0);
  fx_run_until(&fx, &a.n, 1);
  CHECK_EQ(a.status, -ECANCELED);
  CHECK_EQ(b.n, 0);
  fx_finish(&fx, 1);
  hcsb__tmpl_free(&tmpl);
  hcsb__tmpl_free(&bad);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(both_paths_same_frames),
    TEST_ENTRY(deadlines_across_paths),
    TEST_ENTRY(refusals),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
