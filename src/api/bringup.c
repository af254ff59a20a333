/* UVM bring-up listeners (protocol.md §2.2, §2.3): the entropy port, without
 * which the guest's init never starts the GCS, and the GCS log stream.
 *
 * Both listeners accept any number of dials (vsockexec re-dials; stdout and
 * stderr may be forwarded separately), each kind capped at MAX_CONNS live
 * connections so a guest dialing in a loop cannot exhaust the host.
 *
 * Lifetime: as in stdio.c, an embedded handle is closed last and its close
 * callback frees the object, once libuv has returned every entropy write.
 * Log connections are freed at their EOF, or from that close callback, never
 * inside a log callback that may be the one calling hcsb__bringup_close().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/stdio.h"
#include "bridge/transport.h"
#include "core/list.h"
#include "proto/proto.h"

#define MAX_CONNS 16u

/* Longest log line kept; the rest of a longer line is dropped. */
#define LOG_LINE_MAX (64u * 1024u)

typedef struct conn_s conn_t;
struct conn_s {
  hcsb__link_t link;
  hcsb__bringup_t *owner;
  uv_stream_t *stream; /* NULL once closed */
};

typedef struct entropy_conn_s {
  conn_t c;
  uv_write_t req;
  unsigned char bytes[HCSB_ENTROPY_BYTES];
} entropy_conn_t;

typedef struct log_conn_s {
  conn_t c;
  size_t len;   /* bytes of the current line in `line` */
  int skipping; /* inside the dropped tail of an overlong line */
  char line[LOG_LINE_MAX + 1];
} log_conn_t;

typedef struct conn_list_s {
  hcsb__link_t head;
  unsigned count;
} conn_list_t;

struct hcsb__bringup_s {
  hcsb__listener_t *entropy_listener;
  hcsb__listener_t *log_listener;
  hcsb_guest_log_cb log_cb;
  void *log_data;
  json_tokener *tok;
  conn_list_t entropy_conns;
  conn_list_t log_conns;
  uv_idle_t anchor; /* never started: its close callback frees us */
  int closing;
  int anchor_closed;
};

static void conn_close_stream(conn_t *c) {
  uv_stream_t *st = c->stream;
  c->stream = NULL;
  hcsb__stream_close(st);
}

static void list_add(conn_list_t *l, conn_t *c) {
  hcsb__list_push(&l->head, &c->link);
  l->count++;
}

static void list_remove(conn_list_t *l, conn_t *c) {
  hcsb__list_remove(&c->link);
  l->count--;
}

static void list_close_streams(conn_list_t *l) {
  hcsb__link_t *k;

  for (k = l->head.next; k != &l->head; k = k->next) {
    conn_t *c = HCSB__CONTAINER_OF(k, conn_t, link);
    if (c->stream != NULL) conn_close_stream(c);
  }
}

static void maybe_free(hcsb__bringup_t *b) {
  if (!b->anchor_closed || b->entropy_conns.count != 0) return;
  if (b->tok != NULL) json_tokener_free(b->tok);
  free(b);
}

/* ------------------------------------------------------------------------ */
/* Entropy: 512 bytes to each dialer, then close */

static void on_entropy_written(uv_write_t *req, int status) {
  entropy_conn_t *e = req->data;
  hcsb__bringup_t *b = e->c.owner;
  (void)status; /* the guest retries on its own if it got nothing */

  if (e->c.stream != NULL) conn_close_stream(&e->c);
  list_remove(&b->entropy_conns, &e->c);
  free(e);
  maybe_free(b);
}

static void on_entropy_accept(void *data, hcsb__listener_t *l, int status,
                              uv_stream_t *stream) {
  hcsb__bringup_t *b = data;
  entropy_conn_t *e;
  uv_buf_t buf;
  (void)l;

  if (status < 0) return; /* keeps listening; the guest will dial again */
  if (b->entropy_conns.count >= MAX_CONNS || (e = malloc(sizeof *e)) == NULL) {
    hcsb__stream_close(stream);
    return;
  }
  e->c.owner = b;
  e->c.stream = stream;
  e->req.data = e;
  buf = uv_buf_init((char *)e->bytes, sizeof e->bytes);
  /* Synchronous uv_random: getrandom(2) or /dev/urandom, a CSPRNG. */
  if (uv_random(NULL, NULL, e->bytes, sizeof e->bytes, 0, NULL) != 0 ||
      uv_write(&e->req, stream, &buf, 1, on_entropy_written) != 0) {
    hcsb__stream_close(stream);
    free(e);
    return;
  }
  list_add(&b->entropy_conns, &e->c);
}

/* ------------------------------------------------------------------------ */
/* Log stream: newline-delimited JSON logrus records */

static const char *str_member(json_object *o, const char *key) {
  json_object *v;
  if (!json_object_object_get_ex(o, key, &v)) return NULL;
  return json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                  : NULL;
}

/* `line` has room for a NUL at line[len]. */
static void log_emit(hcsb__bringup_t *b, char *line, size_t len) {
  hcsb_guest_log_record_t rec;
  json_object *o = NULL;

  if (len > 0 && line[len - 1] == '\r') len--;
  if (len == 0) return; /* blank lines carry nothing */
  line[len] = '\0';
  memset(&rec, 0, sizeof rec);
  rec.line = line;
  rec.line_len = len;
  /* Anything else (a Go panic trailer, a truncated record) stays raw. */
  if (line[0] == '{' && hcsb__json_parse_tok(b->tok, line, len, &o) == 0 &&
      json_object_is_type(o, json_type_object)) {
    rec.time = str_member(o, "time");
    rec.level = str_member(o, "level");
    rec.msg = str_member(o, "msg");
  }
  b->log_cb(b->log_data, &rec);
  json_object_put(o);
}

static void on_log_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  log_conn_t *lc = h->data;
  (void)suggested;
  /* Read straight after the partial line; there is always room (a full
   * buffer is flushed as a truncated line before the next read). */
  *buf = uv_buf_init(lc->line + lc->len, (unsigned)(LOG_LINE_MAX - lc->len));
}

/* Splits the bytes now in lc->line into lines.  Returns 0, or -1 when the
 * owner was closed from the log callback (stop touching anything). */
static int log_split(log_conn_t *lc, size_t nread) {
  hcsb__bringup_t *b = lc->c.owner;
  size_t end = lc->len + nread;
  size_t begin = 0;
  char *nl;

  while ((nl = memchr(lc->line + begin, '\n', end - begin)) != NULL) {
    size_t stop = (size_t)(nl - lc->line);
    if (lc->skipping)
      lc->skipping = 0;
    else
      log_emit(b, lc->line + begin, stop - begin);
    if (b->closing) return -1;
    begin = stop + 1;
  }
  if (lc->skipping) {
    lc->len = 0;
  } else if (end - begin == LOG_LINE_MAX) {
    lc->len = 0;
    lc->skipping = 1;
    log_emit(b, lc->line, LOG_LINE_MAX);
    if (b->closing) return -1;
  } else {
    memmove(lc->line, lc->line + begin, end - begin);
    lc->len = end - begin;
  }
  return 0;
}

static void on_log_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  log_conn_t *lc = st->data;
  hcsb__bringup_t *b = lc->c.owner;
  (void)buf;

  if (nread > 0) {
    (void)log_split(lc, (size_t)nread);
    return;
  }
  if (nread == 0) return;
  /* EOF or error: the last line may lack its newline. */
  if (!lc->skipping && lc->len > 0) {
    log_emit(b, lc->line, lc->len);
    if (b->closing) return;
  }
  conn_close_stream(&lc->c);
  list_remove(&b->log_conns, &lc->c);
  free(lc);
}

static void on_log_accept(void *data, hcsb__listener_t *l, int status,
                          uv_stream_t *stream) {
  hcsb__bringup_t *b = data;
  log_conn_t *lc;
  (void)l;

  if (status < 0) return;
  if (b->log_conns.count >= MAX_CONNS || (lc = malloc(sizeof *lc)) == NULL) {
    hcsb__stream_close(stream);
    return;
  }
  lc->c.owner = b;
  lc->c.stream = stream;
  lc->len = 0;
  lc->skipping = 0;
  stream->data = lc;
  if (uv_read_start(stream, on_log_alloc, on_log_read) != 0) {
    hcsb__stream_close(stream);
    free(lc);
    return;
  }
  list_add(&b->log_conns, &lc->c);
}

/* ------------------------------------------------------------------------ */
/* Open / close */

static void on_anchor_close(uv_handle_t *h) {
  hcsb__bringup_t *b = h->data;

  /* Their streams were closed by hcsb__bringup_close(). */
  while (!hcsb__list_empty(&b->log_conns.head)) {
    conn_t *c = HCSB__CONTAINER_OF(b->log_conns.head.next, conn_t, link);
    list_remove(&b->log_conns, c);
    free(c);
  }
  b->anchor_closed = 1;
  maybe_free(b);
}

int hcsb__bringup_open(uv_loop_t *loop, const hcsb_addr_t *addr, int entropy,
                       hcsb_guest_log_cb log_cb, void *log_data,
                       hcsb__bringup_t **out) {
  hcsb__bringup_t *b;
  int rc = 0;

  if (loop == NULL || addr == NULL || out == NULL) return -EINVAL;
  b = calloc(1, sizeof *b);
  if (b == NULL) return -ENOMEM;
  b->log_cb = log_cb;
  b->log_data = log_data;
  hcsb__list_init(&b->entropy_conns.head);
  hcsb__list_init(&b->log_conns.head);
  if (log_cb != NULL && (b->tok = hcsb__json_tokener_new()) == NULL)
    rc = -ENOMEM;
  if (rc == 0 && entropy)
    rc = hcsb__listen(loop, addr, HCSB_PORT_ENTROPY, 0, on_entropy_accept, b,
                      &b->entropy_listener);
  if (rc == 0 && log_cb != NULL)
    rc = hcsb__listen(loop, addr, HCSB_PORT_LOG, 0, on_log_accept, b,
                      &b->log_listener);
  if (rc == 0) rc = uv_idle_init(loop, &b->anchor);
  if (rc != 0) {
    if (b->entropy_listener != NULL) hcsb__listener_close(b->entropy_listener);
    if (b->log_listener != NULL) hcsb__listener_close(b->log_listener);
    if (b->tok != NULL) json_tokener_free(b->tok);
    free(b);
    return rc;
  }
  b->anchor.data = b;
  *out = b;
  return 0;
}

void hcsb__bringup_close(hcsb__bringup_t *b) {
  if (b == NULL || b->closing) return;
  b->closing = 1;
  if (b->entropy_listener != NULL) hcsb__listener_close(b->entropy_listener);
  if (b->log_listener != NULL) hcsb__listener_close(b->log_listener);
  b->entropy_listener = b->log_listener = NULL;
  /* Entropy writes come back cancelled and free their connection. */
  list_close_streams(&b->entropy_conns);
  list_close_streams(&b->log_conns);
  uv_close((uv_handle_t *)&b->anchor, on_anchor_close);
}
