/* The life of an operation whose bridge call lives inside it (one
 * allocation per pending API call): every way a call can end (reply,
 * timeout, close of its owner, loss of the connection, a late reply after
 * any of them), in bulk and in every order a callback can provoke, with
 * each callback counted.  Against a scripted guest that holds requests
 * until the test answers them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-int.h"
#include "test-api-peer.h"
#include "test-api-util.h"

#define MAX_HELD 1024
#define PROPS_OK "{\"Result\":0,\"Properties\":\"{\\\"ProcessList\\\":[]}\"}"

/* A request the guest has not answered yet. */
typedef struct held_s {
  uint32_t type;
  uint64_t id;
  char container[64];
  char activity[40];
  int64_t pid;     /* ProcessId, -1 when absent */
  int64_t signal;  /* Options.Signal, -1 when absent */
  int64_t timeout; /* TimeoutInMs, -1 when absent */
  char args[160];  /* ExecuteProcess: CommandArgs, joined by spaces */
} held_t;

typedef struct script_s {
  api_peer_t peer;
  uv_loop_t loop;
  hcsb_bridge_t *bridge;
  hcsb_conn_t *conn;
  int opened, open_status, lost, lost_status;
  held_t held[MAX_HELD];
  size_t nheld;
  int answer_modify; /* answer ModifySettings/Create at once */
} script_t;

static void copy_field(json_object *root, const char *key, char *out,
                       size_t n) {
  json_object *v = hcsb__json_get(root, key);
  snprintf(out, n, "%s", v != NULL ? json_object_get_string(v) : "");
}

static int64_t int_field(json_object *obj, const char *key) {
  json_object *v = obj != NULL ? hcsb__json_get(obj, key) : NULL;
  return v != NULL ? json_object_get_int64(v) : -1;
}

static void on_request(api_peer_t *p, uint32_t type, uint64_t id,
                       const char *body, size_t len) {
  script_t *s = p->data;
  json_object *root = NULL;
  held_t *h;

  CHECK_EQ(hcsb__json_parse(body, len, &root), 0);
  CHECK(s->nheld < MAX_HELD);
  h = &s->held[s->nheld++];
  h->type = type;
  h->id = id;
  copy_field(root, "ContainerId", h->container, sizeof h->container);
  copy_field(root, "ActivityId", h->activity, sizeof h->activity);
  h->pid = int_field(root, "ProcessId");
  h->signal = int_field(hcsb__json_get(root, "Options"), "Signal");
  h->timeout = int_field(root, "TimeoutInMs");
  h->args[0] = '\0';
  {
    json_object *settings = hcsb__json_get(root, "Settings");
    json_object *pp = settings ? hcsb__json_get(settings, "ProcessParameters")
                               : NULL,
                *params = NULL, *args;
    const char *text = pp ? json_object_get_string(pp) : NULL;
    if (text != NULL && hcsb__json_parse(text, strlen(text), &params) == 0) {
      args = hcsb__json_get(params, "CommandArgs");
      for (size_t i = 0; args && i < json_object_array_length(args); i++) {
        size_t n = strlen(h->args);
        snprintf(h->args + n, sizeof h->args - n, "%s%s", i ? " " : "",
                 json_object_get_string(json_object_array_get_idx(args, i)));
      }
      json_object_put(params);
    }
  }
  json_object_put(root);
  if (s->answer_modify &&
      (type == HCSB_MSG_MODIFY_SETTINGS || type == HCSB_MSG_CREATE))
    api_peer_ok(p, type, id);
}

static void opened(void *data, hcsb_conn_t *conn, int status,
                   const hcsb_guest_error_t *gerr) {
  script_t *s = data;
  s->opened++;
  s->open_status = status;
}

static void on_lost(void *data, hcsb_conn_t *conn, int status) {
  script_t *s = data;
  s->lost++;
  s->lost_status = status;
}

static void start(script_t *s) {
  memset(s, 0, sizeof(*s));
  uv_loop_init(&s->loop);
  api_peer_pair(&s->peer, &s->loop, on_request, s, &s->bridge);
  s->peer.data = s;
  CHECK_EQ(hcsb_conn_open_bridge(s->bridge, NULL, opened, s, &s->conn), 0);
  hcsb_conn_set_lost_cb(s->conn, on_lost, s);
  RUN_UNTIL(&s->loop, s->opened);
  CHECK_EQ(s->open_status, 0);
  s->nheld = 0; /* NegotiateProtocol is answered by the peer */
}

static void finish(script_t *s) {
  int closed = 0;

  hcsb_conn_close(s->conn, api_closed_flag, &closed);
  RUN_UNTIL(&s->loop, closed);
  if (!s->peer.closed) {
    RUN_UNTIL(&s->loop, s->peer.eof);
    api_peer_close(&s->peer);
    RUN_UNTIL(&s->loop, s->peer.closed);
  }
  api_drain(&s->loop);
}

static void run_until_held(script_t *s, size_t n) {
  unsigned spins = 0;

  while (s->nheld < n) {
    uv_run(&s->loop, UV_RUN_ONCE);
    CHECK(++spins < 1000000);
  }
}

/* Answers every held request for container `cid` (NULL: all) with `body`. */
static size_t answer(script_t *s, const char *cid, const char *body) {
  size_t i, n = 0;

  for (i = 0; i < s->nheld; i++) {
    held_t *h = &s->held[i];
    if (h->id == 0 || (cid != NULL && strcmp(h->container, cid) != 0)) continue;
    api_peer_reply(&s->peer, h->type, h->id, body);
    h->id = 0;
    n++;
  }
  return n;
}

/* Runs the loop until the bridge has dropped `n` late replies (bounded),
 * and returns its statistics then. */
static hcsb_bridge_stats_t run_until_late(script_t *s, uint64_t n) {
  hcsb_bridge_stats_t st;
  int i;

  for (i = 0; i < 100000; i++) {
    hcsb_bridge_stats(s->bridge, &st);
    if (st.late_responses == n) break;
    uv_run(&s->loop, UV_RUN_NOWAIT);
  }
  return st;
}

/* One record per started op: how often and how it ended. */
typedef struct rec_s {
  int calls;
  int status;
  struct outcome_s *group;
} rec_t;

typedef struct outcome_s {
  rec_t *recs;
  int n, done;
  /* Optional: closes this container from inside the first callback. */
  hcsb_container_t **close_on_first;
  int *closed_flag;
} outcome_t;

static void on_props(void *data, int status, const hcsb_guest_error_t *gerr,
                     const hcsb_properties_t *props) {
  rec_t *r = data;
  outcome_t *g = r->group;

  r->calls++;
  r->status = status;
  g->done++;
  if (status == 0) CHECK(props != NULL);
  if (g->done == 1 && g->close_on_first != NULL && *g->close_on_first) {
    hcsb_container_close(*g->close_on_first, api_closed_flag, g->closed_flag);
    *g->close_on_first = NULL;
  }
}

static void start_ops(hcsb_container_t *c, outcome_t *g, int n,
                      const hcsb_call_opts_t *opts) {
  int i;

  g->recs = calloc((size_t)n, sizeof *g->recs);
  CHECK(g->recs != NULL);
  g->n = n;
  for (i = 0; i < n; i++) {
    g->recs[i].group = g;
    CHECK_EQ(hcsb_container_process_list(c, opts, on_props, &g->recs[i]), 0);
  }
}

/* Every op of `g` ended exactly once, with `status`. */
static void check_group(const outcome_t *g, int status) {
  int i;

  CHECK_EQ(g->done, g->n);
  for (i = 0; i < g->n; i++) {
    CHECK_EQ(g->recs[i].calls, 1);
    CHECK_EQ(g->recs[i].status, status);
  }
}

static size_t count_held(const script_t *s, const char *cid) {
  size_t i, n = 0;

  for (i = 0; i < s->nheld; i++) n += strcmp(s->held[i].container, cid) == 0;
  return n;
}

/* ------------------------------------------------------------------------ */

/* 4 x 100 ops (far more than the op pool keeps) on four containers, ended
 * four different ways, then every held request answered late. */
static void test_every_ending_once(void) {
  script_t s;
  hcsb_container_t *ca, *cb, *cc, *cd;
  outcome_t a = {0}, b = {0}, c = {0}, d = {0};
  hcsb_call_opts_t quick = {NULL, 40};
  hcsb_bridge_stats_t st;
  int closed = 0;
  size_t i, j;

  start(&s);
  CHECK_EQ(hcsb_conn_open_container(s.conn, "a", &ca), 0);
  CHECK_EQ(hcsb_conn_open_container(s.conn, "b", &cb), 0);
  CHECK_EQ(hcsb_conn_open_container(s.conn, "c", &cc), 0);
  CHECK_EQ(hcsb_conn_open_container(s.conn, "d", &cd), 0);
  start_ops(ca, &a, 100, NULL);
  start_ops(cb, &b, 100, &quick);
  start_ops(cc, &c, 100, NULL);
  start_ops(cd, &d, 100, NULL);
  run_until_held(&s, 400);
  CHECK_EQ(count_held(&s, "b"), 100);

  /* Every op has its own ActivityId, and every request its own ID. */
  for (i = 0; i < s.nheld; i++) {
    CHECK(hcsb__guid_valid(s.held[i].activity));
    for (j = 0; j < i; j++) {
      CHECK(strcmp(s.held[i].activity, s.held[j].activity) != 0);
      CHECK(s.held[i].id != s.held[j].id);
    }
  }

  /* Replies. */
  CHECK_EQ(answer(&s, "a", PROPS_OK), 100);
  while (a.done < a.n) uv_run(&s.loop, UV_RUN_ONCE);
  check_group(&a, 0);

  /* Timeouts, then their replies arrive late. */
  while (b.done < b.n) uv_run(&s.loop, UV_RUN_ONCE);
  check_group(&b, -ETIMEDOUT);
  CHECK_EQ(answer(&s, "b", PROPS_OK), 100);

  /* Closing the owner cancels; the replies that follow are late too. */
  hcsb_container_close(cc, api_closed_flag, &closed);
  CHECK_EQ(c.done, 0); /* never inside the call */
  RUN_UNTIL(&s.loop, closed);
  check_group(&c, -ECANCELED);
  CHECK_EQ(answer(&s, "c", PROPS_OK), 100);

  /* Drain the late replies: 200 of them, all recognised as late. */
  st = run_until_late(&s, 200);
  CHECK_U64(st.late_responses, 200);
  CHECK_U64(st.unknown_responses, 0);
  CHECK_EQ(st.pending, 100); /* d's */
  check_group(&a, 0);
  check_group(&b, -ETIMEDOUT);
  check_group(&c, -ECANCELED);

  /* The guest goes away: d's ops fail with the loss, once. */
  api_peer_close(&s.peer);
  RUN_UNTIL(&s.loop, s.lost);
  while (d.done < d.n) uv_run(&s.loop, UV_RUN_ONCE);
  check_group(&d, -ECONNRESET);
  hcsb_bridge_stats(s.bridge, &st);
  CHECK_EQ(st.pending, 0);
  CHECK_U64(st.calls_completed, st.calls_started);

  closed = 0;
  hcsb_container_close(ca, api_closed_flag, &closed);
  hcsb_container_close(cb, api_closed_flag, &closed);
  hcsb_container_close(cd, api_closed_flag, &closed);
  while (closed < 3) uv_run(&s.loop, UV_RUN_ONCE);
  finish(&s);
  free(a.recs);
  free(b.recs);
  free(c.recs);
  free(d.recs);
}

/* The first reply's callback closes the container while the other nine
 * replies are already on their way: those nine end -ECANCELED exactly
 * once and their replies are dropped as late. */
static void test_close_owner_inside_reply(void) {
  script_t s;
  hcsb_container_t *c, *victim;
  outcome_t g = {0};
  hcsb_bridge_stats_t st;
  int closed = 0, i;

  start(&s);
  CHECK_EQ(hcsb_conn_open_container(s.conn, "x", &c), 0);
  victim = c;
  g.close_on_first = &victim;
  g.closed_flag = &closed;
  start_ops(c, &g, 10, NULL);
  run_until_held(&s, 10);
  CHECK_EQ(answer(&s, NULL, PROPS_OK), 10);
  RUN_UNTIL(&s.loop, closed);
  CHECK_EQ(g.done, 10);
  CHECK_EQ(g.recs[0].status, 0);
  for (i = 0; i < 10; i++) CHECK_EQ(g.recs[i].calls, 1);
  for (i = 1; i < 10; i++) CHECK_EQ(g.recs[i].status, -ECANCELED);
  st = run_until_late(&s, 9);
  CHECK_U64(st.late_responses, 9);
  CHECK_EQ(st.pending, 0);
  finish(&s);
  free(g.recs);
}

/* Ten ops share one deadline; the first timeout's callback closes the
 * container while the other nine are due in the same timer run. */
static void test_close_owner_inside_timeout(void) {
  script_t s;
  hcsb_container_t *c, *victim;
  hcsb_call_opts_t quick = {NULL, 30};
  outcome_t g = {0};
  hcsb_bridge_stats_t st;
  int closed = 0, i;

  start(&s);
  CHECK_EQ(hcsb_conn_open_container(s.conn, "y", &c), 0);
  victim = c;
  g.close_on_first = &victim;
  g.closed_flag = &closed;
  start_ops(c, &g, 10, &quick);
  RUN_UNTIL(&s.loop, closed);
  CHECK_EQ(g.done, 10);
  CHECK_EQ(g.recs[0].status, -ETIMEDOUT);
  for (i = 0; i < 10; i++) CHECK_EQ(g.recs[i].calls, 1);
  /* The rest were due in the same run, but their owner closed first. */
  for (i = 1; i < 10; i++) CHECK_EQ(g.recs[i].status, -ECANCELED);
  hcsb_bridge_stats(s.bridge, &st);
  CHECK_EQ(st.pending, 0);
  /* Every sent ID is remembered as abandoned: late replies are told apart. */
  run_until_held(&s, 10);
  CHECK_EQ(answer(&s, NULL, PROPS_OK), 10);
  st = run_until_late(&s, 10);
  CHECK_U64(st.late_responses, 10);
  CHECK_U64(st.unknown_responses, 0);
  finish(&s);
  free(g.recs);
}

/* The connection closes while ops are pending and others have already
 * ended but not yet been delivered: each callback once, nothing after
 * the close callback. */
typedef struct conn_close_s {
  hcsb_conn_t *conn;
  int closed, after_close;
  int calls[8];
  int status[8];
} conn_close_t;

static conn_close_t *cc_state;

static void on_cc_props(void *data, int status, const hcsb_guest_error_t *gerr,
                        const hcsb_properties_t *props) {
  int i = (int)(intptr_t)data;

  cc_state->calls[i]++;
  cc_state->status[i] = status;
  if (cc_state->closed) cc_state->after_close++;
}

static void test_close_conn_with_delivered_and_pending(void) {
  script_t s;
  conn_close_t st;
  hcsb_container_t *c;
  int i, closed_c = 0;

  start(&s);
  memset(&st, 0, sizeof st);
  cc_state = &st;
  CHECK_EQ(hcsb_conn_open_container(s.conn, "z", &c), 0);
  for (i = 0; i < 8; i++)
    CHECK_EQ(
        hcsb_container_process_list(c, NULL, on_cc_props, (void *)(intptr_t)i),
        0);
  run_until_held(&s, 8);
  /* Half of them answered and read; then close everything at once. */
  for (i = 0; i < 4; i++) {
    api_peer_reply(&s.peer, s.held[i].type, s.held[i].id, PROPS_OK);
    s.held[i].id = 0;
  }
  while (st.calls[0] + st.calls[1] + st.calls[2] + st.calls[3] < 4)
    uv_run(&s.loop, UV_RUN_ONCE);
  hcsb_container_close(c, api_closed_flag, &closed_c);
  hcsb_conn_close(s.conn, api_closed_flag, &st.closed);
  for (i = 0; i < 8; i++) CHECK_EQ(st.calls[i], i < 4 ? 1 : 0);
  RUN_UNTIL(&s.loop, st.closed);
  RUN_UNTIL(&s.loop, closed_c);
  for (i = 0; i < 8; i++) {
    CHECK_EQ(st.calls[i], 1);
    CHECK_EQ(st.status[i], i < 4 ? 0 : -ECANCELED);
  }
  CHECK_EQ(st.after_close, 0);
  RUN_UNTIL(&s.loop, s.peer.eof);
  api_peer_close(&s.peer);
  RUN_UNTIL(&s.loop, s.peer.closed);
  api_drain(&s.loop);
}

/* A container create is a chain of steps through one embedded call: each
 * step goes out with the op's one ActivityId (the caller's, in lower case)
 * and a fresh SequenceID, and the callback runs once at the end. */
static void create_done(void *data, hcsb_container_t *c, int status,
                        const hcsb_guest_error_t *gerr) {
  api_done_t *d = data;
  d->done++;
  d->status = status;
}

static void test_create_chain_keeps_activity(void) {
  static const char upper[] = "0123ABCD-4567-89EF-ABCD-0123456789AB";
  static const char lower[] = "0123abcd-4567-89ef-abcd-0123456789ab";
  hcsb_mapped_virtual_disk_t disk;
  hcsb_container_config_t cfg;
  hcsb_call_opts_t opts = {upper, 0};
  hcsb_container_t *c = NULL;
  api_done_t d = {0};
  script_t s;
  size_t i;
  int closed = 0;

  start(&s);
  s.answer_modify = 1;
  memset(&disk, 0, sizeof(disk));
  disk.mount_path = "/run/mounts/m1";
  disk.lun = 1;
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = "chain";
  cfg.oci_spec_json = "{}";
  cfg.mapped_virtual_disks = &disk;
  cfg.nmapped_virtual_disks = 1;
  cfg.layers = (const char *const[]){"/l1", "/l2"};
  cfg.nlayers = 2;
  CHECK_EQ(hcsb_conn_create_container(s.conn, &opts, &cfg, create_done, &d, &c),
           0);
  RUN_UNTIL(&s.loop, d.done);
  CHECK_EQ(d.status, 0);
  CHECK(s.nheld >= 3); /* the disk, the layers, Create */
  CHECK_EQ(s.held[s.nheld - 1].type, HCSB_MSG_CREATE);
  for (i = 0; i < s.nheld; i++) {
    CHECK(strcmp(s.held[i].activity, lower) == 0);
    if (i > 0) CHECK(s.held[i].id > s.held[i - 1].id);
  }
  /* Nothing more arrives: the callback ran once. */
  for (i = 0; i < 20; i++) uv_run(&s.loop, UV_RUN_NOWAIT);
  CHECK_EQ(d.done, 1);
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  finish(&s);
}

/* Ops come back to a pool: ones that ended by timeout (their call was in
 * the deadline heap) are reused for calls that are answered, many times
 * over, and never carry anything of their previous life. */
static void test_pool_reuse_after_every_ending(void) {
  script_t s;
  hcsb_container_t *c;
  hcsb_call_opts_t quick = {NULL, 20};
  hcsb_bridge_stats_t st;
  int round;

  start(&s);
  CHECK_EQ(hcsb_conn_open_container(s.conn, "p", &c), 0);
  for (round = 0; round < 6; round++) {
    outcome_t g = {0};
    size_t first = s.nheld;

    start_ops(c, &g, 80, round % 2 ? NULL : &quick);
    run_until_held(&s, first + 80);
    if (round % 2) {
      CHECK_EQ(answer(&s, NULL, PROPS_OK), 80);
      while (g.done < g.n) uv_run(&s.loop, UV_RUN_ONCE);
      check_group(&g, 0);
    } else {
      while (g.done < g.n) uv_run(&s.loop, UV_RUN_ONCE);
      check_group(&g, -ETIMEDOUT);
      size_t i;
      for (i = first; i < s.nheld; i++) s.held[i].id = 0; /* never answered */
    }
    free(g.recs);
    hcsb_bridge_stats(s.bridge, &st);
    CHECK_EQ(st.pending, 0);
  }
  {
    int closed = 0;
    hcsb_container_close(c, api_closed_flag, &closed);
    RUN_UNTIL(&s.loop, closed);
  }
  finish(&s);
}

/* ------------------------------------------------------------------------ */
/* Never orphan guest work: Create/ExecuteProcess given up on, then
 * answered with success. */

static void run_turns(script_t *s, int n) {
  while (n-- > 0) uv_run(&s->loop, UV_RUN_NOWAIT);
}

/* The request the bridge sent last is `type` for `cid`; answers it. */
static held_t *expect_held(script_t *s, size_t n, uint32_t type,
                           const char *cid) {
  held_t *h;

  run_until_held(s, n);
  CHECK_EQ(s->nheld, n);
  h = &s->held[n - 1];
  CHECK_EQ(h->type, type);
  CHECK_STR(h->container, cid);
  return h;
}

/* Starts a Create of `id` with a short timeout and runs until it has
 * timed out; the guest holds its answer. */
static void create_given_up(script_t *s, const char *id, hcsb_container_t **c,
                            int *status) {
  hcsb_container_config_t cfg;
  hcsb_call_opts_t quick = {NULL, 30};
  api_done_t d = {0};

  memset(&cfg, 0, sizeof(cfg));
  cfg.id = id;
  cfg.oci_spec_json = "{}";
  CHECK_EQ(
      hcsb_conn_create_container(s->conn, &quick, &cfg, create_done, &d, c), 0);
  expect_held(s, s->nheld + 1, HCSB_MSG_CREATE, id);
  RUN_UNTIL(&s->loop, d.done);
  *status = d.status;
}

static void create_late(script_t *s, const char *id, const char *late_body,
                        hcsb_container_t **c, int *status) {
  create_given_up(s, id, c, status);
  CHECK_EQ(answer(s, id, late_body), 1);
}

static void test_late_create_success_is_undone(void) {
  hcsb_bridge_stats_t before, st;
  hcsb_container_t *c = NULL;
  script_t s;
  size_t n;
  int status = 0, closed = 0;

  start(&s);
  hcsb_bridge_stats(s.bridge, &before);
  create_late(&s, "late-c", "{\"Result\":0}", &c, &status);
  CHECK_EQ(status, -ETIMEDOUT);
  n = s.nheld;
  /* Terminate first, whatever it answers, then the state goes. */
  expect_held(&s, n + 1, HCSB_MSG_SHUTDOWN_FORCED, "late-c");
  st = run_until_late(&s, before.late_responses + 1);
  CHECK_U64(st.orphans_reaped, 1);
  CHECK_EQ(answer(&s, "late-c", "{\"Result\":-1070137074}"), 1);
  expect_held(&s, n + 2, HCSB_MSG_DELETE_CONTAINER_STATE, "late-c");
  CHECK_EQ(answer(&s, "late-c", "{\"Result\":0}"), 1);
  run_turns(&s, 50);
  CHECK_EQ(s.nheld, n + 2); /* nothing more */
  hcsb_bridge_stats(s.bridge, &st);
  CHECK_U64(st.orphans_reaped, 1);
  CHECK_EQ(st.pending, 0);
  /* The cleanup is the bridge's own business, not the user's calls. */
  CHECK_U64(st.calls_started, before.calls_started + 1);
  CHECK_U64(st.calls_completed, before.calls_completed + 1);
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  finish(&s);
}

static void on_process(void *data, hcsb_process_t *p, int status,
                       const hcsb_guest_error_t *gerr) {
  api_done_t *d = data;
  d->done++;
  d->status = status;
}

/* Cancelled by closing the process handle, answered late with a PID: the
 * process is killed and reaped. */
static void test_late_exec_success_is_undone(void) {
  static const char *const argv[] = {"sleep", "100"};
  hcsb_process_config_t pc;
  hcsb_bridge_stats_t before, st;
  hcsb_container_t *c = NULL;
  hcsb_process_t *p = NULL;
  api_done_t d = {0};
  held_t *h;
  script_t s;
  size_t n;
  int closed = 0;

  start(&s);
  CHECK_EQ(hcsb_conn_open_container(s.conn, "late-p", &c), 0);
  memset(&pc, 0, sizeof(pc));
  pc.command_args = argv;
  pc.ncommand_args = 2;
  hcsb_bridge_stats(s.bridge, &before);
  CHECK_EQ(hcsb_container_create_process(c, NULL, &pc, on_process, &d, &p), 0);
  expect_held(&s, s.nheld + 1, HCSB_MSG_EXECUTE_PROCESS, "late-p");
  hcsb_process_close(p, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, d.done);
  CHECK_EQ(d.status, -ECANCELED);
  RUN_UNTIL(&s.loop, closed);
  n = s.nheld;
  CHECK_EQ(answer(&s, "late-p", "{\"Result\":0,\"ProcessId\":4242}"), 1);
  h = expect_held(&s, n + 1, HCSB_MSG_SIGNAL_PROCESS, "late-p");
  CHECK_EQ(h->pid, 4242);
  CHECK_EQ(h->signal, 9);
  st = run_until_late(&s, before.late_responses + 1);
  CHECK_U64(st.orphans_reaped, 1);
  CHECK_EQ(answer(&s, "late-p", "{\"Result\":0}"), 1);
  h = expect_held(&s, n + 2, HCSB_MSG_WAIT_FOR_PROCESS, "late-p");
  CHECK_EQ(h->pid, 4242);
  CHECK_EQ(answer(&s, "late-p", "{\"Result\":0,\"ExitCode\":137}"), 1);
  run_turns(&s, 50);
  CHECK_EQ(s.nheld, n + 2);
  hcsb_bridge_stats(s.bridge, &st);
  CHECK_EQ(st.pending, 0);
  CHECK_U64(st.orphans_reaped, 1);
  closed = 0;
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  finish(&s);
}

#define NULL_ID "00000000-0000-0000-0000-000000000000"

/* A process in the UVM answered late: a v0.11.8 guest refuses to signal
 * UVM processes (0xC037010E), so a UVM process of the bridge's kills it,
 * is waited for, and then the orphan is, without a timeout (its record in
 * the guest goes with the answered wait). */
static void test_late_uvm_exec_success_is_undone(void) {
  static const char *const argv[] = {"sleep", "100"};
  hcsb_process_config_t pc;
  hcsb_bridge_stats_t before, st;
  hcsb_process_t *p = NULL;
  api_done_t d = {0};
  held_t *h;
  script_t s;
  size_t n;
  int closed = 0;

  start(&s);
  memset(&pc, 0, sizeof(pc));
  pc.command_args = argv;
  pc.ncommand_args = 2;
  hcsb_bridge_stats(s.bridge, &before);
  CHECK_EQ(hcsb_conn_create_process(s.conn, NULL, &pc, on_process, &d, &p), 0);
  expect_held(&s, s.nheld + 1, HCSB_MSG_EXECUTE_PROCESS, NULL_ID);
  hcsb_process_close(p, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, d.done);
  CHECK_EQ(d.status, -ECANCELED);
  RUN_UNTIL(&s.loop, closed);
  n = s.nheld;
  CHECK_EQ(answer(&s, NULL_ID, "{\"Result\":0,\"ProcessId\":4242}"), 1);
  h = expect_held(&s, n + 1, HCSB_MSG_SIGNAL_PROCESS, NULL_ID);
  CHECK_EQ(h->pid, 4242);
  CHECK_EQ(h->signal, 9);
  CHECK_EQ(answer(&s, NULL_ID,
                  "{\"Result\":-1070137074,\"ErrorMessage\":\"not found\"}"),
           1);
  h = expect_held(&s, n + 2, HCSB_MSG_EXECUTE_PROCESS, NULL_ID);
  CHECK_STR(h->args, "/bin/sh -c kill -KILL 4242");
  CHECK_EQ(answer(&s, NULL_ID, "{\"Result\":0,\"ProcessId\":77}"), 1);
  h = expect_held(&s, n + 3, HCSB_MSG_WAIT_FOR_PROCESS, NULL_ID);
  CHECK_EQ(h->pid, 77);
  CHECK_EQ(h->timeout, 4294967295LL);
  CHECK_EQ(answer(&s, NULL_ID, "{\"Result\":0,\"ExitCode\":0}"), 1);
  h = expect_held(&s, n + 4, HCSB_MSG_WAIT_FOR_PROCESS, NULL_ID);
  CHECK_EQ(h->pid, 4242);
  CHECK_EQ(h->timeout, 4294967295LL);
  /* The orphan's wait has no deadline of its own: it stays out. */
  run_turns(&s, 50);
  CHECK_EQ(s.nheld, n + 4);
  CHECK_EQ(answer(&s, NULL_ID, "{\"Result\":0,\"ExitCode\":4294967295}"), 1);
  run_turns(&s, 50);
  CHECK_EQ(s.nheld, n + 4);
  hcsb_bridge_stats(s.bridge, &st);
  CHECK_EQ(st.pending, 0);
  CHECK_U64(st.orphans_reaped, before.orphans_reaped + 1);
  finish(&s);
}

/* A ModifySettings Add for a container that times out, then succeeds:
 * tracked under the container after all, so its delete removes it. */
static void test_late_modify_add_is_tracked(void) {
  static const char add[] =
      "{\"ResourceType\":\"VPMemDevice\",\"RequestType\":\"Add\","
      "\"Settings\":{\"DeviceNumber\":3,\"MountPath\":\"/run/layers/p3\"}}";
  hcsb_call_opts_t quick = {NULL, 30};
  hcsb_bridge_stats_t before, st;
  api_done_t d = {0}, del = {0};
  held_t *h;
  script_t s;
  size_t n;

  start(&s);
  hcsb_bridge_stats(s.bridge, &before);
  CHECK_EQ(hcsb_conn_modify_for_container(s.conn, &quick, "late-m", add,
                                          api_done, &d),
           0);
  expect_held(&s, s.nheld + 1, HCSB_MSG_MODIFY_SETTINGS, NULL_ID);
  RUN_UNTIL(&s.loop, d.done);
  CHECK_EQ(d.status, -ETIMEDOUT);
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "late-m"), 0);
  n = s.nheld;
  CHECK_EQ(answer(&s, NULL_ID, "{\"Result\":0}"), 1);
  st = run_until_late(&s, before.late_responses + 1);
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "late-m"), 1);
  CHECK_U64(st.orphans_reaped, before.orphans_reaped); /* nothing undone */
  /* The delete removes it first. */
  CHECK_EQ(
      hcsb_conn_delete_container_state(s.conn, NULL, "late-m", api_done, &del),
      0);
  h = expect_held(&s, n + 1, HCSB_MSG_MODIFY_SETTINGS, NULL_ID);
  CHECK_EQ(answer(&s, NULL_ID, "{\"Result\":0}"), 1);
  h = expect_held(&s, n + 2, HCSB_MSG_DELETE_CONTAINER_STATE, "late-m");
  (void)h;
  CHECK_EQ(answer(&s, "late-m", "{\"Result\":0}"), 1);
  RUN_UNTIL(&s.loop, del.done);
  CHECK_EQ(del.status, 0);
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "late-m"), 0);
  finish(&s);
}

/* A create's CombinedLayers cancelled by closing the handle, then done
 * by the guest: the overlay is tracked under the ID for the delete. */
static void test_late_create_step_is_tracked(void) {
  static const char *const layers[] = {"/run/layers/p0"};
  hcsb_container_config_t cfg;
  hcsb_container_t *c = NULL;
  api_done_t d = {0};
  script_t s;
  int closed = 0;

  start(&s);
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = "late-l";
  cfg.oci_spec_json = "{}";
  cfg.layers = layers;
  cfg.nlayers = 1;
  CHECK_EQ(hcsb_conn_create_container(s.conn, NULL, &cfg, create_done, &d, &c),
           0);
  expect_held(&s, s.nheld + 1, HCSB_MSG_MODIFY_SETTINGS, NULL_ID);
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, d.done);
  CHECK_EQ(d.status, -ECANCELED);
  RUN_UNTIL(&s.loop, closed);
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "late-l"), 0);
  CHECK_EQ(answer(&s, NULL_ID, "{\"Result\":0}"), 1);
  run_until_late(&s, 1);
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "late-l"), 1);
  finish(&s);
}

/* A retried Create owns its ID: the late success of the Create the caller
 * gave up on does not tear down the container the retry made. */
static void test_late_create_success_after_retry_is_left_alone(void) {
  hcsb_container_config_t cfg;
  hcsb_bridge_stats_t before, st;
  hcsb_container_t *c = NULL, *c2 = NULL;
  api_done_t d = {0};
  script_t s;
  size_t n;
  int status = 0, closed = 0;

  start(&s);
  hcsb_bridge_stats(s.bridge, &before);
  /* The first Create times out; its answer is held back. */
  create_given_up(&s, "retry", &c, &status);
  CHECK_EQ(status, -ETIMEDOUT);
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  /* The caller retries; then both answers arrive, the late one first. */
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = "retry";
  cfg.oci_spec_json = "{}";
  CHECK_EQ(hcsb_conn_create_container(s.conn, NULL, &cfg, create_done, &d, &c2),
           0);
  expect_held(&s, s.nheld + 1, HCSB_MSG_CREATE, "retry");
  n = s.nheld;
  CHECK_EQ(answer(&s, "retry", "{\"Result\":0}"), 2);
  RUN_UNTIL(&s.loop, d.done);
  CHECK_EQ(d.status, 0);
  st = run_until_late(&s, before.late_responses + 1);
  run_turns(&s, 50);
  CHECK_EQ(s.nheld, n); /* no ShutdownForced, no DeleteContainerState */
  hcsb_bridge_stats(s.bridge, &st);
  CHECK_U64(st.late_responses, before.late_responses + 1);
  CHECK_U64(st.orphans_reaped, 0);
  closed = 0;
  hcsb_container_close(c2, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  finish(&s);
}

/* A late failure made nothing: nothing is sent, nothing counted. */
static void test_late_create_failure_is_left_alone(void) {
  hcsb_bridge_stats_t before, st;
  hcsb_container_t *c = NULL;
  script_t s;
  size_t n;
  int status = 0, closed = 0;

  start(&s);
  hcsb_bridge_stats(s.bridge, &before);
  create_late(&s, "late-f", "{\"Result\":-2147467259}", &c, &status);
  CHECK_EQ(status, -ETIMEDOUT);
  n = s.nheld;
  st = run_until_late(&s, before.late_responses + 1);
  CHECK_U64(st.late_responses, before.late_responses + 1);
  run_turns(&s, 50);
  CHECK_EQ(s.nheld, n);
  hcsb_bridge_stats(s.bridge, &st);
  CHECK_U64(st.orphans_reaped, 0);
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  finish(&s);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY_T(every_ending_once, 60),
    TEST_ENTRY(close_owner_inside_reply),
    TEST_ENTRY(close_owner_inside_timeout),
    TEST_ENTRY(close_conn_with_delivered_and_pending),
    TEST_ENTRY(create_chain_keeps_activity),
    TEST_ENTRY(pool_reuse_after_every_ending),
    TEST_ENTRY(late_create_success_is_undone),
    TEST_ENTRY(late_exec_success_is_undone),
    TEST_ENTRY(late_uvm_exec_success_is_undone),
    TEST_ENTRY(late_modify_add_is_tracked),
    TEST_ENTRY(late_create_step_is_tracked),
    TEST_ENTRY(late_create_failure_is_left_alone),
    TEST_ENTRY(late_create_success_after_retry_is_left_alone),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
