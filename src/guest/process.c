/* The process table: every process the emulator started, its waits and
 * its exit code, with the GCS's lifetime rules (protocol.md §7.5):
 *   - a process is "finished" when it was reaped and its output relays
 *     drained; only then are waits answered;
 *   - an exec'd or UVM process leaves the table once a wait returned its
 *     exit code (later lookups: 0x80070490); a container init stays until
 *     DeleteContainerState;
 *   - a wait with TimeoutInMs expires with 0xC0370109 and the process stays
 *     waitable.
 * We are the child subreaper, so orphaned descendants are reaped here too
 * and nothing is left as a zombie.  libuv spawns nothing for us, so
 * waitpid(-1) cannot steal a child libuv is waiting for. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest/act.h"
#include "guest/guest.h"

static void on_sigchld(uv_signal_t *h, int sig) {
  (void)sig;
  hcsb__gproc_reap(h->data);
}

int hcsb__gproc_init(hcsb__guest_t *g) {
  int r;

  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
    hcsb__glog(g, 0, "cannot become a child subreaper: %s", strerror(errno));
  r = uv_signal_init(g->loop, &g->sigchld);
  if (r < 0) return r;
  g->sigchld.data = g;
  return uv_signal_start(&g->sigchld, on_sigchld, SIGCHLD);
}

unsigned hcsb__gproc_live(const hcsb__guest_t *g) {
  const hcsb__gproc_t *p;
  unsigned n = 0;

  TAILQ_FOREACH(p, &g->procs, link)
  if (!p->finished) n++;
  return n;
}

static void proc_free(hcsb__gproc_t *p) {
  hcsb__guest_t *g = p->g;

  TAILQ_REMOVE(&g->procs, p, link);
  g->nprocs--;
  if (p->ctr != NULL) {
    TAILQ_REMOVE(&p->ctr->procs, p, clink);
    if (p->ctr->init == p) p->ctr->init = NULL;
    hcsb__gctr_unref(p->ctr);
  }
  hcsb__grelay_close(p->relay);
  free(p->argv0);
  free(p);
}

static void maybe_free(hcsb__gproc_t *p) {
  if (p->finished && !p->listed && TAILQ_EMPTY(&p->waits)) proc_free(p);
}

hcsb__gproc_t *hcsb__gproc_add(hcsb__guest_t *g, hcsb__gctr_t *ctr, pid_t pid,
                               int is_init, const char *argv0,
                               hcsb__grelay_t *relay, int tty) {
  hcsb__gproc_t *p = calloc(1, sizeof *p);

  if (p != NULL && argv0 != NULL) p->argv0 = strdup(argv0);
  if (p == NULL || (argv0 != NULL && p->argv0 == NULL)) {
    /* It runs but cannot be tracked: better gone (the reaper collects it
     * as an unknown child). */
    kill(pid, SIGKILL);
    hcsb__gkill_session(pid, SIGKILL);
    hcsb__grelay_close(relay);
    free(p);
    return NULL;
  }
  p->g = g;
  p->ctr = ctr;
  p->is_init = is_init;
  p->listed = 1;
  p->pid = pid;
  p->tty = tty;
  p->relay = relay;
  TAILQ_INIT(&p->waits);
  TAILQ_INSERT_TAIL(&g->procs, p, link);
  g->nprocs++;
  if (ctr != NULL) {
    TAILQ_INSERT_TAIL(&ctr->procs, p, clink);
    ctr->refs++;
    if (hcsb__gctr_track(ctr, pid) < 0)
      hcsb__glog(g, 0, "out of memory: session %d untracked", (int)pid);
  }
  if (relay != NULL) p->outputs_open = hcsb__grelay_start(relay, p);
  return p;
}

void hcsb__gproc_unlist(hcsb__gproc_t *p) {
  p->listed = 0;
  maybe_free(p);
}

hcsb__gproc_t *hcsb__gproc_find(hcsb__guest_t *g, hcsb__gctr_t *ctr,
                                uint32_t pid) {
  hcsb__gproc_t *p;

  TAILQ_FOREACH(p, &g->procs, link)
  if (p->listed && p->ctr == ctr && (uint32_t)p->pid == pid) return p;
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Waits */

static void on_wait_timer_closed(uv_handle_t *h) {
  hcsb__gwait_t *w = h->data;
  hcsb__gcall_free(&w->call);
  free(w);
}

static void wait_free(hcsb__gwait_t *w) {
  w->p->g->npending--;
  if (w->timed) {
    uv_close((uv_handle_t *)&w->timer, on_wait_timer_closed);
  } else {
    hcsb__gcall_free(&w->call);
    free(w);
  }
}

static void answer_exit(hcsb__gproc_t *p, const hcsb__gcall_t *call) {
  hcsb__gjw_t w;

  hcsb__greply_begin(&w, 0, call->aid);
  hcsb__gjw_u64(&w, "ExitCode", p->exit_code);
  hcsb__greply_finish(p->g, call, &w);
}

/* After a wait returned the exit code. */
static void wait_answered(hcsb__gproc_t *p) {
  p->waits_answered++;
  if (p->is_init) {
    if (p->ctr != NULL) hcsb__gctr_init_wait_answered(p->ctr);
  } else {
    p->listed = 0;
  }
}

static void on_wait_timeout(uv_timer_t *t) {
  hcsb__gwait_t *w = t->data;
  hcsb__gproc_t *p = w->p;

  TAILQ_REMOVE(&p->waits, w, link);
  hcsb__greply_err(p->g, &w->call, HCSB_E_VMCOMPUTE_TIMEOUT, NULL);
  wait_free(w);
  maybe_free(p);
}

void hcsb__gproc_wait(hcsb__gproc_t *p, const hcsb__gcall_t *call,
                      uint32_t timeout_ms) {
  hcsb__gwait_t *w;

  if (p->finished) {
    answer_exit(p, call);
    wait_answered(p);
    maybe_free(p);
    return;
  }
  w = calloc(1, sizeof *w);
  if (w == NULL || hcsb__gcall_copy(&w->call, call) != 0) {
    free(w);
    hcsb__greply_err(p->g, call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return;
  }
  w->p = p;
  if (timeout_ms != HCSB_INFINITE_WAIT) {
    if (uv_timer_init(p->g->loop, &w->timer) == 0) {
      w->timed = 1;
      w->timer.data = w;
      uv_timer_start(&w->timer, on_wait_timeout, timeout_ms, 0);
    }
  }
  TAILQ_INSERT_TAIL(&p->waits, w, link);
  p->g->npending++;
}

/* ------------------------------------------------------------------------ */
/* Exit */

static uint32_t exit_code_of(const hcsb__gproc_t *p) {
  if (WIFEXITED(p->wstatus)) return (uint32_t)WEXITSTATUS(p->wstatus);
  if (WIFSIGNALED(p->wstatus)) {
    /* runc reports 128+N for container processes; Go's ExitCode() is -1
     * for a UVM process killed by a signal. */
    if (p->ctr != NULL) return 128u + (uint32_t)WTERMSIG(p->wstatus);
    return 4294967295u;
  }
  return 4294967295u;
}

static void check_finished(hcsb__gproc_t *p) {
  hcsb__gwait_t *w;
  unsigned answered = 0;

  if (p->finished || !p->reaped || p->outputs_open > 0 || p->g->closing) return;
  p->finished = 1;
  p->exit_code = exit_code_of(p);
  hcsb__glog(p->g, 1, "process %d finished, exit code %" PRIu32, (int)p->pid,
             p->exit_code);
  hcsb__grelay_close(p->relay);
  p->relay = NULL;

  /* Every outstanding wait gets the exit code, then (for a container's
   * init) the notification may follow. */
  while ((w = TAILQ_FIRST(&p->waits)) != NULL) {
    TAILQ_REMOVE(&p->waits, w, link);
    answer_exit(p, &w->call);
    wait_free(w);
    answered++;
  }
  while (answered-- > 0) wait_answered(p);
  if (p->is_init && p->ctr != NULL) hcsb__gctr_init_finished(p->ctr);
  maybe_free(p);
}

void hcsb__gproc_relay_done(hcsb__gproc_t *p) {
  if (p->outputs_open > 0) p->outputs_open--;
  check_finished(p);
}

static void on_reaped(hcsb__gproc_t *p, int status) {
  p->reaped = 1;
  p->wstatus = status;
  if (p->is_init && p->ctr != NULL) hcsb__gctr_init_exited(p->ctr);
  if (p->relay != NULL) hcsb__grelay_process_exited(p->relay);
  check_finished(p);
}

void hcsb__gproc_exited(hcsb__gproc_t *p, int wstatus) {
  if (!p->reaped) on_reaped(p, wstatus);
}

void hcsb__gproc_reap(hcsb__guest_t *g) {
  hcsb__gproc_t *p;
  int status;
  pid_t pid;

  for (;;) {
    pid = waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) break;
    TAILQ_FOREACH(p, &g->procs, link)
    if (!p->reaped && p->pid == pid) break;
    /* No record: an orphaned descendant we adopted as subreaper (or, for
     * the acting backend, one of its helpers, or a container process
     * whose record comes when its runc command is done). */
    if (p != NULL)
      on_reaped(p, status);
    else if (g->act != NULL)
      hcsb__ga_reaped(g, pid, status);
  }
}

/* ------------------------------------------------------------------------ */
/* Teardown */

void hcsb__gproc_teardown(hcsb__guest_t *g) {
  hcsb__gproc_t *p;
  hcsb__gwait_t *w;
  pid_t *sids = malloc(g->nprocs * sizeof *sids + 1);
  size_t n = 0;

  TAILQ_FOREACH(p, &g->procs, link) {
    if (!p->reaped) {
      kill(p->pid, SIGKILL);
      if (sids != NULL) sids[n++] = p->pid;
    }
    while ((w = TAILQ_FIRST(&p->waits)) != NULL) {
      TAILQ_REMOVE(&p->waits, w, link);
      wait_free(w);
    }
    hcsb__grelay_close(p->relay);
    p->relay = NULL;
  }
  /* Their sessions too (one scan for all); whatever escapes re-parents to
   * us and is killed by the final reap. */
  hcsb__gkill_sessions(sids, n, SIGKILL);
  free(sids);
}

static int kill_child(const hcsb__gstat_t *st, void *arg) {
  (void)arg;
  if (st->ppid == getpid()) kill(st->pid, SIGKILL);
  return 0;
}

void hcsb__gproc_final_reap(hcsb__guest_t *g, unsigned deadline_ms) {
  struct timespec pause = {0, 10 * 1000 * 1000};
  hcsb__gproc_t *p;
  unsigned waited = 0;
  int status;
  pid_t pid;

  /* Everything still running dies.  Orphans re-parent to us (we are the
   * subreaper) as they lose their parents, so go in rounds: kill all our
   * children, reap what died, until none is left. */
  for (;;) {
    TAILQ_FOREACH(p, &g->procs, link)
    if (!p->reaped) kill(p->pid, SIGKILL);
    hcsb__gstat_each(kill_child, NULL);
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0 ||
           (pid < 0 && errno == EINTR)) {
      TAILQ_FOREACH(p, &g->procs, link)
      if (!p->reaped && p->pid == pid) p->reaped = 1;
    }
    if (pid < 0) break; /* ECHILD: nothing left */
    if (waited >= deadline_ms) {
      hcsb__glog(g, 0, "children still alive after %u ms", deadline_ms);
      break;
    }
    nanosleep(&pause, NULL);
    waited += 10;
  }
  while ((p = TAILQ_FIRST(&g->procs)) != NULL) {
    p->finished = 1;
    p->listed = 0;
    proc_free(p);
  }
}
