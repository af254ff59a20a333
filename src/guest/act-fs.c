/* File-system helpers of the acting backend: mkdir -p that says whether
 * it made the directory (so a failure undoes only that), where things are
 * mounted (/proc/self/mountinfo), and a removal that never goes below a
 * mount point: the GCS's os.RemoveAll of a bundle would delete a mounted
 * layer's files through the container's overlay. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest/act.h"

char *hcsb__ga_path_join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = malloc(la + lb + 2);

  if (s == NULL) return NULL;
  memcpy(s, a, la);
  s[la] = '/';
  memcpy(s + la + 1, b, lb + 1);
  return s;
}

int hcsb__ga_mkdir_p(const char *path, mode_t mode, int *made) {
  char buf[4096];
  size_t i, n = strlen(path);

  if (made != NULL) *made = 0;
  if (n == 0 || n >= sizeof buf) return -ENAMETOOLONG;
  memcpy(buf, path, n + 1);
  for (i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    buf[i] = '\0';
    if (mkdir(buf, i == n ? mode : 0755) == 0) {
      if (i == n && made != NULL) *made = 1;
    } else if (errno != EEXIST) {
      return -errno;
    }
    if (i < n) buf[i] = '/';
  }
  return 0;
}

/* Calls fn for each mount point (mountinfo escapes blanks as \040: a path
 * with them never matches, and the paths the backend mounts have none);
 * stops when fn returns non-zero, and returns that. */
static int each_mount(int (*fn)(const char *point, const void *arg),
                      const void *arg) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  char line[8192], point[4096];
  int r = 0;

  if (f == NULL) return 0;
  while (r == 0 && fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1) r = fn(point, arg);
  fclose(f);
  return r;
}

static int is_at(const char *point, const void *arg) {
  return strcmp(point, (const char *)arg) == 0;
}

static int is_under(const char *point, const void *arg) {
  const char *dir = arg;
  size_t n = strlen(dir);

  while (n > 1 && dir[n - 1] == '/') n--;
  return strncmp(point, dir, n) == 0 && (point[n] == '\0' || point[n] == '/');
}

int hcsb__ga_mounted_at(const char *path) {
  return each_mount(is_at, path);
}

int hcsb__ga_mounted_under(const char *dir) {
  return each_mount(is_under, dir);
}

/* ------------------------------------------------------------------------ */
/* Removal */

typedef struct mpoints_s {
  char **v;
  size_t n;
} mpoints_t;

static int collect(const char *point, const void *arg) {
  mpoints_t *m = (mpoints_t *)arg;
  char **nv = realloc(m->v, (m->n + 1) * sizeof *nv);

  if (nv == NULL) return 1;
  m->v = nv;
  m->v[m->n] = strdup(point);
  if (m->v[m->n] != NULL) m->n++;
  return 0;
}

static int is_mpoint(const mpoints_t *m, const char *path) {
  size_t i;
  for (i = 0; i < m->n; i++)
    if (strcmp(m->v[i], path) == 0) return 1;
  return 0;
}

/* The outermost failure wins: "unlinkat <bundle>: directory not empty"
 * when something stays below it, as the GCS reports it. */
static void note(char *err, size_t esize, const char *path, int e) {
  char eb[128];
  if (esize > 0)
    snprintf(err, esize, "unlinkat %s: %s", path, hcsb__ga_errstr(e, eb));
}

static int rm(const mpoints_t *m, const char *path, unsigned depth, char *err,
              size_t esize) {
  struct stat st;
  DIR *d;
  struct dirent *e;
  int r = 0;

  if (lstat(path, &st) < 0) return errno == ENOENT ? 0 : -errno;
  if (!S_ISDIR(st.st_mode)) {
    if (unlink(path) < 0 && errno != ENOENT) {
      note(err, esize, path, errno);
      return -errno;
    }
    return 0;
  }
  if (is_mpoint(m, path) || depth > 64) {
    note(err, esize, path, EBUSY);
    return -EBUSY;
  }
  d = opendir(path);
  if (d != NULL) {
    while ((e = readdir(d)) != NULL) {
      char *child;
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      child = hcsb__ga_path_join(path, e->d_name);
      if (child == NULL) {
        r = -ENOMEM;
        break;
      }
      if (rm(m, child, depth + 1, err, esize) < 0 && r == 0) r = -EBUSY;
      free(child);
    }
    closedir(d);
  }
  if (rmdir(path) < 0) {
    r = -errno;
    note(err, esize, path, errno);
  }
  return r;
}

int hcsb__ga_rm_tree(const char *path, char *err, size_t esize) {
  mpoints_t m = {NULL, 0};
  size_t i;
  int r;

  if (esize > 0) err[0] = '\0';
  each_mount(collect, &m);
  r = rm(&m, path, 0, err, esize);
  for (i = 0; i < m.n; i++) free(m.v[i]);
  free(m.v);
  return r;
}
