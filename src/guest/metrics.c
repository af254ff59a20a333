/* Process facts from /proc: session membership (how a container's
 * processes are found and killed) and LCOWMetrics, shaped like containerd's
 * cgroup v1 Metrics as the GCS marshals them: snake_case keys in struct
 * order, zero values omitted, empty throttling, blkio and
 * memory_oom_control objects kept.  The numbers come from the container's
 * own cgroup where it has one (cgroup.c), from /proc otherwise. */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "guest/guest.h"

int hcsb__gstat_read(pid_t pid, hcsb__gstat_t *st) {
  char path[64], buf[1024], *p;
  unsigned long long utime, stime, start, rss;
  int fd, ppid, pgrp, sid;
  ssize_t n;

  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  do n = read(fd, buf, sizeof buf - 1);
  while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return n < 0 ? -errno : -ESRCH;
  buf[n] = '\0';
  /* The command name may contain anything, ')' included: skip to the last
   * one. */
  p = strrchr(buf, ')');
  if (p == NULL) return -EINVAL;
  memset(st, 0, sizeof *st);
  if (sscanf(p + 1,
             " %c %d %d %d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d "
             "%*d %*d %*d %llu %*u %llu",
             &st->state, &ppid, &pgrp, &sid, &utime, &stime, &start, &rss) != 8)
    return -EINVAL;
  st->pid = pid;
  st->ppid = ppid;
  st->sid = sid;
  st->utime_ticks = utime;
  st->stime_ticks = stime;
  st->start_ticks = start;
  st->rss_pages = rss;
  return 0;
}

int hcsb__gstat_each(int (*fn)(const hcsb__gstat_t *st, void *arg), void *arg) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  hcsb__gstat_t st;
  char *end;
  long pid;

  if (d == NULL) return -errno;
  while ((e = readdir(d)) != NULL) {
    if (!isdigit((unsigned char)e->d_name[0])) continue;
    pid = strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    if (hcsb__gstat_read((pid_t)pid, &st) != 0) continue; /* gone meanwhile */
    if (fn(&st, arg) != 0) break;
  }
  closedir(d);
  return 0;
}

typedef struct killset_s {
  const pid_t *sids;
  size_t n;
  int sig;
} killset_t;

static int kill_member(const hcsb__gstat_t *st, void *arg) {
  const killset_t *k = arg;
  size_t i;

  for (i = 0; i < k->n; i++) {
    if (k->sids[i] != st->sid) continue;
    /* A session whose members all died frees its ID for anyone to reuse:
     * only our own descendants are ever signalled. */
    if (hcsb__gis_descendant(st->pid)) kill(st->pid, k->sig);
    break;
  }
  return 0;
}

void hcsb__gkill_sessions(const pid_t *sids, size_t n, int sig) {
  killset_t k = {sids, n, sig};

  if (n > 0) hcsb__gstat_each(kill_member, &k);
}

static void put_nz(hcsb__gjw_t *w, const char *key, uint64_t v) {
  if (v != 0) hcsb__gjw_u64(w, key, v);
}

/* Go's MemoryStat field names, in hcsb__gcg_t.mem order. */
static const char *const mem_json[HCSB__G_NMEM] = {"cache",
                                                   "rss",
                                                   "rss_huge",
                                                   "mapped_file",
                                                   "dirty",
                                                   "writeback",
                                                   "pg_pg_in",
                                                   "pg_pg_out",
                                                   "pg_fault",
                                                   "pg_maj_fault",
                                                   "inactive_anon",
                                                   "active_anon",
                                                   "inactive_file",
                                                   "active_file",
                                                   "unevictable",
                                                   "hierarchical_memory_limit",
                                                   "hierarchical_swap_limit"};

static void put_entry(hcsb__gjw_t *w, const char *key, const uint64_t e[4]) {
  hcsb__gjw_obj(w, key);
  put_nz(w, "limit", e[0]);
  put_nz(w, "usage", e[1]);
  put_nz(w, "max", e[2]);
  put_nz(w, "failcnt", e[3]);
  hcsb__gjw_end(w, '}');
}

static void put_memory(hcsb__gjw_t *w, const hcsb__gcg_t *cg, uint64_t rss) {
  static const char *const entries[4] = {"usage", "swap", "kernel",
                                         "kernel_tcp"};
  char name[48];
  int i;

  hcsb__gjw_obj(w, "memory");
  if (!cg->have_mem) {
    /* No cgroup of its own: the resident pages of its processes. */
    put_nz(w, "rss", rss);
    put_nz(w, "total_rss", rss);
    hcsb__gjw_obj(w, "usage");
    put_nz(w, "usage", rss);
    hcsb__gjw_end(w, '}');
    hcsb__gjw_end(w, '}');
    return;
  }
  for (i = 0; i < HCSB__G_NMEM; i++) put_nz(w, mem_json[i], cg->mem[i]);
  for (i = 0; i < HCSB__G_NMEM - 2; i++) {
    snprintf(name, sizeof name, "total_%s", mem_json[i]);
    put_nz(w, name, cg->total[i]);
  }
  for (i = 0; i < 4; i++) put_entry(w, entries[i], cg->entry[i]);
  hcsb__gjw_end(w, '}');
}

static void put_blkio_list(hcsb__gjw_t *w, const char *key,
                           const hcsb__gcg_t *cg, int which) {
  static const char *const ops[2] = {"Read", "Write"};
  char dev[64];
  size_t i;
  int op;

  if (cg->ndev == 0) return; /* omitempty */
  hcsb__gjw_arr(w, key);
  for (i = 0; i < cg->ndev; i++) {
    const hcsb__gcg_dev_t *d = &cg->dev[i];
    int named = hcsb__gcgroup_dev_name(d->major, d->minor, dev, sizeof dev);
    for (op = 0; op < 2; op++) {
      hcsb__gjw_obj(w, NULL);
      hcsb__gjw_cstr(w, "op", ops[op]);
      if (named == 0) hcsb__gjw_cstr(w, "device", dev);
      put_nz(w, "major", d->major);
      put_nz(w, "minor", d->minor);
      put_nz(w, "value", d->v[which][op]);
      hcsb__gjw_end(w, '}');
    }
  }
  hcsb__gjw_end(w, ']');
}

void hcsb__gmetrics_write(hcsb__gjw_t *w, const char *key, const pid_t *pids,
                          size_t n) {
  static hcsb__gcg_t none;
  uint64_t user = 0, kernel = 0, rss = 0, current = 0;
  long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
  hcsb__gcg_t *cg = malloc(sizeof *cg);
  const hcsb__gcg_t *c = cg != NULL ? cg : &none;
  hcsb__gstat_t st;
  size_t i;

  if (cg != NULL) hcsb__gcgroup_read(cg, pids, n);
  if (tick <= 0) tick = 100;
  if (page <= 0) page = 4096;
  for (i = 0; i < n; i++) {
    if (hcsb__gstat_read(pids[i], &st) != 0) continue;
    current++;
    user += st.utime_ticks * (1000000000u / (uint64_t)tick);
    kernel += st.stime_ticks * (1000000000u / (uint64_t)tick);
    if (st.state != 'Z') rss += st.rss_pages * (uint64_t)page;
  }
  if (c->have_cpu) {
    user = c->cpu_user;
    kernel = c->cpu_kernel;
  }

  hcsb__gjw_obj(w, key);
  if (c->nhuge > 0) {
    hcsb__gjw_arr(w, "hugetlb");
    for (i = 0; i < c->nhuge; i++) {
      hcsb__gjw_obj(w, NULL);
      put_nz(w, "usage", c->huge[i].usage);
      put_nz(w, "max", c->huge[i].max);
      put_nz(w, "failcnt", c->huge[i].failcnt);
      hcsb__gjw_cstr(w, "pagesize", c->huge[i].pagesize);
      hcsb__gjw_end(w, '}');
    }
    hcsb__gjw_end(w, ']');
  }
  hcsb__gjw_obj(w, "pids");
  put_nz(w, "current", c->have_pids ? c->pids_current : current);
  put_nz(w, "limit", c->pids_limit);
  hcsb__gjw_end(w, '}');
  hcsb__gjw_obj(w, "cpu");
  hcsb__gjw_obj(w, "usage");
  put_nz(w, "total", c->have_cpu ? c->cpu_total : user + kernel);
  put_nz(w, "kernel", kernel);
  put_nz(w, "user", user);
  if (c->ncpu > 0) {
    hcsb__gjw_arr(w, "per_cpu");
    for (i = 0; i < c->ncpu; i++) hcsb__gjw_u64(w, NULL, c->per_cpu[i]);
    hcsb__gjw_end(w, ']');
  }
  hcsb__gjw_end(w, '}');
  hcsb__gjw_obj(w, "throttling");
  put_nz(w, "periods", c->periods);
  put_nz(w, "throttled_periods", c->throttled_periods);
  put_nz(w, "throttled_time", c->throttled_time);
  hcsb__gjw_end(w, '}');
  hcsb__gjw_end(w, '}');
  put_memory(w, c, rss);
  hcsb__gjw_obj(w, "blkio");
  put_blkio_list(w, "io_service_bytes_recursive", c, 0);
  put_blkio_list(w, "io_serviced_recursive", c, 1);
  hcsb__gjw_end(w, '}');
  hcsb__gjw_obj(w, "memory_oom_control");
  put_nz(w, "oom_kill_disable", c->oom[0]);
  put_nz(w, "under_oom", c->oom[1]);
  put_nz(w, "oom_kill", c->oom[2]);
  hcsb__gjw_end(w, '}');
  hcsb__gjw_end(w, '}');
  free(cg);
}
