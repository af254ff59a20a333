/* Moving chains between the two rings QEMU gives us and the device.
 *
 * Both passes take a budget so a guest that keeps its rings full cannot
 * keep the loop from serving anything else; the caller comes back for the
 * rest.  A malformed chain is returned to the guest unused (length 0) and
 * the pass goes on; a broken ring stops being served. */
#include <errno.h>

#include "vsockd/vsockd.h"

unsigned hcsb__vsd_pump_tx(hcsb__vsd_dev_t *d, hcsb__vsd_vring_t *vq,
                           const hcsb__vsd_mem_t *m, unsigned budget,
                           int *signal) {
  hcsb__vsd_chain_t ch;
  unsigned done = 0;

  if (!hcsb__vsd_vring_ready(vq, m)) return 0;
  while (done < budget) {
    int r = hcsb__vsd_vring_pop(vq, m, &ch);
    if (r == 0 || r == -EIO) break;
    if (r == 1)
      hcsb__vsd_guest_tx(d, &ch);
    else
      d->stats.bad_pkts++;
    hcsb__vsd_vring_push(vq, ch.head, 0);
    done++;
  }
  if (done > 0 && hcsb__vsd_vring_want_signal(vq)) *signal = 1;
  return done;
}

unsigned hcsb__vsd_pump_rx(hcsb__vsd_dev_t *d, hcsb__vsd_vring_t *vq,
                           const hcsb__vsd_mem_t *m, unsigned budget,
                           int *signal) {
  hcsb__vsd_chain_t ch;
  unsigned done = 0;

  if (!hcsb__vsd_vring_ready(vq, m)) return 0;
  while (done < budget && hcsb__vsd_rx_pending(d)) {
    int r = hcsb__vsd_vring_pop(vq, m, &ch);
    if (r == 0 || r == -EIO) break;
    hcsb__vsd_vring_push(vq, ch.head, r == 1 ? hcsb__vsd_guest_rx(d, &ch) : 0);
    done++;
  }
  if (done > 0 && hcsb__vsd_vring_want_signal(vq)) *signal = 1;
  return done;
}
