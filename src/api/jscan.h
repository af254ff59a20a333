/* A bounded in-place JSON scanner for Properties answers (props.c,
 * metrics.c).  It is as strict as the protocol core's validator
 * (hcsb__json_validate): strings are checked with its string scanner,
 * values nobody reads are skipped with its value scanner, numbers follow
 * the JSON grammar, and nesting is bounded by HCSB__JSON_MAX_DEPTH over the
 * whole text, so text it accepts is valid JSON and the bridge does not
 * check these answers beforehand (the call's unchecked_props).  Nothing
 * here trusts the guest.  Keys match case-insensitively, as Go's decoder
 * does; null reads as "absent".  Header-only so the hot ProcessList loop
 * keeps its inlining. */
#ifndef HCSB_API_JSCAN_H
#define HCSB_API_JSCAN_H

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "api/api-int.h"
#include "proto/plain.h"

typedef struct cur_s {
  const char *p, *end;
  unsigned depth;
} cur_t;

#define MAX_DEPTH HCSB__JSON_MAX_DEPTH

/* Inline even where the compiler would not: the hot loop's helpers. */
#if defined(__GNUC__) || defined(__clang__)
#define JSCAN_HOT static inline __attribute__((always_inline))
#else
#define JSCAN_HOT static inline
#endif

static inline int peek(cur_t *c) {
  /* Go writes no whitespace between tokens: that case first.  The text
   * ends in a NUL (hcsb__props_decode), so the byte at the end can be read
   * and is no token. */
  if ((unsigned char)*c->p > ' ') return (unsigned char)*c->p;
  while (c->p < c->end &&
         (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
  return c->p < c->end ? (unsigned char)*c->p : -1;
}

/* The raw span between the quotes of a (valid) string at the cursor
 * (inline always where possible: every key goes through it). */
JSCAN_HOT int str_span(cur_t *c, const char **s, size_t *n) {
  const unsigned char *u, *end = (const unsigned char *)c->end;
  const char *q;
  size_t run;

  if (peek(c) != '"') return -EPROTO;
  *s = c->p + 1;
  /* Keys and most values are plain bytes up to the quote: valid as they
   * are.  Anything else (escapes, UTF-8) is the validator's to check. */
  u = (const unsigned char *)*s;
  run = hcsb__plain_run(u, end);
  if (u + run < end && u[run] == '"') {
    q = (const char *)u + run + 1;
  } else {
    q = hcsb__json_scan_string(*s, c->end);
    if (q == NULL) return -EPROTO;
  }
  *n = (size_t)(q - 1 - *s);
  c->p = q;
  return 0;
}

static inline int is_null(cur_t *c) {
  if (peek(c) == 'n' && c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
    c->p += 4;
    return 1;
  }
  return 0;
}

/* Skips one value, however nested (within what is left of the depth). */
static inline int skip(cur_t *c) {
  const char *q = hcsb__json_value_end(c->p, c->end, MAX_DEPTH - c->depth);

  if (q == NULL) return -EPROTO;
  c->p = q;
  return 0;
}

/* Object members: 1 with the key (cursor at its value), 0 at the end. */
static inline int member(cur_t *c, int *first, const char **k, size_t *kn) {
  int ch = peek(c);

  if (ch == '}') {
    c->p++;
    c->depth--;
    return 0;
  }
  if (!*first) {
    if (ch != ',') return -EPROTO;
    c->p++;
  }
  *first = 0;
  if (str_span(c, k, kn) != 0 || peek(c) != ':') return -EPROTO;
  c->p++;
  return 1;
}

/* Array elements: 1 when a value follows, 0 at the end. */
static inline int element(cur_t *c, int *first) {
  int ch = peek(c);

  if (ch == ']') {
    c->p++;
    c->depth--;
    return 0;
  }
  if (!*first) {
    if (ch != ',') return -EPROTO;
    c->p++;
  }
  *first = 0;
  return 1;
}

/* Opens an object or array; 1 when it is null instead.  The matching
 * member()/element() that returns 0 closes it. */
static inline int open_(cur_t *c, char bracket) {
  if (is_null(c)) return 1;
  if (peek(c) != bracket) return -EPROTO;
  if (c->depth == MAX_DEPTH) return -EPROTO;
  c->depth++;
  c->p++;
  return 0;
}

/* `name` is a literal, so its length folds to a constant; the exact
 * spelling (what a Go guest sends) is tried before any case variant. */
static inline int key_is(const char *k, size_t kn, const char *name) {
  return strlen(name) == kn &&
         (memcmp(k, name, kn) == 0 || strncasecmp(k, name, kn) == 0);
}

/* Always inline where the compiler allows: a call's cost is most of a
 * short number's, and there are few callers. */
JSCAN_HOT int read_u64(cur_t *c, uint64_t *out) {
  uint64_t v = 0;
  const char *p, *start, *end = c->end, *lim;
  unsigned d;
  int ch = peek(c);

  if (ch == 'n' && is_null(c)) return 0;
  if (ch < 0) return -EPROTO;
  start = p = c->p;
  /* JSON has no leading zeros. */
  if (*p == '0' && end - p > 1 && p[1] >= '0' && p[1] <= '9') return -EPROTO;
  /* Nineteen digits cannot overflow; only a twentieth needs checking, and
   * a twenty-first always does.  A local cursor stays in a register. */
  lim = end - p > 19 ? p + 19 : end;
  while (p < lim && (d = (unsigned)(unsigned char)*p - '0') <= 9) {
    v = v * 10 + d;
    p++;
  }
  if (p < end && (d = (unsigned)(unsigned char)*p - '0') <= 9) {
    if (v > UINT64_MAX / 10 || (v == UINT64_MAX / 10 && d > UINT64_MAX % 10))
      return -EPROTO;
    v = v * 10 + d;
    p++;
    if (p < end && *p >= '0' && *p <= '9') return -EPROTO;
  }
  /* Negative, fractional or exponent forms do not fit a uint64. */
  if (p == start || (p < end && (*p == '.' || *p == 'e' || *p == 'E')))
    return -EPROTO;
  c->p = p;
  *out = v;
  return 0;
}

static inline int read_u32(cur_t *c, uint32_t *out) {
  uint64_t v = *out;
  int r = read_u64(c, &v);

  if (r == 0 && v > UINT32_MAX) return -EPROTO;
  *out = (uint32_t)v;
  return r;
}

static inline size_t put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

static inline int hex4(const char *s, const char *end, uint32_t *out) {
  uint32_t v = 0;
  int i;

  if (end - s < 4) return -1;
  for (i = 0; i < 4; i++) {
    char h = s[i];
    v <<= 4;
    if (h >= '0' && h <= '9')
      v |= (uint32_t)(h - '0');
    else if (h >= 'a' && h <= 'f')
      v |= (uint32_t)(h - 'a' + 10);
    else if (h >= 'A' && h <= 'F')
      v |= (uint32_t)(h - 'A' + 10);
    else
      return -1;
  }
  *out = v;
  return 0;
}

/* Unescapes a raw string span into `o` (room for n + 1 bytes: no escape
 * grows).  Lone surrogates become U+FFFD, as Go does. */
static inline size_t unescape(const char *s, size_t n, char *o) {
  const char *end = s + n;
  size_t len = 0;

  while (s < end) {
    uint32_t cp, lo;
    if (*s != '\\' || end - s < 2) {
      o[len++] = *s++;
      continue;
    }
    s++;
    if (*s != 'u') {
      static const char from[] = "bfnrt", to[] = "\b\f\n\r\t";
      const char *k = *s != '\0' ? strchr(from, *s) : NULL;
      o[len++] = k != NULL ? to[k - from] : *s;
      s++;
      continue;
    }
    if (hex4(s + 1, end, &cp) != 0) {
      o[len++] = *s++;
      continue;
    }
    s += 5;
    if (cp >= 0xD800 && cp <= 0xDBFF && end - s >= 6 && s[0] == '\\' &&
        s[1] == 'u' && hex4(s + 2, end, &lo) == 0 && lo >= 0xDC00 &&
        lo <= 0xDFFF) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      s += 6;
    } else if (cp >= 0xD800 && cp <= 0xDFFF) {
      cp = 0xFFFD;
    }
    /* "\uXXXX" is 6 bytes and becomes at most 3; a pair, 12 -> 4. */
    len += put_utf8(o + len, cp);
  }
  o[len] = '\0';
  return len;
}

/* metrics.c: decodes the LCOWMetrics value at the cursor into c's metrics
 * store, sets props->metrics, ->statistics and ->has_statistics (null:
 * nothing).  0, -EPROTO or -ENOMEM. */
int hcsb__metrics_decode(hcsb_container_t *c, cur_t *cur,
                         hcsb_properties_t *props);

#endif /* HCSB_API_JSCAN_H */
