/* containerd-shim-hcsb-v1 — one ttrpc client connection of the server,
 * without I/O.
 *
 * The I/O layer (server.c) feeds it what it reads, writes what it queues
 * and tells it when the connection is gone; the session turns frames into
 * calls, dispatches them to the method table, and turns the calls' ends
 * into response frames.  It implements the call API of server.h and every
 * rule stated there (UNIMPLEMENTED, INVALID_ARGUMENT, the in-flight limit,
 * what is malformed), so all of that is tested with byte strings
 * (test-shim-session) and fuzzed (fuzz/fuzz-ttrpc.c).
 *
 * Lifetime: the I/O layer owns the session until it calls
 * hcsb__ttrpc_session_detach(); the session then lives on while calls are
 * outstanding, and frees itself (calling cfg.on_free) when the last one
 * ends.  Calls may end at any time from anywhere on the loop's thread.
 */
#ifndef HCSB_SHIM_SESSION_H
#define HCSB_SHIM_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/list.h"
#include "shim/server.h"

typedef struct hcsb__ttrpc_session_s hcsb__ttrpc_session_t;

/* One frame to write. */
typedef struct hcsb__ttrpc_out_s {
  hcsb__link_t link;
  size_t len;
  uint8_t *data;
} hcsb__ttrpc_out_t;

typedef struct hcsb__ttrpc_session_cfg_s {
  size_t max_calls; /* in flight; 0 = 256 */
  /* The method for service/method and its table's data, or NULL. */
  const hcsb__shim_method_t *(*lookup)(void *ctx, const char *service,
                                       const char *method, void **data);
  /* The output queue went from empty to not empty (not after detach). */
  void (*on_output)(void *ctx);
  void *ctx; /* for lookup and on_output, which never run after detach */
  /* The session's memory is going (after detach and its last call): so
   * it gets a context of its own, which must outlive the session. */
  void (*on_free)(void *free_ctx);
  void *free_ctx;
  /* Counters to bump (calls, unimplemented, replies_dropped,
   * calls_pending); may be NULL. */
  hcsb__shim_server_stats_t *stats;
} hcsb__ttrpc_session_cfg_t;

/* 0, -ENOMEM. */
int hcsb__ttrpc_session_new(const hcsb__ttrpc_session_cfg_t *cfg,
                            hcsb__ttrpc_session_t **out);

/* Processes data[0..len): every complete request is dispatched before this
 * returns (handlers run inside it).  0; or -EPROTO / -ENOMEM: the client
 * is to be disconnected once the queued output (which may hold the error
 * status for the offending stream) is written; from then on input is
 * ignored.  Also ignored after hcsb__ttrpc_session_stop(). */
int hcsb__ttrpc_session_feed(hcsb__ttrpc_session_t *s, const uint8_t *data,
                             size_t len);

/* Dispatch nothing more (the server is closing). */
void hcsb__ttrpc_session_stop(hcsb__ttrpc_session_t *s);

/* Moves every queued frame to the tail of `list` and returns how many
 * bytes they hold; the caller frees each with hcsb__ttrpc_out_free() once
 * written. */
size_t hcsb__ttrpc_session_take_output(hcsb__ttrpc_session_t *s,
                                       hcsb__link_t *list);
/* Bytes queued and not taken yet. */
size_t hcsb__ttrpc_session_output_bytes(const hcsb__ttrpc_session_t *s);
void hcsb__ttrpc_out_free(hcsb__ttrpc_out_t *o);

/* Calls dispatched and not ended. */
size_t hcsb__ttrpc_session_calls(const hcsb__ttrpc_session_t *s);

/* The connection is gone: queued output is dropped, outstanding calls
 * learn it (their gone callbacks run now, inside this call), and the
 * session frees itself once none is left (maybe before this returns).
 * The caller must not touch `s` afterwards. */
void hcsb__ttrpc_session_detach(hcsb__ttrpc_session_t *s);

#endif /* HCSB_SHIM_SESSION_H */
