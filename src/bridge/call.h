/* The call struct, shared with the API layer, which embeds one in each of
 * its operations.  Internal.
 *
 * hcsb_bridge_call() takes its call from the bridge's pool.  The API layer
 * instead keeps the call inside its own op (one allocation per operation,
 * one ActivityId) and starts it with hcsb__bridge_call_in().  Such a call
 * goes through exactly the same states and completion path; the bridge only
 * never recycles it, and never touches it after its callback started, so
 * the callback may start the call again (the op's next step) or free the
 * memory around it.  Its callback's `data` is the call itself: the embedder
 * finds its own struct around it.
 */
#ifndef HCSB_BRIDGE_CALL_H
#define HCSB_BRIDGE_CALL_H

#include <string.h>

#include <hcsbridge/bridge.h>

#include "bridge/dlheap.h"
#include "core/handle.h"
#include "proto/proto.h"

typedef enum hcsb__call_state_e {
  HCSB__CALL_IDLE = 0, /* not started, or its callback has started */
  HCSB__CALL_WAITING,
  HCSB__CALL_PENDING,
  HCSB__CALL_DONE
} hcsb__call_state_t;

/* Kept small (88 bytes): a busy host has a million of these pending, and
 * an op (the call and the API's fields) must fit a 160-byte heap chunk.
 * A pooled call's `data` lives beside it (call.c). */
struct hcsb_call_s {
  /* WAITING, PENDING: on the bridge's request list (timed or untimed, in
   * send order; fn NULL); DONE: on a deferred queue.  The API layer
   * defers its own completions of an op through the same node. */
  hcsb__defer_t dq;
  hcsb_bridge_t *bridge;
  hcsb_call_cb cb;
  uint64_t when; /* deadline (loop time, ms); 0: none */
  union {
    uint64_t id;     /* PENDING and later: the SequenceID (the table's key) */
    size_t wire_off; /* WAITING (no ID yet): its frame in b->hold */
  } u;
  uint32_t dl_idx; /* in the deadline heap; HCSB__DL_NONE when not */
  union {
    uint32_t wire_len; /* WAITING: its frame's length in b->hold */
    int status;        /* DONE: what the callback will get */
  } w;
  uint32_t resp_type;
  uint8_t state;
  uint8_t internal : 1;     /* the bridge's own NegotiateProtocol */
  uint8_t embedded : 1;     /* the caller's storage: never recycled */
  uint8_t has_activity : 1; /* activity[] holds the ActivityId */
  /* Set by an embedder before it starts the call, kept until it resets
   * it: the response's Properties text is handed over without the JSON
   * check, because the embedder parses it as strictly itself. */
  uint8_t unchecked_props : 1;
  /* Its deadline came no earlier than those of the timed calls before it:
   * the request list keeps it in deadline order, no heap needed. */
  uint8_t in_order : 1;
  /* A Create, ExecuteProcess or ModifySettings: reap.c watches it. */
  uint8_t watched : 1;
  /* The embedder's own bits (the API keeps an op's flags here, where the
   * struct has room anyway); the bridge never reads or writes them. */
  uint8_t ext;
  uint8_t activity[16];
};

/* Prepares caller-owned storage for hcsb__bridge_call_in(): idle, in no
 * heap, no ActivityId.  Inline: once per API call. */
static inline void hcsb__call_embed(hcsb_call_t *c) {
  memset(c, 0, sizeof *c);
  c->dl_idx = HCSB__DL_NONE;
  hcsb__defer_init(&c->dq);
  c->embedded = 1;
}
/* hcsb_bridge_call() on caller-owned storage `c`, which must be idle.  On
 * success `c` belongs to the bridge until its callback starts; on failure
 * it stays idle and nothing is queued.  `cb` gets `c` as its data.  The
 * ActivityId is the one set in
 * `c` (hcsb__call_set_activity, or its bytes directly; none: the zero
 * GUID), whatever req->activity_id says.  Exactly one of `req` and `tmpl`
 * is given: a template (proto.h) sends its frame instead of encoding a
 * request; not for Create or ExecuteProcess. */
int hcsb__bridge_call_in(hcsb_bridge_t *b, hcsb_call_t *c,
                         const hcsb_request_t *req, const hcsb__tmpl_t *tmpl,
                         uint32_t timeout_ms, hcsb_call_cb cb);

/* For a ModifySettings just started with hcsb__bridge_call_in: should the
 * caller give up on it (timeout, cancel) and the guest answer success
 * later, `fn(ctx)` runs then, from the bridge's read path (it records what
 * the guest now holds; it must not call into the bridge).  `ctx_free(ctx)`
 * (may be NULL) runs once in every case, when the bridge is done with it:
 * at once when `c` is not a ModifySettings with the bridge. */
void hcsb__call_on_late_success(hcsb_call_t *c, void (*fn)(void *ctx),
                                void *ctx, void (*ctx_free)(void *ctx));

/* Waiting, pending, or completed with its callback still to come. */
static inline int hcsb__call_busy(const hcsb_call_t *c) {
  return c->state != HCSB__CALL_IDLE;
}

/* A call's ActivityId as text (for logs), or NULL when it has none. */
const char *hcsb__call_activity(const hcsb_call_t *c, char buf[37]);
/* Sets the call's ActivityId from `guid` (a canonical GUID, or NULL for
 * none).  0, or -EINVAL for anything else (then none). */
int hcsb__call_set_activity(hcsb_call_t *c, const char *guid);

#endif /* HCSB_BRIDGE_CALL_H */
