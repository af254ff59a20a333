/* Containers, emulated without isolation: a Create records the OCI spec,
 * the first ExecuteProcess without OciProcess runs spec.process as init,
 * and every process of the container lives in a session of its own whose
 * ID the container remembers.  When init exits the other members are
 * killed, as the kernel does when a PID namespace loses its init.
 *
 * The exit notification (0x30100101) is sent once: after init finished
 * AND at least one WaitForProcess on init was answered AND none is still
 * outstanding (protocol.md §7.13). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "guest/act.h"
#include "guest/guest.h"

hcsb__gctr_t *hcsb__gctr_find(hcsb__guest_t *g, const char *id) {
  hcsb__gctr_t *c;

  TAILQ_FOREACH(c, &g->ctrs, link)
  if (strcmp(c->id, id) == 0) return c;
  return NULL;
}

void hcsb__gctr_unref(hcsb__gctr_t *c) {
  if (--c->refs > 0) return;
  if (c->act != NULL) hcsb__ga_ctr_free(c);
  free(c->id);
  free(c->create_aid);
  free(c->bundle);
  free(c->sids);
  if (c->spec != NULL) json_object_put(c->spec);
  free(c);
}

void hcsb__gctr_insert(hcsb__gctr_t *c) {
  c->in_table = 1;
  TAILQ_INSERT_TAIL(&c->g->ctrs, c, link);
  c->g->nctrs++;
  c->g->retained += c->cost;
}

static void table_remove(hcsb__gctr_t *c) {
  if (!c->in_table) return;
  TAILQ_REMOVE(&c->g->ctrs, c, link);
  c->in_table = 0;
  c->g->nctrs--;
  c->g->retained -= c->cost;
  hcsb__gctr_unref(c);
}

typedef struct prune_s {
  hcsb__gctr_t *c;
  unsigned char *alive;
} prune_t;

static int mark_alive(const hcsb__gstat_t *st, void *arg) {
  prune_t *a = arg;
  size_t i;

  for (i = 0; i < a->c->nsids; i++)
    if (a->c->sids[i] == st->sid && hcsb__gis_descendant(st->pid))
      a->alive[i] = 1;
  return 0;
}

/* Forgets sessions with no member left (their IDs may be reused). */
static void prune_sids(hcsb__gctr_t *c) {
  prune_t a = {c, calloc(c->nsids ? c->nsids : 1, 1)};
  size_t i, j = 0;

  if (a.alive == NULL) return;
  hcsb__gstat_each(mark_alive, &a);
  for (i = 0; i < c->nsids; i++)
    if (a.alive[i]) c->sids[j++] = c->sids[i];
  c->nsids = j;
  free(a.alive);
}

int hcsb__gctr_track(hcsb__gctr_t *c, pid_t sid) {
  pid_t *n;

  if (c->nsids == c->sids_cap && c->nsids >= 64) prune_sids(c);
  if (c->nsids == c->sids_cap) {
    size_t cap = c->sids_cap ? c->sids_cap * 2 : 8;
    n = realloc(c->sids, cap * sizeof *n);
    if (n == NULL) return -ENOMEM;
    c->sids = n;
    c->sids_cap = cap;
  }
  c->sids[c->nsids++] = sid;
  return 0;
}

static void kill_members(hcsb__gctr_t *c) {
  hcsb__gkill_sessions(c->sids, c->nsids, SIGKILL);
}

static void maybe_notify(hcsb__gctr_t *c) {
  hcsb__gproc_t *init = c->init;
  const char *type;

  if (c->notified || !c->in_table || init == NULL || !init->finished ||
      init->waits_answered == 0 || !TAILQ_EMPTY(&init->waits))
    return;
  c->notified = 1;
  type = c->last_kill_sig == SIGTERM   ? "GracefulExit"
         : c->last_kill_sig == SIGKILL ? "ForcedExit"
                                       : "UnexpectedExit";
  hcsb__glog(c->g, 1, "container %s exited (%s)", c->id, type);
  hcsb__greply_notify(c->g, c->id, c->create_aid, type);
}

void hcsb__gctr_init_exited(hcsb__gctr_t *c) {
  c->state = HCSB__GCTR_STOPPED;
  kill_members(c);
}

void hcsb__gctr_init_finished(hcsb__gctr_t *c) {
  maybe_notify(c);
}

void hcsb__gctr_init_wait_answered(hcsb__gctr_t *c) {
  maybe_notify(c);
}

void hcsb__gctr_note_signal(hcsb__gctr_t *c, int sig) {
  if (sig == SIGTERM || sig == SIGKILL) c->last_kill_sig = sig;
}

typedef struct collect_s {
  hcsb__gctr_t *c;
  pid_t *pids;
  size_t n, cap;
  int err;
} collect_t;

static int collect(const hcsb__gstat_t *st, void *arg) {
  collect_t *a = arg;
  size_t i;

  if (st->state == 'Z') return 0;
  for (i = 0; i < a->c->nsids; i++)
    if (a->c->sids[i] == st->sid) break;
  if (i == a->c->nsids || !hcsb__gis_descendant(st->pid)) return 0;
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 16;
    pid_t *n = realloc(a->pids, cap * sizeof *n);
    if (n == NULL) {
      a->err = -ENOMEM;
      return 1;
    }
    a->pids = n;
    a->cap = cap;
  }
  a->pids[a->n++] = st->pid;
  return 0;
}

static int cmp_pid(const void *a, const void *b) {
  pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
  return x < y ? -1 : x > y;
}

int hcsb__gctr_pids(hcsb__gctr_t *c, pid_t **out, size_t *n) {
  collect_t a = {c, NULL, 0, 0, 0};

  if (c->act != NULL) return hcsb__ga_pids(c, out, n);

  hcsb__gstat_each(collect, &a);
  if (a.err != 0) {
    free(a.pids);
    return a.err;
  }
  if (a.n > 1) qsort(a.pids, a.n, sizeof *a.pids, cmp_pid);
  *out = a.pids;
  *n = a.n;
  return 0;
}

void hcsb__gctr_forget(hcsb__gctr_t *c) {
  table_remove(c);
}

void hcsb__gctr_teardown(hcsb__guest_t *g) {
  hcsb__gctr_t *c;

  while ((c = TAILQ_FIRST(&g->ctrs)) != NULL) table_remove(c);
}

/* ------------------------------------------------------------------------ */
/* Handlers */

/* runc's rule (^[\w+-.]+$, not "." or ".."), plus a length bound since the
 * ID lands in paths and logs. */
int hcsb__gctr_id_ok(const char *id) {
  size_t i, n = strlen(id);

  if (n == 0 || n > 255 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
    return 0;
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)id[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '_' || ch == '+' || ch == '-' ||
          ch == '.'))
      return 0;
  }
  return 1;
}

/* Type-checks the parts of an OCI process we use. */
int hcsb__gctr_check_process(hcsb__gdec_t *d, json_object *proc) {
  json_object *v = NULL;
  const char *s = NULL;
  uint32_t u = 0;
  int b = 0;

  d->strct = "Process";
  if (hcsb__gdec_strv(d, proc, "args", &v) < 0 ||
      hcsb__gdec_strv(d, proc, "env", &v) < 0 ||
      hcsb__gdec_str(d, proc, "cwd", &s) < 0 ||
      hcsb__gdec_bool(d, proc, "terminal", &b) < 0)
    return -1;
  v = NULL;
  if (hcsb__gdec_obj(d, proc, "consoleSize", &v) < 0) return -1;
  if (v != NULL) {
    d->strct = "Box";
    if (hcsb__gdec_u32(d, v, "height", &u) < 0 ||
        hcsb__gdec_u32(d, v, "width", &u) < 0)
      return -1;
  }
  return 0;
}

static void create_bad_config(hcsb__greq_t *r, const char *config,
                              const char *why) {
  size_t n = strlen(config);
  if (n > HCSB__G_MAX_ECHO) n = HCSB__G_MAX_ECHO;
  hcsb__greply_errf(r->g, &r->call, HCSB_E_VMCOMPUTE_INVALID_JSON,
                    "failed to unmarshal JSON for ContainerConfig \"%.*s\": "
                    "HRESULT 0xc037010d: %s",
                    (int)n, config, why);
}

void hcsb__gh_create(hcsb__greq_t *r) {
  hcsb__guest_t *g = r->g;
  json_object *cfg = NULL, *sv = NULL, *spec = NULL, *proc = NULL;
  const char *config = "", *s = NULL, *bundle = "";
  uint32_t major = 0, minor = 0;
  hcsb__gdec_t d;
  hcsb__gctr_t *c;
  hcsb__gjw_t w;

  if (hcsb__gdec_begin(r, &d, "ContainerCreate") < 0) return;
  if (hcsb__gdec_str(&d, r->root, "ContainerConfig", &config) < 0 ||
      hcsb__gdec_obj(&d, r->root, "SupportedVersions", &sv) < 0) {
    hcsb__gdec_fail(r, d.err);
    return;
  }
  if (hcsb__gdec_inner(&d, config, &cfg) < 0) {
    create_bad_config(r, config, d.err);
    return;
  }
  d.strct = "VMHostedContainerSettingsV2";
  sv = NULL;
  if (hcsb__gdec_root(&d, cfg, "prot.VMHostedContainerSettingsV2") < 0 ||
      hcsb__gdec_obj(&d, cfg, "SchemaVersion", &sv) < 0 ||
      hcsb__gdec_str(&d, cfg, "OciBundlePath", &bundle) < 0 ||
      hcsb__gdec_str(&d, cfg, "ScratchDirPath", &s) < 0 ||
      hcsb__gdec_obj(&d, cfg, "OciSpecification", &spec) < 0)
    goto bad_config;
  if (sv != NULL) {
    d.strct = "SchemaVersion";
    if (hcsb__gdec_u32(&d, sv, "Major", &major) < 0 ||
        hcsb__gdec_u32(&d, sv, "Minor", &minor) < 0)
      goto bad_config;
  }
  if (spec != NULL) {
    d.strct = "Spec";
    if (hcsb__gdec_obj(&d, spec, "process", &proc) < 0) goto bad_config;
    if (proc != NULL && hcsb__gctr_check_process(&d, proc) < 0) goto bad_config;
  }

  if (major < 2 || (major == 2 && minor < 1)) {
    hcsb__greply_errf(g, &r->call, HCSB_E_VMCOMPUTE_INVALID_JSON,
                      "HRESULT 0xc037010d: invalid schema version: {%" PRIu32
                      " %" PRIu32 "}",
                      major, minor);
    goto out;
  }
  /* The GCS dereferences the spec unconditionally and panics; a clean
   * error is the point of emulating it. */
  if (spec == NULL) {
    hcsb__greply_err(g, &r->call, HCSB_E_VMCOMPUTE_INVALID_JSON,
                     "HRESULT 0xc037010d: ContainerConfig has no "
                     "OciSpecification");
    goto out;
  }
  if (hcsb__gctr_find(g, r->cid) != NULL ||
      (g->act != NULL && hcsb__ga_creating(g, r->cid))) {
    hcsb__greply_err(g, &r->call, HCSB_E_VMCOMPUTE_SYSTEM_ALREADY_EXISTS, NULL);
    goto out;
  }
  /* The null ID addresses the UVM everywhere else, so a container by that
   * name could never be reached. */
  if (!hcsb__gctr_id_ok(r->cid) || strcmp(r->cid, HCSB__G_NULL_ID) == 0) {
    hcsb__greply_errf(g, &r->call, HCSB_E_INVALIDARG,
                      "invalid container id: %.*s", (int)strnlen(r->cid, 300),
                      r->cid);
    goto out;
  }
  if (proc == NULL) {
    hcsb__greply_err(g, &r->call, HCSB_E_FAIL,
                     "OciSpecification has no process to run");
    goto out;
  }
  /* The spec is kept until DeleteContainerState: bound what a host can
   * make us hold. */
  if (g->nctrs >= HCSB__G_MAX_CONTAINERS ||
      g->retained + r->len > HCSB__G_MAX_RETAINED) {
    hcsb__greply_err(g, &r->call, HCSB_E_FAIL, "too many containers");
    goto out;
  }
  c = calloc(1, sizeof *c);
  if (c == NULL || (c->id = strdup(r->cid)) == NULL ||
      (c->create_aid =
           strndup(r->call.aid ? r->call.aid : "", HCSB__G_MAX_AID)) == NULL ||
      (c->bundle = strdup(bundle)) == NULL) {
    if (c != NULL) {
      free(c->id);
      free(c->create_aid);
    }
    free(c);
    hcsb__greply_err(g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    goto out;
  }
  c->g = g;
  c->spec = json_object_get(spec);
  c->state = HCSB__GCTR_CREATED;
  c->refs = 1;
  c->cost = r->len;
  TAILQ_INIT(&c->procs);
  /* Inside a VM runc creates it; the answer comes when runc is done. */
  if (g->act != NULL) {
    hcsb__ga_create(r, c, s != NULL ? s : "");
    goto out;
  }
  hcsb__gctr_insert(c);
  hcsb__glog(g, 1, "container %s created", c->id);

  hcsb__greply_begin(&w, 0, r->call.aid);
  hcsb__gjw_u64(&w, "SelectedProtocolVersion", 0);
  hcsb__greply_finish(g, &r->call, &w);
  goto out;

bad_config:
  create_bad_config(r, config, d.err);
out:
  json_object_put(cfg);
}

void hcsb__gh_shutdown(hcsb__greq_t *r, int sig) {
  hcsb__gctr_t *c = hcsb__gctr_find(r->g, r->cid);

  if (c == NULL) {
    hcsb__greply_err(r->g, &r->call, HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND, NULL);
    return;
  }
  /* Inside a VM: runc kill --all, as the GCS does. */
  if (c->act != NULL && c->state != HCSB__GCTR_STOPPED &&
      (c->init == NULL || !c->init->reaped)) {
    hcsb__ga_kill(r->g, &r->call, c, sig);
    return;
  }
  /* runc kill reaches init only; the others go when init does.  The GCS
   * answers without waiting, and a stopped container is not an error. */
  if (c->state == HCSB__GCTR_RUNNING && c->init != NULL && !c->init->reaped) {
    if (kill(c->init->pid, sig) == 0) hcsb__gctr_note_signal(c, sig);
  } else if (c->state == HCSB__GCTR_CREATED) {
    c->state = HCSB__GCTR_STOPPED;
    hcsb__gctr_note_signal(c, sig);
  }
  hcsb__greply_ok(r->g, &r->call);
}

/* The process a Signal/Resize addresses, or NULL after answering. */
static hcsb__gproc_t *target(hcsb__greq_t *r, uint32_t pid) {
  hcsb__gctr_t *c = NULL;
  hcsb__gproc_t *p;

  if (strcmp(r->cid, HCSB__G_NULL_ID) == 0) {
    /* The GCS looks the null ID up as a container and fails. */
    if (!r->g->allow_uvm_signal) {
      hcsb__greply_err(r->g, &r->call, HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND, NULL);
      return NULL;
    }
  } else {
    c = hcsb__gctr_find(r->g, r->cid);
    if (c == NULL) {
      hcsb__greply_err(r->g, &r->call, HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND, NULL);
      return NULL;
    }
  }
  p = hcsb__gproc_find(r->g, c, pid);
  if (p == NULL) hcsb__greply_err(r->g, &r->call, HCSB_E_NOT_FOUND, NULL);
  return p;
}

void hcsb__gh_signal(hcsb__greq_t *r) {
  json_object *opts = NULL;
  uint32_t pid = 0;
  int32_t sig = 0;
  hcsb__gproc_t *p;
  hcsb__gdec_t d;

  if (hcsb__gdec_begin(r, &d, "ContainerSignalProcess") < 0) return;
  if (hcsb__gdec_u32(&d, r->root, "ProcessId", &pid) < 0 ||
      hcsb__gdec_obj(&d, r->root, "Options", &opts) < 0) {
    hcsb__gdec_fail(r, d.err);
    return;
  }
  d.strct = "SignalProcessOptions";
  if (opts != NULL && hcsb__gdec_i32(&d, opts, "Signal", &sig) < 0) {
    hcsb__gdec_fail(r, d.err);
    return;
  }
  p = target(r, pid);
  if (p == NULL) return;
  if (sig == 0) sig = SIGKILL; /* omitempty makes 0 inexpressible */
  if (p->reaped) {
    hcsb__greply_err(r->g, &r->call, HCSB_E_NOT_FOUND, NULL);
    return;
  }
  /* The GCS turns SIGTERM/SIGKILL to a container's init into its
   * shutdown (runc kill --all). */
  if (p->is_init && p->ctr != NULL && p->ctr->act != NULL &&
      (sig == SIGTERM || sig == SIGKILL)) {
    hcsb__ga_kill(r->g, &r->call, p->ctr, sig);
    return;
  }
  if (kill(p->pid, sig) < 0) {
    if (errno == ESRCH)
      hcsb__greply_err(r->g, &r->call, HCSB_E_NOT_FOUND, NULL);
    else
      hcsb__greply_errf(r->g, &r->call, HCSB_E_FAIL,
                        "failed to send signal %" PRId32 " to pid %d: %s", sig,
                        (int)p->pid, strerror(errno));
    return;
  }
  if (p->is_init && p->ctr != NULL) hcsb__gctr_note_signal(p->ctr, sig);
  hcsb__greply_ok(r->g, &r->call);
}

void hcsb__gh_resize(hcsb__greq_t *r) {
  uint16_t height = 0, width = 0;
  uint32_t pid = 0;
  hcsb__gproc_t *p;
  hcsb__gdec_t d;
  int e;

  if (hcsb__gdec_begin(r, &d, "ContainerResizeConsole") < 0) return;
  if (hcsb__gdec_u32(&d, r->root, "ProcessId", &pid) < 0 ||
      hcsb__gdec_u16(&d, r->root, "Height", &height) < 0 ||
      hcsb__gdec_u16(&d, r->root, "Width", &width) < 0) {
    hcsb__gdec_fail(r, d.err);
    return;
  }
  p = target(r, pid);
  if (p == NULL) return;
  if (!p->tty) {
    hcsb__greply_errf(r->g, &r->call, HCSB_E_FAIL,
                      "pid: %" PRIu32 ", is not a tty and cannot be resized",
                      pid);
    return;
  }
  /* After the relay closed the GCS ignores resizes (no error). */
  e = p->relay != NULL ? hcsb__grelay_resize(p->relay, height, width) : 0;
  if (e < 0) {
    hcsb__greply_errf(r->g, &r->call, HCSB_E_FAIL, "resize pid %" PRIu32 ": %s",
                      pid, strerror(-e));
    return;
  }
  hcsb__greply_ok(r->g, &r->call);
}

void hcsb__gh_wait(hcsb__greq_t *r) {
  uint32_t pid = 0, timeout = 0;
  hcsb__gctr_t *c = NULL;
  hcsb__gproc_t *p;
  hcsb__gdec_t d;

  if (hcsb__gdec_begin(r, &d, "ContainerWaitForProcess") < 0) return;
  if (hcsb__gdec_u32(&d, r->root, "ProcessId", &pid) < 0 ||
      hcsb__gdec_u32(&d, r->root, "TimeoutInMs", &timeout) < 0) {
    hcsb__gdec_fail(r, d.err);
    return;
  }
  /* The null ID waits on UVM processes (those started with
   * CreateInUtilityVM too); anything else must be a container. */
  if (strcmp(r->cid, HCSB__G_NULL_ID) != 0) {
    c = hcsb__gctr_find(r->g, r->cid);
    if (c == NULL) {
      hcsb__greply_err(r->g, &r->call, HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND, NULL);
      return;
    }
  }
  p = hcsb__gproc_find(r->g, c, pid);
  if (p == NULL) {
    hcsb__greply_err(r->g, &r->call, HCSB_E_NOT_FOUND, NULL);
    return;
  }
  if (r->g->npending >= HCSB__G_MAX_PENDING) {
    hcsb__greply_err(r->g, &r->call, HCSB_E_FAIL,
                     "too many outstanding requests");
    return;
  }
  hcsb__gproc_wait(p, &r->call, timeout);
}

static void bad_query(hcsb__greq_t *r, const char *why) {
  /* Go formats the zero PropertyQuery as '{[]}'. */
  hcsb__greply_errf(r->g, &r->call, HCSB_E_VMCOMPUTE_INVALID_JSON,
                    "The query could not be unmarshaled: '{[]}': "
                    "HRESULT 0xc037010d: %s",
                    why);
}

void hcsb__gh_get_properties(hcsb__greq_t *r) {
  json_object *q = NULL, *types = NULL;
  const char *query = "";
  int want_list = 0, want_stats = 0;
  pid_t *pids = NULL;
  size_t npids = 0, i;
  hcsb__gctr_t *c;
  hcsb__gdec_t d;
  hcsb__gjw_t props, w;

  if (hcsb__gdec_begin(r, &d, "ContainerGetProperties") < 0) return;
  if (hcsb__gdec_str(&d, r->root, "Query", &query) < 0) {
    hcsb__gdec_fail(r, d.err);
    return;
  }
  if (query[0] != '\0') {
    if (hcsb__gdec_inner(&d, query, &q) < 0) {
      bad_query(r, d.err);
      return;
    }
    d.strct = "PropertyQuery";
    if (hcsb__gdec_root(&d, q, "prot.PropertyQuery") < 0 ||
        hcsb__gdec_strv(&d, q, "PropertyTypes", &types) < 0) {
      bad_query(r, d.err);
      json_object_put(q);
      return;
    }
    for (i = 0; types != NULL && i < json_object_array_length(types); i++) {
      const char *t =
          json_object_get_string(json_object_array_get_idx(types, i));
      if (t == NULL) continue;
      if (strcmp(t, "ProcessList") == 0) want_list = 1;
      if (strcmp(t, "Statistics") == 0) want_stats = 1;
    }
    json_object_put(q);
  }
  if (strcmp(r->cid, HCSB__G_NULL_ID) == 0) {
    hcsb__greply_err(r->g, &r->call, HCSB_E_FAIL,
                     "getPropertiesV2 is not supported against the UVM");
    return;
  }
  c = hcsb__gctr_find(r->g, r->cid);
  if (c == NULL) {
    hcsb__greply_err(r->g, &r->call, HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND, NULL);
    return;
  }
  if ((want_list || want_stats) && hcsb__gctr_pids(c, &pids, &npids) < 0) {
    hcsb__greply_err(r->g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return;
  }

  hcsb__gjw_init(&props);
  hcsb__gjw_obj(&props, NULL);
  if (want_list && npids > 0) { /* omitempty */
    hcsb__gjw_arr(&props, "ProcessList");
    for (i = 0; i < npids; i++) {
      hcsb__gjw_obj(&props, NULL);
      hcsb__gjw_u64(&props, "ProcessId", (uint64_t)pids[i]);
      hcsb__gjw_end(&props, '}');
    }
    hcsb__gjw_end(&props, ']');
  }
  if (want_stats) hcsb__gmetrics_write(&props, "LCOWMetrics", pids, npids);
  hcsb__gjw_end(&props, '}');
  free(pids);

  hcsb__greply_begin(&w, 0, r->call.aid);
  if (props.err)
    w.err = 1;
  else
    hcsb__gjw_str(&w, "Properties", props.b.data, props.b.len);
  hcsb__greply_finish(r->g, &r->call, &w);
  hcsb__gjw_free(&props);
}

void hcsb__gh_delete(hcsb__greq_t *r) {
  hcsb__gctr_t *c;
  hcsb__gproc_t *p, *next;
  int running = 0, mounted;
  hcsb__gdec_t d;

  if (hcsb__gdec_begin(r, &d, "MessageBase") < 0) return;
  c = hcsb__gctr_find(r->g, r->cid);
  if (c == NULL) {
    hcsb__greply_err(r->g, &r->call, HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND, NULL);
    return;
  }
  if (c->act != NULL) {
    hcsb__ga_delete(r, c);
    return;
  }
  TAILQ_FOREACH(p, &c->procs, clink)
  if (!p->reaped) running = 1;
  if (running) kill_members(c);

  /* The GCS forgets the container even when the delete fails.  Records of
   * its processes go as soon as they have finished. */
  c->refs++;
  table_remove(c);
  for (p = TAILQ_FIRST(&c->procs); p != NULL; p = next) {
    next = TAILQ_NEXT(p, clink);
    hcsb__gproc_unlist(p);
  }
  /* os.RemoveAll(bundle) meets what is still mounted below it (the
   * overlay at <bundle>/rootfs): the mount point itself is busy, so its
   * parent is not empty.  Joined with a runc failure the HRESULT is lost. */
  mounted = c->bundle[0] != '\0' &&
            hcsb__gmodify_mount_under(r->g, c->bundle) != NULL;
  if (running && mounted)
    hcsb__greply_errf(r->g, &r->call, HCSB_E_FAIL,
                      "errors deleting container state: cannot delete "
                      "container %s that is not stopped; unlinkat %s: "
                      "directory not empty",
                      c->id, c->bundle);
  else if (running)
    hcsb__greply_errf(r->g, &r->call, HCSB_E_VMCOMPUTE_INVALID_STATE,
                      "cannot delete container %s that is not stopped", c->id);
  else if (mounted)
    hcsb__greply_errf(r->g, &r->call, HCSB_E_FAIL,
                      "unlinkat %s: directory not empty", c->bundle);
  else
    hcsb__greply_ok(r->g, &r->call);
  hcsb__gctr_unref(c);
}
