/* Processes: ExecuteProcess with its stdio listeners opened first, the one
 * outstanding WaitForProcess that reports the exit (protocol.md §9.5),
 * signals and console resizes (queued until the process exists), close. */
#include <stdlib.h>
#include <string.h>

#include "api/api-int.h"

/* ------------------------------------------------------------------------ */
/* Objects */

static hcsb_process_t *process_new(hcsb_conn_t *conn, hcsb_container_t *c) {
  hcsb_process_t *p = calloc(1, sizeof(*p));

  if (p == NULL) return NULL;
  hcsb__obj_init(&p->obj, HCSB__KIND_PROCESS, conn);
  hcsb__list_init(&p->waits);
  hcsb__list_init(&p->clink);
  hcsb__list_init(&p->conn_link);
  if (c != NULL) {
    p->container = c;
    hcsb__obj_ref(&c->obj);
    p->cid = c->id;
  }
  p->state = HCSB__PROC_CREATING;
  p->tty = -1;
  return p;
}

void hcsb__process_free(hcsb_process_t *p) {
  if (p->container != NULL) hcsb__obj_unref(&p->container->obj);
  free(p);
}

int hcsb__process_idle(const hcsb_process_t *p) {
  return hcsb__list_empty(&p->waits) && p->nwrites == 0;
}

static void stdio_release(hcsb_process_t *p, int status) {
  if (p->stdio != NULL) hcsb__stdio_close(p->stdio);
  p->stdio = NULL;
  if (p->stdio_status == 1) p->stdio_status = status;
}

/* Undoes a process nobody has seen yet. */
static void process_abort(hcsb_process_t *p) {
  stdio_release(p, -ECANCELED);
  hcsb__list_remove(&p->clink);
  hcsb__list_remove(&p->conn_link);
  hcsb__obj_abort(&p->obj);
}

/* ------------------------------------------------------------------------ */
/* The exit */

static void wait_fill(hcsb_process_t *p, hcsb__wait_t *w) {
  switch (p->state) {
    case HCSB__PROC_EXITED:
      w->exit_code = p->exit_code;
      hcsb__wait_queue(w, 0);
      break;
    case HCSB__PROC_UNKNOWN:
    case HCSB__PROC_FAILED:
      w->exit_code = p->exit_code;
      hcsb__wait_queue(w, p->end_status);
      break;
    default:
      break;
  }
}

static void fill_waits(hcsb_process_t *p) {
  hcsb__link_t *l;

  for (l = p->waits.next; l != &p->waits; l = l->next) {
    hcsb__wait_t *w = HCSB__CONTAINER_OF(l, hcsb__wait_t, link);
    if (!hcsb__defer_queued(&w->defer)) wait_fill(p, w);
  }
}

/* The exit can never be known.  A guest error's HRESULT travels in the
 * exit code slot, since the wait callback has no room for `gerr`. */
static void exit_unknown(hcsb_process_t *p, hcsb__pstate_t state, int status,
                         const hcsb_guest_error_t *gerr) {
  p->state = state;
  p->end_status = status;
  p->exit_code = status == HCSB_EGUEST && gerr != NULL ? gerr->hresult : 0;
  fill_waits(p);
}

static void on_wait(void *data, int status, const hcsb_guest_error_t *gerr,
                    const hcsb_response_t *resp) {
  hcsb_process_t *p = data;
  hcsb_conn_t *conn = p->obj.conn;

  p->wait_call = NULL;
  if (status == 0 && (resp == NULL || !resp->has_exit_code)) status = -EPROTO;
  if (status == 0) {
    hcsb__api_log(conn, HCSB_LOG_DEBUG, resp->activity_id,
                  "process %u exited with %u", (unsigned)p->pid,
                  (unsigned)resp->exit_code);
    p->state = HCSB__PROC_EXITED;
    p->exit_code = resp->exit_code;
    fill_waits(p);
  } else {
    /* 0x80070490 included: "not found" is an unknown exit, never 0. */
    hcsb__api_log(conn, HCSB_LOG_INFO, NULL, "process %u: exit unknown: %s",
                  (unsigned)p->pid, hcsb_strerror(status));
    exit_unknown(p, HCSB__PROC_UNKNOWN, status, gerr);
  }
  hcsb__obj_unref(&p->obj);
}

/* The library's own WaitForProcess: no timeout, never cancelled by the
 * handle's close, so the guest always gets to report (and clean up).  It
 * belongs to the call that created the process (`op`): same ActivityId and
 * span context, so the guest's log of the exit correlates with the create;
 * a process opened by PID gets a fresh ActivityId and the connection's
 * current span context. */
static void start_wait(hcsb_process_t *p, const hcsb__op_t *op) {
  hcsb_conn_t *conn = p->obj.conn;
  hcsb_request_t req;
  char aid[37];
  int r = -ENOTCONN;

  memset(&req, 0, sizeof(req));
  if (op != NULL) {
    req.activity_id = hcsb__op_activity(op, aid);
    req.ocsc = hcsb__trace_json(conn, op->trace);
  } else {
    hcsb__guid_generate(aid);
    req.activity_id = aid;
    req.ocsc = hcsb__trace_json(conn, conn->trace_cur);
  }
  req.type = HCSB_MSG_WAIT_FOR_PROCESS;
  req.container_id = p->cid;
  req.u.wait.pid = p->pid;
  req.u.wait.timeout_ms = HCSB_INFINITE_WAIT;
  if (hcsb__conn_usable(conn)) {
    hcsb__obj_ref(&p->obj);
    r = hcsb_bridge_call(conn->bridge, &req, 0, on_wait, p, &p->wait_call);
    if (r == 0) return;
    hcsb__obj_unref(&p->obj);
  }
  exit_unknown(p, HCSB__PROC_UNKNOWN, r, NULL);
}

int hcsb_process_wait(hcsb_process_t *p, uint32_t timeout_ms,
                      hcsb_process_wait_cb cb, void *data) {
  hcsb__wait_t *w;
  int r;

  if (p == NULL || cb == NULL) return -EINVAL;
  r = hcsb__wait_new(&p->obj, &p->waits, timeout_ms, &w);
  if (r != 0) return r;
  w->cb.process = cb;
  w->data = data;
  if (p->obj.base.closing)
    hcsb__wait_queue(w, -ECANCELED);
  else
    wait_fill(p, w);
  return 0;
}

int hcsb_process_exit_code(const hcsb_process_t *p, uint32_t *code) {
  if (p == NULL || code == NULL) return -EINVAL;
  switch (p->state) {
    case HCSB__PROC_EXITED:
      *code = p->exit_code;
      return 0;
    case HCSB__PROC_CREATING:
    case HCSB__PROC_RUNNING:
      return -EBUSY;
    default:
      return -ENODATA;
  }
}

/* ------------------------------------------------------------------------ */
/* Signals and resizes */

static int process_send(hcsb__op_t *op) {
  hcsb_process_t *p = (hcsb_process_t *)op->owner;
  hcsb_request_t req;

  memset(&req, 0, sizeof(req));
  req.type = op->msg;
  req.container_id = p->cid;
  if (op->msg == HCSB_MSG_SIGNAL_PROCESS) {
    req.u.signal.pid = p->pid;
    req.u.signal.signal = (int)op->arg;
  } else {
    req.u.resize.pid = p->pid;
    req.u.resize.width = (uint16_t)(op->arg >> 16);
    req.u.resize.height = (uint16_t)op->arg;
  }
  return hcsb__op_send(op, &req);
}

/* Sends now, or parks the op until the process exists (hcsshim users hit
 * resizes that raced the create: protocol.md §12). */
static int process_start_op(hcsb_process_t *p, hcsb__op_t *op) {
  int r;

  if (!hcsb__op_cancelled(op) && p->state == HCSB__PROC_CREATING) {
    hcsb__op_set_parked(op, 1);
    return 0;
  }
  if (!hcsb__op_cancelled(op) && p->state == HCSB__PROC_FAILED) {
    hcsb__op_done_later(op, -ESRCH);
    return 0;
  }
  r = process_send(op);
  if (r != 0) hcsb__op_discard(op);
  return r;
}

static void unpark(hcsb_process_t *p, int failed) {
  hcsb__link_t *l;

  for (l = p->obj.base.reqs.next; l != &p->obj.base.reqs; l = l->next) {
    hcsb__op_t *op = HCSB__CONTAINER_OF(l, hcsb__op_t, link);
    int r = -ESRCH;

    if (!hcsb__op_parked(op)) continue;
    hcsb__op_set_parked(op, 0);
    if (hcsb__defer_queued(&op->call.dq)) continue; /* cancelled meanwhile */
    if (!failed) r = process_send(op);
    if (r != 0) hcsb__op_done_later(op, r);
  }
}

static void deliver_signal(hcsb__op_t *op, int status,
                           const hcsb_guest_error_t *gerr,
                           const hcsb_response_t *resp) {
  int delivered = status == 0;

  if (status == HCSB_EGUEST && gerr != NULL &&
      gerr->hresult == HCSB_E_NOT_FOUND) {
    status = 0; /* already gone: not delivered, not an error (hcsshim) */
    gerr = NULL;
  }
  if (op->cb.signal != NULL) op->cb.signal(op->data, status, gerr, delivered);
}

static const hcsb__op_class_t signal_op = {NULL, deliver_signal, NULL};

/* `signum` 0 is the kill without Options (the guest's SIGKILL). */
static int signal_process(hcsb_process_t *p, const hcsb_call_opts_t *opts,
                          int signum, hcsb_signal_cb cb, void *data) {
  hcsb_conn_t *conn;
  hcsb__op_t *op;
  int r;

  if (p == NULL) return -EINVAL;
  conn = p->obj.conn;
  /* Without SignalProcessSupported the guest only knows "kill": the shim's
   * rule is to accept SIGABRT/SIGKILL/SIGTERM and send all three as one. */
  if (conn->negotiated && !conn->caps.guest.signal_process_supported) {
    if (signum > 0 && signum != 6 && signum != 9 && signum != 15)
      return -ENOTSUP;
    signum = 0;
  }
  op = hcsb__op_new(&p->obj, opts, conn->call_timeout_ms, &signal_op, &r);
  if (op == NULL) return r;
  op->msg = HCSB_MSG_SIGNAL_PROCESS;
  op->arg = signum > 0 ? (uint32_t)signum : 0;
  op->cb.signal = cb;
  op->data = data;
  return process_start_op(p, op);
}

int hcsb_process_signal(hcsb_process_t *p, const hcsb_call_opts_t *opts,
                        int signum, hcsb_signal_cb cb, void *data) {
  /* The Linux guest kills with what it is given: 0 would be a probe, not a
   * signal, and above SIGRTMAX (64) kill(2) fails there; the caller hears
   * it now rather than as an E_FAIL, or as a SIGKILL it never asked for. */
  if (signum <= 0 || signum > HCSB_SIGNAL_MAX) return -EINVAL;
  return signal_process(p, opts, signum, cb, data);
}

int hcsb_process_kill(hcsb_process_t *p, const hcsb_call_opts_t *opts,
                      hcsb_signal_cb cb, void *data) {
  return signal_process(p, opts, 0, cb, data);
}

static int resize(hcsb_process_t *p, const hcsb_call_opts_t *opts,
                  uint16_t width, uint16_t height, hcsb_done_cb cb,
                  void *data) {
  hcsb__op_t *op;
  int r;

  op = hcsb__op_new(&p->obj, opts, p->obj.conn->call_timeout_ms, &hcsb__done_op,
                    &r);
  if (op == NULL) return r;
  op->msg = HCSB_MSG_RESIZE_CONSOLE;
  op->arg = (uint32_t)width << 16 | height;
  op->cb.done = cb;
  op->data = data;
  return process_start_op(p, op);
}

int hcsb_process_resize_console(hcsb_process_t *p, const hcsb_call_opts_t *opts,
                                uint16_t width, uint16_t height,
                                hcsb_done_cb cb, void *data) {
  if (p == NULL) return -EINVAL;
  return resize(p, opts, width, height, cb, data);
}

/* The config's console size, once the process exists, when the request did
 * not carry it (the init of a container, a caller's OCI process); a UVM
 * process's size always travels in the request (ConsoleSize). */
static void initial_resize(hcsb_process_t *p) {
  if (p->console_width == 0 && p->console_height == 0) return;
  if (p->uvm || p->tty != 1) return;
  if (resize(p, NULL, p->console_width, p->console_height, NULL, NULL) != 0)
    hcsb__api_log(p->obj.conn, HCSB_LOG_WARN, NULL,
                  "process %u: could not apply the console size",
                  (unsigned)p->pid);
}

/* ------------------------------------------------------------------------ */
/* Create */

static void deliver_create(hcsb__op_t *op, int status,
                           const hcsb_guest_error_t *gerr,
                           const hcsb_response_t *resp) {
  hcsb_process_t *p = (hcsb_process_t *)op->owner;

  p->create_op = NULL;
  if (status != 0 && p->state == HCSB__PROC_CREATING) {
    stdio_release(p, status);
    exit_unknown(p, HCSB__PROC_FAILED, status, gerr);
    unpark(p, 1);
  }
  if (op->cb.process != NULL) op->cb.process(op->data, p, status, gerr);
}

static void exec_step(hcsb__op_t *op, int status,
                      const hcsb_guest_error_t *gerr,
                      const hcsb_response_t *resp) {
  hcsb_process_t *p = (hcsb_process_t *)op->owner;

  p->exec_done = 1;
  if (status == 0 && resp == NULL) status = -EPROTO;
  if (status != 0) {
    stdio_release(p, status);
    hcsb__op_done(op, status, gerr, resp);
    return;
  }
  p->pid = resp->process_id;
  p->state = HCSB__PROC_RUNNING;
  start_wait(p, op);
  unpark(p, 0);
  initial_resize(p);
  if (p->stdio_status == 1) return; /* the ready callback finishes */
  hcsb__op_done(op, p->stdio_status, NULL, NULL);
}

static const hcsb__op_class_t create_op = {exec_step, deliver_create, NULL};

static void on_stdio_ready(void *data, int status) {
  hcsb_process_t *p = data;
  hcsb__op_t *op = p->create_op;
  char aid[37];

  if (p->stdio_status != 1) return;
  p->stdio_status = status;
  if (status != 0) {
    hcsb__api_log(p->obj.conn, HCSB_LOG_WARN,
                  op != NULL ? hcsb__op_activity(op, aid) : NULL,
                  "stdio relay not connected: %s", hcsb_strerror(status));
    stdio_release(p, status);
  }
  if (op != NULL && p->exec_done && !hcsb__op_busy(op)) {
    hcsb__obj_ref(&p->obj);
    hcsb__op_done(op, status, NULL, NULL);
    hcsb__obj_unref(&p->obj);
  }
}

static int open_stdio(hcsb_process_t *p, const hcsb_process_config_t *config) {
  hcsb_conn_t *conn = p->obj.conn;
  const int want[3] = {config->create_stdin_pipe, config->create_stdout_pipe,
                       config->create_stderr_pipe};
  const hcsb_addr_t *addr;
  unsigned i, n = 0;
  uint32_t port;

  for (i = 0; i < 3; i++) n += want[i] != 0;
  if (n == 0 || !hcsb__conn_usable(conn)) return 0;
  addr = hcsb__conn_addr(conn);
  if (addr == NULL) return -EINVAL;
  /* One read buffer for every process of the connection (stdio.c). */
  if ((want[1] || want[2]) && conn->stdio_buf == NULL &&
      (conn->stdio_buf = malloc(HCSB__STDIO_READ_BUF_SIZE)) == NULL)
    return -ENOMEM;
  port = hcsb__conn_take_ports(conn, n);
  for (i = 0; i < 3; i++) p->ports[i] = want[i] ? port++ : 0;
  p->stdio_status = 1;
  return hcsb__stdio_open(conn->loop, addr, p->ports,
                          conn->stdio_accept_timeout_ms, conn->stdio_buf,
                          on_stdio_ready, p, &p->stdio);
}

int hcsb__process_create(hcsb_conn_t *conn, hcsb_container_t *c,
                         const hcsb_call_opts_t *opts,
                         const hcsb_process_config_t *config,
                         hcsb_process_cb cb, void *data, hcsb_process_t **out) {
  hcsb_request_t req;
  hcsb_process_t *p;
  hcsb__op_t *op;
  char *params;
  int tty, r;

  if (conn == NULL || config == NULL || out == NULL) return -EINVAL;
  r = hcsb__process_params(config, c != NULL, &params, &tty);
  if (r != 0) return r;
  p = process_new(conn, c);
  if (p == NULL) {
    free(params);
    return -ENOMEM;
  }
  p->uvm = c == NULL || config->create_in_utility_vm;
  p->tty = tty < 0 && c != NULL ? c->spec_terminal : tty;
  if (!hcsb__process_size_sent(config, c != NULL)) {
    p->console_width = config->console_width;
    p->console_height = config->console_height;
  }
  op = hcsb__op_new(&p->obj, opts, conn->call_timeout_ms, &create_op, &r);
  /* Listeners before the request: the guest dials before it answers. */
  if (op != NULL) r = open_stdio(p, config);
  if (r != 0) {
    if (op != NULL) hcsb__op_discard(op);
    free(params);
    process_abort(p);
    return r;
  }
  op->cb.process = cb;
  op->data = data;
  p->create_op = op;
  memset(&req, 0, sizeof(req));
  req.type = HCSB_MSG_EXECUTE_PROCESS;
  req.container_id = p->cid;
  req.u.execute.process_parameters = params;
  req.u.execute.stdin_port = p->ports[0];
  req.u.execute.stdout_port = p->ports[1];
  req.u.execute.stderr_port = p->ports[2];
  r = hcsb__op_send(op, &req);
  free(params);
  if (r != 0) {
    hcsb__op_discard(op);
    process_abort(p);
    return r;
  }
  if (c != NULL) hcsb__list_push(&c->processes, &p->clink);
  hcsb__list_push(&conn->processes, &p->conn_link);
  *out = p;
  return 0;
}

int hcsb_conn_create_process(hcsb_conn_t *conn, const hcsb_call_opts_t *opts,
                             const hcsb_process_config_t *config,
                             hcsb_process_cb cb, void *data,
                             hcsb_process_t **out) {
  return hcsb__process_create(conn, NULL, opts, config, cb, data, out);
}

int hcsb_container_open_process(hcsb_container_t *c, uint32_t pid,
                                hcsb_process_t **out) {
  hcsb__link_t *l;
  hcsb_process_t *p;

  if (c == NULL || out == NULL || c->obj.base.closing) return -EINVAL;
  for (l = c->processes.next; l != &c->processes; l = l->next)
    if (HCSB__CONTAINER_OF(l, hcsb_process_t, clink)->pid == pid)
      return -EEXIST;
  p = process_new(c->obj.conn, c);
  if (p == NULL) return -ENOMEM;
  p->pid = pid;
  p->state = HCSB__PROC_RUNNING;
  hcsb__list_push(&c->processes, &p->clink);
  hcsb__list_push(&c->obj.conn->processes, &p->conn_link);
  start_wait(p, NULL);
  *out = p;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Close and the rest */

void hcsb__process_conn_closed(hcsb_process_t *p) {
  hcsb__op_t *op = p->create_op;

  hcsb__list_remove(&p->conn_link);
  stdio_release(p, -ECANCELED);
  /* A create that only waited for its stdio would wait forever. */
  if (op != NULL && !hcsb__op_busy(op)) hcsb__op_done_later(op, -ECANCELED);
}

void hcsb_process_close(hcsb_process_t *p, hcsb_close_cb cb, void *data) {
  hcsb__link_t *l;

  if (p == NULL || p->obj.base.closing) return;
  p->obj.base.closing = 1;
  for (l = p->waits.next; l != &p->waits; l = l->next) {
    hcsb__wait_t *w = HCSB__CONTAINER_OF(l, hcsb__wait_t, link);
    w->exit_code = 0;
    hcsb__wait_queue(w, -ECANCELED);
  }
  stdio_release(p, -ECANCELED);
  hcsb__list_remove(&p->clink);
  hcsb__list_remove(&p->conn_link);
  hcsb__obj_close(&p->obj, cb, data);
}

uint32_t hcsb_process_pid(const hcsb_process_t *p) {
  return p == NULL ? 0 : p->pid;
}

hcsb_container_t *hcsb_process_container(const hcsb_process_t *p) {
  if (p == NULL || p->container == NULL || p->container->obj.base.closing)
    return NULL;
  return p->container;
}

void hcsb_process_set_data(hcsb_process_t *p, void *data) {
  p->obj.base.data = data;
}

void *hcsb_process_get_data(const hcsb_process_t *p) {
  return p->obj.base.data;
}
