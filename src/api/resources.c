/* What a container needs in the guest, tracked for teardown the way
 * hcsshim's hcsoci does: every resource ModifySettings added for a
 * container (by its create, or by the caller through hcsb_conn_modify) is
 * recorded under the container ID with the request that undoes it, and
 * released newest first when a create fails and before
 * DeleteContainerState.  A real guest refuses to delete the state of a
 * container whose overlay is still mounted (protocol.md §7.11), so the order
 * is not cosmetic.
 *
 * The records live in the container ID's waiter, not in the handle: they
 * outlive a handle's close, as the mounts do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api-int.h"

/* ------------------------------------------------------------------------ */
/* Guest error copies (a failure reported after more round trips) */

static size_t str_room(const char *s) {
  return s != NULL ? strlen(s) + 1 : 0;
}

static const char *str_put(char **p, const char *s) {
  size_t n;
  char *d = *p;

  if (s == NULL) return NULL;
  n = strlen(s) + 1;
  memcpy(d, s, n);
  *p += n;
  return d;
}

static hcsb_guest_error_t *gerr_dup(const hcsb_guest_error_t *e) {
  hcsb_guest_error_t *c;
  hcsb_error_record_t *recs;
  size_t i, size = sizeof(*c) + str_room(e->message);
  char *p;

  size += e->nrecords * sizeof(*recs);
  for (i = 0; i < e->nrecords; i++) {
    const hcsb_error_record_t *r = &e->records[i];
    size += str_room(r->message) + str_room(r->stack_trace) +
            str_room(r->module_name) + str_room(r->file_name) +
            str_room(r->function_name);
  }
  c = malloc(size);
  if (c == NULL) return NULL;
  recs = (hcsb_error_record_t *)(c + 1);
  p = (char *)(recs + e->nrecords);
  c->hresult = e->hresult;
  c->nrecords = e->nrecords;
  c->records = recs;
  for (i = 0; i < e->nrecords; i++) {
    const hcsb_error_record_t *r = &e->records[i];
    recs[i] = *r;
    recs[i].message = str_put(&p, r->message);
    recs[i].stack_trace = str_put(&p, r->stack_trace);
    recs[i].module_name = str_put(&p, r->module_name);
    recs[i].file_name = str_put(&p, r->file_name);
    recs[i].function_name = str_put(&p, r->function_name);
  }
  c->message = e->message != NULL ? str_put(&p, e->message) : "";
  return c;
}

void hcsb__gerr_save(hcsb__gerr_saved_t *sv, const hcsb_guest_error_t *e) {
  hcsb__gerr_clear(sv);
  if (e == NULL) return;
  sv->set = 1;
  sv->copy = gerr_dup(e);
  sv->min.hresult = e->hresult;
  sv->min.message = "";
}

const hcsb_guest_error_t *hcsb__gerr_saved(const hcsb__gerr_saved_t *sv) {
  if (!sv->set) return NULL;
  return sv->copy != NULL ? sv->copy : &sv->min;
}

void hcsb__gerr_clear(hcsb__gerr_saved_t *sv) {
  free(sv->copy);
  memset(sv, 0, sizeof(*sv));
}

/* ------------------------------------------------------------------------ */
/* Records */

void hcsb__res_free(hcsb__res_t *list) {
  while (list != NULL) {
    hcsb__res_t *next = list->next;
    free(list->cid);
    free(list->remove_json);
    free(list);
    list = next;
  }
}

static const char *str_at(json_object *o, const char *key) {
  json_object *v = o != NULL ? hcsb__json_get(o, key) : NULL;

  return v != NULL && json_object_is_type(v, json_type_string)
             ? json_object_get_string(v)
             : "";
}

static uint64_t uint_at(json_object *o, const char *key) {
  json_object *v = hcsb__json_get(o, key);

  return v != NULL && json_object_is_type(v, json_type_int)
             ? (uint64_t)json_object_get_int64(v)
             : 0;
}

/* What names a resource in the guest, so a Remove finds its Add: the SCSI
 * address of a disk, the mount path of a share or VPMem layer, the root
 * of an overlay, the namespace and ID of an adapter.  0, 1 for a resource
 * type that is not a container's mount or adapter, -EINVAL when the
 * identifying fields are missing. */
static int identity(const char *type, json_object *s, char *out, size_t len) {
  const char *a;
  int n;

  if (strcasecmp(type, "MappedVirtualDisk") == 0) {
    n = snprintf(out, len, "MappedVirtualDisk %llu:%llu:%llu",
                 (unsigned long long)uint_at(s, "Controller"),
                 (unsigned long long)uint_at(s, "Lun"),
                 (unsigned long long)uint_at(s, "Partition"));
  } else if (strcasecmp(type, "MappedDirectory") == 0) {
    a = str_at(s, "MountPath");
    if (a[0] == '\0') return -EINVAL;
    n = snprintf(out, len, "MappedDirectory %s", a);
  } else if (strcasecmp(type, "VPMemDevice") == 0) {
    a = str_at(s, "MountPath");
    if (a[0] == '\0') return -EINVAL;
    n = snprintf(out, len, "VPMemDevice %s", a);
  } else if (strcasecmp(type, "CombinedLayers") == 0) {
    a = str_at(s, "ContainerRootPath");
    if (a[0] == '\0') return -EINVAL;
    n = snprintf(out, len, "CombinedLayers %s", a);
  } else if (strcasecmp(type, "Network") == 0) {
    n = snprintf(out, len, "Network %s/%s", str_at(s, "NamespaceID"),
                 str_at(s, "ID"));
  } else {
    return 1;
  }
  return n < 0 || (size_t)n >= len ? -EINVAL : 0;
}

/* The Remove that undoes an Add: the same settings (what hcsshim sends),
 * except an overlay, whose Remove names only its root. */
static int remove_text(json_object *root, const char *type, json_object *s,
                       char **out) {
  json_object *rt, *settings = NULL, *v;
  const char *text;
  size_t len;

  rt = json_object_new_string("Remove");
  if (rt == NULL || json_object_object_add(root, "RequestType", rt) != 0)
    return -ENOMEM;
  if (strcasecmp(type, "CombinedLayers") == 0) {
    settings = json_object_new_object();
    v = json_object_new_string(str_at(s, "ContainerRootPath"));
    if (settings == NULL || v == NULL ||
        json_object_object_add(settings, "ContainerRootPath", v) != 0) {
      json_object_put(v);
      json_object_put(settings);
      return -ENOMEM;
    }
    if (json_object_object_add(root, "Settings", settings) != 0) {
      json_object_put(settings);
      return -ENOMEM;
    }
  }
  text = hcsb__json_compact(root, &len);
  *out = text != NULL ? strdup(text) : NULL;
  return *out == NULL ? -ENOMEM : 0;
}

int hcsb__res_parse(const char *request_json, hcsb__res_t **out) {
  json_object *root = NULL, *s;
  const char *type, *rt, *cid;
  hcsb__res_t *x = NULL;
  char key[4200];
  size_t n;
  int r;

  *out = NULL;
  r = hcsb__json_parse(request_json, strlen(request_json), &root);
  if (r != 0) return r == -ENOMEM ? r : -EINVAL;
  type = str_at(root, "ResourceType");
  rt = str_at(root, "RequestType");
  s = hcsb__json_get(root, "Settings");
  if ((rt[0] != '\0' && strcasecmp(rt, "Add") != 0 &&
       strcasecmp(rt, "Remove") != 0) ||
      s == NULL || !json_object_is_type(s, json_type_object)) {
    r = 1; /* nothing a container holds; the guest judges the rest */
    goto out;
  }
  r = identity(type, s, key, sizeof key);
  if (r != 0) goto out;
  n = strlen(key);
  x = calloc(1, sizeof(*x) + n + 1);
  r = -ENOMEM;
  if (x == NULL) goto out;
  memcpy(x->key, key, n + 1);
  x->add = rt[0] == '\0' || strcasecmp(rt, "Add") == 0;
  cid = strcasecmp(type, "CombinedLayers") == 0 ? str_at(s, "ContainerID") : "";
  if (cid[0] != '\0' && (x->cid = strdup(cid)) == NULL) goto out;
  /* Last: this rewrites `root`, after which rt and s are stale. */
  if (x->add && remove_text(root, type, s, &x->remove_json) != 0) goto out;
  *out = x;
  x = NULL;
  r = 0;
out:
  hcsb__res_free(x);
  json_object_put(root);
  return r;
}

int hcsb__res_push(hcsb_conn_t *conn, const char *id, hcsb__res_t *x) {
  hcsb__cwaiter_t *w = hcsb__waiter_get(conn, id, 0);
  const hcsb__res_t *y;

  if (w == NULL) {
    hcsb__res_free(x);
    return -ENOMEM;
  }
  /* Added twice, removed once: the first record keeps its place. */
  for (y = w->res; y != NULL; y = y->next) {
    if (strcmp(y->key, x->key) == 0) {
      hcsb__res_free(x);
      return 0;
    }
  }
  x->next = w->res;
  w->res = x;
  return 0;
}

void hcsb__res_forget(hcsb_conn_t *conn, const char *key) {
  hcsb__link_t *l;
  hcsb__res_t **pp, *x;

  for (l = conn->waiters.next; l != &conn->waiters; l = l->next) {
    hcsb__cwaiter_t *w = HCSB__CONTAINER_OF(l, hcsb__cwaiter_t, link);
    for (pp = &w->res; (x = *pp) != NULL;) {
      if (strcmp(x->key, key) != 0) {
        pp = &x->next;
        continue;
      }
      *pp = x->next;
      x->next = NULL;
      hcsb__res_free(x);
    }
  }
}

hcsb__res_t *hcsb__res_take(hcsb_conn_t *conn, const char *id, uint64_t tag) {
  hcsb__cwaiter_t *w = hcsb__waiter_find(conn, id);
  hcsb__res_t *taken = NULL, **tail = &taken, **pp, *x;

  if (w == NULL) return NULL;
  for (pp = &w->res; (x = *pp) != NULL;) {
    if (tag != 0 && x->tag != tag) {
      pp = &x->next;
      continue;
    }
    *pp = x->next;
    x->next = NULL;
    *tail = x;
    tail = &x->next;
  }
  return taken;
}

void hcsb__res_give_back(hcsb_conn_t *conn, const char *id, hcsb__res_t *list) {
  hcsb__cwaiter_t *w;
  hcsb__res_t **pp;

  if (list == NULL) return;
  w = hcsb__waiter_get(conn, id, 0);
  if (w == NULL) {
    hcsb__api_log(conn, HCSB_LOG_ERROR, NULL,
                  "container %s: out of memory; resources left in the guest "
                  "are no longer tracked",
                  id);
    hcsb__res_free(list);
    return;
  }
  /* Whatever was added meanwhile is newer: it stays on top. */
  for (pp = &w->res; *pp != NULL; pp = &(*pp)->next) continue;
  *pp = list;
}

size_t hcsb__res_count(const hcsb__cwaiter_t *w) {
  const hcsb__res_t *x;
  size_t n = 0;

  for (x = w != NULL ? w->res : NULL; x != NULL; x = x->next) n++;
  return n;
}

/* ------------------------------------------------------------------------ */
/* Releasing: one Remove after the other, on an op that owns `rl` */

int hcsb__release_next(hcsb__op_t *op, hcsb__release_t *rl) {
  hcsb_request_t req;
  int r;

  if (rl->todo == NULL) return 0;
  rl->cur = rl->todo;
  rl->todo = rl->cur->next;
  rl->cur->next = NULL;
  memset(&req, 0, sizeof(req));
  req.type = HCSB_MSG_MODIFY_SETTINGS;
  req.u.modify.request = rl->cur->remove_json;
  r = hcsb__op_send(op, &req);
  return r != 0 ? r : 1;
}

static void keep(hcsb__release_t *rl, hcsb__res_t *x) {
  hcsb__res_t **pp;

  for (pp = &rl->kept; *pp != NULL; pp = &(*pp)->next) continue;
  *pp = x;
}

void hcsb__release_reply(hcsb__op_t *op, const char *id, hcsb__release_t *rl,
                         int status, const hcsb_guest_error_t *gerr) {
  hcsb_conn_t *conn = op->owner->conn;
  hcsb__res_t *x = rl->cur;
  hcsb__disk_change_t *change;
  hcsb__cwaiter_t *w;
  char aid[37];
  int err;

  rl->cur = NULL;
  if (x == NULL) return;
  if (status != 0) {
    hcsb__api_log(conn, HCSB_LOG_WARN, hcsb__op_activity(op, aid),
                  "container %s: releasing %s failed: %s%s%s", id, x->key,
                  hcsb_strerror(status), gerr != NULL ? ": " : "",
                  gerr != NULL ? gerr->message : "");
    keep(rl, x);
    if (rl->status == 0) {
      rl->status = status;
      hcsb__gerr_save(&rl->gerr, gerr);
    }
    return;
  }
  /* The disk records follow what the guest has mapped. */
  change = hcsb__disk_change_parse(x->remove_json, &err);
  if (change != NULL) {
    w = hcsb__waiter_find(conn, id);
    if (hcsb__disks_apply(&conn->disks, &conn->ndisks, change) != 0 ||
        (w != NULL && w->handle != NULL &&
         hcsb__disks_apply(&w->handle->disks, &w->handle->ndisks, change) != 0))
      hcsb__api_log(conn, HCSB_LOG_ERROR, hcsb__op_activity(op, aid),
                    "out of memory recording a mapped virtual disk");
    hcsb__disk_change_free(change);
  }
  hcsb__res_free(x);
}

void hcsb__release_end(hcsb_conn_t *conn, const char *id, hcsb__release_t *rl) {
  /* Not removed: still in the guest, still the container's.  In the
   * order they were taken (newest first). */
  if (rl->cur != NULL) {
    rl->cur->next = rl->todo;
    rl->todo = rl->cur;
    rl->cur = NULL;
  }
  keep(rl, rl->todo);
  rl->todo = NULL;
  hcsb__res_give_back(conn, id, rl->kept);
  rl->kept = NULL;
  hcsb__gerr_clear(&rl->gerr);
}

/* ------------------------------------------------------------------------ */
/* Delete: release, then DeleteContainerState */

typedef struct delete_s {
  hcsb__release_t rl;
  unsigned flags;
  int deleting; /* DeleteContainerState sent */
  char id[];
} delete_t;

static void delete_free(void *p) {
  delete_t *d = p;

  if (d == NULL) return;
  /* conn_ctx: the op's owner is the connection, alive while it runs. */
  hcsb__release_end(d->rl.conn, d->id, &d->rl);
  free(d);
}

static void delete_gone(hcsb_conn_t *conn, const char *id) {
  hcsb__cwaiter_t *w = hcsb__waiter_find(conn, id);

  if (w == NULL) return;
  /* The guest forgot the container: so may we, unless a handle still
   * refers to the waiter (it goes when that handle closes).  What was
   * kept (HCSB_DELETE_KEEP_RESOURCES) is the caller's from now on. */
  hcsb__res_free(w->res);
  w->res = NULL;
  if (w->handle == NULL) hcsb__waiter_drop(w);
}

/* Sends the next Remove, or DeleteContainerState once all were removed,
 * or ends the op with the first release failure. */
static int delete_next(hcsb__op_t *op) {
  delete_t *d = op->ctx;
  hcsb_request_t req;
  int r;

  r = hcsb__release_next(op, &d->rl);
  if (r != 0) return r < 0 ? r : 0;
  if (d->rl.status != 0) {
    hcsb__op_done(op, d->rl.status, hcsb__gerr_saved(&d->rl.gerr), NULL);
    return 0;
  }
  d->deleting = 1;
  memset(&req, 0, sizeof(req));
  req.type = HCSB_MSG_DELETE_CONTAINER_STATE;
  req.container_id = d->id;
  return hcsb__op_send(op, &req);
}

static void delete_step(hcsb__op_t *op, int status,
                        const hcsb_guest_error_t *gerr,
                        const hcsb_response_t *resp) {
  delete_t *d = op->ctx;
  int r;

  if (d->deleting) {
    if (status == 0) delete_gone(op->owner->conn, d->id);
    hcsb__op_done(op, status, gerr, resp);
    return;
  }
  hcsb__release_reply(op, d->id, &d->rl, status, gerr);
  r = delete_next(op);
  if (r != 0) hcsb__op_done(op, r, NULL, NULL);
}

static const hcsb__op_class_t delete_op = {delete_step, hcsb__deliver_done,
                                           delete_free};

int hcsb_conn_delete_container(hcsb_conn_t *conn, const hcsb_call_opts_t *opts,
                               const char *container_id, unsigned flags,
                               hcsb_done_cb cb, void *data) {
  hcsb__op_t *op;
  delete_t *d;
  size_t n;
  int r;

  if (conn == NULL || container_id == NULL || container_id[0] == '\0' ||
      (flags & ~HCSB_DELETE_KEEP_RESOURCES) != 0)
    return -EINVAL;
  if (conn->negotiated && !conn->caps.guest.delete_container_state_supported)
    return -ENOTSUP;
  n = strlen(container_id);
  d = calloc(1, sizeof(*d) + n + 1);
  if (d == NULL) return -ENOMEM;
  memcpy(d->id, container_id, n + 1);
  d->flags = flags;
  d->rl.conn = conn;
  op = hcsb__op_new(&conn->obj, opts, conn->call_timeout_ms, &delete_op, &r);
  if (op == NULL) {
    free(d);
    return r;
  }
  op->ctx = d;
  op->cb.done = cb;
  op->data = data;
  if (!(flags & HCSB_DELETE_KEEP_RESOURCES))
    d->rl.todo = hcsb__res_take(conn, d->id, 0);
  r = delete_next(op);
  if (r != 0) hcsb__op_discard(op); /* gives the records back */
  return r;
}

int hcsb_conn_delete_container_state(hcsb_conn_t *conn,
                                     const hcsb_call_opts_t *opts,
                                     const char *container_id, hcsb_done_cb cb,
                                     void *data) {
  return hcsb_conn_delete_container(conn, opts, container_id, 0, cb, data);
}

size_t hcsb_conn_container_resources(const hcsb_conn_t *conn,
                                     const char *container_id) {
  if (conn == NULL || container_id == NULL) return 0;
  /* A lookup: the waiter list is not changed. */
  return hcsb__res_count(hcsb__waiter_find((hcsb_conn_t *)conn, container_id));
}
