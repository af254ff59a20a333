/* Runs INSIDE the test VM (test/vsockd-vm/run), linked statically: the
 * guest half of hcsb-vsockd's end-to-end check.  Never run it on a host:
 * it connects AF_VSOCK sockets to CID 2.
 *
 *   probe echo-client PORT BYTES   connect to the host, send BYTES of a
 *                                  pattern, half-close, expect them back
 *   probe refused PORT             connect to a host port nobody serves;
 *                                  the backend must answer with RST
 *   probe echo-server PORT         accept one host connection, echo it;
 *                                  reports the host -> guest rate seen here
 *
 * Each prints one "PROBE <mode> ok ..." or "PROBE <mode> FAIL ..." line. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "echo.h"

static int dial(unsigned port) {
  struct sockaddr_vm sa;
  int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (fd < 0) return -errno;
  memset(&sa, 0, sizeof sa);
  sa.svm_family = AF_VSOCK;
  sa.svm_cid = VMADDR_CID_HOST;
  sa.svm_port = port;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  return fd;
}

static int echo_client(unsigned port, size_t total) {
  double t0 = now_s();
  int fd = dial(port);
  if (fd < 0) {
    printf("PROBE echo-client FAIL connect: %s\n", strerror(-fd));
    return 1;
  }
  if (echo_exchange(fd, total, "PROBE echo-client") != 0) return 1;
  close(fd);
  printf("PROBE echo-client ok bytes=%zu seconds=%.3f\n", total, now_s() - t0);
  return 0;
}

static int refused(unsigned port) {
  int fd = dial(port);
  if (fd >= 0) {
    printf("PROBE refused FAIL connected\n");
    return 1;
  }
  if (fd != -ECONNRESET) { /* what an RST during connect() gives */
    printf("PROBE refused FAIL %s\n", strerror(-fd));
    return 1;
  }
  printf("PROBE refused ok %s\n", strerror(-fd));
  return 0;
}

static int echo_server(unsigned port) {
  struct sockaddr_vm sa;
  unsigned char buf[65536];
  size_t total = 0;
  double first = 0, last = 0;
  int ls = socket(AF_VSOCK, SOCK_STREAM, 0), fd;
  memset(&sa, 0, sizeof sa);
  sa.svm_family = AF_VSOCK;
  sa.svm_cid = VMADDR_CID_ANY;
  sa.svm_port = port;
  if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen(ls, 4) != 0) {
    printf("PROBE echo-server FAIL listen: %s\n", strerror(errno));
    return 1;
  }
  printf("PROBE echo-server listening %u\n", port);
  fflush(stdout);
  if ((fd = accept(ls, NULL, NULL)) < 0) {
    printf("PROBE echo-server FAIL accept: %s\n", strerror(errno));
    return 1;
  }
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0) {
      printf("PROBE echo-server FAIL read: %s\n", strerror(errno));
      return 1;
    }
    if (r == 0) break;
    if (total == 0) first = now_s();
    last = now_s();
    for (ssize_t off = 0; off < r;) {
      ssize_t w = write(fd, buf + off, (size_t)(r - off));
      if (w < 0) {
        printf("PROBE echo-server FAIL write: %s\n", strerror(errno));
        return 1;
      }
      off += w;
    }
    total += (size_t)r;
  }
  close(fd);
  printf("PROBE echo-server ok bytes=%zu seconds=%.3f MB/s=%.2f\n", total,
         last - first, last > first ? total / 1e6 / (last - first) : 0.0);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  alarm(60); /* a hung check must not hold the VM until its hard limit */
  if (argc == 4 && strcmp(argv[1], "echo-client") == 0)
    return echo_client((unsigned)strtoul(argv[2], NULL, 0),
                       (size_t)strtoul(argv[3], NULL, 0));
  if (argc == 3 && strcmp(argv[1], "refused") == 0)
    return refused((unsigned)strtoul(argv[2], NULL, 0));
  if (argc == 3 && strcmp(argv[1], "echo-server") == 0)
    return echo_server((unsigned)strtoul(argv[2], NULL, 0));
  fprintf(stderr,
          "usage: probe echo-client PORT BYTES | refused PORT | "
          "echo-server PORT\n");
  return 2;
}
