/* hcsbctl's typed statistics (src/tools/hcsbctl-stats.c): every group of
 * hcsb_metrics_t, as lines and as JSON that parses back to the values. */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "tools/hcsbctl.h"

/* hcsbctl-util.c's option parser reports through this; not used here. */
int ctl_usage_error(ctl_t *ctl, const char *cmd, const char *fmt, ...) {
  (void)ctl, (void)cmd, (void)fmt;
  abort();
}

static const uint64_t per_cpu[] = {11, 22};
static const hcsb_blkio_entry_t reads[] = {{"Read", "", 8, 0, 4096},
                                           {"Write", "sda", 8, 0, 512}};
static const hcsb_hugetlb_stat_t huge[] = {{1, 2, 3, "2MB"}};
static const hcsb_network_stat_t nics[] = {
    {"eth\"0", 100, 2, 0, 1, 200, 3, 0, 0}};
static const hcsb_rdma_entry_t rdma[] = {{"mlx5_0", 4, 5}};

static void fill(hcsb_metrics_t *m) {
  memset(m, 0, sizeof *m);
  m->has_cpu = m->has_memory = m->has_pids = m->has_blkio = m->has_rdma =
      m->has_cgroup_stats = m->has_memory_oom_control = 1;
  m->cpu.usage.total = 1000;
  m->cpu.usage.kernel = 300;
  m->cpu.usage.user = 700;
  m->cpu.usage.per_cpu = per_cpu;
  m->cpu.usage.nper_cpu = 2;
  m->cpu.throttling.throttled_time = 9;
  m->memory.total_rss = 777;
  m->memory.pg_maj_fault = 5;
  m->memory.usage.limit = 1ull << 40;
  m->memory.kernel_tcp.failcnt = 6;
  m->memory_oom_control.oom_kill = 1;
  m->pids.current = 3;
  m->pids.limit = 64;
  m->blkio.io_service_bytes_recursive.entries = reads;
  m->blkio.io_service_bytes_recursive.n = 2;
  m->hugetlb = huge;
  m->nhugetlb = 1;
  m->network = nics;
  m->nnetwork = 1;
  m->rdma.current = rdma;
  m->rdma.ncurrent = 1;
  m->cgroup_stats.nr_running = 2;
  m->dropped = 4;
}

#define HAS(text, s)               \
  if (strstr((text), (s)) == NULL) \
  hcsb_test_fail(__FILE__, __LINE__, "no \"%s\" in:\n%s", (s), (text))

static void test_stats_lines(void) {
  hcsb_metrics_t m;
  ctl_buf_t b = {0};
  fill(&m);
  ctl_format_metrics(&b, &m, 0);
  ctl_buf_append(&b, "", 1);
  HAS(b.data, "cpu.usage.total 1000\n");
  HAS(b.data, "cpu.usage.per_cpu.1 22\n");
  HAS(b.data, "cpu.throttling.throttled_time 9\n");
  HAS(b.data, "memory.total_rss 777\n");
  HAS(b.data, "memory.pg_maj_fault 5\n");
  HAS(b.data, "memory.usage.limit 1099511627776\n");
  HAS(b.data, "memory.kernel_tcp.failcnt 6\n");
  HAS(b.data, "memory_oom_control.oom_kill 1\n");
  HAS(b.data, "pids.current 3\npids.limit 64\n");
  HAS(b.data, "blkio.io_service_bytes_recursive Read 8:0 4096\n");
  HAS(b.data, "blkio.io_service_bytes_recursive Write 8:0 512\n");
  HAS(b.data, "hugetlb.2MB.max 2\n");
  HAS(b.data, "network.eth\"0.tx_bytes 200\n");
  HAS(b.data, "rdma.current mlx5_0 hca_handles 4 hca_objects 5\n");
  HAS(b.data, "cgroup_stats.nr_running 2\n");
  HAS(b.data, "dropped 4\n");
  ctl_buf_free(&b);
}

static uint64_t at(json_object *o, const char *path) {
  char buf[128], *save = NULL;
  snprintf(buf, sizeof buf, "%s", path);
  for (char *k = strtok_r(buf, "/", &save); k; k = strtok_r(NULL, "/", &save)) {
    json_object *v = NULL;
    if (json_object_is_type(o, json_type_array))
      v = json_object_array_get_idx(o, (size_t)atoi(k));
    else if (!json_object_object_get_ex(o, k, &v))
      hcsb_test_fail(__FILE__, __LINE__, "no %s in %s", k, path);
    o = v;
  }
  return (uint64_t)json_object_get_int64(o);
}

static void test_stats_json(void) {
  hcsb_metrics_t m;
  ctl_buf_t b = {0};
  json_object *o;
  fill(&m);
  ctl_format_metrics(&b, &m, 1);
  ctl_buf_append(&b, "", 1);
  o = json_tokener_parse(b.data);
  if (o == NULL) hcsb_test_fail(__FILE__, __LINE__, "not JSON: %s", b.data);
  CHECK_U64(at(o, "cpu/usage/total"), 1000);
  CHECK_U64(at(o, "cpu/usage/per_cpu/1"), 22);
  CHECK_U64(at(o, "memory/total_rss"), 777);
  CHECK_U64(at(o, "memory/usage/limit"), 1ull << 40);
  CHECK_U64(at(o, "memory/kernel_tcp/failcnt"), 6);
  CHECK_U64(at(o, "memory_oom_control/oom_kill"), 1);
  CHECK_U64(at(o, "pids/limit"), 64);
  CHECK_U64(at(o, "blkio/io_service_bytes_recursive/1/value"), 512);
  CHECK_U64(at(o, "hugetlb/2MB/failcnt"), 3);
  CHECK_U64(at(o, "network/eth\"0/rx_dropped"), 1);
  CHECK_U64(at(o, "rdma/current/0/hca_objects"), 5);
  CHECK_U64(at(o, "cgroup_stats/nr_running"), 2);
  CHECK_U64(at(o, "dropped"), 4);
  json_object_put(o);
  ctl_buf_free(&b);
  /* Nothing sent: an empty object. */
  memset(&m, 0, sizeof m);
  memset(&b, 0, sizeof b);
  ctl_format_metrics(&b, &m, 1);
  ctl_buf_append(&b, "", 1);
  CHECK_STR(b.data, "{}");
  ctl_buf_free(&b);
}

static const hcsb_test_t tests[] = {TEST_ENTRY(stats_lines),
                                    TEST_ENTRY(stats_json)};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
