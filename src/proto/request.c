/* Request encoding (host -> guest).
 *
 * Bodies are written by hand straight into the output buffer: on the hot
 * path (wait, signal, exec) this costs no allocation at all once the write
 * buffer has grown, which json-c could not offer.  Field names and order
 * follow what hcsshim sends (protocol.md §5-§7).
 *
 * JSON texts supplied by the caller (ContainerConfig, ProcessParameters,
 * Query, the ModifySettings Request, service Settings) are validated and
 * then sent verbatim with surrounding whitespace trimmed: double-encoded
 * ones as an escaped string, nested ones as they are.  Re-serialising them
 * through json-c would only cost time and could alter numbers json-c cannot
 * represent. */
#include <string.h>

#include "proto/proto.h"

/* Depth allowed in caller-supplied JSON texts; the Go guest's own limit is
 * far higher, this only bounds our validator. */
#define SEND_MAX_DEPTH 1024u

static int put(hcsb__buf_t *b, const char *lit, size_t n) {
  return hcsb__buf_append(b, lit, n);
}

#define PUT_LIT(b, s) put((b), (s), sizeof(s) - 1)

static int put_u64(hcsb__buf_t *b, uint64_t v) {
  char tmp[20];
  size_t i = sizeof(tmp);

  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return put(b, tmp + i, sizeof(tmp) - i);
}

static int put_i64(hcsb__buf_t *b, int64_t v) {
  if (v < 0) {
    if (PUT_LIT(b, "-") != 0) return -ENOMEM;
    return put_u64(b, (uint64_t)0 - (uint64_t)v);
  }
  return put_u64(b, (uint64_t)v);
}

static int put_str(hcsb__buf_t *b, const char *s) {
  return hcsb__json_put_string(b, s, strlen(s));
}

/* `,"Key":` followed by an unsigned number. */
static int put_field_u64(hcsb__buf_t *b, const char *key_lit, size_t key_len,
                         uint64_t v) {
  if (put(b, key_lit, key_len) != 0) return -ENOMEM;
  return put_u64(b, v);
}

#define PUT_FIELD_U64(b, k, v) put_field_u64((b), (k), sizeof(k) - 1, (v))

static int is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const char *trim(const char *text, size_t *len) {
  size_t n = strlen(text);

  while (n > 0 && is_ws(*text)) text++, n--;
  while (n > 0 && is_ws(text[n - 1])) n--;
  *len = n;
  return text;
}

/* Appends a caller-supplied JSON object text as a nested value. */
static int put_nested(hcsb__buf_t *b, const char *text) {
  size_t len;

  text = trim(text, &len);
  return put(b, text, len);
}

/* Appends a caller-supplied JSON text double-encoded (as a string). */
static int put_json_string(hcsb__buf_t *b, const char *text) {
  size_t len;

  text = trim(text, &len);
  return hcsb__json_put_string(b, text, len);
}

/* A caller-supplied JSON text must be one JSON object. */
static int check_object(const char *text) {
  if (text == NULL) return -EINVAL;
  if (hcsb__json_validate(text, strlen(text), SEND_MAX_DEPTH) !=
      json_type_object)
    return -EINVAL;
  return 0;
}

/* Everything that can make a request unencodable is checked before a byte
 * is written, so a failure other than -ENOMEM never touches `out`.  The
 * ActivityId text is only looked at when no bytes were given for it. */
static int check(const hcsb_request_t *req, const uint8_t *aid) {
  if (aid == NULL && req->activity_id != NULL &&
      !hcsb__guid_valid(req->activity_id))
    return -EINVAL;
  if (req->ocsc != NULL && check_object(req->ocsc) != 0) return -EINVAL;
  switch (req->type) {
    case HCSB_MSG_NEGOTIATE_PROTOCOL:
    case HCSB_MSG_START:
    case HCSB_MSG_SHUTDOWN_GRACEFUL:
    case HCSB_MSG_SHUTDOWN_FORCED:
    case HCSB_MSG_WAIT_FOR_PROCESS:
    case HCSB_MSG_SIGNAL_PROCESS:
    case HCSB_MSG_RESIZE_CONSOLE:
    case HCSB_MSG_DUMP_STACKS:
    case HCSB_MSG_DELETE_CONTAINER_STATE:
    case HCSB_MSG_UPDATE_CONTAINER:
    case HCSB_MSG_LIFECYCLE_NOTIFICATION:
      return 0;
    case HCSB_MSG_CREATE:
      return check_object(req->u.create.config);
    case HCSB_MSG_EXECUTE_PROCESS:
      return check_object(req->u.execute.process_parameters);
    case HCSB_MSG_GET_PROPERTIES:
      if (req->u.get_properties.query == NULL ||
          req->u.get_properties.query[0] == '\0')
        return 0;
      return check_object(req->u.get_properties.query);
    case HCSB_MSG_MODIFY_SETTINGS:
      return check_object(req->u.modify.request);
    case HCSB_MSG_MODIFY_SERVICE_SETTINGS:
      if (req->u.service.property_type == NULL) return -EINVAL;
      return check_object(req->u.service.settings);
    default:
      return -EINVAL;
  }
}

static int put_relay_port(hcsb__buf_t *b, int *first, const char *key,
                          uint32_t port) {
  if (port == 0) return 0;
  if (!*first && PUT_LIT(b, ",") != 0) return -ENOMEM;
  *first = 0;
  if (PUT_LIT(b, "\"") != 0 || put(b, key, strlen(key)) != 0 ||
      PUT_LIT(b, "\":") != 0)
    return -ENOMEM;
  return put_u64(b, port);
}

static int put_execute(hcsb__buf_t *b, const hcsb_request_t *req) {
  int first = 1;

  if (PUT_LIT(b, ",\"Settings\":{\"ProcessParameters\":") != 0 ||
      put_json_string(b, req->u.execute.process_parameters) != 0)
    return -ENOMEM;
  if (!req->u.execute.omit_relay_settings) {
    if (PUT_LIT(b, ",\"VsockStdioRelaySettings\":{") != 0 ||
        put_relay_port(b, &first, "StdIn", req->u.execute.stdin_port) != 0 ||
        put_relay_port(b, &first, "StdOut", req->u.execute.stdout_port) != 0 ||
        put_relay_port(b, &first, "StdErr", req->u.execute.stderr_port) != 0 ||
        PUT_LIT(b, "}") != 0)
      return -ENOMEM;
  }
  return PUT_LIT(b, "}");
}

/* The fields after the base; every request has the base. */
static int put_fields(hcsb__buf_t *b, const hcsb_request_t *req) {
  switch (req->type) {
    case HCSB_MSG_NEGOTIATE_PROTOCOL:
      if (PUT_FIELD_U64(
              b, ",\"MinimumVersion\":", req->u.negotiate.min_version) != 0)
        return -ENOMEM;
      return PUT_FIELD_U64(
          b, ",\"MaximumVersion\":", req->u.negotiate.max_version);
    case HCSB_MSG_CREATE:
      if (PUT_LIT(b, ",\"ContainerConfig\":") != 0) return -ENOMEM;
      return put_json_string(b, req->u.create.config);
    case HCSB_MSG_EXECUTE_PROCESS:
      return put_execute(b, req);
    case HCSB_MSG_WAIT_FOR_PROCESS:
      if (PUT_FIELD_U64(b, ",\"ProcessId\":", req->u.wait.pid) != 0)
        return -ENOMEM;
      return PUT_FIELD_U64(b, ",\"TimeoutInMs\":", req->u.wait.timeout_ms);
    case HCSB_MSG_SIGNAL_PROCESS:
      if (PUT_FIELD_U64(b, ",\"ProcessId\":", req->u.signal.pid) != 0)
        return -ENOMEM;
      /* Go's omitempty cannot express signal 0, and no Options means
       * SIGKILL to the guest; only positive signals are sent. */
      if (req->u.signal.signal <= 0) return 0;
      if (PUT_LIT(b, ",\"Options\":{\"Signal\":") != 0 ||
          put_i64(b, req->u.signal.signal) != 0)
        return -ENOMEM;
      return PUT_LIT(b, "}");
    case HCSB_MSG_RESIZE_CONSOLE:
      if (PUT_FIELD_U64(b, ",\"ProcessId\":", req->u.resize.pid) != 0 ||
          PUT_FIELD_U64(b, ",\"Height\":", req->u.resize.height) != 0)
        return -ENOMEM;
      return PUT_FIELD_U64(b, ",\"Width\":", req->u.resize.width);
    case HCSB_MSG_GET_PROPERTIES:
      if (PUT_LIT(b, ",\"Query\":") != 0) return -ENOMEM;
      return put_json_string(b, req->u.get_properties.query != NULL
                                    ? req->u.get_properties.query
                                    : "");
    case HCSB_MSG_MODIFY_SETTINGS:
      if (PUT_LIT(b, ",\"Request\":") != 0) return -ENOMEM;
      return put_nested(b, req->u.modify.request);
    case HCSB_MSG_MODIFY_SERVICE_SETTINGS:
      if (PUT_LIT(b, ",\"PropertyType\":") != 0 ||
          put_str(b, req->u.service.property_type) != 0 ||
          PUT_LIT(b, ",\"Settings\":") != 0)
        return -ENOMEM;
      return put_nested(b, req->u.service.settings);
    default:
      return 0;
  }
}

/* The ActivityId's 36 characters (a GUID needs no escaping): from `aid`
 * when given, else the caller's checked text, else the zero GUID.  Its
 * offset in `b` goes to *aid_pos. */
static int put_activity(hcsb__buf_t *b, const hcsb_request_t *req,
                        const uint8_t *aid, size_t *aid_pos) {
  if (PUT_LIT(b, ",\"ActivityId\":\"") != 0 ||
      hcsb__buf_reserve(b, HCSB__GUID_LEN + 1) != 0)
    return -ENOMEM;
  *aid_pos = b->len;
  if (aid != NULL)
    hcsb__guid_format(aid, b->data + b->len);
  else
    memcpy(b->data + b->len,
           req->activity_id != NULL ? req->activity_id : HCSB_ZERO_GUID,
           HCSB__GUID_LEN);
  b->len += HCSB__GUID_LEN;
  b->data[b->len++] = '"';
  return 0;
}

static int put_body(hcsb__buf_t *b, const hcsb_request_t *req,
                    const uint8_t *aid, size_t *aid_pos) {
  if (PUT_LIT(b, "{\"ContainerId\":") != 0 ||
      put_str(b, req->container_id != NULL ? req->container_id
                                           : HCSB_NULL_CONTAINER_ID) != 0 ||
      put_activity(b, req, aid, aid_pos) != 0 ||
      (req->ocsc != NULL &&
       (PUT_LIT(b, ",\"ocsc\":") != 0 || put_nested(b, req->ocsc) != 0)) ||
      put_fields(b, req) != 0)
    return -ENOMEM;
  return PUT_LIT(b, "}");
}

int hcsb__request_encode(hcsb__buf_t *out, uint64_t id,
                         const hcsb_request_t *req) {
  return hcsb__request_encode_ex(out, id, req, NULL, NULL);
}

int hcsb__request_encode_ex(hcsb__buf_t *out, uint64_t id,
                            const hcsb_request_t *req, const uint8_t *aid,
                            size_t *aid_off) {
  size_t start = out->len, total, aid_pos = 0;
  hcsb__hdr_t hdr;
  int r;

  if (req->raw_body != NULL) {
    if (req->raw_len > UINT32_MAX - HCSB__HDR_SIZE) return -EINVAL;
    r = hcsb__buf_reserve(out, HCSB__HDR_SIZE + req->raw_len);
    if (r != 0) return r;
    out->len += HCSB__HDR_SIZE;
    if (req->raw_len > 0) {
      memcpy(out->data + out->len, req->raw_body, req->raw_len);
      out->len += req->raw_len;
    }
  } else {
    r = check(req, aid);
    if (r != 0) return r;
    r = hcsb__buf_reserve(out, HCSB__HDR_SIZE);
    if (r != 0) return r;
    out->len += HCSB__HDR_SIZE;
    r = put_body(out, req, aid, &aid_pos);
    if (r != 0) {
      out->len = start;
      return r;
    }
  }

  total = out->len - start;
  if (total > UINT32_MAX) {
    out->len = start;
    return -EINVAL;
  }
  hdr.type = req->type;
  hdr.size = (uint32_t)total;
  hdr.id = id;
  hcsb__hdr_encode((uint8_t *)out->data + start, &hdr);
  if (aid_off != NULL) *aid_off = aid_pos == 0 ? 0 : aid_pos - start;
  return 0;
}
