/* Containers through runc, after their create (act-create.c), as the
 * v0.11.8 GCS runs them (hcsv2 + runtime/runc):
 *
 *   Start    (the first ExecuteProcess without OciProcess) the dialed
 *            sockets join the init's pipes or pty, then `runc start`.
 *   Exec     process.json, `runc exec -d` with pipes or a console socket;
 *            the PID from the pid file.
 *   Kill     ShutdownGraceful/Forced, SIGTERM/SIGKILL to the init:
 *            `runc kill --all ID SIG`; other signals go to the PID
 *            (container.c, as for the emulator).
 *   Delete   `runc delete`, then the scratch directory and the bundle are
 *            removed (never below a mount point: what is still mounted
 *            there makes it fail, as under the GCS).
 *
 * Container processes become our children when runc exits (we are the
 * child subreaper): the emulator's reaper, waits, relays and exit
 * notification serve them unchanged.  A container's processes for
 * ProcessList and its statistics come from its cgroup
 * (/containers/<id>).  runc's log, pid files and process.json files live
 * in /run/hcsb-guest/<id>. */
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

#define MAX_CGROUP_PIDS 65536u
#define FINAL_MS 30000u /* one runc delete --force at the session's end */

/* ------------------------------------------------------------------------ */
/* Helpers shared with act-create.c */

void hcsb__ga_stale(hcsb__guest_t *g, const char *id) {
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
void hcsb__garun_reason(const char *log, const char *out, int status, char *buf,
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

void hcsb__garun_free(hcsb__garun_t *op) {
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

hcsb__garun_t *hcsb__garun_new(hcsb__guest_t *g, const hcsb__gcall_t *call,
                               hcsb__gctr_t *c) {
  hcsb__garun_t *op = calloc(1, sizeof *op);

  if (op == NULL) return NULL;
  op->g = g;
  op->c = c;
  op->console = -1;
  op->socks[0] = op->socks[1] = op->socks[2] = -1;
  if (hcsb__gcall_copy(&op->call, call) != 0 ||
      (c->act != NULL &&
       (op->log = hcsb__ga_path_join(c->act->state, "runc.log")) == NULL)) {
    hcsb__gcall_free(&op->call);
    free(op);
    return NULL;
  }
  return op;
}

/* An op on an existing container holds a reference to it from here to
 * ctr_op_end, so the container outlives the runc command. */
static hcsb__garun_t *ctr_op_new(hcsb__guest_t *g, const hcsb__gcall_t *call,
                                 hcsb__gctr_t *c) {
  hcsb__garun_t *op = hcsb__garun_new(g, call, c);

  if (op != NULL) c->refs++;
  return op;
}

static void ctr_op_end(hcsb__garun_t *op) {
  hcsb__gctr_unref(op->c);
  hcsb__garun_free(op);
}

/* A console socket for runc, named short (sun_path is 108 bytes). */
int hcsb__garun_console(hcsb__garun_t *op) {
  int n = snprintf(op->console_path, sizeof op->console_path,
                   "%s/con-%" PRIu64 ".sock", HCSB__GA_STATE_DIR,
                   ++op->g->act->seq);
  if (n < 0 || (size_t)n >= sizeof op->console_path) return -ENAMETOOLONG;
  op->console = hcsb__grunc_console_listen(op->console_path);
  return op->console < 0 ? op->console : 0;
}

int hcsb__garun_start(hcsb__garun_t *op, const hcsb__grunc_cmd_t *cmd,
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

void hcsb__ga_remove_files(hcsb__gctr_t *c) {
  hcsb__gactr_t *x = c->act;
  static const char *const names[3] = {"hostname", "hosts", "resolv.conf"};
  char *p;
  int i;

  for (i = 0; i < 3; i++) {
    if (!(x->files & (1u << i))) continue;
    p = hcsb__ga_path_join(x->rootdir, names[i]);
    if (p != NULL) unlink(p);
    free(p);
  }
  x->files = 0;
  if (x->wrote_config) {
    p = hcsb__ga_path_join(c->bundle, "config.json");
    if (p != NULL) unlink(p);
    free(p);
    x->wrote_config = 0;
  }
}

/* ------------------------------------------------------------------------ */
/* Start and exec */

static void on_started(void *data, int status, const char *out, uint64_t seq) {
  hcsb__garun_t *op = data;
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
    hcsb__garun_reason(op->log, out, status, why, sizeof why);
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
  ctr_op_end(op);
}

static void start_init(hcsb__guest_t *g, hcsb__gctr_t *c, hcsb__gaexec_t *e) {
  hcsb__gactr_t *x = c->act;
  hcsb__grunc_cmd_t cmd;
  int fds[3] = {-2, -1, -1}, r;
  char eb[128];
  hcsb__garun_t *op;

  if (x->busy || x->init_relay == NULL) {
    hcsb__greply_errf(g, e->call, HCSB_E_FAIL,
                      x->busy ? "container %s is being started or deleted"
                              : "cannot start container %s: its init's stdio "
                                "is gone (a start failed before)",
                      c->id);
    return;
  }
  op = ctr_op_new(g, e->call, c);
  if (op == NULL) {
    hcsb__greply_err(g, e->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return;
  }
  /* The dialed sockets join the pipes or pty runc create was given. */
  op->relay = x->init_relay;
  x->init_relay = NULL;
  hcsb__grelay_attach(op->relay, e->socks);
  memset(&cmd, 0, sizeof cmd);
  cmd.op = HCSB__GRUNC_START;
  cmd.runc = g->act->runc;
  cmd.log = op->log;
  cmd.id = c->id;
  r = hcsb__garun_start(op, &cmd, fds, on_started);
  if (r < 0) {
    hcsb__greply_errf(g, &op->call, HCSB_E_FAIL, "runc start failed: %s",
                      hcsb__ga_errstr(-r, eb));
    ctr_op_end(op);
    return;
  }
  x->busy = 1;
}

static void on_execed(void *data, int status, const char *out, uint64_t seq) {
  hcsb__garun_t *op = data;
  hcsb__guest_t *g = op->g;
  hcsb__gctr_t *c = op->c;
  hcsb__gproc_t *p;
  char why[1024], st[64], eb[128];
  pid_t pid = -1;
  int r, ws, master;

  if (status == -ECANCELED) goto out;
  if (status != 0) {
    hcsb__ga_status_text(status, st, sizeof st);
    hcsb__garun_reason(op->log, out, status, why, sizeof why);
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
  ctr_op_end(op);
}

static void exec_proc(hcsb__guest_t *g, hcsb__gctr_t *c, hcsb__gaexec_t *e) {
  hcsb__gactr_t *x = c->act;
  json_object *proc;
  hcsb__grunc_cmd_t cmd;
  int fds[3] = {-2, -1, -1}, child[3] = {-1, -1, -1}, slave = -1, r = 0;
  char name[64], eb[128];
  const char *json;
  hcsb__garun_t *op;

  op = ctr_op_new(g, e->call, c);
  if (op == NULL) {
    hcsb__greply_err(g, e->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return;
  }
  memcpy(op->socks, e->socks, sizeof op->socks);
  e->socks[0] = e->socks[1] = e->socks[2] = -1;
  op->tty = e->tty;
  op->argv0 = strdup(e->argv0 != NULL ? e->argv0 : "?");
  snprintf(name, sizeof name, "exec-%" PRIu64 ".json", ++g->act->seq);
  op->process_file = hcsb__ga_path_join(x->state, name);
  snprintf(name, sizeof name, "exec-%" PRIu64 ".pid", g->act->seq);
  op->pid_file = hcsb__ga_path_join(x->state, name);
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
    r = hcsb__garun_console(op);
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
  r = hcsb__garun_start(op, &cmd, fds, on_execed);
  hcsb__grelay_discard_child_fds(child, slave);
  if (r < 0) {
    hcsb__greply_errf(g, &op->call, HCSB_E_FAIL,
                      "failed to run runc exec for container %s: %s", c->id,
                      hcsb__ga_errstr(-r, eb));
    goto fail;
  }
  return;
fail:
  ctr_op_end(op);
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
  hcsb__garun_t *op = data;
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
    hcsb__garun_reason(NULL, out, status, why, sizeof why);
    hcsb__greply_errf(op->g, &op->call, HCSB_E_FAIL,
                      "unknown runc error after kill %s: %s", st, why);
  }
out:
  ctr_op_end(op);
}

void hcsb__ga_kill(hcsb__guest_t *g, const hcsb__gcall_t *call, hcsb__gctr_t *c,
                   int sig) {
  hcsb__grunc_cmd_t cmd;
  int fds[3] = {-2, -1, -1}, r;
  char eb[128];
  hcsb__garun_t *op = ctr_op_new(g, call, c);

  if (op == NULL) {
    hcsb__greply_err(g, call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return;
  }
  op->sig = sig;
  memset(&cmd, 0, sizeof cmd);
  cmd.op = HCSB__GRUNC_KILL;
  cmd.runc = g->act->runc;
  cmd.id = c->id;
  cmd.sig = sig;
  cmd.all = sig == SIGTERM || sig == SIGKILL;
  r = hcsb__garun_start(op, &cmd, fds, on_killed);
  if (r < 0) {
    hcsb__greply_errf(g, call, HCSB_E_FAIL, "runc kill failed: %s",
                      hcsb__ga_errstr(-r, eb));
    ctr_op_end(op);
  }
}

/* ------------------------------------------------------------------------ */
/* Update */

static void on_updated(void *data, int status, const char *out, uint64_t seq) {
  hcsb__garun_t *op = data;
  char why[1024], st[64];

  (void)seq;
  if (status == -ECANCELED) {
  } else if (status == 0) {
    hcsb__greply_ok(op->g, &op->call);
  } else {
    hcsb__ga_status_text(status, st, sizeof st);
    hcsb__garun_reason(NULL, out, status, why, sizeof why);
    hcsb__greply_errf(op->g, &op->call, HCSB_E_FAIL,
                      "runc update request failed with %s: %s", st, why);
  }
  ctr_op_end(op);
}

void hcsb__ga_update(hcsb__greq_t *r, hcsb__gctr_t *c, json_object *settings) {
  json_object *res = hcsb__json_get(settings, "Linux");
  hcsb__grunc_cmd_t cmd;
  int fds[3] = {-2, -1, -1}, e;
  char name[64], eb[128];
  const char *json;
  hcsb__garun_t *op;

  if (res == NULL || json_object_is_type(res, json_type_null)) {
    hcsb__greply_ok(r->g, &r->call);
    return;
  }
  if (!json_object_is_type(res, json_type_object)) {
    hcsb__gmodify_fail(r, HCSB_E_VMCOMPUTE_INVALID_JSON,
                       "failed to unmarshal settings as "
                       "ContainerConstraintsV2: HRESULT 0xc037010d: json: "
                       "cannot unmarshal a non-object into Go struct field "
                       "LCOWContainerConstraints.Linux of type "
                       "specs.LinuxResources");
    return;
  }
  op = ctr_op_new(r->g, &r->call, c);
  if (op == NULL) {
    hcsb__greply_err(r->g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return;
  }
  snprintf(name, sizeof name, "update-%" PRIu64 ".json", ++r->g->act->seq);
  op->process_file = hcsb__ga_path_join(c->act->state, name);
  json = json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN);
  e = op->process_file == NULL || json == NULL
          ? -ENOMEM
          : hcsb__gspec_write(op->process_file, json, strlen(json));
  if (e == 0) {
    memset(&cmd, 0, sizeof cmd);
    cmd.op = HCSB__GRUNC_UPDATE;
    cmd.runc = r->g->act->runc;
    cmd.id = c->id;
    cmd.process = op->process_file;
    e = hcsb__garun_start(op, &cmd, fds, on_updated);
  }
  if (e < 0) {
    hcsb__greply_errf(r->g, &r->call, HCSB_E_FAIL, "runc update failed: %s",
                      hcsb__ga_errstr(-e, eb));
    ctr_op_end(op);
  }
}

/* ------------------------------------------------------------------------ */
/* Delete */

/* The scratch, the bundle and runc's files of a container runc forgot.
 * The first failure is in err (empty when none). */
static void remove_state(hcsb__gctr_t *c, char *err, size_t esize) {
  hcsb__gactr_t *x = c->act;
  char e2[1024], ignored[8];

  err[0] = '\0';
  hcsb__ga_remove_files(c);
  if (x->scratch != NULL) hcsb__ga_rm_tree(x->scratch, err, esize);
  if (c->bundle[0] != '\0' && hcsb__ga_rm_tree(c->bundle, e2, sizeof e2) < 0 &&
      err[0] == '\0')
    snprintf(err, esize, "%s", e2);
  if (strcmp(x->rootdir, c->bundle) != 0) rmdir(x->rootdir);
  hcsb__ga_rm_tree(x->state, ignored, sizeof ignored);
}

static void on_deleted(void *data, int status, const char *out, uint64_t seq) {
  hcsb__garun_t *op = data;
  hcsb__guest_t *g = op->g;
  hcsb__gctr_t *c = op->c;
  hcsb__gproc_t *p, *next;
  char why[1024] = "", rm[1024], st[64];

  (void)seq;
  c->act->busy = 0;
  if (status == -ECANCELED) goto out;
  if (status != 0) {
    hcsb__ga_status_text(status, st, sizeof st);
    hcsb__garun_reason(op->log, out, status, why, sizeof why);
    hcsb__ga_stale(g, c->id);
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
  ctr_op_end(op);
}

void hcsb__ga_delete(hcsb__greq_t *r, hcsb__gctr_t *c) {
  hcsb__guest_t *g = r->g;
  hcsb__grunc_cmd_t cmd;
  int fds[3] = {-2, -1, -1}, e;
  char eb[128];
  hcsb__garun_t *op;

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
  op = ctr_op_new(g, &r->call, c);
  if (op == NULL) {
    hcsb__greply_err(g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return;
  }
  memset(&cmd, 0, sizeof cmd);
  cmd.op = HCSB__GRUNC_DELETE;
  cmd.runc = g->act->runc;
  cmd.log = op->log;
  cmd.id = c->id;
  e = hcsb__garun_start(op, &cmd, fds, on_deleted);
  if (e < 0) {
    hcsb__greply_errf(g, &r->call, HCSB_E_FAIL, "runc delete failed: %s",
                      hcsb__ga_errstr(-e, eb));
    ctr_op_end(op);
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
