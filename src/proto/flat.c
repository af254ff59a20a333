/* Fast path for flat responses.
 *
 * Most responses on a busy bridge are small flat objects such as
 * {"Result":0,"ActivityId":"…","ExitCode":3}, or a GetProperties answer
 * whose only nesting is the JSON text inside its "Properties" string.
 * Building a json-c tree for them costs a dozen allocations and most of
 * the decode time, so bodies of that shape are read here directly, with
 * no allocation.
 *
 * The rule that keeps this safe: it accepts only a strict subset of what
 * the json-c path accepts and must produce exactly what that path would.
 * Anything unusual - nesting, \u escapes, non-ASCII, fractions, keys that
 * differ from the canonical spelling only by case, repeated keys, values
 * of an unexpected type, a body too long for the string store - is left
 * to the json-c path, which also produces every error.  The tests decode
 * each body both ways and compare. */
#include <string.h>
#include <strings.h>

#include "proto/flat.h"

enum { V_NULL, V_INT, V_STR };

typedef struct {
  int kind;
  int esc; /* V_STR: holds backslash escapes (all of the one-letter kind) */
  int64_t num;
  const char *s; /* V_STR: the raw text between the quotes */
  size_t len;
} value_t;

static const char *ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* A string of printable ASCII without escapes; returns past the quote. */
static const char *plain_string(const char *p, const char *end) {
  while (p < end) {
    unsigned char c = (unsigned char)*p;
    if (c == '"') return p + 1;
    if (c < 0x20 || c >= 0x80 || c == '\\') return NULL;
    p++;
  }
  return NULL;
}

/* An integer of at most 18 digits (so no overflow), no fraction/exponent. */
static const char *plain_int(const char *p, const char *end, int64_t *out) {
  int neg = 0, digits = 0;
  int64_t v = 0;

  if (p < end && *p == '-') neg = 1, p++;
  if (p == end || *p < '0' || *p > '9') return NULL;
  if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9') return NULL;
  while (p < end && *p >= '0' && *p <= '9') {
    if (++digits > 18) return NULL;
    v = v * 10 + (*p++ - '0');
  }
  if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) return NULL;
  *out = neg ? -v : v;
  return p;
}

/* The same, also allowing the one-letter escapes (\" \\ \/ \b \f \n \r
 * \t); \u is json-c's to decode. */
static const char *escaped_string(const char *p, const char *end, int *esc) {
  while (p < end) {
    unsigned char c = (unsigned char)*p;
    if (c == '"') return p + 1;
    if (c == '\\') {
      if (p + 1 == end || strchr("\"\\/bfnrt", p[1]) == NULL || p[1] == '\0')
        return NULL;
      *esc = 1;
      p += 2;
      continue;
    }
    if (c < 0x20 || c >= 0x80) return NULL;
    p++;
  }
  return NULL;
}

static const char *value(const char *p, const char *end, value_t *v) {
  memset(v, 0, sizeof(*v));
  if (p < end && *p == '"') {
    v->kind = V_STR;
    v->s = p + 1;
    p = escaped_string(p + 1, end, &v->esc);
    if (p != NULL) v->len = (size_t)(p - 1 - v->s);
    return p;
  }
  if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
    v->kind = V_NULL;
    return p + 4;
  }
  v->kind = V_INT;
  return plain_int(p, end, &v->num);
}

/* The keys the json-c path reads for a response type. */
enum {
  K_RESULT,
  K_ACTIVITY,
  K_MESSAGE,
  K_RECORDS,
  K_EXIT,
  K_PID,
  K_VERSION,
  K_CAPS,
  K_PROPS,
  K_STACKS,
  K_COUNT
};

#define KEY(s) \
  { s, sizeof(s) - 1 }
static const struct {
  const char *name;
  size_t len;
} keys[K_COUNT] = {KEY("Result"),       KEY("ActivityId"),
                   KEY("ErrorMessage"), KEY("ErrorRecords"),
                   KEY("ExitCode"),     KEY("ProcessId"),
                   KEY("Version"),      KEY("Capabilities"),
                   KEY("Properties"),   KEY("GuestStacks")};
#undef KEY

static int key_read_for(int k, uint32_t type) {
  switch (k) {
    case K_EXIT:
      return type == HCSB_MSG_WAIT_FOR_PROCESS_RESPONSE;
    case K_PID:
      return type == HCSB_MSG_EXECUTE_PROCESS_RESPONSE;
    case K_VERSION:
    case K_CAPS:
      return type == HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE;
    case K_PROPS:
      return type == HCSB_MSG_GET_PROPERTIES_RESPONSE;
    case K_STACKS:
      return type == HCSB_MSG_DUMP_STACKS_RESPONSE;
    default:
      return 1;
  }
}

/* Which read key `name` is, -1 for an ignored key, -2 to give up (a case
 * variant of a read key: the json-c path's matching rules apply). */
static int classify(const char *name, size_t n, uint32_t type) {
  int k;

  for (k = 0; k < K_COUNT; k++) {
    if (keys[k].len != n || !key_read_for(k, type)) continue;
    if (memcmp(name, keys[k].name, n) == 0) return k;
    if (strncasecmp(name, keys[k].name, n) == 0) return -2;
  }
  return -1;
}

/* Copies a string into the context's store, unescaped and NUL-terminated;
 * *n gets its length.  NULL when it does not fit. */
static const char *store(hcsb__decode_ctx_t *ctx, size_t *used,
                         const value_t *v, size_t *n) {
  char *dst, *q;
  size_t i;

  if (v->len + 1 > sizeof(ctx->flat_strs) - *used) return NULL;
  dst = q = ctx->flat_strs + *used;
  if (!v->esc) {
    memcpy(dst, v->s, v->len);
    q += v->len;
  } else {
    for (i = 0; i < v->len; i++) {
      char c = v->s[i];
      if (c == '\\') {
        switch (v->s[++i]) {
          case 'b':
            c = '\b';
            break;
          case 'f':
            c = '\f';
            break;
          case 'n':
            c = '\n';
            break;
          case 'r':
            c = '\r';
            break;
          case 't':
            c = '\t';
            break;
          default:
            c = v->s[i];
            break; /* " \ / */
        }
      }
      *q++ = c;
    }
  }
  *q = '\0';
  *n = (size_t)(q - dst);
  *used += *n + 1;
  return dst;
}

int hcsb__response_decode_flat(hcsb__decode_ctx_t *ctx, uint32_t type,
                               const char *body, size_t len,
                               hcsb_response_t *resp, const char **message) {
  const char *p = body, *end = body + len, *key, *s;
  unsigned seen = 0;
  size_t klen, slen, used = 0;
  value_t v;
  int k;

  *message = NULL;
  p = ws(p, end);
  if (p == end || *p != '{') return 0;
  p = ws(p + 1, end);
  if (p < end && *p == '}') return 0; /* no Result: the error is theirs */
  for (;;) {
    if (p == end || *p != '"') return 0;
    key = p + 1;
    p = plain_string(key, end);
    if (p == NULL) return 0;
    klen = (size_t)(p - 1 - key);
    p = ws(p, end);
    if (p == end || *p != ':') return 0;
    p = value(ws(p + 1, end), end, &v);
    if (p == NULL) return 0;

    k = classify(key, klen, type);
    if (k == -2) return 0;
    if (k >= 0) {
      if (seen & (1u << k)) return 0; /* repeated: last-wins is theirs */
      seen |= 1u << k;
    }
    switch (k) {
      case -1:
        break;
      case K_RESULT:
        if (v.kind != V_INT || v.num < INT32_MIN || v.num > INT32_MAX) return 0;
        resp->result = (uint32_t)(int32_t)v.num;
        break;
      case K_ACTIVITY:
      case K_MESSAGE:
        if (v.kind == V_INT) return 0;
        if (v.kind == V_STR) {
          s = store(ctx, &used, &v, &slen);
          if (s == NULL) return 0;
          if (k == K_ACTIVITY)
            resp->activity_id = s;
          else
            *message = s;
        }
        break;
      case K_EXIT:
      case K_PID:
      case K_VERSION:
        if (v.kind == V_STR) return 0;
        if (v.kind == V_INT) {
          if (v.num < 0 || v.num > UINT32_MAX) return 0;
          if (k == K_EXIT) {
            resp->exit_code = (uint32_t)v.num;
            resp->has_exit_code = 1;
          } else if (k == K_PID) {
            resp->process_id = (uint32_t)v.num;
          } else {
            resp->version = (uint32_t)v.num;
          }
        }
        break;
      case K_PROPS:
        /* JSON in a string: "" counts as absent; text that is not one
         * valid JSON value is the json-c path's error to report. */
        if (v.kind == V_INT) return 0;
        if (v.kind == V_STR && v.len > 0) {
          s = store(ctx, &used, &v, &slen);
          if (s == NULL ||
              hcsb__json_validate(s, slen, HCSB__JSON_MAX_DEPTH) < 0)
            return 0;
          resp->properties = s;
          resp->properties_len = slen;
        }
        break;
      default:
        /* Records, capabilities, stacks: only null is flat. */
        if (v.kind != V_NULL) return 0;
        break;
    }

    p = ws(p, end);
    if (p == end) return 0;
    if (*p == '}') break;
    if (*p != ',') return 0;
    p = ws(p + 1, end);
  }
  if (ws(p + 1, end) != end) return 0;
  if (!(seen & (1u << K_RESULT))) return 0;
  return 1;
}
