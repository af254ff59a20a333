/* QMP codec (qmp.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "uvm/qmp.h"

int hcsb__qmp_dec_init(hcsb__qmp_dec_t *d, size_t max_msg) {
  memset(d, 0, sizeof *d);
  d->max_msg = max_msg != 0 ? max_msg : HCSB__QMP_MAX_MSG_DEFAULT;
  d->tok = json_tokener_new_ex(HCSB__QMP_MAX_DEPTH);
  if (d->tok == NULL) return -ENOMEM;
  /* Strict JSON, valid UTF-8; what follows an object is the next one. */
  json_tokener_set_flags(d->tok, JSON_TOKENER_STRICT |
                                     JSON_TOKENER_ALLOW_TRAILING_CHARS |
                                     JSON_TOKENER_VALIDATE_UTF8);
  return 0;
}

void hcsb__qmp_dec_free(hcsb__qmp_dec_t *d) {
  if (d->tok != NULL) json_tokener_free(d->tok);
  d->tok = NULL;
}

void hcsb__qmp_msg_release(hcsb__qmp_msg_t *msg) {
  if (msg->root != NULL) json_object_put(msg->root);
  memset(msg, 0, sizeof *msg);
}

static int get_id(json_object *root, hcsb__qmp_msg_t *msg) {
  json_object *id;
  if (!json_object_object_get_ex(root, "id", &id)) return 0;
  /* Our ids are non-negative integers; QEMU echoes them as it got them. */
  if (json_object_is_type(id, json_type_int) &&
      json_object_get_int64(id) >= 0) {
    msg->has_id = 1;
    msg->id = (uint64_t)json_object_get_int64(id);
  }
  return 0;
}

static const char *get_string(json_object *o, const char *key) {
  json_object *v;
  if (!json_object_object_get_ex(o, key, &v) ||
      !json_object_is_type(v, json_type_string))
    return NULL;
  return json_object_get_string(v);
}

static int get_int(json_object *o, const char *key, int64_t *out) {
  json_object *v;
  if (!json_object_object_get_ex(o, key, &v) ||
      !json_object_is_type(v, json_type_int))
    return -1;
  *out = json_object_get_int64(v);
  return 0;
}

/* Sorts a whole message into its kind; -EPROTO for any other shape. */
static int classify(json_object *root, hcsb__qmp_msg_t *msg) {
  json_object *v;

  if (!json_object_is_type(root, json_type_object)) return -EPROTO;
  if (json_object_object_get_ex(root, "return", &v)) {
    msg->kind = HCSB__QMP_RETURN;
    msg->value = v;
    return get_id(root, msg);
  }
  if (json_object_object_get_ex(root, "error", &v)) {
    if (!json_object_is_type(v, json_type_object)) return -EPROTO;
    msg->kind = HCSB__QMP_ERROR;
    msg->error_class = get_string(v, "class");
    msg->error_desc = get_string(v, "desc");
    if (msg->error_class == NULL || msg->error_desc == NULL) return -EPROTO;
    return get_id(root, msg);
  }
  if (json_object_object_get_ex(root, "event", &v)) {
    json_object *ts;
    if (!json_object_is_type(v, json_type_string)) return -EPROTO;
    msg->kind = HCSB__QMP_EVENT;
    msg->event = json_object_get_string(v);
    if (json_object_object_get_ex(root, "data", &v)) {
      if (!json_object_is_type(v, json_type_object)) return -EPROTO;
      msg->value = v;
    }
    msg->ts_seconds = msg->ts_microseconds = -1;
    if (json_object_object_get_ex(root, "timestamp", &ts) &&
        json_object_is_type(ts, json_type_object) &&
        (get_int(ts, "seconds", &msg->ts_seconds) != 0 ||
         get_int(ts, "microseconds", &msg->ts_microseconds) != 0))
      msg->ts_seconds = msg->ts_microseconds = -1;
    return 0;
  }
  if (json_object_object_get_ex(root, "QMP", &v)) {
    if (!json_object_is_type(v, json_type_object)) return -EPROTO;
    msg->kind = HCSB__QMP_GREETING;
    msg->value = v;
    return 0;
  }
  return -EPROTO;
}

int hcsb__qmp_dec_feed(hcsb__qmp_dec_t *d, const char *buf, size_t len,
                       size_t *consumed, hcsb__qmp_msg_t *msg) {
  json_object *root;
  size_t n = len, used;
  int rc;

  memset(msg, 0, sizeof *msg);
  *consumed = 0;
  if (d->error != 0) return d->error;
  if (len == 0) return 0;
  /* Never read past the message bound: what lies beyond it cannot belong
   * to a message we accept. */
  if (n > d->max_msg - d->fed) n = d->max_msg - d->fed + 1;
  if (n > (size_t)INT32_MAX) n = INT32_MAX;
  /* QMP never sends NUL; json-c would stop at one. */
  if (memchr(buf, '\0', n) != NULL) return d->error = -EPROTO;
  root = json_tokener_parse_ex(d->tok, buf, (int)n);
  used = json_tokener_get_parse_end(d->tok);
  if (root == NULL) {
    enum json_tokener_error e = json_tokener_get_error(d->tok);
    if (e != json_tokener_continue) return d->error = -EPROTO;
    d->fed += used;
    if (d->fed > d->max_msg) return d->error = -EMSGSIZE;
    *consumed = used;
    return 0;
  }
  d->fed += used;
  json_tokener_reset(d->tok);
  if (d->fed > d->max_msg) {
    json_object_put(root);
    return d->error = -EMSGSIZE;
  }
  d->fed = 0;
  *consumed = used;
  msg->root = root;
  rc = classify(root, msg);
  if (rc != 0) {
    hcsb__qmp_msg_release(msg);
    *consumed = 0;
    return d->error = rc;
  }
  return 1;
}

char *hcsb__qmp_encode(uint64_t id, const char *command, json_object *args,
                       size_t *len) {
  json_object *o, *cmd, *jid;
  const char *s;
  size_t n;
  char *out = NULL;

  if (command == NULL || command[0] == '\0' || id > INT64_MAX) return NULL;
  o = json_object_new_object();
  if (o == NULL) return NULL;
  cmd = json_object_new_string(command);
  if (cmd == NULL || json_object_object_add(o, "execute", cmd) != 0) {
    json_object_put(cmd);
    goto done;
  }
  if (args != NULL &&
      json_object_object_add(o, "arguments", json_object_get(args)) != 0) {
    json_object_put(args);
    goto done;
  }
  jid = json_object_new_int64((int64_t)id);
  if (jid == NULL || json_object_object_add(o, "id", jid) != 0) {
    json_object_put(jid);
    goto done;
  }
  s = json_object_to_json_string_ext(
      o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
  if (s == NULL) goto done;
  n = strlen(s);
  out = malloc(n + 3);
  if (out == NULL) goto done;
  memcpy(out, s, n);
  memcpy(out + n, "\r\n", 3);
  if (len != NULL) *len = n + 2;
done:
  json_object_put(o);
  return out;
}
