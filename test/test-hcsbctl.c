/* End-to-end tests of hcsbctl against the built-in emulator: exact stdout,
 * stderr and exit statuses of the built binary. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

/* ------------------------------------------------------------------------ */
/* Running hcsbctl */

typedef struct run_s {
  pid_t pid;
  int in, out, err; /* our ends; -1 once closed */
  const char *input;
  size_t input_len, input_off;
  char *obuf, *ebuf;
  size_t olen, ocap, elen, ecap;
  int status; /* exit status, or 128+signal */
  int exited;
  int keep_in; /* R_KEEP_STDIN */
} run_t;

enum {
  R_NO_GUEST_ENV = 1, /* leave HCSB_GUEST unset: the tool finds the emulator */
  R_STDIN_NULL = 2,   /* stdin is /dev/null instead of a pipe */
  R_OWN_PGRP = 4,     /* hcsbctl leads a process group of its own, as a
                         shell's foreground job does: kill(-pid) is what a
                         terminal's Ctrl-C does to it */
  R_CAPABLE = 8,      /* a guest that signals and sizes UVM processes (the
                         emulator with --allow-uvm-signal); the built-in
                         one refuses, as a real GCS does */
  R_KEEP_STDIN = 16,  /* stdin stays open after the input was written */
};

/* The --spawn command of a guest able to signal and size UVM processes. */
static const char *capable_spawn(void) {
  static char cmd[PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "exec '%s' --allow-uvm-signal",
           hcsb_test_build_path("src/hcsb-guest"));
  return cmd;
}

/* The real executable, not libtool's wrapper script: signals must reach
 * hcsbctl itself, and valgrind should trace it rather than a shell. */
static void exec_hcsbctl(char **argv) {
  const char *lt[] = {"src/.libs/lt-hcsbctl", "src/.libs/hcsbctl"};
  for (size_t i = 0; i < 2; i++) {
    const char *p = hcsb_test_build_path(lt[i]);
    if (access(p, X_OK) == 0) {
      char libs[PATH_MAX * 2];
      const char *old = getenv("LD_LIBRARY_PATH");
      snprintf(libs, sizeof libs, "%s%s%s", hcsb_test_build_path(".libs"),
               old && *old ? ":" : "", old && *old ? old : "");
      setenv("LD_LIBRARY_PATH", libs, 1);
      argv[0] = (char *)p;
      execv(p, argv);
    }
  }
  argv[0] = (char *)hcsb_test_build_path("src/hcsbctl");
  execv(argv[0], argv);
  _exit(127);
}

static void child_stdio(int fd, int target) {
  if (fd != target) {
    dup2(fd, target);
    close(fd);
  }
}

/* Starts hcsbctl with `args` (NULL-terminated, without argv[0]). */
static void rstart_v(run_t *r, int flags, const char *input, size_t input_len,
                     const char *const *args) {
  int pin[2], pout[2], perr[2];
  memset(r, 0, sizeof(*r));
  r->input = input;
  r->input_len = input_len;
  r->keep_in = (flags & R_KEEP_STDIN) != 0;
  CHECK(pipe(pin) == 0 && pipe(pout) == 0 && pipe(perr) == 0);
  size_t n = 0, k = 1;
  while (args[n]) n++;
  char **argv = calloc(n + 4, sizeof(*argv));
  CHECK(argv != NULL);
  if (flags & R_CAPABLE) {
    argv[k++] = "--spawn";
    argv[k++] = (char *)capable_spawn();
  }
  for (size_t i = 0; i < n; i++) argv[k++] = (char *)args[i];
  r->pid = fork();
  CHECK(r->pid >= 0);
  if (r->pid == 0) {
    close(pin[1]);
    close(pout[0]);
    close(perr[0]);
    if (flags & R_STDIN_NULL) {
      close(pin[0]);
      pin[0] = open("/dev/null", O_RDONLY);
    }
    child_stdio(pin[0], 0);
    child_stdio(pout[1], 1);
    child_stdio(perr[1], 2);
    if (flags & R_OWN_PGRP) setpgid(0, 0);
    if (flags & R_NO_GUEST_ENV)
      unsetenv("HCSB_GUEST");
    else
      setenv("HCSB_GUEST", hcsb_test_build_path("src/hcsb-guest"), 1);
    exec_hcsbctl(argv);
  }
  if (flags & R_OWN_PGRP) setpgid(r->pid, r->pid); /* whichever runs first */
  free(argv);
  close(pin[0]);
  close(pout[1]);
  close(perr[1]);
  r->in = pin[1];
  r->out = pout[0];
  r->err = perr[0];
  fcntl(r->in, F_SETFL, O_NONBLOCK);
  signal(SIGPIPE, SIG_IGN);
  if ((input == NULL || input_len == 0) && !r->keep_in) {
    close(r->in);
    r->in = -1;
  }
}

static void rstart(run_t *r, int flags, const char *input, ...) {
  const char *args[64];
  size_t n = 0;
  va_list ap;
  va_start(ap, input);
  while (n < 63 && (args[n] = va_arg(ap, const char *)) != NULL) n++;
  va_end(ap);
  args[n] = NULL;
  rstart_v(r, flags, input, input ? strlen(input) : 0, args);
}

static void append(char **buf, size_t *len, size_t *cap, const char *data,
                   size_t n) {
  if (*len + n + 1 > *cap) {
    *cap = (*len + n + 1) * 2;
    *buf = realloc(*buf, *cap);
    CHECK(*buf != NULL);
  }
  memcpy(*buf + *len, data, n);
  *len += n;
  (*buf)[*len] = '\0';
}

/* Moves bytes for at most `ms`; returns 1 when `cond` holds (checked after
 * every read), 0 when both outputs ended or the time ran out. */
static int rpump(run_t *r, int (*cond)(run_t *), double ms) {
  double deadline = hcsb_test_now_ms() + ms;
  while (r->out >= 0 || r->err >= 0) {
    if (cond && cond(r)) return 1;
    struct pollfd p[3];
    int n = 0;
    if (r->in >= 0 && r->input_off < r->input_len)
      p[n++] = (struct pollfd){.fd = r->in, .events = POLLOUT};
    if (r->out >= 0) p[n++] = (struct pollfd){.fd = r->out, .events = POLLIN};
    if (r->err >= 0) p[n++] = (struct pollfd){.fd = r->err, .events = POLLIN};
    double left = deadline - hcsb_test_now_ms();
    if (left <= 0) return 0;
    int rc = poll(p, (nfds_t)n, (int)left + 1);
    if (rc < 0 && errno == EINTR) continue;
    CHECK(rc >= 0);
    for (int i = 0; i < n; i++) {
      if (!p[i].revents) continue;
      if (p[i].fd == r->in) {
        ssize_t w =
            write(r->in, r->input + r->input_off, r->input_len - r->input_off);
        if (w > 0) r->input_off += (size_t)w;
        if (w < 0 && errno != EAGAIN) r->input_off = r->input_len;
        if (r->input_off == r->input_len && !r->keep_in) {
          close(r->in);
          r->in = -1;
        }
        continue;
      }
      char chunk[65536];
      ssize_t got = read(p[i].fd, chunk, sizeof chunk);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (p[i].fd == r->out) {
        if (got <= 0)
          close(r->out), r->out = -1;
        else
          append(&r->obuf, &r->olen, &r->ocap, chunk, (size_t)got);
      } else {
        if (got <= 0)
          close(r->err), r->err = -1;
        else
          append(&r->ebuf, &r->elen, &r->ecap, chunk, (size_t)got);
      }
    }
  }
  return cond ? cond(r) : 0;
}

/* Collects everything and the exit status; fails the test on a hang. */
static void rfinish(run_t *r) {
  double limit = 20000 * hcsb_test_timeout_scale(),
         deadline = hcsb_test_now_ms() + limit;
  rpump(r, NULL, limit);
  if (r->in >= 0) close(r->in), r->in = -1;
  int status;
  for (;;) {
    pid_t w = waitpid(r->pid, &status, WNOHANG);
    if (w == r->pid) break;
    if (hcsb_test_now_ms() > deadline) {
      kill(r->pid, SIGKILL);
      waitpid(r->pid, &status, 0);
      hcsb_test_fail(__FILE__, __LINE__, "hcsbctl hung; stdout: %s stderr: %s",
                     r->obuf ? r->obuf : "", r->ebuf ? r->ebuf : "");
    }
    usleep(2000);
  }
  if (r->out >= 0) close(r->out), r->out = -1;
  if (r->err >= 0) close(r->err), r->err = -1;
  r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r->exited = 1;
  if (r->obuf == NULL) append(&r->obuf, &r->olen, &r->ocap, "", 0);
  if (r->ebuf == NULL) append(&r->ebuf, &r->elen, &r->ecap, "", 0);
}

static void rfree(run_t *r) {
  free(r->obuf);
  free(r->ebuf);
}

#define CHECK_PREFIX(s, prefix)                                       \
  do {                                                                \
    if (strncmp((s), (prefix), strlen(prefix)) != 0)                  \
      hcsb_test_fail(__FILE__, __LINE__, "\"%s\" does not start: %s", \
                     (prefix), (s));                                  \
  } while (0)

#define CHECK_HAS(hay, needle)                                                \
  do {                                                                        \
    if (strstr((hay), (needle)) == NULL)                                      \
      hcsb_test_fail(__FILE__, __LINE__, "\"%s\" not found in: %s", (needle), \
                     (hay));                                                  \
  } while (0)

static size_t count_char(const char *s, char c) {
  size_t n = 0;
  for (; *s; s++) n += *s == c;
  return n;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  CHECK(fputs(text, f) >= 0);
  CHECK(fclose(f) == 0);
}

static const char *tmp_path(const char *name) {
  static char buf[4][PATH_MAX];
  static int next;
  char *p = buf[next++ & 3];
  snprintf(p, PATH_MAX, "%s/%s", hcsb_test_tmpdir(), name);
  return p;
}

/* ------------------------------------------------------------------------ */
/* run */

static void test_run_stdout_stderr_exit(void) {
  run_t r;
  rstart(&r, 0, NULL, "run", "--", "/bin/sh", "-c",
         "echo out; echo err >&2; exit 7", NULL);
  rfinish(&r);
  CHECK_STR(r.obuf, "out\n");
  CHECK_STR(r.ebuf, "err\n");
  CHECK_EQ(r.status, 7);
  rfree(&r);
}

static void test_run_without_dashdash(void) {
  run_t r;
  /* The first operand starts the command; its own options stay its own. */
  rstart(&r, 0, NULL, "run", "-e", "GREETING=hi there", "-w", "/tmp", "/bin/sh",
         "-c", "echo \"$GREETING\"; pwd", NULL);
  rfinish(&r);
  CHECK_STR(r.obuf, "hi there\n/tmp\n");
  CHECK_STR(r.ebuf, "");
  CHECK_EQ(r.status, 0);
  rfree(&r);
}

static void test_run_stdin_cat(void) {
  run_t r;
  rstart(&r, 0, "hello\nworld\n", "run", "-i", "--", "cat", NULL);
  rfinish(&r);
  CHECK_STR(r.obuf, "hello\nworld\n");
  CHECK_STR(r.ebuf, "");
  CHECK_EQ(r.status, 0);
  rfree(&r);
}

/* 4 MiB through stdin and back: every byte intact in order, with both
 * directions' back-pressure in play. */
static void test_run_stdin_large(void) {
  size_t n = 4u << 20;
  char *data = malloc(n);
  CHECK(data != NULL);
  for (size_t i = 0; i < n; i++)
    data[i] = (char)('a' + (i * 7 + i / 4096) % 26);
  const char *args[] = {"run", "-i", "--", "cat", NULL};
  run_t r;
  rstart_v(&r, 0, data, n, args);
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK_EQ(r.olen, n);
  CHECK_MEM(r.obuf, data, n);
  free(data);
  rfree(&r);
}

/* Without -i the process gets no stdin, whatever ours is. */
static void test_run_no_stdin_without_i(void) {
  run_t r;
  rstart(&r, 0, "must not arrive\n", "run", "--", "/bin/sh", "-c",
         "cat; echo done", NULL);
  rfinish(&r);
  CHECK_STR(r.obuf, "done\n");
  CHECK_EQ(r.status, 0);
  rfree(&r);
}

/* stdin a regular file: read with uv_fs_read, not as a stream. */
static void test_run_stdin_regular_file(void) {
  const char *path = tmp_path("input.txt");
  write_file(path, "line one\nline two\n");
  run_t r;
  rstart(&r, R_STDIN_NULL, NULL, "run", "-i", "--", "cat", NULL);
  rfinish(&r); /* /dev/null: a character device, also not a stream */
  CHECK_STR(r.obuf, "");
  CHECK_EQ(r.status, 0);
  rfree(&r);

  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    int fd = open(path, O_RDONLY);
    int out = open(tmp_path("output.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 0);
    dup2(out, 1); /* a regular file as stdout too */
    setenv("HCSB_GUEST", hcsb_test_build_path("src/hcsb-guest"), 1);
    char *argv[] = {NULL, "run", "-i", "--", "cat", NULL};
    exec_hcsbctl(argv);
  }
  int status;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  char buf[256] = {0};
  int fd = open(tmp_path("output.txt"), O_RDONLY);
  CHECK(fd >= 0);
  CHECK(read(fd, buf, sizeof buf - 1) >= 0);
  close(fd);
  CHECK_STR(buf, "line one\nline two\n");
}

static void test_run_large_output(void) {
  run_t r;
  rstart(&r, 0, NULL, "run", "--", "/bin/sh", "-c",
         "head -c 3000000 /dev/zero | tr '\\0' x; head -c 1000000 /dev/zero | "
         "tr '\\0' y >&2",
         NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK_EQ(r.olen, 3000000);
  CHECK_EQ(r.elen, 1000000);
  CHECK(r.obuf[0] == 'x' && r.obuf[r.olen - 1] == 'x');
  CHECK(r.ebuf[0] == 'y' && r.ebuf[r.elen - 1] == 'y');
  rfree(&r);
}

static void test_run_signal_death(void) {
  run_t r;
  rstart(&r, 0, NULL, "run", "--", "/bin/sh", "-c",
         "echo before; kill -KILL $$", NULL);
  rfinish(&r);
  CHECK_STR(r.obuf, "before\n");
  /* The Linux guest does not say which signal, and hcsbctl sent none. */
  CHECK_STR(r.ebuf,
            "hcsbctl: run: the process was killed by a signal (the guest does "
            "not say which)\n");
  CHECK_EQ(r.status, 255);
  rfree(&r);
}

static void test_run_tty_without_terminal(void) {
  run_t r;
  /* No terminal here: -t still gives the process a pty, stderr merged. */
  rstart(&r, 0, NULL, "run", "-t", "--", "/bin/sh", "-c",
         "test -t 0 && test -t 1 && echo is-a-tty; echo to-stderr >&2; exit 3",
         NULL);
  rfinish(&r);
  CHECK_STR(r.obuf, "is-a-tty\r\nto-stderr\r\n");
  CHECK_STR(r.ebuf, "");
  CHECK_EQ(r.status, 3);
  rfree(&r);
}

static int saw_ready(run_t *r) {
  return r->obuf && strstr(r->obuf, "ready\n") != NULL;
}

#define TRAP_INT "trap 'echo got-INT; exit 5' INT; "
#define READY_LOOP "echo ready; while :; do sleep 0.05; done"

/* Runs `/bin/sh -c script` (which prints "ready" once set up), sends `sig`
 * to hcsbctl, or with R_OWN_PGRP to its whole process group as a terminal
 * does, and collects the outcome. */
static void run_and_signal(run_t *r, int flags, const char *script, int sig) {
  rstart(r, flags | R_CAPABLE, NULL, "run", "--", "/bin/sh", "-c", script,
         NULL);
  CHECK(rpump(r, saw_ready, 10000 * hcsb_test_timeout_scale()));
  CHECK(kill(flags & R_OWN_PGRP ? -r->pid : r->pid, sig) == 0);
  rfinish(r);
}

/* SIGINT to hcsbctl reaches the process (a guest that can signal UVM
 * processes: the emulator with --allow-uvm-signal). */
static void test_run_forwards_sigint(void) {
  run_t r;
  run_and_signal(&r, 0, TRAP_INT READY_LOOP, SIGINT);
  CHECK_STR(r.obuf, "ready\ngot-INT\n");
  CHECK_EQ(r.status, 5);
  rfree(&r);
}

static void test_run_timeout(void) {
  run_t r;
  char ms[32];
  snprintf(ms, sizeof ms, "%d",
           (int)(500 * hcsb_test_timeout_scale())); /* connecting counts too */
  rstart(&r, 0, NULL, "--timeout", ms, "run", "--", "sleep", "30", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 4);
  CHECK_HAS(r.ebuf, "hcsbctl: run: timed out waiting for the process to exit");
  rfree(&r);
}

/* Starts hcsbctl (argv[0] is filled in) with the pty's slave as its
 * controlling terminal and stdio, as a shell in a terminal would. */
static pid_t pty_start(int master, int slave, char **argv) {
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    close(master);
    setsid();
    ioctl(slave, TIOCSCTTY, 0);
    dup2(slave, 0);
    dup2(slave, 1);
    dup2(slave, 2);
    if (slave > 2) close(slave);
    setenv("HCSB_GUEST", hcsb_test_build_path("src/hcsb-guest"), 1);
    exec_hcsbctl(argv);
  }
  return pid;
}

/* Reads what the terminal shows into out (NUL-terminated) until `until`
 * appears or `ms` pass. */
static size_t pty_read_until(int master, char *out, size_t cap, size_t len,
                             const char *until, double ms) {
  double deadline = hcsb_test_now_ms() + ms;
  out[len] = '\0';
  while (hcsb_test_now_ms() < deadline && !strstr(out, until) &&
         len + 1 < cap) {
    struct pollfd p = {.fd = master, .events = POLLIN};
    if (poll(&p, 1, 50) > 0) {
      ssize_t n = read(master, out + len, cap - 1 - len);
      if (n <= 0) break;
      len += (size_t)n;
      out[len] = '\0';
    }
  }
  return len;
}

/* Reaps hcsbctl, reading its terminal meanwhile so it never blocks on
 * output; fails the test (after killing it) when it does not end. */
static int pty_reap(pid_t pid, int master, const char *out) {
  int status;
  double wait_deadline = hcsb_test_now_ms() + 10000 * hcsb_test_timeout_scale();
  while (waitpid(pid, &status, WNOHANG) != pid) {
    if (hcsb_test_now_ms() > wait_deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      hcsb_test_fail(__FILE__, __LINE__, "hcsbctl hung; output: %s", out);
    }
    char drain[256];
    struct pollfd p = {.fd = master, .events = POLLIN};
    if (poll(&p, 1, 20) > 0 && read(master, drain, sizeof drain) < 0) break;
  }
  return status;
}

/* A pty as hcsbctl's terminal, with a guest that can size UVM processes:
 * raw mode while the process runs (our "\r" reaches the guest's pty
 * unchanged), the window size from the start (it travels in the request:
 * the process's first look sees it) and after SIGWINCH, and the terminal
 * restored afterwards. */
static void test_run_tty_terminal(void) {
  int master, slave;
  struct winsize ws = {.ws_row = 30, .ws_col = 100};
  CHECK(openpty(&master, &slave, NULL, NULL, &ws) == 0);
  char *argv[] = {NULL,
                  "--spawn",
                  (char *)capable_spawn(),
                  "run",
                  "-t",
                  "-i",
                  "--",
                  "/bin/sh",
                  "-c",
                  "stty size; read x; stty size; echo \"got:$x\"",
                  NULL};
  pid_t pid = pty_start(master, slave, argv);
  /* A later resize travels on the bridge while input takes its own relay,
   * hence the pause before typing after it. */
  char out[4096];
  size_t len = pty_read_until(master, out, sizeof out, 0, "30 100\r",
                              15000 * hcsb_test_timeout_scale());
  if (strstr(out, "30 100\r")) {
    /* Local raw mode is on while the process runs. */
    struct termios t;
    CHECK(tcgetattr(slave, &t) == 0);
    CHECK((t.c_lflag & (ICANON | ECHO)) == 0);
    ws.ws_row = 40;
    ws.ws_col = 120;
    CHECK(ioctl(master, TIOCSWINSZ, &ws) == 0); /* SIGWINCH to hcsbctl */
    usleep((useconds_t)(300000 * hcsb_test_timeout_scale()));
    CHECK(write(master, "go\r", 3) == 3);
    pty_read_until(master, out, sizeof out, len, "got:go",
                   15000 * hcsb_test_timeout_scale());
  }
  int status = pty_reap(pid, master, out);
  /* (libuv's raw mode keeps ONLCR: lines end in "\r\r\n" here) */
  CHECK_HAS(out, "30 100\r");
  CHECK_HAS(out, "40 120\r");
  CHECK_HAS(out, "got:go");
  CHECK(strstr(out, "hcsbctl:") == NULL); /* nothing refused */
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  struct termios t;
  CHECK(tcgetattr(slave, &t) == 0);
  CHECK((t.c_lflag & (ICANON | ECHO)) == (ICANON | ECHO));
  close(master);
  close(slave);
}

static size_t count_str(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++) n++;
  return n;
}

/* The built-in guest, like a real GCS, leaves a UVM process's terminal 0x0
 * (the size went in the request as ConsoleSize, and it ignores that) and
 * refuses resizes: hcsbctl finds out with one ResizeConsole at start and
 * says so once, without -v; later window changes are not sent. */
static void test_run_tty_size_refused(void) {
  int master, slave;
  struct winsize ws = {.ws_row = 30, .ws_col = 100};
  CHECK(openpty(&master, &slave, NULL, NULL, &ws) == 0);
  char *argv[] = {
      NULL, "-vv",     "run", "-t",
      "--", "/bin/sh", "-c",  "stty size; read x; stty size; echo \"got:$x\"",
      NULL};
  pid_t pid = pty_start(master, slave, argv);
  char out[65536];
  size_t len = pty_read_until(master, out, sizeof out, 0, "0 0\r",
                              15000 * hcsb_test_timeout_scale());
  if (strstr(out, "0 0\r")) {
    ws.ws_row = 40;
    ws.ws_col = 120;
    CHECK(ioctl(master, TIOCSWINSZ, &ws) == 0); /* SIGWINCH to hcsbctl */
    usleep((useconds_t)(300000 * hcsb_test_timeout_scale()));
    CHECK(write(master, "go\r", 3) == 3);
    pty_read_until(master, out, sizeof out, len, "got:go",
                   15000 * hcsb_test_timeout_scale());
  }
  int status = pty_reap(pid, master, out);
  close(master);
  close(slave);
  CHECK_HAS(out, "got:go");
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  /* The size was in the request... */
  CHECK_HAS(out, "ConsoleSize\\\":[30,100]");
  /* ...the guest ignored it and refused the one check... */
  CHECK_EQ(count_str(out, "0 0\r"), 2);
  CHECK_EQ(count_str(out, "send ResizeConsole (0x"), 1);
  CHECK_EQ(count_str(out,
                     "hcsbctl: run: the guest cannot size the process's "
                     "terminal (guest error 0xC037010E"),
           1);
  CHECK_HAS(out, "a Linux GCS leaves a UVM process's terminal at 0x0");
  /* ...and the window change was not sent. */
  CHECK(strstr(out, "40 120") == NULL);
}

static long rss_kib(pid_t pid) {
  char path[64], line[256];
  long kib = -1;
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

/* A reader that stops reading stops the guest instead of growing our
 * memory: 32 MiB are offered while we read nothing. */
static void test_run_output_backpressure(void) {
  run_t r;
  rstart(&r, 0, NULL, "run", "--", "/bin/sh", "-c",
         "echo ready; head -c 33554432 /dev/zero", NULL);
  CHECK(rpump(&r, saw_ready, 10000 * hcsb_test_timeout_scale()));
  long before = rss_kib(r.pid);
  /* Long enough for a runaway relay to buffer far more than the bound. */
  usleep((useconds_t)(1000000 * (hcsb_test_timeout_scale() > 3
                                     ? 3
                                     : hcsb_test_timeout_scale())));
  long during = rss_kib(r.pid);
  CHECK(before > 0 && during > 0);
  if (during - before > 16 * 1024)
    hcsb_test_fail(__FILE__, __LINE__, "RSS grew from %ld to %ld KiB", before,
                   during);
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK_EQ(r.olen, 6 + 33554432);
  rfree(&r);
}

/* When our stdout's reader goes away, the process's own writes fail. */
static void test_run_broken_stdout(void) {
  run_t r;
  rstart(&r, 0, NULL, "run", "--", "yes", NULL);
  char buf[4096];
  struct pollfd p = {.fd = r.out, .events = POLLIN};
  CHECK(poll(&p, 1, (int)(10000 * hcsb_test_timeout_scale())) == 1);
  CHECK(read(r.out, buf, sizeof buf) > 0);
  close(r.out);
  r.out = -1;
  rfinish(&r);
  /* yes's writes failed: EPIPE (a signal death, 255) or ECONNRESET (its
   * own error exit, 1), depending on how the socket was torn down. */
  if (r.status == 255)
    CHECK_HAS(r.ebuf, "killed by a signal");
  else
    CHECK_HAS(r.ebuf, "yes: standard output: ");
  CHECK(r.status == 255 || r.status == 1);
  rfree(&r);

  /* The same with a file that refuses writes as our stdout. */
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    int full = open("/dev/full", O_WRONLY);
    int null = open("/dev/null", O_WRONLY);
    dup2(full, 1);
    dup2(null, 2);
    setenv("HCSB_GUEST", hcsb_test_build_path("src/hcsb-guest"), 1);
    char *argv[] = {NULL, "run", "--", "yes", NULL};
    exec_hcsbctl(argv);
  }
  int status;
  double deadline = hcsb_test_now_ms() + 10000 * hcsb_test_timeout_scale();
  while (waitpid(pid, &status, WNOHANG) != pid) {
    if (hcsb_test_now_ms() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      hcsb_test_fail(__FILE__, __LINE__,
                     "hcsbctl kept relaying into /dev/full");
    }
    usleep(5000);
  }
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1 || WEXITSTATUS(status) == 255);
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static int unix_dial(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  CHECK(fd >= 0);
  CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
  return fd;
}

static int saw_guest_log(run_t *r) {
  return r->ebuf && strstr(r->ebuf, "hcsbctl: guest: info booted\n") != NULL;
}

/* A VM transport (hybrid vsock, guest-initiated): the tool offers entropy
 * and, with -v, prints the GCS log stream; the bridge itself is dialled by
 * the emulator standing in for the VM. */
static void test_vm_transport_entropy_and_log(void) {
  char addr[PATH_MAX + 32], port1[PATH_MAX + 8], port109[PATH_MAX + 8],
      bridge[PATH_MAX + 16];
  const char *base = tmp_path("vm.sock");
  snprintf(addr, sizeof addr, "hvsock+fc://%s", base);
  snprintf(port1, sizeof port1, "%s_1", base);
  snprintf(port109, sizeof port109, "%s_109", base);
  snprintf(bridge, sizeof bridge, "%s_1073741824", base);
  run_t r;
  rstart(&r, 0, NULL, "-v", "--guest", addr, "caps", "--json", NULL);
  double deadline = hcsb_test_now_ms() + 10000 * hcsb_test_timeout_scale();
  while (!(exists(port1) && exists(port109) && exists(bridge))) {
    if (hcsb_test_now_ms() > deadline)
      hcsb_test_fail(__FILE__, __LINE__, "no listeners at %s_*", base);
    usleep(5000);
  }
  /* The entropy port: exactly 512 bytes, then EOF. */
  int fd = unix_dial(port1);
  char buf[1024];
  size_t got = 0;
  for (;;) {
    ssize_t n = read(fd, buf + got, sizeof buf - got);
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  CHECK_EQ(got, 512);
  /* The log port: a logrus record. */
  fd = unix_dial(port109);
  const char *rec =
      "{\"level\":\"info\",\"msg\":\"booted\",\"time\":\"2026-01-01T00:00:"
      "00Z\"}\n";
  CHECK(write(fd, rec, strlen(rec)) == (ssize_t)strlen(rec));
  CHECK(rpump(&r, saw_guest_log, 10000 * hcsb_test_timeout_scale()));
  close(fd);

  pid_t g = fork();
  CHECK(g >= 0);
  if (g == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    execl(hcsb_test_build_path("src/hcsb-guest"), "hcsb-guest", "--connect",
          bridge, (char *)NULL);
    _exit(127);
  }
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK(strncmp(r.obuf, "{\"Version\":4,\"Os\":\"linux\",", 26) == 0);
  int status;
  CHECK(waitpid(g, &status, 0) == g);
  rfree(&r);
}

/* ------------------------------------------------------------------------ */
/* UVM-level commands */

static void test_caps_json(void) {
  run_t r;
  rstart(&r, 0, NULL, "caps", "--json", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK_STR(
      r.obuf,
      "{\"Version\":4,\"Os\":\"linux\",\"Capabilities\":{\"RuntimeOsType\":"
      "\"Linux\","
      "\"SupportedSchemaVersions\":[{\"Major\":2,\"Minor\":1}],"
      "\"SendHostCreateMessage\":false,\"SendHostStartMessage\":false,"
      "\"HvSocketConfigOnStartup\":false,\"SendLifecycleNotifications\":false,"
      "\"ModifyServiceSettingsSupported\":false,\"GuestDefinedCapabilities\":{"
      "\"NamespaceAddRequestSupported\":true,\"SignalProcessSupported\":true,"
      "\"DumpStacksSupported\":true,\"DeleteContainerStateSupported\":true,"
      "\"UpdateContainerSupported\":false,\"LogForwardingSupported\":false,"
      "\"HostProcessContainerSupported\":false}}}\n");
  CHECK_STR(r.ebuf, "");
  rfree(&r);

  rstart(&r, 0, NULL, "--json", "caps", NULL); /* the global form */
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK(strncmp(r.obuf, "{\"Version\":4,", 13) == 0);
  rfree(&r);
}

static void test_caps_plain(void) {
  run_t r;
  rstart(&r, 0, NULL, "caps", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK(strncmp(r.obuf,
                "Protocol version: 4\nOS: linux (RuntimeOsType \"Linux\")\n",
                54) == 0);
  CHECK_HAS(r.obuf, "Supported schema versions: 2.1\n");
  CHECK_HAS(r.obuf, "  DumpStacksSupported: true\n");
  CHECK_HAS(r.obuf, "  SendHostCreateMessage: false\n");
  rfree(&r);
}

static void test_stacks(void) {
  run_t r;
  rstart(&r, 0, NULL, "stacks", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK(r.olen > 1);
  CHECK(r.obuf[r.olen - 1] == '\n');
  CHECK_STR(r.ebuf, "");
  rfree(&r);
}

static void test_modify(void) {
  const char *good = tmp_path("modify.json"), *bad = tmp_path("bad.json");
  write_file(
      good,
      "{\"ResourceType\":\"CombinedLayers\",\"RequestType\":\"Add\","
      "\"Settings\":{"
      "\"ContainerID\":\"m1\",\"ContainerRootPath\":\"/run/gcs/c/m1/rootfs\","
      "\"Layers\":[{\"Path\":\"/tmp\"}],\"ScratchPath\":\"/run/gcs/c/m1/"
      "scratch\"}}\n");
  write_file(bad, "[1, 2]\n");
  run_t r;
  rstart(&r, 0, NULL, "modify", "--json", good, NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK_STR(r.obuf, "");
  rfree(&r);

  rstart(&r, 0, NULL, "modify", "--json", tmp_path("missing.json"), NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 2);
  CHECK_HAS(r.ebuf, "hcsbctl: modify: cannot read ");
  rfree(&r);
}

/* ------------------------------------------------------------------------ */
/* Containers */

static const char *write_spec(const char *name, const char *script) {
  const char *path = tmp_path(name);
  char root[PATH_MAX];
  snprintf(root, sizeof root, "%s", tmp_path("rootfs"));
  mkdir(root, 0700);
  char text[PATH_MAX + 1024];
  snprintf(text, sizeof text,
           "{\"ociVersion\":\"1.0.2\",\"process\":{\"terminal\":false,\"user\":"
           "{\"uid\":0,"
           "\"gid\":0},\"args\":[\"/bin/sh\",\"-c\",\"%s\"],\"env\":[\"PATH=/"
           "usr/bin:/bin\"],"
           "\"cwd\":\"/\"},\"root\":{\"path\":\"%s\"},\"hostname\":\"c1\"}\n",
           script, root);
  write_file(path, text);
  return path;
}

/* Shell code for an exec that must not run before the container's init
 * printed what the test looks for: it waits (up to 20 s, then exits 9)
 * until the init created `marker` in root.path, the working directory of
 * both.  A script's `start` returns once the init is exec'd, not once it
 * ran: on a loaded machine a kill right after the exec could otherwise land
 * before the init's first echo. */
#define AWAIT_INIT(marker)                         \
  "i=0; until [ -e " marker                        \
  " ]; do [ $i -lt 2000 ] || exit 9; i=$((i+1)); " \
  "sleep 0.01; done; "

/* Removes a marker an earlier run of the test may have left. */
static void clear_marker(const char *marker) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", tmp_path("rootfs"), marker);
  CHECK(unlink(path) == 0 || errno == ENOENT);
}

/* The whole workflow over one connection, --keep-going past a failing exec. */
static void test_script_container_workflow(void) {
  const char *spec = write_spec(
      "config.json", "echo init-pid=$$; : > c1-ready; exec sleep 30");
  const char *script = tmp_path("workflow.txt");
  char text[PATH_MAX + 1024];
  snprintf(
      text, sizeof text,
      "# a container's life\n"
      "create c1 --spec '%s'\n"
      "start c1\n"
      "\n"
      "ps --json c1\n"
      "stats --json c1\n"
      "exec c1 -- /bin/sh -c \"" AWAIT_INIT("c1-ready")
      "echo 'in exec'; echo exec-err >&2; exit 3\"\n"
      "kill c1 -s TERM\n"
      "wait c1   # prints how it ended\n"
      "delete c1\n",
      spec);
  write_file(script, text);
  clear_marker("c1-ready");
  run_t r;
  rstart(&r, 0, NULL, "script", "--keep-going", script, NULL);
  rfinish(&r);
  /* The exec's "exit 3" is the process's, not hcsbctl's 3 (a connection
   * failure): the status is passed on, and the message says whose it is. */
  CHECK_EQ(r.status, 3);
  CHECK_HAS(r.ebuf,
            "hcsbctl: script: line 7: the process exited with status "
            "3: exec c1 -- ");
  CHECK_HAS(r.ebuf, "exec-err\n");
  CHECK_HAS(r.obuf, "in exec\n");
  /* The init's PID, as the container printed it, is in the process list. */
  const char *p = strstr(r.obuf, "init-pid=");
  CHECK(p != NULL);
  unsigned pid = (unsigned)strtoul(p + 9, NULL, 10);
  CHECK(pid > 0);
  char needle[64];
  snprintf(needle, sizeof needle, "{\"ProcessId\":%u", pid);
  CHECK_HAS(r.obuf, "{\"ProcessList\":[");
  CHECK_HAS(r.obuf, needle);
  /* What ps --help says a Linux guest gives: no ImageName, no times. */
  CHECK_HAS(r.obuf,
            ",\"KernelTime100ns\":0,\"UserTime100ns\":0,\"MemoryCommitBytes\":"
            "0}]}\n");
  CHECK(strstr(r.obuf, "ImageName") == NULL);
  CHECK_HAS(r.obuf, "{\"Cpu\":{\"TotalNs\":");
  CHECK_HAS(r.obuf, "\"UserNs\":");
  CHECK_HAS(r.obuf, "\"KernelNs\":");
  /* Then the whole LCOWMetrics, typed. */
  CHECK_HAS(r.obuf, ",\"Metrics\":{\"cpu\":{\"usage\":{\"total\":");
  CHECK_HAS(r.obuf, "\"pids\":{\"current\":");
  CHECK_HAS(
      r.obuf,
      "c1 exited: GracefulExit (Result 0x00000000, init exit code 143)\n");
  /* Only the exec line failed. */
  CHECK(strstr(r.ebuf, "failed with exit status") == NULL);
  const char *f = strstr(r.ebuf, "the process exited with status");
  CHECK(f != NULL && strstr(f + 1, "the process exited with status") == NULL);
  rfree(&r);
}

/* The script that failed at its last line against a real v0.11.8 guest
 * (DeleteContainerState: "unlinkat /run/gcs/c/c1: directory not empty"):
 * the layers create mounted are removed before the state is deleted. */
static void test_script_layers_deleted(void) {
  const char *spec =
      write_spec("config-layers.json", "trap 'exit 143' TERM; sleep 30 & wait");
  char text[PATH_MAX * 3 + 1024], layer[PATH_MAX], scratch[PATH_MAX];
  snprintf(layer, sizeof layer, "%s", tmp_path("layer0"));
  snprintf(scratch, sizeof scratch, "%s", tmp_path("scratch"));
  mkdir(layer, 0700);
  mkdir(scratch, 0700);
  snprintf(text, sizeof text,
           "create c1 --spec %s --layer %s --scratch %s\n"
           "start c1\n"
           "exec c1 -- /bin/sh -c 'echo in-exec'\n"
           "kill c1 -s TERM\n"
           "wait c1\n"
           "stacks\n"
           "delete c1\n"
           "stacks\n",
           spec, layer, scratch);
  run_t r;
  rstart(&r, 0, text, "script", "-", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK(strstr(r.ebuf, "directory not empty") == NULL);
  CHECK_HAS(r.obuf, "in-exec\n");
  CHECK_HAS(
      r.obuf,
      "c1 exited: GracefulExit (Result 0x00000000, init exit code 143)\n");
  /* Mounted until the delete, nothing after it. */
  const char *first =
      strstr(r.obuf, "\nresources: 1\n  CombinedLayers /run/gcs/c/c1/rootfs");
  CHECK(first != NULL);
  CHECK(strstr(first, "\nresources: 0\n") != NULL);
  rfree(&r);
}

/* From stdin, all lines succeed; --json output for wait. */
static void test_script_stdin_json_wait(void) {
  const char *spec = write_spec(
      "config2.json",
      "echo from-init; echo init-err >&2; : > c2-ready; exec sleep 30");
  char text[PATH_MAX + 1024], expect[PATH_MAX + 16];
  snprintf(text, sizeof text,
           "create c2 --spec %s\n"
           "start c2\n"
           "exec c2 -e X=1 -- /bin/sh -c '" AWAIT_INIT("c2-ready") "echo x=$X; pwd'\n"
           "kill c2 --signal SIGKILL\n"
           "wait --json c2\n"
           "delete c2\n",
           spec);
  clear_marker("c2-ready");
  run_t r;
  rstart(&r, 0, text, "script", "-", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK_HAS(r.obuf, "from-init\n");
  CHECK_HAS(r.ebuf, "init-err\n");
  /* The emulator runs the container in root.path, as if chrooted. */
  snprintf(expect, sizeof expect, "x=1\n%s\n", tmp_path("rootfs"));
  CHECK_HAS(r.obuf, expect);
  CHECK_HAS(
      r.obuf,
      "{\"Id\":\"c2\",\"End\":\"Exited\",\"Type\":\"ForcedExit\",\"Result\":0,"
      "\"InitExitCode\":137}\n");
  rfree(&r);
}

/* Graceful and forced shutdown, plain ps/stats, exec with a pty, a PID that
 * is gone, and an attached start. */
static void test_script_shutdown_and_more(void) {
  const char *spec = write_spec("config3.json", "exec sleep 30");
  const char *once = write_spec("config4.json", "echo attached-init; exit 6");
  char text[PATH_MAX * 2 + 1024];
  snprintf(text, sizeof text,
           "create s1 --spec %s\n"
           "start s1\n"
           "ps s1\n"
           "stats s1\n"
           "exec -t s1 -- /bin/sh -c 'test -t 1 && echo exec-tty'\n"
           "kill s1 --pid 999999999\n"
           "shutdown s1\n"
           "wait s1\n"
           "create s2 --spec %s\n"
           "start s2\n"
           "shutdown --force s2\n"
           "wait s2\n"
           "create s3 --spec %s\n"
           "start --attach s3\n"
           "wait s3\n",
           spec, spec, once);
  run_t r;
  rstart(&r, 0, text, "script", "--keep-going", NULL);
  rfinish(&r);
  CHECK_HAS(r.obuf, "     PID  KERNEL_MS    USER_MS       MEMORY  IMAGE\n");
  CHECK_HAS(r.obuf, "Cpu.TotalNs ");
  CHECK_HAS(r.obuf, "\nmemory.usage.usage ");
  CHECK_HAS(r.obuf, "\npids.current ");
  CHECK_HAS(r.obuf, "exec-tty\r\n");
  CHECK_HAS(r.ebuf, "hcsbctl: kill: process 999999999 is not running\n");
  CHECK_HAS(r.ebuf,
            "line 6 failed with exit status 1 (the guest refused or "
            "failed the operation): kill s1 --pid 999999999\n");
  CHECK_HAS(
      r.obuf,
      "s1 exited: GracefulExit (Result 0x00000000, init exit code 143)\n");
  CHECK_HAS(r.obuf,
            "s2 exited: ForcedExit (Result 0x00000000, init exit code 137)\n");
  CHECK_HAS(r.obuf, "attached-init\n");
  CHECK_HAS(r.ebuf,
            "line 14: the process exited with status 6: start --attach s3\n");
  CHECK_HAS(r.obuf, "s3 exited: UnexpectedExit (Result 0x00000000)\n");
  CHECK_EQ(r.status, 1); /* the first failure's */
  rfree(&r);
}

/* The guest dies while a container runs: wait says so, with exit 3.  The
 * init kills the guest when told to (SIGUSR1, once its trap is set), then
 * ends itself so nothing is left behind.  It waits a moment first: the
 * guest signals before it answers the kill, and the script's wait must be
 * in flight when the guest goes (under valgrind the guest is slow). */
static void test_script_wait_connection_lost(void) {
  char script[PATH_MAX + 256];
  const char *armed = tmp_path("armed");
  snprintf(script, sizeof script,
           "trap 'sleep %.2f; kill -9 $PPID; kill $!; exit 0' USR1; touch %s; "
           "sleep 100 & wait",
           0.3 * hcsb_test_timeout_scale(), armed);
  const char *spec = write_spec("config5.json", script);
  char text[PATH_MAX * 2 + 512];
  snprintf(text, sizeof text,
           "create l1 --spec %s\n"
           "start l1\n"
           "exec l1 -- /bin/sh -c 'while [ ! -e %s ]; do sleep 0.01; done'\n"
           "kill -s USR1 l1\n"
           "wait --json l1\n"
           "caps\n",
           spec, armed);
  run_t r;
  rstart(&r, 0, text, "script", NULL);
  rfinish(&r);
  if (r.status != 3 || strstr(r.obuf, "ConnectionLost") == NULL)
    fprintf(stderr, "stdout: %s\nstderr: %s\n", r.obuf, r.ebuf);
  CHECK_EQ(r.status, 3);
  CHECK_HAS(r.obuf, "{\"Id\":\"l1\",\"End\":\"ConnectionLost\"}\n");
  CHECK_HAS(r.ebuf,
            "hcsbctl: wait: connection lost before the container exited");
  CHECK_HAS(r.ebuf,
            "line 5 failed with exit status 3 (connection or "
            "transport failure): wait --json l1\n");
  rfree(&r);
}

/* The first failing line stops the script with its status. */
static void test_script_stops_at_failure(void) {
  run_t r;
  rstart(&r, 0, "caps --json\nps nosuch\ncaps --json\n", "script", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 1);
  /* In a script the guest is the script's: no hint about fresh guests. */
  CHECK_HAS(
      r.ebuf,
      "hcsbctl: ps: no container nosuch in this guest (guest error 0xC037010E");
  CHECK(strstr(r.ebuf, "spawns a new, empty guest") == NULL);
  CHECK_HAS(r.ebuf,
            "hcsbctl: script: line 2 failed with exit status 1 (the "
            "guest refused or failed the operation): ps nosuch\n");
  /* One caps output only. */
  const char *first = strstr(r.obuf, "{\"Version\"");
  CHECK(first != NULL && strstr(first + 1, "{\"Version\"") == NULL);
  rfree(&r);

  rstart(&r, 0, "caps\nrun -i -- cat\n", "script", "-", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 2);
  CHECK_HAS(r.ebuf, "-i cannot be used while the script is read from stdin");
  rfree(&r);

  rstart(&r, 0, "caps 'unterminated\n", "script", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 2);
  CHECK_HAS(r.ebuf, "hcsbctl: script: line 1: unterminated quote\n");
  rfree(&r);
}

/* The first: create, then start in another invocation, which has a new
 * guest; the error says so (issue 11 item 6). */
static void test_guest_errors_exit_1(void) {
  const char *spec = write_spec("sep.json", "exit 0");
  run_t r;
  rstart(&r, 0, NULL, "create", "c1", "--spec", spec, NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK_STR(r.ebuf, "");
  rfree(&r);
  rstart(&r, 0, NULL, "start", "c1", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 1);
  CHECK_PREFIX(
      r.ebuf,
      "hcsbctl: start: no container c1 in this guest (guest error 0xC037010E");
  CHECK_HAS(r.ebuf,
            "\nhcsbctl: each hcsbctl command spawns a new, empty guest: run a "
            "container's commands as one 'hcsbctl script'");
  CHECK_EQ(count_char(r.ebuf, '\n'), 2);
  rfree(&r);

  rstart(&r, 0, NULL, "wait", "nosuch", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 1);
  CHECK_HAS(r.ebuf,
            "hcsbctl: wait: no container nosuch in this guest (guest error "
            "0xC037010E");
  rfree(&r);

  rstart(&r, 0, NULL, "kill", "nosuch", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 1);
  CHECK_HAS(r.ebuf, "give --pid");
  rfree(&r);
}

/* ------------------------------------------------------------------------ */
/* Usage, connection failures, guest selection */

static void expect_usage(const char *needle, ...) {
  const char *args[32];
  size_t n = 0;
  va_list ap;
  va_start(ap, needle);
  while (n < 31 && (args[n] = va_arg(ap, const char *)) != NULL) n++;
  va_end(ap);
  args[n] = NULL;
  run_t r;
  rstart_v(&r, 0, NULL, 0, args);
  rfinish(&r);
  if (r.status != 2 || strstr(r.ebuf, needle) == NULL)
    hcsb_test_fail(__FILE__, __LINE__, "%s...: status %d, stderr: %s",
                   args[0] ? args[0] : "", r.status, r.ebuf);
  CHECK_STR(r.obuf, "");
  rfree(&r);
}

static void test_usage_errors(void) {
  expect_usage("hcsbctl: no command given\nTry 'hcsbctl --help'.\n", NULL);
  expect_usage("hcsbctl: unknown command 'frobnicate'", "frobnicate", NULL);
  expect_usage("hcsbctl: unknown option '--bogus'", "--bogus", "caps", NULL);
  expect_usage("hcsbctl: run: a command is needed\nTry 'hcsbctl run --help'.\n",
               "run", NULL);
  expect_usage("hcsbctl: run: unknown option '-x'", "run", "-x", "--", "true",
               NULL);
  expect_usage("hcsbctl: run: option '-e' needs a value", "run", "-e", NULL);
  expect_usage("hcsbctl: exec: a container ID and a command are needed", "exec",
               "c1", NULL);
  expect_usage("hcsbctl: kill: unknown signal 'NOPE'", "kill", "c1", "-s",
               "NOPE", NULL);
  expect_usage("hcsbctl: kill: invalid PID 'x'", "kill", "c1", "--pid", "x",
               NULL);
  expect_usage("hcsbctl: ps: a container ID is needed", "ps", NULL);
  expect_usage("hcsbctl: caps: unexpected argument 'extra'", "caps", "extra",
               NULL);
  expect_usage("hcsbctl: create: --spec FILE is needed", "create", "c1", NULL);
  expect_usage("hcsbctl: modify: --json FILE is needed", "modify", NULL);
  expect_usage("--timeout needs a positive number of ms", "--timeout", "soon",
               "caps", NULL);
  expect_usage("--guest and --spawn exclude each other", "--guest", "unix://x",
               "--spawn", "y", "caps", NULL);
  expect_usage("invalid guest address 'bogus://x'", "--guest", "bogus://x",
               "caps", NULL);
  /* Arguments are checked before any guest is contacted. */
  expect_usage("hcsbctl: run: a command is needed", "--guest",
               "unix+connect:///nonexistent", "run", NULL);
}

static void test_connection_failure_exit_3(void) {
  run_t r;
  rstart(&r, 0, NULL, "--guest", "unix+connect:///nonexistent", "caps", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 3);
  CHECK_HAS(
      r.ebuf,
      "hcsbctl: cannot connect to the guest (unix+connect:///nonexistent): ");
  CHECK_STR(r.obuf, "");
  rfree(&r);

  /* A guest that exits at once: how it ended, not what the stream did. */
  rstart(&r, 0, NULL, "--spawn", "exit 0", "caps", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 3);
  CHECK_STR(r.ebuf,
            "hcsbctl: cannot connect to the guest (spawn:exit 0): the "
            "guest program exited with status 0 before negotiating\n");
  rfree(&r);

  /* A guest program that does not exist (the shell says 127), also when
   * hcsbctl opens the bridge itself (--stdio-dir with a spawned guest). */
  for (int with_dir = 0; with_dir < 2; with_dir++) {
    if (with_dir)
      rstart(&r, 0, NULL, "--spawn", "/no/such/guest 2>/dev/null",
             "--stdio-dir", hcsb_test_tmpdir(), "caps", NULL);
    else
      rstart(&r, 0, NULL, "--spawn", "/no/such/guest 2>/dev/null", "caps",
             NULL);
    rfinish(&r);
    CHECK_EQ(r.status, 3);
    CHECK_STR(r.ebuf,
              "hcsbctl: cannot connect to the guest (spawn:/no/such/guest "
              "2>/dev/null): the guest program exited with status 127 before "
              "negotiating (127: the shell found no such command)\n");
    rfree(&r);
  }

  rstart(&r, 0, NULL, "--spawn", "kill -KILL $$", "run", "--", "true", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 3);
  CHECK_STR(r.ebuf,
            "hcsbctl: cannot connect to the guest (spawn:kill -KILL $$): the "
            "guest program was killed by signal 9 (SIGKILL) before "
            "negotiating\n");
  rfree(&r);
}

/* A VM that never negotiates under KVM (broken nested KVM hangs the guest
 * silently): the timeout says how to get out; under TCG it does not. */
static void test_uvm_kvm_boot_timeout_hint(void) {
  static const char *accels[] = {"kvm", "tcg"};
  char bin[PATH_MAX], qemu[PATH_MAX + 32], path[2 * PATH_MAX + 32], ms[32];
  const char *old_path = getenv("PATH");
  char *saved = old_path ? strdup(old_path) : NULL;

  write_file(tmp_path("vmlinuz"), "");
  write_file(tmp_path("initrd.img"), "");
  snprintf(bin, sizeof bin, "%s", tmp_path("bin"));
  CHECK(mkdir(bin, 0755) == 0);
  snprintf(qemu, sizeof qemu, "%s/qemu-system-x86_64", bin);
  char *fake = realpath(hcsb_test_build_path("test/uvm-fake-qemu"), NULL);
  CHECK(fake != NULL); /* absolute: a relative link would dangle, and the
                          real QEMU further down PATH would run instead */
  CHECK(symlink(fake, qemu) == 0);
  free(fake);
  snprintf(path, sizeof path, "%s:%s", bin, saved ? saved : "/usr/bin:/bin");
  snprintf(ms, sizeof ms, "%u", 500u * hcsb_test_timeout_scale());
  setenv("PATH", path, 1);
  setenv("FAKE_QEMU_MODE", "no-guest", 1);
  setenv("HCSB_UVM_IMAGE", hcsb_test_tmpdir(), 1);
  const char *old_tmp = getenv("TMPDIR");
  char *saved_tmp = old_tmp ? strdup(old_tmp) : NULL;
  setenv("TMPDIR", hcsb_test_tmpdir(), 1); /* the console log it keeps */
  for (int i = 0; i < 2; i++) {
    run_t r;
    rstart(&r, 0, NULL, "--uvm", "--uvm-accel", accels[i], "--timeout", ms,
           "caps", NULL);
    rfinish(&r);
    CHECK_EQ(r.status, 4); /* a timeout */
    CHECK_HAS(r.ebuf, "hcsbctl: the utility VM did not start: ");
    if (i == 0)
      CHECK_HAS(r.ebuf,
                " under KVM (where nested KVM is broken the guest "
                "hangs silently: try --uvm-accel tcg)\n");
    else
      CHECK(strstr(r.ebuf, "--uvm-accel tcg") == NULL);
    CHECK_STR(r.obuf, "");
    rfree(&r);
  }
  if (saved) setenv("PATH", saved, 1);
  free(saved);
  unsetenv("FAKE_QEMU_MODE");
  unsetenv("HCSB_UVM_IMAGE");
  if (saved_tmp)
    setenv("TMPDIR", saved_tmp, 1);
  else
    unsetenv("TMPDIR");
  free(saved_tmp);
}

static void test_help_and_version(void) {
  run_t r;
  rstart(&r, 0, NULL, "--help", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK(strncmp(r.obuf, "Usage: hcsbctl [GLOBAL OPTIONS] COMMAND [ARGS...]\n",
                50) == 0);
  CHECK_HAS(r.obuf, "Exit status:\n");
  CHECK_HAS(r.obuf, "  3  connection or transport failure");
  rfree(&r);

  /* Help needs no guest, even a broken one. */
  rstart(&r, 0, NULL, "--guest", "unix+connect:///nonexistent", "run", "--help",
         NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK(strncmp(r.obuf, "Usage: hcsbctl run ", 19) == 0);
  CHECK_HAS(r.obuf, "4294967295");
  rfree(&r);

  rstart(&r, 0, NULL, "--version", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK(strncmp(r.obuf, "hcsbctl ", 8) == 0);
  CHECK_HAS(r.obuf, "(libhcsbridge ");
  rfree(&r);
}

/* Without HCSB_GUEST the emulator beside the executable is found. */
static void test_builtin_guest_beside_executable(void) {
  run_t r;
  rstart(&r, R_NO_GUEST_ENV, NULL, "run", "--", "/bin/echo", "found", NULL);
  rfinish(&r);
  CHECK_STR(r.ebuf, "");
  CHECK_STR(r.obuf, "found\n");
  CHECK_EQ(r.status, 0);
  rfree(&r);
}

/* --spawn with --stdio-dir: the guest is told where the relays are. */
static void test_spawn_with_stdio_dir(void) {
  const char *dir = tmp_path("relays"), *seen = tmp_path("seen");
  CHECK(mkdir(dir, 0700) == 0);
  char cmd[PATH_MAX * 3];
  snprintf(cmd, sizeof cmd,
           "echo \"$HCSB_STDIO_DIR\" > '%s'; exec '%s' --allow-uvm-signal",
           seen, hcsb_test_build_path("src/hcsb-guest"));
  run_t r;
  rstart(&r, 0, NULL, "--spawn", cmd, "--stdio-dir", dir, "run", "--",
         "/bin/echo", "ok", NULL);
  rfinish(&r);
  CHECK_STR(r.ebuf, "");
  CHECK_STR(r.obuf, "ok\n");
  CHECK_EQ(r.status, 0);
  rfree(&r);
  char buf[PATH_MAX + 2] = {0}, want[PATH_MAX + 2];
  int fd = open(seen, O_RDONLY);
  CHECK(fd >= 0);
  CHECK(read(fd, buf, sizeof buf - 1) > 0);
  close(fd);
  snprintf(want, sizeof want, "%s\n", dir);
  CHECK_STR(buf, want);
}

/* A guest reached over a Unix socket it listens on. */
static void test_guest_unix_connect(void) {
  const char *sock = tmp_path("gcs.sock");
  pid_t g = fork();
  CHECK(g >= 0);
  if (g == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    execl(hcsb_test_build_path("src/hcsb-guest"), "hcsb-guest", "--listen",
          sock, "--stdio-dir", hcsb_test_tmpdir(), (char *)NULL);
    _exit(127);
  }
  double deadline = hcsb_test_now_ms() + 5000 * hcsb_test_timeout_scale();
  struct stat st;
  while (stat(sock, &st) != 0 && hcsb_test_now_ms() < deadline) usleep(5000);
  char addr[PATH_MAX + 32];
  snprintf(addr, sizeof addr, "unix+connect://%s", sock);
  run_t r;
  rstart(&r, 0, NULL, "--guest", addr, "--stdio-dir", hcsb_test_tmpdir(), "run",
         "--", "/bin/sh", "-c", "echo via-unix; exit 4", NULL);
  rfinish(&r);
  CHECK_STR(r.obuf, "via-unix\n");
  CHECK_EQ(r.status, 4);
  rfree(&r);
  int status;
  deadline = hcsb_test_now_ms() + 5000 * hcsb_test_timeout_scale();
  while (waitpid(g, &status, WNOHANG) != g) {
    if (hcsb_test_now_ms() > deadline) {
      kill(g, SIGKILL);
      waitpid(g, &status, 0);
      break;
    }
    usleep(5000);
  }
}

static void test_verbose_logs_frames(void) {
  run_t r;
  rstart(&r, 0, NULL, "-v", "caps", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK_HAS(r.ebuf, "hcsbctl: trace send NegotiateProtocol (0x10100B01) id=1");
  CHECK_HAS(r.ebuf, "\"ActivityId\":\"");
  rfree(&r);
}

/* ------------------------------------------------------------------------ */
/* A new user's first hour (issue 11) */

/* A process that exists and is not a zombie; *pgrp (if given) its group. */
static int pid_live(pid_t pid, pid_t *pgrp) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char *rp = strrchr(buf, ')'); /* the command name may hold anything */
  char state;
  int ppid, pg;
  if (rp == NULL || sscanf(rp + 1, " %c %d %d", &state, &ppid, &pg) != 3)
    return 0;
  if (pgrp) *pgrp = pg;
  return state != 'Z' && state != 'X';
}

/* Some live process is in group `pgid`: returns its PID, else 0. */
static pid_t group_member(pid_t pgid) {
  DIR *d = opendir("/proc");
  CHECK(d != NULL);
  struct dirent *e;
  pid_t found = 0;
  while (found == 0 && (e = readdir(d)) != NULL) {
    pid_t pid = (pid_t)atoi(e->d_name), pg;
    if (pid > 0 && pid_live(pid, &pg) && pg == pgid) found = pid;
  }
  closedir(d);
  return found;
}

/* Neither `pid` nor anything else in group `pgid` outlives a short while
 * (SIGKILL is quick, but the kernel delivers it asynchronously).  A
 * survivor is killed, by PID, before the test fails. */
static void check_gone(pid_t pid, pid_t pgid, const char *what) {
  double deadline = hcsb_test_now_ms() + 2000 * hcsb_test_timeout_scale();
  pid_t left;
  while ((left = pid_live(pid, NULL) ? pid : group_member(pgid)) != 0 &&
         hcsb_test_now_ms() < deadline)
    usleep(10000);
  if (left != 0) {
    kill(pid, SIGKILL);
    kill(left, SIGKILL);
    hcsb_test_fail(__FILE__, __LINE__, "%s: process %d of group %d survived",
                   what, (int)left, (int)pgid);
  }
}

static void read_small(const char *path, char *buf, size_t len) {
  int fd = open(path, O_RDONLY);
  CHECK(fd >= 0);
  ssize_t n = read(fd, buf, len - 1);
  close(fd);
  CHECK(n > 0);
  buf[n] = '\0';
}

/* Waits until `path` exists and is not empty, pumping r's output. */
static void await_file(run_t *r, const char *path) {
  double deadline = hcsb_test_now_ms() + 10000 * hcsb_test_timeout_scale();
  struct stat st;
  while (!(stat(path, &st) == 0 && st.st_size > 0) &&
         hcsb_test_now_ms() < deadline)
    rpump(r, NULL, 20);
  CHECK(stat(path, &st) == 0 && st.st_size > 0);
}

static int dir_is_empty(const char *path) {
  DIR *d = opendir(path);
  struct dirent *e;
  int empty = 1;
  CHECK(d != NULL);
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = 0;
  closedir(d);
  return empty;
}

/* 4. A signal while connecting: the spawned guest (a session of its own,
 * so only hcsbctl's cleanup can stop it) is killed, its private stdio
 * directory removed, one line says why, and the exit status is 128+N. */
static void test_signal_while_connecting(void) {
  static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  const char *tmp = tmp_path("sigtmp"), *pidfile = tmp_path("sleeper.pid");
  char cmd[PATH_MAX + 64], want[64], buf[32];
  CHECK(mkdir(tmp, 0700) == 0);
  setenv("TMPDIR", tmp, 1); /* where the private stdio directory goes */
  snprintf(cmd, sizeof cmd, "echo $$ > '%s'; exec sleep 77", pidfile);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    run_t r;
    unlink(pidfile);
    rstart(&r, i == 1 ? R_OWN_PGRP : 0, NULL, "--spawn", cmd, "caps", NULL);
    await_file(&r, pidfile);
    CHECK(!dir_is_empty(tmp)); /* the guest's stdio directory */
    /* SIGINT as a terminal sends it: to hcsbctl's whole group. */
    CHECK(kill(i == 1 ? -r.pid : r.pid, sigs[i]) == 0);
    rfinish(&r);
    snprintf(want, sizeof want, "hcsbctl: stopped by SIG%s\n",
             sigs[i] == SIGTERM  ? "TERM"
             : sigs[i] == SIGINT ? "INT"
                                 : "HUP");
    CHECK_STR(r.ebuf, want);
    CHECK_EQ(r.status, 128 + sigs[i]);
    read_small(pidfile, buf, sizeof buf);
    check_gone((pid_t)atoi(buf), (pid_t)atoi(buf), "the spawned guest");
    CHECK(dir_is_empty(tmp));
    rfree(&r);
  }
  unsetenv("TMPDIR");
}

/* 4. The socket hcsbctl listens on for a guest that never dials is removed
 * on a signal, as on --timeout. */
static void test_signal_while_listening(void) {
  const char *sock = tmp_path("listen.sock");
  char addr[PATH_MAX + 16];
  snprintf(addr, sizeof addr, "unix://%s", sock);
  run_t r;
  rstart(&r, 0, NULL, "--guest", addr, "caps", NULL);
  double deadline = hcsb_test_now_ms() + 10000 * hcsb_test_timeout_scale();
  struct stat st;
  while (stat(sock, &st) != 0 && hcsb_test_now_ms() < deadline)
    rpump(&r, NULL, 20);
  CHECK(stat(sock, &st) == 0 && S_ISSOCK(st.st_mode));
  CHECK(kill(r.pid, SIGTERM) == 0);
  rfinish(&r);
  CHECK_STR(r.ebuf, "hcsbctl: stopped by SIGTERM\n");
  CHECK_EQ(r.status, 128 + SIGTERM);
  CHECK(stat(sock, &st) != 0);
  rfree(&r);
}

static int saw_caps(run_t *r) {
  return r->obuf && strstr(r->obuf, "{\"Version\":4,") != NULL;
}

/* 4. A signal while `script -` waits for its next line: the same. */
static void test_signal_while_script_waits(void) {
  const char *pidfile = tmp_path("guest.pid");
  char cmd[PATH_MAX * 2], buf[32];
  snprintf(cmd, sizeof cmd, "echo $$ > '%s'; exec '%s'", pidfile,
           hcsb_test_build_path("src/hcsb-guest"));
  run_t r;
  rstart(&r, R_KEEP_STDIN, "caps --json\n", "--spawn", cmd, "script", "-",
         NULL);
  CHECK(rpump(&r, saw_caps, 10000 * hcsb_test_timeout_scale()));
  CHECK(kill(r.pid, SIGTERM) == 0);
  rfinish(&r);
  CHECK_STR(r.ebuf, "hcsbctl: stopped by SIGTERM\n");
  CHECK_EQ(r.status, 128 + SIGTERM);
  read_small(pidfile, buf, sizeof buf);
  check_gone((pid_t)atoi(buf), (pid_t)atoi(buf), "the spawned guest");
  rfree(&r);
}

/* 1. COMMAND --help prints that help and exits 0, whatever the guest. */
static void test_help_every_command(void) {
  static const char *const cmds[] = {
      "run",   "exec",     "create", "start",  "kill",   "wait", "ps",
      "stats", "shutdown", "delete", "modify", "stacks", "caps", "script"};
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    char usage[64];
    int n = snprintf(usage, sizeof usage, "Usage: hcsbctl %s", cmds[i]);
    run_t r;
    rstart(&r, 0, NULL, "--guest", "unix+connect:///nonexistent", cmds[i],
           "--help", NULL);
    rfinish(&r);
    if (r.status != 0 || strncmp(r.obuf, usage, (size_t)n) != 0 ||
        (r.obuf[n] != ' ' && r.obuf[n] != '\n') || r.elen != 0)
      hcsb_test_fail(__FILE__, __LINE__,
                     "%s --help: status %d, stdout: %.40s, stderr: %s", cmds[i],
                     r.status, r.obuf, r.ebuf);
    rfree(&r);
  }
  /* The built-in guest is not even started. */
  run_t r;
  rstart(&r, 0, NULL, "ps", "--help", NULL);
  rfinish(&r);
  CHECK_EQ(r.status, 0);
  CHECK_STR(r.ebuf, "");
  CHECK(strncmp(r.obuf, "Usage: hcsbctl ps ", 18) == 0);
  rfree(&r);
}

/* 2. `run -t -- sh` at a terminal: what is typed reaches the process. */
static void test_run_tty_at_terminal_relays_typing(void) {
  int master, slave;
  struct winsize ws = {.ws_row = 24, .ws_col = 80};
  CHECK(openpty(&master, &slave, NULL, NULL, &ws) == 0);
  char *argv[] = {
      NULL, "run", "-t", "--", "/bin/sh", "-c", "read x; echo \"got:$x\"",
      NULL};
  pid_t pid = pty_start(master, slave, argv);
  char out[4096];
  CHECK(write(master, "typed\r", 6) == 6);
  pty_read_until(master, out, sizeof out, 0, "got:typed",
                 10000 * hcsb_test_timeout_scale());
  if (strstr(out, "got:typed") == NULL)
    kill(pid, SIGKILL); /* it would wait forever */
  int status = pty_reap(pid, master, out);
  close(master);
  close(slave);
  CHECK_HAS(out, "got:typed");
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* 3. Ctrl-C at a terminal signals hcsbctl's whole process group: the
 * spawned guest is not in it, so it survives, the process gets SIGINT by
 * forwarding, and nothing is reported as failed. */
static void test_run_ctrl_c_reaches_the_process_only(void) {
  run_t r;
  run_and_signal(&r, R_OWN_PGRP, TRAP_INT READY_LOOP, SIGINT);
  CHECK_STR(r.ebuf, ""); /* e.g. no "hcsb-guest: signal 2: stopping" */
  CHECK_STR(r.obuf,
            "ready\ngot-INT\n"); /* relayed after the signal: the guest lived */
  CHECK_EQ(r.status, 5);
  rfree(&r);
}

/* 3, 4. A guest that cannot signal UVM processes (a real GCS, or the
 * emulator without --allow-uvm-signal): Ctrl-C gives up with 128+SIGINT,
 * as run --help promises, saying why in one line; nothing is left running. */
static void test_run_ctrl_c_without_signal_support(void) {
  char cmd[PATH_MAX + 16];
  const char *pidfile = tmp_path("uvm-proc.pid");
  snprintf(cmd, sizeof cmd, "exec '%s'",
           hcsb_test_build_path("src/hcsb-guest"));
  char script[PATH_MAX + 128];
  snprintf(script, sizeof script, "echo $$ > '%s'; " READY_LOOP, pidfile);
  run_t r;
  rstart(&r, R_OWN_PGRP, NULL, "--spawn", cmd, "run", "--", "/bin/sh", "-c",
         script, NULL);
  CHECK(rpump(&r, saw_ready, 10000 * hcsb_test_timeout_scale()));
  CHECK(kill(-r.pid, SIGINT) == 0);
  rfinish(&r);
  CHECK_EQ(r.status, 128 + SIGINT);
  CHECK_PREFIX(r.ebuf,
               "hcsbctl: run: cannot forward SIGINT to the process: guest "
               "error 0xC037010E");
  CHECK_EQ(count_char(r.ebuf, '\n'), 1);
  char buf[32];
  read_small(pidfile, buf, sizeof buf);
  pid_t proc = (pid_t)atoi(buf);
  CHECK(proc > 0);
  check_gone(proc, proc, "the UVM process after hcsbctl gave up");
  rfree(&r);
}

/* 3. The guest dies under a running process: said once, exit 3. */
static void test_run_guest_lost_said_once(void) {
  run_t r;
  rstart(&r, 0, NULL, "run", "--", "/bin/sh", "-c", "kill -KILL $PPID; sleep 1",
         NULL);
  rfinish(&r);
  CHECK_STR(r.ebuf, "hcsbctl: run: the connection to the guest is lost\n");
  CHECK_EQ(r.status, 3);
  rfree(&r);
}

/* 5. A UVM process killed by a signal hcsbctl forwarded: 128+N, quietly,
 * as a shell reports it. */
static void test_run_forwarded_signal_exit_status(void) {
  run_t r;
  run_and_signal(&r, 0, READY_LOOP, SIGTERM);
  CHECK_STR(r.obuf, "ready\n");
  CHECK_STR(r.ebuf, "");
  CHECK_EQ(r.status, 128 + SIGTERM);
  rfree(&r);
}

/* 7. --timeout holds while connecting to a spawned peer that never
 * answers, and the peer's whole process group is killed: the shell that
 * leads it and what it started in the background. */
static void test_spawn_timeout_kills_the_group(void) {
  const char *info = tmp_path("spawned.txt");
  char cmd[PATH_MAX + 128];
  snprintf(
      cmd, sizeof cmd,
      "sleep 32 & echo \"$$ $(cut -d' ' -f5 /proc/$$/stat) $!\" > '%s'; wait",
      info);
  double t0 = hcsb_test_now_ms();
  run_t r;
  rstart(&r, 0, NULL, "--timeout", "1000", "--spawn", cmd, "caps", NULL);
  rfinish(&r);
  double elapsed = hcsb_test_now_ms() - t0;
  char buf[128];
  read_small(info, buf, sizeof buf);
  int leader = 0, pgid = 0, sleeper = 0;
  CHECK(sscanf(buf, "%d %d %d", &leader, &pgid, &sleeper) == 3);
  check_gone(sleeper, pgid, "the spawned peer's background child");
  CHECK_EQ(pgid, leader); /* the spawned shell led a group of its own */
  check_gone(leader, pgid, "the spawned shell");
  CHECK_EQ(r.status, 4);
  CHECK_HAS(r.ebuf, "operation timed out");
  if (elapsed > 1000 + 700 * hcsb_test_timeout_scale())
    hcsb_test_fail(__FILE__, __LINE__, "--timeout 1000 took %.0f ms", elapsed);
  rfree(&r);
}

/* 7. When the bridge closes, the guest exits, then the shell that ran it;
 * what that shell left in the background goes with them (the emulator
 * kills its own children, not its parent's). */
static void test_spawn_close_kills_the_group(void) {
  const char *info = tmp_path("spawned2.txt");
  char cmd[PATH_MAX * 2 + 64];
  snprintf(cmd, sizeof cmd, "sleep 32 & echo \"$$ $!\" > '%s'; '%s'", info,
           hcsb_test_build_path("src/hcsb-guest"));
  run_t r;
  rstart(&r, 0, NULL, "--spawn", cmd, "caps", "--json", NULL);
  rfinish(&r);
  char buf[128];
  read_small(info, buf, sizeof buf);
  int leader = 0, sleeper = 0;
  CHECK(sscanf(buf, "%d %d", &leader, &sleeper) == 2);
  check_gone(sleeper, leader, "the guest's background child");
  CHECK_EQ(r.status, 0);
  CHECK(strncmp(r.obuf, "{\"Version\":4,", 12) == 0);
  rfree(&r);
}

/* 8. A peer that echoes our NegotiateProtocol back is no GCS: said at once,
 * not after the connect timeout. */
static void test_spawn_echo_peer_fails_at_once(void) {
  double t0 = hcsb_test_now_ms();
  run_t r;
  rstart(&r, 0, NULL, "--timeout", "10000", "--spawn", "cat", "caps", NULL);
  rfinish(&r);
  double elapsed = hcsb_test_now_ms() - t0;
  CHECK_STR(r.ebuf,
            "hcsbctl: cannot connect to the guest (spawn:cat): the peer sent "
            "requests, not responses: is it a GCS?\n");
  CHECK_EQ(r.status, 3);
  if (elapsed > 3000 * hcsb_test_timeout_scale())
    hcsb_test_fail(__FILE__, __LINE__, "took %.0f ms", elapsed);
  rfree(&r);
}

/* 9. -v withholds ExecuteProcess bodies (environments); -vv shows them. */
static void test_verbose_levels_and_secrets(void) {
  static const char *const flags[] = {"-v", "-vv"};
  run_t r;
  for (int shown = 0; shown < 2; shown++) {
    rstart(&r, 0, NULL, flags[shown], "run", "-e", "SECRET_TOKEN=s3cr3t", "--",
           "true", NULL);
    rfinish(&r);
    CHECK_EQ(r.status, 0);
    CHECK_HAS(r.ebuf, "send ExecuteProcess (0x");
    CHECK_EQ(strstr(r.ebuf, "s3cr3t") != NULL, shown);
    CHECK_EQ(strstr(r.ebuf, "(body withheld)") == NULL, shown);
    rfree(&r);
  }

  rstart(&r, 0, NULL, "--help", NULL);
  rfinish(&r);
  CHECK_HAS(r.obuf, "  -vv  ");
  rfree(&r);
}

/* 9. ps --help promises ImageName only when the guest names the process:
 * a Linux GCS never does (ps --json in script_container_workflow). */
static void test_ps_help_image_name(void) {
  run_t r;
  rstart(&r, 0, NULL, "ps", "--help", NULL);
  rfinish(&r);
  CHECK_HAS(r.obuf,
            "plus \"ImageName\" (the IMAGE\ncolumn) for the processes the "
            "guest names");
  rfree(&r);
}

static const hcsb_test_t tests[] = {
    TEST_ENTRY(run_stdout_stderr_exit),
    TEST_ENTRY(run_without_dashdash),
    TEST_ENTRY(run_stdin_cat),
    TEST_ENTRY(run_stdin_large),
    TEST_ENTRY(run_no_stdin_without_i),
    TEST_ENTRY(run_stdin_regular_file),
    TEST_ENTRY(run_large_output),
    TEST_ENTRY(run_signal_death),
    TEST_ENTRY(run_tty_without_terminal),
    TEST_ENTRY(run_forwards_sigint),
    TEST_ENTRY(run_timeout),
    TEST_ENTRY(run_tty_terminal),
    TEST_ENTRY(run_tty_size_refused),
    TEST_ENTRY(run_output_backpressure),
    TEST_ENTRY(run_broken_stdout),
    TEST_ENTRY(vm_transport_entropy_and_log),
    TEST_ENTRY(caps_json),
    TEST_ENTRY(caps_plain),
    TEST_ENTRY(stacks),
    TEST_ENTRY(modify),
    TEST_ENTRY(script_container_workflow),
    TEST_ENTRY(script_layers_deleted),
    TEST_ENTRY(script_stdin_json_wait),
    TEST_ENTRY(script_shutdown_and_more),
    TEST_ENTRY(script_wait_connection_lost),
    TEST_ENTRY(script_stops_at_failure),
    TEST_ENTRY(guest_errors_exit_1),
    TEST_ENTRY(usage_errors),
    TEST_ENTRY(connection_failure_exit_3),
    TEST_ENTRY(uvm_kvm_boot_timeout_hint),
    TEST_ENTRY(help_and_version),
    TEST_ENTRY(builtin_guest_beside_executable),
    TEST_ENTRY(spawn_with_stdio_dir),
    TEST_ENTRY(guest_unix_connect),
    TEST_ENTRY(verbose_logs_frames),
    TEST_ENTRY(help_every_command),
    TEST_ENTRY(run_tty_at_terminal_relays_typing),
    TEST_ENTRY(run_ctrl_c_reaches_the_process_only),
    TEST_ENTRY(run_ctrl_c_without_signal_support),
    TEST_ENTRY(run_guest_lost_said_once),
    TEST_ENTRY(run_forwarded_signal_exit_status),
    TEST_ENTRY(spawn_timeout_kills_the_group),
    TEST_ENTRY(spawn_close_kills_the_group),
    TEST_ENTRY(spawn_echo_peer_fails_at_once),
    TEST_ENTRY(verbose_levels_and_secrets),
    TEST_ENTRY(ps_help_image_name),
    TEST_ENTRY(signal_while_connecting),
    TEST_ENTRY(signal_while_listening),
    TEST_ENTRY(signal_while_script_waits),
};

int main(int argc, char **argv) {
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
