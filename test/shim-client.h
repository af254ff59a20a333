/* A blocking ttrpc peer for the shim's tests: connects to a Unix socket,
 * sends request frames, reads response frames with a time limit.  Test
 * code only (fails the test through CHECK on local errors). */
#ifndef HCSB_TEST_SHIM_CLIENT_H
#define HCSB_TEST_SHIM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* A connected socket, or -errno (connect failed). */
int shim_client_connect(const char *path);

/* Writes all of buf (fails the test on error). */
void shim_client_write(int fd, const void *buf, size_t len);
/* The same, returning 0 or -errno (a peer that may have closed). */
int shim_client_try_write(int fd, const void *buf, size_t len);

/* Sends one request frame. */
void shim_client_call(int fd, uint32_t stream, const char *service,
                      const char *method, const ProtobufCMessage *msg);

typedef struct shim_reply_s {
  uint32_t stream;
  uint8_t type;
  int code;
  char message[1100];
  uint8_t *payload; /* malloc'd, NULL when empty */
  size_t payload_len;
} shim_reply_t;

/* Reads one frame within timeout_ms (scaled by HCSB_TEST_TIMEOUT_SCALE)
 * and decodes its Response.  1 on a frame, 0 on EOF, -ETIMEDOUT. */
int shim_client_read(int fd, int timeout_ms, shim_reply_t *out);
void shim_reply_free(shim_reply_t *r);

/* 1 when the peer closes within timeout_ms (data before the close is
 * skipped), else 0. */
int shim_client_wait_eof(int fd, int timeout_ms);

/* HCSB_TEST_TIMEOUT_SCALE, at least 1. */
int shim_test_scale(void);

#endif
