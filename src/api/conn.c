/* The guest connection: opening (bring-up listeners, transport,
 * negotiation), loss, close, and container notifications fanned out to the
 * one waiter each container ID has (protocol.md §7.13, §9.6). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-int.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 120000u
#define DEFAULT_CALL_TIMEOUT_MS 300000u
#define DEFAULT_SHUTDOWN_TIMEOUT_MS 30000u
#define DEFAULT_STDIO_ACCEPT_TIMEOUT_MS 30000u
#define OP_POOL_MAX 64u

void hcsb_free(void *p) {
  free(p);
}

void hcsb_conn_options_init(hcsb_conn_options_t *o) {
  if (o == NULL) return;
  memset(o, 0, sizeof(*o));
  o->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
  o->call_timeout_ms = DEFAULT_CALL_TIMEOUT_MS;
  o->shutdown_timeout_ms = DEFAULT_SHUTDOWN_TIMEOUT_MS;
  o->stdio_accept_timeout_ms = DEFAULT_STDIO_ACCEPT_TIMEOUT_MS;
  o->log_level = HCSB_LOG_WARN;
}

void hcsb__api_log(const hcsb_conn_t *c, hcsb_log_level_t level,
                   const char *activity_id, const char *fmt, ...) {
  char line[512];
  va_list ap;

  if (c->log_cb == NULL || level > c->log_level) return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  c->log_cb(c->log_data, level, activity_id, line);
}

const hcsb_addr_t *hcsb__conn_addr(const hcsb_conn_t *c) {
  if (c->bridge == NULL || c->bridge_closing) return NULL;
  return hcsb_bridge_address(c->bridge);
}

uint32_t hcsb__conn_take_ports(hcsb_conn_t *c, unsigned n) {
  uint32_t first = c->next_port;

  c->next_port += n;
  return first;
}

/* ------------------------------------------------------------------------ */
/* Container waiters */

hcsb__cwaiter_t *hcsb__waiter_find(hcsb_conn_t *c, const char *id) {
  hcsb__link_t *l;

  /* A list: a utility VM runs tens of containers, and this is looked at
   * once per notification or create. */
  for (l = c->waiters.next; l != &c->waiters; l = l->next) {
    hcsb__cwaiter_t *w = HCSB__CONTAINER_OF(l, hcsb__cwaiter_t, link);
    if (strcmp(w->id, id) == 0) return w;
  }
  return NULL;
}

hcsb__cwaiter_t *hcsb__waiter_get(hcsb_conn_t *c, const char *id, int reset) {
  hcsb__cwaiter_t *w = hcsb__waiter_find(c, id);
  size_t n;

  if (w != NULL) {
    if (reset) {
      w->end = HCSB__CEND_NONE;
      w->status = 0;
      w->type = HCSB_NOTIFY_UNKNOWN;
      w->type_name[0] = '\0';
      w->result = 0;
    }
    return w;
  }
  n = strlen(id);
  w = calloc(1, sizeof(*w) + n + 1);
  if (w == NULL) return NULL;
  memcpy(w->id, id, n + 1);
  /* A connection that is already gone can never deliver the notification. */
  if (c->state == HCSB__CONN_LOST || c->state == HCSB__CONN_FAILED) {
    w->end = HCSB__CEND_LOST;
    w->status = c->lost_status;
  } else if (c->state == HCSB__CONN_CLOSED) {
    w->end = HCSB__CEND_CONN_CLOSED;
  }
  hcsb__list_push(&c->waiters, &w->link);
  return w;
}

void hcsb__waiter_drop(hcsb__cwaiter_t *w) {
  hcsb__list_remove(&w->link);
  hcsb__res_free(w->res);
  free(w);
}

static void waiters_end(hcsb_conn_t *c, hcsb__cend_t end, int status) {
  hcsb__link_t *l;

  for (l = c->waiters.next; l != &c->waiters; l = l->next) {
    hcsb__cwaiter_t *w = HCSB__CONTAINER_OF(l, hcsb__cwaiter_t, link);
    if (w->end != HCSB__CEND_NONE) continue;
    w->end = end;
    w->status = status;
    if (w->handle != NULL) hcsb__container_conn_ended(w->handle);
  }
}

static void apply_notification(hcsb_conn_t *c, const hcsb_notification_t *n) {
  hcsb__cwaiter_t *w = hcsb__waiter_find(c, n->container_id);

  /* hcsshim kills the bridge here; one stray message must not cost the
   * whole utility VM. */
  if (w == NULL) {
    hcsb__api_log(c, HCSB_LOG_WARN, n->activity_id,
                  "notification %s for unknown container %s ignored", n->type,
                  n->container_id);
    return;
  }
  if (w->end != HCSB__CEND_NONE) {
    hcsb__api_log(c, HCSB_LOG_WARN, n->activity_id,
                  "second notification %s for container %s ignored", n->type,
                  n->container_id);
    return;
  }
  hcsb__api_log(c, HCSB_LOG_DEBUG, n->activity_id,
                "container %s: notification %s result 0x%08X", n->container_id,
                n->type, (unsigned)n->result);
  w->end = HCSB__CEND_EXITED;
  w->type = n->kind;
  snprintf(w->type_name, sizeof w->type_name, "%s", n->type);
  w->result = n->result;
  if (w->handle != NULL) hcsb__container_conn_ended(w->handle);
}

static void on_notify(void *data, hcsb_bridge_t *b,
                      const hcsb_notification_t *n) {
  hcsb_conn_t *c = data;

  (void)b;
  apply_notification(c, n);
  /* After the library's own use, so the hook sees the waits decided; the
   * hook may close the connection. */
  if (c->notify_cb != NULL && !c->obj.base.closing) {
    hcsb__obj_ref(&c->obj);
    c->notify_cb(c->notify_data, c, n);
    hcsb__obj_unref(&c->obj);
  }
}

/* ------------------------------------------------------------------------ */
/* Opening */

static void deliver_open(hcsb__op_t *op, int status,
                         const hcsb_guest_error_t *gerr,
                         const hcsb_response_t *resp) {
  hcsb_conn_t *c = (hcsb_conn_t *)op->owner;

  c->open_op = NULL;
  if (op->cb.open != NULL) op->cb.open(op->data, c, status, gerr);
}

static void stop_watching(hcsb_conn_t *c) {
  uv_timer_stop(&c->timer);
  if (c->check_active) {
    uv_check_stop(&c->check);
    c->check_active = 0;
  }
}

/* Kept by the connection: they stay readable after the bridge is gone. */
static void negotiated(hcsb_conn_t *c) {
  const hcsb_caps_t *caps = hcsb_bridge_caps(c->bridge);
  size_t i;

  c->state = HCSB__CONN_READY;
  c->protocol = hcsb_bridge_protocol_version(c->bridge);
  if (caps != NULL) {
    c->caps = *caps;
    c->negotiated = 1;
  }
  if (caps == NULL || caps->runtime_os_type[0] == '\0') {
    snprintf(c->os, sizeof c->os, "windows");
    return;
  }
  for (i = 0; i + 1 < sizeof c->os && caps->runtime_os_type[i] != '\0'; i++)
    c->os[i] = (char)tolower((unsigned char)caps->runtime_os_type[i]);
  c->os[i] = '\0';
}

/* The open did not succeed: nothing will ever be answered, so waits end. */
static void conn_failed(hcsb_conn_t *c, int status) {
  if (c->state != HCSB__CONN_OPENING) return;
  c->state = HCSB__CONN_FAILED;
  c->lost_status = status < 0 && status != HCSB_EGUEST ? status : -ENOTCONN;
  waiters_end(c, HCSB__CEND_LOST, c->lost_status);
}

/* The open's outcome; later reports (a ready after a timeout, say) are
 * ignored. */
static void conn_opened(hcsb_conn_t *c, int status,
                        const hcsb_guest_error_t *gerr) {
  hcsb__op_t *op = c->open_op;

  if (op == NULL || hcsb__defer_queued(&op->call.dq)) return;
  stop_watching(c);
  if (status == 0 && c->state == HCSB__CONN_OPENING)
    negotiated(c);
  else if (status == 0)
    status = -ENOTCONN;
  else
    conn_failed(c, status);
  hcsb__op_done(op, status, gerr, NULL);
}

static void on_ready(void *data, hcsb_bridge_t *b, int status,
                     const hcsb_guest_error_t *gerr) {
  conn_opened(data, status, gerr);
}

static void bridge_closed(void *data) {
  hcsb_conn_t *c = data;

  c->bridge_closed = 1;
  c->bridge = NULL;
  hcsb__obj_check_closed(&c->obj);
  hcsb__obj_unref(&c->obj);
}

static void close_bridge(hcsb_conn_t *c) {
  if (c->bridge == NULL || c->bridge_closing) return;
  c->bridge_closing = 1;
  hcsb__obj_ref(&c->obj);
  hcsb_bridge_close(c->bridge, bridge_closed, c);
}

static void on_connect_timeout(uv_timer_t *t) {
  hcsb_conn_t *c = HCSB__CONTAINER_OF(t, hcsb_conn_t, timer);

  hcsb__obj_ref(&c->obj);
  if (c->open_op != NULL && !hcsb__defer_queued(&c->open_op->call.dq)) {
    hcsb__api_log(c, HCSB_LOG_ERROR, NULL, "guest connection timed out");
    conn_failed(c, -ETIMEDOUT);
    /* Stop accepting (and kill a spawned guest) now rather than at close. */
    close_bridge(c);
    conn_opened(c, -ETIMEDOUT, NULL);
  }
  hcsb__obj_unref(&c->obj);
}

/* hcsb_conn_open_bridge: the caller owns the bridge's ready callback, so
 * its phase is checked after each loop poll until it settles. */
static void on_check(uv_check_t *h) {
  hcsb_conn_t *c = HCSB__CONTAINER_OF(h, hcsb_conn_t, check);

  if (hcsb_bridge_is_connected(c->bridge))
    conn_opened(c, 0, NULL);
  else if (hcsb_bridge_close_cause(c->bridge) != 0)
    conn_opened(c, -ECONNRESET, NULL);
}

static void on_disconnect(void *data, hcsb_bridge_t *b, int status) {
  hcsb_conn_t *c = data;

  hcsb__obj_ref(&c->obj);
  if (c->state == HCSB__CONN_OPENING) {
    conn_failed(c, status);
    conn_opened(c, status, NULL);
  } else if (c->state == HCSB__CONN_READY) {
    hcsb__api_log(c, HCSB_LOG_INFO, NULL, "guest connection lost: %s",
                  hcsb_strerror(status));
    c->state = HCSB__CONN_LOST;
    c->lost_status = status;
    waiters_end(c, HCSB__CEND_LOST, status);
    if (c->lost_cb != NULL && !c->obj.base.closing)
      c->lost_cb(c->lost_data, c, status);
  }
  hcsb__obj_unref(&c->obj);
}

static int conn_new(uv_loop_t *loop, const hcsb_conn_options_t *o,
                    hcsb_conn_t **out) {
  hcsb_conn_options_t defaults;
  hcsb_conn_t *c;
  int r;

  if (o == NULL) {
    hcsb_conn_options_init(&defaults);
    o = &defaults;
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL) return -ENOMEM;
  hcsb__obj_init(&c->obj, HCSB__KIND_CONN, c);
  c->ops = (hcsb__pool_t)HCSB__POOL_INIT(sizeof(hcsb__op_t), OP_POOL_MAX);
  c->loop = loop;
  c->state = HCSB__CONN_OPENING;
  c->connect_timeout_ms = o->connect_timeout_ms;
  c->call_timeout_ms = o->call_timeout_ms;
  c->shutdown_timeout_ms = o->shutdown_timeout_ms;
  c->stdio_accept_timeout_ms = o->stdio_accept_timeout_ms;
  c->log_cb = o->log_cb;
  c->log_data = o->log_data;
  c->log_level = o->log_level;
  c->next_port = HCSB_PORT_FIRST_STDIO;
  hcsb__list_init(&c->waiters);
  hcsb__list_init(&c->processes);
  c->inited = -1;
  r = hcsb__dq_init(loop, &c->dq, &c->obj.base);
  if (r == 0) c->inited = 0;
  if (r == 0 && (r = uv_timer_init(loop, &c->timer)) == 0) c->inited = 1;
  if (r == 0 && (r = uv_check_init(loop, &c->check)) == 0) c->inited = 2;
  if (r != 0) {
    hcsb__obj_abort(&c->obj); /* closes what was initialised */
    return r;
  }
  c->timer.data = c->check.data = c;
  *out = c;
  return 0;
}

/* The last reference: the connection's libuv handles close, and the
 * memory goes after their close callbacks (op.c). */
void hcsb__conn_release(hcsb_conn_t *c) {
  while (!hcsb__list_empty(&c->waiters))
    hcsb__waiter_drop(
        HCSB__CONTAINER_OF(c->waiters.next, hcsb__cwaiter_t, link));
  hcsb__disks_free(c->disks, c->ndisks);
  hcsb__trace_free_all(c);
  hcsb__pool_free(&c->ops);
  free(c->stdio_buf); /* every process and its stdio is gone */
  c->stdio_buf = NULL;
  if (c->inited < 0) return;
  hcsb__dq_close(&c->dq);
  if (c->inited > 0)
    hcsb__handle_uv_close(&c->obj.base, (uv_handle_t *)&c->timer);
  if (c->inited > 1)
    hcsb__handle_uv_close(&c->obj.base, (uv_handle_t *)&c->check);
}

int hcsb__conn_idle(const hcsb_conn_t *c) {
  return c->bridge == NULL && (c->bringup == NULL);
}

static int configure_bridge(hcsb_conn_t *c, const hcsb_conn_options_t *o) {
  int r = 0;

  hcsb_bridge_set_notify_cb(c->bridge, on_notify, c);
  hcsb_bridge_set_disconnect_cb(c->bridge, on_disconnect, c);
  if (o == NULL) return 0;
  if (o->log_cb != NULL)
    hcsb_bridge_set_log(c->bridge, o->log_cb, o->log_data, o->log_level);
  if (r == 0 && o->max_frame != 0)
    r = hcsb_bridge_set_max_frame(c->bridge, o->max_frame);
  if (r == 0 && o->max_pending != 0)
    r = hcsb_bridge_set_max_pending(c->bridge, o->max_pending);
  if (r == 0 && o->max_write_queue != 0)
    r = hcsb_bridge_set_max_write_queue(c->bridge, o->max_write_queue);
  return r;
}

static int open_bringup(hcsb_conn_t *c, const hcsb_conn_options_t *o) {
  const hcsb_addr_t *addr;

  if (o == NULL || (!o->entropy && o->guest_log_cb == NULL)) return 0;
  addr = hcsb_bridge_address(c->bridge);
  if (addr == NULL || !addr->listen) return -EINVAL;
  return hcsb__bringup_open(c->loop, addr, o->entropy, o->guest_log_cb,
                            o->guest_log_data, &c->bringup);
}

static int start_open(hcsb_conn_t *c, hcsb_conn_open_cb cb, void *data) {
  int r = 0;
  static const hcsb__op_class_t open_op = {NULL, deliver_open, NULL};
  hcsb__op_t *op = hcsb__op_new(&c->obj, NULL, 0, &open_op, &r);

  if (op == NULL) return r;
  op->cb.open = cb;
  op->data = data;
  c->open_op = op;
  return 0;
}

/* Undoes a half-built connection nobody has seen yet. */
static void conn_abort(hcsb_conn_t *c) {
  if (c->open_op != NULL) hcsb__op_discard(c->open_op);
  c->open_op = NULL;
  if (c->bringup != NULL) hcsb__bringup_close(c->bringup);
  c->bringup = NULL;
  c->state = HCSB__CONN_CLOSED;
  if (c->bridge != NULL && !c->bridge_closing) {
    hcsb__obj_ref(&c->obj);
    c->bridge_closing = 1;
    hcsb_bridge_close(c->bridge, bridge_closed, c);
  }
  hcsb__obj_abort(&c->obj);
}

/* 1 when the address text sets ?timeout= itself.  The syntax was checked
 * by hcsb_addr_parse: the first '?' starts the options, '&' separates them,
 * and spawn: has none. */
static int address_sets_timeout(const char *address) {
  const char *q;

  if (strncmp(address, "spawn:", 6) == 0) return 0;
  for (q = strchr(address, '?'); q != NULL; q = strchr(q, '&'))
    if (strncmp(++q, "timeout=", 8) == 0) return 1;
  return 0;
}

int hcsb_conn_open(uv_loop_t *loop, const hcsb_conn_options_t *opts,
                   hcsb_conn_open_cb cb, void *data, hcsb_conn_t **out) {
  hcsb_addr_t addr;
  hcsb_conn_t *c;
  int r;

  if (loop == NULL || opts == NULL || opts->address == NULL || out == NULL)
    return -EINVAL;
  r = hcsb_addr_parse(opts->address, &addr);
  if (r != 0) return r;
  /* connect_timeout_ms covers the accept or dial too; the syntax's default
   * accept timeout would otherwise cap an open the caller wanted unbounded
   * (connect_timeout_ms 0).  An explicit ?timeout= still applies. */
  if (!address_sets_timeout(opts->address)) addr.timeout_ms = 0;
  r = conn_new(loop, opts, &c);
  if (r != 0) return r;
  r = hcsb_bridge_new(loop, &c->bridge);
  if (r == 0) r = configure_bridge(c, opts);
  if (r == 0) r = start_open(c, cb, data);
  if (r == 0) r = hcsb_bridge_connect_addr(c->bridge, &addr, on_ready, c);
  /* After the bridge's own listener, so every port is bound on return. */
  if (r == 0) r = open_bringup(c, opts);
  if (r != 0) {
    conn_abort(c);
    return r;
  }
  if (c->connect_timeout_ms != 0)
    uv_timer_start(&c->timer, on_connect_timeout, c->connect_timeout_ms, 0);
  *out = c;
  return 0;
}

int hcsb_conn_open_bridge(hcsb_bridge_t *bridge,
                          const hcsb_conn_options_t *opts, hcsb_conn_open_cb cb,
                          void *data, hcsb_conn_t **out) {
  hcsb_conn_t *c;
  int r;

  if (bridge == NULL || out == NULL) return -EINVAL;
  r = conn_new(hcsb_bridge_loop(bridge), opts, &c);
  if (r != 0) return r;
  c->bridge = bridge;
  r = start_open(c, cb, data);
  if (r == 0) r = open_bringup(c, opts);
  if (r != 0) {
    /* The bridge stays the caller's when we fail. */
    c->bridge = NULL;
    conn_abort(c);
    return r;
  }
  configure_bridge(c, opts);
  if (hcsb_bridge_is_connected(bridge)) {
    negotiated(c);
    hcsb__op_done_later(c->open_op, 0);
  } else if (hcsb_bridge_close_cause(bridge) != 0) {
    conn_failed(c, -ENOTCONN);
    hcsb__op_done_later(c->open_op, -ENOTCONN);
  } else {
    uv_check_start(&c->check, on_check);
    c->check_active = 1;
    if (c->connect_timeout_ms != 0)
      uv_timer_start(&c->timer, on_connect_timeout, c->connect_timeout_ms, 0);
  }
  *out = c;
  return 0;
}

void hcsb_conn_close(hcsb_conn_t *c, hcsb_close_cb cb, void *data) {
  hcsb__link_t *l, *next;

  if (c == NULL || c->obj.base.closing) return;
  stop_watching(c);
  waiters_end(c, HCSB__CEND_CONN_CLOSED, -ECANCELED);
  c->state = HCSB__CONN_CLOSED;
  for (l = c->processes.next; l != &c->processes; l = next) {
    next = l->next;
    hcsb__process_conn_closed(HCSB__CONTAINER_OF(l, hcsb_process_t, conn_link));
  }
  if (c->bringup != NULL) hcsb__bringup_close(c->bringup);
  c->bringup = NULL;
  close_bridge(c);
  hcsb__obj_close(&c->obj, cb, data);
}

/* ------------------------------------------------------------------------ */
/* Getters */

hcsb_bridge_t *hcsb_conn_bridge(const hcsb_conn_t *c) {
  return c == NULL || c->bridge_closing ? NULL : c->bridge;
}

uv_loop_t *hcsb_conn_loop(const hcsb_conn_t *c) {
  return c == NULL ? NULL : c->loop;
}

const hcsb_caps_t *hcsb_conn_caps(const hcsb_conn_t *c) {
  return c == NULL || !c->negotiated ? NULL : &c->caps;
}

uint32_t hcsb_conn_protocol(const hcsb_conn_t *c) {
  return c == NULL ? 0 : c->protocol;
}

const char *hcsb_conn_os(const hcsb_conn_t *c) {
  return c == NULL ? "" : c->os;
}

void hcsb_conn_set_data(hcsb_conn_t *c, void *data) {
  c->obj.base.data = data;
}

void *hcsb_conn_get_data(const hcsb_conn_t *c) {
  return c->obj.base.data;
}

void hcsb_conn_set_lost_cb(hcsb_conn_t *c, hcsb_conn_lost_cb cb, void *data) {
  c->lost_cb = cb;
  c->lost_data = data;
}

void hcsb_conn_set_notify_cb(hcsb_conn_t *c, hcsb_conn_notify_cb cb,
                             void *data) {
  c->notify_cb = cb;
  c->notify_data = data;
}
