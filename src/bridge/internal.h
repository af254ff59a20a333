/* The bridge object and the seams between its files.  Internal.
 *
 *   bridge.c  lifecycle: open, negotiate, lose, close, free; getters
 *   call.c    calls: start, cancel, the completion path, deadlines,
 *             deferral (on the bridge's core queue)
 *   reader.c  the read path: libuv buffer -> decoder -> dispatch
 *   writer.c  the write queue: one buffer filling while the other is on the
 *             wire, one flush per loop turn
 *   log.c     the log callback and frame tracing
 *
 * The bridge is a core handle (core/handle.h): its owned requests are its
 * calls with a deadline, WAITING or PENDING, oldest first (the ones without
 * one are on `untimed`, also in send order); its deferred queue runs DONE
 * calls and the disconnect callback.  Closing it frees nothing until the
 * transport is closed, no dispatch is on the stack and the queue is empty;
 * then its libuv handles close and the close callback runs after the last
 * of them, the memory right after.
 *
 * Life of a call: WAITING (encoded with ID 0 in `hold`, before negotiation)
 * or PENDING (in `tab`, its frame queued or written) -> DONE (detached from
 * everything, queued for a deferred callback) or straight to its callback
 * (reply, timeout).
 *
 * Deadlines cost nothing per call in the common case.  A user's call whose
 * deadline is no earlier than that of any timed call made before it (one
 * timeout for everything, or growing ones) is "in order": the request list
 * already holds it in deadline order, so the first in-order call on the list
 * is the earliest of them and no structure is touched.  Other timed calls
 * (shorter timeouts than before, internal calls) go into `heap`.  One timer
 * serves both; removing a call never re-arms it, an early wake-up finds
 * nothing due and re-arms.  Whatever the path, call_finish() runs the callback
 * and recycles the struct, exactly once.  A call embedded in its caller's own
 * struct (call.h) takes the same path but is not recycled: once its
 * callback starts, the bridge never touches it again.  NegotiateProtocol is
 * such a call, embedded in the bridge and marked internal.
 */
#ifndef HCSB_BRIDGE_INTERNAL_H
#define HCSB_BRIDGE_INTERNAL_H

#include <uv.h>

#include <hcsbridge/bridge.h>

#include "bridge/call.h"
#include "bridge/calltab.h"
#include "bridge/dlheap.h"
#include "bridge/transport.h"
#include "core/handle.h"
#include "proto/proto.h"

/* The read buffer starts small (an idle guest costs little) and doubles
 * each time a read fills it, so a busy bridge reads many frames at once. */
#define HCSB__READ_BUF_MIN (8u * 1024u)
#define HCSB__READ_BUF_MAX (256u * 1024u)
#define HCSB__DEFAULT_MAX_PENDING 1000000u
#define HCSB__DEFAULT_MAX_WRITE_QUEUE (64u * 1024u * 1024u)
#define HCSB__MAX_WRITE_QUEUE_LIMIT (1024u * 1024u * 1024u)
#define HCSB__DEFAULT_OPEN_TIMEOUT_MS 120000u
#define HCSB__SPAWN_GRACE_MS 2000u
/* How long a failed open waits for a spawned guest's exit to be reaped. */
#define HCSB__SPAWN_EXIT_WAIT_MS 1000u
#define HCSB__FREE_CALLS_MAX 1024u

typedef enum hcsb__phase_e {
  HCSB__NEW = 0,     /* not opened; calls wait */
  HCSB__OPENING,     /* transport accepting/dialling; calls wait */
  HCSB__NEGOTIATING, /* NegotiateProtocol on the wire; calls wait */
  HCSB__READY,
  HCSB__DEAD /* lost or closed; calls fail -ENOTCONN */
} hcsb__phase_t;

struct hcsb_bridge_s {
  hcsb__handle_t h; /* requests: calls WAITING or PENDING; data: the user's */
  uv_loop_t *loop;
  hcsb__phase_t phase;
  int close_cause;
  int lost_status; /* what calls failed with when the connection went */
  int was_ready;

  /* Transport */
  uv_stream_t *stream;
  hcsb__opener_t *opener;
  int opener_closing;
  hcsb_addr_t addr;
  int has_addr;

  /* Own handles: the deadline timer, the write flush and the deferred
   * queue (DONE calls, the disconnect callback). */
  uv_timer_t timer;
  uv_prepare_t prepare;
  hcsb__dq_t dq;
  hcsb__defer_t disconnect;
  uint64_t timer_due;     /* 0: not armed */
  uint64_t in_order_when; /* the latest in-order deadline so far */

  /* Calls */
  uint64_t next_id;
  hcsb__calltab_t tab; /* PENDING calls by u.id, and abandoned IDs (bare) */
  size_t nabandoned;
  size_t npending;      /* user calls WAITING or PENDING */
  hcsb__link_t untimed; /* calls without a deadline, in send order */
  hcsb__dlheap_t heap;  /* deadlines out of order */
  hcsb__pool_t pool;
  hcsb_call_t negotiate; /* internal, embedded */
  /* Create/ExecuteProcess calls out, or abandoned: one per bare key in
   * `tab`, so bounded by max_pending like those. */
  hcsb__link_t watches;
  int ready_due;   /* ready_cb not yet called */
  int exit_waited; /* the open's failure waited for a spawned guest's exit */
  int held_status; /* that failure, while it waits */

  /* Writing: wbuf[wcur] fills while wbuf[!wcur] is on the wire. */
  hcsb__buf_t wbuf[2];
  int wcur;
  int winflight;
  int flush_armed; /* the prepare handle is started (flush before poll) */
  size_t inflight_len;
  uv_write_t wreq;
  hcsb__buf_t hold; /* frames of WAITING calls, ID 0 */
  size_t hold_dead; /* bytes in `hold` of calls cancelled or timed out */

  /* Reading */
  char *rbuf;
  size_t rbuf_cap;
  hcsb__decoder_t dec;
  hcsb__decode_ctx_t dctx;
  int dctx_ready;

  /* Negotiated */
  hcsb_caps_t caps;
  uint32_t version;

  /* Limits */
  uint32_t max_frame;
  size_t max_pending;
  size_t max_write_queue;

  /* User callbacks */
  hcsb_ready_cb ready_cb;
  void *ready_data;
  hcsb_notify_cb notify_cb;
  void *notify_data;
  hcsb_disconnect_cb disconnect_cb;
  void *disconnect_data;
  hcsb_log_cb log_cb;
  void *log_data;
  hcsb_log_level_t log_level;

  hcsb_bridge_stats_t st;
};

/* Abandoned IDs (timed out or cancelled after being sent) stay in `tab` as
 * bare keys, so a late response is told apart from one nobody asked for. */
#define HCSB__ABANDONED HCSB__CALLTAB_BARE

/* bridge.c */
/* Held while a dispatch is on the stack: closing waits for it. */
static inline void hcsb__bridge_ref(hcsb_bridge_t *b) {
  hcsb__handle_ref(&b->h);
}
static inline void hcsb__bridge_unref(hcsb_bridge_t *b) {
  hcsb__handle_unref(&b->h);
}
/* The connection is gone: every call fails with `call_status` on the next
 * turn, `cause` is kept for hcsb_bridge_close_cause(), the stream closes.
 * Never runs a user callback itself.  No-op once dead. */
void hcsb__bridge_lost(hcsb_bridge_t *b, int call_status, int cause);

/* call.c */
/* The one completion path: detaches `c`, runs its callback, recycles it. */
void hcsb__call_finish(hcsb_call_t *c, int status,
                       const hcsb_guest_error_t *gerr,
                       const hcsb_response_t *resp);
/* Detaches `c` and queues its callback for the next turn with `status`. */
void hcsb__call_defer(hcsb_call_t *c, int status);
/* Moves every WAITING and PENDING call to the done queue with `status`. */
void hcsb__calls_fail_all(hcsb_bridge_t *b, int status);
/* Negotiated: gives WAITING calls their IDs and queues their frames. */
int hcsb__calls_release_waiting(hcsb_bridge_t *b);
/* Records that `id` was sent but nobody waits for its answer any more. */
int hcsb__call_abandon_id(hcsb_bridge_t *b, uint64_t id);
void hcsb__call_recycle(hcsb_bridge_t *b, hcsb_call_t *c);
/* The one way a call starts: in `given` (embedded, idle; its callback gets
 * it as data, `data` is ignored) or in one from the pool, sending `req` or
 * `tmpl` (exactly one).  HCSB__CALL_INTERNAL: the
 * bridge's own call, sent before negotiation ends and not counted as the
 * user's.  HCSB__CALL_KEEP_ACTIVITY: `given` holds its ActivityId already
 * (req->activity_id is not looked at). */
#define HCSB__CALL_INTERNAL 1
#define HCSB__CALL_KEEP_ACTIVITY 2
int hcsb__call_start(hcsb_bridge_t *b, hcsb_call_t *given,
                     const hcsb_request_t *req, const hcsb__tmpl_t *tmpl,
                     uint32_t timeout_ms, hcsb_call_cb cb, void *data,
                     int flags, hcsb_call_t **callp);
void hcsb__calls_free(hcsb_bridge_t *b);
/* What the bridge's pool allocates: a call and its `data`. */
size_t hcsb__pooled_call_size(void);

/* reap.c: undoing a Create/ExecuteProcess that succeeds late */
typedef struct hcsb__watch_s hcsb__watch_t;
/* Whether calls of this request or response type are watched (inline: it
 * is asked several times per call). */
static inline int hcsb__reap_watched(uint32_t msg_type) {
  uint32_t req = (msg_type & ~HCSB_MSG_TYPE_MASK) | HCSB_MSG_TYPE_REQUEST;
  return req == HCSB_MSG_CREATE || req == HCSB_MSG_EXECUTE_PROCESS ||
         req == HCSB_MSG_MODIFY_SETTINGS;
}
hcsb__watch_t *hcsb__reap_watch_new(const hcsb_request_t *req);
void hcsb__reap_watch_start(hcsb_bridge_t *b, hcsb__watch_t *w, hcsb_call_t *c);
/* `c` (watched) completed: nothing to undo. */
void hcsb__reap_call_ended(hcsb_bridge_t *b, hcsb_call_t *c);
/* `c` (watched) was sent and given up: its ID is remembered. */
void hcsb__reap_call_abandoned(hcsb_bridge_t *b, hcsb_call_t *c);
/* The connection is gone: no late answer can come. */
void hcsb__reap_drop_abandoned(hcsb_bridge_t *b);
/* A late answer arrived for an abandoned ID (`body` NULL: oversize). */
void hcsb__reap_late(hcsb_bridge_t *b, const hcsb__hdr_t *h, const void *body,
                     size_t len);
void hcsb__reap_free(hcsb_bridge_t *b);

/* reader.c */
int hcsb__reader_start(hcsb_bridge_t *b);

/* writer.c */
void hcsb__writer_arm(hcsb_bridge_t *b);
void hcsb__writer_disarm(hcsb_bridge_t *b);
/* Queues an encoded frame already appended to the current buffer (inline:
 * once per call, and the flush is nearly always armed already). */
static inline void hcsb__writer_kick(hcsb_bridge_t *b) {
  if (!b->flush_armed) hcsb__writer_arm(b);
}
/* Bytes accepted and not yet taken by the kernel. */
static inline size_t hcsb__writer_queued(const hcsb_bridge_t *b) {
  return b->wbuf[b->wcur].len + (b->winflight ? b->inflight_len : 0) +
         (b->hold.len - b->hold_dead);
}
/* The buffer frames are appended to. */
static inline hcsb__buf_t *hcsb__writer_buf(hcsb_bridge_t *b) {
  return &b->wbuf[b->wcur];
}

/* log.c */
/* Text for any status the bridge deals in: ours, errno values, UV_EOF. */
const char *hcsb__errstr(int status);
/* Inline: asked on every frame and call, and almost always no. */
static inline int hcsb__log_on(const hcsb_bridge_t *b, hcsb_log_level_t level) {
  return b->log_cb != NULL && level <= b->log_level;
}
void hcsb__log(const hcsb_bridge_t *b, hcsb_log_level_t level,
               const char *activity_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Traces one frame (header and body; Create/ExecuteProcess bodies are
 * withheld since they carry environment variables). */
void hcsb__log_frame(const hcsb_bridge_t *b, const char *dir, uint32_t type,
                     uint64_t id, const void *body, size_t body_len);
void hcsb__log_guest_error(const hcsb_bridge_t *b, const char *activity_id,
                           const hcsb_guest_error_t *gerr);

#endif /* HCSB_BRIDGE_INTERNAL_H */
