/* hcsbctl stats: the guest's LCOWMetrics from the typed structs of
 * hcsbridge/metrics.h, with containerd's cgroup v1 field names: one
 * "group.field value" line each, or a "Metrics" JSON object. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hcsbctl.h"

typedef struct fmt_s {
  ctl_buf_t *b;
  int json;
  int first; /* JSON: no comma before the next member */
} fmt_t;

static void key(fmt_t *f, const char *k) {
  if (f->json) {
    ctl_buf_printf(f->b, "%s\"%s\":", f->first ? "" : ",", k);
    f->first = 0;
  }
}

static void open_obj(fmt_t *f, const char *k) {
  key(f, k);
  if (f->json) ctl_buf_append(f->b, "{", 1);
  f->first = 1;
}

static void close_obj(fmt_t *f) {
  if (f->json) ctl_buf_append(f->b, "}", 1);
  f->first = 0;
}

/* One number: `path` is the text form's full name. */
static void num(fmt_t *f, const char *path, const char *k, uint64_t v) {
  if (f->json) {
    key(f, k);
    ctl_buf_printf(f->b, "%" PRIu64, v);
  } else {
    ctl_buf_printf(f->b, "%s.%s %" PRIu64 "\n", path, k, v);
  }
}

static void mem_entry(fmt_t *f, const char *k, const hcsb_memory_entry_t *e) {
  char path[64];
  snprintf(path, sizeof path, "memory.%s", k);
  open_obj(f, k);
  num(f, path, "limit", e->limit);
  num(f, path, "usage", e->usage);
  num(f, path, "max", e->max);
  num(f, path, "failcnt", e->failcnt);
  close_obj(f);
}

static void cpu(fmt_t *f, const hcsb_cpu_stat_t *c) {
  open_obj(f, "cpu");
  open_obj(f, "usage");
  num(f, "cpu.usage", "total", c->usage.total);
  num(f, "cpu.usage", "kernel", c->usage.kernel);
  num(f, "cpu.usage", "user", c->usage.user);
  if (f->json) {
    key(f, "per_cpu");
    ctl_buf_append(f->b, "[", 1);
    for (size_t i = 0; i < c->usage.nper_cpu; i++)
      ctl_buf_printf(f->b, "%s%" PRIu64, i ? "," : "", c->usage.per_cpu[i]);
    ctl_buf_append(f->b, "]", 1);
  } else {
    for (size_t i = 0; i < c->usage.nper_cpu; i++)
      ctl_buf_printf(f->b, "cpu.usage.per_cpu.%zu %" PRIu64 "\n", i,
                     c->usage.per_cpu[i]);
  }
  close_obj(f);
  open_obj(f, "throttling");
  num(f, "cpu.throttling", "periods", c->throttling.periods);
  num(f, "cpu.throttling", "throttled_periods",
      c->throttling.throttled_periods);
  num(f, "cpu.throttling", "throttled_time", c->throttling.throttled_time);
  close_obj(f);
  close_obj(f);
}

static void memory(fmt_t *f, const hcsb_memory_stat_t *m) {
  static const char *const names[] = {
      "cache",
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
      "hierarchical_swap_limit",
      "total_cache",
      "total_rss",
      "total_rss_huge",
      "total_mapped_file",
      "total_dirty",
      "total_writeback",
      "total_pg_pg_in",
      "total_pg_pg_out",
      "total_pg_fault",
      "total_pg_maj_fault",
      "total_inactive_anon",
      "total_active_anon",
      "total_inactive_file",
      "total_active_file",
      "total_unevictable",
  };
  const uint64_t vals[] = {
      m->cache,
      m->rss,
      m->rss_huge,
      m->mapped_file,
      m->dirty,
      m->writeback,
      m->pg_pg_in,
      m->pg_pg_out,
      m->pg_fault,
      m->pg_maj_fault,
      m->inactive_anon,
      m->active_anon,
      m->inactive_file,
      m->active_file,
      m->unevictable,
      m->hierarchical_memory_limit,
      m->hierarchical_swap_limit,
      m->total_cache,
      m->total_rss,
      m->total_rss_huge,
      m->total_mapped_file,
      m->total_dirty,
      m->total_writeback,
      m->total_pg_pg_in,
      m->total_pg_pg_out,
      m->total_pg_fault,
      m->total_pg_maj_fault,
      m->total_inactive_anon,
      m->total_active_anon,
      m->total_inactive_file,
      m->total_active_file,
      m->total_unevictable,
  };
  open_obj(f, "memory");
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    num(f, "memory", names[i], vals[i]);
  mem_entry(f, "usage", &m->usage);
  mem_entry(f, "swap", &m->swap);
  mem_entry(f, "kernel", &m->kernel);
  mem_entry(f, "kernel_tcp", &m->kernel_tcp);
  close_obj(f);
}

static void blkio_list(fmt_t *f, const char *k, const hcsb_blkio_list_t *l) {
  if (l->n == 0) return;
  key(f, k);
  if (f->json) ctl_buf_append(f->b, "[", 1);
  for (size_t i = 0; i < l->n; i++) {
    const hcsb_blkio_entry_t *e = &l->entries[i];
    if (f->json) {
      ctl_buf_printf(f->b, "%s{\"op\":", i ? "," : "");
      ctl_buf_json_str(f->b, e->op);
      ctl_buf_printf(f->b, ",\"device\":");
      ctl_buf_json_str(f->b, e->device);
      ctl_buf_printf(f->b,
                     ",\"major\":%" PRIu64 ",\"minor\":%" PRIu64
                     ",\"value\":%" PRIu64 "}",
                     e->major, e->minor, e->value);
    } else {
      ctl_buf_printf(f->b, "blkio.%s %s %" PRIu64 ":%" PRIu64 " %" PRIu64 "\n",
                     k, e->op, e->major, e->minor, e->value);
    }
  }
  if (f->json) ctl_buf_append(f->b, "]", 1);
}

static void blkio(fmt_t *f, const hcsb_blkio_stat_t *b) {
  open_obj(f, "blkio");
  blkio_list(f, "io_service_bytes_recursive", &b->io_service_bytes_recursive);
  blkio_list(f, "io_serviced_recursive", &b->io_serviced_recursive);
  blkio_list(f, "io_queued_recursive", &b->io_queued_recursive);
  blkio_list(f, "io_service_time_recursive", &b->io_service_time_recursive);
  blkio_list(f, "io_wait_time_recursive", &b->io_wait_time_recursive);
  blkio_list(f, "io_merged_recursive", &b->io_merged_recursive);
  blkio_list(f, "io_time_recursive", &b->io_time_recursive);
  blkio_list(f, "sectors_recursive", &b->sectors_recursive);
  close_obj(f);
}

static void rdma_list(fmt_t *f, const char *k, const hcsb_rdma_entry_t *e,
                      size_t n) {
  if (n == 0) return;
  key(f, k);
  if (f->json) ctl_buf_append(f->b, "[", 1);
  for (size_t i = 0; i < n; i++) {
    if (f->json) {
      ctl_buf_printf(f->b, "%s{\"device\":", i ? "," : "");
      ctl_buf_json_str(f->b, e[i].device);
      ctl_buf_printf(f->b, ",\"hca_handles\":%u,\"hca_objects\":%u}",
                     e[i].hca_handles, e[i].hca_objects);
    } else {
      ctl_buf_printf(f->b, "rdma.%s %s hca_handles %u hca_objects %u\n", k,
                     e[i].device, e[i].hca_handles, e[i].hca_objects);
    }
  }
  if (f->json) ctl_buf_append(f->b, "]", 1);
}

static void named(fmt_t *f, const char *group, const char *name) {
  /* A name from the guest keys a JSON object: quote it as a string. */
  if (f->json) {
    ctl_buf_printf(f->b, "%s", f->first ? "" : ",");
    ctl_buf_json_str(f->b, name);
    ctl_buf_append(f->b, ":{", 2);
    f->first = 1;
  }
  (void)group;
}

void ctl_format_metrics(ctl_buf_t *b, const hcsb_metrics_t *m, int json) {
  fmt_t f = {b, json, 1};
  char path[160];

  if (json) ctl_buf_append(b, "{", 1);
  if (m->has_cpu) cpu(&f, &m->cpu);
  if (m->has_memory) memory(&f, &m->memory);
  if (m->has_memory_oom_control) {
    open_obj(&f, "memory_oom_control");
    num(&f, "memory_oom_control", "oom_kill_disable",
        m->memory_oom_control.oom_kill_disable);
    num(&f, "memory_oom_control", "under_oom", m->memory_oom_control.under_oom);
    num(&f, "memory_oom_control", "oom_kill", m->memory_oom_control.oom_kill);
    close_obj(&f);
  }
  if (m->has_pids) {
    open_obj(&f, "pids");
    num(&f, "pids", "current", m->pids.current);
    num(&f, "pids", "limit", m->pids.limit);
    close_obj(&f);
  }
  if (m->has_blkio) blkio(&f, &m->blkio);
  if (m->nhugetlb) {
    open_obj(&f, "hugetlb");
    for (size_t i = 0; i < m->nhugetlb; i++) {
      const hcsb_hugetlb_stat_t *h = &m->hugetlb[i];
      snprintf(path, sizeof path, "hugetlb.%s", h->pagesize);
      named(&f, "hugetlb", h->pagesize);
      num(&f, path, "usage", h->usage);
      num(&f, path, "max", h->max);
      num(&f, path, "failcnt", h->failcnt);
      close_obj(&f);
    }
    close_obj(&f);
  }
  if (m->nnetwork) {
    open_obj(&f, "network");
    for (size_t i = 0; i < m->nnetwork; i++) {
      const hcsb_network_stat_t *n = &m->network[i];
      snprintf(path, sizeof path, "network.%s", n->name);
      named(&f, "network", n->name);
      num(&f, path, "rx_bytes", n->rx_bytes);
      num(&f, path, "rx_packets", n->rx_packets);
      num(&f, path, "rx_errors", n->rx_errors);
      num(&f, path, "rx_dropped", n->rx_dropped);
      num(&f, path, "tx_bytes", n->tx_bytes);
      num(&f, path, "tx_packets", n->tx_packets);
      num(&f, path, "tx_errors", n->tx_errors);
      num(&f, path, "tx_dropped", n->tx_dropped);
      close_obj(&f);
    }
    close_obj(&f);
  }
  if (m->has_rdma) {
    open_obj(&f, "rdma");
    rdma_list(&f, "current", m->rdma.current, m->rdma.ncurrent);
    rdma_list(&f, "limit", m->rdma.limit, m->rdma.nlimit);
    close_obj(&f);
  }
  if (m->has_cgroup_stats) {
    open_obj(&f, "cgroup_stats");
    num(&f, "cgroup_stats", "nr_sleeping", m->cgroup_stats.nr_sleeping);
    num(&f, "cgroup_stats", "nr_running", m->cgroup_stats.nr_running);
    num(&f, "cgroup_stats", "nr_stopped", m->cgroup_stats.nr_stopped);
    num(&f, "cgroup_stats", "nr_uninterruptible",
        m->cgroup_stats.nr_uninterruptible);
    num(&f, "cgroup_stats", "nr_io_wait", m->cgroup_stats.nr_io_wait);
    close_obj(&f);
  }
  if (m->dropped) {
    /* The library kept the first HCSB_METRICS_MAX_* of an array. */
    if (json)
      key(&f, "dropped"), ctl_buf_printf(b, "%zu", m->dropped);
    else
      ctl_buf_printf(b, "dropped %zu\n", m->dropped);
  }
  if (json) ctl_buf_append(b, "}", 1);
}
