/* Fault matrix: frames and responses a hostile or buggy guest may send.
 * Bad sizes, duplicate, unknown and mistyped responses, guest requests,
 * stray notifications.  Each asserts the exact outcome: which call fails
 * with what, what is counted, and that the connection lives on (or, for a
 * byte stream that can no longer be trusted, dies cleanly). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faults.h"

#define GETPROPS HCSB_MSG_GET_PROPERTIES
#define GETPROPS_RESP HCSB_MSG_GET_PROPERTIES_RESPONSE
#define START HCSB_MSG_START
#define START_RESP HCSB_MSG_START_RESPONSE

/* One more call after the fault, answered: the connection still works. */
static void script_answer_one_start(fpeer_t *p) {
  uint64_t id = fpeer_expect(p, START);
  fpeer_send(p, START_RESP, id, FAULTS_OK_BODY);
}

static void check_alive(fbr_t *f) {
  fcall_t c;
  hcsb_request_t q = faults_req(START);
  memset(&c, 0, sizeof c);
  CHECK_EQ(hcsb_bridge_is_connected(f->b), 1);
  CHECK_EQ(fcall(f->b, &q, 0, &c, NULL), 0);
  fpeer_open_gate(&f->peer);
  RUN_UNTIL(&f->loop, c.n == 1);
  CHECK_EQ(c.status, 0);
  CHECK_EQ(c.resp_type, START_RESP);
  CHECK_EQ(f->disc_n, 0);
}

/* A body of exactly `len` bytes: a valid answer padded with spaces (JSON
 * allows trailing whitespace). */
static char *padded_ok(size_t len) {
  static const char ok[] = FAULTS_OK_BODY;
  char *b = malloc(len + 1);
  CHECK(b != NULL && len >= sizeof ok - 1);
  memcpy(b, ok, sizeof ok - 1);
  memset(b + sizeof ok - 1, ' ', len - (sizeof ok - 1));
  b[len] = '\0';
  return b;
}

/* ------------------------------------------------------------------------ */
/* Size < 16: every value 0..15.  The stream cannot be resynchronised, so
 * the connection is lost: the pending call fails -ECONNRESET once, the
 * cause is -EPROTO, and a valid answer right behind it is not believed. */

static void script_small_size(fpeer_t *p) {
  uint32_t size = (uint32_t)(uintptr_t)p->arg;
  uint8_t *buf = malloc(16);
  CHECK(buf != NULL);
  fpeer_negotiate(p);
  uint64_t id = fpeer_expect(p, START);
  faults_hdr(buf, START_RESP, size, id);
  /* One write, so the host cannot close before the second frame is out. */
  size_t n = faults_frame_append(&buf, 16, START_RESP, id, FAULTS_OK_BODY,
                                 strlen(FAULTS_OK_BODY));
  fpeer_write(p, buf, n);
  free(buf);
  fpeer_drain(p);
}

static void test_size_below_16(void) {
  for (uint32_t size = 0; size < 16; size++) {
    fbr_t f;
    fcall_t a, after;
    hcsb_request_t q = faults_req(START);
    memset(&a, 0, sizeof a);
    memset(&after, 0, sizeof after);
    fbr_open(&f, script_small_size, (void *)(uintptr_t)size, NULL);
    CHECK_EQ(fcall(f.b, &q, 0, &a, NULL), 0);
    RUN_UNTIL(&f.loop, a.n == 1 && f.disc_n == 1);
    CHECK_EQ(f.ready_status, 0);
    CHECK_EQ(a.status, -ECONNRESET);
    CHECK_EQ(f.disc_status, -ECONNRESET);
    CHECK_EQ(hcsb_bridge_close_cause(f.b), -EPROTO);
    CHECK_EQ(hcsb_bridge_is_connected(f.b), 0);
    /* Later calls: -ENOTCONN, on a later turn. */
    CHECK_EQ(fcall(f.b, &q, 0, &after, NULL), 0);
    CHECK_EQ(after.n, 0);
    RUN_UNTIL(&f.loop, after.n == 1);
    CHECK_EQ(after.status, -ENOTCONN);
    hcsb_bridge_stats_t st;
    hcsb_bridge_stats(f.b, &st);
    CHECK_U64(st.frames_received, 1); /* the negotiation answer only */
    fbr_finish(&f);
    CHECK_EQ(a.n, 1);
  }
}

/* ------------------------------------------------------------------------ */
/* Size just over the limit: that call fails -EMSGSIZE, a frame of exactly
 * the limit right behind it is delivered, the connection lives and the
 * next call succeeds.  Once whole, once trickled 7 bytes at a time so the
 * header and the skipped body straddle many reads. */

#define LIMIT 4096u

static void script_over_limit(fpeer_t *p) {
  int trickle = p->arg != NULL;
  fpeer_negotiate(p);
  uint64_t a = fpeer_expect(p, GETPROPS);
  uint64_t b = fpeer_expect(p, GETPROPS);
  char *over = padded_ok(LIMIT + 1 - 16);
  char *exact = padded_ok(LIMIT - 16);
  uint8_t *buf = NULL;
  size_t n = faults_frame_append(&buf, 0, GETPROPS_RESP, a, over, strlen(over));
  n = faults_frame_append(&buf, n, GETPROPS_RESP, b, exact, strlen(exact));
  if (trickle)
    fpeer_trickle(p, buf, n, 7, 200);
  else
    fpeer_write(p, buf, n);
  free(buf);
  free(over);
  free(exact);
  script_answer_one_start(p);
  fpeer_drain(p);
}

static void set_limit(fbr_t *f) {
  CHECK_EQ(hcsb_bridge_set_max_frame(f->b, LIMIT), 0);
}

static void over_limit(int trickle) {
  fbr_t f;
  fcall_t a, b;
  hcsb_request_t q = faults_req(GETPROPS);
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  fbr_open(&f, script_over_limit, trickle ? &f : NULL, set_limit);
  CHECK_EQ(fcall(f.b, &q, 0, &a, NULL), 0);
  CHECK_EQ(fcall(f.b, &q, 0, &b, NULL), 0);
  RUN_UNTIL(&f.loop, a.n == 1 && b.n == 1);
  CHECK_EQ(a.status, -EMSGSIZE);
  CHECK_EQ(b.status, 0);
  CHECK_U64(b.id, 3);
  CHECK(a.order < b.order);
  hcsb_bridge_stats_t st;
  hcsb_bridge_stats(f.b, &st);
  CHECK_U64(st.oversize_frames, 1);
  CHECK_U64(st.bad_responses, 0);
  check_alive(&f);
  fbr_finish(&f);
  CHECK_EQ(a.n, 1);
  CHECK_EQ(b.n, 1);
}

static void test_size_just_over_limit(void) {
  over_limit(0);
}
static void test_size_just_over_limit_trickled(void) {
  over_limit(1);
}

/* ------------------------------------------------------------------------ */
/* A 100 MB frame announced, then trickled: the call fails -EMSGSIZE as
 * soon as the header is in (before the body has even started), the body
 * streams past without being buffered (heap growth stays far below the
 * frame), and the call behind it is answered. */

#define HUGE_SIZE (100u * 1024u * 1024u)
static uint8_t blast[1024 * 1024]; /* zeros: the rig's, not the heap's */

static void script_huge(fpeer_t *p) {
  uint8_t hdr[16];
  fpeer_negotiate(p);
  uint64_t a = fpeer_expect(p, START);
  uint64_t b = fpeer_expect(p, START);
  faults_hdr(hdr, START_RESP, HUGE_SIZE, a);
  fpeer_trickle(p, hdr, 16, 1, 1000); /* 1 byte per ms */
  fpeer_trickle(p, blast, 200, 1, 1000);
  fpeer_wait_gate(p); /* the test saw the call fail */
  size_t left = HUGE_SIZE - 16 - 200;
  while (left > 0) {
    size_t n = left < sizeof blast ? left : sizeof blast;
    fpeer_write(p, blast, n);
    left -= n;
  }
  fpeer_send(p, START_RESP, b, FAULTS_OK_BODY);
  script_answer_one_start(p);
  fpeer_drain(p);
}

typedef struct gauge_s {
  uv_timer_t t;
  size_t base, peak;
} gauge_t;

static void gauge_cb(uv_timer_t *t) {
  gauge_t *g = (gauge_t *)t;
  size_t now = faults_heap_bytes();
  if (now > g->peak) g->peak = now;
}

static void gauge_start(gauge_t *g, uv_loop_t *loop) {
  g->base = g->peak = faults_heap_bytes();
  uv_timer_init(loop, &g->t);
  uv_timer_start(&g->t, gauge_cb, 1, 1);
}

static size_t gauge_stop(gauge_t *g) {
  gauge_cb(&g->t);
  uv_close((uv_handle_t *)&g->t, NULL);
  return g->peak - g->base;
}

static void test_huge_frame_trickled(void) {
  fbr_t f;
  fcall_t a, b;
  gauge_t g;
  hcsb_request_t q = faults_req(START);
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  fbr_open(&f, script_huge, NULL, NULL);
  RUN_UNTIL(&f.loop, f.ready_n == 1);
  gauge_start(&g, &f.loop);
  CHECK_EQ(fcall(f.b, &q, 0, &a, NULL), 0);
  CHECK_EQ(fcall(f.b, &q, 0, &b, NULL), 0);
  RUN_UNTIL(&f.loop, a.n == 1);
  CHECK_EQ(a.status, -EMSGSIZE);
  CHECK_EQ(b.n, 0);
  hcsb_bridge_stats_t st;
  hcsb_bridge_stats(f.b, &st);
  CHECK(st.bytes_received < 342 + 16 + 200 + 1); /* the body had not come */
  fpeer_open_gate(&f.peer);
  RUN_UNTIL_MS(&f.loop, b.n == 1, 30000);
  CHECK_EQ(b.status, 0);
  size_t growth = gauge_stop(&g);
  hcsb_bridge_stats(f.b, &st);
  CHECK(st.bytes_received >= HUGE_SIZE);
  CHECK_U64(st.oversize_frames, 1);
  fprintf(stderr, "  heap growth while skipping 100 MB: %zu bytes\n", growth);
  CHECK(growth < 1024 * 1024);
  check_alive(&f);
  fbr_finish(&f);
}

/* A frame within the limit announced at the limit, of which only 64 KiB
 * ever arrive: memory follows the bytes received, not the header; the EOF
 * that follows fails the call. */

static void script_declared_max(fpeer_t *p) {
  uint8_t hdr[16];
  fpeer_negotiate(p);
  uint64_t a = fpeer_expect(p, START);
  faults_hdr(hdr, START_RESP, HCSB_DEFAULT_MAX_FRAME, a);
  fpeer_write(p, hdr, 16);
  fpeer_trickle(p, blast, 64 * 1024, 4096, 1000);
  fpeer_wait_gate(p);
  fpeer_shutdown(p);
  fpeer_drain(p);
}

static uint64_t received(fbr_t *f) {
  hcsb_bridge_stats_t st;
  hcsb_bridge_stats(f->b, &st);
  return st.bytes_received;
}

static void test_declared_max_frame_then_eof(void) {
  fbr_t f;
  fcall_t a;
  gauge_t g;
  hcsb_request_t q = faults_req(START);
  memset(&a, 0, sizeof a);
  fbr_open(&f, script_declared_max, NULL, NULL);
  RUN_UNTIL(&f.loop, f.ready_n == 1);
  gauge_start(&g, &f.loop);
  CHECK_EQ(fcall(f.b, &q, 0, &a, NULL), 0);
  RUN_UNTIL(&f.loop, received(&f) >= 342 + 16 + 64 * 1024);
  size_t growth = gauge_stop(&g);
  fprintf(stderr, "  heap growth holding 64 KiB of a 16 MiB frame: %zu bytes\n",
          growth);
  CHECK(growth < 512 * 1024);
  CHECK_EQ(a.n, 0);
  fpeer_open_gate(&f.peer);
  RUN_UNTIL(&f.loop, a.n == 1 && f.disc_n == 1);
  CHECK_EQ(a.status, -ECONNRESET);
  CHECK_EQ(hcsb_bridge_close_cause(f.b), UV_EOF);
  fbr_finish(&f);
}

/* ------------------------------------------------------------------------ */
/* Answers nobody is waiting for: a second answer to one ID, IDs never sent
 * (0, 999, 2^64-1; also while negotiating), and a late answer to a call
 * that timed out.  Each is dropped and counted; nothing else changes. */

static void script_orphans(fpeer_t *p) {
  uint64_t nid = fpeer_expect(p, HCSB_MSG_NEGOTIATE_PROTOCOL);
  fpeer_send(p, START_RESP, 77, FAULTS_OK_BODY); /* before negotiation */
  fpeer_send(p, HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE, nid,
             faults_negotiate_body());
  uint64_t a = fpeer_expect(p, START);
  uint64_t late = fpeer_expect(p, START);
  fpeer_send(p, START_RESP, a, FAULTS_OK_BODY);
  fpeer_send(p, START_RESP, a, FAULTS_OK_BODY);
  fpeer_send(p, START_RESP, 999, FAULTS_OK_BODY);
  fpeer_send(p, START_RESP, 0, FAULTS_OK_BODY);
  fpeer_send(p, START_RESP, UINT64_MAX, FAULTS_OK_BODY);
  fpeer_wait_gate(p); /* `late` has timed out */
  fpeer_send(p, START_RESP, late, FAULTS_OK_BODY);
  fpeer_send(p, START_RESP, late, FAULTS_OK_BODY); /* and once more */
  script_answer_one_start(p);
  fpeer_drain(p);
}

static void test_orphan_responses(void) {
  fbr_t f;
  fcall_t a, late;
  hcsb_request_t q = faults_req(START);
  memset(&a, 0, sizeof a);
  memset(&late, 0, sizeof late);
  fbr_open(&f, script_orphans, NULL, NULL);
  /* After negotiation, so `late` is surely sent before it times out. */
  RUN_UNTIL(&f.loop, f.ready_n == 1);
  CHECK_EQ(fcall(f.b, &q, 0, &a, NULL), 0);
  CHECK_EQ(fcall(f.b, &q, 50, &late, NULL), 0);
  RUN_UNTIL(&f.loop, a.n == 1 && late.n == 1);
  CHECK_EQ(f.ready_status, 0);
  CHECK_EQ(a.status, 0);
  CHECK_U64(a.id, 2);
  CHECK_EQ(late.status, -ETIMEDOUT);
  check_alive(&f);
  hcsb_bridge_stats_t st;
  hcsb_bridge_stats(f.b, &st);
  CHECK_U64(st.unknown_responses, 6); /* 77, a again, 999, 0, max, late again */
  CHECK_U64(st.late_responses, 1);
  CHECK_U64(st.calls_completed, 3);
  CHECK_EQ(st.pending, 0);
  fbr_finish(&f);
  CHECK_EQ(a.n, 1);
  CHECK_EQ(late.n, 1);
}

/* ------------------------------------------------------------------------ */
/* Answers of the wrong type for their ID fail that call with -EPROTO (the
 * call is over: its real answer later is unknown); a *request* typed frame
 * carrying a pending ID is not an answer at all. */

static void script_mismatch(fpeer_t *p) {
  fpeer_negotiate(p);
  uint64_t g = fpeer_expect(p, GETPROPS);
  uint64_t s = fpeer_expect(p, START);
  uint64_t e = fpeer_expect(p, HCSB_MSG_EXECUTE_PROCESS);
  fpeer_send(p, HCSB_MSG_EXECUTE_PROCESS_RESPONSE, g,
             "{\"Result\":0,\"ProcessId\":5}");
  fpeer_send(p, START, s, FAULTS_OK_BODY); /* a request type: dropped */
  fpeer_send(p, HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE, s,
             faults_negotiate_body());
  fpeer_send(p, 0x20200501u, e, "{\"Result\":0,\"ProcessId\":5}");
  fpeer_send(p, GETPROPS_RESP, g, "{\"Result\":0}"); /* the real one, late */
  script_answer_one_start(p);
  fpeer_drain(p);
}

static void test_response_type_mismatch(void) {
  fbr_t f;
  fcall_t g, s, e;
  hcsb_request_t qg = faults_req(GETPROPS), qs = faults_req(START),
                 qe = faults_req(HCSB_MSG_EXECUTE_PROCESS);
  memset(&g, 0, sizeof g);
  memset(&s, 0, sizeof s);
  memset(&e, 0, sizeof e);
  fbr_open(&f, script_mismatch, NULL, NULL);
  CHECK_EQ(fcall(f.b, &qg, 0, &g, NULL), 0);
  CHECK_EQ(fcall(f.b, &qs, 0, &s, NULL), 0);
  CHECK_EQ(fcall(f.b, &qe, 0, &e, NULL), 0);
  RUN_UNTIL(&f.loop, g.n && s.n && e.n);
  CHECK_EQ(g.status, -EPROTO);
  CHECK_EQ(s.status, -EPROTO);
  CHECK_EQ(e.status, -EPROTO);
  CHECK(g.order < s.order && s.order < e.order);
  check_alive(&f);
  hcsb_bridge_stats_t st;
  hcsb_bridge_stats(f.b, &st);
  CHECK_U64(st.bad_responses, 3);
  CHECK_U64(st.dropped_messages, 1);
  CHECK_U64(st.unknown_responses, 1);
  fbr_finish(&f);
  CHECK_EQ(g.n + s.n + e.n, 3);
}

/* ------------------------------------------------------------------------ */
/* Frames a guest must never send: requests, unknown message types, a
 * notification of another version or category.  Dropped and counted. */

static void script_strays(fpeer_t *p) {
  static const uint32_t types[] = {HCSB_MSG_CREATE, 0u,          0x30100102u,
                                   0x30200101u,     0x40000000u, 0xF0100101u,
                                   0x10100b01u};
  fpeer_negotiate(p);
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    fpeer_send(p, types[i], i, FAULTS_OK_BODY);
  script_answer_one_start(p);
  fpeer_drain(p);
}

static void test_guest_sends_strays(void) {
  fbr_t f;
  fbr_open(&f, script_strays, NULL, NULL);
  RUN_UNTIL(&f.loop, f.ready_n == 1);
  check_alive(&f);
  hcsb_bridge_stats_t st;
  hcsb_bridge_stats(f.b, &st);
  CHECK_U64(st.dropped_messages, 7);
  CHECK_U64(st.notifications, 0);
  CHECK_EQ(f.notify_n, 0);
  fbr_finish(&f);
}

/* ------------------------------------------------------------------------ */
/* Notifications at the API level: one for a container nobody registered is
 * ignored (hcsshim would kill the bridge); a second one for the same
 * container does not change its recorded exit; the connection lives. */

static void script_notifications(fpeer_t *p) {
  static const char fmt[] =
      "{\"ContainerId\":\"%s\",\"ActivityId\":\"00000000-0000-0000-0000-"
      "000000000000\",\"Type\":\"%s\",\"Operation\":\"None\",\"Result\":%d}";
  char body[256];
  fpeer_negotiate(p);
  fpeer_wait_gate(p); /* the waits are registered */
  snprintf(body, sizeof body, fmt, "c-other", "GracefulExit", 0);
  fpeer_send(p, HCSB_MSG_NOTIFY_CONTAINER, 0, body);
  snprintf(body, sizeof body, fmt, "c-known", "GracefulExit", 0);
  fpeer_send(p, HCSB_MSG_NOTIFY_CONTAINER, 0, body);
  snprintf(body, sizeof body, fmt, "c-known", "UnexpectedExit", -2147467259);
  fpeer_send(p, HCSB_MSG_NOTIFY_CONTAINER, 0, body);
  uint64_t id = fpeer_expect(p, HCSB_MSG_MODIFY_SETTINGS);
  fpeer_send(p, HCSB_MSG_MODIFY_SETTINGS_RESPONSE, id, FAULTS_OK_BODY);
  fpeer_drain(p);
}

typedef struct cwait_s {
  int n, status;
  hcsb_container_end_t end;
  hcsb_notification_type_t type;
  char type_name[32];
  uint32_t result;
  int had_exit;
} cwait_t;

static void cwait_cb(void *data, hcsb_container_t *c, int status,
                     const hcsb_container_exit_t *exit) {
  cwait_t *w = data;
  (void)c;
  CHECK(!faults_in_api);
  w->n++;
  w->status = status;
  w->had_exit = exit != NULL;
  if (exit != NULL) {
    w->end = exit->end;
    w->type = exit->type;
    w->result = exit->result;
    snprintf(w->type_name, sizeof w->type_name, "%s",
             exit->type_name ? exit->type_name : "");
  }
}

static void test_stray_and_second_notifications(void) {
  fconn_t f;
  hcsb_container_t *known, *other;
  cwait_t w1, w2, w3;
  fdone_t mod = {0, 0, 0};
  int closed = 0;
  memset(&w1, 0, sizeof w1);
  memset(&w2, 0, sizeof w2);
  memset(&w3, 0, sizeof w3);
  fconn_open(&f, script_notifications, NULL, NULL, NULL);
  fconn_wait_open(&f, 0);
  CHECK_EQ(hcsb_conn_open_container(f.conn, "c-known", &known), 0);
  CHECK_EQ(hcsb_container_wait(known, 0, cwait_cb, &w1), 0);
  fpeer_open_gate(&f.peer);
  CHECK_EQ(hcsb_conn_modify(f.conn, NULL,
                            "{\"ResourceType\":\"Memory\",\"RequestType\":"
                            "\"Update\",\"Settings\":1024}",
                            fdone_cb, &mod),
           0);
  RUN_UNTIL(&f.loop, mod.n == 1 && w1.n == 1);
  CHECK_EQ(mod.status, 0); /* the connection outlived all three */
  CHECK_EQ(w1.status, 0);
  CHECK_EQ(w1.end, HCSB_CONTAINER_EXITED);
  CHECK_EQ(w1.type, HCSB_NOTIFY_GRACEFUL_EXIT);
  CHECK_STR(w1.type_name, "GracefulExit");
  CHECK_EQ(w1.result, 0);
  /* The second notification did not overwrite the first. */
  CHECK_EQ(hcsb_container_wait(known, 0, cwait_cb, &w2), 0);
  RUN_UNTIL(&f.loop, w2.n == 1);
  CHECK_EQ(w2.status, 0);
  CHECK_EQ(w2.type, HCSB_NOTIFY_GRACEFUL_EXIT);
  CHECK_EQ(w2.result, 0);
  /* The stray one left no trace: c-other has not exited. */
  CHECK_EQ(hcsb_conn_open_container(f.conn, "c-other", &other), 0);
  CHECK_EQ(hcsb_container_wait(other, 30, cwait_cb, &w3), 0);
  RUN_UNTIL(&f.loop, w3.n == 1);
  CHECK_EQ(w3.status, -ETIMEDOUT);
  CHECK_EQ(w3.had_exit, 0);
  CHECK_EQ(f.lost_n, 0);
  hcsb_container_close(known, fclosed_cb, &closed);
  hcsb_container_close(other, fclosed_cb, &closed);
  RUN_UNTIL(&f.loop, closed == 2);
  fconn_finish(&f);
  CHECK_EQ(w1.n + w2.n + w3.n, 3);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(size_below_16),
    TEST_ENTRY(size_just_over_limit),
    TEST_ENTRY(size_just_over_limit_trickled),
    TEST_ENTRY_T(huge_frame_trickled, 60),
    TEST_ENTRY(declared_max_frame_then_eof),
    TEST_ENTRY(orphan_responses),
    TEST_ENTRY(response_type_mismatch),
    TEST_ENTRY(guest_sends_strays),
    TEST_ENTRY(stray_and_second_notifications),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
