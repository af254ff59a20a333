/* Response and notification decoding (guest -> host).
 *
 * Lenient where Go's decoder is (keys matched case-insensitively, unknown
 * keys ignored, null = absent) and strict where a wrong value would be
 * misread (types and ranges of every field we read): the guest is
 * untrusted, so anything we cannot represent exactly is -EPROTO rather
 * than a guess.  Decoded strings point into the json-c tree held by the
 * context until hcsb__decode_release(). */
#include <stdlib.h>
#include <string.h>

#include "proto/flat.h"

#define INLINE_RECS \
  (sizeof(((hcsb__decode_ctx_t *)0)->rec_inline) / sizeof(hcsb_error_record_t))

int hcsb__decode_ctx_init(hcsb__decode_ctx_t *ctx) {
  memset(ctx, 0, sizeof(*ctx));
  ctx->tok = hcsb__json_tokener_new();
  if (ctx->tok == NULL) return -ENOMEM;
  ctx->recs = ctx->rec_inline;
  ctx->nrecs_cap = INLINE_RECS;
  return 0;
}

void hcsb__decode_release(hcsb__decode_ctx_t *ctx) {
  /* Flat responses (most) build no tree: nothing to call json-c for. */
  if (ctx->root != NULL) json_object_put(ctx->root);
  ctx->root = NULL;
  if (ctx->inner != NULL) json_object_put(ctx->inner);
  ctx->inner = NULL;
  ctx->nrecs_omitted = 0;
}

void hcsb__decode_ctx_free(hcsb__decode_ctx_t *ctx) {
  hcsb__decode_release(ctx);
  if (ctx->tok != NULL) json_tokener_free(ctx->tok);
  ctx->tok = NULL;
  if (ctx->recs != ctx->rec_inline) free(ctx->recs);
  ctx->recs = ctx->rec_inline;
  ctx->nrecs_cap = INLINE_RECS;
  free(ctx->props_copy);
  ctx->props_copy = NULL;
}

/* ------------------------------------------------------------------------ */
/* Typed field readers: 0 with the value (or "absent"), or -EPROTO. */

static int read_int(json_object *obj, const char *key, int64_t lo, int64_t hi,
                    int *present, int64_t *out) {
  json_object *v = hcsb__json_get(obj, key);
  int64_t x;

  *present = 0;
  if (v == NULL) return 0;
  if (!json_object_is_type(v, json_type_int)) return -EPROTO;
  /* json-c keeps values above INT64_MAX as uint64; they read back as
   * INT64_MAX, which every range below rejects. */
  x = json_object_get_int64(v);
  if (x < lo || x > hi) return -EPROTO;
  *present = 1;
  *out = x;
  return 0;
}

static int read_u32(json_object *obj, const char *key, int *present,
                    uint32_t *out) {
  int64_t x = 0;
  int r = read_int(obj, key, 0, UINT32_MAX, present, &x);

  if (r == 0 && *present) *out = (uint32_t)x;
  return r;
}

/* HRESULTs travel as signed int32 and are kept as their uint32 bits. */
static int read_hresult(json_object *obj, const char *key, int *present,
                        uint32_t *out) {
  int64_t x = 0;
  int r = read_int(obj, key, INT32_MIN, INT32_MAX, present, &x);

  if (r == 0 && *present) *out = (uint32_t)(int32_t)x;
  return r;
}

static int read_str(json_object *obj, const char *key, const char **out,
                    size_t *len) {
  json_object *v = hcsb__json_get(obj, key);

  *out = NULL;
  if (len != NULL) *len = 0;
  if (v == NULL) return 0;
  if (!json_object_is_type(v, json_type_string)) return -EPROTO;
  *out = json_object_get_string(v);
  if (len != NULL) *len = (size_t)json_object_get_string_len(v);
  return 0;
}

static int read_bool(json_object *obj, const char *key, int *out) {
  json_object *v = hcsb__json_get(obj, key);

  *out = 0;
  if (v == NULL) return 0;
  if (!json_object_is_type(v, json_type_boolean)) return -EPROTO;
  *out = json_object_get_boolean(v) ? 1 : 0;
  return 0;
}

/* Reads a child that must be an object (or absent: *out = NULL). */
static int read_obj(json_object *obj, const char *key, json_object **out) {
  json_object *v = hcsb__json_get(obj, key);

  *out = NULL;
  if (v == NULL) return 0;
  if (!json_object_is_type(v, json_type_object)) return -EPROTO;
  *out = v;
  return 0;
}

static int read_array(json_object *obj, const char *key, json_object **out) {
  json_object *v = hcsb__json_get(obj, key);

  *out = NULL;
  if (v == NULL) return 0;
  if (!json_object_is_type(v, json_type_array)) return -EPROTO;
  *out = v;
  return 0;
}

/* A double-encoded field ("JSON in a string"): the string must hold valid
 * JSON, whose text is exposed.  An empty string counts as absent.  Should a
 * guest send a plain object or array instead, its compact text is exposed
 * (more useful than failing a call whose meaning is clear). */
static int read_json_text(json_object *obj, const char *key, const char **out,
                          size_t *len) {
  json_object *v = hcsb__json_get(obj, key);
  size_t n = 0;

  *out = NULL;
  *len = 0;
  if (v == NULL) return 0;
  if (json_object_is_type(v, json_type_string)) {
    n = (size_t)json_object_get_string_len(v);
    if (n == 0) return 0;
    if (hcsb__json_validate(json_object_get_string(v), n,
                            HCSB__JSON_MAX_DEPTH) < 0)
      return -EPROTO;
    *out = json_object_get_string(v);
  } else if (json_object_is_type(v, json_type_object) ||
             json_object_is_type(v, json_type_array)) {
    *out = hcsb__json_compact(v, &n);
    if (*out == NULL) return -ENOMEM;
  } else {
    return -EPROTO;
  }
  *len = n;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Error records */

static int read_record(json_object *o, hcsb_error_record_t *rec) {
  int present;

  memset(rec, 0, sizeof(*rec));
  rec->message = "";
  rec->line = UINT32_MAX;
  if (o == NULL) return 0; /* null element: Go yields a zero record */
  if (!json_object_is_type(o, json_type_object)) return -EPROTO;
  if (read_hresult(o, "Result", &present, &rec->result) != 0 ||
      read_str(o, "Message", &rec->message, NULL) != 0 ||
      read_str(o, "StackTrace", &rec->stack_trace, NULL) != 0 ||
      read_str(o, "ModuleName", &rec->module_name, NULL) != 0 ||
      read_str(o, "FileName", &rec->file_name, NULL) != 0 ||
      read_u32(o, "Line", &present, &rec->line) != 0 ||
      read_str(o, "FunctionName", &rec->function_name, NULL) != 0)
    return -EPROTO;
  if (rec->message == NULL) rec->message = "";
  return 0;
}

static int read_records(hcsb__decode_ctx_t *ctx, json_object *arr,
                        size_t *nkept) {
  size_t n = json_object_array_length(arr), i, keep;
  hcsb_error_record_t scratch, *p;

  keep = n < HCSB__MAX_ERROR_RECORDS ? n : HCSB__MAX_ERROR_RECORDS;
  if (keep > ctx->nrecs_cap) {
    p = ctx->recs == ctx->rec_inline ? NULL : ctx->recs;
    p = realloc(p, HCSB__MAX_ERROR_RECORDS * sizeof(*p));
    if (p == NULL) return -ENOMEM;
    ctx->recs = p;
    ctx->nrecs_cap = HCSB__MAX_ERROR_RECORDS;
  }
  /* Records past the limit are still type-checked, so whether a body is
   * accepted does not depend on where a bad record sits. */
  for (i = 0; i < n; i++) {
    p = i < keep ? &ctx->recs[i] : &scratch;
    if (read_record(json_object_array_get_idx(arr, i), p) != 0) return -EPROTO;
  }
  ctx->nrecs_omitted = n - keep;
  *nkept = keep;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Capabilities */

static int read_schema_versions(hcsb_caps_t *caps, json_object *arr) {
  size_t n = json_object_array_length(arr), i, max;
  json_object *e;
  uint32_t major, minor;
  int present;

  max = sizeof(caps->schema_versions) / sizeof(caps->schema_versions[0]);
  for (i = 0; i < n; i++) {
    e = json_object_array_get_idx(arr, i);
    major = minor = 0;
    if (e != NULL) {
      if (!json_object_is_type(e, json_type_object) ||
          read_u32(e, "Major", &present, &major) != 0 ||
          read_u32(e, "Minor", &present, &minor) != 0)
        return -EPROTO;
    }
    if (caps->nschema_versions < max) {
      caps->schema_versions[caps->nschema_versions].major = major;
      caps->schema_versions[caps->nschema_versions].minor = minor;
      caps->nschema_versions++;
    }
  }
  return 0;
}

static void copy_os_type(hcsb_caps_t *caps, const char *s, size_t len) {
  size_t max = sizeof(caps->runtime_os_type) - 1;

  if (len > max) {
    /* Cut on a character boundary so the copy stays valid UTF-8. */
    len = max;
    while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80) len--;
  }
  memcpy(caps->runtime_os_type, s, len);
  caps->runtime_os_type[len] = '\0';
}

static int read_caps(hcsb_caps_t *caps, json_object *o) {
  json_object *arr, *g;
  const char *os;
  size_t os_len;

  memset(caps, 0, sizeof(*caps));
  if (read_bool(o, "SendHostCreateMessage", &caps->send_host_create_message) ||
      read_bool(o, "SendHostStartMessage", &caps->send_host_start_message) ||
      read_bool(o, "HvSocketConfigOnStartup",
                &caps->hvsocket_config_on_startup) ||
      read_bool(o, "SendLifecycleNotifications",
                &caps->send_lifecycle_notifications) ||
      read_bool(o, "ModifyServiceSettingsSupported",
                &caps->modify_service_settings_supported) ||
      read_array(o, "SupportedSchemaVersions", &arr) ||
      read_str(o, "RuntimeOsType", &os, &os_len) ||
      read_obj(o, "GuestDefinedCapabilities", &g))
    return -EPROTO;
  if (arr != NULL && read_schema_versions(caps, arr) != 0) return -EPROTO;
  if (os != NULL) copy_os_type(caps, os, os_len);
  if (g == NULL) return 0; /* missing = all false */
  if (read_bool(g, "NamespaceAddRequestSupported",
                &caps->guest.namespace_add_request_supported) ||
      read_bool(g, "SignalProcessSupported",
                &caps->guest.signal_process_supported) ||
      read_bool(g, "DumpStacksSupported", &caps->guest.dump_stacks_supported) ||
      read_bool(g, "DeleteContainerStateSupported",
                &caps->guest.delete_container_state_supported) ||
      read_bool(g, "UpdateContainerSupported",
                &caps->guest.update_container_supported) ||
      read_bool(g, "LogForwardingSupported",
                &caps->guest.log_forwarding_supported) ||
      read_bool(g, "HostProcessContainerSupported",
                &caps->guest.host_process_container_supported))
    return -EPROTO;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Responses */

static int parse_object(hcsb__decode_ctx_t *ctx, const char *body, size_t len) {
  int r;

  hcsb__decode_release(ctx);
  r = hcsb__json_parse_tok(ctx->tok, body, len, &ctx->root);
  if (r != 0) return r;
  if (!json_object_is_type(ctx->root, json_type_object)) return -EPROTO;
  return 0;
}

static int read_typed(hcsb__decode_ctx_t *ctx, uint32_t type,
                      hcsb_response_t *resp) {
  json_object *root = ctx->root, *caps;
  int present;

  switch (type) {
    case HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE:
      if (read_u32(root, "Version", &present, &resp->version) != 0 ||
          read_obj(root, "Capabilities", &caps) != 0)
        return -EPROTO;
      if (caps != NULL) {
        if (read_caps(&ctx->caps, caps) != 0) return -EPROTO;
        resp->caps = &ctx->caps;
      }
      return 0;
    case HCSB_MSG_EXECUTE_PROCESS_RESPONSE:
      return read_u32(root, "ProcessId", &present, &resp->process_id);
    case HCSB_MSG_WAIT_FOR_PROCESS_RESPONSE:
      return read_u32(root, "ExitCode", &resp->has_exit_code, &resp->exit_code);
    case HCSB_MSG_GET_PROPERTIES_RESPONSE:
      return read_json_text(root, "Properties", &resp->properties,
                            &resp->properties_len);
    case HCSB_MSG_DUMP_STACKS_RESPONSE:
      return read_str(root, "GuestStacks", &resp->guest_stacks,
                      &resp->guest_stacks_len);
    default:
      return 0;
  }
}

static int decode_response(hcsb__decode_ctx_t *ctx, uint32_t type,
                           const char *body, size_t len, hcsb_response_t *resp,
                           hcsb_guest_error_t *gerr, int *has_gerr) {
  json_object *root, *recs;
  const char *msg;
  size_t nrecs = 0;
  int present, r;

  r = parse_object(ctx, body, len);
  if (r != 0) return r;
  root = ctx->root;
  if (read_hresult(root, "Result", &present, &resp->result) != 0 || !present ||
      read_str(root, "ActivityId", &resp->activity_id, NULL) != 0 ||
      read_str(root, "ErrorMessage", &msg, NULL) != 0 ||
      read_array(root, "ErrorRecords", &recs) != 0)
    return -EPROTO;
  if (recs != NULL) {
    r = read_records(ctx, recs, &nrecs);
    if (r != 0) return r;
  }
  r = read_typed(ctx, type, resp);
  if (r != 0) return r;
  if (resp->result != 0) {
    if (gerr != NULL) {
      gerr->hresult = resp->result;
      gerr->message = msg != NULL ? msg : "";
      gerr->nrecords = nrecs;
      gerr->records = nrecs ? ctx->recs : NULL;
    }
    if (has_gerr != NULL) *has_gerr = 1;
  }
  return 0;
}

static void reset_response(hcsb_response_t *resp, uint32_t type, uint64_t id,
                           const char *body, size_t len, int *has_gerr) {
  /* Built whole rather than memset and then set: a memset of this size
   * becomes a string instruction, the literal a few vector stores. */
  *resp =
      (hcsb_response_t){.type = type, .id = id, .body = body, .body_len = len};
  if (has_gerr != NULL) *has_gerr = 0;
}

int hcsb__response_decode(hcsb__decode_ctx_t *ctx, uint32_t type, uint64_t id,
                          const char *body, size_t len, hcsb_response_t *resp,
                          hcsb_guest_error_t *gerr, int *has_gerr) {
  const char *msg;
  int r;

  hcsb__decode_release(ctx);
  reset_response(resp, type, id, body, len, has_gerr);
  if (!ctx->flat_disabled &&
      hcsb__response_decode_flat(ctx, type, body, len, resp, &msg)) {
    if (resp->result != 0) {
      if (gerr != NULL) {
        gerr->hresult = resp->result;
        gerr->message = msg != NULL ? msg : "";
        gerr->nrecords = 0;
        gerr->records = NULL;
      }
      if (has_gerr != NULL) *has_gerr = 1;
    }
    return 0;
  }
  reset_response(resp, type, id, body, len, has_gerr);
  r = decode_response(ctx, type, body, len, resp, gerr, has_gerr);
  if (r != 0) {
    /* Leave nothing pointing into a tree that is about to go. */
    hcsb__decode_release(ctx);
    reset_response(resp, type, id, body, len, has_gerr);
  }
  return r;
}

/* ------------------------------------------------------------------------ */
/* Notifications */

static const struct {
  const char *name;
  hcsb_notification_type_t kind;
} notification_types[] = {
    {"None", HCSB_NOTIFY_NONE},
    {"GracefulExit", HCSB_NOTIFY_GRACEFUL_EXIT},
    {"ForcedExit", HCSB_NOTIFY_FORCED_EXIT},
    {"UnexpectedExit", HCSB_NOTIFY_UNEXPECTED_EXIT},
    {"Reboot", HCSB_NOTIFY_REBOOT},
    {"Constructed", HCSB_NOTIFY_CONSTRUCTED},
    {"Started", HCSB_NOTIFY_STARTED},
    {"Paused", HCSB_NOTIFY_PAUSED},
};

hcsb_notification_type_t hcsb__notification_type_parse(const char *s) {
  size_t i;

  if (s == NULL) return HCSB_NOTIFY_UNKNOWN;
  for (i = 0; i < sizeof(notification_types) / sizeof(notification_types[0]);
       i++) {
    if (strcasecmp(s, notification_types[i].name) == 0)
      return notification_types[i].kind;
  }
  return HCSB_NOTIFY_UNKNOWN;
}

static int decode_notification(hcsb__decode_ctx_t *ctx, const char *body,
                               size_t len, hcsb_notification_t *out) {
  json_object *root;
  size_t info_len;
  int present, r;

  r = parse_object(ctx, body, len);
  if (r != 0) return r;
  root = ctx->root;
  if (read_str(root, "ContainerId", &out->container_id, NULL) != 0 ||
      out->container_id == NULL ||
      read_str(root, "ActivityId", &out->activity_id, NULL) != 0 ||
      read_str(root, "Type", &out->type, NULL) != 0 ||
      read_str(root, "Operation", &out->operation, NULL) != 0 ||
      read_hresult(root, "Result", &present, &out->result) != 0)
    return -EPROTO;
  r = read_json_text(root, "ResultInfo", &out->result_info, &info_len);
  if (r != 0) return r;
  if (out->type == NULL) out->type = "";
  if (out->operation == NULL) out->operation = "";
  out->kind = hcsb__notification_type_parse(out->type);
  return 0;
}

int hcsb__notification_decode(hcsb__decode_ctx_t *ctx, const char *body,
                              size_t len, hcsb_notification_t *out) {
  int r;

  memset(out, 0, sizeof(*out));
  r = decode_notification(ctx, body, len, out);
  if (r != 0) {
    hcsb__decode_release(ctx);
    memset(out, 0, sizeof(*out));
  }
  return r;
}
