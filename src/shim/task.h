/* A task (one container in the guest) and its processes: the init and the
 * execs, each with its state machine (proc.h), its stdio (pio.h) and the
 * library's process handle.  No protobuf here: service.c turns requests
 * into these calls and their outcomes into replies and events.
 *
 * Create, in order: the bundle's config.json; the rootfs plan (rootfs.h)
 * and, for a VM, each layer's image; the sandbox being ready; the spec
 * adapted (spec.h); the container created in the guest
 * (hcsb__sandbox_create_container); the init's FIFOs opened.  Start of the
 * init or an exec creates the guest process with the pipes its FIFOs
 * need, then relays.  A process's exit is recorded (EXITED), announced
 * (hooks->exited) and handed to its waits exactly once, after its output
 * has been drained (pio.h) and never before its start was announced.
 *
 * Every asynchronous call returns 0 and runs its callback once, later,
 * from the loop (status 0, a negative errno, or HCSB_EGUEST with `gerr`;
 * `msg` says what failed; both valid during the callback); or returns a
 * negative errno with *msg set (static) and never runs the callback.  The
 * refusals of the state machine (-ENOENT, -EBUSY, -EALREADY) come back
 * that way, with its message. */
#ifndef HCSB_SHIM_TASK_H
#define HCSB_SHIM_TASK_H

#include <stdint.h>
#include <time.h>

#include <hcsbridge/conn.h>

#include "shim/proc.h"
#include "shim/rootfs.h"
#include "shim/sandbox.h"
#include "shim/spec.h"
#include "shim/state.h"

typedef struct hcsb__task_s hcsb__task_t;
typedef struct hcsb__tproc_s hcsb__tproc_t;

/* What the service hears about on its own (not as a reply). */
typedef struct hcsb__task_hooks_s {
  /* `p` reached STOPPED: publish /tasks/exit.  Its waits are answered
   * right after this returns. */
  void (*exited)(void *data, hcsb__task_t *t, hcsb__tproc_t *p);
  /* The container's memory cgroup killed something: /tasks/oom. */
  void (*oom)(void *data, hcsb__task_t *t);
  /* A pod member is about to be created: the guest PID of its sandbox
   * container's init (whose namespaces it joins), or a refusal (negative
   * errno and a message) when the sandbox is not served here or not
   * running. */
  int (*sandbox_pid)(void *data, const char *sandbox_id, uint32_t *pid,
                     const char **msg);
  void *data;
} hcsb__task_hooks_t;

/* What every task of a shim shares. */
typedef struct hcsb__task_env_s {
  uv_loop_t *loop;
  hcsb__sandbox_t *sandbox;
  hcsb__shim_state_t *state; /* the shim's bundle record (may be NULL) */
  const char *layer_dir;     /* the layer image cache */
  hcsb__task_hooks_t hooks;
} hcsb__task_env_t;

typedef struct hcsb__task_create_s {
  const char *id;
  const char *bundle;
  const hcsb__mount_t *rootfs;
  size_t nrootfs;
  int terminal;
  const char *stdin_path;
  const char *stdout_path;
  const char *stderr_path;
} hcsb__task_create_t;

typedef void (*hcsb__task_cb)(void *data, int status,
                              const hcsb_guest_error_t *gerr, const char *msg);

/* Creates the task; *out is set when 0 is returned (the task exists from
 * then on, in CREATED, and is freed by hcsb__task_free).  `cb` says
 * whether the container now exists in the guest; after a failure the task
 * must still be freed (nothing is left in the guest). */
int hcsb__task_create(const hcsb__task_env_t *env,
                      const hcsb__task_create_t *req, hcsb__task_cb cb,
                      void *data, hcsb__task_t **out, const char **msg);

const char *hcsb__task_id(const hcsb__task_t *t);
const char *hcsb__task_bundle(const hcsb__task_t *t);
hcsb__tproc_t *hcsb__task_init(hcsb__task_t *t);
/* The process named `exec_id` ("" or NULL: the init), or NULL. */
hcsb__tproc_t *hcsb__task_proc(hcsb__task_t *t, const char *exec_id);
/* How many execs are recorded and not deleted. */
size_t hcsb__task_nexecs(const hcsb__task_t *t);
/* The task's pod role as its spec says (spec.h), and for a member the
 * sandbox's ID ("" otherwise). */
hcsb__pod_role_t hcsb__task_pod_role(const hcsb__task_t *t);
const char *hcsb__task_sandbox_id(const hcsb__task_t *t);
/* 1 while a create, start or delete of this task is in flight. */
int hcsb__task_busy(const hcsb__task_t *t);

/* Adds an exec (CREATED): `spec` is the OCI Process JSON containerd sent
 * (len bytes).  -EEXIST (the exec ID is taken), -EBUSY (the init is not
 * running), -EINVAL (bad JSON, bad stdio), -ENOTSUP (binary://). */
int hcsb__task_exec(hcsb__task_t *t, const char *exec_id, const char *spec,
                    size_t len, int terminal, const char *stdin_path,
                    const char *stdout_path, const char *stderr_path,
                    const char **msg);

/* Process accessors. */
const char *hcsb__tproc_exec_id(const hcsb__tproc_t *p); /* "" for init */
const hcsb__proc_t *hcsb__tproc_state(const hcsb__tproc_t *p);
int hcsb__tproc_terminal(const hcsb__tproc_t *p);
/* The FIFO paths as containerd gave them. */
void hcsb__tproc_stdio(const hcsb__tproc_t *p, const char **in,
                       const char **out, const char **err);

/* Start: the guest process is created; `cb` runs when it runs (status 0:
 * the pid is in hcsb__tproc_state()) or could not be started. */
int hcsb__tproc_start(hcsb__tproc_t *p, hcsb__task_cb cb, void *data,
                      const char **msg);

/* Kill: signal 1..64.  `all` on the init also signals every running exec.
 * A process that has not started stops at once (status 128 + signal).
 * A process the guest says is gone already: status 0 (its exit is on
 * its way). */
int hcsb__tproc_kill(hcsb__tproc_t *p, uint32_t signal, int all,
                     hcsb__task_cb cb, void *data, const char **msg);

/* ResizePty: remembered before the start, sent once running. */
int hcsb__tproc_resize(hcsb__tproc_t *p, uint32_t width, uint32_t height,
                       hcsb__task_cb cb, void *data, const char **msg);

/* CloseIO(stdin): 0 (done at once), or the state machine's refusal. */
int hcsb__tproc_close_stdin(hcsb__tproc_t *p, const char **msg);

/* Wait: `cb(data, p)` once the process is STOPPED (on the next turn when
 * it is already), or `cb(data, NULL)` when the task is freed first (the
 * shim is going; from inside hcsb__task_free).  A wait may be cancelled
 * (its client left): the callback then never runs.  0, -ENOMEM, -ENOENT
 * (deleted). */
typedef struct hcsb__twait_s hcsb__twait_t;
typedef void (*hcsb__twait_cb)(void *data, hcsb__tproc_t *p);
int hcsb__tproc_wait(hcsb__tproc_t *p, hcsb__twait_cb cb, void *data,
                     hcsb__twait_t **out);
void hcsb__twait_cancel(hcsb__twait_t *w);

/* Delete.  An exec: it goes (DELETED, freed after `cb`; do not use `p`
 * after the callback).  The init: the container is deleted in the guest
 * (overlay, layer devices, state) and the per-container layer images on
 * the host; the task is then DELETED (free it with hcsb__task_free after
 * `cb`).  The exit status and time stay readable in `p` during `cb`. */
int hcsb__tproc_delete(hcsb__tproc_t *p, hcsb__task_cb cb, void *data,
                       const char **msg);

/* Pids / Stats of the container: the guest's process list or its cgroup
 * metrics (properties valid during the callback). */
typedef void (*hcsb__task_props_cb)(void *data, int status,
                                    const hcsb_guest_error_t *gerr,
                                    const char *msg,
                                    const hcsb_properties_t *props);
int hcsb__task_properties(hcsb__task_t *t, unsigned types,
                          hcsb__task_props_cb cb, void *data, const char **msg);

/* Update: new limits for the container's cgroups (`resources`, len bytes:
 * an OCI LinuxResources JSON object), sent as a ContainerConstraints
 * Update.  -EINVAL for anything but a JSON object. */
int hcsb__task_update(hcsb__task_t *t, const char *resources, size_t len,
                      hcsb__task_cb cb, void *data, const char **msg);

/* The exec that has guest pid `pid`, or NULL (for Pids' details). */
hcsb__tproc_t *hcsb__task_proc_by_pid(hcsb__task_t *t, uint32_t pid);

/* Frees the task: closes every handle (processes, the container), the
 * FIFOs, cancels waits (their callbacks do not run) and any build in
 * flight.  Nothing is sent to the guest. */
void hcsb__task_free(hcsb__task_t *t);

#endif
