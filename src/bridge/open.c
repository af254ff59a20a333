/* Opening the bridge stream named by an address: accept one dial, dial,
 * adopt a descriptor, or spawn a guest.  The opener also owns what must
 * outlive that moment: a spawned child and its private stdio directory. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge/sock.h"

struct hcsb__opener_s {
  uv_loop_t *loop;
  hcsb_addr_t addr; /* defaults resolved */
  hcsb__open_cb cb;
  void *data;
  hcsb__listener_t *listener;
  hcsb__dialer_t *dialer;
  hcsb__child_t *child;
  uv_stream_t *early; /* fd:// and spawn: delivered on the next turn */
  uv_timer_t defer;
  int delivered;
  int closing;
  int busy; /* closes still to complete */
  int own_dir;
  hcsb__closed_cb closed_cb;
  void *closed_data;
  /* The spawned guest's end, kept after the child is gone. */
  int spawned, exited, exit_status, term_signal;
  hcsb__closed_cb await_cb; /* hcsb__opener_await_exit */
  void *await_data;
};

static void deliver(hcsb__opener_t *o, int status, uv_stream_t *s) {
  if (o->delivered || o->closing) {
    hcsb__stream_close(s);
    return;
  }
  o->delivered = 1;
  o->cb(o->data, status, s);
}

static void on_accept(void *data, hcsb__listener_t *l, int status,
                      uv_stream_t *s) {
  hcsb__opener_t *o = data;
  /* One bridge connection per listen (protocol.md §2.1). */
  hcsb__listener_close(l);
  o->listener = NULL;
  deliver(o, status, s);
}

static void on_dial(void *data, int status, uv_stream_t *s) {
  hcsb__opener_t *o = data;
  hcsb__dialer_close(o->dialer, NULL, NULL);
  o->dialer = NULL;
  deliver(o, status, s);
}

static void on_defer(uv_timer_t *t) {
  hcsb__opener_t *o = t->data;
  uv_stream_t *s = o->early;
  o->early = NULL;
  deliver(o, 0, s);
}

static void rm_private_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d != NULL) {
    struct dirent *e;
    char path[HCSB_ADDR_PATH_MAX + 260];
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
}

/* A directory only we can use, for relay sockets of a spawned guest. */
static int make_private_dir(char *out, size_t len) {
  const char *base = getenv("TMPDIR");
  for (int attempt = 0; attempt < 2; attempt++) {
    if (attempt == 1 || base == NULL || base[0] == '\0') base = "/tmp";
    /* Leave room for "/<port>.sock" under the sun_path limit. */
    int n = snprintf(out, len, "%s/hcsb-XXXXXX", base);
    if (n < 0 || (size_t)n + 16 >= len) continue;
    if (mkdtemp(out) != NULL) return 0;
    if (attempt == 1) return -errno;
  }
  return -ENAMETOOLONG;
}

static void await_end(hcsb__opener_t *o) {
  hcsb__closed_cb cb = o->await_cb;
  o->await_cb = NULL;
  if (cb == NULL) return;
  uv_timer_stop(&o->defer);
  cb(o->await_data);
}

static void on_child_exit(void *data, int64_t status, int signo) {
  hcsb__opener_t *o = data;
  o->exited = 1;
  o->term_signal = signo;
  o->exit_status = signo != 0 ? 0 : (int)status;
  await_end(o);
}

static void on_await_timeout(uv_timer_t *t) {
  await_end(t->data);
}

static int open_spawn(hcsb__opener_t *o) {
  if (o->addr.stdio_dir[0] == '\0') {
    int rc = make_private_dir(o->addr.stdio_dir, sizeof o->addr.stdio_dir);
    if (rc != 0) return rc;
    o->own_dir = 1;
  }
  int fd;
  int rc = hcsb__child_spawn(o->loop, o->addr.command, o->addr.stdio_dir, &fd,
                             &o->child);
  if (rc != 0) return rc;
  o->spawned = 1;
  hcsb__child_on_exit(o->child, on_child_exit, o);
  rc = hcsb__stream_adopt(o->loop, fd, &o->early);
  if (rc != 0) close(fd); /* the child sees EOF; shutdown reaps it */
  return rc;
}

static int start(hcsb__opener_t *o) {
  const hcsb_addr_t *a = &o->addr;
  uint32_t t = a->timeout_ms;
  char path[HCSB_ADDR_PATH_MAX + 16];
  switch (a->transport) {
    case HCSB_TRANSPORT_VSOCK:
      if (a->listen)
        return hcsb__listen_vsock(o->loop, a->cid, a->port, a->has_peer_cid,
                                  a->peer_cid, t, on_accept, o, &o->listener);
      return hcsb__dial_vsock(o->loop, a->cid, a->port, t, on_dial, o,
                              &o->dialer);
    case HCSB_TRANSPORT_HVSOCK_HYBRID:
      if (!a->listen)
        return hcsb__dial_unix(o->loop, a->path, a->port, t, on_dial, o,
                               &o->dialer);
      /* The guest dials the host port; the VMM connects to <path>_<port>. */
      if ((size_t)snprintf(path, sizeof path, "%s_%u", a->path,
                           (unsigned)a->port) >= HCSB_ADDR_PATH_MAX)
        return -ENAMETOOLONG;
      return hcsb__listen_unix(o->loop, path, t, on_accept, o, &o->listener);
    case HCSB_TRANSPORT_UNIX:
      if (o->addr.stdio_dir[0] == '\0')
        hcsb__dirname(a->path, o->addr.stdio_dir, sizeof o->addr.stdio_dir);
      if (a->listen)
        return hcsb__listen_unix(o->loop, a->path, t, on_accept, o,
                                 &o->listener);
      return hcsb__dial_unix(o->loop, a->path, 0, t, on_dial, o, &o->dialer);
    case HCSB_TRANSPORT_FD:
      return hcsb__stream_adopt(o->loop, a->fd, &o->early);
    case HCSB_TRANSPORT_SPAWN:
      return open_spawn(o);
    default:
      return -EINVAL;
  }
}

static void release(hcsb__opener_t *o) {
  if (--o->busy > 0) return;
  if (o->own_dir) rm_private_dir(o->addr.stdio_dir);
  hcsb__closed_cb cb = o->closed_cb;
  void *data = o->closed_data;
  free(o);
  if (cb != NULL) cb(data);
}

static void on_part_closed(void *data) {
  release(data);
}
static void on_handle_closed(uv_handle_t *h) {
  release(h->data);
}

void hcsb__opener_shutdown(hcsb__opener_t *o, uint32_t grace_ms,
                           hcsb__closed_cb cb, void *data) {
  if (o == NULL || o->closing) return;
  o->closing = 1;
  o->closed_cb = cb;
  o->closed_data = data;
  o->await_cb = NULL;
  o->busy = 1; /* the timer below: so release() never runs in here */
  if (o->listener != NULL) {
    o->busy++;
    hcsb__listener_close_cb(o->listener, on_part_closed, o);
    o->listener = NULL;
  }
  if (o->dialer != NULL) {
    o->busy++;
    hcsb__dialer_close(o->dialer, on_part_closed, o);
    o->dialer = NULL;
  }
  if (o->early != NULL) {
    /* Never handed out: closing it is what tells a spawned guest to go. */
    o->busy++;
    o->early->data = o;
    uv_close((uv_handle_t *)o->early, on_handle_closed);
    o->early = NULL;
  }
  if (o->child != NULL) {
    o->busy++;
    hcsb__child_shutdown(o->child, grace_ms, on_part_closed, o);
    o->child = NULL;
  }
  uv_close((uv_handle_t *)&o->defer, on_handle_closed);
}

void hcsb__opener_close(hcsb__opener_t *o) {
  hcsb__opener_shutdown(o, 0, NULL, NULL);
}

const hcsb_addr_t *hcsb__opener_addr(const hcsb__opener_t *o) {
  return &o->addr;
}

int hcsb__opener_guest_exit(const hcsb__opener_t *o, int *exit_status,
                            int *term_signal) {
  if (!o->spawned) return -ENOENT;
  if (!o->exited) return 0;
  *exit_status = o->exit_status;
  *term_signal = o->term_signal;
  return 1;
}

int hcsb__opener_await_exit(hcsb__opener_t *o, uint32_t timeout_ms,
                            hcsb__closed_cb cb, void *data) {
  if (!o->spawned || o->exited || o->closing || o->await_cb != NULL ||
      o->early != NULL)
    return -EALREADY;
  o->await_cb = cb;
  o->await_data = data;
  uv_timer_start(&o->defer, on_await_timeout, timeout_ms, 0);
  return 0;
}

int hcsb__open(uv_loop_t *loop, const hcsb_addr_t *addr, hcsb__open_cb cb,
               void *data, hcsb__opener_t **out) {
  if (loop == NULL || addr == NULL || cb == NULL || out == NULL) return -EINVAL;
  hcsb__opener_t *o = calloc(1, sizeof *o);
  if (o == NULL) return -ENOMEM;
  o->loop = loop;
  o->addr = *addr;
  o->cb = cb;
  o->data = data;
  int rc = uv_timer_init(loop, &o->defer);
  if (rc != 0) {
    free(o);
    return rc;
  }
  o->defer.data = o;
  rc = start(o);
  if (rc == 0 && o->early != NULL) uv_timer_start(&o->defer, on_defer, 0, 0);
  if (rc != 0) {
    /* Nothing was handed out; close whatever start() left behind. */
    o->delivered = 1;
    hcsb__opener_close(o);
    return rc;
  }
  *out = o;
  return 0;
}
