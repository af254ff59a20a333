/* Layer images: the shared cache and the maker child (rootfs.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim/rootfs.h"

#ifndef HCSB_BINDIR
#define HCSB_BINDIR "/usr/local/bin"
#endif

#define KEY_MAX (HCSB__ROOTFS_PATH_MAX + 128)
#define LOCK_POLL_MS 100
/* A build another shim holds the lock for: wait at most this long. */
#define LOCK_WAIT_MS (30u * 60u * 1000u)
#define ERRTAIL 512
/* A file in the cache: its directory, a name of up to ~60 bytes. */
#define PATHBUF (HCSB__ROOTFS_PATH_MAX + 96)

struct hcsb__layer_req_s {
  uv_loop_t *loop;
  uv_timer_t timer;  /* lock polling and deferred completion */
  uv_process_t proc; /* the maker */
  uv_pipe_t err;     /* its stderr */
  int handles;       /* initialised handles not yet closed */
  int proc_live, err_live;
  int lockfd;
  int cacheable;
  int status; /* the outcome, once known */
  int completing, canceled;
  uint64_t waited_ms;
  hcsb__layer_cb cb;
  void *data;
  char *maker;
  char *dir;
  char img[PATHBUF];
  char keyfile[PATHBUF];
  char lockfile[PATHBUF];
  char key[KEY_MAX];
  char msg[ERRTAIL + 64];
  char errtail[ERRTAIL];
  size_t errlen;
};

static unsigned tmp_counter;

static void req_free(hcsb__layer_req_t *r) {
  if (r->lockfd >= 0) close(r->lockfd);
  free(r->maker);
  free(r->dir);
  free(r);
}

static void on_close(uv_handle_t *h) {
  hcsb__layer_req_t *r = h->data;

  if (--r->handles == 0) req_free(r);
}

/* Runs the callback once, then lets go of every handle. */
static void finish(hcsb__layer_req_t *r) {
  if (r->lockfd >= 0) { /* others may go on while we report */
    close(r->lockfd);
    r->lockfd = -1;
  }
  if (r->canceled && r->status == 0 && !r->cacheable) unlink(r->img);
  if (r->canceled) {
    r->status = -ECANCELED;
    snprintf(r->msg, sizeof r->msg, "layer image build cancelled");
  }
  r->cb(r->data, r->status, r->status == 0 ? r->img : NULL,
        r->status == 0 ? NULL : r->msg);
  uv_close((uv_handle_t *)&r->timer, on_close);
}

static void on_complete_timer(uv_timer_t *t) {
  finish(t->data);
}

/* Completion on a later turn (never inside the starting call). */
static void complete(hcsb__layer_req_t *r, int status) {
  if (r->completing) return;
  r->completing = 1;
  if (r->status == 0) r->status = status;
  uv_timer_stop(&r->timer);
  uv_timer_start(&r->timer, on_complete_timer, 0, 0);
}

static void fail(hcsb__layer_req_t *r, int status, const char *fmt,
                 const char *arg) {
  if (r->status == 0) {
    r->status = status;
    snprintf(r->msg, sizeof r->msg, fmt, arg, strerror(-status));
  }
  complete(r, status);
}

/* 1 when <stem>.img exists and <stem>.key holds exactly our key. */
static int cached(hcsb__layer_req_t *r) {
  char buf[KEY_MAX + 1];
  ssize_t n;
  int fd;

  if (access(r->img, R_OK) != 0) return 0;
  fd = open(r->keyfile, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  n = read(fd, buf, sizeof buf);
  close(fd);
  return n == (ssize_t)strlen(r->key) && memcmp(buf, r->key, (size_t)n) == 0;
}

static int write_key(hcsb__layer_req_t *r) {
  char tmp[PATHBUF + 32];
  size_t len = strlen(r->key);
  int fd, ok;

  snprintf(tmp, sizeof tmp, "%s.tmp.%d", r->keyfile, (int)getpid());
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  ok = write(fd, r->key, len) == (ssize_t)len;
  if (close(fd) != 0) ok = 0;
  if (!ok || rename(tmp, r->keyfile) != 0) {
    int e = ok ? -errno : -EIO;
    unlink(tmp);
    return e;
  }
  return 0;
}

static void on_err_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  static char chunk[1024];
  (void)h;
  (void)hint;
  buf->base = chunk;
  buf->len = sizeof chunk;
}

static void maybe_done(hcsb__layer_req_t *r);

static void on_err_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  hcsb__layer_req_t *r = s->data;

  if (n < 0) {
    r->err_live = 0;
    uv_close((uv_handle_t *)&r->err, on_close);
    maybe_done(r);
    return;
  }
  /* Keep the last ERRTAIL bytes. */
  if ((size_t)n >= sizeof r->errtail) {
    memcpy(r->errtail, buf->base + n - sizeof r->errtail, sizeof r->errtail);
    r->errlen = sizeof r->errtail;
    return;
  }
  if (r->errlen + (size_t)n > sizeof r->errtail) {
    size_t drop = r->errlen + (size_t)n - sizeof r->errtail;
    memmove(r->errtail, r->errtail + drop, r->errlen - drop);
    r->errlen -= drop;
  }
  memcpy(r->errtail + r->errlen, buf->base, (size_t)n);
  r->errlen += (size_t)n;
}

static void on_exit_(uv_process_t *p, int64_t code, int sig) {
  hcsb__layer_req_t *r = p->data;
  char tmp[PATHBUF + 32];

  r->proc_live = 0;
  /* What a maker killed half-way left beside the image (hcsb-mklayer's
   * IMAGE.tmp.PID). */
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", r->img, p->pid);
  unlink(tmp);
  uv_close((uv_handle_t *)&r->proc, on_close);
  if (r->status == 0 && (code != 0 || sig != 0)) {
    /* The maker's last stderr line says why. */
    char *line = r->errtail, *nl;
    r->errtail[r->errlen < sizeof r->errtail ? r->errlen
                                             : sizeof r->errtail - 1] = '\0';
    while ((nl = strrchr(line, '\n')) != NULL && nl[1] == '\0') *nl = '\0';
    if ((nl = strrchr(line, '\n')) != NULL) line = nl + 1;
    r->status = -EIO;
    if (sig != 0)
      snprintf(r->msg, sizeof r->msg,
               "layer image of %s: maker killed by "
               "signal %d",
               r->dir, sig);
    else
      snprintf(r->msg, sizeof r->msg, "layer image of %s: %s", r->dir,
               line[0] != '\0' ? line : "maker failed");
  }
  maybe_done(r);
}

static void maybe_done(hcsb__layer_req_t *r) {
  int e;

  if (r->proc_live || r->err_live) return;
  if (r->status == 0 && !r->canceled && r->cacheable) {
    e = write_key(r);
    if (e != 0) fail(r, e, "cannot write the key of %s: %s", r->img);
  }
  complete(r, 0);
}

static void spawn_maker(hcsb__layer_req_t *r) {
  uv_process_options_t o;
  uv_stdio_container_t io[3];
  char *args[4];
  int e;

  e = uv_pipe_init(r->loop, &r->err, 0);
  if (e != 0) {
    fail(r, e, "%s: cannot make a pipe: %s", r->maker);
    return;
  }
  r->err.data = r;
  r->handles++;
  r->err_live = 1;
  memset(&o, 0, sizeof(o));
  memset(io, 0, sizeof(io));
  io[0].flags = UV_IGNORE;
  io[1].flags = UV_IGNORE;
  io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  io[2].data.stream = (uv_stream_t *)&r->err;
  args[0] = r->maker;
  args[1] = r->dir;
  args[2] = r->img;
  args[3] = NULL;
  o.file = r->maker;
  o.args = args;
  o.exit_cb = on_exit_;
  o.stdio = io;
  o.stdio_count = 3;
  /* A group of its own, so that a cancel reaches mkfs too. */
  o.flags = UV_PROCESS_DETACHED;
  r->proc.data = r;
  e = uv_spawn(r->loop, &r->proc, &o);
  if (e != 0) {
    /* uv_spawn initialised the handle: it must be closed too. */
    r->handles++;
    uv_close((uv_handle_t *)&r->proc, on_close);
    r->err_live = 0;
    uv_close((uv_handle_t *)&r->err, on_close);
    fail(r, e, "cannot run the layer maker %s: %s", r->maker);
    return;
  }
  r->handles++;
  r->proc_live = 1;
  e = uv_read_start((uv_stream_t *)&r->err, on_err_alloc, on_err_read);
  if (e != 0) {
    r->err_live = 0;
    uv_close((uv_handle_t *)&r->err, on_close);
  }
}

/* Takes the build lock, or polls for it. */
static void on_lock_timer(uv_timer_t *t) {
  hcsb__layer_req_t *r = t->data;

  if (r->canceled) {
    complete(r, -ECANCELED);
    return;
  }
  if (r->lockfd < 0) {
    r->lockfd = open(r->lockfile, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (r->lockfd < 0) {
      fail(r, -errno, "cannot open %s: %s", r->lockfile);
      return;
    }
  }
  if (flock(r->lockfd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) {
      fail(r, -errno, "cannot lock %s: %s", r->lockfile);
      return;
    }
    r->waited_ms += LOCK_POLL_MS;
    if (r->waited_ms > LOCK_WAIT_MS) {
      fail(r, -ETIMEDOUT, "another shim holds %s too long: %s", r->lockfile);
      return;
    }
    uv_timer_start(&r->timer, on_lock_timer, LOCK_POLL_MS, 0);
    return;
  }
  if (cached(r)) { /* built by whoever held the lock */
    complete(r, 0);
    return;
  }
  unlink(r->keyfile); /* nobody takes the old image while we replace it */
  spawn_maker(r);
}

static int mkdirs(const char *path) {
  char buf[HCSB__ROOTFS_PATH_MAX];
  char *p;

  if (strlen(path) >= sizeof buf) return -ENAMETOOLONG;
  strcpy(buf, path);
  for (p = buf + 1; *p != '\0'; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -errno;
    *p = '/';
  }
  if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -errno;
  return 0;
}

static char *default_maker(void) {
  const char *env = getenv("HCSB_MKLAYER");

  if (env != NULL && env[0] != '\0') return strdup(env);
  return strdup(HCSB_BINDIR "/hcsb-mklayer");
}

int hcsb__layer_image(uv_loop_t *loop, const char *cache_dir,
                      const hcsb__layer_t *layer, const char *maker,
                      hcsb__layer_cb cb, void *data, hcsb__layer_req_t **out) {
  hcsb__layer_req_t *r;
  char stem[17], tmpdir[HCSB__ROOTFS_PATH_MAX];
  int e;

  if (cache_dir == NULL || cache_dir[0] != '/' || layer == NULL ||
      layer->dir == NULL || cb == NULL)
    return -EINVAL;
  if (strlen(cache_dir) > HCSB__ROOTFS_PATH_MAX - 64) return -ENAMETOOLONG;
  r = calloc(1, sizeof(*r));
  if (r == NULL) return -ENOMEM;
  r->loop = loop;
  r->lockfd = -1;
  r->cb = cb;
  r->data = data;
  r->cacheable = layer->cacheable;
  r->dir = strdup(layer->dir);
  r->maker = maker != NULL ? strdup(maker) : default_maker();
  if (r->dir == NULL || r->maker == NULL) {
    req_free(r);
    return -ENOMEM;
  }
  snprintf(tmpdir, sizeof tmpdir, "%s/tmp", cache_dir);
  e = mkdirs(tmpdir);
  if (e != 0) {
    req_free(r);
    return e;
  }
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  r->handles = 1;
  *out = r;
  e = hcsb__layer_key(layer->dir, r->key, sizeof r->key, stem);
  if (e != 0) {
    fail(r, e, "layer %s: %s", layer->dir);
    return 0;
  }
  if (!r->cacheable) {
    /* A private image: no lock, straight to the maker. */
    snprintf(r->img, sizeof r->img, "%s/%s-%d-%u.img", tmpdir, stem,
             (int)getpid(), ++tmp_counter);
    spawn_maker(r);
    return 0;
  }
  snprintf(r->img, sizeof r->img, "%s/%s.img", cache_dir, stem);
  snprintf(r->keyfile, sizeof r->keyfile, "%s/%s.key", cache_dir, stem);
  snprintf(r->lockfile, sizeof r->lockfile, "%s/%s.lock", cache_dir, stem);
  if (cached(r)) {
    complete(r, 0);
    return 0;
  }
  uv_timer_start(&r->timer, on_lock_timer, 0, 0);
  return 0;
}

void hcsb__layer_image_cancel(hcsb__layer_req_t *r) {
  if (r == NULL || r->canceled) return;
  r->canceled = 1;
  if (r->proc_live) {
    kill(-r->proc.pid, SIGKILL);
    return; /* its exit completes the request */
  }
  complete(r, -ECANCELED);
}
