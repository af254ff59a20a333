/* The guest a shim's tasks run in: one per shim (a task of its own, or a
 * pod), started by the shim's first Create.
 *
 *   config `guest = vm` (the default)   a utility VM (hcsbridge/uvm.h):
 *       QEMU with the configured image; layers are ext4 images attached
 *       as VPMem devices; QEMU's and hcsb-vsockd's PIDs go into the
 *       bundle's cleanup record (state.h) so that `delete` can kill them
 *       if this shim is SIGKILLed
 *   any other value: an hcsbridge address, e.g. `spawn:hcsb-guest` (the
 *       emulator: containers are processes on this host, layers are
 *       recorded, not mounted; for tests and development)
 *
 * Same rules as conn.h: callbacks run from the loop, never inside the call
 * that started them, each exactly once. */
#ifndef HCSB_SHIM_SANDBOX_H
#define HCSB_SHIM_SANDBOX_H

#include <uv.h>

#include <hcsbridge/conn.h>

#include "shim/conf.h"
#include "shim/state.h"

typedef struct hcsb__sandbox_s hcsb__sandbox_t;

/* Boot/connection milestones, ms since hcsb__sandbox_start (for the log
 * and the timing note): 0 until reached. */
typedef struct hcsb__sandbox_times_s {
  uint64_t started_ms; /* hcsb__sandbox_start, monotonic clock */
  uint64_t ready_ms;   /* the guest answered (negotiated) */
} hcsb__sandbox_times_t;

/* Starts the guest.  `state` (may be NULL) gets the VM's host processes;
 * `console_log` (may be NULL) keeps the VM's serial console.
 * 0, or -EINVAL (bad config), -ENOENT (no kernel/initrd: the message in
 * the log says how to make them), -ENOMEM, or what hcsb_uvm_start /
 * hcsb_conn_open return; *out is set only on 0. */
int hcsb__sandbox_start(uv_loop_t *loop, const hcsb__shim_config_t *cfg,
                        hcsb__shim_state_t *state, const char *console_log,
                        hcsb__sandbox_t **out);

/* `cb` once the guest is ready (status 0), or failed or was lost before
 * (status < 0, `msg` says why; valid during the call).  Runs on a later
 * turn also when that is known already.  0, -ECANCELED (closing),
 * -ENOMEM. */
typedef void (*hcsb__sandbox_ready_cb)(void *data, hcsb__sandbox_t *sb,
                                       int status, const char *msg);
int hcsb__sandbox_when_ready(hcsb__sandbox_t *sb, hcsb__sandbox_ready_cb cb,
                             void *data);

/* The connection (NULL until ready, and after it was lost or closed). */
hcsb_conn_t *hcsb__sandbox_conn(const hcsb__sandbox_t *sb);
/* 1 for a utility VM (layers must be images), 0 for an address. */
int hcsb__sandbox_is_vm(const hcsb__sandbox_t *sb);
/* Why the guest is gone ("" while it runs). */
const char *hcsb__sandbox_error(const hcsb__sandbox_t *sb);
void hcsb__sandbox_times(const hcsb__sandbox_t *sb, hcsb__sandbox_times_t *t);

/* The guest went away on its own (QEMU exited, the bridge broke): once,
 * with a reason; not after hcsb__sandbox_close.  Processes see their waits
 * fail on their own (the connection's rules). */
typedef void (*hcsb__sandbox_lost_cb)(void *data, hcsb__sandbox_t *sb,
                                      const char *why);
void hcsb__sandbox_set_lost_cb(hcsb__sandbox_t *sb, hcsb__sandbox_lost_cb cb,
                               void *data);

/* Creates a container from `layers` (base first): host paths of ext4
 * images for a VM (VPMem + CombinedLayers), host directories for an
 * address (CombinedLayers as they are; the emulator records them).  On
 * the wire CombinedLayers lists them top-most first: the GCS joins the
 * paths into overlayfs' lowerdir as they come (hcsb_uvm_create_container
 * turns them round for a VM; this does for an address).
 * config->layers must be empty. As hcsb_conn_create_container otherwise
 * (-ENOTCONN before ready). */
int hcsb__sandbox_create_container(hcsb__sandbox_t *sb,
                                   const hcsb_container_config_t *config,
                                   const char *const *layers, size_t nlayers,
                                   hcsb_container_cb cb, void *data,
                                   hcsb_container_t **out);

/* Deletes what the create put in the guest (overlay, layer devices'
 * references, the container's state).  As hcsb_conn_delete_container. */
int hcsb__sandbox_delete_container(hcsb__sandbox_t *sb, const char *id,
                                   hcsb_done_cb cb, void *data);

/* Stops the guest (a VM: graceful shutdown, then QMP quit, then SIGKILL)
 * and frees the handle; `cb` (may be NULL) runs once, later.  Pending
 * ready callbacks run first with -ECANCELED.  A second call does
 * nothing. */
void hcsb__sandbox_close(hcsb__sandbox_t *sb, hcsb_close_cb cb, void *data);

#endif
