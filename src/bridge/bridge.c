/* The bridge's lifecycle: open, negotiate, lose, close, free. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/internal.h"

/* ------------------------------------------------------------------------ */
/* Creation and limits */

static const hcsb__handle_class_t bridge_class;
static void opener_closed(void *data);

int hcsb_bridge_new(uv_loop_t *loop, hcsb_bridge_t **out) {
  if (loop == NULL || out == NULL) return -EINVAL;
  hcsb_bridge_t *b = calloc(1, sizeof *b);
  if (b == NULL) return -ENOMEM;
  hcsb__handle_init(&b->h, &bridge_class, &b->dq);
  b->loop = loop;
  b->next_id = 1; /* 0 is what notifications carry */
  b->tab = (hcsb__calltab_t)HCSB__CALLTAB_INIT(offsetof(hcsb_call_t, u.id));
  b->heap = (hcsb__dlheap_t)HCSB__DLHEAP_INIT(offsetof(hcsb_call_t, dl_idx));
  b->pool = (hcsb__pool_t)HCSB__POOL_INIT(hcsb__pooled_call_size(),
                                          HCSB__FREE_CALLS_MAX);
  hcsb__list_init(&b->untimed);
  b->max_frame = HCSB_DEFAULT_MAX_FRAME;
  b->max_pending = HCSB__DEFAULT_MAX_PENDING;
  b->max_write_queue = HCSB__DEFAULT_MAX_WRITE_QUEUE;
  b->log_level = HCSB_LOG_INFO;
  hcsb__call_embed(&b->negotiate);
  hcsb__list_init(&b->watches);
  hcsb__defer_init(&b->disconnect);
  hcsb__decoder_init(&b->dec, b->max_frame);
  int rc = hcsb__decode_ctx_init(&b->dctx);
  /* The handles are inactive, so an unused bridge does not keep the loop
   * alive; the ones initialised are closed again on failure. */
  int inited = 0;
  if (rc == 0 && (rc = uv_timer_init(loop, &b->timer)) == 0) inited++;
  if (rc == 0 && (rc = uv_prepare_init(loop, &b->prepare)) == 0) inited++;
  if (rc == 0 && (rc = hcsb__dq_init(loop, &b->dq, &b->h)) == 0) inited++;
  if (rc != 0) {
    if (inited == 0) {
      hcsb__handle_abort(&b->h); /* frees at once */
      return rc;
    }
    /* Freed after libuv's close callbacks, without a close callback. */
    b->h.ended = b->h.closing = 1;
    if (inited > 0) hcsb__handle_uv_close(&b->h, (uv_handle_t *)&b->timer);
    if (inited > 1) hcsb__handle_uv_close(&b->h, (uv_handle_t *)&b->prepare);
    hcsb__handle_unref(&b->h);
    return rc;
  }
  b->timer.data = b;
  b->prepare.data = b;
  *out = b;
  return 0;
}

int hcsb_bridge_set_max_frame(hcsb_bridge_t *b, uint32_t bytes) {
  if (b == NULL || bytes < 4096) return -EINVAL;
  b->max_frame = bytes;
  hcsb__decoder_set_max(&b->dec, bytes);
  return 0;
}

int hcsb_bridge_set_max_pending(hcsb_bridge_t *b, size_t calls) {
  if (b == NULL || calls == 0) return -EINVAL;
  b->max_pending = calls;
  return 0;
}

int hcsb_bridge_set_max_write_queue(hcsb_bridge_t *b, size_t bytes) {
  /* One flush must fit one uv_buf_t (an unsigned int of length). */
  if (b == NULL || bytes == 0 || bytes > HCSB__MAX_WRITE_QUEUE_LIMIT)
    return -EINVAL;
  b->max_write_queue = bytes;
  return 0;
}

void hcsb_bridge_set_log(hcsb_bridge_t *b, hcsb_log_cb cb, void *data,
                         hcsb_log_level_t max_level) {
  b->log_cb = cb;
  b->log_data = data;
  b->log_level = max_level;
}

void hcsb_bridge_set_notify_cb(hcsb_bridge_t *b, hcsb_notify_cb cb,
                               void *data) {
  b->notify_cb = cb;
  b->notify_data = data;
}

void hcsb_bridge_set_disconnect_cb(hcsb_bridge_t *b, hcsb_disconnect_cb cb,
                                   void *data) {
  b->disconnect_cb = cb;
  b->disconnect_data = data;
}

void hcsb_bridge_set_data(hcsb_bridge_t *b, void *data) {
  b->h.data = data;
}
void *hcsb_bridge_get_data(const hcsb_bridge_t *b) {
  return b->h.data;
}

/* ------------------------------------------------------------------------ */
/* Getters */

const hcsb_caps_t *hcsb_bridge_caps(const hcsb_bridge_t *b) {
  return b->was_ready ? &b->caps : NULL;
}

uint32_t hcsb_bridge_protocol_version(const hcsb_bridge_t *b) {
  return b->was_ready ? b->version : 0;
}

int hcsb_bridge_is_connected(const hcsb_bridge_t *b) {
  return b->phase == HCSB__READY;
}

int hcsb_bridge_close_cause(const hcsb_bridge_t *b) {
  return b->close_cause;
}

uv_loop_t *hcsb_bridge_loop(const hcsb_bridge_t *b) {
  return b->loop;
}

const hcsb_addr_t *hcsb_bridge_address(const hcsb_bridge_t *b) {
  if (b->opener != NULL) return hcsb__opener_addr(b->opener);
  return b->has_addr ? &b->addr : NULL;
}

void hcsb_bridge_stats(const hcsb_bridge_t *b, hcsb_bridge_stats_t *out) {
  *out = b->st;
  out->pending = b->npending;
  out->queued_bytes = hcsb__writer_queued(b);
}

int hcsb_bridge_guest_exit(const hcsb_bridge_t *b, int *exit_status,
                           int *term_signal) {
  int st = 0, sig = 0, r;
  if (b == NULL || b->opener == NULL) return -ENOENT;
  r = hcsb__opener_guest_exit(b->opener, &st, &sig);
  if (exit_status != NULL) *exit_status = st;
  if (term_signal != NULL) *term_signal = sig;
  return r;
}

/* ------------------------------------------------------------------------ */
/* Negotiation */

static void negotiate_fail(hcsb_bridge_t *b, int status);

/* The held failure of a spawned guest's open: its exit is known now, or
 * will not be soon. */
static void guest_exit_known(void *data) {
  hcsb_bridge_t *b = data;
  negotiate_fail(
      b, hcsb_bridge_guest_exit(b, NULL, NULL) == 1 ? -ECHILD : b->held_status);
}

/* A spawned guest that ends the stream before negotiating has usually
 * exited, and how (127: the shell found no such command) says more than
 * the broken stream does.  Returns the status to report: -ECHILD once its
 * exit is known; 1 when the report is held until the exit is reaped (at
 * most HCSB__SPAWN_EXIT_WAIT_MS), then made through negotiate_fail. */
static int spawned_guest_gone(hcsb_bridge_t *b, int status) {
  if (b->opener == NULL || b->was_ready || b->h.closing ||
      (status != -ECONNRESET && status != -EPIPE && status != -ENOTCONN))
    return status;
  if (hcsb_bridge_guest_exit(b, NULL, NULL) == 1) return -ECHILD;
  if (b->exit_waited) return status;
  b->exit_waited = 1;
  b->held_status = status;
  if (hcsb__opener_await_exit(b->opener, HCSB__SPAWN_EXIT_WAIT_MS,
                              guest_exit_known, b) != 0)
    return status;
  b->ready_due = 1;
  return 1;
}

static void negotiated(void *data, int status, const hcsb_guest_error_t *gerr,
                       const hcsb_response_t *resp) {
  /* An embedded call's data is the call: the bridge's own. */
  hcsb_bridge_t *b = HCSB__CONTAINER_OF(data, hcsb_bridge_t, negotiate);
  b->ready_due = 0;
  if (b->phase == HCSB__DEAD && (status = spawned_guest_gone(b, status)) == 1)
    return;
  if (b->phase == HCSB__DEAD) {
    /* Lost or closed first: `status` says how. */
    b->ready_cb(b->ready_data, b, status, NULL);
    return;
  }
  if (status == 0 && resp->version != HCSB_PROTOCOL_VERSION) {
    hcsb__log(b, HCSB_LOG_ERROR, resp->activity_id,
              "guest negotiated protocol version %u, need %u", resp->version,
              HCSB_PROTOCOL_VERSION);
    status = -EPROTO;
  }
  if (status == 0) {
    if (resp->caps != NULL) b->caps = *resp->caps;
    b->version = resp->version;
    b->phase = HCSB__READY;
    b->was_ready = 1;
    /* Calls made while negotiating go out before any made in ready_cb. */
    status = hcsb__calls_release_waiting(b);
    if (status == 0) {
      hcsb__log(b, HCSB_LOG_INFO, NULL, "bridge negotiated (protocol %u, %s)",
                b->version, b->caps.runtime_os_type);
      b->ready_cb(b->ready_data, b, 0, NULL);
      return;
    }
    b->was_ready = 0;
  }
  hcsb__log(b, HCSB_LOG_ERROR, NULL, "negotiation failed: %s",
            hcsb__errstr(status));
  /* Dead before ready_cb runs, so calls it makes fail -ENOTCONN. */
  hcsb__bridge_lost(b, -ECONNRESET, status);
  b->ready_cb(b->ready_data, b, status, gerr);
}

static uint32_t open_timeout(const hcsb_bridge_t *b) {
  return b->has_addr ? b->addr.timeout_ms : HCSB__DEFAULT_OPEN_TIMEOUT_MS;
}

/* NegotiateProtocol, the first frame on a fresh stream: an ordinary call,
 * marked internal so it goes out before the bridge is ready. */
static int send_negotiate(hcsb_bridge_t *b) {
  char activity[37];
  hcsb__guid_generate(activity);
  hcsb_request_t req;
  memset(&req, 0, sizeof req);
  req.type = HCSB_MSG_NEGOTIATE_PROTOCOL;
  req.activity_id = activity;
  req.u.negotiate.min_version = HCSB_PROTOCOL_VERSION;
  req.u.negotiate.max_version = HCSB_PROTOCOL_VERSION;
  b->phase = HCSB__NEGOTIATING;
  return hcsb__call_start(b, &b->negotiate, &req, NULL, open_timeout(b),
                          negotiated, b, HCSB__CALL_INTERNAL, NULL);
}

/* The open failed before NegotiateProtocol went out (or its failure was
 * held): ready_cb gets `status` through the negotiation call's own path, on
 * the next turn. */
static void negotiate_fail(hcsb_bridge_t *b, int status) {
  if (!b->ready_due || hcsb__call_busy(&b->negotiate)) return;
  b->negotiate.bridge = b;
  b->negotiate.cb = negotiated;
  b->negotiate.internal = 1;
  hcsb__call_defer(&b->negotiate, status);
}

static int start_stream(hcsb_bridge_t *b, uv_stream_t *stream) {
  b->stream = stream;
  stream->data = b;
  if (b->rbuf == NULL) {
    if ((b->rbuf = malloc(HCSB__READ_BUF_MIN)) == NULL) return -ENOMEM;
    b->rbuf_cap = HCSB__READ_BUF_MIN;
  }
  int rc = hcsb__reader_start(b);
  if (rc == 0) rc = send_negotiate(b);
  return rc;
}

static void open_cb(void *data, int status, uv_stream_t *stream) {
  hcsb_bridge_t *b = data;
  hcsb__bridge_ref(b);
  if (status == 0) status = start_stream(b, stream);
  if (status != 0) {
    hcsb__log(b, HCSB_LOG_ERROR, NULL,
              "opening the bridge transport failed: %s", hcsb__errstr(status));
    negotiate_fail(b, status);
    hcsb__bridge_lost(b, b->stream ? -ECONNRESET : -ENOTCONN, status);
  }
  hcsb__bridge_unref(b);
}

int hcsb_bridge_connect_addr(hcsb_bridge_t *b, const hcsb_addr_t *addr,
                             hcsb_ready_cb cb, void *data) {
  if (b == NULL || addr == NULL || cb == NULL) return -EINVAL;
  if (b->phase != HCSB__NEW || b->h.closing) return -EALREADY;
  b->addr = *addr;
  b->has_addr = 1;
  b->ready_cb = cb;
  b->ready_data = data;
  b->ready_due = 1;
  b->phase = HCSB__OPENING;
  int rc = hcsb__open(b->loop, addr, open_cb, b, &b->opener);
  if (rc != 0) {
    b->ready_due = 0;
    b->has_addr = 0;
    b->phase = HCSB__NEW;
    return rc;
  }
  return 0;
}

int hcsb_bridge_connect(hcsb_bridge_t *b, const char *address, hcsb_ready_cb cb,
                        void *data) {
  if (b == NULL || address == NULL) return -EINVAL;
  hcsb_addr_t *addr = malloc(sizeof *addr); /* 4 KiB: not for the stack */
  if (addr == NULL) return -ENOMEM;
  int rc = hcsb_addr_parse(address, addr);
  if (rc == 0) rc = hcsb_bridge_connect_addr(b, addr, cb, data);
  free(addr);
  return rc;
}

static void free_handle(uv_handle_t *h) {
  free(h);
}

int hcsb_bridge_open_fd(hcsb_bridge_t *b, int fd, hcsb_ready_cb cb,
                        void *data) {
  if (b == NULL || fd < 0 || cb == NULL) return -EINVAL;
  if (b->phase != HCSB__NEW || b->h.closing) return -EALREADY;
  uv_pipe_t *p = malloc(sizeof *p);
  if (p == NULL) return -ENOMEM;
  int rc = uv_pipe_init(b->loop, p, 0);
  if (rc != 0) {
    free(p);
    return rc;
  }
  /* On failure libuv has not attached the descriptor: it stays the
   * caller's. */
  rc = uv_pipe_open(p, fd);
  if (rc != 0) {
    uv_close((uv_handle_t *)p, free_handle);
    return rc;
  }
  b->ready_cb = cb;
  b->ready_data = data;
  b->ready_due = 1;
  rc = start_stream(b, (uv_stream_t *)p);
  if (rc != 0) {
    /* Accepted: from here the bridge owns the descriptor; report later. */
    negotiate_fail(b, rc);
    hcsb__bridge_lost(b, -ECONNRESET, rc);
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Loss and close */

static void stream_closed(uv_handle_t *h) {
  hcsb_bridge_t *b = h->data;
  free(h);
  b->stream = NULL;
  hcsb__handle_check_closed(&b->h);
}

static void disconnect_fire(hcsb__defer_t *d) {
  hcsb_bridge_t *b = HCSB__CONTAINER_OF(d, hcsb_bridge_t, disconnect);
  if (b->disconnect_cb != NULL && !b->h.closing)
    b->disconnect_cb(b->disconnect_data, b, b->lost_status);
}

void hcsb__bridge_lost(hcsb_bridge_t *b, int call_status, int cause) {
  if (b->phase == HCSB__DEAD) return;
  b->phase = HCSB__DEAD;
  b->close_cause = cause;
  b->lost_status = call_status;
  if (cause != -ECANCELED)
    hcsb__log(b, HCSB_LOG_WARN, NULL, "bridge connection lost: %s",
              hcsb__errstr(cause));
  negotiate_fail(b, call_status); /* never sent */
  hcsb__calls_fail_all(b, call_status);
  /* After the calls: their callbacks run first. */
  if (b->was_ready && call_status != -ECANCELED)
    hcsb__defer(&b->dq, &b->disconnect, disconnect_fire);
  if (b->stream != NULL && !uv_is_closing((uv_handle_t *)b->stream)) {
    uv_read_stop(b->stream);
    uv_close((uv_handle_t *)b->stream, stream_closed);
  }
  hcsb__writer_disarm(b);
  uv_timer_stop(&b->timer);
  b->timer_due = 0;
}

/* ------------------------------------------------------------------------ */
/* The core handle's hooks */

static void bridge_cancel(hcsb__handle_t *h) {
  hcsb_bridge_t *b = HCSB__CONTAINER_OF(h, hcsb_bridge_t, h);
  hcsb__bridge_lost(b, -ECANCELED, -ECANCELED);
  /* A failure held for a spawned guest's exit is reported now. */
  if (b->exit_waited) negotiate_fail(b, b->held_status);
  if (b->opener != NULL && !b->opener_closing) {
    b->opener_closing = 1;
    /* The stream is already closing, so a spawned guest sees EOF and gets
     * a grace period to exit before it is killed; one that never
     * negotiated is no GCS worth waiting for (and the owner's timeout
     * must hold). */
    hcsb__opener_shutdown(b->opener, b->was_ready ? HCSB__SPAWN_GRACE_MS : 0,
                          opener_closed, b);
  }
}

/* Nothing on the stack (only the owner's reference), the transport closed,
 * every deferred callback run. */
static int bridge_idle(const hcsb__handle_t *h) {
  const hcsb_bridge_t *b = HCSB__CONTAINER_OF(h, hcsb_bridge_t, h);
  return h->refs == 1 && b->dq.n == 0 && b->stream == NULL &&
         b->opener == NULL && hcsb__list_empty(&b->untimed);
}

/* The close callback comes after these: every libuv handle is closed. */
static void bridge_close_handles(hcsb__handle_t *h) {
  hcsb_bridge_t *b = HCSB__CONTAINER_OF(h, hcsb_bridge_t, h);
  hcsb__handle_uv_close(h, (uv_handle_t *)&b->timer);
  hcsb__handle_uv_close(h, (uv_handle_t *)&b->prepare);
  hcsb__dq_close(&b->dq);
}

static void bridge_free(hcsb__handle_t *h) {
  hcsb_bridge_t *b = HCSB__CONTAINER_OF(h, hcsb_bridge_t, h);
  hcsb__calls_free(b);
  hcsb__buf_free(&b->wbuf[0]);
  hcsb__buf_free(&b->wbuf[1]);
  hcsb__buf_free(&b->hold);
  hcsb__decoder_free(&b->dec);
  hcsb__decode_ctx_free(&b->dctx);
  free(b->rbuf);
  free(b);
}

static const hcsb__handle_class_t bridge_class = {
    bridge_cancel, bridge_idle, bridge_close_handles, NULL, bridge_free};

static void opener_closed(void *data) {
  hcsb_bridge_t *b = data;
  b->opener = NULL;
  hcsb__handle_check_closed(&b->h);
}

void hcsb_bridge_close(hcsb_bridge_t *b, hcsb_close_cb cb, void *data) {
  if (b == NULL || b->h.closing) return;
  hcsb__handle_close(&b->h, cb, data);
}
