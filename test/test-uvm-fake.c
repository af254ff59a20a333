/* The utility VM's state machine against a fake QEMU and a fake
 * hcsb-vsockd (test/uvm-fake-qemu.c) that speak QMP and run the emulator
 * as the guest: start, VPMem, the exit callback, close in every state,
 * and a starter killed with SIGKILL.  Every callback exactly once; no
 * process left behind. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hcsbridge.h>

#include "runner.h"

typedef struct vm_s {
  uv_loop_t loop;
  hcsb_uvm_t *u;
  int started, start_status;
  hcsb_conn_t *conn;
  int exits;
  hcsb_uvm_exit_t exit;
  char console[4200], stderr_tail[1100];
  int closed;
  int close_exit_rc;          /* hcsb_uvm_exit_info inside the close callback */
  hcsb_uvm_exit_t close_exit; /* its strings copied below */
  char close_console[4200];
  int qemu_pid, vsockd_pid;
  char run_dir[512];
  int lost;
  int close_in_start; /* close the VM from the start callback */
} vm_t;

typedef struct add_s {
  int calls, status;
  uint32_t dev, refs;
  char mount[128];
} add_t;

static void tick(uv_timer_t *t) {
  (void)t;
}

/* Runs `loop` until `cond` holds or `ms` passed; a ticking timer makes
 * each turn return even when nothing else happens. */
#define RUN_LOOP_FOR(loop, cond, ms)                                           \
  do {                                                                         \
    uv_timer_t tick_;                                                          \
    double end_ = hcsb_test_now_ms() + (double)(ms)*hcsb_test_timeout_scale(); \
    uv_timer_init((loop), &tick_);                                             \
    uv_timer_start(&tick_, tick, 10, 10);                                      \
    while (!(cond) && hcsb_test_now_ms() < end_) uv_run((loop), UV_RUN_ONCE);  \
    uv_close((uv_handle_t *)&tick_, NULL);                                     \
    uv_run((loop), UV_RUN_NOWAIT);                                             \
  } while (0)
#define RUN_FOR(vm, cond, ms) RUN_LOOP_FOR(&(vm)->loop, cond, ms)

static void logcb(void *d, hcsb_log_level_t l, const char *a, const char *m) {
  (void)d, (void)a;
  if (getenv("HCSB_TEST_VERBOSE")) fprintf(stderr, "  log %d: %s\n", l, m);
}

static void on_closed(void *data) {
  vm_t *vm = data;
  vm->closed++;
  vm->close_exit_rc = hcsb_uvm_exit_info(vm->u, &vm->close_exit);
  /* The handle's memory goes after this callback. */
  if (vm->close_exit_rc == 0)
    snprintf(vm->close_console, sizeof vm->close_console, "%s",
             vm->close_exit.console_tail);
  vm->close_exit.console_tail = vm->close_console;
  vm->close_exit.stderr_tail = NULL;
}

static void on_lost(void *data, hcsb_conn_t *c, int status) {
  vm_t *vm = data;
  (void)c, (void)status;
  vm->lost++;
}

static void on_started(void *data, hcsb_uvm_t *u, int status,
                       hcsb_conn_t *conn) {
  vm_t *vm = data;
  CHECK(u == vm->u);
  vm->started++;
  vm->start_status = status;
  vm->conn = conn;
  CHECK((status == 0) == (conn != NULL));
  if (status == 0) {
    CHECK(hcsb_uvm_conn(u) == conn);
    CHECK_EQ(hcsb_uvm_state(u), HCSB_UVM_RUNNING);
    vm->qemu_pid = hcsb_uvm_pid(u);
    vm->vsockd_pid = hcsb_uvm_backend_pid(u);
    hcsb_conn_set_lost_cb(conn, on_lost, vm);
  }
  if (vm->close_in_start) hcsb_uvm_close(u, on_closed, vm);
}

static void on_exit_cb(void *data, hcsb_uvm_t *u, const hcsb_uvm_exit_t *e) {
  vm_t *vm = data;
  CHECK(u == vm->u);
  CHECK(vm->started == 1); /* the start's callback comes first */
  vm->exits++;
  vm->exit = *e;
  snprintf(vm->console, sizeof vm->console, "%s", e->console_tail);
  snprintf(vm->stderr_tail, sizeof vm->stderr_tail, "%s", e->stderr_tail);
}

static void opts_init(hcsb_uvm_options_t *o) {
  static char fake[1024], kernel[1024], initrd[1024];
  int fd;

  snprintf(fake, sizeof fake, "%s", hcsb_test_build_path("test/uvm-fake-qemu"));
  snprintf(kernel, sizeof kernel, "%s/vmlinuz", hcsb_test_tmpdir());
  snprintf(initrd, sizeof initrd, "%s/initrd.img", hcsb_test_tmpdir());
  fd = open(kernel, O_WRONLY | O_CREAT, 0644);
  close(fd);
  fd = open(initrd, O_WRONLY | O_CREAT, 0644);
  CHECK_EQ(write(fd, "base", 4), 4);
  close(fd);
  hcsb_uvm_options_init(o);
  o->kernel = kernel;
  o->initrd = initrd;
  o->qemu = fake;
  o->vsockd = fake;
  o->run_dir = hcsb_test_tmpdir();
  o->boot_timeout_ms = 20000;
  o->shutdown_timeout_ms = 3000;
  o->vpmem_wait = HCSB_UVM_VPMEM_WAIT_NONE; /* the guest runs on the host */
  o->log_cb = logcb;
  o->log_level = HCSB_LOG_DEBUG;
}

static void vm_start(vm_t *vm, const hcsb_uvm_options_t *o) {
  memset(vm, 0, sizeof *vm);
  CHECK_EQ(uv_loop_init(&vm->loop), 0);
  CHECK_EQ(hcsb_uvm_start(&vm->loop, o, on_started, vm, &vm->u), 0);
  hcsb_uvm_set_exit_cb(vm->u, on_exit_cb, vm);
  snprintf(vm->run_dir, sizeof vm->run_dir, "%s", hcsb_uvm_run_dir(vm->u));
  CHECK(strncmp(vm->run_dir, hcsb_test_tmpdir(), strlen(hcsb_test_tmpdir())) ==
        0);
  CHECK_EQ(vm->started, 0); /* never inside the call */
}

static void vm_wait_started(vm_t *vm) {
  RUN_FOR(vm, vm->started, 30000);
  CHECK_EQ(vm->started, 1);
}

/* Dead or a zombie: either way no longer running. */
static int gone(int pid) {
  char path[64], st[512];
  FILE *f;
  if (pid <= 0 || kill(pid, 0) != 0) return 1;
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  f = fopen(path, "r");
  if (f == NULL) return 1;
  if (fgets(st, sizeof st, f) == NULL) st[0] = '\0';
  fclose(f);
  const char *p = strrchr(st, ')');
  return p != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

static void vm_close(vm_t *vm) {
  struct stat sb;
  hcsb_uvm_close(vm->u, on_closed, vm);
  hcsb_uvm_close(vm->u, on_closed, vm); /* a second close does nothing */
  RUN_FOR(vm, vm->closed, 30000);
  CHECK_EQ(vm->closed, 1);
  CHECK_EQ(vm->started, 1);
  /* Everything it started is gone, and its directory. */
  CHECK(gone(vm->qemu_pid));
  CHECK(gone(vm->vsockd_pid));
  CHECK(stat(vm->run_dir, &sb) != 0 && errno == ENOENT);
  uv_run(&vm->loop, UV_RUN_NOWAIT);
  CHECK_EQ(uv_loop_close(&vm->loop), 0);
}

static void test_uvm_fake_start_and_close(void) {
  hcsb_uvm_options_t o;
  vm_t vm;

  opts_init(&o);
  vm_start(&vm, &o);
  CHECK_EQ(hcsb_uvm_state(vm.u), HCSB_UVM_STARTING);
  CHECK(hcsb_uvm_conn(vm.u) == NULL);
  CHECK(strncmp(hcsb_uvm_address(vm.u), "hvsock+fc://", 12) == 0);
  CHECK_EQ(hcsb_uvm_exit_info(vm.u, &vm.exit), -EBUSY);
  vm_wait_started(&vm);
  CHECK_EQ(vm.start_status, 0);
  CHECK(vm.qemu_pid > 0 && vm.vsockd_pid > 0);
  CHECK_STR(hcsb_conn_os(vm.conn), "linux");
  vm_close(&vm);
  /* The guest was asked to stop and the "VM" powered off by itself: QEMU
   * exited 0, not by a signal. */
  CHECK_EQ(vm.close_exit_rc, 0);
  CHECK_EQ(vm.close_exit.term_signal, 0);
  CHECK_EQ(vm.close_exit.exit_status, 0);
  CHECK(strstr(vm.close_exit.console_tail,
               "hcsb-uvm: guest program exited with status 0") != NULL);
  CHECK_EQ(vm.exits, 0); /* not after close */
}

/* The per-run initrd: a copy with the guest command appended, booted. */
static void test_uvm_fake_initrd_override(void) {
  hcsb_uvm_options_t o;
  char log[600], *text;
  size_t len;
  vm_t vm;

  opts_init(&o);
  o.guest_cmd = "hcsb-guest --vsock -v";
  snprintf(log, sizeof log, "%s/console.log", hcsb_test_tmpdir());
  o.console_log = log;
  vm_start(&vm, &o);
  vm_wait_started(&vm);
  CHECK_EQ(vm.start_status, 0);
  vm_close(&vm);
  text = (char *)hcsb_test_read_file(log, &len);
  CHECK(strstr(text, "fake: initrd ") != NULL);
  CHECK(strstr(text, "/initrd.img\n") != NULL);
  CHECK(strstr(text, vm.run_dir) != NULL); /* the copy, not the image's */
  CHECK(strstr(text, "hcsb-uvm: init ready") != NULL);
  free(text);
}

static void on_added(void *data, hcsb_uvm_t *u, int status,
                     const hcsb_guest_error_t *gerr,
                     const hcsb_uvm_vpmem_t *d) {
  add_t *a = data;
  (void)u, (void)gerr;
  a->calls++;
  a->status = status;
  CHECK((status == 0) == (d != NULL));
  if (d != NULL) {
    a->dev = d->device_number;
    a->refs = d->refs;
    snprintf(a->mount, sizeof a->mount, "%s", d->mount_path);
  }
}

static void on_done(void *data, int status, const hcsb_guest_error_t *gerr) {
  add_t *a = data;
  (void)gerr;
  a->calls++;
  a->status = status;
}

static void make_image(const char *path, size_t mib) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0);
  CHECK_EQ(ftruncate(fd, (off_t)mib << 20), 0);
  close(fd);
}

static void test_uvm_fake_vpmem(void) {
  hcsb_uvm_options_t o;
  char img1[600], img2[600], odd[600], log[600], *cmds;
  const hcsb_uvm_vpmem_t *devs;
  add_t a1 = {0}, a2 = {0}, a3 = {0}, r1 = {0}, r2 = {0}, a4 = {0};
  size_t len;
  vm_t vm;

  opts_init(&o);
  snprintf(log, sizeof log, "%s/qmp.log", hcsb_test_tmpdir());
  setenv("FAKE_QEMU_LOG", log, 1);
  snprintf(img1, sizeof img1, "%s/one.img", hcsb_test_tmpdir());
  snprintf(img2, sizeof img2, "%s/two.img", hcsb_test_tmpdir());
  snprintf(odd, sizeof odd, "%s/odd.img", hcsb_test_tmpdir());
  make_image(img1, 4);
  make_image(img2, 2);
  make_image(odd, 3);
  vm_start(&vm, &o);
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, img1, NULL, on_added, &a1), -ENOTCONN);
  vm_wait_started(&vm);
  CHECK_EQ(vm.start_status, 0);
  /* Refused up front, with a line in the log saying how to pad. */
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, odd, NULL, on_added, &a1), -EINVAL);
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, "relative.img", NULL, on_added, &a1),
           -EINVAL);
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, "/nonexistent.img", NULL, on_added, &a1),
           -ENOENT);
  /* Three adds queued at once: one after the other, in order. */
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, img1, NULL, on_added, &a1), 0);
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, img2, NULL, on_added, &a2), 0);
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, img1, NULL, on_added, &a3), 0);
  CHECK_EQ(a1.calls + a2.calls + a3.calls, 0);
  RUN_FOR(&vm, a3.calls, 20000);
  CHECK_EQ(a1.calls, 1);
  CHECK_EQ(a1.status, 0);
  CHECK_EQ(a1.dev, 0);
  CHECK_STR(a1.mount, "/run/layers/p0");
  CHECK_EQ(a2.calls, 1);
  CHECK_EQ(a2.dev, 1);
  CHECK_STR(a2.mount, "/run/layers/p1");
  /* The same image again: a reference, no second device. */
  CHECK_EQ(a3.calls, 1);
  CHECK_EQ(a3.status, 0);
  CHECK_EQ(a3.dev, 0);
  CHECK_EQ(a3.refs, 2);
  CHECK_EQ(hcsb_uvm_vpmem_devices(vm.u, &devs), 2);
  CHECK_EQ(devs[0].refs, 2);
  CHECK_EQ(devs[1].refs, 1);
  /* The same image at another mount path is refused. */
  {
    hcsb_uvm_vpmem_opts_t vo = {0};
    vo.mount_path = "/elsewhere";
    CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, img1, &vo, on_added, &a4), 0);
    RUN_FOR(&vm, a4.calls, 20000);
    CHECK_EQ(a4.status, -EBUSY);
  }
  /* Remove: the first drops a reference, the second unmounts. */
  CHECK_EQ(hcsb_uvm_remove_vpmem(vm.u, 0, on_done, &r1), 0);
  CHECK_EQ(hcsb_uvm_remove_vpmem(vm.u, 0, on_done, &r2), 0);
  RUN_FOR(&vm, r2.calls, 20000);
  CHECK_EQ(r1.status, 0);
  CHECK_EQ(r2.status, 0);
  CHECK_EQ(hcsb_uvm_remove_vpmem(vm.u, 0, on_done, &r2), -ENOENT);
  CHECK_EQ(hcsb_uvm_remove_vpmem(vm.u, 7, on_done, &r2), -ENOENT);
  CHECK_EQ(hcsb_uvm_vpmem_devices(vm.u, &devs), 2);
  CHECK(devs[0].mount_path == NULL); /* unmounted, still plugged */
  /* Mounted again on the same device, without QMP. */
  memset(&a4, 0, sizeof a4);
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, img1, NULL, on_added, &a4), 0);
  RUN_FOR(&vm, a4.calls, 20000);
  CHECK_EQ(a4.status, 0);
  CHECK_EQ(a4.dev, 0);
  CHECK_EQ(a4.refs, 1);
  vm_close(&vm);
  cmds = (char *)hcsb_test_read_file(log, &len);
  /* Two devices plugged, exactly, on the first two root ports. */
  CHECK(strstr(cmds, "\"id\":\"vpmem-mem0\",\"mem-path\":") != NULL);
  CHECK(strstr(cmds, "\"readonly\":true,\"align\":2097152") != NULL);
  CHECK(strstr(cmds, "\"memdev\":\"vpmem-mem0\",\"bus\":\"rp1\"") != NULL);
  CHECK(strstr(cmds, "\"memdev\":\"vpmem-mem1\",\"bus\":\"rp2\"") != NULL);
  CHECK(strstr(cmds, "vpmem-mem2") == NULL);
  free(cmds);
}

/* QEMU refuses a device: a clear error, and the next add still works
 * (the backend object of the refused one was deleted). */
static void test_uvm_fake_vpmem_refused(void) {
  hcsb_uvm_options_t o;
  char img[600];
  add_t a = {0}, b = {0};
  vm_t vm;

  opts_init(&o);
  o.vpmem_slots = 2;
  snprintf(img, sizeof img, "%s/one.img", hcsb_test_tmpdir());
  make_image(img, 2);
  setenv("FAKE_QEMU_MODE", "refuse-device", 1);
  vm_start(&vm, &o);
  vm_wait_started(&vm);
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, img, NULL, on_added, &a), 0);
  RUN_FOR(&vm, a.calls, 20000);
  CHECK_EQ(a.status, -EINVAL);
  CHECK_EQ(hcsb_uvm_vpmem_devices(vm.u, NULL), 0);
  /* Not refused for the name: object-add succeeded again. */
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, img, NULL, on_added, &b), 0);
  RUN_FOR(&vm, b.calls, 20000);
  CHECK_EQ(b.status, -EINVAL);
  vm_close(&vm);
}

static void test_uvm_fake_vpmem_no_room(void) {
  hcsb_uvm_options_t o;
  char img1[600], img2[600], img3[600];
  add_t a = {0}, b = {0}, c = {0};
  vm_t vm;

  opts_init(&o);
  o.vpmem_slots = 1;
  o.vpmem_max_mb = 4;
  snprintf(img1, sizeof img1, "%s/one.img", hcsb_test_tmpdir());
  snprintf(img2, sizeof img2, "%s/two.img", hcsb_test_tmpdir());
  snprintf(img3, sizeof img3, "%s/big.img", hcsb_test_tmpdir());
  make_image(img1, 2);
  make_image(img2, 2);
  make_image(img3, 6);
  vm_start(&vm, &o);
  vm_wait_started(&vm);
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, img3, NULL, on_added, &c), 0);
  RUN_FOR(&vm, c.calls, 20000);
  CHECK_EQ(c.status, -ENOSPC); /* over vpmem_max_mb */
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, img1, NULL, on_added, &a), 0);
  RUN_FOR(&vm, a.calls, 20000);
  CHECK_EQ(a.status, 0);
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, img2, NULL, on_added, &b), -ENOSPC);
  vm_close(&vm);
}

/* Closing in every phase of a start: right away, once the backend runs,
 * while QMP is set up, while the guest boots. */
static void test_uvm_fake_close_while_starting(void) {
  static const double after_ms[] = {-1, 0, 5, 30, 100, 300};
  for (size_t i = 0; i < sizeof after_ms / sizeof after_ms[0]; i++) {
    hcsb_uvm_options_t o;
    vm_t vm;
    opts_init(&o);
    vm_start(&vm, &o);
    if (after_ms[i] >= 0) {
      double end = hcsb_test_now_ms() + after_ms[i];
      uv_run(&vm.loop, UV_RUN_NOWAIT);
      while (hcsb_test_now_ms() < end && !vm.started)
        uv_run(&vm.loop, UV_RUN_NOWAIT);
    }
    if (vm.started) {
      /* It came up first on a fast machine: close it as usual. */
      CHECK_EQ(vm.start_status, 0);
    } else {
      vm.qemu_pid = hcsb_uvm_pid(vm.u);
      vm.vsockd_pid = hcsb_uvm_backend_pid(vm.u);
    }
    hcsb_uvm_close(vm.u, on_closed, &vm);
    RUN_FOR(&vm, vm.closed, 30000);
    CHECK_EQ(vm.closed, 1);
    CHECK_EQ(vm.started, 1);
    if (vm.start_status != 0) CHECK_EQ(vm.start_status, -ECANCELED);
    CHECK(gone(vm.qemu_pid));
    CHECK(gone(vm.vsockd_pid));
    CHECK_EQ(vm.exits, 0);
    CHECK_EQ(uv_loop_close(&vm.loop), 0);
  }
}

/* Closing from inside the start callback. */
static void test_uvm_fake_close_in_start_cb(void) {
  hcsb_uvm_options_t o;
  vm_t vm;
  opts_init(&o);
  vm_start(&vm, &o);
  vm.close_in_start = 1;
  RUN_FOR(&vm, vm.closed, 30000);
  CHECK_EQ(vm.started, 1);
  CHECK_EQ(vm.closed, 1);
  CHECK(gone(vm.qemu_pid));
  CHECK_EQ(uv_loop_close(&vm.loop), 0);
}

static void test_uvm_fake_qemu_exits_at_once(void) {
  hcsb_uvm_options_t o;
  vm_t vm;

  opts_init(&o);
  setenv("FAKE_QEMU_MODE", "exit-early", 1);
  vm_start(&vm, &o);
  RUN_FOR(&vm, vm.started && vm.exits, 30000);
  CHECK_EQ(vm.start_status, -EHOSTDOWN);
  CHECK_EQ(hcsb_uvm_state(vm.u), HCSB_UVM_STOPPED);
  CHECK_EQ(vm.exits, 1);
  CHECK_EQ(vm.exit.exit_status, 1);
  CHECK(strstr(vm.stderr_tail, "qemu-system-x86_64: boom") != NULL);
  vm_close(&vm);
  CHECK_EQ(vm.exits, 1);
}

static void test_uvm_fake_backend_fails(void) {
  hcsb_uvm_options_t o;
  vm_t vm;

  opts_init(&o);
  setenv("FAKE_QEMU_MODE", "vsockd-fail", 1);
  vm_start(&vm, &o);
  vm_wait_started(&vm);
  CHECK_EQ(vm.start_status, -ECHILD);
  CHECK_EQ(hcsb_uvm_pid(vm.u), 0); /* QEMU never ran */
  vm_close(&vm);
  CHECK_EQ(vm.exits, 0);
}

static void test_uvm_fake_boot_timeout(void) {
  static const char *modes[] = {"no-guest", "no-greeting"};
  for (int i = 0; i < 2; i++) {
    hcsb_uvm_options_t o;
    vm_t vm;
    opts_init(&o);
    o.boot_timeout_ms = 600 * hcsb_test_timeout_scale();
    o.qmp_timeout_ms = 5000;
    setenv("FAKE_QEMU_MODE", modes[i], 1);
    vm_start(&vm, &o);
    vm_wait_started(&vm);
    CHECK_EQ(vm.start_status, -ETIMEDOUT);
    /* Told once QEMU was stopped: its exit is known. */
    CHECK_EQ(hcsb_uvm_exit_info(vm.u, &vm.exit), 0);
    CHECK_EQ(vm.exit.term_signal, SIGKILL);
    CHECK(strstr(vm.exit.console_tail, "fake: booting") != NULL);
    RUN_FOR(&vm, vm.exits, 300);
    CHECK_EQ(vm.exits, 0); /* the library stopped it: no exit callback */
    vm_close(&vm);
  }
}

/* The guest powers off while the VM runs: the exit callback, once. */
static void test_uvm_fake_guest_powers_off(void) {
  hcsb_uvm_options_t o;
  add_t a = {0};
  char img[600];
  vm_t vm;

  opts_init(&o);
  snprintf(img, sizeof img, "%s/one.img", hcsb_test_tmpdir());
  make_image(img, 2);
  setenv("FAKE_QEMU_MODE", "poweroff-soon,hang-device", 1);
  {
    char ms[32];
    snprintf(ms, sizeof ms, "%u", 300 * hcsb_test_timeout_scale());
    setenv("FAKE_QEMU_POWEROFF_MS", ms, 1);
  }
  vm_start(&vm, &o);
  vm_wait_started(&vm);
  CHECK_EQ(vm.start_status, 0);
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, img, NULL, on_added, &a), 0);
  RUN_FOR(&vm, vm.exits && vm.lost, 30000);
  CHECK_EQ(vm.exits, 1);
  CHECK_EQ(vm.exit.exit_status, 0);
  CHECK_EQ(vm.exit.term_signal, 0);
  CHECK(strstr(vm.console, "hcsb-uvm: powering off") != NULL);
  /* The pending add failed with the VM, before the exit callback. */
  CHECK_EQ(a.calls, 1);
  CHECK_EQ(a.status, -EHOSTDOWN);
  CHECK_EQ(vm.lost, 1);
  CHECK_EQ(hcsb_uvm_state(vm.u), HCSB_UVM_STOPPED);
  CHECK(hcsb_uvm_conn(vm.u) == NULL);
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, img, NULL, on_added, &a), -ENOTCONN);
  vm_close(&vm);
  CHECK_EQ(vm.exits, 1);
  CHECK_EQ(a.calls, 1);
}

typedef struct stacks_s {
  int calls, status;
} stacks_t;

static void on_stacks(void *data, int status, const hcsb_guest_error_t *gerr,
                      const char *s, size_t n) {
  stacks_t *st = data;
  (void)gerr, (void)s, (void)n;
  st->calls++;
  st->status = status;
}

/* QEMU killed with a hot-plug and a call in flight. */
static void test_uvm_fake_qemu_killed_mid_call(void) {
  hcsb_uvm_options_t o;
  add_t a = {0};
  stacks_t st = {0};
  char img[600];
  vm_t vm;

  opts_init(&o);
  snprintf(img, sizeof img, "%s/one.img", hcsb_test_tmpdir());
  make_image(img, 2);
  setenv("FAKE_QEMU_MODE", "hang-device", 1);
  vm_start(&vm, &o);
  vm_wait_started(&vm);
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, img, NULL, on_added, &a), 0);
  CHECK_EQ(hcsb_conn_dump_stacks(vm.conn, NULL, on_stacks, &st), 0);
  RUN_FOR(&vm, 0, 100);
  CHECK_EQ(kill(vm.qemu_pid, SIGKILL), 0);
  RUN_FOR(&vm, vm.exits && vm.lost && a.calls && st.calls, 30000);
  CHECK_EQ(vm.exits, 1);
  CHECK_EQ(vm.exit.term_signal, SIGKILL);
  CHECK_EQ(vm.exit.time_limit, 0);
  CHECK_EQ(a.calls, 1);
  CHECK_EQ(a.status, -EHOSTDOWN);
  CHECK_EQ(st.calls, 1);
  CHECK(st.status == 0 || st.status == -ECONNRESET || st.status == -EPIPE);
  CHECK_EQ(vm.lost, 1);
  /* The backend goes with QEMU. */
  RUN_FOR(&vm, gone(vm.vsockd_pid), 5000);
  CHECK(gone(vm.vsockd_pid));
  RUN_FOR(&vm, 0, 200);
  CHECK_EQ(vm.exits + a.calls + st.calls + vm.lost, 4);
  vm_close(&vm);
}

/* A hot-plug in flight when the VM is closed. */
static void test_uvm_fake_close_mid_hotplug(void) {
  hcsb_uvm_options_t o;
  add_t a = {0}, b = {0};
  char img[600], img2[600];
  vm_t vm;

  opts_init(&o);
  snprintf(img, sizeof img, "%s/one.img", hcsb_test_tmpdir());
  snprintf(img2, sizeof img2, "%s/two.img", hcsb_test_tmpdir());
  make_image(img, 2);
  make_image(img2, 2);
  setenv("FAKE_QEMU_MODE", "hang-device", 1);
  vm_start(&vm, &o);
  vm_wait_started(&vm);
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, img, NULL, on_added, &a), 0);
  CHECK_EQ(hcsb_uvm_add_vpmem(vm.u, img2, NULL, on_added, &b), 0);
  RUN_FOR(&vm, 0, 200);
  CHECK_EQ(a.calls, 0);
  hcsb_uvm_close(vm.u, on_closed, &vm);
  CHECK_EQ(a.calls, 0); /* not inside close */
  RUN_FOR(&vm, vm.closed, 30000);
  CHECK_EQ(a.calls, 1);
  CHECK_EQ(a.status, -ECANCELED);
  CHECK_EQ(b.calls, 1);
  CHECK_EQ(b.status, -ECANCELED);
  CHECK_EQ(vm.closed, 1);
  CHECK(gone(vm.qemu_pid));
  CHECK_EQ(uv_loop_close(&vm.loop), 0);
}

/* A guest and a QEMU that do not stop: QMP quit is ignored too, so the
 * close ends with SIGKILL. */
static void test_uvm_fake_close_kills_a_stuck_vm(void) {
  hcsb_uvm_options_t o;
  double t0;
  vm_t vm;

  opts_init(&o);
  o.shutdown_timeout_ms = 300 * hcsb_test_timeout_scale();
  setenv("FAKE_QEMU_MODE", "no-poweroff", 1);
  vm_start(&vm, &o);
  vm_wait_started(&vm);
  t0 = hcsb_test_now_ms();
  vm_close(&vm);
  CHECK_EQ(vm.close_exit.term_signal, SIGKILL);
  CHECK(hcsb_test_now_ms() - t0 >=
        550.0 * hcsb_test_timeout_scale()); /* the guest's, then quit's */
}

static void test_uvm_fake_time_limit(void) {
  hcsb_uvm_options_t o;
  vm_t vm;

  opts_init(&o);
  o.time_limit_s = hcsb_test_timeout_scale();
  vm_start(&vm, &o);
  vm_wait_started(&vm);
  RUN_FOR(&vm, vm.exits, 30000);
  CHECK_EQ(vm.exits, 1);
  CHECK_EQ(vm.exit.time_limit, 1);
  CHECK_EQ(vm.exit.term_signal, SIGKILL);
  vm_close(&vm);
}

/* The process that started the VM is killed with SIGKILL: QEMU and the
 * backend die with it (nothing runs its close). */
static void test_uvm_fake_starter_killed(void) {
  int fds[2], pids[2] = {0, 0};
  pid_t child;

  CHECK_EQ(pipe(fds), 0);
  child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    hcsb_uvm_options_t o;
    vm_t vm;
    close(fds[0]);
    opts_init(&o);
    vm_start(&vm, &o);
    vm_wait_started(&vm);
    if (vm.start_status == 0) {
      int p[2] = {vm.qemu_pid, vm.vsockd_pid};
      if (write(fds[1], p, sizeof p) != (ssize_t)sizeof p) _exit(2);
    }
    for (;;) uv_run(&vm.loop, UV_RUN_DEFAULT);
  }
  close(fds[1]);
  CHECK_EQ(read(fds[0], pids, sizeof pids), (ssize_t)sizeof pids);
  close(fds[0]);
  CHECK(pids[0] > 0 && pids[1] > 0);
  CHECK(!gone(pids[0]) && !gone(pids[1]));
  CHECK_EQ(kill(child, SIGKILL), 0);
  CHECK_EQ(waitpid(child, NULL, 0), child);
  {
    double end = hcsb_test_now_ms() + 10000;
    while ((!gone(pids[0]) || !gone(pids[1])) && hcsb_test_now_ms() < end)
      usleep(10000);
  }
  CHECK(gone(pids[0]));
  CHECK(gone(pids[1]));
}

static void test_uvm_fake_three_at_once(void) {
  hcsb_uvm_options_t o;
  vm_t vm[3];
  uv_loop_t loop;
  int started = 0, closed = 0;

  opts_init(&o);
  CHECK_EQ(uv_loop_init(&loop), 0);
  for (int i = 0; i < 3; i++) {
    memset(&vm[i], 0, sizeof vm[i]);
    CHECK_EQ(hcsb_uvm_start(&loop, &o, on_started, &vm[i], &vm[i].u), 0);
  }
  RUN_LOOP_FOR(&loop,
               (started = vm[0].started + vm[1].started + vm[2].started) == 3,
               30000);
  CHECK_EQ(started, 3);
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(vm[i].start_status, 0);
    for (int j = 0; j < i; j++)
      CHECK(strcmp(hcsb_uvm_run_dir(vm[i].u), hcsb_uvm_run_dir(vm[j].u)) != 0);
    hcsb_uvm_close(vm[i].u, on_closed, &vm[i]);
  }
  RUN_LOOP_FOR(
      &loop, (closed = vm[0].closed + vm[1].closed + vm[2].closed) == 3, 30000);
  CHECK_EQ(closed, 3);
  for (int i = 0; i < 3; i++) CHECK(gone(vm[i].qemu_pid));
  CHECK_EQ(uv_loop_close(&loop), 0);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY_T(uvm_fake_start_and_close, 60),
    TEST_ENTRY_T(uvm_fake_initrd_override, 60),
    TEST_ENTRY_T(uvm_fake_vpmem, 60),
    TEST_ENTRY_T(uvm_fake_vpmem_refused, 60),
    TEST_ENTRY_T(uvm_fake_vpmem_no_room, 60),
    TEST_ENTRY_T(uvm_fake_close_while_starting, 120),
    TEST_ENTRY_T(uvm_fake_close_in_start_cb, 60),
    TEST_ENTRY_T(uvm_fake_qemu_exits_at_once, 60),
    TEST_ENTRY_T(uvm_fake_backend_fails, 60),
    TEST_ENTRY_T(uvm_fake_boot_timeout, 60),
    TEST_ENTRY_T(uvm_fake_guest_powers_off, 60),
    TEST_ENTRY_T(uvm_fake_qemu_killed_mid_call, 60),
    TEST_ENTRY_T(uvm_fake_close_mid_hotplug, 60),
    TEST_ENTRY_T(uvm_fake_close_kills_a_stuck_vm, 60),
    TEST_ENTRY_T(uvm_fake_time_limit, 60),
    TEST_ENTRY_T(uvm_fake_starter_killed, 60),
    TEST_ENTRY_T(uvm_fake_three_at_once, 90),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
