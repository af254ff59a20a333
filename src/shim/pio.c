/* Stdio relays between containerd's FIFOs and a guest process (pio.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim/pio.h"

enum { SINK_NONE = 0, SINK_PIPE, SINK_FILE };

typedef struct sink_s {
  int kind;
  uv_pipe_t pipe;
  int fd;     /* SINK_FILE; SINK_PIPE until uv_pipe_open took it */
  int eof;    /* the guest's stream ended (or was never requested) */
  int broken; /* a write failed: the rest is dropped */
} sink_t;

typedef struct wreq_s {
  uv_write_t req;
  hcsb__pio_t *io;
  size_t len;
  char data[];
} wreq_t;

struct hcsb__pio_s {
  uv_loop_t *loop;
  int terminal;
  /* stdin */
  int in_kind; /* SINK_NONE or SINK_PIPE */
  uv_pipe_t in;
  int in_fd;  /* until uv_pipe_open */
  int in_wfd; /* our own write end, until CloseIO */
  int in_reading, in_done;
  size_t in_inflight;
  unsigned in_writes; /* hcsb_process_write callbacks still to come */
  /* stdout, stderr */
  sink_t out, err;
  size_t queued;         /* output bytes in uv_write */
  uint64_t first_output; /* uv_hrtime() of the first byte, 0 before */
  int paused;            /* reading from the guest stopped for back-pressure */
  /* the process */
  hcsb_process_t *p;
  int attached;
  hcsb__pio_drained_cb cb;
  void *data;
  int drained;
  uv_timer_t defer;
  int handles; /* initialised libuv handles not closed yet */
  int closing;
};

static char errbuf[512];

static void maybe_free(hcsb__pio_t *io) {
  if (io->closing && io->handles == 0 && io->in_writes == 0 && io->queued == 0)
    free(io);
}

static void on_handle_closed(uv_handle_t *h) {
  hcsb__pio_t *io = h->data;

  io->handles--;
  maybe_free(io);
}

/* ------------------------------------------------------------------------ */
/* Opening */

/* "" -> NONE; "file:///p" -> FILE; "binary://" -> refused; a path ->
 * FIFO. */
static int open_sink(sink_t *s, const char *name, const char *path) {
  int fd;

  s->fd = -1;
  if (path == NULL || path[0] == '\0') {
    s->kind = SINK_NONE;
    s->eof = 1;
    return 0;
  }
  if (strncmp(path, "binary://", 9) == 0) {
    snprintf(errbuf, sizeof errbuf,
             "%s: binary:// logging is not supported by this shim "
             "(use a FIFO or file://)",
             name);
    return -ENOTSUP;
  }
  if (strncmp(path, "file://", 7) == 0) {
    const char *p = path + 7;
    if (p[0] != '/') {
      snprintf(errbuf, sizeof errbuf, "%s: %s is not an absolute file:// URI",
               name, path);
      return -EINVAL;
    }
    fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
      int e = -errno;
      snprintf(errbuf, sizeof errbuf, "%s: cannot open %s: %s", name, p,
               strerror(-e));
      return e;
    }
    s->kind = SINK_FILE;
    s->fd = fd;
    return 0;
  }
  if (path[0] != '/' || strstr(path, "://") != NULL) {
    snprintf(errbuf, sizeof errbuf, "%s: %s is neither a FIFO nor file://",
             name, path);
    return -EINVAL;
  }
  fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = -errno;
    snprintf(errbuf, sizeof errbuf, "%s: cannot open %s: %s", name, path,
             strerror(-e));
    return e;
  }
  s->kind = SINK_PIPE;
  s->fd = fd;
  return 0;
}

static int open_stdin(hcsb__pio_t *io, const char *path) {
  io->in_fd = io->in_wfd = -1;
  if (path == NULL || path[0] == '\0') return 0;
  if (path[0] != '/') {
    snprintf(errbuf, sizeof errbuf, "stdin: %s is not a FIFO path", path);
    return -EINVAL;
  }
  io->in_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (io->in_fd >= 0)
    io->in_wfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (io->in_fd < 0 || io->in_wfd < 0) {
    int e = -errno;
    snprintf(errbuf, sizeof errbuf, "stdin: cannot open %s: %s", path,
             strerror(-e));
    return e;
  }
  io->in_kind = SINK_PIPE;
  return 0;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Hands a descriptor to a uv_pipe_t (which owns it from then on). */
static int adopt(hcsb__pio_t *io, uv_pipe_t *pipe, int *fd) {
  int r = uv_pipe_init(io->loop, pipe, 0);

  if (r != 0) return r;
  pipe->data = io;
  io->handles++;
  r = uv_pipe_open(pipe, *fd);
  if (r != 0) return r; /* the fd is still ours; the handle gets closed */
  *fd = -1;
  return 0;
}

int hcsb__pio_open(uv_loop_t *loop, const char *in, const char *out,
                   const char *err, int terminal, hcsb__pio_t **iop,
                   const char **errmsg) {
  hcsb__pio_t *io;
  int r;

  *errmsg = NULL;
  errbuf[0] = '\0';
  if (terminal && err != NULL && err[0] != '\0') {
    *errmsg = "a terminal has no separate stderr";
    return -EINVAL;
  }
  io = calloc(1, sizeof(*io));
  if (io == NULL) return -ENOMEM;
  io->loop = loop;
  io->terminal = terminal;
  io->out.fd = io->err.fd = io->in_fd = io->in_wfd = -1;
  r = open_stdin(io, in);
  if (r == 0) r = open_sink(&io->out, "stdout", out);
  if (r == 0) r = open_sink(&io->err, "stderr", err);
  if (r == 0) {
    r = uv_timer_init(loop, &io->defer);
    if (r == 0) {
      io->defer.data = io;
      io->handles++;
    }
  }
  if (r == 0 && io->in_kind == SINK_PIPE) r = adopt(io, &io->in, &io->in_fd);
  if (r == 0 && io->out.kind == SINK_PIPE)
    r = adopt(io, &io->out.pipe, &io->out.fd);
  if (r == 0 && io->err.kind == SINK_PIPE)
    r = adopt(io, &io->err.pipe, &io->err.fd);
  if (r != 0) {
    if (errbuf[0] == '\0' || r == -ENOMEM)
      snprintf(errbuf, sizeof errbuf, "stdio: %s", uv_strerror(r));
    *errmsg = errbuf;
    hcsb__pio_close(io);
    return r;
  }
  *iop = io;
  return 0;
}

void hcsb__pio_wants(const hcsb__pio_t *io, int *in, int *out, int *err) {
  *in = io->in_kind != SINK_NONE;
  *out = io->out.kind != SINK_NONE;
  *err = io->err.kind != SINK_NONE;
}

/* ------------------------------------------------------------------------ */
/* Output */

static void on_read(void *data, hcsb_process_t *p, int fd, const char *buf,
                    ssize_t nread);

static void maybe_drained(hcsb__pio_t *io) {
  if (!io->attached || io->drained || io->p == NULL) return;
  if (!io->out.eof || !io->err.eof || io->queued != 0) return;
  io->drained = 1;
  if (io->cb != NULL) io->cb(io->data);
}

static void resume(hcsb__pio_t *io) {
  if (io->paused && io->queued <= HCSB__PIO_MAX_QUEUED / 2 && io->p != NULL) {
    io->paused = 0;
    hcsb_process_read_start(io->p, on_read, io);
  }
}

static void on_written(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  hcsb__pio_t *io = w->io;

  io->queued -= w->len;
  free(w);
  (void)status; /* a FIFO nobody reads cannot fail; a closed one drops */
  if (io->closing) {
    maybe_free(io);
    return;
  }
  resume(io);
  maybe_drained(io);
}

static void sink_write(hcsb__pio_t *io, sink_t *s, const char *buf,
                       size_t len) {
  wreq_t *w;
  uv_buf_t b;

  if (s->broken || s->kind == SINK_NONE) return;
  if (s->kind == SINK_FILE) {
    while (len > 0) {
      ssize_t n = write(s->fd, buf, len);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        s->broken = 1;
        return;
      }
      buf += n;
      len -= (size_t)n;
    }
    return;
  }
  w = malloc(sizeof(*w) + len);
  if (w == NULL) {
    s->broken = 1;
    return;
  }
  w->io = io;
  w->len = len;
  memcpy(w->data, buf, len);
  b = uv_buf_init(w->data, (unsigned)len);
  if (uv_write(&w->req, (uv_stream_t *)&s->pipe, &b, 1, on_written) != 0) {
    free(w);
    s->broken = 1;
    return;
  }
  io->queued += len;
  if (io->queued > HCSB__PIO_MAX_QUEUED && !io->paused && io->p != NULL) {
    io->paused = 1;
    hcsb_process_read_stop(io->p);
  }
}

static void on_read(void *data, hcsb_process_t *p, int fd, const char *buf,
                    ssize_t nread) {
  hcsb__pio_t *io = data;
  sink_t *s = fd == 2 ? &io->err : &io->out;

  (void)p;
  if (io->p == NULL) return;
  if (nread < 0) {
    s->eof = 1;
    maybe_drained(io);
    return;
  }
  if (io->first_output == 0 && nread > 0) io->first_output = uv_hrtime();
  sink_write(io, s, buf, (size_t)nread);
}

uint64_t hcsb__pio_first_output(const hcsb__pio_t *io) {
  return io != NULL ? io->first_output : 0;
}

/* ------------------------------------------------------------------------ */
/* stdin */

static void on_in_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_in_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  buf->base = malloc(64 << 10);
  buf->len = buf->base != NULL ? 64 << 10 : 0;
}

static void in_stop(hcsb__pio_t *io) {
  if (io->in_reading) uv_read_stop((uv_stream_t *)&io->in);
  io->in_reading = 0;
}

static void in_start(hcsb__pio_t *io) {
  if (io->in_kind != SINK_PIPE || io->in_done || io->in_reading ||
      io->p == NULL || io->closing)
    return;
  if (uv_read_start((uv_stream_t *)&io->in, on_in_alloc, on_in_read) == 0)
    io->in_reading = 1;
}

static void on_in_written(void *data, int status,
                          const hcsb_guest_error_t *gerr) {
  wreq_t *w = data;
  hcsb__pio_t *io = w->io;

  (void)status;
  (void)gerr;
  io->in_writes--;
  io->in_inflight -= w->len;
  free(w);
  if (io->closing) {
    maybe_free(io);
    return;
  }
  if (io->in_inflight <= HCSB__PIO_MAX_STDIN / 2) in_start(io);
}

static void in_end(hcsb__pio_t *io) {
  in_stop(io);
  if (io->in_done) return;
  io->in_done = 1;
  if (io->p != NULL) hcsb_process_close_stdin(io->p);
}

static void on_in_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  hcsb__pio_t *io = st->data;
  wreq_t *w;

  if (n > 0 && io->p != NULL) {
    w = malloc(sizeof(*w));
    if (w != NULL) {
      w->io = io;
      w->len = (size_t)n;
      if (hcsb_process_write(io->p, buf->base, (size_t)n, on_in_written, w) ==
          0) {
        io->in_writes++;
        io->in_inflight += (size_t)n;
        if (io->in_inflight > HCSB__PIO_MAX_STDIN) in_stop(io);
      } else {
        free(w); /* the process's stdin is gone: stop relaying */
        in_end(io);
      }
    }
  } else if (n < 0) {
    in_end(io); /* EOF: every writer (ours after CloseIO) has gone */
  }
  free(buf->base);
}

void hcsb__pio_close_stdin(hcsb__pio_t *io) {
  if (io == NULL) return;
  /* What containerd wrote before is still in the FIFO: the relay reads it
   * (also when the process starts only later), then EOF. */
  close_fd(&io->in_wfd);
}

/* ------------------------------------------------------------------------ */
/* Life */

static void on_defer(uv_timer_t *t) {
  maybe_drained(t->data);
}

int hcsb__pio_attach(hcsb__pio_t *io, hcsb_process_t *p,
                     hcsb__pio_drained_cb cb, void *data) {
  int r;

  if (io == NULL || p == NULL) return -EINVAL;
  if (io->attached || io->closing) return -EALREADY;
  io->p = p;
  io->attached = 1;
  io->cb = cb;
  io->data = data;
  if (io->out.kind != SINK_NONE || io->err.kind != SINK_NONE) {
    r = hcsb_process_read_start(p, on_read, io);
    if (r != 0) {
      io->p = NULL;
      return r;
    }
  }
  if (io->in_kind == SINK_PIPE) in_start(io);
  uv_timer_start(&io->defer, on_defer, 0, 0); /* no outputs: drained now */
  return 0;
}

void hcsb__pio_detach(hcsb__pio_t *io) {
  if (io == NULL || io->p == NULL) return;
  in_stop(io);
  hcsb_process_read_stop(io->p);
  io->p = NULL;
}

static void close_handle(hcsb__pio_t *io, uv_handle_t *h) {
  if (h->loop != NULL && !uv_is_closing(h)) uv_close(h, on_handle_closed);
  (void)io;
}

void hcsb__pio_close(hcsb__pio_t *io) {
  if (io == NULL || io->closing) return;
  hcsb__pio_detach(io);
  io->closing = 1;
  close_fd(&io->in_fd);
  close_fd(&io->in_wfd);
  close_fd(&io->out.fd);
  close_fd(&io->err.fd);
  /* Handles that were initialised have a loop; closing a pipe cancels its
   * pending writes (their callbacks free them). */
  if (io->handles > 0) {
    close_handle(io, (uv_handle_t *)&io->defer);
    close_handle(io, (uv_handle_t *)&io->in);
    close_handle(io, (uv_handle_t *)&io->out.pipe);
    close_handle(io, (uv_handle_t *)&io->err.pipe);
  }
  maybe_free(io);
}
