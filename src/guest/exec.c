/* ExecuteProcess in its three Linux modes (protocol.md §7.4):
 *   UVM   null container ID or CreateInUtilityVM: CommandArgs/CommandLine,
 *         Environment, WorkingDirectory, EmulateConsole;
 *   INIT  container ID without OciProcess: the Create spec's process, once;
 *   EXEC  container ID with OciProcess.
 * Stdio: for each CreateStd*Pipe the guest dials <stdio-dir>/<port>.sock,
 * or with --vsock the host's CID and <port> (stdin, stdout, stderr in that
 * order) before it answers, retrying 10 x 100 ms while nobody listens; then
 * it spawns and answers with the PID.  Dialing runs on the loop, so a slow
 * exec holds nothing else up. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "guest/act.h"
#include "guest/guest.h"

enum { MODE_UVM, MODE_INIT, MODE_EXEC };

#define DEFAULT_CONTAINER_PATH \
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *const stream_names[3] = {"stdin", "stdout", "stderr"};

struct hcsb__gexec_s {
  TAILQ_ENTRY(hcsb__gexec_s) link;
  hcsb__guest_t *g;
  hcsb__gcall_t call;
  int mode;
  char *cid;
  char **argv;
  char **envp;
  char *cwd;
  char *path_env; /* where argv[0] is looked up */
  int tty;
  uint16_t rows, cols;
  int want[3];
  uint32_t port[3];
  int sock[3];
  int cur;
  int tries;
  int inflight; /* a vsock dial still connecting, or -1 */
  unsigned poll_ms;
  size_t cost;      /* counted in g->retained until it is answered */
  json_object *oci; /* acting backend, EXEC: the OCI process as sent */
  uv_timer_t timer;
};

/* ------------------------------------------------------------------------ */
/* Small helpers */

void hcsb__gstrv_free(char **v) {
  size_t i;

  if (v == NULL) return;
  for (i = 0; v[i] != NULL; i++) free(v[i]);
  free(v);
}

static char **strv_from_json(json_object *arr) {
  size_t i, n = arr != NULL ? json_object_array_length(arr) : 0;
  char **v = calloc(n + 1, sizeof *v);

  if (v == NULL) return NULL;
  for (i = 0; i < n; i++) {
    const char *s = json_object_get_string(json_object_array_get_idx(arr, i));
    v[i] = strdup(s != NULL ? s : "");
    if (v[i] == NULL) {
      hcsb__gstrv_free(v);
      return NULL;
    }
  }
  return v;
}

static char **env_from_map(json_object *map) {
  size_t n = map != NULL ? (size_t)json_object_object_length(map) : 0, i = 0;
  char **v = calloc(n + 1, sizeof *v);

  if (v == NULL) return NULL;
  if (map != NULL) {
    json_object_object_foreach(map, k, val) {
      const char *s = val != NULL ? json_object_get_string(val) : "";
      if (asprintf(&v[i], "%s=%s", k, s) < 0) {
        v[i] = NULL;
        hcsb__gstrv_free(v);
        return NULL;
      }
      i++;
    }
  }
  return v;
}

static const char *env_lookup(char **envp, const char *name) {
  size_t n = strlen(name), i;

  for (i = 0; envp != NULL && envp[i] != NULL; i++)
    if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
      return envp[i] + n + 1;
  return NULL;
}

/* Go prints errno texts in lower case ("no such file or directory"). */
static const char *go_err(int err, char buf[128]) {
  snprintf(buf, 128, "%s", strerror(err));
  buf[0] = (char)tolower((unsigned char)buf[0]);
  return buf;
}

int hcsb__gsplit_words(const char *s, char ***out, size_t *n) {
  size_t cap = 8, len = strlen(s), wl;
  char **v = calloc(cap + 1, sizeof *v), *word = malloc(len + 1);
  int in_word = 0, r = 0;

  *out = NULL;
  *n = 0;
  if (v == NULL || word == NULL) {
    r = -ENOMEM;
    goto out;
  }
  wl = 0;
  for (;;) {
    char ch = *s;
    if (ch == '\0' || ch == ' ' || ch == '\t' || ch == '\n') {
      if (in_word) {
        if (*n == cap) {
          char **nv = realloc(v, (cap * 2 + 1) * sizeof *v);
          if (nv == NULL) {
            r = -ENOMEM;
            goto out;
          }
          v = nv;
          cap *= 2;
        }
        v[*n] = strndup(word, wl);
        if (v[*n] == NULL) {
          r = -ENOMEM;
          goto out;
        }
        v[++*n] = NULL;
        in_word = 0;
        wl = 0;
      }
      if (ch == '\0') break;
      s++;
      continue;
    }
    in_word = 1;
    if (ch == '\'') {
      const char *end = strchr(s + 1, '\'');
      if (end == NULL) {
        r = -EINVAL;
        goto out;
      }
      memcpy(word + wl, s + 1, (size_t)(end - s - 1));
      wl += (size_t)(end - s - 1);
      s = end + 1;
    } else if (ch == '"') {
      s++;
      while (*s != '"') {
        if (*s == '\0') {
          r = -EINVAL;
          goto out;
        }
        if (*s == '\\' && s[1] != '\0' && strchr("\"\\$`", s[1]) != NULL) s++;
        word[wl++] = *s++;
      }
      s++;
    } else if (ch == '\\') {
      if (s[1] == '\0') {
        r = -EINVAL;
        goto out;
      }
      word[wl++] = s[1];
      s += 2;
    } else {
      word[wl++] = ch;
      s++;
    }
  }
  *out = v;
  v = NULL;
out:
  free(word);
  hcsb__gstrv_free(v);
  if (r != 0) *n = 0;
  return r;
}

/* ------------------------------------------------------------------------ */
/* Lifetime */

static void on_exec_closed(uv_handle_t *h) {
  hcsb__gexec_t *e = h->data;
  free(e);
}

static void exec_free(hcsb__gexec_t *e) {
  int i;

  TAILQ_REMOVE(&e->g->execs, e, link);
  e->g->npending--;
  e->g->retained -= e->cost;
  for (i = 0; i < 3; i++)
    if (e->sock[i] >= 0) close(e->sock[i]);
  if (e->inflight >= 0) close(e->inflight);
  hcsb__gcall_free(&e->call);
  free(e->cid);
  hcsb__gstrv_free(e->argv);
  hcsb__gstrv_free(e->envp);
  free(e->cwd);
  free(e->path_env);
  if (e->oci != NULL) json_object_put(e->oci);
  uv_close((uv_handle_t *)&e->timer, on_exec_closed);
}

unsigned hcsb__gexec_count(const hcsb__guest_t *g) {
  const hcsb__gexec_t *e;
  unsigned n = 0;

  TAILQ_FOREACH(e, &g->execs, link) n++;
  return n;
}

void hcsb__gexec_teardown(hcsb__guest_t *g) {
  hcsb__gexec_t *e;

  while ((e = TAILQ_FIRST(&g->execs)) != NULL) exec_free(e);
}

/* ------------------------------------------------------------------------ */
/* Spawning */

/* The container an INIT/EXEC targets, in the state it needs; NULL after
 * answering. */
static hcsb__gctr_t *ready_container(hcsb__guest_t *g,
                                     const hcsb__gcall_t *call, int mode,
                                     const char *cid) {
  hcsb__gctr_t *c = hcsb__gctr_find(g, cid);

  if (c == NULL) {
    hcsb__greply_err(g, call, HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND, NULL);
    return NULL;
  }
  if (mode == MODE_INIT && c->state != HCSB__GCTR_CREATED) {
    hcsb__greply_errf(g, call, HCSB_E_FAIL,
                      c->state == HCSB__GCTR_RUNNING
                          ? "cannot start an already running container %s"
                          : "cannot start a container that has stopped: %s",
                      cid);
    return NULL;
  }
  if (mode == MODE_EXEC && c->state != HCSB__GCTR_RUNNING) {
    hcsb__greply_errf(g, call, HCSB_E_FAIL,
                      c->state == HCSB__GCTR_CREATED
                          ? "cannot exec in container %s: its init process "
                            "has not been started"
                          : "cannot exec in a stopped container %s",
                      cid);
    return NULL;
  }
  return c;
}

static void spawn_failed(hcsb__gexec_t *e, const char *stage, const char *path,
                         int err) {
  char eb[128];
  const char *what = strcmp(stage, "chdir") == 0 ? e->cwd : path;

  if (e->mode == MODE_UVM)
    hcsb__greply_errf(e->g, &e->call, HCSB_E_FAIL,
                      "failed to call Start for external process: %s%s %s: %s",
                      strcmp(stage, "exec") == 0 ? "fork/" : "", stage, what,
                      go_err(err, eb));
  else
    hcsb__greply_errf(e->g, &e->call, HCSB_E_FAIL,
                      "failed to start the container process: %s %s: %s", stage,
                      what, go_err(err, eb));
}

/* What makes a container process see its container like a real guest's
 * (runc's) do: the spec's hostname in a UTS namespace of the container's
 * own (an exec joins the init's), and the init's cgroups when it has any.
 * Without CAP_SYS_ADMIN there is no namespace: the process then gets
 * HOSTNAME=<hostname> in its environment instead (unless it sets one). */
typedef struct iso_s {
  int uts_fd;
  char **env; /* envp + HOSTNAME (pointers borrowed from e->envp) */
  char *hostenv;
  char **cgroups;
} iso_t;

static void iso_prepare(const hcsb__gexec_t *e, const hcsb__gctr_t *c,
                        hcsb__gspawn_t *o, iso_t *iso) {
  json_object *v = hcsb__json_get(c->spec, "hostname");
  const char *hn = json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
  int follow = e->mode == MODE_EXEC && c->init != NULL && !c->init->reaped;
  char path[64];
  size_t n = 0;

  memset(iso, 0, sizeof *iso);
  iso->uts_fd = -1;
  if (follow && hcsb__gcgroup_join_files(c->init->pid, &iso->cgroups) == 0)
    o->cgroup_procs = iso->cgroups;
  if (hn == NULL || hn[0] == '\0') return;
  o->hostname = hn;
  if (follow) {
    snprintf(path, sizeof path, "/proc/%d/ns/uts", (int)c->init->pid);
    iso->uts_fd = open(path, O_RDONLY | O_CLOEXEC);
    o->uts_fd = iso->uts_fd;
  }
  if (env_lookup(e->envp, "HOSTNAME") != NULL) return;
  while (e->envp[n] != NULL) n++;
  iso->env = calloc(n + 2, sizeof *iso->env);
  if (iso->env == NULL || asprintf(&iso->hostenv, "HOSTNAME=%s", hn) < 0) {
    iso->hostenv = NULL;
    return; /* no fallback then; the namespace may still work */
  }
  memcpy(iso->env, e->envp, n * sizeof *iso->env);
  iso->env[n] = iso->hostenv;
  o->envp_no_uts = iso->env;
}

static void iso_free(iso_t *iso) {
  if (iso->uts_fd >= 0) close(iso->uts_fd);
  free(iso->env);
  free(iso->hostenv);
  hcsb__gstrv_free(iso->cgroups);
}

static void spawn(hcsb__gexec_t *e) {
  hcsb__guest_t *g = e->g;
  hcsb__gctr_t *c = NULL;
  hcsb__grelay_t *relay = NULL;
  hcsb__gspawn_t o;
  iso_t iso;
  hcsb__gproc_t *p;
  const char *stage;
  char *path = NULL;
  int child_fds[3], slave = -1, mode, r;
  pid_t pid;
  hcsb__gjw_t w;

  if (e->mode != MODE_UVM) {
    c = ready_container(g, &e->call, e->mode, e->cid);
    if (c == NULL) return;
  }
  /* Inside a VM a container's processes are runc's to start. */
  if (c != NULL && c->act != NULL) {
    hcsb__gaexec_t x;
    memset(&x, 0, sizeof x);
    x.call = &e->call;
    x.init = e->mode == MODE_INIT;
    x.process = e->oci;
    memcpy(x.socks, e->sock, sizeof x.socks);
    e->sock[0] = e->sock[1] = e->sock[2] = -1;
    x.tty = e->tty;
    x.rows = e->rows;
    x.cols = e->cols;
    x.argv0 = e->argv[0];
    hcsb__ga_exec(g, c, &x);
    return;
  }
  r = hcsb__glookpath(e->argv[0], e->path_env, &path);
  if (r < 0) {
    if (r == -ENOENT)
      hcsb__greply_errf(g, &e->call, HCSB_E_FAIL,
                        "%s: exec: \"%s\": executable file not found in $PATH",
                        e->mode == MODE_UVM
                            ? "failed to call Start for external process"
                            : "failed to start the container process",
                        e->argv[0]);
    else
      spawn_failed(e, "exec", e->argv[0], -r);
    return;
  }

  mode = e->tty                ? HCSB__GRELAY_TTY
         : e->mode == MODE_UVM ? HCSB__GRELAY_DIRECT
                               : HCSB__GRELAY_PIPES;
  r = hcsb__grelay_prepare(g, mode, e->sock, e->mode == MODE_INIT, e->rows,
                           e->cols, &relay, child_fds, &slave);
  if (r < 0) {
    char eb[128];
    hcsb__greply_errf(g, &e->call, HCSB_E_FAIL, "failed to set up stdio: %s",
                      go_err(-r, eb));
    free(path);
    return;
  }

  memset(&o, 0, sizeof o);
  o.path = path;
  o.argv = e->argv;
  o.envp = e->envp;
  o.cwd = e->cwd;
  memcpy(o.fds, child_fds, sizeof o.fds);
  o.tty_slave = slave;
  o.uts_fd = -1;
  if (c != NULL) iso_prepare(e, c, &o, &iso);
  r = hcsb__gspawn(&o, &pid, &stage);
  if (c != NULL) iso_free(&iso);
  hcsb__grelay_discard_child_fds(child_fds, slave);
  if (r < 0) {
    hcsb__grelay_abort(relay);
    spawn_failed(e, stage, path, -r);
    free(path);
    return;
  }
  free(path);

  p = hcsb__gproc_add(g, c, pid, e->mode == MODE_INIT, e->argv[0], relay,
                      e->tty);
  if (p == NULL) {
    hcsb__greply_err(g, &e->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return;
  }
  if (e->mode == MODE_INIT) {
    c->init = p;
    c->state = HCSB__GCTR_RUNNING;
  }
  hcsb__glog(g, 1, "started %s process %d (%s)",
             e->mode == MODE_UVM    ? "UVM"
             : e->mode == MODE_INIT ? "init"
                                    : "exec",
             (int)pid, e->argv[0]);
  hcsb__greply_begin(&w, 0, e->call.aid);
  hcsb__gjw_u64(&w, "ProcessId", (uint64_t)pid);
  hcsb__greply_finish(g, &e->call, &w);
}

/* ------------------------------------------------------------------------ */
/* Dialing */

int hcsb__gunix_addr(const char *path, struct sockaddr_un *sa) {
  size_t n = strlen(path);

  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (n >= sizeof sa->sun_path) return -ENAMETOOLONG;
  memcpy(sa->sun_path, path, n + 1);
  return 0;
}

static int dial(const char *path) {
  struct sockaddr_un sa;
  int fd, err;

  if ((err = hcsb__gunix_addr(path, &sa)) < 0) return err;
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
  err = errno;
  close(fd);
  /* A full backlog reads as EAGAIN on a non-blocking Unix connect. */
  return -(err == EINPROGRESS ? EAGAIN : err);
}

static void dial_step(hcsb__gexec_t *e);

static void on_retry(uv_timer_t *t) {
  dial_step(t->data);
}

/* One step of a vsock dial: the socket, -EINPROGRESS (the retry timer will
 * call again), or -errno.  A vsock connect completes asynchronously (one
 * round trip through the device backend); rather than a poll handle per
 * attempt, the exec's own timer looks again after 1 ms, growing to 32 ms. */
static int vsock_step(hcsb__gexec_t *e) {
  int fd, pending, r;

  if (e->inflight < 0) {
    fd = hcsb__gvsock_dial_start(e->g->vsock_cid, e->port[e->cur], &pending);
    if (fd < 0 || !pending) return fd;
    e->inflight = fd;
    e->poll_ms = 1;
  }
  r = hcsb__gvsock_dial_check(e->inflight);
  if (r == -EINPROGRESS) {
    uv_timer_start(&e->timer, on_retry, e->poll_ms, 0);
    if (e->poll_ms < 32) e->poll_ms *= 2;
    return r;
  }
  fd = e->inflight;
  e->inflight = -1;
  if (r == 0) return fd;
  close(fd);
  return r;
}

static void dial_step(hcsb__gexec_t *e) {
  char path[sizeof e->g->stdio_dir + 16], eb[128];
  int fd;

  while (e->cur < 3) {
    if (!e->want[e->cur]) {
      e->cur++;
      continue;
    }
    if (e->g->vsock) {
      fd = vsock_step(e);
      if (fd == -EINPROGRESS) return;
    } else {
      snprintf(path, sizeof path, "%s/%" PRIu32 ".sock", e->g->stdio_dir,
               e->port[e->cur]);
      fd = dial(path);
    }
    if (fd >= 0) {
      e->sock[e->cur++] = fd;
      e->tries = 0;
      continue;
    }
    /* ECONNRESET: a hybrid-vsock backend found no listener for the port. */
    if ((fd == -ENOENT || fd == -ECONNREFUSED || fd == -EAGAIN ||
         fd == -ETIMEDOUT || fd == -ECONNRESET) &&
        ++e->tries < HCSB__G_DIAL_TRIES) {
      uv_timer_start(&e->timer, on_retry, HCSB__G_DIAL_INTERVAL_MS, 0);
      return;
    }
    /* The GCS's wording, e.g. "failed creating stdout Connection: unix Dial
     * port (1073741831) at /run/gcs-stdio/1073741831.sock failed: no such
     * file or directory". */
    if (e->g->vsock)
      hcsb__greply_errf(e->g, &e->call, HCSB_E_FAIL,
                        "failed creating %s Connection: vsock Dial port "
                        "(%" PRIu32 ") failed: %s",
                        stream_names[e->cur], e->port[e->cur], go_err(-fd, eb));
    else
      hcsb__greply_errf(e->g, &e->call, HCSB_E_FAIL,
                        "failed creating %s Connection: unix Dial port "
                        "(%" PRIu32 ") at %s failed: %s",
                        stream_names[e->cur], e->port[e->cur], path,
                        go_err(-fd, eb));
    exec_free(e);
    return;
  }
  spawn(e);
  exec_free(e);
}

/* ------------------------------------------------------------------------ */
/* Request */

static void bad_params(hcsb__greq_t *r, const char *text, const char *why) {
  size_t n = strlen(text);
  if (n > HCSB__G_MAX_ECHO) n = HCSB__G_MAX_ECHO;
  hcsb__greply_errf(r->g, &r->call, HCSB_E_VMCOMPUTE_INVALID_JSON,
                    "failed to unmarshal JSON for ProcessParameters \"%.*s\": "
                    "HRESULT 0xc037010d: %s",
                    (int)n, text, why);
}

/* Fills argv/env/cwd of a container process from an OCI process object. */
static int from_oci(hcsb__greq_t *r, hcsb__gexec_t *e, hcsb__gctr_t *c,
                    json_object *proc) {
  json_object *v, *root, *size;
  const char *cwd = "", *rootpath = NULL;
  struct stat st;

  v = hcsb__json_get(proc, "args");
  if (v == NULL || json_object_array_length(v) == 0) {
    hcsb__greply_err(r->g, &r->call, HCSB_E_FAIL,
                     "the OCI process has no args");
    return -1;
  }
  e->argv = strv_from_json(v);
  e->envp = strv_from_json(hcsb__json_get(proc, "env"));
  v = hcsb__json_get(proc, "cwd");
  if (v != NULL) cwd = json_object_get_string(v);
  if (cwd[0] != '/') {
    hcsb__greply_errf(r->g, &r->call, HCSB_E_FAIL,
                      "cwd property must be an absolute path: \"%s\"", cwd);
    return -1;
  }
  /* root.path is the working root where it exists here; the executable
   * still comes from this machine (there is no chroot). */
  root = hcsb__json_get(c->spec, "root");
  v = root != NULL ? hcsb__json_get(root, "path") : NULL;
  if (json_object_is_type(v, json_type_string))
    rootpath = json_object_get_string(v);
  if (rootpath != NULL && rootpath[0] != '\0' && stat(rootpath, &st) == 0 &&
      S_ISDIR(st.st_mode)) {
    if (asprintf(&e->cwd, "%s%s", rootpath, cwd) < 0) e->cwd = NULL;
  } else {
    e->cwd = strdup(cwd);
  }
  v = hcsb__json_get(proc, "terminal");
  e->tty = v != NULL && json_object_get_boolean(v);
  size = hcsb__json_get(proc, "consoleSize");
  if (size != NULL) {
    v = hcsb__json_get(size, "height");
    e->rows = v != NULL ? (uint16_t)json_object_get_int64(v) : 0;
    v = hcsb__json_get(size, "width");
    e->cols = v != NULL ? (uint16_t)json_object_get_int64(v) : 0;
  }
  if (e->argv == NULL || e->envp == NULL || e->cwd == NULL) {
    hcsb__greply_err(r->g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return -1;
  }
  cwd = env_lookup(e->envp, "PATH");
  e->path_env = strdup(cwd != NULL ? cwd : DEFAULT_CONTAINER_PATH);
  if (e->path_env == NULL) {
    hcsb__greply_err(r->g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return -1;
  }
  return 0;
}

/* [height, width], each 0-65535; anything else leaves the size unset. */
static void console_size(json_object *v, uint16_t *rows, uint16_t *cols) {
  json_object *h, *w;

  if (!json_object_is_type(v, json_type_array) ||
      json_object_array_length(v) != 2)
    return;
  h = json_object_array_get_idx(v, 0);
  w = json_object_array_get_idx(v, 1);
  if (!json_object_is_type(h, json_type_int) ||
      !json_object_is_type(w, json_type_int) || json_object_get_int64(h) < 0 ||
      json_object_get_int64(h) > 65535 || json_object_get_int64(w) < 0 ||
      json_object_get_int64(w) > 65535)
    return;
  *rows = (uint16_t)json_object_get_int64(h);
  *cols = (uint16_t)json_object_get_int64(w);
}

static int from_params(hcsb__greq_t *r, hcsb__gexec_t *e, json_object *pp) {
  json_object *args = NULL, *envmap = NULL;
  const char *line = "", *cwd = "", *path;
  size_t n = 0;
  int emulate = 0, er;

  hcsb__gdec_t d = {"ProcessParameters", ""};
  (void)hcsb__gdec_strv(&d, pp, "CommandArgs", &args);
  (void)hcsb__gdec_str(&d, pp, "CommandLine", &line);
  (void)hcsb__gdec_str(&d, pp, "WorkingDirectory", &cwd);
  (void)hcsb__gdec_strmap(&d, pp, "Environment", &envmap);
  (void)hcsb__gdec_bool(&d, pp, "EmulateConsole", &emulate);

  if (args != NULL && json_object_array_length(args) > 0) {
    e->argv = strv_from_json(args);
  } else {
    er = hcsb__gsplit_words(line, &e->argv, &n);
    if (er == -EINVAL) {
      hcsb__greply_errf(r->g, &r->call, HCSB_E_FAIL,
                        "failed to parse CommandLine: unterminated quote or "
                        "escape in %s",
                        line);
      return -1;
    }
    if (er == 0 && n == 0) {
      hcsb__greply_err(r->g, &r->call, HCSB_E_FAIL,
                       "failed to call Start for external process: exec: no "
                       "command");
      return -1;
    }
  }
  e->envp = env_from_map(envmap);
  if (cwd[0] != '\0') e->cwd = strdup(cwd);
  e->tty = emulate;
  /* The real guest has no ConsoleSize field: its pty starts 0x0 whatever
   * the host sent (protocol.md §7.4).  --allow-uvm-signal emulates a guest
   * that drives UVM consoles, sizing the pty from a well-formed one. */
  if (emulate && r->g->allow_uvm_signal)
    console_size(hcsb__json_get(pp, "ConsoleSize"), &e->rows, &e->cols);
  /* Go's exec.Command resolves argv[0] with the GCS's own PATH. */
  path = getenv("PATH");
  e->path_env = strdup(path != NULL ? path : DEFAULT_CONTAINER_PATH);
  if (e->argv == NULL || e->envp == NULL || e->path_env == NULL ||
      (cwd[0] != '\0' && e->cwd == NULL)) {
    hcsb__greply_err(r->g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return -1;
  }
  return 0;
}

void hcsb__gh_execute(hcsb__greq_t *r) {
  hcsb__guest_t *g = r->g;
  json_object *settings = NULL, *relay = NULL, *pp = NULL, *oci = NULL, *v;
  const char *text = "";
  int want[3] = {0, 0, 0}, external = 0, i;
  uint32_t port[3] = {0, 0, 0};
  hcsb__gctr_t *c = NULL;
  hcsb__gexec_t *e;
  hcsb__gdec_t d;

  if (hcsb__gdec_begin(r, &d, "ContainerExecuteProcess") < 0) return;
  if (hcsb__gdec_obj(&d, r->root, "Settings", &settings) < 0) goto bad_body;
  d.strct = "ExecuteProcessSettings";
  if (settings != NULL &&
      (hcsb__gdec_str(&d, settings, "ProcessParameters", &text) < 0 ||
       hcsb__gdec_obj(&d, settings, "VsockStdioRelaySettings", &relay) < 0))
    goto bad_body;
  d.strct = "ExecuteProcessVsockStdioRelaySettings";
  if (relay != NULL && (hcsb__gdec_u32(&d, relay, "StdIn", &port[0]) < 0 ||
                        hcsb__gdec_u32(&d, relay, "StdOut", &port[1]) < 0 ||
                        hcsb__gdec_u32(&d, relay, "StdErr", &port[2]) < 0))
    goto bad_body;

  if (hcsb__gdec_inner(&d, text, &pp) < 0) {
    bad_params(r, text, d.err);
    return;
  }
  d.strct = "ProcessParameters";
  {
    const char *s = NULL;
    int b = 0;
    if (hcsb__gdec_root(&d, pp, "prot.ProcessParameters") < 0 ||
        hcsb__gdec_str(&d, pp, "CommandLine", &s) < 0 ||
        hcsb__gdec_strv(&d, pp, "CommandArgs", &v) < 0 ||
        hcsb__gdec_str(&d, pp, "WorkingDirectory", &s) < 0 ||
        hcsb__gdec_strmap(&d, pp, "Environment", &v) < 0 ||
        hcsb__gdec_bool(&d, pp, "EmulateConsole", &b) < 0 ||
        hcsb__gdec_bool(&d, pp, "CreateStdInPipe", &want[0]) < 0 ||
        hcsb__gdec_bool(&d, pp, "CreateStdOutPipe", &want[1]) < 0 ||
        hcsb__gdec_bool(&d, pp, "CreateStdErrPipe", &want[2]) < 0 ||
        hcsb__gdec_bool(&d, pp, "CreateInUtilityVM", &external) < 0 ||
        hcsb__gdec_obj(&d, pp, "OciSpecification", &v) < 0 ||
        hcsb__gdec_obj(&d, pp, "OciProcess", &oci) < 0 ||
        (oci != NULL && hcsb__gctr_check_process(&d, oci) < 0)) {
      bad_params(r, text, d.err);
      goto out;
    }
  }

  e = calloc(1, sizeof *e);
  if (e == NULL || hcsb__gcall_copy(&e->call, &r->call) != 0) {
    free(e);
    hcsb__greply_err(g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    goto out;
  }
  e->g = g;
  e->inflight = -1;
  for (i = 0; i < 3; i++) {
    e->sock[i] = -1;
    e->want[i] = want[i];
    e->port[i] = port[i];
  }
  if (uv_timer_init(g->loop, &e->timer) != 0) {
    hcsb__gcall_free(&e->call);
    free(e);
    hcsb__greply_err(g, &r->call, HCSB_E_FAIL, "timer initialisation failed");
    goto out;
  }
  e->timer.data = e;
  TAILQ_INSERT_TAIL(&g->execs, e, link);
  g->npending++;
  e->cost = r->len;
  g->retained += e->cost;

  if (strcmp(r->cid, HCSB__G_NULL_ID) == 0 || external) {
    e->mode = MODE_UVM;
    if (from_params(r, e, pp) < 0) goto fail;
  } else {
    e->mode = oci != NULL ? MODE_EXEC : MODE_INIT;
    c = ready_container(g, &r->call, e->mode, r->cid);
    if (c == NULL) goto fail;
    if (c->act != NULL && oci != NULL) e->oci = json_object_get(oci);
    e->cid = strdup(r->cid);
    if (e->cid == NULL) {
      hcsb__greply_err(g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
      goto fail;
    }
    if (oci == NULL) oci = hcsb__json_get(c->spec, "process");
    if (from_oci(r, e, c, oci) < 0) goto fail;
  }
  if (hcsb__gproc_live(g) >= HCSB__G_MAX_PROCS ||
      g->nprocs >= 16 * HCSB__G_MAX_PROCS ||
      g->npending > HCSB__G_MAX_PENDING || g->retained > HCSB__G_MAX_RETAINED) {
    hcsb__greply_err(g, &r->call, HCSB_E_FAIL,
                     "too many processes or outstanding requests");
    goto fail;
  }
  dial_step(e);
  goto out;

bad_body:
  hcsb__gdec_fail(r, d.err);
  return;
fail:
  exec_free(e);
out:
  json_object_put(pp);
}
