/* Growable byte buffer used by the encoder and the write queue. */
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

int hcsb__buf_grow(hcsb__buf_t *b, size_t extra) {
  size_t need, cap;
  char *p;

  if (extra <= b->cap - b->len) return 0;
  if (extra > SIZE_MAX - b->len) return -ENOMEM;
  need = b->len + extra;
  /* Doubling keeps appends amortised O(1); the floor avoids a string of
   * tiny reallocations while the first frame is built. */
  cap = b->cap < 256 ? 256 : b->cap;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  p = realloc(b->data, cap);
  if (p == NULL) return -ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int hcsb__buf_append(hcsb__buf_t *b, const void *p, size_t n) {
  int r;

  if (n == 0) return 0;
  r = hcsb__buf_reserve(b, n);
  if (r != 0) return r;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

void hcsb__buf_free(hcsb__buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}
