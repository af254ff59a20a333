/* containerd-shim-hcsb-v1 — the ttrpc server the Task service runs on.
 *
 * Internal to the shim (src/shim/), not part of libhcsbridge.  One server
 * per shim process, on the shim's libuv loop, single-threaded like it.
 *
 * What a client sees (containerd 1.6's ttrpc protocol): frames of a
 * 10-byte header (payload length u32 BE, stream id u32 BE, type u8, flags
 * u8) and a protobuf payload of at most 4 MiB; a Request (service, method,
 * payload, timeout_nano, metadata) on an odd stream id is answered by one
 * Response (google.rpc.Status, payload) on the same id.  Requests are
 * served concurrently: a call that is not answered yet (a Wait held until
 * the process exits) never holds up the others, on that client or another.
 *   - Unknown service or method: UNIMPLEMENTED (12), handler not called.
 *   - A payload the method's message cannot be unpacked from:
 *     INVALID_ARGUMENT (3), handler not called.
 *   - More than opts.max_calls calls of one client in flight:
 *     RESOURCE_EXHAUSTED (8) for the extra ones, handler not called.
 *   - A malformed frame (length over 4 MiB, a payload that is not a ttrpc
 *     Request, an even or zero stream id, a stream id already in flight):
 *     that client is disconnected, after the error status for that stream
 *     has been written where there is one; other clients go on.
 *   - Frames of another type than request are skipped, as ttrpc does.
 *
 * The service side:
 *   - Register a method table with hcsb__shim_server_add().  For each
 *     request the server unpacks the payload with the entry's descriptor
 *     (allocation bounded, see ttrpc.h) and calls
 *     handler(call, req, data) from the loop.
 *   - The handler, or any code later, ends the call exactly once with
 *     hcsb__shim_reply(), one of its variants, or hcsb__shim_call_drop().
 *     Until then `call`, `req` and everything reachable from them stay
 *     valid, even when the client has gone; afterwards none of them is.
 *   - Replying inside the handler is fine: the reply is only queued for
 *     writing, no callback runs inside it.
 *   - Replying to a client that went away frees the call and writes
 *     nothing.  hcsb__shim_call_on_gone() tells a long call (Wait) that its
 *     client left, so it can end early.
 *   - Ending a call from another call's handler, or from any loop
 *     callback, is fine.
 *   - No call ends by itself: not when its client disconnects, not at
 *     containerd's timeout (hcsb__shim_call_timeout_ns() reports it;
 *     honouring it is the handler's choice), not at hcsb__shim_server_close().
 *     A call the service never ends is leaked.
 */
#ifndef HCSB_SHIM_SERVER_H
#define HCSB_SHIM_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include <hcsbridge/common.h>

#include "shim/grpc.h"

typedef struct hcsb__shim_server_s hcsb__shim_server_t;
typedef struct hcsb__shim_call_s hcsb__shim_call_t;

/* `req` is the unpacked request (NULL when the entry has no descriptor;
 * the raw bytes are in hcsb__shim_call_payload()), owned by the call.
 * `data` is what was given to hcsb__shim_server_add(). */
typedef void (*hcsb__shim_handler_fn)(hcsb__shim_call_t *call,
                                      const ProtobufCMessage *req, void *data);

typedef struct hcsb__shim_method_s {
  const char *service; /* e.g. "containerd.task.v2.Task" */
  const char *method;  /* e.g. "Create" */
  /* The request message, e.g.
   * &containerd__task__v2__create_task_request__descriptor; NULL = the
   * handler reads the raw payload. */
  const ProtobufCMessageDescriptor *request;
  hcsb__shim_handler_fn handler;
} hcsb__shim_method_t;

typedef struct hcsb__shim_server_opts_s {
  size_t max_clients; /* connections at once, 0 = 64; more are closed at
                         once after accept (and logged) */
  size_t max_calls;   /* calls in flight per client, 0 = 256 */
  size_t max_output;  /* reply bytes queued per client before its reading
                         pauses until they are written, 0 = 8 MiB */
} hcsb__shim_server_opts_t;

/* Creates a server on `loop` (opts may be NULL).  0, -EINVAL (loop or out
 * NULL), -ENOMEM. */
int hcsb__shim_server_new(uv_loop_t *loop, const hcsb__shim_server_opts_t *opts,
                          hcsb__shim_server_t **out);

/* Adds `n` methods.  The table and `data` must stay valid until the
 * server's close callback; tables may be added at any time before close.
 * 0, -EINVAL (an entry without service, method or handler), -EEXIST (a
 * service/method pair that is already there; nothing of this table is
 * added), -ENOMEM, -ECANCELED (closing). */
int hcsb__shim_server_add(hcsb__shim_server_t *srv,
                          const hcsb__shim_method_t *methods, size_t n,
                          void *data);

/* Serves on `fd`, a listening Unix stream socket (the one `start` made and
 * handed to the daemon); the server owns it from here on, also on failure.
 * 0, -EBUSY (already listening), -ECANCELED, or libuv's error. */
int hcsb__shim_server_listen_fd(hcsb__shim_server_t *srv, int fd);

/* Binds and listens on the Unix socket `path` itself (tests, tools); the
 * file is removed at close (libuv does so for a socket it bound, not for
 * one given to hcsb__shim_server_listen_fd).  Errors as above plus
 * bind's. */
int hcsb__shim_server_listen(hcsb__shim_server_t *srv, const char *path);

typedef void (*hcsb__shim_server_close_cb)(hcsb__shim_server_t *srv,
                                           void *data);

/* Stops accepting, stops reading every client, writes what replies are
 * queued (each client for at most a few seconds), then disconnects them.
 * `cb` (may be NULL) runs once, later, after the last client and the
 * listener are closed; the server must not be used after it (its memory
 * goes once cb has returned and every call has ended).  Calls not ended
 * yet stay the service's: ending them later is fine (and frees them).  A
 * second close does nothing. */
void hcsb__shim_server_close(hcsb__shim_server_t *srv,
                             hcsb__shim_server_close_cb cb, void *data);

/* Counters for logs and tests. */
typedef struct hcsb__shim_server_stats_s {
  uint64_t clients_accepted;
  uint64_t clients_refused;   /* over max_clients */
  uint64_t clients_malformed; /* disconnected for a malformed frame */
  uint64_t calls;             /* requests dispatched to a handler */
  uint64_t unimplemented;     /* answered UNIMPLEMENTED */
  uint64_t replies_dropped;   /* ended after their client had gone */
  size_t clients;             /* connected now */
  size_t calls_pending;       /* not ended yet, over all clients */
} hcsb__shim_server_stats_t;
void hcsb__shim_server_stats(const hcsb__shim_server_t *srv,
                             hcsb__shim_server_stats_t *out);

/* ------------------------------------------------------------------------ */
/* A call, between dispatch and its end.  Every accessor is valid until the
 * call ends; strings are NUL-terminated and owned by the call. */

const char *hcsb__shim_call_service(const hcsb__shim_call_t *call);
const char *hcsb__shim_call_method(const hcsb__shim_call_t *call);
/* The Request's payload bytes (the packed request message). */
const uint8_t *hcsb__shim_call_payload(const hcsb__shim_call_t *call,
                                       size_t *len);
/* The Request's timeout_nano: 0 when the client set none. */
int64_t hcsb__shim_call_timeout_ns(const hcsb__shim_call_t *call);
/* The first metadata value under `key` (exact match), or NULL. */
const char *hcsb__shim_call_metadata(const hcsb__shim_call_t *call,
                                     const char *key);
/* The stream id (for logs). */
uint32_t hcsb__shim_call_stream(const hcsb__shim_call_t *call);
/* 1 when the client that sent the call has disconnected, else 0. */
int hcsb__shim_call_gone(const hcsb__shim_call_t *call);

typedef void (*hcsb__shim_gone_cb)(hcsb__shim_call_t *call, void *data);
/* Asks for `cb(call, data)` when the client disconnects before the call
 * ends.  It runs at most once, from the loop (the connection's close), never
 * inside a server function and never after the call ended; it usually ends
 * the call.  A second registration replaces the first; cb NULL cancels.
 * Returns 0, or 1 when the client has gone already: then nothing is
 * registered and the caller should end the call itself. */
int hcsb__shim_call_on_gone(hcsb__shim_call_t *call, hcsb__shim_gone_cb cb,
                            void *data);

/* ------------------------------------------------------------------------ */
/* Ending a call.  Each of these ends it: `call` (and the `req` the handler
 * got) is gone when it returns.  None fails from the caller's view: a
 * response that cannot be packed goes out as INTERNAL, one whose packed
 * size is over 4 MiB as RESOURCE_EXHAUSTED (both logged). */

/* `code` 0 (OK): `resp` is packed as the Response payload (NULL = an empty
 * payload, which is also what google.protobuf.Empty packs to) and
 * `message` is ignored.  Another code: `resp` is ignored and `message`
 * (may be NULL) becomes the status message. */
void hcsb__shim_reply(hcsb__shim_call_t *call, int code, const char *message,
                      const ProtobufCMessage *resp);

/* OK with `resp` (may be NULL). */
void hcsb__shim_reply_ok(hcsb__shim_call_t *call, const ProtobufCMessage *resp);

/* `code` with a printf-formatted message (truncated to 1 KiB). */
void hcsb__shim_reply_error(hcsb__shim_call_t *call, int code, const char *fmt,
                            ...) __attribute__((format(printf, 3, 4)));

/* A library outcome: the code from hcsb__shim_grpc_code(status, gerr), and
 * the message "<fmt...>: <hcsb_strerror(status)>", with the guest's
 * HRESULT and error message appended when status is HCSB_EGUEST and gerr
 * is given.  status 0 is answered OK with an empty payload. */
void hcsb__shim_reply_status(hcsb__shim_call_t *call, int status,
                             const hcsb_guest_error_t *gerr, const char *fmt,
                             ...) __attribute__((format(printf, 4, 5)));

/* Ends the call without writing anything.  For a Shutdown after which the
 * shim exits, containerd takes the closed connection as success (and an
 * OK reply as well). */
void hcsb__shim_call_drop(hcsb__shim_call_t *call);

#endif /* HCSB_SHIM_SERVER_H */
