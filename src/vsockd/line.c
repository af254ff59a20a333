/* The line a host client sends first on the hybrid-vsock socket,
 * "CONNECT <port>\n", read the way Firecracker reads it, since that is the
 * convention clients are written against:
 *
 *   - The line is what comes before and including the first newline at or
 *     after the tenth byte (Firecracker reads ten bytes before it looks),
 *     or the first 32 bytes when no newline came by then.
 *   - It must be valid UTF-8 as a whole.
 *   - It is split on whitespace (Unicode's White_Space, so "\r", "\t" and
 *     runs of blanks are all separators): the first word is "connect" in
 *     any case, the second a decimal port (an optional "+", digits, at
 *     most 4294967295); further words are ignored.
 *
 * Anything else is refused, with a phrase saying why for the log. */
#include "vsockd/vsockd.h"

#define LINE_MIN 10 /* "connect 0\n", the shortest line that can pass */

/* One UTF-8 sequence at s (n bytes left): its length and code point, or 0
 * when it is not well-formed (overlong, surrogate, beyond U+10FFFF, cut). */
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp) {
  size_t k;
  uint32_t v, min;
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  if (s[0] >= 0xc2 && s[0] <= 0xdf) {
    k = 2, v = s[0] & 0x1fu, min = 0x80;
  } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
    k = 3, v = s[0] & 0x0fu, min = 0x800;
  } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
    k = 4, v = s[0] & 0x07u, min = 0x10000;
  } else {
    return 0;
  }
  if (n < k) return 0;
  for (size_t i = 1; i < k; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    v = v << 6 | (s[i] & 0x3fu);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return k;
}

static int is_space(uint32_t c) {
  return (c >= 9 && c <= 13) || c == ' ' || c == 0x85 || c == 0xa0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
         c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

static int is_connect(const uint8_t *w, size_t n) {
  static const char want[] = "connect";
  if (n != sizeof want - 1) return 0;
  for (size_t i = 0; i < n; i++)
    if ((w[i] | 0x20) != want[i]) return 0; /* letters only in `want` */
  return 1;
}

static int parse_port(const uint8_t *w, size_t n, uint32_t *port) {
  uint64_t v = 0;
  size_t i = n > 0 && w[0] == '+';
  if (i == n) return -1;
  for (; i < n; i++) {
    if (w[i] < '0' || w[i] > '9') return -1;
    v = v * 10 + (uint64_t)(w[i] - '0');
    if (v > UINT32_MAX) return -1;
  }
  *port = (uint32_t)v;
  return 0;
}

int hcsb__vsd_connect_line(const uint8_t *buf, size_t len, size_t *line_len,
                           uint32_t *port, const char **why) {
  size_t n = 0, start[2] = {0, 0}, end[2] = {0, 0};
  unsigned words = 0;
  int in_word = 0;

  if (len < LINE_MIN) return 0;
  for (size_t i = LINE_MIN - 1; i < len && i < HCSB__VSD_LINE_MAX; i++)
    if (buf[i] == '\n') {
      n = i + 1;
      break;
    }
  if (n == 0) {
    if (len < HCSB__VSD_LINE_MAX) return 0;
    n = HCSB__VSD_LINE_MAX;
  }
  *line_len = n;
  /* The first two words, and the whole line checked as UTF-8. */
  for (size_t i = 0; i < n;) {
    uint32_t c;
    size_t k = utf8_next(buf + i, n - i, &c);
    if (k == 0) {
      *why = "the line is not valid UTF-8";
      return -1;
    }
    if (is_space(c)) {
      if (in_word && words <= 2) end[words - 1] = i;
      in_word = 0;
    } else if (!in_word) {
      in_word = 1;
      if (++words <= 2) start[words - 1] = i;
    }
    i += k;
  }
  if (in_word && words <= 2) end[words - 1] = n;
  if (words == 0 || !is_connect(buf + start[0], end[0] - start[0])) {
    *why = "the line does not start with CONNECT";
    return -1;
  }
  if (words < 2) {
    *why = "no port after CONNECT";
    return -1;
  }
  if (parse_port(buf + start[1], end[1] - start[1], port) != 0) {
    *why = "the port is not a number from 0 to 4294967295";
    return -1;
  }
  return 1;
}
