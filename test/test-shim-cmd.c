/* The real containerd-shim-hcsb-v1 binary, driven as containerd 1.6 drives
 * it: `start` in a fake bundle with the flags, environment and
 * stdin containerd uses, output collected the way CombinedOutput does;
 * the daemon it leaves checked (own session, nothing of start's stdio,
 * the address file, the socket named as containerd's shims name theirs),
 * spoken to over ttrpc as containerd would; `delete` after a clean
 * Shutdown, after a SIGKILL (its recorded "VM" process, file and
 * directory undone) and with nothing to do; pods; bad configuration.
 *
 * The test makes itself a child subreaper, so the daemons `start` leaves
 * behind are its children: their exit status is checked (ASan's and
 * valgrind's reports make it non-zero). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"
#include "shim-client.h"
#include "shim/state.h"
#include "shim.pb-c.h"

/* snprintf that fails the test instead of truncating. */
#define FMT(buf, size, ...) \
  CHECK((size_t)snprintf(buf, size, __VA_ARGS__) < (size_t)(size))

#define NS "hcsbtest"
#define CONTAINERD "/run/hcsbtest/containerd.sock"

static char tmp[PATH_MAX], sockdir[PATH_MAX], conf[PATH_MAX];
static int guard_fd = -1; /* to the guard: pids of daemons to kill */
static char ttrpc_path[PATH_MAX];
static int ttrpc_fd = -1;

/* ------------------------------------------------------------------------ */
/* Set-up */

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  fputs(text, f);
  CHECK_EQ(fclose(f), 0);
}

static char *read_text(const char *path) {
  size_t len;
  return (char *)hcsb_test_read_file(path, &len);
}

/* A fake containerd ttrpc socket for TTRPC_ADDRESS (the shim connects to
 * it only to forward events). */
static void fake_containerd(void) {
  struct sockaddr_un sa;

  FMT(ttrpc_path, sizeof(ttrpc_path), "%s/containerd.sock.ttrpc", tmp);
  ttrpc_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(ttrpc_fd >= 0);
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  strcpy(sa.sun_path, ttrpc_path);
  CHECK_EQ(bind(ttrpc_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  CHECK_EQ(listen(ttrpc_fd, 8), 0);
}

/* The daemons `start` leaves live in sessions of their own, out of reach
 * of the harness, which kills a failed or hung test's process group.  A
 * guard, in a session of its own too, learns their pids and kills those
 * still there once this test process is gone, however it went (its end of
 * the pipe then reads EOF). */
static void start_guard(void) {
  int p[2];
  pid_t pid;

  CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    pid_t pids[64];
    unsigned long long starts[64];
    size_t n = 0, i;
    pid_t got;

    setsid();
    close(p[1]);
    while (read(p[0], &got, sizeof(got)) == (ssize_t)sizeof(got))
      if (n < 64) {
        pids[n] = got;
        starts[n++] = hcsb__shim_proc_start_time(got);
      }
    for (i = 0; i < n; i++)
      if (starts[i] != 0 && hcsb__shim_proc_start_time(pids[i]) == starts[i])
        kill(pids[i], SIGKILL);
    _exit(0);
  }
  close(p[0]);
  guard_fd = p[1];
}

static void guard(pid_t pid) {
  CHECK_EQ(write(guard_fd, &pid, sizeof(pid)), (ssize_t)sizeof(pid));
}

static void setup(const char *extra_conf) {
  char text[1024];

  /* Daemons left by `start` become our children. */
  CHECK_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
  start_guard();
  FMT(tmp, sizeof(tmp), "%s", hcsb_test_tmpdir());
  FMT(sockdir, sizeof(sockdir), "%s/s", tmp);
  FMT(conf, sizeof(conf), "%s/shim.conf", tmp);
  FMT(text, sizeof(text), "socket_dir = %s\nlog_level = debug\n%s", sockdir,
      extra_conf ? extra_conf : "");
  write_file(conf, text);
  setenv("HCSB_SHIM_CONFIG", conf, 1);
  fake_containerd();
  setenv("TTRPC_ADDRESS", ttrpc_path, 1);
}

/* A bundle directory with a config.json carrying `annotations` (a JSON
 * object's members, may be empty) and a log FIFO whose reading end is
 * returned in *log_fd (non-blocking). */
static void make_bundle(const char *name, const char *annotations, char *out,
                        size_t outlen, int *log_fd) {
  char path[PATH_MAX + 32], json[1024];

  FMT(out, outlen, "%s/%s", tmp, name);
  CHECK_EQ(mkdir(out, 0700), 0);
  FMT(json, sizeof(json), "{\"ociVersion\": \"1.0.2\", \"annotations\": {%s}}",
      annotations);
  FMT(path, sizeof(path), "%s/config.json", out);
  write_file(path, json);
  FMT(path, sizeof(path), "%s/rootfs", out);
  CHECK_EQ(mkdir(path, 0700), 0);
  FMT(path, sizeof(path), "%s/log", out);
  CHECK_EQ(mkfifo(path, 0700), 0);
  *log_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  CHECK(*log_fd >= 0);
}

/* ------------------------------------------------------------------------ */
/* Running the binary */

typedef struct run_s {
  int status;     /* waitpid status */
  char out[8192]; /* stdout (and stderr when combined) */
  size_t out_len;
  char err[8192]; /* stderr when not combined */
  int eof_ms;     /* how long after exit the output reached EOF */
} run_t;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The real executable, not libtool's wrapper script (so valgrind traces
 * it, and /proc/self/exe is the shim). */
static void exec_shim(char **argv) {
  static const char *const lt[] = {"src/.libs/lt-containerd-shim-hcsb-v1",
                                   "src/.libs/containerd-shim-hcsb-v1"};
  char libs[PATH_MAX * 2];
  const char *old = getenv("LD_LIBRARY_PATH");
  size_t i;

  for (i = 0; i < 2; i++) {
    const char *p = hcsb_test_build_path(lt[i]);
    if (access(p, X_OK) != 0) continue;
    FMT(libs, sizeof(libs), "%s%s%s", hcsb_test_build_path(".libs"),
        old && *old ? ":" : "", old && *old ? old : "");
    setenv("LD_LIBRARY_PATH", libs, 1);
    argv[0] = (char *)p;
    execv(p, argv);
  }
  argv[0] = (char *)hcsb_test_build_path("src/containerd-shim-hcsb-v1");
  execv(argv[0], argv);
  _exit(127);
}

/* Drains fd into buf until EOF or the deadline; returns 1 on EOF. */
static int drain(int fd, char *buf, size_t cap, size_t *len,
                 long long deadline) {
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    long long left = deadline - now_ms();
    char junk[4096];
    ssize_t n;

    if (left <= 0 || poll(&p, 1, (int)left) <= 0) return 0;
    if (*len + 1 < cap)
      n = read(fd, buf + *len, cap - 1 - *len);
    else
      n = read(fd, junk, sizeof(junk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 1;
    if (*len + 1 < cap) *len += (size_t)n;
    buf[*len] = '\0';
  }
}

/* Runs the shim with `args` (NULL-terminated) in `cwd`, stdin from
 * `input` (NULL: /dev/null).  combined: stdout and stderr on one pipe, as
 * containerd's start reads them. */
static void run(run_t *r, const char *cwd, const char *input, int combined,
                const char *const *args) {
  int out[2], err[2], in[2];
  char *argv[32];
  size_t n = 0, elen = 0;
  long long deadline, exited;
  pid_t pid;

  memset(r, 0, sizeof(*r));
  while (args[n] != NULL) {
    CHECK(n < 30);
    argv[n + 1] = (char *)args[n];
    n++;
  }
  argv[n + 1] = NULL;
  CHECK_EQ(pipe(out), 0);
  CHECK_EQ(pipe(err), 0);
  CHECK_EQ(pipe(in), 0);
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    if (chdir(cwd) < 0) _exit(126);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(combined ? out[1] : err[1], 2);
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    close(err[0]);
    close(err[1]);
    /* As containerd runs shims: in a process group of their own. */
    setpgid(0, 0);
    exec_shim(argv);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (input != NULL)
    CHECK_EQ(write(in[1], input, strlen(input)), (ssize_t)strlen(input));
  close(in[1]);
  deadline = now_ms() + 60000LL * shim_test_scale();
  /* Wait for the process, reading as we go so it never blocks on us. */
  for (;;) {
    pid_t w = waitpid(pid, &r->status, WNOHANG);
    CHECK(w >= 0);
    if (w == pid) break;
    CHECK(now_ms() < deadline);
    drain(out[0], r->out, sizeof(r->out), &r->out_len, now_ms() + 10);
  }
  exited = now_ms();
  /* Nobody else may hold the output: EOF must come right away. */
  CHECK(drain(out[0], r->out, sizeof(r->out), &r->out_len,
              exited + 10000LL * shim_test_scale()));
  r->eof_ms = (int)(now_ms() - exited);
  if (!combined)
    CHECK(drain(err[0], r->err, sizeof(r->err), &elen,
                now_ms() + 10000LL * shim_test_scale()));
  close(out[0]);
  close(err[0]);
}

static int exit_code(const run_t *r) {
  return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 128;
}

static void start(run_t *r, const char *bundle, const char *id,
                  const char *input) {
  const char *const args[] = {"-namespace",
                              NS,
                              "-address",
                              CONTAINERD,
                              "-publish-binary",
                              "/usr/bin/containerd",
                              "-id",
                              id,
                              "-debug",
                              "start",
                              NULL};
  run(r, bundle, input, 1, args);
}

static void delete_(run_t *r, const char *bundle, const char *id) {
  const char *const args[] = {"-namespace",
                              NS,
                              "-address",
                              CONTAINERD,
                              "-publish-binary",
                              "/usr/bin/containerd",
                              "-id",
                              id,
                              "-bundle",
                              bundle,
                              "delete",
                              NULL};
  run(r, bundle, NULL, 0, args);
}

/* The address containerd's own shims would use, from sha256sum(1). */
static void expected_address(const char *id, char *out, size_t outlen) {
  char cmd[512], hex[80] = "";
  FILE *p;

  FMT(cmd, sizeof(cmd), "printf '%%s' '%s/%s/%s' | sha256sum | cut -d' ' -f1",
      CONTAINERD, NS, id);
  p = popen(cmd, "r");
  CHECK(p != NULL);
  CHECK(fgets(hex, sizeof(hex), p) != NULL);
  pclose(p);
  hex[strcspn(hex, "\n")] = '\0';
  CHECK_EQ(strlen(hex), 64);
  FMT(out, outlen, "unix://%s/%s", sockdir, hex);
}

/* The shim daemon's pid from the bundle's record. */
static pid_t daemon_pid(const char *bundle) {
  char path[PATH_MAX + 32], *text, *line;
  pid_t pid = 0;

  FMT(path, sizeof(path), "%s/hcsb-state", bundle);
  text = read_text(path);
  line = strstr(text, "\nshim ");
  if (line != NULL) pid = (pid_t)atoi(line + 6);
  free(text);
  if (pid > 0) guard(pid);
  return pid;
}

/* The opening most tests share: the default configuration, bundle "b1" and
 * a `start` of task "t1" that succeeded (its output in *r).  Returns the
 * daemon's pid; `want` gets its socket's address, *log_fd the log FIFO. */
static pid_t start_t1(run_t *r, char *bundle, size_t blen, char *want,
                      size_t wlen, int *log_fd) {
  setup(NULL);
  make_bundle("b1", "", bundle, blen, log_fd);
  start(r, bundle, "t1", NULL);
  CHECK_EQ(exit_code(r), 0);
  expected_address("t1", want, wlen);
  return daemon_pid(bundle);
}

/* Waits for our child `pid` to exit; returns its status. */
static int wait_exit(pid_t pid) {
  long long deadline = now_ms() + 30000LL * shim_test_scale();
  int status;

  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    CHECK(w >= 0);
    if (w == pid) return status;
    CHECK(now_ms() < deadline);
    usleep(10000);
  }
}

static int connect_shim(const char *address) {
  CHECK(strncmp(address, "unix://", 7) == 0);
  return shim_client_connect(address + 7);
}

static void shutdown_shim(const char *address, const char *id) {
  Containerd__Task__V2__ShutdownRequest sr =
      CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
  shim_reply_t rep;
  int fd = connect_shim(address), got;

  CHECK(fd >= 0);
  sr.id = (char *)id;
  shim_client_call(fd, 1, "containerd.task.v2.Task", "Shutdown", &sr.base);
  /* Answered or not, the connection closes. */
  got = shim_client_read(fd, 10000, &rep);
  if (got == 1) {
    CHECK_EQ(rep.code, 0);
    shim_reply_free(&rep);
  }
  CHECK(shim_client_wait_eof(fd, 10000));
  close(fd);
}

static char *read_log(int fd) {
  static char buf[65536];
  size_t len = 0;
  ssize_t n;

  while (len + 1 < sizeof(buf) &&
         (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
    len += (size_t)n;
  buf[len] = '\0';
  return buf;
}

static Containerd__Task__V2__DeleteResponse *parse_delete(const run_t *r) {
  Containerd__Task__V2__DeleteResponse *dr =
      containerd__task__v2__delete_response__unpack(NULL, r->out_len,
                                                    (const uint8_t *)r->out);
  CHECK(dr != NULL);
  return dr;
}

/* ------------------------------------------------------------------------ */

static void test_start_serve_shutdown(void) {
  Containerd__Task__V2__ConnectRequest cr =
      CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
  char bundle[PATH_MAX], want[256], path[PATH_MAX + 32], *text;
  Containerd__Task__V2__ConnectResponse *resp;
  shim_reply_t rep;
  struct stat st;
  run_t r;
  pid_t pid;
  int log_fd, fd, status;

  setup(NULL);
  make_bundle("b1", "", bundle, sizeof(bundle), &log_fd);
  start(&r, bundle, "t1", NULL);
  CHECK_EQ(exit_code(&r), 0);
  expected_address("t1", want, sizeof(want));
  /* Exactly the address, nothing else (containerd takes all of it). */
  CHECK_STR(r.out, want);
  FMT(path, sizeof(path), "%s/address", bundle);
  text = read_text(path);
  CHECK_STR(text, want);
  free(text);
  CHECK(stat(want + 7, &st) == 0 && S_ISSOCK(st.st_mode));
  CHECK_EQ(st.st_mode & 0777, 0600);

  /* start returned; the daemon lives on, in a session of its own. */
  pid = daemon_pid(bundle);
  CHECK(pid > 0);
  CHECK_EQ(kill(pid, 0), 0);
  CHECK_EQ(getsid(pid), pid);
  CHECK(getsid(pid) != getsid(0));
  CHECK(waitpid(pid, &status, WNOHANG) == 0);

  /* containerd's calls. */
  fd = connect_shim(want);
  CHECK(fd >= 0);
  cr.id = "t1";
  shim_client_call(fd, 1, "containerd.task.v2.Task", "Connect", &cr.base);
  CHECK_EQ(shim_client_read(fd, 10000, &rep), 1);
  CHECK_EQ(rep.code, 0);
  resp = containerd__task__v2__connect_response__unpack(NULL, rep.payload_len,
                                                        rep.payload);
  CHECK(resp != NULL);
  CHECK_EQ(resp->shim_pid, pid);
  containerd__task__v2__connect_response__free_unpacked(resp, NULL);
  shim_reply_free(&rep);
  shim_client_call(fd, 3, "containerd.task.v2.Nope", "State", NULL);
  CHECK_EQ(shim_client_read(fd, 10000, &rep), 1);
  CHECK_EQ(rep.stream, 3);
  CHECK_EQ(rep.code, 12);
  shim_reply_free(&rep);
  close(fd);

  /* Shutdown ends it: exit status 0, socket gone. */
  shutdown_shim(want, "t1");
  status = wait_exit(pid);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
  CHECK(stat(want + 7, &st) < 0 && errno == ENOENT);

  /* It had no event to forward, so it never dialled containerd's ttrpc
   * socket (the publisher connects on the first event). */
  {
    struct pollfd p = {ttrpc_fd, POLLIN, 0};
    CHECK_EQ(poll(&p, 1, 0), 0);
  }

  /* Its log went to the FIFO, in logrus' format. */
  text = read_log(log_fd);
  CHECK(strstr(text, "level=info msg=\"shim ") != NULL);
  CHECK(strstr(text, " id=\"t1\" namespace=\"" NS "\"") != NULL);
  CHECK(strstr(text, "msg=\"shim exits (status 0)\"") != NULL);
  close(log_fd);
}

static void test_delete_after_shutdown(void) {
  char bundle[PATH_MAX], want[256], path[PATH_MAX + 32];
  Containerd__Task__V2__DeleteResponse *dr;
  run_t r;
  pid_t pid;
  int log_fd;

  pid = start_t1(&r, bundle, sizeof(bundle), want, sizeof(want), &log_fd);
  shutdown_shim(want, "t1");
  CHECK_EQ(wait_exit(pid), 0);

  delete_(&r, bundle, "t1");
  CHECK_EQ(exit_code(&r), 0);
  CHECK_STR(r.err, "");
  dr = parse_delete(&r);
  CHECK_EQ(dr->exit_status, 137);
  CHECK(dr->exited_at != NULL);
  CHECK(llabs((long long)dr->exited_at->seconds - (long long)time(NULL)) < 600);
  containerd__task__v2__delete_response__free_unpacked(dr, NULL);
  FMT(path, sizeof(path), "%s/hcsb-state", bundle);
  CHECK(access(path, F_OK) < 0);
  close(log_fd);
}

/* The shim SIGKILLed mid-run: delete undoes what its record names. */
static void test_delete_after_sigkill(void) {
  char bundle[PATH_MAX], want[256], path[PATH_MAX + 64], tree[PATH_MAX];
  char file[PATH_MAX];
  Containerd__Task__V2__DeleteResponse *dr;
  hcsb__shim_state_t *st;
  struct stat sb;
  run_t r;
  pid_t pid, vm;
  int log_fd, status;

  pid = start_t1(&r, bundle, sizeof(bundle), want, sizeof(want), &log_fd);

  /* What a task service records: a "VM" process, a file, a directory. */
  vm = fork();
  CHECK(vm >= 0);
  if (vm == 0) {
    execl("/bin/sleep", "sleep", "600", (char *)NULL);
    _exit(127);
  }
  FMT(file, sizeof(file), "%s/vm-console.log", tmp);
  write_file(file, "x");
  FMT(tree, sizeof(tree), "%s/run/vm1", tmp);
  CHECK_EQ(mkdir(hcsb_test_tmpdir(), 0700) == 0 || errno == EEXIST, 1);
  FMT(path, sizeof(path), "%s/run", tmp);
  CHECK_EQ(mkdir(path, 0700), 0);
  CHECK_EQ(mkdir(tree, 0700), 0);
  FMT(path, sizeof(path), "%s/sub", tree);
  CHECK_EQ(mkdir(path, 0700), 0);
  FMT(path, sizeof(path), "%s/sub/f", tree);
  write_file(path, "y");
  CHECK_EQ(hcsb__shim_state_open(bundle, &st), 0);
  /* Give the forked child time to become `sleep` (start time is fixed at
   * fork anyway). */
  CHECK_EQ(hcsb__shim_state_add_pid(st, vm, "qemu"), 0);
  CHECK_EQ(hcsb__shim_state_add_path(st, "file", file), 0);
  CHECK_EQ(hcsb__shim_state_add_path(st, "tree", tree), 0);
  CHECK_EQ(hcsb__shim_state_set_task_pid(st, 4242), 0);
  hcsb__shim_state_close(st);

  CHECK_EQ(kill(pid, SIGKILL), 0);
  status = wait_exit(pid);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  CHECK(stat(want + 7, &sb) == 0); /* left behind */

  delete_(&r, bundle, "t1");
  CHECK_EQ(exit_code(&r), 0);
  dr = parse_delete(&r);
  CHECK_EQ(dr->pid, 4242);
  CHECK_EQ(dr->exit_status, 137);
  containerd__task__v2__delete_response__free_unpacked(dr, NULL);
  status = wait_exit(vm);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  CHECK(stat(want + 7, &sb) < 0 && errno == ENOENT);
  CHECK(access(file, F_OK) < 0);
  CHECK(access(tree, F_OK) < 0);
  FMT(path, sizeof(path), "%s/run", tmp);
  CHECK(access(path, F_OK) == 0); /* only what was recorded */
  FMT(path, sizeof(path), "%s/hcsb-state", bundle);
  CHECK(access(path, F_OK) < 0);
  close(log_fd);
}

/* delete with the shim still up (containerd's clean-up after a start it
 * gave up on): SIGTERM, and the shim exits by itself, cleanly. */
static void test_delete_live_shim(void) {
  char bundle[PATH_MAX], want[256];
  Containerd__Task__V2__DeleteResponse *dr;
  struct stat sb;
  run_t r;
  pid_t pid;
  int log_fd, status;

  pid = start_t1(&r, bundle, sizeof(bundle), want, sizeof(want), &log_fd);
  delete_(&r, bundle, "t1");
  CHECK_EQ(exit_code(&r), 0);
  dr = parse_delete(&r);
  CHECK_EQ(dr->exit_status, 137);
  containerd__task__v2__delete_response__free_unpacked(dr, NULL);
  /* It exited 0 on SIGTERM, not killed; under valgrind its exit (with
   * the leak check) may outlast delete's 1 s of patience, and SIGKILL is
   * then what delete is for. */
  status = wait_exit(pid);
  if (!(shim_test_scale() > 1 && WIFSIGNALED(status) &&
        WTERMSIG(status) == SIGKILL))
    CHECK_EQ(status, 0);
  CHECK(stat(want + 7, &sb) < 0 && errno == ENOENT);
  close(log_fd);
}

/* delete is harmless when there is nothing to undo, and when the whole
 * bundle is gone. */
static void test_delete_when_gone(void) {
  Containerd__Task__V2__DeleteResponse *dr;
  char bundle[PATH_MAX], gone[PATH_MAX];
  run_t r;
  int log_fd;

  setup(NULL);
  make_bundle("b1", "", bundle, sizeof(bundle), &log_fd);
  delete_(&r, bundle, "t1");
  CHECK_EQ(exit_code(&r), 0);
  CHECK_STR(r.err, "");
  dr = parse_delete(&r);
  CHECK_EQ(dr->pid, 0);
  CHECK_EQ(dr->exit_status, 137);
  containerd__task__v2__delete_response__free_unpacked(dr, NULL);

  FMT(gone, sizeof(gone), "%s/no-such-bundle", tmp);
  {
    const char *const args[] = {"-namespace", NS,   "-address", CONTAINERD,
                                "-id",        "t9", "-bundle",  gone,
                                "delete",     NULL};
    run(&r, tmp, NULL, 0, args);
  }
  CHECK_EQ(exit_code(&r), 0);
  dr = parse_delete(&r);
  containerd__task__v2__delete_response__free_unpacked(dr, NULL);
  close(log_fd);
}

/* A second start of the same task hands back the same shim. */
static void test_start_twice(void) {
  char bundle[PATH_MAX], want[256];
  run_t r;
  pid_t pid;
  int log_fd;

  setup(NULL);
  make_bundle("b1", "", bundle, sizeof(bundle), &log_fd);
  /* Runtime options on stdin (a packed Any) are read and ignored. */
  start(&r, bundle, "t1",
        "\x0a\x03"
        "abc");
  CHECK_EQ(exit_code(&r), 0);
  pid = daemon_pid(bundle);
  expected_address("t1", want, sizeof(want));
  start(&r, bundle, "t1", NULL);
  CHECK_EQ(exit_code(&r), 0);
  CHECK_STR(r.out, want);
  CHECK_EQ(daemon_pid(bundle), pid);
  shutdown_shim(want, "t1");
  CHECK_EQ(wait_exit(pid), 0);
  close(log_fd);
}

/* A pod: the container's start hands back the sandbox shim's address. */
static void test_pod_container_joins_sandbox(void) {
  char sb[PATH_MAX], c1[PATH_MAX], c2[PATH_MAX], want[256];
  char path[PATH_MAX + 32], *text;
  run_t r;
  pid_t pid;
  int l1, l2, l3;

  setup(NULL);
  make_bundle("sb",
              "\"io.kubernetes.cri.container-type\": \"sandbox\", "
              "\"io.kubernetes.cri.sandbox-id\": \"pod1\"",
              sb, sizeof(sb), &l1);
  make_bundle("c1",
              "\"io.kubernetes.cri.container-type\": \"container\", "
              "\"io.kubernetes.cri.sandbox-id\": \"pod1\"",
              c1, sizeof(c1), &l2);
  make_bundle("c2",
              "\"io.kubernetes.cri.container-type\": \"container\", "
              "\"io.kubernetes.cri.sandbox-id\": \"pod2\"",
              c2, sizeof(c2), &l3);
  start(&r, sb, "pod1", NULL);
  CHECK_EQ(exit_code(&r), 0);
  expected_address("pod1", want, sizeof(want));
  CHECK_STR(r.out, want);
  pid = daemon_pid(sb);

  start(&r, c1, "ctr1", NULL);
  CHECK_EQ(exit_code(&r), 0);
  CHECK_STR(r.out, want);
  FMT(path, sizeof(path), "%s/address", c1);
  text = read_text(path);
  CHECK_STR(text, want);
  free(text);
  /* No shim of its own, nothing for its delete to kill. */
  FMT(path, sizeof(path), "%s/hcsb-state", c1);
  CHECK(access(path, F_OK) < 0);

  /* A container whose sandbox has no shim is an error. */
  start(&r, c2, "ctr2", NULL);
  CHECK_EQ(exit_code(&r), 1);
  CHECK(strstr(r.out, "pod sandbox pod2 has no running shim") != NULL);

  shutdown_shim(want, "pod1");
  CHECK_EQ(wait_exit(pid), 0);
  close(l1);
  close(l2);
  close(l3);
}

static void test_bad_config(void) {
  char bundle[PATH_MAX], path[PATH_MAX + 32];
  run_t r;
  int log_fd;

  setup("cpus = lots\n");
  make_bundle("b1", "", bundle, sizeof(bundle), &log_fd);
  start(&r, bundle, "t1", NULL);
  CHECK_EQ(exit_code(&r), 1);
  CHECK(strstr(r.out, "shim.conf:3: cpus: 'lots'") != NULL);
  /* Nothing started, no socket made. */
  FMT(path, sizeof(path), "%s/hcsb-state", bundle);
  CHECK(access(path, F_OK) < 0);
  CHECK(access(sockdir, F_OK) < 0);
  close(log_fd);
}

static void test_command_line(void) {
  run_t r;

  setup(NULL);
  {
    const char *const args[] = {"-v", NULL};
    run(&r, tmp, NULL, 0, args);
    CHECK_EQ(exit_code(&r), 0);
    CHECK(strstr(r.out, "Version:") != NULL);
  }
  {
    const char *const args[] = {"-id", "x", "-address", "/a", "start", NULL};
    run(&r, tmp, NULL, 1, args);
    CHECK_EQ(exit_code(&r), 1);
    CHECK(strstr(r.out, "namespace cannot be empty") != NULL);
  }
  {
    const char *const args[] = {"-namespace", "n", "-frob", "start", NULL};
    run(&r, tmp, NULL, 1, args);
    CHECK_EQ(exit_code(&r), 2);
    CHECK(strstr(r.out, "flag provided but not defined: -frob") != NULL);
  }
  {
    const char *const args[] = {"-namespace", "n", "restart", NULL};
    run(&r, tmp, NULL, 1, args);
    CHECK_EQ(exit_code(&r), 2);
  }
}

/* SIGTERM ends a shim whose service has no say in it. */
static void test_sigterm(void) {
  char bundle[PATH_MAX], want[256];
  struct stat st;
  run_t r;
  pid_t pid;
  int log_fd;

  pid = start_t1(&r, bundle, sizeof(bundle), want, sizeof(want), &log_fd);
  CHECK_EQ(kill(pid, SIGTERM), 0);
  CHECK_EQ(wait_exit(pid), 0);
  CHECK(stat(want + 7, &st) < 0 && errno == ENOENT);
  close(log_fd);
}

int main(int argc, char **argv) {
  static const hcsb_test_t tests[] = {
      TEST_ENTRY_T(start_serve_shutdown, 60),
      TEST_ENTRY_T(delete_after_shutdown, 60),
      TEST_ENTRY_T(delete_after_sigkill, 60),
      TEST_ENTRY_T(delete_live_shim, 60),
      TEST_ENTRY_T(delete_when_gone, 60),
      TEST_ENTRY_T(start_twice, 60),
      TEST_ENTRY_T(pod_container_joins_sandbox, 60),
      TEST_ENTRY_T(bad_config, 60),
      TEST_ENTRY_T(command_line, 60),
      TEST_ENTRY_T(sigterm, 60),
  };
  return hcsb_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
