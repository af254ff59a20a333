/* hcsbctl — the example command-line client.  Internal to the tool.
 *
 * The tool is written the way a small synchronous program would use an
 * asynchronous library: each sub-command starts operations with callbacks
 * that only record their outcome, then runs the loop until that outcome is
 * in (ctl_await).  Output goes through two sinks (stdout, stderr) written
 * with libuv, so relayed process output and the tool's own lines keep their
 * order and a slow reader slows the guest down instead of filling memory.
 *
 * It uses only the installed public header.
 */
#ifndef HCSBCTL_H
#define HCSBCTL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <hcsbridge.h>

/* Exit statuses (documented in --help). */
enum {
  CTL_EXIT_OK = 0,
  CTL_EXIT_FAILED = 1, /* the guest refused or failed the operation */
  CTL_EXIT_USAGE = 2,
  CTL_EXIT_CONN = 3, /* connection or transport failure */
  CTL_EXIT_TIMEOUT = 4
};

/* Output queued on a sink above which relays stop reading from the guest,
 * and below which they resume. */
#define CTL_SINK_HIGH (256u * 1024u)
#define CTL_SINK_LOW (64u * 1024u)

typedef struct ctl_s ctl_t;

/* Outcome of one asynchronous operation. */
typedef struct ctl_op_s {
  int done;
  int status;
  hcsb_container_t *container; /* hcsb_uvm_create_container's handle */
  char *gerr;       /* the one-line guest error when status == HCSB_EGUEST */
  uint32_t hresult; /* and its HRESULT */
} ctl_op_t;

/* ------------------------------------------------------------------------ */
/* Growable text buffer (hcsbctl-util.c) */

typedef struct ctl_buf_s {
  char *data;
  size_t len, cap;
} ctl_buf_t;

void ctl_buf_printf(ctl_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void ctl_buf_vprintf(ctl_buf_t *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void ctl_buf_append(ctl_buf_t *b, const char *s, size_t len);
/* Appends `s` as a JSON string literal (quotes included). */
void ctl_buf_json_str(ctl_buf_t *b, const char *s);
void ctl_buf_free(ctl_buf_t *b);

/* ------------------------------------------------------------------------ */
/* Parsing helpers (hcsbctl-util.c) */

/* "TERM", "SIGTERM", "term", "15" -> 15 (Linux guest numbering); -1 when
 * unknown. */
int ctl_parse_signal(const char *s);
const char *ctl_signal_name(int signum); /* "TERM", or NULL */
/* Decimal uint32 without sign or junk; 0 on success, -1 otherwise. */
int ctl_parse_u32(const char *s, uint32_t *out);
/* Splits a script line into words in place: blanks separate words, '...'
 * is literal, "..." allows \" \\ \$ \` escapes, a backslash outside quotes
 * escapes the next character, a word starting with '#' begins a comment.
 * No expansion of any kind.  Returns the word count (argv is NULL-terminated,
 * free with free()), or -1 with *err set on an unterminated quote. */
int ctl_split_words(char *line, char ***argv_out, const char **err);
/* Reads a whole file ("-" = stdin) into a NUL-terminated buffer of at most
 * `max` bytes.  Returns 0 or a negative errno (-EFBIG when too large). */
int ctl_read_file(const char *path, size_t max, char **out, size_t *len);

/* ------------------------------------------------------------------------ */
/* Output sinks and the stdin source (hcsbctl-io.c) */

typedef struct ctl_sink_s {
  int fd;        /* 1 or 2: the descriptor the data is meant for */
  int stream;    /* 1: written through `h` with libuv */
  int open;      /* `h` initialised and not closed */
  int broken;    /* a write failed: later output is dropped */
  size_t queued; /* bytes handed to libuv and not yet written */
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_pipe_t pipe;
    uv_tty_t tty;
  } h;
  ctl_t *ctl;
} ctl_sink_t;

int ctl_sink_open(ctl_t *ctl, ctl_sink_t *s, int fd);
void ctl_sink_write(ctl_sink_t *s, const char *buf, size_t len);
/* Starts closing; ctl->closing counts it until libuv is done. */
void ctl_sink_close(ctl_sink_t *s);

/* The tool's own lines.  Before the sinks are open (or after they closed)
 * they are written directly. */
void ctl_out(ctl_t *ctl, const char *buf, size_t len);
void ctl_printf(ctl_t *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "hcsbctl: " + message + "\n" on stderr. */
void ctl_errorf(ctl_t *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void ctl_verrorf(ctl_t *ctl, const char *fmt, va_list ap);

/* Our stdin as a byte source: a tty (optionally in raw mode), a pipe or a
 * socket read with libuv streams, or a file read with uv_fs_read. */
typedef void (*ctl_source_cb)(void *data, const char *buf, ssize_t nread);

typedef struct ctl_source_s {
  ctl_t *ctl;
  int kind;    /* CTL_SOURCE_* in hcsbctl-io.c */
  int active;  /* open and not yet closed */
  int reading; /* wanted by the owner */
  int eof;     /* end (or error) reported */
  int fs_busy; /* a uv_fs_read is in flight */
  int raw;     /* the terminal was put in raw mode */
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_pipe_t pipe;
    uv_tty_t tty;
  } h;
  uv_fs_t fs;
  char *buf;
  ctl_source_cb cb;
  void *data;
} ctl_source_t;

/* Opens fd 0; `raw`: put a terminal in raw mode (restored by
 * ctl_source_close and on every exit).  Returns 0 or a negative errno. */
int ctl_source_open(ctl_t *ctl, ctl_source_t *s, int raw, ctl_source_cb cb,
                    void *data);
void ctl_source_start(ctl_source_t *s);
void ctl_source_stop(ctl_source_t *s);
/* Starts closing; ctl->closing counts it until libuv is done. */
void ctl_source_close(ctl_source_t *s);
/* Restores the terminal mode if any source changed it; safe to call from
 * anywhere, any number of times. */
void ctl_tty_restore(void);

/* Terminal size of fd 1 or fd 0, whichever is a terminal; -1 if neither. */
int ctl_tty_size(uint16_t *width, uint16_t *height);

/* ------------------------------------------------------------------------ */
/* Session state (hcsbctl.c) */

/* A process whose stdout/stderr are relayed to the sinks. */
typedef struct ctl_relay_s {
  struct ctl_relay_s *next; /* ctl->relays */
  ctl_t *ctl;
  hcsb_process_t *proc;
  int outputs; /* streams requested (1 or 2) */
  int ended;   /* streams that reached their end */
  int done[3]; /* per fd: this stream ended */
  int paused;  /* reading stopped because a sink is full */
  int reading;
} ctl_relay_t;

/* A container this session knows about. */
typedef struct ctl_container_s {
  struct ctl_container_s *next;
  hcsb_container_t *handle;
  hcsb_process_t *init;    /* started by `start` in this session */
  ctl_relay_t *init_relay; /* its output relay (script mode) */
} ctl_container_t;

struct ctl_s {
  uv_loop_t loop;
  hcsb_conn_t *conn;
  /* global options */
  const char *guest, *spawn, *stdio_dir;
  int verbose, json;
  uint32_t timeout_ms; /* 0: library defaults, no limit on waits */
  /* session */
  int script;            /* running `script`: one connection, many lines */
  int stdin_is_script;   /* `script -`: stdin carries commands */
  int line_json;         /* --json given on the current command */
  const char *container; /* the container ID the current command addresses */
  int lost;              /* the connection was lost (status) */
  int closing;           /* libuv handles still closing */
  ctl_sink_t out, err;
  ctl_container_t *containers;
  ctl_relay_t *relays;
  int fd_flags[3]; /* of fds 0-2 at start: libuv makes pipes non-blocking */
  ctl_op_t bridge_ready; /* our own bridge's ready callback (--stdio-dir with
                            a spawned guest): it may come after connecting */
  /* SIGINT, SIGTERM, SIGHUP, SIGQUIT outside a foreground process (which
   * forwards them): the connection is closed, which stops a spawned guest
   * and removes what was created for it, and hcsbctl exits 128+N. */
  uv_signal_t stop_sig[4];
  int stop_sigs;    /* the handles above are initialised */
  int fg_signals;   /* a foreground process forwards signals: not ours */
  int interrupted;  /* the signal that stopped us, 0 if none */
  int conn_closing; /* closed by that signal */
  int draining;     /* flushing output at exit: a signal stops waiting */
  int process_exit; /* the current command's status is its process's exit
                       code (run, exec, start), not hcsbctl's own */
  /* --uvm (hcsbctl-uvm.c) */
  int uvm;
  const char *uvm_image, *uvm_guest, *uvm_accel;
  const char **uvm_files; /* SRC[:DEST] */
  size_t nuvm_files;
  uint32_t uvm_memory_mb, uvm_time_limit_s;
  hcsb_uvm_t *vm;
  char *uvm_tmp;          /* private directory: console log, built image */
  const char *uvm_failed; /* why the console log is kept */
};

void ctl_op_init(ctl_op_t *op);
/* Records status and guest error (copied: it is only valid in callbacks). */
void ctl_op_record(ctl_op_t *op, int status, const hcsb_guest_error_t *gerr);
/* An hcsb_done_cb for `data` = ctl_op_t. */
void ctl_op_done_cb(void *data, int status, const hcsb_guest_error_t *gerr);
/* Waits for `op`, reports a failure as "hcsbctl: WHAT: reason" (a guest
 * that does not know ctl->container as "no container ID in this guest")
 * and returns the exit status.  Frees what `op` holds. */
int ctl_op_finish(ctl_t *ctl, ctl_op_t *op, const char *what);

/* Runs the loop until *done is non-zero.  Returns 0, or -1 when nothing is
 * left that could set it (a bug, reported). */
int ctl_await(ctl_t *ctl, const int *done);
/* Runs the loop until every handle being closed is closed. */
void ctl_await_closed(ctl_t *ctl);
/* Reports `status` (0, a negative errno, HCSB_EGUEST with `gerr_line`) for
 * WHAT and returns the exit status for it. */
int ctl_report(ctl_t *ctl, const char *what, int status, const char *gerr_line);
int ctl_exit_status(int status);
/* Per-call options: ActivityId generated by the library, --timeout. */
hcsb_call_opts_t ctl_call_opts(const ctl_t *ctl);
/* Whether the current command wants JSON output. */
int ctl_want_json(const ctl_t *ctl);

/* Connects on first use (the guest is only started when a command that
 * needs it parsed its arguments).  Returns 0, or the exit status after
 * reporting the failure (also once a signal closed the connection). */
int ctl_need_conn(ctl_t *ctl);

/* Boots the utility VM (--uvm) and sets ctl->conn; returns 0 or the exit
 * status after reporting the failure.  ctl_uvm_close stops it and cleans
 * up (keeping the console log when the VM failed). */
int ctl_uvm_connect(ctl_t *ctl);
void ctl_uvm_close(ctl_t *ctl);

/* Looks up a container by ID, attaching to it (no RPC) when this session
 * does not know it yet.  Returns NULL after reporting an error. */
ctl_container_t *ctl_container_get(ctl_t *ctl, const char *id);
ctl_container_t *ctl_container_find(ctl_t *ctl, const char *id);
ctl_container_t *ctl_container_add(ctl_t *ctl, hcsb_container_t *handle);
/* Forgets a container: closes its handle and its init process. */
void ctl_container_forget(ctl_t *ctl, ctl_container_t *ct);

/* ------------------------------------------------------------------------ */
/* Relays and processes (hcsbctl-proc.c) */

/* Starts relaying stdout/stderr of `p` (it requested `outputs` streams) to
 * the sinks.  The relay is freed by ctl_relay_free after the process
 * handle was closed. */
ctl_relay_t *ctl_relay_start(ctl_t *ctl, hcsb_process_t *p, int outputs);
void ctl_relay_free(ctl_t *ctl, ctl_relay_t *r);
/* Sinks call this when they drained below CTL_SINK_LOW. */
void ctl_relays_resume(ctl_t *ctl);
/* Closes a process handle and waits until it is closed. */
void ctl_process_close_sync(ctl_t *ctl, hcsb_process_t *p);
/* Creates a process (in container `c`, or in the UVM when NULL), relays
 * its stdio, waits for its exit and returns the exit status to use. */
int ctl_process_foreground(ctl_t *ctl, hcsb_container_t *c,
                           hcsb_process_config_t *cfg, const char *what);
/* Maps a guest exit code to this process's exit status (see run --help):
 * `forwarded` is the last signal hcsbctl had delivered to the process (0:
 * none), the likely cause of a UVM process's "killed by a signal". */
int ctl_exit_from_code(ctl_t *ctl, const char *what, uint32_t code,
                       int forwarded);

/* ------------------------------------------------------------------------ */
/* Sub-commands: each returns an exit status. */

typedef int (*ctl_cmd_fn)(ctl_t *ctl, int argc, char **argv);

int ctl_cmd_run(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_exec(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_create(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_start(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_kill(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_wait(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_ps(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_stats(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_shutdown(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_delete(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_modify(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_stacks(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_caps(ctl_t *ctl, int argc, char **argv);

/* Appends the typed metrics (hcsbctl-stats.c): "group.field value" lines,
 * or a JSON object with containerd's cgroup v1 field names. */
void ctl_format_metrics(ctl_buf_t *b, const hcsb_metrics_t *m, int json);

/* Option parsing shared by the sub-commands (hcsbctl-util.c). */
typedef struct ctl_opt_s {
  const char *name; /* "pid" for --pid; NULL ends the table */
  char short_name;  /* 'p' or 0 */
  int has_arg;
  int id; /* > 0 */
} ctl_opt_t;

typedef struct ctl_args_s {
  const char *cmd;
  int argc;
  char **argv; /* argv[0] is the sub-command */
  int ind;
  const char *cluster; /* rest of a "-ti" cluster */
  int stop_after;      /* after this many operands the rest is operands
                          (the command of run/exec); 0: never */
  char **operands;     /* collected in order; "--" ends the options */
  int noperands;
} ctl_args_t;

int ctl_args_init(ctl_args_t *a, const char *cmd, int argc, char **argv,
                  int stop_after);
void ctl_args_free(ctl_args_t *a);
/* Returns the next option's id (*arg set for options with an argument),
 * 0 when the arguments are consumed, -1 for --help/-h, or -2 after printing
 * a usage error. */
int ctl_getopt(ctl_t *ctl, ctl_args_t *a, const ctl_opt_t *opts,
               const char **arg);
/* Help texts (hcsbctl-help.c), printed to stdout.  The first returns 0 for
 * a known command. */
int ctl_cmd_help(ctl_t *ctl, const char *cmd);
void ctl_main_help(ctl_t *ctl);
/* "hcsbctl CMD: message\nTry 'hcsbctl CMD --help'." and CTL_EXIT_USAGE. */
int ctl_usage_error(ctl_t *ctl, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* HCSBCTL_H */
