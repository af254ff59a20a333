/* Storage, done: a VPMem layer is mounted from /dev/pmem<N> (ext4,
 * read-only, `noload`: no journal replay on a read-only image), through
 * dm-linear when MappingInfo names a region of the device and dm-verity
 * when VerityInfo gives a root hash, as the v0.11.8 GCS does (pmem.Mount);
 * CombinedLayers mounts an overlay of the layer paths with upper and work
 * directories under the scratch, read-only without one (overlay.Mount).
 * A Remove unmounts, removes the mount point and the device-mapper devices
 * its Add made.
 *
 * Unlike that GCS, which fails at once when /dev/pmemN is not there yet,
 * an Add waits for the node (HCSB__GA_DEVICE_WAIT_MS, polled on the loop):
 * a hot-plugged device appears some tens of milliseconds after QEMU
 * answered.  SCSI disks need a VMBus and Plan9 shares a 9p-capable kernel,
 * which a QEMU VM with the Debian cloud kernel does not have: those Adds
 * fail with the reason. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest/act.h"

/* What an Add made, so its Remove (or the session's end) undoes exactly
 * that. */
typedef struct hcsb__gamnt_s {
  TAILQ_ENTRY(hcsb__gamnt_s) link;
  char *type;
  char *path;
  char dm[2][HCSB__GA_DM_NAME_MAX + 1]; /* removed in this order */
} hcsb__gamnt_t;

/* A VPMem Add waiting for its device. */
typedef struct hcsb__gaop_s {
  TAILQ_ENTRY(hcsb__gaop_s) link;
  hcsb__guest_t *g;
  hcsb__gcall_t call;
  char *path;
  char *detail;
  uint32_t devnum;
  int has_map;
  uint64_t offset, bytes;
  int has_verity;
  hcsb__gverity_t v;
  char *alg, *root, *salt; /* v's strings */
  uint64_t deadline;
  uv_timer_t timer;
} hcsb__gaop_t;

/* ------------------------------------------------------------------------ */
/* Pure helpers */

static int layer_path_ok(const char *p) {
  return hcsb__ga_path_ok(p) && strpbrk(p, ":,") == NULL;
}

int hcsb__goverlay_data(char *out, size_t size, const char *const *layers,
                        size_t n, const char *upper, const char *work) {
  size_t i, len = 0;
  int k;

  if (n == 0 || (upper == NULL) != (work == NULL)) return -EINVAL;
  if (n > HCSB__GA_MAX_LAYERS) return -E2BIG;
  if (size > HCSB__GA_MAX_OPTIONS + 1) size = HCSB__GA_MAX_OPTIONS + 1;
  for (i = 0; i < n; i++)
    if (!layer_path_ok(layers[i])) return -EINVAL;
  if (upper != NULL && (!layer_path_ok(upper) || !layer_path_ok(work)))
    return -EINVAL;
  k = snprintf(out, size, "lowerdir=");
  if (k < 0 || (size_t)k >= size) return -E2BIG;
  len = (size_t)k;
  for (i = 0; i < n; i++) {
    k = snprintf(out + len, size - len, "%s%s", i > 0 ? ":" : "", layers[i]);
    if (k < 0 || (size_t)k >= size - len) return -E2BIG;
    len += (size_t)k;
  }
  if (upper != NULL) {
    k = snprintf(out + len, size - len, ",upperdir=%s,workdir=%s", upper, work);
    if (k < 0 || (size_t)k >= size - len) return -E2BIG;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Unmounting */

/* The GCS's UnmountPath(target, removeTarget=true): nothing there is
 * fine; not a mount point is fine; then the directory goes (here only
 * when empty: what was below a mount point is not ours to delete). */
static int unmount_path(const char *path, char *err, size_t esize) {
  struct stat st;
  char eb[128];

  if (stat(path, &st) < 0) {
    if (errno == ENOENT) return 0;
    snprintf(err, esize, "failed to determine if path '%s' exists: %s", path,
             hcsb__ga_errstr(errno, eb));
    return -1;
  }
  if (umount2(path, 0) < 0 && errno != EINVAL) {
    snprintf(err, esize,
             "failed to unmount target: %s: failed to unmount path '%s': %s",
             path, path, hcsb__ga_errstr(errno, eb));
    return -1;
  }
  if (rmdir(path) < 0 && errno != ENOENT && errno != ENOTEMPTY &&
      errno != EEXIST) {
    snprintf(err, esize, "unlinkat %s: %s", path, hcsb__ga_errstr(errno, eb));
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Records */

static hcsb__gamnt_t *find_mount(hcsb__gact_t *a, const char *type,
                                 const char *path) {
  hcsb__gamnt_t *m;

  TAILQ_FOREACH(m, &a->mounts, link)
  if (strcmp(m->type, type) == 0 && strcmp(m->path, path) == 0) return m;
  return NULL;
}

static void mount_free(hcsb__gact_t *a, hcsb__gamnt_t *m) {
  TAILQ_REMOVE(&a->mounts, m, link);
  a->nmounts--;
  free(m->type);
  free(m->path);
  free(m);
}

/* Records a mount made.  -ENOMEM: the caller undoes it. */
static int remember(hcsb__guest_t *g, const char *type, const char *path,
                    const char *dm0, const char *dm1, char *detail) {
  hcsb__gamnt_t *m = calloc(1, sizeof *m);

  if (m == NULL || (m->type = strdup(type)) == NULL ||
      (m->path = strdup(path)) == NULL) {
    if (m != NULL) free(m->type);
    free(m);
    free(detail);
    return -ENOMEM;
  }
  snprintf(m->dm[0], sizeof m->dm[0], "%s", dm0 != NULL ? dm0 : "");
  snprintf(m->dm[1], sizeof m->dm[1], "%s", dm1 != NULL ? dm1 : "");
  TAILQ_INSERT_TAIL(&g->act->mounts, m, link);
  g->act->nmounts++;
  /* The emulator's registry shows it in DumpStacks. */
  if (hcsb__gmodify_record(g, type, path, detail) < 0)
    hcsb__glog(g, 0, "out of memory: %s %s not listed", type, path);
  return 0;
}

static void forget(hcsb__guest_t *g, hcsb__gamnt_t *m) {
  hcsb__gmodify_forget(g, m->type, m->path);
  mount_free(g->act, m);
}

/* ------------------------------------------------------------------------ */
/* VPMem */

static void op_closed(uv_handle_t *h) {
  hcsb__gaop_t *op = h->data;

  hcsb__gcall_free(&op->call);
  free(op->path);
  free(op->detail);
  free(op->alg);
  free(op->root);
  free(op->salt);
  free(op);
}

static void op_free(hcsb__gaop_t *op) {
  TAILQ_REMOVE(&op->g->act->ops, op, link);
  uv_close((uv_handle_t *)&op->timer, op_closed);
}

/* The device chain and the mount; answers the Add. */
static void vpmem_mount(hcsb__gaop_t *op) {
  hcsb__guest_t *g = op->g;
  char dev[160], table[1024], lin[HCSB__GA_DM_NAME_MAX + 1] = "";
  char ver[HCSB__GA_DM_NAME_MAX + 1] = "", err[512] = "", eb[128];
  uint64_t sectors;
  int made = 0, r;

  snprintf(dev, sizeof dev, "/dev/pmem%" PRIu32, op->devnum);
  if (op->has_map) {
    /* Names were checked when the request came. */
    hcsb__gdm_linear_name(lin, sizeof lin, op->devnum, op->offset, op->bytes);
    r = hcsb__gdm_linear_table(table, sizeof table, dev, op->offset, op->bytes,
                               &sectors);
    /* The table string holds "0 <len> linear <params>": skip to params. */
    if (r == 0)
      r = hcsb__gdm_create(lin, "linear", sectors,
                           strstr(table, " linear ") + strlen(" linear "), dev,
                           sizeof dev, err, sizeof err);
    if (r < 0) {
      hcsb__greply_errf(g, &op->call, HCSB_E_FAIL,
                        "failed to create dm-linear target, device=/dev/"
                        "pmem%" PRIu32 ", offset=%" PRIu64 ": %s",
                        op->devnum, op->offset,
                        err[0] != '\0' ? err : hcsb__ga_errstr(-r, eb));
      return;
    }
  }
  if (op->has_verity) {
    hcsb__gdm_verity_name(ver, sizeof ver, op->devnum, op->root);
    r = hcsb__gdm_verity_params(table, sizeof table, dev, &op->v, &sectors);
    if (r == 0) {
      char data[160];
      r = hcsb__gdm_create(ver, "verity", sectors, table, data, sizeof data,
                           err, sizeof err);
      if (r == 0) snprintf(dev, sizeof dev, "%s", data);
    }
    if (r < 0) {
      hcsb__greply_errf(g, &op->call, HCSB_E_FAIL,
                        "failed to create dm-verity target. device=%s: %s", dev,
                        err[0] != '\0' ? err : hcsb__ga_errstr(-r, eb));
      goto undo_dm;
    }
  }
  r = hcsb__ga_mkdir_p(op->path, 0700, &made);
  if (r == 0 && mount(dev, op->path, HCSB__GA_PMEM_FSTYPE, MS_RDONLY,
                      HCSB__GA_PMEM_DATA) < 0)
    r = -errno;
  if (r < 0) {
    hcsb__greply_errf(g, &op->call, HCSB_E_FAIL,
                      "failed to mount %s onto %s: %s", dev, op->path,
                      hcsb__ga_errstr(-r, eb));
    if (made) rmdir(op->path);
    goto undo_dm;
  }
  if (remember(g, "VPMemDevice", op->path, ver, lin, op->detail) < 0) {
    op->detail = NULL;
    umount2(op->path, MNT_DETACH);
    if (made) rmdir(op->path);
    hcsb__greply_err(g, &op->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    goto undo_dm;
  }
  op->detail = NULL;
  hcsb__glog(g, 1, "mounted %s on %s", dev, op->path);
  hcsb__greply_ok(g, &op->call);
  return;

undo_dm:
  if (ver[0] != '\0') hcsb__gdm_remove(ver);
  if (lin[0] != '\0') hcsb__gdm_remove(lin);
}

static int pmem_present(uint32_t devnum) {
  char dev[64];
  struct stat st;

  snprintf(dev, sizeof dev, "/dev/pmem%" PRIu32, devnum);
  return stat(dev, &st) == 0 && S_ISBLK(st.st_mode);
}

static void on_poll(uv_timer_t *t) {
  hcsb__gaop_t *op = t->data;
  hcsb__guest_t *g = op->g;

  if (pmem_present(op->devnum)) {
    vpmem_mount(op);
  } else if (uv_now(g->loop) < op->deadline) {
    uv_timer_start(&op->timer, on_poll, HCSB__GA_DEVICE_POLL_MS, 0);
    return;
  } else {
    hcsb__greply_errf(g, &op->call, HCSB_E_FAIL,
                      "failed to mount /dev/pmem%" PRIu32
                      " onto %s: no such file or directory (no such device "
                      "after %u ms)",
                      op->devnum, op->path, HCSB__GA_DEVICE_WAIT_MS);
  }
  op_free(op);
}

/* Go-typed decoding of what the record's decode did not cover. */
static int decode_vpmem(hcsb__greq_t *r, json_object *s, hcsb__gaop_t *op) {
  hcsb__gdec_t d = {"LCOWMappedVPMemDevice", ""};
  json_object *m = NULL, *v = NULL;
  const char *alg = "", *root = "", *salt = "";
  int64_t off = 0, size = 0;

  if (hcsb__gdec_u32(&d, s, "DeviceNumber", &op->devnum) < 0 ||
      hcsb__gdec_obj(&d, s, "MappingInfo", &m) < 0 ||
      hcsb__gdec_obj(&d, s, "VerityInfo", &v) < 0)
    goto bad;
  if (m != NULL) {
    d.strct = "LCOWVPMemMappingInfo";
    if (hcsb__gdec_i64(&d, m, "DeviceOffsetInBytes", "uint64", &off) < 0 ||
        hcsb__gdec_i64(&d, m, "DeviceSizeInBytes", "uint64", &size) < 0)
      goto bad;
    op->has_map = 1;
    op->offset = (uint64_t)off;
    op->bytes = (uint64_t)size;
  }
  if (v != NULL) {
    /* Types were checked by the record's decode (modify.c). */
    d.strct = "DeviceVerityInfo";
    hcsb__gdec_i64(&d, v, "Ext4SizeInBytes", "int64", &op->v.data_bytes);
    hcsb__gdec_i64(&d, v, "Version", "int", &op->v.version);
    hcsb__gdec_i64(&d, v, "BlockSize", "int", &op->v.block);
    hcsb__gdec_str(&d, v, "Algorithm", &alg);
    hcsb__gdec_str(&d, v, "RootDigest", &root);
    hcsb__gdec_str(&d, v, "Salt", &salt);
    hcsb__gdec_bool(&d, v, "SuperBlock", &op->v.superblock);
    op->has_verity = 1;
    op->alg = strdup(alg);
    op->root = strdup(root);
    op->salt = strdup(salt);
    op->v.alg = op->alg;
    op->v.root = op->root;
    op->v.salt = op->salt;
    if (op->alg == NULL || op->root == NULL || op->salt == NULL) return -2;
  }
  return 0;
bad:
  hcsb__gmodify_fail(r, HCSB_E_VMCOMPUTE_INVALID_JSON,
                     "failed to unmarshal settings as MappedVPMemDeviceV2: "
                     "HRESULT 0xc037010d: %s",
                     d.err);
  return -1;
}

/* Checks what can be checked before waiting: names and tables. */
static int vpmem_check(hcsb__greq_t *r, hcsb__gaop_t *op) {
  char name[HCSB__GA_DM_NAME_MAX + 1], table[1024];
  uint64_t sectors;

  if (op->has_map &&
      (hcsb__gdm_linear_name(name, sizeof name, op->devnum, op->offset,
                             op->bytes) < 0 ||
       hcsb__gdm_linear_table(table, sizeof table, "/dev/pmem0", op->offset,
                              op->bytes, &sectors) < 0)) {
    hcsb__greply_errf(r->g, &r->call, HCSB_E_FAIL,
                      "failed to create dm-linear target, device=/dev/"
                      "pmem%" PRIu32 ", offset=%" PRIu64
                      ": invalid mapping (size %" PRIu64
                      "): offset and size must be non-zero multiples of 512",
                      op->devnum, op->offset, op->bytes);
    return -1;
  }
  if (op->has_verity &&
      (hcsb__gdm_verity_name(name, sizeof name, op->devnum, op->root) < 0 ||
       hcsb__gdm_verity_params(table, sizeof table, "/dev/pmem0", &op->v,
                               &sectors) < 0)) {
    hcsb__greply_errf(
        r->g, &r->call, HCSB_E_FAIL,
        "failed to create dm-verity target. device=/dev/"
        "pmem%" PRIu32 ": invalid VerityInfo (size %" PRId64 ", block %" PRId64
        ", algorithm \"%s\", root digest \"%.80s\")",
        op->devnum, op->v.data_bytes, op->v.block, op->v.alg, op->v.root);
    return -1;
  }
  return 0;
}

static void vpmem_add(hcsb__greq_t *r, json_object *s, const char *path,
                      char *detail) {
  hcsb__guest_t *g = r->g;
  hcsb__gaop_t *op, *x;
  unsigned n;
  int e;

  if (find_mount(g->act, "VPMemDevice", path) != NULL) {
    /* Added before (a host repeating an Add it lost the answer of). */
    free(detail);
    hcsb__greply_ok(g, &r->call);
    return;
  }
  n = 0;
  TAILQ_FOREACH(x, &g->act->ops, link) {
    n++;
    if (x->path != NULL && strcmp(x->path, path) == 0) {
      free(detail);
      hcsb__greply_errf(g, &r->call, HCSB_E_FAIL,
                        "%s: a VPMem device is being mounted there", path);
      return;
    }
  }
  if (n >= HCSB__GA_MAX_WAITS) {
    free(detail);
    hcsb__greply_errf(g, &r->call, HCSB_E_FAIL,
                      "too many VPMem devices being waited for (%u)", n);
    return;
  }
  op = calloc(1, sizeof *op);
  if (op == NULL) {
    free(detail);
    hcsb__greply_err(g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    return;
  }
  if (uv_timer_init(g->loop, &op->timer) != 0) {
    free(op);
    free(detail);
    hcsb__greply_err(g, &r->call, HCSB_E_FAIL, "timer initialisation failed");
    return;
  }
  /* From here on the op is freed through its timer's close. */
  op->timer.data = op;
  op->g = g;
  op->detail = detail;
  TAILQ_INSERT_TAIL(&g->act->ops, op, link);
  if ((op->path = strdup(path)) == NULL ||
      hcsb__gcall_copy(&op->call, &r->call) != 0) {
    hcsb__greply_err(g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    op_free(op);
    return;
  }
  e = decode_vpmem(r, s, op);
  if (e == -2)
    hcsb__greply_err(g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
  if (e < 0 || vpmem_check(r, op) < 0) {
    op_free(op);
    return;
  }
  op->deadline = uv_now(g->loop) + HCSB__GA_DEVICE_WAIT_MS;
  if (pmem_present(op->devnum)) {
    vpmem_mount(op);
    op_free(op);
    return;
  }
  hcsb__glog(g, 1, "waiting for /dev/pmem%" PRIu32, op->devnum);
  uv_timer_start(&op->timer, on_poll, HCSB__GA_DEVICE_POLL_MS, 0);
}

/* Remove: unmount, remove the mount point, then the devices the Add made
 * (or, for an Add this session did not see, the ones its settings name). */
static void vpmem_remove(hcsb__greq_t *r, json_object *s, const char *path) {
  hcsb__guest_t *g = r->g;
  hcsb__gamnt_t *m = find_mount(g->act, "VPMemDevice", path);
  char err[640], names[2][HCSB__GA_DM_NAME_MAX + 1];
  hcsb__gaop_t tmp;
  int i;

  memset(&tmp, 0, sizeof tmp);
  memset(names, 0, sizeof names);
  if (m != NULL) {
    memcpy(names, m->dm, sizeof names);
  } else if (decode_vpmem(r, s, &tmp) == 0) {
    if (tmp.has_verity)
      hcsb__gdm_verity_name(names[0], sizeof names[0], tmp.devnum, tmp.root);
    if (tmp.has_map)
      hcsb__gdm_linear_name(names[1], sizeof names[1], tmp.devnum, tmp.offset,
                            tmp.bytes);
  } else {
    goto out; /* answered */
  }
  if (unmount_path(path, err, sizeof err) < 0) {
    hcsb__greply_err(g, &r->call, HCSB_E_FAIL, err);
    goto out;
  }
  /* Unmounted: a device that will not go is logged, not reported (the
   * GCS does the same). */
  for (i = 0; i < 2; i++)
    if (names[i][0] != '\0') {
      int e = hcsb__gdm_remove(names[i]);
      if (e < 0 && e != -ENXIO)
        hcsb__glog(g, 0, "cannot remove device-mapper device %s: %s", names[i],
                   strerror(-e));
    }
  if (m != NULL) forget(g, m);
  hcsb__glog(g, 1, "unmounted %s", path);
  hcsb__greply_ok(g, &r->call);
out:
  free(tmp.alg);
  free(tmp.root);
  free(tmp.salt);
}

/* ------------------------------------------------------------------------ */
/* CombinedLayers */

static void layers_add(hcsb__greq_t *r, json_object *s, const char *target,
                       char *detail) {
  hcsb__guest_t *g = r->g;
  hcsb__gdec_t d = {"LCOWCombinedLayers", ""};
  json_object *layers = NULL;
  const char *scratch = "", *paths[HCSB__GA_MAX_LAYERS];
  char upper[4200], work[4200], data[HCSB__GA_MAX_OPTIONS + 1], eb[128];
  int made_t = 0, made_u = 0, made_w = 0, e;
  size_t i, n;

  layers = hcsb__json_get(s, "Layers");
  if (json_object_is_type(layers, json_type_null)) layers = NULL;
  if ((layers != NULL && !json_object_is_type(layers, json_type_array)) ||
      hcsb__gdec_str(&d, s, "ScratchPath", &scratch) < 0) {
    free(detail);
    hcsb__gmodify_fail(r, HCSB_E_VMCOMPUTE_INVALID_JSON,
                       "failed to unmarshal settings as CombinedLayersV2: "
                       "HRESULT 0xc037010d: %s",
                       d.err[0] != '\0'
                           ? d.err
                           : "json: cannot unmarshal a non-array into Go "
                             "struct field LCOWCombinedLayers.Layers of type "
                             "[]hcsschema.Layer");
    return;
  }
  if (find_mount(g->act, "CombinedLayers", target) != NULL) {
    free(detail);
    hcsb__greply_ok(g, &r->call);
    return;
  }
  n = layers != NULL ? json_object_array_length(layers) : 0;
  if (n > HCSB__GA_MAX_LAYERS) n = HCSB__GA_MAX_LAYERS + 1; /* -E2BIG below */
  for (i = 0; i < n && i < HCSB__GA_MAX_LAYERS; i++) {
    json_object *p =
        hcsb__json_get(json_object_array_get_idx(layers, i), "Path");
    paths[i] = json_object_is_type(p, json_type_string)
                   ? json_object_get_string(p)
                   : "";
  }
  if (scratch[0] != '\0') {
    snprintf(upper, sizeof upper, "%s/upper", scratch);
    snprintf(work, sizeof work, "%s/work", scratch);
  }
  e = hcsb__goverlay_data(data, sizeof data, paths, n,
                          scratch[0] != '\0' ? upper : NULL,
                          scratch[0] != '\0' ? work : NULL);
  if (e < 0) {
    free(detail);
    hcsb__greply_errf(
        g, &r->call, HCSB_E_FAIL, "failed to mount overlayfs at %s: %s", target,
        n == 0        ? "no layers"
        : e == -E2BIG ? "too many layers or layer paths too long"
                      : "a layer or scratch path is not an absolute path "
                        "without ':' and ','");
    return;
  }
  if (scratch[0] != '\0') {
    e = hcsb__ga_mkdir_p(upper, 0755, &made_u);
    if (e == 0) e = hcsb__ga_mkdir_p(work, 0755, &made_w);
    if (e < 0) {
      hcsb__greply_errf(g, &r->call, HCSB_E_FAIL,
                        "failed to create %s directory in scratch space: %s",
                        made_u || e == 0 ? "workdir" : "upper",
                        hcsb__ga_errstr(-e, eb));
      goto undo;
    }
  }
  e = hcsb__ga_mkdir_p(target, 0755, &made_t);
  if (e < 0) {
    hcsb__greply_errf(g, &r->call, HCSB_E_FAIL,
                      "failed to create directory for container root "
                      "filesystem %s: %s",
                      target, hcsb__ga_errstr(-e, eb));
    goto undo;
  }
  if (mount("overlay", target, "overlay", scratch[0] == '\0' ? MS_RDONLY : 0,
            data) < 0) {
    hcsb__greply_errf(g, &r->call, HCSB_E_FAIL,
                      "failed to mount overlayfs at %s: %s", target,
                      hcsb__ga_errstr(errno, eb));
    goto undo;
  }
  if (remember(g, "CombinedLayers", target, NULL, NULL, detail) < 0) {
    detail = NULL;
    umount2(target, MNT_DETACH);
    hcsb__greply_err(g, &r->call, HCSB__G_E_OUTOFMEMORY, "out of memory");
    goto undo;
  }
  hcsb__glog(g, 1, "overlay on %s: %s", target, data);
  hcsb__greply_ok(g, &r->call);
  return;
undo:
  free(detail);
  if (made_t) rmdir(target);
  if (made_w) rmdir(work);
  if (made_u) rmdir(upper);
}

static void layers_remove(hcsb__greq_t *r, const char *target) {
  hcsb__gamnt_t *m = find_mount(r->g->act, "CombinedLayers", target);
  char err[640];

  if (unmount_path(target, err, sizeof err) < 0) {
    hcsb__greply_err(r->g, &r->call, HCSB_E_FAIL, err);
    return;
  }
  if (m != NULL) forget(r->g, m);
  hcsb__glog(r->g, 1, "unmounted %s", target);
  hcsb__greply_ok(r->g, &r->call);
}

/* ------------------------------------------------------------------------ */

int hcsb__ga_modify(hcsb__greq_t *r, const char *type, int add,
                    json_object *settings, const char *key, char *detail) {
  int vpmem = strcmp(type, "VPMemDevice") == 0;
  int layers = strcmp(type, "CombinedLayers") == 0;
  int scsi = strcmp(type, "MappedVirtualDisk") == 0;
  int plan9 = strcmp(type, "MappedDirectory") == 0;

  if (!vpmem && !layers && !scsi && !plan9) return 0;
  if ((vpmem || layers) && !hcsb__ga_path_ok(key)) {
    free(detail);
    hcsb__greply_errf(r->g, &r->call, HCSB_E_FAIL,
                      "invalid mount path \"%.300s\": not an absolute path "
                      "without \".\" and \"..\"",
                      key);
    return 1;
  }
  if (vpmem) {
    if (add)
      vpmem_add(r, settings, key, detail);
    else {
      free(detail);
      vpmem_remove(r, settings, key);
    }
  } else if (layers) {
    if (add)
      layers_add(r, settings, key, detail);
    else {
      free(detail);
      layers_remove(r, key);
    }
  } else {
    /* Nothing was added, so a Remove has nothing to undo. */
    free(detail);
    if (!add)
      hcsb__greply_ok(r->g, &r->call);
    else if (scsi)
      hcsb__greply_errf(r->g, &r->call, HCSB_E_FAIL,
                        "MappedVirtualDisk: SCSI controllers are found "
                        "through VMBus, which this VM does not have; use "
                        "VPMem");
    else
      hcsb__greply_errf(r->g, &r->call, HCSB_E_FAIL,
                        "failed to mount plan9 share at %s: this guest's "
                        "kernel has no 9p file system",
                        key);
  }
  return 1;
}

void hcsb__ga_storage_teardown(hcsb__guest_t *g) {
  hcsb__gaop_t *op;

  while ((op = TAILQ_FIRST(&g->act->ops)) != NULL) op_free(op);
}

void hcsb__ga_storage_final(hcsb__guest_t *g) {
  hcsb__gamnt_t *m;
  int i;

  /* Newest first: overlays before the layers below them. */
  while ((m = TAILQ_LAST(&g->act->mounts, hcsb__gamnt_list)) != NULL) {
    if (hcsb__ga_mounted_at(m->path) && umount2(m->path, 0) < 0 &&
        umount2(m->path, MNT_DETACH) < 0)
      hcsb__glog(g, 0, "cannot unmount %s: %s", m->path, strerror(errno));
    rmdir(m->path);
    for (i = 0; i < 2; i++)
      if (m->dm[i][0] != '\0') hcsb__gdm_remove(m->dm[i]);
    forget(g, m);
  }
}
