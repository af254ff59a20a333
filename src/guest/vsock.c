/* The vsock transport of the guest: what the real GCS does inside a utility
 * VM (protocol.md §2.1, §2.2, §9.3).  The bridge is dialled on CID 2
 * (the host) port 0x40000000, and every stdio relay on CID 2 and the port
 * the host announced in VsockStdioRelaySettings.
 *
 * Safety: this code connects AF_VSOCK sockets.  It only ever runs inside a
 * guest VM (where CID 2 is the VMM's device backend); the unit tests
 * exercise the option parsing and address building only. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "guest/guest.h"

int hcsb__gvsock_parse_u32(const char *s, uint32_t *out) {
  unsigned long long v;
  char *end;

  /* strtoull would accept a sign and leading blanks: a typo, not a port. */
  if (s == NULL || !((s[0] >= '0' && s[0] <= '9'))) return -EINVAL;
  errno = 0;
  v = strtoull(s, &end, 0);
  if (errno != 0 || *end != '\0' || v > UINT32_MAX) return -EINVAL;
  *out = (uint32_t)v;
  return 0;
}

int hcsb__gvsock_addr(uint32_t cid, uint32_t port, struct sockaddr_vm *sa) {
  /* VMADDR_CID_ANY / VMADDR_PORT_ANY are only meaningful for bind(). */
  if (cid == VMADDR_CID_ANY || port == VMADDR_PORT_ANY) return -EINVAL;
  memset(sa, 0, sizeof *sa);
  sa->svm_family = AF_VSOCK;
  sa->svm_cid = cid;
  sa->svm_port = port;
  return 0;
}

int hcsb__gvsock_dial_start(uint32_t cid, uint32_t port, int *in_progress) {
  struct sockaddr_vm sa;
  int fd, err;

  *in_progress = 0;
  if ((err = hcsb__gvsock_addr(cid, port, &sa)) < 0) return err;
  fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
  if (errno == EINPROGRESS) {
    *in_progress = 1;
    return fd;
  }
  err = -errno;
  close(fd);
  return err;
}

int hcsb__gvsock_dial_check(int fd) {
  struct pollfd p = {fd, POLLOUT, 0};
  socklen_t len = sizeof(int);
  int err = 0, n;

  do n = poll(&p, 1, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  if (n == 0) return -EINPROGRESS;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
  return -err;
}

/* Blocking, before the loop runs.  The host may not listen yet (the rig
 * boots the VM before its client starts): a refused or reset dial is
 * retried every HCSB__G_DIAL_INTERVAL_MS until `timeout_ms` passed, like
 * the GCS connection deadline on the host side (protocol.md §2.3). */
int hcsb__gvsock_dial_bridge(uint32_t cid, uint32_t port, uint32_t timeout_ms) {
  struct timespec pause = {0, HCSB__G_DIAL_INTERVAL_MS * 1000 * 1000};
  struct timespec t0, t;
  int fd, err, pending;

  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    fd = hcsb__gvsock_dial_start(cid, port, &pending);
    if (fd >= 0 && pending) {
      struct pollfd p = {fd, POLLOUT, 0};
      int n;
      /* The kernel's own connect timeout (2 s) ends a silent peer. */
      do n = poll(&p, 1, -1);
      while (n < 0 && errno == EINTR);
      err = n < 0 ? -errno : hcsb__gvsock_dial_check(fd);
      if (err == 0) return fd;
      close(fd);
      fd = err;
    }
    if (fd >= 0) return fd;
    err = fd;
    if (err != -ECONNRESET && err != -ECONNREFUSED && err != -ETIMEDOUT &&
        err != -ENODEV && err != -EAGAIN)
      return err;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((int64_t)(t.tv_sec - t0.tv_sec) * 1000 +
            (t.tv_nsec - t0.tv_nsec) / 1000000 >=
        (int64_t)timeout_ms)
      return err;
    nanosleep(&pause, NULL);
  }
}
