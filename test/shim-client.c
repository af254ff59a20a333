/* A blocking ttrpc peer for the shim's tests (shim-client.h). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"
#include "shim-client.h"
#include "shim/ttrpc.h"

int shim_test_scale(void) {
  return (int)hcsb_test_timeout_scale();
}

int shim_client_connect(const char *path) {
  struct sockaddr_un sa;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  CHECK(fd >= 0);
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  CHECK(strlen(path) < sizeof(sa.sun_path));
  strcpy(sa.sun_path, path);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

int shim_client_try_write(int fd, const void *buf, size_t len) {
  const char *p = buf;

  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? -errno : -EPIPE;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

void shim_client_write(int fd, const void *buf, size_t len) {
  CHECK_EQ(shim_client_try_write(fd, buf, len), 0);
}

void shim_client_call(int fd, uint32_t stream, const char *service,
                      const char *method, const ProtobufCMessage *msg) {
  uint8_t *buf;
  size_t len;

  CHECK_EQ(hcsb__ttrpc_request_frame(stream, service, method, msg, 0, NULL, 0,
                                     &buf, &len),
           0);
  shim_client_write(fd, buf, len);
  free(buf);
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads exactly len bytes by the deadline: 1, 0 on EOF at the start,
 * -ETIMEDOUT; EOF in the middle fails the test. */
static int read_full(int fd, uint8_t *p, size_t len, long long deadline) {
  size_t got = 0;

  while (got < len) {
    struct pollfd pfd = {fd, POLLIN, 0};
    long long left = deadline - now_ms();
    ssize_t n;

    if (left <= 0) return -ETIMEDOUT;
    if (poll(&pfd, 1, (int)left) == 0) return -ETIMEDOUT;
    n = read(fd, p + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ECONNRESET) n = 0;
    CHECK(n >= 0);
    if (n == 0) {
      CHECK(got == 0);
      return 0;
    }
    got += (size_t)n;
  }
  return 1;
}

int shim_client_read(int fd, int timeout_ms, shim_reply_t *out) {
  long long deadline = now_ms() + (long long)timeout_ms * shim_test_scale();
  uint8_t hdr[HCSB__TTRPC_HEADER_LEN];
  hcsb__ttrpc_header_t h;
  hcsb__pb_budget_t b;
  Ttrpc__Response *resp;
  uint8_t *payload;
  int r;

  memset(out, 0, sizeof(*out));
  r = read_full(fd, hdr, sizeof(hdr), deadline);
  if (r <= 0) return r;
  hcsb__ttrpc_header_get(hdr, &h);
  CHECK(h.length <= HCSB__TTRPC_MAX_PAYLOAD);
  payload = malloc(h.length ? h.length : 1);
  CHECK(payload != NULL);
  r = read_full(fd, payload, h.length, deadline);
  CHECK(r == 1 || h.length == 0);
  out->stream = h.stream_id;
  out->type = h.type;
  if (h.type == HCSB__TTRPC_TYPE_RESPONSE) {
    hcsb__pb_budget_init(&b, 0);
    CHECK_EQ(hcsb__ttrpc_response_unpack(payload, h.length, &b, &resp), 0);
    if (resp->status != NULL) {
      out->code = resp->status->code;
      snprintf(out->message, sizeof(out->message), "%s", resp->status->message);
    }
    if (resp->payload.len > 0) {
      out->payload = malloc(resp->payload.len);
      CHECK(out->payload != NULL);
      memcpy(out->payload, resp->payload.data, resp->payload.len);
      out->payload_len = resp->payload.len;
    }
    protobuf_c_message_free_unpacked(&resp->base, &b.allocator);
    free(payload);
  } else {
    /* A request (a fake containerd reads these): the raw payload. */
    out->payload = payload;
    out->payload_len = h.length;
  }
  return 1;
}

void shim_reply_free(shim_reply_t *r) {
  free(r->payload);
  r->payload = NULL;
}

int shim_client_wait_eof(int fd, int timeout_ms) {
  long long deadline = now_ms() + (long long)timeout_ms * shim_test_scale();
  char buf[4096];

  for (;;) {
    struct pollfd pfd = {fd, POLLIN, 0};
    long long left = deadline - now_ms();
    ssize_t n;

    if (left <= 0 || poll(&pfd, 1, (int)left) == 0) return 0;
    n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 1;
  }
}
