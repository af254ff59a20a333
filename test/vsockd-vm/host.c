/* The host half of hcsb-vsockd's end-to-end check (test/vsockd-vm/run):
 * plain Unix sockets, the hybrid-vsock convention.
 *
 *   host echo-server SOCKET          accept one connection on SOCKET (the
 *                                    backend dials PATH_P), echo until EOF
 *   host connect PATH PORT BYTES     "CONNECT PORT\n" on PATH (retried
 *                                    while the guest is not listening yet),
 *                                    then send BYTES and expect them back
 *
 * Each prints one "HOST <mode> ok ..." or "HOST <mode> FAIL ..." line. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "echo.h"

static int unix_addr(const char *path, struct sockaddr_un *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa->sun_path) return -1;
  strcpy(sa->sun_path, path);
  return 0;
}

static int echo_server(const char *path) {
  struct sockaddr_un sa;
  unsigned char buf[65536];
  size_t total = 0;
  double first = 0, last = 0;
  int ls = socket(AF_UNIX, SOCK_STREAM, 0), fd;
  if (ls < 0 || unix_addr(path, &sa) != 0 ||
      bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 4) != 0) {
    printf("HOST echo-server FAIL listen %s: %s\n", path, strerror(errno));
    return 1;
  }
  fd = accept(ls, NULL, NULL);
  close(ls);
  unlink(path);
  if (fd < 0) {
    printf("HOST echo-server FAIL accept: %s\n", strerror(errno));
    return 1;
  }
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0) {
      printf("HOST echo-server FAIL read: %s\n", strerror(errno));
      return 1;
    }
    if (r == 0) break;
    if (total == 0) first = now_s();
    last = now_s();
    for (ssize_t off = 0; off < r;) {
      ssize_t w = write(fd, buf + off, (size_t)(r - off));
      if (w < 0) {
        printf("HOST echo-server FAIL write: %s\n", strerror(errno));
        return 1;
      }
      off += w;
    }
    total += (size_t)r;
  }
  close(fd);
  printf("HOST echo-server ok bytes=%zu seconds=%.3f MB/s=%.2f\n", total,
         last - first, last > first ? total / 1e6 / (last - first) : 0.0);
  return 0;
}

/* One attempt: the connected socket after "OK", or -1 to retry. */
static int try_connect(const char *path, unsigned port, char *ok,
                       size_t oklen) {
  struct sockaddr_un sa;
  char line[64];
  size_t n = 0;
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0 || unix_addr(path, &sa) != 0 ||
      connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  int len = snprintf(line, sizeof line, "CONNECT %u\n", port);
  if (write(fd, line, (size_t)len) != len) {
    close(fd);
    return -1;
  }
  while (n < sizeof line - 1) { /* byte by byte: data may follow the line */
    ssize_t r = read(fd, line + n, 1);
    if (r <= 0) break;
    if (line[n++] == '\n') {
      line[n] = 0;
      snprintf(ok, oklen, "%.*s", (int)(n - 1), line);
      return fd;
    }
  }
  close(fd);
  return -1;
}

static int connect_echo(const char *path, unsigned port, size_t total) {
  char ok[64];
  int fd = -1;
  double deadline = now_s() + 60, t0;

  while ((fd = try_connect(path, port, ok, sizeof ok)) < 0) {
    if (now_s() > deadline) {
      printf("HOST connect FAIL no OK from %s for port %u\n", path, port);
      return 1;
    }
    usleep(200000);
  }
  if (strncmp(ok, "OK ", 3) != 0) {
    printf("HOST connect FAIL reply \"%s\"\n", ok);
    return 1;
  }
  t0 = now_s();
  if (echo_exchange(fd, total, "HOST connect") != 0) return 1;
  close(fd);
  printf("HOST connect ok reply=\"%s\" bytes=%zu seconds=%.3f\n", ok, total,
         now_s() - t0);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 3 && strcmp(argv[1], "echo-server") == 0)
    return echo_server(argv[2]);
  if (argc == 5 && strcmp(argv[1], "connect") == 0)
    return connect_echo(argv[2], (unsigned)strtoul(argv[3], NULL, 10),
                        (size_t)strtoul(argv[4], NULL, 10));
  fprintf(stderr, "usage: host echo-server SOCKET | connect PATH PORT BYTES\n");
  return 2;
}
