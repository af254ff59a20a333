/* Stdio relays of one process: up to three one-shot listeners, the streams
 * they accept, stdin writes and half-close, stdout/stderr reads paced by the
 * caller (protocol.md §9.3, §9.5).
 *
 * Lifetime: the object embeds one timer, closed last by hcsb__stdio_close().
 * Memory is freed once that close callback ran *and* libuv has returned every
 * write and shutdown request (it cancels them while closing the stdin
 * stream), so no callback can ever see freed memory, and freeing never
 * happens inside a call made by the user.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/stdio.h"
#include "bridge/transport.h"

/* Stdin bytes accepted but not yet written.  A guest process that does not
 * read its stdin must not make us buffer without bound: beyond this, writes
 * fail with -ENOBUFS until earlier ones complete. */
#define STDIN_QUEUE_MAX (8u * 1024u * 1024u)

/* Reads go into one buffer: libuv hands it back to us (read callback)
 * before it asks for the next one, whichever stream of the loop reads.
 * The connection shares one among all its processes' stdout and stderr;
 * a stdio opened without one has its own. */
#define READ_BUF_SIZE HCSB__STDIO_READ_BUF_SIZE

typedef struct relay_s {
  hcsb__stdio_t *owner;
  hcsb__listener_t *listener; /* until the one accept, a failure, or close */
  uv_stream_t *stream;        /* accepted and not closed */
  int fd;
  int accepted; /* the one connection came (later dials are refused) */
  int done;     /* fd 0: half-close requested; fd 1/2: closed or ended */
} relay_t;

typedef struct write_req_s {
  uv_write_t req;
  hcsb__stdio_t *owner;
  hcsb_done_cb cb;
  void *data;
  size_t len;
  char bytes[];
} write_req_t;

struct hcsb__stdio_s {
  uv_loop_t *loop;
  relay_t relay[3];
  uv_timer_t anchor; /* the no-port ready callback; its close frees us */
  uv_shutdown_t shutdown_req;
  hcsb__stdio_ready_cb ready_cb;
  void *ready_data;
  hcsb__stdio_read_cb read_cb;
  void *read_data;
  size_t stdin_queued;   /* bytes in writes libuv has not completed */
  unsigned reqs_pending; /* writes + shutdown still held by libuv */
  unsigned requested;
  unsigned connected;
  int ready_fired;
  int reading;
  int closing;
  int anchor_closed;
  char *readbuf; /* READ_BUF_SIZE bytes when stdout or stderr exists */
  char ownbuf[]; /* the readbuf when none was shared */
};

static void maybe_free(hcsb__stdio_t *s) {
  if (s->anchor_closed && s->reqs_pending == 0) free(s);
}

static void on_anchor_close(uv_handle_t *h) {
  hcsb__stdio_t *s = h->data;
  s->anchor_closed = 1;
  maybe_free(s);
}

static void fire_ready(hcsb__stdio_t *s, int status) {
  if (s->ready_fired || s->closing) return;
  s->ready_fired = 1;
  s->ready_cb(s->ready_data, status);
}

static void on_anchor_timer(uv_timer_t *t) {
  fire_ready(t->data, 0);
}

static void close_listeners(hcsb__stdio_t *s) {
  for (int fd = 0; fd < 3; fd++) {
    if (s->relay[fd].listener == NULL) continue;
    hcsb__listener_close(s->relay[fd].listener);
    s->relay[fd].listener = NULL;
  }
}

/* Detaches the stream first, so anything the user does from a callback that
 * follows sees it gone. */
static void close_stream(relay_t *r) {
  uv_stream_t *st = r->stream;
  r->stream = NULL;
  if (st != NULL) {
    uv_read_stop(st);
    hcsb__stream_close(st);
  }
}

/* ------------------------------------------------------------------------ */
/* stdout / stderr */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  relay_t *r = h->data;
  (void)suggested;
  *buf = uv_buf_init(r->owner->readbuf, READ_BUF_SIZE);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  relay_t *r = st->data;
  hcsb__stdio_t *s = r->owner;

  if (nread == 0) return; /* EAGAIN */
  if (nread < 0) {
    /* The guest reports the exit only once we closed our end
     * (protocol.md §9.5). */
    r->done = 1;
    close_stream(r);
    s->read_cb(s->read_data, r->fd, NULL, nread);
    return;
  }
  s->read_cb(s->read_data, r->fd, buf->base, nread);
}

static int start_reading(relay_t *r) {
  int rc = uv_read_start(r->stream, on_alloc, on_read);
  return rc == UV_EALREADY ? 0 : rc;
}

int hcsb__stdio_read_start(hcsb__stdio_t *s, hcsb__stdio_read_cb cb,
                           void *data) {
  int first_err = 0;

  if (s == NULL || cb == NULL) return -EINVAL;
  if (s->closing) return -EPIPE;
  s->read_cb = cb;
  s->read_data = data;
  s->reading = 1;
  for (int fd = 1; fd < 3; fd++) {
    relay_t *r = &s->relay[fd];
    if (r->stream != NULL) {
      int rc = start_reading(r);
      if (rc != 0 && first_err == 0) first_err = rc;
    }
  }
  return first_err;
}

int hcsb__stdio_read_stop(hcsb__stdio_t *s) {
  if (s == NULL) return -EINVAL;
  s->reading = 0;
  for (int fd = 1; fd < 3; fd++)
    if (s->relay[fd].stream != NULL) uv_read_stop(s->relay[fd].stream);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* stdin */

static void on_shutdown(uv_shutdown_t *req, int status) {
  hcsb__stdio_t *s = req->data;
  (void)status; /* nobody to tell: the guest sees EOF or the stream is gone */
  s->reqs_pending--;
  maybe_free(s);
}

/* uv_shutdown runs once the queued writes are flushed. */
static void half_close(hcsb__stdio_t *s) {
  relay_t *r = &s->relay[0];
  s->shutdown_req.data = s;
  if (uv_shutdown(&s->shutdown_req, r->stream, on_shutdown) == 0)
    s->reqs_pending++;
  else
    close_stream(r); /* not writable any more: a full close still ends it */
}

static void on_write(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  hcsb__stdio_t *s = w->owner;

  s->stdin_queued -= w->len;
  s->reqs_pending--;
  if (w->cb != NULL) w->cb(w->data, status, NULL);
  free(w);
  maybe_free(s);
}

int hcsb__stdio_write(hcsb__stdio_t *s, const void *buf, size_t len,
                      hcsb_done_cb cb, void *data) {
  relay_t *r;
  write_req_t *w;
  uv_buf_t b;
  int rc;

  if (s == NULL || (buf == NULL && len > 0)) return -EINVAL;
  r = &s->relay[0];
  if (s->closing || r->stream == NULL || r->done) return -EPIPE;
  if (len > STDIN_QUEUE_MAX - s->stdin_queued) return -ENOBUFS;
  w = malloc(sizeof *w + len);
  if (w == NULL) return -ENOMEM;
  w->owner = s;
  w->cb = cb;
  w->data = data;
  w->len = len;
  if (len > 0) memcpy(w->bytes, buf, len);
  b = uv_buf_init(w->bytes, (unsigned)len);
  rc = uv_write(&w->req, r->stream, &b, 1, on_write);
  if (rc != 0) {
    free(w);
    return rc == UV_EBADF ? -EPIPE : rc;
  }
  s->stdin_queued += len;
  s->reqs_pending++;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Accepting */

static void on_accept(void *data, hcsb__listener_t *l, int status,
                      uv_stream_t *stream) {
  relay_t *r = data;
  hcsb__stdio_t *s = r->owner;

  if (status < 0) {
    /* One stream missing means the process cannot run as asked. */
    close_listeners(s);
    fire_ready(s, status);
    return;
  }
  if (r->accepted) {
    /* The guest dialed twice: the first connection is the relay. */
    hcsb__stream_close(stream);
    return;
  }
  r->accepted = 1;
  hcsb__listener_close(l);
  r->listener = NULL;
  stream->data = r;
  r->stream = stream;
  if (r->fd == 0) {
    if (r->done) half_close(s);
  } else if (r->done) {
    close_stream(r); /* the caller gave up on it before it arrived */
  } else if (s->reading) {
    (void)start_reading(r); /* cannot fail on a fresh connected stream */
  }
  if (++s->connected == s->requested) fire_ready(s, 0);
}

/* ------------------------------------------------------------------------ */
/* Open / close */

int hcsb__stdio_open(uv_loop_t *loop, const hcsb_addr_t *addr,
                     const uint32_t ports[3], uint32_t accept_timeout_ms,
                     char *readbuf, hcsb__stdio_ready_cb cb, void *data,
                     hcsb__stdio_t **out) {
  hcsb__stdio_t *s;
  size_t extra;
  int rc;

  if (loop == NULL || addr == NULL || ports == NULL || cb == NULL ||
      out == NULL)
    return -EINVAL;
  /* Two relays on one port would unlink each other's socket file. */
  for (int i = 0; i < 3; i++)
    for (int j = i + 1; j < 3; j++)
      if (ports[i] != 0 && ports[i] == ports[j]) return -EINVAL;

  extra =
      (ports[1] != 0 || ports[2] != 0) && readbuf == NULL ? READ_BUF_SIZE : 0;
  /* Only the struct is cleared: buffer bytes are read only after a read
   * wrote them. */
  s = malloc(sizeof *s + extra);
  if (s == NULL) return -ENOMEM;
  memset(s, 0, sizeof *s);
  s->readbuf = readbuf != NULL ? readbuf : s->ownbuf;
  s->loop = loop;
  s->ready_cb = cb;
  s->ready_data = data;
  for (int fd = 0; fd < 3; fd++) {
    relay_t *r = &s->relay[fd];
    r->owner = s;
    r->fd = fd;
    if (ports[fd] == 0) continue;
    rc = hcsb__listen(loop, addr, ports[fd], accept_timeout_ms, on_accept, r,
                      &r->listener);
    if (rc != 0) {
      close_listeners(s);
      free(s);
      return rc;
    }
    s->requested++;
  }
  rc = uv_timer_init(loop, &s->anchor);
  if (rc != 0) {
    close_listeners(s);
    free(s);
    return rc;
  }
  s->anchor.data = s;
  if (s->requested == 0) uv_timer_start(&s->anchor, on_anchor_timer, 0, 0);
  *out = s;
  return 0;
}

uv_stream_t *hcsb__stdio_stream(const hcsb__stdio_t *s, int fd) {
  if (s == NULL || fd < 0 || fd > 2) return NULL;
  return s->relay[fd].stream;
}

int hcsb__stdio_close_fd(hcsb__stdio_t *s, int fd) {
  relay_t *r;

  if (s == NULL || fd < 0 || fd > 2) return -EINVAL;
  r = &s->relay[fd];
  if (r->done || s->closing) return 0;
  r->done = 1;
  if (r->stream == NULL) return 0; /* applied when (if) it is accepted */
  if (fd == 0)
    half_close(s);
  else
    close_stream(r);
  return 0;
}

void hcsb__stdio_close(hcsb__stdio_t *s) {
  if (s == NULL || s->closing) return;
  s->closing = 1;
  close_listeners(s);
  for (int fd = 0; fd < 3; fd++) close_stream(&s->relay[fd]);
  uv_close((uv_handle_t *)&s->anchor, on_anchor_close);
}
