/* Moving chains between the two rings QEMU gives us and the device.
 *
 * Both passes take a budget so a guest that keeps its rings full cannot
 * keep the loop from serving anything else; the caller comes back for the
 * rest.  A malformed chain is returned to the guest unused (length 0) and
 * the pass goes on; a broken ring stops being served.
 *
 * Notifications: while a pass runs the driver need not kick, and we want a
 * kick only when we are left waiting for buffers, so each pass turns them
 * off first and on again only where it ran dry: tx whenever its ring is
 * empty, rx only while packets wait for buffers.  Turning them on looks
 * again (hcsb__vsd_vring_notify), and each look that finds more buffers
 * takes at least one of them, so the arming is bounded by the budget too;
 * the last arming of a pass names the index we are really waiting for. */
#include <errno.h>

#include "vsockd/vsockd.h"

/* Pop, re-arming notifications whenever the ring looks empty.  Returns
 * what hcsb__vsd_vring_pop does, 0 once notifications are armed. */
static int pop(hcsb__vsd_vring_t *vq, const hcsb__vsd_mem_t *m,
               hcsb__vsd_chain_t *ch, unsigned *arms, unsigned budget) {
  for (;;) {
    int r = hcsb__vsd_vring_pop(vq, m, ch);
    if (r != 0) return r;
    /* A driver that keeps moving its index back and forth gets no more
     * looks than a budget's worth. */
    if ((*arms)++ == budget || !hcsb__vsd_vring_notify(vq, 1)) return 0;
  }
}

unsigned hcsb__vsd_pump_tx(hcsb__vsd_dev_t *d, hcsb__vsd_vring_t *vq,
                           const hcsb__vsd_mem_t *m, unsigned budget,
                           int *signal) {
  hcsb__vsd_chain_t ch;
  unsigned done = 0, arms = 0;

  if (!hcsb__vsd_vring_ready(vq, m)) return 0;
  uint16_t old = vq->used_idx;
  hcsb__vsd_vring_notify(vq, 0);
  while (done < budget) {
    int r = pop(vq, m, &ch, &arms, budget);
    if (r == 0 || r == -EIO) break;
    if (r == 1)
      hcsb__vsd_guest_tx(d, &ch);
    else
      d->stats.bad_pkts++;
    hcsb__vsd_vring_push(vq, ch.head, 0);
    done++;
  }
  if (done > 0 && hcsb__vsd_vring_want_signal(vq, old)) *signal = 1;
  return done;
}

unsigned hcsb__vsd_pump_rx(hcsb__vsd_dev_t *d, hcsb__vsd_vring_t *vq,
                           const hcsb__vsd_mem_t *m, unsigned budget,
                           int *signal) {
  hcsb__vsd_chain_t ch;
  unsigned done = 0, arms = 0;

  if (!hcsb__vsd_vring_ready(vq, m)) return 0;
  uint16_t old = vq->used_idx;
  hcsb__vsd_vring_notify(vq, 0);
  while (done < budget && hcsb__vsd_rx_pending(d)) {
    int r = pop(vq, m, &ch, &arms, budget);
    if (r == 0 || r == -EIO) break;
    hcsb__vsd_vring_push(vq, ch.head, r == 1 ? hcsb__vsd_guest_rx(d, &ch) : 0);
    done++;
  }
  if (done > 0 && hcsb__vsd_vring_want_signal(vq, old)) *signal = 1;
  return done;
}
