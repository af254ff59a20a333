/* Request encoding and the JSON writer/validator behind it: exact bytes
 * per request type, double-encoded fields that round-trip, escaping, and
 * rejection without side effects. */
#include <string.h>

#include "proto/proto.h"
#include "runner.h"

#define NULL_ID "00000000-0000-0000-0000-000000000000"
#define ACT "70a75da0-0c7b-49e9-9157-80727d7d28da"
#define BASE_NULL \
  "{\"ContainerId\":\"" NULL_ID "\",\"ActivityId\":\"" NULL_ID "\""
#define BASE_C1 "{\"ContainerId\":\"c1\",\"ActivityId\":\"" ACT "\""

static hcsb_request_t req_of(uint32_t type) {
  hcsb_request_t r;

  memset(&r, 0, sizeof(r));
  r.type = type;
  return r;
}

/* Encodes `r` and checks the header and the exact body. */
static void check_body(const hcsb_request_t *r, uint64_t id, const char *want) {
  hcsb__buf_t b = HCSB__BUF_INIT;
  hcsb__hdr_t h;
  int rc = hcsb__request_encode(&b, id, r);

  if (rc != 0) hcsb_test_fail(__FILE__, __LINE__, "encode = %d", rc);
  CHECK(b.len >= 16);
  hcsb__hdr_decode((const uint8_t *)b.data, &h);
  CHECK_U64(h.type, r->type);
  CHECK_U64(h.id, id);
  CHECK_EQ(h.size, b.len);
  if (b.len - 16 != strlen(want) || memcmp(b.data + 16, want, b.len - 16) != 0)
    hcsb_test_fail(__FILE__, __LINE__, "body\n  got  %.*s\n  want %s",
                   (int)(b.len - 16), b.data + 16, want);
  hcsb__buf_free(&b);
}

static void test_encode_negotiate(void) {
  hcsb_request_t r = req_of(HCSB_MSG_NEGOTIATE_PROTOCOL);

  r.u.negotiate.min_version = 4;
  r.u.negotiate.max_version = 4;
  check_body(&r, 0, BASE_NULL ",\"MinimumVersion\":4,\"MaximumVersion\":4}");
  r.activity_id = ACT;
  r.u.negotiate.min_version = 3;
  r.u.negotiate.max_version = 4294967295u;
  check_body(&r, 1,
             "{\"ContainerId\":\"" NULL_ID "\",\"ActivityId\":\"" ACT
             "\",\"MinimumVersion\":3,\"MaximumVersion\":4294967295}");
}

static void test_encode_base_only(void) {
  static const uint32_t types[] = {HCSB_MSG_START,
                                   HCSB_MSG_SHUTDOWN_GRACEFUL,
                                   HCSB_MSG_SHUTDOWN_FORCED,
                                   HCSB_MSG_DUMP_STACKS,
                                   HCSB_MSG_DELETE_CONTAINER_STATE,
                                   HCSB_MSG_UPDATE_CONTAINER,
                                   HCSB_MSG_LIFECYCLE_NOTIFICATION};
  size_t i;

  for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
    hcsb_request_t r = req_of(types[i]);
    check_body(&r, i, BASE_NULL "}");
    r.container_id = "c1";
    r.activity_id = ACT;
    check_body(&r, i, BASE_C1 "}");
  }
}

static void test_encode_wait_signal_resize(void) {
  hcsb_request_t r = req_of(HCSB_MSG_WAIT_FOR_PROCESS);

  r.container_id = "c1";
  r.activity_id = ACT;
  r.u.wait.pid = 1234;
  r.u.wait.timeout_ms = HCSB_INFINITE_WAIT;
  check_body(&r, 7, BASE_C1 ",\"ProcessId\":1234,\"TimeoutInMs\":4294967295}");

  r.type = HCSB_MSG_SIGNAL_PROCESS;
  r.u.signal.pid = 1234;
  r.u.signal.signal = 15;
  check_body(&r, 8, BASE_C1 ",\"ProcessId\":1234,\"Options\":{\"Signal\":15}}");
  r.u.signal.signal = 0; /* no Options: SIGKILL */
  check_body(&r, 8, BASE_C1 ",\"ProcessId\":1234}");
  r.u.signal.signal = -3;
  check_body(&r, 8, BASE_C1 ",\"ProcessId\":1234}");

  r.type = HCSB_MSG_RESIZE_CONSOLE;
  r.u.resize.pid = 0;
  r.u.resize.height = 65535;
  r.u.resize.width = 120;
  check_body(&r, 9, BASE_C1 ",\"ProcessId\":0,\"Height\":65535,\"Width\":120}");
}

static void test_encode_execute(void) {
  hcsb_request_t r = req_of(HCSB_MSG_EXECUTE_PROCESS);

  r.u.execute.process_parameters =
      "{\"CommandArgs\":[\"sh\"],\"EmulateConsole\":true}";
  r.u.execute.stdin_port = 1073741825;
  r.u.execute.stdout_port = 1073741826;
  r.u.execute.stderr_port = 1073741827;
  check_body(
      &r, 1,
      BASE_NULL
      ",\"Settings\":{\"ProcessParameters\":"
      "\"{\\\"CommandArgs\\\":[\\\"sh\\\"],\\\"EmulateConsole\\\":true}\","
      "\"VsockStdioRelaySettings\":{\"StdIn\":1073741825,"
      "\"StdOut\":1073741826,\"StdErr\":1073741827}}}");
  /* Zero ports are omitted; the object stays. */
  r.u.execute.process_parameters = "  {}\n";
  r.u.execute.stdin_port = 0;
  r.u.execute.stderr_port = 0;
  check_body(&r, 1,
             BASE_NULL
             ",\"Settings\":{\"ProcessParameters\":\"{}\","
             "\"VsockStdioRelaySettings\":{\"StdOut\":1073741826}}}");
  r.u.execute.stdout_port = 0;
  check_body(&r, 1,
             BASE_NULL
             ",\"Settings\":{\"ProcessParameters\":\"{}\","
             "\"VsockStdioRelaySettings\":{}}}");
  r.u.execute.stdout_port = 5;
  r.u.execute.omit_relay_settings = 1;
  check_body(&r, 1, BASE_NULL ",\"Settings\":{\"ProcessParameters\":\"{}\"}}");
}

static void test_encode_create_properties_modify(void) {
  hcsb_request_t r = req_of(HCSB_MSG_CREATE);

  r.container_id = "c1";
  r.activity_id = ACT;
  r.u.create.config = "{\"SchemaVersion\":{\"Major\":2,\"Minor\":1}}";
  check_body(&r, 3,
             BASE_C1
             ",\"ContainerConfig\":"
             "\"{\\\"SchemaVersion\\\":{\\\"Major\\\":2,\\\"Minor\\\":1}}\"}");

  r = req_of(HCSB_MSG_GET_PROPERTIES);
  check_body(&r, 4, BASE_NULL ",\"Query\":\"\"}");
  r.u.get_properties.query = "";
  check_body(&r, 4, BASE_NULL ",\"Query\":\"\"}");
  r.u.get_properties.query = "{\"PropertyTypes\":[\"ProcessList\"]}";
  check_body(&r, 4,
             BASE_NULL
             ",\"Query\":\"{\\\"PropertyTypes\\\":[\\\"ProcessList\\\"]}\"}");

  r = req_of(HCSB_MSG_MODIFY_SETTINGS);
  r.u.modify.request =
      "\n {\"RequestType\":\"Add\",\"ResourceType\":\"MappedVirtualDisk\","
      "\"Settings\":{\"Controller\":0,\"Lun\":1}} \t";
  check_body(
      &r, 5,
      BASE_NULL
      ",\"Request\":{\"RequestType\":\"Add\",\"ResourceType\":"
      "\"MappedVirtualDisk\",\"Settings\":{\"Controller\":0,\"Lun\":1}}}");

  r = req_of(HCSB_MSG_MODIFY_SERVICE_SETTINGS);
  r.u.service.property_type = "LogForwardService";
  r.u.service.settings =
      "{\"RPCType\":\"StartLogForwarding\",\"Settings\":\"\"}";
  check_body(&r, 6,
             BASE_NULL
             ",\"PropertyType\":\"LogForwardService\",\"Settings\":"
             "{\"RPCType\":\"StartLogForwarding\",\"Settings\":\"\"}}");
}

static void test_encode_raw_body(void) {
  hcsb_request_t r = req_of(0x10109901u); /* unknown type: fine when raw */
  hcsb__buf_t b = HCSB__BUF_INIT;

  r.raw_body = "not json at all";
  r.raw_len = 8;
  check_body(&r, 11, "not json");
  r.raw_body = "";
  r.raw_len = 0;
  CHECK_EQ(hcsb__request_encode(&b, 12, &r), 0);
  CHECK_EQ(b.len, 16);
  CHECK(b.data[4] == 16 && b.data[8] == 12);
  hcsb__buf_free(&b);
}

/* Parses the body of the single frame in `b`, then the JSON held as a
 * string in `key` (optionally inside `outer`), and compares it with `src`. */
static void check_double_encoded(const hcsb__buf_t *b, const char *outer,
                                 const char *key, const char *src) {
  json_object *body, *inner, *orig, *o, *s;

  CHECK_EQ(hcsb__json_parse(b->data + 16, b->len - 16, &body), 0);
  o = outer ? hcsb__json_get(body, outer) : body;
  CHECK(o != NULL);
  s = hcsb__json_get(o, key);
  CHECK(json_object_is_type(s, json_type_string));
  CHECK_EQ(hcsb__json_parse(json_object_get_string(s),
                            (size_t)json_object_get_string_len(s), &inner),
           0);
  CHECK_EQ(hcsb__json_parse(src, strlen(src), &orig), 0);
  CHECK(json_object_equal(inner, orig));
  json_object_put(orig);
  json_object_put(inner);
  json_object_put(body);
}

static void test_double_encoded_round_trip(void) {
  /* Quotes, backslashes, escapes, non-ASCII and HTML characters inside. */
  const char *cfg =
      "{\"Path\":\"C:\\\\dir\\\\x\",\"Args\":[\"a \\\"b\\\"\",\"tab\\there\"],"
      "\"Env\":{\"L\":\"caf\xc3\xa9 \xe2\x82\xac "
      "\xf0\x9f\x98\x80\",\"H\":\"<&>\"},"
      "\"U\":\"\\u0001\\ud83d\\ude00\",\"N\":-1.5e3,\"B\":[true,false,null]}";
  hcsb_request_t r = req_of(HCSB_MSG_CREATE);
  hcsb__buf_t b = HCSB__BUF_INIT;

  r.u.create.config = cfg;
  CHECK_EQ(hcsb__request_encode(&b, 1, &r), 0);
  check_double_encoded(&b, NULL, "ContainerConfig", cfg);
  b.len = 0;

  r = req_of(HCSB_MSG_EXECUTE_PROCESS);
  r.u.execute.process_parameters = cfg;
  CHECK_EQ(hcsb__request_encode(&b, 2, &r), 0);
  check_double_encoded(&b, "Settings", "ProcessParameters", cfg);
  b.len = 0;

  r = req_of(HCSB_MSG_GET_PROPERTIES);
  r.u.get_properties.query = cfg;
  CHECK_EQ(hcsb__request_encode(&b, 3, &r), 0);
  check_double_encoded(&b, NULL, "Query", cfg);
  hcsb__buf_free(&b);
}

static void test_put_string_escaping(void) {
  static const struct {
    const char *in;
    size_t len;
    const char *out;
  } t[] = {
      {"", 0, "\"\""},
      {"plain", 5, "\"plain\""},
      {"a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\""},
      {"\n\r\t\b\f", 5, "\"\\n\\r\\t\\u0008\\u000c\""},
      {"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\""},
      {"a\0b", 3, "\"a\\u0000b\""},
      {"<&>", 3, "\"<&>\""}, /* no HTML escaping, like hcsshim */
      {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
       "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
      {"\xe2\x80\xa8\xe2\x80\xa9", 6, "\"\\u2028\\u2029\""},
      /* Invalid UTF-8: stray continuation, truncated sequence, overlong,
       * surrogate, above U+10FFFF, 0xFF. */
      {"\x80", 1, "\"\\ufffd\""},
      {"\xc3", 1, "\"\\ufffd\""},
      {"\xe2\x82z", 3, "\"\\ufffd\\ufffdz\""},
      {"\xc0\xaf", 2, "\"\\ufffd\\ufffd\""},
      {"\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""},
      {"\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
      {"\xff", 1, "\"\\ufffd\""},
  };
  hcsb__buf_t b = HCSB__BUF_INIT;
  size_t i;

  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    b.len = 0;
    CHECK_EQ(hcsb__json_put_string(&b, t[i].in, t[i].len), 0);
    if (b.len != strlen(t[i].out) || memcmp(b.data, t[i].out, b.len) != 0)
      hcsb_test_fail(__FILE__, __LINE__, "case %zu: got %.*s want %s", i,
                     (int)b.len, b.data, t[i].out);
    /* Whatever went in, what comes out is valid JSON. */
    CHECK_EQ(hcsb__json_validate(b.data, b.len, 1), json_type_string);
  }
  hcsb__buf_free(&b);
}

static void test_container_id_escaped(void) {
  hcsb_request_t r = req_of(HCSB_MSG_START);
  hcsb__buf_t b = HCSB__BUF_INIT;
  json_object *o;

  r.container_id = "we\"ird\\id\n\xc3\xa9";
  check_body(&r, 1,
             "{\"ContainerId\":\"we\\\"ird\\\\id\\n\xc3\xa9\",\"ActivityId\":"
             "\"" NULL_ID "\"}");
  CHECK_EQ(hcsb__request_encode(&b, 1, &r), 0);
  CHECK_EQ(hcsb__json_parse(b.data + 16, b.len - 16, &o), 0);
  CHECK_STR(json_object_get_string(hcsb__json_get(o, "ContainerId")),
            r.container_id);
  json_object_put(o);
  hcsb__buf_free(&b);
}

static void test_encode_rejects(void) {
  static const char *const not_objects[] = {"",
                                            "   ",
                                            "[1]",
                                            "\"s\"",
                                            "1",
                                            "{} x",
                                            "{}{}",
                                            "{'a':1}",
                                            "{\"a\":1,}",
                                            "{\"a\":NaN}",
                                            "{\"a\":01}",
                                            "{\"a\"}",
                                            "{\"a\":\"\xff\"}",
                                            "{\"a\":\"\x01\"}",
                                            "{\"a\":tru}",
                                            "{\"a\":[}"};
  hcsb__buf_t b = HCSB__BUF_INIT;
  hcsb_request_t r;
  size_t i, len0;
  char *data0;

  /* Prime the buffer: a failed encode must leave it exactly as it was. */
  CHECK_EQ(hcsb__buf_append(&b, "prefix", 6), 0);
  data0 = b.data;
  len0 = b.len;

#define REJECT(req)                                         \
  do {                                                      \
    CHECK_EQ(hcsb__request_encode(&b, 1, &(req)), -EINVAL); \
    CHECK_EQ(b.len, len0);                                  \
    CHECK(b.data == data0);                                 \
    CHECK_MEM(b.data, "prefix", 6);                         \
  } while (0)

  r = req_of(0x10109901u);
  REJECT(r);
  r = req_of(0);
  REJECT(r);
  r = req_of(HCSB_MSG_NOTIFY_CONTAINER);
  REJECT(r);
  r = req_of(HCSB_MSG_CREATE_RESPONSE);
  REJECT(r);
  r = req_of(HCSB_MSG_CREATE); /* config missing */
  REJECT(r);
  r = req_of(HCSB_MSG_EXECUTE_PROCESS);
  REJECT(r);
  r = req_of(HCSB_MSG_MODIFY_SETTINGS);
  REJECT(r);
  r = req_of(HCSB_MSG_MODIFY_SERVICE_SETTINGS);
  r.u.service.settings = "{}";
  REJECT(r);
  r = req_of(HCSB_MSG_MODIFY_SERVICE_SETTINGS);
  r.u.service.property_type = "LogForwardService";
  REJECT(r);
  r = req_of(HCSB_MSG_START);
  r.activity_id = "not-a-guid";
  REJECT(r);
  r.activity_id = "";
  REJECT(r);

  for (i = 0; i < sizeof(not_objects) / sizeof(not_objects[0]); i++) {
    r = req_of(HCSB_MSG_CREATE);
    r.u.create.config = not_objects[i];
    REJECT(r);
    r = req_of(HCSB_MSG_EXECUTE_PROCESS);
    r.u.execute.process_parameters = not_objects[i];
    REJECT(r);
    r = req_of(HCSB_MSG_MODIFY_SETTINGS);
    r.u.modify.request = not_objects[i];
    REJECT(r);
    if (not_objects[i][0] != '\0') { /* "" is the documented empty Query */
      r = req_of(HCSB_MSG_GET_PROPERTIES);
      r.u.get_properties.query = not_objects[i];
      REJECT(r);
    }
  }
#undef REJECT
  hcsb__buf_free(&b);
}

static void test_encode_appends_without_realloc(void) {
  hcsb__buf_t b = HCSB__BUF_INIT;
  hcsb__decoder_t d;
  hcsb__frame_t f;
  hcsb_request_t r = req_of(HCSB_MSG_WAIT_FOR_PROCESS);
  size_t used, off = 0;
  char *data0;
  uint64_t id;

  /* With room in the buffer the hot path writes in place: no realloc. */
  CHECK_EQ(hcsb__buf_reserve(&b, 4096), 0);
  data0 = b.data;
  r.container_id = "c1";
  r.activity_id = ACT;
  r.u.wait.timeout_ms = HCSB_INFINITE_WAIT;
  for (id = 1; id <= 10; id++) {
    r.u.wait.pid = (uint32_t)id * 100;
    CHECK_EQ(hcsb__request_encode(&b, id, &r), 0);
  }
  CHECK(b.data == data0);
  hcsb__frame_set_id(b.data, 99);

  /* The frames decode back, in order, with their IDs. */
  hcsb__decoder_init(&d, 0);
  for (id = 1; id <= 10; id++) {
    CHECK_EQ(
        hcsb__decoder_feed(&d, (uint8_t *)b.data + off, b.len - off, &used, &f),
        HCSB__DEC_FRAME);
    off += used;
    CHECK_U64(f.hdr.id, id == 1 ? 99 : id);
    CHECK_U64(f.hdr.type, HCSB_MSG_WAIT_FOR_PROCESS);
  }
  CHECK_EQ(off, b.len);
  hcsb__decoder_free(&d);
  hcsb__buf_free(&b);
}

/* ------------------------------------------------------------------------ */
/* JSON helpers */

static void test_json_validate(void) {
  static const struct {
    const char *s;
    int want;
  } t[] = {
      {"{}", json_type_object},
      {" [ ] ", json_type_array},
      {"\"x\"", json_type_string},
      {"true", json_type_boolean},
      {"false", json_type_boolean},
      {"null", json_type_null},
      {"0", json_type_double},
      {"-0.5e+3", json_type_double},
      {"1E9", json_type_double},
      {"{\"a\":[1,{\"b\":null},\"\\u00e9\\ud83d\\ude00\\/\"]}\n",
       json_type_object},
      {"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", json_type_string},
      {"", -EPROTO},
      {" ", -EPROTO},
      {"{", -EPROTO},
      {"{\"a\":1,}", -EPROTO},
      {"[1,]", -EPROTO},
      {"[1 2]", -EPROTO},
      {"{'a':1}", -EPROTO},
      {"{a:1}", -EPROTO},
      {"NaN", -EPROTO},
      {"Infinity", -EPROTO},
      {"01", -EPROTO},
      {"1.", -EPROTO},
      {".5", -EPROTO},
      {"+1", -EPROTO},
      {"1e", -EPROTO},
      {"-", -EPROTO},
      {"tru", -EPROTO},
      {"nulll", -EPROTO},
      {"{} x", -EPROTO},
      {"{}/**/", -EPROTO},
      {"\"\\x\"", -EPROTO},
      {"\"\\u12g4\"", -EPROTO},
      {"\"\t\"", -EPROTO},
      {"\"\xff\"", -EPROTO},
      {"\"\xc0\xaf\"", -EPROTO},
      {"\"\xed\xa0\x80\"", -EPROTO},
      {"\"abc", -EPROTO},
  };
  size_t i;

  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    int r = hcsb__json_validate(t[i].s, strlen(t[i].s), 64);
    if (r != t[i].want)
      hcsb_test_fail(__FILE__, __LINE__, "validate(%s) = %d, want %d", t[i].s,
                     r, t[i].want);
  }
  /* An embedded NUL outside a string is not JSON. */
  CHECK_EQ(hcsb__json_validate("{}\0", 3, 64), -EPROTO);
  CHECK_EQ(hcsb__json_validate(NULL, 0, 64), -EPROTO);
  /* Depth: containers counted, scalars not. */
  CHECK_EQ(hcsb__json_validate("[[1]]", 5, 2), json_type_array);
  CHECK_EQ(hcsb__json_validate("[[[1]]]", 7, 2), -EPROTO);
  CHECK_EQ(hcsb__json_validate("{\"a\":{}}", 8, 1), -EPROTO);
  CHECK_EQ(hcsb__json_validate("[[],[],[]]", 10, 2), json_type_array);
}

static void test_json_parse_and_get(void) {
  json_object *o;

  CHECK_EQ(hcsb__json_parse("42", 2, &o), 0); /* bare number completes */
  CHECK(json_object_is_type(o, json_type_int));
  CHECK_EQ(json_object_get_int(o), 42);
  json_object_put(o);
  CHECK_EQ(hcsb__json_parse("null", 4, &o), 0);
  CHECK(o == NULL);
  CHECK_EQ(hcsb__json_parse(" true ", 6, &o), 0);
  CHECK(json_object_get_boolean(o));
  json_object_put(o);
  CHECK_EQ(hcsb__json_parse("{\"a\":1} \r\n\t", 11, &o), 0);
  json_object_put(o);
  CHECK_EQ(hcsb__json_parse("{\"a\":1} x", 9, &o), -EPROTO);
  CHECK(o == NULL);
  CHECK_EQ(hcsb__json_parse("{\"a\":1}", 5, &o), -EPROTO); /* cut short */

  {
    static const char keys[] =
        "{\"exitcode\":1,\"ExitCode\":2,\"RESULT\":3,\"N\":null}";
    CHECK_EQ(hcsb__json_parse(keys, sizeof(keys) - 1, &o), 0);
  }
  CHECK_EQ(json_object_get_int(hcsb__json_get(o, "ExitCode")), 2); /* exact */
  CHECK_EQ(json_object_get_int(hcsb__json_get(o, "Result")), 3);
  CHECK(hcsb__json_get(o, "N") == NULL); /* null = absent */
  CHECK(hcsb__json_get(o, "Missing") == NULL);
  CHECK(hcsb__json_get(NULL, "x") == NULL);
  json_object_put(o);

  CHECK_EQ(hcsb__json_parse("{\"a\":\"x/y\",\"b\":[1, 2]}", 22, &o), 0);
  CHECK_STR(hcsb__json_compact(o, NULL), "{\"a\":\"x/y\",\"b\":[1,2]}");
  json_object_put(o);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(encode_negotiate),
    TEST_ENTRY(encode_base_only),
    TEST_ENTRY(encode_wait_signal_resize),
    TEST_ENTRY(encode_execute),
    TEST_ENTRY(encode_create_properties_modify),
    TEST_ENTRY(encode_raw_body),
    TEST_ENTRY(double_encoded_round_trip),
    TEST_ENTRY(put_string_escaping),
    TEST_ENTRY(container_id_escaped),
    TEST_ENTRY(encode_rejects),
    TEST_ENTRY(encode_appends_without_realloc),
    TEST_ENTRY(json_validate),
    TEST_ENTRY(json_parse_and_get),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
