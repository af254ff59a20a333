/* See vsockd-fake.h. */
#include <stdlib.h>
#include <string.h>

#include "vsockd-fake.h"

#define HEAP_START 0x20000u

void fake_vm_init(fake_vm_t *vm, uint16_t num) {
  fake_vm_init_ram(vm, num, NULL);
}

void fake_vm_init_ram(fake_vm_t *vm, uint16_t num, uint8_t *ram) {
  memset(vm, 0, sizeof *vm);
  vm->own_ram = ram == NULL;
  vm->ram = ram != NULL ? ram : calloc(1, FAKE_RAM);
  vm->mem.n = 1;
  vm->mem.r[0].gpa = FAKE_GPA;
  vm->mem.r[0].size = FAKE_RAM;
  vm->mem.r[0].uva = FAKE_UVA;
  vm->mem.r[0].host = vm->ram;
  for (int q = 0; q < 2; q++) {
    hcsb__vsd_vring_t *v = &vm->vq[q];
    v->num = num;
    v->addr_set = v->started = v->enabled = 1;
    v->desc_uva = FAKE_UVA + 0x10000u * (unsigned)q;
    v->avail_uva = v->desc_uva + 0x8000;
    v->used_uva = v->desc_uva + 0xa000;
  }
  vm->heap = FAKE_GPA + HEAP_START;
}

void fake_vm_free(fake_vm_t *vm) {
  if (vm->own_ram) free(vm->ram);
}

uint64_t fake_alloc(fake_vm_t *vm, size_t len) {
  if (vm->heap + len > FAKE_GPA + FAKE_RAM) vm->heap = FAKE_GPA + HEAP_START;
  uint64_t at = vm->heap;
  vm->heap += (len + 15) & ~(size_t)15;
  return at;
}

void *fake_ptr(fake_vm_t *vm, uint64_t gpa) {
  return vm->ram + (gpa - FAKE_GPA);
}

void fake_desc(fake_vm_t *vm, int q, uint16_t i, uint64_t addr, uint32_t len,
               uint16_t flags, uint16_t next) {
  uint8_t *p = vm->ram + 0x10000u * (unsigned)q + 16u * i;
  hcsb__vsd_put64(p, addr);
  hcsb__vsd_put32(p + 8, len);
  hcsb__vsd_put16(p + 12, flags);
  hcsb__vsd_put16(p + 14, next);
}

void fake_publish(fake_vm_t *vm, int q, uint16_t head) {
  uint8_t *avail = vm->ram + 0x10000u * (unsigned)q + 0x8000;
  uint16_t num = vm->vq[q].num;
  hcsb__vsd_put16(avail + 4 + 2 * (vm->avail_idx[q] % num), head);
  vm->avail_idx[q]++;
  hcsb__vsd_put16(avail + 2, vm->avail_idx[q]);
}

uint16_t fake_used_idx(fake_vm_t *vm, int q) {
  return hcsb__vsd_le16(vm->ram + 0x10000u * (unsigned)q + 0xa000 + 2);
}

void fake_used(fake_vm_t *vm, int q, uint16_t at, uint32_t *id, uint32_t *len) {
  uint8_t *e =
      vm->ram + 0x10000u * (unsigned)q + 0xa000 + 4 + 8 * (at % vm->vq[q].num);
  *id = hcsb__vsd_le32(e);
  *len = hcsb__vsd_le32(e + 4);
}

static uint16_t take_desc(fake_vm_t *vm, int q) {
  uint16_t i = vm->next_desc[q];
  vm->next_desc[q] = (uint16_t)((i + 1) % vm->vq[q].num);
  return i;
}

void fake_post_tx(fake_vm_t *vm, const hcsb__vsd_hdr_t *h, const void *payload,
                  uint32_t len) {
  uint64_t hp = fake_alloc(vm, HCSB__VSD_HDR_LEN);
  uint16_t a = take_desc(vm, FAKE_TX), b = take_desc(vm, FAKE_TX);
  hcsb__vsd_hdr_encode(h, fake_ptr(vm, hp));
  if (len > 0) {
    uint64_t pp = fake_alloc(vm, len);
    memcpy(fake_ptr(vm, pp), payload, len);
    fake_desc(vm, FAKE_TX, a, hp, HCSB__VSD_HDR_LEN, 1, b);
    fake_desc(vm, FAKE_TX, b, pp, len, 0, 0);
  } else {
    fake_desc(vm, FAKE_TX, a, hp, HCSB__VSD_HDR_LEN, 0, 0);
  }
  fake_publish(vm, FAKE_TX, a);
}

void fake_send(fake_vm_t *vm, hcsb__vsd_dev_t *d, const hcsb__vsd_hdr_t *h,
               const void *payload, uint32_t len) {
  int signal = 0;
  fake_post_tx(vm, h, payload, len);
  hcsb__vsd_pump_tx(d, &vm->vq[FAKE_TX], &vm->mem, 64, &signal);
}

uint16_t fake_post_rx(fake_vm_t *vm) {
  uint64_t hp = fake_alloc(vm, HCSB__VSD_HDR_LEN), bp = fake_alloc(vm, 4096);
  uint16_t a = take_desc(vm, FAKE_RX), b = take_desc(vm, FAKE_RX);
  fake_desc(vm, FAKE_RX, a, hp, HCSB__VSD_HDR_LEN, 1 | 2, b);
  fake_desc(vm, FAKE_RX, b, bp, 4096, 2, 0);
  fake_publish(vm, FAKE_RX, a);
  return a;
}

int fake_rx_packet(fake_vm_t *vm, uint16_t at, hcsb__vsd_hdr_t *h,
                   uint8_t *payload, size_t cap) {
  uint32_t id, len;
  fake_used(vm, FAKE_RX, at, &id, &len);
  if (id >= vm->vq[FAKE_RX].num || len < HCSB__VSD_HDR_LEN) return -1;
  /* The buffers are the ones fake_post_rx put in the chain at `id`. */
  const uint8_t *d0 = vm->ram + 16u * id;
  const uint8_t *d1 = vm->ram + 16u * hcsb__vsd_le16(d0 + 14);
  hcsb__vsd_hdr_decode(fake_ptr(vm, hcsb__vsd_le64(d0)), h);
  len -= HCSB__VSD_HDR_LEN;
  if (len != h->len || len > cap) return -1;
  memcpy(payload, fake_ptr(vm, hcsb__vsd_le64(d1)), len);
  return (int)len;
}

int fake_recv(fake_vm_t *vm, hcsb__vsd_dev_t *d, hcsb__vsd_hdr_t *h,
              uint8_t *payload, size_t cap) {
  uint16_t before = fake_used_idx(vm, FAKE_RX);
  int signal = 0;
  fake_post_rx(vm);
  hcsb__vsd_pump_rx(d, &vm->vq[FAKE_RX], &vm->mem, 1, &signal);
  if (fake_used_idx(vm, FAKE_RX) == before) {
    /* Not taken: withdraw it so the next call posts afresh. */
    vm->avail_idx[FAKE_RX]--;
    hcsb__vsd_put16(vm->ram + 0x8000 + 2, vm->avail_idx[FAKE_RX]);
    return -1;
  }
  return fake_rx_packet(vm, before, h, payload, cap);
}

hcsb__vsd_hdr_t fake_hdr(uint16_t op, uint32_t guest_port, uint32_t local) {
  hcsb__vsd_hdr_t h;
  memset(&h, 0, sizeof h);
  h.src_cid = FAKE_CID;
  h.dst_cid = HCSB__VSD_HOST_CID;
  h.src_port = guest_port;
  h.dst_port = local;
  h.type = HCSB__VSD_TYPE_STREAM;
  h.op = op;
  h.buf_alloc = 262144;
  return h;
}

static int f_connect(void *ctx, hcsb__vsd_conn_t *c, uint32_t port) {
  fake_host_t *fh = ctx;
  fh->connects++;
  fh->connect_port = port;
  fh->last_conn = c;
  c->io = fh;
  return fh->connect_rc;
}

/* Drops the entries of closed connections and of completed writes. */
static void compact(fake_host_t *fh) {
  unsigned j = 0;
  for (unsigned i = 0; i < fh->npending; i++)
    if (fh->pending[i].conn != NULL) fh->pending[j++] = fh->pending[i];
  fh->npending = j;
}

static int f_write(void *ctx, hcsb__vsd_conn_t *c, uint8_t *buf, size_t len,
                   size_t counted) {
  fake_host_t *fh = ctx;
  if (fh->npending == FAKE_MAX_WRITES) compact(fh);
  if (fh->npending == FAKE_MAX_WRITES) {
    free(buf);
    return -1;
  }
  if (fh->data_len + len > fh->data_cap) {
    size_t cap = (fh->data_len + len) * 2;
    uint8_t *p = realloc(fh->data, cap);
    if (p == NULL) {
      free(buf);
      return -1;
    }
    fh->data = p;
    fh->data_cap = cap;
  }
  memcpy(fh->data + fh->data_len, buf, len);
  fh->data_len += len;
  free(buf);
  fh->pending[fh->npending].conn = c;
  fh->pending[fh->npending].counted = counted;
  fh->npending++;
  return 0;
}

static void f_shutdown(void *ctx, hcsb__vsd_conn_t *c) {
  fake_host_t *fh = ctx;
  (void)c;
  fh->shutdowns++;
}

static void f_shutdown_read(void *ctx, hcsb__vsd_conn_t *c) {
  fake_host_t *fh = ctx;
  (void)c;
  fh->read_shutdowns++;
}

static void f_refused(void *ctx, hcsb__vsd_conn_t *c, const char *why,
                      const uint8_t *line, size_t len) {
  fake_host_t *fh = ctx;
  (void)c;
  fh->refusals++;
  fh->last_why = why;
  if (len > HCSB__VSD_LINE_MAX) len = HCSB__VSD_LINE_MAX;
  if (len > 0) memcpy(fh->last_line, line, len);
  fh->last_line[len] = 0;
}

static void f_reading(void *ctx, hcsb__vsd_conn_t *c, int on) {
  fake_host_t *fh = ctx;
  (void)c;
  fh->reading_changes++;
  fh->last_reading = on;
}

static void f_close(void *ctx, hcsb__vsd_conn_t *c) {
  fake_host_t *fh = ctx;
  fh->closes++;
  fh->last_closed = c;
  /* Like a closed socket: its queued writes never complete. */
  for (unsigned i = 0; i < fh->npending; i++)
    if (fh->pending[i].conn == c) {
      fh->pending[i].conn = NULL;
      fh->pending[i].counted = 0;
    }
  if (!fh->flushing) compact(fh); /* fake_host_flush() walks the list */
  if (fh->last_conn == c) fh->last_conn = NULL;
}

const hcsb__vsd_ops_t fake_ops = {f_connect,       f_write,   f_shutdown,
                                  f_shutdown_read, f_reading, f_refused,
                                  f_close};

void fake_host_init(fake_host_t *fh) {
  memset(fh, 0, sizeof *fh);
}

void fake_host_free(fake_host_t *fh) {
  free(fh->data);
}

void fake_host_flush(fake_host_t *fh, hcsb__vsd_dev_t *d) {
  /* In order; a completion may close a connection, which clears its
   * other entries (f_close) so they are skipped. */
  fh->flushing = 1;
  for (unsigned i = 0; i < fh->npending; i++) {
    fake_write_t w = fh->pending[i];
    if (w.conn == NULL) continue;
    fh->pending[i].conn = NULL;
    fh->pending[i].counted = 0;
    hcsb__vsd_host_written(d, w.conn, w.counted);
  }
  fh->flushing = 0;
  compact(fh);
}
