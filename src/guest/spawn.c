/* Starting processes.  We fork and exec ourselves instead of uv_spawn so
 * that every process is a session leader (its session is how a
 * "container" finds all its members, and how they are all killed) and a
 * tty process gets its pty as controlling terminal, which uv_spawn cannot
 * arrange.  Between fork and exec only async-signal-safe calls are made;
 * the child reports a chdir/exec failure through a close-on-exec pipe. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest/guest.h"

enum { STAGE_CHDIR = 1, STAGE_EXEC = 2, STAGE_SETUP = 3 };

typedef struct child_err_s {
  int stage;
  int err;
} child_err_t;

static void child_fail(int pipe_fd, int stage, int err) {
  child_err_t e = {stage, err};
  ssize_t n;

  do n = write(pipe_fd, &e, sizeof e);
  while (n < 0 && errno == EINTR);
  _exit(127);
}

/* Writes our PID into each cgroup.procs; failures leave us where we are. */
static void join_cgroups(char *const *files) {
  char num[24];
  size_t n = sizeof num;
  pid_t pid = getpid();
  int fd;

  /* No snprintf between fork and exec: digits by hand. */
  do num[--n] = (char)('0' + pid % 10);
  while ((pid /= 10) > 0 && n > 0);
  for (; files != NULL && *files != NULL; files++) {
    fd = open(*files, O_WRONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (write(fd, num + n, sizeof num - n) < 0) {
      /* not ours to have: it runs outside, like the emulator */
    }
    close(fd);
  }
}

/* The container's hostname: join the init's UTS namespace, or make one.
 * 1 when the process will see the hostname, 0 when not permitted. */
static int set_uts(const hcsb__gspawn_t *o) {
  if (o->uts_fd >= 0 && setns(o->uts_fd, CLONE_NEWUTS) == 0) return 1;
  if (o->hostname == NULL) return 1;
  return unshare(CLONE_NEWUTS) == 0 &&
         sethostname(o->hostname, strlen(o->hostname)) == 0;
}

static void child(const hcsb__gspawn_t *o, int pipe_fd) {
  char *const *envp = o->envp;
  sigset_t none;
  int fds[3], i, sig;

  /* The emulator ignores SIGPIPE and libuv may have handlers installed;
   * exec resets handlers but not ignored dispositions or the mask. */
  for (sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);

  if (setsid() < 0) child_fail(pipe_fd, STAGE_SETUP, errno);
  if (o->tty_slave >= 0 && ioctl(o->tty_slave, TIOCSCTTY, 0) < 0)
    child_fail(pipe_fd, STAGE_SETUP, errno);

  /* Move the sources above 2 first so dup2 onto 0..2 cannot clobber one
   * that is still needed. */
  for (i = 0; i < 3; i++) {
    fds[i] = fcntl(o->fds[i], F_DUPFD_CLOEXEC, 3);
    if (fds[i] < 0) child_fail(pipe_fd, STAGE_SETUP, errno);
  }
  for (i = 0; i < 3; i++) {
    if (dup2(fds[i], i) < 0) child_fail(pipe_fd, STAGE_SETUP, errno);
    /* Our sockets are non-blocking; a child expects blocking stdio. */
    fcntl(i, F_SETFL, fcntl(i, F_GETFL) & ~O_NONBLOCK);
  }

  join_cgroups(o->cgroup_procs);
  if (!set_uts(o) && o->envp_no_uts != NULL) envp = o->envp_no_uts;
  if (o->cwd != NULL && chdir(o->cwd) < 0)
    child_fail(pipe_fd, STAGE_CHDIR, errno);
  execve(o->path, o->argv, envp);
  child_fail(pipe_fd, STAGE_EXEC, errno);
}

static int executable(const char *path) {
  struct stat st;

  if (stat(path, &st) < 0) return -errno;
  if (S_ISDIR(st.st_mode)) return -EACCES;
  if (access(path, X_OK) < 0) return -errno;
  return 0;
}

/* What would make the child fail, found before forking: cheaper, and a
 * forked copy of us that exits without exec'ing would (under valgrind) be
 * reported as leaking our whole heap. */
static int precheck(const hcsb__gspawn_t *o, const char **stage) {
  struct stat st;
  int r;

  if (o->cwd != NULL) {
    *stage = "chdir";
    if (stat(o->cwd, &st) < 0) return -errno;
    if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
    if (access(o->cwd, X_OK) < 0) return -errno;
  }
  *stage = "exec";
  r = executable(o->path);
  return r;
}

int hcsb__gspawn(const hcsb__gspawn_t *o, pid_t *pid, const char **stage) {
  child_err_t e;
  int p[2], status, r;
  ssize_t n;
  pid_t c;

  r = precheck(o, stage);
  if (r < 0) return r;
  *stage = "fork";
  if (pipe2(p, O_CLOEXEC) < 0) return -errno;
  c = fork();
  if (c < 0) {
    int err = errno;
    close(p[0]);
    close(p[1]);
    return -err;
  }
  if (c == 0) {
    close(p[0]);
    child(o, p[1]);
  }
  close(p[1]);
  /* EOF means exec succeeded (the pipe closed on exec). */
  do n = read(p[0], &e, sizeof e);
  while (n < 0 && errno == EINTR);
  close(p[0]);
  if (n == (ssize_t)sizeof e) {
    while (waitpid(c, &status, 0) < 0 && errno == EINTR) {
    }
    *stage = e.stage == STAGE_CHDIR  ? "chdir"
             : e.stage == STAGE_EXEC ? "exec"
                                     : "setup";
    return -e.err;
  }
  *pid = c;
  hcsb__gwatch_add(c);
  return 0;
}

int hcsb__glookpath(const char *file, const char *path_env, char **out) {
  const char *p, *end;
  char *cand;
  size_t dl, fl = strlen(file);
  int r;

  *out = NULL;
  if (fl == 0) return -ENOENT;
  if (strchr(file, '/') != NULL) {
    /* Like Go: a path is used as is and exec reports what is wrong. */
    *out = strdup(file);
    return *out == NULL ? -ENOMEM : 0;
  }
  if (path_env == NULL) path_env = "";
  for (p = path_env;; p = end + 1) {
    end = strchr(p, ':');
    if (end == NULL) end = p + strlen(p);
    dl = (size_t)(end - p);
    cand = malloc(dl + fl + 3);
    if (cand == NULL) return -ENOMEM;
    if (dl == 0) {
      cand[0] = '.'; /* an empty element means the current directory */
      dl = 1;
    } else {
      memcpy(cand, p, dl);
    }
    cand[dl] = '/';
    memcpy(cand + dl + 1, file, fl + 1);
    r = executable(cand);
    if (r == 0) {
      *out = cand;
      return 0;
    }
    free(cand);
    if (*end == '\0') break;
  }
  return -ENOENT;
}

int hcsb__gis_descendant(pid_t pid) {
  pid_t self = getpid(), cur = pid;
  hcsb__gstat_t st;
  int depth;

  /* Bounded walk up the parent chain; we are a subreaper, so everything we
   * started (and its orphans) stays below us. */
  for (depth = 0; depth < 256; depth++) {
    if (cur <= 1) return 0;
    if (hcsb__gstat_read(cur, &st) != 0) return 0;
    if (st.ppid == self) return 1;
    cur = st.ppid;
  }
  return 0;
}

void hcsb__gkill_session(pid_t sid, int sig) {
  if (sid > 1) hcsb__gkill_sessions(&sid, 1, sig);
}
