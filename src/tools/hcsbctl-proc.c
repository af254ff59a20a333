/* hcsbctl: processes — run, exec, start — and their stdio relays.
 *
 * A foreground process relays our stdin (with -i) to it and its output to
 * our stdout/stderr, forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT to it, forwards
 * window-size changes with -t, and ends with its exit code.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hcsbctl.h"

/* hcsshim's CopyAfterExitTimeout: how long output may still arrive after the
 * exit was reported before the relays are closed. */
#define CTL_DRAIN_AFTER_EXIT_MS 1000

/* The guest's "killed by a signal" exit code for UVM processes. */
#define CTL_UVM_SIGNAL_EXIT 4294967295u

/* ------------------------------------------------------------------------ */
/* Output relays */

static void relay_end(ctl_relay_t *r, int fd) {
  if (!r->done[fd]) {
    r->done[fd] = 1;
    r->ended++;
  }
}

static void relay_read(void *data, hcsb_process_t *p, int fd, const char *buf,
                       ssize_t nread) {
  ctl_relay_t *r = data;
  ctl_t *ctl = r->ctl;
  ctl_sink_t *sink = fd == 2 ? &ctl->err : &ctl->out;
  if (nread < 0) {
    relay_end(r, fd);
    if (nread != UV_EOF && ctl->verbose)
      ctl_errorf(ctl, "process %u: %s relay ended: %s", hcsb_process_pid(p),
                 fd == 2 ? "stderr" : "stdout", uv_strerror((int)nread));
    return;
  }
  ctl_sink_write(sink, buf, (size_t)nread);
  if (sink->broken) {
    /* Nobody reads our output any more: let the process find out the way
     * it would locally, by its own writes failing. */
    relay_end(r, fd);
    if (fd == 2)
      hcsb_process_close_stderr(p);
    else
      hcsb_process_close_stdout(p);
    return;
  }
  /* Back-pressure: a slow reader of our output slows the guest down. */
  if (!r->paused &&
      (ctl->out.queued > CTL_SINK_HIGH || ctl->err.queued > CTL_SINK_HIGH)) {
    if (hcsb_process_read_stop(p) == 0) r->paused = 1;
  }
}

ctl_relay_t *ctl_relay_start(ctl_t *ctl, hcsb_process_t *p, int outputs) {
  ctl_relay_t *r = calloc(1, sizeof(*r));
  if (r == NULL) return NULL;
  r->ctl = ctl;
  r->proc = p;
  r->outputs = outputs;
  int rc = hcsb_process_read_start(p, relay_read, r);
  if (rc != 0) {
    ctl_errorf(ctl, "cannot read the process's output: %s", hcsb_strerror(rc));
    r->ended = outputs;
  }
  r->next = ctl->relays;
  ctl->relays = r;
  return r;
}

void ctl_relays_resume(ctl_t *ctl) {
  if (ctl->out.queued >= CTL_SINK_LOW || ctl->err.queued >= CTL_SINK_LOW)
    return;
  for (ctl_relay_t *r = ctl->relays; r; r = r->next) {
    if (r->paused && hcsb_process_read_start(r->proc, relay_read, r) == 0)
      r->paused = 0;
  }
}

void ctl_relay_free(ctl_t *ctl, ctl_relay_t *r) {
  for (ctl_relay_t **pp = &ctl->relays; *pp; pp = &(*pp)->next) {
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  }
  free(r);
}

static void process_closed(void *data) {
  *(int *)data = 1;
}

void ctl_process_close_sync(ctl_t *ctl, hcsb_process_t *p) {
  int done = 0;
  hcsb_process_close(p, process_closed, &done);
  ctl_await(ctl, &done);
}

int ctl_exit_from_code(ctl_t *ctl, const char *what, uint32_t code,
                       int forwarded) {
  if (code <= 255) return (int)code;
  if (code == CTL_UVM_SIGNAL_EXIT) {
    /* The Linux GCS does not say which signal; if we sent one, it is the
     * likely cause, and a shell would report 128+N for it silently. */
    if (forwarded > 0) return 128 + forwarded;
    ctl_errorf(
        ctl,
        "%s: the process was killed by a signal (the guest does not say which)",
        what);
  } else {
    ctl_errorf(ctl, "%s: the process exited with %u", what, code);
  }
  return 255;
}

/* ------------------------------------------------------------------------ */
/* Foreground processes */

static const int forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define NFORWARDED (sizeof(forwarded_signals) / sizeof(forwarded_signals[0]))

typedef struct fg_s {
  ctl_t *ctl;
  hcsb_process_t *proc;
  const char *what;
  ctl_op_t create;
  ctl_relay_t *relay;
  int stop; /* await condition: exited, or given up */
  int exited;
  int wait_status;
  uint32_t exit_code;
  int abandon;        /* a signal we could not forward: exit with 128+it */
  int forwarding;     /* the signal whose SignalProcess is in flight */
  int forwarded;      /* the last signal the guest delivered */
  int resize_refused; /* said once; window changes are no longer sent */
  int closing;        /* our own close cancels the wait: not an outcome */
  /* stdin */
  ctl_source_t src;
  size_t in_flight;
  int stdin_broken;
  /* handles */
  uv_signal_t sig[NFORWARDED];
  uv_signal_t winch;
  uv_timer_t drain;
  int handles; /* 1 once the handles above are initialised */
  int drained;
} fg_t;

typedef struct stdin_write_s {
  fg_t *fg;
  size_t len;
} stdin_write_t;

static void process_created(void *data, hcsb_process_t *p, int status,
                            const hcsb_guest_error_t *gerr) {
  ctl_op_record(data, status, gerr);
}

static void fg_exited(void *data, hcsb_process_t *p, int status,
                      uint32_t code) {
  fg_t *fg = data;
  if (fg->closing) return;
  fg->exited = 1;
  fg->wait_status = status;
  fg->exit_code = code;
  fg->stop = 1;
}

static void fg_stdin_written(void *data, int status,
                             const hcsb_guest_error_t *gerr) {
  stdin_write_t *w = data;
  fg_t *fg = w->fg;
  fg->in_flight -= w->len;
  free(w);
  if (status != 0) {
    /* The process closed its stdin or exited: stop reading ours. */
    fg->stdin_broken = 1;
    ctl_source_stop(&fg->src);
  } else if (fg->in_flight < CTL_SINK_LOW && !fg->stdin_broken) {
    ctl_source_start(&fg->src);
  }
}

static void fg_stdin(void *data, const char *buf, ssize_t n) {
  fg_t *fg = data;
  if (n < 0) {
    if (n != UV_EOF)
      ctl_errorf(fg->ctl, "%s: reading stdin: %s", fg->what,
                 uv_strerror((int)n));
    hcsb_process_close_stdin(fg->proc); /* flushes what is queued first */
    return;
  }
  if (fg->stdin_broken) return;
  stdin_write_t *w = malloc(sizeof(*w));
  if (w == NULL) return;
  w->fg = fg;
  w->len = (size_t)n;
  if (hcsb_process_write(fg->proc, buf, (size_t)n, fg_stdin_written, w) != 0) {
    free(w);
    fg->stdin_broken = 1;
    ctl_source_stop(&fg->src);
    return;
  }
  fg->in_flight += (size_t)n;
  if (fg->in_flight > CTL_SINK_HIGH) ctl_source_stop(&fg->src);
}

static void fg_signalled(void *data, int status, const hcsb_guest_error_t *gerr,
                         int delivered) {
  uv_signal_t *h = data;
  fg_t *fg = h->data;
  fg->forwarding = 0;
  if (status == 0) {
    if (delivered) fg->forwarded = h->signum;
    return; /* not delivered = already gone: its exit follows */
  }
  ctl_op_t op;
  ctl_op_init(&op);
  ctl_op_record(&op, status, gerr);
  ctl_errorf(fg->ctl, "%s: cannot forward SIG%s to the process: %s", fg->what,
             ctl_signal_name(h->signum),
             op.gerr ? op.gerr : hcsb_strerror(status));
  free(op.gerr);
  fg->abandon = h->signum;
  fg->stop = 1;
}

static void fg_signal(uv_signal_t *h, int signum) {
  fg_t *fg = h->data;
  if (fg->stop) return;
  if (fg->forwarding) {
    /* Asked twice while the guest has not even answered: give up. */
    ctl_errorf(fg->ctl, "%s: SIG%s again before the guest answered: giving up",
               fg->what, ctl_signal_name(signum));
    fg->abandon = signum;
    fg->stop = 1;
    return;
  }
  hcsb_call_opts_t opts = ctl_call_opts(fg->ctl);
  int rc = hcsb_process_signal(fg->proc, &opts, signum, fg_signalled, h);
  if (rc == 0) {
    fg->forwarding = signum;
  } else {
    ctl_errorf(fg->ctl, "%s: cannot forward SIG%s to the process: %s", fg->what,
               ctl_signal_name(signum), hcsb_strerror(rc));
    fg->abandon = signum;
    fg->stop = 1;
  }
}

/* A guest that refuses a resize is said once, without -v, as a signal it
 * cannot forward is; the terminal keeps its size, so later window changes
 * are not sent. */
static void fg_resized(void *data, int status, const hcsb_guest_error_t *gerr) {
  fg_t *fg = data;
  ctl_op_t op;
  if (status == 0 || fg->resize_refused || fg->closing || status == -ECANCELED)
    return;
  fg->resize_refused = 1;
  ctl_op_init(&op);
  ctl_op_record(&op, status, gerr);
  ctl_errorf(fg->ctl,
             "%s: the guest refused to resize the terminal (%s); window "
             "changes are no longer sent",
             fg->what, op.gerr ? op.gerr : hcsb_strerror(status));
  free(op.gerr);
}

static void fg_winch(uv_signal_t *h, int signum) {
  fg_t *fg = h->data;
  uint16_t w, ht;
  hcsb_call_opts_t opts = ctl_call_opts(fg->ctl);
  if (fg->resize_refused) return;
  if (ctl_tty_size(&w, &ht) == 0)
    hcsb_process_resize_console(fg->proc, &opts, w, ht, fg_resized, fg);
}

static void fg_drain_timeout(uv_timer_t *t) {
  fg_t *fg = t->data;
  fg->drained = 1;
}

static void fg_handle_closed(uv_handle_t *h) {
  fg_t *fg = h->data;
  fg->ctl->closing--;
}

static void fg_handles_start(fg_t *fg, int tty) {
  uv_loop_t *loop = &fg->ctl->loop;
  fg->ctl->fg_signals = 1; /* ours to forward, not to stop hcsbctl */
  for (size_t i = 0; i < NFORWARDED; i++) {
    uv_signal_init(loop, &fg->sig[i]);
    fg->sig[i].data = fg;
    uv_signal_start(&fg->sig[i], fg_signal, forwarded_signals[i]);
  }
  uv_signal_init(loop, &fg->winch);
  fg->winch.data = fg;
  if (tty) uv_signal_start(&fg->winch, fg_winch, SIGWINCH);
  uv_timer_init(loop, &fg->drain);
  fg->drain.data = fg;
  fg->handles = 1;
}

static void fg_handles_close(fg_t *fg) {
  if (!fg->handles) return;
  fg->handles = 0;
  fg->ctl->fg_signals = 0;
  for (size_t i = 0; i < NFORWARDED; i++) {
    fg->ctl->closing++;
    uv_close((uv_handle_t *)&fg->sig[i], fg_handle_closed);
  }
  fg->ctl->closing++;
  uv_close((uv_handle_t *)&fg->winch, fg_handle_closed);
  fg->ctl->closing++;
  uv_close((uv_handle_t *)&fg->drain, fg_handle_closed);
}

static int create_sync_error(ctl_t *ctl, const char *what, int rc) {
  /* The library refuses up front what the guest cannot honour. */
  if (rc == -EINVAL || rc == -ENOTSUP) {
    ctl_errorf(ctl, "%s: %s", what,
               rc == -ENOTSUP
                   ? "an option is not supported for this kind of process "
                     "(--user: container processes only)"
                   : "invalid process configuration");
    return CTL_EXIT_USAGE;
  }
  return ctl_report(ctl, what, rc, NULL);
}

int ctl_process_foreground(ctl_t *ctl, hcsb_container_t *c,
                           hcsb_process_config_t *cfg, const char *what) {
  fg_t fg;
  memset(&fg, 0, sizeof(fg));
  fg.ctl = ctl;
  fg.what = what;
  ctl_op_init(&fg.create);

  hcsb_call_opts_t opts = ctl_call_opts(ctl);
  int rc = c ? hcsb_container_create_process(c, &opts, cfg, process_created,
                                             &fg.create, &fg.proc)
             : hcsb_conn_create_process(ctl->conn, &opts, cfg, process_created,
                                        &fg.create, &fg.proc);
  if (rc != 0) return create_sync_error(ctl, what, rc);
  int st = ctl_op_finish(ctl, &fg.create, what);
  if (st != 0) {
    ctl_process_close_sync(ctl, fg.proc);
    return st;
  }

  /* The pty's size went with the request (ConsoleSize, consoleSize).  A
   * Linux GCS ignores ConsoleSize for a UVM process and cannot resize one
   * either: one ResizeConsole with the same size, before any input is
   * relayed, finds out and says so now rather than at the first window
   * change (a guest that can resize has the size already: no harm). */
  if (c == NULL && cfg->emulate_console && ctl->conn != NULL &&
      (cfg->console_width != 0 || cfg->console_height != 0) &&
      strcmp(hcsb_conn_os(ctl->conn), "linux") == 0) {
    ctl_op_t op;
    ctl_op_init(&op);
    if (hcsb_process_resize_console(fg.proc, &opts, cfg->console_width,
                                    cfg->console_height, ctl_op_done_cb,
                                    &op) == 0) {
      ctl_await(ctl, &op.done);
      if (op.status != 0 && !ctl->interrupted) {
        fg.resize_refused = 1;
        ctl_errorf(ctl,
                   "%s: the guest cannot size the process's terminal (%s): a "
                   "Linux GCS leaves a UVM process's terminal at 0x0",
                   what, op.gerr ? op.gerr : hcsb_strerror(op.status));
      }
      free(op.gerr);
    }
  }

  int outputs = cfg->create_stdout_pipe + cfg->create_stderr_pipe;
  fg.relay = ctl_relay_start(ctl, fg.proc, outputs);
  fg_handles_start(&fg, cfg->emulate_console);
  if (cfg->create_stdin_pipe) {
    rc = ctl_source_open(ctl, &fg.src, cfg->emulate_console, fg_stdin, &fg);
    if (rc == 0) {
      ctl_source_start(&fg.src);
    } else {
      ctl_errorf(ctl, "%s: cannot read stdin: %s", what, uv_strerror(rc));
      hcsb_process_close_stdin(fg.proc);
    }
  }

  rc = hcsb_process_wait(fg.proc, ctl->timeout_ms, fg_exited, &fg);
  if (rc != 0) fg_exited(&fg, fg.proc, rc, 0);
  ctl_await(ctl, &fg.stop);

  /* Output may trail the exit report (UVM processes): give it a moment. */
  if (fg.exited && fg.wait_status == 0 && fg.relay &&
      fg.relay->ended < fg.relay->outputs) {
    uv_timer_start(&fg.drain, fg_drain_timeout, CTL_DRAIN_AFTER_EXIT_MS, 0);
    while (!fg.drained && fg.relay->ended < fg.relay->outputs)
      if (uv_run(&ctl->loop, UV_RUN_ONCE) == 0) break;
    uv_timer_stop(&fg.drain);
  }

  ctl_source_close(&fg.src);
  fg_handles_close(&fg);
  fg.closing = 1;
  ctl_process_close_sync(ctl, fg.proc);
  if (fg.relay) ctl_relay_free(ctl, fg.relay);
  ctl_await_closed(ctl);

  if (!fg.exited) return 128 + fg.abandon; /* as --help promises */
  switch (fg.wait_status) {
    case 0:
      ctl->process_exit = 1;
      return ctl_exit_from_code(ctl, what, fg.exit_code, fg.forwarded);
    case -ETIMEDOUT:
      ctl_errorf(ctl, "%s: timed out waiting for the process to exit", what);
      return CTL_EXIT_TIMEOUT;
    case HCSB_EGUEST:
      ctl_errorf(ctl, "%s: the guest could not report the exit code", what);
      return CTL_EXIT_FAILED;
    default:
      return ctl_report(ctl, what, fg.wait_status, NULL);
  }
}

/* ------------------------------------------------------------------------ */
/* run / exec */

enum { OPT_TTY = 1, OPT_STDIN, OPT_ENV, OPT_WORKDIR, OPT_USER };

static const ctl_opt_t process_opts[] = {
    {"tty", 't', 0, OPT_TTY},   {"interactive", 'i', 0, OPT_STDIN},
    {"env", 'e', 1, OPT_ENV},   {"workdir", 'w', 1, OPT_WORKDIR},
    {"user", 'u', 1, OPT_USER}, {NULL, 0, 0, 0},
};

#define CTL_DEFAULT_PATH \
  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

typedef struct process_args_s {
  ctl_args_t args;
  hcsb_process_config_t cfg;
  const char **env;
  size_t nenv;
  char **owned; /* "K=V" strings built from our environment */
  size_t nowned;
} process_args_t;

static int env_has(const process_args_t *pa, const char *key) {
  size_t n = strlen(key);
  for (size_t i = 0; i < pa->nenv; i++)
    if (strncmp(pa->env[i], key, n) == 0 && pa->env[i][n] == '=') return 1;
  return 0;
}

static void process_args_free(process_args_t *pa) {
  for (size_t i = 0; i < pa->nowned; i++) free(pa->owned[i]);
  free(pa->owned);
  free(pa->env);
  ctl_args_free(&pa->args);
}

/* Parses [-t] [-i] [-e K=V]... [-w DIR] [--user U] [ID] [--] CMD ARGS...
 * (`nids` leading operands before the command).  Returns -1 to go on, or an
 * exit status. */
static int process_args_parse(ctl_t *ctl, const char *cmd, int argc,
                              char **argv, int nids, process_args_t *pa) {
  memset(pa, 0, sizeof(*pa));
  pa->env = calloc((size_t)argc + 2, sizeof(*pa->env));
  pa->owned = calloc((size_t)argc + 1, sizeof(*pa->owned));
  if (pa->env == NULL || pa->owned == NULL ||
      ctl_args_init(&pa->args, cmd, argc, argv, nids + 1) != 0) {
    ctl_errorf(ctl, "out of memory");
    return CTL_EXIT_FAILED;
  }
  hcsb_process_config_t *cfg = &pa->cfg;
  const char *arg;
  int id;
  while ((id = ctl_getopt(ctl, &pa->args, process_opts, &arg)) != 0) {
    switch (id) {
      case -1:
        ctl_cmd_help(ctl, cmd);
        return CTL_EXIT_OK;
      case -2:
        return CTL_EXIT_USAGE;
      case OPT_TTY:
        cfg->emulate_console = 1;
        break;
      case OPT_STDIN:
        cfg->create_stdin_pipe = 1;
        break;
      case OPT_WORKDIR:
        cfg->working_directory = arg;
        break;
      case OPT_USER:
        cfg->user = arg;
        break;
      case OPT_ENV:
        if (strchr(arg, '=')) {
          pa->env[pa->nenv++] = arg;
        } else if (*arg && getenv(arg)) {
          /* "-e NAME" passes our own value, as docker does. */
          size_t len = strlen(arg) + strlen(getenv(arg)) + 2;
          char *kv = malloc(len);
          if (kv == NULL) return CTL_EXIT_FAILED;
          snprintf(kv, len, "%s=%s", arg, getenv(arg));
          pa->owned[pa->nowned++] = kv;
          pa->env[pa->nenv++] = kv;
        } else if (!*arg) {
          return ctl_usage_error(ctl, cmd, "-e needs NAME=VALUE");
        }
        break;
    }
  }
  if (pa->args.noperands < nids + 1)
    return ctl_usage_error(ctl, cmd,
                           nids ? "a container ID and a command are needed"
                                : "a command is needed");
  if (cfg->create_stdin_pipe && ctl->stdin_is_script)
    return ctl_usage_error(
        ctl, cmd, "-i cannot be used while the script is read from stdin");
  /* A pty is for typing into: at a terminal, -t implies -i. */
  if (cfg->emulate_console && !ctl->stdin_is_script && isatty(STDIN_FILENO))
    cfg->create_stdin_pipe = 1;
  int st = ctl_need_conn(ctl);
  if (st != 0) return st;
  if (!env_has(pa, "PATH")) pa->env[pa->nenv++] = CTL_DEFAULT_PATH;
  if (cfg->emulate_console && !env_has(pa, "TERM"))
    pa->env[pa->nenv++] = "TERM=xterm";
  cfg->command_args = (const char *const *)pa->args.operands + nids;
  cfg->ncommand_args = (size_t)(pa->args.noperands - nids);
  cfg->environment = pa->env;
  cfg->nenvironment = pa->nenv;
  cfg->create_stdout_pipe = 1;
  cfg->create_stderr_pipe = !cfg->emulate_console; /* a pty merges them */
  if (cfg->emulate_console)
    ctl_tty_size(&cfg->console_width, &cfg->console_height);
  return -1;
}

int ctl_cmd_run(ctl_t *ctl, int argc, char **argv) {
  process_args_t pa;
  int st = process_args_parse(ctl, "run", argc, argv, 0, &pa);
  if (st < 0) st = ctl_process_foreground(ctl, NULL, &pa.cfg, "run");
  process_args_free(&pa);
  return st;
}

int ctl_cmd_exec(ctl_t *ctl, int argc, char **argv) {
  process_args_t pa;
  int st = process_args_parse(ctl, "exec", argc, argv, 1, &pa);
  if (st < 0) {
    ctl_container_t *ct = ctl_container_get(ctl, pa.args.operands[0]);
    if (pa.cfg.working_directory == NULL) pa.cfg.working_directory = "/";
    st = ct ? ctl_process_foreground(ctl, ct->handle, &pa.cfg, "exec")
            : CTL_EXIT_FAILED;
  }
  process_args_free(&pa);
  return st;
}

/* ------------------------------------------------------------------------ */
/* start */

int ctl_cmd_start(ctl_t *ctl, int argc, char **argv) {
  static const ctl_opt_t opts[] = {{"attach", 'a', 0, 1}, {NULL, 0, 0, 0}};
  ctl_args_t a;
  const char *arg;
  int id, rc, st = -1, attach = !ctl->script;
  if (ctl_args_init(&a, "start", argc, argv, 0) != 0) return CTL_EXIT_FAILED;
  while (st < 0 && (id = ctl_getopt(ctl, &a, opts, &arg)) != 0) {
    if (id == 1)
      attach = 1;
    else
      st =
          id == -1 ? (ctl_cmd_help(ctl, "start"), CTL_EXIT_OK) : CTL_EXIT_USAGE;
  }
  if (st < 0 && a.noperands != 1)
    st = ctl_usage_error(ctl, "start", "one container ID is needed");
  if (st < 0 && (rc = ctl_need_conn(ctl)) != 0) st = rc;
  ctl_container_t *ct = st < 0 ? ctl_container_get(ctl, a.operands[0]) : NULL;
  if (st < 0 && ct == NULL) st = CTL_EXIT_FAILED;
  if (st < 0 && ct->init) {
    ctl_errorf(ctl, "start: the init process of %s was already started",
               a.operands[0]);
    st = CTL_EXIT_FAILED;
  }
  ctl_args_free(&a);
  if (st >= 0) return st;

  ctl_op_t op;
  ctl_op_init(&op);
  hcsb_call_opts_t copts = ctl_call_opts(ctl);
  rc = hcsb_container_start(ct->handle, &copts, ctl_op_done_cb, &op);
  if (rc != 0) return ctl_report(ctl, "start", rc, NULL);
  if ((st = ctl_op_finish(ctl, &op, "start")) != 0) return st;

  /* No command: the init process from the spec. */
  hcsb_process_config_t cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.create_stdout_pipe = cfg.create_stderr_pipe = 1;
  if (attach) return ctl_process_foreground(ctl, ct->handle, &cfg, "start");

  /* Detached (scripts): init runs in the background, its output interleaved
   * with whatever comes next; `wait` collects its end. */
  ctl_op_init(&op);
  rc = hcsb_container_create_process(ct->handle, &copts, &cfg, process_created,
                                     &op, &ct->init);
  if (rc != 0) return create_sync_error(ctl, "start", rc);
  if ((st = ctl_op_finish(ctl, &op, "start")) != 0) {
    ctl_process_close_sync(ctl, ct->init);
    ct->init = NULL;
    return st;
  }
  ct->init_relay = ctl_relay_start(ctl, ct->init, 2);
  return CTL_EXIT_OK;
}
