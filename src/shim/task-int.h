/* Inside a task: the structs task.c (the container) and tproc.c (its
 * processes) share.  Not for service.c.
 *
 * Lifetime: a task and each of its processes are counted references.  The
 * service holds one on the task (hcsb__task_free drops it), the task's
 * list holds one on each process (a deleted exec leaves the list), and
 * every library operation in flight holds one on what its callback
 * touches, so a callback that comes after a free or a delete (the library
 * completes pending operations with -ECANCELED when a handle closes) still
 * finds its memory.  A process holds a reference on its task. */
#ifndef HCSB_SHIM_TASK_INT_H
#define HCSB_SHIM_TASK_INT_H

#include "shim/pio.h"
#include "shim/task.h"

struct hcsb__twait_s {
  hcsb__twait_t *next;
  hcsb__tproc_t *p;
  hcsb__twait_cb cb;
  void *data;
};

struct hcsb__tproc_s {
  hcsb__tproc_t *next; /* the task's execs */
  hcsb__task_t *task;
  unsigned refs;
  char *exec_id; /* "" for the init */
  hcsb__proc_t st;
  int terminal;
  char *in, *out, *err; /* FIFO paths as given */
  char *spec;           /* an exec's OCI process, adapted */
  hcsb__pio_t *io;
  hcsb_process_t *p; /* the guest process, from Start on */
  uint16_t width, height;
  int has_size;
  /* Start */
  uint64_t start_ns; /* uv_hrtime() of the Start request */
  hcsb__task_cb start_cb;
  void *start_data;
  /* Exit: recorded once all of these are in */
  int waited;         /* the library's wait completed */
  uint32_t exit_code; /* its code (255 when unknown) */
  int drained;        /* pio's outputs are out */
  int oom_checked;    /* a SIGKILL exit: the OOM counter was looked at */
  int finishing;      /* an OOM query is in flight */
  uv_timer_t linger;  /* after the exit: at most this long for the output */
  int linger_init;
  hcsb__twait_t *waits;
  int closing; /* the library handle is being closed */
};

typedef struct tdefer_s tdefer_t;

struct hcsb__task_s {
  hcsb__task_env_t env;
  unsigned refs;
  int freed; /* hcsb__task_free was called */
  char *id;
  char *bundle;
  char *spec; /* config.json as read */
  size_t speclen;
  hcsb__pod_role_t role;
  char sandbox_id[256]; /* a member's sandbox */
  hcsb_container_t *c;
  int created; /* the container exists in the guest */
  int busy;    /* create/delete in flight */
  hcsb__tproc_t *init;
  hcsb__tproc_t *execs;
  size_t nexecs;
  uint64_t oom_kills; /* the counter's last value */
  /* private (per-container) layer images to remove at delete */
  char **private_images;
  size_t nprivate;
  /* work for a later turn */
  uv_timer_t defer_timer;
  tdefer_t *deferred;
};

/* Runs fn(t, p, arg) on a later turn (in the order asked), holding
 * references on both (p may be NULL).  0 or -ENOMEM. */
typedef void (*hcsb__tdefer_fn)(hcsb__task_t *t, hcsb__tproc_t *p, void *arg);
int hcsb__task_defer(hcsb__task_t *t, hcsb__tproc_t *p, hcsb__tdefer_fn fn,
                     void *arg);

void hcsb__task_ref(hcsb__task_t *t);
void hcsb__task_unref(hcsb__task_t *t);
void hcsb__tproc_ref(hcsb__tproc_t *p);
void hcsb__tproc_unref(hcsb__tproc_t *p);

/* A new process of `t` (CREATED; stdio opened). */
int hcsb__tproc_new(hcsb__task_t *t, const char *exec_id, int terminal,
                    const char *in, const char *out, const char *err,
                    hcsb__tproc_t **out_p, const char **msg);
/* Lets go of the guest process and the FIFOs (no hooks after this; its
 * waits are told with p == NULL); drops the list's reference. */
void hcsb__tproc_release(hcsb__tproc_t *p);
/* Delete of an exec (CREATED or STOPPED): leaves the list on a later turn,
 * then `cb`. */
int hcsb__tproc_delete_exec(hcsb__tproc_t *p, hcsb__task_cb cb, void *data,
                            const char **msg);

#endif
