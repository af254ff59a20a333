/* What both halves of test/vsockd-vm share: the byte pattern, a clock, and
 * the client side of an echo exchange (send `total` pattern bytes,
 * half-close, expect exactly them back, then EOF).  Failures print one
 * "<tag> FAIL ..." line. */
#ifndef HCSB_TEST_VSOCKD_VM_ECHO_H
#define HCSB_TEST_VSOCKD_VM_ECHO_H

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static unsigned char pattern(size_t i) {
  return (unsigned char)(i * 131u + (i >> 11));
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Non-blocking both ways, or a full buffer on each side deadlocks.
 * Returns 0 when all `total` bytes came back intact and then EOF. */
static int echo_exchange(int fd, size_t total, const char *tag) {
  unsigned char buf[65536];
  size_t sent = 0, got = 0;

  while (got < total) {
    struct pollfd pfd = {fd, POLLIN | (sent < total ? POLLOUT : 0), 0};
    if (poll(&pfd, 1, 30000) <= 0) {
      printf("%s FAIL stalled at sent=%zu got=%zu\n", tag, sent, got);
      return 1;
    }
    if (sent < total && (pfd.revents & POLLOUT)) {
      size_t n = total - sent < 16384 ? total - sent : 16384;
      for (size_t i = 0; i < n; i++) buf[i] = pattern(sent + i);
      ssize_t w = send(fd, buf, n, MSG_DONTWAIT);
      if (w < 0 && errno != EAGAIN) {
        printf("%s FAIL write: %s\n", tag, strerror(errno));
        return 1;
      }
      if (w > 0) sent += (size_t)w;
      if (sent == total) shutdown(fd, SHUT_WR);
    }
    if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0 && errno == EAGAIN) continue;
    if (r <= 0) {
      printf("%s FAIL read after %zu: %s\n", tag, got,
             r == 0 ? "EOF" : strerror(errno));
      return 1;
    }
    for (ssize_t i = 0; i < r; i++)
      if (buf[i] != pattern(got + (size_t)i)) {
        printf("%s FAIL byte %zu differs\n", tag, got + (size_t)i);
        return 1;
      }
    got += (size_t)r;
  }
  char extra;
  if (read(fd, &extra, 1) != 0) {
    printf("%s FAIL no EOF after %zu bytes\n", tag, got);
    return 1;
  }
  return 0;
}

#endif
