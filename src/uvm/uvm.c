/* The utility VM handle (include/hcsbridge/uvm.h): start, QEMU's exit,
 * close.
 *
 * Start, one step after the other, all under boot_timeout_ms:
 *   initrd   the per-run copy, when the options change the image
 *   backend  the bridge's hybrid-vsock listener first (a real GCS dials
 *            once and dies when nobody listens), then hcsb-vsockd, until
 *            it says it listens
 *   boot     QEMU, with QMP and the console on socketpairs; done when QMP
 *            is negotiated and the guest's bridge is
 * A failing step stops what runs (SIGKILL: nothing was entrusted to the VM
 * yet) and the start callback runs once both processes are reaped, so the
 * exit information is there to read.
 *
 * Stop (hcsb_uvm_close, or a failed start), each phase bounded by
 * shutdown_timeout_ms: ask the guest (ShutdownGraceful on the UVM, then
 * the connection goes), QMP quit, SIGKILL; hcsb-vsockd gets SIGTERM once
 * QEMU is gone, SIGKILL if it lingers.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "uvm/uvm-int.h"

#define VSOCKD_GRACE_MS 2000

static void stop_processes(hcsb_uvm_t *u);
static void start_fail(hcsb_uvm_t *u, int status, const char *why);

/* ------------------------------------------------------------------------ */
/* Logging */

void hcsb__uvm_log(const hcsb_uvm_t *u, hcsb_log_level_t level, const char *fmt,
                   ...) {
  char line[1024];
  va_list ap;
  if (u->cfg.log_cb == NULL || level > u->cfg.log_level) return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  u->cfg.log_cb(u->cfg.log_data, level, NULL, line);
}

double hcsb__uvm_elapsed_ms(const hcsb_uvm_t *u) {
  return (double)(uv_hrtime() - u->t_start_ms) / 1e6;
}

/* ------------------------------------------------------------------------ */
/* The console: kept in a ring for the exit information, copied to the
 * console log, scanned for the image's init markers. */

static void console_line(hcsb_uvm_t *u) {
  const char *l = u->con_line;
  int n = (int)u->con_line_len;
  if (n == 0) return;
  if (memmem(l, (size_t)n, "hcsb-uvm: FAILED", 16) != NULL)
    hcsb__uvm_log(u, HCSB_LOG_ERROR, "console: %.*s", n, l);
  else if (memmem(l, (size_t)n, "hcsb-uvm: ", 10) != NULL)
    hcsb__uvm_log(u, HCSB_LOG_INFO, "console (%.0f ms): %.*s",
                  hcsb__uvm_elapsed_ms(u), n, l);
  else
    hcsb__uvm_log(u, HCSB_LOG_DEBUG, "console: %.*s", n, l);
  u->con_line_len = 0;
}

static void console_bytes(hcsb_uvm_t *u, const char *p, size_t n) {
  if (u->console_fd >= 0) {
    /* A small local file; a failure costs the log, not the VM. */
    size_t off = 0;
    while (off < n) {
      ssize_t w = write(u->console_fd, p + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      off += (size_t)w;
    }
  }
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    u->con_ring[u->con_head] = c;
    u->con_head = (u->con_head + 1) % sizeof u->con_ring;
    if (u->con_len < sizeof u->con_ring) u->con_len++;
    if (c == '\n' || u->con_line_len == sizeof u->con_line) console_line(u);
    if (c != '\n' && c != '\r') u->con_line[u->con_line_len++] = c;
  }
}

static void console_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  hcsb_uvm_t *u = h->data;
  (void)hint;
  *buf = uv_buf_init(u->rbuf, sizeof u->rbuf);
}

static void console_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  hcsb_uvm_t *u = s->data;
  if (nread < 0) {
    uv_read_stop(s);
    console_line(u);
    return;
  }
  console_bytes(u, buf->base, (size_t)nread);
}

/* What QEMU wrote before it died may still be in the socket when its exit
 * is reported. */
static void console_drain(hcsb_uvm_t *u) {
  uv_os_fd_t fd;
  char buf[4096];
  if (!u->console_open || uv_fileno((uv_handle_t *)&u->console, &fd) != 0)
    return;
  for (int i = 0; i < 64; i++) {
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) break;
    console_bytes(u, buf, (size_t)n);
  }
  console_line(u);
}

/* The ring's content from its oldest whole line on. */
static void console_tail(hcsb_uvm_t *u) {
  size_t n = u->con_len,
         start = (u->con_head + sizeof u->con_ring - n) % sizeof u->con_ring;
  size_t i, skip = 0;
  for (i = 0; i < n; i++)
    u->exit_console[i] = u->con_ring[(start + i) % sizeof u->con_ring];
  if (n == sizeof u->con_ring) {
    char *nl = memchr(u->exit_console, '\n', n);
    if (nl != NULL && (size_t)(nl - u->exit_console) + 1 < n)
      skip = (size_t)(nl - u->exit_console) + 1;
  }
  memmove(u->exit_console, u->exit_console + skip, n - skip);
  u->exit_console[n - skip] = '\0';
  u->exit.console_tail = u->exit_console;
  u->exit.console_tail_len = n - skip;
}

/* ------------------------------------------------------------------------ */
/* User callbacks, from the deferred queue */

static void start_deferred(hcsb__defer_t *d) {
  hcsb_uvm_t *u = HCSB__CONTAINER_OF(d, hcsb_uvm_t, start_defer);
  hcsb_uvm_start_cb cb = u->start_cb;
  int status = u->start_status;

  u->start_cb = NULL;
  if (cb != NULL) cb(u->start_data, u, status, status == 0 ? u->conn : NULL);
}

static void exit_deferred(hcsb__defer_t *d) {
  hcsb_uvm_t *u = HCSB__CONTAINER_OF(d, hcsb_uvm_t, exit_defer);
  if (u->exit_cb != NULL && !u->closing) u->exit_cb(u->exit_data, u, &u->exit);
}

/* The exit callback comes after the operations QEMU's exit failed, the
 * start among them. */
static void tell_exit(hcsb_uvm_t *u) {
  if (!u->exit_due || u->exit_told || !u->start_told) return;
  u->exit_told = 1;
  hcsb__uvm_defer(u, &u->exit_defer, exit_deferred);
}

static void tell_start(hcsb_uvm_t *u) {
  if (u->start_told) return;
  u->start_told = 1;
  hcsb__uvm_defer(u, &u->start_defer, start_deferred);
  tell_exit(u);
}

/* ------------------------------------------------------------------------ */
/* Idle: everything stopped */

static int uvm_idle(const hcsb__handle_t *h) {
  const hcsb_uvm_t *u = (const hcsb_uvm_t *)h;
  /* Callbacks still queued run before the queue's handle goes. */
  return u->dq.n == 0 && u->job == NULL && !hcsb__vmproc_running(&u->qemu) &&
         !hcsb__vmproc_running(&u->vsockd) &&
         (u->conn == NULL || u->conn_closed) && !hcsb__vpmem_busy(u);
}

void hcsb__uvm_check_idle(hcsb_uvm_t *u) {
  if (uvm_idle(&u->h)) {
    /* A failed start is told once nothing runs any more. */
    if (u->step == HCSB__STEP_STOPPING && u->start_status != 0) tell_start(u);
    if (u->step == HCSB__STEP_STOPPING) u->step = HCSB__STEP_DONE;
  }
  hcsb__handle_check_closed(&u->h);
}

/* ------------------------------------------------------------------------ */
/* The connection */

static void conn_closed(void *data) {
  hcsb_uvm_t *u = data;
  u->conn_closed = 1;
  hcsb__uvm_check_idle(u);
  hcsb__handle_unref(&u->h);
}

static void close_conn(hcsb_uvm_t *u) {
  if (u->conn == NULL || u->conn_closing) return;
  u->conn_closing = 1;
  hcsb__handle_ref(&u->h);
  hcsb_conn_close(u->conn, conn_closed, u);
}

static void maybe_running(hcsb_uvm_t *u) {
  if (!u->qmp_ready || !u->conn_ready || u->step != HCSB__STEP_BOOT) return;
  u->step = HCSB__STEP_RUNNING;
  u->state = HCSB_UVM_RUNNING;
  uv_timer_stop(&u->boot_timer);
  hcsb__uvm_log(u, HCSB_LOG_INFO, "guest negotiated %.0f ms after the start",
                hcsb__uvm_elapsed_ms(u));
  u->start_status = 0;
  tell_start(u);
}

static void conn_opened(void *data, hcsb_conn_t *conn, int status,
                        const hcsb_guest_error_t *gerr) {
  hcsb_uvm_t *u = data;
  char line[256] = "";
  (void)conn;
  if (status == 0) {
    u->conn_ready = 1;
    maybe_running(u);
    return;
  }
  if (gerr != NULL) hcsb_guest_error_format(gerr, line, sizeof line);
  start_fail(u, status, line[0] ? line : "the guest's bridge failed");
}

/* ------------------------------------------------------------------------ */
/* QMP */

static void mon_log(hcsb__qmp_mon_t *m, int level, const char *msg) {
  hcsb__uvm_log(m->data, (hcsb_log_level_t)level, "%s", msg);
}

static void mon_ready(hcsb__qmp_mon_t *m, int status) {
  hcsb_uvm_t *u = m->data;
  if (status != 0) {
    /* QEMU that exits at once (a bad option) closes the monitor first:
     * its exit tells more. */
    if (status == -ECONNRESET) return;
    start_fail(u, status == -ETIMEDOUT ? -ETIMEDOUT : -EPROTO,
               "QMP could not be set up");
    return;
  }
  u->qmp_ready = 1;
  hcsb__uvm_log(u, HCSB_LOG_DEBUG, "QMP ready after %.0f ms",
                hcsb__uvm_elapsed_ms(u));
  maybe_running(u);
}

static void mon_event(hcsb__qmp_mon_t *m, const hcsb__qmp_msg_t *ev) {
  hcsb_uvm_t *u = m->data;
  const char *reason = NULL;
  json_object *v;
  if (ev->value != NULL && json_object_object_get_ex(ev->value, "reason", &v))
    reason = json_object_get_string(v);
  hcsb__uvm_log(u,
                strcmp(ev->event, "SHUTDOWN") == 0 ||
                        strcmp(ev->event, "GUEST_PANICKED") == 0
                    ? HCSB_LOG_INFO
                    : HCSB_LOG_DEBUG,
                "QEMU event %s%s%s", ev->event, reason ? ": " : "",
                reason ? reason : "");
}

static void mon_closed(hcsb__qmp_mon_t *m, int status) {
  /* QEMU is going away; its exit is what counts. */
  hcsb__uvm_log(m->data, HCSB_LOG_DEBUG, "QMP closed (%s)",
                hcsb_strerror(status));
}

static const hcsb__qmp_hooks_t mon_hooks = {mon_ready, mon_event, mon_closed,
                                            mon_log};

/* ------------------------------------------------------------------------ */
/* QEMU */

static void qemu_exited(hcsb__vmproc_t *c) {
  hcsb_uvm_t *u = c->uvm;
  int was_running = u->step == HCSB__STEP_RUNNING;

  u->exited = 1;
  uv_timer_stop(&u->limit_timer);
  console_drain(u);
  console_tail(u);
  memcpy(u->exit_stderr, c->tail, c->tail_len);
  u->exit_stderr[c->tail_len] = '\0';
  u->exit.exit_status = c->exit_status;
  u->exit.term_signal = c->term_signal;
  u->exit.time_limit = u->time_limit_hit;
  u->exit.stderr_tail = u->exit_stderr;
  u->exit.stderr_tail_len = c->tail_len;
  if (u->mon_used) hcsb__qmp_mon_close(&u->mon);
  hcsb__uvm_log(
      u, u->closing || c->exit_status == 0 ? HCSB_LOG_INFO : HCSB_LOG_WARN,
      "QEMU exited after %.0f ms: status %lld, signal %d%s",
      hcsb__uvm_elapsed_ms(u), (long long)c->exit_status, c->term_signal,
      u->time_limit_hit ? " (time limit)" : "");
  /* Exits the library caused while stopping a failed start are told by
   * the start's status; the others by the exit callback. */
  if (!u->closing && u->step != HCSB__STEP_STOPPING) u->exit_due = 1;
  if (!u->closing && !was_running && u->step != HCSB__STEP_STOPPING) {
    start_fail(u, -EHOSTDOWN, "QEMU exited while the VM was starting");
    return;
  }
  if (!u->closing && was_running) {
    /* The connection is left to end on its own (hcsb-vsockd closes its
     * sockets), so its users see the loss as such. */
    u->state = HCSB_UVM_STOPPED;
    u->step = HCSB__STEP_STOPPING;
    hcsb__vpmem_fail_all(u, -EHOSTDOWN);
    tell_exit(u);
  }
  /* The backend serves one QEMU session; make sure it goes. */
  stop_processes(u);
}

static void vsockd_exited(hcsb__vmproc_t *c) {
  hcsb_uvm_t *u = c->uvm;
  /* Stopping: the library killed it itself (a failed start, QEMU gone). */
  if (u->closing || u->exited || u->step >= HCSB__STEP_STOPPING) return;
  if (u->step < HCSB__STEP_RUNNING) {
    start_fail(u, -ECHILD, "hcsb-vsockd exited while the VM was starting");
    return;
  }
  /* Nothing can reach the guest any more: the VM is lost. */
  hcsb__uvm_log(u, HCSB_LOG_ERROR,
                "hcsb-vsockd exited (status %lld, signal %d): stopping QEMU",
                (long long)c->exit_status, c->term_signal);
  hcsb__vmproc_kill(&u->qemu, SIGKILL);
}

static void limit_fired(uv_timer_t *t) {
  hcsb_uvm_t *u = t->data;
  hcsb__uvm_log(u, HCSB_LOG_WARN, "time limit of %u s reached: killing QEMU",
                (unsigned)u->cfg.time_limit_s);
  u->time_limit_hit = 1;
  hcsb__vmproc_kill(&u->qemu, SIGKILL);
}

static int spawn_qemu(hcsb_uvm_t *u) {
  uv_stdio_container_t extra[2];
  hcsb__argv_t argv;
  int qmp[2] = {-1, -1}, con[2] = {-1, -1};
  int rc;

  rc =
      hcsb__uvm_qemu_argv(&u->cfg, u->run_dir, u->initrd, (int)getpid(), &argv);
  if (rc != 0) return rc;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qmp) != 0 ||
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, con) != 0) {
    rc = -errno;
    goto out;
  }
  memset(extra, 0, sizeof extra);
  extra[0].flags = UV_INHERIT_FD;
  extra[0].data.fd = qmp[1];
  extra[1].flags = UV_INHERIT_FD;
  extra[1].data.fd = con[1];
  hcsb__uvm_log(u, HCSB_LOG_DEBUG, "starting QEMU (%.0f ms)",
                hcsb__uvm_elapsed_ms(u));
  rc = hcsb__vmproc_spawn(&u->qemu, u, "QEMU", &argv, extra, 2, qemu_exited);
  if (rc != 0) goto out;
  close(qmp[1]);
  close(con[1]);
  qmp[1] = con[1] = -1;
  u->mon_used = 1;
  rc = hcsb__qmp_mon_open(&u->mon, u->loop, &u->h, qmp[0],
                          u->cfg.qmp_timeout_ms, &mon_hooks, u);
  qmp[0] = -1; /* the monitor's, also on failure */
  if (rc != 0) goto out;
  rc = uv_pipe_init(u->loop, &u->console, 0);
  if (rc != 0) goto out;
  u->console.data = u;
  u->console_open = 1;
  rc = uv_pipe_open(&u->console, con[0]);
  if (rc != 0) goto out;
  con[0] = -1;
  rc = uv_read_start((uv_stream_t *)&u->console, console_alloc, console_read);
  if (rc != 0) goto out;
  if (u->cfg.time_limit_s > 0)
    uv_timer_start(&u->limit_timer, limit_fired,
                   (uint64_t)u->cfg.time_limit_s * 1000, 0);
out:
  for (int i = 0; i < 2; i++) {
    if (qmp[i] >= 0) close(qmp[i]);
    if (con[i] >= 0) close(con[i]);
  }
  hcsb__argv_free(&argv);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* hcsb-vsockd */

static void ready_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  hcsb_uvm_t *u = h->data;
  (void)hint;
  *buf = uv_buf_init(u->rbuf, sizeof u->rbuf);
}

static void ready_close(hcsb_uvm_t *u) {
  if (!u->ready_open) return;
  u->ready_open = 0;
  hcsb__handle_uv_close(&u->h, (uv_handle_t *)&u->ready);
}

static void ready_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  hcsb_uvm_t *u = s->data;
  int rc;

  if (nread == 0) return;
  ready_close(u);
  if (nread < 0 || memchr(buf->base, '\n', (size_t)nread) == NULL) {
    /* Its exit (with its stderr in the log) says why. */
    if (u->step == HCSB__STEP_BACKEND)
      start_fail(u, -ECHILD, "hcsb-vsockd did not start");
    return;
  }
  if (u->step != HCSB__STEP_BACKEND) return;
  hcsb__uvm_log(u, HCSB_LOG_DEBUG, "hcsb-vsockd ready after %.0f ms",
                hcsb__uvm_elapsed_ms(u));
  u->step = HCSB__STEP_BOOT;
  rc = spawn_qemu(u);
  if (rc != 0) start_fail(u, rc, "QEMU could not be started");
}

static int spawn_vsockd(hcsb_uvm_t *u) {
  uv_stdio_container_t extra[1];
  hcsb__argv_t argv;
  int rc;

  rc = hcsb__uvm_vsockd_argv(&u->cfg, u->run_dir, (int)getpid(), &argv);
  if (rc != 0) return rc;
  rc = uv_pipe_init(u->loop, &u->ready, 0);
  if (rc != 0) goto out;
  u->ready.data = u;
  u->ready_open = 1;
  memset(extra, 0, sizeof extra);
  extra[0].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  extra[0].data.stream = (uv_stream_t *)&u->ready;
  rc = hcsb__vmproc_spawn(&u->vsockd, u, "hcsb-vsockd", &argv, extra, 1,
                          vsockd_exited);
  if (rc != 0) goto out;
  rc = uv_read_start((uv_stream_t *)&u->ready, ready_alloc, ready_read);
out:
  hcsb__argv_free(&argv);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Start */

static void backend(hcsb_uvm_t *u) {
  hcsb_conn_options_t co = u->cfg.conn;
  int rc;

  u->step = HCSB__STEP_BACKEND;
  /* Listening before anything runs: a GCS dials once. */
  co.address = u->address;
  if (co.connect_timeout_ms == 0 ||
      co.connect_timeout_ms > u->cfg.boot_timeout_ms)
    co.connect_timeout_ms = u->cfg.boot_timeout_ms;
  rc = hcsb_conn_open(u->loop, &co, conn_opened, u, &u->conn);
  if (rc != 0) {
    u->conn = NULL;
    start_fail(u, rc, "the bridge's socket could not be opened");
    return;
  }
  rc = spawn_vsockd(u);
  if (rc != 0) start_fail(u, rc, "hcsb-vsockd could not be started");
}

static void job_work(uv_work_t *w) {
  hcsb__initrd_build(HCSB__CONTAINER_OF(w, hcsb__initrd_job_t, work));
}

static void job_after(uv_work_t *w, int status) {
  hcsb__initrd_job_t *job = HCSB__CONTAINER_OF(w, hcsb__initrd_job_t, work);
  hcsb_uvm_t *u = w->data;

  u->job = NULL;
  if (status == 0) status = job->status;
  if (status == 0) {
    snprintf(u->initrd, sizeof u->initrd, "%s", job->out);
    hcsb__uvm_log(u, HCSB_LOG_DEBUG, "initrd written after %.0f ms",
                  hcsb__uvm_elapsed_ms(u));
  }
  if (status == 0 && u->step == HCSB__STEP_INITRD && !u->closing)
    backend(u);
  else if (status != 0 && !u->closing)
    start_fail(u, status, job->why[0] ? job->why : "the initrd failed");
  free(job);
  hcsb__uvm_check_idle(u);
  hcsb__handle_unref(&u->h);
}

static void boot_fired(uv_timer_t *t) {
  hcsb_uvm_t *u = t->data;
  start_fail(u, -ETIMEDOUT, "the VM did not come up in time");
}

static void begin(hcsb__defer_t *d) {
  hcsb_uvm_t *u = HCSB__CONTAINER_OF(d, hcsb_uvm_t, begin_defer);
  hcsb__initrd_job_t *job;
  int rc;

  if (u->step != HCSB__STEP_NEW) return;
  uv_timer_start(&u->boot_timer, boot_fired, u->cfg.boot_timeout_ms, 0);
  if (!hcsb__uvm_cfg_overrides(&u->cfg)) {
    snprintf(u->initrd, sizeof u->initrd, "%s", u->cfg.initrd);
    backend(u);
    return;
  }
  u->step = HCSB__STEP_INITRD;
  job = calloc(1, sizeof *job);
  if (job == NULL) {
    start_fail(u, -ENOMEM, "out of memory");
    return;
  }
  job->cfg = &u->cfg;
  job->work.data = u;
  snprintf(job->out, sizeof job->out, "%s/initrd.img", u->run_dir);
  rc = uv_queue_work(u->loop, &job->work, job_work, job_after);
  if (rc != 0) {
    free(job);
    start_fail(u, rc, "the initrd could not be written");
    return;
  }
  u->job = job;
  hcsb__handle_ref(&u->h);
}

/* ------------------------------------------------------------------------ */
/* Stop */

static void stop_fired(uv_timer_t *t);

static void arm_stop(hcsb_uvm_t *u, uint64_t ms) {
  uv_timer_start(&u->stop_timer, stop_fired, ms, 0);
}

static void quit_done(void *data, int status, const hcsb__qmp_msg_t *msg) {
  (void)msg;
  hcsb__uvm_log(data, HCSB_LOG_DEBUG, "QMP quit: %s", hcsb_strerror(status));
}

/* Moves the stop on: called when a phase ends or its time is up. */
static void stop_processes(hcsb_uvm_t *u) {
  if (u->step != HCSB__STEP_STOPPING && !u->closing) return;
  if (!hcsb__vmproc_running(&u->qemu)) {
    /* Ours to close when closing or when the start failed; after an
     * unexpected exit it ends on its own. */
    if (u->closing || u->start_status != 0) close_conn(u);
    if (hcsb__vmproc_running(&u->vsockd)) {
      hcsb__vmproc_kill(&u->vsockd, SIGTERM);
      if (u->stop_phase < 3) {
        u->stop_phase = 3;
        arm_stop(u, VSOCKD_GRACE_MS);
      }
    } else {
      uv_timer_stop(&u->stop_timer);
    }
    return;
  }
  switch (u->stop_phase) {
    case 0: /* the guest was asked (or could not be): wait */
      arm_stop(u, u->cfg.shutdown_timeout_ms);
      break;
    case 1:
      close_conn(u);
      if (u->qmp_ready &&
          hcsb__qmp_mon_command(&u->mon, "quit", NULL, u->cfg.qmp_timeout_ms,
                                quit_done, u) == 0) {
        hcsb__uvm_log(u, HCSB_LOG_INFO, "the guest did not stop: QMP quit");
        arm_stop(u, u->cfg.shutdown_timeout_ms);
        break;
      }
      u->stop_phase = 2;
      /* fall through */
    default:
      close_conn(u);
      hcsb__uvm_log(u, HCSB_LOG_INFO, "killing QEMU (pid %d)", u->qemu.pid);
      hcsb__vmproc_kill(&u->qemu, SIGKILL);
      hcsb__vmproc_kill(&u->vsockd, SIGKILL);
      break;
  }
}

static void stop_fired(uv_timer_t *t) {
  hcsb_uvm_t *u = t->data;
  if (u->stop_phase == 3) {
    hcsb__vmproc_kill(&u->vsockd, SIGKILL);
    return;
  }
  u->stop_phase++;
  stop_processes(u);
}

static void shutdown_done(void *data, int status,
                          const hcsb_guest_error_t *gerr,
                          const hcsb_response_t *resp) {
  hcsb_uvm_t *u = data;
  (void)gerr, (void)resp;
  /* A GCS exits without answering: the connection's end is the success. */
  hcsb__uvm_log(u, HCSB_LOG_DEBUG, "ShutdownGraceful: %s",
                hcsb_strerror(status));
  close_conn(u);
  hcsb__handle_unref(&u->h);
}

static void ask_guest(hcsb_uvm_t *u) {
  hcsb_request_t req;
  hcsb_bridge_t *b =
      u->conn != NULL && !u->conn_closing ? hcsb_conn_bridge(u->conn) : NULL;

  if (b == NULL || !hcsb_bridge_is_connected(b)) {
    u->stop_phase = 2;
    return;
  }
  memset(&req, 0, sizeof req);
  req.type = HCSB_MSG_SHUTDOWN_GRACEFUL;
  hcsb__handle_ref(&u->h);
  if (hcsb_bridge_call(b, &req, u->cfg.shutdown_timeout_ms, shutdown_done, u,
                       NULL) != 0) {
    hcsb__handle_unref(&u->h);
    u->stop_phase = 2;
    return;
  }
  u->shutdown_sent = 1;
  hcsb__uvm_log(u, HCSB_LOG_DEBUG, "asking the guest to shut down");
}

static void start_fail(hcsb_uvm_t *u, int status, const char *why) {
  if (u->step >= HCSB__STEP_RUNNING || u->closing) return;
  hcsb__uvm_log(u, HCSB_LOG_ERROR, "start failed after %.0f ms: %s (%s)",
                hcsb__uvm_elapsed_ms(u), why, hcsb_strerror(status));
  u->start_status = status != 0 ? status : -EIO;
  u->step = HCSB__STEP_STOPPING;
  u->state = HCSB_UVM_STOPPED;
  u->stop_phase = 2; /* nothing was entrusted to it yet */
  uv_timer_stop(&u->boot_timer);
  ready_close(u);
  close_conn(u);
  stop_processes(u);
  hcsb__uvm_check_idle(u);
}

/* ------------------------------------------------------------------------ */
/* The handle */

static void uvm_cancel(hcsb__handle_t *h) {
  hcsb_uvm_t *u = (hcsb_uvm_t *)h;
  int was_running = u->step == HCSB__STEP_RUNNING;

  u->closing = 1;
  u->state = HCSB_UVM_CLOSING;
  uv_timer_stop(&u->boot_timer);
  if (!u->start_told) {
    u->start_status = -ECANCELED;
    tell_start(u);
  }
  hcsb__vpmem_fail_all(u, -ECANCELED);
  ready_close(u);
  if (u->step == HCSB__STEP_NEW) hcsb__defer_cancel(&u->dq, &u->begin_defer);
  u->step = HCSB__STEP_STOPPING;
  if (was_running && hcsb__vmproc_running(&u->qemu))
    ask_guest(u);
  else
    u->stop_phase = 2;
  stop_processes(u);
}

static int remove_run_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[4352];
  if (d != NULL) {
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      unlink(p);
    }
    closedir(d);
  }
  return rmdir(dir);
}

static void uvm_close_handles(hcsb__handle_t *h) {
  hcsb_uvm_t *u = (hcsb_uvm_t *)h;

  if (u->mon_used) hcsb__qmp_mon_close(&u->mon);
  ready_close(u);
  if (u->console_open) {
    u->console_open = 0;
    hcsb__handle_uv_close(h, (uv_handle_t *)&u->console);
  }
  hcsb__vmproc_close(&u->qemu);
  hcsb__vmproc_close(&u->vsockd);
  if (u->timers_open) {
    u->timers_open = 0;
    hcsb__handle_uv_close(h, (uv_handle_t *)&u->boot_timer);
    hcsb__handle_uv_close(h, (uv_handle_t *)&u->limit_timer);
    hcsb__handle_uv_close(h, (uv_handle_t *)&u->stop_timer);
  }
  hcsb__dq_close(&u->dq);
  if (u->console_fd >= 0) close(u->console_fd);
  u->console_fd = -1;
  if (u->run_dir[0] != '\0' && remove_run_dir(u->run_dir) != 0)
    hcsb__uvm_log(u, HCSB_LOG_WARN, "cannot remove %s: %s", u->run_dir,
                  strerror(errno));
  u->run_dir[0] = '\0';
  u->address[0] = '\0';
}

static void uvm_release(hcsb__handle_t *h) {
  hcsb_uvm_t *u = (hcsb_uvm_t *)h;
  hcsb__vpmem_free(u);
  hcsb__ctr_free_all(u);
  hcsb__uvm_cfg_free(&u->cfg);
}

static void uvm_free(hcsb__handle_t *h) {
  free(h);
}

static const hcsb__handle_class_t uvm_class = {
    uvm_cancel, uvm_idle, uvm_close_handles, uvm_release, uvm_free};

int hcsb_uvm_start(uv_loop_t *loop, const hcsb_uvm_options_t *opts,
                   hcsb_uvm_start_cb cb, void *data, hcsb_uvm_t **out) {
  char why[512];
  hcsb_uvm_t *u;
  int rc;

  if (loop == NULL || opts == NULL || out == NULL) return -EINVAL;
  u = calloc(1, sizeof *u);
  if (u == NULL) return -ENOMEM;
  rc = hcsb__uvm_cfg_init(&u->cfg, opts, why, sizeof why);
  if (rc != 0) {
    if (opts->log_cb != NULL)
      opts->log_cb(opts->log_data, HCSB_LOG_ERROR, NULL, why);
    free(u);
    return rc;
  }
  /* <run>/vsock_<port> must fit a Unix socket address (108 bytes). */
  if (strlen(u->cfg.run_parent) + sizeof "/hcsb-uvm.XXXXXX/vsock_4294967295" >
      sizeof(((struct sockaddr_un *)0)->sun_path)) {
    hcsb__uvm_log(u, HCSB_LOG_ERROR, "run directory %s: path too long",
                  u->cfg.run_parent);
    hcsb__uvm_cfg_free(&u->cfg);
    free(u);
    return -ENAMETOOLONG;
  }
  snprintf(u->run_dir, sizeof u->run_dir, "%s/hcsb-uvm.XXXXXX",
           u->cfg.run_parent);
  if (mkdtemp(u->run_dir) == NULL) {
    rc = -errno;
    hcsb__uvm_log(u, HCSB_LOG_ERROR, "mkdtemp %s: %s", u->run_dir,
                  strerror(errno));
    hcsb__uvm_cfg_free(&u->cfg);
    free(u);
    return rc;
  }
  u->console_fd = -1;
  if (u->cfg.console_log != NULL) {
    u->console_fd = open(u->cfg.console_log,
                         O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (u->console_fd < 0) {
      rc = -errno;
      hcsb__uvm_log(u, HCSB_LOG_ERROR, "console log %s: %s", u->cfg.console_log,
                    strerror(errno));
      rmdir(u->run_dir);
      hcsb__uvm_cfg_free(&u->cfg);
      free(u);
      return rc;
    }
  }
  u->loop = loop;
  hcsb__handle_init(&u->h, &uvm_class, &u->dq);
  rc = hcsb__dq_init(loop, &u->dq, &u->h);
  if (rc == 0) rc = uv_timer_init(loop, &u->boot_timer);
  if (rc == 0) rc = uv_timer_init(loop, &u->limit_timer);
  if (rc == 0) rc = uv_timer_init(loop, &u->stop_timer);
  if (rc != 0) {
    /* uv_timer_init and uv_idle_init cannot fail on Linux; were it to,
     * the handles made so far would need their close callbacks first. */
    abort();
  }
  u->timers_open = 1;
  u->boot_timer.data = u->limit_timer.data = u->stop_timer.data = u;
  snprintf(u->address, sizeof u->address, "hvsock+fc://%s/vsock", u->run_dir);
  hcsb__defer_init(&u->start_defer);
  hcsb__defer_init(&u->begin_defer);
  hcsb__defer_init(&u->exit_defer);
  hcsb__list_init(&u->vpmem_queue);
  hcsb__list_init(&u->ctrs);
  hcsb__list_init(&u->ctr_ops);
  u->state = HCSB_UVM_STARTING;
  u->step = HCSB__STEP_NEW;
  u->start_cb = cb;
  u->start_data = data;
  u->t_start_ms = uv_hrtime();
  hcsb__uvm_defer(u, &u->begin_defer, begin);
  *out = u;
  return 0;
}

void hcsb_uvm_close(hcsb_uvm_t *u, hcsb_close_cb cb, void *data) {
  if (u == NULL || u->h.closing) return;
  hcsb__handle_close(&u->h, cb, data);
}

/* ------------------------------------------------------------------------ */
/* Getters */

hcsb_conn_t *hcsb_uvm_conn(const hcsb_uvm_t *u) {
  return u->step == HCSB__STEP_RUNNING && !u->closing && !u->conn_closing
             ? u->conn
             : NULL;
}
uv_loop_t *hcsb_uvm_loop(const hcsb_uvm_t *u) {
  return u->loop;
}
void hcsb_uvm_set_data(hcsb_uvm_t *u, void *data) {
  u->h.data = data;
}
void *hcsb_uvm_get_data(const hcsb_uvm_t *u) {
  return u->h.data;
}
int hcsb_uvm_pid(const hcsb_uvm_t *u) {
  return hcsb__vmproc_running(&u->qemu) ? u->qemu.pid : 0;
}
int hcsb_uvm_backend_pid(const hcsb_uvm_t *u) {
  return hcsb__vmproc_running(&u->vsockd) ? u->vsockd.pid : 0;
}
const char *hcsb_uvm_run_dir(const hcsb_uvm_t *u) {
  return u->run_dir;
}
const char *hcsb_uvm_address(const hcsb_uvm_t *u) {
  return u->address;
}
hcsb_uvm_state_t hcsb_uvm_state(const hcsb_uvm_t *u) {
  return u->state;
}

void hcsb_uvm_set_exit_cb(hcsb_uvm_t *u, hcsb_uvm_exit_cb cb, void *data) {
  u->exit_cb = cb;
  u->exit_data = data;
}

int hcsb_uvm_exit_info(const hcsb_uvm_t *u, hcsb_uvm_exit_t *out) {
  if (!u->exited) return -EBUSY;
  *out = u->exit;
  return 0;
}
