/* The pieces of an OpenCensus span context (`ocsc`, protocol.md §5.2) both
 * sides need: the tracestate rules of go.opencensus.io/trace/tracestate,
 * which the v0.11 guest applies (an entry that breaks them makes it drop
 * the whole tracestate), and standard base64 with padding, in which the
 * tracestate entries travel. */
#include <string.h>

#include "proto/proto.h"

static int key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '*' || c == '/';
}

/* [a-z][_0-9a-z-*\/]{0,255}, or [a-z][...]{0,240}@[a-z][...]{0,13} */
int hcsb__tracestate_key_ok(const char *k, size_t n) {
  const char *at;
  size_t i;

  if (n == 0 || n > HCSB__TRACESTATE_MAX_KEY || !(k[0] >= 'a' && k[0] <= 'z'))
    return 0;
  at = memchr(k, '@', n);
  for (i = 1; i < n; i++)
    if (k + i != at && !key_char(k[i])) return 0;
  if (at == NULL) return 1;
  return at - k <= 241 && (size_t)(at - k) + 1 < n && at[1] >= 'a' &&
         at[1] <= 'z' && n - (size_t)(at - k) - 1 <= 14;
}

/* [\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e] */
int hcsb__tracestate_value_ok(const char *v, size_t n) {
  size_t i;

  if (n == 0 || n > HCSB__TRACESTATE_MAX_VALUE || v[n - 1] == ' ') return 0;
  for (i = 0; i < n; i++)
    if (v[i] < 0x20 || v[i] > 0x7e || v[i] == ',' || v[i] == '=') return 0;
  return 1;
}

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int hcsb__base64_put(hcsb__buf_t *b, const void *data, size_t n) {
  const uint8_t *p = data;
  size_t i;
  char *w;

  if (hcsb__buf_reserve(b, (n + 2) / 3 * 4) != 0) return -ENOMEM;
  w = b->data + b->len;
  for (i = 0; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    *w++ = alphabet[v >> 18];
    *w++ = alphabet[(v >> 12) & 63];
    *w++ = alphabet[(v >> 6) & 63];
    *w++ = alphabet[v & 63];
  }
  if (i < n) {
    uint32_t v =
        (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
    *w++ = alphabet[v >> 18];
    *w++ = alphabet[(v >> 12) & 63];
    *w++ = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
    *w++ = '=';
  }
  b->len = (size_t)(w - b->data);
  return 0;
}

static int sextet(char c) {
  const char *p = c != '\0' ? strchr(alphabet, c) : NULL;
  return p != NULL ? (int)(p - alphabet) : -1;
}

/* Go's base64.StdEncoding.DecodeString: whole quanta, '=' padding only at
 * the end.  (Go also skips \r and \n; nobody sends them here.) */
int hcsb__base64_decode(const char *s, size_t n, hcsb__buf_t *out) {
  size_t i;
  int k, pad;

  if (n % 4 != 0) return -EINVAL;
  if (hcsb__buf_reserve(out, n / 4 * 3) != 0) return -ENOMEM;
  for (i = 0; i < n; i += 4) {
    uint32_t v = 0;
    pad = 0;
    for (k = 0; k < 4; k++) {
      int x = sextet(s[i + k]);
      if (s[i + k] == '=' && i + 4 == n && k >= 2 &&
          (k == 3 || s[i + 3] == '=')) {
        pad++;
        x = 0;
      } else if (x < 0 || pad != 0) {
        return -EINVAL;
      }
      v = v << 6 | (uint32_t)x;
    }
    out->data[out->len++] = (char)(v >> 16);
    if (pad < 2) out->data[out->len++] = (char)(v >> 8);
    if (pad < 1) out->data[out->len++] = (char)v;
  }
  return 0;
}
