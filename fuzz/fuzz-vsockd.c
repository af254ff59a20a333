/* hcsb-vsockd's guest-facing core: descriptor chains, the vsock packet
 * handling and connection state machine, driven as a hostile guest and an
 * erratic host would (test/vsockd-fake.c provides guest memory and a
 * socket layer that records instead of doing I/O).
 *
 * Input: [ring size selector] [features: bit 0 INDIRECT_DESC, bit 1
 * EVENT_IDX] then operations, each an opcode byte and its arguments
 * (integers little-endian; missing bytes read 0):
 *   0 SEND    44-byte header, u32 payload length (max 65537), u8 k, k
 *             bytes repeated to that length
 *   1 RECV    u8 size: post one rx chain of 44 + 64*size bytes, pump rx
 *   2 POKE    u32 offset into guest RAM, u8 n, n bytes (rings included)
 *   3 PUBLISH u8 ring, u16 head: a raw avail entry, then pump that ring
 *   4 HOST    u8 connection index, u8 event, u16 n: read n bytes, EOF,
 *             write error, connected, refused, complete the queued writes,
 *             or a failed read (no buffer when n is odd, else reset)
 *   5 ACCEPT  u8 n, n bytes read on a new host socket (the CONNECT line)
 *   6 SWEEP   u16 tenths of a second later
 *   7 RESET
 *
 * Checked after every operation: the caps (connections, RST queue, bytes
 * held per connection), that what we hold from the guest never exceeds the
 * credit we gave, that we never send the guest more than its credit, that
 * a guest that stopped reading had the host socket's read side shut, and
 * that the used rings advance by exactly the chains taken.  Leaks are the
 * sanitizer's job at exit. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "vsockd-fake.h"

static hcsb__vsd_conn_t *nth_conn(hcsb__vsd_dev_t *d, unsigned i) {
  hcsb__vsd_conn_t *c = d->all;
  while (c != NULL && i-- > 0) c = c->anext;
  return c;
}

static void check_dev(hcsb__vsd_dev_t *d, fake_host_t *fh) {
  unsigned n = 0;
  uint64_t held = 0, queued = 0;
  FUZZ_CHECK(d->nconns <= HCSB__VSD_MAX_CONNS);
  FUZZ_CHECK(d->rst_len <= HCSB__VSD_RST_CAP);
  for (hcsb__vsd_conn_t *c = d->all; c != NULL; c = c->anext, n++) {
    FUZZ_CHECK(c->tx_len <= HCSB__VSD_TXBUF);
    FUZZ_CHECK(c->tx_off < HCSB__VSD_TXBUF);
    FUZZ_CHECK(c->tx_len > 0 || c->tx_off == 0);
    FUZZ_CHECK(c->state != HCSB__VSD_HANDSHAKE || c->tx_off == 0);
    FUZZ_CHECK(!c->peer_shut_rcv || (c->host_rd_shut && c->tx_len == 0));
    FUZZ_CHECK((uint32_t)(c->rx_cnt - c->fwd_cnt) <= HCSB__VSD_BUF_ALLOC);
    FUZZ_CHECK(c->writing >= 0 && c->writing <= 2);
    held += (uint32_t)(c->rx_cnt - c->fwd_cnt);
    queued += c->wlen;
  }
  /* What is held from the guest is exactly what is staged or being
   * written. */
  for (unsigned i = 0; i < fh->npending; i++) queued += fh->pending[i].counted;
  FUZZ_CHECK(held == queued);
  FUZZ_CHECK(n == d->nconns);
  FUZZ_CHECK(fh->read_shutdowns <= fh->connects + fh->accepted);
  FUZZ_CHECK(fh->refusals <= fh->accepted);
}

/* Pumps one ring and checks the used index moved by what was taken.  The
 * used ring is guest memory: once the input has poked at guest memory it
 * may have scribbled there (or pointed a buffer at it), so only our own
 * index is checked then. */
static void pump(fake_vm_t *vm, hcsb__vsd_dev_t *d, int q, unsigned budget,
                 int poked) {
  uint32_t sent_before[HCSB__VSD_MAX_CONNS];
  hcsb__vsd_conn_t *c;
  unsigned i = 0;
  int signal = 0;
  uint16_t before = fake_used_idx(vm, q), ours = vm->vq[q].used_idx;
  unsigned done;

  for (c = d->all; c != NULL && i < HCSB__VSD_MAX_CONNS; c = c->anext)
    sent_before[i++] = c->tx_cnt;
  if (q == FAKE_TX) {
    done = hcsb__vsd_pump_tx(d, &vm->vq[q], &vm->mem, budget, &signal);
  } else {
    done = hcsb__vsd_pump_rx(d, &vm->vq[q], &vm->mem, budget, &signal);
    /* Whatever went to the guest stayed within its credit. */
    i = 0;
    for (c = d->all; c != NULL && i < HCSB__VSD_MAX_CONNS; c = c->anext, i++)
      if (c->tx_cnt != sent_before[i])
        FUZZ_CHECK(c->tx_cnt - c->peer_fwd_cnt <= c->peer_buf_alloc);
  }
  FUZZ_CHECK(done <= budget);
  FUZZ_CHECK((uint16_t)(vm->vq[q].used_idx - ours) == done);
  if (poked) return;
  FUZZ_CHECK((uint16_t)(fake_used_idx(vm, q) - before) == done);
  for (uint16_t k = before; k != fake_used_idx(vm, q); k++) {
    uint32_t id, len;
    fake_used(vm, q, k, &id, &len);
    FUZZ_CHECK(id < vm->vq[q].num);
    FUZZ_CHECK(q == FAKE_RX ? len <= HCSB__VSD_HDR_LEN + HCSB__VSD_TXBUF
                            : len == 0);
  }
}

static void host_event(fake_host_t *fh, hcsb__vsd_dev_t *d, fuzz_in_t *in) {
  hcsb__vsd_conn_t *c = nth_conn(d, fuzz_u8(in));
  unsigned ev = fuzz_u8(in) % 7;
  size_t n = fuzz_uN(in, 2), len;
  uint8_t *space;

  if (ev == 5) {
    fake_host_flush(fh, d);
    return;
  }
  if (c == NULL) return;
  switch (ev) {
    case 0: /* the socket layer only reads while conn.c wants it to */
      hcsb__vsd_host_read_space(c, &space, &len);
      if (!c->reading || len == 0) break;
      if (n > len) n = len;
      fuzz_take(in, space, n);
      hcsb__vsd_host_read(d, c, n);
      break;
    case 1:
      if (c->reading) hcsb__vsd_host_eof(d, c);
      break;
    case 2:
      hcsb__vsd_host_error(d, c);
      break;
    case 6: /* libuv reports read errors only while reading */
      if (c->reading)
        hcsb__vsd_host_read_failed(d, c, n & 1 ? -ENOBUFS : -ECONNRESET);
      break;
    default: /* a connect result, only for a dial in progress */
      if (c->state == HCSB__VSD_DIALING)
        hcsb__vsd_host_connected(d, c, ev == 3 ? 0 : -111);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fake_vm_t vm;
  static fake_host_t fh;
  static hcsb__vsd_dev_t dev;
  fuzz_in_t in = {data, size};
  static uint8_t buf[HCSB__VSD_MAX_PAYLOAD + 2];
  uint64_t now = 0;
  int poked = 0;

  fake_vm_init(&vm, (uint16_t)(1u << (fuzz_u8(&in) % 9)));
  uint8_t features = fuzz_u8(&in);
  vm.vq[0].indirect = vm.vq[1].indirect = features & 1;
  vm.vq[0].event_idx = vm.vq[1].event_idx = (features >> 1) & 1;
  fake_host_init(&fh);
  hcsb__vsd_dev_init(&dev, FAKE_CID, &fake_ops, &fh);

  for (unsigned ops = 0; in.n > 0 && ops < 1024; ops++) {
    switch (fuzz_u8(&in) % 8) {
      case 0: {
        hcsb__vsd_hdr_t h;
        uint32_t len;
        fuzz_take(&in, buf, HCSB__VSD_HDR_LEN);
        hcsb__vsd_hdr_decode(buf, &h);
        len = fuzz_uN(&in, 4) % (HCSB__VSD_MAX_PAYLOAD + 2);
        size_t k = fuzz_u8(&in);
        fuzz_take(&in, buf, k);
        if (k == 0) memset(buf, 0, len);
        /* Doubling copies: a per-byte loop dominates the run time. */
        for (size_t have = k; have > 0 && have < len; have *= 2)
          memcpy(buf + have, buf, have < len - have ? have : len - have);
        fake_send(&vm, &dev, &h, buf, len);
        break;
      }
      case 1: {
        uint32_t len = HCSB__VSD_HDR_LEN + 64u * fuzz_u8(&in);
        uint64_t at = fake_alloc(&vm, len);
        uint16_t head = vm.next_desc[FAKE_RX];
        vm.next_desc[FAKE_RX] = (uint16_t)((head + 1) % vm.vq[FAKE_RX].num);
        fake_desc(&vm, FAKE_RX, head, at, len, 2, 0);
        fake_publish(&vm, FAKE_RX, head);
        pump(&vm, &dev, FAKE_RX, 1, poked);
        break;
      }
      case 2: {
        uint32_t off = fuzz_uN(&in, 4) % FAKE_RAM;
        size_t n = fuzz_u8(&in);
        if (n > FAKE_RAM - off) n = FAKE_RAM - off;
        fuzz_take(&in, vm.ram + off, n);
        poked = 1;
        break;
      }
      case 3: {
        int q = fuzz_u8(&in) & 1;
        fake_publish(&vm, q, (uint16_t)fuzz_uN(&in, 2));
        pump(&vm, &dev, q, 8, poked);
        break;
      }
      case 4:
        host_event(&fh, &dev, &in);
        break;
      case 5: {
        hcsb__vsd_conn_t *c = hcsb__vsd_host_accept(&dev, &fh);
        size_t n = fuzz_u8(&in), len;
        uint8_t *space;
        if (c == NULL) break;
        fh.accepted++;
        hcsb__vsd_host_read_space(c, &space, &len);
        if (n > len) n = len;
        fuzz_take(&in, space, n);
        hcsb__vsd_host_read(&dev, c, n);
        break;
      }
      case 6:
        now += 100u * fuzz_uN(&in, 2);
        hcsb__vsd_sweep(&dev, now);
        break;
      default:
        hcsb__vsd_dev_reset(&dev);
        FUZZ_CHECK(dev.nconns == 0 && dev.all == NULL && fh.npending == 0);
    }
    check_dev(&dev, &fh);
  }
  hcsb__vsd_dev_reset(&dev);
  /* Every connection, dialled or accepted, was closed exactly once. */
  FUZZ_CHECK(fh.closes == fh.connects + fh.accepted);
  fake_host_free(&fh);
  fake_vm_free(&vm);
  return 0;
}
