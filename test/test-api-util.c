/* Helpers shared by the API tests. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test-api-util.h"

/* Deadlines stretch with HCSB_TEST_TIMEOUT_SCALE (valgrind is slow). */
static unsigned scaled(unsigned ms) {
  return ms * hcsb_test_timeout_scale();
}

static void deadline_cb(uv_timer_t *t) {
  *(int *)t->data = 1;
}

void api_run_until_at(uv_loop_t *loop, const int *flag, unsigned ms,
                      const char *file, int line) {
  uv_timer_t t;
  int expired = 0;

  uv_timer_init(loop, &t);
  t.data = &expired;
  uv_timer_start(&t, deadline_cb, scaled(ms), 0);
  while (!*flag && !expired) uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  if (!*flag) hcsb_test_fail(file, line, "timed out after %u ms", ms);
}

void api_log(void *data, hcsb_log_level_t level, const char *aid,
             const char *msg) {
  if (level <= HCSB_LOG_WARN || getenv("HCSB_TEST_VERBOSE") != NULL)
    fprintf(stderr, "  [lib %d] %s\n", (int)level, msg);
}

static void on_lost(void *data, hcsb_conn_t *conn, int status) {
  api_guest_t *g = data;

  g->lost = 1;
  g->lost_status = status;
}

static void on_open(void *data, hcsb_conn_t *conn, int status,
                    const hcsb_guest_error_t *gerr) {
  int *st = data;
  st[0] = 1;
  st[1] = status;
}

static void open_with(api_guest_t *g, uv_loop_t *loop, const char *address,
                      unsigned timeout_ms) {
  hcsb_conn_options_t o;
  int st[2] = {0, 0};

  hcsb_conn_options_init(&o);
  o.address = address;
  o.log_cb = api_log;
  o.log_level = getenv("HCSB_TEST_VERBOSE") ? HCSB_LOG_DEBUG : HCSB_LOG_WARN;
  o.connect_timeout_ms = scaled(timeout_ms);
  o.stdio_accept_timeout_ms = scaled(timeout_ms);
  CHECK_EQ(hcsb_conn_open(loop, &o, on_open, st, &g->conn), 0);
  hcsb_conn_set_lost_cb(g->conn, on_lost, g);
  if (g->pid == -1) {
    /* The listener is bound: start the guest that dials it. */
    char sock[300], *argv[8];
    int n = 0;
    snprintf(sock, sizeof sock, "%s/bridge.sock", g->dir);
    g->pid = fork();
    CHECK(g->pid >= 0);
    if (g->pid == 0) {
      argv[n++] = (char *)hcsb_test_build_path("src/hcsb-guest");
      argv[n++] = (char *)"--connect";
      argv[n++] = sock;
      argv[n++] = (char *)"--stdio-dir";
      argv[n++] = g->dir;
      argv[n] = NULL;
      execv(argv[0], argv);
      _exit(127);
    }
  }
  api_run_until(loop, &st[0], timeout_ms + 1000);
  CHECK_EQ(st[1], 0);
}

void api_open_spawn(api_guest_t *g, uv_loop_t *loop, const char *extra_args) {
  char address[1024];

  memset(g, 0, sizeof(*g));
  g->loop = loop;
  snprintf(address, sizeof address, "spawn:%s%s%s",
           hcsb_test_build_path("src/hcsb-guest"), extra_args ? " " : "",
           extra_args ? extra_args : "");
  open_with(g, loop, address, 10000);
}

void api_open_unix(api_guest_t *g, uv_loop_t *loop, const char *extra_args) {
  char address[512];

  memset(g, 0, sizeof(*g));
  g->loop = loop;
  g->pid = -1;
  snprintf(g->dir, sizeof g->dir, "%s", hcsb_test_tmpdir());
  snprintf(address, sizeof address, "unix://%s/bridge.sock", g->dir);
  open_with(g, loop, address, 10000);
}

void api_open_address(api_guest_t *g, uv_loop_t *loop, const char *address,
                      unsigned timeout_ms) {
  memset(g, 0, sizeof(*g));
  g->loop = loop;
  open_with(g, loop, address, timeout_ms);
}

void api_closed_flag(void *data) {
  (*(int *)data)++;
}

void api_drain(uv_loop_t *loop) {
  int i;

  /* Everything the library owns is closed by now: the loop must empty. */
  for (i = 0; i < 1000 && uv_run(loop, UV_RUN_NOWAIT) != 0; i++) {
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  CHECK_EQ(uv_loop_close(loop), 0);
}

void api_close(api_guest_t *g) {
  int closed = 0;

  hcsb_conn_close(g->conn, api_closed_flag, &closed);
  RUN_UNTIL(g->loop, closed);
  CHECK_EQ(closed, 1);
  if (g->pid > 0) {
    int status = 0, i;
    pid_t r = 0;
    for (i = 0; i < 500 && (r = waitpid(g->pid, &status, WNOHANG)) == 0; i++) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    if (r == 0) {
      kill(g->pid, SIGKILL);
      waitpid(g->pid, &status, 0);
      hcsb_test_fail(__FILE__, __LINE__, "hcsb-guest did not exit on close");
    }
    g->pid = 0;
  }
  api_drain(g->loop);
}

/* ------------------------------------------------------------------------ */
/* Processes */

void api_proc_free(api_proc_t *r) {
  free(r->out);
  free(r->err);
  memset(r, 0, sizeof(*r));
}

void api_proc_read(void *data, hcsb_process_t *p, int fd, const char *buf,
                   ssize_t nread) {
  api_proc_t *r = data;
  char **dst = fd == 1 ? &r->out : &r->err;
  size_t *n = fd == 1 ? &r->nout : &r->nerr;

  if (nread < 0) {
    CHECK_EQ(nread, UV_EOF);
    if (fd == 1)
      r->out_eof = 1;
    else
      r->err_eof = 1;
    return;
  }
  *dst = realloc(*dst, *n + (size_t)nread + 1);
  CHECK(*dst != NULL);
  memcpy(*dst + *n, buf, (size_t)nread);
  *n += (size_t)nread;
  (*dst)[*n] = '\0';
}

void api_proc_created(void *data, hcsb_process_t *p, int status,
                      const hcsb_guest_error_t *gerr) {
  api_proc_t *r = data;

  r->created = 1;
  r->create_status = status;
  if (gerr != NULL) {
    char line[512];
    hcsb_guest_error_format(gerr, line, sizeof line);
    if (getenv("HCSB_TEST_VERBOSE") != NULL)
      fprintf(stderr, "  create: %s\n", line);
    r->create_hresult = gerr->hresult;
  }
}

void api_proc_waited(void *data, hcsb_process_t *p, int status,
                     uint32_t exit_code) {
  api_proc_t *r = data;

  r->waited = 1;
  r->wait_status = status;
  r->exit_code = exit_code;
}

void api_proc_closed(void *data) {
  ((api_proc_t *)data)->closed = 1;
}

void api_ctr_created(void *data, hcsb_container_t *c, int status,
                     const hcsb_guest_error_t *gerr) {
  api_ctr_t *t = data;

  (void)c;
  t->created++;
  t->create_status = status;
  t->hresult = gerr != NULL ? gerr->hresult : 0;
  snprintf(t->message, sizeof t->message, "%s",
           gerr != NULL ? gerr->message : "");
}

void api_ctr_waited(void *data, hcsb_container_t *c, int status,
                    const hcsb_container_exit_t *exit) {
  api_ctr_t *t = data;

  (void)c;
  t->waited++;
  t->wait_status = status;
  memset(&t->exit, 0, sizeof t->exit);
  t->type_name[0] = '\0';
  if (exit != NULL) {
    t->exit = *exit;
    snprintf(t->type_name, sizeof t->type_name, "%s",
             exit->type_name != NULL ? exit->type_name : "");
  }
}

void api_ctr_closed(void *data) {
  ((api_ctr_t *)data)->closed++;
}

void api_proc_config(hcsb_process_config_t *cfg, const char *const *argv,
                     const char *pipes, int tty) {
  size_t n = 0;

  memset(cfg, 0, sizeof(*cfg));
  while (argv != NULL && argv[n] != NULL) n++;
  cfg->command_args = argv;
  cfg->ncommand_args = n;
  cfg->emulate_console = tty;
  cfg->create_stdin_pipe = strchr(pipes, 'i') != NULL;
  cfg->create_stdout_pipe = strchr(pipes, 'o') != NULL;
  cfg->create_stderr_pipe = strchr(pipes, 'e') != NULL;
}

void api_uvm_start(api_guest_t *g, api_proc_t *r, const char *const *argv,
                   const char *pipes) {
  hcsb_process_config_t cfg;

  memset(r, 0, sizeof(*r));
  api_proc_config(&cfg, argv, pipes, 0);
  CHECK_EQ(
      hcsb_conn_create_process(g->conn, NULL, &cfg, api_proc_created, r, &r->p),
      0);
  RUN_UNTIL(g->loop, r->created);
  CHECK_EQ(r->create_status, 0);
  CHECK(hcsb_process_pid(r->p) > 0);
}

void api_proc_finish(api_guest_t *g, api_proc_t *r, const char *input) {
  int want_out = hcsb_process_stdout(r->p) != NULL;
  int want_err = hcsb_process_stderr(r->p) != NULL;

  if (want_out || want_err)
    CHECK_EQ(hcsb_process_read_start(r->p, api_proc_read, r), 0);
  if (input != NULL)
    CHECK_EQ(hcsb_process_write(r->p, input, strlen(input), NULL, NULL), 0);
  CHECK_EQ(hcsb_process_close_stdin(r->p), 0);
  CHECK_EQ(hcsb_process_wait(r->p, 0, api_proc_waited, r), 0);
  RUN_UNTIL(g->loop, r->waited);
  if (want_out) RUN_UNTIL(g->loop, r->out_eof);
  if (want_err) RUN_UNTIL(g->loop, r->err_eof);
  hcsb_process_close(r->p, api_proc_closed, r);
  RUN_UNTIL(g->loop, r->closed);
}

void api_done(void *data, int status, const hcsb_guest_error_t *gerr) {
  api_done_t *d = data;

  d->done++;
  d->status = status;
  if (gerr != NULL) {
    d->hresult = gerr->hresult;
    snprintf(d->message, sizeof d->message, "%s", gerr->message);
  }
}

void api_ctr_start(api_guest_t *g, hcsb_container_t *c, api_proc_t *r,
                   const char *const *argv, const char *pipes, int tty) {
  hcsb_process_config_t cfg;

  memset(r, 0, sizeof(*r));
  api_proc_config(&cfg, argv, pipes, tty);
  CHECK_EQ(
      hcsb_container_create_process(c, NULL, &cfg, api_proc_created, r, &r->p),
      0);
  RUN_UNTIL(g->loop, r->created);
  CHECK_EQ(r->create_status, 0);
}
