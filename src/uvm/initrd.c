/* The per-run initrd (uvm-int.h): the image's initrd copied, then one
 * uncompressed newc archive appended with /etc/uvm/guest-cmd and the
 * extra files.  The kernel unpacks the concatenated archives in turn, so
 * these replace what the image holds under the same names
 * (CONTRACTS.md A).  Runs on libuv's thread pool: plain blocking I/O. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "uvm/cpio.h"
#include "uvm/uvm-int.h"

#define CHUNK (1u << 16)

typedef struct out_s {
  int fd;
  uint64_t off; /* bytes written */
  uint32_t ino; /* next inode number for the archive */
  hcsb__initrd_job_t *job;
} out_t;

static int fail(out_t *o, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(out_t *o, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(o->job->why, sizeof o->job->why, fmt, ap);
  va_end(ap);
  return rc;
}

static int put(out_t *o, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(o->fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0)
      return fail(o, -errno, "write %s: %s", o->job->out, strerror(errno));
    c += w;
    n -= (size_t)w;
    o->off += (uint64_t)w;
  }
  return 0;
}

static int put_zeros(out_t *o, size_t n) {
  static const char zeros[4] = {0};
  return n > 0 ? put(o, zeros, n) : 0;
}

/* The image's initrd, by reflink when the file system can, else copied
 * in the kernel, else by hand. */
static int copy_base(out_t *o, const char *src) {
  int in = open(src, O_RDONLY | O_CLOEXEC);
  char *buf = NULL;
  int rc = 0;

  if (in < 0) return fail(o, -errno, "open %s: %s", src, strerror(errno));
  if (ioctl(o->fd, FICLONE, in) == 0) {
    off_t end = lseek(o->fd, 0, SEEK_END);
    close(in);
    if (end < 0) return fail(o, -errno, "lseek: %s", strerror(errno));
    o->off = (uint64_t)end;
    return 0;
  }
  for (;;) {
    ssize_t n = copy_file_range(in, NULL, o->fd, NULL, 1u << 30, 0);
    if (n > 0) {
      o->off += (uint64_t)n;
      continue;
    }
    if (n == 0) goto done;
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
        errno != EOPNOTSUPP) {
      rc = fail(o, -errno, "copy %s: %s", src, strerror(errno));
      goto done;
    }
    break; /* not offered here: by hand from where it stopped */
  }
  buf = malloc(CHUNK);
  if (buf == NULL) {
    rc = fail(o, -ENOMEM, "out of memory");
    goto done;
  }
  for (;;) {
    ssize_t n = read(in, buf, CHUNK);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = fail(o, -errno, "read %s: %s", src, strerror(errno));
      break;
    }
    if (n == 0) break;
    if ((rc = put(o, buf, (size_t)n)) != 0) break;
  }
done:
  free(buf);
  close(in);
  return rc;
}

static int entry(out_t *o, const char *name, uint32_t mode, uint64_t size) {
  char hdr[128 + HCSB__CPIO_MAX_NAME];
  size_t n = hcsb__cpio_entry(hdr, sizeof hdr, name, mode, size, o->ino++, 0);
  if (n == 0) return fail(o, -EINVAL, "cannot archive %s", name);
  return put(o, hdr, n);
}

/* The parent directories of `dest` (0755; /tmp keeps its sticky 1777,
 * since a later archive's directory entry sets the mode). */
static int parents(out_t *o, const char *dest) {
  char path[HCSB__CPIO_MAX_NAME + 1];
  snprintf(path, sizeof path, "%s", dest + 1);
  for (char *s = strchr(path, '/'); s != NULL; s = strchr(s + 1, '/')) {
    int rc;
    *s = '\0';
    rc = entry(o, path, strcmp(path, "tmp") == 0 ? 041777 : 040755, 0);
    *s = '/';
    if (rc != 0) return rc;
  }
  return 0;
}

static int add_bytes(out_t *o, const char *dest, uint32_t mode,
                     const char *text, size_t len) {
  int rc = parents(o, dest);
  if (rc == 0) rc = entry(o, dest + 1, mode, len);
  if (rc == 0) rc = put(o, text, len);
  if (rc == 0) rc = put_zeros(o, hcsb__cpio_pad(len));
  return rc;
}

static int add_file(out_t *o, const hcsb__uvm_file_t *f) {
  int in = open(f->src, O_RDONLY | O_CLOEXEC), rc;
  uint64_t left = f->size;
  char *buf;

  if (in < 0) return fail(o, -errno, "open %s: %s", f->src, strerror(errno));
  buf = malloc(CHUNK);
  rc = buf != NULL ? parents(o, f->dest) : fail(o, -ENOMEM, "out of memory");
  /* The size stated up front is what goes in: a file that changed since
   * the start is cut or padded, never read without bound. */
  if (rc == 0) rc = entry(o, f->dest + 1, f->mode, f->size);
  while (rc == 0 && left > 0) {
    ssize_t n = read(in, buf, left < CHUNK ? (size_t)left : CHUNK);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = fail(o, -errno, "read %s: %s", f->src, strerror(errno));
      break;
    }
    if (n == 0) {
      memset(buf, 0, CHUNK);
      n = left < CHUNK ? (ssize_t)left : CHUNK;
    }
    rc = put(o, buf, (size_t)n);
    left -= (uint64_t)n;
  }
  if (rc == 0) rc = put_zeros(o, hcsb__cpio_pad(f->size));
  free(buf);
  close(in);
  return rc;
}

void hcsb__initrd_build(hcsb__initrd_job_t *job) {
  const hcsb__uvm_cfg_t *c = job->cfg;
  out_t o = {-1, 0, 0x48430001u, job};
  char trailer[128];
  size_t n;
  int rc;

  o.fd = open(job->out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (o.fd < 0) {
    job->status = fail(&o, -errno, "create %s: %s", job->out, strerror(errno));
    return;
  }
  rc = copy_base(&o, c->initrd);
  /* The next archive starts on a 4-byte boundary; the unpacker skips the
   * zeros between archives. */
  if (rc == 0) rc = put_zeros(&o, hcsb__cpio_pad(o.off));
  if (rc == 0 && c->guest_cmd != NULL) {
    size_t len = strlen(c->guest_cmd);
    char *text = malloc(len + 2);
    if (text == NULL) {
      rc = fail(&o, -ENOMEM, "out of memory");
    } else {
      memcpy(text, c->guest_cmd, len);
      text[len] = '\n';
      rc = add_bytes(&o, "/etc/uvm/guest-cmd", 0100644, text, len + 1);
      free(text);
    }
  }
  for (size_t i = 0; rc == 0 && i < c->nfiles; i++)
    rc = add_file(&o, &c->files[i]);
  if (rc == 0) {
    n = hcsb__cpio_trailer(trailer, sizeof trailer);
    rc = put(&o, trailer, n);
  }
  if (close(o.fd) != 0 && rc == 0)
    rc = fail(&o, -errno, "close %s: %s", job->out, strerror(errno));
  job->status = rc;
}
