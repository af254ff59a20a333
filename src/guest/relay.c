/* Stdio relays between a process and the sockets the guest dialed.
 *
 * Three shapes, as the GCS has them:
 *   DIRECT  UVM process without a tty: the sockets become fds 0-2 of the
 *           child and the guest keeps nothing (exit = reap).
 *   PIPES   container process without a tty: pipes to the child, copied to
 *           and from the sockets.  When an output pipe reaches EOF the
 *           socket is half-closed and then read until the host closes its
 *           end; the process's exit is reported only after that
 *           (protocol.md §9.5).
 *   TTY     a pty: stdin socket -> master, master -> stdout socket until
 *           the master reports EIO (every slave fd closed).  stderr, if
 *           dialed, is unused and closed with the relay.
 *
 * A pump copies one direction with back-pressure: it stops reading its
 * source while a write is pending.  Pumps own their two libuv handles (fds
 * are dup'ed where one fd serves both directions) and are freed in the last
 * close callback; the relay is freed when its owner released it and its
 * last pump is gone. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "guest/guest.h"

typedef struct pump_s pump_t;

struct pump_s {
  hcsb__grelay_t *r;
  int out;       /* an output stream: its end is reported to the process */
  int handshake; /* half-close the socket, then wait for the host's close */
  uv_pipe_t src, dst;
  int src_open, dst_open;
  int nopen;
  int done;
  uv_write_t wreq;
  uv_shutdown_t sreq;
  char buf[64 * 1024];
};

struct hcsb__grelay_s {
  hcsb__guest_t *g;
  hcsb__gproc_t *p;
  int mode;
  int master;   /* TTY: the pty master (resize), else -1 */
  int socks[3]; /* sockets not handed to a pump yet */
  int ends[3];  /* PIPES: our end of each pipe */
  pump_t *in, *out, *err;
  int npumps;
  int released;
};

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static int devnull(void) {
  return open("/dev/null", O_RDWR | O_CLOEXEC);
}

/* ------------------------------------------------------------------------ */
/* Pumps */

static void relay_free(hcsb__grelay_t *r) {
  int i;

  for (i = 0; i < 3; i++) {
    close_fd(&r->socks[i]);
    close_fd(&r->ends[i]);
  }
  close_fd(&r->master);
  free(r);
}

static void pump_freed(pump_t *p) {
  hcsb__grelay_t *r = p->r;
  int out = p->out;

  if (r->in == p) r->in = NULL;
  if (r->out == p) r->out = NULL;
  if (r->err == p) r->err = NULL;
  free(p);
  r->npumps--;
  if (r->released) {
    if (r->npumps == 0) relay_free(r);
    return;
  }
  /* May release (and free) the relay: r is not touched afterwards. */
  if (out) hcsb__gproc_relay_done(r->p);
}

static void on_pump_close(uv_handle_t *h) {
  pump_t *p = h->data;

  if (--p->nopen == 0) pump_freed(p);
}

static void pump_finish(pump_t *p) {
  if (p->done) return;
  p->done = 1;
  if (p->src_open) uv_close((uv_handle_t *)&p->src, on_pump_close);
  if (p->dst_open) uv_close((uv_handle_t *)&p->dst, on_pump_close);
  p->src_open = p->dst_open = 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  pump_t *p = h->data;
  (void)hint;
  *buf = uv_buf_init(p->buf, sizeof p->buf);
}

static void on_drain_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  pump_t *p = s->data;
  (void)buf;
  /* The host sending on an output stream is a protocol slip; the GCS logs
   * "unexpected data in socket" and carries on waiting for EOF. */
  if (nread < 0) pump_finish(p);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  pump_t *p = req->data;

  if (p->done) return;
  if (status < 0 ||
      uv_read_start((uv_stream_t *)&p->dst, on_alloc, on_drain_read) < 0)
    pump_finish(p);
}

static void src_ended(pump_t *p) {
  uv_close((uv_handle_t *)&p->src, on_pump_close);
  p->src_open = 0;
  if (!p->handshake) {
    pump_finish(p);
    return;
  }
  p->sreq.data = p;
  if (uv_shutdown(&p->sreq, (uv_stream_t *)&p->dst, on_shutdown) < 0)
    pump_finish(p);
}

static void on_src_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_pump_write(uv_write_t *req, int status) {
  pump_t *p = req->data;

  if (p->done) return;
  if (status < 0 ||
      uv_read_start((uv_stream_t *)&p->src, on_alloc, on_src_read) < 0)
    pump_finish(p);
}

static void on_src_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  pump_t *p = s->data;
  uv_buf_t b;

  if (nread == 0) return;
  if (nread < 0) {
    /* EOF, or EIO from a pty master whose slaves are all closed. */
    src_ended(p);
    return;
  }
  uv_read_stop(s);
  b = uv_buf_init(buf->base, (unsigned)nread);
  p->wreq.data = p;
  if (uv_write(&p->wreq, (uv_stream_t *)&p->dst, &b, 1, on_pump_write) < 0)
    pump_finish(p);
}

/* Takes ownership of both fds, whatever happens.  NULL when the pump could
 * not start (its fds are closed; a failed output counts as drained). */
static pump_t *pump_start(hcsb__grelay_t *r, int src_fd, int dst_fd, int out,
                          int handshake) {
  uv_loop_t *loop = r->g->loop;
  pump_t *p = calloc(1, sizeof *p);

  if (p == NULL || uv_pipe_init(loop, &p->src, 0) < 0) {
    free(p);
    close(src_fd);
    close(dst_fd);
    return NULL;
  }
  p->r = r;
  p->handshake = handshake;
  p->src.data = p;
  p->src_open = 1;
  p->nopen = 1;
  r->npumps++;
  if (uv_pipe_init(loop, &p->dst, 0) == 0) {
    p->dst.data = p;
    p->dst_open = 1;
    p->nopen = 2;
  } else {
    close(dst_fd);
    dst_fd = -1;
  }
  if (dst_fd < 0 || uv_pipe_open(&p->src, src_fd) < 0) {
    close(src_fd);
    if (dst_fd >= 0) close(dst_fd);
    pump_finish(p);
    return NULL;
  }
  if (uv_pipe_open(&p->dst, dst_fd) < 0) {
    close(dst_fd);
    pump_finish(p);
    return NULL;
  }
  if (uv_read_start((uv_stream_t *)&p->src, on_alloc, on_src_read) < 0) {
    pump_finish(p);
    return NULL;
  }
  p->out = out;
  return p;
}

/* ------------------------------------------------------------------------ */

int hcsb__grelay_prepare(hcsb__guest_t *g, int mode, int socks[3],
                         int init_style, uint16_t rows, uint16_t cols,
                         hcsb__grelay_t **out, int child_fds[3],
                         int *tty_slave) {
  hcsb__grelay_t *r = NULL;
  int i, err = 0, pfd[2];

  *out = NULL;
  *tty_slave = -1;
  for (i = 0; i < 3; i++) child_fds[i] = -1;

  if (mode == HCSB__GRELAY_DIRECT) {
    /* The sockets themselves become the child's stdio. */
    for (i = 0; i < 3; i++) {
      child_fds[i] = socks[i] >= 0 ? socks[i] : devnull();
      socks[i] = -1;
      if (child_fds[i] < 0) err = -errno;
    }
    if (err != 0) hcsb__grelay_discard_child_fds(child_fds, -1);
    return err;
  }

  r = calloc(1, sizeof *r);
  if (r == NULL) {
    err = -ENOMEM;
    goto fail;
  }
  r->g = g;
  r->mode = mode;
  r->master = -1;
  for (i = 0; i < 3; i++) {
    r->socks[i] = socks[i];
    r->ends[i] = -1;
    socks[i] = -1;
  }

  if (mode == HCSB__GRELAY_TTY) {
    struct winsize ws;
    int master, slave;

    memset(&ws, 0, sizeof ws);
    ws.ws_row = rows;
    ws.ws_col = cols;
    if (openpty(&master, &slave, NULL, NULL, &ws) < 0) {
      err = -errno;
      goto fail;
    }
    fcntl(master, F_SETFD, FD_CLOEXEC);
    fcntl(slave, F_SETFD, FD_CLOEXEC);
    r->master = master;
    for (i = 0; i < 3; i++) child_fds[i] = slave;
    *tty_slave = slave;
    *out = r;
    return 0;
  }

  for (i = 0; i < 3; i++) {
    int want = r->socks[i] >= 0;
    if (!want && (i == 0 || !init_style)) {
      child_fds[i] = devnull();
      if (child_fds[i] < 0) {
        err = -errno;
        goto fail;
      }
      continue;
    }
    if (pipe2(pfd, O_CLOEXEC) < 0) {
      err = -errno;
      goto fail;
    }
    if (i == 0) {
      child_fds[0] = pfd[0];
      r->ends[0] = pfd[1];
    } else {
      child_fds[i] = pfd[1];
      r->ends[i] = pfd[0];
      /* A container init's unrequested output: nobody will ever read it,
       * so writes fail with EPIPE, as under the GCS. */
      if (!want) close_fd(&r->ends[i]);
    }
  }
  *out = r;
  return 0;

fail:
  hcsb__grelay_discard_child_fds(child_fds, *tty_slave);
  *tty_slave = -1;
  if (r != NULL) relay_free(r);
  for (i = 0; i < 3; i++) close_fd(&socks[i]);
  return err;
}

void hcsb__grelay_discard_child_fds(int child_fds[3], int tty_slave) {
  int i, j;

  for (i = 0; i < 3; i++) {
    if (child_fds[i] < 0) continue;
    for (j = 0; j < i; j++)
      if (child_fds[j] == child_fds[i]) break;
    if (j == i && child_fds[i] != tty_slave) close(child_fds[i]);
    child_fds[i] = -1;
  }
  if (tty_slave >= 0) close(tty_slave);
}

void hcsb__grelay_abort(hcsb__grelay_t *r) {
  if (r != NULL) relay_free(r);
}

int hcsb__grelay_start(hcsb__grelay_t *r, hcsb__gproc_t *p) {
  int outputs = 0, fd;

  r->p = p;
  if (r->mode == HCSB__GRELAY_TTY) {
    if (r->socks[0] >= 0) {
      fd = dup(r->master);
      if (fd >= 0) {
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        r->in = pump_start(r, r->socks[0], fd, 0, 0);
      } else {
        close_fd(&r->socks[0]);
      }
      r->socks[0] = -1;
    }
    if (r->socks[1] >= 0) {
      fd = dup(r->master);
      if (fd >= 0) {
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        r->out = pump_start(r, fd, r->socks[1], 1, 0);
      } else {
        close_fd(&r->socks[1]);
      }
      r->socks[1] = -1;
      if (r->out != NULL) outputs++;
    }
    return outputs;
  }

  if (r->socks[0] >= 0) {
    r->in = pump_start(r, r->socks[0], r->ends[0], 0, 0);
    r->socks[0] = r->ends[0] = -1;
  }
  if (r->socks[1] >= 0) {
    r->out = pump_start(r, r->ends[1], r->socks[1], 1, 1);
    r->socks[1] = r->ends[1] = -1;
    if (r->out != NULL) outputs++;
  }
  if (r->socks[2] >= 0) {
    r->err = pump_start(r, r->ends[2], r->socks[2], 1, 1);
    r->socks[2] = r->ends[2] = -1;
    if (r->err != NULL) outputs++;
  }
  return outputs;
}

void hcsb__grelay_process_exited(hcsb__grelay_t *r) {
  /* The GCS's CloseRead on stdin: late input is not wanted any more. */
  if (r->in != NULL) pump_finish(r->in);
}

int hcsb__grelay_resize(hcsb__grelay_t *r, uint16_t rows, uint16_t cols) {
  struct winsize ws;

  if (r == NULL || r->mode != HCSB__GRELAY_TTY) return -ENOTTY;
  if (r->master < 0) return 0; /* closed: the GCS ignores the resize */
  memset(&ws, 0, sizeof ws);
  ws.ws_row = rows;
  ws.ws_col = cols;
  if (ioctl(r->master, TIOCSWINSZ, &ws) < 0) return -errno;
  return 0;
}

int hcsb__grelay_is_tty(const hcsb__grelay_t *r) {
  return r != NULL && r->mode == HCSB__GRELAY_TTY;
}

void hcsb__grelay_close(hcsb__grelay_t *r) {
  int i;

  if (r == NULL) return;
  r->released = 1;
  if (r->in != NULL) pump_finish(r->in);
  if (r->out != NULL) pump_finish(r->out);
  if (r->err != NULL) pump_finish(r->err);
  for (i = 0; i < 3; i++) {
    close_fd(&r->socks[i]);
    close_fd(&r->ends[i]);
  }
  close_fd(&r->master);
  if (r->npumps == 0) relay_free(r);
}

/* ------------------------------------------------------------------------ */
/* Relays whose child ends exist before the sockets do (the acting
 * backend: runc create makes the container's init long before the
 * ExecuteProcess that starts it brings the stdio connections, and a pty
 * master arrives from runc). */

int hcsb__grelay_new_pipes(hcsb__guest_t *g, hcsb__grelay_t **out,
                           int child_fds[3]) {
  hcsb__grelay_t *r = calloc(1, sizeof *r);
  int i, pfd[2];

  *out = NULL;
  for (i = 0; i < 3; i++) child_fds[i] = -1;
  if (r == NULL) return -ENOMEM;
  r->g = g;
  r->mode = HCSB__GRELAY_PIPES;
  r->master = -1;
  for (i = 0; i < 3; i++) r->socks[i] = r->ends[i] = -1;
  for (i = 0; i < 3; i++) {
    if (pipe2(pfd, O_CLOEXEC) < 0) {
      int err = -errno;
      hcsb__grelay_discard_child_fds(child_fds, -1);
      relay_free(r);
      return err;
    }
    child_fds[i] = pfd[i == 0 ? 0 : 1];
    r->ends[i] = pfd[i == 0 ? 1 : 0];
  }
  *out = r;
  return 0;
}

int hcsb__grelay_new_master(hcsb__guest_t *g, int master,
                            hcsb__grelay_t **out) {
  hcsb__grelay_t *r = calloc(1, sizeof *r);
  int i;

  *out = NULL;
  if (r == NULL) {
    close(master);
    return -ENOMEM;
  }
  r->g = g;
  r->mode = HCSB__GRELAY_TTY;
  r->master = master;
  fcntl(master, F_SETFD, FD_CLOEXEC);
  for (i = 0; i < 3; i++) r->socks[i] = r->ends[i] = -1;
  *out = r;
  return 0;
}

void hcsb__grelay_attach(hcsb__grelay_t *r, int socks[3]) {
  int i;

  for (i = 0; i < 3; i++) {
    close_fd(&r->socks[i]);
    r->socks[i] = socks[i];
    socks[i] = -1;
    /* The GCS's CloseUnusedPipes: no stdin connection is EOF for the
     * child, no output connection makes its writes fail (EPIPE). */
    if (r->mode == HCSB__GRELAY_PIPES && r->socks[i] < 0) close_fd(&r->ends[i]);
  }
}
