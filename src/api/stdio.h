/* Stdio relays of one process, and the UVM bring-up listeners.  Internal.
 *
 * The host listens and the guest dials (protocol.md §2.1, §9.3): listeners
 * are bound by the time hcsb__stdio_open() returns, so ExecuteProcess can be
 * sent right after.  Built on src/bridge/transport.h.
 */
#ifndef HCSB_API_STDIO_H
#define HCSB_API_STDIO_H

#include <sys/types.h>
#include <uv.h>

#include <hcsbridge/conn.h>

typedef struct hcsb__stdio_s hcsb__stdio_t;

/* Every requested stream has been accepted (status 0), or the accept of one
 * of them failed (-ETIMEDOUT after the accept timeout, or another error);
 * runs once, unless hcsb__stdio_close() came first.  On failure every
 * listener is closed; streams that did connect stay until
 * hcsb__stdio_close(). */
typedef void (*hcsb__stdio_ready_cb)(void *data, int status);

/* The size of a stdout/stderr read buffer. */
#define HCSB__STDIO_READ_BUF_SIZE (64u * 1024u)

/* Opens listeners for ports[0..2] (stdin, stdout, stderr; 0 = not requested)
 * on the transport of `addr` (hcsb__listen).  stdout and stderr are read
 * into `readbuf` (HCSB__STDIO_READ_BUF_SIZE bytes, which may be shared by
 * every stdio of the loop and must outlive reading: until
 * hcsb__stdio_close()), or into a buffer of its own when it is NULL.  Each
 * listener accepts one connection and then stops listening.  A second dial on
 * an already connected port is refused (closed at once) while the listener
 * lives. With no port requested, `cb` runs on the next loop turn with 0. A
 * listener is closed (its socket file removed) right after its accept. Returns
 * 0 or a negative errno (nothing left open then): -EINVAL (a NULL argument, or
 * two streams on one port), -ENOMEM, or hcsb__listen()'s. */
int hcsb__stdio_open(uv_loop_t *loop, const hcsb_addr_t *addr,
                     const uint32_t ports[3], uint32_t accept_timeout_ms,
                     char *readbuf, hcsb__stdio_ready_cb cb, void *data,
                     hcsb__stdio_t **out);

/* The connected stream for fd 0, 1 or 2; NULL when not requested, not yet
 * accepted, or closed. */
uv_stream_t *hcsb__stdio_stream(const hcsb__stdio_t *s, int fd);

/* fd 0: half-close (shutdown after pending writes), idempotent.
 * fd 1/2: close the stream, idempotent.  Always returns 0 for 0..2 (-EINVAL
 * otherwise).  Before the stream is accepted the request is remembered and
 * applied on accept. */
int hcsb__stdio_close_fd(hcsb__stdio_t *s, int fd);

/* Reading stdout/stderr: nread > 0 data; nread < 0 ends that stream
 * (UV_EOF or an error), after which it is closed (the guest needs that to
 * report the exit).  While stopped, nothing is read (back-pressure).
 * read_start may come before the streams are accepted; it returns -EINVAL
 * without `cb`, -EPIPE after hcsb__stdio_close(). */
typedef void (*hcsb__stdio_read_cb)(void *data, int fd, const char *buf,
                                    ssize_t nread);
int hcsb__stdio_read_start(hcsb__stdio_t *s, hcsb__stdio_read_cb cb,
                           void *data);
int hcsb__stdio_read_stop(hcsb__stdio_t *s);

/* Copies and writes to stdin; `cb` may be NULL.  -EPIPE when stdin is not
 * open (not requested, not yet accepted, or half-closed); -ENOBUFS when the
 * bytes not yet written would exceed 8 MiB; -ENOMEM.  `cb` runs once, from
 * the loop, with 0, a write error, or -ECANCELED after close. */
int hcsb__stdio_write(hcsb__stdio_t *s, const void *buf, size_t len,
                      hcsb_done_cb cb, void *data);

/* Closes listeners and streams.  Pending write callbacks run later from the
 * loop with -ECANCELED (never inside this call); no read or ready callback
 * runs after it returns.  Memory is released once libuv closed the handles. */
void hcsb__stdio_close(hcsb__stdio_t *s);

/* ------------------------------------------------------------------------ */
/* Bring-up helpers */

typedef struct hcsb__bringup_s hcsb__bringup_t;

/* Opens, on the transport of `addr`, the entropy listener (port 1, when
 * `entropy`: write 512 random bytes to each dialer, then close) and the log
 * listener (port 109, when `log_cb`: split the stream into lines, parse each
 * as JSON, hand records to log_cb until EOF; lines are bounded — an overlong
 * line is delivered truncated, never buffered without bound).  Listeners stay
 * open until hcsb__bringup_close().
 * Details: lines end at "\n" (a trailing "\r" is dropped, blank lines are
 * skipped); lines longer than 64 KiB are delivered as their first 64 KiB;
 * the last line is delivered at EOF even without its newline; the library
 * closes its end at EOF.  At most 16 connections per port are live at once
 * (more are closed at once).  No callback runs after close returns. */
int hcsb__bringup_open(uv_loop_t *loop, const hcsb_addr_t *addr, int entropy,
                       hcsb_guest_log_cb log_cb, void *log_data,
                       hcsb__bringup_t **out);
void hcsb__bringup_close(hcsb__bringup_t *b);

#endif /* HCSB_API_STDIO_H */
