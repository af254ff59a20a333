/* GetProperties (protocol.md §7.8): the RPC, the Properties text's top
 * level and its ProcessList (LCOWMetrics: metrics.c).
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

#include "api/jscan.h"

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
