/* hcsb-vsockd as a process, driven the way QEMU drives it: this test is
 * the vhost-user frontend (messages and fds over the Unix socket, guest
 * memory in a shared memfd, kick and call eventfds) and plays the guest
 * on the rings itself, while plain Unix sockets are the host side.  No
 * VM, no AF_VSOCK. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner.h"
#include "vsockd-fake.h"

#define WAIT_MS 10000

typedef struct {
  pid_t pid;
  int vfd, mfd;
  int kick[2], call[2];
  uint8_t *ram;
  fake_vm_t vm;
  uint16_t rx_seen;
  char dir[256], vhost[300], uds[300], log[300];
} fe_t;

static void unix_addr(struct sockaddr_un *sa, const char *path) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  CHECK(strlen(path) < sizeof sa->sun_path);
  strcpy(sa->sun_path, path);
}

static int unix_connect(const char *path) {
  struct sockaddr_un sa;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  unix_addr(&sa, path);
  CHECK(fd >= 0);
  CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  return fd;
}

static int unix_listen(const char *path) {
  struct sockaddr_un sa;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  unix_addr(&sa, path);
  CHECK(fd >= 0);
  CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  CHECK_EQ(listen(fd, 4), 0);
  return fd;
}

static void wait_readable(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  CHECK_EQ(poll(&p, 1, WAIT_MS), 1);
}

/* Reads exactly n bytes (the test fails on EOF or timeout). */
static void read_all(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    wait_readable(fd);
    ssize_t r = read(fd, (uint8_t *)buf + got, n - got);
    CHECK(r > 0);
    got += (size_t)r;
  }
}

static int exit_status(pid_t pid) {
  int st;
  for (int i = 0; i < WAIT_MS / 10; i++) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  return -1;
}

/* Starts the backend (with one more option, if any) and waits for its
 * --ready-fd newline. */
static void start_with(fe_t *f, const char *option) {
  int ready[2];
  char fdarg[16];
  memset(f, 0, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "%s", hcsb_test_tmpdir());
  snprintf(f->vhost, sizeof f->vhost, "%s/vhost.sock", f->dir);
  snprintf(f->uds, sizeof f->uds, "%s/v.sock", f->dir);
  snprintf(f->log, sizeof f->log, "%s/vsockd.log", f->dir);
  f->mfd = f->kick[0] = f->kick[1] = f->call[0] = f->call[1] = -1;
  CHECK_EQ(pipe(ready), 0);
  snprintf(fdarg, sizeof fdarg, "%d", ready[1]);
  f->pid = fork();
  CHECK(f->pid >= 0);
  if (f->pid == 0) {
    int log = open(f->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(log, 2);
    close(ready[0]);
    execl(hcsb_test_build_path("src/hcsb-vsockd"), "hcsb-vsockd", "--socket",
          f->vhost, "--uds-path", f->uds, "--guest-cid", "3", "--ready-fd",
          fdarg, option, (char *)NULL);
    _exit(127);
  }
  close(ready[1]);
  char c = 0;
  read_all(ready[0], &c, 1);
  CHECK_EQ(c, '\n');
  CHECK_EQ(read(ready[0], &c, 1), 0); /* and closed */
  close(ready[0]);
  f->vfd = unix_connect(f->vhost);
}

static void start(fe_t *f) {
  start_with(f, NULL);
}

/* A message with nfds fds (at most 2). */
static void send_msg_fds(fe_t *f, uint32_t req, uint32_t flags, const void *p,
                         uint32_t n, const int *fds, unsigned nfds) {
  uint8_t m[HCSB__VSD_MSG_HDR + 512];
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(2 * sizeof(int))];
  } ctl;
  struct iovec iov = {m, HCSB__VSD_MSG_HDR + n};
  struct msghdr mh = {0};
  hcsb__vsd_put32(m, req);
  hcsb__vsd_put32(m + 4, flags);
  hcsb__vsd_put32(m + 8, n);
  if (n > 0) memcpy(m + HCSB__VSD_MSG_HDR, p, n);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  CHECK(nfds <= 2);
  if (nfds > 0) {
    memset(&ctl, 0, sizeof ctl);
    mh.msg_control = ctl.buf;
    mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
  }
  CHECK_EQ(sendmsg(f->vfd, &mh, MSG_NOSIGNAL), (ssize_t)iov.iov_len);
}

static void send_msg(fe_t *f, uint32_t req, uint32_t flags, const void *p,
                     uint32_t n, int fd) {
  send_msg_fds(f, req, flags, p, n, &fd, fd >= 0 ? 1 : 0);
}

/* A message whose reply we wait for; returns the reply's payload size. */
static uint32_t request(fe_t *f, uint32_t req, uint32_t flags, const void *p,
                        uint32_t n, int fd, uint8_t *reply) {
  uint8_t h[HCSB__VSD_MSG_HDR];
  send_msg(f, req, flags, p, n, fd);
  read_all(f->vfd, h, sizeof h);
  CHECK_EQ(hcsb__vsd_le32(h), req);
  CHECK_EQ(hcsb__vsd_le32(h + 4), 1 | 4);
  uint32_t size = hcsb__vsd_le32(h + 8);
  CHECK(size <= 512);
  read_all(f->vfd, reply, size);
  return size;
}

/* Acked with REPLY_ACK: fails the test unless the backend says 0. */
static void acked(fe_t *f, uint32_t req, const void *p, uint32_t n, int fd) {
  uint8_t r[512];
  CHECK_EQ(request(f, req, 1 | 8, p, n, fd, r), 8);
  CHECK_U64(hcsb__vsd_le64(r), 0);
}

static void ring_msg(fe_t *f, uint32_t req, uint32_t idx, uint32_t num) {
  uint8_t p[8];
  hcsb__vsd_put32(p, idx);
  hcsb__vsd_put32(p + 4, num);
  acked(f, req, p, 8, -1);
}

/* What QEMU 7.2 sends for vhost-user-vsock, in its order. */
static void negotiate(fe_t *f) {
  uint8_t r[512], p[64];
  CHECK_EQ(request(f, 1, 1, NULL, 0, -1, r), 8); /* GET_FEATURES */
  CHECK(hcsb__vsd_le64(r) & (1ull << 30));
  CHECK_EQ(request(f, 15, 1, NULL, 0, -1, r), 8); /* GET_PROTOCOL_FEATURES */
  hcsb__vsd_put64(p, (1ull << 3) | (1ull << 9));
  send_msg(f, 16, 1, p, 8, -1); /* SET_PROTOCOL_FEATURES: no reply */
  acked(f, 3, NULL, 0, -1);     /* SET_OWNER */
  memset(p, 0, sizeof p);
  hcsb__vsd_put32(p + 4, 8);
  CHECK_EQ(request(f, 24, 1, p, 20, -1, r), 20); /* GET_CONFIG */
  CHECK_U64(hcsb__vsd_le64(r + 12), FAKE_CID);
  hcsb__vsd_put64(p, (1ull << 32) | (1ull << 30));
  acked(f, 2, p, 8, -1); /* SET_FEATURES */

  int mfd = memfd_create("guest-ram", MFD_CLOEXEC);
  CHECK(mfd >= 0);
  CHECK_EQ(ftruncate(mfd, FAKE_RAM), 0);
  f->ram = mmap(NULL, FAKE_RAM, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  CHECK(f->ram != MAP_FAILED);
  fake_vm_init_ram(&f->vm, 256, f->ram);
  f->rx_seen = 0;
  memset(p, 0, sizeof p);
  hcsb__vsd_put32(p, 1);
  hcsb__vsd_put64(p + 8, FAKE_GPA);
  hcsb__vsd_put64(p + 16, FAKE_RAM);
  hcsb__vsd_put64(p + 24, FAKE_UVA);
  acked(f, 5, p, 40, mfd); /* SET_MEM_TABLE */
  f->mfd = mfd;

  for (uint32_t q = 0; q < 2; q++) {
    ring_msg(f, 8, q, 256); /* SET_VRING_NUM */
    ring_msg(f, 10, q, 0);  /* SET_VRING_BASE */
    memset(p, 0, sizeof p);
    hcsb__vsd_put32(p, q);
    hcsb__vsd_put64(p + 8, f->vm.vq[q].desc_uva);
    hcsb__vsd_put64(p + 16, f->vm.vq[q].used_uva);
    hcsb__vsd_put64(p + 24, f->vm.vq[q].avail_uva);
    acked(f, 9, p, 40, -1); /* SET_VRING_ADDR */
    f->kick[q] = eventfd(0, EFD_CLOEXEC);
    f->call[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    hcsb__vsd_put64(p, q);
    acked(f, 12, p, 8, f->kick[q]); /* SET_VRING_KICK */
    acked(f, 13, p, 8, f->call[q]); /* SET_VRING_CALL */
    ring_msg(f, 18, q, 1);          /* SET_VRING_ENABLE */
  }
  for (int i = 0; i < 16; i++) fake_post_rx(&f->vm);
  uint64_t one = 1;
  CHECK_EQ(write(f->kick[FAKE_RX], &one, 8), 8);
}

static void guest_send(fe_t *f, uint16_t op, uint32_t gport, uint32_t hport,
                       const char *data, uint32_t flags) {
  hcsb__vsd_hdr_t h = fake_hdr(op, gport, hport);
  uint64_t one = 1;
  h.flags = flags;
  h.len = data ? (uint32_t)strlen(data) : 0;
  fake_post_tx(&f->vm, &h, data, h.len);
  CHECK_EQ(write(f->kick[FAKE_TX], &one, 8), 8);
}

/* The next packet for the guest; its payload is NUL-terminated. */
static hcsb__vsd_hdr_t guest_recv(fe_t *f, char *payload, size_t cap) {
  hcsb__vsd_hdr_t h;
  uint64_t v;
  while (fake_used_idx(&f->vm, FAKE_RX) == f->rx_seen) {
    wait_readable(f->call[FAKE_RX]);
    CHECK_EQ(read(f->call[FAKE_RX], &v, 8), 8);
  }
  int n = fake_rx_packet(&f->vm, f->rx_seen++, &h, (uint8_t *)payload, cap - 1);
  CHECK(n >= 0);
  payload[n] = 0;
  uint64_t one = 1;
  fake_post_rx(&f->vm); /* replace the buffer, like the driver */
  CHECK_EQ(write(f->kick[FAKE_RX], &one, 8), 8);
  return h;
}

/* Drops what negotiate() set up on our side. */
static void release(fe_t *f) {
  for (int q = 0; q < 2; q++) {
    if (f->kick[q] >= 0) close(f->kick[q]);
    if (f->call[q] >= 0) close(f->call[q]);
    f->kick[q] = f->call[q] = -1;
  }
  if (f->mfd >= 0) close(f->mfd);
  f->mfd = -1;
  if (f->ram != NULL) munmap(f->ram, FAKE_RAM);
  f->ram = NULL;
}

/* QEMU goes away (the backend notices by itself), keeping nothing. */
static void hangup(fe_t *f) {
  close(f->vfd);
  f->vfd = -1;
  release(f);
}

static void finish(fe_t *f) {
  if (f->vfd >= 0) {
    close(f->vfd); /* QEMU goes away: the backend ends the session */
    CHECK_EQ(exit_status(f->pid), 0);
  }
  struct stat st;
  CHECK(stat(f->uds, &st) != 0); /* it removed its socket */
  release(f);
}

static void test_guest_connects(void) {
  fe_t f;
  char path[320], buf[4200];
  start(&f);
  negotiate(&f);
  snprintf(path, sizeof path, "%s_5000", f.uds);
  int ls = unix_listen(path);

  guest_send(&f, HCSB__VSD_OP_REQUEST, 1234, 5000, NULL, 0);
  wait_readable(ls);
  int hs = accept(ls, NULL, NULL);
  CHECK(hs >= 0);
  hcsb__vsd_hdr_t h = guest_recv(&f, buf, sizeof buf);
  CHECK_EQ(h.op, HCSB__VSD_OP_RESPONSE);
  CHECK_EQ(h.src_port, 5000);
  CHECK_EQ(h.dst_port, 1234);

  guest_send(&f, HCSB__VSD_OP_RW, 1234, 5000, "from the guest", 0);
  read_all(hs, buf, 14);
  CHECK_MEM(buf, "from the guest", 14);
  CHECK_EQ(write(hs, "from the host", 13), 13);
  h = guest_recv(&f, buf, sizeof buf);
  CHECK_EQ(h.op, HCSB__VSD_OP_RW);
  CHECK_STR(buf, "from the host");

  /* Host half-close reaches the guest as SHUTDOWN(SEND); the guest's
   * close (both flags) gets the final RST and closes the host socket. */
  shutdown(hs, SHUT_WR);
  h = guest_recv(&f, buf, sizeof buf);
  CHECK_EQ(h.op, HCSB__VSD_OP_SHUTDOWN);
  CHECK_EQ(h.flags, HCSB__VSD_SHUT_SEND);
  guest_send(&f, HCSB__VSD_OP_SHUTDOWN, 1234, 5000, NULL,
             HCSB__VSD_SHUT_RCV | HCSB__VSD_SHUT_SEND);
  h = guest_recv(&f, buf, sizeof buf);
  CHECK_EQ(h.op, HCSB__VSD_OP_RST);
  wait_readable(hs);
  CHECK_EQ(read(hs, buf, 1), 0);
  close(hs);
  close(ls);
  finish(&f);
}

static void test_refused_and_host_connect(void) {
  fe_t f;
  char buf[4200];
  start(&f);
  negotiate(&f);

  /* Nothing listens on PATH_5001: the guest gets RST. */
  guest_send(&f, HCSB__VSD_OP_REQUEST, 77, 5001, NULL, 0);
  hcsb__vsd_hdr_t h = guest_recv(&f, buf, sizeof buf);
  CHECK_EQ(h.op, HCSB__VSD_OP_RST);
  CHECK_EQ(h.dst_port, 77);

  /* The host dials guest port 6000 through PATH. */
  int c = unix_connect(f.uds);
  CHECK_EQ(write(c, "CONNECT 6000\n", 13), 13);
  h = guest_recv(&f, buf, sizeof buf);
  CHECK_EQ(h.op, HCSB__VSD_OP_REQUEST);
  CHECK_EQ(h.dst_port, 6000);
  uint32_t hport = h.src_port;
  guest_send(&f, HCSB__VSD_OP_RESPONSE, 6000, hport, NULL, 0);
  char want[32];
  int n = snprintf(want, sizeof want, "OK %u\n", (unsigned)hport);
  read_all(c, buf, (size_t)n);
  CHECK_MEM(buf, want, (size_t)n);
  guest_send(&f, HCSB__VSD_OP_RW, 6000, hport, "hi", 0);
  read_all(c, buf, 2);
  CHECK_MEM(buf, "hi", 2);

  /* A guest that refuses: the host connection is closed. */
  int c2 = unix_connect(f.uds);
  CHECK_EQ(write(c2, "CONNECT 6001\n", 13), 13);
  h = guest_recv(&f, buf, sizeof buf);
  CHECK_EQ(h.op, HCSB__VSD_OP_REQUEST);
  guest_send(&f, HCSB__VSD_OP_RST, 6001, h.src_port, NULL, 0);
  wait_readable(c2);
  CHECK_EQ(read(c2, buf, 1), 0);
  close(c2);

  /* QEMU goes away with a connection open: the backend closes it too. */
  close(f.vfd);
  CHECK_EQ(exit_status(f.pid), 0);
  wait_readable(c);
  CHECK_EQ(read(c, buf, 1), 0);
  close(c);
  f.vfd = -1;
  finish(&f);
}

static void test_signals_and_errors(void) {
  fe_t f;
  char line[512];
  start(&f);
  kill(f.pid, SIGTERM);
  CHECK_EQ(exit_status(f.pid), 0);
  struct stat st;
  CHECK(stat(f.vhost, &st) != 0);
  CHECK(stat(f.uds, &st) != 0);
  close(f.vfd);

  /* Setup failures: status 1 and one line on stderr. */
  static const char *const bad[][7] = {
      {"--socket", "/nonexistent/dir/s", "--uds-path", "/tmp/x", "--guest-cid",
       "3", NULL},
      {"--socket", "a", "--uds-path", "b", "--guest-cid", "2", NULL},
      {"--socket", "a", "--guest-cid", "3", NULL, NULL, NULL},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int err[2];
    CHECK_EQ(pipe(err), 0);
    pid_t pid = fork();
    if (pid == 0) {
      const char *argv[9] = {"hcsb-vsockd"};
      for (int k = 0; k < 7 && bad[i][k]; k++) argv[k + 1] = bad[i][k];
      dup2(err[1], 2);
      execv(hcsb_test_build_path("src/hcsb-vsockd"), (char **)argv);
      _exit(127);
    }
    close(err[1]);
    CHECK_EQ(exit_status(pid), 1);
    ssize_t n = read(err[0], line, sizeof line - 1);
    close(err[0]);
    CHECK(n > 0);
    line[n] = 0;
    CHECK(strncmp(line, "hcsb-vsockd: ", 13) == 0);
    CHECK(strchr(line, '\n') == line + n - 1); /* exactly one line */
  }
}

/* The whole backend log so far (NUL-terminated into buf). */
static void read_log(fe_t *f, char *buf, size_t cap) {
  int fd = open(f->log, O_RDONLY);
  CHECK(fd >= 0);
  ssize_t n = read(fd, buf, cap - 1);
  close(fd);
  CHECK(n >= 0);
  buf[n] = 0;
}

/* The guest's SHUTDOWN(RCV) reaches the host socket: its writer gets
 * EPIPE instead of filling the buffer and blocking forever. */
static void test_guest_shutdown_rcv_epipe(void) {
  fe_t f;
  char path[320], buf[4200];
  start(&f);
  negotiate(&f);
  snprintf(path, sizeof path, "%s_5000", f.uds);
  int ls = unix_listen(path);
  guest_send(&f, HCSB__VSD_OP_REQUEST, 1234, 5000, NULL, 0);
  wait_readable(ls);
  int hs = accept(ls, NULL, NULL);
  CHECK(hs >= 0);
  CHECK_EQ(guest_recv(&f, buf, sizeof buf).op, HCSB__VSD_OP_RESPONSE);

  guest_send(&f, HCSB__VSD_OP_SHUTDOWN, 1234, 5000, NULL, HCSB__VSD_SHUT_RCV);
  int err = 0;
  for (int i = 0; i < WAIT_MS / 10 && err == 0; i++) {
    if (send(hs, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN)
      err = errno;
    else
      usleep(10000);
  }
  CHECK_EQ(err, EPIPE);
  /* The other direction is untouched. */
  guest_send(&f, HCSB__VSD_OP_RW, 1234, 5000, "still here", 0);
  read_all(hs, buf, 10);
  CHECK_MEM(buf, "still here", 10);
  close(hs);
  close(ls);
  finish(&f);
}

/* CONNECT lines as Firecracker takes them; one it would refuse closes the
 * client at once and leaves a line in the log saying why. */
static void test_connect_lines(void) {
  fe_t f;
  char buf[4200], want[32], log[4096];
  start(&f);
  negotiate(&f);
  int c = unix_connect(f.uds);
  CHECK_EQ(write(c, "connect 6000\r\n", 14), 14);
  hcsb__vsd_hdr_t h = guest_recv(&f, buf, sizeof buf);
  CHECK_EQ(h.op, HCSB__VSD_OP_REQUEST);
  CHECK_EQ(h.dst_port, 6000);
  guest_send(&f, HCSB__VSD_OP_RESPONSE, 6000, h.src_port, NULL, 0);
  int n = snprintf(want, sizeof want, "OK %u\n", (unsigned)h.src_port);
  read_all(c, buf, (size_t)n);
  CHECK_MEM(buf, want, (size_t)n);
  close(c);

  c = unix_connect(f.uds);
  CHECK_EQ(write(c, "CONNECT six\n", 12), 12);
  wait_readable(c);
  CHECK_EQ(read(c, buf, 1), 0);
  close(c);
  read_log(&f, log, sizeof log);
  CHECK(strstr(log,
               "hcsb-vsockd: host connection refused: the port is not a "
               "number from 0 to 4294967295: \"CONNECT six\\n\"\n") != NULL);
  finish(&f);
}

/* A guest that claims more new buffers than its ring holds: the ring is
 * dropped (and said so once), the process keeps serving the frontend. */
static void test_hostile_ring(void) {
  fe_t f;
  uint8_t r[512], p[8];
  uint64_t one = 1;
  char log[4096];
  static const char said[] = "the guest broke ring 1";
  start(&f);
  negotiate(&f);
  hcsb__vsd_put16(f.ram + 0x10000 + 0x8000 + 2, 300); /* tx avail idx */
  CHECK_EQ(write(f.kick[FAKE_TX], &one, 8), 8);
  /* A kick and a message sent right after it race in the backend's loop:
   * wait for its word before the message stops the ring. */
  for (int i = 0; i < WAIT_MS / 10; i++) {
    read_log(&f, log, sizeof log);
    if (strstr(log, said) != NULL) break;
    usleep(10000);
  }
  CHECK_EQ(write(f.kick[FAKE_TX], &one, 8), 8);
  hcsb__vsd_put32(p, 1);
  hcsb__vsd_put32(p + 4, 0);
  CHECK_EQ(request(&f, 11, 1, p, 8, -1, r), 8); /* GET_VRING_BASE */
  CHECK_EQ(hcsb__vsd_le32(r + 4), 0);           /* nothing was taken */
  CHECK_EQ(fake_used_idx(&f.vm, FAKE_TX), 0);
  finish(&f);
  read_log(&f, log, sizeof log);
  const char *hit = strstr(log, said);
  CHECK(hit != NULL);
  CHECK(strstr(hit + sizeof said - 1, "broke ring") == NULL); /* once */
}

/* The guest at host port 5000 through PATH_5000: returns the host end. */
static int guest_dial_5000(fe_t *f, int *ls) {
  char path[320], buf[4200];
  snprintf(path, sizeof path, "%s_5000", f->uds);
  *ls = unix_listen(path);
  guest_send(f, HCSB__VSD_OP_REQUEST, 1234, 5000, NULL, 0);
  wait_readable(*ls);
  int hs = accept(*ls, NULL, NULL);
  CHECK(hs >= 0);
  CHECK_EQ(guest_recv(f, buf, sizeof buf).op, HCSB__VSD_OP_RESPONSE);
  return hs;
}

/* --reconnect: when QEMU goes away (or breaks the protocol) the backend
 * drops that session, connections included, and serves the next one;
 * only a signal ends it. */
static void test_reconnect(void) {
  fe_t f;
  char buf[4200], log[4096];
  uint8_t r[512];
  int st, ls;
  start_with(&f, "--reconnect");
  negotiate(&f);
  int c = unix_connect(f.uds);
  CHECK_EQ(write(c, "CONNECT 6000\n", 13), 13);
  hcsb__vsd_hdr_t h = guest_recv(&f, buf, sizeof buf);
  CHECK_EQ(h.op, HCSB__VSD_OP_REQUEST);
  guest_send(&f, HCSB__VSD_OP_RESPONSE, 6000, h.src_port, NULL, 0);
  wait_readable(c);
  CHECK(read(c, buf, sizeof buf) > 0); /* "OK <port>\n" */

  hangup(&f);
  wait_readable(c);
  CHECK_EQ(read(c, buf, 1), 0); /* gone with its session */
  close(c);
  CHECK_EQ(waitpid(f.pid, &st, WNOHANG), 0);

  /* The next frontend starts from scratch, on the same sockets. */
  f.vfd = unix_connect(f.vhost);
  negotiate(&f);
  int hs = guest_dial_5000(&f, &ls);
  guest_send(&f, HCSB__VSD_OP_RW, 1234, 5000, "again", 0);
  read_all(hs, buf, 5);
  CHECK_MEM(buf, "again", 5);
  close(hs);
  close(ls);

  /* One that breaks the protocol loses its session, not the backend. */
  hangup(&f);
  f.vfd = unix_connect(f.vhost);
  send_msg(&f, 1, 2, NULL, 0, -1); /* wrong version bits */
  wait_readable(f.vfd);
  CHECK_EQ(read(f.vfd, buf, 1), 0);
  close(f.vfd);
  f.vfd = unix_connect(f.vhost);
  CHECK_EQ(request(&f, 1, 1, NULL, 0, -1, r), 8); /* GET_FEATURES */
  close(f.vfd);
  f.vfd = -1;
  CHECK_EQ(waitpid(f.pid, &st, WNOHANG), 0);
  kill(f.pid, SIGTERM);
  CHECK_EQ(exit_status(f.pid), 0);
  finish(&f);
  read_log(&f, log, sizeof log);
  CHECK(strstr(log, "malformed vhost-user message GET_FEATURES (1)") != NULL);
}

/* A frontend that stops reading its replies: the backend holds the one
 * reply it owes without waiting for it, reads no further messages (so
 * what it holds stays bounded) and serves the rings meanwhile; once the
 * frontend reads again, every reply comes, in order. */
static void test_reply_never_blocks(void) {
  fe_t f;
  char buf[4200];
  enum { CFG = 256, N = 4000 };
  uint8_t req[HCSB__VSD_MSG_HDR + 12 + CFG], rep[sizeof req];
  start(&f);
  negotiate(&f);
  memset(req, 0, sizeof req);
  hcsb__vsd_put32(req, 24); /* GET_CONFIG, offset 0, CFG bytes */
  hcsb__vsd_put32(req + 4, 1);
  hcsb__vsd_put32(req + 8, 12 + CFG);
  hcsb__vsd_put32(req + HCSB__VSD_MSG_HDR + 4, CFG);

  /* Send until the backend takes no more: nothing moves for 200 ms. */
  unsigned sent = 0, got = 0, idle = 0;
  size_t part = 0; /* bytes of the message being sent */
  while (idle < 20 && sent < N) {
    ssize_t n =
        send(f.vfd, req + part, sizeof req - part, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      CHECK_EQ(errno, EAGAIN);
      idle++;
      usleep(10000);
      continue;
    }
    idle = 0;
    part += (size_t)n;
    if (part == sizeof req) {
      part = 0;
      sent++;
    }
  }
  CHECK(sent < N); /* it stopped reading: both socket buffers are full */

  /* The loop is not stuck: a host client reaches the guest. */
  int c = unix_connect(f.uds);
  CHECK_EQ(write(c, "CONNECT 6000\n", 13), 13);
  CHECK_EQ(guest_recv(&f, buf, sizeof buf).op, HCSB__VSD_OP_REQUEST);
  close(c);

  unsigned total = sent + (part > 0);
  while (got < total) {
    struct pollfd pfd = {f.vfd, POLLIN | (part > 0 ? POLLOUT : 0), 0};
    CHECK(poll(&pfd, 1, WAIT_MS) > 0);
    if (part > 0 && (pfd.revents & POLLOUT)) {
      ssize_t n = send(f.vfd, req + part, sizeof req - part,
                       MSG_DONTWAIT | MSG_NOSIGNAL);
      CHECK(n > 0 || errno == EAGAIN);
      if (n > 0 && (part += (size_t)n) == sizeof req) part = 0;
    }
    if (pfd.revents & POLLIN) {
      read_all(f.vfd, rep, sizeof rep);
      CHECK_EQ(hcsb__vsd_le32(rep), 24);
      CHECK_EQ(hcsb__vsd_le32(rep + 4), 1 | 4);
      CHECK_EQ(hcsb__vsd_le32(rep + 8), 12 + CFG);
      CHECK_U64(hcsb__vsd_le64(rep + HCSB__VSD_MSG_HDR + 12), FAKE_CID);
      got++;
    }
  }
  finish(&f);
}

#define HOTPLUG_GPA 0x40000000ull
#define HOTPLUG_UVA 0x7f4000000000ull

/* QEMU sends a new memory table while the rings run (memory hotplug): the
 * old RAM again plus a new region.  Buffers posted before it still work,
 * and a packet that lives in the new region gets through. */
static void test_second_mem_table(void) {
  fe_t f;
  char buf[4200];
  uint8_t p[72], r[8], h[HCSB__VSD_MSG_HDR];
  int ls;
  start(&f);
  negotiate(&f);
  int hs = guest_dial_5000(&f, &ls);

  int xfd = memfd_create("hotplug", MFD_CLOEXEC);
  CHECK(xfd >= 0);
  CHECK_EQ(ftruncate(xfd, FAKE_RAM), 0);
  uint8_t *xram =
      mmap(NULL, FAKE_RAM, PROT_READ | PROT_WRITE, MAP_SHARED, xfd, 0);
  CHECK(xram != MAP_FAILED);
  memset(p, 0, sizeof p);
  hcsb__vsd_put32(p, 2);
  hcsb__vsd_put64(p + 8, FAKE_GPA);
  hcsb__vsd_put64(p + 16, FAKE_RAM);
  hcsb__vsd_put64(p + 24, FAKE_UVA);
  hcsb__vsd_put64(p + 40, HOTPLUG_GPA);
  hcsb__vsd_put64(p + 48, FAKE_RAM);
  hcsb__vsd_put64(p + 56, HOTPLUG_UVA);
  int fds[2] = {dup(f.mfd), xfd};
  send_msg_fds(&f, 5, 1 | 8, p, 72, fds, 2); /* SET_MEM_TABLE, acked */
  close(fds[0]);
  close(xfd);
  read_all(f.vfd, h, sizeof h);
  CHECK_EQ(hcsb__vsd_le32(h), 5);
  CHECK_EQ(hcsb__vsd_le32(h + 8), 8);
  read_all(f.vfd, r, 8);
  CHECK_U64(hcsb__vsd_le64(r), 0);

  /* Host -> guest, into rx buffers posted under the old table. */
  CHECK_EQ(write(hs, "after", 5), 5);
  hcsb__vsd_hdr_t got = guest_recv(&f, buf, sizeof buf);
  CHECK_EQ(got.op, HCSB__VSD_OP_RW);
  CHECK_STR(buf, "after");
  /* Guest -> host from the new region: header at +0, payload at +64. */
  hcsb__vsd_hdr_t pkt = fake_hdr(HCSB__VSD_OP_RW, 1234, 5000);
  pkt.len = 7;
  hcsb__vsd_hdr_encode(&pkt, xram);
  memcpy(xram + 64, "hotplug", 7);
  uint16_t a = f.vm.next_desc[FAKE_TX], b = (uint16_t)((a + 1) % 256);
  f.vm.next_desc[FAKE_TX] = (uint16_t)((b + 1) % 256);
  fake_desc(&f.vm, FAKE_TX, a, HOTPLUG_GPA, HCSB__VSD_HDR_LEN, 1, b);
  fake_desc(&f.vm, FAKE_TX, b, HOTPLUG_GPA + 64, 7, 0, 0);
  fake_publish(&f.vm, FAKE_TX, a);
  uint64_t one = 1;
  CHECK_EQ(write(f.kick[FAKE_TX], &one, 8), 8);
  read_all(hs, buf, 7);
  CHECK_MEM(buf, "hotplug", 7);
  munmap(xram, FAKE_RAM);
  close(hs);
  close(ls);
  finish(&f);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(guest_connects),
    TEST_ENTRY(refused_and_host_connect),
    TEST_ENTRY(signals_and_errors),
    TEST_ENTRY(hostile_ring),
    TEST_ENTRY(guest_shutdown_rcv_epipe),
    TEST_ENTRY(connect_lines),
    TEST_ENTRY(reconnect),
    TEST_ENTRY(reply_never_blocks),
    TEST_ENTRY(second_mem_table),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
