/* Fault matrix: flow and re-entrancy.  A slow-loris guest beside a fast
 * one on the same loop; a guest that stops reading (short writes, the
 * queued-bytes limit); 100,000 pipelined calls and a disconnect; a chain
 * of cancels each made from the previous call's callback; the bridge
 * closed from inside the negotiation and notification callbacks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "faults.h"

#define START HCSB_MSG_START
#define START_RESP HCSB_MSG_START_RESPONSE
#define GETPROPS HCSB_MSG_GET_PROPERTIES

/* ------------------------------------------------------------------------ */
/* Slow loris: guest A answers one byte per millisecond; guest B, on the
 * same loop, completes a long run of round trips while A's answers are
 * still dribbling in.  Then A's answers arrive whole and exact. */

static size_t loris_len(void) {
  return faults_pick(2000, 4000);
}

static void script_loris(fpeer_t *p) {
  uint64_t nid = fpeer_expect(p, HCSB_MSG_NEGOTIATE_PROTOCOL);
  uint8_t *buf = NULL;
  const char *nb = faults_negotiate_body();
  size_t n = faults_frame_append(&buf, 0, HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE,
                                 nid, nb, strlen(nb));
  fpeer_trickle(p, buf, n, 1, 1000);
  uint64_t id = fpeer_expect(p, GETPROPS);
  /* {"Result":0,"Properties":"\"aaa...\""}: Properties is a JSON string. */
  size_t plen = loris_len();
  char *body = malloc(plen + 64), *q;
  q = stpcpy(body, "{\"Result\":0,\"Properties\":\"\\\"");
  memset(q, 'a', plen);
  strcpy(q + plen, "\\\"\"}");
  n = faults_frame_append(&buf, 0, HCSB_MSG_GET_PROPERTIES_RESPONSE, id, body,
                          strlen(body));
  fpeer_trickle(p, buf, n, 1, 1000);
  free(body);
  free(buf);
  fpeer_drain(p);
}

/* Answers every Start until EOF. */
static void serve_starts(fpeer_t *p) {
  fframe_t f;
  while (fpeer_read(p, &f) == 0) {
    CHECK_EQ(f.type, START);
    fpeer_send(p, START_RESP, f.id, FAULTS_OK_BODY);
    fframe_free(&f);
  }
}

static void script_fast(fpeer_t *p) {
  fpeer_negotiate(p);
  serve_starts(p);
}

typedef struct chain_s {
  fbr_t *f;
  fcall_t c;
  size_t done, want;
  int failed;
} chain_t;

static void chain_next(fcall_t *c) {
  chain_t *ch = c->arg;
  if (c->status != 0) ch->failed++;
  if (++ch->done == ch->want) return;
  hcsb_request_t q = faults_req(START);
  memset(&ch->c, 0, sizeof ch->c);
  ch->c.then = chain_next;
  ch->c.arg = ch;
  CHECK_EQ(fcall(ch->f->b, &q, 0, &ch->c, NULL), 0);
}

static void test_slow_loris_does_not_block_others(void) {
  fbr_t a, b;
  fcall_t slow;
  chain_t ch;
  hcsb_bridge_stats_t st;
  memset(&slow, 0, sizeof slow);
  memset(&ch, 0, sizeof ch);
  fbr_open(&a, script_loris, NULL, NULL);
  fbr_open_on(&b, &a.loop, script_fast, NULL, NULL);
  hcsb_request_t q = faults_req(GETPROPS);
  CHECK_EQ(fcall(a.b, &q, 0, &slow, NULL), 0);
  RUN_UNTIL(&a.loop, b.ready_n == 1);
  CHECK_EQ(b.ready_status, 0);
  CHECK_EQ(a.ready_n, 0); /* still dribbling */
  double t0 = faults_now_ms();
  ch.f = &b;
  ch.want = faults_pick(2000, 200);
  ch.c.then = chain_next;
  ch.c.arg = &ch;
  q = faults_req(START);
  CHECK_EQ(fcall(b.b, &q, 0, &ch.c, NULL), 0);
  RUN_UNTIL(&a.loop, ch.done == ch.want);
  double dt = faults_now_ms() - t0;
  CHECK_EQ(ch.failed, 0);
  /* A's answer is still incomplete: B never waited for it. */
  CHECK_EQ(slow.n, 0);
  hcsb_bridge_stats(a.b, &st);
  size_t a_total = 342 + 16 + loris_len() + 32 + 16;
  fprintf(stderr,
          "  %zu round trips in %.0f ms while the loris had sent %llu of "
          "%zu bytes\n",
          ch.want, dt, (unsigned long long)st.bytes_received, a_total);
  CHECK(st.bytes_received > 0 && st.bytes_received < a_total);
  RUN_UNTIL_MS(&a.loop, slow.n == 1, 30000);
  CHECK_EQ(a.ready_status, 0);
  CHECK_EQ(slow.status, 0);
  CHECK_EQ(slow.props_len, loris_len() + 2);
  fbr_finish(&b);
  fbr_finish(&a);
}

/* ------------------------------------------------------------------------ */
/* A guest that stops reading: the kernel takes less than asked (short
 * writes, then EAGAIN), frames queue up to the configured limit, the call
 * that would pass it fails -ENOBUFS at once (and never calls back), and
 * once the guest reads again - slowly, in small pieces - every accepted
 * frame arrives exactly once, in order, byte for byte. */

#define QLIMIT (256u * 1024u)
#define QBODY 10000u

static char *q_body(size_t seq) {
  char *b = malloc(QBODY + 1);
  CHECK(b != NULL);
  int n = snprintf(b, QBODY, "{\"Seq\":%zu,\"Pad\":\"", seq);
  memset(b + n, 'a' + (int)(seq % 26), QBODY - (size_t)n - 2);
  memcpy(b + QBODY - 2, "\"}", 3);
  return b;
}

typedef struct qstate_s {
  size_t accepted; /* set by the test before the gate opens */
  size_t got;
} qstate_t;

static void script_stalled_reader(fpeer_t *p) {
  qstate_t *qs = p->arg;
  int small = 4096;
  setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  fpeer_negotiate(p);
  fpeer_wait_gate(p);
  /* Slowly: 1500-byte reads with pauses, straight from the socket. */
  char *buf = malloc(QBODY + 16);
  for (size_t i = 0; i < qs->accepted; i++) {
    size_t have = 0;
    while (have < QBODY + 16) {
      size_t want = QBODY + 16 - have < 1500 ? QBODY + 16 - have : 1500;
      ssize_t n = read(p->fd, buf + have, want);
      CHECK(n > 0);
      have += (size_t)n;
      if (i % 8 == 0) usleep(200);
    }
    uint32_t size = (uint32_t)(uint8_t)buf[4] | (uint32_t)(uint8_t)buf[5] << 8 |
                    (uint32_t)(uint8_t)buf[6] << 16 |
                    (uint32_t)(uint8_t)buf[7] << 24;
    uint64_t id = 0;
    for (int k = 7; k >= 0; k--) id = id << 8 | (uint8_t)buf[8 + k];
    CHECK_EQ(size, QBODY + 16);
    CHECK_U64(id, i + 2);
    char *want = q_body(i);
    CHECK_MEM(buf + 16, want, QBODY);
    free(want);
    qs->got++; /* before the answer: the test reads it after */
    fpeer_send(p, START_RESP, id, FAULTS_OK_BODY);
  }
  free(buf);
  serve_starts(p);
}

static void small_sndbuf(fbr_t *f) {
  int small = 4096;
  CHECK_EQ(setsockopt(f->host_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small),
           0);
  CHECK_EQ(hcsb_bridge_set_max_write_queue(f->b, QLIMIT), 0);
}

static void test_stalled_reader_write_queue_limit(void) {
  fbr_t f;
  qstate_t qs = {0, 0};
  static fcall_t calls[64];
  hcsb_bridge_stats_t st;
  memset(calls, 0, sizeof calls);
  fbr_open(&f, script_stalled_reader, &qs, small_sndbuf);
  RUN_UNTIL(&f.loop, f.ready_n == 1);
  size_t n = 0;
  int rc = 0;
  while (n < 64) {
    char *body = q_body(n);
    hcsb_request_t q = faults_req(START);
    q.raw_body = body;
    q.raw_len = QBODY;
    hcsb_bridge_stats(f.b, &st);
    size_t before = st.queued_bytes;
    rc = fcall(f.b, &q, 0, &calls[n], NULL);
    free(body);
    if (rc != 0) {
      CHECK(before + QBODY + 16 > QLIMIT); /* refused only past the limit */
      break;
    }
    n++;
    /* Let the writer run: the kernel takes a few KiB, then says EAGAIN. */
    uv_run(&f.loop, UV_RUN_NOWAIT);
  }
  CHECK_EQ(rc, -ENOBUFS);
  hcsb_bridge_stats(f.b, &st);
  fprintf(stderr,
          "  accepted %zu frames (%zu bytes queued, %llu writes) before "
          "-ENOBUFS\n",
          n, st.queued_bytes, (unsigned long long)st.writes);
  CHECK(st.queued_bytes <= QLIMIT);
  CHECK(st.queued_bytes + 2 * (QBODY + 16) > QLIMIT);
  CHECK(n >= QLIMIT / (QBODY + 16));
  CHECK_EQ(st.pending, n);
  for (int turn = 0; turn < 20; turn++) uv_run(&f.loop, UV_RUN_NOWAIT);
  CHECK_EQ(calls[n].n, 0); /* the refused one never calls back */
  qs.accepted = n;
  fpeer_open_gate(&f.peer);
  RUN_UNTIL(&f.loop, calls[n - 1].n == 1);
  for (size_t i = 0; i < n; i++) {
    CHECK_EQ(calls[i].n, 1);
    CHECK_EQ(calls[i].status, 0);
    CHECK_U64(calls[i].id, i + 2);
  }
  CHECK_EQ(calls[n].n, 0);
  CHECK_EQ(qs.got, n);
  hcsb_bridge_stats(f.b, &st);
  CHECK_EQ(st.queued_bytes, 0);
  CHECK(st.writes > 1);
  CHECK(st.bytes_sent > n * (QBODY + 16));
  /* Accepting again once drained. */
  fcall_t again;
  memset(&again, 0, sizeof again);
  hcsb_request_t q = faults_req(START);
  CHECK_EQ(fcall(f.b, &q, 0, &again, NULL), 0);
  RUN_UNTIL(&f.loop, again.n == 1);
  CHECK_EQ(again.status, 0);
  fbr_finish(&f);
}

/* ------------------------------------------------------------------------ */
/* 100,000 pipelined calls, half of them answered, then the guest hangs up:
 * every callback once, the answered ones 0 with their own ID, the rest
 * -ECONNRESET; and the memory they took is given back. */

static size_t npipe(void) {
  return faults_pick(100000, 10000);
}

static void script_half_then_hangup(fpeer_t *p) {
  size_t n = npipe();
  uint8_t *out = NULL;
  size_t len = 0;
  fpeer_negotiate(p);
  for (size_t i = 0; i < n; i++) {
    fframe_t f;
    CHECK_EQ(fpeer_read(p, &f), 0);
    CHECK_U64(f.id, i + 2);
    if (i % 2 == 0)
      len = faults_frame_append(&out, len, START_RESP, f.id, FAULTS_OK_BODY,
                                strlen(FAULTS_OK_BODY));
    fframe_free(&f);
  }
  fpeer_write(p, out, len);
  free(out);
  /* The thread closes its end: EOF, and the host's writes fail after. */
}

static void test_pipelined_then_disconnect(void) {
  size_t n = npipe();
  fcall_t *calls = calloc(n, sizeof *calls);
  fbr_t f;
  CHECK(calls != NULL);
  size_t heap0 = faults_heap_bytes();
  fbr_open(&f, script_half_then_hangup, NULL, NULL);
  RUN_UNTIL(&f.loop, f.ready_n == 1);
  hcsb_request_t q = faults_req(START);
  for (size_t i = 0; i < n; i++)
    CHECK_EQ(fcall(f.b, &q, 0, &calls[i], NULL), 0);
  hcsb_bridge_stats_t st;
  hcsb_bridge_stats(f.b, &st);
  CHECK_EQ(st.pending, n);
  RUN_UNTIL_MS(&f.loop, calls[n - 1].n == 1 && f.disc_n == 1, 30000);
  size_t ok = 0, lost = 0;
  for (size_t i = 0; i < n; i++) {
    CHECK_EQ(calls[i].n, 1);
    if (i % 2 == 0) {
      CHECK_EQ(calls[i].status, 0);
      CHECK_U64(calls[i].id, i + 2);
      ok++;
    } else {
      /* The guest's close races its last answers being read: an odd call
       * can only ever be lost. */
      CHECK_EQ(calls[i].status, -ECONNRESET);
      lost++;
    }
  }
  CHECK_EQ(ok + lost, n);
  CHECK_EQ(f.disc_status, -ECONNRESET);
  hcsb_bridge_stats(f.b, &st);
  CHECK_EQ(st.pending, 0);
  CHECK_U64(st.calls_completed, n);
  fbr_finish(&f);
  size_t heap1 = faults_heap_bytes();
  fprintf(stderr, "  %zu calls: %zu answered, %zu lost; heap %zu -> %zu\n", n,
          ok, lost, heap0, heap1);
  CHECK(heap1 < heap0 + 64 * 1024);
  free(calls);
}

/* ------------------------------------------------------------------------ */
/* Cancel each call from the callback of the previous one.  Once with the
 * calls sent (the first answered, the rest cancelled; the guest's late
 * answers are dropped and counted), once with the calls still waiting for
 * negotiation (then none of them may ever reach the guest). */

static size_t ncancel(void) {
  return faults_pick(100000, 5000);
}

typedef struct cancel_s {
  fcall_t *calls;
  hcsb_call_t **handles;
  size_t n;
  size_t fired;
  int ordered;
} cancel_t;

static cancel_t cx;

static void cancel_next(fcall_t *c) {
  size_t i = (size_t)(c - cx.calls);
  if (i != cx.fired) cx.ordered = 0;
  cx.fired++;
  if (i + 1 < cx.n) {
    faults_in_api = 1;
    CHECK_EQ(hcsb_call_cancel(cx.handles[i + 1]), 0);
    faults_in_api = 0;
    CHECK_EQ(cx.calls[i + 1].n, 0); /* not inside the cancel */
  }
}

static void cancel_setup(size_t n) {
  cx.n = n;
  cx.fired = 0;
  cx.ordered = 1;
  cx.calls = calloc(n, sizeof *cx.calls);
  cx.handles = calloc(n, sizeof *cx.handles);
  CHECK(cx.calls != NULL && cx.handles != NULL);
  for (size_t i = 0; i < n; i++) cx.calls[i].then = cancel_next;
}

static void script_first_then_late(fpeer_t *p) {
  size_t n = ncancel();
  uint8_t *out = NULL;
  size_t len = 0;
  fpeer_negotiate(p);
  for (size_t i = 0; i < n; i++) {
    fframe_t f;
    CHECK_EQ(fpeer_read(p, &f), 0);
    if (i == 0)
      fpeer_send(p, START_RESP, f.id, FAULTS_OK_BODY);
    else
      len = faults_frame_append(&out, len, START_RESP, f.id, FAULTS_OK_BODY,
                                strlen(FAULTS_OK_BODY));
    fframe_free(&f);
  }
  fpeer_wait_gate(p); /* every call has been cancelled */
  fpeer_write(p, out, len);
  free(out);
  serve_starts(p);
}

static void test_cancel_chain_sent(void) {
  fbr_t f;
  size_t n = ncancel();
  cancel_setup(n);
  fbr_open(&f, script_first_then_late, NULL, NULL);
  RUN_UNTIL(&f.loop, f.ready_n == 1);
  hcsb_request_t q = faults_req(START);
  for (size_t i = 0; i < n; i++)
    CHECK_EQ(fcall(f.b, &q, 0, &cx.calls[i], &cx.handles[i]), 0);
  RUN_UNTIL_MS(&f.loop, cx.fired == n, 30000);
  CHECK(cx.ordered);
  CHECK_EQ(cx.calls[0].status, 0);
  for (size_t i = 1; i < n; i++) {
    CHECK_EQ(cx.calls[i].n, 1);
    CHECK_EQ(cx.calls[i].status, -ECANCELED);
  }
  fpeer_open_gate(&f.peer);
  fcall_t last;
  memset(&last, 0, sizeof last);
  CHECK_EQ(fcall(f.b, &q, 0, &last, NULL), 0);
  RUN_UNTIL_MS(&f.loop, last.n == 1, 30000);
  CHECK_EQ(last.status, 0);
  hcsb_bridge_stats_t st;
  hcsb_bridge_stats(f.b, &st);
  CHECK_U64(st.late_responses, n - 1);
  CHECK_U64(st.unknown_responses, 0);
  CHECK_EQ(st.pending, 0);
  fbr_finish(&f);
  for (size_t i = 0; i < n; i++) CHECK_EQ(cx.calls[i].n, 1);
  free(cx.calls);
  free(cx.handles);
}

static void script_gate_then_negotiate(fpeer_t *p) {
  uint64_t nid = fpeer_expect(p, HCSB_MSG_NEGOTIATE_PROTOCOL);
  fpeer_wait_gate(p);
  fpeer_send(p, HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE, nid,
             faults_negotiate_body());
  /* The cancelled calls never got an ID: the next frame is the one call
   * made after them, with ID 2. */
  fframe_t f;
  CHECK_EQ(fpeer_read(p, &f), 0);
  CHECK_EQ(f.type, START);
  CHECK_U64(f.id, 2);
  CHECK(strstr(f.body, "after-cancels") != NULL);
  fpeer_send(p, START_RESP, f.id, FAULTS_OK_BODY);
  fframe_free(&f);
  CHECK_EQ(fpeer_drain(p), 0);
}

static void make_waiting_calls(fbr_t *f) {
  hcsb_request_t q = faults_req(START);
  for (size_t i = 0; i < cx.n; i++)
    CHECK_EQ(fcall(f->b, &q, 0, &cx.calls[i], &cx.handles[i]), 0);
  faults_in_api = 1;
  CHECK_EQ(hcsb_call_cancel(cx.handles[0]), 0);
  faults_in_api = 0;
}

static void test_cancel_chain_waiting(void) {
  fbr_t f;
  size_t n = faults_pick(20000, 2000);
  cancel_setup(n);
  fbr_open(&f, script_gate_then_negotiate, NULL, make_waiting_calls);
  RUN_UNTIL_MS(&f.loop, cx.fired == n, 30000);
  CHECK(cx.ordered);
  for (size_t i = 0; i < n; i++) CHECK_EQ(cx.calls[i].status, -ECANCELED);
  CHECK_EQ(f.ready_n, 0);
  hcsb_bridge_stats_t st;
  hcsb_bridge_stats(f.b, &st);
  CHECK_EQ(st.pending, 0);
  CHECK_EQ(st.queued_bytes, 0); /* the held frames went with their calls */
  fcall_t after;
  memset(&after, 0, sizeof after);
  hcsb_request_t q = faults_req(START);
  q.container_id = "after-cancels";
  CHECK_EQ(fcall(f.b, &q, 0, &after, NULL), 0);
  fpeer_open_gate(&f.peer);
  RUN_UNTIL(&f.loop, after.n == 1);
  CHECK_EQ(after.status, 0);
  CHECK_U64(after.id, 2);
  fbr_finish(&f);
  free(cx.calls);
  free(cx.handles);
}

/* ------------------------------------------------------------------------ */
/* Closing the bridge from inside its callbacks. */

/* The negotiation callback: calls made before it fail -ECANCELED, once. */
static fcall_t pre[3];

static int ready_close_cause;

/* The bridge is freed right after this: read what is needed now. */
static void closed_after_ready(void *data) {
  fbr_t *f = data;
  ready_close_cause = hcsb_bridge_close_cause(f->b);
  f->closed_n++;
}

static void close_in_ready(fbr_t *f, int status) {
  CHECK_EQ(status, 0);
  hcsb_bridge_close(f->b, closed_after_ready, f);
  /* A call made after closing: -ENOTCONN, later. */
  hcsb_request_t q = faults_req(START);
  CHECK_EQ(fcall(f->b, &q, 0, &pre[2], NULL), 0);
  CHECK_EQ(pre[2].n, 0);
}

static void pre_calls(fbr_t *f) {
  hcsb_request_t q = faults_req(START);
  f->on_ready = close_in_ready;
  CHECK_EQ(fcall(f->b, &q, 0, &pre[0], NULL), 0);
  CHECK_EQ(fcall(f->b, &q, 0, &pre[1], NULL), 0);
}

static void script_negotiate_drain(fpeer_t *p) {
  fpeer_negotiate(p);
  fpeer_drain(p);
}

static void test_close_inside_negotiation_cb(void) {
  fbr_t f;
  memset(pre, 0, sizeof pre);
  fbr_open(&f, script_negotiate_drain, NULL, pre_calls);
  RUN_UNTIL(&f.loop, pre[0].n && pre[1].n && pre[2].n && f.closed_n == 1);
  CHECK_EQ(pre[0].status, -ECANCELED);
  CHECK_EQ(pre[1].status, -ECANCELED);
  CHECK_EQ(pre[2].status, -ENOTCONN);
  CHECK(pre[0].order < pre[1].order);
  CHECK_EQ(f.ready_n, 1);
  CHECK_EQ(f.disc_n, 0); /* closed by its owner: no disconnect report */
  CHECK_EQ(ready_close_cause, -ECANCELED);
  fpeer_join(&f.peer); /* the guest saw EOF */
  faults_loop_finish(&f.loop);
  for (int i = 0; i < 3; i++) CHECK_EQ(pre[i].n, 1);
}

/* The notification callback: answers that arrived in the same read as the
 * notification are not delivered; their calls fail -ECANCELED, once. */
static int note_closed;

static void close_in_notify(fbr_t *f, const hcsb_notification_t *n) {
  CHECK_STR(n->container_id, "c-note");
  hcsb_bridge_close(f->b, fclosed_cb, &note_closed);
}

static void script_note_then_answers(fpeer_t *p) {
  uint8_t *out = NULL;
  size_t len = 0;
  const char *note = "{\"ContainerId\":\"c-note\",\"Type\":\"GracefulExit\"}";
  fpeer_negotiate(p);
  uint64_t a = fpeer_expect(p, START);
  uint64_t b = fpeer_expect(p, START);
  len = faults_frame_append(&out, len, HCSB_MSG_NOTIFY_CONTAINER, 0, note,
                            strlen(note));
  len = faults_frame_append(&out, len, START_RESP, a, FAULTS_OK_BODY,
                            strlen(FAULTS_OK_BODY));
  len = faults_frame_append(&out, len, START_RESP, b, FAULTS_OK_BODY,
                            strlen(FAULTS_OK_BODY));
  fpeer_write(p, out, len); /* one write: one read on the host */
  free(out);
  fpeer_drain(p);
}

static void test_close_inside_notification_cb(void) {
  fbr_t f;
  fcall_t a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  note_closed = 0;
  fbr_open(&f, script_note_then_answers, NULL, NULL);
  f.on_notify = close_in_notify;
  hcsb_request_t q = faults_req(START);
  CHECK_EQ(fcall(f.b, &q, 0, &a, NULL), 0);
  CHECK_EQ(fcall(f.b, &q, 0, &b, NULL), 0);
  RUN_UNTIL(&f.loop, note_closed == 1);
  CHECK_EQ(f.notify_n, 1);
  CHECK_EQ(a.n, 1);
  CHECK_EQ(b.n, 1);
  CHECK_EQ(a.status, -ECANCELED);
  CHECK_EQ(b.status, -ECANCELED);
  CHECK_EQ(f.disc_n, 0);
  fpeer_join(&f.peer);
  faults_loop_finish(&f.loop);
  CHECK_EQ(note_closed, 1);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY_T(slow_loris_does_not_block_others, 60),
    TEST_ENTRY_T(stalled_reader_write_queue_limit, 60),
    TEST_ENTRY_T(pipelined_then_disconnect, 60),
    TEST_ENTRY_T(cancel_chain_sent, 60),
    TEST_ENTRY_T(cancel_chain_waiting, 60),
    TEST_ENTRY(close_inside_negotiation_cb),
    TEST_ENTRY(close_inside_notification_cb),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
