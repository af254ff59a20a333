/* Deadline heap; see dlheap.h. */
#include "bridge/dlheap.h"

#include <errno.h>
#include <stdlib.h>

static int before(const hcsb__dl_node_t *a, const hcsb__dl_node_t *b) {
  return a->when < b->when ||
         (a->when == b->when && (int32_t)(a->seq - b->seq) < 0);
}

static void place(hcsb__dlheap_t *h, size_t i, hcsb__dl_node_t *node) {
  h->v[i] = node;
  node->idx = (uint32_t)i;
}

static void sift_up(hcsb__dlheap_t *h, size_t i) {
  hcsb__dl_node_t *node = h->v[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(node, h->v[parent])) break;
    place(h, i, h->v[parent]);
    i = parent;
  }
  place(h, i, node);
}

static void sift_down(hcsb__dlheap_t *h, size_t i) {
  hcsb__dl_node_t *node = h->v[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->n) break;
    if (c + 1 < h->n && before(h->v[c + 1], h->v[c])) c++;
    if (!before(h->v[c], node)) break;
    place(h, i, h->v[c]);
    i = c;
  }
  place(h, i, node);
}

int hcsb__dlheap_reserve(hcsb__dlheap_t *h, size_t n) {
  if (n <= h->cap) return 0;
  if (n >= HCSB__DL_NONE) return -ENOMEM;
  size_t cap = h->cap ? h->cap : 16;
  while (cap < n) cap *= 2;
  hcsb__dl_node_t **v = realloc(h->v, cap * sizeof *v);
  if (v == NULL) return -ENOMEM;
  h->v = v;
  h->cap = cap;
  return 0;
}

int hcsb__dlheap_push(hcsb__dlheap_t *h, hcsb__dl_node_t *node, uint64_t when) {
  int rc = hcsb__dlheap_reserve(h, h->n + 1);
  if (rc != 0) return rc;
  node->when = when;
  node->seq = h->next_seq++;
  h->v[h->n] = node;
  node->idx = h->n++;
  sift_up(h, node->idx);
  return 0;
}

void hcsb__dlheap_remove(hcsb__dlheap_t *h, hcsb__dl_node_t *node) {
  size_t i = node->idx;
  if (node->idx == HCSB__DL_NONE || i >= h->n || h->v[i] != node) return;
  node->idx = HCSB__DL_NONE;
  hcsb__dl_node_t *last = h->v[--h->n];
  if (last == node) return;
  place(h, i, last);
  if (i > 0 && before(last, h->v[(i - 1) / 2]))
    sift_up(h, i);
  else
    sift_down(h, i);
}

hcsb__dl_node_t *hcsb__dlheap_top(const hcsb__dlheap_t *h) {
  return h->n ? h->v[0] : NULL;
}

void hcsb__dlheap_free(hcsb__dlheap_t *h) {
  free(h->v);
  h->v = NULL;
  h->n = h->cap = 0;
}
