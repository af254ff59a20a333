/* Corpus replay: a main() for a fuzz target built without libFuzzer, so
 * `make check` runs every saved input (seeds and past crashes) with gcc, the
 * sanitizer build and valgrind.
 *
 *   replay-NAME [FILE|DIR]...
 *
 * With no arguments it replays $srcdir/fuzz/corpus/NAME.  Inputs run
 * in-process, each named on stdout before it runs and under a time limit,
 * so a crash, a broken invariant or a hang fails the test and the last
 * name in the log is the culprit; leaks are found by the sanitizer's or
 * valgrind's check at exit.  (Forking per input isolates them better but
 * makes every child pay for its own leak check: minutes instead of a
 * second with ASan or valgrind.  HCSB_FUZZ_REPLAY_FORK=1 does it anyway,
 * to see every failing input of a run at once.)  Ends with the harness's
 * "replay-NAME: N passed, N failed" line. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

#ifndef HCSB_FUZZ_NAME
#error "build with -DHCSB_FUZZ_NAME=\"target\""
#endif

#define PER_INPUT_TIMEOUT_S 10

static unsigned passed, failed;

static int read_file(const char *path, uint8_t **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  uint8_t *p = NULL, *q;
  size_t n = 0, cap = 0, got;

  if (f == NULL) return -errno;
  do {
    if (n == cap) {
      cap = cap ? cap * 2 : 4096;
      q = realloc(p, cap);
      if (q == NULL) {
        free(p);
        fclose(f);
        return -ENOMEM;
      }
      p = q;
    }
    got = fread(p + n, 1, cap - n, f);
    n += got;
  } while (got > 0);
  fclose(f);
  /* Exactly `n` bytes, like libFuzzer, so ASan catches reads past the end. */
  q = malloc(n ? n : 1);
  if (q == NULL) {
    free(p);
    return -ENOMEM;
  }
  memcpy(q, p, n);
  free(p);
  *out = q;
  *len = n;
  return 0;
}

static unsigned timeout_s(void) {
  const char *s = getenv("HCSB_TEST_TIMEOUT_SCALE");
  long scale = s ? strtol(s, NULL, 10) : 1;
  return PER_INPUT_TIMEOUT_S * (unsigned)(scale > 0 ? scale : 1);
}

static int run_forked(const uint8_t *data, size_t len) {
  int status;
  pid_t pid = fork();

  if (pid < 0) return -errno;
  if (pid == 0) {
    alarm(timeout_s());
    LLVMFuzzerTestOneInput(data, len);
    exit(0); /* exit(), not _exit(): LeakSanitizer checks at exit */
  }
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -errno;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

static int forking(void) {
  const char *fork_env = getenv("HCSB_FUZZ_REPLAY_FORK");
  return fork_env != NULL && strcmp(fork_env, "1") == 0;
}

static void replay_file(const char *path) {
  uint8_t *data = NULL;
  size_t len = 0;
  int rc;

  rc = read_file(path, &data, &len);
  if (rc != 0) {
    fprintf(stderr, "FAIL %s: cannot read: %s\n", path, strerror(-rc));
    failed++;
    return;
  }
  if (!forking()) {
    printf("# %s\n", path);
    fflush(stdout);
    alarm(timeout_s()); /* SIGALRM ends the run: a hang is a failure */
    LLVMFuzzerTestOneInput(data, len);
    alarm(0);
    rc = 0;
  } else {
    rc = run_forked(data, len);
  }
  free(data);
  if (rc == 0) {
    passed++;
  } else {
    fprintf(stderr, "FAIL %s: %s %d\n", path,
            rc > 128 ? "killed by signal" : "exit status",
            rc > 128 ? rc - 128 : rc);
    failed++;
  }
}

static int regular_entry(const struct dirent *e) {
  return e->d_name[0] != '.';
}

static void replay_path(const char *path) {
  struct dirent **list;
  struct stat st;
  char sub[PATH_MAX];
  int i, n;

  if (stat(path, &st) != 0) {
    fprintf(stderr, "FAIL %s: %s\n", path, strerror(errno));
    failed++;
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    replay_file(path);
    return;
  }
  /* Sorted, so runs are reproducible and failures easy to compare. */
  n = scandir(path, &list, regular_entry, alphasort);
  if (n < 0) {
    fprintf(stderr, "FAIL %s: %s\n", path, strerror(errno));
    failed++;
    return;
  }
  for (i = 0; i < n; i++) {
    snprintf(sub, sizeof(sub), "%s/%s", path, list[i]->d_name);
    if (stat(sub, &st) == 0 && S_ISREG(st.st_mode)) replay_file(sub);
    free(list[i]);
  }
  free(list);
}

int main(int argc, char **argv) {
  const char *srcdir = getenv("srcdir");
  char dir[PATH_MAX];
  int i;

  if (argc > 1) {
    for (i = 1; i < argc; i++) replay_path(argv[i]);
  } else {
    snprintf(dir, sizeof(dir), "%s/fuzz/corpus/%s",
             srcdir && *srcdir ? srcdir : ".", HCSB_FUZZ_NAME);
    replay_path(dir);
  }
  if (passed + failed == 0) {
    fprintf(stderr, "no inputs found\n");
    failed++;
  }
  printf("replay-%s: %u passed, %u failed\n", HCSB_FUZZ_NAME, passed, failed);
  return failed ? 1 : 0;
}
