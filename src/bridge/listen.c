/* Listeners: the host listens, the guest dials (protocol.md §2.1).
 *
 * AF_UNIX: the listening socket opened as a uv_pipe_t and accepted by
 * libuv (uv_listen, uv_accept): no descriptor checks per listener or per
 * connection, which a host starting thousands of stdio relays pays for
 * (ten fewer system calls per process and stream).  In a directory only we
 * can write to, libuv also creates the socket and removes its file
 * (uv_pipe_bind): see dir_is_private() for why that is as safe as the
 * per-file check made elsewhere.  AF_VSOCK: watched with
 * uv_poll_t and accept4() by hand, since the peer's CID must be checked
 * before anything is handed out; each connection adopted into a uv_pipe_t. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#ifdef HAVE_LINUX_VM_SOCKETS_H
#include <linux/vm_sockets.h>
#endif

#include "bridge/sock.h"

#define BACKLOG 16

struct hcsb__listener_s {
  union {
    uv_poll_t poll; /* AF_VSOCK */
    uv_pipe_t pipe; /* AF_UNIX; owns `fd` */
  } w;
  int is_pipe;
  int uv_owns_file; /* uv_pipe_bind: libuv unlinks `path` when closing */
  int failed;       /* a pipe's accept failed once: no more callbacks for it */
  uv_timer_t timer;
  int fd;
  int handles;
  int closing;
  int has_peer;
  uint32_t peer_cid;
  hcsb__accept_cb cb;
  void *data;
  hcsb__closed_cb closed_cb;
  void *closed_data;
  char path[HCSB_ADDR_PATH_MAX]; /* "" for vsock */
  dev_t dev;                     /* of our socket file: unlink only ours */
  ino_t ino;
};

static int peer_allowed(const hcsb__listener_t *l,
                        const struct sockaddr_storage *ss) {
#ifdef HAVE_LINUX_VM_SOCKETS_H
  if (l->has_peer) {
    const struct sockaddr_vm *svm = (const struct sockaddr_vm *)ss;
    return ss->ss_family == AF_VSOCK && svm->svm_cid == l->peer_cid;
  }
#endif
  (void)l;
  (void)ss;
  return 1;
}

static int transient(int err) {
  return err == EINTR || err == ECONNABORTED || err == EPROTO || err == EPERM ||
         err == ENETDOWN || err == ENOPROTOOPT || err == EHOSTDOWN ||
         err == ENONET || err == EHOSTUNREACH || err == ENETUNREACH;
}

static void on_readable(uv_poll_t *p, int status, int events) {
  hcsb__listener_t *l = p->data;
  (void)events;
  if (status < 0) {
    uv_poll_stop(p);
    l->cb(l->data, l, status, NULL);
    return;
  }
  while (!l->closing) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (transient(errno)) continue;
      /* Out of descriptors or memory: the poll is level-triggered and would
       * spin, so this listener stops and says why. */
      int err = -errno;
      uv_poll_stop(p);
      l->cb(l->data, l, err, NULL);
      return;
    }
    if (!peer_allowed(l, &ss)) {
      close(fd);
      continue;
    }
    uv_stream_t *s;
    int rc = hcsb__stream_adopt(p->loop, fd, &s);
    if (rc != 0) {
      close(fd);
      l->cb(l->data, l, rc, NULL);
      continue;
    }
    uv_timer_stop(&l->timer); /* the timeout is for the first dial */
    l->cb(l->data, l, 0, s);
  }
}

static void on_timeout(uv_timer_t *t) {
  hcsb__listener_t *l = t->data;
  l->cb(l->data, l, -ETIMEDOUT, NULL);
}

static void unlink_ours(hcsb__listener_t *l) {
  struct stat st;
  if (l->uv_owns_file) return; /* uv_close() unlinks it */
  if (l->path[0] != '\0' && lstat(l->path, &st) == 0 && st.st_dev == l->dev &&
      st.st_ino == l->ino)
    unlink(l->path);
}

/* AF_UNIX: libuv accepted a connection (or failed to). */
static void on_connection(uv_stream_t *server, int status) {
  hcsb__listener_t *l = server->data;
  uv_pipe_t *c;
  int rc;
  if (l->closing || l->failed) return;
  if (status < 0) {
    /* libuv has already dealt with the connection (out of descriptors: it
     * accepted and closed it); report once, as the poll path does. */
    l->failed = 1;
    l->cb(l->data, l, status, NULL);
    return;
  }
  c = malloc(sizeof *c);
  if (c == NULL) {
    rc = -ENOMEM;
  } else if ((rc = uv_pipe_init(server->loop, c, 0)) != 0) {
    free(c);
  } else if ((rc = uv_accept(server, (uv_stream_t *)c)) != 0) {
    hcsb__stream_close((uv_stream_t *)c);
  }
  if (rc != 0) {
    /* The connection stays with libuv, which stops accepting until the
     * listener closes (and then closes it). */
    l->failed = 1;
    l->cb(l->data, l, rc, NULL);
    return;
  }
  uv_timer_stop(&l->timer); /* the timeout is for the first dial */
  l->cb(l->data, l, 0, (uv_stream_t *)c);
}

static void on_closed(uv_handle_t *h) {
  hcsb__listener_t *l = h->data;
  if (--l->handles > 0) return;
  if (!l->is_pipe) close(l->fd); /* a pipe closed its own */
  hcsb__closed_cb cb = l->closed_cb;
  void *data = l->closed_data;
  free(l);
  if (cb != NULL) cb(data);
}

void hcsb__listener_close_cb(hcsb__listener_t *l, hcsb__closed_cb cb,
                             void *data) {
  if (l == NULL || l->closing) return;
  l->closing = 1;
  l->closed_cb = cb;
  l->closed_data = data;
  unlink_ours(l);
  uv_close(l->is_pipe ? (uv_handle_t *)&l->w.pipe : (uv_handle_t *)&l->w.poll,
           on_closed);
  uv_close((uv_handle_t *)&l->timer, on_closed);
}

void hcsb__listener_close(hcsb__listener_t *l) {
  hcsb__listener_close_cb(l, NULL, NULL);
}

const char *hcsb__listener_path(const hcsb__listener_t *l) {
  return l->path;
}

static void free_data(uv_handle_t *h) {
  free(h->data);
}

static int watch(uv_loop_t *loop, hcsb__listener_t *l, uint32_t timeout_ms,
                 hcsb__listener_t **out);

/* Takes ownership of the listening socket `fd` (closed on failure);
 * `unix_sock`: an AF_UNIX socket, accepted through libuv. */
static int start(uv_loop_t *loop, int fd, int unix_sock, uint32_t timeout_ms,
                 hcsb__accept_cb cb, void *data, hcsb__listener_t **out) {
  hcsb__listener_t *l = calloc(1, sizeof *l);
  uv_handle_t *w;
  if (l == NULL) {
    close(fd);
    return -ENOMEM;
  }
  l->fd = fd;
  l->cb = cb;
  l->data = data;
  l->is_pipe = unix_sock;
  int rc;
  if (unix_sock) {
    w = (uv_handle_t *)&l->w.pipe;
    rc = uv_pipe_init(loop, &l->w.pipe, 0);
    if (rc != 0) {
      close(fd);
      free(l);
      return rc;
    }
    rc = uv_pipe_open(&l->w.pipe, fd);
    if (rc != 0) {
      /* It did not take the descriptor; the handle still needs closing. */
      close(fd);
      w->data = l;
      uv_close(w, free_data);
      return rc;
    }
  } else {
    w = (uv_handle_t *)&l->w.poll;
    rc = uv_poll_init_socket(loop, &l->w.poll, fd);
    if (rc != 0) {
      close(fd);
      free(l);
      return rc;
    }
  }
  w->data = l;
  return watch(loop, l, timeout_ms, out);
}

/* The timer and the watch, common to every listener: `l` has its watcher
 * initialised (its data set) around a socket; on failure everything is
 * closed, and freed from the loop. */
static int watch(uv_loop_t *loop, hcsb__listener_t *l, uint32_t timeout_ms,
                 hcsb__listener_t **out) {
  uv_handle_t *w =
      l->is_pipe ? (uv_handle_t *)&l->w.pipe : (uv_handle_t *)&l->w.poll;
  int rc = uv_timer_init(loop, &l->timer);
  if (rc != 0) {
    /* Only the watcher to close; its callback frees (and closes fd). */
    l->handles = 1;
    l->closing = 1;
    unlink_ours(l);
    uv_close(w, on_closed);
    return rc;
  }
  l->timer.data = l;
  l->handles = 2;
  if (l->is_pipe)
    rc = uv_listen((uv_stream_t *)&l->w.pipe, BACKLOG, on_connection);
  else
    rc = uv_poll_start(&l->w.poll, UV_READABLE, on_readable);
  if (rc == 0 && timeout_ms != 0)
    rc = uv_timer_start(&l->timer, on_timeout, timeout_ms, 0);
  if (rc != 0) {
    hcsb__listener_close(l);
    return rc;
  }
  *out = l;
  return 0;
}

/* A socket file nobody listens on any more can go; a live one stays. */
static int clear_stale(const char *path, const struct sockaddr_storage *ss,
                       socklen_t len) {
  struct stat st;
  if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -errno;
  if (!S_ISSOCK(st.st_mode)) return -EADDRINUSE;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int live =
      connect(fd, (const struct sockaddr *)ss, len) == 0 || errno == EAGAIN;
  close(fd);
  if (live) return -EADDRINUSE;
  return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
}

/* Whether the directory of `path` is one only our user can add files to or
 * remove them from: a real directory (not a symlink), owned by our effective
 * user, writable by neither group nor others.  The library's own relay
 * directory (mkdtemp, 0700) is one.
 *
 * Why this replaces the per-file check.  Elsewhere a listener records its
 * socket file's device and inode after bind and, when closing, removes the
 * file only if it is still that one (two lstat() calls per listener): in a
 * directory others can write to, someone may have removed ours and put
 * theirs in its place.  Here nobody but our own user can, and our own
 * listeners never do: bind() refuses a path that exists, and clear_stale()
 * leaves a file alone while anyone listens on it, so while a listener lives
 * its file is its own, and it removes it (before closing the socket) once.
 * One check of the directory covers every listener in it.
 *
 * The answer is kept, per thread, while the loop's time stays the same
 * (uv_now(), in milliseconds, moves once per loop turn): a process start's
 * streams, and the batch of starts a caller makes in one callback, share
 * one lstat() of their directory.  A directory whose mode changes is seen
 * as changed from the next millisecond of loop time on. */
static int dir_is_private(uv_loop_t *loop, const char *path) {
  static _Thread_local struct {
    uv_loop_t *loop;
    uint64_t now;
    int priv;
    char dir[HCSB_ADDR_PATH_MAX];
  } seen;
  char dir[HCSB_ADDR_PATH_MAX];
  struct stat st;
  hcsb__dirname(path, dir, sizeof dir);
  uint64_t now = uv_now(loop);
  if (seen.loop == loop && seen.now == now && strcmp(seen.dir, dir) == 0)
    return seen.priv;
  int priv = lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
             st.st_uid == geteuid() && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
  seen.loop = loop;
  seen.now = now;
  seen.priv = priv;
  snprintf(seen.dir, sizeof seen.dir, "%s", dir);
  return priv;
}

/* A listener in a private directory: libuv makes the socket (with
 * SOCK_NONBLOCK | SOCK_CLOEXEC, so no fcntl() or ioctl() after it), binds
 * it, and removes its file when the handle closes, before closing the
 * socket.  Three system calls fewer per listener than the path below, and
 * none of the two lstat() calls. */
static int listen_private(uv_loop_t *loop, const char *path,
                          const struct sockaddr_storage *ss, socklen_t len,
                          uint32_t timeout_ms, hcsb__accept_cb cb, void *data,
                          hcsb__listener_t **out) {
  hcsb__listener_t *l = calloc(1, sizeof *l);
  if (l == NULL) return -ENOMEM;
  int rc = uv_pipe_init(loop, &l->w.pipe, 0);
  if (rc != 0) {
    free(l);
    return rc;
  }
  l->w.pipe.data = l;
  /* A file in the way is looked at only when there is one. */
  rc = uv_pipe_bind(&l->w.pipe, path);
  if (rc == UV_EADDRINUSE && (rc = clear_stale(path, ss, len)) == 0)
    rc = uv_pipe_bind(&l->w.pipe, path);
  if (rc != 0) {
    /* Not bound: no file, no descriptor; closing the handle frees `l`. */
    uv_close((uv_handle_t *)&l->w.pipe, free_data);
    return rc;
  }
  l->fd = -1; /* libuv's own */
  l->cb = cb;
  l->data = data;
  l->is_pipe = 1;
  l->uv_owns_file = 1;
  snprintf(l->path, sizeof l->path, "%s", path);
  return watch(loop, l, timeout_ms, out);
}

int hcsb__listen_unix(uv_loop_t *loop, const char *path, uint32_t timeout_ms,
                      hcsb__accept_cb cb, void *data, hcsb__listener_t **out) {
  struct sockaddr_storage ss;
  socklen_t len;
  int rc = hcsb__sockaddr_unix(&ss, &len, path);
  if (rc != 0) return rc;
  if (dir_is_private(loop, path))
    return listen_private(loop, path, &ss, len, timeout_ms, cb, data, out);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  struct stat st;

  /* A file in the way is looked at only when there is one. */
  rc = bind(fd, (struct sockaddr *)&ss, len) == 0 ? 0 : -errno;
  if (rc == -EADDRINUSE && (rc = clear_stale(path, &ss, len)) == 0)
    rc = bind(fd, (struct sockaddr *)&ss, len) == 0 ? 0 : -errno;
  if (rc != 0) {
    close(fd);
    return rc;
  }
  /* No listen() here: uv_listen() in start() makes it listen, before this
   * returns, so a guest told the path right after may dial. */
  if (lstat(path, &st) != 0) {
    rc = -errno;
    unlink(path);
    close(fd);
    return rc;
  }
  rc = start(loop, fd, 1, timeout_ms, cb, data, out);
  if (rc != 0) {
    unlink(path);
    return rc;
  }
  snprintf((*out)->path, sizeof(*out)->path, "%s", path);
  (*out)->dev = st.st_dev;
  (*out)->ino = st.st_ino;
  return 0;
}

int hcsb__listen_vsock(uv_loop_t *loop, uint32_t cid, uint32_t port,
                       int has_peer, uint32_t peer_cid, uint32_t timeout_ms,
                       hcsb__accept_cb cb, void *data, hcsb__listener_t **out) {
#ifdef HAVE_LINUX_VM_SOCKETS_H
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return errno == EINVAL || errno == EPROTONOSUPPORT ? -EAFNOSUPPORT : -errno;
  struct sockaddr_vm svm;
  memset(&svm, 0, sizeof svm);
  svm.svm_family = AF_VSOCK;
  svm.svm_cid = cid; /* HCSB_VSOCK_CID_ANY == VMADDR_CID_ANY */
  svm.svm_port = port;
  if (bind(fd, (struct sockaddr *)&svm, sizeof svm) != 0 ||
      listen(fd, BACKLOG) != 0) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  int rc = start(loop, fd, 0, timeout_ms, cb, data, out);
  if (rc == 0) {
    (*out)->has_peer = has_peer;
    (*out)->peer_cid = peer_cid;
  }
  return rc;
#else
  (void)loop, (void)cid, (void)port, (void)has_peer, (void)peer_cid;
  (void)timeout_ms, (void)cb, (void)data, (void)out;
  return -EAFNOSUPPORT;
#endif
}

/* The stdio directory of a Unix-socket transport: given, or the bridge
 * socket's own directory. */
static int stdio_dir(const hcsb_addr_t *addr, char *out, size_t len) {
  if (addr->stdio_dir[0] != '\0') {
    snprintf(out, len, "%s", addr->stdio_dir);
    return 0;
  }
  if (addr->transport != HCSB_TRANSPORT_UNIX) return -EINVAL;
  hcsb__dirname(addr->path, out, len);
  return 0;
}

int hcsb__listen(uv_loop_t *loop, const hcsb_addr_t *addr, uint32_t port,
                 uint32_t timeout_ms, hcsb__accept_cb cb, void *data,
                 hcsb__listener_t **out) {
  if (loop == NULL || addr == NULL || cb == NULL || out == NULL) return -EINVAL;
  char dir[HCSB_ADDR_PATH_MAX];
  char path[HCSB_ADDR_PATH_MAX + 16];
  int n;
  switch (addr->transport) {
    case HCSB_TRANSPORT_VSOCK:
      return hcsb__listen_vsock(loop, addr->cid, port, addr->has_peer_cid,
                                addr->peer_cid, timeout_ms, cb, data, out);
    case HCSB_TRANSPORT_HVSOCK_HYBRID:
      n = snprintf(path, sizeof path, "%s_%u", addr->path, (unsigned)port);
      break;
    case HCSB_TRANSPORT_UNIX:
    case HCSB_TRANSPORT_FD:
    case HCSB_TRANSPORT_SPAWN:
      if (stdio_dir(addr, dir, sizeof dir) != 0) return -EINVAL;
      n = snprintf(path, sizeof path, "%s/%u.sock", dir, (unsigned)port);
      break;
    default:
      return -EINVAL;
  }
  if (n < 0 || (size_t)n >= HCSB_ADDR_PATH_MAX) return -ENAMETOOLONG;
  return hcsb__listen_unix(loop, path, timeout_ms, cb, data, out);
}
