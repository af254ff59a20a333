/* The emulator's cgroup readers (src/guest/cgroup.c) on made-up cgroup
 * directories: v1 files read under their own names, v2 files mapped onto
 * the v1 shape LCOWMetrics uses.  No real cgroup is touched. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest/guest.h"
#include "runner.h"

#define UNLIMITED 9223372036854771712ull

static void put(const char *dir, const char *name, const char *text) {
  char path[1024];
  FILE *f;

  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "w");
  CHECK(f != NULL);
  CHECK_EQ(fputs(text, f) >= 0, 1);
  CHECK_EQ(fclose(f), 0);
}

static const char *subdir(const char *name) {
  static char paths[6][1024];
  static int next;
  char *p = paths[next++ % 6];

  snprintf(p, sizeof paths[0], "%s/%s", hcsb_test_tmpdir(), name);
  CHECK_EQ(mkdir(p, 0755), 0);
  return p;
}

/* Memory counters by v1 name, for the assertions. */
enum {
  CACHE,
  RSS,
  RSS_HUGE,
  MAPPED,
  DIRTY,
  WRITEBACK,
  PGIN,
  PGOUT,
  PGFAULT,
  PGMAJ,
  IANON,
  AANON,
  IFILE,
  AFILE,
  UNEVICT,
  HLIMIT,
  HSWAP
};

static void test_v2_mapping(void) {
  const char *d = subdir("v2");
  hcsb__gcg_t cg;

  put(d, "cpu.stat",
      "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\n"
      "nr_throttled 3\nthrottled_usec 7\n");
  put(d, "memory.stat",
      "anon 4096\nfile 8192\nkernel 12288\nkernel_stack 1\nanon_thp 2097152\n"
      "file_mapped 100\nfile_dirty 200\nfile_writeback 300\ninactive_anon 11\n"
      "active_anon 12\ninactive_file 13\nactive_file 14\nunevictable 15\n"
      "sock 16\npgfault 17\npgmajfault 18\n");
  put(d, "memory.current", "65536\n");
  put(d, "memory.max", "max\n");
  put(d, "memory.peak", "131072\n");
  put(d, "memory.swap.current", "4096\n");
  put(d, "memory.swap.max", "1048576\n");
  put(d, "memory.events", "low 0\nhigh 0\nmax 5\noom 1\noom_kill 2\n");
  put(d, "pids.current", "3\n");
  put(d, "pids.max", "max\n");
  put(d, "io.stat",
      "8:0 rbytes=1024 wbytes=2048 rios=3 wios=4 dbytes=0 dios=0\n"
      "259:1 rbytes=5 wbytes=6 rios=7 wios=8 dbytes=0 dios=0\n");

  memset(&cg, 0, sizeof cg);
  hcsb__gcgroup_read_v2(&cg, d);
  CHECK_EQ(cg.have_cpu, 1);
  CHECK_U64(cg.cpu_total, 1500000);
  CHECK_U64(cg.cpu_user, 1000000);
  CHECK_U64(cg.cpu_kernel, 500000);
  CHECK_EQ(cg.ncpu, 0); /* v2 has no per-CPU usage */
  CHECK_U64(cg.periods, 10);
  CHECK_U64(cg.throttled_periods, 3);
  CHECK_U64(cg.throttled_time, 7000);

  CHECK_EQ(cg.have_mem, 1);
  CHECK_U64(cg.mem[CACHE], 8192);
  CHECK_U64(cg.mem[RSS], 4096);
  CHECK_U64(cg.mem[RSS_HUGE], 2097152);
  CHECK_U64(cg.mem[MAPPED], 100);
  CHECK_U64(cg.mem[DIRTY], 200);
  CHECK_U64(cg.mem[WRITEBACK], 300);
  CHECK_U64(cg.mem[PGIN], 0);
  CHECK_U64(cg.mem[PGFAULT], 17);
  CHECK_U64(cg.mem[PGMAJ], 18);
  CHECK_U64(cg.mem[IANON], 11);
  CHECK_U64(cg.mem[AANON], 12);
  CHECK_U64(cg.mem[IFILE], 13);
  CHECK_U64(cg.mem[AFILE], 14);
  CHECK_U64(cg.mem[UNEVICT], 15);
  CHECK_U64(cg.mem[HLIMIT], UNLIMITED);
  /* v2 counters are hierarchical: they are the totals too. */
  CHECK_U64(cg.total[RSS], 4096);
  CHECK_U64(cg.total[UNEVICT], 15);
  CHECK_U64(cg.entry[0][0], UNLIMITED); /* "max" */
  CHECK_U64(cg.entry[0][1], 65536);
  CHECK_U64(cg.entry[0][2], 131072);
  CHECK_U64(cg.entry[0][3], 5);
  CHECK_U64(cg.entry[1][0], 1048576);
  CHECK_U64(cg.entry[1][1], 65536 + 4096); /* v1's memsw: memory + swap */
  CHECK_U64(cg.entry[2][1], 12288);        /* "kernel", not kernel_stack */
  CHECK_U64(cg.entry[3][1], 16);
  CHECK_U64(cg.oom[2], 2);

  CHECK_EQ(cg.have_pids, 1);
  CHECK_U64(cg.pids_current, 3);
  CHECK_U64(cg.pids_limit, 0);

  CHECK_EQ(cg.have_blkio, 1);
  CHECK_EQ(cg.ndev, 2);
  CHECK_EQ(cg.dev[0].major, 8);
  CHECK_EQ(cg.dev[0].minor, 0);
  CHECK_U64(cg.dev[0].v[0][0], 1024);
  CHECK_U64(cg.dev[0].v[0][1], 2048);
  CHECK_U64(cg.dev[0].v[1][0], 3);
  CHECK_U64(cg.dev[0].v[1][1], 4);
  CHECK_EQ(cg.dev[1].major, 259);
  CHECK_U64(cg.dev[1].v[1][1], 8);
}

static void test_v1_names(void) {
  const char *dirs[6];
  long tick = sysconf(_SC_CLK_TCK);
  hcsb__gcg_t cg;

  dirs[0] = subdir("cpuacct");
  dirs[1] = subdir("cpu");
  dirs[2] = subdir("memory");
  dirs[3] = subdir("pids");
  dirs[4] = subdir("blkio");
  dirs[5] = NULL; /* no hugetlb hierarchy */
  put(dirs[0], "cpuacct.usage", "3000000000\n");
  put(dirs[0], "cpuacct.stat", "user 150\nsystem 50\n");
  put(dirs[0], "cpuacct.usage_percpu", "1000000000 2000000000 \n");
  put(dirs[1], "cpu.stat",
      "nr_periods 4\nnr_throttled 2\nthrottled_time 999\n");
  put(dirs[2], "memory.stat",
      "cache 1\nrss 2\nrss_huge 3\nshmem 99\nmapped_file 4\ndirty 5\n"
      "writeback 6\npgpgin 7\npgpgout 8\npgfault 9\npgmajfault 10\n"
      "inactive_anon 11\nactive_anon 12\ninactive_file 13\nactive_file 14\n"
      "unevictable 15\nhierarchical_memory_limit 16\n"
      "hierarchical_memsw_limit 17\ntotal_cache 101\ntotal_rss 102\n"
      "total_pgpgin 107\ntotal_unevictable 115\n");
  put(dirs[2], "memory.usage_in_bytes", "2000\n");
  put(dirs[2], "memory.limit_in_bytes", "9223372036854771712\n");
  put(dirs[2], "memory.max_usage_in_bytes", "3000\n");
  put(dirs[2], "memory.failcnt", "1\n");
  put(dirs[2], "memory.memsw.usage_in_bytes", "2100\n");
  put(dirs[2], "memory.kmem.usage_in_bytes", "400\n");
  put(dirs[2], "memory.kmem.tcp.limit_in_bytes", "500\n");
  put(dirs[2], "memory.oom_control",
      "oom_kill_disable 1\nunder_oom 0\noom_kill 6\n");
  put(dirs[3], "pids.current", "2\n");
  put(dirs[3], "pids.max", "100\n");
  put(dirs[4], "blkio.throttle.io_service_bytes_recursive",
      "8:0 Read 10\n8:0 Write 20\n8:0 Sync 30\n8:0 Total 30\nTotal 30\n");
  put(dirs[4], "blkio.throttle.io_serviced_recursive",
      "8:0 Read 1\n8:0 Write 2\nTotal 3\n");

  memset(&cg, 0, sizeof cg);
  hcsb__gcgroup_read_v1(&cg, dirs);
  if (tick <= 0) tick = 100;
  CHECK_EQ(cg.have_cpu, 1);
  CHECK_U64(cg.cpu_total, 3000000000ull);
  /* From cpuacct.stat's ticks, as containerd does. */
  CHECK_U64(cg.cpu_user, 150 * (1000000000ull / (uint64_t)tick));
  CHECK_U64(cg.cpu_kernel, 50 * (1000000000ull / (uint64_t)tick));
  CHECK_EQ(cg.ncpu, 2);
  CHECK_U64(cg.per_cpu[0] + cg.per_cpu[1], cg.cpu_total);
  CHECK_U64(cg.periods, 4);
  CHECK_U64(cg.throttled_periods, 2);
  CHECK_U64(cg.throttled_time, 999);
  CHECK_EQ(cg.have_mem, 1);
  CHECK_U64(cg.mem[CACHE], 1);
  CHECK_U64(cg.mem[PGIN], 7);
  CHECK_U64(cg.mem[PGOUT], 8);
  CHECK_U64(cg.mem[UNEVICT], 15);
  CHECK_U64(cg.mem[HLIMIT], 16);
  CHECK_U64(cg.mem[HSWAP], 17);
  CHECK_U64(cg.total[CACHE], 101);
  CHECK_U64(cg.total[RSS], 102);
  CHECK_U64(cg.total[PGIN], 107);
  CHECK_U64(cg.total[UNEVICT], 115);
  CHECK_U64(cg.total[DIRTY], 0);
  CHECK_U64(cg.entry[0][0], UNLIMITED);
  CHECK_U64(cg.entry[0][1], 2000);
  CHECK_U64(cg.entry[0][2], 3000);
  CHECK_U64(cg.entry[0][3], 1);
  CHECK_U64(cg.entry[1][1], 2100);
  CHECK_U64(cg.entry[2][1], 400);
  CHECK_U64(cg.entry[3][0], 500);
  CHECK_U64(cg.oom[0], 1);
  CHECK_U64(cg.oom[1], 0);
  CHECK_U64(cg.oom[2], 6);
  CHECK_U64(cg.pids_current, 2);
  CHECK_U64(cg.pids_limit, 100);
  CHECK_EQ(cg.have_blkio, 1);
  CHECK_EQ(cg.ndev, 1);
  CHECK_U64(cg.dev[0].v[0][0], 10);
  CHECK_U64(cg.dev[0].v[0][1], 20);
  CHECK_U64(cg.dev[0].v[1][0], 1);
  CHECK_U64(cg.dev[0].v[1][1], 2);
}

static void test_missing_and_bounded(void) {
  const char *d = subdir("sparse");
  const char *dirs[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
  char big[64 * 1024];
  size_t n = 0, i;
  hcsb__gcg_t cg;

  /* Nothing there: nothing claimed. */
  memset(&cg, 0, sizeof cg);
  hcsb__gcgroup_read_v2(&cg, d);
  CHECK_EQ(cg.have_cpu + cg.have_mem + cg.have_pids + cg.have_blkio, 0);
  hcsb__gcgroup_read_v1(&cg, dirs);
  CHECK_EQ(cg.have_cpu + cg.have_mem + cg.have_pids + cg.have_blkio, 0);

  /* More devices than kept: the first ones stay, the table stays full. */
  for (i = 0; i < 200 && n < sizeof big - 128; i++)
    n += (size_t)snprintf(big + n, sizeof big - n,
                          "%zu:0 rbytes=1 wbytes=1 rios=1 wios=1\n", i + 1);
  put(d, "io.stat", big);
  hcsb__gcgroup_read_v2(&cg, d);
  CHECK_EQ(cg.ndev, HCSB__G_MAX_DEVS);
  CHECK_EQ(cg.dev[0].major, 1);
  CHECK_EQ(cg.dev[HCSB__G_MAX_DEVS - 1].major, HCSB__G_MAX_DEVS);
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(v2_mapping),
      TEST_ENTRY(v1_names),
      TEST_ENTRY(missing_and_bounded),
  };
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
