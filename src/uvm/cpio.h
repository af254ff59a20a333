/* newc cpio entries ("070701", what the kernel's initramfs unpacker
 * reads), written into caller buffers.  No I/O.  Internal.
 *
 * An archive is entries (header, name, padding, data, padding) and a
 * TRAILER!!! entry; the header and the name together, and the data, are
 * each padded to 4 bytes.  Names are relative ("etc/uvm/guest-cmd"). */
#ifndef HCSB_UVM_CPIO_H
#define HCSB_UVM_CPIO_H

#include <stddef.h>
#include <stdint.h>

#define HCSB__CPIO_MAX_NAME 4095

/* Writes the header and the padded name of an entry; returns the bytes
 * written (hcsb__cpio_entry_len), or 0 when `cap` is too small, the name
 * is empty or too long, or `size` does not fit the format (4 GiB). */
size_t hcsb__cpio_entry(char *out, size_t cap, const char *name, uint32_t mode,
                        uint64_t size, uint32_t ino, uint32_t mtime);
size_t hcsb__cpio_entry_len(const char *name);
/* Zero bytes that follow `size` bytes of data. */
static inline size_t hcsb__cpio_pad(uint64_t size) {
  return (size_t)((4 - size % 4) % 4);
}
/* The closing entry; bytes written or 0. */
size_t hcsb__cpio_trailer(char *out, size_t cap);

/* Checks a guest path for an archive: absolute, no empty, "." or ".."
 * component, not "/" itself, at most HCSB__CPIO_MAX_NAME bytes.  0 or
 * -EINVAL. */
int hcsb__cpio_check_path(const char *path);

#endif /* HCSB_UVM_CPIO_H */
