/* hcsbridge — the guest's LCOWMetrics, typed.
 *
 * A Linux GCS answers GetProperties(Statistics) with containerd's cgroup v1
 * `Metrics` (github.com/containerd/cgroups stats/v1) marshalled by Go's
 * encoding/json: snake_case keys ("per_cpu", "total_rss",
 * "io_service_bytes_recursive", "kernel_tcp" ...), zero values omitted.
 * These structs mirror that message field for field, in its units (CPU
 * times in nanoseconds, memory in bytes); a field the guest left out reads
 * 0 (numbers) or "" (strings, never NULL).
 *
 * Everything a hcsb_metrics_t points to is owned by the library and valid
 * only during the callback that received it (hcsb_properties_t.metrics).
 *
 * Arrays come from the guest and are bounded: at most the HCSB_METRICS_MAX_*
 * elements below are kept per array, in the guest's order; the rest are
 * still checked (a wrong type anywhere fails the call with -EPROTO) and
 * counted in `dropped`, so dropped != 0 means "truncated".  null elements
 * of object arrays are skipped; null numbers read 0.  When a key occurs
 * twice the last one wins, as in Go. */
#ifndef HCSBRIDGE_METRICS_H
#define HCSBRIDGE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HCSB_METRICS_MAX_CPUS 1024u    /* cpu.usage.per_cpu */
#define HCSB_METRICS_MAX_BLKIO 4096u   /* each blkio list */
#define HCSB_METRICS_MAX_HUGETLB 64u   /* page sizes */
#define HCSB_METRICS_MAX_NETWORK 1024u /* interfaces */
#define HCSB_METRICS_MAX_RDMA 256u     /* each rdma list */

typedef struct hcsb_hugetlb_stat_s {
  uint64_t usage;
  uint64_t max;
  uint64_t failcnt;
  const char *pagesize; /* "2MB", "1GB" */
} hcsb_hugetlb_stat_t;

typedef struct hcsb_pids_stat_s {
  uint64_t current;
  uint64_t limit; /* 0: unlimited */
} hcsb_pids_stat_t;

typedef struct hcsb_cpu_usage_s {
  uint64_t total;  /* ns */
  uint64_t kernel; /* ns */
  uint64_t user;   /* ns */
  size_t nper_cpu;
  const uint64_t *per_cpu; /* ns per CPU, nper_cpu entries */
} hcsb_cpu_usage_t;

typedef struct hcsb_cpu_throttle_s {
  uint64_t periods;
  uint64_t throttled_periods;
  uint64_t throttled_time; /* ns */
} hcsb_cpu_throttle_t;

typedef struct hcsb_cpu_stat_s {
  hcsb_cpu_usage_t usage;
  hcsb_cpu_throttle_t throttling;
} hcsb_cpu_stat_t;

/* memory.{usage,memsw,kmem,kmem.tcp}.* of cgroup v1. */
typedef struct hcsb_memory_entry_s {
  uint64_t limit;
  uint64_t usage;
  uint64_t max;
  uint64_t failcnt;
} hcsb_memory_entry_t;

/* memory.stat counters (v1 names: pg_pg_in is "pgpgin"), then the entries. */
typedef struct hcsb_memory_stat_s {
  uint64_t cache, rss, rss_huge, mapped_file, dirty, writeback;
  uint64_t pg_pg_in, pg_pg_out, pg_fault, pg_maj_fault;
  uint64_t inactive_anon, active_anon, inactive_file, active_file;
  uint64_t unevictable;
  uint64_t hierarchical_memory_limit, hierarchical_swap_limit;
  uint64_t total_cache, total_rss, total_rss_huge, total_mapped_file;
  uint64_t total_dirty, total_writeback;
  uint64_t total_pg_pg_in, total_pg_pg_out, total_pg_fault, total_pg_maj_fault;
  uint64_t total_inactive_anon, total_active_anon, total_inactive_file;
  uint64_t total_active_file, total_unevictable;
  hcsb_memory_entry_t usage;      /* memory.* */
  hcsb_memory_entry_t swap;       /* memory.memsw.* (memory + swap) */
  hcsb_memory_entry_t kernel;     /* memory.kmem.* */
  hcsb_memory_entry_t kernel_tcp; /* memory.kmem.tcp.* */
} hcsb_memory_stat_t;

typedef struct hcsb_memory_oom_control_s {
  uint64_t oom_kill_disable;
  uint64_t under_oom;
  uint64_t oom_kill;
} hcsb_memory_oom_control_t;

typedef struct hcsb_blkio_entry_s {
  const char *op;     /* "Read", "Write", "Sync", "Async", "Discard", "Total" */
  const char *device; /* often "" */
  uint64_t major;
  uint64_t minor;
  uint64_t value;
} hcsb_blkio_entry_t;

typedef struct hcsb_blkio_list_s {
  size_t n;
  const hcsb_blkio_entry_t *entries;
} hcsb_blkio_list_t;

typedef struct hcsb_blkio_stat_s {
  hcsb_blkio_list_t io_service_bytes_recursive;
  hcsb_blkio_list_t io_serviced_recursive;
  hcsb_blkio_list_t io_queued_recursive;
  hcsb_blkio_list_t io_service_time_recursive;
  hcsb_blkio_list_t io_wait_time_recursive;
  hcsb_blkio_list_t io_merged_recursive;
  hcsb_blkio_list_t io_time_recursive;
  hcsb_blkio_list_t sectors_recursive;
} hcsb_blkio_stat_t;

typedef struct hcsb_rdma_entry_s {
  const char *device;
  uint32_t hca_handles;
  uint32_t hca_objects;
} hcsb_rdma_entry_t;

typedef struct hcsb_rdma_stat_s {
  size_t ncurrent;
  const hcsb_rdma_entry_t *current;
  size_t nlimit;
  const hcsb_rdma_entry_t *limit;
} hcsb_rdma_stat_t;

typedef struct hcsb_network_stat_s {
  const char *name;
  uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
  uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
} hcsb_network_stat_t;

typedef struct hcsb_cgroup_stats_s {
  uint64_t nr_sleeping;
  uint64_t nr_running;
  uint64_t nr_stopped;
  uint64_t nr_uninterruptible;
  uint64_t nr_io_wait;
} hcsb_cgroup_stats_t;

typedef struct hcsb_metrics_s {
  /* 1 when the guest sent that member as an object (not absent, not null).
   * The arrays need no flag: their counts say it. */
  int has_pids, has_cpu, has_memory, has_blkio, has_rdma, has_cgroup_stats,
      has_memory_oom_control;
  size_t nhugetlb;
  const hcsb_hugetlb_stat_t *hugetlb;
  hcsb_pids_stat_t pids;
  hcsb_cpu_stat_t cpu;
  hcsb_memory_stat_t memory;
  hcsb_blkio_stat_t blkio;
  hcsb_rdma_stat_t rdma;
  size_t nnetwork;
  const hcsb_network_stat_t *network;
  hcsb_cgroup_stats_t cgroup_stats;
  hcsb_memory_oom_control_t memory_oom_control;
  size_t dropped;   /* array elements over the caps, not kept */
  const char *json; /* the LCOWMetrics value's text, as the guest sent it */
  size_t json_len;
} hcsb_metrics_t;

#ifdef __cplusplus
}
#endif
#endif /* HCSBRIDGE_METRICS_H */
