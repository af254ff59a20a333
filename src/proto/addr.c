/* The address syntax documented in <hcsbridge/messages.h>.
 *
 * Strict on purpose: an address usually comes from a command line or a
 * config file, and a typo silently turned into a default (another port,
 * no timeout) is far harder to debug than an -EINVAL. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proto/proto.h"

#define DEFAULT_TIMEOUT_MS 120000u

/* Options a scheme accepts. */
#define OPT_TIMEOUT 1u
#define OPT_STDIO 2u
#define OPT_PEER 4u

static const struct scheme {
  const char *prefix;
  hcsb_transport_t transport;
  int listen;
  unsigned opts;
} schemes[] = {
    /* Longest prefixes first: "vsock+connect://" must not match "vsock". */
    {"hvsock+fc+connect://", HCSB_TRANSPORT_HVSOCK_HYBRID, 0, OPT_TIMEOUT},
    {"hvsock+fc://", HCSB_TRANSPORT_HVSOCK_HYBRID, 1, OPT_TIMEOUT},
    {"vsock+connect://", HCSB_TRANSPORT_VSOCK, 0, OPT_TIMEOUT},
    {"vsock://", HCSB_TRANSPORT_VSOCK, 1, OPT_TIMEOUT | OPT_PEER},
    {"unix+connect://", HCSB_TRANSPORT_UNIX, 0, OPT_TIMEOUT | OPT_STDIO},
    {"unix://", HCSB_TRANSPORT_UNIX, 1, OPT_TIMEOUT | OPT_STDIO},
    {"fd://", HCSB_TRANSPORT_FD, 0, OPT_TIMEOUT | OPT_STDIO},
    {"spawn:", HCSB_TRANSPORT_SPAWN, 0, 0},
};

/* Decimal, or hexadecimal with 0x; no sign, no spaces, no overflow. */
static int parse_u32(const char *s, size_t n, uint32_t *out) {
  uint64_t v = 0;
  unsigned base = 10, d;
  size_t i = 0;

  if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    i = 2;
  }
  if (i == n) return -EINVAL;
  for (; i < n; i++) {
    char c = s[i];
    if (c >= '0' && c <= '9')
      d = (unsigned)(c - '0');
    else if (base == 16 && c >= 'a' && c <= 'f')
      d = (unsigned)(c - 'a' + 10);
    else if (base == 16 && c >= 'A' && c <= 'F')
      d = (unsigned)(c - 'A' + 10);
    else
      return -EINVAL;
    v = v * base + d;
    if (v > UINT32_MAX) return -EINVAL;
  }
  *out = (uint32_t)v;
  return 0;
}

static int parse_cid(const char *s, size_t n, uint32_t *out) {
  if (n == 3 && strncasecmp(s, "ANY", 3) == 0) {
    *out = HCSB_VSOCK_CID_ANY;
    return 0;
  }
  return parse_u32(s, n, out);
}

static int copy_str(char *dst, size_t cap, const char *s, size_t n) {
  if (n == 0) return -EINVAL;
  if (memchr(s, '\0', n) != NULL) return -EINVAL;
  if (n >= cap) return -ENAMETOOLONG;
  memcpy(dst, s, n);
  dst[n] = '\0';
  return 0;
}

/* "key=value&key=value" */
static int parse_options(const char *s, unsigned allowed, hcsb_addr_t *a) {
  unsigned seen = 0, opt;
  const char *end, *eq;
  size_t klen;
  int r;

  for (;;) {
    end = strchr(s, '&');
    if (end == NULL) end = s + strlen(s);
    eq = memchr(s, '=', (size_t)(end - s));
    if (eq == NULL) return -EINVAL;
    klen = (size_t)(eq - s);
    if (klen == 7 && memcmp(s, "timeout", 7) == 0)
      opt = OPT_TIMEOUT;
    else if (klen == 5 && memcmp(s, "stdio", 5) == 0)
      opt = OPT_STDIO;
    else if (klen == 4 && memcmp(s, "peer", 4) == 0)
      opt = OPT_PEER;
    else
      return -EINVAL;
    if (!(allowed & opt) || (seen & opt)) return -EINVAL;
    seen |= opt;
    eq++;
    if (opt == OPT_TIMEOUT) {
      r = parse_u32(eq, (size_t)(end - eq), &a->timeout_ms);
    } else if (opt == OPT_STDIO) {
      r = copy_str(a->stdio_dir, sizeof(a->stdio_dir), eq, (size_t)(end - eq));
    } else {
      r = parse_cid(eq, (size_t)(end - eq), &a->peer_cid);
      /* A filter that lets every peer through is a typo, not a wish. */
      if (r == 0 && a->peer_cid == HCSB_VSOCK_CID_ANY) r = -EINVAL;
      a->has_peer_cid = 1;
    }
    if (r != 0) return r;
    if (*end == '\0') return 0;
    s = end + 1;
  }
}

/* "CID[:PORT]" */
static int parse_vsock(const char *s, size_t n, hcsb_addr_t *a) {
  const char *colon = memchr(s, ':', n);
  size_t cid_len = colon != NULL ? (size_t)(colon - s) : n;
  int r;

  r = parse_cid(s, cid_len, &a->cid);
  if (r != 0) return r;
  /* A dial needs a real peer. */
  if (!a->listen && a->cid == HCSB_VSOCK_CID_ANY) return -EINVAL;
  if (colon == NULL) return 0;
  return parse_u32(colon + 1, n - cid_len - 1, &a->port);
}

/* "PATH[:PORT]": a colon in the path is only allowed when a port follows. */
static int parse_hybrid(const char *s, size_t n, hcsb_addr_t *a) {
  const char *colon = NULL, *p;
  int r;

  for (p = s; p < s + n; p++)
    if (*p == ':') colon = p;
  if (colon != NULL) {
    r = parse_u32(colon + 1, (size_t)(s + n - colon - 1), &a->port);
    if (r != 0) return r;
    n = (size_t)(colon - s);
  }
  return copy_str(a->path, sizeof(a->path), s, n);
}

static int parse_fd(const char *s, size_t n, hcsb_addr_t *a) {
  uint32_t v;
  size_t i;

  /* Decimal only: a descriptor number is never written in hex. */
  for (i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return -EINVAL;
  if (parse_u32(s, n, &v) != 0 || v > INT_MAX) return -EINVAL;
  a->fd = (int)v;
  return 0;
}

int hcsb_addr_parse(const char *address, hcsb_addr_t *out) {
  const struct scheme *sc = NULL;
  const char *rest, *q;
  hcsb_addr_t a;
  size_t i, n;
  int r;

  if (address == NULL || out == NULL) return -EINVAL;
  for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
    if (strncmp(address, schemes[i].prefix, strlen(schemes[i].prefix)) == 0) {
      sc = &schemes[i];
      break;
    }
  }
  if (sc == NULL) return -EINVAL;

  memset(&a, 0, sizeof(a));
  a.transport = sc->transport;
  a.listen = sc->listen;
  a.cid = HCSB_VSOCK_CID_ANY;
  a.port = HCSB_PORT_BRIDGE;
  a.fd = -1;
  a.timeout_ms = DEFAULT_TIMEOUT_MS;
  rest = address + strlen(sc->prefix);

  if (sc->transport == HCSB_TRANSPORT_SPAWN) {
    r = copy_str(a.command, sizeof(a.command), rest, strlen(rest));
    if (r != 0) return r;
    *out = a;
    return 0;
  }

  q = strchr(rest, '?');
  n = q != NULL ? (size_t)(q - rest) : strlen(rest);
  if (q != NULL) {
    r = parse_options(q + 1, sc->opts, &a);
    if (r != 0) return r;
  }
  switch (sc->transport) {
    case HCSB_TRANSPORT_VSOCK:
      r = parse_vsock(rest, n, &a);
      break;
    case HCSB_TRANSPORT_HVSOCK_HYBRID:
      r = parse_hybrid(rest, n, &a);
      break;
    case HCSB_TRANSPORT_UNIX:
      r = copy_str(a.path, sizeof(a.path), rest, n);
      break;
    default:
      r = parse_fd(rest, n, &a);
      break;
  }
  if (r != 0) return r;
  *out = a;
  return 0;
}

static const char *scheme_prefix(const hcsb_addr_t *a) {
  size_t i;

  for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
    if (schemes[i].transport == a->transport &&
        (schemes[i].listen != 0) == (a->listen != 0))
      return schemes[i].prefix;
  }
  return NULL;
}

/* Appends with snprintf semantics: *total counts what would be written. */
static void __attribute__((format(printf, 4, 5)))
emit(char *buf, size_t len, size_t *total, const char *fmt, ...) {
  va_list ap;
  int n;

  va_start(ap, fmt);
  if (*total < len)
    n = vsnprintf(buf + *total, len - *total, fmt, ap);
  else
    n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n > 0) *total += (size_t)n;
}

static void emit_cid(char *buf, size_t len, size_t *total, uint32_t cid) {
  if (cid == HCSB_VSOCK_CID_ANY)
    emit(buf, len, total, "ANY");
  else
    emit(buf, len, total, "%u", (unsigned)cid);
}

int hcsb_addr_format(const hcsb_addr_t *a, char *buf, size_t len) {
  const char *prefix;
  size_t total = 0;
  char sep = '?';

  if (a == NULL) return -EINVAL;
  prefix = a->transport == HCSB_TRANSPORT_SPAWN ? "spawn:" : scheme_prefix(a);
  if (prefix == NULL) return -EINVAL;
  if (len > 0) buf[0] = '\0';
  emit(buf, len, &total, "%s", prefix);
  switch (a->transport) {
    case HCSB_TRANSPORT_SPAWN:
      emit(buf, len, &total, "%s", a->command);
      return total > INT_MAX ? -EINVAL : (int)total;
    case HCSB_TRANSPORT_VSOCK:
      emit_cid(buf, len, &total, a->cid);
      emit(buf, len, &total, ":%u", (unsigned)a->port);
      break;
    case HCSB_TRANSPORT_HVSOCK_HYBRID:
      if (strchr(a->path, '?') != NULL) return -EINVAL;
      emit(buf, len, &total, "%s:%u", a->path, (unsigned)a->port);
      break;
    case HCSB_TRANSPORT_UNIX:
      if (strchr(a->path, '?') != NULL) return -EINVAL;
      emit(buf, len, &total, "%s", a->path);
      break;
    default:
      emit(buf, len, &total, "%d", a->fd);
      break;
  }
  if (a->transport == HCSB_TRANSPORT_VSOCK && a->listen && a->has_peer_cid) {
    emit(buf, len, &total, "%cpeer=", sep);
    emit_cid(buf, len, &total, a->peer_cid);
    sep = '&';
  }
  if (a->timeout_ms != DEFAULT_TIMEOUT_MS) {
    emit(buf, len, &total, "%ctimeout=%u", sep, (unsigned)a->timeout_ms);
    sep = '&';
  }
  if (a->stdio_dir[0] != '\0' && (a->transport == HCSB_TRANSPORT_UNIX ||
                                  a->transport == HCSB_TRANSPORT_FD)) {
    /* Only '&' would cut the value short: after the first '?' starts the
     * options, the parser takes a later '?' as part of a value. */
    if (strchr(a->stdio_dir, '&') != NULL) return -EINVAL;
    emit(buf, len, &total, "%cstdio=%s", sep, a->stdio_dir);
  }
  return total > INT_MAX ? -EINVAL : (int)total;
}
