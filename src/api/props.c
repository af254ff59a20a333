/* GetProperties (protocol.md §7.8): the RPC, the Properties text's top
 * level and its ProcessList (LCOWMetrics: metrics.c).
 *
 * Why not json-c here: a process list costs json-c five allocations per
 * entry, and shims poll it in tight loops.  This decoder walks the text
 * in place and writes into buffers the container keeps and reuses, so a
 * warm call allocates nothing.  It is as strict as the bridge's validator
 * (jscan.h), so the bridge hands these answers over unchecked and the
 * text is read once, not twice; nothing here trusts the guest.  Keys
 * match case-insensitively, as Go's decoder does; null is "absent"; a
 * known field of the wrong type is -EPROTO. */
#include <stdlib.h>
#include <string.h>

#include "api/jscan.h"

/* ------------------------------------------------------------------------ */
/* ProcessList */

int hcsb__props_fast_off;

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

/* Doubles the container's item array (0 or -ENOMEM, unchanged). */
static int grow_items(hcsb_container_t *ct) {
  size_t cap = ct->items_cap != 0 ? 2 * ct->items_cap : 16;
  void *grown = realloc(ct->items, cap * sizeof(*ct->items));

  if (grown == NULL) return -ENOMEM;
  ct->items = grown;
  ct->items_cap = cap;
  return 0;
}

/* What a Linux GCS sends for each process: {"ProcessId":N} and nothing
 * else, without whitespace.  An item of exactly that shape is read here in
 * a couple of word compares; anything else (other keys, spaces, a number
 * with a sign, fraction, exponent or leading zero, or out of range) makes
 * this return 0 with nothing consumed, and read_item() reads or refuses the
 * item by the general rules.  What it accepts, read_item() accepts with
 * the same result.  The text ends in a NUL, so the digit loop stops at the
 * end at the latest. */
JSCAN_HOT int fast_item(cur_t *c, hcsb_process_list_item_t *it) {
  static const char head[] = "{\"ProcessId\":"; /* 13 bytes */
  const char *p = c->p;
  uint64_t a, b, x, y, v;
  unsigned d, i;

  if (c->end - p < 15 || c->depth >= MAX_DEPTH) return 0;
  memcpy(&a, p, 8);
  memcpy(&b, p + 5, 8);
  memcpy(&x, head, 8);
  memcpy(&y, head + 5, 8);
  if (a != x || b != y) return 0;
  p += 13;
  v = (unsigned)(unsigned char)*p - '0';
  if (v > 9) return 0;
  /* JSON has no leading zeros: "0" stands alone. */
  if (v == 0) {
    i = 1;
  } else {
    for (i = 1; i < 10 && (d = (unsigned)(unsigned char)p[i] - '0') <= 9; i++)
      v = v * 10 + d;
  }
  if (p[i] != '}' || v > UINT32_MAX) return 0;
  it->process_id = (uint32_t)v;
  it->image_name = NULL;
  it->kernel_time_100ns = 0;
  it->user_time_100ns = 0;
  it->memory_commit_bytes = 0;
  c->p = p + i + 1;
  return 1;
}

static int read_process_list(cur_t *c, hcsb_container_t *ct,
                             hcsb_properties_t *props) {
  int first = 1, r;
  size_t n = 0;

  if ((r = open_(c, '[')) != 0) return r < 0 ? r : 0;
  props->has_process_list = 1;
  while ((r = element(c, &first)) == 1) {
    if (n == ct->items_cap && grow_items(ct) != 0) return -ENOMEM;
    if (hcsb__props_fast_off || !fast_item(c, &ct->items[n])) {
      r = read_item(c, ct, &ct->items[n]);
      if (r != 0) return r;
    }
    n++;
  }
  if (r != 0) return r;
  props->nprocesses = n;
  props->processes = ct->items;
  return 0;
}

/* The whole answer of a GCS asked for its processes, as it sends it:
 * {"ProcessList":[{"ProcessId":N},...]} with no whitespace and nothing
 * else.  1 when the text is exactly that (the list is in *props); 0 when
 * not, with nothing but the item array's contents changed, and the
 * general reader then reads or refuses the text.  A pointer in a register
 * and the item's bytes in two word compares make this several times
 * cheaper per item than the general reader.  Room for items is found
 * here; when there is none, the general reader reports it. */
static int gcs_list(hcsb_container_t *ct, const char *text, size_t len,
                    hcsb_properties_t *props) {
  static const char head[] = "{\"ProcessList\":["; /* 16 bytes */
  static const char item[] = "{\"ProcessId\":";    /* 13 bytes */
  const char *p = text + 16, *end = text + len, *q;
  hcsb_process_list_item_t *it;
  uint64_t a, b, x, y, v;
  size_t n = 0, nd;
  unsigned d;

  if (len < 18) return 0;
  memcpy(&a, text, 8);
  memcpy(&b, text + 8, 8);
  memcpy(&x, head, 8);
  memcpy(&y, head + 8, 8);
  if (a != x || b != y) return 0;
  memcpy(&x, item, 8);
  memcpy(&y, item + 5, 8);
  if (*p != ']') {
    for (;;) {
      if (end - p < 15) return 0;
      memcpy(&a, p, 8);
      memcpy(&b, p + 5, 8);
      if (a != x || b != y) return 0;
      p += 13;
      /* Digits up to the NUL at the latest; values of over 19 digits
       * wrap, and are refused by the count. */
      for (v = 0, q = p; (d = (unsigned)(unsigned char)*q - '0') <= 9; q++)
        v = v * 10 + d;
      /* 1 to 10 digits, no leading zero ("0" alone), within uint32. */
      nd = (size_t)(q - p);
      if (nd - 1 > 9 || (*p == '0' && nd > 1) || *q != '}' || v > UINT32_MAX)
        return 0;
      if (n == ct->items_cap && grow_items(ct) != 0) return 0;
      it = &ct->items[n++];
      it->process_id = (uint32_t)v;
      it->image_name = NULL;
      it->kernel_time_100ns = 0;
      it->user_time_100ns = 0;
      it->memory_commit_bytes = 0;
      p = q + 1; /* at most `end`, whose byte is the NUL */
      if (*p == ']') break;
      if (*p != ',') return 0;
      p++;
    }
  }
  /* p is at the ']', which must be followed by the '}' and the end. */
  if (end - p != 2 || p[1] != '}') return 0;
  props->has_process_list = 1;
  props->nprocesses = n;
  props->processes = ct->items;
  return 1;
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
  if (len == 0) return 0;                /* nothing was asked for */
  if (text[len] != '\0') return -EPROTO; /* the scanner needs its NUL */
  ct->strings.len = 0;
  if (!hcsb__props_fast_off && gcs_list(ct, text, len, props)) return 0;
  if (hcsb__buf_reserve(&ct->strings, len + 1) != 0) return -ENOMEM;
  if (!hcsb__props_fast_off && len > 16 &&
      memcmp(text, "{\"ProcessList\":[", 16) == 0) {
    /* A GCS's answer starts so: the object is open, its first key read and
     * the list's '[' next, as member() would leave them. */
    c.p = text + 15;
    c.depth = 1;
    first = 0;
    r = read_process_list(&c, ct, props);
    if (r != 0) return r;
  } else if (open_(&c, '{') != 0) {
    return -EPROTO; /* null too */
  }
  while ((r = member(&c, &first, &k, &kn)) == 1) {
    if (key_is(k, kn, "ProcessList"))
      r = read_process_list(&c, ct, props);
    else if (key_is(k, kn, "LCOWMetrics"))
      r = hcsb__metrics_decode(ct, &c, props);
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

static void props_request(const hcsb_container_t *c, unsigned types,
                          hcsb_request_t *req) {
  memset(req, 0, sizeof(*req));
  req->type = HCSB_MSG_GET_PROPERTIES;
  req->container_id = c->id;
  req->u.get_properties.query = queries[types];
}

/* A shim polls one container the same way over and over: the request is
 * encoded once per container, query kind and span context, and each call
 * copies it (proto.h, templates).  NULL when it cannot be built: the call
 * then encodes its request itself. */
static const hcsb__tmpl_t *props_tmpl(hcsb_container_t *c, unsigned types,
                                      uint32_t trace) {
  hcsb_conn_t *conn = c->obj.conn;
  hcsb_request_t req;

  if (c->props_tmpl.len != 0 && c->props_tmpl_types == types &&
      c->props_tmpl_trace == trace)
    return &c->props_tmpl;
  props_request(c, types, &req);
  req.ocsc = hcsb__trace_json(conn, trace);
  if (hcsb__tmpl_build(&c->props_tmpl, &req) != 0) return NULL;
  /* The slot cannot be reused for another context while the template
   * names it. */
  hcsb__trace_ref(conn, trace);
  hcsb__trace_release(conn, c->props_tmpl_trace);
  c->props_tmpl_trace = trace;
  c->props_tmpl_types = types;
  return &c->props_tmpl;
}

void hcsb__props_free(hcsb_container_t *c) {
  hcsb__trace_release(c->obj.conn, c->props_tmpl_trace);
  c->props_tmpl_trace = 0;
  hcsb__tmpl_free(&c->props_tmpl);
}

int hcsb_container_properties(hcsb_container_t *c, const hcsb_call_opts_t *opts,
                              unsigned types, hcsb_properties_cb cb,
                              void *data) {
  const hcsb__tmpl_t *tmpl;
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
  /* Checked here, as it is decoded (jscan.h). */
  op->call.unchecked_props = 1;
  tmpl = props_tmpl(c, types, op->trace);
  if (tmpl != NULL) {
    r = hcsb__op_send_tmpl(op, tmpl);
  } else {
    props_request(c, types, &req);
    r = hcsb__op_send(op, &req);
  }
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
