/* The lifecycle core under the bridge and the API objects.  Internal.
 *
 * Three things, used by every closable object in the library:
 *
 * - hcsb__dq_t, the deferred-callback queue of a loop owner (a bridge, a
 *   guest connection).  Every callback that must not run inside the call
 *   that started it goes through one, and this is the one place that rule
 *   is enforced: a run only handles what was queued before it began, so
 *   work queued by a callback waits for the next loop turn.
 *
 * - hcsb__handle_t, the base embedded first in the bridge, the connection,
 *   containers and processes: references, closing state, the close
 *   callback and the list of requests the handle owns.
 *
 * - hcsb__pool_t, a bounded free list of equal-sized structs.
 *
 * The rule for freeing (src/README says it in context):
 *   1. hcsb__handle_close() marks the handle closing and makes its class
 *      fail every owned request (each callback later, through the queue).
 *   2. Once closing and idle (no owned request, and the class's idle hook
 *      agrees), the class closes the libuv handles it no longer needs; the
 *      close callback runs after the last of their close callbacks, or from
 *      the queue when there were none.  Then the handle's own reference is
 *      dropped.
 *   3. The last reference runs the class's release hook, which may close
 *      more libuv handles; the memory goes after the last of their close
 *      callbacks (at once when there are none).
 * So memory outlives every reference and every libuv close callback, and
 * a callback may close the very handle it was called for.
 */
#ifndef HCSB_CORE_HANDLE_H
#define HCSB_CORE_HANDLE_H

#include <stdint.h>
#include <stdlib.h>

#include <uv.h>

#include <hcsbridge/bridge.h> /* hcsb_close_cb */

#include "core/list.h"

typedef struct hcsb__handle_s hcsb__handle_t;

/* ------------------------------------------------------------------------ */
/* The deferred-callback queue */

typedef struct hcsb__defer_s hcsb__defer_t;
typedef void (*hcsb__defer_fn)(hcsb__defer_t *d);
struct hcsb__defer_s {
  hcsb__link_t link;
  hcsb__defer_fn fn; /* set while queued, cleared just before it runs */
};

typedef struct hcsb__dq_s {
  uv_idle_t idle;
  hcsb__link_t items;
  size_t n;              /* queued and not yet run, this turn's included */
  hcsb__handle_t *owner; /* referenced while a run is on the stack */
} hcsb__dq_t;

/* 0 or libuv's error.  The idle handle counts as one of `owner`'s libuv
 * handles: hcsb__dq_close() closes it through the core. */
int hcsb__dq_init(uv_loop_t *loop, hcsb__dq_t *q, hcsb__handle_t *owner);
void hcsb__dq_close(hcsb__dq_t *q);
static inline void hcsb__defer_init(hcsb__defer_t *d) {
  hcsb__list_init(&d->link);
  d->fn = NULL;
}
static inline int hcsb__defer_queued(const hcsb__defer_t *d) {
  return d->fn != NULL;
}
/* Queues `fn(d)` for the next turn; no-op while `d` is already queued. */
void hcsb__defer(hcsb__dq_t *q, hcsb__defer_t *d, hcsb__defer_fn fn);
/* Takes `d` off `q` if it is queued there; its fn will not run. */
void hcsb__defer_cancel(hcsb__dq_t *q, hcsb__defer_t *d);

/* ------------------------------------------------------------------------ */
/* Handles */

typedef struct hcsb__handle_class_s {
  /* Closing: fail every owned request (their callbacks come later). */
  void (*cancel)(hcsb__handle_t *h);
  /* Besides owning no request, may the close callback run?  NULL: yes. */
  int (*idle)(const hcsb__handle_t *h);
  /* Closing and idle: close (hcsb__handle_uv_close) the libuv handles no
   * longer needed.  NULL: none. */
  void (*close_handles)(hcsb__handle_t *h);
  /* The last reference is gone: let go of what it holds (may close more
   * libuv handles). */
  void (*release)(hcsb__handle_t *h);
  /* The memory, once released and every libuv close callback has run. */
  void (*free)(hcsb__handle_t *h);
} hcsb__handle_class_t;

struct hcsb__handle_s {
  const hcsb__handle_class_t *cls;
  hcsb__dq_t *dq;    /* where its close callback is deferred */
  hcsb__link_t reqs; /* owned requests, oldest first (the class's links) */
  hcsb__defer_t close_defer;
  hcsb_close_cb close_cb;
  void *close_data;
  void *data; /* the user's */
  int refs;
  unsigned uv_closing; /* libuv handles whose close callback is due */
  uint8_t closing;     /* the owner asked to close: no new requests */
  uint8_t ended;       /* the close callback ran or is on its way */
  uint8_t released;
};

/* One reference (the owner's), nothing owned, not closing. */
void hcsb__handle_init(hcsb__handle_t *h, const hcsb__handle_class_t *cls,
                       hcsb__dq_t *dq);
static inline void hcsb__handle_ref(hcsb__handle_t *h) {
  h->refs++;
}
void hcsb__handle_unref_last(hcsb__handle_t *h);
/* Inline: every op takes and drops one on its owner. */
static inline void hcsb__handle_unref(hcsb__handle_t *h) {
  if (h->refs > 1 && !h->closing)
    h->refs--;
  else
    hcsb__handle_unref_last(h);
}
/* Step 1 of the rule.  `cb` may be NULL. */
void hcsb__handle_close(hcsb__handle_t *h, hcsb_close_cb cb, void *data);
/* Step 2 when due; call whenever something that kept `h` busy ended. */
void hcsb__handle_check_closing(hcsb__handle_t *h);
static inline void hcsb__handle_check_closed(hcsb__handle_t *h) {
  if (h->closing) hcsb__handle_check_closing(h);
}
/* Drops a handle nobody has seen: no close callback, its reference goes. */
void hcsb__handle_abort(hcsb__handle_t *h);
/* uv_close() for a libuv handle of `h` (its `data` is taken over). */
void hcsb__handle_uv_close(hcsb__handle_t *h, uv_handle_t *u);

/* ------------------------------------------------------------------------ */
/* Pools: recycled structs, so hot paths allocate nothing once warm */

typedef struct hcsb__pool_s {
  void *head; /* the free list threads through each struct's first word */
  size_t n, max, size;
} hcsb__pool_t;

#define HCSB__POOL_INIT(size, max) \
  { NULL, 0, (max), (size) }

static inline void *hcsb__pool_get(hcsb__pool_t *p) {
  void *s = p->head;
  if (s == NULL) return malloc(p->size);
  p->head = *(void **)s;
  p->n--;
  return s;
}
static inline void hcsb__pool_put(hcsb__pool_t *p, void *s) {
  if (p->n >= p->max) {
    free(s);
    return;
  }
  *(void **)s = p->head;
  p->head = s;
  p->n++;
}
void hcsb__pool_free(hcsb__pool_t *p);

#endif /* HCSB_CORE_HANDLE_H */
