#include "runner.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_S 30

static char tmpdir_path[PATH_MAX];
static char path_buf[4][PATH_MAX];
static int path_next;

void hcsb_test_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "  FAIL %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  abort();
}

static const char *srcdir(void) {
  const char *s = getenv("srcdir"); /* set by automake's test driver */
  return s && *s ? s : ".";
}

uint8_t *hcsb_test_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf;
  long n;

  if (f == NULL) hcsb_test_fail(__FILE__, __LINE__, "cannot open %s", path);
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0)
    hcsb_test_fail(__FILE__, __LINE__, "cannot size %s", path);
  rewind(f);
  buf = malloc((size_t)n + 1);
  if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
    hcsb_test_fail(__FILE__, __LINE__, "cannot read %s", path);
  fclose(f);
  buf[n] = 0;
  *len = (size_t)n;
  return buf;
}

const char *hcsb_test_data_path(const char *rel) {
  char *p = path_buf[path_next++ & 3];
  snprintf(p, PATH_MAX, "%s/test/data/%s", srcdir(), rel);
  return p;
}

const char *hcsb_test_build_path(const char *rel) {
  char *p = path_buf[path_next++ & 3];
  const char *b = getenv("HCSB_BUILDDIR");
  snprintf(p, PATH_MAX, "%s/%s", b && *b ? b : ".", rel);
  return p;
}

const char *hcsb_test_tmpdir(void) {
  if (tmpdir_path[0] == '\0') {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir_path, sizeof tmpdir_path, "%s/hcsbt.XXXXXX",
             base && *base ? base : "/tmp");
    if (mkdtemp(tmpdir_path) == NULL) {
      perror("mkdtemp");
      abort();
    }
  }
  return tmpdir_path;
}

static void rm_rf(const char *path) {
  DIR *d = opendir(path);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      char sub[PATH_MAX];
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      struct stat st;
      if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
        rm_rf(sub);
      else
        unlink(sub);
    }
    closedir(d);
  }
  rmdir(path);
}

unsigned hcsb_test_timeout_scale(void) {
  const char *s = getenv("HCSB_TEST_TIMEOUT_SCALE");
  long k = s != NULL ? strtol(s, NULL, 10) : 1;

  return k > 1 ? (unsigned)k : 1;
}

double hcsb_test_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int selected(int argc, char **argv, const char *name) {
  if (argc <= 1) return 1;
  for (int i = 1; i < argc; i++)
    if (strstr(name, argv[i]) != NULL) return 1;
  return 0;
}

/* Runs one test in a child; returns 1 on pass. */
static int run_forked(const hcsb_test_t *t, char *why, size_t whylen) {
  unsigned limit = t->timeout_s ? t->timeout_s : DEFAULT_TIMEOUT_S;
  limit *= hcsb_test_timeout_scale(); /* valgrind is slow */
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(why, whylen, "fork: %s", strerror(errno));
    return 0;
  }
  if (pid == 0) {
    setpgid(0, 0); /* so a hung test's helpers can be killed together */
    tmpdir_path[0] = '\0';
    t->fn();
    if (tmpdir_path[0]) rm_rf(tmpdir_path);
    /* exit(), not _exit(): LeakSanitizer checks from an atexit hook. */
    exit(0);
  }
  double deadline = hcsb_test_now_ms() + limit * 1000.0;
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) {
      snprintf(why, whylen, "waitpid: %s", strerror(errno));
      return 0;
    }
    if (hcsb_test_now_ms() > deadline) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      snprintf(why, whylen, "timed out after %u s", limit);
      return 0;
    }
    usleep(2000);
  }
  kill(-pid, SIGKILL); /* leftovers of this test's process group, if any */
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 1;
  if (WIFSIGNALED(status))
    snprintf(why, whylen, "killed by signal %d", WTERMSIG(status));
  else
    snprintf(why, whylen, "exit status %d", WEXITSTATUS(status));
  return 0;
}

int hcsb_test_main(int argc, char **argv, const hcsb_test_t *tests, size_t n) {
  const char *prog = strrchr(argv[0], '/');
  prog = prog ? prog + 1 : argv[0];
  int nofork = getenv("HCSB_TEST_NOFORK") && atoi(getenv("HCSB_TEST_NOFORK"));
  signal(SIGPIPE, SIG_IGN);
  unsigned passed = 0, failed = 0, idx = 0;
  for (size_t i = 0; i < n; i++) {
    if (!selected(argc, argv, tests[i].name)) continue;
    idx++;
    char why[256] = "";
    double t0 = hcsb_test_now_ms();
    int ok;
    if (nofork) {
      tests[i].fn();
      ok = 1;
    } else {
      ok = run_forked(&tests[i], why, sizeof why);
    }
    double dt = hcsb_test_now_ms() - t0;
    if (ok) {
      passed++;
      printf("ok %u - %s (%.0f ms)\n", idx, tests[i].name, dt);
    } else {
      failed++;
      printf("not ok %u - %s: %s\n", idx, tests[i].name, why);
    }
    fflush(stdout);
  }
  printf("%s: %u passed, %u failed\n", prog, passed, failed);
  return failed ? 1 : 0;
}
