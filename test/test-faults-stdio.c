/* Fault matrix: stdio relays abused by the guest.  It never dials (the
 * accept timeout fails the create and the listeners go away), it dials
 * twice (only the first connection is the stream), and it writes a
 * gigabyte to stdout while the host reads slowly (back-pressure all the
 * way: memory stays flat). */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faults.h"

#define EXEC HCSB_MSG_EXECUTE_PROCESS
#define EXEC_RESP HCSB_MSG_EXECUTE_PROCESS_RESPONSE
#define WAIT HCSB_MSG_WAIT_FOR_PROCESS
#define WAIT_RESP HCSB_MSG_WAIT_FOR_PROCESS_RESPONSE

/* The port the host put in VsockStdioRelaySettings for `key`, or 0. */
static uint32_t relay_port(const char *body, const char *key) {
  char pat[32];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = strstr(body, pat);
  return p != NULL ? (uint32_t)strtoul(p + strlen(pat), NULL, 10) : 0;
}

/* Reads ExecuteProcess and returns its ID; *out_port gets StdOut's port. */
static uint64_t expect_exec(fpeer_t *p, uint32_t *out_port) {
  fframe_t f;
  CHECK_EQ(fpeer_read(p, &f), 0);
  CHECK_EQ(f.type, EXEC);
  *out_port = relay_port(f.body, "StdOut");
  uint64_t id = f.id;
  fframe_free(&f);
  return id;
}

static void answer_exec(fpeer_t *p, uint64_t id, uint32_t pid) {
  char body[128];
  snprintf(body, sizeof body, "{\"Result\":0,\"ProcessId\":%u}", (unsigned)pid);
  fpeer_send(p, EXEC_RESP, id, body);
}

static void answer_wait(fpeer_t *p, uint64_t id, uint32_t code) {
  char body[128];
  snprintf(body, sizeof body, "{\"Result\":0,\"ExitCode\":%u}", (unsigned)code);
  fpeer_send(p, WAIT_RESP, id, body);
}

static void sock_path(const fpeer_t *p, uint32_t port, char *out, size_t len) {
  snprintf(out, len, "%s/%u.sock", p->stdio_dir, (unsigned)port);
}

typedef struct proc_s {
  hcsb_process_t *p;
  int created, create_status;
  double created_at;
  int waited, wait_status;
  uint32_t code;
  int closed;
  size_t nread;
  int eof, reads;
  char first[64];
} proc_t;

static void proc_created(void *data, hcsb_process_t *p, int status,
                         const hcsb_guest_error_t *gerr) {
  proc_t *r = data;
  (void)gerr;
  CHECK(!faults_in_api);
  CHECK(p == r->p);
  r->created++;
  r->create_status = status;
  r->created_at = faults_now_ms();
}

static void proc_waited(void *data, hcsb_process_t *p, int status,
                        uint32_t code) {
  proc_t *r = data;
  (void)p;
  CHECK(!faults_in_api);
  r->waited++;
  r->wait_status = status;
  r->code = code;
}

static void proc_start(fconn_t *f, proc_t *r, int want_stdout) {
  hcsb_process_config_t pc;
  static const char *const argv[] = {"/bin/true"};
  memset(&pc, 0, sizeof pc);
  pc.command_args = argv;
  pc.ncommand_args = 1;
  pc.create_stdout_pipe = want_stdout;
  faults_in_api = 1;
  CHECK_EQ(hcsb_conn_create_process(f->conn, NULL, &pc, proc_created, r, &r->p),
           0);
  CHECK_EQ(hcsb_process_wait(r->p, 0, proc_waited, r), 0);
  faults_in_api = 0;
}

static void proc_close(fconn_t *f, proc_t *r) {
  hcsb_process_close(r->p, fclosed_cb, &r->closed);
  RUN_UNTIL(&f->loop, r->closed == 1);
}

/* ------------------------------------------------------------------------ */
/* The guest never dials: the create fails -ETIMEDOUT after the accept
 * timeout, and the listener is gone (socket file removed, dials refused). */

#define ACCEPT_MS 200u

static void script_never_dials(fpeer_t *p) {
  uint32_t port;
  char path[300];
  struct stat st;
  fpeer_negotiate(p);
  uint64_t id = expect_exec(p, &port);
  CHECK_EQ(port, HCSB_PORT_FIRST_STDIO);
  sock_path(p, port, path, sizeof path);
  CHECK_EQ(stat(path, &st), 0); /* listening before the request was sent */
  CHECK(S_ISSOCK(st.st_mode));
  answer_exec(p, id, 77);
  uint64_t wid = fpeer_expect(p, WAIT);
  fpeer_wait_gate(p); /* the create has failed */
  CHECK_EQ(stat(path, &st), -1);
  CHECK_EQ(errno, ENOENT);
  int fd = fpeer_dial(p, port);
  CHECK(fd == -ENOENT || fd == -ECONNREFUSED);
  answer_wait(p, wid, 5);
  fpeer_drain(p);
}

static void test_guest_never_dials(void) {
  fconn_t f;
  proc_t r;
  hcsb_conn_options_t o;
  memset(&r, 0, sizeof r);
  hcsb_conn_options_init(&o);
  o.connect_timeout_ms = faults_ms(10000);
  o.stdio_accept_timeout_ms = ACCEPT_MS;
  fconn_open(&f, script_never_dials, NULL, &o, NULL);
  fconn_wait_open(&f, 0);
  double t0 = faults_now_ms();
  proc_start(&f, &r, 1);
  RUN_UNTIL(&f.loop, r.created == 1);
  CHECK_EQ(r.create_status, -ETIMEDOUT);
  CHECK(r.created_at - t0 >= ACCEPT_MS - 5);
  CHECK(hcsb_process_stdout(r.p) == NULL);
  CHECK_EQ(hcsb_process_read_start(r.p, NULL, NULL), -EINVAL);
  fpeer_open_gate(&f.peer);
  /* The process itself ran: its exit is still reported. */
  RUN_UNTIL(&f.loop, r.waited == 1);
  CHECK_EQ(r.wait_status, 0);
  CHECK_EQ(r.code, 5);
  CHECK_EQ(r.created, 1);
  proc_close(&f, &r);
  fconn_finish(&f);
}

/* ------------------------------------------------------------------------ */
/* The guest dials twice: the first connection is the stream, the second
 * never delivers a byte and is closed by the host; later dials find no
 * listener. */

static void script_dials_twice(fpeer_t *p) {
  uint32_t port;
  char buf[64];
  fpeer_negotiate(p);
  uint64_t id = expect_exec(p, &port);
  int a = fpeer_dial(p, port);
  int b = fpeer_dial(p, port);
  CHECK(a >= 0);
  CHECK(b >= 0 || b == -ECONNREFUSED || b == -ENOENT);
  CHECK_EQ(write(a, "first\n", 6), 6);
  if (b >= 0) (void)!write(b, "second\n", 7); /* may fail: it is refused */
  answer_exec(p, id, 12);
  uint64_t wid = fpeer_expect(p, WAIT);
  if (b >= 0) {
    /* Closed by the host (or reset with the listener): never a reader. */
    struct pollfd pfd = {b, POLLIN, 0};
    CHECK_EQ(poll(&pfd, 1, (int)faults_ms(5000)), 1);
    CHECK(read(b, buf, sizeof buf) <= 0);
    close(b);
  }
  int c = fpeer_dial(p, port);
  CHECK(c == -ENOENT || c == -ECONNREFUSED);
  close(a); /* EOF on stdout; then the exit */
  fpeer_wait_gate(p);
  answer_wait(p, wid, 0);
  fpeer_drain(p);
}

static void collect(void *data, hcsb_process_t *p, int fd, const char *buf,
                    ssize_t nread) {
  proc_t *r = data;
  (void)p;
  CHECK(!faults_in_api);
  CHECK_EQ(fd, 1);
  CHECK(!r->eof);
  r->reads++;
  if (nread < 0) {
    CHECK_EQ(nread, UV_EOF);
    r->eof = 1;
    return;
  }
  if (r->nread + (size_t)nread < sizeof r->first)
    memcpy(r->first + r->nread, buf, (size_t)nread);
  r->nread += (size_t)nread;
}

static void test_guest_dials_twice(void) {
  fconn_t f;
  proc_t r;
  memset(&r, 0, sizeof r);
  fconn_open(&f, script_dials_twice, NULL, NULL, NULL);
  fconn_wait_open(&f, 0);
  proc_start(&f, &r, 1);
  RUN_UNTIL(&f.loop, r.created == 1);
  CHECK_EQ(r.create_status, 0);
  CHECK_EQ(hcsb_process_pid(r.p), 12);
  CHECK_EQ(hcsb_process_read_start(r.p, collect, &r), 0);
  RUN_UNTIL(&f.loop, r.eof == 1);
  CHECK_EQ(r.nread, 6);
  CHECK_STR(r.first, "first\n");
  fpeer_open_gate(&f.peer);
  RUN_UNTIL(&f.loop, r.waited == 1);
  CHECK_EQ(r.wait_status, 0);
  CHECK_EQ(r.code, 0);
  proc_close(&f, &r);
  fconn_finish(&f);
}

/* ------------------------------------------------------------------------ */
/* A gigabyte on stdout, read slowly: the host stops reading for a while
 * every so often; the guest's writes then block (it can only be ahead by
 * what the sockets buffer), the heap does not grow, and every byte
 * arrives in order. */

#define BLOCK 65536u
static uint8_t pattern[BLOCK];
static atomic_size_t guest_written;

static size_t flood_total(void) {
  return faults_pick((size_t)1 << 30, (size_t)64 << 20);
}

static size_t flood_pause_every(void) {
  return faults_pick((size_t)32 << 20, (size_t)8 << 20);
}

static void script_flood(fpeer_t *p) {
  uint32_t port;
  fpeer_negotiate(p);
  uint64_t id = expect_exec(p, &port);
  int fd = fpeer_dial(p, port);
  CHECK(fd >= 0);
  answer_exec(p, id, 99);
  uint64_t wid = fpeer_expect(p, WAIT);
  size_t total = flood_total();
  for (size_t off = 0; off < total; off += BLOCK) {
    size_t done = 0;
    while (done < BLOCK) {
      ssize_t n = write(fd, pattern + done, BLOCK - done);
      CHECK(n > 0);
      done += (size_t)n;
      atomic_fetch_add(&guest_written, (size_t)n);
    }
  }
  close(fd);
  answer_wait(p, wid, 0);
  fpeer_drain(p);
}

typedef struct flood_s {
  proc_t r;
  fconn_t *f;
  uv_timer_t resume;
  size_t next_pause;
  int pauses;
  size_t heap0, heap_peak;
  size_t max_ahead;
  int bad_byte;
} flood_t;

static void flood_read(void *data, hcsb_process_t *p, int fd, const char *buf,
                       ssize_t nread);

static void flood_sample(flood_t *fl) {
  size_t h = faults_heap_bytes();
  if (h > fl->heap_peak) fl->heap_peak = h;
}

static void flood_resume(uv_timer_t *t) {
  flood_t *fl = t->data;
  /* While we slept the guest could only fill the socket buffers. */
  size_t ahead = atomic_load(&guest_written) - fl->r.nread;
  if (ahead > fl->max_ahead) fl->max_ahead = ahead;
  flood_sample(fl);
  CHECK_EQ(hcsb_process_read_start(fl->r.p, flood_read, fl), 0);
}

static void flood_read(void *data, hcsb_process_t *p, int fd, const char *buf,
                       ssize_t nread) {
  flood_t *fl = data;
  (void)fd;
  if (nread < 0) {
    CHECK_EQ(nread, UV_EOF);
    fl->r.eof = 1;
    return;
  }
  /* Byte i of the stream is pattern[i % BLOCK]. */
  size_t at = fl->r.nread % BLOCK, n = (size_t)nread, done = 0;
  while (done < n) {
    size_t k = BLOCK - at < n - done ? BLOCK - at : n - done;
    if (memcmp(buf + done, pattern + at, k) != 0) fl->bad_byte = 1;
    done += k;
    at = 0;
  }
  fl->r.nread += n;
  fl->r.reads++;
  if (fl->r.nread >= fl->next_pause) {
    fl->next_pause += flood_pause_every();
    fl->pauses++;
    flood_sample(fl);
    CHECK_EQ(hcsb_process_read_stop(p), 0);
    uv_timer_start(&fl->resume, flood_resume, 20, 0);
  }
}

static void test_gigabyte_stdout_slow_reader(void) {
  fconn_t f;
  flood_t fl;
  for (size_t i = 0; i < BLOCK; i++) pattern[i] = (uint8_t)(i % 251);
  memset(&fl, 0, sizeof fl);
  fl.f = &f;
  fconn_open(&f, script_flood, NULL, NULL, NULL);
  fconn_wait_open(&f, 0);
  uv_timer_init(&f.loop, &fl.resume);
  fl.resume.data = &fl;
  proc_start(&f, &fl.r, 1);
  RUN_UNTIL(&f.loop, fl.r.created == 1);
  CHECK_EQ(fl.r.create_status, 0);
  fl.heap0 = fl.heap_peak = faults_heap_bytes();
  fl.next_pause = flood_pause_every();
  double t0 = faults_now_ms();
  CHECK_EQ(hcsb_process_read_start(fl.r.p, flood_read, &fl), 0);
  RUN_UNTIL_MS(&f.loop, fl.r.eof == 1, 60000);
  double dt = faults_now_ms() - t0;
  RUN_UNTIL(&f.loop, fl.r.waited == 1);
  CHECK_EQ(fl.r.wait_status, 0);
  CHECK_EQ(fl.bad_byte, 0);
  CHECK_EQ(fl.r.nread, flood_total());
  size_t growth = fl.heap_peak - fl.heap0;
  fprintf(stderr,
          "  %zu MiB in %.0f ms, %d pauses, guest at most %zu KiB ahead, "
          "heap growth %zu bytes\n",
          fl.r.nread >> 20, dt, fl.pauses, fl.max_ahead >> 10, growth);
  CHECK(fl.pauses >= (int)(flood_total() / flood_pause_every()) - 1);
  CHECK(fl.max_ahead < (size_t)8 << 20);
  CHECK(growth < (size_t)2 << 20);
  uv_close((uv_handle_t *)&fl.resume, NULL);
  proc_close(&f, &fl.r);
  fconn_finish(&f);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(guest_never_dials),
    TEST_ENTRY(guest_dials_twice),
    TEST_ENTRY_T(gigabyte_stdout_slow_reader, 120),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
