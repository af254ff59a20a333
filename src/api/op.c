/* Objects (core handles), operations and waits: the machinery every API
 * call shares, so each callback runs exactly once, later, and close is
 * safe from anywhere. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-int.h"

/* ------------------------------------------------------------------------ */
/* Objects */

void hcsb__defer_on(hcsb_conn_t *conn, hcsb__defer_t *d, hcsb__defer_fn fn) {
  hcsb__defer(&conn->dq, d, fn);
}

static void obj_cancel(hcsb__handle_t *h) {
  hcsb__obj_cancel_ops(HCSB__CONTAINER_OF(h, hcsb__obj_t, base));
}

static int obj_idle(const hcsb__handle_t *h) {
  const hcsb__obj_t *o = HCSB__CONTAINER_OF(h, hcsb__obj_t, base);
  switch (o->kind) {
    case HCSB__KIND_CONN:
      return hcsb__conn_idle((const hcsb_conn_t *)o);
    case HCSB__KIND_CONTAINER:
      return hcsb__container_idle((const hcsb_container_t *)o);
    case HCSB__KIND_PROCESS:
      return hcsb__process_idle((const hcsb_process_t *)o);
  }
  return 1;
}

/* A child lets go of its connection after its own memory is gone. */
static void child_free(hcsb__handle_t *h) {
  hcsb__obj_t *o = HCSB__CONTAINER_OF(h, hcsb__obj_t, base);
  hcsb__obj_t *conn = &o->conn->obj;

  if (o->kind == HCSB__KIND_CONTAINER)
    hcsb__container_free((hcsb_container_t *)o);
  else
    hcsb__process_free((hcsb_process_t *)o);
  hcsb__obj_unref(conn);
}

static void conn_release(hcsb__handle_t *h) {
  hcsb__conn_release(HCSB__CONTAINER_OF(h, hcsb_conn_t, obj.base));
}

static void conn_free(hcsb__handle_t *h) {
  free(HCSB__CONTAINER_OF(h, hcsb_conn_t, obj.base));
}

static const hcsb__handle_class_t conn_class = {obj_cancel, obj_idle, NULL,
                                                conn_release, conn_free};
static const hcsb__handle_class_t child_class = {obj_cancel, obj_idle, NULL,
                                                 NULL, child_free};

void hcsb__obj_init(hcsb__obj_t *o, hcsb__kind_t kind, hcsb_conn_t *conn) {
  int is_conn = kind == HCSB__KIND_CONN;

  hcsb__handle_init(&o->base, is_conn ? &conn_class : &child_class, &conn->dq);
  o->kind = kind;
  o->conn = conn;
  if (!is_conn) hcsb__obj_ref(&conn->obj);
}

/* ------------------------------------------------------------------------ */
/* Operations */

_Static_assert(sizeof(hcsb__op_t) <= 152,
               "a pending op must fit a 160-byte heap chunk");
_Static_assert(offsetof(hcsb__op_t, call) == 0,
               "the bridge hands an op's call back as its data");

hcsb__op_t *hcsb__op_new(hcsb__obj_t *owner, const hcsb_call_opts_t *opts,
                         uint32_t default_timeout, const hcsb__op_class_t *cls,
                         int *err) {
  hcsb_conn_t *conn = owner->conn;
  const char *aid_text = opts != NULL ? opts->activity_id : NULL;
  hcsb__op_t *op;

  /* Callers tend to pass one ActivityId over and over (hcsshim: the zero
   * GUID): the last one parsed is remembered, and conn->aid_bytes holds
   * this call's from here on. */
  if (aid_text != NULL &&
      !(conn->aid_cached &&
        strncmp(aid_text, conn->aid_text, sizeof conn->aid_text) == 0)) {
    uint8_t aid[16];

    if (hcsb__guid_parse(aid_text, aid) != 0) {
      *err = -EINVAL;
      return NULL;
    }
    memcpy(conn->aid_text, aid_text, sizeof conn->aid_text);
    memcpy(conn->aid_bytes, aid, sizeof aid);
    conn->aid_cached = 1;
  }
  op = hcsb__pool_get(&conn->ops);
  if (op == NULL) {
    *err = -ENOMEM;
    return NULL;
  }
  /* The call (first, see above) is cleared by hcsb__call_embed. */
  memset((char *)op + sizeof(op->call), 0, sizeof(*op) - sizeof(op->call));
  hcsb__call_embed(&op->call);
  op->cls = cls;
  op->owner = owner;
  hcsb__obj_ref(owner);
  hcsb__list_push(&owner->base.reqs, &op->link);
  /* An op started on a closing handle still completes, with -ECANCELED. */
  if (owner->base.closing) hcsb__op_set_cancelled(op);
  op->timeout_ms = opts != NULL && opts->timeout_ms != 0 ? opts->timeout_ms
                                                         : default_timeout;
  if (aid_text != NULL)
    memcpy(op->call.activity, conn->aid_bytes, sizeof op->call.activity);
  else
    hcsb__guid_rng_bytes(&conn->aid_rng, op->call.activity);
  op->call.has_activity = 1;
  op->trace = hcsb__trace_capture(conn);
  return op;
}

static inline void op_recycle(hcsb__op_t *op) {
  hcsb_conn_t *conn = op->owner->conn;

  if (op->cls->ctx_free != NULL) op->cls->ctx_free(op->ctx);
  hcsb__trace_release(conn, op->trace);
  hcsb__pool_put(&conn->ops, op);
}

void hcsb__op_discard(hcsb__op_t *op) {
  hcsb__obj_t *owner = op->owner;

  hcsb__list_remove(&op->link);
  op_recycle(op);
  hcsb__obj_unref(owner);
}

/* hcsb__op_done, inline in the bridge's callback: a one-step op's reply
 * ends it there. */
static inline void op_end(hcsb__op_t *op, int status,
                          const hcsb_guest_error_t *gerr,
                          const hcsb_response_t *resp) {
  hcsb__obj_t *owner = op->owner;

  hcsb__list_remove(&op->link);
  if (hcsb__op_cancelled(op)) {
    status = -ECANCELED;
    gerr = NULL;
    resp = NULL;
  }
  if (op->cls->deliver != NULL) op->cls->deliver(op, status, gerr, resp);
  op_recycle(op);
  hcsb__obj_check_closed(owner);
  hcsb__obj_unref(owner);
}

void hcsb__op_on_reply(void *data, int status, const hcsb_guest_error_t *gerr,
                       const hcsb_response_t *resp) {
  hcsb__op_t *op = HCSB__CONTAINER_OF(data, hcsb__op_t, call);

  if (op->cls->step != NULL)
    op->cls->step(op, status, gerr, resp);
  else
    op_end(op, status, gerr, resp);
}

/* The bridge takes the ActivityId from the call's bytes (set once by
 * hcsb__op_new), so req->activity_id stays NULL. */
static int op_send(hcsb__op_t *op, hcsb_request_t *req,
                   const hcsb__tmpl_t *tmpl) {
  hcsb_conn_t *conn = op->owner->conn;

  if (hcsb__op_cancelled(op)) {
    hcsb__op_done_later(op, -ECANCELED);
    return 0;
  }
  if (!hcsb__conn_usable(conn)) {
    hcsb__op_done_later(op, -ENOTCONN);
    return 0;
  }
  return hcsb__bridge_call_in(conn->bridge, &op->call, req, tmpl,
                              op->timeout_ms, hcsb__op_on_reply);
}

int hcsb__op_send(hcsb__op_t *op, hcsb_request_t *req) {
  req->activity_id = NULL;
  req->ocsc = hcsb__trace_json(op->owner->conn, op->trace);
  return op_send(op, req, NULL);
}

int hcsb__op_send_tmpl_other(hcsb__op_t *op, const hcsb__tmpl_t *tmpl) {
  return op_send(op, NULL, tmpl);
}

static void op_deferred(hcsb__defer_t *d) {
  hcsb__op_t *op = HCSB__CONTAINER_OF(d, hcsb__op_t, call.dq);

  hcsb__op_done(op, op->call.w.status, NULL, NULL);
}

void hcsb__op_done_later(hcsb__op_t *op, int status) {
  op->call.w.status = status;
  hcsb__defer_on(op->owner->conn, &op->call.dq, op_deferred);
}

void hcsb__op_done(hcsb__op_t *op, int status, const hcsb_guest_error_t *gerr,
                   const hcsb_response_t *resp) {
  op_end(op, status, gerr, resp);
}

void hcsb__obj_cancel_ops(hcsb__obj_t *o) {
  hcsb__link_t *l;

  for (l = o->base.reqs.next; l != &o->base.reqs; l = l->next) {
    hcsb__op_t *op = HCSB__CONTAINER_OF(l, hcsb__op_t, link);

    hcsb__op_set_cancelled(op);
    /* A call the bridge already finished (-EALREADY) still reports, and is
     * turned into -ECANCELED on the way out. */
    if (hcsb__call_busy(&op->call))
      (void)hcsb_call_cancel(&op->call);
    else if (!hcsb__defer_queued(&op->call.dq))
      hcsb__op_done_later(op, -ECANCELED);
  }
}

void hcsb__deliver_done(hcsb__op_t *op, int status,
                        const hcsb_guest_error_t *gerr,
                        const hcsb_response_t *resp) {
  if (op->cb.done != NULL) op->cb.done(op->data, status, gerr);
}

const hcsb__op_class_t hcsb__done_op = {NULL, hcsb__deliver_done, NULL};

/* ------------------------------------------------------------------------ */
/* Waits */

static void wait_timer_closed(uv_handle_t *h) {
  hcsb__wait_t *w = HCSB__CONTAINER_OF(h, hcsb__wait_t, timer);
  hcsb__obj_t *owner = w->owner;

  free(w);
  hcsb__obj_unref(owner);
}

static void wait_deliver(hcsb__wait_t *w) {
  hcsb__obj_t *owner = w->owner;

  hcsb__list_remove(&w->link);
  if (owner->kind == HCSB__KIND_CONTAINER) {
    w->cb.container(w->data, (hcsb_container_t *)owner, w->status,
                    w->status == -ETIMEDOUT ? NULL : &w->exit);
  } else {
    w->cb.process(w->data, (hcsb_process_t *)owner, w->status, w->exit_code);
  }
  hcsb__obj_check_closed(owner);
  if (w->has_timer) {
    uv_close((uv_handle_t *)&w->timer, wait_timer_closed);
  } else {
    free(w);
    hcsb__obj_unref(owner);
  }
}

static void wait_deferred(hcsb__defer_t *d) {
  wait_deliver(HCSB__CONTAINER_OF(d, hcsb__wait_t, defer));
}

static void wait_timeout(uv_timer_t *t) {
  hcsb__wait_t *w = HCSB__CONTAINER_OF(t, hcsb__wait_t, timer);

  if (hcsb__defer_queued(&w->defer)) return;
  w->status = -ETIMEDOUT;
  wait_deliver(w);
}

int hcsb__wait_new(hcsb__obj_t *owner, hcsb__link_t *list, uint32_t timeout_ms,
                   hcsb__wait_t **out) {
  hcsb__wait_t *w = calloc(1, sizeof(*w));
  int r;

  if (w == NULL) return -ENOMEM;
  w->owner = owner;
  hcsb__defer_init(&w->defer);
  if (timeout_ms != 0) {
    r = uv_timer_init(owner->conn->loop, &w->timer);
    if (r != 0) {
      free(w);
      return r;
    }
    uv_timer_start(&w->timer, wait_timeout, timeout_ms, 0);
    w->has_timer = 1;
  }
  hcsb__obj_ref(owner);
  hcsb__list_push(list, &w->link);
  *out = w;
  return 0;
}

void hcsb__wait_queue(hcsb__wait_t *w, int status) {
  if (hcsb__defer_queued(&w->defer)) return;
  if (w->has_timer) uv_timer_stop(&w->timer);
  w->status = status;
  hcsb__defer_on(w->owner->conn, &w->defer, wait_deferred);
}
