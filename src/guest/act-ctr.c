/* Containers through runc, as the v0.11.8 GCS runs them (hcsv2 +
 * runtime/runc):
 *
 *   Create   the spec adapted (act-spec.c) into <bundle>/config.json, the
 *            hostname/hosts/resolv.conf files in /run/gcs/c/<id>, then
 *            `runc create --no-pivot` with the init's stdio already made:
 *            three pipes, or a console socket for a tty.  The init waits in
 *            runc's exec fifo; we learn its PID from the pid file.
 *   Start    (the first ExecuteProcess without OciProcess) the dialed
 *            sockets join the init's pipes or pty, then `runc start`.
 *   Exec     process.json, `runc exec -d` with pipes or a console socket;
 *            the PID from the pid file.
 *   Kill     ShutdownGraceful/Forced, SIGTERM/SIGKILL to the init:
 *            `runc kill --all ID SIG`; other signals go to the PID.
 *   Delete   `runc delete`, then the scratch directory and the bundle are
 *            removed (never across a mount point: what is still mounted
 *            below makes it fail, as under the GCS).
 *
 * Container processes become our children when runc exits (we are the
 * child subreaper): the emulator's reaper, waits, relays and exit
 * notification serve them unchanged.  A container's processes for
 * ProcessList and its statistics come from its cgroup
 * (/containers/<id>).  runc's state, logs, pid files and process.json
 * files live in /run/hcsb-guest/<id>. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest/act.h"

#define GCS_ROOT "/run/gcs/c"
#define MAX_CGROUP_PIDS 65536u
#define FINAL_MS 30000u /* one runc delete --force at the session's end */

typedef struct hcsb__gactr_s {
  char *state;    /* /run/hcsb-guest/<id> */
  char *rootdir;  /* /run/gcs/c/<id>: hostname, hosts, resolv.conf */
  char *scratch;  /* ScratchDirPath, or NULL */
  unsigned files; /* HCSB__GSPEC_* written into rootdir */
  int made_bundle;
  int wrote_config;
  pid_t init_pid;
  uint64_t init_seq;          /* orphan exits after this may be the init's */
  hcsb__grelay_t *init_relay; /* until the init starts */
  int init_tty;
  char *init_argv0;
  int busy; /* a start or delete runs */
} hcsb__gactr_t;

/* One runc command on behalf of a request. */
typedef struct gaop_s {
  hcsb__guest_t *g;
  hcsb__gcall_t call;
  hcsb__gctr_t *c; /* referenced (Create: owned) */
  int kind;
  int sig;
  int socks[3];
  int console; /* listening console socket, or -1 */
  char console_path[108];
  hcsb__grelay_t *relay;
  int tty;
  uint16_t rows, cols;
  char *argv0;
  char *pid_file, *process_file, *log;
} gaop_t;

/* A Create in flight (hcsb__ga_creating finds it by ID). */
typedef struct hcsb__gacreate_s {
  TAILQ_ENTRY(hcsb__gacreate_s) link;
  gaop_t *op;
} hcsb__gacreate_t;

/* ------------------------------------------------------------------------ */
/* Small helpers */

static char *path_join(const char *a, const char *b) {
  char *s = NULL;
  return asprintf(&s, "%s/%s", a, b) < 0 ? NULL : s;
}

static int mkdir_p(const char *path, mode_t mode, int *made) {
  char buf[4096];
  size_t i, n = strlen(path);

  if (made != NULL) *made = 0;
  if (n == 0 || n >= sizeof buf) return -ENAMETOOLONG;
  memcpy(buf, path, n + 1);
  for (i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    buf[i] = '\0';
    if (mkdir(buf, i == n ? mode : 0755) == 0) {
      if (i == n && made != NULL) *made = 1;
    } else if (errno != EEXIST) {
      return -errno;
    }
    if (i < n) buf[i] = '/';
  }
  return 0;
}

/* Mount points, to stop a removal from going below one. */
typedef struct mpoints_s {
  char **v;
  size_t n;
} mpoints_t;

static void mpoints_load(mpoints_t *m) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  char line[8192], point[4096];

  m->v = NULL;
  m->n = 0;
  if (f == NULL) return;
  while (fgets(line, sizeof line, f) != NULL) {
    char **nv;
    if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1) continue;
    nv = realloc(m->v, (m->n + 1) * sizeof *nv);
    if (nv == NULL) break;
    m->v = nv;
    m->v[m->n] = strdup(point);
    if (m->v[m->n] != NULL) m->n++;
  }
  fclose(f);
}

static void mpoints_free(mpoints_t *m) {
  size_t i;
  for (i = 0; i < m->n; i++) free(m->v[i]);
  free(m->v);
}

static int is_mpoint(const mpoints_t *m, const char *path) {
  size_t i;
  for (i = 0; i < m->n; i++)
    if (strcmp(m->v[i], path) == 0) return 1;
  return 0;
}

/* os.RemoveAll that never descends into a mount point (the GCS's would
 * delete a mounted layer's files through the overlay).  The first error
 * goes to err ("unlinkat PATH: ..."); the rest is removed anyway. */
static int rm_tree(const mpoints_t *m, const char *path, unsigned depth,
                   char *err, size_t esize) {
  struct stat st;
  char eb[128];
  int r = 0;

  if (lstat(path, &st) < 0) return errno == ENOENT ? 0 : -errno;
  if (S_ISDIR(st.st_mode)) {
    DIR *d;
    struct dirent *e;

    if (is_mpoint(m, path) || depth > 64) {
      if (err[0] == '\0')
        snprintf(err, esize, "unlinkat %s: %s", path,
                 hcsb__ga_errstr(EBUSY, eb));
      return -EBUSY;
    }
    d = opendir(path);
    if (d != NULL) {
      while ((e = readdir(d)) != NULL) {
        char *child;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
          continue;
        child = path_join(path, e->d_name);
        if (child == NULL) {
          r = -ENOMEM;
          break;
        }
        if (rm_tree(m, child, depth + 1, err, esize) < 0 && r == 0) r = -EBUSY;
        free(child);
      }
      closedir(d);
    }
    if (rmdir(path) < 0) {
      r = -errno;
      if (err[0] == '\0')
        snprintf(err, esize, "unlinkat %s: %s", path,
                 hcsb__ga_errstr(errno, eb));
    }
    return r;
  }
  if (unlink(path) < 0 && errno != ENOENT) {
    r = -errno;
    if (err[0] == '\0')
      snprintf(err, esize, "unlinkat %s: %s", path, hcsb__ga_errstr(errno, eb));
  }
  return r;
}

static void stale_add(hcsb__guest_t *g, const char *id) {
  hcsb__gact_t *a = g->act;
  char **nv;

  if (a == NULL || a->nstale >= 1024) return;
  nv = realloc(a->stale, (a->nstale + 1) * sizeof *nv);
  if (nv == NULL) return;
  a->stale = nv;
  a->stale[a->nstale] = strdup(id);
  if (a->stale[a->nstale] != NULL) a->nstale++;
}

/* The reason a runc command failed: its log's last error, else what it
 * printed, else its exit. */
static void runc_reason(const char *log, const char *out, int status, char *buf,
                        size_t size) {
  char st[64];
  size_t n;

  if (log != NULL && hcsb__grunc_log_error(log, buf, size) == 0) return;
  while (*out == '\n' || *out == ' ') out++;
  n = strlen(out);
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ')) n--;
  if (n > 0) {
    snprintf(buf, size, "%.*s", (int)n, out);
    return;
  }
  hcsb__ga_status_text(status, st, sizeof st);
  snprintf(buf, size, "runc %s", st);
}

static void op_free(gaop_t *op) {
  int i;

  for (i = 0; i < 3; i++)
    if (op->socks[i] >= 0) close(op->socks[i]);
  if (op->console >= 0) {
    close(op->console);
    unlink(op->console_path);
  }
  if (op->relay != NULL) hcsb__grelay_abort(op->relay);
  if (op->pid_file != NULL) unlink(op->pid_file);
  if (op->process_file != NULL) unlink(op->process_file);
  hcsb__gcall_free(&op->call);
  free(op->argv0);
  free(op->pid_file);
  free(op->process_file);
  free(op->log);
  free(op);
}

static gaop_t *op_new(hcsb__guest_t *g, const hcsb__gcall_t *call,
                      hcsb__gctr_t *c) {
  gaop_t *op = calloc(1, sizeof *op);

  if (op == NULL) return NULL;
  op->g = g;
  op->c = c;
  op->console = -1;
  op->socks[0] = op->socks[1] = op->socks[2] = -1;
  if (hcsb__gcall_copy(&op->call, call) != 0 ||
      (c->act != NULL &&
       (op->log = path_join(c->act->state, "runc.log")) == NULL)) {
    hcsb__gcall_free(&op->call);
    free(op);
    return NULL;
  }
  return op;
}

/* A console socket for runc, named short (sun_path is 108 bytes). */
static int console_open(gaop_t *op) {
  int n = snprintf(op->console_path, sizeof op->console_path,
                   "%s/con-%" PRIu64 ".sock", HCSB__GA_STATE_DIR,
                   ++op->g->act->seq);
  if (n < 0 || (size_t)n >= sizeof op->console_path) return -ENAMETOOLONG;
  op->console = hcsb__grunc_console_listen(op->console_path);
  return op->console < 0 ? op->console : 0;
}

static int start_runc(gaop_t *op, const hcsb__grunc_cmd_t *cmd,
                      const int fds[3], hcsb__gjob_cb cb) {
  const char *argv[HCSB__GRUNC_MAX_ARGS];
  char num[16];
  int r = hcsb__grunc_argv(cmd, num, argv);

  if (r < 0) return r;
  return hcsb__gjob_run(op->g, argv, fds, cb, op);
}

static void reply_pid(hcsb__guest_t *g, const hcsb__gcall_t *call, pid_t pid) {
  hcsb__gjw_t w;

  hcsb__greply_begin(&w, 0, call->aid);
  hcsb__gjw_u64(&w, "ProcessId", (uint64_t)pid);
  hcsb__greply_finish(g, call, &w);
}

/* ------------------------------------------------------------------------ */
/* The container's files */

static void remove_files(hcsb__gctr_t *c) {
  hcsb__gactr_t *x = c->act;
  static const char *const names[3] = {"hostname", "hosts", "resolv.conf"};
  char *p;
  int i;

  for (i = 0; i < 3; i++) {
    if (!(x->files & (1u << i))) continue;
    p = path_join(x->rootdir, names[i]);
    if (p != NULL) unlink(p);
    free(p);
  }
  x->files = 0;
  if (x->wrote_config) {
    p = path_join(c->bundle, "config.json");
    if (p != NULL) unlink(p);
    free(p);
    x->wrote_config = 0;
  }
}

/* After a failed create: what it made goes, mounts below stay. */
static void undo_create(hcsb__gctr_t *c) {
  hcsb__gactr_t *x = c->act;
  char err[8];
  mpoints_t m;

  remove_files(c);
  mpoints_load(&m);
  err[0] = '\0';
  rm_tree(&m, x->state, 0, err, sizeof err);
  mpoints_free(&m);
  if (x->made_bundle) rmdir(c->bundle);
  if (strcmp(x->rootdir, c->bundle) != 0) rmdir(x->rootdir);
}

/* ------------------------------------------------------------------------ */
/* Create */

int hcsb__ga_creating(hcsb__guest_t *g, const char *id) {
  hcsb__gacreate_t *k;

  TAILQ_FOREACH(k, &g->act->creating, link)
  if (strcmp(k->op->c->id, id) == 0) return 1;
  return 0;
}

static void create_fail(gaop_t *op, uint32_t hr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void create_fail(gaop_t *op, uint32_t hr, const char *fmt, ...) {
  char msg[2048];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  hcsb__greply_err(op->g, &op->call, hr, msg);
  if (op->c->act != NULL) undo_create(op->c);
  hcsb__gctr_unref(op->c);
  op->c = NULL;
  op_free(op);
}

static void on_created(void *data, int status, const char *out, uint64_t seq) {
  gaop_t *op = data;
  hcsb__guest_t *g = op->g;
  hcsb__gctr_t *c = op->c;
  hcsb__gactr_t *x = c->act;
  hcsb__gacreate_t *k;
  char why[1024], st[64], eb[128];
  pid_t pid = -1;
  int r, master;
  hcsb__gjw_t w;

  TAILQ_FOREACH(k, &g->act->creating, link)
  if (k->op == op) break;
  if (k != NULL) {
    TAILQ_REMOVE(&g->act->creating, k, link);
    g->act->ncreating--;
    free(k);
  }
  if (status == -ECANCELED) {
    /* The session ends: runc may have made it; the final cleanup asks
     * runc to forget it. */
    stale_add(g, c->id);
    undo_create(c);
    hcsb__gctr_unref(c);
    op->c = NULL;
    op_free(op);
    return;
  }
  if (status != 0) {
    hcsb__ga_status_text(status, st, sizeof st);
    runc_reason(op->log, out, status, why, sizeof why);
    stale_add(g, c->id);
    create_fail(op, HCSB_E_FAIL,
                "failed to create container: failed to run runc create/exec "
                "call for container %s with %s: %s",
                c->id, st, why);
    return;
  }
  r = hcsb__grunc_read_pid(op->pid_file, &pid);
  if (r < 0) {
    stale_add(g, c->id);
    create_fail(op, HCSB_E_FAIL,
                "failed to create container: failed reading from pid file "
                "%s: %s",
                op->pid_file, hcsb__ga_errstr(-r, eb));
    return;
  }
  if (op->console >= 0) {
    master = hcsb__grunc_console_recv(op->console);
    if (master < 0 ||
        (r = hcsb__grelay_new_master(g, master, &op->relay)) < 0) {
      stale_add(g, c->id);
      create_fail(op, HCSB_E_FAIL,
                  "failed to create container: failed to get pty master for "
                  "process in container %s: %s",
                  c->id, hcsb__ga_errstr(master < 0 ? -master : -r, eb));
      return;
    }
  }
  x->init_pid = pid;
  x->init_seq = seq;
  x->init_relay = op->relay;
  x->init_tty = op->console >= 0;
  op->relay = NULL;
  hcsb__gctr_insert(c); /* the op's reference becomes the table's */
  op->c = NULL;
  hcsb__glog(g, 1, "container %s created by runc, init %d", c->id, (int)pid);
  hcsb__greply_begin(&w, 0, op->call.aid);
  hcsb__gjw_u64(&w, "SelectedProtocolVersion", 0);
  hcsb__greply_finish(g, &op->call, &w);
  op_free(op);
}

/* Writes the adapted spec and the /etc files; 0 or answers and -1. */
static int write_bundle(gaop_t *op, hcsb__gctr_t *c) {
  hcsb__gactr_t *x = c->act;
  json_object *spec = NULL, *proc, *v;
  char host[256], rootfs[4200], eb[128], *p = NULL, *text;
  const char *json;
  unsigned files;
  size_t len;
  int r;

  if (json_object_deep_copy(c->spec, &spec, NULL) != 0) {
    create_fail(op, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return -1;
  }
  r = hcsb__gspec_adapt(spec, c->id, x->rootdir, &files);
  if (r < 0) {
    json_object_put(spec);
    if (r == -ENOMEM)
      create_fail(op, HCSB__G_E_OUTOFMEMORY, "out of memory");
    else
      create_fail(op, HCSB_E_VMCOMPUTE_INVALID_JSON,
                  "failed to create container: the OCI spec's mounts or "
                  "linux section has the wrong type");
    return -1;
  }
  if (hcsb__gspec_hostname(spec, host, sizeof host) < 0)
    snprintf(host, sizeof host, "localhost");
  r = mkdir_p(x->rootdir, 0755, NULL);
  if (r < 0) {
    json_object_put(spec);
    create_fail(op, HCSB_E_FAIL,
                "failed to create container root directory \"%s\": %s",
                x->rootdir, hcsb__ga_errstr(-r, eb));
    return -1;
  }
  {
    static const char *const names[3] = {"hostname", "hosts", "resolv.conf"};
    int i;
    for (i = 0; i < 3 && r == 0; i++) {
      if (!(files & (1u << i))) continue;
      text = i == 0   ? hcsb__gspec_hostname_text(host)
             : i == 1 ? hcsb__gspec_hosts_text(host)
                      : strdup("");
      p = path_join(x->rootdir, names[i]);
      r = text == NULL || p == NULL ? -ENOMEM
                                    : hcsb__gspec_write(p, text, strlen(text));
      if (r == 0) x->files |= 1u << i;
      free(text);
      free(p);
    }
  }
  if (r == 0) r = mkdir_p(c->bundle, 0700, &x->made_bundle);
  if (r == 0) {
    json = json_object_to_json_string_ext(
        spec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    p = path_join(c->bundle, "config.json");
    r = json == NULL || p == NULL ? -ENOMEM
                                  : hcsb__gspec_write(p, json, strlen(json));
    if (r == 0) x->wrote_config = 1;
    free(p);
  }
  if (r < 0) {
    json_object_put(spec);
    create_fail(op, HCSB_E_FAIL,
                "failed to write OCISpecification to config.json at: "
                "'%s/config.json': %s",
                c->bundle, hcsb__ga_errstr(-r, eb));
    return -1;
  }
  /* The GCS makes the process's working directory in the rootfs. */
  proc = hcsb__json_get(spec, "process");
  v = proc != NULL ? hcsb__json_get(proc, "cwd") : NULL;
  if (json_object_is_type(v, json_type_string) &&
      strcmp(json_object_get_string(v), "/") != 0 &&
      hcsb__gspec_rootfs(spec, c->bundle, rootfs, sizeof rootfs) == 0 &&
      hcsb__ga_path_ok(json_object_get_string(v))) {
    len = strlen(rootfs);
    snprintf(rootfs + len, sizeof rootfs - len, "%s",
             json_object_get_string(v));
    mkdir_p(rootfs, 0755, NULL);
  }
  v = proc != NULL ? hcsb__json_get(proc, "terminal") : NULL;
  x->init_tty =
      json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
  v = proc != NULL ? hcsb__json_get(proc, "args") : NULL;
  v = json_object_is_type(v, json_type_array) ? json_object_array_get_idx(v, 0)
                                              : NULL;
  x->init_argv0 = strdup(json_object_is_type(v, json_type_string)
                             ? json_object_get_string(v)
                             : "?");
  json_object_put(spec);
  if (x->init_argv0 == NULL) {
    create_fail(op, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return -1;
  }
  return 0;
}

void hcsb__ga_create(hcsb__greq_t *r, hcsb__gctr_t *c, const char *scratch) {
  hcsb__guest_t *g = r->g;
  hcsb__gact_t *a = g->act;
  hcsb__gactr_t *x;
  hcsb__gacreate_t *k;
  hcsb__grunc_cmd_t cmd;
  int fds[3] = {-2, -1, -1}, child[3] = {-1, -1, -1}, e;
  char eb[128];
  gaop_t *op;

  x = calloc(1, sizeof *x);
  op = op_new(g, &r->call, c);
  k = calloc(1, sizeof *k);
  if (x == NULL || op == NULL || k == NULL ||
      (x->state = path_join(HCSB__GA_STATE_DIR, c->id)) == NULL ||
      (x->rootdir = path_join(GCS_ROOT, c->id)) == NULL ||
      (scratch[0] != '\0' && (x->scratch = strdup(scratch)) == NULL)) {
    if (x != NULL) {
      free(x->state);
      free(x->rootdir);
      free(x);
    }
    if (op != NULL) op_free(op);
    free(k);
    hcsb__greply_err(g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    hcsb__gctr_unref(c);
    return;
  }
  x->init_pid = -1;
  c->act = x;
  op->log = path_join(x->state, "runc.log");
  op->pid_file = path_join(x->state, "init.pid");
  if (op->log == NULL || op->pid_file == NULL) {
    free(k);
    create_fail(op, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return;
  }
  if (a->runc == NULL) {
    free(k);
    create_fail(op, HCSB_E_FAIL,
                "failed to create container: runc is not installed in this "
                "guest (hcsb-mkuvm includes it unless --no-runc)");
    return;
  }
  if (!hcsb__ga_path_ok(c->bundle) ||
      (x->scratch != NULL && !hcsb__ga_path_ok(x->scratch))) {
    free(k);
    create_fail(op, HCSB_E_FAIL,
                "failed to create OCIBundlePath: '%.300s': the bundle and "
                "scratch must be absolute paths without \".\" and \"..\"",
                c->bundle);
    return;
  }
  if (g->nctrs + a->ncreating >= HCSB__G_MAX_CONTAINERS) {
    free(k);
    create_fail(op, HCSB_E_FAIL, "too many containers");
    return;
  }
  if (write_bundle(op, c) < 0) {
    free(k);
    return;
  }
  e = mkdir_p(x->state, 0700, NULL);
  if (e == 0 && x->init_tty) {
    e = console_open(op);
  } else if (e == 0) {
    e = hcsb__grelay_new_pipes(g, &op->relay, child);
    memcpy(fds, child, sizeof fds);
  }
  if (e < 0) {
    free(k);
    create_fail(op, HCSB_E_FAIL, "failed to create container %s: stdio: %s",
                c->id, hcsb__ga_errstr(-e, eb));
    return;
  }
  memset(&cmd, 0, sizeof cmd);
  cmd.op = HCSB__GRUNC_CREATE;
  cmd.runc = a->runc;
  cmd.log = op->log;
  cmd.id = c->id;
  cmd.bundle = c->bundle;
  cmd.pid_file = op->pid_file;
  cmd.console = op->console >= 0 ? op->console_path : NULL;
  unlink(op->pid_file);
  e = start_runc(op, &cmd, fds, on_created);
  hcsb__grelay_discard_child_fds(child, -1);
  if (e < 0) {
    free(k);
    create_fail(op, HCSB_E_FAIL,
                "failed to create container: failed to run runc create: %s",
                hcsb__ga_errstr(-e, eb));
    return;
  }
  k->op = op;
  TAILQ_INSERT_TAIL(&a->creating, k, link);
  a->ncreating++;
}

/* ------------------------------------------------------------------------ */
/* Start and exec */

static void on_started(void *data, int status, const char *out, uint64_t seq) {
  gaop_t *op = data;
  hcsb__guest_t *g = op->g;
  hcsb__gctr_t *c = op->c;
  hcsb__gactr_t *x = c->act;
  hcsb__gproc_t *p;
  char why[1024], st[64];
  int ws;

  (void)seq;
  x->busy = 0;
  if (status == -ECANCELED) goto out;
  if (status != 0) {
    hcsb__ga_status_text(status, st, sizeof st);
    runc_reason(op->log, out, status, why, sizeof why);
    /* The sockets given to the init go with the failure, as the GCS
     * closes its connection set. */
    hcsb__greply_errf(g, &op->call, HCSB_E_FAIL,
                      "runc start failed with %s: %s", st, why);
    goto out;
  }
  p = hcsb__gproc_add(g, c, x->init_pid, 1, x->init_argv0, op->relay,
                      x->init_tty);
  op->relay = NULL; /* the process record's now */
  if (p == NULL) {
    hcsb__greply_err(g, &op->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    goto out;
  }
  c->init = p;
  c->state = HCSB__GCTR_RUNNING;
  if (hcsb__ga_claim(g, x->init_pid, x->init_seq, &ws))
    hcsb__gproc_exited(p, ws);
  hcsb__glog(g, 1, "container %s started, init %d", c->id, (int)x->init_pid);
  reply_pid(g, &op->call, x->init_pid);
out:
  hcsb__gctr_unref(c);
  op->c = NULL;
  op_free(op);
}

static void start_init(hcsb__guest_t *g, hcsb__gctr_t *c, hcsb__gaexec_t *e) {
  hcsb__gactr_t *x = c->act;
  hcsb__grunc_cmd_t cmd;
  int fds[3] = {-2, -1, -1}, r;
  char eb[128];
  gaop_t *op;

  if (x->busy || x->init_relay == NULL) {
    hcsb__greply_errf(g, e->call, HCSB_E_FAIL,
                      x->busy ? "container %s is being started or deleted"
                              : "cannot start container %s: its init's stdio "
                                "is gone (a start failed before)",
                      c->id);
    return;
  }
  op = op_new(g, e->call, c);
  if (op == NULL) {
    hcsb__greply_err(g, e->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return;
  }
  c->refs++;
  /* The dialed sockets join the pipes or pty runc create was given. */
  op->relay = x->init_relay;
  x->init_relay = NULL;
  hcsb__grelay_attach(op->relay, e->socks);
  memset(&cmd, 0, sizeof cmd);
  cmd.op = HCSB__GRUNC_START;
  cmd.runc = g->act->runc;
  cmd.log = op->log;
  cmd.id = c->id;
  r = start_runc(op, &cmd, fds, on_started);
  if (r < 0) {
    hcsb__greply_errf(g, &op->call, HCSB_E_FAIL, "runc start failed: %s",
                      hcsb__ga_errstr(-r, eb));
    hcsb__gctr_unref(c);
    op->c = NULL;
    op_free(op);
    return;
  }
  x->busy = 1;
}

static void on_execed(void *data, int status, const char *out, uint64_t seq) {
  gaop_t *op = data;
  hcsb__guest_t *g = op->g;
  hcsb__gctr_t *c = op->c;
  hcsb__gproc_t *p;
  char why[1024], st[64], eb[128];
  pid_t pid = -1;
  int r, ws, master;

  if (status == -ECANCELED) goto out;
  if (status != 0) {
    hcsb__ga_status_text(status, st, sizeof st);
    runc_reason(op->log, out, status, why, sizeof why);
    hcsb__greply_errf(g, &op->call, HCSB_E_FAIL,
                      "failed to run runc create/exec call for container %s "
                      "with %s: %s",
                      c->id, st, why);
    goto out;
  }
  r = hcsb__grunc_read_pid(op->pid_file, &pid);
  if (r < 0) {
    hcsb__greply_errf(g, &op->call, HCSB_E_FAIL,
                      "failed reading from pid file %s: %s", op->pid_file,
                      hcsb__ga_errstr(-r, eb));
    goto out;
  }
  if (op->console >= 0) {
    master = hcsb__grunc_console_recv(op->console);
    r = master < 0 ? master : hcsb__grelay_new_master(g, master, &op->relay);
    if (r < 0) {
      kill(pid, SIGKILL);
      hcsb__greply_errf(g, &op->call, HCSB_E_FAIL,
                        "failed to get pty master for process in container "
                        "%s: %s",
                        c->id, hcsb__ga_errstr(-r, eb));
      goto out;
    }
    hcsb__grelay_attach(op->relay, op->socks);
  }
  p = hcsb__gproc_add(g, c, pid, 0, op->argv0, op->relay, op->tty);
  op->relay = NULL;
  if (p == NULL) {
    hcsb__greply_err(g, &op->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    goto out;
  }
  /* A quick process may have exited (and been reaped) before runc did. */
  if (hcsb__ga_claim(g, pid, seq, &ws)) hcsb__gproc_exited(p, ws);
  hcsb__glog(g, 1, "exec %d in container %s (%s)", (int)pid, c->id, op->argv0);
  reply_pid(g, &op->call, pid);
out:
  hcsb__gctr_unref(c);
  op->c = NULL;
  op_free(op);
}

static void exec_proc(hcsb__guest_t *g, hcsb__gctr_t *c, hcsb__gaexec_t *e) {
  hcsb__gactr_t *x = c->act;
  json_object *proc;
  hcsb__grunc_cmd_t cmd;
  int fds[3] = {-2, -1, -1}, child[3] = {-1, -1, -1}, slave = -1, r = 0;
  char name[64], eb[128];
  const char *json;
  gaop_t *op;

  op = op_new(g, e->call, c);
  if (op == NULL) {
    hcsb__greply_err(g, e->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return;
  }
  c->refs++;
  memcpy(op->socks, e->socks, sizeof op->socks);
  e->socks[0] = e->socks[1] = e->socks[2] = -1;
  op->tty = e->tty;
  op->argv0 = strdup(e->argv0 != NULL ? e->argv0 : "?");
  snprintf(name, sizeof name, "exec-%" PRIu64 ".json", ++g->act->seq);
  op->process_file = path_join(x->state, name);
  snprintf(name, sizeof name, "exec-%" PRIu64 ".pid", g->act->seq);
  op->pid_file = path_join(x->state, name);
  proc =
      e->process != NULL ? hcsb__gspec_exec_process(e->process, c->spec) : NULL;
  if (op->argv0 == NULL || op->process_file == NULL || op->pid_file == NULL ||
      proc == NULL) {
    json_object_put(proc);
    hcsb__greply_err(g, &op->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    goto fail;
  }
  json = json_object_to_json_string_ext(
      proc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
  r = json == NULL ? -ENOMEM
                   : hcsb__gspec_write(op->process_file, json, strlen(json));
  json_object_put(proc);
  if (r < 0) {
    hcsb__greply_errf(g, &op->call, HCSB_E_FAIL,
                      "failed to create process.json file at %s: %s",
                      op->process_file, hcsb__ga_errstr(-r, eb));
    goto fail;
  }
  if (e->tty) {
    r = console_open(op);
  } else {
    r = hcsb__grelay_prepare(g, HCSB__GRELAY_PIPES, op->socks, 0, e->rows,
                             e->cols, &op->relay, child, &slave);
    if (r == 0) memcpy(fds, child, sizeof fds);
  }
  if (r < 0) {
    hcsb__greply_errf(g, &op->call, HCSB_E_FAIL,
                      "failed to set up stdio for container %s: %s", c->id,
                      hcsb__ga_errstr(-r, eb));
    goto fail;
  }
  memset(&cmd, 0, sizeof cmd);
  cmd.op = HCSB__GRUNC_EXEC;
  cmd.runc = g->act->runc;
  cmd.log = op->log;
  cmd.id = c->id;
  cmd.process = op->process_file;
  cmd.pid_file = op->pid_file;
  cmd.console = op->console >= 0 ? op->console_path : NULL;
  unlink(op->pid_file);
  r = start_runc(op, &cmd, fds, on_execed);
  hcsb__grelay_discard_child_fds(child, slave);
  if (r < 0) {
    hcsb__greply_errf(g, &op->call, HCSB_E_FAIL,
                      "failed to run runc exec for container %s: %s", c->id,
                      hcsb__ga_errstr(-r, eb));
    goto fail;
  }
  return;
fail:
  hcsb__gctr_unref(c);
  op->c = NULL;
  op_free(op);
}

void hcsb__ga_exec(hcsb__guest_t *g, hcsb__gctr_t *c, hcsb__gaexec_t *e) {
  int i;

  if (e->init)
    start_init(g, c, e);
  else
    exec_proc(g, c, e);
  for (i = 0; i < 3; i++)
    if (e->socks[i] >= 0) close(e->socks[i]);
}

/* ------------------------------------------------------------------------ */
/* Kill */

static void on_killed(void *data, int status, const char *out, uint64_t seq) {
  gaop_t *op = data;
  hcsb__gctr_t *c = op->c;
  char why[1024], st[64];

  (void)seq;
  if (status == -ECANCELED) goto out;
  if (status == 0) {
    hcsb__gctr_note_signal(c, op->sig);
    /* Never started: killed before its start, it is stopped. */
    if (c->state == HCSB__GCTR_CREATED) c->state = HCSB__GCTR_STOPPED;
    hcsb__greply_ok(op->g, &op->call);
  } else if (c->state == HCSB__GCTR_STOPPED ||
             (c->init != NULL && c->init->reaped)) {
    /* It stopped meanwhile: what the kill wanted. */
    hcsb__greply_ok(op->g, &op->call);
  } else {
    hcsb__ga_status_text(status, st, sizeof st);
    runc_reason(NULL, out, status, why, sizeof why);
    hcsb__greply_errf(op->g, &op->call, HCSB_E_FAIL,
                      "unknown runc error after kill %s: %s", st, why);
  }
out:
  hcsb__gctr_unref(c);
  op->c = NULL;
  op_free(op);
}

void hcsb__ga_kill(hcsb__guest_t *g, const hcsb__gcall_t *call, hcsb__gctr_t *c,
                   int sig) {
  hcsb__grunc_cmd_t cmd;
  int fds[3] = {-2, -1, -1}, r;
  char eb[128];
  gaop_t *op = op_new(g, call, c);

  if (op == NULL) {
    hcsb__greply_err(g, call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return;
  }
  c->refs++;
  op->sig = sig;
  memset(&cmd, 0, sizeof cmd);
  cmd.op = HCSB__GRUNC_KILL;
  cmd.runc = g->act->runc;
  cmd.id = c->id;
  cmd.sig = sig;
  cmd.all = sig == SIGTERM || sig == SIGKILL;
  r = start_runc(op, &cmd, fds, on_killed);
  if (r < 0) {
    hcsb__greply_errf(g, call, HCSB_E_FAIL, "runc kill failed: %s",
                      hcsb__ga_errstr(-r, eb));
    hcsb__gctr_unref(c);
    op->c = NULL;
    op_free(op);
  }
}

/* ------------------------------------------------------------------------ */
/* Delete */

/* The scratch, the bundle and runc's files of a container runc forgot.
 * The first failure is in err (empty when none). */
static void remove_state(hcsb__gctr_t *c, char *err, size_t esize) {
  hcsb__gactr_t *x = c->act;
  char ignored[8];
  mpoints_t m;

  err[0] = '\0';
  remove_files(c);
  mpoints_load(&m);
  if (x->scratch != NULL) rm_tree(&m, x->scratch, 0, err, esize);
  if (c->bundle[0] != '\0') rm_tree(&m, c->bundle, 0, err, esize);
  if (strcmp(x->rootdir, c->bundle) != 0) rmdir(x->rootdir);
  ignored[0] = '\0';
  rm_tree(&m, x->state, 0, ignored, sizeof ignored);
  mpoints_free(&m);
}

static void on_deleted(void *data, int status, const char *out, uint64_t seq) {
  gaop_t *op = data;
  hcsb__guest_t *g = op->g;
  hcsb__gctr_t *c = op->c;
  hcsb__gproc_t *p, *next;
  char why[1024] = "", rm[1024], st[64];

  (void)seq;
  c->act->busy = 0;
  if (status == -ECANCELED) goto out;
  if (status != 0) {
    hcsb__ga_status_text(status, st, sizeof st);
    runc_reason(op->log, out, status, why, sizeof why);
    stale_add(g, c->id);
  }
  remove_state(c, rm, sizeof rm);
  /* Forgotten like under the GCS, whatever failed; its processes leave
   * the table once finished. */
  for (p = TAILQ_FIRST(&c->procs); p != NULL; p = next) {
    next = TAILQ_NEXT(p, clink);
    hcsb__gproc_unlist(p);
  }
  hcsb__gctr_forget(c);
  if (why[0] != '\0' && rm[0] != '\0')
    hcsb__greply_errf(g, &op->call, HCSB_E_FAIL,
                      "errors deleting container state, runc delete failed "
                      "with %s: %s & %s",
                      st, why, rm);
  else if (why[0] != '\0')
    hcsb__greply_errf(g, &op->call, HCSB_E_FAIL,
                      "runc delete failed with %s: %s", st, why);
  else if (rm[0] != '\0')
    hcsb__greply_err(g, &op->call, HCSB_E_FAIL, rm);
  else
    hcsb__greply_ok(g, &op->call);
  hcsb__glog(g, 1, "container %s deleted", c->id);
out:
  hcsb__gctr_unref(c);
  op->c = NULL;
  op_free(op);
}

void hcsb__ga_delete(hcsb__greq_t *r, hcsb__gctr_t *c) {
  hcsb__guest_t *g = r->g;
  hcsb__grunc_cmd_t cmd;
  int fds[3] = {-2, -1, -1}, e;
  char eb[128];
  gaop_t *op;

  if (c->state == HCSB__GCTR_RUNNING && c->init != NULL && !c->init->reaped) {
    hcsb__greply_errf(g, &r->call, HCSB_E_VMCOMPUTE_INVALID_STATE,
                      "cannot delete container %s that is not stopped", c->id);
    return;
  }
  if (c->act->busy) {
    hcsb__greply_errf(g, &r->call, HCSB_E_FAIL,
                      "container %s is being started or deleted", c->id);
    return;
  }
  op = op_new(g, &r->call, c);
  if (op == NULL) {
    hcsb__greply_err(g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return;
  }
  c->refs++;
  memset(&cmd, 0, sizeof cmd);
  cmd.op = HCSB__GRUNC_DELETE;
  cmd.runc = g->act->runc;
  cmd.log = op->log;
  cmd.id = c->id;
  e = start_runc(op, &cmd, fds, on_deleted);
  if (e < 0) {
    hcsb__greply_errf(g, &r->call, HCSB_E_FAIL, "runc delete failed: %s",
                      hcsb__ga_errstr(-e, eb));
    hcsb__gctr_unref(c);
    op->c = NULL;
    op_free(op);
    return;
  }
  c->act->busy = 1;
}

/* ------------------------------------------------------------------------ */
/* Processes, freeing, the end */

static int cmp_pid(const void *a, const void *b) {
  pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
  return x < y ? -1 : x > y;
}

int hcsb__ga_pids(hcsb__gctr_t *c, pid_t **out, size_t *n) {
  /* Any hierarchy holds every process of the container. */
  static const char *const roots[] = {
      "/sys/fs/cgroup/pids",    "/sys/fs/cgroup/memory",  "/sys/fs/cgroup/cpu",
      "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
  char path[4400], line[32];
  pid_t *v = NULL, *nv;
  size_t cnt = 0, cap = 0, i;
  FILE *f = NULL;

  *out = NULL;
  *n = 0;
  for (i = 0; f == NULL && i < sizeof roots / sizeof roots[0]; i++) {
    snprintf(path, sizeof path, "%s%s%s/cgroup.procs", roots[i],
             HCSB__GA_CGROUP_PARENT, c->id);
    f = fopen(path, "re");
  }
  if (f == NULL) return 0; /* no cgroup (yet, or any more): no processes */
  while (fgets(line, sizeof line, f) != NULL && cnt < MAX_CGROUP_PIDS) {
    long pid = strtol(line, NULL, 10);
    if (pid <= 0) continue;
    if (cnt == cap) {
      cap = cap ? cap * 2 : 16;
      nv = realloc(v, cap * sizeof *nv);
      if (nv == NULL) {
        fclose(f);
        free(v);
        return -ENOMEM;
      }
      v = nv;
    }
    v[cnt++] = (pid_t)pid;
  }
  fclose(f);
  if (cnt > 1) qsort(v, cnt, sizeof *v, cmp_pid);
  *out = v;
  *n = cnt;
  return 0;
}

void hcsb__ga_ctr_free(hcsb__gctr_t *c) {
  hcsb__gactr_t *x = c->act;

  if (x->init_relay != NULL) hcsb__grelay_abort(x->init_relay);
  free(x->state);
  free(x->rootdir);
  free(x->scratch);
  free(x->init_argv0);
  free(x);
  c->act = NULL;
}

static void runc_forget(hcsb__guest_t *g, const char *id) {
  hcsb__grunc_cmd_t cmd;
  const char *argv[HCSB__GRUNC_MAX_ARGS];
  char num[16];
  int r;

  memset(&cmd, 0, sizeof cmd);
  cmd.op = HCSB__GRUNC_DELETE;
  cmd.runc = g->act->runc;
  cmd.id = id;
  cmd.force = 1;
  if (cmd.runc == NULL || hcsb__grunc_argv(&cmd, num, argv) < 0) return;
  r = hcsb__gjob_run_sync(argv, FINAL_MS);
  if (r != 0) hcsb__glog(g, 1, "runc delete --force %s: %d", id, r);
}

void hcsb__ga_ctr_final(hcsb__guest_t *g) {
  hcsb__gctr_t *c;
  char err[256];
  size_t i;

  TAILQ_FOREACH(c, &g->ctrs, link) {
    if (c->act == NULL) continue;
    runc_forget(g, c->id);
    remove_state(c, err, sizeof err);
  }
  for (i = 0; i < g->act->nstale; i++) {
    runc_forget(g, g->act->stale[i]);
    free(g->act->stale[i]);
  }
  free(g->act->stale);
  g->act->stale = NULL;
  g->act->nstale = 0;
}
