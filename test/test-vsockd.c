/* hcsb-vsockd's pure parts against fake guest memory: the packet header,
 * the descriptor-chain walk and what it rejects, the connection state
 * machine, credit accounting both ways, the caps, and the vhost-user
 * messages (with a real memfd for the memory table). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runner.h"
#include "vsockd-fake.h"

typedef struct {
  fake_vm_t vm;
  fake_host_t host;
  hcsb__vsd_dev_t dev;
} rig_t;

static rig_t *rig_new(void) {
  rig_t *r = calloc(1, sizeof *r);
  fake_vm_init(&r->vm, 256);
  fake_host_init(&r->host);
  hcsb__vsd_dev_init(&r->dev, FAKE_CID, &fake_ops, &r->host);
  return r;
}

static void rig_free(rig_t *r) {
  hcsb__vsd_dev_reset(&r->dev);
  fake_host_free(&r->host);
  fake_vm_free(&r->vm);
  free(r);
}

/* The next packet for the guest is a control packet `op`. */
static hcsb__vsd_hdr_t expect_op(rig_t *r, uint16_t op) {
  hcsb__vsd_hdr_t got;
  uint8_t p[16];
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), 0);
  CHECK_EQ(got.op, op);
  CHECK_U64(got.src_cid, HCSB__VSD_HOST_CID);
  CHECK_U64(got.dst_cid, FAKE_CID);
  return got;
}

/* Guest port 1234 connects to host port 5000 and the host side accepts. */
static hcsb__vsd_conn_t *establish(rig_t *r, uint32_t guest_buf_alloc) {
  hcsb__vsd_hdr_t h = fake_hdr(HCSB__VSD_OP_REQUEST, 1234, 5000), got;
  uint8_t p[16];
  h.buf_alloc = guest_buf_alloc;
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  CHECK_EQ(r->host.connects, 1);
  CHECK_EQ(r->host.connect_port, 5000);
  hcsb__vsd_conn_t *c = r->host.last_conn;
  CHECK(c != NULL);
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), -1); /* not yet */
  hcsb__vsd_host_connected(&r->dev, c, 0);
  got = expect_op(r, HCSB__VSD_OP_RESPONSE);
  CHECK_U64(got.src_cid, HCSB__VSD_HOST_CID);
  CHECK_U64(got.dst_cid, FAKE_CID);
  CHECK_EQ(got.src_port, 5000);
  CHECK_EQ(got.dst_port, 1234);
  CHECK_EQ(got.type, HCSB__VSD_TYPE_STREAM);
  CHECK_EQ(got.buf_alloc, HCSB__VSD_BUF_ALLOC);
  CHECK_EQ(r->host.last_reading, 1);
  return c;
}

static void test_header_layout(void) {
  hcsb__vsd_hdr_t h = {0x0102030405060708ull,
                       2,
                       0x11223344,
                       0x55667788,
                       0x99aabbcc,
                       1,
                       5,
                       0xdeadbeef,
                       0x00040000,
                       7};
  hcsb__vsd_hdr_t back;
  uint8_t raw[HCSB__VSD_HDR_LEN];
  hcsb__vsd_hdr_encode(&h, raw);
  static const uint8_t want[HCSB__VSD_HDR_LEN] = {
      8,    7,    6,    5,    4,    3,    2,    1,    2,    0,    0,
      0,    0,    0,    0,    0,    0x44, 0x33, 0x22, 0x11, 0x88, 0x77,
      0x66, 0x55, 0xcc, 0xbb, 0xaa, 0x99, 1,    0,    5,    0,    0xef,
      0xbe, 0xad, 0xde, 0,    0,    4,    0,    7,    0,    0,    0};
  CHECK_MEM(raw, want, sizeof want);
  hcsb__vsd_hdr_decode(raw, &back);
  CHECK_U64(back.src_cid, h.src_cid);
  CHECK_U64(back.dst_cid, h.dst_cid);
  CHECK_EQ(back.src_port, h.src_port);
  CHECK_EQ(back.dst_port, h.dst_port);
  CHECK_EQ(back.len, h.len);
  CHECK_EQ(back.type, h.type);
  CHECK_EQ(back.op, h.op);
  CHECK_EQ(back.flags, h.flags);
  CHECK_EQ(back.buf_alloc, h.buf_alloc);
  CHECK_EQ(back.fwd_cnt, h.fwd_cnt);
}

static void test_memory_bounds(void) {
  hcsb__vsd_mem_t m = {0};
  uint8_t buf[64];
  m.n = 1;
  m.r[0].gpa = 1000;
  m.r[0].size = 64;
  m.r[0].uva = 5000;
  m.r[0].host = buf;
  CHECK(hcsb__vsd_gpa(&m, 1000, 64) == buf);
  CHECK(hcsb__vsd_gpa(&m, 1063, 1) == buf + 63);
  CHECK(hcsb__vsd_gpa(&m, 1064, 0) == buf + 64);
  CHECK(hcsb__vsd_gpa(&m, 1063, 2) == NULL);
  CHECK(hcsb__vsd_gpa(&m, 999, 1) == NULL);
  CHECK(hcsb__vsd_gpa(&m, 1001, UINT64_MAX) == NULL);
  CHECK(hcsb__vsd_gpa(&m, UINT64_MAX, 2) == NULL);
  CHECK(hcsb__vsd_uva(&m, 5010, 4) == buf + 10);
  CHECK(hcsb__vsd_uva(&m, 1010, 4) == NULL);
}

/* Pops the one chain published at head 0 on the tx ring. */
static int pop_head0(fake_vm_t *vm, hcsb__vsd_chain_t *c) {
  fake_publish(vm, FAKE_TX, 0);
  CHECK(hcsb__vsd_vring_ready(&vm->vq[FAKE_TX], &vm->mem));
  return hcsb__vsd_vring_pop(&vm->vq[FAKE_TX], &vm->mem, c);
}

static void test_chain_walk(void) {
  fake_vm_t vm;
  hcsb__vsd_chain_t c;
  uint8_t out[8];
  fake_vm_init(&vm, 16);
  uint64_t a = fake_alloc(&vm, 44), b = fake_alloc(&vm, 100);
  memcpy(fake_ptr(&vm, a), "headerbytes", 11);
  fake_desc(&vm, FAKE_TX, 0, a, 44, 1, 3);
  fake_desc(&vm, FAKE_TX, 3, b, 100, 2, 0);
  CHECK_EQ(pop_head0(&vm, &c), 1);
  CHECK_EQ(c.head, 0);
  CHECK_EQ(c.nr, 1);
  CHECK_EQ(c.nw, 1);
  CHECK_U64(c.rlen, 44);
  CHECK_U64(c.wlen, 100);
  CHECK(c.seg[1].p == fake_ptr(&vm, b));
  CHECK_EQ(hcsb__vsd_chain_read(&c, 6, out, 5), 5);
  CHECK_MEM(out, "bytes", 5);
  CHECK_EQ(hcsb__vsd_chain_write(&c, 98, "xyz", 3), 2); /* 2 bytes of room */
  CHECK_EQ(hcsb__vsd_vring_pop(&vm.vq[FAKE_TX], &vm.mem, &c), 0); /* empty */
  fake_vm_free(&vm);
}

static void test_chain_rejects(void) {
  fake_vm_t vm;
  hcsb__vsd_chain_t c;
  fake_vm_init(&vm, 16);
  uint64_t a = fake_alloc(&vm, 64);

  /* next beyond the table */
  fake_desc(&vm, FAKE_TX, 0, a, 8, 1, 16);
  CHECK_EQ(pop_head0(&vm, &c), -EINVAL);
  CHECK_EQ(c.head, 0);
  /* a loop 0 -> 1 -> 0 */
  fake_desc(&vm, FAKE_TX, 0, a, 8, 1, 1);
  fake_desc(&vm, FAKE_TX, 1, a, 8, 1, 0);
  CHECK_EQ(pop_head0(&vm, &c), -EINVAL);
  /* outside guest memory, and straddling its end */
  fake_desc(&vm, FAKE_TX, 0, 0x10, 8, 0, 0);
  CHECK_EQ(pop_head0(&vm, &c), -EINVAL);
  fake_desc(&vm, FAKE_TX, 0, FAKE_GPA + FAKE_RAM - 4, 8, 0, 0);
  CHECK_EQ(pop_head0(&vm, &c), -EINVAL);
  fake_desc(&vm, FAKE_TX, 0, UINT64_MAX - 3, 8, 0, 0);
  CHECK_EQ(pop_head0(&vm, &c), -EINVAL);
  /* readable after writable */
  fake_desc(&vm, FAKE_TX, 0, a, 8, 1 | 2, 1);
  fake_desc(&vm, FAKE_TX, 1, a, 8, 0, 0);
  CHECK_EQ(pop_head0(&vm, &c), -EINVAL);
  /* indirect without the feature */
  fake_desc(&vm, FAKE_TX, 0, a, 32, 4, 0);
  CHECK_EQ(pop_head0(&vm, &c), -EINVAL);
  /* more buffers than HCSB__VSD_MAX_SEGS through a long indirect table */
  vm.vq[FAKE_TX].indirect = 1;
  uint64_t t = fake_alloc(&vm, 16 * 100);
  uint8_t *tp = fake_ptr(&vm, t);
  for (unsigned i = 0; i < 100; i++) {
    hcsb__vsd_put64(tp + 16 * i, a);
    hcsb__vsd_put32(tp + 16 * i + 8, 1);
    hcsb__vsd_put16(tp + 16 * i + 12, i < 99 ? 1 : 0);
    hcsb__vsd_put16(tp + 16 * i + 14, (uint16_t)(i + 1));
  }
  fake_desc(&vm, FAKE_TX, 0, t, 16 * 100, 4, 0);
  CHECK_EQ(pop_head0(&vm, &c), -EINVAL);
  /* an indirect table that loops, one that nests, a ragged length, and
   * INDIRECT together with NEXT */
  hcsb__vsd_put16(tp + 16 * 1 + 14, 0);
  fake_desc(&vm, FAKE_TX, 0, t, 16 * 2, 4, 0);
  CHECK_EQ(pop_head0(&vm, &c), -EINVAL);
  hcsb__vsd_put16(tp + 12, 4);
  fake_desc(&vm, FAKE_TX, 0, t, 16, 4, 0);
  CHECK_EQ(pop_head0(&vm, &c), -EINVAL);
  fake_desc(&vm, FAKE_TX, 0, t, 20, 4, 0);
  CHECK_EQ(pop_head0(&vm, &c), -EINVAL);
  hcsb__vsd_put16(tp + 12, 0);
  fake_desc(&vm, FAKE_TX, 0, t, 16, 4 | 1, 1);
  CHECK_EQ(pop_head0(&vm, &c), -EINVAL);
  /* ... while a good indirect table works */
  fake_desc(&vm, FAKE_TX, 0, t, 16, 4, 0);
  CHECK_EQ(pop_head0(&vm, &c), 1);
  CHECK_EQ(c.nr, 1);
  /* a head out of range breaks the ring for good */
  fake_publish(&vm, FAKE_TX, 16);
  CHECK_EQ(hcsb__vsd_vring_pop(&vm.vq[FAKE_TX], &vm.mem, &c), -EIO);
  CHECK(!hcsb__vsd_vring_ready(&vm.vq[FAKE_TX], &vm.mem));
  fake_vm_free(&vm);
}

/* virtio 1.x 2.7.5.3.2: direct descriptors followed by one INDIRECT
 * descriptor, which ends the chain, must be taken. */
static void test_chain_direct_then_indirect(void) {
  fake_vm_t vm;
  hcsb__vsd_chain_t c;
  uint8_t out[8];
  fake_vm_init(&vm, 16);
  uint64_t h = fake_alloc(&vm, 44), b = fake_alloc(&vm, 100);
  uint64_t t = fake_alloc(&vm, 32);
  uint8_t *tp = fake_ptr(&vm, t);
  memcpy(fake_ptr(&vm, h), "header", 6);
  /* table: 60 writable bytes, then 40 more */
  hcsb__vsd_put64(tp, b);
  hcsb__vsd_put32(tp + 8, 60);
  hcsb__vsd_put16(tp + 12, 1 | 2);
  hcsb__vsd_put16(tp + 14, 1);
  hcsb__vsd_put64(tp + 16, b + 60);
  hcsb__vsd_put32(tp + 24, 40);
  hcsb__vsd_put16(tp + 28, 2);
  /* head 0: the header; 5: the table (its WRITE flag means nothing) */
  fake_desc(&vm, FAKE_TX, 0, h, 44, 1, 5);
  fake_desc(&vm, FAKE_TX, 5, t, 32, 4 | 2, 0);
  vm.vq[FAKE_TX].indirect = 1;
  CHECK_EQ(pop_head0(&vm, &c), 1);
  CHECK_EQ(c.head, 0);
  CHECK_EQ(c.nr, 1);
  CHECK_EQ(c.nw, 2);
  CHECK_U64(c.rlen, 44);
  CHECK_U64(c.wlen, 100);
  CHECK_EQ(hcsb__vsd_chain_read(&c, 0, out, 6), 6);
  CHECK_MEM(out, "header", 6);
  CHECK_EQ(hcsb__vsd_chain_write(&c, 58, "wxyz", 4), 4); /* across both */
  CHECK_MEM(fake_ptr(&vm, b + 58), "wxyz", 4);
  /* Still refused: the table followed by more (NEXT), or without the
   * feature, or a table holding a readable buffer after writable ones. */
  fake_desc(&vm, FAKE_TX, 5, t, 32, 4 | 1, 6);
  fake_desc(&vm, FAKE_TX, 6, h, 44, 2, 0);
  CHECK_EQ(pop_head0(&vm, &c), -EINVAL);
  fake_desc(&vm, FAKE_TX, 5, t, 32, 4, 0);
  vm.vq[FAKE_TX].indirect = 0;
  CHECK_EQ(pop_head0(&vm, &c), -EINVAL);
  vm.vq[FAKE_TX].indirect = 1;
  fake_desc(&vm, FAKE_TX, 0, h, 44, 1 | 2, 5); /* writable direct part */
  hcsb__vsd_put16(tp + 12, 1);                 /* readable in the table */
  CHECK_EQ(pop_head0(&vm, &c), -EINVAL);
  fake_vm_free(&vm);
}

static void test_ring_index_jump(void) {
  fake_vm_t vm;
  hcsb__vsd_chain_t c;
  fake_vm_init(&vm, 16);
  /* The driver claims 17 new entries on a ring of 16. */
  hcsb__vsd_put16(vm.ram + 0x10000 + 0x8000 + 2, 17);
  CHECK(hcsb__vsd_vring_ready(&vm.vq[FAKE_TX], &vm.mem));
  CHECK_EQ(hcsb__vsd_vring_pop(&vm.vq[FAKE_TX], &vm.mem, &c), -EIO);
  CHECK_EQ(vm.vq[FAKE_TX].broken, 1);
  /* Ring parts outside memory or misaligned: the ring is not run. */
  fake_vm_free(&vm);
  fake_vm_init(&vm, 16);
  vm.vq[FAKE_TX].used_uva = FAKE_UVA + FAKE_RAM - 8;
  CHECK(!hcsb__vsd_vring_ready(&vm.vq[FAKE_TX], &vm.mem));
  vm.vq[FAKE_TX].used_uva = FAKE_UVA + 0xa002;
  CHECK(!hcsb__vsd_vring_ready(&vm.vq[FAKE_TX], &vm.mem));
  fake_vm_free(&vm);
}

static void test_chain_spans_regions(void) {
  fake_vm_t vm;
  hcsb__vsd_chain_t c;
  fake_vm_init(&vm, 16);
  /* Split the RAM into two adjacent regions at +512 KiB. */
  vm.mem.n = 2;
  vm.mem.r[0].size = FAKE_RAM / 2;
  vm.mem.r[1] = vm.mem.r[0];
  vm.mem.r[1].gpa += FAKE_RAM / 2;
  vm.mem.r[1].uva += FAKE_RAM / 2;
  vm.mem.r[1].host += FAKE_RAM / 2;
  fake_desc(&vm, FAKE_TX, 0, FAKE_GPA + FAKE_RAM / 2 - 10, 30, 0, 0);
  CHECK_EQ(pop_head0(&vm, &c), 1);
  CHECK_EQ(c.nr, 2);
  CHECK_EQ(c.seg[0].len, 10);
  CHECK_EQ(c.seg[1].len, 20);
  CHECK_U64(c.rlen, 30);
  fake_vm_free(&vm);
}

static void test_guest_connect_and_data(void) {
  rig_t *r = rig_new();
  hcsb__vsd_conn_t *c = establish(r, 262144);
  hcsb__vsd_hdr_t h = fake_hdr(HCSB__VSD_OP_RW, 1234, 5000), got;
  uint8_t p[4096];

  h.len = 11;
  fake_send(&r->vm, &r->dev, &h, "hello world", 11);
  CHECK_EQ(r->host.data_len, 11);
  CHECK_MEM(r->host.data, "hello world", 11);
  CHECK_EQ(c->rx_cnt, 11);
  CHECK_EQ(c->fwd_cnt, 0); /* not written yet */
  fake_host_flush(&r->host, &r->dev);
  CHECK_EQ(c->fwd_cnt, 11);

  /* Host -> guest: bytes land in the read space and go out as RW. */
  uint8_t *space;
  size_t len;
  hcsb__vsd_host_read_space(c, &space, &len);
  CHECK(len >= 5);
  memcpy(space, "reply", 5);
  hcsb__vsd_host_read(&r->dev, c, 5);
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), 5);
  CHECK_EQ(got.op, HCSB__VSD_OP_RW);
  CHECK_EQ(got.fwd_cnt, 11);
  CHECK_MEM(p, "reply", 5);
  CHECK_EQ(c->tx_cnt, 5);
  rig_free(r);
}

static void test_refused_and_unknown(void) {
  rig_t *r = rig_new();
  hcsb__vsd_hdr_t h = fake_hdr(HCSB__VSD_OP_REQUEST, 77, 5001), got;
  uint8_t p[16];

  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  hcsb__vsd_host_connected(&r->dev, r->host.last_conn, -ENOENT);
  CHECK_EQ(r->host.closes, 1);
  CHECK_EQ(r->dev.nconns, 0);
  got = expect_op(r, HCSB__VSD_OP_RST);
  CHECK_EQ(got.src_port, 5001);
  CHECK_EQ(got.dst_port, 77);

  /* A dial that fails at once is the same RST. */
  r->host.connect_rc = -1;
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  expect_op(r, HCSB__VSD_OP_RST);

  /* Data for a connection we never had: RST.  An RST for one: nothing. */
  h = fake_hdr(HCSB__VSD_OP_RW, 9, 9);
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  expect_op(r, HCSB__VSD_OP_RST);
  h.op = HCSB__VSD_OP_RST;
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), -1);

  /* Another source CID, or a packet not for the host: dropped silently. */
  h = fake_hdr(HCSB__VSD_OP_REQUEST, 1, 2);
  h.src_cid = 4;
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  h = fake_hdr(HCSB__VSD_OP_REQUEST, 1, 2);
  h.dst_cid = 5;
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  CHECK_EQ(r->host.connects, 2);
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), -1);
  CHECK_EQ(r->dev.stats.bad_pkts, 2);
  rig_free(r);
}

static void test_guest_credit_lie(void) {
  rig_t *r = rig_new();
  hcsb__vsd_conn_t *c = establish(r, 262144);
  hcsb__vsd_hdr_t h = fake_hdr(HCSB__VSD_OP_RW, 1234, 5000);
  static uint8_t chunk[65536];

  h.len = sizeof chunk;
  /* Exactly our buffer fits while nothing is written out... */
  for (int i = 0; i < 4; i++) fake_send(&r->vm, &r->dev, &h, chunk, h.len);
  CHECK_EQ(r->dev.nconns, 1);
  CHECK_EQ(r->host.npending, 1); /* one write in flight, the rest staged */
  CHECK_EQ(c->wlen, 3 * sizeof chunk);
  /* ... one byte more is a lie: reset, and the held data is dropped. */
  h.len = 1;
  fake_send(&r->vm, &r->dev, &h, chunk, 1);
  CHECK_EQ(r->dev.stats.credit_violations, 1);
  CHECK_EQ(r->dev.nconns, 0);
  CHECK_EQ(r->host.npending, 0);
  expect_op(r, HCSB__VSD_OP_RST);
  rig_free(r);
}

/* A guest sending one byte per packet to a host that is slow to read
 * costs one staging buffer, not a write per byte; order is kept, and the
 * half-close waits for the staged bytes. */
static void test_small_packets_coalesce(void) {
  rig_t *r = rig_new();
  hcsb__vsd_conn_t *c = establish(r, 262144);
  hcsb__vsd_hdr_t h = fake_hdr(HCSB__VSD_OP_RW, 1234, 5000);
  char want[1000];
  h.len = 1;
  for (int i = 0; i < 1000; i++) {
    want[i] = (char)('a' + i % 26);
    fake_send(&r->vm, &r->dev, &h, &want[i], 1);
  }
  CHECK_EQ(r->host.npending, 1);
  CHECK_EQ(c->wlen, 999);
  h = fake_hdr(HCSB__VSD_OP_SHUTDOWN, 1234, 5000);
  h.flags = HCSB__VSD_SHUT_SEND;
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  CHECK_EQ(r->host.shutdowns, 0); /* 999 bytes still to go first */
  fake_host_flush(&r->host, &r->dev);
  CHECK_EQ(r->host.shutdowns, 1);
  CHECK_EQ(r->host.data_len, 1000);
  CHECK_MEM(r->host.data, want, 1000);
  CHECK_EQ(c->fwd_cnt, 1000);
  rig_free(r);
}

static void test_oversized_payload(void) {
  rig_t *r = rig_new();
  establish(r, 262144);
  hcsb__vsd_hdr_t h = fake_hdr(HCSB__VSD_OP_RW, 1234, 5000);
  /* len says more than the chain holds */
  h.len = 100;
  fake_send(&r->vm, &r->dev, &h, "short", 5);
  CHECK_EQ(r->dev.nconns, 0);
  CHECK_EQ(r->host.data_len, 0);
  expect_op(r, HCSB__VSD_OP_RST);
  r->host.connects = 0;
  establish(r, 262144);
  h.len = HCSB__VSD_MAX_PAYLOAD + 1;
  static uint8_t big[HCSB__VSD_MAX_PAYLOAD + 1];
  fake_send(&r->vm, &r->dev, &h, big, h.len);
  CHECK_EQ(r->dev.nconns, 0);
  CHECK_EQ(r->host.data_len, 0);
  rig_free(r);
}

static void test_host_respects_guest_credit(void) {
  rig_t *r = rig_new();
  hcsb__vsd_conn_t *c = establish(r, 1000);
  hcsb__vsd_hdr_t got, h;
  uint8_t *space, p[4096];
  size_t len;

  hcsb__vsd_host_read_space(c, &space, &len);
  CHECK_EQ(len, 1000); /* no more than the guest's buffer */
  memset(space, 'x', len);
  hcsb__vsd_host_read(&r->dev, c, len);
  CHECK_EQ(r->host.last_reading, 0); /* stopped: no credit left */
  hcsb__vsd_host_read_space(c, &space, &len);
  CHECK_EQ(len, 0);
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), 1000);
  /* Credit exhausted with nothing pending: no CREDIT_REQUEST needed. */
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), -1);
  /* The guest consumed 600 bytes: 600 more may be read. */
  h = fake_hdr(HCSB__VSD_OP_CREDIT_UPDATE, 1234, 5000);
  h.buf_alloc = 1000;
  h.fwd_cnt = 600;
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  CHECK_EQ(r->host.last_reading, 1);
  hcsb__vsd_host_read_space(c, &space, &len);
  CHECK_EQ(len, 600);
  /* A fwd_cnt beyond what we sent is no credit at all. */
  h.fwd_cnt = 5000;
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  hcsb__vsd_host_read_space(c, &space, &len);
  CHECK_EQ(len, 0);
  /* A huge buf_alloc still leaves us at HCSB__VSD_TXBUF. */
  h.buf_alloc = UINT32_MAX;
  h.fwd_cnt = 1000;
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  hcsb__vsd_host_read_space(c, &space, &len);
  CHECK_EQ(len, HCSB__VSD_TXBUF);
  rig_free(r);
}

/* An rx buffer with room for the header only cannot carry data: it goes
 * back empty and the data waits for the next buffer. */
static void test_header_only_rx_buffer(void) {
  rig_t *r = rig_new();
  hcsb__vsd_conn_t *c = establish(r, 262144);
  hcsb__vsd_hdr_t got;
  uint8_t *space, p[4096];
  size_t len;
  uint32_t id, used_len;
  int signal = 0;

  hcsb__vsd_host_read_space(c, &space, &len);
  memcpy(space, "data", 4);
  hcsb__vsd_host_read(&r->dev, c, 4);
  uint64_t a = fake_alloc(&r->vm, HCSB__VSD_HDR_LEN);
  fake_desc(&r->vm, FAKE_RX, 100, a, HCSB__VSD_HDR_LEN, 2, 0);
  fake_publish(&r->vm, FAKE_RX, 100);
  uint16_t before = fake_used_idx(&r->vm, FAKE_RX);
  CHECK_EQ(
      hcsb__vsd_pump_rx(&r->dev, &r->vm.vq[FAKE_RX], &r->vm.mem, 1, &signal),
      1);
  fake_used(&r->vm, FAKE_RX, before, &id, &used_len);
  CHECK_EQ(id, 100);
  CHECK_EQ(used_len, 0);
  CHECK(hcsb__vsd_rx_pending(&r->dev));
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), 4);
  CHECK_MEM(p, "data", 4);
  rig_free(r);
}

static uint8_t pat(size_t i) {
  return (uint8_t)(i * 7 + (i >> 9));
}

/* Host bytes stay where the socket read put them until they go to the
 * guest: no shifting after each packet (Linux guests post 4 KiB buffers,
 * and shifting the rest of 64 KiB each time cost several times the data).
 * The buffer is a ring, so reads continue at its start once the end is
 * reached, and the guest still gets every byte in order. */
static void test_host_data_not_moved(void) {
  rig_t *r = rig_new();
  hcsb__vsd_conn_t *c = establish(r, 1u << 20);
  hcsb__vsd_hdr_t got;
  uint8_t *first, *space, p[4096];
  size_t len, in = 0, out = 0;

  hcsb__vsd_host_read_space(c, &first, &len);
  CHECK_EQ(len, HCSB__VSD_TXBUF);
  for (size_t i = 0; i < 16384; i++) first[i] = pat(in++);
  hcsb__vsd_host_read(&r->dev, c, 16384);
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), 4096);
  for (size_t i = 0; i < 4096; i++) CHECK_EQ(p[i], pat(out++));
  /* The 12 KiB left did not move: the next read goes right behind them. */
  hcsb__vsd_host_read_space(c, &space, &len);
  CHECK(space == first + 16384);
  CHECK_EQ(len, HCSB__VSD_TXBUF - 16384);
  for (size_t i = 0; i < len; i++) space[i] = pat(in++);
  hcsb__vsd_host_read(&r->dev, c, len);
  for (int k = 0; k < 2; k++) {
    CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), 4096);
    for (size_t i = 0; i < 4096; i++) CHECK_EQ(p[i], pat(out++));
  }
  /* The end is reached: the room freed at the start is next. */
  hcsb__vsd_host_read_space(c, &space, &len);
  CHECK(space == first);
  CHECK_EQ(len, 3 * 4096);
  for (size_t i = 0; i < len; i++) space[i] = pat(in++);
  hcsb__vsd_host_read(&r->dev, c, len);
  CHECK_EQ(c->tx_len, HCSB__VSD_TXBUF);
  hcsb__vsd_host_read_space(c, &space, &len);
  CHECK_EQ(len, 0); /* full */
  int n;
  while ((n = fake_recv(&r->vm, &r->dev, &got, p, sizeof p)) > 0)
    for (int i = 0; i < n; i++) CHECK_EQ(p[i], pat(out++));
  CHECK_EQ(out, in);
  CHECK_EQ(c->tx_cnt, in);
  rig_free(r);
}

/* fwd_cnt_sent is what the guest was told: an rx buffer handed back empty
 * tells it nothing, so the CREDIT_UPDATE trigger must not count it. */
static void test_fwd_cnt_sent_only_when_sent(void) {
  rig_t *r = rig_new();
  hcsb__vsd_conn_t *c = establish(r, 262144);
  hcsb__vsd_hdr_t h = fake_hdr(HCSB__VSD_OP_RW, 1234, 5000), got;
  static uint8_t chunk[65536];
  uint8_t *space, p[4096];
  size_t len;
  int signal = 0;

  h.len = sizeof chunk;
  fake_send(&r->vm, &r->dev, &h, chunk, h.len);
  fake_host_flush(&r->host, &r->dev);
  CHECK_EQ(c->fwd_cnt, 65536);
  CHECK_EQ(c->fwd_cnt_sent, 0);
  /* Host data waits; the guest offers a buffer with no room past the
   * header: it goes back empty, and the guest learnt nothing. */
  hcsb__vsd_host_read_space(c, &space, &len);
  memcpy(space, "data", 4);
  hcsb__vsd_host_read(&r->dev, c, 4);
  uint64_t a = fake_alloc(&r->vm, HCSB__VSD_HDR_LEN);
  fake_desc(&r->vm, FAKE_RX, 200, a, HCSB__VSD_HDR_LEN, 2, 0);
  fake_publish(&r->vm, FAKE_RX, 200);
  CHECK_EQ(
      hcsb__vsd_pump_rx(&r->dev, &r->vm.vq[FAKE_RX], &r->vm.mem, 1, &signal),
      1);
  CHECK_EQ(c->fwd_cnt_sent, 0);
  /* Half our buffer used since the guest last heard: an update is due. */
  fake_send(&r->vm, &r->dev, &h, chunk, h.len);
  fake_host_flush(&r->host, &r->dev);
  CHECK(c->owe & HCSB__VSD_OWE_CREDIT_UPDATE);
  /* The data packet carries it. */
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), 4);
  CHECK_EQ(got.fwd_cnt, 131072);
  CHECK_EQ(c->fwd_cnt_sent, 131072);
  CHECK(!(c->owe & HCSB__VSD_OWE_CREDIT_UPDATE));
  rig_free(r);
}

/* The guest's SHUTDOWN(RCV) shuts the host socket's read side, so a host
 * writer gets EPIPE rather than blocking once its buffer fills; what was
 * waiting for the guest is dropped, the other direction goes on. */
static void test_guest_shutdown_rcv(void) {
  rig_t *r = rig_new();
  hcsb__vsd_conn_t *c = establish(r, 262144);
  hcsb__vsd_hdr_t h = fake_hdr(HCSB__VSD_OP_SHUTDOWN, 1234, 5000), got;
  uint8_t *space, p[64];
  size_t len;

  hcsb__vsd_host_read_space(c, &space, &len);
  memset(space, 'x', 100);
  hcsb__vsd_host_read(&r->dev, c, 100);
  h.flags = HCSB__VSD_SHUT_RCV;
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  CHECK_EQ(r->host.read_shutdowns, 1);
  CHECK_EQ(r->host.shutdowns, 0);
  CHECK_EQ(r->host.last_reading, 0);
  CHECK_EQ(c->tx_len, 0);
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), -1);
  /* Guest -> host still flows; a second SHUTDOWN(RCV) changes nothing. */
  h = fake_hdr(HCSB__VSD_OP_RW, 1234, 5000);
  h.len = 3;
  fake_send(&r->vm, &r->dev, &h, "abc", 3);
  CHECK_EQ(r->host.data_len, 3);
  h = fake_hdr(HCSB__VSD_OP_SHUTDOWN, 1234, 5000);
  h.flags = HCSB__VSD_SHUT_RCV;
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  CHECK_EQ(r->host.read_shutdowns, 1);
  /* Then SEND as well: once "abc" is written, the connection ends. */
  h.flags = HCSB__VSD_SHUT_SEND;
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  fake_host_flush(&r->host, &r->dev);
  CHECK_EQ(r->host.shutdowns, 1);
  CHECK_EQ(r->dev.nconns, 0);
  expect_op(r, HCSB__VSD_OP_RST);
  rig_free(r);
}

/* UV_ENOBUFS (no memory for a read buffer) is not the socket's failure:
 * reading stops, the connection lives, the sweep tries again.  Other read
 * errors reset it. */
static void test_read_without_buffer(void) {
  rig_t *r = rig_new();
  hcsb__vsd_conn_t *c = establish(r, 262144);
  hcsb__vsd_hdr_t got;
  uint8_t *space, p[64];
  size_t len;

  hcsb__vsd_host_read_failed(&r->dev, c, -ENOBUFS);
  CHECK_EQ(r->dev.nconns, 1);
  CHECK_EQ(r->host.closes, 0);
  CHECK_EQ(r->host.last_reading, 0);
  CHECK(!hcsb__vsd_rx_pending(&r->dev)); /* no RST */
  hcsb__vsd_sweep(&r->dev, 1000);
  CHECK_EQ(r->host.last_reading, 1);
  hcsb__vsd_host_read_space(c, &space, &len);
  memcpy(space, "later", 5);
  hcsb__vsd_host_read(&r->dev, c, 5);
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), 5);
  CHECK_MEM(p, "later", 5);
  hcsb__vsd_host_read_failed(&r->dev, c, -ECONNRESET);
  CHECK_EQ(r->dev.nconns, 0);
  expect_op(r, HCSB__VSD_OP_RST);
  rig_free(r);
}

static void test_credit_update_and_request(void) {
  rig_t *r = rig_new();
  hcsb__vsd_conn_t *c = establish(r, 262144);
  hcsb__vsd_hdr_t h = fake_hdr(HCSB__VSD_OP_CREDIT_REQUEST, 1234, 5000), got;
  static uint8_t chunk[65536];
  uint8_t p[4096];

  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  got = expect_op(r, HCSB__VSD_OP_CREDIT_UPDATE);
  CHECK_EQ(got.buf_alloc, HCSB__VSD_BUF_ALLOC);
  CHECK_EQ(got.fwd_cnt, 0);
  /* Half our buffer used and written out: we tell the guest unasked. */
  h = fake_hdr(HCSB__VSD_OP_RW, 1234, 5000);
  h.len = sizeof chunk;
  fake_send(&r->vm, &r->dev, &h, chunk, h.len);
  fake_send(&r->vm, &r->dev, &h, chunk, h.len);
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), -1);
  fake_host_flush(&r->host, &r->dev);
  got = expect_op(r, HCSB__VSD_OP_CREDIT_UPDATE);
  CHECK_EQ(got.fwd_cnt, 2 * sizeof chunk);
  CHECK_EQ(c->fwd_cnt_sent, 2 * sizeof chunk);
  rig_free(r);
}

static void test_shutdown_sequence(void) {
  rig_t *r = rig_new();
  hcsb__vsd_conn_t *c = establish(r, 262144);
  hcsb__vsd_hdr_t h = fake_hdr(HCSB__VSD_OP_SHUTDOWN, 1234, 5000), got;
  uint8_t p[4096], *space;
  size_t len;

  /* The guest stops sending: half-close the host socket. */
  h.flags = HCSB__VSD_SHUT_SEND;
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  CHECK_EQ(r->host.shutdowns, 1);
  CHECK_EQ(r->dev.nconns, 1);
  /* The host sends its last bytes and EOF: data first, then SHUTDOWN. */
  hcsb__vsd_host_read_space(c, &space, &len);
  memcpy(space, "bye", 3);
  hcsb__vsd_host_read(&r->dev, c, 3);
  hcsb__vsd_host_eof(&r->dev, c);
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), 3);
  CHECK_EQ(got.op, HCSB__VSD_OP_RW);
  got = expect_op(r, HCSB__VSD_OP_SHUTDOWN);
  CHECK_EQ(got.flags, HCSB__VSD_SHUT_SEND);
  /* Both directions done: closed, and the guest gets its RST. */
  CHECK_EQ(r->host.closes, 1);
  CHECK_EQ(r->dev.nconns, 0);
  expect_op(r, HCSB__VSD_OP_RST);
  rig_free(r);
}

static void test_guest_close_waits_for_writes(void) {
  rig_t *r = rig_new();
  establish(r, 262144);
  hcsb__vsd_hdr_t h = fake_hdr(HCSB__VSD_OP_RW, 1234, 5000);
  h.len = 4;
  fake_send(&r->vm, &r->dev, &h, "last", 4);
  h = fake_hdr(HCSB__VSD_OP_SHUTDOWN, 1234, 5000);
  h.flags = HCSB__VSD_SHUT_SEND | HCSB__VSD_SHUT_RCV;
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  CHECK_EQ(r->host.closes, 0); /* "last" is still being written */
  fake_host_flush(&r->host, &r->dev);
  CHECK_EQ(r->host.closes, 1);
  expect_op(r, HCSB__VSD_OP_RST);
  rig_free(r);
}

static void test_host_connect_handshake(void) {
  rig_t *r = rig_new();
  hcsb__vsd_hdr_t got, h;
  uint8_t p[4096], *space;
  size_t len;
  hcsb__vsd_conn_t *c = hcsb__vsd_host_accept(&r->dev, &r->host);

  CHECK(c != NULL);
  CHECK_EQ(r->host.last_reading, 1);
  hcsb__vsd_host_read_space(c, &space, &len);
  CHECK_EQ(len, HCSB__VSD_LINE_MAX); /* never more than one line */
  memcpy(space, "CONNECT 6000\nearly", 18);
  hcsb__vsd_host_read(&r->dev, c, 18);
  CHECK_EQ(r->host.last_reading, 0); /* until the guest answers */
  got = expect_op(r, HCSB__VSD_OP_REQUEST);
  CHECK_EQ(got.dst_port, 6000);
  CHECK_EQ(got.src_port, HCSB__VSD_PORT_BASE);
  CHECK_EQ(got.buf_alloc, HCSB__VSD_BUF_ALLOC);

  h = fake_hdr(HCSB__VSD_OP_RESPONSE, 6000, HCSB__VSD_PORT_BASE);
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  CHECK_EQ(r->host.data_len, 14);
  CHECK_MEM(r->host.data, "OK 2147483648\n", 14);
  CHECK_EQ(r->host.last_reading, 1);
  /* "OK" is not guest data: it does not move fwd_cnt. */
  fake_host_flush(&r->host, &r->dev);
  CHECK_EQ(c->fwd_cnt, 0);
  /* What followed the line reaches the guest as data. */
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), 5);
  CHECK_MEM(p, "early", 5);

  /* The guest refuses the next one: the host socket is closed. */
  c = hcsb__vsd_host_accept(&r->dev, &r->host);
  hcsb__vsd_host_read_space(c, &space, &len);
  memcpy(space, "CONNECT 7\n", 10);
  hcsb__vsd_host_read(&r->dev, c, 10);
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), 0);
  CHECK_EQ(got.src_port, HCSB__VSD_PORT_BASE + 1);
  h = fake_hdr(HCSB__VSD_OP_RST, 7, HCSB__VSD_PORT_BASE + 1);
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  CHECK(r->host.last_closed == c);
  CHECK_EQ(r->dev.nconns, 1);
  rig_free(r);
}

/* The CONNECT line as Firecracker reads it (src/vsockd/line.c). */
typedef struct {
  const char *in;
  size_t in_len; /* 0: strlen(in) */
  int rc;        /* 1 taken, -1 refused, 0 more bytes needed */
  uint32_t port;
  size_t line_len; /* the bytes judged */
  const char *why; /* the start of the refusal phrase */
} line_case_t;

static const line_case_t line_cases[] = {
    {"CONNECT 5000\n", 0, 1, 5000, 13, NULL},
    {"connect 52\n", 0, 1, 52, 11, NULL},
    {"CONNECT 52\r\n", 0, 1, 52, 12, NULL},
    {"  Connect\t 52  \n", 0, 1, 52, 16, NULL},
    {"CoNnEcT +7\n", 0, 1, 7, 11, NULL},
    {"CONNECT 0052 and more\n", 0, 1, 52, 22, NULL},
    {"CONNECT 4294967295\n", 0, 1, 4294967295u, 19, NULL},
    {"CONNECT 0\nafter", 0, 1, 0, 10, NULL},
    /* Firecracker reads ten bytes before it looks for the newline. */
    {"\nCONNECT 52\ndata", 0, 1, 52, 12, NULL},
    {"CONNECT\xc2\xa0"
     "52\n",
     0, 1, 52, 12, NULL}, /* U+00A0 */
    {"CONNECT\xe3\x80\x80"
     "9\n",
     0, 1, 9, 12, NULL}, /* U+3000 */
    /* 32 bytes without a newline are the line. */
    {"CONNECT 9                       data", 0, 1, 9, 32, NULL},
    {"CONNECT 5", 0, 0, 0, 0, NULL},
    {"CONN 5\n", 0, 0, 0, 0, NULL},
    {"CONNECT 5 waiting for the line", 0, 0, 0, 0, NULL},
    {"CONNECT x\n", 0, -1, 0, 10, "the port is not"},
    {"CONNECT -5\n", 0, -1, 0, 11, "the port is not"},
    {"CONNECT +\n\n", 0, -1, 0, 10, "the port is not"},
    {"CONNECT 5x\n", 0, -1, 0, 11, "the port is not"},
    {"CONNECT 4294967296\n", 0, -1, 0, 19, "the port is not"},
    {"CONNECT 99999999999\n", 0, -1, 0, 20, "the port is not"},
    {"CONNECT\n\n\n", 0, -1, 0, 10, "no port"},
    {"connects 5\n", 0, -1, 0, 11, "the line does not start"},
    {"          \n", 0, -1, 0, 11, "the line does not start"},
    {"OPEN 5000 now\n", 0, -1, 0, 14, "the line does not start"},
    {"11111111111111111111111111111111", 0, -1, 0, 32,
     "the line does not start"},
    {"CONNECT 5 \xff\n", 0, -1, 0, 12, "the line is not valid UTF-8"},
    {"CONNECT 5 \xed\xa0\x80\n", 0, -1, 0, 14, "the line is not valid"},
    {"CONNECT 5 \xc0\x80\n", 0, -1, 0, 13, "the line is not valid"},
    {"CONNECT 5 \xf4\x90\x80\x80\n", 0, -1, 0, 15, "the line is not valid"},
    {"CONNECT 5\0 \n", 12, -1, 0, 12, "the port is not"},
    /* a character cut by the 32-byte limit */
    {"CONNECT 5                     \xe3\x80\x80", 0, -1, 0, 32,
     "the line is not valid"},
};

static void test_connect_line_grammar(void) {
  for (size_t i = 0; i < sizeof line_cases / sizeof line_cases[0]; i++) {
    const line_case_t *t = &line_cases[i];
    size_t len = t->in_len ? t->in_len : strlen(t->in), line = 0;
    uint32_t port = 0;
    const char *why = NULL;
    int rc =
        hcsb__vsd_connect_line((const uint8_t *)t->in, len, &line, &port, &why);
    if (rc != t->rc)
      hcsb_test_fail(__FILE__, __LINE__, "case %zu: rc %d, want %d", i, rc,
                     t->rc);
    if (rc == 0) continue;
    CHECK_EQ(line, t->line_len);
    if (rc == 1) CHECK_EQ(port, t->port);
    if (rc == -1)
      CHECK(why != NULL && strncmp(why, t->why, strlen(t->why)) == 0);
  }
}

/* Lines Firecracker takes reach the guest as a REQUEST; the rest of the
 * bytes after the line are the first data. */
static void test_host_connect_lenient_lines(void) {
  rig_t *r = rig_new();
  hcsb__vsd_hdr_t got, h;
  uint8_t p[64], *space;
  size_t len;
  static const char *const good[] = {"connect 52\n", "CONNECT 52\r\n",
                                     "\tCONNECT   52 x\nhi"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    hcsb__vsd_conn_t *c = hcsb__vsd_host_accept(&r->dev, &r->host);
    hcsb__vsd_host_read_space(c, &space, &len);
    memcpy(space, good[i], strlen(good[i]));
    hcsb__vsd_host_read(&r->dev, c, strlen(good[i]));
    got = expect_op(r, HCSB__VSD_OP_REQUEST);
    CHECK_EQ(got.dst_port, 52);
    CHECK_EQ(r->host.refusals, 0);
    h = fake_hdr(HCSB__VSD_OP_RESPONSE, 52, got.src_port);
    fake_send(&r->vm, &r->dev, &h, NULL, 0);
    CHECK_EQ(c->state, HCSB__VSD_ESTABLISHED);
  }
  CHECK_EQ(fake_recv(&r->vm, &r->dev, &got, p, sizeof p), 2);
  CHECK_MEM(p, "hi", 2);
  /* A line in pieces. */
  hcsb__vsd_conn_t *c = hcsb__vsd_host_accept(&r->dev, &r->host);
  hcsb__vsd_host_read_space(c, &space, &len);
  memcpy(space, "CONNE", 5);
  hcsb__vsd_host_read(&r->dev, c, 5);
  hcsb__vsd_host_read_space(c, &space, &len);
  CHECK_EQ(len, HCSB__VSD_LINE_MAX - 5);
  memcpy(space, "CT 7\n", 5);
  hcsb__vsd_host_read(&r->dev, c, 5);
  got = expect_op(r, HCSB__VSD_OP_REQUEST);
  CHECK_EQ(got.dst_port, 7);
  rig_free(r);
}

/* A line Firecracker would refuse closes the client at once and says why
 * (ops->refused, which hcsb-vsockd logs), never silently. */
static void test_host_connect_bad_lines(void) {
  static const char *const bad[] = {"CONNECT x\n", "CONNECT 4294967296\n",
                                    "connect\t-1\n", "CONNECTS 5\n",
                                    "CONNECT\n\n\n"};
  rig_t *r = rig_new();
  uint8_t *space;
  size_t len;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    hcsb__vsd_conn_t *c = hcsb__vsd_host_accept(&r->dev, &r->host);
    hcsb__vsd_host_read_space(c, &space, &len);
    memcpy(space, bad[i], strlen(bad[i]));
    hcsb__vsd_host_read(&r->dev, c, strlen(bad[i]));
    CHECK_EQ(r->host.closes, (int)i + 1);
    CHECK_EQ(r->host.refusals, (int)i + 1);
    CHECK_STR(r->host.last_line, bad[i]);
  }
  CHECK_STR(r->host.last_why, "no port after CONNECT");
  CHECK_EQ(r->dev.stats.bad_lines, sizeof bad / sizeof bad[0]);
  /* 32 bytes and no newline */
  hcsb__vsd_conn_t *c = hcsb__vsd_host_accept(&r->dev, &r->host);
  hcsb__vsd_host_read_space(c, &space, &len);
  CHECK_EQ(len, HCSB__VSD_LINE_MAX);
  memset(space, '1', len);
  hcsb__vsd_host_read(&r->dev, c, len);
  CHECK_EQ(r->dev.nconns, 0);
  CHECK_STR(r->host.last_why, "the line does not start with CONNECT");
  CHECK(!hcsb__vsd_rx_pending(&r->dev)); /* no RST: no guest side yet */

  /* Half a line, then EOF: refused and said; nothing at all: just closed. */
  int refusals = r->host.refusals;
  c = hcsb__vsd_host_accept(&r->dev, &r->host);
  hcsb__vsd_host_read_space(c, &space, &len);
  memcpy(space, "CONN", 4);
  hcsb__vsd_host_read(&r->dev, c, 4);
  hcsb__vsd_host_eof(&r->dev, c);
  CHECK_EQ(r->host.refusals, refusals + 1);
  CHECK_STR(r->host.last_line, "CONN");
  c = hcsb__vsd_host_accept(&r->dev, &r->host);
  hcsb__vsd_host_eof(&r->dev, c);
  CHECK_EQ(r->host.refusals, refusals + 1);
  CHECK_EQ(r->dev.nconns, 0);

  /* A client that never finishes its line, and a guest that never
   * answers, are both timed out by the sweep (the client with a word). */
  c = hcsb__vsd_host_accept(&r->dev, &r->host);
  hcsb__vsd_conn_t *c2 = hcsb__vsd_host_accept(&r->dev, &r->host);
  hcsb__vsd_host_read_space(c2, &space, &len);
  memcpy(space, "CONNECT 8\n", 10);
  hcsb__vsd_host_read(&r->dev, c2, 10);
  hcsb__vsd_sweep(&r->dev, 1000);
  hcsb__vsd_sweep(&r->dev, 1000 + HCSB__VSD_TIMEOUT_MS - 1);
  CHECK_EQ(r->dev.nconns, 2);
  hcsb__vsd_sweep(&r->dev, 1000 + HCSB__VSD_TIMEOUT_MS);
  CHECK_EQ(r->dev.nconns, 0);
  CHECK_EQ(r->dev.stats.timeouts, 2);
  CHECK_EQ(r->host.refusals, refusals + 2);
  CHECK_STR(r->host.last_why, "no complete CONNECT line within 10 s");
  rig_free(r);
}

static void test_connection_cap(void) {
  rig_t *r = rig_new();
  hcsb__vsd_hdr_t h, got;
  for (uint32_t i = 0; i < HCSB__VSD_MAX_CONNS; i++) {
    h = fake_hdr(HCSB__VSD_OP_REQUEST, 10000 + i, 5000);
    fake_send(&r->vm, &r->dev, &h, NULL, 0);
  }
  CHECK_EQ(r->dev.nconns, HCSB__VSD_MAX_CONNS);
  h = fake_hdr(HCSB__VSD_OP_REQUEST, 1, 5000);
  fake_send(&r->vm, &r->dev, &h, NULL, 0);
  CHECK_EQ(r->dev.nconns, HCSB__VSD_MAX_CONNS);
  CHECK_EQ(r->host.connects, HCSB__VSD_MAX_CONNS);
  CHECK_EQ(r->dev.stats.refused_conns, 1);
  got = expect_op(r, HCSB__VSD_OP_RST);
  CHECK_EQ(got.dst_port, 1);
  CHECK(hcsb__vsd_host_accept(&r->dev, &r->host) == NULL);
  rig_free(r);
}

static void test_rst_flood_is_bounded(void) {
  rig_t *r = rig_new();
  hcsb__vsd_hdr_t h = fake_hdr(HCSB__VSD_OP_RW, 1, 1), got;
  uint8_t p[16];
  int n = 0;
  for (int i = 0; i < HCSB__VSD_RST_QUEUE + 100; i++) {
    h.src_port = (uint32_t)i;
    fake_send(&r->vm, &r->dev, &h, NULL, 0);
  }
  CHECK_EQ(r->dev.rst_len, HCSB__VSD_RST_QUEUE);
  CHECK_EQ(r->dev.stats.rst_dropped, 100);
  while (fake_recv(&r->vm, &r->dev, &got, p, sizeof p) == 0) n++;
  CHECK_EQ(n, HCSB__VSD_RST_QUEUE);
  rig_free(r);
}

static void test_tx_budget(void) {
  rig_t *r = rig_new();
  hcsb__vsd_hdr_t h = fake_hdr(HCSB__VSD_OP_CREDIT_UPDATE, 1, 1);
  uint64_t a = fake_alloc(&r->vm, 44);
  int signal = 0;
  hcsb__vsd_hdr_encode(&h, fake_ptr(&r->vm, a));
  for (uint16_t i = 0; i < 10; i++) {
    fake_desc(&r->vm, FAKE_TX, i, a, 44, 0, 0);
    fake_publish(&r->vm, FAKE_TX, i);
  }
  CHECK_EQ(
      hcsb__vsd_pump_tx(&r->dev, &r->vm.vq[FAKE_TX], &r->vm.mem, 4, &signal),
      4);
  CHECK_EQ(signal, 1);
  CHECK_EQ(fake_used_idx(&r->vm, FAKE_TX), 4);
  CHECK_EQ(
      hcsb__vsd_pump_tx(&r->dev, &r->vm.vq[FAKE_TX], &r->vm.mem, 100, &signal),
      6);
  /* The driver asked for no interrupts. */
  signal = 0;
  hcsb__vsd_put16(r->vm.ram + 0x10000 + 0x8000, 1);
  fake_desc(&r->vm, FAKE_TX, 10, a, 44, 0, 0);
  fake_publish(&r->vm, FAKE_TX, 10);
  CHECK_EQ(
      hcsb__vsd_pump_tx(&r->dev, &r->vm.vq[FAKE_TX], &r->vm.mem, 100, &signal),
      1);
  CHECK_EQ(signal, 0);
  rig_free(r);
}

/* Where fake_vm_init puts ring q's flags and event words (ring size n):
 * used->flags, the driver's used_event, our avail_event. */
static uint8_t *used_flags(fake_vm_t *vm, int q) {
  return vm->ram + 0x10000u * (unsigned)q + 0xa000;
}
static uint8_t *used_event_of(fake_vm_t *vm, int q) {
  return vm->ram + 0x10000u * (unsigned)q + 0x8000 + 4 + 2 * vm->vq[q].num;
}
static uint8_t *avail_event_of(fake_vm_t *vm, int q) {
  return vm->ram + 0x10000u * (unsigned)q + 0xa000 + 4 + 8 * vm->vq[q].num;
}

/* n CREDIT_UPDATEs for a connection nobody has: each is taken and answered
 * with an RST, which this test does not look at. */
static unsigned post_tx(rig_t *r, int n, int *signal) {
  hcsb__vsd_hdr_t h = fake_hdr(HCSB__VSD_OP_CREDIT_UPDATE, 1, 1);
  for (int i = 0; i < n; i++) fake_post_tx(&r->vm, &h, NULL, 0);
  *signal = 0;
  return hcsb__vsd_pump_tx(&r->dev, &r->vm.vq[FAKE_TX], &r->vm.mem, 64, signal);
}

/* VIRTIO_RING_F_EVENT_IDX: an interrupt only when the used index steps
 * over the driver's used_event; after every pass that emptied the ring,
 * avail_event names the next entry, so the driver kicks once for it. */
static void test_event_idx(void) {
  rig_t *r = rig_new();
  int signal;
  r->vm.vq[FAKE_TX].event_idx = r->vm.vq[FAKE_RX].event_idx = 1;
  /* The NO_INTERRUPT flag means nothing with EVENT_IDX. */
  hcsb__vsd_put16(r->vm.ram + 0x10000 + 0x8000, 1);
  hcsb__vsd_put16(used_event_of(&r->vm, FAKE_TX), 0);
  CHECK_EQ(post_tx(r, 3, &signal), 3); /* used 0 -> 3 passes 0 */
  CHECK_EQ(signal, 1);
  CHECK_EQ(hcsb__vsd_le16(avail_event_of(&r->vm, FAKE_TX)), 3);
  CHECK_EQ(hcsb__vsd_le16(used_flags(&r->vm, FAKE_TX)), 0);
  CHECK_EQ(post_tx(r, 2, &signal), 2); /* 3 -> 5: 0 is behind */
  CHECK_EQ(signal, 0);
  CHECK_EQ(hcsb__vsd_le16(avail_event_of(&r->vm, FAKE_TX)), 5);
  hcsb__vsd_put16(used_event_of(&r->vm, FAKE_TX), 6);
  CHECK_EQ(post_tx(r, 1, &signal), 1); /* 5 -> 6: not past 6 yet */
  CHECK_EQ(signal, 0);
  CHECK_EQ(post_tx(r, 1, &signal), 1); /* 6 -> 7 */
  CHECK_EQ(signal, 1);
  /* Across the 16-bit wrap. */
  r->vm.vq[FAKE_TX].used_idx = 0xfffe;
  hcsb__vsd_put16(used_event_of(&r->vm, FAKE_TX), 0xffff);
  CHECK_EQ(post_tx(r, 3, &signal), 3); /* 0xfffe -> 1 */
  CHECK_EQ(signal, 1);

  /* rx: avail_event moves only while packets wait for buffers. */
  hcsb__vsd_dev_reset(&r->dev); /* forget the RSTs */
  hcsb__vsd_put16(avail_event_of(&r->vm, FAKE_RX), 0x1234);
  hcsb__vsd_put16(used_event_of(&r->vm, FAKE_RX), 0);
  signal = 0;
  fake_post_rx(&r->vm); /* a buffer, nothing to send */
  hcsb__vsd_pump_rx(&r->dev, &r->vm.vq[FAKE_RX], &r->vm.mem, 64, &signal);
  CHECK_EQ(hcsb__vsd_le16(avail_event_of(&r->vm, FAKE_RX)), 0x1234);
  CHECK_EQ(signal, 0);
  /* Two RSTs: the first takes the buffer, the second waits: armed at 1. */
  post_tx(r, 2, &signal);
  signal = 0;
  hcsb__vsd_pump_rx(&r->dev, &r->vm.vq[FAKE_RX], &r->vm.mem, 64, &signal);
  CHECK(hcsb__vsd_rx_pending(&r->dev));
  CHECK_EQ(signal, 1);
  CHECK_EQ(fake_used_idx(&r->vm, FAKE_RX), 1);
  CHECK_EQ(hcsb__vsd_le16(avail_event_of(&r->vm, FAKE_RX)), 1);
  CHECK_EQ(hcsb__vsd_le16(used_flags(&r->vm, FAKE_RX)), 0);
  rig_free(r);
}

/* Without EVENT_IDX the used ring's NO_NOTIFY flag does the same: the tx
 * ring wants kicks whenever it is empty; the rx ring only while packets
 * wait for buffers. */
static void test_no_notify_flag(void) {
  rig_t *r = rig_new();
  int signal;
  hcsb__vsd_put16(used_flags(&r->vm, FAKE_TX), 1);
  CHECK_EQ(post_tx(r, 2, &signal), 2);
  CHECK_EQ(hcsb__vsd_le16(used_flags(&r->vm, FAKE_TX)), 0);
  /* rx with nothing to send: no kicks wanted, buffers stay. */
  fake_post_rx(&r->vm);
  fake_post_rx(&r->vm);
  hcsb__vsd_dev_reset(&r->dev); /* forget the RSTs */
  hcsb__vsd_pump_rx(&r->dev, &r->vm.vq[FAKE_RX], &r->vm.mem, 64, &signal);
  CHECK_EQ(hcsb__vsd_le16(used_flags(&r->vm, FAKE_RX)), 1);
  CHECK_EQ(fake_used_idx(&r->vm, FAKE_RX), 0);
  /* Three RSTs for two buffers: the third waits, and kicks are wanted. */
  post_tx(r, 3, &signal);
  hcsb__vsd_pump_rx(&r->dev, &r->vm.vq[FAKE_RX], &r->vm.mem, 64, &signal);
  CHECK_EQ(fake_used_idx(&r->vm, FAKE_RX), 2);
  CHECK(hcsb__vsd_rx_pending(&r->dev));
  CHECK_EQ(hcsb__vsd_le16(used_flags(&r->vm, FAKE_RX)), 0);
  /* A buffer comes, the RST goes: back to no kicks. */
  fake_post_rx(&r->vm);
  hcsb__vsd_pump_rx(&r->dev, &r->vm.vq[FAKE_RX], &r->vm.mem, 64, &signal);
  CHECK(!hcsb__vsd_rx_pending(&r->dev));
  CHECK_EQ(hcsb__vsd_le16(used_flags(&r->vm, FAKE_RX)), 1);
  rig_free(r);
}

/* --- vhost-user ------------------------------------------------------ */

static uint8_t out[HCSB__VSD_MSG_HDR + HCSB__VSD_MSG_MAX];

static size_t msg(uint8_t *m, uint32_t req, uint32_t flags, const void *p,
                  uint32_t n) {
  hcsb__vsd_put32(m, req);
  hcsb__vsd_put32(m + 4, flags);
  hcsb__vsd_put32(m + 8, n);
  if (n) memcpy(m + 12, p, n);
  return 12 + n;
}

static size_t call(hcsb__vsd_vhost_t *vh, uint32_t req, uint32_t flags,
                   const void *p, uint32_t n, int *fds, unsigned nfds,
                   int *rc) {
  uint8_t m[HCSB__VSD_MSG_HDR + 512];
  size_t out_len;
  size_t len = msg(m, req, flags, p, n);
  *rc = hcsb__vsd_vhost_handle(vh, m, len, fds, nfds, out, &out_len);
  return out_len;
}

static void test_vhost_features_and_config(void) {
  hcsb__vsd_vhost_t vh;
  int rc;
  uint8_t p[64];
  hcsb__vsd_vhost_init(&vh, 0x1122334455ull);

  CHECK_EQ(call(&vh, 1, 1, NULL, 0, NULL, 0, &rc), 20);
  CHECK_EQ(rc, 0);
  CHECK_EQ(hcsb__vsd_le32(out), 1);
  CHECK_EQ(hcsb__vsd_le32(out + 4), 1 | 4); /* version, reply */
  uint64_t f = hcsb__vsd_le64(out + 12);
  CHECK(f & (1ull << 32)); /* VERSION_1 */
  CHECK(f & (1ull << 30)); /* PROTOCOL_FEATURES */
  CHECK(f & (1ull << 29)); /* EVENT_IDX */
  CHECK(f & (1ull << 28)); /* INDIRECT_DESC */
  CHECK(!(f & 2));         /* no SEQPACKET */
  CHECK_EQ(call(&vh, 15, 1, NULL, 0, NULL, 0, &rc), 20);
  CHECK(hcsb__vsd_le64(out + 12) & (1ull << 9)); /* CONFIG */
  CHECK(hcsb__vsd_le64(out + 12) & (1ull << 3)); /* REPLY_ACK */

  /* GET_CONFIG: offset 0, size 8, the CID little-endian. */
  memset(p, 0, sizeof p);
  hcsb__vsd_put32(p + 4, 8);
  CHECK_EQ(call(&vh, 24, 1, p, 20, NULL, 0, &rc), 32);
  CHECK_EQ(hcsb__vsd_le32(out + 8), 20);
  CHECK_U64(hcsb__vsd_le64(out + 24), 0x1122334455ull);
  /* ... offset 4, size 8: the high half, then zeros */
  hcsb__vsd_put32(p, 4);
  CHECK_EQ(call(&vh, 24, 1, p, 20, NULL, 0, &rc), 32);
  CHECK_U64(hcsb__vsd_le64(out + 24), 0x11ull);
  /* size and payload disagree: the session ends */
  call(&vh, 24, 1, p, 16, NULL, 0, &rc);
  CHECK_EQ(rc, -EPROTO);

  /* NEED_REPLY on a message with no reply: an ack, 0 ok / 1 refused. */
  uint8_t u[8];
  hcsb__vsd_put64(u, (1ull << 32) | (1ull << 29));
  CHECK_EQ(call(&vh, 2, 1 | 8, u, 8, NULL, 0, &rc), 20);
  CHECK_U64(hcsb__vsd_le64(out + 12), 0);
  CHECK(vh.vq[0].event_idx && vh.vq[1].event_idx);
  CHECK(!vh.vq[0].indirect);
  hcsb__vsd_put64(u, 1ull << 33); /* never offered */
  CHECK_EQ(call(&vh, 2, 1 | 8, u, 8, NULL, 0, &rc), 20);
  CHECK_U64(hcsb__vsd_le64(out + 12), 1);
  CHECK_EQ(call(&vh, 2, 1, u, 8, NULL, 0, &rc), 0); /* no ack unasked */
  CHECK_EQ(call(&vh, 99, 1 | 8, NULL, 0, NULL, 0, &rc), 20);
  CHECK_EQ(rc, 0);
  CHECK_U64(hcsb__vsd_le64(out + 12), 1);
  /* wrong version bits */
  call(&vh, 1, 2, NULL, 0, NULL, 0, &rc);
  CHECK_EQ(rc, -EPROTO);
  hcsb__vsd_vhost_free(&vh);
}

static void test_vhost_rings_and_memory(void) {
  hcsb__vsd_vhost_t vh;
  int rc, fds[2];
  uint8_t p[64];
  hcsb__vsd_vhost_init(&vh, 3);

  int mfd = memfd_create("vsockd-test", 0);
  CHECK(mfd >= 0);
  CHECK_EQ(ftruncate(mfd, 65536), 0);
  /* one region: gpa 0x1000, 60 KiB at offset 4 KiB of the memfd */
  memset(p, 0, sizeof p);
  hcsb__vsd_put32(p, 1);
  hcsb__vsd_put64(p + 8, 0x1000);
  hcsb__vsd_put64(p + 16, 61440);
  hcsb__vsd_put64(p + 24, 0x7000000);
  hcsb__vsd_put64(p + 32, 4096);
  fds[0] = dup(mfd);
  CHECK_EQ(call(&vh, 5, 1 | 8, p, 40, fds, 1, &rc), 20);
  CHECK_U64(hcsb__vsd_le64(out + 12), 0);
  CHECK_EQ(vh.mem.n, 1);
  CHECK_EQ(fds[0], -1); /* consumed */
  uint8_t *h = hcsb__vsd_gpa(&vh.mem, 0x1000, 4);
  CHECK(h != NULL);
  CHECK_EQ(pwrite(mfd, "abcd", 4, 4096), 4);
  CHECK_MEM(h, "abcd", 4); /* the same memory, shared */
  /* a region past the end of the file is refused, the old table kept */
  hcsb__vsd_put64(p + 16, 65536);
  fds[0] = dup(mfd);
  CHECK_EQ(call(&vh, 5, 1 | 8, p, 40, fds, 1, &rc), 20);
  CHECK_U64(hcsb__vsd_le64(out + 12), 1);
  CHECK(hcsb__vsd_gpa(&vh.mem, 0x1000, 4) == h);
  /* a count that disagrees with the fds */
  fds[0] = dup(mfd);
  hcsb__vsd_put32(p, 2);
  CHECK_EQ(call(&vh, 5, 1 | 8, p, 40, fds, 1, &rc), 20);
  CHECK_U64(hcsb__vsd_le64(out + 12), 1);

  /* ring setup; sizes that are not a power of two are refused */
  hcsb__vsd_put32(p, 1);
  hcsb__vsd_put32(p + 4, 100);
  call(&vh, 8, 1 | 8, p, 8, NULL, 0, &rc);
  CHECK_U64(hcsb__vsd_le64(out + 12), 1);
  hcsb__vsd_put32(p + 4, 128);
  call(&vh, 8, 1 | 8, p, 8, NULL, 0, &rc);
  CHECK_U64(hcsb__vsd_le64(out + 12), 0);
  CHECK_EQ(vh.vq[1].num, 128);
  hcsb__vsd_put32(p, 2); /* the event queue is QEMU's, not ours */
  call(&vh, 8, 1 | 8, p, 8, NULL, 0, &rc);
  CHECK_U64(hcsb__vsd_le64(out + 12), 1);
  hcsb__vsd_put32(p, 1);
  hcsb__vsd_put32(p + 4, 42);
  call(&vh, 10, 1, p, 8, NULL, 0, &rc); /* SET_VRING_BASE */
  CHECK_EQ(vh.vq[1].last_avail, 42);
  int efd[2];
  CHECK_EQ(pipe(efd), 0);
  hcsb__vsd_put64(p, 1);
  fds[0] = efd[0];
  call(&vh, 12, 1, p, 8, fds, 1, &rc); /* SET_VRING_KICK */
  CHECK_EQ(vh.kick_fd[1], efd[0]);
  CHECK_EQ(vh.vq[1].started, 1);
  CHECK_EQ(vh.vq[1].enabled, 1); /* no protocol features: enabled at once */
  hcsb__vsd_put64(p, 1 | 0x100);
  fds[0] = efd[1];
  call(&vh, 13, 1 | 8, p, 8, fds, 1, &rc); /* "no fd" but one came */
  CHECK_U64(hcsb__vsd_le64(out + 12), 1);
  CHECK_EQ(fds[0], -1); /* closed anyway */
  hcsb__vsd_put32(p, 1);
  CHECK_EQ(call(&vh, 11, 1, p, 8, NULL, 0, &rc), 20); /* GET_VRING_BASE */
  CHECK_EQ(hcsb__vsd_le32(out + 16), 42);
  CHECK_EQ(vh.vq[1].started, 0);
  CHECK_EQ(vh.kick_fd[1], -1);
  close(mfd);
  hcsb__vsd_vhost_free(&vh);
  CHECK_EQ(vh.mem.n, 0);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(header_layout),
    TEST_ENTRY(memory_bounds),
    TEST_ENTRY(chain_walk),
    TEST_ENTRY(chain_rejects),
    TEST_ENTRY(chain_direct_then_indirect),
    TEST_ENTRY(ring_index_jump),
    TEST_ENTRY(chain_spans_regions),
    TEST_ENTRY(guest_connect_and_data),
    TEST_ENTRY(refused_and_unknown),
    TEST_ENTRY(guest_credit_lie),
    TEST_ENTRY(small_packets_coalesce),
    TEST_ENTRY(oversized_payload),
    TEST_ENTRY(host_respects_guest_credit),
    TEST_ENTRY(header_only_rx_buffer),
    TEST_ENTRY(host_data_not_moved),
    TEST_ENTRY(fwd_cnt_sent_only_when_sent),
    TEST_ENTRY(guest_shutdown_rcv),
    TEST_ENTRY(read_without_buffer),
    TEST_ENTRY(credit_update_and_request),
    TEST_ENTRY(shutdown_sequence),
    TEST_ENTRY(guest_close_waits_for_writes),
    TEST_ENTRY(host_connect_handshake),
    TEST_ENTRY(connect_line_grammar),
    TEST_ENTRY(host_connect_lenient_lines),
    TEST_ENTRY(host_connect_bad_lines),
    TEST_ENTRY(connection_cap),
    TEST_ENTRY(rst_flood_is_bounded),
    TEST_ENTRY(tx_budget),
    TEST_ENTRY(event_idx),
    TEST_ENTRY(no_notify_flag),
    TEST_ENTRY(vhost_features_and_config),
    TEST_ENTRY(vhost_rings_and_memory),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
