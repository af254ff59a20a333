/* The bridge byte stream: frames in through the protocol core's decoder,
 * responses out in completion order, and the end of the session.
 *
 * Frames produced while a write is in flight are batched into the next one
 * (libuv writes one request per loop turn).  Reading stops while more than
 * HCSB__G_WRITE_HIGH bytes of responses are
 * queued (a host that stops reading cannot make us buffer without bound;
 * the real GCS blocks its handlers instead).  A header with Size < 16 ends
 * the connection with a log line, where the real GCS would swallow the rest
 * of the stream as one body. */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "guest/act.h"
#include "guest/guest.h"

typedef struct wreq_s {
  uv_write_t req;
  hcsb__guest_t *g;
  hcsb__buf_t data;
} wreq_t;

static char read_buf[64 * 1024];

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  /* Frames are decoded before the callback returns, so one static buffer
   * serves every read. */
  *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void close_out_if_drained(hcsb__guest_t *g);

static void on_closed(uv_handle_t *h) {
  (void)h;
}

static void stop_reading(hcsb__guest_t *g) {
  if (!g->reading) return;
  uv_read_stop(g->in);
  g->reading = 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void start_reading(hcsb__guest_t *g) {
  int r;

  if (g->closing || !g->conn_open || g->reading) return;
  r = uv_read_start(g->in, on_alloc, on_read);
  if (r < 0) {
    hcsb__guest_teardown(g, 1, uv_strerror(r));
    return;
  }
  g->reading = 1;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  hcsb__guest_t *g = s->data;
  const uint8_t *p = (const uint8_t *)buf->base;
  size_t off = 0, used;
  hcsb__frame_t f;

  /* A host that closes with our answers still unread resets the socket:
   * it went away all the same, which is how a session ends. */
  if (nread == UV_EOF || nread == UV_ECONNRESET) {
    hcsb__guest_teardown(g, 0,
                         nread == UV_EOF ? "the host closed the bridge"
                                         : "the host reset the bridge");
    return;
  }
  if (nread < 0) {
    hcsb__glog(g, 0, "bridge read failed: %s", uv_strerror((int)nread));
    hcsb__guest_teardown(g, 1, "bridge read failed");
    return;
  }
  while (off < (size_t)nread && !g->closing) {
    hcsb__dec_event_t ev =
        hcsb__decoder_feed(&g->dec, p + off, (size_t)nread - off, &used, &f);
    off += used;
    switch (ev) {
      case HCSB__DEC_FRAME:
        hcsb__gdispatch(g, &f);
        break;
      case HCSB__DEC_OVERSIZE:
        hcsb__gdispatch_oversize(g, &f.hdr);
        break;
      case HCSB__DEC_ERROR:
        hcsb__glog(g, 0,
                   "invalid frame header (Size %" PRIu32 " < 16, id %" PRIu64
                   "): the byte stream cannot be trusted, closing",
                   g->dec.hdr.size, g->dec.hdr.id);
        hcsb__guest_teardown(g, 1, "invalid frame");
        return;
      case HCSB__DEC_NOMEM:
        hcsb__guest_teardown(g, 1, "out of memory buffering a request");
        return;
      case HCSB__DEC_NEED_MORE:
        break;
    }
  }
  /* A handler may have filled the write queue. */
  if (g->wq_bytes > HCSB__G_WRITE_HIGH) stop_reading(g);
}

static void write_failed(hcsb__guest_t *g, int err) {
  /* The host closing while an answer is on its way is a close, not a
   * failure: it may well have read everything it wanted. */
  if (err == UV_EPIPE || err == UV_ECONNRESET) {
    hcsb__guest_teardown(g, 0, "the host closed the bridge");
    return;
  }
  hcsb__glog(g, 0, "bridge write failed: %s", uv_strerror(err));
  hcsb__guest_teardown(g, 1, "bridge write failed");
}

static void on_write(uv_write_t *req, int status);

/* Starts a write of everything batched, unless one is in flight. */
static void flush(hcsb__guest_t *g) {
  wreq_t *w;
  uv_buf_t b;
  int r;

  if (g->writing || g->wnext.len == 0 || !g->conn_open) return;
  w = malloc(sizeof *w);
  if (w == NULL) {
    hcsb__guest_teardown(g, 1, "out of memory writing responses");
    return;
  }
  w->g = g;
  w->data = g->wnext;
  g->wnext = (hcsb__buf_t)HCSB__BUF_INIT;
  b = uv_buf_init(w->data.data, (unsigned)w->data.len);
  r = uv_write(&w->req, g->out, &b, 1, on_write);
  if (r < 0) {
    g->wq_bytes -= w->data.len;
    hcsb__buf_free(&w->data);
    free(w);
    write_failed(g, r);
    return;
  }
  g->writing = 1;
}

static void on_write(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  hcsb__guest_t *g = w->g;

  g->writing = 0;
  g->wq_bytes -= w->data.len;
  hcsb__buf_free(&w->data);
  free(w);
  if (status < 0 && status != UV_ECANCELED && !g->closing) {
    write_failed(g, status);
    return;
  }
  flush(g);
  if (g->closing) {
    close_out_if_drained(g);
    return;
  }
  if (g->wq_bytes < HCSB__G_WRITE_LOW) start_reading(g);
}

void hcsb__gconn_send(hcsb__guest_t *g, uint32_t type, uint64_t id,
                      const char *body, size_t len) {
  uint8_t hdr[HCSB__HDR_SIZE];
  hcsb__hdr_t h;

  if (g->closing || !g->conn_open) return;
  if (len > UINT32_MAX - HCSB__HDR_SIZE) {
    hcsb__glog(g, 0, "response id %" PRIu64 " too large to frame", id);
    return;
  }
  if (hcsb__buf_reserve(&g->wnext, HCSB__HDR_SIZE + len) != 0) {
    hcsb__glog(g, 0, "out of memory: response id %" PRIu64 " dropped", id);
    return;
  }
  h.type = type;
  h.size = (uint32_t)(HCSB__HDR_SIZE + len);
  h.id = id;
  hcsb__hdr_encode(hdr, &h);
  hcsb__buf_append(&g->wnext, hdr, sizeof hdr); /* reserved: cannot fail */
  hcsb__buf_append(&g->wnext, body, len);
  g->wq_bytes += HCSB__HDR_SIZE + len;
  flush(g);
  if (g->wq_bytes > HCSB__G_WRITE_HIGH) stop_reading(g);
}

int hcsb__gconn_start(hcsb__guest_t *g) {
  g->in->data = g;
  g->out->data = g;
  g->conn_open = 1;
  start_reading(g);
  return g->closing ? -1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Teardown */

static void close_conn(hcsb__guest_t *g) {
  if (!g->conn_open) return;
  g->conn_open = 0;
  g->wq_bytes -= g->wnext.len;
  hcsb__buf_free(&g->wnext); /* the write in flight is cancelled by close */
  if (g->flush_timer_init) uv_close((uv_handle_t *)&g->flush_timer, on_closed);
  g->flush_timer_init = 0;
  uv_close((uv_handle_t *)g->in, on_closed);
  if (g->out != g->in) uv_close((uv_handle_t *)g->out, on_closed);
}

static void close_out_if_drained(hcsb__guest_t *g) {
  if (g->wq_bytes == 0) close_conn(g);
}

static void on_flush_timeout(uv_timer_t *t) {
  hcsb__guest_t *g = t->data;
  hcsb__glog(g, 0, "the host stopped reading; dropping %zu queued bytes",
             g->wq_bytes);
  close_conn(g); /* cancels what is still queued */
}

void hcsb__guest_teardown(hcsb__guest_t *g, int exit_code, const char *why) {
  if (g->closing) return;
  g->closing = 1;
  g->exit_code = exit_code;
  hcsb__glog(g, exit_code == 0, "closing the bridge: %s", why);

  stop_reading(g);

  hcsb__gexec_teardown(g);
  hcsb__gproc_teardown(g);
  if (g->act != NULL) hcsb__ga_teardown(g);

  uv_close((uv_handle_t *)&g->sigchld, on_closed);
  uv_close((uv_handle_t *)&g->sigterm, on_closed);
  uv_close((uv_handle_t *)&g->sigint, on_closed);
  uv_close((uv_handle_t *)&g->sighup, on_closed);

  /* Answers already queued still go out (a host that half-closed may be
   * reading them), for at most a second. */
  if (g->conn_open && g->wq_bytes > 0 &&
      uv_timer_init(g->loop, &g->flush_timer) == 0) {
    g->flush_timer_init = 1;
    g->flush_timer.data = g;
    uv_timer_start(&g->flush_timer, on_flush_timeout, 1000, 0);
  } else {
    close_conn(g);
  }
}
