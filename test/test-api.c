/* The Container/Process API against hcsb-guest: connections and processes
 * in the utility VM, over spawn: (stdin/stdout) and unix:// transports. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api-int.h"
#include "test-api-util.h"

/* ------------------------------------------------------------------------ */
/* Connection */

static void check_linux_caps(hcsb_conn_t *conn) {
  const hcsb_caps_t *caps = hcsb_conn_caps(conn);

  CHECK_EQ(hcsb_conn_protocol(conn), 4);
  CHECK_STR(hcsb_conn_os(conn), "linux");
  CHECK(caps != NULL);
  CHECK_STR(caps->runtime_os_type, "Linux");
  CHECK_EQ(caps->guest.signal_process_supported, 1);
  CHECK_EQ(caps->guest.dump_stacks_supported, 1);
  CHECK_EQ(caps->guest.delete_container_state_supported, 1);
  CHECK_EQ(caps->send_host_create_message, 0);
  CHECK(hcsb_conn_bridge(conn) != NULL);
  CHECK(hcsb_bridge_is_connected(hcsb_conn_bridge(conn)));
}

static void test_open_spawn(void) {
  uv_loop_t loop;
  api_guest_t g;

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  check_linux_caps(g.conn);
  CHECK(hcsb_conn_loop(g.conn) == &loop);
  hcsb_conn_set_data(g.conn, &g);
  CHECK(hcsb_conn_get_data(g.conn) == &g);
  api_close(&g);
  CHECK_EQ(g.lost, 0);
}

static void test_open_unix(void) {
  uv_loop_t loop;
  api_guest_t g;

  uv_loop_init(&loop);
  api_open_unix(&g, &loop, NULL);
  check_linux_caps(g.conn);
  api_close(&g);
}

static void test_open_bad_args(void) {
  hcsb_conn_options_t o;
  hcsb_conn_t *conn = NULL;
  uv_loop_t loop;

  uv_loop_init(&loop);
  hcsb_conn_options_init(&o);
  CHECK_EQ(o.connect_timeout_ms, 120000);
  CHECK_EQ(o.call_timeout_ms, 300000);
  CHECK_EQ(o.shutdown_timeout_ms, 30000);
  CHECK_EQ(o.stdio_accept_timeout_ms, 30000);
  CHECK_EQ(hcsb_conn_open(&loop, &o, NULL, NULL, &conn), -EINVAL);
  o.address = "nonsense://x";
  CHECK_EQ(hcsb_conn_open(&loop, &o, NULL, NULL, &conn), -EINVAL);
  CHECK(conn == NULL);
  api_drain(&loop);
}

static void open_timed_out(void *data, hcsb_conn_t *conn, int status,
                           const hcsb_guest_error_t *gerr) {
  int *st = data;
  st[0]++;
  st[1] = status;
  /* Operations on a connection that never opened fail, on the next turn. */
}

static void test_open_timeout(void) {
  hcsb_conn_options_t o;
  hcsb_conn_t *conn = NULL;
  api_done_t d = {0};
  char addr[300];
  int st[2] = {0, 0}, closed = 0;
  uv_loop_t loop;

  uv_loop_init(&loop);
  hcsb_conn_options_init(&o);
  snprintf(addr, sizeof addr, "unix://%s/nobody.sock", hcsb_test_tmpdir());
  o.address = addr;
  o.connect_timeout_ms = 100;
  CHECK_EQ(hcsb_conn_open(&loop, &o, open_timed_out, st, &conn), 0);
  RUN_UNTIL(&loop, st[0]);
  CHECK_EQ(st[0], 1);
  CHECK_EQ(st[1], -ETIMEDOUT);
  CHECK(hcsb_conn_caps(conn) == NULL);
  CHECK_EQ(
      hcsb_conn_modify(conn, NULL, "{\"ResourceType\":\"X\"}", api_done, &d),
      0);
  CHECK_EQ(d.done, 0);
  RUN_UNTIL(&loop, d.done);
  CHECK_EQ(d.status, -ENOTCONN);
  hcsb_conn_close(conn, api_closed_flag, &closed);
  RUN_UNTIL(&loop, closed);
  api_drain(&loop);
}

static void open_cb_close(void *data, hcsb_conn_t *conn, int status,
                          const hcsb_guest_error_t *gerr) {
  int *st = data;
  st[0]++;
  st[1] = status;
  hcsb_conn_close(conn, api_closed_flag, &st[2]);
}

/* Closing before the open completed cancels it; closing from its callback
 * is safe. */
static void test_close_while_opening(void) {
  hcsb_conn_options_t o;
  hcsb_conn_t *conn = NULL;
  char addr[300];
  int st[3] = {0, 0, 0}, closed = 0;
  uv_loop_t loop;

  uv_loop_init(&loop);
  hcsb_conn_options_init(&o);
  snprintf(addr, sizeof addr, "unix://%s/b.sock", hcsb_test_tmpdir());
  o.address = addr;
  CHECK_EQ(hcsb_conn_open(&loop, &o, open_timed_out, st, &conn), 0);
  hcsb_conn_close(conn, api_closed_flag, &closed);
  CHECK_EQ(st[0], 0);
  RUN_UNTIL(&loop, closed);
  CHECK_EQ(st[0], 1);
  CHECK_EQ(st[1], -ECANCELED);
  api_drain(&loop);

  /* From inside the open callback. */
  uv_loop_init(&loop);
  memset(st, 0, sizeof st);
  snprintf(addr, sizeof addr, "spawn:%s",
           hcsb_test_build_path("src/hcsb-guest"));
  o.address = addr;
  CHECK_EQ(hcsb_conn_open(&loop, &o, open_cb_close, st, &conn), 0);
  RUN_UNTIL(&loop, st[2]);
  CHECK_EQ(st[0], 1);
  CHECK_EQ(st[1], 0);
  api_drain(&loop);
}

static void stacks_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                      const char *stacks, size_t len) {
  api_done_t *d = data;
  d->done++;
  d->status = status;
  CHECK(stacks != NULL);
  CHECK_EQ(strlen(stacks), len);
  snprintf(d->message, sizeof d->message, "%s", stacks);
}

static void test_dump_stacks_and_activity_id(void) {
  hcsb_call_opts_t opts = {"not-a-guid", 0};
  uv_loop_t loop;
  api_guest_t g;
  api_done_t d = {0};

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  CHECK_EQ(hcsb_conn_dump_stacks(g.conn, &opts, stacks_cb, &d), -EINVAL);
  opts.activity_id = "0123abcd-0000-4000-8000-00000000beef";
  CHECK_EQ(hcsb_conn_dump_stacks(g.conn, &opts, stacks_cb, &d), 0);
  RUN_UNTIL(&loop, d.done);
  CHECK_EQ(d.status, 0);
  CHECK(strlen(d.message) > 0);
  api_close(&g);
}

/* ------------------------------------------------------------------------ */
/* UVM processes */

static void test_uvm_process_stdio(void) {
  const char *argv[] = {"/bin/sh", "-c",
                        "read x; echo \"out:$x\"; echo \"err:$x\" >&2; exit 3",
                        NULL};
  uv_loop_t loop;
  api_guest_t g;
  api_proc_t r;
  uint32_t code = 99;

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  api_uvm_start(&g, &r, argv, "ioe");
  /* Ports in stdin, stdout, stderr order from the first stdio port. */
  CHECK_EQ(r.p->ports[0], HCSB_PORT_FIRST_STDIO);
  CHECK_EQ(r.p->ports[1], HCSB_PORT_FIRST_STDIO + 1);
  CHECK_EQ(r.p->ports[2], HCSB_PORT_FIRST_STDIO + 2);
  CHECK(hcsb_process_stdin(r.p) != NULL);
  CHECK(hcsb_process_stdout(r.p) != NULL);
  CHECK(hcsb_process_stderr(r.p) != NULL);
  CHECK(hcsb_process_container(r.p) == NULL);
  CHECK_EQ(hcsb_process_exit_code(r.p, &code), -EBUSY);
  api_proc_finish(&g, &r, "hello\n");
  CHECK_EQ(r.wait_status, 0);
  CHECK_EQ(r.exit_code, 3);
  CHECK_STR(r.out, "out:hello\n");
  CHECK_STR(r.err, "err:hello\n");
  api_proc_free(&r);

  /* The next process continues the port counter; no pipes, no ports. */
  {
    const char *argv2[] = {"/bin/true", NULL};
    api_uvm_start(&g, &r, argv2, "o");
    CHECK_EQ(r.p->ports[0], 0);
    CHECK_EQ(r.p->ports[1], HCSB_PORT_FIRST_STDIO + 3);
    CHECK(hcsb_process_stdin(r.p) == NULL);
    CHECK_EQ(hcsb_process_write(r.p, "x", 1, NULL, NULL), -EPIPE);
    api_proc_finish(&g, &r, NULL);
    CHECK_EQ(r.exit_code, 0);
    CHECK_EQ(r.nout, 0);
    api_proc_free(&r);
  }
  api_close(&g);
}

static void test_uvm_process_unix_transport(void) {
  const char *argv[] = {"/bin/sh", "-c", "cat; echo tail >&2", NULL};
  uv_loop_t loop;
  api_guest_t g;
  api_proc_t r;

  uv_loop_init(&loop);
  api_open_unix(&g, &loop, NULL);
  api_uvm_start(&g, &r, argv, "ioe");
  api_proc_finish(&g, &r, "line one\nline two\n");
  CHECK_EQ(r.wait_status, 0);
  CHECK_EQ(r.exit_code, 0);
  CHECK_STR(r.out, "line one\nline two\n");
  CHECK_STR(r.err, "tail\n");
  api_proc_free(&r);
  api_close(&g);
}

/* The command line form, working directory and environment map. */
static void test_uvm_process_config(void) {
  const char *env[] = {"GREETING=hi there", "EMPTY=", "EQ=a=b"};
  hcsb_process_config_t cfg;
  uv_loop_t loop;
  api_guest_t g;
  api_proc_t r;
  char *params;
  int tty;

  memset(&cfg, 0, sizeof(cfg));
  cfg.command_line = "/bin/sh -c 'echo \"$GREETING|$EMPTY|$EQ|$(pwd)\"'";
  cfg.working_directory = "/tmp";
  cfg.environment = env;
  cfg.nenvironment = 3;
  cfg.create_stdout_pipe = 1;
  CHECK_EQ(hcsb__process_params(&cfg, 0, &params, &tty), 0);
  CHECK_STR(
      params,
      "{\"CommandLine\":\"/bin/sh -c 'echo \\\"$GREETING|$EMPTY|$EQ|$(pwd)"
      "\\\"'\",\"WorkingDirectory\":\"/tmp\",\"Environment\":{\"GREETING\":"
      "\"hi there\",\"EMPTY\":\"\",\"EQ\":\"a=b\"},\"CreateStdOutPipe\":true}");
  CHECK_EQ(tty, 0);
  free(params);

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  memset(&r, 0, sizeof(r));
  CHECK_EQ(
      hcsb_conn_create_process(g.conn, NULL, &cfg, api_proc_created, &r, &r.p),
      0);
  RUN_UNTIL(&loop, r.created);
  CHECK_EQ(r.create_status, 0);
  api_proc_finish(&g, &r, NULL);
  CHECK_STR(r.out, "hi there||a=b|/tmp\n");
  api_proc_free(&r);
  api_close(&g);
}

static void test_process_config_rejects(void) {
  const char *args[] = {"/bin/true"};
  const char *bad_env[] = {"NOEQUALS"};
  hcsb_process_config_t cfg;
  uv_loop_t loop;
  api_guest_t g;
  hcsb_process_t *p = NULL;

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
#define TRY(field_setup, expect)                                           \
  do {                                                                     \
    memset(&cfg, 0, sizeof(cfg));                                          \
    cfg.command_args = args;                                               \
    cfg.ncommand_args = 1;                                                 \
    field_setup;                                                           \
    CHECK_EQ(hcsb_conn_create_process(g.conn, NULL, &cfg, NULL, NULL, &p), \
             expect);                                                      \
  } while (0)
  TRY(cfg.application_name = "cmd.exe", -ENOTSUP);
  TRY(cfg.oci_specification_json = "{}", -ENOTSUP);
  TRY(cfg.user = "root", -ENOTSUP);
  TRY((cfg.emulate_console = 1, cfg.create_stderr_pipe = 1), -EINVAL);
  TRY((cfg.command_args = NULL, cfg.ncommand_args = 0), -EINVAL);
  TRY((cfg.ncommand_args = 0, cfg.command_line = ""), -EINVAL);
  TRY((cfg.environment = bad_env, cfg.nenvironment = 1), -EINVAL);
  TRY(cfg.nenvironment = 1, -EINVAL);
#undef TRY
  CHECK(p == NULL);
  /* Nothing was sent and no port was used. */
  CHECK_EQ(g.conn->next_port, HCSB_PORT_FIRST_STDIO);
  api_close(&g);
}

static void test_uvm_wait_timeout_then_wait(void) {
  const char *argv[] = {"/bin/sh", "-c", "sleep 0.4; exit 7", NULL};
  uv_loop_t loop;
  api_guest_t g;
  api_proc_t r, early;
  uint32_t code = 0;

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  api_uvm_start(&g, &r, argv, "");
  memset(&early, 0, sizeof(early));
  CHECK_EQ(hcsb_process_wait(r.p, 50, api_proc_waited, &early), 0);
  RUN_UNTIL(&loop, early.waited);
  CHECK_EQ(early.wait_status, -ETIMEDOUT);
  CHECK_EQ(hcsb_process_exit_code(r.p, &code), -EBUSY);
  /* The local timeout did not consume the guest's wait. */
  CHECK_EQ(hcsb_process_wait(r.p, 0, api_proc_waited, &r), 0);
  CHECK_EQ(hcsb_process_wait(r.p, 5000, api_proc_waited, &early), 0);
  early.waited = 0;
  RUN_UNTIL(&loop, r.waited);
  RUN_UNTIL(&loop, early.waited);
  CHECK_EQ(r.wait_status, 0);
  CHECK_EQ(r.exit_code, 7);
  CHECK_EQ(early.wait_status, 0);
  CHECK_EQ(early.exit_code, 7);
  CHECK_EQ(hcsb_process_exit_code(r.p, &code), 0);
  CHECK_EQ(code, 7);
  /* After the exit, a wait completes on the next turn with the same code. */
  r.waited = 0;
  CHECK_EQ(hcsb_process_wait(r.p, 0, api_proc_waited, &r), 0);
  CHECK_EQ(r.waited, 0);
  RUN_UNTIL(&loop, r.waited);
  CHECK_EQ(r.exit_code, 7);
  hcsb_process_close(r.p, api_proc_closed, &r);
  RUN_UNTIL(&loop, r.closed);
  api_close(&g);
}

static void signal_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                      int delivered) {
  api_done_t *d = data;
  d->done++;
  d->status = status;
  d->hresult = gerr != NULL ? gerr->hresult : 0;
  d->message[0] = (char)('0' + delivered);
}

/* The Linux GCS cannot signal or resize UVM processes: that is reported as
 * the guest said it; a process killed by a signal exits with -1. */
static void test_uvm_signal_resize_and_signal_death(void) {
  const char *argv[] = {"/bin/sh", "-c", "read x; kill -9 $$", NULL};
  hcsb_process_config_t cfg;
  api_done_t sig = {0}, rs = {0};
  uv_loop_t loop;
  api_guest_t g;
  api_proc_t r;

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  api_uvm_start(&g, &r, argv, "i");
  CHECK_EQ(hcsb_process_signal(r.p, NULL, 15, signal_cb, &sig), 0);
  CHECK_EQ(hcsb_process_resize_console(r.p, NULL, 80, 25, api_done, &rs), 0);
  RUN_UNTIL(&loop, sig.done);
  RUN_UNTIL(&loop, rs.done);
  CHECK_EQ(sig.status, HCSB_EGUEST);
  CHECK_U64(sig.hresult, HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND);
  CHECK_EQ(sig.message[0], '0');
  CHECK_EQ(rs.status, HCSB_EGUEST);
  CHECK_U64(rs.hresult, HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND);
  api_proc_finish(&g, &r, "go\n");
  CHECK_EQ(r.wait_status, 0);
  CHECK_U64(r.exit_code, 0xFFFFFFFFu);
  api_proc_free(&r);

  /* A tty process: output comes through the pty; the console size in the
   * config goes as ConsoleSize, which this guest ignores as the real one
   * does; the process still runs. */
  memset(&cfg, 0, sizeof(cfg));
  cfg.command_args = (const char *const[]){
      "/bin/sh", "-c", "tty >/dev/null && echo is-a-tty", NULL};
  cfg.ncommand_args = 3;
  cfg.emulate_console = 1;
  cfg.create_stdout_pipe = 1;
  cfg.console_width = 100;
  cfg.console_height = 30;
  memset(&r, 0, sizeof(r));
  CHECK_EQ(
      hcsb_conn_create_process(g.conn, NULL, &cfg, api_proc_created, &r, &r.p),
      0);
  RUN_UNTIL(&loop, r.created);
  CHECK_EQ(r.create_status, 0);
  api_proc_finish(&g, &r, NULL);
  CHECK_EQ(r.exit_code, 0);
  CHECK_STR(r.out, "is-a-tty\r\n");
  api_proc_free(&r);
  api_close(&g);
}

static void test_uvm_signal_allowed(void) {
  const char *argv[] = {"/bin/sleep", "30", NULL};
  api_done_t sig = {0}, again = {0};
  uv_loop_t loop;
  api_guest_t g;
  api_proc_t r;

  uv_loop_init(&loop);
  /* This emulator option lets UVM processes be signalled (main's GCS). */
  api_open_spawn(&g, &loop, "--allow-uvm-signal");
  api_uvm_start(&g, &r, argv, "");
  CHECK_EQ(hcsb_process_kill(r.p, NULL, signal_cb, &sig), 0);
  RUN_UNTIL(&loop, sig.done);
  CHECK_EQ(sig.status, 0);
  CHECK_EQ(sig.message[0], '1');
  CHECK_EQ(hcsb_process_wait(r.p, 0, api_proc_waited, &r), 0);
  RUN_UNTIL(&loop, r.waited);
  CHECK_U64(r.exit_code, 0xFFFFFFFFu);
  /* Gone and reaped: "not found" is "not delivered", not an error. */
  CHECK_EQ(hcsb_process_signal(r.p, NULL, 9, signal_cb, &again), 0);
  RUN_UNTIL(&loop, again.done);
  CHECK_EQ(again.status, 0);
  CHECK_EQ(again.message[0], '0');
  hcsb_process_close(r.p, api_proc_closed, &r);
  /* After close: the handle's operations complete with -ECANCELED. */
  again.done = 0;
  CHECK_EQ(hcsb_process_signal(r.p, NULL, 9, signal_cb, &again), 0);
  RUN_UNTIL(&loop, r.closed);
  CHECK_EQ(again.done, 1);
  CHECK_EQ(again.status, -ECANCELED);
  api_proc_free(&r);
  api_close(&g);
}

/* ------------------------------------------------------------------------ */
/* Modify */

static void test_modify_records_disks(void) {
  const char *const opts[] = {"noatime", "discard"};
  hcsb_mapped_virtual_disk_t d;
  const hcsb_mapped_virtual_disk_t *list = NULL;
  api_done_t a = {0}, b = {0}, c = {0}, bad = {0};
  uv_loop_t loop;
  api_guest_t g;
  char *json;

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  memset(&d, 0, sizeof(d));
  d.mount_path = "/run/mounts/m1";
  d.controller = 0;
  d.lun = 3;
  d.read_only = 1;
  d.options = opts;
  d.noptions = 2;
  CHECK_EQ(hcsb_modify_mapped_virtual_disk(HCSB_REQUEST_ADD, &d, &json), 0);
  CHECK_EQ(hcsb_conn_modify(g.conn, NULL, json, api_done, &a), 0);
  hcsb_free(json);
  /* A second disk through raw JSON. */
  CHECK_EQ(
      hcsb_conn_modify(g.conn, NULL,
                       "{\"ResourceType\":\"MappedVirtualDisk\",\"Settings\":"
                       "{\"MountPath\":\"/run/mounts/m2\",\"Controller\":1,"
                       "\"Lun\":0}}",
                       api_done, &b),
      0);
  CHECK_EQ(hcsb_conn_mapped_virtual_disks(g.conn, &list), 0);
  RUN_UNTIL(&loop, a.done);
  RUN_UNTIL(&loop, b.done);
  CHECK_EQ(a.status, 0);
  CHECK_EQ(b.status, 0);
  CHECK_EQ(hcsb_conn_mapped_virtual_disks(g.conn, &list), 2);
  CHECK_STR(list[0].mount_path, "/run/mounts/m1");
  CHECK_EQ(list[0].lun, 3);
  CHECK_EQ(list[0].read_only, 1);
  CHECK_EQ(list[0].noptions, 2);
  CHECK_STR(list[0].options[1], "discard");
  CHECK_STR(list[1].mount_path, "/run/mounts/m2");
  CHECK_EQ(list[1].controller, 1);

  CHECK_EQ(hcsb_modify_mapped_virtual_disk(HCSB_REQUEST_REMOVE, &d, &json), 0);
  CHECK_EQ(hcsb_conn_modify(g.conn, NULL, json, api_done, &c), 0);
  hcsb_free(json);
  RUN_UNTIL(&loop, c.done);
  CHECK_EQ(c.status, 0);
  CHECK_EQ(hcsb_conn_mapped_virtual_disks(g.conn, &list), 1);
  CHECK_STR(list[0].mount_path, "/run/mounts/m2");

  /* A guest error leaves the record alone and carries the HRESULT. */
  CHECK_EQ(hcsb_conn_modify(g.conn, NULL,
                            "{\"ResourceType\":\"NoSuchThing\",\"RequestType\":"
                            "\"Add\"}",
                            api_done, &bad),
           0);
  RUN_UNTIL(&loop, bad.done);
  CHECK_EQ(bad.status, HCSB_EGUEST);
  CHECK_U64(bad.hresult, HCSB_E_FAIL);
  CHECK_EQ(hcsb_conn_mapped_virtual_disks(g.conn, NULL), 1);
  /* Not an object, or malformed: refused before sending. */
  CHECK_EQ(hcsb_conn_modify(g.conn, NULL, "[1]", api_done, &bad), -EINVAL);
  CHECK_EQ(hcsb_conn_modify(g.conn, NULL,
                            "{\"ResourceType\":\"MappedVirtualDisk\","
                            "\"Settings\":{\"Lun\":\"x\"}}",
                            api_done, &bad),
           -EINVAL);
  api_close(&g);
}

/* ------------------------------------------------------------------------ */
/* Exit codes that cannot be known */

static void test_exit_code_not_found_is_unknown(void) {
  const char *argv[] = {"/bin/true", NULL};
  hcsb_container_t *c = NULL;
  uv_loop_t loop;
  api_guest_t g;
  api_proc_t r;
  uint32_t code = 1234;

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  api_uvm_start(&g, &r, argv, "");
  api_proc_finish(&g, &r, NULL);
  CHECK_EQ(r.wait_status, 0);
  api_proc_free(&r);
  CHECK_EQ(hcsb_conn_open_container(g.conn, "no-such-container", &c), 0);
  CHECK_EQ(hcsb_conn_open_container(g.conn, "no-such-container", &c), -EEXIST);
  /* Waiting on a PID the guest does not know: 0x80070490 is "unknown",
   * never a made-up exit code 0. */
  memset(&r, 0, sizeof(r));
  CHECK_EQ(hcsb_container_open_process(c, 424242, &r.p), 0);
  CHECK_EQ(hcsb_container_open_process(c, 424242, &r.p), -EEXIST);
  CHECK_EQ(hcsb_process_wait(r.p, 0, api_proc_waited, &r), 0);
  RUN_UNTIL(&loop, r.waited);
  CHECK_EQ(r.wait_status, HCSB_EGUEST);
  CHECK_U64(r.exit_code, HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND);
  CHECK_EQ(hcsb_process_exit_code(r.p, &code), -ENODATA);
  CHECK_EQ(code, 1234);
  CHECK(hcsb_process_container(r.p) == c);
  hcsb_process_close(r.p, api_proc_closed, &r);
  RUN_UNTIL(&loop, r.closed);
  {
    int closed = 0;
    hcsb_container_close(c, api_closed_flag, &closed);
    RUN_UNTIL(&loop, closed);
  }
  api_close(&g);
}

typedef struct cwait_s {
  int n, status;
  hcsb_container_end_t end;
} cwait_t;

static void on_cwait(void *data, hcsb_container_t *c, int status,
                     const hcsb_container_exit_t *exit) {
  cwait_t *w = data;
  w->n++;
  w->status = status;
  w->end = exit != NULL ? exit->end : 0;
}

/* Closing the connection with handles still open: everything pending ends
 * with -ECANCELED, the handles stay usable until their own close. */
static void test_conn_close_with_open_handles(void) {
  const char *argv[] = {"/bin/cat", NULL};
  hcsb_container_t *c = NULL;
  api_done_t d = {0}, sig = {0};
  cwait_t cw = {0}, cw2 = {0};
  int closed = 0, cclosed = 0;
  uv_loop_t loop;
  api_guest_t g;
  api_proc_t r, late;
  uint32_t code;

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  api_uvm_start(&g, &r, argv, "io");
  CHECK_EQ(hcsb_process_wait(r.p, 0, api_proc_waited, &r), 0);
  CHECK_EQ(hcsb_conn_open_container(g.conn, "idle", &c), 0);
  CHECK_EQ(hcsb_container_wait(c, 0, on_cwait, &cw), 0);
  hcsb_conn_close(g.conn, api_closed_flag, &closed);
  hcsb_conn_close(g.conn, api_closed_flag, &closed); /* no-op */
  CHECK(hcsb_process_stdout(r.p) == NULL);
  CHECK(hcsb_conn_bridge(g.conn) == NULL);
  CHECK(hcsb_conn_caps(g.conn) != NULL);
  RUN_UNTIL(&loop, closed);
  RUN_UNTIL(&loop, r.waited);
  RUN_UNTIL(&loop, cw.n);
  CHECK_EQ(closed, 1);
  CHECK_EQ(r.wait_status, -ECANCELED);
  CHECK_EQ(hcsb_process_exit_code(r.p, &code), -ENODATA);
  CHECK_EQ(cw.status, -ECANCELED);
  CHECK_EQ(cw.end, HCSB_CONTAINER_CLOSED);
  /* Still usable, and honest about it. */
  CHECK_EQ(hcsb_container_start(c, NULL, api_done, &d), 0);
  CHECK_EQ(hcsb_process_signal(r.p, NULL, 9, signal_cb, &sig), 0);
  CHECK_EQ(hcsb_container_wait(c, 0, on_cwait, &cw2), 0);
  memset(&late, 0, sizeof(late));
  CHECK_EQ(hcsb_process_wait(r.p, 0, api_proc_waited, &late), 0);
  CHECK_EQ(hcsb_process_write(r.p, "x", 1, NULL, NULL), -EPIPE);
  CHECK_EQ(d.done + sig.done + cw2.n + late.waited, 0);
  RUN_UNTIL(&loop, d.done);
  RUN_UNTIL(&loop, sig.done);
  RUN_UNTIL(&loop, cw2.n);
  RUN_UNTIL(&loop, late.waited);
  CHECK_EQ(d.status, -ENOTCONN);
  CHECK_EQ(sig.status, -ENOTCONN);
  CHECK_EQ(cw2.status, -ECANCELED);
  CHECK_EQ(late.wait_status, -ECANCELED);
  {
    hcsb_process_t *p2 = NULL;
    api_proc_t r2;
    memset(&r2, 0, sizeof(r2));
    CHECK_EQ(hcsb_conn_create_process(
                 g.conn, NULL,
                 &(hcsb_process_config_t){.command_args = argv,
                                          .ncommand_args = 1,
                                          .create_stdout_pipe = 1},
                 api_proc_created, &r2, &p2),
             0);
    RUN_UNTIL(&loop, r2.created);
    CHECK_EQ(r2.create_status, -ENOTCONN);
    hcsb_process_close(p2, api_proc_closed, &r2);
    RUN_UNTIL(&loop, r2.closed);
  }
  hcsb_process_close(r.p, api_proc_closed, &r);
  hcsb_container_close(c, api_closed_flag, &cclosed);
  RUN_UNTIL(&loop, r.closed);
  RUN_UNTIL(&loop, cclosed);
  api_proc_free(&r);
  api_drain(&loop);
}

/* ------------------------------------------------------------------------ */
/* Bring-up listeners (protocol.md §2.2-§2.3) */

typedef struct dial_s {
  uv_pipe_t pipe;
  uv_connect_t req;
  uv_write_t w;
  char buf[1024];
  size_t got;
  int eof, closed;
  const char *send;
} dial_t;

static void dial_alloc(uv_handle_t *h, size_t n, uv_buf_t *buf) {
  dial_t *d = h->data;
  *buf = uv_buf_init(d->buf + d->got, (unsigned)(sizeof d->buf - d->got));
}

static void dial_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  dial_t *d = s->data;
  if (n > 0) d->got += (size_t)n;
  if (n < 0) d->eof = 1;
}

static void dial_closed(uv_handle_t *h) {
  ((dial_t *)h->data)->closed = 1;
}

static void dial_written(uv_write_t *w, int status) {
  dial_t *d = w->data;
  CHECK_EQ(status, 0);
  uv_close((uv_handle_t *)&d->pipe, dial_closed);
}

static void dial_connected(uv_connect_t *req, int status) {
  dial_t *d = req->data;
  CHECK_EQ(status, 0);
  if (d->send != NULL) {
    uv_buf_t b = uv_buf_init((char *)d->send, (unsigned)strlen(d->send));
    d->w.data = d;
    CHECK_EQ(uv_write(&d->w, (uv_stream_t *)&d->pipe, &b, 1, dial_written), 0);
  } else {
    CHECK_EQ(uv_read_start((uv_stream_t *)&d->pipe, dial_alloc, dial_read), 0);
  }
}

/* Plays the guest's init/vsockexec: dials <dir>/<port>.sock. */
static void dial(uv_loop_t *loop, dial_t *d, const char *dir, unsigned port,
                 const char *send) {
  char path[300];
  memset(d, 0, sizeof(*d));
  snprintf(path, sizeof path, "%s/%u.sock", dir, port);
  CHECK_EQ(uv_pipe_init(loop, &d->pipe, 0), 0);
  d->pipe.data = d->req.data = d;
  d->send = send;
  uv_pipe_connect(&d->req, &d->pipe, path, dial_connected);
}

typedef struct logs_s {
  int n;
  char lines[4][128];
} logs_t;

static void on_log(void *data, const hcsb_guest_log_record_t *r) {
  logs_t *l = data;
  if (l->n < 4)
    snprintf(l->lines[l->n], 128, "%.*s|%s|%s|%s", (int)r->line_len, r->line,
             r->time ? r->time : "-", r->level ? r->level : "-",
             r->msg ? r->msg : "-");
  l->n++;
}

static void test_bringup_entropy_and_log(void) {
  hcsb_conn_options_t o;
  hcsb_conn_t *conn = NULL;
  dial_t e, lg;
  logs_t logs;
  char addr[300];
  int st[2] = {0, 0}, closed = 0;
  uv_loop_t loop;
  const char *dir = hcsb_test_tmpdir();

  uv_loop_init(&loop);
  memset(&logs, 0, sizeof(logs));
  hcsb_conn_options_init(&o);
  snprintf(addr, sizeof addr, "unix://%s/bridge.sock", dir);
  o.address = addr;
  o.entropy = 1;
  o.guest_log_cb = on_log;
  o.guest_log_data = &logs;
  CHECK_EQ(hcsb_conn_open(&loop, &o, open_timed_out, st, &conn), 0);
  /* Bound on return: the VM may start now. */
  dial(&loop, &e, dir, HCSB_PORT_ENTROPY, NULL);
  dial(&loop, &lg, dir, HCSB_PORT_LOG,
       "{\"time\":\"2026-01-01T00:00:00Z\",\"level\":\"info\",\"msg\":\"gcs "
       "up\"}\n"
       "panic: oops\n");
  RUN_UNTIL(&loop, e.eof);
  CHECK_EQ(e.got, HCSB_ENTROPY_BYTES);
  RUN_UNTIL(&loop, lg.closed);
  while (logs.n < 2) uv_run(&loop, UV_RUN_ONCE);
  CHECK_STR(logs.lines[0],
            "{\"time\":\"2026-01-01T00:00:00Z\",\"level\":\"info\",\"msg\":"
            "\"gcs up\"}|2026-01-01T00:00:00Z|info|gcs up");
  CHECK_STR(logs.lines[1], "panic: oops|-|-|-");
  uv_close((uv_handle_t *)&e.pipe, dial_closed);
  hcsb_conn_close(conn, api_closed_flag, &closed);
  RUN_UNTIL(&loop, closed);
  CHECK_EQ(st[1], -ECANCELED);
  api_drain(&loop);
}

/* vsock: listening only (nothing here ever connects one).  Either the
 * listeners bind, or the machine has no AF_VSOCK. */
static void test_bringup_vsock_listen_only(void) {
  hcsb_conn_options_t o;
  hcsb_conn_t *conn = NULL;
  int st[2] = {0, 0}, closed = 0, r;
  uv_loop_t loop;

  uv_loop_init(&loop);
  hcsb_conn_options_init(&o);
  o.address = "vsock://ANY:1073741824";
  o.entropy = 1;
  o.guest_log_cb = on_log;
  r = hcsb_conn_open(&loop, &o, open_timed_out, st, &conn);
  if (r == 0) {
    hcsb_conn_close(conn, api_closed_flag, &closed);
    RUN_UNTIL(&loop, closed);
    CHECK_EQ(st[0], 1);
    CHECK_EQ(st[1], -ECANCELED);
  } else {
    fprintf(stderr, "  vsock listen: %s\n", hcsb_strerror(r));
    CHECK(r == -EAFNOSUPPORT || r == UV_EAFNOSUPPORT || r == -EADDRINUSE ||
          r == -ENODEV || r == -EACCES);
  }
  api_drain(&loop);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(open_spawn),
    TEST_ENTRY(open_unix),
    TEST_ENTRY(open_bad_args),
    TEST_ENTRY(open_timeout),
    TEST_ENTRY(close_while_opening),
    TEST_ENTRY(dump_stacks_and_activity_id),
    TEST_ENTRY(uvm_process_stdio),
    TEST_ENTRY(uvm_process_unix_transport),
    TEST_ENTRY(uvm_process_config),
    TEST_ENTRY(process_config_rejects),
    TEST_ENTRY(uvm_wait_timeout_then_wait),
    TEST_ENTRY(uvm_signal_resize_and_signal_death),
    TEST_ENTRY(uvm_signal_allowed),
    TEST_ENTRY(modify_records_disks),
    TEST_ENTRY(exit_code_not_found_is_unknown),
    TEST_ENTRY(conn_close_with_open_handles),
    TEST_ENTRY(bringup_entropy_and_log),
    TEST_ENTRY(bringup_vsock_listen_only),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
