/* containerd.task.v2.Task: the 17 methods, each a thin layer between the
 * ttrpc call (server.h) and the task layer (task.h), and the events
 * containerd expects (events.h).
 *
 * One shim serves one task, or a pod: the sandbox container and the
 * containers whose spec names it (CRI annotations), all in one utility VM
 * (sandbox.h), started by the first Create (containerd sends it right
 * after `start`, so booting earlier would gain nothing, and a shim that
 * never gets a task never boots a VM).  Shutdown exits once no task is
 * left.
 *
 * Every failure is answered with one grpc code: the library's outcomes
 * through hcsb__shim_reply_status (grpc.h's table), the task layer's
 * refusals through hcsb__shim_grpc_code of their errno, with the state
 * machine's message. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "events.pb-c.h"
#include "shim.pb-c.h"
#include "shim/cgmetrics.h"
#include "shim/log.h"
#include "shim/shim.h"
#include "shim/task.h"

#define TASK_SERVICE "containerd.task.v2.Task"
#define PROCESS_SPEC_URL \
  "types.containerd.io/opencontainers/runtime-spec/1/Process"
#define RESOURCES_URL \
  "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"

typedef struct entry_s {
  struct entry_s *next;
  hcsb__task_t *t;
} entry_t;

typedef struct svc_s {
  hcsb__shim_t *shim;
  hcsb__sandbox_t *sandbox;
  char sandbox_error[256];
  hcsb__task_env_t env;
  entry_t *tasks;
  int exiting;
} svc_t;

static svc_t *svc_of(void *data) {
  return data;
}

static void teardown(svc_t *s);

/* ------------------------------------------------------------------------ */
/* Helpers */

static entry_t **find_entry(svc_t *s, const char *id) {
  entry_t **e;

  for (e = &s->tasks; *e != NULL; e = &(*e)->next)
    if (strcmp(hcsb__task_id((*e)->t), id) == 0) return e;
  return NULL;
}

static hcsb__task_t *find_task(svc_t *s, const char *id) {
  entry_t **e = id != NULL ? find_entry(s, id) : NULL;

  return e != NULL ? (*e)->t : NULL;
}

static size_t ntasks(const svc_t *s) {
  size_t n = 0;
  const entry_t *e;

  for (e = s->tasks; e != NULL; e = e->next) n++;
  return n;
}

/* The task and process a request names, or a NOT_FOUND reply. */
static hcsb__tproc_t *lookup(svc_t *s, hcsb__shim_call_t *call, const char *id,
                             const char *exec_id, hcsb__task_t **tp) {
  hcsb__task_t *t = find_task(s, id);
  hcsb__tproc_t *p;

  if (t == NULL) {
    hcsb__shim_reply_error(call, HCSB__GRPC_NOT_FOUND, "task %s not found",
                           id != NULL ? id : "");
    return NULL;
  }
  p = hcsb__task_proc(t, exec_id);
  if (p == NULL) {
    hcsb__shim_reply_error(call, HCSB__GRPC_NOT_FOUND,
                           "exec %s of task %s not found", exec_id, id);
    return NULL;
  }
  if (tp != NULL) *tp = t;
  return p;
}

/* A refusal: the errno's code, the message as it is. */
static void refuse(hcsb__shim_call_t *call, int r, const char *msg) {
  hcsb__shim_reply_error(call, hcsb__shim_grpc_code(r, NULL), "%s",
                         msg != NULL ? msg : hcsb_strerror(r));
}

/* The task layer's outcome, the callback side. */
static void on_done_empty(void *data, int status,
                          const hcsb_guest_error_t *gerr, const char *msg) {
  hcsb__shim_call_t *call = data;

  if (status == 0)
    hcsb__shim_reply_ok(call, NULL);
  else
    hcsb__shim_reply_status(call, status, gerr, "%s", msg ? msg : "failed");
}

static Google__Protobuf__Timestamp *timestamp(Google__Protobuf__Timestamp *ts,
                                              const struct timespec *t) {
  Google__Protobuf__Timestamp init = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

  *ts = init;
  if (t->tv_sec == 0 && t->tv_nsec == 0) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    ts->seconds = now.tv_sec;
    ts->nanos = (int32_t)now.tv_nsec;
  } else {
    ts->seconds = t->tv_sec;
    ts->nanos = (int32_t)t->tv_nsec;
  }
  return ts;
}

/* exited_at: containerd reads an unset one as the zero time; a process
 * still running has none. */
static Google__Protobuf__Timestamp *exited_at(Google__Protobuf__Timestamp *ts,
                                              const hcsb__proc_t *st) {
  if (st->state != HCSB__PS_STOPPED && st->state != HCSB__PS_DELETED)
    return NULL;
  return timestamp(ts, &st->exited_at);
}

static void publish(svc_t *s, const char *topic, const ProtobufCMessage *ev) {
  int r = hcsb__shim_publish(s->shim->events, topic, ev);

  if (r != 0) SHIM_WARN("event %s not published: %s", topic, hcsb_strerror(r));
}

/* ------------------------------------------------------------------------ */
/* Hooks from the task layer */

static void on_exited(void *data, hcsb__task_t *t, hcsb__tproc_t *p) {
  svc_t *s = data;
  const hcsb__proc_t *st = hcsb__tproc_state(p);
  Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;
  Google__Protobuf__Timestamp ts;
  const char *exec_id = hcsb__tproc_exec_id(p);

  ev.container_id = (char *)hcsb__task_id(t);
  ev.id = (char *)(exec_id[0] != '\0' ? exec_id : hcsb__task_id(t));
  ev.pid = st->pid;
  ev.exit_status = st->exit_status;
  ev.exited_at = timestamp(&ts, &st->exited_at);
  publish(s, "/tasks/exit", &ev.base);
}

static void on_oom(void *data, hcsb__task_t *t) {
  Containerd__Events__TaskOOM ev = CONTAINERD__EVENTS__TASK_OOM__INIT;

  ev.container_id = (char *)hcsb__task_id(t);
  publish(data, "/tasks/oom", &ev.base);
}

static void on_sandbox_lost(void *data, hcsb__sandbox_t *sb, const char *why) {
  (void)data;
  (void)sb;
  SHIM_ERROR("the utility VM is gone (%s): its tasks' processes end", why);
}

/* A pod member's sandbox: a task of this shim, running. */
static int sandbox_pid(void *data, const char *sandbox_id, uint32_t *pid,
                       const char **msg) {
  svc_t *s = data;
  hcsb__task_t *t = find_task(s, sandbox_id);
  const hcsb__proc_t *st;

  if (t == NULL) {
    *msg = "not served by this shim (start the pod's sandbox first)";
    return -ENOENT;
  }
  st = hcsb__tproc_state(hcsb__task_init(t));
  if (st->state != HCSB__PS_RUNNING) {
    *msg = "its init is not running";
    return -EBUSY;
  }
  *pid = st->pid;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Create */

/* The shim's one guest, started by the first Create.  0, or the error
 * that Creates are then refused with (in s->sandbox_error). */
static int ensure_sandbox(svc_t *s) {
  char console[4200];
  int r;

  if (s->sandbox_error[0] != '\0') return -EIO; /* it failed before */
  snprintf(console, sizeof console, "%s/hcsb-console.log", s->shim->bundle);
  r = hcsb__sandbox_start(s->shim->loop, s->shim->config, s->shim->state,
                          console, &s->sandbox);
  if (r != 0) {
    snprintf(s->sandbox_error, sizeof s->sandbox_error,
             "the guest could not be started: %s", hcsb_strerror(r));
    SHIM_ERROR("%s", s->sandbox_error);
    s->sandbox = NULL;
    return r;
  }
  hcsb__sandbox_set_lost_cb(s->sandbox, on_sandbox_lost, s);
  s->env.sandbox = s->sandbox;
  return 0;
}

typedef struct create_call_s {
  svc_t *s;
  hcsb__shim_call_t *call;
  const Containerd__Task__V2__CreateTaskRequest *req;
  hcsb__task_t *t;
} create_call_t;

static void drop_task(svc_t *s, hcsb__task_t *t) {
  entry_t **e = find_entry(s, hcsb__task_id(t));

  if (e != NULL && (*e)->t == t) {
    entry_t *dead = *e;
    *e = dead->next;
    free(dead);
  }
  hcsb__task_free(t);
}

static void on_created(void *data, int status, const hcsb_guest_error_t *gerr,
                       const char *msg) {
  create_call_t *cc = data;
  const Containerd__Task__V2__CreateTaskRequest *req = cc->req;
  Containerd__Task__V2__CreateTaskResponse resp =
      CONTAINERD__TASK__V2__CREATE_TASK_RESPONSE__INIT;
  Containerd__Events__TaskCreate ev = CONTAINERD__EVENTS__TASK_CREATE__INIT;
  Containerd__Events__TaskIO io = CONTAINERD__EVENTS__TASK_IO__INIT;

  if (status != 0) {
    SHIM_ERROR("create of task %s failed: %s", req->id, msg ? msg : "");
    hcsb__shim_reply_status(cc->call, status, gerr, "%s", msg ? msg : "create");
    drop_task(cc->s, cc->t);
    free(cc);
    return;
  }
  ev.container_id = req->id;
  ev.bundle = req->bundle;
  ev.n_rootfs = req->n_rootfs;
  ev.rootfs = req->rootfs;
  io.stdin = req->stdin;
  io.stdout = req->stdout;
  io.stderr = req->stderr;
  io.terminal = req->terminal;
  ev.io = &io;
  ev.checkpoint = req->checkpoint;
  ev.pid = 0; /* the init runs from Start on */
  publish(cc->s, "/tasks/create", &ev.base);
  hcsb__shim_reply_ok(cc->call, &resp.base);
  free(cc);
}

static void h_create(hcsb__shim_call_t *call, const ProtobufCMessage *m,
                     void *data) {
  svc_t *s = svc_of(data);
  const Containerd__Task__V2__CreateTaskRequest *req = (const void *)m;
  hcsb__task_create_t tc;
  hcsb__mount_t *mounts = NULL;
  create_call_t *cc;
  entry_t *e;
  const char *msg = NULL;
  size_t i;
  int r;

  if (s->sandbox == NULL && ensure_sandbox(s) != 0) {
    hcsb__shim_reply_error(call, HCSB__GRPC_FAILED_PRECONDITION,
                           "no guest to run the task in: %s", s->sandbox_error);
    return;
  }
  if (req->id[0] == '\0' || find_task(s, req->id) != NULL) {
    hcsb__shim_reply_error(call,
                           req->id[0] == '\0' ? HCSB__GRPC_INVALID_ARGUMENT
                                              : HCSB__GRPC_ALREADY_EXISTS,
                           "task %s: %s", req->id,
                           req->id[0] == '\0' ? "no ID" : "exists already");
    return;
  }
  if (req->checkpoint[0] != '\0') {
    hcsb__shim_reply_error(call, HCSB__GRPC_UNIMPLEMENTED,
                           "restoring from a checkpoint is not supported by "
                           "the hcsb shim");
    return;
  }
  memset(&tc, 0, sizeof(tc));
  tc.id = req->id;
  tc.bundle = req->bundle;
  tc.terminal = req->terminal;
  tc.stdin_path = req->stdin;
  tc.stdout_path = req->stdout;
  tc.stderr_path = req->stderr;
  if (req->n_rootfs > 0) {
    mounts = calloc(req->n_rootfs, sizeof(*mounts));
    if (mounts == NULL) {
      refuse(call, -ENOMEM, NULL);
      return;
    }
    for (i = 0; i < req->n_rootfs; i++) {
      mounts[i].type = req->rootfs[i]->type;
      mounts[i].source = req->rootfs[i]->source;
      mounts[i].target = req->rootfs[i]->target;
      mounts[i].options = (const char *const *)req->rootfs[i]->options;
      mounts[i].noptions = req->rootfs[i]->n_options;
    }
  }
  tc.rootfs = mounts;
  tc.nrootfs = req->n_rootfs;
  cc = calloc(1, sizeof(*cc));
  e = calloc(1, sizeof(*e));
  if (cc == NULL || e == NULL) {
    free(cc);
    free(e);
    free(mounts);
    refuse(call, -ENOMEM, NULL);
    return;
  }
  cc->s = s;
  cc->call = call;
  cc->req = req;
  r = hcsb__task_create(&s->env, &tc, on_created, cc, &cc->t, &msg);
  free(mounts); /* the plan copied what it needs */
  if (r != 0) {
    free(cc);
    free(e);
    SHIM_ERROR("create of task %s refused: %s", req->id, msg ? msg : "");
    refuse(call, r, msg);
    return;
  }
  e->t = cc->t;
  e->next = s->tasks;
  s->tasks = e;
  SHIM_INFO("task %s: creating (bundle %s, %zu rootfs mount(s))", req->id,
            req->bundle, req->n_rootfs);
}

/* ------------------------------------------------------------------------ */
/* Start */

typedef struct pcall_s {
  svc_t *s;
  hcsb__shim_call_t *call;
  hcsb__task_t *t;
  hcsb__tproc_t *p;
  hcsb__twait_t *wait;
} pcall_t;

static pcall_t *pcall_new(svc_t *s, hcsb__shim_call_t *call, hcsb__task_t *t,
                          hcsb__tproc_t *p) {
  pcall_t *pc = calloc(1, sizeof(*pc));

  if (pc == NULL) {
    refuse(call, -ENOMEM, NULL);
    return NULL;
  }
  pc->s = s;
  pc->call = call;
  pc->t = t;
  pc->p = p;
  return pc;
}

static void on_started(void *data, int status, const hcsb_guest_error_t *gerr,
                       const char *msg) {
  pcall_t *pc = data;
  const hcsb__proc_t *st = hcsb__tproc_state(pc->p);
  const char *exec_id = hcsb__tproc_exec_id(pc->p);
  Containerd__Task__V2__StartResponse resp =
      CONTAINERD__TASK__V2__START_RESPONSE__INIT;

  if (status != 0) {
    hcsb__shim_reply_status(pc->call, status, gerr, "%s", msg ? msg : "start");
    free(pc);
    return;
  }
  resp.pid = st->pid;
  if (exec_id[0] == '\0') {
    Containerd__Events__TaskStart ev = CONTAINERD__EVENTS__TASK_START__INIT;
    ev.container_id = (char *)hcsb__task_id(pc->t);
    ev.pid = st->pid;
    publish(pc->s, "/tasks/start", &ev.base);
    if (pc->s->shim->state != NULL &&
        strcmp(hcsb__task_id(pc->t), pc->s->shim->id) == 0)
      hcsb__shim_state_set_task_pid(pc->s->shim->state, (pid_t)st->pid);
  } else {
    Containerd__Events__TaskExecStarted ev =
        CONTAINERD__EVENTS__TASK_EXEC_STARTED__INIT;
    ev.container_id = (char *)hcsb__task_id(pc->t);
    ev.exec_id = (char *)exec_id;
    ev.pid = st->pid;
    publish(pc->s, "/tasks/exec-started", &ev.base);
  }
  hcsb__shim_reply_ok(pc->call, &resp.base);
  free(pc);
}

static void h_start(hcsb__shim_call_t *call, const ProtobufCMessage *m,
                    void *data) {
  svc_t *s = svc_of(data);
  const Containerd__Task__V2__StartRequest *req = (const void *)m;
  hcsb__task_t *t;
  hcsb__tproc_t *p = lookup(s, call, req->id, req->exec_id, &t);
  pcall_t *pc;
  const char *msg = NULL;
  int r;

  if (p == NULL || (pc = pcall_new(s, call, t, p)) == NULL) return;
  r = hcsb__tproc_start(p, on_started, pc, &msg);
  if (r != 0) {
    free(pc);
    refuse(call, r, msg);
  }
}

/* ------------------------------------------------------------------------ */
/* Wait */

static void on_wait_gone(hcsb__shim_call_t *call, void *data) {
  pcall_t *pc = data;

  hcsb__twait_cancel(pc->wait);
  hcsb__shim_reply_error(call, HCSB__GRPC_CANCELLED, "the client went away");
  free(pc);
}

static void on_waited(void *data, hcsb__tproc_t *p) {
  pcall_t *pc = data;
  Containerd__Task__V2__WaitResponse resp =
      CONTAINERD__TASK__V2__WAIT_RESPONSE__INIT;
  Google__Protobuf__Timestamp ts;

  hcsb__shim_call_on_gone(pc->call, NULL, NULL);
  if (p == NULL) {
    hcsb__shim_reply_error(pc->call, HCSB__GRPC_UNAVAILABLE,
                           "the shim is shutting down");
  } else {
    resp.exit_status = hcsb__tproc_state(p)->exit_status;
    resp.exited_at = timestamp(&ts, &hcsb__tproc_state(p)->exited_at);
    hcsb__shim_reply_ok(pc->call, &resp.base);
  }
  free(pc);
}

static void h_wait(hcsb__shim_call_t *call, const ProtobufCMessage *m,
                   void *data) {
  svc_t *s = svc_of(data);
  const Containerd__Task__V2__WaitRequest *req = (const void *)m;
  hcsb__task_t *t;
  hcsb__tproc_t *p = lookup(s, call, req->id, req->exec_id, &t);
  pcall_t *pc;
  int r;

  if (p == NULL || (pc = pcall_new(s, call, t, p)) == NULL) return;
  r = hcsb__tproc_wait(p, on_waited, pc, &pc->wait);
  if (r != 0) {
    free(pc);
    refuse(call, r, "cannot wait for the process");
    return;
  }
  hcsb__shim_call_on_gone(call, on_wait_gone, pc);
}

/* ------------------------------------------------------------------------ */
/* State */

static void h_state(hcsb__shim_call_t *call, const ProtobufCMessage *m,
                    void *data) {
  svc_t *s = svc_of(data);
  const Containerd__Task__V2__StateRequest *req = (const void *)m;
  hcsb__task_t *t;
  hcsb__tproc_t *p = lookup(s, call, req->id, req->exec_id, &t);
  Containerd__Task__V2__StateResponse resp =
      CONTAINERD__TASK__V2__STATE_RESPONSE__INIT;
  Google__Protobuf__Timestamp ts;
  const hcsb__proc_t *st;
  const char *in, *out, *err;

  if (p == NULL) return;
  st = hcsb__tproc_state(p);
  hcsb__tproc_stdio(p, &in, &out, &err);
  resp.id = (char *)(req->exec_id[0] != '\0' ? req->exec_id : req->id);
  resp.exec_id = req->exec_id;
  resp.bundle = (char *)hcsb__task_bundle(t);
  resp.pid = st->pid;
  resp.status =
      (Containerd__V1__Types__Status)hcsb__pstate_task_status(st->state);
  resp.stdin = (char *)in;
  resp.stdout = (char *)out;
  resp.stderr = (char *)err;
  resp.terminal = hcsb__tproc_terminal(p);
  resp.exit_status = st->exit_status;
  resp.exited_at = exited_at(&ts, st);
  hcsb__shim_reply_ok(call, &resp.base);
}

/* ------------------------------------------------------------------------ */
/* Delete */

static void on_deleted(void *data, int status, const hcsb_guest_error_t *gerr,
                       const char *msg) {
  pcall_t *pc = data;
  const hcsb__proc_t *st = hcsb__tproc_state(pc->p);
  Containerd__Task__V2__DeleteResponse resp =
      CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
  Google__Protobuf__Timestamp ts;
  int init = pc->p == hcsb__task_init(pc->t);

  if (status != 0) {
    hcsb__shim_reply_status(pc->call, status, gerr, "%s", msg ? msg : "delete");
    free(pc);
    return;
  }
  resp.pid = st->pid;
  resp.exit_status = st->exit_status;
  resp.exited_at = timestamp(&ts, &st->exited_at);
  if (init) {
    Containerd__Events__TaskDelete ev = CONTAINERD__EVENTS__TASK_DELETE__INIT;
    ev.container_id = (char *)hcsb__task_id(pc->t);
    ev.pid = st->pid;
    ev.exit_status = st->exit_status;
    ev.exited_at = resp.exited_at;
    publish(pc->s, "/tasks/delete", &ev.base);
  }
  hcsb__shim_reply_ok(pc->call, &resp.base);
  if (init) {
    SHIM_INFO("task %s: deleted", hcsb__task_id(pc->t));
    drop_task(pc->s, pc->t);
  }
  free(pc);
}

static void h_delete(hcsb__shim_call_t *call, const ProtobufCMessage *m,
                     void *data) {
  svc_t *s = svc_of(data);
  const Containerd__Task__V2__DeleteRequest *req = (const void *)m;
  hcsb__task_t *t;
  hcsb__tproc_t *p = lookup(s, call, req->id, req->exec_id, &t);
  pcall_t *pc;
  const char *msg = NULL;
  int r;

  if (p == NULL || (pc = pcall_new(s, call, t, p)) == NULL) return;
  r = hcsb__tproc_delete(p, on_deleted, pc, &msg);
  if (r != 0) {
    free(pc);
    refuse(call, r, msg);
  }
}

/* ------------------------------------------------------------------------ */
/* Exec, Kill, ResizePty, CloseIO */

static void h_exec(hcsb__shim_call_t *call, const ProtobufCMessage *m,
                   void *data) {
  svc_t *s = svc_of(data);
  const Containerd__Task__V2__ExecProcessRequest *req = (const void *)m;
  hcsb__task_t *t = find_task(s, req->id);
  Containerd__Events__TaskExecAdded ev =
      CONTAINERD__EVENTS__TASK_EXEC_ADDED__INIT;
  const char *msg = NULL;
  int r;

  if (t == NULL) {
    hcsb__shim_reply_error(call, HCSB__GRPC_NOT_FOUND, "task %s not found",
                           req->id);
    return;
  }
  if (req->spec == NULL || strcmp(req->spec->type_url, PROCESS_SPEC_URL) != 0) {
    hcsb__shim_reply_error(call, HCSB__GRPC_INVALID_ARGUMENT,
                           "exec %s: the spec must be an OCI Process (%s)",
                           req->exec_id, PROCESS_SPEC_URL);
    return;
  }
  r = hcsb__task_exec(t, req->exec_id, (const char *)req->spec->value.data,
                      req->spec->value.len, req->terminal, req->stdin,
                      req->stdout, req->stderr, &msg);
  if (r != 0) {
    refuse(call, r, msg);
    return;
  }
  ev.container_id = req->id;
  ev.exec_id = req->exec_id;
  publish(s, "/tasks/exec-added", &ev.base);
  hcsb__shim_reply_ok(call, NULL);
}

static void h_kill(hcsb__shim_call_t *call, const ProtobufCMessage *m,
                   void *data) {
  svc_t *s = svc_of(data);
  const Containerd__Task__V2__KillRequest *req = (const void *)m;
  hcsb__tproc_t *p = lookup(s, call, req->id, req->exec_id, NULL);
  const char *msg = NULL;
  int r;

  if (p == NULL) return;
  r = hcsb__tproc_kill(p, req->signal, req->all, on_done_empty, call, &msg);
  if (r != 0) refuse(call, r, msg);
}

static void h_resize(hcsb__shim_call_t *call, const ProtobufCMessage *m,
                     void *data) {
  svc_t *s = svc_of(data);
  const Containerd__Task__V2__ResizePtyRequest *req = (const void *)m;
  hcsb__tproc_t *p = lookup(s, call, req->id, req->exec_id, NULL);
  const char *msg = NULL;
  int r;

  if (p == NULL) return;
  r = hcsb__tproc_resize(p, req->width, req->height, on_done_empty, call, &msg);
  if (r != 0) refuse(call, r, msg);
}

static void h_closeio(hcsb__shim_call_t *call, const ProtobufCMessage *m,
                      void *data) {
  svc_t *s = svc_of(data);
  const Containerd__Task__V2__CloseIORequest *req = (const void *)m;
  hcsb__tproc_t *p = lookup(s, call, req->id, req->exec_id, NULL);
  const char *msg = NULL;
  int r = 0;

  if (p == NULL) return;
  if (req->stdin) r = hcsb__tproc_close_stdin(p, &msg);
  if (r != 0)
    refuse(call, r, msg);
  else
    hcsb__shim_reply_ok(call, NULL);
}

/* ------------------------------------------------------------------------ */
/* Pids, Stats, Update */

static void on_pids(void *data, int status, const hcsb_guest_error_t *gerr,
                    const char *msg, const hcsb_properties_t *props) {
  hcsb__shim_call_t *call = data;
  Containerd__Task__V2__PidsResponse resp =
      CONTAINERD__TASK__V2__PIDS_RESPONSE__INIT;
  Containerd__V1__Types__ProcessInfo *infos = NULL, **v = NULL;
  size_t i, n;

  if (status != 0) {
    hcsb__shim_reply_status(call, status, gerr, "%s", msg);
    return;
  }
  n = props->has_process_list ? props->nprocesses : 0;
  if (n > 0) {
    infos = calloc(n, sizeof(*infos));
    v = calloc(n, sizeof(*v));
    if (infos == NULL || v == NULL) {
      free(infos);
      free(v);
      refuse(call, -ENOMEM, NULL);
      return;
    }
  }
  for (i = 0; i < n; i++) {
    Containerd__V1__Types__ProcessInfo init =
        CONTAINERD__V1__TYPES__PROCESS_INFO__INIT;
    infos[i] = init;
    infos[i].pid = props->processes[i].process_id;
    v[i] = &infos[i];
  }
  resp.n_processes = n;
  resp.processes = v;
  hcsb__shim_reply_ok(call, &resp.base);
  free(infos);
  free(v);
}

static void on_stats(void *data, int status, const hcsb_guest_error_t *gerr,
                     const char *msg, const hcsb_properties_t *props) {
  hcsb__shim_call_t *call = data;
  Containerd__Task__V2__StatsResponse resp =
      CONTAINERD__TASK__V2__STATS_RESPONSE__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  uint8_t *bytes = NULL;
  size_t len = 0;
  int r;

  if (status != 0) {
    hcsb__shim_reply_status(call, status, gerr, "%s", msg);
    return;
  }
  r = hcsb__cgmetrics_pack(props->metrics, &bytes, &len);
  if (r != 0) {
    refuse(call, r, "cannot pack the metrics");
    return;
  }
  any.type_url = (char *)HCSB__CGMETRICS_TYPE_URL;
  any.value.data = bytes;
  any.value.len = len;
  resp.stats = &any;
  hcsb__shim_reply_ok(call, &resp.base);
  free(bytes);
}

static void query(svc_t *s, hcsb__shim_call_t *call, const char *id,
                  unsigned types, hcsb__task_props_cb cb) {
  hcsb__task_t *t = find_task(s, id);
  const char *msg = NULL;
  int r;

  if (t == NULL) {
    hcsb__shim_reply_error(call, HCSB__GRPC_NOT_FOUND, "task %s not found", id);
    return;
  }
  r = hcsb__task_properties(t, types, cb, call, &msg);
  if (r != 0) refuse(call, r, msg);
}

static void h_pids(hcsb__shim_call_t *call, const ProtobufCMessage *m,
                   void *data) {
  const Containerd__Task__V2__PidsRequest *req = (const void *)m;

  query(svc_of(data), call, req->id, HCSB_PROPERTY_PROCESS_LIST, on_pids);
}

static void h_stats(hcsb__shim_call_t *call, const ProtobufCMessage *m,
                    void *data) {
  const Containerd__Task__V2__StatsRequest *req = (const void *)m;

  query(svc_of(data), call, req->id, HCSB_PROPERTY_STATISTICS, on_stats);
}

static void h_update(hcsb__shim_call_t *call, const ProtobufCMessage *m,
                     void *data) {
  svc_t *s = svc_of(data);
  const Containerd__Task__V2__UpdateTaskRequest *req = (const void *)m;
  hcsb__task_t *t = find_task(s, req->id);
  const char *msg = NULL;
  int r;

  if (t == NULL) {
    hcsb__shim_reply_error(call, HCSB__GRPC_NOT_FOUND, "task %s not found",
                           req->id);
    return;
  }
  if (req->resources == NULL ||
      strcmp(req->resources->type_url, RESOURCES_URL) != 0) {
    hcsb__shim_reply_error(call, HCSB__GRPC_INVALID_ARGUMENT,
                           "update of %s: the resources must be OCI "
                           "LinuxResources (%s)",
                           req->id, RESOURCES_URL);
    return;
  }
  r = hcsb__task_update(t, (const char *)req->resources->value.data,
                        req->resources->value.len, on_done_empty, call, &msg);
  if (r != 0) refuse(call, r, msg);
}

/* ------------------------------------------------------------------------ */
/* Pause, Resume, Checkpoint: the Linux GCS has no such requests */

static void h_unsupported(hcsb__shim_call_t *call, const ProtobufCMessage *m,
                          void *data) {
  (void)m;
  (void)data;
  hcsb__shim_reply_error(call, HCSB__GRPC_UNIMPLEMENTED,
                         "%s is not supported by the hcsb shim: the utility "
                         "VM's guest (GCS) has no such operation",
                         hcsb__shim_call_method(call));
}

/* ------------------------------------------------------------------------ */
/* Connect, Shutdown */

static void h_connect(hcsb__shim_call_t *call, const ProtobufCMessage *m,
                      void *data) {
  svc_t *s = svc_of(data);
  const Containerd__Task__V2__ConnectRequest *req = (const void *)m;
  hcsb__task_t *t = find_task(s, req->id);
  Containerd__Task__V2__ConnectResponse resp =
      CONTAINERD__TASK__V2__CONNECT_RESPONSE__INIT;

  resp.shim_pid = (uint32_t)getpid();
  resp.task_pid = t != NULL ? hcsb__tproc_state(hcsb__task_init(t))->pid : 0;
  resp.version = (char *)"hcsb " HCSB_VERSION_STRING;
  hcsb__shim_reply_ok(call, &resp.base);
}

static void on_sandbox_closed(void *data) {
  svc_t *s = data;

  s->sandbox = NULL;
  hcsb__shim_exit(s->shim, 0);
}

/* Frees every task, closes the VM, then exits. */
static void teardown(svc_t *s) {
  entry_t *e;

  if (s->exiting) return;
  s->exiting = 1;
  while ((e = s->tasks) != NULL) {
    s->tasks = e->next;
    hcsb__task_free(e->t);
    free(e);
  }
  if (s->sandbox != NULL)
    hcsb__sandbox_close(s->sandbox, on_sandbox_closed, s);
  else
    hcsb__shim_exit(s->shim, 0);
}

static void h_shutdown(hcsb__shim_call_t *call, const ProtobufCMessage *m,
                       void *data) {
  svc_t *s = svc_of(data);
  const Containerd__Task__V2__ShutdownRequest *req = (const void *)m;

  if (ntasks(s) > 0 && !req->now) {
    /* A pod's shim: other tasks still run here. */
    hcsb__shim_reply_ok(call, NULL);
    return;
  }
  SHIM_INFO("shutting down%s", ntasks(s) > 0 ? " (now)" : "");
  hcsb__shim_call_drop(call); /* containerd never sees it answered */
  teardown(s);
}

/* ------------------------------------------------------------------------ */

#define M(name, msg, fn) \
  { TASK_SERVICE, name, &containerd__task__v2__##msg##__descriptor, fn }

static const hcsb__shim_method_t methods[] = {
    M("State", state_request, h_state),
    M("Create", create_task_request, h_create),
    M("Start", start_request, h_start),
    M("Delete", delete_request, h_delete),
    M("Pids", pids_request, h_pids),
    M("Pause", pause_request, h_unsupported),
    M("Resume", resume_request, h_unsupported),
    M("Checkpoint", checkpoint_task_request, h_unsupported),
    M("Kill", kill_request, h_kill),
    M("Exec", exec_process_request, h_exec),
    M("ResizePty", resize_pty_request, h_resize),
    M("CloseIO", close_iorequest, h_closeio),
    M("Update", update_task_request, h_update),
    M("Wait", wait_request, h_wait),
    M("Stats", stats_request, h_stats),
    M("Connect", connect_request, h_connect),
    M("Shutdown", shutdown_request, h_shutdown),
};

static void on_signal(hcsb__shim_t *shim, int signum) {
  SHIM_INFO("signal %d: shutting down", signum);
  teardown(shim->service_data);
}

static void on_exit_(hcsb__shim_t *shim) {
  svc_t *s = shim->service_data;

  if (s == NULL) return;
  /* The loop has stopped: what is left is only memory. */
  while (s->tasks != NULL) {
    entry_t *e = s->tasks;
    s->tasks = e->next;
    free(e);
  }
  free(s);
  shim->service_data = NULL;
}

int hcsb__shim_service_start(hcsb__shim_t *shim) {
  svc_t *s = calloc(1, sizeof(*s));
  int r;

  if (s == NULL) return -ENOMEM;
  s->shim = shim;
  r = hcsb__shim_server_add(shim->server, methods,
                            sizeof methods / sizeof methods[0], s);
  if (r != 0) {
    free(s);
    return r;
  }
  shim->service_data = s;
  shim->on_signal = on_signal;
  shim->on_exit = on_exit_;
  s->env.loop = shim->loop;
  s->env.state = shim->state;
  s->env.layer_dir = shim->config->layer_dir;
  s->env.hooks.exited = on_exited;
  s->env.hooks.oom = on_oom;
  s->env.hooks.sandbox_pid = sandbox_pid;
  s->env.hooks.data = s;
  return 0;
}
