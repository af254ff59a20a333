/* The ttrpc server over real Unix sockets (src/shim/server.h): the server
 * runs on its own loop in a thread, the test talks to it with blocking
 * sockets (shim-client.h), as containerd would.  Covers concurrency across
 * and within clients, a malformed frame closing only its client, replies
 * to a client that went away, the client limit, close flushing replies,
 * and large replies under output back-pressure. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "shim-client.h"
#include "shim/server.h"
#include "shim/ttrpc.h"
#include "shim.pb-c.h"

/* ------------------------------------------------------------------------ */
/* The server side, all on the loop's thread */

static uv_loop_t loop;
static uv_async_t stop_async;
static hcsb__shim_server_t *srv;
static hcsb__shim_server_stats_t final_stats;
static int server_closed;
static int close_requested; /* after that, srv is not to be touched */
static hcsb__shim_call_t *held[16];
static size_t nheld;
static pthread_t thread;
static char sock_path[256];

static void on_closed(hcsb__shim_server_t *s, void *data) {
  hcsb__shim_server_stats(s, &final_stats);
  server_closed = 1;
}

static void release_held(int drop) {
  size_t i;

  for (i = 0; i < nheld; i++) {
    if (drop)
      hcsb__shim_call_drop(held[i]);
    else
      hcsb__shim_reply_ok(held[i], NULL);
  }
  nheld = 0;
}

static void h_echo(hcsb__shim_call_t *call, const ProtobufCMessage *req,
                   void *data) {
  const Containerd__Task__V2__StartRequest *sr = (const void *)req;
  Containerd__Task__V2__StartResponse resp =
      CONTAINERD__TASK__V2__START_RESPONSE__INIT;

  resp.pid = (uint32_t)strlen(sr->id);
  hcsb__shim_reply_ok(call, &resp.base);
}

static void h_hold(hcsb__shim_call_t *call, const ProtobufCMessage *req,
                   void *data) {
  CHECK(nheld < 16);
  held[nheld++] = call;
}

static void h_release(hcsb__shim_call_t *call, const ProtobufCMessage *req,
                      void *data) {
  release_held(0);
  hcsb__shim_reply_ok(call, NULL);
}

/* Replies an Any whose value is N bytes (N = the request's id), byte i
 * being i % 251. */
static void h_big(hcsb__shim_call_t *call, const ProtobufCMessage *req,
                  void *data) {
  const Containerd__Task__V2__StartRequest *sr = (const void *)req;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  size_t i;

  any.value.len = (size_t)atol(sr->id);
  any.value.data = malloc(any.value.len);
  CHECK(any.value.data != NULL);
  for (i = 0; i < any.value.len; i++) any.value.data[i] = (uint8_t)(i % 251);
  hcsb__shim_reply_ok(call, &any.base);
  free(any.value.data);
}

/* Replies pid = the number of clients connected. */
static void h_stats(hcsb__shim_call_t *call, const ProtobufCMessage *req,
                    void *data) {
  Containerd__Task__V2__StartResponse resp =
      CONTAINERD__TASK__V2__START_RESPONSE__INIT;
  hcsb__shim_server_stats_t st;

  hcsb__shim_server_stats(srv, &st);
  resp.pid = (uint32_t)st.clients;
  hcsb__shim_reply_ok(call, &resp.base);
}

static void h_close(hcsb__shim_call_t *call, const ProtobufCMessage *req,
                    void *data) {
  hcsb__shim_reply_ok(call, NULL);
  close_requested = 1;
  hcsb__shim_server_close(srv, on_closed, NULL);
}

static const hcsb__shim_method_t methods[] = {
    {"t.S", "Echo", &containerd__task__v2__start_request__descriptor, h_echo},
    {"t.S", "Hold", NULL, h_hold},
    {"t.S", "Release", NULL, h_release},
    {"t.S", "Big", &containerd__task__v2__start_request__descriptor, h_big},
    {"t.S", "Stats", NULL, h_stats},
    {"t.S", "Close", NULL, h_close},
};

static void on_async_closed(uv_handle_t *h) {}

static void on_stop(uv_async_t *a) {
  if (!close_requested) hcsb__shim_server_close(srv, on_closed, NULL);
  close_requested = 1;
  /* May free the server, which a closed server waits for. */
  release_held(1);
  uv_close((uv_handle_t *)a, on_async_closed);
}

static void *loop_main(void *arg) {
  uv_run(&loop, UV_RUN_DEFAULT);
  return NULL;
}

static void server_start(const hcsb__shim_server_opts_t *opts) {
  CHECK_EQ(uv_loop_init(&loop), 0);
  CHECK_EQ(uv_async_init(&loop, &stop_async, on_stop), 0);
  CHECK_EQ(hcsb__shim_server_new(&loop, opts, &srv), 0);
  CHECK_EQ(hcsb__shim_server_add(srv, methods,
                                 sizeof(methods) / sizeof(methods[0]), NULL),
           0);
  snprintf(sock_path, sizeof(sock_path), "%s/s.sock", hcsb_test_tmpdir());
  CHECK_EQ(hcsb__shim_server_listen(srv, sock_path), 0);
  CHECK_EQ(pthread_create(&thread, NULL, loop_main, NULL), 0);
}

/* Stops the loop thread (closing the server if a test has not) and checks
 * that every handle was closed. */
static void server_stop(void) {
  uv_async_send(&stop_async);
  CHECK_EQ(pthread_join(thread, NULL), 0);
  CHECK(server_closed);
  CHECK_EQ(uv_loop_close(&loop), 0);
}

/* ------------------------------------------------------------------------ */
/* The client side */

static void call_echo(int fd, uint32_t stream, const char *id) {
  Containerd__Task__V2__StartRequest sr =
      CONTAINERD__TASK__V2__START_REQUEST__INIT;

  sr.id = (char *)id;
  shim_client_call(fd, stream, "t.S", "Echo", &sr.base);
}

/* Reads one reply and checks its stream and code; returns
 * StartResponse.pid when there is a payload, else 0. */
static uint32_t expect(int fd, uint32_t stream, int code) {
  shim_reply_t r;
  uint32_t pid = 0;

  CHECK_EQ(shim_client_read(fd, 5000, &r), 1);
  CHECK_EQ(r.type, HCSB__TTRPC_TYPE_RESPONSE);
  CHECK_EQ(r.stream, stream);
  CHECK_EQ(r.code, code);
  if (r.payload_len > 0) {
    Containerd__Task__V2__StartResponse *sr =
        containerd__task__v2__start_response__unpack(NULL, r.payload_len,
                                                     r.payload);
    CHECK(sr != NULL);
    pid = sr->pid;
    containerd__task__v2__start_response__free_unpacked(sr, NULL);
  }
  shim_reply_free(&r);
  return pid;
}

static void test_concurrent_calls(void) {
  int a, b;

  server_start(NULL);
  a = shim_client_connect(sock_path);
  b = shim_client_connect(sock_path);
  CHECK(a >= 0 && b >= 0);
  /* A's held call holds up neither A's next call nor B's. */
  shim_client_call(a, 1, "t.S", "Hold", NULL);
  call_echo(a, 3, "abc");
  CHECK_EQ(expect(a, 3, 0), 3);
  call_echo(b, 1, "abcd");
  CHECK_EQ(expect(b, 1, 0), 4);
  /* B's Release answers A's held call, on A. */
  shim_client_call(b, 3, "t.S", "Release", NULL);
  expect(b, 3, 0);
  expect(a, 1, 0);
  close(a);
  close(b);
  server_stop();
  CHECK_EQ(final_stats.clients_accepted, 2);
  CHECK_EQ(final_stats.calls, 4);
  CHECK_EQ(final_stats.calls_pending, 0);
}

static void test_malformed_closes_only_that_client(void) {
  /* A request frame whose payload is not a Request. */
  static const uint8_t garbage[] = {0, 0, 0, 4,    0,    0,    0,
                                    7, 1, 0, 0xff, 0xff, 0xff, 0xff};
  int a, b;

  server_start(NULL);
  a = shim_client_connect(sock_path);
  b = shim_client_connect(sock_path);
  CHECK(a >= 0 && b >= 0);
  shim_client_call(a, 1, "t.S", "Hold", NULL);
  call_echo(b, 1, "x");
  expect(b, 1, 0);
  shim_client_write(b, garbage, sizeof(garbage));
  expect(b, 7, HCSB__GRPC_INVALID_ARGUMENT);
  CHECK(shim_client_wait_eof(b, 5000));
  close(b);
  /* A is unaffected, its held call included. */
  call_echo(a, 3, "xy");
  CHECK_EQ(expect(a, 3, 0), 2);
  shim_client_call(a, 5, "t.S", "Release", NULL);
  expect(a, 1, 0);
  expect(a, 5, 0);
  /* And new clients are served. */
  b = shim_client_connect(sock_path);
  CHECK(b >= 0);
  call_echo(b, 1, "xyz");
  CHECK_EQ(expect(b, 1, 0), 3);
  close(a);
  close(b);
  server_stop();
  CHECK_EQ(final_stats.clients_malformed, 1);
  CHECK_EQ(final_stats.clients_accepted, 3);
}

static void test_oversized_frame(void) {
  /* 5 MiB announced on stream 9, then a few bytes of it. */
  static const uint8_t big[] = {0x00, 0x50, 0, 0, 0, 0, 0, 9, 1, 0, 1, 2, 3};
  int a, b;

  server_start(NULL);
  a = shim_client_connect(sock_path);
  b = shim_client_connect(sock_path);
  shim_client_write(b, big, sizeof(big));
  expect(b, 9, HCSB__GRPC_RESOURCE_EXHAUSTED);
  CHECK(shim_client_wait_eof(b, 5000));
  call_echo(a, 1, "x");
  CHECK_EQ(expect(a, 1, 0), 1);
  close(a);
  close(b);
  server_stop();
  CHECK_EQ(final_stats.clients_malformed, 1);
}

static void test_reply_to_client_gone(void) {
  int a, b, i;

  server_start(NULL);
  a = shim_client_connect(sock_path);
  b = shim_client_connect(sock_path);
  shim_client_call(a, 1, "t.S", "Hold", NULL);
  shim_client_call(a, 3, "t.S", "Stats", NULL);
  CHECK_EQ(expect(a, 3, 0), 2);
  close(a);
  /* Until the server has seen A go. */
  for (i = 0;; i++) {
    shim_client_call(b, 2 * (uint32_t)i + 1, "t.S", "Stats", NULL);
    if (expect(b, 2 * (uint32_t)i + 1, 0) == 1) break;
    CHECK(i < 1000 * shim_test_scale());
    usleep(5000);
  }
  shim_client_call(b, 2001, "t.S", "Release", NULL);
  expect(b, 2001, 0);
  close(b);
  server_stop();
  CHECK_EQ(final_stats.replies_dropped, 1);
  CHECK_EQ(final_stats.calls_pending, 0);
}

static void test_unknown_method(void) {
  shim_reply_t r;
  int a;

  server_start(NULL);
  a = shim_client_connect(sock_path);
  shim_client_call(a, 1, "containerd.task.v2.Task", "Frobnicate", NULL);
  CHECK_EQ(shim_client_read(a, 5000, &r), 1);
  CHECK_EQ(r.code, HCSB__GRPC_UNIMPLEMENTED);
  CHECK_STR(r.message, "containerd.task.v2.Task/Frobnicate: not implemented");
  shim_reply_free(&r);
  call_echo(a, 3, "ok");
  CHECK_EQ(expect(a, 3, 0), 2);
  close(a);
  server_stop();
  CHECK_EQ(final_stats.unimplemented, 1);
}

static void test_max_clients(void) {
  hcsb__shim_server_opts_t opts = {2, 0, 0};
  int a, b, c;

  server_start(&opts);
  a = shim_client_connect(sock_path);
  b = shim_client_connect(sock_path);
  call_echo(a, 1, "a");
  expect(a, 1, 0);
  call_echo(b, 1, "b");
  expect(b, 1, 0);
  c = shim_client_connect(sock_path);
  CHECK(c >= 0); /* accepted by the kernel, then closed */
  CHECK(shim_client_wait_eof(c, 5000));
  close(c);
  /* A free slot is served again. */
  close(b);
  for (int i = 0;; i++) {
    Containerd__Task__V2__StartRequest sr =
        CONTAINERD__TASK__V2__START_REQUEST__INIT;
    uint8_t *buf;
    size_t len;
    shim_reply_t r;
    int got = 0;

    c = shim_client_connect(sock_path);
    CHECK(c >= 0);
    sr.id = "cc";
    CHECK_EQ(hcsb__ttrpc_request_frame(1, "t.S", "Echo", &sr.base, 0, NULL, 0,
                                       &buf, &len),
             0);
    /* Refused while B's slot is still taken: the write may fail. */
    if (shim_client_try_write(c, buf, len) == 0)
      got = shim_client_read(c, 5000, &r);
    free(buf);
    if (got == 1) {
      CHECK_EQ(r.code, 0);
      shim_reply_free(&r);
      break;
    }
    close(c); /* B's slot was not freed yet */
    CHECK(i < 1000 * shim_test_scale());
    usleep(5000);
  }
  close(c);
  close(a);
  server_stop();
  CHECK(final_stats.clients_refused >= 1);
}

static void test_close_flushes_replies(void) {
  int a;

  server_start(NULL);
  a = shim_client_connect(sock_path);
  shim_client_call(a, 1, "t.S", "Hold", NULL);
  shim_client_call(a, 3, "t.S", "Close", NULL);
  expect(a, 3, 0);
  CHECK(shim_client_wait_eof(a, 5000));
  close(a);
  /* Nobody listens any more (libuv removes a socket file it bound). */
  for (int i = 0;; i++) {
    int c = shim_client_connect(sock_path);
    if (c == -ECONNREFUSED || c == -ENOENT) break;
    CHECK(c >= 0);
    close(c);
    CHECK(i < 1000 * shim_test_scale());
    usleep(5000);
  }
  server_stop(); /* drops the held call */
  CHECK_EQ(final_stats.calls, 2);
}

static void test_large_replies_backpressure(void) {
  /* Replies far larger than the output limit: reading pauses and resumes,
   * and every byte arrives in order. */
  hcsb__shim_server_opts_t opts = {0, 0, 64 * 1024};
  Containerd__Task__V2__StartRequest sr =
      CONTAINERD__TASK__V2__START_REQUEST__INIT;
  const size_t size = 1u << 20;
  uint32_t i;
  int a;

  server_start(&opts);
  a = shim_client_connect(sock_path);
  sr.id = "1048576";
  for (i = 0; i < 8; i++)
    shim_client_call(a, 2 * i + 1, "t.S", "Big", &sr.base);
  usleep(100000);
  for (i = 0; i < 8; i++) {
    shim_reply_t r;
    Google__Protobuf__Any *any;
    size_t k;

    CHECK_EQ(shim_client_read(a, 10000, &r), 1);
    CHECK_EQ(r.stream, 2 * i + 1);
    CHECK_EQ(r.code, 0);
    any = google__protobuf__any__unpack(NULL, r.payload_len, r.payload);
    CHECK(any != NULL);
    CHECK_EQ(any->value.len, size);
    for (k = 0; k < size; k += 4093)
      CHECK_EQ(any->value.data[k], (uint8_t)(k % 251));
    google__protobuf__any__free_unpacked(any, NULL);
    shim_reply_free(&r);
  }
  close(a);
  server_stop();
  CHECK_EQ(final_stats.calls, 8);
}

static void test_add_errors(void) {
  static const hcsb__shim_method_t dup[] = {
      {"t.S", "Echo", NULL, h_hold},
  };
  static const hcsb__shim_method_t twice[] = {
      {"u.S", "A", NULL, h_hold},
      {"u.S", "A", NULL, h_hold},
  };
  static const hcsb__shim_method_t bad[] = {
      {"u.S", NULL, NULL, h_hold},
  };

  server_start(NULL);
  /* The loop thread does not touch the tables: adding from here while it
   * waits in epoll is safe enough for this check. */
  CHECK_EQ(hcsb__shim_server_add(srv, dup, 1, NULL), -EEXIST);
  CHECK_EQ(hcsb__shim_server_add(srv, twice, 2, NULL), -EEXIST);
  CHECK_EQ(hcsb__shim_server_add(srv, bad, 1, NULL), -EINVAL);
  CHECK_EQ(hcsb__shim_server_listen(srv, sock_path), -EBUSY);
  server_stop();
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(concurrent_calls),
      TEST_ENTRY(malformed_closes_only_that_client),
      TEST_ENTRY(oversized_frame),
      TEST_ENTRY(reply_to_client_gone),
      TEST_ENTRY(unknown_method),
      TEST_ENTRY(max_clients),
      TEST_ENTRY(close_flushes_replies),
      TEST_ENTRY_T(large_replies_backpressure, 120),
      TEST_ENTRY(add_errors),
  };
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
