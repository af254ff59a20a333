/* The write queue.  Calls append encoded frames to wbuf[wcur]; once per loop
 * turn, just before libuv polls, everything accumulated goes out in one
 * write.  uv_try_write first: when the socket takes it all (the common
 * case) no write request, no callback and no extra turn are needed.  What
 * the kernel does not take goes out with uv_write from that same buffer
 * while new frames fill the other one. */
#include <stdlib.h>

#include "bridge/internal.h"

/* A buffer that grew for a burst is given back once drained: a busy
 * pipeline's batches (50 KiB at 256 calls in flight) stay in it, a burst
 * of thousands of calls does not pin its size per connection. */
#define KEEP_BUF_CAP (128u * 1024u)

static void write_cb(uv_write_t *req, int status);

static void drained(hcsb__buf_t *buf) {
  buf->len = 0;
  if (buf->cap > KEEP_BUF_CAP) {
    /* Shrunk, not freed: the next burst then grows it once, not a dozen
     * times from nothing. */
    char *p = realloc(buf->data, KEEP_BUF_CAP);
    if (p == NULL) {
      hcsb__buf_free(buf);
      return;
    }
    buf->data = p;
    buf->cap = KEEP_BUF_CAP;
  }
}

static void write_failed(hcsb_bridge_t *b, int err) {
  hcsb__log(b, HCSB_LOG_WARN, NULL, "bridge write: %s", hcsb__errstr(err));
  hcsb__bridge_lost(b, -EPIPE, err);
}

static void flush(uv_prepare_t *h) {
  hcsb_bridge_t *b = h->data;
  hcsb__buf_t *buf = &b->wbuf[b->wcur];
  /* One write in flight at a time; write_cb restarts the flush.  A turn
   * with nothing to write stops it (see below). */
  if (b->winflight || buf->len == 0 || b->phase == HCSB__DEAD) {
    hcsb__writer_disarm(b);
    return;
  }
  hcsb__bridge_ref(b);
  uv_buf_t ub;
  ub.base = buf->data;
  ub.len = buf->len;
  int n = uv_try_write(b->stream, &ub, 1);
  if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
  if (n < 0) {
    write_failed(b, n);
  } else {
    b->st.writes++;
    b->st.bytes_sent += (uint64_t)n;
    if ((size_t)n == buf->len) {
      /* Still armed: calls made in reply to what this turn reads are
       * flushed on the next, and starting and stopping the prepare handle
       * every turn would cost more than the one empty check that ends an
       * idle spell.  It keeps the loop alive for that one turn only. */
      drained(buf);
    } else {
      ub = uv_buf_init(buf->data + n, (unsigned)(buf->len - (size_t)n));
      b->st.writes++; /* libuv tries once more at once, then on POLLOUT */
      int rc = uv_write(&b->wreq, b->stream, &ub, 1, write_cb);
      if (rc != 0) {
        write_failed(b, rc);
      } else {
        b->winflight = 1;
        b->inflight_len = ub.len;
        b->wcur ^= 1;
        hcsb__writer_disarm(b);
      }
    }
  }
  hcsb__bridge_unref(b);
}

static void write_cb(uv_write_t *req, int status) {
  hcsb_bridge_t *b = req->data;
  hcsb__bridge_ref(b);
  b->winflight = 0;
  drained(&b->wbuf[b->wcur ^ 1]);
  if (status == 0) {
    b->st.bytes_sent += b->inflight_len;
    if (b->wbuf[b->wcur].len != 0) hcsb__writer_kick(b);
  } else if (status != UV_ECANCELED) { /* ECANCELED: we closed the stream */
    write_failed(b, status);
  }
  b->inflight_len = 0;
  hcsb__bridge_unref(b);
}

void hcsb__writer_arm(hcsb_bridge_t *b) {
  b->wreq.data = b;
  b->flush_armed = 1;
  uv_prepare_start(&b->prepare, flush);
}

void hcsb__writer_disarm(hcsb_bridge_t *b) {
  b->flush_armed = 0;
  uv_prepare_stop(&b->prepare);
}
