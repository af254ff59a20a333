/* Fuzz target: response and notification decoding (guest -> host).
 *
 * Input: [selector] [4-byte type, only when selector % 17 == 16] [body...]
 *
 * The selector picks the response type whose typed fields are read; the
 * body is then also decoded as a container notification, and as the same
 * response again on the reused context.  Every string handed back is read
 * to its end so ASan checks it lies in live memory, and the results are
 * checked against what proto.h promises.  The allocation-free fast path
 * for flat bodies (src/proto/flat.c) must agree exactly with the json-c
 * path, so each body is also decoded with the fast path disabled. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "proto/proto.h"

static const uint32_t response_types[16] = {
    HCSB_MSG_CREATE_RESPONSE,
    HCSB_MSG_START_RESPONSE,
    HCSB_MSG_SHUTDOWN_GRACEFUL_RESPONSE,
    HCSB_MSG_SHUTDOWN_FORCED_RESPONSE,
    HCSB_MSG_EXECUTE_PROCESS_RESPONSE,
    HCSB_MSG_WAIT_FOR_PROCESS_RESPONSE,
    HCSB_MSG_SIGNAL_PROCESS_RESPONSE,
    HCSB_MSG_RESIZE_CONSOLE_RESPONSE,
    HCSB_MSG_GET_PROPERTIES_RESPONSE,
    HCSB_MSG_MODIFY_SETTINGS_RESPONSE,
    HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE,
    HCSB_MSG_DUMP_STACKS_RESPONSE,
    HCSB_MSG_DELETE_CONTAINER_STATE_RESPONSE,
    HCSB_MSG_UPDATE_CONTAINER_RESPONSE,
    HCSB_MSG_LIFECYCLE_NOTIFICATION_RESPONSE,
    HCSB_MSG_MODIFY_SERVICE_SETTINGS_RESPONSE,
};

/* Keeps the compiler from dropping reads made only for ASan's sake. */
static volatile size_t sink;

static void touch(const char *s, size_t n) {
  size_t i, sum = 0;

  for (i = 0; i < n; i++) sum += (unsigned char)s[i];
  sink += sum;
}

static void touch_str(const char *s) {
  if (s != NULL) touch(s, strlen(s) + 1);
}

static int is_bool(int v) {
  return v == 0 || v == 1;
}

static void check_caps(const hcsb_caps_t *c) {
  size_t max = sizeof(c->schema_versions) / sizeof(c->schema_versions[0]);

  FUZZ_CHECK(is_bool(c->send_host_create_message));
  FUZZ_CHECK(is_bool(c->send_host_start_message));
  FUZZ_CHECK(is_bool(c->hvsocket_config_on_startup));
  FUZZ_CHECK(is_bool(c->send_lifecycle_notifications));
  FUZZ_CHECK(is_bool(c->modify_service_settings_supported));
  FUZZ_CHECK(c->nschema_versions <= max);
  FUZZ_CHECK(memchr(c->runtime_os_type, '\0', sizeof(c->runtime_os_type)));
  FUZZ_CHECK(is_bool(c->guest.namespace_add_request_supported));
  FUZZ_CHECK(is_bool(c->guest.signal_process_supported));
  FUZZ_CHECK(is_bool(c->guest.dump_stacks_supported));
  FUZZ_CHECK(is_bool(c->guest.delete_container_state_supported));
  FUZZ_CHECK(is_bool(c->guest.update_container_supported));
  FUZZ_CHECK(is_bool(c->guest.log_forwarding_supported));
  FUZZ_CHECK(is_bool(c->guest.host_process_container_supported));
}

static void check_gerr(const hcsb_guest_error_t *g, uint32_t result) {
  size_t i;

  FUZZ_CHECK(g->hresult == result);
  FUZZ_CHECK(g->message != NULL);
  touch_str(g->message);
  FUZZ_CHECK(g->nrecords <= HCSB__MAX_ERROR_RECORDS);
  FUZZ_CHECK((g->nrecords == 0) == (g->records == NULL));
  for (i = 0; i < g->nrecords; i++) {
    const hcsb_error_record_t *r = &g->records[i];
    FUZZ_CHECK(r->message != NULL);
    touch_str(r->message);
    touch_str(r->stack_trace);
    touch_str(r->module_name);
    touch_str(r->file_name);
    touch_str(r->function_name);
  }
}

/* Checks a successful decode; only the fields `type` owns may be set. */
static void check_response(const hcsb_response_t *r, uint32_t type, uint64_t id,
                           const char *body, size_t len) {
  FUZZ_CHECK(r->type == type && r->id == id);
  FUZZ_CHECK(r->body == body && r->body_len == len);
  touch_str(r->activity_id);

  if (type != HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE)
    FUZZ_CHECK(r->version == 0 && r->caps == NULL);
  if (r->caps != NULL) check_caps(r->caps);
  if (type != HCSB_MSG_EXECUTE_PROCESS_RESPONSE) FUZZ_CHECK(r->process_id == 0);
  if (type != HCSB_MSG_WAIT_FOR_PROCESS_RESPONSE)
    FUZZ_CHECK(!r->has_exit_code && r->exit_code == 0);
  FUZZ_CHECK(is_bool(r->has_exit_code));
  if (!r->has_exit_code) FUZZ_CHECK(r->exit_code == 0);

  if (type != HCSB_MSG_GET_PROPERTIES_RESPONSE)
    FUZZ_CHECK(r->properties == NULL);
  FUZZ_CHECK((r->properties == NULL) == (r->properties_len == 0));
  if (r->properties != NULL) {
    touch(r->properties, r->properties_len);
    /* Promised to be valid JSON text, however it arrived. */
    FUZZ_CHECK(hcsb__json_validate(r->properties, r->properties_len,
                                   HCSB__JSON_MAX_DEPTH) >= 0);
  }

  if (type != HCSB_MSG_DUMP_STACKS_RESPONSE)
    FUZZ_CHECK(r->guest_stacks == NULL);
  if (r->guest_stacks == NULL)
    FUZZ_CHECK(r->guest_stacks_len == 0);
  else
    touch(r->guest_stacks, r->guest_stacks_len);
}

/* On failure nothing is held and only type/id/body remain. */
static void check_failed(const hcsb__decode_ctx_t *ctx,
                         const hcsb_response_t *r, uint32_t type, uint64_t id,
                         const char *body, size_t len, int has_gerr) {
  FUZZ_CHECK(ctx->root == NULL && ctx->inner == NULL);
  FUZZ_CHECK(r->type == type && r->id == id);
  FUZZ_CHECK(r->body == body && r->body_len == len);
  FUZZ_CHECK(r->result == 0 && r->activity_id == NULL && r->caps == NULL);
  FUZZ_CHECK(r->properties == NULL && r->guest_stacks == NULL);
  FUZZ_CHECK(has_gerr == 0);
}

static int same_str(const char *a, const char *b) {
  if (a == NULL || b == NULL) return a == b;
  return strcmp(a, b) == 0;
}

static int same_mem(const char *a, const char *b, size_t n) {
  if (a == NULL || b == NULL) return a == b;
  return memcmp(a, b, n) == 0;
}

/* The fast path (a) against the json-c path (b): the same in every way. */
static void check_same(const hcsb_response_t *a, const hcsb_guest_error_t *ga,
                       int ha, const hcsb_response_t *b,
                       const hcsb_guest_error_t *gb, int hb) {
  size_t i;

  FUZZ_CHECK(a->result == b->result && a->version == b->version);
  FUZZ_CHECK(a->process_id == b->process_id);
  FUZZ_CHECK(a->has_exit_code == b->has_exit_code);
  FUZZ_CHECK(a->exit_code == b->exit_code);
  FUZZ_CHECK(same_str(a->activity_id, b->activity_id));
  FUZZ_CHECK(a->properties_len == b->properties_len);
  FUZZ_CHECK(same_mem(a->properties, b->properties, a->properties_len));
  FUZZ_CHECK(a->guest_stacks_len == b->guest_stacks_len);
  FUZZ_CHECK(same_mem(a->guest_stacks, b->guest_stacks, a->guest_stacks_len));
  FUZZ_CHECK((a->caps == NULL) == (b->caps == NULL));
  if (a->caps != NULL)
    FUZZ_CHECK(memcmp(a->caps, b->caps, sizeof(*a->caps)) == 0);
  FUZZ_CHECK(ha == hb);
  if (!ha) return;
  FUZZ_CHECK(ga->hresult == gb->hresult);
  FUZZ_CHECK(same_str(ga->message, gb->message));
  FUZZ_CHECK(ga->nrecords == gb->nrecords);
  for (i = 0; i < ga->nrecords; i++) {
    const hcsb_error_record_t *x = &ga->records[i], *y = &gb->records[i];
    FUZZ_CHECK(x->result == y->result && x->line == y->line);
    FUZZ_CHECK(same_str(x->message, y->message));
    FUZZ_CHECK(same_str(x->stack_trace, y->stack_trace));
    FUZZ_CHECK(same_str(x->module_name, y->module_name));
    FUZZ_CHECK(same_str(x->file_name, y->file_name));
    FUZZ_CHECK(same_str(x->function_name, y->function_name));
  }
}

static void check_notification(const hcsb_notification_t *n) {
  FUZZ_CHECK(n->container_id != NULL && n->type != NULL &&
             n->operation != NULL);
  touch_str(n->container_id);
  touch_str(n->activity_id);
  touch_str(n->type);
  touch_str(n->operation);
  touch_str(n->result_info);
  FUZZ_CHECK(n->kind == hcsb__notification_type_parse(n->type));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hcsb__decode_ctx_t ctx, tree;
  hcsb_response_t resp, again, slow;
  hcsb_guest_error_t gerr, slow_gerr;
  hcsb_notification_t note;
  uint32_t type;
  uint64_t id;
  const char *body;
  size_t len;
  int r, r2, has_gerr, slow_has_gerr, is_object;
  unsigned sel;

  if (size < 1) return 0;
  sel = data[0] % 17u;
  if (sel < 16) {
    type = response_types[sel];
    body = (const char *)data + 1;
    len = size - 1;
  } else {
    if (size < 5) return 0;
    type = (uint32_t)data[1] | (uint32_t)data[2] << 8 |
           (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
    body = (const char *)data + 5;
    len = size - 5;
  }
  id = (uint64_t)size * 0x9E3779B97F4A7C15ull;

  /* The strict validator is the gate: what it rejects never decodes. */
  is_object =
      hcsb__json_validate(body, len, HCSB__JSON_MAX_DEPTH) == json_type_object;

  FUZZ_CHECK(hcsb__decode_ctx_init(&ctx) == 0);

  memset(&gerr, 0, sizeof(gerr));
  r = hcsb__response_decode(&ctx, type, id, body, len, &resp, &gerr, &has_gerr);
  FUZZ_CHECK(r == 0 || r == -EPROTO || r == -ENOMEM);
  if (!is_object) FUZZ_CHECK(r == -EPROTO);
  if (r == 0) {
    check_response(&resp, type, id, body, len);
    FUZZ_CHECK(has_gerr == (resp.result != 0));
    if (has_gerr) check_gerr(&gerr, resp.result);
  } else {
    check_failed(&ctx, &resp, type, id, body, len, has_gerr);
  }

  FUZZ_CHECK(hcsb__decode_ctx_init(&tree) == 0);
  tree.flat_disabled = 1;
  memset(&slow_gerr, 0, sizeof(slow_gerr));
  r2 = hcsb__response_decode(&tree, type, id, body, len, &slow, &slow_gerr,
                             &slow_has_gerr);
  FUZZ_CHECK(r2 == r);
  if (r == 0)
    check_same(&resp, &gerr, has_gerr, &slow, &slow_gerr, slow_has_gerr);
  hcsb__decode_ctx_free(&tree);
  hcsb__decode_release(&ctx);

  r2 = hcsb__notification_decode(&ctx, body, len, &note);
  FUZZ_CHECK(r2 == 0 || r2 == -EPROTO || r2 == -ENOMEM);
  if (!is_object) FUZZ_CHECK(r2 == -EPROTO);
  if (r2 == 0)
    check_notification(&note);
  else
    FUZZ_CHECK(ctx.root == NULL && ctx.inner == NULL);

  /* Same body on the reused context (and the notification's tree still
   * held): same verdict, same values, and the gerr/has_gerr outputs are
   * optional. */
  r2 = hcsb__response_decode(&ctx, type, id, body, len, &again, NULL, NULL);
  FUZZ_CHECK(r2 == r);
  if (r == 0) {
    FUZZ_CHECK(again.result == resp.result && again.version == resp.version);
    FUZZ_CHECK(again.process_id == resp.process_id);
    FUZZ_CHECK(again.exit_code == resp.exit_code);
    FUZZ_CHECK(again.properties_len == resp.properties_len);
    FUZZ_CHECK(again.guest_stacks_len == resp.guest_stacks_len);
    check_response(&again, type, id, body, len);
  }

  hcsb__decode_ctx_free(&ctx);
  return 0;
}
