/* The utility VM API (include/hcsbridge/uvm.h) against real VMs: QEMU
 * (TCG), hcsb-vsockd, an image from hcsb-mkuvm with hcsb-guest acting in
 * it (runc, VPMem mounts, dm-verity), and layer images from hcsb-mklayer.
 * Run by `make check-vm` (scripts/check-vm), which builds the image and
 * sets HCSB_UVM_IMAGE.
 *
 * VMs are slow to boot under TCG, so the cases of a group share one VM:
 * each group runs in a child process that boots it, then runs its cases
 * in order and reports each as it passes.  A case that fails (its CHECK
 * aborts the child) is counted, and the group goes on from the next case
 * in a fresh VM.  The output is the runner's: "ok N - name" lines and a
 * last "test-uvm-vm: N passed, N failed" line. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hcsbridge.h>
#include <json-c/json.h>

#include "runner.h"
#include "test-api-util.h"

static void tick(uv_timer_t *t) {
  (void)t;
}

/* Runs `loop` until `cond` holds; fails the case after `ms` (scaled). */
#define RUN_UNTIL_MS(loop, cond, ms)                                           \
  do {                                                                         \
    uv_timer_t tick_;                                                          \
    double end_ = hcsb_test_now_ms() + (double)(ms)*hcsb_test_timeout_scale(); \
    uv_timer_init((loop), &tick_);                                             \
    uv_timer_start(&tick_, tick, 20, 20);                                      \
    while (!(cond) && hcsb_test_now_ms() < end_) uv_run((loop), UV_RUN_ONCE);  \
    uv_close((uv_handle_t *)&tick_, NULL);                                     \
    uv_run((loop), UV_RUN_NOWAIT);                                             \
    if (!(cond))                                                               \
      hcsb_test_fail(__FILE__, __LINE__, "timed out waiting for %s", #cond);   \
  } while (0)

/* ------------------------------------------------------------------------ */
/* The shared VM */

typedef struct vm_s {
  uv_loop_t loop;
  hcsb_uvm_t *u;
  hcsb_conn_t *conn;
  int started, start_status;
  int exits;
  hcsb_uvm_exit_t exit;
  int lost, lost_status;
  int closed;
  double t_start, t_up;
  /* when the log said these, for the VPMem timing */
  double t_plugged, t_node, t_mounted;
} vm_t;

static vm_t *V;          /* the group's VM, in its child */
static char images[512]; /* the layer images of this child */
static char base_img[600], top_img[600], verity_img[600], late_img[600];

static void logcb(void *data, hcsb_log_level_t level, const char *aid,
                  const char *msg) {
  vm_t *vm = data;
  (void)aid;
  if (strstr(msg, " plugged as device ") != NULL)
    vm->t_plugged = hcsb_test_now_ms();
  if (strstr(msg, " is there (") != NULL) vm->t_node = hcsb_test_now_ms();
  if (strncmp(msg, "VPMem Add of ", 13) == 0)
    vm->t_mounted = hcsb_test_now_ms();
  if (level <= HCSB_LOG_WARN || getenv("HCSB_TEST_VERBOSE"))
    fprintf(stderr, "  uvm log %d: %s\n", level, msg);
}

static void on_started(void *data, hcsb_uvm_t *u, int status,
                       hcsb_conn_t *conn) {
  vm_t *vm = data;
  (void)u;
  vm->started++;
  vm->start_status = status;
  vm->conn = conn;
  vm->t_up = hcsb_test_now_ms();
}

static void on_exit_cb(void *data, hcsb_uvm_t *u, const hcsb_uvm_exit_t *e) {
  vm_t *vm = data;
  (void)u;
  vm->exits++;
  vm->exit = *e;
}

static void on_lost(void *data, hcsb_conn_t *c, int status) {
  vm_t *vm = data;
  (void)c;
  vm->lost++;
  vm->lost_status = status;
}

static void on_closed(void *data) {
  ((vm_t *)data)->closed++;
}

static const char *image_dir(void) {
  const char *d = getenv("HCSB_UVM_IMAGE");
  if (d == NULL || d[0] == '\0')
    hcsb_test_fail(__FILE__, __LINE__,
                   "HCSB_UVM_IMAGE is not set: run through make check-vm");
  return d;
}

static void vm_boot(vm_t *vm) {
  hcsb_uvm_options_t o;
  memset(vm, 0, sizeof *vm);
  CHECK_EQ(uv_loop_init(&vm->loop), 0);
  hcsb_uvm_options_init(&o);
  o.image_dir = image_dir();
  /* The test's own directory: a VM whose starter is killed on purpose
   * leaves its run directory behind, removed with the test's. */
  o.run_dir = hcsb_test_tmpdir();
  o.time_limit_s = 900; /* a VM never outlives its test by much */
  o.log_cb = logcb;
  o.log_data = vm;
  o.log_level = HCSB_LOG_DEBUG; /* for the VPMem timing; printed: WARN */
  o.boot_timeout_ms = 300000;
  vm->t_start = hcsb_test_now_ms();
  CHECK_EQ(hcsb_uvm_start(&vm->loop, &o, on_started, vm, &vm->u), 0);
  hcsb_uvm_set_exit_cb(vm->u, on_exit_cb, vm);
  RUN_UNTIL_MS(&vm->loop, vm->started, 300000);
  if (vm->start_status != 0) {
    hcsb_uvm_exit_t e;
    if (hcsb_uvm_exit_info(vm->u, &e) == 0)
      fprintf(stderr, "  console:\n%s\n  QEMU: %s\n", e.console_tail,
              e.stderr_tail);
    hcsb_test_fail(__FILE__, __LINE__, "the VM did not start: %s",
                   hcsb_strerror(vm->start_status));
  }
  hcsb_conn_set_lost_cb(vm->conn, on_lost, vm);
}

static int gone(int pid) {
  char path[64], st[512];
  FILE *f;
  if (pid <= 0 || kill(pid, 0) != 0) return 1;
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  if ((f = fopen(path, "r")) == NULL) return 1;
  if (fgets(st, sizeof st, f) == NULL) st[0] = '\0';
  fclose(f);
  const char *p = strrchr(st, ')');
  return p != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

static void vm_shutdown(vm_t *vm) {
  int q = hcsb_uvm_pid(vm->u), b = hcsb_uvm_backend_pid(vm->u);
  hcsb_uvm_close(vm->u, on_closed, vm);
  RUN_UNTIL_MS(&vm->loop, vm->closed, 60000);
  CHECK(gone(q));
  CHECK(gone(b));
  uv_run(&vm->loop, UV_RUN_NOWAIT);
}

/* ------------------------------------------------------------------------ */
/* Processes */

typedef struct proc_s {
  hcsb_process_t *p;
  int created, create_status;
  char out[65536];
  size_t nout;
  int eof;
  double t_first; /* the first output byte */
  int waited, wait_status;
  uint32_t code;
  int closed;
} proc_t;

static void p_created(void *data, hcsb_process_t *p, int status,
                      const hcsb_guest_error_t *gerr) {
  proc_t *r = data;
  char line[512] = "";
  (void)p;
  r->created++;
  r->create_status = status;
  if (gerr != NULL) {
    hcsb_guest_error_format(gerr, line, sizeof line);
    fprintf(stderr, "  process create: %s\n", line);
  }
}

static void p_read(void *data, hcsb_process_t *p, int fd, const char *buf,
                   ssize_t n) {
  proc_t *r = data;
  (void)p, (void)fd;
  if (n < 0) {
    r->eof++;
    return;
  }
  if (r->nout == 0 && n > 0) r->t_first = hcsb_test_now_ms();
  if ((size_t)n > sizeof r->out - 1 - r->nout)
    n = (ssize_t)(sizeof r->out - 1 - r->nout);
  memcpy(r->out + r->nout, buf, (size_t)n);
  r->nout += (size_t)n;
  r->out[r->nout] = '\0';
}

static void p_waited(void *data, hcsb_process_t *p, int status, uint32_t code) {
  proc_t *r = data;
  (void)p;
  r->waited++;
  r->wait_status = status;
  r->code = code;
}

static void p_closed(void *data) {
  ((proc_t *)data)->closed++;
}

/* Starts argv in the UVM (c NULL) or container `c` (init when argv is
 * NULL), stdout relayed. */
static void p_start(proc_t *r, hcsb_container_t *c, const char *const *argv) {
  hcsb_process_config_t cfg;
  size_t n = 0;
  memset(r, 0, sizeof *r);
  memset(&cfg, 0, sizeof cfg);
  while (argv != NULL && argv[n] != NULL) n++;
  cfg.command_args = argv;
  cfg.ncommand_args = n;
  cfg.create_stdout_pipe = 1;
  if (c == NULL)
    CHECK_EQ(hcsb_conn_create_process(V->conn, NULL, &cfg, p_created, r, &r->p),
             0);
  else
    CHECK_EQ(hcsb_container_create_process(c, NULL, &cfg, p_created, r, &r->p),
             0);
  CHECK_EQ(hcsb_process_read_start(r->p, p_read, r), 0);
  CHECK_EQ(hcsb_process_wait(r->p, 0, p_waited, r), 0);
}

static void p_finish(proc_t *r) {
  RUN_UNTIL_MS(&V->loop, r->waited && r->eof, 120000);
  hcsb_process_close(r->p, p_closed, r);
  RUN_UNTIL_MS(&V->loop, r->closed, 10000);
}

/* A shell command in the UVM; returns its stdout (static), sets *code. */
static const char *uvm_sh(const char *script, uint32_t *code) {
  static proc_t r;
  const char *argv[] = {"/bin/sh", "-c", script, NULL};
  p_start(&r, NULL, argv);
  p_finish(&r);
  CHECK_EQ(r.create_status, 0);
  CHECK_EQ(r.wait_status, 0);
  if (code != NULL) *code = r.code;
  return r.out;
}

static int mounts(void) {
  uint32_t code;
  const char *out = uvm_sh("wc -l </proc/mounts", &code);
  CHECK_EQ(code, 0);
  return atoi(out);
}

/* ------------------------------------------------------------------------ */
/* Containers */

/* An OCI spec whose init runs `script` with /bin/sh. */
static char *spec_for(const char *script) {
  json_object *o = json_object_new_object(), *p = json_object_new_object();
  json_object *args = json_object_new_array(), *env = json_object_new_array();
  json_object *mounts_ = json_object_new_array(), *m, *linux_, *ns;
  char *text;

  json_object_object_add(o, "ociVersion", json_object_new_string("1.0.2"));
  json_object_array_add(args, json_object_new_string("/bin/sh"));
  json_object_array_add(args, json_object_new_string("-c"));
  json_object_array_add(args, json_object_new_string(script));
  json_object_object_add(p, "args", args);
  json_object_array_add(env, json_object_new_string("PATH=/bin"));
  json_object_object_add(p, "env", env);
  json_object_object_add(p, "cwd", json_object_new_string("/"));
  json_object_object_add(o, "process", p);
  m = json_object_new_object();
  json_object_object_add(m, "path", json_object_new_string("rootfs"));
  json_object_object_add(o, "root", m);
  json_object_object_add(o, "hostname", json_object_new_string("ctr"));
  if (strcmp(script, "no-proc") != 0) {
    m = json_object_new_object();
    json_object_object_add(m, "destination", json_object_new_string("/proc"));
    json_object_object_add(m, "type", json_object_new_string("proc"));
    json_object_object_add(m, "source", json_object_new_string("proc"));
    json_object_array_add(mounts_, m);
  }
  json_object_object_add(o, "mounts", mounts_);
  linux_ = json_object_new_object();
  ns = json_object_new_array();
  static const char *const kinds[] = {"pid", "mount", "uts", "ipc"};
  for (int i = 0; i < 4; i++) {
    m = json_object_new_object();
    json_object_object_add(m, "type", json_object_new_string(kinds[i]));
    json_object_array_add(ns, m);
  }
  json_object_object_add(linux_, "namespaces", ns);
  json_object_object_add(o, "linux", linux_);
  text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
  json_object_put(o);
  return text;
}

/* hcsb_uvm_create_container hands the handle over in the callback only. */
static void c_created(void *data, hcsb_container_t *c, int status,
                      const hcsb_guest_error_t *gerr) {
  ((api_ctr_t *)data)->c = c;
  api_ctr_created(data, c, status, gerr);
}

/* The init script of long-lived containers: a TERM ends it with 3. */
#define LONG_INIT \
  "trap 'echo bye; exit 3' TERM; echo ready; while :; do sleep 0.2; done"

static void ctr_create(api_ctr_t *t, const char *id, const char *script,
                       const char *const *imgs, size_t n) {
  hcsb_container_config_t cfg;
  hcsb_uvm_layer_t layers[4];
  char scratch[128];
  char *spec = spec_for(script);
  hcsb_container_t *out = (hcsb_container_t *)spec; /* must be reset */

  memset(t, 0, sizeof *t);
  memset(&cfg, 0, sizeof cfg);
  memset(layers, 0, sizeof layers);
  for (size_t i = 0; i < n; i++) layers[i].image_path = imgs[i];
  snprintf(scratch, sizeof scratch, "/run/scratch/%s", id);
  cfg.id = id;
  cfg.oci_spec_json = spec;
  cfg.scratch_dir = scratch;
  cfg.layer_scratch_path = scratch;
  CHECK_EQ(hcsb_uvm_create_container(V->u, NULL, &cfg, layers, n, c_created, t,
                                     &out),
           0);
  CHECK(out == NULL);
  free(spec); /* copied */
  RUN_UNTIL_MS(&V->loop, t->created, 180000);
}

static void ctr_kill_wait(api_ctr_t *t, proc_t *init) {
  CHECK_EQ(hcsb_container_wait(t->c, 0, api_ctr_waited, t), 0);
  CHECK_EQ(hcsb_process_signal(init->p, NULL, 15, NULL, NULL), 0);
  p_finish(init);
  RUN_UNTIL_MS(&V->loop, t->waited, 60000);
}

typedef struct done_s {
  int done, status;
  uint32_t hresult;
  char message[512];
} done_t;

static void on_done(void *data, int status, const hcsb_guest_error_t *gerr) {
  done_t *d = data;
  d->done++;
  d->status = status;
  if (gerr != NULL) {
    d->hresult = gerr->hresult;
    snprintf(d->message, sizeof d->message, "%s", gerr->message);
  }
}

/* Deletes the container (overlay, state, then its layers' devices) and
 * closes its handle. */
static void ctr_delete(api_ctr_t *t) {
  done_t d = {0};
  CHECK_EQ(hcsb_uvm_delete_container(V->u, NULL, hcsb_container_id(t->c),
                                     on_done, &d),
           0);
  RUN_UNTIL_MS(&V->loop, d.done, 120000);
  if (d.status != 0)
    hcsb_test_fail(__FILE__, __LINE__, "delete: %s %s", hcsb_strerror(d.status),
                   d.message);
  hcsb_container_close(t->c, api_ctr_closed, t);
  RUN_UNTIL_MS(&V->loop, t->closed, 10000);
}

/* The references the VM holds on device `n` (0 when it has none). */
static uint32_t refs_of(uint32_t n) {
  const hcsb_uvm_vpmem_t *devs;
  size_t count = hcsb_uvm_vpmem_devices(V->u, &devs);
  return n < count ? devs[n].refs : 0;
}

/* ------------------------------------------------------------------------ */
/* Layer images (hcsb-mklayer, from busybox) */

static void sh_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh_ok(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  if (system(cmd) != 0) hcsb_test_fail(__FILE__, __LINE__, "failed: %s", cmd);
}

/* Each group runs in a child of its own (again after a failed case) and
 * builds its images afresh, in a directory of its own under the test's
 * temporary directory. */
static void make_images(const char *group) {
  const char *mk = hcsb_test_build_path("src/tools/hcsb-mklayer");
  const char *t = images;

  snprintf(images, sizeof images, "%s/%s", hcsb_test_tmpdir(), group);
  sh_ok("rm -rf %s && mkdir -p %s", images, images);
  /* base: busybox with its applets, a marker, a file the top shadows */
  sh_ok(
      "set -e; r=%s/base; mkdir -p $r/bin $r/proc $r/dev $r/etc; "
      "cp /bin/busybox $r/bin/; for a in $(/bin/busybox --list); do "
      "[ $a = busybox ] || ln -s busybox $r/bin/$a; done; "
      "echo from-the-base-layer >$r/marker-layer; "
      "echo base >$r/shadowed",
      t);
  sh_ok(
      "set -e; r=%s/top; mkdir -p $r; echo from-the-top-layer "
      ">$r/marker-top; echo top >$r/shadowed",
      t);
  sh_ok("set -e; r=%s/late; mkdir -p $r; echo late >$r/marker-late", t);
  snprintf(base_img, sizeof base_img, "%s/base.img", t);
  snprintf(top_img, sizeof top_img, "%s/top.img", t);
  snprintf(verity_img, sizeof verity_img, "%s/verity.img", t);
  snprintf(late_img, sizeof late_img, "%s/late.img", t);
  sh_ok("%s -q %s/base %s", mk, t, base_img);
  sh_ok("%s -q %s/top %s", mk, t, top_img);
  sh_ok("%s -q %s/late %s", mk, t, late_img);
  sh_ok("%s -q --verity %s/base %s", mk, t, verity_img);
}

static void verity_of(hcsb_verity_info_t *v, char *digest, char *salt) {
  char path[700], key[64], val[200];
  FILE *f;
  snprintf(path, sizeof path, "%s.verity", verity_img);
  f = fopen(path, "r");
  CHECK(f != NULL);
  memset(v, 0, sizeof *v);
  while (fscanf(f, "%63s %199s", key, val) == 2) {
    if (strcmp(key, "root_digest") == 0) strcpy(digest, val);
    if (strcmp(key, "salt") == 0) strcpy(salt, val);
    if (strcmp(key, "data_block_size") == 0)
      v->data_block_size = (uint32_t)atoi(val);
    if (strcmp(key, "hash_offset_bytes") == 0)
      v->hash_offset_bytes = strtoull(val, NULL, 10);
    if (strcmp(key, "super_block") == 0) v->super_block = atoi(val);
    if (strcmp(key, "version") == 0) v->version = (uint32_t)atoi(val);
  }
  fclose(f);
  v->root_digest = digest;
  v->salt = salt;
  v->hash_algorithm = "sha256";
}

typedef struct props_s {
  int done, status;
  size_t nprocs;
  int has_metrics;
  uint64_t pids;
} props_t;

static void on_props(void *data, int status, const hcsb_guest_error_t *gerr,
                     const hcsb_properties_t *p) {
  props_t *pr = data;
  (void)gerr;
  pr->done++;
  pr->status = status;
  if (p != NULL) {
    pr->nprocs = p->nprocesses;
    pr->has_metrics = p->metrics != NULL;
    if (p->metrics != NULL) pr->pids = p->metrics->pids.current;
  }
}

/* ------------------------------------------------------------------------ */
/* Cases of the "containers" group (one VM) */

static void case_negotiated(void) {
  struct mallinfo2 before, after;
  vm_t *keep = V, probe;
  char path[64], line[256];
  long vsockd_kb = -1, qemu_kb = -1;
  FILE *f;

  CHECK_EQ(hcsb_conn_protocol(V->conn), 4);
  CHECK_STR(hcsb_conn_os(V->conn), "linux");
  printf(
      "# boot to negotiated: %.2f s (hcsb_uvm_start to its callback: "
      "backend, QEMU, kernel, init, guest, negotiation)\n",
      (V->t_up - V->t_start) / 1e3);
  /* The host memory one more VM costs this process: the library's heap
   * for a second, identical VM, measured from before its start to its
   * negotiated connection.  hcsb-vsockd's and QEMU's own RSS are read
   * from /proc. */
  V = &probe;
  before = mallinfo2();
  vm_boot(&probe);
  after = mallinfo2();
  snprintf(path, sizeof path, "/proc/%d/status", hcsb_uvm_backend_pid(probe.u));
  if ((f = fopen(path, "r")) != NULL) {
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "VmRSS: %ld kB", &vsockd_kb) == 1) break;
    fclose(f);
  }
  snprintf(path, sizeof path, "/proc/%d/status", hcsb_uvm_pid(probe.u));
  if ((f = fopen(path, "r")) != NULL) {
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "VmRSS: %ld kB", &qemu_kb) == 1) break;
    fclose(f);
  }
  printf(
      "# host memory per VM: library heap %.1f KiB, hcsb-vsockd RSS %ld "
      "KiB (QEMU's own RSS, aside: %ld KiB)\n",
      ((double)after.uordblks - (double)before.uordblks) / 1024.0, vsockd_kb,
      qemu_kb);
  CHECK(after.uordblks > before.uordblks);
  vm_shutdown(&probe);
  CHECK_EQ(uv_loop_close(&probe.loop), 0);
  V = keep;
}

/* A container from the busybox layer image, through its whole life. */
static void case_container_lifecycle(void) {
  const char *const base[] = {base_img};
  const char *const cat[] = {"/bin/sh", "-c",
                             "cat /marker-layer; hostname; "
                             "test -e /init || test -e /lib/uvm-modules "
                             "|| echo no-initramfs",
                             NULL};
  const hcsb_uvm_vpmem_t *devs;
  proc_t init, ex;
  api_ctr_t t;
  double t0 = hcsb_test_now_ms();
  int n0 = mounts();
  size_t ndev;

  ctr_create(&t, "life", LONG_INIT, base, 1);
  if (t.create_status != 0)
    hcsb_test_fail(__FILE__, __LINE__, "create: %s %s",
                   hcsb_strerror(t.create_status), t.message);
  ndev = hcsb_uvm_vpmem_devices(V->u, &devs);
  CHECK(ndev >= 1);
  CHECK_EQ(devs[ndev - 1].refs, 1);
  CHECK(devs[ndev - 1].mount_path != NULL);
  p_start(&init, t.c, NULL);
  RUN_UNTIL_MS(&V->loop, strstr(init.out, "ready\n") != NULL, 120000);
  printf(
      "# create -> first output: %.0f ms (VPMem %.0f ms: plug %.0f, "
      "node %.0f, mount %.0f)\n",
      init.t_first - t0, V->t_mounted - t0, V->t_plugged - t0,
      V->t_node - V->t_plugged, V->t_mounted - V->t_node);
  /* The container sees the image, not the VM's initramfs. */
  p_start(&ex, t.c, cat);
  p_finish(&ex);
  CHECK_EQ(ex.create_status, 0);
  CHECK_EQ(ex.code, 0);
  CHECK_STR(ex.out, "from-the-base-layer\nctr\nno-initramfs\n");
  /* ps and stats from the guest's cgroups. */
  {
    props_t pr = {0};
    CHECK_EQ(hcsb_container_process_list(t.c, NULL, on_props, &pr), 0);
    RUN_UNTIL_MS(&V->loop, pr.done, 60000);
    CHECK_EQ(pr.status, 0);
    CHECK(pr.nprocs >= 1);
    memset(&pr, 0, sizeof pr);
    CHECK_EQ(hcsb_container_statistics(t.c, NULL, on_props, &pr), 0);
    RUN_UNTIL_MS(&V->loop, pr.done, 60000);
    CHECK_EQ(pr.status, 0);
    CHECK(pr.has_metrics);
    CHECK(pr.pids >= 1);
  }
  ctr_kill_wait(&t, &init);
  CHECK_EQ(init.code, 3);
  CHECK(strstr(init.out, "bye\n") != NULL);
  CHECK_EQ(t.wait_status, 0);
  CHECK_EQ(t.exit.end, HCSB_CONTAINER_EXITED);
  ctr_delete(&t);
  /* Every mount of the container is gone; the device stays plugged. */
  CHECK_EQ(mounts(), n0);
  CHECK_EQ(refs_of((uint32_t)ndev - 1), 0);
  CHECK_EQ(hcsb_uvm_vpmem_devices(V->u, NULL), ndev);
}

/* Two containers on one layer: one device, two references; the layer
 * stays mounted for the second when the first is deleted. */
static void case_two_containers_share_a_layer(void) {
  const char *const base[] = {base_img};
  const char *const cat[] = {"/bin/cat", "/marker-layer", NULL};
  proc_t ia, ib, ex;
  api_ctr_t a, b;
  size_t n0 = hcsb_uvm_vpmem_devices(V->u, NULL);
  uint32_t dev;
  const hcsb_uvm_vpmem_t *devs;

  ctr_create(&a, "share-a", LONG_INIT, base, 1);
  CHECK_EQ(a.create_status, 0);
  ctr_create(&b, "share-b", LONG_INIT, base, 1);
  CHECK_EQ(b.create_status, 0);
  CHECK_EQ(hcsb_uvm_vpmem_devices(V->u, &devs), n0 > 0 ? n0 : 1);
  for (dev = 0; dev < hcsb_uvm_vpmem_devices(V->u, NULL); dev++)
    if (devs[dev].refs == 2) break;
  CHECK(dev < hcsb_uvm_vpmem_devices(V->u, NULL));
  p_start(&ia, a.c, NULL);
  p_start(&ib, b.c, NULL);
  RUN_UNTIL_MS(&V->loop, strstr(ia.out, "ready") && strstr(ib.out, "ready"),
               120000);
  ctr_kill_wait(&a, &ia);
  ctr_delete(&a);
  CHECK_EQ(refs_of(dev), 1);
  /* b still reads its layer. */
  p_start(&ex, b.c, cat);
  p_finish(&ex);
  CHECK_EQ(ex.code, 0);
  CHECK_STR(ex.out, "from-the-base-layer\n");
  ctr_kill_wait(&b, &ib);
  ctr_delete(&b);
  CHECK_EQ(refs_of(dev), 0);
}

/* A layer image the VM has not seen yet is hot-plugged into the running
 * VM for a container with two layers; the top one wins. */
static void case_second_layer_hot_added(void) {
  const char *const layers[] = {base_img, top_img};
  const char *const cat[] = {"/bin/sh", "-c",
                             "cat /marker-layer /marker-top /shadowed", NULL};
  size_t n0 = hcsb_uvm_vpmem_devices(V->u, NULL);
  proc_t init, ex;
  api_ctr_t t;

  ctr_create(&t, "two-layers", LONG_INIT, layers, 2);
  if (t.create_status != 0)
    hcsb_test_fail(__FILE__, __LINE__, "create: %s %s",
                   hcsb_strerror(t.create_status), t.message);
  CHECK_EQ(hcsb_uvm_vpmem_devices(V->u, NULL), n0 + 1);
  p_start(&init, t.c, NULL);
  RUN_UNTIL_MS(&V->loop, strstr(init.out, "ready") != NULL, 120000);
  p_start(&ex, t.c, cat);
  p_finish(&ex);
  CHECK_EQ(ex.code, 0);
  CHECK_STR(ex.out, "from-the-base-layer\nfrom-the-top-layer\ntop\n");
  ctr_kill_wait(&t, &init);
  ctr_delete(&t);
  CHECK_EQ(refs_of((uint32_t)n0), 0);
}

/* runc refuses the container (no /proc in its spec): the create fails
 * with the guest's error and nothing it mounted is left in the guest. */
static void case_failed_create_leaves_no_mounts(void) {
  const char *const layers[] = {base_img, late_img};
  size_t n0 = hcsb_uvm_vpmem_devices(V->u, NULL);
  int m0 = mounts();
  api_ctr_t t;

  ctr_create(&t, "broken", "no-proc", layers, 2);
  CHECK_EQ(t.create_status, HCSB_EGUEST);
  CHECK_EQ(t.hresult, HCSB_E_FAIL);
  CHECK(strstr(t.message, "runc") != NULL);
  CHECK(t.c != NULL); /* the create was sent: the handle is ours */
  hcsb_container_close(t.c, api_ctr_closed, &t);
  RUN_UNTIL_MS(&V->loop, t.closed, 10000);
  CHECK_EQ(mounts(), m0);
  /* What was plugged for it stays plugged (a device cannot be unplugged)
   * but holds no reference any more. */
  CHECK(hcsb_uvm_vpmem_devices(V->u, NULL) > n0);
  for (uint32_t i = 0; i < hcsb_uvm_vpmem_devices(V->u, NULL); i++)
    CHECK_EQ(refs_of(i), 0);
}

typedef struct vp_s {
  int done, status;
  uint32_t dev, hresult;
  char mount[128], message[512];
} vp_t;

static void on_vpmem(void *data, hcsb_uvm_t *u, int status,
                     const hcsb_guest_error_t *gerr,
                     const hcsb_uvm_vpmem_t *d) {
  vp_t *v = data;
  (void)u;
  v->done++;
  v->status = status;
  if (d != NULL) {
    v->dev = d->device_number;
    snprintf(v->mount, sizeof v->mount, "%s", d->mount_path);
  }
  if (gerr != NULL) {
    v->hresult = gerr->hresult;
    snprintf(v->message, sizeof v->message, "%s", gerr->message);
  }
}

/* dm-verity: the right root hash mounts and reads; one digit off fails
 * with the guest's error, and nothing stays mounted. */
static void case_verity(void) {
  hcsb_uvm_vpmem_opts_t vo;
  hcsb_verity_info_t v;
  char digest[200], salt[200], cmd[512];
  vp_t a = {0}, b = {0};
  done_t r = {0};
  uint32_t code;
  int m0 = mounts();
  double t0;

  verity_of(&v, digest, salt);
  memset(&vo, 0, sizeof vo);
  vo.verity = &v;
  t0 = hcsb_test_now_ms();
  CHECK_EQ(hcsb_uvm_add_vpmem(V->u, verity_img, &vo, on_vpmem, &a), 0);
  RUN_UNTIL_MS(&V->loop, a.done, 120000);
  if (a.status != 0)
    hcsb_test_fail(__FILE__, __LINE__, "add: %s %s", hcsb_strerror(a.status),
                   a.message);
  printf("# VPMem add with dm-verity: %.0f ms\n", hcsb_test_now_ms() - t0);
  snprintf(cmd, sizeof cmd,
           "cat %s/marker-layer; grep ' %s ' /proc/mounts | cut -d' ' -f1",
           a.mount, a.mount);
  const char *out = uvm_sh(cmd, &code);
  CHECK_EQ(code, 0);
  CHECK(strncmp(out, "from-the-base-layer\n/dev/mapper/", 32) == 0);
  CHECK(strstr(out, digest) != NULL);
  CHECK_EQ(hcsb_uvm_remove_vpmem(V->u, a.dev, on_done, &r), 0);
  RUN_UNTIL_MS(&V->loop, r.done, 60000);
  CHECK_EQ(r.status, 0);
  CHECK_EQ(mounts(), m0);

  digest[0] = digest[0] == '0' ? '1' : '0';
  CHECK_EQ(hcsb_uvm_add_vpmem(V->u, verity_img, &vo, on_vpmem, &b), 0);
  RUN_UNTIL_MS(&V->loop, b.done, 120000);
  CHECK_EQ(b.status, HCSB_EGUEST);
  CHECK_EQ(b.hresult, HCSB_E_FAIL);
  CHECK(strstr(b.message, "failed to mount /dev/mapper/") != NULL);
  CHECK(strstr(b.message, digest) != NULL);
  CHECK_EQ(mounts(), m0);
}

/* ------------------------------------------------------------------------ */
/* The "kill" group: QEMU is killed with everything in flight. */

static void case_qemu_killed_mid_call(void) {
  const char *const base[] = {base_img};
  const char *const argv[] = {"/bin/sh", "-c", "echo up; sleep 1000", NULL};
  int qemu = hcsb_uvm_pid(V->u), backend = hcsb_uvm_backend_pid(V->u);
  proc_t uvmp, init;
  api_ctr_t t;
  vp_t add = {0};
  done_t stacks = {0};

  ctr_create(&t, "doomed", LONG_INIT, base, 1);
  CHECK_EQ(t.create_status, 0);
  p_start(&init, t.c, NULL);
  p_start(&uvmp, NULL, argv);
  RUN_UNTIL_MS(&V->loop, strstr(init.out, "ready") && strstr(uvmp.out, "up"),
               120000);
  CHECK_EQ(hcsb_container_wait(t.c, 0, api_ctr_waited, &t), 0);
  /* A hot-plug and a call on the wire when QEMU dies. */
  CHECK_EQ(hcsb_uvm_add_vpmem(V->u, late_img, NULL, on_vpmem, &add), 0);
  CHECK_EQ(hcsb_conn_dump_stacks(
               V->conn, NULL, (hcsb_stacks_cb)(void (*)(void))on_done, &stacks),
           0);
  CHECK_EQ(kill(qemu, SIGKILL), 0);
  RUN_UNTIL_MS(&V->loop,
               V->exits && V->lost && add.done && stacks.done && uvmp.waited &&
                   init.waited && t.waited,
               60000);
  CHECK_EQ(V->exits, 1);
  CHECK_EQ(V->exit.term_signal, SIGKILL);
  CHECK(V->lost_status == -ECONNRESET || V->lost_status == -EPIPE);
  CHECK(add.status == -EHOSTDOWN || add.status == -ECONNRESET ||
        add.status == -EPIPE);
  CHECK(uvmp.wait_status == -ECONNRESET || uvmp.wait_status == -EPIPE);
  CHECK_EQ(t.exit.end, HCSB_CONTAINER_CONNECTION_LOST);
  RUN_UNTIL_MS(&V->loop, gone(backend), 10000);
  /* Nothing fires twice. */
  {
    double end = hcsb_test_now_ms() + 500;
    while (hcsb_test_now_ms() < end) uv_run(&V->loop, UV_RUN_NOWAIT);
  }
  CHECK_EQ(V->exits + V->lost + add.done + stacks.done + uvmp.waited +
               init.waited + t.waited,
           7);
  CHECK(gone(qemu));
  CHECK_EQ(hcsb_uvm_state(V->u), HCSB_UVM_STOPPED);
  hcsb_process_close(uvmp.p, p_closed, &uvmp);
  hcsb_process_close(init.p, p_closed, &init);
  hcsb_container_close(t.c, api_ctr_closed, &t);
  RUN_UNTIL_MS(&V->loop, uvmp.closed && init.closed && t.closed, 10000);
}

/* ------------------------------------------------------------------------ */
/* The "starter" group: the process that started the VM is SIGKILLed. */

static void case_starter_killed(void) {
  int fds[2], pids[2] = {0, 0};
  pid_t child;

  CHECK_EQ(pipe(fds), 0);
  child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    vm_t vm;
    close(fds[0]);
    vm_boot(&vm);
    pids[0] = hcsb_uvm_pid(vm.u);
    pids[1] = hcsb_uvm_backend_pid(vm.u);
    if (write(fds[1], pids, sizeof pids) != (ssize_t)sizeof pids) _exit(2);
    for (;;) uv_run(&vm.loop, UV_RUN_DEFAULT);
  }
  close(fds[1]);
  CHECK_EQ(read(fds[0], pids, sizeof pids), (ssize_t)sizeof pids);
  close(fds[0]);
  CHECK(!gone(pids[0]) && !gone(pids[1]));
  CHECK_EQ(kill(child, SIGKILL), 0);
  CHECK_EQ(waitpid(child, NULL, 0), child);
  {
    double end = hcsb_test_now_ms() + 10000.0 * hcsb_test_timeout_scale();
    while ((!gone(pids[0]) || !gone(pids[1])) && hcsb_test_now_ms() < end)
      usleep(20000);
  }
  CHECK(gone(pids[0]));
  CHECK(gone(pids[1]));
}

/* ------------------------------------------------------------------------ */
/* The group runner */

typedef struct vcase_s {
  const char *name;
  void (*fn)(void);
} vcase_t;

typedef struct vgroup_s {
  const char *name;
  int shared_vm; /* boot one VM for the group's cases */
  unsigned timeout_s;
  const vcase_t *cases;
  size_t n;
} vgroup_t;

static const vcase_t containers[] = {
    {"uvm_vm_negotiated", case_negotiated},
    {"uvm_vm_container_lifecycle", case_container_lifecycle},
    {"uvm_vm_two_containers_share_a_layer", case_two_containers_share_a_layer},
    {"uvm_vm_second_layer_hot_added", case_second_layer_hot_added},
    {"uvm_vm_failed_create_leaves_no_mounts",
     case_failed_create_leaves_no_mounts},
    {"uvm_vm_verity", case_verity},
};
static const vcase_t killing[] = {
    {"uvm_vm_qemu_killed_mid_call", case_qemu_killed_mid_call},
};
static const vcase_t starter[] = {
    {"uvm_vm_starter_killed", case_starter_killed},
};
static const vgroup_t groups[] = {
    {"containers", 1, 900, containers,
     sizeof containers / sizeof containers[0]},
    {"kill", 1, 400, killing, 1},
    {"starter", 0, 400, starter, 1},
};

static int selected(int argc, char **argv, const char *name) {
  if (argc <= 1) return 1;
  for (int i = 1; i < argc; i++)
    if (strstr(name, argv[i]) != NULL) return 1;
  return 0;
}

/* In the child: boot (when shared), then run the selected cases from
 * `first`, writing the index of each that passed to `fd`. */
static void run_group(const vgroup_t *g, size_t first, int argc, char **argv,
                      int fd) {
  vm_t vm;
  setpgid(0, 0);
  make_images(g->name);
  if (g->shared_vm) {
    V = &vm;
    vm_boot(&vm);
  }
  for (size_t i = first; i < g->n; i++) {
    double t0 = hcsb_test_now_ms();
    unsigned char idx = (unsigned char)i;
    if (!selected(argc, argv, g->cases[i].name)) continue;
    if (write(fd, &idx, 1) != 1) _exit(3); /* started */
    g->cases[i].fn();
    fflush(stdout);
    printf("ok - %s (%.0f ms)\n", g->cases[i].name, hcsb_test_now_ms() - t0);
    fflush(stdout);
    idx |= 0x80;
    if (write(fd, &idx, 1) != 1) _exit(3); /* passed */
  }
  if (g->shared_vm && hcsb_uvm_state(vm.u) != HCSB_UVM_STOPPED)
    vm_shutdown(&vm);
  exit(0);
}

int main(int argc, char **argv) {
  unsigned passed = 0, failed = 0;

  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  /* One directory for every group's images and run directories, made
   * before the children inherit its name, removed at the end. */
  hcsb_test_tmpdir();
  for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++) {
    const vgroup_t *g = &groups[gi];
    size_t first = 0;
    int any = 0;
    for (size_t i = 0; i < g->n; i++)
      any |= selected(argc, argv, g->cases[i].name);
    if (!any) continue;
    printf("# group %s%s\n", g->name, g->shared_vm ? " (one VM)" : "");
    while (first < g->n) {
      int fds[2], status = 0;
      unsigned char b;
      long running = -1;
      double deadline = hcsb_test_now_ms() +
                        g->timeout_s * 1000.0 * hcsb_test_timeout_scale();
      pid_t pid;
      if (pipe(fds) != 0) return 1;
      fflush(NULL);
      pid = fork();
      if (pid == 0) {
        close(fds[0]);
        run_group(g, first, argc, argv, fds[1]);
      }
      close(fds[1]);
      fcntl(fds[0], F_SETFL, O_NONBLOCK);
      for (;;) {
        ssize_t n = read(fds[0], &b, 1);
        if (n == 1) {
          if (b & 0x80) {
            passed++;
            running = -1;
          } else {
            running = b;
          }
          continue;
        }
        if (n == 0) break;
        if (hcsb_test_now_ms() > deadline) {
          kill(-pid, SIGKILL);
          kill(pid, SIGKILL);
          printf("# group %s: timed out after %u s\n", g->name,
                 g->timeout_s * hcsb_test_timeout_scale());
          break;
        }
        usleep(20000);
      }
      close(fds[0]);
      waitpid(pid, &status, 0);
      kill(-pid, SIGKILL); /* anything of the group's left */
      if (running >= 0) {
        failed++;
        printf("not ok - %s: %s\n", g->cases[running].name,
               WIFSIGNALED(status) ? "failed (see above)" : "did not finish");
        first = (size_t)running + 1;
        continue; /* the rest in a fresh VM */
      }
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        /* The VM (or the images) never came up: every case not run fails. */
        for (size_t i = first; i < g->n; i++)
          if (selected(argc, argv, g->cases[i].name)) {
            failed++;
            printf("not ok - %s: the group's VM did not start\n",
                   g->cases[i].name);
          }
      }
      break;
    }
  }
  {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", hcsb_test_tmpdir());
    if (system(cmd) != 0)
      fprintf(stderr, "cannot remove %s\n", hcsb_test_tmpdir());
  }
  printf("test-uvm-vm: %u passed, %u failed\n", passed, failed);
  return failed ? 1 : 0;
}
