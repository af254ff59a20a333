/* Snapshot mounts -> layer directories (the plan), and the cache key. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shim/rootfs.h"

void hcsb__rootfs_plan_free(hcsb__rootfs_plan_t *plan) {
  size_t i;

  for (i = 0; i < plan->nlayers; i++) free(plan->layers[i].dir);
  plan->nlayers = 0;
}

/* Absolute, no "." or ".." component, no empty path. */
static int clean_path(const char *p, size_t len) {
  size_t i = 0;

  if (len == 0 || p[0] != '/') return 0;
  if (len >= HCSB__ROOTFS_PATH_MAX) return 0;
  while (i < len) {
    size_t j = i + 1, n;
    while (j < len && p[j] != '/') j++;
    n = j - i - 1;
    if ((n == 1 && p[i + 1] == '.') ||
        (n == 2 && p[i + 1] == '.' && p[i + 2] == '.'))
      return 0;
    i = j;
  }
  return 1;
}

static int add(hcsb__rootfs_plan_t *plan, const char *dir, size_t len,
               int cacheable, const char **err) {
  char *d;

  if (!clean_path(dir, len)) {
    *err = "a layer path is not a clean absolute path";
    return len >= HCSB__ROOTFS_PATH_MAX ? -ENAMETOOLONG : -EINVAL;
  }
  if (plan->nlayers >= HCSB__ROOTFS_MAX_LAYERS) {
    *err = "more than 64 layers";
    return -E2BIG;
  }
  d = strndup(dir, len);
  if (d == NULL) return -ENOMEM;
  plan->layers[plan->nlayers].dir = d;
  plan->layers[plan->nlayers].cacheable = cacheable;
  plan->nlayers++;
  return 0;
}

static const char *option(const hcsb__mount_t *m, const char *prefix) {
  size_t i, n = strlen(prefix);

  for (i = 0; i < m->noptions; i++)
    if (m->options[i] != NULL && strncmp(m->options[i], prefix, n) == 0)
      return m->options[i] + n;
  return NULL;
}

static int has_flag(const hcsb__mount_t *m, const char *flag) {
  size_t i;

  for (i = 0; i < m->noptions; i++)
    if (m->options[i] != NULL && strcmp(m->options[i], flag) == 0) return 1;
  return 0;
}

/* 1 when the directory has an entry (an active snapshot written into),
 * 0 when empty or absent. */
static int not_empty(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int found = 0;

  if (d == NULL) return 0;
  while (!found && (e = readdir(d)) != NULL)
    found = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return found;
}

static int plan_overlay(const hcsb__mount_t *m, hcsb__rootfs_plan_t *plan,
                        const char **err) {
  const char *lower = option(m, "lowerdir="), *upper = option(m, "upperdir=");
  const char *seg[HCSB__ROOTFS_MAX_LAYERS], *p, *q;
  size_t len[HCSB__ROOTFS_MAX_LAYERS], n;
  int r;

  if (lower == NULL || lower[0] == '\0') {
    *err = "an overlay mount without lowerdir";
    return -EINVAL;
  }
  /* lowerdir lists the top layer first; the plan wants the base first. */
  for (n = 0, p = lower;; p = q + 1) {
    q = strchr(p, ':');
    if (n == HCSB__ROOTFS_MAX_LAYERS) {
      *err = "more than 64 layers";
      return -E2BIG;
    }
    seg[n] = p;
    len[n++] = q != NULL ? (size_t)(q - p) : strlen(p);
    if (q == NULL) break;
  }
  while (n-- > 0) {
    r = add(plan, seg[n], len[n], 1, err);
    if (r != 0) return r;
  }
  if (upper != NULL && upper[0] != '\0' && not_empty(upper))
    return add(plan, upper, strlen(upper), 0, err);
  return 0;
}

int hcsb__rootfs_plan(const hcsb__mount_t *mounts, size_t nmounts,
                      const char *bundle, const char *spec_root,
                      hcsb__rootfs_plan_t *plan, const char **err) {
  const hcsb__mount_t *m = mounts;
  char buf[HCSB__ROOTFS_PATH_MAX + 1];
  int r;

  memset(plan, 0, sizeof(*plan));
  *err = NULL;
  if (nmounts > 1) {
    *err = "more than one rootfs mount";
    return -EINVAL;
  }
  if (nmounts == 0) {
    /* The spec's root.path is the rootfs, relative to the bundle. */
    if (spec_root == NULL || spec_root[0] == '\0') spec_root = "rootfs";
    if (spec_root[0] == '/')
      r = snprintf(buf, sizeof buf, "%s", spec_root);
    else
      r = snprintf(buf, sizeof buf, "%s/%s", bundle != NULL ? bundle : "",
                   spec_root);
    if (r < 0 || (size_t)r >= sizeof buf) {
      *err = "rootfs path too long";
      return -ENAMETOOLONG;
    }
    r = add(plan, buf, strlen(buf), 0, err);
  } else if (m->type != NULL && strcmp(m->type, "overlay") == 0) {
    r = plan_overlay(m, plan, err);
  } else if (m->type != NULL && strcmp(m->type, "bind") == 0) {
    if (m->source == NULL) {
      *err = "a bind mount without source";
      r = -EINVAL;
    } else {
      r = add(plan, m->source, strlen(m->source), has_flag(m, "ro"), err);
    }
  } else {
    *err = "a rootfs mount of a type other than overlay or bind";
    r = -EINVAL;
  }
  if (r != 0) {
    hcsb__rootfs_plan_free(plan);
    if (*err == NULL) *err = "out of memory";
  }
  return r;
}

int hcsb__layer_key(const char *dir, char *key, size_t keylen, char stem[17]) {
  struct stat st;
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
  const char *p;
  int n;

  if (stat(dir, &st) != 0) return -errno;
  if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
  n = snprintf(key, keylen,
               "hcsb-layer v1\n%s\n%" PRIu64 ":%" PRIu64 ":%lld.%09ld\n", dir,
               (uint64_t)st.st_dev, (uint64_t)st.st_ino,
               (long long)st.st_ctim.tv_sec, (long)st.st_ctim.tv_nsec);
  if (n < 0 || (size_t)n >= keylen) return -ENAMETOOLONG;
  for (p = key; *p != '\0'; p++) {
    h ^= (unsigned char)*p;
    h *= 0x100000001b3ull;
  }
  snprintf(stem, 17, "%016" PRIx64, h);
  return 0;
}
