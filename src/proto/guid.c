/* GUID strings and the vsock <-> hvsocket service ID mapping. */
#include <stdio.h>
#include <string.h>

#include <uuid/uuid.h>

#include "proto/proto.h"

/* clang-format off */
const signed char hcsb__hex_value[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1, -1, -1, -1, -1, -1,
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};
/* clang-format on */

int hcsb__guid_valid(const char *s) {
  size_t i;

  if (s == NULL) return 0;
  for (i = 0; i < 36; i++) {
    unsigned char c = (unsigned char)s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return 0;
    } else if (hcsb__hex_value[c] < 0) {
      return 0;
    }
  }
  return s[36] == '\0';
}

/* Both hex digits of every byte value, lower case: "000102...feff". */
#define PAIRS16(h)                                                          \
  h "0" h "1" h "2" h "3" h "4" h "5" h "6" h "7" h "8" h "9" h "a" h "b" h \
    "c" h "d" h "e" h "f"
static const char hex_pairs[] = PAIRS16("0") PAIRS16("1") PAIRS16("2")
    PAIRS16("3") PAIRS16("4") PAIRS16("5") PAIRS16("6") PAIRS16("7")
        PAIRS16("8") PAIRS16("9") PAIRS16("a") PAIRS16("b") PAIRS16("c")
            PAIRS16("d") PAIRS16("e") PAIRS16("f");
_Static_assert(sizeof(hex_pairs) == 513, "two digits per byte value");

/* Byte i's two digits start at text position POS(i): 8-4-4-4-12. */
#define POS(i) (2 * (i) + ((i) >= 4) + ((i) >= 6) + ((i) >= 8) + ((i) >= 10))

int hcsb__guid_parse(const char *s, uint8_t out[16]) {
  const unsigned char *u = (const unsigned char *)s;
  uint8_t b[16];
  int hi, lo;

  if (s == NULL) return -EINVAL;
    /* In text order, stopping at the first wrong byte: a short string ends
     * in a NUL, which is neither a digit nor a dash, so nothing past it is
     * read. */
#define BYTE(i)                                  \
  if ((hi = hcsb__hex_value[u[POS(i)]]) < 0 ||   \
      (lo = hcsb__hex_value[u[POS(i) + 1]]) < 0) \
    return -EINVAL;                              \
  b[i] = (uint8_t)(hi << 4 | lo)
#define DASH(i) \
  if (u[POS(i) - 1] != '-') return -EINVAL
  BYTE(0);
  BYTE(1);
  BYTE(2);
  BYTE(3);
  DASH(4);
  BYTE(4);
  BYTE(5);
  DASH(6);
  BYTE(6);
  BYTE(7);
  DASH(8);
  BYTE(8);
  BYTE(9);
  DASH(10);
  BYTE(10);
  BYTE(11);
  BYTE(12);
  BYTE(13);
  BYTE(14);
  BYTE(15);
#undef BYTE
#undef DASH
  if (s[36] != '\0') return -EINVAL;
  memcpy(out, b, 16);
  return 0;
}

void hcsb__guid_format(const uint8_t b[16], char out[36]) {
#define PAIR(i) memcpy(out + POS(i), hex_pairs + 2 * b[i], 2)
  PAIR(0);
  PAIR(1);
  PAIR(2);
  PAIR(3);
  PAIR(4);
  PAIR(5);
  PAIR(6);
  PAIR(7);
  PAIR(8);
  PAIR(9);
  PAIR(10);
  PAIR(11);
  PAIR(12);
  PAIR(13);
  PAIR(14);
  PAIR(15);
#undef PAIR
  out[8] = out[13] = out[18] = out[23] = '-';
}

void hcsb__guid_generate(char out[37]) {
  uuid_t u;

  uuid_generate_random(u);
  uuid_unparse_lower(u, out);
}

/* splitmix64: each output a bijective mix of a counter, so a stream never
 * repeats before 2^64 outputs. */
static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void hcsb__guid_rng_bytes(hcsb__guid_rng_t *r, uint8_t out[16]) {
  uint64_t a, b;

  if (!r->seeded) {
    uuid_t u;
    uuid_generate_random(u);
    memcpy(&r->s[0], u, 8);
    memcpy(&r->s[1], u + 8, 8);
    r->seeded = 1;
  }
  a = splitmix64(&r->s[0]);
  b = splitmix64(&r->s[1]);
  memcpy(out, &a, 8);
  memcpy(out + 8, &b, 8);
  out[6] = (uint8_t)((out[6] & 0x0F) | 0x40); /* version 4 */
  out[8] = (uint8_t)((out[8] & 0x3F) | 0x80); /* RFC 4122 variant */
}

void hcsb__guid_generate_bytes(uint8_t out[16]) {
  uuid_t u;

  uuid_generate_random(u);
  memcpy(out, u, 16);
}

/* Bytes 4..15 of the vsock service template in string (big-endian) order:
 * "xxxxxxxx-facb-11e6-bd58-64006a7986d3". */
static const uint8_t template_tail[12] = {0xfa, 0xcb, 0x11, 0xe6, 0xbd, 0x58,
                                          0x64, 0x00, 0x6a, 0x79, 0x86, 0xd3};

void hcsb_hvsock_service_id(uint32_t port, char out[37]) {
  snprintf(out, 37, "%08x-facb-11e6-bd58-64006a7986d3", (unsigned)port);
}

void hcsb_hvsock_service_id_bytes(uint32_t port, uint8_t out[16]) {
  /* Windows GUID layout: Data1 (u32), Data2 and Data3 (u16) little-endian,
   * Data4 as-is. */
  out[0] = (uint8_t)port;
  out[1] = (uint8_t)(port >> 8);
  out[2] = (uint8_t)(port >> 16);
  out[3] = (uint8_t)(port >> 24);
  out[4] = template_tail[1];
  out[5] = template_tail[0];
  out[6] = template_tail[3];
  out[7] = template_tail[2];
  memcpy(out + 8, template_tail + 4, 8);
}

int hcsb_hvsock_port_from_service_id(const char *guid, uint32_t *port) {
  uuid_t u;

  /* libuuid parses either case but tolerates nothing else; check the shape
   * ourselves so the contract does not depend on its version. */
  if (!hcsb__guid_valid(guid) || uuid_parse(guid, u) != 0) return -EINVAL;
  if (memcmp(u + 4, template_tail, sizeof(template_tail)) != 0) return -EINVAL;
  *port = (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 |
          (uint32_t)u[3];
  return 0;
}
