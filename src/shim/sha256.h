/* SHA-256 (FIPS 180-4), for the shim's socket names: containerd's shims
 * name their socket after the SHA-256 of address/namespace/id, and so does
 * this one, so a container of a pod can find its sandbox's shim. */
#ifndef HCSB_SHIM_SHA256_H
#define HCSB_SHIM_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct hcsb__sha256_s {
  uint32_t h[8];
  uint64_t len; /* bytes hashed so far */
  uint8_t buf[64];
  size_t nbuf;
} hcsb__sha256_t;

void hcsb__sha256_init(hcsb__sha256_t *c);
void hcsb__sha256_update(hcsb__sha256_t *c, const void *data, size_t len);
void hcsb__sha256_final(hcsb__sha256_t *c, uint8_t out[32]);
/* The hash of data[0..len) as 64 lower-case hex digits and a NUL. */
void hcsb__sha256_hex(const void *data, size_t len, char out[65]);

#endif /* HCSB_SHIM_SHA256_H */
