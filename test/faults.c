/* Helpers for the fault-matrix tests: see faults.h. */
#include "faults.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define FAULTS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FAULTS_ASAN 1
#endif
#endif

__thread volatile int faults_rig_thread;
unsigned faults_order;
int faults_in_api;

/* ------------------------------------------------------------------------ */
/* Scale and time */

unsigned faults_scale(void) {
  return hcsb_test_timeout_scale();
}

int faults_slow(void) {
#ifdef FAULTS_ASAN
  return 1;
#else
  return faults_scale() > 1;
#endif
}

size_t faults_pick(size_t plain, size_t slow) {
  return faults_slow() ? slow : plain;
}

unsigned faults_ms(unsigned ms) {
  return ms * faults_scale();
}

double faults_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------------ */
/* Loops */

static void deadline_cb(uv_timer_t *t) {
  ((faults_deadline_t *)t->data)->expired = 1;
}

static void free_handle(uv_handle_t *h) {
  free(h);
}

void faults_deadline_start(faults_deadline_t *d, uv_loop_t *loop, unsigned ms) {
  int rig = faults_rig_thread;
  d->expired = 0;
  faults_rig_thread = 1; /* the rig's own: never an injected failure */
  d->timer = malloc(sizeof *d->timer);
  faults_rig_thread = rig;
  CHECK(d->timer != NULL);
  uv_timer_init(loop, d->timer);
  d->timer->data = d;
  uv_timer_start(d->timer, deadline_cb, ms, 0);
}

/* Not running the loop here: the caller sees the state its condition saw. */
void faults_deadline_stop(faults_deadline_t *d) {
  uv_close((uv_handle_t *)d->timer, free_handle);
  d->timer = NULL;
}

void faults_loop_finish(uv_loop_t *loop) {
  double until = faults_now_ms() + faults_ms(5000);
  /* Handles still open here must all be closing; a spawned child being
   * reaped may need a few turns. */
  while (uv_loop_alive(loop) && faults_now_ms() < until) {
    uv_run(loop, UV_RUN_NOWAIT);
    if (uv_loop_alive(loop)) usleep(1000);
  }
  if (uv_loop_alive(loop)) uv_print_all_handles(loop, stderr);
  CHECK_EQ(uv_loop_close(loop), 0);
}

/* ------------------------------------------------------------------------ */
/* Frames */

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) {
  return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void faults_hdr(uint8_t out[16], uint32_t type, uint32_t size, uint64_t id) {
  put32(out, type);
  put32(out + 4, size);
  put32(out + 8, (uint32_t)id);
  put32(out + 12, (uint32_t)(id >> 32));
}

size_t faults_frame_append(uint8_t **buf, size_t len, uint32_t type,
                           uint64_t id, const void *body, size_t body_len) {
  uint8_t *n = realloc(*buf, len + 16 + body_len);
  CHECK(n != NULL);
  faults_hdr(n + len, type, (uint32_t)(16 + body_len), id);
  if (body_len) memcpy(n + len + 16, body, body_len);
  *buf = n;
  return len + 16 + body_len;
}

void ftrans_load(ftrans_t *t, const char *raw_name) {
  char rel[256];
  snprintf(rel, sizeof rel, "transcripts/raw/%s.bin", raw_name);
  memset(t, 0, sizeof *t);
  t->data = hcsb_test_read_file(hcsb_test_data_path(rel), &t->len);
  CHECK(t->len > 0);
  size_t off = 0;
  while (off < t->len) {
    CHECK(t->len - off >= 16);
    CHECK(t->n < sizeof t->f / sizeof t->f[0]);
    uint32_t size = get32(t->data + off + 4);
    CHECK(size >= 16 && off + size <= t->len);
    t->f[t->n].type = get32(t->data + off);
    t->f[t->n].id = get64(t->data + off + 8);
    t->f[t->n].off = off;
    t->f[t->n].end = off + size;
    t->f[t->n].body = (const char *)t->data + off + 16;
    t->f[t->n].body_len = size - 16;
    t->n++;
    off += size;
  }
}

void ftrans_free(ftrans_t *t) {
  free(t->data);
  t->data = NULL;
}

const char *faults_negotiate_body(void) {
  static char body[1024];
  if (body[0] == '\0') {
    ftrans_t t;
    ftrans_load(&t, "01_negotiate.gcs-to-host");
    CHECK_EQ(t.f[0].type, HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE);
    CHECK(t.f[0].body_len < sizeof body);
    memcpy(body, t.f[0].body, t.f[0].body_len);
    body[t.f[0].body_len] = '\0';
    ftrans_free(&t);
  }
  return body;
}

/* ------------------------------------------------------------------------ */
/* The hostile guest */

static void *peer_main(void *arg) {
  fpeer_t *p = arg;
  faults_rig_thread = 1;
  p->script(p);
  close(p->fd);
  return NULL;
}

void fpeer_start(fpeer_t *p, int fd, fpeer_fn script, void *arg) {
  p->fd = fd;
  p->script = script;
  p->arg = arg;
  CHECK_EQ(pipe(p->gate), 0);
  CHECK_EQ(pthread_create(&p->thread, NULL, peer_main, p), 0);
  p->started = 1;
}

void fpeer_join(fpeer_t *p) {
  if (!p->started) return;
  CHECK_EQ(pthread_join(p->thread, NULL), 0);
  close(p->gate[0]);
  close(p->gate[1]);
  p->started = 0;
}

static int read_full(int fd, void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, (char *)buf + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    got += (size_t)n;
  }
  return 0;
}

int fpeer_read(fpeer_t *p, fframe_t *f) {
  uint8_t h[16];
  memset(f, 0, sizeof *f);
  if (read_full(p->fd, h, 16) != 0) return -1;
  f->type = get32(h);
  f->size = get32(h + 4);
  f->id = get64(h + 8);
  CHECK(f->size >= 16);
  f->len = f->size - 16;
  f->body = malloc(f->len + 1);
  CHECK(f->body != NULL);
  if (read_full(p->fd, f->body, f->len) != 0) {
    fframe_free(f);
    return -1;
  }
  f->body[f->len] = '\0';
  return 0;
}

void fframe_free(fframe_t *f) {
  free(f->body);
  f->body = NULL;
}

uint64_t fpeer_expect(fpeer_t *p, uint32_t type) {
  fframe_t f;
  if (fpeer_read(p, &f) != 0)
    hcsb_test_fail(__FILE__, __LINE__, "guest: EOF, expected 0x%08X", type);
  if (f.type != type)
    hcsb_test_fail(__FILE__, __LINE__, "guest: got 0x%08X, expected 0x%08X",
                   f.type, type);
  fframe_free(&f);
  return f.id;
}

size_t fpeer_drain(fpeer_t *p) {
  size_t n = 0;
  fframe_t f;
  while (fpeer_read(p, &f) == 0) {
    fframe_free(&f);
    n++;
  }
  return n;
}

void fpeer_write(fpeer_t *p, const void *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(p->fd, (const char *)buf + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      hcsb_test_fail(__FILE__, __LINE__, "guest: write: %s", strerror(errno));
    done += (size_t)n;
  }
}

void fpeer_send_lying(fpeer_t *p, uint32_t type, uint32_t size, uint64_t id,
                      const void *body, size_t len) {
  uint8_t *buf = malloc(16 + len);
  CHECK(buf != NULL);
  faults_hdr(buf, type, size, id);
  if (len) memcpy(buf + 16, body, len);
  fpeer_write(p, buf, 16 + len); /* one write: the frame arrives whole */
  free(buf);
}

void fpeer_send(fpeer_t *p, uint32_t type, uint64_t id, const char *body) {
  size_t len = strlen(body);
  fpeer_send_lying(p, type, (uint32_t)(16 + len), id, body, len);
}

void fpeer_trickle(fpeer_t *p, const void *buf, size_t len, size_t chunk,
                   unsigned usec) {
  for (size_t off = 0; off < len; off += chunk) {
    fpeer_write(p, (const char *)buf + off,
                len - off < chunk ? len - off : chunk);
    if (usec) usleep(usec);
  }
}

void fpeer_shutdown(fpeer_t *p) {
  shutdown(p->fd, SHUT_WR);
}

void fpeer_negotiate(fpeer_t *p) {
  uint64_t id = fpeer_expect(p, HCSB_MSG_NEGOTIATE_PROTOCOL);
  fpeer_send(p, HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE, id,
             faults_negotiate_body());
}

void fpeer_wait_gate(fpeer_t *p) {
  char c;
  CHECK_EQ(read(p->gate[0], &c, 1), 1);
}

void fpeer_open_gate(fpeer_t *p) {
  CHECK_EQ(write(p->gate[1], "g", 1), 1);
}

int fpeer_dial(fpeer_t *p, uint32_t port) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  char path[sizeof p->stdio_dir + 16];
  int n =
      snprintf(path, sizeof path, "%s/%u.sock", p->stdio_dir, (unsigned)port);
  CHECK(n > 0 && (size_t)n < sizeof sa.sun_path);
  memcpy(sa.sun_path, path, (size_t)n + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

/* ------------------------------------------------------------------------ */
/* Bridge fixture */

static void fbr_ready(void *data, hcsb_bridge_t *b, int status,
                      const hcsb_guest_error_t *gerr) {
  fbr_t *f = data;
  (void)b;
  (void)gerr;
  CHECK(!faults_in_api);
  f->ready_n++;
  f->ready_status = status;
  if (f->on_ready != NULL) f->on_ready(f, status);
}

static void fbr_disc(void *data, hcsb_bridge_t *b, int status) {
  fbr_t *f = data;
  (void)b;
  CHECK(!faults_in_api);
  f->disc_n++;
  f->disc_status = status;
}

static void fbr_notify(void *data, hcsb_bridge_t *b,
                       const hcsb_notification_t *n) {
  fbr_t *f = data;
  (void)b;
  f->notify_n++;
  snprintf(f->notify_cid, sizeof f->notify_cid, "%s", n->container_id);
  snprintf(f->notify_type, sizeof f->notify_type, "%s", n->type);
  if (f->on_notify != NULL) f->on_notify(f, n);
}

static void fbr_closed(void *data) {
  ((fbr_t *)data)->closed_n++;
}

int fbr_init(fbr_t *f, void *arg) {
  return fbr_init_on(f, NULL, arg);
}

int fbr_init_on(fbr_t *f, uv_loop_t *shared, void *arg) {
  int sv[2];
  memset(f, 0, sizeof *f);
  f->arg = arg;
  if (shared != NULL) {
    f->lp = shared;
  } else {
    CHECK_EQ(uv_loop_init(&f->loop), 0);
    f->lp = &f->loop;
  }
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  f->host_fd = sv[0];
  f->guest_fd = sv[1];
  CHECK_EQ(hcsb_bridge_new(f->lp, &f->b), 0);
  hcsb_bridge_set_disconnect_cb(f->b, fbr_disc, f);
  hcsb_bridge_set_notify_cb(f->b, fbr_notify, f);
  return f->guest_fd;
}

void fbr_start(fbr_t *f) {
  faults_in_api = 1;
  CHECK_EQ(hcsb_bridge_open_fd(f->b, f->host_fd, fbr_ready, f), 0);
  faults_in_api = 0;
}

void fbr_open(fbr_t *f, fpeer_fn script, void *arg, void (*setup)(fbr_t *f)) {
  fbr_open_on(f, NULL, script, arg, setup);
}

void fbr_open_on(fbr_t *f, uv_loop_t *loop, fpeer_fn script, void *arg,
                 void (*setup)(fbr_t *f)) {
  int fd = fbr_init_on(f, loop, arg);
  if (setup != NULL) setup(f);
  fbr_start(f);
  f->guest_fd = -1; /* the script's now */
  fpeer_start(&f->peer, fd, script, arg);
}

void fbr_finish(fbr_t *f) {
  faults_in_api = 1;
  hcsb_bridge_close(f->b, fbr_closed, f);
  faults_in_api = 0;
  RUN_UNTIL(f->lp, f->closed_n > 0);
  CHECK_EQ(f->closed_n, 1);
  fpeer_join(&f->peer);
  if (f->guest_fd >= 0) close(f->guest_fd);
  f->guest_fd = -1;
  if (f->lp == &f->loop) faults_loop_finish(&f->loop);
  CHECK_EQ(f->closed_n, 1);
}

void fcall_cb(void *data, int status, const hcsb_guest_error_t *gerr,
              const hcsb_response_t *resp) {
  fcall_t *c = data;
  CHECK(!faults_in_api);
  c->n++;
  c->status = status;
  c->order = ++faults_order;
  c->hresult = gerr != NULL ? gerr->hresult : 0;
  c->msg_len = gerr != NULL ? strlen(gerr->message) : 0;
  if (status == HCSB_EGUEST) CHECK(gerr != NULL);
  if (resp != NULL) {
    c->resp_type = resp->type;
    c->id = resp->id;
    c->props_len = resp->properties_len;
    c->pid = resp->process_id;
    c->exit_code = resp->exit_code;
    c->has_exit_code = resp->has_exit_code;
  }
  if (c->then != NULL) c->then(c);
}

int fcall(hcsb_bridge_t *b, const hcsb_request_t *req, uint32_t timeout_ms,
          fcall_t *c, hcsb_call_t **callp) {
  faults_in_api = 1;
  int r = hcsb_bridge_call(b, req, timeout_ms, fcall_cb, c, callp);
  faults_in_api = 0;
  return r;
}

hcsb_request_t faults_req(uint32_t type) {
  hcsb_request_t q;
  memset(&q, 0, sizeof q);
  q.type = type;
  q.container_id = "faults-c1";
  switch (type) {
    case HCSB_MSG_CREATE:
      q.u.create.config = "{}";
      break;
    case HCSB_MSG_EXECUTE_PROCESS:
      q.u.execute.process_parameters = "{}";
      break;
    case HCSB_MSG_WAIT_FOR_PROCESS:
      q.u.wait.pid = 7;
      q.u.wait.timeout_ms = HCSB_INFINITE_WAIT;
      break;
    case HCSB_MSG_SIGNAL_PROCESS:
      q.u.signal.pid = 7;
      q.u.signal.signal = 15;
      break;
    case HCSB_MSG_RESIZE_CONSOLE:
      q.u.resize.pid = 7;
      q.u.resize.height = 24;
      q.u.resize.width = 80;
      break;
    case HCSB_MSG_GET_PROPERTIES:
      q.u.get_properties.query = "{\"PropertyTypes\":[\"ProcessList\"]}";
      break;
    case HCSB_MSG_MODIFY_SETTINGS:
      q.u.modify.request =
          "{\"ResourceType\":\"Memory\",\"RequestType\":\"Update\"}";
      break;
    default:
      break;
  }
  return q;
}

/* ------------------------------------------------------------------------ */
/* Connection fixture */

static void fconn_opened(void *data, hcsb_conn_t *conn, int status,
                         const hcsb_guest_error_t *gerr) {
  fconn_t *f = data;
  (void)conn;
  (void)gerr;
  CHECK(!faults_in_api);
  f->open_n++;
  f->open_status = status;
  if (f->on_open != NULL) f->on_open(f, status);
}

static void fconn_lost(void *data, hcsb_conn_t *conn, int status) {
  fconn_t *f = data;
  (void)conn;
  f->lost_n++;
  f->lost_status = status;
}

static void fconn_log(void *data, hcsb_log_level_t level, const char *aid,
                      const char *msg) {
  (void)data;
  (void)aid;
  if (getenv("HCSB_TEST_VERBOSE") != NULL)
    fprintf(stderr, "  [lib %d] %s\n", (int)level, msg);
}

void fconn_open(fconn_t *f, fpeer_fn script, void *arg,
                const hcsb_conn_options_t *o,
                void (*on_open)(fconn_t *f, int status)) {
  hcsb_conn_options_t opts;
  char address[300];
  int sv[2];

  memset(f, 0, sizeof *f);
  f->arg = arg;
  f->on_open = on_open;
  CHECK_EQ(uv_loop_init(&f->loop), 0);
  snprintf(f->dir, sizeof f->dir, "%s", hcsb_test_tmpdir());
  snprintf(f->peer.stdio_dir, sizeof f->peer.stdio_dir, "%s", f->dir);
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  if (o != NULL) {
    opts = *o;
  } else {
    hcsb_conn_options_init(&opts);
    opts.connect_timeout_ms = faults_ms(10000);
    opts.stdio_accept_timeout_ms = faults_ms(10000);
  }
  opts.log_cb = fconn_log;
  opts.log_level =
      getenv("HCSB_TEST_VERBOSE") ? HCSB_LOG_TRACE : HCSB_LOG_ERROR;
  snprintf(address, sizeof address, "fd://%d?stdio=%s", sv[0], f->dir);
  opts.address = address;
  faults_in_api = 1;
  CHECK_EQ(hcsb_conn_open(&f->loop, &opts, fconn_opened, f, &f->conn), 0);
  faults_in_api = 0;
  hcsb_conn_set_lost_cb(f->conn, fconn_lost, f);
  fpeer_start(&f->peer, sv[1], script, arg);
}

void fconn_wait_open(fconn_t *f, int status) {
  RUN_UNTIL(&f->loop, f->open_n > 0);
  CHECK_EQ(f->open_n, 1);
  CHECK_EQ(f->open_status, status);
}

void fconn_finish(fconn_t *f) {
  if (f->conn != NULL) {
    faults_in_api = 1;
    hcsb_conn_close(f->conn, fclosed_cb, &f->closed_n);
    faults_in_api = 0;
    RUN_UNTIL(&f->loop, f->closed_n > 0);
  }
  fpeer_join(&f->peer);
  faults_loop_finish(&f->loop);
  if (f->conn != NULL) CHECK_EQ(f->closed_n, 1);
}

void fdone_cb(void *data, int status, const hcsb_guest_error_t *gerr) {
  fdone_t *d = data;
  CHECK(!faults_in_api);
  d->n++;
  d->status = status;
  d->hresult = gerr != NULL ? gerr->hresult : 0;
}

void fclosed_cb(void *data) {
  (*(int *)data)++;
}

/* ------------------------------------------------------------------------ */
/* Memory */

#ifdef FAULTS_ASAN
size_t __sanitizer_get_current_allocated_bytes(void);
size_t faults_heap_bytes(void) {
  return __sanitizer_get_current_allocated_bytes();
}
#else
size_t faults_heap_bytes(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}
#endif
