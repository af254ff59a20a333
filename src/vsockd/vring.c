/* Guest memory and split virtqueues (virtio 1.x, 2.7).
 *
 * The driver owns the descriptor table and the avail ring and may rewrite
 * them at any moment, so each descriptor is copied into locals before it is
 * checked, and nothing read from guest memory is trusted twice.  A chain
 * ends after at most `num` descriptors (more must be a loop), an indirect
 * table after its own entry count.  A chain may be direct descriptors
 * followed by one descriptor naming an indirect table, which ends it
 * (2.7.5.3.2 requires a device to take that); nested tables, INDIRECT with
 * NEXT, and readable buffers after writable ones are malformed.  Buffers
 * may overlap each other or the rings themselves: that can only garble the
 * guest's own data, since whatever we read is copied before it is checked.
 * Indices shared with the driver are read and written with single, ordered
 * 16-bit accesses.
 *
 * Notification suppression (2.7.7, 2.7.10): without EVENT_IDX the driver's
 * NO_INTERRUPT flag and our NO_NOTIFY flag; with it, the used_event the
 * driver keeps after its avail ring and the avail_event we keep after the
 * used ring.  Both fit in what hcsb__vsd_vring_ready() checks. */
#include <errno.h>
#include <string.h>

#include "vsockd/vsockd.h"

#define DESC_F_NEXT 1u
#define DESC_F_WRITE 2u
#define DESC_F_INDIRECT 4u
#define AVAIL_F_NO_INTERRUPT 1u
#define USED_F_NO_NOTIFY 1u

static void *lookup(const hcsb__vsd_mem_t *m, uint64_t addr, uint64_t len,
                    int by_uva) {
  for (unsigned i = 0; i < m->n; i++) {
    const hcsb__vsd_region_t *r = &m->r[i];
    uint64_t start = by_uva ? r->uva : r->gpa;
    if (addr < start) continue;
    uint64_t off = addr - start;
    if (off >= r->size && !(off == r->size && len == 0)) continue;
    if (len > r->size - off) continue;
    return r->host + off;
  }
  return NULL;
}

void *hcsb__vsd_gpa(const hcsb__vsd_mem_t *m, uint64_t gpa, uint64_t len) {
  return lookup(m, gpa, len, 0);
}

void *hcsb__vsd_uva(const hcsb__vsd_mem_t *m, uint64_t uva, uint64_t len) {
  return lookup(m, uva, len, 1);
}

/* Copies between a flat buffer and the segments [first, first+n) starting
 * `off` bytes in. */
static size_t seg_copy(const hcsb__vsd_seg_t *seg, unsigned n, uint64_t off,
                       uint8_t *flat, size_t len, int to_guest) {
  size_t done = 0;
  for (unsigned i = 0; i < n && done < len; i++) {
    if (off >= seg[i].len) {
      off -= seg[i].len;
      continue;
    }
    size_t k = seg[i].len - (size_t)off;
    if (k > len - done) k = len - done;
    if (to_guest)
      memcpy(seg[i].p + off, flat + done, k);
    else
      memcpy(flat + done, seg[i].p + off, k);
    done += k;
    off = 0;
  }
  return done;
}

size_t hcsb__vsd_chain_read(const hcsb__vsd_chain_t *c, uint64_t off, void *dst,
                            size_t len) {
  return seg_copy(c->seg, c->nr, off, dst, len, 0);
}

size_t hcsb__vsd_chain_write(const hcsb__vsd_chain_t *c, uint64_t off,
                             const void *src, size_t len) {
  return seg_copy(c->seg + c->nr, c->nw, off, (uint8_t *)src, len, 1);
}

int hcsb__vsd_vring_ready(hcsb__vsd_vring_t *vq, const hcsb__vsd_mem_t *m) {
  uint64_t n = vq->num;
  if (!vq->started || !vq->enabled || vq->broken || !vq->addr_set || n == 0)
    return 0;
  /* Alignment the spec requires, and what single 16-bit accesses need. */
  if ((vq->desc_uva & 15) || (vq->avail_uva & 1) || (vq->used_uva & 3))
    return 0;
  vq->desc = hcsb__vsd_uva(m, vq->desc_uva, 16 * n);
  vq->avail = hcsb__vsd_uva(m, vq->avail_uva, 4 + 2 * n + 2);
  vq->used = hcsb__vsd_uva(m, vq->used_uva, 4 + 8 * n + 2);
  return vq->desc != NULL && vq->avail != NULL && vq->used != NULL;
}

typedef struct {
  uint64_t addr;
  uint32_t len;
  uint16_t flags, next;
} desc_t;

static void read_desc(const uint8_t *table, unsigned i, desc_t *d) {
  const uint8_t *p = table + 16 * (size_t)i;
  d->addr = hcsb__vsd_le64(p);
  d->len = hcsb__vsd_le32(p + 8);
  d->flags = hcsb__vsd_le16(p + 12);
  d->next = hcsb__vsd_le16(p + 14);
}

/* Appends one buffer, split where it crosses from one region into the
 * next (adjacent regions are common above and below 4 GiB). */
static int add_buffer(hcsb__vsd_chain_t *c, const hcsb__vsd_mem_t *m,
                      const desc_t *d) {
  int writable = (d->flags & DESC_F_WRITE) != 0;
  uint64_t addr = d->addr, left = d->len;

  if (!writable && c->nw > 0) return -EINVAL; /* readable after writable */
  while (left > 0) {
    uint64_t take = 0;
    uint8_t *p = NULL;
    for (unsigned i = 0; i < m->n && p == NULL; i++) {
      const hcsb__vsd_region_t *r = &m->r[i];
      if (addr >= r->gpa && addr - r->gpa < r->size) {
        take = r->size - (addr - r->gpa);
        if (take > left) take = left;
        p = r->host + (addr - r->gpa);
      }
    }
    if (p == NULL) return -EINVAL;
    if (c->nr + c->nw == HCSB__VSD_MAX_SEGS) return -EINVAL;
    c->seg[c->nr + c->nw].p = p;
    c->seg[c->nr + c->nw].len = (uint32_t)take;
    if (writable) {
      c->nw++;
      c->wlen += take;
    } else {
      c->nr++;
      c->rlen += take;
    }
    addr += take;
    left -= take;
  }
  return 0;
}

static int walk_indirect(hcsb__vsd_chain_t *c, const hcsb__vsd_mem_t *m,
                         const desc_t *ind) {
  if (ind->len == 0 || ind->len % 16 != 0 ||
      ind->len / 16 > HCSB__VSD_MAX_INDIRECT)
    return -EINVAL;
  unsigned n = ind->len / 16, i = 0;
  const uint8_t *table = hcsb__vsd_gpa(m, ind->addr, ind->len);
  if (table == NULL) return -EINVAL;
  for (unsigned steps = 0;; steps++) {
    desc_t d;
    if (steps == n) return -EINVAL; /* longer than the table: a loop */
    read_desc(table, i, &d);
    if (d.flags & DESC_F_INDIRECT) return -EINVAL;
    int r = add_buffer(c, m, &d);
    if (r != 0) return r;
    if (!(d.flags & DESC_F_NEXT)) return 0;
    if (d.next >= n) return -EINVAL;
    i = d.next;
  }
}

int hcsb__vsd_vring_pop(hcsb__vsd_vring_t *vq, const hcsb__vsd_mem_t *m,
                        hcsb__vsd_chain_t *c) {
  uint16_t avail_idx =
      __atomic_load_n((const uint16_t *)(vq->avail + 2), __ATOMIC_ACQUIRE);
  uint16_t pending = (uint16_t)(avail_idx - vq->last_avail);

  if (pending == 0) return 0;
  if (pending > vq->num) {
    vq->broken = 1;
    return -EIO;
  }
  uint16_t head =
      hcsb__vsd_le16(vq->avail + 4 + 2 * (vq->last_avail % vq->num));
  if (head >= vq->num) {
    vq->broken = 1;
    return -EIO;
  }
  vq->last_avail++;
  memset(c, 0, offsetof(hcsb__vsd_chain_t, seg));
  c->head = head;

  unsigned i = head;
  for (unsigned steps = 0;; steps++) {
    desc_t d;
    if (steps == vq->num) return -EINVAL; /* a loop */
    read_desc(vq->desc, i, &d);
    if (d.flags & DESC_F_INDIRECT) {
      /* The table ends the chain, after any direct buffers: no NEXT. */
      if (!vq->indirect || (d.flags & DESC_F_NEXT)) return -EINVAL;
      return walk_indirect(c, m, &d) == 0 ? 1 : -EINVAL;
    }
    if (add_buffer(c, m, &d) != 0) return -EINVAL;
    if (!(d.flags & DESC_F_NEXT)) return 1;
    if (d.next >= vq->num) return -EINVAL;
    i = d.next;
  }
}

void hcsb__vsd_vring_push(hcsb__vsd_vring_t *vq, uint16_t head, uint32_t len) {
  uint8_t *e = vq->used + 4 + 8 * (size_t)(vq->used_idx % vq->num);
  hcsb__vsd_put32(e, head);
  hcsb__vsd_put32(e + 4, len);
  vq->used_idx++;
  __atomic_store_n((uint16_t *)(vq->used + 2), vq->used_idx, __ATOMIC_RELEASE);
}

/* The driver's used_event and our avail_event (EVENT_IDX). */
static uint16_t *used_event(const hcsb__vsd_vring_t *vq) {
  return (uint16_t *)(vq->avail + 4 + 2 * (size_t)vq->num);
}

static uint16_t *avail_event(const hcsb__vsd_vring_t *vq) {
  return (uint16_t *)(vq->used + 4 + 8 * (size_t)vq->num);
}

int hcsb__vsd_vring_want_signal(const hcsb__vsd_vring_t *vq, uint16_t old) {
  /* The used index must be visible before the driver's wish is read, or a
   * driver that just asked for interrupts again could miss this batch. */
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (vq->event_idx) {
    uint16_t ev = __atomic_load_n(used_event(vq), __ATOMIC_RELAXED);
    /* Did the used index step over used_event in this batch? */
    return (uint16_t)(vq->used_idx - ev - 1) < (uint16_t)(vq->used_idx - old);
  }
  uint16_t flags =
      __atomic_load_n((const uint16_t *)vq->avail, __ATOMIC_RELAXED);
  return !(flags & AVAIL_F_NO_INTERRUPT);
}

int hcsb__vsd_vring_notify(hcsb__vsd_vring_t *vq, int on) {
  if (vq->event_idx) {
    if (!on) return 0;
    __atomic_store_n(avail_event(vq), vq->last_avail, __ATOMIC_RELAXED);
  } else {
    __atomic_store_n((uint16_t *)vq->used, on ? 0 : USED_F_NO_NOTIFY,
                     __ATOMIC_RELAXED);
    if (!on) return 0;
  }
  /* Our store must be visible before the avail index is read again: the
   * driver reads it after publishing, so one of us sees the other. */
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  uint16_t avail_idx =
      __atomic_load_n((const uint16_t *)(vq->avail + 2), __ATOMIC_ACQUIRE);
  return avail_idx != vq->last_avail;
}
