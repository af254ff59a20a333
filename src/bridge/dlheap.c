/* Deadline heap; see dlheap.h. */
#include "bridge/dlheap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int before(const hcsb__dl_entry_t *a, const hcsb__dl_entry_t *b) {
  return a->when < b->when ||
         (a->when == b->when && (int32_t)(a->seq - b->seq) < 0);
}

static uint32_t *idx_of(const hcsb__dlheap_t *h, void *item) {
  return (uint32_t *)(void *)((char *)item + h->idx_off);
}

static void place(hcsb__dlheap_t *h, size_t i, const hcsb__dl_entry_t *e) {
  h->v[i] = *e;
  *idx_of(h, e->item) = (uint32_t)i;
}

static void sift_up(hcsb__dlheap_t *h, size_t i) {
  hcsb__dl_entry_t e = h->v[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(&e, &h->v[parent])) break;
    place(h, i, &h->v[parent]);
    i = parent;
  }
  place(h, i, &e);
}

static void sift_down(hcsb__dlheap_t *h, size_t i) {
  hcsb__dl_entry_t e = h->v[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->n) break;
    if (c + 1 < h->n && before(&h->v[c + 1], &h->v[c])) c++;
    if (!before(&h->v[c], &e)) break;
    place(h, i, &h->v[c]);
    i = c;
  }
  place(h, i, &e);
}

int hcsb__dlheap_reserve(hcsb__dlheap_t *h, size_t n) {
  if (n <= h->cap) return 0;
  if (n >= HCSB__DL_NONE) return -ENOMEM;
  size_t cap = h->cap ? h->cap : 16;
  while (cap < n) cap *= 2;
  hcsb__dl_entry_t *v = realloc(h->v, cap * sizeof *v);
  if (v == NULL) return -ENOMEM;
  h->v = v;
  h->cap = cap;
  return 0;
}

int hcsb__dlheap_push(hcsb__dlheap_t *h, void *item, uint64_t when) {
  int rc = hcsb__dlheap_reserve(h, h->n + 1);
  if (rc != 0) return rc;
  hcsb__dl_entry_t *e = &h->v[h->n];
  e->when = when;
  e->seq = h->next_seq++;
  e->item = item;
  *idx_of(h, item) = (uint32_t)h->n;
  sift_up(h, h->n++);
  return 0;
}

void hcsb__dlheap_remove(hcsb__dlheap_t *h, void *item) {
  uint32_t *idx = idx_of(h, item);
  size_t i = *idx;
  if (*idx == HCSB__DL_NONE || i >= h->n || h->v[i].item != item) return;
  *idx = HCSB__DL_NONE;
  if (i == --h->n) return;
  h->v[i] = h->v[h->n];
  *idx_of(h, h->v[i].item) = (uint32_t)i;
  if (i > 0 && before(&h->v[i], &h->v[(i - 1) / 2]))
    sift_up(h, i);
  else
    sift_down(h, i);
}

void hcsb__dlheap_free(hcsb__dlheap_t *h) {
  free(h->v);
  h->v = NULL;
  h->n = h->cap = 0;
}
