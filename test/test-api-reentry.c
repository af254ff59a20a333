/* Closing a process, a container or the connection from inside every kind
 * of callback the API has.  Each case checks that the callback ran once,
 * every close callback ran once, and nothing is left on the loop (ASan and
 * valgrind check the memory). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "api/api-int.h"
#include "test-api-util.h"

enum { CLOSE_PROCESS, CLOSE_CONTAINER, CLOSE_CONN, NTARGETS };

typedef struct reent_s {
  uv_loop_t loop;
  api_guest_t g;
  hcsb_container_t *c;
  hcsb_process_t *init; /* the container's init */
  hcsb_process_t *p;    /* the process the case is about */
  int target;
  int hits;
  int p_closing, init_closing, c_closing, conn_closing;
  int p_closed, init_closed, c_closed, conn_closed;
  /* Another operation pending when the close happens: must end once. */
  int other_done, other_status;
  api_done_t aux; /* a helper call of the case, outlives its arm function */
} reent_t;

static void flag(void *data) {
  (*(int *)data)++;
}

static void close_process(reent_t *x, hcsb_process_t *p) {
  if (p == NULL) return;
  if (p == x->init) {
    if (x->init_closing++) return;
    hcsb_process_close(p, flag, &x->init_closed);
  }
  if (p == x->p && p != x->init) {
    if (x->p_closing++) return;
    hcsb_process_close(p, flag, &x->p_closed);
  }
}

static void close_target(reent_t *x) {
  switch (x->target) {
    case CLOSE_PROCESS:
      close_process(x, x->p != NULL ? x->p : x->init);
      break;
    case CLOSE_CONTAINER:
      if (!x->c_closing++) hcsb_container_close(x->c, flag, &x->c_closed);
      break;
    case CLOSE_CONN:
      if (!x->conn_closing++) hcsb_conn_close(x->g.conn, flag, &x->conn_closed);
      break;
  }
}

static void hit(reent_t *x) {
  x->hits++;
  close_target(x);
  /* A second close of the same thing is harmless. */
  close_target(x);
}

/* Callbacks of every shape; each one closes the target. */
static void on_done(void *data, int status, const hcsb_guest_error_t *gerr) {
  hit(data);
}
static void on_proc(void *data, hcsb_process_t *p, int status,
                    const hcsb_guest_error_t *gerr) {
  hit(data);
}
static void on_pwait(void *data, hcsb_process_t *p, int status, uint32_t code) {
  hit(data);
}
static void on_cwait(void *data, hcsb_container_t *c, int status,
                     const hcsb_container_exit_t *exit) {
  hit(data);
}
static void on_ctr(void *data, hcsb_container_t *c, int status,
                   const hcsb_guest_error_t *gerr) {
  reent_t *x = data;
  x->c = c;
  hit(data);
}
static void on_signal(void *data, int status, const hcsb_guest_error_t *gerr,
                      int delivered) {
  hit(data);
}
static void on_props(void *data, int status, const hcsb_guest_error_t *gerr,
                     const hcsb_properties_t *props) {
  hit(data);
}
static void on_stacks(void *data, int status, const hcsb_guest_error_t *gerr,
                      const char *s, size_t n) {
  hit(data);
}
static void on_read(void *data, hcsb_process_t *p, int fd, const char *buf,
                    ssize_t nread) {
  reent_t *x = data;
  if (x->hits == 0) hit(data);
}
static void on_lost(void *data, hcsb_conn_t *conn, int status) {
  hit(data);
}
static void on_other(void *data, hcsb_process_t *p, int status, uint32_t code) {
  reent_t *x = data;
  x->other_done++;
  x->other_status = status;
}

static void discard(void *data, hcsb_process_t *p, int fd, const char *buf,
                    ssize_t nread) {}

static const char *spec =
    "{\"process\":{\"args\":[\"/bin/sh\",\"-c\",\"echo init-out; sleep 1000\"],"
    "\"cwd\":\"/\"},\"root\":{\"path\":\"/\"}}";

static void created(void *data, hcsb_container_t *c, int status,
                    const hcsb_guest_error_t *gerr) {
  CHECK_EQ(status, 0);
  (*(int *)data)++;
}

static void pcreated(void *data, hcsb_process_t *p, int status,
                     const hcsb_guest_error_t *gerr) {
  CHECK_EQ(status, 0);
  (*(int *)data)++;
}

static hcsb_process_t *exec_in(reent_t *x, const char *script,
                               const char *pipes, int tty, hcsb_process_cb cb,
                               void *data) {
  const char *argv[] = {"/bin/sh", "-c", script, NULL};
  hcsb_process_config_t pc;
  hcsb_process_t *p = NULL;
  int done = 0;

  api_proc_config(&pc, argv, pipes, tty);
  CHECK_EQ(hcsb_container_create_process(x->c, NULL, &pc, cb ? cb : pcreated,
                                         cb ? data : &done, &p),
           0);
  if (cb == NULL) RUN_UNTIL(&x->loop, done);
  return p;
}

static void setup(reent_t *x, int target, int unix_transport) {
  hcsb_container_config_t cfg;
  hcsb_process_config_t pc;
  int done = 0;

  memset(x, 0, sizeof(*x));
  x->target = target;
  uv_loop_init(&x->loop);
  if (unix_transport)
    api_open_unix(&x->g, &x->loop, NULL);
  else
    api_open_spawn(&x->g, &x->loop, NULL);
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = "re";
  cfg.oci_spec_json = spec;
  CHECK_EQ(
      hcsb_conn_create_container(x->g.conn, NULL, &cfg, created, &done, &x->c),
      0);
  RUN_UNTIL(&x->loop, done);
  memset(&pc, 0, sizeof(pc));
  pc.create_stdout_pipe = 1;
  done = 0;
  CHECK_EQ(
      hcsb_container_create_process(x->c, NULL, &pc, pcreated, &done, &x->init),
      0);
  RUN_UNTIL(&x->loop, done);
  /* Drained to EOF, so the guest can report the init's exit. */
  CHECK_EQ(hcsb_process_read_start(x->init, discard, NULL), 0);
  /* The init's own exit wait stays pending through every case. */
  CHECK_EQ(hcsb_process_wait(x->init, 0, on_other, x), 0);
}

static void teardown(reent_t *x) {
  RUN_UNTIL(&x->loop, x->hits);
  if (x->p != NULL && x->p != x->init && !x->p_closing++)
    hcsb_process_close(x->p, flag, &x->p_closed);
  if (!x->init_closing++) hcsb_process_close(x->init, flag, &x->init_closed);
  if (!x->c_closing++) hcsb_container_close(x->c, flag, &x->c_closed);
  if (!x->conn_closing++) hcsb_conn_close(x->g.conn, flag, &x->conn_closed);
  RUN_UNTIL(&x->loop, x->conn_closed);
  RUN_UNTIL(&x->loop, x->c_closed);
  RUN_UNTIL(&x->loop, x->init_closed);
  if (x->p != NULL && x->p != x->init) RUN_UNTIL(&x->loop, x->p_closed);
  RUN_UNTIL(&x->loop, x->other_done);
  if (x->g.pid > 0) waitpid(x->g.pid, NULL, 0);
  api_drain(&x->loop);
  CHECK_EQ(x->hits, 1);
  CHECK_EQ(x->conn_closed, 1);
  CHECK_EQ(x->c_closed, 1);
  CHECK_EQ(x->init_closed, 1);
  CHECK_EQ(x->other_done, 1);
  CHECK(x->aux.done <= 1);
  CHECK(x->p == NULL || x->p == x->init || x->p_closed == 1);
}

/* ------------------------------------------------------------------------ */
/* The triggers: each arms one callback on a fresh setup. */

typedef void (*arm_fn)(reent_t *x);

static void arm_process_create(reent_t *x) {
  x->p = exec_in(x, "echo hi", "o", 0, on_proc, x);
}
static void arm_process_wait(reent_t *x) {
  x->p = exec_in(x, "exit 3", "", 0, NULL, NULL);
  CHECK_EQ(hcsb_process_wait(x->p, 0, on_pwait, x), 0);
}
static void arm_process_wait_timeout(reent_t *x) {
  x->p = exec_in(x, "sleep 1000", "", 0, NULL, NULL);
  CHECK_EQ(hcsb_process_wait(x->p, 20, on_pwait, x), 0);
}
static void arm_process_read(reent_t *x) {
  x->p = exec_in(x, "echo some-output; sleep 1000", "o", 0, NULL, NULL);
  CHECK_EQ(hcsb_process_read_start(x->p, on_read, x), 0);
}
static void arm_process_signal(reent_t *x) {
  x->p = exec_in(x, "sleep 1000", "", 0, NULL, NULL);
  CHECK_EQ(hcsb_process_signal(x->p, NULL, 15, on_signal, x), 0);
}
static void arm_process_write(reent_t *x) {
  x->p = exec_in(x, "cat >/dev/null", "i", 0, NULL, NULL);
  CHECK_EQ(hcsb_process_write(x->p, "data\n", 5, on_done, x), 0);
}
static void arm_process_resize(reent_t *x) {
  x->p = exec_in(x, "sleep 1000", "o", 1, NULL, NULL);
  CHECK_EQ(hcsb_process_resize_console(x->p, NULL, 90, 20, on_done, x), 0);
}
static void arm_container_create(reent_t *x) {
  hcsb_container_config_t cfg;
  hcsb_container_t *c2 = NULL;
  int done = 0;

  /* The case's container is a second one, closed in its create callback;
   * the fixture's container is released first. */
  hcsb_container_close(x->c, flag, &done);
  RUN_UNTIL(&x->loop, done);
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = "re-2";
  cfg.oci_spec_json = spec;
  CHECK_EQ(hcsb_conn_create_container(x->g.conn, NULL, &cfg, on_ctr, x, &c2),
           0);
  x->c = c2;
}
static void arm_container_wait(reent_t *x) {
  CHECK_EQ(hcsb_container_wait(x->c, 0, on_cwait, x), 0);
  CHECK_EQ(hcsb_container_terminate(x->c, NULL, api_done, &x->aux), 0);
}
static void arm_container_wait_timeout(reent_t *x) {
  CHECK_EQ(hcsb_container_wait(x->c, 20, on_cwait, x), 0);
}
static void arm_container_start(reent_t *x) {
  CHECK_EQ(hcsb_container_start(x->c, NULL, on_done, x), 0);
}
static void arm_container_props(reent_t *x) {
  CHECK_EQ(hcsb_container_process_list(x->c, NULL, on_props, x), 0);
}
static void arm_container_unsupported(reent_t *x) {
  CHECK_EQ(hcsb_container_pause(x->c, NULL, on_done, x), 0);
}
static void arm_conn_modify(reent_t *x) {
  CHECK_EQ(hcsb_conn_modify(
               x->g.conn, NULL,
               "{\"ResourceType\":\"VPCIDevice\",\"Settings\":"
               "{\"VMBusGUID\":\"11111111-2222-3333-4444-555555555555\"}}",
               on_done, x),
           0);
}
static void arm_conn_stacks(reent_t *x) {
  CHECK_EQ(hcsb_conn_dump_stacks(x->g.conn, NULL, on_stacks, x), 0);
}

static const struct {
  const char *name;
  arm_fn arm;
} triggers[] = {
    {"process create", arm_process_create},
    {"process wait", arm_process_wait},
    {"process wait timeout", arm_process_wait_timeout},
    {"process read", arm_process_read},
    {"process signal", arm_process_signal},
    {"process write", arm_process_write},
    {"process resize", arm_process_resize},
    {"container create", arm_container_create},
    {"container wait", arm_container_wait},
    {"container wait timeout", arm_container_wait_timeout},
    {"container start", arm_container_start},
    {"container properties", arm_container_props},
    {"container pause", arm_container_unsupported},
    {"conn modify", arm_conn_modify},
    {"conn dump stacks", arm_conn_stacks},
};

static void run_target(int target) {
  size_t i;

  for (i = 0; i < sizeof triggers / sizeof triggers[0]; i++) {
    reent_t x;
    if (getenv("HCSB_TEST_VERBOSE") != NULL)
      fprintf(stderr, "  case: close %d from %s\n", target, triggers[i].name);
    setup(&x, target, 0);
    triggers[i].arm(&x);
    teardown(&x);
  }
}

static void test_close_process_from_callbacks(void) {
  run_target(CLOSE_PROCESS);
}

static void test_close_container_from_callbacks(void) {
  run_target(CLOSE_CONTAINER);
}

static void test_close_conn_from_callbacks(void) {
  run_target(CLOSE_CONN);
}

/* The connection-lost callback, with each target. */
static void test_close_from_lost_callback(void) {
  int target;

  for (target = 0; target < NTARGETS; target++) {
    reent_t x;
    setup(&x, target, 1);
    hcsb_conn_set_lost_cb(x.g.conn, on_lost, &x);
    CHECK_EQ(kill(x.g.pid, SIGKILL), 0);
    teardown(&x);
    /* Unless closed first, the init's wait reports the loss. */
    if (target != CLOSE_PROCESS) CHECK_EQ(x.other_status, -ECONNRESET);
  }
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY_T(close_process_from_callbacks, 60),
    TEST_ENTRY_T(close_container_from_callbacks, 60),
    TEST_ENTRY_T(close_conn_from_callbacks, 60),
    TEST_ENTRY(close_from_lost_callback),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
