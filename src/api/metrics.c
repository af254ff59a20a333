/* LCOWMetrics (containerd's cgroup v1 Metrics as Go marshals it) decoded
 * into hcsbridge/metrics.h's structs, in place, like props.c's process
 * list.  Field tables carry the exact JSON names; arrays live in buffers
 * the container keeps (hcsb__mstore_t), grown up to their caps and reused,
 * so a warm call allocates nothing.  Strings are unescaped into the
 * container's string buffer, which props.c sized for the whole text. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api/jscan.h"

typedef struct dec_s dec_t;
typedef int (*fld_fn)(dec_t *d, cur_t *c, void *at);

/* A member of an object: a uint64 at `off` when fn is NULL. */
typedef struct fld_s {
  const char *name;
  size_t off;
  fld_fn fn;
} fld_t;

enum {
  A_PER_CPU,
  A_BLKIO, /* + 0..7, in hcsb_blkio_stat_t's order */
  A_HUGETLB = A_BLKIO + 8,
  A_NETWORK,
  A_RDMA_CURRENT,
  A_RDMA_LIMIT,
  A_COUNT
};

typedef struct arr_s {
  char *p;
  size_t n, cap, dropped;
} arr_t;

struct hcsb__mstore_s {
  hcsb_metrics_t m;
  arr_t a[A_COUNT];
};

struct dec_s {
  hcsb__mstore_t *ms;
  hcsb__buf_t *strings;
  /* The summary's blkio sums over every entry (kept or dropped) of
   * io_service_bytes_recursive and io_serviced_recursive: [list][write]. */
  uint64_t sums[2][2];
};

#define NF(t) (sizeof(t) / sizeof((t)[0]))
#define U(type, f) \
  { #f, offsetof(type, f), NULL }

static int obj(dec_t *d, cur_t *c, void *base, const fld_t *f, size_t nf,
               int *present) {
  const char *k;
  size_t kn, i;
  int first = 1, r;

  if ((r = open_(c, '{')) != 0) return r < 0 ? r : 0;
  if (present != NULL) *present = 1;
  while ((r = member(c, &first, &k, &kn)) == 1) {
    for (i = 0; i < nf; i++)
      if (key_is(k, kn, f[i].name)) break;
    if (i == nf)
      r = skip(c);
    else if (f[i].fn == NULL)
      r = read_u64(c, (uint64_t *)(void *)((char *)base + f[i].off));
    else
      r = f[i].fn(d, c, (char *)base + f[i].off);
    if (r != 0) return r;
  }
  return r;
}

static int f_str(dec_t *d, cur_t *c, void *at) {
  const char *s;
  size_t n;
  char *o;

  if (is_null(c)) return 0;
  if (str_span(c, &s, &n) != 0) return -EPROTO;
  /* Room was reserved for the whole text up front (no moves). */
  o = d->strings->data + d->strings->len;
  d->strings->len += unescape(s, n, o) + 1;
  *(const char **)at = o;
  return 0;
}

static int f_u32(dec_t *d, cur_t *c, void *at) {
  (void)d;
  return read_u32(c, at);
}

/* ------------------------------------------------------------------------ */
/* Arrays */

typedef struct kind_s {
  size_t size, cap;
  const fld_t *f; /* NULL: an array of numbers */
  size_t nf;
  size_t str_off[2]; /* string members defaulting to "" (0 = none) */
} kind_t;

static const fld_t blkio_entry_f[] = {
    {"op", offsetof(hcsb_blkio_entry_t, op), f_str},
    {"device", offsetof(hcsb_blkio_entry_t, device), f_str},
    U(hcsb_blkio_entry_t, major),
    U(hcsb_blkio_entry_t, minor),
    U(hcsb_blkio_entry_t, value)};
static const fld_t hugetlb_f[] = {
    U(hcsb_hugetlb_stat_t, usage),
    U(hcsb_hugetlb_stat_t, max),
    U(hcsb_hugetlb_stat_t, failcnt),
    {"pagesize", offsetof(hcsb_hugetlb_stat_t, pagesize), f_str}};
static const fld_t network_f[] = {
    {"name", offsetof(hcsb_network_stat_t, name), f_str},
    U(hcsb_network_stat_t, rx_bytes),
    U(hcsb_network_stat_t, rx_packets),
    U(hcsb_network_stat_t, rx_errors),
    U(hcsb_network_stat_t, rx_dropped),
    U(hcsb_network_stat_t, tx_bytes),
    U(hcsb_network_stat_t, tx_packets),
    U(hcsb_network_stat_t, tx_errors),
    U(hcsb_network_stat_t, tx_dropped)};
static const fld_t rdma_f[] = {
    {"device", offsetof(hcsb_rdma_entry_t, device), f_str},
    {"hca_handles", offsetof(hcsb_rdma_entry_t, hca_handles), f_u32},
    {"hca_objects", offsetof(hcsb_rdma_entry_t, hca_objects), f_u32}};

/* str_off: where string members that read "" when absent sit, plus one
 * (0 = none). */
static const kind_t per_cpu_k = {
    sizeof(uint64_t), HCSB_METRICS_MAX_CPUS, NULL, 0, {0, 0}};
static const kind_t blkio_k = {sizeof(hcsb_blkio_entry_t),
                               HCSB_METRICS_MAX_BLKIO,
                               blkio_entry_f,
                               NF(blkio_entry_f),
                               {offsetof(hcsb_blkio_entry_t, op) + 1,
                                offsetof(hcsb_blkio_entry_t, device) + 1}};
static const kind_t hugetlb_k = {
    sizeof(hcsb_hugetlb_stat_t),
    HCSB_METRICS_MAX_HUGETLB,
    hugetlb_f,
    NF(hugetlb_f),
    {offsetof(hcsb_hugetlb_stat_t, pagesize) + 1, 0}};
static const kind_t network_k = {sizeof(hcsb_network_stat_t),
                                 HCSB_METRICS_MAX_NETWORK,
                                 network_f,
                                 NF(network_f),
                                 {offsetof(hcsb_network_stat_t, name) + 1, 0}};
static const kind_t rdma_k = {sizeof(hcsb_rdma_entry_t),
                              HCSB_METRICS_MAX_RDMA,
                              rdma_f,
                              NF(rdma_f),
                              {offsetof(hcsb_rdma_entry_t, device) + 1, 0}};

/* The slot for the next element: in the array while under the cap, else
 * `scratch` (the element is checked, then counted as dropped). */
static void *slot(arr_t *a, const kind_t *k, void *scratch) {
  size_t i;
  char *e;

  if (a->n == k->cap) {
    a->dropped++;
    e = scratch;
  } else {
    if (a->n == a->cap) {
      size_t cap = a->cap != 0 ? 2 * a->cap : 8;
      char *grown;
      if (cap > k->cap) cap = k->cap;
      grown = realloc(a->p, cap * k->size);
      if (grown == NULL) return NULL;
      a->p = grown;
      a->cap = cap;
    }
    e = a->p + a->n++ * k->size;
  }
  memset(e, 0, k->size);
  for (i = 0; i < 2; i++)
    if (k->str_off[i] != 0)
      *(const char **)(void *)(e + k->str_off[i] - 1) = "";
  return e;
}

static int blkio_sum(dec_t *d, int list, const hcsb_blkio_entry_t *e) {
  uint64_t *sum;

  if (key_is(e->op, strlen(e->op), "Read"))
    sum = &d->sums[list][0];
  else if (key_is(e->op, strlen(e->op), "Write"))
    sum = &d->sums[list][1];
  else
    return 0;
  /* A total that does not fit is as unusable as a value that does not:
   * never report a wrapped-around count. */
  if (e->value > UINT64_MAX - *sum) return -EPROTO;
  *sum += e->value;
  return 0;
}

static int arr(dec_t *d, cur_t *c, int which, const kind_t *k) {
  arr_t *a = &d->ms->a[which];
  union {
    uint64_t u;
    hcsb_blkio_entry_t b;
    hcsb_hugetlb_stat_t h;
    hcsb_network_stat_t n;
    hcsb_rdma_entry_t r;
  } scratch;
  int first = 1, r;

  /* The last occurrence of a key wins, as in Go. */
  a->n = 0;
  a->dropped = 0;
  if (which == A_BLKIO || which == A_BLKIO + 1)
    memset(d->sums[which - A_BLKIO], 0, sizeof d->sums[0]);
  if ((r = open_(c, '[')) != 0) return r < 0 ? r : 0;
  while ((r = element(c, &first)) == 1) {
    void *e;
    if (k->f != NULL && is_null(c)) continue;
    e = slot(a, k, &scratch);
    if (e == NULL) return -ENOMEM;
    if (k->f == NULL) {
      r = read_u64(c, e);
    } else {
      if (peek(c) != '{') return -EPROTO;
      r = obj(d, c, e, k->f, k->nf, NULL);
      if (r == 0 && (which == A_BLKIO || which == A_BLKIO + 1))
        r = blkio_sum(d, which - A_BLKIO, e);
    }
    if (r != 0) return r;
  }
  return r;
}

static int f_per_cpu(dec_t *d, cur_t *c, void *at) {
  (void)at;
  return arr(d, c, A_PER_CPU, &per_cpu_k);
}

#define BLKIO_FN(i)                                     \
  static int f_blkio##i(dec_t *d, cur_t *c, void *at) { \
    (void)at;                                           \
    return arr(d, c, A_BLKIO + (i), &blkio_k);          \
  }
BLKIO_FN(0)
BLKIO_FN(1)
BLKIO_FN(2)
BLKIO_FN(3)
BLKIO_FN(4)
BLKIO_FN(5)
BLKIO_FN(6)
BLKIO_FN(7)

static int f_hugetlb(dec_t *d, cur_t *c, void *at) {
  (void)at;
  return arr(d, c, A_HUGETLB, &hugetlb_k);
}

static int f_network(dec_t *d, cur_t *c, void *at) {
  (void)at;
  return arr(d, c, A_NETWORK, &network_k);
}

static int f_rdma_current(dec_t *d, cur_t *c, void *at) {
  (void)at;
  return arr(d, c, A_RDMA_CURRENT, &rdma_k);
}

static int f_rdma_limit(dec_t *d, cur_t *c, void *at) {
  (void)at;
  return arr(d, c, A_RDMA_LIMIT, &rdma_k);
}

/* ------------------------------------------------------------------------ */
/* Objects */

static const fld_t cpu_usage_f[] = {U(hcsb_cpu_usage_t, total),
                                    U(hcsb_cpu_usage_t, kernel),
                                    U(hcsb_cpu_usage_t, user),
                                    {"per_cpu", 0, f_per_cpu}};
static const fld_t throttle_f[] = {U(hcsb_cpu_throttle_t, periods),
                                   U(hcsb_cpu_throttle_t, throttled_periods),
                                   U(hcsb_cpu_throttle_t, throttled_time)};
static const fld_t entry_f[] = {
    U(hcsb_memory_entry_t, limit), U(hcsb_memory_entry_t, usage),
    U(hcsb_memory_entry_t, max), U(hcsb_memory_entry_t, failcnt)};

static int f_cpu_usage(dec_t *d, cur_t *c, void *at) {
  return obj(d, c, at, cpu_usage_f, NF(cpu_usage_f), NULL);
}

static int f_throttle(dec_t *d, cur_t *c, void *at) {
  return obj(d, c, at, throttle_f, NF(throttle_f), NULL);
}

static int f_entry(dec_t *d, cur_t *c, void *at) {
  return obj(d, c, at, entry_f, NF(entry_f), NULL);
}

static const fld_t cpu_f[] = {
    {"usage", offsetof(hcsb_cpu_stat_t, usage), f_cpu_usage},
    {"throttling", offsetof(hcsb_cpu_stat_t, throttling), f_throttle}};

#define M(f) U(hcsb_memory_stat_t, f)
#define E(f) \
  { #f, offsetof(hcsb_memory_stat_t, f), f_entry }
static const fld_t memory_f[] = {M(cache),
                                 M(rss),
                                 M(rss_huge),
                                 M(mapped_file),
                                 M(dirty),
                                 M(writeback),
                                 M(pg_pg_in),
                                 M(pg_pg_out),
                                 M(pg_fault),
                                 M(pg_maj_fault),
                                 M(inactive_anon),
                                 M(active_anon),
                                 M(inactive_file),
                                 M(active_file),
                                 M(unevictable),
                                 M(hierarchical_memory_limit),
                                 M(hierarchical_swap_limit),
                                 M(total_cache),
                                 M(total_rss),
                                 M(total_rss_huge),
                                 M(total_mapped_file),
                                 M(total_dirty),
                                 M(total_writeback),
                                 M(total_pg_pg_in),
                                 M(total_pg_pg_out),
                                 M(total_pg_fault),
                                 M(total_pg_maj_fault),
                                 M(total_inactive_anon),
                                 M(total_active_anon),
                                 M(total_inactive_file),
                                 M(total_active_file),
                                 M(total_unevictable),
                                 E(usage),
                                 E(swap),
                                 E(kernel),
                                 E(kernel_tcp)};

static const fld_t blkio_f[] = {{"io_service_bytes_recursive", 0, f_blkio0},
                                {"io_serviced_recursive", 0, f_blkio1},
                                {"io_queued_recursive", 0, f_blkio2},
                                {"io_service_time_recursive", 0, f_blkio3},
                                {"io_wait_time_recursive", 0, f_blkio4},
                                {"io_merged_recursive", 0, f_blkio5},
                                {"io_time_recursive", 0, f_blkio6},
                                {"sectors_recursive", 0, f_blkio7}};
static const fld_t rdma_stat_f[] = {{"current", 0, f_rdma_current},
                                    {"limit", 0, f_rdma_limit}};
static const fld_t pids_f[] = {U(hcsb_pids_stat_t, current),
                               U(hcsb_pids_stat_t, limit)};
static const fld_t cgroup_f[] = {U(hcsb_cgroup_stats_t, nr_sleeping),
                                 U(hcsb_cgroup_stats_t, nr_running),
                                 U(hcsb_cgroup_stats_t, nr_stopped),
                                 U(hcsb_cgroup_stats_t, nr_uninterruptible),
                                 U(hcsb_cgroup_stats_t, nr_io_wait)};
static const fld_t oom_f[] = {U(hcsb_memory_oom_control_t, oom_kill_disable),
                              U(hcsb_memory_oom_control_t, under_oom),
                              U(hcsb_memory_oom_control_t, oom_kill)};

#define SUB(name, fields, flag)                               \
  static int f_##name(dec_t *d, cur_t *c, void *at) {         \
    return obj(d, c, at, fields, NF(fields), &d->ms->m.flag); \
  }
SUB(pids, pids_f, has_pids)
SUB(cpu, cpu_f, has_cpu)
SUB(memory, memory_f, has_memory)
SUB(blkio, blkio_f, has_blkio)
SUB(rdma, rdma_stat_f, has_rdma)
SUB(cgroup_stats, cgroup_f, has_cgroup_stats)
SUB(oom, oom_f, has_memory_oom_control)

static const fld_t metrics_f[] = {
    {"hugetlb", 0, f_hugetlb},
    {"pids", offsetof(hcsb_metrics_t, pids), f_pids},
    {"cpu", offsetof(hcsb_metrics_t, cpu), f_cpu},
    {"memory", offsetof(hcsb_metrics_t, memory), f_memory},
    {"blkio", offsetof(hcsb_metrics_t, blkio), f_blkio},
    {"rdma", offsetof(hcsb_metrics_t, rdma), f_rdma},
    {"network", 0, f_network},
    {"cgroup_stats", offsetof(hcsb_metrics_t, cgroup_stats), f_cgroup_stats},
    {"memory_oom_control", offsetof(hcsb_metrics_t, memory_oom_control),
     f_oom}};

/* ------------------------------------------------------------------------ */

static void finish(hcsb__mstore_t *ms) {
  hcsb_metrics_t *m = &ms->m;
  hcsb_blkio_list_t *lists = &m->blkio.io_service_bytes_recursive;
  size_t i;

  m->cpu.usage.per_cpu = (const uint64_t *)(void *)ms->a[A_PER_CPU].p;
  m->cpu.usage.nper_cpu = ms->a[A_PER_CPU].n;
  for (i = 0; i < 8; i++) {
    lists[i].entries = (const hcsb_blkio_entry_t *)(void *)ms->a[A_BLKIO + i].p;
    lists[i].n = ms->a[A_BLKIO + i].n;
  }
  m->hugetlb = (const hcsb_hugetlb_stat_t *)(void *)ms->a[A_HUGETLB].p;
  m->nhugetlb = ms->a[A_HUGETLB].n;
  m->network = (const hcsb_network_stat_t *)(void *)ms->a[A_NETWORK].p;
  m->nnetwork = ms->a[A_NETWORK].n;
  m->rdma.current = (const hcsb_rdma_entry_t *)(void *)ms->a[A_RDMA_CURRENT].p;
  m->rdma.ncurrent = ms->a[A_RDMA_CURRENT].n;
  m->rdma.limit = (const hcsb_rdma_entry_t *)(void *)ms->a[A_RDMA_LIMIT].p;
  m->rdma.nlimit = ms->a[A_RDMA_LIMIT].n;
  m->dropped = 0;
  for (i = 0; i < A_COUNT; i++) m->dropped += ms->a[i].dropped;
}

/* hcsshim's flat Statistics summary, kept for existing callers. */
static void summarize(const hcsb_metrics_t *m, const dec_t *d,
                      hcsb_statistics_t *st) {
  st->has_cpu = m->has_cpu;
  st->cpu_total_ns = m->cpu.usage.total;
  st->cpu_user_ns = m->cpu.usage.user;
  st->cpu_kernel_ns = m->cpu.usage.kernel;
  st->cpu_throttled_periods = m->cpu.throttling.throttled_periods;
  st->cpu_throttled_time_ns = m->cpu.throttling.throttled_time;
  st->has_memory = m->has_memory;
  st->memory_usage_bytes = m->memory.usage.usage;
  st->memory_max_usage_bytes = m->memory.usage.max;
  st->memory_limit_bytes = m->memory.usage.limit;
  st->memory_cache_bytes = m->memory.cache;
  st->memory_rss_bytes = m->memory.rss;
  st->has_pids = m->has_pids;
  st->pids_current = m->pids.current;
  st->pids_limit = m->pids.limit;
  st->has_blkio = m->has_blkio;
  st->blkio_read_bytes = d->sums[0][0];
  st->blkio_write_bytes = d->sums[0][1];
  st->blkio_read_ops = d->sums[1][0];
  st->blkio_write_ops = d->sums[1][1];
}

int hcsb__metrics_decode(hcsb_container_t *ct, cur_t *c,
                         hcsb_properties_t *props) {
  hcsb__mstore_t *ms = ct->mstore;
  const char *start;
  dec_t d;
  size_t i;
  int r;

  if (is_null(c)) return 0;
  if (peek(c) != '{') return -EPROTO;
  if (ms == NULL) {
    ms = calloc(1, sizeof *ms);
    if (ms == NULL) return -ENOMEM;
    ct->mstore = ms;
  }
  memset(&ms->m, 0, sizeof ms->m);
  for (i = 0; i < A_COUNT; i++) ms->a[i].n = ms->a[i].dropped = 0;
  memset(&d, 0, sizeof d);
  d.ms = ms;
  d.strings = &ct->strings;
  start = c->p;
  r = obj(&d, c, &ms->m, metrics_f, NF(metrics_f), NULL);
  if (r != 0) return r;
  finish(ms);
  ms->m.json = start;
  ms->m.json_len = (size_t)(c->p - start);
  memset(&props->statistics, 0, sizeof props->statistics);
  summarize(&ms->m, &d, &props->statistics);
  props->has_statistics = 1;
  props->metrics = &ms->m;
  return 0;
}

void hcsb__mstore_free(hcsb__mstore_t *ms) {
  size_t i;

  if (ms == NULL) return;
  for (i = 0; i < A_COUNT; i++) free(ms->a[i].p);
  free(ms);
}
