/* Typed LCOWMetrics (hcsbridge/metrics.h) through the API against a
 * scripted guest: a full document with every field, the real v0.11.8
 * guest's answer, the array caps, wrong types, Go's decoding quirks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-int.h"
#include "test-api-peer.h"
#include "test-api-util.h"

typedef void (*check_fn)(const hcsb_properties_t *props);

typedef struct mt_s {
  api_peer_t peer;
  uv_loop_t loop;
  hcsb_bridge_t *bridge;
  hcsb_conn_t *conn;
  hcsb_container_t *c;
  int opened, open_status;
  const char *props; /* the Properties text the guest answers with */
  check_fn check;    /* runs inside the callback (props live only there) */
  int done, status, checked;
} mt_t;

static void on_request(api_peer_t *p, uint32_t type, uint64_t id,
                       const char *body, size_t len) {
  mt_t *t = p->data;
  hcsb__buf_t b = HCSB__BUF_INIT;
  static const char head[] = "{\"Result\":0,\"Properties\":";

  (void)body;
  (void)len;
  if (type != HCSB_MSG_GET_PROPERTIES) {
    api_peer_ok(p, type, id);
    return;
  }
  CHECK_EQ(hcsb__buf_append(&b, head, sizeof head - 1), 0);
  CHECK_EQ(hcsb__json_put_string(&b, t->props, strlen(t->props)), 0);
  CHECK_EQ(hcsb__buf_append(&b, "}", 2), 0);
  api_peer_reply(p, type, id, b.data);
  hcsb__buf_free(&b);
}

static void opened(void *data, hcsb_conn_t *conn, int status,
                   const hcsb_guest_error_t *gerr) {
  mt_t *t = data;
  (void)conn;
  (void)gerr;
  t->opened++;
  t->open_status = status;
}

static void start(mt_t *t) {
  memset(t, 0, sizeof(*t));
  uv_loop_init(&t->loop);
  api_peer_pair(&t->peer, &t->loop, on_request, t, &t->bridge);
  t->peer.data = t;
  CHECK_EQ(hcsb_conn_open_bridge(t->bridge, NULL, opened, t, &t->conn), 0);
  RUN_UNTIL(&t->loop, t->opened);
  CHECK_EQ(t->open_status, 0);
  CHECK_EQ(hcsb_conn_open_container(t->conn, "m1", &t->c), 0);
}

static void finish(mt_t *t) {
  int closed = 0;

  hcsb_container_close(t->c, api_closed_flag, &closed);
  RUN_UNTIL(&t->loop, closed);
  closed = 0;
  hcsb_conn_close(t->conn, api_closed_flag, &closed);
  RUN_UNTIL(&t->loop, closed);
  RUN_UNTIL(&t->loop, t->peer.eof);
  api_peer_close(&t->peer);
  RUN_UNTIL(&t->loop, t->peer.closed);
  api_drain(&t->loop);
}

static void props_cb(void *data, int status, const hcsb_guest_error_t *gerr,
                     const hcsb_properties_t *props) {
  mt_t *t = data;
  (void)gerr;
  t->done++;
  t->status = status;
  if (status == 0 && t->check != NULL) {
    t->check(props);
    t->checked++;
  }
}

/* Asks for statistics; returns the callback's status. */
static int ask(mt_t *t, const char *text, check_fn check) {
  t->props = text;
  t->check = check;
  t->done = t->checked = 0;
  CHECK_EQ(hcsb_container_statistics(t->c, NULL, props_cb, t), 0);
  RUN_UNTIL(&t->loop, t->done);
  CHECK_EQ(t->done, 1);
  if (t->status == 0 && check != NULL) CHECK_EQ(t->checked, 1);
  return t->status;
}

/* ------------------------------------------------------------------------ */
/* Every field, each with its own value, in the order and spelling Go's
 * encoding/json writes containerd's stats/v1 Metrics. */

#define FULL_METRICS                                                          \
  "{\"hugetlb\":[{\"usage\":2097152,\"max\":4194304,\"failcnt\":1,"           \
  "\"pagesize\":\"2MB\"},{\"usage\":0,\"max\":0,\"failcnt\":0,\"pagesize\":"  \
  "\"1GB\"}],"                                                                \
  "\"pids\":{\"current\":7,\"limit\":512},"                                   \
  "\"cpu\":{\"usage\":{\"total\":9000000001,\"kernel\":3000000002,\"user\":"  \
  "6000000003,\"per_cpu\":[4500000004,4500000005]},\"throttling\":{"          \
  "\"periods\":100,\"throttled_periods\":12,\"throttled_time\":345678}},"     \
  "\"memory\":{\"cache\":1001,\"rss\":1002,\"rss_huge\":1003,"                \
  "\"mapped_file\":1004,\"dirty\":1005,\"writeback\":1006,\"pg_pg_in\":1007," \
  "\"pg_pg_out\":1008,\"pg_fault\":1009,\"pg_maj_fault\":1010,"               \
  "\"inactive_anon\":1011,\"active_anon\":1012,\"inactive_file\":1013,"       \
  "\"active_file\":1014,\"unevictable\":1015,"                                \
  "\"hierarchical_memory_limit\":1016,\"hierarchical_swap_limit\":1017,"      \
  "\"total_cache\":1018,\"total_rss\":1019,\"total_rss_huge\":1020,"          \
  "\"total_mapped_file\":1021,\"total_dirty\":1022,\"total_writeback\":1023," \
  "\"total_pg_pg_in\":1024,\"total_pg_pg_out\":1025,\"total_pg_fault\":1026," \
  "\"total_pg_maj_fault\":1027,\"total_inactive_anon\":1028,"                 \
  "\"total_active_anon\":1029,\"total_inactive_file\":1030,"                  \
  "\"total_active_file\":1031,\"total_unevictable\":1032,"                    \
  "\"usage\":{\"limit\":2001,\"usage\":2002,\"max\":2003,\"failcnt\":2004},"  \
  "\"swap\":{\"limit\":2011,\"usage\":2012,\"max\":2013,\"failcnt\":2014},"   \
  "\"kernel\":{\"limit\":2021,\"usage\":2022,\"max\":2023,\"failcnt\":2024}," \
  "\"kernel_tcp\":{\"limit\":2031,\"usage\":2032,\"max\":2033,\"failcnt\":"   \
  "2034}},"                                                                   \
  "\"blkio\":{"                                                               \
  "\"io_service_bytes_recursive\":[{\"op\":\"Read\",\"device\":\"/dev/sda\"," \
  "\"major\":8,\"value\":4096},{\"op\":\"Write\",\"device\":\"/dev/sda\","    \
  "\"major\":8,\"value\":8192},{\"op\":\"Read\",\"major\":8,\"minor\":16,"    \
  "\"value\":100},{\"op\":\"Total\",\"major\":8,\"value\":12288}],"           \
  "\"io_serviced_recursive\":[{\"op\":\"Read\",\"major\":8,\"value\":3},"     \
  "{\"op\":\"Write\",\"major\":8,\"value\":5}],"                              \
  "\"io_queued_recursive\":[{\"op\":\"Sync\",\"major\":254,\"minor\":1,"      \
  "\"value\":31}],"                                                           \
  "\"io_service_time_recursive\":[{\"op\":\"Async\",\"major\":254,\"minor\":" \
  "2,\"value\":32}],"                                                         \
  "\"io_wait_time_recursive\":[{\"op\":\"Discard\",\"major\":254,\"minor\":"  \
  "3,\"value\":33}],"                                                         \
  "\"io_merged_recursive\":[{\"op\":\"Total\",\"major\":254,\"minor\":4,"     \
  "\"value\":34}],"                                                           \
  "\"io_time_recursive\":[{\"major\":254,\"minor\":5,\"value\":35}],"         \
  "\"sectors_recursive\":[{\"device\":\"/dev/pmem0\",\"major\":259,"          \
  "\"minor\":6,\"value\":36}]},"                                              \
  "\"rdma\":{\"current\":[{\"device\":\"mlx5_0\",\"hca_handles\":3,"          \
  "\"hca_objects\":40}],\"limit\":[{\"device\":\"mlx5_0\",\"hca_handles\":"   \
  "4294967295,\"hca_objects\":1000},{\"device\":\"mlx5_1\"}]},"               \
  "\"network\":[{\"name\":\"eth0\",\"rx_bytes\":3001,\"rx_packets\":3002,"    \
  "\"rx_errors\":3003,\"rx_dropped\":3004,\"tx_bytes\":3005,\"tx_packets\":"  \
  "3006,\"tx_errors\":3007,\"tx_dropped\":3008},{\"name\":\"lo\","            \
  "\"rx_bytes\":11,\"tx_bytes\":11}],"                                        \
  "\"cgroup_stats\":{\"nr_sleeping\":4001,\"nr_running\":4002,"               \
  "\"nr_stopped\":4003,\"nr_uninterruptible\":4004,\"nr_io_wait\":4005},"     \
  "\"memory_oom_control\":{\"oom_kill_disable\":1,\"under_oom\":1,"           \
  "\"oom_kill\":2}}"

static const char full_doc[] =
    "{\"ProcessList\":[{\"ProcessId\":1}],\"LCOWMetrics\":" FULL_METRICS "}";

static void check_full(const hcsb_properties_t *props) {
  const hcsb_metrics_t *m = props->metrics;
  const hcsb_memory_stat_t *mem;
  const hcsb_blkio_stat_t *b;
  const hcsb_statistics_t *st = &props->statistics;

  CHECK(m != NULL);
  CHECK_EQ(m->dropped, 0);
  /* The raw text is still there, whole and exact. */
  CHECK_EQ(m->json_len, strlen(FULL_METRICS));
  CHECK(memcmp(m->json, FULL_METRICS, m->json_len) == 0);
  CHECK_EQ(props->json_len, strlen(full_doc));

  CHECK_EQ(m->nhugetlb, 2);
  CHECK_U64(m->hugetlb[0].usage, 2097152);
  CHECK_U64(m->hugetlb[0].max, 4194304);
  CHECK_U64(m->hugetlb[0].failcnt, 1);
  CHECK_STR(m->hugetlb[0].pagesize, "2MB");
  CHECK_U64(m->hugetlb[1].usage + m->hugetlb[1].max + m->hugetlb[1].failcnt, 0);
  CHECK_STR(m->hugetlb[1].pagesize, "1GB");

  CHECK_EQ(m->has_pids, 1);
  CHECK_U64(m->pids.current, 7);
  CHECK_U64(m->pids.limit, 512);

  CHECK_EQ(m->has_cpu, 1);
  CHECK_U64(m->cpu.usage.total, 9000000001ull);
  CHECK_U64(m->cpu.usage.kernel, 3000000002ull);
  CHECK_U64(m->cpu.usage.user, 6000000003ull);
  CHECK_EQ(m->cpu.usage.nper_cpu, 2);
  CHECK_U64(m->cpu.usage.per_cpu[0], 4500000004ull);
  CHECK_U64(m->cpu.usage.per_cpu[1], 4500000005ull);
  CHECK_U64(m->cpu.throttling.periods, 100);
  CHECK_U64(m->cpu.throttling.throttled_periods, 12);
  CHECK_U64(m->cpu.throttling.throttled_time, 345678);

  CHECK_EQ(m->has_memory, 1);
  mem = &m->memory;
  CHECK_U64(mem->cache, 1001);
  CHECK_U64(mem->rss, 1002);
  CHECK_U64(mem->rss_huge, 1003);
  CHECK_U64(mem->mapped_file, 1004);
  CHECK_U64(mem->dirty, 1005);
  CHECK_U64(mem->writeback, 1006);
  CHECK_U64(mem->pg_pg_in, 1007);
  CHECK_U64(mem->pg_pg_out, 1008);
  CHECK_U64(mem->pg_fault, 1009);
  CHECK_U64(mem->pg_maj_fault, 1010);
  CHECK_U64(mem->inactive_anon, 1011);
  CHECK_U64(mem->active_anon, 1012);
  CHECK_U64(mem->inactive_file, 1013);
  CHECK_U64(mem->active_file, 1014);
  CHECK_U64(mem->unevictable, 1015);
  CHECK_U64(mem->hierarchical_memory_limit, 1016);
  CHECK_U64(mem->hierarchical_swap_limit, 1017);
  CHECK_U64(mem->total_cache, 1018);
  CHECK_U64(mem->total_rss, 1019);
  CHECK_U64(mem->total_rss_huge, 1020);
  CHECK_U64(mem->total_mapped_file, 1021);
  CHECK_U64(mem->total_dirty, 1022);
  CHECK_U64(mem->total_writeback, 1023);
  CHECK_U64(mem->total_pg_pg_in, 1024);
  CHECK_U64(mem->total_pg_pg_out, 1025);
  CHECK_U64(mem->total_pg_fault, 1026);
  CHECK_U64(mem->total_pg_maj_fault, 1027);
  CHECK_U64(mem->total_inactive_anon, 1028);
  CHECK_U64(mem->total_active_anon, 1029);
  CHECK_U64(mem->total_inactive_file, 1030);
  CHECK_U64(mem->total_active_file, 1031);
  CHECK_U64(mem->total_unevictable, 1032);
  CHECK_U64(mem->usage.limit, 2001);
  CHECK_U64(mem->usage.usage, 2002);
  CHECK_U64(mem->usage.max, 2003);
  CHECK_U64(mem->usage.failcnt, 2004);
  CHECK_U64(mem->swap.limit, 2011);
  CHECK_U64(mem->swap.usage, 2012);
  CHECK_U64(mem->swap.max, 2013);
  CHECK_U64(mem->swap.failcnt, 2014);
  CHECK_U64(mem->kernel.limit, 2021);
  CHECK_U64(mem->kernel.usage, 2022);
  CHECK_U64(mem->kernel.max, 2023);
  CHECK_U64(mem->kernel.failcnt, 2024);
  CHECK_U64(mem->kernel_tcp.limit, 2031);
  CHECK_U64(mem->kernel_tcp.usage, 2032);
  CHECK_U64(mem->kernel_tcp.max, 2033);
  CHECK_U64(mem->kernel_tcp.failcnt, 2034);

  CHECK_EQ(m->has_blkio, 1);
  b = &m->blkio;
  CHECK_EQ(b->io_service_bytes_recursive.n, 4);
  CHECK_STR(b->io_service_bytes_recursive.entries[0].op, "Read");
  CHECK_STR(b->io_service_bytes_recursive.entries[0].device, "/dev/sda");
  CHECK_U64(b->io_service_bytes_recursive.entries[0].major, 8);
  CHECK_U64(b->io_service_bytes_recursive.entries[0].minor, 0);
  CHECK_U64(b->io_service_bytes_recursive.entries[0].value, 4096);
  CHECK_STR(b->io_service_bytes_recursive.entries[1].op, "Write");
  CHECK_U64(b->io_service_bytes_recursive.entries[1].value, 8192);
  CHECK_STR(b->io_service_bytes_recursive.entries[2].device, "");
  CHECK_U64(b->io_service_bytes_recursive.entries[2].minor, 16);
  CHECK_U64(b->io_service_bytes_recursive.entries[2].value, 100);
  CHECK_STR(b->io_service_bytes_recursive.entries[3].op, "Total");
  CHECK_U64(b->io_service_bytes_recursive.entries[3].value, 12288);
  CHECK_EQ(b->io_serviced_recursive.n, 2);
  CHECK_U64(b->io_serviced_recursive.entries[1].value, 5);
  CHECK_EQ(b->io_queued_recursive.n, 1);
  CHECK_STR(b->io_queued_recursive.entries[0].op, "Sync");
  CHECK_U64(b->io_queued_recursive.entries[0].major, 254);
  CHECK_U64(b->io_queued_recursive.entries[0].minor, 1);
  CHECK_U64(b->io_queued_recursive.entries[0].value, 31);
  CHECK_EQ(b->io_service_time_recursive.n, 1);
  CHECK_STR(b->io_service_time_recursive.entries[0].op, "Async");
  CHECK_U64(b->io_service_time_recursive.entries[0].value, 32);
  CHECK_EQ(b->io_wait_time_recursive.n, 1);
  CHECK_STR(b->io_wait_time_recursive.entries[0].op, "Discard");
  CHECK_U64(b->io_wait_time_recursive.entries[0].value, 33);
  CHECK_EQ(b->io_merged_recursive.n, 1);
  CHECK_U64(b->io_merged_recursive.entries[0].minor, 4);
  CHECK_U64(b->io_merged_recursive.entries[0].value, 34);
  CHECK_EQ(b->io_time_recursive.n, 1);
  CHECK_STR(b->io_time_recursive.entries[0].op, "");
  CHECK_U64(b->io_time_recursive.entries[0].value, 35);
  CHECK_EQ(b->sectors_recursive.n, 1);
  CHECK_STR(b->sectors_recursive.entries[0].device, "/dev/pmem0");
  CHECK_U64(b->sectors_recursive.entries[0].major, 259);
  CHECK_U64(b->sectors_recursive.entries[0].minor, 6);
  CHECK_U64(b->sectors_recursive.entries[0].value, 36);

  CHECK_EQ(m->has_rdma, 1);
  CHECK_EQ(m->rdma.ncurrent, 1);
  CHECK_STR(m->rdma.current[0].device, "mlx5_0");
  CHECK_EQ(m->rdma.current[0].hca_handles, 3);
  CHECK_EQ(m->rdma.current[0].hca_objects, 40);
  CHECK_EQ(m->rdma.nlimit, 2);
  CHECK_U64(m->rdma.limit[0].hca_handles, 4294967295u);
  CHECK_EQ(m->rdma.limit[0].hca_objects, 1000);
  CHECK_STR(m->rdma.limit[1].device, "mlx5_1");
  CHECK_EQ(m->rdma.limit[1].hca_handles + m->rdma.limit[1].hca_objects, 0);

  CHECK_EQ(m->nnetwork, 2);
  CHECK_STR(m->network[0].name, "eth0");
  CHECK_U64(m->network[0].rx_bytes, 3001);
  CHECK_U64(m->network[0].rx_packets, 3002);
  CHECK_U64(m->network[0].rx_errors, 3003);
  CHECK_U64(m->network[0].rx_dropped, 3004);
  CHECK_U64(m->network[0].tx_bytes, 3005);
  CHECK_U64(m->network[0].tx_packets, 3006);
  CHECK_U64(m->network[0].tx_errors, 3007);
  CHECK_U64(m->network[0].tx_dropped, 3008);
  CHECK_STR(m->network[1].name, "lo");
  CHECK_U64(m->network[1].rx_bytes, 11);
  CHECK_U64(m->network[1].tx_bytes, 11);
  CHECK_U64(m->network[1].rx_packets, 0);

  CHECK_EQ(m->has_cgroup_stats, 1);
  CHECK_U64(m->cgroup_stats.nr_sleeping, 4001);
  CHECK_U64(m->cgroup_stats.nr_running, 4002);
  CHECK_U64(m->cgroup_stats.nr_stopped, 4003);
  CHECK_U64(m->cgroup_stats.nr_uninterruptible, 4004);
  CHECK_U64(m->cgroup_stats.nr_io_wait, 4005);

  CHECK_EQ(m->has_memory_oom_control, 1);
  CHECK_U64(m->memory_oom_control.oom_kill_disable, 1);
  CHECK_U64(m->memory_oom_control.under_oom, 1);
  CHECK_U64(m->memory_oom_control.oom_kill, 2);

  /* The flat summary agrees with the typed view. */
  CHECK_EQ(props->has_statistics, 1);
  CHECK_EQ(props->has_process_list, 1);
  CHECK_U64(st->cpu_total_ns, 9000000001ull);
  CHECK_U64(st->cpu_throttled_time_ns, 345678);
  CHECK_U64(st->memory_usage_bytes, 2002);
  CHECK_U64(st->memory_limit_bytes, 2001);
  CHECK_U64(st->memory_rss_bytes, 1002);
  CHECK_U64(st->pids_limit, 512);
  CHECK_U64(st->blkio_read_bytes, 4196);
  CHECK_U64(st->blkio_write_bytes, 8192);
  CHECK_U64(st->blkio_read_ops, 3);
  CHECK_U64(st->blkio_write_ops, 5);
}

static void test_full_document(void) {
  mt_t t;

  start(&t);
  CHECK_EQ(ask(&t, full_doc, check_full), 0);
  /* A warm call: same answer through the reused buffers. */
  CHECK_EQ(ask(&t, full_doc, check_full), 0);
  finish(&t);
}

/* ------------------------------------------------------------------------ */
/* What a v0.11.8 guest sent (transcripts/13_container.txt). */

static const char real_doc[] =
    "{\"LCOWMetrics\":{\"pids\":{\"current\":2},\"cpu\":{\"usage\":{\"total\":"
    "46513907,\"kernel\":20000000,\"user\":20000000,\"per_cpu\":[35593494,"
    "10920413]},\"throttling\":{}},\"memory\":{\"cache\":176128,\"rss\":118784,"
    "\"mapped_file\":172032,\"pg_pg_in\":595,\"pg_pg_out\":512,\"pg_fault\":"
    "902,"
    "\"pg_maj_fault\":1,\"inactive_anon\":110592,\"active_anon\":4096,"
    "\"active_file\":176128,\"hierarchical_memory_limit\":25197383680,"
    "\"hierarchical_swap_limit\":9223372036854771712,\"total_cache\":176128,"
    "\"total_rss\":118784,\"total_mapped_file\":172032,\"total_pg_pg_in\":595,"
    "\"total_pg_pg_out\":512,\"total_pg_fault\":902,\"total_pg_maj_fault\":1,"
    "\"total_inactive_anon\":110592,\"total_active_anon\":4096,"
    "\"total_active_file\":176128,\"usage\":{\"limit\":9223372036854771712,"
    "\"usage\":733184,\"max\":2641920},\"swap\":{\"limit\":"
    "9223372036854771712,\"usage\":733184,\"max\":2641920},\"kernel\":{"
    "\"limit\":9223372036854771712,\"usage\":344064,\"max\":593920},"
    "\"kernel_tcp\":{\"limit\":9223372036854771712}},\"blkio\":{},"
    "\"memory_oom_control\":{}}}";

static void check_real(const hcsb_properties_t *props) {
  const hcsb_metrics_t *m = props->metrics;

  CHECK(m != NULL);
  CHECK_EQ(m->has_pids + m->has_cpu + m->has_memory + m->has_blkio, 4);
  CHECK_EQ(m->has_memory_oom_control, 1);
  CHECK_EQ(m->has_rdma + m->has_cgroup_stats, 0);
  CHECK_EQ(m->nhugetlb + m->nnetwork, 0);
  CHECK_U64(m->pids.current, 2);
  CHECK_EQ(m->cpu.usage.nper_cpu, 2);
  CHECK_U64(m->cpu.usage.per_cpu[0] + m->cpu.usage.per_cpu[1], 46513907);
  CHECK_U64(m->cpu.throttling.periods, 0);
  CHECK_U64(m->memory.pg_pg_in, 595);
  CHECK_U64(m->memory.total_pg_maj_fault, 1);
  CHECK_U64(m->memory.hierarchical_memory_limit, 25197383680ull);
  CHECK_U64(m->memory.hierarchical_swap_limit, 9223372036854771712ull);
  CHECK_U64(m->memory.swap.usage, 733184);
  CHECK_U64(m->memory.kernel.max, 593920);
  CHECK_U64(m->memory.kernel_tcp.limit, 9223372036854771712ull);
  CHECK_U64(m->memory.kernel_tcp.usage, 0);
  CHECK_EQ(m->blkio.io_service_bytes_recursive.n, 0);
  CHECK_EQ(m->blkio.sectors_recursive.n, 0);
  CHECK_U64(m->memory_oom_control.oom_kill, 0);
}

static void check_none(const hcsb_properties_t *props) {
  CHECK(props->metrics == NULL);
  CHECK_EQ(props->has_statistics, 0);
}

static void test_real_guest(void) {
  mt_t t;

  start(&t);
  CHECK_EQ(ask(&t, real_doc, check_real), 0);
  /* No metrics after metrics: nothing stale shows through. */
  CHECK_EQ(ask(&t, "{\"ProcessList\":[]}", check_none), 0);
  CHECK_EQ(ask(&t, "{\"LCOWMetrics\":null}", check_none), 0);
  finish(&t);
}

/* ------------------------------------------------------------------------ */
/* Caps: what the guest sends beyond them is checked, counted, not kept. */

static char *bounded_doc(size_t ncpu, size_t nblk, size_t nhuge, size_t nnet,
                         size_t nrdma, const char *last_cpu) {
  size_t cap =
             256 + ncpu * 24 + nblk * 64 + nhuge * 48 + nnet * 48 + nrdma * 48,
         n = 0, i;
  char *d = malloc(cap);

  CHECK(d != NULL);
#define PUT(...) n += (size_t)snprintf(d + n, cap - n, __VA_ARGS__)
  PUT("{\"LCOWMetrics\":{\"cpu\":{\"usage\":{\"per_cpu\":[");
  for (i = 0; i < ncpu; i++) PUT("%s%zu", i ? "," : "", i + 1);
  if (last_cpu != NULL) PUT(",%s", last_cpu);
  PUT("]}},\"blkio\":{\"io_service_bytes_recursive\":[");
  for (i = 0; i < nblk; i++)
    PUT("%s{\"op\":\"Read\",\"minor\":%zu,\"value\":2}", i ? "," : "", i);
  PUT("]},\"hugetlb\":[");
  for (i = 0; i < nhuge; i++) PUT("%s{\"pagesize\":\"p%zu\"}", i ? "," : "", i);
  PUT("],\"network\":[");
  for (i = 0; i < nnet; i++) PUT("%s{\"name\":\"n%zu\"}", i ? "," : "", i);
  PUT("],\"rdma\":{\"limit\":[");
  for (i = 0; i < nrdma; i++) PUT("%s{\"hca_objects\":%zu}", i ? "," : "", i);
  PUT("]}}}");
#undef PUT
  CHECK(n < cap);
  return d;
}

#define OVER 9

static void check_capped(const hcsb_properties_t *props) {
  const hcsb_metrics_t *m = props->metrics;

  CHECK_EQ(m->cpu.usage.nper_cpu, HCSB_METRICS_MAX_CPUS);
  CHECK_U64(m->cpu.usage.per_cpu[HCSB_METRICS_MAX_CPUS - 1],
            HCSB_METRICS_MAX_CPUS);
  CHECK_EQ(m->blkio.io_service_bytes_recursive.n, HCSB_METRICS_MAX_BLKIO);
  CHECK_U64(
      m->blkio.io_service_bytes_recursive.entries[HCSB_METRICS_MAX_BLKIO - 1]
          .minor,
      HCSB_METRICS_MAX_BLKIO - 1);
  CHECK_EQ(m->nhugetlb, HCSB_METRICS_MAX_HUGETLB);
  CHECK_STR(m->hugetlb[HCSB_METRICS_MAX_HUGETLB - 1].pagesize, "p63");
  CHECK_EQ(m->nnetwork, HCSB_METRICS_MAX_NETWORK);
  CHECK_STR(m->network[0].name, "n0");
  CHECK_EQ(m->rdma.nlimit, HCSB_METRICS_MAX_RDMA);
  CHECK_EQ(m->rdma.limit[HCSB_METRICS_MAX_RDMA - 1].hca_objects,
           HCSB_METRICS_MAX_RDMA - 1);
  CHECK_EQ(m->dropped, 5 * OVER);
  /* The summary still counts every entry the guest sent. */
  CHECK_U64(props->statistics.blkio_read_bytes,
            2 * (HCSB_METRICS_MAX_BLKIO + OVER));
}

static void check_small(const hcsb_properties_t *props) {
  const hcsb_metrics_t *m = props->metrics;

  CHECK_EQ(m->cpu.usage.nper_cpu, 3);
  CHECK_U64(m->cpu.usage.per_cpu[2], 3);
  CHECK_EQ(m->blkio.io_service_bytes_recursive.n, 1);
  CHECK_EQ(m->nhugetlb + m->nnetwork + m->rdma.nlimit, 3);
  CHECK_EQ(m->dropped, 0);
}

static void test_caps(void) {
  char *big = bounded_doc(
      HCSB_METRICS_MAX_CPUS + OVER, HCSB_METRICS_MAX_BLKIO + OVER,
      HCSB_METRICS_MAX_HUGETLB + OVER, HCSB_METRICS_MAX_NETWORK + OVER,
      HCSB_METRICS_MAX_RDMA + OVER, NULL);
  char *small = bounded_doc(3, 1, 1, 1, 1, NULL);
  char *bad_tail =
      bounded_doc(HCSB_METRICS_MAX_CPUS + OVER, 0, 0, 0, 0, "\"not a number\"");
  mt_t t;

  start(&t);
  CHECK_EQ(ask(&t, big, check_capped), 0);
  /* The kept buffers shrink back to what the next answer holds. */
  CHECK_EQ(ask(&t, small, check_small), 0);
  /* A dropped element is still checked. */
  CHECK_EQ(ask(&t, bad_tail, NULL), -EPROTO);
  finish(&t);
  free(big);
  free(small);
  free(bad_tail);
}

/* ------------------------------------------------------------------------ */

static void check_quirks(const hcsb_properties_t *props) {
  const hcsb_metrics_t *m = props->metrics;

  /* The last occurrence wins; keys match case-insensitively; null is 0 in
   * a number array and skipped in an object array. */
  CHECK_EQ(m->cpu.usage.nper_cpu, 3);
  CHECK_U64(m->cpu.usage.per_cpu[0], 4);
  CHECK_U64(m->cpu.usage.per_cpu[1], 0);
  CHECK_U64(m->cpu.usage.per_cpu[2], 6);
  CHECK_U64(m->memory.total_rss, 77);
  CHECK_U64(m->memory.kernel_tcp.failcnt, 3);
  CHECK_EQ(m->nnetwork, 1);
  CHECK_STR(m->network[0].name, "caf\xc3\xa9");
  CHECK_EQ(m->has_pids, 0);
  CHECK_EQ(m->has_cgroup_stats, 1);
}

static void test_go_quirks(void) {
  mt_t t;

  start(&t);
  CHECK_EQ(ask(&t,
               "{\"LCOWMetrics\":{\"cpu\":{\"usage\":{\"per_cpu\":[1,2,3],"
               "\"PER_CPU\":[4,null,6]}},\"memory\":{\"Total_RSS\":77,"
               "\"kernel_tcp\":{\"FailCnt\":3},\"future_field\":[{}]},"
               "\"network\":[null,{\"name\":\"caf\\u00e9\"},null],"
               "\"pids\":null,\"cgroup_stats\":{},\"unknown\":{\"x\":[1]}}}",
               check_quirks),
           0);
  finish(&t);
}

static void test_wrong_types(void) {
  static const char *const bad[] = {
      "{\"LCOWMetrics\":{\"cpu\":{\"usage\":{\"per_cpu\":[\"1\"]}}}}",
      "{\"LCOWMetrics\":{\"cpu\":{\"usage\":{\"per_cpu\":{}}}}}",
      "{\"LCOWMetrics\":{\"cpu\":{\"usage\":{\"per_cpu\":[-1]}}}}",
      "{\"LCOWMetrics\":{\"cpu\":{\"usage\":{\"per_cpu\":[1.5]}}}}",
      "{\"LCOWMetrics\":{\"hugetlb\":[1]}}",
      "{\"LCOWMetrics\":{\"hugetlb\":{}}}",
      "{\"LCOWMetrics\":{\"hugetlb\":[{\"pagesize\":2}]}}",
      "{\"LCOWMetrics\":{\"network\":[{\"name\":[]}]}}",
      "{\"LCOWMetrics\":{\"network\":[{\"rx_bytes\":18446744073709551616}]}}",
      "{\"LCOWMetrics\":{\"rdma\":{\"current\":[{\"hca_handles\":4294967296}]}"
      "}}",
      "{\"LCOWMetrics\":{\"rdma\":[]}}",
      "{\"LCOWMetrics\":{\"cgroup_stats\":[]}}",
      "{\"LCOWMetrics\":{\"cgroup_stats\":{\"nr_running\":true}}}",
      "{\"LCOWMetrics\":{\"memory_oom_control\":{\"oom_kill\":\"1\"}}}",
      "{\"LCOWMetrics\":{\"memory\":{\"swap\":5}}}",
      "{\"LCOWMetrics\":{\"memory\":{\"total_cache\":{}}}}",
      "{\"LCOWMetrics\":{\"blkio\":{\"sectors_recursive\":{}}}}",
      "{\"LCOWMetrics\":{\"blkio\":{\"io_time_recursive\":[{\"device\":1}]}}}",
      "{\"LCOWMetrics\":{\"blkio\":{\"io_merged_recursive\":[[]]}}}",
      "{\"LCOWMetrics\":{\"pids\":{\"limit\":1e3}}}",
      "{\"LCOWMetrics\":\"{}\"}",
  };
  size_t i;
  mt_t t;

  start(&t);
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int st = ask(&t, bad[i], NULL);
    if (st != -EPROTO)
      hcsb_test_fail(__FILE__, __LINE__, "case %zu: status %d", i, st);
  }
  /* The container's decoder is still fine afterwards. */
  CHECK_EQ(ask(&t, full_doc, check_full), 0);
  finish(&t);
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY(full_document), TEST_ENTRY(real_guest),  TEST_ENTRY(caps),
      TEST_ENTRY(go_quirks),     TEST_ENTRY(wrong_types),
  };
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
