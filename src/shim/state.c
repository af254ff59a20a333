/* The bundle's cleanup record (state.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shim/log.h"
#include "shim/readfile.h"
#include "shim/state.h"

#define HEADER "# hcsbridge shim state 1\n"
#define MAX_ENTRIES 4096
#define FILE_MAX (1u << 20)
/* How long `delete` waits for signalled processes to go, per round:
 * containerd gives the whole of `delete` 5 s, and there are three rounds
 * at most (the shim's SIGTERM and SIGKILL, the VM processes' SIGKILL). */
#define WAIT_MS 1000

typedef struct entry_s {
  char kind[16];
  pid_t pid;
  unsigned long long start;
  char *text; /* the path, or the pid entry's label */
} entry_t;

struct hcsb__shim_state_s {
  char *path; /* bundle/hcsb-state */
  entry_t *e;
  size_t n;
};

/* /proc/PID/stat read into buf, and where its command name ends: the name
 * may hold spaces and parentheses, so fields are counted from the last ')'
 * (the state, field 3, is two characters on).  NULL when it cannot be
 * read. */
static const char *read_stat(pid_t pid, char *buf, size_t size) {
  char path[64];
  ssize_t n;
  int fd;

  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  n = read(fd, buf, size - 1);
  close(fd);
  if (n <= 0) return NULL;
  buf[n] = '\0';
  return strrchr(buf, ')');
}

unsigned long long hcsb__shim_proc_start_time(pid_t pid) {
  char buf[1024];
  const char *p = read_stat(pid, buf, sizeof(buf));
  unsigned long long start = 0;
  int field;

  if (p == NULL) return 0;
  for (field = 2; *p != '\0' && field < 22; p++)
    if (*p == ' ') field++;
  if (field == 22) start = strtoull(p, NULL, 10);
  return start;
}

/* Alive and still the process recorded: start time matches and it is
 * not a zombie waiting for its parent. */
static int proc_is(pid_t pid, unsigned long long start) {
  char buf[1024];
  const char *p;

  if (pid <= 0 || hcsb__shim_proc_start_time(pid) != start || start == 0)
    return 0;
  p = read_stat(pid, buf, sizeof(buf));
  return p != NULL && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* ------------------------------------------------------------------------ */
/* Reading and writing the file */

static void entries_free(entry_t *e, size_t n) {
  size_t i;

  for (i = 0; i < n; i++) free(e[i].text);
  free(e);
}

static int valid_path(const char *p) {
  return p != NULL && p[0] == '/' && strchr(p, '\n') == NULL;
}

/* Parses one line into *e (text allocated); 0, 1 to skip, -ENOMEM. */
static int parse_line(char *line, entry_t *e) {
  char *sp = strchr(line, ' ');
  size_t klen;

  memset(e, 0, sizeof(*e));
  if (line[0] == '#' || line[0] == '\0' || sp == NULL) return 1;
  klen = (size_t)(sp - line);
  if (klen >= sizeof(e->kind)) return 1;
  memcpy(e->kind, line, klen);
  sp++;
  if (strcmp(e->kind, "shim") == 0 || strcmp(e->kind, "pid") == 0) {
    char *end;
    long pid = strtol(sp, &end, 10);
    if (pid <= 0 || *end != ' ') return 1;
    e->pid = (pid_t)pid;
    e->start = strtoull(end + 1, &end, 10);
    if (*end == ' ') end++;
    e->text = strdup(end);
  } else if (strcmp(e->kind, "task-pid") == 0) {
    long pid = strtol(sp, NULL, 10);
    if (pid <= 0) return 1;
    e->pid = (pid_t)pid;
    e->text = strdup("");
  } else if (strcmp(e->kind, "mount") == 0 || strcmp(e->kind, "file") == 0 ||
             strcmp(e->kind, "socket") == 0 || strcmp(e->kind, "tree") == 0) {
    if (!valid_path(sp)) return 1;
    e->text = strdup(sp);
  } else {
    SHIM_WARN("%s: unknown entry '%s' skipped", HCSB__SHIM_STATE_FILE, e->kind);
    return 1;
  }
  return e->text == NULL ? -ENOMEM : 0;
}

static int load(const char *path, entry_t **out, size_t *nout) {
  entry_t *e = NULL;
  size_t n = 0;
  char *text, *line, *save = NULL;
  size_t len;
  int r;

  *out = NULL;
  *nout = 0;
  r = hcsb__shim_read_file(path, FILE_MAX, &text, &len);
  if (r == -ENOENT) return 0;
  if (r < 0) return r;
  for (line = strtok_r(text, "\n", &save); line != NULL && r == 0;
       line = strtok_r(NULL, "\n", &save)) {
    entry_t one;
    int p = parse_line(line, &one);
    if (p < 0) r = p;
    if (p != 0) continue;
    if (n >= MAX_ENTRIES) {
      free(one.text);
      break;
    }
    entry_t *bigger = realloc(e, (n + 1) * sizeof(*e));
    if (bigger == NULL) {
      free(one.text);
      r = -ENOMEM;
      break;
    }
    e = bigger;
    e[n++] = one;
  }
  free(text);
  if (r < 0) {
    entries_free(e, n);
    return r;
  }
  *out = e;
  *nout = n;
  return 0;
}

/* The whole record, through a temporary file and rename(2). */
static int save(hcsb__shim_state_t *st) {
  size_t plen = strlen(st->path), i;
  char *tmp = malloc(plen + 5);
  FILE *f;
  int fd, r = 0;

  if (tmp == NULL) return -ENOMEM;
  snprintf(tmp, plen + 5, "%s.tmp", st->path);
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    r = -errno;
    free(tmp);
    return r;
  }
  f = fdopen(fd, "w");
  if (f == NULL) {
    r = -errno;
    close(fd);
    unlink(tmp);
    free(tmp);
    return r;
  }
  fputs(HEADER, f);
  for (i = 0; i < st->n; i++) {
    const entry_t *e = &st->e[i];
    if (strcmp(e->kind, "shim") == 0 || strcmp(e->kind, "pid") == 0)
      fprintf(f, "%s %d %llu%s%s\n", e->kind, (int)e->pid, e->start,
              e->text[0] ? " " : "", e->text);
    else if (strcmp(e->kind, "task-pid") == 0)
      fprintf(f, "task-pid %d\n", (int)e->pid);
    else
      fprintf(f, "%s %s\n", e->kind, e->text);
  }
  if (fflush(f) != 0 || ferror(f)) r = -EIO;
  if (fclose(f) != 0 && r == 0) r = -EIO;
  if (r == 0 && rename(tmp, st->path) < 0) r = -errno;
  if (r < 0) unlink(tmp);
  free(tmp);
  return r;
}

int hcsb__shim_state_open(const char *bundle, hcsb__shim_state_t **out) {
  hcsb__shim_state_t *st;
  size_t n;
  int r;

  if (bundle == NULL || bundle[0] != '/') return -EINVAL;
  st = calloc(1, sizeof(*st));
  if (st == NULL) return -ENOMEM;
  n = strlen(bundle) + sizeof(HCSB__SHIM_STATE_FILE) + 1;
  st->path = malloc(n);
  if (st->path == NULL) {
    free(st);
    return -ENOMEM;
  }
  snprintf(st->path, n, "%s/%s", bundle, HCSB__SHIM_STATE_FILE);
  r = load(st->path, &st->e, &st->n);
  if (r < 0) {
    free(st->path);
    free(st);
    return r;
  }
  *out = st;
  return 0;
}

void hcsb__shim_state_close(hcsb__shim_state_t *st) {
  if (st == NULL) return;
  entries_free(st->e, st->n);
  free(st->path);
  free(st);
}

/* ------------------------------------------------------------------------ */
/* Changes */

static int add(hcsb__shim_state_t *st, const char *kind, pid_t pid,
               unsigned long long start, const char *text) {
  entry_t *e;
  int r;

  if (st->n >= MAX_ENTRIES) return -ENOSPC;
  e = realloc(st->e, (st->n + 1) * sizeof(*e));
  if (e == NULL) return -ENOMEM;
  st->e = e;
  e = &st->e[st->n];
  memset(e, 0, sizeof(*e));
  snprintf(e->kind, sizeof(e->kind), "%s", kind);
  e->pid = pid;
  e->start = start;
  e->text = strdup(text != NULL ? text : "");
  if (e->text == NULL) return -ENOMEM;
  st->n++;
  r = save(st);
  if (r < 0) {
    st->n--;
    free(e->text);
  }
  return r;
}

/* Strikes off every entry `match` accepts, then saves. */
static int remove_where(hcsb__shim_state_t *st,
                        int (*match)(const entry_t *, const void *),
                        const void *arg) {
  size_t i, j = 0;
  int changed = 0;

  for (i = 0; i < st->n; i++) {
    if (match(&st->e[i], arg)) {
      free(st->e[i].text);
      changed = 1;
      continue;
    }
    st->e[j++] = st->e[i];
  }
  st->n = j;
  return changed ? save(st) : 0;
}

static int match_pid(const entry_t *e, const void *arg) {
  return strcmp(e->kind, "pid") == 0 && e->pid == *(const pid_t *)arg;
}

static int match_kind(const entry_t *e, const void *arg) {
  return strcmp(e->kind, arg) == 0;
}

typedef struct {
  const char *kind, *path;
} kind_path_t;

static int match_path(const entry_t *e, const void *arg) {
  const kind_path_t *kp = arg;
  return strcmp(e->kind, kp->kind) == 0 && strcmp(e->text, kp->path) == 0;
}

static int path_kind(const char *kind) {
  return kind != NULL &&
         (strcmp(kind, "mount") == 0 || strcmp(kind, "file") == 0 ||
          strcmp(kind, "tree") == 0 || strcmp(kind, "socket") == 0);
}

int hcsb__shim_state_add_pid(hcsb__shim_state_t *st, pid_t pid,
                             const char *label) {
  unsigned long long start;

  if (pid <= 0 || (label != NULL && strchr(label, '\n') != NULL))
    return -EINVAL;
  start = hcsb__shim_proc_start_time(pid);
  if (start == 0) return -ESRCH;
  return add(st, "pid", pid, start, label);
}

int hcsb__shim_state_remove_pid(hcsb__shim_state_t *st, pid_t pid) {
  return remove_where(st, match_pid, &pid);
}

int hcsb__shim_state_add_path(hcsb__shim_state_t *st, const char *kind,
                              const char *path) {
  if (!path_kind(kind) || !valid_path(path)) return -EINVAL;
  return add(st, kind, 0, 0, path);
}

int hcsb__shim_state_remove_path(hcsb__shim_state_t *st, const char *kind,
                                 const char *path) {
  kind_path_t kp = {kind, path};

  if (!path_kind(kind) || path == NULL) return -EINVAL;
  return remove_where(st, match_path, &kp);
}

int hcsb__shim_state_set_task_pid(hcsb__shim_state_t *st, pid_t pid) {
  int r;

  if (pid <= 0) return -EINVAL;
  r = remove_where(st, match_kind, "task-pid");
  return r < 0 ? r : add(st, "task-pid", pid, 0, NULL);
}

int hcsb__shim_state_set_shim(hcsb__shim_state_t *st, pid_t pid) {
  unsigned long long start;
  int r;

  if (pid <= 0) return -EINVAL;
  start = hcsb__shim_proc_start_time(pid);
  if (start == 0) return -ESRCH;
  r = remove_where(st, match_kind, "shim");
  return r < 0 ? r : add(st, "shim", pid, start, NULL);
}

pid_t hcsb__shim_state_task_pid(const hcsb__shim_state_t *st) {
  size_t i;

  for (i = 0; i < st->n; i++)
    if (strcmp(st->e[i].kind, "task-pid") == 0) return st->e[i].pid;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* delete's cleanup */

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Signals the recorded processes of `kind` that are still themselves,
 * and waits up to WAIT_MS for all of them to go; returns how many are
 * left. */
static size_t signal_all(hcsb__shim_state_t *st, const char *kind, int sig) {
  size_t i, left = 0;
  long waited;

  for (i = 0; i < st->n; i++) {
    const entry_t *e = &st->e[i];
    if (strcmp(e->kind, kind) != 0 || !proc_is(e->pid, e->start)) continue;
    SHIM_INFO("cleanup: signal %d to %s %d%s%s", sig, kind, (int)e->pid,
              e->text[0] ? " " : "", e->text);
    kill(e->pid, sig);
  }
  for (waited = 0;; waited += 20) {
    left = 0;
    for (i = 0; i < st->n; i++)
      if (strcmp(st->e[i].kind, kind) == 0 &&
          proc_is(st->e[i].pid, st->e[i].start))
        left++;
    if (left == 0 || waited >= WAIT_MS) return left;
    sleep_ms(20);
  }
}

static int remove_one(const char *path, const struct stat *sb, int flag,
                      struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  if (flag == FTW_DP || flag == FTW_D)
    return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
  return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* At least three components: a slip never removes /, /run or
 * /run/hcsbridge. */
static int deep_enough(const char *path) {
  int parts = 0;
  const char *p;

  for (p = path; *p != '\0'; p++)
    if (*p == '/' && p[1] != '\0' && p[1] != '/') parts++;
  return parts >= 3 && strstr(path, "/..") == NULL;
}

int hcsb__shim_state_cleanup(const char *bundle, pid_t *task_pid) {
  hcsb__shim_state_t *st;
  size_t i, failed = 0;
  int r;

  *task_pid = 0;
  r = hcsb__shim_state_open(bundle, &st);
  if (r < 0) {
    SHIM_WARN("cleanup: cannot read %s/%s: %s", bundle, HCSB__SHIM_STATE_FILE,
              strerror(-r));
    return 1;
  }
  *task_pid = hcsb__shim_state_task_pid(st);

  /* The shim first, gently, so it does not start anything more. */
  if (signal_all(st, "shim", SIGTERM) > 0)
    failed += signal_all(st, "shim", SIGKILL);
  failed += signal_all(st, "pid", SIGKILL);

  for (i = st->n; i-- > 0;) {
    const entry_t *e = &st->e[i];
    if (strcmp(e->kind, "mount") != 0) continue;
    if (umount2(e->text, MNT_DETACH) < 0 && errno != EINVAL &&
        errno != ENOENT) {
      SHIM_WARN("cleanup: umount %s: %s", e->text, strerror(errno));
      failed++;
    }
  }
  for (i = 0; i < st->n; i++) {
    const entry_t *e = &st->e[i];
    if (strcmp(e->kind, "file") != 0 && strcmp(e->kind, "socket") != 0)
      continue;
    if (unlink(e->text) < 0 && errno != ENOENT) {
      SHIM_WARN("cleanup: unlink %s: %s", e->text, strerror(errno));
      failed++;
    }
  }
  for (i = 0; i < st->n; i++) {
    const entry_t *e = &st->e[i];
    if (strcmp(e->kind, "tree") != 0) continue;
    if (!deep_enough(e->text)) {
      SHIM_WARN("cleanup: not removing %s: too close to the root", e->text);
      failed++;
      continue;
    }
    if (nftw(e->text, remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 &&
        errno != ENOENT) {
      SHIM_WARN("cleanup: remove %s: %s", e->text, strerror(errno));
      failed++;
    }
  }
  if (failed == 0 && unlink(st->path) < 0 && errno != ENOENT) failed++;
  hcsb__shim_state_close(st);
  return (int)failed;
}
