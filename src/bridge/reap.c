/* Never orphan guest work.  A Create or ExecuteProcess whose caller gave
 * up (timeout, cancel) may still succeed in the guest, leaving a container
 * or process nobody owns.  While such a call is out, the bridge keeps a
 * watch on it (container ID, the request type); when a late answer says
 * success, the bridge undoes the work with its own calls:
 *
 *   Create          -> ShutdownForced, then DeleteContainerState (when the
 *                      guest supports it), as hcsshim's terminate + delete
 *   ExecuteProcess  -> SignalProcess SIGKILL, then WaitForProcess with no
 *                      timeout (the guest keeps a process's record until a
 *                      wait has reported its exit, as hcsshim's own wait
 *                      has no timeout either)
 *
 * A process in the UVM (the null container) cannot be signalled by a
 * v0.11.8 GCS (it answers 0xC037010E): when the signal is refused, a UVM
 * process of the bridge's own kills it ("/bin/sh -c 'kill -KILL PID'", the
 * guest's busybox), is waited for, and then the orphan is.
 *
 * and counts it in hcsb_bridge_stats_t.orphans_reaped.  Each step runs
 * whatever the previous one answered (a container that never started has
 * nothing to shut down, yet its state must go).
 *
 * A ModifySettings given up on is watched the same way, but not undone:
 * its caller (the API layer) registers what a late success means to its
 * records (hcsb__call_on_late_success), so the resource is tracked and
 * removed with the container it belongs to.  Only Create, ExecuteProcess
 * and ModifySettings pay for this: one small allocation per call, none on
 * the other calls' paths. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/internal.h"

#define REAP_STEP_TIMEOUT_MS 30000u
#define SIGKILL_NUM 9

struct hcsb__watch_s {
  hcsb__link_t link;
  hcsb_call_t *call; /* NULL once abandoned */
  uint64_t id;       /* abandoned: the SequenceID a late answer carries */
  uint32_t type;     /* the request type */
  int has_cid;       /* 0: the null container (a UVM process) */
  /* ModifySettings: the caller's record of a late success */
  void (*late)(void *ctx);
  void (*late_free)(void *ctx);
  void *late_ctx;
  char cid[];
};

typedef struct reap_s {
  hcsb_call_t call; /* embedded: restarted for each step */
  uint32_t type;    /* what is being undone (a request type) */
  int step;
  uint32_t pid;
  uint32_t killer; /* the UVM process that kills `pid` */
  int has_cid;
  char cid[];
} reap_t;
/* The embedded call's callback gets the call as its data. */
_Static_assert(offsetof(reap_t, call) == 0, "reap_step finds r at its call");

/* The steps that undo an ExecuteProcess. */
enum { X_SIGNAL = 0, X_KILLER, X_KILLER_WAIT, X_WAIT, X_DONE };

hcsb__watch_t *hcsb__reap_watch_new(const hcsb_request_t *req) {
  const char *cid = req->container_id;
  size_t n = cid != NULL ? strlen(cid) : 0;
  hcsb__watch_t *w = calloc(1, sizeof *w + n + 1);

  if (w == NULL) return NULL;
  hcsb__list_init(&w->link);
  w->type = req->type;
  w->has_cid = cid != NULL;
  if (n != 0) memcpy(w->cid, cid, n);
  return w;
}

static void watch_free(hcsb__watch_t *w);

/* A caller that retries a Create with the same ID owns whatever that ID
 * names from now on: a late success of the Create it gave up on must not
 * tear down the container the retry makes (the guest refuses the retry if
 * the first one made it, and the caller then sees that error). */
static void forget_abandoned_create(hcsb_bridge_t *b, const hcsb__watch_t *w) {
  hcsb__link_t *l, *next;

  if (w->type != HCSB_MSG_CREATE || !w->has_cid) return;
  for (l = b->watches.next; l != &b->watches; l = next) {
    hcsb__watch_t *x = HCSB__CONTAINER_OF(l, hcsb__watch_t, link);
    next = l->next;
    if (x->call == NULL && x->type == HCSB_MSG_CREATE && x->has_cid &&
        strcmp(x->cid, w->cid) == 0)
      watch_free(x);
  }
}

void hcsb__reap_watch_start(hcsb_bridge_t *b, hcsb__watch_t *w,
                            hcsb_call_t *c) {
  forget_abandoned_create(b, w);
  w->call = c;
  hcsb__list_push(&b->watches, &w->link);
}

static hcsb__watch_t *find_call(hcsb_bridge_t *b, const hcsb_call_t *c) {
  for (hcsb__link_t *l = b->watches.next; l != &b->watches; l = l->next) {
    hcsb__watch_t *w = HCSB__CONTAINER_OF(l, hcsb__watch_t, link);
    if (w->call == c) return w;
  }
  return NULL;
}

static void watch_free(hcsb__watch_t *w) {
  hcsb__list_remove(&w->link);
  if (w->late_free != NULL) w->late_free(w->late_ctx);
  free(w);
}

void hcsb__call_on_late_success(hcsb_call_t *c, void (*fn)(void *ctx),
                                void *ctx, void (*ctx_free)(void *ctx)) {
  hcsb__watch_t *w =
      c->bridge != NULL && hcsb__call_busy(c) ? find_call(c->bridge, c) : NULL;
  if (w == NULL || w->type != HCSB_MSG_MODIFY_SETTINGS) {
    if (ctx_free != NULL) ctx_free(ctx);
    return;
  }
  w->late = fn;
  w->late_free = ctx_free;
  w->late_ctx = ctx;
}

void hcsb__reap_call_ended(hcsb_bridge_t *b, hcsb_call_t *c) {
  hcsb__watch_t *w = find_call(b, c);
  if (w != NULL) watch_free(w);
}

void hcsb__reap_call_abandoned(hcsb_bridge_t *b, hcsb_call_t *c) {
  hcsb__watch_t *w = find_call(b, c);
  if (w == NULL) return;
  w->call = NULL;
  w->id = c->u.id;
}

void hcsb__reap_drop_abandoned(hcsb_bridge_t *b) {
  hcsb__link_t *l, *next;
  for (l = b->watches.next; l != &b->watches; l = next) {
    hcsb__watch_t *w = HCSB__CONTAINER_OF(l, hcsb__watch_t, link);
    next = l->next;
    if (w->call == NULL) watch_free(w);
  }
}

void hcsb__reap_free(hcsb_bridge_t *b) {
  while (!hcsb__list_empty(&b->watches))
    watch_free(HCSB__CONTAINER_OF(b->watches.next, hcsb__watch_t, link));
}

/* ------------------------------------------------------------------------ */
/* The cleanup chain */

static void reap_step(void *data, int status, const hcsb_guest_error_t *gerr,
                      const hcsb_response_t *resp);

/* Sends step `r->step`; returns 0 when there is nothing left to send. */
static int reap_send(hcsb_bridge_t *b, reap_t *r) {
  hcsb_request_t req;
  char aid[37], params[256];
  uint32_t timeout = REAP_STEP_TIMEOUT_MS;

  memset(&req, 0, sizeof req);
  hcsb__guid_generate(aid);
  req.activity_id = aid;
  req.container_id = r->has_cid ? r->cid : NULL;
  if (r->type == HCSB_MSG_CREATE) {
    if (r->step == 0) {
      req.type = HCSB_MSG_SHUTDOWN_FORCED;
    } else if (r->step == 1 && b->caps.guest.delete_container_state_supported) {
      req.type = HCSB_MSG_DELETE_CONTAINER_STATE;
    } else {
      return 0;
    }
  } else if (r->step == X_SIGNAL) {
    req.type = HCSB_MSG_SIGNAL_PROCESS;
    req.u.signal.pid = r->pid;
    req.u.signal.signal = SIGKILL_NUM;
  } else if (r->step == X_KILLER) {
    req.type = HCSB_MSG_EXECUTE_PROCESS;
    req.container_id = NULL;
    snprintf(params, sizeof params,
             "{\"CommandArgs\":[\"/bin/sh\",\"-c\",\"kill -KILL %u\"],"
             "\"WorkingDirectory\":\"/\",\"Environment\":{\"PATH\":"
             "\"/bin:/sbin:/usr/bin:/usr/sbin\"}}",
             (unsigned)r->pid);
    req.u.execute.process_parameters = params;
  } else if (r->step == X_KILLER_WAIT || r->step == X_WAIT) {
    req.type = HCSB_MSG_WAIT_FOR_PROCESS;
    if (r->step == X_KILLER_WAIT) req.container_id = NULL;
    req.u.wait.pid = r->step == X_KILLER_WAIT ? r->killer : r->pid;
    req.u.wait.timeout_ms = HCSB_INFINITE_WAIT;
    timeout = 0; /* until it exits, or the bridge goes */
  } else {
    return 0;
  }
  return hcsb__call_start(b, &r->call, &req, NULL, timeout, reap_step, r,
                          HCSB__CALL_INTERNAL, NULL) == 0;
}

/* The step after an ExecuteProcess's undo step that ended with `status`. */
static int exec_next(const reap_t *r, int status, const hcsb_response_t *resp) {
  switch (r->step) {
    case X_SIGNAL:
      /* Refused (a UVM process in a v0.11.8 guest), or lost in transit: a
       * UVM process of our own does it. */
      return status == 0 || r->has_cid ? X_WAIT : X_KILLER;
    case X_KILLER:
      return status == 0 && resp != NULL && resp->process_id != 0
                 ? X_KILLER_WAIT
                 : X_WAIT;
    case X_KILLER_WAIT:
      return X_WAIT;
    default:
      return X_DONE;
  }
}

static void reap_step(void *data, int status, const hcsb_guest_error_t *gerr,
                      const hcsb_response_t *resp) {
  reap_t *r = data;
  hcsb_bridge_t *b = r->call.bridge;
  (void)gerr;

  hcsb__log(b, status == 0 ? HCSB_LOG_DEBUG : HCSB_LOG_INFO, NULL,
            "cleanup after a late %s in %s, step %d: %s",
            hcsb__msg_name(r->type), r->has_cid ? r->cid : "the UVM", r->step,
            hcsb__errstr(status));
  /* A lost or closed bridge fails every step: no point trying the next. */
  if (r->type == HCSB_MSG_EXECUTE_PROCESS) {
    if (r->step == X_KILLER && status == 0 && resp != NULL)
      r->killer = resp->process_id;
    r->step = exec_next(r, status, resp);
  } else {
    r->step++;
  }
  if (b->phase != HCSB__READY || !reap_send(b, r)) free(r);
}

/* A late answer to an abandoned call: when it is the success of a watched
 * Create/ExecuteProcess, undo what that made.  Either way the watch goes.
 * `body` is NULL for an answer too large to read. */
void hcsb__reap_late(hcsb_bridge_t *b, const hcsb__hdr_t *h, const void *body,
                     size_t len) {
  hcsb__watch_t *w = NULL;
  for (hcsb__link_t *l = b->watches.next; l != &b->watches; l = l->next) {
    hcsb__watch_t *x = HCSB__CONTAINER_OF(l, hcsb__watch_t, link);
    if (x->call == NULL && x->id == h->id) {
      w = x;
      break;
    }
  }
  if (w == NULL) return;
  if ((h->type & ~HCSB_MSG_TYPE_MASK) != (w->type & ~HCSB_MSG_TYPE_MASK)) {
    watch_free(w); /* the wrong answer for its ID: nothing known was made */
    return;
  }

  hcsb_response_t resp;
  hcsb_guest_error_t gerr;
  int has_gerr = 0, rc = -EMSGSIZE;
  memset(&resp, 0, sizeof resp);
  memset(&gerr, 0, sizeof gerr);
  if (body != NULL)
    rc = hcsb__response_decode(&b->dctx, h->type, h->id, body, len, &resp,
                               &gerr, &has_gerr);
  uint32_t pid = resp.process_id;
  hcsb__decode_release(&b->dctx);
  if (w->type == HCSB_MSG_MODIFY_SETTINGS) {
    /* Nothing to undo: the caller records what the guest now holds, so
     * its teardown removes it. */
    if (rc == 0 && !has_gerr && b->phase == HCSB__READY && w->late != NULL)
      w->late(w->late_ctx);
    watch_free(w);
    return;
  }
  int is_exec = w->type == HCSB_MSG_EXECUTE_PROCESS;
  if (rc != 0 || has_gerr || (is_exec && pid == 0) || b->phase != HCSB__READY) {
    watch_free(w);
    return;
  }

  size_t n = strlen(w->cid);
  reap_t *r = calloc(1, sizeof *r + n + 1);
  if (r == NULL) {
    hcsb__log(b, HCSB_LOG_ERROR, NULL,
              "out of memory: %s %s answered late and stays in the guest",
              hcsb__msg_name(w->type), w->cid);
    watch_free(w);
    return;
  }
  hcsb__call_embed(&r->call);
  r->type = w->type;
  r->pid = pid;
  r->has_cid = w->has_cid;
  memcpy(r->cid, w->cid, n + 1);
  watch_free(w);
  hcsb__log(b, HCSB_LOG_WARN, NULL,
            "%s in %s succeeded after its caller gave up (pid %u): cleaning up",
            hcsb__msg_name(r->type), r->has_cid ? r->cid : "the UVM",
            (unsigned)pid);
  b->st.orphans_reaped++;
  if (!reap_send(b, r)) free(r);
}
