/* OpenCensus span contexts sent as a request's `ocsc` (protocol.md §5.2),
 * so a v0.11 guest parents its "opengcs::bridge::request" span on the
 * caller's.
 *
 * A context is encoded once, when it is set, into the JSON object text the
 * requests carry; each operation takes a reference to the one in effect
 * when it started, so all of its requests (a create's several steps, a
 * signal held until its process exists) carry the same context, whatever
 * is set later.  Contexts live in a per-connection slot table and are
 * named by index: an op has room for 4 bytes, not for a pointer. */
#include <stdlib.h>
#include <string.h>

#include "api/api-int.h"

/* Live contexts per connection: each set that is still referenced by a
 * pending op holds one. */
#define TRACE_MAX_SLOTS 65536u

struct hcsb__trace_s {
  uint32_t refs; /* 0: free, `next_free` links it */
  uint32_t next_free;
  char *json; /* the `ocsc` object text */
};

/* ------------------------------------------------------------------------ */
/* Validation, as the guest's OpenCensus does it: it drops the whole
 * tracestate when one entry fails, so the caller hears about it here. */

static int entry_ok(const hcsb_tracestate_entry_t *e) {
  return e->key != NULL && e->value != NULL &&
         hcsb__tracestate_key_ok(e->key, strlen(e->key)) &&
         hcsb__tracestate_value_ok(e->value, strlen(e->value));
}

static int all_zero(const uint8_t *p, size_t n) {
  size_t i;

  for (i = 0; i < n; i++)
    if (p[i] != 0) return 0;
  return 1;
}

static int span_context_ok(const hcsb_span_context_t *sc) {
  size_t i, j;

  if (all_zero(sc->trace_id, sizeof sc->trace_id) ||
      all_zero(sc->span_id, sizeof sc->span_id))
    return 0;
  if (sc->ntracestate > HCSB__TRACESTATE_MAX_ENTRIES ||
      (sc->ntracestate != 0 && sc->tracestate == NULL))
    return 0;
  for (i = 0; i < sc->ntracestate; i++) {
    if (!entry_ok(&sc->tracestate[i])) return 0;
    for (j = 0; j < i; j++)
      if (strcmp(sc->tracestate[i].key, sc->tracestate[j].key) == 0) return 0;
  }
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Encoding, byte for byte what hcsshim v0.11's makeRequest sends */

static void put_hex(hcsb__buf_t *b, const uint8_t *p, size_t n, int *err) {
  static const char digits[] = "0123456789abcdef";
  size_t i;

  if (*err != 0 || hcsb__buf_reserve(b, 2 * n) != 0) {
    *err = -ENOMEM;
    return;
  }
  for (i = 0; i < n; i++) {
    b->data[b->len++] = digits[p[i] >> 4];
    b->data[b->len++] = digits[p[i] & 15];
  }
}

static void put(hcsb__buf_t *b, const char *s, size_t n, int *err) {
  if (*err == 0 && hcsb__buf_append(b, s, n) != 0) *err = -ENOMEM;
}

#define PUT_LIT(b, s, err) put((b), (s), sizeof(s) - 1, (err))

/* A JSON string as Go's json.Marshal writes it: it also escapes <, > and &
 * (values are printable ASCII, checked above). */
static void put_go_string(hcsb__buf_t *b, const char *s, int *err) {
  PUT_LIT(b, "\"", err);
  for (; *s != '\0'; s++) {
    switch (*s) {
      case '"':
        PUT_LIT(b, "\\\"", err);
        break;
      case '\\':
        PUT_LIT(b, "\\\\", err);
        break;
      case '<':
        PUT_LIT(b, "\\u003c", err);
        break;
      case '>':
        PUT_LIT(b, "\\u003e", err);
        break;
      case '&':
        PUT_LIT(b, "\\u0026", err);
        break;
      default:
        put(b, s, 1, err);
    }
  }
  PUT_LIT(b, "\"", err);
}

/* {"TraceID":"<hex>","SpanID":"<hex>","TraceOptions":n,"Tracestate":
 * "<base64 of [{"Key":k,"Value":v},...]>"}, omitempty throughout. */
int hcsb__span_context_encode(const hcsb_span_context_t *sc, char **out) {
  hcsb__buf_t b = HCSB__BUF_INIT, ts = HCSB__BUF_INIT;
  char num[16];
  size_t i;
  int err = 0, n;

  *out = NULL;
  if (sc == NULL || !span_context_ok(sc)) return -EINVAL;
  PUT_LIT(&b, "{\"TraceID\":\"", &err);
  put_hex(&b, sc->trace_id, sizeof sc->trace_id, &err);
  PUT_LIT(&b, "\",\"SpanID\":\"", &err);
  put_hex(&b, sc->span_id, sizeof sc->span_id, &err);
  PUT_LIT(&b, "\"", &err);
  if (sc->trace_options != 0) {
    n = snprintf(num, sizeof num, "%u", (unsigned)sc->trace_options);
    PUT_LIT(&b, ",\"TraceOptions\":", &err);
    put(&b, num, (size_t)n, &err);
  }
  if (sc->ntracestate != 0) {
    PUT_LIT(&ts, "[", &err);
    for (i = 0; i < sc->ntracestate; i++) {
      if (i != 0) PUT_LIT(&ts, ",", &err);
      PUT_LIT(&ts, "{\"Key\":", &err);
      put_go_string(&ts, sc->tracestate[i].key, &err);
      PUT_LIT(&ts, ",\"Value\":", &err);
      put_go_string(&ts, sc->tracestate[i].value, &err);
      PUT_LIT(&ts, "}", &err);
    }
    PUT_LIT(&ts, "]", &err);
    PUT_LIT(&b, ",\"Tracestate\":\"", &err);
    if (err == 0 && hcsb__base64_put(&b, ts.data, ts.len) != 0) err = -ENOMEM;
    PUT_LIT(&b, "\"", &err);
  }
  PUT_LIT(&b, "}", &err);
  put(&b, "", 1, &err); /* NUL */
  hcsb__buf_free(&ts);
  if (err != 0) {
    hcsb__buf_free(&b);
    return err;
  }
  *out = b.data;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Slots */

static void slot_unref(hcsb_conn_t *c, uint32_t slot) {
  hcsb__trace_t *t = &c->traces[slot - 1];

  if (--t->refs > 0) return;
  free(t->json);
  t->json = NULL;
  t->next_free = c->trace_free;
  c->trace_free = slot;
}

static int slot_new(hcsb_conn_t *c, char *json, uint32_t *out) {
  hcsb__trace_t *grown;
  uint32_t slot, cap;

  if (c->trace_free != 0) {
    slot = c->trace_free;
    c->trace_free = c->traces[slot - 1].next_free;
  } else {
    if (c->ntraces == TRACE_MAX_SLOTS) return -ENOBUFS;
    if (c->ntraces == c->trace_cap) {
      cap = c->trace_cap != 0 ? c->trace_cap * 2 : 4;
      if (cap > TRACE_MAX_SLOTS) cap = TRACE_MAX_SLOTS;
      grown = realloc(c->traces, cap * sizeof(*grown));
      if (grown == NULL) return -ENOMEM;
      c->traces = grown;
      c->trace_cap = cap;
    }
    slot = ++c->ntraces;
  }
  c->traces[slot - 1].refs = 1;
  c->traces[slot - 1].json = json;
  *out = slot;
  return 0;
}

int hcsb_conn_set_span_context(hcsb_conn_t *c, const hcsb_span_context_t *sc) {
  uint32_t slot = 0;
  char *json = NULL;
  int r;

  if (c == NULL) return -EINVAL;
  if (sc != NULL) {
    r = hcsb__span_context_encode(sc, &json);
    if (r != 0) return r;
    r = slot_new(c, json, &slot);
    if (r != 0) {
      free(json);
      return r;
    }
  }
  if (c->trace_cur != 0) slot_unref(c, c->trace_cur);
  c->trace_cur = slot;
  return 0;
}

uint32_t hcsb__trace_capture_slot(hcsb_conn_t *c) {
  if (c->trace_cur != 0) c->traces[c->trace_cur - 1].refs++;
  return c->trace_cur;
}

void hcsb__trace_ref(hcsb_conn_t *c, uint32_t slot) {
  if (slot != 0) c->traces[slot - 1].refs++;
}

void hcsb__trace_release_slot(hcsb_conn_t *c, uint32_t slot) {
  if (slot != 0) slot_unref(c, slot);
}

const char *hcsb__trace_json(const hcsb_conn_t *c, uint32_t slot) {
  return slot != 0 ? c->traces[slot - 1].json : NULL;
}

void hcsb__trace_free_all(hcsb_conn_t *c) {
  uint32_t i;

  for (i = 0; i < c->ntraces; i++) free(c->traces[i].json);
  free(c->traces);
  c->traces = NULL;
  c->ntraces = c->trace_cap = c->trace_free = c->trace_cur = 0;
}
