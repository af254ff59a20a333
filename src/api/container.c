/* Containers: the ContainerConfig -> ModifySettings... + Create sequence
 * (protocol.md §9.6), waits fed by the connection's notification waiter,
 * and the lifecycle RPCs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-int.h"

#define MAX_ID_LEN 1024u

/* ------------------------------------------------------------------------ */
/* Objects */

static hcsb_container_t *container_new(hcsb_conn_t *conn, const char *id) {
  size_t n = strlen(id);
  hcsb_container_t *c = calloc(1, sizeof(*c) + n + 1);

  if (c == NULL) return NULL;
  hcsb__obj_init(&c->obj, HCSB__KIND_CONTAINER, conn);
  hcsb__list_init(&c->waits);
  hcsb__list_init(&c->processes);
  memcpy(c->id, id, n + 1);
  return c;
}

void hcsb__container_free(hcsb_container_t *c) {
  hcsb__disks_free(c->disks, c->ndisks);
  hcsb__props_free(c);
  free(c->items);
  hcsb__buf_free(&c->strings);
  hcsb__mstore_free(c->mstore);
  free(c);
}

int hcsb__container_idle(const hcsb_container_t *c) {
  return hcsb__list_empty(&c->waits);
}

/* What a wait reports, from the waiter's state (or the handle's close). */
static void wait_fill(hcsb_container_t *c, hcsb__wait_t *w) {
  hcsb__cwaiter_t *cw = c->waiter;
  int status = -ECANCELED;

  memset(&w->exit, 0, sizeof(w->exit));
  w->exit.end = HCSB_CONTAINER_CLOSED;
  if (!c->obj.base.closing && cw != NULL) {
    switch (cw->end) {
      case HCSB__CEND_EXITED:
        status = 0;
        w->exit.end = HCSB_CONTAINER_EXITED;
        w->exit.type = cw->type;
        memcpy(w->type_name, cw->type_name, sizeof(w->type_name));
        w->exit.type_name = w->type_name;
        w->exit.result = cw->result;
        break;
      case HCSB__CEND_LOST:
        status = cw->status;
        w->exit.end = HCSB_CONTAINER_CONNECTION_LOST;
        break;
      case HCSB__CEND_NONE:
      case HCSB__CEND_CONN_CLOSED:
        break;
    }
  }
  hcsb__wait_queue(w, status);
}

static void end_waits(hcsb_container_t *c) {
  hcsb__link_t *l;

  for (l = c->waits.next; l != &c->waits; l = l->next) {
    hcsb__wait_t *w = HCSB__CONTAINER_OF(l, hcsb__wait_t, link);
    if (!hcsb__defer_queued(&w->defer)) wait_fill(c, w);
  }
}

void hcsb__container_conn_ended(hcsb_container_t *c) {
  end_waits(c);
}

int hcsb_container_wait(hcsb_container_t *c, uint32_t timeout_ms,
                        hcsb_container_wait_cb cb, void *data) {
  hcsb__wait_t *w;
  int r;

  if (c == NULL || cb == NULL) return -EINVAL;
  r = hcsb__wait_new(&c->obj, &c->waits, timeout_ms, &w);
  if (r != 0) return r;
  w->cb.container = cb;
  w->data = data;
  if (c->obj.base.closing || c->waiter == NULL ||
      c->waiter->end != HCSB__CEND_NONE)
    wait_fill(c, w);
  return 0;
}

void hcsb_container_close(hcsb_container_t *c, hcsb_close_cb cb, void *data) {
  if (c == NULL || c->obj.base.closing) return;
  c->obj.base.closing = 1;
  end_waits(c);
  /* The registration stays (a late notification is still recognised);
   * only the handle lets go. */
  if (c->waiter != NULL) c->waiter->handle = NULL;
  c->waiter = NULL;
  hcsb__obj_close(&c->obj, cb, data);
}

static int attach(hcsb_conn_t *conn, const char *id, int reset,
                  hcsb_container_t **out) {
  hcsb__cwaiter_t *w = hcsb__waiter_find(conn, id);
  hcsb_container_t *c;

  if (w != NULL && w->handle != NULL) return -EEXIST;
  c = container_new(conn, id);
  if (c == NULL) return -ENOMEM;
  w = hcsb__waiter_get(conn, id, reset);
  if (w == NULL) {
    hcsb__obj_abort(&c->obj); /* nobody saw it: no close callback */
    return -ENOMEM;
  }
  w->handle = c;
  c->waiter = w;
  *out = c;
  return 0;
}

static void detach_unseen(hcsb_container_t *c) {
  c->waiter->handle = NULL;
  c->waiter = NULL;
  hcsb__obj_abort(&c->obj);
}

static int id_ok(const char *id) {
  return id != NULL && id[0] != '\0' && strlen(id) <= MAX_ID_LEN;
}

int hcsb_conn_open_container(hcsb_conn_t *conn, const char *id,
                             hcsb_container_t **out) {
  if (conn == NULL || !id_ok(id) || out == NULL) return -EINVAL;
  return attach(conn, id, 0, out);
}

const char *hcsb_container_id(const hcsb_container_t *c) {
  return c->id;
}

hcsb_conn_t *hcsb_container_conn(const hcsb_container_t *c) {
  return c->obj.conn;
}

/* hcsshim's Container.OS and IsOCI: the guest's, as every container of a
 * utility VM runs on that guest. */
const char *hcsb_container_os(const hcsb_container_t *c) {
  return hcsb_conn_os(c->obj.conn);
}

int hcsb_container_is_oci(const hcsb_container_t *c) {
  const char *os = hcsb_conn_os(c->obj.conn);

  if (os[0] == '\0') return -ENOTCONN;
  return strcmp(os, "windows") != 0;
}

void hcsb_container_set_data(hcsb_container_t *c, void *data) {
  c->obj.base.data = data;
}

void *hcsb_container_get_data(const hcsb_container_t *c) {
  return c->obj.base.data;
}

size_t hcsb_container_mapped_virtual_disks(
    const hcsb_container_t *c, const hcsb_mapped_virtual_disk_t **out) {
  if (c == NULL) return 0;
  if (out != NULL) *out = c->disks;
  return c->ndisks;
}

/* ------------------------------------------------------------------------ */
/* Create: the plan of requests, sent one after the other */

typedef struct step_s {
  uint32_t type; /* ModifySettings or Create */
  char *text;
  hcsb__disk_change_t *disk; /* MappedVirtualDisk Add: recorded on success */
  hcsb__res_t *res;          /* an Add: tracked for teardown on success */
  int needs_ns_cap;          /* Network Add: NamespaceAddRequestSupported */
} step_t;

/* On the first failure the plan turns around: what it added is removed,
 * newest first, and only then is the failure reported. */
typedef struct plan_s {
  size_t n, next;
  hcsb_container_t *c; /* the op's owner: alive until the plan is freed */
  uint64_t tag;        /* marks the resources this create added */
  int undoing;
  int status; /* the failure being undone */
  hcsb__gerr_saved_t gerr;
  hcsb__release_t rl;
  step_t steps[];
} plan_t;

static void plan_free(void *p) {
  plan_t *plan = p;
  size_t i;

  if (plan == NULL) return;
  /* An undo cut short (handle closed, connection gone) leaves the rest
   * tracked under the ID, for a delete to release. */
  if (plan->c != NULL) hcsb__release_end(plan->rl.conn, plan->c->id, &plan->rl);
  for (i = 0; i < plan->n; i++) {
    free(plan->steps[i].text);
    hcsb__disk_change_free(plan->steps[i].disk);
    hcsb__res_free(plan->steps[i].res);
  }
  hcsb__gerr_clear(&plan->gerr);
  free(plan);
}

static step_t *add_step(plan_t *plan, char *text, int *err) {
  step_t *s = &plan->steps[plan->n++];
  int r;

  s->type = HCSB_MSG_MODIFY_SETTINGS;
  s->text = text;
  r = hcsb__res_parse(text, &s->res);
  if (r < 0) *err = r;
  return s;
}

/* The spec as sent: root.path at the combined layers, hostname from the
 * config.  Returns the serialised text (free()) and the namespace ID the
 * spec links to (into ns, may be ""). */
static int shape_spec(const hcsb_container_config_t *cfg, const char *rootfs,
                      char **spec_out, char *ns, size_t nslen, int *terminal) {
  json_object *spec = NULL, *v, *o;
  const char *text;
  size_t len;
  int r;

  *spec_out = NULL;
  ns[0] = '\0';
  r = hcsb__json_parse(cfg->oci_spec_json, strlen(cfg->oci_spec_json), &spec);
  if (r != 0) return r == -ENOMEM ? r : -EINVAL;
  r = -EINVAL;
  if (!json_object_is_type(spec, json_type_object)) goto out;
  r = -ENOMEM;
  if (cfg->nlayers != 0) {
    o = hcsb__json_get(spec, "root");
    if (o == NULL) {
      o = json_object_new_object();
      if (o == NULL || json_object_object_add(spec, "root", o) != 0) goto out;
    } else if (!json_object_is_type(o, json_type_object)) {
      r = -EINVAL;
      goto out;
    }
    v = json_object_new_string(rootfs);
    if (v == NULL || json_object_object_add(o, "path", v) != 0) goto out;
  }
  if (cfg->host_name != NULL) {
    v = json_object_new_string(cfg->host_name);
    if (v == NULL || json_object_object_add(spec, "hostname", v) != 0) goto out;
  }
  o = hcsb__json_get(spec, "process");
  v = o != NULL ? hcsb__json_get(o, "terminal") : NULL;
  *terminal = v != NULL && json_object_is_type(v, json_type_boolean) &&
              json_object_get_boolean(v);
  o = hcsb__json_get(spec, "windows");
  o = o != NULL ? hcsb__json_get(o, "network") : NULL;
  v = o != NULL ? hcsb__json_get(o, "networkNamespace") : NULL;
  if (v != NULL && json_object_is_type(v, json_type_string))
    snprintf(ns, nslen, "%s", json_object_get_string(v));
  text = hcsb__json_compact(spec, &len);
  if (text == NULL) goto out;
  *spec_out = strdup(text);
  r = *spec_out == NULL ? -ENOMEM : 0;
out:
  json_object_put(spec);
  return r;
}

static int create_config(const hcsb_container_config_t *cfg, const char *bundle,
                         const char *spec, char **out) {
  hcsb__jw_t w;

  hcsb__jw_init(&w);
  hcsb__jw_obj(&w);
  hcsb__jw_key(&w, "SchemaVersion");
  hcsb__jw_obj(&w);
  hcsb__jw_key(&w, "Major");
  hcsb__jw_u64(&w, 2);
  hcsb__jw_key(&w, "Minor");
  hcsb__jw_u64(&w, 1);
  hcsb__jw_obj_end(&w);
  hcsb__jw_kstr(&w, "OciBundlePath", bundle);
  hcsb__jw_key(&w, "OciSpecification");
  hcsb__jw_raw(&w, spec, strlen(spec));
  hcsb__jw_kstr(&w, "ScratchDirPath", cfg->scratch_dir);
  hcsb__jw_obj_end(&w);
  return hcsb__jw_finish(&w, out);
}

static int build_plan(const hcsb_container_config_t *cfg, const char *id,
                      plan_t **out, int *terminal) {
  size_t max = cfg->nmapped_virtual_disks + cfg->nmapped_directories + 1 +
               cfg->nendpoints + 1;
  char bundle[4096], rootfs[4200], ns[256], *spec = NULL, *text;
  plan_t *plan;
  size_t i;
  int r = 0;

  *terminal = 0;
  if ((cfg->nmapped_virtual_disks != 0 && cfg->mapped_virtual_disks == NULL) ||
      (cfg->nmapped_directories != 0 && cfg->mapped_directories == NULL) ||
      (cfg->nlayers != 0 && cfg->layers == NULL) ||
      (cfg->nendpoints != 0 && cfg->endpoints == NULL))
    return -EINVAL;
  plan = calloc(1, sizeof(*plan) + max * sizeof(step_t));
  if (plan == NULL) return -ENOMEM;
  if (cfg->config_json != NULL) {
    /* Raw: sent as is; the typed fields and resources are not used. */
    if (hcsb__json_validate(cfg->config_json, strlen(cfg->config_json),
                            HCSB__JSON_MAX_DEPTH) != (int)json_type_object) {
      r = -EINVAL;
      goto fail;
    }
    plan->steps[0].type = HCSB_MSG_CREATE;
    plan->steps[0].text = strdup(cfg->config_json);
    plan->n = 1;
    if (plan->steps[0].text == NULL) r = -ENOMEM;
    goto done;
  }
  if (cfg->oci_spec_json == NULL) {
    r = -EINVAL;
    goto fail;
  }
  if (cfg->bundle_path != NULL && cfg->bundle_path[0] != '\0')
    r = snprintf(bundle, sizeof bundle, "%s", cfg->bundle_path);
  else
    r = snprintf(bundle, sizeof bundle, "/run/gcs/c/%s", id);
  if (r < 0 || (size_t)r >= sizeof bundle) {
    r = -ENAMETOOLONG;
    goto fail;
  }
  snprintf(rootfs, sizeof rootfs, "%s/rootfs", bundle);
  r = shape_spec(cfg, rootfs, &spec, ns, sizeof ns, terminal);
  if (r != 0) goto fail;

  for (i = 0; r == 0 && i < cfg->nmapped_virtual_disks; i++) {
    const hcsb_mapped_virtual_disk_t *d = &cfg->mapped_virtual_disks[i];
    r = hcsb_modify_mapped_virtual_disk(HCSB_REQUEST_ADD, d, &text);
    if (r == 0) {
      step_t *s = add_step(plan, text, &r);
      s->disk = hcsb__disk_change_from(d, 1);
      if (s->disk == NULL) r = -ENOMEM;
    }
  }
  for (i = 0; r == 0 && i < cfg->nmapped_directories; i++) {
    r = hcsb_modify_mapped_directory(HCSB_REQUEST_ADD,
                                     &cfg->mapped_directories[i], &text);
    if (r == 0) add_step(plan, text, &r);
  }
  if (r == 0 && cfg->nlayers != 0) {
    hcsb_combined_layers_t l;
    memset(&l, 0, sizeof(l));
    l.container_id = id;
    l.container_root_path = rootfs;
    l.layer_paths = cfg->layers;
    l.nlayers = cfg->nlayers;
    l.scratch_path = cfg->layer_scratch_path;
    r = hcsb_modify_combined_layers(HCSB_REQUEST_ADD, &l, &text);
    if (r == 0) add_step(plan, text, &r);
  }
  for (i = 0; r == 0 && i < cfg->nendpoints; i++) {
    hcsb_network_adapter_t a = cfg->endpoints[i];
    if (a.namespace_id == NULL) a.namespace_id = ns[0] != '\0' ? ns : NULL;
    r = hcsb_modify_network_adapter(HCSB_REQUEST_ADD, &a, &text);
    if (r == 0) add_step(plan, text, &r)->needs_ns_cap = 1;
  }
  if (r == 0) r = create_config(cfg, bundle, spec, &text);
  if (r != 0) goto fail;
  plan->steps[plan->n].type = HCSB_MSG_CREATE;
  plan->steps[plan->n].text = text;
  plan->n++;
done:
  if (r != 0) goto fail;
  free(spec);
  *out = plan;
  return 0;
fail:
  free(spec);
  plan_free(plan);
  return r;
}

static int send_step(hcsb__op_t *op) {
  hcsb_container_t *c = (hcsb_container_t *)op->owner;
  hcsb_conn_t *conn = c->obj.conn;
  plan_t *plan = op->ctx;
  step_t *s = &plan->steps[plan->next];
  hcsb_request_t req;

  if (s->needs_ns_cap && conn->negotiated &&
      !conn->caps.guest.namespace_add_request_supported) {
    hcsb__op_done_later(op, -ENOTSUP);
    return 0;
  }
  memset(&req, 0, sizeof(req));
  req.type = s->type;
  if (s->type == HCSB_MSG_CREATE) {
    req.container_id = c->id;
    req.u.create.config = s->text;
  } else {
    req.u.modify.request = s->text;
  }
  int r = hcsb__op_send(op, &req);
  if (r == 0 && s->type != HCSB_MSG_CREATE && s->res != NULL)
    hcsb__modify_on_late_success(op, c->id, plan->tag, s->text);
  return r;
}

/* Undoing a failed create: the next Remove, or the failure once none is
 * left. */
static void undo_next(hcsb__op_t *op) {
  plan_t *plan = op->ctx;
  /* A Remove the bridge refused at once stays tracked (see plan_free). */
  if (hcsb__release_next(op, &plan->rl) <= 0)
    hcsb__op_done(op, plan->status, hcsb__gerr_saved(&plan->gerr), NULL);
}

static void create_step(hcsb__op_t *op, int status,
                        const hcsb_guest_error_t *gerr,
                        const hcsb_response_t *resp) {
  hcsb_container_t *c = (hcsb_container_t *)op->owner;
  hcsb_conn_t *conn = c->obj.conn;
  plan_t *plan = op->ctx;
  step_t *s = &plan->steps[plan->next];
  char aid[37];
  int r;

  if (plan->undoing) {
    hcsb__release_reply(op, c->id, &plan->rl, status, gerr);
    undo_next(op);
    return;
  }
  if (status == 0 && s->disk != NULL &&
      (hcsb__disks_apply(&conn->disks, &conn->ndisks, s->disk) != 0 ||
       hcsb__disks_apply(&c->disks, &c->ndisks, s->disk) != 0))
    hcsb__api_log(conn, HCSB_LOG_ERROR, hcsb__op_activity(op, aid),
                  "out of memory recording a mapped virtual disk");
  /* Tracked under the ID, not the handle: the guest holds it whatever
   * happens to this op. */
  if (status == 0 && s->res != NULL) {
    s->res->tag = plan->tag;
    if (hcsb__res_push(conn, c->id, s->res) != 0)
      hcsb__api_log(conn, HCSB_LOG_ERROR, hcsb__op_activity(op, aid),
                    "container %s: out of memory tracking a resource", c->id);
    s->res = NULL;
  }
  if (status != 0 || ++plan->next == plan->n) {
    if (status != 0) {
      hcsb__api_log(conn, HCSB_LOG_INFO, hcsb__op_activity(op, aid),
                    "container %s: create step %zu of %zu failed: %s", c->id,
                    plan->next + 1, plan->n, hcsb_strerror(status));
      plan->rl.todo = hcsb__res_take(conn, c->id, plan->tag);
      if (plan->rl.todo != NULL && !hcsb__op_cancelled(op)) {
        plan->undoing = 1;
        plan->status = status;
        hcsb__gerr_save(&plan->gerr, gerr);
        undo_next(op);
        return;
      }
    }
    hcsb__op_done(op, status, gerr, resp);
    return;
  }
  r = send_step(op);
  if (r != 0) hcsb__op_done(op, r, NULL, NULL);
}

static void deliver_container(hcsb__op_t *op, int status,
                              const hcsb_guest_error_t *gerr,
                              const hcsb_response_t *resp) {
  if (op->cb.container != NULL)
    op->cb.container(op->data, (hcsb_container_t *)op->owner, status, gerr);
}

static const hcsb__op_class_t create_op = {create_step, deliver_container,
                                           plan_free};

int hcsb_conn_create_container(hcsb_conn_t *conn, const hcsb_call_opts_t *opts,
                               const hcsb_container_config_t *config,
                               hcsb_container_cb cb, void *data,
                               hcsb_container_t **out) {
  char generated[65];
  const char *id;
  hcsb_container_t *c;
  plan_t *plan;
  hcsb__op_t *op;
  int terminal, r;

  if (conn == NULL || config == NULL || out == NULL) return -EINVAL;
  id = config->id;
  if (id == NULL) {
    hcsb__container_id_generate(generated);
    id = generated;
  }
  if (!id_ok(id)) return -EINVAL;
  if (hcsb__waiter_find(conn, id) != NULL &&
      hcsb__waiter_find(conn, id)->handle != NULL)
    return -EEXIST;
  r = build_plan(config, id, &plan, &terminal);
  if (r != 0) return r;
  /* The waiter exists before Create is sent, so an early notification
   * cannot be missed (protocol.md §7.1). */
  r = attach(conn, id, 1, &c);
  if (r != 0) {
    plan_free(plan);
    return r;
  }
  c->spec_terminal = terminal;
  plan->c = c;
  plan->rl.conn = conn;
  plan->tag = ++conn->res_tags;
  op = hcsb__op_new(&c->obj, opts, conn->call_timeout_ms, &create_op, &r);
  if (op == NULL) {
    plan_free(plan);
    detach_unseen(c);
    return r;
  }
  op->ctx = plan;
  op->cb.container = cb;
  op->data = data;
  r = send_step(op);
  if (r != 0) {
    hcsb__op_discard(op);
    detach_unseen(c);
    return r;
  }
  *out = c;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Lifecycle RPCs */

static int simple_rpc(hcsb_container_t *c, const hcsb_call_opts_t *opts,
                      uint32_t type, uint32_t timeout, const char *modify,
                      const hcsb__op_class_t *cls, hcsb_done_cb cb,
                      void *data) {
  hcsb_request_t req;
  hcsb__op_t *op;
  int r;

  op = hcsb__op_new(&c->obj, opts, timeout, cls, &r);
  if (op == NULL) return r;
  op->cb.done = cb;
  op->data = data;
  memset(&req, 0, sizeof(req));
  req.type = type;
  req.container_id = c->id;
  req.u.modify.request = modify;
  r = hcsb__op_send(op, &req);
  if (r != 0) hcsb__op_discard(op);
  return r;
}

/* hcsshim treats "not found" as stopped: the goal of the call is met. */
static void deliver_shutdown(hcsb__op_t *op, int status,
                             const hcsb_guest_error_t *gerr,
                             const hcsb_response_t *resp) {
  if (status == HCSB_EGUEST && gerr != NULL &&
      gerr->hresult == HCSB_E_VMCOMPUTE_SYSTEM_NOT_FOUND) {
    status = 0;
    gerr = NULL;
  }
  hcsb__deliver_done(op, status, gerr, resp);
}

static const hcsb__op_class_t shutdown_op = {NULL, deliver_shutdown, NULL};

int hcsb_container_start(hcsb_container_t *c, const hcsb_call_opts_t *opts,
                         hcsb_done_cb cb, void *data) {
  if (c == NULL) return -EINVAL;
  return simple_rpc(c, opts, HCSB_MSG_START, c->obj.conn->call_timeout_ms, NULL,
                    &hcsb__done_op, cb, data);
}

int hcsb_container_shutdown(hcsb_container_t *c, const hcsb_call_opts_t *opts,
                            hcsb_done_cb cb, void *data) {
  if (c == NULL) return -EINVAL;
  return simple_rpc(c, opts, HCSB_MSG_SHUTDOWN_GRACEFUL,
                    c->obj.conn->shutdown_timeout_ms, NULL, &shutdown_op, cb,
                    data);
}

int hcsb_container_terminate(hcsb_container_t *c, const hcsb_call_opts_t *opts,
                             hcsb_done_cb cb, void *data) {
  if (c == NULL) return -EINVAL;
  return simple_rpc(c, opts, HCSB_MSG_SHUTDOWN_FORCED,
                    c->obj.conn->shutdown_timeout_ms, NULL, &shutdown_op, cb,
                    data);
}

int hcsb_container_modify(hcsb_container_t *c, const hcsb_call_opts_t *opts,
                          const char *request_json, hcsb_done_cb cb,
                          void *data) {
  if (c == NULL || request_json == NULL ||
      hcsb__json_validate(request_json, strlen(request_json),
                          HCSB__JSON_MAX_DEPTH) != (int)json_type_object)
    return -EINVAL;
  return simple_rpc(c, opts, HCSB_MSG_MODIFY_SETTINGS,
                    c->obj.conn->call_timeout_ms, request_json, &hcsb__done_op,
                    cb, data);
}

static int unsupported(hcsb_container_t *c, const hcsb_call_opts_t *opts,
                       hcsb_done_cb cb, void *data) {
  hcsb__op_t *op;
  int r;

  if (c == NULL) return -EINVAL;
  op = hcsb__op_new(&c->obj, opts, 0, &hcsb__done_op, &r);
  if (op == NULL) return r;
  op->cb.done = cb;
  op->data = data;
  hcsb__op_done_later(op, -ENOTSUP);
  return 0;
}

int hcsb_container_pause(hcsb_container_t *c, const hcsb_call_opts_t *opts,
                         hcsb_done_cb cb, void *data) {
  return unsupported(c, opts, cb, data);
}

int hcsb_container_resume(hcsb_container_t *c, const hcsb_call_opts_t *opts,
                          hcsb_done_cb cb, void *data) {
  return unsupported(c, opts, cb, data);
}

int hcsb_container_has_pending_updates(hcsb_container_t *c,
                                       const hcsb_call_opts_t *opts,
                                       hcsb_done_cb cb, void *data) {
  return unsupported(c, opts, cb, data);
}

int hcsb_container_create_process(hcsb_container_t *c,
                                  const hcsb_call_opts_t *opts,
                                  const hcsb_process_config_t *config,
                                  hcsb_process_cb cb, void *data,
                                  hcsb_process_t **out) {
  if (c == NULL) return -EINVAL;
  return hcsb__process_create(c->obj.conn, c, opts, config, cb, data, out);
}
