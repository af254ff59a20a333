/* Options and the RESULT line shared by the benchmark clients. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "tools/bench/common.h"

void bench_args_init(bench_args_t *a, const char *label) {
  memset(a, 0, sizeof(*a));
  a->inflight = 1;
  a->warmup = 2000;
  a->container = BENCH_CONTAINER_ID;
  a->label = label;
}

static double number(const char *opt, const char *s) {
  char *end;
  double v = strtod(s, &end);

  if (end == s || *end != '\0' || v < 0) {
    fprintf(stderr, "bad value for %s: %s\n", opt, s);
    exit(2);
  }
  return v;
}

int bench_args_take(bench_args_t *a, int argc, char **argv, int *i) {
  const char *opt = argv[*i], *val = *i + 1 < argc ? argv[*i + 1] : NULL;

  if (strcmp(opt, "--connect") != 0 && strcmp(opt, "--mode") != 0 &&
      strcmp(opt, "--inflight") != 0 && strcmp(opt, "--count") != 0 &&
      strcmp(opt, "--duration") != 0 && strcmp(opt, "--warmup") != 0 &&
      strcmp(opt, "--container") != 0 && strcmp(opt, "--label") != 0)
    return 0;
  if (val == NULL) {
    fprintf(stderr, "%s needs a value\n", opt);
    exit(2);
  }
  (*i)++;
  if (strcmp(opt, "--connect") == 0) {
    a->connect = val;
  } else if (strcmp(opt, "--mode") == 0) {
    if (strcmp(val, "seq") != 0 && strcmp(val, "pipe") != 0) {
      fprintf(stderr, "--mode is seq or pipe\n");
      exit(2);
    }
    a->pipe = strcmp(val, "pipe") == 0;
  } else if (strcmp(opt, "--inflight") == 0) {
    a->inflight = (unsigned)number(opt, val);
  } else if (strcmp(opt, "--count") == 0) {
    a->count = (uint64_t)number(opt, val);
  } else if (strcmp(opt, "--duration") == 0) {
    a->duration_s = number(opt, val);
  } else if (strcmp(opt, "--warmup") == 0) {
    a->warmup = (uint64_t)number(opt, val);
  } else if (strcmp(opt, "--container") == 0) {
    a->container = val;
  } else {
    a->label = val;
  }
  return 1;
}

int bench_args_check(bench_args_t *a, const char *prog) {
  if (a->connect == NULL) {
    fprintf(stderr, "%s: --connect is required\n", prog);
    return -1;
  }
  if (!a->pipe) a->inflight = 1;
  if (a->inflight < 1 || a->inflight > 1000000) {
    fprintf(stderr, "%s: --inflight must be 1..1000000\n", prog);
    return -1;
  }
  if ((a->count == 0) == (a->duration_s == 0)) {
    fprintf(stderr, "%s: give one of --count M or --duration S\n", prog);
    return -1;
  }
  return 0;
}

int bench_window_over(const bench_args_t *a, uint64_t t0, uint64_t now,
                      uint64_t done) {
  if (a->count != 0) return done >= a->count;
  return (double)(now - t0) >= a->duration_s * 1e9;
}

uint64_t bench_cpu_ns(void) {
  struct rusage ru;

  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}

static double per(uint64_t x, uint64_t n) {
  return n ? (double)x / (double)n : 0.0;
}

void bench_print_result(const char *impl, const bench_args_t *a, uint64_t ops,
                        uint64_t elapsed_ns, const bench_hist_t *h,
                        uint64_t allocs, const bench_io_t *io) {
  double secs = (double)elapsed_ns / 1e9;

  printf(
      "RESULT impl=%s label=%s mode=%s conc=%u ops_s=%.0f p50_us=%.2f "
      "p99_us=%.2f allocs_op=%.2f writes_op=%.4f reads_op=%.4f turns_op=%.4f "
      "bytes_write=%.0f bytes_read=%.0f cpu_us_op=%.3f\n",
      impl, a->label, a->pipe ? "pipe" : "seq", a->inflight,
      secs > 0 ? (double)ops / secs : 0.0, bench_hist_quantile(h, 0.50) / 1e3,
      bench_hist_quantile(h, 0.99) / 1e3, per(allocs, ops),
      per(io->writes, ops), per(io->reads, ops), per(io->turns, ops),
      per(io->bytes_written, io->writes), per(io->bytes_read, io->reads),
      per(io->cpu_ns, ops) / 1e3);
  fflush(stdout);
}
