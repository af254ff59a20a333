/* The read path: libuv's read buffer goes straight into the frame decoder,
 * and each frame is dispatched on its type, then on its ID. */
#include <errno.h>
#include <string.h>

#include "bridge/internal.h"

/* A response whose call is gone: late (we gave up on it) or unknown. */
static void orphan_response(hcsb_bridge_t *b, const hcsb__hdr_t *h, void *val,
                            const void *body, size_t len) {
  if (val == HCSB__ABANDONED) {
    hcsb__calltab_del(&b->tab, h->id);
    b->nabandoned--;
    b->st.late_responses++;
    hcsb__log(b, HCSB_LOG_DEBUG, NULL, "dropping late %s for call %llu",
              hcsb__msg_name(h->type), (unsigned long long)h->id);
    if (!hcsb__list_empty(&b->watches)) hcsb__reap_late(b, h, body, len);
  } else {
    b->st.unknown_responses++;
    hcsb__log(
        b, HCSB_LOG_WARN, NULL,
        "dropping %s with unknown ID %llu (never sent or already answered)",
        hcsb__msg_name(h->type), (unsigned long long)h->id);
  }
}

static void on_response(hcsb_bridge_t *b, const hcsb__frame_t *f) {
  void *val = hcsb__calltab_get(&b->tab, f->hdr.id);
  if (val == NULL || val == HCSB__ABANDONED) {
    orphan_response(b, &f->hdr, val, f->body, f->body_len);
    return;
  }
  hcsb_call_t *c = val;
  char act[37]; /* the ActivityId, formatted only for a log line */
  if (f->hdr.type != c->resp_type) {
    b->st.bad_responses++;
    hcsb__log(b, HCSB_LOG_WARN, hcsb__call_activity(c, act),
              "call %llu: got %s (0x%08X), expected 0x%08X",
              (unsigned long long)f->hdr.id, hcsb__msg_name(f->hdr.type),
              f->hdr.type, c->resp_type);
    hcsb__call_finish(c, -EPROTO, NULL, NULL);
    return;
  }
  hcsb_response_t resp;
  hcsb_guest_error_t gerr;
  int has_gerr = 0;
  memset(&gerr, 0, sizeof gerr);
  b->dctx.props_unchecked = c->unchecked_props;
  int rc = hcsb__response_decode(&b->dctx, f->hdr.type, f->hdr.id,
                                 (const char *)f->body, f->body_len, &resp,
                                 &gerr, &has_gerr);
  b->dctx.props_unchecked = 0;
  if (rc != 0) {
    hcsb__decode_release(&b->dctx);
    if (rc != -ENOMEM) {
      rc = -EPROTO;
      b->st.bad_responses++;
    }
    hcsb__log(b, HCSB_LOG_WARN, hcsb__call_activity(c, act),
              "call %llu: undecodable %s: %s", (unsigned long long)f->hdr.id,
              hcsb__msg_name(f->hdr.type), hcsb__errstr(rc));
    hcsb__call_finish(c, rc, NULL, NULL);
    return;
  }
  if (has_gerr && hcsb__log_on(b, HCSB_LOG_DEBUG))
    hcsb__log_guest_error(b, hcsb__call_activity(c, act), &gerr);
  hcsb__call_finish(c, has_gerr ? HCSB_EGUEST : 0, has_gerr ? &gerr : NULL,
                    &resp);
  hcsb__decode_release(&b->dctx);
}

static void on_notification(hcsb_bridge_t *b, const hcsb__frame_t *f) {
  hcsb_notification_t n;
  memset(&n, 0, sizeof n);
  int rc = hcsb__notification_decode(&b->dctx, (const char *)f->body,
                                     f->body_len, &n);
  if (rc != 0) {
    b->st.dropped_messages++;
    hcsb__log(b, HCSB_LOG_WARN, NULL, "dropping undecodable notification: %s",
              hcsb__errstr(rc));
  } else {
    b->st.notifications++;
    if (b->notify_cb != NULL)
      b->notify_cb(b->notify_data, b, &n);
    else
      hcsb__log(b, HCSB_LOG_DEBUG, n.activity_id,
                "notification %s for %s (no handler)", n.type, n.container_id);
  }
  hcsb__decode_release(&b->dctx);
}

static void on_frame(hcsb_bridge_t *b, const hcsb__frame_t *f) {
  if (hcsb__log_on(b, HCSB_LOG_TRACE))
    hcsb__log_frame(b, "recv", f->hdr.type, f->hdr.id, f->body, f->body_len);
  if ((f->hdr.type & HCSB_MSG_TYPE_MASK) == HCSB_MSG_TYPE_RESPONSE) {
    on_response(b, f);
  } else if (f->hdr.type == HCSB_MSG_NOTIFY_CONTAINER) {
    on_notification(b, f);
  } else if (b->phase == HCSB__NEGOTIATING &&
             (f->hdr.type & HCSB_MSG_TYPE_MASK) == HCSB_MSG_TYPE_REQUEST) {
    /* A GCS answers; a peer that sends requests (another host, or one that
     * echoes ours back) never will: fail the open now, not at its timeout.
     * NegotiateProtocol fails with the others, so ready_cb sees -ENOMSG. */
    hcsb__log(b, HCSB_LOG_ERROR, NULL,
              "peer sent a request, %s (0x%08X), while negotiating: not a GCS",
              hcsb__msg_name(f->hdr.type), f->hdr.type);
    hcsb__bridge_lost(b, -ENOMSG, -ENOMSG);
  } else {
    b->st.dropped_messages++;
    hcsb__log(b, HCSB_LOG_WARN, NULL,
              "dropping guest message 0x%08X (%s), ID %llu: not a response or "
              "notification",
              f->hdr.type, hcsb__msg_name(f->hdr.type),
              (unsigned long long)f->hdr.id);
  }
}

/* Announced larger than max_frame: its body streams past unbuffered. */
static void on_oversize(hcsb_bridge_t *b, const hcsb__hdr_t *h) {
  b->st.oversize_frames++;
  hcsb__log(b, HCSB_LOG_WARN, NULL,
            "skipping %s of %u bytes (limit %u), ID %llu",
            hcsb__msg_name(h->type), h->size, b->max_frame,
            (unsigned long long)h->id);
  if ((h->type & HCSB_MSG_TYPE_MASK) != HCSB_MSG_TYPE_RESPONSE) {
    b->st.dropped_messages++;
    return;
  }
  void *val = hcsb__calltab_get(&b->tab, h->id);
  if (val == NULL || val == HCSB__ABANDONED)
    orphan_response(b, h, val, NULL, 0);
  else
    hcsb__call_finish(val, -EMSGSIZE, NULL, NULL);
}

static void feed(hcsb_bridge_t *b, const uint8_t *data, size_t len) {
  size_t off = 0;
  /* Callbacks may close the bridge: stop at once, the rest is moot. */
  while (off < len && b->phase != HCSB__DEAD) {
    size_t used = 0;
    hcsb__frame_t f;
    hcsb__dec_event_t ev =
        hcsb__decoder_whole(&b->dec, data + off, len - off, &used, &f)
            ? HCSB__DEC_FRAME
            : hcsb__decoder_feed(&b->dec, data + off, len - off, &used, &f);
    off += used;
    switch (ev) {
      case HCSB__DEC_FRAME:
        b->st.frames_received++;
        on_frame(b, &f);
        break;
      case HCSB__DEC_OVERSIZE:
        b->st.frames_received++;
        on_oversize(b, &f.hdr);
        break;
      case HCSB__DEC_ERROR:
        hcsb__log(
            b, HCSB_LOG_ERROR, NULL,
            "guest sent a frame header with Size < 16: stream untrustworthy");
        hcsb__bridge_lost(b, -ECONNRESET, -EPROTO);
        return;
      case HCSB__DEC_NOMEM:
        /* The decoder kept nothing of this chunk past `used`; we cannot ask
         * libuv to hand it over again, so the stream is lost. */
        hcsb__log(b, HCSB_LOG_ERROR, NULL,
                  "out of memory buffering a guest frame");
        hcsb__bridge_lost(b, -ECONNRESET, -ENOMEM);
        return;
      case HCSB__DEC_NEED_MORE:
      default:
        return;
    }
  }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  hcsb_bridge_t *b = h->data;
  (void)hint;
  buf->base = b->rbuf;
  buf->len = b->rbuf_cap;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  hcsb_bridge_t *b = s->data;
  if (nread == 0) return; /* EAGAIN, not EOF */
  hcsb__bridge_ref(b);
  if (nread < 0) {
    if (nread != UV_EOF || !hcsb__decoder_idle(&b->dec))
      hcsb__log(b, HCSB_LOG_WARN, NULL, "bridge read: %s%s",
                hcsb__errstr((int)nread),
                hcsb__decoder_idle(&b->dec) ? "" : " (inside a frame)");
    hcsb__bridge_lost(b, -ECONNRESET, (int)nread);
  } else {
    b->st.bytes_received += (uint64_t)nread;
    b->st.reads++;
    feed(b, (const uint8_t *)buf->base, (size_t)nread);
    /* A full read: more was waiting.  The buffer is ours again (the
     * decoder kept what it needs), so it can grow now; if it cannot, the
     * next read is as large as this one. */
    if ((size_t)nread == b->rbuf_cap && b->rbuf_cap < HCSB__READ_BUF_MAX) {
      char *p = realloc(b->rbuf, 2 * b->rbuf_cap);
      if (p != NULL) {
        b->rbuf = p;
        b->rbuf_cap *= 2;
      }
    }
  }
  hcsb__bridge_unref(b);
}

int hcsb__reader_start(hcsb_bridge_t *b) {
  return uv_read_start(b->stream, on_alloc, on_read);
}
