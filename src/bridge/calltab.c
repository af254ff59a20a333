/* Pending-call table; see calltab.h. */
#include "bridge/calltab.h"

#include <errno.h>
#include <stdlib.h>

#define MIN_CAP 64u
#define GOLDEN 0x9E3779B97F4A7C15ull

static size_t home(const hcsb__calltab_t *t, uint64_t id) {
  return (size_t)((id * GOLDEN) >> t->shift);
}

/* At most 3/4 full: linear probing stays short even for a miss. */
static int fits(size_t cap, size_t n) { return n <= cap - cap / 4; }

static void insert_fresh(hcsb__calltab_t *t, uint64_t id, void *val) {
  size_t mask = t->cap - 1;
  size_t i = home(t, id);
  while (t->slots[i].val != NULL) i = (i + 1) & mask;
  t->slots[i].id = id;
  t->slots[i].val = val;
  t->count++;
}

static int rehash(hcsb__calltab_t *t, size_t cap) {
  hcsb__calltab_slot_t *old = t->slots;
  size_t oldcap = t->cap;
  hcsb__calltab_slot_t *s = calloc(cap, sizeof *s);
  if (s == NULL) return -ENOMEM;
  unsigned bits = 0;
  while (((size_t)1 << bits) < cap) bits++;
  t->slots = s;
  t->cap = cap;
  t->shift = 64 - bits;
  t->count = 0;
  for (size_t i = 0; i < oldcap; i++)
    if (old[i].val != NULL) insert_fresh(t, old[i].id, old[i].val);
  free(old);
  return 0;
}

int hcsb__calltab_reserve(hcsb__calltab_t *t, size_t n) {
  if (t->cap != 0 && fits(t->cap, n)) return 0;
  size_t cap = t->cap ? t->cap : MIN_CAP;
  while (!fits(cap, n)) {
    if (cap > SIZE_MAX / 2 / sizeof(hcsb__calltab_slot_t)) return -ENOMEM;
    cap *= 2;
  }
  return rehash(t, cap);
}

int hcsb__calltab_put(hcsb__calltab_t *t, uint64_t id, void *val) {
  int rc = hcsb__calltab_reserve(t, t->count + 1);
  if (rc != 0) return rc;
  insert_fresh(t, id, val);
  return 0;
}

static size_t find(const hcsb__calltab_t *t, uint64_t id) {
  if (t->count == 0) return SIZE_MAX;
  size_t mask = t->cap - 1;
  for (size_t i = home(t, id);; i = (i + 1) & mask) {
    if (t->slots[i].val == NULL) return SIZE_MAX;
    if (t->slots[i].id == id) return i;
  }
}

void *hcsb__calltab_get(const hcsb__calltab_t *t, uint64_t id) {
  size_t i = find(t, id);
  return i == SIZE_MAX ? NULL : t->slots[i].val;
}

void *hcsb__calltab_del(hcsb__calltab_t *t, uint64_t id) {
  size_t i = find(t, id);
  if (i == SIZE_MAX) return NULL;
  void *val = t->slots[i].val;
  size_t mask = t->cap - 1;
  /* Backward shift: pull later members of the probe run into the hole
   * unless that would move one before its home slot. */
  for (size_t j = (i + 1) & mask; t->slots[j].val != NULL; j = (j + 1) & mask) {
    size_t h = home(t, t->slots[j].id);
    if (((j - h) & mask) >= ((j - i) & mask)) {
      t->slots[i] = t->slots[j];
      i = j;
    }
  }
  t->slots[i].val = NULL;
  t->count--;
  return val;
}

void hcsb__calltab_clear(hcsb__calltab_t *t) {
  for (size_t i = 0; i < t->cap && t->count > 0; i++) {
    if (t->slots[i].val != NULL) {
      t->slots[i].val = NULL;
      t->count--;
    }
  }
}

void hcsb__calltab_free(hcsb__calltab_t *t) {
  free(t->slots);
  t->slots = NULL;
  t->cap = 0;
  t->count = 0;
  t->shift = 64;
}
