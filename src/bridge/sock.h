/* Building blocks of the transports.  Internal to src/bridge.
 *
 * libuv cannot bind, listen on or dial AF_VSOCK, so every socket here is
 * made by hand, driven with uv_poll_t while it is listening or dialling, and
 * adopted into a uv_pipe_t (uv_pipe_open accepts any stream socket) once
 * connected.  Unix sockets take the same path so that all transports share
 * one listener and one dialer.
 */
#ifndef HCSB_BRIDGE_SOCK_H
#define HCSB_BRIDGE_SOCK_H

#include <sys/socket.h>
#include <uv.h>

#include "bridge/transport.h"

/* A heap uv_pipe_t owning `fd`.  On failure `fd` is left open. */
int hcsb__stream_adopt(uv_loop_t *loop, int fd, uv_stream_t **out);

/* ------------------------------------------------------------------------ */
/* Listening sockets */

/* Listens on the Unix socket `path` (a stale socket file there is removed;
 * anything else there is -EADDRINUSE). */
int hcsb__listen_unix(uv_loop_t *loop, const char *path, uint32_t timeout_ms,
                      hcsb__accept_cb cb, void *data, hcsb__listener_t **out);
/* Listens on AF_VSOCK `cid`:`port`; with `has_peer`, dials from any CID but
 * `peer_cid` are closed at once.  -EAFNOSUPPORT where vsock is missing. */
int hcsb__listen_vsock(uv_loop_t *loop, uint32_t cid, uint32_t port,
                       int has_peer, uint32_t peer_cid, uint32_t timeout_ms,
                       hcsb__accept_cb cb, void *data, hcsb__listener_t **out);

/* hcsb__listener_close() with a callback once its handles are closed and
 * its socket file is gone (never inside this call). */
void hcsb__listener_close_cb(hcsb__listener_t *l, hcsb__closed_cb cb,
                             void *data);

/* ------------------------------------------------------------------------ */
/* Dialling */

typedef struct hcsb__dialer_s hcsb__dialer_t;
typedef void (*hcsb__dial_cb)(void *data, int status, uv_stream_t *stream);

/* Connects to the Unix socket `path`.  With `hybrid_port` non-zero, then
 * performs the Firecracker/Cloud Hypervisor hybrid vsock handshake: sends
 * "CONNECT <port>\n" and expects "OK <n>\n" (-EPROTO for anything else,
 * -ECONNREFUSED when the VMM hangs up instead).  `timeout_ms` (0 = none)
 * covers the dial and the handshake (-ETIMEDOUT).  `cb` runs exactly once,
 * never inside this call, unless the dialer is closed first. */
int hcsb__dial_unix(uv_loop_t *loop, const char *path, uint32_t hybrid_port,
                    uint32_t timeout_ms, hcsb__dial_cb cb, void *data,
                    hcsb__dialer_t **out);
/* Connects to AF_VSOCK `cid`:`port` (only for a user's vsock+connect://). */
int hcsb__dial_vsock(uv_loop_t *loop, uint32_t cid, uint32_t port,
                     uint32_t timeout_ms, hcsb__dial_cb cb, void *data,
                     hcsb__dialer_t **out);
/* No dial callback runs after this; `cb` (may be NULL) runs once the
 * handles are closed and the memory is gone. */
void hcsb__dialer_close(hcsb__dialer_t *d, hcsb__closed_cb cb, void *data);

/* ------------------------------------------------------------------------ */
/* Spawned guests */

typedef struct hcsb__child_s hcsb__child_t;

/* Runs `/bin/sh -c command` with one end of a new socketpair as its stdin
 * and stdout (stderr inherited) and HCSB_STDIO_DIR=stdio_dir exported.
 * *fd receives the other end (close-on-exec). */
int hcsb__child_spawn(uv_loop_t *loop, const char *command,
                      const char *stdio_dir, int *fd, hcsb__child_t **out);
/* SIGKILL after `grace_ms` unless the child exits first; `cb` runs once it
 * is reaped and the handles are closed (never inside this call). */
void hcsb__child_shutdown(hcsb__child_t *c, uint32_t grace_ms,
                          hcsb__closed_cb cb, void *data);
/* The child's PID (0 once reaped). */
int hcsb__child_pid(const hcsb__child_t *c);
/* `cb` runs once, from libuv's exit callback, when the child is reaped:
 * its exit status, or the signal that killed it. */
typedef void (*hcsb__exit_cb)(void *data, int64_t exit_status, int signo);
void hcsb__child_on_exit(hcsb__child_t *c, hcsb__exit_cb cb, void *data);

/* ------------------------------------------------------------------------ */
/* Helpers */

/* Fills a sockaddr_un; -ENAMETOOLONG when `path` does not fit. */
int hcsb__sockaddr_unix(struct sockaddr_storage *ss, socklen_t *len,
                        const char *path);

/* The directory part of `path` ("." when it has none, "/" for the root),
 * truncated to `len`. */
void hcsb__dirname(const char *path, char *out, size_t len);

#endif /* HCSB_BRIDGE_SOCK_H */
