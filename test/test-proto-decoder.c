/* The incremental frame decoder: arbitrary chunking, zero-copy, stream
 * errors, oversize frames, and memory that follows received bytes rather
 * than declared sizes. */
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "runner.h"

typedef struct {
  int ev;
  uint32_t type, size;
  uint64_t id;
  size_t body_len;
  char body[256];
} event_t;

typedef struct {
  event_t ev[64];
  size_t n;
  size_t zero_copy; /* frames whose body pointed into the fed chunk */
} events_t;

static size_t put_frame(uint8_t *out, uint32_t type, uint32_t size, uint64_t id,
                        const char *body) {
  hcsb__hdr_t h = {type, size, id};
  size_t blen = body ? strlen(body) : 0;

  hcsb__hdr_encode(out, &h);
  if (blen) memcpy(out + 16, body, blen);
  return 16 + blen;
}

static size_t frame(uint8_t *out, uint32_t type, uint64_t id,
                    const char *body) {
  return put_frame(out, type, (uint32_t)(16 + strlen(body)), id, body);
}

/* Set: feed() tries hcsb__decoder_whole() first, as the bridge's reader
 * does. */
static int use_whole;

/* Feeds data in chunks of `chunk` bytes (0 = all at once), handing each
 * call's unconsumed rest back in, and records every event. */
static void feed(hcsb__decoder_t *d, const uint8_t *data, size_t len,
                 size_t chunk, events_t *out) {
  size_t off = 0, end, used;
  hcsb__frame_t f;
  hcsb__dec_event_t ev;

  while (off < len) {
    end = chunk == 0 || len - off < chunk ? len : off + chunk;
    while (off < end) {
      if (use_whole && hcsb__decoder_whole(d, data + off, end - off, &used, &f))
        ev = HCSB__DEC_FRAME;
      else
        ev = hcsb__decoder_feed(d, data + off, end - off, &used, &f);
      CHECK(used <= end - off);
      if (ev != HCSB__DEC_NEED_MORE) {
        event_t *e = &out->ev[out->n++];
        CHECK(out->n <= 64);
        e->ev = ev;
        e->type = f.hdr.type;
        e->size = f.hdr.size;
        e->id = f.hdr.id;
        e->body_len = f.body_len;
        if (ev == HCSB__DEC_FRAME) {
          CHECK(f.body != NULL);
          CHECK_EQ(f.body_len, f.hdr.size - 16);
          CHECK(f.body_len < sizeof(e->body));
          memcpy(e->body, f.body, f.body_len);
          e->body[f.body_len] = '\0';
          if (f.body_len > 0 && f.body >= data + off && f.body < data + end)
            out->zero_copy++;
        } else {
          CHECK(f.body == NULL);
        }
        if (ev == HCSB__DEC_ERROR) return;
      } else {
        CHECK_EQ(used, end - off);
      }
      off += used;
    }
  }
}

static void check_same(const events_t *a, const events_t *b) {
  size_t i;

  CHECK_EQ(a->n, b->n);
  for (i = 0; i < a->n; i++) {
    CHECK_EQ(a->ev[i].ev, b->ev[i].ev);
    CHECK_U64(a->ev[i].type, b->ev[i].type);
    CHECK_U64(a->ev[i].size, b->ev[i].size);
    CHECK_U64(a->ev[i].id, b->ev[i].id);
    CHECK_EQ(a->ev[i].body_len, b->ev[i].body_len);
    CHECK_STR(a->ev[i].body, b->ev[i].body);
  }
}

/* Three frames: a response, a notification (ID 0) and a max-ID response. */
static size_t three_frames(uint8_t *buf) {
  size_t n = 0;

  n += frame(buf + n, 0x20100601u, 5, "{\"Result\":0,\"ExitCode\":3}");
  n += frame(buf + n, 0x30100101u, 0, "{\"ContainerId\":\"c\"}");
  n += frame(buf + n, 0x20100b01u, UINT64_MAX, "{\"Result\":0}\n");
  return n;
}

static void check_three(const events_t *e) {
  CHECK_EQ(e->n, 3);
  CHECK_EQ(e->ev[0].ev, HCSB__DEC_FRAME);
  CHECK_U64(e->ev[0].type, 0x20100601u);
  CHECK_U64(e->ev[0].id, 5);
  CHECK_STR(e->ev[0].body, "{\"Result\":0,\"ExitCode\":3}");
  CHECK_U64(e->ev[1].type, 0x30100101u);
  CHECK_U64(e->ev[1].id, 0);
  CHECK_STR(e->ev[1].body, "{\"ContainerId\":\"c\"}");
  CHECK_U64(e->ev[2].id, UINT64_MAX);
  CHECK_EQ(e->ev[2].size, 16 + 13);
  CHECK_STR(e->ev[2].body, "{\"Result\":0}\n");
}

static void test_merged_chunk_zero_copy(void) {
  uint8_t buf[512];
  size_t n = three_frames(buf);
  hcsb__decoder_t d;
  events_t e = {0};

  hcsb__decoder_init(&d, 0);
  CHECK_EQ(d.max_frame, HCSB_DEFAULT_MAX_FRAME);
  feed(&d, buf, n, 0, &e);
  check_three(&e);
  /* Each frame lay whole in the chunk: no copy, no buffer. */
  CHECK_EQ(e.zero_copy, 3);
  CHECK_EQ(d.buf_cap, 0);
  CHECK(hcsb__decoder_idle(&d));
  hcsb__decoder_free(&d);
}

static void test_byte_by_byte(void) {
  uint8_t buf[512];
  size_t n = three_frames(buf), i, used;
  hcsb__decoder_t d;
  events_t e = {0};
  hcsb__frame_t f;

  hcsb__decoder_init(&d, 0);
  feed(&d, buf, n, 1, &e);
  check_three(&e);
  CHECK(hcsb__decoder_idle(&d));

  /* Mid-frame the decoder is not idle, and a zero-length feed is a no-op. */
  for (i = 0; i < 20; i++) {
    CHECK_EQ(hcsb__decoder_feed(&d, buf + i, 1, &used, &f),
             HCSB__DEC_NEED_MORE);
    CHECK_EQ(used, 1);
    CHECK(!hcsb__decoder_idle(&d));
  }
  CHECK_EQ(hcsb__decoder_feed(&d, buf, 0, &used, &f), HCSB__DEC_NEED_MORE);
  CHECK_EQ(used, 0);
  hcsb__decoder_free(&d);
}

static void test_split_at_every_offset(void) {
  uint8_t buf[512];
  size_t n = three_frames(buf), k, c;
  events_t ref = {0};
  hcsb__decoder_t d;

  hcsb__decoder_init(&d, 0);
  feed(&d, buf, n, 0, &ref);
  hcsb__decoder_free(&d);

  for (k = 0; k <= n; k++) {
    events_t e = {0};
    hcsb__decoder_init(&d, 0);
    feed(&d, buf, k, 0, &e);
    feed(&d, buf + k, n - k, 0, &e);
    check_same(&ref, &e);
    CHECK(hcsb__decoder_idle(&d));
    hcsb__decoder_free(&d);
  }
  /* And every fixed chunk size. */
  for (c = 2; c <= n; c++) {
    events_t e = {0};
    hcsb__decoder_init(&d, 0);
    feed(&d, buf, n, c, &e);
    check_same(&ref, &e);
    hcsb__decoder_free(&d);
  }
}

static void check_bad_size(uint32_t size) {
  uint8_t buf[256];
  size_t n = 0, used;
  hcsb__decoder_t d;
  hcsb__frame_t f;
  events_t e = {0};

  n += frame(buf, 0x20100201u, 1, "{\"Result\":0}");
  n += put_frame(buf + n, 0x20100301u, size, 77, NULL);
  n += frame(buf + n, 0x20100401u, 2, "{\"Result\":0}");

  hcsb__decoder_init(&d, 0);
  feed(&d, buf, n, 0, &e);
  CHECK_EQ(e.n, 2);
  CHECK_EQ(e.ev[0].ev, HCSB__DEC_FRAME);
  CHECK_EQ(e.ev[1].ev, HCSB__DEC_ERROR);
  CHECK_EQ(e.ev[1].size, size);
  CHECK_U64(e.ev[1].id, 77);
  /* Sticky: the stream can no longer be framed, whatever comes next. */
  CHECK_EQ(hcsb__decoder_feed(&d, buf, n, &used, &f), HCSB__DEC_ERROR);
  CHECK_EQ(used, 0);
  CHECK(!hcsb__decoder_idle(&d));
  hcsb__decoder_free(&d);

  /* The same byte by byte. */
  memset(&e, 0, sizeof(e));
  hcsb__decoder_init(&d, 0);
  feed(&d, buf, n, 1, &e);
  CHECK_EQ(e.n, 2);
  CHECK_EQ(e.ev[1].ev, HCSB__DEC_ERROR);
  CHECK_EQ(hcsb__decoder_feed(&d, buf, 1, &used, &f), HCSB__DEC_ERROR);
  hcsb__decoder_free(&d);
}

static void test_size_below_header(void) {
  check_bad_size(0);
  check_bad_size(8);
  check_bad_size(15);
}

static void test_empty_body_frame(void) {
  uint8_t buf[128];
  size_t n = 0;
  hcsb__decoder_t d;
  events_t e = {0}, e1 = {0};

  n += put_frame(buf, 0x20100701u, 16, 9, NULL);
  n += frame(buf + n, 0x20100801u, 10, "{}");
  hcsb__decoder_init(&d, 0);
  feed(&d, buf, n, 0, &e);
  CHECK_EQ(e.n, 2);
  CHECK_EQ(e.ev[0].ev, HCSB__DEC_FRAME);
  CHECK_EQ(e.ev[0].size, 16);
  CHECK_EQ(e.ev[0].body_len, 0);
  CHECK_U64(e.ev[0].id, 9);
  CHECK_STR(e.ev[1].body, "{}");
  hcsb__decoder_free(&d);

  hcsb__decoder_init(&d, 0);
  feed(&d, buf, n, 1, &e1);
  check_same(&e, &e1);
  hcsb__decoder_free(&d);
}

static void check_oversize(size_t chunk) {
  static uint8_t buf[4096];
  char big[300];
  size_t n = 0;
  hcsb__decoder_t d;
  events_t e = {0};

  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  n += frame(buf + n, 0x20100601u, 1, "{\"Result\":0}");
  n += frame(buf + n, 0x20100c01u, 42, big); /* 315 bytes */
  n += frame(buf + n, 0x20100901u, 43, "{\"Result\":1}");

  hcsb__decoder_init(&d, 100);
  feed(&d, buf, n, chunk, &e);
  CHECK_EQ(e.n, 3);
  CHECK_EQ(e.ev[0].ev, HCSB__DEC_FRAME);
  CHECK_EQ(e.ev[1].ev, HCSB__DEC_OVERSIZE);
  CHECK_U64(e.ev[1].type, 0x20100c01u);
  CHECK_U64(e.ev[1].id, 42);
  CHECK_EQ(e.ev[1].size, 16 + 299);
  CHECK_EQ(e.ev[2].ev, HCSB__DEC_FRAME);
  CHECK_U64(e.ev[2].id, 43);
  CHECK_STR(e.ev[2].body, "{\"Result\":1}");
  /* The oversize body was skipped, never stored. */
  CHECK(d.buf_cap < 299);
  CHECK(hcsb__decoder_idle(&d));
  hcsb__decoder_free(&d);
}

static void test_oversize_whole(void) {
  check_oversize(0);
}

static void test_oversize_byte_by_byte(void) {
  check_oversize(1);
  check_oversize(7);
}

static void test_oversize_reported_at_header(void) {
  uint8_t hdr[16];
  hcsb__hdr_t h = {0x20100901u, 1000, 5};
  hcsb__decoder_t d;
  hcsb__frame_t f;
  size_t used;

  /* Reported as soon as the 16th header byte arrives, before any body. */
  hcsb__hdr_encode(hdr, &h);
  hcsb__decoder_init(&d, 64);
  CHECK_EQ(hcsb__decoder_feed(&d, hdr, 15, &used, &f), HCSB__DEC_NEED_MORE);
  CHECK_EQ(hcsb__decoder_feed(&d, hdr + 15, 1, &used, &f), HCSB__DEC_OVERSIZE);
  CHECK_EQ(used, 1);
  CHECK_U64(f.hdr.id, 5);
  CHECK_EQ(f.hdr.size, 1000);
  CHECK(!hcsb__decoder_idle(&d)); /* still skipping */
  hcsb__decoder_free(&d);

  /* A limit below the header size still lets empty frames through. */
  hcsb__decoder_init(&d, 1);
  CHECK_EQ(d.max_frame, 16);
  hcsb__decoder_set_max(&d, 0);
  CHECK_EQ(d.max_frame, HCSB_DEFAULT_MAX_FRAME);
  hcsb__decoder_set_max(&d, 5000);
  CHECK_EQ(d.max_frame, 5000);
  hcsb__decoder_free(&d);
}

#define CHUNK (64u * 1024u)

static void test_huge_declared_frame_skipped(void) {
  static uint8_t chunk[CHUNK];
  uint8_t tail[64];
  hcsb__hdr_t h = {0x20100c01u, 100u * 1024u * 1024u, 3};
  hcsb__decoder_t d;
  hcsb__frame_t f;
  size_t used, left, n, tn;

  hcsb__decoder_init(&d, 0); /* default limit 16 MiB < 100 MiB */
  hcsb__hdr_encode(chunk, &h);
  memset(chunk + 16, ' ', CHUNK - 16);
  CHECK_EQ(hcsb__decoder_feed(&d, chunk, CHUNK, &used, &f), HCSB__DEC_OVERSIZE);
  CHECK_EQ(used, 16);
  CHECK_U64(f.hdr.id, 3);
  left = h.size - 16;
  n = CHUNK - 16;
  while (left > 0) {
    if (n > left) n = left;
    CHECK_EQ(hcsb__decoder_feed(&d, chunk + 16, n, &used, &f),
             HCSB__DEC_NEED_MORE);
    CHECK_EQ(used, n);
    CHECK_EQ(d.buf_cap, 0); /* nothing buffered, ever */
    left -= n;
    n = CHUNK;
  }
  CHECK(hcsb__decoder_idle(&d));
  tn = frame(tail, 0x20100601u, 4, "{\"Result\":0}");
  CHECK_EQ(hcsb__decoder_feed(&d, tail, tn, &used, &f), HCSB__DEC_FRAME);
  CHECK_U64(f.hdr.id, 4);
  hcsb__decoder_free(&d);
}

static void test_buffer_grows_with_received_bytes(void) {
  static uint8_t chunk[CHUNK];
  hcsb__hdr_t h = {0x20100c01u, 100u * 1024u * 1024u, 3};
  hcsb__decoder_t d;
  hcsb__frame_t f;
  size_t used, got = 0;

  /* A limit that admits the frame: memory must still track arrivals. */
  hcsb__decoder_init(&d, 200u * 1024u * 1024u);
  hcsb__hdr_encode(chunk, &h);
  CHECK_EQ(hcsb__decoder_feed(&d, chunk, 16, &used, &f), HCSB__DEC_NEED_MORE);
  CHECK_EQ(d.buf_cap, 0);
  memset(chunk, 'a', sizeof(chunk));
  while (got < 1024u * 1024u) {
    CHECK_EQ(hcsb__decoder_feed(&d, chunk, CHUNK, &used, &f),
             HCSB__DEC_NEED_MORE);
    got += CHUNK;
    CHECK(d.buf_cap >= got);
    CHECK(d.buf_cap <= 2 * got);
  }
  hcsb__decoder_free(&d);
}

static void test_big_buffer_released_after_use(void) {
  static uint8_t buf[300 * 1024];
  size_t body = sizeof(buf) - 16, used, tn;
  hcsb__hdr_t h = {0x20100c01u, (uint32_t)sizeof(buf), 8};
  hcsb__decoder_t d;
  hcsb__frame_t f;
  uint8_t tail[64];

  hcsb__hdr_encode(buf, &h);
  memset(buf + 16, 'z', body);
  hcsb__decoder_init(&d, 0);
  /* Two halves force the body through the decoder's buffer. */
  CHECK_EQ(hcsb__decoder_feed(&d, buf, 1000, &used, &f), HCSB__DEC_NEED_MORE);
  CHECK_EQ(hcsb__decoder_feed(&d, buf + 1000, sizeof(buf) - 1000, &used, &f),
           HCSB__DEC_FRAME);
  CHECK_EQ(f.body_len, body);
  CHECK(f.body == d.buf);
  CHECK(f.body[0] == 'z' && f.body[body - 1] == 'z');
  CHECK(d.buf_cap >= body);
  /* The next call may drop it: the frame above is dead by then. */
  tn = frame(tail, 0x20100601u, 9, "{\"Result\":0}");
  CHECK_EQ(hcsb__decoder_feed(&d, tail, 3, &used, &f), HCSB__DEC_NEED_MORE);
  CHECK(d.buf_cap <= 64u * 1024u);
  CHECK_EQ(hcsb__decoder_feed(&d, tail + 3, tn - 3, &used, &f),
           HCSB__DEC_FRAME);
  CHECK_U64(f.hdr.id, 9);
  hcsb__decoder_free(&d);
}

static void test_body_split_after_header_zero_copy(void) {
  uint8_t buf[128];
  size_t n = frame(buf, 0x20100501u, 6, "{\"Result\":0,\"ProcessId\":44}"),
         used;
  hcsb__decoder_t d;
  hcsb__frame_t f;

  /* Header alone first, then the whole body: no copy needed either. */
  hcsb__decoder_init(&d, 0);
  CHECK_EQ(hcsb__decoder_feed(&d, buf, 16, &used, &f), HCSB__DEC_NEED_MORE);
  CHECK_EQ(hcsb__decoder_feed(&d, buf + 16, n - 16, &used, &f),
           HCSB__DEC_FRAME);
  CHECK(f.body == buf + 16);
  CHECK_EQ(d.buf_cap, 0);
  hcsb__decoder_free(&d);
}

/* The inline fast path takes only whole frames with a body within the
 * limit from an idle decoder, and together with the decoder it reports
 * exactly what the decoder alone does, however the stream is cut. */
static void test_whole_fast_path(void) {
  uint8_t buf[1024], big[100];
  size_t n = three_frames(buf), used = 99, cut;
  hcsb__decoder_t d;
  hcsb__frame_t f;
  events_t plain, fast;

  hcsb__decoder_init(&d, 64);
  CHECK(hcsb__decoder_whole(&d, buf, n, &used, &f));
  CHECK_EQ(used, 16 + 25);
  CHECK_U64(f.hdr.type, 0x20100601u);
  CHECK_U64(f.hdr.id, 5);
  CHECK(f.body == buf + 16);
  CHECK_EQ(f.body_len, 25);
  /* Not a whole frame: a header or body cut short. */
  used = 99;
  CHECK(!hcsb__decoder_whole(&d, buf, 15, &used, &f));
  CHECK(!hcsb__decoder_whole(&d, buf, 16 + 24, &used, &f));
  CHECK_EQ(used, 99);
  /* Bodiless, oversize and undersize frames are the decoder's. */
  put_frame(big, 0x20100601u, 16, 1, NULL);
  CHECK(!hcsb__decoder_whole(&d, big, 16, &used, &f));
  put_frame(big, 0x20100601u, 65, 1, NULL);
  memset(big + 16, 'x', sizeof(big) - 16);
  CHECK(!hcsb__decoder_whole(&d, big, sizeof(big), &used, &f));
  put_frame(big, 0x20100601u, 15, 1, NULL);
  CHECK(!hcsb__decoder_whole(&d, big, sizeof(big), &used, &f));
  /* Mid-frame, the decoder holds state the fast path must not skip. */
  CHECK_EQ(hcsb__decoder_feed(&d, buf, 20, &used, &f), HCSB__DEC_NEED_MORE);
  CHECK(!hcsb__decoder_whole(&d, buf, n, &used, &f));
  hcsb__decoder_free(&d);

  /* Both ways over a stream with every kind of frame, cut everywhere. */
  n += put_frame(buf + n, 0x20100601u, 16, 7, NULL);
  n += frame(buf + n, 0x20100601u, 8,
             "{\"Result\":0,\"Padding\":\"................................."
             "...............................\"}");
  n += frame(buf + n, 0x20100601u, 10, "{}");
  for (cut = 0; cut <= n; cut++) {
    size_t chunk;
    for (chunk = 0; chunk <= 7; chunk += 7) {
      memset(&plain, 0, sizeof(plain));
      memset(&fast, 0, sizeof(fast));
      use_whole = 0;
      hcsb__decoder_init(&d, 64);
      feed(&d, buf, cut, chunk, &plain);
      feed(&d, buf + cut, n - cut, chunk, &plain);
      hcsb__decoder_free(&d);
      use_whole = 1;
      hcsb__decoder_init(&d, 64);
      feed(&d, buf, cut, chunk, &fast);
      feed(&d, buf + cut, n - cut, chunk, &fast);
      hcsb__decoder_free(&d);
      use_whole = 0;
      check_same(&plain, &fast);
      CHECK_EQ(plain.n, 6);
      CHECK_EQ(plain.ev[4].ev, HCSB__DEC_OVERSIZE);
    }
  }
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(merged_chunk_zero_copy),
    TEST_ENTRY(byte_by_byte),
    TEST_ENTRY(split_at_every_offset),
    TEST_ENTRY(size_below_header),
    TEST_ENTRY(empty_body_frame),
    TEST_ENTRY(oversize_whole),
    TEST_ENTRY(oversize_byte_by_byte),
    TEST_ENTRY(oversize_reported_at_header),
    TEST_ENTRY(huge_declared_frame_skipped),
    TEST_ENTRY(buffer_grows_with_received_bytes),
    TEST_ENTRY(big_buffer_released_after_use),
    TEST_ENTRY(body_split_after_header_zero_copy),
    TEST_ENTRY(whole_fast_path),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
