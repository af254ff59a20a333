/* A stand-in for qemu-system-x86_64 and hcsb-vsockd in the utility VM's
 * tests (test/test-uvm-fake.c), so the library's state machine runs
 * under ASan and valgrind without a VM.
 *
 * As QEMU (no --ready-fd among the arguments): speaks QMP on the fd of
 * `-chardev socket,id=qmp,fd=N` (greeting, qmp_capabilities, object-add,
 * device_add, object-del, query-status, quit), writes console lines to the
 * fd of `-chardev socket,id=con,fd=M`, and "boots" the guest: it runs
 * $HCSB_LIBEXECDIR/hcsb-guest --connect <run dir>/vsock_1073741824, the
 * socket the library listens on.  When that guest program exits, the
 * "VM" powers off: a SHUTDOWN event, then exit 0.
 * As hcsb-vsockd (--ready-fd N): writes a newline to N, then waits for a
 * signal.
 *
 * FAKE_QEMU_MODE, a comma-separated list, changes what it does:
 *   exit-early     say "boom" on stderr and exit 1 at once
 *   no-greeting    never greet on QMP
 *   no-guest       do not start the guest program
 *   hang-device    never answer device_add
 *   refuse-device  answer device_add with QEMU's error
 *   no-poweroff    stay when the guest program exits; ignore quit
 *   poweroff-soon  power off after $FAKE_QEMU_POWEROFF_MS (default 300) ms
 *   vsockd-fail    as hcsb-vsockd: exit 1 without getting ready
 * FAKE_QEMU_LOG, when set, is a file that gets one line per QMP command. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

static int qmp_fd = -1, con_fd = -1;
static char run_dir[4096];
static char objects[16][32];
static int nobjects;

static int mode(const char *m) {
  const char *e = getenv("FAKE_QEMU_MODE");
  size_t n = strlen(m);
  for (const char *p = e; p != NULL && *p;) {
    if (strncmp(p, m, n) == 0 && (p[n] == ',' || p[n] == '\0')) return 1;
    p = strchr(p, ',');
    if (p != NULL) p++;
  }
  return 0;
}

static void say(int fd, const char *s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

static void console(const char *s) {
  if (con_fd >= 0) say(con_fd, s);
}

static void qmp(const char *s) {
  if (qmp_fd >= 0) say(qmp_fd, s);
}

static void logcmd(const char *line) {
  const char *p = getenv("FAKE_QEMU_LOG");
  FILE *f;
  if (p == NULL || (f = fopen(p, "a")) == NULL) return;
  fprintf(f, "%s\n", line);
  fclose(f);
}

static void reply(json_object *id, const char *value) {
  char buf[512];
  snprintf(buf, sizeof buf, "{\"return\": %s, \"id\": %s}\r\n", value,
           id != NULL ? json_object_to_json_string(id) : "null");
  qmp(buf);
}

static void error(json_object *id, const char *desc) {
  char buf[512];
  snprintf(buf, sizeof buf,
           "{\"id\": %s, \"error\": {\"class\": \"GenericError\", \"desc\": "
           "\"%s\"}}\r\n",
           id != NULL ? json_object_to_json_string(id) : "null", desc);
  qmp(buf);
}

static void shutdown_event(const char *reason) {
  char buf[256];
  snprintf(buf, sizeof buf,
           "{\"timestamp\": {\"seconds\": %ld, \"microseconds\": 0}, "
           "\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true, "
           "\"reason\": \"%s\"}}\r\n",
           (long)time(NULL), reason);
  qmp(buf);
}

static pid_t guest = -1;

static void power_off(int status) {
  console("hcsb-uvm: powering off\n");
  shutdown_event("guest-shutdown");
  if (guest > 0) kill(guest, SIGKILL);
  exit(status);
}

/* One QMP command. */
static void command(json_object *o) {
  json_object *id = NULL, *ex, *args = NULL, *v;
  const char *name;
  char line[600];

  json_object_object_get_ex(o, "id", &id);
  if (!json_object_object_get_ex(o, "execute", &ex)) return;
  name = json_object_get_string(ex);
  json_object_object_get_ex(o, "arguments", &args);
  snprintf(
      line, sizeof line, "%s %s", name,
      args ? json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN) : "");
  logcmd(line);
  if (strcmp(name, "qmp_capabilities") == 0 ||
      strcmp(name, "query-status") == 0) {
    reply(id, "{}");
  } else if (strcmp(name, "object-add") == 0) {
    const char *oid = json_object_object_get_ex(args, "id", &v)
                          ? json_object_get_string(v)
                          : "";
    for (int i = 0; i < nobjects; i++)
      if (strcmp(objects[i], oid) == 0) {
        error(id, "attempt to add duplicate property");
        return;
      }
    if (nobjects < 16) snprintf(objects[nobjects++], 32, "%s", oid);
    reply(id, "{}");
  } else if (strcmp(name, "object-del") == 0) {
    const char *oid = json_object_object_get_ex(args, "id", &v)
                          ? json_object_get_string(v)
                          : "";
    for (int i = 0; i < nobjects; i++)
      if (strcmp(objects[i], oid) == 0) objects[i][0] = '\0';
    reply(id, "{}");
  } else if (strcmp(name, "device_add") == 0) {
    if (mode("hang-device")) return;
    if (mode("refuse-device")) {
      error(id, "Bus 'rp1' does not support hotplugging");
      return;
    }
    reply(id, "{}");
  } else if (strcmp(name, "quit") == 0) {
    if (mode("no-poweroff")) return;
    reply(id, "{}");
    shutdown_event("host-qmp-quit");
    if (guest > 0) kill(guest, SIGKILL);
    exit(0);
  } else {
    error(id, "The command is not found");
  }
}

static void start_guest(void) {
  const char *dir = getenv("HCSB_LIBEXECDIR");
  char prog[4200], sock[4200];

  snprintf(prog, sizeof prog, "%s/hcsb-guest", dir ? dir : ".");
  snprintf(sock, sizeof sock, "%s/vsock_1073741824", run_dir);
  guest = fork();
  if (guest == 0) {
    /* The guest dies with its "VM". */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execl(prog, prog, "--connect", sock, (char *)NULL);
    _exit(127);
  }
  console("hcsb-uvm: init ready after 0.01 s; running: hcsb-guest\n");
}

static int as_vsockd(int argc, char **argv) {
  int fd = -1;
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], "--ready-fd") == 0) fd = atoi(argv[i + 1]);
  if (mode("vsockd-fail")) {
    fprintf(stderr, "fake vsockd: cannot listen\n");
    return 1;
  }
  say(fd, "\n");
  for (;;) pause(); /* until a signal ends it */
}

int main(int argc, char **argv) {
  json_tokener *tok;
  char buf[4096];
  long long poweroff_at = -1;
  int exited_guest = 0;

  signal(SIGPIPE, SIG_IGN);
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--ready-fd") == 0) return as_vsockd(argc, argv);
  for (int i = 1; i + 1 < argc; i++) {
    const char *a = argv[i + 1];
    if (strcmp(argv[i], "-chardev") != 0) continue;
    if (strncmp(a, "socket,id=qmp,fd=", 17) == 0) qmp_fd = atoi(a + 17);
    if (strncmp(a, "socket,id=con,fd=", 17) == 0) con_fd = atoi(a + 17);
    if (strncmp(a, "socket,id=vsk,path=", 19) == 0) {
      size_t n = 0;
      for (const char *p = a + 19; *p && n + 1 < sizeof run_dir; p++) {
        run_dir[n++] = *p;
        if (p[0] == ',' && p[1] == ',') p++;
      }
      run_dir[n] = '\0';
      char *slash = strrchr(run_dir, '/');
      if (slash != NULL) *slash = '\0';
    }
  }
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], "-initrd") == 0) {
      char line[4300];
      snprintf(line, sizeof line, "fake: initrd %s\n", argv[i + 1]);
      console(line);
    }
  if (mode("exit-early")) {
    fprintf(stderr, "qemu-system-x86_64: boom\n");
    return 1;
  }
  if (qmp_fd < 0 || con_fd < 0) {
    fprintf(stderr, "fake qemu: no QMP or console fd\n");
    return 1;
  }
  tok = json_tokener_new();
  console("fake: booting\n");
  if (!mode("no-greeting"))
    qmp("{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, "
        "\"major\": 7}, \"package\": \"fake\"}, \"capabilities\": "
        "[\"oob\"]}}\r\n");
  if (!mode("no-guest")) start_guest();
  if (mode("poweroff-soon")) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const char *ms = getenv("FAKE_QEMU_POWEROFF_MS");
    poweroff_at = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 +
                  (ms != NULL ? atoll(ms) : 300);
  }
  for (;;) {
    struct pollfd p = {qmp_fd, POLLIN, 0};
    int status;
    if (poweroff_at >= 0) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      if (ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 >= poweroff_at)
        power_off(0);
    }
    if (guest > 0 && !exited_guest &&
        waitpid(guest, &status, WNOHANG) == guest) {
      char line[128];
      exited_guest = 1;
      guest = -1;
      snprintf(
          line, sizeof line, "hcsb-uvm: guest program exited with status %d\n",
          WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
      console(line);
      if (!mode("no-poweroff")) power_off(0);
    }
    if (poll(&p, 1, 20) <= 0) continue;
    ssize_t n = read(qmp_fd, buf, sizeof buf);
    if (n <= 0) {
      /* The monitor's owner is gone: like QEMU, carry on. */
      close(qmp_fd);
      qmp_fd = -1;
      for (;;) {
        if (guest > 0 && waitpid(guest, &status, 0) == guest) {
          guest = -1;
          if (!mode("no-poweroff")) power_off(0);
        }
        pause();
      }
    }
    for (ssize_t off = 0; off < n;) {
      json_object *o = json_tokener_parse_ex(tok, buf + off, (int)(n - off));
      size_t used = json_tokener_get_parse_end(tok);
      if (o == NULL) {
        if (json_tokener_get_error(tok) != json_tokener_continue)
          json_tokener_reset(tok);
        break;
      }
      off += (ssize_t)used;
      json_tokener_reset(tok);
      command(o);
      json_object_put(o);
    }
  }
}
