/* hcsb-vsockd's vhost-user message handling (src/vsockd/vhost.c), driven
 * as a hostile or confused frontend would, with the rings run in between
 * the way main.c runs them.  Guest memory is a real memfd, passed as QEMU
 * passes it; kick and call fds are real eventfds.
 *
 * Input: [ring size selector] then operations, each an opcode byte and its
 * arguments (integers little-endian; missing bytes read 0):
 *   0 RAW      u8 request, u32 flags, u16 size (mod 4097), size payload
 *              bytes, u8 fds: bits 0-1 how many (0-3), bits 2-7 their kinds
 *              two bits each (the RAM's memfd, an eventfd, a pipe); bit 7
 *              of the request byte sends a length one short of the size
 *   1 MEMTABLE u8 regions (0-3), per region u8 shape (the RAM, its lower
 *              or upper half, or 4 raw u64s: gpa, size, uva, offset), u8
 *              fd mismatch (bit 0 one fd too few, bit 1 one more)
 *   2 SETUP    u8 features (bit 0 INDIRECT, bit 1 EVENT_IDX, bit 2
 *              PROTOCOL_FEATURES), u16 ring base: QEMU's whole start-up
 *   3 RING     u8 what: 0-3 post a tx packet (REQUEST, RW, SHUTDOWN, RST
 *              for host port 5000), 4 post an rx buffer; then pump both
 *   4 POKE     u32 offset into guest RAM, u8 n, n bytes
 *   5 HOST     complete the dials in progress and the queued writes
 *   6 GETBASE  u8 ring: GET_VRING_BASE, checked against our state
 *   7 END      the frontend goes away (what --reconnect does)
 *
 * Checked after every message: vhost.c answers 0 or -EPROTO; a reply is a
 * well-formed reply to that request, and a NEED_REPLY message that was not
 * refused gets one; every fd passed is either closed or kept as a ring's
 * kick/call/err fd, and every kept fd is open; each region lies inside its
 * mapping; ring sizes are powers of two within the cap.  After the rings
 * run: the used index moved by what was taken.  At the end every fd the
 * input created is closed again and every mapping of guest memory but our
 * own is gone. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "vsockd-fake.h"
#include "vsockd/vhost-user.h"

#define MAX_FD 1024

typedef struct {
  hcsb__vsd_vhost_t vh;
  hcsb__vsd_dev_t dev;
  fake_host_t host;
  fake_vm_t vm; /* the guest's view: rings at fake_vm_init's places */
  int memfd;
  uint8_t out[HCSB__VSD_MSG_HDR + HCSB__VSD_MSG_MAX];
} rig_t;

static int fd_open(int fd) {
  return fd >= 0 && fcntl(fd, F_GETFD) >= 0;
}

static unsigned open_fds(void) {
  unsigned n = 0;
  for (int fd = 0; fd < MAX_FD; fd++) n += fd_open(fd);
  return n;
}

/* How many times guest memory is mapped here. */
static unsigned ram_maps(void) {
  char line[512];
  unsigned n = 0;
  FILE *f = fopen("/proc/self/maps", "r");
  if (f == NULL) return 0;
  while (fgets(line, sizeof line, f) != NULL)
    n += strstr(line, "memfd:fuzz-vhost") != NULL;
  fclose(f);
  return n;
}

static int kept(const hcsb__vsd_vhost_t *vh, int fd) {
  for (unsigned i = 0; i < HCSB__VSD_NQUEUES; i++)
    if (vh->kick_fd[i] == fd || vh->call_fd[i] == fd || vh->err_fd[i] == fd)
      return 1;
  return 0;
}

static void on_kick_closing(hcsb__vsd_vhost_t *vh, unsigned i) {
  FUZZ_CHECK(i < HCSB__VSD_NQUEUES && fd_open(vh->kick_fd[i]));
}

static void on_reset(hcsb__vsd_vhost_t *vh) {
  rig_t *r = vh->data;
  hcsb__vsd_dev_reset(&r->dev);
}

static void check_state(const hcsb__vsd_vhost_t *vh) {
  FUZZ_CHECK(vh->mem.n <= HCSB__VSD_MAX_REGIONS);
  for (unsigned i = 0; i < vh->mem.n; i++) {
    const hcsb__vsd_region_t *g = &vh->mem.r[i];
    const uint8_t *base = vh->map[i];
    FUZZ_CHECK(g->size > 0 && g->host >= base);
    FUZZ_CHECK(g->size <= vh->map_len[i] - (size_t)(g->host - base));
  }
  for (unsigned i = 0; i < HCSB__VSD_NQUEUES; i++) {
    uint16_t n = vh->vq[i].num;
    FUZZ_CHECK((n & (n - 1)) == 0);
    FUZZ_CHECK(vh->kick_fd[i] < 0 || fd_open(vh->kick_fd[i]));
    FUZZ_CHECK(vh->call_fd[i] < 0 || fd_open(vh->call_fd[i]));
    FUZZ_CHECK(vh->err_fd[i] < 0 || fd_open(vh->err_fd[i]));
  }
}

/* One message, checked.  fds are handed over (vhost.c keeps or closes
 * each).  Returns the reply's payload size, or -1 when there is none. */
static int send_msg(rig_t *r, uint32_t req, uint32_t flags, const uint8_t *p,
                    uint32_t size, int *fds, unsigned nfds, int skew) {
  static uint8_t msg[HCSB__VSD_MSG_HDR + HCSB__VSD_MSG_MAX + 1];
  int passed[HCSB__VSD_MAX_FDS];
  size_t out_len = 12345;
  hcsb__vsd_put32(msg, req);
  hcsb__vsd_put32(msg + 4, flags);
  hcsb__vsd_put32(msg + 8, size);
  if (size > 0) memcpy(msg + HCSB__VSD_MSG_HDR, p, size);
  if (nfds > 0) memcpy(passed, fds, nfds * sizeof *fds);
  int rc = hcsb__vsd_vhost_handle(&r->vh, msg, HCSB__VSD_MSG_HDR + size + skew,
                                  fds, nfds, r->out, &out_len);
  FUZZ_CHECK(rc == 0 || rc == -EPROTO);
  for (unsigned i = 0; i < nfds; i++)
    FUZZ_CHECK(!fd_open(passed[i]) || kept(&r->vh, passed[i]));
  check_state(&r->vh);
  if (rc != 0) {
    FUZZ_CHECK(out_len == 0);
    return -1;
  }
  if (out_len == 0) {
    FUZZ_CHECK(!(flags & FLAG_NEED_REPLY));
    return -1;
  }
  FUZZ_CHECK(out_len >= HCSB__VSD_MSG_HDR &&
             out_len <= HCSB__VSD_MSG_HDR + HCSB__VSD_MSG_MAX);
  FUZZ_CHECK(hcsb__vsd_le32(r->out) == req);
  FUZZ_CHECK(hcsb__vsd_le32(r->out + 4) == (1u | 4u));
  FUZZ_CHECK(hcsb__vsd_le32(r->out + 8) == out_len - HCSB__VSD_MSG_HDR);
  return (int)(out_len - HCSB__VSD_MSG_HDR);
}

static int make_fd(rig_t *r, unsigned kind) {
  int p[2];
  switch (kind & 3) {
    case 1:
      return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    case 2:
      if (pipe(p) != 0) return -1;
      close(p[1]);
      return p[0];
    default:
      return dup(r->memfd);
  }
}

static void raw(rig_t *r, fuzz_in_t *in) {
  static uint8_t p[HCSB__VSD_MSG_MAX + 1];
  uint8_t req = fuzz_u8(in);
  uint32_t flags = (uint32_t)fuzz_uN(in, 4);
  uint32_t size = (uint32_t)(fuzz_uN(in, 2) % (HCSB__VSD_MSG_MAX + 1));
  uint8_t spec;
  int fds[3];
  unsigned nfds;
  fuzz_take(in, p, size);
  spec = fuzz_u8(in);
  nfds = spec & 3;
  for (unsigned i = 0; i < nfds; i++) {
    fds[i] = make_fd(r, spec >> (2 + 2 * i));
    if (fds[i] < 0) nfds = i;
  }
  /* A length one short of what the size field says: never from main.c,
   * whose framing reads exactly the size; vhost.c must still refuse it. */
  send_msg(r, req & 0x7f, flags, p, size, fds, nfds, (req & 0x80) ? -1 : 0);
}

static void region(uint8_t *p, uint64_t gpa, uint64_t size, uint64_t uva,
                   uint64_t off) {
  hcsb__vsd_put64(p, gpa);
  hcsb__vsd_put64(p + 8, size);
  hcsb__vsd_put64(p + 16, uva);
  hcsb__vsd_put64(p + 24, off);
}

static void mem_table(rig_t *r, fuzz_in_t *in, int canonical) {
  uint8_t p[8 + 32 * 3];
  int fds[4];
  unsigned n = canonical ? 1 : fuzz_u8(in) % 4, nfds;
  memset(p, 0, sizeof p);
  hcsb__vsd_put32(p, n);
  for (unsigned i = 0; i < n; i++) {
    uint8_t *g = p + 8 + 32 * i;
    switch (canonical ? 0 : fuzz_u8(in) % 4) {
      case 0:
        region(g, FAKE_GPA, FAKE_RAM, FAKE_UVA, 0);
        break;
      case 1:
        region(g, FAKE_GPA, FAKE_RAM / 2, FAKE_UVA, 0);
        break;
      case 2:
        region(g, FAKE_GPA + FAKE_RAM / 2, FAKE_RAM / 2,
               FAKE_UVA + FAKE_RAM / 2, FAKE_RAM / 2);
        break;
      default:
        region(g, fuzz_uN(in, 8), fuzz_uN(in, 8), fuzz_uN(in, 8),
               fuzz_uN(in, 8));
    }
  }
  uint8_t mismatch = canonical ? 0 : fuzz_u8(in);
  nfds = n;
  if ((mismatch & 1) && nfds > 0) nfds--;
  if (mismatch & 2) nfds++;
  for (unsigned i = 0; i < nfds; i++) fds[i] = dup(r->memfd);
  send_msg(r, SET_MEM_TABLE, 1 | FLAG_NEED_REPLY, p, 8 + 32 * n, fds, nfds, 0);
}

static void ring_msg(rig_t *r, uint32_t req, uint32_t idx, uint32_t num) {
  uint8_t p[8];
  hcsb__vsd_put32(p, idx);
  hcsb__vsd_put32(p + 4, num);
  send_msg(r, req, 1 | FLAG_NEED_REPLY, p, 8, NULL, 0, 0);
}

static void setup(rig_t *r, fuzz_in_t *in, uint16_t num) {
  uint8_t p[40];
  uint8_t f = fuzz_u8(in);
  uint16_t base = (uint16_t)fuzz_uN(in, 2);
  uint64_t features = 1ull << 32;
  if (f & 1) features |= 1ull << 28;
  if (f & 2) features |= 1ull << 29;
  if (f & 4) features |= 1ull << 30;
  send_msg(r, GET_FEATURES, 1, NULL, 0, NULL, 0, 0);
  send_msg(r, GET_PROTOCOL_FEATURES, 1, NULL, 0, NULL, 0, 0);
  hcsb__vsd_put64(p, (1ull << 3) | (1ull << 9));
  send_msg(r, SET_PROTOCOL_FEATURES, 1, p, 8, NULL, 0, 0);
  send_msg(r, SET_OWNER, 1 | FLAG_NEED_REPLY, NULL, 0, NULL, 0, 0);
  hcsb__vsd_put64(p, features);
  send_msg(r, SET_FEATURES, 1 | FLAG_NEED_REPLY, p, 8, NULL, 0, 0);
  mem_table(r, in, 1);
  for (uint32_t q = 0; q < 2; q++) {
    ring_msg(r, SET_VRING_NUM, q, num);
    ring_msg(r, SET_VRING_BASE, q, base);
    memset(p, 0, sizeof p);
    hcsb__vsd_put32(p, q);
    hcsb__vsd_put64(p + 8, FAKE_UVA + 0x10000u * q);
    hcsb__vsd_put64(p + 16, FAKE_UVA + 0x10000u * q + 0xa000);
    hcsb__vsd_put64(p + 24, FAKE_UVA + 0x10000u * q + 0x8000);
    send_msg(r, SET_VRING_ADDR, 1 | FLAG_NEED_REPLY, p, 40, NULL, 0, 0);
    for (uint32_t req = SET_VRING_KICK; req <= SET_VRING_CALL; req++) {
      int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      hcsb__vsd_put64(p, q);
      send_msg(r, req, 1 | FLAG_NEED_REPLY, p, 8, &fd, fd >= 0, 0);
    }
    ring_msg(r, SET_VRING_ENABLE, q, 1);
  }
  /* The guest's indices start where the frontend said they are. */
  for (int q = 0; q < 2; q++) {
    r->vm.avail_idx[q] = base;
    hcsb__vsd_put16(r->vm.ram + 0x10000u * (unsigned)q + 0x8000 + 2, base);
    hcsb__vsd_put16(r->vm.ram + 0x10000u * (unsigned)q + 0xa000 + 2, base);
  }
}

/* Runs both rings as main.c's pump() does (tx, then rx); our used index
 * moves by exactly what was taken. */
static void pump(rig_t *r) {
  int sig = 0;
  for (int q = 0; q < 2; q++) {
    hcsb__vsd_vring_t *vq = &r->vh.vq[q == 0 ? 1 : 0];
    uint16_t ours = vq->used_idx;
    unsigned done = q == 0
                        ? hcsb__vsd_pump_tx(&r->dev, vq, &r->vh.mem, 8, &sig)
                        : hcsb__vsd_pump_rx(&r->dev, vq, &r->vh.mem, 8, &sig);
    FUZZ_CHECK(done <= 8);
    FUZZ_CHECK((uint16_t)(vq->used_idx - ours) == done);
  }
}

static void ring(rig_t *r, fuzz_in_t *in) {
  static const uint16_t ops[] = {HCSB__VSD_OP_REQUEST, HCSB__VSD_OP_RW,
                                 HCSB__VSD_OP_SHUTDOWN, HCSB__VSD_OP_RST};
  uint8_t what = fuzz_u8(in) % 5;
  /* The guest lays out its rings for the size the frontend set. */
  for (int q = 0; q < 2; q++) {
    uint16_t n = r->vh.vq[q].num;
    if (n == 0 || n > 256) return; /* fake_vm_init's ring slots */
    r->vm.vq[q].num = n;
  }
  if (what < 4) {
    hcsb__vsd_hdr_t h = fake_hdr(ops[what], 1234, 5000);
    h.len = ops[what] == HCSB__VSD_OP_RW ? 5 : 0;
    h.flags = ops[what] == HCSB__VSD_OP_SHUTDOWN ? 3 : 0;
    fake_post_tx(&r->vm, &h, "hello", h.len);
  } else {
    fake_post_rx(&r->vm);
  }
  pump(r);
}

static void get_base(rig_t *r, fuzz_in_t *in) {
  uint8_t p[8];
  uint32_t q = fuzz_u8(in) % 3;
  uint16_t last = q < 2 ? r->vh.vq[q].last_avail : 0;
  hcsb__vsd_put32(p, q);
  hcsb__vsd_put32(p + 4, 0);
  int n = send_msg(r, GET_VRING_BASE, 1, p, 8, NULL, 0, 0);
  if (q >= 2) {
    FUZZ_CHECK(n == -1); /* a ring we do not have ends the session */
    return;
  }
  FUZZ_CHECK(n == 8);
  FUZZ_CHECK(hcsb__vsd_le32(r->out + HCSB__VSD_MSG_HDR) == q);
  FUZZ_CHECK(hcsb__vsd_le32(r->out + HCSB__VSD_MSG_HDR + 4) == last);
  FUZZ_CHECK(!r->vh.vq[q].started && r->vh.kick_fd[q] < 0);
}

static void host(rig_t *r) {
  for (hcsb__vsd_conn_t *c = r->dev.all, *next; c != NULL; c = next) {
    next = c->anext;
    if (c->state == HCSB__VSD_DIALING) hcsb__vsd_host_connected(&r->dev, c, 0);
  }
  fake_host_flush(&r->host, &r->dev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static rig_t r;
  static uint8_t *ram;
  fuzz_in_t in = {data, size};

  if (ram == NULL) {
    r.memfd = memfd_create("fuzz-vhost", MFD_CLOEXEC);
    FUZZ_CHECK(r.memfd >= 0 && ftruncate(r.memfd, FAKE_RAM) == 0);
    ram = mmap(NULL, FAKE_RAM, PROT_READ | PROT_WRITE, MAP_SHARED, r.memfd, 0);
    FUZZ_CHECK(ram != MAP_FAILED);
  }
  unsigned baseline = open_fds();
  memset(ram, 0, FAKE_RAM);
  uint16_t num = (uint16_t)(1u << (fuzz_u8(&in) % 9));
  fake_vm_init_ram(&r.vm, num, ram);
  fake_host_init(&r.host);
  hcsb__vsd_dev_init(&r.dev, FAKE_CID, &fake_ops, &r.host);
  hcsb__vsd_vhost_init(&r.vh, FAKE_CID);
  r.vh.data = &r;
  r.vh.kick_closing = on_kick_closing;
  r.vh.reset = on_reset;

  for (unsigned ops = 0; in.n > 0 && ops < 256; ops++) {
    switch (fuzz_u8(&in) % 8) {
      case 0:
        raw(&r, &in);
        break;
      case 1:
        mem_table(&r, &in, 0);
        break;
      case 2:
        setup(&r, &in, num);
        break;
      case 3:
        ring(&r, &in);
        break;
      case 4: {
        uint32_t off = (uint32_t)(fuzz_uN(&in, 4) % FAKE_RAM);
        size_t n = fuzz_u8(&in);
        if (n > FAKE_RAM - off) n = FAKE_RAM - off;
        fuzz_take(&in, ram + off, n);
        break;
      }
      case 5:
        host(&r);
        break;
      case 6:
        get_base(&r, &in);
        break;
      default: /* the frontend goes away */
        hcsb__vsd_dev_reset(&r.dev);
        hcsb__vsd_vhost_free(&r.vh);
        FUZZ_CHECK(r.vh.mem.n == 0 && r.vh.features == 0);
        for (unsigned i = 0; i < HCSB__VSD_NQUEUES; i++)
          FUZZ_CHECK(r.vh.kick_fd[i] < 0 && r.vh.call_fd[i] < 0 &&
                     r.vh.err_fd[i] < 0 && r.vh.vq[i].num == 0);
    }
  }
  hcsb__vsd_dev_reset(&r.dev);
  hcsb__vsd_vhost_free(&r.vh);
  fake_host_free(&r.host);
  FUZZ_CHECK(open_fds() == baseline);
  FUZZ_CHECK(ram_maps() == 1);
  return 0;
}
