/* Fuzz target: the guest emulator's request handling (src/guest), driven
 * through its real frame-reading path.
 *
 * Input: [flags] [request stream...]
 *   flags & 3    --max-frame: 16 MiB, 64, 512 or 4096 (oversize answers)
 *   flags & 4    prepend a valid NegotiateProtocol, so mutations of single
 *                requests get past the negotiation gate
 *   flags & 8    --allow-uvm-signal
 *
 * The emulator gets one end of a socketpair, exactly as hcsb-guest's main()
 * sets it up; the target plays the host on the other end in the same loop:
 * writes the stream, half-closes, and reads every answer until the
 * emulator hangs up.  Each answer is checked the way the host library
 * would take it: it must answer a request that was sent (ID and derived
 * response type, at most once), and its body must decode with the host's
 * hcsb__response_decode (notifications: hcsb__notification_decode).  When
 * the stream holds no Shutdown request, every request must be answered.
 * After each input no descriptor may be left open.
 *
 * Safety: nothing the fuzzer writes may run or signal a real process.
 * spawn.c is replaced below by stubs that always fail (so no PID ever
 * enters the process table and nothing is ever killed), and stdio relays
 * "dial" under /dev/null, which fails at once with ENOTDIR instead of
 * retrying.  Only Unix socketpairs are used.  In case the emulator ever
 * grows another way to do those things, a seccomp filter also makes
 * execve, kill() of anything but ourselves and AF_VSOCK sockets fail. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__linux__) && defined(__x86_64__)
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#define HAVE_LOCKDOWN 1
#endif

#include "fuzz.h"
#include "guest/guest.h"

/* ------------------------------------------------------------------------ */
/* Stand-ins for main.c and spawn.c */

void hcsb__glog(hcsb__guest_t *g, int verbose_only, const char *fmt, ...) {
  va_list ap;

  if (!g->verbose) return;
  (void)verbose_only;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

int hcsb__gspawn(const hcsb__gspawn_t *o, pid_t *pid, const char **stage) {
  (void)o;
  *pid = -1;
  *stage = "exec";
  return -ENOENT;
}

int hcsb__glookpath(const char *file, const char *path_env, char **out) {
  (void)path_env;
  *out = NULL;
  if (file == NULL || file[0] == '\0') return -ENOENT;
  *out = strdup(file);
  return *out != NULL ? 0 : -ENOMEM;
}

int hcsb__gis_descendant(pid_t pid) {
  (void)pid;
  return 0;
}

void hcsb__gkill_session(pid_t sid, int sig) {
  (void)sid;
  (void)sig;
}

/* ------------------------------------------------------------------------ */
/* Seccomp guard (see the top of the file) */

#ifdef HAVE_LOCKDOWN
#define ARG0 offsetof(struct seccomp_data, args[0]) /* low half on x86-64 */
#define DENY (SECCOMP_RET_ERRNO | EPERM)

static void lock_down(void) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, DENY),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 5, 0), /* x32 ABI */
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_execve, 4, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_execveat, 3, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_kill, 3, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 6, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, DENY),
      /* kill: only ourselves (sanitizer aborts) */
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)getpid(), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, DENY),
      /* socket: never AF_VSOCK */
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_VSOCK, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, DENY),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {(unsigned short)(sizeof(f) / sizeof(f[0])), f};

  /* valgrind cannot apply filters; the stubs remain the first guard. */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
    fprintf(stderr, "fuzz-guest: seccomp guard not installed: %s\n",
            strerror(errno));
}
#else
static void lock_down(void) {}
#endif

/* ------------------------------------------------------------------------ */
/* The host side */

typedef struct sent_s {
  uint32_t type;
  uint64_t id;
  int answered;
} sent_t;

typedef struct host_s {
  uv_pipe_t pipe;
  uv_write_t wreq;
  uv_shutdown_t sreq;
  hcsb__decoder_t dec;
  hcsb__decode_ctx_t ctx;
  sent_t *sent;
  size_t nsent;
  size_t nanswers;
  char rbuf[64 * 1024];
} host_t;

static const char negotiate_body[] =
    "{\"ContainerId\":\"\",\"ActivityId\":"
    "\"00000000-0000-0000-0000-000000000000\","
    "\"MaximumVersion\":4,\"MinimumVersion\":4}";

static const uint32_t max_frames[4] = {HCSB_DEFAULT_MAX_FRAME, 64, 512, 4096};

static void check_answer(host_t *h, const hcsb__frame_t *f) {
  hcsb_response_t resp;
  hcsb_notification_t note;
  hcsb_guest_error_t gerr;
  int has_gerr;
  size_t i;

  if (f->hdr.type == HCSB_MSG_NOTIFY_CONTAINER) {
    FUZZ_CHECK(f->hdr.id == 0);
    FUZZ_CHECK(hcsb__notification_decode(&h->ctx, (const char *)f->body,
                                         f->body_len, &note) == 0);
    hcsb__decode_release(&h->ctx);
    return;
  }
  FUZZ_CHECK((f->hdr.type & HCSB_MSG_TYPE_MASK) == HCSB_MSG_TYPE_RESPONSE);
  for (i = 0; i < h->nsent; i++) {
    sent_t *s = &h->sent[i];
    if (!s->answered && s->id == f->hdr.id &&
        hcsb_msg_response_type(s->type) == f->hdr.type)
      break;
  }
  FUZZ_CHECK(i < h->nsent); /* an answer to something that was asked */
  h->sent[i].answered = 1;
  h->nanswers++;
  FUZZ_CHECK(hcsb__response_decode(&h->ctx, f->hdr.type, f->hdr.id,
                                   (const char *)f->body, f->body_len, &resp,
                                   &gerr, &has_gerr) == 0);
  hcsb__decode_release(&h->ctx);
}

static void host_alloc(uv_handle_t *handle, size_t hint, uv_buf_t *buf) {
  host_t *h = handle->data;
  (void)hint;
  *buf = uv_buf_init(h->rbuf, sizeof(h->rbuf));
}

static void host_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  host_t *h = s->data;
  const uint8_t *p = (const uint8_t *)buf->base;
  size_t off = 0, used;
  hcsb__frame_t f;
  hcsb__dec_event_t ev;

  if (nread < 0) {
    /* The emulator hung up; it must not stop in the middle of a frame. */
    FUZZ_CHECK(nread == UV_EOF || nread == UV_ECONNRESET);
    FUZZ_CHECK(hcsb__decoder_idle(&h->dec));
    uv_close((uv_handle_t *)s, NULL);
    return;
  }
  while (off < (size_t)nread) {
    ev = hcsb__decoder_feed(&h->dec, p + off, (size_t)nread - off, &used, &f);
    off += used;
    if (ev == HCSB__DEC_FRAME)
      check_answer(h, &f);
    else
      FUZZ_CHECK(ev == HCSB__DEC_NEED_MORE);
  }
}

/* Writes fail with EPIPE once the emulator tore down early (a UVM shutdown
 * request, a bad header); that is expected. */
static void host_wrote(uv_write_t *req, int status) {
  (void)req;
  (void)status;
}

static void host_shut(uv_shutdown_t *req, int status) {
  (void)req;
  (void)status;
}

/* The events the emulator's decoder will see, in order. */
static int list_requests(host_t *h, uint32_t max_frame, const uint8_t *pre,
                         size_t npre, const uint8_t *s, size_t n) {
  hcsb__decoder_t d;
  hcsb__frame_t f;
  hcsb__dec_event_t ev;
  const uint8_t *chunk[2] = {pre, s};
  size_t len[2] = {npre, n}, off, used, c;
  int stream_error = 0;

  h->sent = calloc((npre + n) / HCSB__HDR_SIZE + 1, sizeof(sent_t));
  FUZZ_CHECK(h->sent != NULL);
  hcsb__decoder_init(&d, max_frame);
  for (c = 0; c < 2 && !stream_error; c++) {
    for (off = 0; off < len[c];) {
      ev = hcsb__decoder_feed(&d, chunk[c] + off, len[c] - off, &used, &f);
      off += used;
      if (ev == HCSB__DEC_FRAME || ev == HCSB__DEC_OVERSIZE) {
        h->sent[h->nsent].type = f.hdr.type;
        h->sent[h->nsent].id = f.hdr.id;
        h->nsent++;
      } else if (ev == HCSB__DEC_ERROR) {
        stream_error = 1;
        break;
      }
    }
  }
  hcsb__decoder_free(&d);
  return stream_error;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  if (d == NULL) return -1;
  while ((e = readdir(d)) != NULL) n++;
  closedir(d);
  return n;
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* ------------------------------------------------------------------------ */

/* One session: the emulator reads `flags`-shaped stream `data` to EOF. */
static void run_session(unsigned flags, const uint8_t *data, size_t size) {
  static hcsb__guest_t guest;
  static host_t host;
  hcsb__guest_t *g = &guest;
  host_t *h = &host;
  uv_loop_t loop;
  uint8_t pre[HCSB__HDR_SIZE + sizeof(negotiate_body) - 1];
  size_t npre = 0, i;
  hcsb__hdr_t hdr;
  uv_buf_t bufs[2];
  int sv[2], stream_error, has_shutdown = 0;

  memset(g, 0, sizeof(*g));
  memset(h, 0, sizeof(*h));
  g->max_frame = max_frames[flags & 3];
  g->allow_uvm_signal = (flags & 8) != 0;
  g->verbose = getenv("HCSB_FUZZ_VERBOSE") != NULL;
  /* A file, so every stdio dial fails at once (ENOTDIR), never retried. */
  snprintf(g->stdio_dir, sizeof(g->stdio_dir), "/dev/null");

  if (flags & 4) {
    hdr.type = HCSB_MSG_NEGOTIATE_PROTOCOL;
    hdr.size = (uint32_t)sizeof(pre);
    hdr.id = 0;
    hcsb__hdr_encode(pre, &hdr);
    memcpy(pre + HCSB__HDR_SIZE, negotiate_body, sizeof(negotiate_body) - 1);
    npre = sizeof(pre);
  }
  stream_error = list_requests(h, g->max_frame, pre, npre, data, size);
  for (i = 0; i < h->nsent; i++)
    if (h->sent[i].type == HCSB_MSG_SHUTDOWN_GRACEFUL ||
        h->sent[i].type == HCSB_MSG_SHUTDOWN_FORCED)
      has_shutdown = 1;

  /* What main() does, minus the process-wide parts (subreaper, signals). */
  FUZZ_CHECK(uv_loop_init(&loop) == 0);
  g->loop = &loop;
  g->start_ms = uv_now(&loop);
  TAILQ_INIT(&g->procs);
  TAILQ_INIT(&g->ctrs);
  TAILQ_INIT(&g->execs);
  TAILQ_INIT(&g->resources);
  hcsb__decoder_init(&g->dec, g->max_frame);
  FUZZ_CHECK(uv_signal_init(&loop, &g->sigchld) == 0);
  FUZZ_CHECK(uv_signal_init(&loop, &g->sigterm) == 0);
  FUZZ_CHECK(uv_signal_init(&loop, &g->sigint) == 0);
  FUZZ_CHECK(uv_signal_init(&loop, &g->sighup) == 0);
  FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  FUZZ_CHECK(uv_pipe_init(&loop, &g->in_pipe, 0) == 0);
  FUZZ_CHECK(uv_pipe_open(&g->in_pipe, sv[0]) == 0);
  g->in = g->out = (uv_stream_t *)&g->in_pipe;

  hcsb__decoder_init(&h->dec, 0);
  FUZZ_CHECK(hcsb__decode_ctx_init(&h->ctx) == 0);
  FUZZ_CHECK(uv_pipe_init(&loop, &h->pipe, 0) == 0);
  FUZZ_CHECK(uv_pipe_open(&h->pipe, sv[1]) == 0);
  h->pipe.data = h;
  bufs[0] = uv_buf_init((char *)pre, (unsigned)npre);
  bufs[1] = uv_buf_init((char *)data, (unsigned)size);
  FUZZ_CHECK(uv_write(&h->wreq, (uv_stream_t *)&h->pipe, bufs, 2, host_wrote) ==
             0);
  FUZZ_CHECK(uv_shutdown(&h->sreq, (uv_stream_t *)&h->pipe, host_shut) == 0);
  FUZZ_CHECK(uv_read_start((uv_stream_t *)&h->pipe, host_alloc, host_read) ==
             0);

  FUZZ_CHECK(hcsb__gconn_start(g) == 0);
  uv_run(&loop, UV_RUN_DEFAULT);

  FUZZ_CHECK(g->closing);
  if (!has_shutdown) {
    /* Nothing could end the session early: everything was read and every
     * request answered, and only a bad header makes the exit unclean. */
    FUZZ_CHECK(g->exit_code == stream_error);
    FUZZ_CHECK(h->nanswers == h->nsent);
  }

  hcsb__gctr_teardown(g);
  hcsb__gmodify_teardown(g);
  hcsb__decoder_free(&g->dec);
  uv_walk(&loop, close_walk, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  FUZZ_CHECK(uv_loop_close(&loop) == 0);
  FUZZ_CHECK(TAILQ_EMPTY(&g->procs) && g->npending == 0);

  hcsb__decoder_free(&h->dec);
  hcsb__decode_ctx_free(&h->ctx);
  free(h->sent);
}

/* Sanitizers symbolize a crash report with an external program; start it
 * now, while the seccomp guard still lets us exec it. */
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_SYMBOLIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_SYMBOLIZER 1
#endif
#endif
#ifdef HAVE_SYMBOLIZER
void __sanitizer_symbolize_pc(void *pc, const char *fmt, char *out, size_t n);
static void start_symbolizer(void) {
  char buf[256];
  __sanitizer_symbolize_pc(__builtin_return_address(0), "%F", buf, sizeof buf);
}
#else
static void start_symbolizer(void) {}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  int fds_before;

  if (!ready) {
    /* A write to a hung-up peer must be EPIPE, not the end of us. */
    signal(SIGPIPE, SIG_IGN);
    start_symbolizer();
    lock_down();
    /* libuv opens a process-wide signal pipe once: not a leak. */
    run_session(0, NULL, 0);
    ready = 1;
  }
  if (size < 1) return 0;
  fds_before = count_fds();
  run_session(data[0], data + 1, size - 1);
  FUZZ_CHECK(count_fds() == fds_before);
  return 0;
}
