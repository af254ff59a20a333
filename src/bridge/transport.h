/* Transports: how the bridge and the per-process stdio relays get their byte
 * streams.  Internal (hcsb__ prefix).
 *
 * Every stream handed out here is a heap-allocated, connected uv_pipe_t
 * (vsock and hybrid-vsock sockets are adopted with uv_pipe_open).  Whoever
 * receives one owns it and releases it with hcsb__stream_close().
 *
 * Safety: AF_VSOCK sockets are created, bound and listened on; connect() is
 * only ever called for the vsock+connect:// transport a user asked for.
 */
#ifndef HCSB_TRANSPORT_H
#define HCSB_TRANSPORT_H

#include <uv.h>

#include <hcsbridge/bridge.h>

/* uv_close() + free() in the close callback.  NULL is ignored. */
void hcsb__stream_close(uv_stream_t *s);

/* ------------------------------------------------------------------------ */
/* Listeners (the host listens, the guest dials) */

typedef struct hcsb__listener_s hcsb__listener_t;

/* status 0: `stream` is a new connection, owned by the callee.
 * status < 0: -ETIMEDOUT (no dial within the timeout; the listener keeps
 * listening unless closed), or another accept error (reported once; a
 * Unix-socket listener out of descriptors refuses dials meanwhile and
 * accepts again once there are some).  The callback may call
 * hcsb__listener_close(). */
typedef void (*hcsb__accept_cb)(void *data, hcsb__listener_t *l, int status,
                                uv_stream_t *stream);

/* Listens for the guest's dial on `port` over the transport of `addr`:
 *   vsock          AF_VSOCK bound to addr->cid (ANY) and `port`; connections
 *                  from a CID other than addr->peer_cid are refused when
 *                  addr->has_peer_cid
 *   hybrid vsock   Unix socket "<addr->path>_<port>"
 *   unix/fd/spawn  Unix socket "<addr->stdio_dir>/<port>.sock"
 * A stale socket file at that path is removed first; the file is unlinked
 * again when the listener closes: in a directory others may write to, only
 * if it is still the listener's own file (device and inode); in one only
 * our user can write to (ours, no group or other write bit: a spawn:
 * guest's relay directory is one), always, the directory being checked
 * once per loop turn instead (listen.c says why that is as safe).  The
 * socket listens before this returns.  `timeout_ms` 0 = none.
 * Returns 0, -EINVAL (no place to listen: e.g. fd transport without a stdio
 * dir), -ENAMETOOLONG, -EAFNOSUPPORT (no AF_VSOCK here), or a libuv error. */
int hcsb__listen(uv_loop_t *loop, const hcsb_addr_t *addr, uint32_t port,
                 uint32_t timeout_ms, hcsb__accept_cb cb, void *data,
                 hcsb__listener_t **out);

/* Stops listening.  No callback runs after this returns; memory is released
 * once libuv has closed the handles.  Safe from inside the accept callback. */
void hcsb__listener_close(hcsb__listener_t *l);

/* The filesystem path a Unix-socket listener uses ("" for vsock). */
const char *hcsb__listener_path(const hcsb__listener_t *l);

/* ------------------------------------------------------------------------ */
/* Opening a bridge stream from an address (listen-once, dial, fd, spawn) */

typedef struct hcsb__opener_s hcsb__opener_t;
typedef void (*hcsb__closed_cb)(void *data);

/* status 0: `stream` is connected and owned by the callee; for spawn:,
 * `child` is the guest process (owned by the opener until
 * hcsb__opener_close). */
typedef void (*hcsb__open_cb)(void *data, int status, uv_stream_t *stream);

/* Starts opening `addr` (a copy is kept).  For spawn:, the child is started
 * with its stdin and stdout on one end of a socketpair and HCSB_STDIO_DIR in
 * its environment.  The callback runs exactly once unless the opener is
 * closed first.  Returns 0 or a negative errno. */
int hcsb__open(uv_loop_t *loop, const hcsb_addr_t *addr, hcsb__open_cb cb,
               void *data, hcsb__opener_t **out);

/* The address with defaults resolved (stdio_dir filled in: for unix the
 * socket's directory, for spawn a private directory created on demand). */
const hcsb_addr_t *hcsb__opener_addr(const hcsb__opener_t *o);

/* A guest started for spawn:: 1 once it was reaped (*exit_status, or
 * *term_signal when a signal killed it; the other is 0), 0 while it runs,
 * -ENOENT when nothing was spawned. */
int hcsb__opener_guest_exit(const hcsb__opener_t *o, int *exit_status,
                            int *term_signal);
/* Calls `cb` once, from the loop, when the spawned guest is reaped or
 * `timeout_ms` passed, whichever comes first; never after the opener
 * started closing.  Returns 0, or -EALREADY when there is nothing to wait
 * for (no guest, already reaped, closing); then `cb` never runs. */
int hcsb__opener_await_exit(hcsb__opener_t *o, uint32_t timeout_ms,
                            hcsb__closed_cb cb, void *data);

/* Releases the opener: stops a pending accept/dial, kills (SIGKILL) and reaps
 * a spawned guest that is still running, removes a private stdio directory.
 * No callback runs after this returns. */
void hcsb__opener_close(hcsb__opener_t *o);

/* As hcsb__opener_close(), but gentle with a spawned guest: once the bridge
 * stream is closed it sees EOF and gets `grace_ms` to exit before SIGKILL.
 * `cb` runs once every handle is closed and the child reaped (never inside
 * this call). */
void hcsb__opener_shutdown(hcsb__opener_t *o, uint32_t grace_ms,
                           hcsb__closed_cb cb, void *data);

#endif /* HCSB_TRANSPORT_H */
