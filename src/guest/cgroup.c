/* A container's cgroup, read into the cgroup v1 shape LCOWMetrics uses.
 *
 * A real GCS runs every container in a cgroup of its own (v1 in v0.11.8).
 * The emulator creates none: a container's processes stay wherever the
 * emulator runs.  So a hierarchy's numbers are used only when the cgroup
 * the container's processes are in is their own: not the root, and every
 * process listed in its cgroup.procs is one of the container's.  Anything
 * else (shared with the emulator or a login session, or not mounted) is
 * left to /proc by metrics.c, so a number never describes more than the
 * container.
 *
 * Both layouts are read: v1 (one hierarchy per controller: cpuacct, cpu,
 * memory, pids, blkio, hugetlb) where its controllers are mounted, else the
 * v2 unified hierarchy, whose files are mapped onto v1's names (cpu.stat
 * usec -> ns, memory.current -> usage, anon -> rss, file -> cache, io.stat
 * -> io_service_bytes/io_serviced, "max" -> v1's unlimited value). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest/guest.h"

/* What cgroup v1 reports for "no limit" (PAGE_COUNTER_MAX pages of 4 KiB),
 * as a real guest's memory.limit_in_bytes reads. */
#define V1_UNLIMITED 9223372036854771712ull

enum { C_CPUACCT, C_CPU, C_MEMORY, C_PIDS, C_BLKIO, C_HUGETLB, C_COUNT };
static const char *const ctl_names[C_COUNT] = {"cpuacct", "cpu",   "memory",
                                               "pids",    "blkio", "hugetlb"};

typedef struct mounts_s {
  char v1[C_COUNT][PATH_MAX]; /* mount point per v1 controller, "" if none */
  char v1root[C_COUNT][PATH_MAX];
  char v2[PATH_MAX];
  char v2root[PATH_MAX];
} mounts_t;

/* The whole (small) file, NUL-terminated; its length or -1. */
static ssize_t slurp(const char *path, char *buf, size_t size) {
  ssize_t n, total = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  if (fd < 0) return -1;
  while ((size_t)total < size - 1) {
    n = read(fd, buf + total, size - 1 - (size_t)total);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    total += n;
  }
  close(fd);
  buf[total] = '\0';
  return total;
}

/* A file holding one number, or "max" (*out = V1_UNLIMITED for limits).
 * 0, or -1 when missing. */
static int read_num(const char *dir, const char *file, uint64_t *out) {
  char path[PATH_MAX + 64], buf[64], *end;
  unsigned long long v;

  snprintf(path, sizeof path, "%s/%s", dir, file);
  if (slurp(path, buf, sizeof buf) <= 0) return -1;
  if (strncmp(buf, "max", 3) == 0) {
    *out = V1_UNLIMITED;
    return 0;
  }
  errno = 0;
  v = strtoull(buf, &end, 10);
  if (errno != 0 || end == buf) return -1;
  *out = v;
  return 0;
}

/* "key value" lines (memory.stat, cpu.stat, memory.oom_control, ...). */
static int kv(const char *text, const char *key, uint64_t *out) {
  size_t kl = strlen(key);
  const char *p = text;

  while (p != NULL && *p != '\0') {
    if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
      *out = strtoull(p + kl + 1, NULL, 10);
      return 0;
    }
    p = strchr(p, '\n');
    if (p != NULL) p++;
  }
  return -1;
}

static int has_word(const char *list, const char *word) {
  size_t wl = strlen(word);
  const char *p = list;

  while ((p = strstr(p, word)) != NULL) {
    if ((p == list || p[-1] == ',') &&
        (p[wl] == ',' || p[wl] == '\0' || p[wl] == ' ' || p[wl] == '\n'))
      return 1;
    p += wl;
  }
  return 0;
}

static void find_mounts(mounts_t *m) {
  char line[4096];
  FILE *f = fopen("/proc/self/mountinfo", "re");

  memset(m, 0, sizeof *m);
  if (f == NULL) return;
  while (fgets(line, sizeof line, f) != NULL) {
    char root[PATH_MAX], point[PATH_MAX], fstype[64], opts[1024];
    const char *sep = strstr(line, " - ");
    int i;

    if (sep == NULL ||
        sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) != 2 ||
        sscanf(sep + 3, "%63s %*s %1023s", fstype, opts) != 2)
      continue;
    if (strcmp(fstype, "cgroup2") == 0 && m->v2[0] == '\0') {
      snprintf(m->v2, sizeof m->v2, "%s", point);
      snprintf(m->v2root, sizeof m->v2root, "%s", root);
    } else if (strcmp(fstype, "cgroup") == 0) {
      for (i = 0; i < C_COUNT; i++)
        if (m->v1[i][0] == '\0' && has_word(opts, ctl_names[i])) {
          snprintf(m->v1[i], sizeof m->v1[i], "%s", point);
          snprintf(m->v1root[i], sizeof m->v1root[i], "%s", root);
        }
    }
  }
  fclose(f);
}

/* mount + (path relative to the mount's root); 0 when it is a cgroup of
 * its own (not the root of the hierarchy). */
static int join(const char *mnt, const char *mroot, const char *path, char *out,
                size_t size) {
  size_t rl = strlen(mroot);

  if (strcmp(mroot, "/") != 0 && strncmp(path, mroot, rl) == 0) path += rl;
  if (path[0] == '\0' || strcmp(path, "/") == 0) return -1;
  snprintf(out, size, "%s%s", mnt, path);
  return 0;
}

/* Every process in the cgroup is one of `pids` (sorted ascending). */
static int own(const char *dir, const pid_t *pids, size_t n) {
  char path[PATH_MAX + 32], line[32];
  FILE *f;
  int ok = 1, any = 0;

  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  f = fopen(path, "re");
  if (f == NULL) return 0;
  while (ok && fgets(line, sizeof line, f) != NULL) {
    pid_t p = (pid_t)strtol(line, NULL, 10);
    size_t lo = 0, hi = n;
    ok = 0;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (pids[mid] == p) {
        ok = 1;
        break;
      }
      if (pids[mid] < p)
        lo = mid + 1;
      else
        hi = mid;
    }
    any = 1;
  }
  fclose(f);
  return ok && any;
}

/* ------------------------------------------------------------------------ */
/* Readers, one per controller */

static void read_cpuacct(hcsb__gcg_t *cg, const char *dir) {
  char path[PATH_MAX + 32], buf[16384], *p, *end;
  uint64_t v;

  long tick = sysconf(_SC_CLK_TCK);

  if (read_num(dir, "cpuacct.usage", &cg->cpu_total) != 0) return;
  cg->have_cpu = 1;
  /* User and kernel from cpuacct.stat's ticks, as containerd reads them
   * (a real guest's are whole multiples of 10 ms). */
  if (tick <= 0) tick = 100;
  snprintf(path, sizeof path, "%s/cpuacct.stat", dir);
  if (slurp(path, buf, sizeof buf) > 0) {
    if (kv(buf, "user", &v) == 0)
      cg->cpu_user = v * (1000000000u / (uint64_t)tick);
    if (kv(buf, "system", &v) == 0)
      cg->cpu_kernel = v * (1000000000u / (uint64_t)tick);
  }
  snprintf(path, sizeof path, "%s/cpuacct.usage_percpu", dir);
  if (slurp(path, buf, sizeof buf) <= 0) return;
  for (p = buf; cg->ncpu < HCSB__G_MAX_CPUS; p = end) {
    v = strtoull(p, &end, 10);
    if (end == p) break;
    cg->per_cpu[cg->ncpu++] = v;
  }
}

static void read_cpu_stat(hcsb__gcg_t *cg, const char *dir, int v2) {
  char path[PATH_MAX + 32], buf[2048];
  uint64_t v;

  snprintf(path, sizeof path, "%s/cpu.stat", dir);
  if (slurp(path, buf, sizeof buf) <= 0) return;
  if (v2 && kv(buf, "usage_usec", &v) == 0) {
    cg->have_cpu = 1;
    cg->cpu_total = v * 1000;
    if (kv(buf, "user_usec", &v) == 0) cg->cpu_user = v * 1000;
    if (kv(buf, "system_usec", &v) == 0) cg->cpu_kernel = v * 1000;
  }
  kv(buf, "nr_periods", &cg->periods);
  kv(buf, "nr_throttled", &cg->throttled_periods);
  if (v2) {
    if (kv(buf, "throttled_usec", &v) == 0) cg->throttled_time = v * 1000;
  } else {
    kv(buf, "throttled_time", &cg->throttled_time);
  }
}

/* v1 memory.stat names in hcsb__gcg_t.mem order; v2 names where v2 has the
 * same quantity under another name (NULL: none). */
static const struct {
  const char *v1, *v2;
} mem_names[HCSB__G_NMEM] = {
    {"cache", "file"},
    {"rss", "anon"},
    {"rss_huge", "anon_thp"},
    {"mapped_file", "file_mapped"},
    {"dirty", "file_dirty"},
    {"writeback", "file_writeback"},
    {"pgpgin", NULL},
    {"pgpgout", NULL},
    {"pgfault", "pgfault"},
    {"pgmajfault", "pgmajfault"},
    {"inactive_anon", "inactive_anon"},
    {"active_anon", "active_anon"},
    {"inactive_file", "inactive_file"},
    {"active_file", "active_file"},
    {"unevictable", "unevictable"},
    {"hierarchical_memory_limit", NULL},
    {"hierarchical_memsw_limit", NULL},
};

static void read_memory(hcsb__gcg_t *cg, const char *dir, int v2) {
  static const char *const v1_entries[4] = {"memory.", "memory.memsw.",
                                            "memory.kmem.", "memory.kmem.tcp."};
  char path[PATH_MAX + 32], buf[8192], name[64];
  uint64_t v;
  int i;

  snprintf(path, sizeof path, "%s/memory.stat", dir);
  if (slurp(path, buf, sizeof buf) <= 0) return;
  cg->have_mem = 1;
  for (i = 0; i < HCSB__G_NMEM; i++) {
    const char *n = v2 ? mem_names[i].v2 : mem_names[i].v1;
    if (n != NULL) kv(buf, n, &cg->mem[i]);
    /* v2 is hierarchical: its counters are the totals too. */
    if (v2) {
      cg->total[i] = cg->mem[i];
    } else {
      snprintf(name, sizeof name, "total_%s", mem_names[i].v1);
      kv(buf, name, &cg->total[i]);
    }
  }
  if (!v2) {
    for (i = 0; i < 4; i++) {
      snprintf(name, sizeof name, "%susage_in_bytes", v1_entries[i]);
      read_num(dir, name, &cg->entry[i][1]);
      snprintf(name, sizeof name, "%slimit_in_bytes", v1_entries[i]);
      read_num(dir, name, &cg->entry[i][0]);
      snprintf(name, sizeof name, "%smax_usage_in_bytes", v1_entries[i]);
      read_num(dir, name, &cg->entry[i][2]);
      snprintf(name, sizeof name, "%sfailcnt", v1_entries[i]);
      read_num(dir, name, &cg->entry[i][3]);
    }
    snprintf(path, sizeof path, "%s/memory.oom_control", dir);
    if (slurp(path, buf, sizeof buf) > 0) {
      kv(buf, "oom_kill_disable", &cg->oom[0]);
      kv(buf, "under_oom", &cg->oom[1]);
      kv(buf, "oom_kill", &cg->oom[2]);
    }
    return;
  }
  /* v2: usage, swap (as v1's memory+swap), kernel, sockets. */
  kv(buf, "kernel", &cg->entry[2][1]);
  kv(buf, "sock", &cg->entry[3][1]);
  read_num(dir, "memory.current", &cg->entry[0][1]);
  read_num(dir, "memory.max", &cg->entry[0][0]);
  read_num(dir, "memory.peak", &cg->entry[0][2]);
  cg->mem[15] = cg->total[15] = cg->entry[0][0]; /* hierarchical limit */
  if (read_num(dir, "memory.swap.current", &v) == 0)
    cg->entry[1][1] = cg->entry[0][1] + v;
  read_num(dir, "memory.swap.max", &cg->entry[1][0]);
  snprintf(path, sizeof path, "%s/memory.events", dir);
  if (slurp(path, buf, sizeof buf) > 0) {
    kv(buf, "max", &cg->entry[0][3]);
    kv(buf, "oom_kill", &cg->oom[2]);
  }
}

static void read_pids(hcsb__gcg_t *cg, const char *dir) {
  if (read_num(dir, "pids.current", &cg->pids_current) != 0) return;
  cg->have_pids = 1;
  if (read_num(dir, "pids.max", &cg->pids_limit) == 0 &&
      cg->pids_limit == V1_UNLIMITED)
    cg->pids_limit = 0; /* containerd reports "max" as no limit */
}

static hcsb__gcg_dev_t *dev_slot(hcsb__gcg_t *cg, unsigned major,
                                 unsigned minor) {
  size_t i;

  for (i = 0; i < cg->ndev; i++)
    if (cg->dev[i].major == major && cg->dev[i].minor == minor)
      return &cg->dev[i];
  if (cg->ndev == HCSB__G_MAX_DEVS) return NULL;
  memset(&cg->dev[cg->ndev], 0, sizeof cg->dev[0]);
  cg->dev[cg->ndev].major = major;
  cg->dev[cg->ndev].minor = minor;
  return &cg->dev[cg->ndev++];
}

/* v1: "8:0 Read 4096" lines of the two throttle files. */
static void read_blkio_v1(hcsb__gcg_t *cg, const char *dir) {
  static const char *const files[2] = {
      "blkio.throttle.io_service_bytes_recursive",
      "blkio.throttle.io_serviced_recursive"};
  char path[PATH_MAX + 64], buf[16384], op[16], *p;
  unsigned major, minor;
  unsigned long long v;
  int f;

  for (f = 0; f < 2; f++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[f]);
    if (slurp(path, buf, sizeof buf) < 0) continue;
    cg->have_blkio = 1;
    for (p = buf; p != NULL && *p != '\0';
         p = strchr(p, '\n'), p = p ? p + 1 : p) {
      hcsb__gcg_dev_t *d;
      if (sscanf(p, "%u:%u %15s %llu", &major, &minor, op, &v) != 4) continue;
      d = dev_slot(cg, major, minor);
      if (d == NULL) continue;
      if (strcmp(op, "Read") == 0)
        d->v[f][0] = v;
      else if (strcmp(op, "Write") == 0)
        d->v[f][1] = v;
    }
  }
}

/* v2: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0". */
static void read_blkio_v2(hcsb__gcg_t *cg, const char *dir) {
  char path[PATH_MAX + 32], buf[16384], *p;
  unsigned major, minor;
  unsigned long long rb, wb, ri, wi;

  snprintf(path, sizeof path, "%s/io.stat", dir);
  if (slurp(path, buf, sizeof buf) < 0) return;
  cg->have_blkio = 1;
  for (p = buf; p != NULL && *p != '\0';
       p = strchr(p, '\n'), p = p ? p + 1 : p) {
    hcsb__gcg_dev_t *d;
    if (sscanf(p, "%u:%u rbytes=%llu wbytes=%llu rios=%llu wios=%llu", &major,
               &minor, &rb, &wb, &ri, &wi) != 6)
      continue;
    d = dev_slot(cg, major, minor);
    if (d == NULL) continue;
    d->v[0][0] = rb;
    d->v[0][1] = wb;
    d->v[1][0] = ri;
    d->v[1][1] = wi;
  }
}

/* Page sizes from /sys/kernel/mm/hugepages ("hugepages-2048kB" -> "2MB"),
 * as containerd names them. */
static void read_hugetlb(hcsb__gcg_t *cg, const char *dir, int v2) {
  static const char *const units[] = {"KB", "MB", "GB", "TB"};
  char file[96];
  unsigned long kb;
  struct dirent *e;
  DIR *d = opendir("/sys/kernel/mm/hugepages");

  if (d == NULL) return;
  while ((e = readdir(d)) != NULL && cg->nhuge < HCSB__G_MAX_HUGE) {
    hcsb__gcg_huge_t *h = &cg->huge[cg->nhuge];
    unsigned u = 0;
    if (sscanf(e->d_name, "hugepages-%lukB", &kb) != 1 || kb == 0) continue;
    for (; kb % 1024 == 0 && u < 3; kb /= 1024) u++;
    memset(h, 0, sizeof *h);
    snprintf(h->pagesize, sizeof h->pagesize, "%lu%s", kb, units[u]);
    snprintf(file, sizeof file,
             v2 ? "hugetlb.%s.current" : "hugetlb.%s.usage_in_bytes",
             h->pagesize);
    if (read_num(dir, file, &h->usage) != 0) continue;
    if (!v2) {
      snprintf(file, sizeof file, "hugetlb.%s.max_usage_in_bytes", h->pagesize);
      read_num(dir, file, &h->max);
      snprintf(file, sizeof file, "hugetlb.%s.failcnt", h->pagesize);
      read_num(dir, file, &h->failcnt);
    }
    cg->nhuge++;
  }
  closedir(d);
}

/* ------------------------------------------------------------------------ */

void hcsb__gcgroup_read(hcsb__gcg_t *cg, const pid_t *pids, size_t n) {
  char path[64], line[PATH_MAX + 128], dir[C_COUNT][PATH_MAX + 8];
  char v2dir[PATH_MAX + 8];
  int have[C_COUNT], have_v2 = 0, v1 = 0, i;
  mounts_t *m;
  FILE *f;

  memset(cg, 0, sizeof *cg);
  if (n == 0) return;
  m = malloc(sizeof *m);
  if (m == NULL) return;
  find_mounts(m);
  for (i = 0; i < C_COUNT; i++) {
    have[i] = 0;
    if (m->v1[i][0] != '\0' && i != C_HUGETLB) v1 = 1;
  }
  snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pids[0]);
  f = fopen(path, "re");
  if (f == NULL) {
    free(m);
    return;
  }
  while (fgets(line, sizeof line, f) != NULL) {
    char *c1 = strchr(line, ':'), *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL) continue;
    *c2 = '\0';
    c2[1 + strcspn(c2 + 1, "\n")] = '\0';
    if (c1[1] == '\0') { /* "0::/path": the unified hierarchy */
      if (!v1 && m->v2[0] != '\0' &&
          join(m->v2, m->v2root, c2 + 1, v2dir, sizeof v2dir) == 0 &&
          own(v2dir, pids, n))
        have_v2 = 1;
      continue;
    }
    for (i = 0; i < C_COUNT; i++)
      if (m->v1[i][0] != '\0' && has_word(c1 + 1, ctl_names[i]) &&
          join(m->v1[i], m->v1root[i], c2 + 1, dir[i], sizeof dir[i]) == 0 &&
          own(dir[i], pids, n))
        have[i] = 1;
  }
  fclose(f);
  free(m);

  if (have_v2) {
    hcsb__gcgroup_read_v2(cg, v2dir);
    return;
  }
  {
    const char *dirs[C_COUNT];
    for (i = 0; i < C_COUNT; i++) dirs[i] = have[i] ? dir[i] : NULL;
    hcsb__gcgroup_read_v1(cg, dirs);
  }
}

void hcsb__gcgroup_read_v2(hcsb__gcg_t *cg, const char *dir) {
  read_cpu_stat(cg, dir, 1);
  read_memory(cg, dir, 1);
  read_pids(cg, dir);
  read_blkio_v2(cg, dir);
  read_hugetlb(cg, dir, 1);
}

void hcsb__gcgroup_read_v1(hcsb__gcg_t *cg, const char *const dirs[6]) {
  if (dirs[C_CPUACCT] != NULL) read_cpuacct(cg, dirs[C_CPUACCT]);
  if (dirs[C_CPU] != NULL) read_cpu_stat(cg, dirs[C_CPU], 0);
  if (dirs[C_MEMORY] != NULL) read_memory(cg, dirs[C_MEMORY], 0);
  if (dirs[C_PIDS] != NULL) read_pids(cg, dirs[C_PIDS]);
  if (dirs[C_BLKIO] != NULL) read_blkio_v1(cg, dirs[C_BLKIO]);
  if (dirs[C_HUGETLB] != NULL) read_hugetlb(cg, dirs[C_HUGETLB], 0);
}

int hcsb__gcgroup_dev_name(unsigned major, unsigned minor, char *out,
                           size_t size) {
  char path[96], buf[512];
  const char *p;
  size_t len;

  snprintf(path, sizeof path, "/sys/dev/block/%u:%u/uevent", major, minor);
  if (slurp(path, buf, sizeof buf) <= 0) return -1;
  p = strstr(buf, "DEVNAME=");
  if (p == NULL) return -1;
  p += 8;
  len = strcspn(p, "\n");
  snprintf(out, size, "/dev/%.*s", (int)len, p);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Joining a container's cgroups */

/* The "<dir>/cgroup.procs" files of the hierarchies where `init` is not
 * where the emulator is: a container someone gave cgroups of its own.  An
 * exec'd process joins them, as runc exec joins the container's.  A
 * NULL-terminated malloc'd array of malloc'd strings (*out NULL for none);
 * 0 or -ENOMEM. */
int hcsb__gcgroup_join_files(pid_t init, char ***out) {
  char path[64], line[PATH_MAX + 128], self[PATH_MAX + 128], dir[PATH_MAX + 8];
  size_t n = 0;
  char **v = NULL;
  mounts_t *m;
  FILE *f, *s;
  int i, r = 0;

  *out = NULL;
  m = malloc(sizeof *m);
  if (m == NULL) return -ENOMEM;
  find_mounts(m);
  snprintf(path, sizeof path, "/proc/%d/cgroup", (int)init);
  f = fopen(path, "re");
  s = fopen("/proc/self/cgroup", "re");
  while (f != NULL && s != NULL && fgets(line, sizeof line, f) != NULL &&
         fgets(self, sizeof self, s) != NULL) {
    char *c1 = strchr(line, ':'), *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
    const char *mnt = NULL, *mroot = NULL;
    char **grown;
    if (c2 == NULL || strcmp(line, self) == 0) continue;
    *c2 = '\0';
    c2[1 + strcspn(c2 + 1, "\n")] = '\0';
    if (c1[1] == '\0') {
      mnt = m->v2[0] != '\0' ? m->v2 : NULL;
      mroot = m->v2root;
    } else {
      for (i = 0; i < C_COUNT && mnt == NULL; i++)
        if (m->v1[i][0] != '\0' && has_word(c1 + 1, ctl_names[i])) {
          mnt = m->v1[i];
          mroot = m->v1root[i];
        }
    }
    if (mnt == NULL || join(mnt, mroot, c2 + 1, dir, sizeof dir) != 0) continue;
    grown = realloc(v, (n + 2) * sizeof *v);
    if (grown == NULL) {
      r = -ENOMEM;
      break;
    }
    v = grown;
    if (asprintf(&v[n], "%s/cgroup.procs", dir) < 0) {
      v[n] = NULL;
      r = -ENOMEM;
      break;
    }
    v[++n] = NULL;
  }
  if (f != NULL) fclose(f);
  if (s != NULL) fclose(s);
  free(m);
  if (r != 0) {
    for (n = 0; v != NULL && v[n] != NULL; n++) free(v[n]);
    free(v);
    return r;
  }
  *out = v;
  return 0;
}
