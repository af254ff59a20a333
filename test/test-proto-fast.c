/* The protocol core's fast paths against their plain counterparts:
 * request templates against the generic encoder (byte for byte, every call
 * type), the word-at-a-time plain-byte scan against a byte loop, GUID
 * bytes against their text, and the ActivityId given as bytes. */
#include <stdlib.h>
#include <string.h>

#include "proto/plain.h"
#include "proto/proto.h"
#include "runner.h"

/* A small deterministic generator: the cases are the same every run. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void) {
  return hcsb_test_xorshift(&rng_state);
}

static void rnd_bytes(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rnd();
}

static void check_same(const hcsb__buf_t *a, const hcsb__buf_t *b,
                       const char *what, int line) {
  if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0)
    hcsb_test_fail(__FILE__, line,
                   "%s: %zu vs %zu bytes\n  generic  %.*s\n  template %.*s",
                   what, a->len, b->len, (int)(a->len > 16 ? a->len - 16 : 0),
                   a->data + 16, (int)(b->len > 16 ? b->len - 16 : 0),
                   b->data + 16);
}

/* Container IDs with everything the encoder escapes or passes through. */
static const char *const cids[] = {
    NULL,
    "c1",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "quote\"back\\slash\x01\x1f\tnl\n",
    "caf\xc3\xa9 \xe2\x80\xa8 bad\xff utf8",
};
static const char *const ocscs[] = {
    NULL,
    "{\"TraceID\":\"0102030405060708090a0b0c0d0e0f10\",\"SpanID\":"
    "\"0102030405060708\"}",
};

/* Fills `r` as a request of `type` with the variant's field values. */
static void fill(hcsb_request_t *r, uint32_t type, unsigned v) {
  static const char *const params[] = {
      "{\"CommandArgs\":[\"/bin/sh\",\"-c\",\"echo \\\"hi\\\"\"],"
      "\"WorkingDirectory\":\"/\",\"Environment\":{\"A\":\"1\"}}",
      "  {\"OCIProcess\":{\"args\":[\"caf\xc3\xa9\"]}}\n"};
  static const char *const queries[] = {
      NULL, "", "{\"PropertyTypes\":[\"ProcessList\",\"Statistics\"]}"};

  memset(r, 0, sizeof *r);
  r->type = type;
  r->container_id = cids[v % (sizeof cids / sizeof cids[0])];
  r->ocsc = ocscs[(v / 5) % 2];
  switch (type) {
    case HCSB_MSG_NEGOTIATE_PROTOCOL:
      r->u.negotiate.min_version = (uint32_t)rnd();
      r->u.negotiate.max_version = (uint32_t)rnd();
      break;
    case HCSB_MSG_CREATE:
      r->u.create.config = "{\"SchemaVersion\":{\"Major\":2,\"Minor\":1}}";
      break;
    case HCSB_MSG_EXECUTE_PROCESS:
      r->u.execute.process_parameters = params[v % 2];
      r->u.execute.stdin_port = (uint32_t)rnd() % 3;
      r->u.execute.stdout_port = (uint32_t)rnd();
      r->u.execute.stderr_port = (uint32_t)rnd() % 2;
      r->u.execute.omit_relay_settings = (int)(v % 3 == 2);
      break;
    case HCSB_MSG_WAIT_FOR_PROCESS:
      r->u.wait.pid = (uint32_t)rnd();
      r->u.wait.timeout_ms = v % 2 ? HCSB_INFINITE_WAIT : (uint32_t)rnd();
      break;
    case HCSB_MSG_SIGNAL_PROCESS:
      r->u.signal.pid = (uint32_t)rnd();
      r->u.signal.signal = (int)(v % 4) - 1;
      break;
    case HCSB_MSG_RESIZE_CONSOLE:
      r->u.resize.pid = (uint32_t)rnd();
      r->u.resize.height = (uint16_t)rnd();
      r->u.resize.width = (uint16_t)rnd();
      break;
    case HCSB_MSG_GET_PROPERTIES:
      r->u.get_properties.query = queries[v % 3];
      break;
    case HCSB_MSG_MODIFY_SETTINGS:
      r->u.modify.request =
          "{\"RequestType\":\"Add\",\"ResourceType\":\"MappedVirtualDisk\","
          "\"Settings\":{\"Controller\":0,\"Lun\":1}}";
      break;
    case HCSB_MSG_MODIFY_SERVICE_SETTINGS:
      r->u.service.property_type = v % 2 ? "LogForwardService" : "q\"x";
      r->u.service.settings = "{\"RPCType\":\"StartLogForwarding\"}";
      break;
    default:
      break;
  }
}

static const uint32_t every_type[] = {
    HCSB_MSG_NEGOTIATE_PROTOCOL,
    HCSB_MSG_CREATE,
    HCSB_MSG_START,
    HCSB_MSG_SHUTDOWN_GRACEFUL,
    HCSB_MSG_SHUTDOWN_FORCED,
    HCSB_MSG_EXECUTE_PROCESS,
    HCSB_MSG_WAIT_FOR_PROCESS,
    HCSB_MSG_SIGNAL_PROCESS,
    HCSB_MSG_RESIZE_CONSOLE,
    HCSB_MSG_GET_PROPERTIES,
    HCSB_MSG_MODIFY_SETTINGS,
    HCSB_MSG_DUMP_STACKS,
    HCSB_MSG_DELETE_CONTAINER_STATE,
    HCSB_MSG_UPDATE_CONTAINER,
    HCSB_MSG_LIFECYCLE_NOTIFICATION,
    HCSB_MSG_MODIFY_SERVICE_SETTINGS,
};

/* For every call type and a spread of field values: a template built once
 * and encoded with a fresh ActivityId and ID gives the generic encoder's
 * bytes for the same request with that ActivityId as (lower-case) text,
 * appended after what the buffer already held. */
static void test_templates_match_generic(void) {
  size_t t, cases = 0;

  for (t = 0; t < sizeof every_type / sizeof every_type[0]; t++) {
    for (unsigned v = 0; v < 30; v++) {
      hcsb_request_t r;
      hcsb__tmpl_t tmpl = HCSB__TMPL_INIT;
      hcsb__buf_t g = HCSB__BUF_INIT, o = HCSB__BUF_INIT, x = HCSB__BUF_INIT;
      uint8_t aid[16];
      char text[37];
      uint64_t id = rnd();

      fill(&r, every_type[t], v);
      CHECK_EQ(hcsb__tmpl_build(&tmpl, &r), 0);
      CHECK_U64(tmpl.type, every_type[t]);
      /* Something already in the buffers: the offsets are the frame's. */
      CHECK_EQ(hcsb__buf_append(&g, "prefix", 6), 0);
      CHECK_EQ(hcsb__buf_append(&o, "prefix", 6), 0);
      CHECK_EQ(hcsb__buf_append(&x, "prefix", 6), 0);

      rnd_bytes(aid, sizeof aid);
      hcsb__guid_format(aid, text);
      text[36] = '\0';
      r.activity_id = text;
      CHECK_EQ(hcsb__request_encode(&g, id, &r), 0);
      CHECK_EQ(hcsb__tmpl_encode(&o, id, &tmpl, aid), 0);
      check_same(&g, &o, "template", __LINE__);
      /* The encoder given the bytes, not the text, agrees too. */
      r.activity_id = "this text is ignored";
      CHECK_EQ(hcsb__request_encode_ex(&x, id, &r, aid, NULL), 0);
      check_same(&g, &x, "bytes", __LINE__);

      /* No ActivityId: the zero GUID, both ways. */
      g.len = o.len = 0;
      r.activity_id = NULL;
      CHECK_EQ(hcsb__request_encode(&g, id + 1, &r), 0);
      CHECK_EQ(hcsb__tmpl_encode(&o, id + 1, &tmpl, NULL), 0);
      check_same(&g, &o, "zero GUID", __LINE__);

      hcsb__tmpl_free(&tmpl);
      CHECK(tmpl.frame == NULL && tmpl.len == 0);
      hcsb__buf_free(&g);
      hcsb__buf_free(&o);
      hcsb__buf_free(&x);
      cases++;
    }
  }
  CHECK_EQ(cases, 30 * (sizeof every_type / sizeof every_type[0]));
}

/* The offset the encoder reports is where the ActivityId's text is; a raw
 * body has none, and its template is the frame itself. */
static void test_template_offsets_and_raw(void) {
  hcsb_request_t r;
  hcsb__buf_t b = HCSB__BUF_INIT;
  hcsb__tmpl_t t = HCSB__TMPL_INIT;
  size_t off = 99;
  uint8_t aid[16];

  fill(&r, HCSB_MSG_DUMP_STACKS, 1);
  r.activity_id = "70A75DA0-0C7B-49E9-9157-80727D7D28DA";
  CHECK_EQ(hcsb__request_encode_ex(&b, 5, &r, NULL, &off), 0);
  /* The caller's text is sent as it is, case included. */
  CHECK_MEM(b.data + off, r.activity_id, 36);
  CHECK_MEM(b.data + 16, "{\"ContainerId\":\"c1\",\"ActivityId\":\"", 34);
  CHECK_EQ(off, 16 + 34);

  memset(&r, 0, sizeof r);
  r.type = 0x10109901u;
  r.raw_body = "not json";
  r.raw_len = 8;
  b.len = 0;
  CHECK_EQ(hcsb__request_encode_ex(&b, 6, &r, NULL, &off), 0);
  CHECK_EQ(off, 0);
  CHECK_EQ(hcsb__tmpl_build(&t, &r), 0);
  CHECK_EQ(t.aid_off, 0);
  rnd_bytes(aid, sizeof aid);
  b.len = 0;
  CHECK_EQ(hcsb__tmpl_encode(&b, 7, &t, aid), 0);
  CHECK_EQ(b.len, 24);
  CHECK_MEM(b.data + 16, "not json", 8);
  CHECK(b.data[8] == 7);
  hcsb__tmpl_free(&t);
  hcsb__buf_free(&b);
}

/* A request the encoder refuses leaves the template as it was. */
static void test_template_refused(void) {
  hcsb_request_t r;
  hcsb__tmpl_t t = HCSB__TMPL_INIT;
  hcsb__buf_t a = HCSB__BUF_INIT, b = HCSB__BUF_INIT;

  fill(&r, HCSB_MSG_WAIT_FOR_PROCESS, 1);
  CHECK_EQ(hcsb__tmpl_build(&t, &r), 0);
  CHECK_EQ(hcsb__tmpl_encode(&a, 1, &t, NULL), 0);
  fill(&r, HCSB_MSG_CREATE, 1);
  r.u.create.config = "[not an object]";
  CHECK_EQ(hcsb__tmpl_build(&t, &r), -EINVAL);
  r.type = 0x10109901u; /* unknown, not raw */
  CHECK_EQ(hcsb__tmpl_build(&t, &r), -EINVAL);
  CHECK_EQ(hcsb__tmpl_encode(&b, 1, &t, NULL), 0);
  CHECK_EQ(a.len, b.len);
  CHECK_MEM(a.data, b.data, a.len);
  hcsb__tmpl_free(&t);
  hcsb__tmpl_free(&t); /* twice is fine */
  hcsb__buf_free(&a);
  hcsb__buf_free(&b);
}

/* ------------------------------------------------------------------------ */

static size_t plain_ref(const unsigned char *p, size_t n) {
  size_t i = 0;
  while (i < n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\')
    i++;
  return i;
}

/* Every special byte (and some plain ones) at every position of strings
 * of every length up to 40, at every alignment, against the byte loop. */
static void test_plain_run(void) {
  static const unsigned char specials[] = {0x00, 0x01, 0x1f, '"',  '\\',
                                           0x80, 0xc3, 0xff, 0x20, 0x7f,
                                           '!',  '#',  '[',  ']',  0x5b};
  unsigned char buf[64];
  size_t len, pos, k, off, checked = 0;

  for (len = 0; len <= 40; len++)
    for (off = 0; off < 8; off++)
      for (pos = 0; pos <= len; pos++)
        for (k = 0; k < sizeof specials; k++) {
          unsigned char *p = buf + off;
          for (size_t i = 0; i < len; i++) p[i] = (unsigned char)('a' + i % 26);
          if (pos < len) p[pos] = specials[k];
          /* A second special further on must not matter. */
          if (pos + 3 < len) p[pos + 3] = '"';
          CHECK_EQ(hcsb__plain_run(p, p + len), plain_ref(p, len));
          checked++;
        }
  /* Random bytes. */
  for (k = 0; k < 20000; k++) {
    len = rnd() % 48;
    for (size_t i = 0; i < len; i++) {
      uint64_t x = rnd();
      buf[i] =
          x % 4 ? (unsigned char)(0x20 + x % 0x60) : (unsigned char)(x >> 8);
    }
    CHECK_EQ(hcsb__plain_run(buf, buf + len), plain_ref(buf, len));
    checked++;
  }
  CHECK(checked > 100000);
}

/* ------------------------------------------------------------------------ */

static void test_guid_bytes(void) {
  static const char *const bad[] = {
      "",
      "70a75da0-0c7b-49e9-9157-80727d7d28d",
      "70a75da0-0c7b-49e9-9157-80727d7d28dab",
      "70a75da0x0c7b-49e9-9157-80727d7d28da",
      "70a75da0-0c7b-49e9-9157x80727d7d28da",
      "70a75da0-0c7b-49e9-9157-80727d7d28dg",
      "g0a75da0-0c7b-49e9-9157-80727d7d28da",
      "70a75da00c7b-49e9-9157-80727d7d28da-",
      "{70a75da0-0c7b-49e9-9157-80727d7d28da}",
  };
  uint8_t b[16], c[16], keep[16];
  char text[37];
  size_t i;

  for (i = 0; i < 1000; i++) {
    rnd_bytes(b, sizeof b);
    hcsb__guid_format(b, text);
    text[36] = '\0';
    CHECK(hcsb__guid_valid(text));
    CHECK_EQ(hcsb__guid_parse(text, c), 0);
    CHECK_MEM(b, c, 16);
    for (size_t j = 0; j < 36; j++)
      CHECK(text[j] == '-' || (text[j] >= '0' && text[j] <= '9') ||
            (text[j] >= 'a' && text[j] <= 'f'));
  }
  CHECK_EQ(hcsb__guid_parse("70A75DA0-0C7B-49E9-9157-80727D7D28DA", c), 0);
  CHECK_EQ(hcsb__guid_parse("70a75da0-0c7b-49e9-9157-80727d7d28da", b), 0);
  CHECK_MEM(b, c, 16);
  CHECK_U64(b[0], 0x70);
  CHECK_U64(b[15], 0xda);
  memset(keep, 0xAB, sizeof keep);
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    /* Exactly as long as the string, so reading past its NUL would be
     * caught by ASan and valgrind. */
    size_t n = strlen(bad[i]) + 1;
    char *s = malloc(n);
    CHECK(s != NULL);
    memcpy(s, bad[i], n);
    memcpy(c, keep, 16);
    CHECK_EQ(hcsb__guid_parse(s, c), -EINVAL);
    CHECK_MEM(c, keep, 16);
    CHECK(!hcsb__guid_valid(s));
    free(s);
  }
  CHECK_EQ(hcsb__guid_parse(NULL, c), -EINVAL);
}

static int cmp16(const void *a, const void *b) {
  return memcmp(a, b, 16);
}

/* ActivityIds from the seeded streams: version 4, the RFC 4122 variant,
 * no repeats within a stream, and two streams that differ. */
static void test_guid_rng(void) {
  enum { N = 20000 };
  hcsb__guid_rng_t a, b;
  uint8_t(*g)[16] = malloc(N * 16);
  uint8_t x[16], y[16];
  char text[37];
  CHECK(g != NULL);
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  for (size_t i = 0; i < N; i++) {
    hcsb__guid_rng_bytes(&a, g[i]);
    CHECK_EQ(g[i][6] >> 4, 4);
    CHECK_EQ(g[i][8] >> 6, 2);
    hcsb__guid_format(g[i], text);
    text[36] = '\0';
    CHECK(hcsb__guid_valid(text));
  }
  qsort(g, N, 16, cmp16);
  for (size_t i = 1; i < N; i++) CHECK(memcmp(g[i - 1], g[i], 16) != 0);
  hcsb__guid_rng_bytes(&a, x);
  hcsb__guid_rng_bytes(&b, y);
  CHECK(memcmp(x, y, 16) != 0);
  free(g);
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(templates_match_generic),
      TEST_ENTRY(template_offsets_and_raw),
      TEST_ENTRY(template_refused),
      TEST_ENTRY(plain_run),
      TEST_ENTRY(guid_bytes),
      TEST_ENTRY(guid_rng),
  };
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
