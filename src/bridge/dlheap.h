/* Deadlines: a binary min-heap, so one uv_timer_t per bridge serves the
 * calls whose deadlines do not arrive in order.  Internal; no libuv.
 *
 * The heap's vector holds each entry's deadline, tie-break sequence and
 * item; an item only keeps its index (a uint32_t at `idx_off`), so removing
 * any item (a call answered before its deadline) is O(log n) and costs the
 * item 4 bytes.  Ties are broken by insertion order so calls with the same
 * deadline time out in the order they were made.
 */
#ifndef HCSB_BRIDGE_DLHEAP_H
#define HCSB_BRIDGE_DLHEAP_H

#include <stddef.h>
#include <stdint.h>

#define HCSB__DL_NONE UINT32_MAX

typedef struct hcsb__dl_entry_s {
  uint64_t when;
  uint32_t seq; /* only orders equal deadlines; wraps (signed difference) */
  void *item;
} hcsb__dl_entry_t;

typedef struct hcsb__dlheap_s {
  hcsb__dl_entry_t *v;
  size_t n;
  size_t cap;
  uint32_t next_seq;
  size_t idx_off; /* where an item keeps its uint32_t index */
} hcsb__dlheap_t;

#define HCSB__DLHEAP_INIT(idx_off) \
  { NULL, 0, 0, 0, (idx_off) }

/* Makes sure `n` entries fit without growing.  0 or -ENOMEM (also beyond
 * 2^32 - 1 entries). */
int hcsb__dlheap_reserve(hcsb__dlheap_t *h, size_t n);
/* Adds `item` (not in the heap) with deadline `when`.  Never fails when
 * room was reserved; otherwise 0 or -ENOMEM. */
int hcsb__dlheap_push(hcsb__dlheap_t *h, void *item, uint64_t when);
/* Removes `item` if it is in the heap (its index is HCSB__DL_NONE after). */
void hcsb__dlheap_remove(hcsb__dlheap_t *h, void *item);
/* The earliest entry, or NULL. */
static inline const hcsb__dl_entry_t *hcsb__dlheap_top(
    const hcsb__dlheap_t *h) {
  return h->n ? &h->v[0] : NULL;
}
void hcsb__dlheap_free(hcsb__dlheap_t *h);

#endif /* HCSB_BRIDGE_DLHEAP_H */
