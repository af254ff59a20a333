/* containerd's `start` (cmd.h).
 *
 * containerd runs it with the bundle as working directory and collects
 * its stdout and stderr together (CombinedOutput) as the address: so on
 * success exactly "unix://PATH" is printed and nothing else, and every
 * process that outlives this one must not hold those pipes, or containerd
 * waits for it forever.  Logs go to the bundle's log FIFO (containerd
 * reads it from before `start`); stderr only gets the final error.
 *
 * The long-lived shim is this binary again, `serve`, started with fork and
 * exec (a libuv program daemonises by starting afresh rather than forking
 * a loop): in a new session, stdio on /dev/null, the listening socket as
 * fd 3 and a pipe as fd 4 on which it says "ok" once it serves, so a
 * configuration error is `start`'s error and not a silent daemon death. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shim/cmd.h"
#include "shim/conf.h"
#include "shim/log.h"
#include "shim/readfile.h"
#include "shim/state.h"

/* How long `serve` may take to say it is ready (valgrind included). */
#define READY_TIMEOUT_MS 60000
#define SPEC_MAX (16u << 20)
#define OPTIONS_MAX (1u << 20)

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
  char msg[1024];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  SHIM_ERROR("start: %s", msg);
  fprintf(stderr, "containerd-shim-hcsb-v1: %s\n", msg);
  return 1;
}

int hcsb__shim_bundle(const hcsb__shim_args_t *a, char *out, size_t outlen) {
  char cwd[PATH_MAX];

  if (a->bundle != NULL && a->bundle[0] == '/') {
    if (strlen(a->bundle) >= outlen) return -ENAMETOOLONG;
    strcpy(out, a->bundle);
    return 0;
  }
  if (getcwd(cwd, sizeof(cwd)) == NULL) return -errno;
  if (a->bundle == NULL || a->bundle[0] == '\0') {
    if (strlen(cwd) >= outlen) return -ENAMETOOLONG;
    strcpy(out, cwd);
    return 0;
  }
  if ((size_t)snprintf(out, outlen, "%s/%s", cwd, a->bundle) >= outlen)
    return -ENAMETOOLONG;
  return 0;
}

/* The CRI annotations of the bundle's config.json (copied into type and
 * sbid, "" when absent).  0, or -errno / -EINVAL for a file that is there
 * but unreadable. */
static int read_annotations(const char *bundle, char *type, size_t tlen,
                            char *sbid, size_t slen) {
  char path[PATH_MAX + 16];
  json_object *root, *ann, *v;
  json_tokener *tok;
  char *text;
  size_t n;
  int r;

  type[0] = sbid[0] = '\0';
  snprintf(path, sizeof(path), "%s/config.json", bundle);
  r = hcsb__shim_read_file(path, SPEC_MAX, &text, &n);
  if (r == -ENOENT) return 0;
  if (r < 0) return r;
  tok = json_tokener_new();
  if (tok == NULL) {
    free(text);
    return -ENOMEM;
  }
  root = json_tokener_parse_ex(tok, text, (int)n);
  json_tokener_free(tok);
  free(text);
  if (root == NULL || !json_object_is_type(root, json_type_object)) {
    json_object_put(root);
    return -EINVAL;
  }
  if (json_object_object_get_ex(root, "annotations", &ann) &&
      json_object_is_type(ann, json_type_object)) {
    if (json_object_object_get_ex(ann, HCSB__CRI_CONTAINER_TYPE, &v) &&
        json_object_is_type(v, json_type_string))
      snprintf(type, tlen, "%s", json_object_get_string(v));
    if (json_object_object_get_ex(ann, HCSB__CRI_SANDBOX_ID, &v) &&
        json_object_is_type(v, json_type_string))
      snprintf(sbid, slen, "%s", json_object_get_string(v));
  }
  json_object_put(root);
  return 0;
}

static int mkdirs(const char *dir, mode_t mode) {
  char p[PATH_MAX];
  size_t i;

  if (strlen(dir) >= sizeof(p)) return -ENAMETOOLONG;
  strcpy(p, dir);
  for (i = 1; p[i] != '\0'; i++) {
    if (p[i] != '/') continue;
    p[i] = '\0';
    if (mkdir(p, mode) < 0 && errno != EEXIST) return -errno;
    p[i] = '/';
  }
  if (mkdir(p, mode) < 0 && errno != EEXIST) return -errno;
  return 0;
}

static void set_sun(struct sockaddr_un *sa, const char *path) {
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  strcpy(sa->sun_path, path); /* checked by hcsb__shim_socket_path */
}

/* 1 when something accepts connections on `path`. */
static int can_connect(const char *path) {
  struct sockaddr_un sa;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

  if (fd < 0) return 0;
  set_sun(&sa, path);
  ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
  close(fd);
  return ok;
}

/* A listening socket at `path`: a fresh fd, or -EADDRINUSE when a live
 * shim serves there already; a stale file is replaced. */
static int make_socket(const char *path) {
  struct sockaddr_un sa;
  int fd, r;

  set_sun(&sa, path);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
  if (r < 0 && errno == EADDRINUSE) {
    if (can_connect(path)) {
      close(fd);
      return -EADDRINUSE;
    }
    unlink(path);
    r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
  }
  if (r == 0 && chmod(path, 0600) < 0) r = -1;
  if (r == 0) r = listen(fd, 128);
  if (r < 0) {
    r = -errno;
    close(fd);
    return r;
  }
  return fd;
}

static int write_address(const char *bundle, const char *address) {
  char path[PATH_MAX], tmp[PATH_MAX];
  size_t len = strlen(address);
  int fd, r = 0;

  snprintf(path, sizeof(path), "%s/%s", bundle, HCSB__SHIM_ADDRESS_FILE);
  snprintf(tmp, sizeof(tmp), "%s/.%s", bundle, HCSB__SHIM_ADDRESS_FILE);
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  if (write(fd, address, len) != (ssize_t)len) r = -EIO;
  if (close(fd) < 0 && r == 0) r = -errno;
  if (r == 0 && rename(tmp, path) < 0) r = -errno;
  if (r < 0) unlink(tmp);
  return r;
}

/* containerd takes the whole of `start`'s stdout as the address.  0, or 1
 * when it could not be written. */
static int print_address(const char *address) {
  fputs(address, stdout);
  return fflush(stdout) == 0 ? 0 : 1;
}

/* The answer when a shim serves the socket already (a pod member joining
 * its sandbox's shim, a second start of one task): its address, in the
 * bundle and on stdout.  0, or 1 after saying why. */
static int answer_served(const char *bundle, const char *address) {
  int r = write_address(bundle, address);

  if (r < 0) return fail("%s/address: %s", bundle, strerror(-r));
  return print_address(address);
}

/* The runtime options containerd writes to stdin (a packed Any; nothing
 * from plain ctr).  None is used yet; read them so containerd's write
 * never meets a closed pipe. */
static void drain_options(void) {
  struct stat st;
  char buf[4096];
  size_t total = 0;

  if (fstat(STDIN_FILENO, &st) < 0 ||
      (!S_ISFIFO(st.st_mode) && !S_ISREG(st.st_mode)))
    return;
  while (total < OPTIONS_MAX) {
    struct pollfd p = {STDIN_FILENO, POLLIN, 0};
    ssize_t n;
    if (poll(&p, 1, 1000) <= 0) break;
    n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    total += (size_t)n;
  }
  if (total > 0)
    SHIM_DEBUG("start: %zu bytes of runtime options ignored", total);
}

static void close_from(int lowest) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, (unsigned)lowest, ~0u, 0u) == 0) return;
#endif
  for (int fd = lowest; fd < 65536; fd++) close(fd);
}

/* Forks and execs `serve`; returns its pid or -errno. */
static pid_t spawn_serve(int lfd, int ready_w, int argc, char **argv) {
  char exe[PATH_MAX];
  char **nargv;
  ssize_t n;
  pid_t pid;
  int i;

  /* The real path: /proc/self/exe itself would name valgrind's tool when
   * running under it, and a libtool wrapper would be a shell script. */
  n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n < 0) return -errno;
  exe[n] = '\0';
  nargv = calloc((size_t)argc + 1, sizeof(*nargv));
  if (nargv == NULL) return -ENOMEM;
  nargv[0] = exe;
  for (i = 1; i < argc - 1; i++) nargv[i] = argv[i];
  nargv[argc - 1] = "serve"; /* the action is argv's last word */
  pid = fork();
  if (pid < 0) {
    free(nargv);
    return -errno;
  }
  if (pid == 0) {
    int l = fcntl(lfd, F_DUPFD, 10), w = fcntl(ready_w, F_DUPFD, 10);
    int null = open("/dev/null", O_RDWR);
    if (l < 0 || w < 0 || null < 0 || setsid() < 0 ||
        dup2(l, HCSB__SHIM_LISTEN_FD) < 0 || dup2(w, HCSB__SHIM_READY_FD) < 0 ||
        dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
      _exit(126);
    close_from(HCSB__SHIM_READY_FD + 1);
    execv(exe, nargv);
    dprintf(HCSB__SHIM_READY_FD, "error: exec %s: %s\n", exe, strerror(errno));
    _exit(127);
  }
  free(nargv);
  return pid;
}

/* Waits for serve's word.  0, or 1 after printing why not. */
static int wait_ready(int fd, pid_t pid) {
  char buf[1024];
  size_t got = 0;
  int status;

  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, READY_TIMEOUT_MS);
    ssize_t n;

    if (r < 0 && errno == EINTR) continue;
    if (r == 0)
      return fail("the shim daemon did not report ready within %d s",
                  READY_TIMEOUT_MS / 1000);
    n = read(fd, buf + got, sizeof(buf) - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
    if (got == sizeof(buf) - 1 || memchr(buf, '\n', got) != NULL) break;
  }
  buf[got] = '\0';
  if (strncmp(buf, "ok\n", 3) == 0) return 0;
  if (strncmp(buf, "error: ", 7) == 0) {
    buf[strcspn(buf, "\n")] = '\0';
    return fail("%s", buf + 7);
  }
  if (waitpid(pid, &status, WNOHANG) == pid) {
    if (WIFSIGNALED(status))
      return fail("the shim daemon died of signal %d during start-up",
                  WTERMSIG(status));
    return fail("the shim daemon exited with %d during start-up",
                WEXITSTATUS(status));
  }
  return fail("the shim daemon closed its start-up pipe");
}

void hcsb__shim_open_log_fifo(const char *bundle, const char *id,
                              const char *ns) {
  char path[PATH_MAX];
  struct stat st;
  int fd = -1;

  snprintf(path, sizeof(path), "%s/log", bundle);
  if (stat(path, &st) == 0) {
    if (S_ISFIFO(st.st_mode))
      /* Read-write: opening never blocks, and writing never fails for
       * want of a reader; non-blocking: a full pipe drops lines rather
       * than stalling the shim. */
      fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    else if (S_ISREG(st.st_mode))
      fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
  }
  if (fd < 0) fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  hcsb__shim_log_open(fd, id, ns);
}

int hcsb__shim_cmd_start(const hcsb__shim_args_t *a, int argc, char **argv) {
  hcsb__shim_config_t cfg;
  hcsb__shim_state_t *st = NULL;
  char bundle[PATH_MAX], sock[128], address[160], err[512];
  char type[64], sbid[256];
  const char *group;
  int fd, ready[2], r, rc = 1;
  pid_t pid;

  if (a->ns[0] == '\0') return fail("shim namespace cannot be empty");
  if (a->id[0] == '\0') return fail("-id is required");
  if (a->address[0] == '\0') return fail("-address is required");
  r = hcsb__shim_bundle(a, bundle, sizeof(bundle));
  if (r < 0) return fail("the bundle directory: %s", strerror(-r));
  hcsb__shim_open_log_fifo(bundle, a->id, a->ns);
  if (a->debug) hcsb__shim_log_set_level(HCSB_LOG_DEBUG);
  r = hcsb__shim_config_load(&cfg, err, sizeof(err));
  if (r < 0) {
    hcsb__shim_config_free(&cfg);
    return fail("configuration: %s", err[0] ? err : strerror(-r));
  }
  r = read_annotations(bundle, type, sizeof(type), sbid, sizeof(sbid));
  if (r < 0) {
    fail("%s/config.json: %s", bundle,
         r == -EINVAL ? "not a JSON object" : strerror(-r));
    goto out;
  }
  /* A pod's containers share its sandbox's shim (socket named after the
   * sandbox); a task outside a pod has its own. */
  group = sbid[0] != '\0' ? sbid : a->id;
  r = hcsb__shim_socket_path(cfg.socket_dir, a->address, a->ns, group, sock,
                             sizeof(sock));
  if (r < 0) {
    fail("socket path under %s: %s", cfg.socket_dir, strerror(-r));
    goto out;
  }
  snprintf(address, sizeof(address), "unix://%s", sock);

  if (strcmp(type, "container") == 0 && strcmp(group, a->id) != 0) {
    if (!can_connect(sock)) {
      fail("pod sandbox %s has no running shim (nothing serves %s)", group,
           sock);
      goto out;
    }
    SHIM_INFO("start: container %s joins the shim of pod %s", a->id, group);
    rc = answer_served(bundle, address);
    goto out;
  }

  r = mkdirs(cfg.socket_dir, 0711);
  if (r < 0) {
    fail("%s: %s", cfg.socket_dir, strerror(-r));
    goto out;
  }
  fd = make_socket(sock);
  if (fd == -EADDRINUSE) {
    /* Already served (a second start of the same task, as runc's shim
     * allows): hand back the same address. */
    SHIM_INFO("start: a shim serves %s already", sock);
    rc = answer_served(bundle, address);
    goto out;
  }
  if (fd < 0) {
    fail("socket %s: %s", sock, strerror(-fd));
    goto out;
  }
  /* Written down before anything can outlive us: delete undoes it. */
  r = hcsb__shim_state_open(bundle, &st);
  if (r == 0) r = hcsb__shim_state_add_path(st, "socket", sock);
  if (r == 0) r = write_address(bundle, address);
  if (r < 0) {
    fail("bundle %s: %s", bundle, strerror(-r));
    close(fd);
    unlink(sock);
    goto out;
  }
  drain_options();
  if (pipe2(ready, O_CLOEXEC) < 0) {
    fail("pipe: %s", strerror(errno));
    close(fd);
    unlink(sock);
    goto out;
  }
  pid = spawn_serve(fd, ready[1], argc, argv);
  close(fd);
  close(ready[1]);
  if (pid < 0) {
    fail("starting the shim daemon: %s", strerror((int)-pid));
    close(ready[0]);
    unlink(sock);
    goto out;
  }
  r = hcsb__shim_state_set_shim(st, pid);
  if (r < 0) SHIM_WARN("start: recording the shim's pid: %s", strerror(-r));
  if (wait_ready(ready[0], pid) != 0) {
    close(ready[0]);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    unlink(sock);
    goto out;
  }
  close(ready[0]);
  SHIM_INFO("start: shim %d serves %s", (int)pid, address);
  rc = print_address(address);
out:
  hcsb__shim_state_close(st);
  hcsb__shim_config_free(&cfg);
  hcsb__shim_log_close();
  return rc;
}
