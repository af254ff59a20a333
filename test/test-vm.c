/* The library against hcsb-guest inside a real Linux VM (QEMU), over the
 * guest kernel's virtio-vsock driver, hcsb-vsockd and the hybrid-vsock
 * transport.  Run by `make check-vm` (scripts/check-vm) under scripts/uvm,
 * which boots one VM per group and sets HCSB_UVM_GUEST; the VM's init
 * restarts the guest after each session, so every case opens its own
 * connection.  Cases named vm_kill_* end the VM and run in a group of
 * their own. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test-api-util.h"

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Runs the loop until the process's stdout holds `text`. */
static void run_until_out(uv_loop_t *loop, api_proc_t *r, const char *text) {
  double end = mono_ms() + 30000;

  while ((r->out == NULL || strstr(r->out, text) == NULL) && !r->out_eof &&
         mono_ms() < end)
    uv_run(loop, UV_RUN_ONCE);
  if (r->out == NULL || strstr(r->out, text) == NULL)
    hcsb_test_fail(__FILE__, __LINE__, "no \"%s\" in the output (\"%s\")", text,
                   r->out != NULL ? r->out : "");
}

static const char *vm_address(void) {
  const char *a = getenv("HCSB_UVM_GUEST");
  if (a == NULL || a[0] == '\0')
    hcsb_test_fail(__FILE__, __LINE__,
                   "HCSB_UVM_GUEST is not set: run under scripts/uvm "
                   "(make check-vm)");
  return a;
}

static void vm_open(api_guest_t *g, uv_loop_t *loop) {
  uv_loop_init(loop);
  /* The guest re-dials every 100 ms, but it is restarted by the VM's init
   * after each session, under TCG, on a shared machine. */
  api_open_address(g, loop, vm_address(), 30000);
}

/* ------------------------------------------------------------------------ */
/* Session */

static void test_vm_negotiate(void) {
  const char *t0 = getenv("HCSB_UVM_T0_MS");
  struct timespec now;
  uv_loop_t loop;
  api_guest_t g;

  vm_open(&g, &loop);
  clock_gettime(CLOCK_REALTIME, &now);
  CHECK_EQ(hcsb_conn_protocol(g.conn), 4);
  CHECK_STR(hcsb_conn_os(g.conn), "linux");
  /* The first session of the VM: QEMU's start to a negotiated bridge. */
  if (t0 != NULL)
    printf("# boot to negotiated: %.2f s\n",
           ((double)now.tv_sec * 1e3 + now.tv_nsec / 1e6 - atof(t0)) / 1e3);
  api_close(&g);
}

static void test_vm_caps(void) {
  const hcsb_caps_t *caps;
  uv_loop_t loop;
  api_guest_t g;

  vm_open(&g, &loop);
  caps = hcsb_conn_caps(g.conn);
  CHECK(caps != NULL);
  /* What hcsshim's GCS v0.11.8 answers (protocol.md §11.1). */
  CHECK_STR(caps->runtime_os_type, "Linux");
  CHECK_EQ(caps->nschema_versions, 1);
  CHECK_EQ(caps->schema_versions[0].major, 2);
  CHECK_EQ(caps->schema_versions[0].minor, 1);
  CHECK(caps->guest.signal_process_supported);
  CHECK(caps->guest.dump_stacks_supported);
  CHECK(caps->guest.delete_container_state_supported);
  CHECK(caps->guest.namespace_add_request_supported);
  CHECK(!caps->send_host_create_message);
  CHECK(!caps->send_host_start_message);
  api_close(&g);
}

/* ------------------------------------------------------------------------ */
/* Processes */

static void test_vm_stdio_1mb_round_trip(void) {
  const char *argv[] = {
      "/bin/sh", "-c", "cat; echo \"to-stderr $(uname -s)\" >&2; exit 3", NULL};
  size_t n = 1u << 20, i;
  uint32_t x = 2463534242u;
  char *in = malloc(n + 1);
  uv_loop_t loop;
  api_guest_t g;
  api_proc_t r;

  CHECK(in != NULL);
  /* Every byte value, no NUL (the helper writes with strlen). */
  for (i = 0; i < n; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    in[i] = (char)(1 + x % 255);
  }
  in[n] = '\0';
  vm_open(&g, &loop);
  api_uvm_start(&g, &r, argv, "ioe");
  api_proc_finish(&g, &r, in);
  CHECK_EQ(r.wait_status, 0);
  CHECK_EQ(r.exit_code, 3);
  CHECK_EQ(r.nout, n);
  CHECK_MEM(r.out, in, n);
  CHECK_STR(r.err, "to-stderr Linux\n");
  api_proc_free(&r);
  free(in);
  api_close(&g);
}

static void test_vm_exit_codes(void) {
  static const char *const scripts[] = {"exit 0", "exit 1", "exit 42",
                                        "exit 255", "kill -9 $$"};
  static const uint32_t want[] = {0, 1, 42, 255, 0xFFFFFFFFu};
  uv_loop_t loop;
  api_guest_t g;
  size_t i;

  vm_open(&g, &loop);
  for (i = 0; i < sizeof want / sizeof want[0]; i++) {
    const char *argv[] = {"/bin/sh", "-c", scripts[i], NULL};
    api_proc_t r;
    api_uvm_start(&g, &r, argv, "");
    api_proc_finish(&g, &r, NULL);
    CHECK_EQ(r.wait_status, 0);
    CHECK_U64(r.exit_code, want[i]);
    api_proc_free(&r);
  }
  api_close(&g);
}

/* What the rig's init set up, seen from a process in the VM. */
static void test_vm_guest_userland(void) {
  static const char *const want[] = {
      "proc /proc proc", "sysfs /sys sysfs", "devtmpfs /dev devtmpfs",
      "devpts /dev/pts devpts", "tmpfs /run tmpfs", "tmpfs /tmp tmpfs",
      "/sys/fs/cgroup/cpu cgroup", "/sys/fs/cgroup/cpuacct cgroup",
      "/sys/fs/cgroup/cpuset cgroup", "/sys/fs/cgroup/memory cgroup",
      "/sys/fs/cgroup/devices cgroup", "/sys/fs/cgroup/freezer cgroup",
      "/sys/fs/cgroup/blkio cgroup", "/sys/fs/cgroup/pids cgroup",
      "/sys/fs/cgroup/systemd cgroup", "name=systemd",
      "/sys/fs/cgroup/unified cgroup2",
      /* the guest kernel's own driver, loaded after its dependencies */
      "vmw_vsock_virtio_transport ", "vmw_vsock_virtio_transport_common ",
      "virtio_pci ", "Linux"};
  const char *argv[] = {"/bin/sh", "-c",
                        "cat /proc/mounts /proc/modules; uname -s", NULL};
  uv_loop_t loop;
  api_guest_t g;
  api_proc_t r;
  size_t i;

  vm_open(&g, &loop);
  api_uvm_start(&g, &r, argv, "o");
  api_proc_finish(&g, &r, NULL);
  CHECK_EQ(r.exit_code, 0);
  CHECK(r.out != NULL);
  for (i = 0; i < sizeof want / sizeof want[0]; i++)
    if (strstr(r.out, want[i]) == NULL)
      hcsb_test_fail(__FILE__, __LINE__, "no \"%s\" in:\n%s", want[i], r.out);
  api_proc_free(&r);
  api_close(&g);
}

typedef struct many_s {
  api_proc_t r[64];
} many_t;

static void test_vm_64_parallel(void) {
  static many_t m;
  char scripts[64][64];
  uv_loop_t loop;
  api_guest_t g;
  int i, done;

  vm_open(&g, &loop);
  memset(&m, 0, sizeof m);
  for (i = 0; i < 64; i++) {
    const char *argv[4];
    hcsb_process_config_t cfg;
    snprintf(scripts[i], sizeof scripts[i],
             "echo out-%d; echo err-%d >&2; exit %d", i, i, i);
    argv[0] = "/bin/sh";
    argv[1] = "-c";
    argv[2] = scripts[i];
    argv[3] = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.command_args = argv;
    cfg.ncommand_args = 3;
    cfg.create_stdout_pipe = 1;
    cfg.create_stderr_pipe = 1;
    /* All 64 ExecuteProcess calls are in flight together. */
    CHECK_EQ(hcsb_conn_create_process(g.conn, NULL, &cfg, api_proc_created,
                                      &m.r[i], &m.r[i].p),
             0);
    CHECK_EQ(hcsb_process_read_start(m.r[i].p, api_proc_read, &m.r[i]), 0);
    CHECK_EQ(hcsb_process_wait(m.r[i].p, 0, api_proc_waited, &m.r[i]), 0);
  }
  done = 0;
  {
    double end = mono_ms() + 60000;
    while (!done && mono_ms() < end) {
      uv_run(&loop, UV_RUN_ONCE);
      done = 1;
      for (i = 0; i < 64; i++)
        if (!m.r[i].waited || !m.r[i].out_eof || !m.r[i].err_eof) done = 0;
    }
  }
  CHECK(done);
  for (i = 0; i < 64; i++) {
    char want[32];
    CHECK_EQ(m.r[i].created, 1);
    CHECK_EQ(m.r[i].create_status, 0);
    CHECK_EQ(m.r[i].wait_status, 0);
    CHECK_EQ(m.r[i].exit_code, (uint32_t)i);
    snprintf(want, sizeof want, "out-%d\n", i);
    CHECK_STR(m.r[i].out, want);
    snprintf(want, sizeof want, "err-%d\n", i);
    CHECK_STR(m.r[i].err, want);
    hcsb_process_close(m.r[i].p, api_proc_closed, &m.r[i]);
  }
  for (i = 0; i < 64; i++) {
    RUN_UNTIL(&loop, m.r[i].closed);
    api_proc_free(&m.r[i]);
  }
  api_close(&g);
}

/* ------------------------------------------------------------------------ */
/* Containers */

#define SPEC                                                             \
  "{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"terminal\":false,"       \
  "\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"/bin/sh\",\"-c\",\"%s\"]," \
  "\"env\":[\"PATH=/bin\"],\"cwd\":\"/\"},\"root\":{\"path\":\"/\"},"    \
  "\"hostname\":\"vm-ctr\"}"

static void ctr_create(api_guest_t *g, api_ctr_t *t, const char *id,
                       const char *init_script) {
  hcsb_container_config_t cfg;
  char spec[1024];

  memset(t, 0, sizeof *t);
  snprintf(spec, sizeof spec, SPEC, init_script);
  memset(&cfg, 0, sizeof cfg);
  cfg.id = id;
  cfg.oci_spec_json = spec;
  CHECK_EQ(hcsb_conn_create_container(g->conn, NULL, &cfg, api_ctr_created, t,
                                      &t->c),
           0);
  RUN_UNTIL(g->loop, t->created);
  CHECK_EQ(t->create_status, 0);
}

/* The container's init (argv NULL) or an exec. */
static void ctr_proc(api_guest_t *g, api_ctr_t *t, api_proc_t *r,
                     const char *const *argv, const char *pipes, int tty,
                     const char *const *env, size_t nenv) {
  hcsb_process_config_t cfg;

  memset(r, 0, sizeof *r);
  api_proc_config(&cfg, argv, pipes, tty);
  cfg.environment = env;
  cfg.nenvironment = nenv;
  cfg.console_height = tty ? 40 : 0;
  cfg.console_width = tty ? 132 : 0;
  CHECK_EQ(hcsb_container_create_process(t->c, NULL, &cfg, api_proc_created, r,
                                         &r->p),
           0);
  RUN_UNTIL(g->loop, r->created);
  CHECK_EQ(r->create_status, 0);
}

typedef struct props_s {
  int done, status, init_listed;
  uint32_t init_pid;
} props_t;

static void props_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                     const hcsb_properties_t *props) {
  props_t *s = data;
  size_t i;

  s->done++;
  s->status = status;
  if (props != NULL)
    for (i = 0; i < props->nprocesses; i++)
      if (props->processes[i].process_id == s->init_pid) s->init_listed++;
}

static void signal_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                      int delivered) {
  api_done_t *d = data;
  d->done++;
  d->status = status;
  d->hresult = (uint32_t)delivered;
}

/* create -> start -> init with stdio -> exec -> signal -> exit notification
 * -> properties -> delete */
static void test_vm_container_lifecycle(void) {
  const char *exec_argv[] = {"/bin/sh", "-c", "echo \"exec:$X:$(pwd)\"; exit 5",
                             NULL};
  const char *exec_env[] = {"X=forty-two", "PATH=/bin"};
  api_done_t start = {0}, sig = {0}, del = {0};
  props_t pl = {0};
  api_proc_t init, ex;
  uv_loop_t loop;
  api_guest_t g;
  api_ctr_t t, w;

  vm_open(&g, &loop);
  ctr_create(&g, &t, "vm-life",
             "trap 'echo got-TERM; exit 143' TERM; echo init-up; "
             "read l; echo got:$l; sleep 1000 & wait");
  CHECK_EQ(hcsb_container_start(t.c, NULL, api_done, &start), 0);
  RUN_UNTIL(&loop, start.done);
  CHECK_EQ(start.status, 0);
  memset(&w, 0, sizeof w);
  CHECK_EQ(hcsb_container_wait(t.c, 0, api_ctr_waited, &w), 0);

  ctr_proc(&g, &t, &init, NULL, "io", 0, NULL, 0);
  CHECK_EQ(hcsb_process_read_start(init.p, api_proc_read, &init), 0);
  CHECK_EQ(hcsb_process_write(init.p, "hello\n", 6, NULL, NULL), 0);
  run_until_out(&loop, &init, "got:hello\n");
  CHECK_STR(init.out, "init-up\ngot:hello\n");

  ctr_proc(&g, &t, &ex, exec_argv, "o", 0, exec_env, 2);
  api_proc_finish(&g, &ex, NULL);
  CHECK_EQ(ex.exit_code, 5);
  CHECK_STR(ex.out, "exec:forty-two:/\n");
  api_proc_free(&ex);

  pl.init_pid = hcsb_process_pid(init.p);
  CHECK_EQ(hcsb_container_process_list(t.c, NULL, props_cb, &pl), 0);
  RUN_UNTIL(&loop, pl.done);
  CHECK_EQ(pl.status, 0);
  CHECK_EQ(pl.init_listed, 1);

  /* SIGTERM reaches the init through its trap; the exit is notified. */
  CHECK_EQ(hcsb_process_signal(init.p, NULL, SIGTERM, signal_cb, &sig), 0);
  RUN_UNTIL(&loop, sig.done);
  CHECK_EQ(sig.status, 0);
  CHECK_EQ(sig.hresult, 1);
  CHECK_EQ(hcsb_process_wait(init.p, 0, api_proc_waited, &init), 0);
  RUN_UNTIL(&loop, init.waited);
  CHECK_EQ(init.exit_code, 143);
  RUN_UNTIL(&loop, init.out_eof);
  CHECK(strstr(init.out, "got-TERM\n") != NULL);
  RUN_UNTIL(&loop, w.waited);
  CHECK_EQ(w.wait_status, 0);
  CHECK_EQ(w.exit.end, HCSB_CONTAINER_EXITED);
  hcsb_process_close(init.p, api_proc_closed, &init);
  RUN_UNTIL(&loop, init.closed);
  api_proc_free(&init);

  CHECK_EQ(
      hcsb_conn_delete_container_state(g.conn, NULL, "vm-life", api_done, &del),
      0);
  RUN_UNTIL(&loop, del.done);
  CHECK_EQ(del.status, 0);
  hcsb_container_close(t.c, api_ctr_closed, &t);
  RUN_UNTIL(&loop, t.closed);
  api_close(&g);
}

static void test_vm_tty_resize(void) {
  const char *argv[] = {"/bin/sh", "-c", "stty size; read x; stty size; exit 9",
                        NULL};
  api_done_t rs = {0};
  api_proc_t init, r;
  uv_loop_t loop;
  api_guest_t g;
  api_ctr_t t;

  vm_open(&g, &loop);
  ctr_create(&g, &t, "vm-tty", "sleep 1000");
  ctr_proc(&g, &t, &init, NULL, "", 0, NULL, 0);
  ctr_proc(&g, &t, &r, argv, "io", 1, NULL, 0);
  CHECK_EQ(hcsb_process_read_start(r.p, api_proc_read, &r), 0);
  run_until_out(&loop, &r, "\n");
  CHECK_STR(r.out, "40 132\r\n");
  CHECK_EQ(hcsb_process_resize_console(r.p, NULL, 120, 33, api_done, &rs), 0);
  RUN_UNTIL(&loop, rs.done);
  CHECK_EQ(rs.status, 0);
  api_proc_finish(&g, &r, "go\r");
  CHECK_EQ(r.exit_code, 9);
  CHECK(strstr(r.out, "33 120\r\n") != NULL);
  api_proc_free(&r);
  hcsb_process_close(init.p, api_proc_closed, &init);
  RUN_UNTIL(&loop, init.closed);
  hcsb_container_close(t.c, api_ctr_closed, &t);
  RUN_UNTIL(&loop, t.closed);
  api_close(&g);
}

/* ------------------------------------------------------------------------ */
/* Call rates over vsock, and over a Unix socket to the emulator on this
 * host, in the same run: GetProperties(ProcessList), what a shim polls, and
 * DumpStacks, whose guest side is a few lines of text (so its rate is
 * closer to the transport's round trip). */

typedef struct rate_s {
  props_t p;
  int failed;
  uint32_t init_pid;
  hcsb_container_t *c;
  int dump; /* DumpStacks instead of GetProperties */
} rate_t;

static void rate_props_cb(void *data, int status,
                          const hcsb_guest_error_t *gerr,
                          const hcsb_properties_t *props) {
  rate_t *r = data;
  int before = r->p.init_listed;

  props_cb(&r->p, status, gerr, props);
  if (status != 0 || r->p.init_listed != before + 1) r->failed++;
}

static void rate_dump_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                         const char *text, size_t len) {
  rate_t *r = data;

  r->p.done++;
  if (status != 0 || text == NULL || strstr(text, "container vm-rate") == NULL)
    r->failed++;
}

/* Calls per second: `n` calls, at most `window` outstanding. */
static double rate(api_guest_t *g, rate_t *r, int n, int window) {
  double t0, dt;
  int sent = 0;

  r->p.done = r->p.init_listed = r->failed = 0;
  r->p.init_pid = r->init_pid;
  t0 = mono_ms();
  while (r->p.done < n) {
    while (sent < n && sent - r->p.done < window) {
      if (r->dump)
        CHECK_EQ(hcsb_conn_dump_stacks(g->conn, NULL, rate_dump_cb, r), 0);
      else
        CHECK_EQ(hcsb_container_process_list(r->c, NULL, rate_props_cb, r), 0);
      sent++;
    }
    uv_run(g->loop, UV_RUN_ONCE);
    CHECK(mono_ms() - t0 < 60000);
  }
  dt = mono_ms() - t0;
  CHECK_EQ(r->failed, 0);
  CHECK_EQ(r->p.done, n);
  return n * 1000.0 / dt;
}

/* rates[]: GetProperties sequential, pipelined; DumpStacks the same. */
static void measure(api_guest_t *g, double rates[4]) {
  api_proc_t init;
  rate_t r;
  api_ctr_t t;

  ctr_create(g, &t, "vm-rate", "sleep 1000");
  ctr_proc(g, &t, &init, NULL, "", 0, NULL, 0);
  memset(&r, 0, sizeof r);
  r.c = t.c;
  r.init_pid = hcsb_process_pid(init.p);
  /* Few calls: under TCG the guest's side of each GetProperties (a /proc
   * walk for the process list) costs milliseconds. */
  rate(g, &r, 10, 1); /* warm-up */
  rates[0] = rate(g, &r, 60, 1);
  rates[1] = rate(g, &r, 300, 64);
  r.dump = 1;
  rates[2] = rate(g, &r, 200, 1);
  rates[3] = rate(g, &r, 1000, 64);
  hcsb_process_close(init.p, api_proc_closed, &init);
  RUN_UNTIL(g->loop, init.closed);
  hcsb_container_close(t.c, api_ctr_closed, &t);
  RUN_UNTIL(g->loop, t.closed);
}

static void test_vm_rates_vsock_vs_unix(void) {
  static const char *const names[4] = {
      "GetProperties sequential", "GetProperties pipelined (64 in flight)",
      "DumpStacks sequential", "DumpStacks pipelined (64 in flight)"};
  double v[4], u[4];
  uv_loop_t loop, loop2;
  api_guest_t g, h;
  int i;

  vm_open(&g, &loop);
  measure(&g, v);
  api_close(&g);
  uv_loop_init(&loop2);
  api_open_unix(&h, &loop2, NULL);
  measure(&h, u);
  api_close(&h);
  for (i = 0; i < 4; i++)
    printf("# %s: vsock %.0f/s, unix %.0f/s (vsock/unix %.2f)\n", names[i],
           v[i], u[i], v[i] / u[i]);
}

/* ------------------------------------------------------------------------ */
/* Losing the guest */

typedef struct loss_s {
  api_proc_t r;
  api_done_t stacks_done;
  api_ctr_t w;
  int stacks;
  int out_ends; /* read callbacks with nread < 0 */
  ssize_t out_end;
} loss_t;

static void stacks_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                      const char *text, size_t len) {
  loss_t *l = data;
  l->stacks++;
  l->stacks_done.status = status;
}

/* stdout of the process that is running when the guest goes away: its
 * stream may end (EOF or reset) but only once. */
static void loss_read(void *data, hcsb_process_t *p, int fd, const char *buf,
                      ssize_t nread) {
  loss_t *l = data;

  if (nread < 0) {
    l->out_ends++;
    l->out_end = nread;
    return;
  }
  api_proc_read(&l->r, p, fd, buf, nread);
}

/* Everything pending when the guest goes away: a process wait with its
 * stdout open, and a container wait. */
static void arm(api_guest_t *g, loss_t *l, api_ctr_t *t) {
  const char *argv[] = {"/bin/sh", "-c", "echo started; sleep 1000", NULL};

  memset(l, 0, sizeof *l);
  ctr_create(g, t, "vm-loss", "sleep 1000");
  api_uvm_start(g, &l->r, argv, "o");
  CHECK_EQ(hcsb_process_read_start(l->r.p, loss_read, l), 0);
  run_until_out(g->loop, &l->r, "started\n");
  CHECK_STR(l->r.out, "started\n");
  CHECK_EQ(hcsb_process_wait(l->r.p, 0, api_proc_waited, &l->r), 0);
  CHECK_EQ(hcsb_container_wait(t->c, 0, api_ctr_waited, &l->w), 0);
}

static void check_lost(api_guest_t *g, loss_t *l, api_ctr_t *t) {
  double end = mono_ms() + 30000;

  while ((!g->lost || !l->r.waited || !l->w.waited) && mono_ms() < end)
    uv_run(g->loop, UV_RUN_ONCE);
  CHECK_EQ(g->lost, 1);
  CHECK(g->lost_status == -ECONNRESET || g->lost_status == -EPIPE);
  CHECK_EQ(l->r.waited, 1);
  CHECK(l->r.wait_status == -ECONNRESET || l->r.wait_status == -EPIPE);
  CHECK_EQ(l->w.waited, 1);
  CHECK(l->w.wait_status == -ECONNRESET || l->w.wait_status == -EPIPE);
  CHECK_EQ(l->w.exit.end, HCSB_CONTAINER_CONNECTION_LOST);
  /* Settle: nothing fires a second time. */
  {
    double settle = mono_ms() + 500;
    while (mono_ms() < settle) uv_run(g->loop, UV_RUN_NOWAIT);
  }
  CHECK_EQ(g->lost, 1);
  CHECK_EQ(l->r.waited, 1);
  CHECK_EQ(l->w.waited, 1);
  CHECK(l->out_ends <= 1);
  if (l->out_ends == 1)
    CHECK(l->out_end == UV_EOF || l->out_end == UV_ECONNRESET ||
          l->out_end == UV_ECANCELED);
  hcsb_process_close(l->r.p, api_proc_closed, &l->r);
  RUN_UNTIL(g->loop, l->r.closed);
  CHECK_EQ(l->r.closed, 1);
  CHECK(l->out_ends <= 1);
  api_proc_free(&l->r);
  hcsb_container_close(t->c, api_ctr_closed, t);
  RUN_UNTIL(g->loop, t->closed);
  CHECK_EQ(t->closed, 1);
}

/* The guest program is killed inside the VM (as a crashing GCS would be):
 * the host sees the connection go. */
static void test_vm_guest_crash(void) {
  /* The pause lets the guest answer the ExecuteProcess first. */
  const char *argv[] = {"/bin/sh", "-c", "sleep 0.5; kill -9 $PPID", NULL};
  api_proc_t killer;
  uv_loop_t loop;
  api_guest_t g;
  loss_t l;
  api_ctr_t t;

  vm_open(&g, &loop);
  arm(&g, &l, &t);
  memset(&killer, 0, sizeof killer);
  api_uvm_start(&g, &killer, argv, "");
  check_lost(&g, &l, &t);
  hcsb_process_close(killer.p, api_proc_closed, &killer);
  RUN_UNTIL(&loop, killer.closed);
  api_close(&g);
}

/* QEMU is SIGKILLed with calls in flight (its vhost-user backend then ends
 * every connection).  Ends the VM: run last, in its own group. */
static void test_vm_kill_mid_call(void) {
  const char *pid = getenv("HCSB_UVM_QEMU_PID");
  uv_loop_t loop;
  api_guest_t g;
  loss_t l;
  api_ctr_t t;

  CHECK(pid != NULL && atoi(pid) > 1);
  vm_open(&g, &loop);
  arm(&g, &l, &t);
  /* One more call on the wire when the VM dies. */
  CHECK_EQ(hcsb_conn_dump_stacks(g.conn, NULL, stacks_cb, &l), 0);
  CHECK_EQ(kill((pid_t)atoi(pid), SIGKILL), 0);
  check_lost(&g, &l, &t);
  /* The dump either made it back before the kill or failed with the loss,
   * exactly once either way. */
  CHECK_EQ(l.stacks, 1);
  CHECK(l.stacks_done.status == 0 || l.stacks_done.status == -ECONNRESET ||
        l.stacks_done.status == -EPIPE);
  api_close(&g);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY_T(vm_negotiate, 60),
    TEST_ENTRY_T(vm_caps, 60),
    TEST_ENTRY_T(vm_stdio_1mb_round_trip, 120),
    TEST_ENTRY_T(vm_exit_codes, 60),
    TEST_ENTRY_T(vm_guest_userland, 60),
    TEST_ENTRY_T(vm_64_parallel, 120),
    TEST_ENTRY_T(vm_container_lifecycle, 60),
    TEST_ENTRY_T(vm_tty_resize, 60),
    TEST_ENTRY_T(vm_rates_vsock_vs_unix, 180),
    TEST_ENTRY_T(vm_guest_crash, 60),
    TEST_ENTRY_T(vm_kill_mid_call, 60),
};

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
