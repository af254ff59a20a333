/* containerd-shim-hcsb-v1 — the long-lived shim process, as the Task
 * service sees it.
 *
 * main.c (the `serve` half of the binary) sets up, in this order: the log
 * FIFO, the configuration, the loop, the ttrpc server on the socket `start`
 * made, the events publisher, the bundle's state record; then it calls
 * hcsb__shim_service_start() once, before the loop runs, and runs the loop
 * until the service calls hcsb__shim_exit().
 *
 * Who implements what:
 *   hcsb__shim_service_start()   the Task service (service.c)
 *   hcsb__shim_exit()            main.c
 */
#ifndef HCSB_SHIM_SHIM_H
#define HCSB_SHIM_SHIM_H

#include <uv.h>

#include "shim/conf.h"
#include "shim/events.h"
#include "shim/server.h"
#include "shim/state.h"

typedef struct hcsb__shim_s hcsb__shim_t;

struct hcsb__shim_s {
  /* Set up by main.c before hcsb__shim_service_start(); never NULL, valid
   * until the process exits.  Strings are as containerd passed them. */
  uv_loop_t *loop;
  hcsb__shim_server_t *server;
  hcsb__shim_events_t *events;
  const hcsb__shim_config_t *config;
  hcsb__shim_state_t *state;  /* the bundle's cleanup record */
  const char *ns;             /* -namespace */
  const char *id;             /* -id: the task this shim was started for */
  const char *bundle;         /* absolute path of the bundle (the cwd) */
  const char *address;        /* -address: containerd's grpc socket */
  const char *ttrpc_address;  /* $TTRPC_ADDRESS ("" when unset) */
  const char *publish_binary; /* -publish-binary ("" when not given) */
  const char *socket;         /* this shim's own address, "unix://..." */
  int debug;                  /* -debug */

  /* Set by the service in hcsb__shim_service_start() (both optional). */
  /* SIGTERM or SIGINT arrived: tear down, then call hcsb__shim_exit().
   * NULL: main exits at once (status 0). */
  void (*on_signal)(hcsb__shim_t *shim, int signum);
  /* Runs once after the loop stopped and before the process exits: free
   * what the service still holds (leak checkers look at exit). */
  void (*on_exit)(hcsb__shim_t *shim);
  void *service_data;
};

/* Registers the Task service's methods on shim->server and sets the hooks
 * above.  Runs before the loop; nothing may run inside it that assumes the
 * loop turns.  0 or a negative errno (the daemon then logs it, tells
 * `start`, and exits 1). */
int hcsb__shim_service_start(hcsb__shim_t *shim);

/* Ends the shim: stops accepting connections, writes the replies already
 * queued, forwards the events already published (for at most 5 s), then
 * stops the loop; the process exits with `status` after on_exit.  Returns
 * at once; calling it again does nothing.  Calls not ended yet should be
 * ended (e.g. hcsb__shim_call_drop) before or soon after. */
void hcsb__shim_exit(hcsb__shim_t *shim, int status);

#endif /* HCSB_SHIM_SHIM_H */
