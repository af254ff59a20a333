/* Fault matrix: allocation failures.  A small scenario (open a bridge or a
 * connection on a socketpair, a GetProperties and a WaitForProcess,
 * close) runs once for every N from 1 to the number of allocations a
 * clean run makes, with the Nth failing.  Every public call must return
 * -ENOMEM or succeed; every callback of an accepted call must run exactly
 * once with a result, -ENOMEM or a connection-loss status; and after the
 * close the live allocations must be back where they were.
 *
 * The injector replaces malloc & co. in this binary and forwards to
 * glibc's.  It cannot work where something else owns malloc: under ASan
 * (compiled out) and under valgrind (detected at run time); the injection
 * tests are then left out of the list, not counted as passed.
 *
 * The guest side runs on the same loop from static buffers, so the only
 * allocations counted are the library's (and libuv's and json-c's on its
 * behalf); the rig marks its own with faults_rig_thread. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "faults.h"

#if defined(__SANITIZE_ADDRESS__)
#define FA_DISABLED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FA_DISABLED 1
#endif
#endif

/* ------------------------------------------------------------------------ */
/* The injector */

static atomic_long fa_live; /* blocks allocated and not freed */
static long fa_counted;     /* allocations seen while armed */
static long fa_fail_at;     /* fail the Nth of them (0: none) */
static long fa_injected;
static int fa_armed;
static int fa_owns_malloc; /* counts are meaningful (see fa_active) */

#ifndef FA_DISABLED
/* Exported even though the build hides symbols by default: the shared
 * libraries (libuv, json-c, libc itself) must resolve to these too. */
#define FA_EXPORT __attribute__((visibility("default")))
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static int fa_fail(void) {
  if (!fa_armed || faults_rig_thread) return 0;
  if (++fa_counted != fa_fail_at) return 0;
  fa_injected++;
  errno = ENOMEM;
  return 1;
}

static void *fa_track(void *p) {
  if (p != NULL) atomic_fetch_add(&fa_live, 1);
  return p;
}

FA_EXPORT void *malloc(size_t n) {
  return fa_fail() ? NULL : fa_track(__libc_malloc(n));
}

FA_EXPORT void *calloc(size_t a, size_t b) {
  return fa_fail() ? NULL : fa_track(__libc_calloc(a, b));
}

FA_EXPORT void *realloc(void *old, size_t n) {
  if (old == NULL) return malloc(n);
  if (n == 0) {
    free(old);
    return NULL;
  }
  if (fa_fail()) return NULL; /* `old` untouched, as realloc promises */
  return __libc_realloc(old, n);
}

FA_EXPORT void free(void *p) {
  if (p == NULL) return;
  atomic_fetch_sub(&fa_live, 1);
  __libc_free(p);
}

FA_EXPORT void *memalign(size_t align, size_t n) {
  return fa_fail() ? NULL : fa_track(__libc_memalign(align, n));
}

FA_EXPORT void *aligned_alloc(size_t align, size_t n) {
  return memalign(align, n);
}

FA_EXPORT int posix_memalign(void **out, size_t align, size_t n) {
  void *p = memalign(align, n);
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}
#endif

/* json-c 0.16 does not check strdup() of object keys in
 * json_tokener_parse_ex() and crashes on the NULL (strlen in
 * json_object_object_add_ex): a bug in the dependency no caller can guard
 * against.  Those key copies are therefore never failed; every other
 * allocation json-c makes while parsing still is. */
#ifndef FA_DISABLED
static int fa_in_json_parse;

FA_EXPORT char *strdup(const char *s) {
  size_t n = strlen(s) + 1;
  int rig = faults_rig_thread;
  if (fa_in_json_parse) faults_rig_thread = 1;
  char *p = malloc(n);
  faults_rig_thread = rig;
  if (p != NULL) memcpy(p, s, n);
  return p;
}

typedef json_object *(*parse_ex_fn)(json_tokener *, const char *, int);

FA_EXPORT json_object *json_tokener_parse_ex(json_tokener *tok, const char *str,
                                             int len) {
  static parse_ex_fn real;
  if (real == NULL) {
    *(void **)&real = dlsym(RTLD_NEXT, "json_tokener_parse_ex");
    CHECK(real != NULL);
  }
  fa_in_json_parse++;
  json_object *o = real(tok, str, len);
  fa_in_json_parse--;
  return o;
}
#endif

/* The injector is in charge here (not ASan's or valgrind's malloc). */
static int fa_active(void) {
#ifdef FA_DISABLED
  return 0;
#else
  void *(*volatile m)(size_t) = malloc;
  long before = atomic_load(&fa_live);
  void *p = m(16);
  long after = atomic_load(&fa_live);
  free(p);
  return after == before + 1;
#endif
}

static void fa_arm(long n) {
  fa_counted = 0;
  fa_injected = 0;
  fa_fail_at = n;
  fa_armed = 1;
}

static void fa_disarm(void) {
  fa_armed = 0;
}

/* ------------------------------------------------------------------------ */
/* The guest: answers on the same loop, from static buffers. */

typedef struct guest_s {
  uv_poll_t poll;
  int fd;
  uint8_t in[1 << 16];
  size_t have;
  int eof;
} guest_t;

static void guest_reply(guest_t *g, uint32_t type, uint64_t id,
                        const char *body) {
  uint8_t out[1024];
  size_t n = strlen(body);
  CHECK(n + 16 <= sizeof out);
  faults_hdr(out, hcsb_msg_response_type(type), (uint32_t)(16 + n), id);
  memcpy(out + 16, body, n);
  /* Small, and the socket buffer is large: all or nothing. */
  if (write(g->fd, out, 16 + n) != (ssize_t)(16 + n)) g->eof = 1;
}

static void guest_frame(guest_t *g, uint32_t type, uint64_t id) {
  switch (type) {
    case HCSB_MSG_NEGOTIATE_PROTOCOL:
      guest_reply(g, type, id, faults_negotiate_body());
      break;
    case HCSB_MSG_GET_PROPERTIES:
      guest_reply(g, type, id,
                  "{\"Result\":0,\"Properties\":\"{\\\"ProcessList\\\":[{"
                  "\\\"ProcessId\\\":7,\\\"ImageName\\\":\\\"sh\\\"}]}\"}");
      break;
    case HCSB_MSG_WAIT_FOR_PROCESS:
      guest_reply(g, type, id, "{\"Result\":0,\"ExitCode\":3}");
      break;
    default:
      guest_reply(g, type, id, FAULTS_OK_BODY);
  }
}

static void guest_readable(uv_poll_t *h, int status, int events) {
  guest_t *g = h->data;
  int rig = faults_rig_thread;
  (void)events;
  faults_rig_thread = 1;
  for (;;) {
    ssize_t n =
        status < 0 ? -1 : read(g->fd, g->in + g->have, sizeof g->in - g->have);
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {
      g->eof = 1;
      uv_poll_stop(h);
      break;
    }
    g->have += (size_t)n;
    while (g->have >= 16) {
      uint32_t type = (uint32_t)g->in[0] | (uint32_t)g->in[1] << 8 |
                      (uint32_t)g->in[2] << 16 | (uint32_t)g->in[3] << 24;
      uint32_t size = (uint32_t)g->in[4] | (uint32_t)g->in[5] << 8 |
                      (uint32_t)g->in[6] << 16 | (uint32_t)g->in[7] << 24;
      uint64_t id = 0;
      for (int i = 7; i >= 0; i--) id = id << 8 | g->in[8 + i];
      CHECK(size >= 16 && size <= sizeof g->in);
      if (g->have < size) break;
      guest_frame(g, type, id);
      memmove(g->in, g->in + size, g->have - size);
      g->have -= size;
    }
  }
  faults_rig_thread = rig;
}

/* Returns the host's end of a fresh socketpair. */
static int guest_start(guest_t *g, uv_loop_t *loop) {
  int sv[2];
  faults_rig_thread = 1;
  memset(g, 0, sizeof *g);
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  g->fd = sv[1];
  CHECK_EQ(fcntl(g->fd, F_SETFL, O_NONBLOCK), 0);
  CHECK_EQ(uv_poll_init(loop, &g->poll, g->fd), 0);
  g->poll.data = g;
  CHECK_EQ(uv_poll_start(&g->poll, UV_READABLE, guest_readable), 0);
  faults_rig_thread = 0;
  return sv[0];
}

static void guest_stop(guest_t *g) {
  faults_rig_thread = 1;
  uv_close((uv_handle_t *)&g->poll, NULL);
  faults_rig_thread = 0;
}

/* ------------------------------------------------------------------------ */
/* Bridge scenario */

static int is_loss(int status) {
  return status == -ECONNRESET || status == -ENOTCONN;
}

typedef struct brun_s {
  int ready_n, ready_status;
  fcall_t props, wait;
  int props_started, wait_started;
  int closed;
} brun_t;

static void b_ready(void *data, hcsb_bridge_t *b, int status,
                    const hcsb_guest_error_t *gerr) {
  brun_t *r = data;
  (void)b;
  (void)gerr;
  CHECK(!faults_in_api);
  r->ready_n++;
  r->ready_status = status;
}

/* One run with the Nth allocation failing; returns the allocations it saw. */
static long bridge_run(long n) {
  uv_loop_t loop;
  guest_t g;
  brun_t r;
  hcsb_bridge_t *b = NULL;
  long live0 = atomic_load(&fa_live);

  memset(&r, 0, sizeof r);
  faults_rig_thread = 1;
  CHECK_EQ(uv_loop_init(&loop), 0);
  faults_rig_thread = 0;
  int fd = guest_start(&g, &loop);
  fa_arm(n);
  int rc = hcsb_bridge_new(&loop, &b);
  CHECK(rc == 0 || rc == -ENOMEM);
  if (rc == 0) {
    faults_in_api = 1;
    rc = hcsb_bridge_open_fd(b, fd, b_ready, &r);
    faults_in_api = 0;
    CHECK(rc == 0 || rc == -ENOMEM);
    if (rc != 0) {
      CHECK(fcntl(fd, F_GETFD) != -1); /* still the caller's */
      close(fd);
    }
    int opened = rc == 0;
    hcsb_request_t q = faults_req(HCSB_MSG_GET_PROPERTIES);
    rc = fcall(b, &q, 0, &r.props, NULL);
    CHECK(rc == 0 || rc == -ENOMEM);
    r.props_started = rc == 0;
    q = faults_req(HCSB_MSG_WAIT_FOR_PROCESS);
    rc = fcall(b, &q, 5000, &r.wait, NULL);
    CHECK(rc == 0 || rc == -ENOMEM);
    r.wait_started = rc == 0;
    /* A bridge that could not be opened is still new: its calls wait for a
     * negotiation that never comes, and the close cancels them. */
    if (opened) RUN_UNTIL_MS(&loop, r.ready_n == 1, 5000);
    if (opened)
      RUN_UNTIL_MS(&loop,
                   r.props.n == r.props_started && r.wait.n == r.wait_started,
                   5000);
    faults_in_api = 1;
    if (!opened) hcsb_bridge_close(b, fclosed_cb, &r.closed);
    faults_in_api = 0;
    if (!opened) {
      RUN_UNTIL_MS(&loop, r.closed == 1, 5000);
      CHECK(r.props.n == r.props_started && r.wait.n == r.wait_started);
      CHECK(!r.props_started || r.props.status == -ECANCELED);
      CHECK(!r.wait_started || r.wait.status == -ECANCELED);
      CHECK_EQ(r.ready_n, 0);
    }
    if (opened) {
      CHECK(r.ready_status == 0 || r.ready_status == -ENOMEM ||
            is_loss(r.ready_status));
    }
    if (opened && r.props_started) {
      CHECK(r.props.status == 0 || r.props.status == -ENOMEM ||
            is_loss(r.props.status));
      if (r.props.status == 0) CHECK_EQ(r.props.props_len, 50);
    }
    if (opened && r.wait_started) {
      CHECK(r.wait.status == 0 || r.wait.status == -ENOMEM ||
            is_loss(r.wait.status));
      if (r.wait.status == 0)
        CHECK(r.wait.has_exit_code && r.wait.exit_code == 3);
    }
    if (opened) { /* (the other one is closed and freed already) */
      faults_in_api = 1;
      hcsb_bridge_close(b, fclosed_cb, &r.closed);
      faults_in_api = 0;
      RUN_UNTIL_MS(&loop, r.closed == 1, 5000);
    }
  } else {
    close(fd);
  }
  fa_disarm();
  guest_stop(&g);
  faults_loop_finish(&loop);
  close(g.fd);
  /* Exactly once, whatever failed. */
  CHECK(r.ready_n <= 1 && r.props.n <= 1 && r.wait.n <= 1 && r.closed <= 1);
  /* (Where valgrind owns malloc it does the leak accounting itself.) */
  if (fa_owns_malloc && atomic_load(&fa_live) != live0)
    hcsb_test_fail(__FILE__, __LINE__, "N=%ld: %ld blocks leaked", n,
                   atomic_load(&fa_live) - live0);
  return fa_counted;
}

static void sweep(const char *what, long (*run)(long)) {
  run(0); /* warm-up: one-time allocations of the libraries */
  run(0);
  long total = run(0);
  long n, failures = 0;
  CHECK(total > 0);
  for (n = 1; n <= total + 1; n++) {
    long seen = run(n);
    failures += fa_injected;
    if (seen < n) break; /* the run ended before reaching the Nth */
  }
  fprintf(stderr,
          "  %s: %ld allocations in a clean run, %ld runs with one failing\n",
          what, total, failures);
  CHECK(failures >= total - 1);
}

static void test_alloc_failures_bridge(void) {
  sweep("bridge", bridge_run);
}

/* ------------------------------------------------------------------------ */
/* Connection scenario: hcsb_conn_open on fd://, a container's process list,
 * a process attached by PID and waited for, then every handle closed. */

typedef struct crun_s {
  hcsb_conn_t *conn;
  hcsb_container_t *c;
  hcsb_process_t *p;
  int open_n, open_status;
  int props_n, props_status;
  size_t nprocs;
  uint32_t pid0;
  int wait_n, wait_status;
  uint32_t code;
  int closed;
} crun_t;

static void c_opened(void *data, hcsb_conn_t *conn, int status,
                     const hcsb_guest_error_t *gerr) {
  crun_t *r = data;
  (void)conn;
  (void)gerr;
  r->open_n++;
  r->open_status = status;
}

static void c_props(void *data, int status, const hcsb_guest_error_t *gerr,
                    const hcsb_properties_t *props) {
  crun_t *r = data;
  (void)gerr;
  r->props_n++;
  r->props_status = status;
  if (status == 0) {
    r->nprocs = props->nprocesses;
    r->pid0 = props->nprocesses ? props->processes[0].process_id : 0;
  }
}

static void c_waited(void *data, hcsb_process_t *p, int status, uint32_t code) {
  crun_t *r = data;
  (void)p;
  r->wait_n++;
  r->wait_status = status;
  r->code = code;
}

static long conn_run(long n) {
  uv_loop_t loop;
  guest_t g;
  crun_t r;
  hcsb_conn_options_t o;
  char address[64];
  int props_started = 0, wait_started = 0, closes = 0;
  long live0 = atomic_load(&fa_live);

  memset(&r, 0, sizeof r);
  faults_rig_thread = 1;
  CHECK_EQ(uv_loop_init(&loop), 0);
  faults_rig_thread = 0;
  int fd = guest_start(&g, &loop);
  hcsb_conn_options_init(&o);
  snprintf(address, sizeof address, "fd://%d", fd);
  o.address = address;
  fa_arm(n);
  int rc = hcsb_conn_open(&loop, &o, c_opened, &r, &r.conn);
  CHECK(rc == 0 || rc == -ENOMEM);
  if (rc != 0) {
    CHECK(fcntl(fd, F_GETFD) != -1); /* the descriptor is still ours */
    close(fd);
  } else {
    RUN_UNTIL_MS(&loop, r.open_n == 1, 5000);
    CHECK(r.open_status == 0 || r.open_status == -ENOMEM ||
          is_loss(r.open_status));
    rc = hcsb_conn_open_container(r.conn, "c1", &r.c);
    CHECK(rc == 0 || rc == -ENOMEM);
    if (rc == 0) {
      rc = hcsb_container_process_list(r.c, NULL, c_props, &r);
      CHECK(rc == 0 || rc == -ENOMEM);
      props_started = rc == 0;
      rc = hcsb_container_open_process(r.c, 7, &r.p);
      CHECK(rc == 0 || rc == -ENOMEM);
      if (rc == 0) {
        rc = hcsb_process_wait(r.p, 0, c_waited, &r);
        CHECK(rc == 0 || rc == -ENOMEM);
        wait_started = rc == 0;
      }
    }
    RUN_UNTIL_MS(&loop, r.props_n == props_started && r.wait_n == wait_started,
                 5000);
    if (props_started) {
      CHECK(r.props_status == 0 || r.props_status == -ENOMEM ||
            is_loss(r.props_status));
      if (r.props_status == 0) CHECK(r.nprocs == 1 && r.pid0 == 7);
    }
    if (wait_started) {
      CHECK(r.wait_status == 0 || r.wait_status == -ENOMEM ||
            is_loss(r.wait_status));
      if (r.wait_status == 0) CHECK_EQ(r.code, 3);
    }
    if (r.p != NULL) hcsb_process_close(r.p, fclosed_cb, &closes);
    if (r.c != NULL) hcsb_container_close(r.c, fclosed_cb, &closes);
    hcsb_conn_close(r.conn, fclosed_cb, &r.closed);
    RUN_UNTIL_MS(
        &loop, r.closed == 1 && closes == (r.p != NULL) + (r.c != NULL), 5000);
  }
  fa_disarm();
  guest_stop(&g);
  faults_loop_finish(&loop);
  close(g.fd);
  CHECK(r.open_n <= 1 && r.props_n <= 1 && r.wait_n <= 1 && r.closed <= 1);
  /* (Where valgrind owns malloc it does the leak accounting itself.) */
  if (fa_owns_malloc && atomic_load(&fa_live) != live0)
    hcsb_test_fail(__FILE__, __LINE__, "N=%ld: %ld blocks leaked", n,
                   atomic_load(&fa_live) - live0);
  return fa_counted;
}

static void test_alloc_failures_conn(void) {
  sweep("connection", conn_run);
}

/* Whatever owns malloc, the scenarios themselves must pass clean. */
static void test_alloc_scenarios_clean(void) {
  bridge_run(0);
  conn_run(0);
}

static const hcsb_test_t injection_tests[] = {
    TEST_ENTRY(alloc_scenarios_clean),
    TEST_ENTRY_T(alloc_failures_bridge, 120),
    TEST_ENTRY_T(alloc_failures_conn, 120),
};

int main(int argc, char **argv) {
  size_t n = sizeof injection_tests / sizeof injection_tests[0];
  fa_owns_malloc = fa_active();
  if (!fa_owns_malloc) {
    fprintf(stderr,
            "  allocation-failure injection unavailable (ASan or "
            "valgrind owns malloc): injection tests left out\n");
    n = 1;
  }
  return hcsb_test_main(argc, argv, injection_tests, n);
}
