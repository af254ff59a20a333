/* Device-mapper for VPMem layers: dm-linear when a layer is one region of
 * a device (MappingInfo), dm-verity when its blocks are checked against a
 * root hash (VerityInfo), as the v0.11.8 GCS builds them.  The initramfs
 * has no dmsetup, so the ioctls on /dev/mapper/control are issued here
 * (<linux/dm-ioctl.h>): DEV_CREATE, TABLE_LOAD (read-only), DEV_SUSPEND
 * without the suspend flag (= resume, which activates the table), and
 * DEV_REMOVE.  No udev either: the /dev/mapper/<name> node is made with
 * mknod from the device number the kernel returns. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/dm-ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "guest/act.h"

/* ------------------------------------------------------------------------ */
/* Tables and names (pure) */

static int is_hex(const char *s) {
  if (*s == '\0') return 0;
  for (; *s != '\0'; s++)
    if (!isxdigit((unsigned char)*s)) return 0;
  return 1;
}

/* A block-device path fit for a table: absolute, no blanks. */
static int dev_ok(const char *dev) {
  return dev != NULL && dev[0] == '/' && strpbrk(dev, " \t\n") == NULL;
}

int hcsb__gdm_linear_table(char *out, size_t size, const char *dev,
                           uint64_t offset, uint64_t bytes, uint64_t *sectors) {
  int n;

  if (!dev_ok(dev) || bytes == 0 || bytes % 512 != 0 || offset % 512 != 0)
    return -EINVAL;
  *sectors = bytes / 512;
  n = snprintf(out, size, "0 %" PRIu64 " linear %s %" PRIu64, *sectors, dev,
               offset / 512);
  return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}

int hcsb__gdm_verity_params(char *out, size_t size, const char *dev,
                            const hcsb__gverity_t *v, uint64_t *sectors) {
  int64_t blocks, hash_start;
  int n;

  if (!dev_ok(dev) || v->block < 512 || v->block > 65536 ||
      (v->block & (v->block - 1)) != 0 || v->data_bytes <= 0 ||
      v->data_bytes % v->block != 0 || v->version < 0 || v->version > 1 ||
      v->alg == NULL || v->alg[0] == '\0' || strpbrk(v->alg, " \t\n") != NULL ||
      v->root == NULL || !is_hex(v->root) || v->salt == NULL ||
      (v->salt[0] != '\0' && !is_hex(v->salt)))
    return -EINVAL;
  blocks = v->data_bytes / v->block;
  hash_start = blocks + (v->superblock ? 1 : 0);
  *sectors = (uint64_t)v->data_bytes / 512;
  /* An empty salt is "-" to the kernel (the GCS passes it through, which
   * leaves the table one argument short). */
  n = snprintf(out, size,
               "%" PRId64 " %s %s %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
               " %s %s %s",
               v->version, dev, dev, v->block, v->block, blocks, hash_start,
               v->alg, v->root, v->salt[0] != '\0' ? v->salt : "-");
  return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}

int hcsb__gdm_linear_name(char *out, size_t size, uint32_t dev, uint64_t offset,
                          uint64_t bytes) {
  int n = snprintf(out, size, "dm-linear-pmem%" PRIu32 "-%" PRIu64 "-%" PRIu64,
                   dev, offset, bytes);
  return n < 0 || (size_t)n >= size || (size_t)n > HCSB__GA_DM_NAME_MAX
             ? -ENAMETOOLONG
             : 0;
}

int hcsb__gdm_verity_name(char *out, size_t size, uint32_t dev,
                          const char *root) {
  int n;

  if (!is_hex(root)) return -EINVAL;
  n = snprintf(out, size, "dm-verity-pmem%" PRIu32 "-%s", dev, root);
  return n < 0 || (size_t)n >= size || (size_t)n > HCSB__GA_DM_NAME_MAX
             ? -ENAMETOOLONG
             : 0;
}

/* ------------------------------------------------------------------------ */
/* ioctls */

/* The header plus room for one target and its parameters. */
#define DM_BUF 8192

typedef union dmbuf_u {
  struct dm_ioctl io;
  char raw[DM_BUF];
} dmbuf_t;

static const char *op_name(unsigned long cmd) {
  switch (cmd) {
    case DM_VERSION:
      return "version";
    case DM_DEV_CREATE:
      return "device create";
    case DM_DEV_REMOVE:
      return "device remove";
    case DM_DEV_SUSPEND:
      return "device suspend";
    case DM_TABLE_LOAD:
      return "table load";
    default:
      return "ioctl";
  }
}

static void init_io(dmbuf_t *b, const char *name) {
  memset(b, 0, sizeof b->io);
  b->io.version[0] = DM_VERSION_MAJOR;
  b->io.version[1] = 0;
  b->io.version[2] = 0;
  b->io.data_size = sizeof *b;
  b->io.data_start = sizeof b->io;
  if (name != NULL) snprintf(b->io.name, sizeof b->io.name, "%s", name);
}

static int dm_ioctl(int fd, unsigned long cmd, dmbuf_t *b, char *err,
                    size_t esize) {
  int r;

  do r = ioctl(fd, cmd, b);
  while (r < 0 && errno == EINTR);
  if (r == 0) return 0;
  r = -errno;
  if (err != NULL) {
    char eb[128];
    snprintf(err, esize, "device-mapper %s: %s", op_name(cmd),
             hcsb__ga_errstr(-r, eb));
  }
  return r;
}

static int open_control(char *err, size_t esize) {
  dmbuf_t b;
  int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC), r;

  if (fd < 0) {
    r = -errno;
    if (err != NULL)
      snprintf(err, esize, "open /dev/mapper/control: %s",
               hcsb__ga_errstr(-r, (char[128]){0}));
    return r;
  }
  init_io(&b, NULL);
  r = dm_ioctl(fd, DM_VERSION, &b, err, esize);
  if (r < 0) {
    close(fd);
    return r;
  }
  return fd;
}

static int remove_dev(int fd, const char *name) {
  dmbuf_t b;

  init_io(&b, name);
  return dm_ioctl(fd, DM_DEV_REMOVE, &b, NULL, 0);
}

int hcsb__gdm_create(const char *name, const char *type, uint64_t sectors,
                     const char *params, char *path, size_t path_size,
                     char *err, size_t err_size) {
  struct dm_target_spec *t;
  size_t plen = strlen(params), need;
  dmbuf_t *b;
  uint64_t dev;
  int fd, r;

  if (strlen(name) > HCSB__GA_DM_NAME_MAX || strchr(name, '/') != NULL ||
      strlen(type) >= sizeof t->target_type)
    return -EINVAL;
  need = sizeof b->io + sizeof *t + plen + 1;
  if (need > sizeof *b) return -E2BIG;
  if ((size_t)snprintf(path, path_size, "/dev/mapper/%s", name) >= path_size)
    return -ENAMETOOLONG;
  b = calloc(1, sizeof *b);
  if (b == NULL) return -ENOMEM;
  fd = open_control(err, err_size);
  if (fd < 0) {
    free(b);
    return fd;
  }

  init_io(b, name);
  r = dm_ioctl(fd, DM_DEV_CREATE, b, err, err_size);
  if (r < 0) goto out;
  dev = b->io.dev;

  init_io(b, name);
  b->io.flags = DM_READONLY_FLAG;
  b->io.target_count = 1;
  t = (struct dm_target_spec *)(b->raw + sizeof b->io);
  t->sector_start = 0;
  t->length = sectors;
  t->status = 0;
  t->next = 0;
  snprintf(t->target_type, sizeof t->target_type, "%s", type);
  memcpy((char *)(t + 1), params, plen + 1);
  r = dm_ioctl(fd, DM_TABLE_LOAD, b, err, err_size);
  if (r == 0) {
    /* Without DM_SUSPEND_FLAG this resumes: the loaded table goes live. */
    init_io(b, name);
    r = dm_ioctl(fd, DM_DEV_SUSPEND, b, err, err_size);
  }
  if (r == 0) {
    unlink(path);
    if (mknod(path, S_IFBLK | 0600,
              makedev((unsigned)((dev >> 8) & 0xfff),
                      (unsigned)((dev & 0xff) | ((dev >> 12) & 0xfff00)))) <
        0) {
      r = -errno;
      snprintf(err, err_size, "mknod %s: %s", path,
               hcsb__ga_errstr(-r, (char[128]){0}));
    }
  }
  if (r < 0) {
    unlink(path);
    remove_dev(fd, name);
  }
out:
  close(fd);
  free(b);
  return r;
}

int hcsb__gdm_remove(const char *name) {
  struct timespec pause = {0, 10 * 1000 * 1000};
  char path[160];
  int fd, r = 0, i;

  snprintf(path, sizeof path, "/dev/mapper/%s", name);
  fd = open_control(NULL, 0);
  if (fd < 0) return fd;
  unlink(path);
  /* Busy for a moment after an unmount, as the GCS found too. */
  for (i = 0; i < 10; i++) {
    r = remove_dev(fd, name);
    if (r != -EBUSY) break;
    nanosleep(&pause, NULL);
  }
  close(fd);
  return r;
}
