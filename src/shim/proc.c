/* The process state machine: one table, read by check and apply alike. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "shim/proc.h"

typedef struct rule_s {
  int err;             /* 0: allowed */
  hcsb__pstate_t next; /* where it goes when allowed */
  const char *msg;     /* when refused */
} rule_t;

#define OK(s) \
  { 0, HCSB__PS_##s, NULL }
#define NO(e, m) \
  { -e, HCSB__PS_COUNT, m }

/* rules[state][op].  OK(X): allowed, the process goes to X (its own state
 * for requests that change nothing). */
static const rule_t rules[HCSB__PS_COUNT][HCSB__POP_COUNT] = {
    [HCSB__PS_CREATED] =
        {
            [HCSB__POP_START] = OK(STARTING),
            [HCSB__POP_STARTED] = NO(EBUSY, "process is not being started"),
            [HCSB__POP_START_FAILED] =
                NO(EBUSY, "process is not being started"),
            [HCSB__POP_KILL] = OK(STOPPED),
            [HCSB__POP_RESIZE] = OK(CREATED),
            [HCSB__POP_CLOSEIO] = OK(CREATED),
            [HCSB__POP_EXEC] = NO(EBUSY, "container is not running"),
            [HCSB__POP_QUERY] = OK(CREATED),
            [HCSB__POP_EXITED] = NO(EBUSY, "process was never started"),
            [HCSB__POP_DELETE] = OK(DELETED),
        },
    [HCSB__PS_STARTING] =
        {
            [HCSB__POP_START] = NO(EBUSY, "process is already being started"),
            [HCSB__POP_STARTED] = OK(RUNNING),
            [HCSB__POP_START_FAILED] = OK(CREATED),
            [HCSB__POP_KILL] = OK(STARTING),
            [HCSB__POP_RESIZE] = OK(STARTING),
            [HCSB__POP_CLOSEIO] = OK(STARTING),
            [HCSB__POP_EXEC] = NO(EBUSY, "container is not running yet"),
            [HCSB__POP_QUERY] = OK(STARTING),
            [HCSB__POP_EXITED] = OK(STOPPED),
            [HCSB__POP_DELETE] = NO(EBUSY, "cannot delete a running process"),
        },
    [HCSB__PS_RUNNING] =
        {
            [HCSB__POP_START] = NO(EBUSY, "cannot start a running process"),
            [HCSB__POP_STARTED] = NO(EBUSY, "process is already running"),
            [HCSB__POP_START_FAILED] = NO(EBUSY, "process is already running"),
            [HCSB__POP_KILL] = OK(RUNNING),
            [HCSB__POP_RESIZE] = OK(RUNNING),
            [HCSB__POP_CLOSEIO] = OK(RUNNING),
            [HCSB__POP_EXEC] = OK(RUNNING),
            [HCSB__POP_QUERY] = OK(RUNNING),
            [HCSB__POP_EXITED] = OK(STOPPED),
            [HCSB__POP_DELETE] = NO(EBUSY, "cannot delete a running process"),
        },
    [HCSB__PS_STOPPED] =
        {
            [HCSB__POP_START] = NO(EBUSY, "cannot start a stopped process"),
            [HCSB__POP_STARTED] = NO(EBUSY, "process has stopped"),
            [HCSB__POP_START_FAILED] = NO(EBUSY, "process has stopped"),
            [HCSB__POP_KILL] = NO(ENOENT, "process already finished"),
            [HCSB__POP_RESIZE] = NO(EBUSY, "cannot resize a stopped process"),
            [HCSB__POP_CLOSEIO] = OK(STOPPED),
            [HCSB__POP_EXEC] = NO(EBUSY, "container is not running"),
            [HCSB__POP_QUERY] = NO(EBUSY, "container is not running"),
            [HCSB__POP_EXITED] = NO(EALREADY, "exit already recorded"),
            [HCSB__POP_DELETE] = OK(DELETED),
        },
    [HCSB__PS_DELETED] =
        {
            [HCSB__POP_START] = NO(ENOENT, "process deleted"),
            [HCSB__POP_STARTED] = NO(ENOENT, "process deleted"),
            [HCSB__POP_START_FAILED] = NO(ENOENT, "process deleted"),
            [HCSB__POP_KILL] = NO(ENOENT, "process deleted"),
            [HCSB__POP_RESIZE] = NO(ENOENT, "process deleted"),
            [HCSB__POP_CLOSEIO] = NO(ENOENT, "process deleted"),
            [HCSB__POP_EXEC] = NO(ENOENT, "process deleted"),
            [HCSB__POP_QUERY] = NO(ENOENT, "process deleted"),
            [HCSB__POP_EXITED] = NO(EALREADY, "exit already recorded"),
            [HCSB__POP_DELETE] = NO(ENOENT, "process deleted"),
        },
};

void hcsb__proc_init(hcsb__proc_t *p) {
  memset(p, 0, sizeof(*p));
  p->state = HCSB__PS_CREATED;
}

int hcsb__proc_check(const hcsb__proc_t *p, hcsb__pop_t op, const char **msg) {
  const rule_t *r;

  if ((unsigned)p->state >= HCSB__PS_COUNT || (unsigned)op >= HCSB__POP_COUNT) {
    *msg = "invalid process operation";
    return -EINVAL;
  }
  r = &rules[p->state][op];
  if (r->err != 0) *msg = r->msg;
  return r->err;
}

int hcsb__proc_apply(hcsb__proc_t *p, hcsb__pop_t op, uint32_t value,
                     const char **msg) {
  int r = hcsb__proc_check(p, op, msg);

  if (r != 0) return r;
  if (op == HCSB__POP_STARTED) p->pid = value;
  if (rules[p->state][op].next == HCSB__PS_STOPPED &&
      p->state != HCSB__PS_STOPPED) {
    p->exit_status = value;
    if (p->exited_at.tv_sec == 0 && p->exited_at.tv_nsec == 0)
      clock_gettime(CLOCK_REALTIME, &p->exited_at);
  }
  p->state = rules[p->state][op].next;
  return 0;
}

const char *hcsb__pstate_name(hcsb__pstate_t s) {
  static const char *const names[HCSB__PS_COUNT] = {
      "created", "starting", "running", "stopped", "deleted"};
  return (unsigned)s < HCSB__PS_COUNT ? names[s] : "invalid";
}

const char *hcsb__pop_name(hcsb__pop_t op) {
  static const char *const names[HCSB__POP_COUNT] = {
      "start",   "started", "start-failed", "kill",   "resize",
      "closeio", "exec",    "query",        "exited", "delete"};
  return (unsigned)op < HCSB__POP_COUNT ? names[op] : "invalid";
}

int hcsb__pstate_task_status(hcsb__pstate_t s) {
  switch (s) {
    case HCSB__PS_CREATED:
    case HCSB__PS_STARTING:
      return 1;
    case HCSB__PS_RUNNING:
      return 2;
    default:
      return 3;
  }
}
