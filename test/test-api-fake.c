/* The API against a scripted guest: the exact requests it sends, and what
 * it does with answers the emulator never gives (stray notifications,
 * crafted or malformed properties, missing capabilities). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-int.h"
#include "test-api-peer.h"
#include "test-api-util.h"

#define ZERO_AID "\"ActivityId\":\"00000000-0000-0000-0000-000000000000\""

/* What the scripted guest does; one per test. */
typedef struct script_s {
  api_peer_t peer;
  uv_loop_t loop;
  hcsb_bridge_t *bridge;
  hcsb_conn_t *conn;
  int opened, open_status;
  /* The last request of each kind, parsed. */
  json_object *last[16];
  unsigned count[16];
  /* Canned answers */
  const char *props;        /* Properties text for GetProperties */
  const char *props_body;   /* or a whole body */
  uint32_t fail_type;       /* answer this request type with... */
  const char *fail_body;    /* ...this body */
  int notify_before_create; /* send the notification before the answer */
  uint32_t next_pid;
  uint64_t held_wait; /* a WaitForProcess left unanswered */
  char logs[4096];
  char seq[4096]; /* "Create;Add MappedVirtualDisk;..." in arrival order */
} script_t;

static unsigned slot(uint32_t type) {
  return (type >> 8) & 0xF;
}

static json_object *last(script_t *s, uint32_t type) {
  return s->last[slot(type)];
}

static const char *inner_string(json_object *o, const char *k1,
                                const char *k2) {
  json_object *v = hcsb__json_get(o, k1);
  if (k2 != NULL && v != NULL) v = hcsb__json_get(v, k2);
  return v != NULL ? json_object_get_string(v) : NULL;
}

static const char *msg_name(uint32_t type) {
  switch (type) {
    case HCSB_MSG_CREATE:
      return "Create";
    case HCSB_MSG_START:
      return "Start";
    case HCSB_MSG_DELETE_CONTAINER_STATE:
      return "DeleteContainerState";
    default:
      return "Other";
  }
}

static void on_request(api_peer_t *p, uint32_t type, uint64_t id,
                       const char *body, size_t len) {
  script_t *s = p->data;
  unsigned k = slot(type);
  json_object *root = NULL;
  char buf[8192];

  CHECK_EQ(hcsb__json_parse(body, len, &root), 0);
  {
    size_t n = strlen(s->seq);
    if (type == HCSB_MSG_MODIFY_SETTINGS)
      snprintf(s->seq + n, sizeof s->seq - n, "%s %s;",
               inner_string(root, "Request", "RequestType"),
               inner_string(root, "Request", "ResourceType"));
    else
      snprintf(s->seq + n, sizeof s->seq - n, "%s;", msg_name(type));
  }
  if (s->last[k] != NULL) json_object_put(s->last[k]);
  s->last[k] = root;
  s->count[k]++;
  if (s->fail_type == type) {
    api_peer_reply(p, type, id, s->fail_body);
    return;
  }
  switch (type) {
    case HCSB_MSG_CREATE:
      if (s->notify_before_create) {
        snprintf(buf, sizeof buf,
                 "{\"ContainerId\":\"%s\",\"Type\":\"UnexpectedExit\","
                 "\"Operation\":\"None\",\"Result\":0}",
                 inner_string(root, "ContainerId", NULL));
        api_peer_notify(p, buf);
      }
      api_peer_ok(p, type, id);
      break;
    case HCSB_MSG_EXECUTE_PROCESS:
      snprintf(buf, sizeof buf, "{\"Result\":0," ZERO_AID ",\"ProcessId\":%u}",
               (unsigned)s->next_pid++);
      api_peer_reply(p, type, id, buf);
      break;
    case HCSB_MSG_WAIT_FOR_PROCESS:
      s->held_wait = id;
      break;
    case HCSB_MSG_GET_PROPERTIES:
      if (s->props_body != NULL) {
        api_peer_reply(p, type, id, s->props_body);
      } else {
        hcsb__buf_t b = HCSB__BUF_INIT;
        static const char head[] = "{\"Result\":0,\"Properties\":";
        CHECK_EQ(hcsb__buf_append(&b, head, sizeof head - 1), 0);
        CHECK_EQ(hcsb__json_put_string(&b, s->props, strlen(s->props)), 0);
        CHECK_EQ(hcsb__buf_append(&b, "}", 2), 0);
        api_peer_reply(p, type, id, b.data);
        hcsb__buf_free(&b);
      }
      break;
    case HCSB_MSG_DUMP_STACKS:
      api_peer_reply(p, type, id,
                     "{\"Result\":0,\"GuestStacks\":\"goroutine 1\\n\"}");
      break;
    default:
      api_peer_ok(p, type, id);
  }
}

static void capture_log(void *data, hcsb_log_level_t level, const char *aid,
                        const char *msg) {
  script_t *s = data;
  size_t n = strlen(s->logs);
  snprintf(s->logs + n, sizeof s->logs - n, "%s\n", msg);
}

static void opened(void *data, hcsb_conn_t *conn, int status,
                   const hcsb_guest_error_t *gerr) {
  script_t *s = data;
  s->opened++;
  s->open_status = status;
}

static void start(script_t *s, const char *negotiate_body) {
  hcsb_conn_options_t o;

  memset(s, 0, sizeof(*s));
  s->next_pid = 100;
  uv_loop_init(&s->loop);
  api_peer_pair(&s->peer, &s->loop, on_request, s, &s->bridge);
  s->peer.data = s;
  if (negotiate_body != NULL) {
    s->peer.raw_negotiate = 1;
    s->fail_type = HCSB_MSG_NEGOTIATE_PROTOCOL;
    s->fail_body = negotiate_body;
  }
  hcsb_conn_options_init(&o);
  o.log_cb = capture_log;
  o.log_data = s;
  o.log_level = HCSB_LOG_WARN;
  CHECK_EQ(hcsb_conn_open_bridge(s->bridge, &o, opened, s, &s->conn), 0);
  CHECK_EQ(s->opened, 0);
  RUN_UNTIL(&s->loop, s->opened);
  CHECK_EQ(s->open_status, 0);
  if (negotiate_body != NULL) s->fail_type = 0;
}

static void finish(script_t *s) {
  int closed = 0;
  size_t i;

  hcsb_conn_close(s->conn, api_closed_flag, &closed);
  RUN_UNTIL(&s->loop, closed);
  RUN_UNTIL(&s->loop, s->peer.eof);
  api_peer_close(&s->peer);
  RUN_UNTIL(&s->loop, s->peer.closed);
  for (i = 0; i < 16; i++)
    if (s->last[i] != NULL) json_object_put(s->last[i]);
  api_drain(&s->loop);
}

/* ------------------------------------------------------------------------ */

static void test_open_bridge_states(void) {
  script_t s;
  hcsb_conn_t *c2 = NULL;

  /* Negotiating when wrapped: the open completes with the negotiation. */
  start(&s, NULL);
  CHECK_EQ(hcsb_conn_protocol(s.conn), 4);
  CHECK_STR(hcsb_conn_os(s.conn), "linux");
  CHECK(hcsb_conn_bridge(s.conn) == s.bridge);
  finish(&s);

  /* Already negotiated: on the next turn. */
  memset(&s, 0, sizeof(s));
  uv_loop_init(&s.loop);
  api_peer_pair(&s.peer, &s.loop, on_request, &s, &s.bridge);
  s.peer.data = &s;
  while (!hcsb_bridge_is_connected(s.bridge)) uv_run(&s.loop, UV_RUN_ONCE);
  CHECK_EQ(hcsb_conn_open_bridge(s.bridge, NULL, opened, &s, &c2), 0);
  CHECK_EQ(s.opened, 0);
  RUN_UNTIL(&s.loop, s.opened);
  CHECK_EQ(s.open_status, 0);
  /* No address: stdio relays and bring-up cannot be placed. */
  {
    hcsb_conn_options_t o;
    hcsb_conn_t *c3 = NULL;
    hcsb_bridge_t *b2 = NULL;
    const char *args[] = {"/bin/true"};
    hcsb_process_config_t pc;
    hcsb_process_t *p = NULL;

    memset(&pc, 0, sizeof(pc));
    pc.command_args = args;
    pc.ncommand_args = 1;
    pc.create_stdout_pipe = 1;
    CHECK_EQ(hcsb_conn_create_process(c2, NULL, &pc, NULL, NULL, &p), -EINVAL);
    hcsb_conn_options_init(&o);
    o.entropy = 1;
    CHECK_EQ(hcsb_bridge_new(&s.loop, &b2), 0);
    CHECK_EQ(hcsb_conn_open_bridge(b2, &o, opened, &s, &c3), -EINVAL);
    hcsb_bridge_close(b2, NULL, NULL);
  }
  s.conn = c2;
  finish(&s);
}

typedef struct cw_s {
  int n, status;
  hcsb_container_exit_t exit;
  char type_name[32];
} cw_t;

static void cwait(void *data, hcsb_container_t *c, int status,
                  const hcsb_container_exit_t *exit) {
  cw_t *w = data;
  w->n++;
  w->status = status;
  if (exit != NULL) {
    w->exit = *exit;
    snprintf(w->type_name, sizeof w->type_name, "%s", exit->type_name);
  }
}

static void test_notifications(void) {
  script_t s;
  hcsb_container_t *c = NULL, *c2 = NULL;
  cw_t w = {0}, w2 = {0}, w3 = {0};
  api_done_t d = {0};
  int closed = 0;

  start(&s, NULL);
  CHECK_EQ(hcsb_conn_open_container(s.conn, "c-1", &c), 0);
  CHECK_EQ(hcsb_container_wait(c, 0, cwait, &w), 0);
  /* Unknown container: logged and ignored; the connection lives. */
  api_peer_notify(&s.peer,
                  "{\"ContainerId\":\"stranger\",\"Type\":\"GracefulExit\","
                  "\"Operation\":\"None\",\"Result\":0}");
  CHECK_EQ(hcsb_conn_dump_stacks(s.conn, NULL, NULL, NULL), 0);
  CHECK_EQ(hcsb_container_start(c, NULL, api_done, &d), 0);
  RUN_UNTIL(&s.loop, d.done);
  CHECK_EQ(d.status, 0);
  CHECK(strstr(s.logs, "unknown container stranger ignored") != NULL);
  CHECK_EQ(w.n, 0);
  /* Ours: type and result reported as sent (hcsshim drops them). */
  api_peer_notify(&s.peer,
                  "{\"ContainerId\":\"c-1\",\"ActivityId\":"
                  "\"11111111-2222-3333-4444-555555555555\",\"Type\":"
                  "\"UnexpectedExit\",\"Operation\":\"None\","
                  "\"Result\":-2147467259}");
  RUN_UNTIL(&s.loop, w.n);
  CHECK_EQ(w.status, 0);
  CHECK_EQ(w.exit.end, HCSB_CONTAINER_EXITED);
  CHECK_EQ(w.exit.type, HCSB_NOTIFY_UNEXPECTED_EXIT);
  CHECK_STR(w.type_name, "UnexpectedExit");
  CHECK_U64(w.exit.result, HCSB_E_FAIL);
  /* A second one for the same container: logged and ignored. */
  api_peer_notify(&s.peer,
                  "{\"ContainerId\":\"c-1\",\"Type\":\"ForcedExit\","
                  "\"Operation\":\"None\",\"Result\":0}");
  d.done = 0;
  CHECK_EQ(hcsb_container_start(c, NULL, api_done, &d), 0);
  RUN_UNTIL(&s.loop, d.done);
  CHECK(strstr(s.logs,
               "second notification ForcedExit for container c-1 ignored") !=
        NULL);
  CHECK_EQ(hcsb_container_wait(c, 0, cwait, &w2), 0);
  RUN_UNTIL(&s.loop, w2.n);
  CHECK_EQ(w2.exit.type, HCSB_NOTIFY_UNEXPECTED_EXIT);
  CHECK_EQ(w.n, 1);
  /* Closed and reopened: the registration kept the outcome. */
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  CHECK_EQ(hcsb_conn_open_container(s.conn, "c-1", &c), 0);
  memset(&w2, 0, sizeof(w2));
  CHECK_EQ(hcsb_container_wait(c, 0, cwait, &w2), 0);
  RUN_UNTIL(&s.loop, w2.n);
  CHECK_EQ(w2.exit.end, HCSB_CONTAINER_EXITED);

  /* A notification racing the Create answer is not lost: the waiter
   * exists before Create is sent. */
  {
    hcsb_container_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.id = "c-early";
    cfg.oci_spec_json = "{\"process\":{\"args\":[\"x\"]}}";
    s.notify_before_create = 1;
    CHECK_EQ(hcsb_conn_create_container(s.conn, NULL, &cfg, NULL, NULL, &c2),
             0);
    CHECK_EQ(hcsb_container_wait(c2, 0, cwait, &w3), 0);
    RUN_UNTIL(&s.loop, w3.n);
    CHECK_EQ(w3.status, 0);
    CHECK_EQ(w3.exit.end, HCSB_CONTAINER_EXITED);
  }
  closed = 0;
  hcsb_container_close(c, api_closed_flag, &closed);
  hcsb_container_close(c2, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  while (closed < 2) uv_run(&s.loop, UV_RUN_ONCE);
  finish(&s);
}

/* The exact requests: Create's ContainerConfig and ExecuteProcess's
 * ProcessParameters (protocol.md §7.1, §7.4). */
static void test_request_shapes(void) {
  const char *args[] = {"/bin/echo", "a b", "c\"d"};
  const char *env[] = {"A=1", "PATH=/bin"};
  hcsb_container_config_t cfg;
  hcsb_process_config_t pc;
  hcsb_container_t *c = NULL;
  hcsb_process_t *p = NULL, *q = NULL;
  api_proc_t r, r2;
  json_object *o;
  script_t s;
  int closed = 0;

  start(&s, NULL);
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = "shape";
  cfg.oci_spec_json =
      " {\"ociVersion\":\"1.1.0\",\"process\":{\"args\":[\"sh\"],"
      "\"terminal\":true},\"hostname\":\"old\",\"root\":"
      "{\"path\":\"/x\",\"readonly\":true}} ";
  cfg.host_name = "new-name";
  cfg.scratch_dir = "/scratch/shape";
  cfg.layers = (const char *const[]){"/l/base", "/l/top"};
  cfg.nlayers = 2;
  CHECK_EQ(hcsb_conn_create_container(s.conn, NULL, &cfg, NULL, NULL, &c), 0);
  while (s.count[slot(HCSB_MSG_CREATE)] == 0) uv_run(&s.loop, UV_RUN_ONCE);
  o = last(&s, HCSB_MSG_MODIFY_SETTINGS);
  CHECK_STR(json_object_to_json_string_ext(
                hcsb__json_get(o, "Request"),
                JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
            "{\"ResourceType\":\"CombinedLayers\",\"RequestType\":\"Add\","
            "\"Settings\":{\"ContainerID\":\"shape\",\"ContainerRootPath\":"
            "\"/run/gcs/c/shape/rootfs\",\"Layers\":[{\"Path\":\"/l/base\"},"
            "{\"Path\":\"/l/top\"}]}}");
  o = last(&s, HCSB_MSG_CREATE);
  CHECK_STR(inner_string(o, "ContainerId", NULL), "shape");
  CHECK(hcsb__guid_valid(inner_string(o, "ActivityId", NULL)));
  CHECK_STR(
      inner_string(o, "ContainerConfig", NULL),
      "{\"SchemaVersion\":{\"Major\":2,\"Minor\":1},\"OciBundlePath\":"
      "\"/run/gcs/c/shape\",\"OciSpecification\":{\"ociVersion\":\"1.1.0\","
      "\"process\":{\"args\":[\"sh\"],\"terminal\":true},\"hostname\":"
      "\"new-name\",\"root\":{\"path\":\"/run/gcs/c/shape/rootfs\","
      "\"readonly\":true}},\"ScratchDirPath\":\"/scratch/shape\"}");

  /* Init: no OciProcess; the spec's terminal makes it a tty process. */
  memset(&pc, 0, sizeof(pc));
  pc.console_width = 77;
  pc.console_height = 22;
  memset(&r, 0, sizeof(r));
  CHECK_EQ(
      hcsb_container_create_process(c, NULL, &pc, api_proc_created, &r, &p), 0);
  RUN_UNTIL(&s.loop, r.created);
  CHECK_EQ(r.create_status, 0);
  CHECK_EQ(hcsb_process_pid(p), 100);
  o = last(&s, HCSB_MSG_EXECUTE_PROCESS);
  CHECK_STR(inner_string(o, "ContainerId", NULL), "shape");
  CHECK_STR(inner_string(o, "Settings", "ProcessParameters"), "{}");
  /* Its wait went out right away, infinite; the console size followed. */
  while (s.count[slot(HCSB_MSG_RESIZE_CONSOLE)] == 0)
    uv_run(&s.loop, UV_RUN_ONCE);
  o = last(&s, HCSB_MSG_WAIT_FOR_PROCESS);
  CHECK_EQ(json_object_get_int64(hcsb__json_get(o, "ProcessId")), 100);
  CHECK_EQ(json_object_get_int64(hcsb__json_get(o, "TimeoutInMs")),
           4294967295LL);
  o = last(&s, HCSB_MSG_RESIZE_CONSOLE);
  CHECK_EQ(json_object_get_int64(hcsb__json_get(o, "Width")), 77);
  CHECK_EQ(json_object_get_int64(hcsb__json_get(o, "Height")), 22);

  /* Exec built from the config. */
  memset(&pc, 0, sizeof(pc));
  pc.command_args = args;
  pc.ncommand_args = 3;
  pc.environment = env;
  pc.nenvironment = 2;
  pc.working_directory = "/work";
  pc.user = "nobody";
  pc.emulate_console = 1;
  pc.console_width = 132;
  pc.console_height = 40;
  memset(&r2, 0, sizeof(r2));
  CHECK_EQ(
      hcsb_container_create_process(c, NULL, &pc, api_proc_created, &r2, &q),
      0);
  /* Signals before the process exists wait for it. */
  CHECK_EQ(hcsb_process_signal(q, NULL, 15, NULL, NULL), 0);
  RUN_UNTIL(&s.loop, r2.created);
  o = last(&s, HCSB_MSG_EXECUTE_PROCESS);
  CHECK_STR(
      inner_string(o, "Settings", "ProcessParameters"),
      "{\"OciProcess\":{\"terminal\":true,\"consoleSize\":{\"height\":40,"
      "\"width\":132},\"user\":{\"uid\":0,\"gid\":0,\"username\":\"nobody\"},"
      "\"args\":[\"/bin/echo\",\"a b\",\"c\\\"d\"],\"env\":[\"A=1\","
      "\"PATH=/bin\"],\"cwd\":\"/work\"}}");
  CHECK(json_object_is_type(
      hcsb__json_get(hcsb__json_get(o, "Settings"), "VsockStdioRelaySettings"),
      json_type_object));
  while (s.count[slot(HCSB_MSG_SIGNAL_PROCESS)] == 0)
    uv_run(&s.loop, UV_RUN_ONCE);
  o = last(&s, HCSB_MSG_SIGNAL_PROCESS);
  CHECK_EQ(json_object_get_int64(hcsb__json_get(o, "ProcessId")), 101);
  CHECK_EQ(json_object_get_int64(
               hcsb__json_get(hcsb__json_get(o, "Options"), "Signal")),
           15);
  /* The exec's size travelled in consoleSize: no ResizeConsole for it
   * (the one so far is the init's). */
  CHECK_EQ(s.count[slot(HCSB_MSG_RESIZE_CONSOLE)], 1);

  /* Kill: SignalProcess without Options. */
  CHECK_EQ(hcsb_process_kill(q, NULL, NULL, NULL), 0);
  {
    unsigned n = s.count[slot(HCSB_MSG_SIGNAL_PROCESS)];
    while (s.count[slot(HCSB_MSG_SIGNAL_PROCESS)] == n)
      uv_run(&s.loop, UV_RUN_ONCE);
  }
  CHECK(hcsb__json_get(last(&s, HCSB_MSG_SIGNAL_PROCESS), "Options") == NULL);

  /* The guest's wait fails with "not found": unknown, never 0. */
  api_peer_reply(&s.peer, HCSB_MSG_WAIT_FOR_PROCESS, s.held_wait,
                 "{\"Result\":-2147023728,\"ErrorMessage\":\"not found\"}");
  CHECK_EQ(hcsb_process_wait(q, 0, api_proc_waited, &r2), 0);
  RUN_UNTIL(&s.loop, r2.waited);
  CHECK_EQ(r2.wait_status, HCSB_EGUEST);
  CHECK_U64(r2.exit_code, HCSB_E_NOT_FOUND);
  {
    uint32_t code = 5;
    CHECK_EQ(hcsb_process_exit_code(q, &code), -ENODATA);
  }

  /* A UVM process with a pty: the size travels as ConsoleSize [height,
   * width], where hcsshim puts it; no ResizeConsole follows. */
  hcsb_process_t *u = NULL;
  api_proc_t r3;
  memset(&pc, 0, sizeof(pc));
  pc.command_args = args;
  pc.ncommand_args = 1;
  pc.emulate_console = 1; /* no stdio: this peer has no relay listeners */
  pc.console_width = 100;
  pc.console_height = 30;
  memset(&r3, 0, sizeof(r3));
  unsigned waits = s.count[slot(HCSB_MSG_WAIT_FOR_PROCESS)];
  CHECK_EQ(
      hcsb_conn_create_process(s.conn, NULL, &pc, api_proc_created, &r3, &u),
      0);
  RUN_UNTIL(&s.loop, r3.created);
  CHECK_EQ(r3.create_status, 0);
  o = last(&s, HCSB_MSG_EXECUTE_PROCESS);
  CHECK_STR(inner_string(o, "ContainerId", NULL), HCSB_NULL_CONTAINER_ID);
  CHECK_STR(inner_string(o, "Settings", "ProcessParameters"),
            "{\"CommandArgs\":[\"/bin/echo\"],\"EmulateConsole\":true,"
            "\"ConsoleSize\":[30,100]}");
  /* Its wait, which follows the create as a resize would, went out; a
   * DumpStacks after it is answered only once everything before it was
   * read. */
  while (s.count[slot(HCSB_MSG_WAIT_FOR_PROCESS)] == waits)
    uv_run(&s.loop, UV_RUN_ONCE);
  {
    unsigned dumps = s.count[slot(HCSB_MSG_DUMP_STACKS)];
    CHECK_EQ(hcsb_conn_dump_stacks(s.conn, NULL, NULL, NULL), 0);
    while (s.count[slot(HCSB_MSG_DUMP_STACKS)] == dumps)
      uv_run(&s.loop, UV_RUN_ONCE);
  }
  CHECK_EQ(s.count[slot(HCSB_MSG_RESIZE_CONSOLE)], 1);

  hcsb_process_close(p, api_closed_flag, &closed);
  hcsb_process_close(q, api_closed_flag, &closed);
  hcsb_process_close(u, api_closed_flag, &closed);
  hcsb_container_close(c, api_closed_flag, &closed);
  while (closed < 4) uv_run(&s.loop, UV_RUN_ONCE);
  finish(&s);
}

typedef struct created_s {
  int done, status;
  uint32_t hresult;
  char message[64];
} created_t;

static void created_cb(void *data, hcsb_container_t *c, int status,
                       const hcsb_guest_error_t *gerr) {
  created_t *t = data;
  t->done++;
  t->status = status;
  t->hresult = gerr != NULL ? gerr->hresult : 0;
  snprintf(t->message, sizeof t->message, "%s", gerr ? gerr->message : "");
}

/* Create stops at the first failing step and removes what it added; a
 * Remove the guest refuses leaves that resource recorded and tracked. */
static void test_create_step_failure(void) {
  hcsb_mapped_virtual_disk_t disk;
  hcsb_container_config_t cfg;
  hcsb_container_t *c = NULL;
  const hcsb_mapped_virtual_disk_t *list;
  created_t t = {0};
  script_t s;
  int closed = 0;

  start(&s, NULL);
  memset(&disk, 0, sizeof(disk));
  disk.mount_path = "/run/mounts/m9";
  disk.lun = 9;
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = "broken";
  cfg.oci_spec_json = "{}";
  cfg.mapped_virtual_disks = &disk;
  cfg.nmapped_virtual_disks = 1;
  cfg.layers = (const char *const[]){"/l"};
  cfg.nlayers = 1;
  /* The disk's ModifySettings succeeds, the layers' fails, and so does
   * the disk's Remove. */
  CHECK_EQ(hcsb_conn_create_container(s.conn, NULL, &cfg, created_cb, &t, &c),
           0);
  while (s.count[slot(HCSB_MSG_MODIFY_SETTINGS)] == 0)
    uv_run(&s.loop, UV_RUN_ONCE);
  s.fail_type = HCSB_MSG_MODIFY_SETTINGS;
  s.fail_body =
      "{\"Result\":-2147467259,\"ErrorMessage\":\"overlay failed\","
      "\"ErrorRecords\":[{\"Result\":-2147467259,\"Message\":\"overlay "
      "failed\",\"ModuleName\":\"gcs\",\"Line\":4294967295}]}";
  RUN_UNTIL(&s.loop, t.done);
  /* The create's own failure, with its guest error, after the undo. */
  CHECK_EQ(t.status, HCSB_EGUEST);
  CHECK_U64(t.hresult, HCSB_E_FAIL);
  CHECK_STR(t.message, "overlay failed");
  CHECK_STR(
      s.seq,
      "Add MappedVirtualDisk;Add CombinedLayers;Remove MappedVirtualDisk;");
  CHECK_EQ(s.count[slot(HCSB_MSG_CREATE)], 0);
  CHECK_STR(inner_string(last(&s, HCSB_MSG_MODIFY_SETTINGS), "Request",
                         "RequestType"),
            "Remove");
  CHECK_EQ(hcsb_conn_mapped_virtual_disks(s.conn, &list), 1);
  CHECK_EQ(list[0].lun, 9);
  CHECK_EQ(hcsb_container_mapped_virtual_disks(c, &list), 1);
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "broken"), 1);
  CHECK(strstr(s.logs, "releasing MappedVirtualDisk 0:9:0 failed") != NULL);
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  /* Still tracked after the handle went: a delete releases it. */
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "broken"), 1);
  s.fail_type = 0;
  {
    api_done_t d = {0};
    s.seq[0] = '\0';
    CHECK_EQ(
        hcsb_conn_delete_container_state(s.conn, NULL, "broken", api_done, &d),
        0);
    RUN_UNTIL(&s.loop, d.done);
    CHECK_EQ(d.status, 0);
    CHECK_STR(s.seq, "Remove MappedVirtualDisk;DeleteContainerState;");
    CHECK_EQ(hcsb_conn_mapped_virtual_disks(s.conn, &list), 0);
    CHECK_EQ(hcsb_conn_container_resources(s.conn, "broken"), 0);
  }
  finish(&s);
}

/* Delete releases what create added, newest first, with the shapes hcsshim
 * sends (an overlay's Remove names only its root), then deletes the state;
 * a failed Remove holds the DeleteContainerState back. */
static void test_delete_release_order(void) {
  hcsb_mapped_virtual_disk_t disk;
  hcsb_mapped_directory_t dir;
  hcsb_network_adapter_t nic;
  hcsb_container_config_t cfg;
  hcsb_container_t *c = NULL;
  json_object *settings;
  created_t t = {0};
  api_done_t d = {0}, d2 = {0}, keep = {0};
  script_t s;
  int closed = 0;

  start(&s, NULL);
  memset(&disk, 0, sizeof(disk));
  disk.mount_path = "/run/mounts/m1";
  disk.lun = 1;
  memset(&dir, 0, sizeof(dir));
  dir.mount_path = "/run/mounts/share";
  dir.port = 564;
  dir.share_name = "share";
  memset(&nic, 0, sizeof(nic));
  nic.id = "nic-1";
  nic.namespace_id = "ns-1";
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = "c1";
  cfg.oci_spec_json = "{}";
  cfg.mapped_virtual_disks = &disk;
  cfg.nmapped_virtual_disks = 1;
  cfg.mapped_directories = &dir;
  cfg.nmapped_directories = 1;
  cfg.layers = (const char *const[]){"/l"};
  cfg.nlayers = 1;
  cfg.layer_scratch_path = "/run/mounts/m1/scratch";
  cfg.endpoints = &nic;
  cfg.nendpoints = 1;
  CHECK_EQ(hcsb_conn_create_container(s.conn, NULL, &cfg, created_cb, &t, &c),
           0);
  RUN_UNTIL(&s.loop, t.done);
  CHECK_EQ(t.status, 0);
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "c1"), 4);

  /* The adapter's Remove fails: the others are still removed, the state
   * is not deleted, the failure is reported and the adapter stays. */
  s.seq[0] = '\0';
  s.fail_type = HCSB_MSG_MODIFY_SETTINGS;
  s.fail_body = "{\"Result\":-2147467259,\"ErrorMessage\":\"nic busy\"}";
  CHECK_EQ(hcsb_conn_delete_container_state(s.conn, NULL, "c1", api_done, &d),
           0);
  CHECK_EQ(d.done, 0);
  /* Only the first Remove fails. */
  while (s.count[slot(HCSB_MSG_MODIFY_SETTINGS)] < 5)
    uv_run(&s.loop, UV_RUN_ONCE);
  s.fail_type = 0;
  RUN_UNTIL(&s.loop, d.done);
  CHECK_EQ(d.status, HCSB_EGUEST);
  CHECK_U64(d.hresult, HCSB_E_FAIL);
  CHECK_STR(d.message, "nic busy");
  CHECK_STR(s.seq,
            "Remove Network;Remove CombinedLayers;Remove "
            "MappedDirectory;Remove MappedVirtualDisk;");
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "c1"), 1);

  /* The retry sends only what is left, then deletes the state. */
  s.seq[0] = '\0';
  CHECK_EQ(hcsb_conn_delete_container_state(s.conn, NULL, "c1", api_done, &d2),
           0);
  RUN_UNTIL(&s.loop, d2.done);
  CHECK_EQ(d2.status, 0);
  CHECK_STR(s.seq, "Remove Network;DeleteContainerState;");
  settings = hcsb__json_get(
      hcsb__json_get(last(&s, HCSB_MSG_MODIFY_SETTINGS), "Request"),
      "Settings");
  CHECK_STR(inner_string(settings, "NamespaceID", NULL), "ns-1");
  CHECK_STR(inner_string(settings, "ID", NULL), "nic-1");
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "c1"), 0);

  /* Created again with only layers; the opt-out sends the delete alone. */
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  cfg.nmapped_virtual_disks = cfg.nmapped_directories = cfg.nendpoints = 0;
  memset(&t, 0, sizeof(t));
  CHECK_EQ(hcsb_conn_create_container(s.conn, NULL, &cfg, created_cb, &t, &c),
           0);
  RUN_UNTIL(&s.loop, t.done);
  CHECK_EQ(t.status, 0);
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "c1"), 1);
  s.seq[0] = '\0';
  CHECK_EQ(hcsb_conn_delete_container(s.conn, NULL, "c1", 2, api_done, &keep),
           -EINVAL);
  CHECK_EQ(hcsb_conn_delete_container(
               s.conn, NULL, "c1", HCSB_DELETE_KEEP_RESOURCES, api_done, &keep),
           0);
  RUN_UNTIL(&s.loop, keep.done);
  CHECK_EQ(keep.status, 0);
  CHECK_STR(s.seq, "DeleteContainerState;");
  /* Deleted: the layers are the caller's now. */
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "c1"), 0);
  closed = 0;
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  finish(&s);
}

/* An overlay the caller built for a container through hcsb_conn_modify is
 * that container's; a Remove the caller sends ends the tracking. */
static void test_caller_added_layers(void) {
  hcsb_combined_layers_t l;
  api_done_t a = {0}, b = {0}, rm = {0}, d = {0};
  script_t s;
  char *json;

  start(&s, NULL);
  memset(&l, 0, sizeof(l));
  l.container_id = "own";
  l.container_root_path = "/run/gcs/c/own/rootfs";
  l.layer_paths = (const char *const[]){"/l"};
  l.nlayers = 1;
  CHECK_EQ(hcsb_modify_combined_layers(HCSB_REQUEST_ADD, &l, &json), 0);
  CHECK_EQ(hcsb_conn_modify(s.conn, NULL, json, api_done, &a), 0);
  RUN_UNTIL(&s.loop, a.done);
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "own"), 1);
  /* The same overlay again is one record (one Remove undoes it). */
  a.done = 0;
  CHECK_EQ(hcsb_conn_modify(s.conn, NULL, json, api_done, &a), 0);
  RUN_UNTIL(&s.loop, a.done);
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "own"), 1);
  hcsb_free(json);
  /* A second one, removed by the caller again. */
  l.container_root_path = "/run/gcs/c/own/other";
  CHECK_EQ(hcsb_modify_combined_layers(HCSB_REQUEST_ADD, &l, &json), 0);
  CHECK_EQ(hcsb_conn_modify(s.conn, NULL, json, api_done, &b), 0);
  hcsb_free(json);
  RUN_UNTIL(&s.loop, b.done);
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "own"), 2);
  memset(&l, 0, sizeof(l));
  l.container_root_path = "/run/gcs/c/own/other";
  CHECK_EQ(hcsb_modify_combined_layers(HCSB_REQUEST_REMOVE, &l, &json), 0);
  CHECK_EQ(hcsb_conn_modify(s.conn, NULL, json, api_done, &rm), 0);
  hcsb_free(json);
  RUN_UNTIL(&s.loop, rm.done);
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "own"), 1);
  s.seq[0] = '\0';
  CHECK_EQ(hcsb_conn_delete_container_state(s.conn, NULL, "own", api_done, &d),
           0);
  RUN_UNTIL(&s.loop, d.done);
  CHECK_EQ(d.status, 0);
  CHECK_STR(s.seq, "Remove CombinedLayers;DeleteContainerState;");
  CHECK_STR(inner_string(
                hcsb__json_get(last(&s, HCSB_MSG_MODIFY_SETTINGS), "Request"),
                "Settings", "ContainerRootPath"),
            "/run/gcs/c/own/rootfs");
  CHECK(hcsb__json_get(
            hcsb__json_get(
                hcsb__json_get(last(&s, HCSB_MSG_MODIFY_SETTINGS), "Request"),
                "Settings"),
            "Layers") == NULL);
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "own"), 0);
  finish(&s);
}

/* Layers mapped for a container before its create (hcsshim's order: VPMem
 * and SCSI layers, then the overlay) are that container's: its delete
 * removes them after the overlay. */
static void test_resources_added_for_container(void) {
  hcsb_vpmem_device_t pmem;
  hcsb_mapped_virtual_disk_t disk;
  hcsb_container_config_t cfg;
  hcsb_container_t *c = NULL;
  created_t t = {0};
  api_done_t a = {0}, b = {0}, d = {0};
  script_t s;
  char *json;
  int closed = 0;

  start(&s, NULL);
  memset(&pmem, 0, sizeof(pmem));
  pmem.device_number = 0;
  pmem.mount_path = "/run/layers/p0";
  CHECK_EQ(hcsb_modify_vpmem_device(HCSB_REQUEST_ADD, &pmem, &json), 0);
  CHECK_EQ(
      hcsb_conn_modify_for_container(s.conn, NULL, NULL, json, api_done, &a),
      -EINVAL);
  CHECK_EQ(
      hcsb_conn_modify_for_container(s.conn, NULL, "lay", json, api_done, &a),
      0);
  hcsb_free(json);
  memset(&disk, 0, sizeof(disk));
  disk.mount_path = "/run/mounts/m3";
  disk.lun = 3;
  disk.read_only = 1;
  CHECK_EQ(hcsb_modify_mapped_virtual_disk(HCSB_REQUEST_ADD, &disk, &json), 0);
  CHECK_EQ(
      hcsb_conn_modify_for_container(s.conn, NULL, "lay", json, api_done, &b),
      0);
  hcsb_free(json);
  /* Nothing a Remove undoes: refused, nothing sent. */
  CHECK_EQ(hcsb_modify_vpci_device(
               HCSB_REQUEST_ADD, "12345678-1234-1234-1234-123456789abc", &json),
           0);
  CHECK_EQ(
      hcsb_conn_modify_for_container(s.conn, NULL, "lay", json, api_done, &d),
      -EINVAL);
  hcsb_free(json);
  CHECK_EQ(hcsb_modify_mapped_virtual_disk(HCSB_REQUEST_REMOVE, &disk, &json),
           0);
  CHECK_EQ(
      hcsb_conn_modify_for_container(s.conn, NULL, "lay", json, api_done, &d),
      -EINVAL);
  hcsb_free(json);
  RUN_UNTIL(&s.loop, a.done);
  RUN_UNTIL(&s.loop, b.done);
  CHECK_EQ(a.status, 0);
  CHECK_EQ(b.status, 0);
  CHECK_EQ(d.done, 0);
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "lay"), 2);
  CHECK_EQ(hcsb_conn_mapped_virtual_disks(s.conn, NULL), 1);

  memset(&cfg, 0, sizeof(cfg));
  cfg.id = "lay";
  cfg.oci_spec_json = "{}";
  cfg.layers = (const char *const[]){"/run/layers/p0", "/run/mounts/m3"};
  cfg.nlayers = 2;
  CHECK_EQ(hcsb_conn_create_container(s.conn, NULL, &cfg, created_cb, &t, &c),
           0);
  RUN_UNTIL(&s.loop, t.done);
  CHECK_EQ(t.status, 0);
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "lay"), 3);
  s.seq[0] = '\0';
  CHECK_EQ(hcsb_conn_delete_container_state(s.conn, NULL, "lay", api_done, &d),
           0);
  RUN_UNTIL(&s.loop, d.done);
  CHECK_EQ(d.status, 0);
  CHECK_STR(s.seq,
            "Remove CombinedLayers;Remove MappedVirtualDisk;Remove "
            "VPMemDevice;DeleteContainerState;");
  CHECK_EQ(hcsb_conn_mapped_virtual_disks(s.conn, NULL), 0);
  CHECK_EQ(hcsb_conn_container_resources(s.conn, "lay"), 0);
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  finish(&s);
}

/* ------------------------------------------------------------------------ */
/* Capabilities the guest does not advertise */

static void test_missing_capabilities(void) {
  script_t s;
  hcsb_container_t *c = NULL;
  hcsb_process_t *p = NULL;
  hcsb_container_config_t cfg;
  hcsb_network_adapter_t nic;
  hcsb_process_config_t pc;
  api_proc_t r;
  int closed = 0;

  start(&s,
        "{\"Result\":0,\"Version\":4,\"Capabilities\":{\"RuntimeOsType\":"
        "\"Linux\",\"GuestDefinedCapabilities\":{}}}");
  CHECK_EQ(hcsb_conn_dump_stacks(s.conn, NULL, NULL, NULL), -ENOTSUP);
  CHECK_EQ(hcsb_conn_delete_container_state(s.conn, NULL, "x", NULL, NULL),
           -ENOTSUP);
  memset(&nic, 0, sizeof(nic));
  nic.id = "nic";
  nic.namespace_id = "ns";
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = "no-ns";
  cfg.oci_spec_json = "{}";
  cfg.endpoints = &nic;
  cfg.nendpoints = 1;
  /* Network Add needs NamespaceAddRequestSupported: nothing is sent. */
  CHECK_EQ(hcsb_conn_create_container(s.conn, NULL, &cfg, NULL, NULL, &c), 0);
  {
    api_done_t d = {0};
    CHECK_EQ(hcsb_container_start(c, NULL, api_done, &d), 0);
    RUN_UNTIL(&s.loop, d.done);
  }
  CHECK_EQ(s.count[slot(HCSB_MSG_MODIFY_SETTINGS)], 0);
  CHECK_EQ(s.count[slot(HCSB_MSG_CREATE)], 0);
  /* Without SignalProcessSupported only kill exists: 6/9/15 become a plain
   * kill, anything else is refused. */
  memset(&pc, 0, sizeof(pc));
  pc.command_args = (const char *const[]){"x"};
  pc.ncommand_args = 1;
  memset(&r, 0, sizeof(r));
  CHECK_EQ(
      hcsb_container_create_process(c, NULL, &pc, api_proc_created, &r, &p), 0);
  RUN_UNTIL(&s.loop, r.created);
  CHECK_EQ(hcsb_process_signal(p, NULL, 2, NULL, NULL), -ENOTSUP);
  CHECK_EQ(hcsb_process_signal(p, NULL, 15, NULL, NULL), 0);
  while (s.count[slot(HCSB_MSG_SIGNAL_PROCESS)] == 0)
    uv_run(&s.loop, UV_RUN_ONCE);
  CHECK(hcsb__json_get(last(&s, HCSB_MSG_SIGNAL_PROCESS), "Options") == NULL);
  hcsb_process_close(p, api_closed_flag, &closed);
  hcsb_container_close(c, api_closed_flag, &closed);
  while (closed < 2) uv_run(&s.loop, UV_RUN_ONCE);
  finish(&s);
}

/* ------------------------------------------------------------------------ */
/* Properties decoding */

typedef struct pr_s {
  int n, status;
  hcsb_properties_t props;
  hcsb_process_list_item_t items[8];
  char names[8][64];
  char json[2048];
} pr_t;

static void props_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                     const hcsb_properties_t *props) {
  pr_t *r = data;
  size_t i;

  r->n++;
  r->status = status;
  if (props == NULL) return;
  r->props = *props;
  for (i = 0; i < props->nprocesses && i < 8; i++) {
    r->items[i] = props->processes[i];
    snprintf(r->names[i], 64, "%s",
             props->processes[i].image_name ? props->processes[i].image_name
                                            : "(null)");
  }
  snprintf(r->json, sizeof r->json, "%.*s", (int)props->json_len, props->json);
}

static void ask(script_t *s, hcsb_container_t *c, const char *props, pr_t *r) {
  memset(r, 0, sizeof(*r));
  s->props = props;
  CHECK_EQ(hcsb_container_properties(
               c, NULL, HCSB_PROPERTY_PROCESS_LIST | HCSB_PROPERTY_STATISTICS,
               props_cb, r),
           0);
  RUN_UNTIL(&s->loop, r->n);
}

static void test_properties_decoding(void) {
  /* 13_container's LCOWMetrics, as a real GCS sent them. */
  static const char real[] =
      "{\"LCOWMetrics\":{\"pids\":{\"current\":2},\"cpu\":{\"usage\":{"
      "\"total\":"
      "46513907,\"kernel\":20000000,\"user\":20000000,\"per_cpu\":[35593494,"
      "10920413]},\"throttling\":{}},\"memory\":{\"cache\":176128,\"rss\":"
      "118784,"
      "\"mapped_file\":172032,\"hierarchical_memory_limit\":25197383680,"
      "\"usage\":{\"limit\":9223372036854771712,\"usage\":733184,\"max\":"
      "2641920},"
      "\"swap\":{\"limit\":9223372036854771712,\"usage\":733184,\"max\":"
      "2641920},"
      "\"kernel\":{\"limit\":9223372036854771712,\"usage\":344064,\"max\":"
      "593920},"
      "\"kernel_tcp\":{\"limit\":9223372036854771712}},\"blkio\":{},"
      "\"memory_oom_control\":{}}}";
  hcsb_container_t *c = NULL;
  const hcsb_statistics_t *st;
  script_t s;
  pr_t r;
  int closed = 0;

  start(&s, NULL);
  CHECK_EQ(hcsb_conn_open_container(s.conn, "props", &c), 0);
  CHECK_EQ(hcsb_container_properties(c, NULL, 0, props_cb, &r), -EINVAL);
  CHECK_EQ(hcsb_container_properties(c, NULL, 4, props_cb, &r), -EINVAL);

  ask(&s, c, real, &r);
  CHECK_EQ(r.status, 0);
  CHECK_STR(inner_string(last(&s, HCSB_MSG_GET_PROPERTIES), "Query", NULL),
            "{\"PropertyTypes\":[\"ProcessList\",\"Statistics\"]}");
  st = &r.props.statistics;
  CHECK_EQ(r.props.has_process_list, 0);
  CHECK_EQ(r.props.has_statistics, 1);
  CHECK_EQ(st->has_pids, 1);
  CHECK_U64(st->pids_current, 2);
  CHECK_U64(st->pids_limit, 0);
  CHECK_EQ(st->has_cpu, 1);
  CHECK_U64(st->cpu_total_ns, 46513907);
  CHECK_U64(st->cpu_kernel_ns, 20000000);
  CHECK_U64(st->cpu_user_ns, 20000000);
  CHECK_U64(st->cpu_throttled_periods, 0);
  CHECK_EQ(st->has_memory, 1);
  CHECK_U64(st->memory_cache_bytes, 176128);
  CHECK_U64(st->memory_rss_bytes, 118784);
  CHECK_U64(st->memory_usage_bytes, 733184);
  CHECK_U64(st->memory_max_usage_bytes, 2641920);
  CHECK_U64(st->memory_limit_bytes, 9223372036854771712ull);
  CHECK_EQ(st->has_blkio, 1);
  CHECK_U64(st->blkio_read_bytes, 0);
  CHECK_STR(r.json, real);

  /* Process list with every field, escapes and nulls; blkio sums. */
  ask(&s, c,
      "{\"ProcessList\":[{\"ProcessId\":1,\"ImageName\":\"caf\\u00e9 "
      "\\\"x\\\"\","
      "\"KernelTime100ns\":11,\"UserTime100ns\":22,\"MemoryCommitBytes\":"
      "18446744073709551615},{\"processid\":4294967295,\"ImageName\":null},"
      "{\"ProcessId\":3,\"ImageName\":\"\\ud83d\\ude00\",\"Extra\":[1,{\"a\":[]"
      "}]}],"
      "\"LCOWMetrics\":{\"blkio\":{\"io_service_bytes_recursive\":[{\"major\":"
      "8,"
      "\"op\":\"Read\",\"value\":100},{\"op\":\"Write\",\"value\":7},{\"op\":"
      "\"read\","
      "\"value\":11},{\"op\":\"Total\",\"value\":118}],\"io_serviced_"
      "recursive\":"
      "[{\"op\":\"Read\",\"value\":3},{\"op\":\"Write\",\"value\":4}]},\"cpu\":"
      "{\"throttling\":{\"periods\":9,\"throttled_periods\":5,\"throttled_"
      "time\":"
      "600}},\"pids\":{\"current\":3,\"limit\":100}}}",
      &r);
  CHECK_EQ(r.status, 0);
  CHECK_EQ(r.props.has_process_list, 1);
  CHECK_EQ(r.props.nprocesses, 3);
  CHECK_EQ(r.items[0].process_id, 1);
  CHECK_STR(r.names[0], "caf\xc3\xa9 \"x\"");
  CHECK_U64(r.items[0].kernel_time_100ns, 11);
  CHECK_U64(r.items[0].user_time_100ns, 22);
  CHECK_U64(r.items[0].memory_commit_bytes, UINT64_MAX);
  CHECK_U64(r.items[1].process_id, 4294967295u);
  CHECK_STR(r.names[1], "(null)");
  CHECK_STR(r.names[2], "\xf0\x9f\x98\x80");
  st = &r.props.statistics;
  CHECK_EQ(st->has_blkio, 1);
  CHECK_U64(st->blkio_read_bytes, 111);
  CHECK_U64(st->blkio_write_bytes, 7);
  CHECK_U64(st->blkio_read_ops, 3);
  CHECK_U64(st->blkio_write_ops, 4);
  CHECK_EQ(st->has_cpu, 1);
  CHECK_U64(st->cpu_throttled_periods, 5);
  CHECK_U64(st->cpu_throttled_time_ns, 600);
  CHECK_EQ(st->has_memory, 0);
  CHECK_U64(st->pids_limit, 100);

  /* Empty text (nothing requested by the guest's reckoning). */
  ask(&s, c, "{}", &r);
  CHECK_EQ(r.status, 0);
  CHECK_EQ(r.props.has_process_list + r.props.has_statistics, 0);

  /* Wrong types: -EPROTO for this call only. */
  {
    static const char *const bad[] = {
        "{\"ProcessList\":[{\"ProcessId\":\"1\"}]}",
        "{\"ProcessList\":[{\"ProcessId\":4294967296}]}",
        "{\"ProcessList\":[{\"ProcessId\":-1}]}",
        "{\"ProcessList\":[{\"ProcessId\":1.5}]}",
        "{\"ProcessList\":[{\"KernelTime100ns\":18446744073709551616}]}",
        "{\"ProcessList\":{}}",
        "{\"ProcessList\":[1]}",
        "{\"ProcessList\":[{\"ImageName\":5}]}",
        "{\"LCOWMetrics\":[]}",
        "{\"LCOWMetrics\":{\"cpu\":{\"usage\":{\"total\":\"big\"}}}}",
        "{\"LCOWMetrics\":{\"memory\":true}}",
        "{\"LCOWMetrics\":{\"blkio\":{\"io_service_bytes_recursive\":[{\"op\":"
        "1}]}}}",
        "[]",
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      ask(&s, c, bad[i], &r);
      if (r.status != -EPROTO)
        hcsb_test_fail(__FILE__, __LINE__, "case %zu: status %d", i, r.status);
    }
  }
  /* Not JSON inside the string: the bridge refuses the answer. */
  memset(&r, 0, sizeof(r));
  s.props_body = "{\"Result\":0,\"Properties\":\"{not json\"}";
  CHECK_EQ(hcsb_container_statistics(c, NULL, props_cb, &r), 0);
  RUN_UNTIL(&s.loop, r.n);
  CHECK_EQ(r.status, -EPROTO);
  /* A guest error. */
  memset(&r, 0, sizeof(r));
  s.props_body = "{\"Result\":-1070137074,\"ErrorMessage\":\"gone\"}";
  CHECK_EQ(hcsb_container_process_list(c, NULL, props_cb, &r), 0);
  RUN_UNTIL(&s.loop, r.n);
  CHECK_EQ(r.status, HCSB_EGUEST);
  CHECK_STR(inner_string(last(&s, HCSB_MSG_GET_PROPERTIES), "Query", NULL),
            "{\"PropertyTypes\":[\"ProcessList\"]}");
  /* And still alive. */
  s.props_body = NULL;
  ask(&s, c, "{\"ProcessList\":[]}", &r);
  CHECK_EQ(r.status, 0);
  CHECK_EQ(r.props.has_process_list, 1);
  CHECK_EQ(r.props.nprocesses, 0);
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  finish(&s);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(open_bridge_states),
    TEST_ENTRY(notifications),
    TEST_ENTRY(request_shapes),
    TEST_ENTRY(create_step_failure),
    TEST_ENTRY(missing_capabilities),
    TEST_ENTRY(properties_decoding),
    TEST_ENTRY(delete_release_order),
    TEST_ENTRY(caller_added_layers),
    TEST_ENTRY(resources_added_for_container),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
