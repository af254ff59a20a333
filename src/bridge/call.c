/* Calls: starting, cancelling, deadlines, and the one completion path. */
#include <stdlib.h>
#include <string.h>

#include "bridge/internal.h"

_Static_assert(sizeof(hcsb_call_t) <= 88, "a pending call must stay small");

static uint32_t request_type(const hcsb_call_t *c) {
  return HCSB_MSG_TYPE_REQUEST | (c->resp_type & ~HCSB_MSG_TYPE_MASK);
}

#define CALL_OF(l) HCSB__CONTAINER_OF(l, hcsb_call_t, dq.link)

/* ------------------------------------------------------------------------ */
/* Call structs are recycled: a pipelined workload allocates none.  A
 * pooled call carries its caller's `data` beside it; an embedded call's
 * callback gets the call itself. */

typedef struct pooled_s {
  hcsb_call_t call;
  void *data;
} pooled_t;

size_t hcsb__pooled_call_size(void) {
  return sizeof(pooled_t);
}

static void call_reset(hcsb_call_t *c, int embedded) {
  memset(c, 0, sizeof *c);
  c->dl_idx = HCSB__DL_NONE;
  hcsb__defer_init(&c->dq);
  c->embedded = (uint8_t)embedded;
}

void hcsb__call_recycle(hcsb_bridge_t *b, hcsb_call_t *c) {
  c->state = HCSB__CALL_IDLE;
  c->cb = NULL;
  if (!c->embedded) hcsb__pool_put(&b->pool, c);
}

/* ------------------------------------------------------------------------ */
/* Deadlines (internal.h): in-order calls on the request list, the others
 * in the heap, one timer.  Removing a call never re-arms the timer; an
 * early wake-up finds nothing due and re-arms. */

static void timer_cb(uv_timer_t *t);

static void arm_for(hcsb_bridge_t *b, uint64_t when) {
  if (b->h.ended) return;
  if (b->timer_due != 0 && b->timer_due <= when) return;
  uint64_t now = uv_now(b->loop);
  uv_timer_start(&b->timer, timer_cb, when > now ? when - now : 0, 0);
  b->timer_due = when;
}

/* The earliest in-order deadline: the first in-order call on the list.
 * Only the timer looks, and what it skips (calls in the heap made before
 * it) was due no later. */
static hcsb_call_t *first_in_order(const hcsb_bridge_t *b) {
  for (hcsb__link_t *l = b->h.reqs.next; l != &b->h.reqs; l = l->next)
    if (CALL_OF(l)->in_order) return CALL_OF(l);
  return NULL;
}

/* Gives `c` its deadline (room in the heap was reserved when it is
 * needed, see needs_heap). */
static void set_deadline(hcsb_bridge_t *b, hcsb_call_t *c, uint64_t when) {
  c->when = when;
  c->in_order = !c->internal && when >= b->in_order_when;
  if (c->in_order)
    b->in_order_when = when;
  else
    (void)hcsb__dlheap_push(&b->heap, c, when);
  arm_for(b, when);
}

static int needs_heap(const hcsb_bridge_t *b, const hcsb_call_t *c,
                      uint64_t when) {
  return c->internal || when < b->in_order_when;
}

int hcsb__call_abandon_id(hcsb_bridge_t *b, uint64_t id) {
  /* Bounded: past the limit a late answer is merely counted as unknown. */
  if (b->nabandoned >= b->max_pending ||
      hcsb__calltab_put_bare(&b->tab, id) != 0) {
    hcsb__log(b, HCSB_LOG_DEBUG, NULL,
              "not remembering abandoned ID %llu (limit reached)",
              (unsigned long long)id);
    return -ENOBUFS;
  }
  b->nabandoned++;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The two request lists (timed, untimed) in send order: on each list the
 * PENDING calls' IDs and the WAITING calls' hold offsets rise in send
 * order, so merging on them walks every call in `state` the way they were
 * made.  `visit` may detach or move only the call it is given. */

static uint64_t order_key(const hcsb_call_t *c) {
  return c->state == HCSB__CALL_WAITING ? (uint64_t)c->u.wire_off : c->u.id;
}

static hcsb__link_t *next_in(hcsb__link_t *l, const hcsb__link_t *head,
                             uint8_t state) {
  while (l != head && CALL_OF(l)->state != state) l = l->next;
  return l;
}

typedef void (*visit_fn)(hcsb_bridge_t *b, hcsb_call_t *c, void *ctx);

static void each_in_order(hcsb_bridge_t *b, uint8_t state, visit_fn visit,
                          void *ctx) {
  hcsb__link_t *t = b->h.reqs.next, *u = b->untimed.next, *pick;
  for (;;) {
    t = next_in(t, &b->h.reqs, state);
    u = next_in(u, &b->untimed, state);
    if (t == &b->h.reqs && u == &b->untimed) break;
    if (u == &b->untimed ||
        (t != &b->h.reqs && order_key(CALL_OF(t)) < order_key(CALL_OF(u)))) {
      pick = t;
      t = t->next;
    } else {
      pick = u;
      u = u->next;
    }
    visit(b, CALL_OF(pick), ctx);
  }
}

static void compact_one(hcsb_bridge_t *b, hcsb_call_t *c, void *ctx) {
  size_t *out = ctx;
  if (c->u.wire_off != *out)
    memmove(b->hold.data + *out, b->hold.data + c->u.wire_off, c->w.wire_len);
  c->u.wire_off = *out;
  *out += c->w.wire_len;
}

/* Squeezes out the frames of calls that no longer wait, keeping order. */
static void compact_hold(hcsb_bridge_t *b) {
  size_t out = 0;
  each_in_order(b, HCSB__CALL_WAITING, compact_one, &out);
  b->hold.len = out;
  b->hold_dead = 0;
}

/* Detaches `c` from whichever structure holds it. */
static void detach(hcsb_bridge_t *b, hcsb_call_t *c) {
  switch (c->state) {
    case HCSB__CALL_WAITING:
      hcsb__list_remove(&c->dq.link);
      if (!c->internal) b->npending--;
      /* Its held frame will never be sent: stop counting it as queued, and
       * once dead frames are half of `hold`, reclaim them (amortised O(1),
       * so cancelling while waiting cannot grow `hold` without bound). */
      b->hold_dead += c->w.wire_len;
      if (b->hold_dead >= b->hold.len ||
          (b->hold_dead >= 4096 && b->hold_dead * 2 >= b->hold.len))
        compact_hold(b);
      break;
    case HCSB__CALL_PENDING:
      hcsb__calltab_del_item(&b->tab, c, c->u.id);
      hcsb__list_remove(&c->dq.link);
      if (!c->internal) b->npending--;
      break;
    case HCSB__CALL_DONE:
      hcsb__defer_cancel(&b->dq, &c->dq);
      break;
    default:
      break;
  }
  c->state = HCSB__CALL_IDLE;
  if (c->dl_idx != HCSB__DL_NONE) hcsb__dlheap_remove(&b->heap, c);
}

/* A sent call is forgotten: its ID is remembered as abandoned. */
static void forget(hcsb_bridge_t *b, hcsb_call_t *c) {
  int sent = c->state == HCSB__CALL_PENDING;
  detach(b, c);
  if (sent && hcsb__call_abandon_id(b, c->u.id) == 0 && c->watched)
    hcsb__reap_call_abandoned(b, c);
}

static void timer_cb(uv_timer_t *t) {
  hcsb_bridge_t *b = t->data;
  hcsb__bridge_ref(b);
  b->timer_due = 0;
  uint64_t now = uv_now(b->loop), next = UINT64_MAX;
  /* Each callback may complete, cancel or add calls, or close the bridge;
   * both structures are read again every time.  The earlier deadline goes
   * first; on a tie the in-order call, made before any heap call with the
   * same deadline (a heap call's deadline is below that of every in-order
   * call made after it). */
  for (;;) {
    const hcsb__dl_entry_t *top = hcsb__dlheap_top(&b->heap);
    hcsb_call_t *f = first_in_order(b), *c;
    uint64_t th = top != NULL ? top->when : UINT64_MAX;
    uint64_t tf = f != NULL ? f->when : UINT64_MAX;
    if (tf <= th) {
      if (tf > now) {
        next = tf;
        break;
      }
      c = f;
    } else {
      if (th > now) {
        next = th;
        break;
      }
      c = top->item;
    }
    int sent = c->state == HCSB__CALL_PENDING;
    forget(b, c);
    if (hcsb__log_on(b, HCSB_LOG_INFO)) {
      char act[37];
      hcsb__log(b, HCSB_LOG_INFO, hcsb__call_activity(c, act),
                "call %llu (%s) timed out",
                sent ? (unsigned long long)c->u.id : 0ull,
                hcsb__msg_name(request_type(c)));
    }
    hcsb__call_finish(c, -ETIMEDOUT, NULL, NULL);
  }
  if (next != UINT64_MAX) arm_for(b, next);
  hcsb__bridge_unref(b);
}

/* ------------------------------------------------------------------------ */
/* Completion */

void hcsb__call_finish(hcsb_call_t *c, int status,
                       const hcsb_guest_error_t *gerr,
                       const hcsb_response_t *resp) {
  hcsb_bridge_t *b = c->bridge;
  if (c->state == HCSB__CALL_PENDING && c->dl_idx == HCSB__DL_NONE) {
    /* detach()'s common case, here: a sent call's answer. */
    hcsb__calltab_del_item(&b->tab, c, c->u.id);
    hcsb__list_remove(&c->dq.link);
    if (!c->internal) b->npending--;
    c->state = HCSB__CALL_IDLE;
  } else {
    detach(b, c);
  }
  if (c->watched) hcsb__reap_call_ended(b, c);
  if (!c->internal) b->st.calls_completed++;
  /* An embedded call is not ours once its callback starts: the callback
   * may restart it or free the memory around it. */
  int pooled = !c->embedded;
  c->cb(pooled ? ((pooled_t *)c)->data : (void *)c, status, gerr, resp);
  if (pooled) hcsb__call_recycle(b, c);
}

static void call_deferred(hcsb__defer_t *d) {
  hcsb_call_t *c = HCSB__CONTAINER_OF(d, hcsb_call_t, dq);
  hcsb__call_finish(c, c->w.status, NULL, NULL);
}

void hcsb__call_defer(hcsb_call_t *c, int status) {
  hcsb_bridge_t *b = c->bridge;
  detach(b, c);
  c->state = HCSB__CALL_DONE;
  c->w.status = status;
  hcsb__defer(&b->dq, &c->dq, call_deferred);
}

static void fail_one(hcsb_bridge_t *b, hcsb_call_t *c, void *ctx) {
  (void)b;
  hcsb__call_defer(c, *(const int *)ctx);
}

void hcsb__calls_fail_all(hcsb_bridge_t *b, int status) {
  /* Sent calls in the order they were sent, then the waiting ones;
   * abandoned IDs are moot from here. */
  each_in_order(b, HCSB__CALL_PENDING, fail_one, &status);
  each_in_order(b, HCSB__CALL_WAITING, fail_one, &status);
  hcsb__calltab_clear(&b->tab);
  b->nabandoned = 0;
  hcsb__reap_drop_abandoned(b);
  b->hold.len = 0;
  b->hold_dead = 0;
}

static void count_waiting(hcsb_bridge_t *b, hcsb_call_t *c, void *ctx) {
  size_t *n_len = ctx;
  (void)b;
  n_len[0]++;
  n_len[1] += c->w.wire_len;
}

/* Gives a waiting call its ID and moves it to the tail of its list, so each
 * list stays in send (and ID) order. */
static void release_one(hcsb_bridge_t *b, hcsb_call_t *c, void *ctx) {
  hcsb__link_t *head = c->when != 0 ? &b->h.reqs : &b->untimed;
  (void)ctx;
  char *frame = b->hold.data + c->u.wire_off;
  uint32_t len = c->w.wire_len;
  hcsb__list_remove(&c->dq.link);
  hcsb__list_push(head, &c->dq.link);
  c->u.id = b->next_id++;
  hcsb__frame_set_id(frame, c->u.id);
  (void)hcsb__calltab_put(&b->tab, c);
  c->state = HCSB__CALL_PENDING;
  hcsb__log_frame(b, "send", request_type(c), c->u.id, frame + HCSB__HDR_SIZE,
                  len - HCSB__HDR_SIZE);
}

int hcsb__calls_release_waiting(hcsb_bridge_t *b) {
  size_t n_len[2] = {0, 0};
  each_in_order(b, HCSB__CALL_WAITING, count_waiting, n_len);
  size_t n = n_len[0], live = n_len[1];
  if (n == 0) {
    b->hold.len = 0;
    return 0;
  }
  hcsb__buf_t *w = hcsb__writer_buf(b);
  int rc = hcsb__calltab_reserve(&b->tab, b->tab.count + n);
  if (rc == 0 && w->len != 0) rc = hcsb__buf_reserve(w, live);
  if (rc != 0) return rc;

  compact_hold(b); /* cancelled calls may have left holes */
  each_in_order(b, HCSB__CALL_WAITING, release_one, NULL);
  b->st.frames_sent += n;
  if (w->len == 0) {
    hcsb__buf_t t = *w;
    *w = b->hold;
    b->hold = t;
  } else {
    (void)hcsb__buf_append(w, b->hold.data, b->hold.len);
  }
  b->hold.len = 0;
  hcsb__writer_kick(b);
  return 0;
}

void hcsb__calls_free(hcsb_bridge_t *b) {
  hcsb__reap_free(b);
  hcsb__pool_free(&b->pool);
  hcsb__calltab_free(&b->tab);
  hcsb__dlheap_free(&b->heap);
}

/* ------------------------------------------------------------------------ */
/* Public API */

static uint32_t response_type(uint32_t request_type) {
  return HCSB_MSG_TYPE_RESPONSE | (request_type & ~HCSB_MSG_TYPE_MASK);
}

/* Binds `c` to its callback; no state yet. */
static void call_bind(hcsb_bridge_t *b, hcsb_call_t *c, uint32_t type,
                      hcsb_call_cb cb, void *data) {
  c->bridge = b;
  c->cb = cb;
  if (!c->embedded) ((pooled_t *)c)->data = data;
  c->resp_type = response_type(type);
  c->watched = (uint8_t)hcsb__reap_watched(type);
}

/* Puts the request (`tmpl`, else `req`) on the wire (ready, or an internal
 * call) or in `hold` with ID 0 until negotiation: nothing can fail once
 * the frame is queued.  `aid`: the ActivityId's bytes, NULL to take
 * req->activity_id. */
static int call_queue(hcsb_bridge_t *b, hcsb_call_t *c,
                      const hcsb_request_t *req, const hcsb__tmpl_t *tmpl,
                      const uint8_t *aid, uint32_t timeout_ms) {
  int now = c->internal || b->phase == HCSB__READY;
  uint64_t when = timeout_ms != 0 ? uv_now(b->loop) + timeout_ms : 0;
  if ((when != 0 && needs_heap(b, c, when) &&
       hcsb__dlheap_reserve(&b->heap, b->heap.n + 1) != 0) ||
      (now && hcsb__calltab_reserve(&b->tab, b->tab.count + 1) != 0))
    return -ENOMEM;
  hcsb__buf_t *buf = now ? hcsb__writer_buf(b) : &b->hold;
  size_t old = buf->len;
  uint64_t id = now ? b->next_id : 0;
  int rc = tmpl != NULL ? hcsb__tmpl_encode(buf, id, tmpl, aid)
                        : hcsb__request_encode_ex(buf, id, req, aid, NULL);
  /* The limit is the user's: negotiation goes out regardless. */
  if (rc == 0 && !c->internal && hcsb__writer_queued(b) > b->max_write_queue) {
    buf->len = old;
    rc = -ENOBUFS;
  }
  if (rc != 0) return rc;
  hcsb__list_push(when != 0 ? &b->h.reqs : &b->untimed, &c->dq.link);
  if (now) {
    c->u.id = b->next_id++;
    (void)hcsb__calltab_put(&b->tab, c);
    c->state = HCSB__CALL_PENDING;
    b->st.frames_sent++;
    hcsb__writer_kick(b);
  } else {
    c->u.wire_off = old;
    c->w.wire_len = (uint32_t)(buf->len - old);
    c->state = HCSB__CALL_WAITING;
  }
  c->when = 0;
  c->in_order = 0;
  if (when != 0) set_deadline(b, c, when);
  if (!c->internal) {
    b->npending++;
    b->st.calls_started++;
  }
  /* Last: a log callback may close the bridge, and the call is already
   * where closing will find it. */
  if (now && hcsb__log_on(b, HCSB_LOG_TRACE))
    hcsb__log_frame(b, "send", request_type(c), c->u.id,
                    buf->data + old + HCSB__HDR_SIZE,
                    buf->len - old - HCSB__HDR_SIZE);
  return 0;
}

/* A log line's ActivityId for a call that may not have started. */
static const char *start_activity(const hcsb_call_t *c,
                                  const hcsb_request_t *req, int keep_aid,
                                  char buf[37]) {
  if (keep_aid || req == NULL) return c ? hcsb__call_activity(c, buf) : NULL;
  return req->activity_id;
}

int hcsb__call_start(hcsb_bridge_t *b, hcsb_call_t *given,
                     const hcsb_request_t *req, const hcsb__tmpl_t *tmpl,
                     uint32_t timeout_ms, hcsb_call_cb cb, void *data,
                     int flags, hcsb_call_t **callp) {
  int internal = (flags & HCSB__CALL_INTERNAL) != 0;
  /* The embedder set the ActivityId in `given` already. */
  int keep_aid = (flags & HCSB__CALL_KEEP_ACTIVITY) != 0 && given != NULL;
  char act[37];
  if (b == NULL || (req == NULL) == (tmpl == NULL) || cb == NULL)
    return -EINVAL;
  uint32_t type = tmpl != NULL ? tmpl->type : req->type;
  if ((type & HCSB_MSG_TYPE_MASK) != HCSB_MSG_TYPE_REQUEST) return -EINVAL;
  /* A template carries no per-call content a watch could need. */
  if (tmpl != NULL && (hcsb__reap_watched(type) || tmpl->len == 0))
    return -EINVAL;
  /* Busy includes an op completion the API layer queued in its node. */
  if (given != NULL && (!given->embedded || hcsb__call_busy(given) ||
                        hcsb__defer_queued(&given->dq)))
    return -EBUSY;
  if (!internal && b->phase != HCSB__DEAD && b->npending >= b->max_pending) {
    hcsb__log(b, HCSB_LOG_WARN, start_activity(given, req, keep_aid, act),
              "call refused: %zu calls pending (limit)", b->npending);
    return -ENOBUFS;
  }
  /* The text is checked before anything is taken (the encoder would refuse
   * it too, later); its bytes are kept for log lines. */
  uint8_t aid_text[16];
  int has_aid_text = !keep_aid && req != NULL && req->activity_id != NULL;
  if (has_aid_text && hcsb__guid_parse(req->activity_id, aid_text) != 0)
    return -EINVAL;
  hcsb_call_t *c = given != NULL ? given : hcsb__pool_get(&b->pool);
  if (c == NULL) return -ENOMEM;
  if (given == NULL) call_reset(c, 0);

  call_bind(b, c, type, cb, data);
  if (!keep_aid) {
    c->has_activity = (uint8_t)has_aid_text;
    if (has_aid_text) memcpy(c->activity, aid_text, 16);
  }
  /* The caller's text goes out as it is (its case kept); the embedder's
   * bytes are written by the encoder. */
  const uint8_t *aid = keep_aid && c->has_activity ? c->activity : NULL;
  c->internal = (uint8_t)internal;
  int rc = 0;
  if (b->phase == HCSB__DEAD) {
    if (!internal) b->st.calls_started++;
    hcsb__call_defer(c, -ENOTCONN);
  } else if (hcsb__reap_watched(type)) {
    /* The watch exists before the frame is queued: a log callback inside
     * call_queue may already close the bridge. */
    hcsb__watch_t *w = hcsb__reap_watch_new(req);
    rc = w == NULL ? -ENOMEM : 0;
    if (rc == 0) hcsb__reap_watch_start(b, w, c);
    if (rc == 0 && (rc = call_queue(b, c, req, NULL, aid, timeout_ms)) != 0)
      hcsb__reap_call_ended(b, c);
  } else {
    rc = call_queue(b, c, req, tmpl, aid, timeout_ms);
  }
  if (rc == 0) {
    if (callp != NULL) *callp = c;
  } else {
    if (hcsb__log_on(b, HCSB_LOG_WARN))
      hcsb__log(b, HCSB_LOG_WARN, hcsb__call_activity(c, act),
                "call refused: %s%s", hcsb__errstr(rc),
                rc == -ENOBUFS ? " (write queue limit)" : "");
    hcsb__call_recycle(b, c);
  }
  return rc;
}

int hcsb_bridge_call(hcsb_bridge_t *b, const hcsb_request_t *req,
                     uint32_t timeout_ms, hcsb_call_cb cb, void *data,
                     hcsb_call_t **callp) {
  if (req == NULL) return -EINVAL;
  return hcsb__call_start(b, NULL, req, NULL, timeout_ms, cb, data, 0, callp);
}

/* The common case in one pass: an embedded call sending a template on a
 * ready bridge, with room everywhere (write buffer, table, write queue
 * limit), a deadline in order or none, no trace log.  Does what
 * hcsb__call_start would, without its generic checks; returns 0, or 1
 * having touched nothing when hcsb__call_start must decide (any failure,
 * any log line). */
static int call_start_fast(hcsb_bridge_t *b, hcsb_call_t *c,
                           const hcsb__tmpl_t *t, uint32_t timeout_ms,
                           hcsb_call_cb cb) {
  hcsb__buf_t *buf = hcsb__writer_buf(b);
  hcsb__calltab_t *tab = &b->tab;
  uint32_t type = t->type, len = t->len;
  if (b->phase != HCSB__READY || cb == NULL || len == 0 ||
      (type & HCSB_MSG_TYPE_MASK) != HCSB_MSG_TYPE_REQUEST ||
      hcsb__reap_watched(type) || !c->embedded || c->state != HCSB__CALL_IDLE ||
      hcsb__defer_queued(&c->dq) || b->npending >= b->max_pending ||
      len > buf->cap - buf->len || tab->count >= tab->room ||
      hcsb__writer_queued(b) + len > b->max_write_queue ||
      hcsb__log_on(b, HCSB_LOG_TRACE))
    return 1;
  uint64_t when = 0;
  if (timeout_ms != 0) {
    when = uv_now(b->loop) + timeout_ms;
    if (when < b->in_order_when) return 1; /* the heap's */
  }
  char *p = buf->data + buf->len;
  memcpy(p, t->frame, len);
  hcsb__frame_set_id(p, b->next_id);
  if (c->has_activity && t->aid_off != 0 && !hcsb__guid_is_zero(c->activity))
    hcsb__guid_format(c->activity, p + t->aid_off);
  buf->len += len;

  c->bridge = b;
  c->cb = cb;
  c->resp_type = response_type(type);
  c->internal = 0;
  c->watched = 0; /* checked above */
  c->u.id = b->next_id++;
  hcsb__calltab_put_reserved(tab, c, c->u.id);
  c->state = HCSB__CALL_PENDING;
  b->st.frames_sent++;
  b->npending++;
  b->st.calls_started++;
  hcsb__writer_kick(b);
  c->when = when;
  if (when != 0) {
    /* In order (checked above): the list keeps it sorted, see
     * set_deadline. */
    c->in_order = 1;
    b->in_order_when = when;
    hcsb__list_push(&b->h.reqs, &c->dq.link);
    /* Nearly always armed already for an earlier deadline. */
    if (b->timer_due == 0 || b->timer_due > when) arm_for(b, when);
  } else {
    c->in_order = 0;
    hcsb__list_push(&b->untimed, &c->dq.link);
  }
  return 0;
}

int hcsb__bridge_call_in(hcsb_bridge_t *b, hcsb_call_t *c,
                         const hcsb_request_t *req, const hcsb__tmpl_t *tmpl,
                         uint32_t timeout_ms, hcsb_call_cb cb) {
  if (c == NULL) return -EINVAL;
  if (b != NULL && tmpl != NULL && req == NULL &&
      call_start_fast(b, c, tmpl, timeout_ms, cb) == 0)
    return 0;
  return hcsb__call_start(b, c, req, tmpl, timeout_ms, cb, NULL,
                          HCSB__CALL_KEEP_ACTIVITY, NULL);
}

int hcsb_call_cancel(hcsb_call_t *c) {
  if (c == NULL) return -EINVAL;
  if (c->state != HCSB__CALL_WAITING && c->state != HCSB__CALL_PENDING)
    return -EALREADY;
  forget(c->bridge, c);
  hcsb__call_defer(c, -ECANCELED);
  return 0;
}

uint64_t hcsb_call_id(const hcsb_call_t *c) {
  return c == NULL || c->state == HCSB__CALL_WAITING ? 0 : c->u.id;
}

/* ------------------------------------------------------------------------ */
/* ActivityIds: 16 bytes instead of 37 per call. */

int hcsb__call_set_activity(hcsb_call_t *c, const char *guid) {
  c->has_activity = 0;
  if (guid == NULL) return 0;
  if (hcsb__guid_parse(guid, c->activity) != 0) return -EINVAL;
  c->has_activity = 1;
  return 0;
}

const char *hcsb__call_activity(const hcsb_call_t *c, char buf[37]) {
  if (!c->has_activity) return NULL;
  hcsb__guid_format(c->activity, buf);
  buf[HCSB__GUID_LEN] = '\0';
  return buf;
}
