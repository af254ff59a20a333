/* containerd-shim-hcsb-v1 — the binary's three actions.
 *
 *   start   (start.c)  containerd's `start`: make the socket, start the
 *                      long-lived shim (`serve`) in a session of its own,
 *                      write the bundle's `address`, print it, exit.
 *   delete  (delete.c) containerd's `delete`: undo what a dead shim left
 *                      (state.h), print a DeleteResponse.
 *   serve   (daemon.c) the long-lived shim: the ttrpc server, the events,
 *                      the Task service, until it calls hcsb__shim_exit.
 *
 * Each returns the process's exit status.  `start` and `delete` write
 * their errors to stderr (containerd shows them); `serve` writes to the
 * bundle's log FIFO.
 */
#ifndef HCSB_SHIM_CMD_H
#define HCSB_SHIM_CMD_H

#include "shim/args.h"

/* The fds `start` hands to `serve`: the listening socket and the pipe on
 * which serve reports "ok" (or "error: ...") once it is ready. */
#define HCSB__SHIM_LISTEN_FD 3
#define HCSB__SHIM_READY_FD 4

/* The name the socket's address has in the bundle. */
#define HCSB__SHIM_ADDRESS_FILE "address"

/* The annotations `start` reads from the bundle's config.json. */
#define HCSB__CRI_CONTAINER_TYPE "io.kubernetes.cri.container-type"
#define HCSB__CRI_SANDBOX_ID "io.kubernetes.cri.sandbox-id"

int hcsb__shim_cmd_start(const hcsb__shim_args_t *a, int argc, char **argv);
int hcsb__shim_cmd_delete(const hcsb__shim_args_t *a);
int hcsb__shim_cmd_serve(const hcsb__shim_args_t *a);

/* The bundle directory: -bundle, else the working directory, made
 * absolute.  0 or -errno. */
int hcsb__shim_bundle(const hcsb__shim_args_t *a, char *out, size_t outlen);

/* Sends the shim's log lines to the bundle's `log` (the FIFO containerd
 * reads, or a regular file), else nowhere. */
void hcsb__shim_open_log_fifo(const char *bundle, const char *id,
                              const char *ns);

#endif /* HCSB_SHIM_CMD_H */
