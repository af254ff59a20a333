/* The default image, built on first use (image.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim/image.h"
#include "shim/log.h"

/* The build, in sh: wait for the lock, look again (another shim may have
 * built it meanwhile), build into DIR.tmp.PID, swap it in.  $1 DIR, $2
 * the builder.  The lock file stays (it is empty). */
static const char script[] =
    "set -e\n"
    "exec 2>&1\n"
    "dir=$1 mkuvm=$2\n"
    "mkdir -p \"$(dirname \"$dir\")\"\n"
    "exec 9>>\"$dir.lock\"\n"
    "flock 9\n"
    "[ -r \"$dir/vmlinuz\" ] && [ -r \"$dir/initrd.img\" ] && exit 0\n"
    "tmp=$dir.tmp.$$\n"
    "rm -rf \"$tmp\"\n"
    "trap 'rm -rf \"$tmp\"' EXIT\n"
    "\"$mkuvm\" -q -o \"$tmp\"\n"
    "[ -r \"$tmp/vmlinuz\" ] && [ -r \"$tmp/initrd.img\" ]\n"
    "rm -rf \"$dir\"\n"
    "mv \"$tmp\" \"$dir\"\n";

/* The last lines of the builder's output, for the log. */
#define TAIL_MAX 2048

typedef struct job_s {
  uv_process_t proc;
  uv_pipe_t out;
  uv_timer_t later; /* for an answer known at once */
  int status;
  int handles; /* open libuv handles */
  hcsb__shim_image_cb cb;
  void *data;
  char tail[TAIL_MAX];
  size_t tail_len;
  char buf[4096];
} job_t;

static void on_closed(uv_handle_t *h) {
  job_t *j = h->data;

  if (--j->handles > 0) return;
  j->cb(j->data, j->status);
  free(j);
}

static void on_later(uv_timer_t *t) {
  uv_close((uv_handle_t *)t, on_closed);
}

/* Answers `status` on the next loop turn. */
static int answer_later(uv_loop_t *loop, job_t *j, int status) {
  j->status = status;
  uv_timer_init(loop, &j->later);
  j->later.data = j;
  j->handles = 1;
  uv_timer_start(&j->later, on_later, 0, 0);
  return 0;
}

static void keep_tail(job_t *j, const char *p, size_t n) {
  if (n >= TAIL_MAX) {
    p += n - (TAIL_MAX - 1);
    n = TAIL_MAX - 1;
  }
  if (j->tail_len + n >= TAIL_MAX) {
    size_t drop = j->tail_len + n - (TAIL_MAX - 1);
    memmove(j->tail, j->tail + drop, j->tail_len - drop);
    j->tail_len -= drop;
  }
  memcpy(j->tail + j->tail_len, p, n);
  j->tail_len += n;
  j->tail[j->tail_len] = '\0';
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  job_t *j = h->data;

  (void)hint;
  *buf = uv_buf_init(j->buf, sizeof(j->buf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  job_t *j = s->data;

  if (n > 0) keep_tail(j, buf->base, (size_t)n);
  if (n < 0) uv_read_stop(s);
}

static void on_exit_cb(uv_process_t *p, int64_t code, int sig) {
  job_t *j = p->data;

  if (code == 0 && sig == 0) {
    SHIM_INFO("image: ready (built now, or by another shim meanwhile)");
    j->status = 0;
  } else {
    SHIM_ERROR("image: the build failed (exit %d, signal %d): %s", (int)code,
               sig, j->tail);
    j->status = -ECHILD;
  }
  uv_close((uv_handle_t *)p, on_closed);
  uv_close((uv_handle_t *)&j->out, on_closed);
}

int hcsb__shim_image_ensure(uv_loop_t *loop, const hcsb__shim_config_t *cfg,
                            hcsb__shim_image_cb cb, void *data) {
  uv_process_options_t o;
  uv_stdio_container_t stdio[2]; /* stderr joins stdout in the script */
  char *args[7];
  job_t *j;
  int r;

  j = calloc(1, sizeof(*j));
  if (j == NULL) return -ENOMEM;
  j->cb = cb;
  j->data = data;
  if (access(cfg->kernel, R_OK) == 0 && access(cfg->initrd, R_OK) == 0)
    return answer_later(loop, j, 0);
  if (!cfg->kernel_default || !cfg->initrd_default) {
    SHIM_ERROR("image: %s or %s is missing (set in %s)", cfg->kernel,
               cfg->initrd, cfg->path != NULL ? cfg->path : "the config");
    return answer_later(loop, j, -ENOENT);
  }
  SHIM_INFO("image: building %s with %s (first use; this takes a while)",
            cfg->image_dir, cfg->mkuvm);
  uv_pipe_init(loop, &j->out, 0);
  j->out.data = j;
  j->handles = 1;
  memset(stdio, 0, sizeof(stdio));
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&j->out;
  args[0] = "/bin/sh";
  args[1] = "-c";
  args[2] = (char *)script;
  args[3] = "hcsb-image";
  args[4] = cfg->image_dir;
  args[5] = cfg->mkuvm;
  args[6] = NULL;
  memset(&o, 0, sizeof(o));
  o.file = args[0];
  o.args = args;
  o.exit_cb = on_exit_cb;
  o.stdio = stdio;
  o.stdio_count = 2;
  j->proc.data = j;
  r = uv_spawn(loop, &j->proc, &o);
  if (r < 0) {
    SHIM_ERROR("image: cannot run /bin/sh: %s", uv_strerror(r));
    j->status = r;
    uv_close((uv_handle_t *)&j->out, on_closed);
    return 0;
  }
  j->handles = 2;
  uv_read_start((uv_stream_t *)&j->out, on_alloc, on_read);
  return 0;
}
