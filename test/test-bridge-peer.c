/* Scripted guest for the bridge tests; see test-bridge-peer.h. */
#include "test-bridge-peer.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *peer_thread(void *arg) {
  peer_t *p = arg;
  p->script(p);
  close(p->fd);
  return NULL;
}

void peer_start(peer_t *p, int fd, peer_script_fn script, void *arg) {
  if (p->gate[0] == 0 && p->gate[1] == 0) CHECK_EQ(pipe(p->gate), 0);
  p->fd = fd;
  p->script = script;
  p->arg = arg;
  CHECK_EQ(pthread_create(&p->thread, NULL, peer_thread, p), 0);
  p->started = 1;
}

void peer_join(peer_t *p) {
  if (!p->started) return;
  CHECK_EQ(pthread_join(p->thread, NULL), 0);
  p->started = 0;
  close(p->gate[0]);
  close(p->gate[1]);
  p->gate[0] = p->gate[1] = 0;
}

void peer_wait_gate(peer_t *p) {
  char c;
  while (read(p->gate[0], &c, 1) < 0 && errno == EINTR) {
  }
}

void peer_open_gate(peer_t *p) {
  if (p->started) CHECK_EQ(write(p->gate[1], "x", 1), 1);
}

static int read_full(int fd, void *buf, size_t len) {
  char *b = buf;
  while (len > 0) {
    ssize_t n = read(fd, b, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    b += n;
    len -= (size_t)n;
  }
  return 0;
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int peer_read(peer_t *p, pframe_t *f) {
  uint8_t h[16];
  memset(f, 0, sizeof *f);
  if (read_full(p->fd, h, sizeof h) != 0) return -1;
  f->type = get32(h);
  f->size = get32(h + 4);
  f->id = (uint64_t)get32(h + 8) | (uint64_t)get32(h + 12) << 32;
  CHECK(f->size >= 16);
  f->len = f->size - 16;
  f->body = malloc(f->len + 1);
  CHECK(f->body != NULL);
  if (read_full(p->fd, f->body, f->len) != 0) {
    free(f->body);
    f->body = NULL;
    return -1;
  }
  f->body[f->len] = '\0';
  return 0;
}

uint64_t peer_expect(peer_t *p, uint32_t type) {
  pframe_t f;
  CHECK_EQ(peer_read(p, &f), 0);
  CHECK_U64(f.type, type);
  uint64_t id = f.id;
  pframe_free(&f);
  return id;
}

void pframe_free(pframe_t *f) {
  free(f->body);
  f->body = NULL;
}

int peer_quiet(peer_t *p, int ms) {
  struct pollfd pfd = {p->fd, POLLIN, 0};
  int n;
  do n = poll(&pfd, 1, ms);
  while (n < 0 && errno == EINTR);
  return n == 0;
}

int peer_drain(peer_t *p) {
  int n = 0;
  pframe_t f;
  while (peer_read(p, &f) == 0) {
    pframe_free(&f);
    n++;
  }
  return n;
}

size_t peer_frame(char *out, uint32_t type, uint64_t id, const char *body) {
  size_t len = strlen(body);
  uint8_t *h = (uint8_t *)out;
  put32(h, type);
  put32(h + 4, (uint32_t)(16 + len));
  put32(h + 8, (uint32_t)id);
  put32(h + 12, (uint32_t)(id >> 32));
  memcpy(out + 16, body, len);
  return 16 + len;
}

void peer_send_raw(peer_t *p, const void *buf, size_t len) {
  const char *b = buf;
  while (len > 0) {
    ssize_t n = write(p->fd, b, len);
    if (n < 0 && errno == EINTR) continue;
    CHECK(n > 0);
    b += n;
    len -= (size_t)n;
  }
}

void peer_send(peer_t *p, uint32_t type, uint64_t id, const char *body) {
  size_t len = strlen(body);
  char *buf = malloc(16 + len);
  CHECK(buf != NULL);
  peer_send_raw(p, buf, peer_frame(buf, type, id, body));
  free(buf);
}

void peer_negotiate(peer_t *p) {
  pframe_t f;
  CHECK_EQ(peer_read(p, &f), 0);
  CHECK_U64(f.type, HCSB_MSG_NEGOTIATE_PROTOCOL);
  CHECK_U64(f.id, 1);
  CHECK(strstr(f.body, "\"MinimumVersion\":4") != NULL);
  CHECK(strstr(f.body, "\"MaximumVersion\":4") != NULL);
  pframe_free(&f);
  peer_send(p, HCSB_MSG_NEGOTIATE_PROTOCOL_RESPONSE, 1, PEER_NEGOTIATE_BODY);
}

/* ------------------------------------------------------------------------ */
/* Fixture */

int in_api;
static int completion_seq;

int api_call(hcsb_bridge_t *b, const hcsb_request_t *req, uint32_t timeout_ms,
             hcsb_call_cb cb, void *data, hcsb_call_t **callp) {
  in_api++;
  int rc = hcsb_bridge_call(b, req, timeout_ms, cb, data, callp);
  in_api--;
  return rc;
}

int api_cancel(hcsb_call_t *c) {
  in_api++;
  int rc = hcsb_call_cancel(c);
  in_api--;
  return rc;
}

static void on_closed(void *data) {
  fx_t *fx = data;
  CHECK(!in_api);
  fx->closed_n++;
}

void api_close(fx_t *fx) {
  in_api++;
  hcsb_bridge_close(fx->b, on_closed, fx);
  in_api--;
}

void rec_cb(void *data, int status, const hcsb_guest_error_t *gerr,
            const hcsb_response_t *resp) {
  rec_t *r = data;
  CHECK(!in_api);
  r->n++;
  r->status = status;
  r->order = ++completion_seq;
  if (resp != NULL) {
    r->id = resp->id;
    r->type = resp->type;
    r->result = resp->result;
    r->pid = resp->process_id;
  }
  if (gerr != NULL) {
    CHECK_EQ(status, HCSB_EGUEST);
    r->hresult = gerr->hresult;
    r->nrecords = gerr->nrecords;
    snprintf(r->msg, sizeof r->msg, "%s", gerr->message);
  }
  if (r->then != NULL) r->then(r);
}

hcsb_request_t req_start(const char *cid) {
  hcsb_request_t r;
  memset(&r, 0, sizeof r);
  r.type = HCSB_MSG_START;
  r.container_id = cid;
  return r;
}

hcsb_request_t req_exec(void) {
  hcsb_request_t r;
  memset(&r, 0, sizeof r);
  r.type = HCSB_MSG_EXECUTE_PROCESS;
  r.raw_body = "{}";
  r.raw_len = 2;
  return r;
}

static void on_ready(void *data, hcsb_bridge_t *b, int status,
                     const hcsb_guest_error_t *gerr) {
  fx_t *fx = data;
  CHECK(!in_api);
  CHECK(b == fx->b);
  fx->ready_n++;
  fx->ready_status = status;
  if (gerr != NULL) fx->ready_hresult = gerr->hresult;
  if (fx->on_ready != NULL) fx->on_ready(fx, status);
}

static void on_notify(void *data, hcsb_bridge_t *b,
                      const hcsb_notification_t *n) {
  fx_t *fx = data;
  CHECK(b == fx->b);
  fx->notify_n++;
  snprintf(fx->notify_cid, sizeof fx->notify_cid, "%s", n->container_id);
  fx->notify_kind = n->kind;
  if (fx->on_notify != NULL) fx->on_notify(fx);
}

static void on_disconnect(void *data, hcsb_bridge_t *b, int status) {
  fx_t *fx = data;
  CHECK(!in_api);
  CHECK(b == fx->b);
  fx->disconnect_n++;
  fx->disconnect_status = status;
}

static void on_log(void *data, hcsb_log_level_t level, const char *activity_id,
                   const char *msg) {
  fx_t *fx = data;
  fx->log_n++;
  if (fx->log_match[0] && strstr(msg, fx->log_match) != NULL) {
    fx->log_match_n++;
    snprintf(fx->log_activity, sizeof fx->log_activity, "%s",
             activity_id ? activity_id : "");
  }
  if (getenv("HCSB_TEST_VERBOSE"))
    fprintf(stderr, "  [%d] %s%s%s\n", (int)level,
            activity_id ? activity_id : "", activity_id ? " " : "", msg);
}

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  hcsb_test_fail(__FILE__, __LINE__, "watchdog: the loop made no progress");
}

void fx_setup(fx_t *fx, void *arg) {
  memset(fx, 0, sizeof *fx);
  completion_seq = 0;
  fx->arg = arg;
  fx->ready_status = 1; /* not yet */
  CHECK_EQ(uv_loop_init(&fx->loop), 0);
  CHECK_EQ(hcsb_bridge_new(&fx->loop, &fx->b), 0);
  hcsb_bridge_set_notify_cb(fx->b, on_notify, fx);
  hcsb_bridge_set_disconnect_cb(fx->b, on_disconnect, fx);
  hcsb_bridge_set_log(fx->b, on_log, fx, HCSB_LOG_TRACE);
  CHECK_EQ(uv_timer_init(&fx->loop, &fx->watchdog), 0);
  uint64_t ms = 20000 * (uint64_t)hcsb_test_timeout_scale(); /* valgrind */
  CHECK_EQ(uv_timer_start(&fx->watchdog, on_watchdog, ms, 0), 0);
}

int fx_init(fx_t *fx, peer_script_fn script, void *arg) {
  fx_setup(fx, arg);
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  peer_start(&fx->peer, sv[1], script, arg);
  return sv[0];
}

int fx_connect(fx_t *fx, const char *address) {
  in_api++;
  int rc = hcsb_bridge_connect(fx->b, address, on_ready, fx);
  in_api--;
  CHECK_EQ(fx->ready_n, 0); /* never inside the call */
  return rc;
}

void fx_open_fd(fx_t *fx, int fd) {
  in_api++;
  CHECK_EQ(hcsb_bridge_open_fd(fx->b, fd, on_ready, fx), 0);
  in_api--;
  CHECK_EQ(fx->ready_n, 0); /* never inside the call */
}

void fx_open(fx_t *fx, peer_script_fn script, void *arg) {
  fx_open_fd(fx, fx_init(fx, script, arg));
}

typedef struct until_s {
  const int *counter;
  int value;
} until_t;

/* Before libuv blocks, stop if the condition already holds: it may have
 * become true in this turn's timers, and the poll would then wait for an
 * unrelated event. */
static void until_check(uv_prepare_t *h) {
  until_t *u = h->data;
  if (*u->counter >= u->value) uv_stop(h->loop);
}

void run_loop_until(uv_loop_t *loop, const int *counter, int value) {
  uv_prepare_t h;
  until_t u = {counter, value};
  CHECK_EQ(uv_prepare_init(loop, &h), 0);
  h.data = &u;
  CHECK_EQ(uv_prepare_start(&h, until_check), 0);
  while (*counter < value) uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&h, NULL);
  uv_run(loop, UV_RUN_NOWAIT); /* lets the close finish: `h` is ours */
}

void fx_run_until(fx_t *fx, const int *counter, int value) {
  run_loop_until(&fx->loop, counter, value);
}

void fx_finish(fx_t *fx, int close) {
  if (close) api_close(fx);
  fx_run_until(fx, &fx->closed_n, 1);
  CHECK_EQ(fx->closed_n, 1);
  uv_close((uv_handle_t *)&fx->watchdog, NULL);
  CHECK_EQ(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
  peer_open_gate(&fx->peer); /* in case the script still waits */
  peer_join(&fx->peer);
  CHECK_EQ(fx->closed_n, 1);
  CHECK_EQ(uv_loop_close(&fx->loop), 0);
}
