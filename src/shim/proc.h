/* The life of one task process (a container's init or an exec), as the
 * Task service sees it: every state named, every transition in one table
 * (proc.c), after containerd's runc shim (pkg/process, init_state.go).
 * Pure: no I/O, no libuv; the service asks before it acts and records what
 * happened, so a request that is not allowed in the current state fails
 * with one errno and one message, the same ones every time.
 *
 *   CREATED  --START-->      STARTING  --STARTED-->     RUNNING
 *   STARTING --START_FAILED--> CREATED   (Start may be tried again)
 *   CREATED  --KILL-->       STOPPED   (nothing runs yet: it simply ends)
 *   STARTING, RUNNING --EXITED--> STOPPED
 *   CREATED, STOPPED --DELETE--> DELETED
 *
 * Everything else either leaves the state as it is (KILL, RESIZE, CLOSEIO,
 * EXEC, QUERY where they are allowed) or is refused (grpc.h gives the
 * codes):
 *   -ENOENT   (NOT_FOUND): the process has finished or is deleted (a Kill
 *             of an exited process is NOT_FOUND in containerd's runc shim)
 *   -EBUSY    (FAILED_PRECONDITION): not in a state for this
 * A second EXITED is refused with -EALREADY, so an exit is recorded (and
 * announced) once. */
#ifndef HCSB_SHIM_PROC_H
#define HCSB_SHIM_PROC_H

#include <stdint.h>
#include <time.h>

typedef enum hcsb__pstate_e {
  HCSB__PS_CREATED = 0, /* Create/Exec answered, nothing started yet */
  HCSB__PS_STARTING,    /* Start sent to the guest, no answer yet */
  HCSB__PS_RUNNING,     /* the guest runs it */
  HCSB__PS_STOPPED,     /* exited, exit status recorded */
  HCSB__PS_DELETED,     /* Delete answered; only the record is left */
  HCSB__PS_COUNT
} hcsb__pstate_t;

typedef enum hcsb__pop_e {
  HCSB__POP_START = 0,    /* Start request */
  HCSB__POP_STARTED,      /* the guest runs it (pid known) */
  HCSB__POP_START_FAILED, /* the guest could not start it */
  HCSB__POP_KILL,         /* Kill request (signal it) */
  HCSB__POP_RESIZE,       /* ResizePty request */
  HCSB__POP_CLOSEIO,      /* CloseIO request */
  HCSB__POP_EXEC,         /* Exec into this (init) process's container */
  HCSB__POP_QUERY,        /* Pids / Stats of its container */
  HCSB__POP_EXITED,       /* the guest reported the exit */
  HCSB__POP_DELETE,       /* Delete request */
  HCSB__POP_COUNT
} hcsb__pop_t;

typedef struct hcsb__proc_s {
  hcsb__pstate_t state;
  uint32_t pid;         /* the guest's PID once started; 0 before */
  uint32_t exit_status; /* valid in STOPPED and DELETED */
  struct timespec exited_at;
} hcsb__proc_t;

/* A fresh process in CREATED. */
void hcsb__proc_init(hcsb__proc_t *p);

/* Whether `op` is allowed now: 0, or -ENOENT / -EBUSY / -EALREADY (above)
 * with a static message in *msg (never NULL on failure).  Changes
 * nothing. */
int hcsb__proc_check(const hcsb__proc_t *p, hcsb__pop_t op, const char **msg);

/* hcsb__proc_check, then the transition when allowed.  `value`: the pid
 * for STARTED; the exit status for EXITED and for a KILL that stops a
 * process that never started (128 + signal); ignored otherwise.  A move
 * to STOPPED also records the time (CLOCK_REALTIME). */
int hcsb__proc_apply(hcsb__proc_t *p, hcsb__pop_t op, uint32_t value,
                     const char **msg);

/* "created", "starting", "running", "stopped", "deleted". */
const char *hcsb__pstate_name(hcsb__pstate_t s);
const char *hcsb__pop_name(hcsb__pop_t op);

/* containerd's task.Status of a state: 1 CREATED (also while starting),
 * 2 RUNNING, 3 STOPPED (also once deleted). */
int hcsb__pstate_task_status(hcsb__pstate_t s);

#endif
