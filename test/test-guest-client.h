/* A small synchronous bridge client for driving hcsb-guest in tests: the
 * emulator runs with a socketpair as its stdin/stdout, frames go through
 * the protocol core's header codec and decoder, every wait is bounded by
 * poll() timeouts. */
#ifndef HCSB_TEST_GUEST_CLIENT_H
#define HCSB_TEST_GUEST_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "proto/proto.h"

#define GC_NULL_ID "00000000-0000-0000-0000-000000000000"
#define GC_MAX_STASH 256

typedef struct gc_frame_s {
  uint32_t type;
  uint64_t id;
  char *body; /* NUL-terminated copy */
  size_t len;
  json_object *json; /* parsed body (NULL if not JSON) */
} gc_frame_t;

typedef struct gc_s {
  pid_t pid;     /* the emulator */
  int fd;        /* our end of its stdin/stdout */
  int err_fd;    /* its stderr when captured, else -1 */
  char dir[512]; /* --stdio-dir */
  hcsb__decoder_t dec;
  uint8_t in[65536];
  size_t in_off, in_len;
  gc_frame_t
      stash[GC_MAX_STASH]; /* frames received while looking for another */
  size_t nstash;
  int eof;
} gc_t;

/* Starts `hcsb-guest --stdio-dir <tmpdir> [extra...]`.  capture_stderr keeps
 * its stderr for gc_stderr(). */
void gc_start(gc_t *c, const char *const *extra, int capture_stderr);
/* Wraps an emulator started some other way: its pid, our bridge fd and its
 * stdio directory. */
void gc_adopt(gc_t *c, pid_t pid, int fd, const char *dir);
/* Closes our end, waits (bounded) for the emulator; returns its raw wait
 * status. */
int gc_stop(gc_t *c);
/* Reads what the emulator wrote to stderr so far (capture mode). */
size_t gc_stderr(gc_t *c, char *buf, size_t len, int timeout_ms);

void gc_send_raw(gc_t *c, uint32_t type, uint64_t id, const void *body,
                 size_t len);
void gc_sendf(gc_t *c, uint32_t type, uint64_t id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Next frame (stashed ones first).  0, -ETIMEDOUT or -EPIPE (EOF). */
int gc_recv(gc_t *c, gc_frame_t *f, int timeout_ms);
/* The frame with this ID (others are stashed); fails the test on timeout
 * or when the type or Result differ. */
void gc_expect(gc_t *c, uint64_t id, uint32_t type, uint32_t hresult,
               gc_frame_t *out);
/* Like gc_expect for a notification (ID 0, type 0x30100101). */
void gc_expect_notification(gc_t *c, gc_frame_t *out, int timeout_ms);
/* 1 when no frame arrives within timeout_ms. */
int gc_quiet(gc_t *c, int timeout_ms);
void gc_frame_free(gc_frame_t *f);

uint32_t gc_result(const gc_frame_t *f);
uint64_t gc_u64(const gc_frame_t *f, const char *key);
const char *gc_str(const gc_frame_t *f, const char *key);
int gc_has(const gc_frame_t *f, const char *key);

/* NegotiateProtocol 4..4 with ID 1, asserting success. */
void gc_negotiate(gc_t *c);

/* Listens on <dir>/<port>.sock; returns the listening fd. */
int gc_listen(gc_t *c, uint32_t port);
/* Accepts one connection within timeout_ms (test fails otherwise). */
int gc_accept(int lfd, int timeout_ms);
/* Reads until EOF into buf (NUL-terminated); returns the length. */
size_t gc_read_all(int fd, char *buf, size_t len, int timeout_ms);
/* Reads until `needle` appears; returns the length read. */
size_t gc_read_until(int fd, const char *needle, char *buf, size_t len,
                     int timeout_ms);
void gc_write(int fd, const char *s);

/* JSON-quotes `s` into a static rotating buffer (for ProcessParameters). */
const char *gc_quote(const char *s);

/* ms times HCSB_TEST_TIMEOUT_SCALE (valgrind runs set it). */
int gc_scaled(int ms);

/* 1 when `pid` no longer exists (polls up to timeout_ms): killed and
 * reaped. */
int gc_pid_gone(pid_t pid, int timeout_ms);
/* 1 when `pid` is gone or a zombie: dead, whoever will reap it. */
int gc_pid_dead(pid_t pid, int timeout_ms);

#endif
