/* The library's typed LCOWMetrics (hcsbridge/metrics.h) as containerd's
 * cgroups v1 Metrics message: the same fields, one to one. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shim/cgmetrics.h"

#define V1(name) Io__Containerd__Cgroups__V1__##name
#define V1INIT(NAME) IO__CONTAINERD__CGROUPS__V1__##NAME##__INIT

/* Every allocation of one conversion, freed together. */
typedef struct arena_s {
  void **blocks;
  size_t n, cap;
  int failed;
} arena_t;

static void *arena_alloc(arena_t *a, size_t size) {
  void *p;

  if (a->failed) return NULL;
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 32;
    void **v = realloc(a->blocks, cap * sizeof(*v));
    if (v == NULL) {
      a->failed = 1;
      return NULL;
    }
    a->blocks = v;
    a->cap = cap;
  }
  p = calloc(1, size ? size : 1);
  if (p == NULL) {
    a->failed = 1;
    return NULL;
  }
  a->blocks[a->n++] = p;
  return p;
}

static void arena_free(arena_t *a) {
  size_t i;

  for (i = 0; i < a->n; i++) free(a->blocks[i]);
  free(a->blocks);
}

/* Strings from the library are never NULL, but protobuf-c wants char *. */
static char *str(const char *s) {
  return (char *)(s != NULL ? s : "");
}

static V1(MemoryEntry) * mem_entry(arena_t *a, const hcsb_memory_entry_t *e) {
  V1(MemoryEntry) *m = arena_alloc(a, sizeof(*m));
  V1(MemoryEntry) init = V1INIT(MEMORY_ENTRY);

  if (m == NULL) return NULL;
  *m = init;
  m->limit = e->limit;
  m->usage = e->usage;
  m->max = e->max;
  m->failcnt = e->failcnt;
  return m;
}

static V1(MemoryStat) * memory(arena_t *a, const hcsb_memory_stat_t *s) {
  V1(MemoryStat) *m = arena_alloc(a, sizeof(*m));
  V1(MemoryStat) init = V1INIT(MEMORY_STAT);

  if (m == NULL) return NULL;
  *m = init;
#define C(f) m->f = s->f
  C(cache);
  C(rss);
  C(rss_huge);
  C(mapped_file);
  C(dirty);
  C(writeback);
  C(pg_pg_in);
  C(pg_pg_out);
  C(pg_fault);
  C(pg_maj_fault);
  C(inactive_anon);
  C(active_anon);
  C(inactive_file);
  C(active_file);
  C(unevictable);
  C(hierarchical_memory_limit);
  C(hierarchical_swap_limit);
  C(total_cache);
  C(total_rss);
  C(total_rss_huge);
  C(total_mapped_file);
  C(total_dirty);
  C(total_writeback);
  C(total_pg_pg_in);
  C(total_pg_pg_out);
  C(total_pg_fault);
  C(total_pg_maj_fault);
  C(total_inactive_anon);
  C(total_active_anon);
  C(total_inactive_file);
  C(total_active_file);
  C(total_unevictable);
#undef C
  m->usage = mem_entry(a, &s->usage);
  m->swap = mem_entry(a, &s->swap);
  m->kernel = mem_entry(a, &s->kernel);
  m->kernel_tcp = mem_entry(a, &s->kernel_tcp);
  return m;
}

static V1(BlkIOEntry) *
    *blkio_list(arena_t *a, const hcsb_blkio_list_t *l, size_t *n) {
  V1(BlkIOEntry) * *v, init = V1INIT(BLK_IOENTRY);
  size_t i;

  *n = 0;
  if (l->n == 0) return NULL;
  v = arena_alloc(a, l->n * sizeof(*v));
  if (v == NULL) return NULL;
  for (i = 0; i < l->n; i++) {
    V1(BlkIOEntry) *e = arena_alloc(a, sizeof(*e));
    if (e == NULL) return NULL;
    *e = init;
    e->op = str(l->entries[i].op);
    e->device = str(l->entries[i].device);
    e->major = l->entries[i].major;
    e->minor = l->entries[i].minor;
    e->value = l->entries[i].value;
    v[i] = e;
  }
  *n = l->n;
  return v;
}

static V1(BlkIOStat) * blkio(arena_t *a, const hcsb_blkio_stat_t *s) {
  V1(BlkIOStat) *b = arena_alloc(a, sizeof(*b));
  V1(BlkIOStat) init = V1INIT(BLK_IOSTAT);

  if (b == NULL) return NULL;
  *b = init;
#define L(f) b->f = blkio_list(a, &s->f, &b->n_##f)
  L(io_service_bytes_recursive);
  L(io_serviced_recursive);
  L(io_queued_recursive);
  L(io_service_time_recursive);
  L(io_wait_time_recursive);
  L(io_merged_recursive);
  L(io_time_recursive);
  L(sectors_recursive);
#undef L
  return b;
}

static V1(RdmaEntry) *
    *rdma_list(arena_t *a, const hcsb_rdma_entry_t *src, size_t n) {
  V1(RdmaEntry) * *v, init = V1INIT(RDMA_ENTRY);
  size_t i;

  if (n == 0) return NULL;
  v = arena_alloc(a, n * sizeof(*v));
  if (v == NULL) return NULL;
  for (i = 0; i < n; i++) {
    V1(RdmaEntry) *e = arena_alloc(a, sizeof(*e));
    if (e == NULL) return NULL;
    *e = init;
    e->device = str(src[i].device);
    e->hca_handles = src[i].hca_handles;
    e->hca_objects = src[i].hca_objects;
    v[i] = e;
  }
  return v;
}

static void convert(arena_t *a, const hcsb_metrics_t *in, V1(Metrics) * m) {
  size_t i;

  if (in->nhugetlb > 0) {
    m->hugetlb = arena_alloc(a, in->nhugetlb * sizeof(*m->hugetlb));
    for (i = 0; m->hugetlb != NULL && i < in->nhugetlb; i++) {
      V1(HugetlbStat) *h = arena_alloc(a, sizeof(*h)),
                      init = V1INIT(HUGETLB_STAT);
      if (h == NULL) return;
      *h = init;
      h->usage = in->hugetlb[i].usage;
      h->max = in->hugetlb[i].max;
      h->failcnt = in->hugetlb[i].failcnt;
      h->pagesize = str(in->hugetlb[i].pagesize);
      m->hugetlb[i] = h;
    }
    m->n_hugetlb = m->hugetlb != NULL ? in->nhugetlb : 0;
  }
  if (in->has_pids) {
    V1(PidsStat) *p = arena_alloc(a, sizeof(*p)), init = V1INIT(PIDS_STAT);
    if (p == NULL) return;
    *p = init;
    p->current = in->pids.current;
    p->limit = in->pids.limit;
    m->pids = p;
  }
  if (in->has_cpu) {
    V1(CPUStat) *c = arena_alloc(a, sizeof(*c)), cinit = V1INIT(CPUSTAT);
    V1(CPUUsage) *u = arena_alloc(a, sizeof(*u)), uinit = V1INIT(CPUUSAGE);
    V1(Throttle) *t = arena_alloc(a, sizeof(*t)), tinit = V1INIT(THROTTLE);
    if (c == NULL || u == NULL || t == NULL) return;
    *c = cinit;
    *u = uinit;
    *t = tinit;
    u->total = in->cpu.usage.total;
    u->kernel = in->cpu.usage.kernel;
    u->user = in->cpu.usage.user;
    if (in->cpu.usage.nper_cpu > 0) {
      u->per_cpu = arena_alloc(a, in->cpu.usage.nper_cpu * sizeof(*u->per_cpu));
      if (u->per_cpu == NULL) return;
      memcpy(u->per_cpu, in->cpu.usage.per_cpu,
             in->cpu.usage.nper_cpu * sizeof(*u->per_cpu));
      u->n_per_cpu = in->cpu.usage.nper_cpu;
    }
    t->periods = in->cpu.throttling.periods;
    t->throttled_periods = in->cpu.throttling.throttled_periods;
    t->throttled_time = in->cpu.throttling.throttled_time;
    c->usage = u;
    c->throttling = t;
    m->cpu = c;
  }
  if (in->has_memory) m->memory = memory(a, &in->memory);
  if (in->has_blkio) m->blkio = blkio(a, &in->blkio);
  if (in->has_rdma) {
    V1(RdmaStat) *r = arena_alloc(a, sizeof(*r)), init = V1INIT(RDMA_STAT);
    if (r == NULL) return;
    *r = init;
    r->current = rdma_list(a, in->rdma.current, in->rdma.ncurrent);
    r->n_current = r->current != NULL ? in->rdma.ncurrent : 0;
    r->limit = rdma_list(a, in->rdma.limit, in->rdma.nlimit);
    r->n_limit = r->limit != NULL ? in->rdma.nlimit : 0;
    m->rdma = r;
  }
  if (in->nnetwork > 0) {
    m->network = arena_alloc(a, in->nnetwork * sizeof(*m->network));
    for (i = 0; m->network != NULL && i < in->nnetwork; i++) {
      const hcsb_network_stat_t *s = &in->network[i];
      V1(NetworkStat) *n = arena_alloc(a, sizeof(*n)),
                      init = V1INIT(NETWORK_STAT);
      if (n == NULL) return;
      *n = init;
      n->name = str(s->name);
      n->rx_bytes = s->rx_bytes;
      n->rx_packets = s->rx_packets;
      n->rx_errors = s->rx_errors;
      n->rx_dropped = s->rx_dropped;
      n->tx_bytes = s->tx_bytes;
      n->tx_packets = s->tx_packets;
      n->tx_errors = s->tx_errors;
      n->tx_dropped = s->tx_dropped;
      m->network[i] = n;
    }
    m->n_network = m->network != NULL ? in->nnetwork : 0;
  }
  if (in->has_cgroup_stats) {
    V1(CgroupStats) *c = arena_alloc(a, sizeof(*c)),
                    init = V1INIT(CGROUP_STATS);
    if (c == NULL) return;
    *c = init;
    c->nr_sleeping = in->cgroup_stats.nr_sleeping;
    c->nr_running = in->cgroup_stats.nr_running;
    c->nr_stopped = in->cgroup_stats.nr_stopped;
    c->nr_uninterruptible = in->cgroup_stats.nr_uninterruptible;
    c->nr_io_wait = in->cgroup_stats.nr_io_wait;
    m->cgroup_stats = c;
  }
  if (in->has_memory_oom_control) {
    V1(MemoryOomControl) *o = arena_alloc(a, sizeof(*o)),
                         init = V1INIT(MEMORY_OOM_CONTROL);
    if (o == NULL) return;
    *o = init;
    o->oom_kill_disable = in->memory_oom_control.oom_kill_disable;
    o->under_oom = in->memory_oom_control.under_oom;
    o->oom_kill = in->memory_oom_control.oom_kill;
    m->memory_oom_control = o;
  }
}

int hcsb__cgmetrics_pack(const hcsb_metrics_t *in, uint8_t **out, size_t *len) {
  V1(Metrics) m = V1INIT(METRICS);
  arena_t a;
  size_t n;

  *out = NULL;
  *len = 0;
  memset(&a, 0, sizeof(a));
  if (in != NULL) convert(&a, in, &m);
  if (a.failed) {
    arena_free(&a);
    return -ENOMEM;
  }
  n = protobuf_c_message_get_packed_size(&m.base);
  *out = malloc(n ? n : 1);
  if (*out == NULL) {
    arena_free(&a);
    return -ENOMEM;
  }
  *len = protobuf_c_message_pack(&m.base, *out);
  arena_free(&a);
  return 0;
}
