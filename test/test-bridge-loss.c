/* Connection loss, closing and re-entrancy: every pending call fails exactly
 * once with the cause, later calls fail -ENOTCONN on a later turn, and the
 * bridge may be closed, cancelled or called from inside any callback. */
#include <hcsbridge/bridge.h>

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"
#include "test-bridge-peer.h"

#define START_RESP HCSB_MSG_START_RESPONSE

static fx_t *cur; /* the fixture of the running test, for rec_t hooks */

static void call_start(rec_t *r, const char *cid) {
  hcsb_request_t q = req_start(cid);
  CHECK_EQ(api_call(cur->b, &q, 0, rec_cb, r, NULL), 0);
}

static void reset(rec_t *r, int n) {
  memset(r, 0, sizeof *r * (size_t)n);
}

static void script_negotiate_drain_any(peer_t *p) {
  peer_negotiate(p);
  peer_drain(p);
}

/* ------------------------------------------------------------------------ */

static void script_eof_mid_frame(peer_t *p) {
  peer_negotiate(p);
  peer_expect(p, HCSB_MSG_START);
  uint64_t b = peer_expect(p, HCSB_MSG_START);
  char frame[256];
  size_t n = peer_frame(frame, START_RESP, b, PEER_OK_BODY);
  peer_send_raw(p, frame, n / 2); /* then EOF */
}

static rec_t eof_recs[3];
static int eof_disconnect_seen_by_b;

static void eof_then_b(rec_t *r) {
  CHECK_EQ(r->status, -ECONNRESET);
  eof_disconnect_seen_by_b = cur->disconnect_n;
  call_start(&eof_recs[2], "after");
  CHECK_EQ(eof_recs[2].n, 0);
}

static void test_eof_mid_frame(void) {
  fx_t fx;
  cur = &fx;
  reset(eof_recs, 3);
  fx_open(&fx, script_eof_mid_frame, NULL);
  fx_run_until(&fx, &fx.ready_n, 1);
  call_start(&eof_recs[0], "a");
  eof_recs[1].then = eof_then_b;
  call_start(&eof_recs[1], "b");
  fx_run_until(&fx, &eof_recs[2].n, 1);
  CHECK_EQ(eof_recs[0].n, 1);
  CHECK_EQ(eof_recs[0].status, -ECONNRESET);
  CHECK_EQ(eof_recs[1].n, 1);
  CHECK_EQ(eof_recs[2].status, -ENOTCONN);
  CHECK(eof_recs[0].order < eof_recs[1].order);
  CHECK_EQ(eof_disconnect_seen_by_b, 0); /* calls fail first, then disconnect */
  CHECK_EQ(fx.disconnect_n, 1);
  CHECK_EQ(fx.disconnect_status, -ECONNRESET);
  CHECK_EQ(hcsb_bridge_close_cause(fx.b), UV_EOF);
  CHECK_EQ(hcsb_bridge_is_connected(fx.b), 0);
  hcsb_bridge_stats_t st;
  hcsb_bridge_stats(fx.b, &st);
  CHECK_EQ(st.pending, 0);
  CHECK_U64(st.calls_completed, 3);
  fx_finish(&fx, 1);
  CHECK_EQ(fx.disconnect_n, 1);
  for (int i = 0; i < 3; i++) CHECK_EQ(eof_recs[i].n, 1);
}

/* Size < 16: the byte stream cannot be trusted any more. */
static void script_size_lt16(peer_t *p) {
  peer_negotiate(p);
  peer_expect(p, HCSB_MSG_START);
  peer_expect(p, HCSB_MSG_START);
  unsigned char bad[24] = {0x01, 0x01, 0x10, 0x20, 8, 0, 0, 0,
                           2,    0,    0,    0,    0, 0, 0, 0};
  peer_send_raw(p, bad, sizeof bad);
  CHECK_EQ(peer_drain(p), 0);
}

static void test_size_below_16(void) {
  fx_t fx;
  rec_t r[2];
  cur = &fx;
  reset(r, 2);
  fx_open(&fx, script_size_lt16, NULL);
  fx_run_until(&fx, &fx.ready_n, 1);
  call_start(&r[0], "a");
  call_start(&r[1], "b");
  fx_run_until(&fx, &fx.disconnect_n, 1);
  CHECK_EQ(r[0].status, -ECONNRESET);
  CHECK_EQ(r[1].status, -ECONNRESET);
  CHECK_EQ(hcsb_bridge_close_cause(fx.b), -EPROTO);
  CHECK_EQ(fx.disconnect_status, -ECONNRESET);
  fx_finish(&fx, 1);
  CHECK_EQ(r[0].n + r[1].n, 2);
}

/* A write failure: the guest stopped reading. */
static void script_epipe(peer_t *p) {
  CHECK_U64(peer_expect(p, HCSB_MSG_NEGOTIATE_PROTOCOL), 1);
  CHECK_EQ(shutdown(p->fd, SHUT_RD), 0);
  peer_send(p, HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE, 1, PEER_NEGOTIATE_BODY);
  peer_wait_gate(p); /* keep the socket open: EOF must not come first */
}

static void test_write_failure(void) {
  fx_t fx;
  rec_t r;
  cur = &fx;
  reset(&r, 1);
  fx_open(&fx, script_epipe, NULL);
  fx_run_until(&fx, &fx.ready_n, 1);
  call_start(&r, "a");
  fx_run_until(&fx, &r.n, 1);
  CHECK_EQ(r.status, -EPIPE);
  fx_run_until(&fx, &fx.disconnect_n, 1);
  CHECK_EQ(fx.disconnect_status, -EPIPE);
  CHECK_EQ(hcsb_bridge_close_cause(fx.b), UV_EPIPE);
  peer_open_gate(&fx.peer);
  fx_finish(&fx, 1);
}

/* ------------------------------------------------------------------------ */
/* Closing from inside callbacks. */

static void script_answer_first(peer_t *p) {
  peer_negotiate(p);
  uint64_t a = peer_expect(p, HCSB_MSG_START);
  peer_send(p, START_RESP, a, PEER_OK_BODY);
  peer_drain(p);
}

static rec_t cic[4];

static void close_then(rec_t *r) {
  CHECK_EQ(r->status, 0);
  api_close(cur);
  api_close(cur); /* idempotent */
  CHECK_EQ(cur->closed_n, 0);
  call_start(&cic[3], "after-close");
  CHECK_EQ(cic[3].n, 0);
}

static void test_close_inside_call_callback(void) {
  fx_t fx;
  cur = &fx;
  reset(cic, 4);
  fx_open(&fx, script_answer_first, NULL);
  fx_run_until(&fx, &fx.ready_n, 1);
  cic[0].then = close_then;
  call_start(&cic[0], "a");
  call_start(&cic[1], "b");
  call_start(&cic[2], "c");
  fx_finish(&fx, 0);
  CHECK_EQ(cic[1].status, -ECANCELED);
  CHECK_EQ(cic[2].status, -ECANCELED);
  CHECK_EQ(cic[3].status, -ENOTCONN);
  for (int i = 0; i < 4; i++) CHECK_EQ(cic[i].n, 1);
  CHECK(cic[1].order < cic[2].order);
  CHECK_EQ(fx.disconnect_n, 0); /* closed by its owner: no disconnect_cb */
}

static rec_t cir[2];

static void close_in_ready(fx_t *fx, int status) {
  CHECK_EQ(status, 0);
  api_close(fx);
  CHECK_EQ(cir[0].n + cir[1].n, 0);
  CHECK_EQ(hcsb_bridge_close_cause(fx->b), -ECANCELED);
  CHECK_EQ(hcsb_bridge_is_connected(fx->b), 0);
}

static void test_close_inside_ready(void) {
  fx_t fx;
  cur = &fx;
  reset(cir, 2);
  fx_open(&fx, script_negotiate_drain_any, NULL);
  fx.on_ready = close_in_ready;
  call_start(&cir[0], "queued-1");
  call_start(&cir[1], "queued-2");
  fx_finish(&fx, 0);
  CHECK_EQ(cir[0].status, -ECANCELED);
  CHECK_EQ(cir[1].status, -ECANCELED);
}

static void script_notify_then_drain(peer_t *p) {
  peer_negotiate(p);
  peer_expect(p, HCSB_MSG_START);
  peer_send(
      p, HCSB_MSG_NOTIFY_CONTAINER, 0,
      "{\"ContainerId\":\"c9\",\"Type\":\"UnexpectedExit\",\"Result\":0}");
  peer_drain(p);
}

static void close_in_notify(fx_t *fx) {
  api_close(fx);
}

static void test_close_inside_notify(void) {
  fx_t fx;
  rec_t r;
  cur = &fx;
  reset(&r, 1);
  fx_open(&fx, script_notify_then_drain, NULL);
  fx.on_notify = close_in_notify;
  fx_run_until(&fx, &fx.ready_n, 1);
  call_start(&r, "a");
  fx_finish(&fx, 0);
  CHECK_EQ(fx.notify_n, 1);
  CHECK_EQ(fx.notify_kind, HCSB_NOTIFY_UNEXPECTED_EXIT);
  CHECK_EQ(r.n, 1);
  CHECK_EQ(r.status, -ECANCELED);
}

/* ------------------------------------------------------------------------ */

static rec_t cpc[2];
static hcsb_call_t *cpc_b;

static void cancel_next(rec_t *r) {
  CHECK_EQ(r->status, 0);
  CHECK_EQ(api_cancel(cpc_b), 0);
  CHECK_EQ(cpc[1].n, 0);
}

static void test_cancel_inside_previous_callback(void) {
  fx_t fx;
  cur = &fx;
  reset(cpc, 2);
  fx_open(&fx, script_answer_first, NULL);
  fx_run_until(&fx, &fx.ready_n, 1);
  cpc[0].then = cancel_next;
  call_start(&cpc[0], "a");
  hcsb_request_t q = req_start("b");
  CHECK_EQ(api_call(fx.b, &q, 0, rec_cb, &cpc[1], &cpc_b), 0);
  fx_run_until(&fx, &cpc[1].n, 1);
  CHECK_EQ(cpc[1].status, -ECANCELED);
  CHECK_EQ(hcsb_bridge_is_connected(fx.b), 1);
  fx_finish(&fx, 1);
}

static void test_calls_after_close(void) {
  fx_t fx;
  rec_t r;
  cur = &fx;
  reset(&r, 1);
  fx_open(&fx, script_negotiate_drain_any, NULL);
  fx_run_until(&fx, &fx.ready_n, 1);
  api_close(&fx);
  hcsb_request_t q = req_start("late");
  hcsb_call_t *c;
  CHECK_EQ(api_call(fx.b, &q, 0, rec_cb, &r, &c), 0);
  CHECK_EQ(r.n, 0); /* not inside the call */
  CHECK_EQ(api_cancel(c), -EALREADY);
  uv_run(&fx.loop, UV_RUN_NOWAIT);
  CHECK_EQ(r.n, 1);
  CHECK_EQ(r.status, -ENOTCONN);
  fx_finish(&fx, 0);
}

/* Closed before it was ever opened: waiting calls are cancelled. */
static void script_nothing(peer_t *p) {
  CHECK_EQ(peer_drain(p), 0);
}

static void test_close_before_open(void) {
  fx_t fx;
  rec_t r[2];
  cur = &fx;
  reset(r, 2);
  int fd = fx_init(&fx, script_nothing, NULL);
  call_start(&r[0], "a");
  call_start(&r[1], "b");
  api_close(&fx);
  CHECK_EQ(hcsb_bridge_open_fd(fx.b, fd, NULL, NULL), -EINVAL);
  close(fd);
  fx_finish(&fx, 0);
  CHECK_EQ(r[0].status, -ECANCELED);
  CHECK_EQ(r[1].status, -ECANCELED);
  CHECK_EQ(fx.ready_n, 0);
}

/* ------------------------------------------------------------------------ */
/* Negotiation failures: ready_cb gets the error, the bridge is closed. */

static void script_negotiate_with(peer_t *p) {
  const char *body = p->arg;
  uint32_t type = strstr(body, "\"WrongType\"")
                      ? START_RESP
                      : HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE;
  CHECK_U64(peer_expect(p, HCSB_MSG_NEGOTIATE_PROTOCOL), 1);
  if (strcmp(body, "EOF") == 0) return;
  peer_send(p, type, 1, body);
  CHECK_EQ(peer_drain(p), 0);
}

static rec_t nf[2];

static void nf_ready(fx_t *fx, int status) {
  CHECK(status != 0);
  CHECK_EQ(hcsb_bridge_is_connected(fx->b), 0);
  call_start(&nf[1], "in-ready");
}

static void negotiation_fails(const char *body, int want_status, int want_cause,
                              uint32_t want_hresult) {
  fx_t fx;
  cur = &fx;
  reset(nf, 2);
  fx_open(&fx, script_negotiate_with, (void *)body);
  fx.on_ready = nf_ready;
  call_start(&nf[0], "queued");
  fx_run_until(&fx, &nf[1].n, 1);
  CHECK_EQ(fx.ready_n, 1);
  CHECK_EQ(fx.ready_status, want_status);
  CHECK_U64(fx.ready_hresult, want_hresult);
  CHECK_EQ(nf[0].n, 1);
  CHECK_EQ(nf[0].status, -ECONNRESET);
  CHECK_EQ(nf[1].status, -ENOTCONN);
  CHECK_EQ(hcsb_bridge_close_cause(fx.b), want_cause);
  CHECK(hcsb_bridge_caps(fx.b) == NULL);
  CHECK_EQ(fx.disconnect_n, 0); /* ready_cb reported it */
  fx_finish(&fx, 1);
}

static void test_negotiation_guest_error(void) {
  negotiation_fails("{\"Result\":-1070137076,\"ErrorMessage\":\"unsupported\"}",
                    HCSB_EGUEST, HCSB_EGUEST, 0xC037010Cu);
}

static void test_negotiation_bad_version(void) {
  negotiation_fails("{\"Result\":0,\"Version\":3}", -EPROTO, -EPROTO, 0);
}

static void test_negotiation_wrong_type(void) {
  negotiation_fails("{\"Result\":0,\"Version\":4,\"WrongType\":1}", -EPROTO,
                    -EPROTO, 0);
}

static void test_negotiation_eof(void) {
  fx_t fx;
  cur = &fx;
  reset(nf, 2);
  fx_open(&fx, script_negotiate_with, (void *)"EOF");
  call_start(&nf[0], "queued");
  fx_run_until(&fx, &fx.ready_n, 1);
  CHECK_EQ(fx.ready_status, -ECONNRESET);
  fx_run_until(&fx, &nf[0].n, 1);
  CHECK_EQ(nf[0].status, -ECONNRESET);
  CHECK_EQ(hcsb_bridge_close_cause(fx.b), UV_EOF);
  CHECK_EQ(fx.disconnect_n, 0);
  fx_finish(&fx, 1);
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(eof_mid_frame),
      TEST_ENTRY(size_below_16),
      TEST_ENTRY(write_failure),
      TEST_ENTRY(close_inside_call_callback),
      TEST_ENTRY(close_inside_ready),
      TEST_ENTRY(close_inside_notify),
      TEST_ENTRY(cancel_inside_previous_callback),
      TEST_ENTRY(calls_after_close),
      TEST_ENTRY(close_before_open),
      TEST_ENTRY(negotiation_guest_error),
      TEST_ENTRY(negotiation_bad_version),
      TEST_ENTRY(negotiation_wrong_type),
      TEST_ENTRY(negotiation_eof),
  };
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
