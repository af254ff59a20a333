/* Deadlines: a binary min-heap of intrusive nodes, so one uv_timer_t per
 * bridge serves every call's timeout.  Internal; no libuv.
 *
 * Nodes know their index, so removing an arbitrary node (a call answered
 * before its deadline) is O(log n).  Ties are broken by insertion order so
 * calls with the same deadline time out in the order they were made.
 */
#ifndef HCSB_BRIDGE_DLHEAP_H
#define HCSB_BRIDGE_DLHEAP_H

#include <stddef.h>
#include <stdint.h>

#define HCSB__DL_NONE UINT32_MAX

/* 16 bytes: it lives in every call.  `seq` only orders equal deadlines, so
 * it may wrap (compared as a signed difference). */
typedef struct hcsb__dl_node_s {
  uint64_t when;
  uint32_t seq;
  uint32_t idx; /* HCSB__DL_NONE when not in a heap */
} hcsb__dl_node_t;

typedef struct hcsb__dlheap_s {
  hcsb__dl_node_t **v;
  size_t n;
  size_t cap;
  uint32_t next_seq;
} hcsb__dlheap_t;

#define HCSB__DLHEAP_INIT \
  { NULL, 0, 0, 0 }

/* Makes sure `n` nodes fit without growing.  0 or -ENOMEM (also beyond
 * 2^32 - 1 nodes). */
int hcsb__dlheap_reserve(hcsb__dlheap_t *h, size_t n);
/* Adds `node` with deadline `when`.  Never fails when room was reserved;
 * otherwise 0 or -ENOMEM. */
int hcsb__dlheap_push(hcsb__dlheap_t *h, hcsb__dl_node_t *node, uint64_t when);
/* Removes `node` if it is in the heap. */
void hcsb__dlheap_remove(hcsb__dlheap_t *h, hcsb__dl_node_t *node);
/* The earliest node, or NULL. */
hcsb__dl_node_t *hcsb__dlheap_top(const hcsb__dlheap_t *h);
void hcsb__dlheap_free(hcsb__dlheap_t *h);

#endif /* HCSB_BRIDGE_DLHEAP_H */
