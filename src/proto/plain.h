/* Finding the end of a run of "plain" string bytes, eight at a time.
 * Internal to the protocol core and the API's JSON scanner.
 *
 * A plain byte is one a JSON string carries as it is, in both directions:
 * printable ASCII (0x20-0x7F) other than '"' and '\\'.  Writers copy runs
 * of them and escape the rest; readers skip them and look closely only at
 * quotes, backslashes, control bytes and UTF-8.  GUIDs, container IDs,
 * queries and most answers are nearly all plain, so the eight-bytes-at-a-
 * time test decides most of a string in a few instructions per word. */
#ifndef HCSB_PROTO_PLAIN_H
#define HCSB_PROTO_PLAIN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HCSB__ONES 0x0101010101010101ull
#define HCSB__HIGHS 0x8080808080808080ull

/* Nonzero when any of the 8 bytes of `w` is not plain.  Each term is
 * exact for "some byte": (x - 0x01..) & ~x & 0x80.. is nonzero iff some
 * byte of x is zero (a borrow can only start at a zero byte), and with
 * 0x20.. instead of 0x01.. iff some byte is below 0x20 (for bytes below
 * 0x80; bytes at or above 0x80 are caught by `w` itself). */
static inline uint64_t hcsb__word_special(uint64_t w) {
  uint64_t q = w ^ (HCSB__ONES * '"'), bs = w ^ (HCSB__ONES * '\\');
  uint64_t ctl = (w - HCSB__ONES * 0x20) & ~w;
  q = (q - HCSB__ONES) & ~q;
  bs = (bs - HCSB__ONES) & ~bs;
  return (w | ctl | q | bs) & HCSB__HIGHS;
}

static inline int hcsb__is_plain(unsigned char c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Little-endian machines can tell which byte of a word is the first
 * special one; elsewhere words only say "all plain" and bytes do the rest. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HCSB__PLAIN_LE 1
#else
#define HCSB__PLAIN_LE 0
#endif

/* How many leading bytes of a word whose hcsb__word_special() is `m` (not
 * 0) are plain.  On a little-endian machine the lowest flagged byte is the
 * first special one (borrows run towards higher bytes, so only flags above
 * it can be spurious); otherwise 0, which is never too many. */
static inline size_t hcsb__plain_prefix(uint64_t m) {
#if HCSB__PLAIN_LE
  return (size_t)__builtin_ctzll(m) / 8;
#else
  (void)m;
  return 0;
#endif
}

/* Sixteen bytes at a time where SSE2 is (every x86-64): one compare per
 * kind of special byte and no spurious flags.  A signed compare with 0x20
 * catches controls and, as negative numbers, every byte from 0x80 up. */
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#include <emmintrin.h>
#define HCSB__PLAIN_SSE2 1

/* A bit per byte of `x` that is not plain. */
static inline unsigned hcsb__special16(__m128i x) {
  __m128i q = _mm_cmpeq_epi8(x, _mm_set1_epi8('"'));
  __m128i bs = _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'));
  __m128i ctl = _mm_cmplt_epi8(x, _mm_set1_epi8(0x20));
  return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, bs), ctl));
}
#else
#define HCSB__PLAIN_SSE2 0
#endif

/* The number of plain bytes at the start of [p, end). */
static inline size_t hcsb__plain_run(const unsigned char *p,
                                     const unsigned char *end) {
  const unsigned char *s = p;
  uint64_t w, m;

#if HCSB__PLAIN_SSE2
  while (end - p >= 16) {
    unsigned m16 =
        hcsb__special16(_mm_loadu_si128((const __m128i *)(const void *)p));
    if (m16 != 0) return (size_t)(p - s) + (size_t)__builtin_ctz(m16);
    p += 16;
  }
#endif
  while (end - p >= 8) {
    memcpy(&w, p, 8);
    m = hcsb__word_special(w);
    if (m != 0) {
      if (HCSB__PLAIN_LE) return (size_t)(p - s) + hcsb__plain_prefix(m);
      break;
    }
    p += 8;
  }
  while (p < end && hcsb__is_plain(*p)) p++;
  return (size_t)(p - s);
}

#endif /* HCSB_PROTO_PLAIN_H */
