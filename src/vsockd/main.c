/* hcsb-vsockd: command line, sockets, eventfds and the loop (libuv).
 * Everything here is plumbing; the decisions are in conn.c and vhost.c. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "vsockd/vsockd.h"

static const char usage_text[] =
    "Usage: hcsb-vsockd --socket VHOST_USER_SOCKET --uds-path PATH\n"
    "                   --guest-cid N [--ready-fd FD] [--reconnect] [-v]\n"
    "\n"
    "A vhost-user backend for QEMU's vhost-user-vsock-pci device.  Guest\n"
    "connections to host port P are forwarded to the Unix socket PATH_P;\n"
    "a client of the Unix socket PATH writes \"CONNECT P\\n\" to reach guest\n"
    "port P and reads \"OK <host port>\\n\" (Firecracker's hybrid vsock).\n"
    "Serves one QEMU session and exits 0 when it ends (see --reconnect).\n"
    "\n"
    "  --socket PATH     vhost-user socket to create (QEMU -chardev socket)\n"
    "  --uds-path PATH   hybrid vsock socket to create; PATH_P are dialled\n"
    "  --guest-cid N     the guest's CID (3 and up), read by the guest driver\n"
    "  --ready-fd FD     write \"\\n\" to FD and close it once listening\n"
    "  --reconnect       keep serving: when the frontend goes away (or breaks\n"
    "                    the protocol) drop its state and wait for the next,\n"
    "                    e.g. QEMU with reconnect=; SIGTERM/SIGINT end it\n"
    "  -v, --verbose     log vhost-user messages and connection counts\n";

#define BUDGET 256    /* chains per ring per pass */
#define MSG_BUDGET 64 /* vhost-user messages per wakeup */
#define SWEEP_MS 1000

typedef struct app_s app_t;

typedef struct {
  uv_poll_t poll;
  app_t *app;
  unsigned idx;
} kick_t;

typedef struct {
  uv_pipe_t pipe;
  app_t *app;
  hcsb__vsd_conn_t *conn; /* NULL once conn.c let go of it */
} hostsock_t;

typedef struct {
  uv_write_t req;
  hostsock_t *hs;
  uint8_t *buf;
  size_t counted;
} wreq_t;

struct app_s {
  uv_loop_t *loop;
  const char *socket_path, *uds_path;
  int verbose, exit_code, stopping, reconnect;
  hcsb__vsd_dev_t dev;
  hcsb__vsd_vhost_t vh;
  int listen_fd, session_fd;
  uv_poll_t listen_poll, session_poll;
  int listen_open, session_open;
  uv_pipe_t uds;
  int uds_open;
  kick_t *kick[HCSB__VSD_NQUEUES];
  int broken_said[HCSB__VSD_NQUEUES];
  uv_timer_t sweep;
  uv_idle_t more;
  uv_signal_t sigterm, sigint;
  /* The vhost-user message being read. */
  uint8_t msg[HCSB__VSD_MSG_HDR + HCSB__VSD_MSG_MAX];
  size_t have;
  int fds[HCSB__VSD_MAX_FDS];
  unsigned nfds;
  /* The reply being sent, from out_off to out_len.  The frontend waits for
   * each reply before it sends what depends on it, so one is all we ever
   * owe: no message is read while it is pending, which bounds what a
   * frontend that stops reading can make us hold. */
  uint8_t out[HCSB__VSD_MSG_HDR + HCSB__VSD_MSG_MAX];
  size_t out_off, out_len;
  uint64_t kicks, calls, sessions;
};

static void fail(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "hcsb-vsockd: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

static void stop(app_t *a, int code);
static void on_more(uv_idle_t *h);

/* --- moving packets -------------------------------------------------- */

static void signal_guest(app_t *a, unsigned i) {
  uint64_t one = 1;
  if (a->vh.call_fd[i] < 0) return;
  a->calls++;
  if (write(a->vh.call_fd[i], &one, sizeof one) < 0 && errno != EAGAIN &&
      a->verbose)
    fprintf(stderr, "hcsb-vsockd: call fd %u: %s\n", i, strerror(errno));
}

static void pump(app_t *a) {
  int sig_tx = 0, sig_rx = 0;
  if (a->stopping) return;
  unsigned t =
      hcsb__vsd_pump_tx(&a->dev, &a->vh.vq[1], &a->vh.mem, BUDGET, &sig_tx);
  unsigned r =
      hcsb__vsd_pump_rx(&a->dev, &a->vh.vq[0], &a->vh.mem, BUDGET, &sig_rx);
  if (sig_tx) signal_guest(a, 1);
  if (sig_rx) signal_guest(a, 0);
  for (unsigned i = 0; i < HCSB__VSD_NQUEUES; i++) {
    /* Said once per breakage: the ring is not served until set up again. */
    if (a->vh.vq[i].broken && !a->broken_said[i])
      fprintf(stderr,
              "hcsb-vsockd: the guest broke ring %u (index or head "
              "out of range); it is no longer served\n",
              i);
    a->broken_said[i] = a->vh.vq[i].broken;
  }
  /* A full budget means there may be more: come back after other events. */
  if (t == BUDGET || (r == BUDGET && hcsb__vsd_rx_pending(&a->dev)))
    uv_idle_start(&a->more, on_more);
}

static void on_more(uv_idle_t *h) {
  app_t *a = h->data;
  uv_idle_stop(h);
  pump(a);
}

/* --- host sockets (conn.c's ops) ----------------------------------- */

static void on_hs_closed(uv_handle_t *h) {
  free(h->data);
}

static void hs_close(hostsock_t *hs) {
  hs->conn = NULL;
  uv_close((uv_handle_t *)&hs->pipe, on_hs_closed);
}

static hostsock_t *hs_new(app_t *a) {
  hostsock_t *hs = calloc(1, sizeof *hs);
  if (hs == NULL) return NULL;
  hs->app = a;
  uv_pipe_init(a->loop, &hs->pipe, 0);
  hs->pipe.data = hs;
  return hs;
}

static void on_connect(uv_connect_t *req, int status) {
  hostsock_t *hs = req->data;
  free(req);
  if (hs->conn == NULL) return;
  hcsb__vsd_host_connected(&hs->app->dev, hs->conn, status);
  pump(hs->app);
}

static int op_connect(void *ctx, hcsb__vsd_conn_t *c, uint32_t port) {
  app_t *a = ctx;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  int n = snprintf(path, sizeof path, "%s_%u", a->uds_path, (unsigned)port);
  if (n < 0 || (size_t)n >= sizeof path) return -ENAMETOOLONG;
  uv_connect_t *req = malloc(sizeof *req);
  hostsock_t *hs = req ? hs_new(a) : NULL;
  if (hs == NULL) {
    free(req);
    return -ENOMEM;
  }
  hs->conn = c;
  c->io = hs;
  req->data = hs;
  uv_pipe_connect(req, &hs->pipe, path, on_connect);
  return 0;
}

static void on_written(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  hostsock_t *hs = w->hs;
  size_t counted = w->counted;
  free(w->buf);
  free(w);
  if (hs->conn == NULL) return;
  if (status < 0)
    hcsb__vsd_host_error(&hs->app->dev, hs->conn);
  else
    hcsb__vsd_host_written(&hs->app->dev, hs->conn, counted);
  pump(hs->app);
}

static int op_write(void *ctx, hcsb__vsd_conn_t *c, uint8_t *buf, size_t len,
                    size_t counted) {
  hostsock_t *hs = c->io;
  wreq_t *w = malloc(sizeof *w);
  (void)ctx;
  if (w == NULL) {
    free(buf);
    return -ENOMEM;
  }
  w->hs = hs;
  w->buf = buf;
  w->counted = counted;
  uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
  int rc = uv_write(&w->req, (uv_stream_t *)&hs->pipe, &b, 1, on_written);
  if (rc != 0) {
    free(buf);
    free(w);
  }
  return rc;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status; /* a failed half-close shows up as a read or write error */
  free(req);
}

static void op_shutdown(void *ctx, hcsb__vsd_conn_t *c) {
  hostsock_t *hs = c->io;
  uv_shutdown_t *req = malloc(sizeof *req);
  (void)ctx;
  if (req != NULL &&
      uv_shutdown(req, (uv_stream_t *)&hs->pipe, on_shutdown) != 0)
    free(req);
}

/* The read side only: the write side stays open for the guest's data. */
static void op_shutdown_read(void *ctx, hcsb__vsd_conn_t *c) {
  hostsock_t *hs = c->io;
  uv_os_fd_t fd;
  (void)ctx;
  if (uv_fileno((uv_handle_t *)&hs->pipe, &fd) == 0) shutdown(fd, SHUT_RD);
}

/* Printable and on one line, whatever the client sent. */
static void op_refused(void *ctx, hcsb__vsd_conn_t *c, const char *why,
                       const uint8_t *line, size_t len) {
  char shown[4 * HCSB__VSD_LINE_MAX + 1];
  size_t n = 0;
  (void)ctx;
  (void)c;
  for (size_t i = 0; i < len && i < HCSB__VSD_LINE_MAX; i++) {
    uint8_t b = line[i];
    if (b == '\n')
      n += (size_t)snprintf(shown + n, sizeof shown - n, "\\n");
    else if (b == '"' || b == '\\' || b < 0x20 || b >= 0x7f)
      n += (size_t)snprintf(shown + n, sizeof shown - n, "\\x%02x", b);
    else
      shown[n++] = (char)b;
  }
  shown[n] = 0;
  fprintf(stderr, "hcsb-vsockd: host connection refused: %s: \"%s\"\n", why,
          shown);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  hostsock_t *hs = h->data;
  uint8_t *p = NULL;
  size_t len = 0;
  (void)suggested;
  if (hs->conn != NULL) hcsb__vsd_host_read_space(hs->conn, &p, &len);
  *buf = uv_buf_init((char *)p, (unsigned)len);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  hostsock_t *hs = s->data;
  app_t *a = hs->app;
  (void)buf;
  if (hs->conn == NULL || nread == 0) return;
  if (nread > 0)
    hcsb__vsd_host_read(&a->dev, hs->conn, (size_t)nread);
  else if (nread == UV_EOF)
    hcsb__vsd_host_eof(&a->dev, hs->conn);
  else /* UV_ENOBUFS (on_alloc found no room) is -ENOBUFS: not fatal */
    hcsb__vsd_host_read_failed(&a->dev, hs->conn, (int)nread);
  pump(a);
}

static void op_reading(void *ctx, hcsb__vsd_conn_t *c, int on) {
  hostsock_t *hs = c->io;
  (void)ctx;
  if (on)
    uv_read_start((uv_stream_t *)&hs->pipe, on_alloc, on_read);
  else
    uv_read_stop((uv_stream_t *)&hs->pipe);
}

static void op_close(void *ctx, hcsb__vsd_conn_t *c) {
  hostsock_t *hs = c->io;
  (void)ctx;
  c->io = NULL;
  if (hs != NULL) hs_close(hs);
}

_Static_assert(UV_ENOBUFS == -ENOBUFS, "conn.c gets libuv's read errors");

static const hcsb__vsd_ops_t ops = {op_connect,       op_write,   op_shutdown,
                                    op_shutdown_read, op_reading, op_refused,
                                    op_close};

static void on_uds_connection(uv_stream_t *server, int status) {
  app_t *a = server->data;
  if (status < 0) return;
  hostsock_t *hs = hs_new(a);
  if (hs == NULL) return;
  if (uv_accept(server, (uv_stream_t *)&hs->pipe) != 0) {
    hs_close(hs);
    return;
  }
  hs->conn = hcsb__vsd_host_accept(&a->dev, hs);
  if (hs->conn == NULL) hs_close(hs); /* at the connection cap */
}

/* --- vhost-user session -------------------------------------------- */

static void kick_closed(uv_handle_t *h) {
  free(h->data);
}

static void on_kick(uv_poll_t *p, int status, int events) {
  kick_t *k = p->data;
  app_t *a = k->app;
  uint64_t v;
  (void)events;
  if (status == 0 && read(a->vh.kick_fd[k->idx], &v, sizeof v) == sizeof v)
    a->kicks += v; /* an empty eventfd (EAGAIN) is fine: we look anyway */
  pump(a);
}

static void on_kick_closing(hcsb__vsd_vhost_t *vh, unsigned i) {
  app_t *a = vh->data;
  if (a->kick[i] == NULL) return;
  uv_close((uv_handle_t *)&a->kick[i]->poll, kick_closed);
  a->kick[i] = NULL;
}

static void on_ring_changed(hcsb__vsd_vhost_t *vh, unsigned i) {
  app_t *a = vh->data;
  if (a->kick[i] != NULL || vh->kick_fd[i] < 0 || a->stopping) return;
  /* A read of an empty blocking eventfd would stall everything. */
  int fl = fcntl(vh->kick_fd[i], F_GETFL);
  if (fl >= 0 && !(fl & O_NONBLOCK))
    fcntl(vh->kick_fd[i], F_SETFL, fl | O_NONBLOCK);
  kick_t *k = calloc(1, sizeof *k);
  if (k == NULL || uv_poll_init(a->loop, &k->poll, vh->kick_fd[i]) != 0) {
    free(k);
    fail("cannot watch the kick eventfd of ring %u", i);
  }
  k->app = a;
  k->idx = i;
  k->poll.data = k;
  uv_poll_start(&k->poll, UV_READABLE, on_kick);
  a->kick[i] = k;
}

static void on_vhost_reset(hcsb__vsd_vhost_t *vh) {
  app_t *a = vh->data;
  hcsb__vsd_dev_reset(&a->dev);
}

static void drop_fds(app_t *a) {
  for (unsigned i = 0; i < a->nfds; i++) close(a->fds[i]);
  a->nfds = 0;
}

static void on_session(uv_poll_t *p, int status, int events);
static void on_listen(uv_poll_t *p, int status, int events);

/* Sends what is left of the reply without waiting: 0 when it is all out
 * or the socket is full (out_len stays set until a later call), -errno
 * when the frontend cannot be written to. */
static int flush_reply(app_t *a) {
  while (a->out_off < a->out_len) {
    ssize_t n = send(a->session_fd, a->out + a->out_off,
                     a->out_len - a->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0)
      a->out_off += (size_t)n;
    else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 0;
    else if (n < 0 && errno != EINTR)
      return -errno;
  }
  a->out_off = a->out_len = 0;
  return 0;
}

static void on_session_closed(uv_handle_t *h) {
  app_t *a = h->data;
  close(a->session_fd);
  a->session_fd = -1;
  if (!a->stopping) uv_poll_start(&a->listen_poll, UV_READABLE, on_listen);
}

/* The frontend went away (code 0) or broke the protocol (1).  Alone, that
 * ends the run; with --reconnect everything it set up is dropped (host
 * connections included: the guest's view of them is gone with its rings)
 * and the next frontend is awaited. */
static void end_session(app_t *a, int code) {
  if (!a->reconnect) {
    stop(a, code);
    return;
  }
  if (!a->session_open) return;
  a->session_open = 0;
  hcsb__vsd_dev_reset(&a->dev);
  hcsb__vsd_vhost_free(&a->vh);
  drop_fds(a);
  a->have = 0;
  a->out_off = a->out_len = 0;
  for (unsigned i = 0; i < HCSB__VSD_NQUEUES; i++) a->broken_said[i] = 0;
  uv_close((uv_handle_t *)&a->session_poll, on_session_closed);
  if (a->verbose)
    fprintf(stderr, "hcsb-vsockd: frontend gone; waiting for the next\n");
}

/* Reads no further than the end of the current message, so the fds that
 * come with a message are never mixed up with the next one's. */
static void read_messages(app_t *a) {
  for (unsigned budget = MSG_BUDGET; budget > 0; budget--) {
    size_t want =
        a->have < HCSB__VSD_MSG_HDR
            ? HCSB__VSD_MSG_HDR - a->have
            : HCSB__VSD_MSG_HDR + hcsb__vsd_le32(a->msg + 8) - a->have;
    union {
      struct cmsghdr align;
      char buf[CMSG_SPACE(sizeof(int) * HCSB__VSD_MAX_FDS)];
    } ctl;
    struct iovec iov = {a->msg + a->have, want};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof ctl.buf;
    ssize_t n = recvmsg(a->session_fd, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) { /* the frontend went away: the session is over */
      if (n < 0 && a->verbose)
        fprintf(stderr, "hcsb-vsockd: frontend: %s\n", strerror(errno));
      end_session(a, 0);
      return;
    }
    int overflow = (mh.msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm;
         cm = CMSG_NXTHDR(&mh, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
      unsigned k = (unsigned)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      int *fds = (int *)CMSG_DATA(cm);
      for (unsigned i = 0; i < k; i++) {
        if (a->nfds < HCSB__VSD_MAX_FDS)
          a->fds[a->nfds++] = fds[i];
        else {
          close(fds[i]);
          overflow = 1;
        }
      }
    }
    a->have += (size_t)n;
    if (a->have == HCSB__VSD_MSG_HDR &&
        hcsb__vsd_le32(a->msg + 8) > HCSB__VSD_MSG_MAX) {
      fprintf(stderr, "hcsb-vsockd: vhost-user message too large (%u bytes)\n",
              hcsb__vsd_le32(a->msg + 8));
      end_session(a, 1);
      return;
    }
    if (overflow) {
      fprintf(stderr, "hcsb-vsockd: too many fds in one vhost-user message\n");
      end_session(a, 1);
      return;
    }
    if (a->have < HCSB__VSD_MSG_HDR ||
        a->have < HCSB__VSD_MSG_HDR + hcsb__vsd_le32(a->msg + 8))
      continue;
    size_t out_len = 0;
    unsigned nfds = a->nfds;
    a->nfds = 0; /* handed over: vhost.c keeps or closes each */
    int rc = hcsb__vsd_vhost_handle(&a->vh, a->msg, a->have, a->fds, nfds,
                                    a->out, &out_len);
    uint32_t req = hcsb__vsd_le32(a->msg);
    a->have = 0;
    if (rc != 0) {
      fprintf(stderr, "hcsb-vsockd: malformed vhost-user message %s (%u)\n",
              hcsb__vsd_vhost_name(req), req);
      end_session(a, 1);
      return;
    }
    pump(a);
    if (out_len > 0) {
      a->out_off = 0;
      a->out_len = out_len;
      if ((rc = flush_reply(a)) != 0) {
        fprintf(stderr, "hcsb-vsockd: cannot reply to the frontend: %s\n",
                strerror(-rc));
        end_session(a, 1);
        return;
      }
      if (a->out_len > 0) { /* its socket is full: wait for room */
        uv_poll_start(&a->session_poll, UV_WRITABLE | UV_DISCONNECT,
                      on_session);
        return;
      }
    }
    if (!a->session_open) return;
  }
}

static void on_session(uv_poll_t *p, int status, int events) {
  app_t *a = p->data;
  (void)events;
  if (status < 0) {
    end_session(a, 0);
    return;
  }
  if (a->out_len > 0) {
    int rc = flush_reply(a);
    if (rc != 0) {
      if (a->verbose)
        fprintf(stderr, "hcsb-vsockd: frontend: %s\n", strerror(-rc));
      end_session(a, 0);
      return;
    }
    if (a->out_len > 0) return;
    uv_poll_start(&a->session_poll, UV_READABLE | UV_DISCONNECT, on_session);
  }
  read_messages(a);
}

static void on_listen(uv_poll_t *p, int status, int events) {
  app_t *a = p->data;
  (void)events;
  if (status < 0) return;
  int fd = accept4(a->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return;
  if (a->reconnect) {
    /* One frontend at a time; the next waits in the backlog. */
    uv_poll_stop(&a->listen_poll);
  } else {
    /* One frontend per run: stop listening before serving it. */
    uv_close((uv_handle_t *)&a->listen_poll, NULL);
    a->listen_open = 0;
    close(a->listen_fd);
    a->listen_fd = -1;
  }
  a->session_fd = fd;
  a->sessions++;
  uv_poll_init(a->loop, &a->session_poll, fd);
  a->session_poll.data = a;
  a->session_open = 1;
  uv_poll_start(&a->session_poll, UV_READABLE | UV_DISCONNECT, on_session);
  if (a->verbose) fprintf(stderr, "hcsb-vsockd: frontend connected\n");
}

/* --- start and stop ------------------------------------------------ */

static void on_sweep(uv_timer_t *t) {
  app_t *a = t->data;
  hcsb__vsd_sweep(&a->dev, uv_now(a->loop));
  pump(a);
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  stop(s->data, 0);
}

static void stop(app_t *a, int code) {
  if (a->stopping) return;
  a->stopping = 1;
  a->exit_code = code;
  hcsb__vsd_dev_reset(&a->dev);
  for (unsigned i = 0; i < HCSB__VSD_NQUEUES; i++) on_kick_closing(&a->vh, i);
  if (a->listen_open) uv_close((uv_handle_t *)&a->listen_poll, NULL);
  if (a->session_open) uv_close((uv_handle_t *)&a->session_poll, NULL);
  if (a->uds_open) uv_close((uv_handle_t *)&a->uds, NULL);
  uv_close((uv_handle_t *)&a->sweep, NULL);
  uv_close((uv_handle_t *)&a->more, NULL);
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  a->listen_open = a->session_open = a->uds_open = 0;
}

/* Removes a stale socket left by an earlier run, never anything else. */
static void unlink_stale(const char *path) {
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path);
}

static int listen_unix(const char *path) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) return -ENAMETOOLONG;
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  unlink_stale(path);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  return fd;
}

static unsigned long parse_num(const char *opt, const char *s,
                               unsigned long max) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-' || v > max)
    fail("bad %s: %s", opt, s);
  return v;
}

int main(int argc, char **argv) {
  static app_t app;
  app_t *a = &app;
  unsigned long cid = 0;
  int ready_fd = -1, rc;

  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
      fputs(usage_text, stdout);
      return 0;
    }
    if (strcmp(o, "-v") == 0 || strcmp(o, "--verbose") == 0) {
      a->verbose = 1;
      continue;
    }
    if (strcmp(o, "--reconnect") == 0) {
      a->reconnect = 1;
      continue;
    }
    if (i + 1 >= argc) fail("%s needs a value (see --help)", o);
    const char *v = argv[++i];
    if (strcmp(o, "--socket") == 0)
      a->socket_path = v;
    else if (strcmp(o, "--uds-path") == 0)
      a->uds_path = v;
    else if (strcmp(o, "--guest-cid") == 0)
      cid = parse_num(o, v, 0xfffffffeul);
    else if (strcmp(o, "--ready-fd") == 0)
      ready_fd = (int)parse_num(o, v, INT_MAX);
    else
      fail("unknown option %s (see --help)", o);
  }
  if (a->socket_path == NULL || a->uds_path == NULL || cid == 0)
    fail("--socket, --uds-path and --guest-cid are required (see --help)");
  if (cid < 3) fail("bad --guest-cid: %lu (0-2 are reserved)", cid);
  /* PATH_4294967295 must still fit in sun_path. */
  if (strlen(a->uds_path) + 11 >= sizeof(((struct sockaddr_un *)0)->sun_path))
    fail("--uds-path too long: %s", a->uds_path);

  signal(SIGPIPE, SIG_IGN);
  a->loop = uv_default_loop();
  a->listen_fd = a->session_fd = -1;
  a->listen_fd = listen_unix(a->socket_path);
  if (a->listen_fd < 0)
    fail("cannot listen on %s: %s", a->socket_path, strerror(-a->listen_fd));
  uv_poll_init(a->loop, &a->listen_poll, a->listen_fd);
  a->listen_poll.data = a;
  a->listen_open = 1;
  uv_poll_start(&a->listen_poll, UV_READABLE, on_listen);

  uv_pipe_init(a->loop, &a->uds, 0);
  a->uds.data = a;
  a->uds_open = 1;
  unlink_stale(a->uds_path);
  if ((rc = uv_pipe_bind(&a->uds, a->uds_path)) != 0 ||
      (rc = uv_listen((uv_stream_t *)&a->uds, 128, on_uds_connection)) != 0)
    fail("cannot listen on %s: %s", a->uds_path, uv_strerror(rc));

  hcsb__vsd_dev_init(&a->dev, cid, &ops, a);
  hcsb__vsd_vhost_init(&a->vh, cid);
  a->vh.data = a;
  a->vh.verbose = a->verbose;
  a->vh.ring_changed = on_ring_changed;
  a->vh.kick_closing = on_kick_closing;
  a->vh.reset = on_vhost_reset;
  uv_timer_init(a->loop, &a->sweep);
  a->sweep.data = a;
  uv_timer_start(&a->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
  uv_idle_init(a->loop, &a->more);
  a->more.data = a;
  uv_signal_init(a->loop, &a->sigterm);
  uv_signal_init(a->loop, &a->sigint);
  a->sigterm.data = a->sigint.data = a;
  uv_signal_start(&a->sigterm, on_signal, SIGTERM);
  uv_signal_start(&a->sigint, on_signal, SIGINT);

  if (ready_fd >= 0) {
    if (write(ready_fd, "\n", 1) != 1)
      fail("cannot write to --ready-fd %d: %s", ready_fd, strerror(errno));
    close(ready_fd);
  }
  uv_run(a->loop, UV_RUN_DEFAULT);
  uv_run(a->loop, UV_RUN_DEFAULT); /* close callbacks */
  if (a->verbose)
    fprintf(stderr,
            "hcsb-vsockd: exiting: %llu guest packets, %llu host packets, "
            "%llu bad, %llu credit violations, %llu refused, %llu bad "
            "CONNECT lines; %llu kicks, %llu interrupts; %llu sessions\n",
            (unsigned long long)a->dev.stats.guest_pkts,
            (unsigned long long)a->dev.stats.host_pkts,
            (unsigned long long)a->dev.stats.bad_pkts,
            (unsigned long long)a->dev.stats.credit_violations,
            (unsigned long long)a->dev.stats.refused_conns,
            (unsigned long long)a->dev.stats.bad_lines,
            (unsigned long long)a->kicks, (unsigned long long)a->calls,
            (unsigned long long)a->sessions);
  drop_fds(a);
  if (a->session_fd >= 0) close(a->session_fd);
  if (a->listen_fd >= 0) close(a->listen_fd);
  hcsb__vsd_vhost_free(&a->vh);
  unlink_stale(a->uds_path);
  unlink_stale(a->socket_path);
  uv_loop_close(a->loop);
  return a->exit_code;
}
