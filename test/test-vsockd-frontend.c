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
  int vfd;
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

/* Starts the backend and waits for its --ready-fd newline. */
static void start(fe_t *f) {
  int ready[2];
  char fdarg[16];
  memset(f, 0, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "%s", hcsb_test_tmpdir());
  snprintf(f->vhost, sizeof f->vhost, "%s/vhost.sock", f->dir);
  snprintf(f->uds, sizeof f->uds, "%s/v.sock", f->dir);
  snprintf(f->log, sizeof f->log, "%s/vsockd.log", f->dir);
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
          fdarg, (char *)NULL);
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

static void send_msg(fe_t *f, uint32_t req, uint32_t flags, const void *p,
                     uint32_t n, int fd) {
  uint8_t m[HCSB__VSD_MSG_HDR + 512];
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct iovec iov = {m, HCSB__VSD_MSG_HDR + n};
  struct msghdr mh = {0};
  hcsb__vsd_put32(m, req);
  hcsb__vsd_put32(m + 4, flags);
  hcsb__vsd_put32(m + 8, n);
  if (n > 0) memcpy(m + HCSB__VSD_MSG_HDR, p, n);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (fd >= 0) {
    memset(&ctl, 0, sizeof ctl);
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  }
  CHECK_EQ(sendmsg(f->vfd, &mh, MSG_NOSIGNAL), (ssize_t)iov.iov_len);
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
  memset(p, 0, sizeof p);
  hcsb__vsd_put32(p, 1);
  hcsb__vsd_put64(p + 8, FAKE_GPA);
  hcsb__vsd_put64(p + 16, FAKE_RAM);
  hcsb__vsd_put64(p + 24, FAKE_UVA);
  acked(f, 5, p, 40, mfd); /* SET_MEM_TABLE */
  close(mfd);

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

static void finish(fe_t *f) {
  if (f->vfd >= 0) {
    close(f->vfd); /* QEMU goes away: the backend ends the session */
    CHECK_EQ(exit_status(f->pid), 0);
  }
  struct stat st;
  CHECK(stat(f->uds, &st) != 0); /* it removed its socket */
  for (int q = 0; q < 2; q++) {
    close(f->kick[q]);
    close(f->call[q]);
  }
  munmap(f->ram, FAKE_RAM);
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
  start(&f);
  negotiate(&f);
  hcsb__vsd_put16(f.ram + 0x10000 + 0x8000 + 2, 300); /* tx avail idx */
  CHECK_EQ(write(f.kick[FAKE_TX], &one, 8), 8);
  CHECK_EQ(write(f.kick[FAKE_TX], &one, 8), 8);
  hcsb__vsd_put32(p, 1);
  hcsb__vsd_put32(p + 4, 0);
  CHECK_EQ(request(&f, 11, 1, p, 8, -1, r), 8); /* GET_VRING_BASE */
  CHECK_EQ(hcsb__vsd_le32(r + 4), 0);           /* nothing was taken */
  CHECK_EQ(fake_used_idx(&f.vm, FAKE_TX), 0);
  finish(&f);
  int fd = open(f.log, O_RDONLY);
  ssize_t n = read(fd, log, sizeof log - 1);
  close(fd);
  CHECK(n > 0);
  log[n] = 0;
  static const char said[] = "the guest broke ring 1";
  const char *hit = strstr(log, said);
  CHECK(hit != NULL);
  CHECK(strstr(hit + sizeof said - 1, "broke ring") == NULL); /* once */
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(guest_connects),           TEST_ENTRY(refused_and_host_connect),
    TEST_ENTRY(signals_and_errors),       TEST_ENTRY(hostile_ring),
    TEST_ENTRY(guest_shutdown_rcv_epipe), TEST_ENTRY(connect_lines),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
