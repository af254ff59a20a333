/* hcsb-guest acting inside a real VM (make check-vm, group "guest"): the
 * library against the default guest (`hcsb-guest --vsock`), which mounts
 * VPMem layers, builds overlays and runs containers with runc.  The VM is
 * booted once by scripts/check-vm with three cold-plugged nvdimms holding
 * the images test/vm-guest-images built (a busybox root file system with
 * /marker-layer): plain, with a dm-verity tree appended, and at an offset
 * in a bigger device (dm-linear).  Their facts come in HCSB_VMG_*; the
 * guest respawns after each session, so every case has its own connection,
 * and each checks from inside the VM (a UVM process reading /proc/mounts)
 * that it left nothing mounted. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test-api-util.h"

#define LONG_MS 90000 /* runc under TCG on a busy machine */
#define E_FAIL 0x80004005u

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *env(const char *name) {
  const char *v = getenv(name);
  if (v == NULL || v[0] == '\0')
    hcsb_test_fail(__FILE__, __LINE__,
                   "%s is not set: run under scripts/check-vm (make check-vm)",
                   name);
  return v;
}

static void vm_open(api_guest_t *g, uv_loop_t *loop) {
  uv_loop_init(loop);
  /* The guest is restarted by the VM's init after each session; it first
   * undoes what the last one left (runc delete, unmounts). */
  api_open_address(g, loop, env("HCSB_UVM_GUEST"), 60000);
}

/* Runs `line` with /bin/sh in the VM (a UVM process); returns its stdout
 * (free it) and stores its exit code. */
static char *sh(api_guest_t *g, const char *line, uint32_t *code) {
  const char *argv[] = {"/bin/sh", "-c", line, NULL};
  api_proc_t r;
  char *out;

  api_uvm_start(g, &r, argv, "o");
  api_proc_finish(g, &r, NULL);
  CHECK_EQ(r.wait_status, 0);
  if (code != NULL) *code = r.exit_code;
  out = strdup(r.out != NULL ? r.out : "");
  CHECK(out != NULL);
  api_proc_free(&r);
  return out;
}

/* Lines of /proc/mounts, as the VM sees them. */
static int mounts(api_guest_t *g) {
  char *out = sh(g, "grep -c . /proc/mounts", NULL);
  int n = atoi(out);
  free(out);
  CHECK(n > 5);
  return n;
}

/* The /dev/pmemN of each image: told apart by size (layer < verity <
 * packed).  dev[0] plain, dev[1] verity, dev[2] packed. */
static void devices(api_guest_t *g, uint32_t dev[3]) {
  char *out = sh(g,
                 "for f in /sys/block/pmem*; do "
                 "echo ${f#/sys/block/pmem} $(cat $f/size); done",
                 NULL);
  unsigned long long size[8];
  unsigned num[8], n = 0, i, j;
  char *p = out;

  while (n < 8 && sscanf(p, "%u %llu", &num[n], &size[n]) == 2) {
    n++;
    p = strchr(p, '\n');
    if (p == NULL) break;
    p++;
  }
  free(out);
  CHECK_EQ(n, 3);
  for (i = 0; i < 3; i++) { /* order by size */
    unsigned best = i;
    for (j = i + 1; j < 3; j++)
      if (size[j] < size[best]) best = j;
    dev[i] = num[best];
    size[best] = size[i];
    num[best] = num[i];
  }
}

static void modify(api_guest_t *g, const char *json, api_done_t *d) {
  memset(d, 0, sizeof *d);
  CHECK_EQ(hcsb_conn_modify(g->conn, NULL, json, api_done, d), 0);
  api_run_until(g->loop, &d->done, LONG_MS);
}

/* VPMem Add/Remove of device `dev` at `path`; mapping and verity optional. */
static void vpmem(api_guest_t *g, hcsb_request_type_t rt, uint32_t dev,
                  const char *path, int mapped, const char *root,
                  api_done_t *d) {
  hcsb_vpmem_device_t v;
  hcsb_verity_info_t vi;
  char *json = NULL;

  memset(&v, 0, sizeof v);
  v.device_number = dev;
  v.mount_path = path;
  if (mapped) {
    v.has_mapping = 1;
    v.device_offset_bytes = strtoull(env("HCSB_VMG_PACK_OFFSET"), NULL, 10);
    v.device_size_bytes = strtoull(env("HCSB_VMG_DATA_BYTES"), NULL, 10);
  }
  memset(&vi, 0, sizeof vi);
  vi.root_digest = root;
  vi.salt = env("HCSB_VMG_VERITY_SALT");
  vi.hash_algorithm = "sha256";
  vi.data_block_size = 4096;
  vi.hash_offset_bytes = strtoull(env("HCSB_VMG_DATA_BYTES"), NULL, 10);
  vi.super_block = 1;
  vi.version = 1;
  CHECK_EQ(
      hcsb_modify_vpmem_device_verity(rt, &v, root != NULL ? &vi : NULL, &json),
      0);
  modify(g, json, d);
  free(json);
}

static void check_ok(const api_done_t *d) {
  if (d->status != 0)
    hcsb_test_fail(__FILE__, __LINE__, "status %d, 0x%08x: %s", d->status,
                   d->hresult, d->message);
}

/* ------------------------------------------------------------------------ */
/* Storage */

/* VPMem Add mounts the image read-only; Remove undoes it; both repeat
 * harmlessly. */
static void test_vmg_vpmem_mount(void) {
  uv_loop_t loop;
  api_guest_t g;
  api_done_t d;
  uint32_t dev[3];
  int n0;
  char *out;

  vm_open(&g, &loop);
  devices(&g, dev);
  n0 = mounts(&g);
  vpmem(&g, HCSB_REQUEST_ADD, dev[0], "/run/layers/vmg0", 0, NULL, &d);
  check_ok(&d);
  out = sh(&g,
           "cat /run/layers/vmg0/marker-layer; "
           "grep ' /run/layers/vmg0 ' /proc/mounts | cut -d' ' -f1,3; "
           "grep ' /run/layers/vmg0 ' /proc/mounts | cut -d' ' -f4 | "
           "cut -d, -f1; "
           "touch /run/layers/vmg0/x 2>/dev/null && echo writable || "
           "echo read-only",
           NULL);
  {
    char want[128];
    snprintf(want, sizeof want, "from-the-layer\n/dev/pmem%u ext4\nro\n",
             (unsigned)dev[0]);
    CHECK(strncmp(out, want, strlen(want)) == 0);
  }
  CHECK(strstr(out, "read-only\n") != NULL);
  free(out);
  CHECK_EQ(mounts(&g), n0 + 1);
  /* Again: already there, nothing more mounted. */
  vpmem(&g, HCSB_REQUEST_ADD, dev[0], "/run/layers/vmg0", 0, NULL, &d);
  check_ok(&d);
  CHECK_EQ(mounts(&g), n0 + 1);
  vpmem(&g, HCSB_REQUEST_REMOVE, dev[0], "/run/layers/vmg0", 0, NULL, &d);
  check_ok(&d);
  CHECK_EQ(mounts(&g), n0);
  out = sh(&g, "test -e /run/layers/vmg0 && echo left || echo gone", NULL);
  CHECK_STR(out, "gone\n");
  free(out);
  vpmem(&g, HCSB_REQUEST_REMOVE, dev[0], "/run/layers/vmg0", 0, NULL, &d);
  check_ok(&d);
  api_close(&g);
}

/* MappingInfo: the layer is a region of a bigger device, mapped with
 * dm-linear; the Remove takes the device-mapper device away too. */
static void test_vmg_dm_linear(void) {
  uv_loop_t loop;
  api_guest_t g;
  api_done_t d;
  uint32_t dev[3];
  char want[160], *out;
  int n0;

  vm_open(&g, &loop);
  devices(&g, dev);
  n0 = mounts(&g);
  vpmem(&g, HCSB_REQUEST_ADD, dev[2], "/run/layers/vmg1", 1, NULL, &d);
  check_ok(&d);
  out = sh(&g,
           "cat /run/layers/vmg1/marker-layer; ls /dev/mapper; "
           "grep -c ' /run/layers/vmg1 ' /proc/mounts",
           NULL);
  snprintf(want, sizeof want,
           "from-the-layer\ncontrol\ndm-linear-pmem%u-%s-%s\n1\n",
           (unsigned)dev[2], env("HCSB_VMG_PACK_OFFSET"),
           env("HCSB_VMG_DATA_BYTES"));
  CHECK_STR(out, want);
  free(out);
  vpmem(&g, HCSB_REQUEST_REMOVE, dev[2], "/run/layers/vmg1", 1, NULL, &d);
  check_ok(&d);
  out = sh(&g, "ls /dev/mapper", NULL);
  CHECK_STR(out, "control\n");
  free(out);
  CHECK_EQ(mounts(&g), n0);
  api_close(&g);
}

/* VerityInfo: a good root hash mounts through dm-verity; a wrong one fails
 * with the guest's error and leaves nothing behind. */
static void test_vmg_dm_verity(void) {
  const char *root = env("HCSB_VMG_VERITY_ROOT");
  uv_loop_t loop;
  api_guest_t g;
  api_done_t d;
  uint32_t dev[3];
  char want[256], bad[160], *out;
  int n0;

  vm_open(&g, &loop);
  devices(&g, dev);
  n0 = mounts(&g);
  vpmem(&g, HCSB_REQUEST_ADD, dev[1], "/run/layers/vmg2", 0, root, &d);
  check_ok(&d);
  out = sh(&g,
           "cat /run/layers/vmg2/marker-layer; ls /dev/mapper; "
           "grep ' /run/layers/vmg2 ' /proc/mounts | cut -d' ' -f1",
           NULL);
  snprintf(want, sizeof want,
           "from-the-layer\ncontrol\ndm-verity-pmem%u-%s\n"
           "/dev/mapper/dm-verity-pmem%u-%s\n",
           (unsigned)dev[1], root, (unsigned)dev[1], root);
  CHECK_STR(out, want);
  free(out);
  vpmem(&g, HCSB_REQUEST_REMOVE, dev[1], "/run/layers/vmg2", 0, root, &d);
  check_ok(&d);
  CHECK_EQ(mounts(&g), n0);

  /* One digit off: the table loads (dm-verity checks lazily), the first
   * read of the superblock fails, and so does the mount. */
  snprintf(bad, sizeof bad, "%s", root);
  bad[0] = bad[0] == '0' ? '1' : '0';
  vpmem(&g, HCSB_REQUEST_ADD, dev[1], "/run/layers/vmg3", 0, bad, &d);
  CHECK_EQ(d.status, HCSB_EGUEST);
  CHECK_EQ(d.hresult, E_FAIL);
  snprintf(want, sizeof want,
           "failed to mount /dev/mapper/dm-verity-pmem%u-%s onto "
           "/run/layers/vmg3: ",
           (unsigned)dev[1], bad);
  if (strncmp(d.message, want, strlen(want)) != 0)
    hcsb_test_fail(__FILE__, __LINE__, "message: %s", d.message);
  out = sh(&g,
           "ls /dev/mapper; test -e /run/layers/vmg3 && echo left || "
           "echo gone",
           NULL);
  CHECK_STR(out, "control\ngone\n");
  free(out);
  CHECK_EQ(mounts(&g), n0);
  api_close(&g);
}

/* A device that never comes: the Add waits a bounded time, then fails
 * with the GCS's words. */
static void test_vmg_vpmem_missing(void) {
  uv_loop_t loop;
  api_guest_t g;
  api_done_t d;
  double t0;

  vm_open(&g, &loop);
  t0 = mono_ms();
  vpmem(&g, HCSB_REQUEST_ADD, 57, "/run/layers/vmg57", 0, NULL, &d);
  CHECK_EQ(d.status, HCSB_EGUEST);
  CHECK_EQ(d.hresult, E_FAIL);
  CHECK(strstr(d.message,
               "failed to mount /dev/pmem57 onto "
               "/run/layers/vmg57: no such file or directory") == d.message);
  CHECK(mono_ms() - t0 >= 9000); /* it waited (10 s) */
  api_close(&g);
}

/* ------------------------------------------------------------------------ */
/* Containers */

#define CAPS                                                            \
  "[\"CAP_CHOWN\",\"CAP_DAC_OVERRIDE\",\"CAP_FOWNER\",\"CAP_KILL\","    \
  "\"CAP_SETGID\",\"CAP_SETUID\",\"CAP_NET_BIND_SERVICE\",\"CAP_AUDIT_" \
  "WRITE\"]"

/* What containerd would send, trimmed: runc's default spec. */
#define SPEC                                                                   \
  "{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"terminal\":false,"             \
  "\"user\":{\"uid\":0,\"gid\":0},\"args\":%s,"                                \
  "\"env\":[\"PATH=/bin\",\"TERM=xterm\"],\"cwd\":\"/\","                      \
  "\"capabilities\":{\"bounding\":" CAPS ",\"effective\":" CAPS                \
  ",\"permitted\":" CAPS                                                       \
  "},"                                                                         \
  "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":1024}],"    \
  "\"noNewPrivileges\":true},"                                                 \
  "\"root\":{\"path\":\"rootfs\"},\"hostname\":\"vmg-host\","                  \
  "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":"       \
  "\"proc\"},{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":"         \
  "\"tmpfs\",\"options\":[\"nosuid\",\"strictatime\",\"mode=755\","            \
  "\"size=65536k\"]},{\"destination\":\"/dev/pts\",\"type\":\"devpts\","       \
  "\"source\":\"devpts\",\"options\":[\"nosuid\",\"noexec\",\"newinstance\","  \
  "\"ptmxmode=0666\",\"mode=0620\"]},{\"destination\":\"/dev/shm\","           \
  "\"type\":\"tmpfs\",\"source\":\"shm\",\"options\":[\"nosuid\",\"noexec\","  \
  "\"nodev\",\"mode=1777\",\"size=65536k\"]},{\"destination\":\"/sys\","       \
  "\"type\":\"sysfs\",\"source\":\"sysfs\",\"options\":[\"nosuid\","           \
  "\"noexec\",\"nodev\",\"ro\"]}],"                                            \
  "\"linux\":{\"resources\":{\"devices\":[{\"allow\":false,\"access\":"        \
  "\"rwm\"}]},\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"ipc\"},"          \
  "{\"type\":\"uts\"},{\"type\":\"mount\"}],\"maskedPaths\":[\"/proc/kcore\"," \
  "\"/proc/keys\"],\"readonlyPaths\":[\"/proc/sys\",\"/proc/"                  \
  "sysrq-trigger\"]}}"

/* Creates `id` over the layer mounted at `layer`, with a scratch; its
 * init runs `init_script` with /bin/sh, or `args` (a JSON array) when the
 * script is NULL. */
static void ctr_create(api_guest_t *g, api_ctr_t *t, const char *id,
                       const char *layer, const char *init_script,
                       const char *args) {
  const char *layers[] = {layer};
  hcsb_container_config_t cfg;
  char spec[4096], scratch[256], argv[1024];

  memset(t, 0, sizeof *t);
  if (init_script != NULL) {
    snprintf(argv, sizeof argv, "[\"/bin/sh\",\"-c\",\"%s\"]", init_script);
    args = argv;
  }
  snprintf(spec, sizeof spec, SPEC, args);
  snprintf(scratch, sizeof scratch, "/run/gcs/c/%s/scratch", id);
  memset(&cfg, 0, sizeof cfg);
  cfg.id = id;
  cfg.oci_spec_json = spec;
  cfg.layers = layers;
  cfg.nlayers = 1;
  cfg.layer_scratch_path = scratch;
  CHECK_EQ(hcsb_conn_create_container(g->conn, NULL, &cfg, api_ctr_created, t,
                                      &t->c),
           0);
  api_run_until(g->loop, &t->created, LONG_MS);
}

/* The init (argv NULL) or an exec, with a pty when tty. */
static void ctr_proc(api_guest_t *g, api_ctr_t *t, api_proc_t *r,
                     const char *const *argv, const char *pipes, int tty,
                     const char *const *envv, size_t nenv, const char *cwd) {
  hcsb_process_config_t cfg;

  memset(r, 0, sizeof *r);
  api_proc_config(&cfg, argv, pipes, tty);
  cfg.environment = envv;
  cfg.nenvironment = nenv;
  cfg.working_directory = cwd;
  cfg.console_height = tty ? 40 : 0;
  cfg.console_width = tty ? 132 : 0;
  CHECK_EQ(hcsb_container_create_process(t->c, NULL, &cfg, api_proc_created, r,
                                         &r->p),
           0);
  api_run_until(g->loop, &r->created, LONG_MS);
  if (r->create_status != 0)
    hcsb_test_fail(__FILE__, __LINE__, "process: status %d 0x%08x",
                   r->create_status, r->create_hresult);
}

static void run_until_out(uv_loop_t *loop, api_proc_t *r, const char *text) {
  double end = mono_ms() + LONG_MS;

  while ((r->out == NULL || strstr(r->out, text) == NULL) && !r->out_eof &&
         mono_ms() < end)
    uv_run(loop, UV_RUN_ONCE);
  if (r->out == NULL || strstr(r->out, text) == NULL)
    hcsb_test_fail(__FILE__, __LINE__, "no \"%s\" in the output (\"%s\")", text,
                   r->out != NULL ? r->out : "");
}

typedef struct props_s {
  int done, status;
  uint32_t init_pid;
  int init_listed;
  size_t nprocesses;
  uint64_t pids_current, mem_usage;
} props_t;

static void props_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                     const hcsb_properties_t *props) {
  props_t *s = data;
  size_t i;

  (void)gerr;
  s->done++;
  s->status = status;
  if (props == NULL) return;
  s->nprocesses = props->nprocesses;
  for (i = 0; i < props->nprocesses; i++)
    if (props->processes[i].process_id == s->init_pid) s->init_listed++;
  if (props->metrics != NULL) {
    s->pids_current = props->metrics->pids.current;
    s->mem_usage = props->metrics->memory.usage.usage;
  }
}

static void signal_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                      int delivered) {
  api_done_t *d = data;
  (void)gerr;
  d->done++;
  d->status = status;
  d->hresult = (uint32_t)delivered;
}

/* A container whose root is the layer image: its init and execs see the
 * image's files (not the initramfs's), run as runc runs them, and every
 * part of the life cycle works; afterwards nothing is left mounted. */
static void test_vmg_container_lifecycle(void) {
  const char *exec_argv[] = {
      "/bin/sh", "-c", "echo \"exec:$X:$(pwd):$(hostname)\"; exit 5", NULL};
  const char *exec_env[] = {"X=forty-two", "PATH=/bin"};
  const char *tty_argv[] = {"/bin/sh", "-c",
                            "stty size; read x; stty size; exit 9", NULL};
  const char *sleep_argv[] = {"/bin/sleep", "1000", NULL};
  api_done_t d, start = {0}, sig = {0}, del = {0}, rs = {0};
  api_proc_t init, ex, tty, sl;
  props_t pl, st;
  uv_loop_t loop;
  api_guest_t g;
  uint32_t dev[3];
  api_ctr_t t, w;
  char *out;
  int n0;

  vm_open(&g, &loop);
  devices(&g, dev);
  n0 = mounts(&g);
  vpmem(&g, HCSB_REQUEST_ADD, dev[0], "/run/layers/vmgc", 0, NULL, &d);
  check_ok(&d);
  ctr_create(&g, &t, "vmg-c1", "/run/layers/vmgc",
             "trap 'echo got-TERM; exit 143' TERM; cat /marker-layer; "
             "test -e /init && echo initramfs-visible; echo init-up; "
             "read l; echo got:$l; sleep 1000 & wait",
             NULL);
  if (t.create_status != 0)
    hcsb_test_fail(__FILE__, __LINE__, "create: %d 0x%08x %s", t.create_status,
                   t.hresult, t.message);
  CHECK_EQ(hcsb_container_start(t.c, NULL, api_done, &start), 0);
  api_run_until(&loop, &start.done, LONG_MS);
  CHECK_EQ(start.status, 0);
  memset(&w, 0, sizeof w);
  CHECK_EQ(hcsb_container_wait(t.c, 0, api_ctr_waited, &w), 0);

  /* The init: stdin and stdout relayed, the image's marker, no /init. */
  ctr_proc(&g, &t, &init, NULL, "io", 0, NULL, 0, NULL);
  CHECK_EQ(hcsb_process_read_start(init.p, api_proc_read, &init), 0);
  run_until_out(&loop, &init, "init-up\n");
  CHECK_STR(init.out, "from-the-layer\ninit-up\n");
  CHECK_EQ(hcsb_process_write(init.p, "hello\n", 6, NULL, NULL), 0);
  run_until_out(&loop, &init, "got:hello\n");

  /* An exec: environment, working directory, hostname, exit code. */
  ctr_proc(&g, &t, &ex, exec_argv, "o", 0, exec_env, 2, "/work");
  api_proc_finish(&g, &ex, NULL);
  CHECK_EQ(ex.exit_code, 5);
  CHECK_STR(ex.out, "exec:forty-two:/work:vmg-host\n");
  api_proc_free(&ex);

  /* A tty exec: its size, a resize, its exit code. */
  ctr_proc(&g, &t, &tty, tty_argv, "io", 1, NULL, 0, NULL);
  CHECK_EQ(hcsb_process_read_start(tty.p, api_proc_read, &tty), 0);
  run_until_out(&loop, &tty, "\n");
  CHECK_STR(tty.out, "40 132\r\n");
  CHECK_EQ(hcsb_process_resize_console(tty.p, NULL, 120, 33, api_done, &rs), 0);
  api_run_until(&loop, &rs.done, LONG_MS);
  CHECK_EQ(rs.status, 0);
  api_proc_finish(&g, &tty, "go\r");
  CHECK_EQ(tty.exit_code, 9);
  CHECK(strstr(tty.out, "33 120\r\n") != NULL);
  api_proc_free(&tty);

  /* A signal to an exec: killed, 128 + 9 as runc reports it. */
  ctr_proc(&g, &t, &sl, sleep_argv, "", 0, NULL, 0, NULL);
  CHECK_EQ(hcsb_process_signal(sl.p, NULL, SIGKILL, signal_cb, &sig), 0);
  api_run_until(&loop, &sig.done, LONG_MS);
  CHECK_EQ(sig.status, 0);
  CHECK_EQ(sig.hresult, 1);
  api_proc_finish(&g, &sl, NULL);
  CHECK_EQ(sl.exit_code, 137);
  api_proc_free(&sl);

  /* ProcessList and statistics come from the container's cgroup. */
  memset(&pl, 0, sizeof pl);
  pl.init_pid = hcsb_process_pid(init.p);
  CHECK_EQ(hcsb_container_process_list(t.c, NULL, props_cb, &pl), 0);
  api_run_until(&loop, &pl.done, LONG_MS);
  CHECK_EQ(pl.status, 0);
  CHECK_EQ(pl.init_listed, 1);
  CHECK_EQ(pl.nprocesses, 2); /* sh and its sleep */
  memset(&st, 0, sizeof st);
  CHECK_EQ(hcsb_container_statistics(t.c, NULL, props_cb, &st), 0);
  api_run_until(&loop, &st.done, LONG_MS);
  CHECK_EQ(st.status, 0);
  CHECK_EQ(st.pids_current, 2);
  CHECK(st.mem_usage > 0);

  /* ContainerConstraints: runc update sets the cgroup's limit. */
  {
    api_done_t up = {0};
    char *json = NULL;
    CHECK_EQ(hcsb_modify_container_constraints(
                 HCSB_REQUEST_UPDATE, "{\"memory\":{\"limit\":67108864}}", NULL,
                 &json),
             0);
    CHECK_EQ(hcsb_container_modify(t.c, NULL, json, api_done, &up), 0);
    free(json);
    api_run_until(&loop, &up.done, LONG_MS);
    if (up.status != 0)
      hcsb_test_fail(__FILE__, __LINE__, "update: %d %s", up.status,
                     up.message);
    out = sh(&g,
             "cat /sys/fs/cgroup/memory/containers/vmg-c1/"
             "memory.limit_in_bytes",
             NULL);
    CHECK_STR(out, "67108864\n");
    free(out);
  }

  /* SIGTERM to the init is the container's shutdown (runc kill --all). */
  memset(&sig, 0, sizeof sig);
  CHECK_EQ(hcsb_process_signal(init.p, NULL, SIGTERM, signal_cb, &sig), 0);
  api_run_until(&loop, &sig.done, LONG_MS);
  CHECK_EQ(sig.status, 0);
  CHECK_EQ(hcsb_process_wait(init.p, 0, api_proc_waited, &init), 0);
  api_run_until(&loop, &init.waited, LONG_MS);
  CHECK_EQ(init.exit_code, 143);
  api_run_until(&loop, &init.out_eof, LONG_MS);
  CHECK(strstr(init.out, "got-TERM\n") != NULL);
  api_run_until(&loop, &w.waited, LONG_MS);
  CHECK_EQ(w.wait_status, 0);
  CHECK_EQ(w.exit.end, HCSB_CONTAINER_EXITED);
  hcsb_process_close(init.p, api_proc_closed, &init);
  api_run_until(&loop, &init.closed, LONG_MS);
  api_proc_free(&init);

  /* The delete removes the overlay (the library's tracking), then the
   * state; the VPMem layer is ours to remove. */
  CHECK_EQ(
      hcsb_conn_delete_container(g.conn, NULL, "vmg-c1", 0, api_done, &del), 0);
  api_run_until(&loop, &del.done, LONG_MS);
  if (del.status != 0)
    hcsb_test_fail(__FILE__, __LINE__, "delete: %d %s", del.status,
                   del.message);
  hcsb_container_close(t.c, api_ctr_closed, &t);
  api_run_until(&loop, &t.closed, LONG_MS);
  vpmem(&g, HCSB_REQUEST_REMOVE, dev[0], "/run/layers/vmgc", 0, NULL, &d);
  check_ok(&d);
  CHECK_EQ(mounts(&g), n0);
  out = sh(&g,
           "test -e /run/gcs/c/vmg-c1 && echo bundle-left; "
           "test -e /run/hcsb-guest/vmg-c1 && echo state-left; "
           "test -e /sys/fs/cgroup/pids/containers/vmg-c1 && echo cgroup-left; "
           "echo done",
           NULL);
  CHECK_STR(out, "done\n");
  free(out);
  api_close(&g);
}

/* An init with a terminal: runc hands the pty master over the console
 * socket at create; the start brings the connections; a resize reaches
 * it. */
static void test_vmg_tty_init(void) {
  api_done_t d, start = {0}, rs = {0}, del = {0};
  api_proc_t init;
  uv_loop_t loop;
  api_guest_t g;
  uint32_t dev[3];
  api_ctr_t t;
  int n0;

  vm_open(&g, &loop);
  devices(&g, dev);
  n0 = mounts(&g);
  vpmem(&g, HCSB_REQUEST_ADD, dev[0], "/run/layers/vmgt", 0, NULL, &d);
  check_ok(&d);
  /* "terminal":true in the spec (the SPEC text has it false). */
  {
    const char *layers[] = {"/run/layers/vmgt"};
    hcsb_container_config_t cfg;
    char spec[4096], *p;
    snprintf(spec, sizeof spec, SPEC,
             "[\"/bin/sh\",\"-c\",\"echo tty-up; read x; stty size; "
             "test -t 0 && echo is-a-tty; exit 4\"]");
    p = strstr(spec, "\"terminal\":false");
    CHECK(p != NULL);
    memcpy(p, "\"terminal\":true ", strlen("\"terminal\":false"));
    memset(&t, 0, sizeof t);
    memset(&cfg, 0, sizeof cfg);
    cfg.id = "vmg-tty";
    cfg.oci_spec_json = spec;
    cfg.layers = layers;
    cfg.nlayers = 1;
    cfg.layer_scratch_path = "/run/gcs/c/vmg-tty/scratch";
    CHECK_EQ(hcsb_conn_create_container(g.conn, NULL, &cfg, api_ctr_created, &t,
                                        &t.c),
             0);
    api_run_until(&loop, &t.created, LONG_MS);
  }
  if (t.create_status != 0)
    hcsb_test_fail(__FILE__, __LINE__, "create: %d %s", t.create_status,
                   t.message);
  CHECK_EQ(hcsb_container_start(t.c, NULL, api_done, &start), 0);
  api_run_until(&loop, &start.done, LONG_MS);
  CHECK_EQ(start.status, 0);
  ctr_proc(&g, &t, &init, NULL, "io", 1, NULL, 0, NULL);
  CHECK_EQ(hcsb_process_read_start(init.p, api_proc_read, &init), 0);
  run_until_out(&loop, &init, "tty-up\r\n");
  CHECK_EQ(hcsb_process_resize_console(init.p, NULL, 50, 21, api_done, &rs), 0);
  api_run_until(&loop, &rs.done, LONG_MS);
  CHECK_EQ(rs.status, 0);
  api_proc_finish(&g, &init, "go\r");
  CHECK_EQ(init.exit_code, 4);
  CHECK(strstr(init.out, "21 50\r\nis-a-tty\r\n") != NULL);
  api_proc_free(&init);
  hcsb_container_close(t.c, api_ctr_closed, &t);
  api_run_until(&loop, &t.closed, LONG_MS);
  CHECK_EQ(
      hcsb_conn_delete_container(g.conn, NULL, "vmg-tty", 0, api_done, &del),
      0);
  api_run_until(&loop, &del.done, LONG_MS);
  CHECK_EQ(del.status, 0);
  vpmem(&g, HCSB_REQUEST_REMOVE, dev[0], "/run/layers/vmgt", 0, NULL, &d);
  check_ok(&d);
  CHECK_EQ(mounts(&g), n0);
  api_close(&g);
}

/* A container created but never started is deleted (runc delete of a
 * created container); then runc refuses a spec whose init is not in the
 * image: the create fails with runc's reason, and nothing it set up stays. */
static void test_vmg_create_fails(void) {
  uv_loop_t loop;
  api_guest_t g;
  api_done_t d, del;
  uint32_t dev[3];
  char *out;
  api_ctr_t t;
  int n0;

  vm_open(&g, &loop);
  devices(&g, dev);
  n0 = mounts(&g);
  vpmem(&g, HCSB_REQUEST_ADD, dev[0], "/run/layers/vmgf", 0, NULL, &d);
  check_ok(&d);
  ctr_create(&g, &t, "vmg-idle", "/run/layers/vmgf", "sleep 1000", NULL);
  CHECK_EQ(t.create_status, 0);
  hcsb_container_close(t.c, api_ctr_closed, &t);
  api_run_until(&loop, &t.closed, LONG_MS);
  memset(&del, 0, sizeof del);
  CHECK_EQ(
      hcsb_conn_delete_container(g.conn, NULL, "vmg-idle", 0, api_done, &del),
      0);
  api_run_until(&loop, &del.done, LONG_MS);
  if (del.status != 0)
    hcsb_test_fail(__FILE__, __LINE__, "delete: %d %s", del.status,
                   del.message);
  CHECK_EQ(mounts(&g), n0 + 1);

  ctr_create(&g, &t, "vmg-bad", "/run/layers/vmgf", NULL,
             "[\"/no/such/program\"]");
  CHECK_EQ(t.create_status, HCSB_EGUEST);
  CHECK_EQ(t.hresult, E_FAIL);
  if (strstr(t.message,
             "failed to create container: failed to run runc "
             "create/exec call for container vmg-bad with exit "
             "status 1: ") != t.message ||
      strstr(t.message, "/no/such/program") == NULL)
    hcsb_test_fail(__FILE__, __LINE__, "message: %s", t.message);
  hcsb_container_close(t.c, api_ctr_closed, &t);
  api_run_until(&loop, &t.closed, LONG_MS);
  /* The library removed the overlay it added; only the layer is left. */
  CHECK_EQ(mounts(&g), n0 + 1);
  out = sh(&g,
           "test -e /run/gcs/c/vmg-bad/config.json && echo config-left; "
           "test -e /run/hcsb-guest/vmg-bad && echo state-left; "
           "test -e /run/gcs/c/vmg-idle && echo idle-left; echo done",
           NULL);
  CHECK_STR(out, "done\n");
  free(out);
  vpmem(&g, HCSB_REQUEST_REMOVE, dev[0], "/run/layers/vmgf", 0, NULL, &d);
  check_ok(&d);
  CHECK_EQ(mounts(&g), n0);
  api_close(&g);
}

/* The state deleted while the overlay is still mounted below the bundle
 * (the caller kept the resources): it fails as under the GCS, and the
 * removal stops at the mount point: the layer is intact. */
static void test_vmg_delete_while_mounted(void) {
  hcsb_combined_layers_t cl;
  uv_loop_t loop;
  api_guest_t g;
  api_done_t d, del;
  uint32_t dev[3];
  char *out, *json = NULL;
  api_ctr_t t;
  int n0;

  vm_open(&g, &loop);
  devices(&g, dev);
  n0 = mounts(&g);
  vpmem(&g, HCSB_REQUEST_ADD, dev[0], "/run/layers/vmgk", 0, NULL, &d);
  check_ok(&d);
  ctr_create(&g, &t, "vmg-keep", "/run/layers/vmgk", "sleep 1000", NULL);
  CHECK_EQ(t.create_status, 0);
  hcsb_container_close(t.c, api_ctr_closed, &t);
  api_run_until(&loop, &t.closed, LONG_MS);
  memset(&del, 0, sizeof del);
  CHECK_EQ(
      hcsb_conn_delete_container(g.conn, NULL, "vmg-keep",
                                 HCSB_DELETE_KEEP_RESOURCES, api_done, &del),
      0);
  api_run_until(&loop, &del.done, LONG_MS);
  CHECK_EQ(del.status, HCSB_EGUEST);
  CHECK_EQ(del.hresult, E_FAIL);
  CHECK_STR(del.message, "unlinkat /run/gcs/c/vmg-keep: directory not empty");
  out = sh(&g,
           "cat /run/gcs/c/vmg-keep/rootfs/marker-layer "
           "/run/layers/vmgk/marker-layer",
           NULL);
  CHECK_STR(out, "from-the-layer\nfrom-the-layer\n");
  free(out);
  memset(&cl, 0, sizeof cl);
  cl.container_root_path = "/run/gcs/c/vmg-keep/rootfs";
  CHECK_EQ(hcsb_modify_combined_layers(HCSB_REQUEST_REMOVE, &cl, &json), 0);
  modify(&g, json, &d);
  free(json);
  check_ok(&d);
  vpmem(&g, HCSB_REQUEST_REMOVE, dev[0], "/run/layers/vmgk", 0, NULL, &d);
  check_ok(&d);
  CHECK_EQ(mounts(&g), n0);
  api_close(&g);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY_T(vmg_vpmem_mount, 300),
    TEST_ENTRY_T(vmg_dm_linear, 300),
    TEST_ENTRY_T(vmg_dm_verity, 300),
    TEST_ENTRY_T(vmg_vpmem_missing, 300),
    TEST_ENTRY_T(vmg_container_lifecycle, 600),
    TEST_ENTRY_T(vmg_tty_init, 600),
    TEST_ENTRY_T(vmg_create_fails, 600),
    TEST_ENTRY_T(vmg_delete_while_mounted, 600),
};

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
