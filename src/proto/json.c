/* JSON helpers: a strict validator, bounded json-c parsing, lenient member
 * lookup and the string escaper used by the request writer.
 *
 * Why a validator of our own: json-c accepts things Go's encoding/json (the
 * peer's codec) rejects, even in strict mode (single-quoted strings, NaN),
 * and it allocates.  The validator is RFC 8259 exactly, checks UTF-8, never
 * allocates and never recurses, so it can vet untrusted text cheaply before
 * json-c builds objects from it, and vet JSON-in-string fields without
 * building anything at all. */
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "proto/plain.h"
#include "proto/proto.h"

#define VALIDATE_DEPTH_CAP 1024u

static int is_ws(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}

static int is_hex(unsigned char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Length of the well-formed UTF-8 sequence at p (lead byte >= 0x80), or 0.
 * Rejects overlong forms, surrogates and code points above U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end) {
  unsigned char c = p[0], lo = 0x80, hi = 0xBF;
  size_t n, i;

  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if ((size_t)(end - p) < n) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (i = 2; i < n; i++)
    if (p[i] < 0x80 || p[i] > 0xBF) return 0;
  return n;
}

/* p points just past the opening quote; returns the position past the
 * closing quote or NULL. */
static const unsigned char *scan_string(const unsigned char *p,
                                        const unsigned char *end) {
  size_t n;

  while (p < end) {
    unsigned char c;
    p += hcsb__plain_run(p, end);
    if (p == end) break;
    c = *p;
    if (c == '"') return p + 1;
    if (c < 0x20) return NULL;
    if (c == '\\') {
      if (end - p < 2) return NULL;
      c = p[1];
      if (c == 'u') {
        if (end - p < 6 || !is_hex(p[2]) || !is_hex(p[3]) || !is_hex(p[4]) ||
            !is_hex(p[5]))
          return NULL;
        p += 6;
      } else if (strchr("\"\\/bfnrt", c) != NULL && c != '\0') {
        p += 2;
      } else {
        return NULL;
      }
    } else if (c < 0x80) {
      p++;
    } else {
      n = utf8_seq(p, end);
      if (n == 0) return NULL;
      p += n;
    }
  }
  return NULL;
}

static const unsigned char *scan_number(const unsigned char *p,
                                        const unsigned char *end) {
  if (p < end && *p == '-') p++;
  if (p == end) return NULL;
  if (*p == '0') {
    p++;
  } else if (is_digit(*p)) {
    while (p < end && is_digit(*p)) p++;
  } else {
    return NULL;
  }
  if (p < end && *p == '.') {
    p++;
    if (p == end || !is_digit(*p)) return NULL;
    while (p < end && is_digit(*p)) p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p == end || !is_digit(*p)) return NULL;
    while (p < end && is_digit(*p)) p++;
  }
  return p;
}

static const unsigned char *scan_literal(const unsigned char *p,
                                         const unsigned char *end,
                                         const char *lit) {
  size_t n = strlen(lit);

  if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0) return NULL;
  return p + n;
}

static inline const unsigned char *skip_ws(const unsigned char *p,
                                           const unsigned char *end) {
  while (p < end && *p <= ' ' && is_ws(*p)) p++;
  return p;
}

const char *hcsb__json_scan_string(const char *p, const char *end) {
  return (const char *)scan_string((const unsigned char *)p,
                                   (const unsigned char *)end);
}

/* One JSON value from `p` (leading whitespace allowed): returns the
 * position just past it, or NULL; *type gets its json_type. */
static const unsigned char *value_end(const unsigned char *p,
                                      const unsigned char *end,
                                      unsigned max_depth, int *type) {
  /* One bit per open container: 1 = object, 0 = array. */
  unsigned char stack[VALIDATE_DEPTH_CAP / 8];
  unsigned depth = 0;
  int top = -1, in_obj;

  if (max_depth > VALIDATE_DEPTH_CAP) max_depth = VALIDATE_DEPTH_CAP;

value:
  p = skip_ws(p, end);
  if (p == end) return NULL;
  switch (*p) {
    case '{':
    case '[':
      if (depth == max_depth) return NULL;
      if (top < 0) top = *p == '{' ? json_type_object : json_type_array;
      if (*p == '{')
        stack[depth / 8] |= (unsigned char)(1u << (depth % 8));
      else
        stack[depth / 8] &= (unsigned char)~(1u << (depth % 8));
      depth++;
      in_obj = *p == '{';
      p = skip_ws(p + 1, end);
      if (p < end && *p == (in_obj ? '}' : ']')) {
        depth--;
        p++;
        goto after;
      }
      if (in_obj) goto key;
      goto value;
    case '"':
      if (top < 0) top = json_type_string;
      p = scan_string(p + 1, end);
      break;
    case 't':
      if (top < 0) top = json_type_boolean;
      p = scan_literal(p, end, "true");
      break;
    case 'f':
      if (top < 0) top = json_type_boolean;
      p = scan_literal(p, end, "false");
      break;
    case 'n':
      if (top < 0) top = json_type_null;
      p = scan_literal(p, end, "null");
      break;
    default:
      if (top < 0) top = json_type_double; /* refined by the caller if needed */
      p = scan_number(p, end);
      break;
  }
  if (p == NULL) return NULL;

after:
  if (depth == 0) {
    *type = top;
    return p;
  }
  p = skip_ws(p, end);
  if (p == end) return NULL;
  in_obj = (stack[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1;
  if (*p == ',') {
    p++;
    if (in_obj) goto key;
    goto value;
  }
  if (*p != (in_obj ? '}' : ']')) return NULL;
  depth--;
  p++;
  goto after;

key:
  p = skip_ws(p, end);
  if (p == end || *p != '"') return NULL;
  p = scan_string(p + 1, end);
  if (p == NULL) return NULL;
  p = skip_ws(p, end);
  if (p == end || *p != ':') return NULL;
  p++;
  goto value;
}

int hcsb__json_validate(const char *s, size_t len, unsigned max_depth) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  int type = -1;

  if (s == NULL) return -EPROTO;
  p = value_end(p, end, max_depth, &type);
  if (p == NULL || skip_ws(p, end) != end) return -EPROTO;
  return type;
}

const char *hcsb__json_value_end(const char *p, const char *end,
                                 unsigned max_depth) {
  int type;

  return (const char *)value_end((const unsigned char *)p,
                                 (const unsigned char *)end, max_depth, &type);
}

json_tokener *hcsb__json_tokener_new(void) {
  json_tokener *tok;

  /* json-c counts the top-level value as one level. */
  tok = json_tokener_new_ex(HCSB__JSON_MAX_DEPTH + 1);
  if (tok != NULL) json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
  return tok;
}

int hcsb__json_parse_tok(json_tokener *tok, const char *s, size_t len,
                         json_object **out) {
  json_object *o;
  size_t end;
  int type;

  *out = NULL;
  if (len > INT_MAX) return -EPROTO;
  type = hcsb__json_validate(s, len, HCSB__JSON_MAX_DEPTH);
  if (type < 0) return -EPROTO;
  json_tokener_reset(tok);
  o = json_tokener_parse_ex(tok, s, (int)len);
  end = json_tokener_get_parse_end(tok);
  /* A bare top-level number or literal needs a terminator to complete;
   * it then ends exactly at `len`. */
  if (o == NULL && json_tokener_get_error(tok) == json_tokener_continue) {
    o = json_tokener_parse_ex(tok, "", 1);
    end = len;
  }
  if (o == NULL && json_tokener_get_error(tok) != json_tokener_success) {
    /* The text is valid JSON within our depth limit, so json-c can only
     * have failed for lack of memory.  (A JSON null is a success with a
     * NULL object: *out = NULL, like json-c's own representation.) */
    return -ENOMEM;
  }
  /* json-c also returns NULL without an error when it cannot allocate its
   * C locale (newlocale); only the text "null" may come back as NULL. */
  if (o == NULL && type != (int)json_type_null) return -ENOMEM;
  if (end < len) {
    const unsigned char *p = (const unsigned char *)s + end;
    if (skip_ws(p, (const unsigned char *)s + len) !=
        (const unsigned char *)s + len) {
      json_object_put(o);
      return -EPROTO;
    }
  }
  *out = o;
  return 0;
}

int hcsb__json_parse(const char *s, size_t len, json_object **out) {
  json_tokener *tok;
  int r;

  *out = NULL;
  tok = hcsb__json_tokener_new();
  if (tok == NULL) return -ENOMEM;
  r = hcsb__json_parse_tok(tok, s, len, out);
  json_tokener_free(tok);
  return r;
}

json_object *hcsb__json_get(json_object *obj, const char *key) {
  json_object *v = NULL;

  if (!json_object_is_type(obj, json_type_object)) return NULL;
  if (json_object_object_get_ex(obj, key, &v)) return v;
  {
    json_object_object_foreach(obj, k, val) {
      if (strcasecmp(k, key) == 0) return val;
    }
  }
  return NULL;
}

const char *hcsb__json_compact(json_object *obj, size_t *len) {
  return json_object_to_json_string_length(
      obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}

static const char hex_digits[] = "0123456789abcdef";

/* Output length of one input unit at p and how many input bytes it spans;
 * shared by the sizing pass and the writing pass so they cannot disagree. */
static size_t escape_unit(const unsigned char *p, const unsigned char *end,
                          size_t *in) {
  unsigned char c = *p;
  size_t seq;

  *in = 1;
  if (c >= 0x80) {
    seq = utf8_seq(p, end);
    if (seq == 0) return 6; /* \ufffd */
    *in = seq;
    if (seq == 3 && c == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9))
      return 6; /* \u2028, \u2029 */
    return seq;
  }
  if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t') return 2;
  return c < 0x20 ? 6 : 1;
}

/* Short strings (all of a hot path's IDs and queries) reserve the worst
 * case, 6 bytes out per byte in, and are written in one pass; longer ones
 * are sized exactly first so no slack is left behind. */
#define PUT_STRING_ONE_PASS_MAX 4096u

int hcsb__json_put_string(hcsb__buf_t *out, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n, *run;
  size_t need = 2, in, k;
  char *w;

  /* Either way a failure leaves `out` untouched. */
  if (n <= PUT_STRING_ONE_PASS_MAX) {
    need += 6 * n;
  } else {
    while (p < end) {
      size_t plain = hcsb__plain_run(p, end);
      if (plain != 0) {
        p += plain;
        need += plain;
        continue;
      }
      need += escape_unit(p, end, &in);
      p += in;
    }
  }
  if (hcsb__buf_reserve(out, need) != 0) return -ENOMEM;

  w = out->data + out->len;
  *w++ = '"';
  p = (const unsigned char *)s;
  while (p < end) {
    run = p;
    p += hcsb__plain_run(p, end);
    if (p != run) {
      memcpy(w, run, (size_t)(p - run));
      w += p - run;
      continue;
    }
    k = escape_unit(p, end, &in);
    if (k == in && *p >= 0x80) {
      memcpy(w, p, in); /* well-formed UTF-8 passes through */
    } else if (*p >= 0x80) {
      /* Invalid UTF-8 becomes U+FFFD, as Go's encoder does, so the body is
       * valid UTF-8 whatever the caller passed; U+2028/U+2029 are escaped
       * because they break JavaScript parsers (Go escapes them too). */
      memcpy(w, in == 1 ? "\\ufffd" : p[2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
    } else if (k == 2) {
      w[0] = '\\';
      w[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : *p == '\t' ? 't' : (char)*p;
    } else {
      memcpy(w, "\\u00", 4);
      w[4] = hex_digits[*p >> 4];
      w[5] = hex_digits[*p & 0xF];
    }
    w += k;
    p += in;
  }
  *w++ = '"';
  out->len = (size_t)(w - out->data);
  return 0;
}
