/* Fuzz target: the incremental frame decoder (hcsb__decoder_feed).
 *
 * Input: [max selector] [n] [n & 15 chunk-size bytes] [stream bytes...]
 *
 * The stream is decoded three ways: by a tiny reference model written from
 * protocol.md §3 (walk headers, Size < 16 stops everything, Size > max is
 * skipped), fed whole to a decoder, and fed in the chunk sizes the input
 * names to a second decoder.  All three must report the same events with
 * the same headers and body bytes.  Each chunk is copied into a buffer of
 * its exact size so ASan sees any read past what was handed in. */
#include <string.h>

#include "fuzz.h"
#include "proto/proto.h"

typedef struct event_s {
  int kind;
  hcsb__hdr_t hdr;
  size_t body_len;
  uint64_t body_hash;
} event_t;

typedef struct run_s {
  event_t *ev;
  size_t n, cap;
  int idle_at_end;
} run_t;

/* clang-format off */
static const uint32_t max_table[] = {
    0, 16, 17, 31, 64, 100, 256, 1024, 4096, 65535, 65536, 65537,
    HCSB_DEFAULT_MAX_FRAME, UINT32_MAX};
/* clang-format on */

static uint32_t effective_max(uint32_t max) {
  return max == 0 ? HCSB_DEFAULT_MAX_FRAME : max;
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  size_t i;

  for (i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static void push(run_t *r, int kind, const hcsb__hdr_t *hdr,
                 const uint8_t *body, size_t body_len) {
  event_t *e;

  FUZZ_CHECK(r->n < r->cap);
  e = &r->ev[r->n++];
  memset(e, 0, sizeof(*e));
  e->kind = kind;
  if (kind == HCSB__DEC_FRAME || kind == HCSB__DEC_OVERSIZE) e->hdr = *hdr;
  if (kind == HCSB__DEC_FRAME) {
    e->body_len = body_len;
    e->body_hash = fnv1a(body, body_len);
  }
}

/* What protocol.md §3.1/§3.7 say the stream contains. */
static void model(run_t *r, const uint8_t *s, size_t n, uint32_t max) {
  size_t off = 0;
  hcsb__hdr_t h;

  while (n - off >= HCSB__HDR_SIZE) {
    h.type = le32(s + off);
    h.size = le32(s + off + 4);
    h.id = (uint64_t)le32(s + off + 8) | (uint64_t)le32(s + off + 12) << 32;
    if (h.size < HCSB__HDR_SIZE) {
      push(r, HCSB__DEC_ERROR, &h, NULL, 0);
      r->idle_at_end = -1; /* unspecified after an error */
      return;
    }
    if (h.size > max) /* reported as soon as the header is known */
      push(r, HCSB__DEC_OVERSIZE, &h, NULL, 0);
    else if (h.size <= n - off)
      push(r, HCSB__DEC_FRAME, &h, s + off + HCSB__HDR_SIZE,
           h.size - HCSB__HDR_SIZE);
    if (h.size > n - off) { /* a body (kept or skipped) is still arriving */
      r->idle_at_end = 0;
      return;
    }
    off += h.size;
  }
  r->idle_at_end = off == n;
}

/* Checks one event against the decoder's contract and records it.  Returns
 * 1 when the caller should stop feeding this chunk. */
static int check_event(run_t *r, hcsb__decoder_t *d, hcsb__dec_event_t ev,
                       size_t len, size_t consumed, const hcsb__frame_t *f,
                       uint32_t max) {
  FUZZ_CHECK(consumed <= len);
  switch (ev) {
    case HCSB__DEC_NEED_MORE:
      FUZZ_CHECK(consumed == len);
      return 1;
    case HCSB__DEC_FRAME:
      FUZZ_CHECK(consumed > 0);
      FUZZ_CHECK(f->hdr.size >= HCSB__HDR_SIZE && f->hdr.size <= max);
      FUZZ_CHECK(f->body != NULL);
      FUZZ_CHECK(f->body_len == f->hdr.size - HCSB__HDR_SIZE);
      FUZZ_CHECK(hcsb__decoder_idle(d));
      push(r, ev, &f->hdr, f->body, f->body_len);
      return 0;
    case HCSB__DEC_OVERSIZE:
      FUZZ_CHECK(consumed > 0);
      FUZZ_CHECK(f->hdr.size > max);
      FUZZ_CHECK(f->body == NULL);
      push(r, ev, &f->hdr, NULL, 0);
      return 0;
    case HCSB__DEC_ERROR:
      push(r, ev, NULL, NULL, 0);
      return 1;
    default:
      /* NOMEM cannot happen: buffers grow only with bytes received, and
       * inputs are small. */
      FUZZ_CHECK(!"unexpected decoder event");
      return 1;
  }
}

/* An error is sticky: nothing more is consumed, whatever comes. */
static void check_sticky(hcsb__decoder_t *d, const uint8_t *p, size_t n) {
  hcsb__frame_t f;
  size_t consumed = 1;

  FUZZ_CHECK(hcsb__decoder_feed(d, p, n, &consumed, &f) == HCSB__DEC_ERROR);
  FUZZ_CHECK(consumed == 0);
}

static size_t chunk_size(uint8_t b, size_t left) {
  size_t n;

  if (b == 0) return left;
  n = b < 240 ? b : (size_t)(b - 239) * 1024;
  return n < left ? n : left;
}

static void feed_chunked(run_t *r, const uint8_t *s, size_t n, uint32_t max,
                         const uint8_t *pat, size_t npat) {
  hcsb__decoder_t d;
  hcsb__dec_event_t ev;
  hcsb__frame_t f;
  size_t off = 0, i = 0, len, pos, consumed;
  uint8_t *chunk;
  int errored = 0;

  hcsb__decoder_init(&d, max);
  max = effective_max(max);
  while (off < n && !errored) {
    len = npat ? chunk_size(pat[i++ % npat], n - off) : n - off;
    chunk = malloc(len);
    FUZZ_CHECK(chunk != NULL);
    memcpy(chunk, s + off, len);
    pos = 0;
    do {
      ev = hcsb__decoder_feed(&d, chunk + pos, len - pos, &consumed, &f);
      pos += consumed;
      if (check_event(r, &d, ev, len - (pos - consumed), consumed, &f, max))
        break;
    } while (1);
    if (ev == HCSB__DEC_ERROR) {
      errored = 1;
      check_sticky(&d, chunk + pos, len - pos);
    }
    free(chunk);
    off += len;
  }
  r->idle_at_end = errored ? -1 : hcsb__decoder_idle(&d);
  hcsb__decoder_free(&d);
}

static void feed_whole(run_t *r, const uint8_t *s, size_t n, uint32_t max) {
  hcsb__decoder_t d;
  hcsb__dec_event_t ev;
  hcsb__frame_t f;
  size_t off = 0, consumed;

  hcsb__decoder_init(&d, max);
  max = effective_max(max);
  do {
    ev = hcsb__decoder_feed(&d, s + off, n - off, &consumed, &f);
    off += consumed;
  } while (!check_event(r, &d, ev, n - (off - consumed), consumed, &f, max));
  if (ev == HCSB__DEC_ERROR) {
    check_sticky(&d, s + off, n - off);
    r->idle_at_end = -1;
  } else {
    r->idle_at_end = hcsb__decoder_idle(&d);
  }
  hcsb__decoder_free(&d);
}

static void compare(const run_t *a, const run_t *b) {
  size_t i;

  FUZZ_CHECK(a->n == b->n);
  for (i = 0; i < a->n; i++) {
    FUZZ_CHECK(a->ev[i].kind == b->ev[i].kind);
    FUZZ_CHECK(a->ev[i].hdr.type == b->ev[i].hdr.type);
    FUZZ_CHECK(a->ev[i].hdr.size == b->ev[i].hdr.size);
    FUZZ_CHECK(a->ev[i].hdr.id == b->ev[i].hdr.id);
    FUZZ_CHECK(a->ev[i].body_len == b->ev[i].body_len);
    FUZZ_CHECK(a->ev[i].body_hash == b->ev[i].body_hash);
  }
  FUZZ_CHECK(a->idle_at_end == b->idle_at_end);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *pat, *s;
  size_t npat, n, cap;
  uint32_t max;
  run_t want, whole, chunked;

  if (size < 2) return 0;
  max = max_table[data[0] % (sizeof(max_table) / sizeof(max_table[0]))];
  npat = data[1] & 15u;
  if (size - 2 < npat) return 0;
  pat = data + 2;
  s = pat + npat;
  n = size - 2 - npat;

  /* Every event but the last consumes a header. */
  cap = n / HCSB__HDR_SIZE + 1;
  memset(&want, 0, sizeof(want));
  whole = chunked = want;
  want.ev = calloc(cap, sizeof(event_t));
  whole.ev = calloc(cap, sizeof(event_t));
  chunked.ev = calloc(cap, sizeof(event_t));
  FUZZ_CHECK(want.ev && whole.ev && chunked.ev);
  want.cap = whole.cap = chunked.cap = cap;

  model(&want, s, n, effective_max(max));
  feed_whole(&whole, s, n, max);
  feed_chunked(&chunked, s, n, max, pat, npat);
  compare(&want, &whole);
  compare(&want, &chunked);

  free(want.ev);
  free(whole.ev);
  free(chunked.ev);
  return 0;
}
