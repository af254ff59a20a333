/* A guest run as a child process whose stdin/stdout carry the bridge (the
 * GCS with -use-inouterr, or an emulator).  Stopping it is gentle first:
 * the bridge closes its end, the guest sees EOF and exits; only a guest
 * still running after the grace period gets SIGKILL.  The process handle
 * stays open until the child is reaped, so no zombie is left behind.
 *
 * The child leads a session and process group of its own: a terminal's
 * Ctrl-C reaches the embedding program only (which may forward it to a
 * process in the guest), not the guest itself.  The group is what the
 * transport owns: SIGKILL goes to all of it, and when the leader exits,
 * whatever it left in its group is killed at once, while that group ID
 * cannot yet have been reused. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge/sock.h"

extern char **environ;

#define STDIO_ENV "HCSB_STDIO_DIR"

struct hcsb__child_s {
  uv_process_t proc;
  uv_timer_t timer;
  int handles;
  int exited;
  int closing;
  int pid;
  hcsb__closed_cb cb;
  void *data;
  hcsb__exit_cb exit_cb;
  void *exit_data;
};

static void on_closed(uv_handle_t *h) {
  hcsb__child_t *c = h->data;
  if (--c->handles > 0) return;
  hcsb__closed_cb cb = c->cb;
  void *data = c->data;
  free(c);
  if (cb != NULL) cb(data);
}

/* The leader is not reaped yet (or was reaped just now, in on_exit_cb), so
 * its PID still names our group. */
static void kill_group(hcsb__child_t *c) {
  if (c->pid > 0) kill(-c->pid, SIGKILL);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int signo) {
  hcsb__child_t *c = p->data;
  kill_group(c);
  c->exited = 1;
  c->pid = 0;
  if (c->exit_cb != NULL) c->exit_cb(c->exit_data, status, signo);
  uv_close((uv_handle_t *)&c->proc, on_closed);
  if (c->closing) uv_close((uv_handle_t *)&c->timer, on_closed);
}

static void on_grace_over(uv_timer_t *t) {
  hcsb__child_t *c = t->data;
  if (!c->exited) kill_group(c);
}

void hcsb__child_shutdown(hcsb__child_t *c, uint32_t grace_ms,
                          hcsb__closed_cb cb, void *data) {
  if (c == NULL || c->closing) return;
  c->closing = 1;
  c->cb = cb;
  c->data = data;
  if (c->exited) {
    uv_close((uv_handle_t *)&c->timer, on_closed);
  } else if (grace_ms == 0) {
    kill_group(c);
  } else {
    uv_timer_start(&c->timer, on_grace_over, grace_ms, 0);
  }
}

int hcsb__child_pid(const hcsb__child_t *c) {
  return c->pid;
}

void hcsb__child_on_exit(hcsb__child_t *c, hcsb__exit_cb cb, void *data) {
  c->exit_cb = cb;
  c->exit_data = data;
}

/* environ without HCSB_STDIO_DIR, plus ours; `entry` is the caller's. */
static char **child_env(const char *entry) {
  size_t n = 0;
  while (environ[n] != NULL) n++;
  char **env = malloc((n + 2) * sizeof *env);
  if (env == NULL) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], STDIO_ENV "=", sizeof STDIO_ENV) != 0)
      env[k++] = environ[i];
  if (entry != NULL) env[k++] = (char *)entry;
  env[k] = NULL;
  return env;
}

int hcsb__child_spawn(uv_loop_t *loop, const char *command,
                      const char *stdio_dir, int *fd, hcsb__child_t **out) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return -errno;
  char *entry = NULL;
  if (stdio_dir != NULL && stdio_dir[0] != '\0') {
    size_t len = sizeof STDIO_ENV + strlen(stdio_dir) + 1;
    if ((entry = malloc(len)) != NULL)
      snprintf(entry, len, STDIO_ENV "=%s", stdio_dir);
  }
  char **env = child_env(entry);
  hcsb__child_t *c = calloc(1, sizeof *c);
  if (env == NULL || c == NULL ||
      (stdio_dir && stdio_dir[0] && entry == NULL)) {
    free(entry);
    free(env);
    free(c);
    close(sv[0]);
    close(sv[1]);
    return -ENOMEM;
  }

  char *args[] = {"/bin/sh", "-c", (char *)command, NULL};
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_INHERIT_FD;
  stdio[0].data.fd = sv[1];
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = sv[1];
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = STDERR_FILENO;
  uv_process_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.exit_cb = on_exit_cb;
  opts.file = args[0];
  opts.args = args;
  opts.env = env;
  opts.stdio_count = 3;
  opts.stdio = stdio;
  opts.flags = UV_PROCESS_DETACHED; /* setsid(): see the top of this file */

  int rc = uv_timer_init(loop, &c->timer);
  if (rc != 0) {
    free(entry);
    free(env);
    close(sv[0]);
    close(sv[1]);
    free(c);
    return rc;
  }
  c->timer.data = c;
  c->proc.data = c;
  c->handles = 2;
  rc = uv_spawn(loop, &c->proc, &opts); /* returns once the child exec'd */
  free(entry);
  free(env);
  close(sv[1]);
  if (rc != 0) {
    close(sv[0]);
    /* libuv wants the process handle closed even when spawning failed. */
    c->exited = 1;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->proc, on_closed);
    uv_close((uv_handle_t *)&c->timer, on_closed);
    return rc;
  }
  c->pid = c->proc.pid;
  *fd = sv[0];
  *out = c;
  return 0;
}
