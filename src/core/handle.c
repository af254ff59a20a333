/* The lifecycle core: the deferred queue, handles, pools (handle.h). */
#include "core/handle.h"

/* ------------------------------------------------------------------------ */
/* The deferred-callback queue */

static void dq_run(uv_idle_t *idle) {
  hcsb__dq_t *q = HCSB__CONTAINER_OF(idle, hcsb__dq_t, idle);
  hcsb__handle_t *owner = q->owner;
  hcsb__link_t turn;

  /* Only what was queued before this run: a callback that queues work
   * (or starts a call that fails at once) is answered on the next turn,
   * never inside the call that started it, and cannot starve the loop. */
  hcsb__list_init(&turn);
  hcsb__list_splice(&turn, &q->items);
  hcsb__handle_ref(owner); /* the queue lives in the owner */
  while (!hcsb__list_empty(&turn)) {
    hcsb__defer_t *d = HCSB__CONTAINER_OF(turn.next, hcsb__defer_t, link);
    hcsb__defer_fn fn = d->fn;

    hcsb__list_remove(&d->link);
    d->fn = NULL; /* no longer queued: fn may queue it again */
    q->n--;
    fn(d);
  }
  if (hcsb__list_empty(&q->items)) uv_idle_stop(&q->idle);
  hcsb__handle_check_closed(owner);
  hcsb__handle_unref(owner);
}

int hcsb__dq_init(uv_loop_t *loop, hcsb__dq_t *q, hcsb__handle_t *owner) {
  hcsb__list_init(&q->items);
  q->n = 0;
  q->owner = owner;
  return uv_idle_init(loop, &q->idle);
}

void hcsb__dq_close(hcsb__dq_t *q) {
  hcsb__handle_uv_close(q->owner, (uv_handle_t *)&q->idle);
}

void hcsb__defer(hcsb__dq_t *q, hcsb__defer_t *d, hcsb__defer_fn fn) {
  if (hcsb__defer_queued(d)) return;
  d->fn = fn;
  hcsb__list_push(&q->items, &d->link);
  q->n++;
  uv_idle_start(&q->idle, dq_run);
}

void hcsb__defer_cancel(hcsb__dq_t *q, hcsb__defer_t *d) {
  if (!hcsb__defer_queued(d)) return;
  hcsb__list_remove(&d->link);
  d->fn = NULL;
  q->n--;
}

/* ------------------------------------------------------------------------ */
/* Handles */

void hcsb__handle_init(hcsb__handle_t *h, const hcsb__handle_class_t *cls,
                       hcsb__dq_t *dq) {
  h->cls = cls;
  h->dq = dq;
  hcsb__list_init(&h->reqs);
  hcsb__defer_init(&h->close_defer);
  h->close_cb = NULL;
  h->close_data = NULL;
  h->data = NULL;
  h->refs = 1;
  h->uv_closing = 0;
  h->closing = h->ended = h->released = 0;
}

static void fire_close(hcsb__handle_t *h) {
  hcsb_close_cb cb = h->close_cb;

  h->close_cb = NULL;
  if (cb != NULL) cb(h->close_data);
  hcsb__handle_unref(h); /* the owner's reference */
}

static void close_deferred(hcsb__defer_t *d) {
  fire_close(HCSB__CONTAINER_OF(d, hcsb__handle_t, close_defer));
}

static void uv_closed(uv_handle_t *u) {
  hcsb__handle_t *h = u->data;

  if (--h->uv_closing > 0) return;
  if (h->released)
    h->cls->free(h);
  else if (h->ended)
    fire_close(h);
}

void hcsb__handle_uv_close(hcsb__handle_t *h, uv_handle_t *u) {
  u->data = h;
  h->uv_closing++;
  uv_close(u, uv_closed);
}

void hcsb__handle_unref_last(hcsb__handle_t *h) {
  if (--h->refs > 0) {
    if (h->closing) hcsb__handle_check_closed(h);
    return;
  }
  h->released = 1;
  if (h->cls->release != NULL) h->cls->release(h);
  if (h->uv_closing == 0) h->cls->free(h);
}

void hcsb__handle_check_closing(hcsb__handle_t *h) {
  if (!h->closing || h->ended || !hcsb__list_empty(&h->reqs)) return;
  if (h->cls->idle != NULL && !h->cls->idle(h)) return;
  h->ended = 1;
  if (h->cls->close_handles != NULL) h->cls->close_handles(h);
  if (h->uv_closing == 0) hcsb__defer(h->dq, &h->close_defer, close_deferred);
}

void hcsb__handle_close(hcsb__handle_t *h, hcsb_close_cb cb, void *data) {
  h->closing = 1;
  h->close_cb = cb;
  h->close_data = data;
  if (h->cls->cancel != NULL) h->cls->cancel(h);
  hcsb__handle_check_closed(h);
}

void hcsb__handle_abort(hcsb__handle_t *h) {
  h->closing = 1;
  h->ended = 1;
  hcsb__handle_unref(h);
}

/* ------------------------------------------------------------------------ */
/* Pools */

void hcsb__pool_free(hcsb__pool_t *p) {
  while (p->head != NULL) {
    void *s = p->head;
    p->head = *(void **)s;
    free(s);
  }
  p->n = 0;
}
