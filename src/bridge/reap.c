/* Never orphan guest work.  A Create or ExecuteProcess whose caller gave
 * up (timeout, cancel) may still succeed in the guest, leaving a container
 * or process nobody owns.  While such a call is out, the bridge keeps a
 * watch on it (container ID, the request type); when a late answer says
 * success, the bridge undoes the work with its own calls:
 *
 *   Create          -> ShutdownForced, then DeleteContainerState (when the
 *                      guest supports it), as hcsshim's terminate + delete
 *   ExecuteProcess  -> SignalProcess SIGKILL, then WaitForProcess
 *
 * and counts it in hcsb_bridge_stats_t.orphans_reaped.  Each step runs
 * whatever the previous one answered (a container that never started has
 * nothing to shut down, yet its state must go).  Only Create and
 * ExecuteProcess pay for this: one small allocation per call, none on the
 * other calls' paths. */
#include <stddef.h>
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
  char cid[];
};

typedef struct reap_s {
  hcsb_call_t call; /* embedded: restarted for each step */
  uint32_t type;    /* what is being undone (a request type) */
  int step;
  uint32_t pid;
  int has_cid;
  char cid[];
} reap_t;
/* The embedded call's callback gets the call as its data. */
_Static_assert(offsetof(reap_t, call) == 0, "reap_step finds r at its call");

int hcsb__reap_watched(uint32_t msg_type) {
  uint32_t req = (msg_type & ~HCSB_MSG_TYPE_MASK) | HCSB_MSG_TYPE_REQUEST;
  return req == HCSB_MSG_CREATE || req == HCSB_MSG_EXECUTE_PROCESS;
}

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
  free(w);
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
  char aid[37];

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
  } else if (r->step == 0) {
    req.type = HCSB_MSG_SIGNAL_PROCESS;
    req.u.signal.pid = r->pid;
    req.u.signal.signal = SIGKILL_NUM;
  } else if (r->step == 1) {
    req.type = HCSB_MSG_WAIT_FOR_PROCESS;
    req.u.wait.pid = r->pid;
    req.u.wait.timeout_ms = REAP_STEP_TIMEOUT_MS;
  } else {
    return 0;
  }
  return hcsb__call_start(b, &r->call, &req, NULL, REAP_STEP_TIMEOUT_MS,
                          reap_step, r, HCSB__CALL_INTERNAL, NULL) == 0;
}

static void reap_step(void *data, int status, const hcsb_guest_error_t *gerr,
                      const hcsb_response_t *resp) {
  reap_t *r = data;
  hcsb_bridge_t *b = r->call.bridge;
  (void)gerr, (void)resp;

  hcsb__log(b, status == 0 ? HCSB_LOG_DEBUG : HCSB_LOG_INFO, NULL,
            "cleanup after a late %s in %s, step %d: %s",
            hcsb__msg_name(r->type), r->has_cid ? r->cid : "the UVM", r->step,
            hcsb__errstr(status));
  /* A lost or closed bridge fails every step: no point trying the next. */
  r->step++;
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
