/* The ttrpc server's connection logic without sockets (src/shim/session.h):
 * dispatch, UNIMPLEMENTED, bad payloads, concurrency (a held call never
 * holds up another), the in-flight limit, what is malformed and what then
 * happens, replies after the client left, gone callbacks, and the call
 * API's accessors and reply variants. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "shim/session.h"
#include "shim/ttrpc.h"
#include "shim.pb-c.h"

/* ------------------------------------------------------------------------ */
/* A fake I/O layer and a method table */

typedef struct fake_s {
  hcsb__ttrpc_session_t *s;
  hcsb__shim_server_stats_t stats;
  int outputs; /* on_output calls */
  int freed;   /* on_free calls */
} fake_t;

static hcsb__shim_call_t *held[8];
static size_t nheld;
static int handled;

static void h_echo(hcsb__shim_call_t *call, const ProtobufCMessage *req,
                   void *data) {
  const Containerd__Task__V2__StartRequest *sr = (const void *)req;
  Containerd__Task__V2__StartResponse resp =
      CONTAINERD__TASK__V2__START_RESPONSE__INIT;

  CHECK(data == &handled);
  handled++;
  resp.pid = (uint32_t)strlen(sr->id);
  hcsb__shim_reply_ok(call, &resp.base);
}

static void h_hold(hcsb__shim_call_t *call, const ProtobufCMessage *req,
                   void *data) {
  CHECK(req == NULL);
  handled++;
  CHECK(nheld < 8);
  held[nheld++] = call;
}

static const hcsb__shim_method_t methods[] = {
    {"test.Svc", "Echo", &containerd__task__v2__start_request__descriptor,
     h_echo},
    {"test.Svc", "Hold", NULL, h_hold},
};

static const hcsb__shim_method_t *lookup(void *ctx, const char *service,
                                         const char *method, void **data) {
  size_t i;

  for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
    if (strcmp(methods[i].service, service) == 0 &&
        strcmp(methods[i].method, method) == 0) {
      *data = &handled;
      return &methods[i];
    }
  return NULL;
}

static void on_output(void *ctx) {
  ((fake_t *)ctx)->outputs++;
}

static void on_free(void *ctx) {
  ((fake_t *)ctx)->freed++;
}

static void fake_init(fake_t *f, size_t max_calls) {
  hcsb__ttrpc_session_cfg_t cfg;

  memset(f, 0, sizeof(*f));
  memset(&cfg, 0, sizeof(cfg));
  cfg.max_calls = max_calls;
  cfg.lookup = lookup;
  cfg.on_output = on_output;
  cfg.on_free = on_free;
  cfg.ctx = f;
  cfg.free_ctx = f;
  cfg.stats = &f->stats;
  CHECK_EQ(hcsb__ttrpc_session_new(&cfg, &f->s), 0);
  nheld = 0;
  handled = 0;
}

/* One frame of output, decoded. */
typedef struct frame_s {
  uint32_t stream;
  int code;
  char message[1100];
  uint32_t pid; /* StartResponse.pid in the payload, if any */
  size_t payload_len;
} frame_t;

/* Takes the output and decodes up to `max` frames; returns how many. */
static size_t take(fake_t *f, frame_t *out, size_t max) {
  hcsb__link_t list;
  size_t n = 0;

  hcsb__list_init(&list);
  hcsb__ttrpc_session_take_output(f->s, &list);
  CHECK_EQ(hcsb__ttrpc_session_output_bytes(f->s), 0);
  while (!hcsb__list_empty(&list)) {
    hcsb__ttrpc_out_t *o =
        HCSB__CONTAINER_OF(list.next, hcsb__ttrpc_out_t, link);
    hcsb__ttrpc_header_t h;
    hcsb__pb_budget_t b;
    Ttrpc__Response *resp;

    hcsb__list_remove(&o->link);
    CHECK(o->len >= 10);
    hcsb__ttrpc_header_get(o->data, &h);
    CHECK_EQ(h.length, o->len - 10);
    CHECK_EQ(h.type, HCSB__TTRPC_TYPE_RESPONSE);
    CHECK(n < max);
    hcsb__pb_budget_init(&b, 0);
    CHECK_EQ(hcsb__ttrpc_response_unpack(o->data + 10, h.length, &b, &resp), 0);
    memset(&out[n], 0, sizeof(out[n]));
    out[n].stream = h.stream_id;
    CHECK(resp->status != NULL);
    out[n].code = resp->status->code;
    snprintf(out[n].message, sizeof(out[n].message), "%s",
             resp->status->message);
    out[n].payload_len = resp->payload.len;
    if (resp->payload.len > 0) {
      Containerd__Task__V2__StartResponse *sr =
          containerd__task__v2__start_response__unpack(NULL, resp->payload.len,
                                                       resp->payload.data);
      CHECK(sr != NULL);
      out[n].pid = sr->pid;
      containerd__task__v2__start_response__free_unpacked(sr, NULL);
    }
    protobuf_c_message_free_unpacked(&resp->base, &b.allocator);
    hcsb__ttrpc_out_free(o);
    n++;
  }
  return n;
}

/* Feeds one request frame; returns feed's result. */
static int send_req(fake_t *f, uint32_t stream, const char *service,
                    const char *method, const ProtobufCMessage *msg) {
  uint8_t *buf;
  size_t len;
  int r;

  CHECK_EQ(hcsb__ttrpc_request_frame(stream, service, method, msg, 0, NULL, 0,
                                     &buf, &len),
           0);
  r = hcsb__ttrpc_session_feed(f->s, buf, len);
  free(buf);
  return r;
}

static int send_echo(fake_t *f, uint32_t stream, const char *id) {
  Containerd__Task__V2__StartRequest sr =
      CONTAINERD__TASK__V2__START_REQUEST__INIT;

  sr.id = (char *)id;
  return send_req(f, stream, "test.Svc", "Echo", &sr.base);
}

static void fake_done(fake_t *f) {
  hcsb__ttrpc_session_detach(f->s);
  CHECK_EQ(f->freed, 1);
}

/* ------------------------------------------------------------------------ */

static void test_dispatch_and_reply(void) {
  fake_t f;
  frame_t fr[4];

  fake_init(&f, 0);
  CHECK_EQ(send_echo(&f, 1, "hello"), 0);
  CHECK_EQ(handled, 1);
  CHECK_EQ(f.outputs, 1);
  CHECK_EQ(take(&f, fr, 4), 1);
  CHECK_EQ(fr[0].stream, 1);
  CHECK_EQ(fr[0].code, 0);
  CHECK_EQ(fr[0].pid, 5);
  CHECK_EQ(f.stats.calls, 1);
  CHECK_EQ(f.stats.calls_pending, 0);
  CHECK_EQ(hcsb__ttrpc_session_calls(f.s), 0);
  fake_done(&f);
}

static void test_unimplemented(void) {
  fake_t f;
  frame_t fr[4];

  fake_init(&f, 0);
  CHECK_EQ(send_req(&f, 1, "no.Such", "Echo", NULL), 0);
  CHECK_EQ(send_req(&f, 3, "test.Svc", "Nope", NULL), 0);
  CHECK_EQ(send_req(&f, 5, "", "", NULL), 0);
  CHECK_EQ(handled, 0);
  CHECK_EQ(take(&f, fr, 4), 3);
  CHECK_EQ(fr[0].stream, 1);
  CHECK_EQ(fr[0].code, 12);
  CHECK_STR(fr[0].message, "no.Such/Echo: not implemented");
  CHECK_EQ(fr[1].stream, 3);
  CHECK_EQ(fr[1].code, 12);
  CHECK_EQ(fr[2].code, 12);
  CHECK_EQ(f.stats.unimplemented, 3);
  /* The client goes on. */
  CHECK_EQ(send_echo(&f, 7, "ab"), 0);
  CHECK_EQ(take(&f, fr, 4), 1);
  CHECK_EQ(fr[0].pid, 2);
  fake_done(&f);
}

static void test_bad_payload(void) {
  Containerd__Task__V2__StartResponse wrong =
      CONTAINERD__TASK__V2__START_RESPONSE__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  fake_t f;
  frame_t fr[4];

  fake_init(&f, 0);
  /* A StartRequest's field 1 is a string; a varint there does not unpack. */
  wrong.pid = 3;
  CHECK_EQ(send_req(&f, 1, "test.Svc", "Echo", &wrong.base), 0);
  /* An Any's field 2 (bytes) is unknown to StartRequest: skipped, fine. */
  any.value.len = 2;
  any.value.data = (uint8_t *)"zz";
  CHECK_EQ(send_req(&f, 3, "test.Svc", "Echo", &any.base), 0);
  CHECK_EQ(take(&f, fr, 4), 2);
  CHECK_EQ(fr[0].code, 3);
  CHECK(strstr(fr[0].message, "containerd.task.v2.StartRequest") != NULL);
  CHECK_EQ(fr[1].code, 0);
  CHECK_EQ(handled, 1);
  fake_done(&f);
}

/* A call not answered yet (Wait) does not hold up the next ones. */
static void test_held_call_does_not_block(void) {
  fake_t f;
  frame_t fr[4];

  fake_init(&f, 0);
  CHECK_EQ(send_req(&f, 1, "test.Svc", "Hold", NULL), 0);
  CHECK_EQ(nheld, 1);
  CHECK_EQ(take(&f, fr, 4), 0);
  CHECK_EQ(send_echo(&f, 3, "x"), 0);
  CHECK_EQ(send_echo(&f, 5, "xy"), 0);
  CHECK_EQ(take(&f, fr, 4), 2);
  CHECK_EQ(fr[0].stream, 3);
  CHECK_EQ(fr[1].stream, 5);
  CHECK_EQ(f.stats.calls_pending, 1);
  CHECK_STR(hcsb__shim_call_method(held[0]), "Hold");
  hcsb__shim_reply_error(held[0], 9, "stopped after %d", 3);
  CHECK_EQ(take(&f, fr, 4), 1);
  CHECK_EQ(fr[0].stream, 1);
  CHECK_EQ(fr[0].code, 9);
  CHECK_STR(fr[0].message, "stopped after 3");
  CHECK_EQ(f.stats.calls_pending, 0);
  fake_done(&f);
}

static void test_split_and_merged_input(void) {
  Containerd__Task__V2__StartRequest sr =
      CONTAINERD__TASK__V2__START_REQUEST__INIT;
  uint8_t *all = NULL, *one;
  size_t total = 0, len, i;
  fake_t f;
  frame_t fr[4];

  sr.id = "abc";
  for (i = 0; i < 3; i++) {
    CHECK_EQ(hcsb__ttrpc_request_frame(2 * (uint32_t)i + 1, "test.Svc", "Echo",
                                       &sr.base, 0, NULL, 0, &one, &len),
             0);
    all = realloc(all, total + len);
    CHECK(all != NULL);
    memcpy(all + total, one, len);
    total += len;
    free(one);
  }
  fake_init(&f, 0);
  for (i = 0; i < total; i++)
    CHECK_EQ(hcsb__ttrpc_session_feed(f.s, all + i, 1), 0);
  CHECK_EQ(take(&f, fr, 4), 3);
  CHECK_EQ(fr[2].stream, 5);
  CHECK_EQ(hcsb__ttrpc_session_feed(f.s, all, total), 0);
  CHECK_EQ(take(&f, fr, 4), 3);
  CHECK_EQ(fr[0].pid, 3);
  free(all);
  fake_done(&f);
}

static void test_metadata_and_timeout(void) {
  static const char *const md[] = {"containerd-namespace-ttrpc", "ns1", "k",
                                   "v"};
  fake_t f;
  uint8_t *buf;
  const uint8_t *p;
  size_t len;

  fake_init(&f, 0);
  CHECK_EQ(hcsb__ttrpc_request_frame(1, "test.Svc", "Hold", NULL, 1234, md, 2,
                                     &buf, &len),
           0);
  CHECK_EQ(hcsb__ttrpc_session_feed(f.s, buf, len), 0);
  free(buf);
  CHECK_EQ(nheld, 1);
  CHECK_STR(hcsb__shim_call_service(held[0]), "test.Svc");
  CHECK_STR(hcsb__shim_call_metadata(held[0], "containerd-namespace-ttrpc"),
            "ns1");
  CHECK_STR(hcsb__shim_call_metadata(held[0], "k"), "v");
  CHECK(hcsb__shim_call_metadata(held[0], "K") == NULL);
  CHECK_EQ(hcsb__shim_call_timeout_ns(held[0]), 1234);
  CHECK_EQ(hcsb__shim_call_stream(held[0]), 1);
  p = hcsb__shim_call_payload(held[0], &len);
  CHECK_EQ(len, 0);
  (void)p;
  CHECK_EQ(hcsb__shim_call_gone(held[0]), 0);
  hcsb__shim_call_drop(held[0]); /* ends it, writes nothing */
  CHECK_EQ(hcsb__ttrpc_session_output_bytes(f.s), 0);
  CHECK_EQ(hcsb__ttrpc_session_calls(f.s), 0);
  fake_done(&f);
}

static void test_max_calls(void) {
  fake_t f;
  frame_t fr[4];

  fake_init(&f, 2);
  CHECK_EQ(send_req(&f, 1, "test.Svc", "Hold", NULL), 0);
  CHECK_EQ(send_req(&f, 3, "test.Svc", "Hold", NULL), 0);
  CHECK_EQ(send_req(&f, 5, "test.Svc", "Hold", NULL), 0);
  CHECK_EQ(nheld, 2);
  CHECK_EQ(take(&f, fr, 4), 1);
  CHECK_EQ(fr[0].stream, 5);
  CHECK_EQ(fr[0].code, 8);
  hcsb__shim_reply_ok(held[0], NULL);
  CHECK_EQ(send_req(&f, 7, "test.Svc", "Hold", NULL), 0);
  CHECK_EQ(nheld, 3);
  CHECK_EQ(take(&f, fr, 4), 1);
  CHECK_EQ(fr[0].stream, 1);
  CHECK_EQ(fr[0].payload_len, 0);
  hcsb__shim_call_drop(held[1]);
  hcsb__shim_call_drop(held[2]);
  fake_done(&f);
}

/* ------------------------------------------------------------------------ */
/* Malformed input: the client is to be dropped, with a status first where
 * there is a stream to put it on. */

static void test_malformed_request(void) {
  static const uint8_t garbage[] = {0, 0, 0, 3,    0,    0,  0,
                                    9, 1, 0, 0x0a, 0x05, 's'};
  fake_t f;
  frame_t fr[4];

  fake_init(&f, 0);
  CHECK_EQ(send_req(&f, 1, "test.Svc", "Hold", NULL), 0);
  CHECK_EQ(hcsb__ttrpc_session_feed(f.s, garbage, sizeof(garbage)), -EPROTO);
  CHECK_EQ(take(&f, fr, 4), 1);
  CHECK_EQ(fr[0].stream, 9);
  CHECK_EQ(fr[0].code, 3);
  /* From now on nothing is dispatched. */
  CHECK_EQ(send_echo(&f, 11, "x"), -EPROTO);
  CHECK_EQ(handled, 1);
  CHECK_EQ(take(&f, fr, 4), 0);
  /* The held call can still end (its reply is queued: the I/O layer
   * writes what is queued before it disconnects). */
  hcsb__shim_reply_ok(held[0], NULL);
  CHECK_EQ(take(&f, fr, 4), 1);
  fake_done(&f);
}

static void test_malformed_stream_ids(void) {
  fake_t f;
  frame_t fr[4];

  fake_init(&f, 0);
  CHECK_EQ(send_echo(&f, 2, "x"), -EPROTO);
  CHECK_EQ(take(&f, fr, 4), 1);
  CHECK_EQ(fr[0].stream, 2);
  CHECK_EQ(fr[0].code, 3);
  CHECK_EQ(handled, 0);
  fake_done(&f);

  fake_init(&f, 0);
  CHECK_EQ(send_echo(&f, 0, "x"), -EPROTO);
  fake_done(&f);

  /* A stream id still in flight: no answer (it would look like the first
   * call's), just the disconnect. */
  fake_init(&f, 0);
  CHECK_EQ(send_req(&f, 1, "test.Svc", "Hold", NULL), 0);
  CHECK_EQ(send_req(&f, 1, "test.Svc", "Hold", NULL), -EPROTO);
  CHECK_EQ(nheld, 1);
  CHECK_EQ(take(&f, fr, 4), 0);
  hcsb__shim_call_drop(held[0]);
  fake_done(&f);
}

static void test_malformed_oversized(void) {
  static const uint8_t big[10] = {0x01, 0, 0, 0, 0, 0, 0, 7, 1, 0};
  fake_t f;
  frame_t fr[4];

  fake_init(&f, 0);
  CHECK_EQ(hcsb__ttrpc_session_feed(f.s, big, sizeof(big)), -EPROTO);
  CHECK_EQ(take(&f, fr, 4), 1);
  CHECK_EQ(fr[0].stream, 7);
  CHECK_EQ(fr[0].code, 8);
  CHECK(strstr(fr[0].message, "exceed maximum message size") != NULL);
  fake_done(&f);
}

static void test_other_frame_types_skipped(void) {
  /* A response-type and a type-3 frame, each with a payload, then a
   * request. */
  static const uint8_t skip[] = {0, 0, 0, 2, 0, 0, 0, 1, 2, 0, 'x', 'y',
                                 0, 0, 0, 1, 0, 0, 0, 3, 3, 1, 'z'};
  fake_t f;
  frame_t fr[4];

  fake_init(&f, 0);
  CHECK_EQ(hcsb__ttrpc_session_feed(f.s, skip, sizeof(skip)), 0);
  CHECK_EQ(send_echo(&f, 1, "x"), 0);
  CHECK_EQ(take(&f, fr, 4), 1);
  CHECK_EQ(fr[0].stream, 1);
  fake_done(&f);
}

/* ------------------------------------------------------------------------ */
/* The client goes away */

static int gone_calls;

static void on_gone_end(hcsb__shim_call_t *call, void *data) {
  gone_calls++;
  CHECK_EQ(hcsb__shim_call_gone(call), 1);
  /* Ends this call and, through data, another one. */
  if (data != NULL) hcsb__shim_call_drop(data);
  hcsb__shim_reply_ok(call, NULL);
}

static void test_reply_after_detach(void) {
  fake_t f;

  fake_init(&f, 0);
  CHECK_EQ(send_req(&f, 1, "test.Svc", "Hold", NULL), 0);
  CHECK_EQ(send_req(&f, 3, "test.Svc", "Hold", NULL), 0);
  hcsb__ttrpc_session_detach(f.s);
  CHECK_EQ(f.freed, 0); /* two calls still out */
  CHECK_EQ(hcsb__shim_call_gone(held[0]), 1);
  CHECK_EQ(hcsb__shim_call_on_gone(held[0], on_gone_end, NULL), 1);
  hcsb__shim_reply_ok(held[0], NULL);
  CHECK_EQ(f.freed, 0);
  hcsb__shim_reply_error(held[1], 2, "late");
  CHECK_EQ(f.freed, 1);
  CHECK_EQ(f.stats.replies_dropped, 2);
  CHECK_EQ(f.stats.calls_pending, 0);
  CHECK_EQ(f.outputs, 0);
}

static void test_gone_callbacks(void) {
  fake_t f;

  fake_init(&f, 0);
  gone_calls = 0;
  CHECK_EQ(send_req(&f, 1, "test.Svc", "Hold", NULL), 0);
  CHECK_EQ(send_req(&f, 3, "test.Svc", "Hold", NULL), 0);
  CHECK_EQ(send_req(&f, 5, "test.Svc", "Hold", NULL), 0);
  /* The first one's callback ends the second one too; the third has none
   * and stays. */
  CHECK_EQ(hcsb__shim_call_on_gone(held[0], on_gone_end, held[1]), 0);
  CHECK_EQ(hcsb__shim_call_on_gone(held[1], on_gone_end, NULL), 0);
  hcsb__ttrpc_session_detach(f.s);
  CHECK_EQ(gone_calls, 1);
  CHECK_EQ(f.freed, 0);
  hcsb__shim_call_drop(held[2]);
  CHECK_EQ(f.freed, 1);

  /* All calls ended by their callbacks: freed inside detach. */
  fake_init(&f, 0);
  gone_calls = 0;
  CHECK_EQ(send_req(&f, 1, "test.Svc", "Hold", NULL), 0);
  CHECK_EQ(hcsb__shim_call_on_gone(held[0], on_gone_end, NULL), 0);
  /* A cancelled registration does not run. */
  CHECK_EQ(send_req(&f, 3, "test.Svc", "Hold", NULL), 0);
  CHECK_EQ(hcsb__shim_call_on_gone(held[1], on_gone_end, NULL), 0);
  CHECK_EQ(hcsb__shim_call_on_gone(held[1], NULL, NULL), 0);
  hcsb__shim_call_drop(held[1]);
  hcsb__ttrpc_session_detach(f.s);
  CHECK_EQ(gone_calls, 1);
  CHECK_EQ(f.freed, 1);
}

static void test_stop(void) {
  fake_t f;
  frame_t fr[4];

  fake_init(&f, 0);
  hcsb__ttrpc_session_stop(f.s);
  CHECK_EQ(send_echo(&f, 1, "x"), 0);
  CHECK_EQ(handled, 0);
  CHECK_EQ(take(&f, fr, 4), 0);
  fake_done(&f);
}

/* ------------------------------------------------------------------------ */
/* Reply variants */

static void test_reply_too_big(void) {
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  fake_t f;
  frame_t fr[4];

  fake_init(&f, 0);
  CHECK_EQ(send_req(&f, 1, "test.Svc", "Hold", NULL), 0);
  any.value.len = HCSB__TTRPC_MAX_PAYLOAD + 1;
  any.value.data = calloc(1, any.value.len);
  CHECK(any.value.data != NULL);
  hcsb__shim_reply_ok(held[0], &any.base);
  free(any.value.data);
  CHECK_EQ(take(&f, fr, 4), 1);
  CHECK_EQ(fr[0].code, 8);
  CHECK(strstr(fr[0].message, "4 MiB") != NULL);
  fake_done(&f);
}

static void test_reply_status(void) {
  hcsb_guest_error_t gerr;
  fake_t f;
  frame_t fr[4];

  fake_init(&f, 0);
  memset(&gerr, 0, sizeof(gerr));
  gerr.hresult = 0xC037010Eu;
  gerr.message = "no such container";
  CHECK_EQ(send_req(&f, 1, "test.Svc", "Hold", NULL), 0);
  CHECK_EQ(send_req(&f, 3, "test.Svc", "Hold", NULL), 0);
  CHECK_EQ(send_req(&f, 5, "test.Svc", "Hold", NULL), 0);
  hcsb__shim_reply_status(held[0], -ENOENT, NULL, "task %s", "t1");
  hcsb__shim_reply_status(held[1], HCSB_EGUEST, &gerr, "kill");
  hcsb__shim_reply_status(held[2], 0, NULL, "ignored");
  CHECK_EQ(take(&f, fr, 4), 3);
  CHECK_EQ(fr[0].code, 5);
  CHECK(strncmp(fr[0].message, "task t1: ", 9) == 0);
  CHECK(strlen(fr[0].message) > 9);
  CHECK_EQ(fr[1].code, 5);
  CHECK(strstr(fr[1].message, "kill: ") == fr[1].message);
  CHECK(strstr(fr[1].message, "HRESULT 0xc037010e: no such container") != NULL);
  CHECK_EQ(fr[2].code, 0);
  CHECK_STR(fr[2].message, "");
  fake_done(&f);
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(dispatch_and_reply),
      TEST_ENTRY(unimplemented),
      TEST_ENTRY(bad_payload),
      TEST_ENTRY(held_call_does_not_block),
      TEST_ENTRY(split_and_merged_input),
      TEST_ENTRY(metadata_and_timeout),
      TEST_ENTRY(max_calls),
      TEST_ENTRY(malformed_request),
      TEST_ENTRY(malformed_stream_ids),
      TEST_ENTRY(malformed_oversized),
      TEST_ENTRY(other_frame_types_skipped),
      TEST_ENTRY(reply_after_detach),
      TEST_ENTRY(gone_callbacks),
      TEST_ENTRY(stop),
      TEST_ENTRY(reply_too_big),
      TEST_ENTRY(reply_status),
  };
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
