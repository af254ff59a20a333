/* Create, through runc, as the v0.11.8 GCS does it (hcsv2
 * CreateContainer + runtime/runc runCreateCommand): the spec adapted
 * (act-spec.c) into <bundle>/config.json, the container's hostname, hosts
 * and resolv.conf in /run/gcs/c/<id>, the process's working directory in
 * the rootfs, then `runc create --no-pivot` with the init's stdio made
 * already: three pipes, or a console socket for a tty (the connections
 * come with the init's ExecuteProcess; act-ctr.c).  The init then waits
 * in runc's exec fifo; its PID comes from the pid file.  A failure undoes
 * what the create made (never what is mounted below the bundle). */
#include "config.h"

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

#include "guest/act-ctr.h"

/* After a failed create: what it made goes, mounts below stay. */
static void undo_create(hcsb__gctr_t *c) {
  hcsb__gactr_t *x = c->act;
  char ignored[8];

  hcsb__ga_remove_files(c);
  hcsb__ga_rm_tree(x->state, ignored, sizeof ignored);
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

static void create_fail(hcsb__garun_t *op, uint32_t hr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void create_fail(hcsb__garun_t *op, uint32_t hr, const char *fmt, ...) {
  char msg[2048];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  hcsb__greply_err(op->g, &op->call, hr, msg);
  if (op->c->act != NULL) undo_create(op->c);
  op->g->retained -= op->c->cost;
  hcsb__gctr_unref(op->c);
  op->c = NULL;
  hcsb__garun_free(op);
}

static void on_created(void *data, int status, const char *out, uint64_t seq) {
  hcsb__garun_t *op = data;
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
    hcsb__ga_stale(g, c->id);
    undo_create(c);
    g->retained -= c->cost;
    hcsb__gctr_unref(c);
    op->c = NULL;
    hcsb__garun_free(op);
    return;
  }
  if (status != 0) {
    hcsb__ga_status_text(status, st, sizeof st);
    hcsb__garun_reason(op->log, out, status, why, sizeof why);
    hcsb__ga_stale(g, c->id);
    create_fail(op, HCSB_E_FAIL,
                "failed to create container: failed to run runc create/exec "
                "call for container %s with %s: %s",
                c->id, st, why);
    return;
  }
  r = hcsb__grunc_read_pid(op->pid_file, &pid);
  if (r < 0) {
    hcsb__ga_stale(g, c->id);
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
      hcsb__ga_stale(g, c->id);
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
  g->retained -= c->cost; /* the table counts it from here */
  hcsb__gctr_insert(c);   /* the op's reference becomes the table's */
  op->c = NULL;
  hcsb__glog(g, 1, "container %s created by runc, init %d", c->id, (int)pid);
  hcsb__greply_begin(&w, 0, op->call.aid);
  hcsb__gjw_u64(&w, "SelectedProtocolVersion", 0);
  hcsb__greply_finish(g, &op->call, &w);
  hcsb__garun_free(op);
}

/* Writes the adapted spec and the /etc files; 0 or answers and -1. */
static int write_bundle(hcsb__garun_t *op, hcsb__gctr_t *c) {
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
  r = hcsb__ga_mkdir_p(x->rootdir, 0755, NULL);
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
      p = hcsb__ga_path_join(x->rootdir, names[i]);
      r = text == NULL || p == NULL ? -ENOMEM
                                    : hcsb__gspec_write(p, text, strlen(text));
      if (r == 0) x->files |= 1u << i;
      free(text);
      free(p);
    }
  }
  if (r == 0) r = hcsb__ga_mkdir_p(c->bundle, 0700, &x->made_bundle);
  if (r == 0) {
    json = json_object_to_json_string_ext(
        spec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    p = hcsb__ga_path_join(c->bundle, "config.json");
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
    hcsb__ga_mkdir_p(rootfs, 0755, NULL);
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
  hcsb__garun_t *op;

  x = calloc(1, sizeof *x);
  op = hcsb__garun_new(g, &r->call, c);
  k = calloc(1, sizeof *k);
  if (x == NULL || op == NULL || k == NULL ||
      (x->state = hcsb__ga_path_join(HCSB__GA_STATE_DIR, c->id)) == NULL ||
      (x->rootdir = hcsb__ga_path_join(HCSB__GA_GCS_ROOT, c->id)) == NULL ||
      (scratch[0] != '\0' && (x->scratch = strdup(scratch)) == NULL)) {
    if (x != NULL) {
      free(x->state);
      free(x->rootdir);
      free(x);
    }
    if (op != NULL) hcsb__garun_free(op);
    free(k);
    hcsb__greply_err(g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    hcsb__gctr_unref(c);
    return;
  }
  x->init_pid = -1;
  c->act = x;
  /* Its spec is held from now on, like a created container's. */
  g->retained += c->cost;
  op->log = hcsb__ga_path_join(x->state, "runc.log");
  op->pid_file = hcsb__ga_path_join(x->state, "init.pid");
  if (op->log == NULL || op->pid_file == NULL) {
    free(k);
    create_fail(op, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return;
  }
  if (!hcsb__grunc_id_ok(c->id)) {
    free(k);
    create_fail(op, HCSB_E_INVALIDARG, "invalid container id: %s", c->id);
    return;
  }
  if (a->runc == NULL) {
    free(k);
    create_fail(op, HCSB_E_FAIL,
                "failed to create container: runc is not installed in this "
                "guest (hcsb-mkuvm includes it unless --no-runc)");
    return;
  }
  /* The delete removes both recursively: they must be somewhere that
   * can only hold container state. */
  if (!hcsb__ga_state_path_ok(c->bundle) ||
      (x->scratch != NULL && !hcsb__ga_state_path_ok(x->scratch))) {
    free(k);
    create_fail(op, HCSB_E_FAIL,
                "failed to create OCIBundlePath: '%.300s': the bundle and "
                "scratch must be absolute paths below /run or /tmp, without "
                "\".\" and \"..\"",
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
  e = hcsb__ga_mkdir_p(x->state, 0700, NULL);
  if (e == 0 && x->init_tty) {
    e = hcsb__garun_console(op);
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
  e = hcsb__garun_start(op, &cmd, fds, on_created);
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
