#include "config.h"

#include "test-guest-client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

#define IO_TIMEOUT_MS 5000

int gc_scaled(int ms) {
  return ms * (int)hcsb_test_timeout_scale();
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void gc_start(gc_t *c, const char *const *extra, int capture_stderr) {
  const char *argv[32];
  int sv[2], ep[2] = {-1, -1};
  size_t n = 0;

  memset(c, 0, sizeof *c);
  snprintf(c->dir, sizeof c->dir, "%s", hcsb_test_tmpdir());
  argv[n++] = hcsb_test_build_path("src/hcsb-guest");
  argv[n++] = "--stdio-dir";
  argv[n++] = c->dir;
  while (extra != NULL && *extra != NULL && n < 30) argv[n++] = *extra++;
  argv[n] = NULL;

  CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  if (capture_stderr) CHECK(pipe2(ep, O_CLOEXEC) == 0);
  fflush(NULL);
  c->pid = fork();
  CHECK(c->pid >= 0);
  if (c->pid == 0) {
    dup2(sv[1], 0);
    dup2(sv[1], 1);
    if (ep[1] >= 0) dup2(ep[1], 2);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(sv[1]);
  if (ep[1] >= 0) close(ep[1]);
  c->fd = sv[0];
  c->err_fd = ep[0];
  hcsb__decoder_init(&c->dec, 64u << 20);
}

void gc_adopt(gc_t *c, pid_t pid, int fd, const char *dir) {
  memset(c, 0, sizeof *c);
  c->pid = pid;
  c->fd = fd;
  c->err_fd = -1;
  snprintf(c->dir, sizeof c->dir, "%s", dir);
  hcsb__decoder_init(&c->dec, 64u << 20);
}

int gc_stop(gc_t *c) {
  long long deadline = now_ms() + gc_scaled(5000);
  int status = -1;
  size_t i;

  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  for (;;) {
    pid_t r = waitpid(c->pid, &status, WNOHANG);
    if (r == c->pid) break;
    if (now_ms() > deadline) {
      kill(c->pid, SIGKILL);
      waitpid(c->pid, &status, 0);
      hcsb_test_fail(__FILE__, __LINE__, "hcsb-guest did not exit");
    }
    usleep(5000);
  }
  for (i = 0; i < c->nstash; i++) gc_frame_free(&c->stash[i]);
  c->nstash = 0;
  hcsb__decoder_free(&c->dec);
  if (c->err_fd >= 0) close(c->err_fd);
  c->err_fd = -1;
  return status;
}

size_t gc_stderr(gc_t *c, char *buf, size_t len, int timeout_ms) {
  size_t got = 0;
  struct pollfd p = {c->err_fd, POLLIN, 0};

  while (got + 1 < len && poll(&p, 1, gc_scaled(timeout_ms)) > 0) {
    ssize_t n = read(c->err_fd, buf + got, len - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    timeout_ms = 50; /* more may follow shortly */
  }
  buf[got] = '\0';
  return got;
}

void gc_send_raw(gc_t *c, uint32_t type, uint64_t id, const void *body,
                 size_t len) {
  hcsb__hdr_t h = {type, (uint32_t)(HCSB__HDR_SIZE + len), id};
  uint8_t hdr[HCSB__HDR_SIZE];
  const uint8_t *parts[2] = {hdr, body};
  size_t lens[2] = {sizeof hdr, len}, i, off;

  hcsb__hdr_encode(hdr, &h);
  for (i = 0; i < 2; i++) {
    for (off = 0; off < lens[i];) {
      ssize_t n = write(c->fd, parts[i] + off, lens[i] - off);
      if (n < 0 && errno == EINTR) continue;
      CHECK(n > 0);
      off += (size_t)n;
    }
  }
}

void gc_sendf(gc_t *c, uint32_t type, uint64_t id, const char *fmt, ...) {
  char *body = NULL;
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vasprintf(&body, fmt, ap);
  va_end(ap);
  CHECK(n >= 0);
  gc_send_raw(c, type, id, body, (size_t)n);
  free(body);
}

void gc_frame_free(gc_frame_t *f) {
  free(f->body);
  if (f->json != NULL) json_object_put(f->json);
  memset(f, 0, sizeof *f);
}

/* Decodes one frame from what we have buffered; 1 when it produced one. */
static int decode_one(gc_t *c, gc_frame_t *f) {
  hcsb__frame_t fr;
  size_t used;

  while (c->in_off < c->in_len) {
    hcsb__dec_event_t ev = hcsb__decoder_feed(
        &c->dec, c->in + c->in_off, c->in_len - c->in_off, &used, &fr);
    c->in_off += used;
    CHECK(ev != HCSB__DEC_ERROR && ev != HCSB__DEC_OVERSIZE &&
          ev != HCSB__DEC_NOMEM);
    if (ev == HCSB__DEC_FRAME) {
      f->type = fr.hdr.type;
      f->id = fr.hdr.id;
      f->len = fr.body_len;
      f->body = malloc(f->len + 1);
      CHECK(f->body != NULL);
      memcpy(f->body, fr.body, f->len);
      f->body[f->len] = '\0';
      f->json = NULL;
      if (hcsb__json_parse(f->body, f->len, &f->json) != 0) f->json = NULL;
      return 1;
    }
  }
  return 0;
}

int gc_recv(gc_t *c, gc_frame_t *f, int timeout_ms) {
  long long deadline = now_ms() + gc_scaled(timeout_ms);

  if (c->nstash > 0) {
    *f = c->stash[0];
    memmove(c->stash, c->stash + 1, (c->nstash - 1) * sizeof c->stash[0]);
    c->nstash--;
    return 0;
  }
  for (;;) {
    struct pollfd p = {c->fd, POLLIN, 0};
    long long left;
    ssize_t n;

    if (decode_one(c, f)) return 0;
    if (c->eof) return -EPIPE;
    left = deadline - now_ms();
    if (left <= 0) return -ETIMEDOUT;
    if (poll(&p, 1, (int)left) <= 0) continue;
    n = read(c->fd, c->in, sizeof c->in);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      c->eof = 1;
      continue;
    }
    c->in_off = 0;
    c->in_len = (size_t)n;
  }
}

static int recv_id(gc_t *c, uint64_t id, int notification, gc_frame_t *out,
                   int timeout_ms) {
  long long deadline = now_ms() + gc_scaled(timeout_ms);
  size_t i;

  for (i = 0; i < c->nstash; i++) {
    gc_frame_t *f = &c->stash[i];
    int match = notification ? f->type == 0x30100101u
                             : f->id == id && f->type != 0x30100101u;
    if (match) {
      *out = *f;
      memmove(f, f + 1, (c->nstash - i - 1) * sizeof *f);
      c->nstash--;
      return 0;
    }
  }
  for (;;) {
    gc_frame_t f;
    size_t saved = c->nstash;
    int r;

    /* Bypass the stash: everything in it was checked above. */
    c->nstash = 0;
    r = gc_recv(c, &f,
                (int)(deadline - now_ms() > 0 ? deadline - now_ms() : 0));
    c->nstash = saved;
    if (r < 0) return r;
    if (notification ? f.type == 0x30100101u
                     : f.id == id && f.type != 0x30100101u) {
      *out = f;
      return 0;
    }
    CHECK(c->nstash < GC_MAX_STASH);
    c->stash[c->nstash++] = f;
  }
}

uint32_t gc_result(const gc_frame_t *f) {
  json_object *v = hcsb__json_get(f->json, "Result");
  CHECK(v != NULL);
  return (uint32_t)(int32_t)json_object_get_int64(v);
}

uint64_t gc_u64(const gc_frame_t *f, const char *key) {
  json_object *v = hcsb__json_get(f->json, key);
  if (v == NULL)
    hcsb_test_fail(__FILE__, __LINE__, "no %s in %s", key, f->body);
  return json_object_get_uint64(v);
}

const char *gc_str(const gc_frame_t *f, const char *key) {
  json_object *v = hcsb__json_get(f->json, key);
  return v != NULL ? json_object_get_string(v) : NULL;
}

int gc_has(const gc_frame_t *f, const char *key) {
  json_object *v = NULL;
  return f->json != NULL && json_object_object_get_ex(f->json, key, &v);
}

void gc_expect(gc_t *c, uint64_t id, uint32_t type, uint32_t hresult,
               gc_frame_t *out) {
  gc_frame_t f;
  int r = recv_id(c, id, 0, &f, IO_TIMEOUT_MS);

  if (r < 0)
    hcsb_test_fail(__FILE__, __LINE__, "no response to id %" PRIu64 " (%s)", id,
                   r == -EPIPE ? "EOF" : "timeout");
  if (f.type != type || f.json == NULL || gc_result(&f) != hresult)
    hcsb_test_fail(__FILE__, __LINE__,
                   "id %" PRIu64 ": type 0x%08" PRIx32
                   " body %s, wanted type "
                   "0x%08" PRIx32 " Result 0x%08" PRIx32,
                   id, f.type, f.body, type, hresult);
  if (out != NULL)
    *out = f;
  else
    gc_frame_free(&f);
}

void gc_expect_notification(gc_t *c, gc_frame_t *out, int timeout_ms) {
  int r = recv_id(c, 0, 1, out, timeout_ms);
  if (r < 0) hcsb_test_fail(__FILE__, __LINE__, "no notification");
  CHECK_U64(out->id, 0);
}

int gc_quiet(gc_t *c, int timeout_ms) {
  gc_frame_t f;

  if (c->nstash > 0) return 0;
  if (gc_recv(c, &f, timeout_ms) == -ETIMEDOUT) return 1;
  if (f.body != NULL) fprintf(stderr, "  unexpected frame: %s\n", f.body);
  gc_frame_free(&f);
  return 0;
}

void gc_negotiate(gc_t *c) {
  gc_sendf(c, 0x10100b01u, 1,
           "{\"ContainerId\":\"%s\",\"ActivityId\":\"%s\","
           "\"MinimumVersion\":4,\"MaximumVersion\":4}",
           GC_NULL_ID, GC_NULL_ID);
  gc_expect(c, 1, 0x20100b01u, 0, NULL);
}

int gc_listen(gc_t *c, uint32_t port) {
  struct sockaddr_un sa;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  char path[sizeof c->dir + 16];

  snprintf(path, sizeof path, "%s/%" PRIu32 ".sock", c->dir, port);
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  CHECK(fd >= 0);
  CHECK(strlen(path) < sizeof sa.sun_path);
  memcpy(sa.sun_path, path, strlen(path) + 1);
  CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
  CHECK(listen(fd, 4) == 0);
  return fd;
}

int gc_accept(int lfd, int timeout_ms) {
  struct pollfd p = {lfd, POLLIN, 0};
  int fd;

  if (poll(&p, 1, gc_scaled(timeout_ms)) != 1)
    hcsb_test_fail(__FILE__, __LINE__, "the guest did not dial");
  fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  CHECK(fd >= 0);
  return fd;
}

size_t gc_read_all(int fd, char *buf, size_t len, int timeout_ms) {
  long long deadline = now_ms() + gc_scaled(timeout_ms);
  size_t got = 0;

  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    long long left = deadline - now_ms();
    ssize_t n;

    if (left <= 0)
      hcsb_test_fail(__FILE__, __LINE__, "no EOF; got \"%.*s\"", (int)got, buf);
    if (poll(&p, 1, (int)left) <= 0) continue;
    n = read(fd, buf + got, len - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EIO) n = 0;
    CHECK(n >= 0);
    if (n == 0) break;
    got += (size_t)n;
    CHECK(got + 1 < len);
  }
  buf[got] = '\0';
  return got;
}

size_t gc_read_until(int fd, const char *needle, char *buf, size_t len,
                     int timeout_ms) {
  long long deadline = now_ms() + gc_scaled(timeout_ms);
  size_t got = 0;

  buf[0] = '\0';
  while (strstr(buf, needle) == NULL) {
    struct pollfd p = {fd, POLLIN, 0};
    long long left = deadline - now_ms();
    ssize_t n;

    if (left <= 0)
      hcsb_test_fail(__FILE__, __LINE__, "no \"%s\" in \"%s\"", needle, buf);
    if (poll(&p, 1, (int)left) <= 0) continue;
    n = read(fd, buf + got, len - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      hcsb_test_fail(__FILE__, __LINE__, "EOF before \"%s\" in \"%s\"", needle,
                     buf);
    got += (size_t)n;
    buf[got] = '\0';
    CHECK(got + 1 < len);
  }
  return got;
}

void gc_write(int fd, const char *s) {
  size_t len = strlen(s), off = 0;

  while (off < len) {
    ssize_t n = write(fd, s + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    CHECK(n > 0);
    off += (size_t)n;
  }
}

const char *gc_quote(const char *s) {
  static char bufs[4][8192];
  static int next;
  char *b = bufs[next++ & 3];
  hcsb__buf_t out = HCSB__BUF_INIT;

  CHECK(hcsb__json_put_string(&out, s, strlen(s)) == 0);
  CHECK(out.len < sizeof bufs[0]);
  memcpy(b, out.data, out.len);
  b[out.len] = '\0';
  hcsb__buf_free(&out);
  return b;
}

int gc_pid_gone(pid_t pid, int timeout_ms) {
  long long deadline = now_ms() + gc_scaled(timeout_ms);

  while (now_ms() < deadline) {
    if (kill(pid, 0) < 0 && errno == ESRCH) return 1;
    usleep(10000);
  }
  return 0;
}

static int is_zombie(pid_t pid) {
  char path[64], buf[512], *p;
  FILE *f;
  size_t n;

  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  f = fopen(path, "r");
  if (f == NULL) return 1; /* gone meanwhile */
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  p = strrchr(buf, ')');
  return p != NULL && p[1] == ' ' && p[2] == 'Z';
}

int gc_pid_dead(pid_t pid, int timeout_ms) {
  long long deadline = now_ms() + gc_scaled(timeout_ms);

  while (now_ms() < deadline) {
    if ((kill(pid, 0) < 0 && errno == ESRCH) || is_zombie(pid)) return 1;
    usleep(10000);
  }
  return 0;
}
