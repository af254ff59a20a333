/* Fault matrix: JSON bombs and malformed bodies.  Nesting 10,000 deep,
 * megabyte strings, every integer field the library reads out of range,
 * every field it reads with the wrong type, invalid UTF-8.  Each body is
 * one guest answer to one call; the test asserts the exact status each
 * call gets, that the connection survives all of them, and counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults.h"
#include "proto/proto.h"

#define S HCSB_MSG_START
#define W HCSB_MSG_WAIT_FOR_PROCESS
#define E HCSB_MSG_EXECUTE_PROCESS
#define G HCSB_MSG_GET_PROPERTIES
#define D HCSB_MSG_DUMP_STACKS
#define N HCSB_MSG_NEGOTIATE_PROTOCOL

#define EPROTO_ (-EPROTO)
#define GUEST HCSB_EGUEST
#define CAPS(x) "{\"Result\":0,\"Version\":4,\"Capabilities\":" x "}"
#define REC(x) "{\"Result\":-1,\"ErrorRecords\":[" x "]}"

typedef struct jcase_s {
  uint32_t req;
  const char *body; /* NULL: built by the test (big or deep) */
  int status;
  uint32_t hresult;
  long check; /* >= 0: ExitCode / ProcessId / message or properties length */
} jcase_t;

static jcase_t cases[] = {
    /* Result: int32 only. */
    {S, "{\"Result\":2147483648}", EPROTO_, 0, -1},
    {S, "{\"Result\":-2147483649}", EPROTO_, 0, -1},
    {S, "{\"Result\":-2147483648}", GUEST, 0x80000000u, -1},
    {S, "{\"Result\":2147483647}", GUEST, 0x7FFFFFFFu, -1},
    {S, "{\"Result\":-0}", 0, 0, -1},
    {S, "{\"Result\":1e2}", EPROTO_, 0, -1},
    {S, "{\"Result\":0.0}", EPROTO_, 0, -1},
    {S, "{\"Result\":9223372036854775808}", EPROTO_, 0, -1},
    {S, "{\"Result\":18446744073709551616}", EPROTO_, 0, -1},
    {S, "{\"Result\":-99999999999999999999999999}", EPROTO_, 0, -1},
    {S, "{\"Result\":\"0\"}", EPROTO_, 0, -1},
    {S, "{\"Result\":true}", EPROTO_, 0, -1},
    {S, "{\"Result\":[0]}", EPROTO_, 0, -1},
    {S, "{\"Result\":{}}", EPROTO_, 0, -1},
    {S, "{\"Result\":null}", EPROTO_, 0, -1},
    {S, "{}", EPROTO_, 0, -1},
    {S, "[]", EPROTO_, 0, -1},
    {S, "0", EPROTO_, 0, -1},
    {S, "", EPROTO_, 0, -1},
    {S, "{\"Result\":0}{}", EPROTO_, 0, -1},
    {S, "{\"Result\":0,}", EPROTO_, 0, -1},
    {S, "{'Result':0}", EPROTO_, 0, -1},
    {S, "{\"Result\":NaN}", EPROTO_, 0, -1},
    /* ExitCode, ProcessId, Version: uint32. */
    {W, "{\"Result\":0,\"ExitCode\":4294967295}", 0, 0, 4294967295L},
    {W, "{\"Result\":0,\"ExitCode\":4294967296}", EPROTO_, 0, -1},
    {W, "{\"Result\":0,\"ExitCode\":-1}", EPROTO_, 0, -1},
    {W, "{\"Result\":0,\"ExitCode\":1.5}", EPROTO_, 0, -1},
    {W, "{\"Result\":0,\"ExitCode\":1e1}", EPROTO_, 0, -1},
    {W, "{\"Result\":0,\"ExitCode\":\"3\"}", EPROTO_, 0, -1},
    {W, "{\"Result\":0,\"ExitCode\":true}", EPROTO_, 0, -1},
    {E, "{\"Result\":0,\"ProcessId\":4294967295}", 0, 0, 4294967295L},
    {E, "{\"Result\":0,\"ProcessId\":4294967296}", EPROTO_, 0, -1},
    {E, "{\"Result\":0,\"ProcessId\":-1}", EPROTO_, 0, -1},
    {E, "{\"Result\":0,\"ProcessId\":\"44\"}", EPROTO_, 0, -1},
    {E, "{\"Result\":0,\"ProcessId\":[]}", EPROTO_, 0, -1},
    {N, "{\"Result\":0,\"Version\":4294967296}", EPROTO_, 0, -1},
    {N, "{\"Result\":0,\"Version\":-1}", EPROTO_, 0, -1},
    {N, "{\"Result\":0,\"Version\":\"4\"}", EPROTO_, 0, -1},
    /* Capabilities: every field read. */
    {N, CAPS("[]"), EPROTO_, 0, -1},
    {N, CAPS("\"x\""), EPROTO_, 0, -1},
    {N, CAPS("{\"SupportedSchemaVersions\":{}}"), EPROTO_, 0, -1},
    {N, CAPS("{\"SupportedSchemaVersions\":[5]}"), EPROTO_, 0, -1},
    {N, CAPS("{\"SupportedSchemaVersions\":[{\"Major\":-1}]}"), EPROTO_, 0, -1},
    {N, CAPS("{\"SupportedSchemaVersions\":[{\"Minor\":4294967296}]}"), EPROTO_,
     0, -1},
    {N, CAPS("{\"SupportedSchemaVersions\":[{\"Major\":\"2\"}]}"), EPROTO_, 0,
     -1},
    {N, CAPS("{\"RuntimeOsType\":5}"), EPROTO_, 0, -1},
    {N, CAPS("{\"GuestDefinedCapabilities\":[]}"), EPROTO_, 0, -1},
    {N, CAPS("{\"SendHostCreateMessage\":\"true\"}"), EPROTO_, 0, -1},
    {N, CAPS("{\"SendHostStartMessage\":1}"), EPROTO_, 0, -1},
    {N, CAPS("{\"HvSocketConfigOnStartup\":0}"), EPROTO_, 0, -1},
    {N, CAPS("{\"SendLifecycleNotifications\":{}}"), EPROTO_, 0, -1},
    {N, CAPS("{\"ModifyServiceSettingsSupported\":[]}"), EPROTO_, 0, -1},
    {N, CAPS("{\"GuestDefinedCapabilities\":{\"SignalProcessSupported\":1}}"),
     EPROTO_, 0, -1},
    {N, CAPS("{\"GuestDefinedCapabilities\":{\"DumpStacksSupported\":\"y\"}}"),
     EPROTO_, 0, -1},
    {N, CAPS("{\"SupportedSchemaVersions\":[null,{\"Major\":2,\"Minor\":1}]}"),
     0, 0, -1},
    /* The error fields and every field of an error record. */
    {S, "{\"Result\":-1,\"ErrorMessage\":5}", EPROTO_, 0, -1},
    {S, "{\"Result\":0,\"ActivityId\":5}", EPROTO_, 0, -1},
    {S, "{\"Result\":-1,\"ErrorRecords\":{}}", EPROTO_, 0, -1},
    {S, REC("5"), EPROTO_, 0, -1},
    {S, REC("null"), GUEST, 0xFFFFFFFFu, -1},
    {S, REC("{\"Result\":2147483648}"), EPROTO_, 0, -1},
    {S, REC("{\"Result\":\"1\"}"), EPROTO_, 0, -1},
    {S, REC("{\"Line\":-1}"), EPROTO_, 0, -1},
    {S, REC("{\"Line\":4294967296}"), EPROTO_, 0, -1},
    {S, REC("{\"Line\":4294967295}"), GUEST, 0xFFFFFFFFu, -1},
    {S, REC("{\"Message\":5}"), EPROTO_, 0, -1},
    {S, REC("{\"StackTrace\":[]}"), EPROTO_, 0, -1},
    {S, REC("{\"ModuleName\":5}"), EPROTO_, 0, -1},
    {S, REC("{\"FileName\":{}}"), EPROTO_, 0, -1},
    {S, REC("{\"FunctionName\":true}"), EPROTO_, 0, -1},
    {S, REC("{},{},{\"Line\":-5}"), EPROTO_, 0, -1},
    /* Properties (JSON in a string) and GuestStacks. */
    {G, "{\"Result\":0,\"Properties\":5}", EPROTO_, 0, -1},
    {G, "{\"Result\":0,\"Properties\":true}", EPROTO_, 0, -1},
    {G, "{\"Result\":0,\"Properties\":\"{\"}", EPROTO_, 0, -1},
    {G, "{\"Result\":0,\"Properties\":\"\"}", 0, 0, 0},
    {G, "{\"Result\":0,\"Properties\":{\"a\":1}}", 0, 0, 7},
    {D, "{\"Result\":0,\"GuestStacks\":5}", EPROTO_, 0, -1},
    {D, "{\"Result\":0,\"GuestStacks\":[]}", EPROTO_, 0, -1},
    /* UTF-8: raw bytes that are not valid, anywhere; valid ones pass. */
    {S, "{\"Result\":-1,\"ErrorMessage\":\"\xff\"}", EPROTO_, 0, -1},
    {S, "{\"Result\":0,\"ActivityId\":\"\xc3\x28\"}", EPROTO_, 0, -1},
    {S, "{\"Result\":0,\"X\":\"\xed\xa0\x80\"}", EPROTO_, 0, -1},
    {S, "{\"Result\":0,\"\xff\":1}", EPROTO_, 0, -1},
    {S, "{\"Result\":0,\"X\":\"\xc0\xaf\"}", EPROTO_, 0, -1},
    {S, "{\"Result\":0,\"X\":\"\xf4\x90\x80\x80\"}", EPROTO_, 0, -1},
    {S, "{\"Result\":-1,\"ErrorMessage\":\"\xe2\x82\"}", EPROTO_, 0, -1},
    {G, "{\"Result\":0,\"Properties\":\"\\\"\xfe\\\"\"}", EPROTO_, 0, -1},
    {S, "{\"Result\":-1,\"ErrorMessage\":\"h\xc3\xa9\xf0\x9f\x98\x80\"}", GUEST,
     0xFFFFFFFFu, 7},
    {S, "{\"Result\":-1,\"ErrorMessage\":\"\\ud83d\\ude00\"}", GUEST,
     0xFFFFFFFFu, 4},
    /* Built below: nesting and size. */
    {S, NULL, EPROTO_, 0, -1}, /* 10,000 nested arrays in an unknown field */
    {S, NULL, EPROTO_, 0, -1}, /* 10,000 nested objects */
    {G, NULL, EPROTO_, 0, -1}, /* 10,000 nested arrays inside Properties */
    {S, NULL, EPROTO_, 0, -1}, /* 10,000 unclosed brackets */
    {S, NULL, 0, 0, -1},       /* exactly the depth limit (64 levels) */
    {S, NULL, EPROTO_, 0, -1}, /* one past it */
    {S, NULL, GUEST, 0x80004005u, 1 << 20}, /* 1 MiB ErrorMessage */
    {G, NULL, 0, 0, (1 << 20) + 2},         /* a 1 MiB string in Properties */
    {S, NULL, GUEST, 0x80004005u, 2 << 19}, /* 512 Ki escaped U+00E9 */
    {S, NULL, 0, 0, -1},                    /* a 1 MiB key */
};
#define NCASES (sizeof cases / sizeof cases[0])
#define NBUILT 10

static char *built[NBUILT];

/* head + unit x n + mid + unit2 x n2 + tail, malloc'd. */
static char *repeat(const char *head, const char *unit, size_t n,
                    const char *mid, const char *unit2, size_t n2,
                    const char *tail) {
  size_t u = strlen(unit), u2 = strlen(unit2);
  char *b =
      malloc(strlen(head) + u * n + strlen(mid) + u2 * n2 + strlen(tail) + 1);
  CHECK(b != NULL);
  char *p = stpcpy(b, head);
  for (size_t i = 0; i < n; i++, p += u) memcpy(p, unit, u);
  p = stpcpy(p, mid);
  for (size_t i = 0; i < n2; i++, p += u2) memcpy(p, unit2, u2);
  stpcpy(p, tail);
  return b;
}

static void build_bodies(void) {
  const char *r0 = "{\"Result\":0,\"X\":";
  built[0] = repeat(r0, "[", 10000, "", "]", 10000, "}");
  built[1] = repeat(r0, "{\"a\":", 10000, "0", "}", 10000, "}");
  built[2] = repeat("{\"Result\":0,\"Properties\":\"", "[", 10000, "", "]",
                    10000, "\"}");
  built[3] = repeat(r0, "[", 10000, "", "", 0, "");
  built[4] = repeat(r0, "[", 63, "", "]", 63, "}");
  built[5] = repeat(r0, "[", 64, "", "]", 64, "}");
  built[6] = repeat("{\"Result\":-2147467259,\"ErrorMessage\":\"", "a", 1 << 20,
                    "", "", 0, "\"}");
  built[7] = repeat("{\"Result\":0,\"Properties\":\"\\\"", "a", 1 << 20, "", "",
                    0, "\\\"\"}");
  built[8] = repeat("{\"Result\":-2147467259,\"ErrorMessage\":\"", "\\u00e9",
                    512 * 1024, "", "", 0, "\"}");
  built[9] = repeat("{\"Result\":0,\"", "k", 1 << 20, "\":1}", "", 0, "");
}

static void free_bodies(void) {
  for (size_t i = 0; i < NBUILT; i++) free(built[i]);
}

/* Notifications with bad fields are dropped (and counted); the last one
 * is fine and is delivered. */
static const char *const bad_notes[] = {
    "{\"ContainerId\":5}",
    "{\"Type\":\"GracefulExit\"}",
    "{\"ContainerId\":null}",
    "{\"ContainerId\":\"c\",\"Result\":2147483648}",
    "{\"ContainerId\":\"c\",\"Result\":\"0\"}",
    "{\"ContainerId\":\"c\",\"Type\":5}",
    "{\"ContainerId\":\"c\",\"Operation\":[]}",
    "{\"ContainerId\":\"c\",\"ActivityId\":{}}",
    "{\"ContainerId\":\"\xff\"}",
    "{\"ContainerId\":\"c\",\"ResultInfo\":5}",
    "{\"ContainerId\":\"c\",\"ResultInfo\":\"{\"}",
    "[]",
    "",
    NULL, /* 10,000 nested arrays */
};
#define NBAD (sizeof bad_notes / sizeof bad_notes[0])
#define GOOD_NOTE                                                           \
  "{\"ContainerId\":\"ok\",\"Type\":\"ForcedExit\",\"Result\":-2147467259," \
  "\"ResultInfo\":\"{\\\"a\\\":1}\"}"

static char *deep_note;

static void script_cases(fpeer_t *p) {
  size_t b = 0;
  fpeer_negotiate(p);
  for (size_t i = 0; i < NCASES; i++) {
    uint64_t id = fpeer_expect(p, cases[i].req);
    const char *body = cases[i].body != NULL ? cases[i].body : built[b++];
    fpeer_send(p, hcsb_msg_response_type(cases[i].req), id, body);
  }
  for (size_t i = 0; i < NBAD; i++)
    fpeer_send(p, HCSB_MSG_NOTIFY_CONTAINER, 0,
               bad_notes[i] != NULL ? bad_notes[i] : deep_note);
  fpeer_send(p, HCSB_MSG_NOTIFY_CONTAINER, 0, GOOD_NOTE);
  uint64_t id = fpeer_expect(p, S);
  fpeer_send(p, HCSB_MSG_START_RESPONSE, id, FAULTS_OK_BODY);
  fpeer_drain(p);
}

static void test_json_bombs_and_bad_fields(void) {
  fbr_t f;
  static fcall_t calls[NCASES];
  fcall_t last;
  size_t nproto = 0;

  build_bodies();
  deep_note =
      repeat("{\"ContainerId\":\"c\",\"X\":", "[", 10000, "", "]", 10000, "}");
  memset(calls, 0, sizeof calls);
  memset(&last, 0, sizeof last);
  fbr_open(&f, script_cases, NULL, NULL);
  RUN_UNTIL(&f.loop, f.ready_n == 1);
  CHECK_EQ(f.ready_status, 0);
  for (size_t i = 0; i < NCASES; i++) {
    hcsb_request_t q = faults_req(cases[i].req);
    CHECK_EQ(fcall(f.b, &q, 0, &calls[i], NULL), 0);
  }
  RUN_UNTIL(&f.loop, calls[NCASES - 1].n == 1);
  for (size_t i = 0; i < NCASES; i++) {
    const jcase_t *k = &cases[i];
    const fcall_t *c = &calls[i];
    long got = -1;
    if (k->check >= 0) {
      if (k->req == W) got = c->has_exit_code ? (long)c->exit_code : -2;
      if (k->req == E) got = (long)c->pid;
      if (k->req == G) got = (long)c->props_len;
      if (k->req == S) got = (long)c->msg_len;
    }
    if (c->n != 1 || c->status != k->status ||
        (k->status == HCSB_EGUEST && c->hresult != k->hresult) ||
        got != k->check)
      hcsb_test_fail(__FILE__, __LINE__,
                     "case %zu (%.60s): %d callbacks, status %d (want %d), "
                     "hresult 0x%08X, value %ld (want %ld)",
                     i, k->body ? k->body : "(built)", c->n, c->status,
                     k->status, (unsigned)c->hresult, got, k->check);
    nproto += k->status == -EPROTO;
  }
  /* Everything arrived in order on one connection that is still alive. */
  hcsb_request_t q = faults_req(S);
  CHECK_EQ(fcall(f.b, &q, 0, &last, NULL), 0);
  RUN_UNTIL(&f.loop, last.n == 1);
  CHECK_EQ(last.status, 0);
  CHECK_EQ(hcsb_bridge_is_connected(f.b), 1);
  CHECK_EQ(f.disc_n, 0);
  hcsb_bridge_stats_t st;
  hcsb_bridge_stats(f.b, &st);
  CHECK_U64(st.bad_responses, nproto);
  CHECK_U64(st.dropped_messages, NBAD);
  CHECK_U64(st.notifications, 1);
  CHECK_EQ(f.notify_n, 1);
  CHECK_STR(f.notify_cid, "ok");
  CHECK_STR(f.notify_type, "ForcedExit");
  fprintf(stderr, "  %zu bodies (%zu rejected), %zu bad notifications\n",
          (size_t)NCASES, nproto, (size_t)NBAD);
  fbr_finish(&f);
  free_bodies();
  free(deep_note);
}

/* ------------------------------------------------------------------------ */
/* The Properties the API decodes itself (ProcessList, LCOWMetrics): every
 * number out of range and every field of the wrong type fails the call
 * with -EPROTO, and statistics that would overflow when summed are not
 * reported as a wrapped-around value. */

typedef struct pcase_s {
  const char *props; /* the JSON text inside the Properties string */
  int status;
} pcase_t;

static const pcase_t pcases[] = {
    {"{\"ProcessList\":[{\"ProcessId\":4294967296}]}", -EPROTO},
    {"{\"ProcessList\":[{\"ProcessId\":-1}]}", -EPROTO},
    {"{\"ProcessList\":[{\"ProcessId\":\"1\"}]}", -EPROTO},
    {"{\"ProcessList\":[{\"ProcessId\":1.0}]}", -EPROTO},
    {"{\"ProcessList\":{}}", -EPROTO},
    {"{\"ProcessList\":[5]}", -EPROTO},
    {"{\"ProcessList\":[{\"ImageName\":5}]}", -EPROTO},
    {"{\"ProcessList\":[{\"KernelTime100ns\":18446744073709551616}]}", -EPROTO},
    {"{\"ProcessList\":[{\"KernelTime100ns\":99999999999999999999}]}", -EPROTO},
    {"{\"ProcessList\":[{\"KernelTime100ns\":100000000000000000000}]}",
     -EPROTO},
    {"{\"ProcessList\":[{\"UserTime100ns\":9999999999999999999.5}]}", -EPROTO},
    {"{\"ProcessList\":[{\"UserTime100ns\":18446744073709551615e0}]}", -EPROTO},
    {"{\"ProcessList\":[{\"UserTime100ns\":1e3}]}", -EPROTO},
    {"{\"ProcessList\":[{\"MemoryCommitBytes\":true}]}", -EPROTO},
    {"{\"LCOWMetrics\":[]}", -EPROTO},
    {"{\"LCOWMetrics\":{\"cpu\":{\"usage\":{\"total\":-5}}}}", -EPROTO},
    {"{\"LCOWMetrics\":{\"cpu\":{\"throttling\":[]}}}", -EPROTO},
    {"{\"LCOWMetrics\":{\"memory\":{\"usage\":{\"limit\":1e3}}}}", -EPROTO},
    {"{\"LCOWMetrics\":{\"memory\":{\"rss\":\"1\"}}}", -EPROTO},
    {"{\"LCOWMetrics\":{\"pids\":{\"current\":true}}}", -EPROTO},
    {"{\"LCOWMetrics\":{\"blkio\":{\"io_serviced_recursive\":[{\"op\":5}]}}}",
     -EPROTO},
    {"{\"LCOWMetrics\":{\"blkio\":{\"io_service_bytes_recursive\":[{\"op\":"
     "\"Read\",\"value\":18446744073709551615},{\"op\":\"Read\",\"value\":1}]}}"
     "}",
     -EPROTO},
    {"{\"LCOWMetrics\":{\"blkio\":{\"io_serviced_recursive\":[{\"op\":"
     "\"Write\",\"value\":18446744073709551615},{\"op\":\"Write\",\"value\":"
     "18446744073709551615}]}}}",
     -EPROTO},
    /* At the edges, and fine. */
    {"{\"ProcessList\":[{\"ProcessId\":4294967295,\"ImageName\":\"a\\u00e9\","
     "\"KernelTime100ns\":18446744073709551615}],\"LCOWMetrics\":{\"pids\":{"
     "\"current\":18446744073709551615},\"blkio\":{\"io_service_bytes_"
     "recursive\":"
     "[{\"op\":\"Read\",\"value\":18446744073709551614},{\"op\":\"Read\","
     "\"value\":1},null]}}}",
     0},
};
#define NPCASES (sizeof pcases / sizeof pcases[0])
#define BIG_LIST 50000u

/* {"Result":0,"Properties":"<text with quotes escaped>"} */
static char *props_body(const char *text) {
  size_t n = strlen(text);
  char *b = malloc(2 * n + 64), *p;
  CHECK(b != NULL);
  p = stpcpy(b, "{\"Result\":0,\"Properties\":\"");
  for (size_t i = 0; i < n; i++) {
    if (text[i] == '"' || text[i] == '\\') *p++ = '\\';
    *p++ = text[i];
  }
  stpcpy(p, "\"}");
  return b;
}

static char *big_list;

static void script_props(fpeer_t *p) {
  fpeer_negotiate(p);
  for (size_t i = 0; i <= NPCASES; i++) {
    uint64_t id = fpeer_expect(p, G);
    char *body = props_body(i < NPCASES ? pcases[i].props : big_list);
    fpeer_send(p, HCSB_MSG_GET_PROPERTIES_RESPONSE, id, body);
    free(body);
  }
  fpeer_drain(p);
}

typedef struct pres_s {
  int n, status;
  hcsb_properties_t props; /* scalars only are kept */
  uint32_t pid0, pid_last;
  uint64_t kt0;
  char image0[16];
} pres_t;

static void props_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                     const hcsb_properties_t *props) {
  pres_t *r = data;
  (void)gerr;
  CHECK(!faults_in_api);
  r->n++;
  r->status = status;
  if (status != 0) {
    CHECK(props == NULL);
    return;
  }
  r->props = *props;
  if (props->nprocesses > 0) {
    r->pid0 = props->processes[0].process_id;
    r->pid_last = props->processes[props->nprocesses - 1].process_id;
    r->kt0 = props->processes[0].kernel_time_100ns;
    snprintf(
        r->image0, sizeof r->image0, "%s",
        props->processes[0].image_name ? props->processes[0].image_name : "");
  }
  r->props.processes = NULL;
  r->props.json = NULL;
}

static void test_properties_bad_numbers_and_types(void) {
  fconn_t f;
  hcsb_container_t *c;
  static pres_t res[NPCASES + 1];
  int closed = 0;
  size_t n = 0;

  /* 50,000 processes: the decoder's buffers grow, exactly. */
  big_list = malloc(BIG_LIST * 40 + 64);
  CHECK(big_list != NULL);
  n = (size_t)sprintf(big_list, "{\"ProcessList\":[");
  for (unsigned i = 0; i < BIG_LIST; i++)
    n += (size_t)sprintf(big_list + n, "%s{\"ProcessId\":%u}", i ? "," : "",
                         i + 1);
  strcpy(big_list + n, "]}");

  memset(res, 0, sizeof res);
  fconn_open(&f, script_props, NULL, NULL, NULL);
  fconn_wait_open(&f, 0);
  CHECK_EQ(hcsb_conn_open_container(f.conn, "c1", &c), 0);
  faults_in_api = 1;
  for (size_t i = 0; i <= NPCASES; i++)
    CHECK_EQ(hcsb_container_properties(
                 c, NULL, HCSB_PROPERTY_PROCESS_LIST | HCSB_PROPERTY_STATISTICS,
                 props_cb, &res[i]),
             0);
  faults_in_api = 0;
  RUN_UNTIL(&f.loop, res[NPCASES].n == 1);
  for (size_t i = 0; i < NPCASES; i++)
    if (res[i].n != 1 || res[i].status != pcases[i].status)
      hcsb_test_fail(
          __FILE__, __LINE__,
          "properties case %zu (%s): %d callbacks, status %d, want %d", i,
          pcases[i].props, res[i].n, res[i].status, pcases[i].status);
  const pres_t *ok = &res[NPCASES - 1];
  CHECK_EQ(ok->props.nprocesses, 1);
  CHECK_U64(ok->pid0, 4294967295u);
  CHECK_U64(ok->kt0, UINT64_MAX);
  CHECK_STR(ok->image0, "a\xc3\xa9");
  CHECK_U64(ok->props.statistics.pids_current, UINT64_MAX);
  CHECK_U64(ok->props.statistics.blkio_read_bytes, UINT64_MAX);
  const pres_t *big = &res[NPCASES];
  CHECK_EQ(big->status, 0);
  CHECK_EQ(big->props.nprocesses, BIG_LIST);
  CHECK_EQ(big->pid0, 1);
  CHECK_EQ(big->pid_last, BIG_LIST);
  CHECK_EQ(f.lost_n, 0);
  hcsb_container_close(c, fclosed_cb, &closed);
  RUN_UNTIL(&f.loop, closed == 1);
  fconn_finish(&f);
  free(big_list);
}

/* ------------------------------------------------------------------------ */
/* The bridge hands the API's Properties texts over unchecked, because the
 * API's scanner (src/api/jscan.h) is as strict as the validator: a text
 * fails with -EPROTO exactly when hcsb__json_validate() refuses it,
 * wherever the fault sits (a field read, a value skipped, a key). */

static char *nested(unsigned depth) {
  /* {"Other":[[...]]}: `depth` levels in all. */
  char *t = malloc(2 * depth + 16), *p;
  CHECK(t != NULL);
  p = stpcpy(t, "{\"Other\":");
  for (unsigned i = 1; i < depth; i++) *p++ = '[';
  for (unsigned i = 1; i < depth; i++) *p++ = ']';
  strcpy(p, "}");
  return t;
}

static const char *const strict_texts[] = {
    /* Not JSON. */
    "{\"ProcessList\":[{\"ProcessId\":01}]}",
    "{\"ProcessList\":[{\"ImageName\":\"a\\qb\"}]}",
    "{\"ProcessList\":[{\"ImageName\":\"a\\u12\"}]}",
    "{\"ProcessList\":[{\"ImageName\":\"a\x01b\"}]}",
    "{\"ProcessList\":[{\"ImageName\":\"a\xff\"}]}",
    "{\"ProcessList\":[{\"ImageName\":\"\xed\xa0\x80\"}]}",
    "{\"ProcessList\":[{\"ProcessId\":1}],}",
    "{\"ProcessList\":[{\"ProcessId\":1},]}",
    "{\"ProcessList\":[{\"ProcessId\":1}]} x",
    "{\"Other\":[1,2,]}",
    "{\"Other\":{\"a\" 1}}",
    "{\"Other\":nul}",
    "{\"Other\":'x'}",
    "{\"Other\":NaN}",
    "{\"Other\":1.}",
    "{\"Other\":-}",
    "{\"Other\":\"\\x\"}",
    "{\"Oth\x01er\":1}",
    "{\"\xc3(\":1}",
    "{\"LCOWMetrics\":{\"cpu\":{\"usage\":{\"total\":01}}}}",
    "{\"LCOWMetrics\":{\"x\":[1,]}}",
    "{\"LCOWMetrics\":{\"blkio\":{\"io_serviced_recursive\":[{\"op\":"
    "\"R\\ad\"}]}}}",
    /* JSON, and fine. */
    "{\"Other\":{\"a\":[1,-2.5e3,true,false,null,\"\\u00e9\\ud83d\\ude00\"]},"
    "\"ProcessList\":[]}",
    " { \"ProcessList\" : [ { \"ProcessId\" : 1 } , null ] }  ",
    "{\"ProcessList\":null,\"LCOWMetrics\":null}",
    "{\"ProcessList\":[{\"ImageName\":\"\\ud800 lone\",\"ProcessId\":0}]}",
    "{\"LCOWMetrics\":{\"x\":{\"y\":[{}]},\"pids\":{\"current\":0}}}",
};
#define NSTRICT (sizeof strict_texts / sizeof strict_texts[0])
/* Two more, built: nested exactly as deep as allowed, and one deeper. */
#define NSTRICT_ALL (NSTRICT + 2)
static char *strict_built[2];

static const char *strict_text(size_t i) {
  return i < NSTRICT ? strict_texts[i] : strict_built[i - NSTRICT];
}

static void script_strict(fpeer_t *p) {
  fpeer_negotiate(p);
  for (size_t i = 0; i < NSTRICT_ALL; i++) {
    uint64_t id = fpeer_expect(p, G);
    char *body = props_body(strict_text(i));
    fpeer_send(p, HCSB_MSG_GET_PROPERTIES_RESPONSE, id, body);
    free(body);
  }
  fpeer_drain(p);
}

static void test_properties_scanner_as_strict_as_validator(void) {
  fconn_t f;
  hcsb_container_t *c;
  static pres_t res[NSTRICT_ALL];
  size_t invalid = 0;
  int closed = 0;

  strict_built[0] = nested(HCSB__JSON_MAX_DEPTH);
  strict_built[1] = nested(HCSB__JSON_MAX_DEPTH + 1);
  memset(res, 0, sizeof res);
  fconn_open(&f, script_strict, NULL, NULL, NULL);
  fconn_wait_open(&f, 0);
  CHECK_EQ(hcsb_conn_open_container(f.conn, "c1", &c), 0);
  faults_in_api = 1;
  for (size_t i = 0; i < NSTRICT_ALL; i++)
    CHECK_EQ(hcsb_container_properties(
                 c, NULL, HCSB_PROPERTY_PROCESS_LIST | HCSB_PROPERTY_STATISTICS,
                 props_cb, &res[i]),
             0);
  faults_in_api = 0;
  RUN_UNTIL(&f.loop, res[NSTRICT_ALL - 1].n == 1);
  for (size_t i = 0; i < NSTRICT_ALL; i++) {
    const char *t = strict_text(i);
    int valid = hcsb__json_validate(t, strlen(t), HCSB__JSON_MAX_DEPTH) >= 0;
    invalid += !valid;
    if (res[i].n != 1 || res[i].status != (valid ? 0 : -EPROTO))
      hcsb_test_fail(__FILE__, __LINE__,
                     "text %zu (%.60s): %d callbacks, status %d, the "
                     "validator says %s",
                     i, t, res[i].n, res[i].status,
                     valid ? "valid" : "invalid");
  }
  /* The table is what it says it is. */
  CHECK_EQ(invalid, 23);
  CHECK_EQ(f.lost_n, 0);
  hcsb_container_close(c, fclosed_cb, &closed);
  RUN_UNTIL(&f.loop, closed == 1);
  fconn_finish(&f);
  free(strict_built[0]);
  free(strict_built[1]);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY_T(json_bombs_and_bad_fields, 60),
    TEST_ENTRY_T(properties_bad_numbers_and_types, 60),
    TEST_ENTRY_T(properties_scanner_as_strict_as_validator, 60),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
