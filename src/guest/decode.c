/* Typed request decoding with Go encoding/json semantics: keys match
 * case-insensitively, unknown keys are ignored, null leaves a field at its
 * zero value, and a value of the wrong type fails the whole request with
 * 0xC037010D and Go's wording ("json: cannot unmarshal string into Go
 * struct field ContainerWaitForProcess.ProcessId of type uint32"). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "guest/guest.h"

static const char *json_kind(json_object *v) {
  switch (json_object_get_type(v)) {
    case json_type_string:
      return "string";
    case json_type_object:
      return "object";
    case json_type_array:
      return "array";
    case json_type_boolean:
      return "bool";
    case json_type_null:
      return "null";
    default:
      return "number";
  }
}

static int mismatch(hcsb__gdec_t *d, json_object *v, const char *key,
                    const char *gotype) {
  snprintf(d->err, sizeof d->err,
           "json: cannot unmarshal %s into Go struct field %s.%s of type %s",
           json_kind(v), d->strct, key, gotype);
  return -1;
}

static int number_range(hcsb__gdec_t *d, json_object *v, const char *key,
                        const char *gotype) {
  snprintf(d->err, sizeof d->err,
           "json: cannot unmarshal number %s into Go struct field %s.%s of "
           "type %s",
           json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), d->strct,
           key, gotype);
  return -1;
}

int hcsb__gdec_root(hcsb__gdec_t *d, json_object *root, const char *gotype) {
  if (root == NULL || json_object_is_type(root, json_type_object)) return 0;
  snprintf(d->err, sizeof d->err,
           "json: cannot unmarshal %s into Go value of type %s",
           json_kind(root), gotype);
  return -1;
}

/* Integers: json-c keeps what the text said; a fraction or exponent makes a
 * double, which Go refuses for an integer field. */
static int get_int(hcsb__gdec_t *d, json_object *o, const char *key,
                   const char *gotype, int64_t lo, uint64_t hi, uint64_t *uout,
                   int64_t *sout) {
  json_object *v = hcsb__json_get(o, key);
  int64_t s;
  uint64_t u;

  if (v == NULL) return 1;
  if (!json_object_is_type(v, json_type_int)) {
    if (json_object_is_type(v, json_type_double))
      return number_range(d, v, key, gotype);
    return mismatch(d, v, key, gotype);
  }
  s = json_object_get_int64(v);
  if (s == INT64_MAX) {
    u = json_object_get_uint64(v);
    if (u > hi) return number_range(d, v, key, gotype);
    *uout = u;
    *sout = (int64_t)u;
    return 0;
  }
  if (s < lo || (s >= 0 && (uint64_t)s > hi))
    return number_range(d, v, key, gotype);
  *sout = s;
  *uout = (uint64_t)s;
  return 0;
}

int hcsb__gdec_u32(hcsb__gdec_t *d, json_object *o, const char *key,
                   uint32_t *out) {
  uint64_t u;
  int64_t s;
  int r = get_int(d, o, key, "uint32", 0, UINT32_MAX, &u, &s);
  if (r == 0) *out = (uint32_t)u;
  return r < 0 ? -1 : 0;
}

int hcsb__gdec_u16(hcsb__gdec_t *d, json_object *o, const char *key,
                   uint16_t *out) {
  uint64_t u;
  int64_t s;
  int r = get_int(d, o, key, "uint16", 0, UINT16_MAX, &u, &s);
  if (r == 0) *out = (uint16_t)u;
  return r < 0 ? -1 : 0;
}

int hcsb__gdec_u8(hcsb__gdec_t *d, json_object *o, const char *key,
                  uint8_t *out) {
  uint64_t u;
  int64_t s;
  int r = get_int(d, o, key, "uint8", 0, UINT8_MAX, &u, &s);
  if (r == 0) *out = (uint8_t)u;
  return r < 0 ? -1 : 0;
}

/* Go's int and int64 (the same range on the guest's 64-bit builds; only the
 * name in the error differs). */
int hcsb__gdec_i64(hcsb__gdec_t *d, json_object *o, const char *key,
                   const char *gotype, int64_t *out) {
  uint64_t u;
  int64_t s;
  int r = get_int(d, o, key, gotype, INT64_MIN, INT64_MAX, &u, &s);
  if (r == 0) *out = s;
  return r < 0 ? -1 : 0;
}

int hcsb__gdec_i32(hcsb__gdec_t *d, json_object *o, const char *key,
                   int32_t *out) {
  uint64_t u;
  int64_t s;
  int r = get_int(d, o, key, "int32", INT32_MIN, INT32_MAX, &u, &s);
  if (r == 0) *out = (int32_t)s;
  return r < 0 ? -1 : 0;
}

int hcsb__gdec_str(hcsb__gdec_t *d, json_object *o, const char *key,
                   const char **out) {
  json_object *v = hcsb__json_get(o, key);

  if (v == NULL) return 0;
  if (!json_object_is_type(v, json_type_string))
    return mismatch(d, v, key, "string");
  *out = json_object_get_string(v);
  return 0;
}

int hcsb__gdec_bool(hcsb__gdec_t *d, json_object *o, const char *key,
                    int *out) {
  json_object *v = hcsb__json_get(o, key);

  if (v == NULL) return 0;
  if (!json_object_is_type(v, json_type_boolean))
    return mismatch(d, v, key, "bool");
  *out = json_object_get_boolean(v) ? 1 : 0;
  return 0;
}

int hcsb__gdec_obj(hcsb__gdec_t *d, json_object *o, const char *key,
                   json_object **out) {
  json_object *v = hcsb__json_get(o, key);

  if (v == NULL) return 0;
  if (!json_object_is_type(v, json_type_object))
    return mismatch(d, v, key, "struct");
  *out = v;
  return 0;
}

int hcsb__gdec_strv(hcsb__gdec_t *d, json_object *o, const char *key,
                    json_object **out) {
  json_object *v = hcsb__json_get(o, key);
  size_t i, n;

  if (v == NULL) return 0;
  if (!json_object_is_type(v, json_type_array))
    return mismatch(d, v, key, "[]string");
  n = json_object_array_length(v);
  for (i = 0; i < n; i++) {
    json_object *e = json_object_array_get_idx(v, i);
    /* Go decodes a null element as "". */
    if (e != NULL && !json_object_is_type(e, json_type_string))
      return mismatch(d, e, key, "string");
  }
  *out = v;
  return 0;
}

int hcsb__gdec_strmap(hcsb__gdec_t *d, json_object *o, const char *key,
                      json_object **out) {
  json_object *v = hcsb__json_get(o, key);

  if (v == NULL) return 0;
  if (!json_object_is_type(v, json_type_object))
    return mismatch(d, v, key, "map[string]string");
  {json_object_object_foreach(v, k, val){(void)k;
  if (val != NULL && !json_object_is_type(val, json_type_string))
    return mismatch(d, val, key, "string");
}
}
*out = v;
return 0;
}

int hcsb__gdec_inner(hcsb__gdec_t *d, const char *text, json_object **out) {
  size_t len = strlen(text);
  int r;

  *out = NULL;
  r = hcsb__json_parse(text, len, out);
  if (r == 0) return 0;
  snprintf(d->err, sizeof d->err, "%s",
           r == -ENOMEM ? "out of memory"
           : len == 0   ? "unexpected end of JSON input"
                        : "invalid character in JSON input");
  return -1;
}

int hcsb__gdec_begin(hcsb__greq_t *r, hcsb__gdec_t *d, const char *strct) {
  const char *s = NULL;
  char gotype[64];

  d->strct = strct;
  d->err[0] = '\0';
  if (!r->parsed) {
    hcsb__gdec_fail(r, r->len == 0 ? "unexpected end of JSON input"
                                   : "invalid character in JSON input");
    return -1;
  }
  snprintf(gotype, sizeof gotype, "prot.%s", strct);
  if (hcsb__gdec_root(d, r->root, gotype) < 0 ||
      hcsb__gdec_str(d, r->root, "ContainerId", &s) < 0 ||
      hcsb__gdec_str(d, r->root, "ActivityId", &s) < 0) {
    hcsb__gdec_fail(r, d->err);
    return -1;
  }
  return 0;
}

void hcsb__gdec_fail(hcsb__greq_t *r, const char *what) {
  size_t n = r->len < HCSB__G_MAX_ECHO ? r->len : HCSB__G_MAX_ECHO;

  /* The GCS quotes the whole request; we quote a bounded prefix so one bad
   * frame cannot make a response the host's 64 KiB limit rejects. */
  hcsb__greply_errf(r->g, &r->call, HCSB_E_VMCOMPUTE_INVALID_JSON,
                    "failed to unmarshal JSON in message \"%.*s%s\": "
                    "HRESULT 0xc037010d: %s",
                    (int)n, r->body, n < r->len ? "..." : "", what);
}

/* ------------------------------------------------------------------------ */
/* The span the v0.11.8 bridge opens for each request ("opengcs::bridge::
 * request") is parented on the request's `ocsc`, decoded leniently: a bad
 * hex ID leaves zeros, a short one is zero-padded, and the tracestate (base64
 * of a JSON list of {Key, Value}) is dropped whole when any part fails. */

static void hex_id(json_object *ocsc, const char *key, uint8_t *id, size_t n) {
  json_object *v = hcsb__json_get(ocsc, key);
  const char *s;
  size_t len, i;
  uint8_t tmp[64];

  memset(id, 0, n);
  if (!json_object_is_type(v, json_type_string)) return;
  s = json_object_get_string(v);
  len = strlen(s);
  if (len % 2 != 0 || len / 2 > sizeof tmp) return;
  for (i = 0; i < len; i++) {
    char c = s[i];
    int x = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (x < 0) return;
    if (i % 2 == 0)
      tmp[i / 2] = (uint8_t)(x << 4);
    else
      tmp[i / 2] |= (uint8_t)x;
  }
  memcpy(id, tmp, len / 2 < n ? len / 2 : n);
}

/* "k=v,k2=v2" into `out`, or "-" when there is none or the guest would
 * drop it. */
static void tracestate(json_object *ocsc, char *out, size_t len) {
  json_object *v = hcsb__json_get(ocsc, "Tracestate"), *list = NULL;
  hcsb__buf_t raw = HCSB__BUF_INIT;
  size_t i, j, n, used = 0;
  const char *s;

  snprintf(out, len, "-");
  if (!json_object_is_type(v, json_type_string)) return;
  s = json_object_get_string(v);
  if (s[0] == '\0' || hcsb__base64_decode(s, strlen(s), &raw) != 0 ||
      hcsb__json_parse(raw.data != NULL ? raw.data : "", raw.len, &list) != 0)
    goto out;
  if (!json_object_is_type(list, json_type_array)) goto out;
  n = json_object_array_length(list);
  if (n > HCSB__TRACESTATE_MAX_ENTRIES) goto out;
  for (i = 0; i < n; i++) {
    json_object *e = json_object_array_get_idx(list, i);
    json_object *k = hcsb__json_get(e, "Key"),
                *val = hcsb__json_get(e, "Value");
    const char *ks, *vs;

    if (!json_object_is_type(k, json_type_string) ||
        !json_object_is_type(val, json_type_string))
      goto out;
    ks = json_object_get_string(k);
    vs = json_object_get_string(val);
    if (!hcsb__tracestate_key_ok(ks, (size_t)json_object_get_string_len(k)) ||
        !hcsb__tracestate_value_ok(vs, (size_t)json_object_get_string_len(val)))
      goto out;
    for (j = 0; j < i; j++)
      if (strcmp(ks, json_object_get_string(hcsb__json_get(
                         json_object_array_get_idx(list, j), "Key"))) == 0)
        goto out;
  }
  for (i = 0; i < n && used < len; i++) {
    json_object *e = json_object_array_get_idx(list, i);
    int k = snprintf(out + used, len - used, "%s%s=%s", i != 0 ? "," : "",
                     json_object_get_string(hcsb__json_get(e, "Key")),
                     json_object_get_string(hcsb__json_get(e, "Value")));
    if (k < 0) break;
    used += (size_t)k;
  }
out:
  if (list != NULL) json_object_put(list);
  hcsb__buf_free(&raw);
}

void hcsb__gspan_parent(json_object *root, char *out, size_t len) {
  json_object *ocsc = hcsb__json_get(root, "ocsc"), *opt;
  uint8_t trace[16], span[8];
  char ts[1024], th[33], sh[17];
  uint64_t options = 0;
  size_t i;

  if (!json_object_is_type(ocsc, json_type_object)) {
    snprintf(out, len, "none");
    return;
  }
  hex_id(ocsc, "TraceID", trace, sizeof trace);
  hex_id(ocsc, "SpanID", span, sizeof span);
  opt = hcsb__json_get(ocsc, "TraceOptions");
  if (json_object_is_type(opt, json_type_int) &&
      json_object_get_int64(opt) >= 0 &&
      json_object_get_int64(opt) <= UINT32_MAX)
    options = (uint64_t)json_object_get_int64(opt);
  tracestate(ocsc, ts, sizeof ts);
  for (i = 0; i < 16; i++) snprintf(th + 2 * i, 3, "%02x", trace[i]);
  for (i = 0; i < 8; i++) snprintf(sh + 2 * i, 3, "%02x", span[i]);
  snprintf(out, len, "trace=%s span=%s options=%" PRIu64 " tracestate=%s", th,
           sh, options, ts);
}
