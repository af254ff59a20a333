/* newc cpio entries (cpio.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "uvm/cpio.h"

#define HDR 110u

size_t hcsb__cpio_entry_len(const char *name) {
  size_t n = HDR + strlen(name) + 1;
  return n + hcsb__cpio_pad(n);
}

size_t hcsb__cpio_entry(char *out, size_t cap, const char *name, uint32_t mode,
                        uint64_t size, uint32_t ino, uint32_t mtime) {
  size_t nlen = strlen(name), total;
  char hdr[HDR + 1];

  if (nlen == 0 || nlen > HCSB__CPIO_MAX_NAME || size > UINT32_MAX) return 0;
  total = hcsb__cpio_entry_len(name);
  if (cap < total) return 0;
  /* magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
   * devminor, rdevmajor, rdevminor, namesize (with its NUL), check */
  snprintf(hdr, sizeof hdr,
           "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino,
           mode, 0u, 0u, (mode & 0170000) == 0040000 ? 2u : 1u, mtime,
           (uint32_t)size, 0u, 0u, 0u, 0u, (uint32_t)(nlen + 1), 0u);
  memcpy(out, hdr, HDR);
  memcpy(out + HDR, name, nlen);
  memset(out + HDR + nlen, 0, total - HDR - nlen);
  return total;
}

size_t hcsb__cpio_trailer(char *out, size_t cap) {
  return hcsb__cpio_entry(out, cap, "TRAILER!!!", 0, 0, 0, 0);
}

int hcsb__cpio_check_path(const char *path) {
  const char *p, *c;

  if (path == NULL || path[0] != '/' || path[1] == '\0' ||
      strlen(path) > HCSB__CPIO_MAX_NAME)
    return -EINVAL;
  for (p = path + 1;; p = c + 1) {
    size_t n;
    c = strchr(p, '/');
    n = c != NULL ? (size_t)(c - p) : strlen(p);
    if (n == 0 || (n == 1 && p[0] == '.') ||
        (n == 2 && p[0] == '.' && p[1] == '.'))
      return -EINVAL;
    if (c == NULL) return 0;
  }
}
