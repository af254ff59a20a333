/* A task process's stdio: containerd's FIFOs on one side, the library's
 * process streams on the other.
 *
 * containerd creates the FIFOs and opens its own ends before it sends
 * Create or Exec; the shim opens them the way containerd's runc shim does:
 *   stdin   the read end (non-blocking), plus a write end of its own that
 *           keeps the FIFO from reading EOF until CloseIO(stdin) closes it
 *           (containerd sends that when its client's stdin ends); EOF then
 *           half-closes the process's stdin.  "" = no stdin.
 *   stdout, stderr   opened read-write, so opening never blocks and a
 *           client that goes away is no EPIPE: what nobody reads waits in
 *           the FIFO, and once it is full the process is slowed down
 *           rather than its output dropped (runc's shim holds a reader for
 *           the same reason).  "" = discarded.  "file:///PATH" appends to
 *           that file (stdout and stderr to the same one when both name
 *           it).  "binary://..." (containerd's logging plugins) is refused
 *           with -ENOTSUP.
 *   terminal  one stream: stdout carries the pty; stderr must be "".
 *
 * Output is relayed with bounded buffering: at most HCSB__PIO_MAX_QUEUED
 * bytes wait for a FIFO, then reading from the guest pauses until they
 * are written.  The drained callback runs once both outputs have reached
 * EOF and everything read was written (the drain rule, protocol.md §9.5:
 * the guest reports the exit only after the host closed its ends, and the
 * shim reports the exit only after the output is out).  All callbacks run
 * from the loop, never inside the call that caused them. */
#ifndef HCSB_SHIM_PIO_H
#define HCSB_SHIM_PIO_H

#include <stdint.h>

#include <uv.h>

#include <hcsbridge/conn.h>

#define HCSB__PIO_MAX_QUEUED (1u << 20)
/* stdin bytes handed to the library and not yet written. */
#define HCSB__PIO_MAX_STDIN (256u << 10)

typedef struct hcsb__pio_s hcsb__pio_t;

/* Opens the three paths (see above).  Returns 0, or -ENOTSUP (binary://),
 * -EINVAL (a terminal with a stderr, a relative path, an unknown URI
 * scheme), -ENOMEM, or open()'s error; *errmsg then says which stream and
 * why (static or in `io`-independent storage: valid until the next call).
 * Nothing is read or written until hcsb__pio_attach. */
int hcsb__pio_open(uv_loop_t *loop, const char *in, const char *out,
                   const char *err, int terminal, hcsb__pio_t **io,
                   const char **errmsg);

/* Which library pipes the process needs (for hcsb_process_config_t). */
void hcsb__pio_wants(const hcsb__pio_t *io, int *in, int *out, int *err);

/* Starts relaying to and from `p` (its create callback succeeded).  `cb`
 * runs once, later, when both outputs are drained (see above), or at once
 * on the next turn when there are none.  0, or -EALREADY, -EINVAL, or
 * hcsb_process_read_start's error. */
typedef void (*hcsb__pio_drained_cb)(void *data);
int hcsb__pio_attach(hcsb__pio_t *io, hcsb_process_t *p,
                     hcsb__pio_drained_cb cb, void *data);

/* uv_hrtime() when the first output byte came from the guest; 0 before. */
uint64_t hcsb__pio_first_output(const hcsb__pio_t *io);

/* CloseIO(stdin): closes the shim's own write end of the stdin FIFO, so
 * that the relay reads EOF once containerd's writer has gone too, and
 * half-closes the process's stdin then.  Idempotent. */
void hcsb__pio_close_stdin(hcsb__pio_t *io);

/* Stops relaying and forgets the process (before hcsb_process_close):
 * outputs read so far are still written.  The drained callback does not
 * run after this. */
void hcsb__pio_detach(hcsb__pio_t *io);

/* Closes every descriptor and handle; `io` is freed once the last libuv
 * handle is closed (no callback needed).  Detaches first. */
void hcsb__pio_close(hcsb__pio_t *io);

#endif
