/* The bridge's data structures on their own: the pending-call hash table
 * and the deadline heap, checked against a trivially correct model. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/calltab.h"
#include "bridge/dlheap.h"
#include "runner.h"

static uint64_t rng_state = 0x853c49e6748fea9bull;
static uint64_t rnd(void) {
  return hcsb_test_xorshift(&rng_state);
}

/* Items keep their key at an offset other than 0, as calls do. */
typedef struct item_s {
  uint32_t pad[3];
  uint64_t key;
} item_t;

#define TAB_INIT HCSB__CALLTAB_INIT(offsetof(item_t, key))

static void test_calltab_basic(void) {
  enum { N = 1000 };
  item_t *it = calloc(N + 1, sizeof *it);
  CHECK(it != NULL);
  hcsb__calltab_t t = TAB_INIT;
  CHECK(hcsb__calltab_get(&t, 1) == NULL);
  CHECK(hcsb__calltab_del(&t, 1) == NULL);
  for (uint64_t id = 1; id <= N; id++) {
    it[id].key = id;
    CHECK_EQ(hcsb__calltab_put(&t, &it[id]), 0);
  }
  CHECK_EQ(t.count, N);
  CHECK(t.cap >= N * 4 / 3);
  for (uint64_t id = 1; id <= N; id++)
    CHECK(hcsb__calltab_get(&t, id) == &it[id]);
  CHECK(hcsb__calltab_get(&t, 0) == NULL);
  CHECK(hcsb__calltab_get(&t, N + 1) == NULL);
  CHECK(hcsb__calltab_get(&t, UINT64_MAX) == NULL);
  for (uint64_t id = 1; id <= N; id += 2)
    CHECK(hcsb__calltab_del(&t, id) == &it[id]);
  for (uint64_t id = 1; id <= N; id++)
    CHECK(hcsb__calltab_get(&t, id) == (id % 2 ? NULL : &it[id]));
  CHECK_EQ(t.count, N / 2);
  /* Every remaining item is visited exactly once by slot. */
  size_t seen = 0;
  for (size_t i = 0; i < t.cap; i++) {
    item_t *x = hcsb__calltab_item_at(&t, i);
    if (x == NULL) continue;
    CHECK_EQ(x->key % 2, 0);
    seen++;
  }
  CHECK_EQ(seen, N / 2);
  hcsb__calltab_clear(&t);
  CHECK_EQ(t.count, 0);
  CHECK(hcsb__calltab_get(&t, 2) == NULL);
  hcsb__calltab_free(&t);
  free(it);
}

/* Bare keys (abandoned IDs) share the table with items: each lookup says
 * which one it found, slot visits skip bare keys, and keys too large to be
 * stored bare are refused instead of colliding with pointers. */
static void test_calltab_bare(void) {
  item_t it[64];
  hcsb__calltab_t t = TAB_INIT;
  for (uint64_t id = 0; id < 64; id++) {
    it[id].key = id * 2 + 1;
    CHECK_EQ(hcsb__calltab_put(&t, &it[id]), 0);
    CHECK_EQ(hcsb__calltab_put_bare(&t, id * 2 + 2), 0);
  }
  CHECK_EQ(hcsb__calltab_put_bare(&t, HCSB__CALLTAB_BARE_MAX), 0);
  CHECK_EQ(hcsb__calltab_put_bare(&t, HCSB__CALLTAB_BARE_MAX + 1), -ERANGE);
  CHECK_EQ(hcsb__calltab_put_bare(&t, UINT64_MAX), -ERANGE);
  CHECK_EQ(t.count, 129);
  for (uint64_t id = 0; id < 64; id++) {
    CHECK(hcsb__calltab_get(&t, id * 2 + 1) == &it[id]);
    CHECK(hcsb__calltab_get(&t, id * 2 + 2) == HCSB__CALLTAB_BARE);
  }
  CHECK(hcsb__calltab_get(&t, HCSB__CALLTAB_BARE_MAX) == HCSB__CALLTAB_BARE);
  CHECK(hcsb__calltab_get(&t, UINT64_MAX) == NULL);
  CHECK(hcsb__calltab_get(&t, 0) == NULL);
  size_t items = 0;
  for (size_t i = 0; i < t.cap; i++)
    items += hcsb__calltab_item_at(&t, i) != NULL;
  CHECK_EQ(items, 64);
  CHECK(hcsb__calltab_del(&t, 2) == HCSB__CALLTAB_BARE);
  CHECK(hcsb__calltab_get(&t, 2) == NULL);
  CHECK(hcsb__calltab_del(&t, 1) == &it[0]);
  CHECK(hcsb__calltab_get(&t, 1) == NULL);
  CHECK_EQ(t.count, 127);
  hcsb__calltab_free(&t);
}

/* Reserve means no allocation later: capacity must not change on put. */
static void test_calltab_reserve(void) {
  item_t it[100];
  hcsb__calltab_t t = TAB_INIT;
  CHECK_EQ(hcsb__calltab_reserve(&t, 100), 0);
  size_t cap = t.cap;
  for (uint64_t id = 0; id < 100; id++) {
    it[id].key = id << 40;
    CHECK_EQ(id % 2 ? hcsb__calltab_put(&t, &it[id])
                    : hcsb__calltab_put_bare(&t, id << 40),
             0);
  }
  CHECK_EQ(t.cap, cap);
  for (uint64_t id = 0; id < 100; id++)
    CHECK(hcsb__calltab_get(&t, id << 40) ==
          (id % 2 ? (void *)&it[id] : HCSB__CALLTAB_BARE));
  hcsb__calltab_free(&t);
}

/* Random inserts and deletes of items and bare keys (sequential-ish and
 * arbitrary keys) against a flat array model; backward-shift deletion and
 * rehashing must keep every key findable as what it was stored as. */
static void test_calltab_random(void) {
  enum { N = 4096 };
  item_t *it = calloc(N, sizeof *it);
  unsigned char *present = calloc(N, 1);
  CHECK(it && present);
  for (int i = 0; i < N; i++)
    it[i].key = (i % 3 == 0) ? (rnd() | 1) >> 1 : (uint64_t)i + 1;
  hcsb__calltab_t t = TAB_INIT;
#define EXPECT(k) \
  (!present[k] ? NULL : (k) % 5 == 0 ? HCSB__CALLTAB_BARE : (void *)&it[k])
  size_t count = 0;
  for (int step = 0; step < 200000; step++) {
    int i = (int)(rnd() % N);
    if (present[i]) {
      CHECK(hcsb__calltab_del(&t, it[i].key) == EXPECT(i));
      present[i] = 0;
      count--;
    } else {
      CHECK_EQ(i % 5 == 0 ? hcsb__calltab_put_bare(&t, it[i].key)
                          : hcsb__calltab_put(&t, &it[i]),
               0);
      present[i] = 1;
      count++;
    }
    if (step % 10007 == 0)
      for (int k = 0; k < N; k++)
        CHECK(hcsb__calltab_get(&t, it[k].key) == EXPECT(k));
  }
  CHECK_EQ(t.count, count);
  for (int k = 0; k < N; k++)
    CHECK(hcsb__calltab_get(&t, it[k].key) == EXPECT(k));
#undef EXPECT
  hcsb__calltab_free(&t);
  free(it);
  free(present);
}

/* How far items sit from their home slots.  Sequential IDs (a pipeline:
 * new ones at the top, answers mostly in order, some late) at the fullest
 * the table gets (4/5) must still be found in a few probes. */
static void probe_stats(const hcsb__calltab_t *t, double *mean, size_t *max) {
  size_t sum = 0, n = 0, mask = t->cap - 1;
  *max = 0;
  for (size_t i = 0; i < t->cap; i++) {
    item_t *x = hcsb__calltab_item_at(t, i);
    if (x == NULL) continue;
    size_t home = (size_t)((x->key * 0x9E3779B97F4A7C15ull) >> t->shift);
    size_t d = (i - home) & mask;
    sum += d;
    n++;
    if (d > *max) *max = d;
  }
  *mean = n ? (double)sum / (double)n : 0;
}

static void test_calltab_sequential_ids_full(void) {
  enum { N = 104857 }; /* 4/5 of 131072 */
  item_t *it = calloc(N, sizeof *it);
  CHECK(it != NULL);
  hcsb__calltab_t t = TAB_INIT;
  uint64_t next = 1;
  /* Fill, then 20 rounds of: answer a random eighth of the calls, then
   * issue as many new ones (reusing the freed items). */
  for (size_t i = 0; i < N; i++) {
    it[i].key = next++;
    CHECK_EQ(hcsb__calltab_put(&t, &it[i]), 0);
  }
  CHECK_EQ(t.cap, 131072);
  for (int round = 0; round < 20; round++) {
    for (size_t k = 0; k < N / 8; k++) {
      size_t i = (size_t)(rnd() % N);
      if (hcsb__calltab_get(&t, it[i].key) != &it[i]) continue;
      CHECK(hcsb__calltab_del(&t, it[i].key) == &it[i]);
      it[i].key = next++;
      CHECK_EQ(hcsb__calltab_put(&t, &it[i]), 0);
    }
  }
  CHECK_EQ(t.cap, 131072);
  CHECK_EQ(t.count, N);
  double mean;
  size_t max;
  probe_stats(&t, &mean, &max);
  fprintf(stderr,
          "  %zu of %zu slots used: %.2f slots from home on "
          "average, %zu at most\n",
          t.count, t.cap, mean, max);
  CHECK(mean < 2.0);
  CHECK(max < 256);
  hcsb__calltab_free(&t);
  free(it);
}

/* A pipeline of a few hundred calls (answered in order, each answer
 * followed by a new call, as a client at 256 in flight does) keeps the
 * small table at most 3/8 full, where an item nearly always sits in its
 * home slot: a lookup is one probe and a removal shifts nothing.  The
 * removal by address (the bridge's, after its lookup) takes the same
 * items as the removal by key. */
static void test_calltab_small_pipeline(void) {
  enum { W = 256, ROUNDS = 20000 };
  item_t *it = calloc(W, sizeof *it);
  CHECK(it != NULL);
  hcsb__calltab_t t = TAB_INIT;
  uint64_t next = 1;
  size_t at_home = 0;
  for (size_t i = 0; i < W; i++) {
    it[i].key = next++;
    CHECK_EQ(hcsb__calltab_reserve(&t, t.count + 1), 0);
    hcsb__calltab_put_reserved(&t, &it[i], it[i].key);
  }
  CHECK_EQ(t.cap, 1024);
  CHECK_EQ(t.room, 384);
  for (size_t r = 0; r < ROUNDS; r++) {
    item_t *x = &it[r % W];
    uint64_t key = x->key;
    size_t home = hcsb__calltab_home(&t, key);
    CHECK(hcsb__calltab_get(&t, key) == x);
    if (t.slots[home] == (uint64_t)(uintptr_t)x) at_home++;
    if (r % 2)
      hcsb__calltab_del_item(&t, x, key);
    else
      CHECK(hcsb__calltab_del(&t, key) == x);
    CHECK(hcsb__calltab_get(&t, key) == NULL);
    x->key = next++;
    CHECK_EQ(hcsb__calltab_reserve(&t, t.count + 1), 0);
    hcsb__calltab_put_reserved(&t, x, x->key);
  }
  CHECK_EQ(t.cap, 1024);
  CHECK_EQ(t.count, W);
  for (size_t i = 0; i < W; i++)
    CHECK(hcsb__calltab_get(&t, it[i].key) == &it[i]);
  fprintf(stderr, "  %zu of %d lookups found the item in its home slot\n",
          at_home, (int)ROUNDS);
  CHECK(at_home >= ROUNDS - ROUNDS / 20);
  hcsb__calltab_free(&t);
  free(it);
}

/* Heap items keep only their index; the deadline is the entry's. */
typedef struct dl_item_s {
  uint64_t when; /* the test's copy */
  uint32_t idx;
} dl_item_t;
#define DLHEAP_INIT HCSB__DLHEAP_INIT(offsetof(dl_item_t, idx))

static dl_item_t *top_item(const hcsb__dlheap_t *h) {
  const hcsb__dl_entry_t *e = hcsb__dlheap_top(h);
  return e ? e->item : NULL;
}

static void test_dlheap_order_and_ties(void) {
  hcsb__dlheap_t h = DLHEAP_INIT;
  dl_item_t n[6];
  const uint64_t when[6] = {50, 10, 30, 10, 70, 30};
  for (int i = 0; i < 6; i++) {
    n[i].idx = HCSB__DL_NONE;
    CHECK_EQ(hcsb__dlheap_push(&h, &n[i], when[i]), 0);
  }
  /* Equal deadlines come out in insertion order. */
  const int expect[6] = {1, 3, 2, 5, 0, 4};
  for (int i = 0; i < 6; i++) {
    dl_item_t *top = top_item(&h);
    CHECK(top == &n[expect[i]]);
    CHECK_U64(hcsb__dlheap_top(&h)->when, when[expect[i]]);
    hcsb__dlheap_remove(&h, top);
    CHECK(top->idx == HCSB__DL_NONE);
  }
  CHECK(hcsb__dlheap_top(&h) == NULL);
  hcsb__dlheap_remove(&h, &n[0]); /* not in the heap: no-op */
  hcsb__dlheap_free(&h);
}

/* The tie-break sequence is 32 bits and wraps; order must survive that. */
static void test_dlheap_seq_wraps(void) {
  hcsb__dlheap_t h = DLHEAP_INIT;
  dl_item_t n[6];
  h.next_seq = UINT32_MAX - 2;
  for (int i = 0; i < 6; i++) CHECK_EQ(hcsb__dlheap_push(&h, &n[i], 7), 0);
  for (int i = 0; i < 6; i++) {
    CHECK(top_item(&h) == &n[i]);
    hcsb__dlheap_remove(&h, &n[i]);
  }
  hcsb__dlheap_free(&h);
}

static void test_dlheap_random_remove(void) {
  enum { N = 2000 };
  dl_item_t *n = calloc(N, sizeof *n);
  uint32_t *seq = calloc(N, sizeof *seq);
  unsigned char *in = calloc(N, 1);
  CHECK(n && in && seq);
  hcsb__dlheap_t h = DLHEAP_INIT;
  for (int i = 0; i < N; i++) n[i].idx = HCSB__DL_NONE;
  for (int step = 0; step < 100000; step++) {
    int i = (int)(rnd() % N);
    if (in[i]) {
      hcsb__dlheap_remove(&h, &n[i]);
      CHECK(n[i].idx == HCSB__DL_NONE);
      in[i] = 0;
    } else {
      n[i].when = rnd() % 1000;
      seq[i] = h.next_seq;
      CHECK_EQ(hcsb__dlheap_push(&h, &n[i], n[i].when), 0);
      in[i] = 1;
    }
    if (step % 997 == 0) {
      dl_item_t *top = top_item(&h);
      for (int k = 0; k < N; k++) {
        if (!in[k]) continue;
        /* Every item's index points at its own entry. */
        CHECK(h.v[n[k].idx].item == &n[k]);
        CHECK(top != NULL);
        CHECK(top->when < n[k].when || (top->when == n[k].when &&
                                        (int32_t)(seq[top - n] - seq[k]) <= 0));
      }
    }
  }
  /* Drain: non-decreasing deadlines. */
  uint64_t last = 0;
  dl_item_t *top;
  while ((top = top_item(&h)) != NULL) {
    CHECK(top->when >= last);
    last = top->when;
    hcsb__dlheap_remove(&h, top);
    in[top - n] = 0;
  }
  for (int k = 0; k < N; k++) CHECK_EQ(in[k], 0);
  hcsb__dlheap_free(&h);
  free(n);
  free(seq);
  free(in);
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(calltab_basic),
      TEST_ENTRY(calltab_bare),
      TEST_ENTRY(calltab_reserve),
      TEST_ENTRY(calltab_random),
      TEST_ENTRY(calltab_sequential_ids_full),
      TEST_ENTRY(calltab_small_pipeline),
      TEST_ENTRY(dlheap_order_and_ties),
      TEST_ENTRY(dlheap_seq_wraps),
      TEST_ENTRY(dlheap_random_remove),
  };
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
