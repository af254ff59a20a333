/* hcsbridge — the bridge: one connection to a GCS, request/response
 * correlation by SequenceID, notifications, and the transports that give a
 * bridge its byte stream.
 *
 * Threading: everything runs on the libuv loop the bridge was created on.
 * No function may be called from another thread.
 *
 * Callback rules (hold for every callback in this file):
 *   - A callback never runs inside the call that started the operation; it
 *     runs later, from the loop.
 *   - Every accepted call's callback runs exactly once: on the reply, on its
 *     timeout, on hcsb_call_cancel(), or when the connection is lost/closed.
 *   - From inside any callback it is safe to issue new calls, cancel calls,
 *     and close the bridge.
 */
#ifndef HCSBRIDGE_BRIDGE_H
#define HCSBRIDGE_BRIDGE_H

#include <uv.h>

#include <hcsbridge/common.h>
#include <hcsbridge/messages.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* The bridge */

typedef struct hcsb_bridge_s hcsb_bridge_t;
typedef struct hcsb_call_s hcsb_call_t;

/* status: 0 when a response arrived and Result == 0; HCSB_EGUEST when
 * Result != 0 (then `gerr` is non-NULL); otherwise a negative errno (see
 * common.h) and `resp` may be NULL.  `resp` is non-NULL whenever a response
 * was received and decoded. */
typedef void (*hcsb_call_cb)(void *data, int status,
                             const hcsb_guest_error_t *gerr,
                             const hcsb_response_t *resp);

/* The bridge is connected and negotiated (status 0), or could not be:
 * -ENOMSG when the peer sent a request while we waited for the answer to
 * NegotiateProtocol (it is no GCS: another host, or an echo), HCSB_EGUEST
 * or -EPROTO when the guest refused or garbled the negotiation, or the
 * transport's error. */
typedef void (*hcsb_ready_cb)(void *data, hcsb_bridge_t *bridge, int status,
                              const hcsb_guest_error_t *gerr);
typedef void (*hcsb_notify_cb)(void *data, hcsb_bridge_t *bridge,
                               const hcsb_notification_t *notification);
/* The connection went away for a reason other than hcsb_bridge_close():
 * `status` is -ECONNRESET or -EPIPE; hcsb_bridge_close_cause() has detail. */
typedef void (*hcsb_disconnect_cb)(void *data, hcsb_bridge_t *bridge,
                                   int status);
typedef void (*hcsb_close_cb)(void *data);

/* Allocates a bridge bound to `loop`.  Nothing happens until it is opened. */
HCSB_EXTERN int hcsb_bridge_new(uv_loop_t *loop, hcsb_bridge_t **out);

/* Limits.  Each returns 0 or -EINVAL. */
/* Largest accepted incoming frame incl. header (default 16 MiB, >= 4096).
 * A larger response fails its call with -EMSGSIZE; the connection lives. */
HCSB_EXTERN int hcsb_bridge_set_max_frame(hcsb_bridge_t *b, uint32_t bytes);
/* Calls outstanding at once (default 1,000,000); beyond it -ENOBUFS. */
HCSB_EXTERN int hcsb_bridge_set_max_pending(hcsb_bridge_t *b, size_t calls);
/* Encoded bytes waiting to be written (default 64 MiB); beyond it -ENOBUFS. */
HCSB_EXTERN int hcsb_bridge_set_max_write_queue(hcsb_bridge_t *b, size_t bytes);

HCSB_EXTERN void hcsb_bridge_set_log(hcsb_bridge_t *b, hcsb_log_cb cb,
                                     void *data, hcsb_log_level_t max_level);
HCSB_EXTERN void hcsb_bridge_set_notify_cb(hcsb_bridge_t *b, hcsb_notify_cb cb,
                                           void *data);
HCSB_EXTERN void hcsb_bridge_set_disconnect_cb(hcsb_bridge_t *b,
                                               hcsb_disconnect_cb cb,
                                               void *data);
HCSB_EXTERN void hcsb_bridge_set_data(hcsb_bridge_t *b, void *data);
HCSB_EXTERN void *hcsb_bridge_get_data(const hcsb_bridge_t *b);

/* Opens the transport named by `address` (the syntax is at hcsb_addr_parse()
 * in messages.h), then sends NegotiateProtocol (min = max = 4) and waits
 * for its answer.  `cb` runs once.
 * Calls made before `cb` are queued and sent, in order, after negotiation.
 * Returns 0, -EINVAL (bad address), -EALREADY (already opened). */
HCSB_EXTERN int hcsb_bridge_connect(hcsb_bridge_t *b, const char *address,
                                    hcsb_ready_cb cb, void *data);
/* As hcsb_bridge_connect() with an already-parsed address. */
HCSB_EXTERN int hcsb_bridge_connect_addr(hcsb_bridge_t *b,
                                         const hcsb_addr_t *addr,
                                         hcsb_ready_cb cb, void *data);
/* Adopts a connected descriptor (the bridge owns and closes it), then
 * negotiates as above. */
HCSB_EXTERN int hcsb_bridge_open_fd(hcsb_bridge_t *b, int fd, hcsb_ready_cb cb,
                                    void *data);

/* Starts a call.  `req` is encoded before this returns.  `timeout_ms` 0 means
 * no timeout.  On success returns 0, stores a handle in *callp (when callp is
 * non-NULL; the handle is valid until the callback starts) and `cb` will run
 * exactly once.  On failure returns -EINVAL, -ENOMEM or -ENOBUFS and `cb`
 * never runs.  After the bridge was closed or lost, returns 0 and `cb` runs
 * on the next loop turn with -ENOTCONN. */
HCSB_EXTERN int hcsb_bridge_call(hcsb_bridge_t *b, const hcsb_request_t *req,
                                 uint32_t timeout_ms, hcsb_call_cb cb,
                                 void *data, hcsb_call_t **callp);

/* Cancels a call: its callback runs on the next loop turn with -ECANCELED
 * and a late response is dropped and counted.  Returns 0, or -EALREADY when
 * the call has already been completed but its callback has not run yet. */
HCSB_EXTERN int hcsb_call_cancel(hcsb_call_t *call);
/* SequenceID of a call (0 while it waits for negotiation). */
HCSB_EXTERN uint64_t hcsb_call_id(const hcsb_call_t *call);

/* Closes the bridge: every pending call fails with -ECANCELED (exactly once),
 * later calls fail with -ENOTCONN, the transport is closed, and `cb` runs
 * once every libuv handle has been closed; the memory is freed after `cb`.
 * Safe from inside any callback.  Idempotent: a second call only replaces
 * nothing and returns. */
HCSB_EXTERN void hcsb_bridge_close(hcsb_bridge_t *b, hcsb_close_cb cb,
                                   void *data);

/* After negotiation: the guest's capabilities and version; NULL/0 before. */
HCSB_EXTERN const hcsb_caps_t *hcsb_bridge_caps(const hcsb_bridge_t *b);
HCSB_EXTERN uint32_t hcsb_bridge_protocol_version(const hcsb_bridge_t *b);
/* 1 while connected and negotiated. */
HCSB_EXTERN int hcsb_bridge_is_connected(const hcsb_bridge_t *b);
/* Why the connection ended: 0 while alive; a libuv error (UV_EOF,
 * UV_ECONNRESET, ...) for transport causes, -EPROTO for an untrustworthy
 * byte stream, -ENOMSG for a peer that sent requests while negotiating,
 * -ECANCELED for hcsb_bridge_close(). */
HCSB_EXTERN int hcsb_bridge_close_cause(const hcsb_bridge_t *b);
HCSB_EXTERN uv_loop_t *hcsb_bridge_loop(const hcsb_bridge_t *b);
/* The parsed address the bridge was connected with (NULL for open_fd). */
HCSB_EXTERN const hcsb_addr_t *hcsb_bridge_address(const hcsb_bridge_t *b);
/* The guest a spawn: address started: returns 1 once it has exited and
 * been reaped, with its exit status in *exit_status (127: the shell found
 * no such command, 126: not executable) or the signal that killed it in
 * *term_signal (the other is 0; either pointer may be NULL); 0 while it
 * runs; -ENOENT when the bridge started no guest (other transports,
 * hcsb_bridge_open_fd) or is closed.  When such a guest ends the stream
 * before the negotiation ended, the open fails with -ECHILD once its exit
 * is known (the bridge waits up to a second for it), so this answers in
 * the ready callback.  Added in 0.2.0. */
HCSB_EXTERN int hcsb_bridge_guest_exit(const hcsb_bridge_t *b, int *exit_status,
                                       int *term_signal);

typedef struct hcsb_bridge_stats_s {
  uint64_t calls_started;
  uint64_t calls_completed;
  uint64_t frames_sent;
  uint64_t frames_received;
  uint64_t bytes_sent;
  uint64_t bytes_received;
  uint64_t writes; /* writes to the stream: frames_sent / writes = batching */
  uint64_t late_responses;    /* for timed-out/cancelled calls, dropped */
  uint64_t unknown_responses; /* ID never sent or already answered */
  uint64_t oversize_frames;   /* skipped, their call failed -EMSGSIZE */
  uint64_t bad_responses;     /* undecodable or wrong type: -EPROTO */
  uint64_t notifications;
  uint64_t dropped_messages; /* requests or unknown types from the guest */
  size_t pending;            /* calls outstanding now */
  size_t queued_bytes;       /* encoded, not yet written */
  /* Create or ExecuteProcess calls that timed out or were cancelled, then
   * succeeded in the guest after all (a late success response): the bridge
   * undid what the guest made with calls of its own (container:
   * ShutdownForced, then DeleteContainerState when the guest supports it;
   * process: SignalProcess SIGKILL, then WaitForProcess).  Those calls are
   * not counted in calls_started/completed.  Added in 0.2.0; fields are
   * only ever appended. */
  uint64_t orphans_reaped;
  /* Reads that brought bytes: bytes_received / reads = bytes per read.
   * Added in 0.2.0. */
  uint64_t reads;
} hcsb_bridge_stats_t;

HCSB_EXTERN void hcsb_bridge_stats(const hcsb_bridge_t *b,
                                   hcsb_bridge_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif /* HCSBRIDGE_BRIDGE_H */
