/* A task's processes: start, signals, resize, stdin, waits, and the one
 * path an exit takes (finish_exit). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shim/log.h"
#include "shim/task-int.h"

/* After the exit, how long the output may still take to drain before the
 * shim stops waiting for it (hcsshim's CopyAfterExitTimeout is 1 s). */
#define LINGER_MS 2000
/* containerd's exit status for an exit the shim could not learn. */
#define EXIT_UNKNOWN 255
#define SIGKILL_EXIT 137

typedef struct pop_s {
  hcsb__tproc_t *p;
  hcsb__task_cb cb;
  void *data;
  const char *what;
} pop_t;

static pop_t *pop_new(hcsb__tproc_t *p, hcsb__task_cb cb, void *data,
                      const char *what) {
  pop_t *op = calloc(1, sizeof(*op));

  if (op == NULL) return NULL;
  op->p = p;
  op->cb = cb;
  op->data = data;
  op->what = what;
  hcsb__tproc_ref(p);
  return op;
}

static void pop_done(pop_t *op, int status, const hcsb_guest_error_t *gerr,
                     const char *msg) {
  hcsb__tproc_t *p = op->p;

  if (op->cb != NULL) op->cb(op->data, status, gerr, msg ? msg : op->what);
  free(op);
  hcsb__tproc_unref(p);
}

/* ------------------------------------------------------------------------ */
/* References */

void hcsb__tproc_ref(hcsb__tproc_t *p) {
  p->refs++;
}

static void tproc_free(hcsb__tproc_t *p) {
  hcsb__task_t *t = p->task;

  free(p->exec_id);
  free(p->in);
  free(p->out);
  free(p->err);
  free(p->spec);
  free(p);
  hcsb__task_unref(t);
}

static void on_linger_closed(uv_handle_t *h) {
  tproc_free(h->data);
}

void hcsb__tproc_unref(hcsb__tproc_t *p) {
  if (--p->refs > 0) return;
  if (p->linger_init)
    uv_close((uv_handle_t *)&p->linger, on_linger_closed);
  else
    tproc_free(p);
}

int hcsb__tproc_new(hcsb__task_t *t, const char *exec_id, int terminal,
                    const char *in, const char *out, const char *err,
                    hcsb__tproc_t **out_p, const char **msg) {
  hcsb__tproc_t *p = calloc(1, sizeof(*p));
  int r;

  *msg = "out of memory";
  if (p == NULL) return -ENOMEM;
  p->task = t;
  p->refs = 1;
  hcsb__task_ref(t);
  hcsb__proc_init(&p->st);
  p->terminal = terminal;
  p->exec_id = strdup(exec_id != NULL ? exec_id : "");
  p->in = strdup(in != NULL ? in : "");
  p->out = strdup(out != NULL ? out : "");
  p->err = strdup(err != NULL ? err : "");
  if (p->exec_id == NULL || p->in == NULL || p->out == NULL || p->err == NULL) {
    hcsb__tproc_unref(p);
    return -ENOMEM;
  }
  r = hcsb__pio_open(t->env.loop, p->in, p->out, p->err, terminal, &p->io, msg);
  if (r != 0) {
    hcsb__tproc_unref(p);
    return r;
  }
  *out_p = p;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Waits */

static void fire_waits(hcsb__tproc_t *p, int gone) {
  hcsb__twait_t *w, *list = p->waits;

  p->waits = NULL;
  while ((w = list) != NULL) {
    list = w->next;
    w->cb(w->data, gone ? NULL : p);
    free(w);
    hcsb__tproc_unref(p);
  }
}

static void deferred_waits(hcsb__task_t *t, hcsb__tproc_t *p, void *arg) {
  (void)t;
  (void)arg;
  if (p->st.state == HCSB__PS_STOPPED || p->st.state == HCSB__PS_DELETED)
    fire_waits(p, 0);
}

int hcsb__tproc_wait(hcsb__tproc_t *p, hcsb__twait_cb cb, void *data,
                     hcsb__twait_t **out) {
  hcsb__twait_t *w, **tail;

  if (p->st.state == HCSB__PS_DELETED) return -ENOENT;
  w = calloc(1, sizeof(*w));
  if (w == NULL) return -ENOMEM;
  w->p = p;
  w->cb = cb;
  w->data = data;
  for (tail = &p->waits; *tail != NULL; tail = &(*tail)->next) {
  }
  *tail = w;
  hcsb__tproc_ref(p);
  if (out != NULL) *out = w;
  if (p->st.state == HCSB__PS_STOPPED &&
      hcsb__task_defer(p->task, p, deferred_waits, NULL) != 0) {
    *tail = NULL;
    free(w);
    hcsb__tproc_unref(p);
    return -ENOMEM;
  }
  return 0;
}

void hcsb__twait_cancel(hcsb__twait_t *w) {
  hcsb__tproc_t *p = w->p;
  hcsb__twait_t **pp;

  for (pp = &p->waits; *pp != NULL; pp = &(*pp)->next) {
    if (*pp != w) continue;
    *pp = w->next;
    free(w);
    hcsb__tproc_unref(p);
    return;
  }
}

/* ------------------------------------------------------------------------ */
/* The exit */

static void finish_exit(hcsb__tproc_t *p);
static void close_hp(hcsb__tproc_t *p);

static void on_oom_stats(void *data, int status, const hcsb_guest_error_t *gerr,
                         const hcsb_properties_t *props) {
  hcsb__tproc_t *p = data;
  hcsb__task_t *t = p->task;
  const hcsb_metrics_t *m = props != NULL ? props->metrics : NULL;

  (void)gerr;
  p->finishing = 0;
  if (status == 0 && m != NULL && m->has_memory_oom_control &&
      m->memory_oom_control.oom_kill > t->oom_kills) {
    t->oom_kills = m->memory_oom_control.oom_kill;
    SHIM_INFO("task %s: the memory cgroup killed a process (oom_kill %llu)",
              t->id, (unsigned long long)t->oom_kills);
    if (!t->freed && t->env.hooks.oom != NULL)
      t->env.hooks.oom(t->env.hooks.data, t);
  }
  finish_exit(p);
  hcsb__tproc_unref(p);
}

/* Records the exit once everything is in: the start announced, the
 * library's wait answered, the output drained (or given up on); a SIGKILL
 * exit first asks whether the OOM killer did it. */
static void finish_exit(hcsb__tproc_t *p) {
  hcsb__task_t *t = p->task;
  const char *msg;

  if (p->st.state != HCSB__PS_RUNNING || !p->waited || !p->drained ||
      p->finishing || p->closing)
    return;
  if (p->exit_code == SIGKILL_EXIT && !p->oom_checked && t->c != NULL) {
    p->oom_checked = 1;
    if (hcsb_container_statistics(t->c, NULL, on_oom_stats, p) == 0) {
      p->finishing = 1;
      hcsb__tproc_ref(p);
      return;
    }
  }
  if (p->linger_init) uv_timer_stop(&p->linger);
  if (hcsb__proc_apply(&p->st, HCSB__POP_EXITED, p->exit_code, &msg) != 0)
    return;
  {
    uint64_t first = hcsb__pio_first_output(p->io);
    char when[64] = "";
    if (first != 0 && p->start_ns != 0 && first >= p->start_ns)
      snprintf(when, sizeof when, " (first output %llu ms after the start)",
               (unsigned long long)((first - p->start_ns) / 1000000u));
    SHIM_INFO("task %s%s%s: pid %u exited with status %u%s", t->id,
              p->exec_id[0] ? " exec " : "", p->exec_id, (unsigned)p->st.pid,
              (unsigned)p->st.exit_status, when);
  }
  hcsb__pio_close(p->io);
  p->io = NULL;
  if (!t->freed && t->env.hooks.exited != NULL)
    t->env.hooks.exited(t->env.hooks.data, t, p);
  fire_waits(p, 0);
}

static void on_linger(uv_timer_t *timer) {
  hcsb__tproc_t *p = timer->data;

  SHIM_WARN(
      "task %s%s%s: output still open %d ms after the exit; "
      "reporting the exit without the rest",
      p->task->id, p->exec_id[0] ? " exec " : "", p->exec_id, LINGER_MS);
  hcsb__pio_detach(p->io);
  p->drained = 1;
  finish_exit(p);
}

static void on_waited(void *data, hcsb_process_t *hp, int status,
                      uint32_t code) {
  hcsb__tproc_t *p = data;

  (void)hp;
  if (!p->waited && !p->closing) {
    p->waited = 1;
    p->exit_code = status == 0 ? code : EXIT_UNKNOWN;
    if (status != 0)
      SHIM_WARN("task %s%s%s: the exit status is unknown (%s)", p->task->id,
                p->exec_id[0] ? " exec " : "", p->exec_id,
                hcsb_strerror(status));
    if (!p->drained && p->st.state == HCSB__PS_RUNNING) {
      if (!p->linger_init &&
          uv_timer_init(p->task->env.loop, &p->linger) == 0) {
        p->linger_init = 1;
        p->linger.data = p;
      }
      if (p->linger_init) uv_timer_start(&p->linger, on_linger, LINGER_MS, 0);
    }
    /* A lost connection ends the relays too. */
    if (status != 0 && !p->drained) {
      hcsb__pio_detach(p->io);
      p->drained = 1;
    }
    finish_exit(p);
  }
  hcsb__tproc_unref(p);
}

static void on_drained(void *data) {
  hcsb__tproc_t *p = data;

  p->drained = 1;
  finish_exit(p);
}

/* ------------------------------------------------------------------------ */
/* Start */

static void on_created(void *data, hcsb_process_t *hp, int status,
                       const hcsb_guest_error_t *gerr) {
  hcsb__tproc_t *p = data;
  hcsb__task_cb cb = p->start_cb;
  void *cbdata = p->start_data;
  const char *msg;
  char what[160];

  p->start_cb = NULL;
  if (p->closing) { /* released meanwhile */
    if (cb != NULL) cb(cbdata, -ECANCELED, NULL, "start");
    hcsb__tproc_unref(p);
    return;
  }
  if (status == 0) {
    hcsb__proc_apply(&p->st, HCSB__POP_STARTED, hcsb_process_pid(hp), &msg);
    if (hcsb__pio_attach(p->io, hp, on_drained, p) != 0) {
      SHIM_WARN("task %s: cannot relay stdio", p->task->id);
      p->drained = 1;
    }
    if (hcsb_process_wait(hp, 0, on_waited, p) == 0) {
      hcsb__tproc_ref(p);
    } else {
      p->waited = 1;
      p->exit_code = EXIT_UNKNOWN;
    }
    SHIM_INFO("task %s%s%s: started in %llu ms, pid %u", p->task->id,
              p->exec_id[0] ? " exec " : "", p->exec_id,
              (unsigned long long)((uv_hrtime() - p->start_ns) / 1000000u),
              (unsigned)p->st.pid);
    if (cb != NULL) cb(cbdata, 0, NULL, NULL);
    finish_exit(p); /* an exit that came first goes out after the start */
  } else {
    hcsb__proc_apply(&p->st, HCSB__POP_START_FAILED, 0, &msg);
    close_hp(p); /* spent: a new Start makes a new one */
    snprintf(what, sizeof what, "start of %s%s%s", p->task->id,
             p->exec_id[0] ? " exec " : "", p->exec_id);
    if (cb != NULL) cb(cbdata, status, gerr, what);
  }
  hcsb__tproc_unref(p);
}

int hcsb__tproc_start(hcsb__tproc_t *p, hcsb__task_cb cb, void *data,
                      const char **msg) {
  hcsb__task_t *t = p->task;
  hcsb_process_config_t cfg;
  int r, in, out, err;

  if (t->c == NULL || !t->created) {
    *msg = "the container does not exist in the guest";
    return -EBUSY;
  }
  if (p != t->init && t->init->st.state != HCSB__PS_RUNNING) {
    *msg = "container is not running";
    return -EBUSY;
  }
  r = hcsb__proc_check(&p->st, HCSB__POP_START, msg);
  if (r != 0) return r;
  memset(&cfg, 0, sizeof(cfg));
  hcsb__pio_wants(p->io, &in, &out, &err);
  cfg.create_stdin_pipe = in;
  cfg.create_stdout_pipe = out;
  cfg.create_stderr_pipe = err;
  cfg.emulate_console = p->terminal;
  if (p->has_size) {
    cfg.console_width = p->width;
    cfg.console_height = p->height;
  }
  cfg.oci_process_json = p->spec; /* NULL for the init: the spec's */
  if (p->spec != NULL && p->has_size) {
    /* A size known before the start goes into the spec: a resize after
     * the start would come after the process's first look at it. */
    char *sized = NULL;
    r = hcsb__spec_adapt_process(p->spec, strlen(p->spec), p->width, p->height,
                                 &sized, msg);
    if (r != 0) return r;
    free(p->spec);
    p->spec = sized;
    cfg.oci_process_json = sized;
  }
  r = hcsb_container_create_process(t->c, NULL, &cfg, on_created, p, &p->p);
  if (r != 0) {
    *msg = "cannot start the process";
    return r;
  }
  hcsb__proc_apply(&p->st, HCSB__POP_START, 0, msg);
  p->start_ns = uv_hrtime();
  p->start_cb = cb;
  p->start_data = data;
  hcsb__tproc_ref(p);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Kill */

static void on_signaled(void *data, int status, const hcsb_guest_error_t *gerr,
                        int delivered) {
  pop_t *op = data;

  (void)delivered; /* gone already: its exit is on the way */
  pop_done(op, status, gerr, NULL);
}

/* A process that never started stops when killed: the reply first, then
 * the exit, as for one that ran. */
static void killed_unstarted(hcsb__task_t *t, hcsb__tproc_t *p, void *arg) {
  pop_done(arg, 0, NULL, NULL);
  if (p->closing) return;
  hcsb__pio_close(p->io);
  p->io = NULL;
  if (!t->freed && t->env.hooks.exited != NULL)
    t->env.hooks.exited(t->env.hooks.data, t, p);
  fire_waits(p, 0);
}

static int signal_one(hcsb__tproc_t *p, uint32_t sig, hcsb__task_cb cb,
                      void *data) {
  pop_t *op = pop_new(p, cb, data, "kill");
  int r;

  if (op == NULL) return -ENOMEM;
  r = hcsb_process_signal(p->p, NULL, (int)sig, on_signaled, op);
  if (r != 0) {
    op->cb = NULL;
    pop_done(op, 0, NULL, NULL);
  }
  return r;
}

int hcsb__tproc_kill(hcsb__tproc_t *p, uint32_t sig, int all, hcsb__task_cb cb,
                     void *data, const char **msg) {
  hcsb__tproc_t *e;
  pop_t *op;
  int r;

  if (sig < 1 || sig > HCSB_SIGNAL_MAX) {
    *msg = "signal out of range";
    return -EINVAL;
  }
  r = hcsb__proc_check(&p->st, HCSB__POP_KILL, msg);
  if (r != 0) return r;
  if (all && p == p->task->init) {
    for (e = p->task->execs; e != NULL; e = e->next)
      if (e->p != NULL &&
          (e->st.state == HCSB__PS_RUNNING || e->st.state == HCSB__PS_STARTING))
        signal_one(e, sig, NULL, NULL);
  }
  if (p->st.state != HCSB__PS_CREATED) {
    r = signal_one(p, sig, cb, data);
    if (r != 0) *msg = "cannot signal the process";
    return r;
  }
  op = pop_new(p, cb, data, "kill");
  if (op == NULL) return -ENOMEM;
  r = hcsb__task_defer(p->task, p, killed_unstarted, op);
  if (r != 0) {
    op->cb = NULL;
    pop_done(op, 0, NULL, NULL);
    *msg = "out of memory";
    return r;
  }
  hcsb__proc_apply(&p->st, HCSB__POP_KILL, 128 + sig, msg);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Resize, stdin */

static void on_resized(void *data, int status, const hcsb_guest_error_t *gerr) {
  pop_done(data, status, gerr, NULL);
}

static void resized_early(hcsb__task_t *t, hcsb__tproc_t *p, void *arg) {
  (void)t;
  (void)p;
  pop_done(arg, 0, NULL, NULL);
}

int hcsb__tproc_resize(hcsb__tproc_t *p, uint32_t width, uint32_t height,
                       hcsb__task_cb cb, void *data, const char **msg) {
  pop_t *op;
  int r = hcsb__proc_check(&p->st, HCSB__POP_RESIZE, msg);

  if (r != 0) return r;
  if (!p->terminal) {
    *msg = "the process has no terminal";
    return -EBUSY;
  }
  if (width > 0xffff || height > 0xffff) {
    *msg = "terminal size out of range";
    return -EINVAL;
  }
  p->width = (uint16_t)width;
  p->height = (uint16_t)height;
  p->has_size = 1;
  op = pop_new(p, cb, data, "resize");
  if (op == NULL) return -ENOMEM;
  if (p->p == NULL) /* not started: applied at the start */
    r = hcsb__task_defer(p->task, p, resized_early, op);
  else
    r = hcsb_process_resize_console(p->p, NULL, p->width, p->height, on_resized,
                                    op);
  if (r != 0) {
    op->cb = NULL;
    pop_done(op, 0, NULL, NULL);
    *msg = "cannot resize the terminal";
  }
  return r;
}

int hcsb__tproc_close_stdin(hcsb__tproc_t *p, const char **msg) {
  int r = hcsb__proc_check(&p->st, HCSB__POP_CLOSEIO, msg);

  if (r != 0) return r;
  hcsb__pio_close_stdin(p->io);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Release, delete */

static void on_hp_closed(void *data) {
  hcsb__tproc_unref(data);
}

static void close_hp(hcsb__tproc_t *p) {
  if (p->p == NULL) return;
  hcsb__tproc_ref(p);
  hcsb_process_close(p->p, on_hp_closed, p);
  p->p = NULL;
}

void hcsb__tproc_release(hcsb__tproc_t *p) {
  if (p->closing) return;
  p->closing = 1;
  if (p->linger_init) uv_timer_stop(&p->linger);
  hcsb__pio_close(p->io);
  p->io = NULL;
  close_hp(p);
  fire_waits(p, 1);
  hcsb__tproc_unref(p);
}

static void exec_deleted(hcsb__task_t *t, hcsb__tproc_t *p, void *arg) {
  hcsb__tproc_t **pp;

  for (pp = &t->execs; *pp != NULL; pp = &(*pp)->next) {
    if (*pp != p) continue;
    *pp = p->next;
    t->nexecs--;
    break;
  }
  pop_done(arg, 0, NULL, NULL);
  hcsb__tproc_release(p);
}

int hcsb__tproc_delete_exec(hcsb__tproc_t *p, hcsb__task_cb cb, void *data,
                            const char **msg) {
  pop_t *op;
  int r = hcsb__proc_check(&p->st, HCSB__POP_DELETE, msg);

  if (r != 0) return r;
  op = pop_new(p, cb, data, "delete");
  if (op == NULL) return -ENOMEM;
  r = hcsb__task_defer(p->task, p, exec_deleted, op);
  if (r != 0) {
    op->cb = NULL;
    pop_done(op, 0, NULL, NULL);
    return r;
  }
  hcsb__proc_apply(&p->st, HCSB__POP_DELETE, 0, msg);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Accessors */

const char *hcsb__tproc_exec_id(const hcsb__tproc_t *p) {
  return p->exec_id;
}

const hcsb__proc_t *hcsb__tproc_state(const hcsb__tproc_t *p) {
  return &p->st;
}

int hcsb__tproc_terminal(const hcsb__tproc_t *p) {
  return p->terminal;
}

void hcsb__tproc_stdio(const hcsb__tproc_t *p, const char **in,
                       const char **out, const char **err) {
  *in = p->in;
  *out = p->out;
  *err = p->err;
}
