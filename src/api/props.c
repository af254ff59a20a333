/* GetProperties (PROTOCOL.md §6.8) decoded into hcsshim's ProcessList and
 * Statistics shapes.
 *
 * Why not json-c here: a process list costs json-c five allocations per
 * entry, and shims poll it in tight loops.  This decoder walks the text
 * in place (the bridge has already checked it is valid JSON) and writes
 * into buffers the container keeps and reuses, so a warm call allocates
 * nothing.  It still bounds every read itself: nothing here trusts the
 * guest.  Keys match case-insensitively, as Go's decoder does; null is
 * "absent"; a known field of the wrong type is -EPROTO. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api-int.h"

typedef struct cur_s {
  const char *p, *end;
  unsigned depth;
} cur_t;

#define MAX_DEPTH HCSB__JSON_MAX_DEPTH

static int peek(cur_t *c) {
  while (c->p < c->end &&
         (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
  return c->p < c->end ? (unsigned char)*c->p : -1;
}

/* The raw span between the quotes of a string at the cursor. */
static int str_span(cur_t *c, const char **s, size_t *n) {
  if (peek(c) != '"') return -EPROTO;
  *s = ++c->p;
  while (c->p < c->end) {
    if (*c->p == '"') {
      *n = (size_t)(c->p - *s);
      c->p++;
      return 0;
    }
    if (*c->p == '\\') {
      if (c->end - c->p < 2) return -EPROTO;
      c->p++;
    }
    c->p++;
  }
  return -EPROTO;
}

static int is_null(cur_t *c) {
  if (peek(c) == 'n' && c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
    c->p += 4;
    return 1;
  }
  return 0;
}

static int skip(cur_t *c) {
  unsigned depth = 0;
  const char *s;
  size_t n;

  do {
    int ch = peek(c);
    switch (ch) {
      case '{':
      case '[':
        if (++depth > MAX_DEPTH) return -EPROTO;
        c->p++;
        break;
      case '}':
      case ']':
        if (depth == 0) return -EPROTO;
        depth--;
        c->p++;
        break;
      case ',':
      case ':':
        if (depth == 0) return -EPROTO;
        c->p++;
        break;
      case '"':
        if (str_span(c, &s, &n) != 0) return -EPROTO;
        break;
      case -1:
        return -EPROTO;
      default: {
        const char *start = c->p;
        while (c->p < c->end && strchr(",:]} \t\r\n", *c->p) == NULL) c->p++;
        if (c->p == start) return -EPROTO;
      }
    }
  } while (depth > 0);
  return 0;
}

/* Object members: 1 with the key (cursor at its value), 0 at the end. */
static int member(cur_t *c, int *first, const char **k, size_t *kn) {
  int ch = peek(c);

  if (ch == '}') {
    c->p++;
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
static int element(cur_t *c, int *first) {
  int ch = peek(c);

  if (ch == ']') {
    c->p++;
    return 0;
  }
  if (!*first) {
    if (ch != ',') return -EPROTO;
    c->p++;
  }
  *first = 0;
  return 1;
}

/* Opens an object or array; 1 when it is null instead. */
static int open_(cur_t *c, char bracket) {
  if (is_null(c)) return 1;
  if (peek(c) != bracket) return -EPROTO;
  c->p++;
  return 0;
}

static int key_is(const char *k, size_t kn, const char *name) {
  return strlen(name) == kn && strncasecmp(k, name, kn) == 0;
}

static int read_u64(cur_t *c, uint64_t *out) {
  uint64_t v = 0;
  const char *start;

  if (is_null(c)) return 0;
  if (peek(c) < 0) return -EPROTO;
  start = c->p;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
    unsigned d = (unsigned)(*c->p - '0');
    if (v > (UINT64_MAX - d) / 10) return -EPROTO;
    v = v * 10 + d;
    c->p++;
  }
  /* Negative, fractional or exponent forms do not fit a uint64. */
  if (c->p == start || (c->p < c->end && strchr(".eE", *c->p) != NULL && *c->p))
    return -EPROTO;
  *out = v;
  return 0;
}

static int read_u32(cur_t *c, uint32_t *out) {
  uint64_t v = *out;
  int r = read_u64(c, &v);

  if (r == 0 && v > UINT32_MAX) return -EPROTO;
  *out = (uint32_t)v;
  return r;
}

static size_t put_utf8(char *o, uint32_t cp) {
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

static int hex4(const char *s, const char *end, uint32_t *out) {
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
static size_t unescape(const char *s, size_t n, char *o) {
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

/* ------------------------------------------------------------------------ */
/* ProcessList */

static int read_item(cur_t *c, hcsb_container_t *ct,
                     hcsb_process_list_item_t *it) {
  const char *k, *s;
  size_t kn, n;
  int first = 1, r;

  memset(it, 0, sizeof(*it));
  if ((r = open_(c, '{')) != 0) return r < 0 ? r : 0;
  while ((r = member(c, &first, &k, &kn)) == 1) {
    if (key_is(k, kn, "ProcessId")) {
      r = read_u32(c, &it->process_id);
    } else if (key_is(k, kn, "ImageName")) {
      if (is_null(c)) continue;
      r = str_span(c, &s, &n);
      if (r == 0) {
        /* Room was reserved for the whole text up front (no moves). */
        char *o = ct->strings.data + ct->strings.len;
        ct->strings.len += unescape(s, n, o) + 1;
        it->image_name = o;
      }
    } else if (key_is(k, kn, "KernelTime100ns")) {
      r = read_u64(c, &it->kernel_time_100ns);
    } else if (key_is(k, kn, "UserTime100ns")) {
      r = read_u64(c, &it->user_time_100ns);
    } else if (key_is(k, kn, "MemoryCommitBytes")) {
      r = read_u64(c, &it->memory_commit_bytes);
    } else {
      r = skip(c);
    }
    if (r != 0) return r;
  }
  return r;
}

static int read_process_list(cur_t *c, hcsb_container_t *ct,
                             hcsb_properties_t *props) {
  int first = 1, r;
  size_t n = 0;

  if ((r = open_(c, '[')) != 0) return r < 0 ? r : 0;
  props->has_process_list = 1;
  while ((r = element(c, &first)) == 1) {
    if (n == ct->items_cap) {
      size_t cap = ct->items_cap != 0 ? 2 * ct->items_cap : 16;
      void *grown = realloc(ct->items, cap * sizeof(*ct->items));
      if (grown == NULL) return -ENOMEM;
      ct->items = grown;
      ct->items_cap = cap;
    }
    r = read_item(c, ct, &ct->items[n]);
    if (r != 0) return r;
    n++;
  }
  if (r != 0) return r;
  props->nprocesses = n;
  props->processes = ct->items;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* LCOWMetrics (containerd's cgroup v1 Metrics, snake_case) */

typedef struct field_s {
  const char *name;
  uint64_t *out;
} field_t;

/* An object of numbers: the named ones are read, the rest skipped. */
static int read_fields(cur_t *c, const field_t *fields, size_t nfields,
                       int *present) {
  const char *k;
  size_t kn, i;
  int first = 1, r;

  if ((r = open_(c, '{')) != 0) return r < 0 ? r : 0;
  if (present != NULL) *present = 1;
  while ((r = member(c, &first, &k, &kn)) == 1) {
    for (i = 0; i < nfields; i++)
      if (key_is(k, kn, fields[i].name)) break;
    r = i < nfields ? read_u64(c, fields[i].out) : skip(c);
    if (r != 0) return r;
  }
  return r;
}

static int read_cpu(cur_t *c, hcsb_statistics_t *st) {
  const field_t usage[] = {{"total", &st->cpu_total_ns},
                           {"user", &st->cpu_user_ns},
                           {"kernel", &st->cpu_kernel_ns}};
  const field_t throttling[] = {
      {"throttled_periods", &st->cpu_throttled_periods},
      {"throttled_time", &st->cpu_throttled_time_ns}};
  const char *k;
  size_t kn;
  int first = 1, r;

  if ((r = open_(c, '{')) != 0) return r < 0 ? r : 0;
  st->has_cpu = 1;
  while ((r = member(c, &first, &k, &kn)) == 1) {
    if (key_is(k, kn, "usage"))
      r = read_fields(c, usage, 3, NULL);
    else if (key_is(k, kn, "throttling"))
      r = read_fields(c, throttling, 2, NULL);
    else
      r = skip(c);
    if (r != 0) return r;
  }
  return r;
}

static int read_memory(cur_t *c, hcsb_statistics_t *st) {
  const field_t usage[] = {{"usage", &st->memory_usage_bytes},
                           {"max", &st->memory_max_usage_bytes},
                           {"limit", &st->memory_limit_bytes}};
  const char *k;
  size_t kn;
  int first = 1, r;

  if ((r = open_(c, '{')) != 0) return r < 0 ? r : 0;
  st->has_memory = 1;
  while ((r = member(c, &first, &k, &kn)) == 1) {
    if (key_is(k, kn, "usage"))
      r = read_fields(c, usage, 3, NULL);
    else if (key_is(k, kn, "cache"))
      r = read_u64(c, &st->memory_cache_bytes);
    else if (key_is(k, kn, "rss"))
      r = read_u64(c, &st->memory_rss_bytes);
    else
      r = skip(c);
    if (r != 0) return r;
  }
  return r;
}

/* [{"major","minor","op","value"}...]: values summed per Read/Write. */
static int read_blkio_entries(cur_t *c, uint64_t *read, uint64_t *write) {
  int first = 1, r;

  if ((r = open_(c, '[')) != 0) return r < 0 ? r : 0;
  while ((r = element(c, &first)) == 1) {
    const char *k, *op = NULL;
    size_t kn, opn = 0;
    uint64_t value = 0, *sum;
    int mfirst = 1;

    if ((r = open_(c, '{')) != 0) {
      if (r < 0) return r;
      continue;
    }
    while ((r = member(c, &mfirst, &k, &kn)) == 1) {
      if (key_is(k, kn, "op"))
        r = is_null(c) ? 0 : str_span(c, &op, &opn);
      else if (key_is(k, kn, "value"))
        r = read_u64(c, &value);
      else
        r = skip(c);
      if (r != 0) return r;
    }
    if (r != 0) return r;
    if (op != NULL && key_is(op, opn, "Read"))
      sum = read;
    else if (op != NULL && key_is(op, opn, "Write"))
      sum = write;
    else
      sum = NULL;
    /* A total that does not fit is as unusable as a value that does not:
     * never report a wrapped-around count. */
    if (sum != NULL && value > UINT64_MAX - *sum) return -EPROTO;
    if (sum != NULL) *sum += value;
  }
  return r;
}

static int read_blkio(cur_t *c, hcsb_statistics_t *st) {
  const char *k;
  size_t kn;
  int first = 1, r;

  if ((r = open_(c, '{')) != 0) return r < 0 ? r : 0;
  st->has_blkio = 1;
  while ((r = member(c, &first, &k, &kn)) == 1) {
    if (key_is(k, kn, "io_service_bytes_recursive"))
      r = read_blkio_entries(c, &st->blkio_read_bytes, &st->blkio_write_bytes);
    else if (key_is(k, kn, "io_serviced_recursive"))
      r = read_blkio_entries(c, &st->blkio_read_ops, &st->blkio_write_ops);
    else
      r = skip(c);
    if (r != 0) return r;
  }
  return r;
}

static int read_metrics(cur_t *c, hcsb_properties_t *props) {
  hcsb_statistics_t *st = &props->statistics;
  const field_t pids[] = {{"current", &st->pids_current},
                          {"limit", &st->pids_limit}};
  const char *k;
  size_t kn;
  int first = 1, r;

  if ((r = open_(c, '{')) != 0) return r < 0 ? r : 0;
  props->has_statistics = 1;
  while ((r = member(c, &first, &k, &kn)) == 1) {
    if (key_is(k, kn, "cpu"))
      r = read_cpu(c, st);
    else if (key_is(k, kn, "memory"))
      r = read_memory(c, st);
    else if (key_is(k, kn, "pids"))
      r = read_fields(c, pids, 2, &st->has_pids);
    else if (key_is(k, kn, "blkio"))
      r = read_blkio(c, st);
    else
      r = skip(c);
    if (r != 0) return r;
  }
  return r;
}

int hcsb__props_decode(hcsb_container_t *ct, const char *text, size_t len,
                       hcsb_properties_t *props) {
  cur_t c = {text, text + len, 0};
  const char *k;
  size_t kn;
  int first = 1, r;

  memset(props, 0, sizeof(*props));
  props->json = text != NULL ? text : "";
  props->json_len = len;
  if (len == 0) return 0; /* nothing was asked for */
  ct->strings.len = 0;
  if (hcsb__buf_reserve(&ct->strings, len + 1) != 0) return -ENOMEM;
  if (peek(&c) != '{') return -EPROTO;
  c.p++;
  while ((r = member(&c, &first, &k, &kn)) == 1) {
    if (key_is(k, kn, "ProcessList"))
      r = read_process_list(&c, ct, props);
    else if (key_is(k, kn, "LCOWMetrics"))
      r = read_metrics(&c, props);
    else
      r = skip(&c);
    if (r != 0) return r;
  }
  if (r != 0) return r;
  if (peek(&c) != -1) return -EPROTO;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The RPC */

static void deliver_props(hcsb__op_t *op, int status,
                          const hcsb_guest_error_t *gerr,
                          const hcsb_response_t *resp) {
  hcsb_container_t *ct = (hcsb_container_t *)op->owner;
  hcsb_properties_t props;
  char aid[37];

  if (status == 0) {
    status =
        hcsb__props_decode(ct, resp != NULL ? resp->properties : NULL,
                           resp != NULL ? resp->properties_len : 0, &props);
    if (status != 0)
      hcsb__api_log(op->owner->conn, HCSB_LOG_WARN, hcsb__op_activity(op, aid),
                    "container %s: unusable Properties: %s", ct->id,
                    hcsb_strerror(status));
  }
  op->cb.props(op->data, status, gerr, status == 0 ? &props : NULL);
}

static const hcsb__op_class_t props_op = {NULL, deliver_props, NULL};

/* The Query texts, one per combination of HCSB_PROPERTY_* bits. */
static const char *const queries[4] = {
    NULL, "{\"PropertyTypes\":[\"ProcessList\"]}",
    "{\"PropertyTypes\":[\"Statistics\"]}",
    "{\"PropertyTypes\":[\"ProcessList\",\"Statistics\"]}"};

int hcsb_container_properties(hcsb_container_t *c, const hcsb_call_opts_t *opts,
                              unsigned types, hcsb_properties_cb cb,
                              void *data) {
  hcsb_request_t req;
  hcsb__op_t *op;
  int r;

  if (c == NULL || cb == NULL || types == 0 ||
      (types & ~(HCSB_PROPERTY_PROCESS_LIST | HCSB_PROPERTY_STATISTICS)) != 0)
    return -EINVAL;
  op = hcsb__op_new(&c->obj, opts, c->obj.conn->call_timeout_ms, &props_op, &r);
  if (op == NULL) return r;
  op->cb.props = cb;
  op->data = data;
  memset(&req, 0, sizeof(req));
  req.type = HCSB_MSG_GET_PROPERTIES;
  req.container_id = c->id;
  req.u.get_properties.query = queries[types];
  r = hcsb__op_send(op, &req);
  if (r != 0) hcsb__op_discard(op);
  return r;
}

int hcsb_container_statistics(hcsb_container_t *c, const hcsb_call_opts_t *opts,
                              hcsb_properties_cb cb, void *data) {
  return hcsb_container_properties(c, opts, HCSB_PROPERTY_STATISTICS, cb, data);
}

int hcsb_container_process_list(hcsb_container_t *c,
                                const hcsb_call_opts_t *opts,
                                hcsb_properties_cb cb, void *data) {
  return hcsb_container_properties(c, opts, HCSB_PROPERTY_PROCESS_LIST, cb,
                                   data);
}
