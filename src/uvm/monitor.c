/* QMP over a socket on libuv (monitor.h). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hcsbridge/common.h>

#include "uvm/monitor.h"

#define MAX_CMDS 64

struct hcsb__qmp_cmd_s {
  hcsb__link_t link;
  uint64_t id;
  uint64_t deadline; /* uv_now() ms */
  hcsb__qmp_cmd_cb cb;
  void *data;
  int internal; /* qmp_capabilities: completes into the monitor */
};

/* A write owns its bytes and outlives the command (a timeout or close
 * does not wait for it). */
typedef struct qmp_write_s {
  uv_write_t req;
  size_t len;
  char text[];
} qmp_write_t;

static void mon_log(hcsb__qmp_mon_t *m, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void mon_log(hcsb__qmp_mon_t *m, int level, const char *fmt, ...) {
  char line[512];
  va_list ap;
  if (m->hooks->log == NULL) return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  m->hooks->log(m, level, line);
}

/* The one completion path: off the list, then the callback, then free. */
static void cmd_complete(hcsb__qmp_mon_t *m, hcsb__qmp_cmd_t *c, int status,
                         const hcsb__qmp_msg_t *msg);

static void fail(hcsb__qmp_mon_t *m, int status);

static void on_timer(uv_timer_t *t);

/* Re-arms the timer for the earliest deadline. */
static void rearm(hcsb__qmp_mon_t *m) {
  uint64_t first = UINT64_MAX, now = uv_now(m->timer.loop);
  if (m->state == HCSB__QMP_CLOSED) return;
  for (hcsb__link_t *l = m->cmds.next; l != &m->cmds; l = l->next) {
    hcsb__qmp_cmd_t *c = HCSB__CONTAINER_OF(l, hcsb__qmp_cmd_t, link);
    if (c->deadline < first) first = c->deadline;
  }
  if (first == UINT64_MAX) {
    uv_timer_stop(&m->timer);
    return;
  }
  uv_timer_start(&m->timer, on_timer, first > now ? first - now : 0, 0);
}

static void on_timer(uv_timer_t *t) {
  hcsb__qmp_mon_t *m = t->data;
  uint64_t now = uv_now(t->loop);
  hcsb__link_t due;

  if (m->state == HCSB__QMP_WAIT_GREETING) {
    mon_log(m, HCSB_LOG_ERROR, "QMP: no greeting from QEMU in %u ms",
            (unsigned)m->timeout_ms);
    fail(m, -ETIMEDOUT);
    return;
  }
  /* Collect first: a callback may start commands or close the monitor. */
  hcsb__list_init(&due);
  for (hcsb__link_t *l = m->cmds.next, *next; l != &m->cmds; l = next) {
    hcsb__qmp_cmd_t *c = HCSB__CONTAINER_OF(l, hcsb__qmp_cmd_t, link);
    next = l->next;
    if (c->deadline <= now) {
      hcsb__list_remove(l);
      hcsb__list_push(&due, l);
    }
  }
  while (!hcsb__list_empty(&due)) {
    hcsb__qmp_cmd_t *c = HCSB__CONTAINER_OF(due.next, hcsb__qmp_cmd_t, link);
    mon_log(m, HCSB_LOG_WARN, "QMP: command %llu timed out",
            (unsigned long long)c->id);
    if (m->state == HCSB__QMP_CLOSED)
      cmd_complete(m, c, -ECANCELED, NULL);
    else
      cmd_complete(m, c, -ETIMEDOUT, NULL);
  }
  rearm(m);
}

static void cmd_complete(hcsb__qmp_mon_t *m, hcsb__qmp_cmd_t *c, int status,
                         const hcsb__qmp_msg_t *msg) {
  hcsb__list_remove(&c->link);
  m->ncmds--;
  if (c->internal) {
    /* qmp_capabilities */
    free(c);
    if (m->state != HCSB__QMP_NEGOTIATING) return;
    if (status == 0) {
      m->state = HCSB__QMP_READY;
      m->hooks->ready(m, 0);
    } else {
      mon_log(m, HCSB_LOG_ERROR, "QMP: qmp_capabilities failed: %s%s%s",
              msg != NULL ? msg->error_desc : "", msg != NULL ? ", " : "",
              hcsb_strerror(status));
      fail(m, status == -EREMOTEIO ? -EPROTO : status);
    }
    return;
  }
  hcsb__qmp_cmd_cb cb = c->cb;
  void *data = c->data;
  free(c);
  cb(data, status, msg);
}

static void write_done(uv_write_t *req, int status) {
  qmp_write_t *w = HCSB__CONTAINER_OF(req, qmp_write_t, req);
  /* A failed write shows as the socket's end on the read side. */
  (void)status;
  free(w);
}

static int send_command(hcsb__qmp_mon_t *m, const char *command,
                        json_object *args, uint32_t timeout_ms,
                        hcsb__qmp_cmd_cb cb, void *data, int internal) {
  hcsb__qmp_cmd_t *c;
  qmp_write_t *w;
  char *text;
  size_t len;
  uv_buf_t b;
  int rc;

  if (m->ncmds >= MAX_CMDS) return -ENOBUFS;
  c = calloc(1, sizeof *c);
  if (c == NULL) return -ENOMEM;
  c->id = m->next_id++;
  text = hcsb__qmp_encode(c->id, command, args, &len);
  w = text != NULL ? malloc(sizeof *w + len) : NULL;
  if (w == NULL) {
    free(text);
    free(c);
    return -ENOMEM;
  }
  memcpy(w->text, text, len);
  w->len = len;
  free(text);
  b = uv_buf_init(w->text, (unsigned)len);
  rc = uv_write(&w->req, (uv_stream_t *)&m->pipe, &b, 1, write_done);
  if (rc != 0) {
    free(w);
    free(c);
    return rc;
  }
  c->cb = cb;
  c->data = data;
  c->internal = internal;
  c->deadline = uv_now(m->timer.loop) + (timeout_ms ? timeout_ms : 1);
  hcsb__list_push(&m->cmds, &c->link);
  m->ncmds++;
  mon_log(m, HCSB_LOG_DEBUG, "QMP -> %.*s", (int)(len - 2), w->text);
  rearm(m);
  return 0;
}

int hcsb__qmp_mon_command(hcsb__qmp_mon_t *m, const char *command,
                          json_object *args, uint32_t timeout_ms,
                          hcsb__qmp_cmd_cb cb, void *data) {
  if (m->state == HCSB__QMP_CLOSED) return -ENOTCONN;
  if (m->state != HCSB__QMP_READY) return -EAGAIN;
  return send_command(m, command, args, timeout_ms ? timeout_ms : m->timeout_ms,
                      cb, data, 0);
}

static hcsb__qmp_cmd_t *find(hcsb__qmp_mon_t *m, uint64_t id) {
  for (hcsb__link_t *l = m->cmds.next; l != &m->cmds; l = l->next) {
    hcsb__qmp_cmd_t *c = HCSB__CONTAINER_OF(l, hcsb__qmp_cmd_t, link);
    if (c->id == id) return c;
  }
  return NULL;
}

/* Closes the socket and timer; commands out fail with `status`. */
static void shut(hcsb__qmp_mon_t *m, int status) {
  if (m->state == HCSB__QMP_CLOSED) return;
  m->state = HCSB__QMP_CLOSED;
  if (m->inited) {
    uv_timer_stop(&m->timer);
    hcsb__handle_uv_close(m->owner, (uv_handle_t *)&m->pipe);
    hcsb__handle_uv_close(m->owner, (uv_handle_t *)&m->timer);
    m->inited = 0;
  }
  hcsb__qmp_dec_free(&m->dec);
  while (!hcsb__list_empty(&m->cmds))
    cmd_complete(m, HCSB__CONTAINER_OF(m->cmds.next, hcsb__qmp_cmd_t, link),
                 status, NULL);
}

/* The monitor failed on its own: commands out fail, then the owner hears
 * of it (ready, when that was still due; closed otherwise). */
static void fail(hcsb__qmp_mon_t *m, int status) {
  int was_ready = m->state == HCSB__QMP_READY;
  if (m->state == HCSB__QMP_CLOSED) return;
  shut(m, status);
  if (was_ready)
    m->hooks->closed(m, status);
  else
    m->hooks->ready(m, status);
}

static void dispatch(hcsb__qmp_mon_t *m, const hcsb__qmp_msg_t *msg) {
  hcsb__qmp_cmd_t *c;

  switch (msg->kind) {
    case HCSB__QMP_GREETING:
      if (m->state != HCSB__QMP_WAIT_GREETING) {
        mon_log(m, HCSB_LOG_WARN, "QMP: a second greeting, ignored");
        return;
      }
      m->state = HCSB__QMP_NEGOTIATING;
      uv_timer_stop(&m->timer);
      if (send_command(m, "qmp_capabilities", NULL, m->timeout_ms, NULL, NULL,
                       1) != 0)
        fail(m, -ENOMEM);
      return;
    case HCSB__QMP_EVENT:
      mon_log(m, HCSB_LOG_DEBUG, "QMP event %s", msg->event);
      if (m->state == HCSB__QMP_READY) m->hooks->event(m, msg);
      return;
    case HCSB__QMP_RETURN:
    case HCSB__QMP_ERROR:
      c = msg->has_id ? find(m, msg->id) : NULL;
      if (c == NULL) {
        /* Late (timed out), or an error QEMU could not tie to a command. */
        m->late_answers++;
        mon_log(m, HCSB_LOG_INFO, "QMP: an answer for no command out (%s%s)",
                msg->kind == HCSB__QMP_ERROR ? "error: " : "return",
                msg->kind == HCSB__QMP_ERROR ? msg->error_desc : "");
        return;
      }
      if (msg->kind == HCSB__QMP_ERROR)
        mon_log(m, HCSB_LOG_INFO, "QMP <- error %s: %s", msg->error_class,
                msg->error_desc);
      cmd_complete(m, c, msg->kind == HCSB__QMP_RETURN ? 0 : -EREMOTEIO, msg);
      rearm(m);
      return;
  }
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  hcsb__qmp_mon_t *m = h->data;
  (void)hint;
  *buf = uv_buf_init(m->rbuf, sizeof m->rbuf);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  hcsb__qmp_mon_t *m = s->data;
  const char *p = buf->base;
  size_t left;

  if (nread < 0) {
    mon_log(m, HCSB_LOG_DEBUG, "QMP: the monitor socket ended (%s)",
            uv_strerror((int)nread));
    fail(m, nread == UV_EOF ? -ECONNRESET : (int)nread);
    return;
  }
  left = (size_t)nread;
  /* The owner holds the memory; a callback may close the monitor, which
   * ends this loop through the state. */
  while (left > 0 && m->state != HCSB__QMP_CLOSED) {
    hcsb__qmp_msg_t msg;
    size_t used;
    int rc = hcsb__qmp_dec_feed(&m->dec, p, left, &used, &msg);
    if (rc < 0) {
      mon_log(m, HCSB_LOG_ERROR, "QMP: unusable data from QEMU (%s)",
              hcsb_strerror(rc));
      fail(m, rc == -ENOMEM ? -ENOMEM : -EPROTO);
      return;
    }
    p += used;
    left -= used;
    if (rc == 0) break;
    dispatch(m, &msg);
    hcsb__qmp_msg_release(&msg);
  }
}

int hcsb__qmp_mon_open(hcsb__qmp_mon_t *m, uv_loop_t *loop,
                       hcsb__handle_t *owner, int fd, uint32_t timeout_ms,
                       const hcsb__qmp_hooks_t *hooks, void *data) {
  int rc;

  memset(m, 0, sizeof *m);
  hcsb__list_init(&m->cmds);
  m->owner = owner;
  m->hooks = hooks;
  m->data = data;
  m->timeout_ms = timeout_ms ? timeout_ms : 10000;
  m->next_id = 1;
  m->state = HCSB__QMP_CLOSED;
  rc = hcsb__qmp_dec_init(&m->dec, 0);
  if (rc != 0) {
    close(fd);
    return rc;
  }
  rc = uv_pipe_init(loop, &m->pipe, 0);
  if (rc != 0) {
    hcsb__qmp_dec_free(&m->dec);
    close(fd);
    return rc;
  }
  rc = uv_timer_init(loop, &m->timer);
  if (rc != 0) {
    hcsb__qmp_dec_free(&m->dec);
    hcsb__handle_uv_close(owner, (uv_handle_t *)&m->pipe);
    close(fd);
    return rc;
  }
  m->pipe.data = m;
  m->timer.data = m;
  m->inited = 1;
  m->state = HCSB__QMP_WAIT_GREETING;
  rc = uv_pipe_open(&m->pipe, fd);
  if (rc != 0) close(fd); /* not libuv's: closing the pipe leaves it */
  if (rc == 0) rc = uv_read_start((uv_stream_t *)&m->pipe, alloc_cb, read_cb);
  if (rc != 0) {
    shut(m, rc);
    return rc;
  }
  uv_timer_start(&m->timer, on_timer, m->timeout_ms, 0);
  return 0;
}

void hcsb__qmp_mon_close(hcsb__qmp_mon_t *m) {
  shut(m, -ECANCELED);
}
