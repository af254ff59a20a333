/* One loop driving many guest connections and processes with stdio.
 *
 * CONNS fast peers are spawned (spawn: transport, each with its own relay
 * directory); once all have negotiated, every connection starts PROCS
 * processes (one connection's batch per loop turn), each with a stdout
 * relay.  A process counts as ok when
 * its stdout carried exactly the peer's payload for its PID, then EOF, and
 * its wait reported exit code 0.  Meanwhile the gap between consecutive loop
 * iterations is tracked (a 1 ms timer keeps the loop turning when idle); its
 * maximum is the longest stall any callback chain caused.
 *
 * The relay sockets are Unix sockets in a directory per connection, created
 * by the library under $TMPDIR; the relay directory option points TMPDIR at
 * a tmpfs by default, since binding 8192 socket inodes on a disk file system
 * costs the kernel more than the library (vsock listeners have no inode). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "tools/bench/alloc.h"
#include "tools/bench/bench.h"
#include "tools/bench/payload.h"

typedef struct fanout_s fanout_t;

typedef struct fan_conn_s {
  fanout_t *f;
  hcsb_conn_t *conn;
} fan_conn_t;

typedef struct fan_proc_s {
  fanout_t *f;
  hcsb_process_t *p;
  char *out; /* payload + 1 bytes: one extra catches overlong output */
  size_t got;
  int eof, waited, failed, closing;
} fan_proc_t;

/* Callbacks of one loop iteration, to say what the longest one did. */
typedef struct turn_s {
  unsigned created, reads, eofs, waits, closed, started;
} turn_t;

struct fanout_s {
  const bench_fanout_opts_t *o;
  uv_loop_t loop;
  uv_timer_t tick, watchdog, sample;
  turn_t cur, worst; /* this iteration's callbacks; the longest one's */
  /* The thread's CPU time per iteration: what the loop did, without the
   * time another process held the CPU (a busy machine's stalls). */
  uint64_t last_cpu, max_cpu;
  unsigned iters, over_1ms, over_5ms; /* iterations measured; longer ones */
  uint64_t cpu_sum, cpu_over_1ms;     /* their CPU time; iterations over */
  int64_t heap0, rss0, heap_idle, rss_max;
  uv_check_t check;
  uv_idle_t starter;
  hcsb_call_opts_t opts;
  const hcsb_call_opts_t *optsp;
  unsigned next_conn;
  unsigned max_inflight, nstarted; /* processes: the cap, started so far */
  int paused;                      /* starting waits for processes to end */
  fan_conn_t *conns;
  fan_proc_t *procs;
  char *expect;
  unsigned opened, open_failed, conns_closed, procs_finished, ok, mismatches;
  uint64_t t_start, t_procs, t_started, t_end, last_iter, max_gap;
  int stopping;
};

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;

  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_check(uv_check_t *h) {
  fanout_t *f = h->data;
  uint64_t now = uv_hrtime(), cpu = thread_cpu_ns();

  if (f->last_iter != 0) {
    f->iters++;
    f->over_1ms += now - f->last_iter > 1000000;
    f->over_5ms += now - f->last_iter > 5000000;
  }
  if (f->last_iter != 0 && now - f->last_iter > f->max_gap) {
    f->max_gap = now - f->last_iter;
    f->worst = f->cur;
  }
  if (f->last_cpu != 0) {
    f->cpu_sum += cpu - f->last_cpu;
    f->cpu_over_1ms += cpu - f->last_cpu > 1000000;
    if (cpu - f->last_cpu > f->max_cpu) f->max_cpu = cpu - f->last_cpu;
  }
  f->last_iter = now;
  f->last_cpu = cpu;
  memset(&f->cur, 0, sizeof f->cur);
}

/* The process's memory while everything runs: its high-water mark.  Only
 * the RSS: reading it costs the same however much is allocated, where
 * counting the heap walks every free chunk (and would stall the loop). */
static void on_sample(uv_timer_t *t) {
  fanout_t *f = t->data;
  int64_t rss = bench_rss();

  if (rss > f->rss_max) f->rss_max = rss;
}

static void on_tick(uv_timer_t *t) {
  (void)t;
}

static void on_conn_closed(void *data) {
  fanout_t *f = data;

  if (++f->conns_closed == f->o->conns) {
    uv_close((uv_handle_t *)&f->sample, NULL);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_close((uv_handle_t *)&f->check, NULL);
    uv_close((uv_handle_t *)&f->starter, NULL);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
  }
}

static void stop_all(fanout_t *f) {
  unsigned i;

  if (f->stopping) return;
  f->stopping = 1;
  f->t_end = uv_hrtime();
  on_sample(&f->sample);
  uv_timer_stop(&f->sample);
  uv_check_stop(&f->check);
  uv_idle_stop(&f->starter);
  for (i = 0; i < f->o->conns; i++)
    hcsb_conn_close(f->conns[i].conn, on_conn_closed, f);
}

static void on_start_next(uv_idle_t *h);

static void on_proc_closed(void *data) {
  fan_proc_t *fp = data;
  fanout_t *f = fp->f;

  f->cur.closed++;
  if (++f->procs_finished == f->o->conns * f->o->procs) {
    stop_all(f);
    return;
  }
  if (f->paused &&
      f->nstarted - f->procs_finished + f->o->procs <= f->max_inflight) {
    f->paused = 0;
    uv_idle_start(&f->starter, on_start_next);
  }
}

static void proc_finish(fan_proc_t *fp) {
  fanout_t *f = fp->f;
  uint32_t pid;

  if (fp->closing) return;
  fp->closing = 1;
  if (!fp->failed) {
    pid = hcsb_process_pid(fp->p);
    bench_payload(f->expect, f->o->payload, pid);
    if (fp->got == f->o->payload && memcmp(fp->out, f->expect, fp->got) == 0)
      f->ok++;
    else if (f->mismatches++ < 5)
      fprintf(stderr, "hcsb-bench: pid %u: stdout %zu bytes, not the payload\n",
              (unsigned)pid, fp->got);
  }
  hcsb_process_close(fp->p, on_proc_closed, fp);
}

static void on_read(void *data, hcsb_process_t *p, int fd, const char *buf,
                    ssize_t nread) {
  fan_proc_t *fp = data;
  size_t room = fp->f->o->payload + 1 - fp->got, n;

  (void)p;
  if (fd != 1) return;
  fp->f->cur.reads++;
  if (nread < 0) {
    fp->f->cur.eofs++;
    if (nread != UV_EOF) {
      bench_report_error("stdout", (int)nread, NULL);
      fp->failed = 1;
    }
    fp->eof = 1;
    if (fp->waited || fp->failed) proc_finish(fp);
    return;
  }
  n = (size_t)nread < room ? (size_t)nread : room;
  memcpy(fp->out + fp->got, buf, n);
  fp->got += n;
}

static void on_wait(void *data, hcsb_process_t *p, int status,
                    uint32_t exit_code) {
  fan_proc_t *fp = data;

  (void)p;
  fp->f->cur.waits++;
  fp->waited = 1;
  if (status != 0 || exit_code != 0) {
    if (!fp->failed) bench_report_error("process wait", status, NULL);
    fp->failed = 1;
  }
  if (fp->eof || fp->failed) proc_finish(fp);
}

static void on_created(void *data, hcsb_process_t *p, int status,
                       const hcsb_guest_error_t *gerr) {
  fan_proc_t *fp = data;
  int rc;

  fp->f->cur.created++;
  if (status != 0) {
    bench_report_error("create process", status, gerr);
    fp->failed = 1;
    proc_finish(fp);
    return;
  }
  rc = hcsb_process_read_start(p, on_read, fp);
  if (rc == 0) rc = hcsb_process_wait(p, 0, on_wait, fp);
  if (rc != 0) {
    bench_report_error("read/wait", rc, NULL);
    fp->failed = 1;
    proc_finish(fp);
  }
}

/* One connection's processes per loop turn: a shim's requests arrive
 * spread over time, and starting all of them in one callback would be a
 * stall of the benchmark's making. */
static void on_start_next(uv_idle_t *h) {
  static const char *const argv[] = {"/bin/true"};
  fanout_t *f = h->data;
  hcsb_process_config_t cfg;
  unsigned i = f->next_conn, j;
  fan_proc_t *fp;
  int rc;

  if (f->nstarted - f->procs_finished + f->o->procs > f->max_inflight) {
    uv_idle_stop(h); /* the descriptor limit: on_proc_closed resumes */
    f->paused = 1;
    return;
  }
  f->nstarted += f->o->procs;
  f->cur.started += f->o->procs;
  memset(&cfg, 0, sizeof(cfg));
  cfg.command_args = argv;
  cfg.ncommand_args = 1;
  cfg.create_stdout_pipe = 1;
  for (j = 0; j < f->o->procs; j++) {
    fp = &f->procs[i * f->o->procs + j];
    rc = hcsb_conn_create_process(f->conns[i].conn, f->optsp, &cfg, on_created,
                                  fp, &fp->p);
    if (rc != 0) {
      bench_report_error("hcsb_conn_create_process", rc, NULL);
      fp->failed = fp->closing = 1;
      on_proc_closed(fp);
    }
  }
  if (++f->next_conn == f->o->conns) {
    uv_idle_stop(h);
    f->t_started = uv_hrtime();
  }
}

static void start_processes(fanout_t *f) {
  /* Every guest connected, nothing started: what an idle one costs. */
  f->heap_idle = bench_heap_in_use();
  f->t_procs = uv_hrtime();
  f->last_cpu = 0;
  on_sample(&f->sample);
  uv_timer_start(&f->sample, on_sample, 50, 50);
  f->last_iter = 0;
  uv_check_start(&f->check, on_check);
  uv_idle_start(&f->starter, on_start_next);
}

static void on_open(void *data, hcsb_conn_t *conn, int status,
                    const hcsb_guest_error_t *gerr) {
  fan_conn_t *c = data;
  fanout_t *f = c->f;

  (void)conn;
  if (status != 0) {
    if (f->open_failed++ == 0) bench_report_error("connect", status, gerr);
  } else {
    f->opened++;
  }
  if (f->opened + f->open_failed < f->o->conns) return;
  if (f->open_failed > 0)
    stop_all(f);
  else
    start_processes(f);
}

/* Descriptors: a connection holds one (its transport); a process's stdout
 * is one socket, two while its listener waits for the guest to dial.  A
 * server raises its soft limit to what it needs, and its hard limit too
 * when it may (CAP_SYS_RESOURCE).  When that is not enough, the processes
 * in flight are capped so that the need fits (`max_inflight`), which this
 * says on stderr.  Returns 0, or -1 when not even one connection's batch
 * would fit. */
static int fit_fd_limit(const bench_fanout_opts_t *o, unsigned *max_inflight) {
  struct rlimit rl, want;
  rlim_t base = (rlim_t)o->conns + 64; /* + the loop's own, stdio, slack */
  rlim_t need = base + 2 * (rlim_t)o->conns * o->procs;
  int err;

  *max_inflight = o->conns * o->procs;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0; /* cannot tell */
  if (rl.rlim_cur >= need) return 0;
  want.rlim_cur = need;
  want.rlim_max = rl.rlim_max >= need ? rl.rlim_max : need;
  if (setrlimit(RLIMIT_NOFILE, &want) == 0) {
    fprintf(stderr,
            "hcsb-bench: descriptor limit raised from %llu (hard %llu) to "
            "%llu for %u connections x %u processes\n",
            (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
            (unsigned long long)need, o->conns, o->procs);
    return 0;
  }
  err = errno;
  /* As far as the hard limit goes, then pace the processes. */
  if (rl.rlim_cur < rl.rlim_max) {
    want.rlim_cur = rl.rlim_max;
    want.rlim_max = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl.rlim_cur = rl.rlim_max;
  }
  if (rl.rlim_cur <= base + 2 * (rlim_t)o->procs) {
    fprintf(stderr,
            "hcsb-bench: %u connections need at least %llu descriptors, the "
            "limit is %llu (hard %llu): raise the hard limit (ulimit -Hn as "
            "root, LimitNOFILE= in a systemd unit, nofile in limits.conf) or "
            "use fewer connections\n",
            o->conns, (unsigned long long)(base + 2 * (rlim_t)o->procs),
            (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
    return -1;
  }
  *max_inflight = (unsigned)((rl.rlim_cur - base) / 2);
  fprintf(stderr,
          "hcsb-bench: %u connections x %u processes with stdout all at once "
          "would need %llu descriptors; the limit is %llu and cannot be "
          "raised (%s), so at most %u processes are in flight at a time\n",
          o->conns, o->procs, (unsigned long long)need,
          (unsigned long long)rl.rlim_cur, strerror(err), *max_inflight);
  return 0;
}

int bench_fanout(const bench_fanout_opts_t *o) {
  size_t nprocs = (size_t)o->conns * o->procs, i;
  char address[HCSB_ADDR_COMMAND_MAX];
  fanout_t f;
  int rc, failed;

  memset(&f, 0, sizeof(f));
  f.o = o;
  if (fit_fd_limit(o, &f.max_inflight) != 0) return 3;
  if (o->relay_dir != NULL) setenv("TMPDIR", o->relay_dir, 1);
  f.conns = calloc(o->conns, sizeof(*f.conns));
  f.procs = calloc(nprocs, sizeof(*f.procs));
  f.expect = malloc(o->payload);
  if (f.conns == NULL || f.procs == NULL || f.expect == NULL) return 1;
  for (i = 0; i < nprocs; i++) {
    f.procs[i].f = &f;
    f.procs[i].out = malloc(o->payload + 1);
    if (f.procs[i].out == NULL) return 1;
  }

  uv_loop_init(&f.loop);
  uv_timer_init(&f.loop, &f.sample);
  f.sample.data = &f;
  f.heap0 = bench_heap_in_use();
  f.rss0 = bench_rss();
  uv_check_init(&f.loop, &f.check);
  uv_idle_init(&f.loop, &f.starter);
  f.check.data = f.starter.data = &f;
  f.opts.activity_id = HCSB_ZERO_GUID;
  f.optsp = o->random_activity ? NULL : &f.opts;
  uv_timer_init(&f.loop, &f.tick);
  uv_timer_start(&f.tick, on_tick, 1, 1);
  bench_watchdog(&f.loop, &f.watchdog, o->timeout_s);
  f.t_start = uv_hrtime();
  for (i = 0; i < o->conns; i++) {
    f.conns[i].f = &f;
    /* PIDs unique across all peers, so output reaching the wrong process
     * cannot pass for its own. */
    if (snprintf(address, sizeof(address),
                 "spawn:exec '%s' --stdio --payload %zu --first-pid %zu",
                 o->peer, o->payload,
                 (i + 1) * (size_t)100000) >= (int)sizeof(address))
      return 2;
    rc = bench_conn_open(&f.loop, address, on_open, &f.conns[i],
                         &f.conns[i].conn);
    if (rc != 0) {
      bench_report_error("hcsb_conn_open", rc, NULL);
      exit(1);
    }
  }
  uv_run(&f.loop, UV_RUN_DEFAULT);
  uv_loop_close(&f.loop);

  failed = f.ok != nprocs;
  printf(
      "RESULT impl=hcsbridge label=fanout conns=%u procs=%u ok=%u "
      "max_stall_ms=%.2f max_iter_cpu_ms=%.2f heap_conn_idle=%.0f "
      "rss_conn=%.0f max_inflight=%u\n",
      o->conns, o->procs, f.ok, (double)f.max_gap / 1e6,
      (double)f.max_cpu / 1e6, (double)(f.heap_idle - f.heap0) / o->conns,
      (double)(f.rss_max - f.rss0) / o->conns, f.max_inflight);
  fflush(stdout);
  fprintf(stderr,
          "hcsb-bench: fanout: %u loop iterations, %u over 1 ms, %u over "
          "5 ms; CPU time %.2f ms each on average, %llu over 1 ms\n",
          f.iters, f.over_1ms, f.over_5ms,
          f.iters ? (double)f.cpu_sum / 1e6 / f.iters : 0.0,
          (unsigned long long)f.cpu_over_1ms);
  fprintf(stderr,
          "hcsb-bench: fanout: the longest loop iteration ran %u process "
          "starts, %u create callbacks, %u stdout reads (%u EOFs), %u exit "
          "waits and %u closes\n",
          f.worst.started, f.worst.created, f.worst.reads, f.worst.eofs,
          f.worst.waits, f.worst.closed);
  fprintf(stderr,
          "hcsb-bench: fanout: connect %.0f ms, %zu processes started in "
          "%.0f ms, all done in %.0f ms (%.0f/s), %zu failed\n",
          f.t_procs ? (double)(f.t_procs - f.t_start) / 1e6 : -1.0, nprocs,
          f.t_started ? (double)(f.t_started - f.t_procs) / 1e6 : -1.0,
          f.t_procs ? (double)(f.t_end - f.t_procs) / 1e6 : -1.0,
          f.t_end > f.t_procs
              ? (double)nprocs * 1e9 / (double)(f.t_end - f.t_procs)
              : 0.0,
          nprocs - f.ok);
  for (i = 0; i < nprocs; i++) free(f.procs[i].out);
  free(f.procs);
  free(f.conns);
  free(f.expect);
  return failed;
}
