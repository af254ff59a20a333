/* Helpers for the fault-matrix tests (test-faults*.c): a scripted hostile
 * guest, recorded sessions split into frames, bridge and connection
 * fixtures, and a memory gauge.
 *
 * The hostile guest is a thread doing blocking I/O on its end of a
 * socketpair, so each test states in plain sequential code what the guest
 * does and in which order.  A CHECK failing in that thread aborts the
 * (forked) test, which the runner reports. */
#ifndef HCSB_TEST_FAULTS_H
#define HCSB_TEST_FAULTS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include <hcsbridge/conn.h>

#include "runner.h"

/* ------------------------------------------------------------------------ */
/* Scale: valgrind runs set HCSB_TEST_TIMEOUT_SCALE; work is cut down then,
 * never the behaviour being checked. */

unsigned faults_scale(void);
/* 1 under a timeout scale (valgrind) or AddressSanitizer. */
int faults_slow(void);
/* `plain` normally, `slow` when faults_slow(). */
size_t faults_pick(size_t plain, size_t slow);
/* A deadline in ms, stretched by the scale. */
unsigned faults_ms(unsigned ms);
double faults_now_ms(void);

/* 1 in threads that belong to the test rig (the hostile guest), or while
 * the rig allocates for itself: the allocation-failure injector never
 * fails those allocations.  Volatile: compilers assume malloc() reads no
 * user memory and would otherwise drop a store made just before it. */
extern __thread volatile int faults_rig_thread;

/* ------------------------------------------------------------------------ */
/* Running a loop */

typedef struct faults_deadline_s {
  uv_timer_t *timer; /* freed by its close callback */
  int expired;
} faults_deadline_t;

void faults_deadline_start(faults_deadline_t *d, uv_loop_t *loop, unsigned ms);
void faults_deadline_stop(faults_deadline_t *d);

/* Runs `loop` one turn at a time until `cond` holds; fails after `ms`
 * (scaled). */
#define RUN_UNTIL_MS(loop, cond, ms)                                         \
  do {                                                                       \
    faults_deadline_t fdl_;                                                  \
    faults_deadline_start(&fdl_, (loop), faults_ms(ms));                     \
    while (!(cond) && !fdl_.expired) uv_run((loop), UV_RUN_ONCE);            \
    faults_deadline_stop(&fdl_);                                             \
    if (!(cond))                                                             \
      hcsb_test_fail(__FILE__, __LINE__, "timed out waiting for %s", #cond); \
  } while (0)
#define RUN_UNTIL(loop, cond) RUN_UNTIL_MS(loop, cond, 10000)

/* Runs the loop until nothing is left in it, then checks uv_loop_close()
 * succeeds: every handle the library opened has been closed. */
void faults_loop_finish(uv_loop_t *loop);

/* ------------------------------------------------------------------------ */
/* Frames */

typedef struct fframe_s {
  uint32_t type;
  uint32_t size;
  uint64_t id;
  char *body; /* NUL-terminated copy (peer reads) */
  size_t len;
} fframe_t;

/* Writes a 16-byte header. */
void faults_hdr(uint8_t out[16], uint32_t type, uint32_t size, uint64_t id);
/* Appends header + body to a malloc'd buffer, returns the new length. */
size_t faults_frame_append(uint8_t **buf, size_t len, uint32_t type,
                           uint64_t id, const void *body, size_t body_len);

/* A recorded byte stream (test/data/transcripts/raw/<name>.bin) split into
 * its frames. */
typedef struct ftrans_s {
  uint8_t *data;
  size_t len;
  size_t n;
  struct {
    uint32_t type;
    uint64_t id;
    size_t off, end; /* the frame is data[off, end) */
    const char *body;
    size_t body_len;
  } f[64];
} ftrans_t;

void ftrans_load(ftrans_t *t, const char *raw_name);
void ftrans_free(ftrans_t *t);

/* The Linux GCS's NegotiateProtocol answer body, as recorded. */
const char *faults_negotiate_body(void);

#define FAULTS_OK_BODY \
  "{\"Result\":0,\"ActivityId\":\"00000000-0000-0000-0000-000000000000\"}"

/* ------------------------------------------------------------------------ */
/* The hostile guest */

typedef struct fpeer_s fpeer_t;
typedef void (*fpeer_fn)(fpeer_t *p);

struct fpeer_s {
  int fd;
  pthread_t thread;
  fpeer_fn script;
  void *arg;
  int started;
  int gate[2];
  char stdio_dir[200]; /* where relay listeners are: <dir>/<port>.sock */
};

/* Runs `script` in a thread on `fd`; the thread closes it at the end. */
void fpeer_start(fpeer_t *p, int fd, fpeer_fn script, void *arg);
void fpeer_join(fpeer_t *p);

/* Reads one frame (0), or -1 on EOF/error before a whole frame. */
int fpeer_read(fpeer_t *p, fframe_t *f);
/* Reads one frame, checks its type, returns its ID. */
uint64_t fpeer_expect(fpeer_t *p, uint32_t type);
void fframe_free(fframe_t *f);
/* Reads frames until EOF; returns how many. */
size_t fpeer_drain(fpeer_t *p);

void fpeer_write(fpeer_t *p, const void *buf, size_t len);
void fpeer_send(fpeer_t *p, uint32_t type, uint64_t id, const char *body);
/* Sends a header claiming `size` followed by exactly `len` body bytes. */
void fpeer_send_lying(fpeer_t *p, uint32_t type, uint32_t size, uint64_t id,
                      const void *body, size_t len);
/* Writes `len` bytes `chunk` at a time, sleeping `usec` between chunks. */
void fpeer_trickle(fpeer_t *p, const void *buf, size_t len, size_t chunk,
                   unsigned usec);
/* No more bytes from the guest (the host reads EOF); reading goes on. */
void fpeer_shutdown(fpeer_t *p);

/* Answers NegotiateProtocol (must be the first frame) with the recording. */
void fpeer_negotiate(fpeer_t *p);

/* Blocks the script until the test opens the gate (once per open). */
void fpeer_wait_gate(fpeer_t *p);
void fpeer_open_gate(fpeer_t *p);

/* Dials the host's relay listener for `port` (Unix socket in stdio_dir);
 * returns the fd or -errno. */
int fpeer_dial(fpeer_t *p, uint32_t port);

/* ------------------------------------------------------------------------ */
/* Bridge fixture: a loop, a bridge on one end of a socketpair (open_fd),
 * the hostile guest on the other. */

typedef struct fbr_s fbr_t;
struct fbr_s {
  uv_loop_t loop;
  uv_loop_t *lp; /* &loop, or another fixture's loop (fbr_init_on) */
  hcsb_bridge_t *b;
  fpeer_t peer;
  int host_fd, guest_fd;
  int ready_n, ready_status;
  int disc_n, disc_status;
  int closed_n;
  int notify_n;
  char notify_cid[64];
  char notify_type[32];
  void (*on_ready)(fbr_t *f, int status);
  void (*on_notify)(fbr_t *f, const hcsb_notification_t *n);
  void *arg;
};

/* Sets up loop and bridge; `setup` (may be NULL) runs before open_fd. */
void fbr_open(fbr_t *f, fpeer_fn script, void *arg, void (*setup)(fbr_t *f));
/* The same in steps, for a guest side written by the test itself:
 * fbr_init returns the guest's end of the socketpair (closed by
 * fbr_finish unless a script took it), fbr_start opens the bridge. */
int fbr_init(fbr_t *f, void *arg);
void fbr_start(fbr_t *f);
/* The same with the bridge on another fixture's loop (fbr_finish then
 * leaves that loop open). */
int fbr_init_on(fbr_t *f, uv_loop_t *loop, void *arg);
void fbr_open_on(fbr_t *f, uv_loop_t *loop, fpeer_fn script, void *arg,
                 void (*setup)(fbr_t *f));
/* Closes the bridge (once), waits for close_cb, the guest, an empty loop. */
void fbr_finish(fbr_t *f);

/* What one call's callback saw. */
typedef struct fcall_s {
  int n;
  int status;
  unsigned order; /* completion order across all calls of a test */
  uint32_t resp_type, hresult;
  uint64_t id;
  size_t msg_len;
  size_t props_len;
  uint32_t pid, exit_code;
  int has_exit_code;
  void (*then)(struct fcall_s *c);
  void *arg;
} fcall_t;

extern unsigned faults_order;
/* Set around library calls made by tests: a callback that finds it set ran
 * inside the call that started it. */
extern int faults_in_api;
void fcall_cb(void *data, int status, const hcsb_guest_error_t *gerr,
              const hcsb_response_t *resp);
/* hcsb_bridge_call with fcall_cb; returns the library's result. */
int fcall(hcsb_bridge_t *b, const hcsb_request_t *req, uint32_t timeout_ms,
          fcall_t *c, hcsb_call_t **callp);
/* A request of `type` with whatever its encoder requires. */
hcsb_request_t faults_req(uint32_t type);

/* ------------------------------------------------------------------------ */
/* Connection fixture: hcsb_conn_open on "fd://N?stdio=DIR", the hostile
 * guest on the other end, relay listeners in DIR. */

typedef struct fconn_s {
  uv_loop_t loop;
  hcsb_conn_t *conn;
  fpeer_t peer;
  int open_n, open_status;
  int lost_n, lost_status;
  int closed_n;
  char dir[200];
  void (*on_open)(struct fconn_s *f, int status);
  void *arg;
} fconn_t;

/* `o` may be NULL (defaults, short timeouts); its address is replaced.
 * `on_open` (may be NULL) runs inside the open callback. */
void fconn_open(fconn_t *f, fpeer_fn script, void *arg,
                const hcsb_conn_options_t *o,
                void (*on_open)(fconn_t *f, int status));
/* Runs until the open callback, which must report `status`. */
void fconn_wait_open(fconn_t *f, int status);
void fconn_finish(fconn_t *f);

/* Simple completion records for the conn API. */
typedef struct fdone_s {
  int n, status;
  uint32_t hresult;
} fdone_t;
void fdone_cb(void *data, int status, const hcsb_guest_error_t *gerr);
void fclosed_cb(void *data); /* (*(int *)data)++ */

/* ------------------------------------------------------------------------ */
/* Memory: bytes the C allocator has handed out and not taken back (the
 * allocator's own books, or ASan's). */
size_t faults_heap_bytes(void);

#endif /* HCSB_TEST_FAULTS_H */
