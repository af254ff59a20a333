/* containerd-shim-hcsb-v1 — task events to containerd.
 *
 * Internal to the shim.  The shim is a ttrpc client of containerd's ttrpc
 * socket ($TTRPC_ADDRESS) and calls
 * containerd.services.events.ttrpc.v1.Events/Forward once per event with
 * ForwardRequest{Envelope{timestamp, namespace, topic, event}} and the
 * request metadata containerd-namespace-ttrpc = <namespace>.  The event is
 * a google.protobuf.Any whose type_url is the message's full protobuf name
 * (e.g. "containerd.events.TaskExit", as containerd's typeurl registry
 * names its events).
 *
 * Order: events are forwarded one at a time, in the order published, each
 * after containerd answered the one before (containerd serves requests
 * concurrently, so pipelining them would let it reorder them).
 *
 * Bounds: at most opts.max_queued events wait; a publish beyond that is
 * refused (-ENOBUFS) and logged.  One Forward waits at most
 * opts.call_timeout_ms for its answer.  When the connection fails (refused,
 * lost, timed out) the event is retried on a new connection after a short
 * back-off, up to opts.max_attempts tries; then it is dropped and logged,
 * and the next one is tried.  An event containerd answers with an error
 * status is dropped and logged (containerd will not take it later either).
 *
 * The topics and messages containerd expects (api/events/task.proto):
 *   /tasks/create        containerd.events.TaskCreate
 *   /tasks/start         containerd.events.TaskStart
 *   /tasks/exit          containerd.events.TaskExit
 *   /tasks/delete        containerd.events.TaskDelete
 *   /tasks/exec-added    containerd.events.TaskExecAdded
 *   /tasks/exec-started  containerd.events.TaskExecStarted
 *   /tasks/oom           containerd.events.TaskOOM
 */
#ifndef HCSB_SHIM_EVENTS_H
#define HCSB_SHIM_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

typedef struct hcsb__shim_events_s hcsb__shim_events_t;

/* The ttrpc metadata key carrying the namespace. */
#define HCSB__SHIM_NS_METADATA "containerd-namespace-ttrpc"

typedef struct hcsb__shim_events_opts_s {
  size_t max_queued;        /* events waiting, 0 = 1024 */
  uint64_t call_timeout_ms; /* one Forward, 0 = 10000 */
  unsigned max_attempts;    /* connection failures per event, 0 = 5 */
  uint64_t backoff_ms;      /* first back-off, doubled per try, 0 = 100 */
} hcsb__shim_events_opts_t;

/* A publisher to `address` (containerd's ttrpc socket path; a "unix://"
 * prefix is accepted) for namespace `ns`; both strings are copied.
 * `address` NULL or "" makes a publisher that accepts events and drops
 * them (logged at debug level once): a shim started by hand has no
 * containerd to tell.  Connects on the first publish, not here.
 * 0, -EINVAL (loop, ns or out NULL, ns empty), -ENAMETOOLONG (address does
 * not fit a sockaddr_un), -ENOMEM. */
int hcsb__shim_events_new(uv_loop_t *loop, const char *address, const char *ns,
                          const hcsb__shim_events_opts_t *opts,
                          hcsb__shim_events_t **out);

/* Queues `event` under `topic` with the current time (CLOCK_REALTIME) as
 * the envelope's timestamp.  The event is packed before this returns, so
 * the caller may free it at once.  Nothing runs inside this call.
 *   0         queued (or dropped by design: no address)
 *   -EINVAL   topic NULL or not starting with '/', event NULL
 *   -EMSGSIZE the request would exceed ttrpc's 4 MiB
 *   -ENOBUFS  max_queued events are waiting already; this one is dropped
 *   -ECANCELED the publisher is closing
 *   -ENOMEM */
int hcsb__shim_publish(hcsb__shim_events_t *ev, const char *topic,
                       const ProtobufCMessage *event);

typedef void (*hcsb__shim_events_close_cb)(hcsb__shim_events_t *ev, void *data);

/* Stops taking events, goes on forwarding the queued ones for at most
 * `flush_ms` (0 = drop them at once), then drops what is left (logged),
 * disconnects and runs `cb` (may be NULL) once, later; the publisher's
 * memory goes right after `cb` returns.  A second close does nothing. */
void hcsb__shim_events_close(hcsb__shim_events_t *ev, uint64_t flush_ms,
                             hcsb__shim_events_close_cb cb, void *data);

typedef struct hcsb__shim_events_stats_s {
  uint64_t published; /* accepted by hcsb__shim_publish */
  uint64_t forwarded; /* answered OK by containerd */
  uint64_t dropped;   /* refused (-ENOBUFS), answered with an error, out of
                         attempts, or left at close */
  uint64_t connects;  /* connections made */
  size_t queued;      /* waiting now, the one in flight included */
} hcsb__shim_events_stats_t;
void hcsb__shim_events_stats(const hcsb__shim_events_t *ev,
                             hcsb__shim_events_stats_t *out);

#endif /* HCSB_SHIM_EVENTS_H */
