/* Pending-call table; see calltab.h. */
#include "bridge/calltab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MIN_CAP 64u

char hcsb__calltab_bare_marker;

static int is_bare(uint64_t w) {
  return (w & 1) != 0;
}

static void *item_of(uint64_t w) {
  return (void *)(uintptr_t)w;
}

static uint64_t key_of(const hcsb__calltab_t *t, uint64_t w) {
  return hcsb__calltab_key(t, w);
}

static size_t home(const hcsb__calltab_t *t, uint64_t key) {
  return hcsb__calltab_home(t, key);
}

/* At most 4/5 full.  The keys are SequenceIDs, mostly consecutive, which
 * Fibonacci hashing spreads almost evenly, so runs stay short even this
 * full (test-bridge-tables measures them), and a table of a power of two
 * slots holds up to 0.8 of it: 100,000 pending calls need 131,072 slots,
 * 10.5 bytes each, where 3/4 would need twice that.  A small table (up to
 * SMALL_CAP slots, 32 KiB) is kept at most 3/8 full instead: a pipeline of
 * a few hundred calls then nearly never probes past the home slot nor
 * shifts on removal (at 256 in flight, 0.04 shifted entries per removal
 * against 1.4 at half full), for memory that does not matter at that
 * size. */
#define SMALL_CAP 4096u
static size_t room_of(size_t cap) {
  return cap <= SMALL_CAP ? cap / 8 * 3 : cap - cap / 5;
}
static int fits(size_t cap, size_t n) {
  return n <= room_of(cap);
}

static void insert_fresh(hcsb__calltab_t *t, uint64_t key, uint64_t w) {
  size_t mask = t->cap - 1;
  size_t i = home(t, key);
  while (t->slots[i] != 0) i = (i + 1) & mask;
  t->slots[i] = w;
  t->count++;
}

static int rehash(hcsb__calltab_t *t, size_t cap) {
  uint64_t *old = t->slots;
  size_t oldcap = t->cap;
  uint64_t *s = calloc(cap, sizeof *s);
  if (s == NULL) return -ENOMEM;
  unsigned bits = 0;
  while (((size_t)1 << bits) < cap) bits++;
  t->slots = s;
  t->cap = cap;
  t->room = room_of(cap);
  t->shift = 64 - bits;
  t->count = 0;
  for (size_t i = 0; i < oldcap; i++)
    if (old[i] != 0) insert_fresh(t, key_of(t, old[i]), old[i]);
  free(old);
  return 0;
}

int hcsb__calltab_grow(hcsb__calltab_t *t, size_t n) {
  if (t->cap != 0 && fits(t->cap, n)) return 0;
  size_t cap = t->cap ? t->cap : MIN_CAP;
  while (!fits(cap, n)) {
    if (cap > SIZE_MAX / 2 / sizeof(uint64_t)) return -ENOMEM;
    cap *= 2;
  }
  return rehash(t, cap);
}

static int put_word(hcsb__calltab_t *t, uint64_t key, uint64_t w) {
  int rc = hcsb__calltab_reserve(t, t->count + 1);
  if (rc != 0) return rc;
  insert_fresh(t, key, w);
  return 0;
}

int hcsb__calltab_put(hcsb__calltab_t *t, void *item) {
  uint64_t w = (uint64_t)(uintptr_t)item;
  return put_word(t, key_of(t, w), w);
}

int hcsb__calltab_put_bare(hcsb__calltab_t *t, uint64_t key) {
  if (key > HCSB__CALLTAB_BARE_MAX) return -ERANGE;
  return put_word(t, key, key << 1 | 1);
}

static size_t find(const hcsb__calltab_t *t, uint64_t key) {
  if (t->count == 0) return SIZE_MAX;
  size_t mask = t->cap - 1;
  for (size_t i = home(t, key);; i = (i + 1) & mask) {
    if (t->slots[i] == 0) return SIZE_MAX;
    if (key_of(t, t->slots[i]) == key) return i;
  }
}

static void *value_of(uint64_t w) {
  return is_bare(w) ? HCSB__CALLTAB_BARE : item_of(w);
}

void *hcsb__calltab_get_slow(hcsb__calltab_t *t, uint64_t key) {
  size_t i = find(t, key);
  if (i == SIZE_MAX) return NULL;
  t->last = i;
  return value_of(t->slots[i]);
}

/* Empties slot `i` by backward shift: pulls later members of the probe
 * run into the hole unless that would move one before its home slot. */
static void remove_at(hcsb__calltab_t *t, size_t i) {
  uint64_t *slots = t->slots;
  size_t mask = t->cap - 1;
  uint64_t w;
  for (size_t j = (i + 1) & mask; (w = slots[j]) != 0; j = (j + 1) & mask) {
    size_t h = home(t, key_of(t, w));
    if (((j - h) & mask) >= ((j - i) & mask)) {
      slots[i] = w;
      i = j;
    }
  }
  slots[i] = 0;
  t->count--;
}

void *hcsb__calltab_del(hcsb__calltab_t *t, uint64_t key) {
  size_t i = t->last;
  if (i >= t->cap || t->slots[i] == 0 || key_of(t, t->slots[i]) != key)
    i = find(t, key);
  if (i == SIZE_MAX) return NULL;
  void *val = value_of(t->slots[i]);
  remove_at(t, i);
  return val;
}

void hcsb__calltab_del_item_slow(hcsb__calltab_t *t, const void *item,
                                 uint64_t key) {
  /* The slot the response's lookup found, or its home, hold it nearly
   * always: comparing the word is enough, the item is not read. */
  uint64_t w = (uint64_t)(uintptr_t)item;
  size_t i = t->last;
  if (i >= t->cap || t->slots[i] != w) {
    i = find(t, key);
    if (i == SIZE_MAX) return;
  }
  remove_at(t, i);
}

void *hcsb__calltab_item_at(const hcsb__calltab_t *t, size_t i) {
  uint64_t w = t->slots[i];
  return w == 0 || is_bare(w) ? NULL : item_of(w);
}

void hcsb__calltab_clear(hcsb__calltab_t *t) {
  if (t->cap != 0) memset(t->slots, 0, t->cap * sizeof *t->slots);
  t->count = 0;
}

void hcsb__calltab_free(hcsb__calltab_t *t) {
  free(t->slots);
  t->slots = NULL;
  t->cap = 0;
  t->room = 0;
  t->count = 0;
  t->shift = 64;
}
