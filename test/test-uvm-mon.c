/* The QMP monitor (src/uvm/monitor.c) against a fake QEMU: the test holds
 * the other end of a socketpair and writes what QEMU would.  Every
 * command's callback exactly once, whatever ends it. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"
#include "uvm/monitor.h"

typedef struct fx_s {
  hcsb__handle_t h; /* owns the monitor's libuv handles */
  hcsb__dq_t dq;
  hcsb__qmp_mon_t mon;
  uv_loop_t loop;
  int peer; /* QEMU's end */
  int ready, ready_status;
  int closed, closed_status;
  int events;
  char last_event[64];
  char sent[4096]; /* what the monitor wrote, as the peer read it */
  size_t nsent;
} fx_t;

typedef struct res_s {
  int calls, status;
  char value[256]; /* the return value as JSON, or "class: desc" */
  fx_t *fx;
  int close_on_cb;
} res_t;

static const hcsb__handle_class_t owner_class = {0};

static void on_ready(hcsb__qmp_mon_t *m, int status) {
  fx_t *f = m->data;
  f->ready++;
  f->ready_status = status;
}
static void on_event(hcsb__qmp_mon_t *m, const hcsb__qmp_msg_t *ev) {
  fx_t *f = m->data;
  f->events++;
  snprintf(f->last_event, sizeof f->last_event, "%s", ev->event);
}
static void on_closed(hcsb__qmp_mon_t *m, int status) {
  fx_t *f = m->data;
  f->closed++;
  f->closed_status = status;
}
static const hcsb__qmp_hooks_t hooks = {on_ready, on_event, on_closed, NULL};

static void fx_open(fx_t *f, uint32_t timeout_ms) {
  int sv[2];
  memset(f, 0, sizeof *f);
  CHECK_EQ(uv_loop_init(&f->loop), 0);
  hcsb__handle_init(&f->h, &owner_class, &f->dq);
  CHECK_EQ(hcsb__dq_init(&f->loop, &f->dq, &f->h), 0);
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  f->peer = sv[1];
  CHECK_EQ(fcntl(f->peer, F_SETFL, O_NONBLOCK), 0);
  CHECK_EQ(hcsb__qmp_mon_open(&f->mon, &f->loop, &f->h, sv[0], timeout_ms,
                              &hooks, f),
           0);
}

/* Runs the loop a little and collects what the monitor wrote. */
static void spin(fx_t *f, int turns) {
  for (int i = 0; i < turns; i++) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    usleep(1000);
    ssize_t n =
        read(f->peer, f->sent + f->nsent, sizeof f->sent - 1 - f->nsent);
    if (n > 0) f->nsent += (size_t)n;
    f->sent[f->nsent] = '\0';
  }
}

static void peer_say(fx_t *f, const char *text) {
  size_t n = strlen(text);
  CHECK_EQ(write(f->peer, text, n), (ssize_t)n);
}

static void fx_close(fx_t *f) {
  hcsb__qmp_mon_close(&f->mon);
  if (f->peer >= 0) close(f->peer);
  hcsb__dq_close(&f->dq);
  while (f->h.uv_closing > 0) uv_run(&f->loop, UV_RUN_ONCE);
  CHECK_EQ(uv_loop_close(&f->loop), 0);
}

/* Greeting, capabilities: the monitor is ready. */
static void fx_ready(fx_t *f) {
  peer_say(f, "{\"QMP\": {\"version\": {}, \"capabilities\": [\"oob\"]}}\r\n");
  spin(f, 20);
  CHECK(strstr(f->sent, "{\"execute\":\"qmp_capabilities\",\"id\":1}\r\n") !=
        NULL);
  CHECK_EQ(f->ready, 0);
  peer_say(f, "{\"return\": {}, \"id\": 1}\r\n");
  spin(f, 20);
  CHECK_EQ(f->ready, 1);
  CHECK_EQ(f->ready_status, 0);
  f->nsent = 0;
}

static void res_cb(void *data, int status, const hcsb__qmp_msg_t *msg) {
  res_t *r = data;
  r->calls++;
  r->status = status;
  if (msg != NULL && msg->kind == HCSB__QMP_RETURN)
    snprintf(
        r->value, sizeof r->value, "%s",
        json_object_to_json_string_ext(msg->value, JSON_C_TO_STRING_PLAIN));
  else if (msg != NULL)
    snprintf(r->value, sizeof r->value, "%s: %s", msg->error_class,
             msg->error_desc);
  if (r->close_on_cb) hcsb__qmp_mon_close(&r->fx->mon);
}

static void test_mon_commands_answered_out_of_order(void) {
  res_t a = {0}, b = {0}, c = {0};
  json_object *args = json_object_new_object();
  fx_t f;

  fx_open(&f, 5000);
  CHECK_EQ(hcsb__qmp_mon_command(&f.mon, "query-status", NULL, 0, res_cb, &a),
           -EAGAIN);
  fx_ready(&f);
  json_object_object_add(args, "id", json_object_new_string("pmem0"));
  CHECK_EQ(hcsb__qmp_mon_command(&f.mon, "query-status", NULL, 0, res_cb, &a),
           0);
  CHECK_EQ(hcsb__qmp_mon_command(&f.mon, "object-del", args, 0, res_cb, &b), 0);
  CHECK_EQ(hcsb__qmp_mon_command(&f.mon, "device_add", NULL, 0, res_cb, &c), 0);
  json_object_put(args);
  /* Never inside the call. */
  CHECK_EQ(a.calls + b.calls + c.calls, 0);
  spin(&f, 10);
  CHECK_STR(f.sent,
            "{\"execute\":\"query-status\",\"id\":2}\r\n"
            "{\"execute\":\"object-del\",\"arguments\":{\"id\":"
            "\"pmem0\"},\"id\":3}\r\n"
            "{\"execute\":\"device_add\",\"id\":4}\r\n");
  peer_say(&f,
           "{\"id\": 4, \"error\": {\"class\": \"GenericError\", "
           "\"desc\": \"Bus 'pcie.0' does not support hotplugging\"}}"
           "\r\n{\"return\": {}, \"id\": 3}\r\n{\"event\": \"RESUME\", "
           "\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\r\n");
  spin(&f, 10);
  peer_say(&f, "{\"return\": {\"status\": \"running\"}, \"id\": 2}\r\n");
  spin(&f, 10);
  CHECK_EQ(a.calls, 1);
  CHECK_EQ(a.status, 0);
  CHECK_STR(a.value, "{\"status\":\"running\"}");
  CHECK_EQ(b.calls, 1);
  CHECK_EQ(b.status, 0);
  CHECK_EQ(c.calls, 1);
  CHECK_EQ(c.status, -EREMOTEIO);
  CHECK_STR(c.value, "GenericError: Bus 'pcie.0' does not support hotplugging");
  CHECK_EQ(f.events, 1);
  CHECK_STR(f.last_event, "RESUME");
  CHECK_EQ(f.closed, 0);
  fx_close(&f);
  CHECK_EQ(a.calls + b.calls + c.calls, 3);
  CHECK_EQ(f.closed, 0);
}

/* A command that times out completes once; its late answer is dropped and
 * the monitor goes on. */
static void test_mon_timeout_then_late_answer(void) {
  res_t a = {0}, b = {0};
  fx_t f;

  fx_open(&f, 5000);
  fx_ready(&f);
  CHECK_EQ(hcsb__qmp_mon_command(&f.mon, "query-pci", NULL, 30, res_cb, &a), 0);
  for (int i = 0; i < 200 && a.calls == 0; i++) spin(&f, 1);
  CHECK_EQ(a.calls, 1);
  CHECK_EQ(a.status, -ETIMEDOUT);
  peer_say(&f, "{\"return\": [], \"id\": 2}\r\n");
  spin(&f, 10);
  CHECK_EQ(a.calls, 1);
  CHECK_EQ(f.mon.late_answers, 1);
  CHECK_EQ(hcsb__qmp_mon_command(&f.mon, "stop", NULL, 0, res_cb, &b), 0);
  spin(&f, 5);
  peer_say(&f, "{\"return\": {}, \"id\": 3}\r\n");
  spin(&f, 10);
  CHECK_EQ(b.calls, 1);
  CHECK_EQ(b.status, 0);
  fx_close(&f);
}

/* QEMU goes away: what is out fails with the loss, once; closed once. */
static void test_mon_eof_fails_commands_once(void) {
  res_t a = {0}, b = {0};
  fx_t f;

  fx_open(&f, 5000);
  fx_ready(&f);
  CHECK_EQ(hcsb__qmp_mon_command(&f.mon, "quit", NULL, 0, res_cb, &a), 0);
  CHECK_EQ(hcsb__qmp_mon_command(&f.mon, "cont", NULL, 0, res_cb, &b), 0);
  spin(&f, 5);
  close(f.peer);
  f.peer = -1;
  spin(&f, 10);
  CHECK_EQ(a.calls, 1);
  CHECK_EQ(a.status, -ECONNRESET);
  CHECK_EQ(b.calls, 1);
  CHECK_EQ(f.closed, 1);
  CHECK_EQ(f.closed_status, -ECONNRESET);
  CHECK_EQ(hcsb__qmp_mon_command(&f.mon, "cont", NULL, 0, res_cb, &b),
           -ENOTCONN);
  fx_close(&f);
  CHECK_EQ(a.calls + b.calls, 2);
  CHECK_EQ(f.closed, 1);
  CHECK_EQ(f.ready, 1);
}

static void test_mon_garbage_is_a_protocol_error(void) {
  res_t a = {0};
  fx_t f;

  fx_open(&f, 5000);
  fx_ready(&f);
  CHECK_EQ(hcsb__qmp_mon_command(&f.mon, "quit", NULL, 0, res_cb, &a), 0);
  peer_say(&f, "{\"unknown\": 1}\r\n");
  spin(&f, 10);
  CHECK_EQ(a.calls, 1);
  CHECK_EQ(a.status, -EPROTO);
  CHECK_EQ(f.closed, 1);
  CHECK_EQ(f.closed_status, -EPROTO);
  fx_close(&f);
}

/* A callback closes the monitor while the same read holds another answer:
 * that command is cancelled, once, and nothing else fires. */
static void test_mon_close_from_callback(void) {
  res_t a = {0}, b = {0};
  fx_t f;

  fx_open(&f, 5000);
  fx_ready(&f);
  a.fx = &f;
  a.close_on_cb = 1;
  CHECK_EQ(hcsb__qmp_mon_command(&f.mon, "a", NULL, 0, res_cb, &a), 0);
  CHECK_EQ(hcsb__qmp_mon_command(&f.mon, "b", NULL, 0, res_cb, &b), 0);
  spin(&f, 5);
  peer_say(&f,
           "{\"return\": {}, \"id\": 2}\r\n{\"return\": {}, \"id\": 3}"
           "\r\n{\"event\": \"STOP\"}\r\n");
  spin(&f, 10);
  CHECK_EQ(a.calls, 1);
  CHECK_EQ(a.status, 0);
  CHECK_EQ(b.calls, 1);
  CHECK_EQ(b.status, -ECANCELED);
  CHECK_EQ(f.events, 0);
  CHECK_EQ(f.closed, 0);
  fx_close(&f);
  CHECK_EQ(b.calls, 1);
}

static void test_mon_no_greeting(void) {
  fx_t f;
  fx_open(&f, 50);
  for (int i = 0; i < 300 && f.ready == 0; i++) spin(&f, 1);
  CHECK_EQ(f.ready, 1);
  CHECK_EQ(f.ready_status, -ETIMEDOUT);
  CHECK_EQ(f.closed, 0);
  fx_close(&f);
}

static void test_mon_capabilities_refused(void) {
  fx_t f;
  fx_open(&f, 5000);
  peer_say(&f, "{\"QMP\": {}}\r\n");
  spin(&f, 10);
  peer_say(&f,
           "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
           "\"no\"}, \"id\": 1}\r\n");
  spin(&f, 10);
  CHECK_EQ(f.ready, 1);
  CHECK_EQ(f.ready_status, -EPROTO);
  CHECK_EQ(f.closed, 0);
  fx_close(&f);
}

/* QEMU exits before it greeted: the start fails through `ready`. */
static void test_mon_eof_before_ready(void) {
  fx_t f;
  fx_open(&f, 5000);
  close(f.peer);
  f.peer = -1;
  spin(&f, 10);
  CHECK_EQ(f.ready, 1);
  CHECK_EQ(f.ready_status, -ECONNRESET);
  CHECK_EQ(f.closed, 0);
  fx_close(&f);
}

static void test_mon_close_cancels(void) {
  res_t a = {0};
  fx_t f;
  fx_open(&f, 5000);
  fx_ready(&f);
  CHECK_EQ(hcsb__qmp_mon_command(&f.mon, "x", NULL, 0, res_cb, &a), 0);
  hcsb__qmp_mon_close(&f.mon);
  CHECK_EQ(a.calls, 1);
  CHECK_EQ(a.status, -ECANCELED);
  hcsb__qmp_mon_close(&f.mon);
  CHECK_EQ(a.calls, 1);
  fx_close(&f);
  CHECK_EQ(f.closed, 0);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(mon_commands_answered_out_of_order),
    TEST_ENTRY(mon_timeout_then_late_answer),
    TEST_ENTRY(mon_eof_fails_commands_once),
    TEST_ENTRY(mon_garbage_is_a_protocol_error),
    TEST_ENTRY(mon_close_from_callback),
    TEST_ENTRY(mon_no_greeting),
    TEST_ENTRY(mon_capabilities_refused),
    TEST_ENTRY(mon_eof_before_ready),
    TEST_ENTRY(mon_close_cancels),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
