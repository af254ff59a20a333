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

/* Where each of the 16 bytes' two digits start in the text. */
static const uint8_t digit_pos[16] = {0,  2,  4,  6,  9,  11, 14, 16,
                                      19, 21, 24, 26, 28, 30, 32, 34};

int hcsb__guid_parse(const char *s, uint8_t out[16]) {
  uint8_t b[16];
  size_t i;

  if (s == NULL) return -EINVAL;
  /* In text order, stopping at the first wrong byte: a short string ends
   * in a NUL, which is neither a digit nor a dash, so nothing past it is
   * read. */
  for (i = 0; i < 16; i++) {
    const unsigned char *p = (const unsigned char *)s + digit_pos[i];
    int hi, lo;

    if ((i == 4 || i == 6 || i == 8 || i == 10) && p[-1] != '-') return -EINVAL;
    hi = hcsb__hex_value[p[0]];
    if (hi < 0) return -EINVAL;
    lo = hcsb__hex_value[p[1]];
    if (lo < 0) return -EINVAL;
    b[i] = (uint8_t)(hi << 4 | lo);
  }
  if (s[36] != '\0') return -EINVAL;
  memcpy(out, b, 16);
  return 0;
}

void hcsb__guid_format(const uint8_t b[16], char out[36]) {
  static const char digits[] = "0123456789abcdef";
  size_t i;

  for (i = 0; i < 16; i++) {
    char *p = out + digit_pos[i];
    p[0] = digits[b[i] >> 4];
    p[1] = digits[b[i] & 15];
  }
  out[8] = out[13] = out[18] = out[23] = '-';
}

void hcsb__guid_generate(char out[37]) {
  uuid_t u;

  uuid_generate_random(u);
  uuid_unparse_lower(u, out);
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
