/* hcsbctl: our own stdout/stderr (sinks) and stdin (source), terminal mode.
 *
 * libuv handles are opened on duplicates of fds 0-2 so closing them never
 * closes our standard descriptors, and the file status flags libuv changes
 * (O_NONBLOCK on a pipe shared with the shell) are put back at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "hcsbctl.h"

enum { CTL_SOURCE_STREAM = 1, CTL_SOURCE_TTY = 2, CTL_SOURCE_FILE = 3 };

#define CTL_READ_SIZE (64 * 1024)

/* Set while a source holds the terminal in raw mode. */
static volatile sig_atomic_t tty_raw;

void ctl_tty_restore(void) {
  if (tty_raw) {
    uv_tty_reset_mode(); /* async-signal-safe per libuv */
    tty_raw = 0;
  }
}

int ctl_tty_size(uint16_t *width, uint16_t *height) {
  struct winsize ws;
  for (int fd = STDOUT_FILENO; fd >= STDIN_FILENO; fd--) {
    if (fd == STDERR_FILENO) continue;
    if (isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col &&
        ws.ws_row) {
      *width = ws.ws_col;
      *height = ws.ws_row;
      return 0;
    }
  }
  return -1;
}

/* Opens a libuv stream on a duplicate of `fd` when it is a stream.  Returns
 * 1 (opened), 0 (not a stream: use plain I/O) or a negative errno. */
static int stream_open(uv_loop_t *loop, int fd, int readable, void *h,
                       int *is_tty) {
  uv_handle_type t = uv_guess_handle(fd);
  *is_tty = t == UV_TTY;
  if (t != UV_TTY && t != UV_NAMED_PIPE && t != UV_TCP) return 0;
  int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (dfd < 0) return -errno;
  int rc = t == UV_TTY ? uv_tty_init(loop, h, dfd, readable)
                       : uv_pipe_init(loop, h, 0);
  if (rc == 0 && t != UV_TTY) {
    rc = uv_pipe_open(h, dfd);
    if (rc != 0) {
      /* Finish the close now: the handle's memory belongs to the caller. */
      uv_close(h, NULL);
      uv_run(loop, UV_RUN_NOWAIT);
    }
  }
  if (rc != 0) {
    close(dfd);
    return rc;
  }
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Sinks */

typedef struct sink_write_s {
  uv_write_t req;
  ctl_sink_t *sink;
  size_t len;
  char data[];
} sink_write_t;

int ctl_sink_open(ctl_t *ctl, ctl_sink_t *s, int fd) {
  int is_tty;
  memset(s, 0, sizeof(*s));
  s->ctl = ctl;
  s->fd = fd;
  int rc = stream_open(&ctl->loop, fd, 0, &s->h, &is_tty);
  if (rc < 0) return rc;
  s->stream = s->open = rc == 1;
  if (s->open) s->h.handle.data = s;
  return 0;
}

/* Plain blocking write for files and anything libuv cannot stream.
 * Returns 0, or -1 when the descriptor refuses (ENOSPC, EPIPE...). */
static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      poll(&p, 1, -1);
      continue;
    }
    if (n <= 0) return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static void sink_written(uv_write_t *req, int status) {
  sink_write_t *w = (sink_write_t *)req;
  ctl_sink_t *s = w->sink;
  size_t before = s->queued;
  s->queued -= w->len;
  if (status < 0 && status != UV_ECANCELED) s->broken = 1;
  free(w);
  if (before >= CTL_SINK_LOW && s->queued < CTL_SINK_LOW)
    ctl_relays_resume(s->ctl);
}

void ctl_sink_write(ctl_sink_t *s, const char *buf, size_t len) {
  if (len == 0 || s->broken) return;
  if (!s->open) {
    if (write_all(s->fd, buf, len) != 0) s->broken = 1;
    return;
  }
  if (s->queued == 0) {
    int n = uv_try_write(&s->h.stream,
                         &(uv_buf_t){.base = (char *)buf, .len = len}, 1);
    if (n > 0) {
      buf += n;
      len -= (size_t)n;
    } else if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
      s->broken = 1; /* EPIPE: nobody reads our output any more */
      return;
    }
    if (len == 0) return;
  }
  sink_write_t *w = malloc(sizeof(*w) + len);
  if (w == NULL) {
    s->broken = 1;
    return;
  }
  w->sink = s;
  w->len = len;
  memcpy(w->data, buf, len);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
  if (uv_write(&w->req, &s->h.stream, &b, 1, sink_written) != 0) {
    free(w);
    s->broken = 1;
    return;
  }
  s->queued += len;
}

static void sink_closed(uv_handle_t *h) {
  ctl_sink_t *s = h->data;
  s->ctl->closing--;
}

void ctl_sink_close(ctl_sink_t *s) {
  if (s->open) {
    s->open = 0;
    s->ctl->closing++;
    uv_close(&s->h.handle, sink_closed);
  }
}

void ctl_out(ctl_t *ctl, const char *buf, size_t len) {
  ctl_sink_write(&ctl->out, buf, len);
}

void ctl_printf(ctl_t *ctl, const char *fmt, ...) {
  ctl_buf_t b = {0};
  va_list ap;
  va_start(ap, fmt);
  ctl_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  ctl_sink_write(&ctl->out, b.data, b.len);
  ctl_buf_free(&b);
}

void ctl_verrorf(ctl_t *ctl, const char *fmt, va_list ap) {
  ctl_buf_t b = {0};
  ctl_buf_append(&b, "hcsbctl: ", 9);
  ctl_buf_vprintf(&b, fmt, ap);
  /* The terminal may be in raw mode, where "\n" does not return the
   * carriage. */
  ctl_buf_append(&b, tty_raw ? "\r\n" : "\n", tty_raw ? 2 : 1);
  ctl_sink_write(&ctl->err, b.data, b.len);
  ctl_buf_free(&b);
}

void ctl_errorf(ctl_t *ctl, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ctl_verrorf(ctl, fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* Source (stdin) */

static void source_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  ctl_source_t *s = h->data;
  buf->base = s->buf;
  buf->len = CTL_READ_SIZE;
}

static void source_end(ctl_source_t *s, ssize_t status) {
  if (s->eof) return;
  s->eof = 1;
  s->reading = 0;
  if (s->kind != CTL_SOURCE_FILE) uv_read_stop(&s->h.stream);
  s->cb(s->data, NULL, status);
}

static void source_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  ctl_source_t *s = st->data;
  if (n > 0)
    s->cb(s->data, buf->base, n);
  else if (n < 0)
    source_end(s, n);
}

static void source_fs_next(ctl_source_t *s);

static void source_fs_done(uv_fs_t *req) {
  ctl_source_t *s = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  s->fs_busy = 0;
  if (!s->active) {
    free(s->buf); /* ctl_source_close left the buffer to this read */
    s->buf = NULL;
    s->ctl->closing--;
    return;
  }
  if (n > 0) {
    s->cb(s->data, s->buf, n);
    source_fs_next(s);
  } else {
    source_end(s, n == 0 ? UV_EOF : n);
  }
}

static void source_fs_next(ctl_source_t *s) {
  if (!s->active || !s->reading || s->eof || s->fs_busy) return;
  uv_buf_t b = uv_buf_init(s->buf, CTL_READ_SIZE);
  s->fs.data = s;
  int rc = uv_fs_read(&s->ctl->loop, &s->fs, STDIN_FILENO, &b, 1, -1,
                      source_fs_done);
  if (rc == 0)
    s->fs_busy = 1;
  else
    source_end(s, rc);
}

int ctl_source_open(ctl_t *ctl, ctl_source_t *s, int raw, ctl_source_cb cb,
                    void *data) {
  int is_tty;
  memset(s, 0, sizeof(*s));
  s->ctl = ctl;
  s->cb = cb;
  s->data = data;
  s->buf = malloc(CTL_READ_SIZE);
  if (s->buf == NULL) return -ENOMEM;
  int rc = stream_open(&ctl->loop, STDIN_FILENO, 1, &s->h, &is_tty);
  if (rc < 0) {
    free(s->buf);
    return rc;
  }
  s->active = 1;
  if (rc == 0) {
    s->kind = CTL_SOURCE_FILE;
    return 0;
  }
  s->kind = is_tty ? CTL_SOURCE_TTY : CTL_SOURCE_STREAM;
  s->h.handle.data = s;
  if (is_tty && raw && uv_tty_set_mode(&s->h.tty, UV_TTY_MODE_RAW) == 0) {
    s->raw = 1;
    tty_raw = 1;
  }
  return 0;
}

void ctl_source_start(ctl_source_t *s) {
  if (!s->active || s->eof || s->reading) return;
  s->reading = 1;
  if (s->kind == CTL_SOURCE_FILE) {
    source_fs_next(s);
  } else {
    int rc = uv_read_start(&s->h.stream, source_alloc, source_read);
    if (rc != 0) source_end(s, rc);
  }
}

void ctl_source_stop(ctl_source_t *s) {
  if (!s->active || !s->reading) return;
  s->reading = 0;
  if (s->kind != CTL_SOURCE_FILE) uv_read_stop(&s->h.stream);
}

static void source_closed(uv_handle_t *h) {
  ctl_source_t *s = h->data;
  free(s->buf);
  s->buf = NULL;
  s->ctl->closing--;
}

void ctl_source_close(ctl_source_t *s) {
  if (!s->active) return;
  s->active = 0;
  s->reading = 0;
  if (s->raw) {
    ctl_tty_restore();
    s->raw = 0;
  }
  if (s->kind == CTL_SOURCE_FILE) {
    /* A read of a regular file cannot be cancelled once started; it ends
     * quickly, and its callback releases the count. */
    if (s->fs_busy) {
      s->ctl->closing++;
    } else {
      free(s->buf);
      s->buf = NULL;
    }
  } else {
    s->ctl->closing++;
    uv_close(&s->h.handle, source_closed);
  }
}
