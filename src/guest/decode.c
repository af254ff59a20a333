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
    case json_type_string: return "string";
    case json_type_object: return "object";
    case json_type_array: return "array";
    case json_type_boolean: return "bool";
    case json_type_null: return "null";
    default: return "number";
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
                   const char *gotype, int64_t lo, uint64_t hi,
                   uint64_t *uout, int64_t *sout) {
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

int hcsb__gdec_bool(hcsb__gdec_t *d, json_object *o, const char *key, int *out) {
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
  {
    json_object_object_foreach(v, k, val) {
      (void)k;
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
  hcsb__greply_errf(r->g, &r->call, 0xC037010Du,
                    "failed to unmarshal JSON in message \"%.*s%s\": "
                    "HRESULT 0xc037010d: %s",
                    (int)n, r->body, n < r->len ? "..." : "", what);
}
