/* Containers from layer images (uvm.h, hcsb_uvm_create_container): the
 * images as VPMem devices, base first, then the connection's create with
 * their mount paths as the layers; the delete the other way round.  The
 * devices each container took are recorded under its ID. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-int.h" /* hcsb__gerr_save: a guest error kept past its call */
#include "uvm/uvm-int.h"

struct hcsb__uvm_ctr_s {
  hcsb__link_t link; /* u->ctrs */
  char *id;
  uint32_t *devs; /* base first */
  size_t ndevs;
  uint8_t busy; /* a create or a delete runs */
};

typedef struct ctr_op_s ctr_op_t;
struct ctr_op_s {
  hcsb__link_t link; /* u->ctr_ops */
  hcsb_uvm_t *u;
  hcsb__uvm_ctr_t *rec;
  int creating;
  /* create */
  hcsb_container_config_t config;
  hcsb_call_opts_t opts;
  char activity_id[40];
  hcsb_uvm_layer_t *layers;
  size_t nlayers, next;
  const char **paths; /* mount paths, for config.layers */
  hcsb_container_t *container;
  /* both */
  size_t undo; /* devices left to release (delete, failed create) */
  int status;
  hcsb__gerr_saved_t gerr;
  hcsb_container_cb ccb;
  hcsb_done_cb dcb;
  void *data;
};

static void rec_free(hcsb__uvm_ctr_t *r) {
  hcsb__list_remove(&r->link);
  free(r->id);
  free(r->devs);
  free(r);
}

void hcsb__ctr_free_all(hcsb_uvm_t *u) {
  while (!hcsb__list_empty(&u->ctrs))
    rec_free(HCSB__CONTAINER_OF(u->ctrs.next, hcsb__uvm_ctr_t, link));
}

static hcsb__uvm_ctr_t *rec_find(hcsb_uvm_t *u, const char *id) {
  for (hcsb__link_t *l = u->ctrs.next; l != &u->ctrs; l = l->next) {
    hcsb__uvm_ctr_t *r = HCSB__CONTAINER_OF(l, hcsb__uvm_ctr_t, link);
    if (strcmp(r->id, id) == 0) return r;
  }
  return NULL;
}

static void op_free(ctr_op_t *op) {
  hcsb_uvm_t *u = op->u;
  hcsb__list_remove(&op->link);
  hcsb__gerr_clear(&op->gerr);
  for (size_t i = 0; i < op->nlayers; i++) {
    free((char *)op->layers[i].image_path);
    if (op->layers[i].verity != NULL) {
      hcsb_verity_info_t *v = (hcsb_verity_info_t *)op->layers[i].verity;
      free((char *)v->root_digest);
      free((char *)v->salt);
      free((char *)v->hash_algorithm);
      free(v);
    }
  }
  free(op->layers);
  for (size_t i = 0; op->paths != NULL && i < op->nlayers; i++)
    free((char *)op->paths[i]);
  free(op->paths);
  free((char *)op->config.id);
  free((char *)op->config.config_json);
  free((char *)op->config.oci_spec_json);
  free((char *)op->config.bundle_path);
  free((char *)op->config.scratch_dir);
  free((char *)op->config.host_name);
  free((char *)op->config.layer_scratch_path);
  free(op);
  hcsb__uvm_check_idle(u);
  hcsb__handle_unref(&u->h);
}

/* The end of either operation: the record is kept with what it still
 * holds, or forgotten when it holds nothing. */
static void op_end(ctr_op_t *op) {
  hcsb__uvm_ctr_t *r = op->rec;
  const hcsb_guest_error_t *gerr = hcsb__gerr_saved(&op->gerr);

  r->busy = 0;
  if (r->ndevs == 0) rec_free(r);
  op->rec = NULL;
  if (op->creating) {
    if (op->ccb != NULL) op->ccb(op->data, op->container, op->status, gerr);
  } else if (op->dcb != NULL) {
    op->dcb(op->data, op->status, gerr);
  }
  op_free(op);
}

/* Releases the record's devices, newest first, one after the other. */
static void release_next(ctr_op_t *op);

static void released(void *data, int status, const hcsb_guest_error_t *gerr,
                     uint32_t devno) {
  ctr_op_t *op = data;
  (void)devno;
  if (status != 0 && op->status == 0) {
    op->status = status;
    hcsb__gerr_save(&op->gerr, gerr);
  }
  if (status != 0 && status != HCSB_EGUEST) {
    /* The VM went or is closing: what is left is moot. */
    op->rec->ndevs = 0;
    op_end(op);
    return;
  }
  release_next(op);
}

static void release_next(ctr_op_t *op) {
  hcsb__uvm_ctr_t *r = op->rec;
  int rc;

  while (r->ndevs > 0) {
    uint32_t dev = r->devs[--r->ndevs];
    rc = hcsb__vpmem_remove(op->u, dev, released, op);
    if (rc == 0) return;
    if (op->status == 0) op->status = rc;
    if (rc == -ENOTCONN) r->ndevs = 0;
  }
  op_end(op);
}

/* ------------------------------------------------------------------------ */
/* Create */

static void add_next(ctr_op_t *op);

static void created(void *data, hcsb_container_t *c, int status,
                    const hcsb_guest_error_t *gerr) {
  ctr_op_t *op = data;
  op->container = c;
  op->status = status;
  if (status == 0) {
    op_end(op);
    return;
  }
  /* The connection removed the overlay; the devices are ours. */
  hcsb__gerr_save(&op->gerr, gerr);
  release_next(op);
}

static void layer_added(void *data, int status, const hcsb_guest_error_t *gerr,
                        uint32_t devno) {
  ctr_op_t *op = data;
  hcsb_uvm_t *u = op->u;
  hcsb__uvm_ctr_t *r = op->rec;

  if (status != 0) {
    op->status = status;
    hcsb__gerr_save(&op->gerr, gerr);
    release_next(op);
    return;
  }
  r->devs[r->ndevs++] = devno;
  /* CombinedLayers lists the top layer first: the guest joins the paths
   * into overlayfs' lowerdir as they come (the v0.11.8 GCS does). */
  op->paths[op->nlayers - 1 - op->next] = strdup(u->devs[devno].mount_path);
  if (op->paths[op->nlayers - 1 - op->next] == NULL) {
    op->status = -ENOMEM;
    release_next(op);
    return;
  }
  op->next++;
  add_next(op);
}

static void add_next(ctr_op_t *op) {
  hcsb_uvm_t *u = op->u;
  hcsb_uvm_vpmem_opts_t vo;
  int rc;

  if (op->next < op->nlayers) {
    memset(&vo, 0, sizeof vo);
    vo.verity = op->layers[op->next].verity;
    vo.call_opts = &op->opts;
    rc = hcsb__vpmem_add(u, op->layers[op->next].image_path, &vo, layer_added,
                         op);
    if (rc != 0) {
      op->status = rc;
      release_next(op);
    }
    return;
  }
  op->config.layers = op->paths;
  op->config.nlayers = op->nlayers;
  rc = u->conn != NULL && !u->closing
           ? hcsb_conn_create_container(u->conn, &op->opts, &op->config,
                                        created, op, &op->container)
           : -ENOTCONN;
  if (rc != 0) {
    op->container = NULL;
    op->status = rc;
    release_next(op);
  }
}

static int dup_str(const char **out, const char *s) {
  *out = NULL;
  if (s == NULL) return 0;
  return (*out = strdup(s)) != NULL ? 0 : -ENOMEM;
}

static ctr_op_t *op_new(hcsb_uvm_t *u, const hcsb_call_opts_t *opts) {
  ctr_op_t *op = calloc(1, sizeof *op);
  if (op == NULL) return NULL;
  op->u = u;
  hcsb__list_init(&op->link);
  if (opts != NULL) {
    op->opts = *opts;
    if (opts->activity_id != NULL) {
      snprintf(op->activity_id, sizeof op->activity_id, "%s",
               opts->activity_id);
      op->opts.activity_id = op->activity_id;
    }
  }
  return op;
}

/* The config's strings are the caller's until the create is sent: the
 * create is sent later, from the loop, so the ones it reads are kept. */
static int copy_layers(ctr_op_t *op, const hcsb_uvm_layer_t *layers, size_t n) {
  op->layers = calloc(n, sizeof *op->layers);
  op->paths = calloc(n, sizeof *op->paths);
  if (op->layers == NULL || op->paths == NULL) return -ENOMEM;
  op->nlayers = n;
  for (size_t i = 0; i < n; i++) {
    const hcsb_verity_info_t *v = layers[i].verity;
    if (layers[i].image_path == NULL) return -EINVAL;
    if (dup_str(&op->layers[i].image_path, layers[i].image_path) != 0)
      return -ENOMEM;
    if (v != NULL) {
      hcsb_verity_info_t *c = malloc(sizeof *c);
      if (c == NULL) return -ENOMEM;
      *c = *v;
      c->root_digest = c->salt = c->hash_algorithm = NULL;
      op->layers[i].verity = c;
      if (dup_str(&c->root_digest, v->root_digest) != 0 ||
          dup_str(&c->salt, v->salt) != 0 ||
          dup_str(&c->hash_algorithm, v->hash_algorithm) != 0)
        return -ENOMEM;
    }
  }
  return 0;
}

static hcsb__uvm_ctr_t *rec_new(const char *id, size_t ndevs) {
  hcsb__uvm_ctr_t *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  hcsb__list_init(&r->link);
  r->id = strdup(id);
  r->devs = calloc(ndevs ? ndevs : 1, sizeof *r->devs);
  if (r->id == NULL || r->devs == NULL) {
    free(r->id);
    free(r->devs);
    free(r);
    return NULL;
  }
  return r;
}

int hcsb_uvm_create_container(hcsb_uvm_t *u, const hcsb_call_opts_t *opts,
                              const hcsb_container_config_t *config,
                              const hcsb_uvm_layer_t *layers, size_t nlayers,
                              hcsb_container_cb cb, void *data,
                              hcsb_container_t **out) {
  hcsb_uvm_vpmem_opts_t vo;
  ctr_op_t *op;
  int rc;

  if (u == NULL || config == NULL || layers == NULL || nlayers == 0 ||
      config->id == NULL || config->id[0] == '\0' || config->nlayers != 0 ||
      config->nmapped_virtual_disks != 0 || config->nmapped_directories != 0 ||
      config->nendpoints != 0)
    return -EINVAL;
  if (out != NULL) *out = NULL;
  if (u->closing || u->step != HCSB__STEP_RUNNING || u->conn == NULL)
    return -ENOTCONN;
  if (rec_find(u, config->id) != NULL) return -EEXIST;
  op = op_new(u, opts);
  if (op == NULL) return -ENOMEM;
  hcsb__handle_ref(&u->h); /* op_free drops it */
  op->creating = 1;
  op->ccb = cb;
  op->data = data;
  /* The create is sent later, from the loop: keep what it reads. */
  memset(&op->config, 0, sizeof op->config);
  op->config.mapped_virtual_disks = NULL;
  rc = copy_layers(op, layers, nlayers);
  if (rc == 0 &&
      (dup_str(&op->config.id, config->id) != 0 ||
       dup_str(&op->config.config_json, config->config_json) != 0 ||
       dup_str(&op->config.oci_spec_json, config->oci_spec_json) != 0 ||
       dup_str(&op->config.bundle_path, config->bundle_path) != 0 ||
       dup_str(&op->config.scratch_dir, config->scratch_dir) != 0 ||
       dup_str(&op->config.host_name, config->host_name) != 0 ||
       dup_str(&op->config.layer_scratch_path, config->layer_scratch_path) !=
           0))
    rc = -ENOMEM;
  if (rc == 0 && (op->rec = rec_new(config->id, nlayers)) == NULL) rc = -ENOMEM;
  if (rc == 0) {
    memset(&vo, 0, sizeof vo);
    vo.verity = op->layers[0].verity;
    vo.call_opts = &op->opts;
    /* The first add is queued: its steps run from the loop. */
    rc = hcsb__vpmem_add(u, op->layers[0].image_path, &vo, layer_added, op);
  }
  if (rc != 0) {
    if (op->rec != NULL) rec_free(op->rec);
    op_free(op);
    return rc;
  }
  op->rec->busy = 1;
  hcsb__list_push(&u->ctrs, &op->rec->link);
  hcsb__list_push(&u->ctr_ops, &op->link);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Delete */

static void deleted(void *data, int status, const hcsb_guest_error_t *gerr) {
  ctr_op_t *op = data;
  op->status = status;
  if (status != 0) {
    /* The overlay (or the state) is still there: keep the layers. */
    hcsb__gerr_save(&op->gerr, gerr);
    op_end(op);
    return;
  }
  release_next(op);
}

int hcsb_uvm_delete_container(hcsb_uvm_t *u, const hcsb_call_opts_t *opts,
                              const char *container_id, hcsb_done_cb cb,
                              void *data) {
  hcsb__uvm_ctr_t *r;
  ctr_op_t *op;
  int rc, fresh = 0;

  if (u == NULL || container_id == NULL || container_id[0] == '\0')
    return -EINVAL;
  if (u->closing || u->step != HCSB__STEP_RUNNING || u->conn == NULL)
    return -ENOTCONN;
  r = rec_find(u, container_id);
  if (r != NULL && r->busy) return -EBUSY;
  if (r == NULL) {
    /* No layers here: a plain delete, with an empty record to end. */
    r = rec_new(container_id, 0);
    if (r == NULL) return -ENOMEM;
    fresh = 1;
  }
  op = op_new(u, opts);
  if (op == NULL) {
    if (fresh) rec_free(r);
    return -ENOMEM;
  }
  hcsb__handle_ref(&u->h); /* op_free drops it */
  op->dcb = cb;
  op->data = data;
  rc = hcsb_conn_delete_container(u->conn, &op->opts, container_id, 0, deleted,
                                  op);
  if (rc != 0) {
    if (fresh) rec_free(r);
    op_free(op);
    return rc;
  }
  if (fresh) hcsb__list_push(&u->ctrs, &r->link);
  r->busy = 1;
  op->rec = r;
  hcsb__list_push(&u->ctr_ops, &op->link);
  return 0;
}
