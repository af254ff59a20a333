/* The pending-call table: an open-addressing hash set of items keyed by a
 * 64-bit SequenceID.  Internal; no libuv.
 *
 * A slot is one 64-bit word: 0 is empty, an odd word is a bare key
 * (key << 1 | 1; the bridge remembers abandoned IDs this way) and anything
 * else is the address of an item that holds its own key at `key_off`.  So
 * a pending call costs 8 bytes of table at most 4/5 full: between 10 and 20
 * bytes per entry, half of what a key+pointer slot costs.  A probe that
 * meets an item reads its key from the item, which a hit touches anyway.
 *
 * Linear probing over a power-of-two array, Fibonacci hashing (IDs are
 * sequential, so multiplying by 2^64/phi spreads them across the whole
 * table), deletion by backward shift (no tombstones, so a long-lived
 * connection never degrades).
 */
#ifndef HCSB_BRIDGE_CALLTAB_H
#define HCSB_BRIDGE_CALLTAB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct hcsb__calltab_s {
  uint64_t *slots;
  size_t cap; /* 0 or a power of two */
  size_t count;
  size_t room;    /* the most entries `cap` slots take (calltab.c) */
  unsigned shift; /* 64 - log2(cap) */
  size_t key_off; /* where an item keeps its uint64_t key */
  /* The slot the last get found: a response is looked up, then removed,
   * and the removal need not probe again.  Only a hint (checked). */
  size_t last;
} hcsb__calltab_t;

#define HCSB__CALLTAB_INIT(key_off) \
  { NULL, 0, 0, 0, 64, (key_off), 0 }

/* The largest bare key. */
#define HCSB__CALLTAB_BARE_MAX (UINT64_MAX >> 1)

/* What get/del return for a bare key. */
extern char hcsb__calltab_bare_marker;
#define HCSB__CALLTAB_BARE ((void *)&hcsb__calltab_bare_marker)

/* Makes sure `n` entries fit without growing.  0 or -ENOMEM (unchanged).
 * Inline: there is room nearly always (hcsb__calltab_grow does the rest). */
int hcsb__calltab_grow(hcsb__calltab_t *t, size_t n);
static inline int hcsb__calltab_reserve(hcsb__calltab_t *t, size_t n) {
  return n <= t->room ? 0 : hcsb__calltab_grow(t, n);
}
/* Inserts `item` (at least 2-byte aligned; its key must be absent and must
 * not change while it is in the table).  Never fails when room was
 * reserved; otherwise 0 or -ENOMEM. */
int hcsb__calltab_put(hcsb__calltab_t *t, void *item);

/* The hot path, inline: a call's insert, its response's lookup and its
 * removal each cost a few instructions when the first probe hits. */
static inline size_t hcsb__calltab_home(const hcsb__calltab_t *t,
                                        uint64_t key) {
  /* Fibonacci hashing (2^64 / phi). */
  return (size_t)((key * 0x9E3779B97F4A7C15ull) >> t->shift);
}
/* The key of a non-empty slot's word. */
static inline uint64_t hcsb__calltab_key(const hcsb__calltab_t *t, uint64_t w) {
  uint64_t key;
  if ((w & 1) != 0) return w >> 1;
  memcpy(&key, (const char *)(uintptr_t)w + t->key_off, sizeof key);
  return key;
}
/* hcsb__calltab_put for an item whose key is `key`, with room reserved
 * (hcsb__calltab_reserve). */
static inline void hcsb__calltab_put_reserved(hcsb__calltab_t *t, void *item,
                                              uint64_t key) {
  size_t mask = t->cap - 1;
  size_t i = hcsb__calltab_home(t, key);
  while (t->slots[i] != 0) i = (i + 1) & mask;
  t->slots[i] = (uint64_t)(uintptr_t)item;
  t->count++;
}
/* Inserts a bare `key` (absent, at most HCSB__CALLTAB_BARE_MAX).  0,
 * -ERANGE or -ENOMEM. */
int hcsb__calltab_put_bare(hcsb__calltab_t *t, uint64_t key);
/* The item stored under `key`, HCSB__CALLTAB_BARE, or NULL. */
void *hcsb__calltab_get_slow(hcsb__calltab_t *t, uint64_t key);
static inline void *hcsb__calltab_get(hcsb__calltab_t *t, uint64_t key) {
  if (t->count != 0) {
    size_t i = hcsb__calltab_home(t, key);
    uint64_t w = t->slots[i];
    if (w != 0 && (w & 1) == 0 && hcsb__calltab_key(t, w) == key) {
      t->last = i;
      return (void *)(uintptr_t)w;
    }
  }
  return hcsb__calltab_get_slow(t, key);
}
/* Removes `key`; returns what get would have. */
void *hcsb__calltab_del(hcsb__calltab_t *t, uint64_t key);
/* Removes `item`, which is in the table under `key`.  Inline when the
 * last lookup found it and the slot after it is empty (nothing to shift
 * back), which is nearly always so in a table at most 3/8 full. */
void hcsb__calltab_del_item_slow(hcsb__calltab_t *t, const void *item,
                                 uint64_t key);
static inline void hcsb__calltab_del_item(hcsb__calltab_t *t, const void *item,
                                          uint64_t key) {
  size_t i = t->last;
  if (i < t->cap && t->slots[i] == (uint64_t)(uintptr_t)item &&
      t->slots[(i + 1) & (t->cap - 1)] == 0) {
    t->slots[i] = 0;
    t->count--;
    return;
  }
  hcsb__calltab_del_item_slow(t, item, key);
}
/* The item in slot `i` (< cap), or NULL for an empty slot or a bare key. */
void *hcsb__calltab_item_at(const hcsb__calltab_t *t, size_t i);
/* Empties the table, keeping its memory. */
void hcsb__calltab_clear(hcsb__calltab_t *t);
void hcsb__calltab_free(hcsb__calltab_t *t);

#endif /* HCSB_BRIDGE_CALLTAB_H */
