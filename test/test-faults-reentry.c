/* Fault matrix: the connection closed from inside the API's callbacks -
 * a stdio read, a process wait, a container wait fed by the guest's
 * notification, and the open (negotiation) callback.  Every other pending
 * operation then completes exactly once with -ECANCELED, nothing runs
 * after its handle's close callback, and the loop ends empty. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faults.h"

#define EXEC HCSB_MSG_EXECUTE_PROCESS
#define WAIT HCSB_MSG_WAIT_FOR_PROCESS

typedef struct world_s {
  fconn_t f;
  hcsb_container_t *c;
  hcsb_process_t *p;
  int created, create_status;
  int reads, read_after_close;
  int pwait_n, pwait_status;
  uint32_t pwait_code;
  int cwait_n, cwait_status;
  hcsb_container_end_t cwait_end;
  fdone_t sig, props, modify;
  int sig_delivered;
  int conn_closed, c_closed, p_closed;
  int closing;
} world_t;

static world_t w;

static void close_conn_now(void) {
  CHECK(!w.closing);
  w.closing = 1;
  hcsb_conn_close(w.f.conn, fclosed_cb, &w.conn_closed);
  CHECK_EQ(w.conn_closed, 0); /* never inside the call */
}

static void on_created(void *data, hcsb_process_t *p, int status,
                       const hcsb_guest_error_t *gerr) {
  (void)data;
  (void)p;
  (void)gerr;
  CHECK(!faults_in_api);
  w.created++;
  w.create_status = status;
}

static void on_pwait(void *data, hcsb_process_t *p, int status, uint32_t code) {
  (void)p;
  CHECK(!faults_in_api);
  w.pwait_n++;
  w.pwait_status = status;
  w.pwait_code = code;
  if (data != NULL) close_conn_now();
}

static void on_cwait(void *data, hcsb_container_t *c, int status,
                     const hcsb_container_exit_t *exit) {
  (void)c;
  CHECK(!faults_in_api);
  w.cwait_n++;
  w.cwait_status = status;
  w.cwait_end = exit != NULL ? exit->end : 0;
  if (data != NULL) close_conn_now();
}

static void on_signal(void *data, int status, const hcsb_guest_error_t *gerr,
                      int delivered) {
  (void)data;
  (void)gerr;
  CHECK(!faults_in_api);
  w.sig.n++;
  w.sig.status = status;
  w.sig_delivered = delivered;
}

static void on_props(void *data, int status, const hcsb_guest_error_t *gerr,
                     const hcsb_properties_t *props) {
  (void)data;
  (void)gerr;
  (void)props;
  CHECK(!faults_in_api);
  w.props.n++;
  w.props.status = status;
}

static void on_read(void *data, hcsb_process_t *p, int fd, const char *buf,
                    ssize_t nread) {
  (void)data;
  (void)p;
  (void)fd;
  (void)buf;
  (void)nread;
  if (w.closing) w.read_after_close++;
  w.reads++;
  close_conn_now();
}

/* Starts a process in container "c1" (exec, args given). */
static void start_process(int want_stdout) {
  hcsb_process_config_t pc;
  static const char *const argv[] = {"/bin/sleep", "100"};
  memset(&pc, 0, sizeof pc);
  pc.command_args = argv;
  pc.ncommand_args = 2;
  pc.create_stdout_pipe = want_stdout;
  faults_in_api = 1;
  CHECK_EQ(
      hcsb_container_create_process(w.c, NULL, &pc, on_created, NULL, &w.p), 0);
  faults_in_api = 0;
}

/* Everything closed: the loop must end empty, each close callback once. */
static void finish(void) {
  RUN_UNTIL(&w.f.loop, w.conn_closed == 1);
  faults_in_api = 1;
  if (w.p != NULL) hcsb_process_close(w.p, fclosed_cb, &w.p_closed);
  if (w.c != NULL) hcsb_container_close(w.c, fclosed_cb, &w.c_closed);
  faults_in_api = 0;
  RUN_UNTIL(&w.f.loop,
            w.p_closed == (w.p != NULL) && w.c_closed == (w.c != NULL));
  w.f.conn = NULL; /* closed above; fconn_finish only joins and drains */
  fconn_finish(&w.f);
  CHECK_EQ(w.conn_closed, 1);
  CHECK_EQ(w.f.lost_n, 0); /* closed by its owner, not lost */
}

static uint64_t exec_and_answer(fpeer_t *p, uint32_t pid, int dial) {
  char body[96];
  fframe_t f;
  CHECK_EQ(fpeer_read(p, &f), 0);
  CHECK_EQ(f.type, EXEC);
  if (dial) {
    const char *s = strstr(f.body, "\"StdOut\":");
    CHECK(s != NULL);
    int fd = fpeer_dial(p, (uint32_t)strtoul(s + 9, NULL, 10));
    CHECK(fd >= 0);
    p->arg = (void *)(intptr_t)fd;
  }
  snprintf(body, sizeof body, "{\"Result\":0,\"ProcessId\":%u}", (unsigned)pid);
  fpeer_send(p, HCSB_MSG_EXECUTE_PROCESS_RESPONSE, f.id, body);
  uint64_t id = f.id;
  fframe_free(&f);
  return id;
}

/* ------------------------------------------------------------------------ */
/* Inside a stdio read callback: no more reads after it, the process's
 * pending wait and signal complete -ECANCELED once. */

static void script_stdout_then_hang(fpeer_t *p) {
  fpeer_negotiate(p);
  exec_and_answer(p, 31, 1);
  int fd = (int)(intptr_t)p->arg;
  fpeer_expect(p, WAIT);
  fpeer_expect(p, HCSB_MSG_SIGNAL_PROCESS);
  /* Two writes: the host closes on the first, the second must not show. */
  CHECK_EQ(write(fd, "one", 3), 3);
  usleep(20000);
  (void)!write(fd, "two", 3);
  fpeer_drain(p);
  close(fd);
}

static void test_close_conn_inside_stdio_read(void) {
  memset(&w, 0, sizeof w);
  fconn_open(&w.f, script_stdout_then_hang, NULL, NULL, NULL);
  fconn_wait_open(&w.f, 0);
  CHECK_EQ(hcsb_conn_open_container(w.f.conn, "c1", &w.c), 0);
  start_process(1);
  RUN_UNTIL(&w.f.loop, w.created == 1);
  CHECK_EQ(w.create_status, 0);
  faults_in_api = 1;
  CHECK_EQ(hcsb_process_wait(w.p, 0, on_pwait, NULL), 0);
  CHECK_EQ(hcsb_process_signal(w.p, NULL, 15, on_signal, NULL), 0);
  CHECK_EQ(hcsb_process_read_start(w.p, on_read, NULL), 0);
  faults_in_api = 0;
  RUN_UNTIL(&w.f.loop, w.reads == 1 && w.pwait_n == 1 && w.sig.n == 1);
  CHECK_EQ(w.pwait_status, -ECANCELED);
  CHECK_EQ(w.sig.status, -ECANCELED);
  CHECK_EQ(w.sig_delivered, 0);
  finish();
  CHECK_EQ(w.reads, 1);
  CHECK_EQ(w.read_after_close, 0);
  CHECK_EQ(w.pwait_n, 1);
  CHECK_EQ(w.sig.n, 1);
  CHECK_EQ(w.created, 1);
}

/* ------------------------------------------------------------------------ */
/* Inside a process wait callback (the guest reported the exit): the
 * container's pending properties call and its wait end -ECANCELED /
 * CLOSED, once. */

static void script_exit_then_hang(fpeer_t *p) {
  fpeer_negotiate(p);
  exec_and_answer(p, 32, 0);
  uint64_t wid = fpeer_expect(p, WAIT);
  fpeer_expect(p, HCSB_MSG_GET_PROPERTIES);
  fpeer_send(p, HCSB_MSG_WAIT_FOR_PROCESS_RESPONSE, wid,
             "{\"Result\":0,\"ExitCode\":3}");
  fpeer_drain(p);
}

static void test_close_conn_inside_wait_cb(void) {
  memset(&w, 0, sizeof w);
  fconn_open(&w.f, script_exit_then_hang, NULL, NULL, NULL);
  fconn_wait_open(&w.f, 0);
  CHECK_EQ(hcsb_conn_open_container(w.f.conn, "c1", &w.c), 0);
  start_process(0);
  RUN_UNTIL(&w.f.loop, w.created == 1);
  CHECK_EQ(w.create_status, 0);
  faults_in_api = 1;
  CHECK_EQ(hcsb_container_wait(w.c, 0, on_cwait, NULL), 0);
  CHECK_EQ(hcsb_container_process_list(w.c, NULL, on_props, NULL), 0);
  CHECK_EQ(hcsb_process_wait(w.p, 0, on_pwait, &w), 0); /* closes */
  faults_in_api = 0;
  RUN_UNTIL(&w.f.loop, w.pwait_n == 1 && w.props.n == 1 && w.cwait_n == 1);
  CHECK_EQ(w.pwait_status, 0);
  CHECK_EQ(w.pwait_code, 3);
  CHECK_EQ(w.props.status, -ECANCELED);
  CHECK_EQ(w.cwait_status, -ECANCELED);
  CHECK_EQ(w.cwait_end, HCSB_CONTAINER_CLOSED);
  uint32_t code = 0;
  CHECK_EQ(hcsb_process_exit_code(w.p, &code), 0);
  CHECK_EQ(code, 3);
  finish();
  CHECK_EQ(w.pwait_n + w.props.n + w.cwait_n, 3);
}

/* ------------------------------------------------------------------------ */
/* Inside a container wait callback fed by the exit notification: the
 * pending signal and process wait complete -ECANCELED, once. */

static void script_note_then_hang(fpeer_t *p) {
  fpeer_negotiate(p);
  exec_and_answer(p, 33, 0);
  fpeer_expect(p, WAIT);
  fpeer_expect(p, HCSB_MSG_SIGNAL_PROCESS);
  fpeer_send(
      p, HCSB_MSG_NOTIFY_CONTAINER, 0,
      "{\"ContainerId\":\"c1\",\"Type\":\"UnexpectedExit\",\"Result\":0}");
  fpeer_drain(p);
}

static void test_close_conn_inside_notification_wait_cb(void) {
  memset(&w, 0, sizeof w);
  fconn_open(&w.f, script_note_then_hang, NULL, NULL, NULL);
  fconn_wait_open(&w.f, 0);
  CHECK_EQ(hcsb_conn_open_container(w.f.conn, "c1", &w.c), 0);
  start_process(0);
  RUN_UNTIL(&w.f.loop, w.created == 1);
  faults_in_api = 1;
  CHECK_EQ(hcsb_process_wait(w.p, 0, on_pwait, NULL), 0);
  CHECK_EQ(hcsb_process_kill(w.p, NULL, on_signal, NULL), 0);
  CHECK_EQ(hcsb_container_wait(w.c, 0, on_cwait, &w), 0); /* closes */
  faults_in_api = 0;
  RUN_UNTIL(&w.f.loop, w.cwait_n == 1 && w.pwait_n == 1 && w.sig.n == 1);
  CHECK_EQ(w.cwait_status, 0);
  CHECK_EQ(w.cwait_end, HCSB_CONTAINER_EXITED);
  CHECK_EQ(w.sig.status, -ECANCELED);
  CHECK_EQ(w.pwait_status, -ECANCELED);
  uint32_t code;
  CHECK_EQ(hcsb_process_exit_code(w.p, &code), -ENODATA);
  finish();
  CHECK_EQ(w.cwait_n + w.pwait_n + w.sig.n, 3);
}

/* ------------------------------------------------------------------------ */
/* Inside the open callback: operations started while opening (queued
 * behind negotiation) complete -ECANCELED, once; the guest never sees
 * them. */

static void on_ccreated(void *data, hcsb_container_t *c, int status,
                        const hcsb_guest_error_t *gerr) {
  fdone_t *d = data;
  (void)c;
  (void)gerr;
  CHECK(!faults_in_api);
  d->n++;
  d->status = status;
}

static void open_then_close(fconn_t *f, int status) {
  CHECK_EQ(status, 0);
  (void)f;
  close_conn_now();
}

static void script_negotiate_count(fpeer_t *p) {
  fpeer_negotiate(p);
  size_t n = fpeer_drain(p);
  (void)n; /* flushed or not, none of them may be answered */
}

static void test_close_conn_inside_open_cb(void) {
  hcsb_container_config_t cfg;
  memset(&w, 0, sizeof w);
  memset(&cfg, 0, sizeof cfg);
  cfg.id = "c-early";
  cfg.config_json = "{\"SchemaVersion\":{\"Major\":2,\"Minor\":1}}";
  fconn_open(&w.f, script_negotiate_count, NULL, NULL, open_then_close);
  faults_in_api = 1;
  CHECK_EQ(hcsb_conn_modify(w.f.conn, NULL,
                            "{\"ResourceType\":\"Memory\",\"RequestType\":"
                            "\"Update\",\"Settings\":1}",
                            fdone_cb, &w.modify),
           0);
  CHECK_EQ(hcsb_conn_create_container(w.f.conn, NULL, &cfg, on_ccreated,
                                      &w.props, &w.c),
           0);
  CHECK_EQ(hcsb_container_wait(w.c, 0, on_cwait, NULL), 0);
  faults_in_api = 0;
  RUN_UNTIL(&w.f.loop, w.f.open_n == 1 && w.modify.n == 1 && w.cwait_n == 1 &&
                           w.props.n == 1);
  CHECK_EQ(w.f.open_status, 0);
  CHECK_EQ(w.modify.status, -ECANCELED);
  CHECK_EQ(w.props.status, -ECANCELED); /* the container's create */
  CHECK_EQ(w.cwait_status, -ECANCELED);
  CHECK_EQ(w.cwait_end, HCSB_CONTAINER_CLOSED);
  finish();
  CHECK_EQ(w.modify.n, 1);
  CHECK_EQ(w.props.n, 1);
  CHECK_EQ(w.cwait_n, 1);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(close_conn_inside_stdio_read),
    TEST_ENTRY(close_conn_inside_wait_cb),
    TEST_ENTRY(close_conn_inside_notification_wait_cb),
    TEST_ENTRY(close_conn_inside_open_cb),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
