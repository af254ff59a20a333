/* The shim's task layer (task.h) against the guest emulator, without
 * containerd: FIFOs made and opened the way containerd does, a bundle with
 * a config.json, and every outcome checked: output before the exit, the
 * exit once, waits before and after it, execs with stdin and a terminal,
 * signals, the state machine's refusals, Pids and Stats. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "runner.h"
#include "shim/log.h"
#include "shim/task.h"

/* ------------------------------------------------------------------------ */
/* The bundle's cleanup record, as a test double that remembers what the
 * task layer wrote into it. */

struct hcsb__shim_state_s {
  int files; /* "file" entries now */
  int added; /* "file" entries ever added */
};

int hcsb__shim_state_add_pid(hcsb__shim_state_t *st, pid_t pid,
                             const char *label) {
  (void)st;
  (void)pid;
  (void)label;
  return 0;
}

int hcsb__shim_state_remove_pid(hcsb__shim_state_t *st, pid_t pid) {
  (void)st;
  (void)pid;
  return 0;
}

int hcsb__shim_state_add_path(hcsb__shim_state_t *st, const char *kind,
                              const char *path) {
  (void)path;
  if (strcmp(kind, "file") == 0) {
    st->files++;
    st->added++;
  }
  return 0;
}

int hcsb__shim_state_remove_path(hcsb__shim_state_t *st, const char *kind,
                                 const char *path) {
  (void)path;
  if (strcmp(kind, "file") == 0) st->files--;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Fixture */

typedef struct fx_s {
  uv_loop_t loop;
  hcsb__shim_config_t cfg;
  hcsb__sandbox_t *sb;
  hcsb__shim_state_t state;
  hcsb__task_env_t env;
  int exits, ooms;
  hcsb__tproc_t *last_exit;
  uint32_t last_status;
  /* what the FIFOs held when the exit was announced */
  char at_exit_out[4096];
  int out_rfd, err_rfd; /* our read ends (containerd's) */
} fx_t;

static fx_t *the_fx;

static void on_tick(uv_timer_t *t) {
  (void)t;
}

/* Runs the loop until *flag; a 10 ms tick makes each turn come back (a
 * callback run by a timer would otherwise be followed by a poll that
 * blocks until the next event). */
static void run_until(fx_t *f, const int *flag) {
  uint64_t end = uv_now(&f->loop) + 20000u * hcsb_test_timeout_scale();
  uv_timer_t tick;

  uv_timer_init(&f->loop, &tick);
  uv_timer_start(&tick, on_tick, 10, 10);
  while (!*flag) {
    uv_run(&f->loop, UV_RUN_ONCE);
    uv_update_time(&f->loop);
    if (uv_now(&f->loop) > end) hcsb_test_fail(__FILE__, __LINE__, "timeout");
  }
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Everything readable from fd now (non-blocking), appended to buf. */
static size_t drain_fd(int fd, char *buf, size_t cap) {
  size_t len = strlen(buf);
  ssize_t n;

  while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
    len += (size_t)n;
  buf[len] = '\0';
  return len;
}

static void on_exited(void *data, hcsb__task_t *t, hcsb__tproc_t *p) {
  fx_t *f = data;

  (void)t;
  f->exits++;
  f->last_exit = p;
  f->last_status = hcsb__tproc_state(p)->exit_status;
  CHECK_EQ(hcsb__tproc_state(p)->state, HCSB__PS_STOPPED);
  /* The output is out before the exit is announced. */
  if (f->out_rfd >= 0)
    drain_fd(f->out_rfd, f->at_exit_out, sizeof f->at_exit_out);
}

static void on_oom(void *data, hcsb__task_t *t) {
  (void)t;
  ((fx_t *)data)->ooms++;
}

static void on_ready(void *data, hcsb__sandbox_t *sb, int status,
                     const char *msg) {
  int *done = data;

  (void)sb;
  if (status != 0) hcsb_test_fail(__FILE__, __LINE__, "guest: %s", msg);
  *done = 1;
}

static void fx_open(fx_t *f) {
  static char guest[600];
  int ready = 0;

  memset(f, 0, sizeof(*f));
  the_fx = f;
  f->out_rfd = f->err_rfd = -1;
  CHECK_EQ(uv_loop_init(&f->loop), 0);
  /* What the sandbox reads for a guest at an address. */
  snprintf(guest, sizeof guest, "spawn:exec %s",
           hcsb_test_build_path("src/hcsb-guest"));
  f->cfg.guest = guest;
  f->cfg.boot_timeout_ms = 20000 * hcsb_test_timeout_scale();
  f->cfg.log_level = HCSB_LOG_WARN;
  if (getenv("HCSB_SHIM_TEST_UVM") != NULL) {
    /* By hand: the same tests in a utility VM made by hcsb-mkuvm into
     * $HCSB_SHIM_TEST_UVM (slow: one boot per test). */
    static char kernel[512], initrd[512];
    snprintf(kernel, sizeof kernel, "%s/vmlinuz", getenv("HCSB_SHIM_TEST_UVM"));
    snprintf(initrd, sizeof initrd, "%s/initrd.img",
             getenv("HCSB_SHIM_TEST_UVM"));
    f->cfg.guest = NULL;
    f->cfg.kernel = kernel;
    f->cfg.initrd = initrd;
    f->cfg.accel = (char *)"tcg";
    f->cfg.memory_mb = 512;
    f->cfg.cpus = 1;
    f->cfg.boot_timeout_ms = 240000;
    f->cfg.time_limit_s = 600;
    f->cfg.vsockd = (char *)hcsb_test_build_path("src/hcsb-vsockd");
    f->cfg.run_dir = (char *)hcsb_test_tmpdir();
  }
  hcsb__shim_log_set_level(getenv("SHIMLOG") ? HCSB_LOG_DEBUG : HCSB_LOG_WARN);
  CHECK_EQ(hcsb__sandbox_start(&f->loop, &f->cfg, &f->state, NULL, &f->sb), 0);
  CHECK_EQ(hcsb__sandbox_is_vm(f->sb), f->cfg.guest == NULL);
  CHECK_EQ(hcsb__sandbox_when_ready(f->sb, on_ready, &ready), 0);
  CHECK_EQ(ready, 0);
  run_until(f, &ready);
  CHECK(hcsb__sandbox_conn(f->sb) != NULL);
  f->env.loop = &f->loop;
  f->env.sandbox = f->sb;
  f->env.state = &f->state;
  f->env.layer_dir = hcsb_test_tmpdir();
  f->env.hooks.exited = on_exited;
  f->env.hooks.oom = on_oom;
  f->env.hooks.data = f;
}

static void on_closed(void *data) {
  *(int *)data = 1;
}

static void fx_close(fx_t *f) {
  int closed = 0;

  hcsb__sandbox_close(f->sb, on_closed, &closed);
  CHECK_EQ(closed, 0);
  run_until(f, &closed);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  CHECK_EQ(uv_loop_close(&f->loop), 0);
  if (f->out_rfd >= 0) close(f->out_rfd);
  if (f->err_rfd >= 0) close(f->err_rfd);
}

/* A bundle: config.json running `args` (a JSON array text), an empty
 * rootfs directory. */
static const char *make_bundle(const char *name, const char *args,
                               const char *extra) {
  static char dir[512];
  char p[700];
  FILE *fp;

  snprintf(dir, sizeof dir, "%s/%s", hcsb_test_tmpdir(), name);
  CHECK_EQ(mkdir(dir, 0700), 0);
  snprintf(p, sizeof p, "%s/rootfs", dir);
  CHECK_EQ(mkdir(p, 0755), 0);
  snprintf(p, sizeof p, "%s/config.json", dir);
  fp = fopen(p, "w");
  CHECK(fp != NULL);
  fprintf(fp,
          "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":%s,\"cwd\":\"/\","
          "\"env\":[\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\"]},"
          "\"root\":{\"path\":\"rootfs\"},\"hooks\":{\"prestart\":[]}%s}",
          args, extra != NULL ? extra : "");
  fclose(fp);
  return dir;
}

/* A FIFO as containerd makes it; `rfd` gets containerd's read end. */
static const char *make_fifo(const char *name, int *rfd) {
  static char paths[8][512];
  static int next;
  char *p = paths[next++ & 7];

  snprintf(p, 512, "%s/%s", hcsb_test_tmpdir(), name);
  CHECK_EQ(mkfifo(p, 0600), 0);
  if (rfd != NULL) {
    *rfd = open(p, O_RDONLY | O_NONBLOCK);
    CHECK(*rfd >= 0);
  }
  return p;
}

typedef struct res_s {
  int done, calls, status;
  char msg[512];
} res_t;

static void on_res(void *data, int status, const hcsb_guest_error_t *gerr,
                   const char *msg) {
  res_t *r = data;

  (void)gerr;
  r->calls++;
  r->done = 1;
  r->status = status;
  snprintf(r->msg, sizeof r->msg, "%s", msg != NULL ? msg : "");
}

static hcsb__task_t *create_task(fx_t *f, const char *id, const char *bundle,
                                 const char *out, const char *err,
                                 const char *in, int terminal) {
  hcsb__task_create_t req;
  hcsb__task_t *t = NULL;
  res_t r;
  const char *msg = NULL;

  memset(&req, 0, sizeof(req));
  memset(&r, 0, sizeof(r));
  req.id = id;
  req.bundle = bundle;
  req.stdout_path = out;
  req.stderr_path = err;
  req.stdin_path = in;
  req.terminal = terminal;
  CHECK_EQ(hcsb__task_create(&f->env, &req, on_res, &r, &t, &msg), 0);
  CHECK(t != NULL);
  CHECK_EQ(r.calls, 0);
  CHECK_EQ(hcsb__task_busy(t), 1);
  run_until(f, &r.done);
  if (r.status != 0)
    hcsb_test_fail(__FILE__, __LINE__, "create: %d %s", r.status, r.msg);
  CHECK_EQ(hcsb__task_busy(t), 0);
  CHECK_EQ(hcsb__tproc_state(hcsb__task_init(t))->state, HCSB__PS_CREATED);
  return t;
}

static void start(fx_t *f, hcsb__tproc_t *p) {
  res_t r;
  const char *msg = NULL;

  memset(&r, 0, sizeof(r));
  CHECK_EQ(hcsb__tproc_start(p, on_res, &r, &msg), 0);
  CHECK_EQ(hcsb__tproc_state(p)->state, HCSB__PS_STARTING);
  CHECK_EQ(r.calls, 0);
  run_until(f, &r.done);
  if (r.status != 0)
    hcsb_test_fail(__FILE__, __LINE__, "start: %d %s", r.status, r.msg);
  CHECK(hcsb__tproc_state(p)->pid > 0);
}

typedef struct waited_s {
  int done, calls;
  hcsb__tproc_t *p;
  uint32_t status;
} waited_t;

static void on_waited(void *data, hcsb__tproc_t *p) {
  waited_t *w = data;

  w->calls++;
  w->done = 1;
  w->p = p;
  if (p != NULL) w->status = hcsb__tproc_state(p)->exit_status;
}

static void delete_proc(fx_t *f, hcsb__tproc_t *p) {
  res_t r;
  const char *msg = NULL;

  memset(&r, 0, sizeof(r));
  CHECK_EQ(hcsb__tproc_delete(p, on_res, &r, &msg), 0);
  CHECK_EQ(r.calls, 0);
  run_until(f, &r.done);
  CHECK_EQ(r.status, 0);
}

/* ------------------------------------------------------------------------ */

/* Output to both FIFOs, then the exit: announced once, after the output,
 * with its status; a wait from before and one from after. */
static void test_init_output_and_exit(void) {
  fx_t f;
  const char *bundle, *out, *err, *msg;
  hcsb__task_t *t;
  hcsb__tproc_t *init;
  waited_t before, after;
  char errbuf[256] = "";

  fx_open(&f);
  bundle = make_bundle("b1",
                       "[\"sh\",\"-c\",\"echo to-out; echo to-err >&2;"
                       " exit 3\"]",
                       NULL);
  out = make_fifo("b1-out", &f.out_rfd);
  err = make_fifo("b1-err", &f.err_rfd);
  t = create_task(&f, "c1", bundle, out, err, "", 0);
  init = hcsb__task_init(t);
  CHECK_STR(hcsb__tproc_exec_id(init), "");
  memset(&before, 0, sizeof(before));
  CHECK_EQ(hcsb__tproc_wait(init, on_waited, &before, NULL), 0);
  start(&f, init);
  run_until(&f, &before.done);
  CHECK_EQ(f.exits, 1);
  CHECK_EQ(f.last_status, 3);
  CHECK_STR(f.at_exit_out, "to-out\n");
  drain_fd(f.err_rfd, errbuf, sizeof errbuf);
  CHECK_STR(errbuf, "to-err\n");
  CHECK(before.p == init);
  CHECK_EQ(before.status, 3);
  CHECK(hcsb__tproc_state(init)->exited_at.tv_sec > 0);
  /* A wait after the exit: on a later turn, with the same status. */
  memset(&after, 0, sizeof(after));
  CHECK_EQ(hcsb__tproc_wait(init, on_waited, &after, NULL), 0);
  CHECK_EQ(after.calls, 0);
  run_until(&f, &after.done);
  CHECK_EQ(after.status, 3);
  /* The state machine's refusals, with their messages. */
  CHECK_EQ(hcsb__tproc_kill(init, 9, 0, on_res, NULL, &msg), -ENOENT);
  CHECK_STR(msg, "process already finished");
  CHECK_EQ(hcsb__tproc_start(init, on_res, NULL, &msg), -EBUSY);
  CHECK_EQ(hcsb__task_exec(t, "e1", "{}", 2, 0, "", "", "", &msg), -EBUSY);
  delete_proc(&f, init);
  CHECK_EQ(hcsb__tproc_state(init)->state, HCSB__PS_DELETED);
  CHECK_EQ(hcsb__tproc_state(init)->exit_status, 3);
  CHECK_EQ(f.exits, 1); /* still once */
  hcsb__task_free(t);
  fx_close(&f);
}

/* The spec as the guest gets it: the hooks are gone (the emulator echoes
 * nothing of it, so this checks the create went through with a spec that
 * has hooks and a bind mount), and a bad rootfs is refused up front. */
static void test_create_refusals(void) {
  fx_t f;
  hcsb__task_create_t req;
  hcsb__task_t *t = (hcsb__task_t *)1;
  const char *opts[] = {"rbind", "rw"}, *msg = NULL;
  hcsb__mount_t m[2] = {{"bind", "/x", NULL, opts, 2},
                        {"bind", "/y", NULL, opts, 2}};

  fx_open(&f);
  memset(&req, 0, sizeof(req));
  req.id = "c2";
  req.bundle = make_bundle("b2", "[\"true\"]", NULL);
  req.rootfs = m;
  req.nrootfs = 2;
  CHECK_EQ(hcsb__task_create(&f.env, &req, on_res, NULL, &t, &msg), -EINVAL);
  CHECK_STR(msg, "more than one rootfs mount");
  req.nrootfs = 0;
  req.bundle = "relative";
  CHECK_EQ(hcsb__task_create(&f.env, &req, on_res, NULL, &t, &msg), -EINVAL);
  req.bundle = "/nonexistent-bundle";
  CHECK_EQ(hcsb__task_create(&f.env, &req, on_res, NULL, &t, &msg), -ENOENT);
  req.bundle = make_bundle("b3", "[\"true\"]", NULL);
  req.stdout_path = "binary:///usr/bin/logger";
  CHECK_EQ(hcsb__task_create(&f.env, &req, on_res, NULL, &t, &msg), -ENOTSUP);
  CHECK(strstr(msg, "binary:// logging is not supported") != NULL);
  req.stdout_path = "";
  req.terminal = 1;
  req.stderr_path = "/some/fifo";
  CHECK_EQ(hcsb__task_create(&f.env, &req, on_res, NULL, &t, &msg), -EINVAL);
  fx_close(&f);
}

/* An exec with stdin: what containerd writes reaches it, CloseIO ends its
 * input, its exit status comes back; the init is untouched. */
static void test_exec_stdin(void) {
  fx_t f;
  const char *bundle, *in, *out, *msg;
  hcsb__task_t *t;
  hcsb__tproc_t *e;
  waited_t w;
  int wfd, ofd;
  char got[256] = "";
  static const char proc[] =
      "{\"args\":[\"sh\",\"-c\",\"read x; echo got $x; cat; exit 5\"],"
      "\"cwd\":\"/\",\"apparmorProfile\":\"x\"}";

  fx_open(&f);
  bundle = make_bundle("b4", "[\"sleep\",\"100\"]", NULL);
  t = create_task(&f, "c4", bundle, "", "", "", 0);
  start(&f, hcsb__task_init(t));
  CHECK_EQ(hcsb__tproc_state(hcsb__task_init(t))->state, HCSB__PS_RUNNING);
  in = make_fifo("e1-in", NULL);
  out = make_fifo("e1-out", &ofd);
  /* containerd's writer end of stdin (its fifo package opens it once a
   * reader exists; the shim's own write end lets this one come later). */
  CHECK_EQ(
      hcsb__task_exec(t, "e1", proc, sizeof proc - 1, 0, in, out, "", &msg), 0);
  CHECK_EQ(
      hcsb__task_exec(t, "e1", proc, sizeof proc - 1, 0, in, out, "", &msg),
      -EEXIST);
  CHECK_EQ(hcsb__task_nexecs(t), 1);
  wfd = open(in, O_WRONLY | O_NONBLOCK);
  CHECK(wfd >= 0);
  e = hcsb__task_proc(t, "e1");
  CHECK(e != NULL);
  CHECK_STR(hcsb__tproc_exec_id(e), "e1");
  memset(&w, 0, sizeof(w));
  CHECK_EQ(hcsb__tproc_wait(e, on_waited, &w, NULL), 0);
  start(&f, e);
  CHECK_EQ(write(wfd, "hello\nrest\n", 11), 11);
  close(wfd);
  /* containerd's writer is gone, but the shim holds its own until CloseIO:
   * the process must not see EOF yet. */
  {
    uint64_t until = uv_now(&f.loop) + 300;
    while (uv_now(&f.loop) < until) {
      uv_run(&f.loop, UV_RUN_NOWAIT);
      uv_update_time(&f.loop);
    }
  }
  CHECK_EQ(w.done, 0);
  CHECK_EQ(hcsb__tproc_close_stdin(e, &msg), 0);
  run_until(&f, &w.done);
  CHECK_EQ(w.status, 5);
  drain_fd(ofd, got, sizeof got);
  CHECK_STR(got, "got hello\nrest\n");
  close(ofd);
  CHECK_EQ(hcsb__tproc_state(hcsb__task_init(t))->state, HCSB__PS_RUNNING);
  delete_proc(&f, e);
  CHECK(hcsb__task_proc(t, "e1") == NULL);
  CHECK_EQ(hcsb__task_nexecs(t), 0);
  /* The init cannot be deleted while it runs. */
  CHECK_EQ(hcsb__tproc_delete(hcsb__task_init(t), on_res, NULL, &msg), -EBUSY);
  hcsb__task_free(t);
  fx_close(&f);
}

/* containerd may write all of stdin and send CloseIO before the start
 * (`echo hello | ctr task exec ...`): the bytes still reach the process. */
static void test_exec_stdin_before_start(void) {
  fx_t f;
  const char *bundle, *in, *out, *msg;
  hcsb__task_t *t;
  hcsb__tproc_t *e;
  waited_t w;
  int wfd, ofd;
  char got[256] = "";
  static const char proc[] =
      "{\"args\":[\"sh\",\"-c\",\"read x; echo got $x\"],\"cwd\":\"/\"}";

  fx_open(&f);
  bundle = make_bundle("b9", "[\"sleep\",\"100\"]", NULL);
  t = create_task(&f, "c9", bundle, "", "", "", 0);
  start(&f, hcsb__task_init(t));
  in = make_fifo("e9-in", NULL);
  out = make_fifo("e9-out", &ofd);
  CHECK_EQ(
      hcsb__task_exec(t, "e9", proc, sizeof proc - 1, 0, in, out, "", &msg), 0);
  e = hcsb__task_proc(t, "e9");
  wfd = open(in, O_WRONLY | O_NONBLOCK);
  CHECK(wfd >= 0);
  CHECK_EQ(write(wfd, "early\n", 6), 6);
  close(wfd);
  CHECK_EQ(hcsb__tproc_close_stdin(e, &msg), 0);
  memset(&w, 0, sizeof(w));
  CHECK_EQ(hcsb__tproc_wait(e, on_waited, &w, NULL), 0);
  start(&f, e);
  run_until(&f, &w.done);
  CHECK_EQ(w.status, 0);
  drain_fd(ofd, got, sizeof got);
  CHECK_STR(got, "got early\n");
  close(ofd);
  hcsb__task_free(t);
  fx_close(&f);
}

/* A terminal exec: its size before the start is applied, a resize after
 * reaches it, and stderr is refused. */
static void test_exec_terminal(void) {
  fx_t f;
  const char *bundle, *out, *msg;
  hcsb__task_t *t;
  hcsb__tproc_t *e;
  waited_t w;
  res_t r;
  int ofd;
  char got[512] = "";
  static const char proc[] =
      "{\"args\":[\"sh\",\"-c\",\"stty size; sleep 1; stty size\"],"
      "\"cwd\":\"/\",\"terminal\":true}";

  fx_open(&f);
  bundle = make_bundle("b5", "[\"sleep\",\"100\"]", NULL);
  t = create_task(&f, "c5", bundle, "", "", "", 0);
  start(&f, hcsb__task_init(t));
  out = make_fifo("e2-out", &ofd);
  CHECK_EQ(
      hcsb__task_exec(t, "e2", proc, sizeof proc - 1, 1, "", out, "/err", &msg),
      -EINVAL);
  CHECK_EQ(
      hcsb__task_exec(t, "e2", proc, sizeof proc - 1, 1, "", out, "", &msg), 0);
  e = hcsb__task_proc(t, "e2");
  CHECK_EQ(hcsb__tproc_terminal(e), 1);
  memset(&r, 0, sizeof(r));
  CHECK_EQ(hcsb__tproc_resize(e, 100, 40, on_res, &r, &msg), 0);
  CHECK_EQ(r.calls, 0);
  run_until(&f, &r.done);
  CHECK_EQ(r.status, 0);
  memset(&w, 0, sizeof(w));
  CHECK_EQ(hcsb__tproc_wait(e, on_waited, &w, NULL), 0);
  start(&f, e);
  /* The size from before the start is there at once. */
  {
    uint64_t end = uv_now(&f.loop) + 20000u * hcsb_test_timeout_scale();
    while (strchr(got, '\n') == NULL) {
      uv_run(&f.loop, UV_RUN_NOWAIT);
      drain_fd(ofd, got, sizeof got);
      uv_update_time(&f.loop);
      if (uv_now(&f.loop) > end) hcsb_test_fail(__FILE__, __LINE__, "no size");
      usleep(10000);
    }
  }
  if (strncmp(got, "40 100", 6) != 0)
    hcsb_test_fail(__FILE__, __LINE__, "first size: [%s]", got);
  memset(&r, 0, sizeof(r));
  CHECK_EQ(hcsb__tproc_resize(e, 120, 50, on_res, &r, &msg), 0);
  run_until(&f, &r.done);
  CHECK_EQ(r.status, 0);
  run_until(&f, &w.done);
  CHECK_EQ(w.status, 0);
  drain_fd(ofd, got, sizeof got);
  close(ofd);
  if (strstr(got, "50 120") == NULL)
    hcsb_test_fail(__FILE__, __LINE__, "output: [%s]", got);
  /* Resizing what has stopped is refused. */
  CHECK_EQ(hcsb__tproc_resize(e, 1, 1, on_res, NULL, &msg), -EBUSY);
  /* A process without a terminal has nothing to resize. */
  CHECK_EQ(hcsb__tproc_resize(hcsb__task_init(t), 1, 1, on_res, NULL, &msg),
           -EBUSY);
  hcsb__task_free(t);
  fx_close(&f);
}

/* Kill with all, Pids and Stats of a running container. */
static void props_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                     const char *msg, const hcsb_properties_t *props) {
  res_t *r = data;

  (void)gerr;
  (void)msg;
  r->done = 1;
  r->calls++;
  r->status = status;
  if (status == 0 && props->has_process_list)
    r->status = (int)props->nprocesses;
  if (status == 0 && !props->has_process_list)
    r->status = props->metrics != NULL ? 1000 : -1;
}

static void test_kill_all_pids_stats(void) {
  fx_t f;
  const char *bundle, *msg;
  hcsb__task_t *t;
  hcsb__tproc_t *init, *e;
  waited_t wi, we;
  res_t r;
  static const char proc[] = "{\"args\":[\"sleep\",\"100\"],\"cwd\":\"/\"}";

  fx_open(&f);
  bundle = make_bundle("b6", "[\"sleep\",\"100\"]", NULL);
  t = create_task(&f, "c6", bundle, "", "", "", 0);
  init = hcsb__task_init(t);
  start(&f, init);
  CHECK_EQ(hcsb__task_exec(t, "e3", proc, sizeof proc - 1, 0, "", "", "", &msg),
           0);
  e = hcsb__task_proc(t, "e3");
  start(&f, e);
  CHECK(hcsb__task_proc_by_pid(t, hcsb__tproc_state(e)->pid) == e);
  memset(&r, 0, sizeof(r));
  CHECK_EQ(
      hcsb__task_properties(t, HCSB_PROPERTY_PROCESS_LIST, props_cb, &r, &msg),
      0);
  run_until(&f, &r.done);
  CHECK(r.status >= 2);
  memset(&r, 0, sizeof(r));
  CHECK_EQ(
      hcsb__task_properties(t, HCSB_PROPERTY_STATISTICS, props_cb, &r, &msg),
      0);
  run_until(&f, &r.done);
  CHECK_EQ(r.status, 1000);
  memset(&wi, 0, sizeof(wi));
  memset(&we, 0, sizeof(we));
  CHECK_EQ(hcsb__tproc_wait(init, on_waited, &wi, NULL), 0);
  CHECK_EQ(hcsb__tproc_wait(e, on_waited, &we, NULL), 0);
  memset(&r, 0, sizeof(r));
  CHECK_EQ(hcsb__tproc_kill(init, 15, 1, on_res, &r, &msg), 0);
  CHECK_EQ(hcsb__tproc_kill(init, 0, 0, on_res, NULL, &msg), -EINVAL);
  CHECK_EQ(hcsb__tproc_kill(init, 65, 0, on_res, NULL, &msg), -EINVAL);
  run_until(&f, &r.done);
  CHECK_EQ(r.status, 0);
  run_until(&f, &wi.done);
  run_until(&f, &we.done);
  CHECK_EQ(wi.status, 128 + 15);
  CHECK_EQ(we.status, 128 + 15);
  CHECK_EQ(f.exits, 2);
  /* Stopped: no more queries. */
  CHECK_EQ(
      hcsb__task_properties(t, HCSB_PROPERTY_STATISTICS, props_cb, &r, &msg),
      -EBUSY);
  hcsb__task_free(t);
  fx_close(&f);
}

/* Killing a process that never started: the reply, then its exit (128 +
 * signal), then it can be deleted. */
static void test_kill_unstarted(void) {
  fx_t f;
  const char *bundle, *msg;
  hcsb__task_t *t;
  hcsb__tproc_t *init;
  res_t r;
  waited_t w;

  fx_open(&f);
  bundle = make_bundle("b7", "[\"true\"]", NULL);
  t = create_task(&f, "c7", bundle, "", "", "", 0);
  init = hcsb__task_init(t);
  memset(&w, 0, sizeof(w));
  CHECK_EQ(hcsb__tproc_wait(init, on_waited, &w, NULL), 0);
  memset(&r, 0, sizeof(r));
  CHECK_EQ(hcsb__tproc_kill(init, 9, 0, on_res, &r, &msg), 0);
  CHECK_EQ(r.calls, 0);
  CHECK_EQ(f.exits, 0);
  run_until(&f, &w.done);
  CHECK_EQ(r.calls, 1);
  CHECK_EQ(r.status, 0);
  CHECK_EQ(f.exits, 1);
  CHECK_EQ(w.status, 137);
  CHECK_EQ(hcsb__tproc_state(init)->pid, 0);
  delete_proc(&f, init);
  hcsb__task_free(t);
  fx_close(&f);
}

/* Freeing a task with a wait held: the wait hears p == NULL once, and
 * nothing else runs. */
static void test_free_with_waits(void) {
  fx_t f;
  const char *bundle;
  hcsb__task_t *t;
  waited_t w;

  fx_open(&f);
  bundle = make_bundle("b8", "[\"sleep\",\"100\"]", NULL);
  t = create_task(&f, "c8", bundle, "", "", "", 0);
  start(&f, hcsb__task_init(t));
  memset(&w, 0, sizeof(w));
  CHECK_EQ(hcsb__tproc_wait(hcsb__task_init(t), on_waited, &w, NULL), 0);
  hcsb__task_free(t);
  CHECK_EQ(w.calls, 1);
  CHECK(w.p == NULL);
  CHECK_EQ(f.exits, 0);
  fx_close(&f);
  CHECK_EQ(w.calls, 1);
  CHECK_EQ(f.exits, 0);
}

/* A VM whose image is missing: the ready callback says so (later, not
 * inside), and a close right after the start, before the image check has
 * answered, still ends once and frees everything. */
static void on_ready_failed(void *data, hcsb__sandbox_t *sb, int status,
                            const char *msg) {
  res_t *r = data;

  (void)sb;
  r->calls++;
  r->done = 1;
  r->status = status;
  snprintf(r->msg, sizeof r->msg, "%s", msg);
}

typedef struct closer_s {
  hcsb__sandbox_t *sb;
  int *closed;
} closer_t;

static void close_from_check(uv_check_t *h) {
  closer_t *c = h->data;

  hcsb__sandbox_close(c->sb, on_closed, c->closed);
  uv_close((uv_handle_t *)h, NULL);
}

static void test_sandbox_no_image(void) {
  uv_loop_t loop;
  hcsb__shim_config_t cfg;
  hcsb__sandbox_t *sb;
  res_t r;
  int closed = 0, i;

  memset(&cfg, 0, sizeof(cfg));
  cfg.kernel = (char *)"/nonexistent/vmlinuz";
  cfg.initrd = (char *)"/nonexistent/initrd.img";
  cfg.mkuvm = (char *)"hcsb-mkuvm";
  cfg.image_dir = (char *)"/nonexistent";
  cfg.log_level = HCSB_LOG_ERROR;
  hcsb__shim_log_set_level(HCSB_LOG_ERROR);
  for (i = 0; i < 3; i++) {
    uv_check_t chk;
    closer_t c;
    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(hcsb__sandbox_start(&loop, &cfg, NULL, NULL, &sb), 0);
    CHECK_EQ(hcsb__sandbox_is_vm(sb), 1);
    memset(&r, 0, sizeof(r));
    CHECK_EQ(hcsb__sandbox_when_ready(sb, on_ready_failed, &r), 0);
    CHECK_EQ(r.calls, 0);
    if (i == 0) {
      /* Wait for the answer: the image is missing. */
      while (!r.done) uv_run(&loop, UV_RUN_ONCE);
      CHECK_EQ(r.status, -ENOENT);
      CHECK(strstr(r.msg, "no utility VM image") != NULL);
      CHECK(hcsb__sandbox_conn(sb) == NULL);
    }
    closed = 0;
    if (i == 2) {
      /* The close after the poll of the turn whose end brings the image
       * check's answer (as a SIGTERM does in the shim): that answer then
       * comes between the close and the close's own turn. */
      c.sb = sb;
      c.closed = &closed;
      uv_check_init(&loop, &chk);
      chk.data = &c;
      uv_check_start(&chk, close_from_check);
    } else {
      hcsb__sandbox_close(sb, on_closed, &closed);
      hcsb__sandbox_close(sb, on_closed, &closed); /* a second: nothing */
    }
    CHECK_EQ(closed, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(closed, 1);
    CHECK_EQ(r.calls, 1); /* i >= 1: told of the close (-ECANCELED) */
    if (i >= 1) CHECK_EQ(r.status, i == 1 ? -ECANCELED : r.status);
    CHECK_EQ(uv_loop_close(&loop), 0);
  }
}

/* A VM that never answers (a fake QEMU that starts no guest) under KVM:
 * the failure names the boot timeout and suggests accel = tcg, as a guest
 * hung on broken nested KVM looks exactly like this.  Under TCG the same
 * timeout says nothing about accelerators. */
static void test_sandbox_kvm_boot_timeout(void) {
  static const char *accels[] = {"kvm", "tcg"};
  char kernel[1024], initrd[1024], fake[1024];
  int i, fd;

  snprintf(fake, sizeof fake, "%s", hcsb_test_build_path("test/uvm-fake-qemu"));
  snprintf(kernel, sizeof kernel, "%s/vmlinuz", hcsb_test_tmpdir());
  snprintf(initrd, sizeof initrd, "%s/initrd.img", hcsb_test_tmpdir());
  fd = open(kernel, O_WRONLY | O_CREAT, 0644);
  CHECK(fd >= 0);
  close(fd);
  fd = open(initrd, O_WRONLY | O_CREAT, 0644);
  CHECK(fd >= 0);
  close(fd);
  setenv("FAKE_QEMU_MODE", "no-guest", 1);
  hcsb__shim_log_set_level(HCSB_LOG_ERROR);
  for (i = 0; i < 2; i++) {
    uv_loop_t loop;
    hcsb__shim_config_t cfg;
    hcsb__sandbox_t *sb;
    res_t r;
    int closed = 0;

    memset(&cfg, 0, sizeof(cfg));
    cfg.path = (char *)"/etc/test-shim.conf";
    cfg.kernel = kernel;
    cfg.initrd = initrd;
    cfg.mkuvm = (char *)"hcsb-mkuvm";
    cfg.image_dir = (char *)hcsb_test_tmpdir();
    cfg.qemu = fake;
    cfg.vsockd = fake;
    cfg.run_dir = (char *)hcsb_test_tmpdir();
    cfg.accel = (char *)accels[i];
    cfg.memory_mb = 256;
    cfg.cpus = 1;
    cfg.boot_timeout_ms = 500 * hcsb_test_timeout_scale();
    cfg.log_level = HCSB_LOG_ERROR;
    CHECK_EQ(uv_loop_init(&loop), 0);
    CHECK_EQ(hcsb__sandbox_start(&loop, &cfg, NULL, NULL, &sb), 0);
    memset(&r, 0, sizeof(r));
    CHECK_EQ(hcsb__sandbox_when_ready(sb, on_ready_failed, &r), 0);
    while (!r.done) uv_run(&loop, UV_RUN_ONCE);
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.status, -ETIMEDOUT);
    CHECK(strstr(r.msg, "the utility VM did not start") != NULL);
    if (i == 0) {
      CHECK(strstr(r.msg, "under KVM") != NULL);
      CHECK(strstr(r.msg, "set accel = tcg in /etc/test-shim.conf") != NULL);
      CHECK(strstr(r.msg, "boot_timeout_ms") != NULL);
    } else {
      CHECK(strstr(r.msg, "accel") == NULL);
    }
    hcsb__sandbox_close(sb, on_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(closed, 1);
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(uv_loop_close(&loop), 0);
  }
  unsetenv("FAKE_QEMU_MODE");
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(init_output_and_exit), TEST_ENTRY(create_refusals),
      TEST_ENTRY(exec_stdin),           TEST_ENTRY(exec_stdin_before_start),
      TEST_ENTRY(exec_terminal),        TEST_ENTRY(kill_all_pids_stats),
      TEST_ENTRY(kill_unstarted),       TEST_ENTRY(free_with_waits),
      TEST_ENTRY(sandbox_no_image),     TEST_ENTRY(sandbox_kvm_boot_timeout),
  };
  (void)the_fx;
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
