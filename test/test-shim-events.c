/* The events publisher (src/shim/events.h) against a fake containerd: the
 * shim's own ttrpc server serving Events/Forward on the same loop, which
 * records what arrives and answers as each test wants.  Checks order, one
 * call in flight, the envelope (namespace, topic, timestamp, Any), the
 * namespace metadata, retries after refused connections and timeouts, the
 * bounds, and close's flush. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "events.pb-c.h"
#include "forward.pb-c.h"
#include "runner.h"
#include "shim/events.h"
#include "shim/server.h"

static uv_loop_t loop;
static char path[256];

/* ------------------------------------------------------------------------ */
/* Fake containerd */

typedef enum { ANSWER_OK, ANSWER_ERROR, ANSWER_HOLD } answer_t;

typedef struct got_s {
  char topic[64];
  char ns[64];
  char md_ns[64];
  char type_url[64];
  char container_id[64];
  int64_t seconds;
  uint32_t pid;
} got_t;

static struct {
  hcsb__shim_server_t *srv;
  answer_t answer;
  got_t got[32];
  size_t ngot;
  hcsb__shim_call_t *held[32];
  size_t nheld;
  int closed;
} fake;

static void h_forward(hcsb__shim_call_t *call, const ProtobufCMessage *req,
                      void *data) {
  const Containerd__Services__Events__Ttrpc__V1__ForwardRequest *fr =
      (const void *)req;
  const Containerd__Services__Events__Ttrpc__V1__Envelope *env = fr->envelope;
  const char *md = hcsb__shim_call_metadata(call, "containerd-namespace-ttrpc");
  got_t *g;

  CHECK(fake.ngot < 32);
  g = &fake.got[fake.ngot++];
  memset(g, 0, sizeof(*g));
  CHECK(env != NULL);
  snprintf(g->topic, sizeof(g->topic), "%s", env->topic);
  snprintf(g->ns, sizeof(g->ns), "%s", env->namespace_);
  snprintf(g->md_ns, sizeof(g->md_ns), "%s", md ? md : "(none)");
  CHECK(env->timestamp != NULL);
  g->seconds = env->timestamp->seconds;
  CHECK(env->event != NULL);
  snprintf(g->type_url, sizeof(g->type_url), "%s", env->event->type_url);
  if (strcmp(env->event->type_url, "containerd.events.TaskExit") == 0) {
    Containerd__Events__TaskExit *te = containerd__events__task_exit__unpack(
        NULL, env->event->value.len, env->event->value.data);
    CHECK(te != NULL);
    snprintf(g->container_id, sizeof(g->container_id), "%s", te->container_id);
    g->pid = te->pid;
    containerd__events__task_exit__free_unpacked(te, NULL);
  }
  switch (fake.answer) {
    case ANSWER_OK:
      hcsb__shim_reply_ok(call, NULL);
      break;
    case ANSWER_ERROR:
      hcsb__shim_reply_error(call, 3, "no");
      break;
    case ANSWER_HOLD:
      CHECK(fake.nheld < 32);
      fake.held[fake.nheld++] = call;
      break;
  }
}

static const hcsb__shim_method_t fake_methods[] = {
    {"containerd.services.events.ttrpc.v1.Events", "Forward",
     &containerd__services__events__ttrpc__v1__forward_request__descriptor,
     h_forward},
};

static void fake_start(answer_t answer) {
  fake.answer = answer;
  fake.closed = 0;
  CHECK_EQ(hcsb__shim_server_new(&loop, NULL, &fake.srv), 0);
  CHECK_EQ(hcsb__shim_server_add(fake.srv, fake_methods, 1, NULL), 0);
  CHECK_EQ(hcsb__shim_server_listen(fake.srv, path), 0);
}

static void on_fake_closed(hcsb__shim_server_t *s, void *data) {
  fake.closed = 1;
}

static void fake_stop(void) {
  size_t i;

  for (i = 0; i < fake.nheld; i++) hcsb__shim_call_drop(fake.held[i]);
  fake.nheld = 0;
  hcsb__shim_server_close(fake.srv, on_fake_closed, NULL);
}

/* ------------------------------------------------------------------------ */
/* Helpers */

static void setup(void) {
  memset(&fake, 0, sizeof(fake));
  CHECK_EQ(uv_loop_init(&loop), 0);
  snprintf(path, sizeof(path), "%s/containerd.sock.ttrpc", hcsb_test_tmpdir());
}

static int timed_out;
static void on_deadline(uv_timer_t *t) {
  timed_out = 1;
}

/* Runs the loop until *flag is set (or fails after `ms`). */
static void run_until(const int *flag, uint64_t ms) {
  uv_timer_t t;

  ms *= hcsb_test_timeout_scale();
  timed_out = 0;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, on_deadline, ms, 0);
  while (!*flag && !timed_out) uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(*flag);
}

static size_t want_got;
static int got_enough;
static void on_check(uv_check_t *c) {
  got_enough = fake.ngot >= want_got;
}

/* Runs until the fake has seen `n` events. */
static void run_until_got(size_t n, uint64_t ms) {
  uv_check_t c;

  want_got = n;
  got_enough = fake.ngot >= n;
  uv_check_init(&loop, &c);
  uv_check_start(&c, on_check);
  run_until(&got_enough, ms);
  uv_close((uv_handle_t *)&c, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
}

static void teardown(void) {
  if (fake.srv != NULL && !fake.closed) {
    fake_stop();
    run_until(&fake.closed, 10000);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(uv_loop_close(&loop), 0);
}

static int ev_closed;
static void on_ev_closed(hcsb__shim_events_t *ev, void *data) {
  hcsb__shim_events_stats_t *st = data;

  if (st != NULL) hcsb__shim_events_stats(ev, st);
  ev_closed = 1;
}

static void close_events(hcsb__shim_events_t *ev, uint64_t flush_ms,
                         hcsb__shim_events_stats_t *st) {
  ev_closed = 0;
  hcsb__shim_events_close(ev, flush_ms, on_ev_closed, st);
  CHECK_EQ(ev_closed, 0); /* later, never inside */
  run_until(&ev_closed, 20000);
}

static int publish_exit(hcsb__shim_events_t *ev, const char *id, uint32_t pid) {
  Containerd__Events__TaskExit te = CONTAINERD__EVENTS__TASK_EXIT__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

  te.container_id = (char *)id;
  te.id = (char *)id;
  te.pid = pid;
  te.exit_status = 3;
  ts.seconds = 5;
  te.exited_at = &ts;
  return hcsb__shim_publish(ev, "/tasks/exit", &te.base);
}

/* ------------------------------------------------------------------------ */

static void test_order_and_envelope(void) {
  Containerd__Events__TaskCreate tc = CONTAINERD__EVENTS__TASK_CREATE__INIT;
  Containerd__Events__TaskStart tstart = CONTAINERD__EVENTS__TASK_START__INIT;
  hcsb__shim_events_stats_t st;
  hcsb__shim_events_t *ev;
  time_t now = time(NULL);

  setup();
  fake_start(ANSWER_OK);
  CHECK_EQ(hcsb__shim_events_new(&loop, path, "ns1", NULL, &ev), 0);
  tc.container_id = "c1";
  tstart.container_id = "c1";
  tstart.pid = 42;
  CHECK_EQ(hcsb__shim_publish(ev, "/tasks/create", &tc.base), 0);
  CHECK_EQ(hcsb__shim_publish(ev, "/tasks/start", &tstart.base), 0);
  CHECK_EQ(publish_exit(ev, "c1", 42), 0);
  CHECK_EQ(fake.ngot, 0); /* nothing inside publish */
  run_until_got(3, 10000);
  CHECK_STR(fake.got[0].topic, "/tasks/create");
  CHECK_STR(fake.got[0].type_url, "containerd.events.TaskCreate");
  CHECK_STR(fake.got[1].topic, "/tasks/start");
  CHECK_STR(fake.got[1].type_url, "containerd.events.TaskStart");
  CHECK_STR(fake.got[2].topic, "/tasks/exit");
  CHECK_STR(fake.got[2].type_url, "containerd.events.TaskExit");
  CHECK_STR(fake.got[2].container_id, "c1");
  CHECK_EQ(fake.got[2].pid, 42);
  for (size_t i = 0; i < 3; i++) {
    CHECK_STR(fake.got[i].ns, "ns1");
    CHECK_STR(fake.got[i].md_ns, "ns1");
    CHECK(fake.got[i].seconds >= now - 5 && fake.got[i].seconds <= now + 60);
  }
  close_events(ev, 1000, &st);
  CHECK_EQ(st.published, 3);
  CHECK_EQ(st.forwarded, 3);
  CHECK_EQ(st.dropped, 0);
  CHECK_EQ(st.connects, 1);
  CHECK_EQ(st.queued, 0);
  teardown();
}

/* The next event waits for containerd's answer to the one before. */
static void test_one_in_flight(void) {
  hcsb__shim_events_t *ev;

  setup();
  fake_start(ANSWER_HOLD);
  CHECK_EQ(hcsb__shim_events_new(&loop, "unix://x", "n", NULL, &ev), 0);
  close_events(ev, 0, NULL); /* the unix:// prefix is taken */
  CHECK_EQ(hcsb__shim_events_new(&loop, path, "n", NULL, &ev), 0);
  CHECK_EQ(publish_exit(ev, "a", 1), 0);
  CHECK_EQ(publish_exit(ev, "b", 2), 0);
  run_until_got(1, 10000);
  for (int i = 0; i < 20; i++) uv_run(&loop, UV_RUN_NOWAIT);
  usleep(50000);
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ(fake.ngot, 1);
  hcsb__shim_reply_ok(fake.held[0], NULL);
  fake.nheld = 0;
  run_until_got(2, 10000);
  CHECK_STR(fake.got[1].container_id, "b");
  fake.answer = ANSWER_OK;
  hcsb__shim_reply_ok(fake.held[0], NULL);
  fake.nheld = 0;
  close_events(ev, 5000, NULL);
  teardown();
}

/* containerd not there yet: the event waits and goes once it is. */
static int later_started;
static void on_start_fake(uv_timer_t *t) {
  fake_start(ANSWER_OK);
  later_started = 1;
}

static void test_retry_until_containerd_listens(void) {
  hcsb__shim_events_opts_t opts = {0, 0, 50, 10};
  hcsb__shim_events_stats_t st;
  hcsb__shim_events_t *ev;
  uv_timer_t t;

  setup();
  CHECK_EQ(hcsb__shim_events_new(&loop, path, "n", &opts, &ev), 0);
  CHECK_EQ(publish_exit(ev, "a", 1), 0);
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, on_start_fake, 100, 0);
  run_until(&later_started, 10000);
  run_until_got(1, 10000);
  CHECK_STR(fake.got[0].container_id, "a");
  uv_close((uv_handle_t *)&t, NULL);
  close_events(ev, 1000, &st);
  CHECK_EQ(st.forwarded, 1);
  CHECK_EQ(st.dropped, 0);
  teardown();
}

static void test_dropped_after_attempts(void) {
  hcsb__shim_events_opts_t opts = {0, 0, 3, 5};
  hcsb__shim_events_stats_t st;
  hcsb__shim_events_t *ev;
  int never = 0;

  setup();
  CHECK_EQ(hcsb__shim_events_new(&loop, path, "n", &opts, &ev), 0);
  CHECK_EQ(publish_exit(ev, "a", 1), 0);
  CHECK_EQ(publish_exit(ev, "b", 2), 0);
  /* 3 tries each, 5+10+20 ms of back-off: both gone well within 2 s. */
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, (uv_timer_cb)on_deadline, 2000 * hcsb_test_timeout_scale(),
                 0);
  timed_out = 0;
  while (!timed_out) {
    hcsb__shim_events_stats(ev, &st);
    if (st.queued == 0) break;
    uv_run(&loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&t, NULL);
  hcsb__shim_events_stats(ev, &st);
  CHECK_EQ(st.queued, 0);
  CHECK_EQ(st.dropped, 2);
  CHECK_EQ(st.connects, 0);
  (void)never;
  close_events(ev, 1000, NULL);
  teardown();
}

static void test_error_answer_drops_one(void) {
  hcsb__shim_events_stats_t st;
  hcsb__shim_events_t *ev;

  setup();
  fake_start(ANSWER_ERROR);
  CHECK_EQ(hcsb__shim_events_new(&loop, path, "n", NULL, &ev), 0);
  CHECK_EQ(publish_exit(ev, "a", 1), 0);
  run_until_got(1, 10000);
  fake.answer = ANSWER_OK;
  CHECK_EQ(publish_exit(ev, "b", 2), 0);
  run_until_got(2, 10000);
  close_events(ev, 1000, &st);
  CHECK_EQ(st.forwarded, 1);
  CHECK_EQ(st.dropped, 1);
  CHECK_EQ(st.connects, 1); /* an error answer keeps the connection */
  teardown();
}

static void test_call_timeout_retries(void) {
  hcsb__shim_events_opts_t opts = {0, 100 * hcsb_test_timeout_scale(), 5, 10};
  hcsb__shim_events_stats_t st;
  hcsb__shim_events_t *ev;

  setup();
  fake_start(ANSWER_HOLD);
  CHECK_EQ(hcsb__shim_events_new(&loop, path, "n", &opts, &ev), 0);
  CHECK_EQ(publish_exit(ev, "a", 1), 0);
  run_until_got(1, 10000);
  fake.answer = ANSWER_OK;
  /* No answer within 100 ms: a new connection, the same event again. */
  run_until_got(2, 10000);
  CHECK_STR(fake.got[1].container_id, "a");
  close_events(ev, 1000, &st);
  CHECK_EQ(st.forwarded, 1);
  CHECK(st.connects >= 2); /* more when a loaded machine is slower still */
  teardown();
}

static void test_queue_bound_and_close_deadline(void) {
  hcsb__shim_events_opts_t opts = {2, 0, 100, 1000};
  hcsb__shim_events_stats_t st;
  hcsb__shim_events_t *ev;
  uint64_t t0;

  setup();
  CHECK_EQ(hcsb__shim_events_new(&loop, path, "n", &opts, &ev), 0);
  CHECK_EQ(publish_exit(ev, "a", 1), 0);
  CHECK_EQ(publish_exit(ev, "b", 2), 0);
  CHECK_EQ(publish_exit(ev, "c", 3), -ENOBUFS);
  uv_update_time(&loop);
  t0 = uv_now(&loop);
  close_events(ev, 200, &st);
  CHECK(uv_now(&loop) - t0 >= 150);
  CHECK_EQ(st.published, 2);
  CHECK_EQ(st.dropped, 3); /* one refused, two left at close */
  CHECK_EQ(st.queued, 0);
  teardown();
}

static void test_no_address_and_bad_args(void) {
  Containerd__Events__TaskOOM oom = CONTAINERD__EVENTS__TASK_OOM__INIT;
  hcsb__shim_events_stats_t st;
  hcsb__shim_events_t *ev;
  char longpath[200];

  setup();
  CHECK_EQ(hcsb__shim_events_new(&loop, "", "n", NULL, &ev), 0);
  CHECK_EQ(hcsb__shim_publish(ev, "/tasks/oom", &oom.base), 0);
  CHECK_EQ(hcsb__shim_publish(ev, "tasks/oom", &oom.base), -EINVAL);
  CHECK_EQ(hcsb__shim_publish(ev, NULL, &oom.base), -EINVAL);
  CHECK_EQ(hcsb__shim_publish(ev, "/tasks/oom", NULL), -EINVAL);
  hcsb__shim_events_close(ev, 1000, on_ev_closed, &st);
  CHECK_EQ(hcsb__shim_publish(ev, "/tasks/oom", &oom.base), -ECANCELED);
  ev_closed = 0;
  run_until(&ev_closed, 5000);
  CHECK_EQ(st.published, 1);
  CHECK_EQ(st.dropped, 1);
  CHECK_EQ(hcsb__shim_events_new(&loop, path, "", NULL, &ev), -EINVAL);
  memset(longpath, 'x', sizeof(longpath) - 1);
  longpath[sizeof(longpath) - 1] = '\0';
  CHECK_EQ(hcsb__shim_events_new(&loop, longpath, "n", NULL, &ev),
           -ENAMETOOLONG);
  teardown();
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(order_and_envelope),
      TEST_ENTRY(one_in_flight),
      TEST_ENTRY(retry_until_containerd_listens),
      TEST_ENTRY(dropped_after_attempts),
      TEST_ENTRY(error_answer_drops_one),
      TEST_ENTRY(call_timeout_retries),
      TEST_ENTRY(queue_bound_and_close_deadline),
      TEST_ENTRY(no_address_and_bad_args),
  };
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
