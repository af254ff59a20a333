/* The Container/Process API layer: the objects and the seams between its
 * files.  Internal.
 *
 *   op.c         objects (core handles), operations (one bridge call or a
 *                chain of them, one completion path), waits
 *   conn.c       the guest connection: open, negotiate, lose, close;
 *                notifications -> container waiters
 *   conn-rpc.c   connection-level RPCs (modify, dump stacks, delete state)
 *                and the record of mapped virtual disks
 *   builders.c   ModificationRequest builders (protocol.md §8)
 *   jw.c         a small JSON writer (no json-c objects on the hot paths)
 *   config.c     ProcessConfig -> ProcessParameters; generated IDs
 *   container.c  containers: create sequence, wait, lifecycle RPCs, close
 *   props.c      GetProperties and its allocation-free decoder
 *   trace.c      span contexts (`ocsc`) and the ops' references to them
 *   process.c    processes: create, exit wait, signal, resize, close
 *   process-io.c a process's stdio streams (on top of stdio.h)
 *
 * Lifetime: every object (connection, container, process) is a core handle
 * (core/handle.h, whose comment states the free rule).  The owner's handle
 * is one reference, dropped after its close callback; every operation,
 * wait and child object holds another, so memory survives any callback
 * that closes the handle it was called for.  Everything the user is told
 * later than "now" goes through the connection's deferred queue, which
 * keeps completions FIFO and never inside the call that started them.
 */
#ifndef HCSB_API_INT_H
#define HCSB_API_INT_H

#include <uv.h>

#include <hcsbridge/conn.h>

#include "api/stdio.h"
#include "bridge/call.h"
#include "core/handle.h"
#include "core/list.h"
#include "proto/proto.h"

/* ------------------------------------------------------------------------ */
/* Objects: core handles (core/handle.h) whose requests are their ops */

typedef enum hcsb__kind_e {
  HCSB__KIND_CONN = 1,
  HCSB__KIND_CONTAINER,
  HCSB__KIND_PROCESS
} hcsb__kind_t;

typedef struct hcsb__obj_s {
  hcsb__handle_t base; /* reqs: pending ops (op->link); data: the user's */
  hcsb__kind_t kind;
  hcsb_conn_t *conn; /* its deferred queue is every object's */
} hcsb__obj_t;

/* A connection refers to itself; children hold a reference on it. */
void hcsb__obj_init(hcsb__obj_t *o, hcsb__kind_t kind, hcsb_conn_t *conn);
static inline void hcsb__obj_ref(hcsb__obj_t *o) {
  hcsb__handle_ref(&o->base);
}
static inline void hcsb__obj_unref(hcsb__obj_t *o) {
  hcsb__handle_unref(&o->base);
}
/* Marks `o` closing, cancels its operations and queues the close callback
 * once nothing is pending any more (see hcsb__obj_check_closed). */
static inline void hcsb__obj_close(hcsb__obj_t *o, hcsb_close_cb cb,
                                   void *data) {
  hcsb__handle_close(&o->base, cb, data);
}
/* Queues the close callback when `o` is closing and idle; call whenever
 * something that kept it busy ended. */
static inline void hcsb__obj_check_closed(hcsb__obj_t *o) {
  hcsb__handle_check_closed(&o->base);
}
/* Drops an object nobody has seen (no close callback). */
static inline void hcsb__obj_abort(hcsb__obj_t *o) {
  hcsb__handle_abort(&o->base);
}
/* Queues `fn(d)` on the connection's deferred queue. */
void hcsb__defer_on(hcsb_conn_t *conn, hcsb__defer_t *d, hcsb__defer_fn fn);

/* Kind-specific hooks (conn.c, container.c, process.c). */
int hcsb__conn_idle(const hcsb_conn_t *c);
int hcsb__container_idle(const hcsb_container_t *c);
int hcsb__process_idle(const hcsb_process_t *p);
void hcsb__conn_release(hcsb_conn_t *c);
void hcsb__container_free(hcsb_container_t *c);
void hcsb__process_free(hcsb_process_t *p);

/* ------------------------------------------------------------------------ */
/* Operations: what an asynchronous API call turns into */

typedef struct hcsb__op_s hcsb__op_t;

/* A bridge reply (or a local failure) for the op's current step.  Either
 * sends the next step or ends the op with hcsb__op_done(). */
typedef void (*hcsb__op_step_fn)(hcsb__op_t *op, int status,
                                 const hcsb_guest_error_t *gerr,
                                 const hcsb_response_t *resp);
/* Hands the final outcome to the user's callback (status already final). */
typedef void (*hcsb__op_deliver_fn)(hcsb__op_t *op, int status,
                                    const hcsb_guest_error_t *gerr,
                                    const hcsb_response_t *resp);

typedef union hcsb__user_cb_u {
  hcsb_done_cb done;
  hcsb_stacks_cb stacks;
  hcsb_properties_cb props;
  hcsb_signal_cb signal;
  hcsb_container_cb container;
  hcsb_process_cb process;
  hcsb_conn_open_cb open;
} hcsb__user_cb_t;

/* What kind of op it is: one static table per kind. */
typedef struct hcsb__op_class_s {
  hcsb__op_step_fn step; /* NULL: the reply ends the op */
  hcsb__op_deliver_fn deliver;
  void (*ctx_free)(void *ctx); /* NULL: the op has no ctx */
} hcsb__op_class_t;

/* An op embeds the bridge call of its current step, so a pending API call
 * is one allocation, and carries its ActivityId once (packed in the call):
 * 152 bytes, a 160-byte heap chunk.  A busy host has a lot of these.  The
 * call is the op's only request object: a completion the API layer defers
 * itself (cancelled, unusable connection) travels in call.dq with its
 * status in call.w.status, on the connection's queue, and every step
 * starts with the op's timeout.  The op's flags live in the call's spare
 * bits (call.ext, HCSB__OP_*). */
struct hcsb__op_s {
  hcsb_call_t call;  /* first: the bridge hands the call back as data */
  hcsb__link_t link; /* owner's pending list (its base.reqs) */
  hcsb__obj_t *owner;
  const hcsb__op_class_t *cls;
  hcsb__user_cb_t cb;
  void *data;
  union {
    void *ctx; /* per-kind state, freed by cls->ctx_free */
    struct {
      uint32_t msg; /* signal, resize: the request type (sent later) */
      uint32_t arg; /* signal number, or width << 16 | height */
    };
  };
  uint32_t timeout_ms; /* every step's (0: none) */
  uint32_t trace;      /* span context slot (trace.c), 0 = none */
};

/* call.ext bits */
#define HCSB__OP_CANCELLED 1u /* the owner closed: the user gets -ECANCELED */
#define HCSB__OP_PARKED 2u    /* waits for its process (resize, signal) */
static inline int hcsb__op_cancelled(const hcsb__op_t *op) {
  return (op->call.ext & HCSB__OP_CANCELLED) != 0;
}
static inline void hcsb__op_set_cancelled(hcsb__op_t *op) {
  op->call.ext |= HCSB__OP_CANCELLED;
}
static inline int hcsb__op_parked(const hcsb__op_t *op) {
  return (op->call.ext & HCSB__OP_PARKED) != 0;
}
static inline void hcsb__op_set_parked(hcsb__op_t *op, int parked) {
  op->call.ext = (uint8_t)(parked ? op->call.ext | HCSB__OP_PARKED
                                  : op->call.ext & ~HCSB__OP_PARKED);
}

/* Takes an op from the connection's pool with the call options applied.
 * `default_timeout` is used when opts->timeout_ms is 0.  Returns NULL with
 * *err set (-ENOMEM, -EINVAL for a malformed ActivityId). */
hcsb__op_t *hcsb__op_new(hcsb__obj_t *owner, const hcsb_call_opts_t *opts,
                         uint32_t default_timeout, const hcsb__op_class_t *cls,
                         int *err);
/* The op's ActivityId as text, for log lines. */
static inline const char *hcsb__op_activity(const hcsb__op_t *op,
                                            char buf[37]) {
  return hcsb__call_activity(&op->call, buf);
}
/* With the bridge, or its completion queued: hcsb__op_done must wait. */
static inline int hcsb__op_busy(const hcsb__op_t *op) {
  return hcsb__call_busy(&op->call) || hcsb__defer_queued(&op->call.dq);
}
/* Gives back an op that was never started (no callback will run). */
void hcsb__op_discard(hcsb__op_t *op);
/* Sends `req` as the op's next step (with the op's ActivityId and span
 * context; req->activity_id and req->ocsc are overwritten).  When the
 * connection is unusable or the op was cancelled, completes on the next
 * turn instead.  Returns 0, or the bridge's synchronous error (the op is
 * then still pending and the caller decides: discard or hcsb__op_done). */
int hcsb__op_send(hcsb__op_t *op, hcsb_request_t *req);
/* hcsb__op_send() with a template (proto.h) built from the request the op
 * would send, its span context included (see hcsb__op_tmpl_valid).  Inline
 * (below the connection's struct): on a usable connection it is one call
 * into the bridge. */
static inline int hcsb__op_send_tmpl(hcsb__op_t *op, const hcsb__tmpl_t *tmpl);
/* hcsb__op_send_tmpl's cases other than that one. */
int hcsb__op_send_tmpl_other(hcsb__op_t *op, const hcsb__tmpl_t *tmpl);
/* The bridge call's callback of every op. */
void hcsb__op_on_reply(void *data, int status, const hcsb_guest_error_t *gerr,
                       const hcsb_response_t *resp);
/* Ends the op on the next turn with `status` (straight to done). */
void hcsb__op_done_later(hcsb__op_t *op, int status);
/* The one completion path: detaches, delivers, recycles. */
void hcsb__op_done(hcsb__op_t *op, int status, const hcsb_guest_error_t *gerr,
                   const hcsb_response_t *resp);
/* Marks every op of `o` cancelled and cancels its bridge call. */
void hcsb__obj_cancel_ops(hcsb__obj_t *o);
/* Deliver functions shared by several ops. */
void hcsb__deliver_done(hcsb__op_t *op, int status,
                        const hcsb_guest_error_t *gerr,
                        const hcsb_response_t *resp);
/* The class of an op that only reports its status (hcsb_done_cb). */
extern const hcsb__op_class_t hcsb__done_op;

/* ------------------------------------------------------------------------ */
/* Waits (container and process), completed through the deferred queue */

typedef struct hcsb__wait_s {
  hcsb__link_t link;
  hcsb__defer_t defer;
  hcsb__obj_t *owner;
  uv_timer_t timer;
  int has_timer;
  int status;                 /* the outcome, fixed when queued */
  hcsb_container_exit_t exit; /* containers */
  char type_name[32];
  uint32_t exit_code; /* processes */
  union {
    hcsb_container_wait_cb container;
    hcsb_process_wait_cb process;
  } cb;
  void *data;
} hcsb__wait_t;

/* Registers a wait on `owner` (list `list`); `timeout_ms` 0 = none. */
int hcsb__wait_new(hcsb__obj_t *owner, hcsb__link_t *list, uint32_t timeout_ms,
                   hcsb__wait_t **out);
/* Fixes the outcome and queues the callback (no-op when already queued). */
void hcsb__wait_queue(hcsb__wait_t *w, int status);

/* ------------------------------------------------------------------------ */
/* The connection */

typedef enum hcsb__conn_state_e {
  HCSB__CONN_OPENING = 1,
  HCSB__CONN_READY,
  HCSB__CONN_FAILED, /* the open did not succeed */
  HCSB__CONN_LOST,
  HCSB__CONN_CLOSED
} hcsb__conn_state_t;

/* The notification waiter of one container ID (protocol.md §7.13): lives
 * in the connection's map, outlives handle closes (a late notification is
 * still recognised), and is reused when the same ID is opened again. */
typedef enum hcsb__cend_e {
  HCSB__CEND_NONE = 0,
  HCSB__CEND_EXITED,
  HCSB__CEND_LOST,
  HCSB__CEND_CONN_CLOSED
} hcsb__cend_t;

typedef struct hcsb__trace_s hcsb__trace_t;

typedef struct hcsb__cwaiter_s {
  hcsb__link_t link;
  hcsb_container_t *handle; /* the open handle, or NULL */
  hcsb__cend_t end;
  int status; /* LOST: the connection's loss status */
  hcsb_notification_type_t type;
  char type_name[32];
  uint32_t result;
  struct hcsb__res_s *res; /* what the container holds in the guest */
  char id[];               /* NUL-terminated */
} hcsb__cwaiter_t;

struct hcsb_conn_s {
  hcsb__obj_t obj;
  uv_loop_t *loop;
  hcsb__conn_state_t state;
  int lost_status;

  hcsb_bridge_t *bridge;
  int bridge_closing;
  int bridge_closed;
  hcsb__bringup_t *bringup;

  /* Options (defaults resolved) */
  uint32_t connect_timeout_ms;
  uint32_t call_timeout_ms;
  uint32_t shutdown_timeout_ms;
  uint32_t stdio_accept_timeout_ms;
  hcsb_log_cb log_cb;
  void *log_data;
  hcsb_log_level_t log_level;

  /* Opening */
  hcsb__op_t *open_op;
  uv_timer_t timer; /* connect deadline */
  uv_check_t check; /* hcsb_conn_open_bridge: watches the bridge's phase */
  int check_active;
  int inited; /* -1: no libuv handle; 0: the queue's; 1: + timer; 2: all */

  hcsb__dq_t dq; /* the deferred queue of the connection and its objects */

  hcsb_conn_lost_cb lost_cb;
  void *lost_data;
  hcsb_conn_notify_cb notify_cb;
  void *notify_data;

  int negotiated;
  hcsb_caps_t caps;
  uint32_t protocol;
  char os[16];
  uint32_t next_port;
  hcsb__link_t waiters;   /* hcsb__cwaiter_t by container ID */
  hcsb__link_t processes; /* live processes (their stdio closes with us) */
  char *stdio_buf; /* their stdout/stderr read buffer (stdio.h), lazily */
  /* ActivityIds for ops given none (op.c). */
  hcsb__guid_rng_t aid_rng;
  /* The last ActivityId text an op was given, parsed (op.c). */
  int aid_cached;
  char aid_text[37];
  uint8_t aid_bytes[16];

  /* Mapped virtual disks (conn-rpc.c) */
  hcsb_mapped_virtual_disk_t *disks;
  size_t ndisks;

  uint64_t res_tags; /* the last tag a create gave its resources */

  /* Span contexts (trace.c): slots 1..ntraces, the current one. */
  hcsb__trace_t *traces;
  uint32_t ntraces, trace_cap, trace_free, trace_cur;

  hcsb__pool_t ops; /* op structs */
};

/* trace.c: span context slots.  An op captures the current one when it
 * starts (a reference) and releases it when it is recycled. */
uint32_t hcsb__trace_capture_slot(hcsb_conn_t *c);
static inline uint32_t hcsb__trace_capture(hcsb_conn_t *c) {
  return c->trace_cur != 0 ? hcsb__trace_capture_slot(c) : 0;
}
/* Another reference on `slot` (0: none), which must be held already. */
void hcsb__trace_ref(hcsb_conn_t *c, uint32_t slot);
void hcsb__trace_release_slot(hcsb_conn_t *c, uint32_t slot);
/* Inline: once per op, and most ops have no span context. */
static inline void hcsb__trace_release(hcsb_conn_t *c, uint32_t slot) {
  if (slot != 0) hcsb__trace_release_slot(c, slot);
}
/* The `ocsc` object text of a slot, NULL for 0. */
const char *hcsb__trace_json(const hcsb_conn_t *c, uint32_t slot);
void hcsb__trace_free_all(hcsb_conn_t *c);
/* The `ocsc` object text of a span context (free()), or -EINVAL/-ENOMEM. */
int hcsb__span_context_encode(const hcsb_span_context_t *sc, char **out);

static inline int hcsb__conn_usable(const hcsb_conn_t *c) {
  return c->state == HCSB__CONN_OPENING || c->state == HCSB__CONN_READY;
}

static inline int hcsb__op_send_tmpl(hcsb__op_t *op, const hcsb__tmpl_t *tmpl) {
  hcsb_conn_t *conn = op->owner->conn;

  if (hcsb__op_cancelled(op) || !hcsb__conn_usable(conn))
    return hcsb__op_send_tmpl_other(op, tmpl);
  return hcsb__bridge_call_in(conn->bridge, &op->call, NULL, tmpl,
                              op->timeout_ms, hcsb__op_on_reply);
}
const hcsb_addr_t *hcsb__conn_addr(const hcsb_conn_t *c);
void hcsb__api_log(const hcsb_conn_t *c, hcsb_log_level_t level,
                   const char *activity_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
hcsb__cwaiter_t *hcsb__waiter_find(hcsb_conn_t *c, const char *id);
/* Finds or adds the waiter of `id` (fresh when `reset`). NULL: -ENOMEM. */
hcsb__cwaiter_t *hcsb__waiter_get(hcsb_conn_t *c, const char *id, int reset);
void hcsb__waiter_drop(hcsb__cwaiter_t *w);
/* The next `n` stdio ports of this connection. */
uint32_t hcsb__conn_take_ports(hcsb_conn_t *c, unsigned n);

/* conn-rpc.c: the record of mapped virtual disks. */
typedef struct hcsb__disk_change_s hcsb__disk_change_t;
/* Parses a ModificationRequest text; NULL with *err 0 when it is not a
 * MappedVirtualDisk Add/Remove, NULL with *err < 0 on failure. */
hcsb__disk_change_t *hcsb__disk_change_parse(const char *request_json,
                                             int *err);
hcsb__disk_change_t *hcsb__disk_change_from(const hcsb_mapped_virtual_disk_t *d,
                                            int add);
void hcsb__disk_change_free(void *change);
/* Applies a successful change to `disks`; returns 0 or -ENOMEM. */
int hcsb__disks_apply(hcsb_mapped_virtual_disk_t **disks, size_t *n,
                      const hcsb__disk_change_t *change);
void hcsb__disks_free(hcsb_mapped_virtual_disk_t *disks, size_t n);

/* ------------------------------------------------------------------------ */
/* resources.c: what containers hold in the guest, released for teardown */

/* One resource a container needs (newest first in its waiter's list). */
typedef struct hcsb__res_s {
  struct hcsb__res_s *next;
  uint64_t tag;      /* the create that added it; 0: the caller did */
  int add;           /* parsed from an Add (else a Remove) */
  char *cid;         /* CombinedLayers: its ContainerID, else NULL */
  char *remove_json; /* Add: the ModificationRequest that undoes it */
  char key[];        /* "<ResourceType> <what names it in the guest>" */
} hcsb__res_t;

/* Parses a ModificationRequest.  0 and *out for an Add/Remove of a
 * resource a container holds (disk, share, VPMem, overlay, adapter); 1 for
 * anything else; -EINVAL when such a request lacks what names it;
 * -ENOMEM. */
int hcsb__res_parse(const char *request_json, hcsb__res_t **out);
void hcsb__res_free(hcsb__res_t *list);
/* Records `x` as the newest resource of `id` (takes it, also on -ENOMEM). */
int hcsb__res_push(hcsb_conn_t *conn, const char *id, hcsb__res_t *x);
/* The resource named `key` was removed: no container holds it any more. */
void hcsb__res_forget(hcsb_conn_t *conn, const char *key);
/* Detaches the records of `id` with `tag` (0: all), newest first. */
hcsb__res_t *hcsb__res_take(hcsb_conn_t *conn, const char *id, uint64_t tag);
/* Puts records back under those added since (they are older). */
void hcsb__res_give_back(hcsb_conn_t *conn, const char *id, hcsb__res_t *list);
size_t hcsb__res_count(const hcsb__cwaiter_t *w);
/* A guest error kept past its callback: a copy in one allocation, or,
 * when that cannot be had, the HRESULT alone. */
typedef struct hcsb__gerr_saved_s {
  hcsb_guest_error_t *copy;
  hcsb_guest_error_t min;
  int set;
} hcsb__gerr_saved_t;
void hcsb__gerr_save(hcsb__gerr_saved_t *sv, const hcsb_guest_error_t *e);
/* NULL when nothing was saved. */
const hcsb_guest_error_t *hcsb__gerr_saved(const hcsb__gerr_saved_t *sv);
void hcsb__gerr_clear(hcsb__gerr_saved_t *sv);

/* After `op` sent a ModifySettings for a resource a container may hold:
 * should its caller give up on it and the guest succeed later, the
 * resource is recorded then under `owner` (NULL: the request's own
 * ContainerID) with `tag`, so it is released with that container. */
void hcsb__modify_on_late_success(hcsb__op_t *op, const char *owner,
                                  uint64_t tag, const char *request_json);

/* Removes taken records one after the other on an op's call. */
typedef struct hcsb__release_s {
  hcsb_conn_t *conn;
  hcsb__res_t *todo; /* newest first */
  hcsb__res_t *cur;  /* its Remove is with the guest */
  hcsb__res_t *kept; /* whose Remove failed */
  int status;        /* the first failure */
  hcsb__gerr_saved_t gerr;
} hcsb__release_t;

/* Sends the next Remove: 1 when sent (or its failure queued), 0 when none
 * is left, or the bridge's synchronous error. */
int hcsb__release_next(hcsb__op_t *op, hcsb__release_t *rl);
/* The reply to the Remove in flight: forgotten on success (the disk
 * records follow), kept with the first failure noted otherwise. */
void hcsb__release_reply(hcsb__op_t *op, const char *id, hcsb__release_t *rl,
                         int status, const hcsb_guest_error_t *gerr);
/* Gives whatever was not removed back to `id`'s records; frees the rest. */
void hcsb__release_end(hcsb_conn_t *conn, const char *id, hcsb__release_t *rl);

/* ------------------------------------------------------------------------ */
/* Containers and processes */

struct hcsb_container_s {
  hcsb__obj_t obj;
  hcsb__cwaiter_t *waiter;
  hcsb__link_t waits;
  hcsb__link_t processes; /* open process handles, for open_process */
  int spec_terminal;      /* the create spec's process.terminal */
  hcsb_mapped_virtual_disk_t *disks; /* mapped for this container */
  size_t ndisks;
  /* The request of the last properties call (props.c), for its span
   * context slot (a reference held) and query kind. */
  hcsb__tmpl_t props_tmpl;
  uint32_t props_tmpl_trace;
  unsigned props_tmpl_types;
  /* Reused by every properties answer (props.c). */
  hcsb_process_list_item_t *items;
  size_t items_cap;
  hcsb__buf_t strings;
  struct hcsb__mstore_s *mstore; /* typed LCOWMetrics (metrics.c), lazily */
  char id[];                     /* NUL-terminated */
};

typedef enum hcsb__pstate_e {
  HCSB__PROC_CREATING = 1,
  HCSB__PROC_RUNNING,
  HCSB__PROC_EXITED,  /* exit code known */
  HCSB__PROC_UNKNOWN, /* exit code can never be known */
  HCSB__PROC_FAILED   /* the create failed */
} hcsb__pstate_t;

struct hcsb_process_s {
  hcsb__obj_t obj;
  hcsb_container_t *container; /* NULL: a UVM process; a reference */
  hcsb__link_t clink;          /* container's processes, or conn's */
  hcsb__link_t conn_link;      /* conn->processes */
  const char *cid;             /* container ID for requests, NULL = null */
  uint32_t pid;
  hcsb__pstate_t state;
  int end_status; /* EXITED: 0; otherwise why the exit is unknown */
  uint32_t exit_code;
  int uvm; /* runs in the UVM: the Linux GCS cannot signal or resize it */
  int tty;
  uint16_t console_width, console_height; /* applied once it exists */
  hcsb_call_t *wait_call;
  hcsb__op_t *create_op;
  hcsb__link_t waits;
  /* stdio */
  hcsb__stdio_t *stdio;
  int stdio_status; /* 1 while the accepts are pending */
  int exec_done;
  int exec_status;
  uint32_t ports[3];
  hcsb_process_read_cb read_cb;
  void *read_data;
  size_t nwrites; /* hcsb_process_write() calls not yet reported */
};

/* process.c: creates a process struct for `container` (NULL: UVM). */
int hcsb__process_create(hcsb_conn_t *conn, hcsb_container_t *container,
                         const hcsb_call_opts_t *opts,
                         const hcsb_process_config_t *config,
                         hcsb_process_cb cb, void *data, hcsb_process_t **out);
void hcsb__process_conn_closed(hcsb_process_t *p);
void hcsb__container_conn_ended(hcsb_container_t *c);

/* config.c */
/* Builds ProcessParameters for a process in the UVM (`container_id` NULL)
 * or a container; *tty tells whether it has a terminal (-1 unknown). */
int hcsb__process_params(const hcsb_process_config_t *config, int in_container,
                         char **json_out, int *tty);
/* Whether those ProcessParameters carry the config's console size
 * (ConsoleSize, or the OCI process's consoleSize). */
int hcsb__process_size_sent(const hcsb_process_config_t *config,
                            int in_container);
/* 64 lower-case hex characters from libuuid randomness. */
void hcsb__container_id_generate(char out[65]);
/* Splits a command line as the guest does for UVM processes: words on
 * blanks, single and double quotes and backslashes honoured, no expansion. */
int hcsb__split_command_line(const char *line, char ***argv_out, size_t *argc);
void hcsb__free_argv(char **argv, size_t argc);

/* props.c: decodes a Properties text into `props` using `c`'s buffers.
 * text[len] must be a NUL (every string the bridge decodes is), which the
 * scanner reads instead of checking the end before each token.  Returns 0
 * or -EPROTO / -ENOMEM. */
int hcsb__props_decode(hcsb_container_t *c, const char *text, size_t len,
                       hcsb_properties_t *props);
/* Tests: nonzero makes hcsb__props_decode() skip its shortcuts for the
 * shapes a GCS sends, so both ways can be compared. */
extern int hcsb__props_fast_off;
/* props.c: lets go of the container's request template. */
void hcsb__props_free(hcsb_container_t *c);
/* metrics.c: the arrays behind a container's typed metrics. */
typedef struct hcsb__mstore_s hcsb__mstore_t;
void hcsb__mstore_free(hcsb__mstore_t *ms);

/* ------------------------------------------------------------------------ */
/* JSON writing (jw.c) */

typedef struct hcsb__jw_s {
  hcsb__buf_t buf;
  int err;
  unsigned depth;
  uint32_t nonempty; /* bit per depth: something was written there */
  int after_key;
} hcsb__jw_t;

void hcsb__jw_init(hcsb__jw_t *w);
void hcsb__jw_obj(hcsb__jw_t *w);
void hcsb__jw_obj_end(hcsb__jw_t *w);
void hcsb__jw_arr(hcsb__jw_t *w);
void hcsb__jw_arr_end(hcsb__jw_t *w);
void hcsb__jw_key(hcsb__jw_t *w, const char *key);
void hcsb__jw_keyn(hcsb__jw_t *w, const char *key, size_t n);
void hcsb__jw_str(hcsb__jw_t *w, const char *s);
void hcsb__jw_strn(hcsb__jw_t *w, const char *s, size_t n);
void hcsb__jw_u64(hcsb__jw_t *w, uint64_t v);
void hcsb__jw_bool(hcsb__jw_t *w, int v);
/* A JSON text the caller vouches for (validated before). */
void hcsb__jw_raw(hcsb__jw_t *w, const char *text, size_t len);
/* Key + value, skipped for NULL/"" strings, 0 numbers, false booleans
 * (Go's omitempty). */
void hcsb__jw_kstr(hcsb__jw_t *w, const char *key, const char *s);
void hcsb__jw_ku64(hcsb__jw_t *w, const char *key, uint64_t v);
void hcsb__jw_kbool(hcsb__jw_t *w, const char *key, int v);
/* Returns 0 and the NUL-terminated text (free()) or the sticky error. */
int hcsb__jw_finish(hcsb__jw_t *w, char **out);
void hcsb__jw_free(hcsb__jw_t *w);

#endif /* HCSB_API_INT_H */
