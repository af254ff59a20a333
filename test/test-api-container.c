/* Containers through the API against hcsb-guest: the full lifecycle as
 * hcsshim drives it (protocol.md §9.6), exits and their notifications, and
 * connection loss. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/api-int.h"
#include "test-api-util.h"

#define INIT_SCRIPT                                                     \
  "trap 'echo got-TERM; exit 143' TERM; echo hello from init; read l; " \
  "echo \\\"got:$l\\\"; echo init-err >&2; sleep 1000 & wait"

static const char *spec_with(const char *script) {
  static char buf[2048];
  snprintf(
      buf, sizeof buf,
      "{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"terminal\":false,"
      "\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"/bin/sh\",\"-c\",\"%s\"],"
      "\"env\":[\"PATH=/usr/bin:/bin\"],\"cwd\":\"/\"},\"root\":{\"path\":"
      "\"/\"},\"hostname\":\"from-spec\",\"windows\":{\"network\":"
      "{\"networkNamespace\":\"ns-1234\"}}}",
      script);
  return buf;
}

static void create_ctr(api_guest_t *g, api_ctr_t *t,
                       const hcsb_container_config_t *cfg) {
  memset(t, 0, sizeof(*t));
  CHECK_EQ(
      hcsb_conn_create_container(g->conn, NULL, cfg, api_ctr_created, t, &t->c),
      0);
  RUN_UNTIL(g->loop, t->created);
  CHECK_EQ(t->create_status, 0);
}

static void close_ctr(api_guest_t *g, api_ctr_t *t) {
  hcsb_container_close(t->c, api_ctr_closed, t);
  RUN_UNTIL(g->loop, t->closed);
  CHECK_EQ(t->closed, 1);
}

/* A container process: init when argv is NULL. */
static void start_in(api_guest_t *g, api_ctr_t *t, api_proc_t *r,
                     const char *const *argv, const char *pipes, int tty) {
  api_ctr_start(g, t->c, r, argv, pipes, tty);
  CHECK(hcsb_process_container(r->p) == t->c);
}

typedef struct stacks_s {
  int done, status;
  char *text;
} stacks_t;

static void stacks_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                      const char *stacks, size_t len) {
  stacks_t *s = data;
  s->done = 1;
  s->status = status;
  s->text = strndup(stacks != NULL ? stacks : "", len);
}

static char *dump(api_guest_t *g) {
  stacks_t s = {0, 0, NULL};
  CHECK_EQ(hcsb_conn_dump_stacks(g->conn, NULL, stacks_cb, &s), 0);
  RUN_UNTIL(g->loop, s.done);
  CHECK_EQ(s.status, 0);
  return s.text;
}

/* A number the emulator's DumpStacks text gives after `label`. */
static unsigned dump_number(api_guest_t *g, const char *label) {
  char *text = dump(g), *at = strstr(text, label);
  unsigned n;

  CHECK(at != NULL);
  n = (unsigned)strtoul(at + strlen(label), NULL, 10);
  free(text);
  return n;
}

/* What the emulator has mounted or added (ModifySettings records). */
static unsigned guest_resources(api_guest_t *g) {
  return dump_number(g, "\nresources: ");
}

typedef struct props_s {
  int done, status;
  hcsb_properties_t props;
  hcsb_process_list_item_t items[16];
  char json[4096];
} props_t;

static void props_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                     const hcsb_properties_t *props) {
  props_t *s = data;
  s->done = 1;
  s->status = status;
  if (props != NULL) {
    size_t i;
    s->props = *props;
    for (i = 0; i < props->nprocesses && i < 16; i++)
      s->items[i] = props->processes[i];
    snprintf(s->json, sizeof s->json, "%.*s", (int)props->json_len,
             props->json);
  }
}

static void signal_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                      int delivered) {
  api_done_t *d = data;
  d->done++;
  d->status = status;
  d->message[0] = (char)('0' + delivered);
}

/* modify (layers) -> create -> init -> exec -> signal -> wait ->
 * notification -> properties -> shutdown/terminate -> delete */
static void test_container_lifecycle(void) {
  const char *layers[] = {"/layers/base", "/layers/app"};
  const char *const opts[] = {"ro"};
  hcsb_mapped_virtual_disk_t disk;
  hcsb_network_adapter_t nic;
  hcsb_container_config_t cfg;
  const hcsb_mapped_virtual_disk_t *disks;
  api_done_t layer = {0}, start = {0}, sig = {0}, shut = {0}, term = {0},
             del = {0}, del2 = {0}, rm = {0};
  props_t pl = {0}, st = {0};
  api_proc_t init, ex, sl, again;
  uv_loop_t loop;
  api_guest_t g;
  api_ctr_t t, w1, w2;
  char *text, *json;
  uint32_t code;
  size_t i;
  int found;

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);

  /* A layer disk mapped by the caller first, as hcsshim does. */
  memset(&disk, 0, sizeof(disk));
  disk.mount_path = "/run/mounts/scsi/m0";
  disk.controller = 0;
  disk.lun = 1;
  disk.read_only = 1;
  disk.options = opts;
  disk.noptions = 1;
  CHECK_EQ(hcsb_modify_mapped_virtual_disk(HCSB_REQUEST_ADD, &disk, &json), 0);
  CHECK_EQ(hcsb_conn_modify(g.conn, NULL, json, api_done, &layer), 0);
  hcsb_free(json);
  RUN_UNTIL(&loop, layer.done);
  CHECK_EQ(layer.status, 0);

  disk.mount_path = "/run/mounts/scsi/m1";
  disk.lun = 2;
  disk.read_only = 0;
  memset(&nic, 0, sizeof(nic));
  nic.id = "nic-1";
  nic.mac_address = "00-15-5D-00-00-01";
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = "ctr-life";
  cfg.oci_spec_json = spec_with(INIT_SCRIPT);
  cfg.scratch_dir = "/run/mounts/scsi/m1/scratch/ctr-life";
  cfg.host_name = "api-host";
  cfg.mapped_virtual_disks = &disk;
  cfg.nmapped_virtual_disks = 1;
  cfg.layers = layers;
  cfg.nlayers = 2;
  cfg.layer_scratch_path = "/run/mounts/scsi/m1/scratch/ctr-life";
  cfg.endpoints = &nic;
  cfg.nendpoints = 1;
  create_ctr(&g, &t, &cfg);
  CHECK_STR(hcsb_container_id(t.c), "ctr-life");
  CHECK(hcsb_container_conn(t.c) == g.conn);
  /* The connection recorded both disks, the container its own. */
  CHECK_EQ(hcsb_conn_mapped_virtual_disks(g.conn, &disks), 2);
  CHECK_EQ(hcsb_container_mapped_virtual_disks(t.c, &disks), 1);
  CHECK_STR(disks[0].mount_path, "/run/mounts/scsi/m1");
  CHECK_EQ(disks[0].lun, 2);
  /* What the guest recorded, in order: disks, layers, network. */
  text = dump(&g);
  CHECK(strstr(text, "container ctr-life [created]") != NULL);
  CHECK(strstr(text, "MappedVirtualDisk /run/mounts/scsi/m1") != NULL);
  CHECK(strstr(text, "CombinedLayers /run/gcs/c/ctr-life/rootfs") != NULL);
  CHECK(strstr(text, "Network nic-1") != NULL);
  free(text);

  CHECK_EQ(hcsb_container_start(t.c, NULL, api_done, &start), 0);
  RUN_UNTIL(&loop, start.done);
  CHECK_EQ(start.status, 0);

  /* A wait before anything ran; it must end with the notification. */
  CHECK_EQ(hcsb_container_wait(t.c, 0, api_ctr_waited, &w1), 0);
  memset(&w1, 0, sizeof(w1));

  /* Init: the spec's process, stdio attached. */
  start_in(&g, &t, &init, NULL, "ioe", 0);
  CHECK_EQ(hcsb_process_read_start(init.p, api_proc_read, &init), 0);
  CHECK_EQ(hcsb_process_write(init.p, "line-for-init\n", 14, NULL, NULL), 0);

  /* An exec with a generated OCI process. */
  {
    const char *argv[] = {"/bin/sh", "-c", "echo \"exec:$X:$(pwd)\"; exit 5",
                          NULL};
    const char *env[] = {"X=forty-two", "PATH=/usr/bin:/bin"};
    hcsb_process_config_t pc;
    memset(&pc, 0, sizeof(pc));
    pc.command_args = argv;
    pc.ncommand_args = 3;
    pc.environment = env;
    pc.nenvironment = 2;
    pc.working_directory = "/tmp";
    pc.create_stdout_pipe = 1;
    memset(&ex, 0, sizeof(ex));
    CHECK_EQ(hcsb_container_create_process(t.c, NULL, &pc, api_proc_created,
                                           &ex, &ex.p),
             0);
    RUN_UNTIL(&loop, ex.created);
    CHECK_EQ(ex.create_status, 0);
    CHECK(hcsb_process_pid(ex.p) != hcsb_process_pid(init.p));
    /* Waited to EOF and closed, so the guest can report the exit. */
    CHECK_EQ(hcsb_process_read_start(ex.p, api_proc_read, &ex), 0);
    CHECK_EQ(hcsb_process_wait(ex.p, 0, api_proc_waited, &ex), 0);
    RUN_UNTIL(&loop, ex.waited);
    CHECK_EQ(ex.wait_status, 0);
    CHECK_EQ(ex.exit_code, 5);
    CHECK_STR(ex.out, "exec:forty-two:/tmp\n");
    CHECK_EQ(ex.out_eof, 1);
  }
  /* The guest forgot the exec after its first wait: a second wait on its
   * PID says "not found" (0x80070490), which is "unknown", never 0. */
  CHECK_EQ(hcsb_container_open_process(t.c, hcsb_process_pid(ex.p), &again.p),
           -EEXIST);
  {
    uint32_t pid = hcsb_process_pid(ex.p);
    hcsb_process_close(ex.p, api_proc_closed, &ex);
    RUN_UNTIL(&loop, ex.closed);
    api_proc_free(&ex);
    memset(&again, 0, sizeof(again));
    CHECK_EQ(hcsb_container_open_process(t.c, pid, &again.p), 0);
    CHECK_EQ(hcsb_process_wait(again.p, 0, api_proc_waited, &again), 0);
    RUN_UNTIL(&loop, again.waited);
    CHECK_EQ(again.wait_status, HCSB_EGUEST);
    CHECK_U64(again.exit_code, HCSB_E_NOT_FOUND);
    code = 77;
    CHECK_EQ(hcsb_process_exit_code(again.p, &code), -ENODATA);
    CHECK_EQ(code, 77);
    hcsb_process_close(again.p, api_proc_closed, &again);
    RUN_UNTIL(&loop, again.closed);
  }

  /* Signal death: 128 + signal for container processes. */
  {
    const char *argv[] = {"/bin/sleep", "1000", NULL};
    start_in(&g, &t, &sl, argv, "", 0);
    CHECK_EQ(hcsb_process_signal(sl.p, NULL, SIGKILL, signal_cb, &sig), 0);
    RUN_UNTIL(&loop, sig.done);
    CHECK_EQ(sig.status, 0);
    CHECK_EQ(sig.message[0], '1');
    api_proc_finish(&g, &sl, NULL);
    CHECK_EQ(sl.wait_status, 0);
    CHECK_EQ(sl.exit_code, 128 + SIGKILL);
    api_proc_free(&sl);
  }

  /* Properties while init runs. */
  CHECK_EQ(hcsb_container_process_list(t.c, NULL, props_cb, &pl), 0);
  CHECK_EQ(hcsb_container_statistics(t.c, NULL, props_cb, &st), 0);
  RUN_UNTIL(&loop, pl.done);
  RUN_UNTIL(&loop, st.done);
  CHECK_EQ(pl.status, 0);
  CHECK_EQ(pl.props.has_process_list, 1);
  CHECK_EQ(pl.props.has_statistics, 0);
  CHECK(pl.props.nprocesses >= 1);
  for (found = 0, i = 0; i < pl.props.nprocesses && i < 16; i++)
    found |= pl.items[i].process_id == hcsb_process_pid(init.p);
  CHECK(found);
  CHECK(strstr(pl.json, "\"ProcessList\"") != NULL);
  CHECK_EQ(st.status, 0);
  CHECK_EQ(st.props.has_statistics, 1);
  CHECK_EQ(st.props.has_process_list, 0);
  CHECK_EQ(st.props.statistics.has_pids, 1);
  CHECK(st.props.statistics.pids_current >= 1);
  CHECK_EQ(st.props.statistics.has_memory, 1);
  CHECK(st.props.statistics.memory_rss_bytes > 0);
  CHECK_EQ(st.props.statistics.has_cpu, 1);
  CHECK(strstr(st.json, "\"LCOWMetrics\"") != NULL);

  /* The init's output so far, then a graceful shutdown: the trap runs. */
  while (init.out == NULL || strstr(init.out, "got:line-for-init") == NULL)
    uv_run(&loop, UV_RUN_ONCE);
  CHECK_EQ(hcsb_container_wait(t.c, 30, api_ctr_waited, &w2), 0);
  memset(&w2, 0, sizeof(w2));
  RUN_UNTIL(&loop, w2.waited);
  CHECK_EQ(w2.wait_status, -ETIMEDOUT);
  CHECK_EQ(w1.waited, 0);
  CHECK_EQ(hcsb_container_shutdown(t.c, NULL, api_done, &shut), 0);
  CHECK_EQ(hcsb_process_close_stdin(init.p), 0);
  RUN_UNTIL(&loop, shut.done);
  CHECK_EQ(shut.status, 0);
  RUN_UNTIL(&loop, w1.waited);
  CHECK_EQ(w1.wait_status, 0);
  CHECK_EQ(w1.exit.end, HCSB_CONTAINER_EXITED);
  CHECK_EQ(w1.exit.type, HCSB_NOTIFY_GRACEFUL_EXIT);
  CHECK_STR(w1.type_name, "GracefulExit");
  CHECK_EQ(w1.exit.result, 0);
  RUN_UNTIL(&loop, init.out_eof);
  RUN_UNTIL(&loop, init.err_eof);
  CHECK_STR(init.out, "hello from init\ngot:line-for-init\ngot-TERM\n");
  CHECK_STR(init.err, "init-err\n");
  CHECK_EQ(hcsb_process_exit_code(init.p, &code), 0);
  CHECK_EQ(code, 143);
  /* A wait after the end reports the same, on the next turn. */
  memset(&w2, 0, sizeof(w2));
  CHECK_EQ(hcsb_container_wait(t.c, 0, api_ctr_waited, &w2), 0);
  CHECK_EQ(w2.waited, 0);
  RUN_UNTIL(&loop, w2.waited);
  CHECK_EQ(w2.exit.type, HCSB_NOTIFY_GRACEFUL_EXIT);

  /* Terminate on a stopped container succeeds. */
  CHECK_EQ(hcsb_container_terminate(t.c, NULL, api_done, &term), 0);
  RUN_UNTIL(&loop, term.done);
  CHECK_EQ(term.status, 0);

  /* Teardown in the order that works: layers, then the state. */
  {
    hcsb_combined_layers_t l;
    memset(&l, 0, sizeof(l));
    l.container_root_path = "/run/gcs/c/ctr-life/rootfs";
    CHECK_EQ(hcsb_modify_combined_layers(HCSB_REQUEST_REMOVE, &l, &json), 0);
    CHECK_EQ(hcsb_conn_modify(g.conn, NULL, json, api_done, &rm), 0);
    hcsb_free(json);
    RUN_UNTIL(&loop, rm.done);
    CHECK_EQ(rm.status, 0);
  }
  CHECK_EQ(hcsb_conn_delete_container_state(g.conn, NULL, "ctr-life", api_done,
                                            &del),
           0);
  RUN_UNTIL(&loop, del.done);
  CHECK_EQ(del.status, 0);
  /* The delete removed the container's disk and adapter (the caller had
   * removed the layers); the caller's own disk stays mapped. */
  CHECK_EQ(guest_resources(&g), 1);
  CHECK_EQ(hcsb_conn_mapped_virtual_disks(g.conn, &disks), 1);
  CHECK_STR(disks[0].mount_path, "/run/mounts/scsi/m0");
  CHECK_EQ(hcsb_conn_delete_container_state(g.conn, NULL, "ctr-life", api_done,
                                            &del2),
           0);
  RUN_UNTIL(&loop, del2.done);
  CHECK_EQ(del2.status, HCSB_EGUEST);
  CHECK_U64(del2.hresult, HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND);

  hcsb_process_close(init.p, api_proc_closed, &init);
  RUN_UNTIL(&loop, init.closed);
  api_proc_free(&init);
  close_ctr(&g, &t);
  api_close(&g);
}

/* The spec as sent: root.path at the layers, hostname from the config. */
static void test_create_config_shape(void) {
  const char *layers[] = {"/l0"};
  hcsb_container_config_t cfg;
  uv_loop_t loop;
  api_guest_t g;
  api_ctr_t t;
  char raw[2600];

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  memset(&cfg, 0, sizeof(cfg));
  cfg.oci_spec_json = spec_with("exit 0");
  cfg.layers = layers;
  cfg.nlayers = 1;
  cfg.bundle_path = "/run/gcs/custom-bundle";
  create_ctr(&g, &t, &cfg);
  /* A generated ID: 64 hex characters. */
  CHECK_EQ(strlen(hcsb_container_id(t.c)), 64);
  CHECK_EQ(strspn(hcsb_container_id(t.c), "0123456789abcdef"), 64);
  {
    char *text = dump(&g);
    CHECK(strstr(text, "CombinedLayers /run/gcs/custom-bundle/rootfs") != NULL);
    free(text);
  }
  close_ctr(&g, &t);

  /* Raw ContainerConfig JSON is sent as is. */
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = "raw-ctr";
  {
    snprintf(raw, sizeof raw,
             "{\"SchemaVersion\":{\"Major\":2,\"Minor\":1},\"OciBundlePath\":"
             "\"/run/gcs/c/raw-ctr\",\"OciSpecification\":%s}",
             spec_with("exit 0"));
    cfg.config_json = raw;
    create_ctr(&g, &t, &cfg);
  }
  /* The same ID again while a handle is open: refused locally. */
  {
    hcsb_container_t *dup = NULL;
    CHECK_EQ(hcsb_conn_create_container(g.conn, NULL, &cfg, api_ctr_created,
                                        NULL, &dup),
             -EEXIST);
    CHECK_EQ(hcsb_conn_open_container(g.conn, "raw-ctr", &dup), -EEXIST);
  }
  close_ctr(&g, &t);
  /* Once closed, creating it again reaches the guest, which refuses. */
  {
    api_ctr_t t2;
    memset(&t2, 0, sizeof(t2));
    CHECK_EQ(hcsb_conn_create_container(g.conn, NULL, &cfg, api_ctr_created,
                                        &t2, &t2.c),
             0);
    RUN_UNTIL(&loop, t2.created);
    CHECK_EQ(t2.create_status, HCSB_EGUEST);
    CHECK_U64(t2.hresult, HCSB_E_VMCOMPUTE_SYSTEM_ALREADY_EXISTS);
    close_ctr(&g, &t2);
  }
  /* Local validation. */
  {
    hcsb_container_t *x = NULL;
    memset(&cfg, 0, sizeof(cfg));
    CHECK_EQ(hcsb_conn_create_container(g.conn, NULL, &cfg, NULL, NULL, &x),
             -EINVAL);
    cfg.oci_spec_json = "[1,2]";
    CHECK_EQ(hcsb_conn_create_container(g.conn, NULL, &cfg, NULL, NULL, &x),
             -EINVAL);
    cfg.oci_spec_json = "{";
    CHECK_EQ(hcsb_conn_create_container(g.conn, NULL, &cfg, NULL, NULL, &x),
             -EINVAL);
    cfg.oci_spec_json = NULL;
    cfg.config_json = "nope";
    CHECK_EQ(hcsb_conn_create_container(g.conn, NULL, &cfg, NULL, NULL, &x),
             -EINVAL);
    CHECK(x == NULL);
  }
  api_close(&g);
}

static void test_terminate_forced_exit_and_parity_stubs(void) {
  hcsb_container_config_t cfg;
  api_done_t term = {0}, pa = {0}, re = {0}, hp = {0}, mod = {0};
  uv_loop_t loop;
  api_guest_t g;
  api_ctr_t t, w;
  api_proc_t init;

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = "ctr-term";
  cfg.oci_spec_json = spec_with("trap '' TERM; sleep 1000 & wait");
  create_ctr(&g, &t, &cfg);
  start_in(&g, &t, &init, NULL, "", 0);
  memset(&w, 0, sizeof(w));
  CHECK_EQ(hcsb_container_wait(t.c, 0, api_ctr_waited, &w), 0);

  CHECK_EQ(hcsb_container_pause(t.c, NULL, api_done, &pa), 0);
  CHECK_EQ(hcsb_container_resume(t.c, NULL, api_done, &re), 0);
  CHECK_EQ(hcsb_container_has_pending_updates(t.c, NULL, api_done, &hp), 0);
  CHECK_EQ(pa.done + re.done + hp.done, 0);
  RUN_UNTIL(&loop, hp.done);
  CHECK_EQ(pa.status, -ENOTSUP);
  CHECK_EQ(re.status, -ENOTSUP);
  CHECK_EQ(hp.status, -ENOTSUP);

  /* ContainerConstraints against the container. */
  {
    char *json;
    CHECK_EQ(
        hcsb_modify_container_constraints(
            HCSB_REQUEST_UPDATE, "{\"cpu\":{\"shares\":512}}", NULL, &json),
        0);
    CHECK_EQ(hcsb_container_modify(t.c, NULL, json, api_done, &mod), 0);
    hcsb_free(json);
    RUN_UNTIL(&loop, mod.done);
    CHECK_EQ(mod.status, 0);
  }

  CHECK_EQ(hcsb_container_terminate(t.c, NULL, api_done, &term), 0);
  RUN_UNTIL(&loop, term.done);
  CHECK_EQ(term.status, 0);
  RUN_UNTIL(&loop, w.waited);
  CHECK_EQ(w.wait_status, 0);
  CHECK_EQ(w.exit.end, HCSB_CONTAINER_EXITED);
  CHECK_EQ(w.exit.type, HCSB_NOTIFY_FORCED_EXIT);
  CHECK_STR(w.type_name, "ForcedExit");
  api_proc_finish(&g, &init, NULL);
  CHECK_EQ(init.exit_code, 128 + SIGKILL);
  api_proc_free(&init);
  close_ctr(&g, &t);

  /* Shutdown of a container the guest does not know: success (hcsshim). */
  {
    hcsb_container_t *ghost = NULL;
    api_done_t s = {0}, m = {0};
    api_ctr_t gt;
    CHECK_EQ(hcsb_conn_open_container(g.conn, "ghost", &ghost), 0);
    CHECK_EQ(hcsb_container_shutdown(ghost, NULL, api_done, &s), 0);
    CHECK_EQ(hcsb_container_modify(ghost, NULL,
                                   "{\"ResourceType\":"
                                   "\"ContainerConstraints\",\"Settings\":{}}",
                                   api_done, &m),
             0);
    RUN_UNTIL(&loop, s.done);
    RUN_UNTIL(&loop, m.done);
    CHECK_EQ(s.status, 0);
    CHECK_EQ(m.status, HCSB_EGUEST);
    CHECK_U64(m.hresult, HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND);
    gt.c = ghost;
    gt.closed = 0;
    close_ctr(&g, &gt);
  }
  api_close(&g);
}

/* The exec's console: the size from the config, then a resize. */
static void test_tty_exec_resize(void) {
  const char *argv[] = {"/bin/sh", "-c", "stty size; read x; stty size; exit 9",
                        NULL};
  hcsb_process_config_t pc;
  hcsb_container_config_t cfg;
  api_done_t rs = {0};
  uv_loop_t loop;
  api_guest_t g;
  api_proc_t r, init;
  api_ctr_t t;

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = "ctr-tty";
  cfg.oci_spec_json = spec_with("sleep 1000");
  create_ctr(&g, &t, &cfg);
  start_in(&g, &t, &init, NULL, "", 0);
  memset(&pc, 0, sizeof(pc));
  pc.command_args = argv;
  pc.ncommand_args = 3;
  pc.emulate_console = 1;
  pc.create_stdin_pipe = 1;
  pc.create_stdout_pipe = 1;
  pc.console_height = 40;
  pc.console_width = 132;
  memset(&r, 0, sizeof(r));
  CHECK_EQ(
      hcsb_container_create_process(t.c, NULL, &pc, api_proc_created, &r, &r.p),
      0);
  /* Before the process exists: kept and applied once it does. */
  CHECK_EQ(hcsb_process_resize_console(r.p, NULL, 100, 50, api_done, &rs), 0);
  RUN_UNTIL(&loop, r.created);
  CHECK_EQ(r.create_status, 0);
  RUN_UNTIL(&loop, rs.done);
  CHECK_EQ(rs.status, 0);
  CHECK_EQ(hcsb_process_read_start(r.p, api_proc_read, &r), 0);
  while (r.out == NULL || strchr(r.out, '\n') == NULL)
    uv_run(&loop, UV_RUN_ONCE);
  rs.done = 0;
  CHECK_EQ(hcsb_process_resize_console(r.p, NULL, 120, 33, api_done, &rs), 0);
  RUN_UNTIL(&loop, rs.done);
  CHECK_EQ(rs.status, 0);
  api_proc_finish(&g, &r, "go\r");
  CHECK_EQ(r.exit_code, 9);
  CHECK(strstr(r.out, "33 120\r\n") != NULL);
  /* The first line is one of the two early sizes, whichever came last. */
  CHECK(strncmp(r.out, "40 132\r\n", 8) == 0 ||
        strncmp(r.out, "50 100\r\n", 8) == 0);
  api_proc_free(&r);
  /* Closing the handle does not kill the process. */
  hcsb_process_close(init.p, api_proc_closed, &init);
  RUN_UNTIL(&loop, init.closed);
  close_ctr(&g, &t);
  api_close(&g);
}

/* Connection loss: container wait says so (never a fake success); the
 * process wait fails; later operations fail with -ENOTCONN. */
static void test_container_wait_connection_lost(void) {
  hcsb_container_config_t cfg;
  api_done_t after = {0};
  uv_loop_t loop;
  api_guest_t g;
  api_proc_t init;
  api_ctr_t t, w, late;
  uint32_t code;

  uv_loop_init(&loop);
  api_open_unix(&g, &loop, NULL);
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = "ctr-lost";
  cfg.oci_spec_json = spec_with("sleep 1000");
  create_ctr(&g, &t, &cfg);
  start_in(&g, &t, &init, NULL, "", 0);
  memset(&w, 0, sizeof(w));
  CHECK_EQ(hcsb_container_wait(t.c, 0, api_ctr_waited, &w), 0);
  CHECK_EQ(hcsb_process_wait(init.p, 0, api_proc_waited, &init), 0);

  CHECK_EQ(kill(g.pid, SIGKILL), 0);
  RUN_UNTIL(&loop, w.waited);
  CHECK_EQ(w.wait_status, -ECONNRESET);
  CHECK_EQ(w.exit.end, HCSB_CONTAINER_CONNECTION_LOST);
  RUN_UNTIL(&loop, init.waited);
  CHECK_EQ(init.wait_status, -ECONNRESET);
  CHECK_EQ(hcsb_process_exit_code(init.p, &code), -ENODATA);
  RUN_UNTIL(&loop, g.lost);
  CHECK_EQ(g.lost_status, -ECONNRESET);
  /* The handles outlive the connection. */
  memset(&late, 0, sizeof(late));
  CHECK_EQ(hcsb_container_wait(t.c, 0, api_ctr_waited, &late), 0);
  CHECK_EQ(hcsb_container_start(t.c, NULL, api_done, &after), 0);
  CHECK_EQ(after.done, 0);
  RUN_UNTIL(&loop, after.done);
  CHECK_EQ(after.status, -ENOTCONN);
  RUN_UNTIL(&loop, late.waited);
  CHECK_EQ(late.wait_status, -ECONNRESET);
  CHECK_EQ(late.exit.end, HCSB_CONTAINER_CONNECTION_LOST);
  waitpid(g.pid, NULL, 0);
  g.pid = 0;
  hcsb_process_close(init.p, api_proc_closed, &init);
  close_ctr(&g, &t);
  RUN_UNTIL(&loop, init.closed);
  api_close(&g);
}

/* ------------------------------------------------------------------------ */
/* Resource bookkeeping for teardown */

/* Every kind of resource create adds: disk, share, layers, adapter. */
static void full_config(hcsb_container_config_t *cfg, const char *id,
                        const char *script, hcsb_mapped_virtual_disk_t *disk,
                        hcsb_mapped_directory_t *dir,
                        hcsb_network_adapter_t *nic) {
  static const char *layers[] = {"/layers/base", "/layers/app"};

  memset(disk, 0, sizeof(*disk));
  disk->mount_path = "/run/mounts/m2";
  disk->lun = 2;
  memset(dir, 0, sizeof(*dir));
  dir->mount_path = "/run/mounts/share";
  dir->port = 564;
  dir->share_name = "share";
  memset(nic, 0, sizeof(*nic));
  nic->id = "nic-1";
  memset(cfg, 0, sizeof(*cfg));
  cfg->id = id;
  cfg->oci_spec_json = spec_with(script);
  cfg->mapped_virtual_disks = disk;
  cfg->nmapped_virtual_disks = 1;
  cfg->mapped_directories = dir;
  cfg->nmapped_directories = 1;
  cfg->layers = layers;
  cfg->nlayers = 2;
  cfg->layer_scratch_path = "/run/mounts/m2/scratch";
  cfg->endpoints = nic;
  cfg->nendpoints = 1;
}

/* create -> run -> delete leaves nothing in the guest. */
static void test_delete_releases_everything(void) {
  hcsb_mapped_virtual_disk_t disk;
  hcsb_mapped_directory_t dir;
  hcsb_network_adapter_t nic;
  hcsb_container_config_t cfg;
  api_done_t shut = {0}, del = {0};
  uv_loop_t loop;
  api_guest_t g;
  api_proc_t init;
  api_ctr_t t;

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  /* A VPMem layer the caller maps for the container first. */
  {
    hcsb_vpmem_device_t pmem;
    api_done_t add = {0};
    char *json;
    memset(&pmem, 0, sizeof(pmem));
    pmem.device_number = 1;
    pmem.mount_path = "/run/layers/p1";
    CHECK_EQ(hcsb_modify_vpmem_device(HCSB_REQUEST_ADD, &pmem, &json), 0);
    CHECK_EQ(hcsb_conn_modify_for_container(g.conn, NULL, "rel-1", json,
                                            api_done, &add),
             0);
    hcsb_free(json);
    RUN_UNTIL(&loop, add.done);
    CHECK_EQ(add.status, 0);
  }
  full_config(&cfg, "rel-1", "echo up; sleep 1000 & wait", &disk, &dir, &nic);
  create_ctr(&g, &t, &cfg);
  CHECK_EQ(guest_resources(&g), 5);
  CHECK_EQ(hcsb_conn_container_resources(g.conn, "rel-1"), 5);
  start_in(&g, &t, &init, NULL, "o", 0);
  CHECK_EQ(hcsb_process_read_start(init.p, api_proc_read, &init), 0);
  CHECK_EQ(hcsb_container_terminate(t.c, NULL, api_done, &shut), 0);
  RUN_UNTIL(&loop, shut.done);
  CHECK_EQ(shut.status, 0);
  CHECK_EQ(hcsb_process_wait(init.p, 0, api_proc_waited, &init), 0);
  RUN_UNTIL(&loop, init.waited);
  /* The handle is closed first: the record belongs to the ID. */
  close_ctr(&g, &t);
  CHECK_EQ(hcsb_conn_container_resources(g.conn, "rel-1"), 5);
  CHECK_EQ(
      hcsb_conn_delete_container_state(g.conn, NULL, "rel-1", api_done, &del),
      0);
  RUN_UNTIL(&loop, del.done);
  CHECK_EQ(del.status, 0);
  CHECK_EQ(guest_resources(&g), 0);
  CHECK_EQ(hcsb_conn_container_resources(g.conn, "rel-1"), 0);
  CHECK_EQ(hcsb_conn_mapped_virtual_disks(g.conn, NULL), 0);
  hcsb_process_close(init.p, api_proc_closed, &init);
  RUN_UNTIL(&loop, init.closed);
  api_proc_free(&init);
  api_close(&g);
}

/* The emulator fails request N (N = 1..5: each Add, then Create): the
 * create reports that failure only after removing what it had added. */
static void test_failed_create_leaves_nothing(void) {
  hcsb_mapped_virtual_disk_t disk;
  hcsb_mapped_directory_t dir;
  hcsb_network_adapter_t nic;
  hcsb_container_config_t cfg;
  unsigned n;

  for (n = 1; n <= 5; n++) {
    uv_loop_t loop;
    api_guest_t g;
    api_ctr_t t;
    char args[64];

    uv_loop_init(&loop);
    snprintf(args, sizeof args, "--fail-request %u", n);
    api_open_spawn(&g, &loop, args);
    full_config(&cfg, "fails", "exit 0", &disk, &dir, &nic);
    memset(&t, 0, sizeof(t));
    CHECK_EQ(hcsb_conn_create_container(g.conn, NULL, &cfg, api_ctr_created, &t,
                                        &t.c),
             0);
    RUN_UNTIL(&loop, t.created);
    CHECK_EQ(t.create_status, HCSB_EGUEST);
    CHECK_U64(t.hresult, HCSB_E_FAIL);
    /* Negotiation, n requests, n - 1 Removes, this DumpStacks. */
    CHECK_EQ(dump_number(&g, "requests "), 2 * n + 1);
    CHECK_EQ(guest_resources(&g), 0);
    CHECK_EQ(hcsb_conn_container_resources(g.conn, "fails"), 0);
    CHECK_EQ(hcsb_conn_mapped_virtual_disks(g.conn, NULL), 0);
    CHECK_EQ(hcsb_container_mapped_virtual_disks(t.c, NULL), 0);
    close_ctr(&g, &t);
    api_close(&g);
  }
}

/* An undo the guest refuses (request 4: the share's Remove after the
 * layers failed at 3) leaves that one mounted and tracked; delete
 * releases it later. */
static void test_failed_undo_stays_tracked(void) {
  hcsb_mapped_virtual_disk_t disk;
  hcsb_mapped_directory_t dir;
  hcsb_network_adapter_t nic;
  hcsb_container_config_t cfg;
  api_done_t del = {0};
  uv_loop_t loop;
  api_guest_t g;
  api_ctr_t t;
  char *text;

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, "--fail-request 3 --fail-request 4");
  full_config(&cfg, "half", "exit 0", &disk, &dir, &nic);
  memset(&t, 0, sizeof(t));
  CHECK_EQ(
      hcsb_conn_create_container(g.conn, NULL, &cfg, api_ctr_created, &t, &t.c),
      0);
  RUN_UNTIL(&loop, t.created);
  CHECK_EQ(t.create_status, HCSB_EGUEST);
  text = dump(&g);
  CHECK(strstr(text, "\nresources: 1\n  MappedDirectory /run/mounts/share\n") !=
        NULL);
  free(text);
  CHECK_EQ(hcsb_conn_container_resources(g.conn, "half"), 1);
  CHECK_EQ(hcsb_conn_mapped_virtual_disks(g.conn, NULL), 0);
  close_ctr(&g, &t);
  /* Never created: the share goes, then the guest does not know the ID. */
  CHECK_EQ(
      hcsb_conn_delete_container_state(g.conn, NULL, "half", api_done, &del),
      0);
  RUN_UNTIL(&loop, del.done);
  CHECK_EQ(del.status, HCSB_EGUEST);
  CHECK_U64(del.hresult, HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND);
  CHECK_EQ(guest_resources(&g), 0);
  CHECK_EQ(hcsb_conn_container_resources(g.conn, "half"), 0);
  api_close(&g);
}

/* The opt-out sends DeleteContainerState alone.  With the layers still
 * mounted below the bundle the guest fails it exactly as a v0.11.8 GCS
 * does (and forgets the container anyway); without layers it succeeds and
 * leaves the rest mounted for the caller. */
static void test_delete_keep_resources(void) {
  hcsb_mapped_virtual_disk_t disk;
  hcsb_mapped_directory_t dir;
  hcsb_network_adapter_t nic;
  hcsb_container_config_t cfg;
  api_done_t d1 = {0}, d2 = {0}, d3 = {0};
  uv_loop_t loop;
  api_guest_t g;
  api_ctr_t t;

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  full_config(&cfg, "keep-1", "exit 0", &disk, &dir, &nic);
  create_ctr(&g, &t, &cfg);
  CHECK_EQ(
      hcsb_conn_delete_container(g.conn, NULL, "keep-1",
                                 HCSB_DELETE_KEEP_RESOURCES, api_done, &d1),
      0);
  RUN_UNTIL(&loop, d1.done);
  CHECK_EQ(d1.status, HCSB_EGUEST);
  CHECK_U64(d1.hresult, HCSB_E_FAIL);
  CHECK_STR(d1.message, "unlinkat /run/gcs/c/keep-1: directory not empty");
  CHECK_EQ(guest_resources(&g), 4);
  /* The delete failed: still tracked, and a plain delete releases it all;
   * the guest already forgot the container. */
  CHECK_EQ(hcsb_conn_container_resources(g.conn, "keep-1"), 4);
  CHECK_EQ(
      hcsb_conn_delete_container_state(g.conn, NULL, "keep-1", api_done, &d2),
      0);
  RUN_UNTIL(&loop, d2.done);
  CHECK_EQ(d2.status, HCSB_EGUEST);
  CHECK_U64(d2.hresult, HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND);
  CHECK_EQ(guest_resources(&g), 0);
  close_ctr(&g, &t);

  /* No layers: the state goes, the disk, share and adapter stay. */
  full_config(&cfg, "keep-2", "exit 0", &disk, &dir, &nic);
  cfg.nlayers = 0;
  create_ctr(&g, &t, &cfg);
  CHECK_EQ(guest_resources(&g), 3);
  CHECK_EQ(
      hcsb_conn_delete_container(g.conn, NULL, "keep-2",
                                 HCSB_DELETE_KEEP_RESOURCES, api_done, &d3),
      0);
  RUN_UNTIL(&loop, d3.done);
  CHECK_EQ(d3.status, 0);
  CHECK_EQ(guest_resources(&g), 3);
  CHECK_EQ(hcsb_conn_container_resources(g.conn, "keep-2"), 0);
  CHECK_EQ(hcsb_conn_mapped_virtual_disks(g.conn, NULL), 1);
  close_ctr(&g, &t);
  api_close(&g);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(delete_releases_everything),
    TEST_ENTRY(failed_create_leaves_nothing),
    TEST_ENTRY(failed_undo_stays_tracked),
    TEST_ENTRY(delete_keep_resources),
    TEST_ENTRY(container_lifecycle),
    TEST_ENTRY(create_config_shape),
    TEST_ENTRY(terminate_forced_exit_and_parity_stubs),
    TEST_ENTRY(tty_exec_resize),
    TEST_ENTRY(container_wait_connection_lost),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
