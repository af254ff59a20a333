/* Task events to containerd (events.h): a queue of packed Forward request
 * frames, sent one at a time over one ttrpc connection that is made on
 * demand and made again after a failure. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include "core/list.h"
#include "forward.pb-c.h"
#include "shim/events.h"
#include "shim/log.h"
#include "shim/ttrpc.h"

#define DEFAULT_MAX_QUEUED 1024
#define DEFAULT_CALL_TIMEOUT_MS 10000
#define DEFAULT_MAX_ATTEMPTS 5
#define DEFAULT_BACKOFF_MS 100
#define MAX_BACKOFF_MS 5000

static const char service[] = "containerd.services.events.ttrpc.v1.Events";

typedef struct item_s {
  hcsb__link_t link;
  uint8_t *frame; /* a whole request frame; its stream id is set per try */
  size_t len;
  unsigned attempts;
  char topic[64]; /* for logs */
} item_t;

typedef enum {
  ST_IDLE,       /* no connection */
  ST_CONNECTING, /* connect in progress */
  ST_READY,      /* connected, nothing in flight */
  ST_WAITING,    /* the head item was sent; waiting for its answer */
  ST_BACKOFF     /* a try failed; the timer says when to go on */
} state_t;

struct hcsb__shim_events_s {
  uv_loop_t *loop;
  char *path; /* NULL: drop everything */
  char *ns;
  hcsb__shim_events_opts_t opts;
  hcsb__link_t queue;
  size_t nqueued;
  state_t state;
  uv_pipe_t pipe;
  int pipe_open; /* initialised, close callback not run yet */
  uv_connect_t creq;
  uv_write_t wreq;
  int writing;
  uv_timer_t timer;       /* call timeout, back-off */
  uv_timer_t flush_timer; /* close's deadline */
  int handles;            /* libuv handles whose close callback is due */
  hcsb__ttrpc_reader_t reader;
  uint32_t stream; /* last stream id used */
  int closing, finishing;
  hcsb__shim_events_close_cb close_cb;
  void *close_data;
  hcsb__shim_events_stats_t stats;
  int warned_disabled;
  char rbuf[4096];
};

static void kick(hcsb__shim_events_t *ev);
static void finish(hcsb__shim_events_t *ev);

int hcsb__shim_events_new(uv_loop_t *loop, const char *address, const char *ns,
                          const hcsb__shim_events_opts_t *opts,
                          hcsb__shim_events_t **out) {
  hcsb__shim_events_t *ev;
  struct sockaddr_un sa;

  if (loop == NULL || ns == NULL || *ns == '\0' || out == NULL) return -EINVAL;
  if (address != NULL && strncmp(address, "unix://", 7) == 0) address += 7;
  if (address != NULL && strlen(address) >= sizeof(sa.sun_path))
    return -ENAMETOOLONG;
  ev = calloc(1, sizeof(*ev));
  if (ev == NULL) return -ENOMEM;
  ev->loop = loop;
  if (opts != NULL) ev->opts = *opts;
  if (ev->opts.max_queued == 0) ev->opts.max_queued = DEFAULT_MAX_QUEUED;
  if (ev->opts.call_timeout_ms == 0)
    ev->opts.call_timeout_ms = DEFAULT_CALL_TIMEOUT_MS;
  if (ev->opts.max_attempts == 0) ev->opts.max_attempts = DEFAULT_MAX_ATTEMPTS;
  if (ev->opts.backoff_ms == 0) ev->opts.backoff_ms = DEFAULT_BACKOFF_MS;
  ev->ns = strdup(ns);
  if (address != NULL && *address != '\0') ev->path = strdup(address);
  if (ev->ns == NULL || (address != NULL && *address && ev->path == NULL)) {
    free(ev->ns);
    free(ev->path);
    free(ev);
    return -ENOMEM;
  }
  hcsb__list_init(&ev->queue);
  hcsb__ttrpc_reader_init(&ev->reader, 0);
  /* Timers cannot fail to initialise on Linux. */
  uv_timer_init(loop, &ev->timer);
  uv_timer_init(loop, &ev->flush_timer);
  ev->timer.data = ev->flush_timer.data = ev;
  *out = ev;
  return 0;
}

void hcsb__shim_events_stats(const hcsb__shim_events_t *ev,
                             hcsb__shim_events_stats_t *out) {
  *out = ev->stats;
  out->queued = ev->nqueued;
}

/* ------------------------------------------------------------------------ */
/* The queue */

static void item_free(item_t *it) {
  free(it->frame);
  free(it);
}

/* Drops the head item (logged with `why`). */
static void drop_head(hcsb__shim_events_t *ev, const char *why) {
  item_t *it = HCSB__CONTAINER_OF(ev->queue.next, item_t, link);

  SHIM_WARN("events: %s dropped: %s", it->topic, why);
  hcsb__list_remove(&it->link);
  ev->nqueued--;
  ev->stats.dropped++;
  item_free(it);
}

static void pop_head(hcsb__shim_events_t *ev) {
  item_t *it = HCSB__CONTAINER_OF(ev->queue.next, item_t, link);

  hcsb__list_remove(&it->link);
  ev->nqueued--;
  item_free(it);
}

int hcsb__shim_publish(hcsb__shim_events_t *ev, const char *topic,
                       const ProtobufCMessage *event) {
  Containerd__Services__Events__Ttrpc__V1__ForwardRequest req =
      CONTAINERD__SERVICES__EVENTS__TTRPC__V1__FORWARD_REQUEST__INIT;
  Containerd__Services__Events__Ttrpc__V1__Envelope env =
      CONTAINERD__SERVICES__EVENTS__TTRPC__V1__ENVELOPE__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  const char *md[2] = {HCSB__SHIM_NS_METADATA, ev->ns};
  struct timespec now;
  item_t *it;
  size_t n;
  int r;

  if (topic == NULL || topic[0] != '/' || event == NULL) return -EINVAL;
  if (ev->closing) return -ECANCELED;
  if (ev->path == NULL) {
    if (!ev->warned_disabled)
      SHIM_DEBUG("events: no TTRPC_ADDRESS; events are not forwarded");
    ev->warned_disabled = 1;
    ev->stats.published++;
    ev->stats.dropped++;
    return 0;
  }
  if (ev->nqueued >= ev->opts.max_queued) {
    SHIM_WARN("events: %zu events waiting; %s dropped", ev->nqueued, topic);
    ev->stats.dropped++;
    return -ENOBUFS;
  }
  n = protobuf_c_message_get_packed_size(event);
  if (n > HCSB__TTRPC_MAX_PAYLOAD) return -EMSGSIZE;
  it = calloc(1, sizeof(*it));
  if (it == NULL) return -ENOMEM;
  any.value.len = n;
  any.value.data = malloc(n ? n : 1);
  if (any.value.data == NULL) {
    free(it);
    return -ENOMEM;
  }
  protobuf_c_message_pack(event, any.value.data);
  /* containerd's typeurl names its events by their full protobuf name. */
  any.type_url = (char *)event->descriptor->name;
  clock_gettime(CLOCK_REALTIME, &now);
  ts.seconds = now.tv_sec;
  ts.nanos = (int32_t)now.tv_nsec;
  env.timestamp = &ts;
  env.namespace_ = ev->ns;
  env.topic = (char *)topic;
  env.event = &any;
  req.envelope = &env;
  r = hcsb__ttrpc_request_frame(0, service, "Forward", &req.base,
                                (int64_t)ev->opts.call_timeout_ms * 1000000, md,
                                1, &it->frame, &it->len);
  free(any.value.data);
  if (r < 0) {
    free(it);
    return r;
  }
  snprintf(it->topic, sizeof(it->topic), "%s", topic);
  hcsb__list_push(&ev->queue, &it->link);
  ev->nqueued++;
  ev->stats.published++;
  kick(ev);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The connection */

static void on_pipe_closed(uv_handle_t *h) {
  hcsb__shim_events_t *ev = h->data;

  ev->pipe_open = 0;
  ev->handles--;
  if (ev->finishing)
    finish(ev);
  else
    kick(ev);
}

static void close_pipe(hcsb__shim_events_t *ev) {
  if (!ev->pipe_open || uv_is_closing((uv_handle_t *)&ev->pipe)) return;
  uv_close((uv_handle_t *)&ev->pipe, on_pipe_closed);
  hcsb__ttrpc_reader_free(&ev->reader);
  hcsb__ttrpc_reader_init(&ev->reader, 0);
}

static void on_backoff_done(uv_timer_t *t) {
  hcsb__shim_events_t *ev = t->data;

  ev->state = ST_IDLE;
  kick(ev);
}

/* The connection failed (or the answer did not come): the head item
 * counts one more try; go on after a back-off. */
static void fail(hcsb__shim_events_t *ev, const char *what, int err) {
  uint64_t delay = ev->opts.backoff_ms;
  unsigned attempts;
  item_t *head;

  close_pipe(ev);
  uv_timer_stop(&ev->timer);
  if (hcsb__list_empty(&ev->queue)) {
    ev->state = ST_IDLE;
    return;
  }
  head = HCSB__CONTAINER_OF(ev->queue.next, item_t, link);
  attempts = ++head->attempts;
  SHIM_DEBUG("events: %s %s: %s (try %u of %u)", what, ev->path,
             uv_strerror(err), attempts, ev->opts.max_attempts);
  if (attempts >= ev->opts.max_attempts) {
    char why[128];
    snprintf(why, sizeof(why), "%s %s: %s", what, ev->path, uv_strerror(err));
    drop_head(ev, why);
  }
  for (unsigned i = 1; i < attempts && delay < MAX_BACKOFF_MS; i++) delay *= 2;
  if (delay > MAX_BACKOFF_MS) delay = MAX_BACKOFF_MS;
  ev->state = ST_BACKOFF;
  uv_timer_start(&ev->timer, on_backoff_done, delay, 0);
}

static void on_call_timeout(uv_timer_t *t) {
  fail(t->data, "no answer from", UV_ETIMEDOUT);
}

static void on_written(uv_write_t *req, int status) {
  hcsb__shim_events_t *ev = req->data;

  ev->writing = 0;
  if (ev->finishing) {
    finish(ev);
    return;
  }
  if (status < 0) {
    if (status != UV_ECANCELED && ev->state == ST_WAITING)
      fail(ev, "write to", status);
    return;
  }
  /* The answer may have come first; then the next event waited for us. */
  if (ev->state == ST_READY) kick(ev);
}

/* One answer: the head item is done, whatever containerd said. */
static void on_answer(hcsb__shim_events_t *ev, const uint8_t *p, size_t n) {
  item_t *head = HCSB__CONTAINER_OF(ev->queue.next, item_t, link);
  hcsb__pb_budget_t b;
  Ttrpc__Response *resp;

  hcsb__pb_budget_init(&b, 0);
  if (hcsb__ttrpc_response_unpack(p, n, &b, &resp) < 0) {
    fail(ev, "an unreadable answer from", UV_EPROTO);
    return;
  }
  uv_timer_stop(&ev->timer);
  if (resp->status != NULL && resp->status->code != 0) {
    char why[300];
    snprintf(why, sizeof(why), "containerd answered %d (%s)",
             resp->status->code, resp->status->message);
    drop_head(ev, why);
  } else {
    SHIM_DEBUG("events: %s forwarded", head->topic);
    ev->stats.forwarded++;
    pop_head(ev);
  }
  protobuf_c_message_free_unpacked(&resp->base, &b.allocator);
  ev->state = ST_READY;
  kick(ev);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  hcsb__shim_events_t *ev = h->data;

  (void)hint;
  *buf = uv_buf_init(ev->rbuf, sizeof(ev->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  hcsb__shim_events_t *ev = s->data;
  const uint8_t *p = (const uint8_t *)buf->base;
  size_t left = nread > 0 ? (size_t)nread : 0;

  if (nread == 0) return;
  if (nread < 0) {
    fail(ev, "connection lost to", (int)nread);
    return;
  }
  while (left > 0 && ev->pipe_open && !uv_is_closing((uv_handle_t *)s)) {
    uint8_t *payload;
    size_t plen;
    int done;
    ssize_t used = hcsb__ttrpc_reader_feed(&ev->reader, p, left, &done);

    if (used < 0) {
      fail(ev, "a malformed frame from", UV_EPROTO);
      return;
    }
    p += used;
    left -= (size_t)used;
    if (!done) continue;
    payload = hcsb__ttrpc_reader_take(&ev->reader, &plen);
    if (ev->reader.h.type != HCSB__TTRPC_TYPE_RESPONSE ||
        ev->state != ST_WAITING || ev->reader.h.stream_id != ev->stream) {
      free(payload);
      fail(ev, "an unexpected frame from", UV_EPROTO);
      return;
    }
    on_answer(ev, payload, plen);
    free(payload);
  }
}

static void on_connect(uv_connect_t *req, int status) {
  hcsb__shim_events_t *ev = req->data;

  if (ev->finishing) return; /* the close callback carries on */
  if (status < 0) {
    fail(ev, "cannot connect to", status);
    return;
  }
  ev->stats.connects++;
  ev->state = ST_READY;
  uv_read_start((uv_stream_t *)&ev->pipe, on_alloc, on_read);
  kick(ev);
}

static void send_head(hcsb__shim_events_t *ev) {
  item_t *head = HCSB__CONTAINER_OF(ev->queue.next, item_t, link);
  hcsb__ttrpc_header_t h;
  uv_buf_t buf;
  int r;

  /* Odd and increasing, as ttrpc clients number their streams. */
  ev->stream += 2;
  if (ev->stream % 2 == 0) ev->stream = 1;
  hcsb__ttrpc_header_get(head->frame, &h);
  h.stream_id = ev->stream;
  hcsb__ttrpc_header_put(head->frame, &h);
  buf = uv_buf_init((char *)head->frame, (unsigned)head->len);
  ev->wreq.data = ev;
  r = uv_write(&ev->wreq, (uv_stream_t *)&ev->pipe, &buf, 1, on_written);
  if (r < 0) {
    fail(ev, "write to", r);
    return;
  }
  ev->writing = 1;
  ev->state = ST_WAITING;
  uv_timer_start(&ev->timer, on_call_timeout, ev->opts.call_timeout_ms, 0);
}

static void kick(hcsb__shim_events_t *ev) {
  int r;

  if (ev->finishing) return;
  if (hcsb__list_empty(&ev->queue)) {
    if (ev->closing) finish(ev);
    return;
  }
  switch (ev->state) {
    case ST_IDLE:
      if (ev->pipe_open) return; /* the old one's close callback comes first */
      r = uv_pipe_init(ev->loop, &ev->pipe, 0);
      if (r < 0) {
        fail(ev, "cannot make a socket for", r);
        return;
      }
      ev->pipe.data = ev;
      ev->pipe_open = 1;
      ev->handles++;
      ev->state = ST_CONNECTING;
      ev->creq.data = ev;
      uv_pipe_connect(&ev->creq, &ev->pipe, ev->path, on_connect);
      return;
    case ST_READY:
      if (!ev->writing) send_head(ev);
      return;
    default:
      return;
  }
}

/* ------------------------------------------------------------------------ */
/* Closing */

static void on_timer_closed(uv_handle_t *h) {
  hcsb__shim_events_t *ev = h->data;

  ev->handles--;
  finish(ev);
}

static void on_flush_deadline(uv_timer_t *t) {
  hcsb__shim_events_t *ev = t->data;

  if (ev->nqueued > 0)
    SHIM_WARN("events: %zu events not forwarded before exit", ev->nqueued);
  finish(ev);
}

/* Closes everything; once every handle is closed and no write is out,
 * drops what is left, tells the owner and frees. */
static void finish(hcsb__shim_events_t *ev) {
  if (!ev->finishing) {
    ev->finishing = 1;
    close_pipe(ev);
    ev->handles += 2;
    uv_close((uv_handle_t *)&ev->timer, on_timer_closed);
    uv_close((uv_handle_t *)&ev->flush_timer, on_timer_closed);
  }
  if (ev->handles > 0 || ev->writing) return;
  while (!hcsb__list_empty(&ev->queue)) drop_head(ev, "the shim is exiting");
  hcsb__ttrpc_reader_free(&ev->reader);
  if (ev->close_cb != NULL) ev->close_cb(ev, ev->close_data);
  free(ev->path);
  free(ev->ns);
  free(ev);
}

void hcsb__shim_events_close(hcsb__shim_events_t *ev, uint64_t flush_ms,
                             hcsb__shim_events_close_cb cb, void *data) {
  if (ev->closing) return;
  ev->closing = 1;
  ev->close_cb = cb;
  ev->close_data = data;
  if (flush_ms == 0 || hcsb__list_empty(&ev->queue)) {
    finish(ev);
    return;
  }
  uv_timer_start(&ev->flush_timer, on_flush_deadline, flush_ms, 0);
  kick(ev);
}
