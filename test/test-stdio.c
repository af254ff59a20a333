/* Stdio relays and bring-up listeners, against a fake guest that dials the
 * library's Unix-socket listeners (<tmp>/<port>.sock, or <path>_<port> for
 * hybrid vsock) with plain non-blocking sockets, pumped between loop turns.
 */
#include <errno.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/sockios.h>
#include <uv.h>

#include "api/stdio.h"
#include "runner.h"

#define P_IN 0x40000001u
#define P_OUT 0x40000002u
#define P_ERR 0x40000003u

/* ------------------------------------------------------------------------ */
/* Loop fixture */

static uv_loop_t loop;
static uv_timer_t tick;
static hcsb_addr_t addr;

static void on_tick(uv_timer_t *t) {
  (void)t;
}

static void setup(hcsb_transport_t transport) {
  CHECK_EQ(uv_loop_init(&loop), 0);
  CHECK_EQ(uv_timer_init(&loop, &tick), 0);
  memset(&addr, 0, sizeof addr);
  addr.transport = transport;
  addr.listen = 1;
  if (transport == HCSB_TRANSPORT_HVSOCK_HYBRID)
    snprintf(addr.path, sizeof addr.path, "%s/vm.sock", hcsb_test_tmpdir());
  else
    snprintf(addr.stdio_dir, sizeof addr.stdio_dir, "%s", hcsb_test_tmpdir());
}

/* Every handle the library opened must be closed by now. */
static void teardown(void) {
  uv_close((uv_handle_t *)&tick, NULL);
  CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  CHECK_EQ(uv_loop_close(&loop), 0);
}

static uint64_t now_ms(void) {
  return uv_hrtime() / 1000000u;
}

/* One loop iteration, at most ~5 ms long.  The tick repeats: started from
 * a stale loop time, a one-shot tick can already be due when the turn runs
 * its timers, and the poll after it would then wait for I/O forever (seen
 * under valgrind on a loaded machine). */
static void turn(void) {
  uv_timer_start(&tick, on_tick, 5, 5);
  uv_run(&loop, UV_RUN_ONCE);
}

static void turns(int n) {
  while (n-- > 0) turn();
}

#define RUN_UNTIL(cond)                                                        \
  do {                                                                         \
    uint64_t dl_ = now_ms() + 3000u * hcsb_test_timeout_scale();               \
    while (!(cond)) {                                                          \
      if (now_ms() > dl_)                                                      \
        hcsb_test_fail(__FILE__, __LINE__, "timed out waiting for %s", #cond); \
      turn();                                                                  \
    }                                                                          \
  } while (0)

static const char *port_path(uint32_t port) {
  static char buf[4][300];
  static int next;
  char *p = buf[next++ & 3];
  if (addr.transport == HCSB_TRANSPORT_HVSOCK_HYBRID)
    snprintf(p, 300, "%s_%u", addr.path, port);
  else
    snprintf(p, 300, "%s/%u.sock", addr.stdio_dir, port);
  return p;
}

static int path_exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

/* The byte at offset i of a long stream: not periodic at any power of two,
 * so a lost, repeated or reordered chunk shows. */
static unsigned char pattern(uint64_t i) {
  return (unsigned char)(i * 7u + i / 251u);
}

/* ------------------------------------------------------------------------ */
/* Fake guest: one dialed connection */

typedef struct peer_s {
  int fd;
  char *rx; /* received bytes, when storing */
  size_t len;
  size_t cap;
  int store; /* 1: keep bytes in rx; 0: check them against pattern() */
  uint64_t mismatches;
  int eof;
  int err;     /* errno of a failed read */
  uint64_t tx; /* pattern bytes written */
} peer_t;

static int peer_dial(peer_t *p, const char *path) {
  struct sockaddr_un sa;
  memset(p, 0, sizeof *p);
  p->store = 1;
  /* Non-blocking from the start: a full backlog fails (EAGAIN) instead of
   * hanging the test. */
  p->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  CHECK(p->fd >= 0);
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  CHECK(strlen(path) < sizeof sa.sun_path);
  strcpy(sa.sun_path, path);
  if (connect(p->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int e = errno;
    close(p->fd);
    p->fd = -1;
    return -e;
  }
  return 0;
}

/* Reads what is there; returns 1 once the stream ended (EOF or error). */
static int peer_pump(peer_t *p) {
  char buf[65536];
  while (!p->eof && !p->err) {
    ssize_t n = read(p->fd, buf, sizeof buf);
    if (n > 0) {
      if (p->store) {
        if (p->len + (size_t)n > p->cap) {
          p->cap = (p->len + (size_t)n) * 2;
          p->rx = realloc(p->rx, p->cap);
          CHECK(p->rx != NULL);
        }
        memcpy(p->rx + p->len, buf, (size_t)n);
      } else {
        for (ssize_t i = 0; i < n; i++)
          if ((unsigned char)buf[i] != pattern(p->len + (size_t)i))
            p->mismatches++;
      }
      p->len += (size_t)n;
    } else if (n == 0) {
      p->eof = 1;
    } else if (errno == EAGAIN) {
      break;
    } else if (errno != EINTR) {
      p->err = errno;
    }
  }
  return p->eof || p->err;
}

static void peer_send(peer_t *p, const char *s, size_t n) {
  CHECK_EQ(write(p->fd, s, n), (ssize_t)n);
}

static void peer_puts(peer_t *p, const char *s) {
  peer_send(p, s, strlen(s));
}

/* Writes pattern bytes up to `limit` (total) until the socket is full.
 * Returns 1 when it stopped on a full socket. */
static int peer_fill(peer_t *p, uint64_t limit) {
  char buf[16384];
  while (p->tx < limit) {
    size_t n = sizeof buf;
    ssize_t w;
    if (n > limit - p->tx) n = (size_t)(limit - p->tx);
    for (size_t i = 0; i < n; i++) buf[i] = (char)pattern(p->tx + i);
    w = write(p->fd, buf, n);
    if (w < 0) {
      CHECK_EQ(errno, EAGAIN);
      return 1;
    }
    p->tx += (uint64_t)w;
  }
  return 0;
}

/* Bytes written by the peer and not yet read by the library. */
static int peer_unread(peer_t *p) {
  int n = 0;
  CHECK_EQ(ioctl(p->fd, SIOCOUTQ, &n), 0);
  return n;
}

static void peer_close(peer_t *p) {
  if (p->fd >= 0) close(p->fd);
  p->fd = -1;
  free(p->rx);
  p->rx = NULL;
}

/* ------------------------------------------------------------------------ */
/* Library side: what the callbacks saw */

typedef struct seen_s {
  hcsb__stdio_t *s;
  int ready_calls;
  int ready_status;
  int close_in_ready;
  /* reads, per fd */
  char out[2][256];
  uint64_t got[2];
  uint64_t mismatches;
  int check_pattern; /* compare stdout bytes against pattern() */
  int eofs[2];
  ssize_t end_status[2];
  int read_calls;
  int close_in_read;
  uint64_t stop_at; /* read_stop once stdout passed this many bytes */
  int stopped;
  /* writes */
  int write_calls;
  int write_ok;
  int write_canceled;
  int write_other;
} seen_t;

static void on_ready(void *data, int status) {
  seen_t *v = data;
  v->ready_calls++;
  v->ready_status = status;
  if (v->close_in_ready) hcsb__stdio_close(v->s);
}

static void on_read(void *data, int fd, const char *buf, ssize_t nread) {
  seen_t *v = data;
  int i = fd - 1;
  CHECK(fd == 1 || fd == 2);
  v->read_calls++;
  CHECK_EQ(v->eofs[i], 0); /* nothing after the end */
  if (nread < 0) {
    v->eofs[i]++;
    v->end_status[i] = nread;
    CHECK(buf == NULL);
    CHECK(hcsb__stdio_stream(v->s, fd) == NULL); /* closed before we hear */
  } else if (v->check_pattern && fd == 1) {
    for (ssize_t k = 0; k < nread; k++)
      if ((unsigned char)buf[k] != pattern(v->got[i] + (uint64_t)k))
        v->mismatches++;
    v->got[i] += (uint64_t)nread;
  } else {
    CHECK(v->got[i] + (uint64_t)nread < sizeof v->out[i]);
    memcpy(v->out[i] + v->got[i], buf, (size_t)nread);
    v->got[i] += (uint64_t)nread;
  }
  if (v->stop_at && !v->stopped && v->got[0] >= v->stop_at) {
    v->stopped = 1;
    CHECK_EQ(hcsb__stdio_read_stop(v->s), 0);
  }
  if (v->close_in_read) hcsb__stdio_close(v->s);
}

static void on_write(void *data, int status, const hcsb_guest_error_t *gerr) {
  seen_t *v = data;
  CHECK(gerr == NULL);
  v->write_calls++;
  if (status == 0)
    v->write_ok++;
  else if (status == -ECANCELED)
    v->write_canceled++;
  else
    v->write_other++;
}

static hcsb__stdio_t *open_stdio(seen_t *v, uint32_t in, uint32_t out,
                                 uint32_t err, uint32_t timeout_ms) {
  uint32_t ports[3] = {in, out, err};
  memset(v, 0, sizeof *v);
  v->ready_status = 1;
  CHECK_EQ(hcsb__stdio_open(&loop, &addr, ports, timeout_ms, NULL, on_ready, v,
                            &v->s),
           0);
  return v->s;
}

/* ------------------------------------------------------------------------ */
/* Stdin */

static void test_stdin_bytes_and_half_close(void) {
  seen_t v;
  peer_t g;
  setup(HCSB_TRANSPORT_UNIX);
  hcsb__stdio_t *s = open_stdio(&v, P_IN, 0, 0, 5000);
  /* Bound before open returned: ExecuteProcess may follow at once. */
  CHECK(path_exists(port_path(P_IN)));
  CHECK(hcsb__stdio_stream(s, 0) == NULL);
  CHECK_EQ(hcsb__stdio_write(s, "x", 1, NULL, NULL), -EPIPE);

  CHECK_EQ(peer_dial(&g, port_path(P_IN)), 0);
  RUN_UNTIL(v.ready_calls > 0);
  CHECK_EQ(v.ready_calls, 1);
  CHECK_EQ(v.ready_status, 0);
  CHECK(hcsb__stdio_stream(s, 0) != NULL);
  CHECK(hcsb__stdio_stream(s, 1) == NULL);
  CHECK(hcsb__stdio_stream(s, 2) == NULL);
  CHECK(!path_exists(port_path(P_IN))); /* one accept, then no listener */

  CHECK_EQ(hcsb__stdio_write(s, "hello ", 6, on_write, &v), 0);
  CHECK_EQ(hcsb__stdio_write(s, "world", 5, on_write, &v), 0);
  CHECK_EQ(hcsb__stdio_write(s, "", 0, NULL, NULL), 0);
  CHECK_EQ(v.write_calls, 0); /* never inside the call */
  CHECK_EQ(hcsb__stdio_close_fd(s, 0), 0);
  CHECK_EQ(hcsb__stdio_close_fd(s, 0), 0); /* idempotent */
  CHECK_EQ(hcsb__stdio_write(s, "late", 4, on_write, &v), -EPIPE);

  RUN_UNTIL(peer_pump(&g));
  CHECK_EQ(g.eof, 1); /* the half-close arrives as EOF, after the bytes */
  CHECK_EQ(g.len, 11);
  CHECK_MEM(g.rx, "hello world", 11);
  RUN_UNTIL(v.write_calls == 2);
  CHECK_EQ(v.write_ok, 2);
  /* A half-close only: the stream stays for raw users until close. */
  CHECK(hcsb__stdio_stream(s, 0) != NULL);
  CHECK_EQ(hcsb__stdio_close_fd(s, 0), 0);

  hcsb__stdio_close(s);
  CHECK_EQ(v.write_calls, 2);
  peer_close(&g);
  teardown();
}

static void test_stdin_close_before_accept(void) {
  seen_t v;
  peer_t g;
  setup(HCSB_TRANSPORT_UNIX);
  hcsb__stdio_t *s = open_stdio(&v, P_IN, 0, 0, 5000);
  /* Independent of the relay's state (hcsshim PR #1296). */
  CHECK_EQ(hcsb__stdio_close_fd(s, 0), 0);
  CHECK_EQ(peer_dial(&g, port_path(P_IN)), 0);
  RUN_UNTIL(v.ready_calls > 0);
  CHECK_EQ(v.ready_status, 0);
  CHECK_EQ(hcsb__stdio_write(s, "x", 1, NULL, NULL), -EPIPE);
  RUN_UNTIL(peer_pump(&g));
  CHECK_EQ(g.eof, 1);
  CHECK_EQ(g.len, 0);
  /* The guest can still write on its side: only our sending side ended. */
  peer_puts(&g, "ok");
  hcsb__stdio_close(s);
  peer_close(&g);
  teardown();
}

static void test_stdin_queue_bounded(void) {
  enum { CHUNK = 1024 * 1024, CAP_CHUNKS = 8 };
  seen_t v;
  peer_t g;
  char *chunk = malloc(CHUNK);
  CHECK(chunk != NULL);
  setup(HCSB_TRANSPORT_UNIX);
  hcsb__stdio_t *s = open_stdio(&v, P_IN, 0, 0, 5000);
  CHECK_EQ(peer_dial(&g, port_path(P_IN)), 0);
  g.store = 0;
  RUN_UNTIL(v.ready_calls > 0);

  /* The guest reads nothing; without a loop turn no write completes. */
  for (int i = 0; i < CAP_CHUNKS; i++) {
    for (size_t k = 0; k < CHUNK; k++)
      chunk[k] = (char)pattern((uint64_t)i * CHUNK + k);
    CHECK_EQ(hcsb__stdio_write(s, chunk, CHUNK, on_write, &v), 0);
  }
  CHECK_EQ(hcsb__stdio_write(s, chunk, CHUNK, on_write, &v), -ENOBUFS);
  CHECK_EQ(hcsb__stdio_write(s, "x", 1, on_write, &v), -ENOBUFS);

  /* The guest drains: everything arrives, in order, and room comes back. */
  RUN_UNTIL((peer_pump(&g), v.write_calls == CAP_CHUNKS));
  CHECK_EQ(v.write_ok, CAP_CHUNKS);
  RUN_UNTIL((peer_pump(&g), g.len == (uint64_t)CAP_CHUNKS * CHUNK));
  CHECK_EQ(g.mismatches, 0);

  /* Fill again, then close with writes still queued: each callback runs
   * once, from the loop, cancelled unless it had gone out already. */
  for (int i = 0; i < CAP_CHUNKS; i++)
    CHECK_EQ(hcsb__stdio_write(s, chunk, CHUNK, on_write, &v), 0);
  hcsb__stdio_close(s);
  CHECK_EQ(v.write_calls, CAP_CHUNKS);
  peer_close(&g);
  teardown();
  CHECK_EQ(v.write_calls, 2 * CAP_CHUNKS);
  CHECK(v.write_canceled >= 1);
  CHECK_EQ(v.write_ok + v.write_canceled, 2 * CAP_CHUNKS);
  free(chunk);
}

/* ------------------------------------------------------------------------ */
/* Stdout / stderr */

static void test_stdout_stderr_eof_then_closed(void) {
  seen_t v;
  peer_t out, err;
  setup(HCSB_TRANSPORT_UNIX);
  hcsb__stdio_t *s = open_stdio(&v, 0, P_OUT, P_ERR, 5000);
  CHECK(path_exists(port_path(P_OUT)));
  CHECK(path_exists(port_path(P_ERR)));
  /* Reading may start before the streams exist. */
  CHECK_EQ(hcsb__stdio_read_start(s, on_read, &v), 0);
  CHECK_EQ(peer_dial(&out, port_path(P_OUT)), 0);
  turns(3);
  CHECK_EQ(v.ready_calls, 0); /* stderr still missing */
  CHECK_EQ(peer_dial(&err, port_path(P_ERR)), 0);
  RUN_UNTIL(v.ready_calls > 0);
  CHECK_EQ(v.ready_status, 0);
  CHECK(hcsb__stdio_stream(s, 0) == NULL);
  CHECK_EQ(hcsb__stdio_write(s, "x", 1, NULL, NULL), -EPIPE);

  peer_puts(&out, "line one\n");
  peer_puts(&err, "oops\n");
  RUN_UNTIL(v.got[0] == 9 && v.got[1] == 5);
  peer_puts(&out, "line two\n");
  CHECK_EQ(shutdown(out.fd, SHUT_WR), 0);
  CHECK_EQ(shutdown(err.fd, SHUT_WR), 0);
  RUN_UNTIL(v.eofs[0] && v.eofs[1]);
  CHECK_EQ(v.end_status[0], UV_EOF);
  CHECK_EQ(v.end_status[1], UV_EOF);
  CHECK_EQ(v.got[0], 18);
  CHECK_MEM(v.out[0], "line one\nline two\n", 18);
  CHECK_EQ(v.got[1], 5);
  CHECK_MEM(v.out[1], "oops\n", 5);

  /* The guest waits for our close before it reports the exit
   * (protocol.md §9.5). */
  RUN_UNTIL(peer_pump(&out) && peer_pump(&err));
  CHECK_EQ(out.eof, 1);
  CHECK_EQ(err.eof, 1);
  CHECK_EQ(out.len + err.len, 0);
  CHECK_EQ(hcsb__stdio_close_fd(s, 1), 0);
  CHECK_EQ(hcsb__stdio_close_fd(s, 2), 0);
  turns(3);
  CHECK_EQ(v.eofs[0] + v.eofs[1], 2); /* once each */

  hcsb__stdio_close(s);
  peer_close(&out);
  peer_close(&err);
  teardown();
}

static void test_stdout_close_fd(void) {
  seen_t v;
  peer_t out;
  setup(HCSB_TRANSPORT_UNIX);
  hcsb__stdio_t *s = open_stdio(&v, 0, P_OUT, 0, 5000);
  CHECK_EQ(peer_dial(&out, port_path(P_OUT)), 0);
  RUN_UNTIL(v.ready_calls > 0);
  CHECK_EQ(hcsb__stdio_read_start(s, on_read, &v), 0);
  CHECK(hcsb__stdio_stream(s, 1) != NULL);
  CHECK_EQ(hcsb__stdio_close_fd(s, 1), 0);
  CHECK(hcsb__stdio_stream(s, 1) == NULL);
  CHECK_EQ(hcsb__stdio_close_fd(s, 1), 0);
  CHECK_EQ(hcsb__stdio_close_fd(s, 3), -EINVAL);
  RUN_UNTIL(peer_pump(&out));
  CHECK_EQ(out.eof, 1);
  /* Closed by the caller: no end is reported to the reader. */
  CHECK_EQ(v.read_calls, 0);
  hcsb__stdio_close(s);
  peer_close(&out);
  teardown();
}

static void test_stdout_backpressure(void) {
  const uint64_t total = 4u * 1024u * 1024u;
  seen_t v;
  peer_t out;
  uint64_t filled, got_when_stopped;
  setup(HCSB_TRANSPORT_UNIX);
  hcsb__stdio_t *s = open_stdio(&v, 0, P_OUT, 0, 5000);
  v.check_pattern = 1;
  CHECK_EQ(peer_dial(&out, port_path(P_OUT)), 0);
  RUN_UNTIL(v.ready_calls > 0);

  /* Not reading: the guest fills the socket and nobody drains it. */
  CHECK_EQ(peer_fill(&out, total), 1);
  filled = out.tx;
  CHECK(filled > 0 && filled < total);
  turns(20);
  CHECK_EQ(peer_fill(&out, total), 1);
  CHECK_EQ(out.tx, filled); /* still full: the library read nothing */
  CHECK_EQ(v.read_calls, 0);

  /* Read until 1 MiB, stop from inside the callback, check it holds, then
   * read the rest: every byte, in order. */
  v.stop_at = 1024 * 1024;
  CHECK_EQ(hcsb__stdio_read_start(s, on_read, &v), 0);
  RUN_UNTIL((peer_fill(&out, total), v.stopped));
  got_when_stopped = v.got[0];
  turns(10);
  peer_fill(&out, total);
  turns(10);
  CHECK_EQ(v.got[0], got_when_stopped);
  CHECK(out.tx < total);
  CHECK_EQ(hcsb__stdio_read_start(s, on_read, &v), 0);
  RUN_UNTIL(peer_fill(&out, total) == 0);
  CHECK_EQ(shutdown(out.fd, SHUT_WR), 0);
  RUN_UNTIL(v.eofs[0]);
  CHECK_EQ(v.got[0], total);
  CHECK_EQ(v.mismatches, 0);
  CHECK_EQ(v.end_status[0], UV_EOF);

  hcsb__stdio_close(s);
  peer_close(&out);
  teardown();
}

/* ------------------------------------------------------------------------ */
/* Accepting */

static void test_accept_timeout_closes_listeners(void) {
  seen_t v;
  peer_t in, late;
  uint64_t t0;
  setup(HCSB_TRANSPORT_UNIX);
  uv_update_time(&loop); /* timeouts count from the loop's cached time */
  t0 = now_ms();
  hcsb__stdio_t *s = open_stdio(&v, P_IN, P_OUT, 0, 100);
  CHECK_EQ(peer_dial(&in, port_path(P_IN)), 0);
  RUN_UNTIL(v.ready_calls > 0);
  CHECK_EQ(v.ready_status, -ETIMEDOUT);
  CHECK(now_ms() - t0 >= 90);
  CHECK(!path_exists(port_path(P_OUT)));
  CHECK(!path_exists(port_path(P_IN)));
  CHECK_EQ(peer_dial(&late, port_path(P_OUT)), -ENOENT);
  /* What did connect stays usable until the caller closes. */
  CHECK(hcsb__stdio_stream(s, 0) != NULL);
  turns(5);
  CHECK_EQ(v.ready_calls, 1);
  hcsb__stdio_close(s);
  RUN_UNTIL(peer_pump(&in));
  CHECK_EQ(in.eof, 1);
  peer_close(&in);
  teardown();
}

static void test_second_dial_refused(void) {
  seen_t v;
  peer_t first, second, third;
  setup(HCSB_TRANSPORT_UNIX);
  hcsb__stdio_t *s = open_stdio(&v, 0, P_OUT, 0, 5000);
  /* Both dials are queued before the library accepts anything. */
  CHECK_EQ(peer_dial(&first, port_path(P_OUT)), 0);
  CHECK_EQ(peer_dial(&second, port_path(P_OUT)), 0);
  RUN_UNTIL(v.ready_calls > 0);
  CHECK_EQ(v.ready_status, 0);
  CHECK_EQ(hcsb__stdio_read_start(s, on_read, &v), 0);

  RUN_UNTIL(peer_pump(&second));
  CHECK_EQ(second.len, 0);
  CHECK(second.eof || second.err == ECONNRESET);
  CHECK_EQ(peer_dial(&third, port_path(P_OUT)), -ENOENT);

  peer_puts(&first, "from the first");
  CHECK_EQ(shutdown(first.fd, SHUT_WR), 0);
  RUN_UNTIL(v.eofs[0]);
  CHECK_EQ(v.got[0], 14);
  CHECK_MEM(v.out[0], "from the first", 14);
  CHECK_EQ(v.ready_calls, 1);

  hcsb__stdio_close(s);
  peer_close(&first);
  peer_close(&second);
  teardown();
}

static void test_close_inside_read_cb(void) {
  seen_t v;
  peer_t out, err;
  setup(HCSB_TRANSPORT_UNIX);
  hcsb__stdio_t *s = open_stdio(&v, 0, P_OUT, P_ERR, 5000);
  CHECK_EQ(peer_dial(&out, port_path(P_OUT)), 0);
  CHECK_EQ(peer_dial(&err, port_path(P_ERR)), 0);
  RUN_UNTIL(v.ready_calls > 0);
  /* Both streams readable in the same loop turn. */
  peer_puts(&out, "a");
  peer_puts(&err, "b");
  CHECK_EQ(shutdown(out.fd, SHUT_WR), 0);
  CHECK_EQ(shutdown(err.fd, SHUT_WR), 0);
  v.close_in_read = 1;
  CHECK_EQ(hcsb__stdio_read_start(s, on_read, &v), 0);
  RUN_UNTIL(v.read_calls > 0);
  RUN_UNTIL(peer_pump(&out) && peer_pump(&err));
  turns(5);
  CHECK_EQ(v.read_calls, 1); /* nothing after close */
  peer_close(&out);
  peer_close(&err);
  teardown();
}

static void test_close_inside_ready_cb(void) {
  seen_t v;
  peer_t in, out;
  setup(HCSB_TRANSPORT_UNIX);
  open_stdio(&v, P_IN, P_OUT, 0, 5000);
  v.close_in_ready = 1;
  CHECK_EQ(peer_dial(&in, port_path(P_IN)), 0);
  CHECK_EQ(peer_dial(&out, port_path(P_OUT)), 0);
  RUN_UNTIL(v.ready_calls > 0);
  CHECK_EQ(v.ready_status, 0);
  RUN_UNTIL(peer_pump(&in) && peer_pump(&out));
  CHECK_EQ(in.eof, 1);
  CHECK_EQ(out.eof, 1);
  CHECK_EQ(v.ready_calls, 1);
  peer_close(&in);
  peer_close(&out);
  teardown();
}

/* Three listeners time out in the same turn; the first callback closes. */
static void test_close_inside_failed_ready_cb(void) {
  seen_t v;
  setup(HCSB_TRANSPORT_UNIX);
  open_stdio(&v, P_IN, P_OUT, P_ERR, 30);
  v.close_in_ready = 1;
  RUN_UNTIL(v.ready_calls > 0);
  CHECK_EQ(v.ready_status, -ETIMEDOUT);
  turns(10);
  CHECK_EQ(v.ready_calls, 1);
  CHECK(!path_exists(port_path(P_IN)));
  CHECK(!path_exists(port_path(P_OUT)));
  CHECK(!path_exists(port_path(P_ERR)));
  teardown();
}

static void test_no_ports_ready_next_turn(void) {
  seen_t v, w;
  setup(HCSB_TRANSPORT_UNIX);
  hcsb__stdio_t *s = open_stdio(&v, 0, 0, 0, 5000);
  CHECK_EQ(v.ready_calls, 0);
  turn();
  CHECK_EQ(v.ready_calls, 1);
  CHECK_EQ(v.ready_status, 0);
  CHECK_EQ(hcsb__stdio_write(s, "x", 1, NULL, NULL), -EPIPE);
  CHECK_EQ(hcsb__stdio_close_fd(s, 0), 0);
  CHECK_EQ(hcsb__stdio_close_fd(s, 1), 0);
  hcsb__stdio_close(s);
  /* Closed before its turn: the callback never runs. */
  s = open_stdio(&w, 0, 0, 0, 0);
  hcsb__stdio_close(s);
  turns(3);
  CHECK_EQ(w.ready_calls, 0);
  teardown();
}

static void test_open_errors_leave_nothing(void) {
  uint32_t dup[3] = {P_IN, P_OUT, P_IN};
  uint32_t ports[3] = {P_IN, P_OUT, 0};
  hcsb__stdio_t *s = NULL;
  seen_t v;
  setup(HCSB_TRANSPORT_UNIX);
  CHECK_EQ(hcsb__stdio_open(&loop, &addr, dup, 0, NULL, on_ready, &v, &s),
           -EINVAL);
  CHECK(!path_exists(port_path(P_IN)));
  CHECK_EQ(hcsb__stdio_open(&loop, NULL, ports, 0, NULL, on_ready, &v, &s),
           -EINVAL);
  /* stdout's path is taken by a directory: stdin's listener, already
   * open, must be gone again. */
  CHECK_EQ(mkdir(port_path(P_OUT), 0700), 0);
  CHECK(hcsb__stdio_open(&loop, &addr, ports, 0, NULL, on_ready, &v, &s) < 0);
  CHECK(s == NULL);
  CHECK(!path_exists(port_path(P_IN)));
  CHECK_EQ(rmdir(port_path(P_OUT)), 0);
  teardown();
}

static void test_hybrid_vsock_paths(void) {
  seen_t v;
  peer_t in, out;
  setup(HCSB_TRANSPORT_HVSOCK_HYBRID);
  hcsb__stdio_t *s = open_stdio(&v, P_IN, P_OUT, 0, 5000);
  CHECK(strstr(port_path(P_IN), "/vm.sock_1073741825") != NULL);
  CHECK(path_exists(port_path(P_IN)));
  CHECK(path_exists(port_path(P_OUT)));
  CHECK_EQ(peer_dial(&in, port_path(P_IN)), 0);
  CHECK_EQ(peer_dial(&out, port_path(P_OUT)), 0);
  RUN_UNTIL(v.ready_calls > 0);
  CHECK_EQ(v.ready_status, 0);
  CHECK_EQ(hcsb__stdio_read_start(s, on_read, &v), 0);
  CHECK_EQ(hcsb__stdio_write(s, "ping", 4, on_write, &v), 0);
  RUN_UNTIL((peer_pump(&in), in.len == 4));
  CHECK_MEM(in.rx, "ping", 4);
  peer_puts(&out, "pong");
  CHECK_EQ(shutdown(out.fd, SHUT_WR), 0);
  RUN_UNTIL(v.eofs[0]);
  CHECK_EQ(v.got[0], 4);
  CHECK_MEM(v.out[0], "pong", 4);
  CHECK_EQ(v.write_ok, 1);
  hcsb__stdio_close(s);
  peer_close(&in);
  peer_close(&out);
  teardown();
}

/* ------------------------------------------------------------------------ */
/* Bring-up: entropy */

static void test_entropy_512_bytes_per_dial(void) {
  hcsb__bringup_t *b;
  peer_t a, c;
  setup(HCSB_TRANSPORT_UNIX);
  CHECK_EQ(hcsb__bringup_open(&loop, &addr, 1, NULL, NULL, &b), 0);
  CHECK(path_exists(port_path(HCSB_PORT_ENTROPY)));
  CHECK(!path_exists(port_path(HCSB_PORT_LOG)));
  CHECK_EQ(peer_dial(&a, port_path(HCSB_PORT_ENTROPY)), 0);
  CHECK_EQ(peer_dial(&c, port_path(HCSB_PORT_ENTROPY)), 0);
  RUN_UNTIL(peer_pump(&a) && peer_pump(&c));
  CHECK_EQ(a.eof, 1);
  CHECK_EQ(c.eof, 1);
  CHECK_EQ(a.len, HCSB_ENTROPY_BYTES);
  CHECK_EQ(c.len, HCSB_ENTROPY_BYTES);
  CHECK(memcmp(a.rx, c.rx, HCSB_ENTROPY_BYTES) != 0);
  /* The listener stays for later dials until close. */
  CHECK(path_exists(port_path(HCSB_PORT_ENTROPY)));
  hcsb__bringup_close(b);
  CHECK(!path_exists(port_path(HCSB_PORT_ENTROPY)));
  peer_close(&a);
  peer_close(&c);
  teardown();
}

static void on_log_unexpected(void *data, const hcsb_guest_log_record_t *rec) {
  (void)data;
  hcsb_test_fail(__FILE__, __LINE__, "unexpected log record \"%s\"", rec->line);
}

static void test_bringup_close_with_dials_in_flight(void) {
  hcsb__bringup_t *b;
  peer_t e[3], l;
  setup(HCSB_TRANSPORT_UNIX);
  CHECK_EQ(hcsb__bringup_open(&loop, &addr, 1, on_log_unexpected, NULL, &b), 0);
  for (int i = 0; i < 3; i++)
    CHECK_EQ(peer_dial(&e[i], port_path(HCSB_PORT_ENTROPY)), 0);
  CHECK_EQ(peer_dial(&l, port_path(HCSB_PORT_LOG)), 0);
  turn(); /* accepted, entropy writes issued, nothing completed yet */
  hcsb__bringup_close(b);
  for (int i = 0; i < 3; i++) {
    RUN_UNTIL(peer_pump(&e[i]));
    CHECK(e[i].len == 0 || e[i].len == HCSB_ENTROPY_BYTES);
    peer_close(&e[i]);
  }
  RUN_UNTIL(peer_pump(&l));
  CHECK_EQ(l.len, 0);
  peer_close(&l);
  teardown();
}

/* ------------------------------------------------------------------------ */
/* Bring-up: the log stream */

typedef struct logrec_s {
  char *line;
  size_t line_len;
  char *time, *level, *msg;
} logrec_t;

typedef struct logs_s {
  logrec_t r[32];
  int n;
  hcsb__bringup_t *b;
  int close_in_cb;
} logs_t;

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

static void on_log(void *data, const hcsb_guest_log_record_t *rec) {
  logs_t *L = data;
  logrec_t *r;
  CHECK(L->n < 32);
  r = &L->r[L->n++];
  CHECK_EQ(strlen(rec->line), rec->line_len); /* NUL-terminated, no NULs */
  r->line = malloc(rec->line_len + 1);
  CHECK(r->line != NULL);
  memcpy(r->line, rec->line, rec->line_len + 1);
  r->line_len = rec->line_len;
  r->time = dup_or_null(rec->time);
  r->level = dup_or_null(rec->level);
  r->msg = dup_or_null(rec->msg);
  if (L->close_in_cb) hcsb__bringup_close(L->b);
}

static void logs_free(logs_t *L) {
  for (int i = 0; i < L->n; i++) {
    free(L->r[i].line);
    free(L->r[i].time);
    free(L->r[i].level);
    free(L->r[i].msg);
  }
}

/* Sends and waits until the library has read it, so each write is a
 * separate read on the library side. */
static void log_send(peer_t *p, const char *s, size_t n) {
  peer_send(p, s, n);
  RUN_UNTIL(peer_unread(p) == 0);
}

static void test_log_records(void) {
  const size_t longlen = 64 * 1024 + 1000;
  char *longline = malloc(longlen + 1);
  hcsb__bringup_t *b;
  logs_t L;
  peer_t g, g2;
  memset(&L, 0, sizeof L);
  CHECK(longline != NULL);
  memset(longline, 'a', longlen);
  longline[longlen] = '\n';
  setup(HCSB_TRANSPORT_UNIX);
  CHECK_EQ(hcsb__bringup_open(&loop, &addr, 0, on_log, &L, &b), 0);
  CHECK(!path_exists(port_path(HCSB_PORT_ENTROPY)));
  CHECK(path_exists(port_path(HCSB_PORT_LOG)));
  CHECK_EQ(peer_dial(&g, port_path(HCSB_PORT_LOG)), 0);

  /* A record split across writes, then two in one write (CRLF, nested). */
  const char *p1 =
      "{\"time\":\"2024-05-01T10:00:00Z\",\"level\":\"info\",\"msg\":\"hel";
  const char *p2 =
      "lo world\"}\n{\"time\":\"T2\",\"level\":\"error\",\"msg\":"
      "\"second\",\"extra\":{\"a\":[1,2]}}\r\n{\"msg\":";
  const char *p3 = "\"third\",\"level\":7}\n";
  log_send(&g, p1, strlen(p1));
  CHECK_EQ(L.n, 0);
  log_send(&g, p2, strlen(p2));
  CHECK_EQ(L.n, 2);
  log_send(&g, p3, strlen(p3));
  CHECK_EQ(L.n, 3);
  /* Not JSON: a Go panic trailer, a blank line, broken JSON. */
  const char *p4 =
      "panic: runtime error: index out of range\n\n{\"msg\": \"bad\"\n";
  log_send(&g, p4, strlen(p4));
  CHECK_EQ(L.n, 5);
  /* Overlong: delivered truncated, the rest of it dropped. */
  log_send(&g, longline, 30000);
  log_send(&g, longline + 30000, longlen + 1 - 30000);
  log_send(&g, "{\"msg\":\"after\"}\n{\"msg\":\"tail\"}", 30);
  CHECK_EQ(L.n, 7);
  close(g.fd); /* EOF: the unterminated last line still counts */
  g.fd = -1;
  RUN_UNTIL(L.n == 8);

  CHECK_STR(L.r[0].time, "2024-05-01T10:00:00Z");
  CHECK_STR(L.r[0].level, "info");
  CHECK_STR(L.r[0].msg, "hello world");
  CHECK_EQ(L.r[0].line_len, strlen(p1) + 10);
  CHECK_STR(L.r[1].time, "T2");
  CHECK_STR(L.r[1].level, "error");
  CHECK_STR(L.r[1].msg, "second");
  CHECK_STR(L.r[1].line,
            "{\"time\":\"T2\",\"level\":\"error\",\"msg\":\"second\","
            "\"extra\":{\"a\":[1,2]}}");
  CHECK_STR(L.r[2].msg, "third");
  CHECK(L.r[2].level == NULL); /* not a string */
  CHECK(L.r[2].time == NULL);
  CHECK_STR(L.r[3].line, "panic: runtime error: index out of range");
  CHECK(L.r[3].time == NULL && L.r[3].level == NULL && L.r[3].msg == NULL);
  CHECK_STR(L.r[4].line, "{\"msg\": \"bad\"");
  CHECK(L.r[4].msg == NULL);
  CHECK_EQ(L.r[5].line_len, 64 * 1024);
  CHECK_EQ(strspn(L.r[5].line, "a"), 64 * 1024);
  CHECK(L.r[5].msg == NULL);
  CHECK_STR(L.r[6].msg, "after");
  CHECK_STR(L.r[7].msg, "tail");
  CHECK_STR(L.r[7].line, "{\"msg\":\"tail\"}");

  /* vsockexec re-dials: the listener takes another connection. */
  CHECK_EQ(peer_dial(&g2, port_path(HCSB_PORT_LOG)), 0);
  peer_puts(&g2, "{\"msg\":\"again\"}\n");
  RUN_UNTIL(L.n == 9);
  CHECK_STR(L.r[8].msg, "again");
  /* At EOF the library closes its end. */
  CHECK_EQ(shutdown(g2.fd, SHUT_WR), 0);
  RUN_UNTIL(peer_pump(&g2));
  CHECK_EQ(g2.eof, 1);

  hcsb__bringup_close(b);
  CHECK(!path_exists(port_path(HCSB_PORT_LOG)));
  peer_close(&g);
  peer_close(&g2);
  teardown();
  CHECK_EQ(L.n, 9);
  logs_free(&L);
  free(longline);
}

static void test_log_close_inside_callback(void) {
  logs_t L;
  peer_t g;
  memset(&L, 0, sizeof L);
  L.close_in_cb = 1;
  setup(HCSB_TRANSPORT_UNIX);
  CHECK_EQ(hcsb__bringup_open(&loop, &addr, 1, on_log, &L, &L.b), 0);
  CHECK_EQ(peer_dial(&g, port_path(HCSB_PORT_LOG)), 0);
  peer_puts(&g, "{\"msg\":\"1\"}\n{\"msg\":\"2\"}\n{\"msg\":\"3\"}\n");
  RUN_UNTIL(L.n > 0);
  RUN_UNTIL(peer_pump(&g));
  turns(3);
  CHECK_EQ(L.n, 1);
  CHECK_STR(L.r[0].msg, "1");
  CHECK(!path_exists(port_path(HCSB_PORT_LOG)));
  CHECK(!path_exists(port_path(HCSB_PORT_ENTROPY)));
  peer_close(&g);
  teardown();
  logs_free(&L);
}

/* A guest dialing in a loop gets at most 16 live log connections. */
static void test_log_connections_bounded(void) {
  enum { N = 16 };
  logs_t L;
  peer_t g[N], extra;
  hcsb__bringup_t *b;
  char line[32];
  memset(&L, 0, sizeof L);
  setup(HCSB_TRANSPORT_UNIX);
  CHECK_EQ(hcsb__bringup_open(&loop, &addr, 0, on_log, &L, &b), 0);
  for (int i = 0; i < N; i++) {
    CHECK_EQ(peer_dial(&g[i], port_path(HCSB_PORT_LOG)), 0);
    snprintf(line, sizeof line, "{\"msg\":\"%d\"}\n", i);
    peer_puts(&g[i], line);
    RUN_UNTIL(L.n == i + 1); /* accepted and read */
  }
  CHECK_EQ(peer_dial(&extra, port_path(HCSB_PORT_LOG)), 0);
  peer_puts(&extra, "{\"msg\":\"extra\"}\n");
  RUN_UNTIL(peer_pump(&extra));
  CHECK_EQ(extra.len, 0);
  turns(3);
  CHECK_EQ(L.n, N); /* the refused one was never read */
  for (int i = 0; i < N; i++) CHECK_EQ(peer_pump(&g[i]), 0);
  peer_close(&extra);

  /* A slot frees up when one ends (the library closes its end then). */
  CHECK_EQ(shutdown(g[0].fd, SHUT_WR), 0);
  RUN_UNTIL(peer_pump(&g[0]));
  CHECK_EQ(g[0].eof, 1);
  CHECK_EQ(peer_dial(&extra, port_path(HCSB_PORT_LOG)), 0);
  peer_puts(&extra, "{\"msg\":\"late\"}\n");
  RUN_UNTIL(L.n == N + 1);
  CHECK_STR(L.r[N].msg, "late");
  hcsb__bringup_close(b);
  for (int i = 0; i < N; i++) peer_close(&g[i]);
  peer_close(&extra);
  teardown();
  logs_free(&L);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY_T(stdin_bytes_and_half_close, 10),
    TEST_ENTRY_T(stdin_close_before_accept, 10),
    TEST_ENTRY_T(stdin_queue_bounded, 20),
    TEST_ENTRY_T(stdout_stderr_eof_then_closed, 10),
    TEST_ENTRY_T(stdout_close_fd, 10),
    TEST_ENTRY_T(stdout_backpressure, 20),
    TEST_ENTRY_T(accept_timeout_closes_listeners, 10),
    TEST_ENTRY_T(second_dial_refused, 10),
    TEST_ENTRY_T(close_inside_read_cb, 10),
    TEST_ENTRY_T(close_inside_ready_cb, 10),
    TEST_ENTRY_T(close_inside_failed_ready_cb, 10),
    TEST_ENTRY_T(no_ports_ready_next_turn, 10),
    TEST_ENTRY_T(open_errors_leave_nothing, 10),
    TEST_ENTRY_T(hybrid_vsock_paths, 10),
    TEST_ENTRY_T(entropy_512_bytes_per_dial, 10),
    TEST_ENTRY_T(bringup_close_with_dials_in_flight, 10),
    TEST_ENTRY_T(log_records, 10),
    TEST_ENTRY_T(log_close_inside_callback, 10),
    TEST_ENTRY_T(log_connections_bounded, 10),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
