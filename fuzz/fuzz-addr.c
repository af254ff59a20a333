/* Fuzz target: the address parser and formatter.
 *
 * The input (up to its first NUL) is an address string.  When
 * hcsb_addr_parse accepts it, hcsb_addr_format must print it back and the
 * printed form must parse to the same address and print identically again.
 * Formatting into every shorter buffer must behave like snprintf: same
 * return value, a NUL-terminated prefix of the full text. */
#include <errno.h>
#include <string.h>

#include <hcsbridge/messages.h>

#include "fuzz.h"

static void check_same(const hcsb_addr_t *a, const hcsb_addr_t *b) {
  FUZZ_CHECK(a->transport == b->transport);
  FUZZ_CHECK(a->listen == b->listen);
  FUZZ_CHECK(a->cid == b->cid);
  FUZZ_CHECK(a->port == b->port);
  FUZZ_CHECK(a->has_peer_cid == b->has_peer_cid);
  if (a->has_peer_cid) FUZZ_CHECK(a->peer_cid == b->peer_cid);
  FUZZ_CHECK(a->fd == b->fd);
  FUZZ_CHECK(a->timeout_ms == b->timeout_ms);
  FUZZ_CHECK(strcmp(a->path, b->path) == 0);
  FUZZ_CHECK(strcmp(a->stdio_dir, b->stdio_dir) == 0);
  FUZZ_CHECK(strcmp(a->command, b->command) == 0);
}

/* Every field a parsed address holds must be terminated and in range. */
static void check_sane(const hcsb_addr_t *a) {
  FUZZ_CHECK(memchr(a->path, '\0', sizeof(a->path)) != NULL);
  FUZZ_CHECK(memchr(a->stdio_dir, '\0', sizeof(a->stdio_dir)) != NULL);
  FUZZ_CHECK(memchr(a->command, '\0', sizeof(a->command)) != NULL);
  FUZZ_CHECK(a->transport >= HCSB_TRANSPORT_VSOCK &&
             a->transport <= HCSB_TRANSPORT_SPAWN);
  FUZZ_CHECK(a->listen == 0 || a->listen == 1);
  if (a->transport == HCSB_TRANSPORT_FD) FUZZ_CHECK(a->fd >= 0);
  if (a->transport == HCSB_TRANSPORT_UNIX ||
      a->transport == HCSB_TRANSPORT_HVSOCK_HYBRID)
    FUZZ_CHECK(a->path[0] != '\0');
  if (a->transport == HCSB_TRANSPORT_SPAWN) FUZZ_CHECK(a->command[0] != '\0');
  if (a->has_peer_cid) FUZZ_CHECK(a->peer_cid != HCSB_VSOCK_CID_ANY);
}

/* Formats into a buffer of exactly `len` bytes (ASan sees a byte more):
 * snprintf semantics say the full length comes back and the buffer holds a
 * NUL-terminated prefix of the text. */
static void check_prefix(const hcsb_addr_t *a, const char *full, int n,
                         size_t len) {
  char *buf = malloc(len);

  FUZZ_CHECK(buf != NULL);
  FUZZ_CHECK(hcsb_addr_format(a, buf, len) == n);
  FUZZ_CHECK(buf[len - 1] == '\0');
  FUZZ_CHECK(memcmp(buf, full, len - 1) == 0);
  free(buf);
}

/* Every shorter length for short texts; about 64 of them for long ones. */
static void check_truncation(const hcsb_addr_t *a, const char *full, int n) {
  size_t len, step = (size_t)n / 64 + 1;

  FUZZ_CHECK(hcsb_addr_format(a, NULL, 0) == n);
  for (len = 1; len <= (size_t)n; len += step) check_prefix(a, full, n, len);
  check_prefix(a, full, n, (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hcsb_addr_t a, b;
  char *s, *text, *again;
  int r, n;

  s = malloc(size + 1);
  FUZZ_CHECK(s != NULL);
  memcpy(s, data, size);
  s[size] = '\0';

  r = hcsb_addr_parse(s, &a);
  FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENAMETOOLONG);
  if (r != 0) {
    free(s);
    return 0;
  }
  check_sane(&a);

  n = hcsb_addr_format(&a, NULL, 0);
  FUZZ_CHECK(n > 0); /* what parsed must print */
  text = malloc((size_t)n + 1);
  again = malloc((size_t)n + 1);
  FUZZ_CHECK(text != NULL && again != NULL);
  FUZZ_CHECK(hcsb_addr_format(&a, text, (size_t)n + 1) == n);
  FUZZ_CHECK(strlen(text) == (size_t)n);

  memset(&b, 0xA5, sizeof(b));
  FUZZ_CHECK(hcsb_addr_parse(text, &b) == 0);
  check_same(&a, &b);
  FUZZ_CHECK(hcsb_addr_format(&b, again, (size_t)n + 1) == n);
  FUZZ_CHECK(strcmp(text, again) == 0);

  check_truncation(&a, text, n);

  free(again);
  free(text);
  free(s);
  return 0;
}
