/* hcsb-bench-raw: the limit a bridge client could reach on this machine.
 *
 * The same GetProperties(ProcessList) calls as hcsb-bench, on the same kind
 * of connection to the same peer, with everything a library does removed:
 * request frames are prebuilt (only the 8-byte ID is patched), responses
 * are matched by the 16-byte header alone, the socket is plain poll() and
 * non-blocking send()/recv(), and every batch of responses read is replaced
 * by the same number of requests in one send().
 *
 * --loop uv does exactly the same on a libuv loop (impl=raw-uv): the socket
 * is a uv_pipe_t read by uv_read_start into the same fixed buffer, and each
 * batch goes out with one uv_try_write (a uv_write carries the rest, in
 * order, when the socket takes only part).  Frames, matching, the slot
 * table and the accounting are shared, so library/raw-uv is the library's
 * own cost and raw-uv/raw is libuv's.  (A uv_write counts as one write,
 * though libuv may need several for it.)
 *
 *   hcsb-bench-raw --connect [unix+connect://]PATH --mode seq|pipe
 *                  [--inflight N] (--count M | --duration S) [--warmup M]
 *                  [--loop poll|uv]
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <hcsbridge/common.h>

#include "tools/bench/alloc.h"
#include "tools/bench/common.h"
#include "tools/bench/hist.h"

#define RECV_CAP (256u * 1024u)
#define MAX_RESPONSE (64u * 1024u)

typedef struct slot_s {
  uint64_t id; /* 0: free */
  uint64_t sent_ns;
} slot_t;

typedef struct raw_s {
  bench_args_t args;
  int fd;
  uint8_t frame[512]; /* the request template */
  size_t frame_len;
  uint8_t *sendbuf;
  size_t send_off, send_len;
  uint8_t *recvbuf;
  size_t recv_len;
  slot_t *slots;
  uint64_t mask;
  uint64_t next_id;
  uint64_t outstanding;
  bench_io_t io; /* counted all along; the window takes differences */
  /* The measurement, advanced by consume(). */
  uint64_t done, measured, t0, t1, allocs0, allocs1;
  bench_io_t io0, io1;
  int measuring, stopping;
  /* --loop uv only. */
  uv_loop_t loop;
  uv_pipe_t pipe;
  uv_check_t turn;  /* counts loop iterations */
  uv_write_t wreq;  /* the one uv_write in progress, if any */
  size_t write_end; /* where its bytes end in sendbuf */
  int writing;
} raw_t;

static bench_hist_t hist;

static void fail(const char *what) {
  fprintf(stderr, "hcsb-bench-raw: %s\n", what);
  exit(1);
}

static void put_le(uint8_t *p, uint64_t v, int n) {
  int i;

  for (i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n) {
  uint64_t v = 0;
  int i;

  for (i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static size_t build_frame(uint8_t *out, size_t cap, uint32_t type,
                          const char *body) {
  size_t len = strlen(body) + 16;

  if (len > cap) fail("request too large");
  put_le(out, type, 4);
  put_le(out + 4, len, 4);
  put_le(out + 8, 0, 8);
  memcpy(out + 16, body, len - 16);
  return len;
}

static int dial(const char *address) {
  struct sockaddr_un sa;
  const char *path = address;
  int fd;

  if (strncmp(path, "unix+connect://", 15) == 0)
    path += 15;
  else if (strncmp(path, "unix://", 7) == 0)
    path += 7;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(sa.sun_path)) fail("socket path too long");
  memcpy(sa.sun_path, path, strlen(path) + 1);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    perror("hcsb-bench-raw: connect");
    exit(1);
  }
  return fd;
}

/* Sends what is queued without blocking; the rest waits for POLLOUT. */
static void try_send(raw_t *r) {
  ssize_t n;

  while (r->send_off < r->send_len) {
    n = send(r->fd, r->sendbuf + r->send_off, r->send_len - r->send_off,
             MSG_DONTWAIT | MSG_NOSIGNAL);
    r->io.writes++;
    if (n > 0) r->io.bytes_written += (uint64_t)n;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      fail("send failed");
    }
    r->send_off += (size_t)n;
  }
  r->send_off = r->send_len = 0;
}

/* Appends k prebuilt requests to sendbuf and takes their slots.  Bytes
 * already sent are dropped first, unless a uv_write still holds them. */
static void queue(raw_t *r, uint64_t k) {
  uint64_t now = bench_now_ns();
  slot_t *s;

  if (r->send_off > 0 && !r->writing) {
    memmove(r->sendbuf, r->sendbuf + r->send_off, r->send_len - r->send_off);
    r->send_len -= r->send_off;
    r->send_off = 0;
  }
  while (k-- > 0) {
    s = &r->slots[r->next_id & r->mask];
    if (s->id != 0) fail("too many calls outstanding");
    s->id = r->next_id;
    s->sent_ns = now;
    memcpy(r->sendbuf + r->send_len, r->frame, r->frame_len);
    put_le(r->sendbuf + r->send_len + 8, r->next_id, 8);
    r->send_len += r->frame_len;
    r->next_id++;
    r->outstanding++;
  }
}

static void issue(raw_t *r, uint64_t k) {
  queue(r, k);
  try_send(r);
}

/* Waits for bytes (servicing a pending send meanwhile) and reads them.
 * poll() then a non-blocking recv(): on this kernel a Unix socket wakes a
 * poller about 5 us sooner than a reader blocked in recv(), and the limit
 * client must not be the slower of the two. */
static void receive(raw_t *r) {
  struct pollfd pfd;
  ssize_t n;

  for (;;) {
    pfd.fd = r->fd;
    pfd.events = POLLIN | (r->send_len > r->send_off ? POLLOUT : 0);
    r->io.turns++;
    if (poll(&pfd, 1, -1) < 0) {
      if (errno == EINTR) continue;
      fail("poll failed");
    }
    if (pfd.revents & POLLOUT) try_send(r);
    if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR))) continue;
    n = recv(r->fd, r->recvbuf + r->recv_len, RECV_CAP - r->recv_len,
             MSG_DONTWAIT);
    if (n > 0) {
      r->io.reads++;
      r->io.bytes_read += (uint64_t)n;
    }
    if (n > 0) break;
    if (n == 0) fail("peer closed the connection");
    if (errno != EAGAIN && errno != EINTR) fail("recv failed");
  }
  r->recv_len += (size_t)n;
}

/* Waits for the response to `id` (negotiation), skipping nothing else. */
static void await_one(raw_t *r, uint32_t type, uint64_t id) {
  uint64_t size;

  for (;;) {
    if (r->recv_len >= 16) {
      size = get_le(r->recvbuf + 4, 4);
      if (size < 16 || size > MAX_RESPONSE) fail("bad frame size");
      if (r->recv_len >= size) break;
    }
    receive(r);
  }
  if (get_le(r->recvbuf, 4) != type || get_le(r->recvbuf + 8, 8) != id)
    fail("unexpected negotiation response");
  if (memmem(r->recvbuf + 16, size - 16, "\"Result\":0", 10) == NULL)
    fail("negotiation refused");
  memmove(r->recvbuf, r->recvbuf + size, r->recv_len - size);
  r->recv_len -= size;
}

static void window_mark(raw_t *r, uint64_t now, uint64_t *t, uint64_t *allocs,
                        bench_io_t *io) {
  *t = now;
  *allocs = bench_alloc_count();
  *io = r->io;
  io->cpu_ns = bench_cpu_ns();
}

/* Matches the complete responses in recvbuf by their header, frees their
 * slots, advances the measurement and drops them from the buffer.
 * Returns how many calls to send in their place. */
static uint64_t consume(raw_t *r) {
  bench_args_t *a = &r->args;
  uint64_t now = bench_now_ns(), size, id, refill = 0;
  size_t off;
  slot_t *s;

  for (off = 0; r->recv_len - off >= 16; off += size) {
    size = get_le(r->recvbuf + off + 4, 4);
    if (size < 16 || size > MAX_RESPONSE) fail("bad frame size");
    if (r->recv_len - off < size) break;
    if (get_le(r->recvbuf + off, 4) != HCSB_MSG_GET_PROPERTIES_RESPONSE)
      fail("unexpected response type");
    id = get_le(r->recvbuf + off + 8, 8);
    s = &r->slots[id & r->mask];
    if (s->id != id || id == 0) fail("response to an unknown ID");
    s->id = 0;
    r->outstanding--;
    r->done++;
    if (r->stopping) continue;
    if (r->measuring) {
      bench_hist_add(&hist, now - s->sent_ns);
      r->measured++;
      if (bench_window_over(a, r->t0, now, r->measured)) {
        r->stopping = 1;
        window_mark(r, now, &r->t1, &r->allocs1, &r->io1);
        continue;
      }
    } else if (r->done >= a->warmup) {
      r->measuring = 1;
      window_mark(r, now, &r->t0, &r->allocs0, &r->io0);
    }
    refill++;
  }
  memmove(r->recvbuf, r->recvbuf + off, r->recv_len - off);
  r->recv_len -= off;
  return refill;
}

static void start(raw_t *r) {
  r->measuring = r->args.warmup == 0;
  if (r->measuring)
    window_mark(r, bench_now_ns(), &r->t0, &r->allocs0, &r->io0);
}

static void report(raw_t *r, const char *impl) {
  bench_io_t io = r->io1;

  io.writes -= r->io0.writes;
  io.reads -= r->io0.reads;
  io.bytes_written -= r->io0.bytes_written;
  io.bytes_read -= r->io0.bytes_read;
  io.turns -= r->io0.turns;
  io.cpu_ns -= r->io0.cpu_ns;
  bench_print_result(impl, &r->args, r->measured, r->t1 - r->t0, &hist,
                     r->allocs1 - r->allocs0, &io);
}

static void run_poll(raw_t *r) {
  uint64_t refill;

  start(r);
  issue(r, r->args.inflight);
  while (!r->stopping || r->outstanding > 0) {
    receive(r);
    refill = consume(r);
    if (refill > 0) issue(r, refill);
  }
  report(r, "raw");
}

/* --- the same on a libuv loop ------------------------------------------ */

static void uv_flush(raw_t *r);

static void on_turn(uv_check_t *h) {
  ((raw_t *)h->data)->io.turns++;
}

static void on_uv_written(uv_write_t *req, int status) {
  raw_t *r = req->data;

  /* Every call answered: closing the pipe may cancel a written request
   * whose callback had not run yet. */
  if (status == UV_ECANCELED && r->stopping && r->outstanding == 0) return;
  if (status < 0) fail("uv_write failed");
  r->io.bytes_written += r->write_end - r->send_off;
  r->send_off = r->write_end;
  r->writing = 0;
  uv_flush(r);
}

/* One uv_try_write for everything queued; what the socket does not take
 * goes to one uv_write, and frames queued meanwhile wait for its end. */
static void uv_flush(raw_t *r) {
  uv_buf_t buf;
  int n;

  if (r->writing) return;
  if (r->send_off > 0) { /* only after a uv_write */
    memmove(r->sendbuf, r->sendbuf + r->send_off, r->send_len - r->send_off);
    r->send_len -= r->send_off;
    r->send_off = 0;
  }
  if (r->send_len == 0) return;
  buf = uv_buf_init((char *)r->sendbuf + r->send_off,
                    (unsigned)(r->send_len - r->send_off));
  n = uv_try_write((uv_stream_t *)&r->pipe, &buf, 1);
  r->io.writes++;
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) fail("uv_try_write failed");
  r->io.bytes_written += (uint64_t)n;
  r->send_off += (size_t)n;
  if (r->send_off == r->send_len) {
    r->send_off = r->send_len = 0;
    return;
  }
  buf = uv_buf_init((char *)r->sendbuf + r->send_off,
                    (unsigned)(r->send_len - r->send_off));
  r->write_end = r->send_len;
  r->writing = 1;
  r->wreq.data = r;
  r->io.writes++; /* at least one; libuv may need more */
  if (uv_write(&r->wreq, (uv_stream_t *)&r->pipe, &buf, 1, on_uv_written) != 0)
    fail("uv_write failed");
}

static void on_uv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  raw_t *r = h->data;

  (void)hint;
  *buf = uv_buf_init((char *)r->recvbuf + r->recv_len,
                     (unsigned)(RECV_CAP - r->recv_len));
}

static void on_uv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  raw_t *r = st->data;
  uint64_t refill;

  (void)buf;
  if (n == UV_EOF) fail("peer closed the connection");
  if (n < 0) fail("read failed");
  if (n == 0) return;
  r->io.reads++;
  r->io.bytes_read += (uint64_t)n;
  r->recv_len += (size_t)n;
  refill = consume(r);
  if (refill > 0) {
    queue(r, refill);
    uv_flush(r);
  }
  if (r->stopping && r->outstanding == 0) {
    uv_read_stop(st);
    uv_close((uv_handle_t *)&r->pipe, NULL);
    uv_close((uv_handle_t *)&r->turn, NULL);
  }
}

/* Takes over the connected, negotiated socket (and closes it). */
static void run_uv(raw_t *r) {
  if (uv_loop_init(&r->loop) != 0 || uv_pipe_init(&r->loop, &r->pipe, 0) != 0 ||
      uv_pipe_open(&r->pipe, r->fd) != 0)
    fail("cannot put the socket on a libuv loop");
  r->pipe.data = r;
  uv_check_init(&r->loop, &r->turn);
  r->turn.data = r;
  uv_check_start(&r->turn, on_turn);
  uv_unref((uv_handle_t *)&r->turn);
  start(r);
  queue(r, r->args.inflight);
  uv_flush(r);
  if (uv_read_start((uv_stream_t *)&r->pipe, on_uv_alloc, on_uv_read) != 0)
    fail("uv_read_start failed");
  uv_run(&r->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&r->loop) != 0) fail("handles left on the loop");
  report(r, "raw-uv");
}

static void usage(void) {
  fprintf(stderr,
          "usage: hcsb-bench-raw --connect [unix+connect://]PATH --mode "
          "seq|pipe [--inflight N]\n"
          "                      (--count M | --duration S) [--warmup M] "
          "[--container ID]\n"
          "                      [--loop poll|uv]\n");
  exit(2);
}

int main(int argc, char **argv) {
  char body[512];
  raw_t r;
  uint64_t cap = 2;
  int i, uv = 0;

  memset(&r, 0, sizeof(r));
  bench_args_init(&r.args, "raw");
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--loop") == 0 && i + 1 < argc &&
        (strcmp(argv[i + 1], "poll") == 0 || strcmp(argv[i + 1], "uv") == 0)) {
      uv = strcmp(argv[++i], "uv") == 0;
      continue;
    }
    if (!bench_args_take(&r.args, argc, argv, &i)) usage();
  }
  if (bench_args_check(&r.args, "hcsb-bench-raw") != 0) usage();
  if (uv && strcmp(r.args.label, "raw") == 0) r.args.label = "raw-uv";

  /* Byte for byte what hcsb-bench puts on the wire, apart from the ID. */
  if (snprintf(body, sizeof(body),
               "{\"ContainerId\":\"%s\",\"ActivityId\":\"%s\",\"Query\":"
               "\"{\\\"PropertyTypes\\\":[\\\"ProcessList\\\"]}\"}",
               r.args.container, HCSB_ZERO_GUID) >= (int)sizeof(body))
    fail("container ID too long");
  r.frame_len =
      build_frame(r.frame, sizeof(r.frame), HCSB_MSG_GET_PROPERTIES, body);
  while (cap < 2 * (uint64_t)r.args.inflight) cap *= 2;
  r.mask = cap - 1;
  r.slots = calloc(cap, sizeof(*r.slots));
  /* Room for two windows of frames: while a uv_write holds the bytes it
   * writes in place, the calls answered meanwhile queue behind them. */
  r.sendbuf = malloc((2 * (size_t)r.args.inflight + 1) * r.frame_len);
  r.recvbuf = malloc(RECV_CAP);
  if (r.slots == NULL || r.sendbuf == NULL || r.recvbuf == NULL)
    fail("out of memory");
  bench_hist_reset(&hist);
  r.fd = dial(r.args.connect);

  /* Negotiate with ID 1, as the library does; calls start at 2. */
  r.send_len = build_frame(r.sendbuf, r.frame_len * (r.args.inflight + 1),
                           HCSB_MSG_NEGOTIATE_PROTOCOL,
                           "{\"ContainerId\":\"" HCSB_NULL_CONTAINER_ID
                           "\",\"ActivityId\":\"" HCSB_ZERO_GUID
                           "\",\"MinimumVersion\":4,\"MaximumVersion\":4}");
  put_le(r.sendbuf + 8, 1, 8);
  try_send(&r);
  await_one(&r, HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE, 1);
  r.next_id = 2;
  if (uv) {
    run_uv(&r);
  } else {
    run_poll(&r);
    close(r.fd);
  }
  free(r.slots);
  free(r.sendbuf);
  free(r.recvbuf);
  return 0;
}
