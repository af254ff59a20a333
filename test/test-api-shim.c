/* What a containerd shim ported from hcsshim needs first, against the
 * emulator (which decodes as a v0.11.8 guest) and a scripted peer (the
 * exact requests): network adapter shapes, dm-verity metadata, span
 * contexts, signal validation, per-container OS, notification hook, and
 * the documented close / loss / timeout semantics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-int.h"
#include "test-api-peer.h"
#include "test-api-util.h"

/* ------------------------------------------------------------------------ */
/* Emulator helpers */

typedef struct stacks_s {
  int done, status;
  char *text;
} stacks_t;

static void stacks_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                      const char *stacks, size_t len) {
  stacks_t *s = data;
  (void)gerr;
  s->done = 1;
  s->status = status;
  s->text = strndup(stacks != NULL ? stacks : "", len);
}

/* The emulator's DumpStacks text: its resource records. */
static char *dump(api_guest_t *g) {
  stacks_t s = {0, 0, NULL};
  CHECK_EQ(hcsb_conn_dump_stacks(g->conn, NULL, stacks_cb, &s), 0);
  RUN_UNTIL(g->loop, s.done);
  CHECK_EQ(s.status, 0);
  return s.text;
}

/* Sends one ModificationRequest text; returns the status (HRESULT in *hr). */
static int modify(api_guest_t *g, const char *json, uint32_t *hr) {
  api_done_t d = {0};
  CHECK_EQ(hcsb_conn_modify(g->conn, NULL, json, api_done, &d), 0);
  RUN_UNTIL(g->loop, d.done);
  if (hr != NULL) *hr = d.hresult;
  return d.status;
}

/* A builder's result: `rc` must be 0; sends *json, frees it, returns the
 * status.  (*json is read only after the builder ran.) */
static int modify_built(api_guest_t *g, int rc, char **json) {
  int status;
  CHECK_EQ(rc, 0);
  status = modify(g, *json, NULL);
  hcsb_free(*json);
  *json = NULL;
  return status;
}

/* The record line of `key` in the dump ("" when absent), for messages. */
static const char *line_of(const char *text, const char *key, char *buf,
                           size_t len) {
  const char *p = strstr(text, key), *e;
  buf[0] = '\0';
  if (p == NULL) return buf;
  e = strchr(p, '\n');
  snprintf(buf, len, "%.*s", (int)(e != NULL ? e - p : (long)strlen(p)), p);
  return buf;
}

/* ------------------------------------------------------------------------ */
/* 1. Network adapter shapes, as a v0.11.8 guest takes them */

static void test_adapter_shapes_on_v0_11_guest(void) {
  hcsb_ip_config_t ips[] = {{"10.1.0.6", 24}};
  hcsb_network_adapter_t a;
  uv_loop_t loop;
  api_guest_t g;
  uint32_t hr = 0;
  char *json, *text, line[256];

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);

  /* The default shape: the guest gets the address. */
  memset(&a, 0, sizeof(a));
  a.namespace_id = "ns-1";
  a.id = "nic-flat";
  a.ip_address = "10.1.0.5";
  a.prefix_length = 24;
  a.gateway_address = "10.1.0.1";
  a.dns_server_list = "10.1.0.2";
  CHECK_EQ(
      modify_built(&g, hcsb_modify_network_adapter(HCSB_REQUEST_ADD, &a, &json),
                   &json),
      0);
  /* main's shape is accepted by that guest and comes up without one. */
  memset(&a, 0, sizeof(a));
  a.shape = HCSB_ADAPTER_SHAPE_MAIN;
  a.namespace_id = "ns-1";
  a.id = "nic-main";
  a.ip_configs = ips;
  a.nip_configs = 1;
  CHECK_EQ(
      modify_built(&g, hcsb_modify_network_adapter(HCSB_REQUEST_ADD, &a, &json),
                   &json),
      0);
  text = dump(&g);
  CHECK_STR(line_of(text, "Network nic-flat", line, sizeof line),
            "Network nic-flat ns=ns-1 ip=10.1.0.5/24 gw=10.1.0.1 "
            "dns=10.1.0.2");
  CHECK_STR(line_of(text, "Network nic-main", line, sizeof line),
            "Network nic-main ns=ns-1 ip=none");
  free(text);

  /* Wrong JSON types are the guest's decode error, as Go reports them. */
  CHECK_EQ(modify(&g,
                  "{\"ResourceType\":\"Network\",\"RequestType\":\"Add\","
                  "\"Settings\":{\"NamespaceID\":\"ns-1\",\"ID\":\"nic-bad\","
                  "\"IPAddress\":\"10.1.0.9\",\"PrefixLength\":300}}",
                  &hr),
           HCSB_EGUEST);
  CHECK_EQ(hr, 0xC037010Du);
  CHECK_EQ(modify(&g,
                  "{\"ResourceType\":\"Network\",\"RequestType\":\"Add\","
                  "\"Settings\":{\"NamespaceID\":\"ns-1\",\"ID\":\"nic-bad\","
                  "\"EnableLowMetric\":\"yes\"}}",
                  &hr),
           HCSB_EGUEST);
  CHECK_EQ(hr, 0xC037010Du);
  /* Remove by namespace and ID drops the record. */
  memset(&a, 0, sizeof(a));
  a.namespace_id = "ns-1";
  a.id = "nic-flat";
  CHECK_EQ(modify_built(
               &g, hcsb_modify_network_adapter(HCSB_REQUEST_REMOVE, &a, &json),
               &json),
           0);
  text = dump(&g);
  CHECK(strstr(text, "nic-flat") == NULL);
  CHECK(strstr(text, "nic-bad") == NULL);
  CHECK(strstr(text, "Network nic-main") != NULL);
  free(text);
  api_close(&g);
}

/* ------------------------------------------------------------------------ */
/* 2. dm-verity metadata on SCSI and VPMem devices */

static void test_verity_reaches_guest(void) {
  hcsb_verity_info_t v = {
      "5d41402abc4b2a76", "00ff", "sha256", 4096, 0, 8388608, 1, 1};
  hcsb_mapped_virtual_disk_t d;
  hcsb_vpmem_device_t vp = {1, "/run/layers/p1-0-8192", 1, 0, 8192};
  const hcsb_mapped_virtual_disk_t *disks;
  uv_loop_t loop;
  api_guest_t g;
  uint32_t hr = 0;
  char *json, *text, line[256];

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  memset(&d, 0, sizeof(d));
  d.mount_path = "/run/layers/m3";
  d.lun = 3;
  d.read_only = 1;
  CHECK_EQ(modify_built(&g,
                        hcsb_modify_mapped_virtual_disk_verity(HCSB_REQUEST_ADD,
                                                               &d, &v, &json),
                        &json),
           0);
  v.super_block = 0;
  v.salt = NULL;
  CHECK_EQ(
      modify_built(
          &g, hcsb_modify_vpmem_device_verity(HCSB_REQUEST_ADD, &vp, &v, &json),
          &json),
      0);
  /* A disk with VerityInfo is still recorded by the library. */
  CHECK_EQ(hcsb_conn_mapped_virtual_disks(g.conn, &disks), 1);
  CHECK_EQ(disks[0].lun, 3);
  text = dump(&g);
  CHECK_STR(
      line_of(text, "MappedVirtualDisk /run/layers/m3", line, sizeof line),
      "MappedVirtualDisk /run/layers/m3 verity=5d41402abc4b2a76 "
      "alg=sha256 salt=00ff version=1 block=4096 data=8388608 "
      "superblock");
  CHECK_STR(
      line_of(text, "VPMemDevice /run/layers/p1-0-8192", line, sizeof line),
      "VPMemDevice /run/layers/p1-0-8192 verity=5d41402abc4b2a76 "
      "alg=sha256 salt=- version=1 block=4096 data=8388608");
  free(text);

  /* The guest's types: a BlockSize sent as a string is its decode error;
   * a zero BlockSize fails the mount. */
  CHECK_EQ(modify(&g,
                  "{\"ResourceType\":\"VPMemDevice\",\"RequestType\":\"Add\","
                  "\"Settings\":{\"DeviceNumber\":2,\"MountPath\":\"/p2\","
                  "\"VerityInfo\":{\"RootDigest\":\"aa\",\"BlockSize\":"
                  "\"4096\"}}}",
                  &hr),
           HCSB_EGUEST);
  CHECK_EQ(hr, 0xC037010Du);
  CHECK_EQ(modify(&g,
                  "{\"ResourceType\":\"VPMemDevice\",\"RequestType\":\"Add\","
                  "\"Settings\":{\"DeviceNumber\":2,\"MountPath\":\"/p2\","
                  "\"VerityInfo\":{\"RootDigest\":\"aa\"}}}",
                  &hr),
           HCSB_EGUEST);
  CHECK_EQ(hr, 0x80004005u);
  CHECK_EQ(modify(&g,
                  "{\"ResourceType\":\"MappedVirtualDisk\",\"RequestType\":"
                  "\"Add\",\"Settings\":{\"MountPath\":\"/m9\",\"Lun\":9,"
                  "\"VerityInfo\":{\"SuperBlock\":1,\"BlockSize\":4096}}}",
                  &hr),
           HCSB_EGUEST);
  CHECK_EQ(hr, 0xC037010Du);

  /* Remove with the same metadata unmounts. */
  CHECK_EQ(modify_built(&g,
                        hcsb_modify_mapped_virtual_disk_verity(
                            HCSB_REQUEST_REMOVE, &d, &v, &json),
                        &json),
           0);
  CHECK_EQ(hcsb_conn_mapped_virtual_disks(g.conn, NULL), 0);
  text = dump(&g);
  CHECK(strstr(text, "/run/layers/m3") == NULL);
  CHECK(strstr(text, "/p2") == NULL);
  CHECK(strstr(text, "VPMemDevice /run/layers/p1-0-8192") != NULL);
  free(text);
  api_close(&g);
}

/* ------------------------------------------------------------------------ */
/* Scripted peer: every request body kept in order */

#define MAX_SEEN 64

typedef struct script_s {
  api_peer_t peer;
  uv_loop_t loop;
  hcsb_bridge_t *bridge;
  hcsb_conn_t *conn;
  int opened, open_status;
  unsigned nseen;
  uint32_t seen_type[MAX_SEEN];
  json_object *seen[MAX_SEEN];
  uint32_t next_pid;
  const char *negotiate_body; /* NULL: the peer's v0.11.8 answer */
  uint32_t hold_type;         /* requests of this type are never answered */
} script_t;

static void on_request(api_peer_t *p, uint32_t type, uint64_t id,
                       const char *body, size_t len) {
  script_t *s = p->data;
  json_object *root = NULL;
  char buf[256];

  CHECK_EQ(hcsb__json_parse(body, len, &root), 0);
  CHECK(s->nseen < MAX_SEEN);
  s->seen_type[s->nseen] = type;
  s->seen[s->nseen++] = root;
  if (type == s->hold_type) return;
  switch (type) {
    case HCSB_MSG_NEGOTIATE_PROTOCOL:
      api_peer_reply(p, type, id, s->negotiate_body);
      break;
    case HCSB_MSG_EXECUTE_PROCESS:
      snprintf(buf, sizeof buf, "{\"Result\":0,\"ProcessId\":%u}",
               (unsigned)s->next_pid++);
      api_peer_reply(p, type, id, buf);
      break;
    case HCSB_MSG_WAIT_FOR_PROCESS:
      break; /* held: the process keeps running */
    default:
      api_peer_ok(p, type, id);
  }
}

static void script_opened(void *data, hcsb_conn_t *conn, int status,
                          const hcsb_guest_error_t *gerr) {
  script_t *s = data;
  (void)conn, (void)gerr;
  s->opened++;
  s->open_status = status;
}

static void script_start_opts(script_t *s, const char *negotiate_body,
                              const hcsb_conn_options_t *o) {
  memset(s, 0, sizeof(*s));
  s->next_pid = 200;
  uv_loop_init(&s->loop);
  api_peer_pair(&s->peer, &s->loop, on_request, s, &s->bridge);
  s->peer.data = s;
  s->negotiate_body = negotiate_body;
  s->peer.raw_negotiate = negotiate_body != NULL;
  CHECK_EQ(hcsb_conn_open_bridge(s->bridge, o, script_opened, s, &s->conn), 0);
  RUN_UNTIL(&s->loop, s->opened);
  CHECK_EQ(s->open_status, 0);
  if (negotiate_body != NULL) { /* not a request the tests look at */
    json_object_put(s->seen[0]);
    s->nseen = 0;
  }
}

static void script_start_with(script_t *s, const char *negotiate_body) {
  script_start_opts(s, negotiate_body, NULL);
}

static void script_start(script_t *s) {
  script_start_with(s, NULL);
}

static void script_finish(script_t *s) {
  int closed = 0;
  unsigned i;

  hcsb_conn_close(s->conn, api_closed_flag, &closed);
  RUN_UNTIL(&s->loop, closed);
  RUN_UNTIL(&s->loop, s->peer.eof);
  api_peer_close(&s->peer);
  RUN_UNTIL(&s->loop, s->peer.closed);
  for (i = 0; i < s->nseen; i++) json_object_put(s->seen[i]);
  api_drain(&s->loop);
}

/* Runs until `n` requests were seen. */
static void script_wait_seen(script_t *s, unsigned n) {
  unsigned i;
  for (i = 0; i < 100000 && s->nseen < n; i++) uv_run(&s->loop, UV_RUN_ONCE);
  CHECK_EQ(s->nseen, n);
}

/* The request's "ocsc" member as compact text, or "" when absent. */
static const char *ocsc_of(script_t *s, unsigned i) {
  json_object *v = hcsb__json_get(s->seen[i], "ocsc");
  return v != NULL
             ? json_object_to_json_string_ext(
                   v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
             : "";
}

/* ------------------------------------------------------------------------ */
/* 7. Span contexts (ocsc) and ActivityIds */

static const hcsb_span_context_t span_a = {
    {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d,
     0x0e, 0x0e, 0x47, 0x36},
    {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
    1,
    NULL,
    0};
#define OCSC_A                                                    \
  "{\"TraceID\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"SpanID\":" \
  "\"00f067aa0ba902b7\",\"TraceOptions\":1}"

/* GetProperties goes out from a template per container (src/api/props.c):
 * each call still carries the span context in effect when it started, its
 * own ActivityId (the one given, or a fresh one), and the query asked. */
#define PROPS_STEPS 7
static int props_n, props_all;
static void count_props(void *data, int status, const hcsb_guest_error_t *gerr,
                        const hcsb_properties_t *props) {
  (void)data;
  (void)gerr;
  (void)props;
  CHECK_EQ(status, 0);
  props_all = ++props_n == PROPS_STEPS;
}

static void test_properties_template_follows_span_context(void) {
  static const hcsb_span_context_t span_b = {{7}, {8}, 0, NULL, 0};
  static const char *const ocsc_b =
      "{\"TraceID\":\"07000000000000000000000000000000\",\"SpanID\":"
      "\"0800000000000000\"}";
  hcsb_call_opts_t given = {"0123abcd-0000-4000-8000-00000000beef", 0};
  hcsb_container_t *c = NULL;
  script_t s;
  int closed = 0;
  unsigned first, i;
  /* span context, statistics?, given ActivityId? */
  static const struct {
    int span; /* 0 none, 1 A, 2 B */
    int stats, given;
  } steps[] = {{0, 0, 0}, {1, 0, 0}, {1, 0, 1}, {2, 0, 0},
               {0, 0, 0}, {1, 1, 0}, {1, 0, 0}};
  const unsigned nsteps = sizeof steps / sizeof steps[0];
  _Static_assert(sizeof steps / sizeof steps[0] == PROPS_STEPS, "steps");

  script_start(&s);
  CHECK_EQ(hcsb_conn_open_container(s.conn, "ct\"1", &c), 0);
  first = s.nseen;
  for (i = 0; i < nsteps; i++) {
    CHECK_EQ(hcsb_conn_set_span_context(s.conn, steps[i].span == 1   ? &span_a
                                                : steps[i].span == 2 ? &span_b
                                                                     : NULL),
             0);
    CHECK_EQ(steps[i].stats
                 ? hcsb_container_statistics(c, steps[i].given ? &given : NULL,
                                             count_props, NULL)
                 : hcsb_container_process_list(
                       c, steps[i].given ? &given : NULL, count_props, NULL),
             0);
  }
  RUN_UNTIL(&s.loop, props_all);
  CHECK_EQ(s.nseen, first + nsteps);
  for (i = 0; i < nsteps; i++) {
    json_object *r = s.seen[first + i];
    const char *aid = json_object_get_string(hcsb__json_get(r, "ActivityId"));
    CHECK_EQ(s.seen_type[first + i], HCSB_MSG_GET_PROPERTIES);
    CHECK_STR(json_object_get_string(hcsb__json_get(r, "ContainerId")),
              "ct\"1");
    CHECK_STR(json_object_get_string(hcsb__json_get(r, "Query")),
              steps[i].stats ? "{\"PropertyTypes\":[\"Statistics\"]}"
                             : "{\"PropertyTypes\":[\"ProcessList\"]}");
    CHECK_STR(ocsc_of(&s, first + i), steps[i].span == 1   ? OCSC_A
                                      : steps[i].span == 2 ? ocsc_b
                                                           : "");
    CHECK(hcsb__guid_valid(aid));
    if (steps[i].given) {
      CHECK_STR(aid, given.activity_id);
    } else {
      /* Fresh each time: differs from every other call's. */
      for (unsigned j = 0; j < nsteps; j++)
        if (j != i)
          CHECK(strcmp(aid, json_object_get_string(hcsb__json_get(
                                s.seen[first + j], "ActivityId"))) != 0);
    }
  }
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  script_finish(&s);
}

static void test_span_context_per_connection_and_call(void) {
  static const hcsb_tracestate_entry_t ts[] = {{"congo", "t61rcWkgMzE"},
                                               {"rojo", "a<b>&c\\d\""}};
  hcsb_span_context_t b = {{1}, {2}, 0, ts, 2};
  hcsb_container_config_t cfg;
  hcsb_mapped_directory_t dir = {"/mnt/d", 0, "d", 0};
  hcsb_call_opts_t opts = {"0123abcd-0000-4000-8000-00000000beef", 0};
  hcsb_container_t *c = NULL;
  hcsb_process_t *p = NULL;
  hcsb_process_config_t pc;
  const char *args[] = {"sleep", "9"};
  api_done_t d = {0};
  api_proc_t r;
  script_t s;
  unsigned i, first;
  int closed = 0;

  script_start(&s);
  /* None by default: hcsshim without a span sends no ocsc. */
  CHECK_EQ(
      hcsb_conn_modify(s.conn, NULL, "{\"ResourceType\":\"X\"}", api_done, &d),
      0);
  RUN_UNTIL(&s.loop, d.done);
  CHECK_STR(ocsc_of(&s, 0), "");

  /* Per connection: every later request, base fields in hcsshim's order. */
  CHECK_EQ(hcsb_conn_set_span_context(s.conn, &span_a), 0);
  memset(&d, 0, sizeof(d));
  CHECK_EQ(
      hcsb_conn_modify(s.conn, &opts, "{\"ResourceType\":\"X\"}", api_done, &d),
      0);
  RUN_UNTIL(&s.loop, d.done);
  CHECK_STR(ocsc_of(&s, 1), OCSC_A);
  CHECK_STR(json_object_get_string(hcsb__json_get(s.seen[1], "ActivityId")),
            opts.activity_id);
  {
    /* The bytes: ContainerId, ActivityId, ocsc, then the request's own. */
    char *text = NULL;
    hcsb__buf_t buf = HCSB__BUF_INIT;
    hcsb_request_t req;
    memset(&req, 0, sizeof(req));
    req.type = HCSB_MSG_START;
    req.container_id = "c";
    req.activity_id = opts.activity_id;
    CHECK_EQ(hcsb__span_context_encode(&span_a, &text), 0);
    req.ocsc = text;
    CHECK_EQ(hcsb__request_encode(&buf, 7, &req), 0);
    CHECK_EQ(buf.len, 16 + strlen("{\"ContainerId\":\"c\",\"ActivityId\":\""
                                  "0123abcd-0000-4000-8000-00000000beef\","
                                  "\"ocsc\":" OCSC_A "}"));
    CHECK(memcmp(buf.data + 16,
                 "{\"ContainerId\":\"c\",\"ActivityId\":\"0123abcd-0000-4000-"
                 "8000-00000000beef\",\"ocsc\":" OCSC_A "}",
                 buf.len - 16) == 0);
    /* Not an object: refused before a byte is written. */
    req.ocsc = "[1]";
    buf.len = 0;
    CHECK_EQ(hcsb__request_encode(&buf, 8, &req), -EINVAL);
    hcsb__buf_free(&buf);
    free(text);
  }

  /* Per call: context B while the create starts, A again right after.  All
   * of the create's steps carry B, started later or not. */
  CHECK_EQ(hcsb_conn_set_span_context(s.conn, &b), 0);
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = "ctr-trace";
  cfg.oci_spec_json = "{}";
  cfg.mapped_directories = &dir;
  cfg.nmapped_directories = 1;
  first = s.nseen;
  CHECK_EQ(hcsb_conn_create_container(s.conn, NULL, &cfg, NULL, NULL, &c), 0);
  CHECK_EQ(hcsb_conn_set_span_context(s.conn, &span_a), 0);
  memset(&pc, 0, sizeof(pc));
  pc.command_args = args;
  pc.ncommand_args = 2;
  memset(&r, 0, sizeof(r));
  CHECK_EQ(
      hcsb_container_create_process(c, NULL, &pc, api_proc_created, &r, &p), 0);
  /* Held until the process exists; carries A, the context at its start. */
  CHECK_EQ(hcsb_process_signal(p, NULL, 15, NULL, NULL), 0);
  CHECK_EQ(hcsb_conn_set_span_context(s.conn, NULL), 0);
  RUN_UNTIL(&s.loop, r.created);
  CHECK_EQ(r.create_status, 0);
  script_wait_seen(&s, first + 5);
  for (i = first; i < s.nseen; i++) {
    const char *want =
        s.seen_type[i] == HCSB_MSG_MODIFY_SETTINGS ||
                s.seen_type[i] == HCSB_MSG_CREATE
            ? "{\"TraceID\":\"01000000000000000000000000000000\",\"SpanID\":"
              "\"0200000000000000\",\"Tracestate\":\"W3siS2V5IjoiY29uZ28iLCJWYW"
              "x1ZSI6InQ2MXJjV2tnTXpFIn0seyJLZXkiOiJyb2pvIiwiVmFsdWUiOiJhXHUw"
              "MDNjYlx1MDAzZVx1MDAyNmNcXGRcIiJ9XQ==\"}"
            : OCSC_A;
    CHECK_STR(ocsc_of(&s, i), want);
  }
  {
    /* The library's own wait belongs to the exec: same ActivityId. */
    const char *exec_aid = NULL, *wait_aid = NULL;
    for (i = first; i < s.nseen; i++) {
      const char *aid =
          json_object_get_string(hcsb__json_get(s.seen[i], "ActivityId"));
      if (s.seen_type[i] == HCSB_MSG_EXECUTE_PROCESS) exec_aid = aid;
      if (s.seen_type[i] == HCSB_MSG_WAIT_FOR_PROCESS) wait_aid = aid;
    }
    CHECK(exec_aid != NULL && wait_aid != NULL);
    CHECK_STR(wait_aid, exec_aid);
    CHECK(strcmp(exec_aid, "00000000-0000-0000-0000-000000000000") != 0);
  }
  {
    /* One of each (the exec may overtake the create: it does not wait). */
    static const uint32_t kinds[] = {
        HCSB_MSG_MODIFY_SETTINGS, HCSB_MSG_CREATE, HCSB_MSG_EXECUTE_PROCESS,
        HCSB_MSG_WAIT_FOR_PROCESS, HCSB_MSG_SIGNAL_PROCESS};
    unsigned k, n;
    for (k = 0; k < 5; k++) {
      for (n = 0, i = first; i < s.nseen; i++) n += s.seen_type[i] == kinds[k];
      CHECK_EQ(n, 1);
    }
  }
  /* Cleared: nothing after. */
  memset(&d, 0, sizeof(d));
  CHECK_EQ(hcsb_container_start(c, NULL, api_done, &d), 0);
  RUN_UNTIL(&s.loop, d.done);
  CHECK_STR(ocsc_of(&s, s.nseen - 1), "");

  /* What the guest's OpenCensus would refuse is refused here, and the
   * context in effect stays. */
  {
    hcsb_span_context_t bad = span_a;
    hcsb_tracestate_entry_t e[2] = {{"ok", "v"}, {"ok", "w"}};
    memset(bad.trace_id, 0, sizeof bad.trace_id);
    CHECK_EQ(hcsb_conn_set_span_context(s.conn, &bad), -EINVAL);
    bad = span_a;
    memset(bad.span_id, 0, sizeof bad.span_id);
    CHECK_EQ(hcsb_conn_set_span_context(s.conn, &bad), -EINVAL);
    bad = span_a;
    bad.tracestate = e;
    bad.ntracestate = 2; /* duplicate key */
    CHECK_EQ(hcsb_conn_set_span_context(s.conn, &bad), -EINVAL);
    e[1].key = "Upper";
    CHECK_EQ(hcsb_conn_set_span_context(s.conn, &bad), -EINVAL);
    e[1].key = "t@vendor";
    e[1].value = "a,b";
    CHECK_EQ(hcsb_conn_set_span_context(s.conn, &bad), -EINVAL);
    e[1].value = "trailing ";
    CHECK_EQ(hcsb_conn_set_span_context(s.conn, &bad), -EINVAL);
    bad.tracestate = NULL;
    CHECK_EQ(hcsb_conn_set_span_context(s.conn, &bad), -EINVAL);
    e[1].value = "fine";
    bad.tracestate = e;
    CHECK_EQ(hcsb_conn_set_span_context(s.conn, &bad), 0);
    CHECK_EQ(hcsb_conn_set_span_context(s.conn, NULL), 0);
  }
  memset(&d, 0, sizeof(d));
  CHECK_EQ(hcsb_container_start(c, NULL, api_done, &d), 0);
  RUN_UNTIL(&s.loop, d.done);
  CHECK_STR(ocsc_of(&s, s.nseen - 1), "");

  hcsb_process_close(p, api_closed_flag, &closed);
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  while (closed < 2) uv_run(&s.loop, UV_RUN_ONCE);
  api_proc_free(&r);
  script_finish(&s);
}

/* The emulator decodes ocsc the way the v0.11.8 bridge does and reports
 * the parent it would give the DumpStacks request's span. */
static void test_span_context_reaches_guest(void) {
  static const hcsb_tracestate_entry_t ts[] = {{"congo", "t61rcWkgMzE"},
                                               {"rojo@vendor", "a<b>&c\\d\""}};
  hcsb_span_context_t sc = span_a;
  uv_loop_t loop;
  api_guest_t g;
  char *text, line[512];

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  text = dump(&g);
  CHECK_STR(line_of(text, "this request's span parent", line, sizeof line),
            "this request's span parent: none");
  free(text);
  sc.tracestate = ts;
  sc.ntracestate = 2;
  sc.trace_options = 3;
  CHECK_EQ(hcsb_conn_set_span_context(g.conn, &sc), 0);
  text = dump(&g);
  CHECK_STR(
      line_of(text, "this request's span parent", line, sizeof line),
      "this request's span parent: trace=4bf92f3577b34da6a3ce929d0e0e4736 "
      "span=00f067aa0ba902b7 options=3 "
      "tracestate=congo=t61rcWkgMzE,rojo@vendor=a<b>&c\\d\"");
  free(text);
  api_close(&g);
}

/* The shared pieces: base64 both ways, and the tracestate rules. */
static void test_span_context_pieces(void) {
  static const char *bad[] = {"abc",  "a===",     "ab=c",
                              "@@@@", "ab==cd==", "=AAA"};
  const char *in = "hello";
  hcsb__buf_t b = HCSB__BUF_INIT, d = HCSB__BUF_INIT;
  size_t n, i;

  for (n = 0; n <= 5; n++) {
    b.len = d.len = 0;
    CHECK_EQ(hcsb__base64_put(&b, in, n), 0);
    CHECK_EQ(b.len, (n + 2) / 3 * 4);
    CHECK_EQ(hcsb__base64_decode(b.data != NULL ? b.data : "", b.len, &d), 0);
    CHECK_EQ(d.len, n);
    CHECK(n == 0 || memcmp(d.data, in, n) == 0);
  }
  b.len = 0;
  CHECK_EQ(hcsb__base64_put(&b, "hel", 3), 0);
  CHECK(b.len == 4 && memcmp(b.data, "aGVs", 4) == 0);
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    d.len = 0;
    CHECK_EQ(hcsb__base64_decode(bad[i], strlen(bad[i]), &d), -EINVAL);
  }
  hcsb__buf_free(&b);
  hcsb__buf_free(&d);

  CHECK(hcsb__tracestate_key_ok("a", 1));
  CHECK(hcsb__tracestate_key_ok("a0_-*/", 6));
  CHECK(hcsb__tracestate_key_ok("tenant@vendor", 13));
  CHECK(!hcsb__tracestate_key_ok("0a", 2));
  CHECK(!hcsb__tracestate_key_ok("a@", 2));
  CHECK(!hcsb__tracestate_key_ok("a@0", 3));
  CHECK(!hcsb__tracestate_key_ok("a@b@c", 5));
  CHECK(!hcsb__tracestate_key_ok("a@abcdefghijklmno", 17));
  CHECK(!hcsb__tracestate_key_ok("", 0));
  CHECK(hcsb__tracestate_value_ok("x y", 3));
  CHECK(!hcsb__tracestate_value_ok("x ", 2));
  CHECK(!hcsb__tracestate_value_ok("a=b", 3));
  CHECK(!hcsb__tracestate_value_ok("\x7f", 1));
  CHECK(!hcsb__tracestate_value_ok("", 0));
}

/* ------------------------------------------------------------------------ */
/* 8. Signals the guest would not take, OS per container, raw notifications */

typedef struct signal_rec_s {
  int done, status, delivered;
} signal_rec_t;

static void signal_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                      int delivered) {
  signal_rec_t *r = data;
  (void)gerr;
  r->done++;
  r->status = status;
  r->delivered = delivered;
}

static void test_signal_numbers(void) {
  hcsb_process_config_t pc;
  const char *args[] = {"sleep", "9"};
  signal_rec_t sig = {0, 0, 0}, kill = {0, 0, 0};
  json_object *opt;
  api_proc_t r;
  script_t s;
  unsigned before;
  int closed = 0;

  script_start(&s);
  memset(&pc, 0, sizeof(pc));
  pc.command_args = args;
  pc.ncommand_args = 2;
  memset(&r, 0, sizeof(r));
  CHECK_EQ(
      hcsb_conn_create_process(s.conn, NULL, &pc, api_proc_created, &r, &r.p),
      0);
  RUN_UNTIL(&s.loop, r.created);
  CHECK_EQ(r.create_status, 0);
  script_wait_seen(&s, 2); /* ExecuteProcess, the library's wait */
  before = s.nseen;
  /* 0 used to become a kill; negative and above SIGRTMAX never reach the
   * guest either. */
  CHECK_EQ(hcsb_process_signal(r.p, NULL, 0, signal_cb, &sig), -EINVAL);
  CHECK_EQ(hcsb_process_signal(r.p, NULL, -9, signal_cb, &sig), -EINVAL);
  CHECK_EQ(hcsb_process_signal(r.p, NULL, 65, signal_cb, &sig), -EINVAL);
  CHECK_EQ(hcsb_process_signal(r.p, NULL, HCSB_SIGNAL_MAX, signal_cb, &sig), 0);
  RUN_UNTIL(&s.loop, sig.done);
  CHECK_EQ(sig.status, 0);
  CHECK_EQ(sig.delivered, 1);
  CHECK_EQ(s.nseen, before + 1);
  opt = hcsb__json_get(s.seen[before], "Options");
  CHECK(opt != NULL);
  CHECK_EQ(json_object_get_int(hcsb__json_get(opt, "Signal")), 64);
  /* Kill is still the request without Options. */
  CHECK_EQ(hcsb_process_kill(r.p, NULL, signal_cb, &kill), 0);
  RUN_UNTIL(&s.loop, kill.done);
  CHECK_EQ(s.seen_type[before + 1], HCSB_MSG_SIGNAL_PROCESS);
  CHECK(hcsb__json_get(s.seen[before + 1], "Options") == NULL);
  CHECK_EQ(sig.done, 1);
  hcsb_process_close(r.p, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  api_proc_free(&r);
  script_finish(&s);
}

static void test_container_os(void) {
  hcsb_conn_options_t o;
  hcsb_container_t *c = NULL;
  hcsb_conn_t *conn = NULL;
  uv_loop_t loop;
  script_t s;
  char address[512];
  int closed = 0;

  /* Linux guest: OCI. */
  script_start(&s);
  CHECK_EQ(hcsb_conn_open_container(s.conn, "c-linux", &c), 0);
  CHECK_STR(hcsb_container_os(c), "linux");
  CHECK_EQ(hcsb_container_is_oci(c), 1);
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  script_finish(&s);

  /* A Windows guest (RuntimeOsType "Windows", or none at all): not OCI. */
  script_start_with(&s,
                    "{\"Result\":0,\"Version\":4,\"Capabilities\":{"
                    "\"RuntimeOsType\":\"Windows\","
                    "\"GuestDefinedCapabilities\":{}}}");
  CHECK_EQ(hcsb_conn_open_container(s.conn, "c-win", &c), 0);
  CHECK_STR(hcsb_container_os(c), "windows");
  CHECK_EQ(hcsb_container_is_oci(c), 0);
  closed = 0;
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  script_finish(&s);

  /* Not negotiated yet (nobody dials): unknown, and so is the protocol. */
  uv_loop_init(&loop);
  hcsb_conn_options_init(&o);
  snprintf(address, sizeof address, "unix://%s/never.sock", hcsb_test_tmpdir());
  o.address = address;
  CHECK_EQ(hcsb_conn_open(&loop, &o, NULL, NULL, &conn), 0);
  CHECK_EQ(hcsb_conn_protocol(conn), 0);
  CHECK_STR(hcsb_conn_os(conn), "");
  CHECK(hcsb_conn_caps(conn) == NULL);
  CHECK_EQ(hcsb_conn_open_container(conn, "c-early", &c), 0);
  CHECK_STR(hcsb_container_os(c), "");
  CHECK_EQ(hcsb_container_is_oci(c), -ENOTCONN);
  closed = 0;
  hcsb_container_close(c, api_closed_flag, &closed);
  hcsb_conn_close(conn, api_closed_flag, &closed);
  RUN_UNTIL(&loop, closed);
  while (closed < 2) uv_run(&loop, UV_RUN_ONCE);
  api_drain(&loop);
}

typedef struct notes_s {
  script_t *s;
  unsigned n;
  char ids[8][32];
  char types[8][32];
  int waits_done_at_hook[8];
  int *waits_done;
  int close_in_hook;
  int closed;
} notes_t;

static void note(void *data, hcsb_conn_t *conn, const hcsb_notification_t *n) {
  notes_t *x = data;

  CHECK(conn == x->s->conn);
  CHECK(x->n < 8);
  snprintf(x->ids[x->n], sizeof x->ids[0], "%s", n->container_id);
  snprintf(x->types[x->n], sizeof x->types[0], "%s", n->type);
  x->waits_done_at_hook[x->n] = *x->waits_done;
  x->n++;
  if (x->close_in_hook) hcsb_conn_close(conn, api_closed_flag, &x->closed);
}

typedef struct cwait_s {
  int done, status;
  hcsb_container_end_t end;
} cwait_t;

static void cwait_cb(void *data, hcsb_container_t *c, int status,
                     const hcsb_container_exit_t *exit) {
  cwait_t *w = data;
  (void)c;
  w->done++;
  w->status = status;
  w->end = exit != NULL ? exit->end : 0;
}

static void test_raw_notification_hook(void) {
  hcsb_container_t *c = NULL;
  cwait_t w = {0, 0, 0};
  notes_t x;
  script_t s;
  int closed = 0;

  /* The connection owns the bridge here (hcsb_conn_open_bridge). */
  script_start(&s);
  memset(&x, 0, sizeof(x));
  x.s = &s;
  x.waits_done = &w.done;
  hcsb_conn_set_notify_cb(s.conn, note, &x);
  CHECK_EQ(hcsb_conn_open_container(s.conn, "known", &c), 0);
  CHECK_EQ(hcsb_container_wait(c, 0, cwait_cb, &w), 0);
  /* Unknown to the library, known, and a repeat: all three reach the hook,
   * in order; the wait completes after the hook, on a later turn. */
  api_peer_notify(&s.peer,
                  "{\"ContainerId\":\"stranger\",\"Type\":\"GracefulExit\","
                  "\"Operation\":\"None\",\"Result\":0}");
  api_peer_notify(&s.peer,
                  "{\"ContainerId\":\"known\",\"Type\":\"UnexpectedExit\","
                  "\"Operation\":\"None\",\"Result\":0}");
  api_peer_notify(&s.peer,
                  "{\"ContainerId\":\"known\",\"Type\":\"ForcedExit\","
                  "\"Operation\":\"None\",\"Result\":0}");
  while (x.n < 3) uv_run(&s.loop, UV_RUN_ONCE);
  RUN_UNTIL(&s.loop, w.done);
  CHECK_STR(x.ids[0], "stranger");
  CHECK_STR(x.ids[1], "known");
  CHECK_STR(x.types[1], "UnexpectedExit");
  CHECK_STR(x.types[2], "ForcedExit");
  CHECK_EQ(x.waits_done_at_hook[1], 0);
  CHECK_EQ(w.status, 0);
  CHECK_EQ(w.end, HCSB_CONTAINER_EXITED);
  /* Unregistered: no more calls. */
  hcsb_conn_set_notify_cb(s.conn, NULL, NULL);
  api_peer_notify(&s.peer,
                  "{\"ContainerId\":\"stranger\",\"Type\":\"GracefulExit\"}");
  {
    api_done_t d = {0};
    CHECK_EQ(hcsb_container_start(c, NULL, api_done, &d), 0);
    RUN_UNTIL(&s.loop, d.done); /* the notification was read before it */
  }
  CHECK_EQ(x.n, 3);
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, closed);
  script_finish(&s);

  /* Closing the connection from inside the hook. */
  script_start(&s);
  memset(&x, 0, sizeof(x));
  x.s = &s;
  x.waits_done = &w.done;
  x.close_in_hook = 1;
  hcsb_conn_set_notify_cb(s.conn, note, &x);
  api_peer_notify(&s.peer, "{\"ContainerId\":\"a\",\"Type\":\"None\"}");
  api_peer_notify(&s.peer, "{\"ContainerId\":\"b\",\"Type\":\"None\"}");
  RUN_UNTIL(&s.loop, x.closed);
  CHECK_EQ(x.n, 1); /* not called after the close */
  RUN_UNTIL(&s.loop, s.peer.eof);
  api_peer_close(&s.peer);
  RUN_UNTIL(&s.loop, s.peer.closed);
  {
    unsigned i;
    for (i = 0; i < s.nseen; i++) json_object_put(s.seen[i]);
  }
  api_drain(&s.loop);
}

/* ------------------------------------------------------------------------ */
/* 10. What the header says about close, loss and timeouts */

typedef struct order_s {
  int seq;
  int start_at, start_status;
  int lost_at, lost_status;
  int wait_at, wait_status;
  hcsb_container_end_t wait_end;
  int pwait_at, pwait_status;
} order_t;

static void order_start(void *data, int status, const hcsb_guest_error_t *g) {
  order_t *o = data;
  (void)g;
  o->start_at = ++o->seq;
  o->start_status = status;
}

static void order_lost(void *data, hcsb_conn_t *conn, int status) {
  order_t *o = data;
  (void)conn;
  o->lost_at = ++o->seq;
  o->lost_status = status;
}

static void order_wait(void *data, hcsb_container_t *c, int status,
                       const hcsb_container_exit_t *exit) {
  order_t *o = data;
  (void)c;
  o->wait_at = ++o->seq;
  o->wait_status = status;
  o->wait_end = exit != NULL ? exit->end : 0;
}

static void order_pwait(void *data, hcsb_process_t *p, int status,
                        uint32_t code) {
  order_t *o = data;
  (void)p, (void)code;
  o->pwait_at = ++o->seq;
  o->pwait_status = status;
}

static void test_close_with_handles_open(void) {
  hcsb_process_config_t pc;
  const char *args[] = {"sleep", "9"};
  hcsb_container_t *c = NULL;
  order_t o;
  api_proc_t r;
  api_done_t late = {0};
  script_t s;
  uint32_t code = 7;
  int conn_closed = 0, handles_closed = 0;

  script_start(&s);
  s.hold_type = HCSB_MSG_START;
  memset(&o, 0, sizeof(o));
  hcsb_conn_set_lost_cb(s.conn, order_lost, &o);
  memset(&pc, 0, sizeof(pc));
  pc.command_args = args;
  pc.ncommand_args = 2;
  memset(&r, 0, sizeof(r));
  CHECK_EQ(
      hcsb_conn_create_process(s.conn, NULL, &pc, api_proc_created, &r, &r.p),
      0);
  RUN_UNTIL(&s.loop, r.created);
  CHECK_EQ(hcsb_conn_open_container(s.conn, "held", &c), 0);
  CHECK_EQ(hcsb_container_wait(c, 0, order_wait, &o), 0);
  CHECK_EQ(hcsb_process_wait(r.p, 0, order_pwait, &o), 0);
  CHECK_EQ(hcsb_container_start(c, NULL, order_start, &o), 0);
  script_wait_seen(&s, 3);

  hcsb_conn_close(s.conn, api_closed_flag, &conn_closed);
  CHECK_EQ(o.seq, 0); /* nothing inside the call */
  RUN_UNTIL(&s.loop, conn_closed);
  /* The close callback did not wait for the handles still open. */
  CHECK(o.start_at != 0 && o.wait_at != 0 && o.pwait_at != 0);
  CHECK_EQ(o.start_status, -ECANCELED);
  CHECK_EQ(o.wait_status, -ECANCELED);
  CHECK_EQ(o.wait_end, HCSB_CONTAINER_CLOSED);
  CHECK_EQ(o.pwait_status, -ECANCELED);
  CHECK_EQ(o.lost_at, 0);
  CHECK_EQ(hcsb_process_exit_code(r.p, &code), -ENODATA);
  /* Handles stay readable; new work fails on a later turn. */
  CHECK_STR(hcsb_container_id(c), "held");
  CHECK_EQ(hcsb_process_pid(r.p), 200);
  CHECK_EQ(hcsb_conn_protocol(s.conn), 4);
  CHECK_STR(hcsb_conn_os(s.conn), "linux");
  CHECK_EQ(hcsb_container_start(c, NULL, api_done, &late), 0);
  CHECK_EQ(late.done, 0);
  RUN_UNTIL(&s.loop, late.done);
  CHECK_EQ(late.status, -ENOTCONN);
  hcsb_process_close(r.p, api_closed_flag, &handles_closed);
  hcsb_container_close(c, api_closed_flag, &handles_closed);
  while (handles_closed < 2) uv_run(&s.loop, UV_RUN_ONCE);
  CHECK_EQ(o.lost_at, 0);
  RUN_UNTIL(&s.loop, s.peer.eof);
  api_peer_close(&s.peer);
  RUN_UNTIL(&s.loop, s.peer.closed);
  {
    unsigned i;
    for (i = 0; i < s.nseen; i++) json_object_put(s.seen[i]);
  }
  api_proc_free(&r);
  api_drain(&s.loop);
}

static void test_lost_order(void) {
  hcsb_container_t *c = NULL;
  order_t o;
  script_t s;
  int closed = 0;

  script_start(&s);
  s.hold_type = HCSB_MSG_START;
  memset(&o, 0, sizeof(o));
  hcsb_conn_set_lost_cb(s.conn, order_lost, &o);
  CHECK_EQ(hcsb_conn_open_container(s.conn, "c", &c), 0);
  CHECK_EQ(hcsb_container_wait(c, 0, order_wait, &o), 0);
  CHECK_EQ(hcsb_container_start(c, NULL, order_start, &o), 0);
  script_wait_seen(&s, 1);
  api_peer_close(&s.peer); /* the guest goes away */
  RUN_UNTIL(&s.loop, o.wait_at);
  /* Pending operations, then the lost callback, then the waits. */
  CHECK_EQ(o.start_at, 1);
  CHECK_EQ(o.lost_at, 2);
  CHECK_EQ(o.wait_at, 3);
  CHECK(o.lost_status == -ECONNRESET || o.lost_status == -EPIPE);
  CHECK_EQ(o.start_status, o.lost_status);
  CHECK_EQ(o.wait_status, o.lost_status);
  CHECK_EQ(o.wait_end, HCSB_CONTAINER_CONNECTION_LOST);
  hcsb_container_close(c, api_closed_flag, &closed);
  hcsb_conn_close(s.conn, api_closed_flag, &closed);
  while (closed < 2) uv_run(&s.loop, UV_RUN_ONCE);
  RUN_UNTIL(&s.loop, s.peer.closed);
  {
    unsigned i;
    for (i = 0; i < s.nseen; i++) json_object_put(s.seen[i]);
  }
  CHECK_EQ(o.seq, 3); /* once */
  api_drain(&s.loop);
}

typedef struct open_rec_s {
  int done, status;
  uint64_t at_ms;
} open_rec_t;

static void open_rec(void *data, hcsb_conn_t *conn, int status,
                     const hcsb_guest_error_t *gerr) {
  open_rec_t *r = data;
  (void)gerr;
  r->done++;
  r->status = status;
  r->at_ms = uv_now(hcsb_conn_loop(conn));
}

/* Opens on a Unix address nobody dials; returns how long the open took to
 * fail (-ETIMEDOUT), checking the lost callback never runs. */
static uint64_t open_nobody(const char *options, uint32_t connect_ms,
                            uint32_t *addr_timeout) {
  hcsb_conn_options_t o;
  hcsb_conn_t *conn = NULL;
  open_rec_t r = {0, 0, 0};
  order_t lost;
  uv_loop_t loop;
  char address[512];
  uint64_t t0;
  int closed = 0;

  uv_loop_init(&loop);
  hcsb_conn_options_init(&o);
  snprintf(address, sizeof address, "unix://%s/nobody.sock%s",
           hcsb_test_tmpdir(), options);
  o.address = address;
  o.connect_timeout_ms = connect_ms;
  uv_update_time(&loop);
  t0 = uv_now(&loop);
  CHECK_EQ(hcsb_conn_open(&loop, &o, open_rec, &r, &conn), 0);
  memset(&lost, 0, sizeof(lost));
  hcsb_conn_set_lost_cb(conn, order_lost, &lost);
  *addr_timeout = hcsb_bridge_address(hcsb_conn_bridge(conn))->timeout_ms;
  RUN_UNTIL(&loop, r.done);
  CHECK_EQ(r.status, -ETIMEDOUT);
  CHECK_EQ(hcsb_conn_protocol(conn), 0);
  CHECK_STR(hcsb_conn_os(conn), "");
  hcsb_conn_close(conn, api_closed_flag, &closed);
  RUN_UNTIL(&loop, closed);
  CHECK_EQ(lost.seq, 0);
  api_drain(&loop);
  return r.at_ms - t0;
}

static void flag_timer(uv_timer_t *t) {
  (*(int *)t->data)++;
}

static void test_timeouts(void) {
  hcsb_conn_options_t o;
  hcsb_call_opts_t quick = {NULL, 30};
  api_done_t held = {0}, fast = {0};
  hcsb_container_t *c = NULL;
  uint32_t addr_timeout = 1;
  uint64_t ms;
  script_t s;
  int closed = 0;

  /* No ?timeout=: connect_timeout_ms alone; the syntax's 120 s default is
   * not handed to the transport. */
  ms = open_nobody("", 80, &addr_timeout);
  CHECK_EQ(addr_timeout, 0);
  CHECK(ms >= 80 && ms < 5000);
  /* Both: the shorter wins, either way round. */
  ms = open_nobody("?timeout=60", 0, &addr_timeout);
  CHECK_EQ(addr_timeout, 60);
  CHECK(ms >= 60 && ms < 5000);
  ms = open_nobody("?timeout=60000", 80, &addr_timeout);
  CHECK_EQ(addr_timeout, 60000);
  CHECK(ms >= 80 && ms < 5000);

  /* Per call 0 = the connection's default, here none; a per-call value
   * applies to that call only. */
  hcsb_conn_options_init(&o);
  o.call_timeout_ms = 0;
  script_start_opts(&s, NULL, &o);
  s.hold_type = HCSB_MSG_START;
  CHECK_EQ(hcsb_conn_open_container(s.conn, "t", &c), 0);
  CHECK_EQ(hcsb_container_start(c, NULL, api_done, &held), 0);
  CHECK_EQ(hcsb_container_start(c, &quick, api_done, &fast), 0);
  RUN_UNTIL(&s.loop, fast.done);
  CHECK_EQ(fast.status, -ETIMEDOUT);
  {
    uv_timer_t t;
    int fired = 0;
    uv_timer_init(&s.loop, &t);
    t.data = &fired;
    uv_timer_start(&t, flag_timer, 200, 0);
    RUN_UNTIL(&s.loop, fired);
    uv_close((uv_handle_t *)&t, NULL);
  }
  CHECK_EQ(held.done, 0);
  hcsb_container_close(c, api_closed_flag, &closed);
  RUN_UNTIL(&s.loop, held.done);
  CHECK_EQ(held.status, -ECANCELED);
  RUN_UNTIL(&s.loop, closed);
  script_finish(&s);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(adapter_shapes_on_v0_11_guest),
    TEST_ENTRY(verity_reaches_guest),
    TEST_ENTRY(span_context_per_connection_and_call),
    TEST_ENTRY(properties_template_follows_span_context),
    TEST_ENTRY(span_context_reaches_guest),
    TEST_ENTRY(span_context_pieces),
    TEST_ENTRY(signal_numbers),
    TEST_ENTRY(container_os),
    TEST_ENTRY(raw_notification_hook),
    TEST_ENTRY(close_with_handles_open),
    TEST_ENTRY(lost_order),
    TEST_ENTRY(timeouts),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
