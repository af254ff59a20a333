/* Many processes with stdio at once on one connection, and back-pressure
 * from a reader that stops. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-int.h"
#include "test-api-util.h"

#define NPROCS 100
#define PAYLOAD 8192

typedef struct many_s {
  api_proc_t r;
  char *input;
  char cmd[64];
  const char *argv[4];
  int written;
} many_t;

static void written(void *data, int status, const hcsb_guest_error_t *gerr) {
  many_t *m = data;
  CHECK_EQ(status, 0);
  m->written = 1;
}

static int all(many_t *m, size_t off) {
  int i;
  for (i = 0; i < NPROCS; i++)
    if (!*(int *)((char *)&m[i] + off)) return 0;
  return 1;
}

static void run_many(int unix_transport) {
  many_t *m = calloc(NPROCS, sizeof(*m));
  uv_loop_t loop;
  api_guest_t g;
  int i, done;

  CHECK(m != NULL);
  uv_loop_init(&loop);
  if (unix_transport)
    api_open_unix(&g, &loop, NULL);
  else
    api_open_spawn(&g, &loop, NULL);
  for (i = 0; i < NPROCS; i++) {
    hcsb_process_config_t cfg;
    size_t j;

    /* Distinct bytes per process, so a crossed stream cannot pass. */
    m[i].input = malloc(PAYLOAD + 1);
    CHECK(m[i].input != NULL);
    for (j = 0; j < PAYLOAD; j++)
      m[i].input[j] = (char)('A' + (i + j * 7) % 26);
    m[i].input[PAYLOAD - 1] = '\n';
    m[i].input[PAYLOAD] = '\0';
    snprintf(m[i].cmd, sizeof m[i].cmd, "cat; echo done-%d >&2; exit %d", i,
             i % 50);
    m[i].argv[0] = "/bin/sh";
    m[i].argv[1] = "-c";
    m[i].argv[2] = m[i].cmd;
    memset(&cfg, 0, sizeof(cfg));
    cfg.command_args = m[i].argv;
    cfg.ncommand_args = 3;
    cfg.create_stdin_pipe = cfg.create_stdout_pipe = cfg.create_stderr_pipe = 1;
    CHECK_EQ(hcsb_conn_create_process(g.conn, NULL, &cfg, api_proc_created,
                                      &m[i].r, &m[i].r.p),
             0);
    /* Usable before the create completes: reads and waits start now,
     * writes as soon as stdin is connected. */
    CHECK_EQ(hcsb_process_read_start(m[i].r.p, api_proc_read, &m[i].r), 0);
    CHECK_EQ(hcsb_process_wait(m[i].r.p, 0, api_proc_waited, &m[i].r), 0);
  }
  CHECK_EQ(g.conn->next_port, HCSB_PORT_FIRST_STDIO + 3 * NPROCS);
  for (done = 0; !done;) {
    uv_run(&loop, UV_RUN_ONCE);
    done = 1;
    for (i = 0; i < NPROCS; i++) {
      if (!m[i].r.created) {
        done = 0;
        continue;
      }
      CHECK_EQ(m[i].r.create_status, 0);
      if (!m[i].written && hcsb_process_stdin(m[i].r.p) != NULL &&
          m[i].input != NULL) {
        CHECK_EQ(
            hcsb_process_write(m[i].r.p, m[i].input, PAYLOAD, written, &m[i]),
            0);
        CHECK_EQ(hcsb_process_close_stdin(m[i].r.p), 0);
        free(m[i].input);
        m[i].input = NULL;
      }
      if (!m[i].r.waited || !m[i].r.out_eof || !m[i].r.err_eof) done = 0;
    }
  }
  CHECK(all(m, offsetof(many_t, written)));
  for (i = 0; i < NPROCS; i++) {
    char expect[32];
    size_t j;

    CHECK_EQ(m[i].r.wait_status, 0);
    CHECK_EQ(m[i].r.exit_code, (uint32_t)(i % 50));
    CHECK_EQ(m[i].r.nout, PAYLOAD);
    for (j = 0; j + 1 < PAYLOAD; j++)
      if (m[i].r.out[j] != (char)('A' + (i + j * 7) % 26))
        hcsb_test_fail(__FILE__, __LINE__, "process %d: byte %zu differs", i,
                       j);
    snprintf(expect, sizeof expect, "done-%d\n", i);
    CHECK_STR(m[i].r.err, expect);
    hcsb_process_close(m[i].r.p, api_proc_closed, &m[i].r);
  }
  for (i = 0; i < NPROCS; i++) {
    RUN_UNTIL(&loop, m[i].r.closed);
    api_proc_free(&m[i].r);
  }
  free(m);
  api_close(&g);
}

static void test_hundred_processes_spawn(void) {
  run_many(0);
}

static void test_hundred_processes_unix(void) {
  run_many(1);
}

/* A reader that stops makes the library stop reading from the guest: the
 * process blocks on its pipe instead of the host buffering everything. */
typedef struct bp_s {
  api_proc_t r;
  size_t got;
  int stopped;
} bp_t;

static void bp_read(void *data, hcsb_process_t *p, int fd, const char *buf,
                    ssize_t nread) {
  bp_t *b = data;

  if (nread < 0) {
    b->r.out_eof = 1;
    return;
  }
  b->got += (size_t)nread;
  if (!b->stopped && b->got >= 64 * 1024) {
    b->stopped = 1;
    CHECK_EQ(hcsb_process_read_stop(p), 0);
  }
}

static void nothing(uv_timer_t *t) {
  *(int *)t->data = 1;
}

static void test_back_pressure(void) {
  const char *argv[] = {"/bin/sh", "-c",
                        "head -c 16777216 /dev/zero; echo finished >&2", NULL};
  uv_loop_t loop;
  uv_timer_t t;
  api_guest_t g;
  bp_t b;
  size_t at_stop;
  int fired = 0;

  uv_loop_init(&loop);
  api_open_spawn(&g, &loop, NULL);
  memset(&b, 0, sizeof(b));
  api_uvm_start(&g, &b.r, argv, "o");
  CHECK_EQ(hcsb_process_read_start(b.r.p, bp_read, &b), 0);
  CHECK_EQ(hcsb_process_wait(b.r.p, 0, api_proc_waited, &b.r), 0);
  RUN_UNTIL(&loop, b.stopped);
  at_stop = b.got;
  /* Half a second with the reader stopped: nothing more arrives, and the
   * 16 MiB writer cannot have finished. */
  uv_timer_init(&loop, &t);
  t.data = &fired;
  uv_timer_start(&t, nothing, 500, 0);
  RUN_UNTIL(&loop, fired);
  CHECK_EQ(b.got, at_stop);
  CHECK_EQ(b.r.waited, 0);
  /* Resume: everything arrives, then the exit. */
  CHECK_EQ(hcsb_process_read_start(b.r.p, bp_read, &b), 0);
  RUN_UNTIL(&loop, b.r.out_eof);
  RUN_UNTIL(&loop, b.r.waited);
  CHECK_EQ(b.got, 16777216);
  CHECK_EQ(b.r.wait_status, 0);
  CHECK_EQ(b.r.exit_code, 0);
  uv_close((uv_handle_t *)&t, NULL);
  hcsb_process_close(b.r.p, api_proc_closed, &b.r);
  RUN_UNTIL(&loop, b.r.closed);
  api_close(&g);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY_T(hundred_processes_spawn, 60),
    TEST_ENTRY_T(hundred_processes_unix, 60),
    TEST_ENTRY(back_pressure),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
