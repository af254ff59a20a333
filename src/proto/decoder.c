/* Incremental frame decoder: turns an arbitrary byte stream into frames.
 *
 * Memory is driven by what actually arrives, not by what a header claims:
 * the guest is untrusted, and a header announcing 4 GiB must cost nothing
 * until (and unless) the bytes show up. */
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

enum { ST_HDR = HCSB__DEC_ST_HDR, ST_BODY, ST_SKIP, ST_ERROR };

/* Initial body buffer and the size above which an idle decoder gives its
 * buffer back, so one large frame does not pin memory for the connection's
 * lifetime. */
#define DEC_MIN_BUF 4096u
#define DEC_KEEP_BUF HCSB__DEC_KEEP_BUF

static const uint8_t empty_body[1];

static uint32_t clamp_max(uint32_t max_frame) {
  if (max_frame == 0) return HCSB_DEFAULT_MAX_FRAME;
  return max_frame < HCSB__HDR_SIZE ? HCSB__HDR_SIZE : max_frame;
}

void hcsb__decoder_init(hcsb__decoder_t *d, uint32_t max_frame) {
  memset(d, 0, sizeof(*d));
  d->state = ST_HDR;
  d->max_frame = clamp_max(max_frame);
}

void hcsb__decoder_set_max(hcsb__decoder_t *d, uint32_t max_frame) {
  d->max_frame = clamp_max(max_frame);
}

void hcsb__decoder_free(hcsb__decoder_t *d) {
  free(d->buf);
  d->buf = NULL;
  d->buf_cap = 0;
  d->body_have = 0;
}

int hcsb__decoder_idle(const hcsb__decoder_t *d) {
  return d->state == ST_HDR && d->hdr_have == 0;
}

/* Grows the body buffer to hold at least `need` bytes, at most doubling and
 * never past the declared body length. */
static int grow(hcsb__decoder_t *d, size_t need, size_t body_len) {
  size_t cap;
  uint8_t *p;

  if (need <= d->buf_cap) return 0;
  cap = d->buf_cap < DEC_MIN_BUF ? DEC_MIN_BUF : d->buf_cap * 2;
  if (cap < need) cap = need;
  if (cap > body_len) cap = body_len;
  p = realloc(d->buf, cap);
  if (p == NULL) return -ENOMEM;
  d->buf = p;
  d->buf_cap = cap;
  return 0;
}

/* Acts on a complete header.  Returns the event to report now, or
 * NEED_MORE when the body still has to arrive. */
static hcsb__dec_event_t on_header(hcsb__decoder_t *d, hcsb__frame_t *frame) {
  frame->hdr = d->hdr;
  frame->body = NULL;
  frame->body_len = 0;
  if (d->hdr.size < HCSB__HDR_SIZE) {
    d->state = ST_ERROR;
    return HCSB__DEC_ERROR;
  }
  if (d->hdr.size > d->max_frame) {
    d->skip_left = d->hdr.size - HCSB__HDR_SIZE;
    d->state = d->skip_left ? ST_SKIP : ST_HDR;
    return HCSB__DEC_OVERSIZE;
  }
  if (d->hdr.size == HCSB__HDR_SIZE) {
    frame->body = empty_body;
    return HCSB__DEC_FRAME;
  }
  d->state = ST_BODY;
  d->body_have = 0;
  return HCSB__DEC_NEED_MORE;
}

hcsb__dec_event_t hcsb__decoder_feed(hcsb__decoder_t *d, const uint8_t *data,
                                     size_t len, size_t *consumed,
                                     hcsb__frame_t *frame) {
  size_t off = 0, take, body_len;
  hcsb__dec_event_t ev;

  *consumed = 0;
  if (d->state == ST_ERROR) return HCSB__DEC_ERROR;

  /* The previous frame may have been returned from the buffer; it is dead
   * now, so a large buffer can go. */
  if (d->state == ST_HDR && d->buf_cap > DEC_KEEP_BUF) hcsb__decoder_free(d);

  /* The common case first: the chunk starts with a whole header, and most
   * often with the whole frame. */
  if (d->state == ST_HDR && d->hdr_have == 0 && len >= HCSB__HDR_SIZE) {
    hcsb__hdr_decode(data, &d->hdr);
    off = HCSB__HDR_SIZE;
    if (d->hdr.size > HCSB__HDR_SIZE && d->hdr.size <= d->max_frame &&
        len >= d->hdr.size) {
      frame->hdr = d->hdr;
      frame->body = data + off;
      frame->body_len = d->hdr.size - HCSB__HDR_SIZE;
      *consumed = d->hdr.size;
      return HCSB__DEC_FRAME;
    }
    ev = on_header(d, frame);
    if (ev != HCSB__DEC_NEED_MORE) {
      *consumed = off;
      return ev;
    }
  }

  while (off < len) {
    switch (d->state) {
      case ST_HDR:
        if (d->hdr_have == 0 && len - off >= HCSB__HDR_SIZE) {
          hcsb__hdr_decode(data + off, &d->hdr);
          off += HCSB__HDR_SIZE;
        } else {
          take = HCSB__HDR_SIZE - d->hdr_have;
          if (take > len - off) take = len - off;
          memcpy(d->hdr_buf + d->hdr_have, data + off, take);
          d->hdr_have += take;
          off += take;
          if (d->hdr_have < HCSB__HDR_SIZE) break;
          d->hdr_have = 0;
          hcsb__hdr_decode(d->hdr_buf, &d->hdr);
        }
        ev = on_header(d, frame);
        if (ev != HCSB__DEC_NEED_MORE) {
          *consumed = off;
          return ev;
        }
        break;

      case ST_BODY:
        body_len = d->hdr.size - HCSB__HDR_SIZE;
        take = body_len - d->body_have;
        if (d->body_have == 0 && len - off >= take) {
          /* The whole body is in the caller's chunk: no copy. */
          frame->hdr = d->hdr;
          frame->body = data + off;
          frame->body_len = body_len;
          d->state = ST_HDR;
          *consumed = off + take;
          return HCSB__DEC_FRAME;
        }
        if (take > len - off) take = len - off;
        if (grow(d, d->body_have + take, body_len) != 0) {
          /* The stream stays intact: bytes from `off` on were not used. */
          *consumed = off;
          return HCSB__DEC_NOMEM;
        }
        memcpy(d->buf + d->body_have, data + off, take);
        d->body_have += take;
        off += take;
        if (d->body_have == body_len) {
          frame->hdr = d->hdr;
          frame->body = d->buf;
          frame->body_len = body_len;
          d->state = ST_HDR;
          d->body_have = 0;
          *consumed = off;
          return HCSB__DEC_FRAME;
        }
        break;

      case ST_SKIP:
        take = len - off;
        if (take > d->skip_left) take = (size_t)d->skip_left;
        d->skip_left -= take;
        off += take;
        if (d->skip_left == 0) d->state = ST_HDR;
        break;

      default:
        *consumed = off;
        return HCSB__DEC_ERROR;
    }
  }
  *consumed = off;
  return HCSB__DEC_NEED_MORE;
}
