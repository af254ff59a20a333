/* Process facts from /proc: session membership (how a container's
 * processes are found and killed) and the numbers behind LCOWMetrics.  The metrics are
 * shaped like containerd's cgroup v1 Metrics as the GCS marshals them:
 * snake_case keys in struct order, zero values omitted, empty throttling,
 * blkio and memory_oom_control objects kept. */
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
             &st->state, &ppid, &pgrp, &sid, &utime, &stime, &start,
             &rss) != 8)
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

int hcsb__gstat_each(int (*fn)(const hcsb__gstat_t *st, void *arg),
                     void *arg) {
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

void hcsb__gmetrics_write(hcsb__gjw_t *w, const char *key, const pid_t *pids,
                          size_t n) {
  uint64_t user = 0, kernel = 0, rss = 0, current = 0;
  long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
  hcsb__gstat_t st;
  size_t i;

  if (tick <= 0) tick = 100;
  if (page <= 0) page = 4096;
  for (i = 0; i < n; i++) {
    if (hcsb__gstat_read(pids[i], &st) != 0) continue;
    current++;
    user += st.utime_ticks * (1000000000u / (uint64_t)tick);
    kernel += st.stime_ticks * (1000000000u / (uint64_t)tick);
    if (st.state != 'Z') rss += st.rss_pages * (uint64_t)page;
  }

  hcsb__gjw_obj(w, key);
  hcsb__gjw_obj(w, "pids");
  put_nz(w, "current", current);
  hcsb__gjw_end(w, '}');
  hcsb__gjw_obj(w, "cpu");
  hcsb__gjw_obj(w, "usage");
  put_nz(w, "total", user + kernel);
  put_nz(w, "kernel", kernel);
  put_nz(w, "user", user);
  hcsb__gjw_end(w, '}');
  hcsb__gjw_obj(w, "throttling");
  hcsb__gjw_end(w, '}');
  hcsb__gjw_end(w, '}');
  hcsb__gjw_obj(w, "memory");
  put_nz(w, "rss", rss);
  put_nz(w, "total_rss", rss);
  hcsb__gjw_obj(w, "usage");
  put_nz(w, "usage", rss);
  hcsb__gjw_end(w, '}');
  hcsb__gjw_end(w, '}');
  hcsb__gjw_obj(w, "blkio");
  hcsb__gjw_end(w, '}');
  hcsb__gjw_obj(w, "memory_oom_control");
  hcsb__gjw_end(w, '}');
  hcsb__gjw_end(w, '}');
}
