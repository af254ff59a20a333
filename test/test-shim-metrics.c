/* Stats: the library's typed metrics packed as containerd's cgroups v1
 * Metrics (cgmetrics.c) and read back with protobuf-c, field by field. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "shim/cgmetrics.h"

#define V1(name) Io__Containerd__Cgroups__V1__##name

static V1(Metrics) * roundtrip(const hcsb_metrics_t *in) {
  uint8_t *bytes = NULL;
  size_t len = 0;
  V1(Metrics) * m;

  CHECK_EQ(hcsb__cgmetrics_pack(in, &bytes, &len), 0);
  m = io__containerd__cgroups__v1__metrics__unpack(NULL, len, bytes);
  free(bytes);
  CHECK(m != NULL);
  return m;
}

static void test_full(void) {
  static const uint64_t per_cpu[] = {11, 22, 33};
  static const hcsb_blkio_entry_t reads[] = {{"Read", "", 8, 0, 4096},
                                             {"Write", "vda", 8, 0, 512}};
  static const hcsb_hugetlb_stat_t huge[] = {{1, 2, 3, "2MB"}};
  static const hcsb_network_stat_t net[] = {
      {"eth0", 10, 20, 30, 40, 50, 60, 70, 80}};
  static const hcsb_rdma_entry_t rdma[] = {{"mlx", 5, 6}};
  hcsb_metrics_t in;
  V1(Metrics) * m;

  memset(&in, 0, sizeof(in));
  in.has_pids = in.has_cpu = in.has_memory = in.has_blkio = 1;
  in.has_rdma = in.has_cgroup_stats = in.has_memory_oom_control = 1;
  in.pids.current = 7;
  in.pids.limit = 100;
  in.cpu.usage.total = 123456789;
  in.cpu.usage.kernel = 1000;
  in.cpu.usage.user = 2000;
  in.cpu.usage.nper_cpu = 3;
  in.cpu.usage.per_cpu = per_cpu;
  in.cpu.throttling.periods = 4;
  in.cpu.throttling.throttled_periods = 3;
  in.cpu.throttling.throttled_time = 99;
  in.memory.cache = 4096;
  in.memory.rss = 8192;
  in.memory.total_unevictable = 77;
  in.memory.hierarchical_memory_limit = 1u << 30;
  in.memory.usage.usage = 573440;
  in.memory.usage.limit = 16777216;
  in.memory.usage.max = 600000;
  in.memory.usage.failcnt = 2;
  in.memory.swap.usage = 9;
  in.memory.kernel.usage = 10;
  in.memory.kernel_tcp.limit = 11;
  in.blkio.io_service_bytes_recursive.n = 2;
  in.blkio.io_service_bytes_recursive.entries = reads;
  in.blkio.sectors_recursive.n = 1;
  in.blkio.sectors_recursive.entries = reads;
  in.nhugetlb = 1;
  in.hugetlb = huge;
  in.nnetwork = 1;
  in.network = net;
  in.rdma.ncurrent = 1;
  in.rdma.current = rdma;
  in.cgroup_stats.nr_running = 3;
  in.cgroup_stats.nr_io_wait = 4;
  in.memory_oom_control.oom_kill = 5;
  in.memory_oom_control.under_oom = 1;

  m = roundtrip(&in);
  CHECK(m->pids != NULL);
  CHECK_U64(m->pids->current, 7);
  CHECK_U64(m->pids->limit, 100);
  CHECK(m->cpu != NULL && m->cpu->usage != NULL && m->cpu->throttling != NULL);
  CHECK_U64(m->cpu->usage->total, 123456789);
  CHECK_U64(m->cpu->usage->kernel, 1000);
  CHECK_U64(m->cpu->usage->user, 2000);
  CHECK_EQ(m->cpu->usage->n_per_cpu, 3);
  CHECK_U64(m->cpu->usage->per_cpu[2], 33);
  CHECK_U64(m->cpu->throttling->throttled_time, 99);
  CHECK(m->memory != NULL);
  CHECK_U64(m->memory->cache, 4096);
  CHECK_U64(m->memory->rss, 8192);
  CHECK_U64(m->memory->total_unevictable, 77);
  CHECK_U64(m->memory->hierarchical_memory_limit, 1u << 30);
  CHECK(m->memory->usage != NULL && m->memory->swap != NULL &&
        m->memory->kernel != NULL && m->memory->kernel_tcp != NULL);
  CHECK_U64(m->memory->usage->usage, 573440);
  CHECK_U64(m->memory->usage->limit, 16777216);
  CHECK_U64(m->memory->usage->max, 600000);
  CHECK_U64(m->memory->usage->failcnt, 2);
  CHECK_U64(m->memory->swap->usage, 9);
  CHECK_U64(m->memory->kernel->usage, 10);
  CHECK_U64(m->memory->kernel_tcp->limit, 11);
  CHECK(m->blkio != NULL);
  CHECK_EQ(m->blkio->n_io_service_bytes_recursive, 2);
  CHECK_STR(m->blkio->io_service_bytes_recursive[0]->op, "Read");
  CHECK_STR(m->blkio->io_service_bytes_recursive[1]->device, "vda");
  CHECK_U64(m->blkio->io_service_bytes_recursive[1]->value, 512);
  CHECK_U64(m->blkio->io_service_bytes_recursive[0]->major, 8);
  CHECK_EQ(m->blkio->n_sectors_recursive, 1);
  CHECK_EQ(m->blkio->n_io_serviced_recursive, 0);
  CHECK_EQ(m->n_hugetlb, 1);
  CHECK_STR(m->hugetlb[0]->pagesize, "2MB");
  CHECK_U64(m->hugetlb[0]->failcnt, 3);
  CHECK_EQ(m->n_network, 1);
  CHECK_STR(m->network[0]->name, "eth0");
  CHECK_U64(m->network[0]->tx_dropped, 80);
  CHECK(m->rdma != NULL);
  CHECK_EQ(m->rdma->n_current, 1);
  CHECK_EQ(m->rdma->n_limit, 0);
  CHECK_STR(m->rdma->current[0]->device, "mlx");
  CHECK_EQ(m->rdma->current[0]->hca_objects, 6);
  CHECK(m->cgroup_stats != NULL);
  CHECK_U64(m->cgroup_stats->nr_running, 3);
  CHECK_U64(m->cgroup_stats->nr_io_wait, 4);
  CHECK(m->memory_oom_control != NULL);
  CHECK_U64(m->memory_oom_control->oom_kill, 5);
  CHECK_U64(m->memory_oom_control->under_oom, 1);
  io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
}

/* Groups the guest did not send stay unset (not zero-filled objects). */
static void test_absent_groups(void) {
  hcsb_metrics_t in;
  V1(Metrics) * m;

  memset(&in, 0, sizeof(in));
  in.has_memory = 1;
  in.memory.usage.usage = 1;
  m = roundtrip(&in);
  CHECK(m->memory != NULL);
  CHECK(m->cpu == NULL);
  CHECK(m->pids == NULL);
  CHECK(m->blkio == NULL);
  CHECK(m->rdma == NULL);
  CHECK(m->cgroup_stats == NULL);
  CHECK(m->memory_oom_control == NULL);
  CHECK_EQ(m->n_hugetlb, 0);
  CHECK_EQ(m->n_network, 0);
  io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
  /* No metrics at all: an empty message. */
  m = roundtrip(NULL);
  CHECK(m->memory == NULL && m->cpu == NULL);
  io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(full),
      TEST_ENTRY(absent_groups),
  };
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
