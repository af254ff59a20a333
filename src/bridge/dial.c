/* Dialling: non-blocking connect() watched with uv_poll_t, then, for hybrid
 * vsock, the VMM's line handshake ("CONNECT <port>\n" -> "OK <n>\n").
 *
 * The reply is read with MSG_PEEK and only the bytes up to the newline are
 * consumed, so anything the guest sends right after "OK" stays in the socket
 * for the bridge.  The connected socket is handed over as a dup: closing a
 * uv_poll_t drops its descriptor from epoll, which must not happen to the
 * one the stream then reads from. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef HAVE_LINUX_VM_SOCKETS_H
#include <linux/vm_sockets.h>
#endif

#include "bridge/sock.h"

#define REPLY_MAX 32 /* "OK 4294967295\n" with room to spare */

enum { CONNECTING, SENDING, RECEIVING, DONE };

struct hcsb__dialer_s {
  uv_poll_t poll;
  uv_timer_t timer;
  int fd;
  int state;
  int handles;
  int closing;
  int early_error; /* connect() failed at once: reported from the timer */
  uint32_t hybrid_port;
  char req[32];
  size_t req_len, req_sent;
  char reply[REPLY_MAX];
  size_t reply_len;
  hcsb__dial_cb cb;
  void *data;
  hcsb__closed_cb closed_cb;
  void *closed_data;
};

static void finish(hcsb__dialer_t *d, int status) {
  if (d->state == DONE) return;
  d->state = DONE;
  uv_poll_stop(&d->poll);
  uv_timer_stop(&d->timer);
  uv_stream_t *s = NULL;
  if (status == 0) {
    int fd = fcntl(d->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      status = -errno;
    } else if ((status = hcsb__stream_adopt(d->poll.loop, fd, &s)) != 0) {
      close(fd);
    }
  }
  d->cb(d->data, status, s);
}

/* "OK <digits>\n" and nothing else. */
static int reply_ok(const char *s, size_t len) {
  if (len < 5 || memcmp(s, "OK ", 3) != 0 || s[len - 1] != '\n') return 0;
  for (size_t i = 3; i < len - 1; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

static void receive(hcsb__dialer_t *d) {
  char peek[REPLY_MAX];
  ssize_t n = recv(d->fd, peek, sizeof d->reply - d->reply_len, MSG_PEEK);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      finish(d, -errno);
    return;
  }
  if (n == 0) { /* the VMM hangs up when nothing listens on the port */
    finish(d, -ECONNREFUSED);
    return;
  }
  char *nl = memchr(peek, '\n', (size_t)n);
  size_t take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;
  if (recv(d->fd, d->reply + d->reply_len, take, 0) != (ssize_t)take) {
    finish(d, -EIO);
    return;
  }
  d->reply_len += take;
  if (nl != NULL)
    finish(d, reply_ok(d->reply, d->reply_len) ? 0 : -EPROTO);
  else if (d->reply_len == sizeof d->reply)
    finish(d, -EPROTO);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  hcsb__dialer_t *d = p->data;
  (void)events;
  if (status < 0) {
    finish(d, status);
    return;
  }
  if (d->state == CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      finish(d, -err);
      return;
    }
    if (d->hybrid_port == 0) {
      finish(d, 0);
      return;
    }
    d->state = SENDING;
  }
  if (d->state == SENDING) {
    ssize_t n = send(d->fd, d->req + d->req_sent, d->req_len - d->req_sent,
                     MSG_NOSIGNAL);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        finish(d, -errno);
      return;
    }
    d->req_sent += (size_t)n;
    if (d->req_sent < d->req_len) return;
    d->state = RECEIVING;
    uv_poll_start(&d->poll, UV_READABLE, on_poll);
    return;
  }
  if (d->state == RECEIVING) receive(d);
}

static void on_timer(uv_timer_t *t) {
  hcsb__dialer_t *d = t->data;
  finish(d, d->early_error ? d->early_error : -ETIMEDOUT);
}

static void on_closed(uv_handle_t *h);

static int dial(uv_loop_t *loop, int family, const struct sockaddr *sa,
                socklen_t len, uint32_t hybrid_port, uint32_t timeout_ms,
                hcsb__dial_cb cb, void *data, hcsb__dialer_t **out) {
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return errno == EINVAL && family != AF_UNIX ? -EAFNOSUPPORT : -errno;
  hcsb__dialer_t *d = calloc(1, sizeof *d);
  if (d == NULL) {
    close(fd);
    return -ENOMEM;
  }
  int rc = uv_poll_init_socket(loop, &d->poll, fd);
  if (rc != 0) {
    close(fd);
    free(d);
    return rc;
  }
  d->fd = fd;
  d->cb = cb;
  d->data = data;
  d->hybrid_port = hybrid_port;
  if (hybrid_port != 0)
    d->req_len =
        (size_t)snprintf(d->req, sizeof d->req, "CONNECT %u\n", hybrid_port);
  d->poll.data = d;
  rc = uv_timer_init(loop, &d->timer);
  if (rc != 0) {
    /* Only the poll handle to close; its callback closes fd and frees. */
    d->handles = 1;
    d->closing = 1;
    uv_close((uv_handle_t *)&d->poll, on_closed);
    return rc;
  }
  d->timer.data = d;
  d->handles = 2;
  d->state = CONNECTING;

  /* The result is always reported from the loop, even when connect()
   * already knows it. */
  if (connect(fd, sa, len) != 0 && errno != EINPROGRESS) {
    d->early_error = errno == EAGAIN ? -ECONNREFUSED : -errno;
    uv_timer_start(&d->timer, on_timer, 0, 0);
  } else {
    uv_poll_start(&d->poll, UV_WRITABLE, on_poll);
    if (timeout_ms != 0) uv_timer_start(&d->timer, on_timer, timeout_ms, 0);
  }
  *out = d;
  return 0;
}

int hcsb__dial_unix(uv_loop_t *loop, const char *path, uint32_t hybrid_port,
                    uint32_t timeout_ms, hcsb__dial_cb cb, void *data,
                    hcsb__dialer_t **out) {
  struct sockaddr_storage ss;
  socklen_t len;
  int rc = hcsb__sockaddr_unix(&ss, &len, path);
  if (rc != 0) return rc;
  return dial(loop, AF_UNIX, (struct sockaddr *)&ss, len, hybrid_port,
              timeout_ms, cb, data, out);
}

int hcsb__dial_vsock(uv_loop_t *loop, uint32_t cid, uint32_t port,
                     uint32_t timeout_ms, hcsb__dial_cb cb, void *data,
                     hcsb__dialer_t **out) {
#ifdef HAVE_LINUX_VM_SOCKETS_H
  struct sockaddr_vm svm;
  memset(&svm, 0, sizeof svm);
  svm.svm_family = AF_VSOCK;
  svm.svm_cid = cid;
  svm.svm_port = port;
  return dial(loop, AF_VSOCK, (struct sockaddr *)&svm, sizeof svm, 0,
              timeout_ms, cb, data, out);
#else
  (void)loop, (void)cid, (void)port, (void)timeout_ms, (void)cb, (void)data;
  (void)out;
  return -EAFNOSUPPORT;
#endif
}

static void on_closed(uv_handle_t *h) {
  hcsb__dialer_t *d = h->data;
  if (--d->handles > 0) return;
  close(d->fd);
  hcsb__closed_cb cb = d->closed_cb;
  void *data = d->closed_data;
  free(d);
  if (cb != NULL) cb(data);
}

void hcsb__dialer_close(hcsb__dialer_t *d, hcsb__closed_cb cb, void *data) {
  if (d == NULL || d->closing) return;
  d->closing = 1;
  d->state = DONE;
  d->closed_cb = cb;
  d->closed_data = data;
  uv_close((uv_handle_t *)&d->poll, on_closed);
  uv_close((uv_handle_t *)&d->timer, on_closed);
}
