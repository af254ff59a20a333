/* hcsb-guest: command line, transport set-up and the loop.  See --help. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "guest/act.h"
#include "guest/guest.h"

static const char usage_text[] =
    "Usage: hcsb-guest [OPTIONS]\n"
    "\n"
    "Speaks the bridge like the Linux GCS (hcsshim v0.11.8).  On a host it\n"
    "emulates the guest: it runs the requested processes on this machine\n"
    "and records storage and containers instead of making them.  Inside a\n"
    "utility VM (--vsock) it acts like the GCS: it mounts VPMem layers\n"
    "(with dm-linear and dm-verity), builds overlays and runs containers\n"
    "with runc.  Without --listen, --connect or --vsock the bridge is\n"
    "spoken on stdin and stdout (like `gcs -use-inouterr`); logs always go\n"
    "to stderr.\n"
    "\n"
    "Options:\n"
    "  --stdio-dir DIR     where stdio relays are dialed: <DIR>/<port>.sock\n"
    "                      (default: $HCSB_STDIO_DIR, else the directory of\n"
    "                      the --listen/--connect socket, else the current\n"
    "                      directory)\n"
    "  --listen PATH       accept one bridge connection on a Unix socket\n"
    "  --connect PATH      dial the host's Unix socket (10 tries, 100 ms "
    "apart)\n"
    "  --vsock             inside a utility VM, like the real GCS: dial the\n"
    "                      bridge on vsock CID 2 port 0x40000000 (retried for\n"
    "                      up to 2 minutes while the host refuses) and every\n"
    "                      stdio relay on CID 2 and the port the host chose\n"
    "  --vsock-cid N       the host's CID for --vsock (default 2)\n"
    "  --vsock-port N      the bridge port for --vsock (default 0x40000000)\n"
    "  --emulate           with --vsock: emulate as on a host (record, do not\n"
    "                      mount or run runc)\n"
    "  --allow-uvm-signal  let SignalProcess/ResizeConsole reach UVM "
    "processes,\n"
    "                      and size their pty from ConsoleSize (the real "
    "guest\n"
    "                      answers 0xC037010E and leaves the pty 0x0)\n"
    "  --max-frame N       largest request accepted, in bytes (default 16 "
    "MiB);\n"
    "                      larger ones are answered with E_FAIL and skipped\n"
    "  --fail-request N    answer the Nth request after NegotiateProtocol\n"
    "                      (1 = the first) with E_FAIL without acting on it;\n"
    "                      repeatable (fault injection for host tests)\n"
    "  -v, --verbose       log every request and process event\n"
    "  -h, --help          show this text\n"
    "\n"
    "Without --vsock, stdio relays dial Unix sockets (see --stdio-dir).\n"
    "The host listens and the guest dials, for the bridge (unless --listen)\n"
    "and for every stdio stream.  Everything started is killed and reaped\n"
    "when the bridge closes.  Exit status: 0 after a clean close or a UVM\n"
    "shutdown request, 1 after a transport or framing error, 2 on bad usage.\n";

static hcsb__guest_t guest;

void hcsb__glog(hcsb__guest_t *g, int verbose_only, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  int n, i;

  if (verbose_only && !g->verbose) return;
  n = snprintf(line, sizeof line, "hcsb-guest[%d]: ", (int)getpid());
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  /* One line per event, whatever the text contained. */
  for (i = n; line[i] != '\0'; i++)
    if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
  line[i++] = '\n';
  if (write(STDERR_FILENO, line, (size_t)i) < 0) {
    /* nowhere left to report it */
  }
}

static void on_signal(uv_signal_t *h, int sig) {
  hcsb__guest_t *g = h->data;
  hcsb__glog(g, 0, "signal %d: stopping", sig);
  hcsb__guest_teardown(g, 0, "terminated by a signal");
}

static int start_signal(hcsb__guest_t *g, uv_signal_t *h, int sig) {
  int r = uv_signal_init(g->loop, h);
  if (r < 0) return r;
  h->data = g;
  return uv_signal_start(h, on_signal, sig);
}

/* Nothing runs yet, so blocking here is harmless. */
static int accept_one(const char *path) {
  struct sockaddr_un sa;
  struct stat st;
  int lfd, fd, err;

  if ((err = hcsb__gunix_addr(path, &sa)) < 0) return err;
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path);
  lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) return -errno;
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 1) < 0) {
    err = -errno;
    close(lfd);
    return err;
  }
  do fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  err = fd < 0 ? -errno : fd;
  close(lfd);
  unlink(path);
  return err;
}

static int dial_bridge(const char *path) {
  struct timespec pause = {0, 100 * 1000 * 1000};
  struct sockaddr_un sa;
  int fd, err = 0, i;

  if ((err = hcsb__gunix_addr(path, &sa)) < 0) return err;
  for (i = 0; i < HCSB__G_DIAL_TRIES; i++) {
    if (i > 0) nanosleep(&pause, NULL);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
    err = -errno;
    close(fd);
    if (err != -ENOENT && err != -ECONNREFUSED && err != -EAGAIN) break;
  }
  return err;
}

static int open_stream(hcsb__guest_t *g, uv_pipe_t *p, int fd) {
  int r = uv_pipe_init(g->loop, p, 0);
  if (r == 0) r = uv_pipe_open(p, fd);
  return r;
}

static int set_stdio_dir(hcsb__guest_t *g, const char *opt,
                         const char *sock_path) {
  const char *env = getenv("HCSB_STDIO_DIR");
  char cwd[PATH_MAX];
  const char *slash;
  int n;

  if (opt != NULL) {
    n = snprintf(g->stdio_dir, sizeof g->stdio_dir, "%s", opt);
  } else if (env != NULL && env[0] != '\0') {
    n = snprintf(g->stdio_dir, sizeof g->stdio_dir, "%s", env);
  } else if (sock_path != NULL && (slash = strrchr(sock_path, '/')) != NULL) {
    n = snprintf(g->stdio_dir, sizeof g->stdio_dir, "%.*s",
                 (int)(slash == sock_path ? 1 : slash - sock_path), sock_path);
  } else {
    if (getcwd(cwd, sizeof cwd) == NULL) return -errno;
    n = snprintf(g->stdio_dir, sizeof g->stdio_dir, "%s", cwd);
  }
  return n < 0 || (size_t)n >= sizeof g->stdio_dir ? -ENAMETOOLONG : 0;
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

int main(int argc, char **argv) {
  hcsb__guest_t *g = &guest;
  const char *stdio_opt = NULL, *listen_path = NULL, *connect_path = NULL;
  int vsock_opt = 0, emulate = 0;
  unsigned long long max_frame = HCSB_DEFAULT_MAX_FRAME;
  uint32_t vsock_port = HCSB__G_VSOCK_BRIDGE_PORT;
  uv_loop_t loop;
  char *end;
  int i, r, fd;

  g->vsock_cid = HCSB__G_VSOCK_HOST_CID;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has_val = i + 1 < argc;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(usage_text, stdout);
      return 0;
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
      g->verbose = 1;
    } else if (strcmp(a, "--allow-uvm-signal") == 0) {
      g->allow_uvm_signal = 1;
    } else if (strcmp(a, "--stdio-dir") == 0 && has_val) {
      stdio_opt = argv[++i];
    } else if (strcmp(a, "--listen") == 0 && has_val) {
      listen_path = argv[++i];
    } else if (strcmp(a, "--connect") == 0 && has_val) {
      connect_path = argv[++i];
    } else if (strcmp(a, "--fail-request") == 0 && has_val) {
      unsigned long long n;
      errno = 0;
      n = strtoull(argv[++i], &end, 10);
      if (errno != 0 || *end != '\0' || n == 0 || n > UINT32_MAX ||
          g->nfail_at == HCSB__G_MAX_FAIL_AT) {
        fprintf(stderr,
                "hcsb-guest: --fail-request wants 1..%" PRIu32
                ", at most %u times\n",
                UINT32_MAX, HCSB__G_MAX_FAIL_AT);
        return 2;
      }
      g->fail_at[g->nfail_at++] = (uint32_t)n;
    } else if (strcmp(a, "--vsock") == 0) {
      g->vsock = 1;
    } else if (strcmp(a, "--emulate") == 0) {
      emulate = 1;
    } else if ((strcmp(a, "--vsock-cid") == 0 ||
                strcmp(a, "--vsock-port") == 0) &&
               has_val) {
      uint32_t *dst =
          strcmp(a, "--vsock-cid") == 0 ? &g->vsock_cid : &vsock_port;
      if (hcsb__gvsock_parse_u32(argv[++i], dst) < 0) {
        fprintf(stderr, "hcsb-guest: %s wants a number, not '%s'\n", a,
                argv[i]);
        return 2;
      }
      vsock_opt = 1;
    } else if (strcmp(a, "--max-frame") == 0 && has_val) {
      errno = 0;
      max_frame = strtoull(argv[++i], &end, 10);
      if (errno != 0 || *end != '\0' || max_frame < 64 ||
          max_frame > UINT32_MAX) {
        fprintf(stderr, "hcsb-guest: --max-frame wants 64..%" PRIu32 "\n",
                UINT32_MAX);
        return 2;
      }
    } else {
      fprintf(stderr, "hcsb-guest: unknown or incomplete option '%s'\n%s", a,
              usage_text);
      return 2;
    }
  }
  if ((listen_path != NULL) + (connect_path != NULL) + g->vsock > 1) {
    fprintf(stderr,
            "hcsb-guest: --listen, --connect and --vsock exclude each other\n");
    return 2;
  }
  if (vsock_opt && !g->vsock) {
    fprintf(stderr, "hcsb-guest: --vsock-cid and --vsock-port need --vsock\n");
    return 2;
  }
  if (set_stdio_dir(g, stdio_opt,
                    listen_path != NULL ? listen_path : connect_path) < 0) {
    fprintf(stderr, "hcsb-guest: stdio directory path too long\n");
    return 2;
  }
  if (listen_path == NULL && connect_path == NULL && !g->vsock &&
      isatty(STDIN_FILENO)) {
    fprintf(stderr,
            "hcsb-guest: the bridge protocol is spoken on stdin and "
            "stdout, which is a terminal here; see --help\n");
    return 2;
  }

  /* First, while nothing is allocated: see watchdog.c. */
  if (hcsb__gwatch_start() < 0)
    fprintf(stderr,
            "hcsb-guest: no watchdog: processes would outlive a "
            "killed emulator\n");

  /* A vanished relay or host must not kill us: writes report EPIPE. */
  signal(SIGPIPE, SIG_IGN);

  fd = -1;
  if (listen_path != NULL) {
    fd = accept_one(listen_path);
    if (fd < 0) {
      fprintf(stderr, "hcsb-guest: --listen %s: %s\n", listen_path,
              strerror(-fd));
      return 1;
    }
  } else if (connect_path != NULL) {
    fd = dial_bridge(connect_path);
    if (fd < 0) {
      fprintf(stderr, "hcsb-guest: --connect %s: %s\n", connect_path,
              strerror(-fd));
      return 1;
    }
  } else if (g->vsock) {
    hcsb__glog(g, 1, "dialling the bridge: vsock %" PRIu32 ":%" PRIu32,
               g->vsock_cid, vsock_port);
    fd = hcsb__gvsock_dial_bridge(g->vsock_cid, vsock_port,
                                  HCSB__G_VSOCK_DIAL_MS);
    if (fd < 0) {
      fprintf(stderr, "hcsb-guest: --vsock %" PRIu32 ":%" PRIu32 ": %s\n",
              g->vsock_cid, vsock_port, strerror(-fd));
      return 1;
    }
  }

  r = uv_loop_init(&loop);
  if (r < 0) {
    fprintf(stderr, "hcsb-guest: %s\n", uv_strerror(r));
    return 1;
  }
  g->loop = &loop;
  g->max_frame = (uint32_t)max_frame;
  g->start_ms = uv_now(&loop);
  TAILQ_INIT(&g->procs);
  TAILQ_INIT(&g->ctrs);
  TAILQ_INIT(&g->execs);
  TAILQ_INIT(&g->resources);
  hcsb__decoder_init(&g->dec, g->max_frame);

  r = hcsb__gproc_init(g);
  /* Inside a VM the guest acts (act.h); on a host it only ever emulates. */
  if (r == 0 && g->vsock && !emulate) r = hcsb__ga_init(g);
  if (r == 0) r = start_signal(g, &g->sigterm, SIGTERM);
  if (r == 0) r = start_signal(g, &g->sigint, SIGINT);
  if (r == 0) r = start_signal(g, &g->sighup, SIGHUP);
  if (r == 0) {
    if (fd >= 0) {
      r = open_stream(g, &g->in_pipe, fd);
      g->in = g->out = (uv_stream_t *)&g->in_pipe;
    } else {
      r = open_stream(g, &g->in_pipe, STDIN_FILENO);
      if (r == 0) r = open_stream(g, &g->out_pipe, STDOUT_FILENO);
      g->in = (uv_stream_t *)&g->in_pipe;
      g->out = (uv_stream_t *)&g->out_pipe;
    }
  }
  if (r < 0) {
    hcsb__glog(g, 0, "cannot start: %s", uv_strerror(r));
    g->exit_code = 1;
    uv_walk(&loop, close_walk, NULL);
  } else {
    if (g->vsock)
      hcsb__glog(g, 1, "bridge up; stdio relays dial vsock %" PRIu32 ":<port>",
                 g->vsock_cid);
    else
      hcsb__glog(g, 1, "bridge up; stdio relays dial %s/<port>.sock",
                 g->stdio_dir);
    hcsb__gconn_start(g);
  }

  uv_run(&loop, UV_RUN_DEFAULT);

  /* The loop ran dry: every handle is closed.  Collect every child. */
  hcsb__gproc_final_reap(g, 5000);
  /* What the session made in the VM goes too: a respawned guest starts
   * clean. */
  if (g->act != NULL) hcsb__ga_final(g);
  hcsb__gwatch_clean();
  hcsb__gctr_teardown(g);
  hcsb__gmodify_teardown(g);
  hcsb__decoder_free(&g->dec);
  uv_walk(&loop, close_walk, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) hcsb__glog(g, 0, "handles left open at exit");
  return g->exit_code;
}
