/* hcsbctl — a scriptable command-line client of a Linux GCS, and the
 * reference example of the hcsbridge API.
 *
 * This file: global options, choosing and connecting to the guest, the
 * session's container table, script mode and the loop helpers every
 * sub-command uses.  See hcsbctl.h for the overall shape.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hcsbctl.h"

#ifndef HCSB_LIBEXECDIR
#define HCSB_LIBEXECDIR "/usr/local/libexec"
#endif

/* ------------------------------------------------------------------------ */
/* Loop helpers */

int ctl_await(ctl_t *ctl, const int *done) {
  while (!*done) {
    if (uv_run(&ctl->loop, UV_RUN_ONCE) == 0 && !*done) {
      ctl_errorf(ctl,
                 "internal error: waiting for something that cannot happen");
      return -1;
    }
  }
  return 0;
}

void ctl_await_closed(ctl_t *ctl) {
  while (ctl->closing > 0)
    if (uv_run(&ctl->loop, UV_RUN_ONCE) == 0 && ctl->closing > 0) break;
}

void ctl_op_init(ctl_op_t *op) {
  memset(op, 0, sizeof(*op));
}

void ctl_op_record(ctl_op_t *op, int status, const hcsb_guest_error_t *gerr) {
  op->status = status;
  if (status == HCSB_EGUEST && gerr) {
    op->hresult = gerr->hresult;
    int n = hcsb_guest_error_format(gerr, NULL, 0);
    if (n > 0 && (op->gerr = malloc((size_t)n + 1)) != NULL)
      hcsb_guest_error_format(gerr, op->gerr, (size_t)n + 1);
  }
  op->done = 1;
}

void ctl_op_done_cb(void *data, int status, const hcsb_guest_error_t *gerr) {
  ctl_op_record(data, status, gerr);
}

/* Each invocation that spawns its guest starts an empty one, which is the
 * likely reason a container from an earlier command is unknown. */
static int no_container(ctl_t *ctl, const char *what, const char *gerr_line) {
  ctl_errorf(ctl, "%s: no container %s in this guest (%s)", what,
             ctl->container, gerr_line);
  if (!ctl->script &&
      (ctl->guest == NULL || strncmp(ctl->guest, "spawn:", 6) == 0))
    ctl_errorf(
        ctl,
        "each hcsbctl command spawns a new, empty guest: run a container's "
        "commands as one 'hcsbctl script' (see 'hcsbctl script --help')");
  return CTL_EXIT_FAILED;
}

int ctl_op_finish(ctl_t *ctl, ctl_op_t *op, const char *what) {
  int st;
  if (ctl_await(ctl, &op->done) != 0)
    st = CTL_EXIT_FAILED;
  else if (op->status == HCSB_EGUEST && op->gerr && ctl->container &&
           op->hresult == HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND)
    st = no_container(ctl, what, op->gerr);
  else
    st = ctl_report(ctl, what, op->status, op->gerr);
  free(op->gerr);
  op->gerr = NULL;
  return st;
}

int ctl_exit_status(int status) {
  switch (status) {
    case 0:
      return CTL_EXIT_OK;
    case -ETIMEDOUT:
      return CTL_EXIT_TIMEOUT;
    case -ECONNRESET:
    case -EPIPE:
    case -ENOTCONN:
    case -ECONNREFUSED:
    case -ENOENT:
    case -EPROTO:
    case -EMSGSIZE:
    case -ENOMSG:
    case -ECHILD:
      return CTL_EXIT_CONN;
    default:
      return CTL_EXIT_FAILED;
  }
}

int ctl_report(ctl_t *ctl, const char *what, int status,
               const char *gerr_line) {
  if (status == 0) return CTL_EXIT_OK;
  /* Ended by our own close on a signal: main says so, once. */
  if (ctl->interrupted && status != HCSB_EGUEST) return 128 + ctl->interrupted;
  if (status == HCSB_EGUEST && gerr_line)
    ctl_errorf(ctl, "%s: %s", what, gerr_line);
  else if (status == -ENOTCONN || status == -ECONNRESET ||
           (ctl->lost && ctl_exit_status(status) == CTL_EXIT_CONN))
    ctl_errorf(ctl, "%s: the connection to the guest is lost", what);
  else
    ctl_errorf(ctl, "%s: %s", what, hcsb_strerror(status));
  return ctl_exit_status(status);
}

hcsb_call_opts_t ctl_call_opts(const ctl_t *ctl) {
  hcsb_call_opts_t o = {NULL, ctl->timeout_ms};
  return o;
}

int ctl_want_json(const ctl_t *ctl) {
  return ctl->json || ctl->line_json;
}

/* ------------------------------------------------------------------------ */
/* Containers known to this session */

ctl_container_t *ctl_container_find(ctl_t *ctl, const char *id) {
  for (ctl_container_t *ct = ctl->containers; ct; ct = ct->next)
    if (strcmp(hcsb_container_id(ct->handle), id) == 0) return ct;
  return NULL;
}

ctl_container_t *ctl_container_add(ctl_t *ctl, hcsb_container_t *handle) {
  ctl_container_t *ct = calloc(1, sizeof(*ct));
  if (ct == NULL) {
    fputs("hcsbctl: out of memory\n", stderr);
    exit(CTL_EXIT_FAILED);
  }
  ct->handle = handle;
  ct->next = ctl->containers;
  ctl->containers = ct;
  return ct;
}

ctl_container_t *ctl_container_get(ctl_t *ctl, const char *id) {
  ctl->container = id;
  ctl_container_t *ct = ctl_container_find(ctl, id);
  if (ct) return ct;
  hcsb_container_t *handle;
  int rc = hcsb_conn_open_container(ctl->conn, id, &handle);
  if (rc != 0) {
    ctl_errorf(ctl, "container %s: %s", id, hcsb_strerror(rc));
    return NULL;
  }
  return ctl_container_add(ctl, handle);
}

static void closed_cb(void *data) {
  ctl_t *ctl = data;
  ctl->closing--;
}

/* ------------------------------------------------------------------------ */
/* Signals outside a foreground process */

static void conn_closed_by_signal(void *data) {
  ctl_t *ctl = data;
  ctl->conn = NULL; /* its memory may be gone: nothing may use it now */
  ctl->closing--;
}

static void vm_closed_by_signal(void *data) {
  ctl_t *ctl = data;
  ctl->vm = NULL; /* and its connection with it */
  ctl->conn = NULL;
  ctl->closing--;
}

/* Whatever is under way (connecting, a call, a wait) ends through the
 * connection's close: a spawned guest is stopped, a stdio directory or a
 * listening socket it created removed, every pending operation fails with
 * -ECANCELED, and main exits 128+N. */
static void stop_signal(uv_signal_t *h, int signum) {
  ctl_t *ctl = h->data;
  if (ctl->draining) {
    ctl->draining = 2;
    return;
  }
  if (ctl->fg_signals) return; /* forwarded to the process instead */
  if (ctl->interrupted == 0) ctl->interrupted = signum;
  if (ctl->uvm) {
    /* --uvm: the connection is the VM's; closing the VM (also while it
     * boots) stops QEMU and the backend and closes it. */
    if (ctl->vm != NULL && !ctl->conn_closing) {
      ctl->conn_closing = 1;
      hcsb_uvm_set_exit_cb(ctl->vm, NULL, NULL); /* it is not failing */
      if (ctl->conn != NULL) hcsb_conn_set_lost_cb(ctl->conn, NULL, NULL);
      ctl->closing++;
      hcsb_uvm_close(ctl->vm, vm_closed_by_signal, ctl);
    }
    return;
  }
  if (ctl->conn != NULL && !ctl->conn_closing) {
    ctl->conn_closing = 1;
    hcsb_conn_set_lost_cb(ctl->conn, NULL, NULL);
    ctl->closing++;
    hcsb_conn_close(ctl->conn, conn_closed_by_signal, ctl);
  }
}

static void stop_signals_start(ctl_t *ctl) {
  static const int sigs[4] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
  for (int i = 0; i < 4; i++) {
    if (uv_signal_init(&ctl->loop, &ctl->stop_sig[i]) != 0) continue;
    ctl->stop_sig[i].data = ctl;
    uv_signal_start(&ctl->stop_sig[i], stop_signal, sigs[i]);
    /* Waiting for a signal is no reason to keep running. */
    uv_unref((uv_handle_t *)&ctl->stop_sig[i]);
    ctl->stop_sigs |= 1 << i;
  }
}

static void stop_sig_closed(uv_handle_t *h) {
  ctl_t *ctl = h->data;
  ctl->closing--;
}

static void stop_signals_close(ctl_t *ctl) {
  for (int i = 0; i < 4; i++) {
    if (!(ctl->stop_sigs & (1 << i))) continue;
    ctl->closing++;
    uv_close((uv_handle_t *)&ctl->stop_sig[i], stop_sig_closed);
  }
  ctl->stop_sigs = 0;
}

void ctl_container_forget(ctl_t *ctl, ctl_container_t *ct) {
  for (ctl_container_t **pp = &ctl->containers; *pp; pp = &(*pp)->next) {
    if (*pp == ct) {
      *pp = ct->next;
      break;
    }
  }
  if (ct->init) {
    ctl_process_close_sync(ctl, ct->init);
    if (ct->init_relay) ctl_relay_free(ctl, ct->init_relay);
  }
  ctl->closing++;
  hcsb_container_close(ct->handle, closed_cb, ctl);
  ctl_await_closed(ctl);
  free(ct);
}

/* ------------------------------------------------------------------------ */
/* Connecting */

static void log_line(void *data, hcsb_log_level_t level,
                     const char *activity_id, const char *msg) {
  static const char *const names[] = {"error", "warn", "info", "debug",
                                      "trace"};
  ctl_errorf(data, "%s%s%s%s %s",
             names[level <= HCSB_LOG_TRACE ? level : HCSB_LOG_TRACE],
             activity_id ? " [" : "", activity_id ? activity_id : "",
             activity_id ? "]" : "", msg);
}

static void guest_log(void *data, const hcsb_guest_log_record_t *r) {
  if (r->msg)
    ctl_errorf(data, "guest: %s %s", r->level ? r->level : "", r->msg);
  else
    ctl_errorf(data, "guest: %.*s", (int)r->line_len, r->line);
}

static void conn_opened(void *data, hcsb_conn_t *conn, int status,
                        const hcsb_guest_error_t *gerr) {
  ctl_op_record(data, status, gerr);
}

static void conn_lost(void *data, hcsb_conn_t *conn, int status) {
  ctl_t *ctl = data;
  ctl->lost = status;
  /* The command that was using the connection says so, once. */
  if (ctl->verbose)
    ctl_errorf(ctl, "connection to the guest lost: %s", hcsb_strerror(status));
}

static void bridge_ready(void *data, hcsb_bridge_t *b, int status,
                         const hcsb_guest_error_t *gerr) {
  /* The connection's own open callback reports the outcome, but it sees a
   * spawned guest's end as a lost stream: this says -ECHILD, a moment
   * later. */
  ctl_op_record(data, status, NULL);
}

/* The emulator to spawn when no guest is named: $HCSB_GUEST, else beside
 * this executable (an uninstalled build tree; libtool puts the real binary
 * in .libs/), else the installed one. */
static void builtin_guest(ctl_buf_t *out) {
  const char *env = getenv("HCSB_GUEST");
  if (env && *env) {
    ctl_buf_printf(out, "%s", env);
    return;
  }
  char dir[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
  char *slash = n > 0 ? (dir[n] = '\0', strrchr(dir, '/')) : NULL;
  for (int tries = 0; slash && tries < 2; tries++) {
    *slash = '\0';
    out->len = 0;
    ctl_buf_printf(out, "%s/hcsb-guest", dir);
    if (access(out->data, X_OK) == 0) return;
    /* libtool's real binary lives in .libs/ below the wrapper's directory */
    slash = strrchr(dir, '/');
    if (slash && strcmp(slash, "/.libs") != 0) break;
  }
  out->len = 0;
  ctl_buf_printf(out, "%s/hcsb-guest", HCSB_LIBEXECDIR);
}

/* Appends `s` to `b` quoted for /bin/sh. */
static void shell_quote(ctl_buf_t *b, const char *s) {
  ctl_buf_append(b, "'", 1);
  for (; *s; s++) {
    if (*s == '\'')
      ctl_buf_append(b, "'\\''", 4);
    else
      ctl_buf_append(b, s, 1);
  }
  ctl_buf_append(b, "'", 1);
}

/* How a spawned guest that went away before negotiating ended. */
static const char *guest_exit_text(ctl_t *ctl, char *buf, size_t len) {
  int st = 0, sig = 0;
  hcsb_bridge_t *b = ctl->conn ? hcsb_conn_bridge(ctl->conn) : NULL;
  if (b == NULL || hcsb_bridge_guest_exit(b, &st, &sig) != 1)
    return hcsb_strerror(-ECHILD);
  if (sig != 0)
    snprintf(buf, len,
             "the guest program was killed by signal %d (SIG%s) before "
             "negotiating",
             sig, ctl_signal_name(sig) ? ctl_signal_name(sig) : "?");
  else
    snprintf(buf, len,
             "the guest program exited with status %d before negotiating%s", st,
             st == 127   ? " (127: the shell found no such command)"
             : st == 126 ? " (126: the command cannot be executed)"
                         : "");
  return buf;
}

static int connect_guest(ctl_t *ctl) {
  ctl_buf_t address = {0};
  if (ctl->uvm) {
    int st = ctl_uvm_connect(ctl);
    if (st == 0) hcsb_conn_set_lost_cb(ctl->conn, conn_lost, ctl);
    return st;
  }
  if (ctl->guest) {
    ctl_buf_printf(&address, "%s", ctl->guest);
  } else if (ctl->spawn) {
    ctl_buf_printf(&address, "spawn:%s", ctl->spawn);
  } else {
    ctl_buf_t path = {0};
    builtin_guest(&path);
    /* exec: the guest itself leads the spawned process group, no shell
     * stays between it and us. */
    ctl_buf_printf(&address, "spawn:exec ");
    shell_quote(&address, path.data);
    ctl_buf_free(&path);
    /* As it is, like the real GCS: refusing to signal or resize UVM
     * processes, so nothing works here that fails against a real guest. */
  }

  hcsb_addr_t addr;
  int rc = hcsb_addr_parse(address.data, &addr);
  if (rc == 0 && ctl->stdio_dir) {
    if (strlen(ctl->stdio_dir) >= sizeof(addr.stdio_dir))
      rc = -ENAMETOOLONG;
    else
      snprintf(addr.stdio_dir, sizeof(addr.stdio_dir), "%s", ctl->stdio_dir);
  }
  if (rc != 0) {
    ctl_errorf(ctl, "invalid guest address '%s': %s\nTry 'hcsbctl --help'.",
               address.data, hcsb_strerror(rc));
    ctl_buf_free(&address);
    return CTL_EXIT_USAGE;
  }

  hcsb_conn_options_t o;
  hcsb_conn_options_init(&o);
  if (ctl->timeout_ms) {
    o.connect_timeout_ms = o.call_timeout_ms = o.shutdown_timeout_ms =
        ctl->timeout_ms;
    addr.timeout_ms = ctl->timeout_ms;
  }
  if (ctl->verbose) {
    o.log_cb = log_line;
    o.log_data = ctl;
    o.log_level = ctl->verbose > 1 ? HCSB_LOG_TRACE_SECRETS : HCSB_LOG_TRACE;
  }
  /* A utility VM's init blocks until it got entropy, and its GCS logs to a
   * port of its own: offer both on the VM transports. */
  if (addr.listen && (addr.transport == HCSB_TRANSPORT_VSOCK ||
                      addr.transport == HCSB_TRANSPORT_HVSOCK_HYBRID)) {
    o.entropy = 1;
    if (ctl->verbose) {
      o.guest_log_cb = guest_log;
      o.guest_log_data = ctl;
    }
  }

  ctl_op_t op;
  ctl_op_init(&op);
  ctl_op_init(&ctl->bridge_ready);
  char formatted[HCSB_ADDR_COMMAND_MAX + 512];
  if (addr.transport == HCSB_TRANSPORT_SPAWN && ctl->stdio_dir) {
    /* spawn: takes no ?options, so the stdio directory travels in the
     * parsed address: connect the bridge ourselves and hand it over. */
    hcsb_bridge_t *b;
    rc = hcsb_bridge_new(&ctl->loop, &b);
    if (rc == 0) {
      if (ctl->verbose) hcsb_bridge_set_log(b, log_line, ctl, o.log_level);
      rc = hcsb_bridge_connect_addr(b, &addr, bridge_ready, &ctl->bridge_ready);
      if (rc == 0)
        rc = hcsb_conn_open_bridge(b, &o, conn_opened, &op, &ctl->conn);
      else
        hcsb_bridge_close(b, NULL, NULL);
    }
  } else {
    if (ctl->stdio_dir || ctl->timeout_ms) {
      hcsb_addr_format(&addr, formatted, sizeof(formatted));
      o.address = formatted;
    } else {
      o.address = address.data;
    }
    rc = hcsb_conn_open(&ctl->loop, &o, conn_opened, &op, &ctl->conn);
  }

  int st;
  if (rc != 0) {
    ctl_errorf(ctl, "cannot connect to the guest (%s): %s", address.data,
               hcsb_strerror(rc));
    st = rc == -EINVAL ? CTL_EXIT_USAGE : CTL_EXIT_CONN;
    ctl->conn = NULL;
  } else {
    ctl_await(ctl, &op.done);
    if (op.status != 0 && addr.transport == HCSB_TRANSPORT_SPAWN &&
        ctl->stdio_dir && ctl->conn) {
      ctl_await(ctl, &ctl->bridge_ready.done);
      if (ctl->bridge_ready.status == -ECHILD) op.status = -ECHILD;
    }
    st = CTL_EXIT_OK;
    if (op.status != 0 && ctl->interrupted) {
      st = 128 + ctl->interrupted; /* main says why */
    } else if (op.status != 0) {
      const char *why = op.gerr ? op.gerr : hcsb_strerror(op.status);
      char exited[160];
      if (op.status == -ENOMSG)
        why = "the peer sent requests, not responses: is it a GCS?";
      else if (op.status == -ECHILD)
        why = guest_exit_text(ctl, exited, sizeof exited);
      ctl_errorf(ctl, "cannot connect to the guest (%s): %s", address.data,
                 why);
      st = op.status == -ETIMEDOUT ? CTL_EXIT_TIMEOUT : CTL_EXIT_CONN;
    } else {
      hcsb_conn_set_lost_cb(ctl->conn, conn_lost, ctl);
    }
    free(op.gerr);
  }
  ctl_buf_free(&address);
  return st;
}

static int conn_status; /* the outcome of the first attempt, kept */
static int conn_tried;

int ctl_need_conn(ctl_t *ctl) {
  if (!conn_tried) {
    conn_tried = 1;
    conn_status = connect_guest(ctl);
  }
  if (conn_status == 0 && ctl->interrupted) return 128 + ctl->interrupted;
  if (conn_status == 0 && ctl->conn == NULL) return CTL_EXIT_CONN;
  return conn_status;
}

static void disconnect(ctl_t *ctl) {
  while (ctl->containers) ctl_container_forget(ctl, ctl->containers);
  if (ctl->uvm) {
    /* The connection is the VM's: closing the VM closes it. */
    if (ctl->conn) hcsb_conn_set_lost_cb(ctl->conn, NULL, NULL);
    ctl_uvm_close(ctl);
    return;
  }
  if (ctl->conn) {
    hcsb_conn_set_lost_cb(ctl->conn, NULL, NULL);
    ctl->closing++;
    hcsb_conn_close(ctl->conn, closed_cb, ctl);
    ctl->conn = NULL;
    ctl_await_closed(ctl);
  }
}

/* ------------------------------------------------------------------------ */
/* Dispatch and script mode */

static int cmd_script(ctl_t *ctl, int argc, char **argv);

/* What one of hcsbctl's own exit statuses means (see --help). */
static const char *exit_meaning(int st) {
  switch (st) {
    case CTL_EXIT_FAILED:
      return "the guest refused or failed the operation";
    case CTL_EXIT_USAGE:
      return "usage error";
    case CTL_EXIT_CONN:
      return "connection or transport failure";
    case CTL_EXIT_TIMEOUT:
      return "timeout";
    default:
      return st > 128 ? "stopped by a signal" : "failure";
  }
}

static const struct {
  const char *name;
  ctl_cmd_fn fn;
} commands[] = {
    {"run", ctl_cmd_run},
    {"exec", ctl_cmd_exec},
    {"create", ctl_cmd_create},
    {"start", ctl_cmd_start},
    {"kill", ctl_cmd_kill},
    {"wait", ctl_cmd_wait},
    {"ps", ctl_cmd_ps},
    {"stats", ctl_cmd_stats},
    {"shutdown", ctl_cmd_shutdown},
    {"delete", ctl_cmd_delete},
    {"modify", ctl_cmd_modify},
    {"stacks", ctl_cmd_stacks},
    {"caps", ctl_cmd_caps},
    {"script", cmd_script},
};

static int dispatch(ctl_t *ctl, int argc, char **argv) {
  ctl->line_json = 0;
  ctl->container = NULL;
  ctl->process_exit = 0;
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    if (strcmp(argv[0], commands[i].name) == 0)
      return commands[i].fn(ctl, argc, argv);
  return ctl_usage_error(ctl, NULL, "unknown command '%s'", argv[0]);
}

/* getline() on a non-blocking descriptor (a script on stdin is made one),
 * waiting for input and for the loop at once: the loop runs what is due
 * meanwhile (a signal, a detached init's output), and a signal that
 * stopped us ends the script as end of input does. */
static ssize_t read_line(ctl_t *ctl, FILE *f, char **line, size_t *cap) {
  for (;;) {
    if (ctl->interrupted) return -1;
    errno = 0;
    ssize_t n = getline(line, cap, f);
    if (n >= 0 || errno != EAGAIN) return n;
    clearerr(f);
    struct pollfd p[2] = {{.fd = fileno(f), .events = POLLIN},
                          {.fd = uv_backend_fd(&ctl->loop), .events = POLLIN}};
    if (poll(p, 2, -1) < 0 || p[1].revents) uv_run(&ctl->loop, UV_RUN_NOWAIT);
  }
}

static int cmd_script(ctl_t *ctl, int argc, char **argv) {
  static const ctl_opt_t opts[] = {{"keep-going", 'k', 0, 1}, {NULL, 0, 0, 0}};
  ctl_args_t a;
  const char *arg;
  int id, keep_going = 0, st = -1;
  if (ctl->script) return ctl_usage_error(ctl, "script", "scripts do not nest");
  if (ctl_args_init(&a, "script", argc, argv, 0) != 0) return CTL_EXIT_FAILED;
  while (st < 0 && (id = ctl_getopt(ctl, &a, opts, &arg)) != 0) {
    if (id == 1)
      keep_going = 1;
    else
      st = id == -1 ? (ctl_cmd_help(ctl, "script"), CTL_EXIT_OK)
                    : CTL_EXIT_USAGE;
  }
  if (st < 0 && a.noperands > 1)
    st = ctl_usage_error(ctl, "script", "unexpected argument '%s'",
                         a.operands[1]);
  const char *path = a.noperands ? a.operands[0] : "-";
  FILE *f = NULL;
  if (st < 0) {
    f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
    if (f == NULL) {
      ctl_errorf(ctl, "script: cannot open %s: %s", path, strerror(errno));
      st = CTL_EXIT_USAGE;
    }
  }
  if (st >= 0) {
    ctl_args_free(&a);
    return st;
  }

  ctl->script = 1;
  ctl->stdin_is_script = f == stdin;
  /* A signal must be able to end the wait for the next line (main restores
   * stdin's flags). */
  if (f == stdin && ctl->fd_flags[0] >= 0)
    fcntl(STDIN_FILENO, F_SETFL, ctl->fd_flags[0] | O_NONBLOCK);
  char *line = NULL, *copy = NULL;
  size_t cap = 0;
  int lineno = 0, first_failure = 0;
  while (read_line(ctl, f, &line, &cap) >= 0) {
    lineno++;
    free(copy);
    copy = strdup(line);
    if (copy) copy[strcspn(copy, "\r\n")] = '\0';
    char **words;
    const char *err = NULL;
    int n = ctl_split_words(line, &words, &err);
    if (n < 0) {
      ctl_errorf(ctl, "script: line %d: %s", lineno, err);
      st = CTL_EXIT_USAGE;
    } else {
      st = n == 0 ? CTL_EXIT_OK : dispatch(ctl, n, words);
      free(words);
    }
    if (ctl->interrupted) {
      first_failure = 128 + ctl->interrupted;
      break;
    }
    if (st != 0) {
      /* A process's exit code reads like one of hcsbctl's statuses (an
       * exec's "exit 3" like "3 = connection failure"): the status stays
       * the line's, so a script passes its process's code on, and the
       * message says which kind it is. */
      if (ctl->process_exit) {
        ctl_errorf(ctl,
                   "script: line %d: the process exited with status %d: %s",
                   lineno, st, copy ? copy : "");
      } else {
        ctl_errorf(ctl, "script: line %d failed with exit status %d (%s): %s",
                   lineno, st, exit_meaning(st), copy ? copy : "");
      }
      if (!first_failure) first_failure = st;
      if (!keep_going) break;
    }
  }
  free(line);
  free(copy);
  if (f != stdin) fclose(f);
  ctl_args_free(&a);
  ctl->script = 0;
  return first_failure;
}

/* ------------------------------------------------------------------------ */
/* main */

enum {
  G_GUEST = 1,
  G_SPAWN,
  G_STDIO_DIR,
  G_VERBOSE,
  G_JSON,
  G_TIMEOUT,
  G_VERSION,
  G_UVM,
  G_UVM_IMAGE,
  G_UVM_GUEST,
  G_UVM_FILE,
  G_UVM_ACCEL,
  G_UVM_MEMORY,
  G_UVM_TIME_LIMIT
};

static const ctl_opt_t global_opts[] = {
    {"guest", 0, 1, G_GUEST},
    {"spawn", 0, 1, G_SPAWN},
    {"stdio-dir", 0, 1, G_STDIO_DIR},
    {"verbose", 'v', 0, G_VERBOSE},
    {"json", 0, 0, G_JSON},
    {"timeout", 0, 1, G_TIMEOUT},
    {"version", 0, 0, G_VERSION},
    {"uvm", 0, 0, G_UVM},
    {"uvm-image", 0, 1, G_UVM_IMAGE},
    {"uvm-guest", 0, 1, G_UVM_GUEST},
    {"uvm-file", 0, 1, G_UVM_FILE},
    {"uvm-accel", 0, 1, G_UVM_ACCEL},
    {"uvm-memory", 0, 1, G_UVM_MEMORY},
    {"uvm-time-limit", 0, 1, G_UVM_TIME_LIMIT},
    {NULL, 0, 0, 0},
};

/* Parses the global options; returns -1 to go on, or an exit status. */
static int parse_globals(ctl_t *ctl, ctl_args_t *a) {
  const char *arg;
  int id;
  while ((id = ctl_getopt(ctl, a, global_opts, &arg)) != 0) {
    switch (id) {
      case -1:
        ctl_main_help(ctl);
        return CTL_EXIT_OK;
      case -2:
        return CTL_EXIT_USAGE;
      case G_GUEST:
        ctl->guest = arg;
        break;
      case G_SPAWN:
        ctl->spawn = arg;
        break;
      case G_STDIO_DIR:
        ctl->stdio_dir = arg;
        break;
      case G_VERBOSE:
        ctl->verbose++;
        break;
      case G_JSON:
        ctl->json = 1;
        break;
      case G_TIMEOUT:
        if (ctl_parse_u32(arg, &ctl->timeout_ms) != 0 || ctl->timeout_ms == 0)
          return ctl_usage_error(ctl, NULL,
                                 "--timeout needs a positive number of ms");
        break;
      case G_UVM:
        ctl->uvm = 1;
        break;
      case G_UVM_IMAGE:
        ctl->uvm_image = arg;
        break;
      case G_UVM_GUEST:
        ctl->uvm_guest = arg;
        break;
      case G_UVM_FILE:
        /* a->argc bounds how many there can be */
        if (ctl->uvm_files == NULL &&
            (ctl->uvm_files = calloc((size_t)a->argc, sizeof(char *))) == NULL)
          return CTL_EXIT_FAILED;
        ctl->uvm_files[ctl->nuvm_files++] = arg;
        break;
      case G_UVM_ACCEL:
        if (strcmp(arg, "tcg") != 0 && strcmp(arg, "kvm") != 0)
          return ctl_usage_error(ctl, NULL, "--uvm-accel wants tcg or kvm");
        ctl->uvm_accel = arg;
        break;
      case G_UVM_MEMORY:
        if (ctl_parse_u32(arg, &ctl->uvm_memory_mb) != 0 ||
            ctl->uvm_memory_mb < 64)
          return ctl_usage_error(ctl, NULL,
                                 "--uvm-memory needs a number of MB (>= 64)");
        break;
      case G_UVM_TIME_LIMIT:
        if (ctl_parse_u32(arg, &ctl->uvm_time_limit_s) != 0)
          return ctl_usage_error(ctl, NULL,
                                 "--uvm-time-limit needs a number of seconds");
        break;
      case G_VERSION:
        ctl_printf(ctl, "hcsbctl %s (libhcsbridge %s)\n", HCSB_VERSION_STRING,
                   hcsb_version_string());
        return CTL_EXIT_OK;
    }
  }
  if (ctl->guest && ctl->spawn)
    return ctl_usage_error(ctl, NULL, "--guest and --spawn exclude each other");
  if (ctl->uvm && (ctl->guest || ctl->spawn))
    return ctl_usage_error(ctl, NULL,
                           "--uvm starts its own guest: no --guest or --spawn");
  if (!ctl->uvm &&
      (ctl->uvm_image || ctl->uvm_guest || ctl->nuvm_files || ctl->uvm_accel ||
       ctl->uvm_memory_mb || ctl->uvm_time_limit_s))
    return ctl_usage_error(ctl, NULL, "the --uvm-* options need --uvm");
  if (a->noperands == 0) return ctl_usage_error(ctl, NULL, "no command given");
  return -1;
}

int main(int argc, char **argv) {
  static ctl_t ctl; /* static: callbacks may still point at it during exit */
  int st;

  /* A reader of our output that goes away must not kill us mid-cleanup. */
  signal(SIGPIPE, SIG_IGN);
  atexit(ctl_tty_restore);
  for (int fd = 0; fd < 3; fd++) ctl.fd_flags[fd] = fcntl(fd, F_GETFL);
  if (uv_loop_init(&ctl.loop) != 0) {
    fputs("hcsbctl: cannot initialise the event loop\n", stderr);
    return CTL_EXIT_FAILED;
  }
  if (ctl_sink_open(&ctl, &ctl.out, STDOUT_FILENO) != 0 ||
      ctl_sink_open(&ctl, &ctl.err, STDERR_FILENO) != 0) {
    fputs("hcsbctl: cannot set up stdout/stderr\n", stderr);
    return CTL_EXIT_FAILED;
  }

  stop_signals_start(&ctl);

  ctl_args_t a;
  if (ctl_args_init(&a, NULL, argc, argv, 1) != 0) return CTL_EXIT_FAILED;
  st = parse_globals(&ctl, &a);
  if (st < 0) st = dispatch(&ctl, a.noperands, a.operands);
  ctl_args_free(&a);

  disconnect(&ctl);
  free(ctl.uvm_files);
  if (ctl.interrupted) {
    ctl_errorf(&ctl, "stopped by SIG%s", ctl_signal_name(ctl.interrupted));
    st = 128 + ctl.interrupted;
  }
  /* Everything written must reach its reader before the sinks close (a
   * signal stops the wait for a reader that does not read). */
  ctl.draining = 1;
  while ((ctl.out.queued || ctl.err.queued) && ctl.draining == 1 &&
         uv_run(&ctl.loop, UV_RUN_ONCE)) {
  }
  stop_signals_close(&ctl);
  ctl_sink_close(&ctl.out);
  ctl_sink_close(&ctl.err);
  ctl_await_closed(&ctl);
  uv_run(&ctl.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&ctl.loop) != 0 && ctl.verbose)
    fputs("hcsbctl: event loop still busy at exit\n", stderr);
  ctl_tty_restore();
  for (int fd = 0; fd < 3; fd++)
    if (ctl.fd_flags[fd] >= 0) fcntl(fd, F_SETFL, ctl.fd_flags[fd]);
  return st;
}
