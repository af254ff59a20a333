/* The one intrusive list of the tree: circular, doubly linked, a head that
 * is itself a link.  Internal; no libuv.
 *
 * A removed link points at itself, so removing twice is harmless and
 * hcsb__list_linked() tells whether a link is on some list.
 */
#ifndef HCSB_CORE_LIST_H
#define HCSB_CORE_LIST_H

#include <stddef.h>

typedef struct hcsb__link_s {
  struct hcsb__link_s *next, *prev;
} hcsb__link_t;

#define HCSB__CONTAINER_OF(p, type, member) \
  ((type *)(void *)((char *)(p)-offsetof(type, member)))

static inline void hcsb__list_init(hcsb__link_t *h) {
  h->next = h->prev = h;
}
static inline int hcsb__list_empty(const hcsb__link_t *h) {
  return h->next == h;
}
/* On a list (or a non-empty head). */
static inline int hcsb__list_linked(const hcsb__link_t *n) {
  return n->next != n;
}
/* Appends `n` at the tail of `h`. */
static inline void hcsb__list_push(hcsb__link_t *h, hcsb__link_t *n) {
  n->prev = h->prev;
  n->next = h;
  h->prev->next = n;
  h->prev = n;
}
static inline void hcsb__list_remove(hcsb__link_t *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->next = n->prev = n;
}
/* Moves every link of `from` to the tail of `to`; `from` ends up empty. */
static inline void hcsb__list_splice(hcsb__link_t *to, hcsb__link_t *from) {
  if (hcsb__list_empty(from)) return;
  from->next->prev = to->prev;
  from->prev->next = to;
  to->prev->next = from->next;
  to->prev = from->prev;
  hcsb__list_init(from);
}

#endif /* HCSB_CORE_LIST_H */
