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

#include "proto/flat.h"
#include "proto/plain.h"

/* Inline even where the compiler would not (an outlined GUID check costs
 * a tenth of it in the call). */
#if defined(__GNUC__) || defined(__clang__)
#define FLAT_HOT static inline __attribute__((always_inline))
#else
#define FLAT_HOT static inline
#endif

enum { V_NULL, V_INT, V_STR };

typedef struct {
  int kind;
  int esc; /* V_STR: holds backslash escapes (all of the one-letter kind) */
  int64_t num;
  const char *s; /* V_STR: the raw text between the quotes */
  size_t len;
} value_t;

static const char *ws(const char *p, const char *end) {
  /* Go writes no whitespace between tokens: that case first. */
  if (p < end && (unsigned char)*p > ' ') return p;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* The one-letter escapes: \" \\ \/ \b \f \n \r \t (\u is json-c's to
 * decode). */
static int one_letter_escape(unsigned char c) {
  return c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' ||
         c == 'n' || c == 'r' || c == 't';
}

/* A string of printable ASCII, with one-letter escapes when `esc` is not
 * NULL (then set when there were any); returns past the closing quote, or
 * NULL for anything else. */
static const char *scan_string(const char *p, const char *end, int *esc) {
  const unsigned char *u = (const unsigned char *)p;
  const unsigned char *e = (const unsigned char *)end;

  for (;;) {
    u += hcsb__plain_run(u, e);
    if (u == e) return NULL;
    if (*u == '"') return (const char *)u + 1;
    if (*u != '\\' || esc == NULL || e - u < 2 || !one_letter_escape(u[1]))
      return NULL; /* control, non-ASCII, or an escape not ours */
    *esc = 1;
    u += 2;
  }
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

static const char *value(const char *p, const char *end, value_t *v) {
  if (p < end && *p == '"') {
    v->kind = V_STR;
    v->esc = 0;
    v->s = p + 1;
    p = scan_string(p + 1, end, &v->esc);
    if (p != NULL) v->len = (size_t)(p - 1 - v->s);
    return p;
  }
  if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
    v->kind = V_NULL;
    return p + 4;
  }
  v->kind = V_INT;
  v->num = 0;
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

/* The keys read for a response type, a bit per K_ value. */
static unsigned keys_read_for(uint32_t type) {
  unsigned m =
      1u << K_RESULT | 1u << K_ACTIVITY | 1u << K_MESSAGE | 1u << K_RECORDS;

  switch (type) {
    case HCSB_MSG_WAIT_FOR_PROCESS_RESPONSE:
      return m | 1u << K_EXIT;
    case HCSB_MSG_EXECUTE_PROCESS_RESPONSE:
      return m | 1u << K_PID;
    case HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE:
      return m | 1u << K_VERSION | 1u << K_CAPS;
    case HCSB_MSG_GET_PROPERTIES_RESPONSE:
      return m | 1u << K_PROPS;
    case HCSB_MSG_DUMP_STACKS_RESPONSE:
      return m | 1u << K_STACKS;
    default:
      return m;
  }
}

/* memcmp(a, b, n) == 0 for 4 <= n <= 16, in two loads a side. */
static inline int same_bytes(const char *a, const char *b, size_t n) {
  uint64_t x, y, x2, y2;
  uint32_t s, t, s2, t2;

  if (n >= 8) {
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    memcpy(&x2, a + n - 8, 8);
    memcpy(&y2, b + n - 8, 8);
    return x == y && x2 == y2;
  }
  memcpy(&s, a, 4);
  memcpy(&t, b, 4);
  memcpy(&s2, a + n - 4, 4);
  memcpy(&t2, b + n - 4, 4);
  return s == t && s2 == t2;
}

/* `name` (n bytes, printable ASCII) spells `lower` (lower-case letters)
 * in any case.  For a letter l, (c | 0x20) == l holds only for l and its
 * capital. */
static int same_letters(const char *name, const char *lower, size_t n) {
  size_t i;

  for (i = 0; i < n; i++)
    if (((unsigned char)name[i] | 0x20) != (unsigned char)lower[i]) return 0;
  return 1;
}

/* Which read key `name` is, -1 for an ignored key, -2 to give up (a case
 * variant of a read key: the json-c path's matching rules apply).  Keys of
 * one length differ in more than case, so at most one can match. */
static int classify(const char *name, size_t n, unsigned read) {
  static const struct {
    const char *name, *lower;
  } keys[K_COUNT] = {
      {"Result", "result"},
      {"ActivityId", "activityid"},
      {"ErrorMessage", "errormessage"},
      {"ErrorRecords", "errorrecords"},
      {"ExitCode", "exitcode"},
      {"ProcessId", "processid"},
      {"Version", "version"},
      {"Capabilities", "capabilities"},
      {"Properties", "properties"},
      {"GuestStacks", "gueststacks"},
  };
  static const signed char by_len[13][3] = {
      [6] = {K_RESULT, -1, -1},
      [7] = {K_VERSION, -1, -1},
      [8] = {K_EXIT, -1, -1},
      [9] = {K_PID, -1, -1},
      [10] = {K_ACTIVITY, K_PROPS, -1},
      [11] = {K_STACKS, -1, -1},
      [12] = {K_MESSAGE, K_RECORDS, K_CAPS},
  };
  size_t i;

  if (n < 6 || n > 12) return -1;
  /* The exact spelling (what a Go guest sends) first. */
  for (i = 0; i < 3; i++) {
    int k = by_len[n][i];
    if (k < 0) break;
    if (same_bytes(name, keys[k].name, n)) return (read >> k) & 1 ? k : -1;
  }
  for (i = 0; i < 3; i++) {
    int k = by_len[n][i];
    if (k < 0) break;
    if (same_letters(name, keys[k].lower, n)) return (read >> k) & 1 ? -2 : -1;
  }
  return -1;
}

/* A key spelled exactly as a Go guest does, with its closing quote and the
 * colon right after it, at `p`: which key (-1: one not read, by `read`),
 * its length in *len; -3 when it is not one of them (then the key is
 * scanned and classified, whitespace and all).  Every such text is at
 * least 8 bytes, and (p[2] + 4 * p[5]) mod 16 differs for each of them, so
 * one table look-up names the only candidate and one compare covers the
 * key, its quote and the colon. */
static int exact_key(const char *p, const char *end, unsigned read,
                     size_t *len) {
  static const struct {
    unsigned char len;
    const char *text; /* with the quote and the colon */
  } cands[K_COUNT] = {
      [K_RESULT] = {6, "Result\":"},
      [K_ACTIVITY] = {10, "ActivityId\":"},
      [K_MESSAGE] = {12, "ErrorMessage\":"},
      [K_RECORDS] = {12, "ErrorRecords\":"},
      [K_EXIT] = {8, "ExitCode\":"},
      [K_PID] = {9, "ProcessId\":"},
      [K_VERSION] = {7, "Version\":"},
      [K_CAPS] = {12, "Capabilities\":"},
      [K_PROPS] = {10, "Properties\":"},
      [K_STACKS] = {11, "GuestStacks\":"},
  };
  /* By (p[2] + 4 * p[5]) & 15; -1: none. */
  static const signed char slot[16] = {
      -1,        K_STACKS, -1,         K_RESULT, K_CAPS,    K_EXIT,
      K_MESSAGE, K_PROPS,  K_ACTIVITY, -1,       K_RECORDS, K_PID,
      -1,        -1,       K_VERSION,  -1};
  size_t n;
  int k;

  if (end - p < 8) return -3;
  k = slot[((unsigned char)p[2] + ((unsigned)(unsigned char)p[5] << 2)) & 15];
  if (k < 0) return -3;
  n = cands[k].len;
  if ((size_t)(end - p) < n + 2 || !same_bytes(p, cands[k].text, n + 2))
    return -3;
  *len = n;
  return (read >> k) & 1 ? k : -1;
}

/* What a one-letter escape stands for (0: not one of ours). */
static char unescaped(unsigned char c) {
  /* clang-format off */
  static const char table[256] = {
      ['"'] = '"', ['\\'] = '\\', ['/'] = '/', ['b'] = '\b',
      ['f'] = '\f', ['n'] = '\n', ['r'] = '\r', ['t'] = '\t'};
  /* clang-format on */
  return table[c];
}

/* A GUID's length of plain bytes and then the closing quote at `u`: the
 * shape of every ActivityId, checked in five words and copied whole. */
FLAT_HOT int plain36(const unsigned char *u, const unsigned char *e) {
  uint64_t w[5];

  if (e - u < 37 || u[36] != '"') return 0;
#if HCSB__PLAIN_SSE2
  /* Three overlapping 16-byte blocks: 0-15, 16-31, 20-35. */
  return (hcsb__special16(_mm_loadu_si128((const __m128i *)(const void *)u)) |
          hcsb__special16(
              _mm_loadu_si128((const __m128i *)(const void *)(u + 16))) |
          hcsb__special16(
              _mm_loadu_si128((const __m128i *)(const void *)(u + 20)))) == 0;
#endif
  memcpy(w, u, 32);
  memcpy(&w[4], u + 28, 8);
  return (hcsb__word_special(w[0]) | hcsb__word_special(w[1]) |
          hcsb__word_special(w[2]) | hcsb__word_special(w[3]) |
          hcsb__word_special(w[4])) == 0;
}

/* Reads the string whose text starts at `p` (past its opening quote) into
 * the context's store, unescaped and NUL-terminated, in one pass; returns
 * past the closing quote, or NULL when it is no flat string or does not fit
 * (then nothing is kept).  *out and *n get the copy and its length.  A
 * `guid` (an ActivityId) is tried as one first. */
static const char *store_string(hcsb__decode_ctx_t *ctx, size_t *used,
                                const char *p, const char *end, int guid,
                                const char **out, size_t *n) {
  const unsigned char *u = (const unsigned char *)p;
  const unsigned char *e = (const unsigned char *)end;
  char *dst = ctx->flat_strs + *used, *q = dst;
  char *lim = ctx->flat_strs + sizeof(ctx->flat_strs) - 1; /* the NUL's */
  uint64_t w, m;
  char c;

  if (guid && lim - q >= 36 && plain36(u, e)) {
    memcpy(q, u, 36);
    u += 36;
    q += 36;
    goto done;
  }
  for (;;) {
#if HCSB__PLAIN_SSE2
    /* The same sixteen bytes at a time, in a loop of its own while a
     * block and the byte after it lie within the body and the block fits
     * the store (so an escape's letter can be read unchecked). */
    if (e - u >= 17 && lim - q >= 16) {
      const unsigned char *ustop = e - 17;
      const char *qstop = lim - 16;
      do {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)u);
        unsigned m16 = hcsb__special16(x);
        _mm_storeu_si128((__m128i *)(void *)q, x);
        if (m16 == 0) {
          u += 16;
          q += 16;
          continue;
        }
        m16 = (unsigned)__builtin_ctz(m16);
        u += m16;
        q += m16;
        if (*u != '\\') {
          if (*u == '"') goto done;
          return NULL; /* control, non-ASCII */
        }
        if ((c = unescaped(u[1])) == 0) return NULL; /* \u too */
        *q++ = c;
        u += 2;
      } while (u <= ustop && q <= qstop);
      continue;
    }
#endif
    /* Eight bytes at a time while both sides have room: the whole word is
     * stored, and only its plain prefix counts; the special byte it stops
     * at (inside the word, so within both ends) is handled right here. */
    if (e - u >= 8 && lim - q >= 8) {
      memcpy(&w, u, 8);
      memcpy(q, &w, 8);
      m = hcsb__word_special(w);
      if (m == 0) {
        u += 8;
        q += 8;
        continue;
      }
      if (HCSB__PLAIN_LE) {
        size_t run = hcsb__plain_prefix(m);
        u += run;
        q += run;
        if (*u == '"') break;
        /* The word had room for the backslash; `e` is checked for its
         * letter. */
        if (*u != '\\' || e - u < 2 || (c = unescaped(u[1])) == 0)
          return NULL; /* control, non-ASCII, \u */
        *q++ = c;
        u += 2;
        continue;
      }
    }
    if (u == e || q == lim) return NULL;
    if (*u == '\\') {
      if (e - u < 2 || (c = unescaped(u[1])) == 0) return NULL; /* \u too */
      *q++ = c;
      u += 2;
    } else if (*u == '"') {
      break;
    } else if (hcsb__is_plain(*u)) { /* near the ends, or big-endian */
      *q++ = (char)*u++;
    } else {
      return NULL; /* control, non-ASCII */
    }
  }
done:
  *q = '\0';
  *out = dst;
  *n = (size_t)(q - dst);
  *used += *n + 1;
  return (const char *)u + 1;
}

/* How every successful answer of a Go guest starts:
 * {"Result":0,"ActivityId":"<36 plain bytes>" - what the loop below would
 * read as Result 0 and that ActivityId, taken in a few word compares.  The
 * loop goes on from the byte after the GUID's closing quote. */
#define HEAD_LEN 26 /* {"Result":0,"ActivityId":" */
static int go_success_head(const char *p, const char *end) {
  static const char head[32] = "{\"Result\":0,\"ActivityId\":\"";
  uint64_t a[4], b[4];

  if (end - p < HEAD_LEN + 37) return 0;
  memcpy(a, p, 24);
  memcpy(&a[3], p + HEAD_LEN - 8, 8);
  memcpy(b, head, 24);
  memcpy(&b[3], head + HEAD_LEN - 8, 8);
  if (((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) != 0)
    return 0;
  return plain36((const unsigned char *)p + HEAD_LEN,
                 (const unsigned char *)end);
}

/* What follows the head in a GetProperties answer, up to and with the
 * opening quote of the Properties string. */
#define PROPS_KEY ",\"Properties\":\""
#define PROPS_KEY_LEN (sizeof(PROPS_KEY) - 1)

int hcsb__response_decode_flat(hcsb__decode_ctx_t *ctx, uint32_t type,
                               const char *body, size_t len,
                               hcsb_response_t *resp, const char **message) {
  const char *p = body, *end = body + len, *key, *s;
  unsigned seen = 0, read = keys_read_for(type);
  size_t klen, slen, used = 0;
  value_t v = {V_NULL, 0, 0, NULL, 0};
  int k;

  *message = NULL;
  if (go_success_head(body, end)) {
    /* The GUID is plain, so its copy is the text itself. */
    memcpy(ctx->flat_strs, body + HEAD_LEN, 36);
    ctx->flat_strs[36] = '\0';
    resp->activity_id = ctx->flat_strs;
    used = 37;
    seen = 1u << K_RESULT | 1u << K_ACTIVITY;
    p = body + HEAD_LEN + 37;
    /* A GetProperties answer goes on with its Properties string. */
    if ((read >> K_PROPS) & 1 && (size_t)(end - p) > PROPS_KEY_LEN &&
        memcmp(p, PROPS_KEY, PROPS_KEY_LEN) == 0) {
      k = K_PROPS;
      seen |= 1u << K_PROPS;
      p += PROPS_KEY_LEN - 1; /* at the string's opening quote */
      goto take_string;
    }
    goto next;
  }
  p = ws(p, end);
  if (p == end || *p != '{') return 0;
  p = ws(p + 1, end);
  if (p < end && *p == '}') return 0; /* no Result: the error is theirs */
  for (;;) {
    if (p == end || *p != '"') return 0;
    key = p + 1;
    k = exact_key(key, end, read, &klen);
    if (k == -3) {
      p = scan_string(key, end, NULL);
      if (p == NULL) return 0;
      klen = (size_t)(p - 1 - key);
      k = classify(key, klen, read);
      p = ws(p, end);
      if (p == end || *p != ':') return 0;
      p++;
    } else {
      p = key + klen + 2;
    }
    p = ws(p, end);

    if (k == -2) return 0;
    if (k >= 0) {
      if (seen & (1u << k)) return 0; /* repeated: last-wins is theirs */
      seen |= 1u << k;
    }
    /* The strings kept are copied as they are read. */
  take_string:
    if ((k == K_ACTIVITY || k == K_MESSAGE || k == K_PROPS) && p < end &&
        *p == '"') {
      p = store_string(ctx, &used, p + 1, end, k == K_ACTIVITY, &s, &slen);
      if (p == NULL) return 0;
      if (k == K_ACTIVITY) {
        resp->activity_id = s;
      } else if (k == K_MESSAGE) {
        *message = s;
      } else if (slen > 0) {
        /* JSON in a string: "" counts as absent; text that is not one
         * valid JSON value is the json-c path's error to report. */
        if (!ctx->props_unchecked &&
            hcsb__json_validate(s, slen, HCSB__JSON_MAX_DEPTH) < 0)
          return 0;
        resp->properties = s;
        resp->properties_len = slen;
      }
      goto next;
    }
    p = value(p, end, &v);
    if (p == NULL) return 0;

    switch (k) {
      case -1:
        break;
      case K_RESULT:
        if (v.kind != V_INT || v.num < INT32_MIN || v.num > INT32_MAX) return 0;
        resp->result = (uint32_t)(int32_t)v.num;
        break;
      case K_ACTIVITY:
      case K_MESSAGE:
      case K_PROPS:
        /* Strings were taken above; null is absent. */
        if (v.kind != V_NULL) return 0;
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
      default:
        /* Records, capabilities, stacks: only null is flat. */
        if (v.kind != V_NULL) return 0;
        break;
    }

  next:
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
