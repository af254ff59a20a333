/* A task: its container's create and delete, its execs, its properties. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "shim/log.h"
#include "shim/readfile.h"
#include "shim/task-int.h"

struct tdefer_s {
  tdefer_t *next;
  hcsb__tdefer_fn fn;
  hcsb__tproc_t *p;
  void *arg;
};

/* ------------------------------------------------------------------------ */
/* References and deferral */

void hcsb__task_ref(hcsb__task_t *t) {
  t->refs++;
}

static void task_free_mem(uv_handle_t *h) {
  hcsb__task_t *t = h->data;

  free(t->private_images);
  free(t->id);
  free(t->bundle);
  free(t->spec);
  free(t);
}

void hcsb__task_unref(hcsb__task_t *t) {
  if (--t->refs > 0) return;
  uv_close((uv_handle_t *)&t->defer_timer, task_free_mem);
}

static void run_deferred(uv_timer_t *timer) {
  hcsb__task_t *t = timer->data;
  tdefer_t *d, *list = t->deferred;

  t->deferred = NULL; /* what these add runs on the next turn */
  hcsb__task_ref(t);
  /* The list was built newest first: run it oldest first. */
  {
    tdefer_t *rev = NULL;
    while ((d = list) != NULL) {
      list = d->next;
      d->next = rev;
      rev = d;
    }
    list = rev;
  }
  while ((d = list) != NULL) {
    list = d->next;
    if (d->fn != NULL) d->fn(t, d->p, d->arg);
    if (d->p != NULL) hcsb__tproc_unref(d->p);
    free(d);
    hcsb__task_unref(t);
  }
  hcsb__task_unref(t);
}

int hcsb__task_defer(hcsb__task_t *t, hcsb__tproc_t *p, hcsb__tdefer_fn fn,
                     void *arg) {
  tdefer_t *d = calloc(1, sizeof(*d));

  if (d == NULL) return -ENOMEM;
  d->fn = fn;
  d->p = p;
  d->arg = arg;
  d->next = t->deferred;
  t->deferred = d;
  hcsb__task_ref(t);
  if (p != NULL) hcsb__tproc_ref(p);
  uv_timer_start(&t->defer_timer, run_deferred, 0, 0);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Create */

typedef struct create_s {
  hcsb__task_t *t;
  hcsb__task_cb cb;
  void *data;
  hcsb__rootfs_plan_t plan;
  char **images; /* per layer: the image (VM) or the directory */
  size_t nbuilt;
  hcsb__layer_req_t *build; /* the one in flight */
  char msg[1024];
  uint64_t t0;
} create_t;

static void create_done(create_t *op, int status,
                        const hcsb_guest_error_t *gerr) {
  hcsb__task_t *t = op->t;
  size_t i;

  t->busy = 0;
  if (status == 0) {
    t->created = 1;
    SHIM_INFO("task %s: container created in %llu ms", t->id,
              (unsigned long long)(uv_hrtime() / 1000000u - op->t0));
  }
  op->cb(op->data, status, gerr, status == 0 ? NULL : op->msg);
  for (i = 0; i < op->plan.nlayers; i++) free(op->images[i]);
  free(op->images);
  hcsb__rootfs_plan_free(&op->plan);
  free(op);
  hcsb__task_unref(t);
}

static void fail(create_t *op, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(create_t *op, int status, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(op->msg, sizeof op->msg, fmt, ap);
  va_end(ap);
  create_done(op, status, NULL);
}

static void on_container(void *data, hcsb_container_t *c, int status,
                         const hcsb_guest_error_t *gerr) {
  create_t *op = data;

  /* A VM's create hands the handle over here (the layers come first). */
  if (op->t->c == NULL) op->t->c = c;
  snprintf(op->msg, sizeof op->msg, "create of container %s in the guest",
           op->t->id);
  create_done(op, status, gerr);
}

static void note(void *data, const char *line) {
  SHIM_INFO("task %s: spec: %s", (const char *)data, line);
}

/* Everything is in place: the spec, then the container. */
static void create_container(create_t *op) {
  hcsb__task_t *t = op->t;
  hcsb__spec_ctx_t ctx;
  hcsb_container_config_t cfg;
  char scratch[600], *spec = NULL;
  const char *err = NULL;
  int r;

  memset(&ctx, 0, sizeof(ctx));
  ctx.id = t->id;
  if (t->role == HCSB__POD_MEMBER) {
    const char *why = "no pod support";
    r = t->env.hooks.sandbox_pid != NULL
            ? t->env.hooks.sandbox_pid(t->env.hooks.data, t->sandbox_id,
                                       &ctx.sandbox_pid, &why)
            : -ENOTSUP;
    if (r != 0) {
      fail(op, r, "pod sandbox %s: %s", t->sandbox_id, why);
      return;
    }
  }
  ctx.note = note;
  ctx.note_data = t->id;
  r = hcsb__spec_adapt(t->spec, t->speclen, &ctx, &spec, &err);
  if (r != 0) {
    fail(op, r, "%s/config.json: %s", t->bundle, err);
    return;
  }
  memset(&cfg, 0, sizeof(cfg));
  cfg.id = t->id;
  cfg.oci_spec_json = spec;
  /* Writes land in guest memory, as hcsshim's scratch for a UVM without
   * a scratch disk. */
  snprintf(scratch, sizeof scratch, "/run/gcs/c/%s/scratch", t->id);
  cfg.layer_scratch_path = scratch;
  r = hcsb__sandbox_create_container(t->env.sandbox, &cfg,
                                     (const char *const *)op->images,
                                     op->plan.nlayers, on_container, op, &t->c);
  free(spec);
  if (r != 0) {
    t->c = NULL;
    fail(op, r, "create of container %s: %s", t->id, hcsb_strerror(r));
  }
}

static void on_ready(void *data, hcsb__sandbox_t *sb, int status,
                     const char *msg) {
  create_t *op = data;

  (void)sb;
  if (status != 0) {
    fail(op, status, "the guest is not available: %s", msg);
    return;
  }
  if (op->t->freed) {
    fail(op, -ECANCELED, "the task was released");
    return;
  }
  create_container(op);
}

static void wait_sandbox(create_t *op) {
  int r = hcsb__sandbox_when_ready(op->t->env.sandbox, on_ready, op);

  if (r != 0) fail(op, r, "the guest is not available: %s", hcsb_strerror(r));
}

static void build_next(create_t *op);

static void keep_private(hcsb__task_t *t, const char *image) {
  char **v = realloc(t->private_images,
                     (t->nprivate + 1) * sizeof(*t->private_images));

  if (v == NULL) return; /* then it stays in <cache>/tmp */
  t->private_images = v;
  v[t->nprivate] = strdup(image);
  if (v[t->nprivate] == NULL) return;
  /* Ours alone: removed at delete, or by `delete` if we die. */
  if (t->env.state != NULL)
    hcsb__shim_state_add_path(t->env.state, "file", v[t->nprivate]);
  t->nprivate++;
}

static void on_layer(void *data, int status, const char *image,
                     const char *msg) {
  create_t *op = data;
  hcsb__task_t *t = op->t;
  size_t i = op->nbuilt;

  op->build = NULL;
  if (status == 0) {
    if (!op->plan.layers[i].cacheable) keep_private(t, image);
    op->images[i] = strdup(image);
    if (op->images[i] == NULL) {
      fail(op, -ENOMEM, "out of memory");
      return;
    }
  } else {
    fail(op, status, "%s", msg != NULL ? msg : "layer image");
    return;
  }
  op->nbuilt++;
  build_next(op);
}

/* Layer images are made one at a time, base first (the maker is I/O
 * bound, and a small host has better things to do). */
static void build_next(create_t *op) {
  hcsb__task_t *t = op->t;
  size_t i = op->nbuilt;
  int r;

  if (t->freed) {
    fail(op, -ECANCELED, "the task was released");
    return;
  }
  if (i == op->plan.nlayers) {
    SHIM_INFO("task %s: %zu layer image(s) ready after %llu ms", t->id,
              op->plan.nlayers,
              (unsigned long long)(uv_hrtime() / 1000000u - op->t0));
    wait_sandbox(op);
    return;
  }
  r = hcsb__layer_image(t->env.loop, t->env.layer_dir, &op->plan.layers[i],
                        NULL, on_layer, op, &op->build);
  if (r != 0)
    fail(op, r, "layer image of %s: %s", op->plan.layers[i].dir,
         hcsb_strerror(r));
}

/* The create's first step, on a later turn (its callback never runs
 * inside hcsb__task_create). */
static void first_step(hcsb__task_t *t, hcsb__tproc_t *p, void *arg) {
  (void)p;
  if (hcsb__sandbox_is_vm(t->env.sandbox))
    build_next(arg);
  else
    wait_sandbox(arg);
}

static int read_spec(hcsb__task_t *t, const char **msg) {
  char path[4200];
  int r;

  snprintf(path, sizeof path, "%s/config.json", t->bundle);
  r = hcsb__shim_read_file(path, HCSB__SPEC_MAX_BYTES, &t->spec, &t->speclen);
  if (r == -EFBIG) {
    *msg = "the bundle's config.json is larger than 4 MiB";
    return -E2BIG;
  }
  if (r < 0 && r != -ENOMEM) *msg = "cannot read the bundle's config.json";
  return r;
}

/* root.path of the spec (for a rootfs without mounts). */
static char *spec_root(const hcsb__task_t *t) {
  json_object *o = json_tokener_parse(t->spec), *root, *path;
  char *s = NULL;

  if (o != NULL && json_object_object_get_ex(o, "root", &root) &&
      json_object_object_get_ex(root, "path", &path) &&
      json_object_is_type(path, json_type_string))
    s = strdup(json_object_get_string(path));
  json_object_put(o);
  return s;
}

int hcsb__task_create(const hcsb__task_env_t *env,
                      const hcsb__task_create_t *req, hcsb__task_cb cb,
                      void *data, hcsb__task_t **out, const char **msg) {
  hcsb__task_t *t;
  create_t *op;
  char *root;
  const char *err = NULL;
  size_t i;
  int r;

  *msg = "out of memory";
  if (req->id == NULL || req->id[0] == '\0' || req->bundle == NULL ||
      req->bundle[0] != '/') {
    *msg = "a task needs an ID and an absolute bundle path";
    return -EINVAL;
  }
  t = calloc(1, sizeof(*t));
  if (t == NULL) return -ENOMEM;
  t->env = *env;
  t->refs = 1;
  t->id = strdup(req->id);
  t->bundle = strdup(req->bundle);
  uv_timer_init(env->loop, &t->defer_timer);
  t->defer_timer.data = t;
  if (t->id == NULL || t->bundle == NULL) {
    hcsb__task_free(t);
    return -ENOMEM;
  }
  r = read_spec(t, msg);
  if (r == 0 && hcsb__spec_pod_role(t->spec, t->speclen, &t->role,
                                    t->sandbox_id, sizeof t->sandbox_id) != 0) {
    *msg = "bad pod annotations in config.json";
    r = -EINVAL;
  }
  if (r == 0)
    r = hcsb__tproc_new(t, "", req->terminal, req->stdin_path, req->stdout_path,
                        req->stderr_path, &t->init, msg);
  op = r == 0 ? calloc(1, sizeof(*op)) : NULL;
  if (r == 0 && op == NULL) r = -ENOMEM;
  if (r != 0) {
    hcsb__task_free(t);
    return r;
  }
  op->t = t;
  op->cb = cb;
  op->data = data;
  op->t0 = uv_hrtime() / 1000000u;
  root = req->nrootfs == 0 ? spec_root(t) : NULL;
  r = hcsb__rootfs_plan(req->rootfs, req->nrootfs, t->bundle, root, &op->plan,
                        &err);
  free(root);
  if (r == 0) {
    op->images = calloc(op->plan.nlayers + 1, sizeof(*op->images));
    if (op->images == NULL) r = -ENOMEM;
  }
  /* An emulator guest takes the directories as they are. */
  for (i = 0;
       r == 0 && !hcsb__sandbox_is_vm(env->sandbox) && i < op->plan.nlayers;
       i++) {
    op->images[i] = strdup(op->plan.layers[i].dir);
    if (op->images[i] == NULL) r = -ENOMEM;
  }
  if (r != 0) {
    *msg = err != NULL ? err : "out of memory";
    for (i = 0; op->images != NULL && i < op->plan.nlayers; i++)
      free(op->images[i]);
    hcsb__rootfs_plan_free(&op->plan);
    free(op->images);
    free(op);
    hcsb__task_free(t);
    return r;
  }
  t->busy = 1;
  hcsb__task_ref(t);
  *out = t;
  if (hcsb__task_defer(t, NULL, first_step, op) != 0) {
    /* Nothing started: undo as a refusal. */
    t->busy = 0;
    for (i = 0; i < op->plan.nlayers; i++) free(op->images[i]);
    hcsb__rootfs_plan_free(&op->plan);
    free(op->images);
    free(op);
    hcsb__task_unref(t);
    *out = NULL;
    hcsb__task_free(t);
    *msg = "out of memory";
    return -ENOMEM;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Execs */

int hcsb__task_exec(hcsb__task_t *t, const char *exec_id, const char *spec,
                    size_t len, int terminal, const char *in, const char *out,
                    const char *err, const char **msg) {
  hcsb__tproc_t *p;
  char *process = NULL;
  int r;

  if (exec_id == NULL || exec_id[0] == '\0') {
    *msg = "an exec needs an ID";
    return -EINVAL;
  }
  if (hcsb__task_proc(t, exec_id) != NULL) {
    *msg = "an exec with this ID exists already";
    return -EEXIST;
  }
  r = hcsb__proc_check(&t->init->st, HCSB__POP_EXEC, msg);
  if (r != 0) return r;
  if (len > HCSB__SPEC_MAX_BYTES) {
    *msg = "the exec's process spec is larger than 4 MiB";
    return -E2BIG;
  }
  r = hcsb__spec_adapt_process(spec, len, 0, 0, &process, msg);
  if (r != 0) return r;
  r = hcsb__tproc_new(t, exec_id, terminal, in, out, err, &p, msg);
  if (r != 0) {
    free(process);
    return r;
  }
  p->spec = process;
  p->next = t->execs;
  t->execs = p;
  t->nexecs++;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Delete of the init: the container goes */

static void on_container_closed(void *data) {
  hcsb__task_unref(data);
}

typedef struct del_s {
  hcsb__task_t *t;
  hcsb__task_cb cb;
  void *data;
} del_t;

/* The per-container images go with the container (QEMU may still map
 * one: the file goes when it lets go). */
static void drop_private_images(hcsb__task_t *t) {
  size_t i;

  for (i = 0; i < t->nprivate; i++) {
    unlink(t->private_images[i]);
    if (t->env.state != NULL)
      hcsb__shim_state_remove_path(t->env.state, "file", t->private_images[i]);
    free(t->private_images[i]);
  }
  t->nprivate = 0;
}

static void del_done(del_t *op, int status, const hcsb_guest_error_t *gerr) {
  hcsb__task_t *t = op->t;
  const char *msg;

  t->busy = 0;
  if (status != 0)
    SHIM_WARN(
        "task %s: the guest did not delete the container (%s); it "
        "goes with the VM",
        t->id, hcsb_strerror(status));
  drop_private_images(t);
  t->created = 0;
  if (t->c != NULL) { /* the ID may be used again */
    hcsb__task_ref(t);
    hcsb_container_close(t->c, on_container_closed, t);
    t->c = NULL;
  }
  hcsb__proc_apply(&t->init->st, HCSB__POP_DELETE, 0, &msg);
  (void)gerr;
  op->cb(op->data, 0, NULL, NULL);
  free(op);
  hcsb__task_unref(t);
}

static void on_deleted(void *data, int status, const hcsb_guest_error_t *gerr) {
  del_done(data, status, gerr);
}

static void delete_now(hcsb__task_t *t, hcsb__tproc_t *p, void *arg) {
  del_t *op = arg;
  int r = -ENOTCONN;

  (void)p;
  if (t->created) {
    r = hcsb__sandbox_delete_container(t->env.sandbox, t->id, on_deleted, op);
    if (r == 0) return;
  }
  del_done(op, t->created ? r : 0, NULL);
}

static int delete_init(hcsb__task_t *t, hcsb__task_cb cb, void *data,
                       const char **msg) {
  del_t *op;
  int r = hcsb__proc_check(&t->init->st, HCSB__POP_DELETE, msg);

  if (r != 0) return r;
  if (t->busy) {
    *msg = "the task is being created or deleted";
    return -EBUSY;
  }
  op = calloc(1, sizeof(*op));
  if (op == NULL) return -ENOMEM;
  op->t = t;
  op->cb = cb;
  op->data = data;
  r = hcsb__task_defer(t, NULL, delete_now, op);
  if (r != 0) {
    free(op);
    return r;
  }
  t->busy = 1;
  hcsb__task_ref(t);
  return 0;
}

int hcsb__tproc_delete(hcsb__tproc_t *p, hcsb__task_cb cb, void *data,
                       const char **msg) {
  if (p == p->task->init) return delete_init(p->task, cb, data, msg);
  return hcsb__tproc_delete_exec(p, cb, data, msg);
}

/* ------------------------------------------------------------------------ */
/* Properties */

typedef struct props_s {
  hcsb__task_t *t;
  hcsb__task_props_cb cb;
  void *data;
} props_t;

static void on_props(void *data, int status, const hcsb_guest_error_t *gerr,
                     const hcsb_properties_t *props) {
  props_t *op = data;
  hcsb__task_t *t = op->t;

  op->cb(op->data, status, gerr, "properties of the container", props);
  free(op);
  hcsb__task_unref(t);
}

int hcsb__task_properties(hcsb__task_t *t, unsigned types,
                          hcsb__task_props_cb cb, void *data,
                          const char **msg) {
  props_t *op;
  int r = hcsb__proc_check(&t->init->st, HCSB__POP_QUERY, msg);

  if (r != 0) return r;
  if (t->c == NULL || !t->created) {
    *msg = "the container does not exist in the guest";
    return -EBUSY;
  }
  op = calloc(1, sizeof(*op));
  if (op == NULL) return -ENOMEM;
  op->t = t;
  op->cb = cb;
  op->data = data;
  r = hcsb_container_properties(t->c, NULL, types, on_props, op);
  if (r != 0) {
    free(op);
    *msg = "cannot query the container";
    return r;
  }
  hcsb__task_ref(t);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Update: new cgroup limits (an OCI LinuxResources object) */

typedef struct upd_s {
  hcsb__task_t *t;
  hcsb__task_cb cb;
  void *data;
} upd_t;

static void on_updated(void *data, int status, const hcsb_guest_error_t *gerr) {
  upd_t *op = data;
  hcsb__task_t *t = op->t;

  op->cb(op->data, status, gerr, "update of the container's resources");
  free(op);
  hcsb__task_unref(t);
}

int hcsb__task_update(hcsb__task_t *t, const char *resources, size_t len,
                      hcsb__task_cb cb, void *data, const char **msg) {
  json_tokener *tok;
  json_object *o;
  upd_t *op;
  char *text = NULL;
  int r = hcsb__proc_check(&t->init->st, HCSB__POP_QUERY, msg);

  if (r != 0) return r;
  if (t->c == NULL || !t->created) {
    *msg = "the container does not exist in the guest";
    return -EBUSY;
  }
  if (len > HCSB__SPEC_MAX_BYTES) {
    *msg = "the resources are larger than 4 MiB";
    return -E2BIG;
  }
  /* Checked here: the library sends the text as it is. */
  tok = json_tokener_new_ex(HCSB__SPEC_MAX_DEPTH);
  if (tok == NULL) return -ENOMEM;
  o = json_tokener_parse_ex(tok, resources, (int)len);
  r = o != NULL && json_object_is_type(o, json_type_object) &&
      json_tokener_get_error(tok) == json_tokener_success;
  json_tokener_free(tok);
  if (r) {
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    r = hcsb_modify_container_constraints(HCSB_REQUEST_UPDATE, s, NULL, &text);
  } else {
    r = -EINVAL;
  }
  json_object_put(o);
  if (r != 0) {
    *msg = "the resources are not an OCI LinuxResources object";
    return r;
  }
  op = calloc(1, sizeof(*op));
  if (op == NULL) {
    hcsb_free(text);
    return -ENOMEM;
  }
  op->t = t;
  op->cb = cb;
  op->data = data;
  r = hcsb_container_modify(t->c, NULL, text, on_updated, op);
  hcsb_free(text);
  if (r != 0) {
    free(op);
    *msg = "cannot update the container";
    return r;
  }
  hcsb__task_ref(t);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Accessors, free */

const char *hcsb__task_id(const hcsb__task_t *t) {
  return t->id;
}

const char *hcsb__task_bundle(const hcsb__task_t *t) {
  return t->bundle;
}

hcsb__tproc_t *hcsb__task_init(hcsb__task_t *t) {
  return t->init;
}

hcsb__tproc_t *hcsb__task_proc(hcsb__task_t *t, const char *exec_id) {
  hcsb__tproc_t *p;

  if (exec_id == NULL || exec_id[0] == '\0') return t->init;
  for (p = t->execs; p != NULL; p = p->next)
    if (strcmp(p->exec_id, exec_id) == 0) return p;
  return NULL;
}

hcsb__tproc_t *hcsb__task_proc_by_pid(hcsb__task_t *t, uint32_t pid) {
  hcsb__tproc_t *p;

  for (p = t->execs; p != NULL; p = p->next)
    if (p->st.pid == pid && pid != 0) return p;
  return NULL;
}

size_t hcsb__task_nexecs(const hcsb__task_t *t) {
  return t->nexecs;
}

hcsb__pod_role_t hcsb__task_pod_role(const hcsb__task_t *t) {
  return t->role;
}

const char *hcsb__task_sandbox_id(const hcsb__task_t *t) {
  return t->sandbox_id;
}

int hcsb__task_busy(const hcsb__task_t *t) {
  return t->busy;
}

void hcsb__task_free(hcsb__task_t *t) {
  hcsb__tproc_t *p;

  if (t == NULL || t->freed) return;
  t->freed = 1;
  drop_private_images(t); /* a failed create's, or a task never deleted */
  while ((p = t->execs) != NULL) {
    t->execs = p->next;
    t->nexecs--;
    hcsb__tproc_release(p);
  }
  if (t->init != NULL) hcsb__tproc_release(t->init);
  t->init = NULL;
  if (t->c != NULL) {
    hcsb__task_ref(t);
    hcsb_container_close(t->c, on_container_closed, t);
    t->c = NULL;
  }
  hcsb__task_unref(t);
}
