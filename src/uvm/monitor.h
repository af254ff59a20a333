/* QMP over a connected socket (QEMU's side is `-chardev socket,fd=N`),
 * on libuv.  Internal.
 *
 * A monitor reads the greeting, negotiates capabilities, then carries
 * commands, each with an id of its own, a timeout and one completion;
 * events go to the owner as they come; the socket ending is an event too
 * (QEMU exits or crashes): every command still out then fails with it.
 *
 * Completions: a command's callback runs exactly once: QEMU's answer
 * (status 0 with the "return" value; -EREMOTEIO with QEMU's error class
 * and description), -ETIMEDOUT (its own timeout; an answer that comes
 * later is dropped), -ECONNRESET (the monitor's socket ended), -EPROTO
 * (QEMU sent something unusable: the monitor is closed), -ECANCELED
 * (hcsb__qmp_mon_close).  Never inside hcsb__qmp_mon_command().
 * Callbacks may close the monitor and start commands.
 *
 * The monitor's libuv handles are closed through the owner's core handle
 * (core/handle.h), whose memory holds the monitor.
 */
#ifndef HCSB_UVM_MONITOR_H
#define HCSB_UVM_MONITOR_H

#include <uv.h>

#include "core/handle.h"
#include "core/list.h"
#include "uvm/qmp.h"

typedef struct hcsb__qmp_mon_s hcsb__qmp_mon_t;
typedef struct hcsb__qmp_cmd_s hcsb__qmp_cmd_t;

/* `msg` is QEMU's answer (RETURN or ERROR) or NULL; valid during the call. */
typedef void (*hcsb__qmp_cmd_cb)(void *data, int status,
                                 const hcsb__qmp_msg_t *msg);

typedef struct hcsb__qmp_hooks_s {
  /* Capabilities negotiated (0), or the monitor failed first. */
  void (*ready)(hcsb__qmp_mon_t *m, int status);
  void (*event)(hcsb__qmp_mon_t *m, const hcsb__qmp_msg_t *ev);
  /* The socket ended (-ECONNRESET for EOF), the stream was unusable
   * (-EPROTO, -EMSGSIZE), or a read failed.  Not for hcsb__qmp_mon_close. */
  void (*closed)(hcsb__qmp_mon_t *m, int status);
  /* Log lines (may be NULL). */
  void (*log)(hcsb__qmp_mon_t *m, int level, const char *msg);
} hcsb__qmp_hooks_t;

typedef enum hcsb__qmp_state_e {
  HCSB__QMP_WAIT_GREETING = 0,
  HCSB__QMP_NEGOTIATING,
  HCSB__QMP_READY,
  HCSB__QMP_CLOSED
} hcsb__qmp_state_t;

struct hcsb__qmp_mon_s {
  uv_pipe_t pipe;
  uv_timer_t timer; /* the earliest deadline of the commands out */
  hcsb__handle_t *owner;
  const hcsb__qmp_hooks_t *hooks;
  void *data; /* the owner's */
  hcsb__qmp_dec_t dec;
  hcsb__link_t cmds; /* out, oldest first */
  size_t ncmds;
  uint64_t next_id;
  uint32_t timeout_ms;
  hcsb__qmp_state_t state;
  int inited; /* the libuv handles exist (closed by hcsb__qmp_mon_close) */
  uint64_t late_answers; /* answers to commands that timed out */
  char rbuf[16384];
};

/* Adopts the connected socket `fd` (the monitor owns it from now on, also
 * on failure) and starts reading.  `timeout_ms`: each command's bound and
 * the greeting's.  0, or libuv's error (the fd is closed then). */
int hcsb__qmp_mon_open(hcsb__qmp_mon_t *m, uv_loop_t *loop,
                       hcsb__handle_t *owner, int fd, uint32_t timeout_ms,
                       const hcsb__qmp_hooks_t *hooks, void *data);

/* Sends `command` with `args` (not consumed; may be NULL).  Returns 0, or
 * -EAGAIN before the monitor is ready, -ENOTCONN once it is closed,
 * -ENOBUFS (64 commands out), -ENOMEM; the callback runs only after 0. */
int hcsb__qmp_mon_command(hcsb__qmp_mon_t *m, const char *command,
                          json_object *args, uint32_t timeout_ms,
                          hcsb__qmp_cmd_cb cb, void *data);

/* Fails every command out with -ECANCELED (their callbacks run inside this
 * call: internal users expect it) and closes the libuv handles through the
 * owner.  Idempotent. */
void hcsb__qmp_mon_close(hcsb__qmp_mon_t *m);

#endif /* HCSB_UVM_MONITOR_H */
