/* The acting backend's frame: turning it on and off, helper commands
 * (runc) run on the loop, and the exits of orphans nobody claimed yet.
 *
 * Helpers are started with hcsb__gspawn like every process here (their own
 * session, tracked by the watchdog) and reaped by the emulator's reaper,
 * which hands us every PID it has no record of.  A helper's PID finds its
 * job; any other is an orphan: a container process whose runc exited
 * (we are the child subreaper, so they come to us).  `runc exec -d` may
 * leave a process that exits before runc does, and is reaped before we
 * know its PID from the pid file; its exit is kept (bounded, newest win)
 * until the exec's completion claims it.  Claims only look at exits
 * reaped after the helper started, so a reused PID cannot be mistaken. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest/act.h"

extern char **environ;

struct hcsb__gjob_s {
  TAILQ_ENTRY(hcsb__gjob_s) link;
  hcsb__guest_t *g;
  pid_t pid;
  uint64_t seq;
  int capture;
  uv_pipe_t out;
  uv_timer_t timer;
  int nopen;    /* libuv handles not yet closed */
  int listed;   /* on g->act->jobs */
  int finished; /* the result is known; handles closing */
  int result;
  size_t len;
  hcsb__gjob_cb cb;
  void *data;
  char buf[HCSB__GA_JOB_OUTPUT];
};

const char *hcsb__ga_errstr(int err, char buf[128]) {
  snprintf(buf, 128, "%s", strerror(err));
  buf[0] = (char)tolower((unsigned char)buf[0]);
  return buf;
}

void hcsb__ga_status_text(int status, char *out, size_t size) {
  char eb[128];

  if (status == -ETIMEDOUT) {
    snprintf(out, size, "timed out after %u s", HCSB__GA_JOB_MS / 1000);
  } else if (status < 0) {
    snprintf(out, size, "%s", hcsb__ga_errstr(-status, eb));
  } else if (WIFEXITED(status)) {
    snprintf(out, size, "exit status %d", WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    const char *name = strsignal(WTERMSIG(status));
    snprintf(eb, sizeof eb, "%s", name != NULL ? name : "unknown signal");
    eb[0] = (char)tolower((unsigned char)eb[0]);
    snprintf(out, size, "signal: %s", eb);
  } else {
    snprintf(out, size, "wait status %d", status);
  }
}

int hcsb__ga_path_ok(const char *path) {
  const char *p;
  size_t n;

  if (path == NULL || path[0] != '/' || strlen(path) > 4095 ||
      strchr(path, '\n') != NULL || path[strspn(path, "/")] == '\0')
    return 0;
  for (p = path; *p != '\0';) {
    while (*p == '/') p++;
    n = strcspn(p, "/");
    if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
      return 0;
    p += n;
  }
  return 1;
}

int hcsb__ga_state_path_ok(const char *path) {
  size_t n;

  if (!hcsb__ga_path_ok(path)) return 0;
  while (*path == '/') path++;
  n = strcspn(path, "/");
  if (n != 3 || (strncmp(path, "run", 3) != 0 && strncmp(path, "tmp", 3) != 0))
    return 0;
  path += n;
  while (*path == '/') path++;
  return *path != '\0'; /* something below it */
}

/* ------------------------------------------------------------------------ */
/* Jobs */

static void job_closed(uv_handle_t *h) {
  hcsb__gjob_t *j = h->data;

  if (--j->nopen > 0) return;
  if (j->listed) {
    TAILQ_REMOVE(&j->g->act->jobs, j, link);
    j->g->act->njobs--;
  }
  j->buf[j->len] = '\0';
  if (j->cb != NULL) j->cb(j->data, j->result, j->buf, j->seq);
  free(j);
}

/* Reads what a helper printed, without blocking (it has exited, or is
 * being given up on). */
static void job_drain(hcsb__gjob_t *j) {
  uv_os_fd_t fd;
  ssize_t n;

  if (!j->capture || uv_fileno((uv_handle_t *)&j->out, &fd) != 0) return;
  for (;;) {
    char tmp[1024];
    n = read(fd, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (j->len < sizeof j->buf - 1) {
      size_t k = (size_t)n < sizeof j->buf - 1 - j->len
                     ? (size_t)n
                     : sizeof j->buf - 1 - j->len;
      memcpy(j->buf + j->len, tmp, k);
      j->len += k;
    }
  }
}

static void job_finish(hcsb__gjob_t *j, int result) {
  if (j->finished) return;
  j->finished = 1;
  j->result = result;
  job_drain(j);
  if (j->capture) uv_close((uv_handle_t *)&j->out, job_closed);
  uv_close((uv_handle_t *)&j->timer, job_closed);
}

static void on_job_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  hcsb__gjob_t *j = h->data;
  (void)hint;
  if (j->len >= sizeof j->buf - 1) {
    /* Full: keep reading (so the helper never blocks) into the last
     * byte, which is overwritten by the terminator. */
    *buf = uv_buf_init(j->buf + sizeof j->buf - 1, 1);
    return;
  }
  *buf = uv_buf_init(j->buf + j->len, (unsigned)(sizeof j->buf - 1 - j->len));
}

static void on_job_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  hcsb__gjob_t *j = s->data;
  (void)buf;
  if (n > 0 && j->len < sizeof j->buf - 1) j->len += (size_t)n;
  if (n < 0) uv_read_stop(s); /* EOF: the exit finishes the job */
}

static void on_job_timeout(uv_timer_t *t) {
  hcsb__gjob_t *j = t->data;

  hcsb__glog(j->g, 0, "helper %d (%s) still running after %u s: killed",
             (int)j->pid, j->buf[0] != '\0' ? "with output" : "no output",
             HCSB__GA_JOB_MS / 1000);
  kill(j->pid, SIGKILL);
  hcsb__gkill_session(j->pid, SIGKILL);
  job_finish(j, -ETIMEDOUT);
}

int hcsb__gjob_run(hcsb__guest_t *g, const char *const *argv, const int fds[3],
                   hcsb__gjob_cb cb, void *data) {
  hcsb__gjob_t *j = calloc(1, sizeof *j);
  int cfd[3] = {-1, -1, -1}, opened[3] = {0, 0, 0}, pfd[2] = {-1, -1};
  int have_out = 0, have_timer = 0, i, r;
  hcsb__gspawn_t o;
  const char *stage;

  if (j == NULL) return -ENOMEM;
  if (g->act->njobs >= HCSB__GA_MAX_JOBS) {
    free(j);
    return -EAGAIN;
  }
  j->g = g;
  j->seq = g->act->reaps;
  for (i = 0; i < 3; i++) {
    if (fds[i] >= 0) {
      cfd[i] = fds[i];
    } else if (fds[i] == -1 && i > 0) {
      if (pfd[0] < 0 && pipe2(pfd, O_CLOEXEC) < 0) {
        r = -errno;
        goto fail;
      }
      cfd[i] = pfd[1];
      j->capture = 1;
    } else {
      cfd[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
      if (cfd[i] < 0) {
        r = -errno;
        goto fail;
      }
      opened[i] = 1;
    }
  }
  r = uv_timer_init(g->loop, &j->timer);
  if (r < 0) goto fail;
  j->timer.data = j;
  j->nopen++;
  have_timer = 1;
  if (j->capture) {
    r = uv_pipe_init(g->loop, &j->out, 0);
    if (r < 0) goto fail;
    j->out.data = j;
    j->nopen++;
    have_out = 1;
    r = uv_pipe_open(&j->out, pfd[0]);
    if (r < 0) goto fail;
    pfd[0] = -1; /* the handle has it */
  }

  memset(&o, 0, sizeof o);
  o.path = argv[0];
  o.argv = (char *const *)argv;
  o.envp = environ;
  memcpy(o.fds, cfd, sizeof o.fds);
  o.tty_slave = -1;
  o.uts_fd = -1;
  r = hcsb__gspawn(&o, &j->pid, &stage);
  if (r < 0) goto fail;
  for (i = 0; i < 3; i++)
    if (opened[i]) close(cfd[i]);
  if (pfd[1] >= 0) close(pfd[1]);
  j->cb = cb;
  j->data = data;
  if (j->capture)
    uv_read_start((uv_stream_t *)&j->out, on_job_alloc, on_job_read);
  uv_timer_start(&j->timer, on_job_timeout, HCSB__GA_JOB_MS, 0);
  TAILQ_INSERT_TAIL(&g->act->jobs, j, link);
  j->listed = 1;
  g->act->njobs++;
  return 0;

fail:
  for (i = 0; i < 3; i++)
    if (opened[i]) close(cfd[i]);
  if (pfd[0] >= 0) close(pfd[0]);
  if (pfd[1] >= 0) close(pfd[1]);
  if (j->nopen == 0) {
    free(j);
    return r;
  }
  /* Initialised handles close first; the record goes in their callback
   * (j->cb is NULL: nobody is called). */
  j->finished = 1;
  if (have_out) uv_close((uv_handle_t *)&j->out, job_closed);
  if (have_timer) uv_close((uv_handle_t *)&j->timer, job_closed);
  return r;
}

int hcsb__gjob_run_sync(const char *const *argv, unsigned timeout_ms) {
  struct timespec pause = {0, 10 * 1000 * 1000};
  int fds[3], i, r, status;
  unsigned waited = 0;
  hcsb__gspawn_t o;
  const char *stage;
  pid_t pid, w;

  for (i = 0; i < 3; i++) {
    fds[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fds[i] < 0) {
      r = -errno;
      while (i-- > 0) close(fds[i]);
      return r;
    }
  }
  memset(&o, 0, sizeof o);
  o.path = argv[0];
  o.argv = (char *const *)argv;
  o.envp = environ;
  memcpy(o.fds, fds, sizeof o.fds);
  o.tty_slave = -1;
  o.uts_fd = -1;
  r = hcsb__gspawn(&o, &pid, &stage);
  for (i = 0; i < 3; i++) close(fds[i]);
  if (r < 0) return r;
  for (;;) {
    w = waitpid(pid, &status, WNOHANG);
    if (w == pid) return status;
    if (w < 0 && errno != EINTR) return -errno;
    if (waited >= timeout_ms) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return -ETIMEDOUT;
    }
    nanosleep(&pause, NULL);
    waited += 10;
  }
}

/* ------------------------------------------------------------------------ */
/* Orphans */

int hcsb__ga_claim(hcsb__guest_t *g, pid_t pid, uint64_t seq, int *status) {
  hcsb__gact_t *a = g->act;
  unsigned i;

  for (i = 0; i < HCSB__GA_ORPHANS; i++)
    if (a->orphans[i].pid == pid && a->orphans[i].seq > seq) {
      *status = a->orphans[i].status;
      a->orphans[i].pid = 0;
      return 1;
    }
  return 0;
}

void hcsb__ga_reaped(hcsb__guest_t *g, pid_t pid, int status) {
  hcsb__gact_t *a = g->act;
  hcsb__gjob_t *j;

  a->reaps++;
  TAILQ_FOREACH(j, &a->jobs, link) {
    if (j->pid != pid || j->finished) continue;
    job_finish(j, status);
    return;
  }
  /* Newest win: the slot reused is the oldest. */
  a->orphans[a->next_orphan].pid = pid;
  a->orphans[a->next_orphan].status = status;
  a->orphans[a->next_orphan].seq = a->reaps;
  a->next_orphan = (a->next_orphan + 1) % HCSB__GA_ORPHANS;
}

/* ------------------------------------------------------------------------ */
/* On and off */

int hcsb__ga_init(hcsb__guest_t *g) {
  hcsb__gact_t *a = calloc(1, sizeof *a);
  const char *path = getenv("PATH");
  int r;

  if (a == NULL) return -ENOMEM;
  TAILQ_INIT(&a->jobs);
  TAILQ_INIT(&a->ops);
  TAILQ_INIT(&a->mounts);
  TAILQ_INIT(&a->creating);
  r = hcsb__glookpath(
      "runc", path != NULL ? path : "/bin:/sbin:/usr/bin:/usr/sbin", &a->runc);
  if (r < 0) {
    a->runc = NULL;
    hcsb__glog(g, 0, "no runc in PATH: containers cannot be created");
  }
  if (mkdir(HCSB__GA_STATE_DIR, 0700) < 0 && errno != EEXIST)
    hcsb__glog(g, 0, "cannot create %s: %s", HCSB__GA_STATE_DIR,
               strerror(errno));
  g->act = a;
  return 0;
}

void hcsb__ga_teardown(hcsb__guest_t *g) {
  hcsb__gjob_t *j;

  /* Helpers die with the session; their owners hear -ECANCELED and free
   * what they hold without answering. */
  TAILQ_FOREACH(j, &g->act->jobs, link) {
    if (j->finished) continue;
    kill(j->pid, SIGKILL);
    hcsb__gkill_session(j->pid, SIGKILL);
    job_finish(j, -ECANCELED);
  }
  hcsb__ga_storage_teardown(g);
}

void hcsb__ga_final(hcsb__guest_t *g) {
  hcsb__gact_t *a = g->act;

  hcsb__ga_ctr_final(g);
  hcsb__ga_storage_final(g);
  free(a->runc);
  free(a);
  g->act = NULL;
}
