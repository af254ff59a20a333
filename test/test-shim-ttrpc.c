/* The shim's ttrpc core without sockets (src/shim/ttrpc.h): the frame
 * header, the incremental reader, the envelope codec and its allocation
 * budget, against byte strings written out by hand from the protobuf
 * encoding rules; and the grpc code table (src/shim/grpc.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "shim/grpc.h"
#include "shim/ttrpc.h"
#include "shim.pb-c.h"

/* ------------------------------------------------------------------------ */
/* Header */

static void test_header_codec(void) {
  static const uint8_t want[10] = {0x00, 0x40, 0x00, 0x00, 0x80,
                                   0x00, 0x00, 0x05, 0x02, 0x07};
  hcsb__ttrpc_header_t h = {4u << 20, 0x80000005u, 2, 7}, back;
  uint8_t out[10];

  hcsb__ttrpc_header_put(out, &h);
  CHECK_MEM(out, want, 10);
  hcsb__ttrpc_header_get(want, &back);
  CHECK_U64(back.length, 4u << 20);
  CHECK_U64(back.stream_id, 0x80000005u);
  CHECK_EQ(back.type, 2);
  CHECK_EQ(back.flags, 7);
}

/* ------------------------------------------------------------------------ */
/* Reader */

/* Two frames back to back: stream 1 with "abc", stream 3 empty. */
static const uint8_t two_frames[] = {
    0, 0, 0, 3, 0, 0, 0, 1, 1, 0, 'a', 'b', 'c', 0, 0, 0, 0, 0, 0, 0, 3, 1, 0,
};

static void test_reader_byte_by_byte(void) {
  hcsb__ttrpc_reader_t r;
  size_t i, len, frames = 0;
  int done;

  hcsb__ttrpc_reader_init(&r, 0);
  for (i = 0; i < sizeof(two_frames); i++) {
    ssize_t n = hcsb__ttrpc_reader_feed(&r, two_frames + i, 1, &done);
    CHECK_EQ(n, 1);
    if (!done) continue;
    uint8_t *p = hcsb__ttrpc_reader_take(&r, &len);
    if (frames == 0) {
      CHECK_EQ(i, 12);
      CHECK_EQ(r.h.stream_id, 1);
      CHECK_EQ(r.h.type, 1);
      CHECK_EQ(len, 3);
      CHECK(p != NULL);
      CHECK_MEM(p, "abc", 3);
    } else {
      CHECK_EQ(i, sizeof(two_frames) - 1);
      CHECK_EQ(r.h.stream_id, 3);
      CHECK_EQ(len, 0);
      CHECK(p == NULL);
    }
    free(p);
    frames++;
  }
  CHECK_EQ(frames, 2);
  CHECK_EQ(hcsb__ttrpc_reader_pending(&r), 0);
  hcsb__ttrpc_reader_free(&r);
}

static void test_reader_merged(void) {
  hcsb__ttrpc_reader_t r;
  size_t len, at = 0;
  ssize_t n;
  uint8_t *p;
  int done;

  hcsb__ttrpc_reader_init(&r, 0);
  n = hcsb__ttrpc_reader_feed(&r, two_frames, sizeof(two_frames), &done);
  CHECK_EQ(n, 13); /* stops after the first frame */
  CHECK_EQ(done, 1);
  p = hcsb__ttrpc_reader_take(&r, &len);
  CHECK_EQ(len, 3);
  free(p);
  at += (size_t)n;
  n = hcsb__ttrpc_reader_feed(&r, two_frames + at, sizeof(two_frames) - at,
                              &done);
  CHECK_EQ(n, 10);
  CHECK_EQ(done, 1);
  CHECK_EQ(r.h.stream_id, 3);
  p = hcsb__ttrpc_reader_take(&r, &len);
  CHECK(p == NULL && len == 0);
  /* Nothing left: feeding nothing completes nothing. */
  n = hcsb__ttrpc_reader_feed(&r, two_frames, 0, &done);
  CHECK_EQ(n, 0);
  CHECK_EQ(done, 0);
  hcsb__ttrpc_reader_free(&r);
}

static void test_reader_oversized(void) {
  /* One byte over 4 MiB. */
  static const uint8_t big[10] = {0x00, 0x40, 0x00, 0x01, 0, 0, 0, 9, 1, 0};
  static const uint8_t max[10] = {0x00, 0x40, 0x00, 0x00, 0, 0, 0, 9, 1, 0};
  hcsb__ttrpc_reader_t r;
  uint8_t chunk[100];
  int done;

  hcsb__ttrpc_reader_init(&r, 0);
  CHECK_EQ(hcsb__ttrpc_reader_feed(&r, big, 10, &done), -EMSGSIZE);
  CHECK_EQ(r.h.stream_id, 9); /* who to tell */
  CHECK_EQ(hcsb__ttrpc_reader_feed(&r, big, 10, &done), -EPROTO);
  CHECK(r.buf == NULL);
  hcsb__ttrpc_reader_free(&r);

  /* Exactly 4 MiB is allowed, and announcing it allocates nothing until
   * the bytes come; then only about what arrived. */
  hcsb__ttrpc_reader_init(&r, 0);
  CHECK_EQ(hcsb__ttrpc_reader_feed(&r, max, 10, &done), 10);
  CHECK_EQ(done, 0);
  CHECK_EQ(r.cap, 0);
  memset(chunk, 'x', sizeof(chunk));
  CHECK_EQ(hcsb__ttrpc_reader_feed(&r, chunk, sizeof(chunk), &done), 100);
  CHECK(r.cap >= 100 && r.cap <= 4096);
  CHECK_EQ(hcsb__ttrpc_reader_pending(&r), 110);
  hcsb__ttrpc_reader_free(&r);

  /* A smaller limit of the caller's. */
  hcsb__ttrpc_reader_init(&r, 2);
  CHECK_EQ(hcsb__ttrpc_reader_feed(&r, two_frames, sizeof(two_frames), &done),
           -EMSGSIZE);
  hcsb__ttrpc_reader_free(&r);
}

/* ------------------------------------------------------------------------ */
/* Envelope */

/* Request{service "svc", method "M", payload 01 02 03, timeout_nano 5,
 * metadata [{a, b}, {a, c}]}. */
static const uint8_t request_bytes[] = {
    0x0a, 0x03, 's',  'v',  'c',  0x12, 0x01, 'M',  0x1a, 0x03, 0x01,
    0x02, 0x03, 0x20, 0x05, 0x2a, 0x06, 0x0a, 0x01, 'a',  0x12, 0x01,
    'b',  0x2a, 0x06, 0x0a, 0x01, 'a',  0x12, 0x01, 'c',
};

static void test_request_unpack(void) {
  hcsb__pb_budget_t b;
  Ttrpc__Request *req;

  hcsb__pb_budget_init(&b, 0);
  CHECK_EQ(hcsb__ttrpc_request_unpack(request_bytes, sizeof(request_bytes), &b,
                                      &req),
           0);
  CHECK_STR(req->service, "svc");
  CHECK_STR(req->method, "M");
  CHECK_EQ(req->payload.len, 3);
  CHECK_MEM(req->payload.data, "\x01\x02\x03", 3);
  CHECK_EQ(req->timeout_nano, 5);
  CHECK_EQ(req->n_metadata, 2);
  CHECK_STR(req->metadata[0]->key, "a");
  CHECK_STR(req->metadata[0]->value, "b");
  CHECK_STR(req->metadata[1]->value, "c");
  CHECK(b.used > 0);
  protobuf_c_message_free_unpacked(&req->base, &b.allocator);
  CHECK_EQ(b.used, 0);

  /* An empty payload is a Request with nothing set. */
  CHECK_EQ(hcsb__ttrpc_request_unpack(NULL, 0, &b, &req), 0);
  CHECK_STR(req->service, "");
  protobuf_c_message_free_unpacked(&req->base, &b.allocator);
  CHECK_EQ(b.used, 0);
}

static void test_request_garbage(void) {
  /* Truncated string; a wire type 7 field; the method as a varint. */
  static const uint8_t cut[] = {0x0a, 0x05, 's', 'v'};
  static const uint8_t badtype[] = {0x0f, 0x00};
  static const uint8_t wrongtype[] = {0x10, 0x01};
  hcsb__pb_budget_t b;
  Ttrpc__Request *req = (Ttrpc__Request *)1;

  hcsb__pb_budget_init(&b, 0);
  CHECK_EQ(hcsb__ttrpc_request_unpack(cut, sizeof(cut), &b, &req), -EPROTO);
  CHECK(req == NULL);
  CHECK_EQ(hcsb__ttrpc_request_unpack(badtype, sizeof(badtype), &b, &req),
           -EPROTO);
  CHECK_EQ(hcsb__ttrpc_request_unpack(wrongtype, sizeof(wrongtype), &b, &req),
           -EPROTO);
  CHECK_EQ(b.used, 0);
}

static void test_request_budget(void) {
  /* 100000 empty metadata entries: 200 kB on the wire, several MB as
   * protobuf-c structs. */
  size_t n = 100000, i;
  uint8_t *p = malloc(2 * n);
  hcsb__pb_budget_t b;
  Ttrpc__Request *req;

  CHECK(p != NULL);
  for (i = 0; i < n; i++) {
    p[2 * i] = 0x2a;
    p[2 * i + 1] = 0x00;
  }
  hcsb__pb_budget_init(&b, 1u << 20);
  CHECK_EQ(hcsb__ttrpc_request_unpack(p, 2 * n, &b, &req), -E2BIG);
  CHECK(req == NULL);
  CHECK_EQ(b.used, 0); /* what was allocated before the refusal is back */

  hcsb__pb_budget_init(&b, 0);
  CHECK_EQ(hcsb__ttrpc_request_unpack(p, 2 * n, &b, &req), 0);
  CHECK_EQ(req->n_metadata, n);
  CHECK(b.used > 2 * n);
  CHECK(b.used <= HCSB__TTRPC_UNPACK_BUDGET);
  protobuf_c_message_free_unpacked(&req->base, &b.allocator);
  CHECK_EQ(b.used, 0);
  free(p);
}

static void test_response_frame_ok(void) {
  /* StartResponse{pid 42}; Response{status {}, payload 08 2a}. */
  static const uint8_t want[] = {0, 0, 0,    6,    0,    0,    0,    1,
                                 2, 0, 0x0a, 0x00, 0x12, 0x02, 0x08, 0x2a};
  Containerd__Task__V2__StartResponse sr =
      CONTAINERD__TASK__V2__START_RESPONSE__INIT;
  uint8_t *out;
  size_t len;

  sr.pid = 42;
  CHECK_EQ(hcsb__ttrpc_response_frame(1, 0, NULL, &sr.base, &out, &len), 0);
  CHECK_EQ(len, sizeof(want));
  CHECK_MEM(out, want, len);
  free(out);

  /* Empty (google.protobuf.Empty, or no message): the status alone. */
  CHECK_EQ(hcsb__ttrpc_response_frame(3, 0, NULL, NULL, &out, &len), 0);
  CHECK_EQ(len, 12);
  CHECK_MEM(out + 10, "\x0a\x00", 2);
  free(out);
}

static void test_response_frame_error(void) {
  /* Status{code 12, message "x"}. */
  static const uint8_t want[] = {0, 0,    0,    7,    0,    0,    0,    5,  2,
                                 0, 0x0a, 0x05, 0x08, 0x0c, 0x12, 0x01, 'x'};
  hcsb__pb_budget_t b;
  Ttrpc__Response *resp;
  uint8_t *out;
  size_t len;

  CHECK_EQ(hcsb__ttrpc_response_frame(5, 12, "x", NULL, &out, &len), 0);
  CHECK_EQ(len, sizeof(want));
  CHECK_MEM(out, want, len);
  hcsb__pb_budget_init(&b, 0);
  CHECK_EQ(hcsb__ttrpc_response_unpack(out + 10, len - 10, &b, &resp), 0);
  CHECK(resp->status != NULL);
  CHECK_EQ(resp->status->code, 12);
  CHECK_STR(resp->status->message, "x");
  CHECK_EQ(resp->payload.len, 0);
  protobuf_c_message_free_unpacked(&resp->base, &b.allocator);
  free(out);
}

static void test_frame_too_big(void) {
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  uint8_t *out = NULL;
  size_t len;

  any.value.len = HCSB__TTRPC_MAX_PAYLOAD;
  any.value.data = calloc(1, any.value.len);
  CHECK(any.value.data != NULL);
  CHECK_EQ(hcsb__ttrpc_response_frame(1, 0, NULL, &any.base, &out, &len),
           -EMSGSIZE);
  CHECK_EQ(
      hcsb__ttrpc_request_frame(1, "s", "m", &any.base, 0, NULL, 0, &out, &len),
      -EMSGSIZE);
  CHECK(out == NULL);
  /* Just under: the envelope's few bytes still fit. */
  any.value.len = HCSB__TTRPC_MAX_PAYLOAD - 64;
  CHECK_EQ(hcsb__ttrpc_response_frame(1, 0, NULL, &any.base, &out, &len), 0);
  CHECK(len - 10 <= HCSB__TTRPC_MAX_PAYLOAD);
  free(out);
  free(any.value.data);
}

static void test_request_frame(void) {
  /* Request{service "s", method "m", payload (StartRequest{id "x"}),
   * timeout 7, metadata [{k, v}]}. */
  static const uint8_t want_payload[] = {
      0x0a, 0x01, 's',  0x12, 0x01, 'm',  0x1a, 0x03, 0x0a, 0x01, 'x',
      0x20, 0x07, 0x2a, 0x06, 0x0a, 0x01, 'k',  0x12, 0x01, 'v'};
  static const char *const md[] = {"k", "v"};
  Containerd__Task__V2__StartRequest sr =
      CONTAINERD__TASK__V2__START_REQUEST__INIT;
  hcsb__ttrpc_header_t h;
  uint8_t *out;
  size_t len;

  sr.id = "x";
  CHECK_EQ(
      hcsb__ttrpc_request_frame(9, "s", "m", &sr.base, 7, md, 1, &out, &len),
      0);
  hcsb__ttrpc_header_get(out, &h);
  CHECK_EQ(h.length, sizeof(want_payload));
  CHECK_EQ(h.stream_id, 9);
  CHECK_EQ(h.type, HCSB__TTRPC_TYPE_REQUEST);
  CHECK_EQ(h.flags, 0);
  CHECK_EQ(len, 10 + sizeof(want_payload));
  CHECK_MEM(out + 10, want_payload, sizeof(want_payload));
  free(out);
}

/* What `delete` writes: DeleteResponse{pid 7, exit_status 137, exited_at
 * {1 s, 2 ns}}, byte for byte as Go's protobuf writes it. */
static void test_delete_response_bytes(void) {
  static const uint8_t want[] = {0x08, 0x07, 0x10, 0x89, 0x01, 0x1a,
                                 0x04, 0x08, 0x01, 0x10, 0x02};
  Containerd__Task__V2__DeleteResponse dr =
      CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  uint8_t buf[32];

  ts.seconds = 1;
  ts.nanos = 2;
  dr.pid = 7;
  dr.exit_status = 137;
  dr.exited_at = &ts;
  CHECK_EQ(protobuf_c_message_get_packed_size(&dr.base), sizeof(want));
  CHECK_EQ(protobuf_c_message_pack(&dr.base, buf), sizeof(want));
  CHECK_MEM(buf, want, sizeof(want));
}

/* ------------------------------------------------------------------------ */
/* grpc codes */

static void test_grpc_codes(void) {
  hcsb_guest_error_t gerr;

  memset(&gerr, 0, sizeof(gerr));
  CHECK_EQ(hcsb__shim_grpc_code(0, NULL), HCSB__GRPC_OK);
  CHECK_EQ(hcsb__shim_grpc_code(-ENOENT, NULL), HCSB__GRPC_NOT_FOUND);
  CHECK_EQ(hcsb__shim_grpc_code(-EEXIST, NULL), HCSB__GRPC_ALREADY_EXISTS);
  CHECK_EQ(hcsb__shim_grpc_code(-EINVAL, NULL), HCSB__GRPC_INVALID_ARGUMENT);
  CHECK_EQ(hcsb__shim_grpc_code(-ETIMEDOUT, NULL),
           HCSB__GRPC_DEADLINE_EXCEEDED);
  CHECK_EQ(hcsb__shim_grpc_code(-ECANCELED, NULL), HCSB__GRPC_CANCELLED);
  CHECK_EQ(hcsb__shim_grpc_code(-ENOSYS, NULL), HCSB__GRPC_UNIMPLEMENTED);
  CHECK_EQ(hcsb__shim_grpc_code(-ECONNRESET, NULL), HCSB__GRPC_UNAVAILABLE);
  CHECK_EQ(hcsb__shim_grpc_code(-EBUSY, NULL), HCSB__GRPC_FAILED_PRECONDITION);
  CHECK_EQ(hcsb__shim_grpc_code(-ENOMEM, NULL), HCSB__GRPC_RESOURCE_EXHAUSTED);
  CHECK_EQ(hcsb__shim_grpc_code(-EPROTO, NULL), HCSB__GRPC_INTERNAL);
  CHECK_EQ(hcsb__shim_grpc_code(-EACCES, NULL), HCSB__GRPC_PERMISSION_DENIED);
  CHECK_EQ(hcsb__shim_grpc_code(-EXDEV, NULL), HCSB__GRPC_UNKNOWN);
  gerr.hresult = 0xC037010Eu; /* SystemNotFound */
  CHECK_EQ(hcsb__shim_grpc_code(HCSB_EGUEST, &gerr), HCSB__GRPC_NOT_FOUND);
  gerr.hresult = 0x80004005u; /* E_FAIL */
  CHECK_EQ(hcsb__shim_grpc_code(HCSB_EGUEST, &gerr), HCSB__GRPC_UNKNOWN);
  CHECK_STR(hcsb__grpc_code_name(12), "Unimplemented");
  CHECK_STR(hcsb__grpc_code_name(0), "OK");
  CHECK_STR(hcsb__grpc_code_name(16), "Unauthenticated");
  CHECK_STR(hcsb__grpc_code_name(17), "Unknown");
  CHECK_STR(hcsb__grpc_code_name(-1), "Unknown");
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(header_codec),         TEST_ENTRY(reader_byte_by_byte),
      TEST_ENTRY(reader_merged),        TEST_ENTRY(reader_oversized),
      TEST_ENTRY(request_unpack),       TEST_ENTRY(request_garbage),
      TEST_ENTRY(request_budget),       TEST_ENTRY(response_frame_ok),
      TEST_ENTRY(response_frame_error), TEST_ENTRY(frame_too_big),
      TEST_ENTRY(request_frame),        TEST_ENTRY(delete_response_bytes),
      TEST_ENTRY(grpc_codes),
  };
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
