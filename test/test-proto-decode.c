/* Response and notification decoding, mostly with hostile bodies: every
 * case asserts the exact status, and for accepted bodies the exact values. */
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "runner.h"

static hcsb__decode_ctx_t ctx, slow_ctx;
static hcsb_response_t resp, slow_resp;
static hcsb_guest_error_t gerr, slow_gerr;
static int has_gerr, slow_has_gerr;

static int same_str(const char *a, const char *b) {
  return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int same_text(const char *a, size_t alen, const char *b, size_t blen) {
  return alen == blen && (a == b || (a && b && memcmp(a, b, alen) == 0));
}

/* The flat fast path must give exactly what the json-c path gives. */
static void check_paths_agree(void) {
  const hcsb_response_t *a = &resp, *b = &slow_resp;
  size_t i;

  CHECK_EQ(has_gerr, slow_has_gerr);
  CHECK_U64(a->type, b->type);
  CHECK_U64(a->id, b->id);
  CHECK_U64(a->result, b->result);
  CHECK(same_str(a->activity_id, b->activity_id));
  CHECK(a->body == b->body && a->body_len == b->body_len);
  CHECK_U64(a->version, b->version);
  CHECK((a->caps == NULL) == (b->caps == NULL));
  if (a->caps) CHECK_MEM(a->caps, b->caps, sizeof(*a->caps));
  CHECK_U64(a->process_id, b->process_id);
  CHECK_EQ(a->has_exit_code, b->has_exit_code);
  CHECK_U64(a->exit_code, b->exit_code);
  CHECK(same_text(a->properties, a->properties_len, b->properties,
                  b->properties_len));
  CHECK(same_text(a->guest_stacks, a->guest_stacks_len, b->guest_stacks,
                  b->guest_stacks_len));
  if (!has_gerr) return;
  CHECK_U64(gerr.hresult, slow_gerr.hresult);
  CHECK_STR(gerr.message, slow_gerr.message);
  CHECK_EQ(gerr.nrecords, slow_gerr.nrecords);
  for (i = 0; i < gerr.nrecords; i++) {
    CHECK_U64(gerr.records[i].result, slow_gerr.records[i].result);
    CHECK_STR(gerr.records[i].message, slow_gerr.records[i].message);
    CHECK(same_str(gerr.records[i].stack_trace,
                   slow_gerr.records[i].stack_trace));
    CHECK(same_str(gerr.records[i].module_name,
                   slow_gerr.records[i].module_name));
    CHECK(same_str(gerr.records[i].file_name, slow_gerr.records[i].file_name));
    CHECK_U64(gerr.records[i].line, slow_gerr.records[i].line);
    CHECK(same_str(gerr.records[i].function_name,
                   slow_gerr.records[i].function_name));
  }
}

/* Decodes `body` (len bytes) on both paths, checks they agree, and returns
 * the status; resp/gerr/has_gerr hold the fast path's result. */
static int dec_len(uint32_t type, const char *body, size_t len) {
  /* The body is copied to the very end of an allocation of its size (no
   * NUL), so ASan and valgrind see any read past it; the copy stays until
   * the next call (resp.body points at it). */
  static char *copy;
  int rs, rf;

  free(copy);
  copy = malloc(len > 0 ? len : 1);
  CHECK(copy != NULL);
  memcpy(copy, body, len);
  body = copy;
  rs = hcsb__response_decode(&slow_ctx, type, 42, body, len, &slow_resp,
                             &slow_gerr, &slow_has_gerr);
  rf =
      hcsb__response_decode(&ctx, type, 42, body, len, &resp, &gerr, &has_gerr);
  if (rs != rf)
    hcsb_test_fail(__FILE__, __LINE__, "paths disagree on %.*s: %d vs %d",
                   (int)len, body, rf, rs);
  check_paths_agree();
  return rf;
}

static int dec(uint32_t type, const char *body) {
  return dec_len(type, body, strlen(body));
}

#define WAIT HCSB_MSG_WAIT_FOR_PROCESS_RESPONSE
#define EXEC HCSB_MSG_EXECUTE_PROCESS_RESPONSE
#define PROPS HCSB_MSG_GET_PROPERTIES_RESPONSE
#define NEG HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE

static void setup(void) {
  CHECK_EQ(hcsb__decode_ctx_init(&ctx), 0);
  CHECK_EQ(hcsb__decode_ctx_init(&slow_ctx), 0);
  slow_ctx.flat_disabled = 1;
}

static void teardown(void) {
  hcsb__decode_ctx_free(&ctx);
  hcsb__decode_ctx_free(&slow_ctx);
}

static void test_result_values(void) {
  static const struct {
    const char *body;
    int rc;
    uint32_t result;
  } t[] = {
      {"{\"Result\":0}", 0, 0},
      {"{\"Result\":-1070137074}", 0, 0xC037010Eu},
      {"{\"Result\":-2147483648}", 0, 0x80000000u},
      {"{\"Result\":2147483647}", 0, 0x7FFFFFFFu},
      {"{\"result\":-2147467263}", 0, 0x80004001u}, /* key case ignored */
      {"{\"Result\":-0}", 0, 0},
      {"{\"Result\":2147483648}", -EPROTO, 0},
      {"{\"Result\":-2147483649}", -EPROTO, 0},
      {"{\"Result\":4294967295}", -EPROTO, 0},
      {"{\"Result\":18446744073709551616}", -EPROTO, 0},
      {"{\"Result\":\"0\"}", -EPROTO, 0},
      {"{\"Result\":0.0}", -EPROTO, 0},
      {"{\"Result\":1e2}", -EPROTO, 0},
      {"{\"Result\":true}", -EPROTO, 0},
      {"{\"Result\":null}", -EPROTO, 0},
      {"{\"Result\":[0]}", -EPROTO, 0},
      {"{}", -EPROTO, 0},
      {"{\"ActivityId\":\"x\"}", -EPROTO, 0},
  };
  size_t i;

  setup();
  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    int rc = dec(HCSB_MSG_START_RESPONSE, t[i].body);
    if (rc != t[i].rc)
      hcsb_test_fail(__FILE__, __LINE__, "%s: rc %d want %d", t[i].body, rc,
                     t[i].rc);
    if (rc == 0) {
      CHECK_U64(resp.result, t[i].result);
      CHECK_EQ(has_gerr, t[i].result != 0);
    } else {
      CHECK_EQ(has_gerr, 0);
      CHECK(ctx.root == NULL); /* nothing held after a failure */
    }
    CHECK_U64(resp.type, HCSB_MSG_START_RESPONSE);
    CHECK_U64(resp.id, 42);
    CHECK_EQ(resp.body_len, strlen(t[i].body));
  }
  teardown();
}

static void test_not_an_object(void) {
  static const char *const bodies[] = {"",
                                       " ",
                                       "[]",
                                       "1",
                                       "\"x\"",
                                       "null",
                                       "true",
                                       "{",
                                       "{\"Result\":0",
                                       "{\"Result\":0} x",
                                       "{\"Result\":0}{}",
                                       "{\"Result\":0,}",
                                       "{'Result':0}",
                                       "{\"Result\":NaN}"};
  size_t i;

  setup();
  for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
    CHECK_EQ(dec(WAIT, bodies[i]), -EPROTO);
  /* Trailing whitespace, as hcsshim's encoder writes it, is fine. */
  CHECK_EQ(dec(WAIT, "{\"Result\":0}\n \t\r"), 0);
  /* The body is parsed to its length exactly, not to a NUL. */
  CHECK_EQ(dec_len(WAIT, "{\"Result\":0}garbage", 12), 0);
  CHECK_EQ(dec_len(WAIT, "{\"Result\":0}garbage", 13), -EPROTO);
  CHECK_EQ(dec_len(WAIT, "{\"Result\":0}\0", 13), -EPROTO);
  teardown();
}

static void test_error_fields(void) {
  const hcsb_error_record_t *r;

  setup();
  CHECK_EQ(
      dec(WAIT,
          "{\"Result\":-2147023728,\"ActivityId\":\"a-id\","
          "\"ErrorMessage\":\"HRESULT: 0x80070490\",\"ErrorRecords\":["
          "{\"Result\":-2147023728,\"Message\":\"m1\",\"StackTrace\":\"st\","
          "\"ModuleName\":\"gcs\",\"FileName\":\"f.go\",\"Line\":35,"
          "\"FunctionName\":\"fn\"},"
          "{\"Result\":1,\"ModuleName\":\"gcs\",\"FileName\":\"\","
          "\"Line\":4294967295},"
          "null,"
          "{\"result\":2,\"message\":\"lower\",\"LINE\":0}]}"),
      0);
  CHECK_U64(resp.result, 0x80070490u);
  CHECK_STR(resp.activity_id, "a-id");
  CHECK_EQ(has_gerr, 1);
  CHECK_U64(gerr.hresult, 0x80070490u);
  CHECK_STR(gerr.message, "HRESULT: 0x80070490");
  CHECK_EQ(gerr.nrecords, 4);
  r = gerr.records;
  CHECK_U64(r[0].result, 0x80070490u);
  CHECK_STR(r[0].message, "m1");
  CHECK_STR(r[0].stack_trace, "st");
  CHECK_STR(r[0].module_name, "gcs");
  CHECK_STR(r[0].file_name, "f.go");
  CHECK_U64(r[0].line, 35);
  CHECK_STR(r[0].function_name, "fn");
  CHECK_U64(r[1].result, 1);
  CHECK_STR(r[1].message, ""); /* never NULL */
  CHECK(r[1].stack_trace == NULL);
  CHECK_STR(r[1].file_name, "");
  CHECK_U64(r[1].line, 0xFFFFFFFFu);
  CHECK(r[1].function_name == NULL);
  CHECK_U64(r[2].result, 0); /* null element: zero record */
  CHECK_STR(r[2].message, "");
  CHECK_U64(r[2].line, 0xFFFFFFFFu);
  CHECK_U64(r[3].result, 2);
  CHECK_STR(r[3].message, "lower");
  CHECK_U64(r[3].line, 0);
  CHECK(!has_gerr || resp.process_id == 0);

  /* ErrorMessage absent => ""; no records => NULL/0. */
  CHECK_EQ(dec(WAIT, "{\"Result\":-2147467259,\"ErrorMessage\":null}"), 0);
  CHECK_STR(gerr.message, "");
  CHECK_EQ(gerr.nrecords, 0);
  CHECK(gerr.records == NULL);
  CHECK(resp.activity_id == NULL);

  /* Success leaves the guest error alone. */
  memset(&gerr, 0x5a, sizeof(gerr));
  CHECK_EQ(dec(WAIT, "{\"Result\":0,\"ErrorMessage\":\"ignored\"}"), 0);
  CHECK_EQ(has_gerr, 0);
  teardown();
}

static void test_error_fields_wrong_types(void) {
  static const char *const bodies[] = {
      "{\"Result\":1,\"ErrorRecords\":{}}",
      "{\"Result\":1,\"ErrorRecords\":\"x\"}",
      "{\"Result\":1,\"ErrorRecords\":[1]}",
      "{\"Result\":1,\"ErrorRecords\":[[]]}",
      "{\"Result\":1,\"ErrorRecords\":[{\"Result\":\"1\"}]}",
      "{\"Result\":1,\"ErrorRecords\":[{\"Result\":2147483648}]}",
      "{\"Result\":1,\"ErrorRecords\":[{\"Message\":1}]}",
      "{\"Result\":1,\"ErrorRecords\":[{\"StackTrace\":[]}]}",
      "{\"Result\":1,\"ErrorRecords\":[{\"ModuleName\":false}]}",
      "{\"Result\":1,\"ErrorRecords\":[{\"FileName\":{}}]}",
      "{\"Result\":1,\"ErrorRecords\":[{\"Line\":-1}]}",
      "{\"Result\":1,\"ErrorRecords\":[{\"Line\":4294967296}]}",
      "{\"Result\":1,\"ErrorRecords\":[{\"Line\":1.5}]}",
      "{\"Result\":1,\"ErrorRecords\":[{\"FunctionName\":7}]}",
      "{\"Result\":1,\"ErrorMessage\":5}",
      "{\"Result\":1,\"ActivityId\":5}",
      "{\"Result\":0,\"ActivityId\":{}}",
  };
  size_t i;

  setup();
  for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
    if (dec(WAIT, bodies[i]) != -EPROTO)
      hcsb_test_fail(__FILE__, __LINE__, "accepted %s", bodies[i]);
    CHECK_EQ(has_gerr, 0);
  }
  /* Unknown keys of any type are ignored. */
  CHECK_EQ(dec(WAIT, "{\"Result\":0,\"Extra\":{\"a\":[1,2]},\"More\":1.5}"), 0);
  teardown();
}

static void test_error_records_bounded(void) {
  char *body = malloc(100000);
  size_t n, i;

  setup();
  n = (size_t)sprintf(body, "{\"Result\":1,\"ErrorRecords\":[");
  for (i = 0; i < 70; i++)
    n += (size_t)sprintf(body + n, "%s{\"Result\":%zu,\"Message\":\"r%zu\"}",
                         i ? "," : "", i, i);
  strcpy(body + n, "]}");
  CHECK_EQ(dec(WAIT, body), 0);
  CHECK_EQ(gerr.nrecords, HCSB__MAX_ERROR_RECORDS);
  CHECK_EQ(ctx.nrecs_omitted, 70 - HCSB__MAX_ERROR_RECORDS);
  CHECK_U64(gerr.records[63].result, 63);
  CHECK_STR(gerr.records[63].message, "r63");
  CHECK_STR(gerr.records[0].message, "r0");
  hcsb__decode_release(&ctx);
  CHECK_EQ(ctx.nrecs_omitted, 0);

  /* A bad record past the limit still fails the body. */
  strcpy(body + n, ",{\"Line\":\"x\"}]}");
  CHECK_EQ(dec(WAIT, body), -EPROTO);

  /* Back to a small response after the heap records. */
  CHECK_EQ(dec(WAIT, "{\"Result\":5,\"ErrorRecords\":[{\"Message\":\"one\"}]}"),
           0);
  CHECK_EQ(gerr.nrecords, 1);
  CHECK_STR(gerr.records[0].message, "one");
  free(body);
  teardown();
}

static void test_typed_fields(void) {
  setup();
  CHECK_EQ(dec(EXEC, "{\"Result\":0,\"ProcessId\":44}"), 0);
  CHECK_U64(resp.process_id, 44);
  CHECK_EQ(dec(EXEC, "{\"Result\":0,\"ProcessId\":4294967295}"), 0);
  CHECK_U64(resp.process_id, 0xFFFFFFFFu);
  CHECK_EQ(dec(EXEC, "{\"Result\":0,\"ProcessId\":4294967296}"), -EPROTO);
  CHECK_EQ(dec(EXEC, "{\"Result\":0,\"ProcessId\":-1}"), -EPROTO);
  CHECK_EQ(dec(EXEC, "{\"Result\":0,\"ProcessId\":\"44\"}"), -EPROTO);
  CHECK_EQ(dec(EXEC, "{\"Result\":0,\"ProcessId\":44.0}"), -EPROTO);

  CHECK_EQ(dec(WAIT, "{\"Result\":0,\"ExitCode\":143}"), 0);
  CHECK_EQ(resp.has_exit_code, 1);
  CHECK_U64(resp.exit_code, 143);
  CHECK_EQ(dec(WAIT, "{\"Result\":0,\"exitcode\":4294967295}"), 0);
  CHECK_U64(resp.exit_code, 0xFFFFFFFFu);
  CHECK_EQ(dec(WAIT, "{\"Result\":0,\"ExitCode\":0}"), 0);
  CHECK_EQ(resp.has_exit_code, 1);
  CHECK_U64(resp.exit_code, 0);
  CHECK_EQ(dec(WAIT, "{\"Result\":-1070137079}"), 0);
  CHECK_EQ(resp.has_exit_code, 0);
  CHECK_EQ(dec(WAIT, "{\"Result\":0,\"ExitCode\":-1}"), -EPROTO);
  CHECK_EQ(dec(WAIT, "{\"Result\":0,\"ExitCode\":1.5}"), -EPROTO);
  CHECK_EQ(dec(WAIT, "{\"Result\":0,\"ExitCode\":true}"), -EPROTO);

  /* Fields belong to their response type only. */
  CHECK_EQ(dec(EXEC, "{\"Result\":0,\"ExitCode\":\"not read here\"}"), 0);
  CHECK_EQ(resp.has_exit_code, 0);
  CHECK_EQ(dec(0x20109901u, "{\"Result\":-2147467263,\"ProcessId\":\"x\"}"), 0);
  CHECK_U64(resp.result, 0x80004001u);

  CHECK_EQ(dec(HCSB_MSG_DUMP_STACKS_RESPONSE,
               "{\"Result\":0,\"GuestStacks\":\"goroutine 1 "
               "[running]:\\n\\tx.go:1 \\u003cnil\\u003e\"}"),
           0);
  CHECK_STR(resp.guest_stacks, "goroutine 1 [running]:\n\tx.go:1 <nil>");
  CHECK_EQ(resp.guest_stacks_len, strlen(resp.guest_stacks));
  CHECK_EQ(
      dec(HCSB_MSG_DUMP_STACKS_RESPONSE, "{\"Result\":0,\"GuestStacks\":1}"),
      -EPROTO);
  teardown();
}

static void test_properties(void) {
  setup();
  CHECK_EQ(dec(PROPS,
               "{\"Result\":0,\"Properties\":"
               "\"{\\\"ProcessList\\\":[{\\\"ProcessId\\\":1},{"
               "\\\"ProcessId\\\":42}]}\"}"),
           0);
  CHECK_STR(resp.properties,
            "{\"ProcessList\":[{\"ProcessId\":1},{\"ProcessId\":42}]}");
  CHECK_EQ(resp.properties_len, strlen(resp.properties));

  /* An object instead of a string: accepted, exposed as compact text. */
  CHECK_EQ(
      dec(PROPS, "{\"Result\":0,\"Properties\":{ \"ProcessList\" : [ ] }}"), 0);
  CHECK_STR(resp.properties, "{\"ProcessList\":[]}");
  CHECK_EQ(resp.properties_len, 18);

  CHECK_EQ(dec(PROPS, "{\"Result\":0,\"Properties\":\"\"}"), 0);
  CHECK(resp.properties == NULL);
  CHECK_EQ(resp.properties_len, 0);
  CHECK_EQ(dec(PROPS, "{\"Result\":0}"), 0);
  CHECK(resp.properties == NULL);

  CHECK_EQ(dec(PROPS, "{\"Result\":0,\"Properties\":\"{not json\"}"), -EPROTO);
  CHECK_EQ(dec(PROPS, "{\"Result\":0,\"Properties\":\"{} x\"}"), -EPROTO);
  CHECK_EQ(dec(PROPS, "{\"Result\":0,\"Properties\":5}"), -EPROTO);
  CHECK_EQ(dec(PROPS, "{\"Result\":0,\"Properties\":true}"), -EPROTO);
  teardown();
}

static const char caps_body[] =
    "{\"Result\":0,\"ActivityId\":\"70a75da0-0c7b-49e9-9157-80727d7d28da\","
    "\"Version\":4,\"Capabilities\":{\"SupportedSchemaVersions\":[{\"Major\":2,"
    "\"Minor\":1}],\"RuntimeOsType\":\"Linux\",\"GuestDefinedCapabilities\":{"
    "\"NamespaceAddRequestSupported\":true,\"SignalProcessSupported\":true,"
    "\"DumpStacksSupported\":true,\"DeleteContainerStateSupported\":true}}}";

static void test_negotiate_caps(void) {
  const hcsb_caps_t *c;

  setup();
  CHECK_EQ(dec(NEG, caps_body), 0);
  CHECK_U64(resp.version, 4);
  CHECK_STR(resp.activity_id, "70a75da0-0c7b-49e9-9157-80727d7d28da");
  c = resp.caps;
  CHECK(c != NULL);
  CHECK_EQ(c->send_host_create_message, 0);
  CHECK_EQ(c->send_host_start_message, 0);
  CHECK_EQ(c->hvsocket_config_on_startup, 0);
  CHECK_EQ(c->send_lifecycle_notifications, 0);
  CHECK_EQ(c->modify_service_settings_supported, 0);
  CHECK_EQ(c->nschema_versions, 1);
  CHECK_U64(c->schema_versions[0].major, 2);
  CHECK_U64(c->schema_versions[0].minor, 1);
  CHECK_STR(c->runtime_os_type, "Linux");
  CHECK_EQ(c->guest.namespace_add_request_supported, 1);
  CHECK_EQ(c->guest.signal_process_supported, 1);
  CHECK_EQ(c->guest.dump_stacks_supported, 1);
  CHECK_EQ(c->guest.delete_container_state_supported, 1);
  CHECK_EQ(c->guest.update_container_supported, 0);
  CHECK_EQ(c->guest.log_forwarding_supported, 0);
  CHECK_EQ(c->guest.host_process_container_supported, 0);

  /* Windows-style: every flag set; no GuestDefinedCapabilities. */
  CHECK_EQ(
      dec(NEG,
          "{\"Result\":0,\"Version\":4,\"Capabilities\":{"
          "\"SendHostCreateMessage\":true,\"SendHostStartMessage\":true,"
          "\"HvSocketConfigOnStartup\":true,\"SendLifecycleNotifications\":"
          "true,\"ModifyServiceSettingsSupported\":true,"
          "\"SupportedSchemaVersions\":[{\"Major\":1,\"Minor\":0},null,"
          "{\"Major\":2},{},{},{},{},{},{\"Major\":9,\"Minor\":9}],"
          "\"RuntimeOsType\":\"WindowsWithAVeryLongOsTypeName\xc3\xa9\xc3\xa9"
          "\"}}"),
      0);
  c = resp.caps;
  CHECK_EQ(c->send_host_create_message, 1);
  CHECK_EQ(c->send_host_start_message, 1);
  CHECK_EQ(c->hvsocket_config_on_startup, 1);
  CHECK_EQ(c->send_lifecycle_notifications, 1);
  CHECK_EQ(c->modify_service_settings_supported, 1);
  CHECK_EQ(c->nschema_versions, 8); /* ninth dropped */
  CHECK_U64(c->schema_versions[0].major, 1);
  CHECK_U64(c->schema_versions[1].major, 0);
  CHECK_U64(c->schema_versions[2].major, 2);
  CHECK_U64(c->schema_versions[2].minor, 0);
  /* 31 bytes max, cut before a split UTF-8 sequence. */
  CHECK_STR(c->runtime_os_type, "WindowsWithAVeryLongOsTypeName");
  CHECK_EQ(c->guest.signal_process_supported, 0);

  CHECK_EQ(dec(NEG, "{\"Result\":-1070137076}"), 0);
  CHECK(resp.caps == NULL);
  CHECK_U64(resp.version, 0);

  CHECK_EQ(dec(NEG, "{\"Result\":0,\"Version\":-4}"), -EPROTO);
  CHECK_EQ(dec(NEG, "{\"Result\":0,\"Capabilities\":[]}"), -EPROTO);
  CHECK_EQ(
      dec(NEG, "{\"Result\":0,\"Capabilities\":{\"SendHostCreateMessage\":1}}"),
      -EPROTO);
  CHECK_EQ(
      dec(NEG,
          "{\"Result\":0,\"Capabilities\":{\"SupportedSchemaVersions\":{}}}"),
      -EPROTO);
  CHECK_EQ(
      dec(NEG,
          "{\"Result\":0,\"Capabilities\":{\"SupportedSchemaVersions\":[1]}}"),
      -EPROTO);
  CHECK_EQ(dec(NEG,
               "{\"Result\":0,\"Capabilities\":{\"SupportedSchemaVersions\":"
               "[{\"Major\":-2}]}}"),
           -EPROTO);
  CHECK_EQ(dec(NEG, "{\"Result\":0,\"Capabilities\":{\"RuntimeOsType\":1}}"),
           -EPROTO);
  CHECK_EQ(dec(NEG,
               "{\"Result\":0,\"Capabilities\":{\"GuestDefinedCapabilities\":"
               "true}}"),
           -EPROTO);
  CHECK_EQ(dec(NEG,
               "{\"Result\":0,\"Capabilities\":{\"GuestDefinedCapabilities\":"
               "{\"DumpStacksSupported\":\"yes\"}}}"),
           -EPROTO);
  teardown();
}

static void test_deep_nesting(void) {
  size_t depth = 10000, i, n = 0;
  char *body = malloc(2 * depth + 64);

  setup();
  n += (size_t)sprintf(body, "{\"Result\":0,\"x\":");
  for (i = 0; i < depth; i++) body[n++] = '[';
  for (i = 0; i < depth; i++) body[n++] = ']';
  body[n++] = '}';
  body[n] = '\0';
  CHECK_EQ(dec(WAIT, body), -EPROTO);

  /* The limit itself: the top object plus 63 arrays is fine, 64 is not. */
  n = (size_t)sprintf(body, "{\"Result\":0,\"x\":");
  for (i = 0; i < HCSB__JSON_MAX_DEPTH - 1; i++) body[n++] = '[';
  for (i = 0; i < HCSB__JSON_MAX_DEPTH - 1; i++) body[n++] = ']';
  strcpy(body + n, "}");
  CHECK_EQ(dec(WAIT, body), 0);
  n = (size_t)sprintf(body, "{\"Result\":0,\"x\":");
  for (i = 0; i < HCSB__JSON_MAX_DEPTH; i++) body[n++] = '[';
  for (i = 0; i < HCSB__JSON_MAX_DEPTH; i++) body[n++] = ']';
  strcpy(body + n, "}");
  CHECK_EQ(dec(WAIT, body), -EPROTO);
  free(body);
  teardown();
}

static void test_big_string(void) {
  size_t len = 1024 * 1024, n;
  char *body = malloc(len + 64);

  setup();
  n = (size_t)sprintf(body, "{\"Result\":1,\"ErrorMessage\":\"");
  memset(body + n, 'm', len);
  strcpy(body + n + len, "\"}");
  CHECK_EQ(dec(WAIT, body), 0);
  CHECK_EQ(strlen(gerr.message), len);
  CHECK(gerr.message[len - 1] == 'm');
  free(body);
  teardown();
}

static void test_invalid_utf8(void) {
  setup();
  /* Documented choice: rejected (a Go guest always writes valid UTF-8). */
  CHECK_EQ(dec(WAIT, "{\"Result\":1,\"ErrorMessage\":\"bad \xff byte\"}"),
           -EPROTO);
  CHECK_EQ(dec(WAIT, "{\"Result\":1,\"ErrorMessage\":\"\xed\xa0\x80\"}"),
           -EPROTO);
  CHECK_EQ(dec(WAIT, "{\"Result\":1,\"Unknown\":\"\xc0\x80\"}"), -EPROTO);
  CHECK_EQ(dec(WAIT, "{\"Result\":1,\"ErrorMessage\":\"caf\xc3\xa9\"}"), 0);
  CHECK_STR(gerr.message, "caf\xc3\xa9");
  /* Escaped surrogate pairs decode; a lone escaped surrogate becomes
   * U+FFFD, as in Go. */
  CHECK_EQ(
      dec(WAIT, "{\"Result\":1,\"ErrorMessage\":\"\\ud83d\\ude00\\ud800\"}"),
      0);
  CHECK_STR(gerr.message, "\xf0\x9f\x98\x80\xef\xbf\xbd");
  teardown();
}

static void test_release_and_reuse(void) {
  const char *msg;

  setup();
  /* Strings stay valid until release; decoding again replaces them. */
  CHECK_EQ(dec(WAIT, "{\"Result\":1,\"ErrorMessage\":\"first\"}"), 0);
  msg = gerr.message;
  CHECK_STR(msg, "first");
  CHECK_EQ(hcsb__response_decode(&ctx, WAIT, 1,
                                 "{\"Result\":2,\"ErrorMessage\":\"second\"}",
                                 36, &resp, &gerr, &has_gerr),
           0);
  CHECK_STR(gerr.message, "second");
  hcsb__decode_release(&ctx);
  hcsb__decode_release(&ctx); /* idempotent */
  CHECK(ctx.root == NULL);
  teardown();
}

/* ------------------------------------------------------------------------ */
/* Notifications */

static void test_notification(void) {
  static const char body[] =
      "{\"ContainerId\":\"gcspeer-c1\",\"ActivityId\":"
      "\"11506794-5aca-4abc-a491-3e54ad6f154a\",\"Type\":\"GracefulExit\","
      "\"Operation\":\"None\",\"Result\":0}";
  hcsb_notification_t n;

  setup();
  CHECK_EQ(hcsb__notification_decode(&ctx, body, sizeof(body) - 1, &n), 0);
  CHECK_STR(n.container_id, "gcspeer-c1");
  CHECK_STR(n.activity_id, "11506794-5aca-4abc-a491-3e54ad6f154a");
  CHECK_STR(n.type, "GracefulExit");
  CHECK_EQ(n.kind, HCSB_NOTIFY_GRACEFUL_EXIT);
  CHECK_STR(n.operation, "None");
  CHECK_U64(n.result, 0);
  CHECK(n.result_info == NULL);

#define NOTE(s) hcsb__notification_decode(&ctx, (s), strlen(s), &n)
  CHECK_EQ(NOTE("{\"containerid\":\"c\",\"type\":\"unexpectedexit\","
                "\"Result\":-1070137082,\"ResultInfo\":\"{\\\"Error\\\":1}\"}"),
           0);
  CHECK_STR(n.container_id, "c");
  CHECK(n.activity_id == NULL);
  CHECK_STR(n.type, "unexpectedexit");
  CHECK_EQ(n.kind, HCSB_NOTIFY_UNEXPECTED_EXIT);
  CHECK_STR(n.operation, "");
  CHECK_U64(n.result, 0xC0370106u);
  CHECK_STR(n.result_info, "{\"Error\":1}");

  CHECK_EQ(NOTE("{\"ContainerId\":\"c\",\"Type\":\"Hibernated\"}"), 0);
  CHECK_STR(n.type, "Hibernated");
  CHECK_EQ(n.kind, HCSB_NOTIFY_UNKNOWN);
  CHECK_EQ(NOTE("{\"ContainerId\":\"c\"}"), 0);
  CHECK_STR(n.type, "");
  CHECK_EQ(n.kind, HCSB_NOTIFY_UNKNOWN);
  CHECK_EQ(NOTE("{\"ContainerId\":\"c\",\"ResultInfo\":\"\"}"), 0);
  CHECK(n.result_info == NULL);

  CHECK_EQ(NOTE("{\"Type\":\"GracefulExit\"}"), -EPROTO);
  CHECK(n.container_id == NULL);
  CHECK_EQ(NOTE("{\"ContainerId\":null}"), -EPROTO);
  CHECK_EQ(NOTE("{\"ContainerId\":5}"), -EPROTO);
  CHECK_EQ(NOTE("{\"ContainerId\":\"c\",\"Type\":1}"), -EPROTO);
  CHECK_EQ(NOTE("{\"ContainerId\":\"c\",\"Operation\":[]}"), -EPROTO);
  CHECK_EQ(NOTE("{\"ContainerId\":\"c\",\"Result\":2147483648}"), -EPROTO);
  CHECK_EQ(NOTE("{\"ContainerId\":\"c\",\"ResultInfo\":\"{bad\"}"), -EPROTO);
  CHECK_EQ(NOTE("{\"ContainerId\":\"c\",\"ResultInfo\":3}"), -EPROTO);
  CHECK_EQ(NOTE("[\"ContainerId\"]"), -EPROTO);
  CHECK_EQ(NOTE(""), -EPROTO);
#undef NOTE
  teardown();
}

static void test_notification_type_parse(void) {
  static const struct {
    const char *s;
    hcsb_notification_type_t k;
  } t[] = {
      {"None", HCSB_NOTIFY_NONE},
      {"GracefulExit", HCSB_NOTIFY_GRACEFUL_EXIT},
      {"ForcedExit", HCSB_NOTIFY_FORCED_EXIT},
      {"UnexpectedExit", HCSB_NOTIFY_UNEXPECTED_EXIT},
      {"Reboot", HCSB_NOTIFY_REBOOT},
      {"Constructed", HCSB_NOTIFY_CONSTRUCTED},
      {"Started", HCSB_NOTIFY_STARTED},
      {"Paused", HCSB_NOTIFY_PAUSED},
      {"FORCEDEXIT", HCSB_NOTIFY_FORCED_EXIT},
      {"Unknown", HCSB_NOTIFY_UNKNOWN},
      {"", HCSB_NOTIFY_UNKNOWN},
      {"Graceful", HCSB_NOTIFY_UNKNOWN},
      {"GracefulExit ", HCSB_NOTIFY_UNKNOWN},
  };
  size_t i;

  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    CHECK_EQ(hcsb__notification_type_parse(t[i].s), t[i].k);
  CHECK_EQ(hcsb__notification_type_parse(NULL), HCSB_NOTIFY_UNKNOWN);
}

static void test_flat_fast_path(void) {
  static const char *const flat[] = {
      "{\"Result\":0,\"ActivityId\":\"70a75da0-0c7b-49e9-9157-80727d7d28da\","
      "\"ExitCode\":3}",
      " { \"Result\" : -1070137079 , \"ErrorMessage\" : \"timed out\" , "
      "\"ErrorRecords\" : null, \"Other\": \"x\", \"N\": -5 } \n",
      "{\"Result\":0,\"ActivityId\":null,\"ExitCode\":null}",
      "{\"Result\":0,\"ExitCode\":4294967295}",
      "{\"Result\":1,\"ErrorMessage\":\"a \\\"b\\\" \\\\ \\/ "
      "\\b\\f\\n\\r\\t\"}",
  };
  /* Each needs the json-c path: escapes, non-ASCII, nesting, a fraction,
   * a case variant, a repeat, a wrong type, a missing Result. */
  static const char *const not_flat[] = {
      "{\"Result\":0,\"ActivityId\":\"a\\u0041\"}",
      "{\"Result\":0,\"ErrorMessage\":\"caf\xc3\xa9\"}",
      "{\"Result\":0,\"X\":{}}",
      "{\"Result\":0,\"X\":[1]}",
      "{\"Result\":0,\"X\":1.5}",
      "{\"Result\":0,\"X\":true}",
      "{\"result\":0}",
      "{\"Result\":0,\"Result\":1}",
      "{\"Result\":0,\"ExitCode\":\"3\"}",
      "{\"Result\":0,\"ExitCode\":-1}",
      "{\"ExitCode\":3}",
      "{\"Result\":2147483648}",
      "{\"Result\":0}x",
  };
  size_t i;

  setup();
  for (i = 0; i < sizeof(flat) / sizeof(flat[0]); i++) {
    CHECK_EQ(dec(WAIT, flat[i]), 0);
    CHECK(ctx.root == NULL);      /* no json-c tree was built */
    CHECK(slow_ctx.root != NULL); /* ...while the other path built one */
  }
  CHECK_EQ(dec(WAIT, flat[0]), 0);
  CHECK_STR(resp.activity_id, "70a75da0-0c7b-49e9-9157-80727d7d28da");
  CHECK_U64(resp.exit_code, 3);
  CHECK_EQ(dec(WAIT, flat[1]), 0);
  CHECK_STR(gerr.message, "timed out");
  CHECK_U64(gerr.hresult, 0xC0370109u);

  for (i = 0; i < sizeof(not_flat) / sizeof(not_flat[0]); i++) {
    int rc = dec(WAIT, not_flat[i]);
    if (rc == 0) CHECK(ctx.root != NULL);
  }

  /* One-letter escapes are decoded on the fast path too. */
  CHECK_EQ(dec(WAIT, flat[4]), 0);
  CHECK(ctx.root == NULL);
  CHECK_STR(gerr.message, "a \"b\" \\ / \b\f\n\r\t");

  /* GetProperties: the JSON text inside "Properties" is read flat (the
   * answer a shim polling a container's processes gets all the time)... */
  {
    static const char *const props[] = {
        "{\"Result\":0,\"ActivityId\":\"70a75da0-0c7b-49e9-9157-80727d7d28da\","
        "\"Properties\":\"{\\\"ProcessList\\\":[{\\\"ProcessId\\\":1},"
        "{\\\"ProcessId\\\":42,\\\"ImageName\\\":\\\"a\\\\\\\\b\\\"}]}\"}",
        "{\"Result\":0,\"Properties\":\"\"}",
        "{\"Result\":0,\"Properties\":null}",
        "{\"Result\":0,\"Properties\":\" [1, 2] \"}",
    };
    for (i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
      CHECK_EQ(dec(PROPS, props[i]), 0);
      CHECK(ctx.root == NULL);
    }
    CHECK_EQ(dec(PROPS, props[0]), 0);
    CHECK_STR(resp.properties,
              "{\"ProcessList\":[{\"ProcessId\":1},"
              "{\"ProcessId\":42,\"ImageName\":\"a\\\\b\"}]}");
    CHECK_EQ(resp.properties_len, strlen(resp.properties));
    CHECK_EQ(dec(PROPS, props[1]), 0);
    CHECK(resp.properties == NULL && resp.properties_len == 0);
  }
  /* ...unless it is no JSON (the json-c path's error), not a string, or
   * escaped with \\u. */
  CHECK_EQ(dec(PROPS, "{\"Result\":0,\"Properties\":\"{\\\"a\\\":}\"}"),
           -EPROTO);
  CHECK_EQ(dec(PROPS, "{\"Result\":0,\"Properties\":{\"a\":1}}"), 0);
  CHECK(ctx.root != NULL);
  CHECK_EQ(dec(PROPS, "{\"Result\":0,\"Properties\":\"[\\u0031]\"}"), 0);
  CHECK(ctx.root != NULL);
  CHECK_EQ(dec(PROPS, "{\"Result\":0,\"Properties\":3}"), -EPROTO);
  CHECK_EQ(dec(WAIT, "{\"Result\":0,\"ActivityId\":\"a\\x\"}"), -EPROTO);

  /* Strings that do not fit the store go the json-c way. */
  {
    char body[5200];
    snprintf(body, sizeof(body), "{\"Result\":1,\"ErrorMessage\":\"%05000d\"}",
             7);
    CHECK_EQ(dec(WAIT, body), 0);
    CHECK(ctx.root != NULL);
    CHECK_EQ(strlen(gerr.message), 5000);
  }
  teardown();
}

/* The fast path's string store against the json-c path on many strings:
 * every mix of plain runs and escapes at every alignment (an escape's
 * letter in the next word, several escapes in one word, a quote right
 * after one), GUID-length ActivityIds, and bytes the fast path refuses. */
static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static unsigned rnd(unsigned n) {
  return (unsigned)(hcsb_test_xorshift(&rng_state) % n);
}

/* The start every successful answer of a Go guest has,
 * {"Result":0,"ActivityId":"<GUID>", is taken in word compares (flat.c):
 * the same values as the general way, every truncation refused exactly as
 * json-c refuses it, and near misses (another Result, a GUID one byte
 * longer or shorter or with an escape, the ActivityId repeated, spaces)
 * agree with json-c too. */
static void test_flat_go_head(void) {
  static const char guid[] = "70a75da0-0c7b-49e9-9157-80727d7d28da";
  static const char *const tails[] = {
      "}",
      ",\"Properties\":\"{\\\"ProcessList\\\":[{\\\"ProcessId\\\":1}]}\"}",
      ",\"ExitCode\":3}",
      " , \"ExitCode\" : 3 } ",
      ",\"ActivityId\":\"x\"}",
      ",\"activityid\":\"x\"}",
      ",\"ErrorMessage\":\"m\"}",
      "",
      ",",
      "}x",
      ",\"Properties\":\"[1]\",\"Properties\":\"[2]\"}",
      ",\"Properties\":\"\"}",
      ",\"Properties\":null}",
      ",\"Properties\":\"[1,]\"}",
      ",\"Properties\" :\"[1]\"}",
  };
  static const char *const heads[] = {
      "{\"Result\":0,\"ActivityId\":\"%s\"",
      "{\"Result\":1,\"ActivityId\":\"%s\"",
      "{\"Result\":0,\"ActivityId\":\"%s1\"",
      "{\"Result\":0,\"ActivityId\":\"%.35s\"",
      "{\"Result\":0,\"ActivityId\":\"%.34s\\\"\"",
      "{\"Result\":0,\"ActivityId\":\"%.35s\x01\"",
      "{\"Result\":0, \"ActivityId\":\"%s\"",
      "{\"Result\":0,\"ActivityID\":\"%s\"",
  };
  char body[256];
  size_t h, t, n, cut;
  unsigned fast = 0;

  setup();
  for (h = 0; h < sizeof heads / sizeof heads[0]; h++) {
    for (t = 0; t < sizeof tails / sizeof tails[0]; t++) {
      n = (size_t)snprintf(body, sizeof body, heads[h], guid);
      n += (size_t)snprintf(body + n, sizeof body - n, "%s", tails[t]);
      /* Every prefix, the whole body last. */
      for (cut = 0; cut <= n; cut++) {
        /* Properties are read in GetProperties answers only. */
        int rc =
            dec_len(strstr(tails[t], "Properties") && h % 2 == 0 ? PROPS : WAIT,
                    body, cut);
        if (cut == n && rc == 0 && ctx.root == NULL) fast++;
      }
    }
  }
  /* The Go shape itself, with its values. */
  snprintf(body, sizeof body, "{\"Result\":0,\"ActivityId\":\"%s\"%s", guid,
           tails[1]);
  CHECK_EQ(dec(PROPS, body), 0);
  CHECK(ctx.root == NULL);
  CHECK_STR(resp.activity_id, guid);
  CHECK_U64(resp.result, 0);
  CHECK_EQ(has_gerr, 0);
  CHECK(same_text(resp.properties, resp.properties_len,
                  "{\"ProcessList\":[{\"ProcessId\":1}]}", 33));
  snprintf(body, sizeof body, "{\"Result\":0,\"ActivityId\":\"%s\"}", guid);
  CHECK_EQ(dec(WAIT, body), 0);
  CHECK(ctx.root == NULL);
  CHECK_STR(resp.activity_id, guid);
  CHECK_EQ(resp.has_exit_code, 0);
  /* Most whole bodies were taken without json-c. */
  CHECK(fast >= 20);
  teardown();
}

/* Escapes and refused bytes at every place of strings of every length up
 * to a few blocks, so each falls at every offset of the 16-byte blocks and
 * 8-byte words the string store reads, near the body's end as well; and
 * each body cut short inside the string and right after it. */
static void test_flat_escape_positions(void) {
  static const char *const marks[] = {"\\\"", "\\\\",    "\\n",
                                      "\x01", "\\u0041", "\\"};
  char text[64], body[128];
  size_t pad, len, k, m, n;
  unsigned fast = 0;

  setup();
  for (pad = 0; pad < 3; pad++) {
    for (len = 0; len <= 40; len++) {
      for (k = 0; k <= len; k++) {
        for (m = 0; m < sizeof marks / sizeof marks[0]; m++) {
          memset(text, 'a', len);
          text[len] = '\0';
          n = (size_t)snprintf(
              body, sizeof body,
              "%.*s{\"Result\":1,\"ErrorMessage\":\"%.*s%s%s\"}", (int)pad,
              "   ", (int)k, text, marks[m], text + k);
          if (dec_len(WAIT, body, n) == 0 && ctx.root == NULL) fast++;
          dec_len(WAIT, body, n - 2); /* no closing quote */
          dec_len(WAIT, body, n - 3); /* inside the string */
        }
      }
    }
  }
  /* The escapes of ours were taken flat (3 of 6 marks, every place). */
  CHECK(fast >= 3 * 3 * 41 * 21);
  teardown();
}

static void test_flat_strings_random(void) {
  /* Pieces of a JSON string's text (as it appears between the quotes). */
  static const char *const pieces[] = {"a",        "0123456", "-",       "\\\"",
                                       "\\\\",     "\\n",     "\\/",     "\\t",
                                       "\\\"\\\"", "x\\\"y",  "\\u0041", "\x01",
                                       "\xc3\xa9", "\\q",     "01234567"};
  /* Pieces of JSON text inside a Properties string (valid when joined). */
  static const char *const items[] = {"\\\"ProcessId\\\"",
                                      "1",
                                      "42",
                                      "\\\"a\\\\\\\\b\\\"",
                                      "\\\"\\\"",
                                      "\\\"abcdefgh\\\"",
                                      "null",
                                      "{\\\"k\\\":2}"};
  char text[400], body[600];
  unsigned i, j, n, fast = 0, accepted = 0;

  setup();
  for (i = 0; i < 6000; i++) {
    size_t len = 0;
    int rc, field = (int)rnd(3);
    const char *pad = "       " + rnd(8);

    text[0] = '\0';
    if (field < 2) {
      n = rnd(12);
      for (j = 0; j < n; j++) {
        /* Mostly plain and escapes; now and then a refused piece. */
        unsigned k = rnd(100) < 95 ? rnd(10) : 10 + rnd(5);
        len +=
            (size_t)snprintf(text + len, sizeof(text) - len, "%s", pieces[k]);
      }
      if (field == 1 && rnd(2)) /* GUID length, give or take one */
        len = (size_t)snprintf(text, sizeof(text), "%.*s", 35 + (int)rnd(3),
                               "70a75da0-0c7b-49e9-9157-80727d7d28da0");
      snprintf(body, sizeof(body), "%s{\"Result\":%d,\"%s\":\"%s\"}", pad,
               field == 0, field == 0 ? "ErrorMessage" : "ActivityId", text);
      rc = dec(WAIT, body);
    } else {
      n = rnd(8);
      len = (size_t)snprintf(text, sizeof(text), "[");
      for (j = 0; j < n; j++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s",
                                j ? "," : "", items[rnd(8)]);
      snprintf(text + len, sizeof(text) - len, "]");
      snprintf(body, sizeof(body),
               "%s{\"Result\":0,\"ActivityId\":\"%.36s\",\"Properties\":"
               "\"%s\"}",
               pad, "70a75da0-0c7b-49e9-9157-80727d7d28da", text);
      rc = dec(PROPS, body);
    }
    if (rc == 0) accepted++;
    if (rc == 0 && ctx.root == NULL) fast++;
  }
  /* Most cases were taken by the fast path and agreed with json-c. */
  CHECK(accepted > 4000);
  CHECK(fast > 4000);
  teardown();
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(flat_fast_path),
    TEST_ENTRY(flat_strings_random),
    TEST_ENTRY(flat_go_head),
    TEST_ENTRY(flat_escape_positions),
    TEST_ENTRY(result_values),
    TEST_ENTRY(not_an_object),
    TEST_ENTRY(error_fields),
    TEST_ENTRY(error_fields_wrong_types),
    TEST_ENTRY(error_records_bounded),
    TEST_ENTRY(typed_fields),
    TEST_ENTRY(properties),
    TEST_ENTRY(negotiate_caps),
    TEST_ENTRY(deep_nesting),
    TEST_ENTRY(big_string),
    TEST_ENTRY(invalid_utf8),
    TEST_ENTRY(release_and_reuse),
    TEST_ENTRY(notification),
    TEST_ENTRY(notification_type_parse),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
