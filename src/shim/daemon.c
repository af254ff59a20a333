/* The long-lived shim, `serve` (cmd.h, shim.h): started by `start` with
 * the listening socket on fd 3 and a start-up pipe on fd 4, in the bundle,
 * in a session of its own, stdio on /dev/null.  It serves until the Task
 * service calls hcsb__shim_exit() (or a signal ends it), then removes its
 * socket and exits. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim/cmd.h"
#include "shim/log.h"
#include "shim/shim.h"

/* How long exit waits for queued events to reach containerd. */
#define EVENTS_FLUSH_MS 5000
/* How long, after the service's on_exit, its handles may take to close. */
#define DRAIN_MS 5000

typedef struct daemon_s {
  hcsb__shim_t shim;
  hcsb__shim_config_t cfg;
  uv_loop_t loop;
  uv_signal_t sigterm, sigint;
  int exiting, status;
  int pending; /* server and events closes not done yet */
  char bundle[PATH_MAX];
  char socket[160]; /* "unix://..." from the bundle's address file */
  char ttrpc[PATH_MAX];
} daemon_t;

static daemon_t d;

/* Tells `start` how start-up went (once). */
static int ready_fd = HCSB__SHIM_READY_FD;

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (ready_fd < 0) return;
  if (n > 0 && write(ready_fd, msg, strlen(msg)) < 0) {
    /* start gave up on us; nothing to tell */
  }
  close(ready_fd);
  ready_fd = -1;
}

static void closed_one(void) {
  if (--d.pending == 0) uv_stop(&d.loop);
}

static void on_server_closed(hcsb__shim_server_t *srv, void *data) {
  closed_one();
}

static void on_events_closed(hcsb__shim_events_t *ev, void *data) {
  closed_one();
}

void hcsb__shim_exit(hcsb__shim_t *shim, int status) {
  if (d.exiting) return;
  d.exiting = 1;
  d.status = status;
  SHIM_INFO("shim exiting (status %d)", status);
  d.pending = 2;
  hcsb__shim_server_close(shim->server, on_server_closed, NULL);
  hcsb__shim_events_close(shim->events, EVENTS_FLUSH_MS, on_events_closed,
                          NULL);
  uv_close((uv_handle_t *)&d.sigterm, NULL);
  uv_close((uv_handle_t *)&d.sigint, NULL);
}

static void on_signal(uv_signal_t *s, int signum) {
  SHIM_INFO("signal %d", signum);
  if (d.shim.on_signal != NULL)
    d.shim.on_signal(&d.shim, signum);
  else
    hcsb__shim_exit(&d.shim, 0);
}

static void read_address(void) {
  char path[PATH_MAX + 16];
  ssize_t n;
  int fd;

  snprintf(path, sizeof(path), "%s/%s", d.bundle, HCSB__SHIM_ADDRESS_FILE);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  n = read(fd, d.socket, sizeof(d.socket) - 1);
  close(fd);
  d.socket[n > 0 ? n : 0] = '\0';
}

static void on_watchdog(uv_timer_t *t) {
  uv_stop(t->loop);
}

static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* After the loop stopped: the service frees what it holds, its handles get
 * a bounded time to close, and everything is let go. */
static void teardown(void) {
  uv_timer_t watchdog;

  if (d.shim.on_exit != NULL) d.shim.on_exit(&d.shim);
  uv_timer_init(&d.loop, &watchdog);
  uv_timer_start(&watchdog, on_watchdog, DRAIN_MS, 0);
  uv_unref((uv_handle_t *)&watchdog);
  uv_run(&d.loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&watchdog, NULL);
  uv_run(&d.loop, UV_RUN_NOWAIT);
  if (uv_loop_close(&d.loop) == UV_EBUSY) {
    SHIM_WARN("handles still open at exit; closing them");
    uv_walk(&d.loop, walk_close, NULL);
    uv_run(&d.loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&d.loop) == UV_EBUSY)
      SHIM_WARN("handles still active at exit");
  }
  if (strncmp(d.socket, "unix://", 7) == 0 && unlink(d.socket + 7) == 0)
    SHIM_DEBUG("removed %s", d.socket + 7);
  hcsb__shim_state_close(d.shim.state);
  hcsb__shim_config_free(&d.cfg);
}

int hcsb__shim_cmd_serve(const hcsb__shim_args_t *a) {
  const char *ttrpc = getenv("TTRPC_ADDRESS");
  char err[512];
  int r;

  signal(SIGPIPE, SIG_IGN);
  memset(&d, 0, sizeof(d));
  r = hcsb__shim_bundle(a, d.bundle, sizeof(d.bundle));
  if (r < 0) {
    report("error: the bundle directory: %s\n", strerror(-r));
    return 1;
  }
  hcsb__shim_open_log_fifo(d.bundle, a->id, a->ns);
  r = hcsb__shim_config_load(&d.cfg, err, sizeof(err));
  if (r < 0) {
    report("error: configuration: %s\n", err[0] ? err : strerror(-r));
    hcsb__shim_config_free(&d.cfg);
    hcsb__shim_log_close();
    return 1;
  }
  hcsb__shim_log_set_level(a->debug ? HCSB_LOG_DEBUG : d.cfg.log_level);
  read_address();
  snprintf(d.ttrpc, sizeof(d.ttrpc), "%s", ttrpc != NULL ? ttrpc : "");

  d.shim.loop = &d.loop;
  d.shim.config = &d.cfg;
  d.shim.ns = a->ns;
  d.shim.id = a->id;
  d.shim.bundle = d.bundle;
  d.shim.address = a->address;
  d.shim.ttrpc_address = d.ttrpc;
  d.shim.publish_binary = a->publish_binary;
  d.shim.socket = d.socket;
  d.shim.debug = a->debug;

  r = uv_loop_init(&d.loop);
  if (r == 0) r = hcsb__shim_server_new(&d.loop, NULL, &d.shim.server);
  if (r == 0) {
    r = hcsb__shim_server_listen_fd(d.shim.server, HCSB__SHIM_LISTEN_FD);
    if (r < 0) {
      report("error: serving the socket: %s\n", uv_strerror(r));
      return 1; /* the loop is not closed: we exit now anyway */
    }
  }
  if (r == 0)
    r = hcsb__shim_events_new(&d.loop, d.ttrpc, a->ns, NULL, &d.shim.events);
  if (r == 0) r = hcsb__shim_state_open(d.bundle, &d.shim.state);
  if (r == 0) r = uv_signal_init(&d.loop, &d.sigterm);
  if (r == 0) r = uv_signal_init(&d.loop, &d.sigint);
  if (r < 0) {
    report("error: setting up: %s\n", strerror(-r));
    return 1;
  }
  uv_signal_start(&d.sigterm, on_signal, SIGTERM);
  uv_signal_start(&d.sigint, on_signal, SIGINT);
  r = hcsb__shim_service_start(&d.shim);
  if (r < 0) {
    report("error: the task service did not start: %s\n", strerror(-r));
    return 1;
  }
  SHIM_INFO("shim %d serving %s (config %s)", (int)getpid(), d.socket,
            d.cfg.path != NULL ? d.cfg.path : "defaults");
  report("ok\n");
  uv_run(&d.loop, UV_RUN_DEFAULT);
  teardown();
  SHIM_INFO("shim exits (status %d)", d.status);
  hcsb__shim_log_close();
  return d.status;
}
