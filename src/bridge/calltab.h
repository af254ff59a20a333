/* The pending-call table: an open-addressing hash map from a 64-bit
 * SequenceID to a pointer.  Internal; no libuv.
 *
 * Linear probing over a power-of-two array, Fibonacci hashing (IDs are
 * sequential, so multiplying by 2^64/phi spreads them across the whole
 * table), deletion by backward shift (no tombstones, so a long-lived
 * connection never degrades).  Slots keep the key inline: a lookup touches
 * one cache line in the common case and never dereferences a call.
 */
#ifndef HCSB_BRIDGE_CALLTAB_H
#define HCSB_BRIDGE_CALLTAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct hcsb__calltab_slot_s {
  uint64_t id;
  void *val; /* NULL: empty slot */
} hcsb__calltab_slot_t;

typedef struct hcsb__calltab_s {
  hcsb__calltab_slot_t *slots;
  size_t cap; /* 0 or a power of two */
  size_t count;
  unsigned shift; /* 64 - log2(cap) */
} hcsb__calltab_t;

#define HCSB__CALLTAB_INIT {NULL, 0, 0, 64}

/* Makes sure `n` entries fit without growing.  0 or -ENOMEM (unchanged). */
int hcsb__calltab_reserve(hcsb__calltab_t *t, size_t n);
/* Inserts `id` (which must be absent; `val` non-NULL).  Never fails when
 * room was reserved; otherwise 0 or -ENOMEM. */
int hcsb__calltab_put(hcsb__calltab_t *t, uint64_t id, void *val);
/* The value stored under `id`, or NULL. */
void *hcsb__calltab_get(const hcsb__calltab_t *t, uint64_t id);
/* Removes `id` and returns its value, or NULL when absent. */
void *hcsb__calltab_del(hcsb__calltab_t *t, uint64_t id);
/* Empties the table, keeping its memory. */
void hcsb__calltab_clear(hcsb__calltab_t *t);
void hcsb__calltab_free(hcsb__calltab_t *t);

#endif /* HCSB_BRIDGE_CALLTAB_H */
