/* containerd-shim-hcsb-v1 — reading a small file whole.
 *
 * The shim reads several files whole: the bundle's config.json (`start`
 * for its annotations, the task for the spec), its cleanup record
 * (hcsb-state) and its configuration.  Each must stay bounded (the file
 * may be anything a user put there) and must not block (a FIFO in place of
 * the file), so they share one reader instead of four copies of the
 * open/fstat/malloc/read sequence. */
#ifndef HCSB_SHIM_READFILE_H
#define HCSB_SHIM_READFILE_H

#include <stddef.h>

/* Reads the regular file `path` whole into a NUL-terminated buffer: *out
 * (the caller free()s it) and *len (without the NUL).  A file that
 * shrinks while read gives what was there.  Returns 0; the negative errno
 * of open(2) or fstat(2) (-ENOENT: no such file); -EINVAL when it is not a
 * regular file; -EFBIG when it is larger than `max` bytes; -ENOMEM; -EIO
 * when a read fails.  *out is NULL and *len 0 on failure. */
int hcsb__shim_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
