/* Connection-level RPCs (ModifySettings on the null container, DumpStacks)
 * and the record of mapped virtual disks, which the library keeps itself
 * because the bridge has no RPC to list them.  DeleteContainerState is in
 * resources.c, with what it releases first. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api-int.h"

struct hcsb__disk_change_s {
  int add;
  hcsb_mapped_virtual_disk_t disk; /* owned copies */
};

/* ------------------------------------------------------------------------ */
/* Disk records */

static void disk_clear(hcsb_mapped_virtual_disk_t *d) {
  size_t i;

  free((char *)d->mount_path);
  free((char *)d->filesystem);
  for (i = 0; i < d->noptions; i++) free((char *)d->options[i]);
  free((char **)d->options);
  memset(d, 0, sizeof(*d));
}

static int dup_str(const char *s, const char **out) {
  *out = NULL;
  if (s == NULL) return 0;
  *out = strdup(s);
  return *out == NULL ? -ENOMEM : 0;
}

static int disk_copy(hcsb_mapped_virtual_disk_t *dst,
                     const hcsb_mapped_virtual_disk_t *src) {
  char **opts = NULL;
  size_t i;

  *dst = *src;
  dst->mount_path = dst->filesystem = NULL;
  dst->options = NULL;
  dst->noptions = 0;
  if (dup_str(src->mount_path, &dst->mount_path) != 0 ||
      dup_str(src->filesystem, &dst->filesystem) != 0)
    goto nomem;
  if (src->noptions != 0) {
    opts = calloc(src->noptions, sizeof(*opts));
    if (opts == NULL) goto nomem;
    dst->options = (const char *const *)opts;
    for (i = 0; i < src->noptions; i++) {
      if (dup_str(src->options[i], (const char **)&opts[i]) != 0) goto nomem;
      dst->noptions = i + 1;
    }
  }
  return 0;
nomem:
  disk_clear(dst);
  return -ENOMEM;
}

void hcsb__disks_free(hcsb_mapped_virtual_disk_t *disks, size_t n) {
  size_t i;

  for (i = 0; i < n; i++) disk_clear(&disks[i]);
  free(disks);
}

static int same_disk(const hcsb_mapped_virtual_disk_t *a,
                     const hcsb_mapped_virtual_disk_t *b) {
  return a->controller == b->controller && a->lun == b->lun &&
         a->partition == b->partition;
}

int hcsb__disks_apply(hcsb_mapped_virtual_disk_t **disks, size_t *n,
                      const hcsb__disk_change_t *change) {
  hcsb_mapped_virtual_disk_t copy, *grown;
  size_t i;

  for (i = 0; i < *n; i++)
    if (same_disk(&(*disks)[i], &change->disk)) break;
  if (!change->add) {
    if (i == *n) return 0;
    disk_clear(&(*disks)[i]);
    (*disks)[i] = (*disks)[*n - 1];
    (*n)--;
    return 0;
  }
  if (disk_copy(&copy, &change->disk) != 0) return -ENOMEM;
  if (i < *n) { /* mapped again at the same address: the newer one counts */
    disk_clear(&(*disks)[i]);
    (*disks)[i] = copy;
    return 0;
  }
  grown = realloc(*disks, (*n + 1) * sizeof(**disks));
  if (grown == NULL) {
    disk_clear(&copy);
    return -ENOMEM;
  }
  grown[*n] = copy;
  *disks = grown;
  (*n)++;
  return 0;
}

void hcsb__disk_change_free(void *change) {
  hcsb__disk_change_t *c = change;

  if (c == NULL) return;
  disk_clear(&c->disk);
  free(c);
}

hcsb__disk_change_t *hcsb__disk_change_from(const hcsb_mapped_virtual_disk_t *d,
                                            int add) {
  hcsb__disk_change_t *c = calloc(1, sizeof(*c));

  if (c == NULL) return NULL;
  c->add = add;
  if (disk_copy(&c->disk, d) != 0) {
    free(c);
    return NULL;
  }
  return c;
}

static int get_uint(json_object *o, const char *key, uint64_t max,
                    uint64_t *out) {
  json_object *v = hcsb__json_get(o, key);
  int64_t x;

  *out = 0;
  if (v == NULL) return 0;
  if (!json_object_is_type(v, json_type_int)) return -EINVAL;
  x = json_object_get_int64(v);
  if (x < 0 || (uint64_t)x > max) return -EINVAL;
  *out = (uint64_t)x;
  return 0;
}

static int get_bool(json_object *o, const char *key, int *out) {
  json_object *v = hcsb__json_get(o, key);

  *out = 0;
  if (v == NULL) return 0;
  if (!json_object_is_type(v, json_type_boolean)) return -EINVAL;
  *out = json_object_get_boolean(v);
  return 0;
}

static int get_str(json_object *o, const char *key, const char **out) {
  json_object *v = hcsb__json_get(o, key);

  *out = NULL;
  if (v == NULL) return 0;
  if (!json_object_is_type(v, json_type_string)) return -EINVAL;
  *out = json_object_get_string(v);
  return 0;
}

static int parse_disk(json_object *s, hcsb__disk_change_t *c) {
  hcsb_mapped_virtual_disk_t d;
  json_object *opts;
  const char **strs = NULL;
  uint64_t controller, lun, partition;
  size_t i, n = 0;
  int r = 0;

  memset(&d, 0, sizeof(d));
  r |= get_str(s, "MountPath", &d.mount_path);
  r |= get_uint(s, "Controller", 3, &controller);
  r |= get_uint(s, "Lun", UINT8_MAX, &lun);
  r |= get_uint(s, "Partition", UINT64_MAX, &partition);
  r |= get_bool(s, "ReadOnly", &d.read_only);
  r |= get_bool(s, "Encrypted", &d.encrypted);
  r |= get_bool(s, "BlockDev", &d.block_dev);
  r |= get_bool(s, "EnsureFilesystem", &d.ensure_filesystem);
  r |= get_str(s, "Filesystem", &d.filesystem);
  if (r != 0) return -EINVAL;
  d.controller = (uint8_t)controller;
  d.lun = (uint8_t)lun;
  d.partition = partition;
  opts = hcsb__json_get(s, "Options");
  if (opts != NULL) {
    if (!json_object_is_type(opts, json_type_array)) return -EINVAL;
    n = json_object_array_length(opts);
    strs = calloc(n + 1, sizeof(*strs));
    if (strs == NULL) return -ENOMEM;
    for (i = 0; i < n; i++) {
      json_object *v = json_object_array_get_idx(opts, i);
      if (!json_object_is_type(v, json_type_string)) {
        free(strs);
        return -EINVAL;
      }
      strs[i] = json_object_get_string(v);
    }
    d.options = strs;
    d.noptions = n;
  }
  r = disk_copy(&c->disk, &d);
  free(strs);
  return r;
}

hcsb__disk_change_t *hcsb__disk_change_parse(const char *request_json,
                                             int *err) {
  json_object *root = NULL, *settings;
  const char *resource = NULL, *rt = NULL;
  hcsb__disk_change_t *c = NULL;
  int r;

  *err = hcsb__json_parse(request_json, strlen(request_json), &root);
  if (*err != 0) {
    if (*err == -EPROTO) *err = -EINVAL;
    return NULL;
  }
  r = get_str(root, "ResourceType", &resource);
  if (r == 0) r = get_str(root, "RequestType", &rt);
  if (r != 0 || resource == NULL ||
      strcasecmp(resource, "MappedVirtualDisk") != 0)
    goto out; /* not ours to record; the guest judges the rest */
  if (rt != NULL && rt[0] != '\0' && strcasecmp(rt, "Add") != 0 &&
      strcasecmp(rt, "Remove") != 0)
    goto out;
  settings = hcsb__json_get(root, "Settings");
  if (settings == NULL || !json_object_is_type(settings, json_type_object)) {
    *err = -EINVAL;
    goto out;
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL) {
    *err = -ENOMEM;
    goto out;
  }
  c->add = rt == NULL || rt[0] == '\0' || strcasecmp(rt, "Add") == 0;
  *err = parse_disk(settings, c);
  if (*err != 0) {
    free(c);
    c = NULL;
  }
out:
  json_object_put(root);
  return c;
}

size_t hcsb_conn_mapped_virtual_disks(const hcsb_conn_t *conn,
                                      const hcsb_mapped_virtual_disk_t **out) {
  if (conn == NULL) return 0;
  if (out != NULL) *out = conn->disks;
  return conn->ndisks;
}

/* ------------------------------------------------------------------------ */
/* RPCs */

/* What a successful ModifySettings changes in the library's records. */
typedef struct modify_ctx_s {
  hcsb__disk_change_t *disk;
  hcsb__res_t *res;
  char *owner; /* hcsb_conn_modify_for_container: the container's ID */
} modify_ctx_t;

static void modify_ctx_free(void *p) {
  modify_ctx_t *m = p;

  if (m == NULL) return;
  hcsb__disk_change_free(m->disk);
  hcsb__res_free(m->res);
  free(m->owner);
  free(m);
}

static void modify_step(hcsb__op_t *op, int status,
                        const hcsb_guest_error_t *gerr,
                        const hcsb_response_t *resp) {
  hcsb_conn_t *c = op->owner->conn;
  modify_ctx_t *m = op->ctx;
  const char *owner;
  char aid[37];

  /* Recorded even when the caller has closed meanwhile: the disk is
   * mapped in the guest either way. */
  if (status == 0 && m != NULL && m->disk != NULL &&
      hcsb__disks_apply(&c->disks, &c->ndisks, m->disk) != 0)
    hcsb__api_log(c, HCSB_LOG_ERROR, hcsb__op_activity(op, aid),
                  "out of memory recording a mapped virtual disk");
  /* What was added for a container is that container's to release; a
   * Remove ends whoever held the resource. */
  if (status == 0 && m != NULL && m->res != NULL) {
    owner = m->owner != NULL ? m->owner : m->res->cid;
    if (!m->res->add) {
      hcsb__res_forget(c, m->res->key);
    } else if (owner != NULL) {
      hcsb__res_t *x = m->res;
      m->res = NULL;
      if (hcsb__res_push(c, owner, x) != 0)
        hcsb__api_log(c, HCSB_LOG_ERROR, hcsb__op_activity(op, aid),
                      "container %s: out of memory tracking a resource", owner);
    }
  }
  hcsb__op_done(op, status, gerr, resp);
}

static const hcsb__op_class_t modify_op = {modify_step, hcsb__deliver_done,
                                           modify_ctx_free};

/* A ModifySettings the caller gave up on (timeout, closed handle) that the
 * guest completes after all: recorded as if answered in time, so what it
 * added is removed with its container (or stays listed, for a disk). */
typedef struct late_s {
  hcsb_conn_t *conn;
  uint64_t tag;
  char *owner; /* NULL: the request's own ContainerID, if any */
  char request[];
} late_t;

static void late_free(void *ctx) {
  late_t *l = ctx;
  free(l->owner);
  free(l);
}

static void late_success(void *ctx) {
  late_t *l = ctx;
  hcsb_conn_t *c = l->conn;
  hcsb__disk_change_t *disk;
  hcsb__res_t *res = NULL;
  const char *owner = NULL;
  int err = 0;

  disk = hcsb__disk_change_parse(l->request, &err);
  if (disk != NULL && hcsb__disks_apply(&c->disks, &c->ndisks, disk) != 0)
    hcsb__api_log(c, HCSB_LOG_ERROR, NULL,
                  "out of memory recording a mapped virtual disk");
  hcsb__disk_change_free(disk);
  if (hcsb__res_parse(l->request, &res) != 0 || res == NULL) return;
  owner = l->owner != NULL ? l->owner : res->cid;
  hcsb__api_log(c, HCSB_LOG_WARN, NULL,
                "ModifySettings %s succeeded after its caller gave up%s%s",
                res->key, owner != NULL && res->add ? ": tracked for " : "",
                owner != NULL && res->add ? owner : "");
  if (!res->add) {
    hcsb__res_forget(c, res->key);
    hcsb__res_free(res);
  } else if (owner != NULL) {
    res->tag = l->tag;
    if (hcsb__res_push(c, owner, res) != 0)
      hcsb__api_log(c, HCSB_LOG_ERROR, NULL,
                    "container %s: out of memory tracking a resource", owner);
  } else {
    hcsb__res_free(res);
  }
}

void hcsb__modify_on_late_success(hcsb__op_t *op, const char *owner,
                                  uint64_t tag, const char *request_json) {
  size_t n = strlen(request_json);
  late_t *l = malloc(sizeof(*l) + n + 1);

  if (l == NULL) return; /* only a late success would have been missed */
  l->conn = op->owner->conn;
  l->tag = tag;
  l->owner = owner != NULL ? strdup(owner) : NULL;
  if (owner != NULL && l->owner == NULL) {
    free(l);
    return;
  }
  memcpy(l->request, request_json, n + 1);
  hcsb__call_on_late_success(&op->call, late_success, l, late_free);
}

static int modify(hcsb_conn_t *conn, const hcsb_call_opts_t *opts,
                  const char *owner, const char *request_json, hcsb_done_cb cb,
                  void *data) {
  hcsb_request_t req;
  hcsb__disk_change_t *change;
  hcsb__res_t *res = NULL;
  modify_ctx_t *m = NULL;
  hcsb__op_t *op;
  int r;

  if (conn == NULL || request_json == NULL) return -EINVAL;
  if (hcsb__json_validate(request_json, strlen(request_json),
                          HCSB__JSON_MAX_DEPTH) != (int)json_type_object)
    return -EINVAL;
  r = hcsb__res_parse(request_json, &res);
  if (r == -ENOMEM) return r;
  /* Only what a Remove can undo may be a container's; without an owner,
   * a request that does not name its resource is the guest's to refuse. */
  if (owner != NULL && (res == NULL || !res->add)) {
    hcsb__res_free(res);
    return -EINVAL;
  }
  change = hcsb__disk_change_parse(request_json, &r);
  if (r != 0) {
    hcsb__res_free(res);
    return r;
  }
  if (change != NULL || res != NULL) {
    m = calloc(1, sizeof(*m));
    if (m == NULL || (owner != NULL && (m->owner = strdup(owner)) == NULL)) {
      free(m);
      hcsb__disk_change_free(change);
      hcsb__res_free(res);
      return -ENOMEM;
    }
    m->disk = change;
    m->res = res;
  }
  op = hcsb__op_new(&conn->obj, opts, conn->call_timeout_ms, &modify_op, &r);
  if (op == NULL) {
    modify_ctx_free(m);
    return r;
  }
  op->ctx = m;
  op->cb.done = cb;
  op->data = data;
  memset(&req, 0, sizeof(req));
  req.type = HCSB_MSG_MODIFY_SETTINGS;
  req.u.modify.request = request_json;
  r = hcsb__op_send(op, &req);
  if (r != 0)
    hcsb__op_discard(op);
  else if (m != NULL && m->res != NULL)
    hcsb__modify_on_late_success(op, owner, 0, request_json);
  return r;
}

int hcsb_conn_modify(hcsb_conn_t *conn, const hcsb_call_opts_t *opts,
                     const char *request_json, hcsb_done_cb cb, void *data) {
  return modify(conn, opts, NULL, request_json, cb, data);
}

int hcsb_conn_modify_for_container(hcsb_conn_t *conn,
                                   const hcsb_call_opts_t *opts,
                                   const char *container_id,
                                   const char *request_json, hcsb_done_cb cb,
                                   void *data) {
  if (container_id == NULL || container_id[0] == '\0') return -EINVAL;
  return modify(conn, opts, container_id, request_json, cb, data);
}

static void deliver_stacks(hcsb__op_t *op, int status,
                           const hcsb_guest_error_t *gerr,
                           const hcsb_response_t *resp) {
  const char *s = NULL;
  size_t n = 0;

  if (status == 0) {
    s = "";
    if (resp != NULL && resp->guest_stacks != NULL) {
      s = resp->guest_stacks;
      n = resp->guest_stacks_len;
    }
  }
  if (op->cb.stacks != NULL) op->cb.stacks(op->data, status, gerr, s, n);
}

static const hcsb__op_class_t stacks_op = {NULL, deliver_stacks, NULL};

int hcsb_conn_dump_stacks(hcsb_conn_t *conn, const hcsb_call_opts_t *opts,
                          hcsb_stacks_cb cb, void *data) {
  hcsb_request_t req;
  hcsb__op_t *op;
  int r;

  if (conn == NULL) return -EINVAL;
  if (conn->negotiated && !conn->caps.guest.dump_stacks_supported)
    return -ENOTSUP;
  op = hcsb__op_new(&conn->obj, opts, conn->call_timeout_ms, &stacks_op, &r);
  if (op == NULL) return r;
  op->cb.stacks = cb;
  op->data = data;
  memset(&req, 0, sizeof(req));
  req.type = HCSB_MSG_DUMP_STACKS;
  r = hcsb__op_send(op, &req);
  if (r != 0) hcsb__op_discard(op);
  return r;
}
