/* The watchdog: what happens to the processes when the emulator itself is
 * killed.  In a utility VM nothing outlives the GCS (the VM goes with it);
 * here a SIGKILL to hcsb-guest (a test harness killing its process group,
 * say) would leave every session it started running.  So at start-up it
 * forks a small helper that escapes into its own session and learns the ID
 * of every session the emulator creates, through a pipe.  If that pipe
 * reaches EOF without the "all clean" word (0) that a normal exit writes
 * after reaping everything, the helper kills every member of those sessions
 * and exits.  A session whose ID now belongs to a leader that started at
 * another time was reused by someone else and is left alone.
 *
 * The helper is forked before anything is allocated and never allocates
 * itself, so (under valgrind too) it carries none of our heap. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest/guest.h"

#define MAX_SESSIONS 65536

typedef struct session_s {
  pid_t sid;
  uint64_t start; /* the leader's start time */
} session_t;

static int watch_fd = -1;
static session_t sessions[MAX_SESSIONS];
static size_t nsessions;

static int kill_listed(const hcsb__gstat_t *st, void *arg) {
  size_t i;
  int *found = arg;

  if (st->state == 'Z') return 0; /* dead already; its parent reaps it */
  for (i = 0; i < nsessions; i++) {
    if (sessions[i].sid == st->sid) {
      kill(st->pid, SIGKILL);
      *found = 1;
      break;
    }
  }
  return 0;
}

/* Forgets sessions whose ID a different leader holds now. */
static void drop_reused(void) {
  hcsb__gstat_t st;
  size_t i, j = 0;

  for (i = 0; i < nsessions; i++)
    if (hcsb__gstat_read(sessions[i].sid, &st) != 0 ||
        st.start_ticks == sessions[i].start)
      sessions[j++] = sessions[i];
  nsessions = j;
}

static void helper(int fd) {
  struct timespec pause = {0, 50 * 1000 * 1000};
  int null = open("/dev/null", O_RDWR), round, found;
  session_t s;
  ssize_t n;

  /* Out of the emulator's process group and off its bridge: the host must
   * see EOF when the emulator goes, whatever we do. */
  setsid();
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    if (null > 2) close(null);
  }
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);

  for (;;) {
    n = read(fd, &s, sizeof s);
    if (n < 0 && errno == EINTR) continue;
    if (n != (ssize_t)sizeof s) break; /* EOF: the emulator is gone */
    if (s.sid == 0) _exit(0);          /* it cleaned up itself */
    if (nsessions < MAX_SESSIONS) sessions[nsessions++] = s;
  }
  drop_reused();
  /* Members may still be forking: repeat until a scan finds nobody. */
  for (round = 0; round < 20; round++) {
    found = 0;
    hcsb__gstat_each(kill_listed, &found);
    if (!found) break;
    nanosleep(&pause, NULL);
  }
  _exit(0);
}

int hcsb__gwatch_start(void) {
  int p[2], status;
  pid_t mid;

  if (pipe2(p, O_CLOEXEC) < 0) return -errno;
  mid = fork();
  if (mid < 0) {
    int err = errno;
    close(p[0]);
    close(p[1]);
    return -err;
  }
  if (mid == 0) {
    /* Fork twice so the helper is nobody's child of ours: the emulator's
     * final reap kills all its children, and this one must outlive it. */
    close(p[1]);
    if (fork() == 0) helper(p[0]);
    _exit(0);
  }
  close(p[0]);
  while (waitpid(mid, &status, 0) < 0 && errno == EINTR) {
  }
  /* A stuck helper must never block us: drop words rather than wait. */
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  watch_fd = p[1];
  return 0;
}

static void send_word(const session_t *s) {
  ssize_t n;

  /* Smaller than PIPE_BUF: written whole or not at all. */
  do n = write(watch_fd, s, sizeof *s);
  while (n < 0 && errno == EINTR);
}

void hcsb__gwatch_add(pid_t sid) {
  session_t s;
  hcsb__gstat_t st;

  if (watch_fd < 0) return;
  memset(&s, 0, sizeof s); /* the padding goes down the pipe too */
  s.sid = sid;
  if (hcsb__gstat_read(sid, &st) == 0) s.start = st.start_ticks;
  send_word(&s);
}

void hcsb__gwatch_clean(void) {
  session_t s;

  if (watch_fd < 0) return;
  memset(&s, 0, sizeof s);
  send_word(&s);
  close(watch_fd);
  watch_fd = -1;
}
