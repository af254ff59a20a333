/* One ttrpc client connection without I/O (session.h), and the call API of
 * server.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hcsbridge/common.h>

#include "shim/log.h"
#include "shim/session.h"
#include "shim/ttrpc.h"

#define DEFAULT_MAX_CALLS 256
#define MESSAGE_MAX 1024

struct hcsb__ttrpc_session_s {
  hcsb__ttrpc_session_cfg_t cfg;
  hcsb__ttrpc_reader_t reader;
  hcsb__link_t calls; /* outstanding hcsb__shim_call_t */
  size_t ncalls;
  hcsb__link_t out; /* hcsb__ttrpc_out_t to write */
  size_t out_bytes;
  int error;     /* set once the client is to be dropped */
  int stopped;   /* dispatch nothing more */
  int detached;  /* the connection is gone */
  int in_detach; /* detach's loop is on the stack: do not free yet */
};

struct hcsb__shim_call_s {
  hcsb__link_t link;
  hcsb__ttrpc_session_t *s;
  uint32_t stream;
  Ttrpc__Request *req;      /* the envelope */
  ProtobufCMessage *msg;    /* the unpacked payload, or NULL */
  hcsb__pb_budget_t budget; /* both were unpacked within it */
  hcsb__shim_gone_cb gone_cb;
  void *gone_data;
};

#define STAT(s, field, op)                                \
  do {                                                    \
    if ((s)->cfg.stats != NULL) (s)->cfg.stats->field op; \
  } while (0)

/* ------------------------------------------------------------------------ */
/* Output */

static int queue_frame(hcsb__ttrpc_session_t *s, uint8_t *data, size_t len) {
  hcsb__ttrpc_out_t *o = malloc(sizeof(*o));
  int was_empty = hcsb__list_empty(&s->out);

  if (o == NULL) {
    free(data);
    return -ENOMEM;
  }
  o->data = data;
  o->len = len;
  hcsb__list_push(&s->out, &o->link);
  s->out_bytes += len;
  if (was_empty && s->cfg.on_output != NULL) s->cfg.on_output(s->cfg.ctx);
  return 0;
}

/* A response frame carrying only a status. */
static int queue_status(hcsb__ttrpc_session_t *s, uint32_t stream, int code,
                        const char *message) {
  uint8_t *buf;
  size_t len;
  int r = hcsb__ttrpc_response_frame(stream, code, message, NULL, &buf, &len);

  if (r < 0) return r;
  return queue_frame(s, buf, len);
}

size_t hcsb__ttrpc_session_take_output(hcsb__ttrpc_session_t *s,
                                       hcsb__link_t *list) {
  size_t n = s->out_bytes;

  hcsb__list_splice(list, &s->out);
  s->out_bytes = 0;
  return n;
}

size_t hcsb__ttrpc_session_output_bytes(const hcsb__ttrpc_session_t *s) {
  return s->out_bytes;
}

void hcsb__ttrpc_out_free(hcsb__ttrpc_out_t *o) {
  free(o->data);
  free(o);
}

static void drop_output(hcsb__ttrpc_session_t *s) {
  while (!hcsb__list_empty(&s->out)) {
    hcsb__link_t *l = s->out.next;
    hcsb__list_remove(l);
    hcsb__ttrpc_out_free(HCSB__CONTAINER_OF(l, hcsb__ttrpc_out_t, link));
  }
  s->out_bytes = 0;
}

/* ------------------------------------------------------------------------ */
/* Session */

int hcsb__ttrpc_session_new(const hcsb__ttrpc_session_cfg_t *cfg,
                            hcsb__ttrpc_session_t **out) {
  hcsb__ttrpc_session_t *s = calloc(1, sizeof(*s));

  if (s == NULL) return -ENOMEM;
  s->cfg = *cfg;
  if (s->cfg.max_calls == 0) s->cfg.max_calls = DEFAULT_MAX_CALLS;
  hcsb__ttrpc_reader_init(&s->reader, 0);
  hcsb__list_init(&s->calls);
  hcsb__list_init(&s->out);
  *out = s;
  return 0;
}

static void session_free(hcsb__ttrpc_session_t *s) {
  drop_output(s);
  hcsb__ttrpc_reader_free(&s->reader);
  if (s->cfg.on_free != NULL) s->cfg.on_free(s->cfg.free_ctx);
  free(s);
}

size_t hcsb__ttrpc_session_calls(const hcsb__ttrpc_session_t *s) {
  return s->ncalls;
}

void hcsb__ttrpc_session_stop(hcsb__ttrpc_session_t *s) {
  s->stopped = 1;
}

static void call_free(hcsb__shim_call_t *call) {
  if (call->msg != NULL)
    protobuf_c_message_free_unpacked(call->msg, &call->budget.allocator);
  if (call->req != NULL)
    protobuf_c_message_free_unpacked(&call->req->base, &call->budget.allocator);
  free(call);
}

/* The one way a dispatched call ends. */
static void call_end(hcsb__shim_call_t *call) {
  hcsb__ttrpc_session_t *s = call->s;

  hcsb__list_remove(&call->link);
  s->ncalls--;
  STAT(s, calls_pending, --);
  call_free(call);
  if (s->detached && s->ncalls == 0 && !s->in_detach) session_free(s);
}

static hcsb__shim_call_t *find_stream(hcsb__ttrpc_session_t *s,
                                      uint32_t stream) {
  hcsb__link_t *l;

  for (l = s->calls.next; l != &s->calls; l = l->next) {
    hcsb__shim_call_t *c = HCSB__CONTAINER_OF(l, hcsb__shim_call_t, link);
    if (c->stream == stream) return c;
  }
  return NULL;
}

/* A whole request frame (payload owned here).  Negative: drop the client. */
static int on_request(hcsb__ttrpc_session_t *s, uint32_t stream,
                      uint8_t *payload, size_t len) {
  const hcsb__shim_method_t *m;
  hcsb__shim_call_t *call;
  char msg[MESSAGE_MAX];
  void *data = NULL;
  int r;

  if (stream % 2 != 1) {
    free(payload);
    SHIM_WARN("ttrpc: stream id %u is not odd; disconnecting the client",
              stream);
    queue_status(s, stream, HCSB__GRPC_INVALID_ARGUMENT,
                 "StreamID must be odd for client initiated streams");
    return -EPROTO;
  }
  if (find_stream(s, stream) != NULL) {
    /* Answering would confuse the client about the first call. */
    free(payload);
    SHIM_WARN(
        "ttrpc: stream id %u reused while in flight; disconnecting the "
        "client",
        stream);
    return -EPROTO;
  }
  call = calloc(1, sizeof(*call));
  if (call == NULL) {
    free(payload);
    return -ENOMEM;
  }
  hcsb__list_init(&call->link);
  call->s = s;
  call->stream = stream;
  hcsb__pb_budget_init(&call->budget, 0);
  r = hcsb__ttrpc_request_unpack(payload, len, &call->budget, &call->req);
  free(payload);
  if (r < 0) {
    call_free(call);
    if (r == -ENOMEM) return r;
    SHIM_WARN(
        "ttrpc: stream %u: not a ttrpc request (%s); disconnecting the "
        "client",
        stream, r == -E2BIG ? "too large unpacked" : "undecodable");
    queue_status(s, stream, HCSB__GRPC_INVALID_ARGUMENT,
                 "unmarshal request error");
    return -EPROTO;
  }

  if (s->ncalls >= s->cfg.max_calls) {
    snprintf(msg, sizeof(msg), "more than %zu calls in flight",
             s->cfg.max_calls);
    call_free(call);
    return queue_status(s, stream, HCSB__GRPC_RESOURCE_EXHAUSTED, msg);
  }

  m = s->cfg.lookup != NULL ? s->cfg.lookup(s->cfg.ctx, call->req->service,
                                            call->req->method, &data)
                            : NULL;
  if (m == NULL) {
    snprintf(msg, sizeof(msg), "%s/%s: not implemented", call->req->service,
             call->req->method);
    SHIM_DEBUG("ttrpc: stream %u: %s", stream, msg);
    STAT(s, unimplemented, ++);
    call_free(call);
    return queue_status(s, stream, HCSB__GRPC_UNIMPLEMENTED, msg);
  }

  if (m->request != NULL) {
    r = hcsb__pb_unpack(m->request, call->req->payload.data,
                        call->req->payload.len, &call->budget, &call->msg);
    if (r == -ENOMEM) {
      call_free(call);
      return r;
    }
    if (r < 0) {
      if (r == -E2BIG)
        snprintf(msg, sizeof(msg), "%s/%s: the %s unpacks too large",
                 m->service, m->method, m->request->name);
      else
        snprintf(msg, sizeof(msg), "%s/%s: the payload is not a %s", m->service,
                 m->method, m->request->name);
      SHIM_WARN("ttrpc: stream %u: %s", stream, msg);
      call_free(call);
      return queue_status(s, stream, HCSB__GRPC_INVALID_ARGUMENT, msg);
    }
  }

  hcsb__list_push(&s->calls, &call->link);
  s->ncalls++;
  STAT(s, calls, ++);
  STAT(s, calls_pending, ++);
  SHIM_DEBUG("ttrpc: stream %u: %s/%s", stream, m->service, m->method);
  m->handler(call, call->msg, data);
  return 0;
}

static int fail(hcsb__ttrpc_session_t *s, int err) {
  s->error = err;
  hcsb__ttrpc_reader_free(&s->reader);
  return err;
}

int hcsb__ttrpc_session_feed(hcsb__ttrpc_session_t *s, const uint8_t *data,
                             size_t len) {
  char msg[128];
  uint8_t *payload;
  size_t plen;
  ssize_t n;
  int done, r;

  if (s->error) return s->error;
  while (len > 0 && !s->stopped && !s->detached) {
    n = hcsb__ttrpc_reader_feed(&s->reader, data, len, &done);
    if (n == -EMSGSIZE) {
      snprintf(msg, sizeof(msg),
               "message length %u exceed maximum message size of %u",
               s->reader.h.length, HCSB__TTRPC_MAX_PAYLOAD);
      SHIM_WARN("ttrpc: stream %u: %s; disconnecting the client",
                s->reader.h.stream_id, msg);
      queue_status(s, s->reader.h.stream_id, HCSB__GRPC_RESOURCE_EXHAUSTED,
                   msg);
      return fail(s, -EPROTO);
    }
    if (n < 0) return fail(s, (int)n);
    data += n;
    len -= (size_t)n;
    if (!done) continue;
    payload = hcsb__ttrpc_reader_take(&s->reader, &plen);
    if (s->reader.h.type != HCSB__TTRPC_TYPE_REQUEST) {
      /* Later ttrpc versions add frame types; 1.1 skips what it does not
       * know, and so do we. */
      free(payload);
      continue;
    }
    r = on_request(s, s->reader.h.stream_id, payload, plen);
    if (r < 0) return fail(s, r);
  }
  return 0;
}

void hcsb__ttrpc_session_detach(hcsb__ttrpc_session_t *s) {
  hcsb__link_t pending;

  s->detached = 1;
  s->in_detach = 1;
  drop_output(s);
  hcsb__ttrpc_reader_free(&s->reader);
  /* Swap the list out first: a gone callback may end any call, this one
   * or others. */
  hcsb__list_init(&pending);
  hcsb__list_splice(&pending, &s->calls);
  while (!hcsb__list_empty(&pending)) {
    hcsb__shim_call_t *c =
        HCSB__CONTAINER_OF(pending.next, hcsb__shim_call_t, link);
    hcsb__shim_gone_cb cb = c->gone_cb;

    hcsb__list_remove(&c->link);
    hcsb__list_push(&s->calls, &c->link);
    c->gone_cb = NULL;
    if (cb != NULL) cb(c, c->gone_data);
  }
  s->in_detach = 0;
  if (s->ncalls == 0) session_free(s);
}

/* ------------------------------------------------------------------------ */
/* The call API (server.h) */

const char *hcsb__shim_call_service(const hcsb__shim_call_t *call) {
  return call->req->service;
}

const char *hcsb__shim_call_method(const hcsb__shim_call_t *call) {
  return call->req->method;
}

const uint8_t *hcsb__shim_call_payload(const hcsb__shim_call_t *call,
                                       size_t *len) {
  *len = call->req->payload.len;
  return call->req->payload.data;
}

int64_t hcsb__shim_call_timeout_ns(const hcsb__shim_call_t *call) {
  return call->req->timeout_nano;
}

const char *hcsb__shim_call_metadata(const hcsb__shim_call_t *call,
                                     const char *key) {
  size_t i;

  for (i = 0; i < call->req->n_metadata; i++)
    if (strcmp(call->req->metadata[i]->key, key) == 0)
      return call->req->metadata[i]->value;
  return NULL;
}

uint32_t hcsb__shim_call_stream(const hcsb__shim_call_t *call) {
  return call->stream;
}

int hcsb__shim_call_gone(const hcsb__shim_call_t *call) {
  return call->s->detached;
}

int hcsb__shim_call_on_gone(hcsb__shim_call_t *call, hcsb__shim_gone_cb cb,
                            void *data) {
  if (call->s->detached) return 1;
  call->gone_cb = cb;
  call->gone_data = data;
  return 0;
}

void hcsb__shim_reply(hcsb__shim_call_t *call, int code, const char *message,
                      const ProtobufCMessage *resp) {
  hcsb__ttrpc_session_t *s = call->s;
  char msg[MESSAGE_MAX];
  uint8_t *buf;
  size_t len;
  int r;

  if (s->detached) {
    STAT(s, replies_dropped, ++);
    call_end(call);
    return;
  }
  r = hcsb__ttrpc_response_frame(call->stream, code, code != 0 ? message : NULL,
                                 code == 0 ? resp : NULL, &buf, &len);
  if (r == -EMSGSIZE) {
    snprintf(msg, sizeof(msg),
             "%s/%s: the response exceeds ttrpc's 4 MiB message limit",
             call->req->service, call->req->method);
    SHIM_ERROR("ttrpc: stream %u: %s", call->stream, msg);
    r = hcsb__ttrpc_response_frame(call->stream, HCSB__GRPC_RESOURCE_EXHAUSTED,
                                   msg, NULL, &buf, &len);
  } else if (r < 0) {
    SHIM_ERROR("ttrpc: stream %u: cannot pack the response (%s)", call->stream,
               strerror(-r));
    r = hcsb__ttrpc_response_frame(call->stream, HCSB__GRPC_INTERNAL,
                                   "cannot pack the response", NULL, &buf,
                                   &len);
  }
  if (r == 0) r = queue_frame(s, buf, len);
  if (r < 0)
    SHIM_ERROR("ttrpc: stream %u: reply lost (%s)", call->stream, strerror(-r));
  call_end(call);
}

void hcsb__shim_reply_ok(hcsb__shim_call_t *call,
                         const ProtobufCMessage *resp) {
  hcsb__shim_reply(call, HCSB__GRPC_OK, NULL, resp);
}

void hcsb__shim_reply_error(hcsb__shim_call_t *call, int code, const char *fmt,
                            ...) {
  char msg[MESSAGE_MAX];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  hcsb__shim_reply(call, code, msg, NULL);
}

/* Appends to buf[*at..cap), keeping *at within the buffer. */
static void appendf(char *buf, size_t cap, size_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void appendf(char *buf, size_t cap, size_t *at, const char *fmt, ...) {
  va_list ap;
  int n;

  if (*at + 1 >= cap) return;
  va_start(ap, fmt);
  n = vsnprintf(buf + *at, cap - *at, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  *at = (size_t)n < cap - *at ? *at + (size_t)n : cap - 1;
}

void hcsb__shim_reply_status(hcsb__shim_call_t *call, int status,
                             const hcsb_guest_error_t *gerr, const char *fmt,
                             ...) {
  char msg[MESSAGE_MAX];
  size_t at = 0;
  va_list ap;
  int n;

  if (status == 0) {
    hcsb__shim_reply(call, HCSB__GRPC_OK, NULL, NULL);
    return;
  }
  va_start(ap, fmt);
  n = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (n > 0) at = (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
  appendf(msg, sizeof(msg), &at, ": %s", hcsb_strerror(status));
  if (status == HCSB_EGUEST && gerr != NULL)
    appendf(msg, sizeof(msg), &at, " (HRESULT 0x%08x: %s)", gerr->hresult,
            gerr->message);
  hcsb__shim_reply(call, hcsb__shim_grpc_code(status, gerr), msg, NULL);
}

void hcsb__shim_call_drop(hcsb__shim_call_t *call) {
  call_end(call);
}
