/* Fuzz target: the QMP decoder (src/uvm/qmp.c).
 *
 * Input: the first byte picks a chunk size (1..256); the rest is what QEMU
 * "sends", fed in chunks of that size.  Invariants: every call consumes
 * no more than it was given, a message comes with a kind and the fields
 * that kind promises, an error is sticky, and the same bytes fed whole
 * decode to the same messages.  Leaks show under ASan/valgrind. */
#include <errno.h>
#include <string.h>

#include "uvm/qmp.h"

#include "fuzz.h"

#define MAX_MSG 4096 /* small, so the size bound is reached too */

/* Decodes `data` in chunks of `chunk`; returns the number of messages and
 * a checksum of their kinds and ids in *sum; *err is the final error. */
static size_t decode(const uint8_t *data, size_t size, size_t chunk,
                     uint64_t *sum, int *err) {
  hcsb__qmp_dec_t d;
  size_t off = 0, n = 0;

  FUZZ_CHECK(hcsb__qmp_dec_init(&d, MAX_MSG) == 0);
  *sum = 0;
  *err = 0;
  while (off < size && *err == 0) {
    size_t len = size - off < chunk ? size - off : chunk, used;
    const char *p = (const char *)data + off;
    while (len > 0) {
      hcsb__qmp_msg_t m;
      int rc = hcsb__qmp_dec_feed(&d, p, len, &used, &m);
      if (rc < 0) {
        FUZZ_CHECK(rc == -EPROTO || rc == -EMSGSIZE || rc == -ENOMEM);
        FUZZ_CHECK(m.root == NULL);
        FUZZ_CHECK(hcsb__qmp_dec_feed(&d, p, len, &used, &m) == rc);
        *err = rc;
        break;
      }
      FUZZ_CHECK(used <= len);
      if (rc == 0) {
        FUZZ_CHECK(used == len);
        break;
      }
      FUZZ_CHECK(m.root != NULL);
      switch (m.kind) {
        case HCSB__QMP_GREETING:
          FUZZ_CHECK(m.value != NULL);
          break;
        case HCSB__QMP_RETURN:
          break;
        case HCSB__QMP_ERROR:
          FUZZ_CHECK(m.error_class != NULL && m.error_desc != NULL);
          break;
        case HCSB__QMP_EVENT:
          FUZZ_CHECK(m.event != NULL);
          break;
        default:
          FUZZ_CHECK(0);
      }
      *sum = *sum * 31 + (uint64_t)m.kind * 7 + (m.has_id ? m.id + 1 : 0);
      n++;
      hcsb__qmp_msg_release(&m);
      p += used;
      len -= used;
      off += used;
    }
    if (*err == 0) off += len;
  }
  hcsb__qmp_dec_free(&d);
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint64_t s1, s2;
  int e1, e2;
  size_t n1, n2;

  if (size == 0) return 0;
  n1 = decode(data + 1, size - 1, (size_t)data[0] + 1, &s1, &e1);
  n2 = decode(data + 1, size - 1, size, &s2, &e2);
  /* Chunking changes nothing but where an over-long message is noticed,
   * which is always an error either way. */
  FUZZ_CHECK((e1 == 0) == (e2 == 0));
  if (e1 == 0) {
    FUZZ_CHECK(n1 == n2);
    FUZZ_CHECK(s1 == s2);
  }
  return 0;
}
